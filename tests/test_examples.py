"""Every example in ``examples/`` runs here, on asyncio and on trio.

The server examples expose ``main(host, port, *, task_status)``: the tests start
them with ``task_group.start`` on port 0, talk to them with anyws clients (or
raw HTTP), and cancel them at the end.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme

import anyws
from examples import (
    asyncio_server,
    basic_auth,
    broadcast,
    demo,
    echo_client,
    echo_server,
    health_check,
    reconnect,
    tls,
    trio_server,
    unix_socket,
)

ROOT = Path(__file__).resolve().parent.parent

#: Generous: the tests assert that things happen, not how fast.
TIMEOUT = 20


@asynccontextmanager
async def running(main: Any, *args: Any) -> AsyncIterator[Any]:
    """Start a server example with ``task_group.start``; cancel it at the end."""
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            started = await tg.start(main, *args)
            yield started
            tg.cancel_scope.cancel()


async def http_get(port: int, path: str) -> bytes:
    """A plain HTTP/1.1 GET; the whole response, read until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        await stream.send(request.encode() + b"\r\n")
        response = b""
        try:
            while True:
                response += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return response


# -- echo --------------------------------------------------------------------------


async def test_echo_server_and_client() -> None:
    async with running(echo_server.main, "127.0.0.1", 0) as port:
        answers = await echo_client.main(f"ws://127.0.0.1:{port}/", ["hello", "wörld"])
    assert answers == ["hello", "wörld"]


async def test_echo_server_echoes_binary() -> None:
    async with running(echo_server.main, "127.0.0.1", 0) as port:
        async with anyws.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"


# -- the demo: a chat room ---------------------------------------------------------


async def test_demo_chat_room_broadcasts() -> None:
    async with running(demo.main, "127.0.0.1", 0) as port:
        uri = f"ws://127.0.0.1:{port}/chat"
        async with anyws.connect(uri) as alice:
            assert "joined (1 here)" in str(await alice.recv())
            async with anyws.connect(uri) as bob:
                assert "joined (2 here)" in str(await alice.recv())
                assert "joined (2 here)" in str(await bob.recv())
                await bob.send("hi all")
                for ws in (alice, bob):
                    assert str(await ws.recv()).endswith(": hi all")
            assert str(await alice.recv()).endswith(" left")


async def test_demo_serves_its_page() -> None:
    async with running(demo.main, "127.0.0.1", 0) as port:
        page = await http_get(port, "/?say=x")
        missing = await http_get(port, "/favicon.ico")
    assert page.startswith(b"HTTP/1.1 200 ")
    assert b"text/html" in page
    assert page.endswith(demo.PAGE)
    assert missing.startswith(b"HTTP/1.1 404 ")


def test_run_script_starts_the_demo_on_port_0() -> None:
    """``scripts/run.sh`` runs ``python -m examples.demo``: it starts, prints
    the address it bound first, serves, and stops cleanly on Ctrl-C."""
    assert 'python -m examples.demo "$@"' in (ROOT / "scripts" / "run.sh").read_text()
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.demo", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("anyws demo on http://127.0.0.1:"), first
        url = first.split()[3]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert port != 0

        async def visit() -> bytes:
            async with anyws.connect(f"ws://127.0.0.1:{port}/") as ws:
                joined = await ws.recv()
            assert "joined (1 here)" in str(joined)
            return await http_get(port, "/")

        assert anyio.run(visit).startswith(b"HTTP/1.1 200 ")
        process.send_signal(2)  # Ctrl-C
        _, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:  # pragma: no cover - only when a check failed
            process.kill()
            process.communicate()


# -- authentication ----------------------------------------------------------------


async def test_basic_auth_accepts_good_credentials() -> None:
    async with running(basic_auth.main, "127.0.0.1", 0) as port:
        greeting = await basic_auth.hello("127.0.0.1", port, "alice", "wonderland")
    assert greeting == "Hello, alice!"


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "guess"), ("mallory", "wonderland")]
)
async def test_basic_auth_rejects_bad_credentials(username: str, password: str) -> None:
    async with running(basic_auth.main, "127.0.0.1", 0) as port:
        with pytest.raises(anyws.InvalidStatusCode) as caught:
            await basic_auth.hello("127.0.0.1", port, username, password)
    assert caught.value.status_code == 401


# -- TLS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PEM files: a private CA, and a certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "ca": folder / "ca.pem",
        "cert": folder / "cert.pem",
        "key": folder / "key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    return {name: str(path) for name, path in files.items()}


async def test_tls_echo(certificates: dict[str, str]) -> None:
    args = ("127.0.0.1", 0, certificates["cert"], certificates["key"])
    async with running(tls.main, *args) as port:
        uri = f"wss://127.0.0.1:{port}/"
        assert await tls.echo_once(uri, "secret", certificates["ca"]) == "secret"
        # Without the private CA, the certificate is not trusted.
        with pytest.raises(ssl.SSLCertVerificationError):
            await tls.echo_once(uri, "secret")


# -- Unix sockets ------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
async def test_unix_socket_echo(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    async with running(unix_socket.main, path):
        assert await anyio.Path(path).is_socket()
        assert await unix_socket.echo_once(path, "over a file") == "over a file"


# -- process_request: health check -------------------------------------------------


async def test_health_check_answers_http_and_lets_websockets_through() -> None:
    async with running(health_check.main, "127.0.0.1", 0) as port:
        response = await http_get(port, "/healthz")
        async with anyws.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("still a WebSocket server")
            assert await ws.recv() == "still a WebSocket server"
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nOK\n")


# -- broadcast ---------------------------------------------------------------------


async def test_broadcast_reaches_every_client() -> None:
    async with running(broadcast.main, "127.0.0.1", 0, 0.02) as port:
        uri = f"ws://127.0.0.1:{port}/"
        async with anyws.connect(uri) as a, anyws.connect(uri) as b:
            async with anyws.connect(uri) as c:
                for ws in (a, b, c):
                    # Every client hears the ticks, until one counts all three.
                    while not str(await ws.recv()).endswith(": 3 clients"):
                        pass
            # c left: the others are told about two clients from now on.
            for ws in (a, b):
                while not str(await ws.recv()).endswith(": 2 clients"):
                    pass


async def test_broadcast_skips_closed_connections() -> None:
    async with running(echo_server.main, "127.0.0.1", 0) as port:
        async with anyws.connect(f"ws://127.0.0.1:{port}/") as open_ws:
            async with anyws.connect(f"ws://127.0.0.1:{port}/") as closed_ws:
                pass
            await broadcast.broadcast([closed_ws, open_ws], "news")
            assert await open_ws.recv() == "news"


# -- a trio application and an asyncio application ---------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_nursery_server() -> None:
    async with running(trio_server.main, "127.0.0.1", 0) as port:
        answers = await echo_client.main(f"ws://127.0.0.1:{port}/", ["from trio"])
    assert answers == ["from trio"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_server_stops_cleanly() -> None:
    stop = asyncio.Event()
    bound_port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        asyncio_server.main("127.0.0.1", 0, stop=stop, bound_port=bound_port)
    )
    try:
        port = await asyncio.wait_for(bound_port, TIMEOUT)
        async with anyws.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("from asyncio")
            assert await ws.recv() == "from asyncio"
            stop.set()
            with pytest.raises(anyws.ConnectionClosedOK) as caught:
                await ws.recv()
        assert caught.value.code == 1001
        await asyncio.wait_for(task, TIMEOUT)
    finally:
        task.cancel()


# -- a client that reconnects ------------------------------------------------------


def test_backoff_delays_double_up_to_the_maximum() -> None:
    assert reconnect.backoff_delays(0.5, 30) == [0.5, 1, 2, 4, 8, 16, 30]
    assert reconnect.backoff_delays(1, 1) == [1, 1]


async def test_reconnecting_client_retries_until_the_server_is_up() -> None:
    # A bound socket that does not listen yet: connecting is refused.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    retries: list[BaseException | None] = []
    first_retry = anyio.Event()
    messages: list[anyws.Data] = []
    got_three = anyio.Event()
    connections = 0

    def on_retry(error: BaseException | None, delay: float) -> None:
        assert delay < 1
        retries.append(error)
        first_retry.set()

    async def on_message(message: anyws.Data) -> None:
        messages.append(message)
        if len(messages) == 3:
            got_three.set()

    async def hello_and_goodbye(ws: anyws.WebSocketServerProtocol) -> None:
        nonlocal connections
        connections += 1
        await ws.send(f"connection {connections}")
        # Returning closes the connection (1000): the client comes back.

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: reconnect.main(
                    f"ws://127.0.0.1:{port}/",
                    on_message,
                    initial_delay=0.01,
                    max_delay=0.1,
                    on_retry=on_retry,
                )
            )
            await first_retry.wait()
            async with anyws.serve(hello_and_goodbye, sock=sock):
                await got_three.wait()
                tg.cancel_scope.cancel()
    assert messages == ["connection 1", "connection 2", "connection 3"]
    assert isinstance(retries[0], OSError)
    assert retries[-2:] == [None, None]
