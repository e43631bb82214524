#!/usr/bin/env bash
# Run the whole test suite (slow tests included) with a throwaway PostgreSQL on 127.0.0.1 for the
# registry tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-${TMPDIR:-/tmp}/voxproof-numba-cache}"
# shellcheck source=../.ci/postgres.sh
source .ci/postgres.sh
python3 -m pytest -q "$@"
