"""Responses shared by the Starlette endpoints: JSON that is never cached."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

# RFC 6749 5.1: responses carrying tokens or credentials must not be stored by caches.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def no_store_json(
    body: Mapping[str, Any], status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(dict(body), status_code=status_code, headers={**NO_STORE, **(headers or {})})
