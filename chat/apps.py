from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chats"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_started

        from chat.admission import stamp_arrival
        from chat.stats import chat_counts
        from minirag.health import register_tenant_counter

        register_tenant_counter(chat_counts)
        # Each request's place in the admission gate's line is the order it reached the application.
        request_started.connect(stamp_arrival, dispatch_uid="minirag-turn-arrival")
