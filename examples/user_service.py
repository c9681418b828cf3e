"""user-service: validates the caller's token (`aud` user-service), exchanges it for one aimed at message-service
(RFC 8693, registration `my-message-service` in user-service.yaml) and calls message-service with it.

Run: .venv/bin/uvicorn --app-dir examples user_service:app --port 8081
"""

from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from tokensmith.client import AuthorizationServerUnavailable, TokenExchanger, TokenRequestError, load_client_properties
from tokensmith.resource import Principal, load_resource_server_settings
from tokensmith.resource.fastapi import require_token

SETTINGS = Path(__file__).with_name("user-service.yaml")
MESSAGE_SERVICE = "http://localhost:8082/message"

resource_server = load_resource_server_settings(SETTINGS).jwt
if resource_server is None:
    raise SystemExit(f"{SETTINGS}: spring.security.oauth2.resourceserver.jwt is missing")

app = FastAPI()
app.state.token_validator = resource_server.validator()
# The exchanged token is cached per incoming token until 60 s before it expires; concurrent calls share one exchange.
exchanger = TokenExchanger(load_client_properties(SETTINGS))


@app.get("/user/message", response_class=PlainTextResponse)
async def user_message(principal: Annotated[Principal, Depends(require_token(realm="user-service"))]) -> str:
    auth = exchanger.auth_for(principal.token, registration="my-message-service")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(MESSAGE_SERVICE, auth=auth)
    except AuthorizationServerUnavailable:
        raise HTTPException(503, "the authorization server is unavailable") from None
    except TokenRequestError as refused:
        raise HTTPException(502, f"token exchange refused: {refused.error}") from None
    if response.status_code != 200:
        raise HTTPException(502, f"message-service answered {response.status_code}")
    return response.text
