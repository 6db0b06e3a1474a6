#!/usr/bin/env bash
# Integration: `confer write` in a real terminal (tmux): typed words reach the server, another
# person's change appears on the screen, undo takes back one's own words, a viewer reads
# only, who else is here shows on the status line, and Ctrl-Q quits cleanly.
source "$(dirname "$0")/itlib.sh"

command -v tmux >/dev/null || { echo "ok - skipped: no tmux"; exit 0; }

it_init
it_account alice alice-password-1 --operator
it_account bob bob-password-1
it_account carol carol-password-1
"$CONFERD" meeting import rg "$CONFER_TEST_DATA/rg-iem-report-2023-06.txt" --rapporteur alice \
    --data "$IT_DATA" >/dev/null
it_start

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

# A tmux server of our own (its socket in the test folder), ended with the test.
TM=(tmux -S "$IT_TMP/tmux.sock")
tm_cleanup() {
    "${TM[@]}" kill-server 2>/dev/null || true
    it_cleanup
}
trap tm_cleanup EXIT

# write_in NAME WHO ARGS...: confer write in a 100x30 terminal; exit status to NAME.rc.
write_in() {
    local name=$1 who=$2
    shift 2
    cat >"$IT_TMP/$name.sh" <<EOS
#!/bin/sh
export LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_CONFIG_HOME=$IT_TMP/cfg-$who XDG_STATE_HOME=$IT_TMP/state-$who
export ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='${UBSAN_OPTIONS:-}'
"$CONFER" write $(printf ' %q' "$@") 2>"$IT_TMP/$name.err"
echo \$? >"$IT_TMP/$name.rc"
sleep 60 # the screen keeps what it printed last; the tmux server is ended with the test
EOS
    chmod +x "$IT_TMP/$name.sh"
    "${TM[@]}" new-session -d -s "$name" -x 100 -y 30 "$IT_TMP/$name.sh"
}

screen() { "${TM[@]}" capture-pane -p -t "$1" 2>/dev/null || true; }

# wait_screen NAME TEXT: the screen shows TEXT within 10 s.
wait_screen() {
    for _ in $(seq 200); do
        screen "$1" | grep -qF -- "$2" && return 0
        sleep 0.05
    done
    fail "screen $1 does not show '$2': $(screen "$1") [err: $(cat "$IT_TMP/$1.err" 2>/dev/null) rc: $(cat "$IT_TMP/$1.rc" 2>/dev/null)]"
}

# wait_show TEXT [absent]: confer show 3 has (or, with absent, has no more) TEXT within 10 s.
wait_show() {
    for _ in $(seq 100); do
        run cfg bob "$CONFER" show 3
        if [[ ${2:-} == absent ]]; then
            [[ $IT_OUT != *"$1"* ]] && return 0
        else
            [[ $IT_OUT == *"$1"* ]] && return 0
        fi
        sleep 0.1
    done
    fail "confer show 3 ${2:-lacks} '$1': $IT_OUT"
}

# Outside a terminal it says what to use instead; it names one text.
expect_fail cfg alice "$CONFER" write 3 </dev/null
[[ $IT_ERR == *"needs a terminal"* ]] || fail "write without a terminal: $IT_ERR"
expect_fail cfg alice "$CONFER" write
[[ $IT_RC -eq 2 ]] || fail "write without a text: exit $IT_RC"

write_in alice alice 3
wait_screen alice "item 3 Industry engagement | seq "
wait_screen alice "connected"

# Typed words, multi-byte ones too, reach the server.
"${TM[@]}" send-keys -t alice -l "ZULU-typed 会議-words "
wait_show "ZULU-typed 会議-words "
wait_screen alice "ZULU-typed 会議-words"
pass "typed words reach the server"

# Another person's change appears on the screen, and the cursor stays where it was: the next
# words go after ours, not after theirs.
cat >"$IT_TMP/ed_bob.sh" <<'EOS'
#!/bin/sh
sed -i '1s/^/BRAVO-remote /' "$1"
EOS
chmod +x "$IT_TMP/ed_bob.sh"
EDITOR=$IT_TMP/ed_bob.sh run cfg bob "$CONFER" edit 3
wait_screen alice "BRAVO-remote ZULU-typed"
"${TM[@]}" send-keys -t alice -l "YANKEE"
wait_show "BRAVO-remote ZULU-typed 会議-words YANKEE"
pass "another person's change shows on the screen; the cursor kept its place"

# Ctrl-Z takes back one's own last word; Ctrl-Y brings it back.
"${TM[@]}" send-keys -t alice C-z
wait_show "YANKEE" absent
"${TM[@]}" send-keys -t alice C-y
wait_show "会議-words YANKEE"
"${TM[@]}" send-keys -t alice C-z
wait_show "YANKEE" absent
pass "undo and redo of one's own typing"

# Word motion and deletes: Ctrl-Left twice from after "会議-words " lands on "会議"; Backspace
# there removes the space before it, Delete the first ideograph.
"${TM[@]}" send-keys -t alice C-Left C-Left BSpace DC
wait_show "ZULU-typed議-words"
pass "word motion, Backspace and Delete"

# A viewer opens read-only and says why; the writer sees who else is here.
write_in carol carol 3
wait_screen carol "read-only: you are a viewer"
wait_screen alice "here: carol"
"${TM[@]}" send-keys -t carol -l "NOPE"
wait_screen carol "read-only"
"${TM[@]}" send-keys -t carol C-q
for _ in $(seq 200); do [[ -s $IT_TMP/carol.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/carol.rc" 2>/dev/null) == 0 ]] ||
    fail "carol's write did not end cleanly: $(cat "$IT_TMP/carol.err" 2>/dev/null)"
wait_screen alice "here: nobody else"
run cfg bob "$CONFER" show 3
[[ $IT_OUT != *NOPE* ]] || fail "a viewer's keys changed the text"
pass "a viewer reads only; presence on the status line"

# A paste longer than one burst of keys arrives whole.
paste=$(printf 'é%.0s' $(seq 2500))END-PASTE
"${TM[@]}" send-keys -t alice -l "$paste"
wait_show "$paste"
"${TM[@]}" send-keys -t alice C-z
wait_show "END-PASTE" absent
pass "a long paste arrives whole; one undo takes it back"

# Home goes to the start of the row (here the text's start).
"${TM[@]}" send-keys -t alice Home
"${TM[@]}" send-keys -t alice -l "HOME-mark "
wait_show "HOME-mark BRAVO-remote"
pass "Home"

# Another writer's cursor shows on the screen with the name at its row, and follows its moves;
# it goes when that writer quits.
write_in bobw bob 3
wait_screen bobw "connected"
wait_screen alice "cursors: bob at row 1" # the first row is full: the name goes to the status line
"${TM[@]}" send-keys -t bobw Down Down
for _ in $(seq 200); do
    screen alice | sed -n 3p | grep -qF "<bob" && break
    sleep 0.05
done
screen alice | sed -n 3p | grep -qF "<bob" || fail "bob's cursor is not at the third row: $(screen alice)"
screen alice | grep -qF "cursors: bob" && fail "bob's cursor stayed on the first row: $(screen alice)"
echo "# alice's screen with bob's cursor:"
screen alice | sed 's/^/#   /'
"${TM[@]}" send-keys -t bobw C-q
for _ in $(seq 200); do [[ -s $IT_TMP/bobw.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/bobw.rc" 2>/dev/null) == 0 ]] || fail "bob's write: $(cat "$IT_TMP/bobw.err")"
for _ in $(seq 200); do screen alice | grep -qE "<bob|cursors: bob" || break; sleep 0.05; done
screen alice | grep -qE "<bob|cursors: bob" && fail "bob's cursor stayed after he quit: $(screen alice)"
pass "another writer's cursor shows with the name at its row and follows its moves"

# Ctrl-F finds: Enter goes to the next match and wraps to the start; Esc closes the prompt.
"${TM[@]}" send-keys -t alice C-f
wait_screen alice "find: "
"${TM[@]}" send-keys -t alice -l "Ericsson"
"${TM[@]}" send-keys -t alice Enter Escape
"${TM[@]}" send-keys -t alice -l "FIND-mark "
wait_show "A delegate of FIND-mark Ericsson Canada"
"${TM[@]}" send-keys -t alice C-f BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace
"${TM[@]}" send-keys -t alice -l "HOME-mark"
"${TM[@]}" send-keys -t alice Enter
wait_screen alice "wrapped to the start"
"${TM[@]}" send-keys -t alice Escape
"${TM[@]}" send-keys -t alice -l "WRAP-mark "
wait_show "WRAP-mark HOME-mark BRAVO-remote"
pass "Ctrl-F finds the next match and wraps"

# Ctrl-End goes to the end of the text, Ctrl-Home back to its start.
"${TM[@]}" send-keys -t alice C-End
"${TM[@]}" send-keys -t alice -l " CTRL-END-mark"
wait_show "and/or Counsellor. CTRL-END-mark"
"${TM[@]}" send-keys -t alice C-Home
"${TM[@]}" send-keys -t alice -l "CTRL-HOME-mark "
wait_show "CTRL-HOME-mark WRAP-mark HOME-mark"
pass "Ctrl-Home and Ctrl-End"

# Ctrl-G opens another item's body in place; typing goes there; back to item 3.
"${TM[@]}" send-keys -t alice C-g
wait_screen alice "go to item: "
"${TM[@]}" send-keys -t alice -l "2"
"${TM[@]}" send-keys -t alice Enter
wait_screen alice " item 2 "
"${TM[@]}" send-keys -t alice -l "GOTO-words "
for _ in $(seq 100); do
    run cfg bob "$CONFER" show 2
    [[ $IT_OUT == *"GOTO-words "* ]] && break
    sleep 0.1
done
[[ $IT_OUT == *"GOTO-words "* ]] || fail "item 2 lacks the words typed after Ctrl-G: $IT_OUT"
run cfg bob "$CONFER" show 3
[[ $IT_OUT != *"GOTO-words"* ]] || fail "the words typed after Ctrl-G went to item 3"
"${TM[@]}" send-keys -t alice C-g
"${TM[@]}" send-keys -t alice -l "3"
"${TM[@]}" send-keys -t alice Enter
wait_screen alice " item 3 "
wait_screen alice "WRAP-mark HOME-mark"
pass "Ctrl-G opens another item's body in place"

# An action's text, named by its ref.
write_in bobact bob RG-IEM-3
wait_screen bobact "action RG-IEM-3"
"${TM[@]}" send-keys -t bobact -l "ACTION-words "
for _ in $(seq 100); do
    run cfg bob "$CONFER" actions --json
    [[ $IT_OUT == *"ACTION-words "* ]] && break
    sleep 0.1
done
[[ $IT_OUT == *"ACTION-words "* ]] || fail "the action's text lacks the typed words: $IT_OUT"
"${TM[@]}" send-keys -t bobact C-q
for _ in $(seq 200); do [[ -s $IT_TMP/bobact.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/bobact.rc" 2>/dev/null) == 0 ]] || fail "write RG-IEM-3: $(cat "$IT_TMP/bobact.err")"
pass "an action's text"

# A decision's text, named by its id.
run cfg bob "$CONFER" decisions --json
did=$(grep -o '"id": *[0-9]*' <<<"$IT_OUT" | head -1 | grep -o '[0-9]*$')
[[ -n $did ]] || fail "no decision in the sample: $IT_OUT"
write_in bobdec bob --decision "#$did"
wait_screen bobdec "decision"
"${TM[@]}" send-keys -t bobdec -l "DECISION-words "
for _ in $(seq 100); do
    run cfg bob "$CONFER" decisions --json
    [[ $IT_OUT == *"DECISION-words "* ]] && break
    sleep 0.1
done
[[ $IT_OUT == *"DECISION-words "* ]] || fail "the decision's text lacks the typed words: $IT_OUT"
"${TM[@]}" send-keys -t bobdec C-q
for _ in $(seq 200); do [[ -s $IT_TMP/bobdec.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/bobdec.rc" 2>/dev/null) == 0 ]] || fail "write --decision: $(cat "$IT_TMP/bobdec.err")"
pass "a decision's text"

# Three people change item 3 at once: alice and bob live in `confer write 3`, bob also with
# `confer edit 3`; the server is killed and started again on the same port in the middle.
# Everything typed arrives, and each screen shows the text the server has, as far as it goes.
cat >"$IT_TMP/ed_append.sh" <<'EOS'
#!/bin/sh
sed -i '$a EDIT-line-appended' "$1"
EOS
chmod +x "$IT_TMP/ed_append.sh"
write_in bobc bob 3
wait_screen bobc "connected"
"${TM[@]}" send-keys -t bobc Down Down End
"${TM[@]}" send-keys -t alice -l "ALICE-one "
"${TM[@]}" send-keys -t bobc -l " BOB-one"
EDITOR=$IT_TMP/ed_append.sh cfg bob "$CONFER" edit 3 >"$IT_TMP/edit3.out" 2>&1 &
edit_pid=$!
"${TM[@]}" send-keys -t alice -l "ALICE-two "
"${TM[@]}" send-keys -t bobc -l " BOB-two"
wait "$edit_pid" || fail "confer edit 3 during live writing: $(cat "$IT_TMP/edit3.out")"
wait_show "EDIT-line-appended"
t0=$(date +%s%N)
cport=$IT_PORT
it_kill
"${TM[@]}" send-keys -t alice -l "ALICE-offline "
"${TM[@]}" send-keys -t bobc -l " BOB-offline"
wait_screen alice "offline"
wait_screen bobc "offline"
it_start --listen "127.0.0.1:$cport"
[[ $IT_PORT == "$cport" ]] || fail "could not restart on port $cport"
"${TM[@]}" send-keys -t alice -l "ALICE-back "
"${TM[@]}" send-keys -t bobc -l " BOB-back"
for w in "ALICE-one ALICE-two ALICE-offline ALICE-back " "BOB-one BOB-two BOB-offline BOB-back"; do
    wait_show "$w"
done
t1=$(date +%s%N)
wait_screen alice "connected"
wait_screen bobc "connected"
# The screens settle on the server's text: the visible rows (less the status line), in runs
# between the rows that name a cursor at their end (the name covers the row's last words),
# each come whole in it, compared without white space, which soft wrap moves.
screen_matches() {
    local run_text= row
    while IFS= read -r row; do
        if [[ $row =~ \<[a-z,]+$ ]]; then
            [[ -z $run_text || $1 == *"$run_text"* ]] || return 1
            run_text=
        else
            run_text+=$(tr -d ' \t' <<<"$row")
        fi
    done < <(screen "$2" | sed '$d')
    [[ -z $run_text || $1 == *"$run_text"* ]]
}
for name in alice bobc; do
    ok=
    for _ in $(seq 100); do
        run cfg bob "$CONFER" show 3
        body=$(tr -d ' \n\t' <<<"$IT_OUT")
        screen_matches "$body" "$name" && ok=1 && break
        sleep 0.1
    done
    [[ -n $ok ]] || fail "the screen of $name is not the server's text: $(screen "$name") --- $IT_OUT"
done
screen alice | grep -qF "ALICE-back" || fail "alice's screen lacks her words"
screen bobc | grep -qF "BOB-back" || fail "bob's screen lacks his words"
screen alice | grep -qF "BOB-back" || fail "alice's screen lacks bob's words: $(screen alice)"
echo "# three at once across a restart: all words in $(((t1 - t0) / 1000000)) ms from the kill"
echo "# alice's screen:"
screen alice | sed 's/^/#   /'
echo "# bob's screen:"
screen bobc | sed 's/^/#   /'
"${TM[@]}" send-keys -t bobc C-q
for _ in $(seq 200); do [[ -s $IT_TMP/bobc.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/bobc.rc" 2>/dev/null) == 0 ]] || fail "bob's write: $(cat "$IT_TMP/bobc.err")"
pass "two live writers and an edit converge, across a server restart, nothing typed lost"

# The server goes away: typing goes on; back on the same port, the words reach it.
port=$IT_PORT
it_kill
wait_screen alice "offline"
"${TM[@]}" send-keys -t alice -l "OFFLINE-words"
wait_screen alice "OFFLINE-words"
it_start --listen "127.0.0.1:$port"
[[ $IT_PORT == "$port" ]] || fail "could not restart on port $port"
wait_show "OFFLINE-words"
wait_screen alice "connected"
pass "typing goes on while the server is away; the words reach it after the reconnect"

# F1 shows the help line; Ctrl-Q quits cleanly.
"${TM[@]}" send-keys -t alice F1
wait_screen alice "Ctrl-Q quit"
"${TM[@]}" send-keys -t alice C-q
for _ in $(seq 200); do [[ -s $IT_TMP/alice.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/alice.rc" 2>/dev/null) == 0 ]] ||
    fail "write did not quit cleanly: $(cat "$IT_TMP/alice.err" 2>/dev/null)"
wait_screen alice "written, at seq"
[[ ! -d $IT_TMP/state-alice ]] || [[ -z $(ls -A "$IT_TMP/state-alice/confer" 2>/dev/null) ]] ||
    fail "a recovery file was written after a clean quit"
pass "Ctrl-Q quits cleanly"

# Quitting with words the server did not take writes them to a private recovery file.
write_in alice2 alice 3
wait_screen alice2 "connected"
it_kill
wait_screen alice2 "offline"
"${TM[@]}" send-keys -t alice2 -l "LOST-words"
wait_screen alice2 "LOST-words"
"${TM[@]}" send-keys -t alice2 C-q
for _ in $(seq 200); do [[ -s $IT_TMP/alice2.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/alice2.rc" 2>/dev/null) == 1 ]] || fail "a quit with unsent words must fail"
path=$(sed -n 's/^confer: your text is kept in //p' "$IT_TMP/alice2.err")
[[ -n $path && -f $path ]] || fail "no recovery file named: $(cat "$IT_TMP/alice2.err")"
[[ $path == "$IT_TMP/state-alice/confer/"* ]] || fail "recovery file not in XDG_STATE_HOME: $path"
grep -q "LOST-words" "$path" || fail "the recovery file lacks the words: $(cat "$path")"
[[ $(stat -c %a "$path") == 600 ]] || fail "recovery file mode $(stat -c %a "$path")"
pass "unsent words are kept in a recovery file (0600) whose path is printed"

# The meeting becomes final while one writes: the next edit is refused, the words are kept,
# and the editor reads only from then on; opened again, it says why it reads only.
it_start --listen "127.0.0.1:$port"
write_in alice3 alice 3
wait_screen alice3 "connected"
run cfg alice "$CONFER" meeting set --status final
"${TM[@]}" send-keys -t alice3 -l "REFUSED-words"
wait_screen alice3 "edit refused"
"${TM[@]}" send-keys -t alice3 C-q
for _ in $(seq 200); do [[ -s $IT_TMP/alice3.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/alice3.rc" 2>/dev/null) == 1 ]] || fail "a refused edit must fail the command"
path=$(sed -n 's/^confer: your text is kept in //p' "$IT_TMP/alice3.err")
[[ -n $path && -f $path ]] || fail "no recovery file after a refusal: $(cat "$IT_TMP/alice3.err")"
grep -q "REFUSED-words" "$path" || fail "the recovery file lacks the refused words"
wait_show "REFUSED-words" absent
write_in alice4 alice 3
wait_screen alice4 "read-only: the meeting is final"
"${TM[@]}" send-keys -t alice4 C-q
for _ in $(seq 200); do [[ -s $IT_TMP/alice4.rc ]] && break; sleep 0.05; done
[[ $(cat "$IT_TMP/alice4.rc" 2>/dev/null) == 0 ]] || fail "a read-only write did not quit cleanly"
pass "a refused edit keeps the words; a final meeting opens read-only"

it_stop
