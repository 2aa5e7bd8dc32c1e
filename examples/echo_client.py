"""Echo client: send each message, print the answer.

::

    python -m examples.echo_client ws://127.0.0.1:8765/ hello world
"""

from __future__ import annotations

import argparse

import anyio

import anyws

__all__ = ("main",)


async def main(uri: str, messages: list[str]) -> list[anyws.Data]:
    """Send each message in turn and wait for its echo.

    Args:
        uri: the ``ws://`` or ``wss://`` URI of an echo server.
        messages: the text messages to send.

    Returns:
        The answers, in order.
    """
    answers: list[anyws.Data] = []
    async with anyws.connect(uri) as websocket:
        for message in messages:
            await websocket.send(message)
            answer = await websocket.recv()
            print(f"> {message}\n< {answer!s}")
            answers.append(answer)
    # Leaving the block closed the connection with code 1000.
    return answers


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws echo client")
    parser.add_argument("uri")
    parser.add_argument("messages", nargs="+")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.uri, args.messages, backend=args.backend)
