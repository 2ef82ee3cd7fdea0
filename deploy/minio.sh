#!/usr/bin/env bash
# Builds the MinIO server that livegrid's object-store tests and the cluster
# demo run against, once, and caches it under
# ${LIVEGRID_CACHE:-$HOME/.cache/livegrid}/bin. Prints the binary's path on
# stdout. Idempotent: with the binary already cached it builds nothing (the
# first build takes about 6 minutes).
set -euo pipefail

# The MinIO release livegrid is tested against (a Go pseudo-version).
version=v0.0.0-20260212201848-7aac2a2c5b7c

cache=${LIVEGRID_CACHE:-$HOME/.cache/livegrid}
bindir="$cache/bin"
bin="$bindir/minio"
stamp="$bindir/minio.version"

# A binary without a stamp was cached by hand or by an older script: keep it.
cached() {
  [ -x "$bin" ] && { [ ! -f "$stamp" ] || [ "$(cat "$stamp")" = "$version" ]; }
}

if cached; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bindir"
# Two test packages may ask at once in CI: build under a lock, then look again.
exec 9>"$bindir/minio.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if cached; then
  echo "$bin"
  exit 0
fi

echo "minio: building github.com/minio/minio@$version into $bindir (about 6 minutes)" >&2
# Outside the livegrid module so its go.mod plays no part; CGO off gives a
# static binary and needs no C compiler.
cd "$bindir"
GOBIN="$bindir" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go install "github.com/minio/minio@$version"
echo "$version" >"$stamp"
"$bin" --version >/dev/null
echo "$bin"
