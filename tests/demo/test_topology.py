"""Ports, bind address and issuer URL stay consistent; a taken port fails with one line naming it."""

from __future__ import annotations

import socket

import pytest

from tokensmith.demo.settings import (
    load_client_app_settings,
    load_message_service_settings,
    load_server_config,
    load_user_service_settings,
)
from tokensmith.demo.topology import PortInUseError, Topology, bind_all


def test_defaults_are_the_articles_urls() -> None:
    topology = Topology()
    assert topology.issuer == "http://localhost:9001"
    assert topology.client_url == "http://localhost:8080"
    assert topology.user_service_url == "http://localhost:8081"
    assert topology.message_service_url == "http://localhost:8082"
    assert topology.host == "127.0.0.1"


def test_other_ports_move_every_url_together() -> None:
    topology = Topology("127.0.0.1", 9101, 8180, 8181, 8182)
    server = load_server_config(topology)
    assert server.issuer == "http://localhost:9101"
    assert server.port == 9101
    web = server.client_by_id("messaging-client")
    assert web is not None
    assert web.registration.redirect_uris == ("http://localhost:8180/login/oauth2/code/messaging-client-oidc",)
    assert web.registration.post_logout_redirect_uris == ("http://localhost:8180/logged-out",)

    user = load_user_service_settings(topology)
    assert user.jwt.issuer_uri == "http://localhost:9101"
    assert user.client.provider["my-auth-server"].issuer_uri == "http://localhost:9101"
    assert user.target_resource_server_url == "http://localhost:8182/message"

    client = load_client_app_settings(topology)
    assert client.issuer == "http://localhost:9101"
    assert client.registration.redirect_uri == web.registration.redirect_uris[0]
    assert client.target_resource_server_url == "http://localhost:8181/user/message"

    assert load_message_service_settings(topology).jwt.issuer_uri == "http://localhost:9101"


def test_a_non_loopback_host_names_itself_in_urls() -> None:
    assert Topology(host="10.1.2.3").issuer == "http://10.1.2.3:9001"
    assert Topology(host="0.0.0.0").issuer == "http://localhost:9001"


def test_port_zero_becomes_a_free_port_in_the_issuer() -> None:
    bound, sockets = bind_all(Topology("127.0.0.1", 0, 0, 0, 0))
    try:
        ports = list(bound.ports().values())
        assert 0 not in ports
        assert len(set(ports)) == 4
        assert bound.issuer == f"http://localhost:{bound.as_port}"
    finally:
        for sock in sockets.values():
            sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_taken_port_is_one_line_naming_it_and_nothing_stays_bound() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    first = _free_port()
    try:
        with pytest.raises(PortInUseError) as caught:
            bind_all(Topology("127.0.0.1", first, _free_port(), port, 0))
        message = str(caught.value)
        assert "\n" not in message
        assert str(port) in message
        assert "user-service" in message
        # The authorization server's socket, bound before the failure, was released.
        with socket.socket() as again:
            again.bind(("127.0.0.1", first))
    finally:
        taken.close()
