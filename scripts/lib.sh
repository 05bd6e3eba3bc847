# Shared set-up steps for scripts/dev and scripts/test (sourced, not run).

PYTHON="${PYTHON:-python3}"
# Written only once .venv is complete (pip included): a venv without it is rebuilt, which
# repairs one left half-made by a failed or interrupted creation.
VENV_MARKER=.venv/.complete

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "missing: $* — install it with your package manager (e.g. apt-get install $*)"
        return 1
    fi
    # apt's output only when it fails: even a good install prints debconf notices.
    local out status=0
    out="$(mktemp)"
    {
        [ -n "${APT_UPDATED:-}" ] || DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    } >"$out" 2>&1 || status=$?
    APT_UPDATED=1
    if [ "$status" != 0 ]; then
        tail -n 20 "$out" >&2
        log "apt-get install $* failed"
    fi
    rm -f "$out"
    return "$status"
}

# Prints major.minor of the given interpreter.
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# True when .venv is complete, its pip runs and its Python is version $1.
venv_ready() {
    # Venvs made before the marker: earlier scripts wrote pip.log only after a complete creation.
    [ -f "$VENV_MARKER" ] || [ -f .venv/pip.log ] || return 1
    .venv/bin/python -m pip --version >/dev/null 2>&1 || return 1
    [ "$(py_version .venv/bin/python 2>/dev/null)" = "$1" ]
}

# Creates .venv with $PYTHON (version $1), installing Debian's ensurepip first if it is missing.
create_venv() {
    if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
        log "installing python$1-venv (needed to create .venv)"
        apt_install "python$1-venv" || return 1
    fi
    log "creating .venv"
    if ! "$PYTHON" -m venv .venv || ! .venv/bin/python -m pip --version >/dev/null; then
        log "could not create .venv with $PYTHON"
        return 1
    fi
    touch "$VENV_MARKER"
}

# Creates .venv (again, if it is half-made or for another Python) and installs the project
# (with the given extra, if any).
ensure_venv() {
    local extra="${1:-}" version
    if ! version="$(py_version "$PYTHON")"; then
        log "$PYTHON does not run; set PYTHON to a Python 3.11 to 3.13"
        return 1
    fi
    if ! venv_ready "$version"; then
        if [ -e .venv ]; then
            log "removing .venv: it is half-made or not for Python $version"
            rm -rf .venv
        fi
        create_venv "$version" || return 1
    fi
    log "installing cofounder${extra:+[$extra]} (pip's output: .venv/pip.log)"
    if ! .venv/bin/python -m pip install -e ".${extra:+[$extra]}" >.venv/pip.log 2>&1; then
        tail -n 30 .venv/pip.log >&2
        log "pip install failed; the whole log is in .venv/pip.log"
        return 1
    fi
}

# What the stack runs besides Python: git (publishing), bubblewrap with util-linux's prlimit
# and setpriv (the sandbox). Installed when we can; without them the set-up goes on and the
# step that needs one fails with a clear error.
ensure_tools() {
    local missing=()
    command -v git >/dev/null || missing+=(git)
    command -v bwrap >/dev/null || missing+=(bubblewrap)
    { command -v prlimit && command -v setpriv; } >/dev/null || missing+=(util-linux)
    # Node.js projects are built and tested too (npm test in the sandbox).
    { command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} (used by builds)"
        apt_install "${missing[@]}" || log "without ${missing[*]}, builds fail at the step that needs it"
    fi
}

# The rate-limit tests run a redis-server of their own (the API's limiter shared by instances).
ensure_test_redis() {
    command -v redis-server >/dev/null && return 0
    log "installing redis-server (the rate-limit tests run one)"
    apt_install redis-server
}

# The dashboard's browser library (htmx), pinned in api/dashboard/package-lock.json and served
# by the API itself: npm ci installs exactly that version, unless it is installed already.
ensure_dashboard_assets() {
    if ! command -v npm >/dev/null; then
        log "missing: npm (apt-get install npm); the dashboard's pages answer 500 without htmx"
        return 1
    fi
    dashboard_assets_current && return 0
    log "installing the dashboard's htmx (npm ci --prefix api/dashboard)"
    npm ci --prefix api/dashboard --prefer-offline --ignore-scripts --no-audit --no-fund \
        --loglevel=error >/dev/null
}

# True when the installed htmx is the version package-lock.json pins.
dashboard_assets_current() {
    node -e '
        const pinned = require("./api/dashboard/package-lock.json").packages["node_modules/htmx.org"];
        const installed = require("./api/dashboard/node_modules/htmx.org/package.json");
        process.exit(pinned.version === installed.version ? 0 : 1);
    ' 2>/dev/null
}

# The dashboard's browser tests drive Debian's Chromium through Playwright (whose own browser
# download is never used).
ensure_test_browser() {
    [ -x /usr/bin/chromium ] && return 0
    log "installing chromium (the dashboard's browser tests run in it)"
    apt_install chromium
}

# Runs a PostgreSQL command as the owner of $PG_DIR, from inside it: the postgres user may not
# be allowed into the caller's directory (root's home), and initdb and pg_ctl would say so.
as_pg_owner() { (cd "$PG_DIR" && "${PG_RUN[@]}" "$@"); }

# Starts a throwaway PostgreSQL 15 for the tests and exports TEST_DATABASE_URL.
start_test_postgres() {
    local bin=/usr/lib/postgresql/15/bin
    if [ ! -x "$bin/initdb" ]; then
        log "installing PostgreSQL 15"
        apt_install postgresql-15 || return 1
    fi
    PG_RUN=()
    PG_DIR="$(mktemp -d /tmp/cofounder-pg.XXXXXX)"
    local port
    port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR"
        PG_RUN=(runuser -u postgres --)
    fi
    as_pg_owner "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
    as_pg_owner "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
    export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    log "PostgreSQL 15 on 127.0.0.1:$port"
}

stop_test_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        as_pg_owner /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -m immediate stop \
            >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
