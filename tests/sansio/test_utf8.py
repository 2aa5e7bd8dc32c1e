"""Tests for anyws.sansio.utf8: fail-fast UTF-8 validation (Autobahn 6.x)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws.sansio.utf8 import Utf8Validator, validate_utf8

# -- reference -------------------------------------------------------------------

# One byte from each continuation range that RFC 3629 distinguishes after a
# lead byte: 80-8F, 90-9F and A0-BF.
_COMPLETIONS = [
    bytes(tail)
    for size in (1, 2, 3)
    for tail in itertools.product([0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF], repeat=size)
]


@functools.cache
def is_valid_prefix(data: bytes) -> bool:
    """Whether some bytes can follow ``data`` to make valid UTF-8.

    Independent of the code under test: CPython's one-shot strict decoder is
    the judge, on ``data`` and on ``data`` followed by every shape of
    completion.
    """
    return any(_decodes(data + tail) for tail in [b"", *_COMPLETIONS])


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def first_bad_length(data: bytes) -> int | None:
    """The length of the shortest prefix that no bytes can make valid."""
    for length in range(1, len(data) + 1):
        if not is_valid_prefix(data[:length]):
            return length
    return None


def check_chunks(data: bytes, chunks: Sequence[bytes]) -> None:
    """Feed ``chunks`` (which join into ``data``) and check when it fails.

    It must fail with the chunk holding the first byte that makes the data
    invalid, not before and not after; truncated data fails only with the
    final call; valid data never fails and decodes to the same text.
    """
    assert b"".join(chunks) == data
    bad = first_bad_length(data)
    validator = Utf8Validator()
    seen = 0
    text = []
    for chunk in chunks:
        seen += len(chunk)
        if bad is not None and seen >= bad:
            with pytest.raises(UnicodeDecodeError):
                validator.decode(chunk)
            return
        text.append(validator.decode(chunk))
    if _decodes(data):
        text.append(validator.decode(b"", final=True))
        assert "".join(text) == data.decode()
    else:
        with pytest.raises(UnicodeDecodeError):
            validator.decode(b"", final=True)


def splits(data: bytes) -> list[list[bytes]]:
    """Every split of ``data`` into two chunks, plus one byte at a time."""
    result = [[data[:index], data[index:]] for index in range(len(data) + 1)]
    result.append([data[index : index + 1] for index in range(len(data))])
    return result


# -- samples ---------------------------------------------------------------------

VALID = [
    b"",
    b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
    "κόσμε".encode(),
    b"\x00",
    b"\x7f",
    b"\xc2\x80",  # U+0080
    b"\xdf\xbf",  # U+07FF
    b"\xe0\xa0\x80",  # U+0800
    b"\xed\x9f\xbf",  # U+D7FF, just below the surrogates
    b"\xee\x80\x80",  # U+E000, just above them
    b"\xef\xbf\xbd",  # U+FFFD
    b"\xef\xbf\xbf",  # U+FFFF
    b"\xf0\x90\x80\x80",  # U+10000
    b"\xf1\x80\x80\x80",
    b"\xf3\xbf\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the last code point
    "𝄞 music €".encode(),
]

INVALID = [
    # Overlong forms (Autobahn 6.8, 6.9, 6.10).
    b"\xc0\x80",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\x80",
    b"\xe0\x80\xaf",
    b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",
    # Surrogates (Autobahn 6.11, 6.12).
    b"\xed\xa0\x80",
    b"\xed\xad\xbf",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    # Beyond U+10FFFF and impossible bytes (Autobahn 6.3, 6.6, 6.7, 6.13).
    b"\xf4\x90\x80\x80",
    b"\xf4\xbf\xbf\xbf",
    b"\xf5\x80\x80\x80",
    b"\xf7\xbf\xbf\xbf",
    b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xfe\xfe\xff\xff",
    # Unexpected continuation bytes (Autobahn 6.14).
    b"\x80",
    b"\xbf",
    b"ab\x80cd",
    b"\xc3\xa9\xa9",
    # Lead bytes followed by something else (Autobahn 6.15, 6.16).
    b"\xc2\x41",
    b"\xc2 ",
    b"\xe1\x80\x41",
    b"\xe1\x41",
    b"\xf1\x80\x80\x41",
    b"\xf1\x80\x41",
    b"\xf0\x90\x80\xc2\xa9",
    b"\xe0 \xa0",
    # Truncated at the end (Autobahn 6.17): valid prefixes, invalid when final.
    b"\xc2",
    b"\xdf",
    b"\xe0\xa0",
    b"\xed\x9f",
    b"\xef\xbf",
    b"\xf0\x90\x80",
    b"\xf4\x8f\xbf",
    b"valid then \xe2\x82",
]


def test_reference_sanity() -> None:
    assert first_bad_length(b"\xed\xa0\x80") == 2
    assert first_bad_length(b"\xf4\x90\x80\x80") == 2
    assert first_bad_length(b"\xc0\x80") == 1
    assert first_bad_length(b"ab\x80") == 3
    assert first_bad_length(b"\xf0\x90\x80") is None
    for data in VALID:
        assert first_bad_length(data) is None
        assert _decodes(data)
    for data in INVALID:
        assert not _decodes(data)


@pytest.mark.parametrize("data", VALID)
def test_valid_every_split(data: bytes) -> None:
    for chunks in splits(data):
        check_chunks(data, chunks)


@pytest.mark.parametrize("data", INVALID)
def test_invalid_every_split(data: bytes) -> None:
    for chunks in splits(data):
        check_chunks(data, chunks)


@pytest.mark.parametrize("data", INVALID)
def test_invalid_after_valid_text(data: bytes) -> None:
    prefix = "ok é €".encode()
    for chunks in splits(prefix + data):
        check_chunks(prefix + data, chunks)


@pytest.mark.parametrize(
    "tail",
    [b"\xe0\x80", b"\xe0\x9f", b"\xed\xa0", b"\xed\xbf", b"\xf0\x80", b"\xf0\x8f"]
    + [b"\xf4\x90", b"\xf4\xbf", b"\xf0\x90\x41", b"\xf1\x80\xc0", b"\xe1\xc0"],
)
def test_dead_end_tails_fail_at_once(tail: bytes) -> None:
    validator = Utf8Validator()
    assert validator.decode(b"abc") == "abc"
    with pytest.raises(UnicodeDecodeError):
        validator.decode(tail)


@pytest.mark.parametrize(
    "tail", [b"\xe0\xa0", b"\xed\x9f", b"\xf0\x90", b"\xf4\x8f", b"\xf3\xbf\xbf"]
)
def test_open_tails_wait(tail: bytes) -> None:
    validator = Utf8Validator()
    assert validator.decode(tail) == ""
    with pytest.raises(UnicodeDecodeError):
        validator.decode(b"", final=True)


def test_decode_returns_text_so_far() -> None:
    validator = Utf8Validator()
    assert validator.decode(b"caf\xc3") == "caf"
    assert validator.decode(b"\xa9 \xe2\x82") == "é "
    assert validator.decode(b"\xac", final=True) == "€"


def test_decode_bytes_like() -> None:
    validator = Utf8Validator()
    assert validator.decode(bytearray(b"ab\xc3")) == "ab"  # type: ignore[arg-type]
    assert validator.decode(memoryview(b"\xa9"), final=True) == "é"  # type: ignore[arg-type]


def test_reset() -> None:
    validator = Utf8Validator()
    assert validator.decode(b"\xe2\x82") == ""
    validator.reset()
    assert validator.decode(b"ok", final=True) == "ok"
    # After ``final=True`` the validator starts afresh too.
    assert validator.decode(b"\xc3\xa9", final=True) == "é"


def test_final_with_pending_tail_in_same_call() -> None:
    with pytest.raises(UnicodeDecodeError):
        Utf8Validator().decode(b"ab\xe2\x82", final=True)


@st.composite
def chunked(draw: st.DrawFn, data: st.SearchStrategy[bytes]) -> list[bytes]:
    """``data`` cut at random places."""
    value = draw(data)
    cuts = sorted(draw(st.lists(st.integers(0, len(value)), max_size=6)))
    bounds = [0, *cuts, len(value)]
    return [value[start:end] for start, end in itertools.pairwise(bounds)]


# Bytes around every boundary of the RFC 3629 table, plus ASCII.
_INTERESTING = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1]
_INTERESTING += [0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3]
_INTERESTING += [0xF4, 0xF5, 0xF7, 0xF8, 0xFF]
utf8ish = st.lists(st.sampled_from(_INTERESTING), max_size=12).map(bytes)


@given(chunks=chunked(utf8ish))
def test_random_bytes(chunks: list[bytes]) -> None:
    check_chunks(b"".join(chunks), chunks)


@given(chunks=chunked(st.text(max_size=40).map(str.encode)))
def test_random_text(chunks: list[bytes]) -> None:
    check_chunks(b"".join(chunks), chunks)


@given(
    text=st.text(max_size=20).map(str.encode),
    bad=st.sampled_from(INVALID),
    chunks=st.integers(1, 5),
)
def test_invalid_inside_text(text: bytes, bad: bytes, chunks: int) -> None:
    data = text + bad + text
    size = max(1, len(data) // chunks)
    check_chunks(data, [data[i : i + size] for i in range(0, len(data), size)])


def test_validate_utf8() -> None:
    assert validate_utf8(b"caf\xc3\xa9") == "café"
    assert validate_utf8(bytearray(b"ok")) == "ok"
    assert validate_utf8(memoryview(b"aXbXc")[::2]) == "abc"
    assert validate_utf8(b"") == ""
    for data in INVALID:
        with pytest.raises(UnicodeDecodeError):
            validate_utf8(data)
    for data in VALID:
        assert validate_utf8(data) == data.decode()
