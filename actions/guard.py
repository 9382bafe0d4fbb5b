"""Outbound URL safety: a journey must not turn our dispatcher into a way into our own network.

Webhook URLs are written by marketers (and may contain `{{ ... }}` filled from profile data), so
"https://crm.example.com" could as well be "http://169.254.169.254/latest/meta-data/" or an
admin port on localhost. Before every call the host is resolved and each address it resolves to
is checked: loopback, private, link-local, cloud metadata and other non-public addresses are
refused unless the settings allow them (`[guard]`). A metadata address is refused even with
`allow_private`: only naming its network in `allow_networks` lets it through.

What "public" means is written out here, as the IANA IPv4 and IPv6 Special-Purpose Address
Registries list it, rather than taken from the running Python's `is_private` / `is_global`,
which have changed between releases (the fix for CVE-2024-4032, in 3.11.10, 3.12.4 and 3.13,
moved several ranges): a Python upgrade must not quietly open one. An address is allowed only
if it is in no entry, or its most specific entry is marked globally reachable.

An IPv6 address can carry an IPv4 one (IPv4-mapped and -translated, IPv4-compatible, NAT64,
6to4, Teredo, ISATAP): a NAT64 gateway or a tunnel relay turns `64:ff9b::a9fe:a9fe` into
169.254.169.254. Each such IPv4 address is decoded and judged as if it had been given itself;
the deprecated IPv4-compatible and -translated forms are refused whatever they carry (no public
name resolves to them), and so is IPv6 outside 2000::/3, where nothing global is assigned.

Known gap: the HTTP client resolves the name again when it connects, so a DNS server that
answers differently the second time (DNS rebinding) is not stopped here; an egress proxy or
firewall is the complete answer. Neither are NAT64 prefixes other than the well-known one, nor
6rd, decoded: their IPv4 position is a property of the network, not of the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import httpx

from .errors import RetryableFailure, UnsafeTarget
from .settings import GuardSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

ALLOWED_SCHEMES = ("http", "https")
# Instance metadata endpoints: AWS, GCP and Azure (169.254.169.254), AWS over IPv6, AWS ECS task
# metadata, Alibaba Cloud. They hand out credentials to whoever asks from inside.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"))


@dataclass(frozen=True)
class SpecialRange:
    """One entry of an IANA special-purpose registry. `reachable` is its Globally Reachable
    column: None where the registry says N/A (the deprecated and the tunnelling entries).
    `embeds` marks the ranges whose addresses carry an IPv4 address: those are judged by it."""

    network: IPNetwork
    name: str
    rfc: str
    reachable: bool | None
    kind: str  # how a refusal calls it: "a {kind} address"
    embeds: bool = False


def _range(network: str, name: str, rfc: str, reachable: bool | None, kind: str,
           embeds: bool = False) -> SpecialRange:
    return SpecialRange(ipaddress.ip_network(network), name, rfc, reachable, kind, embeds)


# https://www.iana.org/assignments/iana-ipv4-special-registry (as of 2024), plus multicast
# (RFC 5771, its own registry). Nested entries: the most specific one decides.
IPV4_SPECIAL = (
    _range("0.0.0.0/8", '"This network"', "RFC 791", False, "unspecified"),
    _range("0.0.0.0/32", '"This host on this network"', "RFC 1122", False, "unspecified"),
    _range("10.0.0.0/8", "Private-Use", "RFC 1918", False, "private"),
    _range("100.64.0.0/10", "Shared Address Space", "RFC 6598", False, "shared (carrier-grade NAT)"),
    _range("127.0.0.0/8", "Loopback", "RFC 1122", False, "loopback"),
    _range("169.254.0.0/16", "Link Local", "RFC 3927", False, "link-local"),
    _range("172.16.0.0/12", "Private-Use", "RFC 1918", False, "private"),
    _range("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", False, "reserved"),
    _range("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False, "reserved"),
    _range("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False, "reserved"),
    _range("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True, "anycast"),
    _range("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True, "anycast"),
    _range("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880", False, "reserved"),
    _range("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880", False, "reserved"),
    _range("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False, "documentation"),
    _range("192.31.196.0/24", "AS112-v4", "RFC 7535", True, "AS112"),
    _range("192.52.193.0/24", "AMT", "RFC 7450", True, "AMT"),
    _range("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", None, "deprecated"),
    _range("192.168.0.0/16", "Private-Use", "RFC 1918", False, "private"),
    _range("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True, "AS112"),
    _range("198.18.0.0/15", "Benchmarking", "RFC 2544", False, "benchmarking"),
    _range("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False, "documentation"),
    _range("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False, "documentation"),
    _range("224.0.0.0/4", "Multicast", "RFC 5771", False, "multicast"),
    _range("240.0.0.0/4", "Reserved", "RFC 1112", False, "reserved"),
    _range("255.255.255.255/32", "Limited Broadcast", "RFC 8190", False, "broadcast"),
)

# https://www.iana.org/assignments/iana-ipv6-special-registry (as of 2024), plus multicast
# (RFC 4291) and two deprecated IPv4 embeddings the registry does not list.
IPV6_SPECIAL = (
    _range("::1/128", "Loopback Address", "RFC 4291", False, "loopback"),
    _range("::/128", "Unspecified Address", "RFC 4291", False, "unspecified"),
    _range("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False, "IPv4-mapped", embeds=True),
    _range("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True, "NAT64", embeds=True),
    _range("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", False, "local-use NAT64"),
    _range("100::/64", "Discard-Only Address Block", "RFC 6666", False, "discard-only"),
    _range("2001::/23", "IETF Protocol Assignments", "RFC 2928", False, "reserved"),
    _range("2001::/32", "TEREDO", "RFC 4380", None, "Teredo", embeds=True),
    _range("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True, "anycast"),
    _range("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True, "anycast"),
    _range("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True, "anycast"),
    _range("2001:2::/48", "Benchmarking", "RFC 5180", False, "benchmarking"),
    _range("2001:3::/32", "AMT", "RFC 7450", True, "AMT"),
    _range("2001:4:112::/48", "AS112-v6", "RFC 7535", True, "AS112"),
    _range("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", None, "deprecated"),
    _range("2001:20::/28", "ORCHIDv2", "RFC 7343", True, "ORCHIDv2"),
    _range("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", True, "DET"),
    _range("2001:db8::/32", "Documentation", "RFC 3849", False, "documentation"),
    _range("2002::/16", "6to4", "RFC 3056", None, "6to4", embeds=True),
    _range("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True, "AS112"),
    _range("3fff::/20", "Documentation", "RFC 9637", False, "documentation"),
    _range("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False, "Segment Routing SID"),
    _range("fc00::/7", "Unique-Local", "RFC 4193", False, "private (unique-local)"),
    _range("fe80::/10", "Link-Local Unicast", "RFC 4291", False, "link-local"),
    _range("ff00::/8", "Multicast", "RFC 4291", False, "multicast"),
    # Not in the registry: deprecated forms that some stacks still route to the IPv4 address.
    _range("::/96", "IPv4-compatible Address (deprecated)", "RFC 4291", False, "IPv4-compatible"),
    _range("::ffff:0:0:0/96", "IPv4-translated Address (obsolete)", "RFC 2765", False, "IPv4-translated"),
)
# Outside 2000::/3 IANA allocates no global unicast (RFC 4291, IPv6 Address Space registry):
# an address there that no entry above names is unassigned.
IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

_ISATAP_IID = 0x00005EFE  # the interface id's upper half, with the universal/local bit masked off
_U_BIT = 0x02000000


def special_range(address: IPAddress) -> SpecialRange | None:
    """The most specific registry entry holding `address`, if any."""
    table = IPV4_SPECIAL if isinstance(address, ipaddress.IPv4Address) else IPV6_SPECIAL
    found = [entry for entry in table if address in entry.network]
    return max(found, key=lambda entry: entry.network.prefixlen, default=None)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address leads to, each with the scheme that carries it: what
    a NAT64 gateway, a relay or a dual-stack socket would connect to in its place."""
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.ipv4_mapped is not None:
        found.append(("IPv4-mapped", address.ipv4_mapped))
    elif value >> 32 == 0xFFFF0000:  # ::ffff:0:a.b.c.d
        found.append(("IPv4-translated", low32))
    elif value >> 32 == 0 and value > 1:  # ::a.b.c.d, but not :: or ::1
        found.append(("IPv4-compatible", low32))
    elif address in ipaddress.IPv6Network("64:ff9b::/96"):
        found.append(("NAT64", low32))
    elif address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    elif address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if ((value >> 32) & 0xFFFFFFFF) & ~_U_BIT == _ISATAP_IID:  # any prefix, then ::5efe:a.b.c.d
        found.append(("ISATAP", low32))
    return found


def refusal(address: IPAddress, settings: GuardSettings) -> str | None:
    """Why `address` may not be called, or None if it may. The exceptions the settings name come
    first; then metadata, which only `allow_networks` opens; then any IPv4 address carried, judged
    the same way; then, unless `allow_private`, the registries."""
    if any(address in network for network in settings.allow_networks):
        return None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    carried = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    for how, ipv4 in carried:
        why = refusal(ipv4, settings)
        if why is not None:
            return f"{how} {ipv4}, {why}"
    if settings.allow_private:
        return None
    entry = special_range(address)
    if entry is None:
        if isinstance(address, ipaddress.IPv6Address) and address not in IPV6_GLOBAL_UNICAST:
            return "not a public address (outside 2000::/3, the global unicast space, RFC 4291)"
        return None
    if entry.embeds and carried:
        return None  # judged by the IPv4 address it carries, above
    if entry.reachable:
        return None
    article = "an" if entry.kind[0] in "aeiouAEIO" else "a"
    return f"{article} {entry.kind} address ({entry.network}: {entry.name}, {entry.rfc}; not globally reachable)"


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as the operating system resolves it."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})
@lru_cache(maxsize=1024)
def _target(url: str) -> tuple[str, str, int]:
    """The scheme, host (lower case) and port a URL calls. Pure, so kept per URL: parsing is most
    of a check of a literal address (80 µs of the dispatcher's ~450 a message), and most
    deliveries call one of a few URLs. Resolving is not kept: it happens on every check."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host.lower(), parsed.port or (443 if parsed.scheme == "https" else 80)


async def check_url(url: str, settings: GuardSettings, resolve: Resolver = system_resolver) -> None:
    """Raise `UnsafeTarget` unless `url` is http(s) to a host whose every address may be called."""
    try:
        scheme, host, port = _target(url)
    except httpx.InvalidURL as error:
        raise UnsafeTarget(f"{url!r} is not a valid URL: {error}") from error
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeTarget(f"{url!r}: only http and https URLs may be called")
    if not host:
        raise UnsafeTarget(f"{url!r}: the URL has no host")
    if host in settings.allow_hosts:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await resolve(host, port)]
        except OSError as error:
            raise RetryableFailure(f"cannot resolve {host}: {error}") from error
    for address in addresses:
        why = refusal(address, settings)
        if why is not None:
            raise UnsafeTarget(f"{url}: {host} resolves to {address}, {why}; "
                               "allow it under [guard] in the settings if this is intended")
