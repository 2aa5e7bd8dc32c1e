"""Parsers and builders for the header values of the opening handshake.

Grammars, from the RFCs (``#x`` is a comma-separated list, ``1#x`` one with
at least one element; RFC 7230 section 7 asks recipients to accept and skip
empty list elements)::

    Connection               = 1#token                        RFC 7230 6.1
    Upgrade                  = 1#(token ["/" token])          RFC 7230 6.7
    Sec-WebSocket-Protocol   = 1#token                        RFC 6455 4.3
    Sec-WebSocket-Extensions = 1#(token *(";" param))         RFC 6455 9.1
        param                = token ["=" (token / quoted-string)]
    Authorization            = "Basic" 1*SP token68          RFC 7617 2

Optional whitespace (spaces and tabs) may surround every separator. Parsers
raise :exc:`~anyws.exceptions.InvalidHeaderFormat` with the position of the
first character that breaks the grammar. They work on one header value; the
caller parses each value of a repeated header and joins the lists.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Sequence
from typing import NewType, TypeVar

from .._types import ExtensionHeader, ExtensionName, ExtensionParameter, Subprotocol
from ..exceptions import InvalidHeaderFormat, InvalidHeaderValue

__all__ = (
    "ConnectionOption",
    "UpgradeProtocol",
    "build_authorization_basic",
    "build_extension",
    "build_host",
    "build_subprotocol",
    "build_www_authenticate_basic",
    "parse_authorization_basic",
    "parse_connection",
    "parse_extension",
    "parse_subprotocol",
    "parse_upgrade",
    "validate_subprotocols",
)

#: One option of a ``Connection`` header, for example ``Upgrade``.
ConnectionOption = NewType("ConnectionOption", str)

#: One protocol of an ``Upgrade`` header, for example ``websocket``.
UpgradeProtocol = NewType("UpgradeProtocol", str)

T = TypeVar("T")

# RFC 7230 section 3.2.6: tchar.
_TOKEN_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# RFC 7230 section 6.7: protocol-name ["/" protocol-version].
_PROTOCOL_RE = re.compile(
    r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+(?:/[-!#$%&'*+.^_`|~0-9a-zA-Z]+)?"
)

# RFC 7230 section 3.2.6: DQUOTE *( qdtext / quoted-pair ) DQUOTE.
_QUOTED_STRING_RE = re.compile(
    r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
)
_QUOTED_PAIR_RE = re.compile(r"\\([\t \x21-\x7e\x80-\xff])")

# What a quoted-string may carry once escaped: HTAB, SP, VCHAR, obs-text.
_QUOTABLE_RE = re.compile(r"[\t \x21-\x7e\x80-\xff]*")

# RFC 7235 section 2.1: token68.
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# RFC 7230 section 3.2.3: OWS.
_OWS_RE = re.compile(r"[\t ]*")

# Before the first list element: optional whitespace and empty elements.
_LIST_START_RE = re.compile(r"[\t ,]*")


# Low-level helpers. Each takes the header and a position and returns the
# parsed value with the position just after it.


def _skip_ows(header: str, pos: int) -> int:
    match = _OWS_RE.match(header, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _parse_with(
    pattern: re.Pattern[str], what: str, header: str, pos: int, name: str
) -> tuple[str, int]:
    match = pattern.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, f"expected {what}", header, pos)
    return match.group(), match.end()


def _parse_token(header: str, pos: int, name: str) -> tuple[str, int]:
    return _parse_with(_TOKEN_RE, "token", header, pos, name)


def _parse_protocol(header: str, pos: int, name: str) -> tuple[UpgradeProtocol, int]:
    protocol, pos = _parse_with(_PROTOCOL_RE, "protocol", header, pos, name)
    return UpgradeProtocol(protocol), pos


def _parse_quoted_string(header: str, pos: int, name: str) -> tuple[str, int]:
    quoted, end = _parse_with(_QUOTED_STRING_RE, "quoted string", header, pos, name)
    return _QUOTED_PAIR_RE.sub(r"\1", quoted[1:-1]), end


def _quote(value: str) -> str:
    """Write ``value`` as an RFC 7230 quoted-string.

    Raises:
        ValueError: if ``value`` has a character that a quoted-string cannot
            carry (control characters other than tab, or beyond U+00FF).
    """
    if _QUOTABLE_RE.fullmatch(value) is None:
        raise ValueError(f"invalid characters for a quoted string: {value!r}")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _parse_list(
    parse_item: Callable[[str, int, str], tuple[T, int]],
    header: str,
    pos: int,
    name: str,
) -> list[T]:
    """Parse ``1#item`` from ``pos`` to the end of ``header``.

    Empty elements and whitespace around separators are skipped (RFC 7230
    section 7), but at least one element is required.
    """
    match = _LIST_START_RE.match(header, pos)
    assert match is not None  # the pattern matches the empty string
    pos = match.end()
    items = []
    while True:
        item, pos = parse_item(header, pos, name)
        items.append(item)
        pos = _skip_ows(header, pos)
        if pos == len(header):
            return items
        if header[pos] != ",":
            raise InvalidHeaderFormat(name, "expected comma", header, pos)
        match = _LIST_START_RE.match(header, pos)
        assert match is not None  # the pattern matches at a comma
        pos = match.end()
        if pos == len(header):
            return items


# Connection, Upgrade.


def _parse_connection_option(
    header: str, pos: int, name: str
) -> tuple[ConnectionOption, int]:
    option, pos = _parse_token(header, pos, name)
    return ConnectionOption(option), pos


def parse_connection(header: str) -> list[ConnectionOption]:
    """Parse one ``Connection`` header value (RFC 7230 section 6.1).

    Args:
        header: the value, for example ``"keep-alive, Upgrade"``.

    Returns:
        The options, as written (compare them case-insensitively).

    Raises:
        InvalidHeaderFormat: if the value is not a list of tokens.
    """
    return _parse_list(_parse_connection_option, header, 0, "Connection")


def parse_upgrade(header: str) -> list[UpgradeProtocol]:
    """Parse one ``Upgrade`` header value (RFC 7230 section 6.7).

    Args:
        header: the value, for example ``"websocket"`` or ``"HTTP/2.0, foo"``.

    Returns:
        The protocols, each with its ``/version`` part if it has one.

    Raises:
        InvalidHeaderFormat: if the value is not a list of protocols.
    """
    return _parse_list(_parse_protocol, header, 0, "Upgrade")


# Sec-WebSocket-Extensions.

# The values already parsed, and what they gave: clients of a kind all offer
# the same extensions, and a server parses each offer. Peers choose these
# values: the table is bounded, and starts over when full.
_EXTENSIONS_PARSED: dict[
    str, tuple[tuple[ExtensionName, tuple[ExtensionParameter, ...]], ...]
] = {}
#: Most values _EXTENSIONS_PARSED holds.
_PARSED_MAX = 64
#: Longest value _EXTENSIONS_PARSED holds.
_PARSED_MAX_LENGTH = 256


def _parse_extension_param(
    header: str, pos: int, name: str
) -> tuple[ExtensionParameter, int]:
    param_name, pos = _parse_token(header, pos, name)
    pos = _skip_ows(header, pos)
    if header[pos : pos + 1] != "=":
        return (param_name, None), pos
    pos = _skip_ows(header, pos + 1)
    if header[pos : pos + 1] != '"':
        value, pos = _parse_token(header, pos, name)
        return (param_name, value), pos
    start = pos
    value, pos = _parse_quoted_string(header, pos, name)
    # RFC 6455 section 9.1: once unescaped, a quoted value must be a token.
    if _TOKEN_RE.fullmatch(value) is None:
        raise InvalidHeaderFormat(name, "invalid quoted header content", header, start)
    return (param_name, value), pos


def _parse_extension_item(
    header: str, pos: int, name: str
) -> tuple[ExtensionHeader, int]:
    extension_name, pos = _parse_token(header, pos, name)
    pos = _skip_ows(header, pos)
    params = []
    while header[pos : pos + 1] == ";":
        pos = _skip_ows(header, pos + 1)
        param, pos = _parse_extension_param(header, pos, name)
        params.append(param)
        pos = _skip_ows(header, pos)
    return (ExtensionName(extension_name), params), pos


def parse_extension(header: str) -> list[ExtensionHeader]:
    """Parse one ``Sec-WebSocket-Extensions`` value (RFC 6455 section 9.1).

    Args:
        header: the value, for example
            ``"permessage-deflate; client_max_window_bits=10, foo"``.

    Returns:
        ``(name, params)`` for each extension, in order. ``params`` is a list
        of ``(name, value)`` where ``value`` is ``None`` for a parameter
        without a value; quoted values are returned unquoted.

    Raises:
        InvalidHeaderFormat: if the value does not match the grammar, or a
            quoted value is not a token once unescaped.
    """
    cached = _EXTENSIONS_PARSED.get(header)
    if cached is not None:
        # Fresh lists: the caller may change them.
        return [(name, list(params)) for name, params in cached]
    extensions = _parse_list(
        _parse_extension_item, header, 0, "Sec-WebSocket-Extensions"
    )
    if len(header) <= _PARSED_MAX_LENGTH:
        if len(_EXTENSIONS_PARSED) >= _PARSED_MAX:
            _EXTENSIONS_PARSED.clear()
        _EXTENSIONS_PARSED[header] = tuple(
            (name, tuple(params)) for name, params in extensions
        )
    return extensions


def _check_token(kind: str, value: str) -> None:
    if _TOKEN_RE.fullmatch(value) is None:
        raise ValueError(f"invalid {kind}: {value!r} is not a token")


def _build_extension_item(name: str, params: Sequence[ExtensionParameter]) -> str:
    _check_token("extension name", name)
    parts = [name]
    for param_name, value in params:
        _check_token("extension parameter name", param_name)
        if value is None:
            parts.append(param_name)
        else:
            _check_token("extension parameter value", value)
            parts.append(f"{param_name}={value}")
    return "; ".join(parts)


def build_extension(extensions: Sequence[ExtensionHeader]) -> str:
    """Build a ``Sec-WebSocket-Extensions`` value; the inverse of parsing.

    Args:
        extensions: ``(name, params)`` pairs as :func:`parse_extension`
            returns them.

    Returns:
        For example ``"permessage-deflate; client_max_window_bits"``.

    Raises:
        ValueError: if a name or a value is not a token (RFC 7692 values
            always are; refusing others keeps the header well formed).
    """
    return ", ".join(
        [_build_extension_item(name, params) for name, params in extensions]
    )


# Sec-WebSocket-Protocol.


def _parse_subprotocol_item(
    header: str, pos: int, name: str
) -> tuple[Subprotocol, int]:
    subprotocol, pos = _parse_token(header, pos, name)
    return Subprotocol(subprotocol), pos


def parse_subprotocol(header: str) -> list[Subprotocol]:
    """Parse one ``Sec-WebSocket-Protocol`` value (RFC 6455 section 4.3).

    Args:
        header: the value, for example ``"chat, superchat"``.

    Returns:
        The subprotocols, in order.

    Raises:
        InvalidHeaderFormat: if the value is not a list of tokens.
    """
    return _parse_list(_parse_subprotocol_item, header, 0, "Sec-WebSocket-Protocol")


def build_subprotocol(subprotocols: Sequence[str]) -> str:
    """Build a ``Sec-WebSocket-Protocol`` value.

    Args:
        subprotocols: the names, already checked with
            :func:`validate_subprotocols`.

    Returns:
        The names joined with ``", "``.
    """
    return ", ".join(subprotocols)


def validate_subprotocols(subprotocols: object) -> None:
    """Check a ``subprotocols`` argument when ``serve`` or ``connect`` is called.

    Args:
        subprotocols: what the user passed; ``None`` means no subprotocols.

    Raises:
        TypeError: if it is a string rather than a list of strings, is not
            iterable, or has an item that is not a ``str``.
        ValueError: if an item is not an RFC 7230 token, which the
            ``Sec-WebSocket-Protocol`` grammar requires (RFC 6455 section 4.1).
    """
    if subprotocols is None:
        return
    # A lone string is iterable too; taking it letter by letter would offer
    # one subprotocol per character.
    if isinstance(subprotocols, (str, bytes)) or not isinstance(subprotocols, Iterable):
        raise TypeError(f"subprotocols must be a list of str, not {subprotocols!r}")
    for item in subprotocols:
        if not isinstance(item, str):
            raise TypeError(f"subprotocols must be str, not {item!r}")
        if _TOKEN_RE.fullmatch(item) is None:
            raise ValueError(f"invalid subprotocol: {item!r} is not a token")


# Host.


def build_host(host: str, port: int, secure: bool) -> str:
    """Build a ``Host`` value (RFC 7230 section 5.4).

    Args:
        host: a host name or an IP address; an IPv6 address may be given
            with or without brackets.
        port: the TCP port.
        secure: whether the scheme is ``wss`` (default port 443) rather than
            ``ws`` (default port 80).

    Returns:
        ``host`` or ``host:port``; IPv6 addresses in brackets (RFC 3986
        section 3.2.2), the port only when it is not the scheme's default.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port != (443 if secure else 80):
        host = f"{host}:{port}"
    return host


# HTTP Basic authentication.


def build_www_authenticate_basic(realm: str) -> str:
    """Build a ``WWW-Authenticate`` value for Basic auth (RFC 7617 section 2).

    Args:
        realm: the protection space shown to users.

    Returns:
        ``Basic realm="<realm>", charset="UTF-8"`` with the realm escaped.

    Raises:
        ValueError: if the realm has characters a quoted-string cannot carry.
    """
    return f'Basic realm={_quote(realm)}, charset="UTF-8"'


def parse_authorization_basic(header: str) -> tuple[str, str]:
    """Parse an ``Authorization`` value for Basic auth (RFC 7617 section 2).

    Args:
        header: the value, for example ``"Basic YWxhZGRpbjpvcGVuc2VzYW1l"``.

    Returns:
        ``(username, password)``, decoded as UTF-8. The password may contain
        colons: the split happens at the first one.

    Raises:
        InvalidHeaderFormat: if the value is not ``scheme SP token68``.
        InvalidHeaderValue: if the scheme is not Basic (any case), or the
            credentials are not base64 of UTF-8 ``username:password``.
    """
    name = "Authorization"
    scheme, pos = _parse_token(header, 0, name)
    if scheme.lower() != "basic":
        raise InvalidHeaderValue(name, f"unsupported scheme: {scheme}")
    if header[pos : pos + 1] != " ":
        raise InvalidHeaderFormat(name, "expected space after scheme", header, pos)
    while header[pos : pos + 1] == " ":
        pos += 1
    credentials, pos = _parse_with(_TOKEN68_RE, "token68", header, pos, name)
    if pos != len(header):
        raise InvalidHeaderFormat(name, "expected end of header", header, pos)
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidHeaderValue(
            name, "expected base64-encoded UTF-8 credentials"
        ) from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidHeaderValue(name, "expected username:password credentials")
    return username, password


def build_authorization_basic(username: str, password: str) -> str:
    """Build an ``Authorization`` value for Basic auth (RFC 7617 section 2).

    Args:
        username: may not contain ``:``, which separates it from the password.
        password: any string.

    Returns:
        ``Basic <base64 of UTF-8 username:password>``.

    Raises:
        ValueError: if the username contains ``:``.
    """
    if ":" in username:
        raise ValueError("a Basic auth username cannot contain ':'")
    credentials = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(credentials).decode()
