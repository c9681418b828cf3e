"""message-service (port 8082): ``GET /message`` for tokens aimed at ``message-service`` with ``message.read``.

Built only on :mod:`tokensmith.resource`: the validator checks issuer, signature, audience and expiry (401 per
RFC 6750 otherwise); ``require_scopes`` answers 403 ``insufficient_scope`` without ``message.read``. In the DPoP
variant (``dpop=True``) it takes DPoP-bound tokens only, each with a proof by the key it is bound to (RFC 9449).
"""

# No `from __future__ import annotations`: FastAPI must see the dependency objects the handlers close over.

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse

from tokensmith.demo.service_app import resource_server_app
from tokensmith.demo.settings import MessageServiceSettings
from tokensmith.resource import DPoPChecker, Principal
from tokensmith.resource.fastapi import require_scopes

HTTP_TIMEOUT_SECONDS = 5.0
REALM = "message-service"


def greeting(principal: Principal) -> str:
    """What message-service says: to whom, and through whom when a service acts on the user's behalf."""
    text = f"Hello {principal.subject}, from message-service"
    if principal.act:
        text += f" (via {principal.act[0].subject}, acting for you)"
    return text


def create_message_service(
    settings: MessageServiceSettings, transport: httpx.AsyncBaseTransport | None = None, *, dpop: bool = False
) -> FastAPI:
    # trust_env=False: keys come from the authorization server on this machine, whatever proxy the environment names.
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, transport=transport)
    validator = settings.jwt.validator(http=http)
    # 401 invalid_token for a bad token, 403 insufficient_scope naming the scope without message.read (RFC 6750 3.1).
    can_read = require_scopes(
        settings.required_scope,
        validator=validator,
        realm=REALM,
        dpop="required" if dpop else "off",
        dpop_checker=DPoPChecker() if dpop else None,
    )

    app = resource_server_app("message-service", http)

    @app.get("/message", response_class=PlainTextResponse)
    async def message(principal: Annotated[Principal, Depends(can_read)]) -> str:
        return greeting(principal)

    return app
