"""Shared field types for configuration models."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict

# YAML keys are kebab-case like Spring's properties (`client-id`); Python attributes are snake_case.
KEBAB = ConfigDict(
    alias_generator=lambda name: name.replace("_", "-"),
    populate_by_name=True,
    extra="forbid",
    frozen=True,
)

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _parse_duration(value: Any) -> Any:
    """Accept Spring-style durations (`300`, `300s`, `5m`, `1h`, `PT5M`) and plain seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]
