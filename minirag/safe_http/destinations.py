"""Where requests may go: URL rules, DNS resolution, and the public-address policy."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from minirag.safe_http.responses import BlockedDestinationError, FetchError, InvalidURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Refused whatever this Python's `is_global` says: its tables have changed between patch releases.
_NEVER_PUBLIC = [
    ipaddress.ip_network(cidr)
    for cidr in "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24 "
    "192.0.2.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 224.0.0.0/4 240.0.0.0/4 "
    "::/96 100::/64 2001:db8::/32 3fff::/20 64:ff9b:1::/48 fc00::/7 fe80::/10 fec0::/10 ff00::/8".split()
]


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) hostname, or IP literal without brackets: what is resolved and connected to
    port: int

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


def parse_url(url: str) -> Target:
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
    if parsed.scheme not in DEFAULT_PORTS:
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
    return Target(url=parsed, host=checked_host(host), port=port or DEFAULT_PORTS[parsed.scheme])


def checked_host(host: str) -> str:
    """`host` as it is resolved and judged: lowercase, without brackets or the root label's trailing dot
    ("localhost." and "169.254.169.254." are "localhost" and "169.254.169.254", so they are refused like their
    plain forms, without a DNS query). An IPv6 zone ("fe80::1%eth0") names an interface of this machine, never
    a public destination: refused outright."""
    host = host.lower().strip("[]")
    if "%" in host:
        raise BlockedDestinationError("IPv6 addresses with a zone (%interface) are not allowed")
    return host[:-1] if host.endswith(".") and not host.endswith("..") else host


def is_localhost_name(host: str) -> bool:
    """RFC 6761: "localhost" and every name under it are this machine, whatever a resolver says."""
    return host == "localhost" or host.endswith(".localhost")


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
def allowed_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"SSRF_ALLOWED_NETWORKS holds an invalid network: {exc}") from exc


def is_allowed(ip: IPAddress, networks: tuple[IPNetwork, ...] | None = None) -> bool:
    """Whether `ip` may be connected to: public, inside one of `networks` (default: the SSRF exceptions
    of settings.SSRF_ALLOWED_NETWORKS), or anything when settings.ALLOW_PRIVATE_NETWORKS is on."""
    if settings.ALLOW_PRIVATE_NETWORKS:
        return True
    if networks is None:
        networks = allowed_networks(tuple(settings.SSRF_ALLOWED_NETWORKS))
    unmapped = (ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else ip
    return any(unmapped in network for network in networks) or is_public_address(ip)


LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
# getaddrinfo's "this name does not exist" answers (NXDOMAIN, or a name without any address): retrying later
# cannot help. Everything else (EAI_AGAIN: no answer from the resolver; SERVFAIL) may pass.
_NAME_DOES_NOT_EXIST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order of preference; OSError if none.

    The one place DNS is asked, by `fetch`, `afetch`, `check_url` and model calls alike (tests replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)))


def host_addresses(host: str, port: int) -> tuple[IPAddress, ...]:
    """The addresses `host` (as `checked_host` returns it) stands for: an IP literal itself, a localhost name
    the loopback addresses (no DNS query), any other name what DNS answers. Raises a `FetchError`: permanent
    when the name does not exist, transient when the resolver cannot answer now."""
    if is_localhost_name(host):
        return tuple(ipaddress.ip_address(address) for address in LOOPBACK_ADDRESSES)
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass  # a name (or an address in a legacy notation, which getaddrinfo reads without DNS)
    try:
        addresses = resolve(host, port)
    except UnicodeError:  # e.g. a DNS label longer than 63 characters
        raise InvalidURLError(f"the URL's host is not a valid hostname: {host[:100]!r}") from None
    except socket.gaierror as exc:
        if exc.errno in _NAME_DOES_NOT_EXIST:
            raise FetchError(f"the domain {host} does not exist (no DNS record)", transient=False) from None
        raise FetchError(f"could not resolve {host}: {exc.strerror or exc}", transient=True) from None
    except OSError as exc:
        raise FetchError(f"could not resolve {host}: {exc.strerror or exc}", transient=True) from None
    if not addresses:
        raise FetchError(f"could not resolve {host}: no address found", transient=True)
    return tuple(ipaddress.ip_address(address) for address in addresses)


def lookup(target: Target) -> tuple[IPAddress, ...]:
    """The addresses to connect to, once every one the host resolves to is allowed."""
    ips = host_addresses(target.host, target.port)
    if not all(is_allowed(ip) for ip in ips):
        # The address is not named: a tenant must not learn what our internal DNS answers.
        raise BlockedDestinationError(f"{target.host} points to a private or reserved address, which is not allowed")
    return ips


def check_url(url: str) -> None:
    """Check that `url` may be fetched now: its form, and every address its host resolves to.

    Raises `BlockedDestinationError` (`InvalidURLError` when malformed) if not, and a `FetchError` if the host
    cannot be resolved (transient unless the name does not exist). Meant for when a URL is saved: `fetch`
    checks again at every request and redirect, so a later DNS change gets nowhere."""
    lookup(parse_url(url))
