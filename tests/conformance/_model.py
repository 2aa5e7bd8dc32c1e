"""The vocabulary of the conformance cases: what a crafted peer sends, what it
expects back, and how an outcome is judged.

A case is a script for the crafted peer (``steps``) and the list of things
the anyws peer must send back (``expect``), the way Autobahn judges its cases:
echoed messages with their exact content, pongs with their payload, then one
close frame with the right code, then the end of the connection.
``non_strict`` lists other outcomes that Autobahn also accepts (for example
when an echo races a failure), reported as "non-strict" in the summary.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ._deflate import Params

__all__ = (
    "BINARY",
    "CLOSE",
    "CONT",
    "PING",
    "PONG",
    "ROLES",
    "TEXT",
    "Case",
    "DeflateSetup",
    "Frame",
    "Item",
    "Message",
    "Send",
    "Step",
    "Sync",
    "binary",
    "close",
    "close_frame",
    "describe",
    "echo_case",
    "fragments",
    "judge",
    "pong",
    "text",
)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

ROLES = ("server", "client")


class Item(NamedTuple):
    """One thing the anyws peer sent, or one the crafted peer expects.

    ``kind`` is ``text``, ``binary``, ``ping``, ``pong``, ``close``, ``eof``
    (the stream ended before any close frame) or ``violation`` (the anyws peer
    broke the protocol; ``data`` says how). For ``close``, ``data`` is the
    code (``None`` for an empty payload) or, in an expectation, a frozenset of
    acceptable codes; ``reason`` ``None`` in an expectation accepts any reason.
    """

    kind: str
    data: object = None
    reason: str | None = None

    def short(self) -> str:
        """A readable form that stays short for large payloads."""
        data = self.data
        if isinstance(data, (str, bytes)) and len(data) > 40:
            shown = f"{data[:24]!r}...<{len(data)} {type(data).__name__}>"
        else:
            shown = repr(data)
        extra = "" if self.reason is None else f" reason={self.reason!r}"
        return f"{self.kind}({shown}{extra})"


def text(data: str) -> Item:
    """A text message with exactly this content."""
    return Item("text", data)


def binary(data: bytes) -> Item:
    """A binary message with exactly this content."""
    return Item("binary", data)


def pong(data: bytes) -> Item:
    """A pong with exactly this payload."""
    return Item("pong", data)


def close(code: int | None | frozenset[int | None], reason: str | None = None) -> Item:
    """A close frame with this code (or one of these); ``None``: no payload."""
    return Item("close", code, reason)


@dataclass(frozen=True)
class Frame:
    """A crafted frame, sent exactly as described, valid or not.

    Attributes:
        opcode: any 4-bit value, reserved ones included.
        payload: the payload (before masking).
        fin: the FIN bit.
        rsv: the three reserved bits as Autobahn numbers them: 4 is RSV1,
            2 is RSV2, 1 is RSV3.
        wrong_mask: mask as the other side would (RFC 6455, 5.1 forbids it).
        length: the length written in the header, if not the payload's.
        length_bits: force the 16-bit or 64-bit length form (RFC 6455, 5.2).
    """

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    wrong_mask: bool = False
    length: int | None = None
    length_bits: int | None = None


@dataclass(frozen=True)
class Message:
    """A message the crafted peer turns into frames when it sends it.

    Attributes:
        data: ``str`` for a text message, ``bytes`` for a binary one.
        frag: most payload bytes per frame (after compression); ``None``
            sends one frame.
        compress: compress it with the agreed permessage-deflate.
        final_block: end the compressed data with a BFINAL block.
        rsv1_on_continuation: also set RSV1 on the continuation frames,
            which RFC 7692, 6.1 forbids.
        raw: send these bytes as the (compressed) payload instead.
        text: send ``bytes`` data as a text message (to send invalid UTF-8).
        ping_between: send a ping with this payload after every fragment
            but the last.
    """

    data: str | bytes
    frag: int | None = None
    compress: bool = False
    final_block: bool = False
    rsv1_on_continuation: bool = False
    raw: bytes | None = None
    text: bool = False
    ping_between: bytes | None = None


@dataclass(frozen=True)
class Send:
    """Write frames and messages; ``chunk`` cuts the bytes into many writes."""

    parts: tuple[Frame | Message, ...]
    chunk: int | None = None


@dataclass(frozen=True)
class Sync:
    """Wait until the anyws peer has sent ``count`` items in all (or closed).

    It replaces Autobahn's pauses: an echo is produced by the handler task,
    which may run after the reader handled the next frame.
    """

    count: int


Step = Send | Sync


@dataclass(frozen=True)
class DeflateSetup:
    """How permessage-deflate is negotiated in a case (12.x and 13.x).

    Attributes:
        offers: server role: the offers the crafted client sends; a ``str``
            is sent as it is (to offer invalid parameters).
        server: server role: ``"default"`` is ``serve()``'s own factory
            (``compression="deflate"``), ``"plain"`` an explicit
            ``ServerPerMessageDeflateFactory()`` that accepts offers as made.
        expect_answer: server role: the exact answer expected; ``None``
            checks only that the answer is legal.
        expect_declined: server role: the server must decline every offer.
        client_offer: client role: the parameters of the anyws client's
            ``ClientPerMessageDeflateFactory``; ``None`` for ``connect()``'s
            default (``client_max_window_bits`` without a value).
        answer: client role: what the crafted server answers (a ``str`` is
            sent as it is); ``None`` declines the extension.
        client_refuses: client role: the answer is illegal, so ``connect()``
            must fail the connection (RFC 7692, 7.1) and send no frame.
    """

    offers: tuple[Params | str, ...] = (Params(client_max_window_bits=True),)
    server: str = "default"
    expect_answer: Params | None = None
    expect_declined: bool = False
    client_offer: Params | None = None
    answer: Params | str | None = Params()
    client_refuses: bool = False


@dataclass(frozen=True)
class Case:
    """One conformance case, run against the anyws server and client.

    Attributes:
        id: the Autobahn-style number, for example ``"6.4.2"``.
        rfc: the RFC section it checks.
        title: what the crafted peer does.
        steps: the crafted peer's script.
        expect: everything the anyws peer must send, in order.
        non_strict: other acceptable outcomes.
        local_close: the close code anyws must report once closed, if checked.
        max_size: ``max_size`` of the anyws peer.
        deflate: permessage-deflate negotiation, ``None`` for none offered.
        roles: the roles the case runs in.
        gaps: ``(role, reason)`` pairs of known failures (marked xfail).
    """

    id: str
    rfc: str
    title: str
    steps: tuple[Step, ...]
    expect: tuple[Item, ...]
    non_strict: tuple[tuple[Item, ...], ...] = ()
    local_close: int | None = None
    max_size: int | None = 2**20
    deflate: DeflateSetup | None = None
    roles: tuple[str, ...] = ROLES
    gaps: tuple[tuple[str, str], ...] = ()

    @property
    def category(self) -> int:
        """The Autobahn category: the first number of the id."""
        return int(self.id.split(".", 1)[0])


def close_frame(code: int | None = 1000, reason: bytes = b"") -> Frame:
    """A close frame; ``code=None`` gives an empty payload."""
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return Frame(CLOSE, payload)


def fragments(opcode: int, pieces: Sequence[bytes]) -> list[Frame]:
    """The frames of one message cut into ``pieces`` (RFC 6455, 5.4)."""
    last = len(pieces) - 1
    return [
        Frame(opcode if index == 0 else CONT, piece, fin=index == last)
        for index, piece in enumerate(pieces)
    ]


def echo_case(
    id: str,
    rfc: str,
    title: str,
    parts: Sequence[Frame | Message],
    expect: Sequence[Item],
    *,
    chunk: int | None = None,
    max_size: int | None = 2**20,
    deflate: DeflateSetup | None = None,
    roles: tuple[str, ...] = ROLES,
) -> Case:
    """A case that sends ``parts``, waits for ``expect``, then closes with 1000."""
    steps = (Send(tuple(parts), chunk), Sync(len(expect)), Send((close_frame(),)))
    return Case(
        id,
        rfc,
        title,
        steps,
        (*expect, close(1000)),
        local_close=1000,
        max_size=max_size,
        deflate=deflate,
        roles=roles,
    )


def _item_matches(expected: Item, actual: Item) -> bool:
    if expected.kind != actual.kind:
        return False
    if expected.kind != "close":
        return expected.data == actual.data and (
            type(expected.data) is type(actual.data)
        )
    codes = expected.data
    code_ok = (
        actual.data in codes if isinstance(codes, frozenset) else (actual.data == codes)
    )
    return code_ok and (expected.reason is None or expected.reason == actual.reason)


def _matches(expected: Sequence[Item], actual: Sequence[Item]) -> bool:
    return len(expected) == len(actual) and all(
        _item_matches(e, a) for e, a in zip(expected, actual, strict=True)
    )


def judge(case: Case, actual: Sequence[Item]) -> str | None:
    """Judge what the anyws peer sent.

    Returns:
        ``"strict"`` or ``"non-strict"`` if it is acceptable, else ``None``.
    """
    if _matches(case.expect, actual):
        return "strict"
    if any(_matches(other, actual) for other in case.non_strict):
        return "non-strict"
    return None


def describe(items: Sequence[Item]) -> str:
    """Items in a readable, bounded form for failure messages."""
    if len(items) > 12:
        shown = [item.short() for item in items[:10]]
        return ", ".join([*shown, f"... ({len(items)} items)", items[-1].short()])
    return ", ".join(item.short() for item in items) or "(nothing)"
