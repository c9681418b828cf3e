"""Resource-server validation, in process: tokensmith.resource against joserfc's bare verify and claim checks.

Both validate the same access token with keys already in memory (a resource server's steady state: the JWKS is
cached), checking signature, ``iss``, ``aud``, ``exp`` and ``nbf``. Each is timed in a tight loop for a fixed
time, alternating rounds; the figure is the median of the rounds' validations per second.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from bench import signing
from tokensmith.resource import TokenValidator

ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "message-service"
BARE = "joserfc (bare)"
TOKENSMITH = "tokensmith"

Validate = Callable[[str], Awaitable[Any]]


def bare_validator(keys: KeySet, alg: str) -> Validate:
    """What a careful hand-written resource server does with joserfc alone."""
    registry = jwt.JWTClaimsRegistry(
        leeway=30,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )

    async def validate(token: str) -> Any:
        decoded = jwt.decode(token, keys, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded.claims

    return validate


def in_process_authorization_server(jwks: dict[str, Any]) -> httpx.AsyncClient:
    """Discovery and JWKS answered in process: the keys are fetched once, as a resource server does at start."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jwks"):
            return httpx.Response(200, json=jwks)
        return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def tokensmith_validator(alg: str, http: httpx.AsyncClient) -> Validate:
    """tokensmith.resource as a service configures it, with its keys already fetched."""
    validator = TokenValidator(issuer=ISSUER, audience=AUDIENCE, algorithms=[alg], http=http)
    if not await validator.refresh_keys():
        raise RuntimeError("tokensmith.resource could not load the benchmark's keys")
    return validator.validate


async def _rate(validate: Validate, token: str, seconds: float) -> float:
    await validate(token)  # fail loudly before timing anything
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    now = started
    while now < deadline:
        for _ in range(50):
            await validate(token)
        count += 50
        now = time.perf_counter()
    return count / (now - started)


async def _measure_alg(alg: str, seconds: float, rounds: int) -> list[dict[str, Any]]:
    key = signing.generate_key(alg)
    token = signing.user_token(key, issuer=ISSUER, audience=AUDIENCE)
    jwks = {"keys": [key.as_dict(private=False)]}
    http = in_process_authorization_server(jwks)
    implementations: dict[str, Validate] = {
        BARE: bare_validator(KeySet.import_key_set(jwks), alg),  # type: ignore[arg-type]
        TOKENSMITH: await tokensmith_validator(alg, http),
    }
    rates: dict[str, list[float]] = {name: [] for name in implementations}
    names = list(implementations)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(await _rate(implementations[name], token, seconds))
    await http.aclose()
    return [
        {"alg": alg, "implementation": name, "ops": round(statistics.median(values), 1), "rounds": values}
        for name, values in rates.items()
    ]


def measure(algorithms: Sequence[str], *, seconds: float, rounds: int) -> list[dict[str, Any]]:
    print("bench: measuring resource-server validation in process", flush=True)
    results: list[dict[str, Any]] = []
    for alg in algorithms:
        results.extend(asyncio.run(_measure_alg(alg, seconds, rounds)))
    for entry in results:
        print(f"bench:   validation {entry['alg']} {entry['implementation']:<16} {entry['ops']:>8.0f} /s", flush=True)
    return results
