"""Outbound URL safety: a journey must not turn our dispatcher into a way into our own network.

Webhook URLs are written by marketers (and may contain `{{ ... }}` filled from profile data), so
"https://crm.example.com" could as well be "http://169.254.169.254/latest/meta-data/" or an
admin port on localhost. Before every call the host is resolved and each address it resolves to
is checked: loopback, private, link-local, cloud metadata and other non-public addresses are
refused unless the settings allow them (`[guard]`). A metadata address is refused even with
`allow_private`: only naming its network in `allow_networks` lets it through.

Known gap: the HTTP client resolves the name again when it connects, so a DNS server that
answers differently the second time (DNS rebinding) is not stopped here; an egress proxy or
firewall is the complete answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

import httpx

from .errors import RetryableFailure, UnsafeTarget
from .settings import GuardSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

ALLOWED_SCHEMES = ("http", "https")
# Instance metadata endpoints: AWS, GCP and Azure (169.254.169.254), AWS over IPv6, AWS ECS task
# metadata, Alibaba Cloud. They hand out credentials to whoever asks from inside.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"))


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as the operating system resolves it."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def refusal(address: IPAddress, settings: GuardSettings) -> str | None:
    """Why `address` may not be called, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in settings.allow_networks):
        return None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if settings.allow_private:
        return None
    for why, test in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                      ("private", address.is_private), ("unspecified", address.is_unspecified),
                      ("multicast", address.is_multicast)):
        if test:
            return f"a {why} address"
    return None if address.is_global else "not a public address"


async def check_url(url: str, settings: GuardSettings, resolve: Resolver = system_resolver) -> None:
    """Raise `UnsafeTarget` unless `url` is http(s) to a host whose every address may be called."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise UnsafeTarget(f"{url!r} is not a valid URL: {error}") from error
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeTarget(f"{url!r}: only http and https URLs may be called")
    host = parsed.host.lower()
    if not host:
        raise UnsafeTarget(f"{url!r}: the URL has no host")
    if host in settings.allow_hosts:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
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
