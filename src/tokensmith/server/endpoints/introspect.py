"""``POST /oauth2/introspect`` (RFC 7662): is this token active, and what does it say?

Only authenticated confidential clients may ask. An access token is described to any of them (resource
servers introspect tokens issued to other clients, and a JWT says as much to whoever holds it); a refresh
token, a credential no resource server ever sees, only to the client it was issued to (RFC 7662 4). Anything
not active (unknown, expired, revoked, not ours, an ID token, another client's refresh token) gets
``{"active": false}`` and nothing else, so the answer reveals nothing about why.
"""

from __future__ import annotations

from tokensmith.errors import OAuthError
from tokensmith.server.core.client_auth import require_confidential
from tokensmith.server.core.introspection import introspect
from tokensmith.server.endpoints.client_request import authenticated_client
from tokensmith.server.endpoints.direct import FormPost, JsonReply
from tokensmith.server.endpoints.runtime import Runtime


async def introspect_endpoint(rt: Runtime, post: FormPost) -> JsonReply:
    try:
        client = await authenticated_client(post, rt)
        require_confidential(client, "introspection")
        token = post.form.require("token")
        post.form.get("token_type_hint")  # a hint only (RFC 7662 2.1); read so a repeated one is refused
    except OAuthError as error:
        return JsonReply.error(error)
    return JsonReply(await introspect(rt.ctx, token, client.client_id))
