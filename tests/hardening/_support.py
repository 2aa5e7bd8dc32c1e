"""Helpers shared by the hardening tests: memory bounds, fast frames, peers.

The raw peers of :mod:`tests.io_support` mask payloads byte by byte in
Python, which is too slow for the megabytes that hostile peers push here, so
:func:`fast_frame` masks with a whole-integer XOR instead.
"""

from __future__ import annotations

import gc
import os
import socket
import struct
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from anyws.exceptions import ConnectionClosed
from anyws.server import WebSocketServerProtocol, serve

from ..io_support import RawPeer, raw_client

__all__ = (
    "BASE_OVERHEAD",
    "KiB",
    "MiB",
    "MemoryProbe",
    "RecordingStream",
    "Served",
    "fast_frame",
    "listening",
    "memory_bound",
    "open_fds",
    "serve_one",
    "small_buffer_listener",
    "wait_until",
)

KiB = 1024
MiB = 1024 * KiB


def _mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``key`` (RFC 6455 section 5.3)."""
    if not data:
        return data
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    masked = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
    return masked.to_bytes(len(data), "big")


def fast_frame(
    opcode: int,
    data: bytes,
    *,
    fin: bool = True,
    mask: bool,
    rsv1: bool = False,
    length: int | None = None,
    key: bytes | None = None,
) -> bytes:
    """The bytes of a frame; ``length`` may announce another payload length
    than ``len(data)`` (to lie about it); ``key`` fixes the mask key (the
    null key makes masking free for bulk data, and is valid)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(data) if length is None else length
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not mask:
        return head + data
    if key is None:
        key = os.urandom(4)
    return head + key + _mask(data, key)


@dataclass
class MemoryProbe:
    """What :func:`memory_bound` measured: the peak of traced allocations
    above the level at entry, in bytes."""

    limit: int
    peak: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


#: Fixed costs that do not depend on the hostile input: the first log line
#: with a traceback loads source files into ``linecache`` (about 200 KiB on
#: asyncio), the first use of a code path creates caches. Every bound adds it.
BASE_OVERHEAD = 512 * KiB


@contextmanager
def memory_bound(limit: int) -> Iterator[MemoryProbe]:
    """Assert that Python allocations grow by at most ``limit`` bytes (plus
    :data:`BASE_OVERHEAD`) inside the block.

    ``tracemalloc`` sees every allocation of the process, the raw peer's
    included, so tests keep the peer's own buffers small or reuse them.
    """
    limit += BASE_OVERHEAD
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        probe = MemoryProbe(limit)
        yield probe
        _, peak = tracemalloc.get_traced_memory()
        probe.peak = peak - base
    finally:
        if started:
            tracemalloc.stop()
    assert probe.peak <= limit, f"memory grew by {probe.peak} bytes > {limit}"


def open_fds() -> int:
    """How many file descriptors the process holds (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def small_buffer_listener(size: int = 16 * KiB) -> socket.socket:
    """A listening socket on 127.0.0.1 with small kernel buffers: accepted
    sockets inherit them, so a peer that stops reading blocks writes soon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


@dataclass
class Served:
    """An anyws server with one raw client connected to it."""

    port: int
    peer: RawPeer
    ws: WebSocketServerProtocol
    #: Set by the test to let the handler return (it closes the connection).
    release: anyio.Event


@asynccontextmanager
async def serve_one(
    *, extra: str = "", sock: socket.socket | None = None, **server_kwargs: Any
) -> AsyncIterator[Served]:
    """Serve a handler that parks until released; connect one raw client."""
    send, receive = anyio.create_memory_object_stream[WebSocketServerProtocol](1)
    release = anyio.Event()

    async def handler(ws: WebSocketServerProtocol) -> None:
        await send.send(ws)
        await release.wait()

    server_kwargs.setdefault("compression", None)
    where: dict[str, Any] = {"sock": sock} if sock else {"host": "127.0.0.1", "port": 0}
    with send, receive:
        async with serve(handler, **where, **server_kwargs) as server:
            port = server.sockets[0].getsockname()[1]
            try:
                async with raw_client(port, extra=extra) as peer:
                    ws = await receive.receive()
                    yield Served(port, peer, ws, release)
            finally:
                release.set()


@asynccontextmanager
async def listening(**server_kwargs: Any) -> AsyncIterator[int]:
    """Run an anyws echo server on 127.0.0.1; yield its port."""

    async def echo(ws: WebSocketServerProtocol) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass  # the client left while the echo was being sent

    async with serve(echo, "127.0.0.1", 0, **server_kwargs) as server:
        yield server.sockets[0].getsockname()[1]


class RecordingStream(anyio.abc.ByteStream):
    """Wraps a connection's stream to check each read and write it makes.

    ``on_receive`` runs before each read, with the ``max_bytes`` asked.
    """

    def __init__(
        self,
        inner: anyio.abc.ByteStream,
        on_receive: Callable[[int], None] | None = None,
    ) -> None:
        self.inner = inner
        self.on_receive = on_receive
        self.receive_sizes: list[int] = []
        self.send_sizes: list[int] = []

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.on_receive is not None:
            self.on_receive(max_bytes)
        data = await self.inner.receive(max_bytes)
        self.receive_sizes.append(len(data))
        return data

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)
        self.send_sizes.append(len(item))

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition of the code under test, checking it at each
    scheduler turn (the caller bounds the wait with ``fail_after``)."""
    # No event exists for these conditions: poll them (ASYNC110 is for code
    # that owns the condition).
    while not predicate():  # noqa: ASYNC110
        await anyio.sleep(0.005)
