"""Sample parsing: turn a sample request into the parameter lists of a webhook trigger's config.

A sample is a URL or query string (NocoBase's "parse" button for request parameters), a JSON
document (the request body), key-value pairs (Mingdao's "generate from key-value pairs"), or a
captured request (:mod:`hookline_webhook.capture`). Every node of the decoded sample, containers
and leaves, becomes one parameter, depth first and in document order::

    {"a": 1, "b": {"c": 2}}   ->  a (integer), b (object), b.c (integer)
    ?query[0].a=1             ->  query (array), query[0] (object), query[0].a (string)

Each parameter is ``{"path": ..., "type": ..., "required": False}``, an item that can be saved as
it is in the trigger config's ``headers``, ``query`` or ``body`` list. The values seen are kept
apart, in :func:`examples`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlencode, urlsplit

from hookline.errors import BadRequest
from hookline.web import HEADER_NAME_PATTERN, json_loads

from hookline_webhook.custom_paths import parse_custom_path, split_url_path
from hookline_webhook.paths import PathError, Segment, format_path, parse_path
from hookline_webhook.querystring import QueryError, parse_nested

#: The parts of a request that parameters are declared for, in the order they are listed.
PARTS = ("headers", "query", "body")
#: The values of a custom path's ``:name`` segments (``path_params``): found in a URL sample
#: given with the workflow's path, and in a captured request that came by that path.
PATH_PART = "path_params"
ALL_PARTS = (*PARTS, PATH_PART)

#: More parameters than this in one part are not listed: a sample holding a list of thousands of
#: items would give a parameter list nobody can review (and list indexes above
#: ``paths.MAX_INDEX`` cannot be saved).
MAX_PARAMETERS = 1000

#: Longer paths cannot be saved in the trigger config; they are left out, with what they hold.
MAX_PATH_LENGTH = 256

Parameter = dict[str, Any]


class SampleError(BadRequest):
    """A sample that cannot be parsed; the message says what is wrong with it."""

    code = "invalid_sample"


# --- decoding samples ----------------------------------------------------------------------


def sample_from_url(text: str, path: str | None = None) -> dict[str, Any]:
    """``{"query": {...}}`` from a full URL (``http://host/path?a=1``), a path with a query
    (``/api/webhooks/x?a=1``), or a query string with or without its ``?`` (``a=1&b[c]=2``).
    With ``path`` (a workflow's custom path, ``orders/:id``), also ``{"path_params": {...}}``:
    the values of its parameters in the URL's path, which must match it."""
    if not isinstance(text, str):
        raise SampleError(f"a URL or query string sample must be text, not {_json_type(text)}")
    text = text.strip()
    found: dict[str, Any] = {}
    if path is not None:
        found[PATH_PART] = _path_params(text, path)
    if "://" in text or text.startswith("/"):
        query = urlsplit(text).query
        if not query and found:
            return found
        if not query:
            raise SampleError(f"the URL {text!r} has no query string (nothing after '?') to parse")
    else:
        query = text.split("#", 1)[0]
        head, mark, tail = query.partition("?")
        if mark and not any(sign in head for sign in "=&"):  # "x?a=1"; "next=/p?q=1" is a query already
            query = tail
    if not query.strip("&"):
        raise SampleError("the sample is empty: give a URL with a query string, such as https://example.com/hook?a=1")
    try:
        return {**found, "query": parse_nested(query)}
    except QueryError as exc:
        raise SampleError(f"the query string cannot be parsed: {exc}") from None


def _path_params(url: str, path: str) -> dict[str, str]:
    try:
        pattern = parse_custom_path(path)
    except ValueError as exc:
        raise SampleError(f"the path {path!r} is not valid: {exc}") from None
    if "://" not in url and not url.startswith("/"):
        raise SampleError("give a URL or a path (/api/webhooks/orders/42) to read the path's parameters from")
    called = urlsplit(url).path
    prefix = "/api/webhooks/"
    parts = split_url_path(called[len(prefix):]) if called.startswith(prefix) else None
    values = pattern.match(parts) if parts else None
    if values is None:
        raise SampleError(f"the URL's path {called!r} does not match the workflow's path {prefix}{pattern.text}")
    return values


def sample_from_json(sample: Any) -> dict[str, Any]:
    """``{"body": value}`` from a JSON document given as text, or as the decoded value itself.
    The document must be an object or an array."""
    value = sample
    if isinstance(sample, str):
        if not sample.strip():
            raise SampleError("the JSON sample is empty: give an object such as {\"a\": 1}")
        try:
            value = json_loads(sample)
        except RecursionError:
            raise SampleError("the JSON sample is nested too deeply") from None
        except ValueError as exc:
            raise SampleError(f"the JSON sample is not valid JSON: {exc}") from None
    if not isinstance(value, (dict, list)):
        raise SampleError(f"a JSON sample must be an object or an array, not {_json_type(value)}")
    return {"body": value}


def sample_from_pairs(pairs: Any, into: str = "body") -> dict[str, Any]:
    """``{into: {...}}`` from key-value pairs: a dict, a list of ``[key, value]`` pairs, or text
    with one ``key=value`` per line (blank lines are skipped).

    In ``body`` and ``query``, keys may use the nested notation of query strings (``a.b``,
    ``a[b]``, ``items[0].id``, ``tags[]``), and a repeated key makes a list. Header names are
    taken as they are, lower-cased, and their values become text.
    """
    if into not in PARTS:
        raise SampleError(f"'into' must be one of {', '.join(PARTS)}, not {into!r}")
    items = _pair_list(pairs)
    if not items:
        raise SampleError("the sample is empty: give at least one key=value pair")
    if into == "headers":
        return {"headers": _header_pairs(items)}
    return {into: _nest(items)}


def _pair_list(pairs: Any) -> list[tuple[str, Any]]:
    if isinstance(pairs, str):
        found = []
        for number, line in enumerate(pairs.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise SampleError(f"line {number} ({line.strip()!r}) is not key=value")
            found.append((key.strip(), value.strip()))
        items = found
    elif isinstance(pairs, dict):
        items = list(pairs.items())
    elif isinstance(pairs, list):
        items = []
        for number, pair in enumerate(pairs, start=1):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
                shown = json.dumps(pair, default=str)
                raise SampleError(f"pair {number} must be [key, value] with a text key, not {shown}")
            items.append((pair[0], pair[1]))
    else:
        raise SampleError(
            f"pairs must be an object, a list of [key, value] pairs or key=value lines, not {_json_type(pairs)}"
        )
    for number, (key, _) in enumerate(items, start=1):
        if not key.strip():
            raise SampleError(f"pair {number} has an empty key")
    return items


def _nest(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Nest the pairs exactly as a query string with those keys would be, with any JSON value
    kept: the values are first replaced by their position, and put back after nesting."""
    try:
        nested = parse_nested(urlencode([(key, str(position)) for position, (key, _) in enumerate(items)]))
    except QueryError as exc:
        raise SampleError(f"the pairs cannot be combined: {exc}") from None
    values = [value for _, value in items]

    def restore(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: restore(child) for key, child in node.items()}
        if isinstance(node, list):
            return [restore(child) for child in node]
        return None if node is None else values[int(node)]

    return restore(nested)


def _header_pairs(items: list[tuple[str, Any]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        name = name.strip().lower()
        if not _is_header_name(name):
            raise SampleError(f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
        text = value if isinstance(value, str) else json.dumps(value)
        # As the webhook joins a header sent several times.
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _is_header_name(name: str) -> bool:
    return re.fullmatch(HEADER_NAME_PATTERN, name) is not None


# --- parameters -----------------------------------------------------------------------------


def parameters(sample: Mapping[str, Any], *, complete: bool = True) -> dict[str, list[Parameter]]:
    """The parameter list of each part of a decoded sample (``{"query": {...}}`` gives
    ``{"query": [...]}``). With ``complete`` (the default), a part with more than
    :data:`MAX_PARAMETERS` parameters is refused (:class:`SampleError`); without, its list stops
    there."""
    result = {}
    for part, value in sample.items():
        listed = []
        for path, node in walk(value):
            if len(listed) == MAX_PARAMETERS:
                if complete:
                    raise SampleError(
                        f"the sample has more than {MAX_PARAMETERS} {part} parameters; shorten its lists to a few items"
                    )
                break
            listed.append({"path": path, "type": parameter_type(node), "required": False})
        result[part] = listed
    return result


def examples(sample: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The values of each part's leaves by path: ``{"body": {"a": 1, "b.c": 2}}``. Containers
    are left out (their leaves are listed), except empty ones."""
    result = {}
    for part, value in sample.items():
        seen: dict[str, Any] = {}
        for path, node in walk(value):
            if len(seen) == MAX_PARAMETERS:
                break
            if not isinstance(node, (dict, list)) or not node:
                seen[path] = node
        result[part] = seen
    return result


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every node under ``value`` (not ``value`` itself), depth first, in
    document order. Keys no path can name (such as ``a]b``), and paths longer than
    :data:`MAX_PATH_LENGTH`, are skipped with what they hold."""
    stack: list[tuple[list[Segment], Any]] = list(reversed(list(_children([], value))))
    while stack:
        segments, node = stack.pop()
        path = _addressable(segments)
        if path is None:
            continue
        yield path, node
        stack.extend(reversed(list(_children(segments, node))))


def _children(segments: list[Segment], node: Any) -> Iterable[tuple[list[Segment], Any]]:
    if isinstance(node, dict):
        return (([*segments, str(key)], child) for key, child in node.items())
    if isinstance(node, list):
        return (([*segments, index], child) for index, child in enumerate(node))
    return ()


def _addressable(segments: list[Segment]) -> str | None:
    """The path of ``segments``, or ``None`` when reading that path back would not reach it."""
    path = format_path(segments)
    if len(path) > MAX_PATH_LENGTH:
        return None
    try:
        parsed = parse_path(path)
    except PathError:
        return None
    return path if [str(s) for s in parsed] == [str(s) for s in segments] else None


def parameter_type(value: Any) -> str:
    """The trigger config's type of a decoded value (``null`` is taken as a string)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


# --- the parse button and captured requests -------------------------------------------------


def parameters_from_url(text: str) -> dict[str, list[Parameter]]:
    """``{"query": [...]}`` of a URL or query string sample."""
    return parameters(sample_from_url(text))


def parameters_from_json(sample: Any) -> dict[str, list[Parameter]]:
    """``{"body": [...]}`` of a JSON sample (text or value)."""
    return parameters(sample_from_json(sample))


def parameters_from_pairs(pairs: Any, into: str = "body") -> dict[str, list[Parameter]]:
    """``{into: [...]}`` of key-value pairs (see :func:`sample_from_pairs`)."""
    return parameters(sample_from_pairs(pairs, into))


#: The kinds of sample :func:`parse_sample` takes.
SAMPLE_KINDS = ("url", "query", "json", "pairs")


def parse_sample(request: Mapping[str, Any]) -> dict[str, Any]:
    """The parse button: ``request`` has exactly one of ``url``, ``query`` (a URL or query
    string), ``json`` (JSON text or value) and ``pairs`` (see :func:`sample_from_pairs`), plus
    ``into`` with ``pairs``, or ``path`` (a workflow's custom path) with ``url``. Returns
    ``{"parameters": {part: [...]}, "examples": {part: {...}}}``. What
    ``POST /api/webhook-samples/parse`` and ``hookline webhooks parse-sample`` answer."""
    unknown = sorted(set(request) - {*SAMPLE_KINDS, "into", "path"})
    if unknown:
        kinds = ", ".join(SAMPLE_KINDS)
        raise SampleError(f"unknown field {unknown[0]!r}; give one of {kinds} (and 'into' with pairs, 'path' with url)")
    given = [kind for kind in SAMPLE_KINDS if kind in request]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        raise SampleError(f"give exactly one sample: one of {', '.join(SAMPLE_KINDS)} ({found})")
    kind = given[0]
    if "into" in request and kind != "pairs":
        raise SampleError("'into' goes with pairs only: a URL fills query parameters and JSON body parameters")
    if "path" in request and kind != "url":
        raise SampleError("'path' goes with url only: the path's parameters are read from a URL")
    if "path" in request and not isinstance(request["path"], str):
        raise SampleError(f"'path' must be text (orders/:id), not {_json_type(request['path'])}")
    if kind in ("url", "query"):
        sample = sample_from_url(request[kind], request.get("path"))
    elif kind == "json":
        sample = sample_from_json(request["json"])
    else:
        sample = sample_from_pairs(request["pairs"], request.get("into", "body"))
    found = parameters(sample)
    if not any(found.values()):
        raise SampleError(f"the {kind} sample has no parameters (it is an empty object or array)")
    return {"parameters": found, "examples": examples(sample)}


def context_sample(context: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a webhook ``$context`` that parameters are declared for. A body that is not
    an object or an array (text, or nothing) has no parameters: read it as ``$context.raw_body``."""
    body = context.get("body")
    sample = {
        "headers": context.get("headers") or {},
        "query": context.get("query") or {},
        "body": body if isinstance(body, (dict, list)) else {},
    }
    if context.get(PATH_PART):
        sample[PATH_PART] = context[PATH_PART]
    return sample


def parameters_from_context(context: Mapping[str, Any]) -> dict[str, list[Parameter]]:
    """``{"headers": [...], "query": [...], "body": [...]}`` of a captured request's
    ``$context``. Never refuses: a part with too many parameters lists the first
    :data:`MAX_PARAMETERS`.

    A parameter's name (its alias, else its path) must be unique in the whole trigger config,
    so a path found in several parts (``?id=1`` and ``{"id": 1}``) keeps its plain name in the
    body, then the query, and gets an alias elsewhere (``query_id``); a path parameter keeps its
    name always (it has no alias)."""
    found = parameters(context_sample(context), complete=False)
    names = {item["path"] for items in found.values() for item in items}
    taken: set[str] = set()
    for part in (PATH_PART, "body", "query", "headers"):
        for item in found.get(part, []):
            if item["path"] in taken:
                item["alias"] = _alias(part, item["path"], names)
                names.add(item["alias"])
            taken.add(item.get("alias", item["path"]))
    return found


def _alias(part: str, path: str, names: set[str]) -> str:
    """``query_x_request_id`` for ``x-request-id`` in ``query``: an identifier, as aliases
    must be, used by no other parameter."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", f"{part}_{path}").strip("_")
    alias, number = base, 2
    while alias in names:
        alias, number = f"{base}_{number}", number + 1
    return alias


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "text", int: "a number", float: "a number", dict: "an object", list: "an array"}
    return names.get(type(value), type(value).__name__)
