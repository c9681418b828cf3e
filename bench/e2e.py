"""The article's flow end to end: client -> user-service -> (token exchange) -> message-service.

Three processes on 127.0.0.1, as deployed: the authorization server (``tokensmith serve`` with the demo's
configuration), and the demo's user-service and message-service (built on tokensmith.resource and
tokensmith.client). wrk plays the client app: ``GET /user/message`` with a user's access token for user-service.

- *cached*: every request carries the same user token, so user-service exchanges it once and then reuses the
  exchanged token (its TokenExchanger cache), as it does for a user who clicks again;
- *uncached*: requests carry tokens from a pool twice the size of user-service's exchange cache, in turn, so every
  request misses the cache and costs a token exchange at the authorization server.

The user tokens are signed with the authorization server's own active key (read from its database), with the
claims the demo's login gives the user ``baeldung``: for user-service, each with its own ``jti``.
"""

from __future__ import annotations

import asyncio
import inspect
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import signing
from bench.e2e_service import topology
from bench.loadgen import LoadResult, Request, run_wrk
from bench.processes import RssSampler, Service, free_port
from bench.systems import REPO
from tokensmith.client.exchanger import TokenExchanger
from tokensmith.config.server import KeySettings
from tokensmith.demo.settings import load_server_config
from tokensmith.server.key_encryption import configured_encryption_key
from tokensmith.server.keys import open_private_key
from tokensmith.store import open_store

VARIANTS = ("cached", "uncached")


def pool_size() -> int:
    """Twice the number of exchanged tokens user-service's TokenExchanger keeps (tokensmith.client's default)."""
    return 2 * int(inspect.signature(TokenExchanger).parameters["cache_size"].default)


def _services(workdir: Path, alg: str) -> tuple[list[Service], str]:
    as_port, user_port, message_port = free_port(), free_port(), free_port()
    where = topology(as_port, user_port, message_port)
    database = workdir / f"e2e-{alg}.db"
    config = load_server_config(where, f"sqlite+aiosqlite:///{database}")
    data = config.model_dump(by_alias=True, mode="json", exclude_unset=True)
    data["port"] = as_port
    data["keys"] = {**data.get("keys", {}), "access-token-algorithm": alg}
    config_path = workdir / f"e2e-authorization-server-{alg}.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    tokensmith = str(Path(sys.executable).parent / "tokensmith")
    ports = [f"--as-port={as_port}", f"--user-port={user_port}", f"--message-port={message_port}"]

    def demo_service(service: str, port: int, ready_path: str) -> Service:
        # One of the demo's resource services, alone in its process (bench/e2e_service.py).
        return Service(
            f"e2e-{service}-{alg}",
            [sys.executable, "-m", "bench.e2e_service", service, *ports],
            port=port,
            ready_path=ready_path,
            log_path=workdir / f"e2e-{service}-{alg}.log",
            cwd=REPO,
        )

    services = [
        Service(
            f"e2e-authorization-server-{alg}",
            [tokensmith, "serve", f"--config={config_path}", "--log-level=warning"],
            port=as_port,
            ready_path="/.well-known/openid-configuration",
            log_path=workdir / f"e2e-authorization-server-{alg}.log",
            cwd=workdir,
        ),
        demo_service("message-service", message_port, "/message"),
        demo_service("user-service", user_port, "/user/message"),
    ]
    return services, f"sqlite+aiosqlite:///{database}"


async def _signing_key(database_url: str, alg: str) -> signing.SigningKey:
    store = open_store(database_url)
    try:
        records = [r for r in await store.list_signing_keys() if r.alg == alg and r.status == "active"]
    finally:
        await store.close()
    if not records:
        raise RuntimeError(f"the authorization server has no active {alg} key")
    return open_private_key(
        max(records, key=lambda r: r.created_at), configured_encryption_key(KeySettings(), database_url)
    )


def _user_tokens(key: signing.SigningKey, issuer: str, count: int) -> list[str]:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": "baeldung",
        "aud": "user-service",
        "client_id": "messaging-client",
        "scope": "openid profile user.read",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    return [signing.mint(key, claims | {"jti": uuid.uuid4().hex}) for _ in range(count)]


def measure(
    workdir: Path, *, algorithms: tuple[str, ...], connections: int, duration_s: float, rounds: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for alg in algorithms:
        results.extend(_measure_alg(workdir, alg, connections=connections, duration_s=duration_s, rounds=rounds))
    return results


def _measure_alg(workdir: Path, alg: str, *, connections: int, duration_s: float, rounds: int) -> list[dict[str, Any]]:
    print(f"bench: measuring the article's flow end to end ({alg})", flush=True)
    services, database_url = _services(workdir, alg)
    authorization_server, _, user_service = services
    runs: dict[str, list[LoadResult]] = {variant: [] for variant in VARIANTS}
    try:
        for service in services:
            service.start()
            service.wait_ready()
        issuer = topology(authorization_server.port, 0, 0).issuer
        tokens = _user_tokens(asyncio.run(_signing_key(database_url, alg)), issuer, pool_size())
        pool = workdir / f"e2e-tokens-{alg}.txt"
        pool.write_text("\n".join(tokens) + "\n")
        url = user_service.base_url + "/user/message"
        requests = {
            "cached": Request(url, method="GET", authorization=f"Bearer {tokens[0]}", expect=""),
            "uncached": Request(url, method="GET", expect="", tokens_file=str(pool)),
        }
        _check(url, tokens[0])
        for round_index in range(rounds):
            order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                with RssSampler(services):
                    result = run_wrk(requests[variant], connections=connections, duration_s=duration_s)
                runs[variant].append(result)
                print(
                    f"bench:   end-to-end {variant:<9} {alg} round {round_index + 1}: {result.rps:>8.0f} req/s  "
                    f"p50 {result.p50_ms:.1f} ms  p99 {result.p99_ms:.1f} ms  errors {result.error_count}",
                    flush=True,
                )
    finally:
        for service in reversed(services):
            service.stop()
    return [
        {
            "alg": alg,
            "variant": variant,
            "rounds": len(found),
            "rps": round(statistics.median(r.rps for r in found), 1),
            "p50_ms": round(statistics.median(r.p50_ms for r in found), 2),
            "p99_ms": round(statistics.median(r.p99_ms for r in found), 2),
            "errors": sum(r.error_count for r in found),
            "requests": sum(r.requests for r in found),
            # Peak over both variants: the services run through the whole flow measurement.
            "peak_rss_mb": {
                s.name.removeprefix("e2e-").removesuffix(f"-{alg}"): round(s.peak_rss / 2**20, 1) for s in services
            },
        }
        for variant, found in runs.items()
    ]


def _check(url: str, token: str) -> None:
    """One request through the whole chain, before any load: it must reach message-service's greeting."""
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"end-to-end: user-service answered {response.status_code}: {response.text[:300]}")
