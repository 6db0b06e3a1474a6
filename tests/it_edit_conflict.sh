#!/usr/bin/env bash
# Integration: two people open one section with `confer edit` at once (a scripted $EDITOR
# that waits for a signal file, so that both see the same text) and change the same words:
# the second is never fused into the first. With --no-edit it ends in a conflict (exit 1, a
# file with both versions, nothing sent); without, the editor opens again with conflict
# markers, and a file that keeps them is refused, one that resolves them is sent. Changes
# of different sentences still merge, naming who made them.
source "$(dirname "$0")/itlib.sh"

it_init
it_account rapporteur rapporteur-password-1 --operator
it_account associate associate-password-1
it_account delegate delegate-password-1
"$CONFERD" meeting create rg --rapporteur rapporteur --data "$IT_DATA" >/dev/null
it_start

cfg() { XDG_CONFIG_HOME=$IT_TMP/cfg-$1 "${@:2}"; }
for who in rapporteur associate delegate; do
    printf '%s-password-1\n' "$who" | cfg "$who" "$CONFER" login "$who@127.0.0.1:$IT_PORT" \
        --password-stdin --trust-new-host >/dev/null
done
cfg rapporteur "$CONFER" use rg >/dev/null
run cfg rapporteur "$CONFER" members set associate associate
run cfg rapporteur "$CONFER" members set delegate viewer
cfg associate "$CONFER" use rg >/dev/null
cfg delegate "$CONFER" use rg >/dev/null
run cfg rapporteur "$CONFER" items add 9 "Closing of the meeting" --body "draft"

B0=$'Report TSAG-TD182 was noted.\nThe meeting was closed at 17:30 hours.\nThe group thanked the host.'

# The editor: a script in a folder whose name has a space, called with an argument before
# the file (EDITOR is shell text, as git takes it). Invocation N of WHO copies what it was
# shown to seen_WHO_N, says it is open, waits for go_WHO, then applies the sed script
# do_WHO_N when there is one.
mkdir -p "$IT_TMP/ed dir"
ED="$IT_TMP/ed dir/ed.sh"
cat >"$ED" <<EOS
#!/bin/sh
who=\$1
file=\$2
n=\$(cat "$IT_TMP/count_\$who" 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" >"$IT_TMP/count_\$who"
cp "\$file" "$IT_TMP/seen_\${who}_\$n"
touch "$IT_TMP/open_\$who"
i=0
while [ ! -f "$IT_TMP/go_\$who" ] && [ \$i -lt 300 ]; do sleep 0.05; i=\$((i + 1)); done
if [ -f "$IT_TMP/do_\${who}_\$n" ]; then sed -i -f "$IT_TMP/do_\${who}_\$n" "\$file"; fi
exit 0
EOS
chmod +x "$ED"
editor_for() { printf '"%s" %s' "$ED" "$1"; }

wait_file() {
    for _ in $(seq 200); do [[ -e $1 ]] && return 0; sleep 0.05; done
    fail "no $1"
}

body() {
    cfg rapporteur "$CONFER" show 9 --json | jq -j .body
}

# set_body TEXT: the rapporteur replaces item 9's body (an edit whose editor writes TEXT).
set_body() {
    printf '%s' "$1" >"$IT_TMP/want"
    cat >"$IT_TMP/ed_set.sh" <<EOS
#!/bin/sh
cp "$IT_TMP/want" "\$1"
EOS
    chmod +x "$IT_TMP/ed_set.sh"
    EDITOR=$IT_TMP/ed_set.sh run cfg rapporteur "$CONFER" edit 9
    [[ $(body) == "$1" ]] || fail "the body was not set: $(body)"
}

# pair SED_A SED_B [B's options...]: the rapporteur (A) and the associate (B) open item 9
# at once; A saves first, then B. B's exit status goes to B_RC, its output to b.out/b.err.
pair() {
    rm -f "$IT_TMP"/count_* "$IT_TMP"/open_* "$IT_TMP"/go_* "$IT_TMP"/seen_* "$IT_TMP"/do_*
    printf '%s\n' "$1" >"$IT_TMP/do_A_1"
    printf '%s\n' "$2" >"$IT_TMP/do_B_1"
    shift 2
    EDITOR=$(editor_for A) cfg rapporteur "$CONFER" edit 9 >"$IT_TMP/a.out" 2>&1 &
    local pa=$!
    wait_file "$IT_TMP/open_A"
    EDITOR=$(editor_for B) cfg associate "$CONFER" edit 9 "$@" >"$IT_TMP/b.out" \
        2>"$IT_TMP/b.err" &
    local pb=$!
    wait_file "$IT_TMP/open_B"
    touch "$IT_TMP/go_A"
    wait "$pa" || fail "the first edit failed: $(cat "$IT_TMP/a.out")"
    grep -q "saved at seq" "$IT_TMP/a.out" || fail "the first edit: $(cat "$IT_TMP/a.out")"
    A_SEQ=$(sed -n 's/.*saved at seq \([0-9]*\).*/\1/p' "$IT_TMP/a.out")
    touch "$IT_TMP/go_B"
    B_RC=0
    wait "$pb" || B_RC=$?
}

kept_file() {
    sed -n 's/.*your text is kept in \(.*\)$/\1/p' "$IT_TMP/b.err"
}

# Both opened the text with a final newline that is not stored.
set_body "$B0"
[[ $(body) != *$'\n' ]] || fail "a final newline was stored"

# 1. The document number, changed by both: the second is a conflict, never TSAG-TD9683.
pair 's/TSAG-TD182/TSAG-TD196/' 's/TSAG-TD182/TSAG-TD283/' --no-edit
[[ $(tail -c 1 "$IT_TMP/seen_A_1" | od -An -c) == *'\n'* ]] || fail "no final newline in the file"
first=${B0/TSAG-TD182/TSAG-TD196}
[[ $B_RC -eq 1 ]] || fail "the second edit did not end in a conflict ($B_RC): $(cat "$IT_TMP/b.out" "$IT_TMP/b.err")"
[[ $(body) == "$first" ]] || fail "the record is not the first one's text: $(body)"
grep -q "touch the same words" "$IT_TMP/b.err" || fail "no conflict message: $(cat "$IT_TMP/b.err")"
kept=$(kept_file)
[[ -n $kept && -f $kept ]] || fail "no recovery file: $(cat "$IT_TMP/b.err")"
want=$'<<<<<<< yours\nReport TSAG-TD283 was noted.\n=======\nReport TSAG-TD196 was noted.\n>>>>>>> rapporteur (seq '"$A_SEQ"$')\nThe meeting was closed at 17:30 hours.\nThe group thanked the host.\n'
[[ $(cat "$kept"; echo x) == "${want}x" ]] || fail "the recovery file: $(cat "$kept")"
rm -f "$kept"
pass "one document number changed by both: a conflict naming the rapporteur (seq $A_SEQ), the record holds the first"

# 2. The closing time, changed by both (one also rewrites the end of the sentence).
set_body "$B0"
pair 's/17:30 hours\./17:35 hours./' 's/closed at 17:30 hours\./was closed at 17:40./' --no-edit
first=${B0/17:30 hours./17:35 hours.}
[[ $B_RC -eq 1 ]] || fail "the second edit did not end in a conflict ($B_RC): $(cat "$IT_TMP/b.err")"
[[ $(body) == "$first" ]] || fail "the record is not the first one's text: $(body)"
kept=$(kept_file)
grep -q "^The meeting was was closed at 17:40\.$" "$kept" || fail "yours is not kept: $(cat "$kept")"
grep -q "^The meeting was closed at 17:35 hours\.$" "$kept" || fail "theirs is not kept: $(cat "$kept")"
rm -f "$kept"
pass "one closing time changed by both: a conflict, never 17:45"

# 3. Without --no-edit the editor opens again with the markers; saving them is refused.
set_body "$B0"
pair 's/TSAG-TD182/TSAG-TD196/' 's/TSAG-TD182/TSAG-TD283/'
[[ $B_RC -eq 1 ]] || fail "markers left in the file were sent ($B_RC)"
[[ -f $IT_TMP/seen_B_2 ]] || fail "the editor did not open again"
grep -q '^>>>>>>> rapporteur (seq' "$IT_TMP/seen_B_2" || fail "no markers shown: $(cat "$IT_TMP/seen_B_2")"
grep -q "markers remain" "$IT_TMP/b.err" || fail "no refusal: $(cat "$IT_TMP/b.err")"
[[ -n $(kept_file) && -f $(kept_file) ]] || fail "the file is not kept: $(cat "$IT_TMP/b.err")"
rm -f "$(kept_file)"
[[ $(body) == "${B0/TSAG-TD182/TSAG-TD196}" ]] || fail "the record changed: $(body)"
pass "markers left in the file are refused, the file kept"

# 4. ... and a file whose markers are resolved (here: keep yours) is sent.
set_body "$B0"
rm -f "$IT_TMP"/open_* "$IT_TMP"/do_*
resolve='/^<<<<<<< /d
/^=======$/,/^>>>>>>> /d'
(
    # pair wipes do_* first: write the second round's script once B's editor is open.
    wait_file "$IT_TMP/open_B"
    printf '%s\n' "$resolve" >"$IT_TMP/do_B_2"
) &
helper=$!
pair 's/TSAG-TD182/TSAG-TD196/; s/host\./hosts./' 's/TSAG-TD182/TSAG-TD283/'
wait "$helper"
[[ $B_RC -eq 0 ]] || fail "the resolved edit failed ($B_RC): $(cat "$IT_TMP/b.err")"
want=${B0/TSAG-TD182/TSAG-TD283}
want=${want/host./hosts.}
[[ $(body) == "$want" ]] || fail "the resolved text is not the record: $(body)"
pass "a resolved conflict is sent as resolved, with the other's change elsewhere"

# 5. Changes of different sentences merge, and say whose they merged with.
set_body "$B0"
pair 's/TSAG-TD182/TSAG-TD196/' 's/thanked the host/thanked the hosts warmly/'
[[ $B_RC -eq 0 ]] || fail "a disjoint edit failed ($B_RC): $(cat "$IT_TMP/b.err")"
grep -q "merged with 1 change by rapporteur" "$IT_TMP/b.out" ||
    fail "not told whose change: $(cat "$IT_TMP/b.out")"
want=${B0/TSAG-TD182/TSAG-TD196}
want=${want/thanked the host/thanked the hosts warmly}
[[ $(body) == "$want" ]] || fail "the disjoint changes did not both land: $(body)"
pass "changes of different sentences merge"

# A viewer, and a final meeting: told why, and no editor opens.
rm -f "$IT_TMP"/open_*
EDITOR=$(editor_for V) expect_fail cfg delegate "$CONFER" edit 9
[[ $IT_ERR == *viewer* && ! -e $IT_TMP/open_V ]] || fail "a viewer: $IT_ERR"
run cfg rapporteur "$CONFER" meeting set --status final
EDITOR=$(editor_for F) expect_fail cfg associate "$CONFER" edit 9
[[ $IT_ERR == *final* && ! -e $IT_TMP/open_F ]] || fail "a final meeting: $IT_ERR"
run cfg rapporteur "$CONFER" meeting set --status draft
pass "a viewer and a final meeting are refused before the editor opens"
it_stop
