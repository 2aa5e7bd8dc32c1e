"""The byte buffer behind the generator parsers."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import pytest

from anyws.sansio._buffer import BIG, StreamReader

T = TypeVar("T")


def run(reader: StreamReader, gen: Generator[None, None, T]) -> T | None:
    """Advance a read until it needs more bytes (None) or returns."""
    try:
        next(gen)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    return None


def test_feed_after_eof_fails() -> None:
    reader = StreamReader()
    reader.feed_eof()
    with pytest.raises(EOFError):
        reader.feed_data(b"x")
    with pytest.raises(EOFError):
        reader.feed_eof()


def test_at_eof() -> None:
    reader = StreamReader()
    gen = reader.at_eof()
    assert run(reader, gen) is None
    reader.feed_data(b"a")
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value is False
    empty = StreamReader()
    empty.feed_eof()
    assert run(empty, empty.at_eof()) is True


def test_read_exact_waits_then_returns() -> None:
    reader = StreamReader()
    gen = reader.read_exact(3)
    assert run(reader, gen) is None
    reader.feed_data(b"ab")
    assert run(reader, gen) is None
    reader.feed_data(b"cd")
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == b"abc"
    assert bytes(reader.buffer) == b"d"


def test_read_exact_eof() -> None:
    reader = StreamReader()
    reader.feed_data(b"ab")
    reader.feed_eof()
    with pytest.raises(EOFError, match="after 2 bytes, expected 3"):
        run(reader, reader.read_exact(3))


def test_read_line() -> None:
    reader = StreamReader()
    gen = reader.read_line(10)
    assert run(reader, gen) is None
    reader.feed_data(b"abc")
    assert run(reader, gen) is None
    reader.feed_data(b"\r\nrest")
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == b"abc\r\n"
    assert bytes(reader.buffer) == b"rest"


def test_read_line_limits() -> None:
    reader = StreamReader()
    reader.feed_data(b"x" * 11)
    with pytest.raises(RuntimeError, match="no more than 10"):
        run(reader, reader.read_line(10))
    long_line = StreamReader()
    long_line.feed_data(b"x" * 10 + b"\n")
    with pytest.raises(RuntimeError, match="read 11 bytes"):
        run(long_line, long_line.read_line(10))
    cut = StreamReader()
    cut.feed_data(b"abc")
    cut.feed_eof()
    with pytest.raises(EOFError, match="before end of line"):
        run(cut, cut.read_line(10))


def test_read_to_eof() -> None:
    reader = StreamReader()
    gen = reader.read_to_eof(5)
    assert run(reader, gen) is None
    reader.feed_data(b"abc")
    reader.feed_eof()
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == b"abc"
    assert reader.buffer == bytearray()


def test_read_to_eof_limits() -> None:
    reader = StreamReader()
    gen = reader.read_to_eof(2)
    assert run(reader, gen) is None
    reader.feed_data(b"abc")
    with pytest.raises(RuntimeError, match="no more than 2"):
        next(gen)
    at_end = StreamReader()
    at_end.feed_data(b"abc")
    at_end.feed_eof()
    with pytest.raises(RuntimeError, match="read 3 bytes"):
        run(at_end, at_end.read_to_eof(2))


def test_discard() -> None:
    reader = StreamReader()
    reader.feed_data(b"abc")
    reader.discard()
    assert reader.buffer == bytearray()


def test_big_reads_join_the_chunks_once() -> None:
    """From BIG bytes on, read_exact keeps the chunks fed and joins them:
    same bytes, any kind of chunk, the surplus left in the buffer."""
    reader = StreamReader()
    reader.feed_data(b"ab")
    gen = reader.read_exact(BIG + 2)
    assert run(reader, gen) is None
    assert reader.buffer == b""  # moved to the chunks
    reader.feed_data(bytearray(b"c" * (BIG - 2)))
    reader.feed_data(memoryview(b"d" * 4))
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == b"ab" + b"c" * (BIG - 2) + b"dd"
    assert reader.buffer == b"dd"
    reader.feed_data(b"e")  # back to the buffer
    assert reader.buffer == b"dde"


def test_big_read_fails_at_eof() -> None:
    reader = StreamReader()
    gen = reader.read_exact(BIG)
    assert run(reader, gen) is None
    reader.feed_data(b"x" * 10)
    reader.feed_eof()
    with pytest.raises(EOFError, match=f"after 10 bytes, expected {BIG}"):
        next(gen)
    reader.discard()
    assert reader.buffer == b""


def test_discard_drops_a_big_read_in_progress() -> None:
    reader = StreamReader()
    gen = reader.read_exact(BIG)
    assert run(reader, gen) is None
    reader.feed_data(b"x" * 10)
    reader.discard()
    reader.feed_data(b"y")  # goes to the buffer, not the abandoned read
    assert reader.buffer == b"y"
