"""A small RFC 8693 authorization server served in-process through ``httpx.MockTransport``.

Well behaved by default; each name in ``flaws`` makes it misbehave in one specific way, so that each conformance
check can be shown to fail (or warn) against a server that breaks exactly what it checks.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
from joserfc.jwk import ECKey

from tokensmith import jose

ISSUER = "https://as.example"
CLIENT_ID = "exchanger"
CLIENT_SECRET = "exchanger-secret-value"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AUDIENCES = frozenset({"api", "https://api.example/"})
REPEATABLE = frozenset({"audience", "resource"})

FLAWS = frozenset(
    {
        "invalid-grant-when-subject-token-missing",
        "unsupported-token-type",
        "actor-token-type-optional",
        "repeats-allowed",
        "no-issued-token-type",
        "no-expires-in",
        "cacheable-tokens",
        "jwt-type-but-opaque",
        "issues-any-audience",
        "relative-resource-allowed",
        "grants-any-scope",
        "narrows-silently",
        "act-names-the-client",
        "no-act",
        "ignores-may-act",
        "skips-signature-check",
        "accepts-alg-none",
        "trusts-any-issuer",
        "accepts-expired",
        "ignores-revocation",
        "invalid-grant-for-bad-tokens",
        "errors-with-status-401",
        "cacheable-errors",
        "echoes-subject-token",
        "not-in-metadata",
        "no-revocation-endpoint",
    }
)


class OAuthRefusal(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(error)
        self.error, self.description = error, description


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FakeExchangeServer:
    def __init__(self, flaws: Collection[str] = ()) -> None:
        unknown = set(flaws) - FLAWS
        assert not unknown, unknown
        self.flaws = frozenset(flaws)
        self.key = jose.Key(ECKey.generate_key("P-256", parameters={"kid": "fake-1"}), ["ES256"])
        self.revoked: set[str] = set()
        self.requests = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # ---- tokens ---------------------------------------------------------------------------------------------

    def issue(
        self,
        sub: str,
        *,
        scope: str = "read",
        aud: str | list[str] = "api",
        lifetime: int = 300,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": sub,
            "aud": aud,
            "scope": scope,
            "client_id": CLIENT_ID,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
            **extra,
        }
        return self.key.sign(claims, alg="ES256")

    def verify(self, token: str, role: str) -> dict[str, Any]:
        bad = "invalid_grant" if "invalid-grant-for-bad-tokens" in self.flaws else "invalid_request"
        try:
            parsed = jose.parse(token, strict_header=False)
        except jose.InvalidJWT:
            raise OAuthRefusal(bad, f"{role}_token is not a JWT") from None
        claims = parsed.claims
        if parsed.alg == "none":
            if "accepts-alg-none" not in self.flaws:
                raise OAuthRefusal(bad, f"{role}_token is not signed")
        elif claims.get("iss") != ISSUER:
            if "trusts-any-issuer" not in self.flaws:
                raise OAuthRefusal(bad, f"{role}_token is from an issuer this server does not trust")
        elif not self.key.verifies(parsed) and "skips-signature-check" not in self.flaws:
            raise OAuthRefusal(bad, f"{role}_token signature does not verify")
        if claims.get("exp", 0) <= time.time() and "accepts-expired" not in self.flaws:
            raise OAuthRefusal(bad, f"{role}_token has expired")
        if claims.get("jti") in self.revoked and "ignores-revocation" not in self.flaws:
            raise OAuthRefusal(bad, f"{role}_token has been revoked")
        return claims

    # ---- HTTP -----------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path
        if request.method == "GET" and path == "/.well-known/oauth-authorization-server":
            return self.json(200, self.metadata())
        if request.method != "POST":
            return httpx.Response(404)
        form = parse_qs(request.content.decode("ascii"), keep_blank_values=True)
        try:
            self.authenticate(request, form)
            if path == "/token":
                return self.json(200, self.token(form), store="cacheable-tokens" not in self.flaws)
            if path == "/revoke" and "no-revocation-endpoint" not in self.flaws:
                claims = jose.parse(one(form, "token")).claims
                self.revoked.add(claims["jti"])
                return httpx.Response(200)
            if path == "/introspect":
                return self.json(200, {"active": False})
        except OAuthRefusal as refusal:
            status = 401 if refusal.error == "invalid_client" or "errors-with-status-401" in self.flaws else 400
            description = refusal.description
            if "echoes-subject-token" in self.flaws:
                description += f" (subject_token {one(form, 'subject_token')}, client secret {CLIENT_SECRET})"
            body = {"error": refusal.error, "error_description": description}
            return self.json(status, body, store="cacheable-errors" not in self.flaws)
        return httpx.Response(404)

    @staticmethod
    def json(status: int, body: Mapping[str, Any], *, store: bool = True) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if store:
            headers["Cache-Control"] = "no-store"
        return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

    def metadata(self) -> dict[str, Any]:
        grants = ["client_credentials"] + ([] if "not-in-metadata" in self.flaws else [TOKEN_EXCHANGE])
        document = {
            "issuer": ISSUER,
            "token_endpoint": f"{ISSUER}/token",
            "introspection_endpoint": f"{ISSUER}/introspect",
            "grant_types_supported": grants,
        }
        if "no-revocation-endpoint" not in self.flaws:
            document["revocation_endpoint"] = f"{ISSUER}/revoke"
        return document

    @staticmethod
    def authenticate(request: httpx.Request, form: dict[str, list[str]]) -> None:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        else:
            client_id, secret = one(form, "client_id", ""), one(form, "client_secret", "")
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            raise OAuthRefusal("invalid_client", "client authentication failed")

    def token(self, form: dict[str, list[str]]) -> dict[str, Any]:
        if "repeats-allowed" not in self.flaws:
            repeated = [name for name, values in form.items() if len(values) > 1 and name not in REPEATABLE]
            if repeated:
                raise OAuthRefusal("invalid_request", f"{repeated[0]} is repeated")
        grant = one(form, "grant_type")
        if grant == "client_credentials":
            token = self.issue(CLIENT_ID, scope="read write", aud=CLIENT_ID)
            return {"access_token": token, "token_type": "Bearer", "expires_in": 300}
        if grant != TOKEN_EXCHANGE:
            raise OAuthRefusal("unsupported_grant_type", "no such grant")
        return self.exchange(form)

    def exchange(self, form: dict[str, list[str]]) -> dict[str, Any]:
        missing = "invalid_grant" if "invalid-grant-when-subject-token-missing" in self.flaws else "invalid_request"
        subject_token = one(form, "subject_token")
        if subject_token is None:
            raise OAuthRefusal(missing, "subject_token is required")
        subject_type = one(form, "subject_token_type")
        if subject_type is None:
            raise OAuthRefusal("invalid_request", "subject_token_type is required")
        actor_token, actor_type = one(form, "actor_token"), one(form, "actor_token_type")
        if actor_token is not None and actor_type is None and "actor-token-type-optional" not in self.flaws:
            raise OAuthRefusal("invalid_request", "actor_token_type is required with actor_token")
        if actor_token is None and actor_type is not None:
            raise OAuthRefusal("invalid_request", "actor_token_type without actor_token")
        for role, token_type in (("subject", subject_type), ("actor", actor_type)):
            if token_type is not None and token_type not in (ACCESS, JWT):
                error = "unsupported_token_type" if "unsupported-token-type" in self.flaws else "invalid_request"
                raise OAuthRefusal(error, f"{role}_token_type is not supported")
        subject = self.verify(subject_token, "subject")
        actor = self.verify(actor_token, "actor") if actor_token is not None else None
        may_act = subject.get("may_act")
        named = may_act.get("sub") if isinstance(may_act, dict) else None
        if actor is not None and named not in (None, actor["sub"]) and "ignores-may-act" not in self.flaws:
            raise OAuthRefusal("invalid_request", "may_act does not name this actor")
        requested = one(form, "requested_token_type")
        if requested is not None and requested not in (ACCESS, JWT):
            raise OAuthRefusal("invalid_request", "requested_token_type cannot be issued")
        targets = self.targets(form)
        held = set(str(subject.get("scope", "")).split())
        asked = one(form, "scope")
        scope = held if asked is None else set(asked.split())
        beyond = scope - held
        if beyond and "grants-any-scope" not in self.flaws:
            if "narrows-silently" not in self.flaws:
                raise OAuthRefusal("invalid_scope", f"not held by the subject: {' '.join(sorted(beyond))}")
            scope -= beyond
        extra: dict[str, Any] = {}
        if actor is not None and "no-act" not in self.flaws:
            extra["act"] = {"sub": CLIENT_ID if "act-names-the-client" in self.flaws else actor["sub"]}
        token = self.issue(str(subject["sub"]), scope=" ".join(sorted(scope)), aud=targets, **extra)
        issued = requested or ACCESS
        if issued == JWT and "jwt-type-but-opaque" in self.flaws:
            token = secrets.token_urlsafe(32)
        response: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if "no-issued-token-type" not in self.flaws:
            response["issued_token_type"] = issued
        if "no-expires-in" not in self.flaws:
            response["expires_in"] = 300
        if asked is not None and scope != set(asked.split()) and "narrows-silently" not in self.flaws:
            response["scope"] = " ".join(sorted(scope))
        return response

    def targets(self, form: dict[str, list[str]]) -> list[str]:
        resources = []
        for resource in form.get("resource", []):
            if urlsplit(resource).scheme and "#" not in resource:
                resources.append(resource)
            elif "relative-resource-allowed" not in self.flaws:
                raise OAuthRefusal("invalid_target", "resource must be an absolute URI without a fragment")
        targets = form.get("audience", []) + resources
        refused = [t for t in targets if t not in AUDIENCES]
        if refused and "issues-any-audience" not in self.flaws:
            raise OAuthRefusal("invalid_target", f"no tokens for {refused[0]}")
        return targets or ["api"]


def one(form: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = form.get(name)
    return values[0] if values else default
