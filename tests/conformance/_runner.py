"""Run one case against the anyws server or the anyws client.

The anyws side runs an echo: every message it receives goes back unchanged.
The crafted side plays the case's script over real TCP on 127.0.0.1 and
records what comes back (see :mod:`._wire`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

from anyws.client import connect
from anyws.exceptions import ConnectionClosed
from anyws.protocol import WebSocketCommonProtocol
from anyws.sansio.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from anyws.server import WebSocketServerProtocol, serve

from ._model import Case, DeflateSetup, Item
from ._wire import CraftedPeer

__all__ = ("Outcome", "run_case")


@dataclass
class Outcome:
    """What happened in one run of a case.

    Attributes:
        items: what the anyws peer sent, as the crafted peer judged it.
        local_close: the ``close_code`` anyws reported once closed.
        local_error: an exception that escaped the anyws side, if any.
    """

    items: list[Item]
    local_close: int | None = None
    local_error: BaseException | None = None


class _Local:
    """The anyws side's report, filled in by its task."""

    def __init__(self) -> None:
        self.close_code: int | None = None
        self.error: BaseException | None = None
        self.done = anyio.Event()


async def _echo(ws: WebSocketCommonProtocol) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # a closing code other than 1000/1001/1005: the case judges it
    await ws.wait_closed()


def _server_options(setup: DeflateSetup | None) -> dict[str, Any]:
    if setup is None:
        return {"compression": None}
    if setup.server == "plain":
        return {"compression": None, "extensions": [ServerPerMessageDeflateFactory()]}
    return {"compression": "deflate"}


def _client_options(setup: DeflateSetup | None) -> dict[str, Any]:
    if setup is None:
        return {"compression": None}
    offer = setup.client_offer
    if offer is None:
        return {"compression": "deflate"}
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=offer.server_no_context_takeover,
        client_no_context_takeover=offer.client_no_context_takeover,
        server_max_window_bits=offer.server_max_window_bits,
        client_max_window_bits=offer.client_max_window_bits,
    )
    return {"compression": None, "extensions": [factory]}


async def _play(peer: CraftedPeer, case: Case) -> None:
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(peer.read_loop)
        await peer.run(case.steps)


async def _against_server(case: Case) -> Outcome:
    local = _Local()

    async def handler(ws: WebSocketServerProtocol) -> None:
        try:
            await _echo(ws)
            local.close_code = ws.close_code
        except Exception as exc:
            local.error = exc
        finally:
            local.done.set()

    options = _server_options(case.deflate)
    async with serve(
        handler, "127.0.0.1", 0, ping_interval=None, max_size=case.max_size, **options
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            peer = CraftedPeer(stream, client=True)
            await peer.open_as_client(port, case.deflate)
            await _play(peer, case)
        await local.done.wait()
    return Outcome(peer.items, local.close_code, local.error)


async def _against_client(case: Case) -> Outcome:
    local = _Local()

    async def client(port: int) -> None:
        try:
            async with connect(
                f"ws://127.0.0.1:{port}/",
                ping_interval=None,
                max_size=case.max_size,
                **_client_options(case.deflate),
            ) as ws:
                await _echo(ws)
            local.close_code = ws.close_code
        except Exception as exc:
            local.error = exc
        finally:
            local.done.set()

    multi = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with multi, anyio.create_task_group() as task_group:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        task_group.start_soon(
            client, listener.extra(anyio.abc.SocketAttribute.local_port)
        )
        async with await listener.accept() as stream:
            peer = CraftedPeer(stream, client=False)
            await peer.open_as_server(case.deflate)
            if case.deflate is not None and case.deflate.client_refuses:
                await peer.read_loop()
            else:
                await _play(peer, case)
        # RFC 6455, 7.1.1: the crafted server closed TCP; the client ends.
        await local.done.wait()
    return Outcome(peer.items, local.close_code, local.error)


async def run_case(case: Case, role: str) -> Outcome:
    """Run ``case`` with the crafted peer as the client (``role="server"``:
    the anyws server is tested) or as the server (``role="client"``)."""
    if role == "server":
        return await _against_server(case)
    return await _against_client(case)
