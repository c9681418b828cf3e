"""The server under test, seen from one client: discovery, token requests, revocation and introspection over
bounded httpx requests, each answer kept whole (status, headers, JSON) for the checks to judge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from tokensmith.client.client_auth import basic_credentials
from tokensmith.client.discovery import metadata_urls

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"

AuthMethod = Literal["client_secret_basic", "client_secret_post"]
Form = Mapping[str, str | list[str] | None]


class DiscoveryFailed(Exception):
    """The issuer publishes no usable metadata: nothing else can be checked."""


@dataclass(frozen=True, slots=True)
class ExchangeTarget:
    """What the user tells the runner: the server, a client registered for token exchange, optional tokens."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    auth_method: AuthMethod = "client_secret_basic"
    subject_token: str | None = field(default=None, repr=False)
    subject_token_type: str = ACCESS_TOKEN_TYPE
    actor_token: str | None = field(default=None, repr=False)
    actor_token_type: str = ACCESS_TOKEN_TYPE
    # Sent with every exchange the checks expect to succeed (some servers need a target, or a scope: Spring
    # Authorization Server otherwise asks for the subject token's scopes, which the client may not hold).
    audience: tuple[str, ...] = ()
    scope: str | None = None
    # A scope the client may be granted but the subject token does not hold (for the escalation check).
    escalation_scope: str | None = None
    # A token this server issued that has expired (the runner cannot make one the server would have signed).
    expired_token: str | None = field(default=None, repr=False)
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer of the server."""

    status: int
    headers: httpx.Headers
    body: dict[str, Any] | None  # the JSON object, None when the body is not one

    @property
    def error(self) -> str | None:
        error = self.body.get("error") if self.body is not None else None
        return error if isinstance(error, str) else None

    @property
    def granted(self) -> bool:
        return self.status == 200 and self.body is not None and isinstance(self.body.get("access_token"), str)

    @property
    def access_token(self) -> str:
        assert self.body is not None
        token: str = self.body["access_token"]
        return token


@dataclass(frozen=True, slots=True)
class SeenError:
    """A token-endpoint request a check made and the answer it got (kept for the error-format check)."""

    check_id: str
    answer: Answer


class Peer:
    """The server under test, spoken to as ``target.client_id``; every request is bounded by ``target.timeout``."""

    def __init__(self, target: ExchangeTarget, http: httpx.Client) -> None:
        self.target = target
        self._http = http
        self.metadata: dict[str, Any] = {}
        self.errors: list[SeenError] = []  # every token-endpoint answer that was not a grant
        self.current_check = ""

    # ---- discovery ----------------------------------------------------------------------------------------

    def discover(self) -> dict[str, Any]:
        """RFC 8414 3 and OpenID Connect Discovery: the first of the two well-known documents that answers."""
        problems = []
        openid, oauth = metadata_urls(self.target.issuer)
        for url in (oauth, openid):
            try:
                response = self._http.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                problems.append(f"{url}: {type(exc).__name__}")
                continue
            document = _json_object(response)
            if response.status_code != 200 or document is None:
                problems.append(f"{url}: HTTP {response.status_code}")
                continue
            if not isinstance(document.get("token_endpoint"), str):
                problems.append(f"{url}: no token_endpoint")
                continue
            self.metadata = document
            return document
        raise DiscoveryFailed("; ".join(problems))

    @property
    def token_endpoint(self) -> str:
        endpoint: str = self.metadata["token_endpoint"]
        return endpoint

    def endpoint(self, name: str) -> str | None:
        value = self.metadata.get(name)
        return value if isinstance(value, str) else None

    # ---- requests -----------------------------------------------------------------------------------------

    def post(self, url: str, form: Form, *, authenticate: bool = True) -> Answer:
        data: dict[str, str | list[str]] = {k: v for k, v in form.items() if v is not None}
        headers = {"Accept": "application/json"}
        if authenticate and self.target.auth_method == "client_secret_basic":
            headers["Authorization"] = basic_credentials(self.target.client_id, self.target.client_secret)
        elif authenticate:
            data.update(client_id=self.target.client_id, client_secret=self.target.client_secret)
        response = self._http.post(url, data=data, headers=headers)
        return Answer(response.status_code, response.headers, _json_object(response))

    def token(self, form: Form) -> Answer:
        answer = self.post(self.token_endpoint, form)
        if not answer.granted:
            self.errors.append(SeenError(self.current_check, answer))
        return answer

    def exchange(self, form: Form) -> Answer:
        """A token-exchange request: ``form`` plus the grant type (None values are left out)."""
        return self.token({"grant_type": TOKEN_EXCHANGE, **form})

    def client_credentials(self) -> Answer:
        return self.post(self.token_endpoint, {"grant_type": "client_credentials"})

    def revoke(self, token: str) -> Answer | None:
        """RFC 7009; None when the server advertises no revocation endpoint."""
        endpoint = self.endpoint("revocation_endpoint")
        if endpoint is None:
            return None
        return self.post(endpoint, {"token": token, "token_type_hint": "access_token"})

    def introspect(self, token: str) -> dict[str, Any] | None:
        """RFC 7662: the claims of an active token, or None (no endpoint, not allowed, or inactive)."""
        endpoint = self.endpoint("introspection_endpoint")
        if endpoint is None:
            return None
        answer = self.post(endpoint, {"token": token})
        if answer.status != 200 or answer.body is None or answer.body.get("active") is not True:
            return None
        return answer.body


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class Redactor:
    """Replaces the run's secrets (client secret, tokens) in text that comes from the server before it is shown.

    Values shorter than 8 characters are left alone: replacing a word like ``token`` would garble the text, and a
    secret that short is no secret."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._values: list[str] = []
        self.add(*values)

    def add(self, *values: str | None) -> None:
        self._values.extend(v for v in values if v is not None and len(v) >= 8 and v not in self._values)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "[redacted]")
        return text


__all__ = ["ACCESS_TOKEN_TYPE", "JWT_TOKEN_TYPE", "TOKEN_EXCHANGE", "Answer", "ExchangeTarget", "Peer", "Redactor"]
