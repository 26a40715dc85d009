from django.apps import AppConfig


class MiniragConfig(AppConfig):
    """The project package as an app: shared infrastructure, templates and management commands."""

    name = "minirag"
    verbose_name = "MiniRAG"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from minirag import openapi  # noqa: F401  (registers the OpenAPI security scheme)
