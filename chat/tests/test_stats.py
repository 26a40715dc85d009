"""Usage, cost, feedback and unanswered-question statistics, per tenant."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from chat.models import UsageEvent
from chat.tests.conftest import ModelSpy, add_knowledge, ask, use_model
from conftest import TenantWorld
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def usage(alpha: TenantWorld, model_spy: ModelSpy) -> None:
    """The fixture's two offline turns, plus two priced turns and one repeated refusal."""
    add_knowledge(alpha, "Shipping", "Orders ship within two working days.")
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="Two working days [1].")
    answer = ask(alpha, "How long does shipping take?").json()
    ask(alpha, "How long does shipping take, really?")
    ask(alpha, "What is the airspeed velocity of an unladen swallow?")
    alpha.client().patch(
        f"/v1/chat/{answer['chat_id']}/messages/{answer['message']['id']}/feedback",
        {"feedback": "positive"},
        format="json",
    )


def test_overview_and_pricing(alpha: TenantWorld, usage: None) -> None:
    overview = alpha.client("member").get("/v1/stats/overview").json()
    assert set(overview) == {
        "bot_profiles",
        "sources",
        "chats",
        "total_prompt_tokens",
        "total_completion_tokens",
        "total_tokens",
    }
    assert overview["chats"] == 5 and overview["bot_profiles"] == 1
    assert overview["total_tokens"] == overview["total_prompt_tokens"] + overview["total_completion_tokens"] > 0
    pricing = alpha.client().get("/v1/stats/pricing").json()
    assert pricing["models"]["gpt-4o-mini"] == {"prompt_cost_per_1m": 0.15, "completion_cost_per_1m": 0.6}
    assert pricing["models"]["local/extractive"] == {"prompt_cost_per_1m": 0.0, "completion_cost_per_1m": 0.0}
    assert set(pricing["default"]) == {"prompt_cost_per_1m", "completion_cost_per_1m"}


def test_usage_by_day_bot_and_model(alpha: TenantWorld, usage: None) -> None:
    by_day = alpha.client().get("/v1/stats/usage?days=7").json()
    today = timezone.now().date().isoformat()
    assert {(row["date"], row["model"]) for row in by_day} == {(today, "local/extractive"), (today, "gpt-4o-mini")}
    gpt = next(row for row in by_day if row["model"] == "gpt-4o-mini")
    assert gpt["request_count"] == 3 and gpt["total_tokens"] == gpt["prompt_tokens"] + gpt["completion_tokens"]
    by_bot = alpha.client().get("/v1/stats/usage/by-bot").json()
    assert {row["bot_name"] for row in by_bot} == {"alpha bot"} and all("cost_usd" in row for row in by_bot)
    by_model = {row["model"]: row for row in alpha.client().get("/v1/stats/usage/by-model").json()}
    with tenant_scope(alpha.tenant):
        expected = sum(UsageEvent.objects.filter(model="gpt-4o-mini").values_list("cost_usd", flat=True), Decimal(0))
    assert by_model["gpt-4o-mini"]["cost_usd"] == pytest.approx(float(expected)) and expected > 0
    assert by_model["local/extractive"]["cost_usd"] == 0.0


def test_cost_estimate_projects_from_the_observed_days(alpha: TenantWorld, usage: None) -> None:
    with tenant_scope(alpha.tenant):
        UsageEvent.objects.filter(model="gpt-4o-mini").update(cost_usd=Decimal("0.5"))
        UsageEvent.objects.filter(model="gpt-4o-mini", outcome="refused").update(
            created_at=timezone.now() - dt.timedelta(days=9)
        )
    estimate = alpha.client().get("/v1/stats/cost-estimate?days=30").json()
    assert estimate["total_cost_usd"] == 1.5 and estimate["active_days"] == 2
    assert estimate["daily_avg_cost_usd"] == pytest.approx(0.15)  # over the 10 days since the first use
    assert estimate["projected_monthly_usd"] == pytest.approx(4.5)
    assert {row["model"] for row in estimate["by_model"]} == {"gpt-4o-mini", "local/extractive"}


def test_feedback_and_trend(alpha: TenantWorld, usage: None) -> None:
    feedback = alpha.client().get(f"/v1/stats/feedback?bot_profile_id={alpha.bot.pk}").json()
    assert feedback["total_messages"] == 5 and feedback["positive_count"] == 1 and feedback["negative_count"] == 0
    assert feedback["total_with_feedback"] == 1 and feedback["feedback_rate"] == 0.2
    assert feedback["by_bot"][0]["bot_name"] == "alpha bot"
    trend = alpha.client().get("/v1/stats/feedback/trend?days=7").json()
    assert len(trend) == 7 and trend[-1]["date"] == timezone.now().date().isoformat()
    assert trend[-1] == {"date": trend[-1]["date"], "positive_count": 1, "negative_count": 0, "total_messages": 5}
    assert all(row["total_messages"] == 0 for row in trend[:-1])


def test_unanswered_questions_are_grouped_most_frequent_first(alpha: TenantWorld, usage: None) -> None:
    rows = alpha.client().get("/v1/stats/unanswered").json()
    assert rows[0]["question"] == "What is the airspeed velocity of an unladen swallow?"
    assert rows[0]["count"] == 2 and rows[0]["bot_name"] == "alpha bot"  # the fixture asked it once too
    assert set(rows[0]) == {"question", "count", "last_asked_at", "best_score", "bot_profile_id", "bot_name"}


@pytest.mark.parametrize("query", ["days=0", "days=366", "days=abc", "bot_profile_id=nope"])
def test_bad_stats_parameters_are_422(alpha: TenantWorld, query: str) -> None:
    assert alpha.client().get(f"/v1/stats/feedback?{query}").status_code == 422


def test_stats_never_mix_tenants(alpha: TenantWorld, beta: TenantWorld, usage: None) -> None:
    beta_overview = beta.client().get("/v1/stats/overview").json()
    assert beta_overview["chats"] == 2  # only beta's own fixture turns
    assert all(row["model"] == "local/extractive" for row in beta.client().get("/v1/stats/usage/by-model").json())
