#!/usr/bin/env bash
# Integration: a meeting's record through the real client: choosing the meeting, the agenda
# and the lists of the imported sample report, adding, changing and removing every type,
# roles and the final lock, history, export, import into a new meeting, the audit chain.
source "$(dirname "$0")/itlib.sh"

: "${CONFER_TEST_DATA:?CONFER_TEST_DATA must name the test data folder}"
SAMPLE=$CONFER_TEST_DATA/rg-iem-report-2023-06.txt
# Tables fit $COLUMNS: wide enough here for whole cells.
export COLUMNS=200

# c USER ARGS...: the client with USER's own configuration (session, chosen meeting).
c() {
    local u=$1
    shift
    XDG_CONFIG_HOME=$IT_TMP/config-$u "$CONFER" "$@"
}

# login USER PASSWORD
login() {
    printf '%s\n' "$2" | XDG_CONFIG_HOME=$IT_TMP/config-$1 "$CONFER" login \
        "$1@127.0.0.1:$IT_PORT" --password-stdin --trust-new-host >/dev/null 2>&1 ||
        fail "login $1"
}

# has TEXT: $IT_OUT must contain TEXT.
has() {
    [[ $IT_OUT == *"$1"* ]] || fail "expected '$1' in: $IT_OUT"
}

# hasnt TEXT: $IT_OUT must not contain TEXT.
hasnt() {
    [[ $IT_OUT != *"$1"* ]] || fail "did not expect '$1' in: $IT_OUT"
}

# json_ok: $IT_OUT must be one JSON value (checked by python3 or jq when there is one).
json_ok() {
    if command -v python3 >/dev/null 2>&1; then
        printf '%s' "$IT_OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' ||
            fail "not JSON: $IT_OUT"
    elif command -v jq >/dev/null 2>&1; then
        printf '%s' "$IT_OUT" | jq . >/dev/null || fail "not JSON: $IT_OUT"
    fi
    [[ $IT_OUT == "{"* || $IT_OUT == "["* ]] || fail "not a JSON object or array: $IT_OUT"
}

# new_id: the "id" of the object printed by the last --json command.
new_id() {
    [[ $IT_OUT =~ \"id\":\ ([0-9]+) ]] || fail "no id in: $IT_OUT"
    echo "${BASH_REMATCH[1]}"
}

it_init
it_account op op-password-1 --operator
it_account rap rap-password-1
it_account assoc assoc-password-1
it_account view view-password-1
"$CONFERD" meeting import rg-iem "$SAMPLE" --rapporteur rap --data "$IT_DATA" >/dev/null ||
    fail "conferd meeting import"
it_start
for u in op rap assoc view; do
    login "$u" "$u-password-1"
done

# ---- choosing the meeting ----
expect_fail c rap agenda
[[ $IT_RC -eq 1 && $IT_ERR == *"no meeting chosen: run confer use MEETING (confer meetings"* ]] ||
    fail "agenda before use: $IT_ERR"
expect_fail c rap use nope
[[ $IT_ERR == *"no meeting nope, or you are not a member of it: ask its rapporteur"* ]] ||
    fail "use of an unknown meeting: $IT_ERR"
run c rap use rg-iem
has "rg-iem"
has "rapporteur"
run c rap use
has "rg-iem"
run c rap meetings
has "rg-iem"
has "2023-05-30"
has "draft"
run c rap meetings --json
json_ok
has '"id": "rg-iem"'
pass "use and meetings"

# ---- the imported record ----
run c rap agenda
agenda=$IT_OUT
titles=("Action from RG-IEM to WP2" "Introduction" "Opening and welcome" "Industry engagement"
    "Mechanisms to address new and emerging technologies in ITU-T" "Resolution 68" "Metrics"
    "Future meetings" "AOB" "Closure of the meeting")
for n in 0 1 2 3 4 5 6 7 8 9; do
    grep -qx "$n  ${titles[$n]}" <<<"$agenda" || fail "agenda item $n: $agenda"
done
[[ $(sed '/^sessions:/q' <<<"$agenda" | grep -cE '^[0-9]+  ') -eq 10 ]] ||
    fail "agenda has not 10 items: $agenda"
# the documents filed under item 3 are listed below it (up to item 4)
item3=$(sed -n '/^3  /,/^4  /p' <<<"$agenda")
[[ $item3 == *TSAG-TD256* && $item3 == *TSAG-TD257,* && $item3 == *TSAG-C032* &&
    $item3 == *TSAG-TD257R1* ]] || fail "docs of item 3: $item3"
has "2023-05-31  17:45-18:45  drafting"
run c rap agenda --json
json_ok
has '"number": "3"'
has '"ref": "TSAG-TD257"'
pass "agenda: items 0-9 with titles and documents, then the sessions"

run c rap show 3
first=$(head -n 1 <<<"$IT_OUT")
[[ $first == "3  Industry engagement" ]] || fail "show 3 heading: $first"
[[ $(sed -n 2p <<<"$IT_OUT") == ─* ]] || fail "show 3 rule: $IT_OUT"
has "TSAG-TD257R1 was reviewed"
run c rap show 7
has "• 27 July 2023, 1300-1500: CTO/CxO review"
hasnt "· 27 July"
run c rap show '#4' --json
json_ok
has '"number": "3"'
expect_fail c rap show 42
[[ $IT_ERR == *"no item 42"* ]] || fail "show 42: $IT_ERR"
pass "show ITEM with bullets"

run c rap actions
for i in 1 2 3 4 5; do
    grep -qE "^RG-IEM-$i +WP2 " <<<"$IT_OUT" || fail "action RG-IEM-$i to WP2: $IT_OUT"
done
run c rap actions --json
json_ok
has '"ref": "RG-IEM-5"'
has '"to": "WP2"'
pass "actions RG-IEM-1..5 to WP2"

run c rap interims
dates=(2023-07-27 2023-09-05 2023-10-09 2023-11-07 2023-12-12 2024-01-30)
deadlines=(2023-07-20 2023-08-29 2023-10-02 2023-10-31 2023-12-05 2024-01-23)
for i in 0 1 2 3 4 5; do
    grep -qE "${dates[$i]} .* ${deadlines[$i]}( \(passed\))?\$" <<<"$IT_OUT" ||
        fail "interim ${dates[$i]} with deadline ${deadlines[$i]}: $IT_OUT"
done
order=$(grep -oE '^(next +)?[0-9]+ +20[0-9]{2}-[0-9]{2}-[0-9]{2}' <<<"$IT_OUT" | awk '{print $NF}')
[[ $(tr '\n' ' ' <<<"$order") == "${dates[*]} " ]] || fail "interims not in date order: $IT_OUT"
run c rap deadlines --json
json_ok
has '"deadline": "2023-07-20"'
pass "interims: six dates with their deadlines"

run c rap people
grep -qE 'Glenn PARSONS +Ericsson Canada +rapporteur' <<<"$IT_OUT" || fail "people: $IT_OUT"
grep -qE 'Noah LUO +Huawei Technologies, China +associate' <<<"$IT_OUT" || fail "people: $IT_OUT"
grep -qE 'Arnaud TADDEI +Broadcom, United States +associate' <<<"$IT_OUT" || fail "people: $IT_OUT"
run c rap people --json
json_ok
has '"affiliation": "Ericsson Canada"'
COLUMNS=40 run c rap people
[[ $(sed 's/…/./g' <<<"$IT_OUT" | awk '{ if (length($0) > 40) print }') == "" ]] ||
    fail "wider than 40: $IT_OUT"
hasnt "…" # long cells wrap inside their column: nothing is cut

run c rap sessions
has "2023-05-31  16:15-17:30  session"
has "2023-06-01  16:15-17:30  session"
has "2023-05-31  17:45-18:45  drafting"
run c rap sessions --json
json_ok
run c rap docs 3
has "TSAG-C030"
hasnt "TSAG-TD290R1"
run c rap docs --json
json_ok
run c rap decisions 3
has "agreed"
run c rap decisions --json
json_ok
run c rap meeting show
has "action_prefix:  RG-IEM"
has "report_ref:     TSAG-TD182"
run c rap meeting --json
json_ok
has '"tz": "Europe/Zurich"'
pass "people, sessions, docs, decisions, meeting; --json of each"

# ---- members ----
run c rap members set assoc associate
run c rap members set view viewer
run c rap members
grep -qE '^assoc +associate' <<<"$IT_OUT" || fail "members: $IT_OUT"
grep -qE '^view +viewer' <<<"$IT_OUT" || fail "members: $IT_OUT"
run c rap members --json
json_ok
expect_fail c rap members set nobody viewer
[[ $IT_RC -eq 1 && $IT_ERR == *"no such account"* ]] || fail "member of no account: $IT_ERR"
expect_fail c rap members set view boss
[[ $IT_RC -eq 2 ]] || fail "a bad role is a usage error"
run c assoc use rg-iem
run c view use rg-iem
pass "members set and list"

# ---- adding, changing, removing each type ----
run c assoc items add 4.1 "Incubation"
has "added item 4.1"
run c assoc items set 4.1 --title "Incubation mechanism" --number 4.2
run c assoc agenda
grep -qx "4.2  Incubation mechanism" <<<"$IT_OUT" || fail "item 4.2: $IT_OUT"
run c assoc items remove 4.2
run c assoc agenda
hasnt "4.2  "
pass "items add/set/remove"

run c assoc actions add "to review the terms of reference" --to WP2
has "added action RG-IEM-6"
run c assoc actions set RG-IEM-6 --status done --owner "Glenn PARSONS" --due 2023-09-01
run c assoc actions --status done
grep -qE '^RG-IEM-6 +WP2 +Glenn PARSONS +(✓ )?done +2023-09-01 +to review' <<<"$IT_OUT" ||
    fail "action RG-IEM-6 done: $IT_OUT"
hasnt "RG-IEM-1 "
run c assoc actions set 6 --status open --json
json_ok
has '"status": "open"'
# Removing what holds text asks first; without a terminal it needs --yes, and says how to undo.
expect_fail c assoc actions remove RG-IEM-6
[[ $IT_RC -eq 1 && $IT_ERR == *"loses its text: pass --yes"* ]] || fail "remove without --yes: $IT_ERR"
run c assoc actions
has "RG-IEM-6"
run c assoc actions remove RG-IEM-6 --yes
[[ $IT_OUT =~ ^"removed action RG-IEM-6 (undo: confer revert "([0-9]+)")"$ ]] || fail "remove: $IT_OUT"
rseq=${BASH_REMATCH[1]}
# The hint works: the action comes back, and undo takes it away again.
run c assoc revert "$rseq"
run c assoc actions
has "RG-IEM-6"
run c assoc undo
run c assoc actions
hasnt "RG-IEM-6"
expect_fail c assoc actions set RG-IEM-6 --status done
[[ $IT_RC -eq 1 && $IT_ERR == *"no action RG-IEM-6"* ]] || fail "set of a removed action: $IT_ERR"
expect_fail c assoc actions set RG-IEM-1 --status finished
[[ $IT_RC -eq 2 && $IT_ERR == *"open|done|dropped"* ]] || fail "bad status: $IT_ERR"
expect_fail c assoc actions set RG-IEM-1
[[ $IT_RC -eq 2 ]] || fail "set without options is a usage error"
pass "actions add (RG-IEM-6)/set/remove"

run c assoc docs add TSAG-TD300R1 --title "Draft ToR" --source Broadcom --item 3
has "added document TSAG-TD300R1"
run c assoc docs 3
grep -qE '^TSAG-TD300R1 +Draft ToR +Broadcom +3' <<<"$IT_OUT" || fail "doc under 3: $IT_OUT"
run c assoc docs set TSAG-TD300R1 --status agreed --item 4
run c assoc docs 4
grep -qE '^TSAG-TD300R1 .* 4 +agreed$' <<<"$IT_OUT" || fail "doc moved to 4: $IT_OUT"
expect_fail c assoc docs add TSAG-TD300R1
[[ $IT_ERR == *"exists"* ]] || fail "a second TSAG-TD300R1: $IT_ERR"
run c assoc docs remove TSAG-TD300R1
run c assoc docs
hasnt "TSAG-TD300"
expect_fail c assoc docs add TSAG-TD301 --item 77
[[ $IT_RC -eq 1 && $IT_ERR == *"no item 77"* ]] || fail "doc under a missing item: $IT_ERR"
pass "docs add/set/remove with REF[REV]"

run c assoc sessions add 2023-06-02 0900 1000 --kind drafting --title "Extra drafting" --json
json_ok
sid=$(new_id)
run c assoc sessions
has "2023-06-02  09:00-10:00  drafting  Extra drafting"
run c assoc sessions set "#$sid" --title "Late drafting"
run c assoc sessions
has "Late drafting"
run c assoc sessions remove "$sid"
run c assoc sessions
hasnt "2023-06-02"
pass "sessions add/set/remove by #ID"

run c assoc interims add 2099-03-01 13:00 15:00 --topic "Far future" --mode physical \
    --deadline-days 10 --json
json_ok
iid=$(new_id)
run c assoc interims
first=$(sed -n 2p <<<"$IT_OUT")
[[ $first =~ ^next\ +$iid\ +2099-03-01\ +13:00-15:00\ +Far\ future\ +physical\ +2099-02-19$ ]] ||
    fail "the next interim first: $IT_OUT"
run c assoc interims set "#$iid" --deadline-days ""
run c assoc interims
has "2099-02-22"
expect_fail c assoc interims add 2099-04-01 13:00 15:00
[[ $IT_RC -eq 2 && $IT_ERR == *"--topic is required"* ]] || fail "interim without topic: $IT_ERR"
run c assoc interims remove 2099-03-01
run c assoc interims
hasnt "2099"
pass "interims add/set/remove, the next one first"

run c assoc decisions add --item 5 --kind decided "The meeting decided to test." --json
json_ok
did=$(new_id)
run c assoc decisions 5
grep -qE "^$did +5 +decided +The meeting decided to test." <<<"$IT_OUT" || fail "decision: $IT_OUT"
run c assoc decisions set "#$did" --kind noted
run c assoc decisions 5
grep -qE "^$did +5 +noted" <<<"$IT_OUT" || fail "decision noted: $IT_OUT"
run c assoc decisions remove "$did" --yes
run c assoc decisions
hasnt "decided to test"
pass "decisions add/set/remove"

run c assoc people add "Jane DOE" --affiliation ITU --role tsb
run c assoc people set "Jane DOE" --note "TSB counsellor"
run c assoc people
grep -qE 'Jane DOE +ITU +tsb +TSB counsellor' <<<"$IT_OUT" || fail "person: $IT_OUT"
run c assoc people remove "jane doe"
run c assoc people
hasnt "Jane DOE"
pass "people add/set/remove"

run c rap meeting set --venue "Geneva, Switzerland"
run c rap meeting show
has "venue:          Geneva, Switzerland"
expect_fail c assoc meeting set --venue "Elsewhere"
[[ $IT_ERR == *"your role (associate) does not allow this: ask the rapporteur"* ]] ||
    fail "an associate changes the meeting: $IT_ERR"
pass "meeting set"

# ---- roles and the final lock ----
expect_fail c view actions add "not allowed"
[[ $IT_RC -eq 1 && $IT_ERR == *"your role (viewer) does not allow this: ask the rapporteur"* ]] ||
    fail "viewer's add: $IT_ERR"
run c view agenda
pass "a viewer reads but cannot change"

run c rap meeting set --status final
expect_fail c assoc people add "Late Comer"
final_msg="the meeting is final: the rapporteur can reopen it with confer meeting set --status draft"
[[ $IT_RC -eq 1 && $IT_ERR == *"$final_msg"* ]] || fail "add while final: $IT_ERR"
expect_fail c rap actions add "late"
[[ $IT_ERR == *"final"* ]] || fail "rapporteur's add while final: $IT_ERR"
run c rap meeting set --status draft
run c assoc people add "Early Bird"
run c assoc people remove "Early Bird"
pass "final locks the record, draft reopens it"

# ---- history, export, audit ----
run c rap history --limit 5
[[ $(grep -cE '^[0-9]+ ' <<<"$IT_OUT") -eq 5 ]] || fail "history --limit 5: $IT_OUT"
[[ $IT_OUT == *"(just now)"* || $IT_OUT == *" ago)"* ]] || fail "history times: $IT_OUT"
[[ $IT_OUT == *"REVERT WOULD"* && $IT_OUT =~ (remove it|bring it back|put the|take the edit back) ]] ||
    fail "history does not say what a revert would do: $IT_OUT"
run c rap history --item 3 --json
json_ok
has '"type": "item"'
run c rap history --user assoc --type person --limit 3
has "person"
hasnt "conferd"
pass "history"

run c rap audit verify
has "ok"
head_hex=$(grep -oE '[0-9a-f]{64}' <<<"$IT_OUT")
run c rap audit verify --json
json_ok
has '"ok": true'
pass "audit verify"

run c rap export -o "$IT_TMP/report.txt"
[[ -f $IT_TMP/report.txt ]] || fail "export -o wrote nothing"
[[ $(stat -c %a "$IT_TMP/report.txt") == 644 ]] || fail "export -o mode"
last=$(tail -n 1 "$IT_TMP/report.txt")
[[ $last =~ ^"Audit head: seq "[0-9]+", hash $head_hex, signed "[A-Za-z0-9+/]{86}==$ ]] ||
    fail "report ends with: $last"
grep -q "^3	Industry engagement" "$IT_TMP/report.txt" || fail "report text"
run c rap export
[[ $IT_OUT == "$(cat "$IT_TMP/report.txt")" ]] || fail "export to stdout differs from -o"
run c rap export --format html
has "<html"
run c rap export --format markdown --at 5
run c rap export --json
json_ok
has '"content": "'
expect_fail c rap export --format pdf
[[ $IT_RC -eq 2 ]] || fail "a bad format is a usage error"
pass "export"

# ---- import into a new meeting ----
expect_fail c rap meeting create rg-iem-copy --rapporteur rap
[[ $IT_ERR == *"operator"* ]] || fail "a rapporteur creates a meeting: $IT_ERR"
run c op meeting create rg-iem-copy --rapporteur rap --title "A copy"
has "created meeting rg-iem-copy"
expect_fail c op meeting create rg-iem-copy --rapporteur rap
[[ $IT_ERR == *"exists"* ]] || fail "a second rg-iem-copy: $IT_ERR"
run c rap -m rg-iem-copy import "$IT_TMP/report.txt"
[[ $IT_OUT =~ items\ +10\ +0\ +0 ]] || fail "import: $IT_OUT"
[[ $IT_OUT =~ interims\ +6\ +0\ +0 ]] || fail "import: $IT_OUT"
run c rap agenda
want=$(sed -E 's/^[0-9]+( +20[0-9]{2}-)/#\1/; s/ +/ /g' <<<"$IT_OUT")
run c rap agenda -m rg-iem-copy
got=$(sed -E 's/^[0-9]+( +20[0-9]{2}-)/#\1/; s/ +/ /g' <<<"$IT_OUT")
[[ $got == "$want" ]] || fail "the imported agenda differs:
$(diff <(echo "$want") <(echo "$got"))"
run c rap meetings
has "rg-iem-copy"
pass "import of the exported text gives the same agenda"

# ---- an import is taken back as a whole ----
run c rap -m rg-iem-copy history --json
[[ $IT_OUT =~ \"seq\":\ ([0-9]+),[^}]*\"import\":\ ([0-9]+) ]] ||
    fail "history names no import: $IT_OUT"
iseq=${BASH_REMATCH[1]}
run c rap -m rg-iem-copy history
has "take the whole import back"
expect_fail c rap -m rg-iem-copy revert "$iseq"
[[ $IT_ERR == *"part of the import"*"--yes"* ]] || fail "revert of an import without --yes: $IT_ERR"
run c rap -m rg-iem-copy revert "$iseq" --yes
has "undid the import of changes"
run c rap -m rg-iem-copy agenda
hasnt "Opening"
run c rap -m rg-iem-copy audit verify
pass "revert of an import"

# ---- help and usage ----
run c rap actions add --help
has "usage: confer actions add TEXT [options]"
has "--owner"
expect_fail c rap actions add
[[ $IT_RC -eq 2 ]] || fail "actions add without TEXT"
run c rap --help
has "interims"
pass "help"
