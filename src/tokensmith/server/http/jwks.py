"""``GET /oauth2/jwks``: the public signing keys (active and recently retired)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokensmith.server.http.runtime import runtime

# Another replica (or `tokensmith keys rotate`) may have added keys: re-read them at most this often.
_REFRESH_SECONDS = 30.0


async def jwks_endpoint(request: Request) -> Response:
    rt = runtime(request)
    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "jwks_read_at", 0.0) > _REFRESH_SECONDS:
        await rt.ctx.keys.refresh()
        state.jwks_read_at = now
    return JSONResponse(
        rt.ctx.keys.jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"},
    )
