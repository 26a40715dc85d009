from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "sources"
    verbose_name = "Knowledge sources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bots.signals import bot_profile_changed
        from minirag.health import register_tenant_counter
        from sources.selectors import source_counts
        from sources.signals import reindex_after_bot_change

        register_tenant_counter(source_counts)
        bot_profile_changed.connect(reindex_after_bot_change, dispatch_uid="sources.reindex_after_bot_change")
