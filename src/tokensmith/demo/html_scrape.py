"""Just enough HTML reading for the headless check: the login form's fields, and elements of the demo's pages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any


@dataclass(slots=True)
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    # Names of the fields by their type, to find the username and password inputs whatever they are called.
    types: dict[str, str] = field(default_factory=dict)

    @property
    def password_field(self) -> str | None:
        return next((name for name, kind in self.types.items() if kind == "password"), None)

    @property
    def username_field(self) -> str | None:
        for name, kind in self.types.items():
            if kind in ("text", "email") or name == "username":
                return name
        return None


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(action=values.get("action", ""), method=values.get("method", "get").lower())
            self.forms.append(self._current)
        elif tag in ("input", "button") and self._current is not None and values.get("name"):
            kind = values.get("type", "text").lower()
            if tag == "button" or kind == "submit":
                return  # submit buttons are not sent unless clicked by name; the check does not need them
            self._current.fields[values["name"]] = values.get("value", "")
            self._current.types[values["name"]] = kind

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def all_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def login_form(html: str) -> Form | None:
    """The first form with a password input."""
    return next((form for form in all_forms(html) if form.password_field is not None), None)


def element_text(html: str, element_id: str) -> str | None:
    """The text of the demo page's element with ``id`` (no nested elements of the same tag inside)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip() if match else None


def token_claims(html: str, section_id: str) -> dict[str, Any] | None:
    """The claims JSON shown in the demo page's token section ``section_id``."""
    match = re.search(
        rf'<section[^>]*\bid="{re.escape(section_id)}"[^>]*>.*?<pre class="claims">(.*?)</pre>', html, re.DOTALL
    )
    if match is None:
        return None
    try:
        claims = json.loads(unescape(match.group(1)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None
