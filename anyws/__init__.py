"""anyws: the WebSocket protocol (RFC 6455, RFC 7692) for trio and asyncio, on AnyIO.

The public names are those of websockets 8.1. They are loaded lazily, on first
use, so that importing the sans-I/O core (``anyws.sansio``) never loads AnyIO.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__ as __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._types import (
        Data,
        ExtensionHeader,
        ExtensionParameter,
        Origin,
        Subprotocol,
    )
    from .auth import BasicAuthWebSocketServerProtocol, basic_auth_protocol_factory
    from .client import WebSocketClientProtocol, connect, unix_connect
    from .exceptions import (
        AbortHandshake,
        ConcurrencyError,
        ConnectionClosed,
        ConnectionClosedError,
        ConnectionClosedOK,
        DuplicateParameter,
        InvalidHandshake,
        InvalidHeader,
        InvalidHeaderFormat,
        InvalidHeaderValue,
        InvalidMessage,
        InvalidOrigin,
        InvalidParameterName,
        InvalidParameterValue,
        InvalidState,
        InvalidStatusCode,
        InvalidUpgrade,
        InvalidURI,
        NegotiationError,
        PayloadTooBig,
        ProtocolError,
        RedirectHandshake,
        SecurityError,
        WebSocketException,
        WebSocketProtocolError,
    )
    from .protocol import WebSocketCommonProtocol
    from .sansio.datastructures import Headers, MultipleValuesError
    from .sansio.machine import State
    from .server import WebSocketServer, WebSocketServerProtocol, serve, unix_serve
    from .uri import WebSocketURI, parse_uri

__all__ = (
    # auth
    "BasicAuthWebSocketServerProtocol",
    "basic_auth_protocol_factory",
    # client
    "WebSocketClientProtocol",
    "connect",
    "unix_connect",
    # exceptions
    "AbortHandshake",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidState",
    "InvalidStatusCode",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "RedirectHandshake",
    "SecurityError",
    "WebSocketException",
    "WebSocketProtocolError",
    # protocol
    "State",
    "WebSocketCommonProtocol",
    # server
    "WebSocketServer",
    "WebSocketServerProtocol",
    "serve",
    "unix_serve",
    # typing
    "Data",
    "ExtensionHeader",
    "ExtensionParameter",
    "Origin",
    "Subprotocol",
    # uri
    "WebSocketURI",
    "parse_uri",
    # http
    "Headers",
    "MultipleValuesError",
)

_LAZY: dict[str, str] = {
    "BasicAuthWebSocketServerProtocol": ".auth",
    "basic_auth_protocol_factory": ".auth",
    "WebSocketClientProtocol": ".client",
    "connect": ".client",
    "unix_connect": ".client",
    "State": ".sansio.machine",
    "WebSocketCommonProtocol": ".protocol",
    "WebSocketServer": ".server",
    "WebSocketServerProtocol": ".server",
    "serve": ".server",
    "unix_serve": ".server",
    "Data": "._types",
    "ExtensionHeader": "._types",
    "ExtensionParameter": "._types",
    "Origin": "._types",
    "Subprotocol": "._types",
    "WebSocketURI": ".uri",
    "parse_uri": ".uri",
    "Headers": ".sansio.datastructures",
    "MultipleValuesError": ".sansio.datastructures",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
    elif name in __all__:
        module = importlib.import_module(".exceptions", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
