"""The RFC 8693 conformance runner (``tokensmith conformance exchange``) against tokensmith and against Spring
Authorization Server, with the same inputs: a user's access token from the login flow as the subject token,
user-service's client-credentials token as the actor token.

tokensmith must pass every check; its only not-applicable is ``may-act`` (no token it issues carries ``may_act``).
Spring Authorization Server's column is recorded (printed, and attached to the test report as
``exchange_conformance``) but not judged: the test asserts only that every check ran and the plain exchange
worked. docs/interop.md shows both columns.

Each server also registers a client whose access tokens live one second, the source of the expired subject token
(the runner cannot sign one a server would accept): tokensmith through its YAML, Spring Authorization Server
through Spring Boot properties on the command line of the interop app (its Java sources and application.yml are
unchanged).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.interop.conftest import INTEROP_CONFIG
from tests.interop.spring_apps import BootLine, SpringApp, authorization_server_args, running_on_free_ports
from tests.interop.tooling import free_port
from tests.interop.user_tokens import (
    SPRING_AS_APP,
    TOKENSMITH_APP,
    LoginClient,
    client_credentials_token,
    user_token,
)
from tests.support.server import running_server

from tokensmith.config.loader import load_config
from tokensmith.conformance import CHECKS, ExchangeTarget, Outcome, Report, run_exchange_conformance

# Setup may build the Spring jars from Maven Central on a fresh machine, then start JVMs.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
# A client of tokensmith set up the way a careful deployment would: delegation allowed, and scope-backing strict,
# so an exchanged token never holds a scope its subject token did not (the article's message-service client,
# scope-backing none, gets message.read from its registration instead: `no-escalation` warns for it).
CONFORMANCE_CLIENT = {
    "registration": {
        "client-id": "conformance",
        "client-secret": "{noop}conformance-secret",
        "client-authentication-methods": ["client_secret_basic"],
        "authorization-grant-types": [TOKEN_EXCHANGE],
        "scopes": ["message.read", "user.read"],
    },
    "token-exchange": {
        "delegation": True,
        "scope-backing": "strict",
        "default-audience": ["message-service"],
        "audiences": {"message-service": {"scopes": ["message.read", "user.read"]}},
    },
}
# A client whose tokens expire after a second: the source of the expired subject token.
SHORT_LIVED_CLIENT = {
    "registration": {
        "client-id": "short-lived",
        "client-secret": "{noop}short-lived-secret",
        "client-authentication-methods": ["client_secret_basic"],
        "authorization-grant-types": ["client_credentials"],
        "scopes": ["user.read"],
    },
    "token": {"access-token-time-to-live": "1s"},
}


# The same client on Spring Authorization Server, as Spring Boot properties: a user logs in through it, and the
# access token it gets expires after a second (a user token: Spring exchanges no client-credentials token).
SPRING_SHORT_LIVED = LoginClient(
    "short-lived", "short-lived-secret", "http://127.0.0.1:8080/login/oauth2/code/short-lived", "openid user.read"
)
_SPRING_CLIENT = "--spring.security.oauth2.authorizationserver.client.short-lived"
SPRING_SHORT_LIVED_ARGS = [
    f"{_SPRING_CLIENT}.registration.client-id={SPRING_SHORT_LIVED.client_id}",
    f"{_SPRING_CLIENT}.registration.client-secret={{noop}}{SPRING_SHORT_LIVED.client_secret}",
    f"{_SPRING_CLIENT}.registration.client-authentication-methods=client_secret_basic",
    f"{_SPRING_CLIENT}.registration.authorization-grant-types=authorization_code",
    f"{_SPRING_CLIENT}.registration.redirect-uris={SPRING_SHORT_LIVED.redirect_uri}",
    f"{_SPRING_CLIENT}.registration.scopes=openid,user.read",
    f"{_SPRING_CLIENT}.token.access-token-time-to-live=1s",
]


@pytest.fixture(scope="module")
def spring_authorization_server_for_conformance(
    boot_line: BootLine, java: str, spring_logs: Path
) -> Iterator[SpringApp]:
    """The interop suite's Spring Authorization Server (the article's), plus the short-lived client."""

    def make() -> list[SpringApp]:
        port = free_port()
        args = [*authorization_server_args(f"http://127.0.0.1:{port}"), *SPRING_SHORT_LIVED_ARGS]
        return [SpringApp(boot_line, "authorization-server", java, spring_logs, args, port=port)]

    with running_on_free_ports(make) as (app,):
        yield app


REFUSALS = (
    "forged-subject-token",
    "unsigned-subject-token",
    "foreign-issuer-subject-token",
    "expired-subject-token",
    "forged-actor-token",
    "revoked-subject-token",
)


def show(label: str, report: Report) -> str:
    table = f"--- {label} ---\n{report.table()}"
    print(table)  # the column docs/interop.md shows, in the captured output of the run
    return table


def assert_complete(report: Report, table: str) -> None:
    assert [r.check_id for r in report.results] == [c.check_id for c in CHECKS], table
    assert report.result("successful-exchange").outcome is Outcome.PASS, table


async def test_tokensmith_passes_every_exchange_conformance_check(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    document = yaml.safe_load(INTEROP_CONFIG.read_text(encoding="utf-8"))
    document["clients"].update({"conformance": CONFORMANCE_CLIENT, "short-lived": SHORT_LIVED_CLIENT})
    document.setdefault("tokens", {})["clock-skew"] = "1s"
    path = tmp_path / "conformance.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    async with running_server(load_config(path, environ={})) as issuer, httpx.AsyncClient(timeout=30) as http:
        expired = await client_credentials_token(http, issuer, "short-lived", "short-lived-secret", "user.read")
        subject = (await user_token(http, issuer, TOKENSMITH_APP))["access_token"]
        actor = await client_credentials_token(http, issuer, "user-service", "user-secret", "user.read")
        await asyncio.sleep(2.5)  # the short-lived token's second, and the second of clock skew
        target = ExchangeTarget(
            issuer=issuer,
            client_id="conformance",
            client_secret="conformance-secret",
            subject_token=subject,
            actor_token=actor,
            escalation_scope="message.read",  # allowed for the client, absent from the user's token
            expired_token=expired,
        )
        report = await asyncio.to_thread(run_exchange_conformance, target)
    table = show("tokensmith", report)
    record_property("exchange_conformance", json.dumps(report.as_dict()))
    assert_complete(report, table)
    not_passed = {r.check_id: r.outcome for r in report.results if r.outcome is not Outcome.PASS}
    assert not_passed == {"may-act": Outcome.NOT_APPLICABLE}, table


async def test_exchange_conformance_of_spring_authorization_server(
    spring_authorization_server_for_conformance: SpringApp,
    http: httpx.AsyncClient,
    record_property: pytest.RecordProperty,
) -> None:
    spring = spring_authorization_server_for_conformance
    issuer = spring.url
    expired = (await user_token(http, issuer, SPRING_SHORT_LIVED))["access_token"]
    subject = (await user_token(http, issuer, SPRING_AS_APP))["access_token"]
    actor = await client_credentials_token(http, issuer, "user-service", "user-secret", "user.read")
    await asyncio.sleep(1.5)  # the short-lived token's second
    target = ExchangeTarget(
        issuer=issuer,
        client_id="message-service",  # the article's token-exchange client
        client_secret="token",
        subject_token=subject,
        actor_token=actor,
        # Without a scope Spring asks for the subject token's (openid profile user.read), which the client does not
        # hold: invalid_scope. The article's client asks for message.read.
        scope="message.read",
        escalation_scope="message.read",
        expired_token=expired,
    )
    report = await asyncio.to_thread(run_exchange_conformance, target)
    table = show(f"Spring Authorization Server ({spring.line.spring_boot})", report)
    record_property("exchange_conformance", json.dumps(report.as_dict()))
    assert_complete(report, table + f"\n--- Spring log ---\n{spring.log_tail(25)}")
    # Error codes aside (Spring answers invalid_grant where RFC 8693 2.2.2 says invalid_request), no bad subject or
    # actor token may get a token.
    for check_id in REFUSALS:
        result = report.result(check_id)
        assert result.outcome is not Outcome.NOT_APPLICABLE, table
        assert not result.detail.startswith("a token was issued"), table
