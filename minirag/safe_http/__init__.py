"""Outbound HTTP for the whole product, with Server-Side Request Forgery ruled out by construction.

Every request MiniRAG sends to a URL it did not write itself (URL ingestion, crawling, robots.txt, sitemaps,
webhooks, the search API) goes through `fetch` / `afetch`, which guarantee:

* Only http(s) URLs with a host, no credentials, at most 2048 characters (else `BlockedDestinationError`).
* The host is resolved at every hop and EVERY address must be public (`is_public_address`), unless
  settings.ALLOW_PRIVATE_NETWORKS is on or the address is inside settings.SSRF_ALLOWED_NETWORKS.
* DNS rebinding cannot work: each hop runs on its own httpcore pool whose network backend can only connect to
  the addresses just validated. The URL keeps the real hostname, so Host, TLS SNI and certificate checks use it.
* No proxy, ever (httpcore pools do not read proxy variables; a proxy would resolve the name itself).
* Redirects are followed here and each hop is validated again; Authorization and Cookie are dropped once a
  redirect leaves the original scheme+host+port.
* One deadline covers connect, TLS, all redirects and the body, not just each step (and DNS too in `afetch`;
  `fetch` cannot interrupt a lookup in progress, but refuses to go on once the deadline has passed).
* The body is streamed and capped at max_bytes, both as received and as decoded (gzip bombs).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import anyio
import httpcore
import httpx

from minirag.safe_http import destinations, transport
from minirag.safe_http.destinations import MAX_URL_LENGTH, check_url, is_public_address
from minirag.safe_http.operation import Operation
from minirag.safe_http.responses import (
    BlockedDestinationError,
    FetchError,
    FetchResponse,
    InvalidURLError,
    ResponseTooLargeError,
    UnsupportedContentTypeError,
)

__all__ = [
    "MAX_URL_LENGTH",
    "BlockedDestinationError",
    "FetchError",
    "FetchResponse",
    "InvalidURLError",
    "ResponseTooLargeError",
    "UnsupportedContentTypeError",
    "afetch",
    "check_url",
    "fetch",
    "is_public_address",
]


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    allowed_content_types: Collection[str] | None = None,
    follow_redirects: bool = True,
    max_redirects: int = 5,
    raise_for_status: bool = True,
) -> FetchResponse:
    """Send one request through the SSRF guard and return the whole response, or raise a `FetchError`.

    `timeout` (default settings.FETCH_TIMEOUT_SECONDS) bounds the whole operation, redirects and body included.
    `max_bytes` (default settings.FETCH_MAX_BYTES) bounds the body, as received and as decoded.
    `allowed_content_types` holds media types ("text/html") or prefixes ending in "/" ("text/"); a 2xx response
    of another type is refused before its body is read. With `raise_for_status`, 4xx is a permanent error (but
    408/425/429) and 5xx a transient one, with `status_code` and `retry_after`. Invalid arguments raise ValueError."""
    operation = Operation(**locals())  # exactly this function's parameters
    while True:
        target = operation.hop.target
        backend = transport.PinnedBackend(target, destinations.lookup(target), operation.deadline)
        with (
            operation.translate_errors(),
            httpcore.ConnectionPool(ssl_context=transport.ssl_context(), network_backend=backend) as pool,
            pool.stream(**operation.request()) as response,
        ):
            response_headers = httpx.Headers(response.headers)
            if operation.follow(response.status, response_headers):
                continue
            reader = operation.reader(response_headers)
            for chunk in response.iter_stream():
                reader.feed(chunk)
            return operation.response(response.status, response_headers, reader.finish())


async def afetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    allowed_content_types: Collection[str] | None = None,
    follow_redirects: bool = True,
    max_redirects: int = 5,
    raise_for_status: bool = True,
) -> FetchResponse:
    """`fetch` for async code (asyncio or trio): the same checks and errors; DNS runs in a worker thread."""
    operation = Operation(**locals())
    try:
        # A cancel scope is the deadline here: it also stops a DNS lookup, which has no timeout of its own.
        with anyio.fail_after(operation.seconds):
            return await _afetch(operation)
    except TimeoutError:
        raise operation.timeout_error() from None


async def _afetch(operation: Operation) -> FetchResponse:
    while True:
        target = operation.hop.target
        addresses = await anyio.to_thread.run_sync(destinations.lookup, target, abandon_on_cancel=True)
        backend = transport.AsyncPinnedBackend(target, addresses)
        with operation.translate_errors():
            async with (
                httpcore.AsyncConnectionPool(ssl_context=transport.ssl_context(), network_backend=backend) as pool,
                pool.stream(**operation.request()) as response,
            ):
                response_headers = httpx.Headers(response.headers)
                if operation.follow(response.status, response_headers):
                    continue
                reader = operation.reader(response_headers)
                async for chunk in response.aiter_stream():
                    reader.feed(chunk)
                return operation.response(response.status, response_headers, reader.finish())
