"""Messages in and out of a connection: the receive queue, ping waiters,
``async for``, and the sources of fragmented messages.

These are small objects used by :class:`~anyws.protocol.WebSocketCommonProtocol`.
They only rely on :class:`anyio.Event`, so they work the same on every AnyIO
backend.

Invariants of :class:`MessageQueue`:

* a message leaves the queue only when :meth:`MessageQueue.get` returns it:
  the wait and the removal are separated by no checkpoint, so cancelling a
  ``get`` (for example with ``move_on_after``) never loses a message;
* at most one task waits in :meth:`MessageQueue.get` at a time;
* once closed, the queue still hands out the messages it holds, then ``None``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Generator, Iterable
from typing import Any

import anyio

from ._sync import EventLike
from ._types import Data
from .exceptions import ConcurrencyError, ConnectionClosed, ConnectionClosedOK

__all__ = (
    "END",
    "AsyncSource",
    "End",
    "FragmentSource",
    "MessageIterator",
    "MessageQueue",
    "PingWaiter",
    "Sendable",
    "SyncSource",
    "contiguous",
    "fragment_kind",
)

#: What ``send`` accepts as one message (or as one fragment of a message).
Sendable = str | bytes | bytearray | memoryview

_BYTES_LIKE = (bytes, bytearray, memoryview)


class MessageQueue:
    """A FIFO of whole messages between the reader task and ``recv()``.

    The reader calls :meth:`put` and waits in :meth:`wait_for_space` before
    reading more from the network: that is how ``max_queue`` turns into
    backpressure on the peer.
    """

    __slots__ = (
        "_messages",
        "_closed",
        "_getting",
        "new_event",
        "_not_empty",
        "_not_full",
        "_limit",
    )

    def __init__(self) -> None:
        # Made on the first message: an empty deque is 0.6 KiB, and idle
        # connections are many.
        self._messages: deque[Data] | None = None
        self._closed = False
        self._getting = False
        # Events cannot be reset: a fresh one is made for each wait, by
        # new_event (the connection may give a cheaper one, see _sync.py).
        self.new_event: Callable[[], EventLike] = anyio.Event
        self._not_empty: EventLike | None = None
        self._not_full: EventLike | None = None
        # The limit the reader waits on, while it waits in wait_for_space.
        self._limit: Callable[[], int | None] | None = None

    def __len__(self) -> int:
        """How many messages wait."""
        return 0 if self._messages is None else len(self._messages)

    def put(self, message: Data) -> None:
        """Append a message; wake the task waiting in :meth:`get`."""
        if self._messages is None:
            self._messages = deque()
        self._messages.append(message)
        if self._not_empty is not None:
            self._not_empty.set()

    def close(self) -> None:
        """Mark the end of the messages; wake every waiter. Idempotent."""
        self._closed = True
        if self._not_empty is not None:
            self._not_empty.set()
        if self._not_full is not None:
            self._not_full.set()

    async def get(self) -> Data | None:
        """Return the next message, waiting for one if needed.

        Returns:
            The oldest message, or ``None`` once the queue is closed and
            empty.

        Raises:
            ConcurrencyError: if another task is already waiting here.
        """
        if self._getting:
            raise ConcurrencyError(
                "cannot call recv while another coroutine is already "
                "waiting for the next message"
            )
        self._getting = True
        try:
            while not self._messages:
                if self._closed:
                    return None
                self._not_empty = self.new_event()
                await self._not_empty.wait()
            # No checkpoint between the end of the wait and the removal: a
            # cancellation either happens before (the message stays) or not
            # at all (the message is returned).
            assert self._messages is not None
            message = self._messages.popleft()
            # Wake the reader only once there is room: waking it for every
            # message of a full queue costs a scheduler turn each time.
            limit = self._limit
            if limit is not None and not self.full(limit()):
                assert self._not_full is not None
                self._not_full.set()
            return message
        finally:
            self._getting = False

    def full(self, max_queue: int | None) -> bool:
        """Whether the queue holds ``max_queue`` messages or more (and is
        not closed); ``None`` means no limit."""
        return max_queue is not None and len(self) >= max_queue and not self._closed

    async def wait_for_space(self, max_queue: Callable[[], int | None]) -> None:
        """Wait until the queue holds fewer than ``max_queue()`` messages.

        Args:
            max_queue: returns the limit; ``None`` means no limit. It is
                called again whenever a message leaves the queue, so changing
                the limit applies at once.
        """
        while self.full(max_queue()):
            self._not_full = self.new_event()
            self._limit = max_queue
            try:
                await self._not_full.wait()
            finally:
                self._limit = None


class PingWaiter:
    """What :meth:`~anyws.protocol.WebSocketCommonProtocol.ping` returns.

    Awaiting it returns ``None`` once the matching pong has arrived, or raises
    :exc:`~anyws.exceptions.ConnectionClosed` if the connection closed first.
    It may be awaited several times, by several tasks, or never. Cancelling
    one await affects nothing else: the waiter only observes an event.
    """

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._exc: ConnectionClosed | None = None
        self._on_pong: Callable[[], None] | None = None

    def done(self) -> bool:
        """Whether the pong arrived or the connection closed."""
        return self._event.is_set()

    def _acknowledge(self) -> None:
        self._event.set()
        if self._on_pong is not None:
            self._on_pong()

    def _call_on_pong(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the pong arrives (now if it has already);
        never if the connection closes first (the caller checks that it has
        not closed yet)."""
        if self.done():
            callback()
        else:
            self._on_pong = callback

    def _abort(self, exc: ConnectionClosed) -> None:
        # Only called for waiters still pending (acknowledged ones are gone).
        self._exc = exc
        self._event.set()

    async def wait(self) -> None:
        """Wait for the pong; same as awaiting the waiter itself.

        Raises:
            ConnectionClosed: the connection closed before the pong arrived.
        """
        await self._event.wait()
        if self._exc is not None:
            # A fresh instance per await: the same exception object raised
            # in several tasks would collect all their tracebacks.
            exc = type(self._exc)(
                self._exc.code,
                self._exc.reason,
                rcvd=self._exc.rcvd,
                sent=self._exc.sent,
            )
            raise exc from self._exc.__cause__

    def __await__(self) -> Generator[Any, None, None]:
        return self.wait().__await__()


class MessageIterator:
    """``async for message in ws``: stops silently on a normal closure.

    Args:
        recv: the connection's ``recv``.
    """

    def __init__(self, recv: Callable[[], Awaitable[Data | None]]) -> None:
        self._recv = recv

    def __aiter__(self) -> MessageIterator:
        return self

    async def __anext__(self) -> Data:
        try:
            message = await self._recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        if message is None:  # legacy_recv
            raise StopAsyncIteration
        return message


def contiguous(data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """Copy a non-contiguous memoryview, in logical order; return the rest."""
    if isinstance(data, memoryview) and not data.c_contiguous:
        return data.tobytes()
    return data


def fragment_kind(
    item: object, message: str = "data must be str or bytes-like"
) -> bool:
    """``True`` for text, ``False`` for binary; ``TypeError(message)`` else."""
    if isinstance(item, str):
        return True
    if isinstance(item, _BYTES_LIKE):
        return False
    raise TypeError(message)


class End:
    """Marks the end of a fragment source."""


#: The end of a fragment source.
END = End()


class FragmentSource:
    """The items of a fragmented message, from a sync or async iterable."""

    async def next(self) -> Sendable | End:  # pragma: no cover - abstract
        """Return the next item, or :data:`END`."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the iterator (an async generator is closed)."""


class SyncSource(FragmentSource):
    """Fragments from an iterable."""

    def __init__(self, iterable: Iterable[Sendable]) -> None:
        self._iterator = iter(iterable)

    async def next(self) -> Sendable | End:
        return next(self._iterator, END)


class AsyncSource(FragmentSource):
    """Fragments from an async iterable."""

    def __init__(self, iterable: AsyncIterable[Sendable]) -> None:
        self._iterator = aiter(iterable)

    async def next(self) -> Sendable | End:
        return await anext(self._iterator, END)

    async def aclose(self) -> None:
        # Async generators need an explicit close when not exhausted (trio
        # warns otherwise); other async iterators may have no aclose.
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()
