"""URLs: the one a config gives, checked and normalised; the one a redirect points to; origins.

The node builds its URLs already encoded (yarl's ``encoded=True``) and aiohttp sends them as they
are, so that the URL a job's result records is exactly the URL sent.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urljoin, urlsplit

from yarl import URL

MAX_URL_LENGTH = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}

_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_DOTTED_QUAD = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: Characters each part of a URL holds as they are (RFC 3986's unreserved ones always); others
#: are percent-encoded.
_SUB_DELIMS = "!$&'()*+,;="
_PATH_SAFE = _SUB_DELIMS + ":@/[]"
_QUERY_SAFE = _PATH_SAFE + "?"
_URL_SAFE = _QUERY_SAFE + "#"


def _shown(url: str) -> str:
    return repr(url if len(url) <= 200 else url[:200] + "...")


def parse_url(value: str) -> URL:
    """``value`` as an absolute ``http``/``https`` URL with a host and no credentials, normalised:
    scheme and host in lower case (an international host name IDNA-encoded), the scheme's default
    port left out, and characters a URL cannot hold percent-encoded (escapes already there kept as
    written). The URL sent is exactly this one. Raises ``ValueError`` saying what is wrong; the
    message starts with ``url``."""
    if not value:
        raise ValueError("url is empty")
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"url is longer than {MAX_URL_LENGTH} characters")
    if _SPACE_OR_CONTROL.search(value):
        raise ValueError(f"url {_shown(value)} holds a space or a control character; percent-encode it (%20)")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"url {_shown(value)} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError(f"url {_shown(value)} is not absolute: write it with http:// or https:// and a host")
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"url {_shown(value)} uses {scheme}:, but only http and https are supported")
    _, at, host_and_port = parts.netloc.rpartition("@")
    if at:  # the URL is not repeated: it holds a password
        raise ValueError("url must not hold credentials (user:password@); use 'auth' with secrets from the environment")
    host, port = _host_and_port(host_and_port, value)
    authority = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    text = f"{scheme}://{authority}{_quoted(parts.path, _PATH_SAFE) or '/'}"
    if parts.query:
        text += f"?{_quoted(parts.query, _QUERY_SAFE)}"
    if parts.fragment:
        text += f"#{_quoted(parts.fragment, _QUERY_SAFE)}"
    try:
        return URL(text, encoded=True)
    except ValueError as exc:  # pragma: no cover - every part was checked above
        raise ValueError(f"url {_shown(value)} is not a valid URL: {exc}") from None


def _host_and_port(authority: str, value: str) -> tuple[str, int | None]:
    """The host (an IPv6 address in brackets) and port of ``authority`` (``host:port``)."""
    if authority.startswith("["):
        inside, _, rest = authority[1:].partition("]")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise ValueError(f"url {_shown(value)} has an invalid IPv6 address {inside!r}") from None
        host, port_text = f"[{inside.lower()}]", rest.removeprefix(":")
    else:
        name, _, port_text = authority.partition(":")
        if not name:
            raise ValueError(f"url {_shown(value)} has no host")
        host = _host_name(name.lower(), value)
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"url {_shown(value)} is not a valid URL: Invalid port: {port_text!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"url {_shown(value)} has an invalid port {port} (1 to 65535)")
    return host, port


def _host_name(name: str, value: str) -> str:
    if not name.isascii():
        try:
            name = URL.build(scheme="http", host=name).raw_host or ""  # IDNA, as yarl encodes it
        except (ValueError, UnicodeError):
            raise ValueError(f"url {_shown(value)} has an invalid host {name!r}") from None
    if _DOTTED_QUAD.match(name):
        # Four numbers are an IPv4 address, written the one way: 0177.0.0.1 is no octal 127.0.0.1.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise ValueError(f"url {_shown(value)} is not a valid URL: Invalid IPv4 address: {name!r}") from None
    elif not _HOST_NAME.match(name):
        raise ValueError(f"url {_shown(value)} has an invalid host {name!r}")
    return name


def _quoted(text: str, safe: str) -> str:
    """``text`` with what a URL cannot hold percent-encoded (UTF-8), its escapes kept as written."""
    return quote(_LONE_PERCENT.sub("%25", text), safe=safe + "%")


def with_query(url: URL, query: str) -> URL:
    """``url`` with ``query`` (encoded) after its own query string."""
    own = url.raw_query_string
    return URL.build(
        scheme=url.scheme,
        authority=url.raw_authority,
        path=url.raw_path,
        query_string=f"{own}&{query}" if own else query,
        fragment=url.raw_fragment,
        encoded=True,
    )


def redirect_url(base: URL, location: str) -> URL:
    """The URL a redirect's ``Location`` points to from ``base``, as :func:`parse_url` gives it.
    Raises ``ValueError`` saying why it is refused: only http and https URLs with a host and no
    credentials."""
    target = urljoin(str(base), _quoted(location.strip(), _URL_SAFE))
    try:
        parts = urlsplit(target)
    except ValueError as exc:
        raise ValueError(f"redirect to {target[:200]!r} refused: {exc}") from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.netloc:
        raise ValueError(f"redirect to {target[:200]!r} refused: only http and https URLs")
    if "@" in parts.netloc:
        raise ValueError("redirect to a URL holding credentials (user:password@) refused")
    if base.raw_fragment and not parts.fragment:  # RFC 9110 10.2.2: the fragment carries over
        target = f"{target}#{base.raw_fragment}"
    try:
        return parse_url(target)
    except ValueError as exc:
        raise ValueError(f"redirect to {target[:200]!r} refused: {exc}") from None


def origin_of(url: URL) -> str:
    """``host:port`` of ``url``, the port written out (``api.example.com:443``)."""
    host = url.raw_host or ""
    port = url.port or DEFAULT_PORTS.get(url.scheme, 0)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def same_origin(one: URL, other: URL) -> bool:
    return one.scheme == other.scheme and origin_of(one) == origin_of(other)
