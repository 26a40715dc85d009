"""Fuzzing the `/v1` API from its own OpenAPI schema (schemathesis), in-process over WSGI.

Every operation of `/v1/schema` is called as three callers:

* tenant A's owner (API token) on A's own objects,
* tenant A's widget (bot token) on A's own objects,
* tenant B's owner on **A's** objects: A's ids in the path and in every reference field of the
  body and query string (`bot_profile_id`, `parent_id`, `chat_id`, `token_id`, ...).

Per operation, in phases: a few hand-written requests that should succeed (so every run checks the
success answers a random body rarely reaches), then requests generated from the schema, valid ones
and deliberately invalid ones (hypothesis, derandomized). The long profile adds schemathesis'
deterministic coverage cases (boundary values, each constraint broken in turn, other methods).

Each response must:

* not be a 5xx, and no on-commit work of the request may raise;
* conform to the schema: a documented status code and content type, documented headers, and a
  body (each event, for an event stream) of the documented shape;
* carry none of the other tenant's ids, names, emails, token prefixes, raw tokens or webhook
  secrets, in the body or the headers (an error may repeat what the request itself sent);
* for B: never succeed on a path naming A's object, and answer exactly (status and `detail`) what
  the same request with never-seen ids answers, so another tenant's id is indistinguishable from a
  missing one, in a path, a query or a body;
* and after each phase, every row of the other tenant is unchanged (for B: every row of A); no
  request leaves a tenant scope behind.

Path parameters are drawn from the real ids of the target's objects (and, for a share of the cases,
from the generator), so the fuzzer mostly hits existing rows. Each phase runs inside a savepoint
rolled back afterwards: every phase starts from the same two tenants whatever the previous one
deleted. No request reaches the network: only the test's own services resolve by name, address
literals only when not public, and the SSRF guard (private networks not allowed) refuses those.

Not called: an event stream of the caller's own tenant (`GET /v1/sources/events`, and
`/v1/sources/{id}/events` on its own source). It never ends, and under WSGI a stream is read whole;
those streams are tested under ASGI in sources/tests/test_events.py. B's calls on A's source and
the widget token's (both refused at once) are fuzzed.

Bounded by default, for `make test`: MINIRAG_FUZZ_EXAMPLES=6 per operation and mode. The long
profile is `make fuzz` (200 examples and the coverage phase; see README).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.db import connection, transaction
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from urllib3 import encode_multipart_formdata

from bots.models import BotProfile
from chat.models import Chat, Message
from conftest import TenantWorld, api_client
from minirag.crypto import decrypt_text
from minirag.tests.api_schema import CHECKS, SchemaClient
from sources.models import CuratedAnswer, Source
from tenants.models import ApiToken, Tenant, User
from tenants.tenancy import TenantOwnedModel, current_scope, tenant_scope, tenant_scope_disabled
from tenants.tests.factories import DEFAULT_PASSWORD
from webhooks.models import Webhook, WebhookDelivery

# Examples per operation, per generation mode (valid and invalid requests) and per caller.
EXAMPLES = int(os.environ.get("MINIRAG_FUZZ_EXAMPLES", "6"))
# The long profile outlasts the suite's per-test timeout; it still gets one.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.timeout(max(300, EXAMPLES * 20)),
    # Under WSGI a streamed answer is read whole; that is what this warning says.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators"),
]
# Schemathesis' deterministic coverage cases (about 4,000 requests per caller): the long profile.
COVERAGE = os.environ.get("MINIRAG_FUZZ_COVERAGE", "0") == "1"
# Operations that run a whole ingestion or answer per example get fewer in the long profile.
EXPENSIVE_EXAMPLES = int(os.environ.get("MINIRAG_FUZZ_EXPENSIVE_EXAMPLES", str(min(EXAMPLES, 25))))
EXPENSIVE = {"POST /v1/sources/{id}/ingest", "POST /v1/sources/{id}/ingest-children", "POST /v1/chat"}
# What a widget (bot) token may call; everything else answers it 403 before reading the request.
WIDGET_OPERATIONS = {
    "POST /v1/chat",
    "GET /v1/chat/{id}",
    "GET /v1/chat/{id}/messages",
    "PATCH /v1/chat/{id}/messages/{message_id}/feedback",
}
# Server-sent event streams of the caller's own tenant never end; under WSGI the whole stream is
# read before the response returns, so these are called only where they must answer at once
# (another tenant's source, a bot token). Their streams are tested under ASGI in
# sources/tests/test_events.py and inbox/tests/test_events.py.
ENDLESS_STREAMS = {
    "GET /v1/sources/events",
    "GET /v1/sources/{id}/events",
    "GET /v1/inbox/events",
    "GET /v1/chat/{id}/events",
}
# Of those, the tenant-wide ones: the caller's own, whoever's ids the path would carry.
TENANT_STREAMS = {"GET /v1/sources/events", "GET /v1/inbox/events"}

# Reference fields in bodies and query strings, seeded with real ids of the target tenant's rows.
REFERENCE_FIELDS = {
    "bot_profile_id": "bot-profiles",
    "parent_id": "sources",
    "source_id": "sources",
    "chat_id": "chat",
    "token_id": "api-tokens",
    "webhook_id": "webhooks",
    "user_id": "users",
}


# --- The tenants' objects -------------------------------------------------------------------------


@dataclass
class TenantObjects:
    """Ids of one tenant's rows, by the first path segment of the routes that address them, and the
    strings that must never reach another tenant."""

    tenant: Tenant
    ids: dict[str, list[str]] = field(default_factory=dict)
    messages: dict[str, list[str]] = field(default_factory=dict)  # chat id → its message ids
    deliveries: dict[str, list[str]] = field(default_factory=dict)  # webhook id → its delivery ids
    answers: list[tuple[str, str]] = field(default_factory=list)  # (chat id, assistant message id)
    markers: set[str] = field(default_factory=set)
    bot_id: str = ""

    @property
    def all_ids(self) -> set[str]:
        return {value for values in self.ids.values() for value in values} | {
            value for values in (*self.messages.values(), *self.deliveries.values()) for value in values
        }


MARKER_FIELDS = ("email", "name", "title", "token_prefix", "filename", "url")


def objects_of(world: TenantWorld, *, spare_token: ApiToken | None = None) -> TenantObjects:
    """`spare_token` (the caller's own) is left out of the path ids: revoking it would end the run."""
    tenant = world.tenant
    found = TenantObjects(tenant=tenant, bot_id=str(world.bot.pk))
    with tenant_scope(tenant):
        found.ids = {
            "users": [str(pk) for pk in User.objects.values_list("pk", flat=True)],
            "api-tokens": [
                str(pk)
                for pk in ApiToken.objects.values_list("pk", flat=True)
                if spare_token is None or pk != spare_token.pk
            ],
            "bot-profiles": [str(pk) for pk in BotProfile.objects.values_list("pk", flat=True)],
            "sources": [str(pk) for pk in Source.objects.values_list("pk", flat=True)],
            "curated-answers": [str(pk) for pk in CuratedAnswer.objects.values_list("pk", flat=True)],
            "chat": [str(pk) for pk in Chat.objects.values_list("pk", flat=True)],
            "webhooks": [str(pk) for pk in Webhook.objects.values_list("pk", flat=True)],
        }
        for chat_id, message_id, role in Message.objects.values_list("chat_id", "pk", "role"):
            found.messages.setdefault(str(chat_id), []).append(str(message_id))
            if role == Message.Role.ASSISTANT:
                found.answers.append((str(chat_id), str(message_id)))
        for webhook_id, delivery_id in WebhookDelivery.objects.values_list("webhook_id", "pk"):
            found.deliveries.setdefault(str(webhook_id), []).append(str(delivery_id))
        secrets = [
            decrypt_text(ciphertext) for ciphertext in Webhook.objects.values_list("secret_ciphertext", flat=True)
        ]
    markers = {str(tenant.pk), tenant.name, *world.tokens.values(), *secrets}
    with tenant_scope_disabled("fuzz suite: every string of one tenant"):
        for model in tenant_owned_models():
            names = [f.attname for f in model._meta.concrete_fields if f.attname in MARKER_FIELDS]
            for row in model.all_tenants.filter(tenant=tenant).values(model._meta.pk.attname, *names):
                markers.update(str(value) for value in row.values() if value)
    found.markers = {marker for marker in markers if len(marker) >= 8}
    return found


def tenant_owned_models() -> list[type[TenantOwnedModel]]:
    return [model for model in apps.get_models() if issubclass(model, TenantOwnedModel)]


def rows_of(tenant: Tenant) -> dict[str, str]:
    """Every row of one tenant, model by model, as a digest the database computes in one statement
    (a snapshot of `.values()` took a query per model, after every phase: a sixth of the run). A
    digest covers every column of every row in primary-key order: a row changed, added or deleted
    changes it."""
    quote = connection.ops.quote_name
    selects, params = [], []
    for model in tenant_owned_models():
        meta = model._meta
        rows = f"string_agg(t::text, E'\\n' ORDER BY t.{quote(meta.pk.column)})"
        selects.append(
            f"SELECT %s, md5(coalesce({rows}, '')) FROM {quote(meta.db_table)} t "
            f"WHERE t.{quote(meta.get_field('tenant').column)} = %s"
        )
        params += [meta.label, tenant.pk]
    with tenant_scope_disabled("fuzz suite: snapshot one tenant's rows"), connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        return dict(cursor.fetchall())


def path_parameter_sets(template: str, target: TenantObjects) -> list[dict[str, str]]:
    """Every combination of real ids that fills `template`'s path parameters."""
    names = re.findall(r"{(\w+)}", template)
    if not names:
        return []
    resource = template.split("/")[2]
    children = {"message_id": target.messages, "delivery_id": target.deliveries}
    unknown = set(names) - {"id", *children}
    if unknown or resource not in target.ids:
        pytest.fail(f"The fuzz suite cannot fill {sorted(unknown) or names} of {template}; teach path_parameter_sets.")
    sets = []
    for parent in target.ids[resource]:
        child_name = next((name for name in names if name in children), None)
        if child_name is None:
            sets.append({"id": parent})
        else:
            sets.extend({"id": parent, child_name: child} for child in children[child_name].get(parent, []))
    return sets


# --- No network -----------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Generated URLs (sources, webhooks, nyxcore) and model names (BYOK providers) must reach no
    host: only the test's own services resolve by name; other names do not resolve; address
    literals resolve only when not public, and the SSRF guard, with private networks not allowed,
    refuses them."""
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.SSRF_ALLOWED_NETWORKS = []
    services = {"localhost", urlsplit(settings.REDIS_URL).hostname, settings.DATABASES["default"].get("HOST")}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in services:
            return real_getaddrinfo(host, port, *args, **kwargs)
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not resolved (the fuzz suite is offline)") from None
        if address.is_global:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not reachable (the fuzz suite is offline)")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)


# --- Callers --------------------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    token: str
    target: TenantObjects  # whose ids fill paths and references
    foreign_markers: set[str]  # the other tenant's strings, which must never appear
    cross_tenant: bool  # the target is another tenant
    login_email: str  # the caller's tenant's owner, for a login that succeeds
    bot_token: bool  # a widget token: refused (403) on the event streams

    def skips(self, label: str) -> bool:
        """Whether `label` would open an event stream of the caller's own tenant."""
        if label not in ENDLESS_STREAMS:
            return False
        if self.bot_token:  # refused on every stream but its own visitors' chats (inbox/)
            return label == "GET /v1/chat/{id}/events" and not self.cross_tenant
        return label in TENANT_STREAMS or not self.cross_tenant


@dataclass
class Report:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)  # (operation, status) → responses

    def summary(self, caller: str, seconds: float) -> str:
        succeeded = {label for label, status in self.statuses if status < 300}
        never = {
            label: dict(sorted((status, n) for (other, status), n in self.statuses.items() if other == label))
            for label in sorted(self.operations - succeeded)
        }
        return (
            f"fuzz {caller}: {len(self.operations)} operations, {self.cases} requests, {seconds:.1f} s, "
            f"{len(self.failures)} failing; never a 2xx: {len(never)} {never}"
        )


def seed_references(case: Any, target: TenantObjects, pick: Callable[[list[str]], str | None]) -> None:
    """Point the reference fields the generator filled at real rows of the target: `pick` chooses
    one of the ids, or None to leave the generated value."""
    for container in (case.body, case.query):
        if not isinstance(container, dict):
            continue
        for name, resource in REFERENCE_FIELDS.items():
            if name in container and target.ids.get(resource) and (chosen := pick(target.ids[resource])):
                container[name] = chosen


def case_strategy(operation: Any, mode: GenerationMode, target: TenantObjects) -> st.SearchStrategy[Any]:
    path_sets = path_parameter_sets(operation.path, target)
    generated = operation.as_strategy(generation_mode=mode)
    if path_sets:
        seeded = st.one_of(*(operation.as_strategy(generation_mode=mode, path_parameters=ps) for ps in path_sets))
        base = st.one_of(seeded, generated)
    else:
        base = generated

    @st.composite
    def with_references(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
        case = draw(base)
        # Half the time, a real row.
        seed_references(case, target, lambda ids: draw(st.sampled_from(ids)) if draw(st.booleans()) else None)
        return case

    return with_references()


def multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """`Case` arguments for a multipart body sent as given (the generator names every file `file`)."""
    body, content_type = encode_multipart_formdata(fields)
    return {"body": body, "media_type": "multipart/form-data", "headers": {"Content-Type": content_type}}


def known_good(label: str, target: TenantObjects, login_email: str) -> list[dict[str, Any]]:
    """Requests the target tenant's owner may make successfully (`Case` arguments), sent before the
    generated ones: whatever the generator draws, every run checks the success answers of the
    operations a random body rarely gets right (and, as tenant B, probes A's objects with them)."""
    bot, text = target.bot_id, "Parcels leave the warehouse on Mondays and Thursdays."
    turn = {"bot_profile_id": bot, "message": "When do parcels leave?"}
    cases: dict[str, list[dict[str, Any]]] = {
        "POST /v1/auth/login": [{"body": {"email": login_email, "password": DEFAULT_PASSWORD}}],
        "POST /v1/tenants": [
            {
                "body": {
                    "tenant_name": "Fuzz Ltd",
                    "tenant_slug": "fuzz-ltd",
                    "owner_email": "owner@fuzz.example",
                    "owner_password": "a-long-password",
                }
            }
        ],
        "POST /v1/users": [{"body": {"email": "new@fuzz.example", "password": "a-long-password", "role": "member"}}],
        "POST /v1/api-tokens": [
            {"body": {"name": "fuzz widget", "bot_profile_id": bot, "allowed_origins": ["https://www.example.com"]}}
        ],
        "POST /v1/sources": [
            {"body": {"bot_profile_id": bot, "name": "Shipping", "source_type": "text", "content": text}},
            {
                "body": {
                    "bot_profile_id": bot,
                    "name": "Help page",
                    "source_type": "url",
                    "config": {"url": "https://help.example.com/shipping"},
                }
            },
        ],
        "POST /v1/sources/batch": [
            {
                "body": {
                    "bot_profile_id": bot,
                    "name": "Policies",
                    "children": [{"name": "Shipping", "source_type": "text", "content": text}],
                }
            }
        ],
        "POST /v1/sources/upload": [
            multipart({"bot_profile_id": bot, "file": ("shipping.md", f"# Shipping\n\n{text}\n".encode())})
        ],
        "POST /v1/chat": [{"body": {**turn, "stream": False}}, {"body": {**turn, "stream": True}}],
        "POST /v1/curated-answers": [
            {"body": {"bot_profile_id": bot, "question": "When do parcels leave?", "answer": text}},
            *({"body": {"message_id": message, "answer": text}} for _, message in target.answers[:1]),
        ],
        "PATCH /v1/curated-answers/{id}": [
            {"path_parameters": {"id": curated}, "body": {"answer": text}} for curated in target.ids["curated-answers"]
        ],
        "GET /v1/chat/export": [{"query": {"format": "csv"}}, {"query": {"format": "json", "bot_profile_id": bot}}],
        "POST /v1/webhooks": [
            {"body": {"url": "https://hooks.example.com/minirag", "events": ["chat.message", "source.ingested"]}}
        ],
        "PATCH /v1/chat/{id}/messages/{message_id}/feedback": [
            {"path_parameters": {"id": chat, "message_id": message}, "body": {"feedback": "positive"}}
            for chat, message in target.answers
        ],
        "GET /v1/chat/{id}/export": [
            {"path_parameters": {"id": chat}, "query": {"format": "csv"}} for chat in target.ids["chat"]
        ],
    }
    return [
        {"media_type": "application/json", **arguments} if "body" in arguments else arguments
        for arguments in cases.get(label, [])
    ]


def replace_ids(value: Any, mapping: dict[str, str]) -> Any:
    """`value` (a body, query, path parameters or a message) with every id in `mapping` swapped."""
    if isinstance(value, str):
        # Untouched unless it names one (the generator's file parts are `str` subclasses).
        for old, new in mapping.items():
            if old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, bytes):  # a multipart body sent as is
        for old, new in mapping.items():
            value = value.replace(old.encode(), new.encode())
        return value
    if isinstance(value, dict):
        return {key: replace_ids(item, mapping) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_ids(item, mapping) for item in value]
    return value


def sent_text(response: Any) -> str:
    request = response.request
    body = request.body or b""
    body = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return f"{request.url}\n{json.dumps(dict(request.headers))}\n{body}"


def response_text(response: Any) -> str:
    headers = json.dumps(response.headers)
    return f"{headers}\n{response.content.decode('utf-8', 'replace')}"


def detail_of(response: Any) -> Any:
    try:
        return json.loads(response.content).get("detail")
    except (ValueError, AttributeError):
        return None


class Fuzzer:
    def __init__(
        self, caller: Caller, client: SchemaClient, capture_on_commit: Callable[..., Any], guarded: Tenant
    ) -> None:
        self.caller = caller
        self.client = client
        self.capture_on_commit = capture_on_commit
        self.report = Report()
        # The tenant the caller does not belong to: none of its rows may change.
        self.guarded = guarded
        self.guarded_rows = rows_of(guarded)

    def call(self, case: Any) -> Any:
        with self.capture_on_commit(execute=True):
            response = self.client.call(case, self.caller.token)
        assert not current_scope().is_set, f"{case.method} {case.formatted_path} left a tenant scope active"
        self.report.cases += 1
        self.report.statuses[(f"{case.method} {case.path}", response.status_code)] += 1
        return response

    def check(self, case: Any) -> None:
        response = self.call(case)
        case.validate_response(response, checks=CHECKS)
        self.check_isolation(case, response)

    def check_isolation(self, case: Any, response: Any) -> None:
        where = f"{case.method} {case.formatted_path} as {self.caller.name}: {response.status_code}"
        text = response_text(response)
        leaked = sorted(marker for marker in self.caller.foreign_markers if marker in text)
        if leaked and response.status_code >= 300:
            request = sent_text(response)
            leaked = [marker for marker in leaked if marker not in request]
        assert not leaked, f"{where} carries the other tenant's {leaked[:3]}:\n{text[:2000]}"
        if not self.caller.cross_tenant:
            return
        used = {value for value in self.caller.target.all_ids if value in sent_text(response)}
        if not used:
            return
        in_path = used & {str(value) for value in case.path_parameters.values()}
        assert not in_path or response.status_code >= 300, f"{where}: tenant B reached tenant A's {sorted(in_path)}"
        # The same request with ids that never existed must answer exactly the same.
        mapping = {value: str(uuid.uuid4()) for value in used}
        twin = case.derive(keep_auth=True)
        twin.path_parameters = replace_ids(case.path_parameters, mapping)
        twin.query = replace_ids(case.query, mapping)
        if isinstance(case.body, dict | list | str | bytes):
            twin.body = replace_ids(case.body, mapping)
        missing = self.call(twin)
        expected = (missing.status_code, replace_ids(detail_of(missing), {v: k for k, v in mapping.items()}))
        actual = (response.status_code, detail_of(response))
        assert actual == expected, f"{where}: tenant A's ids answer {actual}, never-seen ids {expected}"

    def fuzz(self, operation: Any) -> None:
        label = f"{operation.method.upper()} {operation.path}"
        self.report.operations.add(label)
        self.phase(label, "known good", lambda: self.known_good(operation, label))
        if COVERAGE:
            self.phase(label, "coverage", lambda: self.coverage(operation))
        examples = EXPENSIVE_EXAMPLES if label in EXPENSIVE else EXAMPLES
        if self.caller.bot_token and label not in WIDGET_OPERATIONS:
            examples = max(2, examples // 10)  # refused (403) before anything else is read
        self.phase(label, "valid", lambda: self.generated(operation, GenerationMode.POSITIVE, examples))
        # An operation without parameters or a body has nothing to get wrong on purpose.
        if operation.body or any(True for _ in operation.iter_parameters()):
            self.phase(label, "invalid", lambda: self.generated(operation, GenerationMode.NEGATIVE, examples))

    def phase(self, label: str, name: str, run: Callable[[], None]) -> None:
        """Run one phase of one operation in a savepoint rolled back afterwards, so every phase
        starts from the same rows whatever the previous one changed; a failure is recorded and
        the other phases and operations still run."""
        try:
            with transaction.atomic():
                try:
                    run()
                    # Checked before the rollback, which would restore them anyway.
                    changed = sorted(
                        label for label, rows in rows_of(self.guarded).items() if rows != self.guarded_rows[label]
                    )
                    assert not changed, f"rows of {self.guarded.slug} changed: {changed}"
                finally:
                    transaction.set_rollback(True)
        except (Exception, FailureGroup) as exc:
            self.report.failures.append(f"{label} [{name}] as {self.caller.name}:\n{exc}")

    def known_good(self, operation: Any, label: str) -> None:
        for arguments in known_good(label, self.caller.target, self.caller.login_email):
            self.check(operation.Case(**arguments))

    def coverage(self, operation: Any) -> None:
        """Schemathesis' deterministic coverage cases: boundary values, each constraint broken
        in turn, missing and extra fields, other HTTP methods on the path."""
        schema = self.client.schema
        cases = schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        )
        path_sets = path_parameter_sets(operation.path, self.caller.target)
        for index, case in enumerate(cases):
            if path_sets and case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
                case.path_parameters = path_sets[index % len(path_sets)]
            if index % 2 == 0:
                seed_references(case, self.caller.target, lambda ids, index=index: ids[index // 2 % len(ids)])
            self.check(case)

    def generated(self, operation: Any, mode: GenerationMode, examples: int) -> None:
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            report_multiple_bugs=False,
            print_blob=False,
        )
        @given(case=case_strategy(operation, mode, self.caller.target))
        def run(case: Any) -> None:
            self.check(case)

        run()


def chat_as_bot_token(world: TenantWorld) -> None:
    """A chat the widget started, so the bot token's read routes have a row of their own."""
    response = api_client(world.tokens["bot"]).post(
        "/v1/chat",
        {"bot_profile_id": str(world.bot.pk), "message": f"When does the {world.tenant.slug} office open?"},
        format="json",
    )
    assert response.status_code == 200, response.content


# name → (the caller's tenant, which of its tokens, the tenant whose ids it uses)
CALLERS = {
    "alpha owner": ("alpha", "owner", "alpha"),
    "alpha bot token": ("alpha", "bot", "alpha"),
    "beta owner on alpha's ids": ("beta", "owner", "alpha"),
}


@pytest.mark.parametrize("caller_name", list(CALLERS))
def test_fuzz_the_v1_api(
    caller_name: str,
    alpha: TenantWorld,
    beta: TenantWorld,
    offline: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    worlds = {"alpha": alpha, "beta": beta}
    chat_as_bot_token(alpha)
    chat_as_bot_token(beta)
    home, credential, target = CALLERS[caller_name]
    other = next(name for name in worlds if name != home)
    own = worlds[home]
    caller = Caller(
        name=caller_name,
        token=own.tokens[credential],
        target=objects_of(worlds[target], spare_token=own.token_rows[credential] if target == home else None),
        # Strings both tenants happen to share (the same question asked of both bots) prove nothing.
        foreign_markers=objects_of(worlds[other]).markers - objects_of(own).markers,
        cross_tenant=target != home,
        login_email=own.owner.email,
        bot_token=credential == "bot",
    )
    client = SchemaClient()
    fuzzer = Fuzzer(caller, client, django_capture_on_commit_callbacks, guarded=worlds[other].tenant)
    started = time.monotonic()
    for operation in client.operations():
        label = f"{operation.method.upper()} {operation.path}"
        if caller.skips(label):
            continue
        fuzzer.fuzz(operation)
    elapsed = time.monotonic() - started
    report = fuzzer.report
    print(report.summary(caller.name, elapsed))
    assert not report.failures, "\n\n".join(report.failures)


# --- Hostile values found by outside testing ------------------------------------------------------

# Integers past Python's 4,300-digit conversion limit, past the parser's own cap, and floats that
# overflow to infinity: written into the raw JSON text (Python cannot even print the first kind).
HOSTILE_NUMBERS = ["1" + "0" * 4300, "-" + "9" * 5000, "7" * 101, "1e999", "-1e999", "0." + "1" * 5000]
# This machine, spelled so that a plain "is it private?" check on the text misses it.
THIS_MACHINE_URLS = [
    "http://169.254.169.254.:80/",
    "http://localhost.:18150/",
    "http://[::1%25eth0]:18150/",
    "http://[fe80::1%25lo]:18150/",
    "http://metadata.localhost/",
]
URL_FIELDS = {"url", "base_url"}
PLACEHOLDER = "__minirag_hostile_value__"


def url_fields(body: Any) -> list[tuple[dict[str, Any], str]]:
    """The (container, key) pairs of `body` holding a URL a tenant saves: top level and `config`. A new
    source of any type becomes one fetched from a URL (generated configs rarely name one)."""
    if isinstance(body, dict) and "source_type" in body and "parent_id" not in body:
        kind = body["source_type"] = "nyxcore" if body.get("source_type") == "nyxcore" else "url"
        body["config"] = {"base_url": "", "api_token": "t"} if kind == "nyxcore" else {"url": ""}
    containers = [body, body.get("config")] if isinstance(body, dict) else []
    return [(c, key) for c in containers if isinstance(c, dict) for key in sorted(URL_FIELDS & set(c))]


def with_hostile_value(body: Any, draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[str, str]:
    """`body` as JSON text with one hostile value: a number no field takes (in place of a value, in a new
    key, or as the whole body), or a URL field pointing at this machine. Returns (text, kind)."""
    fields = url_fields(body)
    if fields and draw(st.booleans()):
        container, key = draw(st.sampled_from(fields))
        container[key] = draw(st.sampled_from(THIS_MACHINE_URLS))
        return json.dumps(body), "url"
    if isinstance(body, dict) and body and draw(st.booleans()):
        body = {**body, draw(st.sampled_from(sorted(body))): PLACEHOLDER}
    elif isinstance(body, dict):
        body = {**body, "n": [PLACEHOLDER]}
    else:
        body = PLACEHOLDER
    return json.dumps(body).replace(json.dumps(PLACEHOLDER), draw(st.sampled_from(HOSTILE_NUMBERS))), "number"


def test_fuzz_hostile_values_in_every_json_body(alpha: TenantWorld, offline: None) -> None:
    """Every operation that takes a JSON body, as alpha's owner on alpha's own objects, with a valid
    generated body carrying one hostile value: a number no field takes is a 400 from the parser (or
    whatever answer comes first: 403, 404, 405); a URL pointing at this machine is never accepted.
    Never a 5xx."""
    client = SchemaClient()
    target = objects_of(alpha)
    failures: list[str] = []
    operations = [op for op in client.operations() if "application/json" in {body.media_type for body in op.body}]
    assert len(operations) >= 15  # every write of the API
    for operation in operations:
        send_hostile_values(operation, target, alpha.tokens["owner"], failures)
    assert not failures, "\n".join(failures[:20])


def send_hostile_values(operation: Any, target: TenantObjects, token: str, failures: list[str]) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @hypothesis_settings(
        max_examples=max(3, EXAMPLES // 2),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(case_strategy(operation, GenerationMode.POSITIVE, target))
        raw, kind = with_hostile_value(case.body, data.draw)
        with transaction.atomic():
            response = api_client(token).generic(
                operation.method.upper(), case.formatted_path, raw.encode(), content_type="application/json"
            )
            transaction.set_rollback(True)
        status = response.status_code
        refused_badly = (
            status == 400 and not str(detail_of(response)).startswith("JSON parse error")
            if kind == "number"
            else status < 300
        )
        if status >= 500 or refused_badly:
            failures.append(f"{label}: {status} {response.content[:300]!r} for {raw[:160]}")

    run()
