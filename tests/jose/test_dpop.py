"""DPoP proof checks (RFC 9449 4.3): every way a hostile or careless proof is refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.util import json_b64encode, urlsafe_b64encode

from tokensmith import jose
from tokensmith.jose.dpop import MAX_PROOF_LENGTH

URI = "https://as.example.com/oauth2/token"
ALGS = ("ES256", "RS256", "PS256", "EdDSA")
EC = ECKey.generate_key("P-256")


def check(proof: str, **overrides: Any) -> jose.DPoPProof:
    args: dict[str, Any] = {
        "method": "POST",
        "uri": URI,
        "algorithms": ALGS,
        "now": time.time(),
        "max_age": 60,
        "clock_skew": 5,
    }
    args.update(overrides)
    return jose.check_proof(proof, **args)


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"x") -> str:
    return (json_b64encode(header) + b"." + json_b64encode(claims) + b"." + urlsafe_b64encode(signature)).decode()


def claims(**extra: Any) -> dict[str, Any]:
    return {"jti": "j1", "htm": "POST", "htu": URI, "iat": int(time.time()), **extra}


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (EC, "ES256"),
        (RSAKey.generate_key(2048), "RS256"),
        (RSAKey.generate_key(2048), "PS256"),
        (OKPKey.generate_key("Ed25519"), "EdDSA"),
    ],
)
def test_a_good_proof_gives_the_keys_thumbprint(key: Any, alg: str) -> None:
    proof = jose.sign_proof(key, alg=alg, method="POST", uri=URI)
    checked = check(proof)
    assert checked.jkt == key.thumbprint()
    assert checked.jkt == jose.jwk_thumbprint(type(key).import_key(key.as_dict(private=False)))


def test_htu_is_compared_normalised() -> None:
    proof = jose.sign_proof(EC, alg="ES256", method="POST", uri="HTTPS://AS.Example.com:443/oauth2/token?x=1#f")
    check(proof)
    assert jose.normalize_htu("http://H:80") == "http://h/"
    assert jose.normalize_htu("http://h:8080/a?b#c") == "http://h:8080/a"


def test_private_jwk_is_refused() -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(EC.as_dict(private=True))}
    with pytest.raises(jose.InvalidDPoPProof, match="private key members"):
        check(unsigned(header, claims()))


@pytest.mark.parametrize("alg", ["none", "HS256", "ES512"])
def test_algorithms_off_the_list_are_refused(alg: str) -> None:
    jwk: dict[str, Any] = dict(EC.as_dict(private=False))
    if alg == "HS256":
        jwk = dict(OctKey.generate_key(256).as_dict(private=False))
    proof = unsigned({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}, claims(), b"" if alg == "none" else b"sig")
    with pytest.raises(jose.InvalidDPoPProof):
        check(proof)


def test_symmetric_jwk_is_refused_even_under_an_asymmetric_alg() -> None:
    # Written out: what an oct key's public form holds differs between joserfc releases (with or without "k").
    jwk = {"kty": "oct", "k": "GawgguFyGrWKav7AX4VKUg"}
    with pytest.raises(jose.InvalidDPoPProof, match="private key members"):
        check(unsigned({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, claims()))


def test_wrong_typ_and_missing_jwk_are_refused() -> None:
    good = jose.sign_proof(EC, alg="ES256", method="POST", uri=URI)
    header = {"typ": "JWT", "alg": "ES256", "jwk": dict(EC.as_dict(private=False))}
    with pytest.raises(jose.InvalidDPoPProof, match="typ"):
        check(jose.Key(EC, ["ES256"]).sign_with_header(header, claims()))
    with pytest.raises(jose.InvalidDPoPProof, match="jwk"):
        check(jose.Key(EC, ["ES256"]).sign_with_header({"typ": "dpop+jwt", "alg": "ES256"}, claims()))
    assert check(good).jkt == EC.thumbprint()


def test_a_signature_by_another_key_is_refused() -> None:
    other = ECKey.generate_key("P-256")
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(EC.as_dict(private=False))}
    with pytest.raises(jose.InvalidDPoPProof, match="signature"):
        check(jose.Key(other, ["ES256"]).sign_with_header(header, claims()))


def test_wrong_method_and_uri_are_refused() -> None:
    with pytest.raises(jose.InvalidDPoPProof, match="htm"):
        check(jose.sign_proof(EC, alg="ES256", method="GET", uri=URI))
    with pytest.raises(jose.InvalidDPoPProof, match="htu"):
        check(jose.sign_proof(EC, alg="ES256", method="POST", uri="https://as.example.com/oauth2/introspect"))
    with pytest.raises(jose.InvalidDPoPProof, match="htu"):
        check(jose.sign_proof(EC, alg="ES256", method="POST", uri="https://as.example.com:8443/oauth2/token"))


def test_stale_and_future_proofs_are_refused() -> None:
    now = int(time.time())
    with pytest.raises(jose.InvalidDPoPProof, match="too old"):
        check(jose.sign_proof(EC, alg="ES256", method="POST", uri=URI, iat=now - 61), now=now)
    with pytest.raises(jose.InvalidDPoPProof, match="future"):
        check(jose.sign_proof(EC, alg="ES256", method="POST", uri=URI, iat=now + 6), now=now)
    check(jose.sign_proof(EC, alg="ES256", method="POST", uri=URI, iat=now + 5), now=now)


def test_ath_must_match_the_access_token() -> None:
    proof = jose.sign_proof(EC, alg="ES256", method="GET", uri=URI, access_token="token-a")
    check(proof, method="GET", access_token="token-a")
    with pytest.raises(jose.InvalidDPoPProof, match="ath"):
        check(proof, method="GET", access_token="token-b")
    with pytest.raises(jose.InvalidDPoPProof, match="ath"):
        check(jose.sign_proof(EC, alg="ES256", method="GET", uri=URI), method="GET", access_token="token-a")


def test_oversized_and_malformed_proofs_are_refused() -> None:
    with pytest.raises(jose.InvalidDPoPProof, match="larger"):
        check("a" * (MAX_PROOF_LENGTH + 1))
    with pytest.raises(jose.InvalidDPoPProof, match="is not a JWT"):
        check("not-a-jwt")


def test_missing_jti_is_refused() -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(EC.as_dict(private=False))}
    body = claims()
    del body["jti"]
    with pytest.raises(jose.InvalidDPoPProof, match="jti"):
        check(jose.Key(EC, ["ES256"]).sign_with_header(header, body))
