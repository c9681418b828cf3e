"""``POST /oauth2/token`` (RFC 6749 3.2): authenticate the client, dispatch on ``grant_type``."""

from __future__ import annotations

from tokensmith.errors import OAuthError, unauthorized_client, unsupported_grant_type
from tokensmith.server.endpoints.client_request import authenticated_client
from tokensmith.server.endpoints.direct import FormPost, JsonReply
from tokensmith.server.endpoints.runtime import Runtime


async def token_endpoint(rt: Runtime, post: FormPost) -> JsonReply:
    grant_type = "unknown"
    try:
        client = await authenticated_client(post, rt)
        grant_type = post.form.require("grant_type")
        handler = rt.ctx.grants.get(grant_type)
        if handler is None:
            grant_type = "unsupported"
            raise unsupported_grant_type("unsupported grant_type")
        if grant_type not in client.config.registration.authorization_grant_types:
            raise unauthorized_client(f"the client may not use the {grant_type} grant")
        response = await handler(post.form, client, rt.ctx)
    except OAuthError as error:
        rt.metrics.count_token_request(grant_type, error.error)
        return JsonReply.error(error)
    rt.metrics.count_token_request(grant_type, "issued")
    return JsonReply(response.to_dict())
