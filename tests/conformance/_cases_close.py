"""Cases of Autobahn categories 7 (closing), 9 (limits and speed, scaled down
for CI) and 10 (miscellaneous) (RFC 6455, 5.1, 5.2, 5.4, 5.5.1, 7)."""

from __future__ import annotations

import struct

from ._model import (
    BINARY,
    CONT,
    PING,
    TEXT,
    Case,
    Frame,
    Item,
    Message,
    Send,
    Sync,
    binary,
    close,
    close_frame,
    echo_case,
    fragments,
    text,
)

__all__ = ("close_cases", "limit_cases", "misc_cases")

KIB = 1024
MIB = 1024 * KIB

#: Close codes a close frame may carry (RFC 6455, 7.4.1, 7.4.2 and the IANA
#: registry for 1012-1014).
VALID_CODES = (
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    3999,
    4000,
    4999,
)
#: Codes that must not appear on the wire (7.4.1: 1004-1006 and 1015 are
#: reserved or local-only; 0-999, 1016-2999 and 5000+ are not assigned).
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def _closed_by_peer(
    id: str,
    rfc: str,
    title: str,
    *steps: Send | Sync,
    expect: tuple[Item, ...],
    local: int | None,
) -> Case:
    return Case(id, rfc, title, steps, expect, local_close=local)


def close_cases() -> list[Case]:
    """7.x: the closing handshake and close frame payloads."""
    rfc = "RFC 6455 5.5.1, 7.1"
    hello = Frame(TEXT, b"Hello")
    big = "*" * (256 * KIB)
    cases = [
        echo_case("7.1.1", rfc, "text, its echo, then close", [hello], [text("Hello")]),
        _closed_by_peer(
            "7.1.2",
            rfc,
            "close, then close again",
            Send((close_frame(), close_frame())),
            expect=(close(1000),),
            local=1000,
        ),
        _closed_by_peer(
            "7.1.3",
            rfc,
            "close, then a ping (must not be answered)",
            Send((close_frame(), Frame(PING, b"late"))),
            expect=(close(1000),),
            local=1000,
        ),
        _closed_by_peer(
            "7.1.4",
            rfc,
            "close, then text (must be ignored)",
            Send((close_frame(), hello)),
            expect=(close(1000),),
            local=1000,
        ),
        _closed_by_peer(
            "7.1.5",
            rfc,
            "text fragment, close, last fragment",
            Send(
                (Frame(TEXT, b"frag", fin=False), close_frame(), Frame(CONT, b"ment"))
            ),
            expect=(close(1000),),
            local=1000,
        ),
        Case(
            "7.1.6",
            rfc,
            "256 KiB text, close, ping, back to back",
            (Send((Frame(TEXT, big.encode()), close_frame(), Frame(PING, b"late"))),),
            (text(big), close(1000)),
            non_strict=((close(1000),),),
            local_close=1000,
        ),
        _closed_by_peer(
            "7.3.1",
            rfc,
            "close with an empty payload",
            Send((close_frame(None),)),
            expect=(close(frozenset({None, 1000})),),
            local=1005,
        ),
        Case(
            "7.3.2",
            "RFC 6455 5.5.1",
            "close with a 1-byte payload",
            (Send((Frame(0x8, b"\x03"),)),),
            (close(1002),),
        ),
        _closed_by_peer(
            "7.3.3",
            rfc,
            "close 1000 without a reason",
            Send((close_frame(),)),
            expect=(close(1000),),
            local=1000,
        ),
        _closed_by_peer(
            "7.3.4",
            rfc,
            "close 1000 with a reason",
            Send((close_frame(1000, b"Hello World!"),)),
            expect=(close(1000),),
            local=1000,
        ),
        _closed_by_peer(
            "7.3.5",
            "RFC 6455 5.5, 5.5.1",
            "close 1000 with a 123-byte reason (payload of 125)",
            Send((close_frame(1000, b"*" * 123),)),
            expect=(close(1000),),
            local=1000,
        ),
        Case(
            "7.3.6",
            "RFC 6455 5.5",
            "close 1000 with a 124-byte reason (126)",
            (Send((close_frame(1000, b"*" * 124),)),),
            (close(1002),),
        ),
        _closed_by_peer(
            "7.3.7",
            rfc,
            "close 1000 with a multi-byte UTF-8 reason",
            Send((close_frame(1000, "κόσμε ✓".encode()),)),
            expect=(close(1000),),
            local=1000,
        ),
        Case(
            "7.5.1",
            "RFC 6455 5.5.1, 8.1",
            "close reason that is not UTF-8",
            (Send((close_frame(1000, b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80ed"),)),),
            (close(1007),),
        ),
        Case(
            "7.5.2",
            "RFC 6455 5.5.1, 8.1",
            "close reason cut inside a character",
            (Send((close_frame(1000, "κόσμε".encode()[:-1]),)),),
            (close(1007),),
        ),
    ]
    for index, code in enumerate(VALID_CODES, 1):
        cases.append(
            _closed_by_peer(
                f"7.7.{index}",
                "RFC 6455 7.4.1, 7.4.2",
                f"close with valid code {code}",
                Send((close_frame(code),)),
                expect=(close(code),),
                local=code,
            )
        )
    for index, code in enumerate(INVALID_CODES, 1):
        cases.append(
            Case(
                f"7.9.{index}",
                "RFC 6455 7.4.1, 7.4.2",
                f"close with invalid code {code}",
                (Send((Frame(0x8, struct.pack("!H", code)),)),),
                (close(1002),),
            )
        )
    return cases


def _payload(opcode: int, size: int) -> tuple[bytes, Item]:
    if opcode == TEXT:
        data = ("BAsd7&jh23" * (size // 10 + 1))[:size]
        return data.encode(), text(data)
    raw = bytes(range(256)) * (size // 256 + 1)
    return raw[:size], binary(raw[:size])


def limit_cases() -> list[Case]:
    """9.x: large messages, many fragments, many messages (Autobahn 9 scaled:
    at most 4 MiB per message so that the suite stays quick)."""
    rfc = "RFC 6455 5.4, 10.4"
    big = 8 * MIB
    cases: list[Case] = []
    for group, opcode in ((1, TEXT), (2, BINARY)):
        kind = "text" if opcode == TEXT else "binary"
        for index, size in enumerate((64 * KIB, 256 * KIB, MIB, 4 * MIB), 1):
            data, item = _payload(opcode, size)
            cases.append(
                echo_case(
                    f"9.{group}.{index}",
                    rfc,
                    f"{kind} message of {size // KIB} KiB",
                    [Frame(opcode, data)],
                    [item],
                    max_size=big,
                )
            )
        data, item = _payload(opcode, MIB)
        for index, frag in enumerate(
            (16, 64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB), 1
        ):
            pieces = [data[at : at + frag] for at in range(0, len(data), frag)]
            cases.append(
                echo_case(
                    f"9.{group + 2}.{index}",
                    rfc,
                    f"1 MiB {kind} in {frag}-byte fragments",
                    fragments(opcode, pieces),
                    [item],
                    max_size=big,
                )
            )
        for index, chop in enumerate((256, KIB, 4 * KIB, 16 * KIB, 64 * KIB), 1):
            cases.append(
                echo_case(
                    f"9.{group + 4}.{index}",
                    rfc,
                    f"1 MiB {kind} written in {chop}-byte chunks",
                    [Frame(opcode, data)],
                    [item],
                    chunk=chop,
                    max_size=big,
                )
            )
        for index, size in enumerate((0, 16, 64, 256, KIB, 4 * KIB), 1):
            small, small_item = _payload(opcode, size)
            steps: list[Send | Sync] = []
            for count in range(1, 101):
                steps += [Send((Frame(opcode, small),)), Sync(count)]
            steps.append(Send((close_frame(),)))
            cases.append(
                Case(
                    f"9.{group + 6}.{index}",
                    rfc,
                    f"100 {kind} messages of {size} bytes, one at a time",
                    tuple(steps),
                    (*[small_item] * 100, close(1000)),
                    local_close=1000,
                )
            )
    cases += _size_limits()
    cases += _bursts()
    return cases


def _bursts() -> list[Case]:
    """9.10: many messages back to back, more than ``max_queue`` (32) holds:
    the anyws peer stops reading while its queue is full (backpressure) and
    must neither lose nor reorder anything."""
    rfc = "RFC 6455 5.4, 6.2"
    texts = [f"message {n}" for n in range(500)]
    blobs = [bytes([n]) * 64 * KIB for n in range(100)]
    return [
        echo_case(
            "9.10.1",
            rfc,
            "500 small text messages in one write",
            [Frame(TEXT, t.encode()) for t in texts],
            [text(t) for t in texts],
        ),
        echo_case(
            "9.10.2",
            rfc,
            "100 binary messages of 64 KiB in one write",
            [Frame(BINARY, b) for b in blobs],
            [binary(b) for b in blobs],
        ),
    ]


def _size_limits() -> list[Case]:
    """9.9: max_size bounds a whole message, never the number of fragments."""
    rfc = "RFC 6455 5.4, 10.4"
    limit = MIB
    text_data, text_item = _payload(TEXT, 256 * KIB)
    at_limit, at_limit_item = _payload(BINARY, limit)
    over, _ = _payload(BINARY, limit + 1)
    return [
        echo_case(
            "9.9.1",
            rfc,
            "256 KiB text in 1-byte fragments (262144 frames)",
            fragments(TEXT, [text_data[i : i + 1] for i in range(len(text_data))]),
            [text_item],
        ),
        echo_case(
            "9.9.2",
            rfc,
            "binary of exactly max_size (1 MiB) in 1 KiB fragments",
            fragments(BINARY, [at_limit[i : i + KIB] for i in range(0, limit, KIB)]),
            [at_limit_item],
            max_size=limit,
        ),
        Case(
            "9.9.3",
            rfc,
            "binary of max_size + 1 bytes in one frame",
            (Send((Frame(BINARY, over),)),),
            (close(1009),),
            max_size=limit,
        ),
        Case(
            "9.9.4",
            rfc,
            "binary of max_size + 1 bytes in 64 KiB fragments",
            (
                Send(
                    tuple(
                        fragments(
                            BINARY,
                            [
                                over[i : i + 64 * KIB]
                                for i in range(0, len(over), 64 * KIB)
                            ],
                        )
                    )
                ),
            ),
            (close(1009),),
            max_size=limit,
        ),
        Case(
            "9.9.5",
            rfc,
            "frame header declaring 2**40 bytes, no payload",
            (Send((Frame(BINARY, b"", length=2**40),)),),
            (close(1009),),
            max_size=limit,
        ),
    ]


def misc_cases() -> list[Case]:
    """10.x: auto-fragmentation, length encodings, masking direction."""
    kosme = "κόσμε" * 6554
    data = bytes(range(256)) * 256
    return [
        echo_case(
            "10.1.1",
            "RFC 6455 5.4",
            "64 KiB text sent as 1000-byte frames",
            [Message("*" * 65536, frag=1000)],
            [text("*" * 65536)],
        ),
        echo_case(
            "10.1.2",
            "RFC 6455 5.4",
            "64 KiB binary sent as 1000-byte frames",
            [Message(data, frag=1000)],
            [binary(data)],
        ),
        echo_case(
            "10.1.3",
            "RFC 6455 5.4, 5.6",
            "64 KiB of Greek text as 1000-byte frames (characters cut)",
            [Message(kosme, frag=1000)],
            [text(kosme)],
        ),
        Case(
            "10.2.1",
            "RFC 6455 5.2",
            "5-byte text with its length in the 16-bit and 64-bit forms",
            (
                Send((Frame(TEXT, b"short", length_bits=16),)),
                Sync(1),
                Send((Frame(TEXT, b"short", length_bits=64),)),
                Sync(2),
                Send((close_frame(),)),
            ),
            (text("short"), text("short"), close(1000)),
            non_strict=((close(1002),),),
            local_close=1000,
        ),
        Case(
            "10.3.1",
            "RFC 6455 5.1, 5.3",
            "text frame masked the wrong way",
            (Send((Frame(TEXT, b"Hello", wrong_mask=True),)),),
            (close(1002),),
        ),
        Case(
            "10.3.2",
            "RFC 6455 5.1, 5.3",
            "ping masked the wrong way",
            (Send((Frame(PING, b"p", wrong_mask=True),)),),
            (close(1002),),
        ),
        Case(
            "10.3.3",
            "RFC 6455 5.1, 5.3",
            "fragmented text, the 2nd fragment masked the wrong way",
            (Send((Frame(TEXT, b"a", fin=False), Frame(CONT, b"b", wrong_mask=True))),),
            (close(1002),),
        ),
        Case(
            "10.4.1",
            "RFC 6455 5.2",
            "64-bit length with its top bit set",
            (Send((Frame(BINARY, b"", length=2**63),)),),
            (close(frozenset({1002, 1009})),),
        ),
    ]
