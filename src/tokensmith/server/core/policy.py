"""The token-exchange policy decisions (RFC 8693): targets, scopes, token types, lifetime and delegation.

Pure functions over the client's configuration and validated tokens; each refusal is the ``OAuthError`` the
RFCs name for it. The policy model and its settings are described in ``docs/exchange-policy.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from tokensmith.config.exchange import (
    ACCESS_TOKEN_TYPE,
    ISSUABLE_TOKEN_TYPES,
    REFRESH_TOKEN_TYPE,
    AudiencePolicy,
    ExchangePolicy,
)
from tokensmith.config.server import ClientConfig
from tokensmith.errors import invalid_grant, invalid_request, invalid_scope, invalid_target, unauthorized_client
from tokensmith.server.core.dpop import bound_jkt, invalid_dpop_proof
from tokensmith.server.core.subject_tokens import ValidatedToken

OPENID = "openid"


def check_mode(policy: ExchangePolicy, *, delegation: bool) -> None:
    """Impersonation (no actor token) and delegation (actor token) are each allowed per client."""
    if delegation and not policy.delegation:
        # RFC 8693 2.2.2: an actor token "unacceptable based on policy" MUST be invalid_request.
        raise invalid_request("actor_token not accepted: this client may not use delegation")
    if not delegation and not policy.impersonation:
        # No token is at fault: the client is not authorized for this use of the grant (RFC 6749 5.2).
        raise unauthorized_client("this client may not use impersonation: send an actor_token (delegation)")


def issued_token_type(policy: ExchangePolicy, requested: str | None) -> str:
    """The token type to issue: ``requested_token_type`` when issuable and allowed, else access_token."""
    if requested is None:
        return ACCESS_TOKEN_TYPE
    if requested == REFRESH_TOKEN_TYPE:
        # Governed by its own setting: off by default, as in Spring Authorization Server.
        if not policy.issue_refresh_token:
            raise invalid_request("requested_token_type refresh_token is not allowed for this client")
        return requested
    if requested not in ISSUABLE_TOKEN_TYPES:
        raise invalid_request(
            f"requested_token_type {requested!r} cannot be issued; supported: {', '.join(ISSUABLE_TOKEN_TYPES)}"
        )
    if requested not in policy.requested_token_types:
        raise invalid_request(f"requested_token_type {requested} is not allowed for this client")
    return requested


def default_audience(policy: ExchangePolicy, client: ClientConfig) -> tuple[str, ...]:
    return policy.default_audience or (client.registration.client_id,)


def resolve_targets(
    policy: ExchangePolicy, client: ClientConfig, audiences: Sequence[str], resources: Sequence[str]
) -> tuple[str, ...]:
    """The issued token's ``aud``: the requested audiences and resources (each allowed by the policy), or the
    client's default audience when the request names none."""
    requested = tuple(dict.fromkeys([*audiences, *resources]))
    if not requested:
        return default_audience(policy, client)
    defaults = set(default_audience(policy, client))
    refused = [t for t in requested if t not in policy.audiences and t not in defaults]
    if refused:
        raise invalid_target(f"this client may not obtain tokens for {', '.join(refused)}")
    return requested


def _target_policy(policy: ExchangePolicy, client: ClientConfig, target: str) -> AudiencePolicy:
    configured = policy.audiences.get(target)
    if configured is not None:
        return configured
    # The default audience without its own entry: the client's registered scopes (the article's behaviour).
    return _registered_scopes_policy(client.registration.scopes)


@lru_cache(maxsize=1024)
def _registered_scopes_policy(registered: tuple[str, ...]) -> AudiencePolicy:
    # Built once per distinct scope set rather than per exchange: a pydantic model costs microseconds to validate.
    # `openid` asks for an ID token at the authorization endpoint; it means nothing to a resource server.
    return AudiencePolicy(scopes=tuple(s for s in registered if s != OPENID))


def _intersect(groups: Sequence[Sequence[str]]) -> tuple[str, ...]:
    # A token for several audiences carries one scope: it may only hold what every one of them allows.
    first, *rest = groups
    if not rest:  # one target, the usual case
        return tuple(first)
    return tuple(s for s in first if all(s in group for group in rest))


def allowed_scopes(policy: ExchangePolicy, client: ClientConfig, targets: Sequence[str]) -> tuple[str, ...]:
    return _intersect([_target_policy(policy, client, t).allowed_scopes for t in targets])


def default_scopes(policy: ExchangePolicy, client: ClientConfig, targets: Sequence[str]) -> tuple[str, ...]:
    groups = []
    for target in targets:
        target_policy = _target_policy(policy, client, target)
        groups.append(target_policy.default_scopes or target_policy.allowed_scopes)
    return _intersect(groups)


def backed_by_subject(policy: ExchangePolicy, scope: str, subject_scopes: Sequence[str]) -> bool:
    """Whether the subject token backs ``scope`` under the policy's ``scope-backing``."""
    if policy.scope_backing == "none" or scope in subject_scopes:
        return True
    if policy.scope_backing == "mapping":
        return any(scope in policy.scope_mappings.get(held, ()) for held in subject_scopes)
    return False


def decide_scopes(
    policy: ExchangePolicy,
    client: ClientConfig,
    targets: Sequence[str],
    requested: Sequence[str] | None,
    subject_scopes: Sequence[str],
) -> tuple[str, ...]:
    """granted = requested (or the targets' default scopes) ∩ allowed for this client and these targets,
    each backed by the subject token as ``scope-backing`` demands."""
    allowed = allowed_scopes(policy, client, targets)
    if requested is None:
        return tuple(
            s
            for s in default_scopes(policy, client, targets)
            if s in allowed and backed_by_subject(policy, s, subject_scopes)
        )
    not_allowed = [s for s in requested if s not in allowed]
    not_backed = [s for s in requested if s in allowed and not backed_by_subject(policy, s, subject_scopes)]
    if policy.excess_scope == "error" and (not_allowed or not_backed):
        problems = []
        if not_allowed:
            problems.append(f"not allowed for this client at {', '.join(targets)}: {' '.join(not_allowed)}")
        if not_backed:
            problems.append(f"not backed by the subject token's scope: {' '.join(not_backed)}")
        raise invalid_scope("requested scope " + "; ".join(problems))
    granted = tuple(s for s in requested if s in allowed and s not in not_backed)
    if requested and not granted:
        raise invalid_scope(f"none of the requested scopes can be granted for {', '.join(targets)}")
    return granted


def token_lifetime(
    policy: ExchangePolicy, client: ClientConfig, bounds: Sequence[ValidatedToken]
) -> tuple[timedelta, datetime | None]:
    """The issued token's time to live, and the instant it may not outlive (the subject and actor tokens'
    expiry) unless ``may-outlive-subject-token``."""
    ttl = policy.token_time_to_live or client.token.access_token_time_to_live
    if policy.may_outlive_subject_token:
        return ttl, None
    return ttl, bounds[0].expires_at if len(bounds) == 1 else min(token.expires_at for token in bounds)


def chain_depth(act: Mapping[str, Any] | None) -> int:
    """How many actors an `act` claim names (its nesting depth), counted without recursion."""
    depth = 0
    node: Any = act
    while isinstance(node, Mapping):
        depth += 1
        node = node.get("act")
    return depth


def check_may_act(subject: ValidatedToken, actor: ValidatedToken, our_issuer: str) -> None:
    """RFC 8693 4.4: when the subject token names who may act for it, the actor must be that party."""
    may_act = subject.may_act
    if may_act is None:
        return
    if not isinstance(may_act, Mapping) or not isinstance(may_act.get("sub"), str):
        raise invalid_grant("the subject_token's may_act claim is malformed")
    # The party is named in the context of `iss`, by default the subject token's issuer.
    named_sub, named_iss = may_act["sub"], may_act.get("iss", subject.issuer)
    if named_sub == actor.issuer_subject and named_iss == actor.issuer:
        return
    if named_sub == actor.subject and named_iss == our_issuer:
        return
    raise invalid_grant(f"the actor {actor.issuer_subject!r} is not the party the subject_token's may_act allows")


def build_act(policy: ExchangePolicy, subject: ValidatedToken, actor: ValidatedToken | None) -> dict[str, Any] | None:
    """The issued token's `act`: the current actor, with the subject token's `act` nested as the prior chain
    (RFC 8693 4.1). Impersonation keeps the subject token's chain unchanged."""
    prior = subject.act
    if actor is None:
        act = dict(prior) if prior is not None else None
    else:
        act = {"sub": actor.issuer_subject, "iss": actor.issuer}
        if prior is not None:
            act["act"] = dict(prior)
    depth = chain_depth(act)
    if depth > policy.max_delegation_depth:
        # The subject token's chain is unacceptable by policy: RFC 8693 2.2.2 says invalid_request.
        raise invalid_request(
            f"delegation chain too deep: {depth} actors, this client allows at most {policy.max_delegation_depth}"
        )
    return act


def exchange_binding(
    policy: ExchangePolicy, subject: ValidatedToken, actor: ValidatedToken | None, proof_jkt: str | None
) -> str | None:
    """The DPoP key the exchanged token is bound to: the key of the request's proof, when it sent one (None: a
    bearer token). Raises invalid_dpop_proof when a bound subject or actor token is presented without the
    possession the policy asks for (docs/exchange-policy.md, "DPoP")."""
    if actor is not None:
        actor_jkt = bound_jkt(actor.claims)
        if actor_jkt is not None and actor_jkt != proof_jkt:
            raise invalid_dpop_proof("the actor_token is DPoP-bound: send a DPoP proof by its key")
    subject_jkt = bound_jkt(subject.claims)
    if subject_jkt is None or subject_jkt == proof_jkt:
        return proof_jkt
    holder = subject.claims.get("client_id", subject.claims.get("azp"))
    if holder not in policy.dpop.bound_subject_token_clients:
        raise invalid_dpop_proof(
            "the subject_token is DPoP-bound: send a DPoP proof by its key (the policy does not let this client "
            "present it with another key)"
        )
    if proof_jkt is None and not policy.dpop.allow_bearer_from_bound:
        raise invalid_dpop_proof("the subject_token is DPoP-bound: send a DPoP proof by this client's key")
    return proof_jkt
