"""Keys that sign and verify compact JWSs, each prepared once for the algorithms it may serve, and key sets.

A :class:`Key` holds a joserfc key and joserfc's algorithm object for each allow-listed algorithm the key suits
(joserfc's own ``check_key``: key type, curve, ``use``, the key's ``alg``), so verifying a token is one dict
lookup and joserfc's signature check. Only asymmetric algorithms exist here: no ``none``, no HMAC (a JWKS holds
public keys; an HS256 token "signed" with one is an attack).
"""

from __future__ import annotations

import calendar
import datetime
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode

from tokensmith.jose.errors import BadSignature, UnacceptableJWT, UnknownKey
from tokensmith.jose.jws import CompactJWS

logger = logging.getLogger(__name__)

AsymmetricKey = ECKey | RSAKey | OKPKey
ASYMMETRIC_ALGORITHMS = frozenset(
    name for name, model in JWSRegistry.algorithms.items() if model.key_type in ("RSA", "EC", "OKP")
)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")


def check_algorithms(algorithms: Iterable[str]) -> frozenset[str]:
    """The allow-list, refusing an empty one and any algorithm that is not asymmetric (``none``, HS*)."""
    allowed = frozenset(algorithms)
    refused = sorted(allowed - ASYMMETRIC_ALGORITHMS)
    if refused or not allowed:
        raise ValueError(f"algorithms {refused or '[]'} are not accepted; choose from {sorted(ASYMMETRIC_ALGORITHMS)}")
    return allowed


def _numeric_date(value: object) -> int:
    # Datetimes in claims become NumericDates, as joserfc's `jwt.encode` writes them.
    if isinstance(value, datetime.datetime):
        return calendar.timegm(value.utctimetuple())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Key:
    """A joserfc key prepared for the algorithms of ``algorithms`` it suits (unsuitable ones are left out)."""

    def __init__(self, jwk: AsymmetricKey, algorithms: Iterable[str]) -> None:
        self.jwk = jwk
        self.kid: str | None = jwk.kid
        self._models: dict[str, JWSAlgModel] = {}
        for alg in check_algorithms(algorithms):
            model = JWSRegistry.algorithms[alg]
            try:
                model.check_key(jwk)
                jwk.check_key_op("verify")
            except JoseError:
                continue
            self._models[alg] = model
        self.algorithms = frozenset(self._models)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.jwk.as_dict(private=False))

    def verifies(self, token: CompactJWS) -> bool:
        """Whether the token's signature verifies with this key under the token's ``alg``."""
        model = self._models.get(token.alg)
        if model is None:
            return False
        try:
            return model.verify(token.signing_input, token.signature, self.jwk)
        except (JoseError, ValueError, TypeError):
            return False

    def sign(self, claims: Mapping[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """A compact JWS of ``claims`` with header ``{"typ", "alg", "kid"}``: what ``joserfc.jwt.encode`` makes
        for the same header and claims. Raises ValueError for an algorithm this key does not serve or a public key."""
        return self.sign_with_header({"typ": typ, "alg": alg, "kid": self.kid}, claims)

    def sign_with_header(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        """A compact JWS of ``claims`` under ``header``, signed with the header's ``alg``. Raises ValueError for an
        algorithm this key does not serve or a public key."""
        alg = header.get("alg")
        model = self._models.get(alg) if isinstance(alg, str) else None
        if model is None or not self.jwk.is_private:
            raise ValueError(f"key {self.kid!r} cannot sign {alg}")
        payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":"), default=_numeric_date)
        signing_input = json_b64encode(dict(header)) + b"." + urlsafe_b64encode(payload.encode("utf-8"))
        return (signing_input + b"." + urlsafe_b64encode(model.sign(signing_input, self.jwk))).decode("ascii")


def verify(token: CompactJWS, keys: Sequence[Key]) -> None:
    """Accept ``token`` if one of ``keys`` verifies its signature; :class:`BadSignature` otherwise."""
    if not any(key.verifies(token) for key in keys):
        raise BadSignature("signature does not verify")


class KeySet:
    """Verification keys by ``kid`` (keys without one are tried in turn), under an allow-list of algorithms."""

    def __init__(self, keys: Iterable[Key], algorithms: Iterable[str]) -> None:
        self.algorithms = check_algorithms(algorithms)
        self._by_kid: dict[str, list[Key]] = {}
        self._all: list[Key] = []
        for key in keys:
            if key.algorithms & self.algorithms:
                self._all.append(key)
                if key.kid is not None:
                    self._by_kid.setdefault(key.kid, []).append(key)

    @classmethod
    def from_jwks(cls, jwks: object, algorithms: Iterable[str], *, source: str) -> KeySet:
        """The asymmetric public keys of a JWK Set that suit an allow-listed algorithm. Private members are
        dropped, ``oct`` keys and keys for another ``use`` ignored; an unreadable key is skipped with a warning."""
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise ValueError(f"{source} is not a JWK Set (no 'keys' array)")
        allowed = check_algorithms(algorithms)
        keys = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                jwk = import_key({k: v for k, v in entry.items() if k not in _PRIVATE_MEMBERS})
            except (JoseError, ValueError, TypeError, KeyError):
                logger.warning("skipping an unreadable key (kid %r) in the JWK Set of %s", entry.get("kid"), source)
                continue
            if isinstance(jwk, ECKey | RSAKey | OKPKey):
                keys.append(Key(jwk, allowed))
        return cls(keys, allowed)

    def __len__(self) -> int:
        return len(self._all)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._by_kid)

    def find(self, kid: str | None, alg: str) -> list[Key]:
        """The keys that may have signed a token with this ``kid`` and ``alg`` (any key of ``alg`` without a kid)."""
        keys = self._by_kid.get(kid, []) if kid is not None else self._all
        return [key for key in keys if alg in key.algorithms] if alg in self.algorithms else []

    def keys_for(self, token: CompactJWS) -> list[Key]:
        """:meth:`find` for a token: :class:`UnacceptableJWT` for an algorithm off the allow-list,
        :class:`UnknownKey` when no key suits."""
        if token.alg not in self.algorithms:
            raise UnacceptableJWT(f"signature algorithm {token.alg!r} is not accepted")
        found = self.find(token.kid, token.alg)
        if not found:
            raise UnknownKey("signed with an unknown key")
        return found
