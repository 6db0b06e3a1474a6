#!/usr/bin/env bash
# Integration: what the server does with bad peers — garbage frames, junk messages,
# oversized frames, silent connections, slow readers, disabled accounts.
source "$(dirname "$0")/itlib.sh"
: "${CONFER_TEST_TOOL:?CONFER_TEST_TOOL must name confer-testpeer}"
peer() { "$CONFER_TEST_TOOL" "$1" 127.0.0.1 "$IT_PORT" "${@:2}"; }

it_init
it_account alice alice-password-1
it_account bob bob-password-1
it_start --login-timeout 1500 --output-limit 1048576
run it_login alice alice-password-1

# A garbage frame closes its own connection only.
peer hold alice alice-password-1 20000 >"$IT_TMP/hold1" &
hold=$!
for _ in $(seq 50); do [[ -s $IT_TMP/hold1 ]] && break; sleep 0.1; done
run peer garbage bob bob-password-1
kill -0 "$hold" || fail "the other connection was closed too"
run "$CONFER" ping
kill "$hold" 2>/dev/null; wait "$hold" 2>/dev/null || true
pass "a garbage frame closes only its own connection"

run peer badmsg alice alice-password-1
pass "a plaintext that is not msgpack gets bad_request and the connection lives"

# The login deadline (1.5 s) would close it anyway: the close must come well before it,
# for the frame reason.
frames_before=$(grep -c "bad frame length: closing" "$IT_TMP/server.log" || true)
t0=$(date +%s%3N)
run peer oversize
elapsed=$(( $(date +%s%3N) - t0 ))
(( elapsed < 1000 )) || fail "oversize frame closed after $elapsed ms (login deadline: 1500)"
frames_after=$(grep -c "bad frame length: closing" "$IT_TMP/server.log" || true)
(( frames_after == frames_before + 1 )) || fail "no 'bad frame length' for the oversize frame"
pass "a frame over the limit closes the connection at once ($elapsed ms), for its length"

run peer idle
[[ $IT_OUT -ge 1000 && $IT_OUT -lt 8000 ]] || fail "login deadline closed after $IT_OUT ms"
pass "a connection that does not log in is closed after the deadline ($IT_OUT ms)"

# A client that stops reading is dropped; the server does not grow.
before=$(it_rss)
run peer flood alice alice-password-1 256
after=$(it_rss)
[[ $IT_OUT == *dropped* ]] || fail "slow reader not dropped: $IT_OUT"
(( after - before < 65536 )) || fail "server grew from $before to $after KiB"
grep -q "slow consumer" "$IT_TMP/server.log" || fail "no slow consumer in the log"
run "$CONFER" ping
pass "a client that stops reading is dropped (RSS $before -> $after KiB)"

# Disabling an account closes its live connection within a second.
peer hold bob bob-password-1 10000 >"$IT_TMP/hold2" &
hold=$!
for _ in $(seq 50); do [[ -s $IT_TMP/hold2 ]] && break; sleep 0.1; done
grep -q ready "$IT_TMP/hold2" || fail "hold peer did not log in"
"$CONFERD" account disable bob --data "$IT_DATA" >/dev/null
disabled=$(date +%s%3N)
wait "$hold" || fail "bob's connection stayed open"
line=$(grep '^closed ' "$IT_TMP/hold2") || fail "no closing: $(cat "$IT_TMP/hold2")"
closed_at=${line##* }
reason=${line#closed }
reason=${reason% *}
[[ $reason == "account disabled" ]] || fail "closing reason: $line"
(( closed_at - disabled < 1000 )) || fail "closed $((closed_at - disabled)) ms after disable"
expect_fail peer hold bob bob-password-1 100
pass "a disabled account's connection is closed within a second ($((closed_at - disabled)) ms)"

# An operator's password change closes the account's connections too.
"$CONFERD" account enable bob --data "$IT_DATA" >/dev/null
peer hold bob bob-password-1 10000 >"$IT_TMP/hold3" &
hold=$!
for _ in $(seq 50); do [[ -s $IT_TMP/hold3 ]] && break; sleep 0.1; done
printf 'bob-password-9\n' | "$CONFERD" account passwd bob --password-stdin --data "$IT_DATA" \
    --pwhash-cost min --min-password 8 >/dev/null
wait "$hold" || fail "bob's connection stayed open after a password change"
grep -q "password changed" "$IT_TMP/hold3" || fail "reason: $(cat "$IT_TMP/hold3")"
pass "an operator's password change closes the account's connections"

it_stop
grep -q "stopped" "$IT_TMP/server.log" || fail "no clean stop"
pass "graceful shutdown"
