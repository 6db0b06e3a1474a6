#!/usr/bin/env bash
# Integration: conferd's start-up errors. Each broken data folder (missing, unwritable, a
# read-only database, a read-only or foreign -shm/-wal left behind, a host key with the
# wrong mode) must stop `conferd serve` with a non-zero status and a message that names
# the file at fault, the system's reason and the fix; once fixed, the next start works.
source "$(dirname "$0")/itlib.sh"

# Permission bits do not bind root: as root, the server runs as nobody for these tests.
if [[ $(id -u) -eq 0 ]]; then
    if ! command -v setpriv >/dev/null || ! getent passwd nobody >/dev/null; then
        echo "SKIP: running as root without setpriv or a 'nobody' user: cannot test permissions"
        exit 0
    fi
    AS=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
    ME=nobody
else
    AS=()
    ME=$(id -un)
fi
chmod 711 "$IT_TMP"
RUN=$IT_TMP/run # the port file and anything else the server user writes
mkdir "$RUN"
chmod 777 "$RUN"

as_me() { "${AS[@]}" "$@"; }

# fresh DIR: a new data folder at DIR owned by the server user, cleanly closed.
fresh() {
    rm -rf "$1"
    "$CONFERD" init --data "$1" >/dev/null
    [[ $(id -u) -ne 0 ]] || chown -R nobody: "$1"
}

# serve_fails DIR: conferd serve must exit non-zero, without listening, within 20 s. Its
# stderr is in $IT_ERR.
serve_fails() {
    rm -f "$RUN/port"
    "${AS[@]}" "$CONFERD" serve --data "$1" --listen 127.0.0.1:0 --port-file "$RUN/port" \
        >"$IT_TMP/out" 2>"$IT_TMP/err" &
    local pid=$! rc=0
    for _ in $(seq 1 400); do
        kill -0 "$pid" 2>/dev/null || break
        if [[ -s $RUN/port ]]; then
            kill -TERM "$pid"
            wait "$pid" || true
            fail "conferd served $1 instead of refusing it: $(cat "$IT_TMP/err")"
        fi
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid" || true
        fail "conferd neither served nor exited on $1"
    fi
    wait "$pid" || rc=$?
    IT_ERR=$(cat "$IT_TMP/err")
    [[ $rc -ne 0 ]] || fail "conferd serve exited 0 on $1"
    [[ $IT_ERR != *Sanitizer* ]] || fail "sanitizer report: $IT_ERR"
}

# serves DIR: conferd serve starts on DIR (as the server user) and stops cleanly.
serves() {
    rm -f "$RUN/port"
    # Not through as_me: IT_PID must be conferd itself (setpriv execs it), not a subshell.
    "${AS[@]}" "$CONFERD" serve --data "$1" --listen 127.0.0.1:0 --port-file "$RUN/port" \
        >>"$IT_TMP/server.log" 2>&1 &
    IT_PID=$!
    for _ in $(seq 1 400); do
        [[ -s $RUN/port ]] && break
        kill -0 "$IT_PID" 2>/dev/null || fail "conferd did not serve $1: $(tail -n 3 "$IT_TMP/server.log")"
        sleep 0.05
    done
    if [[ ! -s $RUN/port ]]; then
        it_kill
        fail "conferd did not start listening on $1"
    fi
    it_stop
}

# writes DIR: an operator command that writes the database succeeds.
writes() {
    local name="w$RANDOM"
    printf 'password-%s\n' "$name" | as_me "$CONFERD" account add "$name" --password-stdin \
        --pwhash-cost min --min-password 8 --data "$1" >/dev/null 2>"$IT_TMP/err" ||
        fail "cannot write $1 after the fix: $(cat "$IT_TMP/err")"
}

# must_say TEXT...: each TEXT appears in $IT_ERR.
must_say() {
    for t in "$@"; do
        [[ $IT_ERR == *"$t"* ]] || fail "the message does not say '$t': $IT_ERR"
    done
    echo "    said: $IT_ERR"
}

# crash_leftovers DIR: a server killed with -9 leaves DIR's -wal (holding a change made
# while it ran: SQLite itself repairs the mode of an empty one) and -shm behind.
crash_leftovers() {
    rm -f "$RUN/port"
    # Not through as_me: IT_PID must be conferd itself (setpriv execs it), not a subshell.
    "${AS[@]}" "$CONFERD" serve --data "$1" --listen 127.0.0.1:0 --port-file "$RUN/port" \
        >>"$IT_TMP/server.log" 2>&1 &
    IT_PID=$!
    for _ in $(seq 1 400); do
        [[ -s $RUN/port ]] && break
        sleep 0.05
    done
    writes "$1"
    it_kill
    [[ -e $1/confer.db-shm && -s $1/confer.db-wal ]] || fail "no -wal/-shm after kill -9"
}

# A missing folder: named as missing, with what makes one.
t_missing_folder() {
    d=$IT_TMP/none
    serve_fails "$d"
    must_say "data folder $d does not exist" "conferd init --data $d"
    pass "a missing data folder is named, with the command that makes one"
}

# A folder the server user cannot write: SQLite cannot create the -wal and -shm there.
t_unwritable_folder() {
    d=$IT_TMP/unwritable
    fresh "$d"
    chmod 500 "$d"
    serve_fails "$d"
    must_say "$d" "not writable by user $ME" "Permission denied" "chmod"
    chmod 700 "$d"
    serves "$d"
    pass "an unwritable data folder is named with its user and the fix"
}

# A read-only database file: refused before SQLite makes a read-only -shm beside it, so
# that making the file writable again is all it takes.
t_readonly_db() {
    d=$IT_TMP/rodb
    fresh "$d"
    chmod 400 "$d/confer.db"
    serve_fails "$d"
    must_say "$d/confer.db is not writable by user $ME" "chmod"
    [[ ! -e $d/confer.db-shm ]] || fail "a refused start left $(stat -c %a "$d/confer.db-shm") -shm"
    chmod 600 "$d/confer.db"
    serves "$d"
    writes "$d"
    pass "a read-only database is refused and works once made writable"
}

# A read-only -shm left behind (as an older conferd left it on a read-only database).
t_readonly_shm() {
    d=$IT_TMP/roshm
    fresh "$d"
    crash_leftovers "$d"
    chmod 400 "$d/confer.db-shm"
    serve_fails "$d"
    must_say "$d/confer.db-shm" "not writable by user $ME" "chmod"
    chmod 600 "$d/confer.db-shm"
    serves "$d"
    writes "$d"
    pass "a read-only -shm left behind is named; fixed, the database works"
}

# A read-only -wal left behind: it may hold committed changes, so it is named, not deleted.
t_readonly_wal() {
    d=$IT_TMP/rowal
    fresh "$d"
    crash_leftovers "$d"
    chmod 400 "$d/confer.db-wal"
    serve_fails "$d"
    must_say "$d/confer.db-wal" "not writable by user $ME" "chmod"
    chmod 600 "$d/confer.db-wal"
    serves "$d"
    writes "$d"
    pass "a read-only -wal left behind is named; fixed, the database works"
}

# A -shm owned by another user (a run as root): named with its owner.
t_foreign_shm() {
    if [[ $(id -u) -eq 0 ]]; then
        d=$IT_TMP/rootshm
        fresh "$d"
        crash_leftovers "$d"
        chown root: "$d/confer.db-shm"
        serve_fails "$d"
        must_say "$d/confer.db-shm" "owned by root" "chown"
        chown nobody: "$d/confer.db-shm"
        serves "$d"
        pass "a -shm owned by another user is named with its owner"
    else
        echo "skip - a -shm owned by another user (needs root to chown)"
    fi
}

# A host key others can read: named with its mode and the chmod that fixes it.
t_key_mode() {
    d=$IT_TMP/keymode
    fresh "$d"
    chmod 640 "$d/host.key"
    serve_fails "$d"
    must_say "$d/host.key" "0640" "chmod 600 $d/host.key"
    [[ $IT_ERR != *"run conferd init"* ]] || fail "a bad key mode is not a missing folder: $IT_ERR"
    chmod 600 "$d/host.key"
    serves "$d"
    pass "a host key with the wrong mode is named with the fix"
}

# A host key the server user cannot read.
t_key_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        d=$IT_TMP/keyowner
        fresh "$d"
        chown root: "$d/host.key"
        serve_fails "$d"
        must_say "$d/host.key" "Permission denied" "owned by root" "chown"
        pass "a host key the server user cannot read is named with its owner"
    fi
}

# init where the user cannot make the folder: the path and the system's reason.
t_init_unwritable() {
    mkdir "$IT_TMP/locked"
    chmod 555 "$IT_TMP/locked"
    d=$IT_TMP/locked/data
    expect_fail as_me "$CONFERD" init --data "$d"
    must_say "$d" "Permission denied"
    pass "init names the folder it cannot make and why"
}

# The operator tools say the same as serve.
t_operator_readonly_db() {
    d=$IT_TMP/oprodb
    fresh "$d"
    chmod 400 "$d/confer.db"
    expect_fail as_me "$CONFERD" account list --data "$d"
    must_say "$d/confer.db is not writable by user $ME" "chmod"
    pass "operator commands name a read-only database too"
}

# Each case runs in its own subshell, so that one failure does not hide the others.
failed=()
for t in t_missing_folder t_unwritable_folder t_readonly_db t_readonly_shm t_readonly_wal \
    t_foreign_shm t_key_mode t_key_owner t_init_unwritable t_operator_readonly_db; do
    set +e
    (
        set -e
        "$t"
    )
    rc=$?
    set -e
    [[ $rc -eq 0 ]] || failed+=("$t")
done
[[ ${#failed[@]} -eq 0 ]] || { echo "FAILED: ${failed[*]}" >&2; exit 1; }
