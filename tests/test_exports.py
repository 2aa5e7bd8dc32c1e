"""The public names: the websockets 8.1 set, all importable, all documented."""

from __future__ import annotations

import pathlib
import re

import anyws

ROOT = pathlib.Path(__file__).parent.parent

# The 41 names of websockets 8.1's ``__all__``.
WEBSOCKETS_81 = frozenset(
    """
    AbortHandshake BasicAuthWebSocketServerProtocol ConnectionClosed
    ConnectionClosedError ConnectionClosedOK Data DuplicateParameter
    ExtensionHeader ExtensionParameter InvalidHandshake InvalidHeader
    InvalidHeaderFormat InvalidHeaderValue InvalidMessage InvalidOrigin
    InvalidParameterName InvalidParameterValue InvalidState InvalidStatusCode
    InvalidURI InvalidUpgrade NegotiationError Origin PayloadTooBig ProtocolError
    RedirectHandshake SecurityError Subprotocol WebSocketClientProtocol
    WebSocketCommonProtocol WebSocketException WebSocketProtocolError
    WebSocketServer WebSocketServerProtocol WebSocketURI basic_auth_protocol_factory
    connect parse_uri serve unix_connect unix_serve
    """.split()
)


def test_websockets_81_names_are_all_there() -> None:
    assert len(WEBSOCKETS_81) == 41
    assert WEBSOCKETS_81 <= set(anyws.__all__)


def test_every_exported_name_resolves() -> None:
    assert len(anyws.__all__) == len(set(anyws.__all__))
    for name in anyws.__all__:
        assert getattr(anyws, name) is not None, name
    assert set(anyws.__all__) <= set(dir(anyws))


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        anyws.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:  # pragma: no cover - the assertion is the failure
        raise AssertionError("expected AttributeError")


def test_every_exported_name_is_documented_and_vice_versa() -> None:
    reference = (ROOT / "docs" / "reference.md").read_text()
    documented = set(re.findall(r"^- `(\w+)[`(]", reference, re.MULTILINE))
    assert documented == set(anyws.__all__)


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", anyws.__version__)
