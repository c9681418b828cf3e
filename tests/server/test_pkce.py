"""PKCE S256 (RFC 7636), with the RFC's appendix B test vector."""

from __future__ import annotations

from tokensmith.server.core.pkce import is_valid_challenge, is_valid_verifier, s256_challenge, verifier_matches

RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_appendix_b() -> None:
    assert s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE
    assert verifier_matches(RFC_VERIFIER, RFC_CHALLENGE)
    assert not verifier_matches(RFC_VERIFIER[:-1] + "l", RFC_CHALLENGE)


def test_shapes() -> None:
    assert is_valid_verifier("a" * 43)
    assert is_valid_verifier("a" * 128)
    assert not is_valid_verifier("a" * 42)
    assert not is_valid_verifier("a" * 129)
    assert not is_valid_verifier("a" * 42 + "+")
    assert is_valid_challenge(RFC_CHALLENGE)
    assert not is_valid_challenge(RFC_CHALLENGE + "=")
    assert not verifier_matches("short", s256_challenge("short"))
