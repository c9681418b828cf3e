"""The fake issuer as pytest fixtures, for the library test packages (tests/client, tests/resource).

A conftest imports them (and lists them in ``__all__``); each package then runs its own session-wide host.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.fake_issuer import FakeClock, FakeIssuer, FakeIssuerHost, running_fake_issuer_host


@pytest.fixture(scope="session")
def issuer_host() -> Iterator[FakeIssuerHost]:
    with running_fake_issuer_host() as host:
        yield host


@pytest.fixture
def issuer(issuer_host: FakeIssuerHost) -> FakeIssuer:
    return issuer_host.fresh()


@pytest.fixture(scope="module")
def issuer_for_module(issuer_host: FakeIssuerHost) -> FakeIssuer:
    """One issuer for the whole test module, for a service started once per module."""
    return issuer_host.fresh()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
