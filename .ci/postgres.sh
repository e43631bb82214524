# shellcheck shell=bash
# A throwaway PostgreSQL server for the registry tests, reachable only through a unix socket.
#
#   source .ci/postgres.sh      # installs PostgreSQL if needed, starts it, exports VOXPROOF_TEST_PG_URL
#   voxproof_pg_stop            # (after sourcing) stops the server and deletes its folder
#   .ci/postgres.sh stop        # the same from another shell
#
# The cluster lives in $VOXPROOF_PG_DIR (default /tmp/voxproof-pg, mode 0700). The server listens on no
# TCP address at all (listen_addresses=''): only on the socket $VOXPROOF_PG_DIR/sock/.s.PGSQL.$port, in a
# folder only its owner can enter, and every connection needs the password (scram-sha-256), a random one
# made at initdb time and kept in $VOXPROOF_PG_DIR/password (mode 0600). Test data only.
# Idempotent: sourcing it again while the server runs only re-exports the URL.
# When run as root the server runs as the 'postgres' system user (PostgreSQL refuses to run as root).
# scripts/test.sh starts it in a fresh folder and stops it on exit (normal, failure or Ctrl-C).

_voxproof_pg_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true
}

_voxproof_pg_run_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

voxproof_pg_stop() {
    local dir="${VOXPROOF_PG_DIR:-/tmp/voxproof-pg}"
    local bindir
    bindir="$(_voxproof_pg_bindir)"
    if [ -n "$bindir" ] && [ -f "$dir/data/PG_VERSION" ]; then
        _voxproof_pg_run_as "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    # never delete anything that is not our cluster folder
    if [ -f "$dir/data/PG_VERSION" ] || [ -f "$dir/password" ]; then
        rm -rf "$dir"
    fi
    unset VOXPROOF_TEST_PG_URL
}

_voxproof_pg_main() {
    local dir="${VOXPROOF_PG_DIR:-/tmp/voxproof-pg}"
    local port="${VOXPROOF_PG_PORT:-54329}"
    local db="voxproof_test"
    local bindir password

    bindir="$(_voxproof_pg_bindir)"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        echo "postgres.sh: installing PostgreSQL (Debian package postgresql)" >&2
        local apt=(apt-get)
        [ "$(id -u)" -ne 0 ] && apt=(sudo apt-get)
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y postgresql >/dev/null || {
            echo "postgres.sh: apt-get install postgresql failed" >&2
            return 1
        }
        bindir="$(_voxproof_pg_bindir)"
    fi

    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres \
            || return 1
    fi

    if [ -f "$dir/data/PG_VERSION" ] && [ ! -f "$dir/password" ]; then
        # a cluster from an older version of this script (TCP, no password): replace it
        echo "postgres.sh: replacing the password-less cluster in $dir" >&2
        _voxproof_pg_run_as "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        rm -rf "$dir/data"
    fi
    mkdir -p "$dir/sock"
    chmod 0700 "$dir" "$dir/sock"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir" "$dir/sock"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        password="$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
        (umask 077 && printf '%s\n' "$password" >"$dir/password")
        [ "$(id -u)" -eq 0 ] && chown postgres "$dir/password"
        _voxproof_pg_run_as "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/password" \
            --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { echo "postgres.sh: initdb failed, see $dir/initdb.log" >&2; return 1; }
    fi
    password="$(cat "$dir/password")"
    if ! _voxproof_pg_run_as "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        _voxproof_pg_run_as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses='' -p $port -k $dir/sock -c unix_socket_permissions=0700 -c fsync=off -c max_connections=100" \
            start >/dev/null || { echo "postgres.sh: server did not start, see $dir/server.log" >&2; return 1; }
    fi
    if ! PGPASSWORD="$password" "$bindir/psql" -h "$dir/sock" -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1; then
        PGPASSWORD="$password" "$bindir/createdb" -h "$dir/sock" -p "$port" -U postgres "$db" || return 1
    fi
    export VOXPROOF_TEST_PG_URL="postgresql://postgres:$password@/$db?host=$dir/sock&port=$port"
    echo "postgres.sh: PostgreSQL ready on the unix socket $dir/sock (port $port), password in $dir/password" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # executed, not sourced: start (printing the URL for the caller to export) or stop
    if [ "${1:-start}" = "stop" ]; then
        voxproof_pg_stop
    else
        _voxproof_pg_main || exit 1
        echo "$VOXPROOF_TEST_PG_URL"
    fi
else
    # sourced: always start (the caller's positional parameters are not ours)
    _voxproof_pg_main
fi
