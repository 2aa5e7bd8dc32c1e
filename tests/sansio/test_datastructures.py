"""Tests for anyws.sansio.datastructures: Headers and MultipleValuesError."""

from __future__ import annotations

import copy
import enum
import pickle
from collections.abc import Iterator, MutableMapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws.sansio import datastructures
from anyws.sansio.datastructures import Headers, MultipleValuesError


@pytest.fixture
def headers() -> Headers:
    return Headers(
        [
            ("Connection", "Upgrade"),
            ("Server", "anyws"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]
    )


class KeysAndGetItem:
    """Not a Mapping, but has what dict.update looks for."""

    def keys(self) -> Iterator[str]:
        return iter(["A", "B"])

    def __getitem__(self, key: str) -> str:
        return key.lower() * 2


# MultipleValuesError.


def test_multiple_values_error_is_a_lookup_error_not_a_key_error() -> None:
    assert issubclass(MultipleValuesError, LookupError)
    assert not issubclass(MultipleValuesError, KeyError)


def test_multiple_values_error_str_is_repr_of_its_argument() -> None:
    assert str(MultipleValuesError("Connection")) == "'Connection'"


def test_multiple_values_error_str_without_argument_is_empty() -> None:
    assert str(MultipleValuesError()) == ""


def test_multiple_values_error_str_with_two_arguments() -> None:
    assert str(MultipleValuesError("a", "b")) == "('a', 'b')"


# Construction and update.


def test_is_a_mutable_mapping() -> None:
    assert isinstance(Headers(), MutableMapping)


def test_empty() -> None:
    h = Headers()
    assert len(h) == 0
    assert list(h.raw_items()) == []
    assert str(h) == "\r\n"


def test_from_pairs_keeps_order_case_and_repeats(headers: Headers) -> None:
    assert list(headers.raw_items()) == [
        ("Connection", "Upgrade"),
        ("Server", "anyws"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


def test_from_dict() -> None:
    h = Headers({"A": "1", "B": "2"})
    assert list(h.raw_items()) == [("A", "1"), ("B", "2")]


def test_from_kwargs() -> None:
    h = Headers(X="1", Y="2")
    assert list(h.raw_items()) == [("X", "1"), ("Y", "2")]


def test_from_pairs_then_kwargs() -> None:
    h = Headers([("A", "1")], B="2")
    assert list(h.raw_items()) == [("A", "1"), ("B", "2")]


def test_from_generator() -> None:
    h = Headers((name, "v") for name in ["A", "B"])
    assert list(h.raw_items()) == [("A", "v"), ("B", "v")]


def test_from_object_with_keys() -> None:
    h = Headers(KeysAndGetItem())
    assert list(h.raw_items()) == [("A", "aa"), ("B", "bb")]


def test_from_headers_with_single_values_reads_it_as_a_mapping() -> None:
    # Mapping iteration yields lower-cased names, so they come out lower-cased,
    # as with websockets 8.1.
    h = Headers(Headers([("Foo", "1"), ("Bar", "2")]))
    assert list(h.raw_items()) == [("foo", "1"), ("bar", "2")]


def test_from_headers_with_repeated_name_raises(headers: Headers) -> None:
    with pytest.raises(MultipleValuesError):
        Headers(headers)


def test_from_raw_items_copies_repeated_names(headers: Headers) -> None:
    assert Headers(headers.raw_items()) == headers


def test_update_appends() -> None:
    h = Headers([("A", "1")])
    h.update({"a": "2"}, B="3")
    assert h.get_all("A") == ["1", "2"]
    assert list(h.raw_items()) == [("A", "1"), ("a", "2"), ("B", "3")]


def test_update_with_nothing() -> None:
    h = Headers([("A", "1")])
    h.update()
    assert list(h.raw_items()) == [("A", "1")]


def test_update_from_headers_with_repeated_name_changes_nothing(
    headers: Headers,
) -> None:
    h = Headers([("A", "1")])
    with pytest.raises(MultipleValuesError):
        h.update(headers)
    assert list(h.raw_items()) == [("A", "1")]


def test_update_with_two_positional_arguments_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Headers().update([], [])  # type: ignore[call-arg]


# Item access.


def test_setitem_appends(headers: Headers) -> None:
    headers["SERVER"] = "other"
    assert headers.get_all("server") == ["anyws", "other"]
    assert list(headers.raw_items())[-1] == ("SERVER", "other")


def test_getitem_is_case_insensitive(headers: Headers) -> None:
    assert headers["connection"] == "Upgrade"
    assert headers["CONNECTION"] == "Upgrade"
    assert headers["Connection"] == "Upgrade"


def test_getitem_missing_raises_key_error(headers: Headers) -> None:
    with pytest.raises(KeyError):
        headers["Upgrade"]


def test_getitem_non_str_raises_key_error(headers: Headers) -> None:
    with pytest.raises(KeyError):
        headers[42]  # type: ignore[index]


def test_getitem_repeated_raises_multiple_values_error(headers: Headers) -> None:
    with pytest.raises(MultipleValuesError) as exc_info:
        headers["Set-Cookie"]
    assert str(exc_info.value) == "'Set-Cookie'"


def test_delitem_removes_every_value_ignoring_case(headers: Headers) -> None:
    del headers["SET-COOKIE"]
    assert "set-cookie" not in headers
    assert list(headers.raw_items()) == [
        ("Connection", "Upgrade"),
        ("Server", "anyws"),
    ]
    assert len(headers) == 2


def test_delitem_missing_raises_key_error(headers: Headers) -> None:
    with pytest.raises(KeyError):
        del headers["Upgrade"]


def test_contains_is_case_insensitive(headers: Headers) -> None:
    assert "connection" in headers
    assert "CONNECTION" in headers
    assert "set-cookie" in headers
    assert "Upgrade" not in headers


def test_contains_non_str_is_false(headers: Headers) -> None:
    keys: list[object] = [42, None, b"Connection"]
    for key in keys:
        assert key not in headers


def test_iter_and_keys_yield_lower_case_names_once(headers: Headers) -> None:
    assert list(headers) == ["connection", "server", "set-cookie"]
    assert list(headers.keys()) == ["connection", "server", "set-cookie"]


def test_keys_follow_first_appearance() -> None:
    h = Headers([("B", "1"), ("A", "2"), ("b", "3")])
    assert list(h) == ["b", "a"]


def test_len_counts_distinct_names(headers: Headers) -> None:
    assert len(headers) == 3


# Inherited Mapping methods keep the same rules.


def test_get(headers: Headers) -> None:
    assert headers.get("SERVER") == "anyws"
    assert headers.get("Upgrade") is None
    assert headers.get("Upgrade", "x") == "x"


def test_get_repeated_raises(headers: Headers) -> None:
    with pytest.raises(MultipleValuesError):
        headers.get("Set-Cookie")


def test_items_and_values_raise_on_repeated_name(headers: Headers) -> None:
    with pytest.raises(MultipleValuesError):
        list(headers.items())
    with pytest.raises(MultipleValuesError):
        list(headers.values())


def test_items_and_values_without_repeats() -> None:
    h = Headers([("A", "1"), ("B", "2")])
    assert list(h.items()) == [("a", "1"), ("b", "2")]
    assert list(h.values()) == ["1", "2"]


def test_setdefault_adds_only_when_missing(headers: Headers) -> None:
    assert headers.setdefault("Server", "other") == "anyws"
    assert headers.get_all("Server") == ["anyws"]
    assert headers.setdefault("Upgrade", "websocket") == "websocket"
    assert headers["upgrade"] == "websocket"


def test_setdefault_repeated_raises(headers: Headers) -> None:
    with pytest.raises(MultipleValuesError):
        headers.setdefault("Set-Cookie", "c=3")
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_pop(headers: Headers) -> None:
    assert headers.pop("SERVER") == "anyws"
    assert "Server" not in headers
    assert headers.pop("Server", None) is None
    with pytest.raises(KeyError):
        headers.pop("Server")


def test_pop_repeated_raises(headers: Headers) -> None:
    with pytest.raises(MultipleValuesError):
        headers.pop("Set-Cookie")
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]


# Multi-value API.


def test_get_all(headers: Headers) -> None:
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert headers.get_all("Server") == ["anyws"]
    assert headers.get_all("Upgrade") == []


def test_get_all_returns_a_copy(headers: Headers) -> None:
    headers.get_all("Server").append("evil")
    assert headers.get_all("Server") == ["anyws"]


def test_raw_items_is_an_iterator(headers: Headers) -> None:
    items = headers.raw_items()
    assert next(items) == ("Connection", "Upgrade")


# Representations and comparison.


def test_str(headers: Headers) -> None:
    assert str(headers) == (
        "Connection: Upgrade\r\n"
        "Server: anyws\r\n"
        "Set-Cookie: a=1\r\n"
        "set-cookie: b=2\r\n"
        "\r\n"
    )


def test_repr(headers: Headers) -> None:
    assert repr(headers) == (
        "Headers([('Connection', 'Upgrade'), ('Server', 'anyws'), "
        "('Set-Cookie', 'a=1'), ('set-cookie', 'b=2')])"
    )


def test_repr_of_subclass() -> None:
    class MyHeaders(Headers):
        pass

    assert repr(MyHeaders([("A", "1")])) == "MyHeaders([('A', '1')])"


def test_eq_same_pairs(headers: Headers) -> None:
    assert headers == Headers(headers.raw_items())


def test_eq_is_case_sensitive() -> None:
    assert Headers([("A", "1")]) != Headers([("a", "1")])


def test_eq_is_order_sensitive() -> None:
    assert Headers([("A", "1"), ("B", "2")]) != Headers([("B", "2"), ("A", "1")])


def test_not_equal_to_non_headers() -> None:
    h = Headers([("a", "1")])
    assert h != {"a": "1"}
    assert h != [("a", "1")]
    assert {"a": "1"} != h
    assert h.__eq__({"a": "1"}) is NotImplemented


def test_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


# copy and clear.


def test_copy_is_equal_and_independent(headers: Headers) -> None:
    copy = headers.copy()
    assert copy == headers
    assert type(copy) is Headers
    copy["Server"] = "other"
    del copy["Connection"]
    assert headers.get_all("Server") == ["anyws"]
    assert headers["Connection"] == "Upgrade"
    assert copy.get_all("Server") == ["anyws", "other"]


def test_copy_of_subclass_keeps_class() -> None:
    class MyHeaders(Headers):
        pass

    assert type(MyHeaders([("A", "1")]).copy()) is MyHeaders


def test_clear(headers: Headers) -> None:
    headers.clear()
    assert len(headers) == 0
    assert list(headers.raw_items()) == []
    assert "Connection" not in headers
    headers["A"] = "1"
    assert list(headers.raw_items()) == [("A", "1")]


# Pickling (with protocol 2 and later, as before the compact layout).


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(headers: Headers, protocol: int) -> None:
    clone = pickle.loads(pickle.dumps(headers, protocol))
    assert clone == headers
    assert clone.get_all("set-cookie") == ["a=1", "b=2"]
    clone["X"] = "1"
    assert "X" in clone
    assert "X" not in headers


def test_deepcopy_is_independent(headers: Headers) -> None:
    clone = copy.deepcopy(headers)
    clone["X"] = "1"
    del clone["Server"]
    assert clone["x"] == "1"
    assert list(headers.raw_items())[:2] == [
        ("Connection", "Upgrade"),
        ("Server", "anyws"),
    ]


# Values that aren't exact str.


class StrToken(str, enum.Enum):
    WEBSOCKET = "websocket"


def test_str_subclass_value_is_kept_as_given() -> None:
    # Upgrade is a header whose values Headers tries to share.
    h = Headers([("Upgrade", StrToken.WEBSOCKET)])
    assert h["upgrade"] is StrToken.WEBSOCKET
    assert h.get_all("UPGRADE") == ["websocket"]


def test_str_subclass_name() -> None:
    h = Headers()
    h[StrToken.WEBSOCKET] = "1"
    assert h["WebSocket"] == "1"
    assert list(h) == ["websocket"]


# Sharing strings between instances (the memory of idle connections).


def test_lower_case_names_are_shared() -> None:
    # Two names built at run time, so that only interning can make them one.
    first = Headers([("".join(["Sec-WebSocket-", "Key"]), "a")])
    second = Headers([("".join(["SEC-WEBSOCKET-", "KEY"]), "b")])
    [lower_first] = list(first)
    [lower_second] = list(second)
    assert lower_first == "sec-websocket-key"
    assert lower_first is lower_second


@pytest.mark.parametrize(
    "name", ["Upgrade", "Connection", "Sec-WebSocket-Version", "Host", "User-Agent"]
)
def test_values_of_repetitive_headers_are_shared(name: str) -> None:
    value = "".join(["web", "socket"])
    other = "".join(["web", "socket"])
    assert value is not other
    assert Headers([(name, value)])[name] is Headers([(name, other)])[name]


@pytest.mark.parametrize("name", ["Sec-WebSocket-Key", "Cookie", "Authorization"])
def test_values_of_other_headers_are_left_alone(name: str) -> None:
    value = "".join(["dGhlIHNhbXBsZSBub25j", "ZQ=="])
    assert Headers([(name, value)])[name] is value


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh table of shared strings, holding only the known ones."""
    fresh = dict(datastructures._KNOWN_STRINGS)
    monkeypatch.setattr(datastructures, "_SHARED", fresh)
    return fresh


def test_shared_values_are_learned(table: dict[str, str]) -> None:
    value = "".join(["example", ".com"])
    other = "".join(["example", ".com"])
    assert Headers([("Host", value)])["host"] is value
    assert Headers([("HOST", other)])["host"] is value
    assert "example.com" in table


def test_unknown_names_are_learned(table: dict[str, str]) -> None:
    first = Headers([("".join(["X-", "Tenant"]), "1")])
    second = Headers([("".join(["X-", "Tenant"]), "2")])
    assert next(first.raw_items())[0] is next(second.raw_items())[0]
    assert list(first)[0] is list(second)[0] == "x-tenant"


def test_values_of_other_headers_are_not_learned(table: dict[str, str]) -> None:
    Headers([("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
    Headers([("Date", "Tue, 25 Nov 2026 21:00:00 GMT")])
    assert "dGhlIHNhbXBsZSBub25jZQ==" not in table
    assert "Tue, 25 Nov 2026 21:00:00 GMT" not in table


def test_long_strings_are_not_learned(table: dict[str, str]) -> None:
    limit = datastructures._SHARED_MAX_LENGTH
    Headers([("User-Agent", "x" * limit), ("User-Agent", "y" * (limit + 1))])
    assert "x" * limit in table
    assert "y" * (limit + 1) not in table


def test_shared_table_is_bounded(
    table: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Peers choose these strings: whatever they send, the table stays small
    # and keeps the known strings.
    limit = len(table) + 3
    monkeypatch.setattr(datastructures, "_SHARED_MAX", limit)
    kept = [Headers([("Host", f"h{index}.example")]) for index in range(20)]
    assert len(table) <= limit
    assert table["sec-websocket-key"] == "sec-websocket-key"
    assert "h19.example" in table
    assert [h["Host"] for h in kept] == [f"h{index}.example" for index in range(20)]


# Model-based: Headers against a plain list of pairs.

NAMES = ["A", "a", "Host", "HOST", "host", "Upgrade", "upgrade", "X-Y", "x-y", ""]
VALUES = ["1", "", "websocket", "host", "a", "Upgrade", "x-y"]


class Model:
    """The documented behaviour, written as plainly as possible."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.pairs if n.lower() == name.lower()]

    def names(self) -> list[str]:
        return list(dict.fromkeys(n.lower() for n, _ in self.pairs))


operations = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(NAMES), st.sampled_from(VALUES)),
    st.tuples(st.just("del"), st.sampled_from(NAMES), st.just("")),
    st.tuples(st.just("pop"), st.sampled_from(NAMES), st.just("")),
    st.tuples(st.just("setdefault"), st.sampled_from(NAMES), st.sampled_from(VALUES)),
    st.tuples(st.just("update"), st.sampled_from(NAMES), st.sampled_from(VALUES)),
    st.tuples(st.just("copy"), st.just(""), st.just("")),
    st.tuples(st.just("clear"), st.just(""), st.just("")),
)


def check_same(h: Headers, model: Model) -> None:
    assert list(h.raw_items()) == model.pairs
    assert list(h) == list(h.keys()) == model.names()
    assert len(h) == len(model.names())
    assert h == Headers(model.pairs)
    assert str(h) == "".join(f"{n}: {v}\r\n" for n, v in model.pairs) + "\r\n"
    assert repr(h) == f"Headers({model.pairs!r})"
    for name in NAMES + ["missing"]:
        values = model.values(name)
        assert h.get_all(name) == values
        assert (name in h) is bool(values)
        if len(values) == 1:
            assert h[name] == values[0]
        elif values:
            with pytest.raises(MultipleValuesError):
                h[name]
        else:
            with pytest.raises(KeyError):
                h[name]


@given(st.lists(operations, max_size=30))
def test_behaves_like_the_model(ops: list[tuple[str, str, str]]) -> None:
    h = Headers()
    model = Model()
    for op, name, value in ops:
        values = model.values(name)
        if op == "set":
            h[name] = value
            model.pairs.append((name, value))
        elif op in ("del", "pop"):
            if len(values) > 1 and op == "pop":
                with pytest.raises(MultipleValuesError):
                    h.pop(name)
                continue
            if not values:
                with pytest.raises(KeyError):
                    del h[name]
                continue
            if op == "pop":
                assert h.pop(name) == values[0]
            else:
                del h[name]
            model.pairs = [p for p in model.pairs if p[0].lower() != name.lower()]
        elif op == "setdefault":
            if len(values) > 1:
                with pytest.raises(MultipleValuesError):
                    h.setdefault(name, value)
                continue
            assert h.setdefault(name, value) == (values or [value])[0]
            if not values:
                model.pairs.append((name, value))
        elif op == "update":
            h.update([(name, value), (name.upper(), value)], Z=value)
            model.pairs += [(name, value), (name.upper(), value), ("Z", value)]
        elif op == "copy":
            clone = h.copy()
            clone["Extra"] = "1"
            h = clone.copy()
            del h["extra"]
        else:
            h.clear()
            model.pairs = []
        check_same(h, model)


def test_str_subclasses_are_kept_as_given() -> None:
    """Sharing never swaps a str subclass (an enum member, say) for a str."""

    class Token(str):
        pass

    name, value = Token("Upgrade"), Token("websocket")
    headers = Headers([(name, value)])
    [(kept_name, kept_value)] = headers.raw_items()
    assert kept_name is name and kept_value is value
    assert type(headers["upgrade"]) is Token


def test_share_leaves_str_subclasses_alone() -> None:
    class Token(str):
        pass

    token = Token("websocket")  # a known string, but not a plain str
    assert datastructures._share(token) is token


def test_update_goes_through_overridden_setitem() -> None:
    """A subclass that changes how a pair is added sees every pair."""

    class Lowered(Headers):
        def __setitem__(self, key: str, value: str) -> None:
            super().__setitem__(key, value.lower())

    headers = Lowered([("Upgrade", "WebSocket")], Connection="UPGRADE")
    headers.update({"X": "Y"})
    assert list(headers.raw_items()) == [
        ("Upgrade", "websocket"),
        ("Connection", "upgrade"),
        ("X", "y"),
    ]


@pytest.mark.parametrize("name", ["Sec-WebSocket-Version", "sec-websocket-version"])
def test_known_names_are_shared_in_bulk_and_one_by_one(name: str) -> None:
    # Headers(pairs) looks known names up in a table made once; h[name] = v
    # goes through the table of shared strings: both give the same copies.
    copy = "".join([name[:3], name[3:]])
    assert copy is not name
    bulk = Headers([(copy, "".join(["1", "3"]))])
    single = Headers()
    single[copy] = "".join(["1", "3"])
    [(bulk_name, bulk_value)] = bulk.raw_items()
    [(single_name, single_value)] = single.raw_items()
    assert bulk_name is single_name == name
    assert bulk_value is single_value == "13"
    assert list(bulk)[0] is list(single)[0] == "sec-websocket-version"
