"""The authorization server as an ASGI app: routes to the endpoint modules, a lifespan that opens the store and
loads the keys, and error handlers that answer every failure with RFC 6749 error JSON (never a stack trace)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tokensmith.config.loader import load_config
from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.clock import Clock, utc_now
from tokensmith.server.core.passwords import SecretVerifier, UserPasswordChecker
from tokensmith.server.core.rate_limit import COUNTER_SECRET_PURPOSE, LoginThrottle
from tokensmith.server.core.wiring import build_context
from tokensmith.server.http.authorize import authorize_endpoint
from tokensmith.server.http.discovery import discovery_endpoint
from tokensmith.server.http.health import (
    DATABASE_ERROR_TYPES,
    database_unavailable,
    healthz_endpoint,
    readyz_endpoint,
)
from tokensmith.server.http.introspect import introspect_endpoint
from tokensmith.server.http.jwks import jwks_endpoint
from tokensmith.server.http.login import login_page, login_submit, signed_in_page
from tokensmith.server.http.logout import logout_endpoint
from tokensmith.server.http.request_limits import RequestLimits
from tokensmith.server.http.responses import no_store_json
from tokensmith.server.http.revoke import revoke_endpoint
from tokensmith.server.http.runtime import STATIC_DIR, Runtime, new_templates
from tokensmith.server.http.token import token_endpoint
from tokensmith.server.http.userinfo import userinfo_endpoint
from tokensmith.server.key_encryption import KeyEncryptionError, configured_encryption_key
from tokensmith.server.keys import KeyManager
from tokensmith.server.metrics import CONTENT_TYPE_LATEST, ServerMetrics
from tokensmith.store import open_store
from tokensmith.store.base import Store

logger = logging.getLogger("tokensmith.server")

CONFIG_ENV = "TOKENSMITH_CONFIG"
KEY_REFRESH_SECONDS = 60.0


async def metrics_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and friends as RFC 6749-style JSON."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    error = "invalid_request" if exc.status_code < 500 else "server_error"
    return no_store_json({"error": error, "error_description": str(exc.detail)}, exc.status_code, headers)


async def oauth_error(request: Request, exc: Exception) -> Response:
    """An OAuthError raised by an endpoint: its RFC 6749 error JSON, status and headers."""
    assert isinstance(exc, OAuthError)
    return no_store_json(exc.to_dict(), exc.status_code, exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return no_store_json(
        {"error": "server_error", "error_description": "the server could not process the request"}, 500
    )


def routes() -> list[Route | Mount]:
    return [
        Route("/.well-known/openid-configuration", discovery_endpoint, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", discovery_endpoint, methods=["GET"]),
        Route("/oauth2/jwks", jwks_endpoint, methods=["GET"]),
        Route("/oauth2/token", token_endpoint, methods=["POST"]),
        Route("/oauth2/introspect", introspect_endpoint, methods=["POST"]),
        Route("/oauth2/revoke", revoke_endpoint, methods=["POST"]),
        Route("/oauth2/authorize", authorize_endpoint, methods=["GET", "POST"]),
        Route("/userinfo", userinfo_endpoint, methods=["GET", "POST"]),
        Route("/connect/logout", logout_endpoint, methods=["GET", "POST"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/login/done", signed_in_page, methods=["GET"]),
        Route("/healthz", healthz_endpoint, methods=["GET"]),
        Route("/health", healthz_endpoint, methods=["GET"]),
        Route("/readyz", readyz_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]


async def _refresh_keys_periodically(keys: KeyManager) -> None:
    """Pick up keys another replica or `tokensmith keys rotate` added, so this process signs with the newest, and
    rotate keys that are `keys.rotation-interval` old."""
    while True:
        await asyncio.sleep(KEY_REFRESH_SECONDS)
        try:
            await keys.maintain()
        except KeyEncryptionError as exc:  # e.g. the keys were re-wrapped under a new key-encryption key
            logger.warning("could not re-read the signing keys: %s", exc)
        except Exception:  # a database hiccup must not stop the loop; the next round retries
            logger.warning("could not re-read the signing keys", exc_info=True)


async def _purge_periodically(store: Store, config: ServerConfig, clock: Clock, interval: float) -> None:
    """Delete expired rows every ``interval`` seconds. Every process of every replica does it: the deletes do not
    conflict (a row two of them delete goes once), and no process depends on another being up. The first round
    comes after a random part of the interval, so that processes started together spread their rounds out."""
    await asyncio.sleep(interval * random.uniform(0.5, 1.0))  # noqa: S311 - spreading, not a secret
    while True:
        try:
            now = clock()
            deleted = await store.purge_expired(now, audit_events_before=config.audit_events_expire_before(now))
        except Exception:  # a database hiccup must not stop the loop; the next round retries
            logger.warning("could not purge expired rows", exc_info=True)
        else:
            if deleted:
                logger.info("purged %d expired rows", deleted)
        await asyncio.sleep(interval)


def create_app(config: ServerConfig, *, clock: Clock = utc_now) -> Starlette:
    """The server for ``config``. The store is opened (and migrated) and keys are loaded when the app starts."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        encryption_key = configured_encryption_key(config.keys, config.database_url)
        store = open_store(config.database_url, config.database_durability)
        await store.initialize()
        try:
            keys = KeyManager(store, config.keys, clock, encryption_key=encryption_key)
            await keys.load()
            ctx = build_context(config, store, keys, clock)
            app.state.runtime = Runtime(
                ctx=ctx,
                secrets=SecretVerifier(),
                passwords=UserPasswordChecker(config.users),
                login_throttle=LoginThrottle(
                    store, config.login, secret=keys.encryption_key.derive_secret(COUNTER_SECRET_PURPOSE), clock=clock
                ),
                metrics=ServerMetrics(),
                templates=new_templates(),
            )
            app.state.jwks_read_at = time.monotonic()
            refresher = asyncio.create_task(_refresh_keys_periodically(keys), name="tokensmith-key-refresh")
            background = [refresher]
            purge_every = config.purge_interval.total_seconds()
            if purge_every > 0:
                background.append(
                    asyncio.create_task(_purge_periodically(store, config, clock, purge_every), name="tokensmith-purge")
                )
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await ctx.aclose()
        finally:
            await store.close()

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        middleware=[Middleware(RequestLimits)],
        exception_handlers={
            HTTPException: http_error,
            OAuthError: oauth_error,
            **dict.fromkeys(DATABASE_ERROR_TYPES, database_unavailable),
            Exception: unexpected_error,
        },
    )


def app_from_environment() -> Starlette:
    """App factory for ``uvicorn --factory`` (``tokensmith serve --workers N``): config file from $TOKENSMITH_CONFIG."""
    return create_app(load_config(os.environ.get(CONFIG_ENV)))
