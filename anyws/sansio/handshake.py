"""The opening handshake (RFC 6455 section 4), without any I/O.

These functions build and check the headers of the handshake request and
response, and negotiate extensions and the subprotocol. The I/O layer calls
them in this order:

* client: :func:`generate_key`, :func:`client_request_headers`; then, with the
  101 response, :func:`check_response`, :func:`client_process_extensions`,
  :func:`client_process_subprotocol`;
* server: :func:`check_request`, :func:`process_origin`,
  :func:`server_process_extensions`, :func:`server_process_subprotocol`,
  :func:`server_response_headers`; or, on failure, :func:`error_response_for`
  (or :func:`reject_response` for a response chosen by the application).

Every check raises a subclass of :exc:`~anyws.exceptions.InvalidHandshake`;
:func:`error_response_for` maps it to the HTTP status the server answers.
The core has no clock: whoever wants a ``Date`` header passes its value.
"""

from __future__ import annotations

import base64
import hashlib
import http
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .._types import Origin, Subprotocol
from ..exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidOrigin,
    InvalidUpgrade,
    NegotiationError,
)
from .datastructures import Headers, HeadersLike, MultipleValuesError
from .headers import (
    build_authorization_basic,
    build_extension,
    build_host,
    build_subprotocol,
    parse_connection,
    parse_extension,
    parse_subprotocol,
    parse_upgrade,
)
from .http11 import USER_AGENT, Response

if TYPE_CHECKING:
    from .._types import ExtensionHeader
    from ..uri import WebSocketURI
    from .extensions.base import (
        ClientExtensionFactory,
        Extension,
        ServerExtensionFactory,
    )

__all__ = (
    "GUID",
    "SHUTDOWN_RESPONSE_BODY",
    "accept_key",
    "check_request",
    "check_response",
    "client_process_extensions",
    "client_process_subprotocol",
    "client_request_headers",
    "default_select_subprotocol",
    "error_response_for",
    "generate_key",
    "process_origin",
    "reject_response",
    "server_process_extensions",
    "server_process_subprotocol",
    "server_response_headers",
)

#: The magic string of RFC 6455 section 1.3, appended to the key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Body of the 503 response sent while the server shuts down.
SHUTDOWN_RESPONSE_BODY = b"Server is shutting down.\n"

_BROWSER_NOTE = (
    "A WebSocket endpoint only speaks the WebSocket protocol: a web browser\n"
    "cannot open it as a page. Connect to it with a WebSocket client.\n"
)

_SERVER_ERROR_BODY = (
    "The server could not open the WebSocket connection.\n"
    "The server log has the details of the error.\n"
)


# Keys.


def generate_key() -> str:
    """Make a fresh ``Sec-WebSocket-Key`` value (RFC 6455 section 4.1).

    Returns:
        The base64 encoding of 16 random bytes.
    """
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    """Compute the ``Sec-WebSocket-Accept`` value for a key (RFC 6455 4.2.2).

    Args:
        key: the ``Sec-WebSocket-Key`` value.

    Returns:
        base64(SHA-1(key + :data:`GUID`)).
    """
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


# Helpers shared by both sides.

# Lower-cased Connection values that browsers and libraries send, each a
# list of options that includes upgrade.
_CONNECTION_UPGRADE = frozenset({"upgrade", "keep-alive, upgrade"})

# A key that is the canonical base64 of 16 bytes: the only thing clients
# send. Other keys are decoded to tell.
_CANONICAL_KEY_RE = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")


def _extend(headers: Headers, extra: HeadersLike) -> None:
    """Append every pair of ``extra``, keeping repeated names of a Headers."""
    pairs: Iterable[tuple[str, str]]
    if isinstance(extra, Headers):
        pairs = extra.raw_items()
    elif isinstance(extra, Mapping):
        pairs = extra.items()
    else:
        # An iterator, so that update() reads pairs even from an object that
        # also has keys().
        pairs = iter(extra)
    headers.update(pairs)


def _add_missing(headers: Headers, *pairs: tuple[str, str | None]) -> None:
    """Append each pair whose value isn't ``None`` and whose name is absent.

    The builders below end with this call: ``update`` sizes the lists of
    ``headers`` exactly, and the headers of a connection are kept as long as
    it stays open.
    """
    headers.update(
        [
            (name, value)
            for name, value in pairs
            if value is not None and name not in headers
        ]
    )


def _single_value(headers: Headers, name: str) -> str:
    """Return the only value of a header that must appear exactly once."""
    try:
        return headers[name]
    except KeyError:
        raise InvalidHeader(name) from None
    except MultipleValuesError:
        raise InvalidHeader(name, f"more than one {name} header found") from None


def _check_upgrade(headers: Headers) -> None:
    """Check ``Connection`` and ``Upgrade`` (RFC 6455 sections 4.1 and 4.2.1).

    Raises:
        InvalidUpgrade: ``Connection`` lacks ``upgrade``, or ``Upgrade`` is not
            exactly one ``websocket``; both compared case-insensitively.
        InvalidHeaderFormat: one of them does not match its grammar.
    """
    # What peers send, accepted without parsing: a single value that parses
    # into options including upgrade, and a single websocket.
    connection = headers.get_all("Connection")
    upgrade = headers.get_all("Upgrade")
    if (
        len(connection) == 1
        and len(upgrade) == 1
        and connection[0].lower() in _CONNECTION_UPGRADE
        and upgrade[0].lower() == "websocket"
    ):
        return
    values = connection
    options = [option for value in values for option in parse_connection(value)]
    if not any(option.lower() == "upgrade" for option in options):
        raise InvalidUpgrade("Connection", ", ".join(options) if values else None)
    values = upgrade
    protocols = [protocol for value in values for protocol in parse_upgrade(value)]
    if not (len(protocols) == 1 and protocols[0].lower() == "websocket"):
        raise InvalidUpgrade("Upgrade", ", ".join(protocols) if values else None)


def _parse_extensions(headers: Headers) -> list[ExtensionHeader]:
    return [
        extension
        for value in headers.get_all("Sec-WebSocket-Extensions")
        for extension in parse_extension(value)
    ]


def _parse_subprotocols(headers: Headers) -> list[Subprotocol]:
    return [
        subprotocol
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for subprotocol in parse_subprotocol(value)
    ]


# Client side.


def client_request_headers(
    wsuri: WebSocketURI,
    *,
    key: str,
    origin: Origin | str | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeadersLike | None = None,
    user_agent: str | None = USER_AGENT,
) -> Headers:
    """Build the headers of the handshake request (RFC 6455 section 4.1).

    Args:
        wsuri: the parsed URI; its credentials, if any, become Basic auth.
        key: the ``Sec-WebSocket-Key``, from :func:`generate_key`.
        origin: the ``Origin`` value; ``None`` sends none.
        extensions: the client extension factories, in order of preference.
        subprotocols: the subprotocols to offer, in order of preference.
        extra_headers: headers appended after the generated ones.
        user_agent: the ``User-Agent`` value, unless ``extra_headers`` has
            one; ``None`` sends none.

    Returns:
        The headers, in the order of the 8.1 client.
    """
    pairs = [("Host", build_host(wsuri.host, wsuri.port, wsuri.secure))]
    if wsuri.user_info is not None:
        pairs.append(("Authorization", build_authorization_basic(*wsuri.user_info)))
    if origin is not None:
        pairs.append(("Origin", origin))
    pairs += [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if extensions:
        value = build_extension(
            [(factory.name, factory.get_request_params()) for factory in extensions]
        )
        pairs.append(("Sec-WebSocket-Extensions", value))
    if subprotocols:
        pairs.append(("Sec-WebSocket-Protocol", build_subprotocol(subprotocols)))
    if extra_headers is None:
        # Nothing can hold User-Agent yet: one Headers built in one go.
        if user_agent is not None:
            pairs.append(("User-Agent", user_agent))
        return Headers(pairs)
    headers = Headers(pairs)
    _extend(headers, extra_headers)
    _add_missing(headers, ("User-Agent", user_agent))
    return headers


def check_response(headers: Headers, key: str) -> None:
    """Check the headers of a 101 response (RFC 6455 section 4.2.2).

    Args:
        headers: the response headers.
        key: the ``Sec-WebSocket-Key`` the client sent.

    Raises:
        InvalidUpgrade: ``Connection`` or ``Upgrade`` is wrong.
        InvalidHeader: ``Sec-WebSocket-Accept`` is missing or repeated, or a
            header does not match its grammar (``InvalidHeaderFormat``).
        InvalidHeaderValue: ``Sec-WebSocket-Accept`` has the wrong value.
    """
    _check_upgrade(headers)
    accept = _single_value(headers, "Sec-WebSocket-Accept")
    if accept != accept_key(key):
        raise InvalidHeaderValue("Sec-WebSocket-Accept", accept)


def client_process_extensions(
    headers: Headers,
    available: Sequence[ClientExtensionFactory] | None,
) -> list[Extension]:
    """Accept the extensions of a 101 response (RFC 6455 section 9.1).

    Each extension in the answer goes to the client factories with its name,
    in order, with the list of extensions accepted so far; the first factory
    that does not raise :exc:`NegotiationError` accepts it.

    Args:
        headers: the response headers.
        available: the factories whose extensions the client offered.

    Returns:
        The extensions to use, in the order of the answer.

    Raises:
        InvalidHandshake: the answer has extensions but the client offered
            none.
        NegotiationError: no factory accepts one of the extensions.
        InvalidHeaderFormat: the header does not match its grammar.
    """
    if "Sec-WebSocket-Extensions" not in headers:
        return []
    if not available:
        raise InvalidHandshake("no extensions supported")
    accepted: list[Extension] = []
    for name, params in _parse_extensions(headers):
        for factory in available:
            if factory.name != name:
                continue
            try:
                extension = factory.process_response_params(params, accepted)
            except NegotiationError:
                continue
            accepted.append(extension)
            break
        else:
            raise NegotiationError(
                f"Unsupported extension: name = {name}, params = {params}"
            )
    return accepted


def client_process_subprotocol(
    headers: Headers, available: Sequence[str] | None
) -> Subprotocol | None:
    """Read the subprotocol of a 101 response (RFC 6455 section 4.2.2).

    Args:
        headers: the response headers.
        available: the subprotocols the client offered.

    Returns:
        The subprotocol the server chose, or ``None`` when it chose none.

    Raises:
        InvalidHandshake: the client offered none, or the answer has several.
        NegotiationError: the client did not offer the one chosen.
        InvalidHeaderFormat: the header does not match its grammar.
    """
    if "Sec-WebSocket-Protocol" not in headers:
        return None
    if not available:
        raise InvalidHandshake("no subprotocols supported")
    subprotocols = _parse_subprotocols(headers)
    if len(subprotocols) > 1:
        raise InvalidHandshake(f"multiple subprotocols: {', '.join(subprotocols)}")
    subprotocol = subprotocols[0]
    if subprotocol not in available:
        raise NegotiationError(f"unsupported subprotocol: {subprotocol}")
    return subprotocol


# Server side.


def check_request(headers: Headers) -> str:
    """Check the headers of a handshake request (RFC 6455 section 4.2.1).

    ``Host`` is not checked.

    Args:
        headers: the request headers.

    Returns:
        The ``Sec-WebSocket-Key`` value, for :func:`server_response_headers`.

    Raises:
        InvalidUpgrade: ``Connection`` or ``Upgrade`` is wrong (answer 426).
        InvalidHeader: ``Sec-WebSocket-Key`` or ``Sec-WebSocket-Version`` is
            missing or repeated, or a header does not match its grammar
            (answer 400).
        InvalidHeaderValue: the key is not base64 of 16 bytes, or the version
            is not 13 (answer 400).
    """
    _check_upgrade(headers)
    key = _single_value(headers, "Sec-WebSocket-Key")
    if _CANONICAL_KEY_RE.fullmatch(key) is None:
        try:
            raw_key = base64.b64decode(key, validate=True)
        except ValueError:  # binascii.Error, or non-ASCII characters
            raise InvalidHeaderValue("Sec-WebSocket-Key", key) from None
        if len(raw_key) != 16:
            raise InvalidHeaderValue("Sec-WebSocket-Key", key)
    version = _single_value(headers, "Sec-WebSocket-Version")
    if version != "13":
        raise InvalidHeaderValue("Sec-WebSocket-Version", version)
    return key


def process_origin(
    headers: Headers, origins: Sequence[Origin | str | None] | None
) -> Origin | None:
    """Read and check the ``Origin`` header (RFC 6455 sections 4.2.1 and 10.2).

    Args:
        headers: the request headers.
        origins: the allowed values, ``None`` in it allowing requests without
            ``Origin``; ``None`` allows everything.

    Returns:
        The ``Origin`` value, or ``None`` when the request has none.

    Raises:
        InvalidHeader: the request has several ``Origin`` headers (answer 400).
        InvalidOrigin: the value is not allowed (answer 403).
    """
    try:
        origin = headers.get("Origin")
    except MultipleValuesError:
        raise InvalidHeader("Origin", "more than one Origin header found") from None
    if origins is not None and origin not in origins:
        raise InvalidOrigin(origin)
    return None if origin is None else Origin(origin)


def server_process_extensions(
    headers: Headers,
    available: Sequence[ServerExtensionFactory] | None,
) -> tuple[str | None, list[Extension]]:
    """Negotiate extensions with the client's offers (RFC 6455 section 9.1).

    The offers are walked in the client's order. Each goes to the server
    factories with the same name, in the server's order, with the list of
    extensions accepted so far; the first one that does not raise
    :exc:`NegotiationError` accepts it. An offer that no factory accepts is
    skipped. So the answer is a subset of the offers, in the same order.

    Args:
        headers: the request headers.
        available: the server's factories. With none, the header is ignored
            without being parsed, as websockets 8.1 does.

    Returns:
        The ``Sec-WebSocket-Extensions`` value to answer (``None`` when no
        offer was accepted) and the extensions to use, in the same order.

    Raises:
        InvalidHeaderFormat: the header does not match its grammar (answer
            400).
    """
    if not available or "Sec-WebSocket-Extensions" not in headers:
        return None, []
    answers: list[ExtensionHeader] = []
    accepted: list[Extension] = []
    for name, params in _parse_extensions(headers):
        for factory in available:
            if factory.name != name:
                continue
            try:
                answer, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue
            answers.append((name, answer))
            accepted.append(extension)
            break
    return (build_extension(answers) if answers else None), accepted


def default_select_subprotocol(
    client_subprotocols: Sequence[str], server_subprotocols: Sequence[str]
) -> Subprotocol | None:
    """Choose a subprotocol that both sides support.

    The choice is the shared one with the lowest sum of its positions in the
    two lists; among equal sums, the client's preference wins.

    Args:
        client_subprotocols: the client's offer, in its order of preference.
        server_subprotocols: the server's list, in its order of preference.

    Returns:
        The subprotocol, or ``None`` when the lists share none.
    """
    server_positions: dict[str, int] = {}
    for position, subprotocol in enumerate(server_subprotocols):
        server_positions.setdefault(subprotocol, position)
    best: str | None = None
    best_score = 0
    for position, subprotocol in enumerate(client_subprotocols):
        server_position = server_positions.get(subprotocol)
        if server_position is None:
            continue
        score = position + server_position
        # Strictly lower: on a tie the earlier client position stays.
        if best is None or score < best_score:
            best, best_score = subprotocol, score
    return None if best is None else Subprotocol(best)


def server_process_subprotocol(
    headers: Headers,
    available: Sequence[str] | None,
    select: Callable[
        [Sequence[str], Sequence[str]], str | None
    ] = default_select_subprotocol,
) -> Subprotocol | None:
    """Choose the subprotocol of the connection (RFC 6455 section 4.2.2).

    Args:
        headers: the request headers.
        available: the server's subprotocols, in order of preference.
        select: called as ``select(client_subprotocols, available)`` only
            when the request offers subprotocols and ``available`` is not
            empty; its result is not checked against the offer.

    Returns:
        The chosen subprotocol, or ``None``.

    Raises:
        InvalidHeaderFormat: the header does not match its grammar (answer
            400).
    """
    if not available or "Sec-WebSocket-Protocol" not in headers:
        return None
    subprotocol = select(_parse_subprotocols(headers), available)
    return None if subprotocol is None else Subprotocol(subprotocol)


def server_response_headers(
    key: str,
    *,
    extensions_header: str | None = None,
    subprotocol: str | None = None,
    extra_headers: HeadersLike | None = None,
    date: str | None = None,
    server: str | None = USER_AGENT,
) -> Headers:
    """Build the headers of the 101 response (RFC 6455 section 4.2.2).

    Args:
        key: the ``Sec-WebSocket-Key`` of the request.
        extensions_header: the ``Sec-WebSocket-Extensions`` value, from
            :func:`server_process_extensions`.
        subprotocol: the chosen subprotocol.
        extra_headers: headers appended after the generated ones.
        date: the ``Date`` value (RFC 7231 IMF-fixdate), unless
            ``extra_headers`` has one; ``None`` sends none.
        server: the ``Server`` value, unless ``extra_headers`` has one;
            ``None`` sends none.

    Returns:
        The headers, in the order of the 8.1 server.
    """
    pairs = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if extensions_header is not None:
        pairs.append(("Sec-WebSocket-Extensions", extensions_header))
    if subprotocol is not None:
        pairs.append(("Sec-WebSocket-Protocol", subprotocol))
    if extra_headers is None:
        # Nothing can hold Date or Server yet: one Headers built in one go.
        if date is not None:
            pairs.append(("Date", date))
        if server is not None:
            pairs.append(("Server", server))
        return Headers(pairs)
    headers = Headers(pairs)
    _extend(headers, extra_headers)
    _add_missing(headers, ("Date", date), ("Server", server))
    return headers


# Rejections.


def reject_response(
    status: int | http.HTTPStatus,
    body: bytes | str,
    headers: HeadersLike | None = None,
    *,
    date: str | None = None,
    server: str | None = USER_AGENT,
) -> Response:
    """Build an HTTP response that refuses the handshake.

    After the given headers come, each only when it is not there yet:
    ``Upgrade: websocket`` (for 426 only, RFC 7231 section 6.5.15), ``Date``,
    ``Server``, ``Content-Length``, ``Content-Type: text/plain`` (even for an
    empty body, as 8.1 does) and ``Connection: close``: the server closes the
    connection after the response.

    Args:
        status: the status code; the reason phrase is the standard one.
        body: the body; a ``str`` is encoded as UTF-8 (surrogate escapes
            give back their bytes).
        headers: headers to send first.
        date: the ``Date`` value; ``None`` sends none.
        server: the ``Server`` value; ``None`` sends none.

    Returns:
        The response.

    Raises:
        ValueError: ``status`` is not a known HTTP status.
    """
    status = http.HTTPStatus(status)
    if isinstance(body, str):
        # Surrogate escapes stand for the bytes they came from, as in http11.
        body = body.encode("utf-8", "surrogateescape")
    response_headers = Headers()
    if headers is not None:
        _extend(response_headers, headers)
    if status == http.HTTPStatus.UPGRADE_REQUIRED:
        _add_missing(response_headers, ("Upgrade", "websocket"))
    _add_missing(
        response_headers,
        ("Date", date),
        ("Server", server),
        ("Content-Length", str(len(body))),
        ("Content-Type", "text/plain"),
        ("Connection", "close"),
    )
    return Response(status.value, status.phrase, response_headers, body)


def error_response_for(
    exc: BaseException, *, date: str | None = None, server: str | None = USER_AGENT
) -> Response:
    """Build the response to a handshake that failed with ``exc``.

    Args:
        exc: the error raised while checking the request or running
            ``process_request``.
        date: the ``Date`` value; ``None`` sends none.
        server: the ``Server`` value; ``None`` sends none.

    Returns:
        403 for :exc:`InvalidOrigin`, 426 for :exc:`InvalidUpgrade`, 400 for
        any other :exc:`InvalidHandshake`, 500 for anything else (whose
        details stay out of the body: they are for the server log).
    """
    if isinstance(exc, InvalidOrigin):
        status = http.HTTPStatus.FORBIDDEN
        body = f"Failed to open a WebSocket connection: {exc}.\n"
    elif isinstance(exc, InvalidUpgrade):
        status = http.HTTPStatus.UPGRADE_REQUIRED
        body = f"Failed to open a WebSocket connection: {exc}.\n\n{_BROWSER_NOTE}"
    elif isinstance(exc, InvalidHandshake):
        status = http.HTTPStatus.BAD_REQUEST
        body = f"Failed to open a WebSocket connection: {exc}.\n"
    else:
        status = http.HTTPStatus.INTERNAL_SERVER_ERROR
        body = _SERVER_ERROR_BODY
    # The message may quote header values from the peer, decoded with
    # surrogate escapes: write those as backslash escapes, never raw bytes.
    raw_body = body.encode("utf-8", "backslashreplace")
    return reject_response(status, raw_body, date=date, server=server)
