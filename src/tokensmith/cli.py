"""The ``tokensmith`` command.

Commands of other parts of the project are registered in ``PLUGIN_COMMANDS`` with one line each
(``"name": "module:attribute"``, the attribute a function or a ``typer.Typer`` group). A plugin whose extra is not
installed (``ModuleNotFoundError``) is left out, so ``pip install tokensmith`` without ``[server]`` still has a working CLI.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from tokensmith import __version__
from tokensmith.config.loader import load_config
from tokensmith.config.server import SIGNING_ALGORITHMS, ServerConfig
from tokensmith.errors import ConfigError

CONFIG_ENV = "TOKENSMITH_CONFIG"

# name -> "module:attribute". One line registers a command (function) or a command group (typer.Typer).
PLUGIN_COMMANDS: dict[str, str] = {
    "demo": "tokensmith.demo.cli:demo",
    "bench": "tokensmith.bench:bench",
    "audit": "tokensmith.cli_exchange:audit_command",
    "exchange": "tokensmith.cli_exchange:exchange_command",
    "clients": "tokensmith.cli_registry:clients_app",
    "users": "tokensmith.cli_registry:users_app",
}

app = typer.Typer(
    name="tokensmith",
    help="An OAuth 2.0 / OpenID Connect authorization server with first-class Token Exchange (RFC 8693).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
keys_app = typer.Typer(help="List and rotate the signing keys.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")

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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokensmith {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """tokensmith: run the authorization server and manage its configuration and keys."""


@app.command()
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
) -> None:
    """Run the authorization server."""
    settings = load_or_exit(config)
    try:
        from tokensmith.server.serving import ServeFailed, serve_server
    except ImportError as exc:
        raise fail(f"the server is not installed ({exc.name} missing): pip install 'tokensmith[server]'") from None
    # Open (and migrate) the database once before serving: an unreachable database is one line, not a
    # traceback per worker, and workers then start on an up-to-date schema.
    try:
        asyncio.run(_prepare_database(settings))
    except Exception as exc:  # any driver error: report it on one line
        raise fail(f"cannot open the database {_redacted(settings.database_url)}: {_one_line(exc)}") from None
    try:
        serve_server(
            settings,
            config_path=config,
            host=host or settings.host,
            port=settings.port if port is None else port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
        )
    except ServeFailed as exc:
        raise fail(str(exc)) from None


async def _prepare_database(settings: ServerConfig) -> None:
    """Migrate the schema and create any missing signing key, once, before the server processes start: worker
    processes starting together then all load the same keys instead of each adding one."""
    from tokensmith.keys import KeyManager
    from tokensmith.store import opened_store

    async with opened_store(settings.database_url) as store:
        await KeyManager(store, settings.keys).load()


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


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="The YAML configuration file.")]) -> None:
    """Validate a configuration file: print OK, or the one-line problem and exit 1."""
    settings = load_or_exit(path)
    typer.echo(f"OK: {path} ({len(settings.clients)} clients, {len(settings.users)} users, issuer {settings.issuer})")


@keys_app.command("list")
def keys_list(config: ConfigOption = None) -> None:
    """List the signing keys in the database (active and retired)."""
    settings = load_or_exit(config)
    asyncio.run(_keys(settings, rotate=None))


@keys_app.command("rotate")
def keys_rotate(
    config: ConfigOption = None,
    alg: Annotated[
        list[str] | None,
        typer.Option(
            "--alg", help="Rotate only this algorithm (ES256 or RS256); repeatable. Default: every active one."
        ),
    ] = None,
) -> None:
    """Add a new active key per algorithm and retire the old one (kept in the JWKS for retired-key-grace)."""
    settings = load_or_exit(config)
    algorithms = alg or []
    unknown = [a for a in algorithms if a not in SIGNING_ALGORITHMS]
    if unknown:
        raise fail(f"unsupported algorithm(s) {unknown}; supported: {list(SIGNING_ALGORITHMS)}")
    asyncio.run(_keys(settings, rotate=algorithms))


async def _keys(settings: ServerConfig, *, rotate: list[str] | None) -> None:
    from tokensmith.keys import KeyManager
    from tokensmith.store import opened_store

    async with opened_store(settings.database_url) as store:
        manager = KeyManager(store, settings.keys)
        await manager.load()
        if rotate is not None:
            for record in await manager.rotate(rotate or None):
                typer.echo(f"new active {record.alg} key {record.kid}")
        for record in sorted(manager.records, key=lambda r: (r.alg, r.created_at)):
            retired = f" retired {record.retired_at:%Y-%m-%d %H:%M:%S}Z" if record.retired_at else ""
            created = f"{record.created_at:%Y-%m-%d %H:%M:%S}Z"
            typer.echo(f"{record.kid}  {record.alg}  {record.status:<7}  created {created}{retired}")


@app.command("purge")
def purge(config: ConfigOption = None) -> None:
    """Delete expired codes, tokens, sessions, login counts and audit events past audit-retention now (what the
    server does every purge-interval)."""
    settings = load_or_exit(config)
    asyncio.run(_purge(settings))


async def _purge(settings: ServerConfig) -> None:
    from tokensmith.keys import utc_now
    from tokensmith.store import opened_store

    async with opened_store(settings.database_url) as store:
        now = utc_now()
        deleted = await store.purge_expired(now, audit_events_before=settings.audit_events_expire_before(now))
    typer.echo(f"purged {deleted} expired row{'' if deleted == 1 else 's'}")


@app.command("hash-password")
def hash_password_command(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input instead of a prompt.")
    ] = False,
) -> None:
    """Hash a password or client secret for the config file (prints {argon2}...)."""
    try:
        from tokensmith.server.passwords import hash_password
    except ImportError:
        raise fail("password hashing needs the server extra: pip install 'tokensmith[server]'") from None
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise fail("the password is empty")
    typer.echo(hash_password(password))


def _register_plugins() -> None:
    for name, target in PLUGIN_COMMANDS.items():
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue  # that part's extra is not installed
        command = getattr(module, attribute)
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)


_register_plugins()


def main() -> None:
    app()
