"""``POST /oauth2/introspect`` (RFC 7662): is this token active, and what does it say?

Only authenticated confidential clients may ask. An access token is described to any of them (resource
servers introspect tokens issued to other clients, and a JWT says as much to whoever holds it); a refresh
token, a credential no resource server ever sees, only to the client it was issued to (RFC 7662 4). Anything
not active (unknown, expired, revoked, not ours, an ID token, another client's refresh token) gets
``{"active": false}`` and nothing else, so the answer reveals nothing about why.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.core.client_auth import require_confidential
from tokensmith.server.core.introspection import introspect
from tokensmith.server.http.client_request import client_form
from tokensmith.server.http.responses import no_store_json
from tokensmith.server.http.runtime import runtime


async def introspect_endpoint(request: Request) -> Response:
    rt = runtime(request)
    form, client = await client_form(request, rt)
    require_confidential(client, "introspection")
    token = form.require("token")
    form.get("token_type_hint")  # a hint only (RFC 7662 2.1); read so a repeated one is refused
    return no_store_json(await introspect(rt.ctx, token, client.client_id))
