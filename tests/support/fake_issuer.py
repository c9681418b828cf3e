"""A small, standards-shaped authorization server for the library tests (not the real tokensmith server).

It serves discovery (OpenID and/or RFC 8414), a JWKS, a token endpoint (client credentials and RFC 8693 token
exchange, clients authenticated by client_secret_basic / client_secret_post / private_key_jwt) and RFC 7662
introspection. Every behaviour a test needs to provoke is a plain attribute: which keys are published, whether the
server is "down" (503), a forced token error, a missing ``expires_in``, a delay. It counts requests per path.
``serve(app)`` runs any ASGI app with uvicorn on a free 127.0.0.1 port in a thread and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus

import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass
class FakeClient:
    client_id: str
    secret: str | None = None
    auth_method: str = "client_secret_basic"
    public_jwk: dict[str, Any] | None = None


@dataclass
class FakeIssuer:
    """State and behaviour of the fake authorization server; mutate attributes to script a test."""

    base_url: str = "http://127.0.0.1:0"
    discovery: str = "openid"  # "openid", "oauth" (RFC 8414 only), or "none"
    advertised_issuer: str | None = None  # a wrong issuer in metadata, to test the exact-match rule
    available: bool = True  # False: every endpoint answers 503
    token_error: tuple[int, dict[str, Any]] | None = None
    expires_in: int | None = 300
    token_delay: float = 0.0
    padding: int = 0  # a member of that many characters added to token and introspection answers
    token_chunked: bool = False  # token responses streamed without a Content-Length
    clients: dict[str, FakeClient] = field(default_factory=dict)
    signing_keys: list[RSAKey | ECKey] = field(default_factory=list)
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)  # published as is (e.g. an "oct" key)
    revoked: set[str] = field(default_factory=set)
    hits: Counter[str] = field(default_factory=Counter)
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.signing_keys:
            self.add_key()

    # -- keys and tokens -------------------------------------------------------------------------------------
    def add_key(self, alg: str = "RS256") -> str:
        kid = uuid.uuid4().hex[:12]
        key: RSAKey | ECKey
        if alg.startswith("ES"):
            key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": alg, "use": "sig"})
        else:
            key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": alg, "use": "sig"})
        self.signing_keys.append(key)
        return kid

    def remove_key(self, kid: str) -> None:
        self.signing_keys = [key for key in self.signing_keys if key.kid != kid]

    def key(self, kid: str | None = None) -> RSAKey | ECKey:
        if kid is None:
            return self.signing_keys[-1]
        return next(key for key in self.signing_keys if key.kid == kid)

    @property
    def issuer(self) -> str:
        return self.base_url

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(key.as_dict(private=False)) for key in self.signing_keys] + self.extra_jwks}

    def issue(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
        typ: str | None = "at+jwt",
        now: float | None = None,
        lifetime: int = 300,
        header: dict[str, Any] | None = None,
    ) -> str:
        """A signed access token; defaults are a valid token for audience ``user-service``."""
        key = self.key(kid)
        issued_at = int(time.time() if now is None else now)
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "baeldung",
            "aud": "user-service",
            "iat": issued_at,
            "exp": issued_at + lifetime,
            "client_id": "messaging-client",
            "scope": "openid message.read",
            "jti": uuid.uuid4().hex,
        }
        body.update(claims or {})
        alg = str(key.as_dict()["alg"])
        protected: dict[str, Any] = {"alg": alg, "kid": key.kid}
        if typ is not None:
            protected["typ"] = typ
        protected.update(header or {})
        return jwt.encode(protected, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            decoded = jwt.decode(token, KeySet(list(self.signing_keys)), algorithms=["RS256", "ES256"])
        except (JoseError, ValueError):
            return None
        claims: dict[str, Any] = dict(decoded.claims)
        if claims.get("exp", 0) < time.time():
            return None
        return claims

    # -- HTTP ------------------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [
            Route("/.well-known/openid-configuration", self._openid, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", self._oauth, methods=["GET"]),
            Route("/jwks", self._jwks, methods=["GET"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/introspect", self._introspect, methods=["POST"]),
        ]
        # Compressed as many servers do (httpx asks for it): the clients must read the decoded body.
        return Starlette(routes=routes, middleware=[Middleware(GZipMiddleware)])

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.advertised_issuer or self.issuer,
            "jwks_uri": f"{self.base_url}/jwks",
            "token_endpoint": f"{self.base_url}/token",
            "introspection_endpoint": f"{self.base_url}/introspect",
            "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        }

    def _down(self, request: Request) -> Response | None:
        self.hits[request.url.path] += 1
        if not self.available:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        return None

    async def _openid(self, request: Request) -> Response:
        if (down := self._down(request)) is not None:
            return down
        if self.discovery != "openid":
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(self.metadata())

    async def _oauth(self, request: Request) -> Response:
        if (down := self._down(request)) is not None:
            return down
        if self.discovery == "none":
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(self.metadata())

    async def _jwks(self, request: Request) -> Response:
        if (down := self._down(request)) is not None:
            return down
        return JSONResponse(self.jwks())

    async def _token(self, request: Request) -> Response:
        if (down := self._down(request)) is not None:
            return down
        form = await request.form()
        params = {name: form.getlist(name) for name in form}
        client, problem = self._authenticate(request, {k: str(v[0]) for k, v in params.items()})
        self.token_requests.append({"params": params, "client": client.client_id if client else None})
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if client is None:
            return _error(401, "invalid_client", problem)
        if self.token_error is not None:
            return JSONResponse(self.token_error[1], status_code=self.token_error[0])
        grant = str(form.get("grant_type", ""))
        scope = str(form.get("scope", "")) or None
        audiences = [str(v) for v in form.getlist("audience")]
        if grant == "client_credentials":
            claims: dict[str, Any] = {"sub": client.client_id, "aud": audiences or client.client_id}
        elif grant == TOKEN_EXCHANGE:
            subject = self.verify(str(form.get("subject_token", "")))
            if subject is None:
                return _error(400, "invalid_request", "subject_token is invalid")
            claims = {"sub": subject["sub"], "aud": audiences or client.client_id}
            actor = self.verify(str(form.get("actor_token", ""))) if form.get("actor_token") else None
            if actor is not None:
                claims["act"] = {"sub": actor["sub"]}
        else:
            return _error(400, "unsupported_grant_type", f"grant_type {grant!r}")
        claims.update({"client_id": client.client_id, "scope": scope})
        body: dict[str, Any] = {
            "access_token": self.issue(claims, lifetime=self.expires_in or 300),
            "token_type": "Bearer",
            "issued_token_type": ACCESS_TOKEN_TYPE,
        }
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if scope:
            body["scope"] = scope
        if self.padding:
            body["padding"] = "x" * self.padding
        if self.token_chunked:
            text = json.dumps(body).encode()
            chunks = (text[i : i + 65536] for i in range(0, len(text), 65536))
            return StreamingResponse(chunks, media_type="application/json", headers={"Cache-Control": "no-store"})
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _introspect(self, request: Request) -> Response:
        if (down := self._down(request)) is not None:
            return down
        form = await request.form()
        client, problem = self._authenticate(request, {k: str(v) for k, v in form.items()})
        if client is None:
            return _error(401, "invalid_client", problem)
        token = str(form.get("token", ""))
        claims = None if token in self.revoked else self.verify(token)
        if claims is None:
            return JSONResponse({"active": False})
        padding = {"padding": "x" * self.padding} if self.padding else {}
        return JSONResponse({"active": True, "token_type": "Bearer", **claims, **padding})

    def _authenticate(self, request: Request, form: dict[str, str]) -> tuple[FakeClient | None, str]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            client_id, _, secret = raw.partition(":")
            client = self.clients.get(unquote_plus(client_id))
            if client and client.auth_method == "client_secret_basic" and client.secret == unquote_plus(secret):
                return client, ""
            return None, "bad basic credentials"
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            return None, "unknown client"
        if client.auth_method == "client_secret_post" and form.get("client_secret") == client.secret:
            return client, ""
        if client.auth_method == "private_key_jwt" and form.get("client_assertion_type") == JWT_BEARER:
            return (
                (client, "")
                if self._assertion_ok(client, form.get("client_assertion", ""))
                else (None, "bad assertion")
            )
        return None, "client authentication failed"

    def _assertion_ok(self, client: FakeClient, assertion: str) -> bool:
        if client.public_jwk is None:
            return False
        try:
            key = (
                RSAKey.import_key(client.public_jwk)
                if client.public_jwk["kty"] == "RSA"
                else ECKey.import_key(client.public_jwk)
            )
            claims = jwt.decode(assertion, key, algorithms=["RS256", "ES256"]).claims
        except (JoseError, ValueError):
            return False
        return (
            claims.get("iss") == client.client_id
            and claims.get("sub") == client.client_id
            and claims.get("aud") == f"{self.base_url}/token"
            and isinstance(claims.get("exp"), int)
            and claims["exp"] > time.time()
            and bool(claims.get("jti"))
        )


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def oct_jwk(secret: bytes, kid: str) -> dict[str, Any]:
    return dict(OctKey.import_key(secret, {"kid": kid}).as_dict())


@contextmanager
def serve(app: Any, *, lifespan: Literal["on", "off"] = "off") -> Iterator[str]:
    """Run ``app`` on a free 127.0.0.1 port in a thread; yield its base URL; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class FakeIssuerHost:
    """An ASGI app serving whichever :class:`FakeIssuer` is current: one server, fresh issuer state per test."""

    def __init__(self) -> None:
        self.base_url = ""
        self._app: Starlette | None = None

    def fresh(self) -> FakeIssuer:
        issuer = FakeIssuer(base_url=self.base_url)
        self._app = issuer.app()
        return issuer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self._app is not None, "call fresh() first"
        await self._app(scope, receive, send)


@contextmanager
def running_fake_issuer_host() -> Iterator[FakeIssuerHost]:
    host = FakeIssuerHost()
    with serve(host) as base_url:
        host.base_url = base_url
        yield host


def free_port_url() -> str:
    """A URL on which nothing listens (the port was free a moment ago): an unreachable authorization server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class FakeClock:
    """A clock for the libraries (epoch seconds) that moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
