"""Model-provider traffic under the egress policy.

LiteLLM opens its own HTTP connections, through httpx and httpcore whatever the provider (its aiohttp transport
is switched off by the model gateway). So the guard sits where every one of those connections starts: httpcore's
`connect_tcp`. While a model call runs inside `model_egress()`, every connection it opens resolves the host
here, checks every address against the model policy, and dials the address it checked, so DNS rebinding between
check and connect gets nowhere. Outside such a block httpcore behaves as usual (the Qdrant client, for one,
must reach the operator's own private Qdrant).

The model policy: a destination must be public, unless the operator allowed it in
`MINIRAG_MODEL_ALLOWED_NETWORKS` (CIDRs, and host names such as an on-premises Ollama's) or turned the check off
for development with `MINIRAG_ALLOW_PRIVATE_NETWORKS`. The SSRF exceptions for sources and webhooks
(`MINIRAG_SSRF_ALLOWED_NETWORKS`) do not apply: reading an internal wiki and sending prompts to an internal
host are different permissions.

A refused connection never reaches the network: the guard records the refusal and hands the client a canned
HTTP 403 instead of a socket, so the provider's SDK fails at once instead of retrying with back-off; the model
gateway then reports the recorded refusal, never that canned answer.

`model_egress(probe=True)` is the save-time check: every connection is judged and recorded, none is made
(each gets a canned HTTP 400), so a model string can be tried before a bot is saved with it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import anyio
import httpcore
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from minirag.safe_http import destinations
from minirag.safe_http.destinations import IPAddress, IPNetwork
from minirag.safe_http.responses import BlockedDestinationError, FetchError

ALLOWANCE_SETTING = "MINIRAG_MODEL_ALLOWED_NETWORKS"
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


@dataclass(frozen=True)
class ModelAllowance:
    """What the operator allowed beyond the public internet: networks, and host names trusted whatever they
    resolve to (a Docker service name such as "ollama", an internal vLLM host)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()


@lru_cache(maxsize=8)
def parse_allowance(entries: tuple[str, ...]) -> ModelAllowance:
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in (entry.strip().lower() for entry in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.removesuffix(".")
        if not _HOST_NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"{ALLOWANCE_SETTING} holds {entry!r}, which is neither a network nor a host name."
            )
        hosts.add(name)
    return ModelAllowance(networks=tuple(networks), hosts=frozenset(hosts))


def model_allowance() -> ModelAllowance:
    return parse_allowance(tuple(settings.MODEL_ALLOWED_NETWORKS))


@dataclass(frozen=True)
class Verdict:
    host: str
    port: int
    refusal: str | None  # the destination described, when it is not allowed; None when it is (or is unknown yet)

    @property
    def sentence(self) -> str:
        """Why the destination is refused, and which setting would allow it."""
        return (
            f"{self.refusal}. Model providers may use such addresses only when the operator allows them in "
            f"{ALLOWANCE_SETTING}"
        )


@dataclass
class ModelEgress:
    """One model call's connections: what was judged, and the first refusal."""

    probe: bool
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def refusal(self) -> Verdict | None:
        return next((verdict for verdict in self.verdicts if verdict.refusal), None)

    def admit(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """The addresses this connection may dial; () when it must not be made (refused, or a probe)."""
        try:
            name = destinations.checked_host(host)
        except BlockedDestinationError:
            self.verdicts.append(
                Verdict(host, port, f"{host}, an IPv6 address with a zone (an interface of this host)")
            )
            return ()
        allowance = model_allowance()
        try:
            if name in allowance.hosts:
                addresses = () if self.probe else destinations.host_addresses(name, port)
                self.verdicts.append(Verdict(name, port, None))
                return addresses
            addresses = destinations.host_addresses(name, port)
        except FetchError as exc:
            if not self.probe:
                raise httpcore.ConnectError(exc.message) from None
            # Saving a bot must not depend on DNS being up: an unresolvable host is judged at call time.
            self.verdicts.append(Verdict(name, port, None))
            return ()
        refused = not all(destinations.is_allowed(ip, allowance.networks) for ip in addresses)
        self.verdicts.append(Verdict(name, port, _described(name, port) if refused else None))
        return () if refused or self.probe else addresses


def _described(name: str, port: int) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        # The address is not named: a tenant must not learn what our internal DNS answers.
        return f"{name} (port {port}), which points to a private, loopback or reserved address"
    return f"{name} (port {port}), a private, loopback or reserved address"


_current: ContextVar[ModelEgress | None] = ContextVar("minirag_model_egress", default=None)


@contextlib.contextmanager
def model_egress(*, probe: bool = False) -> Iterator[ModelEgress]:
    """Put every connection opened inside the block (in this context, and in threads and tasks started from
    it) under the model policy. Yields the record of what was judged."""
    install()
    egress = ModelEgress(probe=probe)
    token = _current.set(egress)
    try:
        yield egress
    finally:
        _current.reset(token)


def _canned_response(status: int, message: str) -> list[bytes]:
    body = json.dumps({"error": {"message": message, "type": "minirag_egress"}}).encode()
    head = (
        f"HTTP/1.1 {status} Refused\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return [head + body]


def _stand_in(egress: ModelEgress) -> list[bytes]:
    """What a connection that is not made answers: 400 for a probe (it only wanted the destination), 403 for a
    refusal. Both are statuses the provider SDKs do not retry."""
    if egress.probe:
        return _canned_response(400, "MiniRAG destination probe: nothing was sent.")
    return _canned_response(403, "Refused by MiniRAG's egress policy.")


@cache
def install() -> None:
    """Wrap httpcore's two real network backends once per process; a no-op outside `model_egress()`."""
    sync_connect = httpcore.SyncBackend.connect_tcp
    async_connect = httpcore.AnyIOBackend.connect_tcp

    def guarded_connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        egress = _current.get()
        if egress is None:
            return sync_connect(self, host, port, *args, **kwargs)
        addresses = egress.admit(host, port)
        if not addresses:
            return httpcore.MockStream(_stand_in(egress))
        error: Exception | None = None
        for address in addresses:  # in the resolver's order, falling back like a browser
            try:
                return sync_connect(self, str(address), port, *args, **kwargs)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError("no address")

    async def guarded_async_connect_tcp(
        self: Any, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        egress = _current.get()
        if egress is None:
            return await async_connect(self, host, port, *args, **kwargs)
        # DNS blocks: a worker thread, as everywhere else in async code.
        addresses = await anyio.to_thread.run_sync(egress.admit, host, port)
        if not addresses:
            return httpcore.AsyncMockStream(_stand_in(egress))
        error: Exception | None = None
        for address in addresses:
            try:
                return await async_connect(self, str(address), port, *args, **kwargs)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError("no address")

    def refuse_unix_socket(original: Any) -> Any:
        def connect_unix_socket(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _current.get() is not None:
                raise httpcore.ConnectError("model providers cannot be reached through a Unix socket")
            return original(self, *args, **kwargs)

        return connect_unix_socket

    httpcore.SyncBackend.connect_tcp = guarded_connect_tcp  # type: ignore[method-assign]
    httpcore.AnyIOBackend.connect_tcp = guarded_async_connect_tcp  # type: ignore[method-assign]
    httpcore.SyncBackend.connect_unix_socket = refuse_unix_socket(httpcore.SyncBackend.connect_unix_socket)  # type: ignore[method-assign]
    httpcore.AnyIOBackend.connect_unix_socket = refuse_unix_socket(httpcore.AnyIOBackend.connect_unix_socket)  # type: ignore[method-assign]
