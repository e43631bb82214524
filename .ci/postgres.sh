# shellcheck shell=bash
# A throwaway PostgreSQL server on 127.0.0.1 for the registry tests.
#
#   source .ci/postgres.sh      # installs PostgreSQL if needed, starts it, exports VOXPROOF_TEST_PG_URL
#   .ci/postgres.sh stop        # stops it (the data directory is kept until the machine is cleaned)
#
# Idempotent: sourcing it again while the server runs only re-exports the URL. The cluster lives in
# $VOXPROOF_PG_DIR (default /tmp/voxproof-pg) and listens on $VOXPROOF_PG_PORT (default 54329) on
# 127.0.0.1 only, with trust authentication (test data only; never expose it).
# When run as root the server runs as the 'postgres' system user (PostgreSQL refuses to run as root).

_voxproof_pg_main() {
    local dir="${VOXPROOF_PG_DIR:-/tmp/voxproof-pg}"
    local port="${VOXPROOF_PG_PORT:-54329}"
    local db="voxproof_test"
    local bindir run_as=()

    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        echo "postgres.sh: installing PostgreSQL (Debian package postgresql)" >&2
        local apt=(apt-get)
        [ "$(id -u)" -ne 0 ] && apt=(sudo apt-get)
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y postgresql >/dev/null || {
            echo "postgres.sh: apt-get install postgresql failed" >&2
            return 1
        }
        bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    fi

    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /bin/sh postgres || return 1
        run_as=(runuser -u postgres --)
    fi

    if [ "${1:-start}" = "stop" ]; then
        [ -f "$dir/data/PG_VERSION" ] && "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
        return 0
    fi

    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { echo "postgres.sh: initdb failed, see $dir/initdb.log" >&2; return 1; }
    fi
    if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=100" \
            start >/dev/null || { echo "postgres.sh: server did not start, see $dir/server.log" >&2; return 1; }
    fi
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1; then
        "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" || return 1
    fi
    export VOXPROOF_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/$db"
    echo "postgres.sh: PostgreSQL ready at $VOXPROOF_TEST_PG_URL" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # executed, not sourced: start (or stop) and print the URL for the caller to export
    _voxproof_pg_main "$@" || exit 1
    [ "${1:-start}" = "stop" ] || echo "$VOXPROOF_TEST_PG_URL"
else
    # sourced: always start (the caller's positional parameters are not ours)
    _voxproof_pg_main start
fi
