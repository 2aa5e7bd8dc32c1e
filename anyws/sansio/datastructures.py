"""HTTP header container for the opening handshake (the 8.1 ``Headers``).

HTTP allows a header name to appear several times, and names are
case-insensitive (RFC 9110 section 5.1). A plain ``dict`` can express neither,
so :class:`Headers` keeps, in insertion order:

* the names and values exactly as they were added, which is what goes on the
  wire;
* the lower-cased name of each of them, which is what lookups compare.

The mapping interface answers for names that have exactly one value; a name
with several values raises :exc:`MultipleValuesError` instead of silently
picking one, and :meth:`Headers.get_all` returns them all.

Memory: every open connection keeps two of these objects for its whole life
(``request_headers`` and ``response_headers``), so they are laid out to cost
little once the handshake is over:

* two flat lists of strings and nothing else: no index ``dict``, no list of
  values per name, no tuple per pair (about 350 bytes for the headers of a
  minimal request, against 1.9 KB with those). A handshake has about ten
  headers, so a lookup is a scan of a short list, done in C by ``list.count``
  and ``list.index``: 100 to 200 ns, up to 100 more than with a ``dict``;
* names, lower-cased names and the values of headers that take few
  distinct values (``Upgrade: websocket``, ``Sec-WebSocket-Version: 13``,
  ``Host``, ``User-Agent``...) are shared between instances through a table
  of bounded size (see :func:`_share`); values that differ per connection
  (keys, cookies) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Protocol, cast

__all__ = ("Headers", "HeadersLike", "MultipleValuesError")

# Lower-cased names of the headers whose values are shared between
# connections: a few distinct values each, repeated by every client or every
# response. Sec-WebSocket-Key, Sec-WebSocket-Accept, Cookie, Authorization...
# differ per connection, and Date every second: sharing them would only churn
# the table.
_SHARED_VALUES = frozenset(
    {
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "host",
        "origin",
        "pragma",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-version",
        "server",
        "upgrade",
        "user-agent",
    }
)

# The names of the opening handshake and of common requests and responses,
# and the values of the handshake: always shared, whatever peers send.
_KNOWN = (
    "Accept-Encoding",
    "Accept-Language",
    "Authorization",
    "Cache-Control",
    "Connection",
    "Content-Length",
    "Content-Type",
    "Cookie",
    "Date",
    "Host",
    "Location",
    "Origin",
    "Pragma",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Version",
    "Server",
    "Set-Cookie",
    "Transfer-Encoding",
    "Upgrade",
    "User-Agent",
    "WWW-Authenticate",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Real-IP",
)
_KNOWN_VALUES = (
    "13",
    "Upgrade",
    "close",
    "keep-alive, Upgrade",
    "no-cache",
    "upgrade",
    "websocket",
)

_KNOWN_STRINGS = {text: text for name in _KNOWN for text in (name, name.lower())}
_KNOWN_STRINGS.update((value, value) for value in _KNOWN_VALUES)

# For each known name, as written and lower-cased: the shared copies of it
# and of its lower-cased form, and whether its values are shared. What
# Headers._append would compute, looked up once.
_KNOWN_NAMES = {
    text: (text, lower, lower in _SHARED_VALUES)
    for name in _KNOWN
    for lower in (_KNOWN_STRINGS[name.lower()],)
    for text in (_KNOWN_STRINGS[name], lower)
}

# One copy of each string that many Headers hold (see _share).
_SHARED: dict[str, str] = dict(_KNOWN_STRINGS)
#: Most strings _SHARED holds; when full, it starts over from the known ones.
_SHARED_MAX = 1024
#: Longest string _share learns.
_SHARED_MAX_LENGTH = 256


def _share(text: str) -> str:
    """Return the copy of ``text`` that Headers share, learning it if needed.

    Each connection keeps its headers as long as it is open, and most of
    these strings are the same for every connection: one copy saves some
    50 bytes per string per connection. Not :func:`sys.intern`: on CPython
    3.12.0 to 3.12.4 interned strings are never freed, and peers choose
    these strings. The table is bounded instead: when it is full it forgets
    what it learned (strings in use stay alive in their Headers) and learns
    again, so that it follows the strings in use; a peer sending junk can
    only make the sharing of new strings less effective, never make memory
    grow.
    """
    if type(text) is not str:  # a str subclass (StrEnum...) stays as given
        return text
    shared = _SHARED.get(text)
    if shared is not None:
        return shared
    if len(text) <= _SHARED_MAX_LENGTH:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
            _SHARED.update(_KNOWN_STRINGS)
        _SHARED[text] = text
    return text


class MultipleValuesError(LookupError):
    """Raised when a header name with several values is read as a single value.

    It subclasses :exc:`LookupError` but not :exc:`KeyError`, so that the
    ``Mapping`` helpers, which catch ``KeyError`` to mean "missing", let it
    through (``get``, ``setdefault``, ``pop``).
    """

    def __str__(self) -> str:
        # Like KeyError: show the name with quotes, so that an empty or
        # space-padded name stays visible in messages.
        if len(self.args) == 1:
            return repr(self.args[0])
        return super().__str__()


class _KeysAndGetItem(Protocol):
    """What ``dict.update`` accepts besides mappings and iterables of pairs."""

    def keys(self) -> Iterable[str]: ...  # pragma: no cover (protocol stub)

    def __getitem__(self, key: str, /) -> str: ...  # pragma: no cover (stub)


class Headers(MutableMapping[str, str]):
    """An ordered, case-insensitive multi-mapping of HTTP headers.

    ``h[name] = value`` appends a value and never replaces one. ``h[name]``
    returns the only value of ``name``; it raises :exc:`KeyError` when there is
    none and :exc:`MultipleValuesError` when there are several. ``del h[name]``
    removes every value. Iteration yields the distinct names lower-cased, in
    order of first appearance.

    Args:
        other: a ``Headers``, a mapping or an iterable of ``(name, value)``
            pairs; its pairs are appended in order.
        **kwargs: more pairs, appended after those of ``other``.

    Raises:
        MultipleValuesError: when ``other`` is a ``Headers`` with a repeated
            name (copy it with ``Headers(h.raw_items())`` instead).
    """

    __slots__ = ("_items", "_lower")

    # Invariant: len(_items) == 2 * len(_lower). Pair i is
    # (_items[2 * i], _items[2 * i + 1]) and _lower[i] is its name lower-cased.
    _items: list[str]
    _lower: list[str]

    def __init__(
        self, other: HeadersLike | _KeysAndGetItem = (), /, **kwargs: str
    ) -> None:
        self._items = []
        self._lower = []
        if other or kwargs:
            self.update(other, **kwargs)

    # Mapping protocol.

    def __getitem__(self, key: str) -> str:
        try:
            lower = key.lower()
        except AttributeError:
            # A Mapping reports any missing key with KeyError, whatever its type.
            raise KeyError(key) from None
        count = self._lower.count(lower)
        if count == 1:
            return self._items[2 * self._lower.index(lower) + 1]
        if count == 0:
            raise KeyError(key)
        raise MultipleValuesError(key)

    def __setitem__(self, key: str, value: str) -> None:
        # _share() does the same; looking up the table first spares a call
        # for strings already shared, which are nearly all of them.
        lower = key.lower()
        lower = _SHARED.get(lower) or _share(lower)
        if type(key) is str:  # else the table would return a plain str
            key = _SHARED.get(key) or _share(key)
        if lower in _SHARED_VALUES and type(value) is str:
            value = _SHARED.get(value) or _share(value)
        self._lower.append(lower)
        self._items += (key, value)

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        if lower not in self._lower:
            raise KeyError(key)
        items = self._items
        kept = [i for i, name in enumerate(self._lower) if name != lower]
        self._lower = [self._lower[i] for i in kept]
        self._items = [item for i in kept for item in items[2 * i : 2 * i + 2]]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        # A dict drops repeated names and keeps the order of first appearance.
        return iter(dict.fromkeys(self._lower))

    def __len__(self) -> int:
        return len(set(self._lower))

    def update(
        self, other: HeadersLike | _KeysAndGetItem = (), /, **kwargs: str
    ) -> None:
        """Append pairs, like ``dict.update`` but without replacing anything.

        Args:
            other: a ``Headers``, a mapping, an object with ``keys()`` and
                ``[]``, or an iterable of ``(name, value)`` pairs.
            **kwargs: more pairs, appended after those of ``other``.

        Raises:
            MultipleValuesError: when ``other`` is a ``Headers`` with a
                repeated name; nothing is appended then.
        """
        pairs: Iterable[tuple[str, str]]
        if type(other) is list or type(other) is tuple:
            # The common case, spared the ABC check of isinstance(Mapping).
            pairs = other
        elif isinstance(other, Mapping):
            # Read every value first, so that a MultipleValuesError leaves
            # self untouched.
            pairs = [(name, other[name]) for name in other]
        elif hasattr(other, "keys"):
            # The rest of the dict.update protocol: keys() and [].
            keyed = cast(_KeysAndGetItem, other)
            pairs = [(name, keyed[name]) for name in keyed.keys()]
        else:
            pairs = other
        if type(self).__setitem__ is Headers.__setitem__:
            self._append(pairs)
            if kwargs:
                self._append(kwargs.items())
        else:  # a subclass changed how a pair is added: go through it
            for name, value in pairs:
                self[name] = value
            for name, value in kwargs.items():
                self[name] = value
        # Appending leaves spare room at the end of the lists. Headers are
        # mostly built in one go, then kept as long as the connection:
        # copying gives the room back (a copy is allocated at its exact size).
        self._items = self._items.copy()
        self._lower = self._lower.copy()

    def _append(self, pairs: Iterable[tuple[str, str]]) -> None:
        """``self[name] = value`` for each pair, inlined.

        The handshake builds every Headers from a list of pairs: this loop
        spares a method call per pair.
        """
        get = _SHARED.get
        known = _KNOWN_NAMES.get
        items = self._items
        lowers = self._lower
        for name, value in pairs:
            # A str subclass is kept as given, so it is never looked up.
            name_info = known(name) if type(name) is str else None
            if name_info is None:
                lower = name.lower()
                lower = get(lower) or _share(lower)
                if type(name) is str:
                    name = get(name) or _share(name)
                share_value = lower in _SHARED_VALUES
            else:
                name, lower, share_value = name_info
            if share_value and type(value) is str:
                value = get(value) or _share(value)
            lowers.append(lower)
            items.append(name)
            items.append(value)

    # Multi-value API.

    def get_all(self, key: str) -> list[str]:
        """Return every value of a header, in order.

        Args:
            key: the header name, in any case.

        Returns:
            A new list of the values; empty when the header is absent.
        """
        lower = key.lower()
        lowers = self._lower
        # The handshake asks for headers that appear once or not at all:
        # answer those with list methods, which run in C.
        count = lowers.count(lower)
        if count == 0:
            return []
        if count == 1:
            return [self._items[2 * lowers.index(lower) + 1]]
        values = self._items[1::2]
        return [
            value for name, value in zip(lowers, values, strict=True) if name == lower
        ]

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Iterate over every ``(name, value)`` pair, as added.

        Names keep their original case; repeated names appear each time.
        """
        # Both arguments are the same iterator: zip pairs consecutive items.
        items = iter(self._items)
        return zip(items, items, strict=False)

    # Other methods.

    def copy(self) -> Headers:
        """Return an independent copy (changing one never changes the other)."""
        other = self.__class__()
        other._items = self._items.copy()
        other._lower = self._lower.copy()
        return other

    def clear(self) -> None:
        """Remove every header."""
        self._items = []
        self._lower = []

    def __eq__(self, other: object) -> bool:
        # Two header blocks are the same only if they would be written the
        # same way on the wire: order and case matter.
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __str__(self) -> str:
        # RFC 9112 section 5: each field line ends with CRLF and an empty
        # line ends the header section.
        lines = [f"{name}: {value}\r\n" for name, value in self.raw_items()]
        return "".join(lines) + "\r\n"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({list(self.raw_items())!r})"


#: What APIs accept as headers: a :class:`Headers`, any mapping of names to
#: values, or an iterable of ``(name, value)`` pairs.
HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
