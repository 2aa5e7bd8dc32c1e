"""Helpers for the I/O tests: raw peers that speak bytes, TLS certificates.

The raw peer parses and builds frames and HTTP messages itself, without the
library, so that the tests check what really goes on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import NamedTuple

import anyio
import anyio.abc

from anyws import _asyncio_stream
from anyws._asyncio_stream import _read_on_demand

__all__ = (
    "CONT",
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
    "TEXT",
    "RawFrame",
    "RawPeer",
    "accept_for",
    "build_frame",
    "reset",
    "close_payload",
    "raw_client",
    "raw_server",
    "upgrade_request",
)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: A generous bound for tests: they assert that things end, not how fast.
TIMEOUT = 10


class RawFrame(NamedTuple):
    fin: bool
    opcode: int
    data: bytes
    rsv1: bool = False


@contextmanager
def stock_streams() -> Iterator[None]:
    """New connections use AnyIO's stock socket streams within this block
    (instead of :mod:`anyws._asyncio_stream` and :mod:`anyws._trio_stream`)."""
    _asyncio_stream.set_native_enabled(False)
    try:
        yield
    finally:
        _asyncio_stream.set_native_enabled(True)


def native_stream(anyio_backend: str) -> bool:
    """Whether connections opened now use anyws's own asyncio stream
    (:class:`anyws._asyncio_stream.NativeStream`), see ``conftest.py``."""
    return anyio_backend == "asyncio" and _asyncio_stream.native_enabled()


def accept_for(key: str) -> str:
    """Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def upgrade_request(
    path: str = "/",
    *,
    host: str = "localhost",
    key: str = "dGhlIHNhbXBsZSBub25jZQ==",
    extra: str = "",
    method: str = "GET",
    version: str = "HTTP/1.1",
) -> bytes:
    """A handshake request; ``extra`` holds more header lines (CRLF ended)."""
    return (
        f"{method} {path} {version}\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


def build_frame(opcode: int, data: bytes, *, fin: bool = True, mask: bool) -> bytes:
    """The bytes of a frame (RFC 6455 section 5.2); masked for a client."""
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask else 0
    length = len(data)
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if mask:
        key = os.urandom(4)
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        head += key
    return head + data


async def reset(stream: anyio.abc.ByteStream) -> None:
    """Close a TCP stream with a RST (SO_LINGER 0) rather than a FIN."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


class RawPeer:
    """A byte stream with the reading and writing helpers the tests need."""

    def __init__(self, stream: anyio.abc.ByteStream, *, mask: bool) -> None:
        self.stream = stream
        self.mask = mask
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return False
        self.buffer += data
        return True

    async def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not await self._fill():
                raise EOFError(f"EOF after {len(self.buffer)} of {n} bytes")
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_until(self, delimiter: bytes) -> bytes:
        while (index := self.buffer.find(delimiter)) < 0:
            if not await self._fill():
                raise EOFError("EOF before the delimiter")
        end = index + len(delimiter)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    async def read_http(self) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
        """Read a request or response head: first line, headers (lower-cased
        names, last value wins) and the raw list."""
        head = (await self.read_until(b"\r\n\r\n")).decode()
        first, *lines = head.split("\r\n")
        pairs = []
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                pairs.append((name, value.strip()))
        return first, {name.lower(): value for name, value in pairs}, pairs

    async def read_response(self) -> tuple[int, dict[str, str], bytes]:
        """Read a whole HTTP response, its body included (Content-Length)."""
        first, headers, _ = await self.read_http()
        status = int(first.split(" ", 2)[1])
        body = await self.read_exact(int(headers.get("content-length", "0")))
        return status, headers, body

    async def read_to_eof(self) -> bytes:
        while await self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def read_frame(self, *, unmask: bool = True) -> RawFrame:
        """Read one frame (``unmask=False`` leaves a masked payload as it
        came, to save time on big frames)."""
        head = await self.read_exact(2)
        fin, rsv1, opcode = bool(head[0] & 0x80), bool(head[0] & 0x40), head[0] & 0x0F
        masked, length = bool(head[1] & 0x80), head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.read_exact(8))
        mask_key = await self.read_exact(4) if masked else b""
        data = await self.read_exact(length)
        if masked and unmask:
            data = bytes(b ^ mask_key[i % 4] for i, b in enumerate(data))
        return RawFrame(fin, opcode, data, rsv1)

    async def read_data_frame(self) -> RawFrame:
        """The next frame that is not a ping or pong (those are skipped)."""
        while (frame := await self.read_frame()).opcode in (PING, PONG):
            pass
        return frame

    def build_frame(self, opcode: int, data: bytes, *, fin: bool = True) -> bytes:
        return build_frame(opcode, data, fin=fin, mask=self.mask)

    async def send_frame(
        self, opcode: int, data: bytes = b"", *, fin: bool = True
    ) -> None:
        await self.stream.send(self.build_frame(opcode, data, fin=fin))

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def expect_eof(self) -> bytes:
        """Read until EOF; return what came before it."""
        with anyio.fail_after(TIMEOUT):
            return await self.read_to_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _client_handshake(peer: RawPeer, path: str, extra: str) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    await peer.send(upgrade_request(path, key=key, extra=extra))
    first, headers, _ = await peer.read_http()
    assert first.startswith("HTTP/1.1 101"), first
    assert headers["sec-websocket-accept"] == accept_for(key)


@asynccontextmanager
async def raw_client(
    port: int, *, handshake: bool = True, path: str = "/", extra: str = ""
) -> AsyncIterator[RawPeer]:
    """A raw client connected to 127.0.0.1:port, after a handshake if asked."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    # Raw peers read only when asked: flow-control tests need the push-back
    # (see anyws._asyncio_stream._read_on_demand).
    _read_on_demand(stream)
    peer = RawPeer(stream, mask=True)
    try:
        if handshake:
            await _client_handshake(peer, path, extra)
        yield peer
    finally:
        await anyio.aclose_forcefully(stream)


async def server_handshake(peer: RawPeer, extra: str = "") -> dict[str, str]:
    """Read a handshake request and answer 101; return the request headers."""
    _, headers, _ = await peer.read_http()
    accept = accept_for(headers["sec-websocket-key"])
    await peer.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n"
            f"{extra}\r\n"
        ).encode()
    )
    return headers


@asynccontextmanager
async def raw_server(
    handler: Callable[[RawPeer], Awaitable[None]],
) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1, on a free port; yield the port.

    The handler gets each connection as a server-side ``RawPeer``; the stream
    is closed when the handler returns.
    """

    async def handle(stream: anyio.abc.SocketStream) -> None:
        _read_on_demand(stream)
        peer = RawPeer(stream, mask=False)
        try:
            await handler(peer)
        finally:
            await anyio.aclose_forcefully(stream)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, handle)
        try:
            yield port
        finally:
            task_group.cancel_scope.cancel()


def client_context(ca: object) -> ssl.SSLContext:
    """A client TLS context that trusts a ``trustme.CA``."""
    context = ssl.create_default_context()
    ca.configure_trust(context)  # type: ignore[attr-defined]
    return context
