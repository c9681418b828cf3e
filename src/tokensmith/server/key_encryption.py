"""Private signing keys at rest: sealed with AES-256-GCM under a key-encryption key (KEK) the operator provides.

A KEK is 32 random bytes written in base64url (``tokensmith keys new-encryption-key``). It comes from
``keys.encryption-key`` (``TOKENSMITH_KEYS__ENCRYPTION_KEY``) or ``keys.encryption-key-file``. With neither, a SQLite
database gets one in a file beside it (``tokensmith.db.key``, mode 0600, created at first start with a warning), so
that the database file alone does not reveal the keys; PostgreSQL (several replicas) needs one configured.

Each private key is sealed with a fresh random 96-bit nonce, and its ``kid`` and ``alg`` are the associated data: a
ciphertext moved to another row does not open. Every row names the KEK that sealed it by an id (a hash of the KEK
that reveals nothing of it), so a wrong KEK is reported at start, naming both ids, rather than at the first
signature. Neither the KEK nor a private key ever appears in a log line, a ``repr`` or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokensmith.config.server import KeySettings
from tokensmith.store.engine import sqlite_database_file

logger = logging.getLogger("tokensmith.server")

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
# The default KEK file of a SQLite database: its path plus this suffix.
KEY_FILE_SUFFIX: Final = ".key"
KEY_FILE_MODE: Final = 0o600
ENVIRONMENT_VARIABLE: Final = "TOKENSMITH_KEYS__ENCRYPTION_KEY"
_ID_LABEL: Final = b"tokensmith key-encryption-key id\x00"
_HOW_TO_MAKE_ONE: Final = "make one with `tokensmith keys new-encryption-key`"


class KeyEncryptionError(Exception):
    """The key-encryption key is missing, malformed or not the one the signing keys were sealed under."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyEncryptionKey:
    """A KEK and where it came from (``source``, for messages). Its ``repr`` shows the id, never the key."""

    __slots__ = ("_aead", "_secret", "id", "source")

    def __init__(self, secret: bytes, source: str) -> None:
        if len(secret) != KEY_BYTES:
            raise KeyEncryptionError(
                f"the key-encryption key from {source} is not {KEY_BYTES} bytes in base64url; {_HOW_TO_MAKE_ONE}"
            )
        self._aead = AESGCM(secret)
        self._secret = secret
        self.id = hashlib.sha256(_ID_LABEL + secret).hexdigest()[:16]
        self.source = source

    @classmethod
    def generate(cls, source: str = "a new random key") -> KeyEncryptionKey:
        return cls(secrets.token_bytes(KEY_BYTES), source)

    @classmethod
    def from_text(cls, text: str, source: str) -> KeyEncryptionKey:
        """The KEK written in base64url (surrounding white space ignored)."""
        try:
            secret = _b64decode(text.strip())
        except (binascii.Error, ValueError):
            secret = b""
        return cls(secret, source)

    @classmethod
    def from_file(cls, path: Path, source: str | None = None) -> KeyEncryptionKey:
        source = source or f"the file {path}"
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise KeyEncryptionError(f"cannot read the key-encryption key from {source}: {exc.strerror}") from None
        return cls.from_text(text, source)

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(id={self.id!r}, source={self.source!r})"

    def derive_secret(self, purpose: str) -> bytes:
        """A 32-byte secret for ``purpose`` (HMAC-SHA256 under this key): the same on every replica holding the key,
        and telling nothing about the key itself."""
        return hmac.new(self._secret, b"tokensmith derived secret\x00" + purpose.encode(), hashlib.sha256).digest()

    def seal_jwk(self, jwk: dict[str, Any], *, kid: str, alg: str) -> str:
        """``jwk`` encrypted and authenticated, bound to ``kid`` and ``alg``: base64url of nonce and ciphertext."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        plaintext = json.dumps(jwk, separators=(",", ":")).encode()
        return _b64encode(nonce + self._aead.encrypt(nonce, plaintext, _associated_data(kid, alg)))

    def open_jwk(self, sealed: str, *, kid: str, alg: str) -> dict[str, Any]:
        """What :meth:`seal_jwk` sealed for this ``kid`` and ``alg``; :class:`KeyEncryptionError` if it does not open."""
        try:
            data = _b64decode(sealed)
            plaintext = self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _associated_data(kid, alg))
        except (InvalidTag, binascii.Error, ValueError):
            raise KeyEncryptionError(
                f"the private {alg} signing key {kid} does not open with key-encryption key {self.id}: its "
                "ciphertext was altered or belongs to another key"
            ) from None
        jwk: dict[str, Any] = json.loads(plaintext)
        return jwk


def _associated_data(kid: str, alg: str) -> bytes:
    return json.dumps(["tokensmith signing key", kid, alg]).encode()


def new_key_text() -> str:
    """A new KEK, written as configuration expects it."""
    return _b64encode(secrets.token_bytes(KEY_BYTES))


def write_key_file(path: Path, text: str) -> None:
    """Create ``path`` (mode 0600) holding ``text``; FileExistsError when it exists (a KEK is never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text + "\n")


def configured_encryption_key(settings: KeySettings, database_url: str) -> KeyEncryptionKey:
    """The KEK for the server's configuration (module docstring); :class:`KeyEncryptionError` when there is none."""
    if settings.encryption_key is not None:
        return KeyEncryptionKey.from_text(settings.encryption_key.get_secret_value(), "keys.encryption-key")
    if settings.encryption_key_file is not None:
        path = settings.encryption_key_file
        return KeyEncryptionKey.from_file(path, f"keys.encryption-key-file {path}")
    if not database_url.startswith("sqlite"):
        raise KeyEncryptionError(
            "keys.encryption-key is not set: a PostgreSQL database needs the key-encryption key that seals its "
            f"signing keys, the same for every replica; set {ENVIRONMENT_VARIABLE} or keys.encryption-key-file "
            f"({_HOW_TO_MAKE_ONE})"
        )
    database = sqlite_database_file(database_url)
    if database is None:  # an in-memory database lives no longer than this process, and neither does its KEK
        return KeyEncryptionKey.generate("a random key for the in-memory database")
    return _key_file_beside(database)


def _key_file_beside(database: Path) -> KeyEncryptionKey:
    path = database.with_name(database.name + KEY_FILE_SUFFIX)
    source = f"the file {path} (the default beside the database)"
    if not path.exists():
        # Written under a temporary name and linked into place: processes starting together all read one whole key.
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
        write_key_file(temporary, new_key_text())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        else:
            logger.warning(
                "created %s: the key-encryption key of the signing keys in %s. Keep it apart from backups of the "
                "database, or set keys.encryption-key-file (docs/security.md, 'Keys at rest')",
                path.resolve(),
                database.resolve(),
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return KeyEncryptionKey.from_file(path, source)
