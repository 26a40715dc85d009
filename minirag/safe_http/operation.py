"""One fetch, I/O aside: the hops, the checks made on each response head, the body reader."""

from __future__ import annotations

import json as jsonlib
import ssl
import time
import zlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpcore
import httpx
from django.conf import settings

from minirag.safe_http.destinations import Target, parse_url
from minirag.safe_http.responses import (
    FetchError,
    FetchResponse,
    InvalidURLError,
    ResponseTooLargeError,
    UnsupportedContentTypeError,
    retry_after_seconds,
    status_phrase,
)
from minirag.safe_http.transport import Deadline


@dataclass(frozen=True)
class Hop:
    target: Target
    method: str
    headers: httpx.Headers
    body: bytes | None


@dataclass
class Operation:
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
        self.started, self.deadline, self.redirects = time.monotonic(), Deadline(self.seconds), 0
        allowed = self.allowed_content_types or ()
        self.allowed_types = {t.strip().lower() for t in ([allowed] if isinstance(allowed, str) else allowed)}
        headers = httpx.Headers({"User-Agent": settings.FETCH_USER_AGENT, "Accept-Encoding": "gzip, deflate"})
        headers.update(self.headers or {})
        if self.json is not None:
            headers.setdefault("Content-Type", "application/json")
        for name in ("host", "content-length", "transfer-encoding", "connection"):
            headers.pop(name, None)  # framing and routing are ours: a caller's Host must not pick a virtual host
        body = jsonlib.dumps(self.json).encode() if self.json is not None else self.content
        self.hop = Hop(parse_url(self.url), self.method.upper(), headers, body)
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

    def _redirected(self, status: int, location: str) -> Hop:
        try:
            next_url = str(self.hop.target.url.join(location))
        except (httpx.InvalidURL, ValueError):
            raise InvalidURLError(f"{self.hop.target.host} redirected to an invalid URL") from None
        hop = replace(self.hop, target=parse_url(next_url), headers=self.hop.headers.copy())
        if (status == 303 and hop.method != "HEAD") or (status in (301, 302) and hop.method == "POST"):
            hop = replace(hop, method="GET", body=None)  # as browsers do: the body was for the first URL
            hop.headers.pop("content-type", None)
        if hop.target.origin != self.origin:  # credentials were given for the original origin only
            for name in ("authorization", "proxy-authorization", "cookie"):
                hop.headers.pop(name, None)
        return hop

    def reader(self, headers: httpx.Headers) -> BodyReader:
        return BodyReader(headers.get("content-encoding", ""), self.limit, self.hop.target.host)

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
    return FetchError(
        f"{host} answered {status} {status_phrase(status)}",
        transient=status >= 500 or status in (408, 425, 429),
        status_code=status,
        retry_after=retry_after_seconds(headers.get("retry-after", "")),
    )


def _parse_content_type(value: str) -> tuple[str, str | None]:
    media_type, _, parameters = value.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, parameter_value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = parameter_value.strip().strip("\"'").lower() or None
    return media_type.strip().lower(), charset


class BodyReader:
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
