"""Shared field types for configuration models."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict

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


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


# An interval where 0 means "never" or "every time", as the setting says; a negative one is a mistake.
NonNegativeDuration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_not_negative)]
