"""Where the egress policy is enforced: each step by which aiohttp turns a URL into a connection.

The guard stands at three places, so that no connection reaches an address the
:class:`~hookline_http.egress.EgressPolicy` refuses, whichever path aiohttp takes:

1. **The resolver.** :class:`GuardedResolver` resolves a host name itself (``localhost`` names to
   loopback, without asking DNS), judges every address and answers only the admitted ones.
   aiohttp connects to the addresses it answered and asks no one else; its DNS cache is off, so
   each new connection is resolved, and judged, again.
2. **IP literals.** aiohttp does not ask the resolver about a host that is an IP address, so the
   node calls :func:`route` before each request (the first and every redirect hop), which judges
   it. A numeric host that is no address as written (``127.1``, ``2130706433``: the C library reads
   both as ``127.0.0.1``, aiohttp refuses them) is resolved and judged here too, and the request
   goes to the address it spells, its ``Host`` header and TLS name those of the URL.
3. **The socket.** :func:`guarded_socket_factory` makes every socket aiohttp connects, and refuses
   one for an address the policy does not admit, whatever the first two steps decided: the address
   connected to is always the address checked (a second DNS answer cannot differ from the first).

TLS still verifies the certificate against the URL's host name (aiohttp sends it for SNI and checks
it). There is no proxy (a proxy would be the only address checked) and no Unix socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from hookline_http.egress import EgressPolicy, EgressRefused, parse_address

if TYPE_CHECKING:
    from aiohttp import AddrInfoType


def is_loopback_name(host: str) -> bool:
    """``localhost`` and names under it, with or without the final dot: loopback by definition
    (RFC 6761), answered here rather than asked of a DNS server that might say otherwise."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


async def admitted_addresses(policy: EgressPolicy, host: str, port: int, *, numeric: bool = False) -> list[str]:
    """The addresses of ``host`` that ``policy`` admits, in the resolver's order, without repeats.

    Raises :class:`EgressRefused` when ``host`` resolves to refused addresses only, ``OSError``
    when it resolves to none. ``numeric`` reads ``host`` as a spelling of an address, never
    asking DNS."""
    if parse_address(host) is None and is_loopback_name(host):
        addresses = ["127.0.0.1", "::1"]
    else:
        flags = socket.AI_NUMERICHOST if numeric else 0
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve the host name {host!r}: {exc.strerror}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    admitted = []
    refused: tuple[str, str] | None = None
    for text in addresses:
        address = parse_address(text)
        kind = "not an IP address" if address is None else policy.refusal(address)
        if kind is None:
            admitted.append(text)
        elif refused is None:
            refused = (text, kind)
    if not admitted:
        if refused is None:
            raise OSError(f"the host name {host!r} resolves to no address")
        raise EgressRefused(host, *refused)
    return admitted


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for the node: only the addresses ``policy`` admits (step 1)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await admitted_addresses(self.policy, host, port)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": socket.IPPROTO_TCP,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def guarded_socket_factory(policy: EgressPolicy) -> Callable[[AddrInfoType], socket.socket]:
    """aiohttp's socket factory for the node: a socket only for an address ``policy`` admits
    (step 3). The refusal names the address alone; the node names the URL's host."""

    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        parsed = parse_address(address)
        refusal = "not an IP address" if parsed is None else policy.refusal(parsed)
        if refusal is not None:
            raise EgressRefused(address, address, refusal)
        return socket.socket(family=family, type=kind, proto=proto)

    return open_socket


@dataclass(frozen=True)
class Route:
    """Where a request is sent: ``url``, and when that is not the URL asked for, the ``Host``
    header and TLS server name of the one that was."""

    url: URL
    host_header: str | None = None
    server_hostname: str | None = None


def _numeric(host: str) -> bool:
    # What aiohttp takes for an IP address, and then connects to without asking the resolver.
    return ":" in host or host.replace(".", "").isdigit()


async def route(policy: EgressPolicy, url: URL) -> Route:
    """Where to send a request for ``url`` (step 2). Raises :class:`EgressRefused` for an IP
    address the policy refuses, ``OSError`` for a numeric host that spells no address."""
    host = url.raw_host or ""
    if not _numeric(host):
        return Route(url)  # a name: the resolver and the socket factory judge its addresses
    address = parse_address(host)
    if address is not None:
        kind = policy.refusal(address)
        if kind is not None:
            raise EgressRefused(host, host, kind)
        return Route(url)
    first, *_ = await admitted_addresses(policy, host, url.port or 0, numeric=True)
    return Route(url.with_host(first), host_header=url.raw_authority, server_hostname=host)
