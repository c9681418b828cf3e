"""``tokensmith hash-password``, and the password hashing that ``clients new`` and ``users new`` share."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from tokensmith.cli.common import fail


def password_hasher() -> Callable[[str], str]:
    """The server's password hashing (argon2id), or exit with one line naming the extra it needs."""
    try:
        from tokensmith.server.core.passwords import hash_password
    except ImportError:
        raise fail("password hashing needs the server extra: pip install 'tokensmith[server]'") from None
    return hash_password


def read_password(stdin: bool) -> str:
    """A password from standard input's first line, or typed twice at a hidden prompt; an empty one exits."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise fail("the password is empty")
    return password


def hash_password_command(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input instead of a prompt.")
    ] = False,
) -> None:
    """Hash a password or client secret for the config file (prints {argon2}...)."""
    hash_password = password_hasher()
    typer.echo(hash_password(read_password(stdin)))
