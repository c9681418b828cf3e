"""``/.well-known/openid-configuration`` and ``/.well-known/oauth-authorization-server`` (RFC 8414)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokensmith.server.http.runtime import runtime


async def discovery_endpoint(request: Request) -> Response:
    metadata = runtime(request).ctx.metadata()
    # Browser-based clients read discovery across origins.
    return JSONResponse(metadata, headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})
