"""permessage-deflate for the crafted peers (RFC 7692), written on ``zlib``.

The crafted peers never use anyws's extension, which is the code under test:
they write and read the ``Sec-WebSocket-Extensions`` parameters, check an
answer against its offer, and compress or decompress with ``zlib`` exactly
as the agreement says. Decompressing with the agreed window (not a larger
one) is what catches a peer that uses more than it agreed to.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

__all__ = (
    "Codec",
    "Params",
    "agreement_problems",
    "parse_extensions",
    "probe_binary",
    "probe_text",
)

NAME = "permessage-deflate"

# RFC 7692, 7.2.1: the sender drops these 4 bytes (the end of a sync flush)
# from the end of a message; the receiver appends them back.
TAIL = b"\x00\x00\xff\xff"

# Output step of the decompressor, below the gap between a repeat and the
# window size in the probe payloads.
_STEP = 64


@dataclass(frozen=True)
class Params:
    """The parameters of one permessage-deflate offer or answer (RFC 7692, 7.1).

    ``client_max_window_bits=True`` is the parameter without a value, which
    only an offer may carry (7.1.2.2).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool | None = None

    def header(self) -> str:
        """The element of a ``Sec-WebSocket-Extensions`` header."""
        parts = [NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is True:
            parts.append("client_max_window_bits")
        elif self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)

    def short(self) -> str:
        """A compact label for case titles."""
        return self.header().removeprefix(NAME).removeprefix("; ") or "no parameters"


def _window(name: str, value: str | None, *, offer: bool) -> int | bool:
    if value is None and offer and name == "client_max_window_bits":
        return True
    if value is not None and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]  # RFC 7692, 7.1: a quoted-string form is allowed
    if value is None or not value.isdigit() or value.startswith("0"):
        raise ValueError(f"{name}={value!r}")
    bits = int(value)
    if not 8 <= bits <= 15:
        raise ValueError(f"{name}={value!r} out of range")
    return bits


def _parse_element(element: str, *, offer: bool) -> Params | str:
    """One element: the params of permessage-deflate, or the extension name."""
    name, *raw_params = (part.strip() for part in element.split(";"))
    if name != NAME:
        return name
    values: dict[str, str | None] = {}
    for raw in raw_params:
        key, eq, value = (piece.strip() for piece in raw.partition("="))
        if key in values:
            raise ValueError(f"duplicate parameter {key}")
        values[key] = value if eq else None
    flags: dict[str, bool] = {}
    for key in ("server_no_context_takeover", "client_no_context_takeover"):
        if key in values:
            if values.pop(key) is not None:
                raise ValueError(f"{key} takes no value")
            flags[key] = True
    windows: dict[str, int | bool] = {}
    for key in ("server_max_window_bits", "client_max_window_bits"):
        if key in values:
            windows[key] = _window(key, values.pop(key), offer=offer)
    if values:
        raise ValueError(f"unknown parameters {sorted(values)}")
    server_bits = windows.get("server_max_window_bits")
    return Params(
        flags.get("server_no_context_takeover", False),
        flags.get("client_no_context_takeover", False),
        None if server_bits is None else int(server_bits),
        windows.get("client_max_window_bits"),
    )


def parse_extensions(header: str, *, offer: bool) -> list[Params | str]:
    """Parse a ``Sec-WebSocket-Extensions`` value (no quoted commas occur here).

    Raises:
        ValueError: a permessage-deflate element breaks RFC 7692, 7.1.
    """
    return [
        _parse_element(element, offer=offer)
        for element in header.split(",")
        if element.strip()
    ]


def agreement_problems(offer: Params, answer: Params) -> list[str]:
    """What is wrong with a server's answer to one offer (RFC 7692, 7.1).

    Returns:
        Descriptions of the rules the answer breaks; empty if it is legal.
    """
    problems = []
    if offer.server_no_context_takeover and not answer.server_no_context_takeover:
        problems.append("server_no_context_takeover requested but not answered")
    asked = offer.server_max_window_bits
    given = answer.server_max_window_bits
    if asked is not None and (given is None or given > asked):
        problems.append(f"server_max_window_bits={given} for {asked} requested")
    offered = offer.client_max_window_bits
    answered = answer.client_max_window_bits
    if answered is True:
        problems.append("client_max_window_bits without a value in an answer")
    elif answered is not None:
        if offered is None:
            problems.append("client_max_window_bits answered but not offered")
        elif offered is not True and answered > offered:
            problems.append(f"client_max_window_bits={answered} > {offered} offered")
    return problems


class Codec:
    """The compression state of one crafted endpoint, as agreed.

    Args:
        agreed: the answer (what both sides use).
        client: whether this endpoint is the client.
        offer: the client's offer, when this endpoint is the client: its own
            ``client_no_context_takeover`` and window hint also bind it.
    """

    def __init__(
        self, agreed: Params, *, client: bool, offer: Params | None = None
    ) -> None:
        server_bits = agreed.server_max_window_bits or 15
        answered = agreed.client_max_window_bits
        client_bits = answered if isinstance(answered, int) else 15
        if client:
            hint = offer.client_max_window_bits if offer else None
            if answered is None and isinstance(hint, int) and hint is not True:
                client_bits = hint
            self.local_bits, self.remote_bits = client_bits, server_bits
            self.local_reset = agreed.client_no_context_takeover or bool(
                offer and offer.client_no_context_takeover
            )
            self.remote_reset = agreed.server_no_context_takeover
        else:
            self.local_bits, self.remote_bits = server_bits, client_bits
            self.local_reset = agreed.server_no_context_takeover
            self.remote_reset = agreed.client_no_context_takeover
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes, *, final_block: bool = False) -> bytes:
        """Compress one whole message (RFC 7692, 7.2.1).

        Args:
            data: the message.
            final_block: end it with a BFINAL block instead of a sync flush
                (allowed by 7.2.3.4); the next message starts a new stream.
        """
        if self._compressor is None:
            # zlib cannot compress with a window of 8 bits; 9 bits fits in 8
            # (see the note in 7.1.2.1 on the 256-byte window).
            self._compressor = zlib.compressobj(wbits=-max(self.local_bits, 9))
        compressor = self._compressor
        if final_block:
            self._compressor = None
            return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
        payload = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.local_reset:
            self._compressor = None
        assert payload.endswith(TAIL)
        return payload[: -len(TAIL)]

    def decompress(self, payload: bytes) -> bytes:
        """Decompress one whole message with exactly the agreed window.

        Raises:
            zlib.error: the payload is not DEFLATE data for that window.
        """
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(wbits=-self.remote_bits)
        decompressor = self._decompressor
        # zlib checks a match's distance against the window only when the
        # match reaches back before the current output buffer: small output
        # steps make every long match go through that check.
        pending, pieces = payload + TAIL, []
        while not decompressor.eof:
            piece = decompressor.decompress(pending, _STEP)
            pending = decompressor.unconsumed_tail
            if not piece and not pending:
                break
            pieces.append(piece)
        if decompressor.eof or self.remote_reset:
            self._decompressor = None
        return b"".join(pieces)


def _spaced_repeats(rng: random.Random, filler: str | None) -> list[bytes]:
    # A 48-byte block repeated 2**bits + 128 bytes later, for 9 to 14 bits: a
    # compressor with a larger window than agreed emits a match that the
    # agreed window cannot resolve, and decompression fails.
    pieces: list[bytes] = []
    for bits in range(9, 15):
        block = _random(rng, 48, filler)
        pieces += [block, _random(rng, (1 << bits) + 80, filler), block]
    return pieces


def _random(rng: random.Random, size: int, alphabet: str | None) -> bytes:
    if alphabet is None:
        return rng.randbytes(size)
    return "".join(rng.choices(alphabet, k=size)).encode()


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;"


def probe_text(seed: int) -> str:
    """About 33 KB of ASCII text with repeats at every window distance."""
    rng = random.Random(seed)
    return b"".join(_spaced_repeats(rng, _LETTERS)).decode()


def probe_binary(seed: int) -> bytes:
    """About 33 KB of random bytes with repeats at every window distance."""
    rng = random.Random(seed)
    return b"".join(_spaced_repeats(rng, None))
