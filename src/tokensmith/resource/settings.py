"""Resource-server settings shaped like Spring's ``spring.security.oauth2.resourceserver``.

Either the full Spring layout, the ``resourceserver`` mapping, or just its ``jwt`` mapping loads::

    spring:
      security:
        oauth2:
          resourceserver:
            jwt:
              issuer-uri: http://localhost:9001
              audiences: user-service
            protected-resource-metadata:
              resource: http://localhost:8081
              scopes-supported: user.read

``protected-resource-metadata`` (RFC 9728, a :class:`ProtectedResourceMetadata`) is tokensmith's addition; its
``authorization-servers`` default to the ``jwt`` issuer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, model_validator

from tokensmith.client._spring import SPRING_NAMES, read_settings, validate_settings
from tokensmith.resource.metadata import ProtectedResourceMetadata, check_url
from tokensmith.resource.validator import TokenValidator


def _list(value: Any) -> Any:
    # Spring binds "a,b" and a YAML list alike.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


Listed = Annotated[tuple[str, ...], BeforeValidator(_list)]


class JwtSettings(BaseModel):
    """``spring.security.oauth2.resourceserver.jwt``; ``typ``, ``leeway`` are tokensmith's additions."""

    model_config = SPRING_NAMES

    issuer_uri: str
    audiences: Listed
    jwk_set_uri: str | None = None
    jws_algorithms: Listed = ("RS256", "ES256")
    typ: Listed = ()
    leeway: float = 30.0

    @model_validator(mode="after")
    def _has_audience(self) -> JwtSettings:
        if not self.audiences:
            raise ValueError("set audiences: tokens for other services must not be accepted")
        return self

    def validator(self, **overrides: Any) -> TokenValidator:
        """A :class:`TokenValidator` from these settings (keyword arguments override, e.g. ``clock``)."""
        arguments: dict[str, Any] = {
            "issuer": self.issuer_uri,
            "audience": self.audiences,
            "algorithms": self.jws_algorithms,
            "jwks_uri": self.jwk_set_uri,
            "leeway": self.leeway,
            "required_typ": self.typ or None,
        }
        arguments.update(overrides)
        return TokenValidator(**arguments)


class OpaqueTokenSettings(BaseModel):
    """``spring.security.oauth2.resourceserver.opaquetoken``."""

    model_config = SPRING_NAMES

    introspection_uri: str
    client_id: str
    client_secret: str


class ResourceServerSettings(BaseModel):
    model_config = SPRING_NAMES

    jwt: JwtSettings | None = None
    opaquetoken: OpaqueTokenSettings | None = None
    protected_resource_metadata: ProtectedResourceMetadata | None = None

    @model_validator(mode="after")
    def _metadata_names_the_issuer(self) -> ResourceServerSettings:
        metadata = self.protected_resource_metadata
        if metadata is not None and not metadata.authorization_servers and self.jwt is not None:
            check_url(self.jwt.issuer_uri, what="jwt.issuer-uri (the metadata's authorization server)")
            self.protected_resource_metadata = metadata.model_copy(
                update={"authorization_servers": (self.jwt.issuer_uri,)}
            )
        return self


def load_resource_server_settings(source: str | Path | Mapping[str, Any]) -> ResourceServerSettings:
    """From a YAML file or a mapping: Spring's full layout, the ``resourceserver`` node, or the ``jwt`` node."""
    name, data = read_settings(source, ValueError)
    for key in ("spring", "security", "oauth2", "resourceserver"):
        if isinstance(data, Mapping) and key in data and isinstance(data[key], Mapping):
            data = data[key]
    if isinstance(data, Mapping) and "issuer-uri" in data:
        data = {"jwt": data}
    return validate_settings(ResourceServerSettings, data, name, ValueError)
