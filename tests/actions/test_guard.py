"""The outbound URL guard: internal targets refused, public ones allowed, exceptions by setting."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import Engine, select

from actions.dispatcher import Dispatcher
from actions.errors import RetryableFailure, UnsafeTarget
from actions.guard import IPV4_SPECIAL, IPV6_SPECIAL, check_url
from actions.providers import build_provider
from actions.settings import GuardSettings
from engine.clock import VirtualClock
from storage.tables import outbox
from tests.actions.conftest import NOW, Rows, Served, settings, webhook_settings

STRICT = GuardSettings()


def check(url: str, settings: GuardSettings = STRICT) -> None:
    asyncio.run(check_url(url, settings))


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1/admin", "127.0.0.1, a loopback address"),
    ("http://127.8.9.10:8080/", "loopback"),
    ("https://10.1.2.3/", "10.1.2.3, a private address"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.0.5/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud metadata address"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[::1]:8000/", "::1, a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://0.0.0.0/", "address"),
    ("http://100.64.0.1/", "100.64.0.1, a shared"),
    ("http://localhost:5432/", "resolves to 127.0.0.1, a loopback address"),
])
def test_internal_targets_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeTarget, match=why.replace(".", r"\.")):
        check(url)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://1.1.1.1/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="only http and https"):
        check(url)


def test_public_addresses_pass() -> None:
    check("https://93.184.216.34/hook")
    check("http://[2606:2800:220:1:248:1893:25c8:1946]/hook")


def test_a_name_is_refused_if_any_of_its_addresses_is_internal() -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(UnsafeTarget, match=r"10\.0\.0\.7"):
        asyncio.run(check_url("https://mixed.example.com/", STRICT, resolve))


def test_the_same_url_is_resolved_again_at_every_check() -> None:
    """What a URL names is kept from one check to the next; what its host resolves to is not:
    a name that moves to an internal address is refused at the next check."""
    answers = iter([["93.184.216.34"], ["10.0.0.7"]])
    asked: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(f"{host}:{port}")
        return next(answers)

    asyncio.run(check_url("https://hooks.example.com/points", STRICT, resolve))
    with pytest.raises(UnsafeTarget, match=r"resolves to 10[.]0[.]0[.]7"):
        asyncio.run(check_url("https://hooks.example.com/points", STRICT, resolve))
    assert asked == ["hooks.example.com:443"] * 2


def test_a_name_that_does_not_resolve_is_retried_later() -> None:
    with pytest.raises(RetryableFailure, match="cannot resolve"):
        check("https://no-such-host.invalid/")


def test_allow_private_lets_loopback_through_but_never_metadata() -> None:
    relaxed = GuardSettings(allow_private=True)
    check("http://127.0.0.1:8000/", relaxed)
    check("http://localhost/", relaxed)
    with pytest.raises(UnsafeTarget, match="metadata"):
        check("http://169.254.169.254/", relaxed)


def test_allowed_networks_and_hosts_are_exact_exceptions() -> None:
    settings = GuardSettings(allow_networks=(ipaddress.ip_network("10.20.0.0/16"),), allow_hosts=("crm.internal",))
    check("http://10.20.3.4/", settings)
    check("http://crm.internal/api", settings)  # never resolved: allowed by name
    with pytest.raises(UnsafeTarget):
        check("http://10.21.0.1/", settings)


# --------------------------------------------------------------------------- the special-purpose registries

# Every entry of IANA's IPv4 and IPv6 Special-Purpose Address Registries (2024), with multicast
# and the deprecated IPv4 embeddings: an address inside it, and what the registry's Globally
# Reachable column makes of it. Written out here, not read from actions/guard.py nor from
# Python's ipaddress, so that a wrong row in either shows up. "embeds": judged by the IPv4
# address it carries (tested below).
REFUSED, ALLOWED, EMBEDS = "refused", "allowed", "embeds"
REGISTRY = [
    ("0.0.0.0/8", "0.1.2.3", REFUSED),
    ("0.0.0.0/32", "0.0.0.0", REFUSED),
    ("10.0.0.0/8", "10.255.0.1", REFUSED),
    ("100.64.0.0/10", "100.127.255.254", REFUSED),
    ("127.0.0.0/8", "127.0.0.2", REFUSED),
    ("169.254.0.0/16", "169.254.10.20", REFUSED),
    ("172.16.0.0/12", "172.31.255.1", REFUSED),
    ("192.0.0.0/24", "192.0.0.100", REFUSED),
    ("192.0.0.0/29", "192.0.0.5", REFUSED),
    ("192.0.0.8/32", "192.0.0.8", REFUSED),
    ("192.0.0.9/32", "192.0.0.9", ALLOWED),
    ("192.0.0.10/32", "192.0.0.10", ALLOWED),
    ("192.0.0.170/32", "192.0.0.170", REFUSED),
    ("192.0.0.171/32", "192.0.0.171", REFUSED),
    ("192.0.2.0/24", "192.0.2.45", REFUSED),
    ("192.31.196.0/24", "192.31.196.1", ALLOWED),
    ("192.52.193.0/24", "192.52.193.1", ALLOWED),
    ("192.88.99.0/24", "192.88.99.1", REFUSED),  # deprecated: Globally Reachable N/A
    ("192.168.0.0/16", "192.168.1.1", REFUSED),
    ("192.175.48.0/24", "192.175.48.6", ALLOWED),
    ("198.18.0.0/15", "198.19.0.1", REFUSED),
    ("198.51.100.0/24", "198.51.100.7", REFUSED),
    ("203.0.113.0/24", "203.0.113.9", REFUSED),
    ("224.0.0.0/4", "239.1.2.3", REFUSED),
    ("240.0.0.0/4", "250.1.2.3", REFUSED),
    ("255.255.255.255/32", "255.255.255.255", REFUSED),
    ("::1/128", "::1", REFUSED),
    ("::/128", "::", REFUSED),
    ("::ffff:0:0/96", "::ffff:10.0.0.1", EMBEDS),
    ("64:ff9b::/96", "64:ff9b::10.0.0.1", EMBEDS),
    ("64:ff9b:1::/48", "64:ff9b:1:ffff::5db8:d822", REFUSED),  # RFC 8215 local use, even of a public IPv4
    ("100::/64", "100::1", REFUSED),
    ("2001::/23", "2001:1ff::1", REFUSED),
    ("2001::/32", "2001:0:4136:e378:8000:63bf:3fff:fdd2", EMBEDS),
    ("2001:1::1/128", "2001:1::1", ALLOWED),
    ("2001:1::2/128", "2001:1::2", ALLOWED),
    ("2001:1::3/128", "2001:1::3", ALLOWED),
    ("2001:2::/48", "2001:2:0:1::1", REFUSED),
    ("2001:3::/32", "2001:3::1", ALLOWED),
    ("2001:4:112::/48", "2001:4:112::1", ALLOWED),
    ("2001:10::/28", "2001:10::1", REFUSED),  # deprecated ORCHID: Globally Reachable N/A
    ("2001:20::/28", "2001:20::1", ALLOWED),
    ("2001:30::/28", "2001:30::1", ALLOWED),
    ("2001:db8::/32", "2001:db8::1", REFUSED),
    ("2002::/16", "2002:a00:1::1", EMBEDS),
    ("2620:4f:8000::/48", "2620:4f:8000::1", ALLOWED),
    ("3fff::/20", "3fff:fff::1", REFUSED),
    ("5f00::/16", "5f00:1::1", REFUSED),
    ("fc00::/7", "fd12:3456::1", REFUSED),
    ("fe80::/10", "fe80::1", REFUSED),
    ("ff00::/8", "ff02::1", REFUSED),
    ("::/96", "::10.0.0.1", EMBEDS),  # IPv4-compatible, deprecated
    ("::ffff:0:0:0/96", "::ffff:0:10.0.0.1", EMBEDS),  # IPv4-translated, obsolete
]


def test_the_guard_lists_every_registry_entry_and_no_other() -> None:
    listed = {str(entry.network) for entry in (*IPV4_SPECIAL, *IPV6_SPECIAL)}
    assert listed == {str(ipaddress.ip_network(network)) for network, _, _ in REGISTRY}


@pytest.mark.parametrize(("network", "sample", "expected"), REGISTRY, ids=[row[0] for row in REGISTRY])
def test_each_registry_entry_is_judged_by_its_globally_reachable_flag(network: str, sample: str,
                                                                        expected: str) -> None:
    assert ipaddress.ip_address(sample) in ipaddress.ip_network(network)
    url = f"http://{sample}/" if ":" not in sample else f"http://[{sample}]/"
    if expected == ALLOWED:
        check(url)
    else:  # every embedding sample above carries 10.0.0.1 or a documentation address: refused
        with pytest.raises(UnsafeTarget, match=r"not globally reachable"):
            check(url)


def test_an_address_outside_the_global_unicast_space_is_refused() -> None:
    """4000::/2 and the like are unassigned: no public host lives there, whatever Python says."""
    with pytest.raises(UnsafeTarget, match=r"outside 2000::/3"):
        check("http://[4000::1]/")


# --------------------------------------------------------------------------- IPv4 carried in IPv6


def nat64(ipv4: str) -> str:
    return str(ipaddress.IPv6Address((0x64FF9B << 96) | int(ipaddress.IPv4Address(ipv4))))


def sixtofour(ipv4: str) -> str:
    return str(ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address(ipv4)) << 80) | 1))


def teredo(client: str, server: str = "65.54.227.120") -> str:
    """RFC 4380 section 4: 2001:0:<server>:<flags>:<port ^ 0xffff>:<client ^ 0xffffffff>."""
    obfuscated = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64)
                                     | (0x8000 << 48) | ((40000 ^ 0xFFFF) << 32) | obfuscated))


def isatap(ipv4: str, prefix: str = "2001:4860:1::", universal: bool = True) -> str:
    interface = ((0x02005EFE if universal else 0x00005EFE) << 32) | int(ipaddress.IPv4Address(ipv4))
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | interface))


def compatible(ipv4: str) -> str:
    return str(ipaddress.IPv6Address(int(ipaddress.IPv4Address(ipv4))))


def translated(ipv4: str) -> str:
    return str(ipaddress.IPv6Address((0xFFFF << 48) | int(ipaddress.IPv4Address(ipv4))))


def mapped(ipv4: str) -> str:
    return f"::ffff:{ipv4}"


EMBEDDINGS: dict[str, Callable[[str], str]] = {
    "IPv4-mapped": mapped, "NAT64": nat64, "6to4": sixtofour, "Teredo client": teredo, "ISATAP": isatap,
    "IPv4-compatible": compatible, "IPv4-translated": translated}
INTERNAL = [("127.0.0.1", "loopback"), ("10.0.0.1", "private"), ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata")]
PUBLIC = "93.184.216.34"


@pytest.mark.parametrize("how", list(EMBEDDINGS))
@pytest.mark.parametrize(("ipv4", "why"), INTERNAL)
def test_an_internal_ipv4_address_carried_in_ipv6_is_refused(how: str, ipv4: str, why: str) -> None:
    address = EMBEDDINGS[how](ipv4)
    with pytest.raises(UnsafeTarget, match=rf"{how} {ipv4.replace('.', '[.]')}, an? {why} address"):
        check(f"http://[{address}]/")


@pytest.mark.parametrize("how", list(EMBEDDINGS))
def test_metadata_carried_in_ipv6_is_refused_even_with_allow_private(how: str) -> None:
    relaxed = GuardSettings(allow_private=True)
    check(f"http://[{EMBEDDINGS[how]('10.0.0.1')}]/", relaxed)  # allow_private lets the private one through
    with pytest.raises(UnsafeTarget, match=rf"{how} 169[.]254[.]169[.]254, a cloud metadata address"):
        check(f"http://[{EMBEDDINGS[how]('169.254.169.254')}]/", relaxed)


@pytest.mark.parametrize("how", ["IPv4-mapped", "NAT64", "6to4", "Teredo client", "ISATAP"])
def test_a_public_ipv4_address_carried_in_ipv6_is_allowed(how: str) -> None:
    check(f"http://[{EMBEDDINGS[how](PUBLIC)}]/")


@pytest.mark.parametrize("how", ["IPv4-compatible", "IPv4-translated"])
def test_the_deprecated_embeddings_are_refused_even_of_a_public_address(how: str) -> None:
    with pytest.raises(UnsafeTarget, match=rf"{how} address .*not globally reachable"):
        check(f"http://[{EMBEDDINGS[how](PUBLIC)}]/")


def test_a_teredo_server_is_judged_too() -> None:
    with pytest.raises(UnsafeTarget, match=r"Teredo server 10[.]0[.]0[.]1, a private address"):
        check(f"http://[{teredo(PUBLIC, server='10.0.0.1')}]/")


def test_isatap_is_decoded_under_any_prefix_and_either_universal_bit() -> None:
    with pytest.raises(UnsafeTarget, match=r"ISATAP 127[.]0[.]0[.]1, a loopback address"):
        check(f"http://[{isatap('127.0.0.1', universal=False)}]/")
    with pytest.raises(UnsafeTarget, match=r"ISATAP 10[.]0[.]0[.]1"):
        check(f"http://[{isatap('10.0.0.1', prefix=sixtofour(PUBLIC).rsplit(':', 2)[0] + '::')}]/")
    with pytest.raises(UnsafeTarget, match=r"link-local"):  # a public IPv4 does not make fe80:: public
        check(f"http://[{isatap(PUBLIC, prefix='fe80::')}]/")


def test_an_allowed_network_covers_the_ipv4_address_carried() -> None:
    settings = GuardSettings(allow_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    check(f"http://[{nat64('10.20.3.4')}]/", settings)
    with pytest.raises(UnsafeTarget, match=r"NAT64 10[.]21[.]0[.]1"):
        check(f"http://[{nat64('10.21.0.1')}]/", settings)


def test_a_name_resolving_to_a_nat64_address_is_refused() -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return [nat64("169.254.169.254")]

    with pytest.raises(UnsafeTarget, match=r"resolves to 64:ff9b::a9fe:a9fe, NAT64 169[.]254[.]169[.]254"):
        asyncio.run(check_url("https://hooks.example.com/", GuardSettings(allow_private=True), resolve))


# --------------------------------------------------------------------------- through the dispatcher


@pytest.mark.parametrize(("target", "why"), [
    (nat64("127.0.0.1"), "NAT64 127.0.0.1, a loopback address"),
    (sixtofour("10.0.0.1"), "6to4 10.0.0.1, a private address"),
    (teredo("192.168.1.1"), "Teredo client 192.168.1.1, a private address"),
])
def test_the_webhook_channel_refuses_an_embedded_internal_address(db: Engine, rows: Rows, receiver: Served,
                                                                  target: str, why: str) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    call = rows.add("webhook", {"url": f"http://[{target}]:{port}/admin", "body": {}})
    strict = settings(webhook=webhook_settings(), guard={"allow_private": False})

    async def go() -> None:
        async with Dispatcher(db, strict, VirtualClock(NOW)) as dispatcher:
            await dispatcher.dispatch_once()

    asyncio.run(go())
    with db.connect() as conn:
        refused = conn.execute(select(outbox).where(outbox.c.id == call)).one()
    assert refused.status == "failed"
    assert why in refused.last_error
    assert receiver.remote.received == []


def test_the_webhook_provider_refuses_a_name_resolving_to_nat64_metadata(db: Engine, rows: Rows) -> None:
    """allow_private on, as the tests' settings have it: the metadata address is still refused."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        return [nat64("169.254.169.254")]

    config = settings(webhook=webhook_settings())
    call = rows.add("webhook", {"url": "http://hooks.example.com/x", "body": {}})

    async def go() -> None:
        providers = {"webhook": build_provider("webhook", config, VirtualClock(NOW), resolve)}
        async with Dispatcher(db, config, VirtualClock(NOW), providers=providers) as dispatcher:
            await dispatcher.dispatch_once()

    asyncio.run(go())
    with db.connect() as conn:
        refused = conn.execute(select(outbox).where(outbox.c.id == call)).one()
    assert refused.status == "failed"
    assert "NAT64 169.254.169.254, a cloud metadata address" in refused.last_error
