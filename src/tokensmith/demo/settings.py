"""The demo's shipped configuration files, read and re-pointed at the ports actually used.

The files under ``tokensmith/demo/config/`` are written to be held next to the article: the same client ids,
secrets, scopes and paths, and the article's ``localhost`` URLs. :func:`rebase_urls` moves every such URL to the
topology in use, so ``--as-port 9101`` changes the issuer everywhere at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from tokensmith.client.registration import OAuth2ClientProperties, RegistrationProperties
from tokensmith.config.loader import load_config, validation_problems
from tokensmith.config.server import ServerConfig
from tokensmith.config.types import KEBAB
from tokensmith.demo.topology import Topology
from tokensmith.errors import ConfigError
from tokensmith.resource.metadata import ProtectedResourceMetadata
from tokensmith.resource.settings import JwtSettings

ARTICLE_TOPOLOGY = Topology()
M = TypeVar("M", bound=BaseModel)
CONFIG_FILES = ("authorization-server.yaml", "client-app.yaml", "user-service.yaml", "message-service.yaml")


def shipped_config_path(name: str) -> Path:
    """The path of one of the shipped files (package data), e.g. ``user-service.yaml``."""
    return Path(str(resources.files("tokensmith.demo").joinpath("config").joinpath(name)))


class ServerPort(BaseModel):
    model_config = KEBAB

    port: int


class EdgeTransactionTokens(BaseModel):
    """user-service as the edge of a trust domain: the Transaction Token it mints (mode ``transaction-token``)."""

    model_config = KEBAB

    trust_domain: str
    # The token-exchange registration of user-service's own client.
    registration: str
    scope: str = "message.read"
    # message-service's route that takes a Transaction Token.
    target_url: str


class WorkloadTransactionTokens(BaseModel):
    """message-service inside the trust domain: the Transaction Tokens it accepts."""

    model_config = KEBAB

    trust_domain: str
    required_scope: str = "message.read"


class UserServiceSettings(BaseModel):
    model_config = KEBAB

    server: ServerPort
    jwt: JwtSettings
    protected_resource_metadata: ProtectedResourceMetadata | None = None
    client: OAuth2ClientProperties
    target_resource_server_url: str
    exchange_registration: str = "my-message-service"
    actor_registration: str = "user-service-actor"
    transaction_tokens: EdgeTransactionTokens | None = None


class MessageServiceSettings(BaseModel):
    model_config = KEBAB

    server: ServerPort
    jwt: JwtSettings
    protected_resource_metadata: ProtectedResourceMetadata | None = None
    required_scope: str = "message.read"
    transaction_tokens: WorkloadTransactionTokens | None = None


class ClientAppSettings(BaseModel):
    model_config = KEBAB

    server: ServerPort
    client: OAuth2ClientProperties
    target_resource_server_url: str
    post_logout_redirect_uri: str
    registration_id: str = "messaging-client-oidc"

    @model_validator(mode="after")
    def _usable_registration(self) -> ClientAppSettings:
        registration = self.client.registration.get(self.registration_id)
        if registration is None:
            raise ValueError(f"client.registration.{self.registration_id} is missing")
        if not registration.redirect_uri or not registration.client_secret:
            raise ValueError(f"client.registration.{self.registration_id} needs redirect-uri and client-secret")
        if not self.client.provider[registration.provider or self.registration_id].issuer_uri:
            raise ValueError(f"the provider of {self.registration_id} needs issuer-uri (the client app uses discovery)")
        return self

    @property
    def registration(self) -> RegistrationProperties:
        return self.client.registration[self.registration_id]

    @property
    def issuer(self) -> str:
        registration = self.registration
        issuer = self.client.provider[registration.provider or self.registration_id].issuer_uri
        return issuer or ""


def rebase_urls(data: Any, source: Topology, target: Topology) -> Any:
    """Every string starting with one of ``source``'s service origins, moved to ``target``'s; ports too."""
    origins = {
        source.issuer: target.issuer,
        source.client_url: target.client_url,
        source.user_service_url: target.user_service_url,
        source.message_service_url: target.message_service_url,
    }
    ports = dict(zip(source.ports().values(), target.ports().values(), strict=True))

    def walk(node: Any, key: str | None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item, None) for item in node]
        if isinstance(node, str):
            for old, new in origins.items():
                if node == old or node.startswith(old + "/"):
                    return new + node[len(old) :]
            return node
        if key == "port" and isinstance(node, int) and node in ports:
            return ports[node]
        return node

    return walk(data, None)


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return loaded


def _spring_oauth2(data: Mapping[str, Any]) -> dict[str, Any]:
    node: Any = data
    for key in ("spring", "security", "oauth2"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Lift ``spring.security.oauth2.{resourceserver.jwt,resourceserver.protected-resource-metadata,client}`` to
    the top level, keep the rest."""
    oauth2 = _spring_oauth2(data)
    flat = {k: v for k, v in data.items() if k != "spring"}
    resource_server = oauth2.get("resourceserver")
    if isinstance(resource_server, dict):
        for key in ("jwt", "protected-resource-metadata"):
            if key in resource_server:
                flat[key] = resource_server[key]
    if "client" in oauth2:
        flat["client"] = oauth2["client"]
    return flat


def _validate(model: type[M], path: Path, data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None


def load_service_settings(model: type[M], name: str, topology: Topology) -> M:
    path = shipped_config_path(name)
    data = rebase_urls(_flatten(_read(path)), ARTICLE_TOPOLOGY, topology)
    return _validate(model, path, data)


_ENCRYPTION_KEY_VARIABLES = {
    "TOKENSMITH_KEYS__ENCRYPTION_KEY": "encryption-key",
    "TOKENSMITH_KEYS__ENCRYPTION_KEY_FILE": "encryption-key-file",
}


# The demo's clients whose every token is DPoP-bound in the DPoP variant (the client app, and both of user-service's
# registrations: `message-service` for the exchange, `user-service` for the delegation variant's actor token).
DPOP_CLIENTS = ("messaging-client", "message-service", "user-service")


def load_server_config(topology: Topology, database_url: str | None = None, *, dpop: bool = False) -> ServerConfig:
    """The authorization server's shipped file, its URLs moved to ``topology``; with ``dpop`` (the DPoP variant)
    the demo's clients get tokens only with a DPoP proof (``require-dpop``)."""
    base = load_config(shipped_config_path("authorization-server.yaml"), environ={})
    data = rebase_urls(base.model_dump(by_alias=True, mode="json", exclude_unset=True), ARTICLE_TOPOLOGY, topology)
    data["host"] = topology.host
    if database_url is not None:
        data["database-url"] = database_url
    if dpop:
        for client in data["clients"].values():
            if client["registration"]["client-id"] in DPOP_CLIENTS:
                client["require-dpop"] = True
    # Of the environment, only the key-encryption key (needed with PostgreSQL): the demo's settings are its own.
    for variable, key in _ENCRYPTION_KEY_VARIABLES.items():
        if os.environ.get(variable):
            data.setdefault("keys", {})[key] = os.environ[variable]
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:  # only --database-url can make the shipped file invalid
        raise ConfigError(validation_problems(exc)) from None


def load_user_service_settings(topology: Topology) -> UserServiceSettings:
    return load_service_settings(UserServiceSettings, "user-service.yaml", topology)


def load_message_service_settings(topology: Topology) -> MessageServiceSettings:
    return load_service_settings(MessageServiceSettings, "message-service.yaml", topology)


def load_client_app_settings(topology: Topology) -> ClientAppSettings:
    return load_service_settings(ClientAppSettings, "client-app.yaml", topology)
