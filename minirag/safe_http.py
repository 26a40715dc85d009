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

import email.utils
import http
import ipaddress
import json as jsonlib
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import anyio
import httpcore
import httpx
from charset_normalizer import from_bytes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Refused whatever this Python's `is_global` says: its tables have changed between patch releases.
_NEVER_PUBLIC = [
    ipaddress.ip_network(cidr)
    for cidr in "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24 "
    "192.0.2.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 224.0.0.0/4 240.0.0.0/4 "
    "::/96 100::/64 2001:db8::/32 3fff::/20 64:ff9b:1::/48 fc00::/7 fe80::/10 fec0::/10 ff00::/8".split()
]


class FetchError(Exception):
    """An outbound request failed. `message` is readable and safe to show to a tenant (it names the host, not
    the whole URL); `transient` says whether trying again later may succeed."""

    def __init__(
        self, message: str, *, transient: bool = False, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status_code = status_code
        self.retry_after = retry_after  # seconds, from a Retry-After header

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every attribute through pickling: Celery ships exceptions between processes.
        return (type(self), (self.message,), self.__dict__)


# The subclasses are never transient (the default): retrying cannot change the answer.
class BlockedDestinationError(FetchError):
    """The destination is not allowed: the SSRF guard."""


class InvalidURLError(BlockedDestinationError):
    """The URL is malformed, so it cannot be an allowed destination either."""


class ResponseTooLargeError(FetchError):
    """The body is larger than `max_bytes`, as sent or as decoded."""


class UnsupportedContentTypeError(FetchError):
    """The response's media type is not among `allowed_content_types`."""


@dataclass(frozen=True)
class FetchResponse:
    url: str  # final URL, after redirects
    status_code: int
    headers: httpx.Headers
    content: bytes
    content_type: str  # lowercased media type without parameters ("" if absent)
    charset: str | None
    elapsed_ms: int

    def text(self) -> str:
        """The body as text: with the declared charset, else UTF-8, else a detected one. Never raises."""
        try:
            return self.content.decode(self.charset or "utf-8", errors="replace" if self.charset else "strict")
        except (LookupError, UnicodeDecodeError):  # an unknown charset name, or not UTF-8
            best = from_bytes(self.content).best()
            return str(best) if best is not None else self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; `FetchError(transient=False)` if it is not valid JSON."""
        try:
            # Without a declared charset, json.loads(bytes) follows RFC 8259 (UTF-8/16/32 and BOMs).
            return jsonlib.loads(self.text().removeprefix("\ufeff") if self.charset else self.content)
        except (ValueError, RecursionError) as exc:
            detail = f": {exc.msg} at line {exc.lineno}" if isinstance(exc, jsonlib.JSONDecodeError) else ""
            host = httpx.URL(self.url).host
            raise FetchError(f"the response from {host} is not valid JSON{detail}", transient=False) from None


# --- Destination policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) hostname, or IP literal without brackets: what is resolved and connected to
    port: int

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


def _parse_url(url: str) -> _Target:
    """Everything about a URL that can be checked without DNS."""
    if not isinstance(url, str):
        raise TypeError(f"the URL must be a str, not {type(url).__name__}")
    if not url.strip():
        raise InvalidURLError("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url.strip())
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidURLError(f"the URL is not valid ({exc})") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise BlockedDestinationError(f"only http and https URLs can be fetched, not {parsed.scheme[:20] or 'none'!r}")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise InvalidURLError("the URL has no host")
    if parsed.userinfo:
        raise BlockedDestinationError("URLs with credentials (user:password@) are not allowed")
    if ":" not in host and not _HOSTNAME.fullmatch(host):  # a ":" means an IPv6 literal, which httpx validated
        raise InvalidURLError(f"the URL's host is not a valid hostname: {host[:100]!r}")
    if port is not None and not 0 < port < 65536:
        raise InvalidURLError(f"the URL's port is out of range: {port}")
    return _Target(url=parsed, host=host, port=port or _DEFAULT_PORTS[parsed.scheme])


def is_public_address(ip: IPAddress) -> bool:
    """True if `ip`, and every IPv4 address embedded in it, is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:  # the socket really talks IPv4, to the embedded address
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64:  # a NAT64 gateway forwards to the embedded address
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(v4 is not None and not is_public_address(v4) for v4 in (ip.sixtofour, *(ip.teredo or ()))):
            return False
    flags = (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
    return ip.is_global and not any(flags) and not any(ip in network for network in _NEVER_PUBLIC)


@lru_cache(maxsize=8)
def _allowed_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"SSRF_ALLOWED_NETWORKS holds an invalid network: {exc}") from exc


def _is_allowed(ip: IPAddress) -> bool:
    if settings.ALLOW_PRIVATE_NETWORKS:
        return True
    unmapped = (ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else ip
    networks = _allowed_networks(tuple(settings.SSRF_ALLOWED_NETWORKS))
    return any(unmapped in network for network in networks) or is_public_address(ip)


def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order of preference; OSError if none.

    The one place DNS is asked, by `fetch`, `afetch` and `check_url` alike (tests replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)))


def _lookup(target: _Target) -> tuple[IPAddress, ...]:
    """The addresses to connect to, once every one the host resolves to is allowed."""
    try:
        addresses = _resolve(target.host, target.port)
    except UnicodeError:  # e.g. a DNS label longer than 63 characters
        raise InvalidURLError(f"the URL's host is not a valid hostname: {target.host[:100]!r}") from None
    except OSError as exc:
        raise FetchError(f"could not resolve {target.host}: {exc.strerror or exc}", transient=True) from None
    if not addresses:
        raise FetchError(f"could not resolve {target.host}: no address found", transient=True)
    ips = tuple(ipaddress.ip_address(address) for address in addresses)
    if not all(_is_allowed(ip) for ip in ips):
        # The address is not named: a tenant must not learn what our internal DNS answers.
        raise BlockedDestinationError(f"{target.host} points to a private or reserved address, which is not allowed")
    return ips


def check_url(url: str) -> None:
    """Check that `url` may be fetched now: its form, and every address its host resolves to.

    Raises `BlockedDestinationError` (`InvalidURLError` when malformed) if not, and a transient `FetchError` if
    the host cannot be resolved at the moment. Meant for when a URL is saved: `fetch` checks again at every
    request and redirect, so a later DNS change gets nowhere."""
    _lookup(_parse_url(url))


# --- Connections pinned to the validated addresses ---------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def clamp(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        """The timeout for one socket operation: never past the deadline."""
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise error("the deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)


def _pinned(target: _Target, addresses: tuple[IPAddress, ...], host: str, port: int) -> list[str]:
    if (host, port) != (target.host, target.port):  # cannot happen: one pool serves one validated hop
        raise httpcore.ConnectError(f"refusing to connect to unvalidated origin {host}:{port}")
    return [str(address) for address in addresses]


class _PinnedBackend(httpcore.SyncBackend):
    """Connects only to this hop's validated addresses (in order, falling back like a browser), whatever
    name httpcore asks for, and clamps every socket operation to the deadline."""

    def __init__(self, target: _Target, addresses: tuple[IPAddress, ...], deadline: _Deadline) -> None:
        self._target, self._addresses, self._deadline = target, addresses, deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kwargs: Any) -> httpcore.NetworkStream:
        error = None
        for address in _pinned(self._target, self._addresses, host, port):
            try:
                timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
                return _DeadlineStream(super().connect_tcp(address, port, timeout, **kwargs), self._deadline)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError("no address")


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
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
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncPinnedBackend(httpcore.AnyIOBackend):
    """`_PinnedBackend` for async code; there the deadline is a cancel scope around the whole fetch."""

    def __init__(self, target: _Target, addresses: tuple[IPAddress, ...]) -> None:
        self._target, self._addresses = target, addresses

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        error = None
        for address in _pinned(self._target, self._addresses, host, port):
            try:
                return await super().connect_tcp(address, port, timeout, **kwargs)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError("no address")


_per_thread = threading.local()


def _ssl_context() -> ssl.SSLContext:
    # A context costs ~40 ms to build (certifi bundle), so each thread keeps one. Not shared between threads:
    # httpcore sets ALPN on it at every connection.
    if not hasattr(_per_thread, "ssl_context"):
        _per_thread.ssl_context = httpcore.default_ssl_context()
    return _per_thread.ssl_context


# --- One fetch: the hops, the checks, the body -------------------------------------------------------------


@dataclass(frozen=True)
class _Hop:
    target: _Target
    method: str
    headers: httpx.Headers
    body: bytes | None


@dataclass
class _Operation:
    """Everything `fetch` and `afetch` share; they only add the I/O. The fields are their parameters."""

    url: str
    method: str
    headers: Mapping[str, str] | None
    json: Any
    content: bytes | None
    timeout: float | None
    max_bytes: int | None
    allowed_content_types: Collection[str] | None
    follow_redirects: bool
    max_redirects: int
    raise_for_status: bool

    def __post_init__(self) -> None:
        if not (self.method.isascii() and self.method.isalpha()) or (
            self.json is not None and self.content is not None
        ):
            raise ValueError("method must be an HTTP method name, and json and content cannot be both given")
        self.seconds: float = settings.FETCH_TIMEOUT_SECONDS if self.timeout is None else self.timeout
        self.limit: int = settings.FETCH_MAX_BYTES if self.max_bytes is None else self.max_bytes
        if self.seconds <= 0 or self.limit < 0 or self.max_redirects < 0:
            raise ValueError("timeout must be positive, max_bytes and max_redirects not negative")
        self.started, self.deadline, self.redirects = time.monotonic(), _Deadline(self.seconds), 0
        allowed = self.allowed_content_types or ()
        self.allowed_types = {t.strip().lower() for t in ([allowed] if isinstance(allowed, str) else allowed)}
        headers = httpx.Headers({"User-Agent": settings.FETCH_USER_AGENT, "Accept-Encoding": "gzip, deflate"})
        headers.update(self.headers or {})
        if self.json is not None:
            headers.setdefault("Content-Type", "application/json")
        for name in ("host", "content-length", "transfer-encoding", "connection"):
            headers.pop(name, None)  # framing and routing are ours: a caller's Host must not pick a virtual host
        body = jsonlib.dumps(self.json).encode() if self.json is not None else self.content
        self.hop = _Hop(_parse_url(self.url), self.method.upper(), headers, body)
        self.origin = self.hop.target.origin

    def request(self) -> dict[str, Any]:
        """httpcore's `stream` arguments. The URL keeps the hostname: the pool's backend pins the address."""
        hop, url = self.hop, self.hop.target.url
        body = b"" if hop.body is None and hop.method in ("POST", "PUT", "PATCH") else hop.body  # Content-Length: 0
        core_url = httpcore.URL(scheme=url.raw_scheme, host=hop.target.host, port=hop.target.port, target=url.raw_path)
        return {
            "method": hop.method,
            "url": core_url,
            "headers": [(b"Host", url.netloc), *hop.headers.raw],
            "content": body,
        }

    def follow(self, status: int, headers: httpx.Headers) -> bool:
        """After a response head: True if it is a redirect to follow (`self.hop` is now the next hop). Else check
        the status, declared length and content type, and raise before the body is read."""
        host, location = self.hop.target.host, headers.get("location")
        if self.follow_redirects and status in (301, 302, 303, 307, 308) and location:
            self.redirects += 1
            if self.redirects > self.max_redirects:
                raise FetchError(f"{host} redirected more than {self.max_redirects} times", transient=False)
            self.hop = self._redirected(status, location)
            return True
        if self.raise_for_status and status >= 400:
            raise _status_error(host, status, headers)
        declared = headers.get("content-length", "")
        if self.hop.method != "HEAD" and declared.isdigit() and int(declared) > self.limit:
            raise ResponseTooLargeError(f"the response from {host} is larger than {self.limit} bytes")
        media_type, _ = _parse_content_type(headers.get("content-type", ""))
        if (
            self.allowed_content_types is not None
            and 200 <= status < 300
            and not any(
                media_type == allowed or (allowed.endswith("/") and media_type.startswith(allowed))
                for allowed in self.allowed_types
            )
        ):
            expected = ", ".join(sorted(self.allowed_types))
            raise UnsupportedContentTypeError(f"{host} sent {media_type or 'no content type'}, expected {expected}")
        return False

    def _redirected(self, status: int, location: str) -> _Hop:
        try:
            next_url = str(self.hop.target.url.join(location))
        except (httpx.InvalidURL, ValueError):
            raise InvalidURLError(f"{self.hop.target.host} redirected to an invalid URL") from None
        hop = replace(self.hop, target=_parse_url(next_url), headers=self.hop.headers.copy())
        if (status == 303 and hop.method != "HEAD") or (status in (301, 302) and hop.method == "POST"):
            hop = replace(hop, method="GET", body=None)  # as browsers do: the body was for the first URL
            hop.headers.pop("content-type", None)
        if hop.target.origin != self.origin:  # credentials were given for the original origin only
            for name in ("authorization", "proxy-authorization", "cookie"):
                hop.headers.pop(name, None)
        return hop

    def reader(self, headers: httpx.Headers) -> _BodyReader:
        return _BodyReader(headers.get("content-encoding", ""), self.limit, self.hop.target.host)

    def response(self, status: int, headers: httpx.Headers, content: bytes) -> FetchResponse:
        media_type, charset = _parse_content_type(headers.get("content-type", ""))
        url = str(self.hop.target.url.copy_with(fragment=None))
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        return FetchResponse(url, status, headers, content, media_type, charset, elapsed_ms)

    def timeout_error(self) -> FetchError:
        return FetchError(f"timed out after {self.seconds:g} s fetching {self.hop.target.host}", transient=True)

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """httpcore's exceptions as FetchError, naming the host of the hop that failed."""
        host = self.hop.target.host
        try:
            yield
        except httpcore.TimeoutException:
            raise self.timeout_error() from None
        except httpcore.ConnectError as exc:
            if isinstance(cause := _cause(exc), ssl.SSLCertVerificationError):
                reason = cause.verify_message or "verification failed"
                raise FetchError(f"the TLS certificate of {host} is not valid: {reason}", transient=False) from None
            raise FetchError(f"could not connect to {host}: {_reason(exc)}", transient=True) from None
        except httpcore.LocalProtocolError as exc:  # e.g. a header value with a line break
            raise FetchError(f"could not send the request to {host}: {_reason(exc)}", transient=False) from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise FetchError(f"the connection to {host} failed: {_reason(exc)}", transient=True) from None


def _cause(exc: Exception) -> BaseException:
    # httpcore wraps the original error as its first argument (its pool re-raises `from None`).
    return exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc


def _reason(exc: Exception) -> str:
    cause = _cause(exc)
    return cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause) or type(cause).__name__


def _status_error(host: str, status: int, headers: httpx.Headers) -> FetchError:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return FetchError(
        f"{host} answered {status} {phrase}",
        transient=status >= 500 or status in (408, 425, 429),
        status_code=status,
        retry_after=_retry_after(headers.get("retry-after", "")),
    )


def _retry_after(value: str) -> float | None:
    """Seconds to wait, from a Retry-After header (delay-seconds or an HTTP date)."""
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _parse_content_type(value: str) -> tuple[str, str | None]:
    media_type, _, parameters = value.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, parameter_value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = parameter_value.strip().strip("\"'").lower() or None
    return media_type.strip().lower(), charset


class _BodyReader:
    """Collects the body and undoes its Content-Encoding (gzip or deflate); more than `limit` bytes received,
    or decoded, is `ResponseTooLargeError`. zlib never produces more than the room left, so a small compressed
    body cannot balloon in memory."""

    def __init__(self, content_encoding: str, limit: int, host: str) -> None:
        self._limit, self._host, self._received, self._parts = limit, host, 0, bytearray()
        self._encoding = content_encoding.strip().lower()
        if self._encoding in ("", "identity"):
            self._zlib = None
        elif self._encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in self._encoding else 0))
        else:
            raise FetchError(f"{host} sent an unsupported Content-Encoding: {self._encoding[:30]}", transient=False)

    def feed(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self._limit:
            raise self._too_large()
        room = self._limit - len(self._parts)
        if self._zlib is not None:
            chunk = self._inflate(chunk, room + 1)  # one byte more than allowed shows the limit is passed
        if len(chunk) > room:
            raise self._too_large()
        self._parts += chunk

    def finish(self) -> bytes:
        return bytes(self._parts)

    def _inflate(self, data: bytes, max_length: int) -> bytes:
        assert self._zlib is not None
        try:
            return self._zlib.decompress(data, max_length)
        except zlib.error:
            if self._encoding == "deflate" and not self._parts and self._received == len(data):
                # Some servers send raw deflate, without the zlib header RFC 9110 asks for.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._inflate(data, max_length)
            raise FetchError(f"{self._host} sent a corrupt {self._encoding} body", transient=False) from None

    def _too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(f"the response from {self._host} is larger than {self._limit} bytes")


# --- Entry points ------------------------------------------------------------------------------------------


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
    operation = _Operation(**locals())  # exactly this function's parameters
    while True:
        target = operation.hop.target
        backend = _PinnedBackend(target, _lookup(target), operation.deadline)
        with (
            operation.translate_errors(),
            httpcore.ConnectionPool(ssl_context=_ssl_context(), network_backend=backend) as pool,
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
    operation = _Operation(**locals())
    try:
        # A cancel scope is the deadline here: it also stops a DNS lookup, which has no timeout of its own.
        with anyio.fail_after(operation.seconds):
            return await _afetch(operation)
    except TimeoutError:
        raise operation.timeout_error() from None


async def _afetch(operation: _Operation) -> FetchResponse:
    while True:
        target = operation.hop.target
        addresses = await anyio.to_thread.run_sync(_lookup, target, abandon_on_cancel=True)
        backend = _AsyncPinnedBackend(target, addresses)
        with operation.translate_errors():
            async with (
                httpcore.AsyncConnectionPool(ssl_context=_ssl_context(), network_backend=backend) as pool,
                pool.stream(**operation.request()) as response,
            ):
                response_headers = httpx.Headers(response.headers)
                if operation.follow(response.status, response_headers):
                    continue
                reader = operation.reader(response_headers)
                async for chunk in response.aiter_stream():
                    reader.feed(chunk)
                return operation.response(response.status, response_headers, reader.finish())
