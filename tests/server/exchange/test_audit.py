"""Every exchange, granted or refused, leaves an audit event (who asked, for whom, actor, audience, scope,
outcome and why)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tests.server.exchange.fakes import (
    ISSUER,
    ContextFactory,
    FakeStore,
    client,
    exchange_grant,
    exchange_request,
    user_token,
)

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.audit import AuditLog, ExchangeAttempt
from tokensmith.server.core.context import ServerContext
from tokensmith.store.records import AuditEvent


async def test_a_granted_exchange_is_audited_with_who_for_whom_audience_and_scope(
    ctx: ServerContext, store: FakeStore
) -> None:
    subject = await user_token(ctx)
    await exchange_grant(exchange_request(subject.token, scope="message.read"), client(ctx), ctx)
    # Committed before the grant returns (before the response goes out): nothing is left to write later.
    [event] = store.audit
    assert (event.event, event.outcome, event.reason) == ("token_exchange", "granted", None)
    assert (event.client_id, event.subject, event.actor) == ("message-service", "baeldung", None)
    assert (event.audience, event.scope) == (("message-service",), ("message.read",))
    assert event.details["subject_jti"] == subject.jti
    assert event.details["mode"] == "impersonation"
    assert event.details["issued_token_type"] == ACCESS_TOKEN_TYPE


async def test_a_delegated_exchange_names_the_actor(context_factory: ContextFactory, store: FakeStore) -> None:
    ctx = await context_factory({"delegation": True})
    subject = await user_token(ctx)
    actor = await user_token(ctx, subject="user-service", client_id="user-service")
    await exchange_grant(
        exchange_request(subject.token, actor_token=actor.token, actor_token_type=ACCESS_TOKEN_TYPE), client(ctx), ctx
    )
    assert store.audit[-1].actor == "user-service"
    assert store.audit[-1].details["actor_issuer"] == ISSUER


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"subject_token": "garbage"}, "invalid_request"),
        ({"subject_token_type": "urn:x"}, "invalid_request"),
        ({"audience": "admin-api"}, "invalid_target"),
        ({"scope": "message.write"}, "invalid_scope"),
    ],
)
async def test_a_refused_exchange_is_audited_before_the_error_is_returned(
    ctx: ServerContext, store: FakeStore, params: dict[str, str], error: str
) -> None:
    subject = await user_token(ctx)
    request = {"subject_token": subject.token, "subject_token_type": ACCESS_TOKEN_TYPE, **params}
    token, token_type = request.pop("subject_token"), request.pop("subject_token_type")
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(exchange_request(token, token_type, **request), client(ctx), ctx)
    assert caught.value.error == error
    [event] = store.audit
    assert event.outcome == "refused"
    assert event.client_id == "message-service"
    assert str(event.reason).startswith(f"{error}: ")


async def test_a_refusal_after_validation_still_names_the_subject(ctx: ServerContext, store: FakeStore) -> None:
    subject = await user_token(ctx)
    with pytest.raises(OAuthError):
        await exchange_grant(exchange_request(subject.token, audience="admin-api"), client(ctx), ctx)
    assert (store.audit[0].subject, store.audit[0].details["subject_jti"]) == ("baeldung", subject.jti)


async def test_a_server_failure_is_audited_and_re_raised(ctx: ServerContext, store: FakeStore) -> None:
    subject = await user_token(ctx)

    async def broken(token: object) -> None:
        raise RuntimeError("database down")

    store.record_issued_token = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        await exchange_grant(exchange_request(subject.token), client(ctx), ctx)
    assert store.audit[0].outcome == "failed"
    assert store.audit[0].reason == "server_error: RuntimeError"


async def test_an_unavailable_audit_table_does_not_change_the_outcome_and_logs_the_event(
    ctx: ServerContext, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    subject = await user_token(ctx)
    store.fail_audit = True
    with caplog.at_level(logging.ERROR), pytest.raises(OAuthError):
        await exchange_grant(exchange_request(subject.token, audience="admin-api"), client(ctx), ctx)
    assert "audit event not stored" in caplog.text
    assert "admin-api" in caplog.text


async def test_recording_waits_until_the_store_has_committed_the_event(store: FakeStore, ctx: ServerContext) -> None:
    committed = asyncio.Event()
    add_audit_event = store.add_audit_event

    async def slow_commit(event: AuditEvent) -> None:
        await committed.wait()
        await add_audit_event(event)

    store.add_audit_event = slow_commit  # type: ignore[method-assign]
    audit = AuditLog(ctx.store)
    recording = asyncio.create_task(audit.record(ExchangeAttempt(client_id="c").event("granted", ctx.clock())))
    await asyncio.sleep(0.01)
    assert not recording.done()
    committed.set()
    await recording
    assert len(store.audit) == 1
