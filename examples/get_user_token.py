"""Log in as baeldung through the authorization code flow with PKCE, over HTTP, and print the access token.

What the demo's client app does in a browser, for examples/authorization-server.yaml (client messaging-client-oidc).

Run: .venv/bin/python examples/get_user_token.py > user-token.txt
"""

import base64
import hashlib
import re
import secrets
import sys
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

ISSUER = "http://localhost:9001"
CLIENT_ID, CLIENT_SECRET = "messaging-client-oidc", "secret"
REDIRECT_URI = "http://localhost:8080/login/oauth2/code/messaging-client-oidc"
USERNAME, PASSWORD = "baeldung", "password"
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def main() -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with httpx.Client(base_url=ISSUER, timeout=10) as http:
        authorize = http.get(
            "/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid profile",
                "state": secrets.token_urlsafe(16),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        login_page = http.get(authorize.headers["location"])  # the login form, with its CSRF field
        fields = {name: unescape(value) for name, value in HIDDEN_FIELD.findall(login_page.text)}
        signed_in = http.post("/login", data={**fields, "username": USERNAME, "password": PASSWORD})
        if "location" not in signed_in.headers:
            sys.exit(f"login failed ({signed_in.status_code})")
        back = http.get(urljoin(ISSUER, signed_in.headers["location"]))  # redirects to REDIRECT_URI?code=...
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        tokens = http.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        tokens.raise_for_status()
        print(tokens.json()["access_token"])


if __name__ == "__main__":
    main()
