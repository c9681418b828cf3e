"""``tokensmith serve``: run the authorization server (uvicorn), in one process or several."""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Annotated, Literal

import typer

from tokensmith.cli.common import ConfigOption, fail, load_or_exit
from tokensmith.config.server import ServerConfig


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: the config's `host`, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: the config's `port`, 9001).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (they share the database).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log one line per request (at log level info or lower). About 15 µs of CPU per request: "
            "--no-access-log when a proxy in front already logs requests."
        ),
    ] = True,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option(help="text: uvicorn's lines; json: one JSON object per line (time, level, logger, message)."),
    ] = LogFormatChoice.text,
) -> None:
    """Run the authorization server."""
    settings = load_or_exit(config)
    try:
        from uvicorn.logging import DefaultFormatter

        from tokensmith.server.key_encryption import KeyEncryptionError
        from tokensmith.server.log_format import JsonFormatter
        from tokensmith.server.serving import ServeFailed, serve_server
    except ImportError as exc:
        raise fail(f"the server is not installed ({exc.name} missing): pip install 'tokensmith[server]'") from None
    chosen_format: Literal["text", "json"] = "json" if log_format is LogFormatChoice.json else "text"
    # What the start-up below logs (a key-encryption key file created, say) comes out in the chosen format too;
    # uvicorn configures logging for what follows.
    startup_log = logging.StreamHandler()
    startup_log.setFormatter(
        JsonFormatter() if chosen_format == "json" else DefaultFormatter("%(levelprefix)s %(message)s")
    )
    tokensmith_logger = logging.getLogger("tokensmith")
    tokensmith_logger.addHandler(startup_log)
    # Open (and migrate) the database once before serving: an unreachable database is one line, not a
    # traceback per worker, and workers then start on an up-to-date schema.
    try:
        asyncio.run(_prepare_database(settings))
    except KeyEncryptionError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # any driver error: report it on one line
        raise fail(f"cannot open the database {_redacted(settings.database_url)}: {_one_line(exc)}") from None
    finally:
        tokensmith_logger.removeHandler(startup_log)
    try:
        serve_server(
            settings,
            config_path=config,
            host=host or settings.host,
            port=settings.port if port is None else port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            log_format=chosen_format,
        )
    except ServeFailed as exc:
        raise fail(str(exc)) from None


async def _prepare_database(settings: ServerConfig) -> None:
    """Migrate the schema and create any missing signing key, once, before the server processes start: worker
    processes starting together then all load the same keys instead of each adding one."""
    from tokensmith.server.key_encryption import configured_encryption_key
    from tokensmith.server.keys import KeyManager
    from tokensmith.store import opened_store

    encryption_key = configured_encryption_key(settings.keys, settings.database_url)
    async with opened_store(settings.database_url) as store:
        await KeyManager(store, settings.keys, encryption_key=encryption_key).load()


def _redacted(database_url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(malformed URL)"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
