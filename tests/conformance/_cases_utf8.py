"""Cases of Autobahn category 6: UTF-8 in text messages (RFC 6455, 5.6 and 8.1).

Each sequence is sent whole and split at every byte across fragments. An
invalid one must fail the connection with 1007 fast: no later than the frame
that holds the first byte that cannot start or continue valid UTF-8. To check
that without a pause, a ping follows that frame: an endpoint that failed
drops it, one that did not answers it with a pong, which fails the case.
The position is computed by :func:`first_invalid`, written from the table of
RFC 3629, section 4 (not with the code under test).
"""

from __future__ import annotations

from ._model import (
    PING,
    TEXT,
    Case,
    Frame,
    Item,
    Send,
    close,
    echo_case,
    fragments,
    text,
)

__all__ = ("first_invalid", "utf8_cases", "INVALID", "VALID")

RFC = "RFC 6455 5.6, 8.1"
FAIL_FAST = b"fail-fast"

#: Valid UTF-8, including boundaries and noncharacters (which are valid).
VALID: tuple[tuple[str, str], ...] = (
    ("U+0000, first 1-byte", "\x00"),
    ("U+0080, first 2-byte", "\u0080"),
    ("U+0800, first 3-byte", "\u0800"),
    ("U+10000, first 4-byte", "\U00010000"),
    ("U+007F, last 1-byte", "\x7f"),
    ("U+07FF, last 2-byte", "\u07ff"),
    ("U+FFFF, last 3-byte", "\uffff"),
    ("U+10FFFF, last code point", "\U0010ffff"),
    ("U+D7FF, before the surrogates", "\ud7ff"),
    ("U+E000, after the surrogates", "\ue000"),
    ("U+FFFD, replacement character", "\ufffd"),
    ("U+FFFE noncharacter", "\ufffe"),
    ("U+FDD0 and U+FDEF noncharacters", "\ufdd0\ufdef"),
    ("U+1FFFE and U+10FFFE noncharacters", "\U0001fffe\U0010fffe"),
    ("Greek kosme", "κόσμε"),
    ("Latin-1 and ASCII mix", "Hello-µ@ßöäüàá-UTF-8!!"),
    ("emoji and CJK", "\U0001f600 漢字 \U0001f680"),
)

#: Invalid UTF-8 (RFC 3629, 3 and 4).
INVALID: tuple[tuple[str, bytes], ...] = (
    ("U+110000, beyond the last code point", b"\xf4\x90\x80\x80"),
    ("F7 BF BF BF, beyond U+10FFFF", b"\xf7\xbf\xbf\xbf"),
    ("5-byte form", b"\xf8\x88\x80\x80\x80"),
    ("6-byte form", b"\xfc\x84\x80\x80\x80\x80"),
    ("lone continuation byte 80", b"\x80"),
    ("lone continuation byte BF", b"\xbf"),
    ("continuation bytes 80 BF 80 BF", b"\x80\xbf\x80\xbf"),
    ("lonely start C0, then a space", b"\xc0 "),
    ("lonely start C2, then a space", b"\xc2 "),
    ("lonely start DF, then a space", b"\xdf "),
    ("lonely start E0, then a space", b"\xe0 "),
    ("lonely start EF, then a space", b"\xef "),
    ("lonely start F0, then a space", b"\xf0 "),
    ("lonely start F4, then a space", b"\xf4 "),
    ("lonely start F8, then a space", b"\xf8 "),
    ("lonely start FC, then a space", b"\xfc "),
    ("2-byte sequence missing its last byte", b"\xdf"),
    ("3-byte sequence missing its last byte", b"\xef\xbf"),
    ("4-byte sequence missing its last byte", b"\xf0\x90\x80"),
    ("U+10FFFF missing its last byte", b"\xf4\x8f\xbf"),
    ("two incomplete sequences", b"\xe0\xa0\xdf"),
    ("impossible byte FE", b"\xfe"),
    ("impossible byte FF", b"\xff"),
    ("impossible bytes FE FE FF FF", b"\xfe\xfe\xff\xff"),
    ("overlong '/' in 2 bytes", b"\xc0\xaf"),
    ("overlong '/' in 3 bytes", b"\xe0\x80\xaf"),
    ("overlong '/' in 4 bytes", b"\xf0\x80\x80\xaf"),
    ("overlong '/' in 5 bytes", b"\xf8\x80\x80\x80\xaf"),
    ("largest overlong 2-byte", b"\xc1\xbf"),
    ("largest overlong 3-byte", b"\xe0\x9f\xbf"),
    ("largest overlong 4-byte", b"\xf0\x8f\xbf\xbf"),
    ("overlong NUL in 2 bytes", b"\xc0\x80"),
    ("overlong NUL in 3 bytes", b"\xe0\x80\x80"),
    ("overlong NUL in 4 bytes", b"\xf0\x80\x80\x80"),
    ("surrogate U+D800", b"\xed\xa0\x80"),
    ("surrogate U+DB7F", b"\xed\xad\xbf"),
    ("surrogate U+DB80", b"\xed\xae\x80"),
    ("surrogate U+DBFF", b"\xed\xaf\xbf"),
    ("surrogate U+DC00", b"\xed\xb0\x80"),
    ("surrogate U+DF80", b"\xed\xbe\x80"),
    ("surrogate U+DFFF", b"\xed\xbf\xbf"),
    ("surrogate pair U+D800 U+DC00", b"\xed\xa0\x80\xed\xb0\x80"),
    ("surrogate pair U+DBFF U+DFFF", b"\xed\xaf\xbf\xed\xbf\xbf"),
    ("surrogate inside Greek text", "κόσμε".encode() + b"\xed\xa0\x80edited"),
)


def first_invalid(data: bytes) -> int | None:
    """Where ``data`` stops being a prefix of valid UTF-8 (RFC 3629, 4).

    Returns:
        The index of the first byte that no valid text can have there;
        ``len(data)`` if ``data`` ends inside a character; ``None`` if it is
        valid.
    """
    need, low, high = 0, 0x80, 0xBF
    for index, byte in enumerate(data):
        if need:
            if not low <= byte <= high:
                return index
            need, low, high = need - 1, 0x80, 0xBF
        elif byte >= 0x80:
            if 0xC2 <= byte <= 0xDF:
                need = 1
            elif 0xE0 <= byte <= 0xEF:
                need = 2
                low, high = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F)}.get(
                    byte, (0x80, 0xBF)
                )
            elif 0xF0 <= byte <= 0xF4:
                need = 3
                low, high = {0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}.get(
                    byte, (0x80, 0xBF)
                )
            else:
                return index
    return len(data) if need else None


def fail_fast_steps(
    frames: list[Frame], data: bytes, starts: list[int]
) -> tuple[Send, ...]:
    """Send ``frames`` with a ping right after the one holding the first invalid
    byte of ``data`` (``starts`` gives each frame's offset in ``data``)."""
    bad = first_invalid(data)
    assert bad is not None
    last = max(i for i, start in enumerate(starts) if start <= bad)
    if bad == len(data):
        # Invalid only because it ends inside a character: the last frame.
        last = len(frames) - 1
    head, tail = frames[: last + 1], frames[last + 1 :]
    steps = [Send((*head, Frame(PING, FAIL_FAST)))]
    if tail:
        steps.append(Send(tuple(tail)))
    return tuple(steps)


def _bytewise(data: bytes) -> tuple[list[Frame], list[int]]:
    pieces = [data[i : i + 1] for i in range(len(data))]
    return fragments(TEXT, pieces), list(range(len(data)))


def _invalid_case(
    id: str, title: str, data: bytes, frames: list[Frame], starts: list[int]
) -> Case:
    return Case(id, RFC, title, fail_fast_steps(frames, data, starts), (close(1007),))


def _classic() -> list[Case]:
    """6.1 to 6.4: empty fragments, Autobahn's own texts and fail-fast splits."""
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    kosme = "κόσμε".encode()
    edited = kosme + b"\xed\xa0\x80edited"
    bad_point = b"\xf4\x90\x80\x80"
    cases = [
        echo_case("6.1.1", RFC, "empty text message", [Frame(TEXT)], [text("")]),
        echo_case(
            "6.1.2",
            RFC,
            "text in 3 empty fragments",
            fragments(TEXT, [b""] * 3),
            [text("")],
        ),
        echo_case(
            "6.1.3",
            RFC,
            "empty, non-empty, empty fragments",
            fragments(TEXT, [b"", b"middle", b""]),
            [text("middle")],
        ),
        echo_case(
            "6.2.1",
            RFC,
            "valid text in one frame",
            [Frame(TEXT, hello)],
            [text(hello.decode())],
        ),
        echo_case(
            "6.2.2",
            RFC,
            "valid text in 2 fragments at a character boundary",
            fragments(TEXT, [hello[:12], hello[12:]]),
            [text(hello.decode())],
        ),
        echo_case(
            "6.2.3",
            RFC,
            "valid text in 1-byte fragments",
            _bytewise(hello)[0],
            [text(hello.decode())],
        ),
        echo_case(
            "6.2.4",
            RFC,
            "Greek kosme in 1-byte fragments",
            _bytewise(kosme)[0],
            [text("κόσμε")],
        ),
        Case(
            "6.3.1",
            RFC,
            "invalid text in one frame",
            (Send((Frame(TEXT, edited),)),),
            (close(1007),),
        ),
        _invalid_case(
            "6.3.2", "invalid text in 1-byte fragments", edited, *_bytewise(edited)
        ),
    ]
    # 6.4.x: 3 fragments, the 2nd holds the first invalid byte: the close must
    # come before the 3rd is sent.
    splits = (
        ("code point U+110000 in the middle fragment", [kosme, bad_point, b"edited"]),
        (
            "U+110000 cut across the first two fragments",
            [kosme + b"\xf4", b"\x90", b"\x80\x80edited"],
        ),
    )
    for index, (title, pieces) in enumerate(splits, 1):
        data = b"".join(pieces)
        starts = [sum(map(len, pieces[:i])) for i in range(len(pieces))]
        frames = fragments(TEXT, pieces)
        cases.append(_invalid_case(f"6.4.{index}", title, data, frames, starts))
        steps = fail_fast_steps(frames, data, starts)
        cases.append(
            Case(
                f"6.4.{index + 2}",
                RFC,
                title + ", 1 byte per write",
                tuple(Send(s.parts, 1) for s in steps),
                (close(1007),),
            )
        )
    return cases


def _valid() -> list[Case]:
    """6.5 to 6.7: valid sequences whole, in 1-byte fragments, split in two."""
    cases = []
    for index, (title, value) in enumerate(VALID, 1):
        data = value.encode()
        cases.append(
            echo_case(
                f"6.5.{index}",
                RFC,
                f"{title}, one frame",
                [Frame(TEXT, data)],
                [text(value)],
            )
        )
        cases.append(
            echo_case(
                f"6.6.{index}",
                RFC,
                f"{title}, 1-byte fragments",
                _bytewise(data)[0],
                [text(value)],
            )
        )
        # Split in 2 at every offset, the empty ends included: one message each.
        splits = [
            fragments(TEXT, [data[:at], data[at:]]) for at in range(len(data) + 1)
        ]
        cases.append(
            echo_case(
                f"6.7.{index}",
                RFC,
                f"{title}, split in 2 fragments at every byte",
                [frame for split in splits for frame in split],
                [text(value)] * len(splits),
            )
        )
    return cases


def _invalid() -> list[Case]:
    """6.8 to 6.10: invalid sequences whole, in 1-byte fragments, split in two."""
    cases = []
    for index, (title, value) in enumerate(INVALID, 1):
        cases.append(
            Case(
                f"6.8.{index}",
                RFC,
                f"{title}, one frame",
                (Send((Frame(TEXT, value),)),),
                (close(1007),),
            )
        )
        data = b"a" + value
        cases.append(
            _invalid_case(
                f"6.9.{index}",
                f"'a', then {title}, 1-byte fragments",
                data,
                *_bytewise(data),
            )
        )
        data = b"ab" + value + b"cd"
        bad = first_invalid(data)
        assert bad is not None
        at = bad + 1
        frames = fragments(TEXT, [data[:at], data[at:]])
        cases.append(
            _invalid_case(
                f"6.10.{index}",
                f"{title} amid text, split after its first bad byte",
                data,
                frames,
                [0, at],
            )
        )
    return cases


def _prefixes() -> list[Case]:
    """6.11: every prefix of 'kosme' (Autobahn 6.6): valid at character ends."""
    cases = []
    kosme = "κόσμε".encode()
    for length in range(1, len(kosme) + 1):
        data = kosme[:length]
        title = f"first {length} bytes of Greek kosme"
        item: Item
        if first_invalid(data) is None:
            item = text(data.decode())
            cases.append(
                echo_case(f"6.11.{length}", RFC, title, [Frame(TEXT, data)], [item])
            )
        else:
            cases.append(
                Case(
                    f"6.11.{length}",
                    RFC,
                    title,
                    (Send((Frame(TEXT, data),)),),
                    (close(1007),),
                )
            )
    return cases


def utf8_cases() -> list[Case]:
    """The cases of category 6."""
    return [*_classic(), *_valid(), *_invalid(), *_prefixes()]
