"""The dashboard's start page and health page: a tenant's checklist moves one step at a time from an
empty workspace to a live widget, its numbers agree with the lists they link to, an operator sees
every tenant, nothing of another tenant shows, the health page is the tenant's own (no platform
configuration), and "View site" leads somewhere useful."""

# ruff: noqa: F811 - tests take the imported `operator_client` fixture by name
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from bots.tests.factories import BotProfileFactory
from chat.models import Chat, Message, UnansweredQuestion
from conftest import TenantWorld
from minirag.dashboard.start import DONE, NEXT, TODO, operator_start, tenant_start
from minirag.tests.test_dashboard import login, operator_client, tenant_client  # noqa: F401 - operator_client: a fixture
from sources.models import Source, SourceStatus
from sources.services import source_create, source_ingest_request
from tenants.models import ApiToken, Role, Tenant
from tenants.tenancy import tenant_scope
from tenants.tests.factories import DEFAULT_PASSWORD, TenantFactory, UserFactory, make_token
from webhooks.models import DeliveryState, Webhook, WebhookDelivery
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db


def states(tenant: Tenant) -> dict[str, str]:
    return {step.key: step.state for step in tenant_start(tenant).steps}


def step(tenant: Tenant, key: str) -> Any:
    return next(s for s in tenant_start(tenant).steps if s.key == key)


def owner_page(owner: Any) -> str:
    client = Client()
    assert login(client, owner.email, DEFAULT_PASSWORD).status_code == 302
    response = client.get("/dashboard/")
    assert response.status_code == 200
    return response.content.decode()


# --- The checklist, one step at a time --------------------------------------------------------


def test_the_checklist_leads_a_fresh_tenant_step_by_step() -> None:
    tenant = TenantFactory(slug="fresh", name="Fresh Ltd")
    owner = UserFactory(tenant=tenant, role=Role.OWNER, email="owner@fresh.example")

    # Nothing yet: the bot is next, everything after it waits for it.
    assert states(tenant) == {
        "bot": NEXT,
        "knowledge": TODO,
        "test": TODO,
        "token": TODO,
        "snippet": TODO,
        "webhook": TODO,
    }
    page = owner_page(owner)
    assert re.search(
        r'<a class="mr-button mr-button-primary" href="/dashboard/bots/botprofile/add/" data-step-action="bot">', page
    )
    assert page.count("mr-button-primary") == 1  # one prominent button: the next step's
    assert "Create a bot first." in page  # later steps say what they wait for

    # 1 → 2: with a bot, knowledge is next, and its button adds a source to that bot.
    bot = BotProfileFactory(tenant=tenant, name="Fresh helper")
    assert states(tenant)["bot"] == DONE and states(tenant)["knowledge"] == NEXT
    assert step(tenant, "knowledge").action_url == f"/dashboard/sources/source/add/?bot_profile={bot.pk}"
    assert "Fresh helper" in step(tenant, "bot").summary

    # A source still pending is not knowledge yet; a ready one with chunks is.
    with tenant_scope(tenant):
        source = source_create(
            tenant=tenant, bot_profile=bot, name="Handbook", source_type="text", content="We open at nine."
        )
    assert states(tenant)["knowledge"] == NEXT
    assert "waiting to be ingested" in step(tenant, "knowledge").summary
    with tenant_scope(tenant):
        source_ingest_request(tenant=tenant, source=source)  # inline in tests
        source.refresh_from_db()
    assert source.status == SourceStatus.READY and source.chunk_count > 0
    assert states(tenant)["knowledge"] == DONE and states(tenant)["test"] == NEXT
    assert f"1 of 1 source ready; {source.chunk_count} chunk" in step(tenant, "knowledge").summary

    # 3: "Test it" opens the bot's Try it page, with Test retrieval beside it.
    test_step = step(tenant, "test")
    assert test_step.action_url == f"/dashboard/bots/botprofile/{bot.pk}/try/"
    assert ("Test retrieval", f"/dashboard/bots/botprofile/{bot.pk}/retrieval-test/") in test_step.links
    page = owner_page(owner)
    assert f'href="/dashboard/bots/botprofile/{bot.pk}/try/" data-step-action="test"' in page
    # The dashboard's Try it panel makes a preview token and a chat with it: tried.
    preview, _ = make_token(owner, name="try-it", bot_profile=bot, allowed_origins=["http://testserver"])
    with tenant_scope(tenant):
        ApiToken.objects.filter(pk=preview.pk).update(is_dashboard_preview=True)
        Chat.objects.create(tenant=tenant, bot_profile=bot, started_by_token=preview)
    assert states(tenant)["test"] == DONE and states(tenant)["token"] == NEXT

    # 4: the try-it token does not count as the site's widget token, nor does one without origins.
    token_step = step(tenant, "token")
    assert token_step.action_url == f"/dashboard/tenants/apitoken/add/?bot_profile={bot.pk}"
    bare, _ = make_token(owner, name="no origins", bot_profile=bot)
    assert states(tenant)["token"] == NEXT
    assert "no allowed origins" in step(tenant, "token").warning
    assert step(tenant, "token").warning_url == f"/dashboard/tenants/apitoken/{bare.pk}/change/"
    # An expired or revoked token with origins does not count either.
    expired, _ = make_token(owner, name="old", bot_profile=bot, allowed_origins=["https://fresh.example"])
    with tenant_scope(tenant):
        ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    assert states(tenant)["token"] == NEXT
    site_token, _ = make_token(owner, name="site", bot_profile=bot, allowed_origins=["https://fresh.example"])
    assert states(tenant)["token"] == DONE and states(tenant)["snippet"] == NEXT

    # 5: the snippet step points at the bot page's snippet, and is done at the first widget chat.
    assert step(tenant, "snippet").action_url == f"/dashboard/bots/botprofile/{bot.pk}/change/#embed-snippet"
    with tenant_scope(tenant):
        Chat.objects.create(tenant=tenant, bot_profile=bot, started_by_user=owner)  # the API: not the widget
    assert states(tenant)["snippet"] == NEXT
    with tenant_scope(tenant):
        Chat.objects.create(tenant=tenant, bot_profile=bot, started_by_token=site_token, visitor_id="v1")
    assert states(tenant)["snippet"] == DONE
    assert "1 chat from your site" in step(tenant, "snippet").summary

    # 6: the optional webhook is next once the rest is done; the checklist counts required steps only.
    start = tenant_start(tenant)
    assert start.complete and start.next_step.key == "webhook"
    assert start.next_step.action_url == "/dashboard/webhooks/webhook/add/"
    page = owner_page(owner)
    assert "Your assistant is on your site" in page and "5 of 5 steps done" in page
    with tenant_scope(tenant):
        webhook_create(tenant=tenant, url="https://hooks.fresh.example/minirag", events=["source.failed"])
    assert set(states(tenant).values()) == {DONE}
    assert tenant_start(tenant).next_step is None
    assert "mr-button-primary" not in owner_page(owner)


def test_sources_in_error_are_called_out(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=alpha.upload_source.pk).update(
            status=SourceStatus.ERROR, error_message="The file could not be read."
        )
    knowledge = step(alpha.tenant, "knowledge")
    assert knowledge.warning == "1 source failed to ingest: see why and fix them."
    assert knowledge.warning_url == "/dashboard/sources/source/?status__exact=error&is_active__exact=1"
    page = tenant_client(alpha).get("/dashboard/").content.decode()
    assert "1 source failed to ingest" in page
    assert 'href="/dashboard/sources/source/?status__exact=error&amp;is_active__exact=1"' in page


# --- The week's numbers ------------------------------------------------------------------------


def test_the_numbers_count_the_past_week_and_agree_with_the_lists_they_link_to(alpha: TenantWorld) -> None:
    old = timezone.now() - dt.timedelta(days=30)
    with tenant_scope(alpha.tenant):
        # build_world asked two questions (one refused); age one extra chat and question out of the week.
        answers = Message.objects.filter(role=Message.Role.ASSISTANT).order_by("created_at")
        Message.objects.filter(pk=answers[0].pk).update(feedback=Message.Feedback.NEGATIVE)
        Message.objects.filter(pk=answers[1].pk).update(feedback=Message.Feedback.POSITIVE)
        stale = Chat.objects.create(tenant=alpha.tenant, bot_profile=alpha.bot, started_by_user=alpha.owner)
        Chat.objects.filter(pk=stale.pk).update(created_at=old)
        question = UnansweredQuestion.objects.first()
        UnansweredQuestion.objects.create(
            tenant=alpha.tenant,
            bot_profile=alpha.bot,
            chat=question.chat,
            message=question.message,
            question="an old question",
            normalized_question="an old question",
            created_at=old,
        )
        Source.objects.filter(pk=alpha.upload_source.pk).update(status=SourceStatus.ERROR)
        expected_chats = Chat.objects.filter(created_at__gte=timezone.now() - dt.timedelta(days=7)).count()
    numbers = tenant_start(alpha.tenant).numbers
    assert (numbers.chats, numbers.unanswered, numbers.negative_feedback, numbers.sources_in_error) == (
        expected_chats,
        1,
        1,
        1,
    )
    assert expected_chats >= 1
    client = tenant_client(alpha)
    for count, url in (
        (numbers.chats, numbers.chats_url),
        (numbers.unanswered, numbers.unanswered_url),
        (numbers.negative_feedback, numbers.negative_feedback_url),
        (numbers.sources_in_error, numbers.sources_in_error_url),
    ):
        listing = client.get(url)
        assert listing.status_code == 200, url
        assert listing.context["cl"].result_count == count, url  # the filter was applied, not ignored
    page = client.get("/dashboard/").content.decode()
    figures = dict(re.findall(r'data-figure="([a-z-]+)"><span class="mr-figure-value">(\d+)</span>', page))
    expected = {"chats": str(expected_chats), "unanswered": "1", "negative-feedback": "1", "sources-in-error": "1"}
    assert figures == expected


def test_the_start_page_costs_the_same_queries_however_much_a_tenant_has(alpha: TenantWorld) -> None:
    with CaptureQueriesContext(connection) as before:
        tenant_start(alpha.tenant)
    with tenant_scope(alpha.tenant):
        for n in range(5):
            bot = BotProfileFactory(tenant=alpha.tenant, name=f"extra bot {n}")
            source_create(tenant=alpha.tenant, bot_profile=bot, name=f"extra {n}", source_type="text", content="x")
            Chat.objects.create(tenant=alpha.tenant, bot_profile=bot, started_by_user=alpha.owner)
    with CaptureQueriesContext(connection) as after:
        tenant_start(alpha.tenant)
    assert len(after.captured_queries) == len(before.captured_queries) <= 12


# --- Operators: every tenant at a glance -------------------------------------------------------


def test_an_operator_sees_every_tenant_at_a_glance(
    alpha: TenantWorld, beta: TenantWorld, operator_client: Client
) -> None:
    Tenant.objects.filter(pk=alpha.tenant.pk).update(monthly_budget_usd=Decimal("10.00"))
    Tenant.objects.filter(pk=beta.tenant.pk).update(is_active=False)
    with tenant_scope(beta.tenant):
        Source.objects.filter(pk=beta.text_source.pk).update(status=SourceStatus.ERROR)
    quiet = TenantFactory(slug="quiet", name="Quiet Co")  # no rows at all
    overview = operator_start()
    rows = {row.tenant.slug: row for row in overview.rows}
    assert set(rows) == {"alpha", "beta", "quiet"}
    alpha_row, beta_row, quiet_row = rows["alpha"], rows["beta"], rows["quiet"]
    # The fixture's sources: a text, an upload and a curated answer.
    assert (alpha_row.bots, alpha_row.sources, alpha_row.sources_in_error) == (1, 3, 0)
    assert (beta_row.sources, beta_row.sources_in_error) == (3, 1)
    assert (quiet_row.bots, quiet_row.sources, quiet_row.chats_this_week) == (0, 0, 0)
    assert alpha_row.chats_this_week >= 1
    assert alpha_row.budget.budget_usd == Decimal("10.00") and alpha_row.budget.spent_usd == Decimal("0.0125")
    assert alpha_row.usage_url == "/dashboard/usage/?tenant=alpha"
    assert beta_row.errors_url.startswith("/dashboard/sources/source/?status__exact=error")

    with CaptureQueriesContext(connection) as queries:
        operator_start()
    assert len(queries.captured_queries) <= 6  # one per figure, not per tenant

    page = operator_client.get("/dashboard/").content.decode()
    for world in (alpha, beta):
        assert world.tenant.name in page
        assert f'href="/dashboard/usage/?tenant={world.tenant.slug}"' in page
    assert quiet.name in page
    alpha_html = re.search(r'<tr data-tenant="alpha".*?</tr>', page, re.S).group(0)
    assert "$0.01 of $10.00" in alpha_html
    beta_html = re.search(r'<tr data-tenant="beta".*?</tr>', page, re.S).group(0)
    assert "mr-inactive" in beta_html and "<strong>No</strong>" in beta_html
    assert f"tenant__id__exact={beta.tenant.pk}" in beta_html  # its sources in error, filtered
    assert "data-step=" not in page  # the checklist is a tenant's
    assert operator_client.get(beta_row.errors_url).context["cl"].result_count == 1


def test_a_tenants_start_page_shows_nothing_of_another_tenant(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(beta.tenant):
        Source.objects.filter(pk=beta.text_source.pk).update(status=SourceStatus.ERROR)
        for _ in range(3):
            Chat.objects.create(tenant=beta.tenant, bot_profile=beta.bot, started_by_token=beta.token_rows["bot"])
    page = tenant_client(alpha).get("/dashboard/").content.decode()
    for marker in (beta.tenant.name, beta.bot.name, str(beta.bot.pk), beta.text_source.name, "Tenants at a glance"):
        assert marker not in page, marker
    start = tenant_start(alpha.tenant)
    assert start.numbers.sources_in_error == 0
    assert step(alpha.tenant, "snippet").state != DONE  # beta's widget chats are not alpha's
    assert start.bot.pk == alpha.bot.pk


# --- The health page ---------------------------------------------------------------------------

PLATFORM_WORDS = [
    "allow_signup",
    "provider_keys",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "jwt_ttl",
    "throttle_rates",
    "encryption_keys",
    "default_embedding_model",
    "Configuration",
    "postgres",
    "sqlite",
    "qdrant",
    "redis",
    "Version",
    "latency",
]


def _failing_webhook(world: TenantWorld) -> Webhook:
    with tenant_scope(world.tenant):
        Webhook.objects.filter(pk=world.webhook.pk).update(
            failure_streak=4, failing_since=timezone.now() - dt.timedelta(hours=2), last_failure_at=timezone.now()
        )
        WebhookDelivery.objects.create(
            tenant=world.tenant,
            webhook=world.webhook,
            event="source.ingested",
            body="{}",
            state=DeliveryState.FAILED,
            attempt_count=5,
            last_error="Connection refused by 127.0.0.1:9",
        )
        return Webhook.objects.get(pk=world.webhook.pk)


def test_a_tenants_health_page_is_about_their_workspace(alpha: TenantWorld, beta: TenantWorld, settings: Any) -> None:
    Tenant.objects.filter(pk=alpha.tenant.pk).update(monthly_budget_usd=Decimal("20.00"))
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=alpha.upload_source.pk).update(
            status=SourceStatus.ERROR, error_message="The PDF is encrypted: upload it without a password."
        )
    _failing_webhook(alpha)
    with tenant_scope(beta.tenant):
        Source.objects.filter(pk=beta.text_source.pk).update(status=SourceStatus.ERROR, error_message="beta broke")
    for who in ("owner", "admin"):
        html = tenant_client(alpha, who).get("/dashboard/health/").content.decode()
        assert "Everything is working." in html
        # Their sources in error, with the message and a link to the source.
        assert "The PDF is encrypted: upload it without a password." in html
        assert f'href="/dashboard/sources/source/{alpha.upload_source.pk}/change/"' in html
        # Their failing webhook, why, and its delivery log.
        assert alpha.webhook.url in html and "4 failed attempts in a row" in html
        assert "Connection refused by 127.0.0.1:9" in html
        assert f"webhook__id__exact={alpha.webhook.pk}" in html
        assert 'data-figure="failed-deliveries">1 delivery given up' in html
        # Their budget.
        assert "$0.01</strong> of your $20.00 budget" in html
        # Nothing of the platform: no configuration, paths, vendors, versions, signup or keys.
        lowered = html.lower()
        for word in PLATFORM_WORDS:
            assert word.lower() not in lowered, word
        for path in (str(settings.DATABASES["default"]["NAME"]), settings.QDRANT_PATH, str(settings.BASE_DIR)):
            assert path not in html, path
        # Nothing of another tenant.
        assert "beta broke" not in html and beta.tenant.name not in html and beta.webhook.url not in html


def test_a_tenant_is_told_in_plain_words_when_the_service_is_not_working(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        html = client.get("/dashboard/health/").content.decode()
    assert "Part of the service is not working right now." in html
    assert "Not working</span> Background work: reading new sources, sending webhooks" in html
    assert "ConnectionError" not in html and "127.0.0.1:1" not in html and "redis" not in html.lower()


def test_operators_keep_the_full_health_page_with_honest_labels(alpha: TenantWorld, operator_client: Client) -> None:
    html = operator_client.get("/dashboard/health/").content.decode()
    assert "Configuration (secrets masked)" in html
    assert "allow_signup" in html and "provider_keys.OPENAI_API_KEY" in html
    # The label says what runs (the tests run on PostgreSQL, Qdrant in memory, Redis); the wire key stays.
    assert re.search(r'data-component="postgres"><th scope="row">Database: PostgreSQL</th>', html)
    assert re.search(r'data-component="qdrant"><th scope="row">Vector store: Qdrant', html)
    assert "<code>postgres</code>" in html and "<code>redis</code>" in html
    with override_settings(REDIS_URL=""):
        html = operator_client.get("/dashboard/health/").content.decode()
    assert "Queue and cache: in-process tasks and local-memory cache (no Redis)" in html


def test_the_health_json_keeps_its_keys(alpha: TenantWorld) -> None:
    body = alpha.client("owner").get("/v1/system/health").json()
    assert set(body) == {"status", "postgres", "qdrant", "redis"}


# --- "View site" -------------------------------------------------------------------------------


def _view_site(html: str) -> tuple[str, str]:
    match = re.search(r'<div id="user-tools">.*?<a href="([^"]+)">([^<]+)</a> /', html, re.S)
    assert match, "no View site link"
    return match.group(1), match.group(2)


def test_view_site_leads_to_the_demo_page_or_the_start_page(
    alpha: TenantWorld, operator_client: Client, settings: Any
) -> None:
    settings.WIDGET_DEMO_ENABLED = False  # production: no demo page
    assert _view_site(operator_client.get("/dashboard/health/").content.decode()) == ("/dashboard/", "Start page")
    assert _view_site(tenant_client(alpha).get("/dashboard/").content.decode()) == ("/dashboard/", "Start page")

    settings.WIDGET_DEMO_ENABLED = True  # embedded mode: the demo page, once the demo tenant exists
    assert _view_site(operator_client.get("/dashboard/").content.decode()) == ("/dashboard/", "Start page")
    demo = TenantFactory(slug="demo", name="Demo Company")
    assert _view_site(operator_client.get("/dashboard/").content.decode()) == ("/widget-demo/", "View the demo site")
    # Another workspace's staff would see someone else's bot there: their start page instead.
    assert _view_site(tenant_client(alpha).get("/dashboard/").content.decode()) == ("/dashboard/", "Start page")
    demo_owner = UserFactory(tenant=demo, role=Role.OWNER, email="owner@demo.example")
    client = Client()
    assert login(client, demo_owner.email, DEFAULT_PASSWORD).status_code == 302
    assert _view_site(client.get("/dashboard/").content.decode()) == ("/widget-demo/", "View the demo site")


def test_every_dashboard_page_loads_the_dashboard_stylesheet_and_scroll_cues(
    alpha: TenantWorld, operator_client: Client
) -> None:
    client = tenant_client(alpha)
    for url in (
        "/dashboard/",
        "/dashboard/health/",
        "/dashboard/usage/",
        "/dashboard/sources/source/",
        "/dashboard/tenants/apitoken/",
        f"/dashboard/bots/botprofile/{alpha.bot.pk}/change/",
        "/dashboard/password_change/",
    ):
        html = client.get(url).content.decode()
        assert "dashboard/dashboard.css" in html and "dashboard/scroll_cue.js" in html, url
        assert html.count("dashboard/scroll_cue.js") == 1, url
    assert "dashboard/dashboard.css" in operator_client.get("/dashboard/tenants/tenant/").content.decode()
