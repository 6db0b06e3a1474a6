#!/usr/bin/env bash
# Integration: the live view in a real browser (Debian's chromium driven by playwright-core
# from tests/browser, installed by `make test`): tests/browser/live.js opens a share link,
# makes changes with the real client and waits for each in the page's DOM, kills and
# restarts conferd and sees the page resume without a reload, saves a projector-mode
# screenshot under the build folder, and revokes the link.
source "$(dirname "$0")/itlib.sh"

BROWSER_DIR=$(cd "$(dirname "$0")/browser" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
command -v node >/dev/null || fail "node is needed: make test installs it (apt-get install nodejs)"
[[ -x $CHROMIUM ]] || fail "chromium is needed: make test installs it (apt-get install chromium)"
[[ -d $BROWSER_DIR/node_modules/playwright-core ]] ||
    fail "playwright-core is not installed: run make test (or npm ci in tests/browser)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

it_init
it_account rap rap-password-1
"$CONFERD" meeting import rg "$CONFER_TEST_DATA/rg-iem-report-2023-06.txt" --rapporteur rap \
    --data "$IT_DATA" >/dev/null
# Fixed ports: the restarted server must be where the page and the client look for it.
P=$(free_port)
HP=$(free_port)
SERVE_ARGS=(serve --data "$IT_DATA" --listen "127.0.0.1:$P" --port-file "$IT_TMP/port"
    --pwhash-cost min --min-password 8 --http "127.0.0.1:$HP")
it_start --listen "127.0.0.1:$P" --http "127.0.0.1:$HP"
echo "$IT_PID" >"$IT_TMP/pid"
# The browser script restarts the server itself: whatever runs at the end is stopped.
trap 'kill -TERM "$(cat "$IT_TMP/pid" 2>/dev/null)" 2>/dev/null || true; sleep 0.5; it_cleanup' EXIT

it_login rap rap-password-1
run "$CONFER" use rg
run "$CONFER" share create --label browser
URL=$IT_OUT

# confer edit's $EDITOR: appends a word to the first line of the text.
cat >"$IT_TMP/editor.sh" <<'EOS'
#!/bin/sh
sed -i '1s/$/ BROWSER-TEXT-EDIT/' "$1"
EOS
chmod +x "$IT_TMP/editor.sh"

SHOT_DIR=$(cd "$(dirname "$CONFERD")/.." && pwd)
rc=0
EDITOR=$IT_TMP/editor.sh LIVE_URL=$URL LIVE_SHOT=$SHOT_DIR/live-projector.png \
    LIVE_PIDFILE=$IT_TMP/pid LIVE_LOG=$IT_TMP/server.log CHROMIUM=$CHROMIUM \
    LIVE_SERVE_ARGS=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${SERVE_ARGS[@]}") \
    CONFERD=$CONFERD CONFER=$CONFER NODE_PATH=$BROWSER_DIR/node_modules \
    timeout 180 node "$BROWSER_DIR/live.js" || rc=$?
[[ $rc -eq 0 ]] || fail "the browser test failed ($rc)"
[[ -s $SHOT_DIR/live-projector.png ]] || fail "no screenshot at $SHOT_DIR/live-projector.png"
# The server running now was started by the browser script, not by this shell: it is
# stopped and waited for by its pid.
pid=$(cat "$IT_TMP/pid")
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$pid" 2>/dev/null || fail "conferd did not stop after SIGTERM"
grep -q 'stopped$' "$IT_TMP/server.log" || fail "conferd did not stop cleanly"
IT_PID=
grep -q 'Sanitizer' "$IT_TMP/server.log" && fail "sanitizer report in the server log"
pass "the live view in chromium: changes, resume after a restart, projector, revoke"
