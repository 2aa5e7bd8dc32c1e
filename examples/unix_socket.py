"""Unix sockets: serve and connect on a file system path instead of a port.

Handy behind a reverse proxy on the same machine (nginx's
``proxy_pass http://unix:/run/app.sock``)::

    python -m examples.unix_socket server /tmp/anyws.sock
    python -m examples.unix_socket client /tmp/anyws.sock hello
"""

from __future__ import annotations

import argparse

import anyio
import anyio.abc

import anyws

__all__ = ("echo_once", "main")


async def echo(websocket: anyws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(
    path: str,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on the Unix socket ``path`` until cancelled."""
    async with anyws.unix_serve(echo, path) as server:
        print(f"echo server on unix:{path}", flush=True)
        task_status.started()
        await server.serve_forever()


async def echo_once(path: str, message: str) -> anyws.Data:
    """Connect through the socket at ``path``, send, return the answer.

    The URI still matters: it gives the ``Host`` header and the path.
    """
    async with anyws.unix_connect(path, "ws://localhost/") as websocket:
        await websocket.send(message)
        return await websocket.recv()


def run() -> None:
    parser = argparse.ArgumentParser(description="anyws on a Unix socket")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("command", choices=("server", "client"))
    parser.add_argument("path")
    parser.add_argument("message", nargs="?", default="hello")
    args = parser.parse_args()
    if args.command == "server":
        try:
            anyio.run(main, args.path, backend=args.backend)
        except KeyboardInterrupt:
            pass
    else:
        print(anyio.run(echo_once, args.path, args.message, backend=args.backend))


if __name__ == "__main__":
    run()
