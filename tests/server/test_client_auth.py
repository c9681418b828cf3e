"""Client authentication (RFC 6749 2.3): one method per request, one answer for every failure."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from tests.server.configs import (
    PLAIN_CLIENT,
    PLAIN_SECRET,
    SERVICE_CLIENT,
    SERVICE_SECRET,
    SPA_CLIENT,
    WEB_CLIENT,
    WEB_SECRET,
    server_config,
)
from tests.server.protocol import form

from tokensmith.errors import OAuthError
from tokensmith.server.core.client_auth import authenticate_client, parse_basic_credentials
from tokensmith.server.core.passwords import SecretVerifier

CONFIG = server_config()


def basic(client_id: str, secret: str, *, encode: bool = True) -> str:
    if encode:
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def authenticate(authorization: str | None, **params: str) -> str:
    client = await authenticate_client(authorization, form(**params), CONFIG, SecretVerifier())
    return f"{client.client_id}/{client.method}"


async def test_basic_decodes_form_encoded_id_and_secret() -> None:
    # WEB_SECRET has a space, a colon, a slash and a plus: all must survive RFC 6749 2.3.1 encoding.
    assert await authenticate(basic(WEB_CLIENT, WEB_SECRET)) == f"{WEB_CLIENT}/client_secret_basic"


async def test_post_bcrypt_and_public() -> None:
    assert await authenticate(None, client_id=SERVICE_CLIENT, client_secret=SERVICE_SECRET) == (
        f"{SERVICE_CLIENT}/client_secret_post"
    )
    assert await authenticate(None, client_id=SPA_CLIENT) == f"{SPA_CLIENT}/none"


@pytest.mark.parametrize(
    ("authorization", "params"),
    [
        (None, {}),
        (basic(WEB_CLIENT, "wrong"), {}),
        (basic("nobody", "x"), {}),
        (None, {"client_id": PLAIN_CLIENT, "client_secret": "wrong"}),
        (None, {"client_id": WEB_CLIENT, "client_secret": WEB_SECRET}),  # post not registered for web
        (basic(PLAIN_CLIENT, PLAIN_SECRET), {}),  # basic not registered for plain
        (None, {"client_id": WEB_CLIENT}),  # a confidential client cannot act as public
        ("Bearer abc", {}),
        ("Basic !!!not-base64", {}),
        ("Basic " + base64.b64encode(b"no-colon").decode(), {}),
        ("Basic d2Vi\u00e9OnNlY3JldA==", {}),  # a header byte outside ASCII (Starlette decodes it as Latin-1)
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), {}),  # not UTF-8 once decoded
    ],
)
async def test_failures_are_invalid_client_401(authorization: str | None, params: dict[str, str]) -> None:
    with pytest.raises(OAuthError) as caught:
        await authenticate(authorization, **params)
    assert caught.value.error == "invalid_client"
    assert caught.value.status_code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "params",
    [
        {"client_secret": WEB_SECRET},
        {"client_id": "someone-else"},
    ],
)
async def test_two_methods_or_two_identities_are_invalid_request(params: dict[str, str]) -> None:
    with pytest.raises(OAuthError) as caught:
        await authenticate(basic(WEB_CLIENT, WEB_SECRET), **params)
    assert caught.value.error == "invalid_request"


async def test_secret_without_client_id_is_invalid_request() -> None:
    with pytest.raises(OAuthError) as caught:
        await authenticate(None, client_secret="x")
    assert caught.value.error == "invalid_request"


def test_basic_parsing_unquotes_plus_as_space() -> None:
    assert parse_basic_credentials(basic("a b", "c+d", encode=False)) == ("a b", "c d")
