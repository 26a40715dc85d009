"""Routes of the `webhooks` app, mounted under /v1."""

urlpatterns: list = []
