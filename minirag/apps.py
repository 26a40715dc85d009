from django.apps import AppConfig


class MiniragConfig(AppConfig):
    """The project package as an app: shared infrastructure, templates and management commands."""

    name = "minirag"
    verbose_name = "MiniRAG"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from minirag import openapi  # noqa: F401  (registers the OpenAPI security scheme)
        from minirag.db import upgrade_pool_check

        # Pooled connections survive a database restart (minirag/db.py).
        connection_created.connect(upgrade_pool_check, dispatch_uid="minirag_pool_check")
