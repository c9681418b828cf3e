"""The ``running_server`` helper every HTTP test relies on."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from tests.server.configs import server_config
from tests.support.server import free_port, running_server


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_issuer_is_the_url_and_the_server_stops() -> None:
    async with running_server(server_config()) as url:
        async with httpx.AsyncClient() as http:
            metadata = (await http.get(url + "/.well-known/openid-configuration")).json()
        assert metadata["issuer"] == url
        port = urlsplit(url).port
        assert port is not None
        assert url == f"http://127.0.0.1:{port}"
    assert port_is_free(port)


async def test_a_chosen_port_in_the_issuer_is_used() -> None:
    port = free_port()
    async with running_server(server_config(issuer=f"http://127.0.0.1:{port}")) as url:
        assert url == f"http://127.0.0.1:{port}"


async def test_start_up_failure_is_reported() -> None:
    with pytest.raises(RuntimeError, match="failed to start"):
        async with running_server(server_config("postgresql+asyncpg://nobody:x@127.0.0.1:1/none")):
            pass
