from django.apps import AppConfig


class InboxConfig(AppConfig):
    """The live inbox: handing a chat from the bot to a person and back, operator replies,
    presence, and the live event channels (inbox/events.py)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "inbox"
