"""Serve a Python peer (the ceiling) exactly as `tokensmith serve` serves tokensmith: the same uvicorn settings and
HTTP protocol (tokensmith/server/serving.py), log level warning, and for more than one process uvicorn's supervisor.

Usage: python -m bench.serve_python MODULE:APP PORT PROCESSES
"""

from __future__ import annotations

import sys

from tokensmith.server.serving import run, uvicorn_options


def main(argv: list[str]) -> None:
    app, port, processes = argv[0], int(argv[1]), int(argv[2])
    run(app, host="127.0.0.1", port=port, workers=processes, **uvicorn_options(log_level="warning"))


if __name__ == "__main__":
    main(sys.argv[1:])
