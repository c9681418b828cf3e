"""Run one of the demo's resource services (user-service or message-service) alone, for the end-to-end bench.

``python -m bench.e2e_service user-service --as-port A --user-port U --message-port M`` builds the service from
the demo's shipped configuration re-pointed at those ports (exactly as ``tokensmith demo`` does) and serves it
with uvicorn and tokensmith's HTTP protocol, as ``tokensmith demo`` serves it, on 127.0.0.1, in its own process,
as a deployed service would run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from tokensmith.demo.message_service import create_message_service
from tokensmith.demo.settings import load_message_service_settings, load_user_service_settings
from tokensmith.demo.topology import Topology
from tokensmith.demo.user_service import create_user_service
from tokensmith.server.serving import uvicorn_options

SERVICES = ("user-service", "message-service")


def topology(as_port: int, user_port: int, message_port: int) -> Topology:
    # The client app is not started: its port only has to differ from the others.
    return Topology(host="127.0.0.1", as_port=as_port, client_port=0, user_port=user_port, message_port=message_port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_service")
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--as-port", type=int, required=True)
    parser.add_argument("--user-port", type=int, required=True)
    parser.add_argument("--message-port", type=int, required=True)
    args = parser.parse_args(argv)
    where = topology(args.as_port, args.user_port, args.message_port)
    if args.service == "user-service":
        app = create_user_service(load_user_service_settings(where))
        port = args.user_port
    else:
        app = create_message_service(load_message_service_settings(where))
        port = args.message_port
    uvicorn.run(app, host="127.0.0.1", port=port, **uvicorn_options(log_level="warning"))


if __name__ == "__main__":
    main()
