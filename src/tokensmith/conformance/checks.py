"""The RFC 8693 checks: each a small function that sends what it needs and judges the answer against the RFC.

Outcomes are graded by what the RFC says: FAIL for a MUST broken (of RFC 8693, or of RFC 6749 which it builds on),
WARN for a SHOULD or RECOMMENDED not followed (or a behaviour the RFC leaves to policy that a user should know
about), N/A with the reason when the server or the inputs do not allow the check. Each check names its section;
:data:`CHECKS` lists them in the order they run (the revocation check late, the error-format check last: it judges
every error the others saw).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from tokensmith.conformance.peer import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from tokensmith.conformance.run import (
    FAIL,
    INVALID_REQUEST_RULE,
    PASS,
    UNKNOWN_TOKEN_TYPE,
    WARN,
    Check,
    NotApplicable,
    Run,
    Verdict,
)
from tokensmith.conformance.tokens import claims_of, foreign_token, tampered, unsigned

# ---- metadata -------------------------------------------------------------------------------------------------


def metadata(run: Run) -> Verdict:
    grants = run.peer.metadata.get("grant_types_supported")
    if isinstance(grants, list) and TOKEN_EXCHANGE in grants:
        return PASS, "grant_types_supported lists the token-exchange grant"
    return WARN, "grant_types_supported does not list the token-exchange grant (clients that read metadata skip it)"


# ---- request parsing (2.1) --------------------------------------------------------------------------------------


def missing_subject_token(run: Run) -> Verdict:
    answer = run.exchange({"subject_token_type": run.subject_type})
    return run.refused_with(answer, ("invalid_request",), rule="RFC 8693 2.1: subject_token is REQUIRED")


def missing_subject_token_type(run: Run) -> Verdict:
    answer = run.exchange({"subject_token": run.subject or "conformance-not-a-token"})
    return run.refused_with(answer, ("invalid_request",), rule="RFC 8693 2.1: subject_token_type is REQUIRED")


def unknown_subject_token_type(run: Run) -> Verdict:
    answer = run.exchange(run.form(run.subject or "conformance-not-a-token", subject_token_type=UNKNOWN_TOKEN_TYPE))
    return run.refused_with(
        answer,
        ("invalid_request",),
        rule=f"{INVALID_REQUEST_RULE} (unsupported_token_type is RFC 7009's revocation error, not RFC 8693's)",
    )


def actor_token_without_type(run: Run) -> Verdict:
    subject = run.subject or "conformance-not-a-token"
    answer = run.exchange(run.form(subject, actor_token=run.actor or subject))
    return run.refused_with(
        answer, ("invalid_request",), rule="RFC 8693 2.1: actor_token_type is REQUIRED with actor_token"
    )


def actor_type_without_token(run: Run) -> Verdict:
    answer = run.exchange(run.form(run.subject or "conformance-not-a-token", actor_token_type=ACCESS_TOKEN_TYPE))
    return run.refused_with(
        answer, ("invalid_request",), rule="RFC 8693 2.1: actor_token_type MUST NOT be sent without actor_token"
    )


def repeated_parameter(run: Run) -> Verdict:
    answer = run.exchange(run.form(subject_token_type=[run.subject_type, run.subject_type]))
    return run.refused_with(
        answer, ("invalid_request",), rule="RFC 6749 3.2: parameters MUST NOT be included more than once"
    )


# ---- the response (2.2.1) -------------------------------------------------------------------------------------


def successful_exchange(run: Run) -> Verdict:
    run.need_subject()
    answer = run.baseline()
    if not answer.granted:
        if run.subject_obtained:
            raise NotApplicable(
                f"the server refused to exchange the client-credentials token ({run.describe(answer)}); "
                "pass a subject token this client may exchange with --subject-token"
            )
        return FAIL, f"the plain exchange was refused: {run.describe(answer)}"
    assert answer.body is not None
    issued, token_type = answer.body.get("issued_token_type"), answer.body.get("token_type")
    problems = []
    if not isinstance(issued, str):
        problems.append("issued_token_type is missing (REQUIRED)")
    elif not urlsplit(issued).scheme:
        problems.append(f"issued_token_type {issued!r} is not a URI (RFC 8693 3)")
    if not isinstance(token_type, str) or not token_type:
        problems.append("token_type is missing (REQUIRED; N_A when the token is not an access token)")
    if problems:
        return FAIL, "; ".join(problems)
    return PASS, f"access_token, issued_token_type {issued}, token_type {token_type}"


def expires_in(run: Run) -> Verdict:
    answer = run.granted_baseline()
    assert answer.body is not None
    value = answer.body.get("expires_in")
    if value is None:
        return WARN, "no expires_in (RECOMMENDED; clients must guess the lifetime, Spring's assume 1 s)"
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return FAIL, f"expires_in {value!r} is not a positive number of seconds (RFC 6749 5.1)"
    return PASS, f"expires_in {value}"


def no_store(run: Run) -> Verdict:
    answer = run.granted_baseline()
    directives = {d.strip().lower() for d in answer.headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        return PASS, "Cache-Control: no-store"
    return FAIL, f"Cache-Control is {answer.headers.get('cache-control')!r}: a response with a token MUST say no-store"


# ---- token types (2.1, 3) ------------------------------------------------------------------------------------


def _requested_type(run: Run, requested: str) -> Verdict:
    run.granted_baseline()
    answer = run.exchange(run.form(requested_token_type=requested))
    if not answer.granted:
        return run.refused_with(
            answer,
            ("invalid_request",),
            rule="a token type the server will not issue is an invalid request",
            should=True,
        )
    assert answer.body is not None
    issued = answer.body.get("issued_token_type")
    if issued != requested:
        return WARN, f"requested {requested}, issued {issued}"
    if requested == JWT_TOKEN_TYPE and answer.access_token.count(".") != 2:
        return FAIL, "issued_token_type says jwt, but the token is not a compact JWT (RFC 8693 3)"
    return PASS, f"issued {issued}"


def requested_access_token(run: Run) -> Verdict:
    return _requested_type(run, ACCESS_TOKEN_TYPE)


def requested_jwt(run: Run) -> Verdict:
    return _requested_type(run, JWT_TOKEN_TYPE)


def requested_unknown_type(run: Run) -> Verdict:
    run.granted_baseline()
    answer = run.exchange(run.form(requested_token_type=UNKNOWN_TOKEN_TYPE))
    if answer.granted:
        assert answer.body is not None
        return WARN, f"asked for a token type nobody defines, issued {answer.body.get('issued_token_type')}"
    return run.refused_with(
        answer, ("invalid_request",), rule="a token type the server cannot issue is an invalid request", should=True
    )


# ---- targets and scope ----------------------------------------------------------------------------------------


def unknown_audience(run: Run) -> Verdict:
    run.granted_baseline()
    audience = run.made_up("audience")
    answer = run.exchange({**run.form(), "audience": audience})
    if answer.granted:
        claims = run.claims(answer.access_token)
        aud = claims.get("aud") if claims is not None else None
        named = aud == audience or (isinstance(aud, list) and audience in aud)
        if named:
            return FAIL, f"issued a token for the audience {audience!r}, which the runner made up"
        return WARN, f"ignored the audience {audience!r} and issued a token (aud {aud!r}); SHOULD be invalid_target"
    return run.refused_with(
        answer, ("invalid_target",), rule="RFC 8693 2.2.2: an unacceptable target SHOULD be invalid_target", should=True
    )


def _bad_resource(run: Run, resource: str, rule: str) -> Verdict:
    run.granted_baseline()
    answer = run.exchange(run.form(resource=resource))
    return run.refused_with(answer, ("invalid_target", "invalid_request"), rule=rule)


def relative_resource(run: Run) -> Verdict:
    return _bad_resource(run, "conformance/api", "RFC 8693 2.1: resource MUST be an absolute URI")


def resource_with_fragment(run: Run) -> Verdict:
    return _bad_resource(
        run, "https://conformance.invalid/api#part", "RFC 8693 2.1: resource MUST NOT include a fragment"
    )


def scope_escalation(run: Run) -> Verdict:
    run.granted_baseline()
    extra = run.target.escalation_scope or run.made_up("scope")
    held = run.subject_scopes()
    if held is not None and extra in held:
        raise NotApplicable(f"the subject token already holds {extra!r}")
    answer = run.exchange(run.form(scope=extra))
    if not answer.granted:
        return run.refused_with(
            answer,
            ("invalid_scope",),
            rule="RFC 6749 5.2: a scope that cannot be granted is invalid_scope",
            should=True,
        )
    assert answer.body is not None
    granted = run.granted_scopes(answer)
    if granted is None:
        raise NotApplicable("a token was issued, but its scope cannot be read (opaque, no introspection)")
    if extra in granted:
        return WARN, (
            f"granted {extra!r}, which the subject token does not hold: the client's registration, not the subject, "
            "decides the scope (RFC 8693 5: scope is what restricts delegated rights)"
        )
    if not isinstance(answer.body.get("scope"), str):
        return FAIL, "narrowed the requested scope without a scope in the response (RFC 8693 2.2.1: REQUIRED then)"
    return PASS, f"narrowed to {' '.join(sorted(granted)) or 'no scope'}, said in the response's scope"


def no_escalation(run: Run) -> Verdict:
    answer = run.granted_baseline()
    held = run.subject_scopes()
    if held is None:
        raise NotApplicable("the subject token's scope cannot be read (opaque, no introspection)")
    granted = run.granted_scopes(answer)
    if granted is None:
        raise NotApplicable("the issued token's scope cannot be read (opaque, no introspection)")
    beyond = sorted(granted - held)
    if beyond:
        return WARN, (
            f"issued {' '.join(beyond)}, which the subject token does not hold (subject: "
            f"{' '.join(sorted(held)) or 'no scope'}); RFC 8693 5: scope is what restricts delegated rights"
        )
    return PASS, f"issued {' '.join(sorted(granted)) or 'no scope'}, within the subject's {' '.join(sorted(held))}"


# ---- delegation (4.1, 4.4) ------------------------------------------------------------------------------------


def delegation_act(run: Run) -> Verdict:
    run.granted_baseline()
    actor = run.need_actor()
    answer = run.exchange(run.form(actor_token=actor, actor_token_type=run.actor_type))
    if not answer.granted:
        if answer.error is None:
            return FAIL, run.describe(answer)
        raise NotApplicable(f"the server refused delegation for this client ({run.describe(answer)})")
    issued = run.claims(answer.access_token)
    if issued is None:
        raise NotApplicable("the issued token's claims cannot be read (opaque, no introspection)")
    act = issued.get("act")
    if not isinstance(act, dict):
        return WARN, "a token was issued for a delegation request without an act claim: it reads as impersonation"
    actor_claims = run.claims(actor)
    expected = actor_claims.get("sub") if actor_claims is not None else None
    if not isinstance(act.get("sub"), str):
        return FAIL, "act has no sub (RFC 8693 4.1: act names the actor by sub)"
    if expected is not None and act["sub"] != expected:
        return FAIL, f"act.sub is {act['sub']!r}, the actor token's sub is {expected!r}"
    detail = f"act.sub {act['sub']!r}" + (f", act.iss {act['iss']!r}" if "iss" in act else "")
    return PASS, detail if expected is not None else detail + " (the actor token's sub cannot be read)"


def may_act(run: Run) -> Verdict:
    claims = run.claims(run.need_subject())
    allowed = claims.get("may_act") if claims is not None else None
    if not isinstance(allowed, dict):
        raise NotApplicable("the subject token has no may_act claim (only its issuer can add one)")
    actor = run.need_actor()
    actor_claims = run.claims(actor)
    answer = run.exchange(run.form(actor_token=actor, actor_token_type=run.actor_type))
    if actor_claims is not None and actor_claims.get("sub") == allowed.get("sub"):
        if answer.granted:
            return PASS, "the actor may_act names was accepted"
        return FAIL, f"the actor may_act names was refused: {run.describe(answer)}"
    # RFC 8693 4.4 lets the server use may_act without saying how it refuses; 2.2.2's invalid_request is expected
    # (servers that read the subject token as a grant that does not allow this actor answer invalid_grant).
    return run.refused_with(
        answer,
        ("invalid_request",),
        rule=f"RFC 8693 4.4: may_act names another actor; {INVALID_REQUEST_RULE}",
        should=True,
        if_granted=WARN,
    )


# ---- refusals (2.2.2) ----------------------------------------------------------------------------------------


def forged_subject_token(run: Run) -> Verdict:
    answer = run.exchange(run.form(tampered(run.need_subject())))
    return run.refused_with(answer, ("invalid_request",), rule=INVALID_REQUEST_RULE)


def unsigned_subject_token(run: Run) -> Verdict:
    token = unsigned(run.need_subject())
    if token is None:
        raise NotApplicable("the subject token is not a JWT")
    answer = run.exchange(run.form(token))
    return run.refused_with(answer, ("invalid_request",), rule=INVALID_REQUEST_RULE)


def foreign_issuer_subject_token(run: Run) -> Verdict:
    template = claims_of(run.subject) if run.subject is not None else None
    audience = [run.target.issuer, run.target.client_id, *run.target.audience]
    token = foreign_token(template, issuer=f"https://{run.made_up('issuer')}.invalid", audience=audience)
    answer = run.exchange(run.form(token))
    return run.refused_with(answer, ("invalid_request",), rule=INVALID_REQUEST_RULE)


def expired_subject_token(run: Run) -> Verdict:
    token = run.target.expired_token
    if token is None:
        raise NotApplicable("the runner cannot make an expired token this server signed: pass one with --expired-token")
    claims = claims_of(token)
    exp = claims.get("exp") if claims is not None else None
    if isinstance(exp, int | float) and exp > time.time():
        raise NotApplicable("the token given with --expired-token has not expired yet")
    answer = run.exchange(run.form(token))
    return run.refused_with(answer, ("invalid_request",), rule=INVALID_REQUEST_RULE)


def forged_actor_token(run: Run) -> Verdict:
    actor = tampered(run.need_actor())
    answer = run.exchange(run.form(actor_token=actor, actor_token_type=run.actor_type))
    return run.refused_with(answer, ("invalid_request",), rule=INVALID_REQUEST_RULE)


def revoked_subject_token(run: Run) -> Verdict:
    run.granted_baseline()
    if run.peer.endpoint("revocation_endpoint") is None:
        raise NotApplicable("the metadata has no revocation_endpoint (RFC 7009)")
    # A token issued to this client, so that this client may revoke it (RFC 7009 2.1).
    fresh = run.exchange(run.form())
    if not fresh.granted:
        raise NotApplicable(f"a second plain exchange was refused ({run.describe(fresh)})")
    token = fresh.access_token
    exchanged = {**run.form(token), "subject_token_type": ACCESS_TOKEN_TYPE}
    control = run.exchange(exchanged)
    if not control.granted:
        raise NotApplicable(
            f"the server does not exchange a token it issued by exchange ({run.describe(control)}), "
            "so a refusal after revocation would prove nothing"
        )
    revoked = run.peer.revoke(token)
    if revoked is None or revoked.status != 200:
        status = revoked.status if revoked is not None else "none"
        return FAIL, f"revocation of the client's own token answered HTTP {status} (RFC 7009 2.2: 200)"
    answer = run.exchange(exchanged)
    return run.refused_with(answer, ("invalid_request",), rule=INVALID_REQUEST_RULE)


# ---- every error seen (RFC 6749 5.2) ----------------------------------------------------------------------------


def error_responses(run: Run) -> Verdict:
    seen = run.peer.errors
    if not seen:
        raise NotApplicable("no error response was seen")
    failures: list[str] = []
    warnings: list[str] = []
    for error in seen:
        answer, where = error.answer, error.check_id
        if answer.error is None:
            failures.append(f"{where}: HTTP {answer.status} without a JSON error object")
            continue
        statuses = (400, 401) if answer.error == "invalid_client" else (400,)
        if answer.status not in statuses:
            failures.append(f"{where}: {answer.error} with HTTP {answer.status}")
        if "application/json" not in answer.headers.get("content-type", ""):
            failures.append(f"{where}: Content-Type {answer.headers.get('content-type')!r}")
        directives = {d.strip().lower() for d in answer.headers.get("cache-control", "").split(",")}
        if "no-store" not in directives:
            warnings.append(where)
    if failures:
        return FAIL, "; ".join(failures[:4]) + (f" (and {len(failures) - 4} more)" if len(failures) > 4 else "")
    if warnings:
        return WARN, f"no Cache-Control: no-store on the errors of {', '.join(dict.fromkeys(warnings))}"
    return PASS, f"{len(seen)} errors: JSON with error, HTTP 400, Cache-Control: no-store"


CHECKS: tuple[Check, ...] = (
    Check("metadata", "RFC 8414 2", "metadata lists the token-exchange grant", metadata),
    Check("missing-subject-token", "RFC 8693 2.1", "no subject_token: invalid_request", missing_subject_token),
    Check(
        "missing-subject-token-type",
        "RFC 8693 2.1",
        "no subject_token_type: invalid_request",
        missing_subject_token_type,
    ),
    Check(
        "unknown-subject-token-type",
        "RFC 8693 2.2.2",
        "unknown subject_token_type: invalid_request",
        unknown_subject_token_type,
    ),
    Check(
        "actor-token-without-type",
        "RFC 8693 2.1",
        "actor_token without actor_token_type: invalid_request",
        actor_token_without_type,
    ),
    Check(
        "actor-type-without-token",
        "RFC 8693 2.1",
        "actor_token_type without actor_token: invalid_request",
        actor_type_without_token,
    ),
    Check("repeated-parameter", "RFC 6749 3.2", "a repeated parameter: invalid_request", repeated_parameter),
    Check(
        "successful-exchange",
        "RFC 8693 2.2.1",
        "exchange: access_token, issued_token_type, token_type",
        successful_exchange,
    ),
    Check("expires-in", "RFC 8693 2.2.1", "exchange: expires_in (RECOMMENDED)", expires_in),
    Check("no-store", "RFC 6749 5.1", "exchange: Cache-Control: no-store", no_store),
    Check("requested-access-token", "RFC 8693 2.1, 3", "requested_token_type access_token", requested_access_token),
    Check("requested-jwt", "RFC 8693 2.1, 3", "requested_token_type jwt", requested_jwt),
    Check("requested-unknown-type", "RFC 8693 2.1", "unknown requested_token_type refused", requested_unknown_type),
    Check("unknown-audience", "RFC 8693 2.2.2", "unknown audience: invalid_target", unknown_audience),
    Check("relative-resource", "RFC 8693 2.1", "resource not an absolute URI refused", relative_resource),
    Check("resource-with-fragment", "RFC 8693 2.1", "resource with a fragment refused", resource_with_fragment),
    Check(
        "scope-escalation", "RFC 8693 2.2.1", "scope beyond the subject's: invalid_scope or narrowed", scope_escalation
    ),
    Check("no-escalation", "RFC 8693 5", "issued scope within the subject token's", no_escalation),
    Check("delegation-act", "RFC 8693 4.1", "delegation: act.sub is the actor's sub", delegation_act),
    Check("may-act", "RFC 8693 4.4", "may_act: only the named actor", may_act),
    Check("forged-subject-token", "RFC 8693 2.2.2", "tampered subject_token signature refused", forged_subject_token),
    Check("unsigned-subject-token", "RFC 8693 2.2.2", "subject_token with alg none refused", unsigned_subject_token),
    Check(
        "foreign-issuer-subject-token",
        "RFC 8693 2.2.2",
        "subject_token from an untrusted issuer refused",
        foreign_issuer_subject_token,
    ),
    Check("expired-subject-token", "RFC 8693 2.2.2", "expired subject_token refused", expired_subject_token),
    Check("forged-actor-token", "RFC 8693 2.2.2", "tampered actor_token signature refused", forged_actor_token),
    Check("revoked-subject-token", "RFC 8693 2.2.2", "revoked subject_token refused (RFC 7009)", revoked_subject_token),
    Check("error-responses", "RFC 6749 5.2", "errors: JSON error, HTTP 400, no-store", error_responses),
)


__all__ = ["CHECKS"]
