"""The Identity Assertion JWT Authorization Grant's claims and policy decisions (server/core/id_jag.py), without
keys, store or HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tokensmith.config.id_jag import IdJagAcceptance, IdJagIssuance
from tokensmith.errors import OAuthError
from tokensmith.server.core.id_jag import (
    IdJag,
    IdJagDecision,
    accepted_audience,
    accepted_scope,
    check_id_jag,
    decide_id_jag,
    id_jag_claims,
)

RAS = "https://chat.example"
IDP = "https://idp.example"
NOW = 1_800_000_000.0
HEADER = {"alg": "RS256", "typ": "oauth-id-jag+jwt"}


def grant_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": IDP,
        "sub": "U019488227",
        "aud": RAS,
        "client_id": "wiki",
        "jti": "9e43f81b64a33f20116179",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "scope": "chat.read chat.history",
        "resource": "https://api.chat.example/",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def check(header: dict[str, Any] = HEADER, **overrides: Any) -> IdJag:
    return check_id_jag(header, grant_claims(**overrides), issuer=RAS, client_id="wiki", now=NOW, leeway=30)


def refusal(header: dict[str, Any] = HEADER, **overrides: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        check(header, **overrides)
    return caught.value


def test_a_well_formed_grant_is_read() -> None:
    grant = check()
    assert (grant.issuer, grant.subject, grant.client_id) == (IDP, "U019488227", "wiki")
    assert grant.scope == ("chat.read", "chat.history")
    assert grant.resources == ("https://api.chat.example/",)
    assert grant.expires_at == datetime.fromtimestamp(NOW + 300, UTC)


@pytest.mark.parametrize("aud", [RAS, [RAS], RAS + "/"])
def test_aud_is_this_server_as_a_string_or_a_one_element_array(aud: Any) -> None:
    assert check(aud=aud).subject == "U019488227"


@pytest.mark.parametrize("typ", ["application/oauth-id-jag+jwt", "OAUTH-ID-JAG+JWT"])
def test_typ_may_carry_the_application_prefix_in_any_case(typ: str) -> None:
    assert check({"alg": "RS256", "typ": typ}).jti


@pytest.mark.parametrize(
    ("header", "overrides", "description"),
    [
        ({"alg": "RS256", "typ": "JWT"}, {}, "'typ' header must be 'oauth-id-jag+jwt'"),
        ({"alg": "RS256"}, {}, "'typ' header must be"),
        (HEADER, {"aud": "https://other.example"}, "'aud' must be"),
        (HEADER, {"aud": [RAS, "https://other.example"]}, "'aud' must be"),
        (HEADER, {"client_id": "intruder"}, "not for the authenticated client 'wiki'"),
        (HEADER, {"exp": int(NOW) - 60}, "ID-JAG has expired"),
        (HEADER, {"iat": None}, "no 'iat'"),
        (HEADER, {"sub": None}, "no 'sub'"),
        (HEADER, {"jti": None}, "'jti'"),
        (HEADER, {"jti": "x" * 256}, "'jti'"),
        (HEADER, {"iss": None}, "no 'iss'"),
        (HEADER, {"scope": ["chat.read"]}, "space-separated string"),
        (HEADER, {"resource": [1]}, "array of URIs"),
    ],
)
def test_each_broken_rule_is_invalid_grant(header: dict[str, Any], overrides: dict[str, Any], description: str) -> None:
    error = refusal(header, **overrides)
    assert error.error == "invalid_grant"
    assert description in (error.description or "")


ISSUANCE = IdJagIssuance.model_validate(
    {
        "audiences": {
            RAS: {
                "client-id": "f53f191f9311af35",
                "scopes": ["chat.read", "chat.history"],
                "default-scopes": ["chat.read"],
                "resources": ["https://api.chat.example/"],
            }
        }
    }
)


def test_the_policy_maps_the_audience_to_the_clients_id_there() -> None:
    decision = decide_id_jag(ISSUANCE, [RAS], ["https://api.chat.example/"], ("chat.history",), "error")
    assert decision == IdJagDecision(RAS, "f53f191f9311af35", ("https://api.chat.example/",), ("chat.history",))


def test_without_scope_the_default_scopes_are_granted() -> None:
    assert decide_id_jag(ISSUANCE, [RAS], [], None, "error").scope == ("chat.read",)


@pytest.mark.parametrize(
    ("audiences", "resources", "scope", "excess", "error", "description"),
    [
        ([], [], None, "error", "invalid_request", "audience is required"),
        ([RAS, IDP], [], None, "error", "invalid_target", "exactly one"),
        (["https://elsewhere.example"], [], None, "error", "invalid_target", "https://elsewhere.example"),
        ([RAS], ["https://api.other.example/"], None, "error", "invalid_target", "https://api.other.example/"),
        ([RAS], [], ("chat.admin",), "error", "invalid_scope", "chat.admin"),
        ([RAS], [], ("chat.admin",), "reduce", "invalid_scope", "none of the requested scopes"),
    ],
)
def test_requests_beyond_the_policy_are_refused(
    audiences: list[str], resources: list[str], scope: Any, excess: Any, error: str, description: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        decide_id_jag(ISSUANCE, audiences, resources, scope, excess)
    assert caught.value.error == error
    assert description in (caught.value.description or "")


def test_reduce_grants_the_allowed_part() -> None:
    assert decide_id_jag(ISSUANCE, [RAS], [], ("chat.admin", "chat.read"), "reduce").scope == ("chat.read",)


def test_the_grant_carries_the_draft_claims_and_the_authentication_claims_only() -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    claims = id_jag_claims(
        issuer=IDP,
        subject="U019488227",
        decision=IdJagDecision(RAS, "f53f191f9311af35", ("https://a.example/", "https://b.example/"), ("chat.read",)),
        jti="j1",
        issued_at=now,
        expires_at=now + timedelta(minutes=5),
        subject_claims={"auth_time": 1, "amr": ["pwd"], "nonce": "n", "at_hash": "h", "aud": "wiki", "email": "u@e"},
    )
    assert claims == {
        "iss": IDP,
        "sub": "U019488227",
        "aud": RAS,
        "client_id": "f53f191f9311af35",
        "jti": "j1",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "resource": ["https://a.example/", "https://b.example/"],
        "scope": "chat.read",
        "auth_time": 1,
        "amr": ["pwd"],
        "email": "u@e",
    }


ACCEPTANCE = IdJagAcceptance.model_validate({"scopes": ["chat.read"], "resources": ["https://api.chat.example/"]})


def test_the_access_token_gets_the_allowed_subset_of_the_grant() -> None:
    grant = check()
    assert accepted_scope(ACCEPTANCE, ("openid", "chat.history"), grant) == ("chat.read",)
    assert accepted_audience(ACCEPTANCE, "wiki", grant) == ("https://api.chat.example/",)


def test_without_policy_scopes_the_registered_scopes_bound_the_grant() -> None:
    open_policy = IdJagAcceptance.model_validate({})
    assert accepted_scope(open_policy, ("openid", "chat.history"), check()) == ("chat.history",)
    # No resource in the grant: the client's own id, as for other grants.
    assert accepted_audience(open_policy, "wiki", check(resource=None)) == ("wiki",)


def test_a_grant_with_nothing_the_policy_allows_is_refused() -> None:
    with pytest.raises(OAuthError) as caught:
        accepted_scope(ACCEPTANCE, (), check(scope="chat.admin"))
    assert caught.value.error == "invalid_scope"
    with pytest.raises(OAuthError) as caught:
        accepted_audience(ACCEPTANCE, "wiki", check(resource="https://api.other.example/"))
    assert caught.value.error == "invalid_target"
