"""DPoP proofs (RFC 9449 4): the checks a proof must pass wherever it is presented, with no state.

:func:`check_proof` reads a proof and checks its header (``typ: dpop+jwt``, an allow-listed asymmetric ``alg``, a
public ``jwk`` and nothing private in it), its signature by that key, and its claims (``jti``, ``htm``, ``htu``,
``iat`` inside the window, ``ath`` when an access token goes with it). What needs state, the ``jti`` replay cache
and server nonces, is the caller's (the authorization server's core, ``tokensmith.resource``).

:func:`jwk_thumbprint` is the key's RFC 7638 thumbprint (SHA-256, base64url): a token bound to the key carries it
as ``cnf.jkt``. :func:`sign_proof` makes a proof, for clients and tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key
from joserfc.util import urlsafe_b64encode

from tokensmith.jose.errors import InvalidDPoPProof, InvalidJWT, MalformedJWT
from tokensmith.jose.jws import parse
from tokensmith.jose.keys import AsymmetricKey, Key, check_algorithms

DPOP_TYP = "dpop+jwt"
# A proof holds one public key and a few short claims: an RSA-4096 proof is under 3 KB.
MAX_PROOF_LENGTH = 8 * 1024
# RFC 7518 / RFC 7517 private key members (RSA, EC, OKP) and the symmetric `k`.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = ("RSA", "EC", "OKP")
# Proof keys kept imported (see _imported_key): one per recently seen client key.
PROOF_KEYS_KEPT = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof that passed :func:`check_proof`: the thumbprint of its key and the claims a caller still needs."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None


class NonceSource:
    """Stateless server nonces (RFC 9449 8): an HMAC of the current time window under a secret. A nonce is accepted
    in its own window and the next, so it lives between one and two ``lifetime``s (seconds); servers sharing the
    secret accept each other's nonces. ``clock`` gives seconds since the epoch."""

    def __init__(self, secret: bytes, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the DPoP nonce secret must be at least 16 bytes")
        self._secret = secret
        self._seconds = max(int(lifetime), 1)
        self._clock = clock

    def _window(self) -> int:
        return int(self._clock()) // self._seconds

    def _nonce(self, window: int) -> str:
        mac = hmac.new(self._secret, window.to_bytes(8, "big", signed=True), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode("ascii")

    def current(self) -> str:
        return self._nonce(self._window())

    def accepts(self, nonce: str) -> bool:
        window = self._window()
        return any(hmac.compare_digest(nonce, self._nonce(w)) for w in (window, window - 1))


def access_token_hash(access_token: str) -> str:
    """The ``ath`` of an access token (RFC 9449 4.2): base64url of its SHA-256."""
    return urlsafe_b64encode(hashlib.sha256(access_token.encode("ascii")).digest()).decode("ascii")


def jwk_thumbprint(jwk: AsymmetricKey) -> str:
    """The key's RFC 7638 thumbprint (SHA-256), as ``cnf.jkt`` and ``dpop_jkt`` carry it."""
    return jwk.thumbprint()


# Both sides of the comparison are nearly always the same few endpoint URIs: keep their normal forms.
@lru_cache(maxsize=256)
def normalize_htu(uri: str) -> str:
    """``uri`` as RFC 9449 4.3 compares it: scheme and host in lower case, no default port, ``/`` for an empty
    path, no query and no fragment. ValueError when it is not an absolute http(s) URI."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("is not an absolute http(s) URI")
    host = parts.hostname  # lower case already
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a port out of range
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def _proof_key(header: dict[str, Any], algorithms: frozenset[str]) -> tuple[Key, str]:
    """The proof's public key, ready to verify, and its thumbprint."""
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("the DPoP proof has no 'jwk' header")
    private = sorted(PRIVATE_MEMBERS & jwk.keys())
    if private:
        raise InvalidDPoPProof(f"the DPoP proof's 'jwk' holds private key members {private}; send the public key only")
    if jwk.get("kty") not in _KEY_TYPES:
        raise InvalidDPoPProof("the DPoP proof's 'jwk' must be an RSA, EC or OKP public key")
    return _imported_key(json.dumps(jwk, sort_keys=True), algorithms)


# A client signs every proof with the same key: importing it (the curve point check, the RSA modulus) costs more
# than verifying the signature, so the last keys seen are kept ready, with their thumbprints.
@lru_cache(maxsize=PROOF_KEYS_KEPT)
def _imported_key(jwk_json: str, algorithms: frozenset[str]) -> tuple[Key, str]:
    try:
        imported = import_key(json.loads(jwk_json))
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("the DPoP proof's 'jwk' is not a readable public key") from None
    if not isinstance(imported, ECKey | RSAKey | OKPKey):  # pragma: no cover - kty was checked
        raise InvalidDPoPProof("the DPoP proof's 'jwk' must be an RSA, EC or OKP public key")
    return Key(imported, algorithms), jwk_thumbprint(imported)


def check_proof(
    proof: str,
    *,
    method: str,
    uri: str,
    algorithms: Iterable[str],
    now: float,
    max_age: float,
    clock_skew: float,
    access_token: str | None = None,
) -> DPoPProof:
    """Check a DPoP proof for a request of ``method`` to ``uri`` at ``now`` (seconds since the epoch).

    ``iat`` must lie between ``now - max_age`` and ``now + clock_skew``; ``uri`` is the URI the proof must name,
    compared after :func:`normalize_htu`. With ``access_token``, ``ath`` must be its hash; without, a proof that
    carries ``ath`` is still accepted (the claim only binds a proof to a token). Raises :class:`InvalidDPoPProof`.
    """
    allowed = check_algorithms(algorithms)
    if len(proof) > MAX_PROOF_LENGTH:
        raise InvalidDPoPProof(f"the DPoP proof is larger than {MAX_PROOF_LENGTH} characters")
    try:
        token = parse(proof, key_in_header=True)
    except MalformedJWT as exc:  # its message completes "<the token> ..."
        raise InvalidDPoPProof(f"the DPoP proof {exc}") from None
    except InvalidJWT as exc:
        raise InvalidDPoPProof(f"the DPoP proof is refused: {exc}") from None
    header = token.header
    if header.get("typ") != DPOP_TYP:
        raise InvalidDPoPProof(f"the DPoP proof's 'typ' header must be {DPOP_TYP!r}")
    if token.alg not in allowed:
        raise InvalidDPoPProof(
            f"the DPoP proof's algorithm {token.alg!r} is not accepted; use one of {sorted(allowed)}"
        )
    key, jkt = _proof_key(header, allowed)
    if not key.verifies(token):
        raise InvalidDPoPProof("the DPoP proof's signature does not verify with its 'jwk'")

    claims = token.claims
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidDPoPProof("the DPoP proof needs a 'jti' of 1 to 256 characters")
    if claims.get("htm") != method:
        raise InvalidDPoPProof(f"the DPoP proof's 'htm' does not match the request method {method}")
    htu = claims.get("htu")
    try:
        matches = isinstance(htu, str) and normalize_htu(htu) == normalize_htu(uri)
    except ValueError:
        matches = False
    if not matches:
        raise InvalidDPoPProof(f"the DPoP proof's 'htu' does not match the request URI {normalize_htu(uri)}")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidDPoPProof("the DPoP proof needs a numeric 'iat'")
    if iat < now - max_age:
        raise InvalidDPoPProof("the DPoP proof is too old ('iat'); sign a new proof for each request")
    if iat > now + clock_skew:
        raise InvalidDPoPProof("the DPoP proof's 'iat' is in the future")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidDPoPProof("the DPoP proof's 'ath' does not match the access token")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDPoPProof("the DPoP proof's 'nonce' must be a string")
    return DPoPProof(jkt=jkt, jti=jti, iat=int(iat), nonce=nonce)


def sign_proof(
    key: AsymmetricKey,
    *,
    alg: str,
    method: str,
    uri: str,
    access_token: str | None = None,
    nonce: str | None = None,
    iat: int | None = None,
    jti: str | None = None,
) -> str:
    """A DPoP proof by ``key`` (a private key) for a request of ``method`` to ``uri``: ``htu`` without query and
    fragment, a fresh ``jti``, ``ath`` for ``access_token`` and the server's ``nonce`` when given."""
    signer = Key(key, (alg,))
    if alg not in signer.algorithms or not key.is_private:
        raise ValueError(f"this key cannot sign DPoP proofs with {alg}")
    parts = urlsplit(uri)
    claims: dict[str, Any] = {
        "jti": jti or uuid.uuid4().hex,
        "htm": method,
        "htu": f"{parts.scheme}://{parts.netloc}{parts.path or '/'}",
        "iat": int(time.time()) if iat is None else iat,
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    return signer.sign_with_header({"typ": DPOP_TYP, "alg": alg, "jwk": dict(key.as_dict(private=False))}, claims)
