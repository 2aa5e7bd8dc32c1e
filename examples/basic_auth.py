"""Authentication: HTTP Basic auth on the opening handshake.

The server checks the ``Authorization`` header before the WebSocket opens and
answers ``401 Unauthorized`` otherwise. A client puts the credentials in the
URI (``ws://user:password@host/``) and anyws sends them::

    python -m examples.basic_auth --port 8765
    python -m anyws ws://alice:wonderland@127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import hmac

import anyio
import anyio.abc

import anyws

__all__ = ("USERS", "check_credentials", "greet", "hello", "main")

#: A real application would look users up in its own store.
USERS = {"alice": "wonderland", "bob": "builder"}


async def check_credentials(username: str, password: str) -> bool:
    """Accept the users of :data:`USERS`; compare in constant time."""
    expected = USERS.get(username)
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode(), password.encode())


async def greet(websocket: anyws.WebSocketServerProtocol) -> None:
    """Greet the authenticated user by name, then echo."""
    assert isinstance(websocket, anyws.BasicAuthWebSocketServerProtocol)
    await websocket.send(f"Hello, {websocket.username}!")
    async for message in websocket:
        await websocket.send(message)


async def main(
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve authenticated clients until cancelled; ``port=0`` picks a port."""
    protocol = anyws.basic_auth_protocol_factory(
        realm="anyws example", check_credentials=check_credentials
    )
    async with anyws.serve(greet, host, port, create_protocol=protocol) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"authenticating server on ws://{host}:{bound}/", flush=True)
        task_status.started(bound)
        await server.serve_forever()


async def hello(host: str, port: int, username: str, password: str) -> str:
    """Log in and return the greeting.

    Raises:
        anyws.InvalidStatusCode: with ``status_code`` 401 for bad credentials.
    """
    async with anyws.connect(f"ws://{username}:{password}@{host}:{port}/") as ws:
        return str(await ws.recv())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws Basic auth server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    try:
        anyio.run(main, args.host, args.port, backend=args.backend)
    except KeyboardInterrupt:
        pass
