"""Reading settings written like Spring Boot's ``application.yml``: client registrations and resource-server settings.

Private to the two service libraries (:mod:`tokensmith.client.registration`, :mod:`tokensmith.resource.settings`):
both read a YAML file or take a mapping, bind kebab-case keys, and report the first problem as ``<source>: <where>:
<what>`` in the error type of their own library. Where each finds its node inside the Spring layout is its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

# Spring binds ``client-id`` to ``clientId``; here to ``client_id``. Unknown keys are typos, so they are refused.
SPRING_NAMES = ConfigDict(alias_generator=lambda name: name.replace("_", "-"), populate_by_name=True, extra="forbid")

M = TypeVar("M", bound=BaseModel)
ErrorType = Callable[[str], Exception]


def read_settings(source: str | Path | Mapping[str, Any], error: ErrorType) -> tuple[str, Any]:
    """The name to report ``source`` by and its data: a YAML file parsed (an empty one is ``{}``), a mapping as is."""
    if not isinstance(source, str | Path):
        return "<mapping>", source
    name = str(source)
    try:
        return name, yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML: {exc}") from None


def validate_settings(model: type[M], data: Any, name: str, error: ErrorType) -> M:
    """``data`` bound to ``model``, or ``error`` naming the first problem and where it is."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise error(f"{name}: {where}: {first['msg']}") from None
