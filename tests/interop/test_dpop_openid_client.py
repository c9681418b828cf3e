"""npm openid-client 6 (oauth4webapi 3), unmodified, as a DPoP client (RFC 9449) of tokensmith, calling a service
protected by tokensmith.resource and the article's Spring message-service (interop/node/dpop.mjs).

tokensmith requires a proof from every client and a server nonce in every proof (`dpop.required-by-default`,
`dpop.nonce-required`); the tokensmith.resource service requires its own nonce too, so openid-client's
`use_dpop_nonce` retry is exercised at both. The article's exchange keeps the binding: user-service (client
message-service) presents the user's token, bound to the front end's key, with a proof by its own key, which
message-service's policy allows (`token-exchange.dpop.bound-subject-token-clients`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey
from tests.interop.conftest import INTEROP_CONFIG, SPRING_RESOURCE_SERVER_TYP
from tests.interop.dpop_resource import dpop_resource_app
from tests.interop.node_peer import Step, run_peer
from tests.interop.spring_apps import BootLine, SpringApp, message_service_args, running_on_free_ports
from tests.interop.tokensmith_services import serving
from tests.interop.user_tokens import PASSWORD, TOKENSMITH_APP, USERNAME, jwt_parts
from tests.support.server import running_server

from tokensmith import jose
from tokensmith.config.loader import load_config

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]

DPOP_SETTINGS = {
    "TOKENSMITH_DPOP__REQUIRED_BY_DEFAULT": "true",
    "TOKENSMITH_DPOP__NONCE_REQUIRED": "true",
    "TOKENSMITH_CLIENTS__MESSAGE_SERVICE__TOKEN_EXCHANGE__DPOP__BOUND_SUBJECT_TOKEN_CLIENTS": "[interop-app]",
}
TOKEN_STEPS = ("client_credentials", "authorization_code_grant", "refresh", "token_exchange")
# Which key each token must be bound to: the front end's (the user's tokens) or the service's.
BOUND_TO = {
    "client_credentials": "service",
    "authorization_code_grant": "front_end",
    "refresh": "front_end",
    "token_exchange": "service",
}


@pytest.fixture(scope="module")
async def tokensmith_dpop() -> AsyncIterator[str]:
    config = load_config(INTEROP_CONFIG, environ=DPOP_SETTINGS)
    assert config.dpop.required_by_default
    assert config.dpop.nonce_required
    assert config.clients["message-service"].token_exchange is not None
    assert config.clients["message-service"].token_exchange.dpop.bound_subject_token_clients == ("interop-app",)
    async with running_server(config) as issuer:
        yield issuer


@pytest.fixture(scope="module")
async def tokensmith_dpop_for_spring() -> AsyncIterator[str]:
    """The same, with `typ` JWT for message-service (what Spring resource servers need)."""
    config = load_config(INTEROP_CONFIG, environ={**DPOP_SETTINGS, **SPRING_RESOURCE_SERVER_TYP})
    assert config.tokens.access_token_typ_by_audience["message-service"] == "JWT"
    async with running_server(config) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def spring_message_service_on_dpop_tokensmith(
    boot_line: BootLine, java: str, spring_logs: Path, tokensmith_dpop_for_spring: str
) -> Iterator[SpringApp]:
    with running_on_free_ports(
        lambda: [
            SpringApp(boot_line, "message-service", java, spring_logs, message_service_args(tokensmith_dpop_for_spring))
        ]
    ) as (app,):
        yield app


def peer_config(issuer: str, resources: dict[str, str]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "resources": resources,
        "login": {
            "client_id": TOKENSMITH_APP.client_id,
            "client_secret": TOKENSMITH_APP.client_secret,
            "redirect_uri": TOKENSMITH_APP.redirect_uri,
            "scope": TOKENSMITH_APP.scope,
            "username": USERNAME,
            "password": PASSWORD,
        },
        "client_credentials": {
            "client_id": "message-reader",
            "client_secret": "reader-secret",
            "scope": "message.read",
        },
        "exchange": {"client_id": "message-service", "client_secret": "token", "scope": "message.read"},
    }


def report(steps: dict[str, Step]) -> str:
    return "\n".join(step.describe() for step in steps.values())


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of the node key, computed here, not taken from oauth4webapi."""
    return jose.jwk_thumbprint(ECKey.import_key({k: public_jwk[k] for k in ("kty", "crv", "x", "y")}))


def refused_first_for_nonce(trail: list[dict[str, Any]]) -> bool:
    """The step's first request was refused with `use_dpop_nonce` and the retry (with the nonce) succeeded."""
    first_error = trail[0].get("error") or trail[0].get("www_authenticate") or ""
    return "use_dpop_nonce" in first_error and trail[-1]["status"] == 200 and len(trail) == 2


async def run_bound_flow(
    node: str, issuer: str, resources: dict[str, str], scratch: Path
) -> tuple[dict[str, Step], dict[str, str]]:
    """Run dpop.mjs and check every token it obtained from tokensmith; the steps and each key's thumbprint."""
    # The node process blocks; services on this event loop keep serving meanwhile.
    steps = await asyncio.to_thread(run_peer, node, peer_config(issuer, resources), scratch, "dpop.mjs")
    all_detail = report(steps)
    expected = ("discovery", "keys", "authorization_code_login", *TOKEN_STEPS, *(f"resource:{r}" for r in resources))
    failed = [name for name in expected if name not in steps or not steps[name].ok]
    assert not failed, f"steps {failed} failed or missing:\n{all_detail}"

    assert "ES256" in steps["discovery"].detail["dpop_signing_alg_values_supported"], all_detail
    keys = steps["keys"].detail
    jkt = {}
    for name in ("front_end", "service"):
        jkt[name] = thumbprint(keys[name]["public_jwk"])
        assert jkt[name] == keys[name]["jkt"], f"RFC 7638 thumbprints differ: {all_detail}"
    assert jkt["front_end"] != jkt["service"]

    for name in TOKEN_STEPS:
        detail = steps[name].detail
        # oauth4webapi lower-cases token_type; on the wire it is "DPoP" (RFC 9449 5).
        assert detail["token_type"] == "dpop", f"{name}: {all_detail}"
        assert detail["trail"][-1]["token_type"] == "DPoP", f"{name}: {all_detail}"
        claims = jwt_parts(detail["access_token"])[1]
        assert claims["cnf"] == {"jkt": jkt[BOUND_TO[name]]}, f"{name} bound to the wrong key: {claims}"
    for name in ("client_credentials", "authorization_code_grant"):
        # nonce-required: each key's first proof has no nonce; openid-client retries with the server's, and
        # keeps it for that key's later requests (refresh, token exchange).
        assert refused_first_for_nonce(steps[name].detail["trail"]), f"{name}: {steps[name].describe()}"
    exchange = steps["token_exchange"].detail
    assert exchange["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token", all_detail
    exchanged = jwt_parts(exchange["access_token"])[1]
    assert (exchanged["sub"], exchanged["aud"]) == (USERNAME, "message-service"), exchanged
    return steps, jkt


async def test_openid_client_dpop_flow_against_tokensmith(
    node: str, tokensmith_dpop: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    app = dpop_resource_app(tokensmith_dpop, ("user-service", "message-service"), nonces=True)
    async with serving(app) as service:
        resource = f"{service}/whoami"
        resources = {"client_credentials": resource, "authorization_code": resource, "token_exchange": resource}
        steps, jkt = await run_bound_flow(node, tokensmith_dpop, resources, tmp_path)
        all_detail = report(steps)
        for name in TOKEN_STEPS:
            assert jwt_parts(steps[name].detail["access_token"])[0]["typ"] == "at+jwt", all_detail

        # The service took every token with its proof (after its own use_dpop_nonce round, once per key).
        seen = {name: steps[f"resource:{name}"].detail["body"] for name in resources}
        assert seen["client_credentials"]["client_id"] == "message-reader", all_detail
        assert seen["authorization_code"]["sub"] == USERNAME, all_detail
        assert seen["token_exchange"]["sub"] == USERNAME, all_detail
        assert seen["token_exchange"]["aud"] == ["message-service"], all_detail
        for name, key in (
            ("client_credentials", "service"),
            ("authorization_code", "front_end"),
            ("token_exchange", "service"),
        ):
            assert (seen[name]["scheme"], seen[name]["cnf"]) == ("DPoP", {"jkt": jkt[key]}), all_detail
        assert refused_first_for_nonce(steps["resource:client_credentials"].detail["trail"]), all_detail
        assert refused_first_for_nonce(steps["resource:authorization_code"].detail["trail"]), all_detail

        # The same bound token without its proof is refused by the service (RFC 9449 7.1).
        exchanged_token = steps["token_exchange"].detail["access_token"]
        as_bearer = await http.get(resource, headers={"Authorization": f"Bearer {exchanged_token}"})
        assert as_bearer.status_code == 401, as_bearer.text
        assert as_bearer.json()["error"] == "invalid_token", json.dumps(as_bearer.json())


async def test_openid_client_dpop_tokens_at_spring_message_service(
    node: str,
    boot_line: BootLine,
    tokensmith_dpop_for_spring: str,
    spring_message_service_on_dpop_tokensmith: SpringApp,
    tmp_path: Path,
) -> None:
    """Two third-party peers agreeing through tokensmith: openid-client's proofs for its bound tokens (the reader's
    own, and the exchanged one aimed at message-service) are accepted by Spring Security's DPoP support."""
    message = f"{spring_message_service_on_dpop_tokensmith.url}/message"
    resources = {"client_credentials": message, "token_exchange": message}
    steps, _ = await run_bound_flow(node, tokensmith_dpop_for_spring, resources, tmp_path)
    what = f"[Spring Boot {boot_line.spring_boot}] message-service: {report(steps)}"
    reader = steps["resource:client_credentials"].detail["body"]
    assert reader["sub"] == "message-reader", what
    exchanged = steps["resource:token_exchange"].detail["body"]
    assert (exchanged["sub"], exchanged["aud"]) == (USERNAME, ["message-service"]), what
    assert "SCOPE_message.read" in exchanged["authorities"], what
    # Spring hands out no nonces: one request each.
    assert len(steps["resource:client_credentials"].detail["trail"]) == 1, what
