"""Registrations of clients the fake issuer knows."""

from __future__ import annotations

from joserfc.jwk import RSAKey
from tests.support.fake_issuer import FakeClient, FakeIssuer

from tokensmith.client import CLIENT_CREDENTIALS, TOKEN_EXCHANGE, Registration


def exchange_registration(
    issuer: FakeIssuer, *, method: str = "client_secret_basic", secret: str = "to:ken%"
) -> Registration:
    issuer.clients["message-service"] = FakeClient("message-service", secret, method)
    return Registration(
        registration_id="my-message-service",
        client_id="message-service",
        client_secret=secret,
        authorization_grant_type=TOKEN_EXCHANGE,
        client_authentication_method=method,  # type: ignore[arg-type]
        scopes=("message.read",),
        issuer_uri=issuer.issuer,
    )


def credentials_registration(issuer: FakeIssuer, *, method: str = "client_secret_post") -> Registration:
    issuer.clients["reporting"] = FakeClient("reporting", "s3cret", method)
    return Registration(
        registration_id="reporting",
        client_id="reporting",
        client_secret="s3cret",
        authorization_grant_type=CLIENT_CREDENTIALS,
        client_authentication_method=method,  # type: ignore[arg-type]
        scopes=("report.write",),
        issuer_uri=issuer.issuer,
    )


def private_key_registration(issuer: FakeIssuer, *, registered_key: RSAKey | None = None) -> Registration:
    key = RSAKey.generate_key(2048, parameters={"kid": "client-key-1"})
    public = registered_key if registered_key is not None else key
    issuer.clients["batch"] = FakeClient("batch", None, "private_key_jwt", dict(public.as_dict(private=False)))
    return Registration(
        registration_id="batch",
        client_id="batch",
        authorization_grant_type=CLIENT_CREDENTIALS,
        client_authentication_method="private_key_jwt",
        issuer_uri=issuer.issuer,
        signing_key=key,
        signing_alg="RS256",
    )
