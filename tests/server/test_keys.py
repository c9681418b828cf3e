"""KeyManager over a real SqlStore (SQLite): persistence, ES256/RS256, refused headers, rotation with a grace period."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from joserfc.jws import JWSRegistry

from tokensmith import jose
from tokensmith.config.server import KeySettings
from tokensmith.server.key_encryption import KeyEncryptionKey
from tokensmith.server.keys import KeyManager, generate_key, open_private_key
from tokensmith.store.sql import SqlStore

GRACE = timedelta(minutes=10)
KEK = KeyEncryptionKey.generate("the test key")
CLAIMS = {"iss": "https://as.example", "sub": "alice", "aud": "message-service"}


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def public_keyset(jwks: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forged(header: dict[str, Any], claims: dict[str, Any] = CLAIMS, signature: bytes = b"\x01" * 64) -> str:
    """A compact JWS with any header, for headers no honest library would sign."""
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), signature]
    return ".".join(b64url(p) for p in parts)


def signing_key(keys: KeyManager, alg: str) -> ECKey | RSAKey:
    kid = kid_for(keys, alg)
    return open_private_key(next(r for r in keys.records if r.kid == kid), KEK)


def validly_signed(header: dict[str, Any], key: ECKey | RSAKey, alg: str, claims: dict[str, Any] = CLAIMS) -> str:
    """A compact JWS with any header, really signed with ``key``: only the header can make it fail."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    sql_store = SqlStore(database_url)
    await sql_store.initialize()
    try:
        yield sql_store
    finally:
        await sql_store.close()


@pytest.fixture
async def keys(store: SqlStore, clock: FakeClock) -> KeyManager:
    manager = KeyManager(store, KeySettings(retired_key_grace=GRACE), clock, encryption_key=KEK)
    await manager.load()
    return manager


def kid_for(keys: KeyManager, alg: str) -> str:
    (record,) = [r for r in keys.records if r.alg == alg and r.status == "active"]
    return record.kid


class CountingStore(SqlStore):
    """A store that counts key reads: each one is a database query."""

    key_reads = 0

    async def list_signing_keys(self) -> Any:
        self.key_reads += 1
        return await super().list_signing_keys()


@asynccontextmanager
async def replica_keys(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[KeyManager, CountingStore]]:
    """Another replica on the same database: its own store (counting key reads) and key manager, loaded."""
    replica_store = CountingStore(database_url)
    await replica_store.initialize()
    try:
        replica = KeyManager(replica_store, KeySettings(retired_key_grace=GRACE), clock, encryption_key=KEK)
        await replica.load()
        yield replica, replica_store
    finally:
        await replica_store.close()


# --- generation and persistence ---------------------------------------------------------------------------------


async def test_first_load_generates_one_key_per_configured_algorithm(keys: KeyManager, store: SqlStore) -> None:
    stored = await store.list_signing_keys()
    assert sorted(r.alg for r in stored) == ["ES256", "RS256"]
    assert all(r.status == "active" and r.encryption_key_id == KEK.id for r in stored)
    assert all("d" not in r.public_jwk and "d" in open_private_key(r, KEK).as_dict(private=True) for r in stored)
    published = keys.jwks()["keys"]
    assert sorted(k["kid"] for k in published) == sorted(r.kid for r in stored)
    assert {k["alg"] for k in published} == {"ES256", "RS256"}
    assert all("d" not in k and "p" not in k for k in published)  # no private parts in the JWKS


async def test_keys_persist_and_are_not_regenerated(keys: KeyManager, database_url: str, clock: FakeClock) -> None:
    token = keys.sign(CLAIMS, alg="ES256")
    kids = sorted(r.kid for r in keys.records)

    # A restart (or a second replica): a new store and manager on the same database.
    other_store = SqlStore(database_url)
    await other_store.initialize()
    try:
        restarted = KeyManager(other_store, KeySettings(retired_key_grace=GRACE), clock, encryption_key=KEK)
        await restarted.load()
        assert sorted(r.kid for r in restarted.records) == kids
        assert len(await other_store.list_signing_keys()) == 2
        assert restarted.verify(token).claims == CLAIMS
        assert restarted.jwks() == keys.jwks()
    finally:
        await other_store.close()


async def test_a_newly_wanted_algorithm_gets_a_key(store: SqlStore, clock: FakeClock) -> None:
    only_es = KeyManager(
        store, KeySettings(access_token_algorithm="ES256", id_token_algorithm="ES256"), clock, encryption_key=KEK
    )
    await only_es.load()
    assert [r.alg for r in only_es.records] == ["ES256"]
    both = KeyManager(
        store, KeySettings(access_token_algorithm="ES256", id_token_algorithm="RS256"), clock, encryption_key=KEK
    )
    await both.load()
    assert sorted(r.alg for r in both.records) == ["ES256", "RS256"]


# --- signing and verifying --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_sign_and_verify(keys: KeyManager, alg: str) -> None:
    token = keys.sign(CLAIMS, alg=alg, typ="at+jwt")
    verified = keys.verify(token)
    assert verified.claims == CLAIMS
    assert verified.header == {"alg": alg, "kid": kid_for(keys, alg), "typ": "at+jwt"}
    # Any JOSE library verifies it with the published JWKS alone.
    assert jwt.decode(token, public_keyset(keys.jwks()), algorithms=[alg]).claims == CLAIMS


async def test_signing_with_an_algorithm_without_a_key_fails(store: SqlStore, clock: FakeClock) -> None:
    only_es = KeyManager(
        store, KeySettings(access_token_algorithm="ES256", id_token_algorithm="ES256"), clock, encryption_key=KEK
    )
    await only_es.load()
    with pytest.raises(ValueError, match="no active RS256 signing key"):
        only_es.sign(CLAIMS, alg="RS256")


async def test_alg_none_is_refused(keys: KeyManager) -> None:
    token = forged({"alg": "none", "kid": kid_for(keys, "ES256")}, signature=b"")
    with pytest.raises(jose.UnacceptableJWT, match="'none' is not accepted"):
        keys.verify(token)


async def test_hs256_signed_with_the_public_key_is_refused(keys: KeyManager) -> None:
    # The classic confusion: HMAC keyed with the RSA public key, which anyone can fetch from the JWKS.
    rsa_kid = kid_for(keys, "RS256")
    public = next(k for k in keys.jwks()["keys"] if k["kid"] == rsa_kid)
    secret = OctKey.import_key(json.dumps(public).encode())
    token = jwt.encode({"alg": "HS256", "kid": rsa_kid}, CLAIMS, secret, algorithms=["HS256"])
    with pytest.raises(jose.UnacceptableJWT, match="'HS256' is not accepted"):
        keys.verify(token)


async def test_unknown_or_missing_kid_is_refused(keys: KeyManager, clock: FakeClock) -> None:
    stranger = open_private_key(generate_key("ES256", clock(), KEK), KEK)
    token = jwt.encode({"alg": "ES256", "kid": stranger.kid}, CLAIMS, stranger, algorithms=["ES256"])
    with pytest.raises(jose.UnknownKey):
        keys.verify(token)
    no_kid = jwt.encode({"alg": "ES256"}, CLAIMS, stranger, algorithms=["ES256"])
    with pytest.raises(jose.UnknownKey):
        keys.verify(no_kid)


@pytest.mark.parametrize(("alg", "key_alg"), [("RS256", "ES256"), ("ES256", "RS256")])
async def test_algorithm_and_key_type_must_match(keys: KeyManager, alg: str, key_alg: str) -> None:
    token = forged({"alg": alg, "kid": kid_for(keys, key_alg)})
    with pytest.raises(jose.UnknownKey):  # no key of that kid serves that algorithm
        keys.verify(token)


async def test_tampered_claims_do_not_verify(keys: KeyManager) -> None:
    header, _, signature = keys.sign(CLAIMS, alg="ES256").split(".")
    tampered = ".".join([header, b64url(json.dumps({**CLAIMS, "sub": "mallory"}).encode()), signature])
    with pytest.raises(jose.BadSignature):
        keys.verify(tampered)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "é.b.c",
        "a.b.c.d.e",
        b64url(b"[1]") + ".e30.",
        b64url(b'{"alg": ["ES256"]}') + ".e30.",
    ],
)
async def test_malformed_tokens_are_refused(keys: KeyManager, token: str) -> None:
    with pytest.raises(jose.InvalidJWT):
        keys.verify(token)


# --- what we sign and verify, against joserfc ------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "JWT"])
async def test_rs256_tokens_are_byte_for_byte_what_joserfc_makes(keys: KeyManager, typ: str) -> None:
    claims = {**CLAIMS, "name": "Zoë", "scope": "a b", "act": {"sub": "svc"}, "exp": 1_800_000_000}
    header = {"alg": "RS256", "kid": kid_for(keys, "RS256"), "typ": typ}
    expected = jwt.encode(header, claims, signing_key(keys, "RS256"), algorithms=["RS256"])
    assert keys.sign(claims, alg="RS256", typ=typ) == expected  # RSASSA-PKCS1-v1_5 is deterministic


async def test_es256_tokens_match_joserfcs_and_joserfc_verifies_them(keys: KeyManager) -> None:
    claims = {**CLAIMS, "name": "Zoë", "aud": ["a", "b"], "exp": 1_800_000_000}
    header = {"alg": "ES256", "kid": kid_for(keys, "ES256"), "typ": "at+jwt"}
    token = keys.sign(claims, alg="ES256", typ="at+jwt")
    expected = jwt.encode(header, claims, signing_key(keys, "ES256"), algorithms=["ES256"])
    # ECDSA signatures are randomised: header and payload segments are identical, and joserfc accepts ours.
    assert token.split(".")[:2] == expected.split(".")[:2]
    decoded = jwt.decode(token, public_keyset(keys.jwks()), algorithms=["ES256"])
    assert (decoded.header, decoded.claims) == (header, claims)


async def test_datetime_time_claims_are_numeric_dates_as_joserfc_writes_them(keys: KeyManager) -> None:
    exp = datetime(2027, 1, 1, tzinfo=UTC)
    claims = {**CLAIMS, "exp": exp}
    token = keys.sign(claims, alg="ES256")
    assert keys.verify(token).claims["exp"] == int(exp.timestamp())
    assert claims["exp"] is exp  # the caller's mapping is not modified


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_tokens_joserfc_signed_with_our_keys_verify(keys: KeyManager, alg: str) -> None:
    header = {"alg": alg, "kid": kid_for(keys, alg)}  # another header layout than ours: no typ
    token = jwt.encode(header, CLAIMS, signing_key(keys, alg), algorithms=[alg], default_type=None)
    verified = keys.verify(token)
    assert (verified.header, verified.claims) == (header, CLAIMS)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_any_change_to_a_signed_token_is_refused(keys: KeyManager, alg: str) -> None:
    token = keys.sign(CLAIMS, alg=alg, typ="at+jwt")
    header, payload, signature = token.split(".")
    raw_signature = base64.urlsafe_b64decode(signature + "==")
    flipped = b64url(raw_signature[:-1] + bytes([raw_signature[-1] ^ 1]))
    other_header = b64url(json.dumps({"typ": "JWT", "alg": alg, "kid": kid_for(keys, alg)}).encode())
    for changed in [
        f"{header}.{payload}.{flipped}",
        f"{header}.{b64url(json.dumps({**CLAIMS, 'sub': 'mallory'}).encode())}.{signature}",
        f"{other_header}.{payload}.{signature}",
        f"{header}.{payload}.{signature[:-4]}",  # truncated signature
        f"{header}.{payload}.",
    ]:
        with pytest.raises(jose.InvalidJWT):
            keys.verify(changed)
    assert keys.verify(token).claims == CLAIMS


async def test_a_second_spelling_of_the_signature_is_refused(keys: KeyManager) -> None:
    # 64 signature bytes take 86 base64url characters whose last one carries 4 unused bits: a character that
    # differs only in those bits decodes to the same bytes. joserfc refuses such a spelling; so do we.
    token = keys.sign(CLAIMS, alg="ES256")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    respelled = token[:-1] + alphabet[last | 0b0001]
    assert respelled != token
    assert base64.urlsafe_b64decode(respelled.split(".")[2] + "==") == base64.urlsafe_b64decode(
        token.split(".")[2] + "=="
    )
    with pytest.raises(jose.MalformedJWT):
        keys.verify(respelled)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "ES256", "crit": ["kid"]},  # joserfc would accept this `crit`; no token of ours carries one
        {"alg": "ES256", "b64": False, "crit": ["b64"]},  # RFC 7797 changes what is signed
        {"alg": "ES256", "b64": True},
        {"alg": "ES256", "x-custom": "1"},  # unregistered: refused by joserfc's strict registry too
        {"alg": "ES256", "typ": 1},  # registered, but not a string
        {"alg": "ES256", "jku": "file:///etc/passwd"},  # registered, but not a URL
    ],
)
async def test_validly_signed_tokens_with_refused_headers_do_not_verify(
    keys: KeyManager, header: dict[str, Any]
) -> None:
    token = validly_signed({**header, "kid": kid_for(keys, "ES256")}, signing_key(keys, "ES256"), "ES256")
    with pytest.raises(jose.InvalidJWT):
        keys.verify(token)
    # The same token without the offending parameter verifies: the header alone was refused.
    plain = validly_signed({"alg": "ES256", "kid": kid_for(keys, "ES256")}, signing_key(keys, "ES256"), "ES256")
    assert keys.verify(plain).claims == CLAIMS


async def test_registered_headers_joserfc_accepts_still_verify(keys: KeyManager) -> None:
    header = {"alg": "RS256", "kid": kid_for(keys, "RS256"), "cty": "JWT", "x5t": "abc"}
    token = validly_signed(header, signing_key(keys, "RS256"), "RS256")
    assert keys.verify(token).header == header


async def test_a_non_object_payload_is_refused_even_when_signed(keys: KeyManager) -> None:
    header = {"alg": "ES256", "kid": kid_for(keys, "ES256")}
    key = signing_key(keys, "ES256")
    for payload in [b"[1]", b'"text"', b"not json", b"\xff\xfe"]:
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
        token = f"{signing_input}.{b64url(JWSRegistry.algorithms['ES256'].sign(signing_input.encode(), key))}"
        with pytest.raises(jose.MalformedJWT):
            keys.verify(token)


async def test_a_header_or_signature_over_joserfcs_size_limits_is_refused(keys: KeyManager) -> None:
    key = signing_key(keys, "ES256")
    big_header = {"alg": "ES256", "kid": kid_for(keys, "ES256"), "typ": "x" * 600}
    with pytest.raises(jose.MalformedJWT, match="too large"):
        keys.verify(validly_signed(big_header, key, "ES256"))
    header, payload, _ = keys.sign(CLAIMS, alg="ES256").split(".")
    with pytest.raises(jose.MalformedJWT, match="too large"):
        keys.verify(f"{header}.{payload}.{'A' * 1100}")


@pytest.mark.parametrize("suffix", [".", ".abc", ".abc.def"])
async def test_extra_segments_are_refused(keys: KeyManager, suffix: str) -> None:
    with pytest.raises(jose.MalformedJWT):
        keys.verify(keys.sign(CLAIMS, alg="ES256") + suffix)


@pytest.mark.parametrize("damage", ["=", "+", "/", " ", "\n", "é"])
async def test_characters_outside_base64url_are_refused(keys: KeyManager, damage: str) -> None:
    header, payload, signature = keys.sign(CLAIMS, alg="RS256").split(".")
    with pytest.raises(jose.MalformedJWT):
        keys.verify(f"{header}{damage}.{payload}.{signature}")
    for token in [f"{header}.{payload}{damage}.{signature}", f"{header}.{payload}.{signature}{damage}"]:
        with pytest.raises(jose.InvalidJWT):
            keys.verify(token)


async def test_a_padded_payload_is_refused_even_when_the_signature_covers_it(keys: KeyManager) -> None:
    header = b64url(json.dumps({"alg": "ES256", "kid": kid_for(keys, "ES256")}).encode())
    payload = base64.urlsafe_b64encode(json.dumps(CLAIMS).encode()).decode()  # with its "=" padding
    assert payload.endswith("=")
    signing_input = f"{header}.{payload}"
    signature = JWSRegistry.algorithms["ES256"].sign(signing_input.encode(), signing_key(keys, "ES256"))
    with pytest.raises(jose.MalformedJWT):
        keys.verify(f"{signing_input}.{b64url(signature)}")


# --- rotation -------------------------------------------------------------------------------------------------


async def test_rotation_keeps_the_old_key_for_the_grace_period(
    keys: KeyManager, store: SqlStore, clock: FakeClock
) -> None:
    old_kid = kid_for(keys, "ES256")
    old_rs_kid = kid_for(keys, "RS256")
    old_token = keys.sign(CLAIMS, alg="ES256")

    clock.advance(timedelta(minutes=1))
    created = await keys.rotate(["ES256"])
    assert [r.alg for r in created] == ["ES256"]
    new_kid = created[0].kid
    assert kid_for(keys, "ES256") == new_kid
    assert kid_for(keys, "RS256") == old_rs_kid  # only the named algorithm rotated

    # New tokens use the new key; the old one still verifies and is still published.
    assert keys.verify(keys.sign(CLAIMS, alg="ES256")).header["kid"] == new_kid
    assert keys.verify(old_token).claims == CLAIMS
    assert {old_kid, new_kid} <= {k["kid"] for k in keys.jwks()["keys"]}
    retired = next(r for r in await store.list_signing_keys() if r.kid == old_kid)
    assert (retired.status, retired.retired_at) == ("retired", clock())

    clock.advance(GRACE)  # exactly at the end of the grace period: still usable
    await keys.refresh()
    assert keys.verify(old_token).claims == CLAIMS

    clock.advance(timedelta(seconds=1))
    await keys.refresh()
    assert old_kid not in {k["kid"] for k in keys.jwks()["keys"]}
    with pytest.raises(jose.UnknownKey):
        keys.verify(old_token)

    # The next rotation deletes keys whose grace has passed from the store.
    await keys.rotate(["ES256"])
    assert old_kid not in {r.kid for r in await store.list_signing_keys()}


async def test_rotation_of_every_algorithm_reaches_other_replicas(
    keys: KeyManager, database_url: str, clock: FakeClock
) -> None:
    async with replica_keys(database_url, clock) as (replica, _):
        created = await keys.rotate()
        assert sorted(r.alg for r in created) == ["ES256", "RS256"]
        token = keys.sign(CLAIMS, alg="RS256")
        with pytest.raises(jose.UnknownKey):
            replica.verify(token)
        await replica.refresh()
        assert replica.verify(token).claims == CLAIMS
        assert kid_for(replica, "RS256") == kid_for(keys, "RS256")


async def test_replicas_starting_together_converge_on_one_signing_key(
    store: SqlStore, database_url: str, clock: FakeClock
) -> None:
    other_store = SqlStore(database_url)
    await other_store.initialize()
    try:
        settings = KeySettings(retired_key_grace=GRACE)
        first, second = (
            KeyManager(store, settings, clock, encryption_key=KEK),
            KeyManager(other_store, settings, clock, encryption_key=KEK),
        )
        await asyncio.gather(first.load(), second.load())  # both may generate keys before seeing the other's
        await asyncio.gather(first.refresh(), second.refresh())
        for alg in ["ES256", "RS256"]:
            from_first, from_second = first.sign(CLAIMS, alg=alg), second.sign(CLAIMS, alg=alg)
            assert first.verify(from_second).header["kid"] == second.verify(from_first).header["kid"]
    finally:
        await other_store.close()


async def test_a_key_another_replica_added_just_after_start_up_is_found_at_once(
    keys: KeyManager, database_url: str, clock: FakeClock
) -> None:
    # A replica that loaded its keys a moment ago (worker processes starting together) meets a token signed
    # with a key it has not seen: it re-reads the keys right away, not only once some interval has passed.
    async with replica_keys(database_url, clock) as (replica, replica_store):
        await keys.rotate(["ES256"])
        token = keys.sign(CLAIMS, alg="ES256")
        reads = replica_store.key_reads
        results = await asyncio.gather(*(replica.verify_or_refresh(token) for _ in range(10)))
        assert all(r.claims == CLAIMS for r in results)
        assert replica_store.key_reads == reads + 1  # ten requests met the new key; one read served them all


async def test_junk_kids_cause_at_most_one_key_read_every_few_seconds(database_url: str, clock: FakeClock) -> None:
    async with replica_keys(database_url, clock) as (manager, counting):
        reads = counting.key_reads
        for n in range(20):
            junk = validly_signed({"alg": "ES256", "kid": f"junk-{n}"}, signing_key(manager, "ES256"), "ES256")
            with pytest.raises(jose.UnknownKey):
                await manager.verify_or_refresh(junk)
        assert counting.key_reads == reads + 1
        # A token of ours still verifies without a read.
        assert (await manager.verify_or_refresh(manager.sign(CLAIMS, alg="ES256"))).claims == CLAIMS
        assert counting.key_reads == reads + 1
