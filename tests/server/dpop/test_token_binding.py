"""DPoP at the token endpoint's core (RFC 9449 5): bound tokens, bound refresh tokens and codes, nonces, replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey
from tests.server.configs import SERVICE_CLIENT, SPA_CLIENT, SPA_REDIRECT
from tests.server.conftest import FakeClock
from tests.server.protocol import VERIFIER, as_client, form, new_code

from tokensmith import jose
from tokensmith.config.exchange import ExchangePolicy
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.dpop import DPoPVerifier, replay_key
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenResponse
from tokensmith.server.core.introspection import introspect
from tokensmith.server.core.policy import exchange_binding
from tokensmith.server.core.subject_tokens import ValidatedToken

KEY = ECKey.generate_key("P-256")
OTHER = ECKey.generate_key("P-256")


def proof(ctx: ServerContext, key: ECKey = KEY, **claims: Any) -> str:
    now = int(ctx.clock().timestamp())
    return jose.sign_proof(key, alg="ES256", method="POST", uri=f"{ctx.issuer}/oauth2/token", iat=now, **claims)


async def token(ctx: ServerContext, client: AuthenticatedClient, proofs: list[str], **params: Any) -> TokenResponse:
    """The token endpoint's order: the proof is checked, then the grant runs with it."""
    checked = await ctx.dpop.token_request_proof(proofs, client.config, ctx.config)
    request = form(**params)
    if checked is not None:
        request = type(request)(params=request.params, dpop=checked)
    return await ctx.grants[params["grant_type"]](request, client, ctx)


async def test_client_credentials_token_is_bound_and_introspects_with_cnf(ctx: ServerContext) -> None:
    response = await token(ctx, as_client(ctx, SERVICE_CLIENT), [proof(ctx)], grant_type="client_credentials")
    assert response.token_type == "DPoP"
    claims = ctx.keys.verify(response.access_token).claims
    assert claims["cnf"] == {"jkt": KEY.thumbprint()}
    body = await introspect(ctx, response.access_token, SERVICE_CLIENT)
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": KEY.thumbprint()}


async def test_without_a_proof_the_token_is_bearer(ctx: ServerContext) -> None:
    response = await token(ctx, as_client(ctx, SERVICE_CLIENT), [], grant_type="client_credentials")
    assert response.token_type == "Bearer"
    assert "cnf" not in ctx.keys.verify(response.access_token).claims


async def test_replayed_and_duplicate_proofs_are_refused(ctx: ServerContext) -> None:
    client = as_client(ctx, SERVICE_CLIENT)
    once = proof(ctx)
    await token(ctx, client, [once], grant_type="client_credentials")
    with pytest.raises(OAuthError) as caught:
        await token(ctx, client, [once], grant_type="client_credentials")
    assert (caught.value.error, caught.value.status_code) == ("invalid_dpop_proof", 400)
    assert "replayed" in caught.value.description
    with pytest.raises(OAuthError) as caught:
        await token(ctx, client, [proof(ctx), proof(ctx)], grant_type="client_credentials")
    assert caught.value.error == "invalid_dpop_proof"


def test_replay_keys_follow_the_proofs_iat_and_tell_proofs_apart() -> None:
    def checked(key: ECKey = KEY, **claims: Any) -> jose.DPoPProof:
        signed = jose.sign_proof(key, alg="ES256", method="POST", uri="https://as.example/token", **claims)
        return jose.check_proof(
            signed,
            method="POST",
            uri="https://as.example/token",
            algorithms=["ES256"],
            now=2_000_000_000,
            max_age=60,
            clock_skew=5,
        )

    first = checked(iat=2_000_000_000, jti="a")
    assert replay_key(first) == replay_key(checked(iat=2_000_000_000, jti="a"))  # the same proof, replayed
    assert len(replay_key(first)) == 64  # the store's digest column
    assert replay_key(checked(iat=2_000_000_000, jti="b")) != replay_key(first)
    assert replay_key(checked(OTHER, iat=2_000_000_000, jti="a")) != replay_key(first)
    # A later proof's key sorts after an earlier one's, whatever its jti: new keys land at the index's end.
    later = [replay_key(checked(iat=2_000_000_000 + n, jti=f"{9 - n}")) for n in range(1, 4)]
    assert sorted([replay_key(first), *later]) == [replay_key(first), *later]


async def test_stale_proof_is_refused(ctx: ServerContext, clock: FakeClock) -> None:
    old = proof(ctx)
    clock.advance(seconds=61)
    with pytest.raises(OAuthError) as caught:
        await token(ctx, as_client(ctx, SERVICE_CLIENT), [old], grant_type="client_credentials")
    assert caught.value.error == "invalid_dpop_proof"


async def test_a_client_required_to_use_dpop_must_send_a_proof(ctx: ServerContext) -> None:
    client = as_client(ctx, SERVICE_CLIENT)
    required = AuthenticatedClient(config=client.config.model_copy(update={"require_dpop": True}), method="none")
    with pytest.raises(OAuthError) as caught:
        await token(ctx, required, [], grant_type="client_credentials")
    assert caught.value.error == "invalid_dpop_proof"
    assert ctx.config.requires_dpop(client.config) is False


async def test_public_clients_refresh_tokens_are_bound_to_its_key(ctx: ServerContext) -> None:
    spa = as_client(ctx, SPA_CLIENT, "none")
    code = await new_code(ctx, SPA_CLIENT, SPA_REDIRECT, scope="openid")
    first = await token(
        ctx,
        spa,
        [proof(ctx)],
        grant_type="authorization_code",
        code=code,
        redirect_uri=SPA_REDIRECT,
        code_verifier=VERIFIER,
    )
    assert first.token_type == "DPoP"
    assert first.refresh_token is not None
    for proofs in ([], [proof(ctx, OTHER)]):
        with pytest.raises(OAuthError) as caught:
            await token(ctx, spa, proofs, grant_type="refresh_token", refresh_token=first.refresh_token)
        assert caught.value.error == "invalid_dpop_proof"
    second = await token(ctx, spa, [proof(ctx)], grant_type="refresh_token", refresh_token=first.refresh_token)
    assert second.token_type == "DPoP"
    assert ctx.keys.verify(second.access_token).claims["cnf"]["jkt"] == KEY.thumbprint()
    assert second.refresh_token is not None
    with pytest.raises(OAuthError):  # the rotated refresh token is bound as well
        await token(ctx, spa, [], grant_type="refresh_token", refresh_token=second.refresh_token)


async def test_dpop_jkt_binds_the_authorization_code(ctx: ServerContext) -> None:
    spa = as_client(ctx, SPA_CLIENT, "none")
    code = await new_code(ctx, SPA_CLIENT, SPA_REDIRECT, scope="openid", dpop_jkt=KEY.thumbprint())
    with pytest.raises(OAuthError) as caught:
        await token(
            ctx,
            spa,
            [proof(ctx, OTHER)],
            grant_type="authorization_code",
            code=code,
            redirect_uri=SPA_REDIRECT,
            code_verifier=VERIFIER,
        )
    assert caught.value.error == "invalid_dpop_proof"


async def test_nonces_when_required(ctx: ServerContext, clock: FakeClock) -> None:
    config = ctx.config.model_copy(update={"dpop": ctx.config.dpop.model_copy(update={"nonce_required": True})})
    nonces = jose.DPoPNonceSource(b"s" * 32, 300, lambda: clock().timestamp())
    verifier = DPoPVerifier(config, ctx.store, clock, nonces=nonces)
    client = as_client(ctx, SERVICE_CLIENT).config
    with pytest.raises(OAuthError) as caught:
        await verifier.token_request_proof([proof(ctx)], client, config)
    assert (caught.value.error, caught.value.status_code) == ("use_dpop_nonce", 400)
    nonce = caught.value.headers["DPoP-Nonce"]
    assert (await verifier.token_request_proof([proof(ctx, nonce=nonce)], client, config)) is not None
    clock.advance(minutes=5)
    assert (await verifier.token_request_proof([proof(ctx, nonce=nonce)], client, config)) is not None
    clock.advance(minutes=5)
    with pytest.raises(OAuthError) as caught:
        await verifier.token_request_proof([proof(ctx, nonce=nonce)], client, config)
    assert caught.value.error == "use_dpop_nonce"
    # Another replica with the same secret accepts this one's nonces.
    twin = jose.DPoPNonceSource(b"s" * 32, 300, lambda: clock().timestamp())
    assert twin.accepts(nonces.current())
    assert not jose.DPoPNonceSource(b"t" * 32, 300, lambda: clock().timestamp()).accepts(nonces.current())


def validated(claims: dict[str, Any]) -> ValidatedToken:
    return ValidatedToken(
        token_type="urn:ietf:params:oauth:token-type:access_token",
        issuer="http://localhost:9001",
        subject="alice",
        issuer_subject="alice",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        scopes=(),
        is_local=True,
        jti="j",
        claims=claims,
    )


def test_exchange_binding_rules() -> None:
    bound = validated({"client_id": "client-app", "cnf": {"jkt": "holder"}})
    plain = validated({"client_id": "client-app"})
    default = ExchangePolicy()
    # A bearer subject: the exchanged token is bound to the request's proof key, if any.
    assert exchange_binding(default, plain, None, None) is None
    assert exchange_binding(default, plain, None, "mine") == "mine"
    # A bound subject: a proof by its key keeps it bound.
    assert exchange_binding(default, bound, None, "holder") == "holder"
    for proof_jkt in (None, "mine"):
        with pytest.raises(OAuthError) as caught:
            exchange_binding(default, bound, None, proof_jkt)
        assert caught.value.error == "invalid_dpop_proof"
    # The policy may name whose bound tokens this client presents with its own proof; the result is bound to it.
    named = ExchangePolicy.model_validate({"dpop": {"bound-subject-token-clients": ["client-app"]}})
    assert exchange_binding(named, bound, None, "mine") == "mine"
    with pytest.raises(OAuthError):
        exchange_binding(named, bound, None, None)
    bearer = ExchangePolicy.model_validate(
        {"dpop": {"bound-subject-token-clients": ["client-app"], "allow-bearer-from-bound": True}}
    )
    assert exchange_binding(bearer, bound, None, None) is None
    # A bound actor token needs the request's proof to be by its key.
    actor = validated({"client_id": "svc", "cnf": {"jkt": "svc-key"}})
    assert exchange_binding(default, plain, actor, "svc-key") == "svc-key"
    with pytest.raises(OAuthError):
        exchange_binding(default, plain, actor, "mine")
