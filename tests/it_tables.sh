#!/usr/bin/env bash
# Integration: tables through the real client on the imported sample report. On a width
# ($COLUMNS) long text wraps inside its column and nothing is cut; for a program (not a
# terminal, no $COLUMNS) every cell is printed in full, tab-separated. Done and dropped
# actions, passed deadlines and the next interim are marked.
source "$(dirname "$0")/itlib.sh"

: "${CONFER_TEST_DATA:?CONFER_TEST_DATA must name the test data folder}"
SAMPLE=$CONFER_TEST_DATA/rg-iem-report-2023-06.txt
unset COLUMNS
command -v python3 >/dev/null 2>&1 || {
    echo "ok - skipped: no python3"
    exit 0
}

it_init
it_account rap rap-password-1
"$CONFERD" meeting import rg-iem "$SAMPLE" --rapporteur rap --data "$IT_DATA" >/dev/null ||
    fail "conferd meeting import"
it_start
it_login rap rap-password-1
run "$CONFER" use rg-iem

# texts.py: the first line of each action's text, from --json, one a line
run "$CONFER" actions --json
printf '%s' "$IT_OUT" >"$IT_TMP/actions.json"
python3 -c '
import json, sys
for a in json.load(open(sys.argv[1])):
    t = a.get("text", "").split("\n")[0]
    print(a["ref"] + "\t" + " ".join(t.replace("\t", " ").split()))
' "$IT_TMP/actions.json" >"$IT_TMP/want"
[[ $(wc -l <"$IT_TMP/want") -ge 5 ]] || fail "the sample has not 5 actions: $(cat "$IT_TMP/want")"

# ---- on a width: rows wrap under their column, nothing is cut ----
COLUMNS=60 run "$CONFER" actions
printf '%s\n' "$IT_OUT" >"$IT_TMP/table"
python3 - "$IT_TMP/table" "$IT_TMP/want" <<'PY' || fail "COLUMNS=60 actions: $IT_OUT"
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
want = [l.split("\t", 1) for l in open(sys.argv[2], encoding="utf-8").read().splitlines()]
lines = [l for l in lines if l != ""]
head = lines[0]
assert head.startswith("REF"), head
col = head.index("TEXT")
for l in lines:
    assert len(l) <= 60, "wider than 60: %r" % l
    assert "\u2026" not in l, "cut: %r" % l
rows = {}
cur = None
wrapped = 0
for l in lines[1:]:
    if not l.startswith(" "):
        cur = l.split(" ", 1)[0]
        rows[cur] = [l[col:]]
    else:
        assert l[:col].strip() == "", "continuation outside its column: %r" % l
        assert l[col] != " ", "continuation not under TEXT: %r" % l
        rows[cur].append(l[col:])
        wrapped += 1
assert wrapped > 0, "no row wrapped"
for ref, text in want:
    got = " ".join(" ".join(rows[ref]).split())
    assert got == text, "%s: %r != %r" % (ref, got, text)
PY
pass "COLUMNS=60 actions: rows wrap inside the TEXT column, every text whole"

# ---- for a program: full text, tab-separated ----
"$CONFER" actions >"$IT_TMP/piped" 2>"$IT_TMP/err" || fail "piped actions: $(cat "$IT_TMP/err")"
python3 - "$IT_TMP/piped" "$IT_TMP/want" <<'PY' || fail "piped actions: $(cat "$IT_TMP/piped")"
import sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
want = [l.split("\t", 1) for l in open(sys.argv[2], encoding="utf-8").read().splitlines()]
assert lines[0].split("\t") == ["REF", "TO", "OWNER", "STATUS", "DUE", "TEXT"], lines[0]
got = {}
for l in lines[1:]:
    f = l.split("\t")
    assert len(f) == 6, "not 6 fields: %r" % l
    got[f[0]] = f[5]
for ref, text in want:
    assert " ".join(got[ref].split()) == text, "%s: %r" % (ref, got[ref])
assert max(len(t) for _, t in want) > 100
PY
pass "piped actions: one row a line, tab-separated, every text whole"

# ---- marks: done, dropped, passed deadlines, the next interim ----
run "$CONFER" actions set RG-IEM-1 --status done
run "$CONFER" actions set RG-IEM-2 --status dropped
run "$CONFER" actions set RG-IEM-3 --due 2000-01-01
run "$CONFER" actions set RG-IEM-4 --due 2999-01-01
run "$CONFER" actions
grep -q $'^RG-IEM-1\t[^\t]*\t[^\t]*\t\xe2\x9c\x93 done\t' <<<"$IT_OUT" ||
    fail "done not marked: $IT_OUT"
grep -q $'^RG-IEM-2\t[^\t]*\t[^\t]*\t\xe2\x9c\x97 dropped\t' <<<"$IT_OUT" ||
    fail "dropped not marked: $IT_OUT"
grep -q $'^RG-IEM-3\t[^\t]*\t[^\t]*\topen\t2000-01-01 (passed)\t' <<<"$IT_OUT" ||
    fail "passed due date not marked: $IT_OUT"
grep -q $'^RG-IEM-4\t[^\t]*\t[^\t]*\topen\t2999-01-01\t' <<<"$IT_OUT" ||
    fail "a due date to come: $IT_OUT"
run "$CONFER" actions --json
[[ $IT_OUT == *'"status": "done"'* && $IT_OUT != *"passed"* ]] ||
    fail "--json changed: $IT_OUT"
pass "actions: done and dropped shown, a passed due date marked, --json as it was"

run "$CONFER" interims add 2999-03-01 14:00 16:00 --topic "Future work"
run "$CONFER" interims
next=$(grep $'^next\t' <<<"$IT_OUT") || fail "no next interim: $IT_OUT"
[[ $next == *2999-03-01* && $next != *passed* ]] || fail "next interim: $next"
old=$(grep $'\t2023-' <<<"$IT_OUT" | head -1)
[[ $old == *"(passed)"* ]] || fail "a past interim's deadline is not marked passed: $IT_OUT"
pass "interims: the next one marked, passed deadlines marked"

it_stop
