"""Running the scripts of interop/node (npm openid-client 6 and oauth4webapi 3) and reading their one-JSON-line steps:
peer.mjs (every grant, bearer tokens) and dpop.mjs (DPoP-bound tokens and a DPoP-protected service)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop.tooling import INTEROP_DIR

NODE_DIR = INTEROP_DIR / "node"
RUN_TIMEOUT_S = 90


@dataclass(frozen=True)
class Step:
    peer: str
    step: str
    ok: bool
    detail: Any

    def describe(self) -> str:
        return f"[{self.peer}] step {self.step}: {'ok' if self.ok else 'FAILED'}: {json.dumps(self.detail)}"


def install(npm: str) -> None:
    """``npm ci`` from the committed lock file when node_modules is missing or older than the lock."""
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"[node] npm ci failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")


def run_peer(node: str, config: dict[str, Any], scratch: Path, script: str = "peer.mjs") -> dict[str, Step]:
    """Run every step of ``script`` against ``config['issuer']``; the steps by name (``peer`` distinguishes the
    libraries)."""
    config_path = scratch / f"node-{script}-config.json"
    config_path.write_text(json.dumps(config))
    result = subprocess.run(
        [node, str(NODE_DIR / script), str(config_path)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    steps: dict[str, Step] = {}
    for line in result.stdout.splitlines():
        raw = json.loads(line)
        steps[raw["step"]] = Step(raw["peer"], raw["step"], raw["ok"], raw["detail"])
    if result.returncode != 0 or not steps:
        raise AssertionError(f"[node] {script} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return steps
