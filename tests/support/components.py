"""External components of the test suite (PostgreSQL, chromium, java/maven, node): skip when missing on a
developer machine, fail under ``CI=true``, where `.ci/run` installs every one of them."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_component(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing component is a failure)", pytrace=False)
    pytest.skip(reason)
