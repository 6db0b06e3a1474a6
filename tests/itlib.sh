# itlib.sh - shared by the integration tests: a real conferd on a free loopback port
# with a temporary data folder, driven by the real confer client.
#
# Needs CONFERD, CONFER (and CONFER_TEST_TOOL for raw protocol checks), set by CTest.

set -euo pipefail

: "${CONFERD:?CONFERD must name the conferd binary}"
: "${CONFER:?CONFER must name the confer binary}"

IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/confer-it.XXXXXX")
IT_DATA=$IT_TMP/data
IT_PORT=
IT_PID=
export XDG_CONFIG_HOME=$IT_TMP/config
# A freed block is reused at once: the server's memory figures mean what they say.
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:quarantine_size_mb=1:detect_leaks=1

it_cleanup() {
    if [[ -n $IT_PID ]] && kill -0 "$IT_PID" 2>/dev/null; then
        kill -TERM "$IT_PID" 2>/dev/null || true
        wait "$IT_PID" 2>/dev/null || true
    fi
    rm -rf "$IT_TMP"
}
trap it_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [[ -f $IT_TMP/server.log ]]; then
        if grep -q "Sanitizer" "$IT_TMP/server.log"; then
            echo "--- server sanitizer report ---" >&2
            grep -A 40 "ERROR: .*Sanitizer\|runtime error" "$IT_TMP/server.log" | head -60 >&2
        else
            echo "--- server log (last 30 lines) ---" >&2
            tail -n 30 "$IT_TMP/server.log" >&2
        fi
    fi
    exit 1
}

pass() {
    echo "ok - $*"
}

# Makes the data folder (fast password hashing for tests).
it_init() {
    "$CONFERD" init --data "$IT_DATA" >/dev/null
}

# it_account NAME PASSWORD [--operator]
it_account() {
    local name=$1 pw=$2
    shift 2
    printf '%s\n' "$pw" | "$CONFERD" account add "$name" --password-stdin --data "$IT_DATA" \
        --pwhash-cost min --min-password 8 "$@" >/dev/null
}

# Starts conferd in the background on a free port; extra arguments go to serve.
it_start() {
    rm -f "$IT_TMP/port"
    "$CONFERD" serve --data "$IT_DATA" --listen 127.0.0.1:0 --port-file "$IT_TMP/port" \
        --pwhash-cost min --min-password 8 "$@" >>"$IT_TMP/server.log" 2>&1 &
    IT_PID=$!
    for _ in $(seq 1 100); do
        if [[ -s $IT_TMP/port ]]; then
            IT_PORT=$(cat "$IT_TMP/port")
            return 0
        fi
        kill -0 "$IT_PID" 2>/dev/null || fail "conferd exited at start"
        sleep 0.05
    done
    fail "conferd did not start listening"
}

# Stops conferd with SIGTERM and checks that it exits cleanly.
it_stop() {
    kill -TERM "$IT_PID"
    local rc=0
    wait "$IT_PID" || rc=$?
    IT_PID=
    [[ $rc -eq 0 ]] || fail "conferd exited with $rc after SIGTERM"
}

# Kills conferd at once.
it_kill() {
    kill -KILL "$IT_PID" 2>/dev/null || true
    wait "$IT_PID" 2>/dev/null || true
    IT_PID=
}

# it_login USER PASSWORD: logs the client in (trusting the new host key).
it_login() {
    printf '%s\n' "$2" | "$CONFER" login "$1@127.0.0.1:$IT_PORT" --password-stdin \
        --trust-new-host >/dev/null
}

# Resident memory of the server in KiB.
it_rss() {
    awk '/^VmRSS:/ {print $2}' "/proc/$IT_PID/status"
}

# expect_fail CMD...: the command must exit non-zero; its stderr is in $IT_ERR.
expect_fail() {
    local rc=0
    "$@" >"$IT_TMP/out" 2>"$IT_TMP/err" || rc=$?
    IT_OUT=$(cat "$IT_TMP/out")
    IT_ERR=$(cat "$IT_TMP/err")
    [[ $rc -ne 0 ]] || fail "expected failure: $*"
    IT_RC=$rc
}

# run CMD...: the command must succeed; its stdout is in $IT_OUT.
run() {
    local rc=0
    "$@" >"$IT_TMP/out" 2>"$IT_TMP/err" || rc=$?
    IT_OUT=$(cat "$IT_TMP/out")
    IT_ERR=$(cat "$IT_TMP/err")
    [[ $rc -eq 0 ]] || fail "command failed ($rc): $* :: $IT_ERR"
}
