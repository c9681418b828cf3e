"""DPoP over HTTP at the token endpoint: the DPoP header, bound tokens, and hostile proofs refused (RFC 9449)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OctKey
from joserfc.util import json_b64encode, urlsafe_b64encode
from tests.server.browser import Browser, web_authorize_params
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, server_config
from tests.support.server import running_server

from tokensmith import jose

KEY = ECKey.generate_key("P-256")
OTHER = ECKey.generate_key("P-256")


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running_server(server_config()) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


def good(base_url: str, **kwargs: Any) -> str:
    return jose.sign_proof(KEY, alg="ES256", method="POST", uri=f"{base_url}/oauth2/token", **kwargs)


def forged(base_url: str, header: dict[str, Any], signature: bytes = b"sig") -> str:
    claims = {"jti": str(time.time_ns()), "htm": "POST", "htu": f"{base_url}/oauth2/token", "iat": int(time.time())}
    return (json_b64encode(header) + b"." + json_b64encode(claims) + b"." + urlsafe_b64encode(signature)).decode()


async def post(http: httpx.AsyncClient, headers: list[tuple[str, str]]) -> httpx.Response:
    return await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET},
        headers=headers,
    )


async def test_a_proof_gets_a_bound_token(http: httpx.AsyncClient, base_url: str) -> None:
    response = await post(http, [("DPoP", good(base_url))])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert jose.parse(body["access_token"]).claims["cnf"] == {"jkt": KEY.thumbprint()}
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


def _hostile(base_url: str) -> dict[str, list[tuple[str, str]]]:
    public = dict(KEY.as_dict(private=False))
    now = int(time.time())
    return {
        "two headers": [("DPoP", good(base_url)), ("DPoP", good(base_url))],
        "private jwk": [("DPoP", forged(base_url, {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(KEY.as_dict())}))],
        "alg none": [("DPoP", forged(base_url, {"typ": "dpop+jwt", "alg": "none", "jwk": public}, b""))],
        "HS256": [
            (
                "DPoP",
                forged(base_url, {"typ": "dpop+jwt", "alg": "HS256", "jwk": dict(OctKey.generate_key(256).as_dict())}),
            )
        ],
        "wrong htm": [("DPoP", jose.sign_proof(KEY, alg="ES256", method="GET", uri=f"{base_url}/oauth2/token"))],
        "wrong htu": [("DPoP", jose.sign_proof(KEY, alg="ES256", method="POST", uri=f"{base_url}/oauth2/revoke"))],
        "stale iat": [("DPoP", good(base_url, iat=now - 3600))],
        "oversized": [("DPoP", "e" * 9000)],
        "malformed": [("DPoP", "not a proof")],
    }


@pytest.mark.parametrize(
    "case",
    [
        "two headers",
        "private jwk",
        "alg none",
        "HS256",
        "wrong htm",
        "wrong htu",
        "stale iat",
        "oversized",
        "malformed",
    ],
)
async def test_hostile_proofs_are_invalid_dpop_proof(http: httpx.AsyncClient, base_url: str, case: str) -> None:
    response = await post(http, _hostile(base_url)[case])
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"
    assert response.json()["error_description"]


async def test_a_replayed_proof_is_refused(http: httpx.AsyncClient, base_url: str) -> None:
    once = good(base_url)
    assert (await post(http, [("DPoP", once)])).status_code == 200
    replay = await post(http, [("DPoP", once)])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_dpop_proof"


async def test_userinfo_takes_a_bound_token_only_with_its_proof(http: httpx.AsyncClient, base_url: str) -> None:
    # A user's token bound to KEY (authorization code with dpop_jkt, redeemed with a proof by KEY).
    query = await Browser(http).code_for(web_authorize_params(dpop_jkt=KEY.thumbprint()))
    redeemed = await Browser(http).redeem(query["code"], {"DPoP": good(base_url)})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["token_type"] == "DPoP"
    token = redeemed.json()["access_token"]
    userinfo = f"{base_url}/userinfo"

    as_bearer = await http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"] == "invalid_token"
    other_key = jose.sign_proof(OTHER, alg="ES256", method="GET", uri=userinfo, access_token=token)
    stolen = await http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": other_key})
    assert stolen.status_code == 401
    assert stolen.json()["error"] == "invalid_token"
    wrong_ath = jose.sign_proof(KEY, alg="ES256", method="GET", uri=userinfo, access_token="another")
    refused = await http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": wrong_ath})
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_dpop_proof"
    assert refused.headers["www-authenticate"].startswith("DPoP algs=")
    proof = jose.sign_proof(KEY, alg="ES256", method="GET", uri=userinfo, access_token=token)
    ok = await http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert ok.status_code == 200, ok.text
    assert ok.json()["sub"] == "alice"


async def test_a_code_bound_by_dpop_jkt_needs_that_key(http: httpx.AsyncClient, base_url: str) -> None:
    query = await Browser(http).code_for(web_authorize_params(dpop_jkt=OTHER.thumbprint()))
    redeemed = await Browser(http).redeem(query["code"], {"DPoP": good(base_url)})
    assert redeemed.status_code == 400
    assert redeemed.json()["error"] == "invalid_dpop_proof"
