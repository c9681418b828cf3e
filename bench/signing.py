"""Keys and tokens for the peers that do not issue their own subject tokens (the Python ceiling, oidc-provider).

Each peer gets one private key of the measured algorithm; the benchmark mints the subject token with the same
key, as tokensmith's subject tokens are signed by tokensmith's own key.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeyParameters, RSAKey

SigningKey = ECKey | RSAKey


def generate_key(alg: str) -> SigningKey:
    parameters: KeyParameters = {"kid": uuid.uuid4().hex, "alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters, private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters, private=True)
    raise ValueError(f"unsupported algorithm {alg!r}")


def private_jwk(key: SigningKey) -> dict[str, Any]:
    return dict(key.as_dict(private=True))


def mint(key: SigningKey, claims: dict[str, Any], *, typ: str = "at+jwt") -> str:
    alg = str(key.alg)
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key, algorithms=[alg])


def user_token(key: SigningKey, *, issuer: str, audience: str, subject: str = "baeldung", ttl: int = 3600) -> str:
    """A user's access token as the article's client app holds it: for ``user-service``, valid for an hour."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": "messaging-client",
        "scope": "openid profile",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return mint(key, claims)
