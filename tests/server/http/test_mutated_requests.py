"""Valid requests with one field made hostile at a time (seeded, so a failure repeats): whatever the field, the answer
is the protocol's (never a 5xx), and an error is RFC 6749 5.2 JSON whose error_description keeps to its characters."""

from __future__ import annotations

import random
import re
from urllib.parse import urlencode

import httpx
from tests.server.configs import SERVICE_CLIENT, SERVICE_SECRET, WEB_CLIENT, WEB_REDIRECT

HOSTILE = [
    "",
    " ",
    "\t",
    "a" * 20_000,
    "é" * 100,
    "\U0001f642",
    "\x00",
    "\u202e",
    "%00",
    "+",
    "null",
    "[]",
    '{"a":' * 300,
    "1e309",
    "-1",
    "9" * 400,
    "http://",
    "urn:",
    "https://x.example/#f",
    "../../etc/passwd",
    "<script>",
    "' OR 1=1 --",
    '"\\',
    "\r\n",
    "openid " * 500,
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "a.b.c",
]
TEMPLATES: list[tuple[str, dict[str, str]]] = [
    ("/oauth2/token", {"grant_type": "client_credentials", "scope": "reports.read", "resource": "https://a.example"}),
    ("/oauth2/token", {"grant_type": "refresh_token", "refresh_token": "x" * 43, "scope": "reports.read"}),
    (
        "/oauth2/token",
        {"grant_type": "authorization_code", "code": "x" * 43, "redirect_uri": WEB_REDIRECT, "code_verifier": "v" * 43},
    ),
    (
        "/oauth2/token",
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": "a.b.c",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "audience": "x",
        },
    ),
    ("/oauth2/introspect", {"token": "a.b.c", "token_type_hint": "access_token"}),
    ("/oauth2/revoke", {"token": "x" * 43, "token_type_hint": "refresh_token"}),
]
RFC_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,500}")


async def test_one_hostile_field_never_breaks_an_endpoint(http: httpx.AsyncClient) -> None:
    rnd = random.Random(8707)
    for _ in range(300):
        path, template = rnd.choice(TEMPLATES)
        items = list(template.items())
        where = rnd.randrange(len(items) + 2)
        if where < len(items):
            items[where] = (items[where][0], rnd.choice(HOSTILE))
        elif where == len(items):
            items.append(rnd.choice(items))  # a repeated parameter
        else:
            items.append((rnd.choice(["client_id", "client_secret", "assertion", "dpop_jkt"]), rnd.choice(HOSTILE)))
        response = await http.post(
            path,
            content=urlencode(items),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(SERVICE_CLIENT, SERVICE_SECRET),
        )
        context = (path, items, response.text[:300])
        assert response.status_code < 500, context
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body["error"], str), context
            assert RFC_DESCRIPTION.fullmatch(body["error_description"]), context


async def test_one_hostile_authorization_parameter_never_breaks_the_endpoint(http: httpx.AsyncClient) -> None:
    rnd = random.Random(6749)
    base = {
        "response_type": "code",
        "client_id": WEB_CLIENT,
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid",
        "state": "s",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
        "resource": "https://a.example",
    }
    for _ in range(150):
        params = dict(base)
        params[rnd.choice(list(params))] = rnd.choice(HOSTILE)
        response = await http.get("/oauth2/authorize", params=params)
        assert response.status_code < 500, (params, response.text[:300])
