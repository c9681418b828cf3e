"""``POST /oauth2/revoke`` (RFC 7009).

An access token is revoked with everything exchanged from it; a refresh token with its whole grant (RFC 7009 2.1
lets the server revoke the access tokens of the same grant). A client may revoke only its own tokens. An unknown
or already invalid token gets 200 too: the client's goal, a token that no longer works, is met.
"""

from __future__ import annotations

from tokensmith.errors import OAuthError
from tokensmith.server.core.revocation import revoke
from tokensmith.server.endpoints.client_request import authenticated_client
from tokensmith.server.endpoints.direct import FormPost, JsonReply
from tokensmith.server.endpoints.runtime import Runtime


async def revoke_endpoint(rt: Runtime, post: FormPost) -> JsonReply:
    try:
        client = await authenticated_client(post, rt)
        token = post.form.require("token")
        post.form.get("token_type_hint")  # a hint only; read so a repeated one is refused
        await revoke(rt.ctx, token, client.client_id)
    except OAuthError as error:
        return JsonReply.error(error)
    return JsonReply(None)
