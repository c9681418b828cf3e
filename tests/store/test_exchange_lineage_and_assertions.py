"""Revision 0002 on SQLite and PostgreSQL: refresh tokens in the exchange lineage, single-use client assertion jtis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tokensmith.store.records import ClientAssertionRecord, DPoPProofRecord, IssuedTokenRecord, RefreshTokenRecord
from tokensmith.store.sql import SqlStore

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def token(
    jti: str, *, parent: str | None = None, actor: str | None = None, grant: str | None = None
) -> IssuedTokenRecord:
    return IssuedTokenRecord(
        jti=jti,
        kind="access_token",
        client_id="client-1",
        subject="alice",
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        grant_id=grant,
        parent_jti=parent,
        actor_jti=actor,
    )


def refresh(label: str, *, parent: str | None = None, actor: str | None = None) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_hash=label.encode().hex().ljust(64, "0"),
        family_id=f"family-{label}",
        grant_id=f"grant-{label}",
        client_id="message-service",
        subject="alice",
        scope=("message.read",),
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        claims={"token_exchange": {"aud": ["message-service"], "claims": {}, "not_after": None}},
        parent_jti=parent,
        actor_jti=actor,
    )


async def test_refresh_token_lineage_round_trips(store: SqlStore) -> None:
    record = refresh("r1", parent="subject-1", actor="actor-1")
    await store.save_refresh_token(record)
    assert await store.get_refresh_token(record.token_hash) == record


async def test_revoking_an_ancestor_revokes_exchanged_refresh_tokens(store: SqlStore) -> None:
    # user token -> exchanged token (subject) -> refresh token exchanged from it; an unrelated refresh token.
    for record in (token("user", grant="login"), token("subject", parent="user"), token("actor")):
        await store.record_issued_token(record)
    from_subject, from_actor, unrelated = (
        refresh("child", parent="subject"),
        refresh("acted", parent="other", actor="actor"),
        refresh("unrelated", parent="elsewhere"),
    )
    for record in (from_subject, from_actor, unrelated):
        await store.save_refresh_token(record)

    assert await store.revoke_token_lineage("user", NOW) == ["subject", "user"]
    assert await store.revoke_token_lineage("actor", NOW) == ["actor"]

    for record, revoked in ((from_subject, True), (from_actor, True), (unrelated, False)):
        stored = await store.get_refresh_token(record.token_hash)
        assert stored is not None
        assert (stored.revoked_at is not None) is revoked, record.token_hash
        consumed = await store.use_refresh_token(record.token_hash, NOW)
        assert consumed.first_use is not revoked


async def test_revoking_a_grant_revokes_refresh_tokens_exchanged_from_its_tokens(store: SqlStore) -> None:
    await store.record_issued_token(token("code-token", grant="grant-code"))
    exchanged = refresh("from-code", parent="code-token")
    await store.save_refresh_token(exchanged)
    await store.revoke_grant("grant-code", NOW)
    stored = await store.get_refresh_token(exchanged.token_hash)
    assert stored is not None
    assert stored.revoked_at is not None


async def test_client_assertion_jti_is_single_use(store: SqlStore) -> None:
    expires = NOW + timedelta(minutes=1)
    assert await store.use_client_assertion(ClientAssertionRecord("client-1", "jti-1", expires))
    assert not await store.use_client_assertion(ClientAssertionRecord("client-1", "jti-1", expires))
    # The jti is unique per client: another client may pick the same value.
    assert await store.use_client_assertion(ClientAssertionRecord("client-2", "jti-1", expires))


async def test_racing_replays_of_one_assertion_succeed_once(store: SqlStore) -> None:
    record = ClientAssertionRecord("client-1", "raced", NOW + timedelta(minutes=1))
    results = await asyncio.gather(*(store.use_client_assertion(record) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_expired_assertion_jtis_are_purged(store: SqlStore) -> None:
    await store.use_client_assertion(ClientAssertionRecord("client-1", "old", NOW - timedelta(seconds=1)))
    await store.use_client_assertion(ClientAssertionRecord("client-1", "live", NOW + timedelta(minutes=1)))
    assert await store.purge_expired(NOW) == 1
    assert await store.use_client_assertion(ClientAssertionRecord("client-1", "old", NOW + timedelta(minutes=1)))
    assert not await store.use_client_assertion(ClientAssertionRecord("client-1", "live", NOW + timedelta(minutes=1)))


async def test_dpop_proof_jti_is_single_use_and_purged(store: SqlStore) -> None:
    live = DPoPProofRecord("a" * 64, NOW + timedelta(minutes=1))
    assert await store.use_dpop_proof(live)
    assert not await store.use_dpop_proof(live)
    results = await asyncio.gather(
        *(store.use_dpop_proof(DPoPProofRecord("b" * 64, live.expires_at)) for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]
    # One flush of new and used jtis: each caller learns about its own.
    mixed = [DPoPProofRecord(c * 64, live.expires_at) for c in "defa"]
    outcomes = await asyncio.gather(*(store.use_dpop_proof(proof) for proof in mixed))
    assert outcomes == [True, True, True, False]
    await store.use_dpop_proof(DPoPProofRecord("c" * 64, NOW - timedelta(seconds=1)))
    assert await store.purge_expired(NOW) == 1
    assert await store.use_dpop_proof(DPoPProofRecord("c" * 64, NOW + timedelta(minutes=1)))
    assert not await store.use_dpop_proof(live)
