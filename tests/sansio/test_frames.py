"""Tests for anyws.sansio.frames: the wire format of RFC 6455, section 5."""

from __future__ import annotations

import array
import os
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws.exceptions import PayloadTooBig, ProtocolError
from anyws.sansio import frames
from anyws.sansio._buffer import StreamReader
from anyws.sansio.frames import (
    CTRL_OPCODES,
    DATA_OPCODES,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    CloseCode,
    Frame,
    Opcode,
    apply_mask,
    encode_data,
    is_valid_close_code,
    parse_close,
    prepare_ctrl,
    prepare_data,
    serialize_close,
)

if TYPE_CHECKING:
    from anyws.sansio.extensions.base import Extension

MASK_KEY = bytes.fromhex("37fa213d")  # the key of the examples in RFC 6455, 5.7


# -- helpers -----------------------------------------------------------------


def feed(
    data: bytes,
    *,
    mask: bool,
    max_size: int | None = None,
    extensions: Sequence[Extension] | None = None,
    step: int | None = None,
) -> Frame:
    """Parse ``data`` fed in chunks of ``step`` bytes (all at once if None).

    Asserts that the parser consumes exactly the bytes of one frame.
    """
    reader = StreamReader()
    parser = Frame.parse(
        reader.read_exact, mask=mask, max_size=max_size, extensions=extensions
    )
    step = step or max(len(data), 1)
    try:
        next(parser)
        for start in range(0, len(data), step):
            reader.feed_data(data[start : start + step])
            next(parser)
        reader.feed_eof()
        next(parser)
    except StopIteration as exc:
        assert not reader.buffer, "parser left bytes unread"
        return cast(Frame, exc.value)
    raise AssertionError("parser did not finish")  # pragma: no cover (failure)


def start_parser(
    data: bytes, *, mask: bool, max_size: int | None = None
) -> tuple[StreamReader, Generator[None, None, Frame]]:
    """Feed ``data`` to a fresh parser without ending the stream."""
    reader = StreamReader()
    reader.feed_data(data)
    return reader, Frame.parse(reader.read_exact, mask=mask, max_size=max_size)


def naive_mask(data: bytes, mask: bytes) -> bytes:
    """RFC 6455, 5.3, literally: octet i XOR mask octet i MOD 4."""
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


def pattern(size: int) -> bytes:
    """Deterministic bytes of any length (hypothesis needs determinism)."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class FakeExtension:
    """A duck-typed extension that records calls and tags the payload."""

    def __init__(self, tag: bytes, log: list[str], *, rsv1: bool = False) -> None:
        self.name = f"x-{tag.decode()}"
        self.tag = tag
        self.log = log
        self.rsv1 = rsv1  # whether the extension owns RSV1, like deflate

    def encode(self, frame: Frame) -> Frame:
        self.log.append(f"encode {self.name}")
        return frame._replace(data=frame.data + self.tag, rsv1=self.rsv1)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.log.append(f"decode {self.name} {max_size}")
        assert frame.data.endswith(self.tag)
        if self.rsv1:
            assert frame.rsv1
        return frame._replace(data=frame.data[: -len(self.tag)], rsv1=False)


def as_extensions(*extensions: FakeExtension) -> Sequence[Extension]:
    """Type duck-typed extensions as the ABC (anyws never requires subclassing)."""
    return cast("Sequence[Extension]", list(extensions))


# -- constants ---------------------------------------------------------------


def test_opcode_aliases() -> None:
    assert (OP_CONT, OP_TEXT, OP_BINARY) == (0, 1, 2)
    assert (OP_CLOSE, OP_PING, OP_PONG) == (8, 9, 10)
    assert OP_TEXT is Opcode.TEXT
    assert DATA_OPCODES == (Opcode.CONT, Opcode.TEXT, Opcode.BINARY)
    assert CTRL_OPCODES == (Opcode.CLOSE, Opcode.PING, Opcode.PONG)


def test_close_code_values() -> None:
    assert {code.name: code.value for code in CloseCode} == {
        "NORMAL_CLOSURE": 1000,
        "GOING_AWAY": 1001,
        "PROTOCOL_ERROR": 1002,
        "UNSUPPORTED_DATA": 1003,
        "NO_STATUS_RCVD": 1005,
        "ABNORMAL_CLOSURE": 1006,
        "INVALID_DATA": 1007,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "MANDATORY_EXTENSION": 1010,
        "INTERNAL_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_GATEWAY": 1014,
        "TLS_HANDSHAKE": 1015,
    }


def test_is_valid_close_code_every_value() -> None:
    valid = {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}
    for code in range(-1, 70_000):
        assert is_valid_close_code(code) is (code in valid), code


@pytest.mark.parametrize("code", [1004, 1005, 1006, 1015, 999, 1016, 2999, 5000])
def test_is_valid_close_code_refuses(code: int) -> None:
    assert not is_valid_close_code(code)


# -- masking -----------------------------------------------------------------


def test_apply_mask_rfc_example() -> None:
    # RFC 6455, 5.7: "Hello" masked with 37 fa 21 3d.
    assert apply_mask(b"Hello", MASK_KEY) == bytes.fromhex("7f9f4d5158")


@given(data=st.binary(max_size=300), mask=st.binary(min_size=4, max_size=4))
def test_apply_mask_matches_reference(data: bytes, mask: bytes) -> None:
    result = apply_mask(data, mask)
    assert type(result) is bytes
    assert result == naive_mask(data, mask)
    assert apply_mask(result, mask) == data


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 1000, 65537])
def test_apply_mask_sizes(size: int) -> None:
    data = pattern(size)
    assert apply_mask(data, MASK_KEY) == naive_mask(data, MASK_KEY)


def test_apply_mask_keeps_leading_zero_bytes() -> None:
    # The big-integer trick must not drop leading zeros of the result.
    assert apply_mask(MASK_KEY * 3, MASK_KEY) == bytes(12)
    assert apply_mask(bytes(5), bytes(4)) == bytes(5)


def test_apply_mask_bytes_like() -> None:
    data = b"abcdefghij"
    expected = naive_mask(data, MASK_KEY)
    assert apply_mask(bytearray(data), MASK_KEY) == expected
    assert apply_mask(memoryview(data), MASK_KEY) == expected
    assert apply_mask(data, bytearray(MASK_KEY)) == expected  # type: ignore[arg-type]


def test_apply_mask_non_contiguous_memoryview() -> None:
    view = memoryview(b"aXbXcXdXeX")[::2]
    assert not view.c_contiguous
    assert apply_mask(view, MASK_KEY) == naive_mask(b"abcde", MASK_KEY)


def test_apply_mask_memoryview_of_wide_items() -> None:
    # A memoryview of 16-bit items is masked byte by byte, over all its bytes.
    items = array.array("H", [0x0102, 0x0304, 0x0506])
    raw = items.tobytes()
    assert apply_mask(memoryview(items), MASK_KEY) == naive_mask(raw, MASK_KEY)


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_apply_mask_bad_mask(mask: bytes) -> None:
    with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
        apply_mask(b"data", mask)
    with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
        apply_mask(b"", mask)


@pytest.mark.parametrize("data", ["text", 42, None, [1, 2]])
def test_apply_mask_bad_data(data: object) -> None:
    with pytest.raises(TypeError):
        apply_mask(data, MASK_KEY)  # type: ignore[arg-type]


def test_apply_mask_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """An accelerator replaces ``frames.apply_mask``; both directions use it."""
    calls: list[int] = []

    def counting(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
        calls.append(len(data))
        return frames._apply_mask_py(data, mask)

    monkeypatch.setattr(frames, "apply_mask", counting)
    frame = Frame(True, OP_BINARY, b"payload")
    wire = frame.serialize(mask=True, mask_key=MASK_KEY)
    assert feed(wire, mask=True) == frame
    assert calls == [7, 7]


# -- serializing: RFC 6455, 5.7 examples ---------------------------------------


RFC_EXAMPLES = [
    # A single-frame unmasked text message.
    (Frame(True, OP_TEXT, b"Hello"), False, "810548656c6c6f"),
    # A single-frame masked text message.
    (Frame(True, OP_TEXT, b"Hello"), True, "818537fa213d7f9f4d5158"),
    # A fragmented unmasked text message.
    (Frame(False, OP_TEXT, b"Hel"), False, "010348656c"),
    (Frame(True, OP_CONT, b"lo"), False, "80026c6f"),
    # Unmasked ping and masked pong.
    (Frame(True, OP_PING, b"Hello"), False, "890548656c6c6f"),
    (Frame(True, OP_PONG, b"Hello"), True, "8a8537fa213d7f9f4d5158"),
]


@pytest.mark.parametrize(("frame", "mask", "wire"), RFC_EXAMPLES)
def test_rfc_examples(frame: Frame, mask: bool, wire: str) -> None:
    assert frame.serialize(mask=mask, mask_key=MASK_KEY) == bytes.fromhex(wire)
    assert feed(bytes.fromhex(wire), mask=mask) == frame


def test_rfc_example_256_bytes() -> None:
    frame = Frame(True, OP_BINARY, pattern(256))
    wire = frame.serialize(mask=False)
    assert wire == bytes.fromhex("827e0100") + pattern(256)
    assert feed(wire, mask=False) == frame


def test_rfc_example_64_kib() -> None:
    frame = Frame(True, OP_BINARY, pattern(65536))
    wire = frame.serialize(mask=False)
    assert wire == bytes.fromhex("827f0000000000010000") + pattern(65536)
    assert feed(wire, mask=False) == frame


LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 100_000, 2**20 + 3]


def header_size(length: int) -> int:
    """The minimal header size for a payload length (RFC 6455, 5.2)."""
    return 2 if length < 126 else 4 if length < 65536 else 10


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("mask", [False, True])
def test_lengths(length: int, mask: bool) -> None:
    frame = Frame(True, OP_BINARY, pattern(length))
    wire = frame.serialize(mask=mask, mask_key=MASK_KEY)
    assert len(wire) == header_size(length) + 4 * mask + length
    assert type(wire) is bytes
    assert feed(wire, mask=mask) == frame
    assert feed(wire, mask=mask, max_size=length) == frame


@pytest.mark.parametrize(
    ("length", "field"),
    [(0, "00"), (125, "7d"), (126, "7e007e"), (65535, "7effff")]
    + [(65536, "7f0000000000010000")],
)
def test_minimal_length_encoding(length: int, field: str) -> None:
    wire = Frame(True, OP_BINARY, bytes(length)).serialize(mask=False)
    assert wire[1 : 1 + len(field) // 2] == bytes.fromhex(field)


@pytest.mark.parametrize("opcode", list(Opcode))
@pytest.mark.parametrize("mask", [False, True])
def test_every_opcode(opcode: Opcode, mask: bool) -> None:
    frame = Frame(True, opcode, b"\x03\xe8ok" if opcode is OP_CLOSE else b"x")
    wire = frame.serialize(mask=mask)
    assert wire[0] == 0x80 | opcode
    assert bool(wire[1] & 0x80) is mask
    parsed = feed(wire, mask=mask)
    assert parsed == frame
    assert type(parsed.opcode) is Opcode


def test_fin_bit() -> None:
    assert Frame(False, OP_BINARY, b"").serialize(mask=False) == b"\x02\x00"
    assert Frame(True, OP_BINARY, b"").serialize(mask=False) == b"\x82\x00"


def test_random_mask_key(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"]

    def fake_urandom(size: int) -> bytes:
        assert size == 4
        return keys.pop(0)

    monkeypatch.setattr(os, "urandom", fake_urandom)
    frame = Frame(True, OP_BINARY, b"abcd")
    first = frame.serialize(mask=True)
    second = frame.serialize(mask=True)
    assert first[2:6] == b"\x01\x02\x03\x04"
    assert second[2:6] == b"\x05\x06\x07\x08"
    assert first[6:] == naive_mask(b"abcd", b"\x01\x02\x03\x04")
    assert not keys


def test_mask_key_ignored_without_mask() -> None:
    frame = Frame(True, OP_BINARY, b"abcd")
    assert frame.serialize(mask=False, mask_key=MASK_KEY) == b"\x82\x04abcd"


def test_bad_mask_key() -> None:
    with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
        Frame(True, OP_BINARY, b"abcd").serialize(mask=True, mask_key=b"abc")


@st.composite
def valid_frames(draw: st.DrawFn) -> Frame:
    """Any frame that passes ``check()``."""
    opcode = draw(st.sampled_from(list(Opcode)))
    if opcode in CTRL_OPCODES:
        return Frame(True, opcode, draw(st.binary(max_size=125)))
    data = draw(
        st.one_of(
            st.binary(max_size=300),
            st.integers(min_value=0, max_value=70_000).map(pattern),
        )
    )
    return Frame(draw(st.booleans()), opcode, data)


@given(
    frame=valid_frames(),
    mask=st.booleans(),
    mask_key=st.binary(min_size=4, max_size=4),
)
def test_round_trip(frame: Frame, mask: bool, mask_key: bytes) -> None:
    wire = frame.serialize(mask=mask, mask_key=mask_key)
    assert len(wire) == header_size(len(frame.data)) + 4 * mask + len(frame.data)
    assert feed(wire, mask=mask) == frame


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("length", [0, 5, 126, 300])
def test_byte_at_a_time(mask: bool, length: int) -> None:
    frame = Frame(False, OP_TEXT, pattern(length))
    wire = frame.serialize(mask=mask)
    assert feed(wire, mask=mask, step=1) == frame


@given(frame=valid_frames(), mask=st.booleans(), step=st.integers(1, 10))
def test_chunked_parse(frame: Frame, mask: bool, step: int) -> None:
    wire = frame.serialize(mask=mask)
    if len(wire) <= 1000:
        assert feed(wire, mask=mask, step=step) == frame


def test_parse_leaves_next_frame_in_buffer() -> None:
    first = Frame(True, OP_TEXT, b"one")
    second = Frame(True, OP_PING, b"two")
    reader = StreamReader()
    reader.feed_data(first.serialize(mask=False) + second.serialize(mask=False))
    for expected in (first, second):
        parser = Frame.parse(reader.read_exact, mask=False)
        with pytest.raises(StopIteration) as info:
            next(parser)
        assert info.value.value == expected
    assert not reader.buffer


def test_non_minimal_lengths_accepted() -> None:
    # RFC 6455, 5.2 requires the minimal encoding from senders only.
    expected = Frame(True, OP_TEXT, b"Hello")
    assert feed(bytes.fromhex("817e0005") + b"Hello", mask=False) == expected
    assert feed(bytes.fromhex("817f0000000000000005") + b"Hello", mask=False) == (
        expected
    )


# -- parse errors ----------------------------------------------------------------


def parse_error(data: bytes, *, mask: bool, max_size: int | None = None) -> Exception:
    """Run a parser on ``data`` (no EOF) and return what it raised."""
    reader, parser = start_parser(data, mask=mask, max_size=max_size)
    with pytest.raises(Exception) as info:  # noqa: B017 (the caller checks it)
        next(parser)
    return info.value


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_invalid_opcode(opcode: int) -> None:
    exc = parse_error(bytes([0x80 | opcode, 0x00]), mask=False)
    assert isinstance(exc, ProtocolError)
    assert str(exc) == f"invalid opcode: {opcode}"


@pytest.mark.parametrize("mask", [False, True])
def test_incorrect_masking(mask: bool) -> None:
    wire = Frame(True, OP_TEXT, b"hi").serialize(mask=not mask)
    exc = parse_error(wire, mask=mask)
    assert isinstance(exc, ProtocolError)
    assert str(exc) == "incorrect masking"


@pytest.mark.parametrize("bit", [0x40, 0x20, 0x10])
@pytest.mark.parametrize("mask", [False, True])
def test_reserved_bits(bit: int, mask: bool) -> None:
    wire = bytearray(Frame(True, OP_TEXT, b"hi").serialize(mask=mask))
    wire[0] |= bit
    with pytest.raises(ProtocolError, match="^reserved bits must be 0$"):
        feed(bytes(wire), mask=mask)


@pytest.mark.parametrize("opcode", CTRL_OPCODES)
def test_fragmented_control_frame(opcode: Opcode) -> None:
    with pytest.raises(ProtocolError, match="^fragmented control frame$"):
        feed(bytes([opcode, 0x00]), mask=False)


@pytest.mark.parametrize("opcode", CTRL_OPCODES)
def test_control_frame_too_long(opcode: Opcode) -> None:
    # Refused from the header alone: no payload is ever waited for.
    exc = parse_error(bytes([0x80 | opcode, 0x7E, 0x00, 0x7E]), mask=False)
    assert isinstance(exc, ProtocolError)
    assert str(exc) == "control frame too long"


@pytest.mark.parametrize("opcode", CTRL_OPCODES)
def test_control_frame_of_125_bytes(opcode: Opcode) -> None:
    data = b"\x03\xe8" + b"x" * 123 if opcode is OP_CLOSE else b"x" * 125
    frame = Frame(True, opcode, data)
    assert feed(frame.serialize(mask=True), mask=True) == frame


def test_length_with_top_bit_set() -> None:
    header = bytes.fromhex("827f8000000000000000")
    exc = parse_error(header, mask=False)
    assert isinstance(exc, ProtocolError)
    assert str(exc) == "invalid payload length"


def test_largest_length_without_top_bit() -> None:
    # 2**63 - 1 is a legal length: the parser waits for the payload.
    reader, parser = start_parser(bytes.fromhex("827f7fffffffffffffff"), mask=False)
    next(parser)
    assert not reader.buffer


def test_payload_too_big_before_payload() -> None:
    # Only the header of a 2**62-byte frame: it is refused at once.
    header = bytes.fromhex("827f4000000000000000")
    exc = parse_error(header, mask=False, max_size=2**20)
    assert isinstance(exc, PayloadTooBig)
    assert str(exc) == f"over size limit ({2**62} > {2**20} bytes)"


@pytest.mark.parametrize("mask", [False, True])
def test_payload_too_big_by_one(mask: bool) -> None:
    wire = Frame(True, OP_BINARY, bytes(126)).serialize(mask=mask)
    with pytest.raises(PayloadTooBig, match=r"^over size limit \(126 > 125 bytes\)$"):
        feed(wire, mask=mask, max_size=125)


def test_max_size_zero() -> None:
    assert feed(b"\x82\x00", mask=False, max_size=0) == Frame(True, OP_BINARY, b"")
    with pytest.raises(PayloadTooBig):
        feed(b"\x82\x01x", mask=False, max_size=0)


@pytest.mark.parametrize(
    "wire",
    [b"", b"\x82", b"\x82\x7e\x00", b"\x82\x7f\x00\x00", b"\x82\x05abc"]
    + [b"\x82\x85\x37\xfa", b"\x82\x85" + MASK_KEY + b"ab"],
)
def test_eof_inside_frame(wire: bytes) -> None:
    mask = len(wire) > 1 and bool(wire[1] & 0x80)
    with pytest.raises(EOFError):
        feed(wire, mask=mask)


def test_parser_waits_without_reading_ahead() -> None:
    reader, parser = start_parser(b"\x82\x05ab", mask=False)
    next(parser)
    assert reader.buffer == b"\x82\x05ab"[2:]
    reader.feed_data(b"cdeEXTRA")
    with pytest.raises(StopIteration) as info:
        next(parser)
    assert info.value.value == Frame(True, OP_BINARY, b"abcde")
    assert reader.buffer == b"EXTRA"


# -- check() and serialize errors -----------------------------------------------


@pytest.mark.parametrize(
    "flags", [{"rsv1": True}, {"rsv2": True}, {"rsv3": True}, {"rsv1": True}]
)
def test_check_reserved_bits(flags: dict[str, bool]) -> None:
    frame = Frame(True, OP_TEXT, b"", **flags)
    with pytest.raises(ProtocolError, match="^reserved bits must be 0$"):
        frame.check()
    with pytest.raises(ProtocolError, match="^reserved bits must be 0$"):
        frame.serialize(mask=False)


@pytest.mark.parametrize("opcode", CTRL_OPCODES)
def test_check_control_frames(opcode: Opcode) -> None:
    with pytest.raises(ProtocolError, match="^fragmented control frame$"):
        Frame(False, opcode, b"").serialize(mask=False)
    with pytest.raises(ProtocolError, match="^control frame too long$"):
        Frame(True, opcode, bytes(126)).serialize(mask=False)
    Frame(True, opcode, bytes(125)).check()


@pytest.mark.parametrize("opcode", DATA_OPCODES)
def test_check_data_frames(opcode: Opcode) -> None:
    Frame(False, opcode, bytes(126)).check()
    Frame(True, opcode, bytes(126)).check()


# -- extensions ------------------------------------------------------------------


def test_extensions_order() -> None:
    log: list[str] = []
    first, second = FakeExtension(b"1", log), FakeExtension(b"2", log)
    extensions = as_extensions(first, second)
    frame = Frame(True, OP_TEXT, b"data")
    wire = frame.serialize(mask=True, extensions=extensions)
    assert log == ["encode x-1", "encode x-2"]
    assert wire[6:] != b"data12"  # masked
    assert feed(wire, mask=True).data == b"data12"
    log.clear()
    parsed = feed(wire, mask=True, max_size=100, extensions=extensions)
    assert parsed == frame
    # Decoding runs in reverse order (RFC 6455, 9.1), with max_size.
    assert log == ["decode x-2 100", "decode x-1 100"]


def test_extension_owning_rsv1() -> None:
    log: list[str] = []
    deflate_like = FakeExtension(b"z", log, rsv1=True)
    frame = Frame(True, OP_BINARY, b"data")
    # The frame is checked before encoding: the extension may set RSV1.
    wire = frame.serialize(mask=False, extensions=as_extensions(deflate_like))
    assert wire == b"\xc2\x05dataz"
    # Receiving: RSV1 is checked after the extension cleared it...
    assert feed(wire, mask=False, extensions=as_extensions(deflate_like)) == frame
    # ...and refused without the extension.
    with pytest.raises(ProtocolError, match="^reserved bits must be 0$"):
        feed(wire, mask=False)


def test_extension_leaving_rsv1_set() -> None:
    class Leaves(FakeExtension):
        def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
            return frame

    wire = b"\xc2\x04data"
    extensions = as_extensions(Leaves(b"l", []))
    with pytest.raises(ProtocolError, match="^reserved bits must be 0$"):
        feed(wire, mask=False, extensions=extensions)


def test_extension_errors_propagate() -> None:
    class TooBig(FakeExtension):
        def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
            raise PayloadTooBig("inflated too much")

    wire = b"\x82\x04data"
    with pytest.raises(PayloadTooBig, match="inflated too much"):
        feed(wire, mask=False, max_size=10, extensions=as_extensions(TooBig(b"t", [])))


def test_no_extensions() -> None:
    frame = Frame(True, OP_TEXT, b"x")
    assert frame.serialize(mask=False, extensions=[]) == b"\x81\x01x"
    assert feed(b"\x81\x01x", mask=False, extensions=[]) == frame


# -- __str__ -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (Frame(True, OP_TEXT, b"hello"), "TEXT 'hello' [5 bytes]"),
        (Frame(False, OP_TEXT, b"hel"), "TEXT 'hel' [3 bytes, continued]"),
        (Frame(True, OP_TEXT, "café".encode()), "TEXT 'café' [5 bytes]"),
        (Frame(True, OP_TEXT, b"\xe2\x82"), "TEXT e2 82 [2 bytes]"),
        (Frame(True, OP_TEXT, b""), "TEXT [0 bytes]"),
        (Frame(True, OP_BINARY, b"\x01\x02\x03"), "BINARY 01 02 03 [3 bytes]"),
        (Frame(False, OP_BINARY, b"ab"), "BINARY 61 62 [2 bytes, continued]"),
        (Frame(True, OP_CONT, b"lo"), "CONT 'lo' [2 bytes]"),
        (Frame(False, OP_CONT, b"\xff"), "CONT ff [1 bytes, continued]"),
        (Frame(True, OP_CLOSE, b"\x03\xe8bye"), "CLOSE 1000 (OK) bye [5 bytes]"),
        (Frame(True, OP_CLOSE, b"\x03\xe9"), "CLOSE 1001 (going away) [2 bytes]"),
        (Frame(True, OP_CLOSE, b""), "CLOSE [0 bytes]"),
        (Frame(True, OP_CLOSE, b"\x03"), "CLOSE 03 [1 bytes]"),
        (Frame(True, OP_CLOSE, b"\x03\xe8\xff"), "CLOSE 03 e8 ff [3 bytes]"),
        (Frame(True, OP_PING, b"\x00\x01"), "PING 00 01 [2 bytes]"),
        (Frame(True, OP_PONG, b""), "PONG [0 bytes]"),
    ],
)
def test_str(frame: Frame, text: str) -> None:
    assert str(frame) == text


def test_str_elides_long_text() -> None:
    text = str(Frame(True, OP_TEXT, b"a" * 1000 + b"z"))
    assert re.fullmatch(r"TEXT 'a+…a+z' \[1001 bytes\]", text)
    assert len(text) < 100


def test_str_elides_long_binary() -> None:
    text = str(Frame(True, OP_BINARY, bytes(range(100))))
    assert text.startswith("BINARY 00 01 02")
    assert " … " in text
    assert text.endswith("62 63 [100 bytes]")
    assert len(text) < 100
    assert str(Frame(True, OP_BINARY, bytes(25))).count("00") == 25


# -- close frames ----------------------------------------------------------------


def test_close_parse_empty() -> None:
    assert Close.parse(b"") == Close(1005, "")
    assert type(Close.parse(b"").code) is int
    assert parse_close(b"") == (1005, "")


def test_close_parse_too_short() -> None:
    with pytest.raises(ProtocolError, match="^close frame too short$"):
        Close.parse(b"\x03")


def test_close_every_code() -> None:
    for code in [*range(0, 5001), 65535]:
        payload = code.to_bytes(2, "big") + b"why"
        if is_valid_close_code(code):
            assert Close.parse(payload) == Close(code, "why")
            assert Close(code, "why").serialize() == payload
            assert serialize_close(code, "why") == payload
        else:
            with pytest.raises(ProtocolError, match=f"^invalid status code {code}$"):
                Close.parse(payload)
            with pytest.raises(ProtocolError, match="^invalid status code$"):
                Close(code, "why").serialize()


@pytest.mark.parametrize(
    ("code", "valid"),
    [(999, False), (1000, True), (1003, True), (1004, False), (1005, False)]
    + [(1006, False), (1007, True), (1014, True), (1015, False), (1016, False)]
    + [(2999, False), (3000, True), (4999, True), (5000, False)],
)
def test_close_boundaries(code: int, valid: bool) -> None:
    payload = code.to_bytes(2, "big")
    if valid:
        assert parse_close(payload) == (code, "")
        assert serialize_close(code, "") == payload
    else:
        with pytest.raises(ProtocolError):
            parse_close(payload)
        with pytest.raises(ProtocolError):
            serialize_close(code, "")


def test_close_reason_utf8() -> None:
    assert Close.parse(b"\x03\xe8caf\xc3\xa9") == Close(1000, "café")
    assert Close(1000, "café").serialize() == b"\x03\xe8caf\xc3\xa9"
    with pytest.raises(UnicodeDecodeError):
        Close.parse(b"\x03\xe8caf\xc3")
    with pytest.raises(UnicodeDecodeError):
        Close.parse(b"\x03\xe8\xed\xa0\x80")


def test_close_reason_length() -> None:
    Close(1000, "x" * 123).check()
    Close(1000, "é" * 61 + "x").check()  # 123 bytes
    for reason in ["x" * 124, "é" * 62]:  # 124 bytes
        with pytest.raises(ProtocolError, match="^close reason is too long$"):
            Close(1000, reason).serialize()
    frame = Frame(True, OP_CLOSE, Close(1000, "x" * 123).serialize())
    assert len(frame.data) == 125
    frame.check()


def test_close_reason_long_on_receive() -> None:
    # Close.parse does not limit the reason: the frame check (125 bytes) does.
    assert Close.parse(b"\x03\xe8" + b"x" * 200).reason == "x" * 200


def test_close_parse_bytes_like() -> None:
    assert Close.parse(memoryview(b"\x03\xe8ok")) == Close(1000, "ok")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("close", "text"),
    [
        (Close(1000, "bye"), "1000 (OK) bye"),
        (Close(1000, ""), "1000 (OK)"),
        (Close(1005, ""), "1005 (no status code [internal])"),
        (Close(1012, ""), "1012 (service restart)"),
        (Close(1004, "x"), "1004 (unknown) x"),
        (Close(3000, "a"), "3000 (registered) a"),
        (Close(3999, ""), "3999 (registered)"),
        (Close(4000, ""), "4000 (private use)"),
        (Close(4999, ""), "4999 (private use)"),
        (Close(5000, ""), "5000 (unknown)"),
    ],
)
def test_close_str(close: Close, text: str) -> None:
    assert str(close) == text


@given(
    code=st.sampled_from([1000, 1001, 1011, 3000, 4999]),
    reason=st.text(max_size=40),
)
def test_close_round_trip(code: int, reason: str) -> None:
    if len(reason.encode()) <= 123:
        assert Close.parse(Close(code, reason).serialize()) == Close(code, reason)


# -- preparing data ----------------------------------------------------------------


def test_prepare_data() -> None:
    assert prepare_data("café") == (OP_TEXT, b"caf\xc3\xa9")
    data = b"raw"
    opcode, result = prepare_data(data)
    assert opcode is OP_BINARY
    assert result is data
    assert prepare_data(bytearray(b"ba")) == (OP_BINARY, b"ba")
    assert prepare_data(memoryview(b"mv")) == (OP_BINARY, b"mv")
    assert prepare_data(memoryview(b"aXbXc")[::2]) == (OP_BINARY, b"abc")
    for value in (prepare_data(bytearray(b"x"))[1], prepare_data(memoryview(b"y"))[1]):
        assert type(value) is bytes


def test_prepare_ctrl_and_encode_data() -> None:
    function: Callable[[str | bytes | bytearray | memoryview], bytes]
    for function in (prepare_ctrl, encode_data):
        assert function("é") == b"\xc3\xa9"
        assert function(b"ab") == b"ab"
        assert function(bytearray(b"cd")) == b"cd"
        assert type(function(bytearray(b"cd"))) is bytes
        assert function(memoryview(b"aXbXc")[::2]) == b"abc"


BAD_DATA: Iterable[object] = [42, None, ["a"], {"a": 1}, 1.5]


@pytest.mark.parametrize("data", BAD_DATA)
def test_prepare_type_errors(data: object) -> None:
    for function in (prepare_data, prepare_ctrl, encode_data):
        with pytest.raises(TypeError, match="^data must be str or bytes-like$"):
            function(data)  # type: ignore[arg-type]


class _Inflate:
    """A fake compressing extension: RSV1 frames carry their content twice."""

    name = "x-double"

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.rsv1:
            return frame._replace(data=frame.data[: len(frame.data) // 2], rsv1=False)
        return frame

    def encode(self, frame: Frame) -> Frame:  # pragma: no cover - not used here
        return frame


def _feed(raw: bytes, *, max_size: int, extensions: list[Any]) -> Frame:
    reader = StreamReader()
    reader.feed_data(raw)
    parser = Frame.parse(
        reader.read_exact, mask=False, max_size=max_size, extensions=extensions
    )
    try:
        next(parser)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("parser wants more bytes")  # pragma: no cover


def test_wire_limit_is_exact_without_extensions() -> None:
    raw = Frame(True, Opcode.BINARY, b"x" * 101).serialize(mask=False)
    with pytest.raises(PayloadTooBig):
        _feed(raw, max_size=100, extensions=[])


def test_compressed_frame_may_be_longer_on_the_wire_than_max_size() -> None:
    """Deflate can grow incompressible data: the content limit still holds."""
    extension = _Inflate()
    content = 1000
    raw = bytes([0x80 | 0x40 | Opcode.BINARY, 126]) + (content + 40).to_bytes(2, "big")
    frame = _feed(raw + b"y" * (content + 40), max_size=content, extensions=[extension])
    assert len(frame.data) == (content + 40) // 2
    # A continuation frame gets the same slack: it has no RSV1 of its own.
    cont = bytes([0x80 | Opcode.CONT, 126]) + (content + 40).to_bytes(2, "big")
    with pytest.raises(PayloadTooBig, match="1040 > 1000"):
        _feed(cont + b"y" * (content + 40), max_size=content, extensions=[extension])
    # Past the slack, the frame is refused before its payload is read.
    huge = bytes([0x80 | 0x40 | Opcode.BINARY, 127]) + (2**40).to_bytes(8, "big")
    reader = StreamReader()
    reader.feed_data(huge)
    parser = Frame.parse(
        reader.read_exact,
        mask=False,
        max_size=content,
        extensions=[cast(Any, extension)],
    )
    with pytest.raises(PayloadTooBig):
        next(parser)


def test_uncompressed_frame_keeps_the_exact_limit_with_extensions() -> None:
    raw = Frame(True, Opcode.TEXT, b"z" * 101).serialize(mask=False)
    with pytest.raises(PayloadTooBig):
        _feed(raw, max_size=100, extensions=[_Inflate()])
