"""Trust policies: validated at start with errors naming the key; conditions and mappings as documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tokensmith.config.exchange import TrustedIssuer
from tokensmith.config.federation import JWT_BEARER_GRANT, claim_value, glob_pattern
from tokensmith.config.loader import load_config
from tokensmith.errors import ConfigError, OAuthError, invalid_grant
from tokensmith.server.core.trusted_issuers import apply_trust_policies, within_ceiling

IDP = "https://token.actions.githubusercontent.com"


def trusted(*policies: dict[str, Any], **settings: Any) -> TrustedIssuer:
    return TrustedIssuer.model_validate({"issuer": IDP, "trust-policies": list(policies), **settings})


def write_config(tmp_path: Path, yaml_text: str) -> Path:
    path = tmp_path / "tokensmith.yaml"
    path.write_text(yaml_text)
    return path


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ({"name": "p", "conditions": {}}, "trust-policies.0.conditions"),
        ({"name": "p", "conditions": {"sub": "*"}}, "matches anything"),
        ({"name": "p", "conditions": {"sub": []}}, "at least one non-empty pattern"),
        ({"name": "p", "conditions": {"sub": "x"}, "subject": "repo:{repository"}, "trust-policies.0.subject"),
        ({"name": "p", "conditions": {"sub": "x"}, "subject": "repo:{}"}, "empty {} placeholder"),
        ({"name": "p", "conditions": {"sub": "x"}, "claims": {"sub": "{sub}"}}, "set by the server"),
        ({"name": "p", "conditions": {"sub": "x"}, "wrong-key": 1}, "trust-policies.0.wrong-key"),
    ],
)
def test_bad_policies_are_refused_at_start(tmp_path: Path, policy: dict[str, Any], named: str) -> None:
    config = {"trusted-issuers": [{"issuer": IDP, "trust-policies": [policy]}]}
    path = write_config(tmp_path, yaml.safe_dump(config))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert named in str(error.value)
    assert "trusted-issuers" in str(error.value)


def test_duplicate_policy_names_and_unknown_clients(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appear more than once"):
        trusted({"name": "a", "conditions": {"sub": "x"}}, {"name": "a", "conditions": {"sub": "y"}})
    path = write_config(
        tmp_path,
        f"""
trusted-issuers:
  - issuer: {IDP}
    trust-policies:
      - name: deploy
        conditions: {{sub: "repo:acme/*"}}
        client: nobody
""",
    )
    with pytest.raises(ConfigError, match=r"'deploy'.*'nobody'"):
        load_config(path)


def test_jwt_bearer_issuers_must_be_trusted(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        f"""
clients:
  deployer:
    registration:
      client-id: deployer
      client-authentication-methods: [none]
      authorization-grant-types: ["{JWT_BEARER_GRANT}"]
    jwt-bearer:
      issuers: ["https://elsewhere.example"]
""",
    )
    with pytest.raises(ConfigError, match=r"clients.deployer.jwt-bearer.issuers"):
        load_config(path)


def test_glob_patterns() -> None:
    assert glob_pattern("repo:acme/*:ref:refs/heads/main").fullmatch("repo:acme/api:ref:refs/heads/main")
    assert glob_pattern("repo:acme/*").fullmatch("repo:acme/a/b:c")  # `*` crosses `/` and `:`, as StringLike
    assert not glob_pattern("repo:acme/*").fullmatch("repo:acme-evil/api")
    assert glob_pattern("v?.*").fullmatch("v1.2")
    assert not glob_pattern("a.c").fullmatch("abc")  # only * and ? are special
    assert not glob_pattern("[ab]").fullmatch("a")


def test_claim_paths() -> None:
    claims = {"kubernetes.io": {"namespace": "payments"}, "https://example.com/roles": ["admin"]}
    assert claim_value(claims, "kubernetes.io/namespace") == "payments"
    assert claim_value(claims, "https://example.com/roles") == ["admin"]  # an exact top-level name wins
    assert claim_value(claims, "kubernetes.io/missing") is None


def test_first_matching_policy_decides_and_lists_match_elements() -> None:
    issuer = trusted(
        {"name": "web", "conditions": {"aud": "web-sts", "sub": "a"}, "subject": "web:{sub}"},
        {"name": "any-aud", "conditions": {"aud": ["api-sts", "other"]}, "scopes": ["x"]},
    )
    identity = apply_trust_policies(issuer, {"sub": "a", "aud": ["api-sts", "z"]}, client_id="c", refuse=invalid_grant)
    assert identity is not None
    assert identity.policy == "any-aud"
    assert identity.subject == "a"  # no `subject` template: the issuer's subject-claim
    assert within_ceiling(identity, ("x", "y"), None) == ("x",)
    with pytest.raises(OAuthError, match="does not allow scope y"):
        within_ceiling(identity, ("x", "y"), ("y",))


def test_numbers_and_booleans_match_as_text_and_a_mapped_claim_must_exist() -> None:
    issuer = trusted(
        {"name": "p", "conditions": {"repository_id": "654321", "ephemeral": "true"}, "subject": "id:{repository}"}
    )
    with pytest.raises(OAuthError, match="maps claim 'repository'"):
        apply_trust_policies(issuer, {"repository_id": 654321, "ephemeral": True}, client_id=None, refuse=invalid_grant)
    with pytest.raises(OAuthError, match=r"'p': claim 'repository_id', 'ephemeral' does not match"):
        apply_trust_policies(issuer, {"repository_id": {"x": 1}}, client_id=None, refuse=invalid_grant)


def test_issuer_without_policies_keeps_its_behaviour() -> None:
    assert apply_trust_policies(trusted(), {"sub": "a"}, client_id=None, refuse=invalid_grant) is None
