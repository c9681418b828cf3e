"""The client app's OpenID Connect relying-party logic: authorization request, code redemption, ID token checks.

Authorization code flow with PKCE (S256), ``state`` against login CSRF and ``nonce`` against ID-token replay
(OpenID Connect Core 3.1). Free of any web framework: the app turns HTTP into these calls.

With a DPoP key (the demo's DPoP variant) the authorization request names the key (``dpop_jkt``) and every token
request carries a proof by it, so the access tokens are bound to the key (RFC 9449); a token endpoint that asks for
its nonce (``use_dpop_nonce``) gets one retry with it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tokensmith.client.dpop import DPoPKey, asks_for_nonce

ID_TOKEN_ALGORITHMS = ("RS256", "ES256")
CLOCK_LEEWAY_SECONDS = 60


class LoginError(Exception):
    """The login could not complete; the message is safe to show to the user."""


class ProviderUnavailable(LoginError):
    """The authorization server did not answer."""


class RefreshRefused(LoginError):
    """The authorization server no longer honours the refresh token (expired, revoked, used before): log in again."""


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the client remembers between the redirect to the authorization server and the callback."""

    state: str
    nonce: str
    code_verifier: str
    return_to: str


@dataclass(frozen=True, slots=True)
class LoginResult:
    access_token: str
    id_token: str
    id_claims: dict[str, Any]
    refresh_token: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshedTokens:
    """A refresh grant's answer. ``refresh_token`` is the replacement when the server rotates them (tokensmith
    does), else None: keep the old one. The ID token and its claims come along when the server sends one."""

    access_token: str
    refresh_token: str | None = None
    id_token: str | None = None
    id_claims: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RelyingPartyConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: tuple[str, ...]
    post_logout_redirect_uri: str


def _json(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON object, or None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pending_login(return_to: str) -> PendingLogin:
    return PendingLogin(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        return_to=return_to,
    )


class RelyingParty:
    def __init__(self, config: RelyingPartyConfig, http: httpx.AsyncClient, dpop: DPoPKey | None = None) -> None:
        self.config = config
        self._http = http
        self.dpop = dpop
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, fetched once; its issuer must be ours exactly."""
        if self._metadata is None:
            url = self.config.issuer + "/.well-known/openid-configuration"
            document = await self._get_json(url)
            if document.get("issuer") != self.config.issuer:
                raise LoginError(f"the discovery document names issuer {document.get('issuer')!r}, not ours")
            self._metadata = document
        return self._metadata

    async def _endpoint(self, name: str) -> str:
        value = (await self.metadata()).get(name)
        if not isinstance(value, str):
            raise LoginError(f"the authorization server does not publish {name}")
        return value

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"the authorization server is unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise LoginError(f"{url} answered {response.status_code}")
        body = _json(response)
        if body is None:
            raise LoginError(f"{url} did not return a JSON object")
        return body

    async def authorization_url(self, pending: PendingLogin) -> str:
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": _s256(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        if self.dpop is not None:
            params["dpop_jkt"] = self.dpop.jkt  # RFC 9449 10: the code is redeemable only with a proof by this key
        return f"{await self._endpoint('authorization_endpoint')}?{urlencode(params)}"

    async def redeem(self, pending: PendingLogin, params: Mapping[str, str]) -> LoginResult:
        """Handle the callback's query: check ``state`` and ``iss``, redeem the code, validate the ID token."""
        if not secrets.compare_digest(params.get("state", ""), pending.state):
            raise LoginError("the state parameter does not match this login (possible login CSRF)")
        await self.check_response_issuer(params)
        if "error" in params:
            raise LoginError(
                f"the authorization server refused: {params['error']} {params.get('error_description', '')}"
            )
        code = params.get("code")
        if not code:
            raise LoginError("the callback carries no authorization code")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        response, body = await self._token_request(form)
        if response.status_code != 200:
            raise LoginError(f"the token endpoint refused the code: {body.get('error', response.status_code)}")
        access_token, id_token = body.get("access_token"), body.get("id_token")
        if not isinstance(access_token, str) or not isinstance(id_token, str):
            raise LoginError("the token response lacks an access token or an ID token")
        self._check_binding(body)
        claims = await self.validate_id_token(id_token, pending.nonce)
        refresh_token = body.get("refresh_token")
        return LoginResult(access_token, id_token, claims, refresh_token if isinstance(refresh_token, str) else None)

    async def check_response_issuer(self, params: Mapping[str, str]) -> None:
        """RFC 9207 2.4: an authorization response (success or error) naming another issuer in ``iss`` is refused
        (a mix-up attack), and so is one without ``iss`` from a server that advertises it
        (``authorization_response_iss_parameter_supported``)."""
        issuer = params.get("iss")
        if issuer is None:
            if (await self.metadata()).get("authorization_response_iss_parameter_supported") is True:
                raise LoginError("the authorization response lacks the iss parameter its server promises (RFC 9207)")
            return
        if issuer != self.config.issuer:
            raise LoginError(f"the authorization response comes from issuer {issuer!r}, not ours (RFC 9207)")

    async def refresh(self, refresh_token: str, subject: str) -> RefreshedTokens:
        """RFC 6749 section 6: a new access token for the same login. An ID token sent along must be for the same
        user (OpenID Connect Core 12.2); a refusal (4xx) raises :class:`RefreshRefused`."""
        response, body = await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        if response.status_code >= 500:
            raise ProviderUnavailable(f"the authorization server failed to refresh ({response.status_code})")
        if response.status_code != 200:
            raise RefreshRefused(
                f"the token endpoint refused the refresh token: {body.get('error', response.status_code)}"
            )
        access_token, new_refresh, id_token = body.get("access_token"), body.get("refresh_token"), body.get("id_token")
        if not isinstance(access_token, str):
            raise LoginError("the token response lacks an access token")
        self._check_binding(body)
        claims = None
        if isinstance(id_token, str):
            # No nonce on a refreshed ID token (12.2): there was no authorization request to bind it to.
            claims = await self.validate_id_token(id_token, nonce=None)
            if claims.get("sub") != subject:
                raise LoginError("the refreshed ID token is for another user")
        return RefreshedTokens(
            access_token=access_token,
            refresh_token=new_refresh if isinstance(new_refresh, str) else None,
            id_token=id_token if claims is not None else None,
            id_claims=claims,
        )

    def _check_binding(self, body: dict[str, Any]) -> None:
        """With a DPoP key the access token must come bound to it (``token_type: DPoP``), never as a bearer token."""
        if self.dpop is not None and str(body.get("token_type", "")).lower() != "dpop":
            raise LoginError(f"the authorization server issued a {body.get('token_type')!r} token, not a DPoP one")

    async def _token_request(self, form: dict[str, str]) -> tuple[httpx.Response, dict[str, Any]]:
        """POST ``form`` to the token endpoint with the client's credentials (and a DPoP proof when the client has a
        key): the response and its JSON object."""
        token_endpoint = await self._endpoint("token_endpoint")
        response = await self._post_token(token_endpoint, form)
        if self.dpop is not None and self.dpop.remember_nonce(response) and asks_for_nonce(response):
            response = await self._post_token(token_endpoint, form)  # RFC 9449 8: once more, with the server's nonce
            self.dpop.remember_nonce(response)
        return response, _json(response) or {}

    async def _post_token(self, token_endpoint: str, form: dict[str, str]) -> httpx.Response:
        headers = {"DPoP": self.dpop.proof("POST", token_endpoint)} if self.dpop is not None else None
        try:
            response = await self._http.post(
                token_endpoint, data=form, headers=headers, auth=(self.config.client_id, self.config.client_secret)
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"the authorization server is unreachable ({type(exc).__name__})") from None
        return response

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = await self._get_json(await self._endpoint("jwks_uri"))
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise LoginError(f"the authorization server's JWKS is unusable: {exc}") from None
        return self._keys

    async def validate_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """OpenID Connect Core 3.1.3.7: signature, iss, aud, azp, exp, iat and nonce (``None``: a refreshed ID token,
        whose nonce, if any, is the login's, 12.2)."""
        keys = await self._key_set()
        try:
            try:
                decoded = jwt.decode(id_token, keys, algorithms=list(ID_TOKEN_ALGORITHMS))
            except JoseError:
                # A key rotated since we fetched the JWKS: fetch once more, then give up.
                decoded = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=list(ID_TOKEN_ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise LoginError(f"the ID token does not verify: {exc}") from None
        claims = dict(decoded.claims)
        now = time.time()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        problems = [
            (claims.get("iss") != self.config.issuer, "iss is not our issuer"),
            (self.config.client_id not in audiences, "aud does not name this client"),
            (claims.get("azp", self.config.client_id) != self.config.client_id, "azp is another client"),
            (not isinstance(claims.get("exp"), int) or claims["exp"] + CLOCK_LEEWAY_SECONDS < now, "it has expired"),
            (not isinstance(claims.get("iat"), int), "it has no iat"),
            (
                nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce),
                "the nonce does not match this login",
            ),
        ]
        for failed, why in problems:
            if failed:
                raise LoginError(f"the ID token is not acceptable: {why}")
        return claims

    async def logout_url(self, id_token: str) -> str | None:
        """RP-initiated logout at the provider's end_session_endpoint, or None when it has none."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except LoginError:
            return None
        if not isinstance(endpoint, str):
            return None
        params = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": self.config.post_logout_redirect_uri,
            "client_id": self.config.client_id,
        }
        return f"{endpoint}?{urlencode(params)}"
