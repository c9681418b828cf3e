"""Subject and actor token validation (RFC 8693 2.1, 2.2.2): each bad token gets the error the RFC names."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from joserfc.jws import JWSRegistry
from tests.server.exchange.fakes import (
    ContextFactory,
    FakeClock,
    client,
    exchange_grant,
    exchange_request,
    fake_store,
    user_token,
)

from tokensmith import jose
from tokensmith.config.exchange import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    SAML2_TOKEN_TYPE,
)
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest
from tokensmith.server.core.subject_tokens import MAX_TOKEN_BYTES
from tokensmith.server.keys import open_private_key


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def refusal(ctx: ServerContext, request: TokenRequest) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(request, client(ctx), ctx)
    return caught.value


async def test_an_expired_subject_token_is_invalid_request(ctx: ServerContext, clock: FakeClock) -> None:
    subject = await user_token(ctx, ttl=timedelta(seconds=60))
    clock.advance(seconds=60 + 31)  # past exp and the 30 s clock skew
    error = await refusal(ctx, exchange_request(subject.token))
    assert (error.error, error.description) == ("invalid_request", "subject_token has expired")


async def test_a_token_expired_within_the_clock_skew_still_has_no_lifetime_to_give(
    ctx: ServerContext, clock: FakeClock
) -> None:
    subject = await user_token(ctx, ttl=timedelta(seconds=60))
    clock.advance(seconds=70)
    error = await refusal(ctx, exchange_request(subject.token))
    assert error.error == "invalid_request"
    assert "no lifetime left" in error.description


async def test_a_subject_token_not_valid_yet_is_invalid_request(ctx: ServerContext, clock: FakeClock) -> None:
    clock.advance(minutes=5)
    subject = await user_token(ctx)
    clock.advance(minutes=-5)
    error = await refusal(ctx, exchange_request(subject.token))
    assert error.error == "invalid_request"
    assert "not valid yet" in error.description


async def test_a_revoked_subject_token_is_invalid_request(ctx: ServerContext, clock: FakeClock) -> None:
    subject = await user_token(ctx)
    await fake_store(ctx).revoke_token_lineage(subject.jti, clock())
    error = await refusal(ctx, exchange_request(subject.token))
    assert (error.error, error.description) == ("invalid_request", "subject_token has been revoked")


async def test_a_tampered_signature_is_invalid_request(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    header, _, signature = subject.token.split(".")
    forged = b64({**subject.claims, "sub": "admin"})
    error = await refusal(ctx, exchange_request(f"{header}.{forged}.{signature}"))
    assert error.error == "invalid_request"
    assert "signature does not verify" in error.description


async def test_alg_none_is_never_accepted(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(subject.claims)}."
    error = await refusal(ctx, exchange_request(unsigned))
    assert error.error == "invalid_request"
    assert "not signed" in error.description


async def test_hs256_signed_with_our_public_key_is_refused(ctx: ServerContext) -> None:
    # The HS/RS confusion attack: the public key's bytes used as an HMAC secret.
    subject = await user_token(ctx)
    public_jwk = ctx.keys.jwks()["keys"][0]
    secret = OctKey.import_key(json.dumps(public_jwk).encode())
    header = {"alg": "HS256", "kid": public_jwk["kid"], "typ": "at+jwt"}
    forged = jwt.encode(header, dict(subject.claims), secret, algorithms=["HS256"])
    error = await refusal(ctx, exchange_request(forged))
    assert error.error == "invalid_request"
    assert "HS256" in error.description


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b", "a.b.c", f"{b64(b'[1]')}.{b64(b'{}')}.sig", "x.y.z.w.v", "..", "é.é.é"],
)
async def test_a_malformed_subject_token_is_invalid_request(ctx: ServerContext, token: str) -> None:
    error = await refusal(ctx, exchange_request(token))
    assert error.error == "invalid_request"
    assert error.description.startswith("subject_token")


async def test_a_subject_token_with_a_crit_header_is_refused_even_when_validly_signed(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    header = jose.parse(subject.token).header
    record = next(r for r in ctx.keys.records if r.kid == header["kid"])
    signing_input = f"{b64({**header, 'crit': ['kid']})}.{b64(dict(subject.claims))}"
    signature = JWSRegistry.algorithms[header["alg"]].sign(
        signing_input.encode(), open_private_key(record, ctx.keys.encryption_key)
    )
    error = await refusal(ctx, exchange_request(f"{signing_input}.{b64(signature)}"))
    assert error.error == "invalid_request"
    assert "'crit'" in error.description


async def test_an_encrypted_subject_token_is_refused_as_such(ctx: ServerContext) -> None:
    error = await refusal(ctx, exchange_request("e30.a.b.c.d"))
    assert (error.error, error.description) == (
        "invalid_request",
        "subject_token is an encrypted JWT (JWE); only signed JWTs are accepted",
    )


async def test_a_subject_token_is_parsed_once(ctx: ServerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    subject = await user_token(ctx)
    parsed: list[str] = []
    real_parse = jose.parse

    def counting_parse(token: str, *, strict_header: bool = True) -> jose.CompactJWS:
        parsed.append(token)
        return real_parse(token, strict_header=strict_header)

    monkeypatch.setattr(jose, "parse", counting_parse)
    response = await exchange_grant(exchange_request(subject.token), client(ctx), ctx)
    assert response.access_token
    assert parsed == [subject.token]  # the one parse is the one verified


async def test_a_deeply_nested_payload_is_invalid_request_not_a_crash(ctx: ServerContext) -> None:
    payload = b"[" * 5000 + b"]" * 5000  # fits under the size limit
    error = await refusal(ctx, exchange_request(f"{b64({'alg': 'ES256'})}.{b64(payload)}.c2ln"))
    assert error.error == "invalid_request"


async def test_an_oversized_subject_token_is_invalid_request(ctx: ServerContext) -> None:
    error = await refusal(ctx, exchange_request("a" * (MAX_TOKEN_BYTES + 1)))
    assert error.error == "invalid_request"
    assert "larger than" in error.description


@pytest.mark.parametrize("token_type", [SAML2_TOKEN_TYPE, "urn:example:custom", "access_token", REFRESH_TOKEN_TYPE])
async def test_an_unsupported_subject_token_type_is_invalid_request(ctx: ServerContext, token_type: str) -> None:
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, token_type))
    assert error.error == "invalid_request"  # RFC 8693 2.2.2
    assert "subject_token_type" in error.description


async def test_an_unsupported_actor_token_type_is_invalid_request(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"delegation": True})
    subject = await user_token(ctx)
    error = await refusal(
        ctx, exchange_request(subject.token, actor_token=subject.token, actor_token_type=SAML2_TOKEN_TYPE)
    )
    assert error.error == "invalid_request"
    assert "actor_token_type" in error.description


async def test_a_foreign_untrusted_issuer_is_invalid_request(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    header, _, signature = subject.token.split(".")
    foreign = f"{header}.{b64({**subject.claims, 'iss': 'https://evil.example'})}.{signature}"
    error = await refusal(ctx, exchange_request(foreign))
    assert error.error == "invalid_request"
    assert "not a trusted issuer" in error.description


async def test_our_id_token_is_accepted_as_id_token_from_the_client_it_was_issued_to(ctx: ServerContext) -> None:
    id_token = await ctx.tokens.issue_id_token(
        subject="baeldung", client_id="message-service", ttl=timedelta(minutes=5), extra_claims={"name": "B"}
    )
    response = await exchange_grant(exchange_request(id_token.token, ID_TOKEN_TYPE), client(ctx), ctx)
    claims = ctx.keys.verify(response.access_token).claims
    assert (claims["sub"], claims["name"], claims["aud"]) == ("baeldung", "B", "message-service")
    assert fake_store(ctx).tokens[claims["jti"]].parent_jti == id_token.jti


async def test_an_id_token_issued_to_another_client_is_refused(ctx: ServerContext) -> None:
    # OIDC Core 2: an ID token's audience is the client it was issued to; another client holding it (a leaked
    # or forwarded ID token) must not turn it into access tokens.
    id_token = await ctx.tokens.issue_id_token(
        subject="baeldung", client_id="messaging-client-oidc", ttl=timedelta(minutes=5)
    )
    error = await refusal(ctx, exchange_request(id_token.token, ID_TOKEN_TYPE))
    assert error.error == "invalid_request"
    assert "issued to another client" in error.description


async def test_a_policy_may_accept_id_tokens_of_named_clients(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"subject-token-audiences": ["messaging-client-oidc"]})
    id_token = await ctx.tokens.issue_id_token(
        subject="baeldung", client_id="messaging-client-oidc", ttl=timedelta(minutes=5)
    )
    response = await exchange_grant(exchange_request(id_token.token, ID_TOKEN_TYPE), client(ctx), ctx)
    assert ctx.keys.verify(response.access_token).claims["sub"] == "baeldung"


async def test_an_id_token_sent_as_an_access_token_is_invalid_request(ctx: ServerContext) -> None:
    id_token = await ctx.tokens.issue_id_token(subject="baeldung", client_id="x", ttl=timedelta(minutes=5))
    error = await refusal(ctx, exchange_request(id_token.token, JWT_TOKEN_TYPE))
    assert error.error == "invalid_request"
    assert ID_TOKEN_TYPE in error.description


async def test_an_access_token_sent_as_an_id_token_is_invalid_request(ctx: ServerContext) -> None:
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token, ID_TOKEN_TYPE))
    assert error.error == "invalid_request"
    assert "is an access token" in error.description


async def test_subject_token_audience_rule_refuses_other_audiences(context_factory: ContextFactory) -> None:
    ctx = await context_factory({"subject-token-audiences": ["user-service"]})
    accepted = await user_token(ctx, audience=("user-service",))
    await exchange_grant(exchange_request(accepted.token), client(ctx), ctx)
    refused = await user_token(ctx, audience=("billing",))
    error = await refusal(ctx, exchange_request(refused.token))
    assert error.error == "invalid_request"
    assert "audience" in error.description


async def test_a_client_may_be_denied_our_own_tokens(context_factory: ContextFactory) -> None:
    ctx = await context_factory(
        {"subject-token-issuers": ["https://idp.example"]}, **{"trusted-issuers": [{"issuer": "https://idp.example"}]}
    )
    subject = await user_token(ctx)
    error = await refusal(ctx, exchange_request(subject.token))
    assert error.error == "invalid_request"
    assert "issued by this server" in error.description


async def test_access_token_and_jwt_types_are_both_accepted_for_our_access_tokens(ctx: ServerContext) -> None:
    for token_type in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
        subject = await user_token(ctx)
        response = await exchange_grant(exchange_request(subject.token, token_type), client(ctx), ctx)
        assert response.access_token
