"""The token request itself (RFC 6749 4.4 client credentials, RFC 8693 token exchange) as a sans-I/O flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import httpx

from tokensmith.client.client_auth import Form, authenticate
from tokensmith.client.discovery import MetadataCache, endpoint
from tokensmith.client.dpop import DPoPKey, asks_for_nonce
from tokensmith.client.errors import AuthorizationServerUnavailable, RegistrationError, TokenRequestError
from tokensmith.client.flow import Flow
from tokensmith.client.registration import CLIENT_CREDENTIALS, TOKEN_EXCHANGE, Registration

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
_CREDENTIAL_PARAMS = ("subject_token", "actor_token", "client_secret", "client_assertion")
_MAX_DESCRIPTION = 300  # an error_description is shown to operators; a long one is noise (or an echoed token)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token endpoint's successful answer. ``expires_at`` is None when the server did not say."""

    access_token: str = field(repr=False)
    token_type: str
    obtained_at: float
    expires_at: float | None
    scopes: frozenset[str] | None = None
    issued_token_type: str | None = None

    @property
    def dpop_bound(self) -> bool:
        """Whether the token is bound to the client's DPoP key (``token_type: DPoP``, RFC 9449 5)."""
        return self.token_type.lower() == "dpop"

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value for a resource request (``DPoP <token>`` for a bound token, which
        also needs a proof in a ``DPoP`` header)."""
        return f"{'DPoP' if self.dpop_bound else 'Bearer'} {self.access_token}"


def _words(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [item for item in value if item]


def client_credentials_form(registration: Registration, scope: str | Sequence[str] | None) -> Form:
    _check_grant(registration, CLIENT_CREDENTIALS)
    form: Form = {"grant_type": CLIENT_CREDENTIALS}
    scopes = _words(scope) if scope is not None else list(registration.scopes)
    if scopes:
        form["scope"] = " ".join(scopes)
    return form


class ExchangeParameters(TypedDict, total=False):
    """The optional parameters of a token exchange, for callers that pass them on to :func:`token_exchange_form`.

    An absent one takes that function's default, so the defaults are written in one place.
    """

    audience: str | Sequence[str] | None
    resource: str | Sequence[str] | None
    scope: str | Sequence[str] | None
    actor_token: str | None
    actor_token_type: str
    subject_token_type: str
    requested_token_type: str | None


def token_exchange_form(
    registration: Registration,
    subject_token: str,
    *,
    subject_token_type: str = ACCESS_TOKEN_TYPE,
    requested_token_type: str | None = ACCESS_TOKEN_TYPE,
    audience: str | Sequence[str] | None = None,
    resource: str | Sequence[str] | None = None,
    scope: str | Sequence[str] | None = None,
    actor_token: str | None = None,
    actor_token_type: str = ACCESS_TOKEN_TYPE,
) -> Form:
    """RFC 8693 2.1; ``audience``/``resource``/``scope`` default to the registration's."""
    _check_grant(registration, TOKEN_EXCHANGE)
    form: Form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
    }
    if requested_token_type:
        form["requested_token_type"] = requested_token_type
    audiences = _words(audience) if audience is not None else list(registration.audience)
    resources = _words(resource) if resource is not None else list(registration.resource)
    scopes = _words(scope) if scope is not None else list(registration.scopes)
    if audiences:
        form["audience"] = audiences
    if resources:
        form["resource"] = resources
    if scopes:
        form["scope"] = " ".join(scopes)
    if actor_token:
        form["actor_token"] = actor_token
        form["actor_token_type"] = actor_token_type
    return form


def _check_grant(registration: Registration, grant_type: str) -> None:
    if registration.authorization_grant_type != grant_type:
        raise RegistrationError(
            f"registration {registration.registration_id!r} is for {registration.authorization_grant_type!r}, "
            f"not {grant_type!r}"
        )


def token_flow(
    registration: Registration, form: Form, metadata: MetadataCache, now: float, dpop: DPoPKey | None = None
) -> Flow[IssuedToken]:
    """Find the token endpoint (configured, else discovered), send the authenticated request, parse the answer.
    With ``dpop`` the request carries a proof by that key (the token is then bound to it), and a refusal with
    ``use_dpop_nonce`` is retried once with the server's nonce."""
    token_uri = registration.token_uri
    if token_uri is None:
        issuer = registration.issuer_uri or ""
        document = yield from metadata.flow(issuer)
        token_uri = endpoint(document, "token_endpoint", issuer)
    body: Form = dict(form)
    headers = {"Accept": "application/json"}
    authenticate(registration, body, headers, token_uri, now)
    if dpop is not None:
        headers["DPoP"] = dpop.proof("POST", token_uri)
    response = yield httpx.Request("POST", token_uri, data=body, headers=headers)
    if dpop is not None and dpop.remember_nonce(response) and asks_for_nonce(response):
        headers["DPoP"] = dpop.proof("POST", token_uri)
        response = yield httpx.Request("POST", token_uri, data=body, headers=headers)
        dpop.remember_nonce(response)
    try:
        return parse_token_response(response, now)
    except TokenRequestError as refused:
        # A server may echo what it refused; the description must not carry a credential into logs.
        if refused.error_description:
            refused.error_description = _redact(refused.error_description, body, registration.client_secret)
            refused.args = (f"token request refused ({refused.status} {refused.error}): {refused.error_description}",)
        raise


def _redact(text: str, form: Form, client_secret: str | None) -> str:
    secrets = [form.get(name) for name in _CREDENTIAL_PARAMS] + [client_secret]
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def parse_token_response(response: httpx.Response, now: float) -> IssuedToken:
    if response.status_code >= 500:
        raise AuthorizationServerUnavailable(f"token endpoint answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TokenRequestError(
            "invalid_response", "the token endpoint did not answer a JSON object", status=response.status_code
        )
    if response.status_code != 200:
        error = body.get("error")
        description = body.get("error_description")
        raise TokenRequestError(
            error if isinstance(error, str) and error else "invalid_response",
            description[:_MAX_DESCRIPTION] if isinstance(description, str) else None,
            status=response.status_code,
        )
    access_token, token_type = body.get("access_token"), body.get("token_type")
    if not isinstance(access_token, str) or not access_token or not isinstance(token_type, str):
        raise TokenRequestError("invalid_response", "access_token or token_type missing", status=response.status_code)
    scope = body.get("scope")
    issued_token_type = body.get("issued_token_type")
    return IssuedToken(
        access_token=access_token,
        token_type=token_type,
        obtained_at=now,
        expires_at=_expiry(body.get("expires_in"), now),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else None,
        issued_token_type=issued_token_type if isinstance(issued_token_type, str) else None,
    )


def _expiry(expires_in: object, now: float) -> float | None:
    # Some servers send a numeric string; anything else unusable is treated as "not said".
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and expires_in >= 0:
        return now + float(expires_in)
    return None
