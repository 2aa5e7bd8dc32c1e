"""Tests for the optional C accelerator ``anyws.sansio._speedups`` (spec (m)).

The C ``apply_mask`` must behave exactly like the pure-Python
``frames._apply_mask_py``: same bytes, same accepted types, same errors. Every
test here runs on both paths whatever ``ANYWS_NO_SPEEDUPS`` says, because the
extension is imported directly.

Without the extension, the C-path tests are skipped, except when ``CI=true``:
CI builds it (``pip install -e .``) and must test it, so they fail there.

One documented difference: a mask of 4 items that are wider than a byte (for
example ``memoryview(array("H", [1, 2, 3, 4]))``, 8 bytes) makes the C path
raise ``ValueError``, while the Python path uses all 8 bytes as a key.
"""

from __future__ import annotations

import array
import os
import pathlib
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws.sansio import frames
from anyws.sansio._buffer import StreamReader
from anyws.sansio.frames import OP_BINARY, Frame, _apply_mask_py, _select_apply_mask

Masker = Callable[[bytes | bytearray | memoryview, bytes], bytes]

MASK_KEY = bytes.fromhex("37fa213d")  # the key of the examples in RFC 6455, 5.7
MODULE = "anyws.sansio._speedups"
ROOT = pathlib.Path(__file__).parent.parent.parent
HOW_TO_BUILD = (
    f"{MODULE} is not built; build it with `pip install -e .` on a machine "
    "with a C compiler (and without ANYWS_NO_SPEEDUPS=1)"
)


def load_c() -> Masker | None:
    """The C ``apply_mask``, or ``None`` if the extension is not built."""
    try:
        from anyws.sansio._speedups import apply_mask
    except ImportError:
        return None
    return apply_mask


C_APPLY_MASK = load_c()


@pytest.fixture(scope="module")
def apply_mask_c() -> Masker:
    """The C path; skipped if not built, but a failure on CI."""
    if C_APPLY_MASK is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{HOW_TO_BUILD}; CI must test it")
        pytest.skip(HOW_TO_BUILD)
    return C_APPLY_MASK


@pytest.fixture(scope="module", params=["python", "c"])
def masker(request: pytest.FixtureRequest) -> Masker:
    """Each path in turn."""
    if request.param == "python":
        return _apply_mask_py
    return cast(Masker, request.getfixturevalue("apply_mask_c"))


def naive_mask(data: bytes, mask: bytes) -> bytes:
    """RFC 6455, 5.3, literally: octet i XOR mask octet i MOD 4."""
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


def pattern(size: int) -> bytes:
    """Deterministic bytes of any length."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def as_kind(data: bytes, kind: str, offset: int) -> bytes | bytearray | memoryview:
    """``data`` as bytes, bytearray or memoryview, starting ``offset`` bytes
    into a larger buffer so that the C loop reads from unaligned addresses."""
    if kind == "bytes" and not offset:
        return data
    if kind == "bytearray" and not offset:
        return bytearray(data)
    return memoryview(bytes(offset) + data)[offset:]


def outcome(
    function: Masker, data: object, mask: object
) -> tuple[str, bytes | type[BaseException]]:
    """What a call does: ``("ok", result)`` or ``("error", exception type)``."""
    try:
        result = function(data, mask)  # type: ignore[arg-type]
    except Exception as exc:
        return "error", type(exc)
    return "ok", result


# -- same bytes on both paths ------------------------------------------------


@given(
    data=st.binary(max_size=2000),
    mask=st.binary(min_size=4, max_size=4),
    kind=st.sampled_from(["bytes", "bytearray", "memoryview"]),
    offset=st.integers(min_value=0, max_value=15),
)
def test_same_bytes(
    apply_mask_c: Masker, data: bytes, mask: bytes, kind: str, offset: int
) -> None:
    source = as_kind(data, kind, offset)
    result = apply_mask_c(source, mask)
    assert type(result) is bytes
    assert result == _apply_mask_py(source, mask) == naive_mask(data, mask)
    assert apply_mask_c(result, mask) == data


def test_every_tail_and_offset(apply_mask_c: Masker) -> None:
    # All lengths mod 8 (the tail loop) at all alignments mod 8.
    for size in range(40):
        data = pattern(size)
        for offset in range(8):
            source = as_kind(data, "memoryview", offset)
            assert apply_mask_c(source, MASK_KEY) == naive_mask(data, MASK_KEY)


@pytest.mark.parametrize(
    "size",
    [65535, 65536, 65537, 65543, 2**20, 2**20 + 3, 5 * 2**20 + 1],
)
@pytest.mark.parametrize("offset", [0, 3])
def test_large_payloads(apply_mask_c: Masker, size: int, offset: int) -> None:
    # Sizes around the point where the C code releases the GIL.
    data = pattern(size)
    source = as_kind(data, "memoryview", offset)
    assert apply_mask_c(source, MASK_KEY) == _apply_mask_py(source, MASK_KEY)


def test_threads(apply_mask_c: Masker) -> None:
    # Large payloads are masked without the GIL; threads must not interfere.
    data = pattern(2**20 + 5)
    expected = _apply_mask_py(data, MASK_KEY)
    results: list[bytes] = []

    def work() -> None:
        for _ in range(3):
            results.append(apply_mask_c(data, MASK_KEY))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 12


def test_rfc_example(masker: Masker) -> None:
    # RFC 6455, 5.7: "Hello" masked with 37 fa 21 3d.
    assert masker(b"Hello", MASK_KEY) == bytes.fromhex("7f9f4d5158")


def test_input_is_not_modified(masker: Masker) -> None:
    data = bytearray(b"payload!")
    result = masker(data, MASK_KEY)
    assert data == b"payload!"
    assert result == naive_mask(b"payload!", MASK_KEY)


class BytesSubclass(bytes):
    pass


class BytearraySubclass(bytearray):
    pass


SOURCE = pattern(24)
WIDE = array.array("H", range(12))
BYTES_LIKE = {
    "bytes subclass": BytesSubclass(SOURCE),
    "bytearray subclass": BytearraySubclass(SOURCE),
    "memoryview of wide items": memoryview(WIDE),
    "2-D memoryview": memoryview(SOURCE).cast("B", (4, 6)),
    "non-contiguous memoryview": memoryview(SOURCE)[::2],
    "reversed memoryview": memoryview(SOURCE)[::-1],
    "non-contiguous wide memoryview": memoryview(WIDE)[1::3],
    "empty non-contiguous memoryview": memoryview(SOURCE)[5:5:2],
}


@pytest.mark.parametrize("data", BYTES_LIKE.values(), ids=BYTES_LIKE.keys())
def test_bytes_like_data(masker: Masker, data: bytes | memoryview) -> None:
    # Non-contiguous views are copied in logical order (frames callers rely on
    # it), the bytes of wider items are all masked.
    raw = data.tobytes() if isinstance(data, memoryview) else bytes(data)
    assert masker(data, MASK_KEY) == naive_mask(raw, MASK_KEY)


@pytest.mark.parametrize(
    "mask",
    [
        bytearray(MASK_KEY),
        memoryview(MASK_KEY),
        BytesSubclass(MASK_KEY),
        [55, 250, 33, 61],
    ],
    ids=["bytearray", "memoryview", "bytes subclass", "list of ints"],
)
def test_bytes_like_mask(masker: Masker, mask: object) -> None:
    assert masker(b"Hello", mask) == bytes.fromhex("7f9f4d5158")  # type: ignore[arg-type]


def test_keyword_arguments(masker: Masker) -> None:
    function = cast(Callable[..., bytes], masker)
    assert function(data=b"Hello", mask=MASK_KEY) == bytes.fromhex("7f9f4d5158")
    assert function(b"Hello", mask=MASK_KEY) == bytes.fromhex("7f9f4d5158")


# -- the same errors on both paths -------------------------------------------


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde", bytearray(5), [1, 2]])
@pytest.mark.parametrize("data", [b"data", b"", "not bytes"])
def test_bad_mask_length(masker: Masker, data: object, mask: object) -> None:
    # The length of the mask is checked first, even for an empty payload.
    with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
        masker(data, mask)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data", ["text", 42, None, [1, 2], array.array("B", b"ab"), object()]
)
def test_bad_data(masker: Masker, data: object) -> None:
    # Only bytes, bytearray and memoryview: not every buffer (like array).
    with pytest.raises(TypeError, match="^data must be bytes-like$"):
        masker(data, MASK_KEY)  # type: ignore[arg-type]


def released_view() -> memoryview:
    view = memoryview(b"abcd")
    view.release()
    return view


ERROR_CASES = {
    "mask without len": (b"data", 42),
    "mask None": (b"data", None),
    "mask str": (b"data", "abcd"),
    "mask str, empty data": (b"", "abcd"),
    "mask not bytes, empty data": (b"", [1, 2, 3, 999]),
    "mask item over 255": (b"data", [1, 2, 3, 999]),
    "bad data and bad mask length": ("text", b"abc"),
    "bad data and mask without len": ("text", 42),
    "released memoryview": (released_view(), MASK_KEY),
}


@pytest.mark.parametrize(("data", "mask"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_same_outcome(apply_mask_c: Masker, data: object, mask: object) -> None:
    # Each case is an error or an odd success; both paths agree on which.
    assert outcome(apply_mask_c, data, mask) == outcome(_apply_mask_py, data, mask)


def test_wrong_arguments(apply_mask_c: Masker) -> None:
    function = cast(Callable[..., bytes], apply_mask_c)
    python = cast(Callable[..., bytes], _apply_mask_py)
    for args, kwargs in [
        ((), {}),
        ((b"data",), {}),
        ((b"data", MASK_KEY, MASK_KEY), {}),
        ((b"data",), {"data": b"data"}),
        ((b"data",), {"key": MASK_KEY}),
        ((), {"mask": MASK_KEY}),
    ]:
        with pytest.raises(TypeError):
            function(*args, **kwargs)
        with pytest.raises(TypeError):
            python(*args, **kwargs)


def test_wide_mask_differs(apply_mask_c: Masker) -> None:
    # The one documented difference (see the module docstring).
    mask = memoryview(array.array("H", [1, 2, 3, 4]))
    assert len(mask) == 4 and mask.nbytes == 8
    with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
        apply_mask_c(b"data", mask)  # type: ignore[arg-type]
    assert outcome(_apply_mask_py, b"data", mask)[0] == "ok"


# -- frames with each path ---------------------------------------------------


def parse(data: bytes) -> Frame:
    """Parse one masked frame from ``data``, fed at once."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=True)
    with pytest.raises(StopIteration) as info:
        next(parser)
    assert not reader.buffer
    return cast(Frame, info.value.value)


@pytest.mark.parametrize("size", [0, 1, 5, 125, 126, 65535, 65536, 70001])
def test_frame_round_trip(
    masker: Masker, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(frames, "apply_mask", masker)
    frame = Frame(True, OP_BINARY, pattern(size))
    wire = frame.serialize(mask=True, mask_key=MASK_KEY)
    # The payload ends the frame, after the header and the key.
    assert wire.endswith(MASK_KEY + naive_mask(frame.data, MASK_KEY))
    assert parse(wire) == frame


# -- choosing the path -------------------------------------------------------


def test_select_forced_python() -> None:
    assert _select_apply_mask(True) is _apply_mask_py


def test_select_default() -> None:
    expected = C_APPLY_MASK or _apply_mask_py
    assert _select_apply_mask(False) is expected


def test_select_uses_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whether or not it is built here, a module with apply_mask is chosen.
    fake = types.ModuleType(MODULE)
    fake.apply_mask = naive_mask  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, fake)
    assert _select_apply_mask(False) is naive_mask


@pytest.mark.parametrize(
    "module", [None, types.ModuleType(MODULE)], ids=["missing", "empty"]
)
def test_select_falls_back(
    monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None
) -> None:
    # A None entry in sys.modules makes the import fail as if not built; an
    # empty module fails at ``from ... import apply_mask``.
    monkeypatch.setitem(sys.modules, MODULE, cast(types.ModuleType, module))
    assert _select_apply_mask(False) is _apply_mask_py


def test_module_attribute() -> None:
    if os.environ.get("ANYWS_NO_SPEEDUPS") == "1":
        assert frames.apply_mask is _apply_mask_py
    else:
        assert frames.apply_mask is (C_APPLY_MASK or _apply_mask_py)


@pytest.mark.parametrize(("value", "forced"), [("1", True), ("0", False), ("", False)])
def test_environment_variable(value: str, forced: bool) -> None:
    # frames reads ANYWS_NO_SPEEDUPS once, at import time: use a fresh process.
    code = (
        "from anyws.sansio import frames\n"
        "print(frames.apply_mask is frames._apply_mask_py)\n"
    )
    env = {**os.environ, "ANYWS_NO_SPEEDUPS": value}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    uses_python = forced or C_APPLY_MASK is None
    assert result.stdout.strip() == str(uses_python)
