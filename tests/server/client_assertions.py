"""Keys and client assertions (RFC 7523) for the private_key_jwt tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tokensmith.server.core.client_assertion import JWT_BEARER

SIGNED_CLIENT = "signed-service"
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
# One RSA key for the whole session: generating it is the slowest step of these tests.
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
OTHER_EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)


def public_jwks(*keys: ECKey | RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def signed_client(**registration: Any) -> dict[str, Any]:
    """A confidential client that authenticates with private_key_jwt only."""
    return {
        "registration": {
            "client-id": SIGNED_CLIENT,
            "client-authentication-methods": ["private_key_jwt"],
            "authorization-grant-types": ["client_credentials"],
            "scopes": ["reports.read"],
            "jwks": public_jwks(EC_KEY, RSA_KEY),
            **registration,
        },
        "audiences": ["report-api"],
    }


def assertion(
    audience: str | list[str],
    *,
    key: ECKey | RSAKey = EC_KEY,
    alg: str = "ES256",
    client_id: str = SIGNED_CLIENT,
    now: float | None = None,
    lifetime: int = 60,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    issued_at = int(now if now is not None else time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode({"alg": alg, "kid": key.kid, **(header or {})}, body, key, algorithms=[alg])


def b64url(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(audience: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": SIGNED_CLIENT, "sub": SIGNED_CLIENT, "aud": audience, "exp": now + 60, "jti": uuid.uuid4().hex}


def unsigned(audience: str) -> str:
    """``alg: none``: a header, the claims and an empty signature."""
    return f"{b64url({'alg': 'none'})}.{b64url(_claims(audience))}."


def hs256_forged(audience: str) -> str:
    """HS/RS confusion: an HMAC keyed with the client's public RSA key (which anyone can read)."""
    signing_input = f"{b64url({'alg': 'HS256', 'kid': RSA_KEY.kid})}.{b64url(_claims(audience))}"
    mac = hmac.new(RSA_KEY.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def assertion_form(client_assertion: str, **params: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER, "client_assertion": client_assertion, **params}
