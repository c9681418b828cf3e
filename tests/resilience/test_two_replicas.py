"""Two replicas of ``tokensmith serve`` on one PostgreSQL database: an authorization code issued by one and redeemed
at the other cannot be replayed at either, one code raced at both is redeemed once, and a token revoked at one is
refused as a subject token by the other within ``tokens.revocation-refresh-interval``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.resilience.support import EXCHANGER, exchange_form, report, server_data
from tests.server.browser import Browser, basic_auth
from tests.server.configs import WEB_REDIRECT
from tests.server.protocol import VERIFIER
from tests.support.serve_process import serve_process
from tests.support.server import free_port

pytestmark = [pytest.mark.resilience, pytest.mark.postgres]

REVOCATION_REFRESH_SECONDS = 1.0
RACES = 10


def code_form(code: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT, "code_verifier": VERIFIER}


async def test_two_replicas_share_single_use_and_revocation(tmp_path: Path, own_database: str) -> None:
    # One issuer for both, as behind a load balancer: each replica is reached on its own port.
    port_a, port_b = free_port(), free_port()
    data = server_data(own_database, tokens={"revocation-refresh-interval": f"{REVOCATION_REFRESH_SECONDS:g}s"})
    issuer = f"http://127.0.0.1:{port_a}"
    with (
        serve_process(data, tmp_path, name="a", port=port_a, issuer=issuer) as a,
        serve_process(data, tmp_path, name="b", port=port_b, issuer=issuer) as b,
    ):
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=15, follow_redirects=False) as at_a,
            httpx.AsyncClient(base_url=b.url, timeout=15) as at_b,
        ):
            browser = Browser(at_a)
            code = (await browser.code_for())["code"]
            redeemed = await at_b.post("/oauth2/token", data=code_form(code), headers=basic_auth())
            assert redeemed.status_code == 200, redeemed.text
            replays = [
                await at_a.post("/oauth2/token", data=code_form(code), headers=basic_auth()),
                await at_b.post("/oauth2/token", data=code_form(code), headers=basic_auth()),
            ]
            race_wins = []
            for _ in range(RACES):
                raced = (await browser.code_for())["code"]
                answers = await asyncio.gather(
                    at_a.post("/oauth2/token", data=code_form(raced), headers=basic_auth()),
                    at_b.post("/oauth2/token", data=code_form(raced), headers=basic_auth()),
                )
                race_wins.append(sum(answer.status_code == 200 for answer in answers))

            # The replays above revoked what the first code gave (RFC 6749 4.1.2): a fresh grant for this part.
            fresh_code = (await browser.code_for())["code"]
            fresh = await at_b.post("/oauth2/token", data=code_form(fresh_code), headers=basic_auth())
            subject = fresh.json()["access_token"]
            before = await at_b.post("/oauth2/token", data=exchange_form(subject), headers=EXCHANGER)
            assert before.status_code == 200, before.text
            loop = asyncio.get_running_loop()
            revoked = await at_a.post("/oauth2/revoke", data={"token": subject}, headers=basic_auth())
            assert revoked.status_code == 200
            revoked_at = loop.time()
            while True:
                after = await at_b.post("/oauth2/token", data=exchange_form(subject), headers=EXCHANGER)
                if after.status_code != 200:
                    break
                assert loop.time() - revoked_at < REVOCATION_REFRESH_SECONDS + 5, "the other replica never refused it"
                await asyncio.sleep(0.02)
            honoured_after = loop.time() - revoked_at
    report(
        "two_replicas",
        code_replays_refused=sum(r.status_code == 400 for r in replays),
        raced_codes=RACES,
        raced_codes_redeemed_twice=sum(w > 1 for w in race_wins),
        revocation_refresh_interval_s=REVOCATION_REFRESH_SECONDS,
        revocation_honoured_by_other_after_s=honoured_after,
    )
    assert [r.json()["error"] for r in replays] == ["invalid_grant", "invalid_grant"]
    assert race_wins == [1] * RACES
    assert after.status_code == 400
    assert "revoked" in after.json()["error_description"]
    assert honoured_after <= REVOCATION_REFRESH_SECONDS + 0.5
