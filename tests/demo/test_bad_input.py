"""Bad input to the demo: wrong password, and bearer tokens the resource servers must refuse (RFC 6750 3.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from tests.demo.support import (
    SCOPE_TESTER,
    USER_SERVICE_CLIENT,
    client_credentials_token,
    expired_token,
)

from tokensmith.demo.check import FlowCheck
from tokensmith.demo.html_scrape import element_text, login_form
from tokensmith.demo.runner import DemoSystem


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def _challenge(response: httpx.Response) -> str:
    return response.headers.get("www-authenticate", "")


async def test_a_wrong_password_is_said_and_gives_no_token(demo_system: DemoSystem) -> None:
    check = FlowCheck(demo_system.topology, password="wrong")
    try:
        await check.open_client_app()
        await check.reach_login_page()
        form, page = check.form, check.login_page
        assert form is not None
        assert page is not None
        fields = {**form.fields, "username": "baeldung", "password": "wrong"}
        response = await check.http.post(str(page.url.join(form.action)), data=fields)
        # The login page again, saying so; no redirect towards the client app's callback (no code, no token).
        assert not response.is_redirect
        assert login_form(response.text) is not None
        error = element_text(response.text, "login-error")
        assert error is not None
        assert "password" in error.lower() or "invalid" in error.lower()
        again = await check.http.get(demo_system.topology.client_url + "/")
        assert again.status_code == 302  # still not logged in at the client app
        assert again.headers["location"].startswith(demo_system.topology.issuer)
    finally:
        await check.aclose()


@pytest.mark.parametrize("service", ["user-service", "message-service"])
async def test_no_token_is_401_with_a_bare_bearer_challenge(
    demo_system: DemoSystem, http: httpx.AsyncClient, service: str
) -> None:
    url = _url(demo_system, service)
    response = await http.get(url)
    assert response.status_code == 401
    assert _challenge(response).startswith("Bearer")
    assert "error=" not in _challenge(response)  # RFC 6750 3.1: no error code when no credentials were sent
    assert response.json()["error"]


@pytest.mark.parametrize(("service", "scope"), [("user-service", "user.read"), ("message-service", "message.read")])
async def test_a_401_names_the_metadata_that_leads_to_the_authorization_server(
    demo_system: DemoSystem, http: httpx.AsyncClient, service: str, scope: str
) -> None:
    """RFC 9728: a client with no token follows resource_metadata to the issuer (how MCP clients find it)."""
    origin = _url(demo_system, service).rsplit("/", 2 if service == "user-service" else 1)[0]
    metadata_url = origin + "/.well-known/oauth-protected-resource"
    refused = await http.get(_url(demo_system, service))
    assert f'resource_metadata="{metadata_url}"' in _challenge(refused)
    document = (await http.get(metadata_url)).json()
    assert document["resource"] == origin
    assert document["authorization_servers"] == [demo_system.topology.issuer]
    assert document["scopes_supported"] == [scope]
    issuer_metadata = await http.get(demo_system.topology.issuer + "/.well-known/oauth-authorization-server")
    assert issuer_metadata.json()["issuer"] == demo_system.topology.issuer


@pytest.mark.parametrize("service", ["user-service", "message-service"])
async def test_a_malformed_token_is_401_invalid_token(
    demo_system: DemoSystem, http: httpx.AsyncClient, service: str
) -> None:
    response = await http.get(_url(demo_system, service), headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in _challenge(response)
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    ("service", "audience"), [("user-service", "user-service"), ("message-service", "message-service")]
)
async def test_an_expired_token_is_401_invalid_token(
    demo_system: DemoSystem, http: httpx.AsyncClient, service: str, audience: str
) -> None:
    token = await expired_token(demo_system, audience, ("message.read",))
    response = await http.get(_url(demo_system, service), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in _challenge(response)
    assert "expired" in response.json()["error_description"]


async def test_a_token_for_another_audience_is_401_at_message_service(
    demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    # user-service's own token: valid, from the right issuer, but its aud is user-service.
    token = await client_credentials_token(demo_system, USER_SERVICE_CLIENT)
    response = await http.get(_url(demo_system, "message-service"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in _challenge(response)
    assert "audience" in response.json()["error_description"]


async def test_a_token_for_another_audience_is_401_at_user_service(
    demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    token = await client_credentials_token(demo_system, SCOPE_TESTER)  # aud message-service
    response = await http.get(_url(demo_system, "user-service"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "audience" in response.json()["error_description"]


async def test_a_token_without_message_read_is_403_insufficient_scope(
    demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    token = await client_credentials_token(demo_system, SCOPE_TESTER)  # aud message-service, scope message.write
    response = await http.get(_url(demo_system, "message-service"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    challenge = _challenge(response)
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="message.read"' in challenge
    assert response.json()["error"] == "insufficient_scope"


async def test_an_unknown_mode_is_400_invalid_request(demo_system: DemoSystem, http: httpx.AsyncClient) -> None:
    token = await client_credentials_token(demo_system, USER_SERVICE_CLIENT)
    response = await http.get(
        _url(demo_system, "user-service"), params={"mode": "both"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_the_client_app_refuses_an_unknown_login_callback(
    demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    response = await http.get(
        demo_system.topology.client_url + "/login/oauth2/code/messaging-client-oidc",
        params={"code": "stolen", "state": "forged"},
    )
    assert response.status_code == 400
    assert element_text(response.text, "error-detail") is not None


async def test_the_client_app_refuses_a_logout_without_its_csrf_token(
    demo_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    response = await http.post(demo_system.topology.client_url + "/logout", data={"csrf_token": "guess"})
    assert response.status_code == 403


def _url(system: DemoSystem, service: str) -> str:
    if service == "user-service":
        return system.topology.user_service_url + "/user/message"
    return system.topology.message_service_url + "/message"


@pytest.mark.parametrize("service", ["user-service", "message-service"])
async def test_a_megabyte_authorization_header_is_refused_and_the_service_stays_up(
    demo_system: DemoSystem, http: httpx.AsyncClient, service: str
) -> None:
    """The resource servers are served like `tokensmith serve`: a request head is bounded as it arrives."""
    url = _url(demo_system, service)
    try:
        response = await http.get(url, headers={"Authorization": "Bearer " + "a" * 1_000_000})
    except httpx.TransportError:
        pass  # the server closed the connection on the oversized head: refused, too
    else:
        assert response.status_code == 431
    assert (await http.get(url)).status_code == 401  # still answering
