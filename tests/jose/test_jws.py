"""tokensmith.jose.parse: a compact JWS read once, and every malformed or refused shape a typed error."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc.jws import JWSRegistry

from tokensmith import jose

# RFC 7515 A.3: an ES256 JWS (its payload's JSON has CR LF whitespace in it).
RFC7515_A3 = (
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


ES256_HEADER = b64(b'{"alg":"ES256"}')
JSON_STRING = b64(b'"xalgx"')
NOT_UTF8 = b64(b"\xff\xfe")
NO_ALG = b64(b'{"typ":"JWT"}')


def token(header: Any, claims: Any = None, signature: bytes = b"\x01" * 64) -> str:
    claims = {"sub": "alice"} if claims is None else claims
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def test_a_jws_is_split_and_decoded_once() -> None:
    parsed = jose.parse(RFC7515_A3)
    assert parsed.header == {"alg": "ES256"}
    assert (parsed.alg, parsed.kid) == ("ES256", None)
    assert parsed.claims == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
    assert parsed.signing_input == RFC7515_A3.rsplit(".", 1)[0].encode()
    assert len(parsed.signature) == 64


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "..",
        "é.b.c",
        "a.b.c.d",
        f"{b64(b'[1]')}.e30.c2ln",  # a header that is not an object
        f"{JSON_STRING}.e30.c2ln",  # a JSON string that contains "alg"
        f"{ES256_HEADER}.{b64(b'[1]')}.c2ln",  # claims not an object
        f"{ES256_HEADER}.{NOT_UTF8}.c2ln",  # not UTF-8
        f"{ES256_HEADER}.{b64(b'[' * 5000 + b']' * 5000)}.c2ln",  # deep nesting
        f"{NO_ALG}.e30.c2ln",  # no alg
    ],
)
def test_malformed_tokens_are_malformed(value: str) -> None:
    with pytest.raises(jose.MalformedJWT):
        jose.parse(value)


def test_a_jwe_is_named_as_such() -> None:
    with pytest.raises(jose.MalformedJWT, match=r"is an encrypted JWT \(JWE\)"):
        jose.parse("e30.a.b.c.d")


@pytest.mark.parametrize("damage", ["=", "+", "/", " "])
def test_characters_outside_unpadded_base64url_are_refused(damage: str) -> None:
    header, payload, signature = RFC7515_A3.split(".")
    for value in (f"{header}{damage}.{payload}.{signature}", f"{header}.{payload}.{signature}{damage}"):
        with pytest.raises(jose.MalformedJWT):
            jose.parse(value)


def test_a_second_spelling_of_the_signature_is_refused() -> None:
    # 64 bytes take 86 characters whose last carries 4 unused bits: a spelling that differs only there decodes
    # to the same bytes, and is refused (a token has one spelling).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = RFC7515_A3[:-1] + alphabet[alphabet.index(RFC7515_A3[-1]) | 1]
    assert respelled != RFC7515_A3
    with pytest.raises(jose.MalformedJWT):
        jose.parse(respelled)


def test_sizes_are_bounded_before_anything_is_decoded() -> None:
    with pytest.raises(jose.MalformedJWT, match="too large"):
        jose.parse("x" * (jose.jws.MAX_TOKEN_LENGTH + 1))
    with pytest.raises(jose.MalformedJWT, match="too large"):
        jose.parse(token({"alg": "ES256", "typ": "x" * 600}))
    with pytest.raises(jose.MalformedJWT, match="too large"):
        jose.parse(token({"alg": "ES256"}, signature=b"\x01" * 1100))
    limit = JWSRegistry.max_payload_length
    with pytest.raises(jose.MalformedJWT, match="too large"):
        jose.parse(token({"alg": "ES256"}, {"pad": "x" * limit}))


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "ES256", "crit": ["kid"], "kid": "k"},  # joserfc would accept this `crit`; no token of ours has one
        {"alg": "ES256", "b64": False, "crit": ["b64"]},  # RFC 7797 changes what is signed
        {"alg": "ES256", "b64": True},
        {"alg": ["ES256"]},  # registered, but not a string
        {"alg": "ES256", "kid": {"$ne": None}},
        {"alg": "ES256", "jku": "file:///etc/passwd"},  # registered, but not a URL
    ],
)
def test_refused_headers_are_unacceptable(header: dict[str, Any]) -> None:
    with pytest.raises(jose.UnacceptableJWT):
        jose.parse(token(header))
    with pytest.raises(jose.UnacceptableJWT):
        jose.parse(token(header), strict_header=False)


def test_unregistered_header_parameters_are_refused_unless_lenient() -> None:
    value = token({"alg": "ES256", "x-custom": "1"})
    with pytest.raises(jose.UnacceptableJWT):
        jose.parse(value)
    assert jose.parse(value, strict_header=False).header["x-custom"] == "1"


def test_errors_are_told_apart_by_class() -> None:
    assert issubclass(jose.MalformedJWT, jose.InvalidJWT)
    assert issubclass(jose.UnacceptableJWT, jose.InvalidJWT)
    assert not issubclass(jose.KeysUnavailable, jose.InvalidJWT)  # an outage, not a bad token
