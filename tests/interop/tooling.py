"""Finding the external tools a peer needs (java, mvn, node, npm), skipping locally and failing under CI."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from tests.support.components import missing_component

REPO_ROOT = Path(__file__).resolve().parents[2]
INTEROP_DIR = REPO_ROOT / "interop"


def require_tools(*names: str) -> dict[str, str]:
    """The path of each named executable; a missing one skips the test (fails it when CI=true)."""
    found: dict[str, str] = {}
    for name in names:
        path = shutil.which(name)
        if path is None:
            missing_component(f"{name} is not installed (needed by an interop peer)")
        found[name] = path
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
