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
    return Target(url=parsed, host=host, port=port or DEFAULT_PORTS[parsed.scheme])


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


def is_allowed(ip: IPAddress) -> bool:
    if settings.ALLOW_PRIVATE_NETWORKS:
        return True
    unmapped = (ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else ip
    networks = allowed_networks(tuple(settings.SSRF_ALLOWED_NETWORKS))
    return any(unmapped in network for network in networks) or is_public_address(ip)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order of preference; OSError if none.

    The one place DNS is asked, by `fetch`, `afetch` and `check_url` alike (tests replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)))


def lookup(target: Target) -> tuple[IPAddress, ...]:
    """The addresses to connect to, once every one the host resolves to is allowed."""
    try:
        addresses = resolve(target.host, target.port)
    except UnicodeError:  # e.g. a DNS label longer than 63 characters
        raise InvalidURLError(f"the URL's host is not a valid hostname: {target.host[:100]!r}") from None
    except OSError as exc:
        raise FetchError(f"could not resolve {target.host}: {exc.strerror or exc}", transient=True) from None
    if not addresses:
        raise FetchError(f"could not resolve {target.host}: no address found", transient=True)
    ips = tuple(ipaddress.ip_address(address) for address in addresses)
    if not all(is_allowed(ip) for ip in ips):
        # The address is not named: a tenant must not learn what our internal DNS answers.
        raise BlockedDestinationError(f"{target.host} points to a private or reserved address, which is not allowed")
    return ips


def check_url(url: str) -> None:
    """Check that `url` may be fetched now: its form, and every address its host resolves to.

    Raises `BlockedDestinationError` (`InvalidURLError` when malformed) if not, and a transient `FetchError` if
    the host cannot be resolved at the moment. Meant for when a URL is saved: `fetch` checks again at every
    request and redirect, so a later DNS change gets nowhere."""
    lookup(parse_url(url))
