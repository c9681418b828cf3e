"""Client registrations, shaped like Spring's ``spring.security.oauth2.client.registration.*`` and ``provider.*``.

The article's block loads as is (from a Spring ``application.yml`` or from the inner mapping)::

    spring:
      security:
        oauth2:
          client:
            registration:
              my-message-service:
                provider: my-auth-server
                client-id: "message-service"
                client-secret: "token"
                authorization-grant-type: "urn:ietf:params:oauth:grant-type:token-exchange"
                client-authentication-method:
                  - "client_secret_basic"
                scope:
                  - message.read
                client-name: my-message-service
            provider:
              my-auth-server:
                issuer-uri: http://localhost:9001

Extensions beyond Spring (all optional): ``private-key`` (a PEM or JWK file) / ``private-key-jwk`` (inline JWK) and
``token-endpoint-auth-signing-alg`` for ``private_key_jwt``; ``audience`` / ``resource`` sent with every exchange.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key
from pydantic import BaseModel, BeforeValidator, Field, model_validator

from tokensmith.client._spring import SPRING_NAMES, read_settings, validate_settings
from tokensmith.client.errors import RegistrationError

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CLIENT_CREDENTIALS = "client_credentials"
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
SigningKey = RSAKey | ECKey | OKPKey
# The JWS algorithm a private_key_jwt assertion is signed with, by key type, unless configured.
DEFAULT_ASSERTION_ALG = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


def _words(value: Any) -> Any:
    """Spring accepts a YAML list or a comma-separated string; OAuth writes scopes space-separated. Take all three."""
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    return value


def _first_method(value: Any) -> Any:
    # Spring's property is a single method; the article writes a one-item list. The first listed is preferred.
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("list at least one client authentication method")
        return value[0]
    return value


Words = Annotated[tuple[str, ...], BeforeValidator(_words)]


class ProviderProperties(BaseModel):
    """``spring.security.oauth2.client.provider.<id>``."""

    model_config = SPRING_NAMES

    issuer_uri: str | None = None
    token_uri: str | None = None
    authorization_uri: str | None = None
    jwk_set_uri: str | None = None
    user_info_uri: str | None = None
    user_info_authentication_method: str | None = None
    user_name_attribute: str | None = None
    introspection_uri: str | None = None

    @model_validator(mode="after")
    def _locatable(self) -> ProviderProperties:
        if not self.issuer_uri and not self.token_uri:
            raise ValueError("set issuer-uri (discovery) or token-uri")
        return self


class RegistrationProperties(BaseModel):
    """``spring.security.oauth2.client.registration.<id>``."""

    model_config = SPRING_NAMES

    provider: str | None = None
    client_id: str
    client_secret: str | None = Field(default=None, repr=False)
    client_name: str | None = None
    authorization_grant_type: str = CLIENT_CREDENTIALS
    client_authentication_method: Annotated[AuthMethod, BeforeValidator(_first_method)] = "client_secret_basic"
    scope: Words = ()
    redirect_uri: str | None = None
    private_key: Path | None = None
    private_key_jwk: dict[str, Any] | None = Field(default=None, repr=False)
    token_endpoint_auth_signing_alg: str | None = None
    audience: Words = ()
    resource: Words = ()

    @model_validator(mode="after")
    def _credentials(self) -> RegistrationProperties:
        if self.client_authentication_method.startswith("client_secret") and not self.client_secret:
            raise ValueError(f"{self.client_authentication_method} needs client-secret")
        if self.client_authentication_method == "private_key_jwt" and not (self.private_key or self.private_key_jwk):
            raise ValueError("private_key_jwt needs private-key (a PEM or JWK file) or private-key-jwk")
        return self


class OAuth2ClientProperties(BaseModel):
    """``spring.security.oauth2.client``: registrations and the providers they point at."""

    model_config = SPRING_NAMES

    registration: dict[str, RegistrationProperties] = {}
    provider: dict[str, ProviderProperties] = {}

    @model_validator(mode="after")
    def _providers_exist(self) -> OAuth2ClientProperties:
        for registration_id, registration in self.registration.items():
            provider_id = registration.provider or registration_id  # Spring's default: the registration's own id
            if provider_id not in self.provider:
                raise ValueError(
                    f"registration {registration_id!r} names provider {provider_id!r}, which is not defined"
                )
        return self

    def registrations(self) -> dict[str, Registration]:
        """Every registration resolved against its provider, keys loaded, ready for the exchanger."""
        resolved = {}
        for registration_id, props in self.registration.items():
            provider = self.provider[props.provider or registration_id]
            key = _load_key(registration_id, props)
            alg = props.token_endpoint_auth_signing_alg
            if key is not None and alg is None:
                alg = DEFAULT_ASSERTION_ALG[key.key_type]
            resolved[registration_id] = Registration(
                registration_id=registration_id,
                client_id=props.client_id,
                client_secret=props.client_secret,
                authorization_grant_type=props.authorization_grant_type,
                client_authentication_method=props.client_authentication_method,
                scopes=props.scope,
                issuer_uri=provider.issuer_uri,
                token_uri=provider.token_uri,
                introspection_uri=provider.introspection_uri,
                signing_key=key,
                signing_alg=alg,
                audience=props.audience,
                resource=props.resource,
            )
        return resolved


@dataclass(frozen=True, slots=True)
class Registration:
    """One client registration at one authorization server, as the exchanger uses it."""

    registration_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    authorization_grant_type: str = CLIENT_CREDENTIALS
    client_authentication_method: AuthMethod = "client_secret_basic"
    scopes: tuple[str, ...] = ()
    issuer_uri: str | None = None
    token_uri: str | None = None
    introspection_uri: str | None = None
    signing_key: SigningKey | None = field(default=None, repr=False)
    signing_alg: str | None = None
    audience: tuple[str, ...] = ()
    resource: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.issuer_uri and not self.token_uri:
            raise RegistrationError(f"registration {self.registration_id!r}: set issuer_uri or token_uri")
        if self.client_authentication_method.startswith("client_secret") and not self.client_secret:
            raise RegistrationError(
                f"registration {self.registration_id!r}: {self.client_authentication_method} needs a secret"
            )
        if self.client_authentication_method == "private_key_jwt" and (
            self.signing_key is None or not self.signing_alg
        ):
            raise RegistrationError(f"registration {self.registration_id!r}: private_key_jwt needs a key and an alg")


def _load_key(registration_id: str, props: RegistrationProperties) -> SigningKey | None:
    data: Any = props.private_key_jwk
    if data is None and props.private_key is not None:
        try:
            text = props.private_key.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistrationError(
                f"registration {registration_id!r}: cannot read private-key: {exc.strerror}"
            ) from None
        data = json.loads(text) if text.lstrip().startswith("{") else text
    if data is None:
        return None
    try:
        key = import_key(data) if isinstance(data, dict) else _import_pem(data)
    except (ValueError, TypeError) as exc:
        raise RegistrationError(f"registration {registration_id!r}: private key is not usable: {exc}") from None
    if not isinstance(key, RSAKey | ECKey | OKPKey) or not key.is_private:
        raise RegistrationError(
            f"registration {registration_id!r}: private_key_jwt needs an RSA, EC or OKP private key"
        )
    return key


def _import_pem(pem: str) -> SigningKey:
    for key_type in (RSAKey, ECKey, OKPKey):
        try:
            return key_type.import_key(pem)
        except (ValueError, TypeError):
            continue
    raise ValueError("not an RSA, EC or OKP private key in PEM")


def load_client_properties(source: str | Path | Mapping[str, Any]) -> OAuth2ClientProperties:
    """Load from a YAML file or a mapping, either Spring's full layout or the ``client`` mapping itself."""
    name, data = read_settings(source, RegistrationError)
    if not isinstance(data, Mapping):
        raise RegistrationError(f"{name}: expected a mapping of settings")
    data = _unwrap(data, ("spring", "security", "oauth2", "client"))
    return validate_settings(OAuth2ClientProperties, data, name, RegistrationError)


def _unwrap(data: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return data
        node = node[key]
    return node if isinstance(node, Mapping) else data
