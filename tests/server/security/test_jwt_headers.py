"""JWT header attacks on the endpoints that accept our tokens (userinfo, introspection, revocation, logout).

Only ES256/RS256 with a key from our own JWKS, chosen by ``kid`` and of the key type the ``alg`` needs:
``alg: none``, HS256 keyed with our public key (HS/RS confusion), ``jwk``/``jku``/``x5u`` headers pointing at
the attacker's key, and ``kid`` injection are all refused.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey
from tests.server.browser import Browser, basic_auth
from tests.server.configs import WEB_CLIENT


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def _our_key(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    keys = (await http.get("/oauth2/jwks")).json()["keys"]
    key: dict[str, Any] = next(k for k in keys if k["kid"] == header["kid"])
    return key


async def forgeries(http: httpx.AsyncClient, genuine: str) -> dict[str, str]:
    """Tokens with the genuine token's claims (not expired, not revoked) and forged headers or signatures."""
    claims = _claims(genuine)
    payload = json.dumps(claims).encode()
    ours = await _our_key(http, genuine)
    attacker = ECKey.generate_key("P-256", private=True)
    attacker_rsa = RSAKey.generate_key(2048, private=True)
    public_json = json.dumps(ours).encode()

    def signed(header: dict[str, Any], key: Any) -> str:
        return jws.serialize_compact(header, payload, key, algorithms=[header["alg"]])

    return {
        "alg none": f"{_b64({'alg': 'none', 'kid': ours['kid']})}.{_b64(claims)}.",
        "alg none, no signature part": f"{_b64({'alg': 'none'})}.{_b64(claims)}",
        "HS256 keyed with our public JWK": signed({"alg": "HS256", "kid": ours["kid"]}, OctKey.import_key(public_json)),
        "HS256 keyed with our x coordinate": signed(
            {"alg": "HS256", "kid": ours["kid"]}, OctKey.import_key(str(ours.get("x", ours.get("n"))).encode())
        ),
        "embedded jwk with our kid": signed(
            {"alg": "ES256", "kid": ours["kid"], "jwk": attacker.as_dict(private=False)}, attacker
        ),
        "embedded jwk, no kid": signed({"alg": "ES256", "jwk": attacker.as_dict(private=False)}, attacker),
        "jku to the attacker": signed({"alg": "ES256", "kid": ours["kid"], "jku": "http://127.0.0.1:1/jwks"}, attacker),
        "x5u to the attacker": signed(
            {"alg": "RS256", "kid": ours["kid"], "x5u": "http://127.0.0.1:1/c"}, attacker_rsa
        ),
        "kid path injection": signed({"alg": "ES256", "kid": "../../../../dev/null"}, attacker),
        "kid SQL injection": signed({"alg": "ES256", "kid": "x' OR '1'='1"}, attacker),
        "kid not a string": f"{_b64({'alg': 'ES256', 'kid': {'$ne': None}})}.{_b64(claims)}.{genuine.split('.')[2]}",
        "RS256 naming our EC kid": signed({"alg": "RS256", "kid": ours["kid"]}, attacker_rsa),
        "signature of another token": ".".join(
            [*genuine.split(".")[:1], _b64({**claims, "sub": "bob"}), genuine.split(".")[2]]
        ),
    }


@pytest.fixture
async def genuine(browser: Browser) -> str:
    tokens = await browser.tokens()
    return str(tokens["access_token"])


async def test_forged_access_tokens_are_refused_by_userinfo(http: httpx.AsyncClient, genuine: str) -> None:
    assert (await http.get("/userinfo", headers={"Authorization": f"Bearer {genuine}"})).status_code == 200
    for name, token in (await forgeries(http, genuine)).items():
        response = await http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["error"] == "invalid_token", name
        assert 'error="invalid_token"' in response.headers["www-authenticate"], name


async def test_forged_access_tokens_are_inactive_at_introspection(http: httpx.AsyncClient, genuine: str) -> None:
    for name, token in (await forgeries(http, genuine)).items():
        response = await http.post("/oauth2/introspect", data={"token": token}, headers=basic_auth())
        assert response.json() == {"active": False}, name


async def test_forged_tokens_revoke_nothing(http: httpx.AsyncClient, genuine: str) -> None:
    for token in (await forgeries(http, genuine)).values():
        response = await http.post("/oauth2/revoke", data={"token": token}, headers=basic_auth())
        assert response.status_code == 200
    introspected = await http.post("/oauth2/introspect", data={"token": genuine}, headers=basic_auth())
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == WEB_CLIENT
