"""An optional allowlist of the addresses deliveries may come from (template parameter SourceAllowlist).

Defence in depth, never instead of the signature: every delivery from an allowed address is still
verified, and NowToPrint may send from new addresses (its deliveries are then refused until the list
has them; the sender retries a 403 only for a while). What it adds: requests from anywhere else are
refused before any other step, so unsigned noise costs no key refresh, no AWS call and no 401 lines.

The address is the one the front door saw the connection come from (its request context), never a
header: `X-Forwarded-For` and the like are whatever the client writes. Imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

type Network = IPv4Network | IPv6Network
type Address = IPv4Address | IPv6Address

#: IPv4 addresses written as IPv6 (`::ffff:203.0.113.10`): matched, and listed, as the IPv4 address.
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")


def parse_allowlist(text: str) -> tuple[Network, ...]:
    """The ranges of `text`: CIDR ranges separated by commas (spaces around them allowed), IPv4 or
    IPv6; a bare address is its own range (/32, /128). Empty (or only separators): no allowlist.
    ValueError naming the entry at fault: host bits set (`203.0.113.7/24`) is a fault too, as it is
    most likely a typo for a narrower range."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            network = ip_network(entry, strict=True)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a CIDR range (203.0.113.0/24, 2001:db8::/32): {exc}") from None
        if isinstance(network, IPv6Network) and network.subnet_of(_IPV4_MAPPED):
            network = IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
        networks.append(network)
    return tuple(networks)


def source_ip(event: Mapping[str, Any]) -> str | None:
    """The address the front door received the request from: payload 2.0 (an HTTP API and a function
    URL) `requestContext.http.sourceIp`, payload 1.0 `requestContext.identity.sourceIp`. Never a header."""
    context = event.get("requestContext") or {}
    for part in ("http", "identity"):
        found = (context.get(part) or {}).get("sourceIp")
        if found:
            return str(found)
    return None


def address(text: str | None) -> Address | None:
    """`text` as an address (an IPv4-mapped IPv6 address as its IPv4 address), None if it is none."""
    try:
        parsed = ip_address(text or "")
    except ValueError:
        return None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def allowed(networks: tuple[Network, ...], source: str | None) -> bool:
    """Whether a request from `source` may go on: always without an allowlist; with one, only from an
    address inside a range (a missing or unreadable address is refused)."""
    if not networks:
        return True
    parsed = address(source)
    return parsed is not None and any(parsed in network for network in networks)
