"""A client's DPoP key (RFC 9449): it signs the proof of each token request and of each call with a bound token.

:class:`DPoPKey` holds a private key (a new ES256 key by default) and the last nonce each server handed out
(``DPoP-Nonce``), so the next proof to that server carries it. A token request or call refused with
``use_dpop_nonce`` is retried once with the new nonce (``client/grant.py``, ``client/auth.py``).
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import httpx
from joserfc.jwk import ECKey

from tokensmith import jose

NONCE_HEADER = "DPoP-Nonce"
USE_DPOP_NONCE = "use_dpop_nonce"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class DPoPKey:
    """The key tokens are bound to. ``key``: a private joserfc key (default: a new P-256 key, ``alg`` ES256)."""

    def __init__(self, key: jose.AsymmetricKey | None = None, *, alg: str = "ES256") -> None:
        self.key: jose.AsymmetricKey = key if key is not None else ECKey.generate_key("P-256")
        if not self.key.is_private:
            raise ValueError("a DPoP key must be a private key")
        if not jose.Key(self.key, (alg,)).algorithms:
            raise ValueError(f"the DPoP key cannot sign {alg}")
        self.alg = alg
        self.jkt = jose.jwk_thumbprint(self.key)
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    def proof(self, method: str, url: str | httpx.URL, *, access_token: str | None = None) -> str:
        """A proof for a request of ``method`` to ``url`` (with ``ath`` for ``access_token``), carrying the nonce
        last seen from that server."""
        url = str(url)
        with self._lock:
            nonce = self._nonces.get(_origin(url))
        return jose.sign_proof(self.key, alg=self.alg, method=method, uri=url, access_token=access_token, nonce=nonce)

    def remember_nonce(self, response: httpx.Response) -> bool:
        """Keep the ``DPoP-Nonce`` of ``response`` for its server; whether it brought a new one."""
        nonce = response.headers.get(NONCE_HEADER)
        if not nonce:
            return False
        origin = _origin(str(response.request.url))
        with self._lock:
            new: bool = self._nonces.get(origin) != nonce
            self._nonces[origin] = nonce
        return new


def asks_for_nonce(response: httpx.Response) -> bool:
    """Whether ``response`` refuses a proof for lacking the server's nonce: a token endpoint's 400
    ``use_dpop_nonce`` (RFC 9449 8) or a resource server's 401 challenge with it (RFC 9449 9)."""
    if NONCE_HEADER.lower() not in response.headers:
        return False
    if response.status_code == 401:
        return USE_DPOP_NONCE in response.headers.get("www-authenticate", "")
    if response.status_code == 400:
        try:
            body = response.json()
        except ValueError:
            return False
        return bool(isinstance(body, dict) and body.get("error") == USE_DPOP_NONCE)
    return False
