"""Numbers a JSON body may carry: huge integers and non-finite floats are a 400 like any other bad JSON,
logged in one line, before authentication matters (found by outside testing: a 4,301-digit integer was a
500 with a traceback per request, even on the routes that need no login)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from conftest import TenantWorld, api_client
from minirag.parsers import MAX_JSON_NUMBER_DIGITS

HUGE_INT = "1" + "0" * 5000
TOO_LONG = "9" * (MAX_JSON_NUMBER_DIGITS + 1)


def post(client: Any, path: str, body: str) -> Any:
    return client.generic("POST", path, body.encode(), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/auth/login", "/v1/tenants", "/v1/chat", "/v1/bot-profiles"])
def test_numbers_no_field_takes_are_a_400_without_a_traceback(
    alpha: TenantWorld, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = api_client(alpha.tokens["owner"]) if path in ("/v1/chat", "/v1/bot-profiles") else api_client()
    for number in (HUGE_INT, TOO_LONG, f"-{HUGE_INT}", "1e999", "-1e999", f"0.{HUGE_INT}"):
        body = (
            f'{{"email": "a@b.c", "password": "x", "bot_profile_id": "{alpha.bot.pk}", "message": "m", "n": {number}}}'
        )
        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = post(client, path, body)
        assert response.status_code == 400, (number[:20], response.content)
        assert response.json()["detail"].startswith("JSON parse error: ")
        # At most Django's one "Bad Request" line: no traceback, nothing at ERROR.
        records = [record for record in caplog.records if record.levelno >= logging.WARNING]
        assert len(records) <= 1, [record.getMessage() for record in records]
        assert all(record.exc_info is None and record.levelno < logging.ERROR for record in records)


@pytest.mark.django_db
def test_ordinary_numbers_still_parse(alpha: TenantWorld) -> None:
    body = '{"name": "Numbers", "temperature": 1.25e0, "max_tokens": 4096, "top_k": 7}'
    response = post(api_client(alpha.tokens["owner"]), "/v1/bot-profiles", body)
    assert response.status_code == 201, response.content
    assert (response.json()["temperature"], response.json()["max_tokens"], response.json()["top_k"]) == (1.25, 4096, 7)
    digits = "9" * MAX_JSON_NUMBER_DIGITS  # the longest number allowed, refused by the field for its size
    response = post(api_client(alpha.tokens["owner"]), "/v1/bot-profiles", f'{{"name": "x", "max_tokens": {digits}}}')
    assert response.status_code == 422 and "max_tokens" in response.json()["errors"]
