"""The unit tier opens no sockets: every test here runs on fakes (moto is the integration tier's)."""

from __future__ import annotations

import socket
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> socket.socket:
        raise RuntimeError("unit tests must not open sockets")

    monkeypatch.setattr(socket, "socket", refuse)
