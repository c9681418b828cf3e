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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
