#!/usr/bin/env bash
# Integration: what a person reads names objects as people know them (item 9 "AOB",
# RG-IEM-4, TSAG-TD257R1, interim 2023-10-09, session 2023-05-31 16:15), never by internal
# ids: confer history (objects removed since included, and in --json beside the ids), and
# confer watch, which names each change as history does.
source "$(dirname "$0")/itlib.sh"

it_init
it_account rap rap-password-1
"$CONFERD" meeting import rg "$CONFER_TEST_DATA/rg-iem-report-2023-06.txt" --rapporteur rap \
    --data "$IT_DATA" >/dev/null || fail "meeting import"
it_start
export COLUMNS=250
c() { XDG_CONFIG_HOME=$IT_TMP/cfg "$CONFER" "$@"; }
printf 'rap-password-1\n' | c login "rap@127.0.0.1:$IT_PORT" --password-stdin --trust-new-host \
    >/dev/null || fail "login"
c use rg >/dev/null || fail "use rg"

# A watcher, from before the changes (its lines are compared with history's below).
XDG_CONFIG_HOME=$IT_TMP/cfg "$CONFER" watch >"$IT_TMP/watch.out" 2>&1 &
watch_pid=$!
for _ in $(seq 100); do grep -q "watching rg" "$IT_TMP/watch.out" && break; sleep 0.1; done

run c actions set RG-IEM-4 --status done
run c actions add "Prepare the workshop flyer" --to "TSB"
[[ $IT_OUT =~ (RG-IEM-[0-9]+) ]] || fail "no ref in: $IT_OUT"
newref=${BASH_REMATCH[1]}
run c items set 9 --title "Any other business"
run c items remove 9 --yes
run c interims add 2024-04-02 13:00 15:00 --topic "Flyer review"

run c history --limit 10
hist=$IT_OUT
[[ $hist == *"update RG-IEM-4: status"* ]] || fail "history names no RG-IEM-4: $hist"
[[ $hist == *"create $newref"* ]] || fail "history names no $newref: $hist"
[[ $hist == *"update item 9 \"Any other business\": title"* ]] || fail "item 9 by its title: $hist"
# item 9 is gone: it is named as it was when it last stood
[[ $hist == *"delete item 9 \"Any other business\""* ]] || fail "removed item 9 by name: $hist"
[[ $hist == *"create interim 2024-04-02"* ]] || fail "history names no interim: $hist"
grep -E "(item|action|doc|interim|session|decision) [0-9]{3,}( |:|$)" <<<"$hist" &&
    fail "history shows internal ids: $hist"
pass "history names objects as people know them, removed ones too"

run c history --limit 10 --json
[[ $IT_OUT == *'"name": "RG-IEM-4"'* ]] || fail "--json has no name: $IT_OUT"
[[ $IT_OUT == *'"change": "update RG-IEM-4: status"'* ]] || fail "--json has no change: $IT_OUT"
[[ $IT_OUT =~ \"type\":\ \"action\",\ \"id\":\ [0-9]+ ]] || fail "--json lost the ids: $IT_OUT"
pass "history --json carries the ids and the names"

for _ in $(seq 100); do grep -q "create interim" "$IT_TMP/watch.out" && break; sleep 0.1; done
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null || true
w=$(cat "$IT_TMP/watch.out")
for line in "update RG-IEM-4: status" "create $newref" "update item 9 \"Any other business\": title" \
    "delete item 9 \"Any other business\"" "create interim 2024-04-02"; do
    [[ $w == *"$line"* ]] || fail "watch does not say '$line': $w"
done
pass "watch names each change as history does"

# One object whole, wrapped to the terminal, named by the keys people use.
run env COLUMNS=60 XDG_CONFIG_HOME=$IT_TMP/cfg "$CONFER" actions show RG-IEM-5
[[ $IT_OUT == "action RG-IEM-5"* ]] || fail "actions show: $IT_OUT"
[[ $IT_OUT == *"status"* && $IT_OUT == *"text"* ]] || fail "actions show lacks fields: $IT_OUT"
awk 'length($0) > 60 { exit 1 }' <<<"$IT_OUT" || fail "actions show is not wrapped to 60: $IT_OUT"
run c docs show TSAG-TD257R1
grep -qE '^item +3 "Industry engagement"$' <<<"$IT_OUT" || fail "docs show names no item: $IT_OUT"
run c docs show TSAG-TD257R1 --json
[[ $IT_OUT == *'"item_number": "3"'* ]] || fail "--json has no item_number: $IT_OUT"
run c interims show 2023-10-09
[[ $IT_OUT == "interim 2023-10-09"* && $IT_OUT == *"2023-10-02"* ]] ||
    fail "interims show by date: $IT_OUT"
run c sessions --json
[[ $IT_OUT =~ \"id\":\ ([0-9]+) ]] || fail "no session id: $IT_OUT"
run c sessions show "${BASH_REMATCH[1]}"
[[ $IT_OUT == "session 2023-05-31 16:15"* ]] || fail "sessions show by bare id: $IT_OUT"
run c decisions --json
[[ $IT_OUT =~ \"id\":\ ([0-9]+) ]] || fail "no decision id: $IT_OUT"
did=${BASH_REMATCH[1]}
run c decisions show "$did"
[[ $IT_OUT == "decision $did"* ]] || fail "decisions show by bare id: $IT_OUT"
expect_fail c interims show 2031-01-01
[[ $IT_ERR == *"no interim 2031-01-01"* ]] || fail "unknown interim: $IT_ERR"
pass "show: one object whole, wrapped, by the names people use"

# Ids are printed bare (an unquoted # is a shell comment), and --help says so.
run c decisions
[[ $IT_OUT == *"$did "* && $IT_OUT != *"#$did"* ]] || fail "decisions ids not bare: $IT_OUT"
run c interims remove --help
[[ $IT_OUT == *"shell"* ]] || fail "interims --help does not say how to type an id: $IT_OUT"
run c interims remove 2023-10-09
[[ $IT_OUT == *"interim 2023-10-09"* ]] || fail "interims remove by date: $IT_OUT"
pass "bare ids and dates name objects; --help says why"

it_stop
