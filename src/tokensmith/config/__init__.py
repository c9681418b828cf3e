"""Configuration: pydantic models of the YAML file, and its loader."""

from tokensmith.config.exchange import ExchangePolicy, TrustedIssuer
from tokensmith.config.loader import load_config
from tokensmith.config.server import ClientConfig, ClientRegistration, ServerConfig, UserConfig

__all__ = [
    "ClientConfig",
    "ClientRegistration",
    "ExchangePolicy",
    "ServerConfig",
    "TrustedIssuer",
    "UserConfig",
    "load_config",
]
