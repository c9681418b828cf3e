"""The FastAPI application both of the demo's resource servers (user-service, message-service) are built on."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from tokensmith.demo.service_errors import install_error_handlers


def resource_server_app(title: str, http: httpx.AsyncClient) -> FastAPI:
    """An app with no documentation pages that answers errors as RFC 6749/6750 JSON and closes ``http`` on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    return app
