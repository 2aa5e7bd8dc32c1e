"""Tests for anyws.sansio.extensions.base: the extension interfaces."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from anyws import exceptions
from anyws._types import ExtensionName, ExtensionParameter
from anyws.sansio import extensions
from anyws.sansio.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ServerExtensionFactory,
)
from anyws.sansio.frames import Frame, Opcode


class Reverse(Extension):
    """A toy extension that reverses payloads."""

    name = ExtensionName("x-reverse")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if max_size is not None and len(frame.data) > max_size:
            raise exceptions.PayloadTooBig("too big")
        return frame._replace(data=frame.data[::-1])

    def encode(self, frame: Frame) -> Frame:
        return frame._replace(data=frame.data[::-1])


class ClientReverse(ClientExtensionFactory):
    name = ExtensionName("x-reverse")

    def get_request_params(self) -> list[ExtensionParameter]:
        return [("mode", "all")]

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        if list(params) != [("mode", "all")]:
            raise exceptions.NegotiationError("unexpected answer")
        return Reverse()


class ServerReverse(ServerExtensionFactory):
    name = ExtensionName("x-reverse")

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        if any(ext.name == self.name for ext in accepted_extensions):
            raise exceptions.NegotiationError("already accepted")
        return list(params), Reverse()


@pytest.mark.parametrize(
    "abc", [Extension, ClientExtensionFactory, ServerExtensionFactory]
)
def test_abstract_classes_cannot_be_instantiated(abc: type) -> None:
    with pytest.raises(TypeError):
        abc()


def test_incomplete_subclass_cannot_be_instantiated() -> None:
    class NoEncode(Extension):
        name = ExtensionName("x-partial")

        def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
            return frame

    with pytest.raises(TypeError, match="encode"):
        NoEncode()  # type: ignore[abstract]


def test_missing_name_is_abstract() -> None:
    class NoName(Extension):
        def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
            return frame

        def encode(self, frame: Frame) -> Frame:
            return frame

    with pytest.raises(TypeError, match="name"):
        NoName()  # type: ignore[abstract]


def test_complete_extension_transforms_frames() -> None:
    ext = Reverse()
    frame = Frame(True, Opcode.BINARY, b"abc")
    assert ext.name == "x-reverse"
    assert ext.encode(frame) == Frame(True, Opcode.BINARY, b"cba")
    assert ext.decode(ext.encode(frame)) == frame
    with pytest.raises(exceptions.PayloadTooBig):
        ext.decode(frame, max_size=2)


def test_factories_negotiate() -> None:
    client, server = ClientReverse(), ServerReverse()
    response, server_ext = server.process_request_params(
        client.get_request_params(), []
    )
    assert response == [("mode", "all")]
    assert isinstance(server_ext, Reverse)
    assert isinstance(client.process_response_params(response, []), Reverse)
    with pytest.raises(exceptions.NegotiationError):
        client.process_response_params([], [])
    with pytest.raises(exceptions.NegotiationError):
        server.process_request_params([], [server_ext])


def test_permessage_deflate_classes_implement_the_interfaces() -> None:
    assert issubclass(extensions.PerMessageDeflate, Extension)
    assert issubclass(extensions.ClientPerMessageDeflateFactory, ClientExtensionFactory)
    assert issubclass(extensions.ServerPerMessageDeflateFactory, ServerExtensionFactory)


def test_package_exports() -> None:
    for name in extensions.__all__:
        assert getattr(extensions, name) is not None
    assert extensions.Extension is Extension
