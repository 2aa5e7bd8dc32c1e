"""Cases of Autobahn categories 1 to 5: framing, pings and pongs, reserved
bits, reserved opcodes and fragmentation (RFC 6455, 5)."""

from __future__ import annotations

from ._model import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Case,
    Frame,
    Item,
    Send,
    Sync,
    binary,
    close,
    close_frame,
    echo_case,
    fragments,
    pong,
    text,
)

__all__ = ("basic_cases",)

_FAIL = (close(1002),)


def _fail_case(
    id: str, rfc: str, title: str, *steps: Send | Sync, before: tuple[Item, ...] = ()
) -> Case:
    """The anyws peer must fail the connection with 1002 after ``before``."""
    return Case(id, rfc, title, steps, (*before, *_FAIL))


def _message(opcode: int, size: int) -> tuple[Frame, Item]:
    """A text or binary frame of ``size`` bytes and its expected echo."""
    if opcode == TEXT:
        return Frame(TEXT, b"*" * size), text("*" * size)
    return Frame(BINARY, b"\xfe" * size), binary(b"\xfe" * size)


def _framing() -> list[Case]:
    """1.x: messages of every length form (RFC 6455, 5.2), whole and cut into
    writes that split the header and the payload."""
    cases = []
    sizes = (0, 125, 126, 127, 128, 65535, 65536)
    chunked = ((65536, 997), (125, 1), (126, 1), (65536, 7))
    for group, opcode in ((1, TEXT), (2, BINARY)):
        kind = "text" if opcode == TEXT else "binary"
        for index, size in enumerate(sizes, 1):
            frame, item = _message(opcode, size)
            title = f"{kind} message of {size} bytes"
            cases.append(
                echo_case(f"1.{group}.{index}", "RFC 6455 5.2", title, [frame], [item])
            )
        for index, (size, chunk) in enumerate(chunked, len(sizes) + 1):
            frame, item = _message(opcode, size)
            title = f"{kind} message of {size} bytes written in {chunk}-byte chunks"
            cases.append(
                echo_case(
                    f"1.{group}.{index}",
                    "RFC 6455 5.2",
                    title,
                    [frame],
                    [item],
                    chunk=chunk,
                )
            )
    return cases


def _pings() -> list[Case]:
    """2.x: pings and pongs (RFC 6455, 5.5.2 and 5.5.3)."""
    rfc = "RFC 6455 5.5.2, 5.5.3"
    binary_payload = bytes((0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF))
    pings = [b"ping %d" % n for n in range(10)]
    return [
        echo_case("2.1", rfc, "ping without payload", [Frame(PING)], [pong(b"")]),
        echo_case(
            "2.2",
            rfc,
            "ping with a text payload",
            [Frame(PING, b"Hello, world!")],
            [pong(b"Hello, world!")],
        ),
        echo_case(
            "2.3",
            rfc,
            "ping with a binary payload",
            [Frame(PING, binary_payload)],
            [pong(binary_payload)],
        ),
        echo_case(
            "2.4",
            "RFC 6455 5.5",
            "ping with 125 bytes of payload",
            [Frame(PING, b"\xfe" * 125)],
            [pong(b"\xfe" * 125)],
        ),
        _fail_case(
            "2.5",
            "RFC 6455 5.5",
            "ping with 126 bytes of payload (over the limit)",
            Send((Frame(PING, b"\xfe" * 126),)),
        ),
        echo_case(
            "2.6",
            "RFC 6455 5.5",
            "ping with 125 bytes written 1 byte at a time",
            [Frame(PING, b"\xfe" * 125)],
            [pong(b"\xfe" * 125)],
            chunk=1,
        ),
        echo_case(
            "2.7",
            "RFC 6455 5.5.3",
            "unsolicited pong without payload",
            [Frame(PONG)],
            [],
        ),
        echo_case(
            "2.8",
            "RFC 6455 5.5.3",
            "unsolicited pong with payload",
            [Frame(PONG, b"unsolicited")],
            [],
        ),
        echo_case(
            "2.9",
            rfc,
            "unsolicited pong, then a ping",
            [Frame(PONG, b"unsolicited"), Frame(PING, b"solicited")],
            [pong(b"solicited")],
        ),
        echo_case(
            "2.10",
            rfc,
            "10 pings in a row",
            [Frame(PING, p) for p in pings],
            [pong(p) for p in pings],
        ),
        echo_case(
            "2.11",
            rfc,
            "10 pings in a row, written 1 byte at a time",
            [Frame(PING, p) for p in pings],
            [pong(p) for p in pings],
            chunk=1,
        ),
        echo_case(
            "2.12",
            "RFC 6455 5.5",
            "ping with 125 bytes, length in the 16-bit form",
            [Frame(PING, b"\x01" * 125, length_bits=16)],
            [pong(b"\x01" * 125)],
        ),
    ]


def _reserved_bits() -> list[Case]:
    """3.x: RSV bits without a negotiated extension (RFC 6455, 5.2)."""
    rfc = "RFC 6455 5.2"
    hello = Frame(TEXT, b"Hello")
    then_ping = Frame(PING, b"after")
    return [
        _fail_case("3.1", rfc, "text with RSV=1", Send((Frame(TEXT, b"Hi", rsv=1),))),
        Case(
            "3.2",
            rfc,
            "text, text with RSV=2, ping (no wait)",
            (Send((hello, Frame(TEXT, b"Hi", rsv=2), then_ping)),),
            (text("Hello"), *_FAIL),
            non_strict=(_FAIL,),
        ),
        _fail_case(
            "3.3",
            rfc,
            "text, wait for its echo, text with RSV=3, ping",
            Send((hello,)),
            Sync(1),
            Send((Frame(TEXT, b"Hi", rsv=3), then_ping)),
            before=(text("Hello"),),
        ),
        _fail_case(
            "3.4",
            rfc,
            "as 3.3 with RSV=4, written 1 byte at a time",
            Send((hello,), 1),
            Sync(1),
            Send((Frame(TEXT, b"Hi", rsv=4), then_ping), 1),
            before=(text("Hello"),),
        ),
        _fail_case(
            "3.5", rfc, "binary with RSV=5", Send((Frame(BINARY, b"\x00\xff", rsv=5),))
        ),
        _fail_case("3.6", rfc, "ping with RSV=6", Send((Frame(PING, b"p", rsv=6),))),
        _fail_case("3.7", rfc, "close with RSV=7", Send((Frame(CLOSE, rsv=7),))),
        _fail_case("3.8", rfc, "pong with RSV=1", Send((Frame(PONG, b"p", rsv=1),))),
        _fail_case(
            "3.9",
            rfc,
            "continuation frame with RSV=4 in a fragmented text",
            Send((Frame(TEXT, b"frag", fin=False), Frame(CONT, b"ment", rsv=4))),
        ),
        _fail_case(
            "3.10",
            rfc,
            "binary, wait for its echo, binary with RSV=2",
            Send((Frame(BINARY, b"\x01"),)),
            Sync(1),
            Send((Frame(BINARY, b"\x02", rsv=2),)),
            before=(binary(b"\x01"),),
        ),
    ]


def _reserved_opcodes() -> list[Case]:
    """4.x: reserved opcodes 3-7 (data) and B-F (control) (RFC 6455, 5.2)."""
    cases = []
    hello = Frame(TEXT, b"Hello")
    for group, opcodes in ((1, range(3, 8)), (2, range(11, 16))):
        for index, opcode in enumerate(opcodes, 1):
            payload = b"reserved" if index % 2 == 0 else b""
            frame = Frame(opcode, payload)
            if index <= 2:
                title = f"frame with reserved opcode {opcode}" + (
                    " and a payload" if payload else ""
                )
                cases.append(
                    _fail_case(
                        f"4.{group}.{index}", "RFC 6455 5.2", title, Send((frame,))
                    )
                )
            else:
                cases.append(
                    _fail_case(
                        f"4.{group}.{index}",
                        "RFC 6455 5.2",
                        f"text, wait for its echo, opcode {opcode}, ping",
                        Send((hello,)),
                        Sync(1),
                        Send((frame, Frame(PING, b"p"))),
                        before=(text("Hello"),),
                    )
                )
            cases.append(
                _fail_case(
                    f"4.{group}.{index + 5}",
                    "RFC 6455 5.2, 5.4",
                    f"opcode {opcode} between the fragments of a text message",
                    Send(
                        (Frame(TEXT, b"frag", fin=False), frame, Frame(CONT, b"ment"))
                    ),
                )
            )
    return cases


def _fragmentation() -> list[Case]:
    """5.x: fragmented messages and control frames between them (RFC 6455, 5.4)."""
    rfc = "RFC 6455 5.4"
    frag1 = Frame(TEXT, b"fragment1", fin=False)
    frag2 = Frame(CONT, b"fragment2")
    whole = text("fragment1fragment2")
    ping = Frame(PING, b"between")
    five = fragments(TEXT, [b"fragment%d" % n for n in range(1, 6)])
    five_text = text("".join(f"fragment{n}" for n in range(1, 6)))
    ten = fragments(BINARY, [bytes([n]) * 3 for n in range(10)])
    interleaved: list[Frame] = []
    for index, frame in enumerate(ten):
        interleaved += [frame] if index == 9 else [frame, Frame(PING, b"%d" % index)]
    orphan_cont = Frame(CONT, b"orphan")
    orphan_open = Frame(CONT, b"orphan", fin=False)
    return [
        _fail_case(
            "5.1",
            "RFC 6455 5.4, 5.5",
            "ping in 2 fragments",
            Send((Frame(PING, b"frag", fin=False), Frame(CONT, b"ment"))),
        ),
        _fail_case(
            "5.2",
            "RFC 6455 5.4, 5.5",
            "pong in 2 fragments",
            Send((Frame(PONG, b"frag", fin=False), Frame(CONT, b"ment"))),
        ),
        echo_case("5.3", rfc, "text in 2 fragments", [frag1, frag2], [whole]),
        Case(
            "5.4",
            rfc,
            "text in 2 fragments, one write each",
            (Send((frag1,)), Send((frag2,)), Sync(1), Send((close_frame(),))),
            (whole, close(1000)),
            local_close=1000,
        ),
        echo_case(
            "5.5",
            rfc,
            "text in 2 fragments, written 1 byte at a time",
            [frag1, frag2],
            [whole],
            chunk=1,
        ),
        echo_case(
            "5.6",
            rfc,
            "text in 2 fragments, ping between them",
            [frag1, ping, frag2],
            [pong(b"between"), whole],
        ),
        Case(
            "5.7",
            rfc,
            "as 5.6, waiting for the pong before the last fragment",
            (
                Send((frag1, ping)),
                Sync(1),
                Send((frag2,)),
                Sync(2),
                Send((close_frame(),)),
            ),
            (pong(b"between"), whole, close(1000)),
            local_close=1000,
        ),
        echo_case(
            "5.8",
            rfc,
            "as 5.6, written 1 byte at a time",
            [frag1, ping, frag2],
            [pong(b"between"), whole],
            chunk=1,
        ),
        _fail_case(
            "5.9",
            rfc,
            "continuation (FIN) with nothing to continue",
            Send((orphan_cont, Frame(TEXT, b"Hello"))),
        ),
        _fail_case(
            "5.10",
            rfc,
            "as 5.9, written 1 byte at a time",
            Send((orphan_cont, Frame(TEXT, b"Hello")), 1),
        ),
        _fail_case(
            "5.11",
            rfc,
            "continuation (no FIN) with nothing to continue",
            Send((orphan_open, Frame(TEXT, b"Hello"))),
        ),
        _fail_case(
            "5.12",
            rfc,
            "as 5.11, written 1 byte at a time",
            Send((orphan_open, Frame(TEXT, b"Hello")), 1),
        ),
        _fail_case(
            "5.13",
            rfc,
            "a message, its echo, then an orphan continuation",
            Send((frag1, frag2)),
            Sync(1),
            Send((orphan_open, Frame(TEXT, b"Hi"))),
            before=(whole,),
        ),
        _fail_case(
            "5.14",
            rfc,
            "orphan continuation (no FIN), then a fragmented text, twice",
            Send((orphan_open, frag1, frag2, orphan_open, frag1, frag2)),
        ),
        _fail_case(
            "5.15",
            rfc,
            "orphan continuation (FIN), then a fragmented text, twice",
            Send((orphan_cont, frag1, frag2, orphan_cont, frag1, frag2)),
        ),
        _fail_case(
            "5.16",
            rfc,
            "text fragment, then a new text frame (FIN)",
            Send((frag1, Frame(TEXT, b"fragment2"))),
        ),
        _fail_case(
            "5.17",
            rfc,
            "text fragment, then a new binary fragment",
            Send((frag1, Frame(BINARY, b"x", fin=False), Frame(CONT, b"y"))),
        ),
        Case(
            "5.18",
            rfc,
            "text in 5 fragments, pings after the 1st and 4th, waiting",
            (
                Send((five[0], Frame(PING, b"one"))),
                Sync(1),
                Send((*five[1:4], Frame(PING, b"two"))),
                Sync(2),
                Send((five[4],)),
                Sync(3),
                Send((close_frame(),)),
            ),
            (pong(b"one"), pong(b"two"), five_text, close(1000)),
            local_close=1000,
        ),
        echo_case(
            "5.19",
            rfc,
            "as 5.18 in one write, 1 byte at a time",
            [five[0], Frame(PING, b"one"), *five[1:4], Frame(PING, b"two"), five[4]],
            [pong(b"one"), pong(b"two"), five_text],
            chunk=1,
        ),
        echo_case(
            "5.20",
            rfc,
            "binary in 10 fragments, a ping between every two",
            interleaved,
            [
                *(pong(b"%d" % n) for n in range(9)),
                binary(b"".join(f.payload for f in ten)),
            ],
        ),
        _fail_case(
            "5.21",
            "RFC 6455 5.4, 5.5",
            "close frame in 2 fragments",
            Send((Frame(CLOSE, b"\x03", fin=False), Frame(CONT, b"\xe8"))),
        ),
        echo_case(
            "5.22",
            rfc,
            "text in 3 fragments, all empty",
            fragments(TEXT, [b"", b"", b""]),
            [text("")],
        ),
    ]


def basic_cases() -> list[Case]:
    """The cases of categories 1 to 5."""
    return [
        *_framing(),
        *_pings(),
        *_reserved_bits(),
        *_reserved_opcodes(),
        *_fragmentation(),
    ]
