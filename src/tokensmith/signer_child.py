"""The signer process's program, and the wire format it shares with :mod:`tokensmith.signer_process`.

Run as ``python -m tokensmith.signer_child READ_FD WRITE_FD`` by the server process it serves, never by hand. It
reads frames from READ_FD, makes the RSA signatures they ask for, in order, and writes one reply per signature to
WRITE_FD. It imports nothing of tokensmith's beyond this module (and ``tokensmith/__init__``, which is empty), so it
starts in a fraction of the server's time and memory.

Frames from the server: :data:`REQUEST` (kind, key number, payload length), then the payload.

- :data:`LOAD_KEY`: the payload is an RSA private key (PKCS#8 DER), known from then on by its number.
- :data:`SIGN`: the payload is a JWS signing input; the reply is its RS256 signature (RSASSA-PKCS1-v1_5, SHA-256)
  with the numbered key.
- :data:`FORGET_KEYS`: drop every loaded key (no payload); the server sends its keys again when it next uses them.

Replies: :data:`REPLY` (status, payload length), then the payload: the signature (:data:`SIGNED`), or a short
reason (:data:`FAILED`), on which the server makes that signature itself and so gets the real error.

Results are written in batches of at most :data:`REPLY_BATCH`: one write, and one wake-up of the server's event
loop, for several signatures, while the first of a batch waits for no more than a few others.

The program ends when READ_FD reaches its end (the server closed it or exited) or the server stops reading
(a broken pipe), and on a malformed frame, which only a bug in the server can send.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REQUEST: Final = struct.Struct("<BII")
REPLY: Final = struct.Struct("<BI")
LOAD_KEY: Final = 1
SIGN: Final = 2
FORGET_KEYS: Final = 3
SIGNED: Final = 0
FAILED: Final = 1
# The largest payload a frame may carry. A signing input is a token's header and claims, a few KiB at most; the
# server signs anything larger itself.
MAX_PAYLOAD: Final = 1 << 20
REPLY_BATCH: Final = 8
_READ_SIZE: Final = 1 << 16

_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


def sign_rs256(private_key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
    """RS256 (RFC 7518 3.3): what the server computes itself when the signer process cannot."""
    return private_key.sign(signing_input, _PKCS1V15, _SHA256)


def _load_key(der: bytes) -> rsa.RSAPrivateKey | str:
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError:
        return "the key does not load"
    return key if isinstance(key, rsa.RSAPrivateKey) else "not an RSA key"


def _sign(keys: dict[int, rsa.RSAPrivateKey | str], number: int, signing_input: bytes) -> bytes:
    key = keys.get(number, "unknown key number")
    if isinstance(key, str):
        reason = key.encode()
        return REPLY.pack(FAILED, len(reason)) + reason
    try:
        signature = sign_rs256(key, signing_input)
    except Exception as exc:  # reported, not fatal: the server signs again itself and raises the real error
        reason = type(exc).__name__.encode()
        return REPLY.pack(FAILED, len(reason)) + reason
    return REPLY.pack(SIGNED, len(signature)) + signature


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(read_fd: int, write_fd: int) -> int:
    """Answer frames until the server goes away; the exit status (0, or 2 for a malformed frame)."""
    keys: dict[int, rsa.RSAPrivateKey | str] = {}
    buffer = bytearray()
    while True:
        chunk = os.read(read_fd, _READ_SIZE)
        if not chunk:
            return 0
        buffer += chunk
        replies: list[bytes] = []
        offset = 0
        while len(buffer) - offset >= REQUEST.size:
            kind, number, size = REQUEST.unpack_from(buffer, offset)
            if size > MAX_PAYLOAD or kind not in (LOAD_KEY, SIGN, FORGET_KEYS):
                return 2
            end = offset + REQUEST.size + size
            if end > len(buffer):
                break
            payload = bytes(buffer[offset + REQUEST.size : end])
            offset = end
            if kind == LOAD_KEY:
                keys[number] = _load_key(payload)
            elif kind == FORGET_KEYS:
                keys.clear()
            else:
                replies.append(_sign(keys, number, payload))
                if len(replies) == REPLY_BATCH:
                    _write_all(write_fd, b"".join(replies))
                    replies.clear()
        del buffer[:offset]
        if replies:
            _write_all(write_fd, b"".join(replies))


def main(argv: list[str]) -> int:
    # A terminal's Ctrl-C reaches the whole process group: the server decides when its signer stops (it closes
    # the pipe), so the signer neither dies first nor prints a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(argv) != 3:
        print(
            "usage: python -m tokensmith.signer_child READ_FD WRITE_FD (started by tokensmith serve)", file=sys.stderr
        )
        return 2
    try:
        return serve(int(argv[1]), int(argv[2]))
    except (BrokenPipeError, ConnectionResetError):  # the server stopped reading: it is shutting down
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
