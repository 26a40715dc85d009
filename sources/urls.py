"""Routes of the `sources` app, mounted under /v1."""

from rest_framework.routers import SimpleRouter

from sources.views import CuratedAnswerViewSet, SourceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("sources", SourceViewSet, basename="source")
router.register("curated-answers", CuratedAnswerViewSet, basename="curated-answer")

urlpatterns = router.urls
