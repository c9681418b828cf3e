"""The outcome of a conformance run: one result per check (pass, warn, fail, not applicable), as a table or JSON."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    PASS = "pass"
    # A SHOULD or RECOMMENDED of the RFC not followed, or a behaviour the RFC leaves open but users trip on.
    WARN = "warn"
    # A MUST of the RFC broken (or of RFC 6749, which RFC 8693 builds on).
    FAIL = "fail"
    # The check could not run against this server or with these inputs; the detail says why.
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check_id: str  # stable, for scripts: e.g. "missing-subject-token"
    section: str  # the RFC section it checks, e.g. "RFC 8693 2.1"
    title: str
    outcome: Outcome
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.check_id,
            "section": self.section,
            "check": self.title,
            "result": self.outcome.value,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Report:
    """What a run found: the server, notes on how the run was set up, and every check's result in order."""

    issuer: str
    token_endpoint: str | None = None
    notes: list[str] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(result.outcome is Outcome.FAIL for result in self.results)

    def counts(self) -> dict[str, int]:
        return {outcome.value: sum(r.outcome is outcome for r in self.results) for outcome in Outcome}

    def result(self, check_id: str) -> CheckResult:
        for result in self.results:
            if result.check_id == check_id:
                return result
        raise KeyError(check_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "notes": list(self.notes),
            "summary": self.counts(),
            "checks": [result.as_dict() for result in self.results],
        }

    def table(self) -> str:
        """A plain-text table: section, check, result, detail (the detail wraps under its own column)."""
        rows = [("Section", "Check", "Result", "Detail")] + [
            (r.section, r.title, r.outcome.value.upper(), r.detail) for r in self.results
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"RFC 8693 token exchange conformance: {self.issuer}"]
        if self.token_endpoint:
            lines.append(f"token endpoint: {self.token_endpoint}")
        lines.extend(f"note: {note}" for note in self.notes)
        lines.append("")
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
            if index == 0:
                lines.append("  ".join("-" * width for width in widths) + "  " + "-" * 6)
        summary = ", ".join(f"{count} {name}" for name, count in self.counts().items())
        lines.extend(["", f"summary: {summary}"])
        return "\n".join(lines)


__all__ = ["CheckResult", "Outcome", "Report"]
