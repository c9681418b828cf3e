"""What the numbers were measured on: CPU, cores, memory, and the versions of everything that ran."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

NODE_PACKAGES = ("oidc-provider", "jose")
PYTHON_PACKAGES = ("tokensmith", "joserfc", "cryptography", "uvicorn", "starlette", "uvloop", "httptools")


def describe(node_dir: Path) -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(_memory_bytes() / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "node": _command_version(["node", "--version"]),
        "wrk": _command_version(["wrk", "--version"]),
        "python_packages": {name: _python_version(name) for name in PYTHON_PACKAGES},
        "node_packages": {name: _node_version(node_dir, name) for name in NODE_PACKAGES},
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def summary_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, {machine['os']}; "
        f"Python {machine['python']}, node {machine['node']}, "
        f"oidc-provider {machine['node_packages'].get('oidc-provider')}, "
        f"joserfc {machine['python_packages'].get('joserfc')}, uvicorn {machine['python_packages'].get('uvicorn')}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _command_version(command: list[str]) -> str | None:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `wrk --version` prints "wrk 4.1.0 [epoll] Copyright ..." and exits 1.
    first = (completed.stdout or completed.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0].strip() if first else None


def _python_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _node_version(node_dir: Path, name: str) -> str | None:
    try:
        return str(json.loads((node_dir / "node_modules" / name / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None
