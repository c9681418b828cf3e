"""``tokensmith demo``: start the article's four services, or with ``--check`` run its flow headless and exit.

``--dpop`` runs the DPoP variant: the same flow with every token bound to its holder's key (RFC 9449).

The demo's modules (FastAPI, uvicorn, the authorization server) are imported when the command runs: they come with
the ``[demo]`` extra, which the rest of the command line does not need.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

import typer

from tokensmith.cli.common import fail
from tokensmith.errors import ConfigError

if TYPE_CHECKING:
    from tokensmith.demo.runner import DemoSystem
    from tokensmith.demo.topology import Topology


def demo(
    host: str = typer.Option("127.0.0.1", help="Address the four services bind (URLs say localhost for loopback)."),
    as_port: int = typer.Option(
        9001, "--as-port", help="Authorization server port (the issuer is http://localhost:PORT)."
    ),
    client_port: int = typer.Option(8080, "--client-port", help="Client app port."),
    user_port: int = typer.Option(8081, "--user-port", help="user-service port."),
    message_port: int = typer.Option(8082, "--message-port", help="message-service port."),
    check: bool = typer.Option(
        False, "--check", help="Run the flow headless (no browser), print each step, exit 0 when all hold."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Authorization server database (default: SQLite file tokensmith-demo.db here)."
    ),
    dpop: bool = typer.Option(
        False, "--dpop", help="The DPoP variant: every token in the flow is bound to its holder's key (RFC 9449)."
    ),
) -> None:
    """Run the article's system: authorization server, client app, user-service and message-service."""
    try:
        from tokensmith.demo.runner import StartupError
        from tokensmith.demo.topology import PortInUseError, Topology
    except ImportError as exc:
        raise fail(f"the demo is not installed ({exc.name} missing): pip install 'tokensmith[demo]'") from None
    topology = Topology(host, as_port, client_port, user_port, message_port)
    try:
        code = asyncio.run(_main(topology, database_url, check, dpop))
    except (PortInUseError, StartupError, ConfigError) as exc:
        typer.echo(f"tokensmith demo: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


async def _main(topology: Topology, database_url: str | None, check: bool, dpop: bool) -> int:
    from tokensmith.demo.runner import DemoSystem, banner

    # Handlers first: a Ctrl-C that lands while the services start (or right after the banner) still stops cleanly.
    interrupted = _interrupt_event()
    system = DemoSystem(topology, database_url=database_url, dpop=dpop)
    await system.start()
    try:
        if check:
            return await _check(system)
        typer.echo(banner(system))
        await _serve_until(system, interrupted)
        typer.echo("stopped all four services")
        return 0
    finally:
        await system.stop()


async def _check(system: DemoSystem) -> int:
    from tokensmith.demo.check import FlowCheck, StepResult

    def report(result: StepResult) -> None:
        typer.echo(result.line())

    variant = " (DPoP variant)" if system.dpop else ""
    typer.echo(
        f"checking the article's flow{variant} against {system.topology.client_url} (issuer {system.topology.issuer})"
    )
    passed = await FlowCheck(system.topology, dpop=system.dpop).run(report)
    typer.echo("check passed" if passed else "check FAILED")
    return 0 if passed else 1


def _interrupt_event() -> asyncio.Event:
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not everywhere: Windows has no loop signal handlers (NotImplementedError), and a loop outside the main
        # thread may not install them (RuntimeError). There Ctrl-C raises KeyboardInterrupt, which asyncio.run
        # handles, and the demo stops all the same.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    return interrupted


async def _serve_until(system: DemoSystem, interrupted: asyncio.Event) -> None:
    waiter = asyncio.create_task(interrupted.wait())
    serving = asyncio.create_task(system.wait())
    await asyncio.wait({waiter, serving}, return_when=asyncio.FIRST_COMPLETED)
    for task in (waiter, serving):
        task.cancel()
    sys.stdout.flush()
