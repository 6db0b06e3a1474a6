#!/usr/bin/env bash
# Integration: confer import through the real client and a real conferd: mode new refuses a
# meeting with content and says what it holds, --merge updates what matches and adds the
# rest, the text and Markdown exports import back to the same record, an HTML export is
# refused, and the export is the report (title block, actions with their status, future
# meetings from the record).
source "$(dirname "$0")/itlib.sh"

: "${CONFER_TEST_DATA:?CONFER_TEST_DATA must name the test data folder}"
SAMPLE=$CONFER_TEST_DATA/rg-iem-report-2023-06.txt
export COLUMNS=200

c() {
    local u=$1
    shift
    XDG_CONFIG_HOME=$IT_TMP/config-$u "$CONFER" "$@"
}

login() {
    printf '%s\n' "$2" | XDG_CONFIG_HOME=$IT_TMP/config-$1 "$CONFER" login \
        "$1@127.0.0.1:$IT_PORT" --password-stdin --trust-new-host >/dev/null 2>&1 ||
        fail "login $1"
}

has() {
    [[ $IT_OUT == *"$1"* ]] || fail "expected '$1' in: $IT_OUT"
}

# count TYPE COLUMN: a number of the last import's --json counts.
count() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"][sys.argv[1]][sys.argv[2]])' \
        "$1" "$2" <<<"$IT_OUT"
}

# record MEETING FILE: the meeting's text export, but for its audit head, into FILE.
record() {
    run c rap -m "$1" export
    grep -v '^Audit head: ' <<<"$IT_OUT" >"$2"
}

it_init
it_account op op-password-1 --operator
it_account rap rap-password-1
"$CONFERD" meeting import rg-iem "$SAMPLE" --rapporteur rap --data "$IT_DATA" >/dev/null ||
    fail "conferd meeting import"
it_start
login op op-password-1
login rap rap-password-1

# ---- mode new: a meeting with content is refused, and nothing changes ----
record rg-iem "$IT_TMP/before.txt"
expect_fail c rap -m rg-iem import "$SAMPLE"
[[ $IT_ERR == *"not empty"*"10 items"*"--merge"* ]] ||
    fail "an import into a meeting with content: $IT_ERR"
record rg-iem "$IT_TMP/after.txt"
cmp -s "$IT_TMP/before.txt" "$IT_TMP/after.txt" || fail "a refused import changed the meeting"
pass "import into a meeting with content needs --merge"

# ---- --merge: the same report again changes nothing, duplicates nothing ----
run c rap -m rg-iem --json import "$SAMPLE" --merge
[[ $(count item unchanged) == 10 && $(count item created) == 0 ]] || fail "merge: $IT_OUT"
[[ $(count decision created) == 0 && $(count session created) == 0 ]] || fail "merge: $IT_OUT"
[[ $(count interim unchanged) == 6 ]] || fail "merge: $IT_OUT"
record rg-iem "$IT_TMP/after.txt"
cmp -s "$IT_TMP/before.txt" "$IT_TMP/after.txt" || fail "a merge of the same report changed:
$(diff "$IT_TMP/before.txt" "$IT_TMP/after.txt" | head -20)"
pass "merge of the same report"

# ---- --merge of a changed report: one update, one new item, nothing removed ----
sed -e 's/^The chairman provided brief opening remarks\./The chairman welcomed everyone./' \
    "$SAMPLE" >"$IT_TMP/changed.txt"
printf '\n10\tAny other matters\nNone were raised.\n' >>"$IT_TMP/changed.txt"
run c rap -m rg-iem import "$IT_TMP/changed.txt" --merge
has "imported into meeting rg-iem"
[[ $IT_OUT =~ items\ +1\ +1\ +9 ]] || fail "merge of a changed report: $IT_OUT"
run c rap -m rg-iem show 2
has "The chairman welcomed everyone."
run c rap -m rg-iem agenda
has "Any other matters"
has "Opening and welcome"
pass "merge of a changed report"

# ---- the text and Markdown exports import back to the same record ----
run c rap -m rg-iem interims add 2024-03-05 13:00 15:00 --topic "Spring check"
run c rap -m rg-iem actions set RG-IEM-3 --status done
record rg-iem "$IT_TMP/orig.txt"
head -n 20 "$IT_TMP/orig.txt" | grep -q "^Future meetings:" || fail "no future meetings block"
grep -q "^· 2024-03-05 13:00-15:00 virtual: Spring check (contributions by 2024-02-27)$" \
    "$IT_TMP/orig.txt" || fail "the interim added is not in the report"
grep -q "^· RG-IEM-3: \[done\] to appoint" "$IT_TMP/orig.txt" || fail "the action done is not so"
[[ $(head -n 1 "$IT_TMP/orig.txt") == "TSAG Rapporteur Group on Industry Engagement, Metrics" ]] ||
    fail "the export does not start with the title"
for fmt in text markdown; do
    run c rap -m rg-iem export --format "$fmt" -o "$IT_TMP/report.$fmt"
    run c op meeting create "copy-$fmt" --rapporteur rap
    run c rap -m "copy-$fmt" import "$IT_TMP/report.$fmt"
    record "copy-$fmt" "$IT_TMP/copy-$fmt.txt"
    cmp -s "$IT_TMP/orig.txt" "$IT_TMP/copy-$fmt.txt" || fail "the $fmt export read back differs:
$(diff "$IT_TMP/orig.txt" "$IT_TMP/copy-$fmt.txt" | head -20)"
done
pass "text and Markdown exports import back to the same record"

# ---- an HTML export is refused, saying what to do ----
run c rap -m rg-iem export --format html -o "$IT_TMP/report.html"
grep -q "Annex: record" "$IT_TMP/report.html" || fail "the HTML export has no annex"
run c op meeting create copy-html --rapporteur rap
expect_fail c rap -m copy-html import "$IT_TMP/report.html"
[[ $IT_ERR == *"HTML export cannot be imported"*"Markdown"* ]] || fail "html import: $IT_ERR"
pass "an HTML export is refused"

# ---- help ----
run c rap import --help
[[ $IT_OUT == *"--merge"*"created, updated and left unchanged"* || $IT_OUT == *"created, updated"*"--merge"* ]] ||
    fail "import --help: $IT_OUT"
pass "help"

# ---- conferd meeting import: a new meeting, mode new ----
it_stop
"$CONFERD" meeting import copy-ops "$IT_TMP/report.markdown" --rapporteur rap \
    --data "$IT_DATA" >"$IT_TMP/out" || fail "conferd meeting import of a Markdown export"
grep -q "imported.* 11 items.* 7 interims" "$IT_TMP/out" || fail "conferd meeting import: $(cat "$IT_TMP/out")"
pass "conferd meeting import"
