"""``tokensmith demo --check``: the article's flow without a browser, step by step.

A browser's part is played by httpx with a cookie jar: open the client app, follow it to the login page, post the
credentials with the page's CSRF token, follow the redirects back, call ``/api/user/message`` and read the page.
Each step reports what it saw; the check passes only when every step holds. In the DPoP variant the steps also
check that both tokens are bound (``cnf.jkt``), each to its own holder's key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tokensmith.demo.html_scrape import Form, all_forms, element_text, login_form, token_claims
from tokensmith.demo.topology import Topology

MAX_REDIRECTS = 10
HTTP_TIMEOUT_SECONDS = 15.0


class CheckFailed(Exception):
    """One step of the flow did not hold; the message says what was expected and what came."""


@dataclass(frozen=True, slots=True)
class StepResult:
    number: int
    total: int
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        verdict = "ok  " if self.ok else "FAIL"
        return f"[{self.number}/{self.total}] {verdict} {self.name}: {self.detail}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _audiences(claims: dict[str, Any]) -> list[Any]:
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


def _jkt(claims: dict[str, Any]) -> str | None:
    """The thumbprint of the DPoP key the token is bound to (RFC 9449 6.1), or None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) and jkt else None


def _scopes(claims: dict[str, Any]) -> list[str]:
    scope = claims.get("scope", [])
    return scope.split() if isinstance(scope, str) else [str(s) for s in scope]


class FlowCheck:
    """``dpop``: the system runs the DPoP variant, so both tokens must be DPoP-bound."""

    def __init__(
        self, topology: Topology, username: str = "baeldung", password: str = "password", *, dpop: bool = False
    ) -> None:
        self.topology = topology
        self.username = username
        self.password = password
        self.dpop = dpop
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, follow_redirects=False)
        # What one step leaves for the next.
        self.authorize_response: httpx.Response | None = None
        self.login_page: httpx.Response | None = None
        self.form: Form | None = None

    async def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow redirects by hand (each hop GET), so the steps can say where they went."""
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect:
                return response
            response = await self.http.get(urljoin(str(response.url), response.headers["location"]))
        raise CheckFailed(f"more than {MAX_REDIRECTS} redirects, last at {response.url}")

    async def open_client_app(self) -> str:
        response = await self.http.get(self.topology.client_url + "/")
        location = response.headers.get("location", "")
        if response.status_code != 302 or not location.startswith(self.topology.issuer + "/"):
            raise CheckFailed(f"expected a redirect to {self.topology.issuer}, got {response.status_code} {location!r}")
        self.authorize_response = response
        return f"302 to {location.split('?')[0]}"

    async def reach_login_page(self) -> str:
        if self.authorize_response is None:
            raise CheckFailed("the client app was not opened first")
        response = await self.follow(self.authorize_response)
        form = login_form(response.text) if response.status_code == 200 else None
        if form is None or _origin(str(response.url)) != self.topology.issuer:
            raise CheckFailed(
                f"expected the login form at {self.topology.issuer}, got {response.status_code} at {response.url}"
            )
        self.login_page = response
        self.form = form
        hidden = sorted(name for name, kind in form.types.items() if kind == "hidden")
        return f"login form at {response.url.path} (hidden fields: {', '.join(hidden) or 'none'})"

    async def log_in(self) -> str:
        form, page = self.form, self.login_page
        if form is None or page is None:
            raise CheckFailed("the login page was not reached first")
        if form.username_field is None or form.password_field is None:
            raise CheckFailed("the login form has no username or password field")
        fields = dict(form.fields)
        fields[form.username_field] = self.username
        fields[form.password_field] = self.password
        action = urljoin(str(page.url), form.action or str(page.url))
        response = await self.follow(await self.http.post(action, data=fields))
        subject, azp = element_text(response.text, "subject"), element_text(response.text, "azp")
        if response.status_code != 200 or subject != self.username:
            raise CheckFailed(
                f"expected the client app's page for {self.username}, got {response.status_code} at {response.url}"
            )
        return f"back at {response.url}: subject {subject}, azp {azp}"

    async def _message(self, mode: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        query = "" if mode == "impersonation" else f"?mode={mode}"
        response = await self.http.get(f"{self.topology.client_url}/api/user/message{query}")
        if response.status_code != 200:
            detail = element_text(response.text, "error-detail") or response.text[:200]
            raise CheckFailed(f"/api/user/message answered {response.status_code}: {detail}")
        message = element_text(response.text, "message") or ""
        original = token_claims(response.text, "original-token")
        exchanged = token_claims(response.text, "exchanged-token")
        if original is None or exchanged is None:
            raise CheckFailed("the page does not show both tokens")
        return message, original, exchanged

    def _check_bound(self, original: dict[str, Any], exchanged: dict[str, Any]) -> None:
        """Both tokens DPoP-bound: yours to the client app's key, the exchanged one to user-service's (another)."""
        mine, theirs = _jkt(original), _jkt(exchanged)
        if mine is None:
            raise CheckFailed(f"your token is not DPoP-bound (cnf {original.get('cnf')!r})")
        if theirs is None:
            raise CheckFailed(f"the exchanged token is not DPoP-bound (cnf {exchanged.get('cnf')!r})")
        if mine == theirs:
            raise CheckFailed("the exchanged token is bound to the client app's key, not to user-service's")

    def _binding(self, original: dict[str, Any], exchanged: dict[str, Any]) -> str:
        """In the DPoP variant, both thumbprints once :meth:`_check_bound` holds."""
        if not self.dpop:
            return ""
        self._check_bound(original, exchanged)
        return f"; bound: your token cnf.jkt {_jkt(original)}, exchanged token cnf.jkt {_jkt(exchanged)}"

    def _check_exchanged(self, exchanged: dict[str, Any]) -> str:
        problems = []
        if exchanged.get("sub") != self.username:
            problems.append(f"sub is {exchanged.get('sub')!r}, not {self.username!r}")
        if "message-service" not in _audiences(exchanged):
            problems.append(f"aud is {exchanged.get('aud')!r}, not message-service")
        if "message.read" not in _scopes(exchanged):
            problems.append(f"scope is {exchanged.get('scope')!r}, without message.read")
        if problems:
            raise CheckFailed("exchanged token: " + "; ".join(problems))
        return f"sub {exchanged['sub']}, aud {exchanged['aud']}, scope {exchanged['scope']}"

    async def call_user_message(self) -> str:
        message, original, exchanged = await self._message("impersonation")
        if self.username not in message:
            raise CheckFailed(f"the message {message!r} does not name {self.username}")
        if "user-service" not in _audiences(original):
            raise CheckFailed(f"your token's aud is {original.get('aud')!r}, not user-service")
        return f"{message!r}; exchanged token: {self._check_exchanged(exchanged)}{self._binding(original, exchanged)}"

    async def call_delegation(self) -> str:
        _, original, exchanged = await self._message("delegation")
        act = exchanged.get("act")
        if not isinstance(act, dict) or act.get("sub") != "user-service":
            raise CheckFailed(f"expected act.sub user-service in the exchanged token, got act {act!r}")
        return f"act {act}; {self._check_exchanged(exchanged)}{self._binding(original, exchanged)}"

    async def call_transaction_token(self) -> str:
        """The Transaction Token is never bound (``token_type`` N_A): in the DPoP variant only your token is."""
        message, original, txn = await self._message("transaction-token")
        problems = []
        if self.dpop and _jkt(original) is None:
            problems.append(f"your token is not DPoP-bound (cnf {original.get('cnf')!r})")
        if txn.get("sub") != self.username:
            problems.append(f"sub is {txn.get('sub')!r}, not {self.username!r}")
        if txn.get("aud") != "demo.trust-domain" or txn.get("req_wl") != "user-service":
            problems.append(f"aud {txn.get('aud')!r} and req_wl {txn.get('req_wl')!r} are not the demo's")
        if not isinstance(txn.get("txn"), str) or txn["txn"] not in message:
            problems.append(f"message-service's answer {message!r} does not name the transaction")
        if problems:
            raise CheckFailed("Transaction Token: " + "; ".join(problems))
        return f"{message!r}; Transaction Token: sub {txn['sub']}, aud {txn['aud']}, scope {txn.get('scope')}"

    async def log_out(self) -> str:
        home = await self.http.get(self.topology.client_url + "/")
        csrf = next((f.fields.get("csrf_token") for f in all_forms(home.text) if f.action == "/logout"), None)
        if csrf is None:
            raise CheckFailed("the client app's page has no logout form")
        response = await self.http.post(self.topology.client_url + "/logout", data={"csrf_token": csrf})
        via = response.headers.get("location", "").split("?")[0]
        final = await self.follow(response)
        if final.status_code != 200 or element_text(final.text, "logged-out") is None:
            raise CheckFailed(f"expected the logged-out page, got {final.status_code} at {final.url}")
        again = await self.follow(await self.http.get(self.topology.client_url + "/"))
        if login_form(again.text) is None:
            raise CheckFailed("after logout the client app did not ask for a login again (the session survived)")
        return f"via {via}; the next visit asks for the login again"

    def steps(self) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
        return [
            ("open the client app", self.open_client_app),
            ("reach the login page", self.reach_login_page),
            (f"log in as {self.username}", self.log_in),
            ("GET /api/user/message (impersonation)", self.call_user_message),
            ("GET /api/user/message?mode=delegation", self.call_delegation),
            ("GET /api/user/message?mode=transaction-token", self.call_transaction_token),
            ("log out", self.log_out),
        ]

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, report: Callable[[StepResult], None]) -> bool:
        steps = self.steps()
        try:
            for number, (name, step) in enumerate(steps, start=1):
                try:
                    detail = await step()
                except CheckFailed as exc:
                    report(StepResult(number, len(steps), name, False, str(exc)))
                    return False
                except httpx.HTTPError as exc:
                    report(StepResult(number, len(steps), name, False, f"HTTP failure: {type(exc).__name__}: {exc}"))
                    return False
                report(StepResult(number, len(steps), name, True, detail))
            return True
        finally:
            await self.aclose()
