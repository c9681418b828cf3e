"""The SQLAlchemy implementation of :class:`~tokensmith.store.base.Store`, for SQLite and PostgreSQL.

One code path serves both dialects; what differs between them is set up once, in the engine (``engine.py``).

Single use is decided by the database: one conditional ``UPDATE ... WHERE consumed_at IS NULL RETURNING``. Of two
processes racing for the same code exactly one gets the row back. Statements are built once at import time and
SQLAlchemy's compiled cache does the rest, so a call costs a pool checkout and one statement (in autocommit on
PostgreSQL). Calls of several statements run in one transaction: nothing is ever half-written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    Integer,
    RowMapping,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.dml import Insert, ReturningUpdate

from tokensmith.store.base import Consumed, Durability
from tokensmith.store.engine import create_engine_for, enable_sqlite_wal, retry_while_locked, transactional
from tokensmith.store.group_commit import GroupCommit
from tokensmith.store.migrations import upgrade_to_head
from tokensmith.store.records import (
    AuditEvent,
    AuthorizationCodeRecord,
    AuthorizationConsentRecord,
    ClientAssertionRecord,
    DPoPProofRecord,
    IssuedTokenRecord,
    LoginAttempt,
    PlaintextSigningKey,
    RefreshTokenRecord,
    RevokedTokenRecord,
    SessionRecord,
    SigningKeyRecord,
)
from tokensmith.store.tables import (
    UTCDateTime,
    audit_events,
    authorization_codes,
    authorization_consents,
    aware_utc,
    client_assertions,
    dpop_proofs,
    issued_tokens,
    login_attempts,
    refresh_tokens,
    sessions,
    signing_keys,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_NOW = bindparam("now", type_=UTCDateTime())


# --- statements, built once ---------------------------------------------------------------------------------

_insert_signing_keys = insert(signing_keys)
_insert_authorization_codes = insert(authorization_codes)
_insert_refresh_tokens = insert(refresh_tokens)
_insert_sessions = insert(sessions)
_insert_audit_events = insert(audit_events)

_consume_code = (
    update(authorization_codes)
    .where(authorization_codes.c.code_hash == bindparam("hash"), authorization_codes.c.consumed_at.is_(None))
    .values(consumed_at=_NOW)
    .returning(*authorization_codes.c)
)
_get_code = select(authorization_codes).where(authorization_codes.c.code_hash == bindparam("hash"))

# A revoked refresh token is not spendable either: it reports first_use=False like a spent one.
_use_refresh = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.token_hash == bindparam("hash"),
        refresh_tokens.c.used_at.is_(None),
        refresh_tokens.c.revoked_at.is_(None),
    )
    .values(used_at=_NOW)
    .returning(*refresh_tokens.c)
)
_revoke_refresh = (
    update(refresh_tokens)
    .where(refresh_tokens.c.token_hash == bindparam("hash"), refresh_tokens.c.revoked_at.is_(None))
    .values(revoked_at=_NOW)
    .returning(*refresh_tokens.c)
)
_get_refresh = select(refresh_tokens).where(refresh_tokens.c.token_hash == bindparam("hash"))
_revoke_grant_refresh = (
    update(refresh_tokens)
    .where(refresh_tokens.c.grant_id == bindparam("target_grant"), refresh_tokens.c.revoked_at.is_(None))
    .values(revoked_at=_NOW)
)

_get_token = select(issued_tokens).where(issued_tokens.c.jti == bindparam("jti"))
_token_revoked_at = select(issued_tokens.c.revoked_at).where(issued_tokens.c.jti == bindparam("jti"))


def _insert_issued_token() -> Insert:
    """``INSERT ... SELECT`` of one issued token (run as an executemany): a token exchanged from a token that is
    already revoked is recorded as revoked, at birth.

    The token exchange checks revocation in memory (server/core/revocation_cache.py), so another replica's revocation may
    reach it a moment late; this keeps the lineage whole all the same, for introspection and later exchanges. It
    costs two primary-key probes per new token inside the insert itself, no extra statement.
    """
    parent = issued_tokens.alias("lineage_parent")
    # Each edge's revoked_at read by primary key alone. Any other shape left PostgreSQL a worse plan to cache for
    # the prepared statement on a fresh table: `jti = :parent OR jti = :actor` became a sequential scan, and
    # `EXISTS (... jti = :parent AND revoked_at IS NOT NULL)` a walk of the partial index of revoked tokens, either
    # repeated for every insert as the table grew (2 ms a row at 30 000 tokens). Only the primary key answers this.
    revoked_edge = or_(
        *(
            select(parent.c.revoked_at).where(parent.c.jti == bindparam(edge)).scalar_subquery().is_not(None)
            for edge in ("parent_jti", "actor_jti")
        )
    )
    issued_at = bindparam("issued_at", type_=UTCDateTime())
    values = [
        func.coalesce(bindparam("revoked_at", type_=UTCDateTime()), case((revoked_edge, issued_at), else_=null()))
        if column.name == "revoked_at"
        else issued_at
        if column.name == "issued_at"
        else bindparam(column.name, type_=column.type)
        for column in issued_tokens.c
    ]
    return insert(issued_tokens).from_select([column.name for column in issued_tokens.c], select(*values))


_insert_issued_tokens = _insert_issued_token()
# Only `revoked_at` in the condition, so that the one index able to answer is the partial one of revoked tokens:
# with `expires_at > :now` beside it, PostgreSQL's cached plan walked the expires_at index, every live token, on
# every poll. Expired tokens are left out by list_revoked_tokens instead.
_list_revoked = select(issued_tokens.c.jti, issued_tokens.c.revoked_at, issued_tokens.c.expires_at).where(
    issued_tokens.c.revoked_at >= bindparam("since", type_=UTCDateTime())
)


def _lineage_of(seed: Select[str]) -> Select[str]:
    """The jtis of the seed tokens and, transitively, of every token exchanged from them.

    A recursive CTE walks the lineage edges (``parent_jti`` for the subject token, ``actor_jti`` for the actor
    token) inside one statement, so a token exchanged from a revoked one cannot slip between two steps.
    """
    lineage = seed.cte("lineage", recursive=True)
    child = issued_tokens.alias("child")
    lineage = lineage.union(
        select(child.c.jti).join(lineage, or_(child.c.parent_jti == lineage.c.jti, child.c.actor_jti == lineage.c.jti))
    )
    return select(lineage.c.jti)


def _revoke_lineage_of(seed: Select[str]) -> ReturningUpdate[str]:
    """``UPDATE`` revoking the seed tokens and everything exchanged from them, returning the newly revoked jtis."""
    return (
        update(issued_tokens)
        .where(issued_tokens.c.jti.in_(_lineage_of(seed)), issued_tokens.c.revoked_at.is_(None))
        .values(revoked_at=_NOW)
        .returning(issued_tokens.c.jti)
    )


def _revoke_refresh_lineage_of(seed: Select[str]) -> Executable:
    """``UPDATE`` revoking the refresh tokens a token exchange issued from any token of the seed's lineage.

    The refresh tokens are found by a ``UNION`` of one lookup per edge column, not by ``parent_jti IN (lineage) OR
    actor_jti IN (lineage)``: PostgreSQL plans that ``OR`` of two subqueries as hashed subplans over a sequential
    scan of every refresh token, whereas each lookup of the union probes its column's partial index. One lineage
    walk (the CTE) serves both.
    """
    lineage = _lineage_of(seed).cte("revoked_lineage")
    by_parent = select(refresh_tokens.c.token_hash).where(refresh_tokens.c.parent_jti.in_(select(lineage.c.jti)))
    by_actor = select(refresh_tokens.c.token_hash).where(refresh_tokens.c.actor_jti.in_(select(lineage.c.jti)))
    return (
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash.in_(by_parent.union(by_actor)), refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=_NOW)
    )


def _seed_jti() -> Select[str]:
    return select(bindparam("seed_jti", type_=String()).label("jti"))


def _seed_grant() -> Select[str]:
    return select(issued_tokens.c.jti).where(issued_tokens.c.grant_id == bindparam("target_grant"))


_revoke_token_lineage = _revoke_lineage_of(_seed_jti())
_revoke_token_refresh_lineage = _revoke_refresh_lineage_of(_seed_jti())
_revoke_grant_tokens = _revoke_lineage_of(_seed_grant())
_revoke_grant_refresh_lineage = _revoke_refresh_lineage_of(_seed_grant())

_get_session = select(sessions).where(
    sessions.c.session_hash == bindparam("hash"), sessions.c.expires_at > bindparam("now", type_=UTCDateTime())
)
_delete_session = delete(sessions).where(sessions.c.session_hash == bindparam("hash"))

_SEALED_KEY_COLUMNS: Final = tuple(c for c in signing_keys.c if c.name != "private_jwk")
_list_keys = (
    select(*_SEALED_KEY_COLUMNS)
    .where(signing_keys.c.encrypted_private_jwk.is_not(None))
    .order_by(signing_keys.c.created_at, signing_keys.c.kid)
)
_list_plaintext_keys = select(
    signing_keys.c.kid, signing_keys.c.alg, signing_keys.c.private_jwk, signing_keys.c.created_at
).where(signing_keys.c.private_jwk.is_not(None))
_retire_active_key = (
    update(signing_keys)
    .where(signing_keys.c.kid == bindparam("target_kid"), signing_keys.c.status == "active")
    .values(status="retired", retired_at=bindparam("retired_at", type_=UTCDateTime()))
)
_sealed_under = signing_keys.c.encryption_key_id.is_not_distinct_from(bindparam("previous_key_id", type_=String()))
_reseal_key = (
    update(signing_keys)
    .where(signing_keys.c.kid == bindparam("target_kid"), _sealed_under)
    .values(
        private_jwk=null(),
        public_jwk=bindparam("new_public_jwk", type_=signing_keys.c.public_jwk.type),
        encrypted_private_jwk=bindparam("new_encrypted_private_jwk"),
        encryption_key_id=bindparam("new_encryption_key_id"),
    )
)
_count_sealed_under = select(func.count()).select_from(signing_keys).where(_sealed_under)
_delete_key = delete(signing_keys).where(signing_keys.c.kid == bindparam("target_kid"))

_list_audit = select(audit_events).order_by(audit_events.c.id.desc()).limit(bindparam("limit", type_=Integer()))

# How many expired rows one purge transaction deletes: short transactions, so that on SQLite the token endpoint's
# writers never wait long for the write lock, and on PostgreSQL no statement holds a million row locks.
PURGE_BATCH: Final = 2000


def _purge_batch(table: Table) -> Executable:
    """Delete up to ``limit`` expired rows of ``table`` (by primary key: neither database has ``DELETE ... LIMIT``
    in a form both accept)."""
    key = tuple_(*table.primary_key.columns) if len(table.primary_key.columns) > 1 else table.primary_key.columns[0]
    expired = (
        select(*table.primary_key.columns)
        .where(table.c.expires_at <= bindparam("now", type_=UTCDateTime()))
        .limit(bindparam("limit", type_=Integer()))
    )
    return delete(table).where(key.in_(expired))


_purges = tuple(
    _purge_batch(table)
    for table in (
        authorization_codes,
        refresh_tokens,
        issued_tokens,
        sessions,
        client_assertions,
        dpop_proofs,
        login_attempts,
    )
)


def _purge_audit_batch() -> Executable:
    """Delete, of the ``limit`` oldest audit events by id, those that occurred before ``before``.

    Ids follow the order events were written in, which is their time order but for a few milliseconds between
    processes and replicas, so the old events are the first ids: reading the first ``limit`` of the primary key
    finds them without an index on ``occurred_at``, which every insert would have to maintain, and when none is
    old enough the statement reads ``limit`` rows, not the table. A newer event among them (from a replica whose
    clock runs ahead) stays, and the next batch reads past it."""
    oldest = (
        select(audit_events.c.id, audit_events.c.occurred_at)
        .order_by(audit_events.c.id)
        .limit(bindparam("limit", type_=Integer()))
        .subquery("oldest")
    )
    old = select(oldest.c.id).where(oldest.c.occurred_at < bindparam("before", type_=UTCDateTime()))
    return delete(audit_events).where(audit_events.c.id.in_(old))


_purge_audit = _purge_audit_batch()


# INSERT ... ON CONFLICT is spelled alike by both databases, but SQLAlchemy builds it per dialect.
_DIALECT_INSERTS: dict[str, Callable[[Table], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _inserts_unless_taken(table: Table) -> dict[str, Any]:
    """Per dialect: insert a row unless a unique key of ``table`` already holds it (then nothing, rowcount 0).
    The first writer wins without an error, so the loser has no failed statement to roll back."""
    return {dialect: insert_for(table).on_conflict_do_nothing() for dialect, insert_for in _DIALECT_INSERTS.items()}


_add_signing_key = _inserts_unless_taken(signing_keys)
_use_client_assertion = _inserts_unless_taken(client_assertions)
# Group-committed: RETURNING names the rows that went in (executemany returns them too).
_DPOP_PROOF_KEY = dpop_proofs.c.jti_hash
_use_dpop_proof = {d: s.returning(_DPOP_PROOF_KEY) for d, s in _inserts_unless_taken(dpop_proofs).items()}


def _upserts(table: Table, values: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Per dialect: insert ``values`` into ``table``, or, when its primary key is taken, apply ``update`` to that
    row (which the statement locks, so concurrent upserts of one row take turns)."""
    key = list(table.primary_key.columns)
    return {
        dialect: insert_for(table).values(**values).on_conflict_do_update(index_elements=key, set_=dict(update))
        for dialect, insert_for in _DIALECT_INSERTS.items()
    }


# One more attempt under a counter in a window (the row created at 1), returning the window's count.
_count_login_attempts = {
    dialect: statement.returning(login_attempts.c.attempts)
    for dialect, statement in _upserts(
        login_attempts,
        {
            "counter_hash": bindparam("counter_hash"),
            "window_start": bindparam("window_start", type_=UTCDateTime()),
            "attempts": 1,
            "expires_at": bindparam("expires_at", type_=UTCDateTime()),
        },
        {"attempts": login_attempts.c.attempts + 1},
    ).items()
}
_window_attempts = select(login_attempts.c.counter_hash, login_attempts.c.attempts).where(
    login_attempts.c.counter_hash.in_(bindparam("counter_hashes", expanding=True)),
    login_attempts.c.window_start == bindparam("window_start", type_=UTCDateTime()),
)
_take_back_login_attempt = (
    update(login_attempts)
    .where(
        login_attempts.c.counter_hash == bindparam("target_hash"),
        login_attempts.c.window_start == bindparam("target_window", type_=UTCDateTime()),
        login_attempts.c.attempts > 0,
    )
    .values(attempts=login_attempts.c.attempts - 1)
)
_forget_login_attempts = delete(login_attempts).where(
    login_attempts.c.counter_hash.in_(bindparam("counter_hashes", expanding=True))
)

_consent_key = (
    authorization_consents.c.client_id == bindparam("target_client"),
    authorization_consents.c.subject == bindparam("target_subject"),
)
_get_consent = select(authorization_consents).where(*_consent_key)
_get_consent_for_update = _get_consent.with_for_update()
_consent_grant = {
    "scopes": bindparam("scopes", type_=authorization_consents.c.scopes.type),
    "granted_at": bindparam("granted_at", type_=UTCDateTime()),
}
_save_consents = _upserts(
    authorization_consents,
    {"client_id": bindparam("target_client"), "subject": bindparam("target_subject"), **_consent_grant},
    _consent_grant,
)
_delete_consent = delete(authorization_consents).where(*_consent_key)


# --- rows <-> records -----------------------------------------------------------------------------------------


def _consent(row: RowMapping) -> AuthorizationConsentRecord:
    return AuthorizationConsentRecord(
        client_id=row["client_id"],
        subject=row["subject"],
        scopes=frozenset(row["scopes"]),
        granted_at=row["granted_at"],
    )


@functools.cache
def _field_names(record_type: type[DataclassInstance], exclude: frozenset[str]) -> tuple[str, ...]:
    # dataclasses.fields() is slow enough to show in a profile of the token endpoint: look the names up once.
    return tuple(f.name for f in fields(record_type) if f.name not in exclude)


def _params(record: DataclassInstance, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _field_names(type(record), frozenset(exclude))}


def _tuples(row: RowMapping, *names: str) -> dict[str, Any]:
    """The row as keyword arguments for a record, JSON arrays turned back into the records' tuples."""
    data = dict(row)
    for name in names:
        data[name] = tuple(data[name])
    return data


def _code(row: RowMapping) -> AuthorizationCodeRecord:
    return AuthorizationCodeRecord(**_tuples(row, "scope", "resource"))


def _refresh(row: RowMapping) -> RefreshTokenRecord:
    return RefreshTokenRecord(**_tuples(row, "scope"))


def _audit(row: RowMapping) -> AuditEvent:
    return AuditEvent(**_tuples(row, "audience", "scope"))


# A group-committed insert: the statement and one row's parameters.
_Append = tuple[Executable, Mapping[str, Any]]
# Group-committed inserts that report which rows went in: the statement (by id) and the key it returns.
_REPORTING_INSERTS: Final = {id(statement): _DPOP_PROOF_KEY.name for statement in _use_dpop_proof.values()}


# --- the store ------------------------------------------------------------------------------------------------


class SqlStore:
    """The :class:`~tokensmith.store.base.Store` on SQLAlchemy 2 (async): SQLite by default, PostgreSQL to scale."""

    def __init__(self, database_url: str | URL, durability: Durability = "full") -> None:
        self._url = make_url(database_url)
        self._engine = create_engine_for(self._url, durability)  # ValueError for an unsupported database
        # Single statements run on the engine as it is (autocommit on PostgreSQL); several go in one transaction.
        self._tx = transactional(self._engine)
        # The inserts of the token endpoint (issued tokens and audit events), queued as (statement, parameters)
        # and written together, one transaction per flush (group_commit.py).
        self._appends = GroupCommit[_Append, bool](self._append)
        self._revocations_committed = 0

    @property
    def dialect(self) -> str:
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # lifecycle

    async def initialize(self) -> None:
        if self.dialect == "sqlite":
            await enable_sqlite_wal(self._engine)
            await retry_while_locked(self._migrate)  # processes opening one file at once take turns
        else:
            await self._migrate()  # replicas take turns at an advisory lock (upgrade_to_head)

    async def _migrate(self) -> None:
        async with self._tx.connect() as connection:
            await connection.run_sync(upgrade_to_head)
            await connection.commit()

    async def close(self) -> None:
        await self._appends.drain()
        await self._engine.dispose()

    @property
    def revocations_committed(self) -> int:
        return self._revocations_committed

    # helpers

    async def _write(self, statement: Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(statement, params)

    async def _insert_unless_taken(self, statements: Mapping[str, Executable], params: Mapping[str, Any]) -> bool:
        """True when the row went in, False when a unique key already held it (see :func:`_inserts_unless_taken`)."""
        async with self._engine.begin() as connection:
            return (await connection.execute(statements[self.dialect], params)).rowcount == 1

    async def _append(self, rows: Sequence[_Append]) -> list[bool]:
        """Insert the rows in one transaction, one ``executemany`` per statement, in arrival order within each
        (a token's row comes after its parent's when both are in one flush); True per row that went in (always, but
        for the inserts in ``_REPORTING_INSERTS``, which skip a taken key and return the keys they inserted)."""
        by_statement: dict[int, tuple[Executable, list[int]]] = {}
        for index, (statement, _) in enumerate(rows):
            by_statement.setdefault(id(statement), (statement, []))[1].append(index)
        inserted = [True] * len(rows)
        async with self._tx.begin() as connection:
            for statement, indexes in by_statement.values():
                result = await connection.execute(statement, [rows[i][1] for i in indexes])
                key = _REPORTING_INSERTS.get(id(statement))
                if key is None:
                    continue
                new = set(result.scalars())
                for i in indexes:
                    value = rows[i][1][key]
                    inserted[i] = value in new
                    new.discard(value)  # the same key twice in one flush: only the first row went in
        return inserted

    async def _one(self, statement: Executable, params: Mapping[str, Any]) -> RowMapping | None:
        async with self._engine.connect() as connection:
            return (await connection.execute(statement, params)).mappings().first()

    async def _spend(
        self, spend: Executable, get: Executable, params: Mapping[str, Any]
    ) -> tuple[RowMapping | None, bool]:
        """Run the conditional UPDATE; only when it matched nothing, read the row to tell replay from unknown."""
        async with self._engine.begin() as connection:
            row = (await connection.execute(spend, params)).mappings().first()
            if row is not None:
                return row, True
            return (await connection.execute(get, {"hash": params["hash"]})).mappings().first(), False

    # signing keys

    async def list_signing_keys(self) -> Sequence[SigningKeyRecord]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_list_keys)).mappings().all()
        return [SigningKeyRecord(**row) for row in rows]

    async def list_plaintext_signing_keys(self) -> Sequence[PlaintextSigningKey]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_list_plaintext_keys)).mappings().all()
        return [PlaintextSigningKey(**row) for row in rows]

    async def add_signing_key(self, key: SigningKeyRecord) -> bool:
        """False when the unique index of active keys refused it: another process added one for the algorithm."""
        return await self._insert_unless_taken(_add_signing_key, _params(key))

    async def rotate_signing_key(self, retiring_kid: str, new_key: SigningKeyRecord, now: datetime) -> bool:
        # The conditional UPDATE decides: of processes rotating the same key at once, one retires it (the others
        # wait for its row lock, then match nothing) and only that one adds a key.
        async with self._tx.begin() as connection:
            retired = await connection.execute(_retire_active_key, {"target_kid": retiring_kid, "retired_at": now})
            if retired.rowcount != 1:
                return False
            await connection.execute(_insert_signing_keys, _params(new_key))
        return True

    async def replace_signing_key_ciphertexts(
        self, keys: Sequence[SigningKeyRecord], previous_key_id: str | None
    ) -> bool:
        async with self._tx.connect() as connection, connection.begin() as transaction:
            for key in keys:
                params = {
                    "target_kid": key.kid,
                    "previous_key_id": previous_key_id,
                    "new_public_jwk": key.public_jwk,
                    "new_encrypted_private_jwk": key.encrypted_private_jwk,
                    "new_encryption_key_id": key.encryption_key_id,
                }
                if (await connection.execute(_reseal_key, params)).rowcount != 1:
                    await transaction.rollback()
                    return False
            left = (await connection.execute(_count_sealed_under, {"previous_key_id": previous_key_id})).scalar_one()
            if left:
                await transaction.rollback()
                return False
        return True

    async def delete_signing_key(self, kid: str) -> None:
        await self._write(_delete_key, {"target_kid": kid})

    # authorization codes

    async def save_authorization_code(self, code: AuthorizationCodeRecord) -> None:
        await self._write(_insert_authorization_codes, _params(code))

    async def consume_authorization_code(self, code_hash: str, now: datetime) -> Consumed[AuthorizationCodeRecord]:
        """Spend the code. Expiry, client and redirect URI are the caller's to check on the returned record."""
        row, first_use = await self._spend(_consume_code, _get_code, {"hash": code_hash, "now": now})
        return Consumed(record=_code(row) if row is not None else None, first_use=first_use)

    # refresh tokens

    async def save_refresh_token(self, token: RefreshTokenRecord) -> None:
        await self._write(_insert_refresh_tokens, _params(token))

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        row = await self._one(_get_refresh, {"hash": token_hash})
        return _refresh(row) if row is not None else None

    async def use_refresh_token(self, token_hash: str, now: datetime) -> Consumed[RefreshTokenRecord]:
        """Spend the token. A used or revoked token reports ``first_use=False`` with its current record."""
        row, first_use = await self._spend(_use_refresh, _get_refresh, {"hash": token_hash, "now": now})
        return Consumed(record=_refresh(row) if row is not None else None, first_use=first_use)

    async def revoke_refresh_token(self, token_hash: str, now: datetime) -> RefreshTokenRecord | None:
        row, _ = await self._spend(_revoke_refresh, _get_refresh, {"hash": token_hash, "now": now})
        return _refresh(row) if row is not None else None

    # issued access / ID tokens

    async def record_issued_token(self, token: IssuedTokenRecord) -> None:
        """Returns once the row is committed, in one transaction with the rows recorded concurrently."""
        await self._appends.submit((_insert_issued_tokens, _params(token)))

    async def get_issued_token(self, jti: str) -> IssuedTokenRecord | None:
        row = await self._one(_get_token, {"jti": jti})
        return IssuedTokenRecord(**row) if row is not None else None

    async def is_token_revoked(self, jti: str) -> bool:
        """A primary-key lookup. A jti this server never recorded is not revoked (the signature vouches for it)."""
        async with self._engine.connect() as connection:
            revoked_at = (await connection.execute(_token_revoked_at, {"jti": jti})).scalar()
        return revoked_at is not None

    async def revoke_token_lineage(self, jti: str, now: datetime) -> Sequence[str]:
        """Revoke the token and every token exchanged from it (refresh tokens included); return the jtis this
        call revoked."""
        params = {"seed_jti": jti, "now": now}
        async with self._tx.begin() as connection:
            # Refresh tokens first: the lineage walk does not depend on revoked_at, so the order is free.
            await connection.execute(_revoke_token_refresh_lineage, params)
            result = await connection.execute(_revoke_token_lineage, params)
            revoked = sorted(result.scalars().all())
        self._revocations_committed += 1
        return revoked

    async def revoke_grant(self, grant_id: str, now: datetime) -> None:
        params = {"target_grant": grant_id, "now": now}
        async with self._tx.begin() as connection:
            await connection.execute(_revoke_grant_refresh, params)
            await connection.execute(_revoke_grant_refresh_lineage, params)
            await connection.execute(_revoke_grant_tokens, params)
        self._revocations_committed += 1

    async def list_revoked_tokens(self, revoked_since: datetime, now: datetime) -> Sequence[RevokedTokenRecord]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_list_revoked, {"since": revoked_since})).all()
        now = aware_utc(now)
        return [
            RevokedTokenRecord(jti=jti, revoked_at=revoked_at, expires_at=expires_at)
            for jti, revoked_at, expires_at in rows
            if expires_at > now
        ]

    # client assertions (private_key_jwt)

    async def use_client_assertion(self, assertion: ClientAssertionRecord) -> bool:
        """Record the assertion's jti; False when it was recorded before (a replay). The primary key decides,
        so two replicas racing with one assertion never both succeed."""
        return await self._insert_unless_taken(_use_client_assertion, _params(assertion))

    # DPoP proofs

    async def use_dpop_proof(self, proof: DPoPProofRecord) -> bool:
        """Record the proof's jti digest; False when it was recorded before (a replay), decided by the primary key
        across replicas."""
        # Group-committed like the token it comes with: a proof checked per token request stays one row of a batch.
        return await self._appends.submit((_use_dpop_proof[self.dialect], _params(proof)))

    # remembered consent

    async def get_authorization_consent(self, client_id: str, subject: str) -> AuthorizationConsentRecord | None:
        row = await self._one(_get_consent, {"target_client": client_id, "target_subject": subject})
        return _consent(row) if row is not None else None

    async def grant_authorization_consent(
        self, client_id: str, subject: str, scopes: frozenset[str], now: datetime
    ) -> None:
        key = {"target_client": client_id, "target_subject": subject}
        async with self._tx.begin() as connection:
            # The row, if any, is locked (PostgreSQL) until the new set is written: two grants at once both count.
            current = (await connection.execute(_get_consent_for_update, key)).mappings().first()
            granted = scopes | (_consent(current).scopes if current is not None else frozenset())
            params = {**key, "scopes": sorted(granted), "granted_at": now}
            await connection.execute(_save_consents[self.dialect], params)

    async def revoke_authorization_consent(self, client_id: str, subject: str) -> None:
        await self._write(_delete_consent, {"target_client": client_id, "target_subject": subject})

    # browser sessions

    async def save_session(self, session: SessionRecord) -> None:
        await self._write(_insert_sessions, _params(session))

    async def get_session(self, session_hash: str, now: datetime) -> SessionRecord | None:
        """The live session with this digest; an expired one is as good as none."""
        row = await self._one(_get_session, {"hash": session_hash, "now": now})
        return SessionRecord(**row) if row is not None else None

    async def delete_session(self, session_hash: str) -> None:
        await self._write(_delete_session, {"hash": session_hash})

    # failed-login throttling

    async def admit_login_attempt(self, attempt: LoginAttempt) -> Mapping[str, float] | None:
        # Counted first, judged after, in one transaction: attempts made at once on several replicas each see the
        # others' counts (the upsert waits for the row), and one that is refused rolls its counts back.
        counters = sorted(attempt.counters, key=lambda counter: counter.counter_hash)  # one lock order for all
        count = _count_login_attempts[self.dialect]
        async with self._tx.connect() as connection, connection.begin() as transaction:
            current: dict[str, int] = {}
            for counter in counters:
                params = {
                    "counter_hash": counter.counter_hash,
                    "window_start": attempt.window_start,
                    "expires_at": attempt.expires_at,
                }
                current[counter.counter_hash] = (await connection.execute(count, params)).scalar_one()
            previous_rows = await connection.execute(
                _window_attempts,
                {
                    "counter_hashes": [counter.counter_hash for counter in counters],
                    "window_start": attempt.previous_window_start,
                },
            )
            previous: dict[str, int] = {counter_hash: attempts for counter_hash, attempts in previous_rows.all()}
            counts = {
                counter_hash: previous.get(counter_hash, 0) * attempt.previous_weight + attempts
                for counter_hash, attempts in current.items()
            }
            if any(counter.limit is not None and counts[counter.counter_hash] > counter.limit for counter in counters):
                await transaction.rollback()
                return None
        return counts

    async def take_back_login_attempt(self, counter_hash: str, window_start: datetime) -> None:
        await self._write(_take_back_login_attempt, {"target_hash": counter_hash, "target_window": window_start})

    async def forget_login_attempts(self, counter_hashes: Sequence[str]) -> None:
        await self._write(_forget_login_attempts, {"counter_hashes": list(counter_hashes)})

    # audit

    async def add_audit_event(self, event: AuditEvent) -> None:
        """Returns once the event is committed, in one transaction with the rows added concurrently."""
        await self._appends.submit((_insert_audit_events, _params(event, exclude=("id",))))

    async def list_audit_events(self, limit: int = 100) -> Sequence[AuditEvent]:
        """The latest ``limit`` events, newest first."""
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_list_audit, {"limit": max(limit, 0)})).mappings().all()
        return [_audit(row) for row in rows]

    # housekeeping

    async def purge_expired(
        self, now: datetime, *, audit_events_before: datetime | None = None, batch: int = PURGE_BATCH
    ) -> int:
        """Delete expired codes, refresh tokens, issued tokens, sessions, assertion jtis and login attempt counts,
        and audit events older than ``audit_events_before`` (if given), ``batch`` rows per transaction; return how
        many rows went."""
        # (statement, parameters, fewest deletions that call for another batch)
        work: list[tuple[Executable, dict[str, Any], int]] = [
            (statement, {"now": now, "limit": batch}, batch) for statement in _purges
        ]
        if audit_events_before is not None:
            # A short batch does not mean the end here: newer events among the oldest ids are kept, not counted.
            work.append((_purge_audit, {"before": audit_events_before, "limit": batch}, 1))
        deleted = 0
        for statement, params, another_batch_from in work:
            while True:
                async with self._engine.begin() as connection:
                    count = (await connection.execute(statement, params)).rowcount
                deleted += count
                if count < another_batch_from:
                    break
        return deleted

    # operations

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
