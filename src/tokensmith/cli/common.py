"""What the commands share: the ``--config`` option, loading the configuration, failing with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokensmith.config.loader import load_config
from tokensmith.config.server import ServerConfig
from tokensmith.errors import ConfigError

CONFIG_ENV = "TOKENSMITH_CONFIG"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help="The YAML configuration file (default: built-in defaults plus TOKENSMITH_* variables).",
    ),
]


def fail(message: str) -> typer.Exit:
    """Print one line to stderr; the caller raises the returned Exit (code 1)."""
    typer.echo(f"tokensmith: {message}", err=True)
    return typer.Exit(1)


def load_or_exit(path: Path | None) -> ServerConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None
