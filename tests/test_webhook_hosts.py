"""The pure webhook host rule (engine/domain/webhook_hosts.py): which URLs may be
webhooks, and which addresses they may be called at.  Nothing here touches the
network; registration through the real resolver is in test_webhooks_api.py."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.webhook_hosts import (
    URL_LIMIT,
    WebhookTarget,
    WebhookUrlError,
    callable_addresses,
    is_public,
    parse_webhook_url,
)

# The ranges the contract names, written out independently of the implementation.
NOT_PUBLIC_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # unspecified, "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, 169.254.169.254 (cloud metadata) among them
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
]
NOT_PUBLIC_V6 = [
    ipaddress.ip_network(n)
    for n in ("::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8", "fec0::/10",
              "2001::/32")  # the last: Teredo, refused outright
]

GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def oracle_v4(address: ipaddress.IPv4Address) -> bool:
    return address.is_global and not any(address in n for n in NOT_PUBLIC_V4)


def carried(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside the IPv6 forms, by bit arithmetic."""
    value = int(address)
    if value >> 32 == 0xFFFF:  # ::ffff:a.b.c.d
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 112 == 0x2002:  # 6to4: 2002:AABB:CCDD::
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    if value >> 32 == 0x0064FF9B << 64:  # NAT64 64:ff9b::a.b.c.d
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 80 == 0x0064FF9B0001:  # local-use NAT64 64:ff9b:1::/48
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(value)
    return None


def oracle_v6(address: ipaddress.IPv6Address) -> bool:
    inside = carried(address)
    if inside is not None:
        return oracle_v4(inside)
    # Outside 2000::/3 (global unicast) everything is reserved by the IETF.
    return (
        address in GLOBAL_UNICAST
        and address.is_global
        and not any(address in n for n in NOT_PUBLIC_V6)
    )


V4 = st.one_of(
    st.ip_addresses(v=4),
    *[st.ip_addresses(network=str(n)) for n in NOT_PUBLIC_V4],
    st.ip_addresses(network="192.0.0.0/16"),
    st.ip_addresses(network="198.18.0.0/15"),
)


@given(V4)
def test_an_ipv4_address_is_public_as_the_oracle_says(address):
    assert is_public(address) == oracle_v4(address)


@given(V4, st.sampled_from(["mapped", "6to4", "nat64", "nat64-local", "compatible"]))
def test_an_ipv6_form_of_an_ipv4_address_is_judged_by_what_it_carries(v4, form):
    value = int(v4)
    wrapped = {
        "mapped": (0xFFFF << 32) | value,
        "6to4": (0x2002 << 112) | (value << 80),
        "nat64": (0x0064FF9B << 96) | value,
        "nat64-local": (0x0064FF9B0001 << 80) | value,
        "compatible": value,
    }[form]
    address = ipaddress.IPv6Address(wrapped)
    if form == "compatible" and value <= 1:
        return  # :: and ::1 are themselves, not forms of 0.0.0.0/0.0.0.1
    assert is_public(address) == oracle_v4(v4), (form, str(address))


@given(
    st.one_of(
        st.ip_addresses(v=6),
        *[st.ip_addresses(network=str(n)) for n in NOT_PUBLIC_V6 if n.prefixlen < 128],
        st.ip_addresses(network="2000::/3"),
        st.ip_addresses(network="::ffff:0:0/96"),
        st.ip_addresses(network="2002::/16"),
        st.ip_addresses(network="64:ff9b::/96"),
    )
)
def test_an_ipv6_address_is_public_as_the_oracle_says(address):
    assert is_public(address) == oracle_v6(address)


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1", "10.0.0.1", "100.64.0.1", "169.254.169.254", "192.168.0.1", "0.0.0.0",
     "255.255.255.255", "224.0.0.251", "::1", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "fe80::1", "fd12::1", "ff02::1", "2002:a9fe:a9fe::1", "64:ff9b::7f00:1",
     "2001:0:4136:e378:8000:63bf:3fff:fdd2"],
)
def test_the_named_addresses_are_not_public(text):
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                  "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_are_public(text):
    assert is_public(ipaddress.ip_address(text))


def test_a_listed_host_is_called_whatever_it_resolves_to():
    assert callable_addresses("hooks.internal", ["10.1.2.3", "127.0.0.1"],
                              ("Hooks.Internal.",)) == ["10.1.2.3", "127.0.0.1"]
    assert callable_addresses("127.0.0.1", ["127.0.0.1"], ("127.0.0.1",)) == ["127.0.0.1"]
    # A listed address is callable whatever name leads to it; an unlisted private one not.
    assert callable_addresses("localhost", ["127.0.0.1"], ("127.0.0.1",)) == ["127.0.0.1"]
    with pytest.raises(WebhookUrlError, match="::1"):
        callable_addresses("localhost", ["127.0.0.1", "::1"], ("127.0.0.1",))


def test_one_private_address_among_public_ones_refuses_the_host():
    assert callable_addresses("example.com", ["8.8.8.8", "8.8.8.8"], ()) == ["8.8.8.8"]
    with pytest.raises(WebhookUrlError, match="private"):
        callable_addresses("example.com", ["8.8.8.8", "192.168.1.1"], ())
    with pytest.raises(WebhookUrlError, match="no address"):
        callable_addresses("example.com", [], ())
    with pytest.raises(WebhookUrlError, match="loopback"):
        callable_addresses("example.com", ["::ffff:127.0.0.1"], ("localhost",))


def test_urls_are_taken_apart():
    assert parse_webhook_url("HTTPS://Hooks.Example.com./in?x=1#frag") == WebhookTarget(
        "https", "hooks.example.com", 443, "/in?x=1")
    assert parse_webhook_url("http://[::1]:8080") == WebhookTarget("http", "::1", 8080, "/")
    assert parse_webhook_url("http://127.0.0.1:9/a").https is False
    assert parse_webhook_url("http://例子.tw/事件?q=網路").path == (
        "/%E4%BA%8B%E4%BB%B6?q=%E7%B6%B2%E8%B7%AF")
    assert parse_webhook_url("http://例子.tw/a%20b?x=%41").path == "/a%20b?x=%41"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("example.com/hook", "http or https"),
        ("http://user:pw@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("http://:80/", "must name a host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com/a b", "spaces"),
        ("http://example.com/\r\nX-Injected: 1", "control"),
        ("http://example.com/" + "a" * URL_LIMIT, f"at most {URL_LIMIT}"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url, why):
    with pytest.raises(WebhookUrlError, match=why):
        parse_webhook_url(url)
