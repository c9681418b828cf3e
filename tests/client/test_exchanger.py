from __future__ import annotations

import asyncio
import base64

import pytest
from joserfc.jwk import RSAKey
from tests.client.helpers import credentials_registration, exchange_registration, private_key_registration
from tests.support.fake_issuer import FakeClock, FakeIssuer, free_port_url

from tokensmith.client import (
    ACCESS_TOKEN_TYPE,
    AuthorizationServerUnavailable,
    DiscoveryError,
    Registration,
    RegistrationError,
    TokenExchanger,
    TokenRequestError,
)
from tokensmith.client.flow import MAX_RESPONSE_BYTES

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


async def test_exchange_sends_rfc8693_request_with_basic_auth_and_discovered_endpoint(issuer: FakeIssuer) -> None:
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        token = await exchanger.exchange(subject, registration="my-message-service", audience="message-service")
    claims = issuer.verify(token.access_token)
    assert claims is not None
    assert claims["sub"] == "baeldung"
    assert claims["aud"] == ["message-service"]
    assert token.issued_token_type == ACCESS_TOKEN_TYPE
    assert token.scopes == frozenset({"message.read"})
    assert issuer.hits["/.well-known/openid-configuration"] == 1
    [request] = issuer.token_requests
    assert request["client"] == "message-service"  # basic credentials with ':' and '%' in the secret decoded
    assert request["params"] == {
        "grant_type": [EXCHANGE],
        "subject_token": [subject],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
        "requested_token_type": [ACCESS_TOKEN_TYPE],
        "audience": ["message-service"],
        "scope": ["message.read"],
    }


async def test_repeated_audience_resource_and_actor_token_are_sent(issuer: FakeIssuer) -> None:
    subject, actor = issuer.issue(), issuer.issue({"sub": "user-service"})
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        token = await exchanger.exchange(
            subject,
            registration="my-message-service",
            audience=["a", "b"],
            resource="https://api.example/x",
            scope=["s1", "s2"],
            actor_token=actor,
        )
    params = issuer.token_requests[0]["params"]
    assert params["audience"] == ["a", "b"]
    assert params["resource"] == ["https://api.example/x"]
    assert params["scope"] == ["s1 s2"]
    assert params["actor_token"] == [actor]
    assert params["actor_token_type"] == [ACCESS_TOKEN_TYPE]
    assert (issuer.verify(token.access_token) or {})["act"] == {"sub": "user-service"}


async def test_rfc8414_metadata_is_used_when_openid_discovery_is_absent(issuer: FakeIssuer) -> None:
    issuer.discovery = "oauth"
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        await exchanger.exchange(issuer.issue(), registration="my-message-service")
    assert issuer.hits["/.well-known/oauth-authorization-server"] == 1


async def test_metadata_naming_another_issuer_is_refused(issuer: FakeIssuer) -> None:
    issuer.advertised_issuer = "https://evil.example"
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        with pytest.raises(DiscoveryError, match="expected exactly"):
            await exchanger.exchange(issuer.issue(), registration="my-message-service")
    assert issuer.hits["/token"] == 0


async def test_result_is_cached_until_refresh_skew_before_expiry(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.expires_in = 300
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)], clock=clock) as exchanger:
        first = await exchanger.exchange(subject, registration="my-message-service")
        clock.advance(239)  # 61 s before expiry: still served from the cache
        assert await exchanger.exchange(subject, registration="my-message-service") is first
        clock.advance(2)  # 59 s before expiry: inside the 60 s skew, a new exchange
        second = await exchanger.exchange(subject, registration="my-message-service")
    assert second is not first
    assert issuer.hits["/token"] == 2
    assert issuer.hits["/.well-known/openid-configuration"] == 1  # discovery is cached too


async def test_cache_key_covers_subject_token_and_request(issuer: FakeIssuer) -> None:
    one, two = issuer.issue(), issuer.issue({"sub": "someone-else"})
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        await exchanger.exchange(one, registration="my-message-service")
        await exchanger.exchange(one, registration="my-message-service")
        await exchanger.exchange(two, registration="my-message-service")
        await exchanger.exchange(one, registration="my-message-service", audience="other")
        await exchanger.exchange(one, registration="my-message-service", scope="message.write")
    assert issuer.hits["/token"] == 4


async def test_missing_expires_in_is_cached_only_briefly(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.expires_in = None
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)], clock=clock, unknown_expiry_ttl=10) as exchanger:
        token = await exchanger.exchange(subject, registration="my-message-service")
        assert token.expires_at is None
        clock.advance(9)
        await exchanger.exchange(subject, registration="my-message-service")
        assert issuer.hits["/token"] == 1
        clock.advance(2)
        await exchanger.exchange(subject, registration="my-message-service")
    assert issuer.hits["/token"] == 2


async def test_a_short_lived_token_is_still_reused_for_half_its_life(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.expires_in = 30  # shorter than the 60 s skew
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)], clock=clock) as exchanger:
        await exchanger.exchange(subject, registration="my-message-service")
        clock.advance(14)
        await exchanger.exchange(subject, registration="my-message-service")
        assert issuer.hits["/token"] == 1
        clock.advance(2)
        await exchanger.exchange(subject, registration="my-message-service")
    assert issuer.hits["/token"] == 2


async def test_hundred_concurrent_requests_with_one_subject_token_cause_one_exchange(issuer: FakeIssuer) -> None:
    issuer.token_delay = 0.2
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        tokens = await asyncio.gather(
            *(exchanger.exchange(subject, registration="my-message-service") for _ in range(100))
        )
    assert issuer.hits["/token"] == 1
    assert len({t.access_token for t in tokens}) == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_exchange(issuer: FakeIssuer) -> None:
    issuer.token_delay = 0.2
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        impatient = asyncio.ensure_future(exchanger.exchange(subject, registration="my-message-service"))
        patient = asyncio.ensure_future(exchanger.exchange(subject, registration="my-message-service"))
        await asyncio.sleep(0.05)
        impatient.cancel()
        token = await patient
    assert token.access_token
    assert issuer.hits["/token"] == 1


async def test_refused_exchange_is_a_typed_error_without_the_token(issuer: FakeIssuer) -> None:
    issuer.token_error = (400, {"error": "invalid_target", "error_description": "audience refused"})
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        with pytest.raises(TokenRequestError) as caught:
            await exchanger.exchange(subject, registration="my-message-service", audience="nope")
    error = caught.value
    assert (error.error, error.error_description, error.status) == ("invalid_target", "audience refused", 400)
    assert subject not in str(error)
    assert subject not in repr(error.args)


async def test_a_server_echoing_the_token_does_not_leak_it(issuer: FakeIssuer) -> None:
    subject = "opaque-subject-token-value"
    issuer.token_error = (400, {"error": "invalid_request", "error_description": f"bad token {subject}"})
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        with pytest.raises(TokenRequestError) as caught:
            await exchanger.exchange(subject, registration="my-message-service")
    assert caught.value.error_description == "bad token [redacted]"
    assert subject not in str(caught.value)


async def test_bad_client_credentials_are_invalid_client(issuer: FakeIssuer) -> None:
    registration = exchange_registration(issuer)
    issuer.clients["message-service"].secret = "rotated"
    async with TokenExchanger([registration]) as exchanger:
        with pytest.raises(TokenRequestError) as caught:
            await exchanger.exchange(issuer.issue(), registration="my-message-service")
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


async def test_refusals_are_not_cached(issuer: FakeIssuer) -> None:
    issuer.token_error = (400, {"error": "invalid_request"})
    subject = issuer.issue()
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        with pytest.raises(TokenRequestError):
            await exchanger.exchange(subject, registration="my-message-service")
        issuer.token_error = None
        assert (await exchanger.exchange(subject, registration="my-message-service")).access_token
    assert issuer.hits["/token"] == 2


async def test_authorization_server_down_is_a_typed_error(issuer: FakeIssuer) -> None:
    issuer.available = False
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        with pytest.raises(AuthorizationServerUnavailable, match="metadata"):
            await exchanger.exchange(issuer.issue(), registration="my-message-service")
        issuer.available = True
        await exchanger.exchange(issuer.issue(), registration="my-message-service")  # discovery now cached
        issuer.available = False
        with pytest.raises(AuthorizationServerUnavailable, match="503"):
            await exchanger.exchange(issuer.issue(), registration="my-message-service")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_answer_beyond_the_size_bound_is_refused(issuer: FakeIssuer, chunked: bool) -> None:
    issuer.token_chunked = chunked
    issuer.padding = 100_000  # large, compressed in transit, and within the bound
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        assert (await exchanger.exchange(issuer.issue(), registration="my-message-service")).access_token
        # Gzip sends these 2 MiB in a few kilobytes: the bound is on the body as decoded.
        issuer.padding = 2 * MAX_RESPONSE_BYTES
        subject = issuer.issue()
        with pytest.raises(AuthorizationServerUnavailable, match=f"more than {MAX_RESPONSE_BYTES} bytes") as caught:
            await exchanger.exchange(subject, registration="my-message-service", audience="another")
    assert subject not in str(caught.value)


async def test_unreachable_authorization_server_is_a_typed_error() -> None:
    registration = Registration(
        registration_id="r",
        client_id="c",
        client_secret="s",
        authorization_grant_type=EXCHANGE,
        token_uri=f"{free_port_url()}/token",
    )
    async with TokenExchanger([registration], timeout=2) as exchanger:
        with pytest.raises(AuthorizationServerUnavailable, match="ConnectError") as caught:
            await exchanger.exchange("subject-token-value", registration="r")
    assert "subject-token-value" not in str(caught.value)


async def test_client_credentials_with_client_secret_post(issuer: FakeIssuer, clock: FakeClock) -> None:
    async with TokenExchanger([credentials_registration(issuer)], clock=clock) as exchanger:
        token = await exchanger.client_credentials("reporting")
        assert await exchanger.client_credentials("reporting") is token
    params = issuer.token_requests[0]["params"]
    assert params["client_secret"] == ["s3cret"]
    assert params["scope"] == ["report.write"]
    assert (issuer.verify(token.access_token) or {})["sub"] == "reporting"


async def test_private_key_jwt_assertion_is_accepted_by_the_issuer(issuer: FakeIssuer) -> None:
    async with TokenExchanger([private_key_registration(issuer)]) as exchanger:
        token = await exchanger.client_credentials("batch")
    assert (issuer.verify(token.access_token) or {})["sub"] == "batch"
    params = issuer.token_requests[0]["params"]
    assert params["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    header = params["client_assertion"][0].split(".")[0]
    assert b'"kid":"client-key-1"' in base64.urlsafe_b64decode(header + "==")


async def test_private_key_jwt_signed_with_another_key_is_refused(issuer: FakeIssuer) -> None:
    registration = private_key_registration(issuer, registered_key=RSAKey.generate_key(2048))
    async with TokenExchanger([registration]) as exchanger:
        with pytest.raises(TokenRequestError) as caught:
            await exchanger.client_credentials("batch")
    assert caught.value.error == "invalid_client"


async def test_cache_is_bounded(issuer: FakeIssuer) -> None:
    async with TokenExchanger([exchange_registration(issuer)], cache_size=2) as exchanger:
        for n in range(3):
            await exchanger.exchange(issuer.issue({"sub": f"user-{n}"}), registration="my-message-service")
        assert len(exchanger.cache) == 2


async def test_registration_misuse_is_reported(issuer: FakeIssuer) -> None:
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        with pytest.raises(RegistrationError, match="known: my-message-service"):
            await exchanger.exchange("t", registration="unknown")
        with pytest.raises(RegistrationError, match="not 'client_credentials'"):
            await exchanger.client_credentials("my-message-service")


async def test_bearer_headers_helper(issuer: FakeIssuer) -> None:
    async with TokenExchanger([exchange_registration(issuer)]) as exchanger:
        headers = await exchanger.bearer_headers(issuer.issue(), registration="my-message-service")
    assert headers["Authorization"].startswith("Bearer ey")
