#!/usr/bin/env bash
# Integration: two people edit one section at once with `confer edit` (a scripted
# $EDITOR) and both keep their words, while `confer watch` shows it live; a failed edit
# keeps the user's file.
source "$(dirname "$0")/itlib.sh"

it_init
it_account alice alice-password-1 --operator
it_account bob bob-password-1
it_account carol carol-password-1
"$CONFERD" meeting import rg "$CONFER_TEST_DATA/rg-iem-report-2023-06.txt" --rapporteur alice \
    --data "$IT_DATA" >/dev/null
it_start

# Three people, three configuration folders (three terminals).
cfg() { XDG_CONFIG_HOME=$IT_TMP/cfg-$1 "${@:2}"; }
for who in alice bob carol; do
    printf '%s-password-1\n' "$who" | cfg "$who" "$CONFER" login "$who@127.0.0.1:$IT_PORT" \
        --password-stdin --trust-new-host >/dev/null
done
cfg alice "$CONFER" use rg >/dev/null
run cfg alice "$CONFER" members set bob editor
run cfg alice "$CONFER" members set carol viewer
cfg bob "$CONFER" use rg >/dev/null
cfg carol "$CONFER" use rg >/dev/null

# carol watches section 3 live.
cfg carol "$CONFER" watch 3 --for 30 --count 2 >"$IT_TMP/watch.out" 2>&1 &
watcher=$!
sleep 1

# alice opens section 3; while her editor is open, bob changes the same section.
cat >"$IT_TMP/ed_alice.sh" <<EOS
#!/bin/sh
touch "$IT_TMP/alice_open"
for i in \$(seq 200); do [ -f "$IT_TMP/go" ] && break; sleep 0.05; done
sed -i '1s/\$/ ALPHA-WORDS/' "\$1"
EOS
cat >"$IT_TMP/ed_bob.sh" <<'EOS'
#!/bin/sh
sed -i '$s/^/BETA-WORDS /' "$1"
EOS
chmod +x "$IT_TMP"/ed_*.sh
EDITOR=$IT_TMP/ed_alice.sh cfg alice "$CONFER" edit 3 >"$IT_TMP/alice.out" 2>&1 &
alice=$!
for _ in $(seq 100); do [[ -f $IT_TMP/alice_open ]] && break; sleep 0.05; done
[[ -f $IT_TMP/alice_open ]] || fail "alice's editor did not open"
# While her editor is open, the agenda and the section say she is in it.
run cfg carol "$CONFER" agenda
grep -qE "^3 .*● alice$" <<<"$IT_OUT" || fail "agenda does not mark alice in 3: $IT_OUT"
run cfg carol "$CONFER" show 3
[[ $IT_OUT == *"● alice is in this section now"* ]] || fail "show does not say alice is in 3: $IT_OUT"
pass "agenda and show mark who is in a section"
EDITOR=$IT_TMP/ed_bob.sh run cfg bob "$CONFER" edit 3
[[ $IT_OUT == *"saved at seq"* ]] || fail "bob's edit: $IT_OUT"
[[ $IT_ERR == *"● alice is in this section now"* ]] || fail "bob was not told alice is in 3: $IT_ERR"
touch "$IT_TMP/go"
wait "$alice" || fail "alice's edit failed: $(cat "$IT_TMP/alice.out")"
grep -q "merged with 1 change by bob" "$IT_TMP/alice.out" ||
    fail "alice was not told of bob's change: $(cat "$IT_TMP/alice.out")"

run cfg carol "$CONFER" show 3
[[ $IT_OUT == *ALPHA-WORDS* && $IT_OUT == *BETA-WORDS* ]] || fail "a change was lost: $IT_OUT"
pass "two editors of one section both keep their words"

wait "$watcher" || true
grep -q "ALPHA-WORDS" "$IT_TMP/watch.out" || fail "watch did not show the text live"
[[ $(grep -cE 'text item 3 "Industry engagement": body' "$IT_TMP/watch.out") -ge 2 ]] ||
    fail "watch did not show both edits: $(cat "$IT_TMP/watch.out")"
# Each change is told as words, with its author.
grep -qE '  bob +text item 3 "Industry engagement": body \+“BETA-WORDS ”' "$IT_TMP/watch.out" ||
    fail "watch did not show bob's words: $(cat "$IT_TMP/watch.out")"
grep -qE '  alice +text item 3 "Industry engagement": body \+“ ALPHA-WORDS”' "$IT_TMP/watch.out" ||
    fail "watch did not show alice's words: $(cat "$IT_TMP/watch.out")"
pass "confer watch shows the edits live"

# A viewer cannot edit: told why before any editor opens.
cat >"$IT_TMP/ed_carol.sh" <<EOS
#!/bin/sh
touch "$IT_TMP/carol_opened"
echo "CAROL WAS HERE" >>"\$1"
EOS
chmod +x "$IT_TMP/ed_carol.sh"
EDITOR=$IT_TMP/ed_carol.sh expect_fail cfg carol "$CONFER" edit 3
[[ $IT_ERR == *viewer* ]] || fail "the viewer was not told why: $IT_ERR"
[[ ! -e $IT_TMP/carol_opened ]] || fail "the editor opened for a viewer"
pass "a viewer is refused before the editor opens"

# An editor that fails sends nothing and keeps the file.
EDITOR=false expect_fail cfg bob "$CONFER" edit 3
[[ $IT_ERR == *"kept in"* ]] || fail "no kept file after a failed editor: $IT_ERR"
pass "a failed editor sends nothing"

# watch reconnects by itself after the server comes back, and replays what it missed.
cfg carol "$CONFER" watch --for 30 --count 1 >"$IT_TMP/watch2.out" 2>&1 &
watcher=$!
sleep 1
port=$IT_PORT
it_kill
it_start --listen "127.0.0.1:$port"
run cfg alice "$CONFER" actions add --to WP2 "Watch me after the restart"
wait "$watcher" || fail "watch did not come back: $(cat "$IT_TMP/watch2.out")"
grep -q "reconnected" "$IT_TMP/watch2.out" || fail "no reconnect: $(cat "$IT_TMP/watch2.out")"
grep -qE "create RG-IEM-[0-9]+" "$IT_TMP/watch2.out" || fail "missed change: $(cat "$IT_TMP/watch2.out")"
pass "watch reconnects and replays ($(grep reconnected "$IT_TMP/watch2.out"))"
it_stop
