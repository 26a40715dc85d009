"""Monthly spend caps (providers/budgets.py): a tenant's, set by operators, and a bot's, set by
owners within it. Turns are admitted against what they can cost at most, so concurrent turns cannot
pass a cap; over it chats get a 429 until the month resets (politely, for a website visitor),
ingestion with a paid embedding model stops readably, and `usage.threshold` fires at 80% and 100%."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import close_old_connections

from chat.tests.conftest import add_knowledge, ask
from conftest import TenantWorld
from providers import budgets
from providers.models import MonthlySpend
from providers.tests.fake_provider import FakeProvider
from providers.tests.test_bot_endpoints import QUESTION, configure
from sources.models import Source
from sources.services import source_create, source_ingest_request
from tenants.models import Tenant
from tenants.tenancy import tenant_scope
from webhooks.models import WebhookDelivery

PRICE = [1000, 1000]  # USD per million prompt and completion tokens: a turn costs cents


@pytest.fixture
def paid_bot(alpha: TenantWorld, fake_provider: FakeProvider, settings: Any) -> TenantWorld:
    """The fixture's bot answering through a priced model on the fake server, with a small prompt
    budget so that a turn's upper bound is about 0.9 USD."""
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.MODEL_PRICES = {"openai/fake-chat": PRICE, "openai/fake-embed": PRICE}
    settings.MAX_CONTEXT_CHARS = 600
    configure(
        alpha,
        model="openai/fake-chat",
        max_tokens=50,
        api_base=f"{fake_provider.url}/v1",
        credentials={"api_key": "sk-own-key"},
    )
    return alpha


def set_tenant_budget(world: TenantWorld, usd: str | None) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(monthly_budget_usd=usd)  # as an operator does
    world.tenant.refresh_from_db()


def set_aside(world: TenantWorld) -> Decimal:
    """What running turns of the tenant have set aside this month."""
    with tenant_scope(world.tenant):
        row = MonthlySpend.objects.get(tenant=world.tenant, bot_profile=None, month=budgets.month_start())
    return row.reserved_usd


def threshold_payloads(world: TenantWorld) -> list[dict[str, Any]]:
    with tenant_scope(world.tenant):
        deliveries = WebhookDelivery.objects.filter(event="usage.threshold").order_by("created_at")
        return [delivery.payload for delivery in deliveries]


@pytest.mark.django_db
def test_owners_set_a_bots_budget_within_the_tenants(paid_bot: TenantWorld) -> None:
    url = f"/v1/bot-profiles/{paid_bot.bot.pk}"
    refused = paid_bot.client("admin").patch(url, {"monthly_budget_usd": "5.00"}, format="json")
    assert refused.status_code == 403 and "Only an owner" in refused.json()["detail"]
    set_tenant_budget(paid_bot, "20.00")
    too_much = paid_bot.client("owner").patch(url, {"monthly_budget_usd": "25"}, format="json")
    assert too_much.status_code == 422 and "20.00 USD" in too_much.json()["detail"]
    assert (
        paid_bot.client("owner").patch(url, {"monthly_budget_usd": "1.00"}, format="json").json()["monthly_budget_usd"]
        == "1.00"
    )
    # An admin may still change everything else.
    assert paid_bot.client("admin").patch(url, {"top_k": 4}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_spent_bot_budget_refuses_chats_until_the_month_resets(
    paid_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    paid_bot.client("owner").patch(f"/v1/bot-profiles/{paid_bot.bot.pk}", {"monthly_budget_usd": "1.00"}, format="json")
    first = ask(paid_bot, QUESTION)
    assert first.status_code == 200 and first.json()["message"]["content"] == fake_provider.reply
    with tenant_scope(paid_bot.tenant):
        spent = budgets.spent(paid_bot.tenant.pk, paid_bot.bot.pk)
        assert Decimal("0") < spent < Decimal("0.5")
    assert set_aside(paid_bot) == 0  # released when the answer was recorded
    estimate = budgets.turn_estimate(paid_bot.bot, question=QUESTION, history=[])
    assert spent + estimate > Decimal("1.00")  # the next turn could pass the cap: refused, not risked

    calls = len(fake_provider.requests)
    refused = ask(paid_bot, QUESTION)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "budget_exhausted"
    assert "monthly model budget of the bot alpha bot (1.00 USD)" in body["detail"]
    reset = budgets.next_month_start()
    assert f"{reset:%Y-%m-%d}" in body["detail"]
    assert abs(int(refused["Retry-After"]) - budgets.seconds_until_reset()) <= 5
    assert len(fake_provider.requests) == calls  # no model call
    # A website visitor is told politely, with nothing about budgets.
    visitor = ask(paid_bot, QUESTION, "bot", stream=True)
    assert visitor.status_code == 429
    assert visitor.json() == {"detail": budgets.VISITOR_DETAIL, "code": "budget_exhausted"}

    me = paid_bot.client("member").get("/v1/tenants/me").json()["budget"]
    assert me["monthly_budget_usd"] is None and Decimal(me["spent_usd"]) == spent.quantize(Decimal("0.0001"))
    assert me["month"] == f"{budgets.month_start():%Y-%m}" and me["resets_at"].startswith(f"{reset:%Y-%m-%d}")
    assert Decimal(me["forecast_usd"]) >= Decimal(me["spent_usd"]).quantize(Decimal("0.01"))


@pytest.mark.django_db
def test_the_tenants_budget_covers_every_bot_and_warns_at_80_and_100_percent(paid_bot: TenantWorld) -> None:
    set_tenant_budget(paid_bot, "10.00")
    with tenant_scope(paid_bot.tenant):
        before = budgets.spent(paid_bot.tenant.pk)  # the fixture's
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("7.99") - before)
        assert threshold_payloads(paid_bot) == []
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("0.02"))
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("0.50"))  # once only
    [warning] = threshold_payloads(paid_bot)
    assert warning["scope"] == "tenant" and warning["threshold"] == 80 and warning["budget_usd"] == "10.00"
    assert warning["spent_usd"] == "8.0100" and warning["bot_profile_id"] is None
    with tenant_scope(paid_bot.tenant):
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("1.60"))
    assert [p["threshold"] for p in threshold_payloads(paid_bot)] == [80, 100]
    refused = ask(paid_bot, QUESTION)
    assert refused.status_code == 429 and "budget of this workspace (10.00 USD)" in refused.json()["detail"]
    # The dashboard's operator raises the cap: chats are admitted again at once.
    set_tenant_budget(paid_bot, "100.00")
    assert ask(paid_bot, QUESTION).status_code == 200
    # The new cap warns again when its own marks are reached (80 USD here), once.
    with tenant_scope(paid_bot.tenant):
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("1.00"))
        assert [p["threshold"] for p in threshold_payloads(paid_bot)] == [80, 100]
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("70.00"))
        budgets.record_spend(tenant=paid_bot.tenant, bot=paid_bot.bot, cost_usd=Decimal("0.01"))
    renewed = threshold_payloads(paid_bot)
    assert [p["threshold"] for p in renewed] == [80, 100, 80] and renewed[-1]["budget_usd"] == "100.00"


@pytest.mark.django_db(transaction=True)
def test_concurrent_admissions_never_pass_the_cap(alpha: TenantWorld) -> None:
    """Twenty turns at once, room for five: exactly five are admitted (on PostgreSQL, row locks)."""
    set_tenant_budget(alpha, "5.02")  # the fixture spent 0.0125: room for five turns of 1.00
    admitted: list[Any] = []
    refused: list[Exception] = []
    start = threading.Barrier(20)

    def one_turn() -> None:
        try:
            start.wait()
            with tenant_scope(alpha.tenant):
                admitted.append(
                    budgets.admit(tenant=alpha.tenant, bot=alpha.bot, estimate=Decimal("1.00"), for_visitor=True)
                )
        except budgets.BudgetExhausted as error:
            refused.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=one_turn) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5 and len(refused) == 15
    assert set_aside(alpha) == Decimal("5.00")
    with tenant_scope(alpha.tenant):
        # Turns that never recorded (their process died) stop counting once no turn was admitted for
        # RESERVATION_SECONDS: the next admission starts from zero.
        MonthlySpend.objects.update(reserved_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        reservation = budgets.admit(tenant=alpha.tenant, bot=alpha.bot, estimate=Decimal("1.00"), for_visitor=True)
    assert reservation == budgets.Reservation(month=budgets.month_start(), amount_usd=Decimal("1.00"))
    assert set_aside(alpha) == Decimal("1.00")
    with tenant_scope(alpha.tenant):
        budgets.record_spend(tenant=alpha.tenant, bot=alpha.bot, cost_usd=Decimal("0.25"), reservation=reservation)
        assert budgets.spent(alpha.tenant.pk) == Decimal("0.2625")
    assert set_aside(alpha) == 0


@pytest.mark.django_db
def test_ingestion_with_a_paid_embedding_model_counts_and_stops_at_the_budget(
    paid_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    configure(paid_bot, embedding_model="openai/fake-embed")
    add_knowledge(paid_bot, "Hours", "The warehouse in Tromsø opens at seven on weekdays.")
    with tenant_scope(paid_bot.tenant):
        spent = budgets.spent(paid_bot.tenant.pk)
        assert spent > 0  # the embeddings' tokens, at the model's price
        assert MonthlySpend.objects.filter(bot_profile=paid_bot.bot).get().spent_usd == spent
    set_tenant_budget(paid_bot, str(spent.quantize(Decimal("0.01"), rounding="ROUND_DOWN")))
    fake_provider.reset()
    with tenant_scope(paid_bot.tenant):
        source = source_create(
            tenant=paid_bot.tenant, bot_profile=paid_bot.bot, name="More", source_type="text", content="Dogs welcome."
        )
        source_ingest_request(tenant=paid_bot.tenant, source=source)
        source = Source.objects.get(pk=source.pk)
    assert source.status == "error" and source.error_message.startswith("Paused: the workspace's monthly model budget")
    assert not [call for call in fake_provider.requests if call.path.endswith("/embeddings")]
