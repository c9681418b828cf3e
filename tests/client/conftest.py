from __future__ import annotations

from tests.support.fake_issuer_fixtures import clock, issuer, issuer_host

__all__ = ["clock", "issuer", "issuer_host"]
