"""The systems under test and the requests each is measured with.

A *system* is one running service (tokensmith, the Python ceiling, node oidc-provider) configured for one
signing algorithm and one process count. After it answers, it yields *targets*: a scenario (token exchange,
client credentials, ...) with the exact request wrk repeats, and a check that one such request really returns a
token of the measured algorithm for the right audience, so a fast error can never pass for a fast answer.

The DPoP-bound exchange (tokensmith only) cannot repeat one request: a proof is good once (its ``jti``), so each
request carries the next of a pool of fresh proofs, written before each load run (``Target.proofs``).
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import bcrypt
import httpx
import yaml
from joserfc import jwt
from joserfc.jwk import KeySet

from bench import signing
from bench.loadgen import Request
from bench.processes import Service, free_port
from tokensmith.client import DPoPKey
from tokensmith.server.key_encryption import new_key_text

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "bench" / "node"

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"

# The article's names: message-service exchanges a token for user-service into one for message-service.
EXCHANGE_CLIENT = ("message-service", "token")
SUBJECT_AUDIENCE = "user-service"
EXCHANGE_AUDIENCE = "message-service"
SCOPE = "message.read"
# Client credentials is measured with its own client, whose tokens are for an API of its own.
CREDENTIALS_CLIENT = ("reporting-job", "job-secret")
CREDENTIALS_AUDIENCE = "urn:bench:api"

EXCHANGE = "token-exchange"
# The same exchange with DPoP (RFC 9449), as in `tokensmith demo --dpop`: the subject token is bound to
# user-service's key, and message-service presents it with a proof by its own key (allowed by its policy's
# `dpop.bound-subject-token-clients`), so the exchanged token is bound to message-service's key.
EXCHANGE_DPOP = "token-exchange-dpop"
CLIENT_CREDENTIALS = "client-credentials"
CLIENT_AUTH = "client-auth"

TOKENSMITH = "tokensmith"
# tokensmith on PostgreSQL, the store the deployment guide recommends for several processes and replicas.
TOKENSMITH_POSTGRES = "tokensmith-postgres"
CEILING = "python-ceiling"
OIDC_PROVIDER = "oidc-provider"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


def exchange_body(subject_token: str) -> str:
    return urlencode(
        {"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token, "subject_token_type": JWT_TOKEN_TYPE}
    )


CREDENTIALS_BODY = urlencode({"grant_type": "client_credentials"})


@dataclass(frozen=True)
class Target:
    scenario: str
    system: str
    request: Request
    audience: str  # the `aud` the issued token must carry
    # DPoP: ``proofs(n)`` signs n fresh proofs for the request (each good once), and the issued token must be bound
    # to the key of thumbprint ``jkt``.
    proofs: Callable[[int], list[str]] | None = None
    jkt: str | None = None


@dataclass
class System:
    """One service of one kind, algorithm and process count, and how to measure it once it runs."""

    kind: str
    alg: str
    workers: int
    service: Service
    build_targets: Callable[[System], list[Target]]
    verification_keys: Callable[[System], KeySet]
    targets: list[Target] = field(default_factory=list)
    # Other processes whose CPU is part of serving this system's requests (its PostgreSQL server).
    helper_pids: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind} {self.alg} x{self.workers}"

    def start(self) -> None:
        self.service.start()

    def prepare(self) -> None:
        """Wait for the service, build its targets and check one real response of each."""
        self.service.wait_ready()
        self.targets = self.build_targets(self)
        keys = self.verification_keys(self)
        for target in self.targets:
            # A few times: with several worker processes, more than one of them should answer.
            for _ in range(2 * self.workers):
                check_response(target, keys, self.alg)


def check_response(target: Target, keys: KeySet, alg: str) -> None:
    request = target.request
    headers = {"Authorization": request.authorization, "Content-Type": "application/x-www-form-urlencoded"}
    if target.proofs is not None:
        headers["DPoP"] = target.proofs(1)[0]
    response = httpx.post(request.url, content=request.body, headers=headers, timeout=30)
    where = f"{target.system} {target.scenario}"
    if response.status_code != 200:
        raise RuntimeError(f"{where}: HTTP {response.status_code}: {response.text[:500]}")
    token = response.json().get("access_token")
    if not isinstance(token, str):
        raise RuntimeError(f"{where}: no access_token in {response.text[:500]}")
    decoded = jwt.decode(token, keys, algorithms=[alg])
    audience = decoded.claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if decoded.header.get("alg") != alg or target.audience not in audiences:
        raise RuntimeError(f"{where}: token has alg {decoded.header.get('alg')} and aud {audience}")
    if target.jkt is not None:
        cnf = decoded.claims.get("cnf")
        if response.json().get("token_type") != "DPoP" or not isinstance(cnf, dict) or cnf.get("jkt") != target.jkt:
            raise RuntimeError(f"{where}: the token is not bound to the proof's key (cnf {cnf})")


# ---------------------------------------------------------------------------------------------------- peers


def _peer_config(alg: str, workers: int, port: int) -> tuple[signing.SigningKey, dict[str, Any]]:
    key = signing.generate_key(alg)
    config = {
        "port": port,
        "workers": workers,
        "alg": alg,
        "issuer": f"http://127.0.0.1:{port}",
        "signing_jwk": signing.private_jwk(key),
        "clients": [
            {"client_id": EXCHANGE_CLIENT[0], "client_secret": EXCHANGE_CLIENT[1]},
            {"client_id": CREDENTIALS_CLIENT[0], "client_secret": CREDENTIALS_CLIENT[1]},
        ],
        "scope": SCOPE,
        "subject_audience": SUBJECT_AUDIENCE,
        "exchange_audience": EXCHANGE_AUDIENCE,
        "client_credentials_audience": CREDENTIALS_AUDIENCE,
    }
    return key, config


def token_targets(kind: str, token_url: str, subject_token: str) -> list[Target]:
    """The two loads every system serves the same way: the article's exchange and client credentials."""
    return [
        Target(
            EXCHANGE,
            kind,
            Request(token_url, body=exchange_body(subject_token), authorization=basic(*EXCHANGE_CLIENT)),
            EXCHANGE_AUDIENCE,
        ),
        Target(
            CLIENT_CREDENTIALS,
            kind,
            Request(token_url, body=CREDENTIALS_BODY, authorization=basic(*CREDENTIALS_CLIENT)),
            CREDENTIALS_AUDIENCE,
        ),
    ]


def _peer_targets(kind: str, token_path: str, key: signing.SigningKey) -> Callable[[System], list[Target]]:
    def build(system: System) -> list[Target]:
        url = system.service.base_url + token_path
        subject = signing.user_token(key, issuer=system.service.base_url, audience=SUBJECT_AUDIENCE)
        return token_targets(kind, url, subject)

    return build


def _static_keys(key: signing.SigningKey) -> Callable[[System], KeySet]:
    return lambda _system: KeySet([key])


def python_server_command(app: str, port: int, workers: int) -> list[str]:
    """The server `tokensmith serve --log-level=warning` runs, with the same settings and HTTP protocol
    (tokensmith/server/serving.py), for the ceiling app (bench/serve_python.py)."""
    return [sys.executable, "-m", "bench.serve_python", app, str(port), str(workers)]


def ceiling(alg: str, workers: int, workdir: Path) -> System:
    port = free_port()
    key, config = _peer_config(alg, workers, port)
    config_path = workdir / f"ceiling-{alg}-{workers}.json"
    config_path.write_text(json.dumps(config))
    service = Service(
        f"{CEILING}-{alg}-{workers}",
        python_server_command("bench.ceiling.app:app", port, workers),
        port=port,
        ready_path="/",
        log_path=workdir / f"ceiling-{alg}-{workers}.log",
        env={"BENCH_CEILING_CONFIG": str(config_path)},
        cwd=REPO,
    )
    return System(CEILING, alg, workers, service, _peer_targets(CEILING, "/oauth2/token", key), _static_keys(key))


def oidc_provider(alg: str, workers: int, workdir: Path) -> System:
    port = free_port()
    key, config = _peer_config(alg, workers, port)
    config_path = workdir / f"oidc-provider-{alg}-{workers}.json"
    config_path.write_text(json.dumps(config))
    service = Service(
        f"{OIDC_PROVIDER}-{alg}-{workers}",
        ["node", str(NODE_DIR / "server.mjs"), str(config_path)],
        port=port,
        ready_path="/.well-known/openid-configuration",
        log_path=workdir / f"oidc-provider-{alg}-{workers}.log",
        env={"NODE_ENV": "production"},
        cwd=NODE_DIR,
    )
    return System(OIDC_PROVIDER, alg, workers, service, _peer_targets(OIDC_PROVIDER, "/token", key), _static_keys(key))


# ---------------------------------------------------------------------------------------------------- tokensmith

# Client authentication variants: the same client credentials request, with the secret stored three ways.
HASHED_CLIENTS = {
    "{noop}": ("job-noop", "noop-secret"),
    "{bcrypt}": ("job-bcrypt", "bcrypt-secret"),
    "{argon2}": ("job-argon2", "argon2-secret"),
}


def _encoded_secret(scheme: str, secret: str) -> str:
    if scheme == "{bcrypt}":
        return "{bcrypt}" + bcrypt.hashpw(secret.encode(), bcrypt.gensalt()).decode()
    if scheme == "{argon2}":
        from tokensmith.server.core.passwords import hash_password

        return hash_password(secret)
    return "{noop}" + secret


def tokensmith_config(alg: str, port: int, database_url: str, *, client_auth_variants: bool) -> dict[str, Any]:
    def client(client_id: str, secret: str, grants: list[str]) -> dict[str, Any]:
        return {
            "registration": {
                "client-id": client_id,
                "client-secret": secret,
                "client-authentication-methods": ["client_secret_basic"],
                "authorization-grant-types": grants,
                "scopes": [SCOPE],
            }
        }

    clients = {
        # Holds the subject tokens: client credentials tokens for user-service, as a user's token would be.
        "user-service": client("user-service", "{noop}user-secret", ["client_credentials"]),
        # Its policy lets it exchange user-service's DPoP-bound tokens with a proof by its own key (EXCHANGE_DPOP).
        "message-service": client(EXCHANGE_CLIENT[0], "{noop}" + EXCHANGE_CLIENT[1], [TOKEN_EXCHANGE])
        | {"token-exchange": {"dpop": {"bound-subject-token-clients": ["user-service"]}}},
        CREDENTIALS_CLIENT[0]: client(CREDENTIALS_CLIENT[0], "{noop}" + CREDENTIALS_CLIENT[1], ["client_credentials"])
        | {"audiences": [CREDENTIALS_AUDIENCE]},
    }
    if client_auth_variants:
        for scheme, (client_id, secret) in HASHED_CLIENTS.items():
            clients[client_id] = client(client_id, _encoded_secret(scheme, secret), ["client_credentials"]) | {
                "audiences": [CREDENTIALS_AUDIENCE]
            }
    return {
        "issuer": f"http://127.0.0.1:{port}",
        "host": "127.0.0.1",
        "port": port,
        "database-url": database_url,
        # A fresh key-encryption key per run (PostgreSQL needs one configured; SQLite would make a file).
        "keys": {"access-token-algorithm": alg, "encryption-key": new_key_text()},
        "clients": clients,
    }


def tokensmith(
    alg: str,
    workers: int,
    workdir: Path,
    *,
    client_auth_variants: bool = False,
    database_url: str | None = None,
    database_pid: int | None = None,
) -> System:
    """tokensmith on a SQLite file of its own, or on ``database_url`` (PostgreSQL: the `tokensmith-postgres`
    system, whose CPU figure includes the database server's, ``database_pid``)."""
    kind = TOKENSMITH if database_url is None else TOKENSMITH_POSTGRES
    port = free_port()
    name = f"{kind}-{alg}-{workers}"
    if database_url is None:
        database_url = f"sqlite+aiosqlite:///{workdir / f'{name}.db'}"
    config = tokensmith_config(alg, port, database_url, client_auth_variants=client_auth_variants)
    config_path = workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    service = Service(
        name,
        [
            str(Path(sys.executable).parent / "tokensmith"),
            "serve",
            f"--config={config_path}",
            f"--workers={workers}",
            "--log-level=warning",
        ],
        port=port,
        ready_path="/.well-known/openid-configuration",
        log_path=workdir / f"{name}.log",
        cwd=workdir,
    )

    def build(system: System) -> list[Target]:
        url = system.service.base_url + "/oauth2/token"
        subject = _tokensmith_subject_token(url)
        targets = token_targets(kind, url, subject)
        if kind == TOKENSMITH:
            targets.append(_dpop_exchange_target(url, workdir / f"{name}-dpop-proofs.txt"))
        if client_auth_variants:
            for scheme, credentials in HASHED_CLIENTS.items():
                request = Request(url, body=CREDENTIALS_BODY, authorization=basic(*credentials))
                targets.append(Target(CLIENT_AUTH, f"{TOKENSMITH} {scheme}", request, CREDENTIALS_AUDIENCE))
        return targets

    def keys(system: System) -> KeySet:
        jwks = httpx.get(system.service.base_url + "/oauth2/jwks", timeout=10).json()
        return KeySet.import_key_set(jwks)

    helpers = () if database_pid is None else (database_pid,)
    return System(kind, alg, workers, service, build, keys, helper_pids=helpers)


def _dpop_exchange_target(token_url: str, proofs_file: Path) -> Target:
    """The article's exchange with DPoP: a subject token bound to user-service's key, presented by message-service
    with proofs by its own key."""
    subject = _tokensmith_subject_token(token_url, dpop=DPoPKey())
    exchanger_key = DPoPKey()
    request = Request(
        token_url,
        body=exchange_body(subject),
        authorization=basic(*EXCHANGE_CLIENT),
        dpop_proofs_file=str(proofs_file),
    )
    return Target(
        EXCHANGE_DPOP,
        TOKENSMITH,
        request,
        EXCHANGE_AUDIENCE,
        proofs=partial(_proofs, exchanger_key, token_url),
        jkt=exchanger_key.jkt,
    )


def _proofs(key: DPoPKey, token_url: str, count: int) -> list[str]:
    return [key.proof("POST", token_url) for _ in range(count)]


def _tokensmith_subject_token(token_url: str, dpop: DPoPKey | None = None) -> str:
    """user-service's client-credentials token (for user-service), bound to ``dpop`` when given."""
    headers = {"DPoP": dpop.proof("POST", token_url)} if dpop is not None else None
    response = httpx.post(
        token_url,
        data={"grant_type": "client_credentials"},
        headers=headers,
        auth=("user-service", "user-secret"),
        timeout=30,
    )
    if response.status_code != 200:
        raise RuntimeError(f"tokensmith: cannot get a subject token: HTTP {response.status_code} {response.text[:300]}")
    return str(response.json()["access_token"])
