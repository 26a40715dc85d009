"""Ingestion runs: idempotent claims, transient vs permanent failures, the reaper, scheduled
refresh, and stale runs that must not overwrite newer results."""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import LocalSite, TenantWorld
from minirag.celery import app as celery_app
from minirag.safe_http import destinations
from sources import lifecycle
from sources.ingestion import StaleRunError, index_documents
from sources.loaders import LoadedDocument
from sources.models import Chunk, Source, SourceStatus
from sources.services import next_refresh_time, source_create
from sources.tasks import ingest_source
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


def url_source(world: TenantWorld, url: str) -> Source:
    with tenant_scope(world.tenant):
        return source_create(
            tenant=world.tenant, bot_profile=world.bot, name="Page", source_type="url", config={"url": url}
        )


def set_status(world: TenantWorld, source: Source, **fields: Any) -> None:
    with tenant_scope(world.tenant):
        Source.objects.filter(pk=source.pk).update(**fields)


def run(world: TenantWorld, source: Source, attempt: int = 1) -> lifecycle.RunOutcome:
    with tenant_scope(world.tenant):  # as TenantTask does for the worker
        return lifecycle.run_ingestion(tenant=world.tenant, source_id=source.pk, attempt=attempt)


def reload(world: TenantWorld, source: Source) -> Source:
    with tenant_scope(world.tenant):
        return Source.objects.get(pk=source.pk)


def test_a_duplicate_task_message_is_a_no_op(alpha: TenantWorld) -> None:
    source = alpha.text_source
    set_status(alpha, source, status=SourceStatus.QUEUED)
    kwargs = {"tenant_id": str(alpha.tenant.pk), "source_id": str(source.pk)}
    assert ingest_source(**kwargs)["status"] == "ready"
    assert ingest_source(**kwargs) == {"status": "skipped", "detail": "not queued, or already taken by another run"}


def test_a_transient_failure_is_retried_then_gives_up(
    alpha: TenantWorld, site: LocalSite, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.INGEST_MAX_ATTEMPTS = 3
    site.add("/flaky", "busy", "text/plain", status=503)
    source = url_source(alpha, site.url("/flaky"))
    set_status(alpha, source, status=SourceStatus.QUEUED)
    outcome = run(alpha, source, attempt=1)
    assert outcome.status == "retrying"
    retrying = reload(alpha, source)
    assert retrying.status == "queued"
    assert "Temporary problem" in retrying.error_message and "attempt 2 of 3" in retrying.error_message

    with django_capture_on_commit_callbacks(execute=True):  # the retries run (inline, countdown skipped)
        run(alpha, source, attempt=2)
    failed = reload(alpha, source)
    assert failed.status == "error"
    assert "503" in failed.error_message and "gave up after 3 attempts" in failed.error_message
    assert site.requests.count("/flaky") == 3

    site.add("/flaky", "<html><body><p>Back up and serving the full text of the page now.</p></body></html>")
    set_status(alpha, source, status=SourceStatus.QUEUED)
    assert run(alpha, source).status == "ready"
    assert reload(alpha, source).error_message == ""


def test_a_permanent_failure_is_not_retried(alpha: TenantWorld, site: LocalSite) -> None:
    source = url_source(alpha, site.url("/gone"))
    set_status(alpha, source, status=SourceStatus.QUEUED)
    assert run(alpha, source).status == "error"
    assert site.requests.count("/gone") == 1
    assert "404" in reload(alpha, source).error_message


def test_a_domain_that_does_not_exist_is_an_error_at_once(
    alpha: TenantWorld, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    looked_up: list[str] = []

    def nxdomain(host: str, port: int) -> list[str]:
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(destinations, "resolve", nxdomain)
    source = url_source(alpha, "https://docs.example-typo.invalid/page")  # saved: a typo is not an attack
    set_status(alpha, source, status=SourceStatus.QUEUED)
    assert run(alpha, source).status == "error"
    failed = reload(alpha, source)
    assert failed.status == "error" and "Temporary" not in failed.error_message
    assert "the domain docs.example-typo.invalid does not exist" in failed.error_message
    assert looked_up.count("docs.example-typo.invalid") == 2  # once when saved, once by the only attempt


def test_a_resolver_outage_stays_a_temporary_problem(
    alpha: TenantWorld, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False

    def servfail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(destinations, "resolve", servfail)
    source = url_source(alpha, "https://docs.example.com/page")
    set_status(alpha, source, status=SourceStatus.QUEUED)
    assert run(alpha, source).status == "retrying"
    assert "Temporary problem" in reload(alpha, source).error_message


def test_retry_delays_grow_with_jitter() -> None:
    for attempt, base in ((1, 15), (2, 45), (3, 135)):
        delays = [lifecycle.retry_delay(attempt) for _ in range(50)]
        assert all(base * 0.75 <= delay <= base * 1.25 for delay in delays)
        assert len(set(delays)) > 1


def test_the_reaper_requeues_a_dead_run_and_the_source_recovers(alpha: TenantWorld) -> None:
    source = alpha.text_source
    stale = timezone.now() - timedelta(hours=1)
    set_status(
        alpha, source, status=SourceStatus.PROCESSING, heartbeat_at=stale, ingest_run_id=uuid.uuid4(), ingest_attempt=1
    )
    assert lifecycle.reap_stuck_sources() == 1
    recovered = reload(alpha, source)
    assert recovered.status == "ready" and recovered.chunk_count > 0  # requeued and ingested (inline in tests)


def test_the_reaper_gives_up_on_a_run_that_keeps_dying(alpha: TenantWorld, settings: Any) -> None:
    source = alpha.text_source
    set_status(
        alpha,
        source,
        status=SourceStatus.PROCESSING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
        ingest_attempt=settings.INGEST_MAX_ATTEMPTS,
    )
    assert lifecycle.reap_stuck_sources() == 1
    failed = reload(alpha, source)
    assert failed.status == "error" and "interrupted repeatedly" in failed.error_message


def test_the_reaper_resends_a_lost_queued_message_but_leaves_fresh_ones(alpha: TenantWorld) -> None:
    source = alpha.text_source
    set_status(alpha, source, status=SourceStatus.QUEUED, queued_at=timezone.now())
    assert lifecycle.reap_stuck_sources() == 0
    set_status(alpha, source, queued_at=timezone.now() - timedelta(hours=1))
    assert lifecycle.reap_stuck_sources() == 1
    assert reload(alpha, source).status == "ready"


def test_a_live_run_is_left_alone(alpha: TenantWorld) -> None:
    set_status(alpha, alpha.text_source, status=SourceStatus.PROCESSING, heartbeat_at=timezone.now())
    assert lifecycle.reap_stuck_sources() == 0
    assert reload(alpha, alpha.text_source).status == "processing"


def test_scheduled_refresh_runs_when_due_with_jitter(alpha: TenantWorld) -> None:
    source = alpha.text_source
    now = timezone.now()
    for schedule, hours in (("hourly", 1), ("daily", 24), ("weekly", 168)):
        times = [next_refresh_time(schedule, now) for _ in range(30)]
        assert all(timedelta(hours=hours * 0.9) <= t - now <= timedelta(hours=hours * 1.1) for t in times)
        assert len(set(times)) > 1
    assert next_refresh_time("none", now) is None

    set_status(alpha, source, refresh_schedule="daily", next_refresh_at=now + timedelta(minutes=5))
    assert lifecycle.refresh_due_sources() == 0
    before = reload(alpha, source).last_refreshed_at
    set_status(alpha, source, next_refresh_at=now - timedelta(minutes=1))
    assert lifecycle.refresh_due_sources() == 1
    refreshed = reload(alpha, source)
    assert refreshed.last_refreshed_at > before
    assert timedelta(hours=21) < refreshed.next_refresh_at - now < timedelta(hours=27)
    assert lifecycle.refresh_due_sources() == 0  # not due again


def test_a_stale_run_cannot_overwrite_a_newer_one(alpha: TenantWorld) -> None:
    source = alpha.text_source
    set_status(alpha, source, status=SourceStatus.QUEUED)
    with tenant_scope(alpha.tenant):
        claimed = lifecycle.claim(tenant=alpha.tenant, source_id=source.pk, attempt=1)
        assert claimed is not None
        running, old_run = claimed
        before = set(Chunk.objects.filter(source=source).values_list("pk", flat=True))
        Source.objects.filter(pk=source.pk).update(ingest_run_id=uuid.uuid4())  # a newer run took over
        with pytest.raises(StaleRunError):
            index_documents(
                running,
                [LoadedDocument("Entirely new text that must not land.")],
                run_id=old_run,
                on_progress=lifecycle.ProgressReporter(running, old_run),
            )
        assert set(Chunk.objects.filter(source=source).values_list("pk", flat=True)) == before


def use_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app._pool = None  # connection pools are built lazily from the configured URL
    celery_app.amqp._producer_pool = None


def test_when_the_queue_is_down_ingest_answers_503_and_changes_nothing(alpha: TenantWorld, settings: Any) -> None:
    settings.TASKS_IN_PROCESS = False
    previous = celery_app.conf.broker_url
    use_broker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        response = alpha.client("admin").post(f"/v1/sources/{alpha.text_source.pk}/ingest")
    finally:
        use_broker(previous)
    assert response.status_code == 503
    assert "queue is unavailable" in response.json()["detail"]
    assert reload(alpha, alpha.text_source).status == "ready"
