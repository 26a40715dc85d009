from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Bots"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bots.selectors import bot_profile_counts
        from minirag.health import register_tenant_counter

        register_tenant_counter(bot_profile_counts)
