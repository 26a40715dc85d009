"""Signatures: the helper in webhooks/signing.py, and the Python and Node snippets of
docs/webhooks.md run as written against real deliveries and against forgeries."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import TenantWorld
from webhooks.signing import (
    InvalidSignature,
    body_signature,
    signature_headers,
    timestamped_signature,
    verify,
    verify_body_signature,
)
from webhooks.tests.conftest import Receiver, register

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_test-secret-for-the-signing-tests"
BODY = '{"event":"chat.message","answer":"Grüße [1]"}'.encode()


def snippet(language: str) -> str:
    match = re.search(rf"<!-- verify-snippet: {language} -->\n```\w+\n(.*?)```", DOCS.read_text(), re.S)
    assert match, f"docs/webhooks.md lost its {language} verification snippet"
    return match.group(1)


def test_the_helper_accepts_a_fresh_signature_and_refuses_forgeries_and_replays() -> None:
    now = int(time.time())
    headers = signature_headers(SECRET, BODY, timestamp=now)
    assert headers["X-MiniRAG-Signature"] == body_signature(SECRET, BODY)
    assert re.fullmatch("[0-9a-f]{64}", headers["X-MiniRAG-Signature"]), "lowercase hex, as receivers compare it"
    assert headers["X-MiniRAG-Signature-256"] == f"t={now},v1={timestamped_signature(SECRET, BODY, now)}"
    assert verify(SECRET, BODY, headers) == now
    verify_body_signature(SECRET, BODY, headers)
    lowercase = {name.lower(): value for name, value in headers.items()}  # frameworks differ in header case
    assert verify(SECRET, BODY, lowercase) == now

    forged = [
        (SECRET, BODY + b" ", headers, "does not match"),
        ("whsec_another-secret-entirely-000", BODY, headers, "does not match"),
        (SECRET, BODY, {}, "missing"),
        (SECRET, BODY, {"X-MiniRAG-Signature-256": "t=abc,v1=00"}, "malformed"),
        (SECRET, BODY, {"X-MiniRAG-Signature-256": f"t={now}"}, "malformed"),
        # The timestamp is signed: moving it forward breaks the signature.
        (SECRET, BODY, {"X-MiniRAG-Signature-256": headers["X-MiniRAG-Signature-256"].replace(str(now), str(now + 9))}, "does not match"),  # noqa: E501
    ]  # fmt: skip
    for secret, body, forged_headers, reason in forged:
        with pytest.raises(InvalidSignature, match=reason):
            verify(secret, body, forged_headers)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, BODY, headers, now=now + 301)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, BODY, headers, now=now - 301)  # from the future: a skewed clock or a forgery
    assert verify(SECRET, BODY, headers, tolerance_seconds=3600, now=now + 301) == now
    with pytest.raises(InvalidSignature):
        verify_body_signature(SECRET, BODY + b"x", headers)


def test_any_matching_v1_value_is_enough() -> None:
    now = int(time.time())
    good = timestamped_signature(SECRET, BODY, now)
    assert verify(SECRET, BODY, {"X-MiniRAG-Signature-256": f"t={now},v1={'0' * 64},v1={good}"}) == now


def flip_last(value: str) -> str:
    return value[:-1] + ("1" if value[-1] == "0" else "0")


def cases(real: tuple[bytes, dict[str, str]]) -> list[dict[str, Any]]:
    """Requests a receiver may get, each with whether it must be accepted."""
    now = int(time.time())
    fresh = signature_headers(SECRET, BODY, timestamp=now)
    old = signature_headers(SECRET, BODY, timestamp=now - 3600)
    body, headers = real
    requests = [
        (body, headers, True),  # exactly as MiniRAG sent it
        (body.replace(b"test.ping", b"test.pong"), headers, False),  # tampered
        (BODY, fresh, True),
        (BODY, {**fresh, "X-MiniRAG-Signature-256": flip_last(fresh["X-MiniRAG-Signature-256"])}, False),
        (BODY, old, False),  # replayed an hour later
        (BODY, {}, False),
    ]
    return [
        {"body": base64.b64encode(b).decode(), "headers": {k.lower(): v for k, v in h.items()}, "ok": ok}
        for b, h, ok in requests
    ]


@pytest.fixture
def real_delivery(alpha: TenantWorld, receiver: Receiver) -> tuple[bytes, dict[str, str]]:
    webhook, _ = register(alpha, receiver.url(), secret=SECRET)
    assert alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test").json()["success"]
    request = receiver.received[-1]
    return request.body, request.headers


@pytest.mark.django_db
def test_the_documented_python_snippet_verifies_real_deliveries(real_delivery: tuple[bytes, dict[str, str]]) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(snippet("python"), str(DOCS), "exec"), namespace)  # our own documentation
    verify_snippet = namespace["verify_minirag_webhook"]
    for case in cases(real_delivery):
        body = base64.b64decode(case["body"])
        headers = {name.title().replace("Minirag", "MiniRAG"): value for name, value in case["headers"].items()}
        try:
            event = verify_snippet(SECRET, body, headers)
            accepted = event == json.loads(body)
        except ValueError:
            accepted = False
        assert accepted is case["ok"], case


@pytest.mark.django_db
def test_the_documented_node_snippet_verifies_real_deliveries(
    real_delivery: tuple[bytes, dict[str, str]], tmp_path: Path
) -> None:
    script = tmp_path / "verify.js"
    script.write_text(
        snippet("node")
        + """
const cases = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
const results = cases.map((c) => {
  try {
    const event = verifyMiniragWebhook(process.argv[3], Buffer.from(c.body, "base64"), c.headers);
    return typeof event === "object";
  } catch (err) {
    return false;
  }
});
process.stdout.write(JSON.stringify(results));
"""
    )
    expected = cases(real_delivery)
    (tmp_path / "cases.json").write_text(json.dumps(expected))
    run = subprocess.run(
        ["node", str(script), str(tmp_path / "cases.json"), SECRET], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [case["ok"] for case in expected]
