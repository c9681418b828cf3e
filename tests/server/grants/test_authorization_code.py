"""The authorization code grant, driven without HTTP over a real (SQLite) store."""

from __future__ import annotations

import pytest
from tests.server.configs import PLAIN_CLIENT, PLAIN_REDIRECT, SPA_CLIENT, SPA_REDIRECT, WEB_CLIENT, WEB_REDIRECT
from tests.server.conftest import FakeClock
from tests.server.protocol import VERIFIER, as_client, grant, new_code

from tokensmith.errors import OAuthError
from tokensmith.server.core.access_tokens import active_access_token
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.tokens import at_hash


async def redeem(ctx: ServerContext, code: str, client_id: str = WEB_CLIENT, **params: str) -> dict[str, object]:
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT, **params}
    response = await grant(ctx, as_client(ctx, client_id), **fields)
    return response.to_dict()


async def test_code_with_pkce_yields_access_id_and_refresh_tokens(ctx: ServerContext) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, scope="openid profile", nonce="n-0S6")
    body = await redeem(ctx, code, code_verifier=VERIFIER)

    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "openid profile"
    assert isinstance(body["refresh_token"], str)
    access = ctx.keys.verify(str(body["access_token"]))
    assert access.header["typ"] == "at+jwt"
    claims = access.claims
    assert claims["iss"] == ctx.issuer
    assert claims["sub"] == "alice"
    assert claims["aud"] == "user-service"  # the client's configured audience
    assert claims["client_id"] == WEB_CLIENT
    assert claims["scope"] == "openid profile"
    assert {"exp", "iat", "nbf", "jti"} <= claims.keys()
    id_token = ctx.keys.verify(str(body["id_token"]))
    assert id_token.header["alg"] == "RS256"
    assert id_token.claims["aud"] == WEB_CLIENT
    assert id_token.claims["azp"] == WEB_CLIENT
    assert id_token.claims["nonce"] == "n-0S6"
    assert id_token.claims["at_hash"] == at_hash(str(body["access_token"]))
    assert isinstance(id_token.claims["auth_time"], int)


async def test_without_openid_there_is_no_id_token(ctx: ServerContext) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, scope="message.read")
    body = await redeem(ctx, code, code_verifier=VERIFIER)
    assert "id_token" not in body
    assert body["scope"] == "message.read"


async def test_replayed_code_is_refused_and_revokes_what_it_issued(ctx: ServerContext) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT, scope="openid")
    first = await redeem(ctx, code, code_verifier=VERIFIER)
    assert await active_access_token(ctx, str(first["access_token"])) is not None

    with pytest.raises(OAuthError) as caught:
        await redeem(ctx, code, code_verifier=VERIFIER)
    assert caught.value.error == "invalid_grant"
    assert await active_access_token(ctx, str(first["access_token"])) is None
    with pytest.raises(OAuthError) as refresh:
        await grant(
            ctx, as_client(ctx, WEB_CLIENT), grant_type="refresh_token", refresh_token=str(first["refresh_token"])
        )
    assert refresh.value.error == "invalid_grant"


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"code_verifier": "w" * 50}, "does not match"),
        ({}, "code_verifier is required"),
        ({"redirect_uri": WEB_REDIRECT + "/other", "code_verifier": VERIFIER}, "redirect_uri"),
    ],
)
async def test_bad_verifier_or_redirect_uri_is_invalid_grant(
    ctx: ServerContext, params: dict[str, str], description: str
) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT)
    with pytest.raises(OAuthError) as caught:
        await redeem(ctx, code, **params)
    assert caught.value.error == "invalid_grant"
    assert description in caught.value.description


async def test_malformed_verifier_is_invalid_request(ctx: ServerContext) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT)
    with pytest.raises(OAuthError) as caught:
        await redeem(ctx, code, code_verifier="short")
    assert caught.value.error == "invalid_request"


async def test_verifier_for_a_code_without_challenge_is_a_refused_downgrade(ctx: ServerContext) -> None:
    code = await new_code(ctx, PLAIN_CLIENT, PLAIN_REDIRECT, verifier=None)
    with pytest.raises(OAuthError) as caught:
        await redeem(ctx, code, PLAIN_CLIENT, redirect_uri=PLAIN_REDIRECT, code_verifier=VERIFIER)
    assert caught.value.error == "invalid_grant"
    assert "no code_challenge" in caught.value.description


async def test_confidential_client_without_required_pkce_may_redeem_without_verifier(ctx: ServerContext) -> None:
    code = await new_code(ctx, PLAIN_CLIENT, PLAIN_REDIRECT, verifier=None, scope="message.read")
    body = await redeem(ctx, code, PLAIN_CLIENT, redirect_uri=PLAIN_REDIRECT)
    assert body["scope"] == "message.read"


async def test_code_of_another_client_is_refused(ctx: ServerContext) -> None:
    code = await new_code(ctx, SPA_CLIENT, SPA_REDIRECT)
    with pytest.raises(OAuthError) as caught:
        await redeem(ctx, code, WEB_CLIENT, redirect_uri=SPA_REDIRECT, code_verifier=VERIFIER)
    assert caught.value.error == "invalid_grant"


async def test_expired_code_is_refused(ctx: ServerContext, clock: FakeClock) -> None:
    code = await new_code(ctx, WEB_CLIENT, WEB_REDIRECT)
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(OAuthError) as caught:
        await redeem(ctx, code, code_verifier=VERIFIER)
    assert caught.value.error == "invalid_grant"


async def test_unknown_code_and_missing_parameters(ctx: ServerContext) -> None:
    with pytest.raises(OAuthError) as unknown:
        await redeem(ctx, "not-a-code", code_verifier=VERIFIER)
    assert unknown.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as missing:
        await grant(ctx, as_client(ctx, WEB_CLIENT), grant_type="authorization_code", redirect_uri=WEB_REDIRECT)
    assert missing.value.error == "invalid_request"


async def test_public_client_redeems_with_pkce(ctx: ServerContext) -> None:
    code = await new_code(ctx, SPA_CLIENT, SPA_REDIRECT, scope="openid")
    response = await grant(
        ctx,
        as_client(ctx, SPA_CLIENT, "none"),
        grant_type="authorization_code",
        code=code,
        redirect_uri=SPA_REDIRECT,
        code_verifier=VERIFIER,
    )
    assert ctx.keys.verify(response.access_token).claims["aud"] == SPA_CLIENT  # no audiences: its own id
