"""``tokensmith keys list`` and ``tokensmith keys rotate``: the signing keys in the database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tokensmith.cli.common import ConfigOption, fail, load_or_exit
from tokensmith.config.server import SIGNING_ALGORITHMS, ServerConfig

keys_app = typer.Typer(help="List and rotate the signing keys.", no_args_is_help=True)


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
    from tokensmith.server.keys import KeyManager
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
