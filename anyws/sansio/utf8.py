"""Fail-fast UTF-8 validation of text messages (RFC 6455, 5.6 and 8.1).

A text message may arrive in many frames. RFC 6455, 8.1 lets an endpoint fail
the connection as soon as the bytes received so far can no longer be valid
UTF-8, and the Autobahn test suite (cases 6.x) expects it. CPython's
incremental decoder already stops at most errors, but it keeps some dead-end
prefixes as an incomplete tail, for example ``ED A0`` (the start of a
surrogate). :class:`Utf8Validator` checks that tail against the table of
RFC 3629, section 4.
"""

from __future__ import annotations

import codecs

__all__ = ("Utf8Validator", "validate_utf8")

# RFC 3629, section 4: the range of the byte after each lead byte of a multi-
# byte sequence. Other lead bytes (C2-DF, E1-EC, EE, EF, F1-F3) allow 80-BF.
# C0, C1 and F5-FF never appear; the decoder refuses them itself.
_SECOND_BYTE = {
    0xE0: (0xA0, 0xBF),  # shorter forms would be overlong
    0xED: (0x80, 0x9F),  # ED A0-BF would encode surrogates
    0xF0: (0x90, 0xBF),  # shorter forms would be overlong
    0xF4: (0x80, 0x8F),  # F4 90 and above would exceed U+10FFFF
}
_ANY_CONTINUATION = (0x80, 0xBF)


def _check_tail(tail: bytes) -> None:
    """Raise if an incomplete sequence left by the decoder cannot be completed.

    Args:
        tail: the 1 to 3 bytes the incremental decoder keeps for later.

    Raises:
        UnicodeDecodeError: if no bytes can complete ``tail`` into valid UTF-8.
    """
    # The decoder only keeps a valid lead byte pending, and it checks the
    # continuation bytes itself except for the narrower second-byte ranges.
    low, high = _SECOND_BYTE.get(tail[0], _ANY_CONTINUATION)
    for index in range(1, len(tail)):
        if not low <= tail[index] <= high:
            raise UnicodeDecodeError(
                "utf-8", tail, 0, index + 1, "invalid continuation byte"
            )
        low, high = _ANY_CONTINUATION


class Utf8Validator:
    """Decode UTF-8 piece by piece, failing as early as possible.

    Feed the payloads of the frames of one text message to :meth:`decode`, the
    last one with ``final=True``; call :meth:`reset` before the next message.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def decode(self, data: bytes, final: bool = False) -> str:
        """Decode the next piece of a text message.

        Args:
            data: the next bytes of the message.
            final: whether these are the last bytes of the message.

        Returns:
            The text decoded from the bytes received so far and not returned
            yet; an incomplete character at the end waits for the next piece.

        Raises:
            UnicodeDecodeError: as soon as the bytes received so far cannot
                start any valid UTF-8 text, or if ``final`` is true and the
                message ends inside a character.
        """
        text = self._decoder.decode(data, final)
        if not final:
            tail, _ = self._decoder.getstate()
            if tail:
                _check_tail(tail)
        return text

    def reset(self) -> None:
        """Forget any pending bytes, to start a new message."""
        self._decoder.reset()


def validate_utf8(data: bytes | bytearray | memoryview) -> str:
    """Decode a whole UTF-8 payload.

    Args:
        data: the payload.

    Returns:
        The text.

    Raises:
        UnicodeDecodeError: if ``data`` is not valid UTF-8.
    """
    if not isinstance(data, bytes):
        # ``bytes()`` also copies a non-contiguous memoryview, which ``str()``
        # refuses.
        data = bytes(data)
    return data.decode()
