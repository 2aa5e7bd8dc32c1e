"""Stateful fuzzing of live connections (issue 7, item 2), on asyncio and trio.

A Hypothesis :class:`~hypothesis.stateful.RuleBasedStateMachine` drives one
live anyws connection over loopback TCP against a raw peer that builds and
parses every frame itself: an anyws server against a raw client, and an
anyws client against a raw server. The rules interleave at random:

* from the raw peer: text and binary messages, whole or fragmented (with
  pings, pongs, other rules and the anyws side's own sends between the
  fragments, and texts cut inside a UTF-8 sequence), pings, unsolicited
  pongs, pongs answering the anyws side's pings, non-minimal length
  encodings, writes split at random points;
* from the anyws side: ``recv`` (also cancelled at once or after a short
  delay, and concurrently, which must raise ``ConcurrencyError``), ``send``
  of whole and fragmented messages (lists and async generators), ``ping``
  (explicit, duplicate or random payloads), ``pong``, awaiting ping waiters,
  ``close`` with a code that may not be sent;
* and then one way to end the connection: a close frame from the peer (valid
  codes, empty, while a message is fragmented, or simultaneous with a local
  ``close``), a protocol violation (reserved opcodes and bits, wrong masking,
  fragmented or long control frames, stray or interrupting continuations,
  invalid close codes, bad UTF-8, messages over ``max_size``), an abrupt
  disconnect (FIN or RST, possibly inside a frame, possibly while the anyws
  side is sending), a local ``close`` (the peer echoes, answers with another
  code, an empty frame, nothing, or vanishes) or a fragmented ``send`` with
  mixed types. The machine then opens a new connection and goes on.

What is checked, at every step: each complete message is returned by
``recv`` exactly once, in order, with its type; pings are answered with their
payload, in order; what the anyws side sends reaches the peer frame by frame,
masked by a client and unmasked by a server; ping waiters complete exactly
when a pong acknowledges them; only documented exceptions are raised
(``ConnectionClosed`` and its subclasses, ``TypeError``, ``ValueError``,
``ProtocolError`` from ``close``, ``ConcurrencyError``); nothing is logged at
ERROR; every wait is bounded by ``fail_after``. At the end of a connection:
the close code the peer receives follows RFC 6455 (the peer's close frame
echoed exactly, 1002 for protocol errors, 1007 for bad UTF-8, 1009 for a
message that is too big, 1011 for a failed fragmented send), the local
``close_code`` and exception match (1006 after a failure, section 7.1.5), and
every later call raises ``ConnectionClosed``.

Each test is a plain synchronous test: it starts an AnyIO blocking portal on
the backend named in its parameter (checked from inside the loop), and the
state machine's rules call into it. In CI the tests are derandomized (the
same examples on every run, nothing saved) and parametrised by backend, role
and category of ending (peer close, violation, disconnect, local close, mixed
send), so each category meets both backends and both roles: 20 examples of up
to 40 steps each, 100 per backend and role, about 15 seconds in all. For a
long run by hand, with random examples and any ending in any connection::

    ANYWS_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest \\
        tests/hardening/test_fuzz_live.py

It runs four tests (backend x role) of that many examples each, about 5
minutes per test for 5000 examples; a failure is shrunk, saved in
Hypothesis's example database (replayed first on the next run) and printed
with a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar, cast

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import pytest
import sniffio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from anyws._messages import PingWaiter
from anyws._types import Data
from anyws.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ProtocolError,
)
from anyws.protocol import State, WebSocketCommonProtocol

from ..io_support import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    TIMEOUT,
    RawPeer,
    reset,
)
from ..test_protocol import client_to_raw, server_to_raw

__all__ = ()

T = TypeVar("T")

#: ``max_size`` of the anyws side; ordinary messages stay well below it.
MAX_SIZE = 1000
#: ``close_timeout`` of the anyws side: generous, the raw peer answers at once.
CLOSE_TIMEOUT = 5.0
#: ``close_timeout`` set just before a local ``close`` the peer never answers.
SHORT_CLOSE_TIMEOUT = 0.3
#: Longest a connection may live (it only guards against hangs).
SESSION_TIMEOUT = 300
OK_CODES = frozenset({1000, 1001, 1005})

_LONG_RUN = int(os.environ.get("ANYWS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_LONG_RUN or 20,
    stateful_step_count=40,
    derandomize=not _LONG_RUN,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
if not _LONG_RUN:
    # CI: derandomized, nothing saved; by hand, failures are saved for replay.
    FUZZ = settings(FUZZ, database=None)


# -- the raw peer's wire ---------------------------------------------------------


class Wire(NamedTuple):
    """A frame as read by the raw peer, with the bits it must check."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    data: bytes


class Expect(NamedTuple):
    """A frame the anyws side must send; ``data`` ``None`` is a random
    4-byte ping payload."""

    opcode: int
    fin: bool
    data: bytes | None


def build(
    opcode: int,
    data: bytes,
    *,
    mask: bool,
    fin: bool = True,
    rsv: int = 0,
    wide: int = 0,
    length: int | None = None,
) -> bytes:
    """The bytes of a frame (RFC 6455, 5.2).

    ``wide`` 1 or 2 forces the 16-bit or 64-bit length encoding (a receiver
    accepts non-minimal encodings); ``length`` announces another length.
    """
    size = len(data) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask else 0
    if size < 126 and not wide:
        head += bytes([bit | size])
    elif size < 65536 and wide < 2:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + data
    key = struct.pack("!I", (len(data) * 2654435761 + opcode) & 0xFFFFFFFF)
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    masked = bytes(a ^ b for a, b in zip(data, repeated, strict=True))
    return head + key + masked


async def read_wire(peer: RawPeer) -> Wire:
    """Read one frame from the anyws side, unmasking it if needed."""
    first, second = await peer.read_exact(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await peer.read_exact(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await peer.read_exact(8))
    masked = bool(second & 0x80)
    key = await peer.read_exact(4) if masked else b""
    data = await peer.read_exact(length)
    if masked:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return Wire(bool(first & 0x80), (first >> 4) & 7, first & 0x0F, masked, data)


def close_body(code: int | None, reason: str = "") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason.encode()


def parse_close(data: bytes) -> tuple[int, str]:
    if not data:
        return 1005, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode()


# -- strategies ------------------------------------------------------------------

texts = st.text(max_size=60)
binaries = st.binary(max_size=300)
messages: st.SearchStrategy[Data] = st.one_of(texts, binaries)
ctrl_payloads = st.binary(max_size=100)
reasons = st.text(max_size=30)  # at most 120 bytes of UTF-8
SENDABLE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011)
VALID_CODES = (*SENDABLE_CODES, 1012, 1013, 1014, 3000, 3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)
codes = st.sampled_from(VALID_CODES)
#: Byte sequences that are never valid UTF-8, wherever they are.
BAD_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80")
configs = st.fixed_dictionaries(
    {
        "max_queue": st.sampled_from([None, 1, 2, 32]),
        "read_limit": st.sampled_from([128, 200, 2**16]),
        "min_steps": st.integers(0, 8),
    }
)


@dataclass(frozen=True)
class PeerClose:
    """The peer sends a close frame; maybe the anyws side closes at once too."""

    code: int | None
    reason: str
    local_code: int | None
    use_iter: bool


@dataclass(frozen=True)
class Violation:
    """The peer breaks the protocol; ``answer``: it echoes the close frame."""

    kind: str
    variant: int
    answer: bool


@dataclass(frozen=True)
class Disconnect:
    """The peer leaves without a closing handshake."""

    how: str
    cut: int
    while_sending: bool


@dataclass(frozen=True)
class LocalClose:
    """The anyws side calls ``close``; ``reply`` says what the peer does."""

    code: int
    reason: str
    reply: str


@dataclass(frozen=True)
class MixedSend:
    """A fragmented ``send`` whose second item has the other type."""

    text_first: bool


Ending = PeerClose | Violation | Disconnect | LocalClose | MixedSend

VIOLATIONS = (
    "opcode",
    "rsv",
    "mask",
    "ctrl_fragmented",
    "ctrl_long",
    "continuation",
    "length_msb",
    "close_short",
    "close_code",
    "close_utf8",
    "text_utf8",
    "too_big",
)
REPLIES = ("echo", "other", "empty", "silent", "vanish")


def _endings() -> dict[str, dict[str, st.SearchStrategy[Ending]]]:
    """Every way to end a connection, by category and name: the rule picks a
    category, then a name, so that rare paths come up in short runs too."""
    Strategies = dict[str, st.SearchStrategy[Ending]]
    variants = st.integers(0, 255)
    close_codes = st.one_of(st.none(), codes)
    peer: Strategies = {
        "peer close": st.builds(
            PeerClose, close_codes, reasons, st.none(), st.booleans()
        ),
        "simultaneous close": st.builds(
            PeerClose,
            close_codes,
            reasons,
            st.sampled_from(SENDABLE_CODES),
            st.just(False),
        ),
    }
    violation: Strategies = {
        kind: st.builds(Violation, st.just(kind), variants, st.booleans())
        for kind in VIOLATIONS
    }
    disconnect: Strategies = {
        how: st.builds(Disconnect, st.just(how), st.integers(0, 30), st.booleans())
        for how in ("fin", "rst")
    }
    local: Strategies = {
        f"local close, {reply}": st.builds(
            LocalClose, st.sampled_from(SENDABLE_CODES), reasons, st.just(reply)
        )
        for reply in REPLIES
    }
    mixed: Strategies = {"mixed send": st.builds(MixedSend, st.booleans())}
    return {
        "peer close": peer,
        "violation": violation,
        "disconnect": disconnect,
        "local close": local,
        "mixed send": mixed,
    }


CATEGORIES = _endings()
ENDINGS = {name: s for group in CATEGORIES.values() for name, s in group.items()}


class Act(NamedTuple):
    """One action of the raw peer or of the anyws side, with its arguments."""

    name: str
    args: tuple[Any, ...]


def act(name: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Act]:
    return st.tuples(*args).map(lambda values: Act(name, values))


wides = st.sampled_from([0, 0, 0, 1, 2])
PEER_ACTS = st.one_of(
    act("message", messages, wides),
    act(
        "fragments",
        messages,
        st.lists(st.integers(0, 300), min_size=1, max_size=4),
        wides,
    ),
    act("next"),
    act("ping", ctrl_payloads),
    act("pong", ctrl_payloads),
    act("answer", st.integers(0, 7)),
    act("flush", st.lists(st.integers(1, 40), max_size=6).map(tuple)),
)
WS_ACTS = st.one_of(
    act("recv"),
    act("recv_cancelled", st.sampled_from([0, 0.001, 0.01])),
    act("recv_concurrently"),
    act("send", messages, st.sampled_from(["bytes", "bytearray", "memoryview"])),
    act(
        "send_fragments",
        st.one_of(
            st.lists(st.text(max_size=20), max_size=4),
            st.lists(st.binary(max_size=80), max_size=4),
        ),
        st.booleans(),
    ),
    act(
        "ping",
        st.one_of(
            st.none(),
            ctrl_payloads.map(lambda b: b"w" + b),
            st.text(max_size=30).map(lambda t: "w" + t),
        ),
    ),
    act("pong", st.one_of(ctrl_payloads.map(lambda b: b"u" + b), st.just("u"))),
    act("await_pings"),
    act(
        "misuse",
        st.sampled_from(
            ["close_code", "close_reason", "send_dict", "send_int", "ping_type"]
        ),
        st.sampled_from(INVALID_CODES),
    ),
)


# -- the model of one connection -------------------------------------------------------


@dataclass
class Fragments:
    """A fragmented message the peer is sending."""

    message: Data
    parts: deque[bytes]


@dataclass
class LocalPing:
    """A ping sent by the anyws side."""

    waiter: PingWaiter
    payload: bytes | None  # None: random, known once the peer read it
    seen: bool = False
    #: Complete messages the peer had sent before the pong acknowledging it.
    acked_at: int | None = None


@dataclass
class Outcome:
    """How a connection must end, as seen by the anyws side."""

    code: int
    reason: str = ""
    sent_code: int | None = None
    all_delivered: bool = True
    pongs_processed: bool = True


@dataclass
class Session:
    """One connection and the model of what is in flight on it."""

    ws: WebSocketCommonProtocol
    peer: RawPeer
    context: AbstractContextManager[tuple[WebSocketCommonProtocol, RawPeer]]
    max_queue: int | None
    #: Steps before an ending may come.
    min_steps: int
    steps: int = 0
    #: Complete messages from the peer not yet returned by ``recv``.
    pending: deque[Data] = field(default_factory=deque)
    sent_messages: int = 0
    received: int = 0
    fragments: Fragments | None = None
    #: Payloads of the peer's pings, with the messages sent before each.
    pongs: deque[tuple[bytes, int]] = field(default_factory=deque)
    #: Frames the anyws side sent that the peer has not read yet.
    expected: deque[Expect] = field(default_factory=deque)
    pings: list[LocalPing] = field(default_factory=list)
    out: bytearray = field(default_factory=bytearray)
    closed: bool = False


class ErrorLog(logging.Handler):
    """Collects what anyws logs at ERROR or above."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@asynccontextmanager
async def bounded(
    role: str, **kwargs: Any
) -> AsyncIterator[tuple[WebSocketCommonProtocol, RawPeer]]:
    """A connection in ``role`` with a raw peer; it may not outlive
    :data:`SESSION_TIMEOUT`."""
    opener = server_to_raw if role == "server" else client_to_raw
    with anyio.fail_after(SESSION_TIMEOUT):
        async with opener(**kwargs) as (ws, peer):
            yield ws, peer


async def current_library() -> str:
    return sniffio.current_async_library()


class LiveFuzz(RuleBasedStateMachine):
    """Rules run in the test's thread; each calls into the portal's loop."""

    def __init__(
        self,
        portal: anyio.from_thread.BlockingPortal,
        role: str,
        backend: str,
        category: str,
        explored: Counter[str],
    ) -> None:
        super().__init__()
        self.portal = portal
        #: The endings to draw from, by category.
        self.endings = (
            CATEGORIES if category == "any" else {category: CATEGORIES[category]}
        )
        #: What ran: the test checks it and a long run may print it.
        self.explored = explored
        self.role = role
        self.backend = backend
        self.mask = role == "server"  # the raw peer is a client: it masks
        self.log = ErrorLog()
        logging.getLogger("anyws").addHandler(self.log)
        self.s: Session | None = None
        self.failed = False

    # -- plumbing ----------------------------------------------------------------

    @property
    def session(self) -> Session:
        assert self.s is not None
        return self.s

    def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def run() -> T:
            with anyio.fail_after(TIMEOUT):
                return await func(*args)

        try:
            return self.portal.call(run)
        except BaseException:
            self.failed = True
            raise

    def open_session(
        self, max_queue: int | None, read_limit: int, min_steps: int
    ) -> None:
        kwargs = {
            "ping_interval": None,
            "close_timeout": CLOSE_TIMEOUT,
            "max_size": MAX_SIZE,
            "max_queue": max_queue,
            "read_limit": read_limit,
        }
        context = self.portal.wrap_async_context_manager(bounded(self.role, **kwargs))
        ws, peer = context.__enter__()
        self.s = Session(ws, peer, context, max_queue, min_steps)
        assert self.portal.call(current_library) == self.backend

    def close_session(self) -> None:
        session = self.session
        self.s = None
        if not session.closed:
            if self.failed:
                # Shrinking replays failures: do not wait on a broken one.
                session.ws.close_timeout = SHORT_CLOSE_TIMEOUT
            self.portal.call(anyio.aclose_forcefully, session.peer.stream)
        session.context.__exit__(None, None, None)
        if not self.failed:
            errors = [record.getMessage() for record in self.log.records]
            assert not errors, errors

    @initialize(config=configs)
    def start(self, config: dict[str, Any]) -> None:
        self.open_session(**config)

    @precondition(lambda self: self.session.closed)
    @rule(config=configs)
    def reopen(self, config: dict[str, Any]) -> None:
        self.close_session()
        self.open_session(**config)

    def teardown(self) -> None:
        try:
            if self.s is not None:
                if not self.session.closed and not self.failed:
                    # Every connection ends with a check that nothing is lost.
                    self.call(self.end, PeerClose(1000, "", None, False))
                self.close_session()
        finally:
            logging.getLogger("anyws").removeHandler(self.log)

    def out(self, frame: bytes) -> None:
        self.session.out += frame

    def frame(self, opcode: int, data: bytes, *, fin: bool = True, **kw: Any) -> None:
        self.out(build(opcode, data, mask=self.mask, fin=fin, **kw))

    async def flush(self, sizes: tuple[int, ...] = ()) -> None:
        """Write the peer's pending bytes, in pieces of ``sizes`` first."""
        session = self.session
        data, session.out = bytes(session.out), bytearray()
        for size in sizes:
            if not data:
                return
            await session.peer.send(data[:size])
            data = data[size:]
            await anyio.lowlevel.checkpoint()  # the reader may run in between
        if data:
            await session.peer.send(data)

    def complete(self, message: Data) -> None:
        self.explored["messages from the peer"] += 1
        self.session.pending.append(message)
        self.session.sent_messages += 1

    def reachable(self, messages_before: int) -> bool:
        """Whether the reader surely reads past a frame that followed
        ``messages_before`` messages: it stops reading while ``max_queue``
        messages wait for ``recv``, and only messages before it can wait."""
        session = self.session
        return (
            session.max_queue is None
            or messages_before - session.received < session.max_queue
        )

    # -- the peer reads what the anyws side sent --------------------------------------

    def check_frame(self, frame: Wire) -> None:
        """Match a frame from the anyws side with what the model expects."""
        session = self.session
        assert frame.masked == (self.role == "client"), frame  # RFC 6455, 5.1
        assert frame.rsv == 0, frame
        if frame.opcode == PONG and frame.data.startswith(b"p"):
            assert session.pongs, f"unexpected pong {frame}"
            assert frame.data == session.pongs.popleft()[0], frame
            return
        assert session.expected, f"unexpected frame {frame}"
        want = session.expected.popleft()
        assert (frame.opcode, frame.fin) == want[:2], (frame, want)
        if want.data is not None:
            assert frame.data == want.data, (frame, want)
        else:
            assert len(frame.data) == 4, frame
        if frame.opcode == PING:
            ping = next(p for p in session.pings if not p.seen)
            ping.seen = True
            ping.payload = frame.data

    async def read_until_close(self, *, pongs_required: bool) -> Wire:
        """Read frames up to the first close frame; check those before it."""
        session = self.session
        while (frame := await read_wire(session.peer)).opcode != CLOSE:
            self.check_frame(frame)
        assert frame.fin and frame.rsv == 0, frame
        assert frame.masked == (self.role == "client"), frame
        assert not session.expected, f"missing frames {session.expected}"
        if pongs_required:
            assert not session.pongs, f"missing pongs {session.pongs}"
        # Once its close frame is out, the anyws side answers no ping.
        session.pongs.clear()
        return frame

    async def finish(self, *, answer: bytes | None = None) -> None:
        """End the closing handshake on the peer's side: the server closes
        TCP first (RFC 6455, 7.1.1), then the client."""
        peer = self.session.peer
        if answer is not None:
            try:
                await peer.send(build(CLOSE, answer, mask=self.mask))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the server may have closed TCP already
        if self.role == "server":
            assert await peer.read_to_eof() == b"", "data after the close frame"
        await peer.aclose()

    # -- what the raw peer does --------------------------------------------------

    def is_open(self) -> bool:
        return not self.session.closed

    def peer_message(self, message: Data, wide: int) -> None:
        if self.session.fragments is not None:
            return self.peer_next()  # RFC 6455, 5.4: messages never mix
        if isinstance(message, str):
            self.frame(TEXT, message.encode(), wide=wide)
        else:
            self.frame(BINARY, message, wide=wide)
        self.complete(message)

    def peer_fragments(self, message: Data, cuts: list[int], wide: int) -> None:
        """Start a fragmented message; its bytes are cut anywhere, inside a
        UTF-8 sequence too (RFC 6455, 5.4 and 5.6)."""
        if self.session.fragments is not None:
            return self.peer_next()
        data = message.encode() if isinstance(message, str) else message
        points = sorted(min(cut, len(data)) for cut in cuts)
        ends = [*points, len(data)]
        parts = [data[a:b] for a, b in zip([0, *points], ends, strict=True)]
        opcode = TEXT if isinstance(message, str) else BINARY
        self.frame(opcode, parts[0], fin=False, wide=wide)
        self.session.fragments = Fragments(message, deque(parts[1:]))

    def peer_next(self) -> None:
        """Send the next fragment, if a fragmented message is under way."""
        fragments = self.session.fragments
        if fragments is None:
            return
        part = fragments.parts.popleft()
        last = not fragments.parts
        self.frame(CONT, part, fin=last)
        if last:
            self.session.fragments = None
            self.complete(fragments.message)

    def peer_ping(self, payload: bytes) -> None:
        self.frame(PING, b"p" + payload)
        self.session.pongs.append((b"p" + payload, self.session.sent_messages))

    def peer_pong(self, payload: bytes) -> None:
        """An unsolicited pong; its prefix matches no ping of the anyws side."""
        self.frame(PONG, b"q" + payload)

    def peer_answer(self, choice: int) -> None:
        """Answer one of the pings read so far; that answers the earlier
        ones too."""
        session = self.session
        seen = [p for p in session.pings if p.seen and p.acked_at is None]
        if not seen:
            return
        answered = seen[choice % len(seen)]
        assert answered.payload is not None
        for ping in session.pings[: session.pings.index(answered) + 1]:
            if ping.acked_at is None:
                ping.acked_at = session.sent_messages
        self.frame(PONG, answered.payload)

    def peer_flush(self, sizes: tuple[int, ...]) -> None:
        self.call(self.flush, sizes)

    async def peer_reads(self) -> None:
        """Read what the anyws side sent, and the pongs sure to come."""
        session = self.session
        await self.flush()
        while session.expected or any(
            self.reachable(before) for _, before in session.pongs
        ):
            self.check_frame(await read_wire(session.peer))

    # -- what the anyws side does ------------------------------------------------------

    async def ws_recv(self) -> None:
        session = self.session
        if not session.pending:
            return await self.ws_recv_cancelled(0)
        await self.flush()
        self.got(await session.ws.recv())

    def got(self, message: Data) -> None:
        session = self.session
        assert session.pending, f"unexpected message {message!r}"
        want = session.pending.popleft()
        assert type(message) is type(want) and message == want, (message, want)
        session.received += 1
        self.explored["messages received"] += 1

    async def ws_recv_cancelled(self, delay: float) -> None:
        """A ``recv`` cut short loses nothing (API.md (d), cancellation)."""
        await self.flush()
        with anyio.move_on_after(delay):
            message = await self.session.ws.recv()
            self.got(message)

    async def ws_recv_concurrently(self) -> None:
        """Of two concurrent ``recv``, the second raises at once. No message
        may arrive meanwhile: the peer has completed none."""
        if self.session.pending:
            return await self.ws_recv()
        refused: list[ConcurrencyError] = []

        async def receive() -> None:
            try:
                message = await self.session.ws.recv()
            except ConcurrencyError as exc:
                refused.append(exc)
            else:  # pragma: no cover - only when the test fails
                raise AssertionError(f"unexpected message {message!r}")

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(receive)
            task_group.start_soon(receive)
            while not refused:  # noqa: ASYNC110 - the library owns no event for it
                await anyio.sleep(0.001)
            task_group.cancel_scope.cancel()
        assert len(refused) == 1
        assert isinstance(refused[0], RuntimeError)

    async def ws_send(self, message: Data, kind: str) -> None:
        if isinstance(message, str):
            await self.session.ws.send(message)
            self.session.expected.append(Expect(TEXT, True, message.encode()))
        else:
            wrap = {"bytes": bytes, "bytearray": bytearray, "memoryview": memoryview}
            await self.session.ws.send(wrap[kind](message))
            self.session.expected.append(Expect(BINARY, True, message))

    async def ws_send_fragments(
        self, parts: list[str] | list[bytes], asynchronous: bool
    ) -> None:
        async def generate() -> AsyncIterator[str | bytes]:
            for part in parts:
                yield part

        await self.session.ws.send(generate() if asynchronous else parts)
        if not parts:
            return  # an empty iterable sends nothing
        data = [p.encode() if isinstance(p, str) else p for p in parts]
        opcode = TEXT if isinstance(parts[0], str) else BINARY
        expected = self.session.expected
        expected.append(Expect(opcode, False, data[0]))
        expected.extend(Expect(CONT, False, d) for d in data[1:])
        expected.append(Expect(CONT, True, b""))

    async def ws_ping(self, data: bytes | str | None) -> None:
        session = self.session
        payload = data.encode() if isinstance(data, str) else data
        if payload is not None:
            waiting = [p for p in session.pings if p.payload == payload]
            if any(p.acked_at is not None for p in waiting):
                # Whether the reader has seen that pong yet is not known.
                payload = data = None
            elif waiting:
                with pytest.raises(ValueError, match="already waiting"):
                    await session.ws.ping(data)
                return
        waiter = await session.ws.ping(data)
        assert isinstance(waiter, PingWaiter)
        session.pings.append(LocalPing(waiter, payload))
        session.expected.append(Expect(PING, True, payload))

    async def ws_pong(self, data: bytes | str) -> None:
        await self.session.ws.pong(data)
        payload = data.encode() if isinstance(data, str) else data
        self.session.expected.append(Expect(PONG, True, payload))

    async def ws_await_pings(self) -> None:
        """Await the waiters of answered pings; the others are pending."""
        session = self.session
        await self.flush()
        for ping in list(session.pings):
            if ping.acked_at is not None and self.reachable(ping.acked_at):
                await ping.waiter
                session.pings.remove(ping)
                self.explored["pings answered"] += 1
        for ping in session.pings:
            if ping.acked_at is None:
                assert not ping.waiter.done(), "a ping acknowledged by no pong"

    async def ws_misuse(self, misuse: str, code: int) -> None:
        """Documented refusals (API.md (d)): nothing is sent, the connection
        stays usable (the next steps check that)."""
        ws = self.session.ws
        if misuse == "close_code":
            with pytest.raises(ProtocolError, match="invalid status code"):
                await ws.close(code)
        elif misuse == "close_reason":
            with pytest.raises(ProtocolError):
                await ws.close(1000, "x" * 124)
        elif misuse == "send_dict":
            with pytest.raises(TypeError):
                await ws.send({"a": "b"})
        elif misuse == "send_int":
            with pytest.raises(TypeError):
                await ws.send(code)  # type: ignore[arg-type]
        else:
            with pytest.raises(TypeError):
                await ws.ping(code)  # type: ignore[arg-type]
        assert ws.open

    # -- the rules ---------------------------------------------------------------------

    @precondition(is_open)
    @rule(acts=st.lists(PEER_ACTS, min_size=1, max_size=4))
    def peer(self, acts: list[Act]) -> None:
        """A few frames (or writes) from the raw peer."""
        for act in acts:
            self.explored[f"peer {act.name}"] += 1
            getattr(self, f"peer_{act.name}")(*act.args)
        self.session.steps += 1

    @precondition(is_open)
    @rule()
    def peer_reads_now(self) -> None:
        self.call(self.peer_reads)

    @precondition(is_open)
    @rule(act=WS_ACTS)
    def ws(self, act: Act) -> None:
        """One call of the anyws side's API."""
        self.explored[f"ws {act.name}"] += 1
        self.call(getattr(self, f"ws_{act.name}"), *act.args)
        self.session.steps += 1

    # -- rules: the end of a connection ------------------------------------------

    @precondition(
        lambda self: self.is_open() and self.session.steps >= self.session.min_steps
    )
    @rule(data=st.data())
    def ending(self, data: st.DataObject) -> None:
        category = data.draw(st.sampled_from(list(self.endings)), label="category")
        group = self.endings[category]
        name = data.draw(st.sampled_from(list(group)), label=category)
        ending = data.draw(group[name], label=name)
        fragmented = self.session.fragments is not None
        self.explored[name + (" (fragmented)" if fragmented else "")] += 1
        self.call(self.end, ending)

    async def end(self, ending: Ending) -> None:
        session = self.session
        received: list[Data] = []
        caught: list[ConnectionClosed] = []
        use_iter = isinstance(ending, PeerClose) and ending.use_iter

        async def receive_all() -> None:
            try:
                if use_iter:
                    async for message in session.ws:
                        received.append(message)
                    return  # a normal closure ends the iteration silently
                while True:
                    received.append(await session.ws.recv())
            except ConnectionClosed as exc:
                caught.append(exc)

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(receive_all)
            outcome = await self.run_ending(ending, task_group)
        session.closed = True
        await session.ws.wait_closed()
        self.check_outcome(outcome, received, caught, use_iter)
        await self.check_closed_api(outcome)

    async def run_ending(
        self, ending: Ending, task_group: anyio.abc.TaskGroup
    ) -> Outcome:
        if isinstance(ending, PeerClose):
            return await self.peer_closes(ending, task_group)
        if isinstance(ending, Violation):
            return await self.peer_violates(ending)
        if isinstance(ending, Disconnect):
            return await self.peer_vanishes(ending, task_group)
        if isinstance(ending, LocalClose):
            return await self.local_close(ending, task_group)
        return await self.mixed_send(ending)

    def check_outcome(
        self,
        outcome: Outcome,
        received: list[Data],
        caught: list[ConnectionClosed],
        use_iter: bool,
    ) -> None:
        session = self.session
        pending = list(session.pending)
        if outcome.all_delivered:
            assert received == pending, (received, pending)
        else:
            assert received == pending[: len(received)], (received, pending)
        ws = session.ws
        assert ws.close_code == outcome.code, (ws.close_code, outcome)
        assert ws.close_reason == outcome.reason, (ws.close_reason, outcome)
        if use_iter and outcome.code in OK_CODES:
            assert not caught  # ``async for`` ends silently
            return
        (exc,) = caught
        ok = outcome.code in OK_CODES
        assert isinstance(exc, ConnectionClosedOK if ok else ConnectionClosedError)
        assert exc.code == outcome.code, (exc, outcome)
        if outcome.sent_code is not None:
            assert exc.sent is not None and exc.sent.code == outcome.sent_code

    async def check_closed_api(self, outcome: Outcome) -> None:
        """After the end, every call raises ``ConnectionClosed`` or returns."""
        session = self.session
        ws = session.ws
        assert ws.closed and not ws.open and ws.state is State.CLOSED
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.code == outcome.code
        with pytest.raises(ConnectionClosed):
            await ws.send("late")
        with pytest.raises(ConnectionClosed):
            await ws.ping()
        with pytest.raises(ConnectionClosed):
            await ws.pong()
        await ws.close()
        await ws.wait_closed()
        for ping in session.pings:
            if ping.acked_at is None:
                with pytest.raises(ConnectionClosed):
                    await ping.waiter
            elif outcome.pongs_processed:
                await ping.waiter
            else:
                try:
                    await ping.waiter
                except ConnectionClosed:
                    pass  # the pong may have come after reading stopped

    # -- the endings -----------------------------------------------------------------

    async def peer_closes(
        self, ending: PeerClose, task_group: anyio.abc.TaskGroup
    ) -> Outcome:
        """RFC 6455, 5.5.1: the anyws side echoes the close frame; with a
        simultaneous local close, the peer gets exactly one close frame."""
        body = close_body(ending.code, ending.reason)
        self.frame(CLOSE, body)
        await self.flush()
        if ending.local_code is not None:
            task_group.start_soon(self.session.ws.close, ending.local_code)
        frame = await self.read_until_close(pongs_required=ending.local_code is None)
        if ending.local_code is None:
            assert frame.data == body, (frame, body)
        else:
            assert frame.data in (body, close_body(ending.local_code)), frame
        await self.finish()
        return Outcome(*parse_close(body))

    def violation(self, ending: Violation) -> tuple[bytes, int]:
        """The bytes of a protocol violation and the close code it earns
        (RFC 6455, 5.1, 5.2, 5.4, 5.5, 7.4.1, 8.1; API.md (d))."""
        v = ending.variant
        fragments = self.session.fragments
        kind = ending.kind
        ctrl = (PING, PONG, CLOSE)[v % 3]
        if kind == "text_utf8" and fragments is not None:
            if isinstance(fragments.message, str):
                bad = b"ok" + BAD_UTF8[v % len(BAD_UTF8)]
                return build(CONT, bad, mask=self.mask, fin=v % 2 == 0), 1007
            kind = "close_utf8"  # no text frame may start now
        if kind == "opcode":
            opcode = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)[v % 10]
            return build(opcode, b"x" * (v % 5), mask=self.mask), 1002
        if kind == "rsv":
            opcode = (TEXT, BINARY, PING, CONT)[v % 4]
            return build(opcode, b"r", mask=self.mask, rsv=1 + v % 7), 1002
        if kind == "mask":
            opcode = (TEXT, BINARY, PING, CLOSE)[v % 4]
            return build(opcode, b"m", mask=not self.mask), 1002
        if kind == "ctrl_fragmented":
            return build(ctrl, b"", mask=self.mask, fin=False), 1002
        if kind == "ctrl_long":
            return build(ctrl, b"l" * (126 + v % 100), mask=self.mask), 1002
        if kind == "continuation":
            # A continuation without a start, or a new message that
            # interrupts a fragmented one.
            opcode = CONT if fragments is None else (TEXT, BINARY)[v % 2]
            return build(opcode, b"c", mask=self.mask, fin=v % 2 == 0), 1002
        if kind == "length_msb":
            return build(BINARY, b"", mask=self.mask, length=2**63 + v), 1002
        if kind == "close_short":
            return build(CLOSE, bytes([v]), mask=self.mask), 1002
        if kind == "close_code":
            code = INVALID_CODES[v % len(INVALID_CODES)]
            return build(CLOSE, close_body(code, "bad"), mask=self.mask), 1002
        if kind == "close_utf8":
            bad = struct.pack("!H", 1000) + b"x" + BAD_UTF8[v % len(BAD_UTF8)]
            return build(CLOSE, bad, mask=self.mask), 1007
        if kind == "text_utf8":
            bad = b"ab" + BAD_UTF8[v % len(BAD_UTF8)]
            if v % 3 == 0:
                bad = "é".encode()[:1]  # a sequence cut at the end of the message
            return build(TEXT, bad, mask=self.mask), 1007
        return self.too_big(v), 1009

    def too_big(self, v: int) -> bytes:
        """A frame that takes the message over ``max_size``; some announce a
        huge length and send nothing (refused from the header)."""
        fragments = self.session.fragments
        if v % 4 == 0:
            opcode = BINARY if fragments is None else CONT
            return build(opcode, b"", mask=self.mask, length=2**40)
        if fragments is None:
            return build(
                (TEXT, BINARY)[v % 2], b"b" * (MAX_SIZE + 1 + v), mask=self.mask
            )
        # A fragment that may not be too big alone but takes the total over.
        data = fragments.message
        size = len(data.encode() if isinstance(data, str) else data)
        so_far = size - sum(len(part) for part in fragments.parts)
        extra = b"b" * (MAX_SIZE + 1 - so_far + v % 3)
        return build(CONT, extra, mask=self.mask, fin=v % 2 == 0)

    async def peer_violates(self, ending: Violation) -> Outcome:
        """The peer gets the close code of the error, then the end of TCP
        (section 7.1.7); locally the code is 1006: no close frame came."""
        data, code = self.violation(ending)
        self.out(data)
        await self.flush()
        frame = await self.read_until_close(pongs_required=True)
        assert parse_close(frame.data)[0] == code, (frame, ending)
        await self.finish(answer=frame.data if ending.answer else None)
        return Outcome(1006, "", sent_code=code)

    async def peer_vanishes(
        self, ending: Disconnect, task_group: anyio.abc.TaskGroup
    ) -> Outcome:
        """FIN or RST without a close frame, maybe inside a frame: 1006."""
        session = self.session
        if ending.cut:
            frame = build(BINARY, b"cut" * 20, mask=self.mask)
            self.out(frame[: min(ending.cut, len(frame) - 1)])
        await self.flush()
        if ending.while_sending:
            task_group.start_soon(self.send_until_closed)
        if ending.how == "rst":
            await reset(session.peer.stream)
        else:
            await session.peer.stream.send_eof()
            await session.peer.read_to_eof()
            await session.peer.aclose()
        rst = ending.how == "rst"
        return Outcome(1006, "", all_delivered=not rst, pongs_processed=not rst)

    async def send_until_closed(self) -> None:
        """Keep sending while the peer vanishes: only ``ConnectionClosed``
        may come out."""
        for _ in range(64):
            try:
                await self.session.ws.send(b"s" * 16384)
            except ConnectionClosed:
                return

    async def local_close(
        self, ending: LocalClose, task_group: anyio.abc.TaskGroup
    ) -> Outcome:
        """The peer reads the close frame, then answers as told. A silent
        peer costs at most 5 close timeouts (API.md (d), close)."""
        ws = self.session.ws
        await self.flush()
        if ending.reply == "silent":
            ws.close_timeout = SHORT_CLOSE_TIMEOUT

        async def close() -> None:
            with anyio.fail_after(5 * ws.close_timeout + 5):
                await ws.close(ending.code, ending.reason)

        started = time.monotonic()
        task_group.start_soon(close)
        frame = await self.read_until_close(pongs_required=False)
        assert frame.data == close_body(ending.code, ending.reason), frame
        replies = {
            "echo": frame.data,
            "other": close_body(3000 + ending.code, "other"),
            "empty": b"",
        }
        answer = replies.get(ending.reply)
        peer = self.session.peer
        if ending.reply == "vanish":
            await peer.stream.send_eof()
        if ending.reply in ("silent", "vanish"):
            await peer.read_to_eof()  # "silent": the anyws side gives up
            await peer.aclose()
            assert time.monotonic() - started < 5 * ws.close_timeout + 5
        else:
            await self.finish(answer=answer)
        if answer is None:
            return Outcome(1006, "")
        return Outcome(*parse_close(answer))

    async def mixed_send(self, ending: MixedSend) -> Outcome:
        """A fragmented send whose items change type: ``TypeError``, and the
        peer gets the first fragment, then 1011 (API.md (d), send)."""
        session = self.session
        await self.flush()
        parts: list[Any] = ["text", b"bytes"] if ending.text_first else [b"b", "t"]
        with pytest.raises(TypeError, match="inconsistent types"):
            await session.ws.send(parts)
        first = parts[0].encode() if isinstance(parts[0], str) else parts[0]
        opcode = TEXT if isinstance(parts[0], str) else BINARY
        session.expected.append(Expect(opcode, False, first))
        frame = await self.read_until_close(pongs_required=False)
        assert parse_close(frame.data)[0] == 1011, frame
        await self.finish()
        # Failing stops reading (RFC 6455, 7.1.7): what the peer sent last
        # may never be read.
        return Outcome(
            1006, "", sent_code=1011, all_delivered=False, pongs_processed=False
        )


# -- the tests ---------------------------------------------------------------------


def run_fuzz(backend: str, role: str, category: str) -> Counter[str]:
    """Run the state machine; return what it explored."""
    explored: Counter[str] = Counter()
    with anyio.from_thread.start_blocking_portal(backend) as portal:

        def factory() -> LiveFuzz:
            explored["examples"] += 1
            return LiveFuzz(portal, role, backend, category, explored)

        # Any callable returning a machine will do (Hypothesis's docs); its
        # annotation only names the class.
        run_state_machine_as_test(cast("type[LiveFuzz]", factory), settings=FUZZ)
    return explored


@pytest.mark.parametrize("category", ["any"] if _LONG_RUN else list(CATEGORIES))
@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_live_fuzz(backend: str, role: str, category: str) -> None:
    """Random interleavings against a raw peer; see the module docstring."""
    explored = run_fuzz(backend, role, category)
    assert explored["examples"] >= FUZZ.max_examples
    names = ENDINGS if category == "any" else CATEGORIES[category]
    ended = sum(explored[n] + explored[f"{n} (fragmented)"] for n in names)
    assert ended, f"no connection ended with a {category}"
