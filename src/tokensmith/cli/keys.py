"""``tokensmith keys``: list and rotate the signing keys, make a key-encryption key, re-wrap the keys under one."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from tokensmith.cli.common import ConfigOption, fail, load_or_exit
from tokensmith.config.server import SIGNING_ALGORITHMS, ServerConfig

keys_app = typer.Typer(help="Signing keys and the key-encryption key that seals them.", no_args_is_help=True)


@keys_app.command("list")
def keys_list(config: ConfigOption = None) -> None:
    """List the signing keys in the database (active and retired)."""
    settings = load_or_exit(config)
    _run(_keys(settings, rotate=None))


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
    _run(_keys(settings, rotate=algorithms))


@keys_app.command("new-encryption-key")
def new_encryption_key(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write it to this new file (mode 0600) instead of printing it."),
    ] = None,
) -> None:
    """Make a key-encryption key (32 random bytes, base64url) for keys.encryption-key or keys.encryption-key-file."""
    from tokensmith.server.key_encryption import new_key_text, write_key_file

    text = new_key_text()
    if output is None:
        typer.echo(text)
        return
    try:
        write_key_file(output, text)
    except FileExistsError:
        raise fail(f"{output} exists; a key-encryption key is never overwritten") from None
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote a new key-encryption key to {output}")


@keys_app.command("rewrap")
def rewrap(
    new_encryption_key_file: Annotated[
        Path, typer.Option(help="The new key-encryption key, in a file (`tokensmith keys new-encryption-key -o`).")
    ],
    config: ConfigOption = None,
) -> None:
    """Re-encrypt every private signing key under a new key-encryption key, in one transaction. Then start every
    server with keys.encryption-key-file (or keys.encryption-key) set to the new key: the old one no longer opens
    them."""
    settings = load_or_exit(config)
    _run(_rewrap(settings, new_encryption_key_file))


def _run(command: Coroutine[Any, Any, None]) -> None:
    from tokensmith.server.key_encryption import KeyEncryptionError

    try:
        asyncio.run(command)
    except KeyEncryptionError as exc:
        raise fail(str(exc)) from None


async def _rewrap(settings: ServerConfig, new_key_file: Path) -> None:
    from tokensmith.server.key_encryption import KeyEncryptionKey, configured_encryption_key
    from tokensmith.server.keys import rewrap_keys
    from tokensmith.store import opened_store

    current = configured_encryption_key(settings.keys, settings.database_url)
    new = KeyEncryptionKey.from_file(new_key_file)
    if new.id == current.id:
        raise fail(f"{new_key_file} holds the key-encryption key already configured ({current.id})")
    async with opened_store(settings.database_url) as store:
        count = await rewrap_keys(store, current, new)
    typer.echo(
        f"re-encrypted {count} signing key(s) under key-encryption key {new.id} (was {current.id}); start the "
        f"servers with keys.encryption-key-file: {new_key_file}"
    )


async def _keys(settings: ServerConfig, *, rotate: list[str] | None) -> None:
    from tokensmith.server.key_encryption import configured_encryption_key
    from tokensmith.server.keys import KeyManager
    from tokensmith.store import opened_store

    encryption_key = configured_encryption_key(settings.keys, settings.database_url)
    async with opened_store(settings.database_url) as store:
        manager = KeyManager(store, settings.keys, encryption_key=encryption_key)
        await manager.load()
        if rotate is not None:
            for record in await manager.rotate(rotate or None):
                typer.echo(f"new active {record.alg} key {record.kid}")
        for record in sorted(manager.records, key=lambda r: (r.alg, r.created_at)):
            retired = f" retired {record.retired_at:%Y-%m-%d %H:%M:%S}Z" if record.retired_at else ""
            created = f"{record.created_at:%Y-%m-%d %H:%M:%S}Z"
            typer.echo(
                f"{record.kid}  {record.alg}  {record.status:<7}  created {created}{retired}"
                f"  sealed under {record.encryption_key_id}"
            )
