"""Ingestion runs: claiming a source, reporting progress, finishing, retrying, and the two
periodic jobs (the reaper of stuck runs and the scheduled refresher).

Status moves `pending → queued → processing → ready | error`. A run claims a source with a
conditional update (queued → processing, or processing whose heartbeat went stale) and a fresh
`ingest_run_id`; every later write of that run is conditional on the id, so a duplicate message
or a zombie worker can never clobber a newer run. Transient failures (network, provider rate
limits, vector store outages) are retried with exponential backoff and jitter; permanent ones
(a bad file, a blocked URL) end in `error` with a readable message at once.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from minirag.model_gateway import ModelError
from minirag.safe_http import FetchError
from minirag.task_queue import QueueUnavailableError, dispatch, enqueue_on_commit
from minirag.vectorstore import is_vector_store_outage, vector_store_error_message
from sources import discovery
from sources.events import publish_source_event
from sources.extraction import ExtractionError
from sources.ingestion import IngestReport, StaleRunError, index_documents
from sources.loaders import LoadedDocument, load_documents
from sources.models import IN_FLIGHT_STATUSES, RefreshSchedule, Source, SourceStatus, SourceType
from sources.services import next_refresh_time, remove_source_vectors, source_ingest_request
from tenants.models import Tenant
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from webhooks import events as webhook_events

logger = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_SECONDS = 0.5
RETRY_BASE_SECONDS = 15
ProgressListener = Callable[[Source], None]
_progress_listeners: list[ProgressListener] = []


@contextmanager
def listening_to_progress(listener: ProgressListener) -> Iterator[None]:
    """Call `listener(source)` on every progress write of runs in this process (the `ingest`
    command draws its progress bars with it)."""
    _progress_listeners.append(listener)
    try:
        yield
    finally:
        _progress_listeners.remove(listener)


@dataclass(frozen=True)
class RunOutcome:
    status: str
    detail: str = ""


def retry_delay(attempt: int) -> float:
    """15 s, 45 s, 2¼ min, ~7 min... with ±25% jitter so retries of many sources spread out."""
    base = RETRY_BASE_SECONDS * 3 ** max(0, attempt - 1)
    return base * random.uniform(0.75, 1.25)  # noqa: S311 - not security sensitive


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, FetchError | ModelError):
        return exc.transient
    return is_vector_store_outage(exc) or isinstance(exc, ConnectionError | TimeoutError)


def _is_expected(exc: Exception) -> bool:
    """A failure with a readable cause (the tenant can act on it, or it passes by itself), as
    opposed to a bug, which is logged with its traceback and reported as unexpected."""
    return isinstance(exc, FetchError | ModelError | ExtractionError) or is_vector_store_outage(exc)


def _readable(exc: Exception) -> str:
    if is_vector_store_outage(exc):
        return vector_store_error_message(exc)[:2000]
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message[:2000]


# --- Claim, progress, finish ------------------------------------------------------------------


def claim(*, tenant: Tenant, source_id: Any, attempt: int) -> tuple[Source, uuid.UUID] | None:
    """Take the source for a new run, or None if it is not ours to take (already running
    elsewhere, finished, deleted)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS)
    run_id = uuid.uuid4()
    taken = (
        Source.objects.filter(tenant=tenant, pk=source_id, is_active=True)
        .filter(Q(status=SourceStatus.QUEUED) | Q(status=SourceStatus.PROCESSING, heartbeat_at__lt=stale))
        .update(
            status=SourceStatus.PROCESSING,
            ingest_run_id=run_id,
            ingest_attempt=attempt,
            heartbeat_at=now,
            chunks_done=0,
            chunks_total=0,
            ocr_pages_done=0,
            ocr_pages_total=0,
            updated_at=now,
        )
    )
    if not taken:
        return None
    source = Source.objects.select_related("bot_profile").get(pk=source_id)
    publish_source_event(source)
    return source, run_id


class ProgressReporter:
    """Writes progress (and the heartbeat) at most every half second, and stops the run by
    raising StaleRunError as soon as the source is no longer this run's. Called as
    ``reporter(chunks done, chunks total)`` while chunks are embedded, and
    ``reporter.ocr_pages(pages read, pages)`` while scanned pages are read before that (a page
    takes seconds, so the heartbeat keeps a long OCR run from looking dead to the reaper)."""

    def __init__(self, source: Source, run_id: uuid.UUID) -> None:
        self.source = source
        self.run_id = run_id
        self._last_write = 0.0

    def __call__(self, done: int, total: int) -> None:
        self._write(done < total, chunks_done=done, chunks_total=total)

    def ocr_pages(self, done: int, total: int) -> None:
        self._write(done < total, ocr_pages_done=done, ocr_pages_total=total)

    def _write(self, unfinished: bool, **progress: int) -> None:
        now = time.monotonic()
        if unfinished and now - self._last_write < PROGRESS_WRITE_INTERVAL_SECONDS:
            return
        self._last_write = now
        stamp = timezone.now()
        written = Source.objects.filter(pk=self.source.pk, ingest_run_id=self.run_id).update(
            **progress, heartbeat_at=stamp, updated_at=stamp
        )
        if not written:
            raise StaleRunError(f"Source {self.source.pk} is no longer owned by run {self.run_id}.")
        for field, value in progress.items():
            setattr(self.source, field, value)
        self.source.updated_at = stamp
        publish_source_event(self.source)
        for listener in _progress_listeners:
            listener(self.source)


def _finish(source: Source, run_id: uuid.UUID, **fields: Any) -> bool:
    now = timezone.now()
    fields.setdefault("updated_at", now)
    written = Source.objects.filter(pk=source.pk, ingest_run_id=run_id).update(ingest_run_id=None, **fields)
    if written:
        source.refresh_from_db()
        publish_source_event(source)
        for listener in _progress_listeners:
            listener(source)
    return bool(written)


def _mark_ready(source: Source, run_id: uuid.UUID, *, documents: int, chunks: int, is_parent: bool = False) -> None:
    """The run succeeded. A page's or file's `source.ingested` goes out with the new status; a
    parent's waits until its pages have finished (`_announce_parent_if_settled`)."""
    now = timezone.now()
    with transaction.atomic():
        finished = _finish(
            source,
            run_id,
            status=SourceStatus.READY,
            error_message="",
            document_count=documents,
            chunk_count=chunks,
            chunks_done=chunks,
            chunks_total=chunks,
            last_refreshed_at=now,
            next_refresh_at=next_refresh_time(source.refresh_schedule, now),
            ingest_attempt=0,
        )
        if finished and not is_parent:
            webhook_events.source_ingested(source)
    if finished and source.parent_id:
        _announce_parent_if_settled(source.parent_id)


def _mark_error(source: Source, run_id: uuid.UUID, message: str) -> None:
    with transaction.atomic():
        finished = _finish(source, run_id, status=SourceStatus.ERROR, error_message=message, ingest_attempt=0)
        if finished:
            webhook_events.source_failed(source, message)
    if finished and source.parent_id:
        _announce_parent_if_settled(source.parent_id)


def _announce_parent_if_settled(parent_id: uuid.UUID) -> None:
    """Once none of a sitemap, crawl or batch parent's pages is queued or processing any more,
    send the parent's event, with its pages' totals, once per parent run. Each page checks after
    its own status is committed, and the parent after raising its flag, so whoever finishes last
    sees everything finished; the flag is lowered by exactly one of them."""
    pages = Source.objects.filter(parent_id=parent_id, is_active=True)
    if pages.filter(status__in=IN_FLIGHT_STATUSES).exists():
        return
    with transaction.atomic():
        if not Source.objects.filter(pk=parent_id, children_event_pending=True).update(children_event_pending=False):
            return  # another page announced it, or the parent's run has not finished discovering
        parent = Source.objects.get(pk=parent_id)
        ready, failed = Q(status=SourceStatus.READY), Q(status=SourceStatus.ERROR)
        totals = pages.aggregate(
            pages=Count("pk"),
            failed=Count("pk", filter=failed),
            documents=Sum("document_count", filter=ready),
            chunks=Sum("chunk_count", filter=ready),
        )
        counts = {"children_count": totals["pages"], "failed_children": totals["failed"]}
        if totals["pages"] and totals["failed"] == totals["pages"]:
            first_error = pages.filter(failed).order_by("name").values_list("error_message", flat=True).first()
            webhook_events.source_failed(
                parent, f"All {totals['pages']} pages failed. The first: {first_error}", **counts
            )
        else:
            parent.document_count, parent.chunk_count = totals["documents"] or 0, totals["chunks"] or 0
            webhook_events.source_ingested(parent, **counts)


# --- The run ----------------------------------------------------------------------------------


def run_ingestion(*, tenant: Tenant, source_id: Any, attempt: int = 1) -> RunOutcome:
    """The body of the ingest task. Never raises for expected failures: it records them."""
    claimed = claim(tenant=tenant, source_id=source_id, attempt=attempt)
    if claimed is None:
        return RunOutcome("skipped", "not queued, or already taken by another run")
    source, run_id = claimed
    try:
        report = _ingest(tenant, source, run_id)
    except Exception as exc:  # noqa: BLE001 - every failure ends in a recorded state
        if not Source.objects.filter(pk=source.pk, is_active=True).exists():
            # Deleted while running — deactivated, or its row gone (a curated answer is deleted,
            # not deactivated), whatever that made fail: take back anything this run indexed.
            remove_source_vectors(tenant_id=tenant.pk, source_ids=[source.pk])
            return RunOutcome("stale", "the source was deleted during the run")
        if isinstance(exc, StaleRunError):
            return RunOutcome("stale", "the source was taken over by another run")
        return _handle_failure(tenant, source, run_id, attempt, exc)
    return RunOutcome("ready", f"{report.chunks} chunks ({report.embedded} embedded, {report.reused} reused)")


def _ingest(tenant: Tenant, source: Source, run_id: uuid.UUID) -> IngestReport | RunReport:
    if source.source_type in (SourceType.SITEMAP, SourceType.CRAWL) or source.is_group:
        return _ingest_parent(tenant, source, run_id)
    if source.source_type == SourceType.NYXCORE:
        from sources.nyxcore import check_connection  # chat-time client lives with its protocol

        summary = check_connection(source)
        _mark_ready(source, run_id, documents=summary.documents, chunks=summary.chunks)
        return RunReport(chunks=summary.chunks)
    reporter = ProgressReporter(source, run_id)
    documents = load_documents(source, on_ocr_progress=reporter.ocr_pages)
    _name_after_title(source, documents)
    report = index_documents(source, documents, run_id=run_id, on_progress=reporter)
    _mark_ready(source, run_id, documents=report.documents, chunks=report.chunks)
    return report


def _name_after_title(source: Source, documents: list[LoadedDocument]) -> None:
    """A web page added without a name is named by its address (the dashboard's default): once read,
    it takes the page's title. Only then, and only if nobody renamed it meanwhile."""
    url = (source.config or {}).get("url", "")
    if source.source_type != SourceType.URL or source.parent_id is not None or source.name != url[:200]:
        return
    title = next((document.title.strip() for document in documents if document.title.strip()), "")
    if title:
        Source.objects.filter(pk=source.pk, name=source.name).update(name=title[:200])
        source.name = title[:200]


@dataclass(frozen=True)
class RunReport:
    chunks: int
    embedded: int = 0
    reused: int = 0


def _ingest_parent(tenant: Tenant, source: Source, run_id: uuid.UUID) -> RunReport:
    """A sitemap or crawl discovers its pages and syncs them as child URL sources; a batch group
    just has its children ingested. Children are then queued; the parent's status, as the API
    shows it, aggregates theirs."""
    if not source.is_group:
        config = source.config
        if source.source_type == SourceType.SITEMAP:
            urls = discovery.discover_from_sitemap(
                config["url"], max_pages=config["max_pages"], path_prefix=config.get("path_prefix")
            )
        else:
            urls = discovery.discover_by_crawling(
                config["url"],
                max_pages=config["max_pages"],
                max_depth=config["max_depth"],
                path_prefix=config.get("path_prefix"),
            )
        sync_child_pages(tenant=tenant, parent=source, urls=urls)
    _mark_ready(source, run_id, documents=0, chunks=0, is_parent=True)
    children = Source.objects.filter(tenant=tenant, parent=source, is_active=True).exclude(
        status__in=IN_FLIGHT_STATUSES
    )
    for child in children:
        try:
            source_ingest_request(tenant=tenant, source=child)
        except Exception:
            logger.warning("Could not queue child source %s.", child.pk, exc_info=True)
    # Only now that every page is queued may the last one to finish announce the parent (or the
    # parent itself, if they all finished already, or there are none).
    Source.objects.filter(pk=source.pk).update(children_event_pending=True)
    _announce_parent_if_settled(source.pk)
    return RunReport(chunks=0)


@transaction.atomic
def sync_child_pages(*, tenant: Tenant, parent: Source, urls: list[str]) -> None:
    """Make the parent's URL children match `urls`: create new pages, reactivate returning ones,
    deactivate (and un-index) pages that disappeared."""
    from sources.services import source_create, source_deactivate

    children = {child.config.get("url"): child for child in Source.objects.filter(tenant=tenant, parent=parent)}
    wanted = set(urls)
    for url in urls:
        child = children.get(url)
        if child is None:
            source_create(
                tenant=tenant,
                bot_profile=parent.bot_profile,
                parent=parent,
                name=url[:200],
                source_type=SourceType.URL,
                config={"url": url},
                authority=parent.authority,
                # Discovered on the parent's (checked) host: a page whose host now points somewhere
                # private is still listed, and its own fetch ends it in `error` with the reason.
                resolve_urls=False,
            )
        elif not child.is_active:
            Source.objects.filter(pk=child.pk).update(is_active=True, status=SourceStatus.PENDING)
    for url, child in children.items():
        if url not in wanted and child.is_active:
            source_deactivate(tenant=tenant, source=child)


def _handle_failure(tenant: Tenant, source: Source, run_id: uuid.UUID, attempt: int, exc: Exception) -> RunOutcome:
    from sources.tasks import ingest_source

    message = _readable(exc)
    if _is_transient(exc) and attempt < settings.INGEST_MAX_ATTEMPTS:
        delay = retry_delay(attempt)
        requeued = _finish(
            source,
            run_id,
            status=SourceStatus.QUEUED,
            queued_at=timezone.now(),
            error_message=f"Temporary problem: {message} Retrying in {delay:.0f} s "
            f"(attempt {attempt + 1} of {settings.INGEST_MAX_ATTEMPTS}).",
        )
        if requeued:
            enqueue_on_commit(
                ingest_source, countdown=delay, tenant_id=str(tenant.pk), source_id=str(source.pk), attempt=attempt + 1
            )
        logger.info("Ingestion of %s will be retried: %s", source.pk, message)
        return RunOutcome("retrying", message)
    if not _is_expected(exc):
        logger.exception("Ingestion of source %s failed unexpectedly.", source.pk)
        message = f"Ingestion failed unexpectedly ({type(exc).__name__}). The operators have been notified in the logs."
    elif _is_transient(exc):
        message = f"{message} (gave up after {attempt} attempts)"
    _mark_error(source, run_id, message)
    return RunOutcome("error", message)


# --- Periodic jobs ----------------------------------------------------------------------------


def reap_stuck_sources(now: datetime | None = None) -> int:
    """Requeue runs whose worker died (no heartbeat for INGEST_STALE_AFTER_SECONDS) and queued
    sources whose message never reached a worker; give up after INGEST_MAX_ATTEMPTS."""
    from sources.tasks import ingest_source

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS)
    with tenant_scope_disabled("reaper: finds stuck ingestions of every tenant"):
        stuck = list(
            Source.objects.filter(is_active=True)
            .filter(
                Q(status=SourceStatus.PROCESSING, heartbeat_at__lt=stale)
                | Q(status=SourceStatus.QUEUED, queued_at__lt=stale)
            )
            .values_list("pk", "tenant_id", "status", "ingest_attempt")
        )
    reaped = 0
    for source_id, tenant_id, status, attempt in stuck:
        with tenant_scope(tenant_id):
            if status == SourceStatus.PROCESSING and attempt >= settings.INGEST_MAX_ATTEMPTS:
                changed = Source.objects.filter(pk=source_id, status=status, heartbeat_at__lt=stale).update(
                    status=SourceStatus.ERROR,
                    ingest_run_id=None,
                    error_message="Ingestion was interrupted repeatedly (the worker stopped); giving up. "
                    "Fix the cause and ingest again.",
                    updated_at=now,
                )
                next_attempt = None
            else:
                # A dead run is requeued as its next attempt; a lost message is simply sent again.
                next_attempt = attempt + 1 if status == SourceStatus.PROCESSING else max(attempt, 1)
                changed = (
                    Source.objects.filter(pk=source_id, status=status)
                    .filter(Q(heartbeat_at__lt=stale) if status == SourceStatus.PROCESSING else Q(queued_at__lt=stale))
                    .update(status=SourceStatus.QUEUED, queued_at=now, ingest_run_id=None, updated_at=now)
                )
            if not changed:
                continue
            reaped += 1
            source = Source.objects.get(pk=source_id)
            publish_source_event(source)
            if next_attempt is None:
                webhook_events.source_failed(source, source.error_message)
                if source.parent_id:
                    _announce_parent_if_settled(source.parent_id)
            if next_attempt is not None:
                try:
                    dispatch(ingest_source, tenant_id=str(tenant_id), source_id=str(source_id), attempt=next_attempt)
                except QueueUnavailableError:
                    logger.warning("Reaper could not requeue %s; it will try again.", source_id)
    if reaped:
        logger.info("Reaper requeued or failed %d stuck source(s).", reaped)
    return reaped


def refresh_due_sources(now: datetime | None = None) -> int:
    """Queue a re-ingestion of every active source whose scheduled refresh is due. Each due
    source is claimed by moving its next refresh time first, so two schedulers never double it."""
    now = now or timezone.now()
    with tenant_scope_disabled("refresher: finds due sources of every tenant"):
        due = list(
            Source.objects.filter(is_active=True, next_refresh_at__lte=now)
            .exclude(refresh_schedule=RefreshSchedule.NONE)
            .exclude(status__in=IN_FLIGHT_STATUSES)
            .values_list("pk", "tenant_id", "refresh_schedule", "next_refresh_at")
        )
    queued = 0
    for source_id, tenant_id, schedule, due_at in due:
        with tenant_scope(tenant_id):
            claimed = Source.objects.filter(pk=source_id, next_refresh_at=due_at).update(
                next_refresh_at=next_refresh_time(schedule, now)
            )
            if not claimed:
                continue
            source = Source.objects.select_related("tenant").get(pk=source_id)
            try:
                source_ingest_request(tenant=source.tenant, source=source)
                queued += 1
            except Exception:
                logger.warning("Scheduled refresh of %s could not be queued.", source_id, exc_info=True)
    return queued
