"""The engine of a WebSocket connection: reader task, writes, teardown.

:class:`Connection` drives a sans-I/O state machine
(:mod:`anyws.sansio.machine`) over any :class:`anyio.abc.ByteStream`: plain
TCP, TLS or a Unix socket, on asyncio or on trio. It builds no frame itself;
it moves bytes and waits. :class:`~anyws.protocol.WebSocketCommonProtocol`
adds the public API on top of it.

Invariants (each method below relies on them):

* Once the connection is OPEN, one reader task is the only one that calls
  ``stream.receive()`` and the only one that closes the stream. It runs in a
  shielded cancel scope, so that cancelling the caller's scope never cuts a
  closing handshake short; :meth:`Connection._abort` ends it at once, and
  once closing has started every wait of it is bounded by ``close_timeout``.
  On anyws's own asyncio stream the reader task only starts when it has
  something to do (:meth:`Connection._start_reading`): until then, the
  stream's ``data_received`` feeds the machine, queues the messages and
  writes the pongs, and nothing else happens.
* Every write happens under ``_write_lock``, and the bytes are taken from the
  machine while holding it, so they reach the stream in the order the
  machine produced them. Whoever holds the lock writes everything pending
  (its own frames and the pongs or close frames the reader queued) before it
  releases it.
* A frame is never half written and then forgotten: a write that is cancelled
  or fails leaves the stream in an unknown state, so the connection is
  aborted (RFC 6455 section 7.1.7, "fail the WebSocket connection").
* ``_closed`` becomes true (and ``_closed_event``, if anyone waited, is set)
  only once the stream is closed and the machine is CLOSED; then
  ``close_code`` and ``close_reason`` are final.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import NoReturn

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.tls import TLSStream

from ._asyncio_stream import NativeStream
from ._compat import TRANSPORT_ERRORS, SideLogger, aclose_within
from ._messages import MessageQueue, PingWaiter
from ._sync import EventLike, FastLock, event_factory
from ._tasks import Spawner, Timer
from .exceptions import ConnectionClosed, InvalidState
from .sansio import http11
from .sansio.events import (
    Event,
    Message,
    PingReceived,
    PongReceived,
    RequestReceived,
    ResponseReceived,
)
from .sansio.machine import ClientMachine, Machine, ServerMachine, State

__all__ = ("Connection",)

logger = logging.getLogger("anyws.protocol")


_SIDE_LOGGERS: dict[str, SideLogger] = {}


def _side_logger(side: str) -> SideLogger:
    """One adapter per side, shared by all connections (they are many)."""
    adapter = _SIDE_LOGGERS.get(side)
    if adapter is None:
        adapter = _SIDE_LOGGERS[side] = SideLogger(logger, side)
    return adapter


@functools.cache
def _anyio_cancel_check() -> Callable[[], Awaitable[None]]:
    """AnyIO's ``checkpoint_if_cancelled`` for asyncio, without the look-up
    of the running library (sniffio calls ``asyncio.current_task()``, a
    ``getpid`` system call on Python 3.11) that the public function does on
    each call: a measured 12 % of the event loop's time with 100 busy
    connections."""
    try:
        from anyio._core._eventloop import get_async_backend

        return get_async_backend("asyncio").checkpoint_if_cancelled
    except (ImportError, AttributeError):  # pragma: no cover - another AnyIO
        return anyio.lowlevel.checkpoint_if_cancelled


#: What the connections of each event loop share (see _loop_helpers).
_LOOP_HELPERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop,
    tuple[Callable[[], EventLike], Callable[[], Awaitable[None]]],
] = weakref.WeakKeyDictionary()


def _loop_helpers(
    loop: asyncio.AbstractEventLoop,
) -> tuple[Callable[[], EventLike], Callable[[], Awaitable[None]]]:
    """The event factory and the cancellation check of connections on
    ``loop``'s own streams, made once per loop rather than per connection.

    The check is the one a send makes before it writes: it raises if the
    task is in a cancelled AnyIO scope. AnyIO's check finds the task with
    ``asyncio.current_task()``, which asks for the running loop, a ``getpid``
    system call on Python 3.11: a measured 35 % of the CPU per pipelined
    message. Given the loop, the task costs a dictionary look-up; then,
    unless a scope around the task was cancelled, the check is over. A
    cancelled scope is left to AnyIO's own check, which delivers the
    cancellation. With an AnyIO that keeps its task states otherwise,
    AnyIO's check is used as it is.
    """
    helpers = _LOOP_HELPERS.get(loop)
    if helpers is None:
        helpers = _LOOP_HELPERS[loop] = (
            event_factory(loop),
            _fast_cancel_check(loop),
        )
    return helpers


def _fast_cancel_check(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[], Awaitable[None]]:
    deliver = _anyio_cancel_check()
    try:
        from anyio._backends._asyncio import CancelScope, TaskState, _task_states
    except ImportError:  # pragma: no cover - another AnyIO
        return deliver
    scope_attributes = ("cancel_called", "shield", "_parent_scope")
    if "cancel_scope" not in getattr(TaskState, "__slots__", ()) or not all(
        hasattr(CancelScope, name) or name in getattr(CancelScope, "__slots__", ())
        for name in scope_attributes
    ):  # pragma: no cover - another AnyIO
        return deliver
    current_task = asyncio.current_task

    async def check() -> None:
        state = _task_states.get(current_task(loop))  # type: ignore[arg-type]
        scope = None if state is None else state.cancel_scope
        while scope is not None:
            if scope.cancel_called:
                await deliver()
                return
            if scope.shield:
                return
            scope = scope._parent_scope

    return check


class _WriteError(Exception):
    """Internal: writing to the stream failed; ``__cause__`` says why."""


class Connection:
    """The private engine under :class:`~anyws.protocol.WebSocketCommonProtocol`.

    The subclass sets the configuration attributes declared here, then calls
    :meth:`_init_connection`.
    """

    # Slots for the engine's own state: with them, the public subclasses'
    # instance dict stays small enough for key sharing (1.5 KiB less per
    # connection); subclasses keep a __dict__ for their attributes and users'.
    __slots__ = (
        "_logger",
        "_machine",
        "_stream",
        "_messages",
        "_pings",
        "_write_lock_",
        "_send_lock_",
        "_closed",
        "_closed_event",
        "_outbox",
        "_outbox_size",
        "_read_scope",
        "_keepalive_scope",
        "_wait_scope",
        "_waiting_for_space",
        "_poked",
        "_close_deadline",
        "_milestone",
        "_reader_running",
        "_cannot_half_close",
        "_aborted",
        "_transport_exc",
        "_push_ready",
        "_push_exc",
        "_task_group",
        "_pusher",
        "_close_timer",
        "_keepalive_timer",
        "_call_later",
        "_spawner",
        "_check_cancelled",
    )

    is_client: bool = False
    side: str = "undefined"
    close_timeout: float
    max_queue: int | None
    read_limit: int
    write_limit: int

    def _init_connection(self, max_size: int | None) -> None:
        """Set up the machine and the internal state (no I/O yet)."""
        #: Logs on ``anyws.protocol``, each line starting with :attr:`side`.
        self._logger = _side_logger(self.side)
        self._machine: Machine = self._create_machine(max_size)
        self._stream: anyio.abc.ByteStream | None = None
        self._messages = MessageQueue()
        self._pings: dict[bytes, PingWaiter] = {}
        # The locks and the closed event are made on first use: an idle
        # connection never needs them, and each holds a deque (0.75 KiB) on
        # asyncio.
        self._write_lock_: FastLock | None = None
        self._send_lock_: FastLock | None = None
        self._closed = False
        self._closed_event: anyio.Event | None = None
        # Rarely more than a few frames: a list is 14 times smaller than a
        # deque, and popping its head is as cheap at that length.
        self._outbox: list[bytes] = []
        self._outbox_size = 0
        # The reader's scope, made when it starts (a cancel scope costs
        # 0.65 KiB on asyncio, and an idle connection may have no reader).
        self._read_scope: anyio.CancelScope | None = None
        # Made in WebSocketCommonProtocol._start, only with a ping_interval.
        self._keepalive_scope: anyio.CancelScope | None = None
        self._wait_scope: anyio.CancelScope | None = None
        self._waiting_for_space = False
        self._poked = False
        self._close_deadline = math.inf
        self._milestone: tuple[bool, bool] | None = None
        self._reader_running = False
        self._cannot_half_close = False
        self._aborted = False
        self._transport_exc: BaseException | None = None
        self._push_ready = False
        self._push_exc: Exception | None = None
        # Set while an OPEN connection on a NativeStream has no reader task
        # (see _start_reading); the reader is started in it when needed.
        self._task_group: Spawner | None = None
        self._pusher: NativeStream | None = None
        # Without a reader task, the close timeout is a timer of the loop.
        self._close_timer: asyncio.TimerHandle | None = None
        # Keepalive on timers, where there are (see protocol.py): it starts
        # short tasks in the spawner.
        self._keepalive_timer: Timer | None = None
        self._call_later: Callable[[float, Callable[[], None]], Timer] | None = None
        self._spawner: Spawner | None = None
        self._check_cancelled: Callable[[], Awaitable[None]] = (
            anyio.lowlevel.checkpoint_if_cancelled
        )

    # -- setup, used by client.py and server.py ----------------------------------

    def _create_machine(self, max_size: int | None) -> Machine:
        """Make the sans-I/O state machine of this side, CONNECTING."""
        machine_class = ClientMachine if self.is_client else ServerMachine
        # websockets 8.1 bounds handshake lines by read_limit // 2 as well.
        max_line = min(http11.MAX_LINE, max(self.read_limit // 2, 1))
        return machine_class(max_size=max_size, max_line=max_line, logger=self._logger)

    def _attach(self, stream: anyio.abc.ByteStream) -> None:
        """Give the connection its stream (TCP, TLS or Unix), before the
        opening handshake."""
        self._stream = stream
        if isinstance(stream, NativeStream):
            stream.set_consumer(self._push)
            self._messages.new_event, self._check_cancelled = _loop_helpers(
                stream._get_loop()
            )
        elif type(stream).__module__ == "anyws._trio_stream":  # trio is there
            import trio

            # Trio's own, without AnyIO's look-up of the running library on
            # each call.
            self._messages.new_event = trio.Event
            self._check_cancelled = trio.lowlevel.checkpoint_if_cancelled
        self._logger.debug("- event = connection_made")

    # -- locks and the closed event, made on first use ---------------------------

    # FastLock: an uncontended lock is taken without a trip through the
    # scheduler and without looking the current task up (a measured 25 % of
    # the CPU per pipelined message, then 2 getpid calls per send on asyncio).
    # It does not check for cancellation: _write does, before writing.

    @property
    def _write_lock(self) -> FastLock:
        lock = self._write_lock_
        if lock is None:
            lock = self._write_lock_ = FastLock()
        return lock

    @property
    def _send_lock(self) -> FastLock:
        lock = self._send_lock_
        if lock is None:
            lock = self._send_lock_ = FastLock()
        return lock

    def _drop_idle_locks(self) -> None:
        """Forget the locks while nobody holds them (after the handshake)."""
        assert self._write_lock_ is None or not self._write_lock_.locked()
        self._write_lock_ = None

    async def _wait_closed(self) -> None:
        """Wait until :meth:`_finish` ran (a checkpoint if it already has)."""
        if self._closed:
            await anyio.lowlevel.checkpoint()
            return
        if self._closed_event is None:
            self._closed_event = anyio.Event()
        await self._closed_event.wait()

    # -- state checks and failure ------------------------------------------------

    async def _ensure_open(self) -> None:
        """Return if OPEN; else raise as 8.1 does (waiting while CLOSING)."""
        state = self._machine.state
        if state is State.OPEN:
            return
        if state is State.CONNECTING:
            raise InvalidState("WebSocket connection isn't established yet")
        await self._raise_closed()

    async def _raise_closed(self) -> NoReturn:
        if not self._closed:
            await self._wait_closed()
        raise self._closed_exc()

    def _closed_exc(self) -> ConnectionClosed:
        """The exception describing how the connection closed."""
        exc = self._machine.close_exc()
        if exc.__cause__ is None and self._transport_exc is not None:
            exc.__cause__ = self._transport_exc
        return exc

    async def _fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 section 7.1.7).

        Send a close frame if still OPEN, without waiting for the answer; the
        reader then tears the connection down.
        """
        self._logger.debug(
            "! failing %s WebSocket connection with code %d",
            self._machine.state.name,
            code,
        )
        self._machine.fail(code, reason)
        with anyio.move_on_after(self.close_timeout) as scope:
            try:
                async with self._write_lock:
                    await self._send_pending()
            except _WriteError:
                pass
        if scope.cancelled_caught:
            self._abort()
        self._rearm()

    async def _send_close_frame(self, code: int, reason: str) -> None:
        """Send a close frame while OPEN; fail if it cannot go out within
        ``close_timeout`` (API.md (g), local close, step 1)."""
        with anyio.move_on_after(self.close_timeout) as scope:
            try:
                async with self._write_lock:
                    if self._machine.state is State.OPEN:
                        self._machine.send_close(code, reason)
                    await self._send_pending()
            except _WriteError:
                pass
        if scope.cancelled_caught:
            self._logger.debug("! timed out writing the close frame")
            self._abort()
        self._rearm()

    def _abort(self) -> None:
        """Stop reading and tear the connection down now (no handshake).

        Nothing is written any more: a frame may have been cut in the middle.
        """
        assert self._stream is not None, "no stream attached"
        self._aborted = True
        if self._read_scope is not None:
            self._read_scope.cancel()
        self._need_reader()  # it tears the connection down

    # -- writing -----------------------------------------------------------------

    async def _write(self, queue_frames: Callable[[], None]) -> None:
        """Queue frames with the machine and write them, under the write lock.

        Raises:
            ConnectionClosed: if the connection is no longer OPEN, or writing
                failed (after the connection closed).
        """
        # A send cancelled before it starts must not leave half a frame: it
        # raises here, before anything is queued.
        await self._check_cancelled()
        stream = self._stream
        lock = self._write_lock_
        if (
            isinstance(stream, NativeStream)
            and (lock is None or not lock.locked())
            and self._machine.state is State.OPEN
        ):
            await self._write_native(stream, queue_frames)
            return
        failed = False
        try:
            async with self._write_lock:
                if self._machine.state is not State.OPEN:
                    failed = True
                    # The reader may have queued a close frame or EOF and
                    # left them to the lock holder: write them now.
                    await self._send_pending()
                else:
                    try:
                        queue_frames()
                    finally:
                        await self._send_pending()
        except _WriteError:
            failed = True
        self._rearm()
        if failed:
            await self._raise_closed()

    async def _write_native(
        self, stream: NativeStream, queue_frames: Callable[[], None]
    ) -> None:
        """:meth:`_write` when the write lock is free, on anyws's own asyncio
        stream: it takes frames whole without waiting, so they are queued and
        written with no await in between, and nobody can slip in. Only the
        wait for the transport to drain holds the lock."""
        try:
            queue_frames()
        finally:
            self._flush_nowait(stream)
        if self._aborted:  # the transport failed
            await self._raise_closed()
        if stream._writing_paused:
            async with self._write_lock:
                try:
                    await stream.drain()
                except TRANSPORT_ERRORS as exc:
                    self._transport_failed(exc)
                finally:
                    # While the lock was held, the reader left its pongs and
                    # close frames to the holder: write them.
                    self._flush_nowait(stream)
            if self._aborted:
                await self._raise_closed()
        else:
            await stream.drain()  # no wait: a yield now and then
        self._rearm()

    def _take_outgoing(self) -> None:
        for chunk in self._machine.data_to_send():
            self._outbox.append(chunk)
            self._outbox_size += len(chunk)

    async def _send_pending(self) -> None:
        """Write everything pending. The caller holds ``_write_lock``."""
        assert self._stream is not None
        while True:
            self._take_outgoing()
            if self._aborted:
                self._outbox.clear()
                self._outbox_size = 0
                raise _WriteError("the connection was aborted")
            if not self._outbox:
                return
            if not self._outbox[0]:  # b"" asks for a half-close.
                del self._outbox[0]
                await self._send_eof()
                continue
            await self._stream_send(self._next_chunk())

    def _next_chunk(self) -> bytes:
        """Join pending frames into one write of at most ``write_limit``
        bytes (a larger frame is written alone, whole)."""
        outbox = self._outbox
        size = len(outbox[0])
        end = 1
        while (
            end < len(outbox)
            and outbox[end]
            and size + len(outbox[end]) <= self.write_limit
        ):
            size += len(outbox[end])
            end += 1
        self._outbox_size -= size
        if end == 1:
            return outbox.pop(0)
        data = b"".join(outbox[:end])
        del outbox[:end]
        return data

    async def _stream_send(self, data: bytes) -> None:
        assert self._stream is not None
        try:
            await self._stream.send(data)
        except anyio.get_cancelled_exc_class():
            if isinstance(self._stream, NativeStream):
                # It wrote ``data`` whole: hand it the rest of the outbox as
                # well (pongs or a close frame of the reader's may be in it),
                # and the connection goes on.
                self._flush_nowait(self._stream)
            else:
                # Part of a frame may be on the wire: the stream is unusable.
                self._abort()
            raise
        except TRANSPORT_ERRORS as exc:
            self._transport_failed(exc)
            raise _WriteError from exc

    def _flush_nowait(self, stream: NativeStream) -> None:
        """Give the stream everything pending, without waiting."""
        self._take_outgoing()
        if self._aborted:  # a frame may be cut: nothing more goes out
            self._outbox.clear()
            self._outbox_size = 0
            return
        try:
            for chunk in self._outbox:
                if chunk:
                    stream.write_nowait(chunk)
                else:
                    stream.write_eof_nowait()
                    self._logger.debug("x half-closing TCP connection")
        except TRANSPORT_ERRORS as exc:
            self._transport_failed(exc)
        finally:
            self._outbox.clear()
            self._outbox_size = 0

    async def _send_eof(self) -> None:
        assert self._stream is not None
        try:
            if isinstance(self._stream, TLSStream):
                # AnyIO's TLS streams cannot half-close; asking fails with
                # NotImplementedError, or TypeError once the peer's
                # close_notify has ended the session.
                raise NotImplementedError
            await self._stream.send_eof()
        except NotImplementedError:
            # TLS cannot half-close: closing the stream is the EOF.
            self._cannot_half_close = True
            self._poke_reader()
        except TRANSPORT_ERRORS as exc:
            self._transport_failed(exc)
            raise _WriteError from exc
        else:
            self._logger.debug("x half-closing TCP connection")

    def _transport_failed(self, exc: BaseException) -> None:
        if self._transport_exc is None:
            self._transport_exc = exc
        self._logger.debug("- transport error: %r", exc)
        self._abort()

    # -- the reader task ---------------------------------------------------------

    async def _run_reader(self) -> None:
        """Read and dispatch until the connection ends, then tear it down."""
        # Shielded: cancelling the caller's scope never cuts a closing
        # handshake short; only _abort() cancels it.
        scope = self._read_scope = anyio.CancelScope(shield=True)
        if self._aborted:  # before this task started
            scope.cancel()
        with scope:
            try:
                await self._read_loop()
            except Exception:
                logger.error("Error in data transfer", exc_info=True)
                await self._fail(1011)
        # No checkpoint since the read scope: outer cancellation cannot slip
        # in before the shield.
        with anyio.CancelScope(shield=True):
            await self._teardown()

    async def _read_loop(self) -> None:
        error = self._push_exc  # _push failed before this task started
        if error is not None:
            self._push_exc = None
            raise error
        if await self._read_while_open():
            return
        while await self._process_events():
            if not await self._receive():
                return

    async def _process_events(self) -> bool:
        """Dispatch what the machine parsed and write what it queued.

        Returns:
            ``False`` when the reader is done.
        """
        self._dispatch(self._machine.events_received())
        try:
            await self._flush_from_reader()
        except _WriteError:
            return False
        self._rearm()
        return not (self._machine.state is State.CLOSED or self._cannot_half_close)

    async def _read_while_open(self) -> bool:
        """Read while no close is expected, every read in one cancel scope.

        A scope per read costs about 2.5 µs on asyncio. This one is cancelled
        only while the reader waits (by :meth:`_poke_reader`, when a close
        starts elsewhere), and then left at once: anything unusual (a
        closing handshake, EOF, a transport error) continues in
        :meth:`_receive`, with a scope and a deadline per read.

        Returns:
            ``True`` when the reader is done.
        """
        assert self._stream is not None
        with anyio.CancelScope() as scope:
            while await self._process_events():
                if self._close_deadline != math.inf or self._machine.close_expected():
                    return False
                self._poked = False
                self._wait_scope = scope
                if not await self._read_once(backpressure=True, push=True):
                    return False
                if scope.cancel_called:
                    return False  # poked as the read ended: leave the scope
            return True
        return False  # poked while waiting

    async def _read_once(self, *, backpressure: bool, push: bool = False) -> bool:
        """Read once (in the caller's ``_wait_scope``) and feed the machine.

        Args:
            backpressure: first wait while ``max_queue`` messages wait.
            push: let a :class:`NativeStream` hand incoming bytes to
                :meth:`_push` while this waits (the open phase only).

        Returns:
            ``False`` when the stream ended or broke (already recorded).
        """
        assert self._stream is not None
        try:
            if backpressure:
                self._waiting_for_space = True
                await self._messages.wait_for_space(self._max_queue)
                self._waiting_for_space = False
            self._push_ready = push
            data = await self._stream.receive(self.read_limit)
        except anyio.EndOfStream:
            self._eof_received()
            return False
        except TRANSPORT_ERRORS as exc:
            self._connection_lost(exc)
            return False
        finally:
            self._push_ready = False
            self._wait_scope = None
            self._waiting_for_space = False
        if not data:  # _push() fed the machine and asked for this turn
            error = self._push_exc
            if error is not None:
                self._push_exc = None
                raise error
            return True
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug("- event = data_received(<%d bytes>)", len(data))
        self._machine.receive_data(data)
        return True

    def _push(self, data: bytes) -> bool | None:
        """Feed bytes that :class:`NativeStream` hands over from its
        ``data_received``: while no reader task runs (see
        :meth:`_start_reading`), or while the reader waits in the open phase.

        The messages go straight to the queue, without waking anybody.
        Without a reader task, pongs are written from here too, and the
        reader is started for anything else (a close frame, a protocol error,
        a full queue). With one, anything else than messages wakes it, as if
        its read returned, to do the rest.

        Returns:
            ``None`` to leave the bytes to the reader's next read (it is not
            waiting in the open phase), ``False`` when they were taken,
            ``True`` when they were taken and the reader must wake up.
        """
        no_reader = self._task_group is not None
        if not (no_reader or self._push_ready):
            return None
        machine = self._machine
        try:
            if self._logger.isEnabledFor(logging.DEBUG):
                self._logger.debug("- event = data_received(<%d bytes>)", len(data))
            machine.receive_data(data)
            control = self._take_events()
        except Exception as exc:  # the reader reports it, as its own
            self._push_exc = exc
            if no_reader:
                self._need_reader()
            return True
        if no_reader:
            self._pushed()
            return False
        return (
            control
            or bool(machine._writes)
            or machine.state is not State.OPEN
            or self._messages.full(self.max_queue)
        )

    def _take_events(self) -> bool:
        """Dispatch what the machine parsed; tell whether there was more than
        messages."""
        control = False
        for event in self._machine.events_received():
            if type(event) is Message:
                self._messages.put(event.data)
            else:
                self._dispatch([event])
                control = True
        return control

    def _pushed(self) -> None:
        """With no reader task, after the machine was fed: write its pongs,
        or start the reader if there is more to do than that."""
        machine = self._machine
        if machine.state is not State.OPEN:
            self._rearm()  # a closing handshake: see _close_step
            return
        if not self._messages.full(self.max_queue):
            if not machine._writes:
                return
            lock = self._write_lock_
            if lock is None or not lock.locked():
                # Nobody is writing: no frame can be cut by these.
                assert self._pusher is not None
                self._flush_nowait(self._pusher)
                return
            # The lock holder writes them before releasing the lock, unless
            # too much is pending: then the reader waits for the lock and
            # stops reading meanwhile.
            self._take_outgoing()
            if self._outbox_size <= self.write_limit:
                return
        self._need_reader()

    def _start_reading(self, task_group: Spawner) -> None:
        """Start reading an OPEN connection.

        On a :class:`NativeStream`, no reader task is started: the stream
        hands incoming bytes to :meth:`_push` from its ``data_received``,
        which queues messages and writes pongs. The reader task starts, in
        ``task_group``, once something needs a task (:meth:`_need_reader`):
        a close frame, EOF or a broken connection, an error, a full queue, a
        closing handshake or an abort started here. An idle connection costs
        one task less (about 5 KiB), and opening one costs a task less.
        Elsewhere (trio, TLS, AnyIO's stream) the reader task starts now.
        """
        self._reader_running = True
        stream = self._stream
        if not isinstance(stream, NativeStream):
            task_group.start_soon(self._run_reader, name=f"anyws {self.side} reader")
            return
        self._task_group = task_group
        self._pusher = stream
        # What the machine parsed along with the handshake comes first.
        try:
            self._take_events()
        except Exception as exc:  # pragma: no cover - as in _push
            self._push_exc = exc
            self._need_reader()
            return
        self._pushed()
        if self._task_group is not None:
            stream.start_push(self._stream_ended)

    def _need_reader(self) -> None:
        """Start the reader task, if the connection runs without one."""
        task_group = self._task_group
        if task_group is None:
            return
        self._task_group = None
        self._cancel_close_timer()
        assert self._pusher is not None
        self._pusher.stop_push()
        self._pusher = None
        self._logger.debug("- starting the reader task")
        task_group.start_soon(self._run_reader, name=f"anyws {self.side} reader")

    def _stream_ended(self) -> None:
        """The stream's EOF, or the connection broke, while no reader task
        runs: record it, and close (see :meth:`_close_step`)."""
        stream = self._pusher
        assert stream is not None
        if stream._exc is not None:
            self._connection_lost(stream._exc)
        else:
            self._eof_received()
        self._take_events()
        self._rearm()

    def _close_step(self) -> None:
        """Run the closing handshake without a reader task, as far as it
        goes without waiting.

        Write the close frame or the EOF the machine queued; once the stream
        ended, close it and finish. The wait for the peer's close frame or
        EOF is bounded by a timer of the loop, at the deadline
        :meth:`_rearm` set. Anything that needs a task (the write lock is
        held, the transport must drain before closing, the timeout expired)
        starts the reader, which carries on from there.
        """
        stream = self._pusher
        assert stream is not None
        lock = self._write_lock_
        if lock is not None and lock.locked():
            self._need_reader()  # it waits for the lock
            return
        if stream._lost:  # nothing can be written any more
            self._take_outgoing()
            self._outbox.clear()
            self._outbox_size = 0
        else:
            self._flush_nowait(stream)
            if self._task_group is None:  # the write failed: aborted
                return
            self._update_deadline()  # EOF sent is a step of its own
        if self._machine.state is State.CLOSED:
            self._logger.debug("x closing TCP connection")
            if stream.close_nowait():
                self._finish()
            else:  # the transport must drain first, within close_timeout
                self._need_reader()
            return
        if self._close_timer is None:
            self._close_timer = stream._get_loop().call_at(
                self._close_deadline, self._need_reader
            )

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    async def _receive(self) -> bool:
        """Read once and feed the machine.

        Returns:
            ``False`` when the closing handshake timed out: stop reading.
        """
        assert self._stream is not None
        self._poked = False
        with anyio.CancelScope(deadline=self._close_deadline) as scope:
            self._wait_scope = scope
            await self._read_once(backpressure=not self._machine.close_expected())
            return True
        if self._poked:
            return True
        self._logger.debug("! timed out waiting for TCP close")
        return False

    def _eof_received(self) -> None:
        self._logger.debug("- event = eof_received()")
        self._machine.receive_eof()

    def _connection_lost(self, exc: BaseException) -> None:
        self._logger.debug("- event = connection_lost(%r)", exc)
        self._transport_exc = exc
        self._machine.receive_eof()

    def _max_queue(self) -> int | None:
        return self.max_queue

    def _poke_reader(self) -> None:
        """Interrupt the reader's wait so that it looks at the state again."""
        if self._wait_scope is not None:
            self._poked = True
            self._wait_scope.cancel()

    def _rearm(self) -> None:
        """Start a new ``close_timeout`` at each step of the closing sequence.

        The steps: a close frame sent (or a failure), the peer's close frame
        received, EOF sent. The reader's wait is bounded by the deadline.
        """
        if not self._machine.close_expected():
            return
        self._update_deadline()
        if self._task_group is not None:  # no reader task
            self._close_step()

    def _update_deadline(self) -> None:
        """Set the deadline of the current step of the closing sequence."""
        machine = self._machine
        milestone = (machine.close_rcvd is not None, machine.eof_sent)
        if milestone == self._milestone:
            return
        self._milestone = milestone
        pusher = self._pusher
        if pusher is not None:  # maybe in a callback of the loop: no task
            self._close_deadline = pusher._get_loop().time() + self.close_timeout
            self._cancel_close_timer()
            return
        self._close_deadline = anyio.current_time() + self.close_timeout
        if self._wait_scope is not None:
            if not math.isinf(self._wait_scope.deadline):
                self._wait_scope.deadline = self._close_deadline
                if self._waiting_for_space:
                    self._poke_reader()
            else:
                # The open phase's shared scope: a deadline would outlive
                # this wait; interrupt it instead, _receive sets one.
                self._poke_reader()

    async def _flush_from_reader(self) -> None:
        """Write the pongs and close frames the machine queued.

        If another task holds the write lock, it writes them before releasing
        it; the reader then keeps reading, unless too much is pending.
        """
        self._take_outgoing()
        if not self._outbox:
            return
        lock = self._write_lock_
        if lock is not None and lock.locked() and self._outbox_size <= self.write_limit:
            return
        async with self._write_lock:
            await self._send_pending()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Message):
                self._messages.put(event.data)
            elif isinstance(event, PongReceived):
                self._acknowledge(event)
            elif isinstance(event, PingReceived):
                self._logger.debug("- received ping, sending pong")
            else:
                # CloseReceived: no message follows a close frame. (Handshake
                # events only come before the reader starts.)
                self._messages.close()

    def _acknowledge(self, event: PongReceived) -> None:
        if not event.acknowledged:
            self._logger.debug("- received unsolicited pong")
        for payload in event.acknowledged:
            # Every ping goes through ping(), which registers its waiter
            # before the machine can see the pong: the waiter is there.
            self._pings.pop(payload)._acknowledge()
        if len(event.acknowledged) > 1:
            self._logger.debug(
                "- acknowledged %d earlier pings",
                len(event.acknowledged) - 1,
            )

    async def _teardown(self) -> None:
        """Close the stream, record the outcome, wake everyone. Shielded."""
        assert self._stream is not None
        self._logger.debug("x closing TCP connection")
        stream = self._stream
        if isinstance(stream, NativeStream) and stream.close_nowait():
            pass  # nothing left to flush: closed without waiting
        elif not await aclose_within(stream, self.close_timeout):
            self._logger.debug("x aborting TCP connection")
        self._finish()

    def _finish(self) -> None:
        """Mark the connection CLOSED once its stream is closed."""
        if self._machine.state is not State.CLOSED:
            self._machine.receive_eof()
        self._reader_running = False
        self._task_group = self._pusher = self._spawner = self._call_later = None
        self._cancel_close_timer()
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
        self._messages.close()
        if self._pings:
            self._logger.debug("- aborting %d pending pings", len(self._pings))
            exc = self._closed_exc()
            for waiter in self._pings.values():
                waiter._abort(exc)
            self._pings.clear()
        if self._keepalive_scope is not None:
            self._keepalive_scope.cancel()
        self._closed = True
        if self._closed_event is not None:
            self._closed_event.set()
        self._logger.debug(
            "x code = %s, reason = %s",
            self._machine.close_code,
            self._machine.close_reason or "[no reason]",
        )

    # -- opening handshake helpers, used by client.py and server.py --------------

    async def _handshake_write(self) -> None:
        """Write what the machine queued during the opening handshake.

        Raises:
            ConnectionError: the stream is broken (chained from the cause).
        """
        try:
            async with self._write_lock:
                await self._send_pending()
        except _WriteError as exc:
            raise ConnectionError("connection lost during the opening handshake") from (
                exc.__cause__
            )

    async def _handshake_event(self) -> RequestReceived | ResponseReceived:
        """Read until the machine parsed the handshake request or response.

        Raises:
            InvalidMessage: (from the machine) it could not be parsed; its
                cause is an ``EOFError`` if the stream ended first.
            EOFError: the stream ended and the machine recorded nothing.
            Exception: a transport error (one of ``TRANSPORT_ERRORS``).
        """
        assert self._stream is not None
        eof = False
        while True:
            # Before the handshake completes, the machine emits nothing else.
            events = self._machine.events_received()
            if events:
                event = events[0]
                assert isinstance(event, (RequestReceived, ResponseReceived))
                return event
            if self._machine.handshake_exc is not None:
                raise self._machine.handshake_exc
            if eof:  # pragma: no cover - the machine records EOF as handshake_exc
                raise EOFError("connection closed during the opening handshake")
            try:
                data = await self._stream.receive(self.read_limit)
            except anyio.EndOfStream:
                eof = True
                self._machine.receive_eof()
            else:
                self._machine.receive_data(data)

    async def _close_transport(self) -> None:
        """Close the stream without a closing handshake (failed opening)."""
        assert self._stream is not None
        await aclose_within(self._stream, self.close_timeout)
        self._finish()
