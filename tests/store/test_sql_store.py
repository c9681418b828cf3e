"""SqlStore against SQLite and PostgreSQL: every Store method, atomic single use, lineage revocation, migrations."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from tests.support.records import audit_event

from tokensmith.store import Durability, Store, open_store
from tokensmith.store.migrations import MIGRATIONS_DIR
from tokensmith.store.records import (
    AuditEvent,
    AuthorizationCodeRecord,
    IssuedTokenRecord,
    RefreshTokenRecord,
    SessionRecord,
    SigningKeyRecord,
)
from tokensmith.store.sql import SqlStore

NOW = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def digest(label: str) -> str:
    return label.encode().hex().ljust(64, "0")[:64]


def code_record(label: str = "code", *, grant_id: str = "grant-1", expires_in: int = 60) -> AuthorizationCodeRecord:
    return AuthorizationCodeRecord(
        code_hash=digest(label),
        grant_id=grant_id,
        client_id="client-1",
        subject="alice",
        redirect_uri="https://client.example/callback",
        scope=("openid", "profile"),
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
        nonce="n-0S6_WzA2Mj",
        auth_time=NOW - timedelta(seconds=5),
        expires_at=NOW + timedelta(seconds=expires_in),
        resource=("https://api.example/",),
    )


def refresh_record(
    label: str = "refresh", *, grant_id: str = "grant-1", family_id: str = "family-1"
) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_hash=digest(label),
        family_id=family_id,
        grant_id=grant_id,
        client_id="client-1",
        subject="alice",
        scope=("openid", "offline_access"),
        issued_at=NOW,
        expires_at=NOW + timedelta(days=1),
        auth_time=NOW - timedelta(minutes=1),
        claims={"resource": ["https://api.example/"], "act": {"sub": "svc"}},
    )


def token_record(
    jti: str,
    *,
    parent: str | None = None,
    actor: str | None = None,
    grant_id: str | None = None,
    expires_in: int = 300,
) -> IssuedTokenRecord:
    return IssuedTokenRecord(
        jti=jti,
        kind="access_token",
        client_id="client-1",
        subject="alice",
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=expires_in),
        grant_id=grant_id,
        parent_jti=parent,
        actor_jti=actor,
    )


def session_record(label: str = "session", *, expires_in: int = 3600) -> SessionRecord:
    return SessionRecord(
        session_hash=digest(label),
        subject="alice",
        auth_time=NOW,
        expires_at=NOW + timedelta(seconds=expires_in),
        csrf_secret="csrf-secret",
    )


def key_record(
    kid: str, *, created: datetime = NOW, alg: str = "ES256", status: str = "active", retired_at: datetime | None = None
) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=kid,
        alg=alg,
        public_jwk={"kty": "EC", "crv": "P-256", "kid": kid, "x": "x", "y": "y"},
        encrypted_private_jwk=f"sealed-{kid}",
        encryption_key_id="kek-1",
        created_at=created,
        status=status,
        retired_at=retired_at,
    )


# --- lifecycle and engine -----------------------------------------------------------------------------------


def test_open_store_builds_a_sql_store() -> None:
    store = open_store("sqlite+aiosqlite:///:memory:")
    assert isinstance(store, SqlStore)
    # SqlStore is a structural Store (mypy checks the signatures, this checks nothing is missing at runtime).
    assert all(hasattr(store, name) for name in dir(Store) if not name.startswith("_"))


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        SqlStore("mysql+aiomysql://user@localhost/db")


async def test_memory_database_keeps_its_data_across_calls() -> None:
    store = SqlStore("sqlite+aiosqlite:///:memory:")
    await store.initialize()
    try:
        await store.add_signing_key(key_record("k1"))
        assert [k.kid for k in await store.list_signing_keys()] == ["k1"]
        # Concurrent calls share the one connection in turn, never interleaving their transactions.
        await store.save_authorization_code(code_record())
        await store.record_issued_token(token_record("t1", grant_id="grant-1"))
        results = await asyncio.gather(
            *(store.consume_authorization_code(digest("code"), NOW) for _ in range(5)),
            store.revoke_grant("grant-1", NOW),
        )
        assert sum(r.first_use for r in results if r is not None) == 1
        assert await store.is_token_revoked("t1") is True
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("durability", "synchronous"),
    [(None, 2), ("full", 2), ("normal", 1)],  # FULL is 2, NORMAL 1; full by default
)
async def test_sqlite_creates_the_directory_and_sets_pragmas(
    tmp_path: Path, durability: Durability | None, synchronous: int
) -> None:
    path = tmp_path / "nested" / "dir" / "tokensmith.db"
    url = f"sqlite+aiosqlite:///{path}"
    store = SqlStore(url) if durability is None else SqlStore(url, durability)
    await store.initialize()
    try:
        assert path.exists()
        async with store.engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": synchronous,
            "busy_timeout": 30000,
        }
    finally:
        await store.close()


async def test_initialize_twice_is_a_no_op(store: SqlStore) -> None:
    await store.add_signing_key(key_record("k1"))
    await store.initialize()
    assert [k.kid for k in await store.list_signing_keys()] == ["k1"]


async def test_concurrent_initialization_of_one_database(store_url: str) -> None:
    stores = [SqlStore(store_url) for _ in range(3)]
    try:
        await asyncio.gather(*(s.initialize() for s in stores))
        await stores[0].add_signing_key(key_record("k1"))
        assert [k.kid for k in await stores[2].list_signing_keys()] == ["k1"]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_two_processes_initialize_one_database_at_once(store_url: str) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys, time
        from tokensmith.store.sql import SqlStore

        async def main() -> None:
            store = SqlStore(sys.argv[1])
            time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together, imports done
            await store.initialize()
            await store.close()

        asyncio.run(main())
        """
    )
    start_at = str(time.time() + 1.0)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, store_url, start_at, stderr=asyncio.subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    results = [await p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err.decode()[-1500:] for _, err in results]
    store = SqlStore(store_url)
    try:
        async with store.engine.connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert versions == [head_revision()]
    finally:
        await store.close()


# --- times ----------------------------------------------------------------------------------------------------


async def test_times_come_back_as_aware_utc(store: SqlStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 11, 26, 14, 30, 0, 250000, tzinfo=plus_two)
    await store.add_signing_key(key_record("k1", created=created))
    (key,) = await store.list_signing_keys()
    assert key.created_at == created
    assert key.created_at.tzinfo == UTC
    assert key.created_at.hour == 12


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    with pytest.raises(StatementError) as caught:
        await store.add_signing_key(key_record("k1", created=datetime(2026, 1, 1)))
    assert isinstance(caught.value.orig, ValueError)
    assert await store.list_signing_keys() == []


# --- signing keys -------------------------------------------------------------------------------------------


async def test_signing_keys_add_list_rotate_delete(store: SqlStore) -> None:
    assert await store.add_signing_key(key_record("k2", created=NOW + timedelta(seconds=1), alg="RS256"))
    assert await store.add_signing_key(key_record("k1"))
    keys = await store.list_signing_keys()
    assert [k.kid for k in keys] == ["k1", "k2"]  # oldest first
    assert keys[0] == key_record("k1")
    assert keys[1].alg == "RS256"

    later = NOW + timedelta(minutes=5)
    assert await store.rotate_signing_key("k1", key_record("k3", created=later), later)
    retired, _, new = await store.list_signing_keys()
    assert (retired.kid, retired.status, retired.retired_at) == ("k1", "retired", later)
    assert (new.kid, new.status) == ("k3", "active")

    await store.delete_signing_key("k1")
    assert [k.kid for k in await store.list_signing_keys()] == ["k2", "k3"]


async def test_one_active_signing_key_per_algorithm(store: SqlStore) -> None:
    assert await store.add_signing_key(key_record("k1"))
    assert not await store.add_signing_key(key_record("k2"))  # another process added one first
    assert await store.add_signing_key(key_record("k3", status="retired", retired_at=NOW))
    assert await store.add_signing_key(key_record("k4", alg="RS256"))
    assert sorted(k.kid for k in await store.list_signing_keys()) == ["k1", "k3", "k4"]


async def test_a_key_is_rotated_once_whoever_asks(store: SqlStore, store_url: str) -> None:
    await store.add_signing_key(key_record("k1"))
    other = SqlStore(store_url)
    try:
        await other.initialize()
        later = NOW + timedelta(minutes=1)
        outcomes = await asyncio.gather(
            store.rotate_signing_key("k1", key_record("a", created=later), later),
            other.rotate_signing_key("k1", key_record("b", created=later), later),
        )
    finally:
        await other.close()
    assert sorted(outcomes) == [False, True]
    active = [k.kid for k in await store.list_signing_keys() if k.status == "active"]
    assert active == (["a"] if outcomes[0] else ["b"])
    assert not await store.rotate_signing_key("k1", key_record("c", created=later), later)  # k1 is retired


async def test_ciphertexts_are_replaced_all_or_nothing(store: SqlStore) -> None:
    await store.add_signing_key(key_record("k1"))
    await store.add_signing_key(key_record("k2", alg="RS256"))
    k1, k2 = await store.list_signing_keys()
    resealed = [replace(k, encrypted_private_jwk=f"new-{k.kid}", encryption_key_id="kek-2") for k in (k1, k2)]

    # Only one of the two under kek-1 given: the other would be left under it, so nothing changes.
    assert not await store.replace_signing_key_ciphertexts(resealed[:1], "kek-1")
    assert {k.encryption_key_id for k in await store.list_signing_keys()} == {"kek-1"}
    assert not await store.replace_signing_key_ciphertexts(resealed, "kek-3")  # not sealed under kek-3

    assert await store.replace_signing_key_ciphertexts(resealed, "kek-1")
    assert await store.list_signing_keys() == resealed


# --- authorization codes ------------------------------------------------------------------------------------


async def test_code_is_consumed_once_and_replay_is_reported(store: SqlStore) -> None:
    await store.save_authorization_code(code_record())

    first = await store.consume_authorization_code(digest("code"), NOW)
    assert first.first_use is True
    assert first.record == replace(code_record(), consumed_at=NOW)

    replay = await store.consume_authorization_code(digest("code"), NOW + timedelta(seconds=1))
    assert replay.first_use is False
    assert replay.record is not None
    assert replay.record.consumed_at == NOW  # the first use's time, not the replay's
    assert replay.record.scope == ("openid", "profile")
    assert replay.record.resource == ("https://api.example/",)


async def test_unknown_code_matches_nothing(store: SqlStore) -> None:
    consumed = await store.consume_authorization_code(digest("nope"), NOW)
    assert (consumed.record, consumed.first_use) == (None, False)


async def test_concurrent_consumes_of_one_code_have_one_winner(store: SqlStore) -> None:
    await store.save_authorization_code(code_record())
    results = await asyncio.gather(*(store.consume_authorization_code(digest("code"), NOW) for _ in range(10)))
    assert sorted(r.first_use for r in results) == [False] * 9 + [True]
    assert all(r.record is not None and r.record.consumed_at == NOW for r in results)


async def test_two_stores_on_one_database_never_both_accept_a_code(store: SqlStore, store_url: str) -> None:
    other = SqlStore(store_url)  # a second engine and pool, as a second server process has
    try:
        for round_ in range(5):
            await store.save_authorization_code(code_record(f"code-{round_}"))
            results = await asyncio.gather(
                *(s.consume_authorization_code(digest(f"code-{round_}"), NOW) for s in [store, other] * 4)
            )
            assert sum(r.first_use for r in results) == 1
    finally:
        await other.close()


# --- refresh tokens -------------------------------------------------------------------------------------------


async def test_refresh_token_rotation_and_reuse(store: SqlStore) -> None:
    await store.save_refresh_token(refresh_record())
    assert await store.get_refresh_token(digest("refresh")) == refresh_record()
    assert await store.get_refresh_token(digest("unknown")) is None

    used = await store.use_refresh_token(digest("refresh"), NOW)
    assert used.first_use is True
    assert used.record is not None
    assert used.record.used_at == NOW
    assert used.record.claims == {"resource": ["https://api.example/"], "act": {"sub": "svc"}}

    # Rotation: the successor in the same family is spendable; the old one is a reuse.
    await store.save_refresh_token(refresh_record("refresh-2"))
    reuse = await store.use_refresh_token(digest("refresh"), NOW + timedelta(seconds=1))
    assert reuse.first_use is False
    assert reuse.record is not None
    assert reuse.record.used_at == NOW
    assert (await store.use_refresh_token(digest("refresh-2"), NOW)).first_use is True

    unknown = await store.use_refresh_token(digest("unknown"), NOW)
    assert (unknown.record, unknown.first_use) == (None, False)


async def test_concurrent_refresh_uses_across_two_stores_have_one_winner(store: SqlStore, store_url: str) -> None:
    other = SqlStore(store_url)
    try:
        await store.save_refresh_token(refresh_record())
        results = await asyncio.gather(
            *(s.use_refresh_token(digest("refresh"), NOW) for s in [store, other] * 5),
        )
        assert sum(r.first_use for r in results) == 1
    finally:
        await other.close()


async def test_revoked_refresh_token_cannot_be_used(store: SqlStore) -> None:
    await store.save_refresh_token(refresh_record())
    revoked = await store.revoke_refresh_token(digest("refresh"), NOW)
    assert revoked is not None
    assert revoked.revoked_at == NOW
    again = await store.revoke_refresh_token(digest("refresh"), NOW + timedelta(minutes=1))
    assert again is not None
    assert again.revoked_at == NOW
    assert await store.revoke_refresh_token(digest("unknown"), NOW) is None

    used = await store.use_refresh_token(digest("refresh"), NOW)
    assert used.first_use is False
    assert used.record is not None
    assert used.record.used_at is None
    assert used.record.revoked_at == NOW


# --- issued tokens and lineage --------------------------------------------------------------------------------


async def test_issued_token_record_and_revocation_lookup(store: SqlStore) -> None:
    record = token_record("t1", grant_id="grant-1")
    await store.record_issued_token(record)
    assert await store.get_issued_token("t1") == record
    assert await store.get_issued_token("missing") is None
    assert await store.is_token_revoked("t1") is False
    assert await store.is_token_revoked("never-issued") is False
    assert await store.revoke_token_lineage("t1", NOW) == ["t1"]
    assert await store.is_token_revoked("t1") is True
    revoked = await store.get_issued_token("t1")
    assert revoked is not None
    assert revoked.revoked_at == NOW


async def test_lineage_revocation_follows_subject_and_actor_edges(store: SqlStore) -> None:
    # root -> child -> grandchild (three generations through subject tokens);
    # child acts for "delegated" (actor edge); "delegated" was exchanged further into "delegated-child";
    # "actor-only" is an actor token that acted for "bystander-exchange"; "bystander" is unrelated.
    for record in [
        token_record("root"),
        token_record("child", parent="root"),
        token_record("grandchild", parent="child"),
        token_record("bystander"),
        token_record("delegated", parent="bystander", actor="child"),
        token_record("delegated-child", parent="delegated"),
        token_record("actor-only"),
        token_record("bystander-exchange", parent="bystander", actor="actor-only"),
    ]:
        await store.record_issued_token(record)

    assert await store.revoke_token_lineage("child", NOW) == ["child", "delegated", "delegated-child", "grandchild"]
    assert await store.is_token_revoked("root") is False
    assert await store.is_token_revoked("bystander") is False

    assert await store.revoke_token_lineage("root", NOW) == ["root"]  # the rest was already revoked
    assert await store.revoke_token_lineage("actor-only", NOW) == ["actor-only", "bystander-exchange"]
    assert await store.is_token_revoked("bystander") is False
    assert await store.revoke_token_lineage("unknown", NOW) == []


async def test_revoke_grant_revokes_its_tokens_refresh_tokens_and_their_lineage(store: SqlStore) -> None:
    await store.record_issued_token(token_record("access", grant_id="grant-1"))
    await store.record_issued_token(token_record("id-token", grant_id="grant-1"))
    await store.record_issued_token(token_record("exchanged", parent="access"))
    await store.record_issued_token(token_record("other-access", grant_id="grant-2"))
    await store.save_refresh_token(refresh_record("r1"))
    await store.save_refresh_token(refresh_record("r2"))
    await store.save_refresh_token(refresh_record("r3", grant_id="grant-2", family_id="family-2"))

    await store.revoke_grant("grant-1", NOW)

    for jti in ["access", "id-token", "exchanged"]:
        assert await store.is_token_revoked(jti) is True
    assert await store.is_token_revoked("other-access") is False
    for label in ["r1", "r2"]:
        refresh = await store.get_refresh_token(digest(label))
        assert refresh is not None
        assert refresh.revoked_at == NOW
    other = await store.get_refresh_token(digest("r3"))
    assert other is not None
    assert other.revoked_at is None

    await store.revoke_grant("grant-1", NOW + timedelta(minutes=1))  # idempotent, first time kept
    refresh = await store.get_refresh_token(digest("r1"))
    assert refresh is not None
    assert refresh.revoked_at == NOW


# --- sessions -------------------------------------------------------------------------------------------------


async def test_sessions_expire_and_can_be_deleted(store: SqlStore) -> None:
    await store.save_session(session_record(expires_in=60))
    assert await store.get_session(digest("session"), NOW) == session_record(expires_in=60)
    assert await store.get_session(digest("session"), NOW + timedelta(seconds=60)) is None
    assert await store.get_session(digest("other"), NOW) is None
    await store.delete_session(digest("session"))
    assert await store.get_session(digest("session"), NOW) is None
    await store.delete_session(digest("session"))  # deleting twice is fine


# --- audit ----------------------------------------------------------------------------------------------------


async def test_audit_events_newest_first_with_limit(store: SqlStore) -> None:
    for number in range(5):
        await store.add_audit_event(
            AuditEvent(
                occurred_at=NOW + timedelta(seconds=number),
                event="token_exchange",
                outcome="granted" if number % 2 == 0 else "refused",
                client_id="client-1",
                subject="alice",
                actor="svc" if number == 4 else None,
                audience=("message-service",),
                scope=("message.read",),
                reason=None if number % 2 == 0 else "audience not allowed",
                details={"number": number, "requested": ["a", "b"]},
            )
        )
    latest = await store.list_audit_events(limit=3)
    assert [e.details["number"] for e in latest] == [4, 3, 2]
    assert latest[0].actor == "svc"
    assert latest[0].audience == ("message-service",)
    assert latest[0].scope == ("message.read",)
    assert latest[0].occurred_at == NOW + timedelta(seconds=4)
    assert latest[1].reason == "audience not allowed"
    ids = [e.id for e in latest]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids, reverse=True)
    assert len(await store.list_audit_events()) == 5
    assert await store.list_audit_events(limit=0) == []


# --- housekeeping ---------------------------------------------------------------------------------------------


async def test_purge_expired_deletes_only_expired_rows(store: SqlStore) -> None:
    await store.save_authorization_code(code_record("old", expires_in=10))
    await store.save_authorization_code(code_record("new", expires_in=600))
    await store.save_refresh_token(refresh_record())  # expires in a day
    await store.record_issued_token(token_record("old", expires_in=10))
    await store.record_issued_token(token_record("new", expires_in=600))
    await store.save_session(session_record("old", expires_in=10))
    await store.save_session(session_record("new", expires_in=600))

    assert await store.purge_expired(NOW + timedelta(seconds=60)) == 3

    assert (await store.consume_authorization_code(digest("old"), NOW)).record is None
    assert (await store.consume_authorization_code(digest("new"), NOW)).first_use is True
    assert await store.get_refresh_token(digest("refresh")) is not None
    assert await store.get_issued_token("old") is None
    assert await store.get_issued_token("new") is not None
    assert await store.get_session(digest("new"), NOW) is not None
    assert await store.purge_expired(NOW + timedelta(seconds=60)) == 0
    assert await store.purge_expired(NOW + timedelta(days=2)) == 4


async def test_purge_deletes_audit_events_older_than_the_retention_only_when_asked(store: SqlStore) -> None:
    # Written in time order but for event 3, written by another process a moment after event 4, and event 1,
    # written by a replica whose clock runs a day ahead: the batches read the oldest ids and keep what is new.
    times = [NOW - timedelta(days=100 - day) for day in range(8)]
    times[1], times[3] = NOW + timedelta(days=1), times[4] - timedelta(seconds=1)
    for number, occurred_at in enumerate(times):
        await store.add_audit_event(audit_event(number, occurred_at=occurred_at))
    await store.add_audit_event(audit_event(8))
    cutoff = NOW - timedelta(days=95.5)  # events 0, 2, 3 and 4 are older (3 by a second more than 4)

    assert await store.purge_expired(NOW) == 0  # no retention given: every event stays
    assert len(await store.list_audit_events()) == 9
    assert await store.purge_expired(NOW, audit_events_before=cutoff, batch=2) == 4
    left = sorted(event.details["number"] for event in await store.list_audit_events())
    assert left == [1, 5, 6, 7, 8]
    assert await store.purge_expired(NOW, audit_events_before=cutoff, batch=2) == 0
    assert await store.purge_expired(NOW, audit_events_before=NOW + timedelta(days=2)) == 5


async def test_purge_expired_goes_in_batches_until_none_is_left(store: SqlStore) -> None:
    for n in range(7):
        await store.record_issued_token(token_record(f"old-{n}", expires_in=10))
        await store.save_session(session_record(f"old-{n}", expires_in=10))
    await store.record_issued_token(token_record("new", expires_in=600))
    assert await store.purge_expired(NOW + timedelta(seconds=60), batch=3) == 14  # 3 + 3 + 1 of each table
    assert await store.get_issued_token("old-6") is None
    assert await store.get_issued_token("new") is not None


# --- remembered consent ---------------------------------------------------------------------------------------


async def test_consent_grants_add_up_per_client_and_user_and_revocation_forgets_them(store: SqlStore) -> None:
    assert await store.get_authorization_consent("app", "alice") is None
    await store.grant_authorization_consent("app", "alice", frozenset({"openid", "profile"}), NOW)
    await store.grant_authorization_consent("app", "alice", frozenset({"email"}), NOW + timedelta(seconds=5))
    await store.grant_authorization_consent("app", "bob", frozenset(), NOW)
    consent = await store.get_authorization_consent("app", "alice")
    assert consent is not None
    assert consent.scopes == {"openid", "profile", "email"}
    assert consent.granted_at == NOW + timedelta(seconds=5)
    bob = await store.get_authorization_consent("app", "bob")
    assert bob is not None
    assert bob.scopes == frozenset()
    assert await store.get_authorization_consent("other-app", "alice") is None
    await store.revoke_authorization_consent("app", "alice")
    assert await store.get_authorization_consent("app", "alice") is None
    assert await store.get_authorization_consent("app", "bob") is not None
