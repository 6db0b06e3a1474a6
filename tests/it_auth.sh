#!/usr/bin/env bash
# Integration: logins, tokens, passwords, rate limits and host-key pinning over a real
# conferd, driven with the real confer client.
source "$(dirname "$0")/itlib.sh"

it_init
it_account alice alice-password-1 --operator
it_account bob bob-password-1
it_start

# A good login, then the stored token serves whoami.
run it_login alice alice-password-1
run "$CONFER" whoami --json
[[ $IT_OUT == *'"user": "alice"'* && $IT_OUT == *'"operator": true'* ]] ||
    fail "whoami after login: $IT_OUT"
pass "login and whoami with the token"

run "$CONFER" ping
pass "ping"

# Unknown users and wrong passwords get the same answer.
expect_fail it_login bob wrong-password-1
wrong=${IT_ERR//bob/USER}
expect_fail it_login nobody wrong-password-1
unknown=${IT_ERR//nobody/USER}
[[ $wrong == "$unknown" ]] || fail "different answers: '$wrong' vs '$unknown'"
[[ -n $wrong ]] || fail "no message for a failed login"
pass "same error for an unknown user and a wrong password"

# The session still belongs to alice after failed logins of others.
run it_login alice alice-password-1

# Logout revokes the token on the server: a copy of it no longer works.
cp "$XDG_CONFIG_HOME/confer/session" "$IT_TMP/session.saved"
run "$CONFER" logout
expect_fail "$CONFER" whoami
cp "$IT_TMP/session.saved" "$XDG_CONFIG_HOME/confer/session"
expect_fail "$CONFER" whoami
[[ $IT_ERR == *login* ]] || fail "a revoked token should say to log in again: $IT_ERR"
pass "logout revokes the token"

# A password change: the new one works, the old one no longer does.
run it_login bob bob-password-1
printf 'bob-password-1\nbob-password-2\nbob-password-2\n' | run "$CONFER" passwd --password-stdin
expect_fail it_login bob bob-password-1
run it_login bob bob-password-2
pass "passwd"

# Too short a new password is refused with a reason.
printf 'bob-password-2\nshort\nshort\n' >"$IT_TMP/pw"
expect_fail "$CONFER" passwd --password-stdin <"$IT_TMP/pw"
[[ $IT_ERR == *short* || $IT_ERR == *least* ]] || fail "short password message: $IT_ERR"
pass "short passwords refused"

# Failed logins of one account from one address are limited (5 free, then a delay). The
# client names the error code in parentheses: match the code, not the words around it.
for i in 1 2 3 4 5; do
    expect_fail it_login carol "wrong-password-$i"
    [[ $IT_ERR == *"(unauthenticated)"* ]] || fail "attempt $i was not checked: $IT_ERR"
done
expect_fail it_login carol wrong-password-6
[[ $IT_ERR == *"(rate_limited)"* ]] || fail "no rate limit after 5 failures: $IT_ERR"
pass "rate_limited after repeated failures of one account"

# ... and per address: past 10 failures a minute, even a good password waits.
for i in 1 2 3 4; do
    expect_fail it_login "dave$i" wrong-password-x || true
done
expect_fail it_login alice alice-password-1
[[ $IT_ERR == *"(rate_limited)"* ]] || fail "no per-address limit: $IT_ERR"
pass "rate_limited per client address"

# Failed password logins never refuse a valid token, even from the same address.
run "$CONFER" whoami --json
[[ $IT_OUT == *'"user": "bob"'* ]] || fail "token login after password failures: $IT_OUT"
pass "a remembered token still works after password failures"

# Host-key pinning: the same address with another key is refused, with no way around it.
port=$IT_PORT
it_stop
mv "$IT_DATA" "$IT_TMP/data.old"
it_init
it_account alice alice-password-1
it_start --listen "127.0.0.1:$port"
[[ $IT_PORT == "$port" ]] || fail "could not restart on port $port"
printf 'alice-password-1\n' >"$IT_TMP/pw"
expect_fail "$CONFER" login "alice@127.0.0.1:$port" --password-stdin --trust-new-host <"$IT_TMP/pw"
[[ $IT_ERR == *"SHA256:"* ]] || fail "mismatch message should show fingerprints: $IT_ERR"
expect_fail "$CONFER" whoami
pass "a changed host key is refused"
it_stop
