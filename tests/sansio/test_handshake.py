"""Tests for anyws.sansio.handshake: the opening handshake without I/O."""

from __future__ import annotations

import base64
import gc
import http
import sys
import tracemalloc
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws._types import ExtensionName, ExtensionParameter, Subprotocol
from anyws.exceptions import (
    AbortHandshake,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidOrigin,
    InvalidUpgrade,
    NegotiationError,
)
from anyws.sansio.datastructures import Headers, HeadersLike
from anyws.sansio.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ServerExtensionFactory,
)
from anyws.sansio.frames import Frame
from anyws.sansio.handshake import (
    GUID,
    SHUTDOWN_RESPONSE_BODY,
    accept_key,
    check_request,
    check_response,
    client_process_extensions,
    client_process_subprotocol,
    client_request_headers,
    default_select_subprotocol,
    error_response_for,
    generate_key,
    process_origin,
    reject_response,
    server_process_extensions,
    server_process_subprotocol,
    server_response_headers,
)
from anyws.sansio.http11 import USER_AGENT, Response
from anyws.uri import WebSocketURI

# RFC 6455 section 1.3.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BASE64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

DATE = "Wed, 25 Nov 2026 16:00:00 GMT"


# Fake extensions and factories. They record what they were given and accept
# or decline according to their configuration.


class FakeExtension(Extension):
    def __init__(self, name: str, params: Sequence[ExtensionParameter]) -> None:
        self._name = ExtensionName(name)
        self.params = list(params)

    @property
    def name(self) -> ExtensionName:
        return self._name

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        return frame  # pragma: no cover (negotiation only)

    def encode(self, frame: Frame) -> Frame:
        return frame  # pragma: no cover (negotiation only)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeExtension) and (self.name, self.params) == (
            other.name,
            other.params,
        )

    __hash__ = None  # type: ignore[assignment]


class FakeClientFactory(ClientExtensionFactory):
    def __init__(
        self,
        name: str,
        request_params: list[ExtensionParameter] | None = None,
        *,
        accept: bool = True,
    ) -> None:
        self._name = ExtensionName(name)
        self.request_params = request_params or []
        self.accept = accept
        self.calls: list[tuple[list[ExtensionParameter], list[Extension]]] = []

    @property
    def name(self) -> ExtensionName:
        return self._name

    def get_request_params(self) -> list[ExtensionParameter]:
        return self.request_params

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        self.calls.append((list(params), list(accepted_extensions)))
        if not self.accept:
            raise NegotiationError("declined")
        return FakeExtension(self.name, params)


class FakeServerFactory(ServerExtensionFactory):
    def __init__(
        self,
        name: str,
        response_params: list[ExtensionParameter] | None = None,
        *,
        accept: bool = True,
    ) -> None:
        self._name = ExtensionName(name)
        self.response_params = response_params
        self.accept = accept
        self.calls: list[tuple[list[ExtensionParameter], list[Extension]]] = []

    @property
    def name(self) -> ExtensionName:
        return self._name

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        self.calls.append((list(params), list(accepted_extensions)))
        if not self.accept:
            raise NegotiationError("declined")
        answer = list(params) if self.response_params is None else self.response_params
        return answer, FakeExtension(self.name, answer)


def wsuri(
    host: str = "example.com",
    port: int = 80,
    *,
    secure: bool = False,
    user_info: tuple[str, str] | None = None,
) -> WebSocketURI:
    return WebSocketURI(secure, host, port, "/chat", user_info)


def request_headers(*extra: tuple[str, str]) -> Headers:
    """A valid request, as the server receives it, plus extra pairs."""
    return Headers(
        [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
            *extra,
        ]
    )


def without(headers: Headers, name: str) -> Headers:
    headers = headers.copy()
    del headers[name]
    return headers


# Keys.


def test_guid() -> None:
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_accept_key_rfc_vector() -> None:
    assert accept_key(KEY) == ACCEPT


def test_generate_key_is_base64_of_16_random_bytes() -> None:
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert generate_key() != key


def test_generated_key_passes_check_request() -> None:
    key = generate_key()
    headers = without(request_headers(), "Sec-WebSocket-Key")
    headers["Sec-WebSocket-Key"] = key
    assert check_request(headers) == key


# Client request.


def test_client_request_headers_minimal() -> None:
    headers = client_request_headers(wsuri(), key=KEY)
    assert list(headers.raw_items()) == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", USER_AGENT),
    ]


def test_client_request_headers_full_order() -> None:
    headers = client_request_headers(
        wsuri("::1", 8080, secure=True, user_info=("user", "pass:word")),
        key=KEY,
        origin="https://example.com",
        extensions=[
            FakeClientFactory("x-foo", [("a", "1"), ("b", None)]),
            FakeClientFactory("x-bar"),
        ],
        subprotocols=["chat", "superchat"],
        extra_headers=[("X-Extra", "1"), ("X-Extra", "2")],
    )
    assert list(headers.raw_items()) == [
        ("Host", "[::1]:8080"),
        ("Authorization", "Basic dXNlcjpwYXNzOndvcmQ="),
        ("Origin", "https://example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Extensions", "x-foo; a=1; b, x-bar"),
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("X-Extra", "1"),
        ("X-Extra", "2"),
        ("User-Agent", USER_AGENT),
    ]


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 8765, False, "example.com:8765"),
        ("::1", 443, True, "[::1]"),
        ("::1", 8765, False, "[::1]:8765"),
    ],
)
def test_client_request_headers_host(
    host: str, port: int, secure: bool, expected: str
) -> None:
    headers = client_request_headers(wsuri(host, port, secure=secure), key=KEY)
    assert headers["Host"] == expected


def test_client_request_headers_empty_offers_send_nothing() -> None:
    headers = client_request_headers(wsuri(), key=KEY, extensions=[], subprotocols=[])
    assert "Sec-WebSocket-Extensions" not in headers
    assert "Sec-WebSocket-Protocol" not in headers


def test_client_request_headers_default_extension_offer() -> None:
    factory = FakeClientFactory(
        "permessage-deflate", [("client_max_window_bits", None)]
    )
    headers = client_request_headers(wsuri(), key=KEY, extensions=[factory])
    assert headers["Sec-WebSocket-Extensions"] == (
        "permessage-deflate; client_max_window_bits"
    )


@pytest.mark.parametrize(
    "extra",
    [
        Headers([("X-A", "1"), ("x-a", "2"), ("X-B", "3")]),
        [("X-A", "1"), ("x-a", "2"), ("X-B", "3")],
        iter([("X-A", "1"), ("x-a", "2"), ("X-B", "3")]),
    ],
)
def test_client_request_headers_extra_headers_keep_repeats(extra: HeadersLike) -> None:
    headers = client_request_headers(wsuri(), key=KEY, extra_headers=extra)
    assert list(headers.raw_items())[5:] == [
        ("X-A", "1"),
        ("x-a", "2"),
        ("X-B", "3"),
        ("User-Agent", USER_AGENT),
    ]


class PairsWithKeys(list[tuple[str, str]]):
    """A list of pairs that also has keys(), which must not be used."""

    def keys(self) -> list[str]:
        return ["Wrong"]


def test_client_request_headers_extra_pairs_with_keys_are_iterated() -> None:
    extra = PairsWithKeys([("X-A", "1"), ("X-A", "2")])
    headers = client_request_headers(wsuri(), key=KEY, extra_headers=extra)
    assert headers.get_all("X-A") == ["1", "2"]
    assert "Wrong" not in headers


def test_client_request_headers_extra_headers_mapping() -> None:
    headers = client_request_headers(
        wsuri(), key=KEY, extra_headers={"X-A": "1", "Cookie": "c=1"}
    )
    assert list(headers.raw_items())[5:] == [
        ("X-A", "1"),
        ("Cookie", "c=1"),
        ("User-Agent", USER_AGENT),
    ]


def test_client_request_headers_user_agent_from_extra_headers() -> None:
    headers = client_request_headers(
        wsuri(), key=KEY, extra_headers=[("user-agent", "mine/1.0")]
    )
    assert headers.get_all("User-Agent") == ["mine/1.0"]


def test_client_request_headers_custom_user_agent() -> None:
    headers = client_request_headers(wsuri(), key=KEY, user_agent="mine/2.0")
    assert headers.get_all("User-Agent") == ["mine/2.0"]


def test_client_request_headers_no_user_agent() -> None:
    headers = client_request_headers(wsuri(), key=KEY, user_agent=None)
    assert "User-Agent" not in headers


def test_client_request_headers_refuse_colon_in_username() -> None:
    with pytest.raises(ValueError):
        client_request_headers(wsuri(user_info=("a:b", "c")), key=KEY)


# Client check of the response.


def response_headers(*extra: tuple[str, str]) -> Headers:
    return Headers(
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", ACCEPT),
            *extra,
        ]
    )


def test_check_response_valid() -> None:
    check_response(response_headers(), KEY)


def test_check_response_of_server_response_headers() -> None:
    key = generate_key()
    check_response(server_response_headers(key), key)


@pytest.mark.parametrize(
    "pairs",
    [
        [("Connection", "upgrade"), ("Upgrade", "WebSocket")],
        [("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")],
        [
            ("Connection", "keep-alive"),
            ("Connection", "UPGRADE"),
            ("Upgrade", "Websocket"),
        ],
        [("Connection", ",,Upgrade,,"), ("Upgrade", " , websocket ,")],
    ],
)
def test_check_response_connection_and_upgrade_variants(
    pairs: list[tuple[str, str]],
) -> None:
    headers = Headers([*pairs, ("Sec-WebSocket-Accept", ACCEPT)])
    check_response(headers, KEY)


@pytest.mark.parametrize(
    ("pairs", "name", "value", "message"),
    [
        ([("Upgrade", "websocket")], "Connection", None, "missing Connection header"),
        (
            [("Connection", "keep-alive"), ("Upgrade", "websocket")],
            "Connection",
            "keep-alive",
            "invalid Connection header: keep-alive",
        ),
        (
            [("Connection", "close"), ("Connection", "keep-alive")],
            "Connection",
            "close, keep-alive",
            "invalid Connection header: close, keep-alive",
        ),
        ([("Connection", "Upgrade")], "Upgrade", None, "missing Upgrade header"),
        (
            [("Connection", "Upgrade"), ("Upgrade", "h2c")],
            "Upgrade",
            "h2c",
            "invalid Upgrade header: h2c",
        ),
        (
            [("Connection", "Upgrade"), ("Upgrade", "websocket, h2c")],
            "Upgrade",
            "websocket, h2c",
            "invalid Upgrade header: websocket, h2c",
        ),
        (
            [
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Upgrade", "websocket"),
            ],
            "Upgrade",
            "websocket, websocket",
            "invalid Upgrade header: websocket, websocket",
        ),
        (
            [("Connection", "Upgrade"), ("Upgrade", "websocket/13")],
            "Upgrade",
            "websocket/13",
            "invalid Upgrade header: websocket/13",
        ),
    ],
)
def test_check_response_invalid_upgrade(
    pairs: list[tuple[str, str]], name: str, value: str | None, message: str
) -> None:
    headers = Headers([*pairs, ("Sec-WebSocket-Accept", ACCEPT)])
    with pytest.raises(InvalidUpgrade) as exc_info:
        check_response(headers, KEY)
    assert exc_info.value.name == name
    assert exc_info.value.value == value
    assert str(exc_info.value) == message


@pytest.mark.parametrize(
    ("name", "value"), [("Connection", "Up grade"), ("Upgrade", "web socket")]
)
def test_check_response_malformed_upgrade(name: str, value: str) -> None:
    headers = without(response_headers(), name)
    headers[name] = value
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        check_response(headers, KEY)
    assert exc_info.value.name == name


def test_check_response_missing_accept() -> None:
    with pytest.raises(InvalidHeader) as exc_info:
        check_response(without(response_headers(), "Sec-WebSocket-Accept"), KEY)
    assert type(exc_info.value) is InvalidHeader
    assert str(exc_info.value) == "missing Sec-WebSocket-Accept header"


def test_check_response_repeated_accept() -> None:
    headers = response_headers(("Sec-WebSocket-Accept", ACCEPT))
    with pytest.raises(InvalidHeader) as exc_info:
        check_response(headers, KEY)
    assert type(exc_info.value) is InvalidHeader
    assert exc_info.value.name == "Sec-WebSocket-Accept"
    assert exc_info.value.value == "more than one Sec-WebSocket-Accept header found"


@pytest.mark.parametrize("value", ["", "wrong", ACCEPT.lower(), accept_key("other")])
def test_check_response_wrong_accept(value: str) -> None:
    headers = without(response_headers(), "Sec-WebSocket-Accept")
    headers["Sec-WebSocket-Accept"] = value
    with pytest.raises(InvalidHeaderValue) as exc_info:
        check_response(headers, KEY)
    assert exc_info.value.name == "Sec-WebSocket-Accept"
    assert exc_info.value.value == value


# Client: extensions in the response.


def test_client_process_extensions_none() -> None:
    factory = FakeClientFactory("x-foo")
    assert client_process_extensions(response_headers(), [factory]) == []
    assert client_process_extensions(response_headers(), None) == []
    assert factory.calls == []


@pytest.mark.parametrize("available", [None, []])
def test_client_process_extensions_none_offered(
    available: list[ClientExtensionFactory] | None,
) -> None:
    headers = response_headers(("Sec-WebSocket-Extensions", "x-foo"))
    with pytest.raises(InvalidHandshake) as exc_info:
        client_process_extensions(headers, available)
    assert type(exc_info.value) is InvalidHandshake
    assert str(exc_info.value) == "no extensions supported"


def test_client_process_extensions_accepts_in_answer_order() -> None:
    foo = FakeClientFactory("x-foo")
    bar = FakeClientFactory("x-bar")
    headers = response_headers(
        ("Sec-WebSocket-Extensions", "x-bar; a=1"),
        ("Sec-WebSocket-Extensions", "x-foo, x-bar; b"),
    )
    extensions = client_process_extensions(headers, [foo, bar])
    assert extensions == [
        FakeExtension("x-bar", [("a", "1")]),
        FakeExtension("x-foo", []),
        FakeExtension("x-bar", [("b", None)]),
    ]
    # Each factory saw the extensions accepted before it.
    assert foo.calls == [([], extensions[:1])]
    assert bar.calls == [([("a", "1")], []), ([("b", None)], extensions[:2])]


def test_client_process_extensions_tries_next_factory_with_same_name() -> None:
    first = FakeClientFactory("x-foo", accept=False)
    other = FakeClientFactory("x-other")
    second = FakeClientFactory("x-foo")
    headers = response_headers(("Sec-WebSocket-Extensions", "x-foo; a"))
    extensions = client_process_extensions(headers, [first, other, second])
    assert extensions == [FakeExtension("x-foo", [("a", None)])]
    assert first.calls == [([("a", None)], [])]
    assert other.calls == []
    assert second.calls == [([("a", None)], [])]


@pytest.mark.parametrize(
    ("factories", "message"),
    [
        (
            [FakeClientFactory("x-foo", accept=False)],
            "Unsupported extension: name = x-foo, params = [('a', '1')]",
        ),
        (
            [FakeClientFactory("x-bar")],
            "Unsupported extension: name = x-foo, params = [('a', '1')]",
        ),
    ],
)
def test_client_process_extensions_unsupported(
    factories: list[ClientExtensionFactory], message: str
) -> None:
    headers = response_headers(("Sec-WebSocket-Extensions", "x-foo; a=1"))
    with pytest.raises(NegotiationError) as exc_info:
        client_process_extensions(headers, factories)
    assert type(exc_info.value) is NegotiationError
    assert str(exc_info.value) == message


def test_client_process_extensions_answer_accepted_twice() -> None:
    class Once(FakeClientFactory):
        def process_response_params(
            self,
            params: Sequence[ExtensionParameter],
            accepted_extensions: Sequence[Extension],
        ) -> Extension:
            if any(ext.name == self.name for ext in accepted_extensions):
                raise NegotiationError("already accepted")
            return super().process_response_params(params, accepted_extensions)

    headers = response_headers(("Sec-WebSocket-Extensions", "x-foo, x-foo"))
    with pytest.raises(NegotiationError, match="Unsupported extension: name = x-foo"):
        client_process_extensions(headers, [Once("x-foo")])


def test_client_process_extensions_malformed() -> None:
    headers = response_headers(("Sec-WebSocket-Extensions", "x-foo;;"))
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        client_process_extensions(headers, [FakeClientFactory("x-foo")])
    assert exc_info.value.name == "Sec-WebSocket-Extensions"


# Client: subprotocol in the response.


@pytest.mark.parametrize("available", [None, [], ["chat"]])
def test_client_process_subprotocol_absent(available: list[str] | None) -> None:
    assert client_process_subprotocol(response_headers(), available) is None


def test_client_process_subprotocol_chosen() -> None:
    headers = response_headers(("Sec-WebSocket-Protocol", "superchat"))
    subprotocol = client_process_subprotocol(headers, ["chat", "superchat"])
    assert subprotocol == "superchat"


@pytest.mark.parametrize("available", [None, []])
def test_client_process_subprotocol_none_offered(available: list[str] | None) -> None:
    headers = response_headers(("Sec-WebSocket-Protocol", "chat"))
    with pytest.raises(InvalidHandshake) as exc_info:
        client_process_subprotocol(headers, available)
    assert type(exc_info.value) is InvalidHandshake
    assert str(exc_info.value) == "no subprotocols supported"


@pytest.mark.parametrize(
    "pairs",
    [
        [("Sec-WebSocket-Protocol", "chat, superchat")],
        [("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Protocol", "superchat")],
    ],
)
def test_client_process_subprotocol_multiple(pairs: list[tuple[str, str]]) -> None:
    headers = response_headers(*pairs)
    with pytest.raises(InvalidHandshake) as exc_info:
        client_process_subprotocol(headers, ["chat", "superchat"])
    assert type(exc_info.value) is InvalidHandshake
    assert str(exc_info.value) == "multiple subprotocols: chat, superchat"


def test_client_process_subprotocol_not_offered() -> None:
    headers = response_headers(("Sec-WebSocket-Protocol", "otherchat"))
    with pytest.raises(NegotiationError) as exc_info:
        client_process_subprotocol(headers, ["chat", "superchat"])
    assert str(exc_info.value) == "unsupported subprotocol: otherchat"


def test_client_process_subprotocol_malformed() -> None:
    headers = response_headers(("Sec-WebSocket-Protocol", "chat superchat"))
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        client_process_subprotocol(headers, ["chat"])
    assert exc_info.value.name == "Sec-WebSocket-Protocol"


# Server: check of the request.


def test_check_request_valid() -> None:
    assert check_request(request_headers()) == KEY


def test_check_request_of_client_request_headers() -> None:
    key = generate_key()
    assert check_request(client_request_headers(wsuri(), key=key)) == key


def test_check_request_host_not_checked() -> None:
    assert check_request(without(request_headers(), "Host")) == KEY


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Connection", None, "missing Connection header"),
        ("Connection", "keep-alive", "invalid Connection header: keep-alive"),
        ("Upgrade", None, "missing Upgrade header"),
        ("Upgrade", "h2c", "invalid Upgrade header: h2c"),
        (
            "Upgrade",
            "websocket, websocket",
            "invalid Upgrade header: websocket, websocket",
        ),
    ],
)
def test_check_request_invalid_upgrade(
    name: str, value: str | None, message: str
) -> None:
    headers = without(request_headers(), name)
    if value is not None:
        headers[name] = value
    with pytest.raises(InvalidUpgrade) as exc_info:
        check_request(headers)
    assert str(exc_info.value) == message
    assert error_response_for(exc_info.value).status_code == 426


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Sec-WebSocket-Key", "missing Sec-WebSocket-Key header"),
        ("Sec-WebSocket-Version", "missing Sec-WebSocket-Version header"),
    ],
)
def test_check_request_missing(name: str, message: str) -> None:
    with pytest.raises(InvalidHeader) as exc_info:
        check_request(without(request_headers(), name))
    assert type(exc_info.value) is InvalidHeader
    assert str(exc_info.value) == message
    assert error_response_for(exc_info.value).status_code == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")],
)
def test_check_request_repeated(name: str, value: str) -> None:
    with pytest.raises(InvalidHeader) as exc_info:
        check_request(request_headers((name.lower(), value)))
    assert type(exc_info.value) is InvalidHeader
    assert str(exc_info.value) == (
        f"invalid {name} header: more than one {name} header found"
    )
    assert error_response_for(exc_info.value).status_code == 400


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!",
        "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
        "dGhlIHNhbXBsZSBub25jZQ==\n",
        "dGhlIHNhbXBsZSBub25j ZQ==",
        base64.b64encode(b"\x00" * 15).decode(),
        base64.b64encode(b"\x00" * 17).decode(),
        "dGhlIHNhbXBsZSBub25jZQ\udcff=",  # a non-ASCII byte, surrogate-escaped
        "dGhlIHNhbXBsZSBub25jZQé=",
    ],
)
def test_check_request_invalid_key(key: str) -> None:
    headers = without(request_headers(), "Sec-WebSocket-Key")
    headers["Sec-WebSocket-Key"] = key
    with pytest.raises(InvalidHeaderValue) as exc_info:
        check_request(headers)
    assert exc_info.value.name == "Sec-WebSocket-Key"
    assert exc_info.value.value == key
    assert error_response_for(exc_info.value).status_code == 400


@given(st.text(alphabet=BASE64_CHARS + "=", min_size=20, max_size=26))
def test_check_request_key_as_base64_decides(key: str) -> None:
    # A canonical key is accepted without decoding it; any other string is
    # decoded: both must agree with base64.b64decode on what is 16 bytes.
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        valid = False
    headers = without(request_headers(), "Sec-WebSocket-Key")
    headers["Sec-WebSocket-Key"] = key
    if valid:
        assert check_request(headers) == key
    else:
        with pytest.raises(InvalidHeaderValue):
            check_request(headers)


@pytest.mark.parametrize(
    "key",
    [
        KEY,
        base64.b64encode(b"\xff" * 16).decode(),
        # The last character carries bits past the 16 bytes: not canonical,
        # but base64 decodes it to 16 bytes, so it is accepted, as in 8.1.
        "dGhlIHNhbXBsZSBub25jZR==",
    ],
)
def test_check_request_valid_keys(key: str) -> None:
    headers = without(request_headers(), "Sec-WebSocket-Key")
    headers["Sec-WebSocket-Key"] = key
    assert check_request(headers) == key


@pytest.mark.parametrize(
    "values",
    [
        ["Upgrade"],
        ["upgrade"],
        ["keep-alive, Upgrade"],
        ["Keep-Alive, upgrade"],
        ["Upgrade, keep-alive"],
        ["keep-alive", "Upgrade"],
        [" Upgrade "],
    ],
)
def test_check_request_connection_with_upgrade(values: list[str]) -> None:
    headers = without(request_headers(), "Connection")
    for value in values:
        headers["Connection"] = value
    assert check_request(headers) == KEY


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["Upgrade", "a b"], "expected comma at 2 in a b"),
        (["Upgrade;"], "expected comma at 7 in Upgrade;"),
    ],
)
def test_check_request_connection_malformed_beside_upgrade(
    values: list[str], message: str
) -> None:
    headers = without(request_headers(), "Connection")
    for value in values:
        headers["Connection"] = value
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        check_request(headers)
    assert exc_info.value.value == message


def test_error_response_escapes_bytes_from_the_peer() -> None:
    key = "abc\udcff"  # byte 0xff in a header value, as http11 decodes it
    response = error_response_for(InvalidHeaderValue("Sec-WebSocket-Key", key))
    assert response.body == (
        b"Failed to open a WebSocket connection: "
        b"invalid Sec-WebSocket-Key header: abc\\udcff.\n"
    )


def test_reject_response_str_body_with_surrogate_escapes() -> None:
    response = reject_response(400, "abc\udcff")
    assert response.body == b"abc\xff"


@pytest.mark.parametrize("version", ["", "8", "42", "13, 8", " 13"])
def test_check_request_invalid_version(version: str) -> None:
    headers = without(request_headers(), "Sec-WebSocket-Version")
    headers["Sec-WebSocket-Version"] = version
    with pytest.raises(InvalidHeaderValue) as exc_info:
        check_request(headers)
    assert exc_info.value.name == "Sec-WebSocket-Version"
    assert exc_info.value.value == version
    assert error_response_for(exc_info.value).status_code == 400


def test_check_request_malformed_connection_is_400() -> None:
    headers = without(request_headers(), "Connection")
    headers["Connection"] = "Upgrade;"
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        check_request(headers)
    assert error_response_for(exc_info.value).status_code == 400


# Server: Origin.


@pytest.mark.parametrize(
    ("pairs", "origins", "expected"),
    [
        ([], None, None),
        ([("Origin", "https://a.example")], None, "https://a.example"),
        ([("Origin", "https://a.example")], ["https://a.example"], "https://a.example"),
        (
            [("origin", "https://b.example")],
            ["https://a.example", "https://b.example"],
            "https://b.example",
        ),
        ([], [None], None),
        ([], ["https://a.example", None], None),
    ],
)
def test_process_origin_allowed(
    pairs: list[tuple[str, str]], origins: list[str | None] | None, expected: str | None
) -> None:
    assert process_origin(request_headers(*pairs), origins) == expected


@pytest.mark.parametrize(
    ("pairs", "origins", "message"),
    [
        ([], [], "missing Origin header"),
        ([], ["https://a.example"], "missing Origin header"),
        (
            [("Origin", "https://b.example")],
            ["https://a.example"],
            "invalid Origin header: https://b.example",
        ),
        (
            [("Origin", "https://A.example")],
            ["https://a.example"],
            "invalid Origin header: https://A.example",
        ),
        (
            [("Origin", "https://b.example")],
            [None],
            "invalid Origin header: https://b.example",
        ),
        ([("Origin", "")], [None], "empty Origin header"),
    ],
)
def test_process_origin_forbidden(
    pairs: list[tuple[str, str]], origins: list[str | None], message: str
) -> None:
    with pytest.raises(InvalidOrigin) as exc_info:
        process_origin(request_headers(*pairs), origins)
    assert str(exc_info.value) == message
    assert error_response_for(exc_info.value).status_code == 403


@pytest.mark.parametrize("origins", [None, ["https://a.example"]])
def test_process_origin_repeated(origins: list[str | None] | None) -> None:
    headers = request_headers(
        ("Origin", "https://a.example"), ("Origin", "https://a.example")
    )
    with pytest.raises(InvalidHeader) as exc_info:
        process_origin(headers, origins)
    assert type(exc_info.value) is InvalidHeader
    assert str(exc_info.value) == (
        "invalid Origin header: more than one Origin header found"
    )
    assert error_response_for(exc_info.value).status_code == 400


# Server: extensions.


def test_server_process_extensions_no_offer() -> None:
    factory = FakeServerFactory("x-foo")
    assert server_process_extensions(request_headers(), [factory]) == (None, [])
    assert factory.calls == []


@pytest.mark.parametrize("available", [None, []])
def test_server_process_extensions_nothing_available(
    available: list[ServerExtensionFactory] | None,
) -> None:
    # Without factories the header is not even parsed, as in websockets 8.1.
    headers = request_headers(("Sec-WebSocket-Extensions", "x-foo;;"))
    assert server_process_extensions(headers, available) == (None, [])


def test_server_process_extensions_client_order() -> None:
    foo = FakeServerFactory("x-foo")
    bar = FakeServerFactory("x-bar", [("answer", "1")])
    headers = request_headers(
        ("Sec-WebSocket-Extensions", "x-bar; a=1, x-unknown"),
        ("Sec-WebSocket-Extensions", "x-foo; b"),
    )
    value, extensions = server_process_extensions(headers, [foo, bar])
    assert value == "x-bar; answer=1, x-foo; b"
    assert extensions == [
        FakeExtension("x-bar", [("answer", "1")]),
        FakeExtension("x-foo", [("b", None)]),
    ]
    assert bar.calls == [([("a", "1")], [])]
    assert foo.calls == [([("b", None)], extensions[:1])]


def test_server_process_extensions_first_accepting_factory_wins() -> None:
    declining = FakeServerFactory("x-foo", accept=False)
    first = FakeServerFactory("x-foo", [("by", "first")])
    second = FakeServerFactory("x-foo", [("by", "second")])
    headers = request_headers(("Sec-WebSocket-Extensions", "x-foo"))
    value, extensions = server_process_extensions(headers, [declining, first, second])
    assert value == "x-foo; by=first"
    assert extensions == [FakeExtension("x-foo", [("by", "first")])]
    assert len(declining.calls) == 1
    assert second.calls == []


def test_server_process_extensions_declined_offer_is_skipped() -> None:
    # The first offer is declined; the fallback offer that follows is taken.
    class Picky(FakeServerFactory):
        def process_request_params(
            self,
            params: Sequence[ExtensionParameter],
            accepted_extensions: Sequence[Extension],
        ) -> tuple[list[ExtensionParameter], Extension]:
            if params:
                raise NegotiationError("no parameters, please")
            return super().process_request_params(params, accepted_extensions)

    headers = request_headers(("Sec-WebSocket-Extensions", "x-foo; a=1, x-foo"))
    value, extensions = server_process_extensions(headers, [Picky("x-foo")])
    assert value == "x-foo"
    assert extensions == [FakeExtension("x-foo", [])]


def test_server_process_extensions_all_declined() -> None:
    factory = FakeServerFactory("x-foo", accept=False)
    headers = request_headers(("Sec-WebSocket-Extensions", "x-foo, x-foo; a"))
    assert server_process_extensions(headers, [factory]) == (None, [])
    assert len(factory.calls) == 2


def test_server_process_extensions_no_matching_name() -> None:
    factory = FakeServerFactory("x-bar")
    headers = request_headers(("Sec-WebSocket-Extensions", "x-foo"))
    assert server_process_extensions(headers, [factory]) == (None, [])
    assert factory.calls == []


def test_server_process_extensions_malformed() -> None:
    headers = request_headers(("Sec-WebSocket-Extensions", 'x-foo; a="1 2"'))
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        server_process_extensions(headers, [FakeServerFactory("x-foo")])
    assert exc_info.value.name == "Sec-WebSocket-Extensions"
    assert error_response_for(exc_info.value).status_code == 400


# Server: subprotocol.


@pytest.mark.parametrize(
    ("client", "server", "expected"),
    [
        (["chat"], ["chat"], "chat"),
        (["a", "b"], ["b", "a"], "a"),  # tie (1 = 0 + 1 = 1 + 0): client order
        (["b", "a"], ["a", "b"], "b"),  # tie: client order
        (["a", "b", "c"], ["c", "b"], "b"),  # b: 1 + 1 = c: 2 + 0; client order
        (["x", "y", "c"], ["c"], "c"),
        (["a", "b"], ["c", "d"], None),
        ([], ["a"], None),
        (["a"], [], None),
        (["a", "a", "b"], ["b", "a"], "a"),  # first positions count
        (["x", "a"], ["a", "x", "x"], "x"),  # x: 0 + 1 = a: 1 + 0; client order
        (["c", "b", "a"], ["a", "b", "c"], "c"),  # all 2; client order
        (["a", "b", "c"], ["c", "x", "b"], "c"),  # c: 2 + 0 < b: 1 + 2
    ],
)
def test_default_select_subprotocol(
    client: list[str], server: list[str], expected: str | None
) -> None:
    assert default_select_subprotocol(client, server) == expected


def test_server_process_subprotocol_default() -> None:
    headers = request_headers(("Sec-WebSocket-Protocol", "chat, superchat"))
    assert server_process_subprotocol(headers, ["superchat", "chat"]) == "chat"


@pytest.mark.parametrize(
    ("pairs", "available"),
    [
        ([], ["chat"]),
        ([("Sec-WebSocket-Protocol", "chat")], None),
        ([("Sec-WebSocket-Protocol", "chat")], []),
        ([("Sec-WebSocket-Protocol", "chat superchat")], None),  # not parsed
    ],
)
def test_server_process_subprotocol_select_not_called(
    pairs: list[tuple[str, str]], available: list[str] | None
) -> None:
    def select(client: Sequence[str], server: Sequence[str]) -> str | None:
        raise AssertionError("select must not be called")  # pragma: no cover

    headers = request_headers(*pairs)
    assert server_process_subprotocol(headers, available, select) is None


def test_server_process_subprotocol_custom_select() -> None:
    calls: list[tuple[list[str], list[str]]] = []

    def select(client: Sequence[str], server: Sequence[str]) -> str | None:
        calls.append((list(client), list(server)))
        return "unchecked"

    headers = request_headers(
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Protocol", "other"),
    )
    assert server_process_subprotocol(headers, ["other"], select) == "unchecked"
    assert calls == [(["chat", "superchat", "other"], ["other"])]


def test_server_process_subprotocol_select_returns_none() -> None:
    headers = request_headers(("Sec-WebSocket-Protocol", "chat"))
    assert server_process_subprotocol(headers, ["chat"], lambda c, s: None) is None


def test_server_process_subprotocol_no_match() -> None:
    headers = request_headers(("Sec-WebSocket-Protocol", "chat"))
    assert server_process_subprotocol(headers, ["superchat"]) is None


def test_server_process_subprotocol_malformed() -> None:
    headers = request_headers(("Sec-WebSocket-Protocol", "chat;"))
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        server_process_subprotocol(headers, ["chat"])
    assert exc_info.value.name == "Sec-WebSocket-Protocol"


# Server: 101 response.


def test_server_response_headers_minimal() -> None:
    headers = server_response_headers(KEY)
    assert list(headers.raw_items()) == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
        ("Server", USER_AGENT),
    ]


def test_server_response_headers_full_order() -> None:
    headers = server_response_headers(
        KEY,
        extensions_header="permessage-deflate",
        subprotocol=Subprotocol("chat"),
        extra_headers=Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]),
        date=DATE,
    )
    assert list(headers.raw_items()) == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
        ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ("Sec-WebSocket-Protocol", "chat"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Date", DATE),
        ("Server", USER_AGENT),
    ]


def test_server_response_headers_extra_headers_set_date_and_server() -> None:
    headers = server_response_headers(
        KEY,
        extra_headers={"date": "yesterday", "SERVER": "mine"},
        date=DATE,
    )
    assert list(headers.raw_items())[3:] == [("date", "yesterday"), ("SERVER", "mine")]


def test_server_response_headers_without_server() -> None:
    headers = server_response_headers(KEY, server=None, date=DATE)
    assert "Server" not in headers
    assert headers["Date"] == DATE


def test_server_response_headers_custom_server() -> None:
    headers = server_response_headers(KEY, server="mine/1.0")
    assert headers.get_all("Server") == ["mine/1.0"]


# Rejections.


def test_reject_response_defaults() -> None:
    response = reject_response(http.HTTPStatus.NOT_FOUND, b"Not here.\n")
    assert isinstance(response, Response)
    assert response.status_code == 404
    assert response.reason_phrase == "Not Found"
    assert response.body == b"Not here.\n"
    assert list(response.headers.raw_items()) == [
        ("Server", USER_AGENT),
        ("Content-Length", "10"),
        ("Content-Type", "text/plain"),
        ("Connection", "close"),
    ]


def test_reject_response_int_status_and_str_body() -> None:
    response = reject_response(401, "caf\u00e9\n", date=DATE)
    assert response.status_code == 401
    assert response.reason_phrase == "Unauthorized"
    assert response.body == "caf\u00e9\n".encode()
    assert response.headers["Content-Length"] == "6"
    assert response.headers["Date"] == DATE


def test_reject_response_empty_body_still_typed() -> None:
    response = reject_response(204, b"", server=None)
    assert list(response.headers.raw_items()) == [
        ("Content-Length", "0"),
        ("Content-Type", "text/plain"),
        ("Connection", "close"),
    ]


def test_reject_response_given_headers_come_first_and_win() -> None:
    response = reject_response(
        http.HTTPStatus.OK,
        b"{}",
        [
            ("Content-Type", "application/json"),
            ("server", "mine"),
            ("date", "yesterday"),
            ("X-A", "1"),
            ("X-A", "2"),
        ],
        date=DATE,
    )
    assert list(response.headers.raw_items()) == [
        ("Content-Type", "application/json"),
        ("server", "mine"),
        ("date", "yesterday"),
        ("X-A", "1"),
        ("X-A", "2"),
        ("Content-Length", "2"),
        ("Connection", "close"),
    ]


def test_reject_response_keeps_given_length_and_connection() -> None:
    response = reject_response(
        200, b"abc", {"Content-Length": "3", "Connection": "keep-alive"}, server=None
    )
    assert list(response.headers.raw_items()) == [
        ("Content-Length", "3"),
        ("Connection", "keep-alive"),
        ("Content-Type", "text/plain"),
    ]


def test_reject_response_426_has_upgrade() -> None:
    response = reject_response(426, b"x", server=None)
    assert list(response.headers.raw_items()) == [
        ("Upgrade", "websocket"),
        ("Content-Length", "1"),
        ("Content-Type", "text/plain"),
        ("Connection", "close"),
    ]


def test_reject_response_426_keeps_given_upgrade() -> None:
    response = reject_response(426, b"x", [("Upgrade", "WebSocket")], server=None)
    assert response.headers.get_all("Upgrade") == ["WebSocket"]


def test_reject_response_unknown_status() -> None:
    with pytest.raises(ValueError):
        reject_response(599, b"")


def test_reject_response_serializes() -> None:
    response = reject_response(403, b"No.\n", server=None, date=DATE)
    assert response.serialize() == (
        b"HTTP/1.1 403 Forbidden\r\n"
        b"Date: " + DATE.encode() + b"\r\n"
        b"Content-Length: 4\r\n"
        b"Content-Type: text/plain\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"No.\n"
    )


def test_reject_response_accepts_abort_handshake_parts() -> None:
    # What the I/O layer does with a process_request answer.
    abort = AbortHandshake(http.HTTPStatus.OK, [("X-A", "1")], b"OK\n")
    response = reject_response(abort.status, abort.body, abort.headers, server=None)
    assert response.status_code == 200
    assert response.headers["X-A"] == "1"
    assert response.body == b"OK\n"


def test_shutdown_response_body() -> None:
    assert SHUTDOWN_RESPONSE_BODY == b"Server is shutting down.\n"
    response = reject_response(503, SHUTDOWN_RESPONSE_BODY)
    assert response.status_code == 503
    assert response.reason_phrase == "Service Unavailable"


def test_error_response_for_invalid_origin() -> None:
    response = error_response_for(InvalidOrigin("https://evil.example"), date=DATE)
    assert response.status_code == 403
    assert response.body == (
        b"Failed to open a WebSocket connection: "
        b"invalid Origin header: https://evil.example.\n"
    )
    assert response.headers["Date"] == DATE
    assert response.headers["Server"] == USER_AGENT
    assert response.headers["Content-Length"] == str(len(response.body))


def test_error_response_for_invalid_upgrade() -> None:
    response = error_response_for(InvalidUpgrade("Upgrade"), server=None)
    assert response.status_code == 426
    assert response.reason_phrase == "Upgrade Required"
    first, empty, *note = response.body.decode().split("\n")
    assert first == ("Failed to open a WebSocket connection: missing Upgrade header.")
    assert empty == ""
    text = " ".join(note)
    assert "browser" in text
    assert "WebSocket client" in text
    assert response.body.endswith(b"\n")
    assert response.headers["Upgrade"] == "websocket"
    assert "Server" not in response.headers


@pytest.mark.parametrize(
    "exc",
    [
        InvalidHandshake("no good"),
        InvalidHeader("Sec-WebSocket-Key"),
        InvalidHeaderValue("Sec-WebSocket-Version", "8"),
        InvalidHeaderFormat("Connection", "expected token", "", 0),
        NegotiationError("no good"),
    ],
)
def test_error_response_for_other_invalid_handshake(exc: InvalidHandshake) -> None:
    response = error_response_for(exc)
    assert response.status_code == 400
    assert response.reason_phrase == "Bad Request"
    assert response.body == f"Failed to open a WebSocket connection: {exc}.\n".encode()
    assert response.headers["Connection"] == "close"


@pytest.mark.parametrize("exc", [ValueError("secret detail"), KeyboardInterrupt()])
def test_error_response_for_unexpected_error(exc: BaseException) -> None:
    response = error_response_for(exc)
    assert response.status_code == 500
    assert response.reason_phrase == "Internal Server Error"
    lines = response.body.decode().splitlines()
    assert len(lines) == 2
    assert "secret" not in response.body.decode()
    assert "log" in lines[1]


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="tracemalloc is CPython's"
)
def test_server_response_headers_are_small() -> None:
    # A server keeps its 101 response headers as long as the connection.
    # They took about 1.3 KB when Headers kept a dict of lists and a list of
    # tuples; now about 350 bytes (the Headers, two lists sized exactly and
    # the accept key; names and the other values are shared).
    count = 200
    keys = [base64.b64encode(b"%016d" % index).decode() for index in range(count)]
    server_response_headers(keys[0], date=DATE)  # the shared strings
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [server_response_headers(key, date=DATE) for key in keys]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_response = (after - before - sys.getsizeof(kept)) / count
    assert per_response < 450, per_response
    assert kept[7]["Sec-WebSocket-Accept"] == accept_key(keys[7])
