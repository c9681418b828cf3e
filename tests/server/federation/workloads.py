"""Workload identity issuers for the federation tests: tokens shaped as GitHub Actions OIDC tokens, Kubernetes
service-account tokens and SPIFFE JWT-SVIDs, signed with the test's own keys, whose JWKS (and, for GitHub, OpenID
discovery) are served over real HTTP on 127.0.0.1.

One HTTP server hosts the three issuers under paths: ``<base>/github``, ``<base>/k8s``, ``<base>/spiffe``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.support.fake_issuer import serve


@dataclass
class WorkloadIssuer:
    """One issuer: its signing key, its JWKS, and a counter of JWKS fetches."""

    issuer: str
    alg: str = "RS256"
    key: RSAKey | ECKey = field(init=False)
    jwks_hits: int = 0

    def __post_init__(self) -> None:
        kid = uuid.uuid4().hex[:12]
        if self.alg.startswith("ES"):
            self.key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": self.alg, "use": "sig"})
        else:
            self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": self.alg, "use": "sig"})

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.key.as_dict(private=False))]}

    def sign(self, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
        protected: dict[str, Any] = {"alg": self.alg, "kid": self.key.kid, "typ": "JWT", **(header or {})}
        protected = {k: v for k, v in protected.items() if v is not None}
        return jwt.encode(protected, claims, self.key, algorithms=[self.alg])

    def sign_hs256(self, claims: dict[str, Any]) -> str:
        """The classic confusion: an HS256 token whose 'secret' is the issuer's public key."""
        secret = OctKey.import_key(json.dumps(self.jwks()).encode())
        return jwt.encode({"alg": "HS256", "kid": self.key.kid, "typ": "JWT"}, claims, secret, algorithms=["HS256"])


def _times(lifetime: int, now: float | None) -> dict[str, int]:
    issued = int(time.time() if now is None else now)
    return {"iat": issued, "nbf": issued, "exp": issued + lifetime}


def github_actions_token(
    issuer: WorkloadIssuer,
    audience: str,
    *,
    repository: str = "acme/payments",
    ref: str = "refs/heads/main",
    environment: str | None = "production",
    lifetime: int = 300,
    now: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The claims of a GitHub Actions OIDC token (docs.github.com, "About security hardening with OpenID Connect")."""
    owner = repository.split("/")[0]
    sub = f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:ref:{ref}"
    claims: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "sub": sub,
        "aud": audience,
        "ref": ref,
        "sha": "d6e3f0b4a1c2e5f7a9b8c7d6e5f4a3b2c1d0e9f8",
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": "123456",
        "repository_id": "654321",
        "repository_visibility": "private",
        "run_id": "9876543210",
        "run_number": "42",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "deploy",
        "workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
        "event_name": "push",
        "ref_type": "branch",
        "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
        "runner_environment": "github-hosted",
        "iss": issuer.issuer,
        **_times(lifetime, now),
    }
    if environment:
        claims["environment"] = environment
    claims.update(overrides)
    return claims


def kubernetes_token(
    issuer: WorkloadIssuer,
    audience: str,
    *,
    namespace: str = "payments",
    service_account: str = "ledger",
    lifetime: int = 600,
    now: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The claims of a projected (bound) Kubernetes service-account token, as the API server mints them."""
    claims: dict[str, Any] = {
        "aud": [audience],
        "iss": issuer.issuer,
        "jti": str(uuid.uuid4()),
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "node-1", "uid": str(uuid.uuid4())},
            "pod": {"name": f"{service_account}-7d9f8c6b5-x2x7q", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
        },
        **_times(lifetime, now),
    }
    claims.update(overrides)
    return claims


def spiffe_svid(
    issuer: WorkloadIssuer,
    audience: str,
    *,
    spiffe_id: str = "spiffe://prod.acme.example/ns/payments/sa/ledger",
    lifetime: int = 300,
    now: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The claims of a SPIFFE JWT-SVID (SPIFFE JWT-SVID standard 3): `sub` the SPIFFE ID, `aud`, `exp`; SPIRE adds
    `iat` and, with `jwt_issuer` set, `iss`. No `jti`."""
    times = _times(lifetime, now)
    claims: dict[str, Any] = {
        "sub": spiffe_id,
        "aud": [audience],
        "iss": issuer.issuer,
        "iat": times["iat"],
        "exp": times["exp"],
    }
    claims.update(overrides)
    return claims


@dataclass
class WorkloadIssuers:
    github: WorkloadIssuer
    kubernetes: WorkloadIssuer
    spiffe: WorkloadIssuer
    # Never configured as trusted: a stranger with valid-looking tokens.
    stranger: WorkloadIssuer

    def all(self) -> list[WorkloadIssuer]:
        return [self.github, self.kubernetes, self.spiffe, self.stranger]


def _app(issuers: WorkloadIssuers) -> Starlette:
    by_name = {i.issuer.rsplit("/", 1)[1]: i for i in issuers.all()}

    async def discovery(request: Request) -> Response:
        issuer = by_name[request.path_params["name"]]
        return JSONResponse({"issuer": issuer.issuer, "jwks_uri": issuer.jwks_uri})

    async def jwks(request: Request) -> Response:
        issuer = by_name[request.path_params["name"]]
        issuer.jwks_hits += 1
        return JSONResponse(issuer.jwks())

    return Starlette(
        routes=[
            Route("/{name}/.well-known/openid-configuration", discovery),
            Route("/{name}/jwks", jwks),
        ]
    )


class _Host:
    """The ASGI app the server runs: the issuers' app, made once the server's URL (their issuer URLs) is known."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@contextmanager
def running_workload_issuers() -> Iterator[WorkloadIssuers]:
    """The three workload issuers (and a stranger) on one HTTP server on a free 127.0.0.1 port."""
    host = _Host()
    with serve(host) as base:
        issuers = WorkloadIssuers(
            github=WorkloadIssuer(f"{base}/github"),
            kubernetes=WorkloadIssuer(f"{base}/k8s", alg="RS256"),
            spiffe=WorkloadIssuer(f"{base}/spiffe", alg="ES256"),
            stranger=WorkloadIssuer(f"{base}/stranger"),
        )
        host.app = _app(issuers)
        yield issuers
