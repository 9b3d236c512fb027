"""The egress policy: which addresses the HTTP Request node may connect to.

Only public addresses, unless the operator admits networks with ``HOOKLINE_HTTP_ALLOW``. The
policy judges IP addresses, never names: :mod:`hookline_http.network` resolves each name itself
and connects only to an address judged here, so a name that resolves to a public address once
and to ``127.0.0.1`` the next time (DNS rebinding) cannot slip through.

IPv6 addresses that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) are judged by the IPv4 address
inside too: ``::ffff:127.0.0.1`` is loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Where the node's refusals point the operator.
ALLOW_VARIABLE = "HOOKLINE_HTTP_ALLOW"


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(network), kind) for network, kind in rows)


#: Ranges refused whatever the standard library thinks of them (Python's ``is_global`` has been
#: wrong for some, such as ``fec0::/10`` and ``::/96``), each with what to call it in a refusal.
#: The first match names the kind, so narrower ranges come first.
NOT_PUBLIC = _table(
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "a reserved (IETF protocol) address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a reserved (6to4 relay anycast) address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0:0/96", "a reserved (IPv4-translated) address"),
    ("64:ff9b:1::/48", "a private (local-use NAT64) address"),
    ("100::/64", "a reserved (discard) address"),
    ("2001::/32", "a Teredo tunnel address"),
    ("2001::/23", "a reserved (IETF protocol) address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("5f00::/16", "a reserved (segment routing) address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)

_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: The forms that only wrap an IPv4 address: the same host, judged (and admitted) as it.
_WRAPS_ONLY = ("IPv4-mapped", "IPv4-compatible", "NAT64")


@dataclass(frozen=True)
class Inner:
    """An IPv4 address carried inside an IPv6 one, and how (``IPv4-mapped``, ``6to4``...)."""

    how: str
    address: ipaddress.IPv4Address


def inner_addresses(address: IPAddress) -> list[Inner]:
    """The IPv4 addresses an IPv6 address carries (none for an IPv4 address)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address in _MAPPED:
        return [Inner("IPv4-mapped", ipaddress.IPv4Address(address.packed[-4:]))]
    if address in _COMPATIBLE and int(address) > 1:
        return [Inner("IPv4-compatible", ipaddress.IPv4Address(address.packed[-4:]))]
    if address in _NAT64:
        return [Inner("NAT64", ipaddress.IPv4Address(address.packed[-4:]))]
    if address.sixtofour is not None:
        return [Inner("6to4", address.sixtofour)]
    if address.teredo is not None:
        server, client = address.teredo
        return [Inner("Teredo server", server), Inner("Teredo client", client)]
    return []


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` not public, or None when it is public (looked at alone)."""
    for network, kind in NOT_PUBLIC:
        if address.version == network.version and address in network:
            return kind
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a reserved address"
    return None


def classify(address: IPAddress) -> str | None:
    """Why ``address`` is not a public address (``"a loopback address"``,
    ``"a private address (IPv4-mapped 10.0.0.1)"``), or ``None`` when it is public.

    An address that only wraps an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64) is as
    public as the address it wraps; 6to4 and Teredo addresses are judged themselves and by the
    addresses they carry.
    """
    inner = inner_addresses(address)
    wraps_only = bool(inner) and inner[0].how in _WRAPS_ONLY
    if not wraps_only:
        kind = _kind(address)
        if kind is not None:
            return kind
    for carried in inner:
        kind = _kind(carried.address)
        if kind is not None:
            return f"{kind} ({carried.how} {carried.address})"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Public addresses, plus the networks an operator admitted (``HOOKLINE_HTTP_ALLOW``)."""

    allow: tuple[IPNetwork, ...] = ()

    def admits(self, address: IPAddress) -> bool:
        return self.refusal(address) is None

    def refusal(self, address: IPAddress) -> str | None:
        """Why connecting to ``address`` is refused, or ``None`` when it is admitted."""
        if self.allowed(address):
            return None
        return classify(address)

    def allowed(self, address: IPAddress) -> bool:
        """Whether the operator admitted ``address``, or the IPv4 address it only wraps (IPv4-mapped,
        IPv4-compatible, NAT64: the same host). A 6to4 or Teredo address is not admitted for the
        IPv4 address it carries: its traffic goes through a relay, not to that network."""
        wrapped = [inner.address for inner in inner_addresses(address) if inner.how in _WRAPS_ONLY]
        candidates: list[IPAddress] = [address, *wrapped]
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.allow
        )


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (the form ``getaddrinfo`` gives), or ``None``. A scope id
    (``fe80::1%eth0``) is dropped: the address is judged without it."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class EgressRefused(OSError):
    """A connection the egress policy refused. Raised by the guard (:mod:`hookline_http.network`)
    before any packet is sent to the address; the node turns it into a ``NodeError`` (never
    retried).

    An ``OSError``, as a failed connection is: aiohttp then carries it out of its resolver and
    its socket factory unchanged, wrapped in a ``ClientConnectorError`` (``os_error``), where the
    node finds it.
    """

    def __init__(self, host: str, address: str, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        subject = f"{address} is" if host.strip("[]") == address else f"{host} resolves to {address},"
        # One argument: OSError would read two or more as (errno, strerror, ...).
        super().__init__(f"refused: {subject} {kind}; an operator can admit it with {ALLOW_VARIABLE}")


def parse_allow_list(text: str) -> tuple[IPNetwork, ...]:
    """The networks of ``HOOKLINE_HTTP_ALLOW`` (``"127.0.0.1, 10.0.0.0/8, fd00::/8"``).
    Raises ``ValueError`` naming the first entry that is not an address or a network."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            if "host bits set" in str(exc):
                network = ipaddress.ip_network(entry, strict=False)
                raise ValueError(f"{entry!r} has bits set beyond its prefix; did you mean {network}?") from None
            raise ValueError(
                f"{entry!r} is not an IP address or network (addresses only, such as 127.0.0.1, "
                "10.0.0.0/8 or fd00::/8; never host names, which can be made to resolve anywhere)"
            ) from None
    return tuple(networks)


def describe(networks: Iterable[IPNetwork]) -> str:
    return ", ".join(str(network) for network in networks) or "none"
