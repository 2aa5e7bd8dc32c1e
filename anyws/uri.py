"""Parse ``ws://`` and ``wss://`` URIs (RFC 6455 section 3).

:func:`parse_uri` splits a WebSocket URI into what a client needs to connect
and to write its handshake request. It also accepts IRIs (RFC 3987): a host
that is not ASCII is converted with IDNA, and the characters of the path and
query that may not appear in a request line are percent-encoded as UTF-8.

:func:`resolve_location` resolves the ``Location`` header of a redirect
against the URI that was redirected.

This module does no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import NamedTuple

from .exceptions import InvalidURI

__all__ = ("WebSocketURI", "parse_uri", "resolve_location")


class WebSocketURI(NamedTuple):
    """The parts of a WebSocket URI.

    Attributes:
        secure: ``True`` for ``wss``, ``False`` for ``ws``.
        host: the host, lower-cased; IDNA-encoded if it was not ASCII; an IPv6
            address without its brackets.
        port: the port; 80 for ``ws`` and 443 for ``wss`` unless given.
        resource_name: the path (``/`` if empty) and the ``?query`` if any,
            percent-encoded where needed.
        user_info: ``(user, password)`` from ``user:password@``, or ``None``.
            They are not percent-decoded.
    """

    secure: bool
    host: str
    port: int
    resource_name: str
    user_info: tuple[str, str] | None


# RFC 3986 section 3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ).
# Percent-encoded hosts are refused: nothing decodes them before DNS.
_REG_NAME_RE = re.compile(r"[-a-z0-9._~!$&'()*+,;=]+")

# Printable ASCII is kept as is, so that an ASCII URI is sent as written (its
# percent-escapes included). Everything else (controls, space, DEL, and the
# non-ASCII characters of an IRI) is percent-encoded as UTF-8 (RFC 3987
# section 3.1), since it may not appear in an HTTP request line.
_SAFE_CHARS = "".join(chr(code) for code in range(0x21, 0x7F))


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and check a WebSocket URI.

    Args:
        uri: a ``ws://`` or ``wss://`` URI or IRI.

    Returns:
        Its parts.

    Raises:
        InvalidURI: if ``uri`` is not a valid WebSocket URI: another scheme,
            no host, a bad port, a fragment, ``;params`` in the last path
            segment, or a user name without a password.
    """
    try:
        return _parse_uri(uri)
    except ValueError as exc:  # UnicodeError included (IDNA, surrogates).
        raise InvalidURI(uri, str(exc)) from exc


def resolve_location(base: WebSocketURI | str, location: str) -> str:
    """Resolve the ``Location`` of a redirect against the current URI.

    A relative reference (``/other``, ``../x``, ``//host/path``) is resolved
    as RFC 3986 section 5 says; an absolute one replaces the base.

    Args:
        base: the URI that was redirected, parsed or not.
        location: the value of the ``Location`` header.

    Returns:
        The absolute ``ws://`` or ``wss://`` URI to connect to next.

    Raises:
        InvalidURI: if ``base`` is invalid, or if the result is not a valid
            WebSocket URI (an ``http://`` or ``https://`` location, for
            example).
    """
    if isinstance(base, str):
        base = parse_uri(base)
    try:
        resolved = urllib.parse.urljoin(_build_uri(base), location)
    except ValueError as exc:
        raise InvalidURI(location, str(exc)) from exc
    parse_uri(resolved)
    return resolved


def _parse_uri(uri: str) -> WebSocketURI:
    """Do the work of :func:`parse_uri`; raise ``ValueError`` on errors."""
    # RFC 6455 section 3: fragments are meaningless and must not be used.
    # Checking the raw string also catches an empty fragment ("ws://h/#").
    if "#" in uri:
        raise ValueError("fragment identifiers are not allowed")
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme not in ("ws", "wss"):
        raise ValueError("scheme isn't ws or wss")
    secure = parsed.scheme == "wss"
    host = _parse_host(parsed.netloc, parsed.hostname)
    port = parsed.port
    if port is None:
        port = 443 if secure else 80
    path = parsed.path or "/"
    # RFC 2396 path parameters, as urllib.parse.urlparse finds them (in the
    # last segment only).
    if ";" in path.rpartition("/")[2]:
        raise ValueError("path parameters are not allowed")
    resource_name = path + "?" + parsed.query if parsed.query else path
    resource_name = urllib.parse.quote(resource_name, safe=_SAFE_CHARS)
    user_info = None
    if parsed.username is not None:
        # Basic auth needs both parts (RFC 7617 section 2).
        if parsed.password is None:
            raise ValueError("user name without a password")
        user_info = (parsed.username, parsed.password)
    return WebSocketURI(secure, host, port, resource_name, user_info)


def _parse_host(netloc: str, hostname: str | None) -> str:
    """Check the host that ``urlsplit`` found and convert it to ASCII."""
    if not hostname:
        raise ValueError("no host")
    host_port = netloc.rpartition("@")[2]
    if "[" in host_port:
        # RFC 3986 section 3.2.2: brackets hold an IP literal; only IPv6
        # makes sense for a connection (IPvFuture has no users). urlsplit
        # ignores text around the brackets ("a[::1]b"): refuse it.
        after = host_port.partition("]")[2]
        if not host_port.startswith("[") or after[:1] not in ("", ":"):
            raise ValueError(f"invalid host: {host_port!r}")
        ipaddress.IPv6Address(hostname)
        return hostname
    if not hostname.isascii():
        # RFC 3987 section 3.1 step 2b: convert an internationalized domain
        # name with IDNA (RFC 3490, the stdlib codec).
        hostname = hostname.encode("idna").decode("ascii")
    if _REG_NAME_RE.fullmatch(hostname) is None:
        raise ValueError(f"invalid host: {hostname!r}")
    return hostname


def _build_uri(wsuri: WebSocketURI) -> str:
    """Write a :class:`WebSocketURI` back as a URI string."""
    scheme = "wss" if wsuri.secure else "ws"
    host = f"[{wsuri.host}]" if ":" in wsuri.host else wsuri.host
    default_port = 443 if wsuri.secure else 80
    port = "" if wsuri.port == default_port else f":{wsuri.port}"
    user_info = "" if wsuri.user_info is None else "{}:{}@".format(*wsuri.user_info)
    return f"{scheme}://{user_info}{host}{port}{wsuri.resource_name}"
