from django.urls import path
from rest_framework.routers import SimpleRouter

from bots.views import BotProfileViewSet, BotWidgetConfigView

router = SimpleRouter(trailing_slash=False)
router.register("bot-profiles", BotProfileViewSet, basename="bot-profile")

urlpatterns = [
    path("bot-profiles/<str:pk>/widget-config", BotWidgetConfigView.as_view(), name="bot-profile-widget-config"),
    *router.urls,
]
