"""A PostgreSQL server for the test session.

``TOKENSMITH_TEST_POSTGRES_URL`` points at an existing server when set (its user needs ``CREATEDB``: tests that
want an empty database get a fresh one). Otherwise a throw-away cluster is made
with Debian's binaries (``initdb`` + ``pg_ctl``) in a temporary directory: it listens on 127.0.0.1 on a free
port, keeps its socket in that directory, trusts local connections and skips fsync (test data need not survive
a crash). PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

ENV_URL = "TOKENSMITH_TEST_POSTGRES_URL"
DATABASE = "tokensmith_test"
SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL could be found or started; the message says why."""


def find_bin_dir() -> Path:
    """The newest Debian PostgreSQL ``bin`` directory (or the one holding ``initdb`` on PATH)."""

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin/", path)
        return tuple(int(part) for part in match.group(1).split(".")) if match else ()

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(on_path)
    for initdb in candidates:
        bin_dir = Path(initdb).parent
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    raise PostgresUnavailable("PostgreSQL binaries not found (install Debian's `postgresql` package)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TemporaryCluster:
    directory: Path
    bin_dir: Path
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{SERVER_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def command(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def run(self, program: str, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(self.command(program, *args), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    def start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {self.directory}",  # the unix socket stays inside our directory
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=100",
                "-c shared_buffers=32MB",  # several test sessions may each run a cluster on one small machine
            ]
        )
        log = str(self.directory / "server.log")
        self.run("pg_ctl", "-D", str(self.data_dir), "-l", log, "-o", options, "-w", "-t", "60", "start", timeout=90)

    def stop(self) -> None:
        try:
            subprocess.run(
                self.command("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop"),
                capture_output=True,
                timeout=60,
            )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def shut_down(self) -> None:
        """Stop the server but keep its data (``start()`` brings it back): a database outage for a test."""
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop", timeout=60)

    def server_pid(self) -> int:
        """The postmaster's PID (its first line of ``postmaster.pid``): its process tree is the whole server."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def server_log(self) -> str:
        try:
            return (self.directory / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def _run_as() -> str | None:
    """PostgreSQL will not run as root: then the cluster belongs to the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL") from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and `runuser` is missing")
    return SERVER_USER


def start_temporary_cluster() -> TemporaryCluster:
    """initdb, start and create the test database; the caller must call ``stop()``."""
    bin_dir = find_bin_dir()
    run_as = _run_as()
    # As root the server user must reach the directory: /tmp is traversable by all, a root-only TMPDIR may not be.
    directory = Path(
        tempfile.mkdtemp(prefix="tokensmith-pg-", dir="/tmp" if run_as and Path("/tmp").is_dir() else None)
    )
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(directory, account.pw_uid, account.pw_gid)
    cluster = TemporaryCluster(directory=directory, bin_dir=bin_dir, port=0, run_as=run_as)
    try:
        cluster.run("initdb", "-D", str(cluster.data_dir), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        last_error: PostgresUnavailable | None = None
        # Another process may take the free port between our probe and the server's bind: try a few.
        for _ in range(3):
            cluster.port = free_port()
            try:
                cluster.start()
                break
            except PostgresUnavailable as exc:
                last_error = exc
        else:
            raise PostgresUnavailable(f"{last_error}\n{cluster.server_log()}")
        cluster.run("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", SERVER_USER, DATABASE)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def asyncpg_dsn(url: str | URL) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes for a SQLAlchemy URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def with_database(url: str | URL, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def new_database_name(prefix: str = "tokensmith_t_") -> str:
    return prefix + uuid.uuid4().hex[:16]


async def create_database(server_url: str, name: str) -> str:
    """Create an empty database on the server of ``server_url``; return the SQLAlchemy URL of the new database."""
    import asyncpg

    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await connection.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
