"""The widget's appearance: stored on the bot (validated, 422 per bad setting), shown in its read shape,
changed by owners and admins (API and dashboard), and served to the bot's own widget token at
`GET /v1/bot-profiles/{id}/widget-config` (cacheable, CORS per token and per bot)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from bots.appearance import DEFAULTS
from bots.models import BotProfile
from conftest import TenantWorld, api_client
from tenants.tenancy import tenant_scope
from tenants.tests.factories import make_token

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"
SETTINGS = {
    "title": "Help desk",
    "accent_color": "#0F766E",
    "position": "bottom-left",
    "launcher": "help",
    "avatar_url": "https://cdn.example.com/team/ada.png?size=64",
    "welcome_message": "Hi! Ask me about returns.\nWe answer in seconds.",
    "starter_questions": ["How do returns work?", "Where is my order?"],
    "lang": "de",
    "powered_by": True,
}


def config_url(bot: BotProfile | str) -> str:
    return f"/v1/bot-profiles/{getattr(bot, 'pk', bot)}/widget-config"


def patch_widget(world: TenantWorld, widget: Any, who: str = "admin") -> Any:
    return world.client(who).patch(f"/v1/bot-profiles/{world.bot.pk}", {"widget": widget}, format="json")


def site_token(world: TenantWorld, origins: list[str] | None = None, bot: BotProfile | None = None) -> str:
    return make_token(world.owner, name="site", bot_profile=bot or world.bot, allowed_origins=origins or [SHOP])[1]


# --- Stored on the bot --------------------------------------------------------------------------


def test_a_new_bot_reads_the_defaults(alpha: TenantWorld) -> None:
    bot = alpha.client("admin").post("/v1/bot-profiles", {"name": "Support"}, format="json").json()
    assert bot["widget"] == DEFAULTS


def test_a_list_of_bots_shows_each_ones_appearance_building_the_serializer_once(
    alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bots.serializers import WidgetAppearanceSerializer

    client = alpha.client("admin")
    for number in range(3):
        widget = {"title": f"Desk {number}"}
        response = client.post("/v1/bot-profiles", {"name": f"Bot {number}", "widget": widget}, format="json")
        assert response.status_code == 201, response.json()
    built: list[int] = []
    real = WidgetAppearanceSerializer.get_fields
    monkeypatch.setattr(WidgetAppearanceSerializer, "get_fields", lambda self: built.append(1) or real(self))

    bots = client.get("/v1/bot-profiles?limit=100").json()
    titles = {bot["name"]: bot["widget"]["title"] for bot in bots}
    assert {titles[f"Bot {number}"] for number in range(3)} == {"Desk 0", "Desk 1", "Desk 2"}
    assert all(set(bot["widget"]) == set(DEFAULTS) for bot in bots)
    assert len(built) == 1  # once for the list, not once per bot


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_owners_and_admins_set_the_appearance(alpha: TenantWorld, who: str) -> None:
    response = patch_widget(alpha, SETTINGS, who)
    assert response.status_code == 200, response.json()
    widget = response.json()["widget"]
    assert widget == {**SETTINGS, "accent_color": "#0f766e", "welcome_message": SETTINGS["welcome_message"]}
    assert alpha.client("member").get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"] == widget
    with tenant_scope(alpha.tenant):
        alpha.bot.refresh_from_db()
        assert alpha.bot.widget["title"] == "Help desk"


def test_a_patch_changes_only_the_settings_it_names_and_null_restores_a_default(alpha: TenantWorld) -> None:
    patch_widget(alpha, SETTINGS)
    widget = patch_widget(alpha, {"title": "Support", "lang": None}).json()["widget"]
    assert widget == {**SETTINGS, "accent_color": "#0f766e", "title": "Support", "lang": None}
    # Settings equal to the default are not stored: a changed default reaches them.
    patch_widget(alpha, {"position": "bottom-right", "powered_by": False})
    with tenant_scope(alpha.tenant):
        alpha.bot.refresh_from_db()
        assert "position" not in alpha.bot.widget and "powered_by" not in alpha.bot.widget
    assert patch_widget(alpha, None).json()["widget"] == DEFAULTS
    # The other fields of a PATCH are untouched by it, and the reverse.
    both = alpha.client("admin").patch(
        f"/v1/bot-profiles/{alpha.bot.pk}", {"name": "Renamed", "widget": {"title": "T"}}, format="json"
    )
    assert both.json()["name"] == "Renamed" and both.json()["widget"]["title"] == "T"


def test_a_bot_is_created_with_its_appearance(alpha: TenantWorld) -> None:
    response = alpha.client("owner").post(
        "/v1/bot-profiles", {"name": "Shop", "widget": {"accent_color": "#112233"}}, format="json"
    )
    assert response.status_code == 201 and response.json()["widget"]["accent_color"] == "#112233"


@pytest.mark.parametrize(
    ("widget", "field"),
    [
        ("blue", "widget"),
        (["title"], "widget"),
        ({"colour": "#ffffff"}, "widget"),
        ({"title": 7}, "widget.title"),
        ({"title": "x" * 81}, "widget.title"),
        ({"title": "two\nlines"}, "widget.title"),
        ({"accent_color": "blue"}, "widget.accent_color"),
        ({"accent_color": "#fff"}, "widget.accent_color"),
        ({"accent_color": "#12345g"}, "widget.accent_color"),
        ({"position": "top-left"}, "widget.position"),
        ({"launcher": "rocket"}, "widget.launcher"),
        ({"avatar_url": "http://cdn.example.com/a.png"}, "widget.avatar_url"),
        ({"avatar_url": "javascript:alert(1)"}, "widget.avatar_url"),
        ({"avatar_url": "https://user:secret@cdn.example.com/a.png"}, "widget.avatar_url"),
        ({"avatar_url": "https:///a.png"}, "widget.avatar_url"),
        ({"avatar_url": "https://cdn.example.com/a b.png"}, "widget.avatar_url"),
        ({"avatar_url": "https://cdn.example.com:99999/a.png"}, "widget.avatar_url"),
        ({"avatar_url": "https://cdn.example.com/" + "a" * 500}, "widget.avatar_url"),
        ({"avatar_url": 5}, "widget.avatar_url"),
        ({"welcome_message": "x" * 1001}, "widget.welcome_message"),
        ({"starter_questions": "How?"}, "widget.starter_questions"),
        ({"starter_questions": [f"Question {n}?" for n in range(7)]}, "widget.starter_questions"),
        ({"starter_questions": ["x" * 201]}, "widget.starter_questions"),
        ({"starter_questions": ["  "]}, "widget.starter_questions"),
        ({"starter_questions": ["Same?", "Same?"]}, "widget.starter_questions"),
        ({"starter_questions": [1]}, "widget.starter_questions"),
        ({"lang": "es"}, "widget.lang"),
        ({"powered_by": "yes"}, "widget.powered_by"),
    ],
)
def test_each_bad_setting_is_a_422_naming_it_and_changes_nothing(alpha: TenantWorld, widget: Any, field: str) -> None:
    patch_widget(alpha, {"title": "Before"})
    response = patch_widget(alpha, widget)
    assert response.status_code == 422, response.json()
    body = response.json()
    assert set(body["errors"]) == {field} and body["detail"].startswith(f"{field}: ")
    assert alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"]["title"] == "Before"


def test_six_starter_questions_of_200_characters_fit(alpha: TenantWorld) -> None:
    questions = [f"{n} " + "x" * 198 for n in range(6)]
    response = patch_widget(alpha, {"starter_questions": questions})
    assert response.status_code == 200 and response.json()["widget"]["starter_questions"] == questions


def test_members_and_widget_tokens_cannot_change_the_appearance(alpha: TenantWorld) -> None:
    assert patch_widget(alpha, {"title": "Mine"}, "member").status_code == 403
    assert patch_widget(alpha, {"title": "Mine"}, "bot").status_code == 403
    assert alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"]["title"] == ""


# --- GET /v1/bot-profiles/{id}/widget-config ----------------------------------------------------


def test_the_bots_widget_token_reads_its_appearance_with_cache_headers(alpha: TenantWorld) -> None:
    patch_widget(alpha, SETTINGS)
    client = api_client(site_token(alpha), HTTP_ORIGIN=SHOP)
    response = client.get(config_url(alpha.bot))
    assert response.status_code == 200
    assert response.json() == {**SETTINGS, "accent_color": "#0f766e", "handoff": "off"}
    assert response["Cache-Control"] == "public, max-age=300"
    assert {"Origin", "Authorization"} <= {part.strip() for part in response["Vary"].split(",")}
    assert response["Access-Control-Allow-Origin"] == SHOP and "ETag" in response["Access-Control-Expose-Headers"]
    etag = response["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == etag and again["Cache-Control"] == "public, max-age=300"
    assert again["Access-Control-Allow-Origin"] == SHOP
    assert client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH='"stale", ' + etag).status_code == 304
    assert client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH="W/" + etag).status_code == 304
    assert client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH='"stale"').status_code == 200

    # A change on the dashboard is a new version.
    patch_widget(alpha, {"title": "New title"})
    changed = client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag and changed.json()["title"] == "New title"


def test_it_holds_the_appearance_and_the_handoff_setting_only(alpha: TenantWorld) -> None:
    response = api_client(alpha.tokens["bot"]).get(config_url(alpha.bot))
    assert response.status_code == 200
    assert set(response.json()) == {*DEFAULTS, "handoff"}
    text = response.content.decode()
    for secret in (alpha.bot.model, alpha.bot.system_prompt, str(alpha.tenant.pk), alpha.bot.name):
        assert secret not in text


@pytest.mark.parametrize("mode", ["on_request", "offered", "off"])
def test_it_tells_the_widget_the_bots_handoff_setting_as_a_new_version(alpha: TenantWorld, mode: str) -> None:
    client = api_client(site_token(alpha), HTTP_ORIGIN=SHOP)
    before = client.get(config_url(alpha.bot))
    assert before.json()["handoff"] == "off"
    changed = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"handoff": mode}, format="json")
    assert changed.status_code == 200, changed.content
    after = client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH=before["ETag"])
    if mode == "off":  # no change: the copy the widget holds is still current
        assert after.status_code == 304 and after["ETag"] == before["ETag"]
        return
    assert after.status_code == 200 and after["ETag"] != before["ETag"]
    assert after.json() == {**before.json(), "handoff": mode}
    assert client.get(config_url(alpha.bot), HTTP_IF_NONE_MATCH=after["ETag"]).status_code == 304
    # It is the bot's setting, not an appearance setting: the bot's `widget` neither shows nor takes it.
    bot = alpha.client("member").get(f"/v1/bot-profiles/{alpha.bot.pk}").json()
    assert bot["handoff"] == mode and "handoff" not in bot["widget"]
    refused = patch_widget(alpha, {"handoff": "off"})
    assert refused.status_code == 422 and "handoff" in refused.json()["detail"]


def test_tenant_tokens_and_other_bots_tokens_are_refused(alpha: TenantWorld, beta: TenantWorld) -> None:
    for who in ("owner", "admin", "member"):
        refused = alpha.client(who).get(config_url(alpha.bot))
        assert refused.status_code == 403 and "widget token" in refused.json()["detail"]
    with tenant_scope(alpha.tenant):
        other_bot = BotProfile.objects.create(tenant=alpha.tenant, name="Other bot")
    other = api_client(site_token(alpha, bot=other_bot)).get(config_url(alpha.bot))
    assert other.status_code == 403 and "its own bot" in other.json()["detail"]
    # Another tenant's bot is not found, exactly like one that does not exist.
    missing = api_client(alpha.tokens["bot"]).get(config_url("00000000-0000-0000-0000-000000000000"))
    assert missing.status_code == 404
    for client in (beta.client("owner"), beta.client("bot")):
        response = client.get(config_url(alpha.bot))
        assert (response.status_code, response.json()) == (404, missing.json())
    assert api_client(alpha.tokens["bot"]).get(config_url("not-a-uuid")).status_code == 404
    assert api_client().get(config_url(alpha.bot)).status_code == 401
    assert api_client("nrag_live_not-a-real-token").get(config_url(alpha.bot)).status_code == 401


def test_an_inactive_bot_has_no_widget_config(alpha: TenantWorld) -> None:
    alpha.client("admin").delete(f"/v1/bot-profiles/{alpha.bot.pk}")
    assert api_client(alpha.tokens["bot"]).get(config_url(alpha.bot)).status_code == 404


def test_a_page_on_another_origin_is_refused_and_told_why(alpha: TenantWorld) -> None:
    raw = site_token(alpha)
    refused = api_client(raw, HTTP_ORIGIN="https://evil.example").get(config_url(alpha.bot))
    assert refused.status_code == 403 and "allowed_origins" in refused.json()["detail"]
    # Readable by that page (the widget logs why), like a refused chat.
    assert refused["Access-Control-Allow-Origin"] == "https://evil.example"
    # Tenant tokens are never for browsers on other sites: no CORS for them.
    tenant = alpha.client("owner", HTTP_ORIGIN=SHOP).get(config_url(alpha.bot))
    assert tenant.status_code == 403 and "Access-Control-Allow-Origin" not in tenant


def preflight(client: Client, url: str, origin: str) -> Any:
    return client.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, x-minirag-visitor",
    )


def test_the_preflight_is_granted_to_the_origins_of_the_bots_widget_tokens_only(
    alpha: TenantWorld, beta: TenantWorld, client: Client
) -> None:
    site_token(alpha, [SHOP, "http://localhost:8000"])
    allowed = preflight(client, config_url(alpha.bot), SHOP)
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert "GET" in allowed["Access-Control-Allow-Methods"]
    assert {"authorization", "x-minirag-visitor"} <= {
        header.strip().lower() for header in allowed["Access-Control-Allow-Headers"].split(",")
    }
    assert "Origin" in allowed["Vary"] and "Access-Control-Allow-Credentials" not in allowed
    assert preflight(client, config_url(alpha.bot), "http://localhost:8000").status_code == 204

    for origin, url in (
        ("https://evil.example", config_url(alpha.bot)),
        (SHOP, config_url(beta.bot)),  # another bot's tokens do not allow it
        (SHOP, config_url("00000000-0000-0000-0000-000000000000")),
        (SHOP, config_url("not-a-uuid")),
    ):
        refused = preflight(client, url, origin)
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused, (origin, url)
    # A revoked token allows nothing any more.
    tokens = alpha.client("admin").get("/v1/api-tokens").json()
    site = next(token for token in tokens if token["name"] == "site")
    assert alpha.client("admin").delete(f"/v1/api-tokens/{site['id']}").status_code == 204
    assert preflight(client, config_url(alpha.bot), SHOP).status_code == 403


def test_the_route_is_in_the_openapi_schema(db: Any) -> None:
    schema = api_client().get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/v1/bot-profiles/{id}/widget-config"]["get"]
    assert operation["operationId"] == "bot_profiles_widget_config"
    assert {"200", "304", "403", "404"} <= set(operation["responses"])
    assert "ETag" in operation["responses"]["200"]["headers"]
    document = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(schema["components"]["schemas"][document]["properties"]) == {*DEFAULTS, "handoff"}
    bot = schema["components"]["schemas"]["BotProfile"]["properties"]
    assert "widget" in bot


# --- The dashboard ------------------------------------------------------------------------------


def dashboard(world: TenantWorld, who: str = "owner") -> Client:
    client = Client()
    response = client.post(
        "/dashboard/login/?next=/dashboard/", {"username": getattr(world, who).email, "password": world.password}
    )
    assert response.status_code == 302
    return client


def change_form(client: Client, url: str, **values: Any) -> dict[str, Any]:
    """The bot's form as the page shows it (inline management forms included), with `values` changed."""
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        value = value() if callable(value) else value
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else getattr(value, "pk", value)
    for formset in page.context.get("inline_admin_formsets", []):
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, management[name].value())
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def test_the_appearance_fieldset_saves_and_shows_a_live_preview(alpha: TenantWorld) -> None:
    client = dashboard(alpha, "admin")
    url = reverse("admin:bots_botprofile_change", args=[alpha.bot.pk])
    page = client.get(url).content.decode()
    assert "Widget appearance" in page and 'class="module aligned mr-appearance"' in page
    assert 'id="mr-appearance-preview"' in page and "/static/widget/minirag-widget.js" in page
    assert 'type="color"' in page

    response = client.post(
        url,
        change_form(
            client,
            url,
            widget_title="Help desk",
            widget_accent_color="#0f766e",
            widget_position="bottom-left",
            widget_launcher="sparkle",
            widget_avatar_url="https://cdn.example.com/ada.png",
            widget_welcome_message="Hello!",
            widget_starter_questions="How do returns work?\n\n  Where is my order?  \n",
            widget_lang="fr",
            widget_powered_by="on",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    widget = alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"]
    assert widget == {
        "title": "Help desk",
        "accent_color": "#0f766e",
        "position": "bottom-left",
        "launcher": "sparkle",
        "avatar_url": "https://cdn.example.com/ada.png",
        "welcome_message": "Hello!",
        "starter_questions": ["How do returns work?", "Where is my order?"],
        "lang": "fr",
        "powered_by": True,
    }
    # The form shows what is stored; saving another field keeps it.
    again = client.get(url).context["adminform"].form
    assert again.initial["widget_starter_questions"] == "How do returns work?\nWhere is my order?"
    assert client.post(url, change_form(client, url, temperature=0.3)).status_code == 302
    assert alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"] == widget

    # Emptied, the settings go back to their defaults.
    client.post(
        url,
        change_form(
            client,
            url,
            widget_title="",
            widget_avatar_url="",
            widget_welcome_message="",
            widget_starter_questions="",
            widget_lang="",
            widget_powered_by=None,
        ),
    )
    widget = alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"]
    assert (widget["title"], widget["avatar_url"], widget["starter_questions"], widget["lang"]) == ("", None, [], None)
    assert widget["powered_by"] is False and widget["accent_color"] == "#0f766e"


def test_a_bad_setting_on_the_dashboard_shows_on_its_field(alpha: TenantWorld) -> None:
    client = dashboard(alpha)
    url = reverse("admin:bots_botprofile_change", args=[alpha.bot.pk])
    response = client.post(
        url,
        change_form(
            client,
            url,
            widget_avatar_url="http://cdn.example.com/ada.png",
            widget_starter_questions="\n".join(f"Question {n}?" for n in range(7)),
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "https" in " ".join(errors["widget_avatar_url"]), errors
    assert alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["widget"] == DEFAULTS


def test_a_bot_added_on_the_dashboard_gets_its_appearance(alpha: TenantWorld) -> None:
    client = dashboard(alpha)
    url = reverse("admin:bots_botprofile_add")
    response = client.post(
        url, change_form(client, url, name="Shop bot", widget_title="Shop help", widget_accent_color="#aa0000")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(alpha.tenant):
        bot = BotProfile.objects.get(name="Shop bot")
    assert bot.widget == {"title": "Shop help", "accent_color": "#aa0000"}
