"""Load the server configuration from YAML plus ``TOKENSMITH_*`` environment overrides.

A bad file fails with one :class:`ConfigError` line naming the file, the key and what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tokensmith.config.server import ServerConfig
from tokensmith.errors import ConfigError

# The access-token `typ` of a configuration in Spring's layout: what Spring Security resource servers accept.
SPRING_ACCESS_TOKEN_TYP = "JWT"
ENV_PREFIX = "TOKENSMITH_"
# Only variables naming a top-level setting are configuration: others with the prefix belong to the CLI
# (TOKENSMITH_CONFIG, TOKENSMITH_CLIENT_SECRET for `tokensmith exchange`) or to the test suite.
_TOP_LEVEL_KEYS = frozenset(field.alias or name for name, field in ServerConfig.model_fields.items())


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Read ``path`` (or only defaults when None), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_yaml(Path(path))
    data = _unwrap_spring_layout(data)
    _apply_env_overrides(data, environ)
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings, not {type(loaded).__name__}")
    return loaded


def _unwrap_spring_layout(data: dict[str, Any]) -> dict[str, Any]:
    """Accept a Spring ``application.yml`` as is: ``spring.security.oauth2.authorizationserver.client.*``.

    Such a file describes a Spring Authorization Server, whose access tokens Spring resource servers accept; those
    refuse RFC 9068's ``at+jwt``, so access tokens default to ``typ`` ``JWT`` here unless the file says otherwise.
    """
    spring = data.get("spring")
    if not isinstance(spring, dict):
        return data
    node: Any = spring
    for key in ("security", "oauth2", "authorizationserver"):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return data
    rest = {k: v for k, v in data.items() if k != "spring"}
    if "client" in node:
        rest.setdefault("clients", node["client"])
    if "issuer" in node:
        rest.setdefault("issuer", node["issuer"])
    tokens = rest.setdefault("tokens", {})
    if isinstance(tokens, dict):
        tokens.setdefault("access-token-typ", SPRING_ACCESS_TOKEN_TYP)
    return rest


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``TOKENSMITH_DATABASE_URL`` sets ``database-url``; ``__`` descends: ``TOKENSMITH_KEYS__ACCESS_TOKEN_ALGORITHM``."""
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower().replace("_", "-") for part in name[len(ENV_PREFIX) :].split("__")]
        if path[0] not in _TOP_LEVEL_KEYS:
            continue
        node = data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = _scalar(raw)


def _scalar(raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return value if isinstance(value, (str, int, float, bool, list)) else raw


def _describe(source: str, exc: ValidationError) -> str:
    return f"{source}: {validation_problems(exc)}"


def validation_problems(exc: ValidationError) -> str:
    """A settings validation error on one line: each problem as ``key.path: message``."""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}")
    return "; ".join(problems)
