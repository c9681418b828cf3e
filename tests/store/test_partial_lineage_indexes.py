"""The grant and lineage columns are indexed only where set (migration 0004): the indexes are partial on both
databases, and the revocation statements, which look those columns up by ``=`` and ``IN``, still use them. The
token endpoint's insert finds the parent and actor tokens by primary key, and the revocation cache's poll reads
only revoked tokens, in the plans PostgreSQL keeps for them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from tests.support.records import NOW, driver_sql, issued_token

from tokensmith.store import sql as store_sql
from tokensmith.store.records import IssuedTokenRecord
from tokensmith.store.sql import SqlStore

PARTIAL = {
    "ix_issued_tokens_grant_id": "grant_id",
    "ix_issued_tokens_parent_jti": "parent_jti",
    "ix_issued_tokens_actor_jti": "actor_jti",
    "ix_refresh_tokens_parent_jti": "parent_jti",
    "ix_refresh_tokens_actor_jti": "actor_jti",
}

# Each revocation statement with the partial indexes its plan must use (and no full scan of either table).
REVOCATIONS = [
    (
        store_sql._revoke_token_lineage,
        {"seed_jti": "seed"},
        {"ix_issued_tokens_parent_jti", "ix_issued_tokens_actor_jti"},
    ),
    (
        store_sql._revoke_token_refresh_lineage,
        {"seed_jti": "seed"},
        {
            "ix_issued_tokens_parent_jti",
            "ix_issued_tokens_actor_jti",
            "ix_refresh_tokens_parent_jti",
            "ix_refresh_tokens_actor_jti",
        },
    ),
    (
        store_sql._revoke_grant_tokens,
        {"target_grant": "grant-1"},
        {"ix_issued_tokens_grant_id", "ix_issued_tokens_parent_jti", "ix_issued_tokens_actor_jti"},
    ),
    (
        store_sql._revoke_grant_refresh_lineage,
        {"target_grant": "grant-1"},
        set(PARTIAL),
    ),
]


async def test_the_lineage_and_grant_indexes_leave_nulls_out(store: SqlStore) -> None:
    async with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        definitions = {name: sql for name, sql in (await connection.exec_driver_sql(query)).all()}
    for index, column in PARTIAL.items():
        definition = definitions[index]
        clause = f"WHERE {column} IS NOT NULL" if store.dialect == "sqlite" else f"WHERE ({column} IS NOT NULL)"
        assert definition.endswith(clause), definition


def _explain(statement: ClauseElement, params: dict[str, Any], store: SqlStore) -> tuple[str, tuple[Any, ...]]:
    """The statement's driver SQL and positional parameters (times as each driver takes them)."""
    compiled = statement.compile(dialect=store.engine.dialect)
    assert isinstance(compiled, SQLCompiler)
    assert compiled.positiontup is not None
    values: dict[str, Any] = {**params, "now": NOW}
    if store.dialect == "sqlite":
        values["now"] = NOW.replace(tzinfo=None).isoformat(" ", "microseconds")
    return compiled.string, tuple(values[name] for name in compiled.positiontup)


async def _plan(store: SqlStore, sql: str, parameters: tuple[Any, ...]) -> list[str]:
    async with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            rows = (await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)).all()
            return [str(row[3]) for row in rows]
        # Empty tables: a sequential scan would be cheapest. Priced out, it is still taken when no index can answer
        # (a partial index whose predicate the planner cannot prove), so the plan shows which indexes can.
        await connection.exec_driver_sql("SET enable_seqscan = off")
        rows = (await connection.exec_driver_sql("EXPLAIN " + sql, parameters)).all()
        await connection.rollback()
        return [str(row[0]) for row in rows]


def _table_scans(store: SqlStore, steps: list[str], tables: tuple[str, ...]) -> list[str]:
    if store.dialect == "sqlite":
        return [step for step in steps if step.startswith("SCAN") and step.split()[1] in (*tables, "child")]
    return [step for step in steps if any(f"Seq Scan on {table}" in step for table in tables)]


@pytest.mark.parametrize("index", sorted(PARTIAL))
@pytest.mark.parametrize("comparison", ["= {0}", "IN ({0}, {1})"])
async def test_equality_and_in_use_the_partial_index(store: SqlStore, index: str, comparison: str) -> None:
    # `column = value` and `column IN (...)` are never true for NULL: both planners must see that they imply
    # `column IS NOT NULL` and pick the partial index, or a lookup scans every token ever issued.
    table, column = index.removeprefix("ix_").removesuffix(f"_{PARTIAL[index]}"), PARTIAL[index]
    markers = ("?", "?") if store.dialect == "sqlite" else ("$1", "$2")
    sql = f"SELECT 1 FROM {table} WHERE {column} " + comparison.format(*markers)
    steps = await _plan(store, sql, ("a", "b")[: comparison.count("{")])
    plan = "\n".join(steps)
    assert not _table_scans(store, steps, (table,)), plan
    assert index in plan, plan


@pytest.mark.parametrize(("statement", "params", "indexes"), REVOCATIONS)
async def test_revocation_walks_the_lineage_through_the_partial_indexes(
    store: SqlStore, statement: ClauseElement, params: dict[str, Any], indexes: set[str]
) -> None:
    # On PostgreSQL too: `parent_jti IN (lineage) OR actor_jti IN (lineage)` was planned as hashed subplans over a
    # scan of every refresh token; the UNION of one lookup per column probes both partial indexes.
    tables = ("issued_tokens", "refresh_tokens")
    steps = await _plan(store, *_explain(statement, params, store))
    plan = "\n".join(steps)
    assert not _table_scans(store, steps, tables), plan
    for index in indexes:
        assert index in plan, plan


async def _generic_plan(store: SqlStore, sql: str, parameters: tuple[Any, ...]) -> list[str]:
    """The plan the statement keeps as a prepared statement (asyncpg prepares and caches every statement it runs):
    PostgreSQL's generic plan, costed once for unknown parameters and reused for every later execution."""
    if store.dialect == "sqlite":
        return await _plan(store, sql, parameters)
    async with store.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        await driver.execute("PREPARE hot_path AS " + sql)
        try:
            # A generic plan is the same whatever the values: NULLs stand for them.
            nulls = ", ".join("NULL" for _ in parameters)
            rows = await driver.fetch(f"EXPLAIN EXECUTE hot_path({nulls})")
        finally:
            await driver.execute("DEALLOCATE hot_path")
            await driver.execute("RESET plan_cache_mode")
        return [str(row[0]) for row in rows]


async def test_the_hot_path_insert_finds_the_parent_by_primary_key_at_any_table_size(store: SqlStore) -> None:
    # The token endpoint's insert looks its parent and actor tokens up (revoked at birth if either is revoked).
    # With `jti = :parent OR jti = :actor`, PostgreSQL's generic plan on a fresh table was a sequential scan,
    # kept by the prepared statement while the table grew: every insert read every token (2 ms a row at 30 000).
    sql, parameters = driver_sql(store_sql._insert_issued_tokens, store, issued_token("child", parent="parent"))
    for size in (0, 3000):
        if size:
            await _grow(store, [issued_token(f"t{n}") for n in range(size)])
        steps = await _generic_plan(store, sql, parameters)
        plan = "\n".join(steps)
        assert not _table_scans(store, steps, ("issued_tokens", "lineage_parent")), plan
        lookups = [step for step in steps if "pk_issued_tokens" in step or "sqlite_autoindex_issued_tokens" in step]
        assert len(lookups) == 2, plan


async def _grow(store: SqlStore, records: list[IssuedTokenRecord]) -> None:
    """Add the tokens, then refresh the planner's statistics."""
    await asyncio.gather(*(store.record_issued_token(record) for record in records))
    async with store.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE issued_tokens" if store.dialect != "sqlite" else "ANALYZE")
        await connection.commit()


async def test_the_revocation_poll_reads_only_revoked_tokens(store: SqlStore) -> None:
    # Each process polls once a second. With `expires_at > :now` in the statement, PostgreSQL's plan walked the
    # expires_at index: every live token, a second's worth of issued tokens times their lifetime. Few tokens are
    # ever revoked (here none), so the statistics make that index look as good as the partial one.
    await _grow(store, [issued_token(f"t{n}") for n in range(3000)])
    sql, parameters = _explain(store_sql._list_revoked, {"since": NOW}, store)
    steps = await _generic_plan(store, sql, parameters)
    plan = "\n".join(steps)
    assert not _table_scans(store, steps, ("issued_tokens",)), plan
    assert "ix_issued_tokens_revoked_at" in plan, plan
    assert "ix_issued_tokens_expires_at" not in plan, plan
