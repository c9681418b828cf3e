"""Fixtures of the token-exchange unit tests: the article's server context on an in-memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.server.exchange.fakes import ContextFactory, FakeClock, FakeStore, article_config, make_context

from tokensmith.server.core.context import ServerContext


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
async def context_factory(store: FakeStore, clock: FakeClock) -> AsyncIterator[ContextFactory]:
    """Builds the article's context with message-service's `token-exchange` policy (and other settings) given;
    ``http`` fetches the trusted issuers' keys."""
    made: list[ServerContext] = []

    async def build(
        policy: dict[str, Any] | None = None, *, http: httpx.AsyncClient | None = None, **overrides: Any
    ) -> ServerContext:
        context = await make_context(article_config(policy=policy, **overrides), store, clock, http=http)
        made.append(context)
        return context

    yield build
    for context in made:
        await context.aclose()


@pytest.fixture
async def ctx(context_factory: ContextFactory) -> ServerContext:
    return await context_factory()
