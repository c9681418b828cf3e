"""Private signing keys at rest: sealed under the key-encryption key, where that key comes from, a wrong or missing
key named at start, keys of earlier versions sealed in place, ``tokensmith keys rewrap``, nothing secret logged."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from tokensmith import jose
from tokensmith.cli import app as cli
from tokensmith.config.loader import load_config
from tokensmith.config.server import KeySettings
from tokensmith.errors import ConfigError
from tokensmith.server.app import create_app
from tokensmith.server.key_encryption import (
    ENVIRONMENT_VARIABLE,
    KeyEncryptionError,
    KeyEncryptionKey,
    configured_encryption_key,
    new_key_text,
)
from tokensmith.server.keys import KeyManager, generate_key, open_private_key, rewrap_keys
from tokensmith.store.migrations import MIGRATIONS_DIR
from tokensmith.store.sql import SqlStore
from tokensmith.store.tables import signing_keys

CLAIMS = {"iss": "https://as.example", "sub": "alice", "aud": "message-service"}
# Keys of an earlier version made a minute ago: retired ones are still in their grace period.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
runner = CliRunner()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def loaded(url: str, encryption_key: KeyEncryptionKey, settings: KeySettings | None = None) -> KeyManager:
    """A key manager loaded from the database at ``url`` (its store closed again: signing needs no database)."""
    store = SqlStore(url)
    await store.initialize()
    try:
        manager = KeyManager(store, settings or KeySettings(), encryption_key=encryption_key)
        await manager.load()
        return manager
    finally:
        await store.close()


def private_parts(manager: KeyManager) -> list[str]:
    """Every private member of every key the manager holds, as they would appear in a leak."""
    parts = []
    for record in manager.records:
        jwk = open_private_key(record, manager.encryption_key).as_dict(private=True)
        parts += [str(jwk[name]) for name in ("d", "p", "q", "dp", "dq", "qi") if name in jwk]
    return parts


# --- the key-encryption key -------------------------------------------------------------------------------------


def test_a_sealed_key_opens_only_for_its_own_kid_and_alg() -> None:
    kek = KeyEncryptionKey.generate()
    jwk = {"kty": "EC", "crv": "P-256", "d": "private"}
    sealed = kek.seal_jwk(jwk, kid="k1", alg="ES256")
    assert kek.open_jwk(sealed, kid="k1", alg="ES256") == jwk
    assert "private" not in sealed
    assert kek.seal_jwk(jwk, kid="k1", alg="ES256") != sealed  # a fresh nonce each time
    # Moved to another row, or altered, it does not open.
    for kid, alg in [("k2", "ES256"), ("k1", "RS256")]:
        with pytest.raises(KeyEncryptionError, match="altered or belongs to another key"):
            kek.open_jwk(sealed, kid=kid, alg=alg)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(KeyEncryptionError):
        kek.open_jwk(flipped, kid="k1", alg="ES256")
    with pytest.raises(KeyEncryptionError):
        KeyEncryptionKey.generate().open_jwk(sealed, kid="k1", alg="ES256")


def test_a_key_encryption_key_is_32_bytes_in_base64url_and_never_shown() -> None:
    text = new_key_text()
    kek = KeyEncryptionKey.from_text(f" {text}\n", "the test")
    assert kek.id == KeyEncryptionKey.from_text(text, "elsewhere").id
    assert kek.id != KeyEncryptionKey.generate().id
    assert text not in repr(kek)
    assert kek.id in repr(kek)
    for bad in ["", "short", text[:-4], text + "AAAA", "é" * 43, "not base64 at all!" * 3]:
        with pytest.raises(KeyEncryptionError, match="is not 32 bytes in base64url") as caught:
            KeyEncryptionKey.from_text(bad, "keys.encryption-key")
        assert "keys.encryption-key" in str(caught.value)
        assert not bad or bad not in str(caught.value)


def test_the_key_comes_from_the_setting_or_the_file(tmp_path: Path) -> None:
    text = new_key_text()
    expected = KeyEncryptionKey.from_text(text, "").id
    database = "postgresql+asyncpg://db.example/tokensmith"
    assert configured_encryption_key(KeySettings(encryption_key=text), database).id == expected
    key_file = tmp_path / "kek"
    key_file.write_text(text + "\n")
    from_file = configured_encryption_key(KeySettings(encryption_key_file=key_file), database)
    assert (from_file.id, from_file.source) == (expected, f"keys.encryption-key-file {key_file}")
    with pytest.raises(KeyEncryptionError, match=r"cannot read the key-encryption key from keys\.encryption-key-file"):
        configured_encryption_key(KeySettings(encryption_key_file=tmp_path / "missing"), database)


def test_the_environment_variable_sets_the_key_and_both_settings_are_refused(tmp_path: Path) -> None:
    text = new_key_text()
    config = load_config(environ={ENVIRONMENT_VARIABLE: text})
    assert config.keys.encryption_key is not None
    assert configured_encryption_key(config.keys, config.database_url).id == KeyEncryptionKey.from_text(text, "").id
    assert text not in repr(config)
    assert text not in str(config.keys)
    with pytest.raises(ConfigError, match="keys: set encryption-key or encryption-key-file, not both"):
        load_config(environ={ENVIRONMENT_VARIABLE: text, "TOKENSMITH_KEYS__ENCRYPTION_KEY_FILE": str(tmp_path)})


def test_postgresql_needs_a_configured_key() -> None:
    with pytest.raises(KeyEncryptionError, match=f"keys.encryption-key is not set.*{ENVIRONMENT_VARIABLE}"):
        configured_encryption_key(KeySettings(), "postgresql+asyncpg://db.example/tokensmith")


def test_sqlite_gets_a_private_key_file_beside_the_database_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    database = tmp_path / "data" / "tokensmith.db"
    first = configured_encryption_key(KeySettings(), sqlite_url(database))
    key_file = tmp_path / "data" / "tokensmith.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.id == KeyEncryptionKey.from_file(key_file).id
    assert str(key_file) in first.source
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"created {key_file}" in warnings[0]
    # Later starts read the same key, without a word.
    assert configured_encryption_key(KeySettings(), sqlite_url(database)).id == first.id
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["tokensmith.db.key"]  # no temporary file left


def test_processes_starting_together_agree_on_the_default_key(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "tokensmith.db")
    ids = {configured_encryption_key(KeySettings(), url).id for _ in range(5)}
    assert len(ids) == 1


def test_an_in_memory_database_gets_a_key_of_its_own() -> None:
    kek = configured_encryption_key(KeySettings(), "sqlite+aiosqlite:///:memory:")
    assert "in-memory" in kek.source


# --- sealed in the database ---------------------------------------------------------------------------------------


async def test_the_database_holds_no_private_key_in_clear(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "t.db")
    manager = await loaded(url, KeyEncryptionKey.generate())
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(signing_keys))).mappings().all()
    finally:
        await engine.dispose()
    assert len(rows) == 2
    for row in rows:
        assert row["private_jwk"] is None
        assert row["encryption_key_id"] == manager.encryption_key.id
        assert not {"d", "p", "q"} & set(row["public_jwk"])
    dump = repr([dict(row) for row in rows])
    parts = private_parts(manager)
    assert parts
    assert not [part for part in parts if part in dump]


async def test_a_wrong_key_is_named_at_start(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "t.db")
    right, wrong = KeyEncryptionKey.generate(), KeyEncryptionKey.generate("keys.encryption-key")
    await loaded(url, right)
    with pytest.raises(KeyEncryptionError) as caught:
        await loaded(url, wrong)
    assert str(caught.value) == (
        f"the signing keys were encrypted under key-encryption key {right.id}; the configured one "
        f"(keys.encryption-key) is {wrong.id}"
    )


async def test_a_ciphertext_swapped_between_rows_does_not_open(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "t.db")
    kek = KeyEncryptionKey.generate()
    manager = await loaded(url, kek)
    es, rs = sorted(manager.records, key=lambda r: r.alg)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                signing_keys.update()
                .where(signing_keys.c.kid == es.kid)
                .values(encrypted_private_jwk=rs.encrypted_private_jwk)
            )
    finally:
        await engine.dispose()
    with pytest.raises(KeyEncryptionError, match=f"ES256 signing key {es.kid} does not open"):
        await loaded(url, kek)


async def _database_of_an_earlier_version(url: str, keys: list[dict[str, Any]]) -> None:
    """A database at revision 0006 (keys in clear) holding ``keys`` as that version wrote them."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    await asyncio.to_thread(command.upgrade, config, "0006")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(signing_keys), keys)
    finally:
        await engine.dispose()


def _plaintext_row(key: ECKey | RSAKey, alg: str, created_at: datetime) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "alg": alg,
        "private_jwk": dict(key.as_dict(private=True)),
        "created_at": created_at,
        "status": "active",
    }


async def test_keys_of_an_earlier_version_are_sealed_in_place_at_start(store_url: str) -> None:
    url = store_url
    es = ECKey.generate_key("P-256", parameters={"kid": "es-old", "alg": "ES256", "use": "sig"}, private=True)
    rs = RSAKey.generate_key(2048, parameters={"kid": "rs-old", "alg": "RS256", "use": "sig"}, private=True)
    # Replicas of that version starting together could leave two active keys of one algorithm.
    es_twin = ECKey.generate_key("P-256", parameters={"kid": "es-twin", "alg": "ES256", "use": "sig"}, private=True)
    rows = [_plaintext_row(es, "ES256", NOW), _plaintext_row(rs, "RS256", NOW), _plaintext_row(es_twin, "ES256", NOW)]
    await _database_of_an_earlier_version(url, rows)
    before = jose.Key(es, ["ES256"]).sign(CLAIMS, alg="ES256")

    kek = KeyEncryptionKey.generate()
    manager = await loaded(url, kek)
    by_kid = {r.kid: r for r in manager.records}
    assert set(by_kid) == {"es-old", "rs-old", "es-twin"}
    assert {r.encryption_key_id for r in by_kid.values()} == {kek.id}
    # The oldest of the twins kept signing; the other was retired as of its creation.
    assert (by_kid["es-old"].status, by_kid["es-twin"].status) == ("active", "retired")
    assert by_kid["es-twin"].retired_at == NOW
    assert manager.verify(before).claims == CLAIMS
    assert manager.verify(manager.sign(CLAIMS, alg="ES256")).header["kid"] == "es-old"
    assert manager.verify(manager.sign(CLAIMS, alg="RS256")).header["kid"] == "rs-old"
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            clear = (await connection.execute(select(signing_keys.c.private_jwk))).scalars().all()
    finally:
        await engine.dispose()
    assert clear == [None, None, None]
    # The next start finds nothing left to seal and the same keys.
    again = await loaded(url, kek)
    assert again.records == manager.records


async def test_processes_sealing_the_same_old_keys_at_once_agree(store_url: str) -> None:
    url = store_url
    es = ECKey.generate_key("P-256", parameters={"kid": "es-old", "alg": "ES256"}, private=True)
    await _database_of_an_earlier_version(url, [_plaintext_row(es, "ES256", NOW)])
    kek = KeyEncryptionKey.generate()
    settings = KeySettings(access_token_algorithm="ES256", id_token_algorithm="ES256")
    managers = await asyncio.gather(*(loaded(url, kek, settings) for _ in range(3)))
    assert all(m.records == managers[0].records for m in managers)
    assert [r.kid for r in managers[0].records] == ["es-old"]


# --- rewrap ---------------------------------------------------------------------------------------------------


def _invoke(*args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_new_encryption_key_prints_or_writes_a_private_file(tmp_path: Path) -> None:
    printed = _invoke("keys", "new-encryption-key").strip()
    assert KeyEncryptionKey.from_text(printed, "printed").id
    path = tmp_path / "kek"
    assert "wrote a new key-encryption key" in _invoke("keys", "new-encryption-key", "--output", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyEncryptionKey.from_file(path).id
    again = runner.invoke(cli, ["keys", "new-encryption-key", "--output", str(path)])
    assert again.exit_code == 1
    assert "never overwritten" in again.output


async def test_rewrap_moves_every_key_to_the_new_key_and_the_old_one_is_refused(tmp_path: Path) -> None:
    old_file, new_file = tmp_path / "old.kek", tmp_path / "new.kek"
    database = tmp_path / "t.db"
    config_file = tmp_path / "server.yaml"
    config_file.write_text(
        f"database-url: {sqlite_url(database)}\nissuer: http://testserver\nkeys:\n"
        f"  encryption-key-file: {old_file}\n  rotation-interval: 0\n"
    )
    await asyncio.to_thread(_invoke, "keys", "new-encryption-key", "-o", str(old_file))
    await asyncio.to_thread(_invoke, "keys", "new-encryption-key", "-o", str(new_file))
    old, new = KeyEncryptionKey.from_file(old_file), KeyEncryptionKey.from_file(new_file)
    before = await loaded(sqlite_url(database), old)
    await before.rotate(["ES256"])  # a retired key is re-wrapped too
    token = before.sign(CLAIMS, alg="ES256")

    output = await asyncio.to_thread(
        _invoke, "keys", "rewrap", "--config", str(config_file), "--new-encryption-key-file", str(new_file)
    )
    assert f"re-encrypted 3 signing key(s) under key-encryption key {new.id} (was {old.id})" in output

    # The server refuses the old key, at start, in one line.
    refused = await asyncio.to_thread(runner.invoke, cli, ["serve", "--config", str(config_file)])
    assert refused.exit_code == 1
    assert f"the signing keys were encrypted under key-encryption key {new.id}" in refused.output
    assert f"the configured one (keys.encryption-key-file {old_file}) is {old.id}" in refused.output
    assert "Traceback" not in refused.output

    # With the new key it starts on the same keys: tokens signed before still verify.
    after = await loaded(sqlite_url(database), new)
    assert [r.kid for r in after.records] == [r.kid for r in before.records]
    assert after.verify(token).claims == CLAIMS
    assert after.sign(CLAIMS, alg="ES256").split(".")[0] == token.split(".")[0]
    config = load_config(config_file, environ={"TOKENSMITH_KEYS__ENCRYPTION_KEY_FILE": str(new_file)})
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        jwks = (await http.get("/oauth2/jwks")).json()
    assert {k["kid"] for k in jwks["keys"]} == {r.kid for r in before.records}

    same = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["keys", "rewrap", "--config", str(config_file), "--new-encryption-key-file", str(new_file)],
        env={"TOKENSMITH_KEYS__ENCRYPTION_KEY_FILE": str(new_file)},
    )
    assert same.exit_code == 1
    assert "already configured" in same.output


async def test_rewrap_refuses_keys_under_another_key_and_changes_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "t.db")
    owner, stranger, new = KeyEncryptionKey.generate(), KeyEncryptionKey.generate(), KeyEncryptionKey.generate()
    before = await loaded(url, owner)
    store = SqlStore(url)
    await store.initialize()
    try:
        with pytest.raises(KeyEncryptionError, match="encrypted under key-encryption key"):
            await rewrap_keys(store, stranger, new)
        assert list(await store.list_signing_keys()) == list(before.records)
    finally:
        await store.close()


# --- nothing secret in a log line or an error ----------------------------------------------------------------


async def test_no_key_material_in_any_log_line_or_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A database of an earlier version (written by this test's own engine, before the capture starts).
    old_key = ECKey.generate_key("P-256", parameters={"kid": "old", "alg": "ES256"}, private=True)
    other_url = sqlite_url(tmp_path / "old.db")
    await _database_of_an_earlier_version(other_url, [_plaintext_row(old_key, "ES256", NOW)])
    caplog.set_level(logging.DEBUG)
    url = sqlite_url(tmp_path / "t.db")
    default = configured_encryption_key(KeySettings(), url)  # creates the file beside the database, with a warning
    default_text = (tmp_path / "t.db.key").read_text().strip()

    settings = KeySettings(rotation_interval=timedelta(seconds=1))
    manager = await loaded(url, default, settings)
    sealed_old = await loaded(other_url, default, settings)
    new_text = new_key_text()
    new = KeyEncryptionKey.from_text(new_text, "the new key")
    store = SqlStore(url)
    await store.initialize()
    try:
        await asyncio.sleep(1.1)
        await KeyManager(store, settings, encryption_key=default).load()  # rotates: both keys are a second old
        await rewrap_keys(store, default, new)
    finally:
        await store.close()
    errors = []
    for attempt in (loaded(url, default), loaded(other_url, new)):
        with pytest.raises(KeyEncryptionError) as caught:
            await attempt
        errors.append(str(caught.value))

    secrets = [default_text, new_text, *private_parts(manager), *private_parts(sealed_old)]
    secrets.append(str(old_key.as_dict(private=True)["d"]))
    assert caplog.records
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records) + "\n".join(errors)
    leaks = [f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records for s in secrets if s in r.getMessage()]
    assert [s for s in secrets if s in text] == [], leaks
    assert os.environ.get(ENVIRONMENT_VARIABLE) is None  # nothing of this test leaked into the environment


def test_a_record_shows_no_private_key() -> None:
    kek = KeyEncryptionKey.generate()
    record = generate_key("ES256", NOW, kek)
    private = open_private_key(record, kek).as_dict(private=True)["d"]
    assert private not in repr(record)
    assert private not in repr(dataclasses.asdict(record))


def test_the_demo_takes_the_key_encryption_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tokensmith.demo.settings import ARTICLE_TOPOLOGY, load_server_config

    text = new_key_text()
    monkeypatch.delenv("TOKENSMITH_KEYS__ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, text)
    config = load_server_config(ARTICLE_TOPOLOGY, "postgresql+asyncpg://db.example/demo")
    assert configured_encryption_key(config.keys, config.database_url).id == KeyEncryptionKey.from_text(text, "").id
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    config = load_server_config(ARTICLE_TOPOLOGY, "postgresql+asyncpg://db.example/demo")
    with pytest.raises(KeyEncryptionError, match=ENVIRONMENT_VARIABLE):
        configured_encryption_key(config.keys, config.database_url)


def test_serve_on_postgresql_without_a_key_says_which_setting_in_one_line(tmp_path: Path) -> None:
    config_file = tmp_path / "server.yaml"
    config_file.write_text("database-url: postgresql+asyncpg://tokensmith@127.0.0.1:1/none\n")
    result = runner.invoke(cli, ["serve", "--config", str(config_file)], env={ENVIRONMENT_VARIABLE: None})
    assert result.exit_code == 1
    assert result.output.startswith("tokensmith: keys.encryption-key is not set")
    assert ENVIRONMENT_VARIABLE in result.output
    assert "Traceback" not in result.output
