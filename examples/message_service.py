"""message-service: accepts tokens for `message-service` carrying scope `message.read` (tokensmith.resource).

Run: .venv/bin/uvicorn --app-dir examples message_service:app --port 8082
"""

from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse

from tokensmith.resource import Principal, TokenValidator
from tokensmith.resource.fastapi import require_scopes

app = FastAPI()
# Keys come from the issuer's discovery document and JWKS, fetched on first use and cached.
app.state.token_validator = TokenValidator(issuer="http://localhost:9001", audience="message-service")


@app.get("/message", response_class=PlainTextResponse)
async def message(
    principal: Annotated[Principal, Depends(require_scopes("message.read", realm="message-service"))],
) -> str:
    return f"Hello {principal.subject}, from message-service"
