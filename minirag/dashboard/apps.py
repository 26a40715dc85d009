from django.contrib.admin.apps import AdminConfig


class DashboardAdminConfig(AdminConfig):
    """Django's admin with MiniRAG's tenant-aware site as the default (`admin.site`)."""

    default_site = "minirag.dashboard.site.DashboardSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from django.contrib import admin
        from django.contrib.auth.models import Group

        # Access is by tenant role, not by Django's groups and permissions: no page for them.
        if admin.site.is_registered(Group):
            admin.site.unregister(Group)
