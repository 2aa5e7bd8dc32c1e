"""The WebSocket client: :func:`connect`, :func:`unix_connect` and
:class:`WebSocketClientProtocol`.

Use it as an async context manager; the connection's background tasks live in
a task group owned by the ``async with`` block::

    async with anyws.connect("ws://localhost:8765/") as websocket:
        await websocket.send("Hello!")
        print(await websocket.recv())

Leaving the block closes the connection (code 1000), within the bounds of
``close_timeout``, also when the block is cancelled.
"""

from __future__ import annotations

import logging
import socket
import ssl as ssl_module
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any, NoReturn

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from ._asyncio_stream import NativeStream, adopt, connect_native
from ._compat import (
    HANDSHAKE_READ_ERRORS,
    check_limits,
    single_exception,
    warn_deprecated_arguments,
)
from .exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidStatusCode,
    RedirectHandshake,
    SecurityError,
)
from .protocol import WebSocketCommonProtocol
from .sansio.datastructures import Headers, HeadersLike, MultipleValuesError
from .sansio.events import ResponseReceived
from .sansio.extensions.base import ClientExtensionFactory
from .sansio.extensions.permessage_deflate import enable_client_permessage_deflate
from .sansio.handshake import (
    check_response,
    client_process_extensions,
    client_process_subprotocol,
    client_request_headers,
    generate_key,
)
from .sansio.headers import validate_subprotocols
from .sansio.http11 import Request
from .sansio.machine import ClientMachine
from .uri import WebSocketURI, parse_uri, resolve_location

__all__ = ("WebSocketClientProtocol", "connect", "unix_connect")

logger = logging.getLogger("anyws.client")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Dropped when a redirect leaves the origin (websockets 16.1 hardening).
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


class WebSocketClientProtocol(WebSocketCommonProtocol):
    """The client side of a WebSocket connection.

    Args:
        origin: value of the ``Origin`` request header; ``None`` sends none.
        extensions: client extension factories, in order of preference.
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: request headers appended after the generated ones.
        **kwargs: the arguments of
            :class:`~anyws.protocol.WebSocketCommonProtocol`.
    """

    is_client = True
    side = "client"

    def __init__(
        self,
        *,
        origin: str | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        extra_headers: HeadersLike | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: The ``origin`` argument.
        self.origin = origin
        self.available_extensions = extensions
        self.available_subprotocols = subprotocols
        self.extra_headers = extra_headers

    @property
    def _client_machine(self) -> ClientMachine:
        assert isinstance(self._machine, ClientMachine)
        return self._machine

    async def handshake(
        self,
        wsuri: WebSocketURI,
        origin: str | None = None,
        available_extensions: Sequence[ClientExtensionFactory] | None = None,
        available_subprotocols: Sequence[str] | None = None,
        extra_headers: HeadersLike | None = None,
    ) -> None:
        """Run the client side of the opening handshake (RFC 6455 section 4.1).

        On success the connection is OPEN.

        Raises:
            RedirectHandshake: the server answered with a redirect.
            InvalidStatusCode: the server answered another status than 101.
            InvalidHeader: a redirect without ``Location``.
            InvalidMessage: the response could not be read or parsed.
            InvalidHandshake: the 101 response is not acceptable.
        """
        key = generate_key()
        headers = client_request_headers(
            wsuri,
            key=key,
            origin=origin,
            extensions=available_extensions or (),
            subprotocols=available_subprotocols,
            extra_headers=extra_headers,
        )
        self.path = wsuri.resource_name
        self.request_headers = headers
        self._client_machine.send_request(Request(wsuri.resource_name, headers))
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            logger.debug("client > GET %s HTTP/1.1", wsuri.resource_name)
            logger.debug("client > %r", headers)
        await self._handshake_write()
        try:
            event = await self._handshake_event()
        except InvalidMessage:
            raise
        except HANDSHAKE_READ_ERRORS as exc:
            raise InvalidMessage("did not receive a valid HTTP response") from exc
        assert isinstance(event, ResponseReceived)
        response = event.response
        if debug:
            logger.debug(
                "client < HTTP/1.1 %d %s", response.status_code, response.reason_phrase
            )
            logger.debug("client < %r", response.headers)
        self.response_headers = response.headers
        self._check_status(response.status_code, response.headers)
        check_response(response.headers, key)
        self.extensions = client_process_extensions(
            response.headers, available_extensions
        )
        self.subprotocol = client_process_subprotocol(
            response.headers, available_subprotocols
        )
        self._client_machine.open(self.extensions)

    @staticmethod
    def _check_status(status_code: int, headers: Headers) -> None:
        if status_code in _REDIRECT_STATUSES:
            try:
                location = headers["Location"]
            except KeyError:
                raise InvalidHeader("Location") from None
            except MultipleValuesError:
                raise InvalidHeader(
                    "Location", "more than one Location header found"
                ) from None
            raise RedirectHandshake(location)
        if status_code != 101:
            raise InvalidStatusCode(status_code)


class Connect:
    """What :func:`connect` returns: use it as ``async with connect(...) as ws``.

    Arguments are checked when it is created, before any I/O.

    Raises:
        InvalidURI: ``uri`` is not a valid WebSocket URI.
        ValueError: ``ssl`` with a ``ws://`` URI, an unknown ``compression``,
            ``sock`` with ``host`` or ``port``, or a bad flow-control limit.
        TypeError: an unknown keyword argument or bad ``subprotocols``.
    """

    #: Most connection attempts of one ``connect()``, redirects included.
    MAX_REDIRECTS_ALLOWED = 10

    def __init__(
        self,
        uri: str,
        *,
        create_protocol: Any = None,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = None,
        max_size: int | None = 2**20,
        max_queue: int | None = 2**5,
        read_limit: int = 2**16,
        write_limit: int = 2**16,
        loop: Any = None,
        legacy_recv: bool = False,
        klass: Any = None,
        timeout: float | None = None,
        compression: str | None = "deflate",
        origin: str | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        extra_headers: HeadersLike | None = None,
        open_timeout: float | None = 10,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        host: str | None = None,
        port: int | None = None,
        sock: socket.socket | None = None,
        local_addr: tuple[str, int] | None = None,
        path: str | None = None,
        unix: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            name = next(iter(kwargs))
            raise TypeError(f"connect() got an unexpected keyword argument {name!r}")
        warn_deprecated_arguments(loop=loop, timeout=timeout, klass=klass)
        if close_timeout is None:
            close_timeout = timeout if timeout is not None else 10
        if create_protocol is None:
            create_protocol = klass if klass is not None else WebSocketClientProtocol
        if compression == "deflate":
            extensions = enable_client_permessage_deflate(extensions)
        elif compression is not None:
            raise ValueError(f"unsupported compression: {compression}")
        validate_subprotocols(subprotocols)
        check_limits(
            max_queue=max_queue, read_limit=read_limit, write_limit=write_limit
        )
        self._uri = uri
        self._wsuri = parse_uri(uri)
        if not self._wsuri.secure and ssl is not None:
            raise ValueError(
                "connect() received a ssl argument for a ws:// URI, "
                "use a wss:// URI to enable TLS"
            )
        if sock is not None and (host is not None or port is not None):
            raise ValueError("host/port and sock can not be specified at the same time")
        self._create_protocol = create_protocol
        self._protocol_kwargs: dict[str, Any] = dict(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_size=max_size,
            max_queue=max_queue,
            read_limit=read_limit,
            write_limit=write_limit,
            loop=None,
            legacy_recv=legacy_recv,
            origin=origin,
            extensions=extensions,
            subprotocols=subprotocols,
            extra_headers=extra_headers,
        )
        self._close_timeout: float = close_timeout
        self._open_timeout = open_timeout
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._host = host
        self._port = port
        self._sock = sock
        self._local_addr = local_addr
        self._unix_path = path if unix else None
        self._unix = unix
        self._task_group: anyio.abc.TaskGroup | None = None
        self._protocol: WebSocketClientProtocol | None = None

    def __await__(self) -> Generator[Any, None, NoReturn]:
        raise TypeError(
            "connect() cannot be awaited: anyws runs the connection's tasks in "
            "a task group owned by a block; write\n"
            "    async with anyws.connect(uri) as websocket:\n"
            "        ..."
        )

    async def __aenter__(self) -> WebSocketClientProtocol:
        if self._task_group is not None:
            raise RuntimeError("this connect() is already in use")
        with anyio.fail_after(self._open_timeout):
            protocol = await self._connect()
        # The task group only starts once the connection is open: before,
        # nothing runs in the background.
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        protocol._start(task_group)
        self._task_group, self._protocol = task_group, protocol
        return protocol

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        task_group, protocol = self._task_group, self._protocol
        assert task_group is not None and protocol is not None
        self._task_group = self._protocol = None
        cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
        try:
            await protocol._close_for_exit(quick=cancelled)
        except Exception:  # pragma: no cover - close() does not raise for 1000
            logger.debug("client ! error while closing", exc_info=True)
        with single_exception():
            return await task_group.__aexit__(exc_type, exc, traceback)

    # -- connecting --------------------------------------------------------------

    async def _connect(self) -> WebSocketClientProtocol:
        """Connect and run the opening handshake, following redirects."""
        wsuri = self._wsuri
        host, port, server_hostname = self._host, self._port, self._server_hostname
        extra_headers: HeadersLike | None = self._protocol_kwargs["extra_headers"]
        sock = self._sock
        for _ in range(self.MAX_REDIRECTS_ALLOWED):
            stream = await self._open_stream(wsuri, host, port, server_hostname, sock)
            sock = None  # a socket serves one connection only
            try:
                return await self._handshake(stream, wsuri, extra_headers)
            except RedirectHandshake as exc:
                new_wsuri = parse_uri(resolve_location(wsuri, exc.uri))
                if wsuri.secure and not new_wsuri.secure:
                    raise SecurityError("redirect from WSS to WS") from None
                if self._sock is not None:
                    raise InvalidHandshake(
                        f"cannot follow a redirect to {exc.uri} with a sock argument"
                    ) from None
                if (new_wsuri.host, new_wsuri.port) != (wsuri.host, wsuri.port):
                    # Overrides apply to the original destination only.
                    host = port = server_hostname = None
                if _origin(new_wsuri) != _origin(wsuri):
                    extra_headers = _without_credentials(extra_headers)
                logger.debug("client - redirected to %s", exc.uri)
                wsuri = new_wsuri
        raise SecurityError("too many redirects")

    async def _handshake(
        self,
        stream: anyio.abc.ByteStream,
        wsuri: WebSocketURI,
        extra_headers: HeadersLike | None,
    ) -> WebSocketClientProtocol:
        """Run one handshake attempt; close the stream if it does not open."""
        protocol: WebSocketClientProtocol | None = None
        try:
            kwargs = dict(self._protocol_kwargs, extra_headers=extra_headers)
            protocol = self._create_protocol(
                host=wsuri.host, port=wsuri.port, secure=wsuri.secure, **kwargs
            )
            if not isinstance(protocol, WebSocketClientProtocol):
                raise TypeError(
                    "create_protocol must build a WebSocketClientProtocol, "
                    f"not {protocol!r}"
                )
            protocol._attach(stream)
            await protocol.handshake(
                wsuri,
                origin=protocol.origin,
                available_extensions=protocol.available_extensions,
                available_subprotocols=protocol.available_subprotocols,
                extra_headers=protocol.extra_headers,
            )
        except BaseException:
            # A failed or cancelled handshake closes TCP before the error
            # propagates.
            if (
                isinstance(protocol, WebSocketClientProtocol)
                and protocol._stream is stream
            ):
                await protocol._close_transport()
            else:
                with anyio.CancelScope(shield=True):
                    await anyio.aclose_forcefully(stream)
            raise
        return protocol

    async def _open_stream(
        self,
        wsuri: WebSocketURI,
        host: str | None,
        port: int | None,
        server_hostname: str | None,
        sock: socket.socket | None,
    ) -> anyio.abc.ByteStream:
        """Open the TCP (or Unix) connection, then TLS for ``wss://``."""
        stream: anyio.abc.ByteStream
        if sock is not None:
            if sock.family == getattr(socket, "AF_UNIX", None):
                stream = await anyio.abc.UNIXSocketStream.from_socket(sock)
            else:
                stream = await anyio.abc.SocketStream.from_socket(sock)
        elif self._unix:
            assert self._unix_path is not None
            stream = await anyio.connect_unix(self._unix_path)
        else:
            remote_host = wsuri.host if host is None else host
            remote_port = wsuri.port if port is None else port
            native = None
            if self._local_addr is None:
                native = await connect_native(
                    remote_host,
                    remote_port,
                    read_limit=self._protocol_kwargs["read_limit"],
                    write_limit=self._protocol_kwargs["write_limit"],
                )
            if native is not None:
                stream = native
            else:
                local_host, local_port = self._local_addr or (None, None)
                stream = await anyio.connect_tcp(
                    remote_host,
                    remote_port,
                    local_host=local_host,
                    local_port=local_port,
                )
        if not isinstance(stream, NativeStream):
            stream = await adopt(
                stream,
                read_limit=self._protocol_kwargs["read_limit"],
                write_limit=self._protocol_kwargs["write_limit"],
            )
        if not wsuri.secure:
            return stream
        context = self._ssl
        if not isinstance(context, ssl_module.SSLContext):
            # wss:// without a context, ssl=True, or a redirect from ws://.
            context = ssl_module.create_default_context()
        try:
            return await TLSStream.wrap(
                stream,
                hostname=server_hostname or wsuri.host,
                ssl_context=context,
                standard_compatible=False,
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
            if isinstance(exc, (anyio.EndOfStream, anyio.BrokenResourceError)):
                # AnyIO reports a peer that hangs up or breaks the TLS
                # handshake with its own exceptions; users expect an OSError,
                # as from any other network failure.
                raise ConnectionResetError(
                    "the connection was closed during the TLS handshake"
                ) from exc
            raise


def _origin(wsuri: WebSocketURI) -> tuple[bool, str, int]:
    return wsuri.secure, wsuri.host, wsuri.port


def _without_credentials(headers: HeadersLike | None) -> Headers | None:
    """``headers`` without ``Authorization`` and ``Cookie``."""
    if headers is None:
        return None
    pairs = (
        headers.raw_items()
        if isinstance(headers, Headers)
        else Headers(headers).raw_items()
    )
    return Headers(
        [
            (name, value)
            for name, value in pairs
            if name.lower() not in _CREDENTIAL_HEADERS
        ]
    )


#: ``connect(uri, **kwargs)``: open a client connection; see :class:`Connect`.
connect = Connect


def unix_connect(path: str, uri: str = "ws://localhost/", **kwargs: Any) -> Connect:
    """Like :func:`connect`, over the Unix socket at ``path``.

    Args:
        path: the file system path of the Unix socket.
        uri: gives the ``Host`` header, the path and the credentials.
        **kwargs: the keyword arguments of :func:`connect`.
    """
    return Connect(uri, path=path, unix=True, **kwargs)
