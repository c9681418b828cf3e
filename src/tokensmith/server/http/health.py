"""Liveness and readiness for orchestrators and load balancers, and the answer given while the database is down.

- ``/healthz`` (and ``/health``): the process is up and serving; nothing else is checked, so a restart is never
  triggered by a database outage.
- ``/readyz``: this process can answer token requests: the database answers a query within
  :data:`READY_QUERY_TIMEOUT_SECONDS` and the signing keys are loaded. 200, or 503 with what is not ready.
- :func:`database_unavailable`: the app's handler for the database's connection errors. Every endpoint that needs
  the database then answers 503 with ``Retry-After`` and RFC 6749-style error JSON; the connection pool checks
  connections before use, so the endpoints recover by themselves once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.http.responses import no_store_json
from tokensmith.server.http.runtime import runtime

logger = logging.getLogger("tokensmith.server")

READY_QUERY_TIMEOUT_SECONDS: Final = 2.0
RETRY_AFTER_SECONDS: Final = 5
# What the driver raises when the database cannot be reached: the connection was refused, dropped, timed out, or
# the server is starting up or shutting down (SQLAlchemy wraps asyncpg's and sqlite3's errors in these).
DATABASE_CONNECTION_ERRORS: Final = (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, TimeoutError)


# SQLSTATE classes of a database that cannot serve now: 08 connection exception, 57P operator intervention
# (shutting down, starting up: "cannot connect now"). The driver's error carries it in ``sqlstate``.
UNAVAILABLE_SQLSTATES: Final = ("08", "57P")


def is_database_unavailable(exc: BaseException) -> bool:
    """True for an error that says the database cannot be reached now (not for a bad statement or a conflict)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DATABASE_CONNECTION_ERRORS):
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            return True
        cause = cause.__cause__
    return False


async def healthz_endpoint(request: Request) -> Response:
    return no_store_json({"status": "ok"})


async def readyz_endpoint(request: Request) -> Response:
    ctx = runtime(request).ctx
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(ctx.store.ping(), READY_QUERY_TIMEOUT_SECONDS)
    except TimeoutError:
        checks["database"] = f"no answer within {READY_QUERY_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # any driver error: the database is not usable; say which kind
        checks["database"] = f"unreachable ({type(exc).__name__})"
    else:
        checks["database"] = "ok"
    checks["signing_keys"] = "ok" if ctx.keys.jwks()["keys"] else "none loaded"
    ready = all(value == "ok" for value in checks.values())
    return no_store_json({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


# The exception types the app hands to :func:`database_unavailable`.
DATABASE_ERROR_TYPES: Final = (SQLAlchemyError, ConnectionError, TimeoutError)


def unavailable_response() -> Response:
    body = {
        "error": "temporarily_unavailable",
        "error_description": "the database cannot be reached; try again shortly",
    }
    return no_store_json(body, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """503 for the database's connection errors; any other database error is a server error (500, logged)."""
    if is_database_unavailable(exc):
        logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return unavailable_response()
    logger.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return no_store_json(
        {"error": "server_error", "error_description": "the server could not process the request"}, 500
    )
