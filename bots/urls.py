from rest_framework.routers import SimpleRouter

from bots.views import BotProfileViewSet

router = SimpleRouter(trailing_slash=False)
router.register("bot-profiles", BotProfileViewSet, basename="bot-profile")

urlpatterns = router.urls
