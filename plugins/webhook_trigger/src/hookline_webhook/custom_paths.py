"""Custom URL paths: a webhook's ``path`` such as ``orders/:id/events/:kind`` under
``/api/webhooks/``, its parameters, and which paths clash (could match one URL). See the
``path`` section of docs/reference/webhook.md.

A path is stored with its workflow under the address ``<first segment>/<number of segments>``
(``TriggerType.addresses``): the first segment is always literal, so a call's URL names the one
address whose workflows may match it, found with one indexed read however many workflows there
are; the few found are then matched segment by segment.
"""

from __future__ import annotations

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
    def address(self) -> str:
        return address_of(self.segments[0].text, len(self.segments))

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


def address_of(first: str, length: int) -> str:
    return f"{first}/{length}"


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
        and (segments[2].parameter or segments[2].text.isdigit())
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
        return [unquote(part, errors="strict") if "%" in part else part for part in parts]
    except UnicodeDecodeError:  # percent-encoding that is not UTF-8: no path has it
        return None


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
