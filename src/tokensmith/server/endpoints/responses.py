"""Responses shared by the endpoints: JSON that is never cached, and RFC 6749 error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from tokensmith.errors import OAuthError

# RFC 6749 5.1: responses carrying tokens or credentials must not be stored by caches.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def no_store_json(
    body: Mapping[str, Any], status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(dict(body), status_code=status_code, headers={**NO_STORE, **(headers or {})})


def oauth_error_response(error: OAuthError) -> JSONResponse:
    return no_store_json(error.to_dict(), status_code=error.status_code, headers=error.headers)
