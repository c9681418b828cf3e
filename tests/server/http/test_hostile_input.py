"""Odd and hostile input on every endpoint: always an answer of the protocol (4xx), never a 500."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BODIES = [
    b"",
    b"%zz=%zz&grant_type=%ff",
    b"grant_type=authorization_code&code=\x00\x01&redirect_uri=%00",
    b"=&&&=&grant_type",
    b"token=" + b"A" * 5000 + b"&client_id=" + "é".encode(),
    b"client_id=reporting-service&client_secret=&grant_type=client_credentials",
    b"grant_type=refresh_token&refresh_token=" + b"." * 3000,
    b"grant_type=authorization_code&code=a.b.c&redirect_uri=http://x&code_verifier=" + b"~" * 200,
]
AUTHORIZATION: list[str | bytes | None] = [
    None,
    "Basic d2Vi\u00e9OnNlY3JldA==".encode("latin-1"),  # a header byte outside ASCII
    "Basic",
    "Basic " + "=" * 10,
    "Basic w6k6w6k=",  # base64 of "é:é"
    "Bearer a.b.c",
    "Digest username=x",
]
POST_PATHS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/login", "/oauth2/authorize", "/connect/logout"]


@pytest.mark.parametrize("path", POST_PATHS)
async def test_post_endpoints_never_fail(http: httpx.AsyncClient, path: str) -> None:
    for body in BODIES:
        for authorization in AUTHORIZATION:
            headers = dict(FORM)
            if authorization is not None:
                headers["Authorization"] = authorization
            response = await http.post(path, content=body, headers=headers)
            assert response.status_code < 500, (path, body[:60], authorization, response.text[:200])
            assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        "client_id=%ff",
        "client_id=messaging-client-oidc&redirect_uri=%zz",
        "client_id=messaging-client-oidc&client_id=spa",
        "response_type=code&" + "x=1&" * 500,
        "id_token_hint=a.b.c",
        "id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ],
)
async def test_get_endpoints_never_fail(http: httpx.AsyncClient, query: str) -> None:
    for path in ("/oauth2/authorize", "/connect/logout", "/userinfo", "/login"):
        response = await http.get(f"{path}?{query}", headers={"Authorization": "Bearer " + query[:100]})
        assert response.status_code < 500, (path, query, response.text[:200])


async def test_error_descriptions_keep_to_the_rfc_character_set(http: httpx.AsyncClient) -> None:
    # RFC 6749 5.2: error_description is %x20-21 / %x23-5B / %x5D-7E; what a client sent is quoted in it, bounded.
    hostile = 'x"\\\u00e9\u202e\u0001' + "y" * 3000
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": hostile},
        auth=(SERVICE_CLIENT, SERVICE_SECRET),
    )
    assert response.status_code == 400, response.text
    description = response.json()["error_description"]
    assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,500}", description), description
    assert "x'????yyy" in description  # the double quote kept as a single one, the other four replaced
    assert description.endswith("...")
