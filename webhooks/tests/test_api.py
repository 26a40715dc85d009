"""The webhooks API: registering endpoints, secrets shown once and stored encrypted, validation,
the SSRF guard at save time, roles, the test ping, the delivery log and redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import TenantWorld
from minirag.crypto import decrypt_text
from minirag.safe_http import destinations
from tenants.tenancy import tenant_scope
from webhooks.delivery import REDISPATCH_AFTER_SECONDS, send_due_deliveries
from webhooks.models import DeliveryState, Webhook, WebhookDelivery
from webhooks.services import MAX_WEBHOOKS_PER_TENANT
from webhooks.signing import verify
from webhooks.tests.conftest import Receiver, ask, assert_authentic, deliveries, register, reload

pytestmark = pytest.mark.django_db

ALL_EVENTS = ["source.ingested", "source.failed", "chat.message"]


def create(world: TenantWorld, who: str = "admin", **body: Any) -> Any:
    return world.client(who).post("/v1/webhooks", {"events": ALL_EVENTS, **body}, format="json")


def test_creating_a_webhook_shows_its_secret_once_and_stores_it_encrypted(alpha: TenantWorld) -> None:
    response = create(alpha, url="https://hooks.example.com/minirag", description=" CRM sync ")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {
        "id", "tenant_id", "url", "events", "is_active", "description", "has_secret", "created_at", "updated_at",
    }  # fmt: skip
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["has_secret"] is True and body["is_active"] is True and body["description"] == "CRM sync"
    assert body["events"] == ALL_EVENTS and body["tenant_id"] == str(alpha.tenant.pk)

    with tenant_scope(alpha.tenant):
        stored = Webhook.objects.get(pk=body["id"])
    assert body["secret"] not in stored.secret_ciphertext
    assert decrypt_text(stored.secret_ciphertext) == body["secret"]

    for path in ("/v1/webhooks", f"/v1/webhooks/{body['id']}"):
        listed = alpha.client("admin").get(path)
        assert listed.status_code == 200
        assert body["secret"] not in listed.content.decode() and '"secret"' not in listed.content.decode()


def test_a_given_secret_is_kept_and_a_weak_one_refused(alpha: TenantWorld) -> None:
    response = create(alpha, url="https://hooks.example.com/a", secret="a-receiver-chosen-secret-123")
    assert response.status_code == 201 and response.json()["secret"] == "a-receiver-chosen-secret-123"
    for weak in ("short", " padded-secret-value-here ", "x" * 300):
        refused = create(alpha, url="https://hooks.example.com/b", secret=weak)
        assert refused.status_code == 422 and "secret" in refused.json()["detail"]


def test_unknown_events_are_refused_with_the_valid_ones_listed(alpha: TenantWorld) -> None:
    for events in (["source.ingested", "source.deleted"], [], "chat.message", [1]):
        response = alpha.client("admin").post(
            "/v1/webhooks", {"url": "https://hooks.example.com/x", "events": events}, format="json"
        )
        assert response.status_code == 422, events
        if isinstance(events, list) and events and isinstance(events[0], str):
            detail = response.json()["detail"]
            assert "source.deleted" in detail and all(event in detail for event in ALL_EVENTS)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "private or reserved"),
        ("http://localhost/hook", "private or reserved"),
        ("http://10.1.2.3/hook", "private or reserved"),
        ("http://169.254.169.254/latest/meta-data", "private or reserved"),
        ("http://[::1]/hook", "private or reserved"),
        ("http://rebind.example.com/hook", "private or reserved"),
        ("ftp://hooks.example.com/hook", "http(s)"),
        ("https://user:pass@hooks.example.com/hook", "http(s)"),
        ("not a url", "http(s)"),
    ],
)
def test_private_and_malformed_destinations_are_refused_when_saved(
    alpha: TenantWorld, settings: Any, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    real_resolve = destinations.resolve
    monkeypatch.setattr(
        destinations,
        "resolve",
        lambda host, port: ["127.0.0.1"] if host == "rebind.example.com" else real_resolve(host, port),
    )
    response = create(alpha, url=url)
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith("url:")
    if reason != "http(s)":
        assert reason in response.json()["detail"]
    # The same check guards a change of URL.
    patched = alpha.client("admin").patch(f"/v1/webhooks/{alpha.webhook.pk}", {"url": url}, format="json")
    assert patched.status_code == 422
    assert reload(alpha, alpha.webhook).url == "http://127.0.0.1:9/alpha-hooks"


def test_patch_changes_url_events_description_and_activity(alpha: TenantWorld) -> None:
    hook_id = alpha.webhook.pk
    response = alpha.client("admin").patch(
        f"/v1/webhooks/{hook_id}",
        {"url": "https://hooks.example.com/new", "events": ["chat.message"], "description": "helpdesk"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["url"] == "https://hooks.example.com/new"
    assert response.json()["events"] == ["chat.message"] and response.json()["description"] == "helpdesk"

    off = alpha.client("admin").patch(f"/v1/webhooks/{hook_id}", {"is_active": False}, format="json")
    assert off.json()["is_active"] is False and off.json()["disabled_reason"] == "Disabled through the API."
    pending = deliveries(alpha, alpha.webhook, state=DeliveryState.PENDING)
    assert not pending, "disabling an endpoint fails what was waiting for it"

    on = alpha.client("admin").patch(f"/v1/webhooks/{hook_id}", {"is_active": True}, format="json")
    assert on.json()["is_active"] is True and on.json()["disabled_reason"] == ""
    assert on.json()["failure_streak"] == 0 and on.json()["failing_since"] is None

    bad = alpha.client("admin").patch(f"/v1/webhooks/{hook_id}", {"events": ["nope"]}, format="json")
    assert bad.status_code == 422 and reload(alpha, alpha.webhook).events == ["chat.message"]


def test_rotating_the_secret_returns_the_new_one_once(alpha: TenantWorld, receiver: Receiver) -> None:
    webhook, old_secret = register(alpha, receiver.url())
    response = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/rotate-secret")
    assert response.status_code == 200
    new_secret = response.json()["secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    assert alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test").json()["success"] is True
    request = receiver.received[-1]
    assert_authentic(request, new_secret)
    with pytest.raises(Exception, match="does not match"):
        verify(old_secret, request.body, request.headers)

    chosen = alpha.client("admin").post(
        f"/v1/webhooks/{webhook.pk}/rotate-secret", {"secret": "receiver-side-secret-0001"}, format="json"
    )
    assert chosen.json()["secret"] == "receiver-side-secret-0001"


def test_delete_removes_the_endpoint_and_its_log(alpha: TenantWorld) -> None:
    hook_id = alpha.webhook.pk
    assert deliveries(alpha, alpha.webhook)
    assert alpha.client("admin").delete(f"/v1/webhooks/{hook_id}").status_code == 204
    assert alpha.client("admin").get(f"/v1/webhooks/{hook_id}").status_code == 404
    with tenant_scope(alpha.tenant):
        assert not WebhookDelivery.objects.filter(webhook_id=hook_id).exists()


def test_only_owners_and_admins_see_or_change_webhooks(alpha: TenantWorld) -> None:
    hook = f"/v1/webhooks/{alpha.webhook.pk}"
    calls = [
        ("get", "/v1/webhooks"), ("post", "/v1/webhooks"), ("get", hook), ("patch", hook), ("delete", hook),
        ("post", f"{hook}/test"), ("post", f"{hook}/rotate-secret"), ("get", f"{hook}/deliveries"),
    ]  # fmt: skip
    for who, expected in (("member", "needs the admin role"), ("bot", "Bot tokens")):
        for method, path in calls:
            response = getattr(alpha.client(who), method)(path, {}, format="json")
            assert response.status_code == 403, (who, method, path)
            assert expected in response.json()["detail"]
    assert alpha.client("owner").get("/v1/webhooks").status_code == 200
    assert reload(alpha, alpha.webhook).is_active


def test_a_tenant_has_a_bounded_number_of_webhooks(alpha: TenantWorld) -> None:
    for n in range(MAX_WEBHOOKS_PER_TENANT - 1):  # the fixture's endpoint is the first
        assert create(alpha, url=f"https://hooks.example.com/{n}").status_code == 201
    refused = create(alpha, url="https://hooks.example.com/one-too-many")
    assert refused.status_code == 422 and str(MAX_WEBHOOKS_PER_TENANT) in refused.json()["detail"]


def test_the_test_ping_is_synchronous_signed_and_logged(alpha: TenantWorld, receiver: Receiver) -> None:
    webhook, secret = register(alpha, receiver.url())
    response = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test")
    assert response.status_code == 200
    result = response.json()
    assert result["success"] is True and result["status_code"] == 200 and result["error"] == ""
    payload = assert_authentic(receiver.received[-1], secret)
    assert payload["event"] == "test.ping" and payload["webhook_id"] == str(webhook.pk)
    assert payload["delivery_id"] == result["delivery_id"]

    receiver.answer(500, body=b"boom")
    failed = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test").json()
    assert failed["success"] is False and failed["status_code"] == 500
    assert "500 Internal Server Error" in failed["error"]
    log = alpha.client("admin").get(f"/v1/webhooks/{webhook.pk}/deliveries?event=test.ping").json()
    assert [entry["state"] for entry in log] == ["failed", "succeeded"]
    assert log[0]["last_response_body"] == "boom" and log[0]["attempts"][0]["trigger"] == "test"
    assert reload(alpha, webhook).failure_streak == 0, "test pings do not count against the endpoint"


def test_the_test_ping_reports_an_unreachable_receiver(alpha: TenantWorld) -> None:
    result = alpha.client("admin").post(f"/v1/webhooks/{alpha.webhook.pk}/test").json()
    assert result["success"] is False and result["status_code"] is None
    assert "could not connect to 127.0.0.1" in result["error"]


def test_the_test_ping_gives_up_after_its_short_timeout(alpha: TenantWorld, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_TEST_TIMEOUT_SECONDS = 0.5
    webhook, _ = register(alpha, receiver.url())
    receiver.answer(200, delay=3)
    result = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test").json()
    assert result["success"] is False and "timed out after 0.5 s" in result["error"]
    assert result["latency_ms"] < 2000


def test_the_delivery_log_lists_filters_and_shows_each_delivery(alpha: TenantWorld) -> None:
    hook = f"/v1/webhooks/{alpha.webhook.pk}"
    # The fixture's events, whose first sends were lost (its transaction never committed): the
    # sweeper sends them once they look lost, one attempt each, at an endpoint nobody listens on.
    assert send_due_deliveries(now=timezone.now() + timedelta(seconds=REDISPATCH_AFTER_SECONDS + 1)) >= 3
    log = alpha.client("admin").get(f"{hook}/deliveries")
    assert log.status_code == 200
    entries = log.json()
    assert int(log["X-Total-Count"]) == len(entries) >= 3  # the fixture's ingestion and two chat turns
    assert {entry["event"] for entry in entries} >= {"source.ingested", "chat.message"}
    first = entries[0]
    assert first["state"] == "pending" and first["attempt_count"] == 1 and first["next_attempt_at"]
    assert "could not connect" in first["last_error"] and first["attempts"][0]["status_code"] is None
    only_chat = alpha.client("admin").get(f"{hook}/deliveries?event=chat.message&state=pending").json()
    assert only_chat and all(entry["event"] == "chat.message" for entry in only_chat)
    assert alpha.client("admin").get(f"{hook}/deliveries?state=lost").status_code == 422
    detail = alpha.client("admin").get(f"{hook}/deliveries/{first['id']}")
    assert detail.status_code == 200 and detail.json()["payload"]["delivery_id"] == first["id"]
    assert alpha.client("admin").get(f"{hook}/deliveries/not-a-uuid").status_code == 404


def test_redelivery_sends_the_same_delivery_again(alpha: TenantWorld, receiver: Receiver, committed: Any) -> None:
    webhook, secret = register(alpha, receiver.url(), events=["chat.message"])
    receiver.answer(500)
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    with tenant_scope(alpha.tenant):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.FAILED, next_attempt_at=None)

    with committed():
        response = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/deliveries/{delivery.pk}/redeliver")
    assert response.status_code == 202
    assert response.json()["id"] == str(delivery.pk)
    delivered = reload(alpha, delivery)  # sent inline in tests, when the request's transaction committed
    assert delivered.state == DeliveryState.SUCCEEDED and delivered.attempt_count == 2
    first, second = receiver.received
    assert first.body == second.body and assert_authentic(second, secret)["delivery_id"] == str(delivery.pk)

    # A delivery still waiting for a retry is sent now, keeping its attempt budget.
    receiver.answer(500)
    with committed():
        ask(alpha)
    waiting = deliveries(alpha, webhook)[-1]
    assert reload(alpha, waiting).next_attempt_at > timezone.now() + timedelta(seconds=20)
    with committed():
        now = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/deliveries/{waiting.pk}/redeliver")
    assert now.status_code == 202
    waiting = reload(alpha, waiting)
    assert waiting.state == DeliveryState.SUCCEEDED and waiting.series_attempts == 2

    ping = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test").json()
    again = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/deliveries/{ping['delivery_id']}/redeliver")
    assert again.status_code == 409 and "test" in again.json()["detail"]

    alpha.client("admin").patch(f"/v1/webhooks/{webhook.pk}", {"is_active": False}, format="json")
    disabled = alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/deliveries/{delivery.pk}/redeliver")
    assert disabled.status_code == 409 and "is_active" in disabled.json()["detail"]


def test_a_delivery_is_only_reachable_through_its_own_webhook(alpha: TenantWorld, receiver: Receiver) -> None:
    other, _ = register(alpha, receiver.url())
    [delivery, *_] = deliveries(alpha, alpha.webhook)
    wrong = f"/v1/webhooks/{other.pk}/deliveries/{delivery.pk}"
    assert alpha.client("admin").get(wrong).status_code == 404
    assert alpha.client("admin").post(f"{wrong}/redeliver").status_code == 404
