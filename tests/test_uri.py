"""Tests for anyws.uri: parse_uri and resolve_location."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws.exceptions import InvalidURI
from anyws.uri import WebSocketURI, parse_uri, resolve_location

VALID_URIS = [
    # The examples of the contract.
    ("ws://localhost/", (False, "localhost", 80, "/", None)),
    ("wss://localhost/", (True, "localhost", 443, "/", None)),
    ("WS://LOCALHOST/PATH?QUERY", (False, "localhost", 80, "/PATH?QUERY", None)),
    ("ws://user:pass@localhost/", (False, "localhost", 80, "/", ("user", "pass"))),
    # Scheme case, ports.
    ("Wss://localhost/", (True, "localhost", 443, "/", None)),
    ("ws://localhost", (False, "localhost", 80, "/", None)),
    ("ws://localhost:8765", (False, "localhost", 8765, "/", None)),
    ("ws://localhost:443/", (False, "localhost", 443, "/", None)),
    ("wss://localhost:80/", (True, "localhost", 80, "/", None)),
    ("wss://localhost:/", (True, "localhost", 443, "/", None)),
    ("ws://localhost:65535/", (False, "localhost", 65535, "/", None)),
    # Hosts.
    ("ws://Example.COM/", (False, "example.com", 80, "/", None)),
    ("ws://127.0.0.1:8000/", (False, "127.0.0.1", 8000, "/", None)),
    ("ws://[::1]/", (False, "::1", 80, "/", None)),
    ("wss://[::1]:8443/x", (True, "::1", 8443, "/x", None)),
    ("ws://[FE80::1]/", (False, "fe80::1", 80, "/", None)),
    ("ws://host_name.example./", (False, "host_name.example.", 80, "/", None)),
    # Resource names: case and percent-escapes kept, query appended.
    ("ws://h/a/B/c.txt", (False, "h", 80, "/a/B/c.txt", None)),
    ("ws://h?x=1", (False, "h", 80, "/?x=1", None)),
    ("ws://h/?", (False, "h", 80, "/", None)),
    ("ws://h/p?a=1&b=%20&c=?", (False, "h", 80, "/p?a=1&b=%20&c=?", None)),
    ("ws://h/%41%2F%", (False, "h", 80, "/%41%2F%", None)),
    ("ws://h/a;b/c", (False, "h", 80, "/a;b/c", None)),
    ("ws://h/a?b;c", (False, "h", 80, "/a?b;c", None)),
    ("ws://h/[x]|{y}", (False, "h", 80, "/[x]|{y}", None)),
    # Characters that may not appear in a request line are escaped.
    ("ws://h/a b", (False, "h", 80, "/a%20b", None)),
    ("ws://h/a\x00b\x7f", (False, "h", 80, "/a%00b%7F", None)),
    ("ws://h/?q=a b", (False, "h", 80, "/?q=a%20b", None)),
    # urlsplit drops tabs and newlines (WHATWG URL): no header injection.
    ("ws://h/a\r\nX: y", (False, "h", 80, "/aX:%20y", None)),
    # User info: kept as written, not percent-decoded.
    ("ws://u:@h/", (False, "h", 80, "/", ("u", ""))),
    ("ws://:p@h/", (False, "h", 80, "/", ("", "p"))),
    ("ws://u:p:q@h/", (False, "h", 80, "/", ("u", "p:q"))),
    ("ws://u:p%40ss@h/", (False, "h", 80, "/", ("u", "p%40ss"))),
    ("ws://u:p@ss@h/", (False, "h", 80, "/", ("u", "p@ss"))),
    ("wss://u:p@[::1]:9/", (True, "::1", 9, "/", ("u", "p"))),
]


@pytest.mark.parametrize(("uri", "parts"), VALID_URIS)
def test_parse_uri(uri: str, parts: tuple[object, ...]) -> None:
    parsed = parse_uri(uri)
    assert isinstance(parsed, WebSocketURI)
    assert parsed == parts


def test_websocket_uri_fields() -> None:
    parsed = parse_uri("wss://u:p@example.com:8443/path?q")
    assert parsed.secure is True
    assert parsed.host == "example.com"
    assert parsed.port == 8443
    assert parsed.resource_name == "/path?q"
    assert parsed.user_info == ("u", "p")
    assert WebSocketURI._fields == (
        "secure",
        "host",
        "port",
        "resource_name",
        "user_info",
    )


IRIS = [
    # RFC 3987 section 3.1: IDNA for the host, UTF-8 percent-encoding elsewhere.
    ("ws://bücher.example/", (False, "xn--bcher-kva.example", 80, "/", None)),
    ("ws://BÜCHER.example/", (False, "xn--bcher-kva.example", 80, "/", None)),
    ("wss://例え.テスト:8443/", (True, "xn--r8jz45g.xn--zckzah", 8443, "/", None)),
    ("ws://ｅｘａｍｐｌｅ.com/", (False, "example.com", 80, "/", None)),
    ("ws://h/päth", (False, "h", 80, "/p%C3%A4th", None)),
    ("ws://h/?q=ü", (False, "h", 80, "/?q=%C3%BC", None)),
    ("ws://h/€/%E2%82%AC", (False, "h", 80, "/%E2%82%AC/%E2%82%AC", None)),
    ("ws://h/🙂", (False, "h", 80, "/%F0%9F%99%82", None)),
    # User info stays text: Basic auth encodes it as UTF-8.
    ("ws://jürgen:paß@h/", (False, "h", 80, "/", ("jürgen", "paß"))),
]


@pytest.mark.parametrize(("iri", "parts"), IRIS)
def test_parse_iri(iri: str, parts: tuple[object, ...]) -> None:
    assert parse_uri(iri) == parts


INVALID_URIS = [
    # The examples of the contract.
    "http://localhost/",
    "https://localhost/",
    "ws://localhost/path#fragment",
    "ws://user@localhost/",
    # Schemes.
    "",
    "localhost",
    "localhost:8765",
    "/path",
    "//localhost/",
    "ftp://localhost/",
    "wss+unix://localhost/",
    # Fragments, even empty ones, and params.
    "ws://localhost/#",
    "ws://localhost#x",
    "ws://localhost/?q#x",
    "ws://localhost/path;params",
    "ws://localhost/a/b;",
    "ws://localhost/;x?y",
    # Hosts.
    "ws://",
    "ws:///path",
    "ws://:8765/",
    "ws:localhost",
    "ws://user:pass@/",
    "ws://exa mple.com/",
    "ws://ex%61mple.com/",
    "ws://a<b/",
    "ws://a\\b/",
    "ws://a\x00b/",
    "ws://[::1/",
    "ws://[example.com]/",
    "ws://[v1.x]/",
    "ws://[1.2.3.4]/",
    "ws://[::1]x/",
    "ws://[::1]x:80/",
    "ws://a[::1]/",
    "ws://u:p@a[::1]:80/",
    "ws://ex\u2100ample.com/",  # NFKC gives "a/c": urlsplit refuses it
    "ws://" + "ü" * 64 + ".example/",  # IDNA label too long
    "ws://ü..example/",  # IDNA empty label
    # Ports.
    "ws://localhost:port/",
    "ws://localhost:-1/",
    "ws://localhost:+1/",
    "ws://localhost:65536/",
    "ws://localhost:80:80/",
    "ws://localhost:٨٠/",
    # User info.
    "ws://@localhost/",
    "ws://user@localhost:8765/",
    # Text that UTF-8 cannot encode.
    "ws://localhost/\udcff",
]


@pytest.mark.parametrize("uri", INVALID_URIS)
def test_parse_invalid_uri(uri: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(uri)
    assert info.value.uri == uri
    assert str(info.value) == f"{uri} isn't a valid URI"
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.msg == str(info.value.__cause__)


@pytest.mark.parametrize(
    ("uri", "msg"),
    [
        ("http://h/", "scheme isn't ws or wss"),
        ("ws://h/#", "fragment identifiers are not allowed"),
        ("ws://h/a;b", "path parameters are not allowed"),
        ("ws://u@h/", "user name without a password"),
        ("ws:///", "no host"),
        ("ws://a b/", "invalid host: 'a b'"),
        ("ws://[::1]x/", "invalid host: '[::1]x'"),
    ],
)
def test_parse_invalid_uri_message(uri: str, msg: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(uri)
    assert info.value.msg == msg


RELATIVE = [
    # RFC 3986 section 5.4 style examples, on a ws base.
    ("ws://h/a/b?q", "/c", "ws://h/c"),
    ("ws://h/a/b?q", "c", "ws://h/a/c"),
    ("ws://h/a/b?q", "../c?d", "ws://h/c?d"),
    ("ws://h/a/b?q", "?x", "ws://h/a/b?x"),
    ("ws://h/a/b?q", "", "ws://h/a/b?q"),
    ("ws://h/a/b?q", "//other:8080/p", "ws://other:8080/p"),
    ("ws://h:81/a", "/b", "ws://h:81/b"),
    ("wss://h:8443/a", "/b", "wss://h:8443/b"),
    ("wss://h:443/a", "/b", "wss://h/b"),
    ("ws://[::1]:8080/a", "/b", "ws://[::1]:8080/b"),
    ("ws://u:p@h/a", "/b", "ws://u:p@h/b"),
    ("ws://bücher.example/ä", "x", "ws://xn--bcher-kva.example/x"),
    ("ws://h/", "/ä", "ws://h/ä"),
    # Absolute locations replace the base.
    ("ws://h/a", "ws://other/b", "ws://other/b"),
    ("ws://h/a", "wss://other/b", "wss://other/b"),
    ("wss://h/a", "ws://other/b", "ws://other/b"),
    ("ws://u:p@h/a", "ws://other/b", "ws://other/b"),
    ("ws://h/a", "WSS://Other/b", "WSS://Other/b"),
]


@pytest.mark.parametrize(("base", "location", "resolved"), RELATIVE)
def test_resolve_location(base: str, location: str, resolved: str) -> None:
    assert resolve_location(base, location) == resolved
    assert resolve_location(parse_uri(base), location) == resolved
    parse_uri(resolved)  # valid


@pytest.mark.parametrize(
    ("location", "resolved"),
    [
        ("http://other/", "http://other/"),
        ("https://other/", "https://other/"),
        ("/b#frag", "ws://h/b#frag"),
        ("b;params", "ws://h/b;params"),
        ("ws://user@other/", "ws://user@other/"),
        ("//:8080/", "ws://:8080/"),
    ],
)
def test_resolve_invalid_location(location: str, resolved: str) -> None:
    with pytest.raises(InvalidURI) as info:
        resolve_location("ws://h/a", location)
    assert info.value.uri == resolved


def test_resolve_location_unparsable() -> None:
    with pytest.raises(InvalidURI) as info:
        resolve_location("ws://h/a", "ws://[::1/")
    assert info.value.uri == "ws://[::1/"
    assert isinstance(info.value.__cause__, ValueError)


def test_resolve_location_invalid_base() -> None:
    with pytest.raises(InvalidURI) as info:
        resolve_location("http://h/", "/a")
    assert info.value.uri == "http://h/"


# Pieces that exercise the parser: delimiters, brackets, escapes, non-ASCII.
uri_pieces = st.sampled_from(
    [
        "ws://",
        "wss://",
        "WS:",
        "/",
        "//",
        ":",
        "@",
        "?",
        "#",
        ";",
        "[",
        "]",
        "%",
        "%41",
        "::1",
        "80",
        "h",
        "ü",
        "€",
        " ",
        "\t",
        "\x00",
        "\\",
        "\udcff",
        "..",
    ]
)
uris = st.one_of(
    st.text(),
    st.lists(st.one_of(uri_pieces, st.text(max_size=3)), max_size=12).map("".join),
)


@given(uri=uris)
def test_parse_uri_results_are_safe(uri: str) -> None:
    """Any text gives InvalidURI or parts that can go in a request as is."""
    try:
        parsed = parse_uri(uri)
    except InvalidURI as exc:
        assert exc.uri == uri
        return
    assert parsed.host and parsed.host.isascii()
    assert parsed.host.isprintable() and " " not in parsed.host
    assert 0 <= parsed.port <= 65535
    assert parsed.resource_name.startswith("/")
    assert all("!" <= char <= "~" for char in parsed.resource_name)
    assert "#" not in parsed.resource_name
    # Parsing what resolve_location rebuilds gives the same parts.
    assert parse_uri(resolve_location(parsed, "")) == parsed
