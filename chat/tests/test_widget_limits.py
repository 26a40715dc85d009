"""What a bot (widget) token may do in a chat: rate limits per visitor, per token and per address
(429 + Retry-After, counted in Redis), and chats bound to the visitor that started them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import override_settings

from chat.tests.conftest import ModelSpy, add_knowledge, use_model
from conftest import TenantWorld, api_client
from minirag.rate_limits import DAY, MINUTE, Limit, RateLimited, hit, seconds_until_allowed

VISITOR = "X-MiniRAG-Visitor"


def widget(world: TenantWorld, visitor: str | None = None, address: str = "203.0.113.7"):
    headers = {"REMOTE_ADDR": address}
    if visitor:
        headers[f"HTTP_{VISITOR.upper().replace('-', '_')}"] = visitor
    return api_client(world.tokens["bot"], **headers)


def ask(client, world: TenantWorld, chat_id: str | None = None):
    body = {"bot_profile_id": str(world.bot.pk), "message": "When does the office open?"}
    if chat_id:
        body["chat_id"] = chat_id
    return client.post("/v1/chat", body, format="json")


def set_limits(world: TenantWorld, **limits: int | None) -> None:
    response = world.client("admin").patch(
        f"/v1/api-tokens/{world.token_rows['bot'].pk}", {"rate_limits": limits}, format="json"
    )
    assert response.status_code == 200, response.json()


# --- Rate limits ------------------------------------------------------------------------------


def test_a_visitor_over_the_limit_gets_429_with_retry_after_and_others_go_on(alpha: TenantWorld) -> None:
    set_limits(alpha, visitor_messages_per_minute=2)
    first = widget(alpha, "visitor-one")
    assert [ask(first, alpha).status_code for _ in range(2)] == [200, 200]
    refused = ask(first, alpha)
    assert refused.status_code == 429
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 120
    assert refused.json()["detail"] == (
        f"Too many messages from this visitor: at most 2 per minute. Try again in {retry_after} seconds."
    )
    assert ask(widget(alpha, "visitor-two"), alpha).status_code == 200


def test_the_token_limit_covers_all_its_visitors(alpha: TenantWorld) -> None:
    set_limits(alpha, messages_per_minute=3)
    statuses = [ask(widget(alpha, f"visitor-{n}", f"198.51.100.{n}"), alpha).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "for this bot token" in ask(widget(alpha, "visitor-9"), alpha).json()["detail"]


def test_rotating_visitor_ids_does_not_escape_the_address_limit(alpha: TenantWorld) -> None:
    with override_settings(CHAT_RATE_LIMITS={**_defaults(), "address_per_minute": 3}):
        statuses = [ask(widget(alpha, f"fresh-{n}"), alpha).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_without_a_visitor_id_the_address_is_the_visitor(alpha: TenantWorld) -> None:
    set_limits(alpha, visitor_messages_per_minute=1)
    assert ask(widget(alpha), alpha).status_code == 200
    assert ask(widget(alpha), alpha).status_code == 429
    assert ask(widget(alpha, address="192.0.2.55"), alpha).status_code == 200


def test_a_widget_message_without_a_client_address_is_limited_not_a_500(alpha: TenantWorld) -> None:
    # An ASGI server on a Unix socket passes no client address: REMOTE_ADDR is missing. (Found by
    # the API fuzzer: it was a TypeError in the rate-limit keys.)
    set_limits(alpha, visitor_messages_per_minute=1)
    without_address = api_client(alpha.tokens["bot"], REMOTE_ADDR=None)
    assert ask(without_address, alpha).status_code == 200
    assert ask(without_address, alpha).status_code == 429


def test_a_refused_message_is_not_stored_and_not_counted(alpha: TenantWorld) -> None:
    set_limits(alpha, visitor_messages_per_minute=1, messages_per_minute=2)
    client = widget(alpha, "visitor-one")
    chat_id = ask(client, alpha).json()["chat_id"]
    assert ask(client, alpha, chat_id).status_code == 429
    assert ask(client, alpha, chat_id).status_code == 429
    # The two refusals were taken back from the token's count: another visitor still fits.
    assert ask(widget(alpha, "visitor-two"), alpha).status_code == 200
    assert len(client.get(f"/v1/chat/{chat_id}/messages").json()) == 2


def test_zero_means_unlimited_and_tenant_tokens_are_not_limited(alpha: TenantWorld) -> None:
    set_limits(alpha, visitor_messages_per_minute=0, messages_per_minute=0)
    client = widget(alpha, "visitor-one")
    assert {ask(client, alpha).status_code for _ in range(12)} == {200}
    with override_settings(CHAT_RATE_LIMITS={key: 1 for key in _defaults()}):
        owner = alpha.client()
        assert {ask(owner, alpha).status_code for _ in range(3)} == {200}


def test_limits_are_counted_in_the_shared_cache() -> None:
    """Two processes share Redis; a second client of the same cache sees the same counts."""
    from django.core.cache import caches

    assert "redis" in caches["default"].__class__.__module__.lower()
    limit = Limit("test:shared", 2, MINUTE, "from this test")
    hit([limit], now=1_000_000.0)
    hit([limit], now=1_000_000.0)
    with pytest.raises(RateLimited):
        hit([limit], now=1_000_000.0)
    assert cache.get(f"rl:test:shared:{MINUTE}:{1_000_000 // MINUTE}") == 2


def test_a_redis_that_forgot_the_counting_script_is_given_it_again() -> None:
    """The limits are counted by a script Redis keeps in memory: a restarted Redis has none."""
    from django.core.cache import caches

    limits = [Limit("test:script", 5, MINUTE, "from this test"), Limit("test:script", 50, DAY, "from this test")]
    hit(limits, now=2_000_000.0)
    caches["default"]._cache.get_client(write=True).script_flush()
    hit(limits, now=2_000_000.0)
    assert cache.get(f"rl:test:script:{MINUTE}:{2_000_000 // MINUTE}") == 2
    assert cache.get(f"rl:test:script:{DAY}:{2_000_000 // DAY}") == 2


@pytest.fixture(params=["redis", "memory"])
def counting_cache(request: pytest.FixtureRequest) -> Iterator[None]:
    """Redis (production: one script call per message) or the embedded mode's memory cache."""
    if request.param == "redis":
        yield
        return
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        yield


@pytest.mark.usefixtures("counting_cache")
def test_the_window_slides_instead_of_resetting_on_the_minute() -> None:
    limit = Limit("test:sliding", 10, MINUTE, "from this test")
    start = 6_000_000.0  # the start of a window
    for _ in range(10):
        hit([limit], now=start + 50)
    # Early in the next window most of the previous one still counts: a burst at the boundary
    # cannot double the limit.
    with pytest.raises(RateLimited) as refused:
        hit([limit], now=start + 61)
    assert refused.value.wait == seconds_until_allowed(previous=10, current=0, limit=10, elapsed=1 / 60, window=60)
    assert 5 <= refused.value.wait <= 10
    with pytest.raises(RateLimited):
        hit([limit], now=start + 61 + refused.value.wait - 1)
    hit([limit], now=start + 61 + refused.value.wait)  # fits once the wait is over


def test_retry_after_when_the_current_window_alone_is_full() -> None:
    wait = seconds_until_allowed(previous=0, current=5, limit=5, elapsed=0.5, window=60)
    # In the next window the 5 events slide out; one more fits once 1/5 of them have.
    assert wait == 30 + 12


def _defaults() -> dict[str, int]:
    from django.conf import settings

    return dict(settings.CHAT_RATE_LIMITS)


# --- Visitor binding --------------------------------------------------------------------------


def test_a_widget_chat_is_readable_only_by_the_visitor_who_started_it(alpha: TenantWorld) -> None:
    mine = widget(alpha, "visitor-one")
    started = ask(mine, alpha).json()
    chat_id, message_id = started["chat_id"], started["message"]["id"]
    assert mine.get(f"/v1/chat/{chat_id}/messages").status_code == 200
    for stranger in (widget(alpha, "visitor-two"), widget(alpha)):
        assert stranger.get(f"/v1/chat/{chat_id}").status_code == 404
        assert stranger.get(f"/v1/chat/{chat_id}/messages").status_code == 404
        feedback = stranger.patch(
            f"/v1/chat/{chat_id}/messages/{message_id}/feedback", {"feedback": "negative"}, format="json"
        )
        assert feedback.status_code == 404
        assert ask(stranger, alpha, chat_id).status_code == 404
    # The tenant's own staff read every chat, with or without the header.
    assert alpha.client().get(f"/v1/chat/{chat_id}/messages").status_code == 200


@pytest.mark.parametrize("visitor", ["a" * 65, "has space", "semi;colon", "ünïcode"])
def test_a_malformed_visitor_id_is_a_clear_400(alpha: TenantWorld, visitor: str) -> None:
    response = api_client(alpha.tokens["bot"], HTTP_X_MINIRAG_VISITOR=visitor).post(
        "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "hi"}, format="json"
    )
    assert response.status_code == 400
    assert "X-MiniRAG-Visitor must be 1-64 characters" in response.json()["detail"]


# --- What visitors are told -------------------------------------------------------------------


def test_visitors_get_model_failures_without_provider_internals(alpha: TenantWorld, model_spy: ModelSpy) -> None:
    add_knowledge(alpha, "Hours", "The office opens at nine in the morning.")
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="litellm.RateLimitError")
    visitor = ask(widget(alpha, "visitor-one"), alpha)
    assert visitor.status_code == 503
    assert visitor.json()["detail"] == "The model is unavailable right now; please try again."
    staff = ask(alpha.client(), alpha)
    assert staff.status_code == 503
    assert staff.json()["detail"].startswith("The model is unavailable right now; please try again. (")
