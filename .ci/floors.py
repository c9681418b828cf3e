"""The floors of the direct dependencies in pyproject.toml: as pip constraints, or checked against what is installed.

`make test-lowest` runs the suite on the lowest versions the declared ranges allow:
`python .ci/floors.py constraints` prints `name==floor` for every direct dependency (the base ones and those of
every extra but `test`), which pins them for pip while the test tools and the dependencies' own dependencies
resolve as usual (newest that fit); `python .ci/floors.py check` prints a table of floor and installed version and
exits 1 unless every direct dependency is installed at exactly its floor. A floor that does not exist as a
release, or that cannot be installed together with the other floors, makes the install fail: raise it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
LEFT_OUT_EXTRAS = {"test"}
# Every direct dependency is written `name>=floor` or `name[extras]>=floor`; anything else is refused here so that
# a new dependency without a floor cannot slip past the lowest-versions run.
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9,._-]+\])?>=(?P<floor>[0-9][0-9.]*)$")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release(text: str) -> tuple[int, ...] | None:
    """`42.0` and `42.0.0` alike as (42,); None for a version that is not a plain release."""
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", text):
        return None
    parts = [int(part) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def floors() -> dict[str, str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra not in LEFT_OUT_EXTRAS:
            requirements.extend(items)
    found: dict[str, str] = {}
    for text in requirements:
        if normalized(text).startswith(normalized(project["name"]) + "["):
            continue
        match = REQUIREMENT.match(text.replace(" ", ""))
        if match is None:
            sys.exit(f"floors: {text!r} is not of the form name>=floor")
        name, floor = normalized(match["name"]), match["floor"]
        if name in found and release(found[name]) != release(floor):
            sys.exit(f"floors: {name} has two floors, {found[name]} and {floor}")
        found[name] = floor
    return found


def check() -> int:
    wrong = 0
    print(f"{'package':<20} {'floor':<10} installed")
    for name, floor in sorted(floors().items()):
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        ok = release(installed) == release(floor)
        wrong += not ok
        print(f"{name:<20} {floor:<10} {installed}{'' if ok else '   <- not the floor'}")
    if wrong:
        print(f"floors: {wrong} direct dependencies are not at their declared floor", file=sys.stderr)
        return 1
    print(f"floors: every direct dependency is at its declared floor ({len(floors())})")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["constraints"]:
        for name, floor in sorted(floors().items()):
            print(f"{name}=={floor}")
        return 0
    if argv == ["check"]:
        return check()
    print("usage: python .ci/floors.py constraints|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
