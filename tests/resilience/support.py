"""What the fault and load tests share: the server's configuration, a user's token, a bounded load of
client-credentials grants and token exchanges, and the report each test prints of what it measured.

Every load loop ends by itself: at its deadline, at ``max_requests``, or when told to stop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tests.server.browser import Browser, basic_auth
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, config_data
from tests.server.exchange.http_support import ARTICLE_CLIENT

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE
from tokensmith.server.key_encryption import new_key_text

# The soak's length: `make resilience` sets 600 (ten minutes); CI and a bare pytest run take the short form.
SOAK_SECONDS = float(os.environ.get("RESILIENCE_SOAK_SECONDS", "30"))
REPORT_ENV = "RESILIENCE_REPORT"
EXCHANGER = basic_auth("message-service", "token")
CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "client_id": SERVICE_CLIENT, "client_secret": SERVICE_SECRET}
LOOSE_LOGIN = {"max-failures-per-user-and-address": 1000, "max-failures-per-address": 1000, "max-backoff": "0s"}


def report(test: str, **figures: Any) -> None:
    """Print what a test measured (``make resilience`` runs pytest with -s), and append it to the JSON-lines file
    ``$RESILIENCE_REPORT`` names, if any."""
    text = "  ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in figures.items()
    )
    print(f"\nRESILIENCE {test}: {text}", flush=True)
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": test, **figures}, default=str) + "\n")


def server_data(database_url: str, **overrides: Any) -> dict[str, Any]:
    """The test server's configuration as YAML holds it: the shared clients, users and the article's exchanger."""
    data = config_data(login=LOOSE_LOGIN, **overrides)
    data["clients"]["message-service"] = ARTICLE_CLIENT
    data["database-url"] = database_url
    if not database_url.startswith("sqlite"):  # PostgreSQL: every replica needs the same key-encryption key
        data["keys"] = {**data.get("keys", {}), "encryption-key": new_key_text()}
    return data


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the tests compare what they were handed with what the server kept)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    value: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return value


async def user_tokens(base_url: str) -> dict[str, Any]:
    """alice signs in at the web client (authorization code + PKCE): the token response."""
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30) as http:
        return await Browser(http).tokens()


@dataclass
class RenewedUserToken:
    """A user's access token renewed through its refresh token, for load that outlasts the token's lifetime."""

    access_token: str
    refresh_token: str

    def __call__(self) -> str:
        return self.access_token

    async def renew_until(self, base_url: str, stop: asyncio.Event, every: float) -> int:
        """Refresh every ``every`` seconds until ``stop``; return how many times."""
        renewed = 0
        async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
            while True:
                try:
                    await asyncio.wait_for(stop.wait(), every)
                    return renewed
                except TimeoutError:
                    pass
                form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
                response = await http.post("/oauth2/token", data=form, headers=basic_auth())
                assert response.status_code == 200, response.text
                self.access_token = response.json()["access_token"]
                self.refresh_token = response.json()["refresh_token"]
                renewed += 1


def exchange_form(subject_token: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "scope": "message.read",
    }


@dataclass
class Load:
    """What a load run saw: statuses, tokens handed out, and when each answer came (seconds from the start)."""

    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    client_credentials_tokens: list[str] = field(default_factory=list)
    exchanged_tokens: list[str] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # status 0: a transport error
    latencies: list[float] = field(default_factory=list)
    bodies: dict[int, str] = field(default_factory=dict)  # one body per non-200 status
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def run_load(
    base_url: str,
    subject_token: str | Callable[[], str],
    *,
    workers: int,
    seconds: float,
    max_requests: int = 1_000_000,
    stop: asyncio.Event | None = None,
    rate: float | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Load:
    """``workers`` concurrent clients alternating a client-credentials grant and a token exchange, for at most
    ``seconds`` and ``max_requests``, or until ``stop`` is set. ``rate`` (requests per second, all workers
    together) paces them; without it each sends its next request as soon as the last is answered.
    ``subject_token`` is the user's token the exchanges present, or a function giving the current one."""
    subject = subject_token if callable(subject_token) else (lambda: subject_token)
    load = Load()
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + seconds
    issued = 0
    interval = workers / rate if rate else 0.0

    async def worker(number: int) -> None:
        nonlocal issued
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=15, limits=limits) as http:
            next_at = start + interval * number / workers
            turn = number
            while loop.time() < deadline and issued < max_requests and not (stop and stop.is_set()):
                if interval:
                    await asyncio.sleep(max(0.0, next_at - loop.time()))
                    next_at += interval
                issued += 1
                turn += 1
                began = loop.time()
                try:
                    if turn % 2:
                        response = await http.post("/oauth2/token", data=CLIENT_CREDENTIALS)
                    else:
                        response = await http.post("/oauth2/token", data=exchange_form(subject()), headers=EXCHANGER)
                except httpx.TransportError:
                    load.transport_errors += 1
                    load.timeline.append((loop.time() - start, 0))
                    await asyncio.sleep(0.05)
                    continue
                load.latencies.append(loop.time() - began)
                load.statuses[response.status_code] += 1
                load.timeline.append((loop.time() - start, response.status_code))
                if response.status_code == 200:
                    token = response.json()["access_token"]
                    (load.client_credentials_tokens if turn % 2 else load.exchanged_tokens).append(token)
                    if on_token:
                        on_token(token)
                else:
                    load.bodies.setdefault(response.status_code, response.text[:300])

    await asyncio.gather(*(worker(n) for n in range(workers)))
    load.seconds = loop.time() - start
    return load


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    variance = sum((t - mean_t) ** 2 for t, _ in samples)
    if variance == 0:
        return 0.0
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return covariance / variance * 60
