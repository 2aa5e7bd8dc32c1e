"""Broadcast: push the same message to every connected client.

The server keeps the set of open connections (``server.websockets`` would do
too) and sends each message to all of them *concurrently*, in a task group,
so that one slow client does not hold up the others::

    python -m examples.broadcast --port 8765 --interval 1
    python -m anyws ws://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import anyio
import anyio.abc

import anyws

__all__ = ("Clients", "broadcast", "main")


async def broadcast(
    clients: Iterable[anyws.WebSocketCommonProtocol], message: str
) -> None:
    """Send ``message`` to every client at once; skip those that left."""

    async def send(websocket: anyws.WebSocketCommonProtocol) -> None:
        try:
            await websocket.send(message)
        except anyws.ConnectionClosed:
            pass  # it is leaving; its handler removes it

    async with anyio.create_task_group() as tg:
        for websocket in list(clients):
            tg.start_soon(send, websocket)


class Clients:
    """The connected clients; the handler only registers and waits."""

    def __init__(self) -> None:
        self.connected: set[anyws.WebSocketServerProtocol] = set()

    async def handler(self, websocket: anyws.WebSocketServerProtocol) -> None:
        self.connected.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            self.connected.discard(websocket)


async def main(
    host: str,
    port: int,
    interval: float = 1.0,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Every ``interval`` seconds, tell every client how many are connected."""
    clients = Clients()
    async with anyws.serve(clients.handler, host, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"broadcasting on ws://{host}:{bound}/", flush=True)
        task_status.started(bound)
        tick = 0
        while True:
            await anyio.sleep(interval)
            tick += 1
            await broadcast(
                clients.connected, f"tick {tick}: {len(clients.connected)} clients"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws broadcast server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    try:
        anyio.run(main, args.host, args.port, args.interval, backend=args.backend)
    except KeyboardInterrupt:
        pass
