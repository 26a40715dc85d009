"""Routes of the `sources` app, mounted under /v1."""

urlpatterns: list = []
