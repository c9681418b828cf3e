"""tokensmith.jose_fast on its own: as strict as joserfc in decoding, parsing, headers, algorithms and keys."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import gc
import itertools
import json
import random
import weakref
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.util import urlsafe_b64decode

from tokensmith import jose_fast
from tokensmith.jose_fast import MalformedJWT, UnacceptableJWT

EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec"}, private=True)
RS_KEY = RSAKey.generate_key(2048, parameters={"kid": "rs"}, private=True)
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


# Headers joserfc refuses, plus `crit` and `b64`, which jose_fast refuses outright.
REFUSED_HEADERS: list[dict[str, Any]] = [
    {"alg": "ES256", "crit": ["kid"], "kid": "a"},
    {"alg": "ES256", "b64": True},
    {"alg": "ES256", "unknown": 1},
    {"alg": "ES256", "kid": 7},
    {"alg": "ES256", "x5c": "not-a-list"},
    {"kid": "no-alg"},
]


@pytest.mark.parametrize("header", REFUSED_HEADERS)
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


def test_datetime_times_are_signed_as_numeric_dates_as_joserfc_signs_them() -> None:
    rsa = RSAKey.generate_key(2048, private=True)
    moment = datetime.datetime(2026, 11, 26, 20, 0, 5, tzinfo=datetime.UTC)
    claims = {"sub": "alice", "iat": moment, "exp": moment + datetime.timedelta(minutes=5), "nbf": 7}
    header = {"typ": "JWT", "alg": "RS256"}
    ours = jose_fast.sign(jose_fast.encode_header(header), claims, "RS256", rsa)
    assert claims["iat"] is moment  # the caller's claims are left as they were
    payload = json.loads(urlsafe_b64decode(ours.split(".")[1].encode()))
    assert (payload["iat"], payload["exp"], payload["nbf"]) == (1795723205, 1795723505, 7)
    # A copy: joserfc converts the times in the mapping it is given.
    assert ours == jwt.encode(header, dict(claims), rsa, algorithms=["RS256"])


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_signatures_made_here_verify_with_joserfc_and_the_other_way_round(alg: str) -> None:
    # ES256 and RS256 are computed with cryptography directly (not joserfc's algorithm objects): same encodings.
    key = EC_KEY if alg == "ES256" else RS_KEY
    ours = jose_fast.sign(jose_fast.encode_header({"alg": alg, "kid": "k"}), CLAIMS, alg, key)
    assert jwt.decode(ours, key, algorithms=[alg]).claims == CLAIMS
    theirs = jose_fast.parse(jwt.encode({"alg": alg, "kid": "k"}, CLAIMS, key, algorithms=[alg]))
    assert jose_fast.verify_signature(theirs, alg, key)
    # The public half alone verifies too (how tokens of other issuers are checked).
    public = (ECKey if alg == "ES256" else RSAKey).import_key(key.as_dict(private=False))
    assert jose_fast.verify_signature(jose_fast.parse(ours), alg, public)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_changed_signature_or_signing_input_does_not_verify(alg: str) -> None:
    key = EC_KEY if alg == "ES256" else RS_KEY
    token = jose_fast.parse(jose_fast.sign(jose_fast.encode_header({"alg": alg}), CLAIMS, alg, key))
    signature = token.signature
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    for changed in (flipped, signature[:-1], signature + b"\x00", b"", signature[::-1]):
        assert not jose_fast.verify_signature(dataclasses.replace(token, signature=changed), alg, key)
    other_input = token.signing_input[:-1] + (b"A" if token.signing_input[-1:] != b"A" else b"B")
    assert not jose_fast.verify_signature(dataclasses.replace(token, signing_input=other_input), alg, key)
    assert jose_fast.verify_signature(token, alg, key)


def test_es256_signatures_have_fixed_length_r_and_s() -> None:
    # RFC 7518 3.4: R and S are each 32 bytes, even when an integer is shorter (leading zeros are kept). One
    # signature in 128 has a short R or S: sign until one has (a miss in 20 000 tries has odds of ~1e-68).
    header = jose_fast.encode_header({"alg": "ES256"})
    short = None
    for n in range(20_000):
        token = jose_fast.parse(jose_fast.sign(header, {"n": n}, "ES256", EC_KEY))
        assert len(token.signature) == 64
        if token.signature[0] == 0 or token.signature[32] == 0:
            short = token
            break
    assert short is not None
    assert jose_fast.verify_signature(short, "ES256", EC_KEY)
    assert jwt.decode(f"{short.signing_input.decode()}.{b64url(short.signature)}", EC_KEY, algorithms=["ES256"])


def test_a_key_restricted_to_verifying_or_public_cannot_sign() -> None:
    verify_only = ECKey.import_key({**EC_KEY.as_dict(private=True), "key_ops": ["verify"]})
    public = ECKey.import_key(EC_KEY.as_dict(private=False))
    for key in (verify_only, public):
        with pytest.raises(UnacceptableJWT, match="key does not suit ES256"):
            jose_fast.sign(b"e30", CLAIMS, "ES256", key)
    token = jose_fast.parse(jose_fast.sign(b"eyJhbGciOiJFUzI1NiJ9", CLAIMS, "ES256", EC_KEY))
    assert jose_fast.verify_signature(token, "ES256", verify_only)


@pytest.mark.parametrize(("alg", "key"), [("ES384", "P-384"), ("PS256", "RSA"), ("Ed25519", "Ed25519")])
def test_other_asymmetric_algorithms_still_go_through_joserfc(alg: str, key: str) -> None:
    signing_key: Any
    if key == "RSA":
        signing_key = RS_KEY
    elif key == "Ed25519":
        signing_key = OKPKey.generate_key("Ed25519", private=True)
    else:
        signing_key = ECKey.generate_key(key, private=True)
    ours = jose_fast.sign(jose_fast.encode_header({"alg": alg}), CLAIMS, alg, signing_key)
    assert jwt.decode(ours, signing_key, algorithms=[alg]).claims == CLAIMS
    theirs = jose_fast.parse(jwt.encode({"alg": alg}, CLAIMS, signing_key, algorithms=[alg]))
    assert jose_fast.verify_signature(theirs, alg, signing_key)


# --- The caches (decoded headers per segment, joserfc's check_key per key): bounded, exact, never stale. ---


def plain_token(header: dict[str, Any]) -> str:
    return jwt.encode(header, CLAIMS, EC_KEY, algorithms=["ES256"])


def test_a_cached_header_is_read_only_and_the_next_parse_of_its_segment_is_unchanged() -> None:
    token = plain_token({"alg": "ES256", "kid": "ro-test"})
    first = jose_fast.parse(token)
    with pytest.raises(TypeError):
        first.header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(AttributeError):
        first.header.pop("kid")  # type: ignore[attr-defined]
    second = jose_fast.parse(token)
    assert second.header is first.header  # served from the cache...
    assert dict(second.header) == {"typ": "JWT", "alg": "ES256", "kid": "ro-test"}  # ...and intact
    assert jose_fast.verify_signature(second, "ES256", EC_KEY)


@pytest.mark.parametrize("header", REFUSED_HEADERS)
def test_a_header_outside_the_plain_case_is_never_cached_and_refused_every_time(header: dict[str, Any]) -> None:
    segment = b64url(json.dumps(header).encode())
    token = f"{segment}.{b64url(json.dumps(CLAIMS).encode())}.c2ln"
    for _ in range(3):
        parsed = jose_fast.parse(token)
        assert isinstance(parsed.header, dict)  # a fresh dict of its own, not shared
        assert segment.encode() not in jose_fast._header_cache
        with pytest.raises(UnacceptableJWT):
            jose_fast.verify_signature(parsed, "ES256", EC_KEY)
    # Changing one parse's header changes nothing for the next.
    parsed.header["alg"] = "changed"  # type: ignore[index]
    assert jose_fast.parse(token).header == header


def test_an_acceptable_header_with_nested_values_is_not_shared_between_tokens() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "nested"}, private=True)
    header = {"alg": "ES256", "x5c": ["AAAA"]}
    token = jwt.encode(header, CLAIMS, key, algorithms=["ES256"])
    first = jose_fast.parse(token)
    assert jose_fast.verify_signature(first, "ES256", key)
    first.header["x5c"].append("BBBB")  # the caller owns this parse's header, nested list included
    assert jose_fast.parse(token).header["x5c"] == ["AAAA"]
    assert token.split(".")[0].encode() not in jose_fast._header_cache


def test_a_cache_hit_needs_the_exact_segment_other_spellings_are_still_refused() -> None:
    text = b'{"alg":"ES256","kid":"exact"}'
    header = b64url(text)
    payload = b64url(json.dumps(CLAIMS).encode())
    jose_fast.parse(f"{header}.{payload}.c2ln")
    assert header.encode() in jose_fast._header_cache

    def lenient(segment: str) -> bytes:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))

    # The same JSON spelled with non-zero trailing bits, or padded, is refused as before the cache.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sloppy = [header[:-1] + c for c in alphabet if header[:-1] + c != header and lenient(header[:-1] + c) == text]
    assert sloppy  # the segment's last character carries spare bits, so such variants exist
    for variant in [*sloppy, header + "=", header + "=="]:
        assert lenient(variant.rstrip("=")) == text
        with pytest.raises(MalformedJWT, match="header is not base64url-encoded JSON"):
            jose_fast.parse(f"{variant}.{payload}.c2ln")


def test_the_header_cache_is_bounded_and_its_verdicts_follow_it() -> None:
    tokens = [plain_token({"alg": "ES256", "kid": f"flood-{n}"}) for n in range(jose_fast._HEADER_CACHE_SIZE + 50)]
    first = jose_fast.parse(tokens[0])
    for token in tokens[1:]:
        jose_fast.parse(token)
    assert len(jose_fast._header_cache) == jose_fast._HEADER_CACHE_SIZE
    assert {id(h) for h in jose_fast._header_cache.values()} == set(jose_fast._checked_headers)
    # The evicted header is no longer vouched for by identity, yet a token still holding it verifies the long way.
    assert id(first.header) not in jose_fast._checked_headers
    assert jose_fast.verify_signature(first, "ES256", EC_KEY)


def test_check_header_vouches_only_for_the_cached_object_not_for_an_equal_mapping() -> None:
    cached = jose_fast.parse(plain_token({"alg": "ES256", "kid": "same"})).header
    lookalike = dict(cached)
    assert lookalike == cached
    assert id(lookalike) not in jose_fast._checked_headers
    lookalike["crit"] = ["kid"]  # an equal mapping changed afterwards goes through the whole check
    with pytest.raises(UnacceptableJWT, match="crit"):
        jose_fast.check_header(lookalike)
    jose_fast.check_header(cached)


def test_a_key_changed_after_its_check_is_checked_again() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "mutable"}, private=True)
    token = jose_fast.parse(jwt.encode({"alg": "ES256"}, CLAIMS, key, algorithms=["ES256"]))
    assert jose_fast.verify_signature(token, "ES256", key)  # the check passed and is remembered
    jose_fast.sign(b"e30", CLAIMS, "ES256", key)
    for name, value in [("use", "enc"), ("alg", "ES384"), ("key_ops", ["encrypt"])]:
        key.dict_value[name] = value
        with pytest.raises(UnacceptableJWT, match="key does not suit ES256"):
            jose_fast.verify_signature(token, "ES256", key)
        with pytest.raises(UnacceptableJWT, match="key does not suit ES256"):
            jose_fast.sign(b"e30", CLAIMS, "ES256", key)
        del key.dict_value[name]
    assert jose_fast.verify_signature(token, "ES256", key)


def test_a_key_check_is_per_algorithm() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "per-alg"}, private=True)
    jose_fast.sign(b"e30", CLAIMS, "ES256", key)
    with pytest.raises(UnacceptableJWT):  # a P-256 key remembered for ES256 is still no ES384 key
        jose_fast.sign(b"e30", CLAIMS, "ES384", key)
    assert ("ES384", id(key), "sign") not in jose_fast._key_checks  # a refusal is never remembered


def test_the_key_check_cache_is_bounded_and_keeps_no_key_alive() -> None:
    keys = [ECKey.generate_key("P-256", private=True) for _ in range(jose_fast._KEY_CHECKS_SIZE + 10)]
    for key in keys:
        jose_fast.sign(b"e30", CLAIMS, "ES256", key)
        assert len(jose_fast._key_checks) <= jose_fast._KEY_CHECKS_SIZE
    ref = weakref.ref(keys[-1])
    slot = ("ES256", id(keys[-1]), "sign")
    del keys, key
    gc.collect()
    assert ref() is None  # the cache held only a weak reference
    # A dead entry can never match whatever object takes the id next.
    assert jose_fast._key_checks[slot][0]() is None
