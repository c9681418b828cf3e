"""Completing an authorization-code login over plain HTTP, as a browser would, without a browser.

The authorization request is followed through the provider's redirects to its login page; the form holding the
password field is posted back with every other field it carries (the CSRF token among them); redirects are followed
again until one points at the client's redirect URI, whose URL (with ``code`` and ``state``) is returned. Nothing
has to listen on the redirect URI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

MAX_HOPS = 10


@dataclass
class _Form:
    action: str
    method: str
    fields: list[dict[str, str]] = field(default_factory=list)

    @property
    def has_password(self) -> bool:
        return any(f.get("type") == "password" for f in self.fields)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = _Form(action=values.get("action", ""), method=values.get("method", "post").upper())
            self.forms.append(self._current)
        elif tag in ("input", "button") and self._current is not None and "name" in values:
            values.setdefault("type", "submit" if tag == "button" else "text")
            self._current.fields.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


class LoginFailed(AssertionError):
    """The provider never redirected to the client; carries the trail of requests for the failure message."""


@dataclass
class LoginResult:
    callback_url: str
    trail: list[str]


def _fill(form: _Form, username: str, password: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for f in form.fields:
        kind, name = f.get("type", "text"), f["name"]
        if kind == "password":
            data[name] = password
        elif kind in ("text", "email") or name == "username":
            data[name] = username
        elif kind not in ("submit", "checkbox", "button"):
            data[name] = f.get("value", "")
    return data


async def login_over_http(
    http: httpx.AsyncClient, authorization_url: str, redirect_uri: str, username: str, password: str
) -> LoginResult:
    """Follow ``authorization_url`` through the login form; return the redirect to ``redirect_uri``."""
    trail: list[str] = []
    url, method, data = authorization_url, "GET", None
    # Browsers send Accept: text/html; Spring Authorization Server answers 401 instead of its login page without it.
    headers = {"Accept": "text/html"}
    for _ in range(MAX_HOPS):
        if url.startswith(redirect_uri):
            return LoginResult(callback_url=url, trail=trail)
        response = await http.request(method, url, data=data, headers=headers, follow_redirects=False)
        trail.append(f"{method} {httpx.URL(url).path} -> {response.status_code}")
        if response.is_redirect:
            url, method, data = urljoin(url, response.headers["location"]), "GET", None
            continue
        parser = _FormParser()
        parser.feed(response.text)
        form = next((f for f in parser.forms if f.has_password), None)
        if response.status_code != 200 or form is None:
            raise LoginFailed(
                f"no login form and no redirect at {url} (HTTP {response.status_code}); trail {trail}; "
                f"body: {response.text[:300]!r}"
            )
        url, method, data = urljoin(url, form.action or url), form.method, _fill(form, username, password)
    raise LoginFailed(f"login did not reach {redirect_uri} within {MAX_HOPS} hops; trail {trail}")
