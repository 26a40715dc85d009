"""Routes of the `chat` app, mounted under /v1: chat and stats."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from chat import views

router = SimpleRouter(trailing_slash=False)
router.register("chat", views.ChatViewSet, basename="chat")

urlpatterns = [
    path("chat", views.ChatView.as_view(), name="chat"),
    path("chat/export", views.ChatBulkExportView.as_view(), name="chat-bulk-export"),
    *router.urls,
    path("stats/pricing", views.PricingStatsView.as_view(), name="stats-pricing"),
    path("stats/overview", views.OverviewStatsView.as_view(), name="stats-overview"),
    path("stats/usage", views.UsageStatsView.as_view(), name="stats-usage"),
    path("stats/usage/by-bot", views.UsageByBotStatsView.as_view(), name="stats-usage-by-bot"),
    path("stats/usage/by-model", views.UsageByModelStatsView.as_view(), name="stats-usage-by-model"),
    path("stats/cost-estimate", views.CostEstimateStatsView.as_view(), name="stats-cost-estimate"),
    path("stats/feedback", views.FeedbackStatsView.as_view(), name="stats-feedback"),
    path("stats/feedback/trend", views.FeedbackTrendStatsView.as_view(), name="stats-feedback-trend"),
    path("stats/unanswered", views.UnansweredStatsView.as_view(), name="stats-unanswered"),
    path("stats/handoffs", views.HandoffStatsView.as_view(), name="stats-handoffs"),
]
