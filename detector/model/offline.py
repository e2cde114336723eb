"""Refuse internet access while ultralytics runs: a forgotten download path fails loudly instead of hanging."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Refuse every internet connection and DNS lookup inside the block.

    Only AF_INET/AF_INET6 sockets are refused: torch's data-loader workers hand tensors over local
    (AF_UNIX) sockets, which must keep working.
    """
    inet = {socket.AF_INET, socket.AF_INET6}
    orig_connect, orig_connect_ex = socket.socket.connect, socket.socket.connect_ex
    saved_funcs = {n: getattr(socket, n) for n in ("getaddrinfo", "create_connection")}

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError("streetwatch training is offline: network access refused")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in inet:
            refuse()
        orig_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in inet:
            refuse()
        return orig_connect_ex(self, address)

    setattr(socket.socket, "connect", connect)  # noqa: B010 - patching a C type's method
    setattr(socket.socket, "connect_ex", connect_ex)  # noqa: B010
    for n in saved_funcs:
        setattr(socket, n, refuse)
    try:
        yield
    finally:
        setattr(socket.socket, "connect", orig_connect)  # noqa: B010
        setattr(socket.socket, "connect_ex", orig_connect_ex)  # noqa: B010
        for n, fn in saved_funcs.items():
            setattr(socket, n, fn)
