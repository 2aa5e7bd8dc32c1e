"""The server: serve(), unix_serve(), WebSocketServer and the server side of
the opening handshake (API.md (b), (j), (l)), on asyncio and trio."""

from __future__ import annotations

import functools
import http
import logging
import socket
import ssl
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.streams.stapled
import pytest
import trustme

from anyws.client import connect, unix_connect
from anyws.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatusCode,
)
from anyws.sansio.datastructures import Headers
from anyws.sansio.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from anyws.server import (
    WebSocketServer,
    WebSocketServerProtocol,
    serve,
    unix_serve,
)

from .io_support import (
    CLOSE,
    TEXT,
    TIMEOUT,
    RawPeer,
    accept_for,
    close_payload,
    raw_client,
    reset,
    upgrade_request,
)


async def echo(ws: WebSocketServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


def port_of(server: WebSocketServer) -> int:
    return int(server.sockets[0].getsockname()[1])


def uri_of(server: WebSocketServer, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port_of(server)}{path}"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def http_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read the HTTP response and check the server closes."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    peer = RawPeer(stream, mask=True)
    try:
        await peer.send(request)
        status, headers, body = await peer.read_response()
        assert await peer.expect_eof() == b""
        return status, headers, body
    finally:
        await stream.aclose()


# -- basics --------------------------------------------------------------------


async def test_echo_server_with_handler_taking_path() -> None:
    paths = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        paths.append(path)
        await echo(ws)

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server, "/chat?room=1")) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
        assert paths == ["/chat?room=1"]


async def test_handler_with_functools_partial() -> None:
    async def handler(ws: WebSocketServerProtocol, greeting: str) -> None:
        await ws.send(greeting)

    with anyio.fail_after(TIMEOUT):
        async with serve(
            functools.partial(handler, greeting="hey"), "127.0.0.1", 0
        ) as s:
            async with connect(uri_of(s)) as ws:
                assert await ws.recv() == "hey"


async def test_handler_return_closes_1000() -> None:
    async def handler(ws: WebSocketServerProtocol) -> None:
        await ws.send("bye")

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                assert await ws.recv() == "bye"
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
                assert ws.close_code == 1000


async def test_handler_exception_fails_1011_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(ws: WebSocketServerProtocol) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.ERROR, logger="anyws.server")
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with raw_client(port_of(server)) as peer:
                assert await peer.read_frame() == (
                    True,
                    CLOSE,
                    close_payload(1011),
                    False,
                )
                assert await peer.expect_eof() == b""
    [record] = [r for r in caplog.records if r.name == "anyws.server"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Error in connection handler"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_handler_letting_connection_closed_escape_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(ws: WebSocketServerProtocol) -> None:
        await ws.recv()

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with raw_client(port_of(server)) as peer:
                await peer.aclose()
    # Leaving serve() waited for the handler.
    assert any(
        r.getMessage() == "Error in connection handler"
        and isinstance(r.exc_info and r.exc_info[1], ConnectionClosedError)
        for r in caplog.records
    )


async def test_server_attributes_and_sockets() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            assert server.is_serving()
            assert server.sockets
            assert server.sockets[0].getsockname()[0] == "127.0.0.1"
            assert server.websockets == set()
        assert not server.is_serving()
        assert not server.sockets


async def test_host_list_and_ipv6() -> None:
    if not socket.has_ipv6:  # pragma: no cover - depends on the machine
        pytest.skip("no IPv6")
    with anyio.fail_after(TIMEOUT):
        try:
            server_cm = serve(echo, ["127.0.0.1", "::1"], 0)
            async with server_cm as server:
                families = {sock.family for sock in server.sockets}
                assert families == {socket.AF_INET, socket.AF_INET6}
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    uri = (
                        f"ws://[{host}]:{port}/"
                        if ":" in host
                        else f"ws://{host}:{port}/"
                    )
                    async with connect(uri) as ws:
                        await ws.send("x")
                        assert await ws.recv() == "x"
        except OSError:  # pragma: no cover - no ::1 on this machine
            pytest.skip("cannot bind ::1")


async def test_host_none_listens_everywhere() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, None, 0) as server:
            assert server.sockets
            port = port_of(server)
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"


async def test_sock_backlog_and_reuse_port() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, sock=sock, backlog=5) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
        if hasattr(socket, "SO_REUSEPORT"):
            async with serve(echo, "127.0.0.1", 0, reuse_port=True) as server:
                assert server.sockets


async def test_unix_serve(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    with anyio.fail_after(TIMEOUT):
        async with unix_serve(echo, path) as server:
            assert server.sockets
            async with unix_connect(path) as ws:
                await ws.send("over unix")
                assert await ws.recv() == "over unix"
                assert ws.remote_address == path


async def test_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
            port = port_of(server)
            async with connect(f"wss://127.0.0.1:{port}/", ssl=client_context) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"
                with pytest.warns(DeprecationWarning):
                    assert ws.secure is True
            async with connect(
                f"wss://localhost:{port}/", ssl=client_context, host="127.0.0.1"
            ) as ws:
                await ws.send("by name")
                assert await ws.recv() == "by name"
            # A plain TCP client cannot open a TLS server: no crash, no leak.
            async with raw_client(port, handshake=False) as peer:
                await peer.send(upgrade_request())
                await peer.expect_eof()


async def test_start_in_task_group_and_serve_forever() -> None:
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            server = await task_group.start(serve(echo, "127.0.0.1", 0).run)
            assert isinstance(server, WebSocketServer) and server.is_serving()
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
            server.close()
            server.close()  # idempotent
            await server.wait_closed()
        assert not server.is_serving()


async def test_serve_forever_cancelled_shuts_down() -> None:
    with anyio.fail_after(TIMEOUT):
        with anyio.move_on_after(0.05):
            async with serve(echo, "127.0.0.1", 0) as server:
                await server.serve_forever()
        assert not server.is_serving()


async def test_wait_closed_before_close_waits() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            with anyio.move_on_after(0.05) as scope:
                await server.wait_closed()
            assert scope.cancelled_caught
            assert server.is_serving()  # cancelling the wait changed nothing


# -- shutdown ------------------------------------------------------------------


async def test_shutdown_closes_1001_and_does_not_cancel_handlers() -> None:
    finished: list[str] = []
    started = anyio.Event()

    async def handler(ws: WebSocketServerProtocol) -> None:
        started.set()
        try:
            await ws.recv()
        except ConnectionClosedOK as exc:
            assert exc.code == 1001
            # Not cancelled: the handler can still await after the close.
            await anyio.lowlevel.checkpoint()
            finished.append("clean")

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await started.wait()
                assert len(server.websockets) == 1
                server.close()
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
                assert ws.close_code == 1001
                await server.wait_closed()
                assert finished == ["clean"]
                assert server.websockets == set()
                assert not server.sockets


async def test_handshake_during_shutdown_gets_503() -> None:
    release = anyio.Event()
    entered = anyio.Event()

    async def process_request(path: str, headers: Headers) -> None:
        entered.set()
        await release.wait()

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
            port = port_of(s)
            async with anyio.create_task_group() as task_group:
                result: list[Any] = []

                async def client() -> None:
                    result.append(await http_exchange(port, upgrade_request()))

                task_group.start_soon(client)
                await entered.wait()
                s.close()
                release.set()
            status, headers, body = result[0]
            assert status == 503
            assert body == b"Server is shutting down.\n"


async def test_shutdown_answers_503_to_a_client_that_sent_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            async with raw_client(port_of(server), handshake=False) as peer:
                await anyio.wait_all_tasks_blocked()  # the server waits for data
                assert server.websockets
                server.close()
                status, _, body = await peer.read_response()
                assert status == 503 and body == b"Server is shutting down.\n"


async def test_cancelling_the_server_scope_ends_handlers() -> None:
    cancelled = anyio.Event()

    async def handler(ws: WebSocketServerProtocol) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            server = await task_group.start(
                serve(handler, "127.0.0.1", 0, close_timeout=1).run
            )
            async with connect(uri_of(server)) as ws:
                task_group.cancel_scope.cancel()
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
        assert cancelled.is_set()


# -- opening handshake statuses --------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (upgrade_request(method="POST"), 400),
        (upgrade_request(version="HTTP/1.0"), 400),
        (upgrade_request(key="not base64!"), 400),
        (upgrade_request(key="c2hvcnQ="), 400),
        (
            upgrade_request().replace(
                b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"
            ),
            400,
        ),
        (upgrade_request().replace(b"Upgrade: websocket\r\n", b""), 426),
        (upgrade_request().replace(b"Connection: Upgrade", b"Connection: close"), 426),
        (b"garbage\r\n\r\n", 400),
        (upgrade_request(extra="Origin: a\r\nOrigin: b\r\n"), 400),
        (upgrade_request(extra="Sec-WebSocket-Extensions: ;;\r\n"), 400),
    ],
)
async def test_invalid_requests(
    request_bytes: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            code, headers, body = await http_exchange(port_of(server), request_bytes)
    assert code == status
    assert headers["connection"] == "close"
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == str(len(body))
    assert "date" in headers and headers["server"].startswith("Python/")
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    if status == 426:
        assert headers["upgrade"] == "websocket"
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


async def test_origins() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, origins=["https://ok", None]) as server:
            port = port_of(server)
            status, _, body = await http_exchange(
                port, upgrade_request(extra="Origin: https://evil\r\n")
            )
            assert status == 403
            assert b"https://evil" in body
            async with connect(uri_of(server), origin="https://ok") as ws:
                pass
            async with connect(uri_of(server)) as ws:  # no Origin header
                pass
        async with serve(echo, "127.0.0.1", 0, origins=["https://ok"]) as server:
            status, _, _ = await http_exchange(port_of(server), upgrade_request())
            assert status == 403

    received = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        received.append(ws.origin)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server), origin="https://x") as ws:
            await ws.wait_closed()
    assert received == ["https://x"]


def test_empty_origin_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="use None instead of '' in origins"):
        serve(echo, origins=[""])


async def test_process_request_raises_gives_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def process_request(path: str, headers: Headers) -> None:
        raise ZeroDivisionError

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
            status, _, body = await http_exchange(port_of(s), upgrade_request())
    assert status == 500
    assert b"server log" in body
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage() == "Error in opening handshake"
    assert record.levelno == logging.WARNING


@pytest.mark.parametrize(
    "response",
    [
        (http.HTTPStatus.OK, [("X-Health", "ok")], b"healthy\n"),
        (200, {"X-Health": "ok"}, b"healthy\n"),
        (http.HTTPStatus.OK, Headers(X_Health="ok"), b"healthy\n"),
    ],
)
async def test_process_request_custom_response(response: Any) -> None:
    calls = []

    async def process_request(path: str, headers: Headers) -> Any:
        calls.append(path)
        return response if path == "/health" else None

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
            status, headers, body = await http_exchange(
                port_of(s), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert status == 200 and body == b"healthy\n"
            assert headers.get("x-health", headers.get("x_health")) == "ok"
            async with connect(uri_of(s, "/ws")) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert calls == ["/health", "/ws"]


async def test_process_request_plain_function_is_deprecated() -> None:
    def process_request(path: str, headers: Headers) -> Any:
        return http.HTTPStatus.FORBIDDEN, [], b"no\n"

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
            with pytest.warns(DeprecationWarning, match="declare process_request"):
                status, _, body = await http_exchange(port_of(s), upgrade_request())
    assert (status, body) == (403, b"no\n")


async def test_process_request_overridden_in_a_subclass() -> None:
    class Protocol(WebSocketServerProtocol):
        async def process_request(self, path: str, request_headers: Headers) -> Any:
            if path == "/teapot":
                return 418, [], b""
            return await super().process_request(path, request_headers)

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, create_protocol=Protocol) as s:
            status, _, body = await http_exchange(
                port_of(s), upgrade_request("/teapot")
            )
            assert (status, body) == (418, b"")
            async with connect(uri_of(s)) as ws:
                assert isinstance(ws, object)


async def test_early_client_disconnect_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            stream = await anyio.connect_tcp("127.0.0.1", port_of(server))
            await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            await stream.send_eof()
            peer = RawPeer(stream, mask=True)
            assert await peer.expect_eof() == b""  # no response
            await stream.aclose()
    # Leaving serve() waited for the connection to end.
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


async def test_open_timeout_closes_silent_clients() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, open_timeout=0.1) as server:
            async with raw_client(port_of(server), handshake=False) as peer:
                assert await peer.expect_eof() == b""


async def test_handshake_response_headers() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            async with raw_client(port_of(server), handshake=False) as peer:
                key = "dGhlIHNhbXBsZSBub25jZQ=="
                await peer.send(upgrade_request(key=key))
                first, headers, pairs = await peer.read_http()
                assert first == "HTTP/1.1 101 Switching Protocols"
                assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                assert accept_for(key) == headers["sec-websocket-accept"]
                names = [name for name, _ in pairs]
                assert names == [
                    "Upgrade",
                    "Connection",
                    "Sec-WebSocket-Accept",
                    "Date",
                    "Server",
                ]


# -- extra headers, subprotocols, extensions ---------------------------------------


@pytest.mark.parametrize(
    "extra_headers",
    [
        Headers([("X-A", "1"), ("X-A", "2")]),
        {"X-A": "1"},
        [("X-A", "1"), ("Server", "mine")],
        lambda path, headers: [("X-A", path)],
        lambda path, headers: None,
    ],
)
async def test_extra_headers_forms(extra_headers: Any) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, extra_headers=extra_headers) as s:
            async with connect(uri_of(s, "/p")) as ws:
                values = ws.response_headers.get_all("X-A")
                servers = ws.response_headers.get_all("Server")
    if callable(extra_headers):
        assert values == ([] if extra_headers("/p", None) is None else ["/p"])
    elif isinstance(extra_headers, Headers):
        assert values == ["1", "2"]
    else:
        assert values == ["1"]
    assert len(servers) == 1
    if isinstance(extra_headers, list):
        assert servers == ["mine"]


async def test_subprotocol_negotiation() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, subprotocols=["chat", "superchat"]) as s:
            async with connect(uri_of(s), subprotocols=["superchat", "chat"]) as ws:
                assert ws.subprotocol == "superchat"  # tie: client order
            async with connect(uri_of(s), subprotocols=["other"]) as ws:
                assert ws.subprotocol is None
            async with connect(uri_of(s)) as ws:
                assert ws.subprotocol is None

        def select(client: Any, server: Any) -> str:
            return "picked"

        async with serve(
            echo, "127.0.0.1", 0, subprotocols=["chat"], select_subprotocol=select
        ) as s:
            async with connect(uri_of(s), subprotocols=["picked"]) as ws:
                assert ws.subprotocol == "picked"


async def test_compression_on_and_off() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as s:
            async with connect(uri_of(s)) as ws:
                assert [e.name for e in ws.extensions] == ["permessage-deflate"]
                await ws.send("z" * 10000)
                assert await ws.recv() == "z" * 10000
            async with connect(uri_of(s), compression=None) as ws:
                assert ws.extensions == []
        async with serve(echo, "127.0.0.1", 0, compression=None) as s:
            async with connect(uri_of(s)) as ws:
                assert ws.extensions == []
                assert "Sec-WebSocket-Extensions" not in ws.response_headers
        factory = ServerPerMessageDeflateFactory()
        async with serve(echo, "127.0.0.1", 0, extensions=[factory]) as s:
            async with connect(uri_of(s)) as ws:
                assert repr(ws.extensions[0]).startswith("PerMessageDeflate(")


# -- arguments -------------------------------------------------------------------


async def test_await_serve_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="async with anyws.serve"):
        await serve(echo, "127.0.0.1", 0)


def test_argument_checks() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        serve(echo, bogus=1)
    with pytest.raises(ValueError, match="unsupported compression: gzip"):
        serve(echo, compression="gzip")
    with pytest.raises(ValueError):
        serve(echo, max_queue=0)
    with pytest.raises(TypeError):
        serve(echo, subprotocols="chat")
    with pytest.raises(TypeError):
        serve(echo, ssl=True)  # type: ignore[arg-type]
    with socket.socket() as sock, pytest.raises(ValueError):
        serve(echo, "127.0.0.1", sock=sock)
    with pytest.warns(DeprecationWarning, match="rename timeout to close_timeout"):
        serve(echo, timeout=5)
    with pytest.warns(DeprecationWarning, match="rename klass to create_protocol"):
        serve(echo, klass=WebSocketServerProtocol)
    with pytest.warns(DeprecationWarning, match="remove loop argument"):
        serve(echo, loop=object())


async def test_create_protocol_and_klass() -> None:
    created: list[str] = []

    class Protocol(WebSocketServerProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            created.append("protocol")
            assert kwargs["close_timeout"] == 3
            super().__init__(*args, **kwargs)

    with anyio.fail_after(TIMEOUT):
        async with serve(
            echo, "127.0.0.1", 0, create_protocol=Protocol, close_timeout=3
        ) as s:
            async with connect(uri_of(s)):
                pass
        with pytest.warns(DeprecationWarning, match="rename klass"):
            server_cm = serve(echo, "127.0.0.1", 0, klass=Protocol, close_timeout=3)
        async with server_cm as s:
            async with connect(uri_of(s)):
                pass
    assert created == ["protocol", "protocol"]


async def test_create_protocol_must_build_a_server_protocol(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def factory(*args: Any, **kwargs: Any) -> object:
        return object()

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, create_protocol=factory) as s:  # type: ignore[arg-type]
            async with raw_client(port_of(s), handshake=False) as peer:
                await peer.expect_eof()
    assert any("Unexpected error" in r.getMessage() for r in caplog.records)


async def test_server_sends_and_receives_text_frames_from_raw_client() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, compression=None) as server:
            async with raw_client(port_of(server)) as peer:
                await peer.send_frame(TEXT, b"raw")
                assert await peer.read_frame() == (True, TEXT, b"raw", False)
                await peer.send_frame(CLOSE, close_payload(1000))
                assert await peer.read_frame() == (
                    True,
                    CLOSE,
                    close_payload(1000),
                    False,
                )
                assert await peer.expect_eof() == b""


async def test_many_concurrent_clients() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:

            async def one(i: int) -> None:
                async with connect(uri_of(server)) as ws:
                    await ws.send(str(i))
                    assert await ws.recv() == str(i)

            async with anyio.create_task_group() as task_group:
                for i in range(50):
                    task_group.start_soon(one, i)


async def test_invalid_status_from_raw_connect_helper() -> None:
    # The client view of a 403 (see test_client for the full matrix).
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, origins=["https://ok"]) as server:
            with pytest.raises(InvalidStatusCode) as exc_info:
                async with connect(uri_of(server)):
                    pass  # pragma: no cover
            assert exc_info.value.status_code == 403


# -- rarer paths -------------------------------------------------------------------


async def test_close_before_start() -> None:
    server = WebSocketServer()
    server.close()
    with anyio.fail_after(TIMEOUT):
        await server.wait_closed()
    assert not server.sockets


async def test_serve_object_is_not_reentrant() -> None:
    with anyio.fail_after(TIMEOUT):
        server_cm = serve(echo, "127.0.0.1", 0)
        async with server_cm:
            with pytest.raises(RuntimeError):
                async with server_cm:
                    pass  # pragma: no cover


async def test_accept_errors_are_logged_and_serving_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    create_tcp_listener = anyio.create_tcp_listener

    class FlakyListener(anyio.abc.SocketListener):
        def __init__(self, inner: anyio.abc.SocketListener) -> None:
            self.inner = inner
            self.failed = False

        @property
        def _raw_socket(self) -> socket.socket:
            return self.inner.extra(anyio.abc.SocketAttribute.raw_socket)

        async def accept(self) -> anyio.abc.SocketStream:
            if not self.failed:
                self.failed = True
                raise OSError(24, "Too many open files")
            return await self.inner.accept()

        async def aclose(self) -> None:
            await self.inner.aclose()

    async def flaky(**kwargs: Any) -> Any:
        multi = await create_tcp_listener(**kwargs)
        return anyio.streams.stapled.MultiListener(
            [
                FlakyListener(cast(anyio.abc.SocketListener, one))
                for one in multi.listeners
            ]
        )

    monkeypatch.setattr(anyio, "create_tcp_listener", flaky)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert "Error while accepting a connection" in caplog.messages


async def test_listen_failure_closes_the_listeners_already_open() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with anyio.fail_after(TIMEOUT), pytest.raises(OSError):
        # The second bind to the same address fails.
        async with serve(echo, ["127.0.0.1", "127.0.0.1"], port):
            pass  # pragma: no cover


async def test_shutdown_during_the_101_response_closes_1001() -> None:
    holder: list[WebSocketServer] = []

    def extra_headers(path: str, headers: Headers) -> None:
        holder[0].close()  # after the 503 check, before the connection opens

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, extra_headers=extra_headers) as server:
            holder.append(server)
            async with connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
                assert ws.close_code == 1001


async def test_cancelling_the_server_during_a_handshake_closes_tcp() -> None:
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            server = await task_group.start(serve(echo, "127.0.0.1", 0).run)
            async with raw_client(port_of(server), handshake=False) as peer:
                await peer.send(b"GET / HTTP/1.1\r\n")  # an incomplete request
                await anyio.wait_all_tasks_blocked()
                assert server.websockets
                task_group.cancel_scope.cancel()
                assert await peer.expect_eof() == b""


async def test_create_protocol_may_replace_the_handler() -> None:
    async def other(ws: WebSocketServerProtocol, path: str) -> None:
        await ws.send(f"other {path}")

    def factory(
        ws_handler: Any, ws_server: Any, **kwargs: Any
    ) -> WebSocketServerProtocol:
        return WebSocketServerProtocol(other, ws_server, **kwargs)

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, create_protocol=factory) as server:
            async with connect(uri_of(server, "/p")) as ws:
                assert await ws.recv() == "other /p"


async def test_handler_raising_a_base_exception_propagates() -> None:
    class Stop(BaseException):
        pass

    async def handler(ws: WebSocketServerProtocol) -> None:
        raise Stop

    with anyio.fail_after(TIMEOUT), pytest.raises(Stop):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.wait_closed()
            await anyio.sleep_forever()


async def test_open_timeout_during_tls_handshake(
    server_context: ssl.SSLContext,
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(
            echo, "127.0.0.1", 0, ssl=server_context, open_timeout=0.1
        ) as server:
            async with raw_client(port_of(server), handshake=False) as peer:
                assert await peer.expect_eof() == b""


async def test_plain_process_request_method_is_deprecated() -> None:
    class Protocol(WebSocketServerProtocol):
        def process_request(self, path: str, request_headers: Headers) -> Any:
            return http.HTTPStatus.NO_CONTENT, [], b""

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, create_protocol=Protocol) as server:
            with pytest.warns(DeprecationWarning, match="declare process_request"):
                status, _, _ = await http_exchange(port_of(server), upgrade_request())
    assert status == 204


async def test_extra_headers_error_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    def extra_headers(path: str, headers: Headers) -> None:
        raise KeyError("bug")

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, extra_headers=extra_headers) as server:
            status, _, _ = await http_exchange(port_of(server), upgrade_request())
    assert status == 500
    assert any(
        r.levelno == logging.WARNING and r.getMessage() == "Error in opening handshake"
        for r in caplog.records
    )


async def test_client_reset_during_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            stream = await anyio.connect_tcp("127.0.0.1", port_of(server))
            await stream.send(b"GET / HTTP/1.1\r\n")
            await anyio.wait_all_tasks_blocked()
            assert server.websockets
            await reset(stream)
    # Leaving serve() waited for the connection to end.
    assert "Connection error in opening handshake" in caplog.messages
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


async def test_unix_serve_with_sock(tmp_path: Path) -> None:
    path = str(tmp_path / "bound.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    with anyio.fail_after(TIMEOUT):
        async with unix_serve(echo, sock=sock) as server:
            assert server.sockets
            async with unix_connect(path) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"


async def test_family() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "localhost", 0, family=socket.AF_INET) as server:
            assert {sock.family for sock in server.sockets} == {socket.AF_INET}
