"""Bearer JWT validation for a resource server, against any standards-compliant authorization server.

The hot path (a token signed by a key already held) is: split and parse the header once, one dict lookup for
the key, joserfc's signature check with a registry built once, ``json.loads`` of the payload, a handful of
comparisons. No I/O, no key parsing, no per-call registry: its cost stays close to joserfc's own verify.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import httpx
from joserfc import jws
from joserfc.errors import JoseError

from tokensmith.resource.errors import InvalidToken, ValidatorUnavailable
from tokensmith.resource.jwks import ASYMMETRIC_ALGORITHMS, Clock, JWKSCache, VerificationKey
from tokensmith.resource.principal import Principal


def _normalised_typ(value: str) -> str:
    # RFC 7515 4.1.9: "application/" may be omitted and media types compare case-insensitively.
    lowered = value.lower()
    return lowered[len("application/") :] if lowered.startswith("application/") else lowered


class TokenValidator:
    """Validates JWT access tokens: signature, ``iss``, ``aud``, ``exp``/``nbf`` (with ``leeway``), optional ``typ``.

    ``algorithms`` is an allow-list of asymmetric algorithms; ``none`` and HMAC algorithms are refused at
    construction (a JWKS holds public keys: an HS256 token "signed" with one is an attack). ``required_typ``
    (for example ``"at+jwt"`` per RFC 9068, or ``("at+jwt", "jwt")``) is checked when given.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Sequence[str] = ("RS256", "ES256"),
        jwks_uri: str | None = None,
        leeway: float = 30.0,
        required_typ: str | Sequence[str] | None = None,
        clock: Clock = time.time,
        http: httpx.AsyncClient | None = None,
        refresh_cooldown: float = 30.0,
        max_key_age: float = 300.0,
        timeout: float = 5.0,
    ) -> None:
        refused = [alg for alg in algorithms if alg not in ASYMMETRIC_ALGORITHMS]
        if refused or not algorithms:
            raise ValueError(
                f"algorithms {refused or '[]'} are not accepted; choose from {sorted(ASYMMETRIC_ALGORITHMS)}"
            )
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not audiences:
            raise ValueError("configure at least one audience: a token for another service must not be accepted")
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        if required_typ is None:
            self.required_typ: frozenset[str] | None = None
        else:
            typs = (required_typ,) if isinstance(required_typ, str) else tuple(required_typ)
            self.required_typ = frozenset(_normalised_typ(t) for t in typs)
        self._clock = clock
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self.keys = JWKSCache(
            issuer=issuer,
            jwks_uri=jwks_uri,
            http=self._http,
            allowed=self.algorithms,
            clock=clock,
            cooldown=refresh_cooldown,
            max_age=max_key_age,
        )
        # Lenient on unregistered header parameters (other servers add their own); joserfc still enforces "crit".
        self._registry = jws.JWSRegistry(algorithms=list(self.algorithms), strict_check_header=False)

    async def validate(self, token: str) -> Principal:
        """The principal of a valid token; :class:`InvalidToken` otherwise, :class:`ValidatorUnavailable` when no
        key can be had for it while the authorization server is unreachable."""
        try:
            obj = jws.extract_compact(token.encode("ascii"), registry=self._registry)
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise InvalidToken("the token is not a well-formed JWT") from None
        header = obj.protected
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:  # a list or object would not even hash
            raise InvalidToken("the token's signing algorithm is not accepted")
        kid = header.get("kid")
        keys = self.keys.keys.candidates(kid, alg)
        if not keys:
            await self._fetch_keys_for(kid, alg)
            keys = self.keys.keys.candidates(kid, alg)
            if not keys:
                raise InvalidToken("the token is signed with an unknown key")
        else:
            self.keys.refresh_if_stale()
        if not any(self._verifies(obj, key) for key in keys):
            raise InvalidToken("the token's signature does not verify")
        if self.required_typ is not None:
            typ = header.get("typ")
            if not isinstance(typ, str) or _normalised_typ(typ) not in self.required_typ:
                raise InvalidToken("the token's type is not accepted")
        try:
            claims = json.loads(obj.payload)
        except ValueError:
            raise InvalidToken("the token's claims are not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the token's claims are not a JSON object")
        self._check_claims(claims)
        return Principal.from_claims(claims, token)

    def _verifies(self, obj: jws.CompactSignature, key: VerificationKey) -> bool:
        try:
            return jws.validate_compact(obj, key, registry=self._registry)
        except (JoseError, ValueError, TypeError):
            return False

    async def _fetch_keys_for(self, kid: object, alg: str) -> None:
        refreshed = await self.keys.refresh_for_unknown_key(kid, alg)
        if not refreshed and self.keys.last_error is not None:
            # We could not ask: refusing the token would blame the caller for our outage.
            raise ValidatorUnavailable(f"signing keys of {self.issuer} are unavailable: {self.keys.last_error}")

    def _check_claims(self, claims: dict[str, object]) -> None:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token is from another issuer")
        aud = claims.get("aud")
        if isinstance(aud, str):
            if aud not in self.audiences:
                raise InvalidToken("the token is not meant for this audience")
        elif not isinstance(aud, list) or self.audiences.isdisjoint(a for a in aud if isinstance(a, str)):
            raise InvalidToken("the token is not meant for this audience")
        now = self._clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise InvalidToken("the token has no expiry")
        if now - self.leeway >= exp:
            raise InvalidToken("the token has expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if not isinstance(nbf, int | float) or isinstance(nbf, bool):
                raise InvalidToken("the token's nbf is not a number")
            if now + self.leeway < nbf:
                raise InvalidToken("the token is not valid yet")

    async def refresh_keys(self) -> bool:
        """Fetch the keys now (at startup, say); False when the authorization server could not be reached."""
        return await self.keys.refresh()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
