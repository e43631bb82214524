#!/usr/bin/env bash
# Run the whole test suite (slow tests included) with a throwaway PostgreSQL for the registry tests.
# The server listens only on a unix socket in a fresh private folder, needs a password, and is stopped
# (and its folder deleted) when this script ends: normally, on a test failure, or on Ctrl-C.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -p randomly` for a random order (seed printed).
# Test files run in VOXPROOF_TEST_WORKERS parallel processes (default 2, pytest-xdist, one file per process
# at a time so module fixtures load once); VOXPROOF_TEST_WORKERS=0 runs everything in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-${TMPDIR:-/tmp}/voxproof-numba-cache}"
export VOXPROOF_PG_DIR="${VOXPROOF_PG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/voxproof-pg.XXXXXX")}"
_cleanup() {
    declare -F voxproof_pg_stop >/dev/null && voxproof_pg_stop
    rmdir "$VOXPROOF_PG_DIR" 2>/dev/null || true
}
trap _cleanup EXIT  # set before the server starts, so a failed start is cleaned up too
trap 'exit 130' INT
trap 'exit 143' TERM
# shellcheck source=../.ci/postgres.sh
source .ci/postgres.sh
workers="${VOXPROOF_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
    python3 -m pytest -q "$@"
else
    python3 -m pytest -q -n "$workers" --dist loadfile "$@"
fi
