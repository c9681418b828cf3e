"""The OpenID Foundation test plans `make conformance` runs, and the configuration each one gets.

A plan configuration names the discovery URL, the static clients the server registers (tokensmith.yaml.in) and
the scripted browser steps: the suite's HtmlUnit browser signs in on tokensmith's login page, and for the
modules a person must judge (an error page, a sign-out page) it keeps the page it saw (the plan's REVIEW
"screenshot"), which `make conformance` saves under var/conformance/results/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALIAS = "tokensmith"
USERNAME = "conformance"
PASSWORD = "conformance-password"
# At least 32 bytes: the suite signs an HS256 `id_token_hint` with a client secret.
CLIENT_SECRETS = {
    "oidf-client": "oidf-client-secret-0123456789abcdef",
    "oidf-client2": "oidf-client2-secret-0123456789abcdef",
    "oidf-client-post": "oidf-client-post-secret-0123456789abcdef",
}

# The page texts tokensmith shows (server/templates, endpoints/authorize.py and logout.py).
INVALID_SIGN_IN = "This sign-in link is not valid"
SIGNED_OUT = "Signed out|Sign-out request not valid"

Command = list[Any]


@dataclass(frozen=True)
class Plan:
    name: str  # with its variants, as run-test-plan.py reads it
    title: str


PLANS = (
    Plan("oidcc-config-certification-test-plan", "oidcc-config-certification-test-plan"),
    Plan(
        "oidcc-basic-certification-test-plan[server_metadata=discovery][client_registration=static_client]",
        "oidcc-basic-certification-test-plan (discovery, static client)",
    ),
    Plan(
        "oidcc-rp-initiated-logout-certification-test-plan[response_type=code][client_registration=static_client]",
        "oidcc-rp-initiated-logout-certification-test-plan (code, static client)",
    ),
)


def _login(issuer: str, *, screenshot: bool = False) -> dict[str, Any]:
    commands: list[Command] = []
    if screenshot:
        # The second sign-in of prompt=login and max_age=1: the suite wants to see that a login page was shown.
        commands.append(["wait", "xpath", "//*", 10, "Sign in", "update-image-placeholder-optional"])
    commands += [
        ["text", "id", "username", USERNAME, "optional"],
        ["text", "id", "password", PASSWORD, "optional"],
        ["click", "css", "form[action='/login'] button[type='submit']"],
    ]
    return {"task": "Login", "optional": True, "match": f"{issuer}/login*", "commands": commands}


def _callback(suite: str) -> dict[str, Any]:
    # Anchored at the suite's own URL: a bare "*/test/*/callback*" also matches an authorization URL whose request
    # object carries a redirect URI such as ".../callback_invalid".
    return {
        "task": "Verify Complete",
        "match": f"{suite}/test/a/{ALIAS}/callback*",
        "commands": [["wait", "id", "submission_complete", 10]],
    }


def _authorize(issuer: str, suite: str, *, screenshot: bool = False) -> dict[str, Any]:
    return {
        "match": f"{issuer}/oauth2/authorize*",
        "tasks": [_login(issuer, screenshot=screenshot), _callback(suite)],
    }


def _error_page(issuer: str) -> dict[str, Any]:
    return {
        "comment": "tokensmith shows an error page instead of redirecting to an unregistered URI",
        "match": f"{issuer}/oauth2/authorize*",
        "tasks": [
            {
                "task": "Expect the error page",
                "match": f"{issuer}/oauth2/authorize*",
                "commands": [["wait", "xpath", "//*", 10, INVALID_SIGN_IN, "update-image-placeholder"]],
            }
        ],
    }


def _logout(issuer: str, suite: str, *, screenshot: bool) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [
        {
            "task": "Confirm sign-out",
            "optional": True,
            "match": f"{issuer}/connect/logout*",
            "commands": [["click", "css", "form[action='/connect/logout'] button[type='submit']", "optional"]],
        }
    ]
    if screenshot:
        tasks.append(
            {
                "task": "Expect the signed-out or error page",
                "match": f"{issuer}/connect/logout*",
                "commands": [["wait", "xpath", "//*", 10, SIGNED_OUT, "update-image-placeholder"]],
            }
        )
    else:
        tasks.append({"task": "Verify Complete", "match": f"{suite}/test/a/{ALIAS}/post_logout_redirect*"})
    return {"match": f"{issuer}/connect/logout*", "tasks": tasks}


# Modules whose result a person judges from the page the browser ended on.
_ERROR_PAGE_MODULES = (
    "oidcc-ensure-registered-redirect-uri",
    # Its redirect_uri parameter is not registered (the right one is in a request object, which tokensmith does
    # not support): the error page.
    "oidcc-ensure-request-object-with-redirect-uri",
    "oidcc-ensure-redirect-uri-in-authorization-request",
    "oidcc-redirect-uri-query-added",
    "oidcc-redirect-uri-query-mismatch",
)
_SECOND_LOGIN_MODULES = ("oidcc-prompt-login", "oidcc-max-age-1")
_LOGOUT_PAGE_MODULES = (
    "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-modified-id-token-hint",
    "oidcc-rp-initiated-logout-no-id-token-hint",
    "oidcc-rp-initiated-logout-no-params",
    "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-only-state",
    "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-bad-id-token-hint",
)


def plan_config(issuer: str, suite: str) -> dict[str, Any]:
    """The one configuration all three plans share (one alias: they run one after another)."""
    override: dict[str, Any] = {}
    for module in _ERROR_PAGE_MODULES:
        override[module] = {"browser": [_error_page(issuer)]}
    for module in _SECOND_LOGIN_MODULES:
        override[module] = {"browser": [_authorize(issuer, suite, screenshot=True)]}
    for module in _LOGOUT_PAGE_MODULES:
        override[module] = {
            "browser": [_authorize(issuer, suite), _logout(issuer, suite, screenshot=True)],
        }
    return {
        "alias": ALIAS,
        "description": "tokensmith (make conformance)",
        "server": {"discoveryUrl": f"{issuer}/.well-known/openid-configuration"},
        "client": {"client_id": "oidf-client", "client_secret": CLIENT_SECRETS["oidf-client"]},
        "client2": {"client_id": "oidf-client2", "client_secret": CLIENT_SECRETS["oidf-client2"]},
        "client_secret_post": {
            "client_id": "oidf-client-post",
            "client_secret": CLIENT_SECRETS["oidf-client-post"],
        },
        "browser": [_authorize(issuer, suite), _logout(issuer, suite, screenshot=False)],
        "override": override,
    }
