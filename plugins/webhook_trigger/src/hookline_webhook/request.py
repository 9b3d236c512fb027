"""Reading a webhook request into ``$context``: the body within the trigger's size limit, then
method, headers, nested query, body by content type, raw body, multipart files."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from sanic import Request
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form

from hookline.errors import BadRequest, InvalidBody, PayloadTooLarge
from hookline.web.limits import MAX_DEPTH, nesting_depth
from hookline_webhook.querystring import QueryError, parse_nested


class InvalidQuery(BadRequest):
    code = "invalid_query"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from
    ``Content-Length`` before reading anything, or while reading a chunked body."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit), limit=limit)
    if request.stream is None:
        body = request.body or b""
        if len(body) > limit:
            raise PayloadTooLarge(_too_large(limit), limit=limit)
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(limit), limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"the body is larger than this webhook accepts ({limit} bytes; see max_body_size)"


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
    except QueryError as exc:
        raise InvalidQuery(f"the query string is not valid: {exc}") from None
    context: dict[str, Any] = {
        "method": request.method,
        "headers": _headers(request),
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
            context["body"] = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise InvalidBody(f"the JSON body is nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise InvalidBody(f"the body is not valid JSON: {exc}") from None
        if nesting_depth(context["body"]) > MAX_DEPTH:
            raise InvalidBody(f"the JSON body is nested deeper than {MAX_DEPTH} levels")
    elif content_type == "application/x-www-form-urlencoded":
        if text is None:
            raise InvalidBody("the form body is not valid UTF-8")
        try:
            context["body"] = parse_nested(text)
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


def _multipart(request: Request, body: bytes, keep_files: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    _, options = parse_content_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidBody("the multipart body has no boundary in its Content-Type")
    try:
        fields, files = parse_multipart_form(body, str(boundary).encode("utf-8"))
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        raise InvalidBody(f"the multipart body is not valid: {exc}") from None
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


def _headers(request: Request) -> dict[str, str]:
    """Names lower-cased; a header sent several times becomes one comma-separated value
    (RFC 9110 section 5.3)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def unstorable(value: Any) -> str | None:
    """Strings PostgreSQL's jsonb (and UTF-8 storage) refuse: NUL and unpaired surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a \\u0000 (NUL) character"
        if any("\ud800" <= char <= "\udfff" for char in value):
            return "an unpaired UTF-16 surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, dict):
        return next((p for item in value.items() for p in map(unstorable, item) if p), None)
    if isinstance(value, list):
        return next((p for p in map(unstorable, value) if p), None)
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
