"""Obtaining a user's access token through the login flow (authorization code + PKCE), with plain httpx.

The Spring tests need a real user token, obtained the way a front end obtains it; doing that with plain HTTP
keeps the peer under test the only third-party code in the path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from tests.interop.http_login import login_over_http

USERNAME = "baeldung"
PASSWORD = "password"


@dataclass(frozen=True)
class LoginClient:
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str


# The article's front end as examples/authorization-server.yaml registers it; its access tokens are for user-service.
EXAMPLE_APP = LoginClient(
    "messaging-client-oidc", "secret", "http://127.0.0.1:8080/login/oauth2/code/messaging-client-oidc", "openid profile"
)
# The front end of interop/tokensmith/interop.yaml (the same, with client_secret_post for Authlib).
TOKENSMITH_APP = LoginClient(
    "interop-app", "app-secret", "http://127.0.0.1:8080/login/oauth2/code/interop-app", "openid profile user.read"
)
# On Spring Authorization Server a token's aud is the client it was issued to: log in through client user-service.
SPRING_AS_APP = LoginClient(
    "user-service", "user-secret", "http://127.0.0.1:8080/login/oauth2/code/user-service", "openid profile user.read"
)


async def discover(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    response = await http.get(f"{issuer}/.well-known/openid-configuration")
    assert response.status_code == 200, f"discovery at {issuer}: HTTP {response.status_code} {response.text[:300]}"
    metadata: dict[str, Any] = response.json()
    return metadata


async def user_token(http: httpx.AsyncClient, issuer: str, client: LoginClient) -> dict[str, Any]:
    """Log ``baeldung`` in through ``client`` and redeem the code; the token endpoint's JSON response."""
    metadata = await discover(http, issuer)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": client.scope,
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    login = await login_over_http(
        http, f"{metadata['authorization_endpoint']}?{urlencode(query)}", client.redirect_uri, USERNAME, PASSWORD
    )
    params = parse_qs(urlsplit(login.callback_url).query)
    assert params.get("state") == [state], f"state did not round-trip: {login.callback_url}"
    assert "code" in params, f"no code in the redirect {login.callback_url} (trail {login.trail})"
    response = await http.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client.client_id, client.client_secret),
    )
    assert response.status_code == 200, f"code redemption at {issuer}: HTTP {response.status_code} {response.text}"
    tokens: dict[str, Any] = response.json()
    return tokens


async def client_credentials_token(
    http: httpx.AsyncClient, issuer: str, client_id: str, client_secret: str, scope: str
) -> str:
    metadata = await discover(http, issuer)
    response = await http.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, client_secret),
    )
    assert response.status_code == 200, f"client credentials at {issuer}: HTTP {response.status_code} {response.text}"
    token: str = response.json()["access_token"]
    return token


def bearer(tokens: Mapping[str, Any]) -> dict[str, str]:
    """The ``Authorization`` header that sends the access token of a token endpoint's response."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT, unverified (for assertions and failure messages only)."""
    header, claims = (
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in token.split(".")[:2]
    )
    return header, claims
