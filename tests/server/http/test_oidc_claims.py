"""OpenID Connect claims over HTTP: the access token in the userinfo POST body (RFC 6750 2.2), `acr`/`amr` of the
password login, the `claims` request parameter (OpenID Connect Core 5.5) and what discovery says about them."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from tests.server.browser import Browser, basic_auth, query_of, web_authorize_params

from tokensmith.server.core.claims import PASSWORD_ACR, USERINFO_CLAIMS_CLAIM


def payload(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_userinfo_reads_the_access_token_from_a_form_body(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens()
    response = await http.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "alice"


async def test_userinfo_refuses_a_token_in_header_and_body(http: httpx.AsyncClient, browser: Browser) -> None:
    token = (await browser.tokens())["access_token"]
    both = await http.post("/userinfo", data={"access_token": token}, headers=bearer(token))
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_request"
    assert 'error="invalid_request"' in both.headers["www-authenticate"]
    twice = await http.post(
        "/userinfo",
        content=f"access_token={token}&access_token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400
    assert twice.json()["error"] == "invalid_request"
    bad = await http.post("/userinfo", data={"access_token": "not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    # The token in a query string is not accepted (RFC 6750 2.3 is a MAY this server does not do).
    query = await http.get("/userinfo", params={"access_token": token})
    assert query.status_code == 401


async def test_id_token_says_how_the_user_signed_in(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens(web_authorize_params(acr_values="urn:example:mfa 1"))
    id_token = payload(tokens["id_token"])
    assert id_token["acr"] == PASSWORD_ACR
    assert id_token["amr"] == ["pwd"]
    refreshed = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic_auth(),
    )
    assert payload(refreshed.json()["id_token"])["acr"] == PASSWORD_ACR


async def test_claims_parameter_releases_claims_by_name(http: httpx.AsyncClient, browser: Browser) -> None:
    claims = {"userinfo": {"name": {"essential": True}, "email": None}, "id_token": {"email": {"essential": True}}}
    tokens = await browser.tokens(web_authorize_params(scope="openid", claims=json.dumps(claims)))
    id_token = payload(tokens["id_token"])
    assert id_token["email"] == "alice@example.com"
    assert "name" not in id_token  # asked for at userinfo only
    assert payload(tokens["access_token"])[USERINFO_CLAIMS_CLAIM] == ["name", "email"]
    info = (await http.get("/userinfo", headers=bearer(tokens["access_token"]))).json()
    assert info["name"] == "Alice Liddell"
    assert info["email"] == "alice@example.com"
    assert "preferred_username" not in info  # no profile scope, not asked for

    # A refresh keeps what the authorization asked for.
    refreshed = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic_auth(),
    )
    assert payload(refreshed.json()["id_token"])["email"] == "alice@example.com"
    again = (await http.get("/userinfo", headers=bearer(refreshed.json()["access_token"]))).json()
    assert again["name"] == "Alice Liddell"


async def test_without_claims_parameter_scope_decides(http: httpx.AsyncClient, browser: Browser) -> None:
    tokens = await browser.tokens(web_authorize_params(scope="openid"))
    assert USERINFO_CLAIMS_CLAIM not in payload(tokens["access_token"])
    assert "email" not in payload(tokens["id_token"])
    info = (await http.get("/userinfo", headers=bearer(tokens["access_token"]))).json()
    assert "name" not in info
    assert info["department"] == "wonderland"  # custom claims are always released


async def test_bad_claims_parameter_is_redirected_as_invalid_request(browser: Browser) -> None:
    for claims, expected in (
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"userinfo": ["name"]}', "claims.userinfo must be a JSON object"),
        ('{"id_token": {"email": true}}', "claims.id_token.email must be null or a JSON object"),
        ('{"id_token": {"email": {"essential": "yes"}}}', "essential must be true or false"),
    ):
        query = await browser.code_for(web_authorize_params(claims=claims))
        assert query["error"] == "invalid_request", claims
        assert expected in query["error_description"]


async def test_essential_acr_that_cannot_be_met_is_refused(browser: Browser) -> None:
    unmet = {"id_token": {"acr": {"essential": True, "values": ["urn:example:mfa"]}}}
    query = await browser.code_for(web_authorize_params(claims=json.dumps(unmet)))
    assert query["error"] == "access_denied"
    assert PASSWORD_ACR in query["error_description"]
    met = {"id_token": {"acr": {"essential": True, "values": ["urn:example:mfa", PASSWORD_ACR]}}}
    assert "code" in await browser.code_for(web_authorize_params(claims=json.dumps(met)))
    # Not essential: a voluntary request for another acr is answered with the acr of the login that happened.
    voluntary = {"id_token": {"acr": {"values": ["urn:example:mfa"]}}}
    assert "code" in await browser.code_for(web_authorize_params(claims=json.dumps(voluntary)))


async def test_discovery_describes_claims_support(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/openid-configuration")).json()
    assert metadata["claims_parameter_supported"] is True
    assert metadata["acr_values_supported"] == [PASSWORD_ACR]
    supported = set(metadata["claims_supported"])
    # Every claim userinfo returns for the configured user, and the ID token's own.
    assert {"sub", "name", "email", "department", "preferred_username", "acr", "amr", "auth_time"} <= supported
    assert "address" not in supported  # no configured user has one


async def test_location_of_login_keeps_the_claims_parameter(http: httpx.AsyncClient, browser: Browser) -> None:
    claims = json.dumps({"userinfo": {"name": None}})
    response = await browser.authorize(web_authorize_params(scope="openid", claims=claims))
    assert response.headers["location"].startswith("/login")
    signed_in = await browser.login(response.headers["location"])
    back = await http.get(signed_in.headers["location"])
    assert "code" in query_of(back.headers["location"])
