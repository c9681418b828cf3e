"""``POST /oauth2/token`` (RFC 6749 3.2): authenticate the client, dispatch on ``grant_type``."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.errors import OAuthError, unauthorized_client, unsupported_grant_type
from tokensmith.server.http.client_request import client_form
from tokensmith.server.http.responses import no_store_json
from tokensmith.server.http.runtime import runtime


async def token_endpoint(request: Request) -> Response:
    rt = runtime(request)
    grant_type = "unknown"
    try:
        form, client = await client_form(request, rt)
        grant_type = form.require("grant_type")
        handler = rt.ctx.grants.get(grant_type)
        if handler is None:
            grant_type = "unsupported"
            raise unsupported_grant_type("unsupported grant_type")
        if grant_type not in client.config.registration.authorization_grant_types:
            raise unauthorized_client(f"the client may not use the {grant_type} grant")
        # RFC 9449 5: the proof is checked before the grant runs; a valid one binds the tokens issued.
        proof = await rt.ctx.dpop.token_request_proof(request.headers.getlist("dpop"), client.config, rt.ctx.config)
        if proof is not None:
            form = replace(form, dpop=proof)
        response = await handler(form, client, rt.ctx)
    except OAuthError as error:
        rt.metrics.count_token_request(grant_type, error.error)
        raise
    rt.metrics.count_token_request(grant_type, "issued")
    return no_store_json(response.to_dict(), headers=rt.ctx.dpop.response_headers())
