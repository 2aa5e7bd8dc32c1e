"""Fuzzing Frame.parse: any bytes give frames or a clean, expected error."""

from __future__ import annotations

from collections.abc import Generator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anyws.exceptions import PayloadTooBig, ProtocolError
from anyws.sansio._buffer import StreamReader
from anyws.sansio.frames import CTRL_OPCODES, Frame, Opcode

# What the peer's bytes may cause; anything else is a bug in the parser.
PEER_ERRORS = (ProtocolError, PayloadTooBig, UnicodeDecodeError)

MASK_KEY = b"\x00\x01\x02\x03"

# Mostly valid frames, so that most streams hold several good ones; the
# corruptions below then hit every check of the parser.
OPCODES: list[int] = [*Opcode] * 5 + [3, 11]
SIZES = [0, 0, 1, 5, 5, 125, 126, 300, 65536]
FIRST_BITS = [0x80] * 14 + [0x00, 0xC0, 0x90]  # FIN, or no FIN, or RSV bits


def build_frame(mask: bool, spec: bytes) -> bytes:
    """The bytes of one frame, valid or not, chosen by two ``spec`` bytes."""
    opcode = OPCODES[spec[0] % len(OPCODES)]
    first_bits = FIRST_BITS[spec[1] % len(FIRST_BITS)]
    size = SIZES[(spec[0] >> 4) % len(SIZES)]
    if opcode in CTRL_OPCODES and size > 125:
        size %= 126  # mostly valid control frames; long ones come from corruption
    head = bytes([first_bits | opcode])
    if size < 126:
        length = bytes([0x80 * mask | size])
    elif size < 65536:
        length = bytes([0x80 * mask | 126]) + size.to_bytes(2, "big")
    else:
        length = bytes([0x80 * mask | 127]) + size.to_bytes(8, "big")
    return head + length + MASK_KEY * mask + bytes(size)


# Flat byte strings are much cheaper for hypothesis to generate than nested
# structures; they are decoded into frames and corruptions below.
specs = st.binary(min_size=2, max_size=10)
corruptions = st.binary(max_size=9)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, bytes]:
    """A stream of frames, maybe corrupted or cut short, or random bytes."""
    mask, kind = draw(st.tuples(st.booleans(), st.integers(0, 3)))
    if kind == 0:
        return mask, draw(st.binary(max_size=64))
    spec = draw(specs)
    data = bytearray(
        b"".join(build_frame(mask, spec[i : i + 2]) for i in range(0, len(spec) - 1, 2))
    )
    if kind == 1:
        # Each 3 bytes: where (2 bytes) and what (1 byte) to overwrite.
        corruption = draw(corruptions)
        for i in range(0, len(corruption) - 2, 3):
            position = int.from_bytes(corruption[i : i + 2], "big") % len(data)
            data[position] = corruption[i + 2]
    elif kind == 2:
        del data[draw(st.integers(0, len(data))) :]
    return mask, bytes(data)


def parse_stream(
    reader: StreamReader, mask: bool, max_size: int
) -> Generator[None, None, list[Frame]]:
    """Parse frames until the stream ends between two frames."""
    frames = []
    while not (yield from reader.at_eof()):
        frames.append(
            (yield from Frame.parse(reader.read_exact, mask=mask, max_size=max_size))
        )
    return frames


def run(data: bytes, mask: bool, max_size: int, step: int) -> None:
    """Feed ``data`` in chunks, then EOF; check the outcome."""
    reader = StreamReader()
    parser = parse_stream(reader, mask, max_size)
    fed = 0
    frames: list[Frame] | None = None
    try:
        next(parser)
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            reader.feed_data(chunk)
            fed += len(chunk)
            next(parser)
            assert len(reader.buffer) <= fed
        reader.feed_eof()
        next(parser)
    except StopIteration as exc:
        frames = exc.value
    except PEER_ERRORS:
        pass
    except EOFError as exc:
        # Only the end of the stream may cut a frame short.
        assert reader.eof, exc
    assert len(reader.buffer) <= len(data)
    if frames is not None:
        assert reader.eof
        assert not reader.buffer
        for frame in frames:
            frame.check()
            assert len(frame.data) <= max_size
            assert type(frame.opcode) is Opcode


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    stream=streams(),
    max_size=st.sampled_from([0, 4, 125, 200] + [2**20] * 4),
    step=st.sampled_from([1, 2, 7, 64, 4096]),
)
def test_parse_random_bytes(
    stream: tuple[bool, bytes], max_size: int, step: int
) -> None:
    mask, data = stream
    # Big frames are fed in at most about 100 chunks, to bound the run time.
    run(data, mask, max_size, max(step, len(data) // 100))
