"""Run the OpenID Foundation conformance plans against tokensmith, all on 127.0.0.1 (`make conformance`).

    python conformance/run.py CACHE_DIR

CACHE_DIR is what conformance/build.sh printed (the suite's jar and scripts, FerretDB). This starts FerretDB, the
suite, tokensmith and nginx (TLS in front of the suite and of tokensmith's HTTPS issuer), runs the plans of
conformance/plans.py with the suite's scripts/run-test-plan.py, prints one table per plan, keeps what each REVIEW
module showed under var/conformance/results/, and stops everything it started, by PID, even on failure. A second
run first stops what a crashed run left behind (the PID files in var/conformance/run/).

Exit status: 1 on any FAILED or interrupted module and on any warning not in conformance/allowed-warnings.txt.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).parent))
import plans

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JAVA_HOME = Path(os.environ.get("CONFORMANCE_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))
RESULT_NAMES = ("PASSED", "REVIEW", "WARNING", "FAILED", "SKIPPED")


def log(message: str) -> None:
    print(f"conformance: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes -------------------------------------------------------------------------------------------------


class Processes:
    """What this run started: each in its own process group, its PID in RUN/<name>.pid until it is stopped."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        out = (self.run_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        out.close()
        self.started[name] = proc
        (self.run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")

    def check_alive(self) -> None:
        for name, proc in self.started.items():
            if proc.poll() is not None:
                tail = (self.run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with status {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for name, proc in reversed(list(self.started.items())):
            stop_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        self.started.clear()


def stop_group(pid: int) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL what is left after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def stop_stale(run_dir: Path) -> None:
    """Stop the process groups a previous run recorded and did not stop (it was killed, or the machine lost
    power): only a PID whose process still leads its own group, as those this script starts do."""
    for pid_file in run_dir.glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            if os.getpgid(pid) == pid:
                log(f"stopping {pid_file.stem} (PID {pid}) left by an earlier run")
                stop_group(pid)
        pid_file.unlink(missing_ok=True)


# --- TLS -------------------------------------------------------------------------------------------------------


def make_certificate(tls_dir: Path) -> Path:
    """A self-signed certificate for localhost and 127.0.0.1; returns the PKCS#12 truststore for the suite's JVM."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt = tls_dir / "localhost.crt"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = tls_dir / "localhost.key"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    truststore = tls_dir / "truststore.p12"
    truststore.unlink(missing_ok=True)
    subprocess.run(
        [
            str(JAVA_HOME / "bin" / "keytool"),
            "-importcert",
            "-noprompt",
            "-alias",
            "localhost",
            "-file",
            str(crt),
            "-keystore",
            str(truststore),
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
        ],
        check=True,
        capture_output=True,
    )
    return truststore


def fill(template: Path, values: dict[str, str | int]) -> str:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise RuntimeError(f"{template.name}: unfilled {leftover}")
    return text


def wait_for(url: str, ca: Path, processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=str(ca), timeout=5) as client:
        while True:
            processes.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
            time.sleep(1)


# --- results ---------------------------------------------------------------------------------------------------


@dataclass
class ModuleResult:
    name: str
    test_id: str | None
    result: str
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (condition, message)
    failures: list[tuple[str, str]] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)


def read_allow_list(path: Path) -> set[tuple[str, str]]:
    """``module condition`` pairs, one a line; ``#`` starts a comment (each entry says why it is allowed)."""
    allowed: set[tuple[str, str]] = set()
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].split()
        if len(entry) == 2:
            allowed.add((entry[0], entry[1]))
        elif entry:
            raise RuntimeError(f"{path.name}: expected 'module condition', got {line!r}")
    return allowed


def collect(api: httpx.Client, plan_id: str, shots: Path, issuer: str) -> list[ModuleResult]:
    plan = api.get(f"api/plan/{plan_id}").raise_for_status().json()
    results: list[ModuleResult] = []
    for module in plan.get("modules", []):
        name = module["testModule"]
        instances = module.get("instances") or []
        if not instances:
            results.append(ModuleResult(name, None, "NOT RUN"))
            continue
        test_id = instances[-1]
        info = api.get(f"api/info/{test_id}").raise_for_status().json()
        result = str(info.get("result") or "UNKNOWN")
        if info.get("status") == "INTERRUPTED":
            result = "INTERRUPTED"
        entry = ModuleResult(name, test_id, result)
        log_entries = api.get(f"api/log/{test_id}").raise_for_status().json()
        for item in log_entries:
            outcome = item.get("result")
            condition = str(item.get("src", "?"))
            if outcome == "WARNING":
                entry.warnings.append((condition, str(item.get("msg", ""))))
            elif outcome == "FAILURE":
                entry.failures.append((condition, str(item.get("msg", ""))))
        if result == "REVIEW":
            entry.screenshots = save_screenshots(log_entries, shots / name, issuer)
        results.append(entry)
    return results


def save_screenshots(log_entries: list[dict[str, Any]], target: Path, issuer: str) -> list[str]:
    """What the suite kept for a REVIEW module: uploaded images, and the pages its browser captured (their HTML,
    rendered to a PNG by a headless Chromium when one is installed, styles loaded from the running tokensmith)."""
    target.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []
    for index, item in enumerate(log_entries):
        data = item.get("img")
        if isinstance(data, str) and data.startswith("data:image/") and ";" in data:
            path = target / f"{index}.{data[len('data:image/') : data.index(';')]}"
            path.write_bytes(base64.b64decode(data.split(",", 1)[1]))
            saved.append(str(path))
        source = item.get("page_source")
        if isinstance(source, str):
            html = target / f"{index}.html"
            html.write_text(source.replace("<head>", f'<head><base href="{issuer}/">', 1))
            saved.append(str(html))
            png = render(html)
            if png is not None:
                saved.append(str(png))
    return saved


def render(html: Path) -> Path | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return None
    png = html.with_suffix(".png")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--ignore-certificate-errors",
            "--hide-scrollbars",
            "--window-size=900,640",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return png if png.exists() else None


def table(title: str, results: list[ModuleResult]) -> str:
    counts = {name: sum(1 for r in results if r.result == name) for name in RESULT_NAMES}
    other = len(results) - sum(counts.values())
    lines = [
        f"| plan | modules | {' | '.join(n.lower() for n in RESULT_NAMES)} | other |",
        "|---|---|" + "---|" * (len(RESULT_NAMES) + 1),
        f"| {title} | {len(results)} | {' | '.join(str(counts[n]) for n in RESULT_NAMES)} | {other} |",
    ]
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    cache: Path
    var: Path

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def results(self) -> Path:
        return self.var / "results"


@contextlib.contextmanager
def services(layout: Layout) -> Iterator[tuple[str, str, Path]]:
    """Start FerretDB, the suite, tokensmith and nginx; yield (suite URL, issuer, CA file); stop them all."""
    run = layout.run
    run.mkdir(parents=True, exist_ok=True)
    stop_stale(run)
    for stale in ("ferretdb-data", "ferretdb-state", "nginx-tmp", "tokensmith.db"):
        path = run / stale
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True) if path.is_file() else None
    for wal in run.glob("tokensmith.db-*"):
        wal.unlink()
    (run / "ferretdb-data").mkdir()
    (run / "ferretdb-state").mkdir()
    (run / "nginx-tmp").mkdir()

    ports = {name: free_port() for name in ("mongo", "suite", "suite_tls", "tokensmith", "tokensmith_tls")}
    suite = f"https://localhost:{ports['suite_tls']}"
    issuer = f"https://localhost:{ports['tokensmith_tls']}"
    truststore = make_certificate(run / "tls")
    ca = run / "tls" / "localhost.crt"

    (run / "tokensmith.yaml").write_text(
        fill(
            HERE / "tokensmith.yaml.in",
            {
                "ISSUER": issuer,
                "PORT": ports["tokensmith"],
                "DATABASE": run / "tokensmith.db",
                "SUITE": suite,
                "SECRET_CLIENT": plans.CLIENT_SECRETS["oidf-client"],
                "SECRET_CLIENT2": plans.CLIENT_SECRETS["oidf-client2"],
                "SECRET_CLIENT_POST": plans.CLIENT_SECRETS["oidf-client-post"],
                "USERNAME": plans.USERNAME,
                "PASSWORD": plans.PASSWORD,
            },
        )
    )
    nginx_conf = fill(
        HERE / "nginx.conf.in",
        {
            "RUN": run,
            "SUITE_TLS_PORT": ports["suite_tls"],
            "SUITE_PORT": ports["suite"],
            "TOKENSMITH_TLS_PORT": ports["tokensmith_tls"],
            "TOKENSMITH_PORT": ports["tokensmith"],
        },
    )
    if os.geteuid() == 0:
        # As root, nginx's workers would switch to `nobody`, who cannot write the temporary folders in RUN.
        nginx_conf = "user root;\n" + nginx_conf
    (run / "nginx.conf").write_text(nginx_conf)

    processes = Processes(run)
    try:
        processes.start(
            "ferretdb",
            [
                str(layout.cache / "ferretdb"),
                "--handler=sqlite",
                f"--sqlite-url=file:{run / 'ferretdb-data'}/",
                f"--state-dir={run / 'ferretdb-state'}",
                f"--listen-addr=127.0.0.1:{ports['mongo']}",
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=warn",
            ],
        )
        processes.start(
            "suite",
            [
                str(JAVA_HOME / "bin" / "java"),
                "-Xmx2g",
                f"-Djavax.net.ssl.trustStore={truststore}",
                "-Djavax.net.ssl.trustStorePassword=changeit",
                "-Djavax.net.ssl.trustStoreType=PKCS12",
                "-jar",
                str(layout.cache / "suite" / "fapi-test-suite.jar"),
                "--server.address=127.0.0.1",
                f"--server.port={ports['suite']}",
                f"--fintechlabs.base_url={suite}",
                "--fintechlabs.devmode=true",
                f"--spring.mongodb.uri=mongodb://127.0.0.1:{ports['mongo']}/test_suite",
                "--openid.mongodb.targetFeatureCompatibilityVersion=",
            ],
        )
        processes.start(
            "tokensmith",
            [str(ROOT / ".venv" / "bin" / "tokensmith"), "serve", "--config", str(run / "tokensmith.yaml")],
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian's, outside a user's PATH
        processes.start("nginx", [nginx, "-p", f"{run}/", "-c", str(run / "nginx.conf")])
        wait_for(f"{issuer}/.well-known/openid-configuration", ca, processes, timeout=60)
        log(f"tokensmith answers at {issuer}")
        wait_for(f"{suite}/api/plan/available", ca, processes, timeout=300)
        log(f"the suite answers at {suite}")
        yield suite, issuer, ca
    finally:
        processes.stop_all()


def run_plan(layout: Layout, suite: str, plan: plans.Plan, config: Path) -> str:
    """Run one plan with the suite's own script; return its plan id."""
    scripts = layout.cache / "suite" / "scripts"
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # CI makes the script print GitLab section markers
    env.update(CONFORMANCE_SERVER=f"{suite}/", CONFORMANCE_DEV_MODE="1", DISABLE_SSL_VERIFY="1")
    plan_log = layout.results / f"{plan.name.split('[')[0]}.log"
    pid_file = layout.run / "run-test-plan.pid"
    with plan_log.open("wb") as out:
        # No --export-dir: exporting a plan's logs takes minutes on FerretDB; collect() reads what it needs.
        proc = subprocess.Popen(
            [sys.executable, "run-test-plan.py", plan.name, str(config)],
            cwd=scripts,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    try:
        proc.wait()
    finally:
        stop_group(proc.pid)
        pid_file.unlink(missing_ok=True)
    found = re.findall(r"Created test plan, new id: (\S+)", plan_log.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"{plan.name}: no plan was created; see {plan_log}")
    return found[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache", type=Path, help="the folder conformance/build.sh printed")
    parser.add_argument("--var", type=Path, default=ROOT / "var" / "conformance", help="run files and results")
    args = parser.parse_args()
    layout = Layout(cache=args.cache.resolve(), var=args.var.resolve())
    if layout.results.exists():
        shutil.rmtree(layout.results)
    layout.results.mkdir(parents=True)
    allowed = read_allow_list(HERE / "allowed-warnings.txt")

    started = time.monotonic()
    summary: dict[str, list[ModuleResult]] = {}
    with services(layout) as (suite, issuer, ca):
        config = layout.results / "plan-config.json"
        config.write_text(json.dumps(plans.plan_config(issuer, suite), indent=2))
        with httpx.Client(base_url=f"{suite}/", verify=str(ca), timeout=30) as api:
            for plan in plans.PLANS:
                log(f"running {plan.name}")
                plan_id = run_plan(layout, suite, plan, config)
                summary[plan.title] = collect(api, plan_id, layout.results / "screenshots", issuer)
                print(table(plan.title, summary[plan.title]), flush=True)

    problems: list[str] = []
    print()
    for title, results in summary.items():
        print(table(title, results))
        for r in results:
            if r.result not in ("PASSED", "SKIPPED"):
                print(f"  {r.result:<9} {r.name}")
            for condition, message in r.warnings:
                allowed_mark = " (allowed)" if (r.name, condition) in allowed else ""
                print(f"    warning {condition}: {message[:160]}{allowed_mark}")
                if not allowed_mark:
                    problems.append(f"{r.name}: warning {condition} not in allowed-warnings.txt")
            for condition, message in r.failures:
                print(f"    failure {condition}: {message[:160]}")
            for shot in r.screenshots:
                print(f"    kept {Path(shot).relative_to(ROOT) if Path(shot).is_relative_to(ROOT) else shot}")
            if r.result in ("FAILED", "INTERRUPTED", "NOT RUN", "UNKNOWN"):
                problems.append(f"{r.name}: {r.result}")
        print()
    (layout.results / "summary.json").write_text(
        json.dumps(
            {
                title: [
                    {"module": r.name, "result": r.result, "warnings": r.warnings, "screenshots": r.screenshots}
                    for r in results
                ]
                for title, results in summary.items()
            },
            indent=2,
        )
    )
    (layout.results / "summary.md").write_text("\n\n".join(table(t, rs) for t, rs in summary.items()) + "\n")
    log(f"plans ran in {time.monotonic() - started:.0f} s; results in {layout.results}")
    for problem in problems:
        log(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
