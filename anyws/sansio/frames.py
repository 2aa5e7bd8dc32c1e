"""WebSocket frames (RFC 6455, section 5).

This module turns bytes into :class:`Frame` objects and back. It knows the
wire format (section 5.2), masking (section 5.3), the rules on control frames
(section 5.5) and the close frame payload (sections 5.5.1 and 7.4). It does no
I/O: :meth:`Frame.parse` is a generator that pulls bytes through a
``read_exact`` generator such as :meth:`StreamReader.read_exact
<anyws.sansio._buffer.StreamReader.read_exact>`.

It also keeps the module-level helpers of websockets 8.1's ``framing`` module
(``OP_*`` constants, :func:`prepare_data`, :func:`encode_data`,
:func:`parse_close`, :func:`serialize_close`).
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..exceptions import CLOSE_CODE_EXPLANATIONS, PayloadTooBig, ProtocolError

if TYPE_CHECKING:
    from .extensions.base import Extension

__all__ = (
    "CTRL_OPCODES",
    "DATA_OPCODES",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Close",
    "CloseCode",
    "Frame",
    "Opcode",
    "apply_mask",
    "encode_data",
    "is_valid_close_code",
    "parse_close",
    "prepare_ctrl",
    "prepare_data",
    "serialize_close",
)


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455, 5.2)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


OP_CONT = Opcode.CONT
OP_TEXT = Opcode.TEXT
OP_BINARY = Opcode.BINARY
OP_CLOSE = Opcode.CLOSE
OP_PING = Opcode.PING
OP_PONG = Opcode.PONG

#: Opcodes of data frames (RFC 6455, 5.6).
DATA_OPCODES = (OP_CONT, OP_TEXT, OP_BINARY)

#: Opcodes of control frames (RFC 6455, 5.5).
CTRL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

# Lookup tables for the parser's hot path: a dict lookup is cheaper than
# ``Opcode(n)`` and its ValueError, and a frozenset than a tuple scan.
_OPCODES = {opcode.value: opcode for opcode in Opcode}
_CTRL = frozenset(CTRL_OPCODES)

# RFC 6455, 5.5: control frames carry at most 125 bytes of payload, so a close
# reason has at most 123 bytes once the 2-byte code is in.
_MAX_CTRL_PAYLOAD = 125
_MAX_CLOSE_REASON = _MAX_CTRL_PAYLOAD - 2

# The three header shapes of RFC 6455, 5.2: 7-bit, 16-bit and 64-bit lengths.
_HEAD = struct.Struct("!BB")
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")
_LEN_16 = struct.Struct("!H")
_LEN_64 = struct.Struct("!Q")
_CODE = struct.Struct("!H")

# Bits of the first two header bytes (RFC 6455, 5.2).
_FIN = 0x80
_RSV1 = 0x40
_RSV2 = 0x20
_RSV3 = 0x10
_OPCODE = 0x0F
_MASK = 0x80
_LENGTH = 0x7F

# Where logged payloads are cut (see ``Frame.__str__``).
_MAX_LOGGED = 75


class CloseCode(enum.IntEnum):
    """Close codes defined by RFC 6455 (7.4.1) and the IANA registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


def is_valid_close_code(code: int) -> bool:
    """Tell whether a close code may appear in a close frame.

    RFC 6455, 7.4: 1004 is reserved and 1005, 1006 and 1015 are only recorded
    locally, never sent. 1012 to 1014 come from the IANA registry (accepted as
    in websockets 9.0, see spec (g)). 3000 to 4999 are for libraries and
    applications.

    Args:
        code: the close code.

    Returns:
        ``True`` for 1000-1003, 1007-1014 and 3000-4999.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _apply_mask_py(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with ``mask`` repeated (RFC 6455, 5.3), in pure Python.

    The payload is XORed as one big integer: CPython does that in C, which is
    much faster than a loop over the bytes.

    Args:
        data: the payload, masked or not (masking is its own inverse).
        mask: the 4-byte masking key.

    Returns:
        The payload, unmasked or masked.

    Raises:
        ValueError: if ``mask`` is not 4 bytes long.
        TypeError: if ``data`` is not bytes-like.
    """
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    if isinstance(data, memoryview):
        # ``cast`` gives a byte view whose ``len`` counts bytes; it needs a
        # C-contiguous buffer, so other views are copied first.
        data = data.cast("B") if data.c_contiguous else data.tobytes()
    elif not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes-like")
    size = len(data)
    if not size:
        return b""
    repeated = bytes(mask) * ((size + 3) // 4)
    if len(repeated) != size:
        repeated = repeated[:size]
    key = int.from_bytes(repeated, "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(size, "big")


_Masker = Callable[[bytes | bytearray | memoryview, bytes], bytes]


def _select_apply_mask(no_speedups: bool) -> _Masker:
    """Pick the C accelerator of spec (m) if it was built, else pure Python.

    Both behave the same (``tests/sansio/test_speedups.py`` checks it); the C
    one is about 12 times faster on 16 bytes and 100 times on 1 MiB
    (``benchmarks/bench_mask.py``).

    Args:
        no_speedups: force the pure-Python function, as the environment
            variable ``ANYWS_NO_SPEEDUPS=1`` does.
    """
    if no_speedups:
        return _apply_mask_py
    try:
        from ._speedups import apply_mask as apply_mask_c
    except ImportError:  # not built: no C compiler, or ANYWS_NO_SPEEDUPS=1 at build
        return _apply_mask_py
    return apply_mask_c


#: Mask or unmask a payload (RFC 6455, 5.3), with the C accelerator when it is
#: available and ``ANYWS_NO_SPEEDUPS=1`` is not set at import time. Tests may
#: replace this name; parse and serialize look it up at each call.
apply_mask = _select_apply_mask(os.environ.get("ANYWS_NO_SPEEDUPS") == "1")


def _elide(text: str) -> str:
    """Cut the middle out of ``text`` if it is too long for a log line."""
    if len(text) <= _MAX_LOGGED:
        return text
    head = _MAX_LOGGED * 2 // 3
    tail = _MAX_LOGGED - head - 1
    return text[:head] + "…" + text[-tail:]


def _hex(data: bytes) -> str:
    """Show bytes in hexadecimal; only both ends of a long payload."""
    if len(data) <= _MAX_LOGGED // 3:
        return data.hex(" ")
    return data[:16].hex(" ") + " … " + data[-8:].hex(" ")


def _wire_limit(
    max_size: int, first: int, extensions: Sequence[Extension] | None
) -> int:
    """The largest payload length worth reading for a ``max_size`` budget.

    Without extensions the payload is the content: the limit is exact. With
    extensions, a frame that may be compressed (RSV1 set, or a continuation
    frame, which carries no RSV1 in a compressed message: RFC 7692, 6.1) can
    be a little longer on the wire than its content, since deflate adds a few
    bytes to data it cannot shrink. A browser sends 1 MiB of random bytes as
    a slightly longer frame, and that message must fit a 1 MiB ``max_size``.
    Decompression then enforces ``max_size`` exactly, so the slack only bounds
    what is buffered, never what is delivered.
    """
    if extensions and (first & _RSV1 or not first & _OPCODE):
        return max_size + (max_size >> 3) + 1024
    return max_size


class Frame(NamedTuple):
    """One WebSocket frame, with its payload unmasked.

    The field order is websockets 8.1's, so that extensions written for it
    (which call ``frame._replace(...)``) keep working.

    Attributes:
        fin: whether this is the last frame of a message.
        opcode: the frame type.
        data: the payload, unmasked.
        rsv1: the first reserved bit (permessage-deflate uses it).
        rsv2: the second reserved bit.
        rsv3: the third reserved bit.
    """

    fin: bool
    opcode: Opcode
    data: bytes
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def __str__(self) -> str:
        """Describe the frame in a few words, for DEBUG logs."""
        flags = f"{len(self.data)} bytes"
        if not self.fin:
            flags += ", continued"
        payload = self._describe_payload()
        if payload:
            return f"{self.opcode.name} {payload} [{flags}]"
        return f"{self.opcode.name} [{flags}]"

    def _describe_payload(self) -> str:
        """Show the payload as text, a close code and reason, or hex."""
        data = self.data
        if not data:
            return ""
        if self.opcode is Opcode.CLOSE:
            try:
                return _elide(str(Close.parse(data)))
            except (ProtocolError, UnicodeDecodeError):
                pass
        elif self.opcode is Opcode.TEXT or self.opcode is Opcode.CONT:
            # A continuation frame may belong to a text message; a binary one
            # (or a text one cut inside a character) falls back to hex.
            try:
                return _elide(repr(bytes(data).decode()))
            except UnicodeDecodeError:
                pass
        return _hex(bytes(data))

    def check(self) -> None:
        """Check the rules every frame obeys once extensions are decoded.

        Raises:
            ProtocolError: if a reserved bit is set (RFC 6455, 5.2), or if a
                control frame is fragmented or too long (RFC 6455, 5.5).
        """
        if self.rsv1 or self.rsv2 or self.rsv3:
            raise ProtocolError("reserved bits must be 0")
        if self.opcode in _CTRL:
            if not self.fin:
                raise ProtocolError("fragmented control frame")
            if len(self.data) > _MAX_CTRL_PAYLOAD:
                raise ProtocolError("control frame too long")

    @classmethod
    def parse(
        cls,
        read_exact: Callable[[int], Generator[None, None, bytes]],
        *,
        mask: bool,
        max_size: int | None = None,
        extensions: Sequence[Extension] | None = None,
    ) -> Generator[None, None, Frame]:
        """Read one frame (a generator to drive with ``yield from``).

        Args:
            read_exact: a generator function returning exactly ``n`` bytes,
                such as :meth:`~anyws.sansio._buffer.StreamReader.read_exact`.
            mask: whether the frame must be masked, which is the case when we
                are the server (RFC 6455, 5.1).
            max_size: the largest payload accepted, ``None`` for no limit.
            extensions: the negotiated extensions, in negotiation order; they
                decode the frame in reverse order.

        Returns:
            The frame, unmasked and decoded by the extensions.

        Raises:
            ProtocolError: if the frame breaks RFC 6455.
            PayloadTooBig: if the payload is over ``max_size``, before any of
                it is read.
            EOFError: if the stream ends inside the frame.
        """
        first, second = yield from read_exact(2)
        opcode = _OPCODES.get(first & _OPCODE)
        if opcode is None:
            raise ProtocolError(f"invalid opcode: {first & _OPCODE}")
        if bool(second & _MASK) != mask:
            raise ProtocolError("incorrect masking")
        length = yield from cls._parse_length(read_exact, second & _LENGTH)
        # Refuse an oversized payload before waiting for it, so a huge declared
        # length never fills the buffer. A control frame is never over 125
        # bytes (RFC 6455, 5.5), whatever the extensions.
        if opcode in _CTRL and length > _MAX_CTRL_PAYLOAD:
            raise ProtocolError("control frame too long")
        if max_size is not None and length > _wire_limit(max_size, first, extensions):
            raise PayloadTooBig(f"over size limit ({length} > {max_size} bytes)")
        if mask:
            masked = yield from read_exact(4 + length)
            data = apply_mask(memoryview(masked)[4:], masked[:4])
        else:
            data = yield from read_exact(length)
        frame = cls(
            bool(first & _FIN),
            opcode,
            data,
            bool(first & _RSV1),
            bool(first & _RSV2),
            bool(first & _RSV3),
        )
        if extensions:
            for extension in reversed(extensions):
                frame = extension.decode(frame, max_size=max_size)
            # The wire limit allowed some slack (see _wire_limit): hold the
            # decoded payload to the exact limit.
            if max_size is not None and len(frame.data) > max_size:
                raise PayloadTooBig(
                    f"over size limit ({len(frame.data)} > {max_size} bytes)"
                )
        frame.check()
        return frame

    @staticmethod
    def _parse_length(
        read_exact: Callable[[int], Generator[None, None, bytes]], length: int
    ) -> Generator[None, None, int]:
        """Read the 16-bit or 64-bit payload length, if any (RFC 6455, 5.2).

        Non-minimal encodings are accepted: RFC 6455 only requires senders to
        use the minimal one.
        """
        if length == 126:
            (length,) = _LEN_16.unpack((yield from read_exact(2)))
        elif length == 127:
            (length,) = _LEN_64.unpack((yield from read_exact(8)))
            if length >> 63:
                raise ProtocolError("invalid payload length")
        return length

    def serialize(
        self,
        *,
        mask: bool,
        extensions: Sequence[Extension] | None = None,
        mask_key: bytes | None = None,
    ) -> bytes:
        """Build the bytes of this frame, ready to send in one write.

        The frame is checked as built by the application, then encoded by the
        extensions in order: an extension such as permessage-deflate sets RSV1,
        which :meth:`check` would refuse.

        Args:
            mask: whether to mask the payload, which is the case when we are
                the client (RFC 6455, 5.3).
            extensions: the negotiated extensions, in negotiation order.
            mask_key: the masking key; a fresh random one when ``None``. Only
                tests should pass it.

        Returns:
            The header and the payload, with the shortest length encoding.

        Raises:
            ProtocolError: if the frame breaks RFC 6455.
            ValueError: if ``mask_key`` is not 4 bytes long.
        """
        header, payload = self.serialize_parts(
            mask=mask, extensions=extensions, mask_key=mask_key
        )
        return header + payload

    def serialize_parts(
        self,
        *,
        mask: bool,
        extensions: Sequence[Extension] | None = None,
        mask_key: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """Like :meth:`serialize`, but return the header (with the masking
        key) and the payload apart, so that a big payload is not copied just
        to put a header in front of it."""
        self.check()
        frame = self
        if extensions:
            for extension in extensions:
                frame = extension.encode(frame)
        first = (
            frame.opcode
            | (_FIN if frame.fin else 0)
            | (_RSV1 if frame.rsv1 else 0)
            | (_RSV2 if frame.rsv2 else 0)
            | (_RSV3 if frame.rsv3 else 0)
        )
        data = frame.data
        length = len(data)
        mask_bit = _MASK if mask else 0
        if length < 126:
            header = _HEAD.pack(first, mask_bit | length)
        elif length < 0x10000:
            header = _HEAD_16.pack(first, mask_bit | 126, length)
        else:
            header = _HEAD_64.pack(first, mask_bit | 127, length)
        if not mask:
            return header, data
        if mask_key is None:
            mask_key = os.urandom(4)
        return header + mask_key, apply_mask(data, mask_key)


class Close(NamedTuple):
    """The code and reason of a close frame.

    Attributes:
        code: the close code; 1005 when the close frame was empty.
        reason: the close reason, maybe empty.
    """

    code: int
    reason: str

    def __str__(self) -> str:
        """Describe the close code and reason, for example ``1000 (OK) bye``."""
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = CLOSE_CODE_EXPLANATIONS.get(self.code, "unknown")
        result = f"{self.code} ({explanation})"
        return f"{result} {self.reason}" if self.reason else result

    @classmethod
    def parse(cls, data: bytes) -> Close:
        """Parse the payload of a close frame (RFC 6455, 5.5.1).

        Args:
            data: the payload.

        Returns:
            The code and reason; ``Close(1005, "")`` for an empty payload.

        Raises:
            ProtocolError: if the payload is 1 byte long or the code is not
                allowed on the wire.
            UnicodeDecodeError: if the reason is not UTF-8 (close code 1007).
        """
        if not data:
            return cls(int(CloseCode.NO_STATUS_RCVD), "")
        if len(data) == 1:
            raise ProtocolError("close frame too short")
        (code,) = _CODE.unpack_from(data)
        if not is_valid_close_code(code):
            raise ProtocolError(f"invalid status code {code}")
        return cls(code, bytes(data[2:]).decode("utf-8"))

    def check(self) -> None:
        """Check that this close frame may be sent.

        Raises:
            ProtocolError: if the code is not allowed on the wire, or if the
                reason is over 123 bytes in UTF-8 (RFC 6455, 5.5).
        """
        if not is_valid_close_code(self.code):
            raise ProtocolError("invalid status code")
        if len(self.reason.encode()) > _MAX_CLOSE_REASON:
            raise ProtocolError("close reason is too long")

    def serialize(self) -> bytes:
        """Build the payload of a close frame.

        Raises:
            ProtocolError: see :meth:`check`.
        """
        self.check()
        return _CODE.pack(self.code) + self.reason.encode()


def prepare_data(data: str | bytes | bytearray | memoryview) -> tuple[Opcode, bytes]:
    """Pick the opcode and the payload for a message.

    Args:
        data: ``str`` for a text message, bytes-like for a binary one.

    Returns:
        ``(Opcode.TEXT, UTF-8 bytes)`` or ``(Opcode.BINARY, bytes)``.

    Raises:
        TypeError: if ``data`` is neither ``str`` nor bytes-like.
    """
    if isinstance(data, str):
        return OP_TEXT, data.encode()
    if isinstance(data, bytes):
        return OP_BINARY, data
    if isinstance(data, (bytearray, memoryview)):
        # ``bytes()`` copies a non-contiguous memoryview into logical order.
        return OP_BINARY, bytes(data)
    raise TypeError("data must be str or bytes-like")


def prepare_ctrl(data: str | bytes | bytearray | memoryview) -> bytes:
    """Turn the payload of a control frame into bytes.

    Args:
        data: ``str`` (sent as UTF-8) or bytes-like.

    Raises:
        TypeError: if ``data`` is neither ``str`` nor bytes-like.
    """
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError("data must be str or bytes-like")


def encode_data(data: str | bytes | bytearray | memoryview) -> bytes:
    """Turn ``str`` or bytes-like data into bytes (websockets 8.1 name).

    Raises:
        TypeError: if ``data`` is neither ``str`` nor bytes-like.
    """
    return prepare_ctrl(data)


def parse_close(data: bytes) -> tuple[int, str]:
    """Parse a close frame payload into ``(code, reason)`` (8.1 name).

    See :meth:`Close.parse`.
    """
    close = Close.parse(data)
    return close.code, close.reason


def serialize_close(code: int, reason: str) -> bytes:
    """Build a close frame payload from a code and a reason (8.1 name).

    See :meth:`Close.serialize`.
    """
    return Close(code, reason).serialize()
