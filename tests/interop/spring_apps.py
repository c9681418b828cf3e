"""Building the Spring Boot peers in interop/spring once per session and running their jars on free ports."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.interop.tooling import INTEROP_DIR, free_port
from tests.support.serve_process import stop_process

SPRING_DIR = INTEROP_DIR / "spring"
APPS = ("authorization-server", "user-service", "message-service")
BUILD_TIMEOUT_S = 480
START_TIMEOUT_S = 120
# C1 only, serial GC, a small heap: a quicker start and less memory, for apps that serve a handful of requests.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k", "-Xmx256m")


@dataclass(frozen=True)
class BootLine:
    """One Spring Boot release line: the Maven profile that selects it and where its jars land.

    ``spring_boot`` is the version of the article's services; the baseline authorization server may differ
    (``authorization_server_boot``, see interop/spring/authorization-server/pom.xml).
    """

    name: str
    spring_boot: str
    maven_args: tuple[str, ...]
    authorization_server_boot: str

    def jar(self, app: str) -> Path:
        return SPRING_DIR / app / "target" / self.name / f"{app}.jar"

    def version_of(self, app: str) -> str:
        return self.authorization_server_boot if app == "authorization-server" else self.spring_boot


# The article's version (3.5.11); its authorization-server starter does not resolve from Maven Central, so the
# baseline Spring Authorization Server of this line is built with 3.5.7.
BOOT3 = BootLine("boot3", "3.5.11", (), authorization_server_boot="3.5.7")
BOOT4 = BootLine("boot4", "4.0.7", ("-Pboot4",), authorization_server_boot="4.0.7")
BOOT_LINES = (BOOT3, BOOT4)


class SpringBuildFailed(AssertionError):
    pass


class PortTaken(AssertionError):
    """Another process bound the app's port between our choosing it and Tomcat binding it."""


@dataclass
class Timings:
    """Seconds spent building per Boot line and starting each app, for the session's closing summary."""

    builds: dict[str, float] = field(default_factory=dict)
    starts: list[tuple[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.builds and not self.starts:
            return ""
        builds = ", ".join(f"{line} {seconds:.1f}s" for line, seconds in self.builds.items())
        slowest = max((seconds for _, seconds in self.starts), default=0.0)
        total = sum(seconds for _, seconds in self.starts)
        return (
            f"Spring peers: mvn package {builds or '-'}; {len(self.starts)} app starts, "
            f"{total:.1f}s in all, slowest {slowest:.1f}s"
        )


TIMINGS = Timings()


def build(line: BootLine, mvn: str) -> float:
    """Package the three apps for ``line``; offline first (the usual case, dependencies cached), else online.

    Returns the seconds it took.
    """
    started = time.monotonic()
    base = [mvn, "-B", "-q", "package", *line.maven_args]
    env = {**os.environ, "MAVEN_OPTS": os.environ.get("MAVEN_OPTS", "-XX:TieredStopAtLevel=1")}
    offline = subprocess.run(
        [*base, "-o"], cwd=SPRING_DIR, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env
    )
    if offline.returncode != 0:
        online = subprocess.run(base, cwd=SPRING_DIR, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env)
        if online.returncode != 0:
            raise SpringBuildFailed(
                f"[spring {line.name}] mvn package failed (exit {online.returncode}):\n"
                f"{online.stdout[-3000:]}\n{online.stderr[-3000:]}"
            )
    missing = [str(line.jar(app)) for app in APPS if not line.jar(app).is_file()]
    if missing:
        raise SpringBuildFailed(f"[spring {line.name}] the build produced no {missing}")
    seconds = time.monotonic() - started
    TIMINGS.builds[line.name] = seconds
    return seconds


class SpringApp:
    """One ``java -jar`` process on 127.0.0.1; its output goes to a log file quoted in failure messages."""

    def __init__(
        self, line: BootLine, app: str, java: str, log_dir: Path, args: Sequence[str] = (), port: int | None = None
    ) -> None:
        self.line = line
        self.app = app
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{line.name}-{app}-{self.port}.log"
        self._command = [java, *JVM_OPTIONS, "-jar", str(line.jar(app)), f"--server.port={self.port}", *args]
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self.started_in_s = 0.0

    @property
    def label(self) -> str:
        return f"Spring Boot {self.line.version_of(self.app)} {self.app}"

    def start(self) -> None:
        self._started_at = time.monotonic()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        """Wait for Tomcat's own "started on port" line: a connection alone could reach whoever took the port."""
        assert self._process is not None
        ready_line = f"Tomcat started on port {self.port} "
        deadline = self._started_at + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log_tail()
                failure = PortTaken if f"Port {self.port} was already in use" in log else AssertionError
                raise failure(f"[{self.label}] exited with {self._process.returncode}:\n{log}")
            if ready_line in self.log_path.read_text(errors="replace"):
                self.started_in_s = time.monotonic() - self._started_at
                TIMINGS.starts.append((self.label, self.started_in_s))
                return
            time.sleep(0.2)
        raise AssertionError(f"[{self.label}] not started after {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self._process)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log, stack frames left out so an exception's message stays in view."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = [line for line in text.splitlines() if not line.startswith(("\tat ", "\t... "))]
        return "\n".join(kept[-lines:])


@contextmanager
def running(apps: Iterable[SpringApp]) -> Iterator[list[SpringApp]]:
    """Start the apps together (the JVMs boot in parallel), wait for all, stop all afterwards."""
    started = list(apps)
    with ExitStack() as stack:
        for app in started:
            stack.callback(app.stop)
            app.start()
        for app in started:
            app.wait_ready()
        yield started


@contextmanager
def running_on_free_ports(make_apps: Callable[[], Sequence[SpringApp]], attempts: int = 3) -> Iterator[list[SpringApp]]:
    """:func:`running` for apps made by ``make_apps``, made anew on fresh ports if one was taken meanwhile."""
    for attempt in range(1, attempts + 1):
        stack = ExitStack()
        try:
            started = stack.enter_context(running(make_apps()))
        except PortTaken:
            if attempt == attempts:
                raise
            continue
        with stack:
            yield started
        return


def authorization_server_args(issuer: str) -> list[str]:
    return [f"--spring.security.oauth2.authorizationserver.issuer={issuer}"]


def message_service_args(issuer: str) -> list[str]:
    """The article's ``issuer-uri`` (http://localhost:9001 in application.yml) moved to ``issuer``."""
    return [f"--spring.security.oauth2.resourceserver.jwt.issuer-uri={issuer}"]


def user_service_args(issuer: str, downstream: str) -> list[str]:
    """Both of the article's ``issuer-uri`` (resource server and client provider) moved to ``issuer``; the
    message-service that UserController calls at ``downstream``."""
    return [
        *message_service_args(issuer),
        f"--spring.security.oauth2.client.provider.my-auth-server.issuer-uri={issuer}",
        f"--message-service.url={downstream}",
    ]
