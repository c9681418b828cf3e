"""What a commit survives (``database-durability``), what a killed process leaves behind, and who may read the
database files."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from tests.server.exchange.http_support import RELAY, article_server_config
from tests.support.records import audit_event, issued_token
from tests.support.server import running_server

from tokensmith.config.loader import load_config
from tokensmith.config.server import ServerConfig
from tokensmith.store import Durability
from tokensmith.store.sql import SqlStore

DATABASE_FILES = ("tokensmith.db", "tokensmith.db-wal", "tokensmith.db-shm")
REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_configuration_asks_for_full_durability_unless_told_otherwise() -> None:
    assert ServerConfig().database_durability == "full"
    assert ServerConfig.model_validate({"database-durability": "normal"}).database_durability == "normal"
    with pytest.raises(ValueError, match="database-durability"):
        ServerConfig.model_validate({"database-durability": "off"})
    environ = {"TOKENSMITH_DATABASE_DURABILITY": "normal"}
    assert load_config(environ=environ).database_durability == "normal"


@pytest.mark.postgres
@pytest.mark.parametrize(("durability", "synchronous_commit"), [("full", "on"), ("normal", "off")])
async def test_postgresql_commits_as_the_durability_says(
    postgres_database_url: str, durability: Durability, synchronous_commit: str
) -> None:
    # The test cluster runs with synchronous_commit=off: "on" can only come from the store's connections.
    store = SqlStore(postgres_database_url, durability)
    await store.initialize()
    try:
        for engine in (store.engine, store.engine.execution_options(isolation_level="READ COMMITTED")):
            async with engine.connect() as connection:
                assert (await connection.execute(text("SHOW synchronous_commit"))).scalar() == synchronous_commit
    finally:
        await store.close()


# Records an exchange's two rows (its token, then its audit event) in several tasks at once, for ever, and prints
# each token's jti once both are committed: what a client would have been told.
_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from tests.support.records import audit_event, issued_token
    from tokensmith.store.sql import SqlStore

    async def main(url, durability):
        store = SqlStore(url, durability)
        await store.initialize()

        async def exchanges(worker):
            number = 0
            while True:
                jti = f"w{worker}-{number}"
                await store.record_issued_token(issued_token(jti))
                await store.add_audit_event(audit_event(reason=jti))
                sys.stdout.write(jti + "\\n")
                sys.stdout.flush()
                number += 1

        await asyncio.gather(*(exchanges(worker) for worker in range(8)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_a_killed_process_loses_no_committed_row(store_url: str, durability: Durability) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        store_url,
        durability,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )
    assert process.stdout is not None
    told: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(told) < 300:
                line = await process.stdout.readline()
                if not line:
                    _, stderr = await process.communicate()
                    pytest.fail(f"the writer stopped: {stderr.decode()[-2000:]}")
                told.append(line.decode().strip())
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)  # mid-flush, most likely: rows queued and a transaction open
    rest, _ = await process.communicate()
    told += [line for line in rest.decode().split("\n")[:-1]]  # a line cut by the kill has no newline
    assert process.returncode == -signal.SIGKILL

    store = SqlStore(store_url)
    await store.initialize()
    try:
        missing = [jti for jti in told if await store.get_issued_token(jti) is None]
        assert missing == []
        audited = {event.reason for event in await store.list_audit_events(limit=len(told) + 100)}
        assert set(told) <= audited
    finally:
        await store.close()


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, whatever the test run's: files would be world-readable unless created otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def file_modes(directory: Path) -> dict[str, int]:
    return {name: stat.S_IMODE((directory / name).stat().st_mode) for name in DATABASE_FILES}


@pytest.mark.usefixtures("umask_022")
async def test_a_new_database_and_its_wal_files_are_private_to_their_owner(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}")
    await store.initialize()
    try:
        await store.record_issued_token(issued_token("t1"))
        await store.add_audit_event(audit_event())
        # Looked at while the store is open: SQLite removes the -wal and -shm files when the last connection closes.
        assert file_modes(tmp_path) == dict.fromkeys(DATABASE_FILES, 0o600)
    finally:
        await store.close()


@pytest.mark.usefixtures("umask_022")
async def test_an_existing_database_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "tokensmith.db"
    path.touch(0o640)
    path.chmod(0o640)
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.initialize()
    try:
        await store.record_issued_token(issued_token("t1"))
        assert file_modes(tmp_path) == dict.fromkeys(DATABASE_FILES, 0o640)
    finally:
        await store.close()


@pytest.mark.usefixtures("umask_022")
async def test_the_servers_database_files_are_private_to_their_owner(tmp_path: Path) -> None:
    config = article_server_config(f"sqlite+aiosqlite:///{tmp_path / 'tokensmith.db'}")
    async with running_server(config) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=RELAY)
        assert response.status_code == 200, response.text
        assert file_modes(tmp_path) == dict.fromkeys(DATABASE_FILES, 0o600)


async def test_the_wal_starts_over_under_sustained_writes_and_reads(tmp_path: Path) -> None:
    # Each flush appends the pages it touched to the WAL; SQLite's automatic checkpoint copies them into the
    # database (every thousand pages) and the next transaction starts the WAL over, unless a reader still needs
    # it. Sequential exchanges are a flush each, with a read going on beside them: tens of megabytes through the
    # WAL, which must stay near the checkpoint's size.
    path = tmp_path / "tokensmith.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.initialize()
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            await store.is_token_revoked("t0")

    reading = asyncio.create_task(reader())
    try:
        for number in range(1500):
            await store.record_issued_token(issued_token(f"t{number}"))
        wal_bytes = (tmp_path / "tokensmith.db-wal").stat().st_size
    finally:
        stop.set()
        await reading
        await store.close()
    assert wal_bytes < 8 * 1024 * 1024
