"""Serve a Python peer (the ceiling) the way `tokensmith serve` serves tokensmith: uvicorn with uvloop and tokensmith's
httptools protocol (tokensmith/server/http_protocol.py: one write per response), log level warning, and for more
than one process tokensmith's supervisor, with a listening socket per process
(tokensmith/server/worker_processes.py), so connections reach every process alike for both.

Usage: python -m bench.serve_python MODULE:APP PORT PROCESSES
"""

from __future__ import annotations

import sys

import uvicorn

from tokensmith.server.http_protocol import HTTP_PROTOCOL
from tokensmith.server.worker_processes import WorkerSpec, serve_processes


def main(argv: list[str]) -> None:
    app, port, processes = argv[0], int(argv[1]), int(argv[2])
    if processes == 1:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http=HTTP_PROTOCOL, loop="auto")
    else:
        spec = WorkerSpec(app=app, host="127.0.0.1", port=port, log_level="warning", http=HTTP_PROTOCOL)
        serve_processes(spec, processes)


if __name__ == "__main__":
    main(sys.argv[1:])
