"""The client app's HTML pages. Every value from elsewhere goes through :func:`html.escape`."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from tokensmith.demo.token_view import TokenView

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
header{background:#1d2330;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between;align-items:center}
header a,header button{color:#fff}
.card{background:#fff;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.tokens{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
pre{background:#f0f2f5;padding:.75rem;border-radius:6px;overflow-x:auto;font-size:.85rem}
.changed{color:#8a4b00}
.error{border-left:4px solid #c62828}
button.link{background:none;border:none;padding:0;font:inherit;text-decoration:underline;cursor:pointer}
nav a{margin-right:1rem}
"""


def _page(title: str, body: str, *, csrf_token: str | None = None) -> str:
    logout = ""
    if csrf_token is not None:
        logout = (
            '<form method="post" action="/logout">'
            f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
            '<button class="link" id="logout" type="submit">Log out</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><strong>tokensmith demo: client app</strong>{logout}</header><main>{body}</main></body></html>"
    )


def _json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, sort_keys=True))


def home_page(id_claims: dict[str, Any], csrf_token: str, *, dpop: bool = False) -> str:
    body = (
        '<div class="card"><h1>Logged in</h1>'
        f'<p>Subject: <strong id="subject">{escape(str(id_claims.get("sub", "")))}</strong></p>'
        f'<p>Authorized party (azp): <strong id="azp">{escape(str(id_claims.get("azp", "")))}</strong></p>'
        "</div>"
        '<div class="card"><nav>'
        '<a id="message-link" href="/api/user/message">/api/user/message</a>'
        '<a id="delegation-link" href="/api/user/message?mode=delegation">'
        "/api/user/message?mode=delegation</a>"
        '<a id="transaction-token-link" href="/api/user/message?mode=transaction-token">'
        "/api/user/message?mode=transaction-token</a></nav>"
        "<p>The first link is the article's flow: user-service exchanges your token for one aimed at "
        "message-service (impersonation). The second adds user-service's own token as the actor, so the "
        "exchanged token carries an <code>act</code> claim (delegation). The third makes user-service the edge "
        "of a trust domain: it turns your token into a Transaction Token, which message-service checks in the "
        "<code>Txn-Token</code> header.</p>"
    )
    if dpop:
        body += (
            '<p id="dpop">DPoP (RFC 9449): your token is bound to this app\'s key, and the exchanged token to '
            "user-service's key; each call carries a proof by the key its token is bound to.</p>"
        )
    body += "</div>"
    return _page("Token Exchange Client", body, csrf_token=csrf_token)


def _token_card(element_id: str, title: str, view: TokenView, changed: set[str]) -> str:
    changed_list = ", ".join(sorted(changed & set(view.claims))) or "none"
    binding = ""
    if "cnf" in view.claims:  # a DPoP-bound token (RFC 9449 6.1): the thumbprint of the key it is bound to
        binding = f'<p>Bound to a DPoP key (<code>cnf</code>): <code class="cnf">{_json(view.claims["cnf"])}</code></p>'
    return (
        f'<section class="card" id="{element_id}"><h2>{escape(title)}</h2>'
        f'<p>Expires: <span class="expiry">{escape(view.expiry_text())}</span></p>{binding}'
        f'<p class="changed">Claims that differ: {escape(changed_list)}</p>'
        f'<h3>Header</h3><pre class="header">{_json(view.header)}</pre>'
        f'<h3>Claims</h3><pre class="claims">{_json(view.claims)}</pre></section>'
    )


def message_page(
    message: str,
    original: TokenView,
    exchanged: TokenView | None,
    mode: str,
    csrf_token: str,
    *,
    dpop: bool = False,
) -> str:
    # The article's page first, word for word (HtmlUtils.htmlEscape there, html.escape here).
    body = (
        '<div class="card" id="article">'
        "<p>Token Exchange Client!</p><br/>"
        f'<p>The resource server: <strong id="message">{escape(message)}</strong></p></div>'
        f'<p>Mode: <strong id="mode">{escape(mode)}</strong>'
        + (' &middot; <strong id="dpop">DPoP-bound</strong>' if dpop else "")
        + ' &middot; <a href="/">back</a></p>'
    )
    if exchanged is not None:
        keys = set(original.claims) | set(exchanged.claims)
        changed = {k for k in keys if original.claims.get(k) != exchanged.claims.get(k)}
        body += (
            '<div class="tokens">'
            + _token_card("original-token", "Your token (sent to user-service)", original, changed)
            + _token_card("exchanged-token", "Exchanged token (user-service -> message-service)", exchanged, changed)
            + "</div>"
        )
    return _page("Token Exchange", body, csrf_token=csrf_token)


def error_page(status: int, title: str, detail: str, *, logged_in: bool = False) -> str:
    body = (
        f'<div class="card error" id="error"><h1>{status} {escape(title)}</h1>'
        f'<p id="error-detail">{escape(detail)}</p>'
        f'<p><a href="/">{"Back" if logged_in else "Log in again"}</a></p></div>'
    )
    return _page(title, body)


def logged_out_page() -> str:
    body = '<div class="card" id="logged-out"><h1>You are logged out</h1><p><a href="/">Log in again</a></p></div>'
    return _page("Logged out", body)
