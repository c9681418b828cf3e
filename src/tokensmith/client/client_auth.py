"""Client authentication at the token endpoint: client_secret_basic, client_secret_post, private_key_jwt, none."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote_plus

from joserfc import jwt

from tokensmith.client.registration import Registration

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60  # seconds: an assertion is used once, right away

Form = dict[str, str | list[str]]


def basic_credentials(client_id: str, client_secret: str) -> str:
    """RFC 6749 2.3.1: form-urlencode id and secret *before* Base64, so ':' or '%' in a secret survive."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def client_assertion(registration: Registration, audience: str, now: float) -> str:
    """An RFC 7523 section 3 JWT: issued by and about the client, for the token endpoint, short-lived, unique."""
    if registration.signing_key is None or registration.signing_alg is None:
        raise ValueError(f"registration {registration.registration_id!r} has no signing key")
    issued_at = int(now)
    claims = {
        "iss": registration.client_id,
        "sub": registration.client_id,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ASSERTION_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": registration.signing_alg}
    if registration.signing_key.kid:
        header["kid"] = registration.signing_key.kid
    return jwt.encode(header, claims, registration.signing_key, algorithms=[registration.signing_alg])


def authenticate(
    registration: Registration, form: Form, headers: dict[str, str], token_endpoint: str, now: float
) -> None:
    """Add the registration's credentials to a token request's form and headers."""
    method = registration.client_authentication_method
    if method == "client_secret_basic":
        headers["Authorization"] = basic_credentials(registration.client_id, registration.client_secret or "")
    elif method == "client_secret_post":
        form["client_id"] = registration.client_id
        form["client_secret"] = registration.client_secret or ""
    elif method == "private_key_jwt":
        form["client_id"] = registration.client_id
        form["client_assertion_type"] = JWT_BEARER_ASSERTION
        form["client_assertion"] = client_assertion(registration, token_endpoint, now)
    else:  # "none": a public client identifies itself only
        form["client_id"] = registration.client_id
