"""User enumeration through login timing: an unknown username must cost what a wrong password costs.

The configured users are alice (argon2) and bob (``{noop}``, as demos write them). Before the fix an unknown
username ran one argon2 verification while bob's wrong password returned at once, so the time of a failed
login told which usernames exist.
"""

from __future__ import annotations

import time

import bcrypt
import httpx
from argon2 import PasswordHasher, extract_parameters
from tests.server.browser import hidden_fields

from tokensmith.config.server import UserConfig
from tokensmith.server.core.passwords import UserPasswordChecker, hash_password

ROUNDS = 4


async def _failed_login_seconds(http: httpx.AsyncClient, username: str) -> float:
    page = await http.get("/login")
    fields = hidden_fields(page.text)
    started = time.perf_counter()
    response = await http.post("/login", data={**fields, "username": username, "password": "wrong password"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    return elapsed


async def _refused_form_seconds(http: httpx.AsyncClient) -> float:
    """The same trip to POST /login, refused before any password check (no CSRF token)."""
    started = time.perf_counter()
    response = await http.post("/login", data={"username": "bob", "password": "wrong password"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, response.text
    return elapsed


async def test_unknown_user_and_wrong_password_cost_the_same(http: httpx.AsyncClient) -> None:
    unknown: list[float] = []
    known_noop: list[float] = []
    for _ in range(ROUNDS):  # interleaved, so machine load hits both series alike
        unknown.append(await _failed_login_seconds(http, "nobody-by-this-name"))
        known_noop.append(await _failed_login_seconds(http, "bob"))
    # The fastest of each series is the least disturbed by load. Without the fix bob's login was ~50x faster
    # than an unknown user's (no hashing at all against one argon2 verification).
    assert 0.5 * min(unknown) <= min(known_noop) <= 2 * min(unknown), (unknown, known_noop)
    # And both really did hash: a failed login costs an argon2 verification, far more than the HTTP trip alone.
    assert min(unknown) >= 5 * min([await _refused_form_seconds(http) for _ in range(ROUNDS)]), unknown


def test_dummy_hash_has_the_cost_of_the_configured_argon2_hashes() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    users = [
        UserConfig(username="bob", password="{noop}x"),
        UserConfig(username="a", password="{argon2}" + hasher.hash("pw")),
    ]
    dummy = UserPasswordChecker(users).dummy_hash
    assert dummy.startswith("{argon2}")
    assert extract_parameters(dummy.removeprefix("{argon2}")) == extract_parameters(
        users[1].password.removeprefix("{argon2}")
    )


def test_dummy_hash_has_the_cost_of_the_configured_bcrypt_hashes() -> None:
    encoded = "{bcrypt}" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=5)).decode()
    dummy = UserPasswordChecker([UserConfig(username="a", password=encoded)]).dummy_hash
    assert dummy.startswith("{bcrypt}$2b$05$")


def test_dummy_hash_defaults_to_argon2_when_every_password_is_noop() -> None:
    dummy = UserPasswordChecker([UserConfig(username="bob", password="{noop}x")]).dummy_hash
    assert dummy.startswith("{argon2}$argon2id$")
    assert extract_parameters(dummy.removeprefix("{argon2}")) == extract_parameters(
        hash_password("y").removeprefix("{argon2}")
    )


async def test_checker_accepts_only_the_right_password() -> None:
    users = [UserConfig(username="bob", password="{noop}right"), UserConfig(username="a", password=hash_password("pw"))]
    checker = UserPasswordChecker(users)
    assert await checker.verify(users[0], "right")
    assert not await checker.verify(users[0], "wrong")
    assert await checker.verify(users[1], "pw")
    assert not await checker.verify(users[1], "right")
    assert not await checker.verify(None, "right")
