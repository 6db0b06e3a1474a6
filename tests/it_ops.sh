#!/usr/bin/env bash
# Integration: the operator's tool. conferd backup writes the database and the host key;
# conferd restore refuses a folder in use, a file that is not a confer database and a key
# that is not the folder's (unless --replace-key), keeps the old database aside and sets
# the modes. conferd account add checks the password rules before asking it again; a
# second conferd demo on a folder says how to set a password.
source "$(dirname "$0")/itlib.sh"

: "${CONFER_TEST_DATA:?CONFER_TEST_DATA must name the test data folder}"
SAMPLE=$CONFER_TEST_DATA/rg-iem-report-2023-06.txt
export COLUMNS=200

mode() {
    stat -c %a "$1"
}

# status REF: the status of an action, as the client lists it (for a program: tabs)
status_of() {
    run env -u COLUMNS "$CONFER" actions
    awk -F '\t' -v ref="$1" '$1 == ref {print $4}' <<<"$IT_OUT"
}

it_init
it_account rap rap-password-1
"$CONFERD" meeting import rg-iem "$SAMPLE" --rapporteur rap --data "$IT_DATA" >/dev/null ||
    fail "conferd meeting import"
it_start
it_login rap rap-password-1
run "$CONFER" use rg-iem
fp=$("$CONFERD" fingerprint --data "$IT_DATA")

# ---- backup while serving ----
B=$IT_TMP/backups
mkdir -p "$B"
run "$CONFERD" backup "$B/b1" --data "$IT_DATA"
[[ $IT_OUT == *"$B/b1.key"* ]] || fail "backup does not name the key file: $IT_OUT"
[[ -f $B/b1 && -f $B/b1.key ]] || fail "backup wrote no database and key: $(ls -l "$B")"
[[ $(mode "$B/b1") == 600 && $(mode "$B/b1.key") == 600 ]] ||
    fail "backup modes: $(ls -l "$B")"
cmp -s "$B/b1.key" "$IT_DATA/host.key" || fail "the backup's key is not the host key"
expect_fail "$CONFERD" backup "$B/b1" --data "$IT_DATA"
[[ $IT_ERR == *"exists"* ]] || fail "a second backup to the same file: $IT_ERR"
run "$CONFERD" backup "$B/nokey" --no-key --data "$IT_DATA"
[[ ! -e $B/nokey.key ]] || fail "--no-key wrote a key"
[[ $IT_OUT == *"host key"*"$IT_DATA/host.key"* ]] || fail "--no-key does not say where the key is: $IT_OUT"
run "$CONFERD" backup --help
[[ $IT_OUT == *"FILE.key"* && $IT_OUT == *"--no-key"* ]] || fail "backup --help: $IT_OUT"
pass "backup: the database and FILE.key (0600) while serving; --no-key says where the key is"

# a change after the backup, which the restore takes back
run "$CONFER" actions set RG-IEM-1 --status done
[[ $(status_of RG-IEM-1) == *done ]] || fail "RG-IEM-1 not done"

# ---- restore refuses a folder in use ----
sum_before=$(sha256sum "$IT_DATA/confer.db" | cut -d' ' -f1)
expect_fail "$CONFERD" restore "$B/b1" --data "$IT_DATA"
[[ $IT_ERR == *"in use"*"stop it first"* ]] || fail "restore on a served folder: $IT_ERR"
ls "$IT_DATA" | grep -q before-restore && fail "restore on a served folder set something aside"
pass "restore refuses the folder a conferd serve runs on"
it_stop

# ---- restore refuses what is not a confer database, before anything ----
sum_before=$(sha256sum "$IT_DATA/confer.db" | cut -d' ' -f1)
cp "$SAMPLE" "$B/text"
expect_fail "$CONFERD" restore "$B/text" --data "$IT_DATA"
[[ $IT_ERR == *"not a confer database"*"nothing changed"* ]] || fail "restore of a text: $IT_ERR"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' \
    "$B/other.sqlite"
expect_fail "$CONFERD" restore "$B/other.sqlite" --data "$IT_DATA"
[[ $IT_ERR == *"not a confer database"* ]] || fail "restore of another SQLite file: $IT_ERR"
# a confer database with a damaged page
cp "$B/b1" "$B/damaged"
size=$(stat -c %s "$B/damaged")
python3 -c '
import sys
p, size = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(size // 2)
    f.write(b"\xff" * 4096)
' "$B/damaged" "$size"
expect_fail "$CONFERD" restore "$B/damaged" --data "$IT_DATA"
[[ $IT_ERR == *"nothing changed"* ]] || fail "restore of a damaged copy: $IT_ERR"
[[ $(sha256sum "$IT_DATA/confer.db" | cut -d' ' -f1) == "$sum_before" ]] ||
    fail "a refused restore changed the database"
ls "$IT_DATA" | grep -q "before-restore\|restoring" && fail "a refused restore left files: $(ls "$IT_DATA")"
pass "restore checks the backup first: a text, another SQLite file, a damaged copy are refused"

# ---- restore ----
chmod 0755 "$IT_DATA"
run "$CONFERD" restore "$B/b1" --data "$IT_DATA"
aside=$(ls "$IT_DATA" | grep '^confer.db.before-restore-[0-9-]*$') || fail "no database set aside: $(ls "$IT_DATA")"
[[ $IT_OUT == *"$IT_DATA/$aside"* ]] || fail "restore does not say where the old database is: $IT_OUT"
[[ $(mode "$IT_DATA") == 700 && $(mode "$IT_DATA/confer.db") == 600 &&
    $(mode "$IT_DATA/host.key") == 600 ]] || fail "modes after restore: $(ls -la "$IT_DATA")"
[[ $("$CONFERD" fingerprint --data "$IT_DATA") == "$fp" ]] || fail "the host key changed"
it_start
it_login rap rap-password-1
run "$CONFER" use rg-iem
[[ $(status_of RG-IEM-1) == open ]] || fail "the restore did not take the change back"
pass "restore: the backup in place (the change after it gone), the old database kept as $aside, modes 0700/0600"
it_stop

# ---- host keys ----
"$CONFERD" init --data "$IT_TMP/other" >/dev/null
"$CONFERD" backup "$B/o1" --data "$IT_TMP/other" >/dev/null
expect_fail "$CONFERD" restore "$B/o1" --data "$IT_DATA"
[[ $IT_ERR == *"is not the folder's"*"--replace-key"* ]] || fail "restore with another key: $IT_ERR"
[[ $("$CONFERD" fingerprint --data "$IT_DATA") == "$fp" ]] || fail "a refused restore changed the key"
ofp=$("$CONFERD" fingerprint --data "$IT_TMP/other")
run "$CONFERD" restore "$B/o1" --replace-key --data "$IT_DATA"
[[ $("$CONFERD" fingerprint --data "$IT_DATA") == "$ofp" ]] || fail "--replace-key did not put the key"
keyaside=$(ls "$IT_DATA" | grep '^host.key.before-restore-') || fail "the old key was not kept"
[[ $(mode "$IT_DATA/$keyaside") == 600 ]] || fail "the old key's mode"
pass "restore refuses another host key, --replace-key puts it and keeps the old one aside"

# --no-key: the folder keeps its key; a new folder without a key is refused
run "$CONFERD" restore "$B/nokey" --data "$IT_DATA"
[[ $("$CONFERD" fingerprint --data "$IT_DATA") == "$ofp" ]] || fail "restore without a key changed it"
expect_fail "$CONFERD" restore "$B/nokey" --data "$IT_TMP/fresh"
[[ $IT_ERR == *"no host key"* ]] || fail "restore without any key: $IT_ERR"
run "$CONFERD" restore "$B/b1" --data "$IT_TMP/fresh"
[[ $("$CONFERD" fingerprint --data "$IT_TMP/fresh") == "$fp" ]] || fail "restore into a new folder"
[[ $(mode "$IT_TMP/fresh") == 700 ]] || fail "the new folder's mode"
pass "restore without FILE.key keeps the folder's key, refuses a folder without one; makes a new folder"

# ---- account add: the rules before the second entry ----
python3 - "$CONFERD" "$IT_DATA" <<'PY' || fail "account add on a terminal"
import os, pty, select, sys, time
conferd, data = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(conferd, [conferd, "account", "add", "carol", "--data", data,
                       "--pwhash-cost", "min", "--min-password", "12"])
seen = b""
def wait_for(text, after=0, limit=20.0):
    """Waits for text in the output after the offset `after`; returns where it ends."""
    global seen
    end = time.monotonic() + limit
    while seen.find(text, after) < 0:
        left = end - time.monotonic()
        if left <= 0:
            raise SystemExit("no %r in %r" % (text, seen[after:]))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise SystemExit("ended without %r: %r" % (text, seen))
            seen += chunk
    return seen.find(text, after) + len(text)
at = wait_for(b"New password: ")
os.write(fd, b"short\n")
at = wait_for(b"too short", at)
at = wait_for(b"New password: ", at)
# the rules came first: nothing asked the short one again
assert b"Repeat it" not in seen, seen
os.write(fd, b"a-long-enough-password\n")
at = wait_for(b"Repeat it: ", at)
os.write(fd, b"a-long-enough-password\n")
wait_for(b"account carol added", at)
_, st = os.waitpid(pid, 0)
assert os.WEXITSTATUS(st) == 0, st
PY
pass "account add on a terminal: a too short password is refused before it is asked again"

# ---- a second demo says how to set a password ----
"$CONFERD" init --data "$IT_TMP/demo" >/dev/null
"$CONFERD" demo --data "$IT_TMP/demo" --listen 127.0.0.1:0 --port-file "$IT_TMP/demo.port" \
    >"$IT_TMP/demo.out" 2>>"$IT_TMP/server.log" &
dpid=$!
for _ in $(seq 1 100); do
    [[ -s $IT_TMP/demo.port ]] && break
    sleep 0.05
done
kill -TERM "$dpid"
wait "$dpid" || true
grep -q "conferd account passwd NAME --data $IT_TMP/demo" "$IT_TMP/demo.out" ||
    fail "a second demo does not say how to set a password: $(cat "$IT_TMP/demo.out")"
pass "a second demo says: conferd account passwd NAME --data DIR"
