"""Reading an upstream's answer within bounds, and giving its body in a form a job can store.

The body is read raw and decompressed here, a bounded piece at a time, so ``max_response_size``
limits the *decoded* size without ever holding more than that in memory: a small gzip "bomb"
that would inflate to gigabytes is stopped at the limit.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
import zlib
from email.message import Message
from typing import Any

import aiohttp
from hookline import HooklineError
from hookline.web import check_json, json_loads

from hookline_http.failures import BAD_RESPONSE, RESPONSE_TOO_LARGE, CallFailed

FORMATS = ("auto", "json", "text")
#: Characters no database stores in JSON text (PostgreSQL refuses NUL; lone surrogates are not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _Inflater:
    """Decompresses ``gzip`` or ``deflate`` a bounded amount at a time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(self._wbits)
        self._started = False

    def finish(self) -> None:
        """Raise ``zlib.error`` when the compressed stream stopped before its end."""
        if self._started and not self._inflate.eof:
            raise zlib.error("the compressed stream is cut short")

    def feed(self, data: bytes, room: int) -> bytes:
        """Decompress ``data``; stops once more than ``room`` bytes came out (the caller then
        refuses the body), so one call never makes much more than ``room``."""
        out: list[bytes] = []
        made = 0
        while data and made <= room:
            try:
                piece = self._inflate.decompress(data, room - made + 1)
            except zlib.error:
                if self.encoding == "deflate" and not self._started:
                    # Some servers send raw deflate without its zlib wrapper.
                    self._started = True
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise
            self._started = True
            out.append(piece)
            made += len(piece)
            rest = self._inflate.unconsumed_tail
            if self._inflate.eof:
                rest = self._inflate.unused_data
                if rest and self.encoding == "gzip":  # a further gzip member
                    self._inflate = zlib.decompressobj(self._wbits)
                else:
                    rest = b""  # trailing bytes after the end of the stream: ignored
            if not piece and len(rest) >= len(data):
                break  # no progress (cannot happen with zlib; a guard against looping)
            data = rest
        return b"".join(out)


def _decoder(content_encoding: str) -> tuple[_Inflater | None, bool]:
    """The decompressor for a ``Content-Encoding``, and whether the body stays encoded (an
    encoding not decoded here: the body is then given as base64)."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if not codings:
        return None, False
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if codings[0] == "deflate" else "gzip"), False
    return None, True


def _too_large(limit: int, **details: Any) -> CallFailed:
    return CallFailed(RESPONSE_TOO_LARGE, f"response larger than {limit} bytes", limit=limit, **details)


async def read_body(response: aiohttp.ClientResponse, limit: int, method: str) -> tuple[bytes, bool]:
    """The decoded body of ``response``, refused past ``limit`` bytes (declared, received or
    decoded), and whether it is still encoded. The client hands over the body as it came
    (``auto_decompress=False``): the decompression is done here."""
    if method == "HEAD" or response.status in (204, 304) or response.status < 200:
        return b"", False
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, content_length=int(declared))
    inflater, encoded = _decoder(response.headers.get("Content-Encoding", ""))
    chunks: list[bytes] = []
    received = size = 0
    async for raw in response.content.iter_any():
        received += len(raw)
        if received > limit:
            raise _too_large(limit)
        if inflater is not None:
            try:
                raw = inflater.feed(raw, limit - size)
            except zlib.error as exc:
                raise CallFailed(BAD_RESPONSE, f"the response body is not valid {inflater.encoding}: {exc}") from None
        size += len(raw)
        if size > limit:
            raise _too_large(limit)
        chunks.append(raw)
    if inflater is not None:
        try:
            inflater.finish()
        except zlib.error as exc:
            raise CallFailed(BAD_RESPONSE, f"the response body is not valid {inflater.encoding}: {exc}") from None
    return b"".join(chunks), encoded


def response_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """``{lower-case name: value}``, a repeated header's values joined with ``", "``. Header
    bytes are read as ASCII, else UTF-8, else ISO-8859-1 (whichever reads all of them), so that
    a stray byte becomes a character a job can store, never an unpaired surrogate."""
    raw = response.raw_headers
    encoding = _header_encoding(raw)
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name, value = name_bytes.decode(encoding).lower(), value_bytes.decode(encoding)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _header_encoding(raw: tuple[tuple[bytes, bytes], ...]) -> str:
    for encoding in ("ascii", "utf-8"):
        try:
            for name, value in raw:
                name.decode(encoding)
                value.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "iso-8859-1"


def _media_type(content_type: str) -> tuple[str, str | None]:
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


def is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def body_value(data: bytes, content_type: str, response_format: str, encoded: bool) -> tuple[Any, str | None]:
    """The body as the job's result holds it, and its encoding (``"base64"`` or ``None``):
    parsed JSON, text, or base64 for bytes that are not text. Raises :class:`CallFailed` when
    ``response_format`` is ``json`` and the body is not JSON a job can store."""
    media_type, charset = _media_type(content_type) if content_type else ("", None)
    if response_format == "json" or (response_format == "auto" and is_json_type(media_type) and not encoded):
        if not data:
            return None, None
        problem = None if not encoded else "it is compressed in an encoding this node does not decode"
        if problem is None:
            try:
                value = json_loads(data)
                check_json(value, "the JSON response")
            except (ValueError, RecursionError, HooklineError) as exc:
                problem = str(exc.message if isinstance(exc, HooklineError) else exc)
            else:
                if _storable(value):
                    return value, None
                problem = "it holds a NUL character or an unpaired surrogate, which cannot be stored"
        if response_format == "json":
            raise CallFailed(BAD_RESPONSE, f"the response is not usable JSON: {problem}")
    text = None if encoded else _text(data, charset)
    if text is None:
        return base64.b64encode(data).decode("ascii"), "base64"
    return text, None


def _text(data: bytes, charset: str | None) -> str | None:
    encoding = "utf-8"
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            return None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    return None if _UNSTORABLE.search(text) else text


def _storable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def body_text(body: Any, limit: int = 1000) -> str:
    """The first ``limit`` characters of a body, as text (for failure details)."""
    if body is None:
        return ""
    if isinstance(body, str):
        return body[:limit]
    return json_text(body)[:limit]


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
