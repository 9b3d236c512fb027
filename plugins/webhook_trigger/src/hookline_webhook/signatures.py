"""Signature verification of webhook calls over the raw bytes received: a generic HMAC and the
presets of GitHub, Stripe, Slack, Shopify and Standard Webhooks (Svix). See the ``signature``
section of docs/reference/webhook.md."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hookline_webhook.auth import MisconfiguredSecret, resolve_secret

ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")
#: The shorthands of ``signed``; anything else is a template of ``{id}``, ``{timestamp}``, ``{body}``.
SIGNED_SHORTHANDS = {"body": "{body}", "timestamp.body": "{timestamp}.{body}", "id.timestamp.body": "{id}.{timestamp}.{body}"}
DEFAULT_TOLERANCE = 300
#: A signature header longer than this is refused unread (no provider sends one near it).
MAX_HEADER_LENGTH = 8192

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TIMESTAMP = re.compile(r"[0-9]{1,10}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

PRESETS: dict[str, dict[str, Any]] = {
    "github": {"header": "X-Hub-Signature-256", "prefix": "sha256=", "signed": "body"},
    "stripe": {"header": "Stripe-Signature", "signed": "timestamp.body", "format": "stripe"},
    "slack": {
        "header": "X-Slack-Signature",
        "prefix": "v0=",
        "signed": "v0:{timestamp}:{body}",
        "timestamp_header": "X-Slack-Request-Timestamp",
    },
    "shopify": {"header": "X-Shopify-Hmac-Sha256", "encoding": "base64", "signed": "body"},
    "standard": {
        "header": "webhook-signature",
        "encoding": "base64",
        "signed": "id.timestamp.body",
        "timestamp_header": "webhook-timestamp",
        "id_header": "webhook-id",
        "format": "standard",
        "key": "whsec",
        # Svix sends the same scheme under its own names by default (svix-id, ...).
        "alternatives": (("svix-signature", "svix-timestamp", "svix-id"),),
    },
}

SIGNATURE_KEYS = ("algorithm", "encoding", "header", "prefix", "signed", "timestamp_header", "id_header")


@dataclass(frozen=True)
class SignatureScheme:
    """A trigger's ``signature`` config, compiled."""

    preset: str | None
    algorithm: str
    encoding: str
    header: str
    prefix: str
    #: The signed message as parts: literal bytes, or the names ``id``, ``timestamp``, ``body``.
    parts: tuple[tuple[bool, str], ...]
    timestamp_header: str | None
    id_header: str | None
    tolerance: int
    #: ``single`` (one signature), ``stripe`` (``t=..,v1=..``) or ``standard`` (``v1,<b64> ...``).
    format: str
    #: ``raw`` (the secret's UTF-8 bytes) or ``whsec`` (base64 after an optional ``whsec_``).
    key: str
    secrets: tuple[Any, ...]
    #: Other names of (header, timestamp_header, id_header) a sender may use instead: the first
    #: set whose signature header was sent is read (Svix's ``svix-*`` for ``standard``).
    alternatives: tuple[tuple[str, str | None, str | None], ...] = ()

    def header_names(self) -> list[str]:
        """Every header the scheme may read."""
        names = [self.header, self.timestamp_header, self.id_header]
        for alternative in self.alternatives:
            names += alternative
        return [name for name in names if name]

    def signature_headers(self) -> list[str]:
        """The headers that may hold a signature (never stored)."""
        return [self.header, *(alternative[0] for alternative in self.alternatives)]

    def keys(self) -> list[bytes]:
        """The HMAC keys, read now (environment variables may change); raises
        :class:`MisconfiguredSecret` when one cannot be used."""
        keys = []
        for secret in self.secrets:
            value = resolve_secret(secret)
            if self.key == "whsec":
                decoded = decode_whsec(value)
                if decoded is None:
                    raise MisconfiguredSecret("a Standard Webhooks secret is not whsec_ followed by base64")
                keys.append(decoded)
            else:
                keys.append(value.encode("utf-8"))
        return keys


def compile_signature(config: Mapping[str, Any]) -> SignatureScheme:
    options = {**PRESETS.get(config.get("preset", ""), {}), **config}
    signed = options.get("signed", "body")
    return SignatureScheme(
        preset=config.get("preset"),
        algorithm=options.get("algorithm", "sha256"),
        encoding=options.get("encoding", "hex"),
        header=options["header"],
        prefix=options.get("prefix", ""),
        parts=_parts(SIGNED_SHORTHANDS.get(signed, signed)),
        timestamp_header=options.get("timestamp_header"),
        id_header=options.get("id_header"),
        tolerance=options.get("tolerance", DEFAULT_TOLERANCE),
        format=options.get("format", "single"),
        key=options.get("key", "raw"),
        secrets=tuple(config["secrets"]),
        alternatives=tuple(options.get("alternatives", ())),
    )


def signature_problems(config: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say about a ``signature`` config."""
    problems = []
    preset = config.get("preset")
    if preset is not None:
        problems += [
            f"signature: {name!r} is fixed by the preset {preset!r}; remove it, or drop 'preset' for a generic HMAC"
            for name in SIGNATURE_KEYS
            if name in config
        ]
        if preset == "standard":
            for number, secret in enumerate(config.get("secrets", [])):
                if isinstance(secret, str) and decode_whsec(secret) is None:
                    problems.append(
                        f"signature.secrets[{number}]: a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 bytes"
                    )
        return problems
    if "header" not in config:
        problems.append("signature: 'header' (the header holding the signature) is required without a preset")
    signed = config.get("signed", "body")
    template = SIGNED_SHORTHANDS.get(signed, signed)
    names = _PLACEHOLDER.findall(template)
    unknown = sorted({name for name in names if name not in ("id", "timestamp", "body")})
    if unknown:
        problems.append(f"signature.signed: unknown placeholder(s) {', '.join(unknown)}; use {{id}}, {{timestamp}} and {{body}}")
    if names.count("body") != 1:
        problems.append("signature.signed: the template must hold {body} exactly once")
    for name, header in (("timestamp", "timestamp_header"), ("id", "id_header")):
        if name in names and header not in config:
            problems.append(f"signature.signed: {{{name}}} needs '{header}' (the header it is read from)")
    return problems


def decode_whsec(secret: str) -> bytes | None:
    """A Standard Webhooks secret (``whsec_`` optional, padding optional) -> 24 to 64 key bytes."""
    encoded = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    encoded = encoded.rstrip("=")
    if not encoded or _BASE64.fullmatch(encoded) is None:
        return None
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if 24 <= len(key) <= 64 else None


def verify(scheme: SignatureScheme, headers: Mapping[str, Sequence[str]], body: bytes, now: float) -> str | None:
    """``None`` when ``body`` carries a valid signature under any of the scheme's secrets;
    otherwise why not, for the log (never a secret or an expected signature). ``headers`` maps
    lower-cased names to every value received. Raises only :class:`MisconfiguredSecret`."""
    header_name, timestamp_name, id_name = scheme.header, scheme.timestamp_header, scheme.id_header
    if not headers.get(header_name.lower()):
        for alternative in scheme.alternatives:
            if headers.get(alternative[0].lower()):
                header_name, timestamp_name, id_name = alternative
                break
    header = _single(headers, header_name)
    if header is None:
        return f"the {header_name} header is missing, repeated or too long"
    timestamp = None
    if scheme.format == "stripe":
        timestamp, candidates = _stripe(header)
    elif scheme.format == "standard":
        candidates = _standard(header)
    else:
        candidates = [header[len(scheme.prefix):]] if header.startswith(scheme.prefix) else []
    if timestamp_name is not None:
        timestamp = _single(headers, timestamp_name)
    values: dict[str, bytes] = {"body": body}
    if scheme.format == "stripe" or timestamp_name is not None:
        if timestamp is None or _TIMESTAMP.fullmatch(timestamp) is None:
            where = f" ({timestamp_name} header)" if timestamp_name else ""
            return f"the timestamp{where} is missing or not a plain number of seconds"
        if abs(now - int(timestamp)) > scheme.tolerance:
            return f"the timestamp is {int(now) - int(timestamp)} s from the server's clock (tolerance {scheme.tolerance} s)"
        values["timestamp"] = timestamp.encode("ascii")
    if id_name is not None:
        message_id = _single(headers, id_name)
        if not message_id:
            return f"the {id_name} header is missing, empty or repeated"
        try:
            values["id"] = message_id.encode("utf-8")
        except UnicodeEncodeError:
            return f"the {id_name} header cannot be encoded"
    given = [decoded for decoded in (_decode(c, scheme.encoding) for c in candidates) if decoded is not None]
    if not given:
        return f"the {header_name} header holds no signature in the expected form"
    message = b"".join(values[text] if is_name else text.encode("utf-8") for is_name, text in scheme.parts)
    matched = False
    for key in scheme.keys():
        expected = hmac.new(key, message, scheme.algorithm).digest()
        for signature in given:
            matched |= hmac.compare_digest(signature, expected)
    return None if matched else "no signature matches any active secret"


def sign(scheme: SignatureScheme, key: bytes, body: bytes, *, timestamp: str = "", message_id: str = "") -> str:
    """The signature value ``key`` gives (without the header's framing); for tests and tools."""
    values = {"body": body, "timestamp": timestamp.encode(), "id": message_id.encode()}
    message = b"".join(values[text] if is_name else text.encode("utf-8") for is_name, text in scheme.parts)
    digest = hmac.new(key, message, getattr(hashlib, scheme.algorithm)).digest()
    return digest.hex() if scheme.encoding == "hex" else base64.b64encode(digest).decode()


def _parts(template: str) -> tuple[tuple[bool, str], ...]:
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append((False, template[position:match.start()]))
        parts.append((True, match.group(1)))
        position = match.end()
    if position < len(template):
        parts.append((False, template[position:]))
    return tuple(parts)


def _single(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    """A header sent exactly once, of a sane length; a repeated one is ambiguous and refused."""
    values = headers.get(name.lower()) or []
    if isinstance(values, str):
        values = [values]
    if len(values) != 1 or len(values[0]) > MAX_HEADER_LENGTH:
        return None
    return values[0].strip()


def _stripe(header: str) -> tuple[str | None, list[str]]:
    """``t=<unix>,v1=<hex>[,v1=...][,v0=...]`` -> (first t, every v1); v0 is ignored."""
    timestamp = None
    signatures = []
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals:
            continue
        if name == "t" and timestamp is None:
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    return timestamp, signatures


def _standard(header: str) -> list[str]:
    """``v1,<b64> v1,<b64> ...`` -> every v1 signature (v1a and other versions are skipped)."""
    signatures = []
    for item in header.split():
        version, comma, value = item.partition(",")
        if comma and version == "v1":
            signatures.append(value)
    return signatures


def _decode(text: str, encoding: str) -> bytes | None:
    """Hex (either case) or padded base64 -> bytes; ``None`` for anything else."""
    text = text.strip()
    if not text.isascii():
        return None
    pattern = _HEX if encoding == "hex" else _BASE64
    if pattern.fullmatch(text) is None:
        return None
    try:
        return bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None
