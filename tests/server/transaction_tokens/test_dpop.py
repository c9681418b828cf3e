"""A DPoP-bound subject token in a Txn-Token Request over HTTP: the workload shows the possession the token
exchange asks for (its key's proof, or its own where its token-exchange policy names the holder)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from joserfc.jwk import ECKey
from tests.server.browser import Browser, web_authorize_params
from tests.server.configs import WEB_CLIENT
from tests.server.transaction_tokens.support import EDGE, EDGE_CLIENT, server_data, txn_request
from tests.support.server import running_server

from tokensmith import jose
from tokensmith.config.server import ServerConfig

HOLDER = ECKey.generate_key("P-256")  # the front end's key, to which the user's access token is bound
EDGE_KEY = ECKey.generate_key("P-256")  # user-service's own key
# user-service's token-exchange policy on each server: none, or one that names the front end as a holder.
POLICIES = {"plain": None, "naming": {"dpop": {"bound-subject-token-clients": [WEB_CLIENT]}}}


@pytest.fixture(scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        for name, policy in POLICIES.items():
            data = server_data(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(name) / 'tokensmith.db'}")
            if policy is not None:
                data["clients"]["user-service"] = {**EDGE_CLIENT, "token-exchange": policy}
            urls[name] = await stack.enter_async_context(running_server(ServerConfig.model_validate(data)))
        yield urls


def proof(key: ECKey, base_url: str) -> str:
    return jose.sign_proof(key, alg="ES256", method="POST", uri=f"{base_url}/oauth2/token")


async def bound_user_token(http: httpx.AsyncClient, base_url: str) -> str:
    """The user's access token for user-service, bound to the front end's key (RFC 9449 5)."""
    params = web_authorize_params(scope="openid message.read")
    dpop = {"DPoP": proof(HOLDER, base_url)}
    tokens = await Browser(http).tokens(params, dpop, username="baeldung", password="password")
    token: str = tokens["access_token"]
    assert jose.parse(token).claims["cnf"] == {"jkt": HOLDER.thumbprint()}
    return token


async def dpop_txn_request(http: httpx.AsyncClient, subject_token: str, dpop: str | None) -> httpx.Response:
    headers = {**EDGE, **({"DPoP": dpop} if dpop is not None else {})}
    return await txn_request(http, headers, scope="message.read", subject_token=subject_token)


@pytest.mark.parametrize("server", list(POLICIES))
async def test_a_bound_subject_token_needs_a_proof(servers: dict[str, str], server: str) -> None:
    base_url = servers[server]
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as http:
        token = await bound_user_token(http, base_url)
        refused = await dpop_txn_request(http, token, None)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_dpop_proof"
        assert "subject_token is DPoP-bound" in refused.json()["error_description"]

        # A proof by the key the token is bound to is the possession the exchange asks for, on any server.
        accepted = await dpop_txn_request(http, token, proof(HOLDER, base_url))
        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        assert body["token_type"] == "N_A"  # the Transaction Token itself is not bound
        assert "cnf" not in jose.parse(body["access_token"]).claims


async def test_the_workloads_own_proof_only_where_its_policy_names_the_holder(servers: dict[str, str]) -> None:
    for server, expected in (("plain", 400), ("naming", 200)):
        base_url = servers[server]
        async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10) as http:
            token = await bound_user_token(http, base_url)
            response = await dpop_txn_request(http, token, proof(EDGE_KEY, base_url))
            assert response.status_code == expected, (server, response.text)
            if expected == 400:
                assert response.json()["error"] == "invalid_dpop_proof"
                assert "does not let this client present it with another key" in response.json()["error_description"]
