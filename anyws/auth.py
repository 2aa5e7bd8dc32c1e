"""HTTP Basic authentication for the server (RFC 7617).

::

    async with anyws.serve(
        handler,
        "localhost",
        8765,
        create_protocol=anyws.basic_auth_protocol_factory(
            realm="my dev server", credentials=("hello", "iloveyou")
        ),
    ) as server:
        ...

Passwords are compared in constant time (``hmac.compare_digest``), unlike
websockets 8.1 (CVE-2021-33880).
"""

from __future__ import annotations

import functools
import hmac
import http
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._server_protocol import HTTPResponse, WebSocketServerProtocol
from .exceptions import InvalidHeader
from .sansio.datastructures import Headers, MultipleValuesError
from .sansio.headers import build_www_authenticate_basic, parse_authorization_basic

__all__ = ("BasicAuthWebSocketServerProtocol", "basic_auth_protocol_factory")

CheckCredentials = Callable[[str, str], Awaitable[bool]]


class BasicAuthWebSocketServerProtocol(WebSocketServerProtocol):
    """A server connection that requires HTTP Basic authentication.

    Args:
        realm: the scope of protection, sent in ``WWW-Authenticate``.
        check_credentials: coroutine ``check_credentials(username, password)``
            returning whether they are valid.
        *args: the arguments of :class:`~anyws.server.WebSocketServerProtocol`.
        **kwargs: its keyword arguments.
    """

    def __init__(
        self,
        *args: Any,
        realm: str,
        check_credentials: CheckCredentials,
        **kwargs: Any,
    ) -> None:
        self.realm = realm
        self._check_credentials = check_credentials
        #: The authenticated user name, once the request is accepted.
        self.username: str | None = None
        super().__init__(*args, **kwargs)

    async def check_credentials(self, username: str, password: str) -> bool:
        """Tell whether the credentials are valid; calls the argument."""
        return await self._check_credentials(username, password)

    async def process_request(
        self, path: str, request_headers: Headers
    ) -> HTTPResponse | None:
        """Check the credentials first, then run the parent hook.

        Returns:
            A 401 response when credentials are missing, malformed or invalid.
        """
        try:
            authorization = request_headers["Authorization"]
        except KeyError:
            return self._unauthorized(b"Missing credentials\n")
        except MultipleValuesError:
            return self._unauthorized(b"Unsupported credentials\n")
        try:
            username, password = parse_authorization_basic(authorization)
        except InvalidHeader:
            return self._unauthorized(b"Unsupported credentials\n")
        if not await self.check_credentials(username, password):
            return self._unauthorized(b"Invalid credentials\n")
        self.username = username
        return await super().process_request(path, request_headers)

    def _unauthorized(self, body: bytes) -> HTTPResponse:
        headers = Headers(
            [("WWW-Authenticate", build_www_authenticate_basic(self.realm))]
        )
        return http.HTTPStatus.UNAUTHORIZED, headers, body


def basic_auth_protocol_factory(
    realm: str,
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: CheckCredentials | None = None,
    create_protocol: Callable[..., BasicAuthWebSocketServerProtocol] | None = None,
) -> Callable[..., BasicAuthWebSocketServerProtocol]:
    """Build a ``create_protocol`` factory that enforces HTTP Basic auth.

    Args:
        realm: the scope of protection.
        credentials: one ``(username, password)`` pair, or several.
        check_credentials: coroutine ``check_credentials(username, password)``
            returning whether they are valid; instead of ``credentials``.
        create_protocol: the class to build, by default
            :class:`BasicAuthWebSocketServerProtocol`.

    Returns:
        A factory for the ``create_protocol`` argument of ``serve``.

    Raises:
        TypeError: if both or neither of ``credentials`` and
            ``check_credentials`` are given, or ``credentials`` is invalid.
        ValueError: if ``realm`` cannot be written in a header.
    """
    if (credentials is None) == (check_credentials is None):
        raise TypeError("provide either credentials or check_credentials")
    if credentials is not None:
        check_credentials = _checker(_credentials_dict(credentials))
    assert check_credentials is not None
    # Fail now rather than on the first request.
    build_www_authenticate_basic(realm)
    if create_protocol is None:
        create_protocol = BasicAuthWebSocketServerProtocol
    return functools.partial(
        create_protocol, realm=realm, check_credentials=check_credentials
    )


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(item, str) for item in value)
    )


def _credentials_dict(credentials: object) -> dict[str, bytes]:
    """Map user names to UTF-8 passwords, after checking the argument."""
    if _is_pair(credentials):
        pairs: list[Any] = [credentials]
    elif isinstance(credentials, Iterable) and not isinstance(
        credentials, (str, bytes)
    ):
        pairs = list(credentials)
        if not all(_is_pair(pair) for pair in pairs):
            raise TypeError(f"invalid credentials argument: {credentials!r}")
    else:
        raise TypeError(f"invalid credentials argument: {credentials!r}")
    return {username: password.encode() for username, password in pairs}


def _checker(passwords: dict[str, bytes]) -> CheckCredentials:
    async def check_credentials(username: str, password: str) -> bool:
        try:
            expected = passwords[username]
        except KeyError:
            return False
        # Constant time: the comparison does not reveal how much matched.
        return hmac.compare_digest(password.encode(), expected)

    return check_credentials
