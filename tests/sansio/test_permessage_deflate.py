"""Tests for anyws.sansio.extensions.permessage_deflate (RFC 7692)."""

from __future__ import annotations

import itertools
import time
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyws import exceptions
from anyws._types import ExtensionName, ExtensionParameter
from anyws.sansio.extensions import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from anyws.sansio.frames import Frame, Opcode

TAIL = b"\x00\x00\xff\xff"
KiB = 1024
MiB = 1024 * KiB

# RFC 7692, 7.2.3: payloads of messages containing "Hello".
HELLO = bytes.fromhex("f248cdc9c90700")  # 7.2.3.1, one compressed block
HELLO_AGAIN = bytes.fromhex("f200110000")  # 7.2.3.2, with the shared window
HELLO_STORED = bytes.fromhex("000500faff48656c6c6f00")  # 7.2.3.3, no compression
HELLO_BFINAL = bytes.fromhex("f348cdc9c9070000")  # 7.2.3.4, BFINAL set
HELLO_TWO_BLOCKS = bytes.fromhex("f24805000000ffffcac9c90700")  # 7.2.3.5


def params(
    remote_nct: bool = False,
    local_nct: bool = False,
    remote_bits: int = 15,
    local_bits: int = 15,
) -> tuple[bool, bool, int, int]:
    return remote_nct, local_nct, remote_bits, local_bits


def state(ext: PerMessageDeflate) -> tuple[bool, bool, int, int]:
    return (
        ext.remote_no_context_takeover,
        ext.local_no_context_takeover,
        ext.remote_max_window_bits,
        ext.local_max_window_bits,
    )


def peer_of(ext: PerMessageDeflate) -> PerMessageDeflate:
    """The extension the other endpoint uses for the same agreement."""
    return PerMessageDeflate(
        ext.local_no_context_takeover,
        ext.remote_no_context_takeover,
        ext.local_max_window_bits,
        ext.remote_max_window_bits,
    )


def compressed(data: bytes, *, fin: bool = True, opcode: Opcode = Opcode.TEXT) -> Frame:
    return Frame(fin, opcode, data, rsv1=opcode != Opcode.CONT)


def fragment(message: bytes, cuts: list[int], opcode: Opcode) -> list[Frame]:
    """Split ``message`` at ``cuts`` into the frames of one message."""
    bounds = [0, *sorted(min(cut, len(message)) for cut in cuts), len(message)]
    pieces = [message[a:b] for a, b in itertools.pairwise(bounds)]
    return [
        Frame(i == len(pieces) - 1, opcode if i == 0 else Opcode.CONT, piece)
        for i, piece in enumerate(pieces)
    ]


def send_and_receive(
    sender: PerMessageDeflate,
    receiver: PerMessageDeflate,
    frames: list[Frame],
    max_size: int | None = None,
) -> tuple[list[Frame], bytes]:
    """Encode frames with ``sender``, decode them with ``receiver``."""
    wire = [sender.encode(frame) for frame in frames]
    decoded = [receiver.decode(frame, max_size=max_size) for frame in wire]
    assert [frame.rsv1 for frame in decoded] == [False] * len(frames)
    return wire, b"".join(frame.data for frame in decoded)


def raw_deflate(data: bytes, wbits: int = -15) -> bytes:
    """Compress a message with plain zlib, the way RFC 7692 7.2.1 says."""
    compressor = zlib.compressobj(wbits=wbits)
    output = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert output.endswith(TAIL)
    return output[:-4]


# PerMessageDeflate: construction


def test_name_and_repr() -> None:
    ext = PerMessageDeflate(False, True, 12, 15)
    assert ext.name == "permessage-deflate"
    assert repr(ext) == (
        "PerMessageDeflate(remote_no_context_takeover=False, "
        "local_no_context_takeover=True, remote_max_window_bits=12, "
        "local_max_window_bits=15)"
    )


@pytest.mark.parametrize("bits", [7, 16, 0, -15, True, None, "12", 12.0])
@pytest.mark.parametrize("which", ["remote", "local"])
def test_invalid_window_bits(which: str, bits: Any) -> None:
    kwargs: dict[str, Any] = {"remote_max_window_bits": 15, "local_max_window_bits": 15}
    kwargs[f"{which}_max_window_bits"] = bits
    with pytest.raises(ValueError, match=f"{which}_max_window_bits"):
        PerMessageDeflate(False, False, **kwargs)


def test_wbits_in_compress_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="wbits"):
        PerMessageDeflate(False, False, 15, 15, {"wbits": 10})


def test_compress_settings_are_copied_and_used() -> None:
    settings = {"level": 0}
    ext = PerMessageDeflate(False, False, 15, 15, settings)
    settings["level"] = 9
    assert ext.compress_settings == {"level": 0}
    # Level 0 gives a stored block: exactly RFC 7692, 7.2.3.3.
    assert ext.encode(Frame(True, Opcode.TEXT, b"Hello")).data == HELLO_STORED


def test_zlib_objects_are_created_on_first_use() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    ext.encode(Frame(True, Opcode.PING, b""))
    ext.decode(Frame(True, Opcode.TEXT, b"plain"))
    assert ext._encoder is None and ext._decoder is None
    ext.decode(compressed(HELLO))
    assert ext._encoder is None and ext._decoder is not None
    ext.encode(Frame(True, Opcode.TEXT, b"Hello"))
    assert ext._encoder is not None


# PerMessageDeflate: encoding


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
@pytest.mark.parametrize("rsv1", [False, True])
def test_encode_leaves_control_frames_alone(opcode: Opcode, rsv1: bool) -> None:
    frame = Frame(True, opcode, b"\x03\xe8 payload", rsv1=rsv1)
    assert PerMessageDeflate(False, False, 15, 15).encode(frame) is frame


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_encode_rfc_examples(opcode: Opcode) -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    first = ext.encode(Frame(True, opcode, b"Hello"))
    second = ext.encode(Frame(True, opcode, b"Hello"))
    assert first == Frame(True, opcode, HELLO, rsv1=True)
    assert second == Frame(True, opcode, HELLO_AGAIN, rsv1=True)


def test_encode_sets_rsv1_on_the_first_frame_only() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    wire = [
        ext.encode(f) for f in fragment(b"Hello, world!" * 10, [3, 50], Opcode.TEXT)
    ]
    assert [(f.opcode, f.rsv1, f.fin) for f in wire] == [
        (Opcode.TEXT, True, False),
        (Opcode.CONT, False, False),
        (Opcode.CONT, False, True),
    ]
    # RFC 7692, 7.2.1: only the end of the message loses its tail.
    assert wire[0].data.endswith(TAIL) and wire[1].data.endswith(TAIL)
    assert not wire[2].data.endswith(TAIL)


def test_encode_empty_message() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    # An empty stored block minus its LEN and NLEN, with or without context.
    assert ext.encode(Frame(True, Opcode.BINARY, b"")).data == b"\x00"
    ext.encode(Frame(True, Opcode.BINARY, b"data"))
    assert ext.encode(Frame(True, Opcode.BINARY, b"")).data == b"\x00"
    assert zlib.decompressobj(wbits=-15).decompress(b"\x00" + TAIL) == b""


def test_encode_empty_final_fragment() -> None:
    sender = PerMessageDeflate(False, False, 15, 15)
    receiver = peer_of(sender)
    frames = [Frame(False, Opcode.TEXT, b"Hello"), Frame(True, Opcode.CONT, b"")]
    wire, data = send_and_receive(sender, receiver, frames)
    assert data == b"Hello"
    assert wire[1].data == b"\x00"
    # The receiver is still in step for the next message.
    assert (
        send_and_receive(sender, receiver, [Frame(True, Opcode.TEXT, b"x")])[1] == b"x"
    )


def test_encode_with_context_takeover_shrinks_repeated_messages() -> None:
    message = b"The quick brown fox jumps over the lazy dog. " * 4
    ext = PerMessageDeflate(False, False, 15, 15)
    sizes = [len(ext.encode(Frame(True, Opcode.TEXT, message)).data) for _ in "abc"]
    assert sizes[1] < sizes[0] and sizes[2] < sizes[0]


def test_encode_without_context_takeover_repeats_itself() -> None:
    message = b"The quick brown fox jumps over the lazy dog. " * 4
    ext = PerMessageDeflate(False, True, 15, 15)
    wire = [ext.encode(Frame(True, Opcode.TEXT, message)).data for _ in "abc"]
    assert wire[0] == wire[1] == wire[2] == raw_deflate(message)


def test_encode_without_context_takeover_keeps_context_within_a_message() -> None:
    ext = PerMessageDeflate(False, True, 15, 15)
    piece = b"The quick brown fox jumps over the lazy dog. "
    wire = [ext.encode(f) for f in fragment(piece * 2, [len(piece)], Opcode.TEXT)]
    # The second fragment refers back to the first one.
    assert len(wire[1].data) < len(wire[0].data) - 4
    # The next message starts from scratch.
    assert ext.encode(Frame(True, Opcode.TEXT, piece)).data == raw_deflate(piece)


def test_encode_window_bits_8_uses_a_window_zlib_accepts() -> None:
    with pytest.raises(ValueError):
        zlib.compressobj(wbits=-8)  # the reason for using 9 instead
    ext = PerMessageDeflate(False, False, 8, 8)
    # Repeats 300 bytes apart: in a 512-byte window, out of a 256-byte one.
    block = bytes(range(256)) + bytes(range(44))
    message = block * 6
    wire = ext.encode(Frame(True, Opcode.BINARY, message)).data
    assert zlib.decompressobj(wbits=-8).decompress(wire + TAIL) == message


def test_encode_accepts_bytes_like_payloads() -> None:
    sender = PerMessageDeflate(False, False, 15, 15)
    frame = Frame(True, Opcode.BINARY, memoryview(b"Hello"))  # type: ignore[arg-type]
    assert sender.encode(frame).data == HELLO


# PerMessageDeflate: decoding


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
@pytest.mark.parametrize("rsv1", [False, True])
def test_decode_leaves_control_frames_alone(opcode: Opcode, rsv1: bool) -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    # Even in the middle of a compressed message.
    ext.decode(compressed(HELLO, fin=False))
    frame = Frame(True, opcode, HELLO, rsv1=rsv1)
    assert ext.decode(frame) is frame
    assert ext.decode(Frame(True, Opcode.CONT, b"", rsv1=False)).data == b""


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ([HELLO], b"Hello"),
        ([HELLO_STORED], b"Hello"),
        ([HELLO_BFINAL], b"Hello"),
        ([HELLO_BFINAL[:-1]], b"Hello"),
        ([HELLO_TWO_BLOCKS], b"Hello"),
        ([HELLO_TWO_BLOCKS[:8], HELLO_TWO_BLOCKS[8:]], b"Hello"),
        ([HELLO[:2], HELLO[2:5], HELLO[5:]], b"Hello"),
        ([HELLO, b""], b"Hello"),
        ([b"\x00"], b""),
    ],
)
def test_decode_rfc_examples(payloads: list[bytes], message: bytes) -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    frames = [
        compressed(
            p, fin=i == len(payloads) - 1, opcode=Opcode.CONT if i else Opcode.TEXT
        )
        for i, p in enumerate(payloads)
    ]
    decoded = [ext.decode(frame) for frame in frames]
    assert b"".join(frame.data for frame in decoded) == message
    assert [(f.opcode, f.fin, f.rsv1) for f in decoded] == [
        (f.opcode, f.fin, False) for f in frames
    ]


def test_decode_shared_window_rfc_example() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    assert ext.decode(compressed(HELLO)).data == b"Hello"
    assert ext.decode(compressed(HELLO_AGAIN)).data == b"Hello"


def test_decode_resets_the_window_without_context_takeover() -> None:
    ext = PerMessageDeflate(True, False, 15, 15)
    assert ext.decode(compressed(HELLO)).data == b"Hello"
    # HELLO_AGAIN refers to the previous message, which is forgotten.
    with pytest.raises(exceptions.ProtocolError, match="decompression failed"):
        ext.decode(compressed(HELLO_AGAIN))


def test_decode_keeps_the_window_within_a_message_without_context_takeover() -> None:
    ext = PerMessageDeflate(True, False, 15, 15)
    first = ext.decode(compressed(HELLO + TAIL, fin=False)).data
    second = ext.decode(compressed(HELLO_AGAIN, opcode=Opcode.CONT)).data
    assert first + second == b"HelloHello"


def test_decode_uncompressed_message_passes_through() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    first = Frame(False, Opcode.BINARY, b"plain ")
    cont = Frame(False, Opcode.CONT, b"text ")
    bad = Frame(True, Opcode.CONT, b"more", rsv1=True)
    assert ext.decode(first) is first
    assert ext.decode(cont) is cont
    # Left for the frame check, which rejects reserved bits (RFC 7692, 6.1).
    assert ext.decode(bad) is bad


def test_decode_uncompressed_message_after_a_compressed_one() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    ext.decode(compressed(HELLO, fin=False))
    # A new message (the frame check reports the interleaving, if any).
    assert ext.decode(Frame(False, Opcode.TEXT, b"a")).data == b"a"
    assert ext.decode(Frame(True, Opcode.CONT, b"b")).data == b"b"


def test_decode_stray_continuation_passes_through() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    frame = Frame(True, Opcode.CONT, HELLO)
    assert ext.decode(frame) is frame
    ext.decode(compressed(HELLO))
    assert ext.decode(frame) is frame


def test_decode_rejects_rsv1_on_a_continuation_frame() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    ext.decode(compressed(HELLO + TAIL, fin=False))
    with pytest.raises(exceptions.ProtocolError, match="RSV1 set on a continuation"):
        ext.decode(Frame(True, Opcode.CONT, HELLO_AGAIN, rsv1=True))


def test_decode_invalid_data() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    with pytest.raises(exceptions.ProtocolError) as excinfo:
        ext.decode(compressed(b"\xff\xff\xff\xff"))
    assert isinstance(excinfo.value.__cause__, zlib.error)


def test_decode_after_bfinal_starts_a_new_stream() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    assert ext.decode(compressed(HELLO_BFINAL)).data == b"Hello"
    # A fresh stream, although context takeover is on.
    assert ext.decode(compressed(HELLO)).data == b"Hello"
    assert ext.decode(compressed(HELLO_AGAIN)).data == b"Hello"


def test_decode_bfinal_in_a_non_final_frame() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    first = ext.decode(compressed(HELLO_BFINAL, fin=False)).data
    last = ext.decode(compressed(b"", fin=True, opcode=Opcode.CONT)).data
    assert first + last == b"Hello"
    assert ext.decode(compressed(HELLO)).data == b"Hello"


@pytest.mark.parametrize(
    "frames",
    [
        [compressed(HELLO_BFINAL + b"junk")],
        [
            compressed(HELLO_BFINAL, fin=False),
            compressed(HELLO, fin=False, opcode=Opcode.CONT),
        ],
    ],
)
def test_decode_rejects_data_after_the_final_block(frames: list[Frame]) -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    with pytest.raises(exceptions.ProtocolError, match="after the end"):
        for frame in frames:
            ext.decode(frame)


# PerMessageDeflate: decoding and max_size


def test_decode_max_size_exact_fit() -> None:
    message = bytes(range(256)) * 40
    ext = PerMessageDeflate(False, False, 15, 15)
    frame = compressed(raw_deflate(message), opcode=Opcode.BINARY)
    assert ext.decode(frame, max_size=len(message)).data == message


def test_decode_max_size_one_byte_over() -> None:
    message = bytes(range(256)) * 40
    ext = PerMessageDeflate(False, False, 15, 15)
    frame = compressed(raw_deflate(message), opcode=Opcode.BINARY)
    with pytest.raises(exceptions.PayloadTooBig, match=f"{len(message) - 1} bytes"):
        ext.decode(frame, max_size=len(message) - 1)


def test_decode_max_size_zero() -> None:
    ext = PerMessageDeflate(False, False, 15, 15)
    assert ext.decode(compressed(b"\x00"), max_size=0).data == b""
    with pytest.raises(exceptions.PayloadTooBig):
        ext.decode(compressed(HELLO), max_size=0)


def test_decode_max_size_applies_to_each_fragment() -> None:
    # The caller passes what remains of the limit for each frame.
    sender = PerMessageDeflate(False, False, 15, 15)
    receiver = peer_of(sender)
    wire = [sender.encode(f) for f in fragment(b"x" * 1000, [600], Opcode.BINARY)]
    assert len(receiver.decode(wire[0], max_size=1000).data) == 600
    with pytest.raises(exceptions.PayloadTooBig):
        receiver.decode(wire[1], max_size=399)


def test_decode_small_zip_bomb() -> None:
    bomb = raw_deflate(bytes(MiB))
    assert len(bomb) < 1100  # about 1 KiB on the wire
    assert (
        len(PerMessageDeflate(False, False, 15, 15).decode(compressed(bomb)).data)
        == MiB
    )
    with pytest.raises(exceptions.PayloadTooBig):
        PerMessageDeflate(False, False, 15, 15).decode(
            compressed(bomb), max_size=64 * KiB
        )


def test_decode_big_zip_bomb_costs_little() -> None:
    # DEFLATE expands at most about 1032:1, so 1 GiB takes about 1 MiB on the
    # wire: each sync-flushed MiB of zeros after the first compresses the same.
    compressor = zlib.compressobj(wbits=-15)
    chunks = [
        compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        for _ in range(3)
    ]
    assert chunks[1] == chunks[2]
    bomb = chunks[0] + chunks[1] * 1023  # 1 GiB of zeros once inflated
    assert len(bomb) < 1100 * KiB
    frame = compressed(bomb[:-4], opcode=Opcode.BINARY)
    ext = PerMessageDeflate(False, False, 15, 15)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(exceptions.PayloadTooBig):
            ext.decode(frame, max_size=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB
    assert time.perf_counter() - start < 2


# PerMessageDeflate: round trips and interoperability

window_bits = st.integers(min_value=8, max_value=15)
messages = st.lists(
    st.tuples(
        st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)),
        st.lists(st.integers(min_value=0, max_value=2000), max_size=4),
        st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    remote_nct=st.booleans(),
    local_nct=st.booleans(),
    remote_bits=window_bits,
    local_bits=window_bits,
    level=st.integers(min_value=0, max_value=9),
    messages=messages,
)
def test_round_trip(
    remote_nct: bool,
    local_nct: bool,
    remote_bits: int,
    local_bits: int,
    level: int,
    messages: list[tuple[bytes, list[int], Opcode]],
) -> None:
    sender = PerMessageDeflate(
        remote_nct, local_nct, remote_bits, local_bits, {"level": level}
    )
    receiver = peer_of(sender)
    for message, cuts, opcode in messages:
        frames = fragment(message, cuts, opcode)
        wire, data = send_and_receive(sender, receiver, frames, max_size=len(message))
        assert data == message
        assert [f.rsv1 for f in wire] == [True] + [False] * (len(frames) - 1)
        assert [(f.opcode, f.fin) for f in wire] == [(f.opcode, f.fin) for f in frames]


@settings(max_examples=100, deadline=None)
@given(message=st.binary(max_size=5000), wbits=st.integers(min_value=9, max_value=15))
def test_decode_plain_zlib_output(message: bytes, wbits: int) -> None:
    ext = PerMessageDeflate(False, False, wbits, 15)
    frame = compressed(raw_deflate(message, -wbits), opcode=Opcode.BINARY)
    assert ext.decode(frame).data == message


@settings(max_examples=100, deadline=None)
@given(message=st.binary(max_size=5000), bits=window_bits)
def test_encode_for_plain_zlib(message: bytes, bits: int) -> None:
    ext = PerMessageDeflate(False, False, 15, bits)
    wire = ext.encode(Frame(True, Opcode.BINARY, message)).data
    assert zlib.decompressobj(wbits=-bits).decompress(wire + TAIL) == message


@settings(max_examples=50, deadline=None)
@given(messages=messages, nct=st.booleans(), bits=st.integers(9, 15))
def test_interop_with_websockets(
    messages: list[tuple[bytes, list[int], Opcode]], nct: bool, bits: int
) -> None:
    """The websockets package, an independent implementation, reads and writes.

    (It refuses 8-bit windows, hence 9 to 15.)
    """
    from websockets.extensions import permessage_deflate as ws_deflate
    from websockets.frames import Frame as WsFrame
    from websockets.frames import Opcode as WsOpcode

    ours = PerMessageDeflate(nct, nct, bits, bits)
    theirs = ws_deflate.PerMessageDeflate(nct, nct, bits, bits)
    for message, cuts, opcode in messages:
        frames = fragment(message, cuts, opcode)
        to_them = [ours.encode(f) for f in frames]
        received = [
            theirs.decode(WsFrame(WsOpcode(f.opcode), f.data, fin=f.fin, rsv1=f.rsv1))
            for f in to_them
        ]
        assert b"".join(f.data for f in received) == message
        to_us = [
            theirs.encode(WsFrame(WsOpcode(f.opcode), f.data, fin=f.fin))
            for f in frames
        ]
        back = [
            ours.decode(Frame(f.fin, Opcode(f.opcode), bytes(f.data), f.rsv1))
            for f in to_us
        ]
        assert b"".join(f.data for f in back) == message


# Client factory


def test_client_factory_defaults() -> None:
    factory = ClientPerMessageDeflateFactory()
    assert factory.name == "permessage-deflate"
    assert factory.get_request_params() == []
    assert factory.compress_settings == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"server_max_window_bits": True},
        {"client_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"client_max_window_bits": False},
        {"client_max_window_bits": "12"},
        {"compress_settings": {"wbits": 12}},
    ],
)
def test_client_factory_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClientPerMessageDeflateFactory(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, []),
        ({"server_no_context_takeover": True}, [("server_no_context_takeover", None)]),
        ({"client_no_context_takeover": True}, [("client_no_context_takeover", None)]),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "10")]),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "10")]),
        ({"client_max_window_bits": True}, [("client_max_window_bits", None)]),
        (
            {
                "client_max_window_bits": True,
                "server_max_window_bits": 8,
                "client_no_context_takeover": True,
                "server_no_context_takeover": True,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "8"),
                ("client_max_window_bits", None),
            ],
        ),
    ],
)
def test_client_request_params(
    kwargs: dict[str, Any], expected: list[ExtensionParameter]
) -> None:
    assert ClientPerMessageDeflateFactory(**kwargs).get_request_params() == expected


SNCT: ExtensionParameter = ("server_no_context_takeover", None)
CNCT: ExtensionParameter = ("client_no_context_takeover", None)


def smwb(value: str | None) -> ExtensionParameter:
    return ("server_max_window_bits", value)


def cmwb(value: str | None) -> ExtensionParameter:
    return ("client_max_window_bits", value)


@pytest.mark.parametrize(
    ("kwargs", "response", "expected"),
    [
        # Defaults.
        ({}, [], params()),
        ({"client_max_window_bits": True}, [], params()),
        # The server may choose these by itself.
        ({}, [SNCT], params(remote_nct=True)),
        ({}, [CNCT], params(local_nct=True)),
        ({}, [smwb("10")], params(remote_bits=10)),
        ({}, [SNCT, CNCT, smwb("8")], params(True, True, 8)),
        # Asked for and granted.
        ({"server_no_context_takeover": True}, [SNCT], params(remote_nct=True)),
        ({"server_max_window_bits": 12}, [smwb("12")], params(remote_bits=12)),
        ({"server_max_window_bits": 12}, [smwb("9")], params(remote_bits=9)),
        # The client applies its own client_no_context_takeover regardless.
        ({"client_no_context_takeover": True}, [], params(local_nct=True)),
        ({"client_no_context_takeover": True}, [CNCT], params(local_nct=True)),
        # client_max_window_bits.
        ({"client_max_window_bits": True}, [cmwb("10")], params(local_bits=10)),
        ({"client_max_window_bits": True}, [cmwb("15")], params(local_bits=15)),
        ({"client_max_window_bits": 12}, [], params(local_bits=12)),
        ({"client_max_window_bits": 12}, [cmwb("12")], params(local_bits=12)),
        ({"client_max_window_bits": 12}, [cmwb("8")], params(local_bits=8)),
        # Any order is accepted in an answer.
        (
            {"server_no_context_takeover": True, "client_max_window_bits": 12},
            [cmwb("10"), smwb("11"), CNCT, SNCT],
            params(True, True, 11, 10),
        ),
    ],
)
def test_client_accepts_response(
    kwargs: dict[str, Any],
    response: list[ExtensionParameter],
    expected: tuple[bool, bool, int, int],
) -> None:
    factory = ClientPerMessageDeflateFactory(compress_settings={"level": 1}, **kwargs)
    ext = factory.process_response_params(response, [])
    assert isinstance(ext, PerMessageDeflate)
    assert state(ext) == expected
    assert ext.compress_settings == {"level": 1}


@pytest.mark.parametrize(
    ("kwargs", "response", "error", "message"),
    [
        # What the client asked for is missing or too big.
        (
            {"server_no_context_takeover": True},
            [],
            exceptions.NegotiationError,
            "server_no_context_takeover was requested",
        ),
        (
            {"server_max_window_bits": 12},
            [],
            exceptions.NegotiationError,
            "server_max_window_bits=12 was requested",
        ),
        (
            {"server_max_window_bits": 12},
            [smwb("13")],
            exceptions.NegotiationError,
            "server_max_window_bits=13 answered, more than the 12",
        ),
        (
            {},
            [cmwb("10")],
            exceptions.NegotiationError,
            "client_max_window_bits=10 answered but not offered",
        ),
        (
            {"client_max_window_bits": 10},
            [cmwb("11")],
            exceptions.NegotiationError,
            "client_max_window_bits=11 answered, more than the 10",
        ),
        # Malformed parameters.
        ({}, [SNCT, SNCT], exceptions.DuplicateParameter, "server_no_context_takeover"),
        ({}, [smwb("9"), smwb("9")], exceptions.DuplicateParameter, "server_max"),
        ({}, [("x", None)], exceptions.InvalidParameterName, "invalid parameter name"),
        (
            {},
            [("server_no_context_takeover", "1")],
            exceptions.InvalidParameterValue,
            "1",
        ),
        (
            {},
            [("client_no_context_takeover", "")],
            exceptions.InvalidParameterValue,
            "empty",
        ),
        ({}, [smwb(None)], exceptions.InvalidParameterValue, "missing value"),
        (
            {},
            [smwb("7")],
            exceptions.InvalidParameterValue,
            "server_max_window_bits: 7",
        ),
        ({}, [smwb("16")], exceptions.InvalidParameterValue, "16"),
        ({}, [smwb("08")], exceptions.InvalidParameterValue, "08"),
        ({}, [smwb(" 9")], exceptions.InvalidParameterValue, "9"),
        # Only an offer may omit the value of client_max_window_bits.
        (
            {"client_max_window_bits": True},
            [cmwb(None)],
            exceptions.InvalidParameterValue,
            "missing value for parameter client_max_window_bits",
        ),
    ],
)
def test_client_rejects_response(
    kwargs: dict[str, Any],
    response: list[ExtensionParameter],
    error: type[Exception],
    message: str,
) -> None:
    factory = ClientPerMessageDeflateFactory(**kwargs)
    with pytest.raises(error, match=message):
        factory.process_response_params(response, [])


class Named:
    """A duck-typed extension or factory: anything with a ``name``."""

    def __init__(self, name: str) -> None:
        self.name = ExtensionName(name)


def duck(name: str) -> Any:
    """A :class:`Named`, typed so that it stands for any extension object."""
    return Named(name)


def test_client_rejects_duplicate() -> None:
    factory = ClientPerMessageDeflateFactory()
    first = factory.process_response_params([], [duck("x-other")])
    with pytest.raises(
        exceptions.NegotiationError, match="duplicate permessage-deflate"
    ):
        factory.process_response_params([], [first])
    with pytest.raises(
        exceptions.NegotiationError, match="duplicate permessage-deflate"
    ):
        factory.process_response_params([], [duck("permessage-deflate")])


# Server factory


def test_server_factory_defaults() -> None:
    factory = ServerPerMessageDeflateFactory()
    assert factory.name == "permessage-deflate"
    assert factory.require_client_max_window_bits is True
    response, ext = factory.process_request_params([], [])
    assert response == []
    assert state(ext) == params()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"client_max_window_bits": True},
        {"server_max_window_bits": 12.0},
        {"compress_settings": {"wbits": -12}},
    ],
)
def test_server_factory_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "offer", "response", "expected"),
    [
        # server_no_context_takeover: asked by the client or configured.
        ({}, [SNCT], [SNCT], params(local_nct=True)),
        ({"server_no_context_takeover": True}, [], [SNCT], params(local_nct=True)),
        ({"server_no_context_takeover": True}, [SNCT], [SNCT], params(local_nct=True)),
        # client_no_context_takeover: offered by the client or configured.
        ({}, [CNCT], [CNCT], params(remote_nct=True)),
        ({"client_no_context_takeover": True}, [], [CNCT], params(remote_nct=True)),
        ({"client_no_context_takeover": True}, [CNCT], [CNCT], params(remote_nct=True)),
        # server_max_window_bits.
        ({}, [smwb("10")], [smwb("10")], params(local_bits=10)),
        ({"server_max_window_bits": 12}, [], [smwb("12")], params(local_bits=12)),
        (
            {"server_max_window_bits": 12},
            [smwb("10")],
            [smwb("10")],
            params(local_bits=10),
        ),
        (
            {"server_max_window_bits": 12},
            [smwb("12")],
            [smwb("12")],
            params(local_bits=12),
        ),
        (
            {"server_max_window_bits": 12},
            [smwb("14")],
            [smwb("12")],
            params(local_bits=12),
        ),
        # client_max_window_bits, no server setting.
        ({}, [cmwb(None)], [], params()),
        ({}, [cmwb("10")], [cmwb("10")], params(remote_bits=10)),
        # client_max_window_bits, server setting.
        (
            {"client_max_window_bits": 12},
            [cmwb(None)],
            [cmwb("12")],
            params(remote_bits=12),
        ),
        (
            {"client_max_window_bits": 12},
            [cmwb("10")],
            [cmwb("10")],
            params(remote_bits=10),
        ),
        (
            {"client_max_window_bits": 12},
            [cmwb("14")],
            [cmwb("12")],
            params(remote_bits=12),
        ),
        (
            {"client_max_window_bits": 12, "require_client_max_window_bits": False},
            [],
            [],
            params(),
        ),
        (
            {"client_max_window_bits": 12, "require_client_max_window_bits": False},
            [cmwb(None)],
            [cmwb("12")],
            params(remote_bits=12),
        ),
        # Everything, answered in the fixed order whatever the offer's order.
        (
            {"server_max_window_bits": 11},
            [cmwb("9"), CNCT, SNCT],
            [SNCT, CNCT, smwb("11"), cmwb("9")],
            params(True, True, 9, 11),
        ),
    ],
)
def test_server_accepts_offer(
    kwargs: dict[str, Any],
    offer: list[ExtensionParameter],
    response: list[ExtensionParameter],
    expected: tuple[bool, bool, int, int],
) -> None:
    factory = ServerPerMessageDeflateFactory(
        compress_settings={"memLevel": 4}, **kwargs
    )
    answer, ext = factory.process_request_params(offer, [])
    assert answer == response
    assert state(ext) == expected
    assert ext.compress_settings == {"memLevel": 4}


@pytest.mark.parametrize(
    ("kwargs", "offer", "error", "message"),
    [
        (
            {"client_max_window_bits": 12},
            [],
            exceptions.NegotiationError,
            "client_max_window_bits is required",
        ),
        (
            {"client_max_window_bits": 12, "require_client_max_window_bits": True},
            [SNCT],
            exceptions.NegotiationError,
            "client_max_window_bits is required",
        ),
        ({}, [CNCT, CNCT], exceptions.DuplicateParameter, "client_no_context_takeover"),
        ({}, [cmwb(None), cmwb("9")], exceptions.DuplicateParameter, "client_max"),
        ({}, [("server_max_window_bit", "9")], exceptions.InvalidParameterName, "bit"),
        (
            {},
            [("server_no_context_takeover", "")],
            exceptions.InvalidParameterValue,
            "empty value for parameter server_no_context_takeover",
        ),
        ({}, [smwb(None)], exceptions.InvalidParameterValue, "missing value"),
        ({}, [smwb("0")], exceptions.InvalidParameterValue, "0"),
        ({}, [cmwb("7")], exceptions.InvalidParameterValue, "7"),
        ({}, [cmwb("")], exceptions.InvalidParameterValue, "empty value"),
        ({}, [cmwb("15 ")], exceptions.InvalidParameterValue, "15"),
    ],
)
def test_server_declines_offer(
    kwargs: dict[str, Any],
    offer: list[ExtensionParameter],
    error: type[Exception],
    message: str,
) -> None:
    factory = ServerPerMessageDeflateFactory(**kwargs)
    with pytest.raises(error, match=message):
        factory.process_request_params(offer, [])
    # Every way of declining is a NegotiationError, which the server skips.
    assert issubclass(error, exceptions.NegotiationError)


def test_server_declines_duplicate() -> None:
    factory = ServerPerMessageDeflateFactory()
    _, first = factory.process_request_params([], [duck("x-other")])
    with pytest.raises(exceptions.NegotiationError, match="skipped duplicate"):
        factory.process_request_params([], [first])
    with pytest.raises(exceptions.NegotiationError, match="skipped duplicate"):
        factory.process_request_params([], [duck("permessage-deflate")])


# Both sides together


def negotiate(
    client: ClientPerMessageDeflateFactory, server: ServerPerMessageDeflateFactory
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    response, server_ext = server.process_request_params(
        client.get_request_params(), []
    )
    return client.process_response_params(response, []), server_ext


def test_rfc_example_from_the_8_1_tests() -> None:
    client_ext, server_ext = negotiate(
        ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_max_window_bits=12
        ),
        ServerPerMessageDeflateFactory(
            client_no_context_takeover=True, server_max_window_bits=10
        ),
    )
    assert state(server_ext) == (True, True, 12, 10)
    assert state(client_ext) == (True, True, 10, 12)


def test_api_defaults() -> None:
    client_ext, server_ext = negotiate(
        ClientPerMessageDeflateFactory(client_max_window_bits=True),
        ServerPerMessageDeflateFactory(),
    )
    assert state(client_ext) == state(server_ext) == (False, False, 15, 15)


def test_anyws_defaults() -> None:
    (client,) = enable_client_permessage_deflate(None)
    (server,) = enable_server_permessage_deflate(None)
    assert isinstance(client, ClientPerMessageDeflateFactory)
    assert isinstance(server, ServerPerMessageDeflateFactory)
    assert client.get_request_params() == [("client_max_window_bits", None)]
    assert server.compress_settings == {"memLevel": 5}
    client_ext, server_ext = negotiate(client, server)
    assert state(client_ext) == state(server_ext) == (False, False, 12, 12)
    assert server_ext.compress_settings == {"memLevel": 5}
    # Firefox offers no client_max_window_bits: accepted, client window 15.
    response, firefox_ext = server.process_request_params([], [])
    assert response == [smwb("12")]
    assert state(firefox_ext) == (False, False, 15, 12)


def test_enable_keeps_a_configured_factory() -> None:
    mine = duck("permessage-deflate")
    other = duck("x-other")
    client_list = [other, mine]
    result = enable_client_permessage_deflate(client_list)
    assert result == [other, mine] and result is not client_list
    server_list = (mine,)
    assert enable_server_permessage_deflate(server_list) == [mine]


def test_enable_appends_after_other_factories() -> None:
    other = duck("x-other")
    client = enable_client_permessage_deflate([other])
    server = enable_server_permessage_deflate([other])
    assert [client[0], server[0]] == [other, other]
    assert isinstance(client[1], ClientPerMessageDeflateFactory)
    assert isinstance(server[1], ServerPerMessageDeflateFactory)
    assert enable_client_permessage_deflate([])[0].name == "permessage-deflate"


FLAGS = [False, True]
CLIENT_BITS: list[int | bool | None] = [None, True, 8, 11, 15]
SERVER_BITS: list[int | None] = [None, 8, 11, 15]


@pytest.mark.parametrize(
    ("client_snct", "client_cnct", "client_smwb", "client_cmwb"),
    list(itertools.product(FLAGS, FLAGS, SERVER_BITS, CLIENT_BITS)),
)
def test_every_combination(
    client_snct: bool,
    client_cnct: bool,
    client_smwb: int | None,
    client_cmwb: int | bool | None,
) -> None:
    """A client accepts every answer of an anyws server, and both agree."""
    client = ClientPerMessageDeflateFactory(
        client_snct, client_cnct, client_smwb, client_cmwb
    )
    for snct, cnct, smwb_, cmwb_, require in itertools.product(
        FLAGS, FLAGS, SERVER_BITS, SERVER_BITS, FLAGS
    ):
        server = ServerPerMessageDeflateFactory(
            snct, cnct, smwb_, cmwb_, require_client_max_window_bits=require
        )
        declined = cmwb_ is not None and client_cmwb is None and require
        if declined:
            with pytest.raises(exceptions.NegotiationError):
                negotiate(client, server)
            continue
        client_ext, server_ext = negotiate(client, server)
        assert state(client_ext) == state(peer_of(server_ext))
        # Each side got at least what it asked for.
        assert server_ext.local_no_context_takeover == (snct or client_snct)
        assert client_ext.local_no_context_takeover == (cnct or client_cnct)
        for limit in (smwb_, client_smwb):
            if limit is not None:
                assert server_ext.local_max_window_bits <= limit
        if client_cmwb is not None and client_cmwb is not True:
            assert client_ext.local_max_window_bits <= client_cmwb
        if cmwb_ is not None and client_cmwb is not None:
            assert client_ext.local_max_window_bits <= cmwb_


@pytest.mark.parametrize("client_cmwb", [None, True, 9])
@pytest.mark.parametrize("server_bits", [None, 8, 12])
def test_negotiated_extensions_talk(
    client_cmwb: int | bool | None, server_bits: int | None
) -> None:
    client_ext, server_ext = negotiate(
        ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_max_window_bits=client_cmwb
        ),
        ServerPerMessageDeflateFactory(
            server_max_window_bits=server_bits,
            client_max_window_bits=server_bits,
            require_client_max_window_bits=False,
        ),
    )
    message = bytes(range(256)) * 20 + b"end"
    for sender, receiver in [(client_ext, server_ext), (server_ext, client_ext)]:
        for _ in range(3):
            frames = fragment(message, [1000, 3000], Opcode.BINARY)
            assert send_and_receive(sender, receiver, frames)[1] == message
