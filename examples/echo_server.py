"""Echo server: send every message back to the client that sent it.

Run it, then talk to it with ``python -m examples.echo_client`` or with the
interactive client ``python -m anyws ws://127.0.0.1:8765/``::

    python -m examples.echo_server --port 8765
"""

from __future__ import annotations

import argparse

import anyio
import anyio.abc

import anyws

__all__ = ("echo", "main")


async def echo(websocket: anyws.WebSocketServerProtocol) -> None:
    """The connection handler: one call per client, it returns when they leave."""
    async for message in websocket:
        await websocket.send(message)


async def main(
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled (Ctrl-C); ``port=0`` picks a free port.

    Args:
        host: the address to listen on.
        port: the port to listen on, or 0 for any free one.
        task_status: reports the bound port to ``task_group.start``.
    """
    async with anyws.serve(echo, host, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"echo server on ws://{host}:{bound}/", flush=True)
        task_status.started(bound)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    try:
        anyio.run(main, args.host, args.port, backend=args.backend)
    except KeyboardInterrupt:
        pass
