from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Model providers: the endpoints a bot's models are reached through, and the catalogue of models
    a tenant can choose from."""

    name = "providers"
    verbose_name = "Model providers"
    default_auto_field = "django.db.models.BigAutoField"
