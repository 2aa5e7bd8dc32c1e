"""Tests for anyws.sansio.headers: header grammars and builders."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws._types import ExtensionHeader, ExtensionName
from anyws.exceptions import InvalidHeaderFormat, InvalidHeaderValue
from anyws.sansio import headers as headers_module
from anyws.sansio.headers import (
    build_authorization_basic,
    build_extension,
    build_host,
    build_subprotocol,
    build_www_authenticate_basic,
    parse_authorization_basic,
    parse_connection,
    parse_extension,
    parse_subprotocol,
    parse_upgrade,
    validate_subprotocols,
)

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# Connection.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Upgrade", ["Upgrade"]),
        ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
        ("keep-alive,Upgrade", ["keep-alive", "Upgrade"]),
        (",,\t, ,Upgrade ,,", ["Upgrade"]),
        ("a ,\tb\t, c", ["a", "b", "c"]),
        (" Upgrade", ["Upgrade"]),
        ("Upgrade\t", ["Upgrade"]),
    ],
)
def test_parse_connection(header: str, expected: list[str]) -> None:
    assert parse_connection(header) == expected


@pytest.mark.parametrize(
    ("header", "error", "pos"),
    [
        ("", "expected token", 0),
        (",", "expected token", 1),
        (" , ,", "expected token", 4),
        ("Upgrade keep-alive", "expected comma", 8),
        ("Upgrade;", "expected comma", 7),
        ("Up grade", "expected comma", 3),
        ('"Upgrade"', "expected token", 0),
        ("a,/", "expected token", 2),
    ],
)
def test_parse_connection_invalid(header: str, error: str, pos: int) -> None:
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        parse_connection(header)
    exc = exc_info.value
    assert exc.name == "Connection"
    assert exc.error == error
    assert exc.value == f"{error} at {pos} in {header}"
    assert str(exc) == f"invalid Connection header: {error} at {pos} in {header}"


# Upgrade.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("websocket", ["websocket"]),
        ("WebSocket", ["WebSocket"]),
        ("http/3.0, websocket", ["http/3.0", "websocket"]),
        (
            "HTTP/2.0,SHTTP/1.3, IRC/6.9, RTA/x11",
            ["HTTP/2.0", "SHTTP/1.3", "IRC/6.9", "RTA/x11"],
        ),
        (",,\t, ,websocket ,,", ["websocket"]),
    ],
)
def test_parse_upgrade(header: str, expected: list[str]) -> None:
    assert parse_upgrade(header) == expected


@pytest.mark.parametrize(
    ("header", "error", "pos"),
    [
        ("", "expected protocol", 0),
        ("/1.0", "expected protocol", 0),
        ("http/", "expected comma", 4),
        ("http/1/1", "expected comma", 6),
        ("websocket websocket", "expected comma", 10),
    ],
)
def test_parse_upgrade_invalid(header: str, error: str, pos: int) -> None:
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        parse_upgrade(header)
    assert exc_info.value.name == "Upgrade"
    assert exc_info.value.value == f"{error} at {pos} in {header}"


# Sec-WebSocket-Extensions.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("foo", [("foo", [])]),
        ("foo, bar", [("foo", []), ("bar", [])]),
        (
            'foo; name; token=token; quoted-string="quoted-string"',
            [
                (
                    "foo",
                    [
                        ("name", None),
                        ("token", "token"),
                        ("quoted-string", "quoted-string"),
                    ],
                )
            ],
        ),
        ("foo;a=1;b", [("foo", [("a", "1"), ("b", None)])]),
        ("foo ; a = 1 ;\tb\t", [("foo", [("a", "1"), ("b", None)])]),
        ('foo; a="\\1\\0"', [("foo", [("a", "10")])]),
        (
            "permessage-deflate; client_max_window_bits, permessage-deflate",
            [
                ("permessage-deflate", [("client_max_window_bits", None)]),
                ("permessage-deflate", []),
            ],
        ),
        (",,\t, ,foo; a=1 ,,", [("foo", [("a", "1")])]),
    ],
)
def test_parse_extension(header: str, expected: list[ExtensionHeader]) -> None:
    assert parse_extension(header) == expected


def test_parse_extension_again_gives_the_same_fresh_lists() -> None:
    header = "".join(["permessage-deflate; client_max_window_bits", ", foo; a=1"])
    first = parse_extension(header)
    first[0][1].append(("mutated", None))
    first.append((ExtensionName("added"), []))
    again = parse_extension(header)
    assert again == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("foo", [("a", "1")]),
    ]
    assert again is not first and again[0][1] is not first[0][1]


@pytest.fixture
def parsed_table(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """An empty table of parsed Sec-WebSocket-Extensions values."""
    fresh: dict[str, object] = {}
    monkeypatch.setattr(headers_module, "_EXTENSIONS_PARSED", fresh)
    return fresh


def test_parsed_extensions_table_is_bounded(
    parsed_table: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Peers choose these values: whatever they send, the table stays small.
    monkeypatch.setattr(headers_module, "_PARSED_MAX", 3)
    for index in range(10):
        assert parse_extension(f"x{index}; a={index}") == [
            (f"x{index}", [("a", str(index))])
        ]
        assert len(parsed_table) <= 3
    assert "x9; a=9" in parsed_table
    assert parse_extension("x9; a=9") == [("x9", [("a", "9")])]


def test_long_extension_values_are_not_kept(parsed_table: dict[str, object]) -> None:
    limit = headers_module._PARSED_MAX_LENGTH
    short = "x; a=" + "1" * (limit - 5)
    long = "x; a=" + "1" * (limit - 4)
    assert parse_extension(short) == [("x", [("a", "1" * (limit - 5))])]
    assert parse_extension(long) == [("x", [("a", "1" * (limit - 4))])]
    assert list(parsed_table) == [short]


def test_invalid_extension_values_fail_every_time(
    parsed_table: dict[str, object],
) -> None:
    for _ in range(2):
        with pytest.raises(InvalidHeaderFormat, match="expected comma at 4"):
            parse_extension("foo bar")
    assert parsed_table == {}


@pytest.mark.parametrize(
    ("header", "error", "pos"),
    [
        ("", "expected token", 0),
        (",", "expected token", 1),
        ("foo;", "expected token", 4),
        ("foo; =1", "expected token", 5),
        ("foo; a=", "expected token", 7),
        ("foo; a==1", "expected token", 7),
        ("foo bar", "expected comma", 4),
        ("foo; a=1 2", "expected comma", 9),
        ('foo; a="1', "expected quoted string", 7),
        ('foo; a="\x01"', "expected quoted string", 7),
        ('foo; a="\\\x01"', "expected quoted string", 7),
        ('foo; a="1 2"', "invalid quoted header content", 7),
        ('foo; a=""', "invalid quoted header content", 7),
        ('foo; a="\\""', "invalid quoted header content", 7),
        ('"foo"', "expected token", 0),
    ],
)
def test_parse_extension_invalid(header: str, error: str, pos: int) -> None:
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        parse_extension(header)
    assert exc_info.value.name == "Sec-WebSocket-Extensions"
    assert exc_info.value.value == f"{error} at {pos} in {header}"


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        ([], ""),
        ([("foo", [])], "foo"),
        ([("foo", []), ("bar", [])], "foo, bar"),
        (
            [("permessage-deflate", [("client_max_window_bits", None)])],
            "permessage-deflate; client_max_window_bits",
        ),
        (
            [("foo", [("a", "1"), ("b", None)]), ("bar", [("c", "x")])],
            "foo; a=1; b, bar; c=x",
        ),
    ],
)
def test_build_extension(extensions: list[ExtensionHeader], expected: str) -> None:
    assert build_extension(extensions) == expected


@pytest.mark.parametrize(
    "extensions",
    [
        [("foo bar", [])],
        [("", [])],
        [("foo", [("a b", None)])],
        [("foo", [("a", "1 2")])],
        [("foo", [("a", "")])],
        [("foo", [("a", "1\r\nX-Evil: 1")])],
    ],
)
def test_build_extension_refuses_non_tokens(extensions: list[ExtensionHeader]) -> None:
    with pytest.raises(ValueError, match="is not a token"):
        build_extension(extensions)


tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
extension_lists = st.lists(
    st.tuples(
        tokens.map(ExtensionName),
        st.lists(st.tuples(tokens, st.none() | tokens), max_size=4),
    ),
    min_size=1,
    max_size=4,
)


@given(extension_lists)
def test_extension_round_trip(extensions: list[ExtensionHeader]) -> None:
    assert parse_extension(build_extension(extensions)) == extensions


@given(extension_lists, st.sampled_from(["", " ", "\t", " \t "]))
def test_extension_round_trip_with_whitespace(
    extensions: list[ExtensionHeader], ows: str
) -> None:
    header = f"{ows},{ows}".join(
        f"{ows};{ows}".join(
            [name]
            + [
                param if value is None else f'{param}{ows}={ows}"{value}"'
                for param, value in params
            ]
        )
        for name, params in extensions
    )
    parsed = parse_extension(header)
    assert parsed == extensions
    assert parse_extension(build_extension(parsed)) == extensions


# Sec-WebSocket-Protocol.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("chat", ["chat"]),
        ("chat, superchat", ["chat", "superchat"]),
        ("chat,superchat", ["chat", "superchat"]),
        (",,\t, ,chat ,,", ["chat"]),
    ],
)
def test_parse_subprotocol(header: str, expected: list[str]) -> None:
    assert parse_subprotocol(header) == expected


@pytest.mark.parametrize(
    ("header", "error", "pos"),
    [
        ("", "expected token", 0),
        ("chat superchat", "expected comma", 5),
        ("chat/1", "expected comma", 4),
        ("chat,,?", "expected token", 6),
    ],
)
def test_parse_subprotocol_invalid(header: str, error: str, pos: int) -> None:
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        parse_subprotocol(header)
    assert exc_info.value.name == "Sec-WebSocket-Protocol"
    assert exc_info.value.value == f"{error} at {pos} in {header}"


def test_build_subprotocol() -> None:
    assert build_subprotocol(["chat"]) == "chat"
    assert build_subprotocol(["chat", "superchat"]) == "chat, superchat"


@given(st.lists(tokens, min_size=1, max_size=5))
def test_subprotocol_round_trip(subprotocols: list[str]) -> None:
    assert parse_subprotocol(build_subprotocol(subprotocols)) == subprotocols


@pytest.mark.parametrize(
    "subprotocols", [None, [], (), ["chat"], ("chat", "v2.json"), iter(["x"])]
)
def test_validate_subprotocols_accepts(subprotocols: object) -> None:
    validate_subprotocols(subprotocols)


@pytest.mark.parametrize(
    ("subprotocols", "message"),
    [
        ("chat", "subprotocols must be a list of str, not 'chat'"),
        (b"chat", "subprotocols must be a list of str, not b'chat'"),
        (42, "subprotocols must be a list of str, not 42"),
        (["chat", 1], "subprotocols must be str, not 1"),
        ([b"chat"], "subprotocols must be str, not b'chat'"),
    ],
)
def test_validate_subprotocols_type_error(subprotocols: object, message: str) -> None:
    with pytest.raises(TypeError) as exc_info:
        validate_subprotocols(subprotocols)
    assert str(exc_info.value) == message


@pytest.mark.parametrize("item", ["", "a b", "chat,superchat", "é", "a\r\n"])
def test_validate_subprotocols_value_error(item: str) -> None:
    with pytest.raises(ValueError) as exc_info:
        validate_subprotocols(["chat", item])
    assert str(exc_info.value) == f"invalid subprotocol: {item!r} is not a token"


# Host.


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("example.com", 80, True, "example.com:80"),
        ("example.com", 8080, False, "example.com:8080"),
        ("127.0.0.1", 8765, True, "127.0.0.1:8765"),
        ("::1", 80, False, "[::1]"),
        ("::1", 8080, False, "[::1]:8080"),
        ("2001:db8::1", 443, True, "[2001:db8::1]"),
        ("[::1]", 8080, False, "[::1]:8080"),
    ],
)
def test_build_host(host: str, port: int, secure: bool, expected: str) -> None:
    assert build_host(host, port, secure) == expected


# Basic auth.


@pytest.mark.parametrize(
    ("realm", "expected"),
    [
        ("foo", 'Basic realm="foo", charset="UTF-8"'),
        ("my realm", 'Basic realm="my realm", charset="UTF-8"'),
        ('say "hi"', 'Basic realm="say \\"hi\\"", charset="UTF-8"'),
        ("back\\slash", 'Basic realm="back\\\\slash", charset="UTF-8"'),
        ("tab\there", 'Basic realm="tab\there", charset="UTF-8"'),
        ("café", 'Basic realm="café", charset="UTF-8"'),
        ("", 'Basic realm="", charset="UTF-8"'),
    ],
)
def test_build_www_authenticate_basic(realm: str, expected: str) -> None:
    assert build_www_authenticate_basic(realm) == expected


@pytest.mark.parametrize("realm", ["\x00", "a\r\nb", "\x7f", "€"])
def test_build_www_authenticate_basic_invalid(realm: str) -> None:
    with pytest.raises(ValueError, match="invalid characters for a quoted string"):
        build_www_authenticate_basic(realm)


def _basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic(b"Aladdin:open sesame"), ("Aladdin", "open sesame")),
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ("Aladdin", "open sesame")),
        ("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ("Aladdin", "open sesame")),
        ("BASIC   QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ("Aladdin", "open sesame")),
        (_basic(b"user:pass:word"), ("user", "pass:word")),
        (_basic(b":"), ("", "")),
        (_basic("t\u00e9st:p\u00e4ss".encode()), ("t\u00e9st", "p\u00e4ss")),
    ],
)
def test_parse_authorization_basic(header: str, expected: tuple[str, str]) -> None:
    assert parse_authorization_basic(header) == expected


@pytest.mark.parametrize(
    ("header", "error", "pos"),
    [
        ("", "expected token", 0),
        (" Basic abc=", "expected token", 0),
        ("Basic", "expected space after scheme", 5),
        ("Basic\tYTpi", "expected space after scheme", 5),
        ("Basic ", "expected token68", 6),
        ("Basic ?", "expected token68", 6),
        ("Basic YTpi YTpi", "expected end of header", 10),
        ("Basic YTpi=a", "expected end of header", 11),
        ("Basic YTpi ", "expected end of header", 10),
    ],
)
def test_parse_authorization_basic_invalid_format(
    header: str, error: str, pos: int
) -> None:
    with pytest.raises(InvalidHeaderFormat) as exc_info:
        parse_authorization_basic(header)
    assert exc_info.value.name == "Authorization"
    assert exc_info.value.value == f"{error} at {pos} in {header}"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Bearer abc", "unsupported scheme: Bearer"),
        ("Digest username=x", "unsupported scheme: Digest"),
        ("Basically YTpi", "unsupported scheme: Basically"),
        ("Basic YTp", "expected base64-encoded UTF-8 credentials"),
        ("Basic YT-i", "expected base64-encoded UTF-8 credentials"),
        (_basic(b"\xff:\xfe"), "expected base64-encoded UTF-8 credentials"),
        (_basic(b"no colon"), "expected username:password credentials"),
    ],
)
def test_parse_authorization_basic_invalid_value(header: str, value: str) -> None:
    with pytest.raises(InvalidHeaderValue) as exc_info:
        parse_authorization_basic(header)
    assert not isinstance(exc_info.value, InvalidHeaderFormat)
    assert exc_info.value.name == "Authorization"
    assert exc_info.value.value == value


def test_build_authorization_basic() -> None:
    # RFC 7617 section 2.
    assert (
        build_authorization_basic("Aladdin", "open sesame")
        == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    )
    # RFC 7617 section 2.1: UTF-8.
    assert build_authorization_basic("test", "123\u00a3") == "Basic dGVzdDoxMjPCow=="


def test_build_authorization_basic_colon_in_username() -> None:
    with pytest.raises(ValueError, match="cannot contain ':'"):
        build_authorization_basic("user:name", "password")


def test_build_authorization_basic_colon_in_password() -> None:
    header = build_authorization_basic("user", "pass:word")
    assert parse_authorization_basic(header) == ("user", "pass:word")


# Lone surrogates have no UTF-8 encoding: leave them out.
unicode_text = st.text(st.characters(exclude_categories=["Cs"]))


@given(unicode_text.filter(lambda s: ":" not in s), unicode_text)
def test_authorization_basic_round_trip(username: str, password: str) -> None:
    header = build_authorization_basic(username, password)
    assert parse_authorization_basic(header) == (username, password)
