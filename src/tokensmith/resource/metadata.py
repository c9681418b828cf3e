"""OAuth 2.0 Protected Resource Metadata (RFC 9728): how a client (an MCP client, say) finds out which authorization
server issues tokens for this resource, and how to send them.

:class:`ProtectedResourceMetadata` is the configuration (``resource``, ``authorization-servers``,
``scopes-supported``, ...), validated when it is built. Its :attr:`~ProtectedResourceMetadata.url` is the
well-known URL of section 3.1 (``https://api.example.com/.well-known/oauth-protected-resource``, with the resource's
path after it when it has one) that every challenge names in ``resource_metadata`` (section 5.1);
:class:`ProtectedResourceMetadataApp` answers it. The DPoP fields come from the :class:`DPoPChecker` the
resource uses, so the document cannot say anything the resource does not do.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

from tokensmith.resource.asgi import Receive, Scope, Send, send_response
from tokensmith.resource.dpop import DPoPChecker, DPoPMode

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
# The document changes only with the configuration; an hour of caching spares clients a request per connection.
METADATA_CACHE_CONTROL = "public, max-age=3600"


def _listed(value: Any) -> Any:
    # As in the resource-server settings: "a,b" and a YAML list alike.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def check_url(value: str, *, what: str) -> str:
    """``value`` unless it is not an absolute ``https`` (or ``http``) URL without query or fragment; a ValueError
    saying why otherwise. RFC 9728 asks for ``https``; ``http`` is for development, as the server's issuer allows."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https URL, not {value!r}")
    if parts.fragment or "#" in value:
        raise ValueError(f"{what} must not have a fragment: {value!r}")
    if parts.query or "?" in value:
        raise ValueError(f"{what} must not have a query: {value!r}")
    return value


class ProtectedResourceMetadata(BaseModel):
    """The metadata a resource publishes (RFC 9728 section 2); kebab-case keys in YAML, like the other settings.

    ``resource`` is the resource identifier clients use (and ask tokens for with ``resource``, RFC 8707): an
    ``https`` URL without query or fragment (``http`` only for development). ``authorization_servers`` are the issuers whose tokens the resource
    accepts (the ``jwt.issuer-uri`` by default in :class:`ResourceServerSettings`). ``scopes_supported`` are the
    scopes its routes ask for. Bearer tokens are read from the ``Authorization`` header only, so
    ``bearer_methods_supported`` is always ``["header"]``.
    """

    model_config = ConfigDict(
        alias_generator=lambda name: name.replace("_", "-"), populate_by_name=True, extra="forbid", frozen=True
    )

    resource: str
    authorization_servers: Annotated[tuple[str, ...], BeforeValidator(_listed)] = ()
    scopes_supported: Annotated[tuple[str, ...], BeforeValidator(_listed)] = ()
    resource_name: str | None = None
    resource_documentation: str | None = None

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        return check_url(value, what="resource")

    @field_validator("authorization_servers")
    @classmethod
    def _issuers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for issuer in value:
            check_url(issuer, what="each of authorization-servers (an issuer identifier)")
        return value

    @field_validator("scopes_supported")
    @classmethod
    def _scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            # RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if not scope or any(not ("\x21" <= c <= "\x7e") or c in '"\\' for c in scope):
                raise ValueError(f"{scope!r} is not a valid scope (RFC 6749 3.3)")
        return value

    @field_validator("resource_documentation")
    @classmethod
    def _documentation(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, what="resource-documentation")

    @property
    def path(self) -> str:
        """The path of :attr:`url`: the resource's path, if any, after the well-known prefix (section 3.1)."""
        return WELL_KNOWN_PATH + urlsplit(self.resource).path.rstrip("/")

    @property
    def url(self) -> str:
        """The metadata's URL, named in ``resource_metadata`` of every challenge (RFC 9728 5.1)."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.path}"

    def paths(self) -> tuple[str, ...]:
        """Where the document is served: :attr:`path`, and the bare well-known path for clients that look only
        there when the resource has a path."""
        return tuple(dict.fromkeys((self.path, WELL_KNOWN_PATH)))

    def document(self, dpop_checker: DPoPChecker | None = None, dpop: DPoPMode = "off") -> dict[str, Any]:
        """The JSON document; with a checker and ``dpop`` "allowed" or "required", the DPoP fields (RFC 9728 2)."""
        document: dict[str, Any] = {"resource": self.resource}
        if self.authorization_servers:
            document["authorization_servers"] = list(self.authorization_servers)
        if self.scopes_supported:
            document["scopes_supported"] = list(self.scopes_supported)
        document["bearer_methods_supported"] = ["header"]
        if dpop_checker is not None and dpop != "off":
            document["dpop_signing_alg_values_supported"] = sorted(dpop_checker.algorithms)
            document["dpop_bound_access_tokens_required"] = dpop == "required"
        if self.resource_name is not None:
            document["resource_name"] = self.resource_name
        if self.resource_documentation is not None:
            document["resource_documentation"] = self.resource_documentation
        return document


class ProtectedResourceMetadataApp:
    """A pure ASGI app answering ``GET``/``HEAD`` with the metadata document (405 for other methods): what
    :class:`BearerTokenMiddleware` answers the metadata paths with, and what another ASGI app can route each of
    :meth:`ProtectedResourceMetadata.paths` to (FastAPI apps use
    :func:`tokensmith.resource.fastapi.publish_resource_metadata`)."""

    def __init__(
        self, metadata: ProtectedResourceMetadata, dpop_checker: DPoPChecker | None = None, dpop: DPoPMode = "off"
    ) -> None:
        self.metadata = metadata
        self.body = json.dumps(metadata.document(dpop_checker, dpop)).encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            body = json.dumps(
                {"error": "invalid_request", "error_description": "the resource metadata is read with GET"}
            ).encode("utf-8")
            headers = [(b"content-type", b"application/json"), (b"allow", b"GET, HEAD")]
            await send_response(send, 405, headers, body)
            return
        headers = [(b"content-type", b"application/json"), (b"cache-control", METADATA_CACHE_CONTROL.encode("ascii"))]
        await send_response(send, 200, headers, b"" if method == "HEAD" else self.body, length=len(self.body))
