"""DPoP-bound access tokens at a resource server (RFC 9449 7): ``Authorization: DPoP <token>`` with a ``DPoP`` proof.

:class:`DPoPChecker` holds what a resource server needs besides its :class:`TokenVerifier`: the proof algorithms,
the ``iat`` window, a replay cache (:class:`ReplayCache`; :class:`MemoryReplayCache` by default, a shared one for
several replicas), optional server nonces, and the external base URL the clients see when the app runs behind a
proxy. :func:`authenticate` is the one decision the middleware and the FastAPI dependencies share, per route mode:

* ``"off"``: bearer tokens only (a DPoP-bound token sent as Bearer is still refused: it must not work for whoever
  copied it);
* ``"allowed"``: bearer tokens and DPoP-bound tokens with their proofs;
* ``"required"``: DPoP-bound tokens with their proofs only.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol

from tokensmith import jose
from tokensmith.resource.bearer import TokenVerifier, authorization_credentials
from tokensmith.resource.errors import DPoPProofError, InvalidToken, MissingToken, UseDPoPNonce
from tokensmith.resource.principal import Principal

DPoPMode = Literal["required", "allowed", "off"]
DPOP_MODES: tuple[DPoPMode, ...] = ("required", "allowed", "off")


class ReplayCache(Protocol):
    """Where seen proofs are remembered: ``use`` records ``key`` until ``expires_at`` (seconds since the epoch) and
    answers False when it was recorded before (a replay). A cache shared by replicas must decide atomically."""

    async def use(self, key: str, expires_at: float) -> bool: ...


class MemoryReplayCache:
    """A replay cache in this process's memory, holding at most ``max_entries`` proofs (the oldest go first; a
    proof older than the checker's ``max_age`` is refused anyway). Several replicas need a shared cache."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    async def use(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        while self._entries:
            oldest, expiry = next(iter(self._entries.items()))
            if expiry > now and len(self._entries) < self._max:
                break
            del self._entries[oldest]
        if key in self._entries:
            return False
        self._entries[key] = expires_at
        return True


def bound_jkt(claims: Mapping[str, object]) -> str | None:
    """The thumbprint a token is bound to (``cnf.jkt``), or None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None


class DPoPChecker:
    """Checks the DPoP proofs of requests to this resource server.

    ``external_base_url`` (``https://api.example.com`` or ``https://example.com/api``) is what clients put before
    the app's paths in ``htu`` when a proxy stands in front of the app; without it the URI is the one the app
    sees (scheme, ``Host`` header, root path). ``nonces`` (a :class:`tokensmith.jose.DPoPNonceSource`) makes
    proofs carry a nonce this server handed out (``use_dpop_nonce`` and a ``DPoP-Nonce`` header otherwise).
    """

    def __init__(
        self,
        *,
        algorithms: Sequence[str] = ("ES256", "RS256", "PS256", "EdDSA"),
        max_age: float = 60.0,
        clock_skew: float = 5.0,
        replay_cache: ReplayCache | None = None,
        nonces: jose.DPoPNonceSource | None = None,
        external_base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithms = jose.check_algorithms(algorithms)
        self.max_age = max_age
        self.clock_skew = clock_skew
        self.replay_cache = replay_cache if replay_cache is not None else MemoryReplayCache(clock=clock)
        self.nonces = nonces
        if external_base_url is not None:
            jose.normalize_htu(external_base_url)  # ValueError unless an absolute http(s) URL
        self.external_base_url = external_base_url.rstrip("/") if external_base_url else None
        self._clock = clock

    @property
    def algs(self) -> str:
        """The ``algs`` of the ``WWW-Authenticate: DPoP`` challenge."""
        return " ".join(sorted(self.algorithms))

    def request_uri(self, *, scheme: str, host: str | None, root_path: str, path: str) -> str:
        """The URI a proof for this request must name in ``htu``."""
        if self.external_base_url is not None:
            return self.external_base_url + path
        return f"{scheme}://{host or 'localhost'}{root_path}{path}"

    async def check(self, proofs: Sequence[str], *, method: str, uri: str, access_token: str, jkt: str) -> None:
        """Accept the request's ``DPoP`` header values as the proof for ``access_token`` bound to ``jkt``; raises
        :class:`DPoPProofError`, :class:`UseDPoPNonce` or :class:`InvalidToken` (another key)."""
        if len(proofs) != 1:
            raise DPoPProofError("send exactly one DPoP header with a DPoP-bound token")
        now = self._clock()
        try:
            proof = jose.check_proof(
                proofs[0],
                method=method,
                uri=uri,
                algorithms=self.algorithms,
                now=now,
                max_age=self.max_age,
                clock_skew=self.clock_skew,
                access_token=access_token,
            )
        except jose.InvalidDPoPProof as exc:
            raise DPoPProofError(str(exc)) from None
        if proof.jkt != jkt:
            raise InvalidToken("the access token is bound to another key than the DPoP proof's")
        if self.nonces is not None and (proof.nonce is None or not self.nonces.accepts(proof.nonce)):
            raise UseDPoPNonce("this resource needs a DPoP proof with the nonce in DPoP-Nonce", self.nonces.current())
        key = hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).hexdigest()
        if not await self.replay_cache.use(key, max(proof.iat, now) + self.max_age):
            raise DPoPProofError("the DPoP proof was already used ('jti' replayed)")


async def authenticate(
    verifier: TokenVerifier,
    checker: DPoPChecker | None,
    mode: DPoPMode,
    *,
    authorization: str | None,
    proofs: Sequence[str],
    method: str,
    uri: Callable[[DPoPChecker], str],
) -> Principal:
    """The principal of a request under ``mode``, or the :class:`BearerTokenError` to answer with. ``uri`` gives
    the request's URI as the checker sees it (asked only for a DPoP request)."""
    if mode != "off" and checker is None:
        raise ValueError(f'dpop="{mode}" needs a DPoPChecker')
    scheme, token = authorization_credentials(authorization, dpop=checker is not None and mode != "off")
    if scheme == "bearer" and mode == "required":
        raise MissingToken("this resource needs a DPoP-bound token (Authorization: DPoP) with a DPoP proof")
    principal = await verifier.validate(token)
    jkt = bound_jkt(principal.claims)
    if scheme == "bearer":
        if jkt is not None:
            raise InvalidToken("the token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof")
        return principal
    if jkt is None:
        raise InvalidToken("the token is not DPoP-bound: send it as Authorization: Bearer")
    if checker is None:  # authorization_credentials() answers "dpop" only with a checker
        raise MissingToken("this resource needs a bearer token")
    await checker.check(proofs, method=method, uri=uri(checker), access_token=token, jkt=jkt)
    return principal
