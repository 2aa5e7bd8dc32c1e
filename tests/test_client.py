"""The client: connect(), unix_connect() and the client side of the opening
handshake (API.md (c), (j)), on asyncio and trio."""

from __future__ import annotations

import http
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from anyws._asyncio_stream import NativeStream
from anyws._compat import BaseExceptionGroup
from anyws.client import Connect, WebSocketClientProtocol, connect, unix_connect
from anyws.exceptions import (
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatusCode,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    SecurityError,
)
from anyws.sansio.datastructures import Headers
from anyws.server import WebSocketServer, WebSocketServerProtocol, serve, unix_serve

from .io_support import (
    TIMEOUT,
    RawPeer,
    native_stream,
    raw_server,
    reset,
    server_handshake,
)


async def echo(ws: WebSocketServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


def port_of(server: WebSocketServer) -> int:
    return int(server.sockets[0].getsockname()[1])


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


@asynccontextmanager
async def recording_server(**kwargs: Any) -> AsyncIterator[tuple[int, list[Headers]]]:
    """An echo server that records the request headers of each connection."""
    seen: list[Headers] = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        seen.append(ws.request_headers)
        await echo(ws)

    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        yield port_of(server), seen


def raw_answer(response: bytes) -> Any:
    """A raw server handler that reads the request and answers ``response``."""

    async def handler(peer: RawPeer) -> None:
        await peer.read_http()
        await peer.send(response)
        await peer.stream.send_eof()
        await peer.read_to_eof()

    return handler


# -- arguments -------------------------------------------------------------------


async def test_await_connect_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="async with anyws.connect"):
        await connect("ws://localhost/")


def test_argument_checks() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        connect("ws://localhost/", bogus=1)
    with pytest.raises(InvalidURI):
        connect("http://localhost/")
    with pytest.raises(ValueError, match="ws:// URI"):
        connect("ws://localhost/", ssl=ssl.create_default_context())
    with pytest.raises(ValueError, match="unsupported compression: br"):
        connect("ws://localhost/", compression="br")
    with pytest.raises(ValueError):
        connect("ws://localhost/", max_queue=0)
    with pytest.raises(TypeError):
        connect("ws://localhost/", subprotocols="chat")
    with socket.socket() as sock, pytest.raises(ValueError):
        connect("ws://localhost/", sock=sock, host="x")
    with pytest.warns(DeprecationWarning, match="rename timeout to close_timeout"):
        connect("ws://localhost/", timeout=5)
    with pytest.warns(DeprecationWarning, match="rename klass to create_protocol"):
        connect("ws://localhost/", klass=WebSocketClientProtocol)
    with pytest.warns(DeprecationWarning, match="remove loop argument"):
        connect("ws://localhost/", loop=object())
    assert Connect.MAX_REDIRECTS_ALLOWED == 10
    assert connect is Connect


# -- connecting ------------------------------------------------------------------


async def test_request_headers_origin_extra_headers_user_agent() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, seen):
            async with connect(
                f"ws://127.0.0.1:{port}/path?q",
                origin="https://example.com",
                extra_headers={"X-Extra": "1"},
                subprotocols=None,
            ) as ws:
                assert ws.path == "/path?q"
                assert ws.origin == "https://example.com"
            async with connect(
                f"ws://127.0.0.1:{port}/", extra_headers=[("User-Agent", "mine")]
            ):
                pass
    first, second = seen
    assert first["Host"] == f"127.0.0.1:{port}"
    assert first["Origin"] == "https://example.com"
    assert first["X-Extra"] == "1"
    assert first["User-Agent"].startswith("Python/")
    assert (
        first["Sec-WebSocket-Extensions"]
        == "permessage-deflate; client_max_window_bits"
    )
    assert second.get_all("User-Agent") == ["mine"]


async def test_credentials_in_uri_become_basic_auth() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, seen):
            async with connect(f"ws://hello:iloveyou@127.0.0.1:{port}/"):
                pass
    assert seen[0]["Authorization"] == "Basic aGVsbG86aWxvdmV5b3U="


async def test_host_and_port_override_only_the_destination() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, seen):
            async with connect(
                "ws://example.invalid/", host="127.0.0.1", port=port
            ) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert seen[0]["Host"] == "example.invalid"


async def test_sock_and_local_addr() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, seen):
            sock = socket.create_connection(("127.0.0.1", port))
            async with connect("ws://localhost/", sock=sock) as ws:
                await ws.send("via sock")
                assert await ws.recv() == "via sock"
            async with connect(
                f"ws://127.0.0.1:{port}/", local_addr=("127.0.0.1", 0)
            ) as ws:
                assert ws.local_address[0] == "127.0.0.1"


async def test_ip_addresses_are_connected_natively_on_asyncio(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On anyws's asyncio stream, a connection to an IP address is made by
    the event loop, straight onto the stream; host names, a local address
    and the other streams keep AnyIO's connect_tcp."""
    native = native_stream(anyio_backend)
    calls: list[object] = []
    connect_tcp = anyio.connect_tcp

    async def counting_connect_tcp(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return await connect_tcp(*args, **kwargs)

    monkeypatch.setattr(anyio, "connect_tcp", counting_connect_tcp)
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("by address")
                assert await ws.recv() == "by address"
                assert isinstance(ws._stream, NativeStream) is native
            assert calls == ([] if native else ["127.0.0.1"])
            async with connect(f"ws://localhost:{port}/") as ws:
                await ws.send("by name")
                assert await ws.recv() == "by name"
            async with connect(
                f"ws://127.0.0.1:{port}/", local_addr=("127.0.0.1", 0)
            ) as ws:
                assert ws.local_address[0] == "127.0.0.1"
    assert calls[-2:] == ["localhost", "127.0.0.1"]


async def test_a_refused_connection_reads_the_same_everywhere() -> None:
    """AnyIO's report of a failed connection, whichever way it was made."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with anyio.fail_after(TIMEOUT):
        with pytest.raises(OSError, match="All connection attempts failed") as info:
            async with connect(f"ws://127.0.0.1:{port}/"):
                pass  # pragma: no cover - the connection fails
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_unix_connect(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with anyio.fail_after(TIMEOUT):
        async with unix_serve(echo, path) as server:
            async with unix_connect(path, "ws://example/chat") as ws:
                assert ws.path == "/chat"
                await ws.send("x")
                assert await ws.recv() == "x"
            assert server.is_serving()
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            async with connect("ws://localhost/", sock=sock) as ws:
                await ws.send("y")
                assert await ws.recv() == "y"


async def test_wss(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
            port = port_of(server)
            async with connect(f"wss://127.0.0.1:{port}/", ssl=client_context) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
            # server_hostname for the certificate check, host for TCP.
            async with connect(
                "wss://example.invalid/",
                ssl=client_context,
                host="127.0.0.1",
                port=port,
                server_hostname="localhost",
            ) as ws:
                await ws.send("y")
                assert await ws.recv() == "y"
            # The default context verifies certificates: trustme's CA is
            # unknown to it.
            with pytest.raises(Exception) as exc_info:
                async with connect(f"wss://127.0.0.1:{port}/"):
                    pass  # pragma: no cover
            assert not isinstance(exc_info.value, BaseExceptionGroup)


async def test_connection_refused() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with anyio.fail_after(TIMEOUT), pytest.raises(OSError):
        async with connect(f"ws://127.0.0.1:{port}/"):
            pass  # pragma: no cover


# -- handshake failures ------------------------------------------------------------


async def test_invalid_status_code() -> None:
    async def process_request(path: str, headers: Headers) -> Any:
        return http.HTTPStatus.FORBIDDEN, [], b"no"

    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
            with pytest.raises(InvalidStatusCode) as exc_info:
                async with connect(f"ws://127.0.0.1:{port_of(s)}/"):
                    pass  # pragma: no cover
    assert exc_info.value.status_code == 403
    assert str(exc_info.value) == "server rejected WebSocket connection: HTTP 403"


@pytest.mark.parametrize(
    ("response", "exc_type"),
    [
        (b"garbage\r\n\r\n", InvalidMessage),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", InvalidUpgrade),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
            InvalidHeaderValue,
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n",
            InvalidHeader,
        ),
        (b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", InvalidHeader),
        (b"", InvalidMessage),
    ],
)
async def test_invalid_responses(response: bytes, exc_type: type[Exception]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_server(raw_answer(response)) as port:
            with pytest.raises(exc_type) as exc_info:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass  # pragma: no cover
    if exc_type is InvalidMessage:
        assert str(exc_info.value) == "did not receive a valid HTTP response"
        assert exc_info.value.__cause__ is not None
    if response.startswith(b"HTTP/1.1 302"):
        assert str(exc_info.value) == "missing Location header"


async def test_negotiation_failures() -> None:
    async def handler(peer: RawPeer) -> None:
        await server_handshake(peer, "Sec-WebSocket-Protocol: nope\r\n")
        await peer.read_to_eof()

    async def extension_handler(peer: RawPeer) -> None:
        await server_handshake(peer, "Sec-WebSocket-Extensions: x-unknown\r\n")
        await peer.read_to_eof()

    with anyio.fail_after(TIMEOUT):
        async with raw_server(handler) as port:
            with pytest.raises(NegotiationError, match="unsupported subprotocol"):
                async with connect(f"ws://127.0.0.1:{port}/", subprotocols=["chat"]):
                    pass  # pragma: no cover
            with pytest.raises(InvalidHandshake, match="no subprotocols supported"):
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass  # pragma: no cover
        async with raw_server(extension_handler) as port:
            with pytest.raises(NegotiationError):
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass  # pragma: no cover


async def test_open_timeout_with_a_silent_server() -> None:
    closed = anyio.Event()

    async def silent(peer: RawPeer) -> None:
        await peer.read_to_eof()  # the client closes its side on timeout
        closed.set()

    with anyio.fail_after(TIMEOUT):
        async with raw_server(silent) as port:
            with pytest.raises(TimeoutError):
                async with connect(f"ws://127.0.0.1:{port}/", open_timeout=0.1):
                    pass  # pragma: no cover
            await closed.wait()


async def test_cancelled_handshake_closes_tcp() -> None:
    closed = anyio.Event()

    async def silent(peer: RawPeer) -> None:
        await peer.read_to_eof()
        closed.set()

    with anyio.fail_after(TIMEOUT):
        async with raw_server(silent) as port:
            with anyio.move_on_after(0.1) as scope:
                async with connect(f"ws://127.0.0.1:{port}/", open_timeout=None):
                    pass  # pragma: no cover
            assert scope.cancelled_caught
            await closed.wait()


async def test_exception_in_block_is_not_wrapped() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            with pytest.raises(KeyError) as exc_info:
                async with connect(f"ws://127.0.0.1:{port}/") as ws:
                    raise KeyError("mine")
            assert exc_info.value.args == ("mine",)
            assert ws.closed and ws.close_code == 1000


async def test_exception_group_from_block_is_not_unwrapped() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            group = BaseExceptionGroup("mine", [ValueError(), KeyError()])
            with pytest.raises(BaseExceptionGroup) as exc_info:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    raise group
            # trio may rebuild the group; its content is what matters.
            assert exc_info.value.message == "mine"
            assert [type(e) for e in exc_info.value.exceptions] == [
                ValueError,
                KeyError,
            ]


async def test_leaving_the_block_closes_1000() -> None:
    codes = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        await ws.wait_closed()
        codes.append(ws.close_code)

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                assert ws.open
            assert ws.closed
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
    assert codes == [1000]


async def test_connect_object_is_not_reentrant() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            connection = connect(f"ws://127.0.0.1:{port}/")
            async with connection:
                with pytest.raises(RuntimeError):
                    async with connection:
                        pass  # pragma: no cover


async def test_create_protocol_must_build_a_client_protocol() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            with pytest.raises(TypeError, match="WebSocketClientProtocol"):
                async with connect(
                    f"ws://127.0.0.1:{port}/", create_protocol=lambda **kw: object()
                ):
                    pass  # pragma: no cover


async def test_create_protocol_subclass() -> None:
    class Protocol(WebSocketClientProtocol):
        pass

    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            async with connect(
                f"ws://127.0.0.1:{port}/", create_protocol=Protocol
            ) as ws:
                assert type(ws) is Protocol
            with pytest.warns(DeprecationWarning):
                connection = connect(f"ws://127.0.0.1:{port}/", klass=Protocol)
            async with connection as ws:
                assert type(ws) is Protocol


# -- redirects -------------------------------------------------------------------


@asynccontextmanager
async def redirect_server(
    location: Any, status: int = 302
) -> AsyncIterator[tuple[int, list[tuple[str, Headers]]]]:
    """A server that redirects ``/redirect...`` paths to ``location(port,
    path)`` and echoes on other paths; records each request."""
    seen: list[tuple[str, Headers]] = []
    port = 0

    async def process_request(path: str, headers: Headers) -> Any:
        seen.append((path, headers))
        if "redirect" in path:
            return status, [("Location", location(port, path))], b""
        return None

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
        port = port_of(s)
        yield port, seen


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_absolute(status: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with redirect_server(
            lambda port, path: f"ws://127.0.0.1:{port}/target", status
        ) as (port, seen):
            async with connect(f"ws://127.0.0.1:{port}/redirect") as ws:
                assert ws.path == "/target"
                await ws.send("x")
                assert await ws.recv() == "x"
    assert [path for path, _ in seen] == ["/redirect", "/target"]


async def test_redirect_relative() -> None:
    with anyio.fail_after(TIMEOUT):
        async with redirect_server(lambda port, path: "target?a=1") as (port, seen):
            async with connect(f"ws://127.0.0.1:{port}/dir/redirect") as ws:
                assert ws.path == "/dir/target?a=1"
    assert [path for path, _ in seen] == ["/dir/redirect", "/dir/target?a=1"]


async def test_too_many_redirects() -> None:
    with anyio.fail_after(TIMEOUT):
        async with redirect_server(lambda port, path: path + "x") as (port, seen):
            with pytest.raises(SecurityError, match="too many redirects"):
                async with connect(f"ws://127.0.0.1:{port}/redirect"):
                    pass  # pragma: no cover
    assert len(seen) == 10


async def test_nine_redirects_are_followed() -> None:
    def location(port: int, path: str) -> str:
        return path + "x" if len(path) < len("/redirect") + 8 else "/done"

    with anyio.fail_after(TIMEOUT):
        async with redirect_server(location) as (port, seen):
            async with connect(f"ws://127.0.0.1:{port}/redirect") as ws:
                assert ws.path == "/done"
    assert len(seen) == 10


async def test_redirect_keeps_credentials_on_the_same_origin() -> None:
    with anyio.fail_after(TIMEOUT):
        async with redirect_server(lambda port, path: "/target") as (port, seen):
            async with connect(
                f"ws://user:pass@127.0.0.1:{port}/redirect",
                extra_headers={"Cookie": "c=1"},
            ):
                pass
    for _, headers in seen:
        assert headers["Authorization"].startswith("Basic ")
        assert headers["Cookie"] == "c=1"


async def test_redirect_drops_credentials_across_origins() -> None:
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (target_port, target_seen):
            async with redirect_server(
                lambda port, path: f"ws://127.0.0.1:{target_port}/"
            ) as (port, seen):
                async with connect(
                    f"ws://127.0.0.1:{port}/redirect",
                    extra_headers=Headers(
                        [
                            ("Authorization", "Bearer x"),
                            ("Cookie", "c"),
                            ("X-Keep", "1"),
                        ]
                    ),
                ):
                    pass
    assert seen[0][1]["Authorization"] == "Bearer x"
    [headers] = target_seen
    assert "Authorization" not in headers and "Cookie" not in headers
    assert headers["X-Keep"] == "1"


async def test_redirect_from_wss_to_ws_is_refused(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def process_request(path: str, headers: Headers) -> Any:
        return 302, [("Location", "ws://127.0.0.1/")], b""

    with anyio.fail_after(TIMEOUT):
        async with serve(
            echo, "127.0.0.1", 0, ssl=server_context, process_request=process_request
        ) as s:
            with pytest.raises(SecurityError, match="redirect from WSS to WS"):
                async with connect(
                    f"wss://127.0.0.1:{port_of(s)}/", ssl=client_context
                ):
                    pass  # pragma: no cover


async def test_redirect_from_ws_to_wss_is_followed(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The new TLS connection uses a default context; make it trust the CA.
    monkeypatch.setattr(ssl, "create_default_context", lambda: client_context)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, ssl=server_context) as tls_server:
            tls_port = port_of(tls_server)
            async with redirect_server(
                lambda port, path: f"wss://localhost:{tls_port}/secure"
            ) as (port, _):
                async with connect(f"ws://127.0.0.1:{port}/redirect") as ws:
                    assert ws.path == "/secure"
                    await ws.send("x")
                    assert await ws.recv() == "x"


async def test_redirect_with_sock_is_refused() -> None:
    with anyio.fail_after(TIMEOUT):
        async with redirect_server(lambda port, path: "/target") as (port, _):
            sock = socket.create_connection(("127.0.0.1", port))
            with pytest.raises(InvalidHandshake, match="sock"):
                async with connect("ws://127.0.0.1/redirect", sock=sock):
                    pass  # pragma: no cover


async def test_redirect_to_http_is_invalid() -> None:
    with anyio.fail_after(TIMEOUT):
        async with redirect_server(lambda port, path: "http://127.0.0.1/") as (port, _):
            with pytest.raises(InvalidURI):
                async with connect(f"ws://127.0.0.1:{port}/redirect"):
                    pass  # pragma: no cover


async def test_client_logs_handshake_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="anyws.client")
    with anyio.fail_after(TIMEOUT):
        async with recording_server() as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/p"):
                pass
    messages = [r.getMessage() for r in caplog.records if r.name == "anyws.client"]
    assert messages[0] == "client > GET /p HTTP/1.1"
    assert "client < HTTP/1.1 101 Switching Protocols" in messages


async def test_server_reset_during_the_response() -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_http()
        await reset(peer.stream)

    with anyio.fail_after(TIMEOUT):
        async with raw_server(handler) as port:
            with pytest.raises(InvalidMessage) as exc_info:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass  # pragma: no cover
    assert str(exc_info.value) == "did not receive a valid HTTP response"
    assert exc_info.value.__cause__ is not None


async def test_redirect_with_two_locations() -> None:
    response = (
        b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    with anyio.fail_after(TIMEOUT):
        async with raw_server(raw_answer(response)) as port:
            with pytest.raises(InvalidHeader) as exc_info:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass  # pragma: no cover
    assert exc_info.value.name == "Location"


async def test_ssl_true_means_a_default_verifying_context(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contexts: list[ssl.SSLContext] = []

    def create_default_context() -> ssl.SSLContext:
        contexts.append(client_context)
        return client_context

    monkeypatch.setattr(ssl, "create_default_context", create_default_context)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
            async with connect(f"wss://localhost:{port_of(server)}/", ssl=True) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert contexts == [client_context]


@pytest.mark.parametrize("hang_up", ["close", "garbage"])
async def test_tls_handshake_failure_is_an_os_error(hang_up: str) -> None:
    """A wss:// client facing a peer that is not TLS gets an OSError, not AnyIO's."""

    async def not_tls(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()  # the ClientHello
            if hang_up == "garbage":
                await stream.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with anyio.fail_after(TIMEOUT):
        async with (
            await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(listener.serve, not_tls)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            with pytest.raises(OSError):
                async with connect(f"wss://127.0.0.1:{port}/", open_timeout=None):
                    pass  # pragma: no cover - the handshake fails
            tg.cancel_scope.cancel()
