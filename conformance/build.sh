#!/usr/bin/env bash
# Build what `make conformance` needs, once, into a cache outside the repository's tracked files:
#   - the OpenID Foundation conformance suite's jar, from the suite's source tarball plus its local patch;
#   - FerretDB (the suite's MongoDB stand-in), from the Go module proxy plus its patch.
# Nothing built here is committed: the repository only holds this recipe. Inputs (tarball and patches) live in
# CONFORMANCE_SHARED (default: ../shared/conformance relative to the repository root).
# Prints (alone on stdout) the cache directory holding `suite/fapi-test-suite.jar`, `suite/scripts/` and `ferretdb`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${CONFORMANCE_SHARED:-$root/../shared/conformance}"
if [ ! -d "$shared" ]; then
  echo "conformance: $shared not found (set CONFORMANCE_SHARED to the folder with the suite's tarball)" >&2
  exit 1
fi
shared="$(cd "$shared" && pwd)"
cache="${CONFORMANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tokensmith-conformance}"
java_home="${CONFORMANCE_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
ferretdb_version="v1.24.2"

tarball="$(ls "$shared"/conformance-suite-*.tar.gz | head -n 1)"
suite_patch="$shared/conformance-suite-local.patch"
ferretdb_patch="$shared/ferretdb-$ferretdb_version-oidf.patch"
for f in "$tarball" "$suite_patch" "$ferretdb_patch"; do
  [ -f "$f" ] || { echo "conformance: missing $f" >&2; exit 1; }
done

# One cache entry per exact input: a new tarball or patch builds afresh.
suite_key="$(cat "$tarball" "$suite_patch" | sha256sum | cut -c1-16)"
ferretdb_key="$(cat "$ferretdb_patch" | sha256sum | cut -c1-16)"
suite_dir="$cache/suite-$suite_key"
ferretdb_bin="$cache/ferretdb-$ferretdb_version-$ferretdb_key"
mkdir -p "$cache"

if [ ! -f "$suite_dir/fapi-test-suite.jar" ]; then
  [ -x "$java_home/bin/java" ] || { echo "conformance: no JDK at $java_home (set CONFORMANCE_JAVA_HOME)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "conformance: mvn not found" >&2; exit 1; }
  work="$(mktemp -d "$cache/build-suite.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "conformance: building the suite from $(basename "$tarball") (a few minutes)" >&2
  tar xzf "$tarball" -C "$work"
  src="$work/conformance-suite"
  patch -d "$src" -p1 --quiet <"$suite_patch"
  (cd "$src" && JAVA_HOME="$java_home" mvn -B -q -Dmaven.test.skip -Dpmd.skip -Dcheckstyle.skip -Djacoco.skip=true -Dmaven.gitcommitid.skip=true \
    package) >"$work/maven.log" 2>&1 || { tail -n 60 "$work/maven.log" >&2; exit 1; }
  rm -rf "$suite_dir.tmp" && mkdir -p "$suite_dir.tmp"
  cp "$src/target/fapi-test-suite.jar" "$suite_dir.tmp/"
  cp -r "$src/scripts" "$suite_dir.tmp/scripts"
  rm -rf "$suite_dir" && mv "$suite_dir.tmp" "$suite_dir"
  rm -rf "$work"
  trap - EXIT
fi

if [ ! -x "$ferretdb_bin" ]; then
  command -v go >/dev/null || { echo "conformance: go not found" >&2; exit 1; }
  echo "conformance: building FerretDB $ferretdb_version" >&2
  module_dir="$(go mod download -json "github.com/FerretDB/FerretDB@$ferretdb_version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  work="$(mktemp -d "$cache/build-ferretdb.XXXXXX")"
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -r "$module_dir/." "$work/"
  chmod -R u+w "$work"
  patch -d "$work" -p1 --quiet <"$ferretdb_patch"
  echo "$ferretdb_version" >"$work/build/version/version.txt"
  (cd "$work" && go build -o "$ferretdb_bin.tmp" ./cmd/ferretdb)
  mv "$ferretdb_bin.tmp" "$ferretdb_bin"
  chmod -R u+w "$work"; rm -rf "$work"
  trap - EXIT
fi

ln -sfn "$(basename "$ferretdb_bin")" "$cache/ferretdb"
ln -sfn "$(basename "$suite_dir")" "$cache/suite"
echo "$cache"
