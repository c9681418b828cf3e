"""Protected resource metadata (RFC 9728): the document, its URL, and ``resource_metadata`` in every challenge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.support.fake_issuer import FakeIssuer, serve

from tokensmith.resource import (
    BearerTokenMiddleware,
    DPoPChecker,
    InvalidToken,
    MissingToken,
    Principal,
    ProtectedResourceMetadata,
    TokenValidator,
    load_resource_server_settings,
)
from tokensmith.resource.fastapi import publish_resource_metadata, require_scopes

AS = "https://as.example.com"


# The model: what is refused, and where the document lives (RFC 9728 3.1).


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"),
        ("https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"),
        ("https://api.example.com:8443/mcp", "https://api.example.com:8443/.well-known/oauth-protected-resource/mcp"),
        ("https://api.example.com/a/b/", "https://api.example.com/.well-known/oauth-protected-resource/a/b"),
        ("http://localhost:8082", "http://localhost:8082/.well-known/oauth-protected-resource"),
    ],
)
def test_the_metadata_url_puts_the_well_known_prefix_before_the_resource_path(resource: str, url: str) -> None:
    assert ProtectedResourceMetadata(resource=resource).url == url


def test_a_resource_with_a_path_is_also_served_at_the_bare_well_known_path() -> None:
    metadata = ProtectedResourceMetadata(resource="https://api.example.com/mcp")
    assert metadata.paths() == ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource")
    assert ProtectedResourceMetadata(resource="https://api.example.com").paths() == (
        "/.well-known/oauth-protected-resource",
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"resource": "api.example.com"}, "resource must be an absolute https URL"),
        ({"resource": "ftp://api.example.com"}, "resource must be an absolute https URL"),
        ({"resource": "https://api.example.com/#top"}, "resource must not have a fragment"),
        ({"resource": "https://api.example.com/?tenant=a"}, "resource must not have a query"),
        (
            {"resource": "https://api.example.com", "authorization-servers": ["as.example.com"]},
            "each of authorization-servers",
        ),
        ({"resource": "https://api.example.com", "scopes-supported": ['a"b']}, "not a valid scope"),
        ({"resource": "https://api.example.com", "resource-documentation": "docs"}, "resource-documentation"),
        ({"resource": "https://api.example.com", "bearer-methods-supported": ["query"]}, "Extra inputs"),
        ({}, "Field required"),
    ],
)
def test_invalid_values_are_refused_saying_why(values: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ProtectedResourceMetadata.model_validate(values)


def test_the_document_lists_what_is_configured_and_the_header_method() -> None:
    metadata = ProtectedResourceMetadata.model_validate(
        {
            "resource": "https://api.example.com",
            "authorization-servers": f"{AS}, https://other.example.com",
            "scopes-supported": ["message.read", "message.write"],
            "resource-name": "Messages",
            "resource-documentation": "https://api.example.com/docs",
        }
    )
    assert metadata.document() == {
        "resource": "https://api.example.com",
        "authorization_servers": [AS, "https://other.example.com"],
        "scopes_supported": ["message.read", "message.write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Messages",
        "resource_documentation": "https://api.example.com/docs",
    }


def test_the_dpop_fields_follow_the_checker_and_the_mode() -> None:
    metadata = ProtectedResourceMetadata(resource="https://api.example.com")
    checker = DPoPChecker(algorithms=["ES256", "EdDSA"])
    assert "dpop_signing_alg_values_supported" not in metadata.document(checker, "off")
    allowed = metadata.document(checker, "allowed")
    assert allowed["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA"]
    assert allowed["dpop_bound_access_tokens_required"] is False
    assert metadata.document(checker, "required")["dpop_bound_access_tokens_required"] is True


def test_settings_read_the_metadata_and_default_its_authorization_server_to_the_issuer() -> None:
    settings = load_resource_server_settings(
        {
            "spring": {
                "security": {
                    "oauth2": {
                        "resourceserver": {
                            "jwt": {"issuer-uri": AS, "audiences": "message-service"},
                            "protected-resource-metadata": {
                                "resource": "https://messages.example.com",
                                "scopes-supported": "message.read",
                            },
                        }
                    }
                }
            }
        }
    )
    metadata = settings.protected_resource_metadata
    assert metadata is not None
    assert metadata.authorization_servers == (AS,)
    assert metadata.scopes_supported == ("message.read",)


def test_a_bad_metadata_setting_is_reported_with_its_key() -> None:
    with pytest.raises(ValueError, match=r"<mapping>: protected-resource-metadata.resource: .*must not have a query"):
        load_resource_server_settings(
            {
                "jwt": {"issuer-uri": AS, "audiences": "message-service"},
                "protected-resource-metadata": {"resource": "https://messages.example.com/?x=1"},
            }
        )


def test_every_challenge_names_the_metadata_url() -> None:
    url = "https://api.example.com/.well-known/oauth-protected-resource"
    assert MissingToken("no token").www_authenticate("api", resource_metadata=url) == (
        f'Bearer realm="api", resource_metadata="{url}"'
    )
    both = InvalidToken("expired").www_authenticate(dpop_algs="ES256", used_dpop=True, resource_metadata=url)
    assert both == (
        f'Bearer resource_metadata="{url}", '
        f'DPoP algs="ES256", error="invalid_token", error_description="expired", resource_metadata="{url}"'
    )


# Over HTTP: the middleware and the FastAPI dependencies.


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def middleware_app(issuer_url: str, resource: str, *, dpop: bool = False) -> Starlette:
    validator = TokenValidator(issuer=issuer_url, audience="user-service")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await validator.aclose()

    metadata = ProtectedResourceMetadata(resource=resource, authorization_servers=(issuer_url,))
    app = Starlette(routes=[Route("/mcp", hello)], lifespan=lifespan)
    app.add_middleware(
        BearerTokenMiddleware,
        validator=validator,
        metadata=metadata,
        dpop_checker=DPoPChecker(algorithms=["ES256"]) if dpop else None,
        dpop="required" if dpop else None,
    )
    return app


@pytest.fixture(scope="module")
def mcp_service(issuer_for_module: FakeIssuer) -> Iterator[str]:
    with serve(middleware_app(issuer_for_module.issuer, "https://mcp.example.com/mcp"), lifespan="on") as url:
        yield url


async def test_the_middleware_serves_the_metadata_without_a_token(
    issuer_for_module: FakeIssuer, mcp_service: str
) -> None:
    async with httpx.AsyncClient() as http:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            response = await http.get(mcp_service + path)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": [issuer_for_module.issuer],
                "bearer_methods_supported": ["header"],
            }
        head = await http.head(mcp_service + "/.well-known/oauth-protected-resource/mcp")
        assert head.status_code == 200
        assert head.content == b""
        post = await http.post(mcp_service + "/.well-known/oauth-protected-resource/mcp")
        assert post.status_code == 405
        assert post.json()["error"] == "invalid_request"


async def test_a_401_from_the_middleware_names_the_metadata(issuer_for_module: FakeIssuer, mcp_service: str) -> None:
    url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    async with httpx.AsyncClient() as http:
        missing = await http.get(mcp_service + "/mcp")
        invalid = await http.get(mcp_service + "/mcp", headers={"Authorization": "Bearer not-a-jwt"})
        good = await http.get(
            mcp_service + "/mcp",
            headers={"Authorization": f"Bearer {issuer_for_module.issue({'aud': 'user-service'})}"},
        )
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == f'Bearer resource_metadata="{url}"'
    assert invalid.status_code == 401
    assert invalid.headers["www-authenticate"].endswith(f', resource_metadata="{url}"')
    assert good.status_code == 200


async def test_a_dpop_only_resource_says_so_in_its_metadata(issuer_for_module: FakeIssuer) -> None:
    app = middleware_app(issuer_for_module.issuer, "https://api.example.com", dpop=True)
    with serve(app, lifespan="on") as service:
        async with httpx.AsyncClient() as http:
            document = (await http.get(service + "/.well-known/oauth-protected-resource")).json()
            refused = await http.get(service + "/mcp")
    assert document["dpop_signing_alg_values_supported"] == ["ES256"]
    assert document["dpop_bound_access_tokens_required"] is True
    assert refused.headers["www-authenticate"] == (
        'DPoP algs="ES256", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"'
    )


def fastapi_app(issuer_url: str) -> FastAPI:
    validator = TokenValidator(issuer=issuer_url, audience="message-service")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await validator.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.token_validator = validator
    metadata = ProtectedResourceMetadata(
        resource="http://localhost:8082", authorization_servers=[issuer_url], scopes_supported=["message.read"]
    )
    publish_resource_metadata(app, metadata, dpop_checker=DPoPChecker(), dpop="allowed")

    @app.get("/message")
    async def message(principal: Annotated[Principal, Depends(require_scopes("message.read"))]) -> str:
        return f"hello {principal.subject}"

    return app


async def test_fastapi_apps_publish_the_metadata_and_name_it_in_401_and_403(issuer_for_module: FakeIssuer) -> None:
    url = "http://localhost:8082/.well-known/oauth-protected-resource"
    with serve(fastapi_app(issuer_for_module.issuer), lifespan="on") as service:
        async with httpx.AsyncClient() as http:
            document = (await http.get(service + "/.well-known/oauth-protected-resource")).json()
            missing = await http.get(service + "/message")
            scopeless = issuer_for_module.issue({"aud": "message-service", "scope": "openid"})
            forbidden = await http.get(service + "/message", headers={"Authorization": f"Bearer {scopeless}"})
            allowed = issuer_for_module.issue({"aud": "message-service", "scope": "message.read"})
            ok = await http.get(service + "/message", headers={"Authorization": f"Bearer {allowed}"})
    assert document["resource"] == "http://localhost:8082"
    assert document["scopes_supported"] == ["message.read"]
    assert document["dpop_bound_access_tokens_required"] is False
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == f'Bearer resource_metadata="{url}"'
    assert forbidden.status_code == 403
    assert f'resource_metadata="{url}"' in forbidden.headers["www-authenticate"]
    assert ok.status_code == 200


def test_publishing_dpop_fields_needs_the_checker() -> None:
    with pytest.raises(ValueError, match="needs a dpop_checker"):
        publish_resource_metadata(
            FastAPI(), ProtectedResourceMetadata(resource="https://api.example.com"), dpop="required"
        )
