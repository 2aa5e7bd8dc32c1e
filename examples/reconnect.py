"""A client that reconnects, with exponential backoff, when it loses the server.

Servers restart and networks drop. This client waits 0.5 s after the first
failure, then twice as long after each further one (up to 30 s, with jitter so
that many clients do not come back all at once), and starts again from 0.5 s
once a connection opens::

    python -m examples.reconnect ws://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Awaitable, Callable

import anyio

import anyws

__all__ = ("backoff_delays", "main")


def backoff_delays(initial: float = 0.5, maximum: float = 30.0) -> list[float]:
    """The delays before the first retries: doubling up to ``maximum``."""
    delays = [initial]
    while delays[-1] * 2 < maximum:
        delays.append(delays[-1] * 2)
    return [*delays, maximum]


async def main(
    uri: str,
    on_message: Callable[[anyws.Data], Awaitable[None]],
    *,
    initial_delay: float = 0.5,
    max_delay: float = 30.0,
    on_retry: Callable[[BaseException | None, float], None] | None = None,
) -> None:
    """Receive messages from ``uri`` forever, reconnecting when needed.

    Args:
        uri: the server.
        on_message: called with each message.
        initial_delay: the wait after the first failure.
        max_delay: the longest wait.
        on_retry: called before each retry with the error (``None`` after a
            normal close) and the delay.
    """
    delays = backoff_delays(initial_delay, max_delay)
    failures = 0
    while True:
        try:
            async with anyws.connect(uri) as websocket:
                failures = 0
                async for message in websocket:
                    await on_message(message)
            # The server closed normally (1001: it restarts, say).
            error: BaseException | None = None
        except (OSError, TimeoutError, anyws.InvalidHandshake) as exc:
            error = exc  # refused, unreachable, or a server not ready yet
        except anyws.ConnectionClosedError as exc:
            error = exc  # lost without a closing handshake
        delay = delays[min(failures, len(delays) - 1)]
        delay *= random.uniform(0.8, 1.2)  # jitter
        failures += 1
        if on_retry is not None:
            on_retry(error, delay)
        await anyio.sleep(delay)


async def show(message: anyws.Data) -> None:
    print(f"< {message!s}")


def explain(error: BaseException | None, delay: float) -> None:
    cause = "closed" if error is None else f"{type(error).__name__}: {error}"
    print(f"! {cause}; retrying in {delay:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anyws reconnecting client")
    parser.add_argument("uri")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    try:
        anyio.run(lambda: main(args.uri, show, on_retry=explain), backend=args.backend)
    except KeyboardInterrupt:
        pass
