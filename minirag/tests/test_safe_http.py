"""minirag/safe_http: the SSRF guard and the fetch contract, against real HTTP servers on loopback.

No network is needed. Servers run in threads on 127.0.0.1 and 127.0.0.2 (all of 127/8 is loopback on Linux),
one of them speaking TLS with a certificate for the made-up host "site.test"; DNS answers are faked by replacing
`destinations.resolve`, the guard's one resolver. The test settings allow private networks so that other suites
can fetch from loopback; every SSRF test here turns that back off (`guard`).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import gzip
import http.server
import ipaddress
import json
import pickle
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.exceptions import ImproperlyConfigured

from minirag.safe_http import (
    BlockedDestinationError,
    FetchError,
    InvalidURLError,
    ResponseTooLargeError,
    UnsupportedContentTypeError,
    afetch,
    check_url,
    destinations,
    fetch,
    is_public_address,
    transport,
)

PAGE = "<html><body>héllo, wörld</body></html>".encode()
TEXT = ("MiniRAG answers from your documents. " * 50).encode()
FRENCH = "Le café était servi avec une crème brûlée. À côté, un garçon lisait « Les Misérables » près de la fenêtre."
GZIP_BOMB = gzip.compress(bytes(20 * 1024 * 1024), compresslevel=9)  # 20 MiB of zeros in about 20 KiB


T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


# --- Local servers ------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes by first path segment (`/chain/3` → `route_chain("3")`). HTTP/1.0: a body ends at close."""

    server: Server

    def log_message(self, *args: Any) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        self.raw_query = url.query
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append(Seen(self.command, url.path, headers, body))
        name, _, argument = url.path.strip("/").partition("/")
        try:
            getattr(self, "route_" + name.replace("-", "_"))(argument)
        except OSError:
            pass  # the client hung up: size and deadline tests do that on purpose

    do_POST = do_PUT = do_DELETE = do_GET

    def reply(self, status: int, body: bytes = b"", content_type: str | None = "text/plain", **headers: str) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def wait(self, seconds: float) -> bool:
        """Sleep, but wake up when the servers shut down (so no handler thread outlives the tests)."""
        return self.server.stop.wait(seconds)

    def route_page(self, _: str) -> None:
        self.reply(200, PAGE, "text/html; charset=utf-8")

    def route_json(self, _: str) -> None:
        self.reply(200, b'{"answer": 42, "items": [1, 2]}', "application/json")

    def route_bad_json(self, _: str) -> None:
        self.reply(200, b'{"answer": ', "application/json")

    def route_deep_json(self, _: str) -> None:
        self.reply(200, b"[" * 100_000 + b"]" * 100_000, "application/json")

    def route_latin(self, _: str) -> None:
        self.reply(200, FRENCH.encode("cp1252"), "text/plain")

    def route_odd_charset(self, _: str) -> None:
        self.reply(200, "héllo".encode(), "text/plain; charset=x-no-such-charset")

    def route_type(self, _: str) -> None:
        self.reply(200, b"typed", self.query.get("ct"))

    def route_echo(self, _: str) -> None:
        seen = self.server.seen[-1]
        echo = {"method": seen.method, "headers": seen.headers, "body": seen.body.decode("latin-1")}
        self.reply(200, json.dumps(echo).encode(), "application/json")

    def route_redirect(self, _: str) -> None:
        self.reply(int(self.query.get("status", "302")), Location=self.query["to"])

    def route_chain(self, argument: str) -> None:
        self.wait(float(self.query.get("delay", "0")))
        left = int(argument)
        if left:  # a relative reference, resolved against /chain/<n>
            self.reply(302, Location=f"{left - 1}?{self.raw_query}" if self.raw_query else str(left - 1))
        else:
            self.route_page("")

    def route_status(self, argument: str) -> None:
        retry_after = {"Retry_After": self.query["retry_after"]} if "retry_after" in self.query else {}
        self.reply(int(argument), b"status page", "text/plain", **retry_after)

    def route_stall(self, _: str) -> None:
        """Headers (after `before` seconds) announcing a body that does not come."""
        self.wait(float(self.query.get("before", "0")))
        self.send_response(200)
        self.send_header("Content-Type", self.query.get("ct", "text/plain"))
        self.send_header("Content-Length", self.query.get("length", "100"))
        self.end_headers()
        self.wfile.flush()
        self.wait(3)

    def route_endless(self, _: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        chunk, deadline = b"x" * 65536, time.monotonic() + 3
        while time.monotonic() < deadline and not self.server.stop.is_set():
            self.wfile.write(chunk)

    def route_drip(self, _: str) -> None:
        """One byte every 50 ms: every single read is quick, only a total deadline stops it."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            if self.wait(0.05):
                return

    def route_encoded(self, encoding: str) -> None:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        bodies = {
            "gzip": gzip.compress(TEXT),
            "deflate": zlib.compress(TEXT),
            "raw-deflate": compressor.compress(TEXT) + compressor.flush(),
            "br": b"\x0b\x02\x80hello\x03",
        }
        header = "deflate" if encoding == "raw-deflate" else encoding
        self.reply(200, bodies[encoding], "text/plain; charset=utf-8", Content_Encoding=header)

    def route_gzip_bomb(self, _: str) -> None:
        self.reply(200, GZIP_BOMB, "text/plain", Content_Encoding="gzip")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() then joins every handler thread: none outlives the fixture
    block_on_close = True

    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((host, 0), Handler)
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.host, self.port = host, self.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name=f"test server {host}", daemon=True
        )
        self._thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
        self._thread.join()


def make_tls(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throwaway CA and a certificate for site.test: (server context, client context trusting only that CA)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    ca_name = name("MiniRAG test CA")

    def builder(subject: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    unused = ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only")
    usage = x509.KeyUsage(
        digital_signature=True, key_cert_sign=True, crl_sign=True, decipher_only=False, **dict.fromkeys(unused, False)
    )
    ca = (
        builder(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        builder(name("site.test"), key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("site.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


@dataclass
class Servers:
    main: Server  # http on 127.0.0.1
    second: Server  # http on 127.0.0.1, another port
    other: Server  # http on 127.0.0.2
    tls: Server  # https on 127.0.0.2, certificate for site.test
    client_tls: ssl.SSLContext  # trusts the test CA
    sni: list[str] = field(default_factory=list)  # server names the TLS server was asked for

    def all(self) -> tuple[Server, ...]:
        return (self.main, self.second, self.other, self.tls)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    server_tls, client_tls = make_tls(tmp_path_factory.mktemp("tls"))
    sni: list[str] = []
    server_tls.sni_callback = lambda _socket, name, _context: sni.append(name)
    tls = Server("127.0.0.2", server_tls)
    started = Servers(Server("127.0.0.1"), Server("127.0.0.1"), Server("127.0.0.2"), tls, client_tls, sni)
    yield started
    for server in started.all():
        server.close()


@pytest.fixture
def srv(servers: Servers) -> Servers:
    for server in servers.all():
        server.seen.clear()
    servers.sni.clear()
    return servers


@pytest.fixture
def guard(settings: Any) -> None:
    """The production posture: private networks refused; 127.0.0.2 allowed as a configured exception."""
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.SSRF_ALLOWED_NETWORKS = ["127.0.0.2/32"]


class FakeDNS:
    """Stands in for `destinations.resolve`. Each name answers its lists in turn (the last one repeats); IP
    literals resolve for real (no DNS involved); unknown names do not resolve."""

    def __init__(self, real: Callable[[str, int], list[str]]) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.queries: list[str] = []
        self._real = real

    def set(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)

    def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        if host in self.answers:
            answers = self.answers[host]
            return answers.pop(0) if len(answers) > 1 else answers[0]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return self._real(host, port)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(destinations.resolve)
    monkeypatch.setattr(destinations, "resolve", fake)
    return fake


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Records every outgoing TCP connection (sync and async) by the address actually dialled."""
    made: list[tuple[str, int]] = []
    real_sync, real_async = socket.create_connection, anyio.connect_tcp

    def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        made.append((address[0], address[1]))
        return real_sync(address, *args, **kwargs)

    async def async_spy(remote_host: str, remote_port: int, **kwargs: Any) -> Any:
        made.append((str(remote_host), remote_port))
        return await real_async(remote_host, remote_port, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    monkeypatch.setattr(anyio, "connect_tcp", async_spy)
    return made


@pytest.fixture
def trusted_tls(monkeypatch: pytest.MonkeyPatch, srv: Servers) -> None:
    """Make fetch trust the test CA (instead of the certifi bundle)."""
    monkeypatch.setattr(transport, "ssl_context", lambda: srv.client_tls)


# --- URL form -----------------------------------------------------------------------------------------------

REFUSED_URLS = [
    ("ftp://example.com/file", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("gopher://127.0.0.1:70/_stats", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("//example.com/no-scheme", "only http and https"),
    ("http://user:secret@example.com/", "credentials"),
    ("http://token@example.com/", "credentials"),
    ("http:///path-without-host", "no host"),
    ("http://[::1/", "not valid"),
    ("http://example.com:99999/", "port"),
    ("http://exa mple.com/", "not a valid hostname"),
    ("http://example.com\r\nX-Injected: 1/", "not valid"),
    ("", "empty"),
    ("http://example.com/" + "a" * 2048, "longer than 2048"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_urls_that_are_not_plain_http_are_refused_with_a_reason(
    url: str, reason: str, dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    for attempt in (check_url, fetch, lambda url: run(afetch(url))):
        with pytest.raises(BlockedDestinationError) as caught:
            attempt(url)
        assert reason in caught.value.message and caught.value.transient is False
    assert dns.queries == [] and connections == []


def test_malformed_urls_are_invalid_url_errors() -> None:
    with pytest.raises(InvalidURLError, match="not valid"):
        check_url("http://[::1/")
    with pytest.raises(InvalidURLError, match="longer than"):
        check_url("https://example.com/" + "a" * 2048)


def test_a_url_of_exactly_2048_characters_is_accepted(dns: FakeDNS) -> None:
    dns.set("example.com", ["93.184.216.34"])
    url = "https://example.com/"
    check_url(url + "a" * (2048 - len(url)))


# --- Resolved addresses -------------------------------------------------------------------------------------

LOOPBACK_AND_PRIVATE_LITERALS = [
    "http://127.0.0.1/",
    "http://2130706433/",  # decimal
    "http://0x7f.1/",  # hex, short form
    "http://0x7f000001/",
    "http://127.1/",  # short form
    "http://0177.0.0.1/",  # octal (httpx refuses it as malformed: still refused)
    "http://0/",
    "http://0.0.0.0:8000/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[2002:a00:1::1]/",  # 6to4 around 10.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fe80::1]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fd00::1]/",  # unique local
    "http://[fec0::1]/",  # site local
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.1/",  # documentation
    "http://198.51.100.1/",
    "http://[2001:db8::1]/",
    "http://198.18.0.1/",  # benchmarking
]


@pytest.mark.parametrize("url", LOOPBACK_AND_PRIVATE_LITERALS)
def test_internal_addresses_in_any_notation_are_refused_before_connecting(
    url: str, guard: None, monkeypatch: pytest.MonkeyPatch, connections: list[tuple[str, int]]
) -> None:
    for attempt in (check_url, fetch, lambda url: run(afetch(url))):
        with pytest.raises(BlockedDestinationError) as caught:
            attempt(url)
        assert caught.value.transient is False
    assert connections == []


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["100.64.1.1"],
        ["fd12:3456::1"],
        ["127.0.0.1"],
        ["93.184.216.34", "10.0.0.5"],  # one private answer among public ones is enough
        ["2606:2800:220:1::1", "::1"],
    ],
)
def test_a_host_resolving_to_an_internal_address_is_refused_before_connecting(
    answers: list[str], guard: None, dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    dns.set("attacker.example", answers)
    for attempt in (check_url, fetch, lambda url: run(afetch(url))):
        with pytest.raises(BlockedDestinationError) as caught:
            attempt("https://attacker.example/steal")
        assert "attacker.example" in caught.value.message
        assert all(answer not in caught.value.message for answer in answers)  # our DNS answers stay ours
    assert dns.queries == ["attacker.example"] * 3
    assert connections == []


def test_a_public_answer_passes(guard: None, dns: FakeDNS) -> None:
    dns.set("example.com", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    check_url("https://example.com/")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),  # mapped: judged by the IPv4 address really dialled
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("2002:808:808::1", True),  # 6to4 of a public address
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("64:ff9b::7f00:1", False),
        ("::ffff:169.254.169.254", False),
        ("192.0.0.8", False),
        ("203.0.113.9", False),
        ("3fff::1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_a_domain_that_does_not_exist_is_a_permanent_error_not_a_refusal(guard: None, dns: FakeDNS) -> None:
    with pytest.raises(FetchError) as caught:
        fetch("https://nowhere.example/")
    assert not isinstance(caught.value, BlockedDestinationError)
    assert caught.value.transient is False
    assert caught.value.message == "the domain nowhere.example does not exist (no DNS record)"


@pytest.mark.parametrize("code", [socket.EAI_AGAIN, socket.EAI_FAIL])
def test_a_resolver_that_cannot_answer_now_is_a_transient_error(
    guard: None, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def unanswered(host: str, port: int) -> list[str]:
        raise socket.gaierror(code, "Temporary failure in name resolution")

    monkeypatch.setattr(destinations, "resolve", unanswered)
    with pytest.raises(FetchError) as caught:
        fetch("https://flaky-dns.example/")
    assert caught.value.transient is True and "could not resolve flaky-dns.example" in caught.value.message


def test_a_name_without_addresses_is_a_transient_error(guard: None, dns: FakeDNS) -> None:
    dns.set("empty.example", [])
    with pytest.raises(FetchError, match=r"could not resolve empty\.example") as caught:
        check_url("https://empty.example/")
    assert caught.value.transient is True


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254.:80/",  # the root label's dot: the same address
        "http://127.0.0.1./",
        "http://localhost.:18150/",
        "http://localhost/",
        "http://api.localhost/",  # RFC 6761: every name under localhost is this machine
        "http://LOCALHOST./",
        "http://[::1%25eth0]:18150/",  # an IPv6 zone: an interface of this machine
        "http://[fe80::1%25lo]:18150/",
    ],
)
def test_other_spellings_of_this_machine_are_refused_without_a_dns_query(
    url: str, guard: None, dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    for attempt in (check_url, fetch, lambda url: run(afetch(url))):
        with pytest.raises(BlockedDestinationError) as caught:
            attempt(url)
        assert caught.value.transient is False
    assert dns.queries == []
    assert connections == []


def test_allowed_networks_are_exceptions_to_the_rule(settings: Any, dns: FakeDNS) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.SSRF_ALLOWED_NETWORKS = ["10.0.5.0/24", " fd00:5::/64 "]
    dns.set("search.internal", ["10.0.5.7", "fd00:5::7"])
    dns.set("db.internal", ["10.0.6.1"])
    check_url("http://search.internal/")
    with pytest.raises(BlockedDestinationError):
        check_url("http://db.internal/")
    settings.SSRF_ALLOWED_NETWORKS = ["10.0.5.0/33"]
    with pytest.raises(ImproperlyConfigured, match="SSRF_ALLOWED_NETWORKS"):
        check_url("http://search.internal/")


def test_allow_private_networks_turns_the_address_check_off_but_not_the_url_rules(settings: Any) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = True
    check_url("http://127.0.0.1:8000/")
    check_url("http://[::1]/")
    with pytest.raises(BlockedDestinationError, match="credentials"):
        check_url("http://admin:admin@127.0.0.1/")
    with pytest.raises(BlockedDestinationError, match="only http"):
        check_url("file:///etc/passwd")


# --- Pinning: DNS rebinding, TLS, proxies -------------------------------------------------------------------


def test_the_connection_goes_to_the_validated_address_under_the_real_host_name(
    srv: Servers, guard: None, dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    # A rebinding DNS: a harmless answer for the check, an internal one for whoever asks next.
    dns.set("site.test", ["127.0.0.2"], ["10.0.0.9"])
    response = fetch(srv.other.url("/echo", host="site.test"))
    assert response.json()["headers"]["host"] == f"site.test:{srv.other.port}"
    assert dns.queries == ["site.test"]  # nobody resolved the name a second time
    assert connections == [("127.0.0.2", srv.other.port)]


def test_every_redirect_is_resolved_and_checked_again(srv: Servers, guard: None, dns: FakeDNS) -> None:
    dns.set("site.test", ["127.0.0.2"], ["10.0.0.9"])
    target = srv.other.url("/page", host="site.test")
    with pytest.raises(BlockedDestinationError):
        fetch(srv.other.url(f"/redirect?to={quote(target)}", host="site.test"))
    assert dns.queries == ["site.test", "site.test"]
    assert [seen.path for seen in srv.other.seen] == ["/redirect"]


def test_https_sends_sni_and_verifies_the_certificate_for_the_host_name_not_the_address(
    srv: Servers, guard: None, dns: FakeDNS, trusted_tls: None, connections: list[tuple[str, int]]
) -> None:
    dns.set("site.test", ["127.0.0.2"])
    response = fetch(srv.tls.url("/echo", host="site.test"))
    assert response.status_code == 200 and response.url == srv.tls.url("/echo", host="site.test")
    assert srv.sni == ["site.test"]
    assert response.json()["headers"]["host"] == f"site.test:{srv.tls.port}"
    assert connections == [("127.0.0.2", srv.tls.port)]


def test_https_with_a_certificate_for_another_name_is_refused(
    srv: Servers, guard: None, dns: FakeDNS, trusted_tls: None
) -> None:
    dns.set("other.test", ["127.0.0.2"])
    with pytest.raises(FetchError, match=r"TLS certificate of other\.test is not valid") as caught:
        fetch(srv.tls.url("/page", host="other.test"))
    assert caught.value.transient is False
    assert srv.sni == ["other.test"] and srv.tls.seen == []


def test_https_certificates_are_verified_against_the_system_bundle_by_default(
    srv: Servers, guard: None, dns: FakeDNS
) -> None:
    dns.set("site.test", ["127.0.0.2"])
    with pytest.raises(FetchError, match="certificate") as caught:
        fetch(srv.tls.url("/page", host="site.test"))  # the test CA is not in certifi's bundle
    assert caught.value.transient is False


def test_proxy_environment_variables_are_ignored(
    srv: Servers, monkeypatch: pytest.MonkeyPatch, connections: list[tuple[str, int]]
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert fetch(srv.main.url("/page")).content == PAGE
    assert connections == [("127.0.0.1", srv.main.port)]


# --- Redirects ----------------------------------------------------------------------------------------------


def test_relative_redirects_are_followed(srv: Servers) -> None:
    response = fetch(srv.main.url("/chain/3"))
    assert response.url == srv.main.url("/chain/0") and response.content == PAGE
    assert [seen.path for seen in srv.main.seen] == ["/chain/3", "/chain/2", "/chain/1", "/chain/0"]


def test_redirects_are_limited(srv: Servers) -> None:
    assert fetch(srv.main.url("/chain/2"), max_redirects=2).status_code == 200
    with pytest.raises(FetchError, match="redirected more than 2 times") as caught:
        fetch(srv.main.url("/chain/3"), max_redirects=2)
    assert caught.value.transient is False
    with pytest.raises(FetchError, match="more than 0"):
        fetch(srv.main.url("/chain/1"), max_redirects=0)


def test_redirects_can_be_returned_instead_of_followed(srv: Servers) -> None:
    response = fetch(srv.main.url("/chain/1"), follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "0"
    assert len(srv.main.seen) == 1


def test_a_redirect_to_an_internal_address_is_refused(srv: Servers, guard: None) -> None:
    inside = srv.main.url("/page")  # 127.0.0.1: not in the allowed networks
    with pytest.raises(BlockedDestinationError):
        fetch(srv.other.url(f"/redirect?to={quote(inside)}"))
    assert srv.main.seen == []


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("file:///etc/passwd", "only http"),
        ("gopher://127.0.0.2/", "only http"),
        ("http://u:p@127.0.0.2/", "credentials"),
    ],
)
def test_a_redirect_to_a_forbidden_url_is_refused(srv: Servers, location: str, reason: str) -> None:
    with pytest.raises(BlockedDestinationError, match=reason):
        fetch(srv.other.url(f"/redirect?to={quote(location)}"))


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "body_kept"),
    [
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (302, "POST", "GET", False),
        (301, "POST", "GET", False),
        (307, "POST", "POST", True),
        (308, "PUT", "PUT", True),
        (302, "PUT", "PUT", True),
    ],
)
def test_redirect_method_and_body(
    srv: Servers, status: int, method: str, expected_method: str, body_kept: bool
) -> None:
    response = fetch(srv.main.url(f"/redirect?status={status}&to=/echo"), method=method, json={"q": "hello"})
    echo = response.json()
    assert echo["method"] == expected_method
    assert (echo["body"] == '{"q": "hello"}') is body_kept
    assert ("content-type" in echo["headers"]) is body_kept


def test_credentials_follow_a_redirect_on_the_same_origin(srv: Servers) -> None:
    credentials = {"Authorization": "Bearer secret", "Cookie": "session=1", "X-Trace": "t1"}
    echo = fetch(srv.main.url("/redirect?to=/echo"), headers=credentials).json()
    assert echo["headers"]["authorization"] == "Bearer secret" and echo["headers"]["cookie"] == "session=1"


@pytest.mark.parametrize("elsewhere", ["other host", "other port"])
def test_credentials_do_not_follow_a_redirect_to_another_origin(srv: Servers, elsewhere: str) -> None:
    target = srv.other.url("/echo") if elsewhere == "other host" else srv.second.url("/echo")
    credentials = {"Authorization": "Bearer secret", "Cookie": "session=1", "X-Trace": "t1"}
    echo = fetch(srv.main.url(f"/redirect?to={quote(target)}"), headers=credentials).json()
    assert "authorization" not in echo["headers"] and "cookie" not in echo["headers"]
    assert echo["headers"]["x-trace"] == "t1"


def test_credentials_stay_dropped_after_coming_back_to_the_original_origin(srv: Servers) -> None:
    back = srv.main.url("/echo")
    detour = srv.other.url(f"/redirect?to={quote(back)}")
    echo = fetch(srv.main.url(f"/redirect?to={quote(detour)}"), headers={"Authorization": "Bearer secret"}).json()
    assert "authorization" not in echo["headers"]


# --- Deadline -----------------------------------------------------------------------------------------------


def assert_times_out(call: Callable[[], Any], limit: float) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out after") as caught:
        call()
    assert caught.value.transient is True
    assert time.monotonic() - started < limit


def test_the_deadline_covers_a_body_that_trickles_in(srv: Servers) -> None:
    assert_times_out(lambda: fetch(srv.main.url("/drip"), timeout=0.4), limit=1.2)


def test_the_deadline_covers_a_server_that_does_not_answer(srv: Servers) -> None:
    assert_times_out(lambda: fetch(srv.main.url("/stall?before=2"), timeout=0.3), limit=1.0)
    assert_times_out(lambda: fetch(srv.main.url("/stall?after=2"), timeout=0.3), limit=1.0)


def test_the_deadline_covers_all_redirects(srv: Servers) -> None:
    # Each hop takes 0.2 s: every one alone is well within the timeout, together they are not.
    assert_times_out(lambda: fetch(srv.main.url("/chain/5?delay=0.2"), timeout=0.5), limit=1.2)


def test_the_deadline_defaults_to_the_setting(srv: Servers, settings: Any) -> None:
    settings.FETCH_TIMEOUT_SECONDS = 0.3
    assert_times_out(lambda: fetch(srv.main.url("/drip")), limit=1.0)


# --- Size ---------------------------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_without_reading(srv: Servers) -> None:
    started = time.monotonic()
    with pytest.raises(ResponseTooLargeError, match="larger than 1000 bytes") as caught:
        fetch(srv.main.url("/stall?length=1001"), max_bytes=1000, timeout=3)  # the body never comes
    assert time.monotonic() - started < 1 and caught.value.transient is False


def test_an_endless_body_stops_at_the_limit(srv: Servers) -> None:
    with pytest.raises(ResponseTooLargeError):
        fetch(srv.main.url("/endless"), max_bytes=200_000)


def test_the_limit_is_inclusive_and_defaults_to_the_setting(srv: Servers, settings: Any) -> None:
    assert fetch(srv.main.url("/page"), max_bytes=len(PAGE)).content == PAGE
    settings.FETCH_MAX_BYTES = len(PAGE) - 1
    with pytest.raises(ResponseTooLargeError):
        fetch(srv.main.url("/page"))


def test_a_gzip_bomb_is_stopped_without_inflating_it(srv: Servers) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError):
            fetch(srv.main.url("/gzip-bomb"), max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000  # inflating even one 64 KiB read of this body would take 20 MiB


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(srv: Servers, encoding: str) -> None:
    response = fetch(srv.main.url(f"/encoded/{encoding}"))
    assert response.content == TEXT
    with pytest.raises(ResponseTooLargeError):
        fetch(srv.main.url(f"/encoded/{encoding}"), max_bytes=len(TEXT) - 1)  # the decoded size counts


def test_an_unknown_content_encoding_is_an_error(srv: Servers) -> None:
    with pytest.raises(FetchError, match="unsupported Content-Encoding: br") as caught:
        fetch(srv.main.url("/encoded/br"))
    assert caught.value.transient is False


# --- Content types, statuses, the response ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "allowed", "accepted"),
    [
        ("text/html; charset=utf-8", ["text/html"], True),
        ("TEXT/HTML", ["text/html"], True),
        ("text/plain", ["text/"], True),
        ("application/xhtml+xml", ["text/html", "application/xhtml+xml"], True),
        ("application/pdf", ["text/"], False),
        ("text/html", ["text/plain"], False),
        ("texture/html", ["text/"], False),
        ("", ["text/html"], False),
    ],
)
def test_allowed_content_types_are_checked_before_the_body_is_read(
    srv: Servers, content_type: str, allowed: list[str], accepted: bool
) -> None:
    url = srv.main.url(f"/stall?ct={quote(content_type)}") if content_type else srv.main.url("/type")
    started = time.monotonic()
    if accepted:
        response = fetch(srv.main.url(f"/type?ct={quote(content_type)}"), allowed_content_types=allowed)
        assert response.content_type == content_type.split(";")[0].lower()
    else:
        with pytest.raises(UnsupportedContentTypeError) as caught:
            fetch(url, allowed_content_types=allowed, timeout=3)  # /stall never sends its body
        assert caught.value.transient is False and "expected" in caught.value.message
        assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("status", "transient"), [(400, False), (404, False), (410, False), (408, True), (425, True), (429, True),
                              (500, True), (502, True), (503, True)],
)  # fmt: skip
def test_error_statuses(srv: Servers, status: int, transient: bool) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(srv.main.url(f"/status/{status}"))
    assert caught.value.status_code == status and caught.value.transient is transient
    assert caught.value.retry_after is None and str(status) in caught.value.message


def test_retry_after_in_seconds_or_as_a_date(srv: Servers) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(srv.main.url("/status/429?retry_after=7"))
    assert caught.value.retry_after == 7.0
    later = email.utils.format_datetime(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60), True)
    with pytest.raises(FetchError) as caught:
        fetch(srv.main.url(f"/status/503?retry_after={quote(later)}"))
    assert caught.value.retry_after is not None and 55 <= caught.value.retry_after <= 61


def test_error_statuses_can_be_returned(srv: Servers) -> None:
    # The content type check is for the content the caller wants (2xx): it does not hide the status.
    response = fetch(srv.main.url("/status/404"), raise_for_status=False, allowed_content_types=["application/json"])
    assert response.status_code == 404 and response.content == b"status page"


def test_an_unfollowed_redirect_is_returned_whatever_the_allowed_types(srv: Servers) -> None:
    response = fetch(srv.main.url("/chain/1"), follow_redirects=False, allowed_content_types="text/html")
    assert response.status_code == 302
    assert fetch(srv.main.url("/chain/1"), allowed_content_types="text/html").content == PAGE  # a str is one type


def test_the_response(srv: Servers) -> None:
    response = fetch(srv.main.url("/page#fragment"))
    assert response.url == srv.main.url("/page")
    assert (response.status_code, response.content, response.content_type, response.charset) == (
        200,
        PAGE,
        "text/html",
        "utf-8",
    )
    assert isinstance(response.headers, httpx.Headers) and response.headers["content-length"] == str(len(PAGE))
    assert response.text() == PAGE.decode() and 0 <= response.elapsed_ms < 5000


def test_text_detects_an_undeclared_charset_and_never_raises(srv: Servers) -> None:
    text = fetch(srv.main.url("/latin")).text()
    assert "café" in text and "\ufffd" not in text
    assert fetch(srv.main.url("/odd-charset")).text() == "héllo"  # unknown charset name: detected instead


def test_json(srv: Servers) -> None:
    assert fetch(srv.main.url("/json")).json() == {"answer": 42, "items": [1, 2]}
    for path in ("/bad-json", "/deep-json", "/page"):
        with pytest.raises(FetchError, match="not valid JSON") as caught:
            fetch(srv.main.url(path)).json()
        assert caught.value.transient is False


# --- The request --------------------------------------------------------------------------------------------


def test_user_agent_comes_from_the_settings_unless_given(srv: Servers, settings: Any) -> None:
    settings.FETCH_USER_AGENT = "TestBot/9"
    assert fetch(srv.main.url("/echo")).json()["headers"]["user-agent"] == "TestBot/9"
    own = fetch(srv.main.url("/echo"), headers={"user-agent": "Custom/1"}).json()
    assert own["headers"]["user-agent"] == "Custom/1"


def test_request_bodies_and_headers(srv: Servers) -> None:
    echo = fetch(srv.main.url("/echo"), method="post", json={"a": [1, "é"]}, headers={"Host": "evil.example"}).json()
    assert echo["method"] == "POST" and json.loads(echo["body"]) == {"a": [1, "é"]}
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["host"] == f"127.0.0.1:{srv.main.port}"  # a caller cannot pick the virtual host
    echo = fetch(srv.main.url("/echo"), method="PUT", content=b"raw", headers={"Content-Type": "text/csv"}).json()
    assert echo["body"] == "raw" and echo["headers"]["content-type"] == "text/csv"
    assert fetch(srv.main.url("/echo"), method="POST").json()["headers"]["content-length"] == "0"


def test_header_injection_is_refused(srv: Servers) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(srv.main.url("/echo"), headers={"X-Note": "a\r\nX-Injected: 1"})
    assert caught.value.transient is False and srv.main.seen == []


def test_invalid_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="json and content"):
        fetch("http://127.0.0.1/", json={}, content=b"x")
    with pytest.raises(ValueError, match="method"):
        fetch("http://127.0.0.1/", method="GET /admin")
    with pytest.raises(ValueError, match="timeout"):
        fetch("http://127.0.0.1/", timeout=0)
    with pytest.raises(TypeError, match="must be a str"):
        fetch(httpx.URL("http://127.0.0.1/"))  # type: ignore[arg-type]


def test_a_refused_connection_is_transient(srv: Servers) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the socket is closed
    with pytest.raises(FetchError, match=r"could not connect to 127\.0\.0\.1: ") as caught:
        fetch(f"http://127.0.0.1:{port}/")
    assert caught.value.transient is True and not isinstance(caught.value, BlockedDestinationError)


def test_errors_survive_pickling() -> None:
    # Celery moves exceptions between processes.
    error = pickle.loads(pickle.dumps(FetchError("x answered 429", transient=True, status_code=429, retry_after=3.0)))
    assert (error.message, error.transient, error.status_code, error.retry_after) == ("x answered 429", True, 429, 3.0)
    blocked = pickle.loads(pickle.dumps(BlockedDestinationError("no")))
    assert isinstance(blocked, BlockedDestinationError) and blocked.transient is False and str(blocked) == "no"


# --- Async --------------------------------------------------------------------------------------------------


def test_async_main_paths(srv: Servers) -> None:
    async def main() -> None:
        page, data, chain = await asyncio.gather(
            afetch(srv.main.url("/page")), afetch(srv.main.url("/json")), afetch(srv.main.url("/chain/2"))
        )
        assert page.content == PAGE and page.charset == "utf-8"
        assert data.json() == {"answer": 42, "items": [1, 2]}
        assert chain.url == srv.main.url("/chain/0")
        assert (await afetch(srv.main.url("/encoded/gzip"))).content == TEXT
        echo = (await afetch(srv.main.url("/redirect?status=303&to=/echo"), method="POST", json={"a": 1})).json()
        assert echo["method"] == "GET" and echo["body"] == ""

    run(main())


def test_async_guard(srv: Servers, guard: None, dns: FakeDNS, connections: list[tuple[str, int]]) -> None:
    dns.set("site.test", ["127.0.0.2"], ["10.0.0.9"])
    inside = srv.main.url("/page")

    async def main() -> None:
        echo = (await afetch(srv.other.url("/echo", host="site.test"))).json()
        assert echo["headers"]["host"] == f"site.test:{srv.other.port}"
        with pytest.raises(BlockedDestinationError):  # site.test now answers 10.0.0.9
            await afetch(srv.other.url("/echo", host="site.test"))
        with pytest.raises(BlockedDestinationError):
            await afetch(srv.other.url(f"/redirect?to={quote(inside)}"))

    run(main())
    assert connections == [("127.0.0.2", srv.other.port)] * 2
    assert srv.main.seen == []


def test_async_https_and_credentials(srv: Servers, guard: None, dns: FakeDNS, trusted_tls: None) -> None:
    dns.set("site.test", ["127.0.0.2"])
    elsewhere = srv.other.url("/echo")

    async def main() -> None:
        response = await afetch(srv.tls.url("/echo", host="site.test"), headers={"Authorization": "Bearer s"})
        assert response.json()["headers"]["authorization"] == "Bearer s"
        redirected = await afetch(srv.tls.url(f"/redirect?to={quote(elsewhere)}", host="site.test"),
                                  headers={"Authorization": "Bearer s"})  # fmt: skip
        assert "authorization" not in redirected.json()["headers"]

    run(main())
    assert srv.sni == ["site.test", "site.test"]


def test_async_limits(srv: Servers) -> None:
    async def main() -> None:
        with pytest.raises(ResponseTooLargeError):
            await afetch(srv.main.url("/endless"), max_bytes=200_000)
        with pytest.raises(ResponseTooLargeError):
            await afetch(srv.main.url("/gzip-bomb"), max_bytes=1_000_000)
        with pytest.raises(UnsupportedContentTypeError):
            await afetch(srv.main.url("/stall?ct=application/pdf"), allowed_content_types=["text/"])
        with pytest.raises(FetchError) as caught:
            await afetch(srv.main.url("/status/503?retry_after=2"))
        assert caught.value.transient is True and caught.value.retry_after == 2.0
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            await afetch(srv.main.url("/drip"), timeout=0.4)
        assert time.monotonic() - started < 1.2

    run(main())


def test_async_does_not_block_the_event_loop_and_bounds_dns(srv: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_resolver(host: str, port: int) -> list[str]:
        release.wait(0.3 if host == "127.0.0.1" else 5)  # a slow DNS server; the second one never answers in time
        return ["127.0.0.1"]

    monkeypatch.setattr(destinations, "resolve", slow_resolver)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> None:
        tick_task = asyncio.create_task(ticker())
        response = await afetch(srv.main.url("/stall?before=0.3&length=0"))
        assert response.status_code == 200
        assert ticks >= 20  # 0.6 s of DNS and waiting, and the loop kept running
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            await afetch(srv.main.url("/page", host="slow.example"), timeout=0.3)
        assert time.monotonic() - started < 1
        tick_task.cancel()

    try:
        run(main())
    finally:
        release.set()  # let the abandoned resolver thread finish


# --- Where tenants save URLs ----------------------------------------------------------------------------------

SPELLINGS_OF_THIS_MACHINE = [
    "http://169.254.169.254.:80/",
    "http://localhost.:18150/",
    "http://[::1%25eth0]:18150/",
    "http://[fe80::1%25lo]:18150/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", SPELLINGS_OF_THIS_MACHINE)
def test_sources_and_webhooks_refuse_other_spellings_of_this_machine_when_saved(
    alpha: Any, guard: None, dns: FakeDNS, url: str
) -> None:
    bot = str(alpha.bot.pk)
    bodies = {
        "/v1/sources": [
            {"bot_profile_id": bot, "name": kind, "source_type": kind, "config": {"url": url}}
            for kind in ("url", "sitemap", "crawl")
        ]
        + [
            {
                "bot_profile_id": bot,
                "name": "search",
                "source_type": "nyxcore",
                "config": {"base_url": url, "api_token": "t"},
            }
        ],
        "/v1/webhooks": [{"url": url, "events": ["chat.message"]}],
    }
    for path, cases in bodies.items():
        for body in cases:
            response = alpha.client("admin").post(path, body, format="json")
            assert response.status_code == 422, (path, body, response.content)
            assert "not allowed" in response.json()["detail"]
    assert dns.queries == []
