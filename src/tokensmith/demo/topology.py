"""Where the four demo services listen, and the URLs each one uses to reach the others.

The article's URLs name ``localhost`` (its issuer is ``http://localhost:9001``) while the demo binds the loopback
address only. Every URL is derived from one :class:`Topology`, so changing a port changes the issuer, the
redirect URIs and the service URLs together.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

# Bind addresses that a browser on this machine reaches as "localhost".
_LOOPBACK_OR_ANY = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})  # noqa: S104 - names, not binds

SERVICES = ("authorization server", "client app", "user-service", "message-service")


@dataclass(frozen=True, slots=True)
class Topology:
    host: str = "127.0.0.1"
    as_port: int = 9001
    client_port: int = 8080
    user_port: int = 8081
    message_port: int = 8082

    @property
    def public_host(self) -> str:
        """The host name in URLs: ``localhost`` for loopback or wildcard binds, as in the article."""
        if self.host in _LOOPBACK_OR_ANY:
            return "localhost"
        return f"[{self.host}]" if ":" in self.host else self.host

    def _url(self, port: int) -> str:
        return f"http://{self.public_host}:{port}"

    @property
    def issuer(self) -> str:
        return self._url(self.as_port)

    @property
    def client_url(self) -> str:
        return self._url(self.client_port)

    @property
    def user_service_url(self) -> str:
        return self._url(self.user_port)

    @property
    def message_service_url(self) -> str:
        return self._url(self.message_port)

    def ports(self) -> dict[str, int]:
        """Service name -> port, in start order."""
        return dict(zip(SERVICES, (self.as_port, self.client_port, self.user_port, self.message_port), strict=True))


class PortInUseError(Exception):
    """A port the demo needs is taken; the message is one line naming the service and the port."""


def bind_socket(host: str, port: int, service: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one); one-line error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is already in use (needed by the {service})") from None
        raise PortInUseError(f"cannot listen on {host}:{port} for the {service}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def bind_all(topology: Topology) -> tuple[Topology, dict[str, socket.socket]]:
    """Bind every service's socket before any server starts; ports given as 0 become free ports.

    Returns the topology with the real ports (so the issuer URL names the port actually bound) and the sockets.
    """
    sockets: dict[str, socket.socket] = {}
    try:
        for service, port in topology.ports().items():
            sockets[service] = bind_socket(topology.host, port, service)
    except PortInUseError:
        for sock in sockets.values():
            sock.close()
        raise
    actual = [sock.getsockname()[1] for sock in sockets.values()]
    bound = Topology(topology.host, *actual)
    return bound, sockets
