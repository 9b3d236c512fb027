"""Reading a webhook request into ``$context``: the body within the trigger's size limit, then
method, headers, nested query, body by content type, raw body, multipart files."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any
from urllib.parse import quote

from hookline.errors import BadRequest, InvalidBody, PayloadTooLarge
from hookline.web import MAX_DEPTH, MAX_PARAMETERS, MAX_VALUES, TooManyParameters, check_json, json_loads
from sanic import Request
from sanic.exceptions import RequestTimeout
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form

from hookline_webhook.querystring import QueryError, TooManyPairs, parse_nested


class InvalidQuery(BadRequest):
    code = "invalid_query"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from
    ``Content-Length`` before reading anything, or while reading a chunked body. A sender that
    goes silent mid-body for longer than the server's ``REQUEST_TIMEOUT`` gets a 408 (Sanic's
    own timer on a streamed route is ``RESPONSE_TIMEOUT``, long enough for a sync answer)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(request, limit)
    if request.stream is None:
        body = request.body or b""
        if len(body) > limit:
            raise _too_large(request, limit)
        return body
    stream = request.stream
    if _arrived(stream):  # read without waiting: no timer needed (the common case)
        # What iterating the stream does, without an async generator around it (a few µs
        # per call): the first read takes the body from the buffer, the next one ends it.
        chunks = []
        while stream.request_body:
            chunk = await stream.read()
            if chunk:
                chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    idle = float(request.app.config.REQUEST_TIMEOUT)
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(idle) as deadline:
            async for chunk in request.stream:
                deadline.reschedule(asyncio.get_running_loop().time() + idle)
                size += len(chunk)
                if size > limit:
                    raise _too_large(request, limit)
                chunks.append(chunk)
    except TimeoutError:
        _close_after_answer(request, drain=False)
        raise RequestTimeout(f"the body stopped arriving for {idle:g} s") from None
    return b"".join(chunks)


def _arrived(stream: Any) -> bool:
    """Whether a body of known length is already all in Sanic's receive buffer (it usually is,
    for a webhook's few hundred bytes): then reading it cannot wait for the sender. Looked up
    defensively: on a Sanic without these attributes, the body is read under the idle timer."""
    try:
        left = stream.request_bytes_left
        return (
            stream.request_body is True
            and type(left) is int
            and not stream.expecting_continue
            and len(stream.recv_buffer) >= left
        )
    except AttributeError:
        return False


def _too_large(request: Request, limit: int) -> PayloadTooLarge:
    _close_after_answer(request)
    return PayloadTooLarge(f"the body is larger than this webhook accepts ({limit} bytes; see max_body_size)", limit=limit)


def _close_after_answer(request: Request, *, drain: bool = True) -> None:
    """Answer with ``Connection: close`` and close the connection after the answer: a body
    refused for its size or its pace is not worth reading to its end (Sanic would read and
    discard it, up to its ``REQUEST_MAX_SIZE``; a limit of 0 makes it stop at once), and a
    stalled one may never end (``drain=False``: not read at all). Either way nothing more on
    this connection is read as a request."""
    stream = request.stream
    if stream is None or not hasattr(stream, "request_max_size"):  # not Sanic's HTTP/1.1
        return
    stream.keep_alive = False
    stream.request_max_size = 0
    if not drain:
        stream.request_body = None


def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.startswith("application/") and content_type.endswith("+json"))


def parse_request(request: Request, body: bytes, *, keep_files: bool = True) -> dict[str, Any]:
    """``$context``: ``method``, ``headers`` (lower-cased; repeated ones comma-joined), ``query``
    (nested), ``content_type``, ``body`` (by content type), ``raw_body`` (text) or
    ``raw_body_base64`` (when the body is not storable text), ``files`` (multipart)."""
    content_type = media_type(request)
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    # Text a database cannot hold as such (not UTF-8, or with NUL) is kept exactly, as base64.
    storable = text if text is not None and "\x00" not in text else None
    try:
        query = parse_nested(request.query_string)
    except TooManyPairs as exc:
        raise TooManyParameters(f"the query string has {exc}", limit=MAX_PARAMETERS) from None
    except QueryError as exc:
        raise InvalidQuery(f"the query string is not valid: {exc}") from None
    context: dict[str, Any] = {
        "method": request.method,
        "headers": headers_of(request),
        "query": query,
        "content_type": content_type or None,
        "body": None,
        "raw_body": storable,
    }
    if storable is None:
        context["raw_body_base64"] = base64.b64encode(body).decode()
    problem = unstorable(query)
    if problem:
        raise InvalidQuery(f"the query string cannot be stored: it contains {problem}")
    if not body:
        return context
    if is_json(content_type):
        if text is None:
            raise InvalidBody("the JSON body is not valid UTF-8")
        try:
            context["body"] = json_loads(text)
        except RecursionError:
            raise InvalidBody(f"the JSON body is nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise InvalidBody(f"the body is not valid JSON: {exc}") from None
        if _may_exceed_limits(text):
            check_json(context["body"])
        if "\\u" not in text:
            # Valid UTF-8 holds no surrogate, and JSON no raw NUL: only a \u escape makes one.
            return context
    elif content_type == "application/x-www-form-urlencoded":
        if text is None:
            raise InvalidBody("the form body is not valid UTF-8")
        try:
            context["body"] = parse_nested(text)
        except TooManyPairs as exc:
            raise TooManyParameters(f"the form body has {exc}", limit=MAX_PARAMETERS) from None
        except QueryError as exc:
            raise InvalidBody(f"the form body is not valid: {exc}") from None
    elif content_type == "multipart/form-data":
        context["body"], context["files"] = _multipart(request, body, keep_files)
        if not keep_files:  # the raw body holds the files' bytes too
            context["raw_body"] = None
            context.pop("raw_body_base64", None)
    else:
        context["body"] = storable
    problem = unstorable(context["body"])
    if problem:
        raise InvalidBody(f"the body cannot be stored: it contains {problem}")
    return context


def _may_exceed_limits(text: str) -> bool:
    """Whether JSON text could nest deeper than ``MAX_DEPTH`` or hold more than
    ``MAX_VALUES`` values: not if it has no more brackets than that depth and no more
    characters than that count (each value takes at least one). Most bodies are checked so,
    without walking what they hold."""
    return len(text) > MAX_VALUES or text.count("[") + text.count("{") > MAX_DEPTH


def _multipart(request: Request, body: bytes, keep_files: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    _, options = parse_content_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidBody("the multipart body has no boundary in its Content-Type")
    delimiter = b"--" + str(boundary).encode("utf-8")
    # Counted before parsing (a boundary never occurs inside a part), so that a flood of tiny
    # parts is refused without building them; the last delimiter closes the body.
    if body.count(delimiter) - 1 > MAX_PARAMETERS:
        raise _too_many_parts()
    try:
        fields, files = parse_multipart_form(body, delimiter[2:])
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        raise InvalidBody(f"the multipart body is not valid: {exc}") from None
    if sum(map(len, fields.values())) + sum(map(len, files.values())) > MAX_PARAMETERS:
        raise _too_many_parts()
    if not fields and not files and body.strip():
        raise InvalidBody("the multipart body has no parts (is the boundary right?)")
    pairs = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, values in fields.items() for value in values)
    try:
        decoded = parse_nested(pairs)
    except QueryError as exc:
        raise InvalidBody(f"the multipart fields are not valid: {exc}") from None
    kept = []
    for field, items in files.items():
        for item in items:
            entry: dict[str, Any] = {"field": field, "name": item.name, "type": item.type, "size": len(item.body)}
            if keep_files:
                entry["content_base64"] = base64.b64encode(item.body).decode()
            kept.append(entry)
    return decoded, kept


def _too_many_parts() -> TooManyParameters:
    return TooManyParameters(
        f"the multipart body has too many parts (more than {MAX_PARAMETERS})", limit=MAX_PARAMETERS
    )


def headers_of(request: Request) -> dict[str, str]:
    """Names lower-cased; a header sent several times becomes one comma-separated value
    (RFC 9110 section 5.3)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        name = _latin1(name).lower()
        value = _latin1(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _latin1(text: str) -> str:
    """A header that is not UTF-8 (HTTP allows any byte from 0x80 as obs-text) reaches us with
    its bytes escaped as lone surrogates, which no database stores: read it as ISO-8859-1
    instead, the historical charset of HTTP headers, which maps each byte to one character."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(value: Any) -> str | None:
    """Strings PostgreSQL's jsonb (and UTF-8 storage) refuse: NUL and unpaired surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a \\u0000 (NUL) character"
        # Scanned in C (a regex), not a generator per character: 200 µs less on a 6 KB body.
        if not value.isascii() and _SURROGATE.search(value):
            return "an unpaired UTF-16 surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, dict):
        return next((p for item in value.items() for p in map(unstorable, item) if p), None)
    if isinstance(value, list):
        return next((p for p in map(unstorable, value) if p), None)
    return None
