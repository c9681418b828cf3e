"""Reading request bodies: size-bounded, form-encoded only, with no repeated parameters."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from tokensmith.errors import OAuthError, invalid_request
from tokensmith.server.core.grants.base import REPEATABLE, TokenRequest

FORM_TYPE = "application/x-www-form-urlencoded"
# No form of ours has more than a dozen fields (a token exchange may repeat audience and resource a few times).
MAX_FORM_FIELDS = 100


def request_too_large(limit: int) -> OAuthError:
    return OAuthError("invalid_request", f"the request body exceeds {limit} bytes", status_code=413)


def check_declared_length(declared: str | None, limit: int) -> None:
    """A Content-Length header, when sent, must be a number no larger than ``limit``."""
    if declared is None:
        return
    # ASCII digits only (str.isdigit() accepts "²", which int() refuses).
    if not (declared.isascii() and declared.isdigit()):
        raise invalid_request("malformed Content-Length")
    if int(declared) > limit:
        raise request_too_large(limit)


def check_form_content_type(content_type: str) -> None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise invalid_request(f"the request body must be {FORM_TYPE}")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing it once it passes ``limit`` bytes (whatever Content-Length claimed)."""
    check_declared_length(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise request_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes, *, repeatable: frozenset[str] = REPEATABLE) -> dict[str, list[str]]:
    """Decode ``application/x-www-form-urlencoded`` UTF-8; a repeated parameter (outside ``repeatable``) is
    invalid_request (RFC 6749 3.1 and 3.2)."""
    if body.count(b"&") >= MAX_FORM_FIELDS:
        raise invalid_request(f"the form has more than {MAX_FORM_FIELDS} fields")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("the form body is not valid UTF-8 form encoding") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in params and name not in repeatable:
            raise invalid_request(f"parameter {name!r} must not be sent more than once")
        params.setdefault(name, []).append(value)
    return params


async def read_form(request: Request, limit: int) -> dict[str, list[str]]:
    check_form_content_type(request.headers.get("content-type", ""))
    return parse_form(await read_body(request, limit))


async def read_client_form(request: Request, limit: int) -> TokenRequest:
    """The form of a token, introspection or revocation request: in the body only (RFC 6749 3.2)."""
    if request.scope["query_string"]:  # as sent (building request.url would parse the whole URL)
        raise invalid_request("parameters must be sent in the request body, not the query string")
    return TokenRequest(params=await read_form(request, limit))
