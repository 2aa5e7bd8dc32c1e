"""Security properties (issue 7, item 6): constant-time Basic auth checks,
no credentials or cookies sent across origins on redirects. (``wss://``
verifying certificates by default is in ``test_faults``.)"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import anyio
import pytest

from anyws.auth import basic_auth_protocol_factory
from anyws.client import connect

from ..io_support import TIMEOUT, RawPeer, raw_server, server_handshake
from ._support import listening


async def test_basic_auth_compares_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The password check goes through ``hmac.compare_digest`` (wrong and
    right passwords alike)."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    factory = basic_auth_protocol_factory("realm", credentials=("user", "secret"))
    async with listening(create_protocol=factory) as port:
        with anyio.fail_after(TIMEOUT):
            async with connect(f"ws://user:secret@127.0.0.1:{port}/") as ws:
                await ws.send("in")
                assert await ws.recv() == "in"
            with pytest.raises(Exception, match="401"):
                async with connect(f"ws://user:wrong@127.0.0.1:{port}/"):
                    pass  # pragma: no cover - rejected
    assert len(calls) == 2


def redirecting_server(location: str, seen: list[dict[str, str]]) -> Any:
    async def handler(peer: RawPeer) -> None:
        _, headers, _ = await peer.read_http()
        seen.append(headers)
        await peer.send(
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )

    return raw_server(handler)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_redirect_drops_credentials_across_origins(host: str) -> None:
    """``Authorization`` (from the URI's credentials) and ``Cookie`` (from
    ``extra_headers``) reach the first server; a redirect to another origin
    (another port; another host and port) gets neither."""
    final: list[dict[str, str]] = []

    async def target(peer: RawPeer) -> None:
        final.append(await server_handshake(peer))
        await peer.read_to_eof()

    first: list[dict[str, str]] = []
    async with raw_server(target) as target_port:
        # Another port on the same host is another origin (RFC 6454).
        location = f"ws://{host}:{target_port}/next"
        async with redirecting_server(location, first) as port:
            with anyio.fail_after(TIMEOUT):
                async with connect(
                    f"ws://u:p@127.0.0.1:{port}/",
                    extra_headers={"Cookie": "session=1"},
                    compression=None,
                    close_timeout=0.5,
                ):
                    pass
    credentials = "Basic " + base64.b64encode(b"u:p").decode()
    assert first[0]["authorization"] == credentials
    assert first[0]["cookie"] == "session=1"
    assert "authorization" not in final[0]
    assert "cookie" not in final[0]
