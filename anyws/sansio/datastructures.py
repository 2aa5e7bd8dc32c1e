"""HTTP header container for the opening handshake (the 8.1 ``Headers``).

HTTP allows a header name to appear several times, and names are
case-insensitive (RFC 7230 section 3.2). A plain ``dict`` can express neither,
so :class:`Headers` keeps two views of the same data:

* the list of ``(name, value)`` pairs exactly as they were added, which is
  what goes on the wire;
* an index from the lower-cased name to the list of its values, which is what
  lookups use.

The mapping interface answers for names that have exactly one value; a name
with several values raises :exc:`MultipleValuesError` instead of silently
picking one, and :meth:`Headers.get_all` returns them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Protocol, cast

__all__ = ("Headers", "HeadersLike", "MultipleValuesError")


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

    __slots__ = ("_dict", "_list")

    _dict: dict[str, list[str]]
    _list: list[tuple[str, str]]

    def __init__(
        self, other: HeadersLike | _KeysAndGetItem = (), /, **kwargs: str
    ) -> None:
        self._dict = {}
        self._list = []
        if other or kwargs:
            self.update(other, **kwargs)

    # Mapping protocol.

    def __getitem__(self, key: str) -> str:
        try:
            values = self._dict[key.lower()]
        except AttributeError:
            # A Mapping reports any missing key with KeyError, whatever its type.
            raise KeyError(key) from None
        if len(values) == 1:
            return values[0]
        raise MultipleValuesError(key)

    def __setitem__(self, key: str, value: str) -> None:
        lower = key.lower()
        values = self._dict.get(lower)
        if values is None:
            self._dict[lower] = [value]
        else:
            values.append(value)
        self._list.append((key, value))

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        del self._dict[lower]
        self._list = [pair for pair in self._list if pair[0].lower() != lower]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

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
        if isinstance(other, Mapping):
            # Read every value first, so that a MultipleValuesError leaves
            # self untouched.
            pairs = [(name, other[name]) for name in other]
        elif hasattr(other, "keys"):
            # The rest of the dict.update protocol: keys() and [].
            keyed = cast(_KeysAndGetItem, other)
            pairs = [(name, keyed[name]) for name in keyed.keys()]
        else:
            pairs = other
        for name, value in pairs:
            self[name] = value
        for name, value in kwargs.items():
            self[name] = value

    # Multi-value API.

    def get_all(self, key: str) -> list[str]:
        """Return every value of a header, in order.

        Args:
            key: the header name, in any case.

        Returns:
            A new list of the values; empty when the header is absent.
        """
        return list(self._dict.get(key.lower(), ()))

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Iterate over every ``(name, value)`` pair, as added.

        Names keep their original case; repeated names appear each time.
        """
        return iter(self._list)

    # Other methods.

    def copy(self) -> Headers:
        """Return an independent copy (changing one never changes the other)."""
        other = self.__class__()
        other._dict = {name: values.copy() for name, values in self._dict.items()}
        other._list = self._list.copy()
        return other

    def clear(self) -> None:
        """Remove every header."""
        self._dict = {}
        self._list = []

    def __eq__(self, other: object) -> bool:
        # Two header blocks are the same only if they would be written the
        # same way on the wire: order and case matter.
        if not isinstance(other, Headers):
            return NotImplemented
        return self._list == other._list

    def __str__(self) -> str:
        # RFC 7230 section 3: each field line ends with CRLF and an empty
        # line ends the header section.
        return "".join([f"{name}: {value}\r\n" for name, value in self._list]) + "\r\n"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._list!r})"


#: What APIs accept as headers: a :class:`Headers`, any mapping of names to
#: values, or an iterable of ``(name, value)`` pairs.
HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
