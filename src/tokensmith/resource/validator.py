"""Bearer JWT validation for a resource server, against any standards-compliant authorization server.

The hot path (a token signed by a key already held) is: one parse (:func:`tokensmith.jose.parse`), one dict
lookup for the key, joserfc's signature check, a handful of comparisons. No I/O, no key parsing, no per-call
registry: its cost stays close to joserfc's own verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx

from tokensmith import jose
from tokensmith.resource.errors import InvalidToken, ValidatorUnavailable
from tokensmith.resource.principal import Principal

Clock = Callable[[], float]


def _normalised_typ(value: str) -> str:
    # RFC 7515 4.1.9: "application/" may be omitted and media types compare case-insensitively.
    lowered = value.lower()
    return lowered[len("application/") :] if lowered.startswith("application/") else lowered


class TokenValidator:
    """Validates JWT access tokens: signature, ``iss``, ``aud``, ``exp``/``nbf`` (with ``leeway``), optional ``typ``.

    ``algorithms`` is an allow-list of asymmetric algorithms; ``none`` and HMAC algorithms are refused at
    construction (a JWKS holds public keys: an HS256 token "signed" with one is an attack). ``required_typ``
    (for example ``"at+jwt"`` per RFC 9068, or ``("at+jwt", "jwt")``) is checked when given. The issuer's keys
    are a :class:`tokensmith.jose.RemoteKeySet` (``keys``): refetched on an unknown ``kid`` at most once per
    ``refresh_cooldown``, refreshed in the background after ``max_key_age``, kept while the issuer is down.
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
        allowed = jose.check_algorithms(algorithms)
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not audiences:
            raise ValueError("configure at least one audience: a token for another service must not be accepted")
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        self.algorithms = allowed
        self.leeway = leeway
        if required_typ is None:
            self.required_typ: frozenset[str] | None = None
        else:
            typs = (required_typ,) if isinstance(required_typ, str) else tuple(required_typ)
            self.required_typ = frozenset(_normalised_typ(t) for t in typs)
        self._clock = clock
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self.keys = jose.RemoteKeySet(
            http=self._http,
            algorithms=allowed,
            jwks_uri=jwks_uri,
            issuer=issuer,
            max_age=max_key_age,
            cooldown=refresh_cooldown,
            timeout=timeout,
            clock=clock,
        )

    async def validate(self, token: str) -> Principal:
        """The principal of a valid token; :class:`InvalidToken` otherwise, :class:`ValidatorUnavailable` when no
        key can be had for it while the authorization server is unreachable."""
        try:
            # Lenient on unregistered header parameters: other servers add their own.
            parsed = jose.parse(token, strict_header=False)
            jose.verify(parsed, await self.keys.keys_for(parsed))
        except jose.KeysUnavailable as exc:
            # We could not ask: refusing the token would blame the caller for our outage.
            raise ValidatorUnavailable(f"signing keys unavailable: {exc}") from None
        except jose.MalformedJWT:
            raise InvalidToken("the token is not a well-formed JWT") from None
        except jose.UnacceptableJWT:
            raise InvalidToken("the token's header or signing algorithm is not accepted") from None
        except jose.UnknownKey:
            raise InvalidToken("the token is signed with an unknown key") from None
        except jose.InvalidJWT:
            raise InvalidToken("the token's signature does not verify") from None
        if self.required_typ is not None:
            typ = parsed.header.get("typ")
            if not isinstance(typ, str) or _normalised_typ(typ) not in self.required_typ:
                raise InvalidToken("the token's type is not accepted")
        self._check_claims(parsed.claims)
        return Principal.from_claims(parsed.claims, token)

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
        await self.keys.aclose()
        if self._owns_http:
            await self._http.aclose()
