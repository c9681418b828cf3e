"""Serving the app with uvicorn, the way ``tokensmith serve`` does: tokensmith's HTTP protocol (http/protocol.py),
proxy headers trusted only from the configured addresses, an access log without query strings, and for several
processes uvicorn's own supervisor, each process building its app from the configuration file (``--factory``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tokensmith.config.server import ServerConfig
from tokensmith.server.app import CONFIG_ENV, create_app
from tokensmith.server.http.access_log import LogFormat, log_config
from tokensmith.server.http.protocol import HTTP_PROTOCOL
from tokensmith.server.metrics import shared_metrics_directory


class ServeFailed(RuntimeError):
    """The server could not listen or its start-up failed (uvicorn logged why)."""


def uvicorn_options(
    *,
    forwarded_allow_ips: Sequence[str] = (),
    log_level: str = "info",
    access_log: bool = True,
    log_format: LogFormat | None = None,
) -> dict[str, Any]:
    """``uvicorn.Config`` arguments (all but the app and the address) for serving as ``tokensmith serve`` does.
    X-Forwarded-For and X-Forwarded-Proto are read only from ``forwarded_allow_ips``; none: never. With a
    ``log_format`` the process's logging is configured whole, as text or JSON lines (access_log.py)."""
    return {
        "http": HTTP_PROTOCOL,
        "lifespan": "on",
        "log_level": log_level,
        "access_log": access_log,
        "log_config": log_config(log_format, log_level),
        "proxy_headers": bool(forwarded_allow_ips),
        "forwarded_allow_ips": list(forwarded_allow_ips),
    }


def serve_server(
    settings: ServerConfig,
    *,
    config_path: Path | None,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = True,
    log_format: LogFormat = "text",
) -> None:
    """Serve ``settings`` until SIGINT or SIGTERM. Raises :class:`ServeFailed`."""
    options = uvicorn_options(
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=log_level,
        access_log=access_log,
        log_format=log_format,
    )
    if workers == 1:
        run(create_app(settings), host=host, port=port, **options)
        return
    # Each process builds its own app from the same file (app_from_environment).
    if config_path is not None:
        os.environ[CONFIG_ENV] = str(config_path.resolve())
    # With several processes, /metrics of any of them counts for all (server/metrics.py).
    with shared_metrics_directory():
        run(
            "tokensmith.server.app:app_from_environment", factory=True, workers=workers, host=host, port=port, **options
        )


def run(app: ASGIApp | str, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """``uvicorn.run``: one process, or ``workers`` (``app`` then an import string) under uvicorn's supervisor.
    Raises :class:`ServeFailed` where uvicorn exits (the address is taken, the app failed to start)."""
    try:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
    except SystemExit:
        raise ServeFailed(f"the server could not start on {host}:{port} (the log above says why)") from None
