"""HTTP API of the hand-off: `/v1/chat/{id}/handoff|takeover|replies|release|typing|events` and
the tenant's inbox (`/v1/inbox/events|presence|status`). Thin: who may do what is checked here,
the transitions are inbox/services.py, the channels inbox/events.py.

Who may do what:
* the visitor (their bot token with `X-MiniRAG-Visitor`, on the chat they started): `handoff`,
  `release` ("back to the assistant"), `typing`, `events`;
* staff who may read the chat (chat/selectors.py): `handoff` on a visitor's behalf, `events`;
* operators (inbox/selectors.py `may_operate`: owners, admins, and members while the tenant lets
  members read every chat): `takeover`, `replies`, `release`, `typing`, and the inbox routes.
A chat the caller may not read is a 404, like everywhere else.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponseBase, StreamingHttpResponse
from django_eventstream.views import events as eventstream_events
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from chat import selectors as chat_selectors
from chat.models import Chat
from chat.rate_limits import count_bot_token_message
from chat.serializers import ChatSerializer, MessageSerializer
from chat.views import VISITOR, visitor_id_of
from inbox import services
from inbox.events import ChannelReader, chat_channel, chat_live_channel, inbox_channel, publish_typing
from inbox.presence import PRESENCE_SECONDS, apresence_mark, presence_mark
from inbox.selectors import may_operate, operators_online
from inbox.serializers import (
    HandoffInputSerializer,
    HandoffSerializer,
    InboxStatusSerializer,
    PresenceSerializer,
    ReplyInputSerializer,
)
from minirag.db import release_connection
from minirag.errors import ForbiddenError
from minirag.negotiation import EventStreamNegotiation
from minirag.openapi import ERROR_RESPONSES, event_stream
from minirag.throttling import client_address
from tenants.api import TenantAPIView, TenantViewSet
from tenants.models import Role

NOT_AN_OPERATOR = (
    "Only owners and admins answer visitors, and members while the workspace lets members read every chat."
)

CHAT_EVENTS = event_stream(
    "text/event-stream of one chat (django-eventstream): `stream-open` first, then `message` (a Message: the "
    "visitor's while a person handles the chat, an operator's reply), `handling` (the Chat, when who answers "
    "changes), `handoff_requested` (the Chat), `typing` ({chat_id, who: visitor|operator, name}) and "
    "`keep-alive`. Each kept event has an `id`: reconnect with `Last-Event-ID` (or `?lastEventId=`) to get "
    "what was missed; `stream-reset` when that is no longer possible (reload the messages).",
    ["stream-open", "message", "handling", "handoff_requested", "typing", "keep-alive", "stream-reset", "stream-error"],
)
INBOX_EVENTS = event_stream(
    "text/event-stream of the workspace's inbox: `handoff_requested` (a Chat now waiting for a person), "
    "`handling` (a Chat taken over or released), `message` (a visitor's or an operator's message in a chat a "
    "person handles), `keep-alive`. Holding it open keeps you online for hand-offs. Resumes with Last-Event-ID.",
    ["stream-open", "message", "handling", "handoff_requested", "keep-alive", "stream-reset", "stream-error"],
)


def _require_operator(view: Any) -> None:
    if not may_operate(view.principal):
        raise ForbiddenError(NOT_AN_OPERATOR)


def _stream(request: Request, reader: ChannelReader, channels: list[str]) -> HttpResponseBase:
    """django-eventstream's stream of `channels`, read as `reader` (inbox/events.py decides)."""
    request._request.user = reader  # what django-eventstream hands the channel manager
    release_connection()  # an open stream holds no pooled connection (inbox/events.py takes one briefly)
    return eventstream_events(request._request, channels=channels)


class ChatHandoffViewSet(TenantViewSet):
    """The hand-off routes of one chat (see the module docstring for who may do what)."""

    serializer_class = ChatSerializer
    queryset = Chat.objects.all()  # for the schema's model; requests use chat/selectors.py
    input_serializer_classes = {"handoff": HandoffInputSerializer, "replies": ReplyInputSerializer}
    bot_token_actions = ("handoff", "release", "typing", "events")
    minimum_roles = {
        action: Role.MEMBER for action in ("handoff", "takeover", "replies", "release", "typing", "events")
    }

    def get_object(self) -> Chat:
        return chat_selectors.chat_get_for(
            principal=self.principal, chat_id=self.kwargs["pk"], visitor_id=visitor_id_of(self.request)
        )

    @extend_schema(
        operation_id="chat_handoff",
        parameters=[VISITOR],
        request=HandoffInputSerializer,
        responses={200: HandoffSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def handoff(self, request: Request, pk: str) -> Response:
        """Ask for a person: `handling` goes from `bot` to `needs_human` (again: no change; 409 when the
        bot's hand-off is off). Says whether someone is available now, and when not, when someone will
        answer; an `email` is kept on the chat."""
        chat = self.get_object()
        data = self.validated_input()
        if self.principal.is_bot_token:
            # Each hand-off notifies the tenant (webhook, inbox): counted like a message, so a
            # script toggling handoff/release meets the widget's limits.
            count_bot_token_message(
                token=self.principal.api_token,
                visitor_id=visitor_id_of(request),
                client_address=client_address(request),
            )
        outcome = services.chat_handoff_request(
            tenant=self.tenant, chat=chat, by_visitor=self.principal.is_bot_token, email=data.get("email") or ""
        )
        availability = outcome.availability
        return Response(
            {
                "chat": ChatSerializer(outcome.chat).data,
                "available": availability.available,
                "within_office_hours": availability.within_office_hours,
                "next_available_at": availability.next_opening_at,
                "ask_for_email": not availability.available and not outcome.chat.contact_email,
            }
        )

    @extend_schema(operation_id="chat_takeover", request=None, responses={200: ChatSerializer, **ERROR_RESPONSES})
    @action(detail=True, methods=["post"])
    def takeover(self, request: Request, pk: str) -> Response:
        """An operator takes the chat over: `handling: "human"`, assigned to them. The bot stops answering."""
        chat = self.get_object()
        _require_operator(self)
        chat = services.chat_take_over(tenant=self.tenant, chat=chat, operator=self.principal.user)
        return Response(ChatSerializer(chat).data)

    @extend_schema(
        operation_id="chat_reply",
        request=ReplyInputSerializer,
        responses={201: MessageSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def replies(self, request: Request, pk: str) -> Response:
        """An operator's message to the visitor (role `operator`, with `author_name`), published live;
        409 unless a person handles the chat."""
        chat = self.get_object()
        _require_operator(self)
        data = self.validated_input()
        message = services.operator_reply(
            tenant=self.tenant, chat=chat, operator=self.principal.user, content=data["content"]
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="chat_release",
        parameters=[VISITOR],
        request=None,
        responses={200: ChatSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        """Back to the bot (`handling: "bot"`): by an operator, or by the visitor ("back to the assistant")."""
        chat = self.get_object()
        if not self.principal.is_bot_token:
            _require_operator(self)
        chat = services.chat_release(tenant=self.tenant, chat=chat)
        return Response(ChatSerializer(chat).data)

    @extend_schema(
        operation_id="chat_typing", parameters=[VISITOR], request=None, responses={204: None, **ERROR_RESPONSES}
    )
    @action(detail=True, methods=["post"])
    def typing(self, request: Request, pk: str) -> Response:
        """Someone is typing: a `typing` event on the chat's channel, sent at once and never stored."""
        chat = self.get_object()
        if self.principal.is_bot_token:
            data = {"chat_id": str(chat.pk), "who": "visitor", "name": None}
        else:
            _require_operator(self)
            data = {
                "chat_id": str(chat.pk),
                "who": "operator",
                "name": services.operator_display_name(self.principal.user),
            }
        publish_typing(self.tenant.pk, chat.pk, data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="chat_events_stream",
        parameters=[VISITOR],
        responses={(200, "text/event-stream"): CHAT_EVENTS, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["get"], content_negotiation_class=EventStreamNegotiation)
    def events(self, request: Request, pk: str) -> HttpResponseBase:
        """The chat's live events (server-sent): operator messages, typing, who handles the chat."""
        chat = self.get_object()
        reader = ChannelReader(principal=self.principal, visitor_id=visitor_id_of(request))
        return _stream(
            request, reader, [chat_channel(self.tenant.pk, chat.pk), chat_live_channel(self.tenant.pk, chat.pk)]
        )


class InboxEventsView(TenantAPIView):
    """`GET /v1/inbox/events`: the workspace's inbox, live, for operators."""

    content_negotiation_class = EventStreamNegotiation

    @extend_schema(
        operation_id="inbox_events_stream", responses={(200, "text/event-stream"): INBOX_EVENTS, **ERROR_RESPONSES}
    )
    def get(self, request: Request) -> HttpResponseBase:
        _require_operator(self)
        tenant_id, user_id = self.tenant.pk, self.principal.user.pk
        presence_mark(tenant_id=tenant_id, user_id=user_id)
        response = _stream(request, ChannelReader(principal=self.principal), [inbox_channel(tenant_id)])
        if not isinstance(response, StreamingHttpResponse):
            return response
        upstream = response.streaming_content

        async def keeping_presence() -> Any:
            # Every part sent (a keep-alive at least every 20 s) renews the operator's presence.
            async for part in upstream:
                await apresence_mark(tenant_id=tenant_id, user_id=user_id)
                yield part

        response.streaming_content = keeping_presence()
        return response


class InboxPresenceView(TenantAPIView):
    """`POST /v1/inbox/presence`: "I am here" for PRESENCE_SECONDS, for a client that does not hold
    the inbox stream open."""

    minimum_roles = {"post": Role.MEMBER}

    @extend_schema(operation_id="inbox_presence", request=None, responses={200: PresenceSerializer, **ERROR_RESPONSES})
    def post(self, request: Request) -> Response:
        _require_operator(self)
        presence_mark(tenant_id=self.tenant.pk, user_id=self.principal.user.pk)
        return Response(
            {"online_for_seconds": PRESENCE_SECONDS, "operators_online": len(operators_online(tenant=self.tenant))}
        )


class InboxStatusView(TenantAPIView):
    """`GET /v1/inbox/status`: visitors waiting for a person, chats a person handles, operators online."""

    @extend_schema(operation_id="inbox_status", responses={200: InboxStatusSerializer, **ERROR_RESPONSES})
    def get(self, request: Request) -> Response:
        _require_operator(self)
        counts = {
            handling: Chat.objects.filter(tenant=self.tenant, handling=handling).count()
            for handling in (Chat.Handling.NEEDS_HUMAN, Chat.Handling.HUMAN)
        }
        return Response(
            {
                "waiting": counts[Chat.Handling.NEEDS_HUMAN],
                "handled": counts[Chat.Handling.HUMAN],
                "operators_online": len(operators_online(tenant=self.tenant)),
            }
        )
