#!/usr/bin/env bash
# Integration: the record stays right (PROTOCOL.md section 10), through the real client:
# item numbers are unique, `items add --renumber` and `items renumber`, a session's or an
# interim's end after its start, doc refs without spaces, doc and action refs unique
# regardless of letter case, "-" for a text read from standard input, and an item's delete
# clearing its docs' and decisions' item. The record must read the same after a restart.
source "$(dirname "$0")/itlib.sh"

export COLUMNS=200

c() {
    XDG_CONFIG_HOME=$IT_TMP/config-rap "$CONFER" "$@"
}

has() {
    [[ $IT_OUT == *"$1"* ]] || fail "expected '$1' in: $IT_OUT"
}

err_has() {
    [[ $IT_ERR == *"$1"* ]] || fail "expected '$1' in the error: $IT_ERR"
}

# numbers: the item numbers of the agenda, in order, one line.
numbers() {
    run c items --json
    python3 -c 'import json,sys; print(" ".join(i["number"] for i in json.load(sys.stdin)))' \
        <<<"$IT_OUT"
}

# title_of NUMBER: the title of the item with that number.
title_of() {
    run c items --json
    python3 -c 'import json,sys
t=[i["title"] for i in json.load(sys.stdin) if i["number"]==sys.argv[1]]
print("|".join(t))' "$1" <<<"$IT_OUT"
}

it_init
it_account op op-password-1 --operator
it_account rap rap-password-1
# A meeting whose record already repeats an item number (the report import takes what the
# report says): it must open and stay editable; the rule holds for what changes.
printf '1\tOne\nText one.\n3\tThree\nText.\n3\tAnother three\nMore.\n' >"$IT_TMP/dup.txt"
dup_imported=0
if "$CONFERD" meeting import dup "$IT_TMP/dup.txt" --rapporteur rap --data "$IT_DATA" \
    >/dev/null 2>&1; then
    dup_imported=1
fi
it_start
printf '%s\n' op-password-1 | XDG_CONFIG_HOME=$IT_TMP/config-op "$CONFER" login \
    "op@127.0.0.1:$IT_PORT" --password-stdin --trust-new-host >/dev/null 2>&1 || fail "login op"
printf '%s\n' rap-password-1 | XDG_CONFIG_HOME=$IT_TMP/config-rap "$CONFER" login \
    "rap@127.0.0.1:$IT_PORT" --password-stdin --trust-new-host >/dev/null 2>&1 || fail "login rap"
run env XDG_CONFIG_HOME=$IT_TMP/config-op "$CONFER" meeting create rules --rapporteur rap \
    --title "Rules" --action-prefix RG
run c use rules

# ---- item numbers are unique ----
run c items add 1 One
run c items add 2 Two
run c items add 3 Three
expect_fail c items add 3 "Another three"
err_has "item 3"
err_has "has that number already"
err_has "--renumber"
[[ $(numbers) == "1 2 3" ]] || fail "a second item 3 was added: $(numbers)"
expect_fail c items set 2 --number 3
err_has "item 3"
[[ $(numbers) == "1 2 3" ]] || fail "item 2 became a second 3: $(numbers)"
pass "items add/set refuse a number that is taken, naming the item that has it"

# ---- --renumber: insert and shift, highest first ----
run c items add 3.1 "Three one"
run c items add 5 Five
run c items add 2 "New two" --renumber
has "item 5 is now 6"
has "item 3.1 is now 4.1"
has "item 3 is now 4"
has "item 2 is now 3"
has "added item 2"
[[ $(numbers) == "1 2 3 4 4.1 6" ]] || fail "after add 2 --renumber: $(numbers)"
[[ $(title_of 2) == "New two" && $(title_of 3) == "Two" && $(title_of 4.1) == "Three one" ]] ||
    fail "titles after --renumber: $(title_of 2) / $(title_of 3) / $(title_of 4.1)"
# the shifts went highest first: 5->6 before 3->4 before 2->3
order=$(grep -o "item [0-9.]* is now" <<<"$IT_OUT" | tr '\n' ' ')
[[ $order == "item 5 is now item 3.1 is now item 3 is now item 2 is now " ]] ||
    fail "shift order: $order"
run c items add 9 Nine --renumber
has "added item 9"
[[ $IT_OUT != *"is now"* ]] || fail "a free number shifted items: $IT_OUT"
pass "items add --renumber moves the taken number and the later ones up, highest first"

# ---- items renumber closes the gaps ----
run c items renumber --help
has "sub-items keep their place"
run c items renumber
has "item 6 is now 5"
has "item 9 is now 6"
[[ $(numbers) == "1 2 3 4 4.1 5 6" ]] || fail "after renumber: $(numbers)"
run c items renumber
has "nothing renumbered"
run c items remove 2 --yes
run c items remove 4 --yes
run c items renumber --json
has '"from": "3"'
has '"to": "2"'
has '"from": "4.1"'
has '"to": "3.1"'
python3 -c 'import json,sys; json.load(sys.stdin)' <<<"$IT_OUT" || fail "not JSON: $IT_OUT"
[[ $(numbers) == "1 2 3.1 4 5" ]] || fail "after the second renumber: $(numbers)"
# the new item refused after the shifts (a title over 500 bytes): it says how to close the gap
expect_fail c items add 2 "$(printf 'x%.0s' {1..501})" --renumber
err_has "title"
err_has "items renumber closes the gap"
[[ $(numbers) == "1 3 4.1 5 6" ]] || fail "after a refused add --renumber: $(numbers)"
run c items renumber
[[ $(numbers) == "1 2 3.1 4 5" ]] || fail "renumber after a refused add: $(numbers)"
pass "items renumber closes the gaps, sub-items follow, --json"

# ---- times: end after start ----
expect_fail c interims add 2024-04-02 15:00 13:00 --topic Metrics
err_has "end"
err_has "later than the start"
expect_fail c sessions add 2024-04-02 10:00 10:00
err_has "later than the start"
run c interims add 2024-04-02 13:00 15:00 --topic Metrics --json
iid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$IT_OUT")
expect_fail c interims set "#$iid" --start 16:00
err_has "later than the start"
run c interims set "#$iid" --start 14:00
run c sessions add 2024-04-02 09:00 10:30 --json
sid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$IT_OUT")
expect_fail c sessions set "#$sid" --end 08:00
err_has "later than the start"
pass "sessions and interims: end after start, on add and on set of either time"

# ---- doc refs: no spaces, unique regardless of case ----
run c docs add TSAG-TD301
expect_fail c docs add tsag-td301
err_has "TSAG-TD301"
expect_fail c docs add "TSAG TD302"
err_has "spaces"
run c docs add TSAG-TD301R1
expect_fail c docs add tsag-td301 --revision r1
err_has "regardless of letter case"
expect_fail c docs set TSAG-TD301R1 --ref tsag-td301 --revision ""
err_has "TSAG-TD301"
run c docs set TSAG-TD301R1 --revision R2
pass "docs: refs without spaces, (ref, revision) unique regardless of case"

# ---- action refs unique regardless of case; text from standard input ----
run c actions add --ref RG-7 "Review metrics"
expect_fail c actions add --ref rg-7 "Again"
err_has "RG-7"
printf 'Send the liaison\nto WP2\n' | c actions add - --ref RG-8 --json >"$IT_TMP/out" ||
    fail "actions add - from standard input"
IT_OUT=$(cat "$IT_TMP/out")
python3 -c 'import json,sys; assert json.load(sys.stdin)["text"]=="Send the liaison\nto WP2"' \
    <<<"$IT_OUT" || fail "action text from standard input: $IT_OUT"
run c actions add "Next one"
has "RG-9"
echo "Noted the report" | c decisions add - >/dev/null || fail "decisions add -"
run c decisions --json
has '"text": "Noted the report"'
echo "Revised text" | c actions set RG-8 --text - >/dev/null || fail "actions set --text -"
run c actions --json
has '"text": "Revised text"'
echo "The body" | c items set 1 --body - >/dev/null || fail "items set --body -"
run c items --json
has '"body": "The body"'
pass "actions: refs unique regardless of case; - reads the text from standard input"

# ---- deleting an item clears its docs' and decisions' item ----
run c items add 7 Seven --json
item7=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$IT_OUT")
run c docs set TSAG-TD301 --item 7
run c decisions add "Agreed on 7" --item 7 --json
dec=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$IT_OUT")
run c items remove 7 --yes
run c docs --json
python3 -c 'import json,sys
d=[x for x in json.load(sys.stdin) if x["ref"]=="TSAG-TD301" and x["revision"] in ("",None)]
assert len(d)==1 and d[0]["item"] is None, d' <<<"$IT_OUT" || fail "doc keeps item: $IT_OUT"
run c decisions --json
python3 -c 'import json,sys
d=[x for x in json.load(sys.stdin) if x["id"]==int(sys.argv[1])]
assert len(d)==1 and d[0]["item"] is None, d' "$dec" <<<"$IT_OUT" || fail "decision: $IT_OUT"
run c history --json --limit 1
has '"kind": "delete"'
[[ $IT_OUT == *"\"id\": $item7,"* ]] || fail "history of the delete: $IT_OUT"
# (the delete event's `unlinked` lists are checked on the wire by test_srv_revert; after the
# restart below, the cleared items must still be cleared: the log replays the same way)
pass "removing an item clears its docs' and decisions' item"

# ---- a record that already repeats a number opens and stays editable ----
if [[ $dup_imported -eq 1 ]]; then
    run c items -m dup --json
    dup_ids=$(python3 -c 'import json,sys
print(" ".join(str(i["id"]) for i in json.load(sys.stdin) if i["number"]=="3"))' <<<"$IT_OUT")
    read -r dup_a dup_b <<<"$dup_ids"
    [[ -n $dup_a && -n $dup_b ]] || fail "the imported record has not two items 3: $IT_OUT"
    run c items set "#$dup_a" --title "Three, retitled" -m dup
    expect_fail c items add 3 "A third three" -m dup
    err_has "has that number already"
    expect_fail c items renumber -m dup
    err_has "would both become"
    run c items set "#$dup_b" --number 4 -m dup
    run c items renumber -m dup
    has "item 3 is now 2"
    has "item 4 is now 3"
    pass "a record that repeats an item number opens, stays editable, and can be put right"
else
    pass "the report import refuses a repeated item number: no such record to open"
fi

# ---- the record reads the same after a restart (log replay and database rows) ----
run c items --json
before_items=$IT_OUT
run c docs --json
before_docs=$IT_OUT
port=$IT_PORT
it_stop
it_start --listen "127.0.0.1:$port"
run c items --json
[[ $IT_OUT == "$before_items" ]] || fail "items after restart: $IT_OUT"
run c docs --json
[[ $IT_OUT == "$before_docs" ]] || fail "docs after restart: $IT_OUT"
run c decisions --json
python3 -c 'import json,sys
d=[x for x in json.load(sys.stdin) if x["id"]==int(sys.argv[1])]
assert len(d)==1 and d[0]["item"] is None, d' "$dec" <<<"$IT_OUT" ||
    fail "decision after restart: $IT_OUT"
expect_fail c items add 1 "One again"
err_has "has that number already"
pass "the record is the same after a restart"
