"""A health check: answer plain HTTP on ``/healthz`` with ``process_request``.

Load balancers and orchestrators probe a URL with a plain GET. The
``process_request`` hook sees every request before the WebSocket handshake;
returning ``(status, headers, body)`` answers it over HTTP and closes the
connection, returning ``None`` lets the handshake go on::

    python -m examples.health_check --port 8765
    curl -i http://127.0.0.1:8765/healthz
"""

from __future__ import annotations

import argparse
import http

import anyio
import anyio.abc

import anyws

__all__ = ("health_check", "main")


async def health_check(
    path: str, request_headers: anyws.Headers
) -> tuple[http.HTTPStatus, list[tuple[str, str]], bytes] | None:
    """``200 OK`` on ``/healthz``; every other path goes on to the handshake."""
    if path == "/healthz":
        return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"OK\n"
    return None


async def echo(websocket: anyws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``port=0`` picks a free port."""
    async with anyws.serve(echo, host, port, process_request=health_check) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"health check on http://{host}:{bound}/healthz", flush=True)
        task_status.started(bound)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws server with a health check")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    try:
        anyio.run(main, args.host, args.port, backend=args.backend)
    except KeyboardInterrupt:
        pass
