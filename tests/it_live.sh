#!/usr/bin/env bash
# Integration: the live view (PROTOCOL.md section 14) over real HTTP on 127.0.0.1: share
# links made and revoked with the real client, the page, its stream following changes, and
# the limits: 405 on other methods, one 404 body for every bad token and path, the security
# headers, HEAD, heads over 8 KiB, streams per address, a stream that never reads.
source "$(dirname "$0")/itlib.sh"

command -v curl >/dev/null || fail "curl is needed (apt-get install curl)"
command -v python3 >/dev/null || fail "python3 is needed"

it_init
it_account rap rap-password-1
it_account ed ed-password-1
"$CONFERD" meeting import rg "$CONFER_TEST_DATA/rg-iem-report-2023-06.txt" --rapporteur rap \
    --data "$IT_DATA" >/dev/null
it_start --http 127.0.0.1:0 --http-port-file "$IT_TMP/hport" --http-streams-per-addr 4 \
    --http-max-streams 8
HP=$(cat "$IT_TMP/hport")
H=http://127.0.0.1:$HP

it_login rap rap-password-1
run "$CONFER" use rg
run "$CONFER" members set ed editor

# ---- shares ----
run "$CONFER" share create --label projector
URL=$IT_OUT
[[ $URL =~ ^$H/v/[A-Za-z0-9_-]{43}$ ]] || fail "share create printed no link of the server: $URL"
TOK=${URL##*/}
run "$CONFER" share create --label other --base-url https://confer.example.org/
[[ $IT_OUT =~ ^https://confer.example.org/v/[A-Za-z0-9_-]{43}$ ]] ||
    fail "--base-url is not what the link starts with: $IT_OUT"
OTHER=$H/v/${IT_OUT##*/}
run "$CONFER" share list --json
python3 -c 'import json,sys; l=json.load(sys.stdin); assert len(l)==2 and {s["label"] for s in l}=={"projector","other"}, l; assert all("token" not in s for s in l)' <<<"$IT_OUT" ||
    fail "share list does not list the two links (without tokens): $IT_OUT"
OTHER_ID=$(python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin) if s["label"]=="other"][0])' <<<"$IT_OUT")
run "$CONFER" share list
[[ $IT_OUT == *projector* && $IT_OUT == *LABEL* ]] || fail "share list shows no table: $IT_OUT"
# An editor may not make links.
XDG_CONFIG_HOME=$IT_TMP/cfg-ed it_login ed ed-password-1
XDG_CONFIG_HOME=$IT_TMP/cfg-ed run "$CONFER" use rg
XDG_CONFIG_HOME=$IT_TMP/cfg-ed expect_fail "$CONFER" share create
[[ $IT_ERR == *rapporteur* || $IT_ERR == *forbidden* || $IT_ERR == *role* ]] ||
    fail "an editor's share create does not say why it is refused: $IT_ERR"
# Creating a link is a change in the log, without its token.
run "$CONFER" history --json
[[ $IT_OUT == *'"share"'* ]] || fail "the share is not in the history: $IT_OUT"
[[ $IT_OUT != *"$TOK"* ]] || fail "the history carries the token"
pass "share create (link of the server, --base-url), list, rapporteur only, audited without the token"

# ---- the page ----
code=$(curl -s -o "$IT_TMP/page.html" -D "$IT_TMP/page.h" -w '%{http_code}' "$URL")
[[ $code == 200 ]] || fail "the page answered $code"
grep -q '<h1>TSAG Rapporteur Group on Industry Engagement, Metrics</h1>' "$IT_TMP/page.html" ||
    fail "the page has no title"
grep -q 'id="s-actions"' "$IT_TMP/page.html" && grep -q 'RG-IEM-1' "$IT_TMP/page.html" ||
    fail "the page has no actions"
grep -q '<script src="/v/'"$TOK"'/live.js"' "$IT_TMP/page.html" || fail "the page loads no script"
grep -qi '^content-type: text/html' "$IT_TMP/page.h" || fail "the page is not text/html"
for u in "$URL/live.js" "$URL/page.css"; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$u") == 200 ]] || fail "$u is not served"
done
pass "the page: the whole record rendered on the server, its script and style"

# ---- security headers on every response ----
check_headers() { # FILE WHAT
    grep -qi "^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'" "$1" &&
        grep -qi '^x-content-type-options: nosniff' "$1" &&
        grep -qi '^referrer-policy: no-referrer' "$1" &&
        grep -qi '^cache-control: no-store' "$1" || fail "$2 lacks the security headers: $(cat "$1")"
}
check_headers "$IT_TMP/page.h" "the page"
for u in "$H/" "$H/nothing" "$URL/live.js" "$URL/page.css"; do
    curl -s -o /dev/null -D "$IT_TMP/h" "$u"
    check_headers "$IT_TMP/h" "$u"
done
curl -s -o /dev/null -D "$IT_TMP/h" -X POST -d x=1 "$URL"
check_headers "$IT_TMP/h" "a 405"
curl -s -o /dev/null -D "$IT_TMP/h" --max-time 2 "$URL/live" || true
check_headers "$IT_TMP/h" "the live stream"
pass "the security headers are on every response"

# ---- HEAD ----
curl -s -I "$URL" >"$IT_TMP/head.h"
grep -q '^HTTP/1.1 200' "$IT_TMP/head.h" || fail "HEAD of the page: $(head -1 "$IT_TMP/head.h")"
len=$(awk 'tolower($1)=="content-length:" {print $2+0}' "$IT_TMP/head.h")
[[ $len == $(stat -c %s "$IT_TMP/page.html") ]] ||
    fail "HEAD says $len bytes, the page has $(stat -c %s "$IT_TMP/page.html")"
# Raw: a HEAD answer has no body (the next bytes are the next answer's).
python3 - "$HP" "$TOK" <<'EOF' || fail "HEAD answered a body"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"HEAD /v/%s HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % sys.argv[2].encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
first, rest = data.split(b"\r\n\r\n", 1)
assert first.startswith(b"HTTP/1.1 200"), first
assert rest.startswith(b"HTTP/1.1 404"), rest[:80]
EOF
pass "HEAD: the GET's headers and length, no body"

# ---- 405 on every other method, any path ----
for m in POST PUT DELETE PATCH OPTIONS; do
    for u in "$URL" "$H/" "$H/v/nothing"; do
        curl -s -o /dev/null -D "$IT_TMP/h" -X "$m" "$u"
        grep -q '^HTTP/1.1 405' "$IT_TMP/h" || fail "$m $u: $(head -1 "$IT_TMP/h")"
        grep -qi '^allow: GET, HEAD' "$IT_TMP/h" || fail "$m $u has no Allow: GET, HEAD"
    done
done
pass "405 with Allow: GET, HEAD for POST, PUT, DELETE, PATCH, OPTIONS on any path"

# ---- one 404 body for every bad token and every other path ----
run "$CONFER" share create --label short --expires-in 1s
EXPIRED=$IT_OUT
run "$CONFER" share revoke "$OTHER_ID"
[[ $IT_OUT == *revoked* ]] || fail "share revoke says nothing: $IT_OUT"
unknown=$H/v/$(python3 -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')
# The expired link: polled (bounded) until its instant has passed.
for _ in $(seq 1 50); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$EXPIRED") == 404 ]] && break
    sleep 0.1
done
curl -s "$H/nothing" >"$IT_TMP/404.ref"
[[ -s $IT_TMP/404.ref ]] || fail "the 404 has no body"
n=0
for u in "$H/" "$H/nothing" "$H/v/" "$H/v/short" "$unknown" "$unknown/live" "$OTHER" "$OTHER/live" \
    "$OTHER/live.js" "$EXPIRED" "$EXPIRED/page.css" "$URL/nothing" "$URL/live/x" "$URL/../x" \
    "$H/v/${TOK}x" "$H/v/${TOK:0:42}" "$H/V/$TOK"; do
    code=$(curl -s -o "$IT_TMP/404.got" -w '%{http_code}' --path-as-is "$u")
    [[ $code == 404 ]] || fail "$u answered $code, not 404"
    cmp -s "$IT_TMP/404.ref" "$IT_TMP/404.got" || fail "$u has another 404 body"
    n=$((n + 1))
done
run "$CONFER" share list --json
[[ $IT_OUT != *'"other"'* && $IT_OUT != *'"short"'* ]] ||
    fail "share list lists a revoked or expired link: $IT_OUT"
pass "one 404 body for $n bad paths: unknown, malformed, revoked and expired tokens, other paths"

# ---- request heads over 8 KiB ----
big=$(head -c 9000 /dev/zero | tr '\0' a)
rc=0
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL") || rc=$?
[[ $code != 200 ]] || fail "a 9000-byte header was answered 200"
[[ $rc -ne 0 || $code == 431 ]] || fail "a head over 8 KiB was answered $code and kept"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Fits: ${big:0:6000}" "$URL")
[[ $code == 200 ]] || fail "a head under 8 KiB answered $code"
pass "a request head over 8 KiB is refused and its connection closed; one under it is served"

# ---- the live stream follows changes, escaped ----
curl -sN --max-time 30 "$URL/live" >"$IT_TMP/sse1" 2>/dev/null &
s1=$!
for _ in $(seq 1 50); do grep -q '^event: update' "$IT_TMP/sse1" 2>/dev/null && break; sleep 0.1; done
grep -q '^event: update' "$IT_TMP/sse1" || fail "a new stream got no sections"
run "$CONFER" items set 1 --title 'Opening <script>alert(1)</script> & "quoted"'
for _ in $(seq 1 50); do grep -q 'Opening &lt;script&gt;' "$IT_TMP/sse1" && break; sleep 0.1; done
grep -q 'Opening &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;' "$IT_TMP/sse1" ||
    fail "the stream did not carry the change, escaped: $(tail -c 400 "$IT_TMP/sse1")"
curl -s -o "$IT_TMP/page2.html" "$URL"
grep -q 'Opening &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;' "$IT_TMP/page2.html" ||
    fail "the page does not show the change escaped"
# Resume: a stream opened at the seq the page stands at gets no sections again.
seq_now=$(sed -n 's/.*data-seq="\([0-9]*\)".*/\1/p' "$IT_TMP/page2.html")
curl -sN --max-time 2 -H "Last-Event-ID: $seq_now" "$URL/live" >"$IT_TMP/sse_resume" || true
! grep -q '^event: update' "$IT_TMP/sse_resume" || fail "a stream resumed at seq $seq_now got everything again"
curl -sN --max-time 2 "$URL/live?since=1" >"$IT_TMP/sse_old" || true
grep -q '^event: update' "$IT_TMP/sse_old" || fail "a stream resumed from an old seq got nothing"
pass "the stream carries each change (escaped) and resumes from the last seq it saw"

# ---- presence: the section someone is writing in is marked with their name ----
if command -v tmux >/dev/null; then
    session=confer-it-live-$$
    tmux new-session -d -s "$session" -x 100 -y 30 \
        "XDG_CONFIG_HOME=$XDG_CONFIG_HOME '$CONFER' write 3"
    for _ in $(seq 1 100); do grep -q '^data: {"item-[0-9]*":\["rap"\]}' "$IT_TMP/sse1" && break; sleep 0.1; done
    grep -q '^data: {"item-[0-9]*":\["rap"\]}' "$IT_TMP/sse1" ||
        fail "the stream did not say who is writing in section 3: $(grep -A1 presence "$IT_TMP/sse1" | tail -4)"
    before=$(grep -c '^event: presence' "$IT_TMP/sse1")
    tmux kill-session -t "$session"
    for _ in $(seq 1 100); do
        [[ $(grep -c '^event: presence' "$IT_TMP/sse1") -gt $before ]] && break
        sleep 0.1
    done
    [[ $(grep -A1 '^event: presence' "$IT_TMP/sse1" | tail -1) == 'data: {}' ]] ||
        fail "the mark stayed after the writer left"
    pass "presence: the section being written is marked with the writer's name, until they leave"
else
    echo "skip - presence (tmux is needed: make test installs it)"
fi

# ---- a link that expires stops its open pages ----
run "$CONFER" share create --label short-lived --expires-in 2s
SHORT=$IT_OUT
curl -sN --max-time 20 "$SHORT/live" >"$IT_TMP/sse_short" 2>/dev/null &
short=$!
for _ in $(seq 1 100); do kill -0 "$short" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$short" 2>/dev/null || fail "the stream of an expired link is still open after 10 s"
wait "$short" 2>/dev/null || true
grep -q '^event: update' "$IT_TMP/sse_short" || fail "the short-lived link's stream got no sections"
grep -q '^event: revoked' "$IT_TMP/sse_short" || fail "the stream was not told its link expired"
pass "a link that expires tells its open pages and closes them"

# ---- the exports: byte for byte those of report.export ----
for f in text:txt markdown:md html:html; do
    run "$CONFER" export --format "${f%%:*}" -o "$IT_TMP/export.${f##*:}"
    code=$(curl -s -o "$IT_TMP/web.${f##*:}" -D "$IT_TMP/h" -w '%{http_code}' "$URL/report.${f##*:}")
    [[ $code == 200 ]] || fail "$URL/report.${f##*:} answered $code"
    cmp "$IT_TMP/export.${f##*:}" "$IT_TMP/web.${f##*:}" ||
        fail "report.${f##*:} differs from confer export --format ${f%%:*}"
    check_headers "$IT_TMP/h" "report.${f##*:}"
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "$OTHER/report.txt") == 404 ]] ||
    fail "a revoked link serves its export"
pass "report.txt, .md and .html are byte for byte the exports of report.export"

# ---- streams per address ----
# Streams are opened one by one (each waited for) until the server refuses one: with the
# first stream (and any whose readers left but are still counted) that is at most the
# fifth, --http-streams-per-addr being 4.
pids=()
code=
for i in 1 2 3 4 5; do
    curl -sN --max-time 60 -D "$IT_TMP/cap$i.h" "$URL/live" >"$IT_TMP/sse_cap$i" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 1 50); do grep -q '^HTTP' "$IT_TMP/cap$i.h" 2>/dev/null && break; sleep 0.1; done
    code=$(head -1 "$IT_TMP/cap$i.h" 2>/dev/null | awk '{print $2}')
    [[ $code == 200 ]] || break
done
[[ $code == 503 ]] || fail "stream $i from one address was answered ${code:-nothing}, not 503"
[[ $i -gt 1 ]] || fail "not even one more stream was taken from this address"
grep -q 'refused: too many from it' "$IT_TMP/server.log" || fail "the refusal is not logged"
# The page itself is still served to that address.
[[ $(curl -s -o /dev/null -w '%{http_code}' "$URL") == 200 ]] || fail "the page is refused too"
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
pass "live streams are capped per address (stream $i refused 503 past --http-streams-per-addr)"

# ---- a stream that never reads is closed; the others go on ----
cat >"$IT_TMP/slow.py" <<'EOF'
import os, socket, sys, time
# The streams whose readers left just before count until the server's next writes to them
# fail (a comment every 2 s): try until one is taken.
for _ in range(150):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /v/%s/live HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2].encode())
    head = b""
    while b"\r\n" not in head:
        head += s.recv(1)
    if head.startswith(b"HTTP/1.1 200"):
        break
    s.close()
    time.sleep(0.1)
print(head.decode().strip(), flush=True)
print("PORT %d" % s.getsockname()[1], flush=True)
# Reads nothing until told to; then drains what was sent: the server must have ended it.
for _ in range(600):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.1)
s.settimeout(10)
try:
    while s.recv(65536):
        pass
    print("EOF", flush=True)
except (socket.timeout, OSError) as e:
    print("NOT CLOSED: %s" % e, flush=True)
EOF
python3 "$IT_TMP/slow.py" "$HP" "$TOK" "$IT_TMP/drain" >"$IT_TMP/slow.out" 2>&1 &
slow=$!
for _ in $(seq 1 160); do grep -q 'HTTP/1.1 200' "$IT_TMP/slow.out" && break; sleep 0.1; done
grep -q 'HTTP/1.1 200' "$IT_TMP/slow.out" || fail "the slow reader's stream was not opened"
body=$(head -c 100000 /dev/zero | tr '\0' x)
for i in $(seq 1 40); do
    run "$CONFER" items set 2 --body "$i $body"
    grep -q 'closed: its reader fell behind' "$IT_TMP/server.log" && break
done
grep -q 'closed: its reader fell behind' "$IT_TMP/server.log" ||
    fail "a stream that never reads was not closed after 40 changes of 100 KB"
# Closed at once, while its reader still reads nothing: the server's end of it is no longer
# established (not waiting to write what it holds for a reader that never reads).
pyport=$(sed -n 's/^PORT //p' "$IT_TMP/slow.out")
[[ -n $pyport ]] || fail "the slow reader did not say its port"
for _ in $(seq 1 50); do
    [[ -z $(ss -Htn state established "( sport = :$HP and dport = :$pyport )") ]] && break
    sleep 0.1
done
[[ -z $(ss -Htn state established "( sport = :$HP and dport = :$pyport )") ]] ||
    fail "the server keeps the slow reader's connection open after closing its stream"
touch "$IT_TMP/drain"
wait "$slow" || true
grep -q '^EOF' "$IT_TMP/slow.out" || fail "the slow reader's connection stayed open: $(cat "$IT_TMP/slow.out")"
run "$CONFER" items set 1 --title 'After the slow reader'
for _ in $(seq 1 50); do grep -q 'After the slow reader' "$IT_TMP/sse1" && break; sleep 0.1; done
grep -q 'After the slow reader' "$IT_TMP/sse1" || fail "the reading stream stopped with the slow one"
pass "a stream that never reads is closed when it falls behind; a reading one goes on"

# ---- revoking a link stops its open pages ----
run "$CONFER" share list --json
PID_ID=$(python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin) if s["label"]=="projector"][0])' <<<"$IT_OUT")
run "$CONFER" share revoke "$PID_ID"
for _ in $(seq 1 50); do kill -0 "$s1" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$s1" 2>/dev/null || fail "the stream of a revoked link is still open after 5 s"
wait "$s1" 2>/dev/null || true
grep -q '^event: revoked' "$IT_TMP/sse1" || fail "the stream was not told the link was revoked"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$URL") == 404 ]] || fail "a revoked link still serves"
pass "revoking a link tells its open pages and closes them; the link answers 404"

it_stop
grep -q 'Sanitizer' "$IT_TMP/server.log" && fail "sanitizer report in the server log"
# After a restart the links stand as they were: none of these is live any more.
it_start --http 127.0.0.1:0 --http-port-file "$IT_TMP/hport"
HP=$(cat "$IT_TMP/hport")
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HP/v/$TOK") == 404 ]] ||
    fail "a revoked link serves again after a restart"
it_login rap rap-password-1
run "$CONFER" use rg
run "$CONFER" share create --label again
[[ $(curl -s -o /dev/null -w '%{http_code}' "$IT_OUT") == 200 ]] || fail "a new link does not serve"
pass "links survive a restart as they were"

# ---- many streams at once; the total cap ----
it_stop
it_start --http 127.0.0.1:0 --http-port-file "$IT_TMP/hport" --http-streams-per-addr 1000 \
    --http-max-streams 100
HP=$(cat "$IT_TMP/hport")
it_login rap rap-password-1
run "$CONFER" use rg
run "$CONFER" share create --label many
python3 - "$HP" "${IT_OUT##*/}" <<'EOF' || fail "100 streams at once were not all served, or the 101st was"
import socket, sys, time
port, tok = int(sys.argv[1]), sys.argv[2].encode()
def open_stream():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /v/%s/live HTTP/1.1\r\nHost: x\r\n\r\n" % tok)
    return s
# More streams than the server reads request heads at once: each must get its sections.
socks = [open_stream() for _ in range(100)]
got = [b""] * len(socks)
deadline = time.time() + 30
while time.time() < deadline and not all(b"event: update" in g for g in got):
    for i, s in enumerate(socks):
        s.settimeout(0.01)
        try:
            got[i] += s.recv(65536)
        except socket.timeout:
            pass
missing = [i for i, g in enumerate(got) if not (g.startswith(b"HTTP/1.1 200") and b"event: update" in g)]
assert not missing, "streams without their sections: %s" % missing[:10]
extra = open_stream()
extra.settimeout(10)
head = extra.recv(64)
assert head.startswith(b"HTTP/1.1 503"), head
EOF
grep -q 'refused: too many streams' "$IT_TMP/server.log" || fail "the total cap is not logged"
it_stop
pass "100 streams at once all get their sections; past --http-max-streams a stream is 503"
