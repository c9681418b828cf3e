"""tokensmith.jose_fast on its own: as strict as joserfc in decoding, parsing, headers, algorithms and keys."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import random
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.util import urlsafe_b64decode

from tokensmith import jose_fast
from tokensmith.jose_fast import MalformedJWT, UnacceptableJWT

EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec"}, private=True)
CLAIMS = {"iss": "https://as.example", "sub": "alice"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def joserfc_decodes(segment: bytes) -> bytes | None:
    try:
        return urlsafe_b64decode(segment)
    except (ValueError, TypeError, binascii.Error):
        return None


def fast_decodes(segment: bytes) -> bytes | None:
    try:
        return jose_fast.b64url_decode(segment)
    except ValueError:
        return None


def test_base64url_decoding_accepts_and_refuses_exactly_what_joserfc_does() -> None:
    alphabet = b"AQgwBCz09-_+/=. \n\x00\xff"
    # Every string of up to 4 characters over an alphabet with each kind of trouble, and random longer ones.
    cases = [bytes(c) for n in range(5) for c in itertools.product(alphabet, repeat=n)]
    rng = random.Random(7)
    cases += [bytes(rng.choice(alphabet) for _ in range(rng.randint(5, 12))) for _ in range(20_000)]
    cases += [base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=") for n in range(70)]
    mismatches = [c for c in cases if fast_decodes(c) != joserfc_decodes(c)]
    assert mismatches == []
    assert sum(fast_decodes(c) is not None for c in cases) > 100  # the comparison covered accepted inputs too


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("a.b", "expected three base64url parts"),
        ("a.b.c.d", "expected three base64url parts"),
        ("a.b.c.d.e", r"encrypted JWT \(JWE\)"),
        (".e30.c2ln", "expected three base64url parts"),
        ("e30..c2ln", "expected three base64url parts"),
        ("é.e30.c2ln", "not ASCII"),
        (f"{b64url(b'[1]')}.e30.c2ln", "header is not a JSON object"),
        (f"e30.{b64url(b'null')}.c2ln", "payload is not a JSON object"),
        ("e30=.e30.c2ln", "header is not base64url-encoded JSON"),
        (f"{b64url(b'{')}.e30.c2ln", "header is not base64url-encoded JSON"),
        (f"{b64url(b'{}')}.{b64url(b'[' * 5000 + b']' * 5000)}.c2ln", "payload is not base64url-encoded JSON"),
        (f"{b64url('{}'.encode('utf-16'))}.e30.c2ln", "header is not base64url-encoded JSON"),
        ("e30.e30.c2ln=", "signature is not base64url-encoded"),
        ("e30.e30." + "A" * 1025, "signature is too large"),
        (b64url(b"{" + b" " * 600 + b"}") + ".e30.c2ln", "header is too large"),
    ],
)
def test_malformed_tokens_are_refused_with_the_reason(token: str, message: str) -> None:
    with pytest.raises(MalformedJWT, match=message):
        jose_fast.parse(token)


def test_parse_can_defer_the_payload_until_after_verification() -> None:
    token = jwt.encode({"alg": "ES256"}, CLAIMS, EC_KEY, algorithms=["ES256"])
    deferred = jose_fast.parse(token, claims=False)
    assert deferred.claims is None
    assert jose_fast.payload_claims(deferred) == CLAIMS == jose_fast.parse(token).claims
    assert deferred.signing_input == token.rsplit(".", 1)[0].encode()


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "XX999", ""])
def test_only_asymmetric_algorithms_are_ever_used(alg: str) -> None:
    with pytest.raises(UnacceptableJWT, match="not accepted"):
        jose_fast.algorithm(alg)
    with pytest.raises(UnacceptableJWT):
        jose_fast.sign(b"e30", CLAIMS, alg, EC_KEY)


def test_hs256_with_the_public_key_as_secret_never_verifies() -> None:
    secret = OctKey.import_key(json.dumps(EC_KEY.as_dict(private=False)).encode())
    token = jose_fast.parse(jwt.encode({"alg": "HS256"}, CLAIMS, secret, algorithms=["HS256"]))
    with pytest.raises(UnacceptableJWT):
        jose_fast.verify_signature(token, "HS256", EC_KEY)
    with pytest.raises(UnacceptableJWT, match="is not 'ES256'"):  # the caller's alg must be the token's
        jose_fast.verify_signature(token, "ES256", EC_KEY)


@pytest.mark.parametrize(
    "key",
    [
        ECKey.generate_key("P-384", parameters={"kid": "ec"}, private=True),  # ES256 needs P-256
        ECKey.generate_key("P-256", parameters={"kid": "ec", "use": "enc"}, private=True),
        ECKey.generate_key("P-256", parameters={"kid": "ec", "alg": "ES384"}, private=True),
        RSAKey.generate_key(2048, parameters={"kid": "ec"}, private=True),
    ],
)
def test_a_key_joserfc_would_not_use_for_the_algorithm_is_refused(key: ECKey | RSAKey) -> None:
    token = jose_fast.parse(jwt.encode({"alg": "ES256"}, CLAIMS, EC_KEY, algorithms=["ES256"]))
    with pytest.raises(UnacceptableJWT, match="key does not suit ES256"):
        jose_fast.verify_signature(token, "ES256", key)
    assert jose_fast.verify_signature(token, "ES256", EC_KEY)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "ES256", "crit": ["kid"], "kid": "a"},
        {"alg": "ES256", "b64": True},
        {"alg": "ES256", "unknown": 1},
        {"alg": "ES256", "kid": 7},
        {"alg": "ES256", "x5c": "not-a-list"},
        {"kid": "a"},
    ],
)
def test_headers_are_checked_like_joserfc_plus_no_crit_or_b64(header: dict[str, Any]) -> None:
    with pytest.raises(UnacceptableJWT):
        jose_fast.check_header(header)


def test_sign_writes_the_token_joserfc_writes() -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "r"}, private=True)
    header = {"typ": "at+jwt", "alg": "RS256", "kid": "r"}
    claims = {**CLAIMS, "name": "Zoë 🙂", "n": 1.5, "list": [1, None, True]}
    ours = jose_fast.sign(jose_fast.encode_header(header), claims, "RS256", rsa)
    assert ours == jwt.encode(header, claims, rsa, algorithms=["RS256"])
    with pytest.raises(UnacceptableJWT):
        jose_fast.encode_header({"alg": "RS256", "crit": ["kid"], "kid": "r"})
