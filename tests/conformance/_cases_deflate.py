"""Cases of Autobahn categories 12 and 13: permessage-deflate (RFC 7692).

12.x exchange many payloads over the default negotiation (context takeover
on): whole and fragmented compressed messages, and the frames RFC 7692, 6.1
forbids. 13.x go through the negotiation parameters: every window size from
9 to 15 bits for each side, paired with every other and with each takeover
combination, offered by a crafted client to the anyws server and offered by
the anyws client to a crafted server; then the anyws server's own limits,
the answers a crafted server may give, invalid offers, illegal answers.

Each 13.x exchange sends a payload twice (the second copy only decompresses
with the first one's context, so it shows whether context takeover is used
as agreed) and payloads with repeats at every window distance (decompressing
them with exactly the agreed window shows a peer that uses a larger one).
"""

from __future__ import annotations

import functools
import itertools
import random

from ._deflate import Codec, Params, probe_binary, probe_text
from ._model import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    Case,
    DeflateSetup,
    Frame,
    Item,
    Message,
    Send,
    binary,
    close,
    echo_case,
    pong,
    text,
)

__all__ = ("deflate_cases",)

RFC = "RFC 7692 7.2"
NEGOTIATION = "RFC 7692 7.1"
KIB = 1024

#: The crafted client's offer and the crafted server's answer in 12.x: the
#: defaults of a browser and of a plain server.
DEFAULT = DeflateSetup()

_WINDOWS = (None, *range(9, 16))
_TAKEOVER = tuple(itertools.product((False, True), repeat=2))


@functools.cache
def _probe_text(seed: int) -> str:
    return probe_text(seed)


@functools.cache
def _probe_binary(seed: int) -> bytes:
    return probe_binary(seed)


def _exchange(seed: int, *, compress: bool = True) -> tuple[list[Message], list[Item]]:
    """The messages of one 13.x case and their echoes."""
    words = _probe_text(seed)
    data = _probe_binary(seed)
    messages = [
        Message(words, compress=compress),
        Message(words, compress=compress),
        Message(data, compress=compress),
        Message("tail", compress=compress),
    ]
    return messages, [text(words), text(words), binary(data), text("tail")]


def _text_payload(rng: random.Random, size: int) -> str:
    words = ("deflate", "window", "frame", "κόσμε", "message", "context", "✓")
    out = " ".join(rng.choice(words) for _ in range(size // 4 + 1))
    return out.encode()[:size].decode(errors="ignore")


def _payload_cases() -> list[Case]:
    """12.1 to 12.4: text and binary payloads, whole and fragmented."""
    rng = random.Random(12)
    cases: list[Case] = []
    sizes = (16, 64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB)
    for index, size in enumerate(sizes, 1):
        texts = [_text_payload(rng, size) for _ in range(10)]
        cases.append(
            echo_case(
                f"12.1.{index}",
                RFC,
                f"10 compressed text messages of {size} bytes",
                [Message(t, compress=True) for t in texts],
                [text(t) for t in texts],
                deflate=DEFAULT,
            )
        )
        blobs = [rng.randbytes(size) for _ in range(5)]
        cases.append(
            echo_case(
                f"12.2.{index}",
                RFC,
                f"5 compressed random binary messages of {size} bytes",
                [Message(b, compress=True) for b in blobs],
                [binary(b) for b in blobs],
                deflate=DEFAULT,
            )
        )
    for index, frag in enumerate((1, 16, 256, 4 * KIB), 1):
        # 1-byte frames make one frame per compressed byte: a smaller message.
        size = 4 * KIB if frag == 1 else 64 * KIB
        words = _text_payload(rng, size)
        cases.append(
            echo_case(
                f"12.3.{index}",
                "RFC 7692 6.1, 7.2",
                f"2 compressed texts of {size // KIB} KB in {frag}-byte frames",
                [Message(words, compress=True, frag=frag)] * 2,
                [text(words)] * 2,
                deflate=DEFAULT,
            )
        )
        blob = (_probe_binary(index) * 2)[:size]
        cases.append(
            echo_case(
                f"12.4.{index}",
                "RFC 7692 6.1, 7.2",
                f"2 compressed binaries of {size // KIB} KB in {frag}-byte frames",
                [Message(blob, compress=True, frag=frag)] * 2,
                [binary(blob)] * 2,
                deflate=DEFAULT,
            )
        )
    return cases


def _frame_cases() -> list[Case]:
    """12.5: RSV1 placement, odd but valid messages, and bad compressed data."""
    rfc = "RFC 7692 6.1"
    fail = (close(1002),)
    many = _text_payload(random.Random(5), 300)
    # Compressed once here (9-bit window, fresh context: valid whatever the
    # agreement) so that the number of frames, hence of pongs, is known.
    packed = Codec(Params(client_max_window_bits=9), client=True).compress(
        many.encode()
    )
    return [
        echo_case(
            "12.5.1",
            rfc,
            "uncompressed text (RSV1 clear) after negotiation",
            [Message("plain"), Message("plain")],
            [text("plain")] * 2,
            deflate=DEFAULT,
        ),
        echo_case(
            "12.5.2",
            RFC,
            "compressed and uncompressed messages alternated",
            [
                Message("one", compress=True),
                Message("two"),
                Message("one", compress=True),
                Message(b"three"),
            ],
            [text("one"), text("two"), text("one"), binary(b"three")],
            deflate=DEFAULT,
        ),
        echo_case(
            "12.5.3",
            RFC,
            "empty compressed text and binary messages",
            [Message("", compress=True), Message(b"", compress=True)],
            [text(""), binary(b"")],
            deflate=DEFAULT,
        ),
        echo_case(
            "12.5.4",
            "RFC 7692 7.2.3.4",
            "compressed message ending with a BFINAL block, then others",
            [
                Message("final", compress=True, final_block=True),
                Message("next", compress=True),
                Message("next", compress=True),
            ],
            [text("final"), text("next"), text("next")],
            deflate=DEFAULT,
        ),
        echo_case(
            "12.5.5",
            "RFC 6455 5.4, RFC 7692 6.1",
            "compressed text in 2-byte frames, a ping after each",
            [Message(many, compress=True, raw=packed, frag=2, ping_between=b"p")],
            [*[pong(b"p")] * ((len(packed) - 1) // 2), text(many)],
            deflate=DEFAULT,
        ),
        Case(
            "12.5.6",
            rfc,
            "compressed text in 10-byte frames, RSV1 on continuations",
            (
                Send(
                    (Message(many, compress=True, frag=10, rsv1_on_continuation=True),)
                ),
            ),
            fail,
            deflate=DEFAULT,
        ),
        Case(
            "12.5.7",
            rfc,
            "ping with RSV1",
            (Send((Frame(PING, b"p", rsv=4),)),),
            fail,
            deflate=DEFAULT,
        ),
        Case(
            "12.5.8",
            rfc,
            "pong with RSV1",
            (Send((Frame(PONG, b"p", rsv=4),)),),
            fail,
            deflate=DEFAULT,
        ),
        Case(
            "12.5.9",
            rfc,
            "close with RSV1",
            (Send((Frame(CLOSE, b"\x03\xe8", rsv=4),)),),
            fail,
            deflate=DEFAULT,
        ),
        Case(
            "12.5.10",
            "RFC 6455 5.2, RFC 7692 6",
            "compressed text with RSV2 too",
            (Send((Frame(TEXT, b"\x02\x00", rsv=6),)),),
            fail,
            deflate=DEFAULT,
        ),
        Case(
            "12.5.11",
            rfc,
            "uncompressed message, RSV1 on its continuation",
            (Send((Frame(TEXT, b"ab", fin=False), Frame(0, b"cd", rsv=4))),),
            fail,
            deflate=DEFAULT,
        ),
        Case(
            "12.5.12",
            RFC,
            "RSV1 set on data that is not DEFLATE",
            (Send((Message(b"x", raw=b"\xff\xff\xff\xff", compress=True),)),),
            (close(frozenset({1002, 1007})),),
            deflate=DEFAULT,
        ),
        Case(
            "12.5.13",
            "RFC 6455 8.1, RFC 7692 7.2",
            "compressed text that is not UTF-8 once decompressed",
            (Send((Message(b"ab\xed\xa0\x80", compress=True, text=True),)),),
            (close(1007),),
            deflate=DEFAULT,
        ),
        Case(
            "12.5.14",
            "RFC 6455 10.4, RFC 7692 8.1",
            "2 MiB of zeros compressed to about 2 KB, max_size 1 MiB",
            (Send((Message(bytes(2048 * KIB), compress=True),)),),
            (close(1009),),
            deflate=DEFAULT,
        ),
    ]


def _accepted(offer: Params) -> Params:
    """The answer of a server that accepts an offer as made (RFC 7692, 7.1)."""
    bits = offer.client_max_window_bits
    return Params(
        offer.server_no_context_takeover,
        offer.client_no_context_takeover,
        offer.server_max_window_bits,
        None if bits is True else bits,
    )


def _grid(client_windows: tuple[int | bool | None, ...]) -> list[Params]:
    """Every server window with every client window, the 4 takeover
    combinations going round so that each meets every window value."""
    grid = []
    for i, server_bits in enumerate(_WINDOWS):
        for j, client_bits in enumerate(client_windows):
            server_nct, client_nct = _TAKEOVER[(i + j) % 4]
            grid.append(Params(server_nct, client_nct, server_bits, client_bits))
    return grid


def _parameter_cases() -> list[Case]:
    """13.1 to 13.3: the parameter grid against each side."""
    cases = []
    for index, offer in enumerate(_grid((None, True, *range(9, 16))), 1):
        accepted = _accepted(offer)
        setup = DeflateSetup(
            offers=(offer,),
            server="plain",
            expect_answer=accepted,
            client_offer=offer,
            answer=accepted,
        )
        messages, items = _exchange(index % 4)
        cases.append(
            echo_case(
                f"13.1.{index}",
                f"{NEGOTIATION}, 7.2",
                f"offer {offer.short()}, accepted as offered",
                messages,
                items,
                deflate=setup,
            )
        )
    for index, offer in enumerate(_grid((None, True, 9, 15)), 1):
        setup = DeflateSetup(offers=(offer,))
        messages, items = _exchange(index % 4)
        cases.append(
            echo_case(
                f"13.2.{index}",
                f"{NEGOTIATION}, 7.2",
                f"offer {offer.short()} to the default server",
                messages,
                items,
                deflate=setup,
                roles=("server",),
            )
        )
    for index, answer in enumerate(_grid(_WINDOWS), 1):
        setup = DeflateSetup(answer=answer)
        messages, items = _exchange(index % 4)
        cases.append(
            echo_case(
                f"13.3.{index}",
                f"{NEGOTIATION}, 7.2",
                f"default client offer, answer {answer.short()}",
                messages,
                items,
                deflate=setup,
                roles=("client",),
            )
        )
    return cases


def _offer_cases() -> list[Case]:
    """13.4 and 13.5: several offers, and offers a server must decline."""
    cases = []
    first = Params(True, False, 9, 9)
    several: tuple[tuple[tuple[Params | str, ...], Params], ...] = (
        ((first, Params()), first),
        (
            ("permessage-deflate; server_max_window_bits=7", Params(False, True)),
            Params(False, True),
        ),
        (
            ("x-unknown-extension", Params(server_max_window_bits=10)),
            Params(server_max_window_bits=10),
        ),
    )
    for index, (offers, answer) in enumerate(several, 1):
        setup = DeflateSetup(offers=offers, server="plain", expect_answer=answer)
        messages, items = _exchange(index)
        title = "offers " + ", ".join(
            o if isinstance(o, str) else o.header() for o in offers
        )
        cases.append(
            echo_case(
                f"13.4.{index}",
                NEGOTIATION,
                title,
                messages,
                items,
                deflate=setup,
                roles=("server",),
            )
        )
    invalid = (
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=010",
        "server_max_window_bits",
        "client_max_window_bits=8.5",
        "server_no_context_takeover=1",
        "server_no_context_takeover; server_no_context_takeover",
        "mystery_parameter",
    )
    for index, params in enumerate(invalid, 1):
        setup = DeflateSetup(
            offers=(f"permessage-deflate; {params}",),
            server="plain",
            expect_declined=True,
        )
        messages, items = _exchange(index, compress=False)
        cases.append(
            echo_case(
                f"13.5.{index}",
                NEGOTIATION,
                f"offer with {params}: declined",
                messages,
                items,
                deflate=setup,
                roles=("server",),
            )
        )
    return cases


def _answer_cases() -> list[Case]:
    """13.6 and 13.7: answers the anyws client must refuse, and a decline."""
    cases = []
    illegal: tuple[tuple[str, Params | None, str], ...] = (
        ("server_max_window_bits=16", None, "window over 15"),
        ("server_max_window_bits=7", None, "window under 8"),
        ("mystery_parameter", None, "unknown parameter"),
        ("client_max_window_bits", None, "client window without a value"),
        ("client_max_window_bits=10", Params(), "client window not offered"),
        (
            "server_max_window_bits=12",
            Params(server_max_window_bits=10),
            "server window over the one requested",
        ),
        (
            "",
            Params(server_no_context_takeover=True),
            "server_no_context_takeover requested, not answered",
        ),
        (
            "server_no_context_takeover, permessage-deflate",
            None,
            "permessage-deflate answered twice",
        ),
    )
    for index, (params, client_offer, title) in enumerate(illegal, 1):
        answer = "; ".join(filter(None, ("permessage-deflate", params)))
        setup = DeflateSetup(
            client_offer=client_offer, answer=answer, client_refuses=True
        )
        cases.append(
            Case(
                f"13.6.{index}",
                NEGOTIATION,
                f"answer: {title}",
                (),
                (Item("eof"),),
                deflate=setup,
                roles=("client",),
            )
        )
    cases.append(
        Case(
            "13.6.9",
            "RFC 6455 4.1",
            "answer: an extension never offered",
            (),
            (Item("eof"),),
            deflate=DeflateSetup(answer="x-unknown-extension", client_refuses=True),
            roles=("client",),
        )
    )
    messages, items = _exchange(7, compress=False)
    cases.append(
        echo_case(
            "13.7.1",
            NEGOTIATION,
            "the crafted server declines",
            messages,
            items,
            deflate=DeflateSetup(answer=None),
            roles=("client",),
        )
    )
    return cases


def deflate_cases() -> list[Case]:
    """The cases of categories 12 and 13."""
    return [
        *_payload_cases(),
        *_frame_cases(),
        *_parameter_cases(),
        *_offer_cases(),
        *_answer_cases(),
    ]
