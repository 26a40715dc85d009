from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from minirag.health import register_tenant_counter
        from tenants import checks, signals  # noqa: F401  (checks registers the scoped-manager check)
        from tenants.selectors import identity_counts

        signals.connect()
        register_tenant_counter(identity_counts)
