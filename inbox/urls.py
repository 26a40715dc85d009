"""Routes of the `inbox` app, mounted under /v1: the hand-off routes of a chat and the inbox."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from inbox import views

router = SimpleRouter(trailing_slash=False)
# Only detail actions (chat/{id}/handoff, ...): the chat itself is chat/urls.py's.
router.register("chat", views.ChatHandoffViewSet, basename="chat")

urlpatterns = [
    *router.urls,
    path("inbox/events", views.InboxEventsView.as_view(), name="inbox-events"),
    path("inbox/presence", views.InboxPresenceView.as_view(), name="inbox-presence"),
    path("inbox/status", views.InboxStatusView.as_view(), name="inbox-status"),
]
