"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 2.3).

Methods: ``client_secret_basic`` (HTTP Basic), ``client_secret_post`` (credentials in the form),
``private_key_jwt`` (a signed JWT in ``client_assertion``, see ``client_assertion.py``) and ``none`` (public
clients name themselves with ``client_id`` and must use PKCE). A request uses exactly one method.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote_plus

from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError, invalid_client, invalid_request
from tokensmith.server.core.client_assertion import (
    JWT_BEARER,
    PRIVATE_KEY_JWT,
    ClientAssertionVerifier,
    assertion_failed,
    assertion_subject,
)
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest
from tokensmith.server.core.passwords import SecretVerifier


@dataclass(frozen=True, slots=True)
class PresentedCredentials:
    client_id: str
    secret: str | None
    method: str
    assertion: str | None = None


def parse_basic_credentials(authorization: str) -> tuple[str, str]:
    """Decode ``Basic base64(urlencode(id):urlencode(secret))`` (RFC 6749 2.3.1 form-encodes both parts)."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise invalid_client("unsupported Authorization scheme; use HTTP Basic client authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), a character outside ASCII, or not UTF-8 once decoded
        raise invalid_client("malformed HTTP Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon or not raw_id:
        raise invalid_client("malformed HTTP Basic credentials")
    return _form_decoded(raw_id), _form_decoded(raw_secret)


def _form_decoded(part: str) -> str:
    # Most ids and secrets have nothing to decode; unquote_plus is only paid by those that do.
    return unquote_plus(part) if "%" in part or "+" in part else part


def presented_credentials(authorization: str | None, request: TokenRequest) -> PresentedCredentials:
    """Which single method the request uses, and the credentials it carries."""
    form_id = request.get("client_id")
    form_secret = request.get("client_secret")
    assertion_type = request.get("client_assertion_type")
    assertion = request.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        return _assertion_credentials(authorization, form_id, form_secret, assertion_type, assertion)
    if authorization:
        client_id, secret = parse_basic_credentials(authorization)
        if form_secret is not None:
            raise invalid_request("use one client authentication method: HTTP Basic or client_secret in the form")
        if form_id is not None and form_id != client_id:
            raise invalid_request("client_id in the form differs from the HTTP Basic client")
        return PresentedCredentials(client_id, secret, "client_secret_basic")
    if form_secret is not None:
        if form_id is None:
            raise invalid_request("client_secret was sent without client_id")
        return PresentedCredentials(form_id, form_secret, "client_secret_post")
    if form_id is not None:
        return PresentedCredentials(form_id, None, "none")
    raise invalid_client("client authentication is required")


def _assertion_credentials(
    authorization: str | None,
    form_id: str | None,
    form_secret: str | None,
    assertion_type: str | None,
    assertion: str | None,
) -> PresentedCredentials:
    """RFC 7521 4.2 / RFC 7523 2.2: ``client_assertion_type`` and ``client_assertion`` together, nothing else."""
    if authorization or form_secret is not None:
        raise invalid_request("use one client authentication method: a client_assertion or a client secret")
    if assertion_type is None or assertion is None:
        raise invalid_request("client_assertion and client_assertion_type must be sent together")
    if assertion_type != JWT_BEARER:
        raise assertion_failed(f"unsupported client_assertion_type; use {JWT_BEARER}")
    client_id = assertion_subject(assertion)
    if form_id is not None and form_id != client_id:
        raise invalid_request("client_id differs from the client the client_assertion names")
    return PresentedCredentials(client_id, None, PRIVATE_KEY_JWT, assertion=assertion)


async def authenticate_client(
    authorization: str | None,
    request: TokenRequest,
    config: ServerConfig,
    verifier: SecretVerifier,
    *,
    assertions: ClientAssertionVerifier | None = None,
) -> AuthenticatedClient:
    """The client the request authenticates as. ``assertions`` verifies private_key_jwt; without it that
    method is refused."""
    presented = presented_credentials(authorization, request)
    client = config.client_by_id(presented.client_id)
    if client is None:
        raise _failure()
    registration = client.registration
    if presented.method not in registration.client_authentication_methods:
        raise _failure()
    if presented.method == PRIVATE_KEY_JWT:
        if assertions is None or presented.assertion is None:
            raise _failure()
        await assertions.verify(registration, presented.assertion)
    elif presented.method != "none":
        if registration.client_secret is None or presented.secret is None:
            raise _failure()
        if not await verifier.verify(registration.client_id, registration.client_secret, presented.secret):
            raise _failure()
    return AuthenticatedClient(config=client, method=presented.method)


def _failure() -> OAuthError:
    # One message for unknown client, wrong secret and unregistered method: nothing to probe client ids with.
    return invalid_client("client authentication failed")


def require_confidential(client: AuthenticatedClient, purpose: str) -> None:
    """Introspection and revocation are for clients that proved who they are."""
    if client.method == "none":
        raise OAuthError(
            "invalid_client",
            f"{purpose} requires client authentication with a secret or a private key",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="tokensmith", error="invalid_client"'},
        )
