"""The authorization server goes down while user-service needs to exchange: a clear 503 page, not a trace."""

from __future__ import annotations

import httpx
import pytest
from tests.demo.conftest import new_system
from tests.demo.support import USER_SERVICE_CLIENT, client_credentials_token, logged_in_check

from tokensmith.demo.html_scrape import element_text


async def test_the_client_app_shows_503_when_the_exchange_cannot_reach_the_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    async with new_system(tmp_path_factory.mktemp("as-down")) as system:
        check = await logged_in_check(system)
        try:
            # Let user-service fetch the signing keys first (with a token of its own, so that nothing is cached
            # for the user's token): it can then still validate the user's token once the server is gone.
            warm_up = await client_credentials_token(system, USER_SERVICE_CLIENT)
            async with httpx.AsyncClient(trust_env=False) as http:
                warmed = await http.get(
                    system.topology.user_service_url + "/user/message", headers={"Authorization": f"Bearer {warm_up}"}
                )
            assert warmed.status_code == 200, warmed.text

            await system.stop_service("authorization server")

            page = await check.http.get(system.topology.client_url + "/api/user/message")
            assert page.status_code == 503
            detail = element_text(page.text, "error-detail") or ""
            assert "authorization server is unavailable" in detail
            assert "Traceback" not in page.text

            # user-service itself answers 503 with RFC 6749-style JSON.
            async with httpx.AsyncClient(trust_env=False) as http:
                direct = await http.get(
                    system.topology.user_service_url + "/user/message",
                    params={"mode": "delegation"},
                    headers={"Authorization": f"Bearer {warm_up}"},
                )
            assert direct.status_code == 503
            assert direct.json()["error"] == "temporarily_unavailable"
        finally:
            await check.aclose()
