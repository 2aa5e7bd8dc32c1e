"""A trio application: start the server in your own nursery.

``serve(...).run`` follows the ``nursery.start`` convention: ``await
nursery.start(...)`` returns the running :class:`anyws.WebSocketServer` once it
listens, and the server lives as long as the nursery (or until
``server.close()``)::

    python -m examples.trio_server --port 8765
"""

from __future__ import annotations

import argparse

import trio

import anyws

__all__ = ("main",)


async def echo(websocket: anyws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server next to other tasks of the application until cancelled."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(anyws.serve(echo, host, port).run)
        bound = server.sockets[0].getsockname()[1]
        print(f"trio echo server on ws://{host}:{bound}/", flush=True)
        task_status.started(bound)
        # The rest of the application goes here; the server runs meanwhile.
        # When it is time to stop: server.close() and the nursery ends.
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws in a trio nursery")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        trio.run(main, args.host, args.port)
    except KeyboardInterrupt:
        pass
