"""Connections pinned to the addresses that were validated, with one deadline over every socket operation."""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

import httpcore

from minirag.safe_http.destinations import IPAddress, Target, checked_host


class Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def clamp(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        """The timeout for one socket operation: never past the deadline."""
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise error("the deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)


def pinned_addresses(target: Target, addresses: tuple[IPAddress, ...], host: str, port: int) -> list[str]:
    if (checked_host(host), port) != (target.host, target.port):  # cannot happen: one pool serves one validated hop
        raise httpcore.ConnectError(f"refusing to connect to unvalidated origin {host}:{port}")
    return [str(address) for address in addresses]


class PinnedBackend(httpcore.SyncBackend):
    """Connects only to this hop's validated addresses (in order, falling back like a browser), whatever
    name httpcore asks for, and clamps every socket operation to the deadline."""

    def __init__(self, target: Target, addresses: tuple[IPAddress, ...], deadline: Deadline) -> None:
        self._target, self._addresses, self._deadline = target, addresses, deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kwargs: Any) -> httpcore.NetworkStream:
        error = None
        for address in pinned_addresses(self._target, self._addresses, host, port):
            try:
                timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
                return DeadlineStream(super().connect_tcp(address, port, timeout, **kwargs), self._deadline)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError("no address")


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AsyncPinnedBackend(httpcore.AnyIOBackend):
    """`PinnedBackend` for async code; there the deadline is a cancel scope around the whole fetch."""

    def __init__(self, target: Target, addresses: tuple[IPAddress, ...]) -> None:
        self._target, self._addresses = target, addresses

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        error = None
        for address in pinned_addresses(self._target, self._addresses, host, port):
            try:
                return await super().connect_tcp(address, port, timeout, **kwargs)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError("no address")


_per_thread = threading.local()


def ssl_context() -> ssl.SSLContext:
    # A context costs ~40 ms to build (certifi bundle), so each thread keeps one. Not shared between threads:
    # httpcore sets ALPN on it at every connection.
    if not hasattr(_per_thread, "ssl_context"):
        _per_thread.ssl_context = httpcore.default_ssl_context()
    return _per_thread.ssl_context
