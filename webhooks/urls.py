"""Routes of the `webhooks` app, mounted under /v1."""

from rest_framework.routers import SimpleRouter

from webhooks import views

router = SimpleRouter(trailing_slash=False)
router.register("webhooks", views.WebhookViewSet, basename="webhook")

urlpatterns = router.urls
