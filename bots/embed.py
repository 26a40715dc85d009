"""The ready-to-paste widget snippet for a bot (`GET /v1/bot-profiles/{id}/embed`, /widget-demo/).

The snippet carries a bot token: a publishable key that only chats with this bot, only from the
origins it lists, within its rate limits (see docs/widget.md). The newest usable bot token of the
bot is used unless one is chosen; without one, the snippet has a placeholder and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.html import escape

from bots.models import BotProfile
from minirag.errors import InvalidInputError
from minirag.lookups import parse_uuid
from tenants.models import ANY_ORIGIN, ApiToken
from tenants.services import bot_token_raw

WIDGET_SCRIPT_PATH = "/dashboard/widget/minirag-widget.js"
TOKEN_PLACEHOLDER = "YOUR_BOT_TOKEN"


@dataclass(frozen=True)
class Embed:
    bot: BotProfile
    api_url: str
    script_url: str
    token: ApiToken | None
    raw_token: str | None
    warnings: list[str] = field(default_factory=list)

    def _attributes(self, prefix: str) -> list[tuple[str, str]]:
        return [
            (f"{prefix}bot-id", str(self.bot.pk)),
            (f"{prefix}api-url", self.api_url),
            (f"{prefix}api-token", self.raw_token or TOKEN_PLACEHOLDER),
        ]  # the look (title, colour, welcome…) is the bot's stored widget settings: no attribute overrides it

    @property
    def script_snippet(self) -> str:
        attributes = "".join(f' {name}="{escape(value)}"' for name, value in self._attributes("data-"))
        return f'<script src="{escape(self.script_url)}"{attributes} async></script>'

    @property
    def element_snippet(self) -> str:
        attributes = "".join(f'\n  {name}="{escape(value)}"' for name, value in self._attributes(""))
        return (
            f'<script src="{escape(self.script_url)}" async></script>\n<minirag-widget{attributes}>\n</minirag-widget>'
        )


def public_base_url(request: Any) -> str:
    """Where browsers reach this server: MINIRAG_PUBLIC_URL, else the address of this request."""
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def _usable_bot_tokens(bot: BotProfile) -> list[ApiToken]:
    now = timezone.now()
    tokens = ApiToken.objects.filter(
        tenant_id=bot.tenant_id, bot_profile=bot, is_active=True, is_dashboard_preview=False
    ).order_by("-created_at")
    return [token for token in tokens if not token.is_expired(now)]


def _chosen_token(bot: BotProfile, token_id: str | None) -> ApiToken | None:
    tokens = _usable_bot_tokens(bot)
    if token_id:
        wanted = parse_uuid(token_id)
        chosen = next((token for token in tokens if token.pk == wanted), None)
        if chosen is None:
            raise InvalidInputError.for_field("token_id", "No active bot token of this bot has this id.")
        return chosen
    # Prefer a token whose raw value is kept and that some web page may actually use.
    return max(tokens, key=lambda t: (bool(t.raw_token_ciphertext), bool(t.allowed_origins)), default=None)


def _warnings(bot: BotProfile, token: ApiToken | None, raw_token: str | None, *, for_dashboard: bool) -> list[str]:
    """What to fix before going live: said with the API call that fixes it, or (`for_dashboard`)
    in the words of the bot's dashboard page, where the fix is a form next to it."""
    if not bot.is_active:
        return ["This bot is inactive: the widget will answer 'not found' until it is active again."]
    if token is None:
        if for_dashboard:
            return ["This bot has no widget token yet: add your site's address below to create one."]
        return [
            "This bot has no bot token yet. Create one with POST /v1/api-tokens "
            '{"name": "Website widget", "bot_profile_id": "' + str(bot.pk) + '", '
            '"allowed_origins": ["https://www.example.com"]} and fetch this snippet again.'
        ]
    warnings = []
    if raw_token is None:
        warnings.append(
            f"The value of the widget token {token.token_prefix}… is not kept (created before embed snippets, or "
            f"encrypted with a retired key): "
            + (
                "create a new widget token below."
                if for_dashboard
                else f"replace {TOKEN_PLACEHOLDER} with it, or create a new bot token."
            )
        )
    if not token.allowed_origins:
        fix = (
            "Add your site's address to the token."
            if for_dashboard
            else f'Add your site\'s origin: PATCH /v1/api-tokens/{token.pk} {{"allowed_origins": ["https://www.example.com"]}}.'
        )
        warnings.append(f"This token has no allowed origins, so every web page is refused. {fix}")
    elif ANY_ORIGIN in token.allowed_origins:
        warnings.append("This token works from any website ('*'); list your site's origins instead.")
    if token.expires_at is not None:
        warnings.append(f"This token expires at {token.expires_at.isoformat()}; the widget stops working then.")
    return warnings


def bot_embed(*, bot: BotProfile, base_url: str, token_id: str | None = None, for_dashboard: bool = False) -> Embed:
    token = _chosen_token(bot, token_id)
    raw_token = bot_token_raw(token) if token is not None else None
    return Embed(
        bot=bot,
        api_url=base_url,
        script_url=base_url + WIDGET_SCRIPT_PATH,
        token=token,
        raw_token=raw_token,
        warnings=_warnings(bot, token, raw_token, for_dashboard=for_dashboard),
    )
