"""An asyncio application: anyws under ``asyncio.run``, with a clean stop.

anyws runs on asyncio without any set-up: AnyIO detects the running loop. This
server stops cleanly on SIGTERM or SIGINT (closing every connection with 1001)::

    python -m examples.asyncio_server --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import anyws

__all__ = ("main",)


async def echo(websocket: anyws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    bound_port: asyncio.Future[int] | None = None,
) -> None:
    """Serve until ``stop`` is set (by default: on SIGTERM or SIGINT).

    Args:
        host: the address to listen on.
        port: the port, or 0 for a free one.
        stop: set it to shut the server down.
        bound_port: receives the port the server listens on.
    """
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    async with anyws.serve(echo, host, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"asyncio echo server on ws://{host}:{bound}/", flush=True)
        if bound_port is not None:
            bound_port.set_result(bound)
        await stop.wait()
    # Leaving the block closed every connection with 1001 and waited for
    # every handler to return.


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws under asyncio.run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
