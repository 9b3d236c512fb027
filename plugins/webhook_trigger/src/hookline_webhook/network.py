"""The IP allowlist of a webhook: which caller addresses may call it, and which proxies are
trusted to name the caller in ``X-Forwarded-For``. See ``ip_allowlist`` in docs/reference/webhook.md."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, Union

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class IpAllowlist:
    allow: tuple[Network, ...]
    trusted_proxies: tuple[Network, ...]

    def client(self, peer: str, forwarded_for: Sequence[str]) -> Address | None:
        """The caller's address: the socket peer, unless the peer is a trusted proxy; then the
        right-most ``X-Forwarded-For`` entry that is not a trusted proxy. ``None`` when an
        address that matters cannot be read (the request is then denied)."""
        address = parse_address(peer)
        if address is None or not _within(address, self.trusted_proxies):
            return address
        entries = [entry for value in forwarded_for for entry in value.split(",")]
        for entry in reversed(entries):
            address = parse_address(entry)
            if address is None or not _within(address, self.trusted_proxies):
                return address
        return address

    def allows(self, peer: str, forwarded_for: Sequence[str]) -> bool:
        address = self.client(peer, forwarded_for)
        return address is not None and _within(address, self.allow)


def compile_allowlist(config: Mapping[str, Any]) -> IpAllowlist:
    return IpAllowlist(
        allow=tuple(parse_network(cidr) for cidr in config["allow"]),
        trusted_proxies=tuple(parse_network(cidr) for cidr in config.get("trusted_proxies", ())),
    )


def parse_network(cidr: str) -> Network:
    """A CIDR range; an IPv4-mapped IPv6 range (``::ffff:10.0.0.0/104``) becomes its IPv4 range,
    as addresses do."""
    network = ipaddress.ip_network(cidr)
    mapped = network.network_address.ipv4_mapped if isinstance(network, ipaddress.IPv6Network) else None
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def allowlist_problems(config: Mapping[str, Any]) -> list[str]:
    """Each CIDR that does not parse, or has host bits set, named with its place and a fix."""
    problems = []
    for field in ("allow", "trusted_proxies"):
        for number, cidr in enumerate(config.get(field, [])):
            problem = _cidr_problem(cidr)
            if problem:
                problems.append(f"ip_allowlist.{field}[{number}]: {problem}")
    return problems


def parse_address(text: str) -> Address | None:
    """An address as a peer or proxy writes it (``[::1]``, ``fe80::1%eth0``); IPv4-mapped IPv6
    (``::ffff:10.0.0.1``) becomes the IPv4 address. ``None`` when it is not an address."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def _cidr_problem(cidr: str) -> str | None:
    try:
        ipaddress.ip_network(cidr)
    except ValueError:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"{cidr!r} is not an IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)"
        return f"{cidr!r} has host bits set; did you mean {str(network)!r}?"
    return None
