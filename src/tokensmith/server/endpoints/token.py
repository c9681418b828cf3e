"""``POST /oauth2/token`` (RFC 6749 3.2): authenticate the client, dispatch on ``grant_type``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.errors import OAuthError, unauthorized_client, unsupported_grant_type
from tokensmith.server.endpoints.client_request import read_client_request
from tokensmith.server.endpoints.responses import no_store_json, oauth_error_response
from tokensmith.server.endpoints.runtime import runtime
from tokensmith.server.grants import GRANT_HANDLERS


async def token_endpoint(request: Request) -> Response:
    rt = runtime(request)
    ctx = rt.ctx
    grant_type = "unknown"
    try:
        token_request, client = await read_client_request(request, rt)
        grant_type = token_request.require("grant_type")
        handler = GRANT_HANDLERS.get(grant_type)
        if handler is None:
            grant_type = "unsupported"
            raise unsupported_grant_type("unsupported grant_type")
        if grant_type not in client.config.registration.authorization_grant_types:
            raise unauthorized_client(f"the client may not use the {grant_type} grant")
        response = await handler(token_request, client, ctx)
    except OAuthError as error:
        rt.metrics.token_requests.labels(grant_type, error.error).inc()
        return oauth_error_response(error)
    rt.metrics.token_requests.labels(grant_type, "issued").inc()
    return no_store_json(response.to_dict())
