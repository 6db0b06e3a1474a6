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

it_stop
