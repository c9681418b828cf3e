"""RS256 access tokens signed on the server's crypto threads, over real HTTP: many concurrent grants all get valid,
distinct tokens, and the threads stop with the server."""

from __future__ import annotations

import asyncio
import sys
import threading

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, server_config
from tests.support.server import running_server


def crypto_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("tokensmith-crypto") and t.is_alive()}


async def test_concurrent_rs256_grants_are_signed_on_crypto_threads_that_stop_with_the_server(
    default_switch_interval: float,
) -> None:
    before = crypto_threads()
    interval = default_switch_interval
    config = server_config(keys={"access-token-algorithm": "RS256", "crypto-threads": 2})
    async with running_server(config) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/oauth2/token",
                    data={"grant_type": "client_credentials", "scope": "reports.read"},
                    auth=(SERVICE_CLIENT, SERVICE_SECRET),
                )
                for _ in range(40)
            )
        )
        assert [r.status_code for r in responses] == [200] * 40
        during = crypto_threads() - before
        assert len(during) == 2  # the configured count, started by the first RSA signature
        assert sys.getswitchinterval() < interval  # shortened while they run (crypto_threads._SWITCH_INTERVAL)
        jwks = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
        tokens = [jwt.decode(r.json()["access_token"], jwks, algorithms=["RS256"]) for r in responses]
    assert all(t.header["alg"] == "RS256" and t.claims["aud"] == "report-api" for t in tokens)
    assert len({t.claims["jti"] for t in tokens}) == 40
    assert not during & crypto_threads()  # joined at shutdown
    assert sys.getswitchinterval() == interval  # and given back
