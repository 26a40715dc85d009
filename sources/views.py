"""HTTP API for sources: CRUD, batch, upload, ingestion triggers and live progress events; and
curated answers, the sources operators write to teach a bot the right answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, StreamingHttpResponse
from django_eventstream.utils import sse_encode_event
from django_eventstream.views import events as eventstream_events
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from bots.selectors import bot_profile_reference
from inbox.selectors import may_operate
from minirag.errors import ForbiddenError, InvalidInputError, PayloadTooLargeError
from minirag.lookups import uuid_query_param
from minirag.negotiation import EventStreamNegotiation
from minirag.openapi import ERROR_RESPONSES, event_stream
from sources import curated, selectors, services
from sources.events import SOURCE_EVENT, progress_snapshot, source_channel, tenant_sources_channel
from sources.models import CuratedAnswer, Source
from sources.serializers import (
    CuratedAnswerCreateInputSerializer,
    CuratedAnswerSerializer,
    CuratedAnswerUpdateInputSerializer,
    IngestAcceptedSerializer,
    IngestChildrenAcceptedSerializer,
    SourceBatchInputSerializer,
    SourceBatchOutputSerializer,
    SourceCreateInputSerializer,
    SourceSerializer,
    SourceUpdateInputSerializer,
    SourceUploadInputSerializer,
)
from tenants.api import TenantViewSet
from tenants.models import Role

# Room for the multipart framing around a file of the maximum size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

LIST_FILTERS = [
    OpenApiParameter("bot_profile_id", OpenApiTypes.UUID, description="Only this bot's sources."),
    OpenApiParameter("parent_id", OpenApiTypes.UUID, description="Only the children of this source."),
    OpenApiParameter("include_children", OpenApiTypes.BOOL, description="List children too (default: top level)."),
]
EVENT_STREAM = event_stream(
    "text/event-stream: `source` events whose data is the source's progress snapshot "
    "(id, status, chunks_done, chunks_total, document_count, chunk_count, error_message, updated_at); "
    "`stream-open` first and `keep-alive` while nothing changes.",
    ["stream-open", "source", "keep-alive", "stream-error", "stream-reset"],
)


class SizeCappedUploadHandler(FileUploadHandler):
    """First in the upload handler chain: counts bytes as they stream in and stops the upload
    the moment it passes the cap, before the rest is stored anywhere."""

    def __init__(self, request: HttpRequest | None = None, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file


class SourceViewSet(TenantViewSet):
    """Knowledge sources of the tenant's bots. Any role reads; owners and admins change sources
    and trigger ingestion (which costs embedding calls)."""

    serializer_class = SourceSerializer
    queryset = Source.objects.all()  # for the schema's model; requests use get_queryset()
    input_serializer_classes = {
        "create": SourceCreateInputSerializer,
        "partial_update": SourceUpdateInputSerializer,
        "batch": SourceBatchInputSerializer,
        "upload": SourceUploadInputSerializer,
    }
    minimum_roles = {"children": Role.MEMBER, "events": Role.MEMBER, "tenant_events": Role.MEMBER}

    def get_queryset(self) -> Any:
        return selectors.source_list(
            tenant=self.tenant,
            bot_profile_id=uuid_query_param(self.request, "bot_profile_id"),
            parent_id=uuid_query_param(self.request, "parent_id"),
            include_children=self.request.query_params.get("include_children", "").lower() in ("1", "true", "yes"),
        )

    def get_object(self) -> Source:
        return selectors.source_get(tenant=self.tenant, source_id=self.kwargs["pk"])

    def _parent_from(self, data: dict[str, Any]) -> Source | None:
        # A parent id that does not exist (or is another tenant's) is 404, as the contract says.
        parent_id = data.get("parent_id")
        return selectors.source_get(tenant=self.tenant, source_id=parent_id) if parent_id else None

    @extend_schema(parameters=LIST_FILTERS, responses={200: SourceSerializer(many=True), **ERROR_RESPONSES})
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(responses={200: SourceSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(SourceSerializer(self.get_object()).data)

    @extend_schema(responses={201: SourceSerializer, **ERROR_RESPONSES})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        bot = bot_profile_reference(tenant=self.tenant, bot_profile_id=data.pop("bot_profile_id"))
        parent = self._parent_from(data)
        data.pop("parent_id", None)
        source = services.source_create(tenant=self.tenant, bot_profile=bot, parent=parent, **data)
        return Response(SourceSerializer(self._reloaded(source)).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={201: SourceBatchOutputSerializer, **ERROR_RESPONSES})
    @action(detail=False, methods=["post"])
    def batch(self, request: Request) -> Response:
        data = self.validated_input()
        bot = bot_profile_reference(tenant=self.tenant, bot_profile_id=data.pop("bot_profile_id"))
        parent, children = services.source_batch_create(
            tenant=self.tenant, bot_profile=bot, children=[dict(child) for child in data.pop("children")], **data
        )
        body = {
            "parent": SourceSerializer(self._reloaded(parent)).data,
            "children": SourceSerializer([self._reloaded(child) for child in children], many=True).data,
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": SourceUploadInputSerializer},
        responses={201: SourceSerializer, **ERROR_RESPONSES},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def upload(self, request: Request) -> Response:
        limit = settings.UPLOAD_MAX_BYTES
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + MULTIPART_OVERHEAD_BYTES:
            raise PayloadTooLargeError(services.upload_too_large_message())
        cap = SizeCappedUploadHandler(request._request, limit=limit)
        request._request.upload_handlers.insert(0, cap)
        request.data  # noqa: B018 - parse now, through the cap
        if cap.exceeded:
            raise PayloadTooLargeError(services.upload_too_large_message())
        data = self.validated_input()
        bot = bot_profile_reference(tenant=self.tenant, bot_profile_id=data["bot_profile_id"])
        source = services.source_upload(
            tenant=self.tenant,
            bot_profile=bot,
            uploaded=data["file"],
            name=data["name"],
            description=data["description"],
            parent=self._parent_from(data),
        )
        return Response(SourceSerializer(self._reloaded(source)).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: SourceSerializer, **ERROR_RESPONSES})
    def partial_update(self, request: Request, pk: str) -> Response:
        source = self.get_object()
        source = services.source_update(tenant=self.tenant, source=source, **self.validated_input())
        return Response(SourceSerializer(self._reloaded(source)).data)

    @extend_schema(responses={204: OpenApiResponse(description="Deactivated; vectors removed."), **ERROR_RESPONSES})
    def destroy(self, request: Request, pk: str) -> Response:
        services.source_deactivate(tenant=self.tenant, source=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: SourceSerializer(many=True), **ERROR_RESPONSES})
    @action(detail=True, methods=["get"])
    def children(self, request: Request, pk: str) -> Response:
        parent = self.get_object()
        return self.paginated(selectors.source_children(tenant=self.tenant, parent=parent))

    @extend_schema(request=None, responses={202: IngestAcceptedSerializer, **ERROR_RESPONSES})
    @action(detail=True, methods=["post"])
    def ingest(self, request: Request, pk: str) -> Response:
        message = services.source_ingest_request(tenant=self.tenant, source=self.get_object())
        return Response({"status": "accepted", "message": message}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: IngestChildrenAcceptedSerializer, **ERROR_RESPONSES})
    @action(detail=True, methods=["post"], url_path="ingest-children")
    def ingest_children(self, request: Request, pk: str) -> Response:
        enqueued = services.source_ingest_children(tenant=self.tenant, parent=self.get_object())
        body = {
            "status": "accepted",
            "message": f"Ingestion queued for {enqueued} child source(s).",
            "enqueued": enqueued,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="sources_events_stream", responses={(200, "text/event-stream"): EVENT_STREAM, **ERROR_RESPONSES}
    )
    # A browser's EventSource accepts only text/event-stream: see EventStreamNegotiation.
    @action(detail=True, methods=["get"], content_negotiation_class=EventStreamNegotiation)
    def events(self, request: Request, pk: str) -> StreamingHttpResponse:
        """Live status and progress of one source (server-sent events)."""
        source = self.get_object()
        return _event_stream(request, source_channel(self.tenant.pk, source.pk), [progress_snapshot(source)])

    @extend_schema(
        operation_id="sources_tenant_events_stream",
        responses={(200, "text/event-stream"): EVENT_STREAM, **ERROR_RESPONSES},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="events",
        url_name="tenant-events",
        content_negotiation_class=EventStreamNegotiation,
    )
    def tenant_events(self, request: Request) -> StreamingHttpResponse:
        """Live status and progress of every source of the tenant (server-sent events)."""
        return _event_stream(request, tenant_sources_channel(self.tenant.pk), [])

    def _reloaded(self, source: Source) -> Source:
        return selectors.source_get(tenant=self.tenant, source_id=source.pk)


NOT_AN_OPERATOR = (
    "Only owners and admins write curated answers, and members while the workspace lets members read every chat."
)


class CuratedAnswerViewSet(TenantViewSet):
    """Curated answers: the right answer to a question, written by the workspace's operators (owners
    and admins; members too while the workspace lets members read every chat), stored and ingested
    as a mandatory `qa` source of the bot. Any role reads them, as it reads sources."""

    serializer_class = CuratedAnswerSerializer
    queryset = CuratedAnswer.objects.all()  # for the schema's model; requests use the selectors
    input_serializer_classes = {
        "create": CuratedAnswerCreateInputSerializer,
        "partial_update": CuratedAnswerUpdateInputSerializer,
    }
    # Members may pass the role check; whether they are operators is checked by `_require_operator`.
    minimum_roles = {"create": Role.MEMBER, "partial_update": Role.MEMBER, "destroy": Role.MEMBER}

    def get_queryset(self) -> Any:
        return curated.curated_answer_list(
            tenant=self.tenant, bot_profile_id=uuid_query_param(self.request, "bot_profile_id")
        )

    def get_object(self) -> CuratedAnswer:
        return curated.curated_answer_get(tenant=self.tenant, curated_answer_id=self.kwargs["pk"])

    def _require_operator(self) -> None:
        # The people who may answer visitors in the bot's place (inbox/selectors.py) teach it too.
        if not may_operate(self.principal):
            raise ForbiddenError(NOT_AN_OPERATOR)

    @extend_schema(
        parameters=[OpenApiParameter("bot_profile_id", OpenApiTypes.UUID, description="Only this bot's answers.")],
        responses={200: CuratedAnswerSerializer(many=True), **ERROR_RESPONSES},
    )
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(responses={200: CuratedAnswerSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(CuratedAnswerSerializer(self.get_object()).data)

    @extend_schema(responses={201: CuratedAnswerSerializer, **ERROR_RESPONSES})
    def create(self, request: Request) -> Response:
        """Teach the bot: `answer` to `question`, for `bot_profile_id`. From one of the bot's answers
        (`message_id`), the bot and the question default to that chat's bot and the visitor's message
        before the answer. Ingested at once (`status` moves to `ready`, as for any source)."""
        self._require_operator()
        data = self.validated_input()
        bot_id = data.get("bot_profile_id")
        bot = bot_profile_reference(tenant=self.tenant, bot_profile_id=bot_id) if bot_id is not None else None
        message = None
        if data.get("message_id") is not None:
            message = curated.answered_message_get(principal=self.principal, message_id=data["message_id"])
            bot = bot or message.chat.bot_profile
        if bot is None:
            raise InvalidInputError.for_field("bot_profile_id", "Name the bot, or the message it answered.")
        question = data.get("question") or (curated.question_before(message) if message is not None else "")
        user = self.principal.user
        answer = curated.curated_answer_create(
            tenant=self.tenant,
            bot_profile=bot,
            question=question,
            answer=data["answer"],
            message=message,
            created_by_name=user.display_name or user.email,
        )
        # As it stands once committed: its ingestion is queued by then (or done, in-process).
        answer = curated.curated_answer_get(tenant=self.tenant, curated_answer_id=answer.pk)
        return Response(CuratedAnswerSerializer(answer).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: CuratedAnswerSerializer, **ERROR_RESPONSES})
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change the question or the answer; it is ingested again at once."""
        self._require_operator()
        curated.curated_answer_update(tenant=self.tenant, curated=self.get_object(), **self.validated_input())
        return Response(CuratedAnswerSerializer(self.get_object()).data)  # as committed: queued, or done

    @extend_schema(responses={204: OpenApiResponse(description="Deleted; vectors removed."), **ERROR_RESPONSES})
    def destroy(self, request: Request, pk: str) -> Response:
        self._require_operator()
        curated.curated_answer_delete(tenant=self.tenant, curated=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _event_stream(request: Request, channel: str, initial: list[dict[str, Any]]) -> StreamingHttpResponse:
    """django-eventstream's stream for `channel`, with the current snapshot sent right after the
    stream opens (the listener is registered by then, so no change can fall in between)."""
    response = eventstream_events(request._request, channels=[channel])
    if not isinstance(response, StreamingHttpResponse):
        return response
    upstream = response.streaming_content

    async def with_snapshot() -> Any:
        first = True
        async for part in upstream:
            yield part
            if first:
                first = False
                for snapshot in initial:
                    yield sse_encode_event(SOURCE_EVENT, snapshot, json_encode=True)

    response.streaming_content = with_snapshot()
    return response
