"""The client app's relying-party checks: state, PKCE, and every ID token rule of OpenID Connect Core 3.1.3.7."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tokensmith.demo.oidc_rp import (
    LoginError,
    ProviderUnavailable,
    RefreshRefused,
    RelyingParty,
    RelyingPartyConfig,
    new_pending_login,
)

ISSUER = "http://localhost:9001"
CONFIG = RelyingPartyConfig(
    issuer=ISSUER,
    client_id="messaging-client",
    client_secret="secret",
    redirect_uri="http://localhost:8080/login/oauth2/code/messaging-client-oidc",
    scopes=("openid", "profile"),
    post_logout_redirect_uri="http://localhost:8080/logged-out",
)
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"}, private=True)
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"}, private=True)


def _provider(
    token_response: dict[str, Any] | None = None,
    refresh_answer: tuple[int, dict[str, Any]] = (400, {}),
    *,
    iss_supported: bool = False,
) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/oauth2/authorize",
                    "token_endpoint": f"{ISSUER}/oauth2/token",
                    "jwks_uri": f"{ISSUER}/oauth2/jwks",
                    "end_session_endpoint": f"{ISSUER}/connect/logout",
                    "authorization_response_iss_parameter_supported": iss_supported,
                },
            )
        if path == "/oauth2/jwks":
            return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})
        if path == "/oauth2/token":
            form = parse_qs(request.content.decode())
            if form.get("grant_type") == ["refresh_token"]:
                status, body = refresh_answer
                return httpx.Response(status, json=body)
            if form.get("code_verifier") is None:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json=token_response or {})
        return httpx.Response(404)

    return httpx.MockTransport(handle)


def _id_token(expected_nonce: str, key: RSAKey = KEY, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "baeldung", "aud": "messaging-client", "azp": "messaging-client"}
    claims |= {"iat": now, "exp": now + 300, "nonce": expected_nonce} | overrides
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


async def test_authorization_url_carries_state_nonce_and_s256_challenge() -> None:
    async with httpx.AsyncClient(transport=_provider()) as http:
        pending = new_pending_login("/")
        url = await RelyingParty(CONFIG, http).authorization_url(pending)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{ISSUER}/oauth2/authorize?")
    assert query["state"] == pending.state
    assert query["nonce"] == pending.nonce
    assert query["code_challenge_method"] == "S256"
    digest = hashlib.sha256(pending.code_verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query["scope"] == "openid profile"


async def test_a_good_callback_yields_tokens_and_claims() -> None:
    pending = new_pending_login("/")
    body = {"access_token": "at", "id_token": _id_token(pending.nonce), "token_type": "Bearer", "expires_in": 300}
    async with httpx.AsyncClient(transport=_provider(body)) as http:
        result = await RelyingParty(CONFIG, http).redeem(pending, {"state": pending.state, "code": "c"})
    assert result.access_token == "at"
    assert result.id_claims["sub"] == "baeldung"


async def test_a_foreign_state_is_refused_before_the_code_is_used() -> None:
    pending = new_pending_login("/")
    async with httpx.AsyncClient(transport=_provider()) as http:
        with pytest.raises(LoginError, match="state"):
            await RelyingParty(CONFIG, http).redeem(pending, {"state": "forged", "code": "c"})


async def test_a_callback_naming_our_issuer_is_accepted_from_a_server_that_sends_iss() -> None:
    pending = new_pending_login("/")
    body = {"access_token": "at", "id_token": _id_token(pending.nonce), "token_type": "Bearer", "expires_in": 300}
    async with httpx.AsyncClient(transport=_provider(body, iss_supported=True)) as http:
        result = await RelyingParty(CONFIG, http).redeem(pending, {"state": pending.state, "code": "c", "iss": ISSUER})
    assert result.access_token == "at"


@pytest.mark.parametrize("iss_supported", [True, False])
@pytest.mark.parametrize(
    "callback",
    [
        {"code": "c", "iss": "http://evil.example"},
        {"error": "access_denied", "iss": "http://evil.example"},
        {"code": "c", "iss": ISSUER + "/"},
    ],
)
async def test_a_response_from_another_issuer_is_refused(callback: dict[str, str], iss_supported: bool) -> None:
    """RFC 9207 2.4: simple string comparison, on success and error responses alike (a mix-up attack)."""
    pending = new_pending_login("/")
    body = {"access_token": "at", "id_token": _id_token(pending.nonce), "token_type": "Bearer", "expires_in": 300}
    async with httpx.AsyncClient(transport=_provider(body, iss_supported=iss_supported)) as http:
        with pytest.raises(LoginError, match=r"comes from issuer .* not ours"):
            await RelyingParty(CONFIG, http).redeem(pending, {"state": pending.state, **callback})


async def test_a_response_without_iss_is_refused_when_the_server_promises_it() -> None:
    pending = new_pending_login("/")
    body = {"access_token": "at", "id_token": _id_token(pending.nonce), "token_type": "Bearer", "expires_in": 300}
    async with httpx.AsyncClient(transport=_provider(body, iss_supported=True)) as http:
        with pytest.raises(LoginError, match="lacks the iss parameter"):
            await RelyingParty(CONFIG, http).redeem(pending, {"state": pending.state, "code": "c"})


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"iss": "http://evil.example"}, "iss"),
        ({"aud": "another-client"}, "aud"),
        ({"azp": "another-client"}, "azp"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nonce": "replayed-from-another-login"}, "nonce"),
    ],
)
async def test_unacceptable_id_tokens_are_refused(overrides: dict[str, Any], why: str) -> None:
    pending = new_pending_login("/")
    async with httpx.AsyncClient(transport=_provider()) as http:
        with pytest.raises(LoginError, match=why):
            await RelyingParty(CONFIG, http).validate_id_token(_id_token(pending.nonce, **overrides), pending.nonce)


async def test_an_id_token_signed_by_another_key_is_refused() -> None:
    pending = new_pending_login("/")
    async with httpx.AsyncClient(transport=_provider()) as http:
        with pytest.raises(LoginError, match="does not verify"):
            await RelyingParty(CONFIG, http).validate_id_token(_id_token(pending.nonce, OTHER_KEY), pending.nonce)


async def test_an_unreachable_provider_is_reported_as_such() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(ProviderUnavailable):
            await RelyingParty(CONFIG, http).authorization_url(new_pending_login("/"))


async def test_logout_url_names_the_hint_and_the_registered_return_address() -> None:
    async with httpx.AsyncClient(transport=_provider()) as http:
        url = await RelyingParty(CONFIG, http).logout_url("the-id-token")
    assert url is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{ISSUER}/connect/logout?")
    assert query["id_token_hint"] == "the-id-token"
    assert query["post_logout_redirect_uri"] == CONFIG.post_logout_redirect_uri


async def test_a_refresh_yields_the_rotated_token_and_a_checked_id_token() -> None:
    # A refreshed ID token carries the login's nonce, or none (OpenID Connect Core 12.2): not checked against one.
    answer = {"access_token": "at2", "refresh_token": "rt2", "id_token": _id_token("the-login's")}
    async with httpx.AsyncClient(transport=_provider(refresh_answer=(200, answer))) as http:
        tokens = await RelyingParty(CONFIG, http).refresh("rt1", subject="baeldung")
    assert (tokens.access_token, tokens.refresh_token) == ("at2", "rt2")
    assert tokens.id_claims is not None
    assert tokens.id_claims["sub"] == "baeldung"


async def test_a_refresh_without_rotation_or_id_token_keeps_what_the_session_has() -> None:
    async with httpx.AsyncClient(transport=_provider(refresh_answer=(200, {"access_token": "at2"}))) as http:
        tokens = await RelyingParty(CONFIG, http).refresh("rt1", subject="baeldung")
    assert (tokens.access_token, tokens.refresh_token, tokens.id_token, tokens.id_claims) == ("at2", None, None, None)


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        ((200, {"access_token": "at2", "id_token": _id_token("n", sub="mallory")}), "for another user"),
        ((200, {"access_token": "at2", "id_token": _id_token("n", iss="http://evil")}), "iss is not our issuer"),
        ((200, {"refresh_token": "rt2"}), "lacks an access token"),
    ],
)
async def test_unacceptable_refresh_answers_are_refused(answer: tuple[int, dict[str, Any]], refused: str) -> None:
    async with httpx.AsyncClient(transport=_provider(refresh_answer=answer)) as http:
        with pytest.raises(LoginError, match=refused):
            await RelyingParty(CONFIG, http).refresh("rt1", subject="baeldung")


async def test_a_refused_refresh_token_and_a_failing_server_are_told_apart() -> None:
    async with httpx.AsyncClient(transport=_provider(refresh_answer=(400, {"error": "invalid_grant"}))) as http:
        with pytest.raises(RefreshRefused, match="invalid_grant"):
            await RelyingParty(CONFIG, http).refresh("rt1", subject="baeldung")
    async with httpx.AsyncClient(transport=_provider(refresh_answer=(503, {}))) as http:
        with pytest.raises(ProviderUnavailable):
            await RelyingParty(CONFIG, http).refresh("rt1", subject="baeldung")
