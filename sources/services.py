"""Writes for sources: create, batch, upload, update, delete, and ingestion requests.

The ingestion runs themselves (claiming, progress, retries, the reaper and the refresher) live in
sources/lifecycle.py; the pipeline steps in loaders.py, ingestion.py and discovery.py.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from bots.models import BotProfile
from minirag.crypto import decrypt_json, encrypt_json
from minirag.errors import (
    ConflictError,
    InvalidInputError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from minirag.safe_http.validation import validated_public_url
from minirag.sentinels import UNSET
from minirag.task_queue import QueueUnavailableError, dispatch
from minirag.vectorstore import get_vector_store
from sources.events import publish_source_event
from sources.extraction import UnsupportedFileTypeError, detect_file_type
from sources.models import (
    IN_FLIGHT_STATUSES,
    Authority,
    RefreshSchedule,
    Source,
    SourceFile,
    SourceStatus,
    SourceType,
)
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)

REFRESH_INTERVALS = {
    RefreshSchedule.HOURLY: timedelta(hours=1),
    RefreshSchedule.DAILY: timedelta(days=1),
    RefreshSchedule.WEEKLY: timedelta(weeks=1),
}
# Config keys per source type; values are validated below. Secrets are stored encrypted apart.
CONFIG_KEYS: dict[str, frozenset[str]] = {
    SourceType.TEXT: frozenset(),
    SourceType.URL: frozenset({"url"}),
    SourceType.SITEMAP: frozenset({"url", "max_pages", "path_prefix"}),
    SourceType.CRAWL: frozenset({"url", "max_pages", "max_depth", "path_prefix"}),
    SourceType.NYXCORE: frozenset({"base_url", "api_token", "limit", "authority"}),
    SourceType.UPLOAD: frozenset(),
}
SECRET_CONFIG_KEYS = frozenset({"api_token"})
MAX_CRAWL_DEPTH = 5


# --- Validation -------------------------------------------------------------------------------


def _validate_int(config: dict[str, Any], key: str, *, default: int, low: int, high: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError.for_field(f"config.{key}", f"Must be an integer between {low} and {high}.")
    return value


def validate_config(
    source_type: str,
    config: dict[str, Any] | None,
    *,
    is_group: bool = False,
    existing_secrets: dict | None = None,
    resolve_urls: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a source's config for its type. Returns (public config, secrets).

    `resolve_urls=False` checks URLs by form only, not where their host points (see
    `validated_public_url`): for pages a sitemap or crawl discovered, whose fetch checks again."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidInputError.for_field("config", "Must be an object.")
    allowed = CONFIG_KEYS.get(source_type, frozenset())
    unknown = set(config) - allowed
    if unknown:
        allowed_text = ", ".join(sorted(allowed)) or "none"
        raise InvalidInputError.for_field(
            "config",
            f"Unknown keys for a {source_type} source: {', '.join(sorted(unknown))} (allowed: {allowed_text}).",
        )
    secrets = dict(existing_secrets or {})
    public: dict[str, Any] = {}
    if is_group:
        return public, secrets
    if source_type == SourceType.URL:
        public["url"] = validated_public_url(config.get("url"), "config.url", resolve=resolve_urls)
    elif source_type in (SourceType.SITEMAP, SourceType.CRAWL):
        public["url"] = validated_public_url(config.get("url"), "config.url")
        public["max_pages"] = _validate_int(
            config, "max_pages", default=settings.CRAWL_DEFAULT_MAX_PAGES, low=1, high=settings.CRAWL_MAX_PAGES_LIMIT
        )
        if source_type == SourceType.CRAWL:
            public["max_depth"] = _validate_int(config, "max_depth", default=2, low=0, high=MAX_CRAWL_DEPTH)
        prefix = config.get("path_prefix")
        if prefix is not None:
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise InvalidInputError.for_field("config.path_prefix", "Must be a path starting with '/'.")
            public["path_prefix"] = prefix
    elif source_type == SourceType.NYXCORE:
        public["base_url"] = validated_public_url(config.get("base_url"), "config.base_url").rstrip("/")
        public["limit"] = _validate_int(config, "limit", default=10, low=1, high=50)
        authority = config.get("authority")
        if authority is not None:
            valid = {choice.value for choice in Authority}
            if not isinstance(authority, list) or not authority or not set(authority) <= valid:
                raise InvalidInputError.for_field(
                    "config.authority", f"Must be a non-empty list of: {', '.join(sorted(valid))}."
                )
            public["authority"] = authority
        token = config.get("api_token")
        if token is not None:
            if not isinstance(token, str) or not token.strip():
                raise InvalidInputError.for_field("config.api_token", "Must be a non-empty string.")
            secrets["api_token"] = token.strip()
        if not secrets.get("api_token"):
            raise InvalidInputError.for_field("config.api_token", "An API token for the search service is required.")
    return public, secrets


def _validate_content(source_type: str, content: str, *, is_group: bool) -> str:
    if source_type != SourceType.TEXT or is_group:
        if content:
            raise InvalidInputError.for_field("content", "Only text sources have content.")
        return ""
    if not content or not content.strip():
        raise InvalidInputError.for_field("content", "A text source needs content.")
    if len(content.encode("utf-8")) > settings.UPLOAD_MAX_BYTES:
        raise InvalidInputError.for_field("content", f"Must be at most {settings.UPLOAD_MAX_BYTES} bytes.")
    return content


def _validate_parent(bot: BotProfile, parent: Source | None) -> None:
    if parent is None:
        return
    if parent.bot_profile_id != bot.pk:
        raise InvalidInputError.for_field("parent_id", "The parent source belongs to another bot.")
    if parent.parent_id is not None:
        raise InvalidInputError.for_field("parent_id", "Sources nest one level deep: the parent is itself a child.")
    if not parent.is_active:
        raise InvalidInputError.for_field("parent_id", "The parent source has been deleted.")


def next_refresh_time(schedule: str, now: datetime | None = None) -> datetime | None:
    """When a scheduled source is next refreshed: one interval from now, ±10% jitter so that
    sources created together do not all refresh in the same minute."""
    interval = REFRESH_INTERVALS.get(schedule)
    if interval is None:
        return None
    jitter = interval.total_seconds() * random.uniform(-0.1, 0.1)  # noqa: S311 - not security sensitive
    return (now or timezone.now()) + interval + timedelta(seconds=jitter)


def _secrets_of(source: Source) -> dict[str, Any]:
    return decrypt_json(source.config_secrets_ciphertext) if source.config_secrets_ciphertext else {}


def source_secrets(source: Source) -> dict[str, Any]:
    """The decrypted secret config (e.g. an external service's API token), for its client only."""
    return _secrets_of(source)


# --- Create -----------------------------------------------------------------------------------


@transaction.atomic
def source_create(
    *,
    tenant: Tenant,
    bot_profile: BotProfile,
    name: str,
    source_type: str,
    description: str = "",
    config: dict[str, Any] | None = None,
    content: str = "",
    parent: Source | None = None,
    refresh_schedule: str | None = None,
    authority: str = Authority.INFORMATIONAL,
    is_group: bool = False,
    resolve_urls: bool = True,
) -> Source:
    if source_type == SourceType.UPLOAD:
        raise InvalidInputError.for_field("source_type", "Upload files with POST /v1/sources/upload.")
    if source_type == SourceType.QA:
        raise InvalidInputError.for_field("source_type", "Write curated answers with POST /v1/curated-answers.")
    _validate_parent(bot_profile, parent)
    public, secrets = validate_config(source_type, config, is_group=is_group, resolve_urls=resolve_urls)
    schedule = refresh_schedule or RefreshSchedule.NONE
    source = Source(
        tenant=tenant,
        bot_profile=bot_profile,
        parent=parent,
        name=name.strip(),
        description=description,
        source_type=source_type,
        is_group=is_group,
        config=public,
        config_secrets_ciphertext=encrypt_json(secrets) if secrets else "",
        content=_validate_content(source_type, content, is_group=is_group),
        authority=authority,
        refresh_schedule=schedule,
        next_refresh_at=next_refresh_time(schedule),
    )
    source.full_clean()
    source.save()
    return source


@transaction.atomic
def source_batch_create(
    *,
    tenant: Tenant,
    bot_profile: BotProfile,
    name: str,
    children: Sequence[dict[str, Any]],
    description: str = "",
    source_type: str = SourceType.URL,
) -> tuple[Source, list[Source]]:
    """A group and its children in one transaction: all are created, or none."""
    if not children:
        raise InvalidInputError.for_field("children", "A batch needs at least one child.")
    parent = source_create(
        tenant=tenant,
        bot_profile=bot_profile,
        name=name,
        description=description,
        source_type=source_type,
        is_group=True,
    )
    created = []
    for index, child in enumerate(children):
        try:
            created.append(source_create(tenant=tenant, bot_profile=bot_profile, parent=parent, **child))
        except InvalidInputError as exc:
            errors = {f"children.{index}.{field}": messages for field, messages in (exc.errors or {}).items()}
            raise InvalidInputError(f"children.{index}: {exc.detail}", errors=errors or None) from None
    return parent, created


@transaction.atomic
def source_upload(
    *,
    tenant: Tenant,
    bot_profile: BotProfile,
    uploaded: UploadedFile,
    name: str = "",
    description: str = "",
    parent: Source | None = None,
    ingest: bool = True,
    authority: str = Authority.INFORMATIONAL,
) -> Source:
    """Store an uploaded file as a source after checking its size and its type (by extension
    and by content), and queue its ingestion once the transaction commits (``ingest=False``
    leaves it `pending`, for the dashboard's "Ingest right away" unticked). Extraction happens
    at ingestion.

    Uploading is ingesting in MiniRAG v1, whose clients upload and then poll until `ready` or
    `error`: so the source returned is normally `queued` by the time the caller reads it again
    (`pending` only for an instant inside the transaction). A text or URL source is not queued
    when created, as in v1."""
    _validate_parent(bot_profile, parent)
    filename = safe_filename(uploaded.name)
    if uploaded.size is not None and uploaded.size > settings.UPLOAD_MAX_BYTES:
        raise PayloadTooLargeError(upload_too_large_message())
    data = uploaded.read(settings.UPLOAD_MAX_BYTES + 1)
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise PayloadTooLargeError(upload_too_large_message())
    if not data:
        raise InvalidInputError.for_field("file", "The file is empty.")
    try:
        kind = detect_file_type(data, filename)
    except UnsupportedFileTypeError as exc:
        raise InvalidInputError.for_field("file", exc.message) from None
    source = Source(
        tenant=tenant,
        bot_profile=bot_profile,
        parent=parent,
        name=(name or filename).strip()[:200],
        description=description,
        source_type=SourceType.UPLOAD,
        config={"original_filename": filename, "file_size": len(data), "file_type": kind},
        authority=authority,
    )
    source.full_clean()
    source.save()
    SourceFile.objects.create(
        tenant=tenant,
        source=source,
        filename=filename,
        content_type=kind,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    if ingest:
        # After commit, so that the worker finds the source and its file.
        queue_ingestion_on_commit(source)
    return source


def queue_ingestion_on_commit(source: Source) -> None:
    """Queue the ingestion of a `pending` source once the current transaction commits (a file
    just uploaded, a curated answer just written). Robust: what the caller saved is stored by
    then, so a failure to queue is logged (the source stays as it is), never a 500."""
    tenant_id, source_id = source.tenant_id, source.pk
    transaction.on_commit(lambda: _queue_pending_source(tenant_id=tenant_id, source_id=source_id), robust=True)


def _queue_pending_source(*, tenant_id: uuid.UUID, source_id: uuid.UUID) -> None:
    """Queue a just-saved source's ingestion (runs after the save commits). Unlike
    `source_ingest_request` it never answers 503 and never puts the source back to `pending`:
    the source is stored and the request accepted, so a broker outage only delays the work — the
    source stays `queued` and the reaper sends it again once it has waited
    INGEST_STALE_AFTER_SECONDS, as for any message that never reached a worker."""
    from sources.tasks import ingest_source  # the tasks module imports the services

    now = timezone.now()
    with tenant_scope(tenant_id):
        queued = Source.objects.filter(pk=source_id, is_active=True, status=SourceStatus.PENDING).update(
            status=SourceStatus.QUEUED, queued_at=now, ingest_attempt=0, error_message="", updated_at=now
        )
        if not queued:
            return  # already queued by an explicit /ingest, or deleted in the meantime
        publish_source_event(Source.objects.get(pk=source_id))
        try:
            dispatch(ingest_source, tenant_id=str(tenant_id), source_id=str(source_id), attempt=1)
        except QueueUnavailableError:
            logger.warning("Could not queue the ingestion of source %s; the reaper will send it.", source_id)


def safe_filename(name: str | None) -> str:
    """An uploaded file's name as it is stored and shown: its last path component (either kind
    of slash), without control or other non-printable characters (NUL included, which
    PostgreSQL text refuses), at most 255 characters keeping the extension; "upload" if nothing
    is left. Django's multipart parser already does most of this for HTTP uploads; this also
    covers every other caller."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(char for char in base if char.isprintable()).strip()
    if base in ("", ".", ".."):
        return "upload"
    if len(base) > 255:
        stem, dot, extension = base.rpartition(".")
        extension = extension[:16] if dot and stem else ""
        base = f"{base[: 255 - len(extension) - 1]}.{extension}" if extension else base[:255]
    return base


def upload_too_large_message() -> str:
    return f"The file is larger than the {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB upload limit."


# --- Update and delete ------------------------------------------------------------------------


@transaction.atomic
def source_update(
    *,
    tenant: Tenant,
    source: Source,
    name: str = UNSET,
    description: str = UNSET,
    config: dict[str, Any] = UNSET,
    content: str = UNSET,
    is_active: bool = UNSET,
    refresh_schedule: str | None = UNSET,
    authority: str = UNSET,
) -> Source:
    """Partial update. Changes to what is indexed (content, config) take effect at the next
    ingestion; names and authority reach the index at once; deactivating removes the vectors.
    A curated answer's question, answer, name and authority are changed as a curated answer
    (sources/curated.py), which keeps them together and re-ingests it."""
    if source.source_type == SourceType.QA:
        managed = {"name": name, "config": config, "content": content, "authority": authority}
        for field, value in managed.items():
            if value is not UNSET:
                raise InvalidInputError.for_field(
                    field, f"A curated answer's {field} is changed with PATCH /v1/curated-answers/{source.pk}."
                )
    if (content is not UNSET or config is not UNSET) and source.is_in_flight:
        raise ConflictError("The source is being ingested; change its content or config when it is done.")
    if config is not UNSET:
        if source.source_type == SourceType.UPLOAD:
            raise InvalidInputError.for_field("config", "The config of an uploaded file is managed by the server.")
        source.config, secrets = validate_config(
            source.source_type, config, is_group=source.is_group, existing_secrets=_secrets_of(source)
        )
        source.config_secrets_ciphertext = encrypt_json(secrets) if secrets else ""
    if content is not UNSET:
        source.content = _validate_content(source.source_type, content, is_group=source.is_group)
    if name is not UNSET:
        source.name = name.strip()
    if description is not UNSET:
        source.description = description
    if authority is not UNSET:
        source.authority = authority
    if refresh_schedule is not UNSET:
        source.refresh_schedule = refresh_schedule or RefreshSchedule.NONE
        source.next_refresh_at = next_refresh_time(source.refresh_schedule)
    reactivating = is_active is True and not source.is_active
    if is_active is False and source.is_active:
        return source_deactivate(tenant=tenant, source=source)
    if reactivating:
        source.is_active = True
        source.status = SourceStatus.PENDING  # its vectors were removed: ingest it again
        source.chunk_count = source.chunks_done = source.chunks_total = 0
    source.full_clean()
    source.save()
    if name is not UNSET or authority is not UNSET:
        payload = {"source_name": source.name, "authority": source.authority}
        transaction.on_commit(lambda: set_indexed_payload(source, payload))
    publish_source_event(source)
    return source


def set_indexed_payload(source: Source, payload: dict[str, Any]) -> None:
    """Write `payload` into every indexed point of `source`, in every collection (no re-embedding)."""
    store = get_vector_store()
    for collection in store.collections():
        store.set_payload(collection, payload, tenant_id=source.tenant_id, source_ids=[source.id])


@transaction.atomic
def source_deactivate(*, tenant: Tenant, source: Source) -> Source:
    """Delete (soft): the source and its children stop being listed and searched, any running
    ingestion is disowned, and their vectors are removed. Chunks stay in the database with their
    vectors, so reactivating and re-ingesting costs no embedding calls."""
    affected = [source, *Source.objects.filter(tenant=tenant, parent=source, is_active=True)]
    ids = [item.pk for item in affected]
    Source.objects.filter(tenant=tenant, pk__in=ids).update(
        is_active=False,
        chunk_count=0,
        chunks_done=0,
        ingest_run_id=None,
        status=SourceStatus.PENDING,
        updated_at=timezone.now(),
    )
    transaction.on_commit(lambda: remove_source_vectors(tenant_id=tenant.pk, source_ids=ids))
    source.refresh_from_db()
    publish_source_event(source)
    return source


def remove_source_vectors(*, tenant_id: Any, source_ids: Sequence[Any]) -> None:
    if source_ids:
        get_vector_store().delete(tenant_id=tenant_id, source_ids=list(source_ids))


# --- Ingestion requests -----------------------------------------------------------------------


def source_ingest_request(*, tenant: Tenant, source: Source) -> str:
    """Queue an ingestion (202). 409 if one is already queued or running, 503 (and nothing
    changed) if the queue is down. Returns a message for the caller."""
    from sources.tasks import ingest_source  # the tasks module imports the services

    if not source.is_active:
        raise ConflictError("The source has been deleted; reactivate it (is_active: true) first.")
    # What queueing changes, to be put back exactly as it was if the queue turns out to be down.
    previous = {
        field: getattr(source, field)
        for field in ("status", "queued_at", "ingest_attempt", "error_message", "updated_at")
    }
    now = timezone.now()
    with transaction.atomic():
        queued = (
            Source.objects.filter(tenant=tenant, pk=source.pk, is_active=True)
            .exclude(status__in=IN_FLIGHT_STATUSES)
            .update(status=SourceStatus.QUEUED, queued_at=now, ingest_attempt=0, error_message="", updated_at=now)
        )
    if not queued:
        raise ConflictError("The source is already being ingested.")
    source.refresh_from_db()
    # Announced before the hand-off: a worker (or the in-process runner) may be done before
    # `dispatch` returns, and a `queued` event sent after its `ready` would be the last word.
    publish_source_event(source)
    try:
        dispatch(ingest_source, tenant_id=str(tenant.pk), source_id=str(source.pk), attempt=1)
    except QueueUnavailableError:
        Source.objects.filter(pk=source.pk, status=SourceStatus.QUEUED, queued_at=now).update(**previous)
        source.refresh_from_db()
        publish_source_event(source)
        raise ServiceUnavailableError("The task queue is unavailable; nothing was queued. Try again shortly.") from None
    if source.is_group:
        return "Ingestion queued for the group's children."
    return "Ingestion queued."


def source_ingest_children(*, tenant: Tenant, parent: Source) -> int:
    """Queue every active child that is not already queued or running. Returns how many."""
    enqueued = 0
    for child in Source.objects.filter(tenant=tenant, parent=parent, is_active=True).exclude(
        status__in=IN_FLIGHT_STATUSES
    ):
        try:
            source_ingest_request(tenant=tenant, source=child)
        except ConflictError:
            continue  # started meanwhile
        enqueued += 1
    return enqueued
