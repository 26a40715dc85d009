"""The dashboard (/dashboard/): operators see every tenant; a tenant's owners and admins see and
change only their own, everywhere (lists, pages, autocomplete, actions, custom pages), because
their requests run in their tenant's scope; members may open only the inbox; secrets never reach the HTML;
writes go through the same services as the API."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import reverse

from bots.models import BotProfile
from bots.services import bot_profile_credentials, bot_profile_update
from chat.models import Chat, Message, UnansweredQuestion, UsageEvent
from conftest import TenantWorld, api_client
from minirag.tests.benches import run_bench
from providers.models import Connection
from sources.models import Chunk, Source, SourceStatus
from sources.services import source_create, source_secrets
from tenants.models import ApiToken, Tenant, User
from tenants.services import user_create
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from webhooks.models import Webhook, WebhookDelivery
from webhooks.tests.conftest import Receiver, assert_authentic, receiver  # noqa: F401 - the receiver fixture

pytestmark = pytest.mark.django_db
OPERATOR_EMAIL, OPERATOR_PASSWORD = "ops@example.com", "operator-password"
BOT_API_KEY = "sk-test-provider-key-that-must-stay-hidden"
NYXCORE_TOKEN = "nyx-search-token-that-must-stay-hidden"


def login(client: Client, email: str, password: str, workspace: str = "") -> Any:
    return client.post(
        "/dashboard/login/?next=/dashboard/", {"username": email, "password": password, "workspace": workspace}
    )


@pytest.fixture
def operator_client(client: Client) -> Client:
    return log_in_operator(client)


def log_in_operator(client: Client) -> Client:
    """`client`, logged in as a new platform operator."""
    with tenant_scope_disabled("test: create operator"):
        User.objects.create_superuser(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    assert login(client, OPERATOR_EMAIL, OPERATOR_PASSWORD).status_code == 302
    return client


def tenant_client(world: TenantWorld, who: str = "owner") -> Client:
    client = Client()
    response = login(client, getattr(world, who).email, world.password)
    assert response.status_code == 302, response.content[:2000]
    return client


def with_secrets(world: TenantWorld) -> None:
    """Give the world one secret of every kind the dashboard must never show."""
    with tenant_scope(world.tenant):
        bot_profile_update(tenant=world.tenant, bot=world.bot, credentials={"api_key": BOT_API_KEY})
        source_create(
            tenant=world.tenant,
            bot_profile=world.bot,
            name="search service",
            source_type="nyxcore",
            config={"base_url": "https://search.example.com", "api_token": NYXCORE_TOKEN},
        )


def model_pages(world: TenantWorld, *, operator: bool = False) -> Iterator[tuple[type, Any]]:
    """(model, a row of `world`'s tenant) for every model the dashboard shows to a tenant's staff, or
    (`operator`) to the platform's operators, who also manage the named connections."""
    with tenant_scope_disabled("test: pick rows"):
        for model in admin.site._registry:
            if model is Connection:
                if operator:
                    yield model, world.connection
                continue
            if model is Tenant:
                yield model, world.tenant
                continue
            if model is User:
                yield model, world.admin
                continue
            row = model.all_tenants.filter(tenant=world.tenant).first()
            assert row is not None, f"build_world has no {model.__name__}: give it one so the dashboard is walked"
            yield model, row


def admin_url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


# --- Who may log in ---------------------------------------------------------------------------


def test_operators_owners_and_admins_log_in_members_do_not(alpha: TenantWorld, operator_client: Client) -> None:
    assert operator_client.get("/dashboard/").status_code == 200
    for who in ("owner", "admin"):
        assert tenant_client(alpha, who).get("/dashboard/").status_code == 200
    # Members get in only to answer visitors, while they may read every chat (inbox/tests/test_dashboard_inbox.py).
    Tenant.objects.filter(pk=alpha.tenant.pk).update(members_see_all_chats=False)
    refused = login(Client(), alpha.member.email, alpha.password)
    assert refused.status_code == 200
    assert b"dashboard is for owners and admins" in refused.content
    wrong = login(Client(), alpha.owner.email, "not-the-password")
    assert b"Please enter the correct email and password" in wrong.content


def test_an_email_in_two_tenants_logs_in_with_its_workspace(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(beta.tenant):
        user_create(tenant=beta.tenant, actor=None, email=alpha.owner.email, password=alpha.password, role="owner")
    assert login(Client(), alpha.owner.email, alpha.password).status_code == 200  # ambiguous
    client = Client()
    assert login(client, alpha.owner.email, alpha.password, workspace="beta").status_code == 302
    page = client.get("/dashboard/bots/botprofile/")
    assert b"beta bot" in page.content and b"alpha bot" not in page.content


def test_a_deactivated_tenant_locks_its_admins_out(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    Tenant.objects.filter(pk=alpha.tenant.pk).update(is_active=False)
    assert client.get("/dashboard/bots/botprofile/").status_code == 302  # back to the login page
    assert login(Client(), alpha.owner.email, alpha.password).status_code == 200


# --- Operators: every page, every tenant ------------------------------------------------------


def test_an_operator_sees_every_page_of_every_tenant(
    alpha: TenantWorld, beta: TenantWorld, operator_client: Client
) -> None:
    for world in (alpha, beta):
        for model, row in model_pages(world, operator=True):
            for view, args in (("changelist", ()), ("change", (row.pk,)), ("history", (row.pk,))):
                response = operator_client.get(admin_url(model, view, *args))
                assert response.status_code == 200, (model.__name__, view, response.status_code)
            if admin.site._registry[model].has_add_permission(_request_of(operator_client)):
                assert operator_client.get(admin_url(model, "add")).status_code == 200, model.__name__
    bots = operator_client.get("/dashboard/bots/botprofile/").content.decode()
    assert "alpha bot" in bots and "beta bot" in bots
    assert "Alpha Inc" in bots and "Beta Inc" in bots  # the tenant column
    assert "tenant__id__exact" in bots  # and its filter
    assert operator_client.get("/dashboard/usage/?tenant=beta").status_code == 200
    assert operator_client.get("/dashboard/health/").status_code == 200


def _request_of(client: Client) -> Any:
    """A request carrying the client's logged-in user (for permission questions)."""
    request = RequestFactory().get("/dashboard/")
    with tenant_scope_disabled("test: the logged-in user"):
        request.user = User.all_tenants.get(pk=client.session["_auth_user_id"])
    return request


# --- Tenant admins: their tenant only, enforced by the scope ----------------------------------


def test_a_tenant_admin_sees_only_their_tenant_everywhere(alpha: TenantWorld, beta: TenantWorld) -> None:
    client = tenant_client(alpha, "admin")
    beta_markers = [beta.bot.name, beta.owner.email, beta.tenant.name, beta.webhook.url, str(beta.bot.pk)]
    for model, row in model_pages(alpha):
        listing = client.get(admin_url(model, "changelist"))
        assert listing.status_code == 200, model.__name__
        text = listing.content.decode()
        for marker in beta_markers:
            assert marker not in text, (model.__name__, marker)
        assert "tenant__id__exact" not in text  # no tenant filter for tenant users
        assert client.get(admin_url(model, "change", row.pk)).status_code == 200, model.__name__
    for model, row in model_pages(beta):
        for view in ("change", "history", "delete"):
            response = client.get(admin_url(model, view, row.pk))
            assert response.status_code == 404, (model.__name__, view, response.status_code)
    assert client.get(reverse("admin:bots_botprofile_try", args=[beta.bot.pk])).status_code == 404


def test_autocomplete_search_and_filters_stay_in_the_tenant(alpha: TenantWorld, beta: TenantWorld) -> None:
    client = tenant_client(alpha)
    found = client.get(
        "/dashboard/autocomplete/",
        {"term": "", "app_label": "sources", "model_name": "source", "field_name": "bot_profile"},
    ).json()
    assert [item["text"] for item in found["results"]] == ["alpha bot"]
    search = client.get("/dashboard/sources/source/", {"q": "handbook"}).content.decode()
    assert "alpha handbook" in search and "beta handbook" not in search
    filtered = client.get("/dashboard/sources/source/", {"bot_profile__id__exact": str(beta.bot.pk)})
    assert "beta handbook" not in filtered.content.decode()
    progress = client.get(
        "/dashboard/sources/source/progress/", {"id": [str(alpha.text_source.pk), str(beta.text_source.pk)]}
    ).json()
    assert set(progress) == {str(alpha.text_source.pk)}


def test_actions_on_another_tenants_ids_touch_nothing(alpha: TenantWorld, beta: TenantWorld) -> None:
    client = tenant_client(alpha)
    response = client.post(
        "/dashboard/tenants/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [str(beta.token_rows["owner"].pk)]},
    )
    assert response.status_code in (200, 302)
    assert api_client(beta.tokens["owner"]).get("/v1/tenants/me").status_code == 200
    client.post(
        "/dashboard/sources/source/",
        {"action": "deactivate_sources", "_selected_action": [str(beta.text_source.pk)]},
    )
    with tenant_scope(beta.tenant):
        assert Source.objects.get(pk=beta.text_source.pk).is_active


def test_tenant_pages_show_only_the_tenant(alpha: TenantWorld, beta: TenantWorld) -> None:
    client = tenant_client(alpha)
    usage = client.get("/dashboard/usage/", {"tenant": "beta"}).content.decode()  # ignored for tenant users
    assert "airspeed velocity" in usage  # alpha's unanswered question
    assert "beta bot" not in usage
    tenants = client.get("/dashboard/tenants/tenant/").content.decode()
    assert "Alpha Inc" in tenants and "Beta Inc" not in tenants
    assert client.get("/dashboard/tenants/tenant/add/").status_code == 403
    health = client.get("/dashboard/health/").content.decode()
    assert "<h2>Alpha Inc</h2>" in health  # this tenant's counts, and no other's
    assert re.search(r"<th scope=\"row\">sources.total</th><td>3</td>", health)  # text, upload, curated answer
    assert "Beta Inc" not in health


# --- Secrets ----------------------------------------------------------------------------------


def test_no_secret_ever_appears_in_dashboard_html(
    alpha: TenantWorld, beta: TenantWorld, operator_client: Client
) -> None:
    with_secrets(alpha)
    with tenant_scope_disabled("test: read stored ciphertexts"):
        bot = BotProfile.all_tenants.get(pk=alpha.bot.pk)
        secrets = [
            BOT_API_KEY,
            NYXCORE_TOKEN,
            bot.credentials_ciphertext,
            Webhook.all_tenants.get(pk=alpha.webhook.pk).secret_ciphertext,
            *(alpha.tokens[who] for who in ("owner", "admin", "member")),  # tenant tokens: hashed, never shown
            *(token.token_hash for token in ApiToken.all_tenants.filter(tenant=alpha.tenant)),
            *(token.raw_token_ciphertext for token in ApiToken.all_tenants.exclude(raw_token_ciphertext="")),
            *(s.config_secrets_ciphertext for s in Source.all_tenants.exclude(config_secrets_ciphertext="")),
            alpha.connection.credentials_ciphertext,
            "sk-alpha-connection",
        ]
    pages = ["/dashboard/", "/dashboard/usage/", "/dashboard/health/"]
    for model, row in model_pages(alpha, operator=True):
        pages += [admin_url(model, "changelist"), admin_url(model, "change", row.pk)]
    with tenant_scope(alpha.tenant):
        pages += [admin_url(Source, "change", s.pk) for s in Source.objects.all()]
    for client in (operator_client, tenant_client(alpha)):
        for page in pages:
            response = client.get(page)
            assert response.status_code in (200, 403), (page, response.status_code)  # 403: operators' pages
            html = response.content.decode()
            for secret in secrets:
                assert secret not in html, (page, secret[:12])
    bot_page = tenant_client(alpha).get(admin_url(BotProfile, "change", alpha.bot.pk)).content.decode()
    assert "Set: a provider key" in bot_page
    # The widget token is a publishable key: its snippet is on the bot's page by design.
    assert alpha.tokens["bot"] in bot_page


# --- Writes go through the services -----------------------------------------------------------


def form_data(client: Client, page_url: str, **values: Any) -> dict[str, Any]:
    """The add/change form's current values (inline management forms included), overridden."""
    page = client.get(page_url)
    assert page.status_code == 200, page_url
    context = page.context
    data: dict[str, Any] = {}
    form = context["adminform"].form
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if callable(value):
            value = value()
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        if hasattr(value, "pk"):
            value = value.pk
        data[name] = value
    for formset in context.get("inline_admin_formsets", []):
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, management[name].value())
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def shown_secret(response: Any) -> str:
    """The value on a "copy it now" page."""
    return re.search(r'<code class="mr-secret-value"[^>]*>([^<]+)</code>', response.content.decode()).group(1)


def test_a_bot_is_created_and_changed_with_a_write_only_provider_key(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    url = admin_url(BotProfile, "add")
    response = client.post(url, form_data(client, url, name="Support", api_key=BOT_API_KEY))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(alpha.tenant):
        bot = BotProfile.objects.get(name="Support")
        assert bot_profile_credentials(bot) == {"api_key": BOT_API_KEY}
        assert bot.tenant_id == alpha.tenant.pk
    change = admin_url(BotProfile, "change", bot.pk)
    assert client.post(change, form_data(client, change, temperature=0.2)).status_code == 302
    with tenant_scope(alpha.tenant):
        bot.refresh_from_db()
        assert bot.temperature == 0.2 and bot_profile_credentials(bot) == {"api_key": BOT_API_KEY}
    assert client.post(change, form_data(client, change, clear_credentials="on")).status_code == 302
    with tenant_scope(alpha.tenant):
        bot.refresh_from_db()
        assert not bot.has_credentials
    invalid = client.post(change, form_data(client, change, temperature=5))
    assert invalid.status_code == 200 and "temperature" in invalid.context["adminform"].form.errors


def test_an_admin_tests_retrieval_from_the_bots_page(alpha: TenantWorld, settings: Any) -> None:
    client = tenant_client(alpha, "admin")
    url = reverse("admin:bots_botprofile_retrieval_test", args=[alpha.bot.pk])
    assert f'href="{url}"' in client.get(admin_url(BotProfile, "change", alpha.bot.pk)).content.decode()
    page = client.get(url, {"question": "Refunds?"})
    assert page.status_code == 200 and page.context["form"].initial["question"] == "Refunds?"
    with tenant_scope(alpha.tenant):
        before = (Chat.objects.count(), Message.objects.count(), UsageEvent.objects.count())

    answered = client.post(
        url,
        {"question": "How long do refunds at alpha take?", "history": "user: Hello\nassistant: Hi!\nHow can I help?"},
    )
    assert answered.status_code == 200, answered.content[:2000]
    report = answered.context["report"]
    assert report["refused"] is False and report["history_used"] == 2
    html = answered.content.decode()
    assert 'data-verdict="answered"' in html
    assert "Refunds at alpha take five working days." in html  # the chunk, in full
    handbook = next(chunk for chunk in report["chunks"] if chunk["source_name"] == "alpha handbook")
    assert handbook["passed"] and f'data-chunk-id="{handbook["chunk_id"]}" data-passed="true"' in html
    assert str(handbook["dense_score"]) in html and str(handbook["lexical_score"]) in html

    refused = client.post(url, {"question": "Who won the football world cup in 1954?", "history": ""})
    html = refused.content.decode()
    assert refused.context["report"]["refused"] is True and 'data-verdict="refused"' in html
    assert "No chunk holds enough evidence" in html
    with tenant_scope(alpha.tenant):
        assert (Chat.objects.count(), Message.objects.count(), UsageEvent.objects.count()) == before

    bad = client.post(url, {"question": "Refunds?", "history": "Hello there"})
    assert bad.context["report"] is None
    assert bad.context["form"].errors["history"] == ['Line 1: start each turn with "user:" or "assistant:".']
    blank = client.post(url, {"question": "   ", "history": "user: hi\nassistant:  "})
    assert blank.context["report"] is None
    assert set(blank.context["form"].errors) == {"question", "history"}
    assert blank.context["form"].errors["history"] == ["Turn 2: The message is empty."]

    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "retrieval_test": "1/minute"}
    client.post(url, {"question": "Refunds?"})
    limited = client.post(url, {"question": "Refunds?"})
    assert limited.context["report"] is None
    assert "Too many retrieval tests" in limited.context["form"].non_field_errors()[0]


def test_retrieval_tests_stay_in_the_tenant(alpha: TenantWorld, beta: TenantWorld, operator_client: Client) -> None:
    beta_url = reverse("admin:bots_botprofile_retrieval_test", args=[beta.bot.pk])
    client = tenant_client(alpha, "owner")
    assert client.get(beta_url).status_code == 404
    assert client.post(beta_url, {"question": "How long do refunds at beta take?"}).status_code == 404
    member = Client()
    member.force_login(alpha.member)
    alpha_url = reverse("admin:bots_botprofile_retrieval_test", args=[alpha.bot.pk])
    for response in (member.get(alpha_url), member.post(alpha_url, {"question": "Refunds?"})):
        assert response.status_code == 403  # a member who answers visitors: the inbox only
    # An operator tests any tenant's bot, acting for that tenant.
    tested = operator_client.post(beta_url, {"question": "How long do refunds at beta take?"})
    assert tested.status_code == 200 and tested.context["report"]["refused"] is False
    assert "alpha" not in " ".join(chunk["content"] for chunk in tested.context["report"]["chunks"])


def add_source_url(kind: str, bot: Any = None) -> str:
    return admin_url(Source, "add") + f"?source_type={kind}" + (f"&bot_profile={bot.pk}" if bot else "")


def test_sources_are_added_through_the_services_and_ingested(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    client = tenant_client(alpha)
    url = add_source_url("text", alpha.bot)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            form_data(
                client,
                url,
                name="Returns policy",
                content="Returns are accepted within thirty days of delivery.",
                authority="guideline",
                ingest_now="on",
            ),
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(alpha.tenant):
        source = Source.objects.get(name="Returns policy")
        assert source.status == SourceStatus.READY and source.chunk_count == 1
        assert (source.bot_profile_id, source.authority) == (alpha.bot.pk, "guideline")

    # An upload is ingested like one through the API (the upload service queues it on commit)...
    url = add_source_url("upload", alpha.bot)
    upload = SimpleUploadedFile("faq.md", b"# FAQ\n\nWe ship to every country in the EU.")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form_data(client, url, file=upload, name="", authority="mandatory"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(alpha.tenant):
        uploaded = Source.objects.get(name="faq.md")
        assert uploaded.config["original_filename"] == "faq.md" and uploaded.authority == "mandatory"
        assert uploaded.status == SourceStatus.READY and uploaded.chunk_count == 1
    # ...unless "Ingest right away" is unticked.
    later = SimpleUploadedFile("later.md", b"# Later\n\nRead me next week.")
    values = form_data(client, url, file=later, name="")
    del values["ingest_now"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, values).status_code == 302
    with tenant_scope(alpha.tenant):
        assert Source.objects.get(name="later.md").status == SourceStatus.PENDING

    settings.ALLOW_PRIVATE_NETWORKS = False
    with tenant_scope(alpha.tenant):
        before = Source.objects.count()
    url = add_source_url("url", alpha.bot)
    refused = client.post(url, form_data(client, url, name="x", url="http://10.0.0.1/"))
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "url" in errors and "private or reserved address" in str(errors["url"])
    # One message per field: a malformed address is not also "missing".
    malformed = client.post(url, form_data(client, url, url="htp://example"))
    assert malformed.context["adminform"].form.errors["url"] == ["Enter a valid URL."]
    with tenant_scope(alpha.tenant):
        assert Source.objects.count() == before

    url = add_source_url("upload", alpha.bot)
    unsupported = client.post(url, form_data(client, url, file=SimpleUploadedFile("tool.exe", b"MZ\x90\x00binary")))
    assert "Unsupported file type" in str(unsupported.context["adminform"].form.errors)


def test_the_source_list_polls_status_chunk_count_and_ocr_progress(alpha: TenantWorld) -> None:
    """The list's progress JSON (what dashboard.js polls) carries, with the status, the row's
    chunk count and error and the OCR stage; the list marks the cells the script rewrites."""
    client = tenant_client(alpha)
    source = alpha.text_source
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=source.pk).update(
            status=SourceStatus.PROCESSING, chunks_done=0, chunks_total=0, ocr_pages_done=2, ocr_pages_total=5
        )
    listing = client.get("/dashboard/sources/source/").content.decode()
    assert f'<span data-source-chunks="{source.pk}">1</span>' in listing
    assert f'data-source-error="{source.pk}"' in listing and "OCR: 2/5 pages" in listing

    def polled() -> dict[str, Any]:
        return client.get("/dashboard/sources/source/progress/", {"id": [str(source.pk)]}).json()[str(source.pk)]

    reading = polled()
    assert (reading["status"], reading["percent"], reading["detail"]) == ("processing", 40, "OCR: 2/5 pages")
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=source.pk).update(chunks_done=3, chunks_total=12)
    embedding = polled()
    assert (embedding["percent"], embedding["detail"]) == (25, "3/12 chunks")
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=source.pk).update(status=SourceStatus.READY, chunks_done=12, chunk_count=12)
    ready = polled()
    assert (ready["status"], ready["label"], ready["chunk_count"], ready["percent"]) == ("ready", "Ready", 12, 100)
    assert ready["detail"] == "" and not ready["in_flight"]
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=source.pk).update(status=SourceStatus.ERROR, error_message="No text found.")
    assert polled()["error_message"] == "No text found."


def test_a_nyxcore_token_is_write_only_in_the_source_form(alpha: TenantWorld) -> None:
    with_secrets(alpha)
    client = tenant_client(alpha)
    with tenant_scope(alpha.tenant):
        source = Source.objects.get(name="search service")
    change = admin_url(Source, "change", source.pk)
    page = client.get(change).content.decode()
    assert NYXCORE_TOKEN not in page
    response = client.post(change, form_data(client, change, search_limit=20))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(alpha.tenant):
        source.refresh_from_db()
        assert source.config["limit"] == 20 and source_secrets(source)["api_token"] == NYXCORE_TOKEN


def test_source_actions_ingest_and_deactivate(alpha: TenantWorld, django_capture_on_commit_callbacks: Any) -> None:
    client = tenant_client(alpha)
    source_id = str(alpha.text_source.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/dashboard/sources/source/", {"action": "ingest_now", "_selected_action": [source_id]}, follow=True
        )
    assert "Queued 1 source(s) for ingestion." in response.content.decode()
    response = client.post(
        "/dashboard/sources/source/", {"action": "deactivate_sources", "_selected_action": [source_id]}, follow=True
    )
    assert "Deactivated 1 source(s)." in response.content.decode()
    with tenant_scope(alpha.tenant):
        assert not Source.objects.get(pk=source_id).is_active
    again = client.post(
        "/dashboard/sources/source/", {"action": "ingest_now", "_selected_action": [source_id]}, follow=True
    )
    assert "reactivate it" in again.content.decode()  # the service's refusal, readable


def test_a_widget_token_is_created_on_the_bot_page_and_its_code_shown_there(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    bot_page = admin_url(BotProfile, "change", alpha.bot.pk)
    url = admin_url(ApiToken, "add") + f"?bot_profile={alpha.bot.pk}"
    # Without an origin it asks first: browsers would refuse such a token.
    unconfirmed = client.post(url, {"name": "Shop widget", "bot_profile": str(alpha.bot.pk)})
    assert "Browsers refuse a widget token without allowed origins" in str(
        unconfirmed.context["adminform"].form.errors["allowed_origins_text"]
    )
    # What the bot page's "Create the code for my site" sends.
    response = client.post(
        url,
        {
            "name": "Shop widget",
            "bot_profile": str(alpha.bot.pk),
            "allowed_origins_text": "https://shop.example\nhttps://www.shop.example",
        },
    )
    with tenant_scope(alpha.tenant):
        token = ApiToken.objects.get(name="Shop widget")
    assert response.status_code == 302 and response["Location"] == f"{bot_page}?token={token.pk}#embed"
    page = html.unescape(client.get(response["Location"]).content.decode())
    raw = re.search(r'data-api-token="(nrag_live_[^"]+)"', page).group(1)
    assert "Widget token “Shop widget” created" in page and "<code>https://www.shop.example</code>" in page
    assert token.allowed_origins == ["https://shop.example", "https://www.shop.example"]
    chat = api_client(raw, HTTP_ORIGIN="https://shop.example").post(
        "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "When does the office open?"}, format="json"
    )
    assert chat.status_code == 200
    assert "/v1/api-tokens" not in page and "YOUR_BOT_TOKEN" not in page  # no API instructions on the page
    bad = client.post(url, {"name": "x", "bot_profile": str(alpha.bot.pk), "allowed_origins_text": "ftp://x"})
    assert "allowed_origins_text" in bad.context["adminform"].form.errors
    confirmed = client.post(url, {"name": "Server", "bot_profile": str(alpha.bot.pk), "confirm_no_origins": "on"})
    assert confirmed.status_code == 302

    # A tenant token is a secret: shown once, on a page of its own.
    tenant_token = client.post(admin_url(ApiToken, "add"), {"name": "CI deploys"})
    assert tenant_token.status_code == 200 and shown_secret(tenant_token).startswith("nrag_live_")
    assert raw not in client.get(admin_url(ApiToken, "change", token.pk)).content.decode()

    client.post(admin_url(ApiToken, "changelist"), {"action": "revoke_tokens", "_selected_action": [str(token.pk)]})
    with tenant_scope(alpha.tenant):
        token.refresh_from_db()
        assert not token.is_active and token.raw_token_ciphertext == ""  # no copy of a dead key is kept
    assert (
        api_client(raw, HTTP_ORIGIN="https://shop.example")
        .post("/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "Hi"}, format="json")
        .status_code
        == 401
    )


def test_user_rules_are_the_apis(alpha: TenantWorld) -> None:
    admin_client = tenant_client(alpha, "admin")
    url = admin_url(User, "add")
    refused = admin_client.post(
        url,
        form_data(
            admin_client,
            url,
            email="new@alpha.example",
            role="owner",
            password1="long-enough-1",
            password2="long-enough-1",
        ),
    )
    assert refused.status_code == 200 and "Only an owner can grant the owner role." in refused.content.decode()
    created = admin_client.post(
        url,
        form_data(
            admin_client,
            url,
            email="new@alpha.example",
            role="member",
            password1="long-enough-1",
            password2="long-enough-1",
        ),
    )
    assert created.status_code == 302
    member = Client()
    assert login(member, "new@alpha.example", "long-enough-1").status_code == 302  # a member: the inbox only
    assert member.get("/dashboard/").url == "/dashboard/inbox/"
    assert (
        api_client()
        .post("/v1/auth/login", {"email": "new@alpha.example", "password": "long-enough-1"}, format="json")
        .status_code
        == 200
    )
    owner_password_page = reverse("admin:auth_user_password_change", args=[alpha.owner.pk])
    assert admin_client.get(owner_password_page).status_code == 403
    owner_client = tenant_client(alpha, "owner")
    change = admin_url(User, "change", alpha.owner.pk)
    last_owner = owner_client.post(change, form_data(owner_client, change, role="admin"))
    assert "last active owner" in last_owner.content.decode()


def test_webhooks_from_the_dashboard(alpha: TenantWorld, receiver: Receiver) -> None:  # noqa: F811
    client = tenant_client(alpha)
    url = admin_url(Webhook, "add")
    response = client.post(url, form_data(client, url, url=receiver.url(), events=["chat.message"], description="CRM"))
    assert response.status_code == 200
    secret = shown_secret(response)
    assert secret.startswith("whsec_")
    with tenant_scope(alpha.tenant):
        webhook = Webhook.objects.get(description="CRM")
    assert secret not in client.get(admin_url(Webhook, "change", webhook.pk)).content.decode()

    page = client.post(
        admin_url(Webhook, "changelist"), {"action": "send_test", "_selected_action": [str(webhook.pk)]}, follow=True
    )
    assert "answered 200" in page.content.decode()
    assert assert_authentic(receiver.received[-1], secret)["event"] == "test.ping"

    rotated = client.post(
        admin_url(Webhook, "changelist"), {"action": "rotate_secret", "_selected_action": [str(webhook.pk)]}
    )
    new_secret = shown_secret(rotated)
    assert new_secret != secret

    with tenant_scope(alpha.tenant):
        logged = WebhookDelivery.objects.filter(webhook=alpha.webhook, event="chat.message").first()
    response = client.post(
        admin_url(WebhookDelivery, "changelist"),
        {"action": "redeliver", "_selected_action": [str(logged.pk)]},
        follow=True,
    )
    assert "Queued 1 delivery(ies) again." in response.content.decode()

    client.post(admin_url(Webhook, "delete", webhook.pk), {"post": "yes"})
    with tenant_scope(alpha.tenant):
        assert not Webhook.objects.filter(pk=webhook.pk).exists()


def test_the_usage_page_draws_the_tenants_figures(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    page = client.get("/dashboard/usage/", {"days": 7}).content.decode()
    assert page.count('<svg class="mr-chart"') == 3
    assert "local/extractive" in page  # the model of the world's answered turn
    assert "airspeed velocity" in page  # the unanswered question
    with tenant_scope(alpha.tenant):
        assert UsageEvent.objects.exists() and UnansweredQuestion.objects.exists()
        assert Chat.objects.exists() and Message.objects.exists() and Chunk.objects.exists()


def test_an_operator_adds_rows_for_a_chosen_tenant_and_cannot_cross_them(
    alpha: TenantWorld, beta: TenantWorld, operator_client: Client
) -> None:
    url = admin_url(BotProfile, "add")
    response = operator_client.post(url, form_data(operator_client, url, tenant=str(beta.tenant.pk), name="Ops bot"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(beta.tenant):
        assert BotProfile.objects.filter(name="Ops bot").exists()

    # A source belongs to the tenant of the bot chosen for it: the bots are labelled with their tenant.
    url = add_source_url("text")
    page = operator_client.get(url).content.decode()
    assert f"{beta.tenant.name}: {beta.bot.name}" in page and f"{alpha.tenant.name}: {alpha.bot.name}" in page
    added = operator_client.post(
        url, form_data(operator_client, url, bot_profile=str(beta.bot.pk), name="ops", content="Text.")
    )
    assert added.status_code == 302, added.context["adminform"].form.errors
    with tenant_scope_disabled("test: look in every tenant"):
        assert Source.all_tenants.get(name="ops").tenant_id == beta.tenant.pk
    missing = operator_client.post(
        url, {"source_type": "text", "name": "x", "content": "y", "authority": "informational"}
    )
    assert "bot_profile" in missing.context["adminform"].form.errors


def test_the_dashboard_benchmark_runs_end_to_end() -> None:
    result = run_bench("dashboard_pages.py", "--rows", "40", "--repeat", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("sources list", "sources search", "chats list", "usage page", "API /v1/sources"):
        assert page in result.stdout
