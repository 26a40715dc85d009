"""HTTP API for chat: a turn (JSON or server-sent events), history, feedback and exports."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from chat import admission, selectors, services, stats, turns
from chat.models import Chat, Message
from chat.rate_limits import count_bot_token_message
from chat.serializers import (
    ChatBulkExportSerializer,
    ChatExportSerializer,
    ChatSerializer,
    ChatTurnForPersonSerializer,
    ChatTurnInputSerializer,
    ChatTurnOutputSerializer,
    CostEstimateSerializer,
    FeedbackInputSerializer,
    FeedbackStatsSerializer,
    FeedbackTrendSerializer,
    HandoffStatsSerializer,
    MessageSerializer,
    OverviewStatsSerializer,
    PricingStatsSerializer,
    UnansweredQuestionSerializer,
    UsageByBotSerializer,
    UsageByDaySerializer,
    UsageByModelSerializer,
)
from minirag.db import release_connection, releasing_connection
from minirag.errors import ApplicationError, InvalidInputError
from minirag.lookups import uuid_query_param
from minirag.negotiation import EventStreamNegotiation
from minirag.openapi import ERROR_RESPONSES, ErrorSerializer, event_stream
from minirag.pagination import ArrayLimitOffsetPagination, int_query_param
from minirag.request_threads import without_idle_request_thread
from minirag.throttling import client_address
from tenants.api import TenantAPIView, TenantViewSet
from tenants.models import Role, Tenant
from tenants.tenancy import tenant_scope, tenant_scope_disabled

logger = logging.getLogger(__name__)

EXPORT_BATCH = 500
MESSAGE_CSV_FIELDS = ["message_id", "role", "content", "feedback", "prompt_tokens", "completion_tokens", "created_at"]
BULK_CSV_FIELDS = ["chat_id", "chat_title", *MESSAGE_CSV_FIELDS]


VISITOR_HEADER = "X-MiniRAG-Visitor"
VISITOR_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


VISITOR = OpenApiParameter(
    VISITOR_HEADER,
    {"type": "string", "pattern": f"^{VISITOR_ID.pattern}$"},
    OpenApiParameter.HEADER,
    description="The widget's visitor id: a bot token reads only the chats it started for the same visitor.",
)


def visitor_id_of(request: Request) -> str:
    """The widget's random, persistent visitor id: binds a bot token's chats to one browser."""
    value = (request.headers.get(VISITOR_HEADER) or "").strip()
    if value and not VISITOR_ID.fullmatch(value):
        raise ApplicationError(f"{VISITOR_HEADER} must be 1-64 characters: letters, digits, '.', '_', ':' or '-'.")
    return value


TURN_STREAM = event_stream(
    "With `stream: true`, `text/event-stream`: `sources` once, `delta`*, then `done` or `error`; "
    "each event is exactly `event: <name>\\ndata: <one-line JSON>\\n\\n`. While a person handles the chat "
    "(`handling` not `bot`), the message is stored for them: `sources` (empty) and `done`, no `delta`; "
    "without `stream`, that answer is a 202 with the stored message.",
    ["sources", "delta", "done", "error"],
)


EXPORT_FORMAT = OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="Default json.")


def csv_export(columns: list[str]) -> OpenApiResponse:
    return OpenApiResponse(
        response=OpenApiTypes.STR, description=f"With `format=csv`, an attachment with the columns {','.join(columns)}."
    )


class ChatView(TenantAPIView):
    """`POST /v1/chat`: one turn. `GET /v1/chat`: the chats the caller may read (chat/selectors.py:
    all of the tenant's, or a member's own when the tenant limits members), most recent first."""

    content_negotiation_class = EventStreamNegotiation  # the widget streams with Accept: text/event-stream
    bot_token_actions = ("post",)
    minimum_roles = {"post": Role.MEMBER}
    max_page_limit = 100

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """The view behind the admission gate (chat/admission.py): `admitted_turns`."""
        return admitted_turns(super().as_view(**initkwargs))

    def finalize_response(self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.streaming:
            # An answer streams for minutes: let this view, DRF's request and Django's request
            # inside it go now (minirag/asgi_handler.py `_let_go_of`), by breaking the reference
            # cycles that would keep them until the cyclic collector ran: DRF's request refers to
            # itself and to this view (its parser context; its body is parsed already), and
            # Django's `View.setup` made `self.head` this view's own `get`.
            request.parser_context = {
                key: value for key, value in request.parser_context.items() if key not in ("request", "view")
            }
            vars(self).pop("head", None)
        return response

    @extend_schema(
        operation_id="chat_list",
        parameters=[OpenApiParameter("bot_profile_id", OpenApiTypes.UUID)],
        responses={200: ChatSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        chats = selectors.chat_list(
            principal=self.principal, bot_profile_id=uuid_query_param(request, "bot_profile_id")
        )
        paginator = ArrayLimitOffsetPagination()
        page = paginator.paginate_queryset(chats, request, view=self)
        return paginator.get_paginated_response(ChatSerializer(page, many=True).data)

    @extend_schema(
        operation_id="chat_turn",
        parameters=[VISITOR],
        request=ChatTurnInputSerializer,
        responses={
            (200, "application/json"): ChatTurnOutputSerializer,
            (200, "text/event-stream"): TURN_STREAM,
            (202, "application/json"): ChatTurnForPersonSerializer,
            502: ErrorSerializer,
            503: ErrorSerializer,
            **ERROR_RESPONSES,
        },
        description=TURN_STREAM.description,
    )
    def post(self, request: Request) -> HttpResponseBase:
        serializer = ChatTurnInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        visitor_id = visitor_id_of(request)
        # The turn's slot at the admission gate, taken by `admitted_turns` before this view ran
        # (None: the gate is off, or the message is for a person).
        ticket: admission.Ticket | None = getattr(request._request, ADMISSION_ATTRIBUTE, None)
        if self.principal.is_bot_token:
            count_bot_token_message(
                token=self.principal.api_token, visitor_id=visitor_id, client_address=client_address(request)
            )
        turn = services.prepare_turn(
            principal=self.principal,
            bot_profile_id=data["bot_profile_id"],
            message=data["message"],
            chat_id=data.get("chat_id"),
            visitor_id=visitor_id,
        )
        if turn.for_person:
            if data["stream"]:
                return _event_stream_response(turns.stream_for_person(turn))
            return Response(turns.for_person(turn), status=status.HTTP_202_ACCEPTED)
        if data["stream"]:
            release_connection()  # the stream may last minutes; it takes a connection when it needs one
            # The stream releases the slot once its prompt is built; a stream that never ran (the
            # client left before its first event) releases it when the response is closed.
            return _event_stream_response(turns.stream(turn, admission=ticket), ticket)
        return Response(async_to_sync(turns.answer)(turn, admission=ticket))


# --- Admission (chat/admission.py) -----------------------------------------------------------

ADMISSION_ATTRIBUTE = "minirag_turn_admission"


class AdmissionDoor:
    """The admission gate's door (chat/admission.py) in front of `POST /v1/chat`.

    The door is on the event loop, before the synchronous view runs (so before authentication,
    parsing and storing the question): a turn takes its place in arrival order — the order the
    server reads requests — or is refused with 503 and Retry-After. It waits here using no CPU, no
    thread and no database connection; a client that disconnects meanwhile cancels the wait (it
    leaves the line, nothing was stored). Admitted, it runs the view holding a slot, which the turn
    gives back once its prompt is built. A message to a chat a person handles needs no slot (no
    model answers it): when the turn would have to wait, the chat is looked up first — an idle
    server makes no query for it.

    Two callers: `admitted_turns` below (Django's own handlers and the test client run the view
    through it), and the served handler (minirag/asgi_handler.py), which calls `enter` itself and
    then runs the request's middleware and the synchronous view in one call on a thread, where
    Django's asynchronous path would cross to a thread for every classic middleware method."""

    async def enter(self, request: HttpRequest) -> HttpResponseBase | None:
        """The turn's place in line. None: run the view (holding the turn's ticket, set on the
        request, if it took one); a response: answer with it instead (the door's 503)."""
        gate = admission.turn_gate()
        if request.method != "POST" or gate is None:
            return None
        if gate.busy and await _handled_by_person(_chat_id_in(request)):
            return None
        try:
            ticket = gate.enter(admission.arrival_number(request))
        except admission.TurnsBusy as busy:
            return _busy_response(busy)
        await ticket.wait()  # cancelled (the client left): it leaves the line itself
        setattr(request, ADMISSION_ATTRIBUTE, ticket)
        return None

    @staticmethod
    def leave(request: HttpRequest, response: HttpResponseBase | None) -> None:
        """After the view (`response` None: it raised): the slot goes back, unless the response is
        the turn's stream, which gives it back once its prompt is built (or when it is closed)."""
        ticket: admission.Ticket | None = getattr(request, ADMISSION_ATTRIBUTE, None)
        if ticket is not None and getattr(response, "admission", None) is not ticket:
            ticket.release()  # an error, a person's chat, or a whole answer: done with the slot


def admitted_turns(view: Callable[..., HttpResponseBase]) -> Callable[..., Any]:
    """`view` (synchronous) behind the admission door, as an async view. It carries the door and the
    view behind it (`door`, `synchronous_view`) for the served handler."""
    door = AdmissionDoor()
    run_view = sync_to_async(view)  # as Django runs a synchronous view: in the request's thread

    @functools.wraps(view)
    async def gated_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refusal = await door.enter(request)
        if refusal is not None:
            return refusal
        response = None
        try:
            response = await run_view(request, *args, **kwargs)
        finally:
            door.leave(request, response)
        return response

    gated_view.door = door  # type: ignore[attr-defined]
    gated_view.synchronous_view = view  # type: ignore[attr-defined]
    return gated_view


REFUSALS_LOG_SECONDS = 10.0
_refusals = {"since_logged": 0, "logged_at": 0.0}


def _busy_response(busy: admission.TurnsBusy) -> JsonResponse:
    """The door's 503: the API's error shape, JSON even for `stream: true` (no stream started)."""
    response = JsonResponse({"detail": str(busy.detail)}, status=busy.status_code)
    response["Retry-After"] = str(busy.wait)
    # A full line refuses many turns at once: one warning every few seconds says so, instead of
    # Django's error line per 503 (the flag is what its request logging checks).
    response._has_been_logged = True  # type: ignore[attr-defined]
    _refusals["since_logged"] += 1
    now = time.monotonic()
    if now - _refusals["logged_at"] >= REFUSALS_LOG_SECONDS:
        logger.warning(
            "Chat turns refused with 503: %d since the last report; the line of waiting turns is full "
            "(MINIRAG_TURN_QUEUE_LIMIT). Retry-After %d s.",
            _refusals["since_logged"],
            busy.wait,
        )
        _refusals.update(since_logged=0, logged_at=now)
    return response


def _chat_id_in(request: HttpRequest) -> uuid.UUID | None:
    """The `chat_id` of a JSON turn body, if it names one (the view validates the body for real)."""
    if not request.content_type or not request.content_type.endswith("json"):
        return None
    try:
        body = json.loads(request.body)
        return uuid.UUID(str(body["chat_id"])) if isinstance(body, dict) and body.get("chat_id") else None
    except (ValueError, KeyError, TypeError):
        return None


async def _handled_by_person(chat_id: uuid.UUID | None) -> bool:
    if chat_id is None:
        return False
    # The connection goes back to the pool at once: the turn may then wait at the gate, and a
    # waiting turn must hold none (a burst would otherwise starve the pool for the admitted ones).
    return await sync_to_async(releasing_connection(_chat_handled_by_person))(chat_id)


def _chat_handled_by_person(chat_id: uuid.UUID) -> bool:
    # Only whether the turn needs a slot: the view then checks who may write to this chat (an
    # unknown or foreign chat is its 404).
    with tenant_scope_disabled("admission: whether a person handles the chat; the view checks access"):
        return Chat.all_tenants.filter(pk=chat_id).exclude(handling=Chat.Handling.BOT).exists()


class _EventStreamResponse(StreamingHttpResponse):
    """An event stream that owns the turn's admission ticket (if any): released when the server
    closes the response, however the stream ended (or if it never ran)."""

    def __init__(self, events: Any, ticket: admission.Ticket | None = None) -> None:
        super().__init__(events, content_type="text/event-stream; charset=utf-8")
        self.admission = ticket

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.admission is not None:
                self.admission.release()


def _event_stream_response(events: Any, ticket: admission.Ticket | None = None) -> StreamingHttpResponse:
    # An open stream must not keep its request's thread alive (minirag/request_threads.py): with
    # a thousand streams open, those idle threads were most of the server's memory.
    response = _EventStreamResponse(without_idle_request_thread(events), ticket)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


class ChatViewSet(TenantViewSet):
    """One chat: read it, its messages, rate an answer, export it — a chat the caller may not
    read (chat/selectors.py) is a 404 on every one of these."""

    serializer_class = ChatSerializer
    queryset = Chat.objects.all()  # for the schema's model; requests use selectors
    bot_token_actions = ("retrieve", "messages", "feedback")
    minimum_roles = {"feedback": Role.MEMBER}

    def get_object(self, *, related: tuple[str, ...] = selectors.CHAT_SHOWN_WITH) -> Chat:
        return selectors.chat_get_for(
            principal=self.principal, chat_id=self.kwargs["pk"], visitor_id=visitor_id_of(self.request), related=related
        )

    @extend_schema(parameters=[VISITOR], responses={200: ChatSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ChatSerializer(self.get_object()).data)

    @extend_schema(parameters=[VISITOR], responses={200: MessageSerializer(many=True), **ERROR_RESPONSES})
    @action(detail=True, methods=["get"])
    def messages(self, request: Request, pk: str) -> Response:
        chat = self.get_object(related=())  # its messages need only its id
        page = self.paginate_queryset(selectors.chat_messages(chat=chat))
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(
        request=FeedbackInputSerializer,
        parameters=[OpenApiParameter("message_id", OpenApiTypes.UUID, OpenApiParameter.PATH), VISITOR],
        responses={200: MessageSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["patch"], url_path=r"messages/(?P<message_id>[^/.]+)/feedback")
    def feedback(self, request: Request, pk: str, message_id: str) -> Response:
        message = selectors.message_get(chat=self.get_object(), message_id=message_id)
        serializer = FeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.message_set_feedback(message=message, feedback=serializer.validated_data["feedback"])
        return Response(MessageSerializer(message).data)

    @extend_schema(
        parameters=[EXPORT_FORMAT],
        responses={
            (200, "application/json"): ChatExportSerializer,
            (200, "text/csv"): csv_export(MESSAGE_CSV_FIELDS),
            **ERROR_RESPONSES,
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponseBase:
        chat = self.get_object()
        if _export_format(request) == "csv":
            rows = _message_rows(self.tenant, [chat], with_chat=False)
            return _csv_response(MESSAGE_CSV_FIELDS, rows, f"chat-{chat.pk}.csv")
        messages = MessageSerializer(selectors.chat_messages(chat=chat), many=True).data
        return Response({"chat": ChatSerializer(chat).data, "messages": messages, "exported_at": timezone.now()})


class ChatBulkExportView(TenantAPIView):
    """`GET /v1/chat/export`: many chats at once, filtered by bot and dates; only chats the
    caller may read."""

    @extend_schema(
        operation_id="chat_export_bulk",
        parameters=[
            OpenApiParameter("bot_profile_id", OpenApiTypes.UUID),
            OpenApiParameter("from_date", OpenApiTypes.DATE),
            OpenApiParameter("to_date", OpenApiTypes.DATE),
            EXPORT_FORMAT,
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                description="Chats (default 100, max 1000).",
            ),
        ],
        responses={
            (200, "application/json"): ChatBulkExportSerializer,
            (200, "text/csv"): csv_export(BULK_CSV_FIELDS),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        from_date, to_date = _date_param(request, "from_date"), _date_param(request, "to_date")
        if from_date and to_date and from_date > to_date:
            raise InvalidInputError.for_field("from_date", "Must not be after to_date.")
        chats = list(
            selectors.chats_for_export(
                principal=self.principal,
                bot_profile_id=uuid_query_param(request, "bot_profile_id"),
                from_date=from_date,
                to_date=to_date,
                limit=int_query_param(request, "limit", 100, 1, 1000),
            )
        )
        if _export_format(request) == "csv":
            rows = _message_rows(self.tenant, chats, with_chat=True)
            return _csv_response(BULK_CSV_FIELDS, rows, f"chats-{timezone.now():%Y%m%d-%H%M%S}.csv")
        body = {
            "chats": [
                {
                    "chat": ChatSerializer(chat).data,
                    "messages": MessageSerializer(selectors.chat_messages(chat=chat), many=True).data,
                }
                for chat in chats
            ],
            "exported_at": timezone.now(),
        }
        return Response(body)


# --- Export helpers ---------------------------------------------------------------------------


def _export_format(request: Request) -> str:
    value = (request.query_params.get("format") or "json").lower()
    if value not in ("json", "csv"):
        raise InvalidInputError.for_field("format", "Must be json or csv.")
    return value


def _date_param(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(raw[:10]) if len(raw) >= 10 else dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError.for_field(name, "Must be a date (YYYY-MM-DD).") from None


def _spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with a quote:
    chat content comes from website visitors."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _message_rows(tenant: Tenant, chats: list[Chat], *, with_chat: bool) -> Iterator[list[Any]]:
    """Rows read in batches, each batch in its own tenant scope: the response is streamed after
    the view returned, outside the request's scope."""
    for chat in chats:
        offset = 0
        while True:
            with tenant_scope(tenant):
                batch = list(
                    Message.objects.filter(tenant=tenant, chat_id=chat.pk)
                    .order_by("created_at", "id")
                    .values("id", "role", "content", "feedback", "prompt_tokens", "completion_tokens", "created_at")[
                        offset : offset + EXPORT_BATCH
                    ]
                )
            for row in batch:
                values = [
                    row["id"],
                    row["role"],
                    row["content"],
                    row["feedback"] or "",
                    row["prompt_tokens"],
                    row["completion_tokens"],
                    row["created_at"].isoformat(),
                ]
                yield [chat.pk, chat.title, *values] if with_chat else values
            if len(batch) < EXPORT_BATCH:
                break
            offset += EXPORT_BATCH


def _csv_lines(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_spreadsheet_safe(value) for value in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_response(header: list[str], rows: Iterable[list[Any]], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Stats ------------------------------------------------------------------------------------


def _days(request: Request, default: int = 30) -> int:
    return int_query_param(request, "days", default, 1, 365)


DAYS = OpenApiParameter(
    "days", {"type": "integer", "minimum": 1, "maximum": 365}, description="Window in days (default 30, 1 to 365)."
)
BOT_FILTER = OpenApiParameter("bot_profile_id", OpenApiTypes.UUID)


class StatsView(TenantAPIView):
    """Base of the stats routes: any role of the tenant; never a widget token."""

    def compute(self, request: Request) -> Any:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        return Response(self.compute(request))


def stats_schema(response: Any, *parameters: OpenApiParameter) -> Callable[[type], type]:
    """The schema of one stats route: its query parameters and the shape it answers."""
    return extend_schema_view(
        get=extend_schema(parameters=list(parameters), responses={200: response, **ERROR_RESPONSES})
    )


@stats_schema(PricingStatsSerializer)
class PricingStatsView(StatsView):
    """Today's price per million tokens of every model the tenant's bots use or used."""

    def compute(self, request: Request) -> Any:
        return stats.pricing(self.tenant)


@stats_schema(OverviewStatsSerializer)
class OverviewStatsView(StatsView):
    """Active bots and sources, chats, and all-time tokens."""

    def compute(self, request: Request) -> Any:
        return stats.overview(self.tenant)


@stats_schema(UsageByDaySerializer(many=True), DAYS)
class UsageStatsView(StatsView):
    """Tokens and requests per day and model."""

    def compute(self, request: Request) -> Any:
        return stats.usage_by_day(self.tenant, _days(request))


@stats_schema(UsageByBotSerializer(many=True), DAYS)
class UsageByBotStatsView(StatsView):
    """Tokens, requests and cost per bot and model."""

    def compute(self, request: Request) -> Any:
        return stats.usage_by_bot(self.tenant, _days(request))


@stats_schema(UsageByModelSerializer(many=True), DAYS)
class UsageByModelStatsView(StatsView):
    """Tokens, requests and cost per model, with today's prices."""

    def compute(self, request: Request) -> Any:
        return stats.usage_by_model(self.tenant, _days(request))


@stats_schema(CostEstimateSerializer, DAYS)
class CostEstimateStatsView(StatsView):
    """Spend in the window, the daily average and the month it projects."""

    def compute(self, request: Request) -> Any:
        return stats.cost_estimate(self.tenant, _days(request))


@stats_schema(FeedbackStatsSerializer, DAYS, BOT_FILTER)
class FeedbackStatsView(StatsView):
    """Rated answers: totals, rate, and per bot."""

    def compute(self, request: Request) -> Any:
        return stats.feedback(self.tenant, _days(request), uuid_query_param(request, "bot_profile_id"))


@stats_schema(FeedbackTrendSerializer(many=True), DAYS, BOT_FILTER)
class FeedbackTrendStatsView(StatsView):
    """Answers and ratings per day of the window (days without answers included)."""

    def compute(self, request: Request) -> Any:
        return stats.feedback_trend(self.tenant, _days(request), uuid_query_param(request, "bot_profile_id"))


@stats_schema(HandoffStatsSerializer, DAYS, BOT_FILTER)
class HandoffStatsView(StatsView):
    """Hand-offs to a person (inbox/): requested, taken over and how fast, operator messages, now."""

    def compute(self, request: Request) -> Any:
        return stats.handoffs(self.tenant, _days(request), uuid_query_param(request, "bot_profile_id"))


@stats_schema(UnansweredQuestionSerializer(many=True), DAYS, BOT_FILTER)
class UnansweredStatsView(StatsView):
    """The questions the bots refused, grouped, most frequent first."""

    def compute(self, request: Request) -> Any:
        # Visitors' own words: limited like the chats they come from.
        return stats.unanswered(
            self.tenant,
            _days(request),
            uuid_query_param(request, "bot_profile_id"),
            started_by=selectors.own_chats_only(self.principal),
        )
