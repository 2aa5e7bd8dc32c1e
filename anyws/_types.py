"""Type aliases shared by the whole package (the 8.1 ``websockets.typing``)."""

from __future__ import annotations

from typing import NewType

__all__ = (
    "BytesLike",
    "Data",
    "ExtensionHeader",
    "ExtensionName",
    "ExtensionParameter",
    "Origin",
    "Subprotocol",
)

#: A message: ``str`` for a text message, ``bytes`` for a binary one.
Data = str | bytes

#: What ``send`` accepts as binary data.
BytesLike = bytes | bytearray | memoryview

#: The value of an ``Origin`` header.
Origin = NewType("Origin", str)

#: A subprotocol name, as in ``Sec-WebSocket-Protocol``.
Subprotocol = NewType("Subprotocol", str)

#: An extension name, as in ``Sec-WebSocket-Extensions``.
ExtensionName = NewType("ExtensionName", str)

#: One extension parameter: its name and its value (``None`` when it has none).
ExtensionParameter = tuple[str, str | None]

#: One extension in a header: its name and its parameters.
ExtensionHeader = tuple[ExtensionName, list[ExtensionParameter]]
