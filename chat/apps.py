from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chats"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat.stats import chat_counts
        from minirag.health import register_tenant_counter

        register_tenant_counter(chat_counts)
