"""tokensmith.jose.RemoteKeySet: fetch once, refetch on an unknown kid once per cool-down, serve held keys while
the publisher is down, and bound each response in size and time."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from tokensmith import jose

ISSUER = "https://issuer.example"
CLAIMS = {"iss": ISSUER, "sub": "alice"}


class Publisher:
    """A JWKS host behind httpx.MockTransport: which keys it publishes, whether it is up, how slow, what it counts."""

    def __init__(self) -> None:
        self.keys = [ECKey.generate_key("P-256", parameters={"kid": "k0"}, private=True)]
        self.hits: Counter[str] = Counter()
        self.up = True
        self.delay = 0.0
        self.padding = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.hits[request.url.path] += 1
        await asyncio.sleep(self.delay)
        if not self.up:
            return httpx.Response(503)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
        body: dict[str, Any] = {"keys": [k.as_dict(private=False) for k in self.keys]}
        if self.padding:
            body["padding"] = "x" * self.padding
        return httpx.Response(200, json=body)

    def rotate(self) -> ECKey:
        key = ECKey.generate_key("P-256", parameters={"kid": f"k{len(self.keys)}"}, private=True)
        self.keys.append(key)
        return key

    def token(self, key: ECKey | None = None, kid: str | None = None) -> jose.CompactJWS:
        key = key or self.keys[-1]
        signed = jose.Key(key, ["ES256"]).sign(CLAIMS, alg="ES256")
        parsed = jose.parse(signed)
        return parsed if kid is None else dataclasses.replace(parsed, header={**parsed.header, "kid": kid})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def publisher() -> Publisher:
    return Publisher()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def key_set(publisher: Publisher, clock: Clock, **options: Any) -> jose.RemoteKeySet:
    http = httpx.AsyncClient(transport=httpx.MockTransport(publisher.handle))
    return jose.RemoteKeySet(http=http, algorithms=["ES256"], issuer=ISSUER, clock=clock, **options)


async def test_keys_are_discovered_fetched_once_and_verify(publisher: Publisher, clock: Clock) -> None:
    keys = key_set(publisher, clock)
    for _ in range(3):
        token = publisher.token()
        jose.verify(token, await keys.keys_for(token))
    assert publisher.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}
    assert keys.kids == {"k0"}


async def test_an_unknown_kid_refetches_at_most_once_per_cool_down(publisher: Publisher, clock: Clock) -> None:
    keys = key_set(publisher, clock, cooldown=30)
    await keys.refresh()
    rotated = publisher.rotate()
    results = await asyncio.gather(*(keys.keys_for(publisher.token(rotated)) for _ in range(10)))
    assert all(r[0].kid == "k1" for r in results)
    assert publisher.hits["/jwks"] == 2  # the rotation is picked up at once, by one shared fetch
    for n in range(5):
        with pytest.raises(jose.UnknownKey):
            await keys.keys_for(publisher.token(kid=f"forged-{n}"))
    assert publisher.hits["/jwks"] == 2  # made-up kids within the cool-down cost nothing
    clock.now += 30
    with pytest.raises(jose.UnknownKey):
        await keys.keys_for(publisher.token(kid="forged"))
    assert publisher.hits["/jwks"] == 3


async def test_an_algorithm_off_the_allow_list_is_refused_without_a_fetch(publisher: Publisher, clock: Clock) -> None:
    keys = key_set(publisher, clock)
    token = publisher.token()
    with pytest.raises(jose.UnacceptableJWT, match="'ES384'"):
        await keys.keys_for(dataclasses.replace(token, header={**token.header, "alg": "ES384"}))
    assert publisher.hits["/jwks"] == 0


async def test_held_keys_serve_while_the_publisher_is_down(publisher: Publisher, clock: Clock) -> None:
    keys = key_set(publisher, clock, max_age=300, cooldown=30)
    token = publisher.token()
    await keys.keys_for(token)
    publisher.up = False
    clock.now += 301  # stale: a background refresh starts and fails; the held key keeps verifying
    assert await keys.keys_for(token)
    await keys.refresh()
    assert keys.last_error is not None
    assert await keys.keys_for(token)
    with pytest.raises(jose.KeysUnavailable, match="unavailable"):
        await keys.keys_for(publisher.token(publisher.rotate()))
    hits = publisher.hits["/jwks"]
    for _ in range(3):  # not asked again within the cool-down
        with pytest.raises(jose.KeysUnavailable):
            await keys.keys_for(publisher.token())
    assert publisher.hits["/jwks"] == hits


async def test_a_withdrawn_key_stops_verifying_after_the_background_refresh(publisher: Publisher, clock: Clock) -> None:
    keys = key_set(publisher, clock, max_age=300)
    old = publisher.token()
    await keys.keys_for(old)
    publisher.keys = [publisher.rotate()]
    clock.now += 301
    assert await keys.keys_for(old)  # not delayed by the refresh it started
    await keys.refresh()
    assert keys.kids == {"k1"}
    clock.now += 60  # past the cool-down of the refresh: the unknown kid may refetch, and still finds nothing
    with pytest.raises(jose.UnknownKey):
        await keys.keys_for(old)


async def test_never_reachable_is_unavailable_not_unknown(publisher: Publisher, clock: Clock) -> None:
    publisher.up = False
    keys = key_set(publisher, clock)
    with pytest.raises(jose.KeysUnavailable):
        await keys.keys_for(publisher.token())
    assert sum(publisher.hits.values()) == 2  # both discovery locations, once


async def test_responses_are_bounded_in_size(publisher: Publisher, clock: Clock) -> None:
    publisher.padding = 5000
    keys = key_set(publisher, clock, max_bytes=4096)
    with pytest.raises(jose.KeysUnavailable, match="more than 4096 bytes"):
        await keys.keys_for(publisher.token())


async def test_fetches_are_bounded_in_time(publisher: Publisher, clock: Clock) -> None:
    publisher.delay = 5.0
    keys = key_set(publisher, clock, timeout=0.2)
    with pytest.raises(jose.KeysUnavailable, match="TimeoutError"):
        await asyncio.wait_for(keys.keys_for(publisher.token()), 2.0)


async def test_metadata_naming_another_issuer_is_refused(publisher: Publisher, clock: Clock) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(publisher.handle))
    keys = jose.RemoteKeySet(http=http, algorithms=["ES256"], issuer=f"{ISSUER}/", clock=clock)
    with pytest.raises(jose.KeysUnavailable, match="expected exactly"):
        await keys.keys_for(publisher.token())
    assert publisher.hits["/jwks"] == 0


async def test_a_configured_jwks_uri_skips_discovery(publisher: Publisher, clock: Clock) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(publisher.handle))
    keys = jose.RemoteKeySet(http=http, algorithms=["ES256"], jwks_uri=f"{ISSUER}/jwks", clock=clock)
    token = publisher.token()
    jose.verify(token, await keys.keys_for(token))
    assert publisher.hits == {"/jwks": 1}
    with pytest.raises(ValueError, match="needs a jwks_uri or an issuer"):
        jose.RemoteKeySet(http=http, algorithms=["ES256"])
