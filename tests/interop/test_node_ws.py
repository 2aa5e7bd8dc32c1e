"""Interoperability with Node's ``ws`` 8, as client and as server, both backends.

The Node side is ``tests/interop/node/peer.js``: it echoes every message it
receives, reports what it sees as JSON lines (sizes and SHA-256 digests, not
whole payloads) and takes commands on stdin. Each test waits on those lines,
never on sleeps. ``ws`` follows RFC 6455 and RFC 7692 closely and is written
by people outside this project, so every difference found here is a finding.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import anyws
from anyws.sansio.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from tests.interop._peers import NodePeer, find_node_peer

Role = Literal["anyws-server", "anyws-client"]

ROLES: tuple[Role, ...] = ("anyws-server", "anyws-client")

#: Generous: a loaded two-core CI machine, coverage on, two runtimes.
TIME_LIMIT = 60

#: Frame-length boundaries of RFC 6455 section 5.2 (7-bit, 16-bit, 64-bit
#: lengths), and 1 MiB, which is also anyws's default ``max_size``.
SIZES = (0, 1, 125, 126, 127, 65535, 65536, 2**20)

#: Characters of every UTF-8 length, 1 to 4 bytes.
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"
    "éèàçüßøåñ ΑΒΓΔαβγδ АБВГабвг€中文字日本語한국어😀🎉🚀𝄞🐍"
)


def make_text(size: int, rng: random.Random) -> str:
    """Random text of exactly ``size`` UTF-8 bytes, with multi-byte characters."""
    # Each character takes at least one byte, so ``size`` characters are
    # enough; cut on a character boundary and pad with ASCII.
    encoded = "".join(rng.choices(ALPHABET, k=size)).encode()[:size]
    text = encoded.decode("utf-8", "ignore")
    return text + "x" * (size - len(text.encode()))


def make_binary(size: int, rng: random.Random) -> bytes:
    """Random (incompressible) bytes."""
    return rng.randbytes(size)


def digest(message: str | bytes) -> str:
    data = message.encode() if isinstance(message, str) else message
    return hashlib.sha256(data).hexdigest()


class NodeProcess:
    """The running Node peer: commands on stdin, events from stdout."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)
        #: Pings ws received (keepalive from anyws) while waiting for events.
        self.pings: list[str] = []

    async def command(self, cmd: str, **fields: Any) -> None:
        line = json.dumps({"cmd": cmd, **fields}) + "\n"
        await self._stdin.send(line.encode())

    async def expect(self, name: str) -> dict[str, Any]:
        """Return the next event, which must be ``name``.

        Keepalive pings from anyws may come at any time; they are recorded
        and skipped unless a ping is what the test waits for.
        """
        while True:
            try:
                line = await self._stdout.receive_until(b"\n", 1 << 20)
            except anyio.IncompleteRead:
                pytest.fail(f"the node peer exited while a {name!r} event was due")
            event: dict[str, Any] = json.loads(line)
            if event["event"] == name:
                return event
            if event["event"] == "ping":
                self.pings.append(str(event["data"]))
                continue
            pytest.fail(f"node peer: expected {name!r}, got {event}")

    async def stop(self) -> int:
        """End of stdin stops the peer; return its exit status."""
        await self._stdin.aclose()
        with anyio.move_on_after(10):
            return await self.process.wait()
        self.process.kill()
        await self.process.wait()
        pytest.fail("the node peer did not exit when its stdin was closed")


@asynccontextmanager
async def run_node(peer: NodePeer, *args: str) -> AsyncIterator[NodeProcess]:
    """Start ``node peer.js args``; stop it (kill it on error) at the end."""
    # stderr is inherited: pytest captures it and shows it on failure.
    process = await anyio.open_process(
        [peer.node, str(peer.script), *args], stderr=None
    )
    node = NodeProcess(process)
    try:
        yield node
        assert await node.stop() == 0, "the node peer failed"
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


@dataclass
class Pair:
    """A connected pair: ``ws`` is the anyws side, ``node`` the ws side."""

    ws: anyws.WebSocketCommonProtocol
    node: NodeProcess
    #: The ``open`` event of the peer: path, headers it received, protocol,
    #: extensions.
    opened: dict[str, Any]


def _node_flags(
    deflate: bool | dict[str, Any], protocols: Sequence[str], headers: Sequence[str]
) -> list[str]:
    """``--deflate`` for ws's defaults, ``--deflate-options`` for given ones."""
    if isinstance(deflate, dict):
        flags = ["--deflate-options", json.dumps(deflate)]
    else:
        flags = ["--deflate"] if deflate else []
    if protocols:
        flags += ["--protocols", ",".join(protocols)]
    for header in headers:
        flags += ["--header", header]
    return flags


@asynccontextmanager
async def connected(
    peer: NodePeer,
    role: Role,
    *,
    deflate: bool = True,
    node_deflate: bool | dict[str, Any] | None = None,
    path: str = "/",
    node_protocols: Sequence[str] = (),
    node_headers: Sequence[str] = (),
    **anyws_kwargs: Any,
) -> AsyncIterator[Pair]:
    """Connect anyws to a ws peer in the given role."""
    flags = _node_flags(
        deflate if node_deflate is None else node_deflate, node_protocols, node_headers
    )
    compression = "deflate" if deflate else None
    if role == "anyws-server":
        send, receive = anyio.create_memory_object_stream[
            anyws.WebSocketServerProtocol
        ](1)

        async def handler(ws: anyws.WebSocketServerProtocol) -> None:
            async with send:
                await send.send(ws)
            await ws.wait_closed()

        async with anyws.serve(
            handler, "127.0.0.1", 0, compression=compression, **anyws_kwargs
        ) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}{path}"
            async with run_node(peer, "client", uri, *flags) as node, receive:
                ws = await receive.receive()
                yield Pair(ws, node, await node.expect("open"))
    else:
        async with run_node(peer, "server", "--port", "0", *flags) as node:
            port = (await node.expect("listening"))["port"]
            uri = f"ws://127.0.0.1:{port}{path}"
            async with anyws.connect(
                uri, compression=compression, **anyws_kwargs
            ) as client:
                yield Pair(client, node, await node.expect("open"))


@pytest.fixture(scope="module")
def node_peer() -> NodePeer:
    return find_node_peer()


def joined(fragments: list[str] | list[bytes]) -> str | bytes:
    texts = [part for part in fragments if isinstance(part, str)]
    if len(texts) == len(fragments):
        return "".join(texts)
    return b"".join(part for part in fragments if isinstance(part, bytes))


async def echo(pair: Pair, message: str | bytes | list[str] | list[bytes]) -> None:
    """anyws sends ``message``; ws must see it whole and send it back.

    A list is sent as one fragmented message, one frame per item.
    """
    await pair.ws.send(message)
    whole = joined(message) if isinstance(message, list) else message
    seen = await pair.node.expect("message")
    assert (seen["binary"], seen["size"], seen["sha256"]) == (
        isinstance(whole, bytes),
        len(whole.encode() if isinstance(whole, str) else whole),
        digest(whole),
    )
    # Compare the echo without letting pytest print megabytes on failure.
    back = await pair.ws.recv()
    same = type(back) is type(whole) and back == whole
    assert same, f"the echo of a {type(whole).__name__} of {len(whole)} differs"


async def receive_from_node(pair: Pair, **command: Any) -> None:
    """ws sends a generated message; anyws must receive exactly that."""
    await pair.node.command("send", **command)
    sent = await pair.node.expect("sent")
    message = await pair.ws.recv()
    assert isinstance(message, bytes) == sent["binary"]
    data = message.encode() if isinstance(message, str) else message
    assert (len(data), digest(data)) == (sent["size"], sent["sha256"])


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
@pytest.mark.parametrize("role", ROLES)
async def test_echo_every_size(node_peer: NodePeer, role: Role, deflate: bool) -> None:
    """Text and binary of 0 B to 1 MiB, both ways, random and compressible."""
    rng = random.Random(f"{role}-{deflate}")
    # Incompressible data grows when deflated: ws sends 1 MiB of random bytes
    # as a frame of about 1.05 MB, and anyws checks the length on the wire
    # against max_size before inflating (API.md (i), as 8.1 does), so the
    # compressed runs need headroom; the plain runs stay at the 1 MiB default.
    max_size = 2**21 if deflate else 2**20
    with anyio.fail_after(TIME_LIMIT):
        async with connected(
            node_peer, role, deflate=deflate, max_size=max_size
        ) as pair:
            assert bool(pair.ws.extensions) is deflate
            for size in SIZES:
                await echo(pair, make_text(size, rng))
                await echo(pair, make_binary(size, rng))
            await echo(pair, ("anyws+ws " * (2**20 // 9 + 1))[: 2**20])
            await echo(pair, bytes(2**20))
            for size in SIZES:
                for binary in (False, True):
                    await receive_from_node(pair, binary=binary, size=size)
            for binary in (False, True):
                await receive_from_node(pair, binary=binary, size=2**20, kind="repeat")


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
@pytest.mark.parametrize("role", ROLES)
async def test_fragmented_messages(
    node_peer: NodePeer, role: Role, deflate: bool
) -> None:
    """anyws sends iterables as fragments; ws sends with ``fin: false``."""
    rng = random.Random(f"fragments-{role}-{deflate}")
    # Headroom for compressed random data, see test_echo_every_size: the
    # wire length of each fragment is checked against what is left of
    # max_size.
    max_size = 2**21 if deflate else 2**20
    with anyio.fail_after(TIME_LIMIT):
        async with connected(
            node_peer, role, deflate=deflate, max_size=max_size
        ) as pair:
            await echo(pair, ["ca", "fé", "", "😀" * 1000, make_text(70_000, rng)])
            await echo(pair, [b"", b"x" * 70_000, make_binary(300_000, rng), b"!"])
            await echo(pair, [make_text(1000, rng) for _ in range(100)])
            # ws splits text on code point boundaries; some fragments of the
            # tiny message are empty, the last one included.
            await receive_from_node(pair, binary=False, size=2, fragments=4)
            await receive_from_node(pair, binary=False, size=200_000, fragments=5)
            await receive_from_node(pair, binary=True, size=2**20, fragments=7)
            await receive_from_node(
                pair, binary=True, size=500_000, fragments=50, kind="repeat"
            )


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
async def test_16_mib_message(node_peer: NodePeer, deflate: bool) -> None:
    """One 16 MiB binary message each way (plain: exactly at max_size)."""
    rng = random.Random("16 MiB")
    max_size = 2**25 if deflate else 2**24
    with anyio.fail_after(TIME_LIMIT):
        async with connected(
            node_peer, "anyws-client", deflate=deflate, max_size=max_size
        ) as pair:
            await echo(pair, make_binary(2**24, rng))
            await receive_from_node(pair, binary=True, size=2**24)


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
@pytest.mark.parametrize("role", ROLES)
async def test_max_size_exceeded(
    node_peer: NodePeer, role: Role, deflate: bool
) -> None:
    """One byte over max_size: ws is told 1009, anyws records 1006."""
    with anyio.fail_after(TIME_LIMIT):
        async with connected(node_peer, role, deflate=deflate) as pair:
            await receive_from_node(pair, binary=True, size=2**20, kind="repeat")
            await pair.node.command("send", binary=True, size=2**20 + 1, kind="repeat")
            await pair.node.expect("sent")
            closed = await pair.node.expect("close")
            assert (closed["code"], closed["reason"]) == (1009, "")
            # DECISIONS.md item 17: the local code stays 1006 after a failure.
            await expect_closed(pair, anyws.ConnectionClosedError, 1006, "")
            error = await closed_error(pair)
            assert error.sent is not None and error.sent.code == 1009
            assert isinstance(error.__cause__, anyws.PayloadTooBig)


# What each side agrees on: (anyws compression, ws perMessageDeflate) ->
# (extension header the ws side sent or received, anyws PerMessageDeflate
# (remote_no_context_takeover, local_no_context_takeover, remote bits,
# local bits) or None).
NEGOTIATION: dict[tuple[Role, bool, bool], tuple[str | None, Any]] = {
    # anyws server defaults (DECISIONS.md): 12 bits both ways when the client
    # offers client_max_window_bits, which ws does by default.
    ("anyws-server", True, True): (
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        (False, False, 12, 12),
    ),
    # ws as a server answers a valueless client_max_window_bits offer with
    # plain "permessage-deflate": 15 bits both ways.
    ("anyws-client", True, True): ("permessage-deflate", (False, False, 15, 15)),
    ("anyws-server", True, False): (None, None),
    ("anyws-server", False, True): (None, None),
    ("anyws-client", True, False): (None, None),
    ("anyws-client", False, True): (None, None),
}


@pytest.mark.parametrize(
    ("role", "anyws_deflate", "node_deflate"),
    list(NEGOTIATION),
    ids=[
        f"{r}-anyws{'+' if a else '-'}-ws{'+' if n else '-'}" for r, a, n in NEGOTIATION
    ],
)
async def test_permessage_deflate_negotiation(
    node_peer: NodePeer, role: Role, anyws_deflate: bool, node_deflate: bool
) -> None:
    """The agreed parameters, seen from both sides, and that they work."""
    header, params = NEGOTIATION[role, anyws_deflate, node_deflate]
    with anyio.fail_after(TIME_LIMIT):
        async with connected(
            node_peer, role, deflate=anyws_deflate, node_deflate=node_deflate
        ) as pair:
            assert pair.opened["extensions_header"] == header
            assert pair.opened["extensions"] == (
                "" if header is None else "permessage-deflate"
            )
            if params is None:
                assert pair.ws.extensions == []
            else:
                [extension] = pair.ws.extensions
                assert isinstance(extension, PerMessageDeflate)
                assert (
                    extension.remote_no_context_takeover,
                    extension.local_no_context_takeover,
                    extension.remote_max_window_bits,
                    extension.local_max_window_bits,
                ) == params
            # Context takeover: the same compressible message several times.
            for _ in range(3):
                await echo(pair, "compress me " * 5000)
                await receive_from_node(pair, binary=True, size=100_000, kind="repeat")


def header_params(header: str) -> set[str]:
    """The parameters of a one-item extension header, in any order."""
    name, *params = (part.strip() for part in header.split(";"))
    assert name == "permessage-deflate"
    return set(params)


# id -> (role, ws perMessageDeflate options, anyws factory or None for the
# default, anyws PerMessageDeflate (remote_no_context_takeover,
# local_no_context_takeover, remote bits, local bits), parameters in the
# answer).
DEFLATE_PARAMETERS: dict[str, tuple[Role, dict[str, Any], Any, Any, set[str]]] = {
    "ws-client-no-context-takeover": (
        "anyws-server",
        {"serverNoContextTakeover": True, "clientNoContextTakeover": True},
        None,
        (True, True, 12, 12),
        {
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=12",
            "client_max_window_bits=12",
        },
    ),
    "ws-client-small-windows": (
        "anyws-server",
        {"serverMaxWindowBits": 10, "clientMaxWindowBits": 9},
        None,
        (False, False, 9, 10),
        {"server_max_window_bits=10", "client_max_window_bits=9"},
    ),
    # Like Firefox: no client_max_window_bits in the offer (DECISIONS.md).
    "ws-client-no-client-bits": (
        "anyws-server",
        {"clientMaxWindowBits": False},
        None,
        (False, False, 15, 12),
        {"server_max_window_bits=12"},
    ),
    "ws-client-8-bit-windows": (
        "anyws-server",
        {"serverMaxWindowBits": 8, "clientMaxWindowBits": 8},
        None,
        (False, False, 8, 8),
        {"server_max_window_bits=8", "client_max_window_bits=8"},
    ),
    "anyws-server-8.1-defaults": (
        "anyws-server",
        {},
        ServerPerMessageDeflateFactory(),
        (False, False, 15, 15),
        set(),
    ),
    "anyws-server-imposes-everything": (
        "anyws-server",
        {},
        ServerPerMessageDeflateFactory(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=11,
            client_max_window_bits=10,
        ),
        (True, True, 10, 11),
        {
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=11",
            "client_max_window_bits=10",
        },
    ),
    "ws-server-no-context-takeover": (
        "anyws-client",
        {"serverNoContextTakeover": True, "clientNoContextTakeover": True},
        None,
        (True, True, 15, 15),
        {"server_no_context_takeover", "client_no_context_takeover"},
    ),
    "ws-server-small-windows": (
        "anyws-client",
        {"serverMaxWindowBits": 10, "clientMaxWindowBits": 11},
        None,
        (False, False, 10, 11),
        {"server_max_window_bits=10", "client_max_window_bits=11"},
    ),
    "ws-server-8-bit-windows": (
        "anyws-client",
        {"serverMaxWindowBits": 8, "clientMaxWindowBits": 8},
        None,
        (False, False, 8, 8),
        {"server_max_window_bits=8", "client_max_window_bits=8"},
    ),
    "anyws-client-asks-everything": (
        "anyws-client",
        {},
        ClientPerMessageDeflateFactory(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=9,
        ),
        (True, True, 10, 9),
        {
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=10",
            "client_max_window_bits=9",
        },
    ),
}


@pytest.mark.parametrize("case", list(DEFLATE_PARAMETERS))
async def test_permessage_deflate_parameters(node_peer: NodePeer, case: str) -> None:
    """Context takeover and window sizes asked by either side, then used."""
    role, node_options, factory, params, answer = DEFLATE_PARAMETERS[case]
    rng = random.Random(case)
    # A random 300-byte unit repeated: back-references reach 300 bytes, past
    # a 256-byte (8-bit) window, so a compressor using a larger window than
    # agreed shows up as an inflate error on the other side.
    unit = make_binary(300, rng)
    with anyio.fail_after(TIME_LIMIT):
        async with connected(
            node_peer,
            role,
            node_deflate=node_options,
            extensions=None if factory is None else [factory],
        ) as pair:
            [extension] = pair.ws.extensions
            assert isinstance(extension, PerMessageDeflate)
            assert (
                extension.remote_no_context_takeover,
                extension.local_no_context_takeover,
                extension.remote_max_window_bits,
                extension.local_max_window_bits,
            ) == params
            assert header_params(pair.opened["extensions_header"]) == answer
            # The same messages three times: with context takeover the
            # repeats compress to almost nothing, without it they must not
            # depend on the earlier ones.
            for _ in range(3):
                await echo(pair, "compress me, again and again " * 3000)
                await echo(pair, unit * 300)
                await receive_from_node(pair, binary=True, size=100_000, kind="repeat")
                await receive_from_node(pair, binary=False, size=1000, kind="repeat")


@pytest.mark.parametrize("role", ROLES)
async def test_subprotocol_path_and_extra_headers(
    node_peer: NodePeer, role: Role
) -> None:
    """Subprotocol choice, the request path and extra headers both ways."""
    with anyio.fail_after(TIME_LIMIT):
        if role == "anyws-server":
            # ws offers v1 then v2; anyws prefers v2 then v1. Both sums of
            # positions are 1: the tie goes to the client's order (API.md).
            async with connected(
                node_peer,
                role,
                path="/chat/room?id=7&x=%20y",
                node_protocols=["chat.v1", "chat.v2"],
                node_headers=["X-From-Node: ws 8"],
                subprotocols=["chat.v2", "chat.v1"],
                extra_headers={"X-From-Anyws": "server"},
            ) as pair:
                assert pair.ws.subprotocol == "chat.v1"
                assert pair.opened["protocol"] == "chat.v1"
                assert pair.ws.path == "/chat/room?id=7&x=%20y"
                assert pair.ws.request_headers["X-From-Node"] == "ws 8"
                assert pair.opened["headers"]["x-from-anyws"] == "server"
                await echo(pair, "with a subprotocol")
        else:
            async with connected(
                node_peer,
                role,
                path="/chat/room?id=7&x=%20y",
                node_protocols=["chat.v2", "chat.v1"],
                node_headers=["X-From-Node: ws 8"],
                subprotocols=["chat.v1", "chat.v2"],
                extra_headers={"X-From-Anyws": "client"},
            ) as pair:
                # ws's handleProtocols (peer.js) takes its own first choice.
                assert pair.ws.subprotocol == "chat.v2"
                assert pair.opened["protocol"] == "chat.v2"
                assert pair.opened["path"] == "/chat/room?id=7&x=%20y"
                assert pair.opened["headers"]["x-from-anyws"] == "client"
                assert pair.opened["headers"]["sec-websocket-protocol"] == (
                    "chat.v1, chat.v2"
                )
                assert pair.ws.response_headers["X-From-Node"] == "ws 8"
                await echo(pair, "with a subprotocol")


@pytest.mark.parametrize("role", ROLES)
async def test_ping_and_pong(node_peer: NodePeer, role: Role) -> None:
    """ws answers anyws's pings, anyws answers ws's pings with the same data."""
    with anyio.fail_after(TIME_LIMIT):
        async with connected(node_peer, role) as pair:
            waiter = await pair.ws.ping(b"from anyws")
            assert (await pair.node.expect("ping"))["data"] == b"from anyws".hex()
            await waiter
            await pair.node.command("ping", data="c0ffee")
            assert (await pair.node.expect("pong"))["data"] == "c0ffee"
            await pair.node.command("ping", data="")
            assert (await pair.node.expect("pong"))["data"] == ""
            await echo(pair, "still open")


CLOSE_CASES = {
    "anyws-1000": ("anyws", 1000, "bye"),
    "anyws-1001": ("anyws", 1001, ""),
    "anyws-4000": ("anyws", 4000, "custom é reason"),
    "ws-1000": ("ws", 1000, "bye"),
    "ws-1001": ("ws", 1001, ""),
    "ws-4000": ("ws", 4000, "custom é reason"),
    # The longest reason a close frame holds: 123 bytes (RFC 6455, 5.5).
    "anyws-3000-long-reason": ("anyws", 3000, "é" * 61 + "!"),
    "ws-4999-long-reason": ("ws", 4999, "é" * 61 + "!"),
    # 1012-1014 are accepted and sent (DECISIONS on API.md (g)); ws too.
    "anyws-1014": ("anyws", 1014, "bad gateway"),
    "ws-1012": ("ws", 1012, "service restart"),
    "ws-1011": ("ws", 1011, "unexpected"),
    # ws.close() without a code sends an empty close frame: 1005, normal.
    "ws-no-code": ("ws", None, ""),
    # ws.terminate() destroys the socket without a close frame: 1006.
    "ws-terminate": ("ws", -1, ""),
}


@pytest.mark.parametrize("case", list(CLOSE_CASES))
@pytest.mark.parametrize("role", ROLES)
async def test_close_codes(node_peer: NodePeer, role: Role, case: str) -> None:
    """Close codes and reasons both ways, 1005 and an abrupt TCP close."""
    closer, code, reason = CLOSE_CASES[case]
    with anyio.fail_after(TIME_LIMIT):
        async with connected(node_peer, role) as pair:
            await echo(pair, "before closing")
            if closer == "anyws":
                assert code is not None
                await close_from_anyws(pair, code, reason)
            elif code == -1:
                await pair.node.command("terminate")
                await expect_closed(pair, anyws.ConnectionClosedError, 1006, "")
                assert (await pair.node.expect("close"))["code"] == 1006
            else:
                await close_from_ws(pair, code, reason)


async def close_from_anyws(pair: Pair, code: int, reason: str) -> None:
    await pair.ws.close(code, reason)
    # ws reports the frame it received; anyws records the echo it received.
    closed = await pair.node.expect("close")
    assert (closed["code"], closed["reason"]) == (code, reason)
    assert (pair.ws.close_code, pair.ws.close_reason) == (code, reason)
    ok = code in (1000, 1001)
    error = anyws.ConnectionClosedOK if ok else anyws.ConnectionClosedError
    await expect_closed(pair, error, code, reason)


async def close_from_ws(pair: Pair, code: int | None, reason: str) -> None:
    if code is None:
        await pair.node.command("close")
    else:
        await pair.node.command("close", code=code, reason=reason)
    expected_code = 1005 if code is None else code
    if expected_code in (1000, 1001, 1005):
        # DECISIONS.md: async for ends silently on 1000, 1001 and 1005.
        async for message in pair.ws:
            pytest.fail(f"unexpected message {message!r}")
        await expect_closed(pair, anyws.ConnectionClosedOK, expected_code, reason)
    else:
        with pytest.raises(anyws.ConnectionClosedError):
            async for message in pair.ws:
                pytest.fail(f"unexpected message {message!r}")
        await expect_closed(pair, anyws.ConnectionClosedError, expected_code, reason)
    # The echo of the close frame: same code (1005 for an empty frame).
    closed = await pair.node.expect("close")
    assert (closed["code"], closed["reason"]) == (expected_code, reason)


async def expect_closed(
    pair: Pair, error: type[anyws.ConnectionClosed], code: int, reason: str
) -> None:
    with pytest.raises(anyws.ConnectionClosed) as caught:
        await pair.ws.recv()
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.reason) == (code, reason)
    await pair.ws.wait_closed()
    assert (pair.ws.close_code, pair.ws.close_reason) == (code, reason)


async def test_server_shutdown_sends_1001(node_peer: NodePeer) -> None:
    """Leaving ``async with serve`` closes a connected ws client with 1001."""
    outcome: list[BaseException] = []
    handler_ready = anyio.Event()

    async def handler(ws: anyws.WebSocketServerProtocol) -> None:
        handler_ready.set()
        try:
            await ws.recv()
        except anyws.ConnectionClosed as exc:
            outcome.append(exc)

    with anyio.fail_after(TIME_LIMIT):
        # The peer outlives the server: the stack closes it after the block.
        async with AsyncExitStack() as stack:
            async with anyws.serve(handler, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                uri = f"ws://127.0.0.1:{port}/"
                node = await stack.enter_async_context(
                    run_node(node_peer, "client", uri, "--deflate")
                )
                await node.expect("open")
                await handler_ready.wait()
            # Here the server is closed and every handler has returned.
            closed = await node.expect("close")
            assert (closed["code"], closed["reason"]) == (1001, "")
    [exc] = outcome
    assert type(exc) is anyws.ConnectionClosedOK
    assert exc.code == 1001


async def closed_error(pair: Pair) -> anyws.ConnectionClosed:
    """The exception recv() raises once the connection is closed."""
    try:
        await pair.ws.recv()
    except anyws.ConnectionClosed as exc:
        return exc
    pytest.fail("recv() returned a message on a closed connection")


async def test_handler_error_sends_1011(node_peer: NodePeer) -> None:
    """A handler that raises: the ws client is closed with 1011."""

    async def handler(ws: anyws.WebSocketServerProtocol) -> None:
        await ws.recv()
        raise RuntimeError("handler bug")

    with anyio.fail_after(TIME_LIMIT):
        async with anyws.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}/"
            async with run_node(node_peer, "client", uri, "--deflate") as node:
                await node.expect("open")
                await node.command("send", text="trigger")
                await node.expect("sent")
                closed = await node.expect("close")
    assert (closed["code"], closed["reason"]) == (1011, "")
