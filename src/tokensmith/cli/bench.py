"""``tokensmith bench``: run the benchmark of a source checkout (the same as ``make bench``).

The benchmark (``bench/`` at the top of the repository: the runner, the wrk scripts and the peers it measures
tokensmith against) is not part of the installed package, so this command looks for the checkout that this
package was installed from (an editable install) or the current directory, and runs ``python -m bench`` there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

RUNNER = Path("bench") / "run.py"


def find_checkout(*starts: Path) -> Path | None:
    """The nearest directory at or above one of ``starts`` that holds ``bench/run.py``."""
    for start in starts:
        for directory in (start, *start.parents):
            if (directory / RUNNER).is_file():
                return directory
    return None


# Module-level option objects: typer reads them from the signature's defaults.
QUICK = typer.Option(False, "--quick", help="The under-a-minute smoke run (ES256, 1 process, 1 s each).")
ALGORITHMS = typer.Option([], "--alg", help="ES256 or RS256; repeatable (default: both).")
WORKERS = typer.Option([], "--workers", help="Process counts; repeatable (default: 1 and 2).")
SYSTEMS = typer.Option(
    [],
    "--systems",
    help="tokensmith, python-ceiling, oidc-provider, tokensmith-postgres; repeatable "
    "(default: all but tokensmith-postgres).",
)
DURATION = typer.Option(None, "--duration", help="Seconds per load run.")
ROUNDS = typer.Option(None, "--rounds", help="Alternating rounds.")
OUT = typer.Option(None, "--out", help="Directory for latest.{md,json,png} (default: bench/results).")
NO_E2E = typer.Option(False, "--no-e2e", help="Skip the article's flow end to end.")


def bench(
    quick: bool = QUICK,
    alg: list[str] = ALGORITHMS,
    workers: list[int] = WORKERS,
    systems: list[str] = SYSTEMS,
    duration: float | None = DURATION,
    rounds: int | None = ROUNDS,
    out: Path | None = OUT,
    no_e2e: bool = NO_E2E,
) -> None:
    """Measure tokensmith against a minimal Python endpoint and node oidc-provider (docs/performance.md)."""
    checkout = find_checkout(Path(__file__).resolve().parent, Path.cwd())
    if checkout is None:
        typer.echo("tokensmith: the benchmark needs a source checkout (bench/run.py); run it from one", err=True)
        raise typer.Exit(2)
    arguments = ["--quick"] if quick else []
    arguments += [f"--alg={a}" for a in alg] + [f"--workers={w}" for w in workers]
    arguments += [f"--systems={s}" for s in systems]
    if duration is not None:
        arguments.append(f"--duration={duration}")
    if rounds is not None:
        arguments.append(f"--rounds={rounds}")
    if out is not None:
        arguments.append(f"--out={out.resolve()}")
    if no_e2e:
        arguments.append("--no-e2e")
    completed = subprocess.run([sys.executable, "-m", "bench", *arguments], cwd=checkout, check=False)
    raise typer.Exit(completed.returncode)
