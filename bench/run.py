"""`make bench`: measure tokensmith against the minimal-Python ceiling and node oidc-provider, side by side.

For each signing algorithm and process count, the three systems run at once on 127.0.0.1 and are loaded in
turn, one at a time, round after round, with the order rotated each round; each figure is the median of its
rounds. A slow patch of a shared machine therefore hits every system alike and the ratios hold.
Then the in-process validation loop, then the article's flow end to end. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import postgres

from bench import e2e, machine, report, systems, validation
from bench.loadgen import LoadResult, run_wrk, wrk_path
from bench.processes import RssSampler, tree_cpu_seconds

RESULTS = systems.REPO / "bench" / "results"
ALL_SYSTEMS = (systems.TOKENSMITH, systems.TOKENSMITH_POSTGRES, systems.CEILING, systems.OIDC_PROVIDER)
# tokensmith on PostgreSQL only on request (--systems tokensmith-postgres): it is measured in a group of its own,
# after the others, so that the database server's background work (autovacuum, checkpoints after the load) never
# runs during another system's measurement.
DEFAULT_SYSTEMS = (systems.TOKENSMITH, systems.CEILING, systems.OIDC_PROVIDER)
# Fresh DPoP proofs written for each run of the DPoP-bound exchange, per second of load: above any exchange rate
# measured here (a run that outpaced it would reuse proofs and show the refusals as errors).
DPOP_PROOFS_PER_SECOND = 5000


@dataclass(frozen=True)
class Settings:
    quick: bool
    algorithms: tuple[str, ...]
    workers: tuple[int, ...]
    kinds: tuple[str, ...]
    connections: int
    duration_s: float
    warmup_s: float
    rounds: int
    validation_s: float
    end_to_end: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        quick = bool(args.quick)
        return cls(
            quick=quick,
            algorithms=tuple(args.alg or (["ES256"] if quick else ["ES256", "RS256"])),
            workers=tuple(args.workers or ([1] if quick else [1, 2])),
            kinds=tuple(args.systems or DEFAULT_SYSTEMS),
            connections=args.connections,
            duration_s=args.duration or (1.0 if quick else 2.0),
            warmup_s=0.0 if quick else 1.0,
            rounds=args.rounds or (1 if quick else 5),
            validation_s=0.2 if quick else 1.0,
            end_to_end=not args.no_e2e,
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: ES256, 1 process, 1 s per system")
    parser.add_argument("--alg", action="append", choices=["ES256", "RS256"], help="repeatable; default both")
    parser.add_argument("--workers", action="append", type=int, help="process counts, repeatable; default 1 and 2")
    parser.add_argument(
        "--systems",
        action="append",
        choices=ALL_SYSTEMS,
        help="repeatable; default all but tokensmith-postgres",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, help="seconds per load run (default 2, quick 1)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5, quick 1)")
    parser.add_argument("--no-e2e", action="store_true", help="skip the article's flow end to end")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.{md,json,png}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_args(args)
    try:
        check_prerequisites(settings)
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    print(f"bench: {describe_plan(settings)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tokensmith-bench-") as tmp:
        workdir = Path(tmp)
        try:
            runs, memory = measure_http(settings, workdir)
            validations = validation.measure(settings.algorithms, seconds=settings.validation_s, rounds=settings.rounds)
            flows = (
                e2e.measure(
                    workdir,
                    algorithms=settings.algorithms,
                    connections=settings.connections,
                    duration_s=settings.duration_s,
                    rounds=settings.rounds,
                )
                if settings.end_to_end and systems.TOKENSMITH in settings.kinds
                else []
            )
        except RuntimeError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
    results = report.build(
        machine=machine.describe(systems.NODE_DIR),
        settings=dataclasses.asdict(settings),
        runs=runs,
        memory=memory,
        validations=validations,
        flows=flows,
        elapsed_s=time.monotonic() - started,
    )
    paths = report.write(results, args.out)
    print(report.markdown(results))
    print("bench: wrote " + ", ".join(str(path) for path in paths))
    return 0


def check_prerequisites(settings: Settings) -> None:
    if wrk_path() is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    if importlib.util.find_spec("matplotlib") is None:
        raise RuntimeError("matplotlib is not installed (pip install -e '.[bench]') for the chart")
    if systems.TOKENSMITH_POSTGRES in settings.kinds:
        try:
            postgres.find_bin_dir()
        except postgres.PostgresUnavailable as exc:
            raise RuntimeError(f"{exc}; or leave out --systems {systems.TOKENSMITH_POSTGRES}") from None
    if systems.OIDC_PROVIDER in settings.kinds:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("node and npm are not installed (needed for the oidc-provider peer)")
        if not (systems.NODE_DIR / "node_modules" / "oidc-provider").is_dir():
            print("bench: installing the oidc-provider peer (npm ci)", flush=True)
            installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=systems.NODE_DIR, check=False)
            if installed.returncode != 0:
                raise RuntimeError(f"npm ci failed in {systems.NODE_DIR} (exit {installed.returncode})")


def describe_plan(settings: Settings) -> str:
    groups = len(settings.algorithms) * len(settings.workers)
    # Two scenarios per system, tokensmith's DPoP-bound exchange, and the three client-authentication variants in
    # the first group.
    targets = groups * len(settings.kinds) * 2
    targets += groups + 3 if systems.TOKENSMITH in settings.kinds else 0
    flows = 2 * len(settings.algorithms) if settings.end_to_end and systems.TOKENSMITH in settings.kinds else 0
    seconds = targets * (settings.rounds * settings.duration_s + settings.warmup_s)
    seconds += flows * settings.rounds * settings.duration_s
    return (
        f"{'quick' if settings.quick else 'full'} run: {groups} group(s) of {len(settings.kinds)} systems, "
        f"{settings.rounds} round(s) x {settings.duration_s:.0f} s at {settings.connections} connections; "
        f"about {seconds / 60:.1f} min of load, plus start-up and the validation loop"
    )


def measure_http(settings: Settings, workdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    runs: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    first_group = True
    with postgres_server(settings) as cluster:
        for alg in settings.algorithms:
            for workers in settings.workers:
                # A fresh PostgreSQL database per group, as each SQLite system gets a fresh file.
                database = (
                    (
                        asyncio.run(postgres.create_database(cluster.url, postgres.new_database_name("bench_"))),
                        cluster.server_pid(),
                    )
                    if cluster
                    else None
                )
                group = build_group(
                    settings, alg, workers, workdir, client_auth_variants=first_group, database=database
                )
                first_group = False
                # The PostgreSQL system alone, after the others (see DEFAULT_SYSTEMS).
                alone = [system for system in group if system.kind == systems.TOKENSMITH_POSTGRES]
                together = [system for system in group if system.kind != systems.TOKENSMITH_POSTGRES]
                for measured in (together, alone):
                    if measured:
                        runs.extend(measure_group(settings, measured))
                memory.extend(
                    {
                        "system": s.kind,
                        "alg": alg,
                        "workers": workers,
                        "peak_rss_mb": round(s.service.peak_rss / 2**20, 1),
                    }
                    for s in group
                )
    return runs, memory


@contextlib.contextmanager
def postgres_server(settings: Settings) -> Iterator[postgres.TemporaryCluster | None]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 for the `tokensmith-postgres` system (tests/support/postgres.py:
    fsync off, as in the tests; the figures measure tokensmith's work, not a disk), stopped afterwards."""
    if systems.TOKENSMITH_POSTGRES not in settings.kinds:
        yield None
        return
    try:
        cluster = postgres.start_temporary_cluster()
    except postgres.PostgresUnavailable as exc:
        raise RuntimeError(f"PostgreSQL did not start: {exc}") from None
    try:
        yield cluster
    finally:
        cluster.stop()


def build_group(
    settings: Settings,
    alg: str,
    workers: int,
    workdir: Path,
    *,
    client_auth_variants: bool,
    database: tuple[str, int] | None = None,
) -> list[systems.System]:
    """The systems of one group; ``database``: the PostgreSQL URL and server PID for tokensmith-postgres."""
    group: list[systems.System] = []
    for kind in settings.kinds:
        if kind == systems.TOKENSMITH:
            group.append(systems.tokensmith(alg, workers, workdir, client_auth_variants=client_auth_variants))
        elif kind == systems.TOKENSMITH_POSTGRES:
            if database is None:
                raise RuntimeError("no PostgreSQL database for the tokensmith-postgres system")
            url, server_pid = database
            group.append(systems.tokensmith(alg, workers, workdir, database_url=url, database_pid=server_pid))
        elif kind == systems.CEILING:
            group.append(systems.ceiling(alg, workers, workdir))
        else:
            group.append(systems.oidc_provider(alg, workers, workdir))
    return group


def measure_group(settings: Settings, group: list[systems.System]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    try:
        for system in group:
            system.start()
        for system in group:
            system.prepare()
        services = {id(target): system for system in group for target in system.targets}
        targets = [target for system in group for target in system.targets]
        print(f"bench: measuring {', '.join(system.label for system in group)}", flush=True)
        if settings.warmup_s:
            for target in targets:
                write_proofs(target, settings.warmup_s)
                run_wrk(target.request, connections=settings.connections, duration_s=settings.warmup_s)
        for round_index in range(settings.rounds):
            for scenario in dict.fromkeys(target.scenario for target in targets):
                in_scenario = [target for target in targets if target.scenario == scenario]
                shift = round_index % len(in_scenario)
                for target in in_scenario[shift:] + in_scenario[:shift]:
                    system = services[id(target)]
                    write_proofs(target, settings.duration_s)
                    cpu_before = system_cpu_seconds(system)
                    with RssSampler([system.service]):
                        result = run_wrk(
                            target.request, connections=settings.connections, duration_s=settings.duration_s
                        )
                    cpu_seconds = system_cpu_seconds(system) - cpu_before
                    runs.append(run_record(target, system, round_index, result, cpu_seconds))
                    print(f"bench:   {format_run(runs[-1])}", flush=True)
    finally:
        for system in group:
            system.service.stop()
    return runs


def write_proofs(target: systems.Target, duration_s: float) -> None:
    """For a DPoP target: a pool of fresh proofs for one run of ``duration_s`` (each proof is good once, and only
    for a minute: written right before the run)."""
    if target.proofs is None:
        return
    seconds = max(1, round(duration_s)) + 1  # wrk runs whole seconds
    proofs = target.proofs(DPOP_PROOFS_PER_SECOND * seconds)
    Path(target.request.dpop_proofs_file).write_text("\n".join(proofs) + "\n")


def system_cpu_seconds(system: systems.System) -> float:
    """CPU time so far of the system's processes and of its helpers (the PostgreSQL server of tokensmith-postgres,
    which serves only that system)."""
    return sum(tree_cpu_seconds(pid) for pid in (system.service.pid, *system.helper_pids))


def run_record(
    target: systems.Target, system: systems.System, round_index: int, result: LoadResult, cpu_seconds: float
) -> dict[str, Any]:
    return {
        "scenario": target.scenario,
        "system": target.system,
        "alg": system.alg,
        "workers": system.workers,
        "round": round_index,
        "requests": result.requests,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "max_ms": round(result.max_ms, 2),
        # The service's CPU (all its processes and threads) per request: steadier than requests/s on a shared
        # machine, and what a capacity plan needs.
        "cpu_us_per_request": round(cpu_seconds / result.requests * 1e6, 1) if result.requests else 0.0,
        "errors": result.error_count,
        "error_kinds": {kind: count for kind, count in result.errors.items() if count},
    }


def format_run(run: dict[str, Any]) -> str:
    return (
        f"{run['scenario']:<19} {run['system']:<20} {run['alg']} x{run['workers']} round {run['round'] + 1}: "
        f"{run['rps']:>8.0f} req/s  p50 {run['p50_ms']:.1f} ms  p99 {run['p99_ms']:.1f} ms  "
        f"CPU {run['cpu_us_per_request']:.0f} µs/req  errors {run['errors']}"
    )


if __name__ == "__main__":
    sys.exit(main())
