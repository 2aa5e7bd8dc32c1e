"""The server side of a connection: :class:`WebSocketServerProtocol`.

It runs the server side of the opening handshake (API.md (j), "Server steps
and status codes") and offers the hooks users override in subclasses
(``process_request``, ``select_subprotocol``...). :mod:`anyws.server`
re-exports it; the server itself (listeners, handlers, shutdown) lives there.
"""

from __future__ import annotations

import email.utils
import http
import inspect
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from ._compat import HANDSHAKE_READ_ERRORS
from ._types import Origin, Subprotocol
from .exceptions import (
    AbortHandshake,
    InvalidHandshake,
    InvalidMessage,
    InvalidOrigin,
    InvalidUpgrade,
)
from .protocol import WebSocketCommonProtocol
from .sansio.datastructures import Headers, HeadersLike
from .sansio.events import RequestReceived
from .sansio.extensions.base import Extension, ServerExtensionFactory
from .sansio.handshake import (
    SHUTDOWN_RESPONSE_BODY,
    check_request,
    default_select_subprotocol,
    error_response_for,
    process_origin,
    reject_response,
    server_process_extensions,
    server_process_subprotocol,
    server_response_headers,
)
from .sansio.http11 import Request, Response
from .sansio.machine import ServerMachine

if TYPE_CHECKING:
    from .server import WebSocketServer

__all__ = ("ExtraHeaders", "HTTPResponse", "WebSocketServerProtocol")

logger = logging.getLogger("anyws.server")

#: What ``process_request`` returns to answer without opening the connection.
HTTPResponse = tuple[http.HTTPStatus | int, HeadersLike, bytes]
#: ``extra_headers`` of ``serve``: headers, or a callable that returns them.
ExtraHeaders = HeadersLike | Callable[[str, Headers], HeadersLike | None]


_date: tuple[int, str] = (0, "")


def _now() -> str:
    """The ``Date`` header value (RFC 7231 section 7.1.1.1), formatted once
    per second."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, email.utils.formatdate(second, usegmt=True))
    return _date[1]


class WebSocketServerProtocol(WebSocketCommonProtocol):
    """The server side of a WebSocket connection.

    Args:
        ws_handler: the connection handler.
        ws_server: the server the connection belongs to.
        origins: allowed ``Origin`` values (``None`` in it: no header);
            ``None`` allows any.
        extensions: server extension factories, in order of preference.
        subprotocols: supported subprotocols, in order of preference.
        extra_headers: headers added to the 101 response, or a callable
            ``extra_headers(path, request_headers)`` returning them.
        process_request: coroutine ``process_request(path, request_headers)``
            returning ``None`` or an HTTP response ``(status, headers, body)``.
        select_subprotocol: replaces :meth:`select_subprotocol`'s default rule.
        **kwargs: the arguments of
            :class:`~anyws.protocol.WebSocketCommonProtocol`.
    """

    __module__ = "anyws.server"  # documented and imported from there

    is_client = False
    side = "server"

    def __init__(
        self,
        ws_handler: Callable[..., Awaitable[Any]],
        ws_server: WebSocketServer | None,
        *,
        origins: Sequence[str | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        extra_headers: ExtraHeaders | None = None,
        process_request: Callable[..., Any] | None = None,
        select_subprotocol: (
            Callable[[Sequence[str], Sequence[str]], str | None] | None
        ) = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ws_handler = ws_handler
        self.ws_server = ws_server
        self.origins = origins
        self.available_extensions = extensions
        self.available_subprotocols = subprotocols
        self.extra_headers = extra_headers
        self._process_request = process_request
        self._select_subprotocol = select_subprotocol
        #: The ``Origin`` header of the request, or ``None``.
        self.origin: Origin | None = None
        self._request_scope: anyio.CancelScope | None = None

    @property
    def _server_machine(self) -> ServerMachine:
        assert isinstance(self._machine, ServerMachine)
        return self._machine

    # -- hooks -------------------------------------------------------------------

    async def process_request(
        self, path: str, request_headers: Headers
    ) -> HTTPResponse | None:
        """Intercept the request before the WebSocket checks.

        The default calls the ``process_request`` argument, if any.

        Returns:
            ``None`` to go on with the handshake, or ``(status, headers,
            body)`` to send that HTTP response and close.
        """
        if self._process_request is None:
            return None
        response = self._process_request(path, request_headers)
        if inspect.isawaitable(response):
            return await response  # type: ignore[no-any-return]
        warnings.warn(
            "declare process_request as a coroutine", DeprecationWarning, stacklevel=2
        )
        return response  # type: ignore[no-any-return]

    @staticmethod
    def process_origin(
        headers: Headers, origins: Sequence[str | None] | None = None
    ) -> Origin | None:
        """Check the ``Origin`` header against ``origins``.

        Raises:
            InvalidHeader: several ``Origin`` headers.
            InvalidOrigin: an origin that is not allowed.
        """
        return process_origin(headers, origins)

    @staticmethod
    def process_extensions(
        headers: Headers,
        available_extensions: Sequence[ServerExtensionFactory] | None,
    ) -> tuple[str | None, list[Extension]]:
        """Negotiate extensions: the response header value and the extensions."""
        return server_process_extensions(headers, available_extensions)

    def process_subprotocol(
        self, headers: Headers, available_subprotocols: Sequence[str] | None
    ) -> Subprotocol | None:
        """Pick the subprotocol with :meth:`select_subprotocol`."""
        return server_process_subprotocol(
            headers, available_subprotocols, self.select_subprotocol
        )

    def select_subprotocol(
        self,
        client_subprotocols: Sequence[str],
        server_subprotocols: Sequence[str],
    ) -> Subprotocol | None:
        """Choose a subprotocol offered by the client and supported here.

        The default (without a ``select_subprotocol`` argument) picks the
        shared one with the lowest sum of positions, ties broken by the
        client's order; ``None`` when they share none.
        """
        if self._select_subprotocol is None:
            return default_select_subprotocol(client_subprotocols, server_subprotocols)
        choice = self._select_subprotocol(client_subprotocols, server_subprotocols)
        return None if choice is None else Subprotocol(choice)

    # -- opening handshake -------------------------------------------------------

    async def handshake(
        self,
        origins: Sequence[str | None] | None = None,
        available_extensions: Sequence[ServerExtensionFactory] | None = None,
        available_subprotocols: Sequence[str] | None = None,
        extra_headers: ExtraHeaders | None = None,
    ) -> str:
        """Run the server side of the opening handshake (RFC 6455 4.2).

        On failure, the HTTP error response is sent and TCP is closed before
        the exception propagates.

        Returns:
            The request target (path and query).

        Raises:
            AbortHandshake: ``process_request`` chose a response, or the
                server is shutting down (503).
            InvalidHandshake: the request is not acceptable (400, 403, 426).
            ConnectionError: the client left.
            Exception: anything unexpected (500).
        """
        request = await self._read_request()
        path, headers = request.path, request.headers
        self.path, self.request_headers = path, headers
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            logger.debug("server < GET %s HTTP/1.1", path)
            logger.debug("server < %r", headers)
        try:
            abort = await self._early_response(path, headers)
        except Exception as exc:
            logger.warning("Error in opening handshake", exc_info=True)
            await self._reject(error_response_for(exc, date=_now()))
            raise
        if abort is not None:
            await self._reject(
                reject_response(abort.status, abort.body, abort.headers, date=_now())
            )
            raise abort
        try:
            response = self._accept(
                path,
                headers,
                origins,
                available_extensions,
                available_subprotocols,
                extra_headers,
            )
        except Exception as exc:
            _log_handshake_error(exc)
            await self._reject(error_response_for(exc, date=_now()))
            raise
        self.response_headers = response.headers
        self._server_machine.send_response(response, self.extensions)
        if debug:
            logger.debug("server > HTTP/1.1 101 Switching Protocols")
            logger.debug("server > %r", response.headers)
        try:
            await self._handshake_write()
        except ConnectionError:
            logger.debug("Connection error in opening handshake", exc_info=True)
            await self._close_transport()
            raise
        return path

    async def _read_request(self) -> Request:
        """Read the request; on failure answer (or not) and close."""
        self._request_scope = scope = anyio.CancelScope()
        try:
            with scope:
                event = await self._handshake_event()
        except InvalidMessage as exc:
            if isinstance(exc.__cause__, EOFError):
                # The client left before sending a whole request.
                logger.debug("Connection error in opening handshake", exc_info=True)
                await self._close_transport()
            else:
                logger.debug("Invalid handshake", exc_info=True)
                await self._reject(error_response_for(exc, date=_now()))
            raise
        except HANDSHAKE_READ_ERRORS as exc:
            logger.debug("Connection error in opening handshake", exc_info=True)
            await self._close_transport()
            raise ConnectionError(
                "connection lost during the opening handshake"
            ) from exc
        finally:
            self._request_scope = None
        if scope.cancelled_caught:  # the server shuts down
            abort = AbortHandshake(
                http.HTTPStatus.SERVICE_UNAVAILABLE, [], SHUTDOWN_RESPONSE_BODY
            )
            await self._reject(
                reject_response(abort.status, abort.body, abort.headers, date=_now())
            )
            raise abort
        assert isinstance(event, RequestReceived)
        return event.request

    async def _early_response(
        self, path: str, headers: Headers
    ) -> AbortHandshake | None:
        """Run ``process_request``; apply the shutdown 503 (steps 2 and 3)."""
        result: Any
        hook = self.process_request
        if (
            self._process_request is None
            and getattr(hook, "__func__", None) is _DEFAULT_PROCESS_REQUEST
        ):
            # What the default hook returns, without making a coroutine.
            result = None
        else:
            result = hook(path, headers)
            if inspect.isawaitable(result):
                result = await result
            else:  # a subclass overrode process_request with a plain method
                warnings.warn(
                    "declare process_request as a coroutine",
                    DeprecationWarning,
                    stacklevel=2,
                )
        if self.ws_server is not None and not self.ws_server.is_serving():
            result = (http.HTTPStatus.SERVICE_UNAVAILABLE, [], SHUTDOWN_RESPONSE_BODY)
        if result is None:
            return None
        status, response_headers, body = result
        return AbortHandshake(status, response_headers, body)

    def _accept(
        self,
        path: str,
        headers: Headers,
        origins: Sequence[str | None] | None,
        available_extensions: Sequence[ServerExtensionFactory] | None,
        available_subprotocols: Sequence[str] | None,
        extra_headers: ExtraHeaders | None,
    ) -> Response:
        """Check the request and build the 101 response (steps 4 to 7)."""
        key = check_request(headers)
        self.origin = self.process_origin(headers, origins)
        extensions_header, self.extensions = self.process_extensions(
            headers, available_extensions
        )
        self.subprotocol = self.process_subprotocol(headers, available_subprotocols)
        if callable(extra_headers):
            extra_headers = extra_headers(path, headers)
        response_headers = server_response_headers(
            key,
            extensions_header=extensions_header,
            subprotocol=self.subprotocol,
            extra_headers=extra_headers,
            date=_now(),
        )
        return Response(101, "Switching Protocols", response_headers)

    async def _reject(self, response: Response) -> None:
        """Send an HTTP error response, then close TCP (server first)."""
        self.response_headers = response.headers
        self._server_machine.send_response(response)
        logger.debug(
            "server > HTTP/1.1 %d %s", response.status_code, response.reason_phrase
        )
        logger.debug("server > %r", response.headers)
        logger.debug("server > body (%d bytes)", len(response.body))
        # The reader writes the response and EOF, waits up to close_timeout
        # for the client to close, then closes.
        await self._run_reader()


_DEFAULT_PROCESS_REQUEST = WebSocketServerProtocol.process_request


def _log_handshake_error(exc: Exception) -> None:
    if isinstance(exc, InvalidOrigin):
        logger.debug("Invalid origin", exc_info=True)
    elif isinstance(exc, InvalidUpgrade):
        logger.debug("Invalid upgrade", exc_info=True)
    elif isinstance(exc, InvalidHandshake):
        logger.debug("Invalid handshake", exc_info=True)
    else:
        logger.warning("Error in opening handshake", exc_info=True)
