#!/usr/bin/env bash
# Integration: a saved report is bound to the audit log. `confer export` ends with a head
# signed by the server's host key; `confer audit check FILE` checks that signature with the
# pinned key and the text against the server's report at that seq, and names the line an
# edit changed; `confer audit verify` passes the newest head seen and fails when the log no
# longer holds it.
#
# The checks marked [signed] need a server that signs export heads (PROTOCOL.md section
# 15): against one that does not, this test fails saying so.
source "$(dirname "$0")/itlib.sh"

it_init
it_account alice alice-password-1 --operator
"$CONFERD" meeting import rg "$CONFER_TEST_DATA/rg-iem-report-2023-06.txt" --rapporteur alice \
    --data "$IT_DATA" >/dev/null
it_start
it_login alice alice-password-1
"$CONFER" use rg >/dev/null
HEADS=$XDG_CONFIG_HOME/confer/heads

# ---- what needs no signed head ----

run "$CONFER" audit --help
[[ $IT_OUT == *"audit verify"* && $IT_OUT == *"audit check FILE"* ]] ||
    fail "audit --help does not list verify and check: $IT_OUT"
expect_fail "$CONFER" audit check
[[ $IT_RC -eq 2 ]] || fail "audit check without FILE: exit $IT_RC, not 2"
expect_fail "$CONFER" audit check "$IT_TMP/x" --format pdf
[[ $IT_RC -eq 2 ]] || fail "audit check --format pdf: exit $IT_RC, not 2"
expect_fail "$CONFER" audit frob
[[ $IT_RC -eq 2 ]] || fail "audit frob: exit $IT_RC, not 2"
expect_fail "$CONFER" audit check "$IT_TMP/missing.txt"
[[ $IT_RC -eq 1 && $IT_ERR == *"no such file"* ]] || fail "missing file: $IT_RC $IT_ERR"
printf 'Just some text\nwithout a head\n' >"$IT_TMP/nohead.txt"
expect_fail "$CONFER" audit check "$IT_TMP/nohead.txt"
[[ $IT_RC -eq 1 && $IT_ERR == *"does not end with an audit head"* && $IT_ERR == *"line 2"* ]] ||
    fail "a file without a head: $IT_RC $IT_ERR"
truncate -s 65M "$IT_TMP/huge.txt"
expect_fail "$CONFER" audit check "$IT_TMP/huge.txt"
[[ $IT_RC -eq 1 && $IT_ERR == *"too large"* ]] || fail "a 65 MiB file: $IT_RC $IT_ERR"
rm -f "$IT_TMP/huge.txt"
pass "audit check usage and unreadable files"

# ---- [signed] the server signs the head of every export ----

run "$CONFER" export -o "$IT_TMP/report.txt"
last=$(tail -n 1 "$IT_TMP/report.txt")
if [[ $last != "Audit head: seq "*", hash "*", signed "* ]]; then
    fail "server does not sign export heads (the report ends with: $last)"
fi
[[ $last =~ ^Audit\ head:\ seq\ ([0-9]+),\ hash\ ([0-9a-f]{64}),\ signed\ ([A-Za-z0-9+/]{86}==)$ ]] ||
    fail "the signed head line is not in the agreed form: $last"
seq=${BASH_REMATCH[1]}
hash=${BASH_REMATCH[2]}
sig=${BASH_REMATCH[3]}
[[ $IT_ERR != *warning* ]] || fail "export warned about a signed head: $IT_ERR"
grep -q "^127.0.0.1:$IT_PORT rg $seq $hash\$" "$HEADS" || fail "export did not keep the head: $(cat "$HEADS")"
[[ $(stat -c %a "$HEADS") == 600 ]] || fail "heads file mode $(stat -c %a "$HEADS")"
pass "[signed] export ends with a signed head and keeps it (seq $seq)"

# [signed] the untouched file holds, online and offline.
run "$CONFER" audit check "$IT_TMP/report.txt"
[[ $IT_OUT == *"signed by the host key"* && $IT_OUT == *"byte for byte"* ]] ||
    fail "audit check of the untouched report: $IT_OUT"
run "$CONFER" audit check "$IT_TMP/report.txt" --offline
[[ $IT_OUT == *"only the head was checked"* ]] || fail "audit check --offline: $IT_OUT"
run "$CONFER" --json audit check "$IT_TMP/report.txt"
[[ $IT_OUT == *'"ok": true'* && $IT_OUT == *'"signature": "good"'* && $IT_OUT == *'"content": "same"'* ]] ||
    fail "audit check --json: $IT_OUT"
pass "[signed] audit check passes on the untouched report (also --offline, --json)"

# [signed] a word of the body changed: the check fails and names that line.
word_line=$(grep -n "mentorship programme" "$IT_TMP/report.txt" | head -n 1 | cut -d: -f1)
[[ -n $word_line ]] || fail "the sample report has no 'mentorship programme'"
sed "${word_line}s/mentorship programme/apprenticeship programme/" "$IT_TMP/report.txt" \
    >"$IT_TMP/edited.txt"
expect_fail "$CONFER" audit check "$IT_TMP/edited.txt"
[[ $IT_RC -eq 1 ]] || fail "edited report: exit $IT_RC"
[[ $IT_ERR == *"first at line $word_line "* ]] || fail "the differing line is not named ($word_line): $IT_ERR"
[[ $IT_ERR == *"file:"*"apprenticeship programme"* && $IT_ERR == *"server:"*"mentorship programme"* ]] ||
    fail "both lines are not shown around the change: $IT_ERR"
# the signed head still holds: offline cannot see the edit, and says so
run "$CONFER" audit check "$IT_TMP/edited.txt" --offline
[[ $IT_OUT == *"only the head was checked"* ]] || fail "offline on the edited file: $IT_OUT"
pass "[signed] an edited body fails the check at line $word_line"

# [signed] one character of the signature flipped.
c=${sig:5:1}
[[ $c == A ]] && n=B || n=A
bad_sig="${sig:0:5}$n${sig:6}"
sed "\$s|signed .*\$|signed $bad_sig|" "$IT_TMP/report.txt" >"$IT_TMP/badsig.txt"
[[ $(tail -n 1 "$IT_TMP/badsig.txt") == *"signed $bad_sig" ]] || fail "could not edit the signature"
expect_fail "$CONFER" audit check "$IT_TMP/badsig.txt"
[[ $IT_RC -eq 1 && $IT_ERR == *"signature"*"does not hold"* ]] || fail "flipped signature: $IT_RC $IT_ERR"
expect_fail "$CONFER" audit check "$IT_TMP/badsig.txt" --offline
[[ $IT_RC -eq 1 ]] || fail "flipped signature offline: exit $IT_RC"
# the seq changed instead
sed "\$s|seq $seq,|seq $((seq - 1)),|" "$IT_TMP/report.txt" >"$IT_TMP/badseq.txt"
expect_fail "$CONFER" audit check "$IT_TMP/badseq.txt" --offline
[[ $IT_RC -eq 1 && $IT_ERR == *"does not hold"* ]] || fail "changed seq: $IT_RC $IT_ERR"
# another meeting's name
expect_fail "$CONFER" -m other audit check "$IT_TMP/report.txt" --offline
[[ $IT_RC -eq 1 && $IT_ERR == *"meeting other"* ]] || fail "wrong meeting: $IT_RC $IT_ERR"
pass "[signed] a changed signature, seq or meeting fails the check"

# [signed] the other formats, and an export of an earlier seq.
run "$CONFER" export --format html -o "$IT_TMP/report.html"
[[ $(tail -n 1 "$IT_TMP/report.html") == "<footer>Audit head: seq $seq, hash $hash, signed "*"</footer></body></html>" ]] ||
    fail "html head: $(tail -n 1 "$IT_TMP/report.html")"
run "$CONFER" audit check "$IT_TMP/report.html"
[[ $IT_OUT == *"(html)"* ]] || fail "html check: $IT_OUT"
run "$CONFER" export --format markdown -o "$IT_TMP/report.md"
run "$CONFER" audit check "$IT_TMP/report.md"
[[ $IT_OUT == *"(markdown)"* ]] || fail "markdown check: $IT_OUT"
cp "$IT_TMP/report.md" "$IT_TMP/report-md.txt"
expect_fail "$CONFER" audit check "$IT_TMP/report-md.txt"
run "$CONFER" audit check "$IT_TMP/report-md.txt" --format markdown
run "$CONFER" export --at 5 -o "$IT_TMP/report5.txt"
[[ $(tail -n 1 "$IT_TMP/report5.txt") == "Audit head: seq 5, hash "*", signed "* ]] ||
    fail "export --at 5 head: $(tail -n 1 "$IT_TMP/report5.txt")"
run "$CONFER" audit check "$IT_TMP/report5.txt"
grep -q "^127.0.0.1:$IT_PORT rg $seq $hash\$" "$HEADS" || fail "an older head replaced the newer one"
pass "[signed] html, markdown (by name or --format) and --at exports check"

# [signed] audit verify passes the head seen; a change moves it on.
run "$CONFER" audit verify
[[ $IT_OUT == *"ok"* && $IT_OUT == *"seen earlier (seq $seq)"* ]] || fail "audit verify with the known head: $IT_OUT"
run "$CONFER" actions add --to WP2 "Check the audit of the report"
run "$CONFER" export -o "$IT_TMP/report2.txt"
grep -q "^127.0.0.1:$IT_PORT rg $((seq + 1)) " "$HEADS" || fail "the newer head was not kept: $(cat "$HEADS")"
run "$CONFER" audit check "$IT_TMP/report.txt"
grep -q "^127.0.0.1:$IT_PORT rg $((seq + 1)) " "$HEADS" || fail "checking an older report replaced the head"
pass "[signed] audit verify holds the head seen; newer heads replace it, older ones do not"

# A head seen earlier that the log no longer holds (here: the heads file says another hash
# at that seq, as if the log had been rewritten since).
cp "$HEADS" "$IT_TMP/heads.saved"
now=$(awk -v p="127.0.0.1:$IT_PORT" '$1 == p && $2 == "rg" {print $3}' "$HEADS")
sed -i "s|^127.0.0.1:$IT_PORT rg $now .*\$|127.0.0.1:$IT_PORT rg $now $(printf '%064d' 0)|" "$HEADS"
expect_fail "$CONFER" audit verify
[[ $IT_RC -eq 1 && $IT_ERR == *"no longer holds the head seen earlier (seq $now, hash 0000000000000000"* &&
    $IT_ERR == *"cut or rewritten"* ]] || fail "a lost head: $IT_RC $IT_ERR"
expect_fail "$CONFER" audit verify --json
[[ $IT_RC -eq 1 && $IT_OUT == *'"ok": false'* && $IT_OUT == *"\"bad_seq\": $now"* ]] ||
    fail "a lost head --json: $IT_RC $IT_OUT"
# an export of that same seq now contradicts the head seen: refused, nothing written
expect_fail "$CONFER" export -o "$IT_TMP/report3.txt"
[[ $IT_ERR == *"no longer holds the head seen earlier"* && ! -e $IT_TMP/report3.txt ]] ||
    fail "export against a contradicting head: $IT_ERR"
cp "$IT_TMP/heads.saved" "$HEADS"
pass "audit verify fails when the log no longer holds the head seen"

# Malformed lines of the heads file are warned about, never fatal.
printf 'garbage\n127.0.0.1:1 rg 0 zz\n' >>"$HEADS"
run "$CONFER" audit verify
[[ $IT_ERR == *"heads:"*"line skipped"* ]] || fail "no warning about malformed heads lines: $IT_ERR"
pass "malformed heads lines are skipped with a warning"

# [signed] offline needs no server; online without one fails.
it_stop
run "$CONFER" audit check "$IT_TMP/report.txt" --offline
expect_fail "$CONFER" audit check "$IT_TMP/report.txt"
[[ $IT_RC -eq 1 ]] || fail "online check without a server: exit $IT_RC"
pass "[signed] --offline checks with the server stopped"
