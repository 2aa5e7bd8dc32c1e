"""The crafted peer: it writes frames bit by bit and judges what comes back.

It plays the client against the anyws server and the server against the
anyws client. It writes the opening handshake and every frame itself
(RFC 6455, 4 and 5.2), masks as a client must (5.3), and reads the anyws
peer's frames with its own parser, turning them into :class:`Item` values.
Anything the anyws peer does wrong on the wire becomes a ``violation`` item,
so that the case fails with a description instead of hanging.

One task reads while another runs the script: neither side can block the
other on full TCP buffers, whatever the sizes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Sequence

import anyio
import anyio.abc

from ._deflate import Codec, Params, agreement_problems, parse_extensions
from ._model import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    DeflateSetup,
    Frame,
    Item,
    Message,
    Step,
    Sync,
    close_frame,
    fragments,
)

__all__ = ("PROBE", "CraftedPeer", "encode", "mask_payload")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Payload of the ping sent after the script when the anyws peer should have
#: closed: a pong for it proves that it did not (and ends the case quickly).
PROBE = b"conformance-probe"

_CONTROL = (CLOSE, PING, PONG)
_DATA = (TEXT, BINARY)
_WRITE_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a key (RFC 6455, 4.2.2, item 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def mask_payload(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455, 5.3)."""
    if not data:
        return b""
    size = len(data)
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        size, "big"
    )


def encode(frame: Frame, *, mask: bool, key: bytes | None = None) -> bytes:
    """The bytes of a crafted frame (RFC 6455, 5.2), invalid ones included."""
    mask = mask != frame.wrong_mask
    length = len(frame.payload) if frame.length is None else frame.length
    first = (0x80 if frame.fin else 0) | (frame.rsv & 7) << 4 | (frame.opcode & 15)
    mask_bit = 0x80 if mask else 0
    bits = frame.length_bits or (7 if length < 126 else 16 if length < 65536 else 64)
    if bits == 7:
        head = bytes((first, mask_bit | length))
    elif bits == 16:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", length)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", length)
    if not mask:
        return head + frame.payload
    key = key or os.urandom(4)
    return head + key + mask_payload(frame.payload, key)


def _is_sendable_code(code: int) -> bool:
    # RFC 6455, 7.4.1 and 7.4.2, with 1012-1014 from the IANA registry.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_item(payload: bytes) -> Item:
    """Judge the close frame the anyws peer sent (RFC 6455, 5.5.1 and 7.4)."""
    if not payload:
        return Item("close", None, "")
    if len(payload) == 1:
        return Item("violation", "close frame with a 1-byte payload")
    (code,) = struct.unpack("!H", payload[:2])
    if not _is_sendable_code(code):
        return Item("violation", f"close code {code} may not be sent")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        return Item("violation", f"close reason is not UTF-8: {payload[2:]!r}")
    return Item("close", code, reason)


class CraftedPeer:
    """One end of a connection with an anyws peer, written by hand.

    Args:
        stream: the TCP stream.
        client: whether the crafted peer is the client (it then masks).
    """

    def __init__(self, stream: anyio.abc.ByteStream, *, client: bool) -> None:
        self.stream = stream
        self.client = client
        self.codec: Codec | None = None
        #: What the anyws peer sent, in order.
        self.items: list[Item] = []
        self.close_sent = False
        self.close_received = False
        #: The reader stopped (EOF, or the closing handshake is over).
        self.done = False
        self._buffer = bytearray()
        self._lock = anyio.Lock()
        self._changed = anyio.Event()
        self._opcode: int | None = None
        self._compressed = False
        self._parts: list[bytes] = []

    # -- opening handshake (RFC 6455, 4.1 and 4.2) -------------------------------

    async def _read_head(self) -> tuple[str, dict[str, str]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self._buffer[: end + 4]).decode("latin-1")
        del self._buffer[: end + 4]
        first, *lines = head.split("\r\n")
        headers: dict[str, str] = {}
        for line in filter(None, lines):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return first, headers

    async def open_as_client(self, port: int, setup: DeflateSetup | None) -> None:
        """Send the request (offering ``setup.offers``) and check the 101."""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET / HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if setup is not None:
            offers = ", ".join(
                offer if isinstance(offer, str) else offer.header()
                for offer in setup.offers
            )
            lines.append(f"Sec-WebSocket-Extensions: {offers}")
        await self.stream.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        first, headers = await self._read_head()
        assert first.startswith("HTTP/1.1 101 "), first
        assert headers.get("sec-websocket-accept") == accept_key(key), headers
        assert headers.get("upgrade", "").lower() == "websocket", headers
        assert "upgrade" in headers.get("connection", "").lower(), headers
        if setup is not None:
            self._check_answer(setup, headers.get("sec-websocket-extensions"))
        elif "sec-websocket-extensions" in headers:
            self._record(Item("violation", "extension answered, none offered"))

    def _check_answer(self, setup: DeflateSetup, header: str | None) -> None:
        """Check the server's answer (RFC 7692, 7.1) and set up the codec."""
        offers = [offer for offer in setup.offers if isinstance(offer, Params)]
        try:
            answers = parse_extensions(header or "", offer=False)
        except ValueError as exc:
            self._record(Item("violation", f"bad answer {header!r}: {exc}"))
            return
        if not answers:
            if not setup.expect_declined:
                self._record(Item("violation", "permessage-deflate declined"))
            return
        answer = answers[0]
        if len(answers) > 1 or not isinstance(answer, Params):
            self._record(Item("violation", f"unexpected answer {header!r}"))
            return
        if setup.expect_declined:
            self._record(Item("violation", f"accepted: {header!r}"))
            return
        if setup.expect_answer is not None and answer != setup.expect_answer:
            self._record(Item("violation", f"answer {header!r}"))
        fits = [offer for offer in offers if not agreement_problems(offer, answer)]
        if not fits:
            problems = agreement_problems(offers[0], answer) if offers else []
            self._record(Item("violation", f"{header!r}: {'; '.join(problems)}"))
            return
        self.codec = Codec(answer, client=True, offer=fits[0])

    async def open_as_server(self, setup: DeflateSetup | None) -> None:
        """Read the request, check the offer, answer 101 (maybe declining)."""
        first, headers = await self._read_head()
        assert first.startswith("GET / HTTP/1.1"), first
        assert headers.get("sec-websocket-version") == "13", headers
        offer_header = headers.get("sec-websocket-extensions")
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}",
        ]
        if setup is None:
            if offer_header is not None:
                self._record(Item("violation", f"offered {offer_header!r}"))
        else:
            expected = setup.client_offer or Params(client_max_window_bits=True)
            offers = parse_extensions(offer_header or "", offer=True)
            if offers != [expected]:
                self._record(Item("violation", f"offer {offer_header!r}"))
            answer = setup.answer
            if isinstance(answer, Params):
                self.codec = Codec(answer, client=False)
                answer = answer.header()
            if answer is not None:
                lines.append(f"Sec-WebSocket-Extensions: {answer}")
        await self.stream.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    # -- reading -------------------------------------------------------------------

    async def _fill(self) -> None:
        try:
            self._buffer += await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            raise EOFError from exc

    async def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def _read_frame(self) -> tuple[bool, int, int, bool, bytes]:
        first, second = await self._read(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._read(8))
        masked = bool(second & 0x80)
        key = await self._read(4) if masked else b""
        payload = await self._read(length)
        if masked:
            payload = mask_payload(payload, key)
        return bool(first & 0x80), first >> 4 & 7, first & 0x0F, masked, payload

    def _record(self, item: Item) -> None:
        self.items.append(item)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def read_loop(self) -> None:
        """Read until EOF (client) or the end of the closing handshake (server).

        RFC 6455, 7.1.1: the server closes TCP first, so the crafted client
        waits for EOF; the crafted server stops once both close frames went.
        """
        try:
            while not (self.close_received and not self.client):
                fin, rsv, opcode, masked, payload = await self._read_frame()
                if self.close_received:
                    self._record(Item("violation", f"opcode {opcode} after close"))
                    continue
                await self._handle(fin, rsv, opcode, masked, payload)
        except EOFError:
            if not self.close_received:
                self._record(Item("eof"))
        finally:
            self.done = True
            self._notify()

    def _frame_violation(self, fin: bool, rsv: int, opcode: int, masked: bool) -> str:
        """Why a frame of the anyws peer breaks RFC 6455, 5 or RFC 7692, 6."""
        if masked == self.client:
            return "masked frame from a server" if masked else "unmasked client frame"
        if opcode not in (*_DATA, CONT, *_CONTROL):
            return f"reserved opcode {opcode}"
        if rsv & 3 or (rsv and (opcode not in _DATA or self.codec is None)):
            return f"reserved bits {rsv:03b} on opcode {opcode}"
        if opcode in _CONTROL and not fin:
            return "fragmented control frame"
        if opcode == CONT and self._opcode is None:
            return "continuation frame without a message"
        if opcode in _DATA and self._opcode is not None:
            return "new message inside a fragmented one"
        return ""

    async def _handle(
        self, fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes
    ) -> None:
        problem = self._frame_violation(fin, rsv, opcode, masked)
        if problem or (opcode in _CONTROL and len(payload) > 125):
            self._record(Item("violation", problem or "control frame over 125 bytes"))
        elif opcode == CLOSE:
            await self._receive_close(payload)
        elif opcode in (PING, PONG):
            self._record(Item("ping" if opcode == PING else "pong", payload))
        else:
            if opcode != CONT:
                self._opcode, self._compressed = opcode, bool(rsv)
            self._parts.append(payload)
            if fin:
                self._record(self._message())

    def _message(self) -> Item:
        """The message just completed, decompressed and decoded."""
        opcode, payload = self._opcode, b"".join(self._parts)
        self._opcode, self._parts = None, []
        if self._compressed:
            assert self.codec is not None
            try:
                payload = self.codec.decompress(payload)
            except zlib.error as exc:
                return Item("violation", f"cannot decompress: {exc}")
        if opcode == BINARY:
            return Item("binary", payload)
        try:
            return Item("text", payload.decode())
        except UnicodeDecodeError:
            return Item("violation", "text message is not UTF-8")

    async def _receive_close(self, payload: bytes) -> None:
        item = _close_item(payload)
        self.close_received = True
        self._record(item)
        if not self.close_sent:
            # Echo the code, as Autobahn does (RFC 6455, 5.5.1).
            code = item.data if item.kind == "close" else 1002
            assert code is None or isinstance(code, int)
            await self._send_close(close_frame(code))

    # -- writing -------------------------------------------------------------------

    async def _write(self, data: bytes, chunk: int | None = None) -> bool:
        """Write bytes (in ``chunk``-sized writes); ``False`` if the peer is gone."""
        async with self._lock:
            try:
                if chunk is None:
                    await self.stream.send(data)
                    return True
                for start in range(0, len(data), chunk):
                    if self.close_received:
                        # Stop here: the close echo must not wait for the rest.
                        return False
                    await self.stream.send(data[start : start + chunk])
            except _WRITE_ERRORS:
                return False
        return True

    async def _send_close(self, frame: Frame) -> None:
        self.close_sent = True
        await self._write(encode(frame, mask=self.client))

    def _message_frames(self, message: Message) -> list[Frame]:
        data = message.data
        if isinstance(data, str):
            opcode, payload = TEXT, data.encode()
        else:
            opcode, payload = (TEXT if message.text else BINARY), data
        if message.raw is not None:
            payload = message.raw
        elif message.compress:
            assert self.codec is not None, "permessage-deflate was not agreed"
            payload = self.codec.compress(payload, final_block=message.final_block)
        size = message.frag or max(len(payload), 1)
        pieces = [payload[at : at + size] for at in range(0, len(payload), size)]
        frames: list[Frame] = []
        for index, frame in enumerate(fragments(opcode, pieces or [b""])):
            rsv = 0
            if message.compress and (index == 0 or message.rsv1_on_continuation):
                rsv = 4  # RFC 7692, 6.1: RSV1 on the first frame only
            frames.append(Frame(frame.opcode, frame.payload, frame.fin, rsv))
            if message.ping_between is not None and not frame.fin:
                frames.append(Frame(PING, message.ping_between))
        return frames

    def serialize(self, parts: Sequence[Frame | Message]) -> bytes:
        """The bytes of frames and messages, masked with one fresh key.

        One key per step rather than per frame keeps the 262144-frame cases
        quick; what is checked is that the anyws server unmasks each frame.
        """
        key = os.urandom(4)
        frames: list[Frame] = []
        for part in parts:
            frames += (
                self._message_frames(part) if isinstance(part, Message) else [part]
            )
        return b"".join(encode(frame, mask=self.client, key=key) for frame in frames)

    # -- the script ------------------------------------------------------------------

    async def _wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def _wait_for_items(self, count: int) -> None:
        await self._wait(lambda: len(self.items) >= count or self._over())

    def _over(self) -> bool:
        return self.close_received or self.done

    async def run(self, steps: Sequence[Step]) -> None:
        """Play the script, then make sure the connection ends.

        If the script sent no close frame and the anyws peer did not close, a
        ping goes out: the anyws peer handles frames in order, so a pong for
        it means that it accepted everything it was sent. The crafted peer
        then closes with 1000.
        """
        for step in steps:
            if self._over():
                break
            if isinstance(step, Sync):
                await self._wait_for_items(step.count)
                continue
            if any(isinstance(p, Frame) and p.opcode == CLOSE for p in step.parts):
                self.close_sent = True
            if not await self._write(self.serialize(step.parts), step.chunk):
                break
        if not self.close_sent and not self._over():
            await self._write(encode(Frame(PING, PROBE), mask=self.client))
            await self._wait(lambda: self._over() or Item("pong", PROBE) in self.items)
            if not self._over():
                await self._send_close(close_frame(1000))
        await self._wait(lambda: self.done)
