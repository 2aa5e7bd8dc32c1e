"""HTTP Basic auth on the server (API.md (j)), on asyncio and trio."""

from __future__ import annotations

import base64
from typing import Any

import anyio
import pytest

from anyws.auth import BasicAuthWebSocketServerProtocol, basic_auth_protocol_factory
from anyws.client import connect
from anyws.exceptions import InvalidStatusCode
from anyws.sansio.datastructures import Headers
from anyws.server import WebSocketServerProtocol, serve

from .io_support import TIMEOUT, RawPeer, upgrade_request


async def handler(ws: WebSocketServerProtocol) -> None:
    assert isinstance(ws, BasicAuthWebSocketServerProtocol)
    await ws.send(ws.username or "")


async def http_response(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    try:
        peer = RawPeer(stream, mask=True)
        await peer.send(request)
        return await peer.read_response()
    finally:
        await stream.aclose()


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    "credentials",
    [
        ("hello", "iloveyou"),
        [("hello", "iloveyou"), ("other", "x")],
        {("hello", "iloveyou")},
    ],
)
async def test_credentials_accepted(credentials: Any) -> None:
    factory = basic_auth_protocol_factory("realm", credentials=credentials)
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://hello:iloveyou@127.0.0.1:{port}/") as ws:
                assert await ws.recv() == "hello"


async def test_check_credentials_coroutine() -> None:
    calls = []

    async def check(username: str, password: str) -> bool:
        calls.append((username, password))
        return password == "pass:with:colons"

    factory = basic_auth_protocol_factory("realm", check_credentials=check)
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(
                f"ws://127.0.0.1:{port}/",
                extra_headers={"Authorization": basic("é:pass:with:colons")},
            ) as ws:
                assert await ws.recv() == "é"
    assert calls == [("é", "pass:with:colons")]


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        (None, b"Missing credentials\n"),
        ("Bearer token", b"Unsupported credentials\n"),
        ("Basic !!!", b"Unsupported credentials\n"),
        (basic("nocolon"), b"Unsupported credentials\n"),
        (basic("hello:wrong"), b"Invalid credentials\n"),
        (basic("nobody:iloveyou"), b"Invalid credentials\n"),
    ],
)
async def test_unauthorized(authorization: str | None, body: bytes) -> None:
    factory = basic_auth_protocol_factory(
        'my "realm"', credentials=("hello", "iloveyou")
    )
    extra = "" if authorization is None else f"Authorization: {authorization}\r\n"
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            status, headers, response_body = await http_response(
                port, upgrade_request(extra=extra)
            )
    assert status == 401
    assert response_body == body
    assert (
        headers["www-authenticate"] == 'Basic realm="my \\"realm\\"", charset="UTF-8"'
    )


async def test_scheme_is_case_insensitive() -> None:
    factory = basic_auth_protocol_factory("r", credentials=("a", "b"))
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            token = base64.b64encode(b"a:b").decode()
            async with connect(
                f"ws://127.0.0.1:{port}/",
                extra_headers={"Authorization": f"bAsIc {token}"},
            ) as ws:
                assert await ws.recv() == "a"


async def test_client_sees_401() -> None:
    factory = basic_auth_protocol_factory("r", credentials=("a", "b"))
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(InvalidStatusCode) as exc_info:
                async with connect(f"ws://a:wrong@127.0.0.1:{port}/"):
                    pass  # pragma: no cover
    assert exc_info.value.status_code == 401


async def test_parent_process_request_still_applies() -> None:
    async def process_request(path: str, headers: Headers) -> Any:
        return (404, [], b"nope\n") if path == "/missing" else None

    factory = basic_auth_protocol_factory("r", credentials=("a", "b"))
    with anyio.fail_after(TIMEOUT):
        async with serve(
            handler,
            "127.0.0.1",
            0,
            create_protocol=factory,
            process_request=process_request,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            status, _, body = await http_response(
                port,
                upgrade_request("/missing", extra=f"Authorization: {basic('a:b')}\r\n"),
            )
            assert (status, body) == (404, b"nope\n")
            # Without credentials, auth answers first.
            status, _, _ = await http_response(port, upgrade_request("/missing"))
            assert status == 401


async def test_custom_create_protocol() -> None:
    class Protocol(BasicAuthWebSocketServerProtocol):
        async def check_credentials(self, username: str, password: str) -> bool:
            return username == "override"

    factory = basic_auth_protocol_factory(
        "r", credentials=("a", "b"), create_protocol=Protocol
    )
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://override:x@127.0.0.1:{port}/") as ws:
                assert await ws.recv() == "override"


def test_factory_argument_errors() -> None:
    with pytest.raises(
        TypeError, match="provide either credentials or check_credentials"
    ):
        basic_auth_protocol_factory("r")
    with pytest.raises(
        TypeError, match="provide either credentials or check_credentials"
    ):
        basic_auth_protocol_factory(
            "r",
            credentials=("a", "b"),
            check_credentials=lambda u, p: None,  # type: ignore[arg-type,return-value]
        )
    for bad in [42, "ab", ("a",), ("a", 1), [("a", "b"), ("c",)], [42]]:
        with pytest.raises(TypeError, match="invalid credentials argument"):
            basic_auth_protocol_factory("r", credentials=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        basic_auth_protocol_factory("bad\x00realm", credentials=("a", "b"))


async def test_two_authorization_headers_are_unsupported() -> None:
    factory = basic_auth_protocol_factory("r", credentials=("a", "b"))
    extra = f"Authorization: {basic('a:b')}\r\nAuthorization: {basic('a:b')}\r\n"
    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0, create_protocol=factory) as server:
            port = server.sockets[0].getsockname()[1]
            status, _, body = await http_response(port, upgrade_request(extra=extra))
    assert (status, body) == (401, b"Unsupported credentials\n")
