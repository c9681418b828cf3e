"""Drive one target with Debian's ``wrk`` and read back its counts and latency percentiles.

``bench/lua/request.lua`` shapes the request from environment variables and prints one ``BENCH_JSON`` line from
wrk's ``done()`` hook, so nothing depends on wrk's human-readable summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).parent / "lua" / "request.lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class Request:
    """What every connection sends, over and over, during one load run."""

    url: str
    method: str = "POST"
    body: str = ""
    authorization: str = ""
    expect: str = "access_token"
    # Bearer tokens, one a line, sent in turn instead of ``authorization`` (see bench/lua/request.lua).
    tokens_file: str = ""
    # DPoP proofs, one a line, one per request in a ``DPoP`` header (POST only): each proof is good once.
    dpop_proofs_file: str = ""


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(request: Request, *, connections: int, duration_s: float, threads: int = 1) -> LoadResult:
    """One fixed-duration run at ``connections`` keep-alive connections."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    env = dict(os.environ)
    env.update(
        BENCH_METHOD=request.method,
        BENCH_BODY=request.body,
        BENCH_AUTHORIZATION=request.authorization,
        BENCH_EXPECT=request.expect,
        BENCH_TOKENS_FILE=request.tokens_file,
        BENCH_DPOP_FILE=request.dpop_proofs_file,
    )
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration_s))}s",
        "--timeout=10s",
        "--latency",
        f"--script={LUA_SCRIPT}",
        request.url,
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or completed.stdout}")
    return parse_wrk_output(completed.stdout)


def parse_wrk_output(stdout: str) -> LoadResult:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            latency = data["latency_us"]
            return LoadResult(
                requests=int(data["requests"]),
                duration_s=int(data["duration_us"]) / 1e6,
                errors={name: int(count) for name, count in data["errors"].items()},
                p50_ms=latency["p50"] / 1000,
                p90_ms=latency["p90"] / 1000,
                p99_ms=latency["p99"] / 1000,
                max_ms=latency["max"] / 1000,
            )
    raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{stdout}")
