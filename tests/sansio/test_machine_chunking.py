"""Property tests: how bytes are chunked never changes what a machine does.

A random byte stream (valid frames, possibly cut by a close frame, garbage or
EOF, possibly preceded by the opening handshake) is fed once whole and once
cut at random places. Both runs must give the same events and send the same
frames (client frames are compared after unmasking: their masks are random).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from anyws.sansio._buffer import StreamReader
from anyws.sansio.datastructures import Headers
from anyws.sansio.events import Event, RequestReceived, ResponseReceived
from anyws.sansio.frames import Close, Frame, Opcode
from anyws.sansio.http11 import Response
from anyws.sansio.machine import ClientMachine, Machine, ServerMachine, Side, State

MASK_KEY = b"\x01\x02\x03\x04"
REQUEST = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
RESPONSE_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
OUR_PINGS = (b"a", b"b", b"c")

# Control payloads from a small alphabet, so that pongs often match a ping.
control_payloads = st.sampled_from([b"", b"a", b"b", b"c", b"zz", b"x" * 125])


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets."""
    cuts = sorted(cuts)
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@st.composite
def messages(draw: st.DrawFn) -> list[Frame]:
    """One message cut into fragments, maybe with control frames between them."""
    if draw(st.booleans()):
        opcode, payload = Opcode.TEXT, draw(st.text(max_size=40)).encode()
    else:
        opcode, payload = Opcode.BINARY, draw(st.binary(max_size=40))
    # Cut anywhere, even inside a UTF-8 character.
    pieces = cut(payload, draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    frames: list[Frame] = []
    for index, piece in enumerate(pieces):
        if index and draw(st.booleans()):
            control = draw(st.sampled_from([Opcode.PING, Opcode.PONG]))
            frames.append(Frame(True, control, draw(control_payloads)))
        fin = index == len(pieces) - 1
        frames.append(Frame(fin, Opcode.CONT if index else opcode, piece))
    return frames


frame_groups = st.one_of(
    messages(),
    st.builds(
        lambda opcode, data: [Frame(True, opcode, data)],
        st.sampled_from([Opcode.PING, Opcode.PONG]),
        control_payloads,
    ),
)


@dataclass
class Scenario:
    """What the peer sends, and how the machine is set up."""

    side: Side
    handshake: bool
    max_size: int | None
    stream: bytes
    eof: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Draw a side, its settings and the byte stream its peer sends."""
    side = draw(st.sampled_from(Side))
    mask = side is Side.SERVER
    groups = draw(st.lists(frame_groups, max_size=8))
    frames = [frame for group in groups for frame in group]
    ending = draw(st.sampled_from(["none", "close", "empty-close", "garbage"]))
    if ending == "close":
        frames.append(Frame(True, Opcode.CLOSE, Close(1000, "bye").serialize()))
    elif ending == "empty-close":
        frames.append(Frame(True, Opcode.CLOSE, b""))
    # Frames after a close frame must be ignored, whatever the chunking.
    if draw(st.booleans()):
        frames.append(Frame(True, Opcode.TEXT, b"late"))
    stream = b"".join(f.serialize(mask=mask, mask_key=MASK_KEY) for f in frames)
    if ending == "garbage":
        stream += draw(st.binary(min_size=1, max_size=20))
    handshake = draw(st.booleans())
    if handshake:
        stream = (REQUEST if side is Side.SERVER else RESPONSE_101) + stream
    return Scenario(
        side=side,
        handshake=handshake,
        max_size=draw(st.sampled_from([None, 10, 30, 1000])),
        stream=stream,
        eof=draw(st.booleans()),
    )


Output = list[Frame | bytes]


def parse_output(chunks: list[bytes], side: Side) -> Output:
    """Frames sent (unmasked); handshake bytes and EOF stay as bytes."""
    result: Output = []
    for chunk in chunks:
        if not chunk or chunk.startswith(b"HTTP/"):
            result.append(chunk)
            continue
        reader = StreamReader()
        reader.feed_data(chunk)
        parser = Frame.parse(reader.read_exact, mask=side is Side.CLIENT)
        try:
            next(parser)
        except StopIteration as done:
            result.append(done.value)
        else:  # pragma: no cover (each chunk is one whole frame)
            raise AssertionError("incomplete frame sent")
    return result


def make_machine(scenario: Scenario) -> Machine:
    """The machine under test."""
    if not scenario.handshake:
        return Machine(scenario.side, max_size=scenario.max_size)
    if scenario.side is Side.SERVER:
        return ServerMachine(max_size=scenario.max_size)
    return ClientMachine(max_size=scenario.max_size)


def run(scenario: Scenario, chunks: list[bytes]) -> tuple[list[Event], Output, State]:
    """Feed the chunks, acting like an I/O layer; return what happened."""
    machine = make_machine(scenario)
    events: list[Event] = []
    output: list[bytes] = []

    def collect() -> None:
        for event in machine.events_received():
            events.append(event)
            # The I/O layer accepts the handshake as soon as it sees it.
            if isinstance(event, RequestReceived):
                assert isinstance(machine, ServerMachine)
                machine.send_response(Response(101, "Switching Protocols", Headers()))
            elif isinstance(event, ResponseReceived):
                assert isinstance(machine, ClientMachine)
                machine.open()
        # Accepting the handshake parses the frames buffered behind it.
        events.extend(machine.events_received())
        output.extend(machine.data_to_send())

    if not scenario.handshake:
        # Sent before any input, so that pongs in the stream may match them.
        # (After a handshake, when buffered frames are parsed depends on the
        # chunking, and so would the order of our pings and their pongs.)
        for payload in OUR_PINGS:
            machine.send_ping(payload)
    for chunk in chunks:
        machine.receive_data(chunk)
        collect()
    if scenario.eof:
        machine.receive_eof()
    collect()
    return events, parse_output(output, scenario.side), machine.state


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_chunking_does_not_matter(scenario: Scenario, data: st.DataObject) -> None:
    stream = scenario.stream
    chunks = cut(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    assert b"".join(chunks) == stream
    assert run(scenario, chunks) == run(scenario, [stream])


@settings(max_examples=50, deadline=None)
@given(scenario=scenarios())
def test_byte_by_byte(scenario: Scenario) -> None:
    stream = scenario.stream
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert run(scenario, chunks) == run(scenario, [stream])
