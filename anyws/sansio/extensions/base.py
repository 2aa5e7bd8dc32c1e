"""The interfaces of WebSocket extensions and of their factories (RFC 6455, 9).

An extension transforms frames once the connection is open. Factories take
part in the opening handshake: a client factory writes the parameters of its
offer and checks the server's answer; a server factory reads one offer and
either accepts it, with the parameters to answer, or declines it.

Declining is done by raising :exc:`~anyws.exceptions.NegotiationError` (or one
of its subclasses). Code that uses these objects only calls the methods and
reads ``name``: duck-typed objects that never subclass these ABCs work too,
as they did with websockets 8.1.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ..._types import ExtensionName, ExtensionParameter
from ..frames import Frame

__all__ = ("ClientExtensionFactory", "Extension", "ServerExtensionFactory")


class Extension(abc.ABC):
    """An extension in use on an open connection.

    Outgoing frames go through :meth:`encode` of each extension in the
    negotiated order; incoming frames go through :meth:`decode` in the reverse
    order (RFC 6455, 9.1).
    """

    @property
    @abc.abstractmethod
    def name(self) -> ExtensionName:
        """The extension's token, as in ``Sec-WebSocket-Extensions``."""

    @abc.abstractmethod
    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Transform an incoming frame.

        Args:
            frame: the frame as read from the wire (or from the next
                extension), with its payload unmasked.
            max_size: how many payload bytes the result may hold at most;
                ``None`` means no limit.

        Returns:
            The transformed frame.

        Raises:
            PayloadTooBig: the result would be larger than ``max_size``.
            ProtocolError: the frame breaks the extension's rules.
        """

    @abc.abstractmethod
    def encode(self, frame: Frame) -> Frame:
        """Transform an outgoing frame.

        Args:
            frame: the frame to send (or the output of the previous extension).

        Returns:
            The transformed frame.
        """


class ClientExtensionFactory(abc.ABC):
    """Offers an extension in a client request and checks the server's answer."""

    @property
    @abc.abstractmethod
    def name(self) -> ExtensionName:
        """The extension's token, as in ``Sec-WebSocket-Extensions``."""

    @abc.abstractmethod
    def get_request_params(self) -> list[ExtensionParameter]:
        """Build the parameters of the offer sent in the request.

        Returns:
            The parameters, in the order they are written in the header.
        """

    @abc.abstractmethod
    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        """Check the parameters the server answered and build the extension.

        Args:
            params: the parameters of the extension in the response.
            accepted_extensions: the extensions already accepted from the
                same response, in order.

        Returns:
            The extension to use on the connection.

        Raises:
            NegotiationError: the answer is not acceptable.
        """


class ServerExtensionFactory(abc.ABC):
    """Reads an extension offer in a client request and accepts or declines it."""

    @property
    @abc.abstractmethod
    def name(self) -> ExtensionName:
        """The extension's token, as in ``Sec-WebSocket-Extensions``."""

    @abc.abstractmethod
    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept an offer, choosing the parameters of the answer.

        Args:
            params: the parameters of the offer.
            accepted_extensions: the extensions already accepted for this
                request, in order.

        Returns:
            The parameters to send in the response, and the extension to use
            on the connection.

        Raises:
            NegotiationError: the offer is declined; the server then tries the
                next offer.
        """
