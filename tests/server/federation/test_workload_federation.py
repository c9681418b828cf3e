"""Workload identity federation end to end: a real tokensmith server and three workload issuers (GitHub Actions,
Kubernetes, SPIFFE) serving their keys over HTTP on 127.0.0.1; tokens presented through the JWT bearer grant
(RFC 7523 2.1) and as subject tokens of the token exchange (RFC 8693), and the hostile variants of both."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.browser import basic_auth
from tests.server.configs import config_data
from tests.server.federation.workloads import (
    WorkloadIssuers,
    github_actions_token,
    kubernetes_token,
    running_workload_issuers,
    spiffe_svid,
)
from tests.support.server import free_port, running_server

from tokensmith.config.exchange import JWT_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig
from tokensmith.server.core.grants.jwt_bearer import JWT_BEARER_EVENT, JWT_BEARER_GRANT, MAX_ASSERTION_BYTES
from tokensmith.store.sql import SqlStore

GATEWAY_SECRET = "gateway-secret"
GATEWAY = basic_auth("ledger-gateway", GATEWAY_SECRET)


def federation_config(issuers: WorkloadIssuers, issuer: str, database_url: str) -> ServerConfig:
    """The three worked examples of docs/workload-federation.md."""
    data = config_data()
    data["issuer"] = issuer
    data["database-url"] = database_url
    data["trusted-issuers"] = [
        {
            # GitHub Actions: keys found through OpenID discovery, as for token.actions.githubusercontent.com.
            "issuer": issuers.github.issuer,
            "trust-policies": [
                {
                    "name": "payments-deploy",
                    "conditions": {
                        "sub": "repo:acme/payments:environment:production",
                        "repository_owner": "acme",
                        "ref": ["refs/heads/main", "refs/tags/v*"],
                    },
                    "subject": "repo:{repository}",
                    "client": "deployer",
                    "scopes": ["deploy.write"],
                    "claims": {"repository": "{repository}", "workflow_ref": "{job_workflow_ref}"},
                    "token-time-to-live": "2m",
                }
            ],
        },
        {
            "issuer": issuers.kubernetes.issuer,
            "jwks-uri": issuers.kubernetes.jwks_uri,
            "trust-policies": [
                {
                    "name": "payments-ledger",
                    "conditions": {
                        "sub": "system:serviceaccount:payments:*",
                        "kubernetes.io/namespace": "payments",
                    },
                    "subject": "k8s:{kubernetes.io/namespace}/{kubernetes.io/serviceaccount/name}",
                    "scopes": ["ledger.read"],
                }
            ],
        },
        {
            "issuer": issuers.spiffe.issuer,
            "jwks-uri": issuers.spiffe.jwks_uri,
            "algorithms": ["ES256"],
            "require-jti": False,
            "max-assertion-lifetime": "10m",
            "trust-policies": [
                {
                    "name": "prod-payments",
                    "conditions": {"sub": "spiffe://prod.acme.example/ns/payments/*"},
                    "subject": "{sub}",
                    "scopes": ["ledger.read", "ledger.write"],
                }
            ],
        },
    ]
    data["clients"]["deployer"] = {
        "registration": {
            "client-id": "deployer",
            "client-authentication-methods": ["none"],
            "authorization-grant-types": [JWT_BEARER_GRANT],
            "scopes": ["deploy.write", "deploy.read"],
        },
        "audiences": ["deploy-api"],
        "jwt-bearer": {"issuers": [issuers.github.issuer], "allow-unauthenticated": True},
    }
    data["clients"]["public-tool"] = {
        "registration": {
            "client-id": "public-tool",
            "client-authentication-methods": ["none"],
            "authorization-grant-types": [JWT_BEARER_GRANT],
            "scopes": ["deploy.read"],
        },
        "jwt-bearer": {"issuers": [issuers.github.issuer]},
    }
    data["clients"]["ledger-gateway"] = {
        "registration": {
            "client-id": "ledger-gateway",
            "client-secret": "{noop}" + GATEWAY_SECRET,
            "authorization-grant-types": [JWT_BEARER_GRANT, TOKEN_EXCHANGE],
            "scopes": ["ledger.read", "ledger.write"],
        },
        "audiences": ["ledger-api"],
        "jwt-bearer": {"issuers": [issuers.kubernetes.issuer, issuers.spiffe.issuer]},
        "token-exchange": {
            "subject-token-issuers": [issuers.github.issuer, issuers.kubernetes.issuer, issuers.spiffe.issuer],
            "default-audience": ["ledger-api"],
            "audiences": {"ledger-api": {"scopes": ["ledger.read", "ledger.write"]}},
        },
    }
    return ServerConfig.model_validate(data)


class Federation:
    def __init__(self, issuers: WorkloadIssuers, base_url: str, http: httpx.AsyncClient, database_url: str) -> None:
        self.issuers = issuers
        self.issuer = base_url
        self.token_endpoint = f"{base_url}/oauth2/token"
        self.http = http
        self.database_url = database_url

    async def bearer(
        self, assertion: str, *, client_id: str = "deployer", headers: dict[str, str] | None = None, **form: str
    ) -> httpx.Response:
        data = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion, **form}
        if headers is None:
            data["client_id"] = client_id
        return await self.http.post("/oauth2/token", data=data, headers=headers or {})

    async def exchange(self, subject_token: str, **form: str) -> httpx.Response:
        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": JWT_TOKEN_TYPE,
            **form,
        }
        return await self.http.post("/oauth2/token", data=data, headers=GATEWAY)


@pytest.fixture(scope="module")
def issuers() -> Iterator[WorkloadIssuers]:
    with running_workload_issuers() as running:
        yield running


@pytest.fixture(scope="module")
async def federation(issuers: WorkloadIssuers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    database_url = f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('federation')) / 'tokensmith.db'}"
    issuer = f"http://127.0.0.1:{free_port()}"
    config = federation_config(issuers, issuer, database_url)
    async with running_server(config) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield Federation(issuers, base_url, http, database_url)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def refused(response: httpx.Response, error: str = "invalid_grant") -> str:
    assert response.status_code in (400, 401), response.text
    body = response.json()
    assert body["error"] == error, body
    description: str = body["error_description"]
    return description


# -- the three worked examples, through the JWT bearer grant ----------------------------------------------------


async def test_github_actions_token_for_a_deploy_token(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer))
    response = await federation.bearer(assertion)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "deploy.write"  # the policy's ceiling, within the client's registered scopes
    assert 0 < body["expires_in"] <= 120
    claims = claims_of(body["access_token"])
    assert claims["iss"] == federation.issuer
    assert claims["sub"] == "repo:acme/payments"
    assert claims["client_id"] == "deployer"
    assert claims["aud"] == "deploy-api"
    assert claims["repository"] == "acme/payments"
    assert claims["workflow_ref"] == "acme/payments/.github/workflows/deploy.yml@refs/heads/main"


async def test_kubernetes_service_account_token(federation: Federation) -> None:
    k8s = federation.issuers.kubernetes
    # RFC 7523 3: `aud` may name the token endpoint instead of the issuer.
    assertion = k8s.sign(kubernetes_token(k8s, federation.token_endpoint), header={"typ": None})
    response = await federation.bearer(assertion, headers=GATEWAY, scope="ledger.read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "scope" not in body  # as requested
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "k8s:payments/ledger"
    assert claims["client_id"] == "ledger-gateway"
    assert claims["aud"] == "ledger-api"
    assert claims["scope"] == "ledger.read"


async def test_spiffe_jwt_svid_without_jti(federation: Federation) -> None:
    spiffe = federation.issuers.spiffe
    assertion = spiffe.sign(spiffe_svid(spiffe, federation.issuer))
    first = await federation.bearer(assertion, headers=GATEWAY)
    assert first.status_code == 200, first.text
    claims = claims_of(first.json()["access_token"])
    assert claims["sub"] == "spiffe://prod.acme.example/ns/payments/sa/ledger"
    assert claims["scope"] == "ledger.read ledger.write"
    # `require-jti: false`: a JWT-SVID has no jti, and is accepted until it expires.
    assert (await federation.bearer(assertion, headers=GATEWAY)).status_code == 200
    # Still never past its own expiry.
    assert claims["exp"] <= int(time.time()) + 300


async def test_discovery_lists_the_grant(federation: Federation) -> None:
    metadata = (await federation.http.get("/.well-known/oauth-authorization-server")).json()
    assert JWT_BEARER_GRANT in metadata["grant_types_supported"]


# -- the same tokens through the token exchange ------------------------------------------------------------------


async def test_kubernetes_token_as_subject_token(federation: Federation) -> None:
    k8s = federation.issuers.kubernetes
    subject = k8s.sign(kubernetes_token(k8s, federation.issuer))
    response = await federation.exchange(subject)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "ledger.read"  # the trust policy's ceiling cuts the exchange policy's default
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "k8s:payments/ledger"
    assert claims["aud"] == "ledger-api"
    # A scope the trust policy does not allow is refused by name.
    beyond = await federation.exchange(k8s.sign(kubernetes_token(k8s, federation.issuer)), scope="ledger.write")
    assert "payments-ledger" in refused(beyond, "invalid_scope")


async def test_spiffe_svid_as_subject_token(federation: Federation) -> None:
    spiffe = federation.issuers.spiffe
    response = await federation.exchange(spiffe.sign(spiffe_svid(spiffe, federation.issuer)), scope="ledger.write")
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["sub"] == "spiffe://prod.acme.example/ns/payments/sa/ledger"


async def test_policy_for_another_client_refuses_the_exchange(federation: Federation) -> None:
    github = federation.issuers.github
    response = await federation.exchange(github.sign(github_actions_token(github, federation.issuer)))
    description = refused(response, "invalid_request")
    assert "'payments-deploy': not for this client" in description


# -- hostile assertions ------------------------------------------------------------------------------------------


async def test_a_resource_outside_the_clients_audiences_is_invalid_target(federation: Federation) -> None:
    # RFC 8707 2, as for client credentials: the token is for the client's audiences, or the ones it names.
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer))
    response = await federation.bearer(assertion, resource="https://other.example/api")
    assert "https://other.example/api" in refused(response, "invalid_target")


async def test_wrong_audience(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, "sts.amazonaws.com"))
    assert "not for this server" in refused(await federation.bearer(assertion))


async def test_expired(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer, now=time.time() - 3600))
    assert "expired" in refused(await federation.bearer(assertion))


async def test_replayed_jti(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer))
    assert (await federation.bearer(assertion)).status_code == 200
    assert "already used" in refused(await federation.bearer(assertion))


async def test_missing_jti_where_required(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer, jti=None))
    assert "no 'jti'" in refused(await federation.bearer(assertion))


async def test_unknown_issuer(federation: Federation) -> None:
    stranger = federation.issuers.stranger
    assertion = stranger.sign(github_actions_token(stranger, federation.issuer))
    assert "not a trusted issuer" in refused(await federation.bearer(assertion))
    assert stranger.jwks_hits == 0  # nothing fetched for an issuer nobody trusts


async def test_alg_none_and_hs256(federation: Federation) -> None:
    github = federation.issuers.github
    claims = github_actions_token(github, federation.issuer)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert "not signed" in refused(await federation.bearer(f"{header}.{payload}."))
    assert "not accepted" in refused(await federation.bearer(github.sign_hs256(claims)))


async def test_condition_mismatch_names_the_claim_not_the_expected_value(federation: Federation) -> None:
    github = federation.issuers.github
    claims = github_actions_token(github, federation.issuer, environment=None, ref="refs/heads/feature")
    description = refused(await federation.bearer(github.sign(claims)))
    assert "'sub'" in description
    assert "'ref'" in description
    assert "'repository_owner'" not in description  # that one matched
    assert "refs/heads/main" not in description
    assert "environment:production" not in description


async def test_tag_pattern_matches(federation: Federation) -> None:
    github = federation.issuers.github
    claims = github_actions_token(github, federation.issuer, ref="refs/tags/v1.4.2")
    assert (await federation.bearer(github.sign(claims))).status_code == 200


async def test_oversized_assertion(federation: Federation) -> None:
    github = federation.issuers.github
    claims = github_actions_token(github, federation.issuer, padding="x" * MAX_ASSERTION_BYTES)
    assert "larger than" in refused(await federation.bearer(github.sign(claims)))


async def test_exp_too_far_ahead(federation: Federation) -> None:
    k8s = federation.issuers.kubernetes
    assertion = k8s.sign(kubernetes_token(k8s, federation.issuer, lifetime=48 * 3600))
    assert "too far in the future" in refused(await federation.bearer(assertion, headers=GATEWAY))


async def test_token_made_for_another_purpose(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer), header={"typ": "at+jwt"})
    assert "'at+jwt' are not accepted" in refused(await federation.bearer(assertion))


async def test_issuer_the_client_may_not_present(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer))
    assert "may not present assertions" in refused(await federation.bearer(assertion, headers=GATEWAY))


async def test_public_client_must_authenticate_unless_configured(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer))
    response = await federation.bearer(assertion, client_id="public-tool")
    assert "must authenticate" in refused(response, "unauthorized_client")


async def test_scope_beyond_the_ceiling(federation: Federation) -> None:
    github = federation.issuers.github
    assertion = github.sign(github_actions_token(github, federation.issuer))
    response = await federation.bearer(assertion, scope="deploy.read")
    assert "'payments-deploy' does not allow scope deploy.read" in refused(response, "invalid_scope")


async def test_every_request_is_audited(federation: Federation) -> None:
    github = federation.issuers.github
    good = github.sign(github_actions_token(github, federation.issuer, jti="audit-granted"))
    assert (await federation.bearer(good)).status_code == 200
    bad = github.sign(github_actions_token(github, federation.issuer, repository_owner="evil", jti="audit-refused"))
    refused(await federation.bearer(bad))
    k8s = federation.issuers.kubernetes
    exchanged = await federation.exchange(k8s.sign(kubernetes_token(k8s, federation.issuer, jti="audit-exchange")))
    assert exchanged.status_code == 200, exchanged.text
    store = SqlStore(federation.database_url)
    try:
        stored = await store.list_audit_events(limit=500)
    finally:
        await store.close()
    (exchange,) = [e for e in stored if e.details.get("subject_jti") == "audit-exchange"]
    assert exchange.subject == "k8s:payments/ledger"
    assert exchange.details["trust_policy"] == "payments-ledger"
    events = [e for e in stored if e.event == JWT_BEARER_EVENT]
    by_jti = {e.details.get("assertion_jti"): e for e in events}
    granted, refusal = by_jti["audit-granted"], by_jti["audit-refused"]
    assert granted.outcome == "granted"
    assert granted.subject == "repo:acme/payments"
    assert granted.details["trust_policy"] == "payments-deploy"
    assert granted.details["assertion_issuer"] == github.issuer
    assert refusal.outcome == "refused"
    assert refusal.reason is not None
    assert "'repository_owner' does not match" in refusal.reason
