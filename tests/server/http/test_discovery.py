"""Discovery documents (RFC 8414, OpenID Connect Discovery) and the JWKS."""

from __future__ import annotations

import httpx
import pytest

from tokensmith.config.server import TOKEN_EXCHANGE


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
async def test_metadata(http: httpx.AsyncClient, base_url: str, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == base_url
    for name, endpoint in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("jwks_uri", "/oauth2/jwks"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("userinfo_endpoint", "/userinfo"),
        ("end_session_endpoint", "/connect/logout"),
    ]:
        assert metadata[name] == base_url + endpoint
    # Only what some client has enabled: the test config has no token-exchange client.
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert TOKEN_EXCHANGE not in metadata["grant_types_supported"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "openid" in metadata["scopes_supported"]


async def test_jwks_publishes_both_algorithms_with_kid(http: httpx.AsyncClient) -> None:
    response = await http.get("/oauth2/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert {key["alg"] for key in keys} == {"ES256", "RS256"}
    for key in keys:
        assert key["kid"]
        assert key["use"] == "sig"
        assert "d" not in key  # never a private part
        assert "p" not in key


async def test_unknown_path_and_wrong_method_are_json(http: httpx.AsyncClient) -> None:
    missing = await http.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "invalid_request"
    wrong = await http.get("/oauth2/token")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "invalid_request"
    assert wrong.headers["cache-control"] == "no-store"


async def test_metrics(http: httpx.AsyncClient) -> None:
    await http.post("/oauth2/token", data={"grant_type": "client_credentials"})
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert "tokensmith_token_requests_total" in response.text
