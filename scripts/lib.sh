# Shared set-up steps for scripts/dev and scripts/test (sourced, not run).

PYTHON="${PYTHON:-python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "missing: $* — install it with your package manager (e.g. apt-get install $*)"
        return 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Creates .venv and installs the project (with the given extra, if any).
ensure_venv() {
    local extra="${1:-}"
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        "$PYTHON" -m venv .venv
    fi
    log "installing cofounder${extra:+[$extra]} (pip's output: .venv/pip.log)"
    if ! .venv/bin/python -m pip install -e ".${extra:+[$extra]}" >.venv/pip.log 2>&1; then
        tail -n 30 .venv/pip.log >&2
        log "pip install failed; the whole log is in .venv/pip.log"
        return 1
    fi
}

# The local sandbox needs bubblewrap; install it when we can, never run without it.
ensure_bwrap() {
    if ! command -v bwrap >/dev/null; then
        log "installing bubblewrap (the local sandbox)"
        apt_install bubblewrap || log "without bubblewrap, builds fail at the test step with a clear error"
    fi
}

# Starts a throwaway PostgreSQL 15 for the tests and exports TEST_DATABASE_URL.
start_test_postgres() {
    local bin=/usr/lib/postgresql/15/bin
    if [ ! -x "$bin/initdb" ]; then
        log "installing PostgreSQL 15"
        apt_install postgresql-15 || return 1
    fi
    PG_DIR="$(mktemp -d /tmp/cofounder-pg.XXXXXX)"
    local port
    port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    local run=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
    "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
    export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    log "PostgreSQL 15 on 127.0.0.1:$port"
    PG_RUN=("${run[@]}")
}

stop_test_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        "${PG_RUN[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
