#!/usr/bin/env bash
# Integration: a client whose saved session the server refuses stops and says to log in
# again; `confer watch` does not try the dead token again and again (each refused token is
# a failed login, and enough of them rate limit the account), nor a changed host key.
source "$(dirname "$0")/itlib.sh"

: "${CONFER_TEST_DATA:?CONFER_TEST_DATA must name the test data folder}"
SAMPLE=$CONFER_TEST_DATA/rg-iem-report-2023-06.txt

it_init
it_account rap rap-password-1
it_account bob bob-password-1
"$CONFERD" meeting import rg-iem "$SAMPLE" --rapporteur rap --data "$IT_DATA" >/dev/null ||
    fail "conferd meeting import"
it_start

# watch_until_exit PID LOG: waits (at most 30 s) for the watch to end; its exit code in WRC.
watch_until_exit() {
    local pid=$1
    WRC=
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            WRC=0
            wait "$pid" || WRC=$?
            return 0
        fi
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    fail "confer watch still running 30 s after its session was refused: $(cat "$2")"
}

# wait_for FILE TEXT: waits (at most 10 s) for TEXT in FILE.
wait_for() {
    for _ in $(seq 1 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$2' in $1: $(cat "$1")"
}

# ---- the account is disabled while watching ----
it_login rap rap-password-1
run "$CONFER" use rg-iem
"$CONFER" watch >"$IT_TMP/w1.out" 2>"$IT_TMP/w1.err" &
wpid=$!
wait_for "$IT_TMP/w1.out" "watching rg-iem"
before=$(grep -c "token login failed (user=rap)" "$IT_TMP/server.log" || true)
run "$CONFERD" account disable rap --data "$IT_DATA"
watch_until_exit "$wpid" "$IT_TMP/w1.err"
[[ $WRC -ne 0 ]] || fail "watch exited 0 after the account was disabled"
grep -q "log in again: confer login rap@127.0.0.1:$IT_PORT" "$IT_TMP/w1.err" ||
    fail "watch did not say to log in again: $(cat "$IT_TMP/w1.err")"
after=$(grep -c "token login failed (user=rap)" "$IT_TMP/server.log" || true)
tries=$((after - before))
[[ $tries -ge 1 && $tries -le 2 ]] || fail "watch tried the dead token $tries times"
if grep -q "token login refused: rate limited" "$IT_TMP/server.log"; then
    fail "the dead token got the address rate limited"
fi
pass "watch stops after the account is disabled ($tries refused token login), says to log in again"
run "$CONFERD" account enable rap --data "$IT_DATA"
it_login rap rap-password-1

# ---- the password is changed while watching ----
run "$CONFER" members set bob viewer
export XDG_CONFIG_HOME=$IT_TMP/config-bob
it_login bob bob-password-1
run "$CONFER" use rg-iem
"$CONFER" watch >"$IT_TMP/w2.out" 2>"$IT_TMP/w2.err" &
wpid=$!
wait_for "$IT_TMP/w2.out" "watching rg-iem"
before=$(grep -c "token login failed (user=bob)" "$IT_TMP/server.log" || true)
printf '%s\n' "bob-password-2" | "$CONFERD" account passwd bob --password-stdin --data "$IT_DATA" \
    --pwhash-cost min --min-password 8 >/dev/null || fail "account passwd bob"
# a password change revokes the tokens; the server closes the connections of the account
# only when it is disabled, so the watch learns it when its connection breaks: stop the
# server and start it again (on the same port)
kill -TERM "$IT_PID"
wait "$IT_PID" || true
IT_PID=
"$CONFERD" serve --data "$IT_DATA" --listen "127.0.0.1:$IT_PORT" --pwhash-cost min \
    --min-password 8 >>"$IT_TMP/server.log" 2>&1 &
IT_PID=$!
watch_until_exit "$wpid" "$IT_TMP/w2.err"
[[ $WRC -ne 0 ]] || fail "watch exited 0 after the password changed"
grep -q "log in again: confer login bob@127.0.0.1:$IT_PORT" "$IT_TMP/w2.err" ||
    fail "watch did not say to log in again: $(cat "$IT_TMP/w2.err")"
after=$(grep -c "token login failed (user=bob)" "$IT_TMP/server.log" || true)
tries=$((after - before))
[[ $tries -ge 1 && $tries -le 2 ]] || fail "watch tried the dead token $tries times"
pass "watch stops after the password changed ($tries refused token login), says to log in again"

# ---- the account is no longer a member: the subscription is refused ----
printf '%s\n' "bob-password-2" | "$CONFER" login "bob@127.0.0.1:$IT_PORT" --password-stdin \
    >/dev/null 2>&1 || fail "login bob again"
"$CONFER" watch >"$IT_TMP/w4.out" 2>"$IT_TMP/w4.err" &
wpid=$!
wait_for "$IT_TMP/w4.out" "watching rg-iem"
XDG_CONFIG_HOME=$IT_TMP/config "$CONFER" members remove bob --yes >/dev/null 2>&1 ||
    XDG_CONFIG_HOME=$IT_TMP/config "$CONFER" members remove bob >/dev/null ||
    fail "members remove bob"
before=$(grep -c "token login ok (user=bob)" "$IT_TMP/server.log" || true)
kill -TERM "$IT_PID"
wait "$IT_PID" || true
"$CONFERD" serve --data "$IT_DATA" --listen "127.0.0.1:$IT_PORT" --pwhash-cost min \
    --min-password 8 >>"$IT_TMP/server.log" 2>&1 &
IT_PID=$!
watch_until_exit "$wpid" "$IT_TMP/w4.err"
[[ $WRC -ne 0 ]] || fail "watch exited 0 when it may no longer subscribe"
[[ -s $IT_TMP/w4.err ]] || fail "watch said nothing when it may no longer subscribe"
after=$(grep -c "token login ok (user=bob)" "$IT_TMP/server.log" || true)
tries=$((after - before))
[[ $tries -le 3 ]] || fail "watch logged in $tries times to a meeting it may not watch"
pass "watch stops after three refused subscriptions ($tries logins): $(head -1 "$IT_TMP/w4.err")"
XDG_CONFIG_HOME=$IT_TMP/config "$CONFER" members set bob viewer >/dev/null || fail "members set bob"

# ---- another server (another host key) on the same address ----
printf '%s\n' "bob-password-2" | "$CONFER" login "bob@127.0.0.1:$IT_PORT" --password-stdin \
    >/dev/null 2>&1 || fail "login bob again"
"$CONFER" watch >"$IT_TMP/w3.out" 2>"$IT_TMP/w3.err" &
wpid=$!
wait_for "$IT_TMP/w3.out" "watching rg-iem"
kill -TERM "$IT_PID"
wait "$IT_PID" || true
IT_PID=
"$CONFERD" init --data "$IT_TMP/other" >/dev/null
"$CONFERD" serve --data "$IT_TMP/other" --listen "127.0.0.1:$IT_PORT" --pwhash-cost min \
    --min-password 8 >>"$IT_TMP/other.log" 2>&1 &
IT_PID=$!
watch_until_exit "$wpid" "$IT_TMP/w3.err"
[[ $WRC -ne 0 ]] || fail "watch exited 0 on another host key"
grep -qi "host key" "$IT_TMP/w3.err" || fail "watch did not name the host key: $(cat "$IT_TMP/w3.err")"
n=$(grep -c "connected" "$IT_TMP/other.log" || true)
[[ $n -le 2 ]] || fail "watch connected $n times to a server with another host key"
pass "watch stops on another host key and says so"

it_stop
