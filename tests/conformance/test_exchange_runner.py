"""The RFC 8693 conformance runner against an in-process fake server: all pass when it behaves, and each flaw
makes exactly the checks that look at it fail (or warn)."""

from __future__ import annotations

import json
from collections.abc import Collection

import httpx
import pytest
from tests.conformance.fake_server import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeExchangeServer

from tokensmith.conformance import CHECKS, ExchangeTarget, Outcome, Report, run_exchange_conformance

PASS, WARN, FAIL, NA = Outcome.PASS, Outcome.WARN, Outcome.FAIL, Outcome.NOT_APPLICABLE


def run(server: FakeExchangeServer, **target: object) -> Report:
    defaults: dict[str, object] = {
        "subject_token": server.issue("alice", scope="read"),
        "actor_token": server.issue("service-a", scope="act"),
        "expired_token": server.issue("alice", lifetime=-60),
    }
    settings = {**defaults, **target}
    with httpx.Client(transport=server.transport(), timeout=5) as http:
        return run_exchange_conformance(
            ExchangeTarget(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **settings),  # type: ignore[arg-type]
            http=http,
        )


def not_passed(report: Report) -> dict[str, Outcome]:
    return {r.check_id: r.outcome for r in report.results if r.outcome not in (PASS, NA)}


def test_a_conformant_server_passes_every_check() -> None:
    report = run(FakeExchangeServer())
    assert [r.check_id for r in report.results] == [c.check_id for c in CHECKS]
    outcomes = {r.check_id: r.outcome for r in report.results}
    # may_act needs a subject token that has the claim; everything else runs and passes.
    assert {k: v for k, v in outcomes.items() if v is not PASS} == {"may-act": NA}, report.table()
    assert not report.failed
    assert report.token_endpoint == f"{ISSUER}/token"
    assert report.result("delegation-act").detail == "act.sub 'service-a'"


@pytest.mark.parametrize(
    ("flaws", "expected"),
    [
        ({"not-in-metadata"}, {"metadata": WARN}),
        ({"invalid-grant-when-subject-token-missing"}, {"missing-subject-token": FAIL}),
        ({"unsupported-token-type"}, {"unknown-subject-token-type": FAIL}),
        ({"actor-token-type-optional"}, {"actor-token-without-type": FAIL}),
        ({"repeats-allowed"}, {"repeated-parameter": FAIL}),
        (
            {"no-issued-token-type"},
            {"successful-exchange": FAIL, "requested-access-token": WARN, "requested-jwt": WARN},
        ),
        ({"no-expires-in"}, {"expires-in": WARN}),
        ({"cacheable-tokens"}, {"no-store": FAIL}),
        ({"jwt-type-but-opaque"}, {"requested-jwt": FAIL}),
        ({"issues-any-audience"}, {"unknown-audience": FAIL}),
        ({"relative-resource-allowed"}, {"relative-resource": FAIL, "resource-with-fragment": FAIL}),
        ({"grants-any-scope"}, {"scope-escalation": WARN}),
        ({"narrows-silently"}, {"scope-escalation": FAIL}),
        ({"act-names-the-client"}, {"delegation-act": FAIL}),
        ({"no-act"}, {"delegation-act": WARN}),
        ({"skips-signature-check"}, {"forged-subject-token": FAIL, "forged-actor-token": FAIL}),
        ({"accepts-alg-none"}, {"unsigned-subject-token": FAIL}),
        ({"trusts-any-issuer"}, {"foreign-issuer-subject-token": FAIL}),
        ({"accepts-expired"}, {"expired-subject-token": FAIL}),
        ({"ignores-revocation"}, {"revoked-subject-token": FAIL}),
        (
            {"invalid-grant-for-bad-tokens"},
            {
                "forged-subject-token": FAIL,
                "unsigned-subject-token": FAIL,
                "foreign-issuer-subject-token": FAIL,
                "expired-subject-token": FAIL,
                "forged-actor-token": FAIL,
                "revoked-subject-token": FAIL,
            },
        ),
        ({"errors-with-status-401"}, {"error-responses": FAIL}),
        ({"cacheable-errors"}, {"error-responses": WARN}),
    ],
)
def test_each_flaw_is_reported_by_the_checks_that_look_at_it(
    flaws: Collection[str], expected: dict[str, Outcome]
) -> None:
    report = run(FakeExchangeServer(flaws))
    assert not_passed(report) == expected, report.table()
    assert report.failed == (FAIL in expected.values())


def test_no_escalation_warns_when_the_issued_scope_exceeds_the_subjects() -> None:
    server = FakeExchangeServer({"grants-any-scope"})
    report = run(server, audience=("api",), scope="read write", escalation_scope="write")
    assert report.result("successful-exchange").outcome is PASS
    assert report.result("no-escalation").outcome is WARN
    assert report.result("no-escalation").detail.startswith("issued write, which the subject token does not hold")
    assert report.result("scope-escalation").outcome is WARN
    assert "'write'" in report.result("scope-escalation").detail


def test_the_scope_given_is_sent_with_the_plain_exchange() -> None:
    report = run(FakeExchangeServer(), scope="read")
    assert report.result("no-escalation").detail == "issued read, within the subject's read"
    refused = run(FakeExchangeServer(), scope="write")
    assert refused.result("successful-exchange").outcome is FAIL
    assert "invalid_scope" in refused.result("successful-exchange").detail


def test_may_act_naming_another_actor_must_be_refused() -> None:
    server = FakeExchangeServer()
    subject = server.issue("alice", may_act={"sub": "service-b"})
    assert run(server, subject_token=subject).result("may-act").outcome is PASS
    ignored = FakeExchangeServer({"ignores-may-act"})
    subject = ignored.issue("alice", may_act={"sub": "service-b"})
    result = run(ignored, subject_token=subject).result("may-act")
    assert result.outcome is WARN, result


def test_may_act_naming_the_actor_must_be_accepted() -> None:
    server = FakeExchangeServer()
    report = run(server, subject_token=server.issue("alice", may_act={"sub": "service-a"}))
    assert report.result("may-act").outcome is PASS
    assert report.result("may-act").detail == "the actor may_act names was accepted"


def test_without_tokens_the_runner_uses_client_credentials_and_says_so() -> None:
    report = run(FakeExchangeServer(), subject_token=None, actor_token=None, expired_token=None)
    assert report.notes == [
        f"subject token: obtained by client credentials from {CLIENT_ID} (its subject is the client)",
        f"actor token: obtained by client credentials from {CLIENT_ID}",
    ]
    assert report.result("successful-exchange").outcome is PASS
    assert report.result("delegation-act").detail == f"act.sub {CLIENT_ID!r}"
    assert report.result("expired-subject-token").outcome is NA
    assert "--expired-token" in report.result("expired-subject-token").detail


def test_checks_that_need_a_subject_token_are_not_applicable_without_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/.well-known") or b"token-exchange" in request.content:
            return server.handle(request)
        return httpx.Response(400, json={"error": "unauthorized_client"}, headers={"Cache-Control": "no-store"})

    server = FakeExchangeServer()
    target = ExchangeTarget(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        report = run_exchange_conformance(target, http=http)
    assert "client credentials for exchanger refused (HTTP 400 unauthorized_client)" in report.notes[0]
    outcomes = {r.check_id: r.outcome for r in report.results}
    # The parsing checks still run (they need no valid token); the rest say what is missing.
    assert outcomes["missing-subject-token"] is PASS
    assert outcomes["unknown-subject-token-type"] is PASS
    assert outcomes["foreign-issuer-subject-token"] is PASS
    for check_id in ("successful-exchange", "forged-subject-token", "delegation-act", "revoked-subject-token"):
        assert outcomes[check_id] is NA, check_id
    assert report.result("successful-exchange").detail.startswith("no subject token: pass --subject-token")


def test_a_refused_plain_exchange_fails_when_the_user_gave_the_subject_token() -> None:
    server = FakeExchangeServer()
    report = run(server, subject_token=server.issue("alice", lifetime=-60))
    assert report.result("successful-exchange").outcome is FAIL
    assert "has expired" in report.result("successful-exchange").detail
    assert report.result("no-store").outcome is NA


def test_no_revocation_endpoint_makes_the_revocation_check_not_applicable() -> None:
    report = run(FakeExchangeServer({"no-revocation-endpoint"}))
    assert report.result("revoked-subject-token").outcome is NA
    assert "revocation_endpoint" in report.result("revoked-subject-token").detail


def test_secrets_and_tokens_never_appear_in_the_report() -> None:
    server = FakeExchangeServer({"echoes-subject-token"})
    subject = server.issue("alice")
    report = run(server, subject_token=subject)
    text = report.table() + json.dumps(report.as_dict())
    assert "[redacted]" in text
    assert CLIENT_SECRET not in text
    assert subject not in text
    assert subject.split(".")[2][:20] not in text


def test_missing_metadata_is_one_failure() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(404))) as http:
        report = run_exchange_conformance(
            ExchangeTarget(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET), http=http
        )
    assert [(r.check_id, r.outcome) for r in report.results] == [("metadata", FAIL)]
    assert "HTTP 404" in report.results[0].detail
    assert report.failed


def test_refused_client_credentials_stop_the_run_with_one_failure() -> None:
    server = FakeExchangeServer()
    with httpx.Client(transport=server.transport()) as http:
        report = run_exchange_conformance(
            ExchangeTarget(issuer=ISSUER, client_id=CLIENT_ID, client_secret="wrong-secret-value"), http=http
        )
    assert [(r.check_id, r.outcome) for r in report.results] == [("client-authentication", FAIL)]
    assert report.results[0].detail == (
        "the client's credentials were refused (HTTP 401 invalid_client: client authentication failed): "
        "check --client-id, --client-secret and --auth-method"
    )


def test_a_token_endpoint_that_does_not_answer_stops_the_run_with_one_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            raise httpx.ReadTimeout("timed out", request=request)
        return FakeExchangeServer().handle(request)

    target = ExchangeTarget(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        report = run_exchange_conformance(target, http=http)
    assert [(r.check_id, r.outcome, r.detail) for r in report.results] == [
        ("token-endpoint", FAIL, "no answer: ReadTimeout: timed out")
    ]


def test_a_request_that_times_out_fails_its_check_with_the_reason() -> None:
    server = FakeExchangeServer()

    def handler(request: httpx.Request) -> httpx.Response:
        if b"subject_token_type=" in request.content and b"subject_token=" not in request.content:
            raise httpx.ReadTimeout("timed out", request=request)
        return server.handle(request)

    target = ExchangeTarget(
        issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, subject_token=server.issue("alice")
    )
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        report = run_exchange_conformance(target, http=http)
    result = report.result("missing-subject-token")
    assert (result.outcome, result.detail) == (FAIL, "request failed: ReadTimeout: timed out")


def test_client_secret_post_sends_the_credentials_in_the_form() -> None:
    server = FakeExchangeServer()
    report = run(server, auth_method="client_secret_post")
    assert report.result("successful-exchange").outcome is PASS


def test_the_table_and_json_show_every_check() -> None:
    report = run(FakeExchangeServer({"no-expires-in"}))
    table = report.table()
    assert table.splitlines()[0] == f"RFC 8693 token exchange conformance: {ISSUER}"
    assert "RFC 8693 2.2.1   exchange: expires_in (RECOMMENDED)" in table
    assert "WARN" in table
    assert table.splitlines()[-1] == f"summary: {len(CHECKS) - 2} pass, 1 warn, 0 fail, 1 n/a"
    document = report.as_dict()
    assert document["summary"] == {"pass": len(CHECKS) - 2, "warn": 1, "fail": 0, "n/a": 1}
    assert {"id", "section", "check", "result", "detail"} == set(document["checks"][0])
