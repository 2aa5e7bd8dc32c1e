"""Tests of the sans-I/O state machine (anyws.sansio.machine).

Peer frames are built with ``Frame.serialize`` (or by hand when the frame is
invalid on purpose); what a machine sends is parsed back with ``Frame.parse``
because the client masks with random keys.
"""

# The machine changes its state behind mypy's back: after ``assert m.state is
# State.OPEN``, mypy would call a later ``m.state is State.CLOSED`` impossible.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Generator

import pytest

from anyws._types import ExtensionName
from anyws.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidMessage,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
    SecurityError,
)
from anyws.sansio._buffer import BIG, StreamReader
from anyws.sansio.datastructures import Headers
from anyws.sansio.events import (
    CloseReceived,
    Event,
    Message,
    PingReceived,
    PongReceived,
    RequestReceived,
    ResponseReceived,
)
from anyws.sansio.extensions.base import Extension
from anyws.sansio.frames import Close, Frame, Opcode, apply_mask
from anyws.sansio.http11 import Request, Response
from anyws.sansio.machine import ClientMachine, Machine, ServerMachine, Side, State

MASK_KEY = b"\x12\x34\x56\x78"
EOF = "EOF"

Sent = list[Frame | str]


# -- helpers -----------------------------------------------------------------


def peer_frame(to: Side, opcode: Opcode, data: bytes = b"", fin: bool = True) -> bytes:
    """Bytes of a valid frame that the peer of a ``to`` machine sends."""
    frame = Frame(fin, opcode, data)
    return frame.serialize(mask=to is Side.SERVER, mask_key=MASK_KEY)


def raw_frame(
    to: Side, first: int, payload: bytes, *, masked: bool | None = None
) -> bytes:
    """Bytes of a frame built by hand, for frames Frame.serialize refuses."""
    if masked is None:
        masked = to is Side.SERVER
    mask_bit = 0x80 if masked else 0
    length = len(payload)
    if length < 126:
        header = bytes([first, mask_bit | length])
    elif length < 0x10000:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    if masked:
        return header + MASK_KEY + apply_mask(payload, MASK_KEY)
    return header + payload


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame, without checking the code."""
    return struct.pack("!H", code) + reason.encode()


def parse_sent(chunks: list[bytes], side: Side) -> Sent:
    """Parse what a ``side`` machine sent: one frame per chunk, or EOF."""
    result: Sent = []
    for chunk in chunks:
        if chunk == b"":
            result.append(EOF)
            continue
        reader = StreamReader()
        reader.feed_data(chunk)
        parser = Frame.parse(reader.read_exact, mask=side is Side.CLIENT)
        with pytest.raises(StopIteration) as info:
            next(parser)
        result.append(info.value.value)
        assert not reader.buffer, "each chunk holds exactly one frame"
    return result


def sent(machine: Machine) -> Sent:
    """Parse and forget what the machine has to send."""
    return parse_sent(machine.data_to_send(), machine.side)


def close_frame(code: int, reason: str = "") -> Frame:
    """The close frame a machine is expected to send."""
    return Frame(True, Opcode.CLOSE, close_payload(code, reason))


def other(side: Side) -> Side:
    """The other side."""
    return Side.CLIENT if side is Side.SERVER else Side.SERVER


def feed(machine: Machine, opcode: Opcode, data: bytes = b"", fin: bool = True) -> None:
    """Make the machine receive one valid frame from its peer."""
    machine.receive_data(peer_frame(machine.side, opcode, data, fin))


def eof_if_server(side: Side) -> Sent:
    """The EOF a server queues after the closing handshake or a failure."""
    return [EOF] if side is Side.SERVER else []


REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"\r\n"
)
RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"\r\n"
)


def response(status: int, body: bytes = b"") -> Response:
    """A handshake response."""
    headers = Headers()
    if status == 101:
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
    else:
        headers["Content-Length"] = str(len(body))
    reason = {101: "Switching Protocols", 400: "Bad Request"}.get(status, "Other")
    return Response(status, reason, headers, body)


def server_with_request() -> ServerMachine:
    """A server that received the request (the event is consumed)."""
    server = ServerMachine()
    server.receive_data(REQUEST)
    [event] = server.events_received()
    assert isinstance(event, RequestReceived)
    return server


@pytest.fixture(params=[Side.CLIENT, Side.SERVER], ids=["client", "server"])
def side(request: pytest.FixtureRequest) -> Side:
    """Each test using it runs for both sides."""
    result: Side = request.param
    return result


@pytest.fixture
def machine(side: Side) -> Machine:
    """A machine of that side, OPEN from the start."""
    return Machine(side)


class Recorder(Extension):
    """An extension that records what it sees and marks frames it encodes."""

    def __init__(self, *, fail: bool = False) -> None:
        self.max_sizes: list[int | None] = []
        self.fail = fail

    @property
    def name(self) -> ExtensionName:
        return ExtensionName("x-recorder")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if self.fail:
            raise RuntimeError("boom")
        self.max_sizes.append(max_size)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return frame._replace(data=frame.data.lower())
        return frame

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return frame._replace(data=frame.data.upper())
        return frame


# -- initial state -------------------------------------------------------------


def test_machine_starts_open(side: Side) -> None:
    machine = Machine(side)
    assert machine.side is side
    assert machine.state is State.OPEN
    assert machine.extensions == []
    assert machine.close_rcvd is None
    assert machine.close_sent is None
    assert machine.close_rcvd_then_sent is None
    assert machine.parser_exc is None
    assert machine.handshake_exc is None
    assert machine.eof_sent is False
    assert machine.close_code is None
    assert machine.close_reason is None
    assert machine.close_expected() is False
    assert machine.events_received() == []
    assert machine.data_to_send() == []
    assert machine.pending_pings == ()


def test_server_and_client_start_connecting() -> None:
    server = ServerMachine()
    client = ClientMachine()
    assert (server.side, server.state) == (Side.SERVER, State.CONNECTING)
    assert (client.side, client.state) == (Side.CLIENT, State.CONNECTING)
    assert ServerMachine(state=State.OPEN).state is State.OPEN
    assert ClientMachine(state=State.OPEN, max_size=7).max_size == 7


def test_extensions_at_init_are_copied(side: Side) -> None:
    extensions = [Recorder()]
    machine = Machine(side, extensions=extensions)
    assert machine.extensions == extensions
    assert machine.extensions is not extensions


def test_plain_machine_connecting_waits_for_eof(side: Side) -> None:
    machine = Machine(side, state=State.CONNECTING)
    machine.receive_data(peer_frame(side, Opcode.TEXT, b"early"))
    assert machine.events_received() == []
    machine.receive_eof()
    assert machine.state is State.CLOSED
    assert machine.events_received() == []
    assert machine.close_code == 1006


# -- receiving data ------------------------------------------------------------


def test_receive_text_and_binary(machine: Machine) -> None:
    side = machine.side
    machine.receive_data(
        peer_frame(side, Opcode.TEXT, "café".encode())
        + peer_frame(side, Opcode.BINARY, b"\x00\xff")
        + peer_frame(side, Opcode.TEXT, b"")
    )
    assert machine.events_received() == [
        Message("café"),
        Message(b"\x00\xff"),
        Message(""),
    ]
    assert machine.events_received() == []
    assert machine.data_to_send() == []


def test_receive_frame_byte_by_byte(machine: Machine) -> None:
    data = peer_frame(machine.side, Opcode.BINARY, bytes(range(200)))
    for index in range(len(data)):
        assert machine.events_received() == []
        machine.receive_data(data[index : index + 1])
    assert machine.events_received() == [Message(bytes(range(200)))]


def test_receive_large_frame_lengths(machine: Machine) -> None:
    # 16-bit and 64-bit length forms.
    for size in (126, 70000):
        feed(machine, Opcode.BINARY, b"x" * size)
        assert machine.events_received() == [Message(b"x" * size)]


def test_receive_memoryview_and_bytearray(machine: Machine) -> None:
    data = peer_frame(machine.side, Opcode.TEXT, b"hi")
    machine.receive_data(bytearray(data[:3]))
    machine.receive_data(memoryview(data)[3:])
    assert machine.events_received() == [Message("hi")]


def test_receive_fragmented_text(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"ca", fin=False)
    feed(machine, Opcode.CONT, b"f", fin=False)
    feed(machine, Opcode.CONT, "é".encode(), fin=True)
    assert machine.events_received() == [Message("café")]
    # The next message starts afresh.
    feed(machine, Opcode.TEXT, b"a", fin=False)
    feed(machine, Opcode.CONT, b"b")
    assert machine.events_received() == [Message("ab")]


def test_receive_fragmented_binary(machine: Machine) -> None:
    feed(machine, Opcode.BINARY, b"ab", fin=False)
    feed(machine, Opcode.CONT, b"", fin=False)
    feed(machine, Opcode.CONT, b"cd")
    assert machine.events_received() == [Message(b"abcd")]


def test_utf8_split_across_fragments(machine: Machine) -> None:
    euro = "€".encode()  # 3 bytes
    feed(machine, Opcode.TEXT, euro[:1], fin=False)
    feed(machine, Opcode.CONT, euro[1:2], fin=False)
    feed(machine, Opcode.CONT, euro[2:] + b"!")
    assert machine.events_received() == [Message("€!")]


def test_control_frames_between_fragments(machine: Machine) -> None:
    machine.send_ping(b"p1")
    machine.data_to_send()
    feed(machine, Opcode.TEXT, b"he", fin=False)
    feed(machine, Opcode.PING, b"ping")
    feed(machine, Opcode.CONT, b"ll", fin=False)
    feed(machine, Opcode.PONG, b"p1")
    feed(machine, Opcode.CONT, b"o")
    assert machine.events_received() == [
        PingReceived(b"ping"),
        PongReceived(b"p1", (b"p1",)),
        Message("hello"),
    ]
    assert sent(machine) == [Frame(True, Opcode.PONG, b"ping")]


# -- errors from the peer --------------------------------------------------------


def assert_failed(machine: Machine, code: int, exc_type: type[BaseException]) -> None:
    """The machine failed with ``code``, sent that close frame and stopped."""
    assert isinstance(machine.parser_exc, exc_type)
    assert machine.state is State.CLOSING
    assert machine.close_sent == Close(code, "")
    assert machine.close_rcvd is None
    assert machine.close_expected()
    assert sent(machine) == [close_frame(code)] + eof_if_server(machine.side)
    # Reading has stopped: further frames are ignored.
    feed(machine, Opcode.TEXT, b"ignored")
    feed(machine, Opcode.CLOSE, close_payload(1000))
    assert machine.events_received() == []
    assert machine.data_to_send() == []
    machine.receive_eof()
    assert machine.state is State.CLOSED
    assert machine.close_code == 1006
    assert machine.close_reason == ""
    assert sent(machine) == [] if machine.side is Side.SERVER else [EOF]


def test_server_failure_exact_bytes() -> None:
    machine = Machine(Side.SERVER)
    machine.receive_data(raw_frame(Side.SERVER, 0x83, b""))  # opcode 3
    assert machine.data_to_send() == [b"\x88\x02\x03\xea", b""]
    assert isinstance(machine.parser_exc, ProtocolError)


@pytest.mark.parametrize(
    ("first", "payload"),
    [
        pytest.param(0x83, b"", id="reserved-opcode"),
        pytest.param(0x8B, b"", id="reserved-control-opcode"),
        pytest.param(0xC1, b"hi", id="rsv1-without-extension"),
        pytest.param(0xA1, b"hi", id="rsv2"),
        pytest.param(0x91, b"hi", id="rsv3"),
        pytest.param(0x09, b"", id="fragmented-ping"),
        pytest.param(0x89, b"x" * 126, id="ping-too-long"),
        pytest.param(0x88, b"\x03", id="close-one-byte"),
        pytest.param(0x88, close_payload(1004), id="close-code-1004"),
        pytest.param(0x88, close_payload(1005), id="close-code-1005"),
        pytest.param(0x88, close_payload(999), id="close-code-999"),
        pytest.param(0x88, close_payload(5000), id="close-code-5000"),
        pytest.param(0x80, b"x", id="continuation-without-start"),
    ],
)
def test_protocol_errors_send_1002(
    machine: Machine, first: int, payload: bytes
) -> None:
    machine.receive_data(raw_frame(machine.side, first, payload))
    assert_failed(machine, 1002, ProtocolError)


def test_wrong_masking_sends_1002(machine: Machine) -> None:
    # A server gets an unmasked frame, a client a masked one.
    wrong = machine.side is Side.CLIENT
    machine.receive_data(raw_frame(machine.side, 0x81, b"hi", masked=wrong))
    assert_failed(machine, 1002, ProtocolError)


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_new_message_inside_fragmented_one_sends_1002(
    machine: Machine, opcode: Opcode
) -> None:
    feed(machine, Opcode.TEXT, b"a", fin=False)
    feed(machine, opcode, b"b")
    assert_failed(machine, 1002, ProtocolError)


def test_invalid_utf8_sends_1007(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"\xff")
    assert_failed(machine, 1007, UnicodeDecodeError)


def test_invalid_utf8_in_fragment_fails_fast(machine: Machine) -> None:
    # ED A0 starts a surrogate: no continuation can make it valid, so the
    # connection fails before the message ends.
    feed(machine, Opcode.TEXT, b"ok", fin=False)
    feed(machine, Opcode.CONT, b"\xed\xa0", fin=False)
    assert_failed(machine, 1007, UnicodeDecodeError)


def test_invalid_utf8_in_first_fragment(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"\xc0", fin=False)
    assert_failed(machine, 1007, UnicodeDecodeError)


def test_truncated_utf8_at_end_of_message(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"a", fin=False)
    feed(machine, Opcode.CONT, "€".encode()[:2], fin=True)
    assert_failed(machine, 1007, UnicodeDecodeError)


def test_invalid_utf8_in_close_reason_sends_1007(machine: Machine) -> None:
    feed(machine, Opcode.CLOSE, close_payload(1000) + b"\xff")
    assert_failed(machine, 1007, UnicodeDecodeError)


def test_unexpected_error_sends_1011(
    side: Side, caplog: pytest.LogCaptureFixture
) -> None:
    machine = Machine(side, extensions=[Recorder(fail=True)])
    with caplog.at_level(logging.ERROR, logger="anyws.protocol"):
        feed(machine, Opcode.TEXT, b"hi")
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Error in data transfer"
    assert record.exc_info is not None
    assert isinstance(machine.parser_exc, RuntimeError)
    machine.extensions = []
    assert_failed(machine, 1011, RuntimeError)


# -- max_size ----------------------------------------------------------------------


def test_max_size_exact_boundary(side: Side) -> None:
    machine = Machine(side, max_size=10)
    feed(machine, Opcode.BINARY, b"x" * 10)
    assert machine.events_received() == [Message(b"x" * 10)]
    feed(machine, Opcode.TEXT, b"x" * 11)
    assert machine.events_received() == []
    assert_failed(machine, 1009, PayloadTooBig)


def test_max_size_across_fragments(side: Side) -> None:
    machine = Machine(side, max_size=10)
    feed(machine, Opcode.TEXT, b"x" * 4, fin=False)
    feed(machine, Opcode.CONT, b"x" * 4, fin=False)
    feed(machine, Opcode.CONT, b"x" * 2)
    assert machine.events_received() == [Message("x" * 10)]
    # The budget is per message: a new message may use all of it again.
    feed(machine, Opcode.BINARY, b"x" * 6, fin=False)
    feed(machine, Opcode.CONT, b"", fin=False)
    feed(machine, Opcode.CONT, b"x" * 5)
    assert machine.events_received() == []
    assert_failed(machine, 1009, PayloadTooBig)


def test_max_size_checked_before_payload_arrives(side: Side) -> None:
    machine = Machine(side, max_size=1000)
    data = peer_frame(side, Opcode.BINARY, b"x" * 1001)
    header_size = 4 + (4 if side is Side.SERVER else 0)
    machine.receive_data(data[:header_size])
    # Only the header arrived, and the connection already failed.
    assert isinstance(machine.parser_exc, PayloadTooBig)
    assert_failed(machine, 1009, PayloadTooBig)


def test_max_size_remaining_budget_from_header(side: Side) -> None:
    machine = Machine(side, max_size=10)
    feed(machine, Opcode.BINARY, b"x" * 8, fin=False)
    data = peer_frame(side, Opcode.CONT, b"x" * 3)
    machine.receive_data(data[:2])
    assert isinstance(machine.parser_exc, PayloadTooBig)
    assert_failed(machine, 1009, PayloadTooBig)


def test_control_frames_not_counted_in_max_size(side: Side) -> None:
    machine = Machine(side, max_size=2)
    feed(machine, Opcode.BINARY, b"xx", fin=False)
    # The remaining budget is 0, yet control frames still pass.
    feed(machine, Opcode.PING, b"12345")
    feed(machine, Opcode.PONG, b"12345")
    feed(machine, Opcode.CONT, b"")
    assert machine.events_received() == [
        PingReceived(b"12345"),
        PongReceived(b"12345", ()),
        Message(b"xx"),
    ]
    feed(machine, Opcode.CLOSE, close_payload(1000, "bye"))
    assert machine.close_rcvd == Close(1000, "bye")


def test_max_size_none_and_changed_later(side: Side) -> None:
    machine = Machine(side, max_size=None)
    feed(machine, Opcode.BINARY, b"x" * 100_000)
    assert machine.events_received() == [Message(b"x" * 100_000)]
    machine.max_size = 3
    feed(machine, Opcode.BINARY, b"xyz")
    assert machine.events_received() == [Message(b"xyz")]
    feed(machine, Opcode.BINARY, b"wxyz")
    assert_failed(machine, 1009, PayloadTooBig)


def test_max_size_lowered_during_a_message(side: Side) -> None:
    machine = Machine(side, max_size=10)
    feed(machine, Opcode.BINARY, b"x" * 8, fin=False)
    machine.max_size = 4
    # The message is already over the new limit: even an empty frame fails.
    feed(machine, Opcode.CONT, b"")
    assert_failed(machine, 1009, PayloadTooBig)


def test_max_size_passed_to_extensions(side: Side) -> None:
    recorder = Recorder()
    machine = Machine(side, max_size=10, extensions=[recorder])
    feed(machine, Opcode.BINARY, b"ABC", fin=False)
    feed(machine, Opcode.PING, b"")
    feed(machine, Opcode.CONT, b"DE")
    assert machine.events_received() == [PingReceived(b""), Message(b"abcde")]
    assert recorder.max_sizes == [10, None, 7]


# -- sending -------------------------------------------------------------------------


def test_server_sends_unmasked_frames() -> None:
    machine = Machine(Side.SERVER)
    machine.send_text("hi")
    machine.send_binary(b"\x00")
    assert machine.data_to_send() == [b"\x81\x02hi", b"\x82\x01\x00"]
    assert machine.data_to_send() == []


def test_client_sends_masked_frames() -> None:
    machine = Machine(Side.CLIENT)
    machine.send_text("hi")
    [data] = machine.data_to_send()
    assert data[:2] == b"\x81\x82"
    assert apply_mask(data[6:], data[2:6]) == b"hi"


def test_big_payloads_are_queued_apart_from_their_header() -> None:
    """From BIG bytes on, the payload is not copied behind its header (a
    mutable one was copied to bytes already: the stream may keep it)."""
    big = b"x" * BIG
    server = Machine(Side.SERVER)
    server.send_binary(big)
    header, payload = server.data_to_send()
    assert header == b"\x82\x7f" + struct.pack("!Q", BIG)
    assert payload is big
    mutable = bytearray(big)
    server.send_binary(mutable)
    _, payload = server.data_to_send()
    mutable[0] = 0
    assert payload == big
    client = Machine(Side.CLIENT)
    client.send_binary(big)
    header, masked = client.data_to_send()
    assert header[:10] == b"\x82\xff" + struct.pack("!Q", BIG)
    assert apply_mask(masked, header[10:]) == big
    client.send_binary(big[:-1])  # one byte short: joined
    [frame] = client.data_to_send()
    assert frame[:4] == b"\x82\xfe\xff\xff"


def test_send_data(machine: Machine) -> None:
    machine.send_text("café")
    machine.send_text(b"raw")
    machine.send_binary(b"bin")
    machine.send_binary(bytearray(b"ba"))
    machine.send_binary(memoryview(b"abcdef")[::2])
    assert sent(machine) == [
        Frame(True, Opcode.TEXT, "café".encode()),
        Frame(True, Opcode.TEXT, b"raw"),
        Frame(True, Opcode.BINARY, b"bin"),
        Frame(True, Opcode.BINARY, b"ba"),
        Frame(True, Opcode.BINARY, b"ace"),
    ]


def test_send_fragmented_messages(machine: Machine) -> None:
    machine.send_text("ca", fin=False)
    machine.send_ping(b"between")
    machine.send_continuation("fé", fin=False)
    machine.send_continuation(b"", fin=True)
    machine.send_binary(b"a", fin=False)
    machine.send_continuation(bytearray(b"b"), fin=False)
    machine.send_continuation(memoryview(b"c"), fin=True)
    assert sent(machine) == [
        Frame(False, Opcode.TEXT, b"ca"),
        Frame(True, Opcode.PING, b"between"),
        Frame(False, Opcode.CONT, "fé".encode()),
        Frame(True, Opcode.CONT, b""),
        Frame(False, Opcode.BINARY, b"a"),
        Frame(False, Opcode.CONT, b"b"),
        Frame(True, Opcode.CONT, b"c"),
    ]


def test_no_interleaved_messages(machine: Machine) -> None:
    with pytest.raises(ProtocolError):
        machine.send_continuation(b"x", fin=True)
    machine.send_text("a", fin=False)
    with pytest.raises(ProtocolError):
        machine.send_text("b")
    with pytest.raises(ProtocolError):
        machine.send_binary(b"b")
    machine.send_continuation("c", fin=True)
    assert sent(machine) == [
        Frame(False, Opcode.TEXT, b"a"),
        Frame(True, Opcode.CONT, b"c"),
    ]


def test_send_with_extensions(side: Side) -> None:
    machine = Machine(side, extensions=[Recorder()])
    machine.send_text("hi")
    machine.send_ping(b"ping")
    assert sent(machine) == [
        Frame(True, Opcode.TEXT, b"HI"),
        Frame(True, Opcode.PING, b"ping"),
    ]


SENDERS: list[tuple[str, Callable[[Machine], None]]] = [
    ("text", lambda m: m.send_text("x")),
    ("binary", lambda m: m.send_binary(b"x")),
    ("continuation", lambda m: m.send_continuation(b"x", fin=True)),
    ("ping", lambda m: m.send_ping(b"x")),
    ("pong", lambda m: m.send_pong(b"x")),
    ("close", lambda m: m.send_close(1000)),
]


def closing(side: Side) -> Machine:
    machine = Machine(side)
    machine.send_close(1000)
    return machine


def closed(side: Side) -> Machine:
    machine = Machine(side)
    machine.receive_eof()
    return machine


@pytest.mark.parametrize(("name", "send"), SENDERS, ids=[s[0] for s in SENDERS])
@pytest.mark.parametrize(
    "make",
    [
        lambda side: Machine(side, state=State.CONNECTING),
        closing,
        closed,
    ],
    ids=["connecting", "closing", "closed"],
)
def test_send_unless_open_is_invalid(
    side: Side,
    name: str,
    send: Callable[[Machine], None],
    make: Callable[[Side], Machine],
) -> None:
    machine = make(side)
    machine.data_to_send()
    with pytest.raises(InvalidState):
        send(machine)
    assert machine.data_to_send() == []


# -- ping and pong -----------------------------------------------------------------


def test_ping_received_is_answered(machine: Machine) -> None:
    feed(machine, Opcode.PING, b"hello")
    feed(machine, Opcode.PING, b"")
    assert machine.events_received() == [PingReceived(b"hello"), PingReceived(b"")]
    assert sent(machine) == [
        Frame(True, Opcode.PONG, b"hello"),
        Frame(True, Opcode.PONG, b""),
    ]


def test_pong_acknowledges_earlier_pings(machine: Machine) -> None:
    for payload in (b"1", b"2", b"3", b"4"):
        machine.send_ping(payload)
    assert machine.pending_pings == (b"1", b"2", b"3", b"4")
    assert sent(machine) == [
        Frame(True, Opcode.PING, p) for p in (b"1", b"2", b"3", b"4")
    ]
    feed(machine, Opcode.PONG, b"3")
    feed(machine, Opcode.PONG, b"3")
    feed(machine, Opcode.PONG, b"unknown")
    feed(machine, Opcode.PONG, b"4")
    assert machine.events_received() == [
        PongReceived(b"3", (b"1", b"2", b"3")),
        PongReceived(b"3", ()),
        PongReceived(b"unknown", ()),
        PongReceived(b"4", (b"4",)),
    ]
    assert machine.pending_pings == ()
    assert machine.data_to_send() == []


def test_ping_payload_reusable_after_pong(machine: Machine) -> None:
    machine.send_ping(b"same")
    with pytest.raises(
        ValueError, match="already waiting for a pong with the same data"
    ):
        machine.send_ping(b"same")
    feed(machine, Opcode.PONG, b"same")
    machine.send_ping(b"same")
    assert machine.pending_pings == (b"same",)
    assert sent(machine) == [Frame(True, Opcode.PING, b"same")] * 2


def test_ping_too_long(machine: Machine) -> None:
    machine.send_ping(b"x" * 125)
    with pytest.raises(ProtocolError):
        machine.send_ping(b"y" * 126)
    with pytest.raises(ProtocolError):
        machine.send_pong(b"y" * 126)
    assert machine.pending_pings == (b"x" * 125,)
    assert sent(machine) == [Frame(True, Opcode.PING, b"x" * 125)]


def test_send_pong(machine: Machine) -> None:
    machine.send_pong(b"beat")
    machine.send_pong(b"")
    assert sent(machine) == [
        Frame(True, Opcode.PONG, b"beat"),
        Frame(True, Opcode.PONG, b""),
    ]
    assert machine.pending_pings == ()


def test_ping_while_closing_is_ignored(machine: Machine) -> None:
    machine.send_ping(b"mine")
    machine.send_close(1000)
    machine.data_to_send()
    feed(machine, Opcode.PING, b"theirs")
    feed(machine, Opcode.PONG, b"mine")
    assert machine.events_received() == [PongReceived(b"mine", (b"mine",))]
    assert machine.data_to_send() == []


def test_pending_pings_kept_after_close(machine: Machine) -> None:
    machine.send_ping(b"1")
    machine.receive_eof()
    assert machine.pending_pings == (b"1",)


# -- closing handshake -----------------------------------------------------------------


def test_remote_close(machine: Machine) -> None:
    side = machine.side
    payload = close_payload(1001, "going")
    machine.receive_data(
        peer_frame(side, Opcode.TEXT, b"before")
        + peer_frame(side, Opcode.CLOSE, payload)
        + peer_frame(side, Opcode.TEXT, b"after")
    )
    assert machine.events_received() == [
        Message("before"),
        CloseReceived(1001, "going"),
    ]
    assert machine.state is State.CLOSING
    assert machine.close_rcvd == Close(1001, "going")
    assert machine.close_sent == Close(1001, "going")
    assert machine.close_rcvd_then_sent is True
    assert machine.close_expected()
    assert machine.close_code is None
    assert sent(machine) == [Frame(True, Opcode.CLOSE, payload)] + eof_if_server(side)
    # Reading has stopped.
    feed(machine, Opcode.PING, b"x")
    assert machine.events_received() == []
    assert machine.data_to_send() == []
    machine.receive_eof()
    assert machine.state is State.CLOSED
    assert (machine.close_code, machine.close_reason) == (1001, "going")
    assert sent(machine) == ([] if side is Side.SERVER else [EOF])
    assert machine.parser_exc is None


def test_remote_close_empty(machine: Machine) -> None:
    feed(machine, Opcode.CLOSE)
    assert machine.events_received() == [CloseReceived(1005, "")]
    assert machine.close_rcvd == machine.close_sent == Close(1005, "")
    assert sent(machine) == [Frame(True, Opcode.CLOSE, b"")] + eof_if_server(
        machine.side
    )
    machine.receive_eof()
    assert (machine.close_code, machine.close_reason) == (1005, "")


def test_remote_close_exact_bytes_echoed() -> None:
    machine = Machine(Side.SERVER)
    machine.receive_data(
        peer_frame(Side.SERVER, Opcode.CLOSE, close_payload(4000, "é"))
    )
    assert machine.data_to_send() == [b"\x88\x04\x0f\xa0\xc3\xa9", b""]


def test_local_close(machine: Machine) -> None:
    side = machine.side
    machine.send_close(1000, "bye")
    assert machine.state is State.CLOSING
    assert machine.close_sent == Close(1000, "bye")
    assert machine.close_expected()
    assert sent(machine) == [close_frame(1000, "bye")]
    # Data frames still arrive; pings are not answered any more.
    feed(machine, Opcode.TEXT, b"late", fin=False)
    feed(machine, Opcode.CONT, b"r")
    assert machine.events_received() == [Message("later")]
    feed(machine, Opcode.CLOSE, close_payload(1000, "ok"))
    assert machine.events_received() == [CloseReceived(1000, "ok")]
    assert machine.close_rcvd == Close(1000, "ok")
    assert machine.close_rcvd_then_sent is False
    assert machine.state is State.CLOSING
    assert sent(machine) == eof_if_server(side)
    machine.receive_eof()
    assert machine.state is State.CLOSED
    assert (machine.close_code, machine.close_reason) == (1000, "ok")
    assert sent(machine) == ([] if side is Side.SERVER else [EOF])


def test_local_close_empty(machine: Machine) -> None:
    machine.send_close()
    assert machine.close_sent == Close(1005, "")
    assert sent(machine) == [Frame(True, Opcode.CLOSE, b"")]


def test_local_close_exact_bytes() -> None:
    machine = Machine(Side.SERVER)
    machine.send_close(1000)
    assert machine.data_to_send() == [b"\x88\x02\x03\xe8"]


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2999, 5000])
def test_local_close_invalid_code(machine: Machine, code: int) -> None:
    with pytest.raises(ProtocolError, match="invalid status code"):
        machine.send_close(code)
    assert machine.state is State.OPEN
    assert machine.data_to_send() == []


def test_local_close_reason_too_long(machine: Machine) -> None:
    machine.send_close(1000, "é" * 61 + "x")  # 123 bytes: fits
    assert machine.state is State.CLOSING
    other_machine = Machine(machine.side)
    with pytest.raises(ProtocolError):
        other_machine.send_close(1000, "é" * 62)  # 124 bytes
    with pytest.raises(ProtocolError):
        other_machine.send_close(None, "reason without code")
    assert other_machine.state is State.OPEN
    assert other_machine.data_to_send() == []


@pytest.mark.parametrize("code", [1000, 1012, 1013, 1014, 3000, 4999])
def test_local_close_valid_codes(machine: Machine, code: int) -> None:
    machine.send_close(code)
    assert sent(machine) == [close_frame(code)]


def test_close_in_the_middle_of_a_fragmented_message(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"partial", fin=False)
    feed(machine, Opcode.CLOSE, close_payload(1000))
    assert machine.events_received() == [CloseReceived(1000, "")]
    assert machine.parser_exc is None
    machine.receive_eof()
    assert machine.close_code == 1000
    assert machine.close_exc().__class__ is ConnectionClosedOK


def exchange(a: Machine, b: Machine) -> None:
    """Deliver what each machine sent to the other, EOF included."""
    for source, target in ((a, b), (b, a)):
        for data in source.data_to_send():
            if data:
                target.receive_data(data)
            else:
                target.receive_eof()


def test_simultaneous_close() -> None:
    client, server = Machine(Side.CLIENT), Machine(Side.SERVER)
    client.send_close(1000, "client")
    server.send_close(1001, "server")
    exchange(client, server)
    # Each received the other's close frame while CLOSING: no echo.
    assert client.close_rcvd == Close(1001, "server")
    assert server.close_rcvd == Close(1000, "client")
    assert client.close_rcvd_then_sent is False
    assert server.close_rcvd_then_sent is False
    # The server queued EOF after the closing handshake; the client answers.
    assert client.state is State.CLOSED
    assert client.data_to_send() == [b""]
    server.receive_eof()
    assert server.state is State.CLOSED
    assert server.data_to_send() == []
    assert (client.close_code, client.close_reason) == (1001, "server")
    assert (server.close_code, server.close_reason) == (1000, "client")


@pytest.mark.parametrize("initiator", [Side.CLIENT, Side.SERVER])
def test_full_closing_handshake_between_machines(initiator: Side) -> None:
    client, server = Machine(Side.CLIENT), Machine(Side.SERVER)
    first, second = (client, server) if initiator is Side.CLIENT else (server, client)
    first.send_close(1000, "done")
    for _ in range(3):
        exchange(client, server)
    assert client.state is server.state is State.CLOSED
    assert client.eof_sent and server.eof_sent
    assert first.close_rcvd_then_sent is False
    assert second.close_rcvd_then_sent is True
    for machine in (client, server):
        assert (machine.close_code, machine.close_reason) == (1000, "done")
        assert machine.close_sent == machine.close_rcvd == Close(1000, "done")
        assert isinstance(machine.close_exc(), ConnectionClosedOK)


# -- fail() ---------------------------------------------------------------------


def test_fail_while_open(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"part", fin=False)
    machine.receive_data(peer_frame(machine.side, Opcode.TEXT, b"x")[:1])
    machine.fail(1011, "keepalive")
    assert machine.state is State.CLOSING
    assert machine.close_sent == Close(1011, "keepalive")
    assert machine.parser_exc is None
    assert machine.close_expected()
    assert sent(machine) == [close_frame(1011, "keepalive")] + eof_if_server(
        machine.side
    )
    # Stopped reading, the buffered byte and the partial message included.
    feed(machine, Opcode.CONT, b"end")
    assert machine.events_received() == []
    machine.fail(1002)  # Already failed: nothing more is sent.
    assert machine.data_to_send() == []
    machine.receive_eof()
    assert machine.close_code == 1006


def test_fail_1006_sends_no_frame(machine: Machine) -> None:
    machine.fail(1006)
    assert machine.state is State.CLOSING
    assert machine.close_sent is None
    assert sent(machine) == eof_if_server(machine.side)


def test_fail_while_closing(machine: Machine) -> None:
    machine.send_close(1000)
    machine.data_to_send()
    machine.fail(1011)
    assert machine.close_sent == Close(1000, "")
    assert sent(machine) == eof_if_server(machine.side)


def test_fail_when_closed_does_nothing(machine: Machine) -> None:
    machine.receive_eof()
    machine.data_to_send()
    machine.fail(1002)
    assert machine.state is State.CLOSED
    assert machine.data_to_send() == []
    assert machine.close_sent is None


def test_fail_while_connecting() -> None:
    server = server_with_request()
    server.fail(1011)
    assert server.state is State.CLOSING
    assert server.data_to_send() == [b""]
    assert server.close_expected()
    client = ClientMachine()
    client.fail(1006)
    assert client.state is State.CLOSING
    assert client.data_to_send() == []
    client.receive_eof()
    assert client.data_to_send() == [b""]
    assert client.state is State.CLOSED


def test_fail_invalid_code_changes_nothing(machine: Machine) -> None:
    with pytest.raises(ProtocolError):
        machine.fail(1005)
    assert machine.state is State.OPEN
    assert machine.data_to_send() == []


# -- end of stream ----------------------------------------------------------------


def test_eof_between_frames(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"hi")
    machine.receive_eof()
    assert machine.events_received() == [Message("hi")]
    assert machine.state is State.CLOSED
    assert machine.parser_exc is None
    assert machine.close_rcvd is None
    assert machine.data_to_send() == [b""]
    assert (machine.close_code, machine.close_reason) == (1006, "")
    assert machine.close_expected()


def test_eof_inside_a_frame(machine: Machine) -> None:
    machine.receive_data(peer_frame(machine.side, Opcode.TEXT, b"hello")[:-1])
    machine.receive_eof()
    assert isinstance(machine.parser_exc, EOFError)
    assert machine.state is State.CLOSED
    assert machine.data_to_send() == [b""]
    assert machine.close_code == 1006
    assert machine.events_received() == []


def test_eof_inside_a_fragmented_message(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"a", fin=False)
    machine.receive_eof()
    assert machine.parser_exc is None
    assert machine.events_received() == []
    assert machine.close_code == 1006


def test_eof_is_fed_once_and_data_after_is_ignored(machine: Machine) -> None:
    machine.receive_eof()
    machine.receive_eof()
    machine.receive_data(peer_frame(machine.side, Opcode.TEXT, b"late"))
    assert machine.events_received() == []
    assert machine.data_to_send() == [b""]
    assert machine.state is State.CLOSED


def test_eof_while_closing_after_local_close(machine: Machine) -> None:
    machine.send_close(1000)
    machine.data_to_send()
    machine.receive_eof()
    assert machine.state is State.CLOSED
    assert machine.close_code == 1006
    assert machine.data_to_send() == [b""]
    exc = machine.close_exc()
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent == Close(1000, "")
    assert exc.rcvd is None


# -- close_exc ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        (1000, ConnectionClosedOK),
        (1001, ConnectionClosedOK),
        (1005, ConnectionClosedOK),
        (1002, ConnectionClosedError),
        (1011, ConnectionClosedError),
        (4000, ConnectionClosedError),
    ],
)
def test_close_exc_after_remote_close(
    machine: Machine, code: int, exc_type: type[Exception]
) -> None:
    payload = b"" if code == 1005 else close_payload(code, "why")
    reason = "" if code == 1005 else "why"
    feed(machine, Opcode.CLOSE, payload)
    machine.receive_eof()
    exc = machine.close_exc()
    assert type(exc) is exc_type
    assert (exc.code, exc.reason) == (code, reason)
    assert exc.rcvd == Close(code, reason)
    assert exc.sent == Close(code, reason)
    assert exc.rcvd.code == code
    assert exc.__cause__ is None


def test_close_exc_after_local_failure(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"\xff")
    machine.receive_eof()
    exc = machine.close_exc()
    assert type(exc) is ConnectionClosedError
    assert (exc.code, exc.reason) == (1006, "")
    assert exc.rcvd is None
    assert exc.sent == Close(1007, "")
    assert isinstance(exc.__cause__, UnicodeDecodeError)
    assert exc.__cause__ is machine.parser_exc


def test_close_exc_before_closed(machine: Machine) -> None:
    feed(machine, Opcode.CLOSE, close_payload(1000))
    assert machine.state is State.CLOSING
    exc = machine.close_exc()
    assert type(exc) is ConnectionClosedError
    assert exc.code == 1006
    assert exc.rcvd == Close(1000, "")
    assert (
        str(exc) == "code = 1006 (connection closed abnormally [internal]), no reason"
    )


def test_close_exc_after_eof_mid_frame(machine: Machine) -> None:
    machine.receive_data(b"\x81")
    machine.receive_eof()
    exc = machine.close_exc()
    assert type(exc) is ConnectionClosedError
    assert isinstance(exc.__cause__, EOFError)


# -- opening handshake: server ---------------------------------------------------------


def test_server_receives_request() -> None:
    server = ServerMachine()
    server.receive_data(REQUEST[:10])
    assert server.events_received() == []
    server.receive_data(REQUEST[10:])
    [event] = server.events_received()
    assert isinstance(event, RequestReceived)
    assert event.request.path == "/chat"
    assert event.request.headers["Host"] == "example.com"
    assert server.state is State.CONNECTING
    assert not server.close_expected()


def test_server_accepts_with_frames_in_the_same_chunk() -> None:
    server = ServerMachine()
    server.receive_data(REQUEST + peer_frame(Side.SERVER, Opcode.TEXT, b"EARLY"))
    assert [type(e) for e in server.events_received()] == [RequestReceived]
    # Frames wait in the buffer until the response is sent.
    server.receive_data(peer_frame(Side.SERVER, Opcode.PING, b"p"))
    assert server.events_received() == []
    with pytest.raises(InvalidState):
        server.send_text("too early")
    recorder = Recorder()
    server.send_response(response(101), [recorder])
    assert server.state is State.OPEN
    assert server.extensions == [recorder]
    assert server.events_received() == [Message("early"), PingReceived(b"p")]
    [head, pong] = server.data_to_send()
    assert head == response(101).serialize()
    assert pong == b"\x8a\x01p"
    with pytest.raises(InvalidState):
        server.send_response(response(101))


def test_server_rejects() -> None:
    server = server_with_request()
    server.receive_data(peer_frame(Side.SERVER, Opcode.TEXT, b"x"))
    rejection = response(400, b"Failed.\n")
    server.send_response(rejection)
    assert server.data_to_send() == [rejection.serialize(), b""]
    assert server.state is State.CONNECTING
    assert server.eof_sent
    assert server.close_expected()
    assert server.events_received() == []
    with pytest.raises(InvalidState):
        server.send_response(response(101))
    with pytest.raises(InvalidState):
        server.send_text("x")
    server.receive_data(b"more")
    server.receive_eof()
    assert server.state is State.CLOSED
    assert server.data_to_send() == []
    assert server.events_received() == []
    assert server.close_code == 1006


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (b"POST / HTTP/1.1\r\n\r\n", ValueError),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 3 + b"\r\n", SecurityError),
        (b"GET / HTTP/1.1\n\r\n", EOFError),
    ],
)
def test_server_invalid_request(data: bytes, cause: type[Exception]) -> None:
    server = ServerMachine(max_num_headers=2)
    server.receive_data(data + REQUEST)
    assert server.events_received() == []
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert str(server.handshake_exc) == "did not receive a valid HTTP request"
    assert isinstance(server.handshake_exc.__cause__, cause)
    assert server.state is State.CONNECTING
    assert server.close_expected()
    # The I/O layer answers 400, then the connection ends.
    server.send_response(response(400))
    assert server.data_to_send() == [response(400).serialize(), b""]
    server.receive_eof()
    assert server.state is State.CLOSED


def test_server_request_line_too_long() -> None:
    server = ServerMachine(max_line=16)
    server.receive_data(REQUEST)
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert isinstance(server.handshake_exc.__cause__, SecurityError)


@pytest.mark.parametrize("received", [b"", REQUEST[:20]])
def test_server_client_leaves_before_request(received: bytes) -> None:
    server = ServerMachine()
    server.receive_data(received)
    server.receive_eof()
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert isinstance(server.handshake_exc.__cause__, EOFError)
    assert server.state is State.CLOSED
    assert server.data_to_send() == [b""]
    # A late response is dropped: the client is gone.
    server.send_response(response(400))
    assert server.data_to_send() == []
    assert server.state is State.CLOSED


def test_server_eof_while_waiting_for_response() -> None:
    server = server_with_request()
    server.receive_data(peer_frame(Side.SERVER, Opcode.TEXT, b"x"))
    server.receive_eof()
    assert server.handshake_exc is None
    assert server.state is State.CLOSED
    server.send_response(response(101))
    assert server.state is State.CLOSED
    assert server.data_to_send() == [b""]
    assert server.events_received() == []


def test_server_response_that_cannot_be_serialized() -> None:
    server = server_with_request()
    with pytest.raises(ValueError):
        server.send_response(Response(42, "Bad", Headers()))
    assert server.state is State.CONNECTING
    assert server.data_to_send() == []


# -- opening handshake: client ---------------------------------------------------------


def test_client_handshake_with_frames_in_the_same_chunk() -> None:
    client = ClientMachine()
    with pytest.raises(InvalidState):
        client.send_text("too early")
    request = Request("/chat", Headers({"Host": "example.com"}))
    client.send_request(request)
    assert client.data_to_send() == [request.serialize()]
    client.receive_data(
        RESPONSE_101
        + peer_frame(Side.CLIENT, Opcode.TEXT, b"HELLO")
        + peer_frame(Side.CLIENT, Opcode.PING, b"p")[:1]
    )
    [event] = client.events_received()
    assert isinstance(event, ResponseReceived)
    assert event.response.status_code == 101
    assert client.state is State.CONNECTING
    assert not client.close_expected()
    recorder = Recorder()
    client.open([recorder])
    assert client.state is State.OPEN
    assert client.extensions == [recorder]
    assert client.events_received() == [Message("hello")]
    client.receive_data(peer_frame(Side.CLIENT, Opcode.PING, b"p")[1:])
    assert client.events_received() == [PingReceived(b"p")]
    assert sent(client) == [Frame(True, Opcode.PONG, b"p")]
    with pytest.raises(InvalidState):
        client.open()
    with pytest.raises(InvalidState):
        client.send_request(request)


def test_client_response_in_pieces() -> None:
    client = ClientMachine()
    for index in range(len(RESPONSE_101)):
        assert client.events_received() == []
        client.receive_data(RESPONSE_101[index : index + 1])
    [event] = client.events_received()
    assert isinstance(event, ResponseReceived)


def test_client_non_101_response_with_length() -> None:
    client = ClientMachine()
    client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
    [event] = client.events_received()
    assert isinstance(event, ResponseReceived)
    assert (event.response.status_code, event.response.body) == (403, b"nope")
    assert client.close_expected()
    assert client.state is State.CONNECTING
    assert client.data_to_send() == []
    client.receive_eof()
    assert client.state is State.CLOSED
    assert client.data_to_send() == [b""]


def test_client_non_101_response_until_eof() -> None:
    client = ClientMachine()
    client.receive_data(b"HTTP/1.1 500 Internal Server Error\r\n\r\nbody")
    assert client.events_received() == []
    client.receive_eof()
    [event] = client.events_received()
    assert isinstance(event, ResponseReceived)
    assert event.response.body == b"body"
    assert client.state is State.CLOSED


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (b"HTTP/1.0 101 Switching Protocols\r\n\r\n", ValueError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", SecurityError),
    ],
)
def test_client_invalid_response(data: bytes, cause: type[Exception]) -> None:
    client = ClientMachine(max_body_size=1000)
    client.receive_data(data)
    assert client.events_received() == []
    assert isinstance(client.handshake_exc, InvalidMessage)
    assert str(client.handshake_exc) == "did not receive a valid HTTP response"
    assert isinstance(client.handshake_exc.__cause__, cause)
    assert client.close_expected()
    client.receive_data(b"ignored")
    client.receive_eof()
    assert client.state is State.CLOSED
    assert client.data_to_send() == [b""]


def test_client_server_leaves_before_response() -> None:
    client = ClientMachine()
    client.receive_data(RESPONSE_101[:10])
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidMessage)
    assert isinstance(client.handshake_exc.__cause__, EOFError)
    assert client.state is State.CLOSED


def test_client_open_after_eof_parses_buffered_frames() -> None:
    client = ClientMachine()
    client.receive_data(
        RESPONSE_101
        + peer_frame(Side.CLIENT, Opcode.TEXT, b"bye")
        + peer_frame(Side.CLIENT, Opcode.PING, b"p")
        + peer_frame(Side.CLIENT, Opcode.CLOSE, close_payload(1000))
    )
    client.receive_eof()
    assert client.state is State.CLOSED
    assert [type(e) for e in client.events_received()] == [ResponseReceived]
    assert client.data_to_send() == [b""]
    client.open()
    assert client.state is State.CLOSED
    assert client.events_received() == [Message("bye"), CloseReceived(1000, "")]
    # Nothing may be written after EOF: no pong, no echo.
    assert client.data_to_send() == []
    assert client.close_code == 1000
    assert client.close_rcvd_then_sent is None


def test_client_open_after_eof_with_truncated_frame() -> None:
    client = ClientMachine()
    client.receive_data(RESPONSE_101 + b"\x81\x05he")
    client.receive_eof()
    client.open()
    assert isinstance(client.parser_exc, EOFError)
    assert client.events_received() == [
        ResponseReceived(response=client_response_of(RESPONSE_101))
    ]


def client_response_of(data: bytes) -> Response:
    """Parse a response the way the client machine does."""
    client = ClientMachine()
    client.receive_data(data)
    [event] = client.events_received()
    assert isinstance(event, ResponseReceived)
    return event.response


def test_handshake_between_machines() -> None:
    client, server = ClientMachine(), ServerMachine()
    client.send_request(Request("/", Headers({"Host": "h"})))
    exchange(client, server)
    [request_event] = server.events_received()
    assert isinstance(request_event, RequestReceived)
    server.send_response(response(101))
    server.send_text("welcome")
    exchange(client, server)
    [response_event] = client.events_received()
    assert isinstance(response_event, ResponseReceived)
    client.open()
    assert client.events_received() == [Message("welcome")]
    client.send_binary(b"thanks")
    exchange(client, server)
    assert server.events_received() == [Message(b"thanks")]


# -- logging ----------------------------------------------------------------------


def debug_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    return logger


def test_debug_logs(side: Side, caplog: pytest.LogCaptureFixture) -> None:
    logger = debug_logger(f"test.machine.{side.value}")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        machine = Machine(side, logger=logger)
        assert machine.debug
        feed(machine, Opcode.TEXT, b"hi")
        feed(machine, Opcode.PING, b"")
        machine.send_ping(b"1")
        feed(machine, Opcode.PONG, b"1")
        machine.send_close(1000)
        feed(machine, Opcode.PING, b"")
        feed(machine, Opcode.CLOSE, close_payload(1000))
        machine.receive_eof()
    messages = [record.getMessage() for record in caplog.records]
    assert "< TEXT 'hi' [2 bytes]" in messages
    assert "> CLOSE 1000 (OK) [2 bytes]" in messages
    assert "> PONG [0 bytes]" in messages
    assert "- pong acknowledges 1 ping(s)" in messages
    assert "! ignoring ping received while CLOSING" in messages
    assert "= connection is CLOSING" in messages
    assert "= connection is CLOSED" in messages
    assert "< EOF" in messages
    assert "> EOF" in messages


def test_debug_logs_failures(caplog: pytest.LogCaptureFixture) -> None:
    logger = debug_logger("test.machine.failures")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        machine = Machine(Side.SERVER, logger=logger)
        machine.receive_data(raw_frame(Side.SERVER, 0x83, b""))
        truncated = Machine(Side.SERVER, logger=logging.LoggerAdapter(logger))
        truncated.receive_data(b"\x81")
        truncated.receive_eof()
    messages = [record.getMessage() for record in caplog.records]
    assert "! failing connection with code 1002" in messages
    assert "! ProtocolError: invalid opcode: 3" in messages
    assert "! stream ended inside a frame" in messages


def test_debug_logs_handshake(caplog: pytest.LogCaptureFixture) -> None:
    logger = debug_logger("test.machine.handshake")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        server = ServerMachine(logger=logger)
        server.receive_data(REQUEST)
        server.send_response(response(101))
        client = ClientMachine(logger=logger)
        client.send_request(Request("/chat", Headers()))
        client.receive_data(RESPONSE_101)
        client.open()
        bad = ServerMachine(logger=logger)
        bad.receive_data(b"BAD\r\n")
    messages = [record.getMessage() for record in caplog.records]
    assert "< GET /chat HTTP/1.1" in messages
    assert "> HTTP/1.1 101" in messages
    assert "> GET /chat HTTP/1.1" in messages
    assert "< HTTP/1.1 101 Switching Protocols" in messages
    assert "= connection is OPEN" in messages
    assert any(m.startswith("! did not receive a valid HTTP request") for m in messages)


def test_no_logs_unless_debug(side: Side, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.machine.quiet")
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger=logger.name):
        machine = Machine(side, logger=logger)
        assert not machine.debug
        feed(machine, Opcode.TEXT, b"hi")
        feed(machine, Opcode.PING, b"")
        machine.send_close(1000)
        feed(machine, Opcode.PING, b"")
        machine.receive_eof()
    assert caplog.records == []


def test_default_logger(side: Side) -> None:
    assert Machine(side).logger is logging.getLogger("anyws.protocol")


# -- the parser generator never finishes -------------------------------------------


def test_parser_survives_everything(machine: Machine) -> None:
    def chunks() -> Generator[bytes, None, None]:
        yield peer_frame(machine.side, Opcode.TEXT, b"a")
        yield raw_frame(machine.side, 0x83, b"")
        yield b"garbage" * 10

    for chunk in chunks():
        machine.receive_data(chunk)
    machine.receive_eof()
    assert machine.state is State.CLOSED
    assert machine.events_received() == [Message("a")]


def test_events_are_typed(machine: Machine) -> None:
    feed(machine, Opcode.TEXT, b"x")
    events: list[Event] = machine.events_received()
    assert events == [Message("x")]
