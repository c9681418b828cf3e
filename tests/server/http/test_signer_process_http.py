"""RS256 access tokens signed by the server's signer process, over real HTTP: many concurrent grants all get valid,
distinct tokens, and the signer process stops with the server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, server_config
from tests.support.server import running_server


def signer_children() -> set[int]:
    """PIDs of this process's live children running the signer's program."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if stat[1] == str(os.getpid()) and stat[0] != "Z" and b"tokensmith.signer_child" in command:
            found.add(int(entry.name))
    return found


async def test_concurrent_rs256_grants_are_signed_by_a_signer_process_that_stops_with_the_server() -> None:
    before = signer_children()
    config = server_config(keys={"access-token-algorithm": "RS256", "signer-process": True})
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
        during = signer_children() - before
        assert len(during) == 1  # one signer, started by the first RSA signature
        jwks = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
        tokens = [jwt.decode(r.json()["access_token"], jwks, algorithms=["RS256"]) for r in responses]
    assert all(t.header["alg"] == "RS256" and t.claims["aud"] == "report-api" for t in tokens)
    assert len({t.claims["jti"] for t in tokens}) == 40
    assert not during & signer_children()  # stopped and reaped at shutdown


async def test_without_a_signer_process_rs256_grants_are_signed_in_the_server_process() -> None:
    before = signer_children()
    config = server_config(keys={"access-token-algorithm": "RS256", "signer-process": False})
    async with running_server(config) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "reports.read"},
            auth=(SERVICE_CLIENT, SERVICE_SECRET),
        )
        assert response.status_code == 200
        assert signer_children() == before
        jwks = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    assert jwt.decode(response.json()["access_token"], jwks, algorithms=["RS256"]).claims["aud"] == "report-api"
