"""tokensmith.jose keys: spec vectors, signing as joserfc does, and the algorithm and key-type rules."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from tokensmith import jose

RFC7515_A3_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
RFC7515_A3 = (
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)
# RFC 8037 A.4: Ed25519 over a payload that is not JSON (so built by hand, not parsed).
RFC8037_A4_KEY = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_A4 = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
CLAIMS = {"iss": "https://as.example", "sub": "alice", "name": "Zoë", "aud": ["a", "b"], "exp": 1_800_000_000}
EC = ECKey.generate_key("P-256", parameters={"kid": "ec"}, private=True)
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa"}, private=True)
OKP = OKPKey.generate_key("Ed25519", parameters={"kid": "okp"}, private=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def flip_last_signature_byte(token: str) -> str:
    signing_input, signature = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(signature + "==")
    return f"{signing_input}.{b64(raw[:-1] + bytes([raw[-1] ^ 1]))}"


def test_rfc7515_es256_vector_verifies_and_a_flipped_bit_does_not() -> None:
    key = jose.Key(ECKey.import_key(RFC7515_A3_KEY), ["ES256"])
    jose.verify(jose.parse(RFC7515_A3), [key])
    with pytest.raises(jose.BadSignature):
        jose.verify(jose.parse(flip_last_signature_byte(RFC7515_A3)), [key])


def test_rfc8037_ed25519_vector_verifies() -> None:
    key = jose.Key(OKPKey.import_key(RFC8037_A4_KEY), ["EdDSA"])
    header, payload, signature = RFC8037_A4.split(".")
    vector = jose.CompactJWS(
        header={"alg": "EdDSA"},
        claims={},
        signing_input=f"{header}.{payload}".encode(),
        signature=base64.urlsafe_b64decode(signature + "=="),
    )
    assert key.verifies(vector)
    # A public key cannot sign.
    with pytest.raises(ValueError, match="cannot sign"):
        jose.Key(OKPKey.import_key({k: v for k, v in RFC8037_A4_KEY.items() if k != "d"}), ["EdDSA"]).sign(
            CLAIMS, alg="EdDSA"
        )


@pytest.mark.parametrize(("jwk", "alg"), [(EC, "ES256"), (RSA, "RS256"), (RSA, "PS256"), (OKP, "EdDSA")])
def test_signed_tokens_verify_both_ways_with_joserfc(jwk: Any, alg: str) -> None:
    key = jose.Key(jwk, [alg])
    ours = key.sign(CLAIMS, alg=alg, typ="at+jwt")
    public = jwk.__class__.import_key(jwk.as_dict(private=False))
    decoded = jwt.decode(ours, public, algorithms=[alg])
    assert (decoded.header, decoded.claims) == ({"typ": "at+jwt", "alg": alg, "kid": jwk.kid}, CLAIMS)
    theirs = jwt.encode({"alg": alg, "kid": jwk.kid}, CLAIMS, jwk, algorithms=[alg])
    jose.verify(jose.parse(theirs), [jose.Key(public, [alg])])
    with pytest.raises(jose.BadSignature):
        jose.verify(jose.parse(flip_last_signature_byte(ours)), [jose.Key(public, [alg])])


def test_rs256_tokens_are_byte_for_byte_what_joserfc_makes() -> None:
    expected = jwt.encode({"alg": "RS256", "kid": "rsa"}, CLAIMS, RSA, algorithms=["RS256"])  # typ JWT first
    assert jose.Key(RSA, ["RS256"]).sign(CLAIMS, alg="RS256") == expected


def test_datetimes_become_numeric_dates() -> None:
    exp = datetime(2027, 1, 1, tzinfo=UTC)
    token = jose.Key(EC, ["ES256"]).sign({"exp": exp}, alg="ES256")
    assert jose.parse(token).claims == {"exp": int(exp.timestamp())}


@pytest.mark.parametrize("algorithms", [["none"], ["HS256"], ["RS256", "HS512"], []])
def test_only_asymmetric_algorithms_can_be_allowed(algorithms: list[str]) -> None:
    with pytest.raises(ValueError, match="not accepted"):
        jose.check_algorithms(algorithms)
    with pytest.raises(ValueError, match="not accepted"):
        jose.Key(EC, algorithms)


def test_a_key_serves_only_the_algorithms_it_suits() -> None:
    assert jose.Key(EC, ["ES256", "ES384", "RS256", "EdDSA"]).algorithms == {"ES256"}
    p384 = ECKey.generate_key("P-384", private=False)
    assert jose.Key(p384, ["ES256"]).algorithms == frozenset()  # the curve decides
    pinned = RSAKey.import_key({**RSA.as_dict(private=False), "alg": "PS256"})
    assert jose.Key(pinned, ["RS256", "PS256"]).algorithms == {"PS256"}  # the key's own `alg`
    for_encryption = RSAKey.import_key({**RSA.as_dict(private=False), "use": "enc"})
    assert jose.Key(for_encryption, ["RS256"]).algorithms == frozenset()


def test_alg_confusion_hs256_keyed_with_the_public_key_is_refused() -> None:
    public = RSA.as_dict(private=False)
    forged = jwt.encode({"alg": "HS256", "kid": "rsa"}, CLAIMS, OctKey.import_key(json.dumps(public).encode()))
    keys = jose.KeySet.from_jwks({"keys": [public]}, ["RS256"], source="test")
    with pytest.raises(jose.UnacceptableJWT, match="'HS256' is not accepted"):
        keys.keys_for(jose.parse(forged))
    # Its own signature check refuses it too, should a caller skip the allow-list.
    assert not jose.Key(RSAKey.import_key(public), ["RS256"]).verifies(jose.parse(forged))


def test_alg_none_is_refused() -> None:
    header = b64(json.dumps({"alg": "none", "kid": "ec"}).encode())
    unsigned = f"{header}.{b64(json.dumps(CLAIMS).encode())}."
    keys = jose.KeySet([jose.Key(EC, ["ES256"])], ["ES256"])
    with pytest.raises(jose.UnacceptableJWT, match="'none' is not accepted"):
        keys.keys_for(jose.parse(unsigned))


def test_a_jwk_set_keeps_only_usable_public_keys(caplog: pytest.LogCaptureFixture) -> None:
    jwks = {
        "keys": [
            EC.as_dict(private=True),  # its private members are dropped
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},  # never used
            {"kty": "RSA", "kid": "junk", "n": "!"},  # unreadable: skipped, with a warning
            {**RSA.as_dict(private=False), "use": "enc"},  # not for signatures
            OKP.as_dict(private=False),
            "not a key",
        ]
    }
    keys = jose.KeySet.from_jwks(jwks, ["ES256", "RS256", "EdDSA"], source="https://issuer.example")
    assert keys.kids == {"ec", "okp"}
    assert "skipping an unreadable key (kid 'junk') in the JWK Set of https://issuer.example" in caplog.text
    (ec,) = keys.find("ec", "ES256")
    assert not ec.jwk.is_private
    assert ec.public_jwk() == EC.as_dict(private=False)
    with pytest.raises(ValueError, match="not a JWK Set"):
        jose.KeySet.from_jwks({"keys": "none"}, ["ES256"], source="x")


def test_keys_are_found_by_kid_and_alg() -> None:
    unnamed = ECKey.generate_key("P-256", private=True)
    keys = jose.KeySet(
        [jose.Key(EC, ["ES256", "RS256"]), jose.Key(RSA, ["RS256"]), jose.Key(unnamed, ["ES256"])], ["ES256", "RS256"]
    )
    assert [k.kid for k in keys.find("ec", "ES256")] == ["ec"]
    assert keys.find("ec", "RS256") == []  # that kid has no RSA key: no algorithm confusion
    assert keys.find("nope", "ES256") == []
    assert len(keys.find(None, "ES256")) == 2  # without a kid, every key of the algorithm is tried
    token = jose.parse(jose.Key(RSA, ["RS256"]).sign(CLAIMS, alg="RS256"))
    assert [k.kid for k in keys.keys_for(token)] == ["rsa"]
    stranger = ECKey.generate_key("P-256", parameters={"kid": "stranger"}, private=True)
    with pytest.raises(jose.UnknownKey):
        keys.keys_for(jose.parse(jose.Key(stranger, ["ES256"]).sign(CLAIMS, alg="ES256")))


def test_time_claims() -> None:
    now = 1_000_000.0
    assert jose.check_times({"exp": now + 10}, now=now, leeway=0) == now + 10
    assert jose.check_times({"exp": now - 29, "nbf": now + 29, "iat": now + 29}, now=now, leeway=30) == now - 29
    for claims, message in [
        ({}, "has no 'exp' claim"),
        ({"exp": now - 30}, "has expired"),
        ({"exp": "tomorrow"}, "'exp': it must be a number"),
        ({"exp": True}, "'exp': it must be a number"),
        ({"exp": now + 60, "nbf": now + 31}, "not valid yet"),
        ({"exp": now + 60, "iat": now + 31}, "issued in the future"),
    ]:
        with pytest.raises(jose.InvalidClaims, match=message):
            jose.check_times(claims, now=now, leeway=30)
