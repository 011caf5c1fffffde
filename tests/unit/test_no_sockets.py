"""The unit tier's socket guard holds (tests/unit/conftest.py)."""

from __future__ import annotations

import socket
import urllib.request

import pytest


def test_a_unit_test_cannot_open_a_socket() -> None:
    with pytest.raises(RuntimeError, match="must not open sockets"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_nor_reach_the_network_through_a_library() -> None:
    with pytest.raises(RuntimeError, match="must not open sockets"):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
