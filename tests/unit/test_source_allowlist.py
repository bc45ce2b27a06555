"""The source allowlist's parsing and matching (template parameter SourceAllowlist, env SOURCE_ALLOWLIST)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest

from ntp_webhooks.settings import SettingsError, load_ingest_settings
from ntp_webhooks.source_allowlist import address, allowed, parse_allowlist, source_ip
from tests.unit.test_settings import ENV


@pytest.mark.parametrize("text", ["", " ", ",", " , ,"])
def test_empty_is_no_allowlist(text: str) -> None:
    assert parse_allowlist(text) == ()
    assert allowed((), "198.51.100.7")
    assert allowed((), None)  # off: not even the address is needed


def test_ranges_ipv4_and_ipv6_with_spaces_and_bare_addresses() -> None:
    assert parse_allowlist(" 203.0.113.0/24, 2001:db8::/32 ,198.51.100.7,2001:db8:ffff::1") == (
        IPv4Network("203.0.113.0/24"),
        IPv6Network("2001:db8::/32"),
        IPv4Network("198.51.100.7/32"),
        IPv6Network("2001:db8:ffff::1/128"),
    )


def test_ipv4_mapped_ranges_are_listed_as_ipv4() -> None:
    assert parse_allowlist("::ffff:203.0.113.0/120") == (IPv4Network("203.0.113.0/24"),)


@pytest.mark.parametrize(
    "entry",
    [
        "203.0.113.0/33",  # prefix too long
        "203.0.113.7/24",  # host bits set: a typo for /32, or for .0/24
        "203.0.113/24",
        "300.0.0.0/8",
        "2001:db8::g/32",
        "example.com",
        "203.0.113.0/24;198.51.100.0/24",  # not comma-separated
        "*",
    ],
)
def test_a_malformed_range_is_an_error_that_names_it(entry: str) -> None:
    with pytest.raises(ValueError, match="is not a CIDR range") as raised:
        parse_allowlist(f"192.0.2.0/24,{entry}")
    assert repr(entry) in str(raised.value)


def test_settings_read_the_list_and_fail_the_cold_start_on_a_malformed_one() -> None:
    assert load_ingest_settings(ENV).source_allowlist == ()  # unset: off
    assert load_ingest_settings({**ENV, "SOURCE_ALLOWLIST": ""}).source_allowlist == ()
    assert load_ingest_settings({**ENV, "SOURCE_ALLOWLIST": "203.0.113.0/24,2001:db8::/32"}).source_allowlist == (
        IPv4Network("203.0.113.0/24"),
        IPv6Network("2001:db8::/32"),
    )
    with pytest.raises(SettingsError, match=r"SOURCE_ALLOWLIST: '10\.0\.0\.1/8' is not a CIDR range"):
        load_ingest_settings({**ENV, "SOURCE_ALLOWLIST": "203.0.113.0/24,10.0.0.1/8"})


ALLOWLIST = parse_allowlist("203.0.113.0/24,2001:db8::/32")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("203.0.113.0", True),
        ("203.0.113.255", True),
        ("203.0.114.0", False),
        ("198.51.100.7", False),
        ("2001:db8::1", True),
        ("2001:DB8:0:0:0:0:0:ffff", True),
        ("2001:db9::1", False),
        ("::ffff:203.0.113.10", True),  # an IPv4 client as an IPv6 front end writes it
        ("::ffff:198.51.100.7", False),
        ("::203.0.113.10", False),  # IPv4-compatible (deprecated) is an IPv6 address, not mapped
        ("", False),
        (None, False),  # no address: refused, never waved through
        ("not-an-address", False),
        ("203.0.113.10, 198.51.100.7", False),  # a list is no address
    ],
)
def test_matching(source: str | None, expected: bool) -> None:
    assert allowed(ALLOWLIST, source) is expected


def test_ipv6_ranges_do_not_match_ipv4_sources_and_the_reverse() -> None:
    assert not allowed(parse_allowlist("::/0"), "203.0.113.10")
    assert not allowed(parse_allowlist("0.0.0.0/0"), "2001:db8::1")
    assert allowed(parse_allowlist("0.0.0.0/0"), "::ffff:203.0.113.10")


def test_an_ipv4_mapped_address_is_its_ipv4_address() -> None:
    assert str(address("::ffff:203.0.113.10")) == "203.0.113.10"
    assert str(address("2001:db8::1")) == "2001:db8::1"
    assert address("nonsense") is None


def test_the_address_is_the_request_contexts_never_a_header() -> None:
    headers = {"x-forwarded-for": "203.0.113.10", "x-real-ip": "203.0.113.10", "forwarded": "for=203.0.113.10"}
    v2 = {"headers": headers, "requestContext": {"http": {"sourceIp": "198.51.100.7"}}}
    v1 = {"headers": headers, "requestContext": {"identity": {"sourceIp": "198.51.100.8"}}}
    assert source_ip(v2) == "198.51.100.7"
    assert source_ip(v1) == "198.51.100.8"
    assert source_ip({"headers": headers}) is None
    assert source_ip({"headers": headers, "requestContext": {"http": {}, "identity": None}}) is None
