"""``POST /oauth2/revoke`` (RFC 7009).

An access token is revoked with everything exchanged from it; a refresh token with its whole grant (RFC 7009 2.1
lets the server revoke the access tokens of the same grant). A client may revoke only its own tokens. An unknown
or already invalid token gets 200 too: the client's goal, a token that no longer works, is met.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.core.revocation import revoke
from tokensmith.server.http.client_request import client_form
from tokensmith.server.http.responses import NO_STORE
from tokensmith.server.http.runtime import runtime


async def revoke_endpoint(request: Request) -> Response:
    rt = runtime(request)
    form, client = await client_form(request, rt)
    token = form.require("token")
    form.get("token_type_hint")  # a hint only; read so a repeated one is refused
    await revoke(rt.ctx, token, client.client_id)
    return Response(headers=NO_STORE)
