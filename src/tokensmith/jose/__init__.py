"""The one JOSE layer of tokensmith, over joserfc: used by the server, tokensmith.resource and tokensmith.client.

* :func:`parse` reads a compact JWS once into a :class:`CompactJWS` (header, claims, signing input, signature);
* a :class:`Key` signs and verifies, prepared once for the allow-listed algorithms it suits; a :class:`KeySet`
  finds keys by ``kid`` and ``alg``; a :class:`RemoteKeySet` fetches and caches the keys at a ``jwks_uri``;
* :func:`verify` checks a signature against candidate keys, :func:`check_times` the time claims;
* every refusal is an exception class (:class:`InvalidJWT` and its subclasses, :class:`KeysUnavailable`).
"""

from tokensmith.jose.claims import check_times
from tokensmith.jose.dpop import DPoPProof, access_token_hash, check_proof, jwk_thumbprint, normalize_htu, sign_proof
from tokensmith.jose.dpop import NonceSource as DPoPNonceSource
from tokensmith.jose.errors import (
    BadSignature,
    InvalidClaims,
    InvalidDPoPProof,
    InvalidJWT,
    KeysUnavailable,
    MalformedJWT,
    UnacceptableJWT,
    UnknownKey,
)
from tokensmith.jose.jws import CompactJWS, parse
from tokensmith.jose.keys import ASYMMETRIC_ALGORITHMS, AsymmetricKey, Key, KeySet, check_algorithms, verify
from tokensmith.jose.remote import RemoteKeySet

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AsymmetricKey",
    "BadSignature",
    "CompactJWS",
    "DPoPNonceSource",
    "DPoPProof",
    "InvalidClaims",
    "InvalidDPoPProof",
    "InvalidJWT",
    "Key",
    "KeySet",
    "KeysUnavailable",
    "MalformedJWT",
    "RemoteKeySet",
    "UnacceptableJWT",
    "UnknownKey",
    "access_token_hash",
    "check_algorithms",
    "check_proof",
    "check_times",
    "jwk_thumbprint",
    "normalize_htu",
    "parse",
    "sign_proof",
    "verify",
]
