"""A byte buffer read by generator-based parsers.

Parsers are generators that ``yield`` when they need more bytes and ``return``
their result. ``read_exact``, ``read_line`` and ``read_to_eof`` are generators
too: a parser calls them with ``yield from``.
"""

from __future__ import annotations

from collections.abc import Generator

__all__ = ("BIG", "StreamReader")

#: From this many bytes on, :meth:`StreamReader.read_exact` collects what it
#: is fed in a list instead of the buffer.
BIG = 1 << 16


class StreamReader:
    """Bytes received from the network, waiting to be parsed.

    Feed bytes with :meth:`feed_data` and the end of the stream with
    :meth:`feed_eof`; read them through the generator methods.
    """

    __slots__ = ("buffer", "eof", "_chunks", "_chunked")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        # While read_exact waits for a big payload, the bytes fed are kept
        # here as they came and joined once at the end (see _read_big).
        self._chunks: list[bytes] | None = None
        self._chunked = 0

    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the network.

        Raises:
            EOFError: if :meth:`feed_eof` was called already.
        """
        if self.eof:
            raise EOFError("stream ended")
        chunks = self._chunks
        if chunks is None:
            self.buffer += data
        else:
            chunks.append(data if type(data) is bytes else bytes(data))
            self._chunked += len(data)

    def feed_eof(self) -> None:
        """Record the end of the stream.

        Raises:
            EOFError: if :meth:`feed_eof` was called already.
        """
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def at_eof(self) -> Generator[None, None, bool]:
        """Wait until a byte is buffered or the stream ends; tell which."""
        while True:
            if self.buffer:
                return False
            if self.eof:
                return True
            yield

    def read_exact(self, n: int) -> Generator[None, None, bytes]:
        """Read exactly ``n`` bytes.

        Raises:
            EOFError: if the stream ends first.
        """
        assert n >= 0
        if n >= BIG and len(self.buffer) < n:
            return (yield from self._read_big(n))
        while len(self.buffer) < n:
            if self.eof:
                raise EOFError(
                    f"stream ends after {len(self.buffer)} bytes, expected {n}"
                )
            yield
        if n == len(self.buffer):
            # Often the whole buffer (a payload read after its header): one
            # copy instead of a slice and a copy of it (1 MiB echo).
            data = bytes(self.buffer)
            self.buffer.clear()
            return data
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _read_big(self, n: int) -> Generator[None, None, bytes]:
        """``read_exact`` for ``n >= BIG``: keep the chunks and join them once.

        Growing the buffer to ``n`` bytes, then copying them out, moves each
        byte two or three times; joining the chunks moves it once.
        """
        chunks = [bytes(self.buffer)]
        self._chunks = chunks
        self._chunked = len(self.buffer)
        self.buffer.clear()
        try:
            while self._chunked < n:
                if self.eof:
                    raise EOFError(
                        f"stream ends after {self._chunked} bytes, expected {n}"
                    )
                yield
        finally:
            self._chunks = None
        extra = self._chunked - n
        if extra:
            last = chunks[-1]
            cut = len(last) - extra
            self.buffer += memoryview(last)[cut:]
            chunks[-1] = last[:cut]
        return b"".join(chunks)

    def read_line(self, max_length: int) -> Generator[None, None, bytes]:
        """Read up to and including the next ``\\n``.

        Args:
            max_length: the longest line accepted, ``\\n`` included.

        Raises:
            EOFError: if the stream ends before the end of the line.
            RuntimeError: if the line is longer than ``max_length``.
        """
        start = 0
        while True:
            end = self.buffer.find(b"\n", start) + 1
            if end > 0:
                break
            if len(self.buffer) > max_length:
                raise RuntimeError(
                    f"read {len(self.buffer)} bytes, expected no more than {max_length}"
                )
            if self.eof:
                raise EOFError(
                    f"stream ends after {len(self.buffer)} bytes, before end of line"
                )
            start = len(self.buffer)
            yield
        if end > max_length:
            raise RuntimeError(f"read {end} bytes, expected no more than {max_length}")
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def read_to_eof(self, max_length: int) -> Generator[None, None, bytes]:
        """Read everything until the stream ends.

        Raises:
            RuntimeError: if more than ``max_length`` bytes arrive.
        """
        while not self.eof:
            if len(self.buffer) > max_length:
                raise RuntimeError(
                    f"read {len(self.buffer)} bytes, expected no more than {max_length}"
                )
            yield
        if len(self.buffer) > max_length:
            raise RuntimeError(
                f"read {len(self.buffer)} bytes, expected no more than {max_length}"
            )
        data = bytes(self.buffer)
        del self.buffer[:]
        return data

    def discard(self) -> None:
        """Drop every buffered byte (after a fatal error)."""
        del self.buffer[:]
        self._chunks = None
        self._chunked = 0
