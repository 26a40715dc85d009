"""Routes of the `chat` app, mounted under /v1."""

urlpatterns: list = []
