"""Conformance runners that check any authorization server from the outside, over HTTP.

:func:`run_exchange_conformance` checks a server's RFC 8693 token exchange as one client registered there:
request parsing and errors, the response, token types, audience/resource/scope handling, ``act`` and
``may_act``, and the refusal of forged, unsigned, foreign, expired and revoked tokens. Each check reports pass,
warn, fail or not applicable with the RFC section and the reason (``tokensmith conformance exchange``).
Needs only the base install (httpx, joserfc, cryptography).
"""

from tokensmith.conformance.checks import CHECKS
from tokensmith.conformance.exchange import run_exchange_conformance
from tokensmith.conformance.peer import ExchangeTarget
from tokensmith.conformance.report import CheckResult, Outcome, Report

__all__ = ["CHECKS", "CheckResult", "ExchangeTarget", "Outcome", "Report", "run_exchange_conformance"]
