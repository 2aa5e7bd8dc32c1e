"""TLS: a ``wss://`` server and a client that trusts its certificate.

Give the server a certificate chain and its private key (PEM files), and the
client the certificate authority to trust::

    python -m examples.tls server --certfile cert.pem --keyfile key.pem --port 8765
    python -m examples.tls client --cafile ca.pem wss://localhost:8765/ hello

In production you would rather terminate TLS in a reverse proxy (see the
nginx how-to guide); this is for when the Python process faces the network.
"""

from __future__ import annotations

import argparse
import ssl

import anyio
import anyio.abc

import anyws

__all__ = ("client_context", "echo_once", "main", "server_context")


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server-side TLS context with a certificate and its key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A client-side TLS context; ``cafile`` adds a private authority."""
    return ssl.create_default_context(cafile=cafile)


async def echo(websocket: anyws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(
    host: str,
    port: int,
    certfile: str,
    keyfile: str | None = None,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``wss://`` until cancelled; ``port=0`` picks a free port."""
    context = server_context(certfile, keyfile)
    async with anyws.serve(echo, host, port, ssl=context) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"TLS echo server on wss://{host}:{bound}/", flush=True)
        task_status.started(bound)
        await server.serve_forever()


async def echo_once(uri: str, message: str, cafile: str | None = None) -> anyws.Data:
    """Connect over TLS, send ``message``, return the answer."""
    async with anyws.connect(uri, ssl=client_context(cafile)) as websocket:
        await websocket.send(message)
        return await websocket.recv()


def run() -> None:
    parser = argparse.ArgumentParser(description="anyws over TLS")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8765)
    server.add_argument("--certfile", required=True)
    server.add_argument("--keyfile")
    client = commands.add_parser("client")
    client.add_argument("--cafile")
    client.add_argument("uri")
    client.add_argument("message")
    args = parser.parse_args()
    if args.command == "server":
        try:
            anyio.run(
                main,
                args.host,
                args.port,
                args.certfile,
                args.keyfile,
                backend=args.backend,
            )
        except KeyboardInterrupt:
            pass
    else:
        answer = anyio.run(
            echo_once, args.uri, args.message, args.cafile, backend=args.backend
        )
        print(answer)


if __name__ == "__main__":
    run()
