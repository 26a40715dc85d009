"""A fake model provider: a real HTTP server on loopback that speaks the OpenAI, Azure OpenAI and Ollama APIs.

Tests of the provider layer need a provider that LiteLLM talks to exactly as it talks to a real one (same SDKs,
same HTTP, same error mapping) without any network, API key or model. Mocking LiteLLM or httpx would skip the
very code paths that break in production (URL building, headers, streaming parsers, status-code mapping), so
this module runs a small standard-library HTTP server instead:

    with FakeProvider() as fake:
        fake.reply = "Hello from the fake."
        litellm.completion(model="openai/fake-chat", api_base=fake.url + "/v1", api_key="sk-test", messages=...)
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-test"

Answers are deterministic: the chat reply is `reply` (streamed word by word), embeddings are derived from a
hash of the text, and token usage counts words. Failures and slowness are scripted per request with
`fail_next()` and `delay_next()`, and every request is recorded (failed ones too, so retries can be counted).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

DEFAULT_REPLY = "The fake model answers."
DEFAULT_DIMENSIONS = 8
DEFAULT_MODELS = ("fake-chat", "fake-embed")

# OpenAI's error `type`, `code` and message per status: LiteLLM maps errors on the body as well as the status
# (a 401 is an authentication error only when its message says "Incorrect API key provided", as OpenAI's does).
_ERROR_KINDS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request", "Fake provider: scripted 400 Bad Request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (the fake provider refused it)."),
    403: ("permission_error", "permission_denied", "Fake provider: scripted 403 Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (fake provider)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (fake provider)."),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, for tests to assert on what the client really sent."""

    method: str
    path: str  # without the query string
    query_string: str
    query: dict[str, str]  # the last value of each parameter, e.g. {"api-version": "2024-06-01"}
    headers: dict[str, str]  # names lower-cased, as HTTP header names are case-insensitive
    body: Any  # the parsed JSON body; None when there was none or it was not JSON
    raw_body: bytes

    @property
    def model(self) -> str | None:
        """The model the client asked for: in the body (OpenAI, Ollama) or in the path (Azure deployments)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("model"), str):
            return self.body["model"]
        match = _AZURE_PATH.match(self.path)
        return match.group("deployment") if match else None


@dataclass
class _Script:
    """A scripted misbehaviour for the next `remaining` requests whose path contains `path`."""

    remaining: int
    path: str | None
    status: int = 0
    body: dict[str, Any] | str | None = None
    seconds: float = 0.0

    def applies_to(self, path: str) -> bool:
        return self.remaining > 0 and (self.path is None or self.path in path)


@dataclass
class _Response:
    """What a route answers: a JSON document, or a stream of events (SSE for OpenAI, NDJSON for Ollama)."""

    status: int = 200
    document: Any = None
    text: str | None = None
    events: Iterable[bytes] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class FakeProvider:
    """A fake model provider on 127.0.0.1, running while the `with` block runs.

    Configure it with the attributes `reply`, `dimensions` and `models` (before or during the block), script
    trouble with `fail_next()` and `delay_next()`, and read what arrived in `requests`. `reset()` forgets both
    the recorded requests and the pending scripts.
    """

    def __init__(
        self,
        reply: str = DEFAULT_REPLY,
        dimensions: int = DEFAULT_DIMENSIONS,
        models: Iterable[str] = DEFAULT_MODELS,
    ) -> None:
        self.reply = reply
        self.dimensions = dimensions
        self.models = list(models)
        # The most inputs one embeddings request may carry (None: any), like providers that cap a batch.
        self.max_inputs: int | None = None
        # Seconds every embeddings request takes (a provider's latency), plus per input (its work),
        # besides scripted delays.
        self.embedding_latency = 0.0
        self.embedding_latency_per_input = 0.0
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Script] = []
        self._delays: list[_Script] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        # A short poll interval: `shutdown()` waits for the loop to notice, and every test pays for it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a scripted delay
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """The server's base URL, e.g. http://127.0.0.1:54321 (append "/v1" for OpenAI clients)."""
        if self._server is None:
            raise RuntimeError("FakeProvider is not running: use it as a context manager.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def open_connections(self) -> int:
        """The client connections open now (a client that closes a stream mid-answer closes one)."""
        return self._server.open_connections() if self._server is not None else 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy: the server may be appending to the original)."""
        with self._lock:
            return list(self._requests)

    def fail_next(
        self, status: int, times: int = 1, body: dict[str, Any] | str | None = None, path: str | None = None
    ) -> None:
        """Answer the next `times` requests (only those whose path contains `path`, when given) with `status`.

        The body is an OpenAI-style error document unless `body` replaces it (a dict is sent as JSON, a string
        as plain text, e.g. to imitate a proxy's HTML error page). A 429 carries `Retry-After: 0`, so a client
        that does retry does not sleep.
        """
        with self._lock:
            self._failures.append(_Script(remaining=times, path=path, status=status, body=body))

    def delay_next(self, seconds: float, times: int = 1, path: str | None = None) -> None:
        """Hold the next `times` requests (matching `path`, when given) for `seconds` before answering, to
        provoke client timeouts. Stopping the server cuts the wait short."""
        with self._lock:
            self._delays.append(_Script(remaining=times, path=path, seconds=seconds))

    def reset(self) -> None:
        """Forget the recorded requests and every scripted failure and delay not yet used."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._delays.clear()

    def _record(self, request: RecordedRequest) -> tuple[_Script | None, _Script | None]:
        """Record the request and take its share of the scripts: (delay, failure), each possibly None."""
        with self._lock:
            self._requests.append(request)
            return _take(self._delays, request.path), _take(self._failures, request.path)

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _take(scripts: list[_Script], path: str) -> _Script | None:
    """The first script that applies to `path`, with one use consumed. Called under the provider's lock."""
    for script in scripts:
        if script.applies_to(path):
            script.remaining -= 1
            if not script.remaining:
                scripts.remove(script)
            return script
    return None


class _Server(ThreadingHTTPServer):
    """The HTTP server, knowing its FakeProvider and its open connections (so stopping closes idle keep-alive
    connections instead of leaving their handler threads blocked on a read)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeProvider) -> None:
        super().__init__(address, handler)
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes a request to the API shape its path names; HTTP/1.1 so clients keep their connections alive."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        self.server.closed(self.connection)
        with contextlib.suppress(OSError):  # the client went away (e.g. it timed out during a scripted delay)
            super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's parameter name)
        """Silent: a test's output should not fill with access-log lines."""

    def _handle(self) -> None:
        fake = self.server.fake
        request, parse_error = self._read_request()
        delay, failure = fake._record(request)
        if delay:
            fake._wait(delay.seconds)
        if failure:
            response = _error(failure.status, body=failure.body)
        elif parse_error:
            response = _error(400, f"We could not parse the JSON body of your request: {parse_error}")
        else:
            route = _route(request)
            response = route(fake, request) if route else _error(404, f"Invalid URL ({request.method} {request.path})")
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting

    def _read_request(self) -> tuple[RecordedRequest, str | None]:
        """The request, and why its body is not JSON when it is not."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        parse_error = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                parse_error = str(exc)
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query_string=parts.query,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            raw_body=raw,
        )
        return request, parse_error

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.events is None:
            payload = (response.text if response.text is not None else json.dumps(response.document)).encode()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        # Chunked, as real providers stream: each event reaches the client as it is written.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in response.events:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


# --- Routes ------------------------------------------------------------------------------------------------------

_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<operation>chat/completions|embeddings)$")

Route = Callable[[FakeProvider, RecordedRequest], _Response]


def _route(request: RecordedRequest) -> Route | None:
    if match := _AZURE_PATH.match(request.path):
        if request.method != "POST":
            return None
        return _openai_chat if match.group("operation") == "chat/completions" else _openai_embeddings
    return _ROUTES.get((request.method, request.path.rstrip("/")))


def _openai_chat(fake: FakeProvider, request: RecordedRequest) -> _Response:
    body = _body(request)
    model = request.model or "fake"
    reply = fake.reply
    usage = _usage(_words_of_messages(body.get("messages")), _words(reply))
    completion_id = f"chatcmpl-fake-{time.monotonic_ns()}"
    created = int(time.time())
    if not body.get("stream"):
        return _Response(
            document={
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": usage,
            }
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        document = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(document).encode() + b"\n\n"

    def events() -> Iterator[bytes]:
        yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for piece in _pieces(reply):
            yield chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        yield chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if include_usage:
            yield chunk([], usage=usage)
        yield b"data: [DONE]\n\n"

    return _Response(events=events(), content_type="text/event-stream")


def _openai_embeddings(fake: FakeProvider, request: RecordedRequest) -> _Response:
    body = _body(request)
    texts = _texts(body.get("input"))
    if fake.embedding_latency or fake.embedding_latency_per_input:
        fake._wait(fake.embedding_latency + fake.embedding_latency_per_input * len(texts))
    if fake.max_inputs is not None and len(texts) > fake.max_inputs:
        return _error(400, f"Too many inputs: at most {fake.max_inputs} per request (fake provider).")
    dimensions = _dimensions(fake, body)
    # The OpenAI SDK asks for base64 (packed little-endian float32) unless the caller chose "float".
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding_of(text, dimensions)
        encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt_tokens = sum(_words(text) for text in texts)
    return _Response(
        document={
            "object": "list",
            "data": data,
            "model": request.model or "fake",
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def _openai_models(fake: FakeProvider, request: RecordedRequest) -> _Response:
    return _Response(
        document={
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in fake.models],
        }
    )


def _ollama_chat(fake: FakeProvider, request: RecordedRequest) -> _Response:
    body = _body(request)
    return _ollama_answer(
        fake, body, _words_of_messages(body.get("messages")), lambda text: {"message": _assistant(text)}
    )


def _ollama_generate(fake: FakeProvider, request: RecordedRequest) -> _Response:
    body = _body(request)
    prompt_words = _words(str(body.get("prompt") or "")) + _words(str(body.get("system") or ""))
    return _ollama_answer(fake, body, prompt_words, lambda text: {"response": text})


def _ollama_answer(
    fake: FakeProvider, body: dict[str, Any], prompt_words: int, content: Callable[[str], dict[str, Any]]
) -> _Response:
    """An Ollama answer, /api/chat and /api/generate alike but for where the text goes (`content`). Ollama
    streams unless the request says `"stream": false`."""
    model = str(body.get("model") or "fake")
    reply = fake.reply
    final = {
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000,
        "prompt_eval_count": prompt_words,
        "eval_count": _words(reply),
    }
    if body.get("stream", True) is False:
        return _Response(document={"model": model, "created_at": _now(), **content(reply), **final})

    def events() -> Iterator[bytes]:
        for piece in _pieces(reply):
            yield json.dumps({"model": model, "created_at": _now(), **content(piece), "done": False}).encode() + b"\n"
        yield json.dumps({"model": model, "created_at": _now(), **content(""), **final}).encode() + b"\n"

    return _Response(events=events(), content_type="application/x-ndjson")


def _ollama_embed(fake: FakeProvider, request: RecordedRequest) -> _Response:
    body = _body(request)
    texts = _texts(body.get("input"))
    dimensions = _dimensions(fake, body)
    return _Response(
        document={
            "model": str(body.get("model") or "fake"),
            "embeddings": [embedding_of(text, dimensions) for text in texts],
            "prompt_eval_count": sum(_words(text) for text in texts),
        }
    )


def _ollama_embeddings(fake: FakeProvider, request: RecordedRequest) -> _Response:
    """The older single-text endpoint, which some clients still call."""
    body = _body(request)
    return _Response(document={"embedding": embedding_of(str(body.get("prompt") or ""), fake.dimensions)})


def _ollama_tags(fake: FakeProvider, request: RecordedRequest) -> _Response:
    return _Response(
        document={
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2024-01-01T00:00:00Z",
                    "size": 0,
                    "digest": hashlib.sha256(name.encode()).hexdigest(),
                    "details": {"format": "gguf", "family": "fake", "parameter_size": "0B"},
                }
                for name in fake.models
            ]
        }
    )


def _ollama_show(fake: FakeProvider, request: RecordedRequest) -> _Response:
    """Just what LiteLLM reads from it: the template (for tool support) and a context length."""
    return _Response(
        document={
            "modelfile": "",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": {"format": "gguf", "family": "fake", "parameter_size": "0B"},
            "model_info": {"general.architecture": "fake", "fake.context_length": 8192},
            "capabilities": ["completion", "embedding"],
        }
    )


_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): _openai_chat,
    ("POST", "/v1/embeddings"): _openai_embeddings,
    ("GET", "/v1/models"): _openai_models,
    ("POST", "/api/chat"): _ollama_chat,
    ("POST", "/api/generate"): _ollama_generate,
    ("POST", "/api/embed"): _ollama_embed,
    ("POST", "/api/embeddings"): _ollama_embeddings,
    ("GET", "/api/tags"): _ollama_tags,
    ("POST", "/api/show"): _ollama_show,
}


# --- Helpers -----------------------------------------------------------------------------------------------------


def embedding_of(text: str, dimensions: int) -> list[float]:
    """The fake's embedding of `text`: deterministic (equal texts, equal vectors, so tests can compare), spread
    over [-1, 1] by SHA-256 and L2-normalised like real embedding models' output."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(value / 0x7FFFFFFF for value in struct.unpack("<8i", digest))
        counter += 1
    vector = values[:dimensions]
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


def _error(status: int, message: str | None = None, body: dict[str, Any] | str | None = None) -> _Response:
    """An error answer: OpenAI's error document, with the status's usual type and code, or the fake's own
    `message` (for its real errors, such as an unknown URL) with no code, as OpenAI sends those."""
    headers = {"Retry-After": "0"} if status == 429 else {}
    if isinstance(body, str):
        return _Response(status=status, text=body, content_type="text/plain; charset=utf-8", headers=headers)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a status outside the standard's list, such as 529
        phrase = "Error"
    error_type, code, default_message = _ERROR_KINDS.get(
        status, ("server_error", "server_error", f"Fake provider: scripted {status} {phrase}.")
    )
    error = {
        "message": message or default_message,
        "type": error_type,
        "param": None,
        "code": None if message else code,
    }
    return _Response(status=status, document=body or {"error": error}, headers=headers)


def _body(request: RecordedRequest) -> dict[str, Any]:
    return request.body if isinstance(request.body, dict) else {}


def _dimensions(fake: FakeProvider, body: dict[str, Any]) -> int:
    """The request's `dimensions` when it names one (OpenAI's text-embedding-3 and Ollama accept it), else the
    fake's own."""
    requested = body.get("dimensions")
    return requested if isinstance(requested, int) and requested > 0 else fake.dimensions


def _texts(value: Any) -> list[str]:
    """An embedding request's `input` as texts: one string or a list (token arrays are hashed as their JSON)."""
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def _words(text: str) -> int:
    return len(text.split())


def _words_of_messages(messages: Any) -> int:
    """Prompt tokens, counted as words of every message's text (a string, or OpenAI's list of parts)."""
    total = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += _words(content)
        elif isinstance(content, list):
            total += sum(_words(str(part.get("text") or "")) for part in content if isinstance(part, dict))
    return total


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _pieces(text: str) -> list[str]:
    """`text` split word by word for streaming, each word keeping the whitespace after it, so the pieces join
    back into exactly `text`."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
