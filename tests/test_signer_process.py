"""SignerProcess: RS256 signatures made by a child process reach the right callers, in order, with the right keys;
a signer that dies, misbehaves or cannot start costs no signature; closing stops it; the overflow and size rules;
the auto rule; the child program's frames; and KeyManager hands RSA signatures (only) to it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from joserfc import jwt

from tokensmith import signer_child, signer_process
from tokensmith.config.server import KeySettings
from tokensmith.keys import KeyManager, public_keyset
from tokensmith.signer_process import SignerProcess, auto_signer_process, usable_cpus
from tokensmith.store.sql import SqlStore

CLAIMS = {"iss": "https://as.example", "sub": "alice", "aud": "message-service", "jti": "j-1"}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def signer() -> Iterator[SignerProcess]:
    process = SignerProcess(enabled=True)
    yield process
    process.close()


@pytest.fixture
def inline_signatures(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The signing inputs signed on the caller's side (not by the signer process), in order."""
    signed_here: list[bytes] = []
    real = signer_process.sign_rs256

    def counting(private_key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
        signed_here.append(signing_input)
        return real(private_key, signing_input)

    monkeypatch.setattr(signer_process, "sign_rs256", counting)
    return signed_here


def verifies(private_key: rsa.RSAPrivateKey, signature: bytes, signing_input: bytes) -> bool:
    try:
        private_key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_signatures_are_made_by_a_child_process_and_equal_inline_ones(
    signer: SignerProcess, key: rsa.RSAPrivateKey, inline_signatures: list[bytes]
) -> None:
    signature = await signer.sign_rs256(key, b"header.payload")
    assert signer.pid is not None
    assert signer.pid != os.getpid()
    assert parent_of(signer.pid) == os.getpid()  # our child
    # RSASSA-PKCS1-v1_5 is deterministic: the very signature this process would have made.
    assert signature == signer_child.sign_rs256(key, b"header.payload")
    assert inline_signatures == []


async def test_many_concurrent_signatures_each_reach_their_own_caller(
    signer: SignerProcess, key: rsa.RSAPrivateKey, inline_signatures: list[bytes]
) -> None:
    inputs = [b"input-%d" % n * (n + 1) for n in range(50)]
    signatures = await asyncio.gather(*(signer.sign_rs256(key, data) for data in inputs))
    assert all(verifies(key, sig, data) for sig, data in zip(signatures, inputs, strict=True))
    assert inline_signatures == []


async def test_each_key_signs_its_own_jobs(
    signer: SignerProcess, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    keys = [key, other_key] * 10
    signatures = await asyncio.gather(*(signer.sign_rs256(k, b"same input") for k in keys))
    assert all(verifies(k, sig, b"same input") for k, sig in zip(keys, signatures, strict=True))
    assert signatures[0] != signatures[1]


async def test_past_its_key_limit_the_signer_forgets_its_keys_and_is_sent_them_again(
    signer: SignerProcess, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signer_process, "_MAX_KEYS", 1)
    for k in [key, other_key, key, key, other_key]:
        assert verifies(k, await signer.sign_rs256(k, b"rotated"), b"rotated")


async def test_disabled_signs_on_the_callers_side_without_a_process(
    key: rsa.RSAPrivateKey, inline_signatures: list[bytes]
) -> None:
    inline = SignerProcess(enabled=False)
    assert verifies(key, await inline.sign_rs256(key, b"x"), b"x")
    assert inline_signatures == [b"x"]
    assert not inline.running


async def test_a_cancelled_caller_does_not_shift_the_others_results(
    signer: SignerProcess, key: rsa.RSAPrivateKey
) -> None:
    tasks = [asyncio.ensure_future(signer.sign_rs256(key, b"job-%d" % n)) for n in range(12)]
    await asyncio.sleep(0)  # all twelve queued
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    for n, result in enumerate(results):
        if n != 3:
            assert isinstance(result, bytes)
            assert verifies(key, result, b"job-%d" % n)
    assert verifies(key, await signer.sign_rs256(key, b"after"), b"after")


async def test_a_killed_signer_costs_no_signature_and_a_new_one_starts_later(
    signer: SignerProcess,
    key: rsa.RSAPrivateKey,
    inline_signatures: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await signer.sign_rs256(key, b"warm-up")
    first = signer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    inputs = [b"while-dying-%d" % n for n in range(10)]
    with caplog.at_level(logging.ERROR, logger="tokensmith.signer_process"):
        signatures = await asyncio.gather(*(signer.sign_rs256(key, data) for data in inputs))
    assert all(verifies(key, sig, data) for sig, data in zip(signatures, inputs, strict=True))
    assert inline_signatures == inputs  # the dead signer's jobs, made here
    assert "signer process" in caplog.text
    assert "signing on the event loop" in caplog.text
    assert not signer.running
    assert not is_running(first)
    # Until the respawn delay has passed the loop signs; then a new signer serves.
    assert verifies(key, await signer.sign_rs256(key, b"meanwhile"), b"meanwhile")
    assert not signer.running
    monkeypatch.setattr(signer, "_respawn_at", 0.0)
    assert verifies(key, await signer.sign_rs256(key, b"later"), b"later")
    assert signer.pid not in (None, first)
    assert inline_signatures[-1] == b"meanwhile"


def child_program(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Replace the signer's program by ``source`` (run with ``python -c``, the pipe ends as argv[1] and argv[2])."""
    monkeypatch.setattr(signer_process, "_PROGRAM", ("-c", source))


_ANSWER_FAILED = """
import os, struct, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
buf = b""
while chunk := os.read(r, 65536):
    buf += chunk
    while len(buf) >= 9:
        kind, number, size = struct.unpack_from("<BII", buf)
        if len(buf) < 9 + size:
            break
        buf = buf[9 + size:]
        if kind == 2:
            os.write(w, struct.pack("<BI", 1, 4) + b"oops")
"""

_ANSWER_TWICE = _ANSWER_FAILED.replace(
    'os.write(w, struct.pack("<BI", 1, 4) + b"oops")', 'os.write(w, (struct.pack("<BI", 0, 3) + b"sig") * 2)'
)


async def test_a_job_the_signer_could_not_sign_is_signed_here(
    key: rsa.RSAPrivateKey, inline_signatures: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    child_program(monkeypatch, _ANSWER_FAILED)
    failing = SignerProcess(enabled=True)
    try:
        assert verifies(key, await failing.sign_rs256(key, b"retry-me"), b"retry-me")
        assert failing.running  # a failed signature is not a failed signer
    finally:
        failing.close()
    assert inline_signatures == [b"retry-me"]


async def test_a_signer_answering_more_than_it_was_asked_is_dropped(
    key: rsa.RSAPrivateKey,
    inline_signatures: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    child_program(monkeypatch, _ANSWER_TWICE)
    confused = SignerProcess(enabled=True)
    try:
        with caplog.at_level(logging.ERROR, logger="tokensmith.signer_process"):
            first = await confused.sign_rs256(key, b"one")
            await asyncio.sleep(0.3)  # its second, unasked-for reply arrives
        assert first == b"sig"  # what it said, for the job it was asked
        assert "answered more than it was asked" in caplog.text
        assert not confused.running
        assert verifies(key, await confused.sign_rs256(key, b"two"), b"two")
    finally:
        confused.close()
    assert inline_signatures == [b"two"]


async def test_a_signer_that_exits_at_once_costs_no_signature(
    key: rsa.RSAPrivateKey, inline_signatures: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    child_program(monkeypatch, "import sys; sys.exit(3)")
    quitter = SignerProcess(enabled=True)
    try:
        signatures = await asyncio.gather(*(quitter.sign_rs256(key, b"n%d" % n) for n in range(5)))
    finally:
        quitter.close()
    assert all(verifies(key, sig, b"n%d" % n) for n, sig in enumerate(signatures))
    assert inline_signatures == [b"n%d" % n for n in range(5)]


async def test_a_signer_that_cannot_start_leaves_signing_here(
    key: rsa.RSAPrivateKey,
    inline_signatures: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_processes() -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(signer_process, "_spawn", no_processes)
    stuck = SignerProcess(enabled=True)
    with caplog.at_level(logging.ERROR, logger="tokensmith.signer_process"):
        assert verifies(key, await stuck.sign_rs256(key, b"x"), b"x")
    assert "could not start the signer process" in caplog.text
    assert inline_signatures == [b"x"]
    assert not stuck.running
    stuck.close()


async def test_close_stops_the_signer_and_later_signatures_are_made_here(
    key: rsa.RSAPrivateKey, inline_signatures: list[bytes]
) -> None:
    closing = SignerProcess(enabled=True)
    await closing.sign_rs256(key, b"before")
    pid = closing.pid
    assert pid is not None
    assert is_running(pid)
    closing.close()
    assert not is_running(pid)
    assert verifies(key, await closing.sign_rs256(key, b"after"), b"after")
    assert inline_signatures == [b"after"]
    assert not closing.running
    closing.close()  # twice is harmless


async def test_past_the_waiting_limit_the_event_loop_signs_for_itself(
    signer: SignerProcess, key: rsa.RSAPrivateKey, inline_signatures: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signer_process, "_MAX_WAITING", 3)
    inputs = [b"burst-%d" % n for n in range(10)]
    signatures = await asyncio.gather(*(signer.sign_rs256(key, data) for data in inputs))
    assert all(verifies(key, sig, data) for sig, data in zip(signatures, inputs, strict=True))
    assert inline_signatures == inputs[3:]  # the first three were waiting for the signer when the rest came


async def test_an_input_too_large_for_a_frame_is_signed_here(
    signer: SignerProcess, key: rsa.RSAPrivateKey, inline_signatures: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signer_process, "MAX_PAYLOAD", 100)
    assert verifies(key, await signer.sign_rs256(key, b"x" * 101), b"x" * 101)
    assert verifies(key, await signer.sign_rs256(key, b"y" * 100), b"y" * 100)
    assert inline_signatures == [b"x" * 101]


async def test_a_full_pipe_keeps_the_frames_in_order(
    signer: SignerProcess, key: rsa.RSAPrivateKey, inline_signatures: list[bytes]
) -> None:
    # 40 inputs of 32 KiB: far more than a pipe holds, so frames wait in the outbox for the pipe to drain.
    inputs = [bytes([n]) * 32768 for n in range(40)]
    signatures = await asyncio.gather(*(signer.sign_rs256(key, data) for data in inputs))
    assert all(verifies(key, sig, data) for sig, data in zip(signatures, inputs, strict=True))
    assert inline_signatures == []


async def test_a_signer_serves_only_the_event_loop_that_started_it(
    signer: SignerProcess, key: rsa.RSAPrivateKey, inline_signatures: list[bytes]
) -> None:
    await signer.sign_rs256(key, b"this loop")
    result: list[bytes] = []
    other = threading.Thread(target=lambda: result.append(asyncio.run(signer.sign_rs256(key, b"other loop"))))
    other.start()
    other.join()
    assert verifies(key, result[0], b"other loop")
    assert inline_signatures == [b"other loop"]


# --- the child program, run in this process on two pipes -----------------------------------------------------


def run_child(frames: bytes) -> tuple[int, bytes]:
    """Feed ``frames`` to :func:`signer_child.serve`, then end its input; its exit status and its replies."""
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    outcome: list[int] = []
    worker = threading.Thread(target=lambda: outcome.append(signer_child.serve(child_reads, child_writes)))
    worker.start()
    os.write(parent_writes, frames)
    os.close(parent_writes)
    worker.join(timeout=30)
    os.close(child_writes)
    replies = b""
    while chunk := os.read(parent_reads, 65536):
        replies += chunk
    os.close(parent_reads)
    os.close(child_reads)
    return outcome[0], replies


def der(private_key: PrivateKeyTypes) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def frame(kind: int, number: int, payload: bytes = b"") -> bytes:
    return signer_child.REQUEST.pack(kind, number, len(payload)) + payload


def replies_of(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        status, size = signer_child.REPLY.unpack_from(data)
        out.append((status, data[signer_child.REPLY.size : signer_child.REPLY.size + size]))
        data = data[signer_child.REPLY.size + size :]
    return out


def test_the_child_signs_in_order_and_reports_what_it_cannot_sign(key: rsa.RSAPrivateKey) -> None:
    frames = (
        frame(signer_child.SIGN, 1, b"before the key")
        + frame(signer_child.LOAD_KEY, 1, der(key))
        + b"".join(frame(signer_child.SIGN, 1, b"m%d" % n) for n in range(12))
        + frame(signer_child.LOAD_KEY, 2, b"not a key")
        + frame(signer_child.SIGN, 2, b"bad key")
        + frame(signer_child.FORGET_KEYS, 0)
        + frame(signer_child.SIGN, 1, b"forgotten")
    )
    status, data = run_child(frames)
    assert status == 0
    replies = replies_of(data)
    assert len(replies) == 15
    assert replies[0] == (signer_child.FAILED, b"unknown key number")
    assert all(s == signer_child.SIGNED and verifies(key, sig, b"m%d" % n) for n, (s, sig) in enumerate(replies[1:13]))
    assert replies[13] == (signer_child.FAILED, b"the key does not load")
    assert replies[14] == (signer_child.FAILED, b"unknown key number")


def test_the_child_refuses_a_key_that_is_not_rsa() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    status, data = run_child(frame(signer_child.LOAD_KEY, 1, der(ec_key)) + frame(signer_child.SIGN, 1, b"x"))
    assert status == 0
    assert replies_of(data) == [(signer_child.FAILED, b"not an RSA key")]


@pytest.mark.parametrize(
    "bad",
    [struct.pack("<BII", 9, 1, 0), struct.pack("<BII", signer_child.SIGN, 1, signer_child.MAX_PAYLOAD + 1)],
    ids=["unknown kind", "oversized payload"],
)
def test_the_child_stops_at_a_malformed_frame(bad: bytes) -> None:
    status, data = run_child(bad + frame(signer_child.FORGET_KEYS, 0))
    assert (status, data) == (2, b"")


def test_the_child_program_wants_its_two_pipe_ends(capsys: pytest.CaptureFixture[str]) -> None:
    handler = signal.getsignal(signal.SIGINT)
    try:
        assert signer_child.main(["signer_child"]) == 2
    finally:
        signal.signal(signal.SIGINT, handler)
    assert "READ_FD WRITE_FD" in capsys.readouterr().err


def test_the_child_program_imports_no_server_code() -> None:
    probe = "import sys, tokensmith.signer_child; print(sorted(m for m in sys.modules if m.startswith('tokensmith')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tokensmith', 'tokensmith.signer_child']"


# --- whether a server process gets a signer when the configuration leaves it open ---------------------------


@pytest.mark.parametrize(
    ("processes", "cpus", "wanted"),
    [(1, 2, True), (1, 8, True), (3, 4, True), (2, 2, False), (4, 2, False), (1, 1, False)],
)
def test_auto_gives_a_signer_only_while_processes_leave_a_cpu_free(processes: int, cpus: int, wanted: bool) -> None:
    assert auto_signer_process(processes, cpus) is wanted


@pytest.mark.parametrize(
    ("cpu_max", "cap"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1), ("100000 100000\n", 1), ("junk", None)],
)
def test_usable_cpus_honours_a_cgroup_quota(tmp_path: Path, cpu_max: str, cap: int | None) -> None:
    affinity = usable_cpus(tmp_path / "absent")
    cpu_max_file = tmp_path / "cpu.max"
    cpu_max_file.write_text(cpu_max)
    assert usable_cpus(cpu_max_file) == (affinity if cap is None else min(affinity, cap))


# --- KeyManager: which signatures go to the signer -----------------------------------------------------------


class CountingSigner(SignerProcess):
    def __init__(self) -> None:
        super().__init__(enabled=True)
        self.calls = 0

    async def sign_rs256(self, private_key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
        self.calls += 1
        return await super().sign_rs256(private_key, signing_input)


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[tuple[KeyManager, CountingSigner]]:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await store.initialize()
    signer = CountingSigner()
    try:
        manager = KeyManager(store, KeySettings(), signer=signer)
        await manager.load()
        yield manager, signer
    finally:
        signer.close()
        await store.close()


async def test_rsa_signatures_go_to_the_signer_and_match_inline_signing(
    counted: tuple[KeyManager, CountingSigner],
) -> None:
    keys, signer = counted
    token = await keys.sign_async(CLAIMS, alg="RS256", typ="at+jwt")
    assert signer.calls == 1
    assert signer.running
    # The same token as the inline path, which is joserfc's own output.
    assert token == keys.sign(CLAIMS, alg="RS256", typ="at+jwt")
    decoded = jwt.decode(token, public_keyset(keys.jwks()), algorithms=["RS256"])
    assert decoded.claims == CLAIMS
    assert decoded.header["typ"] == "at+jwt"


async def test_ecdsa_signatures_stay_on_the_event_loop(counted: tuple[KeyManager, CountingSigner]) -> None:
    keys, signer = counted
    token = await keys.sign_async(CLAIMS, alg="ES256")
    assert signer.calls == 0
    assert not signer.running
    assert jwt.decode(token, public_keyset(keys.jwks()), algorithms=["ES256"]).claims == CLAIMS


async def test_many_rsa_signatures_at_once_all_verify(counted: tuple[KeyManager, CountingSigner]) -> None:
    keys, signer = counted
    claims = [dict(CLAIMS, jti=f"j-{n}") for n in range(20)]
    tokens = await asyncio.gather(*(keys.sign_async(c, alg="RS256") for c in claims))
    assert signer.calls == 20
    jwks = public_keyset(keys.jwks())
    assert [jwt.decode(t, jwks, algorithms=["RS256"]).claims["jti"] for t in tokens] == [c["jti"] for c in claims]
