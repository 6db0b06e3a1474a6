# it_floors.sh - the floors of server/ (DESIGN.md "Architecture"): every file includes and
# calls only files of lower floors, so no two files call each other, directly or around a
# loop. Includes are read from the sources; calls from the server library's objects (a
# symbol one object leaves undefined and another defines).
#
# Needs CONFERD (set by CTest): the library is found in the build folder beside it.

set -euo pipefail

: "${CONFERD:?CONFERD must name the conferd binary}"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../server" && pwd)
BUILD=$(cd "$(dirname "$CONFERD")/.." && pwd)
LIB=${CONFER_SERVER_LIB:-$BUILD/libconfer_server.a}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The floors, bottom first. A file of server/ missing here fails the test: a new file is
# given its floor on purpose.
declare -A FLOOR=(
    [srv_rec]=0 [srv_report]=0 [srv_ratelimit]=0 [srv_writer]=0 [srv_window]=0
    [srv_base]=1
    [srv_conn]=2 [srv_data]=2 [srv_http]=2
    [srv_held]=3 [srv_store]=3 [srv_apply]=3
    [srv_audit]=4
    [srv_hub]=5
    [srv_req]=6 [srv_live]=6
    [srv_read]=7
    [srv_auth]=8 [srv_meeting]=8 [srv_text]=8 [srv_presence]=8 [srv_revert]=8 [srv_share]=8
    [srv_rpc]=9
    [srv]=10
    [srv_ops]=11
    [main]=12
)

floor_of() {
    local f=${FLOOR[$1]:-}
    [[ -n $f ]] || fail "server file $1 has no floor in it_floors.sh"
    echo "$f"
}

[[ -f $LIB ]] || fail "no server library at $LIB (set CONFER_SERVER_LIB)"
command -v nm >/dev/null || fail "nm is needed to read the server library"

bad=0

# Includes: a file may include its own header and headers of lower floors. server/record/
# is a library of its own below the server (floor 0), with its own tests.
while IFS= read -r file; do
    name=$(basename "$file")
    name=${name%.*}
    from=$(floor_of "$name")
    while IFS= read -r inc; do
        to=$(floor_of "$inc")
        if [[ $inc != "$name" && $to -ge $from ]]; then
            echo "include up or across: ${file#"$SRC"/} (floor $from) includes $inc.h (floor $to)" >&2
            bad=1
        fi
    done < <(sed -n 's/^#include "\(srv[a-z_]*\)\.h".*/\1/p' "$file")
done < <(find "$SRC" -path "$SRC/record" -prune -o -name '*.[ch]' -print | sort)

# Calls (and any other reference): from an object to the object that defines the name.
declare -A DEF
while read -r obj sym; do
    DEF[$sym]=$obj
done < <(nm -A --defined-only "$LIB" 2>/dev/null |
    awk '$2 ~ /^[TDBR]$/ { n = $1; sub(/\.c\.o:.*/, "", n); sub(/.*:/, "", n); print n, $3 }')
[[ ${#DEF[@]} -gt 0 ]] || fail "read no symbols from $LIB"

while read -r obj sym; do
    to=${DEF[$sym]:-}
    [[ -n $to && $to != "$obj" ]] || continue
    from=$(floor_of "$obj")
    tof=$(floor_of "$to")
    if [[ $tof -ge $from ]]; then
        echo "call up or across: $obj.c (floor $from) uses $sym of $to.c (floor $tof)" >&2
        bad=1
    fi
done < <(nm -A --undefined-only "$LIB" 2>/dev/null |
    awk '{ n = $1; sub(/\.c\.o:.*/, "", n); sub(/.*:/, "", n); print n, $NF }')

[[ $bad -eq 0 ]] || fail "server/ has arrows that do not go down its floors"
echo "ok: every include and call of server/ goes down its floors"
