"""Workload identity federation: the trust policies of a trusted issuer, and who may use the JWT bearer grant.

A trust policy says which of an external issuer's tokens are accepted (``conditions`` on their claims, all of
which must hold) and what the issued token then says (``subject``, ``client``, ``scopes``), as the conditions of
AWS ``AssumeRoleWithWebIdentity`` and the attribute conditions and mappings of Google's workload identity pools do.
The model, with worked examples, is in ``docs/workload-federation.md``.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from tokensmith.config.types import KEBAB, Duration

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# A `{claim}` placeholder in a mapping template; a claim path names nested claims with "/"
# (`{kubernetes.io/namespace}`).
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def claim_value(claims: object, path: str) -> object:
    """The claim at ``path``: the top-level claim of that exact name, else the nested claim its ``/``-separated
    parts lead to (``kubernetes.io/serviceaccount/name``); None when there is none."""
    if not isinstance(claims, dict):
        return None
    if path in claims:
        return claims[path]
    node: object = claims
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters (``/`` and ``:`` included) and ``?`` any one character, as in AWS's
    ``StringLike``; everything else matches itself."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _one_or_many(value: object) -> object:
    return (value,) if isinstance(value, str) else value


Patterns = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]


def template_claims(template: str) -> list[str]:
    """The claim paths a mapping template reads."""
    return PLACEHOLDER.findall(template)


def _check_template(template: str) -> str:
    if not template:
        raise ValueError("must not be empty")
    names = template_claims(template)
    if any(not name for name in names):
        raise ValueError(f"{template!r} has an empty {{}} placeholder; write {{claim}}")
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        raise ValueError(f"{template!r} has an unbalanced brace; placeholders are written {{claim}}")
    return template


class TrustPolicy(BaseModel):
    """One trust policy of a trusted issuer (``trusted-issuers[].trust-policies[]``)."""

    model_config = KEBAB

    # Named in refusals and in the audit trail.
    name: str = Field(min_length=1, max_length=100)
    # Claim (or claim path) -> patterns; the claim must match one of its patterns, and every condition must hold.
    # A claim that is a list (`aud`) matches when one of its elements matches.
    conditions: dict[str, Patterns] = Field(min_length=1)
    # The issued token's `sub`; None: the issuer's `subject-prefix` + `subject-claim`.
    subject: str | None = None
    # The client this policy serves: requests from any other client do not match it. None: any client the
    # issuer is open to.
    client: str | None = None
    # The scope ceiling: the issued token carries at most these (all of them when the request names none).
    # None: the client's own rules alone decide.
    scopes: tuple[str, ...] | None = None
    # Claims of the issued token, each from a template (`repository: "{repository}"`).
    claims: dict[str, str] = Field(default_factory=dict)
    # Lifetime of tokens issued under this policy by the JWT bearer grant (capped by the assertion's `exp`);
    # None: the client's access-token-time-to-live.
    token_time_to_live: Duration | None = None

    @field_validator("conditions")
    @classmethod
    def _patterns(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for claim, patterns in value.items():
            if not claim:
                raise ValueError("a condition needs a claim name")
            if not patterns or any(not p for p in patterns):
                raise ValueError(f"condition on {claim!r} needs at least one non-empty pattern")
            if patterns == ("*",):
                raise ValueError(f"condition on {claim!r} matches anything ('*'); name what it must be")
        return value

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value)

    @field_validator("claims")
    @classmethod
    def _claim_templates(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(set(value) & RESERVED_CLAIMS)
        if reserved:
            raise ValueError(f"claim(s) {reserved} are set by the server and cannot be mapped")
        for template in value.values():
            _check_template(template)
        return value

    @cached_property
    def matchers(self) -> dict[str, tuple[re.Pattern[str], ...]]:
        """The conditions' patterns, compiled once (the model is frozen)."""
        return {claim: tuple(glob_pattern(p) for p in patterns) for claim, patterns in self.conditions.items()}


# Claims a trust policy's `claims` mapping may not set: they describe the token, not the workload.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "azp", "scope", "scp", "act", "cnf"}
)


class JwtBearerPolicy(BaseModel):
    """Who a client may present JWT bearer assertions from (``clients.<name>.jwt-bearer``, RFC 7523 2.1)."""

    model_config = KEBAB

    # The `issuer` URLs of entries under `trusted-issuers` whose assertions this client may present.
    issuers: tuple[str, ...] = ()
    # RFC 7523 3.1 makes client authentication optional: a public client (`none`) may use the grant only when
    # this is true, the assertion then being its only credential.
    allow_unauthenticated: bool = False


__all__ = [
    "JWT_BEARER_GRANT",
    "RESERVED_CLAIMS",
    "JwtBearerPolicy",
    "TrustPolicy",
    "claim_value",
    "glob_pattern",
    "template_claims",
]
