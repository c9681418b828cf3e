"""``run_exchange_conformance``: discover the server, settle the subject and actor tokens, run every check."""

from __future__ import annotations

import httpx

from tokensmith.conformance.checks import CHECKS
from tokensmith.conformance.peer import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    DiscoveryFailed,
    ExchangeTarget,
    Peer,
    Redactor,
)
from tokensmith.conformance.report import CheckResult, Outcome, Report
from tokensmith.conformance.run import FAIL, NotApplicable, Run


def _obtain_tokens(run: Run, report: Report) -> None:
    """The subject and actor tokens: given by the user, or obtained by client credentials from the same client."""
    client = run.target.client_id
    if run.subject is not None:
        report.notes.append("subject token: given with --subject-token")
    if run.actor is not None:
        report.notes.append("actor token: given with --actor-token")
    if run.subject is not None and run.actor is not None:
        return
    answer = run.peer.client_credentials()
    if not answer.granted:
        report.notes.append(
            f"client credentials for {client} refused ({run.describe(answer)}): "
            "checks that need a subject or actor token the user did not give are n/a"
        )
        return
    run.redact.add(answer.access_token)
    if run.subject is None:
        run.subject, run.subject_type, run.subject_obtained = answer.access_token, ACCESS_TOKEN_TYPE, True
        report.notes.append(f"subject token: obtained by client credentials from {client} (its subject is the client)")
        answer = run.peer.client_credentials()
        if not answer.granted:
            return
        run.redact.add(answer.access_token)
    if run.actor is None:
        run.actor, run.actor_type = answer.access_token, ACCESS_TOKEN_TYPE
        report.notes.append(f"actor token: obtained by client credentials from {client}")


def _client_refused(run: Run) -> CheckResult | None:
    """A failure when the token endpoint does not answer or refuses the client's credentials: every check would
    only see that."""
    try:
        answer = run.peer.post(run.peer.token_endpoint, {"grant_type": TOKEN_EXCHANGE})
    except httpx.HTTPError as exc:
        detail = run.redact(f"no answer: {type(exc).__name__}: {exc}")
        return CheckResult("token-endpoint", "RFC 6749 3.2", "the token endpoint answers", FAIL, detail)
    if answer.error != "invalid_client":
        return None
    detail = (
        f"the client's credentials were refused ({run.describe(answer)}): "
        "check --client-id, --client-secret and --auth-method"
    )
    return CheckResult("client-authentication", "RFC 6749 2.3", "the client authenticates", FAIL, detail)


def run_exchange_conformance(target: ExchangeTarget, *, http: httpx.Client | None = None) -> Report:
    """Run every check against ``target`` and report; ``http`` defaults to a client bounded by ``target.timeout``."""
    own = http is None
    client = http if http is not None else httpx.Client(timeout=target.timeout, follow_redirects=False)
    redact = Redactor([target.client_secret, target.subject_token, target.actor_token, target.expired_token])
    report = Report(issuer=target.issuer)
    try:
        peer = Peer(target, client)
        try:
            peer.discover()
        except DiscoveryFailed as exc:
            detail = redact(f"no authorization server metadata: {exc}")
            report.results.append(CheckResult("metadata", "RFC 8414 3", "metadata published", FAIL, detail))
            return report
        report.token_endpoint = peer.token_endpoint
        run = Run(peer, redact)
        refused = _client_refused(run)
        if refused is not None:
            report.results.append(refused)
            return report
        try:
            _obtain_tokens(run, report)
        except httpx.HTTPError as exc:
            report.notes.append(f"client credentials request failed ({type(exc).__name__})")
        for check in CHECKS:
            peer.current_check = check.check_id
            try:
                outcome, detail = check.judge(run)
            except NotApplicable as exc:
                outcome, detail = Outcome.NOT_APPLICABLE, str(exc)
            except httpx.HTTPError as exc:
                outcome, detail = FAIL, f"request failed: {type(exc).__name__}: {exc}"
            report.results.append(CheckResult(check.check_id, check.section, check.title, outcome, redact(detail)))
        return report
    finally:
        if own:
            client.close()


__all__ = ["run_exchange_conformance"]
