"""Custom URL paths: a webhook's ``path`` such as ``orders/:id/events/:kind`` under
``/api/webhooks/``, its parameters, and which paths clash (could match one URL). See the
``path`` section of docs/reference/webhook.md.

A path is stored with its workflow under the address ``<number of segments>:<literal prefix>``
(``TriggerType.addresses``), the prefix being its segments up to the first parameter
(``4:orders`` for ``orders/:id/events/:kind``, ``2:tenants/acme`` for ``tenants/acme``). The first
segment is always literal, so the workflows a URL of n segments may reach hold one of n
addresses (``4:orders``, ``4:orders/42``, ...): one indexed read finds them, however many
workflows there are, and the few found are matched segment by segment.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import unquote

#: RFC 3986's unreserved characters: a literal segment is written as it is sent.
_LITERAL = re.compile(r"[A-Za-z0-9._~-]+")
_PARAMETER = re.compile(r":([A-Za-z_][A-Za-z0-9_]{0,63})")
MAX_SEGMENTS = 16
PATH_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 240,
    "pattern": r"^/?[^/\s]+(/[^/\s]+)*/?$",
    "description": "A custom path under /api/webhooks/ (orders/:id/events/:kind); :name segments are parameters.",
}


@dataclass(frozen=True)
class Segment:
    text: str
    #: A ``:name`` segment: matches any one non-empty segment, its value in ``$context.params``.
    parameter: bool

    @property
    def name(self) -> str:
        return self.text[1:] if self.parameter else self.text


@dataclass(frozen=True)
class CustomPath:
    """A parsed ``path``."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def prefix(self) -> list[str]:
        """The literal segments before the first parameter."""
        prefix = []
        for segment in self.segments:
            if segment.parameter:
                break
            prefix.append(segment.text)
        return prefix

    @property
    def address(self) -> str:
        return address_of(self.prefix, len(self.segments))

    def shorter_addresses(self) -> list[str]:
        """The addresses of the paths of this length whose literal prefix is a part of this
        one's (``3:a``, ``3:a/b`` for ``a/b/:x``): those may overlap it, as may the paths whose
        prefix extends this one's (found by prefix, ``3:a/b/``)."""
        prefix = self.prefix
        return [address_of(prefix[:end], len(self.segments)) for end in range(1, len(prefix) + 1)]

    @property
    def parameters(self) -> list[str]:
        return [segment.name for segment in self.segments if segment.parameter]

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The parameters' values when ``parts`` (the URL's segments, decoded) match, else ``None``."""
        if len(parts) != len(self.segments):
            return None
        values = {}
        for segment, part in zip(self.segments, parts):
            if segment.parameter:
                values[segment.name] = part
            elif segment.text != part:
                return None
        return values

    def overlap(self, other: CustomPath) -> str | None:
        """A URL path both match (``orders/special``), or ``None`` when no URL can match both."""
        if len(self.segments) != len(other.segments):
            return None
        example = []
        for mine, theirs in zip(self.segments, other.segments):
            if mine.parameter and theirs.parameter:
                example.append("1")
            elif mine.parameter:
                example.append(theirs.text)
            elif theirs.parameter or mine.text == theirs.text:
                example.append(mine.text)
            else:
                return None
        return "/".join(example)


def address_of(prefix: list[str], length: int) -> str:
    return f"{length}:{'/'.join(prefix)}"


def url_addresses(parts: list[str]) -> list[str]:
    """The addresses of every path a URL's segments could match: one per literal prefix length."""
    return [address_of(parts[:end], len(parts)) for end in range(1, len(parts) + 1)]


def parse_custom_path(text: str) -> CustomPath:
    """``orders/:id`` -> its segments; raises :class:`ValueError` saying what is wrong."""
    parts = text.strip("/").split("/")
    if len(parts) > MAX_SEGMENTS:
        raise ValueError(f"at most {MAX_SEGMENTS} segments, not {len(parts)}")
    segments = []
    for number, part in enumerate(parts, 1):
        if part.startswith(":"):
            if not _PARAMETER.fullmatch(part):
                raise ValueError(
                    f"segment {number} ({part!r}): a parameter is ':' and a name of letters, digits and '_'"
                )
            segments.append(Segment(part, parameter=True))
        elif _LITERAL.fullmatch(part):
            segments.append(Segment(part, parameter=False))
        else:
            raise ValueError(
                f"segment {number} ({part!r}): letters, digits and '-', '.', '_', '~' only, or a :parameter"
            )
    if segments[0].parameter:
        raise ValueError(
            "the first segment must be literal (orders/:id, not :id/orders): it is how a call finds the workflow"
        )
    names = [segment.name for segment in segments if segment.parameter]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"parameter(s) {', '.join(repeated)} appear twice")
    if (
        len(segments) == 3
        and segments[1].text == "executions"
        and (segments[2].parameter or segments[2].text.removeprefix("-").isdigit())  # (Sanic's int: -?\d+)
    ):
        raise ValueError("its URLs would be status URLs (/api/webhooks/<key>/executions/<id>)")
    return CustomPath("/".join(parts), tuple(segments))


def split_url_path(rest: str) -> list[str] | None:
    """The part of a URL path after ``/api/webhooks/`` as decoded segments; ``None`` when it
    cannot be a custom path (an empty segment: ``a//b``, ``a/``)."""
    parts = rest.split("/")
    if len(parts) > MAX_SEGMENTS or any(not part for part in parts):
        return None
    try:
        decoded = [unquote(part, errors="strict") if "%" in part else part for part in parts]
    except UnicodeDecodeError:  # percent-encoding that is not UTF-8: no path has it
        return None
    # A NUL cannot be in a literal segment, nor be looked up (PostgreSQL refuses it in text).
    return None if any("\x00" in part for part in decoded) else decoded


def path_problems(path: str, declared: Iterable[str], path_params: Iterable[str]) -> list[str]:
    """``declared``: the names of the headers/query/body parameters; ``path_params``: the
    names under ``path_params`` (which must be the path's)."""
    try:
        parsed = parse_custom_path(path)
    except ValueError as exc:
        return [f"path: {exc}"]
    problems = []
    names = set(parsed.parameters)
    for name in sorted(names & set(declared)):
        problems.append(
            f"path: the parameter {name!r} is also a declared parameter's name; rename one (or give it an alias)"
        )
    for name in path_params:
        if name not in names:
            problems.append(f"path_params: {name!r} is not a parameter of the path {parsed.text!r}")
    return problems


class PathIndex:
    """Paths by address, for checking many new paths against each other (workflow files
    applied together) without comparing every pair: a path's candidates are those whose
    address is one of its :meth:`CustomPath.shorter_addresses` or extends its own, as in the
    database."""

    def __init__(self, paths: Iterable[tuple[str, CustomPath]]) -> None:
        self._by_address: dict[str, list[tuple[str, CustomPath]]] = {}
        for key, path in paths:
            self._by_address.setdefault(path.address, []).append((key, path))
        self._addresses = sorted(self._by_address)

    def at(self, address: str) -> list[tuple[str, CustomPath]]:
        return self._by_address.get(address, [])

    def candidates(self, path: CustomPath) -> list[tuple[str, CustomPath]]:
        found = [item for address in path.shorter_addresses() for item in self._by_address.get(address, [])]
        start = f"{path.address}/"
        index = bisect.bisect_left(self._addresses, start)
        while index < len(self._addresses) and self._addresses[index].startswith(start):
            found += self._by_address[self._addresses[index]]
            index += 1
        return found
