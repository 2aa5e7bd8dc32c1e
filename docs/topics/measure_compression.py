"""Measure the memory one connection costs, with and without compression.

Opens ``COUNT`` connections to a server in the same process, exchanges one
message each way on each (so that both zlib streams of each side exist), and
reports what tracemalloc saw per connection, both ends together. zlib
allocates through Python's raw allocator, which tracemalloc traces.

    python docs/topics/measure_compression.py
"""

from __future__ import annotations

import contextlib
import gc
import sys
import tracemalloc
import zlib
from typing import Any

import anyio

import anyws
from anyws.sansio.extensions.permessage_deflate import ServerPerMessageDeflateFactory

COUNT = 50
MESSAGE = "compressible text " * 100


async def echo(ws: anyws.WebSocketServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


async def per_connection(server_options: dict[str, Any]) -> float:
    """Bytes per connection (client and server ends) still allocated."""
    async with anyws.serve(echo, "127.0.0.1", 0, **server_options) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        async with contextlib.AsyncExitStack() as stack:
            # Warm up (imports, caches) before the baseline.
            ws = await stack.enter_async_context(anyws.connect(uri))
            await ws.send(MESSAGE)
            await ws.recv()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(COUNT):
                ws = await stack.enter_async_context(anyws.connect(uri))
                await ws.send(MESSAGE)
                await ws.recv()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
    return (after - before) / COUNT


def zlib_cost(window_bits: int, mem_level: int) -> float:
    """Bytes held by one side's pair of zlib streams, after one message."""
    data = MESSAGE.encode()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    streams = []
    for _ in range(COUNT):
        compressor = zlib.compressobj(wbits=-window_bits, memLevel=mem_level)
        decompressor = zlib.decompressobj(wbits=-window_bits)
        deflated = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        decompressor.decompress(deflated)
        streams.append((compressor, decompressor))
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] - before) / COUNT


async def main() -> None:
    for bits, level, side in [
        (12, 5, "anyws server"),
        (12, 8, "anyws client"),
        (15, 8, "websockets 8.1, either side"),
    ]:
        size = zlib_cost(bits, level)
        print(
            f"zlib, {side} ({bits}-bit window, memLevel {level}): {size / 1024:.0f} KiB"
        )
    settings: dict[str, dict[str, Any]] = {
        "no compression": {"compression": None},
        "default (12-bit windows, memLevel 5)": {},
        "websockets 8.1 defaults (15-bit windows, memLevel 8)": {
            "extensions": [ServerPerMessageDeflateFactory()],
        },
    }
    for name, options in settings.items():
        size = await per_connection(options)
        print(f"{name}: {size / 1024:.0f} KiB per connection (both ends)")


if __name__ == "__main__":
    tracemalloc.start()
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
