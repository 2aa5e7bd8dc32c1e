"""The permessage-deflate extension (RFC 7692).

:class:`PerMessageDeflate` compresses and decompresses the frames of data
messages on an open connection. :class:`ClientPerMessageDeflateFactory` and
:class:`ServerPerMessageDeflateFactory` negotiate its parameters during the
opening handshake (RFC 7692, 7.1).

Parameters on the wire, in the order anyws always writes them::

    server_no_context_takeover; client_no_context_takeover;
    server_max_window_bits=N; client_max_window_bits=N

"remote" and "local" in :class:`PerMessageDeflate` are seen from the endpoint
that uses it: on a server, "remote" is the client's side of the agreement.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..._types import ExtensionName, ExtensionParameter
from ...exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from ..frames import Frame, Opcode
from .base import ClientExtensionFactory, Extension, ServerExtensionFactory

__all__ = (
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
    "enable_client_permessage_deflate",
    "enable_server_permessage_deflate",
)

_NAME = ExtensionName("permessage-deflate")

_SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
_SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
_CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"

# RFC 7692, 7.1.2: a decimal integer from 8 to 15 without leading zeros.
_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}

# LEN and NLEN of an empty stored block: a sync flush ends with them, the
# sender strips them from a message and the receiver appends them back
# (RFC 7692, 7.2.1 and 7.2.2).
_EMPTY_BLOCK_TAIL = b"\x00\x00\xff\xff"

# What may follow a DEFLATE block with BFINAL set (RFC 7692, 7.2.3.4): nothing,
# or the 0x00 byte that starts an empty stored block, then the tail appended
# at the end of a message. Anything else is not DEFLATE data.
_AFTER_FINAL_BLOCK = frozenset(
    {b"", b"\x00", _EMPTY_BLOCK_TAIL, b"\x00" + _EMPTY_BLOCK_TAIL}
)

_DATA_OPCODES = frozenset({Opcode.TEXT, Opcode.BINARY})
_MESSAGE_OPCODES = _DATA_OPCODES | {Opcode.CONT}


def _check_window_bits(
    name: str, value: object, *, optional: bool = False, allow_true: bool = False
) -> None:
    """Raise ``ValueError`` unless ``value`` is an int from 8 to 15.

    ``optional`` also allows ``None`` and ``allow_true`` allows ``True``.
    """
    if (optional and value is None) or (allow_true and value is True):
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 15:
        raise ValueError(f"{name} must be an integer from 8 to 15, got {value!r}")


def _check_compress_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Copy ``settings``, refusing ``wbits``: the window bits are negotiated."""
    settings = {} if settings is None else dict(settings)
    if "wbits" in settings:
        raise ValueError(
            "compress_settings must not contain wbits; "
            "set the max_window_bits parameters instead"
        )
    return settings


class PerMessageDeflate(Extension):
    """permessage-deflate on an open connection, with the agreed parameters.

    The compressor and the decompressor are created on first use, so that a
    connection that never sends (or never receives) a compressed message does
    not pay for them.

    Args:
        remote_no_context_takeover: the peer resets its compressor after each
            message, so the decompressor is reset too.
        local_no_context_takeover: reset the compressor after each message.
        remote_max_window_bits: the peer's LZ77 window, 8 to 15.
        local_max_window_bits: the local LZ77 window, 8 to 15.
        compress_settings: keyword arguments for :func:`zlib.compressobj`,
            except ``wbits``.

    Raises:
        ValueError: a window size is out of range or ``compress_settings``
            contains ``wbits``.
    """

    name = _NAME

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: dict[str, Any] | None = None,
    ) -> None:
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)
        self._decoder: zlib._Decompress | None = None
        self._encoder: zlib._Compress | None = None
        # True between the first and the last frame of a compressed message.
        self._inflating = False

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate("
            f"remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits})"
        )

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decompress the frames of a message whose first frame has RSV1 set.

        Control frames, and the frames of a message whose first frame has no
        RSV1, are returned unchanged: an RSV1 bit left on them is for the
        frame check to reject (RFC 7692, 6.1).

        Args:
            frame: the incoming frame.
            max_size: how many bytes the decompressed payload may hold at
                most; ``None`` means no limit.

        Returns:
            The frame with its payload decompressed and RSV1 cleared.

        Raises:
            PayloadTooBig: the payload inflates past ``max_size``.
            ProtocolError: RSV1 on a continuation frame of a compressed
                message, or data that is not valid DEFLATE.
        """
        if frame.opcode == Opcode.CONT:
            if not self._inflating:
                return frame
            if frame.rsv1:
                # RFC 7692, 6.1: RSV1 marks the first frame only. 8.1 set it on
                # every frame; anyws follows the RFC (DECISIONS.md, item 3).
                raise ProtocolError("RSV1 set on a continuation frame")
        elif frame.opcode in _DATA_OPCODES:
            if not frame.rsv1:
                self._inflating = False
                return frame
        else:
            return frame
        self._inflating = not frame.fin
        data = self._inflate(frame.data, frame.fin, max_size)
        return frame._replace(data=data, rsv1=False)

    def _inflate(self, data: bytes, fin: bool, max_size: int | None) -> bytes:
        """Decompress one frame's payload, producing at most ``max_size`` bytes."""
        if self._decoder is None:
            self._decoder = zlib.decompressobj(wbits=-self.remote_max_window_bits)
        decoder = self._decoder
        if fin:
            data = data + _EMPTY_BLOCK_TAIL
        # Ask zlib for one byte more than allowed: getting it proves that the
        # payload is too big, and a small "zip bomb" never inflates further
        # than that. (0 means "no limit" to zlib.)
        limit = 0 if max_size is None else max_size + 1
        try:
            result = decoder.decompress(data, limit)
        except zlib.error as exc:
            raise ProtocolError(f"decompression failed: {exc}") from exc
        if max_size is not None and len(result) > max_size:
            raise PayloadTooBig(
                f"over size limit after decompression ({max_size} bytes left)"
            )
        if decoder.eof and decoder.unused_data not in _AFTER_FINAL_BLOCK:
            # Also bounds memory: zlib keeps whatever follows the final block.
            raise ProtocolError("data after the end of the compressed stream")
        if fin and (decoder.eof or self.remote_no_context_takeover):
            # After a BFINAL block the peer starts a new stream anyway.
            self._decoder = None
        return result

    def encode(self, frame: Frame) -> Frame:
        """Compress the frames of data messages; control frames pass unchanged.

        RSV1 is set on the first frame of a message only (RFC 7692, 6.1).

        Args:
            frame: the outgoing frame.

        Returns:
            The frame with its payload compressed.
        """
        if frame.opcode not in _MESSAGE_OPCODES:
            return frame
        if self._encoder is None:
            # zlib refuses a raw DEFLATE window of 8 bits (256 bytes): its
            # deflateInit2 returns Z_STREAM_ERROR for -8. With 9 bits zlib
            # never emits a match farther than 512 - 262 = 250 bytes back
            # (MAX_DIST in deflate.c), so the output still fits the 256-byte
            # window that was agreed (RFC 7692, 7.1.2).
            self._encoder = zlib.compressobj(
                wbits=-max(self.local_max_window_bits, 9), **self.compress_settings
            )
        encoder = self._encoder
        # A sync flush ends the frame on a byte boundary with an empty stored
        # block, so the peer can inflate everything received so far.
        data = encoder.compress(frame.data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            # RFC 7692, 7.2.1: strip the tail at the end of the message only;
            # other frames keep theirs, as ordinary empty stored blocks.
            data = data.removesuffix(_EMPTY_BLOCK_TAIL)
            if self.local_no_context_takeover:
                self._encoder = None
        return frame._replace(data=data, rsv1=frame.opcode != Opcode.CONT)


class _Params(NamedTuple):
    """The permessage-deflate parameters of one offer or one answer."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    # True: offered without a value (allowed in a client offer only).
    client_max_window_bits: int | bool | None = None


def _flag(name: str, value: str | None) -> bool:
    """Check a parameter that takes no value (RFC 7692, 7.1.1)."""
    if value is not None:
        raise InvalidParameterValue(name, value)
    return True


def _window_bits(name: str, value: str | None) -> int:
    """Parse a window bits value (RFC 7692, 7.1.2)."""
    bits = None if value is None else _WINDOW_BITS_VALUES.get(value)
    if bits is None:
        raise InvalidParameterValue(name, value)
    return bits


def _parse_params(params: Sequence[ExtensionParameter], *, offer: bool) -> _Params:
    """Read the parameters of an offer (``offer=True``) or of an answer.

    Raises:
        DuplicateParameter: a parameter is repeated.
        InvalidParameterName: a parameter is unknown.
        InvalidParameterValue: a value is invalid or missing.
    """
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | bool | None = None
    for name, value in params:
        if name in seen:
            raise DuplicateParameter(name)
        seen.add(name)
        if name == _SERVER_NO_CONTEXT_TAKEOVER:
            server_nct = _flag(name, value)
        elif name == _CLIENT_NO_CONTEXT_TAKEOVER:
            client_nct = _flag(name, value)
        elif name == _SERVER_MAX_WINDOW_BITS:
            server_bits = _window_bits(name, value)
        elif name == _CLIENT_MAX_WINDOW_BITS:
            # RFC 7692, 7.1.2.2: only an offer may omit the value.
            if offer and value is None:
                client_bits = True
            else:
                client_bits = _window_bits(name, value)
        else:
            raise InvalidParameterName(name)
    return _Params(server_nct, client_nct, server_bits, client_bits)


def _build_params(params: _Params) -> list[ExtensionParameter]:
    """Write parameters in the fixed order, leaving out the ones not set."""
    result: list[ExtensionParameter] = []
    if params.server_no_context_takeover:
        result.append((_SERVER_NO_CONTEXT_TAKEOVER, None))
    if params.client_no_context_takeover:
        result.append((_CLIENT_NO_CONTEXT_TAKEOVER, None))
    if params.server_max_window_bits is not None:
        result.append((_SERVER_MAX_WINDOW_BITS, str(params.server_max_window_bits)))
    if params.client_max_window_bits is True:
        result.append((_CLIENT_MAX_WINDOW_BITS, None))
    elif params.client_max_window_bits is not None:
        result.append((_CLIENT_MAX_WINDOW_BITS, str(params.client_max_window_bits)))
    return result


class ClientPerMessageDeflateFactory(ClientExtensionFactory):
    """Offers permessage-deflate in a client request and checks the answer.

    Args:
        server_no_context_takeover: ask the server to reset its compressor
            after each message.
        client_no_context_takeover: reset the local compressor after each
            message, and tell the server.
        server_max_window_bits: ask the server for a window of at most this
            many bits (8 to 15).
        client_max_window_bits: limit the local window to this many bits (8 to
            15), or ``True`` to offer the parameter without a value, which
            lets the server choose.
        compress_settings: keyword arguments for :func:`zlib.compressobj`,
            except ``wbits``.

    Raises:
        ValueError: a window size is out of range or ``compress_settings``
            contains ``wbits``.
    """

    name = _NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = None,
        compress_settings: dict[str, Any] | None = None,
    ) -> None:
        _check_window_bits(
            "server_max_window_bits", server_max_window_bits, optional=True
        )
        _check_window_bits(
            "client_max_window_bits",
            client_max_window_bits,
            optional=True,
            allow_true=True,
        )
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)

    def get_request_params(self) -> list[ExtensionParameter]:
        """Build the parameters of the offer.

        Returns:
            The parameters that are set, in the fixed order.
        """
        return _build_params(
            _Params(
                self.server_no_context_takeover,
                self.client_no_context_takeover,
                self.server_max_window_bits,
                self.client_max_window_bits,
            )
        )

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> PerMessageDeflate:
        """Check the server's answer (RFC 7692, 7.1) and build the extension.

        Args:
            params: the parameters of permessage-deflate in the response.
            accepted_extensions: the extensions already accepted.

        Returns:
            The extension, with "remote" meaning the server.

        Raises:
            NegotiationError: the answer does not match the offer, or
                permessage-deflate was already accepted.
        """
        if any(ext.name == self.name for ext in accepted_extensions):
            raise NegotiationError(f"received duplicate {self.name}")
        answer = _parse_params(params, offer=False)
        if self.server_no_context_takeover and not answer.server_no_context_takeover:
            raise NegotiationError(
                f"{_SERVER_NO_CONTEXT_TAKEOVER} was requested but not accepted"
            )
        return PerMessageDeflate(
            remote_no_context_takeover=answer.server_no_context_takeover,
            # RFC 7692, 7.1.1.2: the client may reset its own compressor even
            # when the server did not echo the parameter.
            local_no_context_takeover=(
                self.client_no_context_takeover or answer.client_no_context_takeover
            ),
            remote_max_window_bits=self._server_window(answer.server_max_window_bits),
            local_max_window_bits=self._client_window(answer.client_max_window_bits),
            compress_settings=self.compress_settings,
        )

    def _server_window(self, answered: int | None) -> int:
        """Check the answered ``server_max_window_bits`` (RFC 7692, 7.1.2.1)."""
        requested = self.server_max_window_bits
        if requested is None:
            # The server may limit its window without being asked.
            return 15 if answered is None else answered
        if answered is None:
            raise NegotiationError(
                f"{_SERVER_MAX_WINDOW_BITS}={requested} was requested but not accepted"
            )
        if answered > requested:
            raise NegotiationError(
                f"{_SERVER_MAX_WINDOW_BITS}={answered} answered, "
                f"more than the {requested} requested"
            )
        return answered

    def _client_window(self, answered: int | bool | None) -> int:
        """Check the answered ``client_max_window_bits`` (RFC 7692, 7.1.2.2)."""
        offered = self.client_max_window_bits
        if offered is None:
            if answered is not None:
                raise NegotiationError(
                    f"{_CLIENT_MAX_WINDOW_BITS}={answered} answered but not offered"
                )
            return 15
        if answered is None:
            return 15 if offered is True else offered
        if offered is not True and answered > offered:
            raise NegotiationError(
                f"{_CLIENT_MAX_WINDOW_BITS}={answered} answered, "
                f"more than the {offered} offered"
            )
        return answered


class ServerPerMessageDeflateFactory(ServerExtensionFactory):
    """Accepts or declines the permessage-deflate offers of a client.

    Args:
        server_no_context_takeover: reset the local compressor after each
            message.
        client_no_context_takeover: require the client to reset its
            compressor after each message.
        server_max_window_bits: limit the local window to this many bits (8
            to 15).
        client_max_window_bits: limit the client's window to this many bits
            (8 to 15).
        compress_settings: keyword arguments for :func:`zlib.compressobj`,
            except ``wbits``.
        require_client_max_window_bits: what to do with an offer that lacks
            ``client_max_window_bits`` when ``client_max_window_bits`` is set:
            decline it (``True``, as websockets 8.1 does), or accept it and
            leave the client's window at 15 bits (``False``; an anyws
            addition, so that clients such as Firefox still get compression).

    Raises:
        ValueError: a window size is out of range or ``compress_settings``
            contains ``wbits``.
    """

    name = _NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_settings: dict[str, Any] | None = None,
        require_client_max_window_bits: bool = True,
    ) -> None:
        _check_window_bits(
            "server_max_window_bits", server_max_window_bits, optional=True
        )
        _check_window_bits(
            "client_max_window_bits", client_max_window_bits, optional=True
        )
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)
        self.require_client_max_window_bits = require_client_max_window_bits

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Accept one offer (RFC 7692, 7.1), choosing the answer's parameters.

        Args:
            params: the parameters of the offer.
            accepted_extensions: the extensions already accepted.

        Returns:
            The parameters of the answer, in the fixed order, and the
            extension, with "remote" meaning the client.

        Raises:
            NegotiationError: the offer is declined.
        """
        if any(ext.name == self.name for ext in accepted_extensions):
            raise NegotiationError(f"skipped duplicate {self.name}")
        offer = _parse_params(params, offer=True)
        answer = _Params(
            offer.server_no_context_takeover or self.server_no_context_takeover,
            offer.client_no_context_takeover or self.client_no_context_takeover,
            self._server_window(offer.server_max_window_bits),
            self._client_window(offer.client_max_window_bits),
        )
        extension = PerMessageDeflate(
            remote_no_context_takeover=answer.client_no_context_takeover,
            local_no_context_takeover=answer.server_no_context_takeover,
            # A window size missing from the answer is 15 (RFC 7692, 7.1.2).
            remote_max_window_bits=answer.client_max_window_bits or 15,
            local_max_window_bits=answer.server_max_window_bits or 15,
            compress_settings=self.compress_settings,
        )
        return _build_params(answer), extension

    def _server_window(self, offered: int | None) -> int | None:
        """Choose the answered ``server_max_window_bits`` (RFC 7692, 7.1.2.1)."""
        limit = self.server_max_window_bits
        if limit is None or offered is None:
            return offered if limit is None else limit
        return min(offered, limit)

    def _client_window(self, offered: int | bool | None) -> int | None:
        """Choose the answered ``client_max_window_bits`` (RFC 7692, 7.1.2.2)."""
        limit = self.client_max_window_bits
        if offered is True:
            # Offered without a value: the server may pick one, or stay silent.
            return limit
        if limit is None:
            return offered
        if offered is None:
            # RFC 7692, 7.1.2.2: the server must not answer the parameter when
            # the client did not offer it, so it can only decline or give up
            # the limit.
            if self.require_client_max_window_bits:
                raise NegotiationError(
                    f"{_CLIENT_MAX_WINDOW_BITS} is required but was not offered"
                )
            return None
        return min(offered, limit)


def enable_client_permessage_deflate(
    extensions: Sequence[ClientExtensionFactory] | None,
) -> list[ClientExtensionFactory]:
    """Add the default client factory, unless permessage-deflate is configured.

    The default offer is ``permessage-deflate; client_max_window_bits``.

    Args:
        extensions: the client extension factories, or ``None``.

    Returns:
        A new list: ``extensions``, plus the default factory at the end if no
        factory is named ``permessage-deflate``.
    """
    result = list(extensions or ())
    if not any(factory.name == _NAME for factory in result):
        result.append(ClientPerMessageDeflateFactory(client_max_window_bits=True))
    return result


def enable_server_permessage_deflate(
    extensions: Sequence[ServerExtensionFactory] | None,
) -> list[ServerExtensionFactory]:
    """Add anyws's default server factory, unless permessage-deflate is configured.

    The default limits both windows to 12 bits and uses ``memLevel=5``, and
    accepts offers without ``client_max_window_bits`` (DECISIONS.md, "Server
    permessage-deflate defaults").

    Args:
        extensions: the server extension factories, or ``None``.

    Returns:
        A new list: ``extensions``, plus the default factory at the end if no
        factory is named ``permessage-deflate``.
    """
    result = list(extensions or ())
    if not any(factory.name == _NAME for factory in result):
        result.append(
            ServerPerMessageDeflateFactory(
                server_max_window_bits=12,
                client_max_window_bits=12,
                compress_settings={"memLevel": 5},
                require_client_max_window_bits=False,
            )
        )
    return result
