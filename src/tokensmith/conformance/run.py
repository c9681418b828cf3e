"""What one conformance run shares between its checks: the peer, the tokens, the plain exchange's answer, and the
way a refusal is graded against the RFC."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tokensmith.conformance.peer import Answer, ExchangeTarget, Form, Peer, Redactor
from tokensmith.conformance.report import Outcome
from tokensmith.conformance.tokens import claims_of, scopes_of

Verdict = tuple[Outcome, str]
PASS, WARN, FAIL = Outcome.PASS, Outcome.WARN, Outcome.FAIL
UNKNOWN_TOKEN_TYPE = "urn:example:conformance:unknown-token-type"
DESCRIPTION_LIMIT = 160
# RFC 8693 2.2.2, quoted in the details of the refusals it governs.
INVALID_REQUEST_RULE = "RFC 8693 2.2.2: an invalid request or subject/actor token MUST get invalid_request"


class NotApplicable(Exception):
    """The check cannot run here; the message says why (shown as the result's detail)."""


class Run:
    """The state one conformance run shares between checks: the peer, the tokens, the plain exchange's answer."""

    def __init__(self, peer: Peer, redact: Redactor) -> None:
        self.peer = peer
        self.target: ExchangeTarget = peer.target
        self.redact = redact
        self.subject: str | None = self.target.subject_token
        self.subject_type = self.target.subject_token_type
        self.subject_obtained = False  # by client credentials, not given by the user
        self.actor: str | None = self.target.actor_token
        self.actor_type = self.target.actor_token_type
        self._baseline: Answer | None = None
        self._tag = secrets.token_hex(4)

    def made_up(self, kind: str) -> str:
        """A name no server can have registered, unique to this run."""
        return f"conformance-{kind}-{self._tag}"

    # ---- tokens -------------------------------------------------------------------------------------------

    def need_subject(self) -> str:
        if self.subject is None:
            raise NotApplicable("no subject token: pass --subject-token (client credentials gave none)")
        return self.subject

    def need_actor(self) -> str:
        if self.actor is None:
            raise NotApplicable("no actor token: pass --actor-token (client credentials gave none)")
        return self.actor

    def claims(self, token: str) -> dict[str, Any] | None:
        """A token's claims: decoded when it is a JWT, else from introspection when the server allows it."""
        return claims_of(token) or self.peer.introspect(token)

    def subject_scopes(self) -> frozenset[str] | None:
        claims = self.claims(self.need_subject())
        return scopes_of(claims) if claims is not None else None

    def granted_scopes(self, answer: Answer) -> frozenset[str] | None:
        """The issued token's scope: the response's ``scope`` when present (RFC 8693 2.2.1), else the token's."""
        assert answer.body is not None
        scope = answer.body.get("scope")
        if isinstance(scope, str):
            return frozenset(scope.split())
        claims = self.claims(answer.access_token)
        return scopes_of(claims) if claims is not None else None

    # ---- requests -----------------------------------------------------------------------------------------

    def form(self, subject: str | None = None, **extra: str | list[str] | None) -> dict[str, str | list[str] | None]:
        """An exchange of ``subject`` (default: the run's subject token) with the user's audience and scope, plus
        ``extra``."""
        form: dict[str, str | list[str] | None] = {
            "subject_token": subject if subject is not None else self.need_subject(),
            "subject_token_type": self.subject_type,
        }
        if self.target.audience:
            form["audience"] = list(self.target.audience)
        if self.target.scope:
            form["scope"] = self.target.scope
        form.update(extra)
        return form

    def exchange(self, form: Form) -> Answer:
        return self.peer.exchange(form)

    def baseline(self) -> Answer:
        """The plain exchange of the subject token, made once."""
        if self._baseline is None:
            self._baseline = self.exchange(self.form())
        return self._baseline

    def granted_baseline(self) -> Answer:
        answer = self.baseline()
        if not answer.granted:
            raise NotApplicable(f"the plain exchange was refused ({self.describe(answer)})")
        return answer

    def describe(self, answer: Answer) -> str:
        """``HTTP 400 invalid_request: <description>``, shortened, with the run's secrets redacted."""
        if answer.granted:
            return f"HTTP {answer.status}, a token issued"
        if answer.error is None:
            return f"HTTP {answer.status} without an error object"
        text = f"HTTP {answer.status} {answer.error}"
        description = answer.body.get("error_description") if answer.body is not None else None
        if isinstance(description, str) and description:
            description = self.redact(description)  # before shortening, which could cut a secret in two
            if len(description) > DESCRIPTION_LIMIT:
                description = description[: DESCRIPTION_LIMIT - 3] + "..."
            text += f": {description}"
        return self.redact(text)

    def refused_with(
        self,
        answer: Answer,
        expected: tuple[str, ...],
        *,
        rule: str,
        should: bool = False,
        if_granted: Outcome = FAIL,
    ) -> Verdict:
        """A request the server must refuse: PASS with an expected error code; another code is FAIL (WARN where
        the RFC says SHOULD); a token issued is ``if_granted``."""
        if answer.granted:
            return if_granted, f"a token was issued; {rule}"
        got = self.describe(answer)
        if answer.error is None:
            return FAIL, f"{got}; RFC 6749 5.2 errors are JSON objects with an error member"
        if answer.error in expected:
            return PASS, got
        return (WARN if should else FAIL), f"{got}; {rule}"


@dataclass(frozen=True, slots=True)
class Check:
    check_id: str
    section: str
    title: str
    judge: Callable[[Run], Verdict]


__all__ = [
    "DESCRIPTION_LIMIT",
    "FAIL",
    "INVALID_REQUEST_RULE",
    "PASS",
    "UNKNOWN_TOKEN_TYPE",
    "WARN",
    "Check",
    "NotApplicable",
    "Run",
    "Verdict",
]
