"""The minimal-Python ceiling: the least work a Python token endpoint can do, under the same server as tokensmith.

A bare ASGI callable that reads the form, checks HTTP Basic client credentials, and for a token exchange verifies
the subject JWT (signature, ``iss``, ``aud``, ``exp``) and signs a new one with joserfc and the same algorithm;
for client credentials it only signs. No framework, no storage, no policy, no logging. tokensmith cannot be
faster than this on the same server; the benchmark reports tokensmith as a fraction of it.

Configured by the JSON file named in ``BENCH_CEILING_CONFIG`` (written by bench/run.py).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = {ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt"}

_config = json.loads(Path(os.environ["BENCH_CEILING_CONFIG"]).read_text())
ISSUER: str = _config["issuer"]
ALG: str = _config["alg"]
SCOPE: str = _config["scope"]
KEY = (ECKey if ALG == "ES256" else RSAKey).import_key(_config["signing_jwk"])
HEADER = {"alg": ALG, "kid": KEY.kid, "typ": "at+jwt"}
CLIENTS: dict[str, bytes] = {c["client_id"]: c["client_secret"].encode() for c in _config["clients"]}
SUBJECT_CLAIMS = jwt.JWTClaimsRegistry(
    iss={"essential": True, "value": ISSUER},
    aud={"essential": True, "value": _config["subject_audience"]},
    exp={"essential": True},
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST" or scope["path"] != "/oauth2/token":
        await _respond(send, 404, {"error": "not_found"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    form = dict(parse_qsl(body.decode("latin-1")))
    client_id = _authenticate(scope)
    if client_id is None:
        await _respond(send, 401, {"error": "invalid_client"})
        return
    status, payload = _token(client_id, form)
    await _respond(send, status, payload)


def _authenticate(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:6].lower() == b"basic ":
            try:
                client_id, _, secret = base64.b64decode(value[6:], validate=True).partition(b":")
            except binascii.Error:
                return None
            expected = CLIENTS.get(client_id.decode("latin-1"))
            if expected is not None and hmac.compare_digest(expected, secret):
                return client_id.decode("latin-1")
    return None


def _token(client_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    grant_type = form.get("grant_type")
    if grant_type == "client_credentials":
        return 200, _issue(client_id, client_id, _config["client_credentials_audience"])
    if grant_type != TOKEN_EXCHANGE:
        return 400, {"error": "unsupported_grant_type"}
    if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
        return 400, {"error": "invalid_request"}
    try:
        subject = jwt.decode(form.get("subject_token", ""), KEY, algorithms=[ALG])
        SUBJECT_CLAIMS.validate(subject.claims)
    except (JoseError, ValueError):
        return 400, {"error": "invalid_request", "error_description": "subject_token is invalid"}
    response = _issue(str(subject.claims["sub"]), client_id, _config["exchange_audience"])
    response["issued_token_type"] = ACCESS_TOKEN_TYPE
    return 200, response


def _issue(subject: str, client_id: str, audience: str) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": SCOPE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(HEADER, claims, KEY, algorithms=[ALG])
    return {"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": SCOPE}


async def _respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
