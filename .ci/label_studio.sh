#!/usr/bin/env bash
# A throwaway Label Studio server for tests/practitioner/test_label_studio_server.py.
#
#   .ci/label_studio.sh start ENV_FILE   install label-studio in its own virtual environment (if
#                                        not there yet), start it on 127.0.0.1 with a fresh data
#                                        folder and SQLite, an admin user and a legacy API token
#                                        made at start-up, wait until it answers, then write
#                                        EGLPP_LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY to ENV_FILE
#                                        (EGLPP_LABEL_STUDIO_FAILED=… if it could not)
#   .ci/label_studio.sh stop ENV_FILE    stop that server (the process it started) and delete its
#                                        data folder
#
# The server's pins (Django, …) stay in their own environment: EGLPP_LABEL_STUDIO_VENV (default
# ~/.cache/eglpp/label-studio-venv, kept between CI runs on one machine); eglpp never imports
# label-studio. It is installed from EGLPP_LABEL_STUDIO_SPEC (default below) with pip's
# constraints EGLPP_LABEL_STUDIO_CONSTRAINTS (default .ci/label_studio-constraints.txt: the
# bounds label-studio's own requirements leave open, and how to keep them current), and keyed
# on both: a changed spec or pin installs anew, an unchanged one reuses the environment, and a
# set that installed but could not start is not installed again (it fails at once, naming its
# log) until the spec or a pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${EGLPP_LABEL_STUDIO_VENV:-$HOME/.cache/eglpp/label-studio-venv}
SPEC=${EGLPP_LABEL_STUDIO_SPEC:-"label-studio>=1.20,<2"}  # 1.23.2 when this was written
CONSTRAINTS=${EGLPP_LABEL_STUDIO_CONSTRAINTS:-.ci/label_studio-constraints.txt}
cmd=${1:?usage: $0 start|stop ENV_FILE}
env_file=${2:?usage: $0 start|stop ENV_FILE}

# What the environment is made from: the spec, the constraints' lines (comments aside) and the
# Python that runs it.
key() {
    [ -r "$CONSTRAINTS" ] || { echo "EGLPP_LABEL_STUDIO_CONSTRAINTS: cannot read $CONSTRAINTS" >&2; exit 1; }
    { echo "$SPEC"; grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$CONSTRAINTS" || true
      python3 -V; } | sha256sum | cut -c1-16
}

# label-studio in $VENV, made anew unless it was made from this key; then an empty database
# with every migration applied (any label-studio command migrates first): each server starts
# from a copy in seconds instead of a minute.
install() {
    local k
    k=$(key)
    if [ "$(cat "$VENV/.eglpp-installed" 2>/dev/null)" = "$k" ] && [ -x "$VENV/bin/label-studio" ]; then
        return 0
    fi
    if [ "$(cat "$VENV/.eglpp-failed" 2>/dev/null)" = "$k" ]; then
        echo "EGLPP_LABEL_STUDIO_FAILED=install" >>"$env_file"
        echo "label-studio ($SPEC, constraints $CONSTRAINTS) installed in $VENV but did not start" \
            "last time; not installing the same set again. Its log: $VENV/template.log; bound" \
            "the package at fault in $CONSTRAINTS (or delete $VENV to try again)" >&2
        tail -n 5 "$VENV/template.log" >&2; exit 1
    fi
    if [ -f "$VENV/pyvenv.cfg" ]; then rm -rf "$VENV"; fi  # another key, or a half-made one
    mkdir -p "$(dirname "$VENV")" && python3 -m venv "$VENV"
    echo "installing $SPEC with the constraints of $CONSTRAINTS in $VENV"
    if ! "$VENV/bin/python" -m pip install -q "$SPEC" -c "$CONSTRAINTS" >"$VENV/pip.log" 2>&1; then
        grep -v "^WARNING: Location" "$VENV/pip.log" | tail -n 20 >&2
        echo "EGLPP_LABEL_STUDIO_FAILED=install" >>"$env_file"
        echo "label-studio did not install in $VENV (its log: $VENV/pip.log)" >&2; exit 1
    fi
    "$VENV/bin/python" -m pip freeze >"$VENV/freeze.txt" 2>/dev/null || true
    if LABEL_STUDIO_BASE_DATA_DIR="$VENV/template" OMP_NUM_THREADS=1 \
            "$VENV/bin/label-studio" version --data-dir "$VENV/template" >"$VENV/template.log" 2>&1 &&
        [ -s "$VENV/template/label_studio.sqlite3" ]; then
        echo "$k" >"$VENV/.eglpp-installed"
    else
        echo "$k" >"$VENV/.eglpp-failed"
        echo "EGLPP_LABEL_STUDIO_FAILED=install" >>"$env_file"
        echo "label-studio installed in $VENV but did not run; its log ($VENV/template.log):" >&2
        tail -n 20 "$VENV/template.log" >&2; exit 1
    fi
}

start() {
    : >"$env_file"
    trap 'echo "EGLPP_LABEL_STUDIO_FAILED=error" >>"$env_file"' ERR  # the test stops waiting
    install
    local data port token log
    data=$(mktemp -d /tmp/eglpp-label-studio.XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    token=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
    log="$data/server.log"
    if [ -s "$VENV/template/label_studio.sqlite3" ]; then cp "$VENV/template/label_studio.sqlite3" "$data/"; fi
    # the user and token come from the command line at start-up (label-studio's _create_user);
    # --enable-legacy-api-token lets "Authorization: Token …" through (off by default since 1.17);
    # ML_BLOCK_LOCAL_IP / SSRF_PROTECTION_ENABLED off: this throwaway server may call an ML
    # backend and its webhook on 127.0.0.1 (eglpp label-studio-backend's test)
    ML_BLOCK_LOCAL_IP=false SSRF_PROTECTION_ENABLED=false \
    LABEL_STUDIO_BASE_DATA_DIR="$data" OMP_NUM_THREADS=1 "$VENV/bin/label-studio" start --no-browser --internal-host 127.0.0.1 \
        --port "$port" --data-dir "$data" --username admin@eglpp.test \
        --password "$(python3 -c 'import secrets; print(secrets.token_hex(12))')" \
        --user-token "$token" --enable-legacy-api-token >"$log" 2>&1 </dev/null &
    local pid=$!
    printf 'EGLPP_LABEL_STUDIO_PID=%s\nEGLPP_LABEL_STUDIO_DATA=%s\n' "$pid" "$data" >>"$env_file"
    local url="http://127.0.0.1:$port"
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "EGLPP_LABEL_STUDIO_FAILED=exited" >>"$env_file"
            echo "label-studio exited before answering; its log:" >&2; tail -n 30 "$log" >&2; exit 1
        fi
        if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $token" \
                "$url/api/projects" || true)" = 200 ]; then
            printf 'EGLPP_LABEL_STUDIO_URL=%s\nLABEL_STUDIO_API_KEY=%s\n' "$url" "$token" >>"$env_file"
            echo "label-studio $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))') answers at $url"
            return 0
        fi
        sleep 1
    done
    echo "EGLPP_LABEL_STUDIO_FAILED=timeout" >>"$env_file"
    echo "label-studio did not answer at $url within 300 s; its log:" >&2; tail -n 30 "$log" >&2
    exit 1
}

stop() {
    [ -f "$env_file" ] || return 0
    local pid data
    pid=$(sed -n 's/^EGLPP_LABEL_STUDIO_PID=//p' "$env_file")
    data=$(sed -n 's/^EGLPP_LABEL_STUDIO_DATA=//p' "$env_file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    case "$data" in /tmp/eglpp-label-studio.*) rm -rf "$data" ;; esac
    rm -f "$env_file"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop ENV_FILE" >&2; exit 2 ;;
esac
