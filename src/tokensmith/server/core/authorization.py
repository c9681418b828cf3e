"""The authorization request (RFC 6749 4.1.1, OpenID Connect Core 3.1.2) and the codes it produces.

Validation runs in two steps because errors are reported in two ways: while the client or the redirect URI
is in doubt, the user sees an error page (redirecting would make us an open redirector, RFC 6749 4.1.2.1);
once both are known good, errors go back to the client's redirect URI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from tokensmith.config.server import AUTHORIZATION_CODE, PROMPT_VALUES, ClientConfig, ServerConfig
from tokensmith.errors import OAuthError, invalid_request, invalid_scope, unauthorized_client
from tokensmith.server.core.claims import ClaimsRequest, check_acr_request, parse_claims_request
from tokensmith.server.core.digest import digest, new_secret
from tokensmith.server.core.grants.base import resource_indicators, restricted_audience
from tokensmith.server.core.grants.issuance import new_grant_id, token_audience
from tokensmith.server.core.pkce import is_valid_challenge
from tokensmith.store.base import Store
from tokensmith.store.records import AuthorizationCodeRecord

_MAX_AGE = re.compile(r"[0-9]{1,10}")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")

# Bounds on an authorization request, far above what clients send (a Spring or openid-client request is under
# 1 kB). Without them a request could park a 60 kB nonce in the database and in the ID token, or echo thousands
# of parameters into the consent form.
MAX_PARAMETERS = 50
MAX_PARAMETER_CHARS = 2048
MAX_REQUEST_CHARS = 6144
# The longest authorization URL the login page carries back (`next`): the request re-encoded, in the worst case
# every character percent-encoded.
MAX_RETURN_URL_CHARS = 3 * MAX_REQUEST_CHARS + 1024


@dataclass(frozen=True, slots=True)
class ClientRedirect:
    """A client and a redirect URI that exactly matches one it registered: errors may now be redirected."""

    client: ClientConfig
    redirect_uri: str
    state: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: ClientConfig
    redirect_uri: str
    state: str | None
    scope: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    prompt: frozenset[str]
    max_age: int | None
    # The `claims` parameter (OpenID Connect Core 5.5), checked; {} when absent.
    claims_request: ClaimsRequest
    # RFC 9449 10: the thumbprint of the DPoP key the code is bound to.
    dpop_jkt: str | None = None
    # RFC 8707: the resources the tokens are for; (): the client's audiences.
    resources: tuple[str, ...] = ()

    @property
    def client_id(self) -> str:
        return self.client.registration.client_id


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_request(f"parameter {name!r} must not be sent more than once")
    return values[0] or None


def check_bounds(params: Mapping[str, Sequence[str]]) -> None:
    """Refuse a request with too many parameters, a too long value, or too much in all (decoded characters)."""
    count = sum(len(values) for values in params.values())
    if count > MAX_PARAMETERS:
        raise invalid_request(f"the request has {count} parameters; at most {MAX_PARAMETERS} are accepted")
    total = 0
    for name, values in params.items():
        for value in values:
            if len(name) > MAX_PARAMETER_CHARS or len(value) > MAX_PARAMETER_CHARS:
                raise invalid_request(f"parameter {name[:40]!r} is longer than {MAX_PARAMETER_CHARS} characters")
            total += len(name) + len(value)
    if total > MAX_REQUEST_CHARS:
        raise invalid_request(f"the request is longer than {MAX_REQUEST_CHARS} characters")


def resolve_client_redirect(params: Mapping[str, Sequence[str]], config: ServerConfig) -> ClientRedirect:
    """Step one: the request's size, the client and its redirect URI. Errors here are shown to the user, never
    redirected (a value too large to accept is not sent back to the client either)."""
    check_bounds(params)
    client_id = _single(params, "client_id")
    if client_id is None:
        raise invalid_request("missing required parameter 'client_id'")
    client = config.client_by_id(client_id)
    if client is None:
        raise OAuthError("invalid_client", "unknown client_id", status_code=400)
    redirect_uri = _single(params, "redirect_uri")
    if redirect_uri is None:
        raise invalid_request("missing required parameter 'redirect_uri'")
    # Exact string comparison (RFC 9700 2.1): no prefix, wildcard or normalisation tricks.
    if redirect_uri not in client.registration.redirect_uris:
        raise invalid_request("redirect_uri is not registered for this client")
    state = params.get("state")
    return ClientRedirect(client=client, redirect_uri=redirect_uri, state=state[0] if state else None)


def validate_authorization_request(params: Mapping[str, Sequence[str]], target: ClientRedirect) -> AuthorizationRequest:
    """Step two: everything else. Errors here are redirected to ``target.redirect_uri``."""
    client = target.client
    registration = client.registration
    for name in params:
        if len(params[name]) > 1 and name != "resource":  # RFC 8707 2: resource may repeat
            raise invalid_request(f"parameter {name!r} must not be sent more than once")
    if params.get("request") or params.get("request_uri"):
        raise OAuthError("request_not_supported", "request objects are not supported")
    response_type = _single(params, "response_type")
    if response_type is None:
        raise invalid_request("missing required parameter 'response_type'")
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    if AUTHORIZATION_CODE not in registration.authorization_grant_types:
        raise unauthorized_client("the client may not use the authorization code grant")
    response_mode = _single(params, "response_mode")
    if response_mode not in (None, "query"):
        raise invalid_request("only response_mode=query is supported")

    raw_scope = _single(params, "scope")
    scope = tuple(dict.fromkeys(raw_scope.split())) if raw_scope else registration.scopes
    refused = [s for s in scope if s not in registration.scopes]
    if refused:
        raise invalid_scope(f"scope not allowed for this client: {' '.join(refused)}")

    challenge = _single(params, "code_challenge")
    method = _single(params, "code_challenge_method")
    if challenge is not None:
        if method is None:
            # RFC 7636 defaults a missing method to "plain", which this server refuses.
            raise invalid_request("code_challenge_method must be S256")
        if method != "S256":
            raise invalid_request("code_challenge_method must be S256 (plain is not supported)")
        if not is_valid_challenge(challenge):
            raise invalid_request("code_challenge must be a base64url SHA-256 digest (43 characters)")
    elif method is not None:
        raise invalid_request("code_challenge_method was sent without code_challenge")
    elif registration.is_public or client.require_proof_key:
        raise invalid_request("PKCE is required for this client: send code_challenge with code_challenge_method=S256")

    prompt = frozenset((_single(params, "prompt") or "").split())
    if not prompt <= PROMPT_VALUES:
        raise invalid_request(f"unsupported prompt value(s): {' '.join(sorted(prompt - PROMPT_VALUES))}")
    if "none" in prompt and len(prompt) > 1:
        raise invalid_request("prompt=none cannot be combined with other values")
    raw_max_age = _single(params, "max_age")
    max_age: int | None = None
    if raw_max_age is not None:
        # ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() then refuses or misreads.
        if not _MAX_AGE.fullmatch(raw_max_age):
            raise invalid_request("max_age must be a non-negative number of seconds (at most 10 digits)")
        max_age = int(raw_max_age)
    # `acr_values` (Core 3.1.2.1) asks voluntarily: every login here is a password login, and the ID token's
    # `acr` says so whatever was asked. An essential `acr` in `claims` that this cannot meet is refused.
    claims_request = parse_claims_request(_single(params, "claims"))
    check_acr_request(claims_request)

    # RFC 8707 2: the resources the tokens will be for, each one of the client's audiences.
    requested = resource_indicators(params.get("resource", ()))
    resources = restricted_audience(requested, token_audience(client)) if requested else ()

    dpop_jkt = _single(params, "dpop_jkt")
    if dpop_jkt is not None and not _JKT.fullmatch(dpop_jkt):
        raise invalid_request("dpop_jkt must be a base64url SHA-256 JWK thumbprint (43 characters, RFC 9449 10)")

    return AuthorizationRequest(
        dpop_jkt=dpop_jkt,
        client=client,
        redirect_uri=target.redirect_uri,
        state=target.state,
        scope=scope,
        nonce=_single(params, "nonce"),
        code_challenge=challenge,
        code_challenge_method="S256" if challenge is not None else None,
        prompt=prompt,
        max_age=max_age,
        claims_request=claims_request,
        resources=resources,
    )


async def issue_authorization_code(
    store: Store, request: AuthorizationRequest, *, subject: str, auth_time: datetime, now: datetime
) -> str:
    code = new_secret()
    await store.save_authorization_code(
        AuthorizationCodeRecord(
            code_hash=digest(code),
            grant_id=new_grant_id(),
            client_id=request.client_id,
            subject=subject,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            nonce=request.nonce,
            auth_time=auth_time,
            expires_at=now + request.client.token.authorization_code_time_to_live,
            claims_request=request.claims_request,
            dpop_jkt=request.dpop_jkt,
            resource=request.resources,
        )
    )
    return code


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """``redirect_uri`` with ``params`` added to its query (keeping the query it already has, RFC 6749 3.1.2)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def success_redirect(request: AuthorizationRequest, code: str, issuer: str) -> str:
    # RFC 9207: `iss` tells the client which server answered (mix-up attack defence).
    return redirect_with(request.redirect_uri, {"code": code, "state": request.state, "iss": issuer})


def error_redirect(target: ClientRedirect, error: OAuthError, issuer: str) -> str:
    return redirect_with(
        target.redirect_uri,
        {
            "error": error.error,
            "error_description": error.description or None,
            "state": target.state,
            "iss": issuer,
        },
    )
