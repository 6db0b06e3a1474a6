/* test_srv_chaos.c - a hostile client against a real conferd: no input from the network may
 * crash the server, corrupt its database or stall other clients (STYLE.md, PROTOCOL.md
 * sections 1, 2, 4, 7 and 10).
 *
 *   1. method fuzzing: thousands of pipelined requests for every method of section 7 (and
 *      unknown ones) with parameters from a grammar (right keys, wrong types, hostile
 *      strings, random ids, seqs, ops and fields maps), as the rapporteur of a meeting
 *      that holds the sample report; then the same before login. Every request must get
 *      exactly one response, in order, with its msgid and a known code (never internal);
 *      the connection stays open; another client keeps getting answers meanwhile.
 *   2. message junk: plaintexts that are not msgpack-RPC, each answered bad_request with
 *      the msgid of section 10; the connection stays open.
 *   3. frame junk on fresh connections: each is closed, the others keep being served.
 *   4. the audit chains verify, and the server exits cleanly with no sanitizer report.
 *
 * Fixed seeds, printed; CONFER_CHAOS_SEED=N replays a run, CONFER_CHAOS_REQUESTS and
 * CONFER_CHAOS_SECONDS change the bounds of the method fuzzing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "proto_msgpack.h"
#include "proto_schema.h"
#include "testsrv.h"
#include "testutil.h"

#define SAMPLE  "rg-iem-report-2023-06.txt"
#define MEETING "m1" /* the fuzzed meeting: the sample report, fz its rapporteur */
#define HOME    "m0" /* fz's other meeting (made by ts_start) */
#define OTHER   "m2" /* rap's meeting, the sample report too: fz is not a member */

#define LOGIN_TIMEOUT_MS 4000
#define FUZZ_REQUESTS    20000
#define FUZZ_SECONDS     30
#define PRELOGIN_REQS    300
#define MAX_INFLIGHT     200
#define STALL_MS         10000 /* no answer for this long: the server stalls */
#define CLOSE_MS         2500  /* "closes at once": well before the login deadline */
#define RAW_BATCH_MAX    (900 * 1024)
#define QCAP             4096
#define POOL_MAX         8192
#define PASSWD_MAX       4 /* failed password changes count against fz's login limit */

/* fz: the fuzzing client (operator, rapporteur of m0 and m1); rap: the watcher (rapporteur of
 * all three); ed: message junk; victim: the account the pre-login fuzzing guesses at. */
static const char *const users[] = {"fz", "rap", "ed", "victim", NULL};

static const char *const known_codes[] = {
    "bad_request", "unauthenticated", "forbidden",   "not_found", "conflict", "locked",
    "too_large",   "rate_limited",    "unavailable", "internal",  NULL,
};

/* ---- state shared by the tests (one server for all of them) ---- */

struct pool {
    int64_t v[POOL_MAX];
    size_t n;
};

static struct {
    struct ts_server s;
    bool up;
    uint64_t seed;
    char *sample;
    size_t sample_len;
    struct cli_conn *watch; /* rap, subscribed to m1 */
    int64_t watch_seq;      /* the last event seq the watcher saw for m1 */
    int64_t watch_max_ms;   /* slowest ping of the watcher */
    unsigned watch_pings;
    struct pool ids[PROTO_T_COUNT]; /* m1's objects */
    struct pool other;              /* m2's objects */
    int64_t seq;                    /* m1's seq, as last seen */
    unsigned meetings_made;
    int passwd_left; /* auth.passwd calls fz may still make */
} G;

static const char *const login_args[] = {"--login-timeout", "4000", NULL};

/* ---- small helpers ---- */

static uint64_t rng;

static void rng_seed(uint64_t s)
{
    rng = s ? s : 0x9e3779b97f4a7c15ULL;
}

static uint64_t rnd64(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static uint32_t rnd(uint32_t n)
{
    return n ? (uint32_t)(rnd64() % n) : 0;
}

static bool chance(unsigned pct)
{
    return rnd(100) < pct;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}

static void print_log_tail(int lines)
{
    char path[4096], line[2048];
    if (G.s.dir == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s/server.log", G.s.dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    static char ring[80][2048];
    size_t n = 0;
    if (lines > 80) {
        lines = 80;
    }
    while (fgets(line, sizeof(line), f)) {
        snprintf(ring[n % 80], sizeof(ring[0]), "%s", line);
        n++;
    }
    fclose(f);
    fprintf(stderr, "--- server log (last %d lines) ---\n", lines);
    for (size_t i = n > (size_t)lines ? n - (size_t)lines : 0; i < n; i++) {
        fputs(ring[i % 80], stderr);
    }
    fprintf(stderr, "--- end of server log ---\n");
}

/* True while the server process runs; says how it ended otherwise. */
static bool server_alive(void)
{
    int st = 0;
    if (G.s.pid <= 0) {
        return false;
    }
    pid_t r = waitpid(G.s.pid, &st, WNOHANG);
    if (r == 0) {
        return true;
    }
    if (r == G.s.pid) {
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "chaos: conferd died of signal %d\n", WTERMSIG(st));
        } else {
            fprintf(stderr, "chaos: conferd exited with status %d\n", WEXITSTATUS(st));
        }
        G.s.pid = 0;
    }
    return false;
}

/* ---- rendering values for failure messages ---- */

struct sb {
    char buf[2048];
    size_t len;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sb *b, const char *fmt, ...)
{
    if (b->len + 1 >= sizeof(b->buf)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, sizeof(b->buf) - b->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        b->len += (size_t)n;
        if (b->len >= sizeof(b->buf)) {
            b->len = sizeof(b->buf) - 1;
        }
    }
}

static void sb_bytes(struct sb *b, const char *p, size_t n)
{
    size_t show = n < 48 ? n : 48;
    sb_add(b, "\"");
    for (size_t i = 0; i < show; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            sb_add(b, "%c", c);
        } else {
            sb_add(b, "\\x%02x", c);
        }
    }
    sb_add(b, "\"");
    if (show < n) {
        sb_add(b, "...(%zu bytes)", n);
    }
}

static void render(struct sb *b, const msgpack_object *o)
{
    if (b->len > 1800) {
        sb_add(b, "...");
        return;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        sb_add(b, "nil");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        sb_add(b, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        sb_add(b, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        sb_add(b, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        sb_add(b, "%gf", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        sb_bytes(b, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        sb_add(b, "bin(%u)", (unsigned)o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        sb_add(b, "ext(%d, %u)", (int)o->via.ext.type, (unsigned)o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        sb_add(b, "[");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i == 16) {
                sb_add(b, ", ... %u more", o->via.array.size - i);
                break;
            }
            sb_add(b, i ? ", " : "");
            render(b, &o->via.array.ptr[i]);
        }
        sb_add(b, "]");
        break;
    case MSGPACK_OBJECT_MAP:
        sb_add(b, "{");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i == 16) {
                sb_add(b, ", ... %u more", o->via.map.size - i);
                break;
            }
            sb_add(b, i ? ", " : "");
            render(b, &o->via.map.ptr[i].key);
            sb_add(b, ": ");
            render(b, &o->via.map.ptr[i].val);
        }
        sb_add(b, "}");
        break;
    default:
        sb_add(b, "?");
    }
}

/* Renders packed msgpack bytes (one value, or a sequence), or their start in hex. */
static void render_bytes(struct sb *b, const uint8_t *p, size_t n)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    size_t good = 0;
    if (n > 0 && proto_mp_check_seq(p, n, &good) == 0) {
        while (off < n &&
               msgpack_unpack_next(&u, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS) {
            render(b, &u.data);
            sb_add(b, off < n ? " " : "");
        }
    } else {
        sb_add(b, "(%zu bytes, %zu of them whole values) ", n, good);
        for (size_t i = 0; i < n && i < 96; i++) {
            sb_add(b, "%02x", p[i]);
        }
        sb_add(b, n > 96 ? "..." : "");
    }
    msgpack_unpacked_destroy(&u);
}

/* ---- calls ---- */

static struct cli_msg *vcall(struct cli_conn *c, const char *method, const char *fmt, va_list ap)
{
    struct proto_buf b = {0};
    struct cli_msg *m = NULL;
    if (fmt) {
        assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    }
    int rc = cli_conn_call(c, method, b.data, b.len, &m);
    proto_buf_free(&b, 0);
    if (rc != 0) {
        print_log_tail(40);
        fail_msg("%s: %s (%s)", method, proto_strerror(rc), cli_conn_error(c));
    }
    return m;
}

/* A call that must succeed. */
static struct cli_msg *call_ok(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    if (m->error != NULL) {
        print_log_tail(20);
        fail_msg("%s: %s: %s", method, m->code, m->message);
    }
    return m;
}

/* A call that may fail (the transport may not). */
static struct cli_msg *call_any(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    return m;
}

static int64_t int_of(const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        return (int64_t)o->via.u64;
    }
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        return o->via.i64;
    }
    return -1;
}

static bool str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* A connection from a loopback address of our choice (the server limits failed logins per
 * address), logged in as user when user is not NULL. */
static struct cli_conn *open_from(const char *src, const char *user)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[512], hp[64];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a, d;
    memset(&a, 0, sizeof(a));
    memset(&d, 0, sizeof(d));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    d.sin_family = AF_INET;
    d.sin_port = htons((uint16_t)G.s.port);
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        connect(fd, (struct sockaddr *)&d, sizeof(d)) != 0) {
        fail_msg("cannot connect from %s: %s", src, strerror(errno));
    }
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", G.s.port);
    if (cli_conn_open_fd(&c, fd, hp, &pol, 5000, err, sizeof(err)) != 0) {
        print_log_tail(20);
        fail_msg("handshake from %s: %s", src, err);
    }
    cli_conn_set_timeout(c, STALL_MS);
    if (user) {
        char pw[128];
        snprintf(pw, sizeof(pw), "%s-password", user);
        cli_msg_free(call_ok(c, "auth.login", "{s:s, s:s}", "user", user, "password", pw));
    }
    return c;
}

static void pool_add(struct pool *p, int64_t id)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i] == id) {
            return;
        }
    }
    if (p->n < POOL_MAX) {
        p->v[p->n++] = id;
    }
}

/* Adds the ids of every object of a meeting.get result to pools (by type) or to one pool. */
static void collect_ids(const msgpack_object *res, struct pool *by_type, struct pool *all)
{
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        const msgpack_object *arr =
            proto_mp_map_get(res, proto_type_info((enum proto_type)t)->plural);
        for (uint32_t i = 0; arr && arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size;
             i++) {
            int64_t id = int_of(proto_mp_map_get(&arr->via.array.ptr[i], "id"));
            if (id > 0) {
                pool_add(by_type ? &by_type[t] : all, id);
            }
        }
    }
}

/* ---- notifications ---- */

/* Checks a notification; last_seq (may be NULL) holds the last m1 event seq of a connection
 * that subscribed once, so events must come in seq order. */
static void check_note(const struct cli_msg *m, const char *who, int64_t *last_seq)
{
    if (strcmp(m->method, "closing") == 0) {
        const msgpack_object *r = proto_mp_map_get(m->params, "reason");
        struct sb b = {0};
        if (r) {
            render(&b, r);
        }
        print_log_tail(30);
        fail_msg("%s: the server is closing the connection: %s", who, b.buf);
    }
    if (strcmp(m->method, "event") == 0) {
        const msgpack_object *mt = proto_mp_map_get(m->params, "meeting");
        int64_t seq = int_of(proto_mp_map_get(m->params, "seq"));
        if (mt == NULL || mt->type != MSGPACK_OBJECT_STR || seq < 1) {
            fail_msg("%s: an event without meeting or seq", who);
        }
        if (str_is(mt, MEETING)) {
            if (last_seq) {
                if (seq <= *last_seq) {
                    fail_msg("%s: event seq %lld after %lld", who, (long long)seq,
                             (long long)*last_seq);
                }
                *last_seq = seq;
            }
            if (seq > G.seq) {
                G.seq = seq;
            }
        }
        return;
    }
    if (strcmp(m->method, "presence") == 0) {
        const msgpack_object *st = proto_mp_map_get(m->params, "state");
        if (!str_is(st, "join") && !str_is(st, "move") && !str_is(st, "leave")) {
            fail_msg("%s: a presence notification with a bad state", who);
        }
        return;
    }
    fail_msg("%s: unknown notification %s", who, m->method);
}

/* Reads what the watcher got without waiting. */
static void watch_drain(void)
{
    for (int i = 0; i < 100000; i++) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(G.watch, 0, &m);
        if (rc == PROTO_ETIMEDOUT) {
            return;
        }
        if (rc != 0) {
            print_log_tail(30);
            fail_msg("watcher: connection lost: %s", cli_conn_error(G.watch));
        }
        if (m->kind == PROTO_RPC_NOTIFY) {
            check_note(m, "watcher", &G.watch_seq);
        } else {
            fail_msg("watcher: a response nobody asked for (msgid %u)", (unsigned)m->msgid);
        }
        cli_msg_free(m);
    }
}

/* Another client must keep getting answers: a ping within STALL_MS. */
static void watch_ping(const char *when)
{
    int64_t t0 = mono_ms();
    struct cli_msg *m = NULL;
    int rc = cli_conn_callf(G.watch, &m, "ping", NULL);
    int64_t dt = mono_ms() - t0;
    if (rc != 0 || m->error != NULL) {
        bool alive = server_alive();
        print_log_tail(40);
        fail_msg("watcher: no ping answer %s (%s; server %s)", when,
                 rc ? cli_conn_error(G.watch) : m->code, alive ? "running" : "gone");
    }
    cli_msg_free(m);
    G.watch_pings++;
    if (dt > G.watch_max_ms) {
        G.watch_max_ms = dt;
    }
    watch_drain();
}

/* The watcher undoes what the fuzzing may have done to fz's standing in m1 (a final
 * status, a lower role), so that the fuzzing keeps reaching the deep checks. */
static void watch_repair(void)
{
    cli_msg_free(call_ok(G.watch, "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", MEETING,
                         "type", "meeting", "id", MEETING, "fields", "status", "draft"));
    cli_msg_free(call_ok(G.watch, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "fz",
                         "role", "rapporteur"));
    watch_drain();
}

/* ---- the grammar ---- */

/* Words the grammar likes: names, type and field names, values of enums and formats (valid
 * and not), and strings that have broken other programs. */
static const char *const w_names[] = {"",       "m1",     "m0",     "m2", "M1", "m1 ",
                                      "nosuch", "victim", "nobody", "fz", "ed", "null"};
static const char *const w_types[] = {"meeting", "session",  "item",    "doc",
                                      "action",  "decision", "interim", "person"};
static const char *const w_fields[] = {"body", "text",     "abstract", "title",    "status",
                                       "ref",  "revision", "number",   "deadline", "deadline_days",
                                       "id",   "seq",      "d"};
static const char *const w_enums[] = {
    "draft",  "final",     "open",       "done",       "dropped",  "agreed",   "viewer",
    "editor", "associate", "counsellor", "rapporteur", "delegate", "markdown", "html"};
static const char *const w_times[] = {"2023-06-12", "2024-02-29", "2023-02-29", "1899-12-31",
                                      "9999-12-31", "0000-00-00", "2023-6-1",   "09:30",
                                      "23:59",      "24:00",      "12:60"};
static const char *const w_zones[] = {"UTC",
                                      "Europe/Zurich",
                                      "Etc/GMT+14",
                                      "America/Argentina/Buenos_Aires",
                                      "../../../../etc/passwd",
                                      "Europe//Zurich"};
static const char *const w_numbers[] = {"4",
                                        "4.1",
                                        "10.2.3",
                                        "0",
                                        "4..1",
                                        ".4",
                                        "4.",
                                        "-1",
                                        "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16",
                                        "99999999999999999999"};
static const char *const w_refs[] = {
    "RG-IEM",     "RG-IEM-1", "RG-IEM-99999999999999999999", "RG-IEM-9223372036854775807",
    "TSAG-TD182", "R1"};
static const char *const w_odd[] = {"%s%s%s%n%n",   "'; DROP TABLE audit; --",
                                    "\\",           "\xf0\x9f\x98\x80",
                                    "e\xcc\x81",    "\xe2\x80\xae",
                                    "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
                                    "\xef\xbb\xbf"};

#define WORDS(a)                                                                                   \
    {                                                                                              \
        a, sizeof(a) / sizeof(a[0])                                                                \
    }
static const struct {
    const char *const *w;
    size_t n;
} word_sets[] = {WORDS(w_names), WORDS(w_types),   WORDS(w_fields), WORDS(w_enums), WORDS(w_times),
                 WORDS(w_zones), WORDS(w_numbers), WORDS(w_refs),   WORDS(w_odd)};
#undef WORDS

static const char *rand_word(void)
{
    size_t k = rnd(sizeof(word_sets) / sizeof(word_sets[0]));
    return word_sets[k].w[rnd((uint32_t)word_sets[k].n)];
}

static const char *const bad_utf8[] = {
    "\xc0\x80",     "\xed\xa0\x80", "\xf5\x80\x80\x80", "\xff",        "\x80", "\xe2\x82",
    "\xf0\x9f\x98", "\xc3",         "\xf4\x90\x80\x80", "\xe0\x80\xaf"};

/* Where one request's parameters are being packed. */
struct gen {
    struct proto_buf *b;
    msgpack_packer pk;
    size_t budget;       /* bytes of long strings this request may still take */
    bool small;          /* before login: the whole request stays under 4 KiB */
    bool clean;          /* every key of its kind, values mostly valid: the deep paths */
    bool sweep;          /* the parameter sweep: no report imports */
    enum proto_type t;   /* the type this request aims at */
    const char *meeting; /* the meeting it names */
};

static char sbuf[70 * 1024];

static void pk_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pk_cstr(msgpack_packer *pk, const char *s)
{
    pk_str(pk, s, strlen(s));
}

static size_t put_cp(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static uint32_t rand_cp(void)
{
    static const uint32_t special[] = {0x1,    0x7f,   0x80,   0x200b,   0x202e, 0x301,
                                       0xfeff, 0xfffd, 0xffff, 0x10ffff, '\n',   '\r',
                                       '\t',   '"',    '\\',   '%',      '<',    '&'};
    switch (rnd(9)) {
    case 0:
    case 1:
    case 2:
    case 3:
        return 0x20 + rnd(0x5f);
    case 4:
        return 0xa0 + rnd(0x700);
    case 5:
        return 0x800 + rnd(0xd800 - 0x800);
    case 6:
        return 0xe000 + rnd(0x2000);
    case 7:
        return 0x10000 + rnd(0x100000);
    default:
        return special[rnd(sizeof(special) / sizeof(special[0]))];
    }
}

/* n random code points into o (room for 4n bytes); returns the bytes. */
static size_t rand_text(char *o, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += put_cp(o + len, rand_cp());
    }
    return len;
}

/* n code points of text a short field accepts: one line, no control characters. */
static size_t clean_text(char *o, size_t n)
{
    static const char *const bits[] = {"a",
                                       "e",
                                       "n",
                                       "s",
                                       "t",
                                       " ",
                                       "R",
                                       "4",
                                       "-",
                                       ".",
                                       "\xc3\xa9",
                                       "\xc3\xbc",
                                       "\xe2\x80\x93",
                                       "\xce\xa9",
                                       "\xe6\x97\xa5",
                                       "\xf0\x9f\x98\x80"};
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *x = bits[rnd(sizeof(bits) / sizeof(bits[0]))];
        memcpy(o + len, x, strlen(x));
        len += strlen(x);
    }
    return len;
}

/* A random string in sbuf: mostly short text, sometimes hostile. Returns its length. */
static size_t rand_str(struct gen *g)
{
    size_t n = 0;
    if (g->clean) {
        return clean_text(sbuf, 1 + rnd(chance(10) ? 200 : 20));
    }
    switch (rnd(24)) {
    case 0:
        return 0;
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6: {
        const char *w = rand_word();
        n = strlen(w);
        memcpy(sbuf, w, n);
        return n;
    }
    case 7: { /* invalid UTF-8 somewhere */
        n = rand_text(sbuf, rnd(8));
        const char *bad = bad_utf8[rnd(sizeof(bad_utf8) / sizeof(bad_utf8[0]))];
        size_t at = n ? rnd((uint32_t)n + 1) : 0;
        memmove(sbuf + at + strlen(bad), sbuf + at, n - at);
        memcpy(sbuf + at, bad, strlen(bad));
        return n + strlen(bad);
    }
    case 8: /* a NUL inside */
        n = rand_text(sbuf, rnd(4));
        sbuf[n++] = '\0';
        return n + rand_text(sbuf + n, rnd(4));
    case 9: /* several lines */
        n = rand_text(sbuf, 1 + rnd(10));
        sbuf[n++] = chance(50) ? '\n' : '\r';
        return n + rand_text(sbuf + n, 1 + rnd(10));
    case 10: /* long: up to 64 KiB */
        if (!g->small && g->budget >= 70 * 1024 && chance(50)) {
            n = chance(20) ? 65536 : 1024 + rnd(64 * 1024 - 1024);
            size_t len = 0;
            while (len + 4 <= n) {
                len += chance(90) ? put_cp(sbuf + len, 0x20 + rnd(0x5f))
                                  : put_cp(sbuf + len, rand_cp());
            }
            while (len < n) {
                sbuf[len++] = 'x';
            }
            g->budget -= n;
            return n;
        }
        return rand_text(sbuf, 1 + rnd(30));
    case 11: /* around the limits of short fields */
        n = g->small ? 1 + rnd(300) : (chance(50) ? 500 + rnd(3) : 1000 + rnd(30));
        memset(sbuf, 'a' + (int)rnd(26), n);
        return n;
    case 12: { /* name-like */
        static const char cs[] = "abcdefghijklmnopqrstuvwxyz0123456789._-";
        n = 1 + rnd(chance(20) ? 70 : 12);
        for (size_t i = 0; i < n; i++) {
            sbuf[i] = cs[rnd(sizeof(cs) - 1)];
        }
        return n;
    }
    default:
        return rand_text(sbuf, 1 + rnd(24));
    }
}

static void gen_str(struct gen *g)
{
    size_t n = rand_str(g);
    pk_str(&g->pk, sbuf, n);
}

static const uint64_t edge_small[] = {0,   1,   2,   7,    127,  128,   255,
                                      256, 365, 366, 1000, 1001, 65535, 65536};
static const uint64_t edge_big[] = {
    INT32_MAX, (uint64_t)INT32_MAX + 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1, (uint64_t)1 << 53,
    INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
static const int64_t neg_small[] = {-1, -2, -31, -32, -33, -127, -128, -129, -32768, -32769};
static const int64_t neg_big[] = {INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN + 1, INT64_MIN};

static uint64_t edge_uint(void)
{
    if (chance(50)) {
        return edge_small[rnd(sizeof(edge_small) / sizeof(edge_small[0]))];
    }
    return edge_big[rnd(sizeof(edge_big) / sizeof(edge_big[0]))];
}

static void gen_uint(struct gen *g)
{
    if (chance(70)) {
        msgpack_pack_uint64(&g->pk, edge_uint());
    } else {
        msgpack_pack_uint64(&g->pk, rnd64() >> rnd(64));
    }
}

static void gen_neg(struct gen *g)
{
    if (chance(50)) {
        msgpack_pack_int64(&g->pk, neg_small[rnd(sizeof(neg_small) / sizeof(neg_small[0]))]);
    } else {
        msgpack_pack_int64(&g->pk, neg_big[rnd(sizeof(neg_big) / sizeof(neg_big[0]))]);
    }
}

/* An integer in an encoding msgpack-c would not choose (int64 for 1, uint64 for 5...). */
static void gen_odd_int(struct gen *g)
{
    uint8_t raw[9];
    uint64_t v = chance(50) ? rnd(10) : edge_uint();
    static const uint8_t heads[] = {0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3};
    uint8_t h = heads[rnd(sizeof(heads))];
    size_t w = (size_t)1 << (h & 3);
    raw[0] = h;
    for (size_t i = 0; i < w; i++) {
        raw[1 + i] = (uint8_t)(v >> (8 * (w - 1 - i)));
    }
    proto_buf_append(g->b, raw, 1 + w);
}

static void gen_float(struct gen *g)
{
    static const double vals[] = {0.0, -0.0, 1.0, 3.0, 7.0, -1.0, 0.5, 1e308, 4294967296.0};
    switch (rnd(4)) {
    case 0:
        msgpack_pack_float(&g->pk, (float)vals[rnd(sizeof(vals) / sizeof(vals[0]))]);
        break;
    case 1:
        msgpack_pack_double(&g->pk, chance(50) ? NAN : (chance(50) ? INFINITY : -INFINITY));
        break;
    default:
        msgpack_pack_double(&g->pk, vals[rnd(sizeof(vals) / sizeof(vals[0]))]);
    }
}

static void gen_bin(struct gen *g)
{
    uint8_t b[64];
    size_t n = chance(30) ? 32 : rnd(sizeof(b) + 1);
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)rnd(256);
    }
    msgpack_pack_bin(&g->pk, n);
    msgpack_pack_bin_body(&g->pk, b, n);
}

static void gen_ext(struct gen *g)
{
    uint8_t b[20];
    static const size_t sizes[] = {1, 2, 4, 8, 16, 0, 3, 12, 20};
    size_t n = sizes[rnd(sizeof(sizes) / sizeof(sizes[0]))];
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)rnd(256);
    }
    msgpack_pack_ext(&g->pk, n, chance(40) ? -1 : (int8_t)rnd(256));
    msgpack_pack_ext_body(&g->pk, b, n);
}

static void gen_any(struct gen *g, int depth);

static void gen_key(struct gen *g, int depth)
{
    if (chance(85)) {
        gen_str(g);
    } else {
        gen_any(g, depth + 1);
    }
}

/* Any msgpack value, nested at most 5 deep below depth. */
static void gen_any(struct gen *g, int depth)
{
    switch (rnd(depth >= 5 ? 10 : 13)) {
    case 0:
        msgpack_pack_nil(&g->pk);
        break;
    case 1:
        chance(50) ? msgpack_pack_true(&g->pk) : msgpack_pack_false(&g->pk);
        break;
    case 2:
        gen_uint(g);
        break;
    case 3:
        gen_neg(g);
        break;
    case 4:
        gen_float(g);
        break;
    case 5:
    case 6:
        gen_str(g);
        break;
    case 7:
        gen_bin(g);
        break;
    case 8:
        gen_ext(g);
        break;
    case 9:
        gen_odd_int(g);
        break;
    case 10:
    case 11: {
        uint32_t n = chance(5) ? 40 : rnd(5);
        msgpack_pack_array(&g->pk, n);
        for (uint32_t i = 0; i < n; i++) {
            gen_any(g, depth + 1);
        }
        break;
    }
    default: {
        uint32_t n = rnd(5);
        msgpack_pack_map(&g->pk, n);
        for (uint32_t i = 0; i < n; i++) {
            gen_key(g, depth);
            gen_any(g, depth + 1);
        }
    }
    }
}

/* ---- typed parameters ---- */

enum pkind {
    P_MEETING,
    P_TYPE,
    P_ID,
    P_FIELDS,
    P_TEXTFIELD,
    P_SEQ,
    P_OP,
    P_CID,
    P_USER,
    P_PW,
    P_TOKEN,
    P_ROLE,
    P_BOOL,
    P_WHERE,
    P_LIMIT,
    P_FORMAT,
    P_REPORT,
    P_NEWID,
    P_MFIELDS, /* meeting.create: meeting fields as parameters of their own */
};

static int64_t pick_id(struct gen *g)
{
    struct pool *p = &G.ids[g->t];
    switch (rnd(g->clean ? 6 : 10)) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
        if (p->n) {
            return p->v[rnd((uint32_t)p->n)];
        }
        return 1 + rnd(50);
    case 5: { /* an object of another type */
        struct pool *q = &G.ids[1 + rnd(PROTO_T_COUNT - 1)];
        return q->n ? q->v[rnd((uint32_t)q->n)] : 0;
    }
    case 6: /* another meeting's object */
        return G.other.n ? G.other.v[rnd((uint32_t)G.other.n)] : 2;
    case 7:
        return chance(50) ? 0 : -1;
    case 8:
        return chance(50) ? INT64_MAX : INT64_MIN;
    default:
        return (int64_t)rnd(100000);
    }
}

static void gen_id(struct gen *g)
{
    if (g->t == PROTO_T_MEETING && (g->clean || chance(70))) {
        pk_cstr(&g->pk, g->clean || chance(85) ? g->meeting : w_names[rnd(8)]);
        return;
    }
    if (!g->clean && chance(8)) {
        msgpack_pack_uint64(&g->pk, chance(50) ? (uint64_t)INT64_MAX + 1 : UINT64_MAX);
        return;
    }
    msgpack_pack_int64(&g->pk, pick_id(g));
}

static void gen_seq(struct gen *g)
{
    int64_t s = G.seq;
    switch (rnd(g->clean ? 9 : 14)) {
    case 0:
    case 1:
    case 2:
    case 3:
        msgpack_pack_int64(&g->pk, s);
        break;
    case 4:
    case 5:
        msgpack_pack_int64(&g->pk, s - rnd(30) > 0 ? s - rnd(30) : 1);
        break;
    case 6:
        msgpack_pack_int64(&g->pk, s + 1 + rnd(3));
        break;
    case 7:
        msgpack_pack_int64(&g->pk, rnd(2));
        break;
    case 8:
        msgpack_pack_int64(&g->pk, s > 0 ? rnd((uint32_t)s + 1) : 0);
        break;
    case 9:
        msgpack_pack_double(&g->pk, (double)s);
        break;
    case 10:
        gen_neg(g);
        break;
    case 11:
        gen_uint(g);
        break;
    case 12:
        gen_odd_int(g);
        break;
    default: {
        char num[32];
        snprintf(num, sizeof(num), "%lld", (long long)s);
        pk_cstr(&g->pk, num);
    }
    }
}

/* One component of a text op: mostly plausible, often not. */
static void gen_op_comp(struct gen *g)
{
    msgpack_packer *pk = &g->pk;
    switch (rnd(chance(50) ? 4 : 22)) {
    case 0:
        msgpack_pack_uint64(pk, 1 + rnd(5));
        break;
    case 1: {
        size_t n = rand_text(sbuf, 1 + rnd(6));
        pk_str(pk, sbuf, n);
        break;
    }
    case 2:
        msgpack_pack_map(pk, 1);
        pk_cstr(pk, "d");
        msgpack_pack_uint64(pk, 1 + rnd(3));
        break;
    case 3: {
        msgpack_pack_map(pk, 1);
        pk_cstr(pk, "d");
        size_t n = rand_text(sbuf, 1 + rnd(4));
        pk_str(pk, sbuf, n);
        break;
    }
    case 4:
        msgpack_pack_uint64(pk, 0);
        break;
    case 5:
        gen_neg(g);
        break;
    case 6:
        gen_uint(g);
        break;
    case 7:
        gen_float(g);
        break;
    case 8:
        gen_str(g); /* empty, invalid, NUL, long... */
        break;
    case 9:
        msgpack_pack_map(pk, 1);
        pk_cstr(pk, "d");
        gen_any(g, 3);
        break;
    case 10:
        msgpack_pack_map(pk, 2);
        pk_cstr(pk, "d");
        msgpack_pack_uint64(pk, 1);
        gen_key(g, 3);
        gen_any(g, 3);
        break;
    case 11:
        msgpack_pack_map(pk, 1);
        gen_key(g, 3);
        msgpack_pack_uint64(pk, 1);
        break;
    case 12:
        msgpack_pack_map(pk, 0);
        break;
    case 13:
        msgpack_pack_map(pk, 1);
        pk_cstr(pk, "d");
        msgpack_pack_uint64(pk, chance(50) ? UINT32_MAX : (uint64_t)UINT32_MAX + 1);
        break;
    case 14:
        msgpack_pack_uint64(pk, chance(50) ? UINT32_MAX : (uint64_t)UINT32_MAX + 1);
        break;
    case 15:
        msgpack_pack_map(pk, 2); /* {"d": 1, "d": 2}: a repeated key */
        pk_cstr(pk, "d");
        msgpack_pack_uint64(pk, 1);
        pk_cstr(pk, "d");
        msgpack_pack_uint64(pk, 2);
        break;
    case 16:
        gen_odd_int(g);
        break;
    default:
        gen_any(g, 3);
    }
}

static void gen_op(struct gen *g)
{
    if (!g->clean && chance(10)) {
        gen_any(g, 2);
        return;
    }
    if (g->clean || chance(30)) { /* small edits near the start: likely to fit */
        size_t n = rand_text(sbuf, 1 + rnd(8));
        switch (rnd(6)) {
        case 0:
        case 1:
            msgpack_pack_array(&g->pk, 1);
            pk_str(&g->pk, sbuf, n);
            break;
        case 2:
            msgpack_pack_array(&g->pk, 2);
            msgpack_pack_uint64(&g->pk, 1 + rnd(20));
            pk_str(&g->pk, sbuf, n);
            break;
        case 3:
            msgpack_pack_array(&g->pk, 1);
            msgpack_pack_map(&g->pk, 1);
            pk_cstr(&g->pk, "d");
            msgpack_pack_uint64(&g->pk, 1 + rnd(3));
            break;
        case 4:
            msgpack_pack_array(&g->pk, 3);
            msgpack_pack_uint64(&g->pk, 1 + rnd(5));
            msgpack_pack_map(&g->pk, 1);
            pk_cstr(&g->pk, "d");
            pk_str(&g->pk, sbuf, n);
            pk_str(&g->pk, sbuf, n);
            break;
        default:
            msgpack_pack_array(&g->pk, 2);
            pk_str(&g->pk, sbuf, n);
            msgpack_pack_uint64(&g->pk, 1 + rnd(1000));
        }
        return;
    }
    uint32_t n = chance(5) ? 0 : (chance(5) ? 300 : 1 + rnd(6));
    msgpack_pack_array(&g->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        gen_op_comp(g);
    }
}

/* A value for field f: mostly of its kind, often hostile. */
static void gen_field_value(struct gen *g, const struct proto_field *f)
{
    msgpack_packer *pk = &g->pk;
    if (!g->clean && chance(25)) {
        gen_any(g, 2);
        return;
    }
    if (chance(g->clean ? 3 : 8) && (!g->clean || f->kind != PROTO_F_ENUM)) {
        msgpack_pack_nil(pk);
        return;
    }
    /* The valid values come first in each list; clean requests pick from those. */
    static const char *const dates[] = {"2023-06-12", "2024-02-29", "1900-01-01",
                                        "9999-12-31", "2023-02-29", "2023-13-01"};
    static const char *const times[] = {"09:30", "00:00", "23:59", "24:00", "9:30"};
    static const char *const tzs[] = {"UTC", "Europe/Zurich", "Etc/GMT-14", "Nowhere/Atlantis",
                                      "../../etc/passwd"};
    static const char *const nums[] = {"1", "4.1", "10.2.3", "007", "4..1", "4.", ""};
    const char *const *set = NULL;
    size_t n = 0;
    switch (f->kind) {
    case PROTO_F_INT:
        if (g->clean) {
            msgpack_pack_int64(pk, f->min_i + (int64_t)rnd((uint32_t)(f->max_i - f->min_i + 1)));
        } else if (chance(60)) {
            msgpack_pack_int64(pk,
                               f->min_i - 1 + (int64_t)rnd((uint32_t)(f->max_i - f->min_i + 3)));
        } else {
            chance(50) ? gen_uint(g) : gen_neg(g);
        }
        return;
    case PROTO_F_ITEMREF: {
        struct gen h = *g;
        h.t = PROTO_T_ITEM;
        msgpack_pack_int64(pk, pick_id(&h));
        return;
    }
    case PROTO_F_ENUM:
        if (g->clean || chance(70)) {
            while (f->values[n]) {
                n++;
            }
            pk_cstr(pk, f->values[rnd((uint32_t)n)]);
        } else {
            gen_str(g);
        }
        return;
    case PROTO_F_DATE:
        set = dates;
        n = sizeof(dates) / sizeof(dates[0]);
        break;
    case PROTO_F_TIME:
        set = times;
        n = sizeof(times) / sizeof(times[0]);
        break;
    case PROTO_F_TZ:
        set = tzs;
        n = sizeof(tzs) / sizeof(tzs[0]);
        break;
    case PROTO_F_NUMBER:
        set = nums;
        n = sizeof(nums) / sizeof(nums[0]);
        break;
    default:
        gen_str(g);
        return;
    }
    if (g->clean || chance(60)) {
        pk_cstr(pk, set[rnd((uint32_t)(g->clean ? n / 2 : n))]);
    } else {
        gen_str(g);
    }
}

/* A fields map for type t: right names, wrong names, read-only ones, repeats. */
static void gen_fields(struct gen *g, enum proto_type t)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    if (g->clean) { /* distinct fields of the type, none read-only */
        int pick[PROTO_MAX_FIELDS];
        uint32_t n = 0;
        for (size_t i = 0; i < ti->nfields; i++) {
            if (ti->fields[i].kind != PROTO_F_COMPUTED && chance(30)) {
                pick[n++] = (int)i;
            }
        }
        msgpack_pack_map(&g->pk, n);
        for (uint32_t i = 0; i < n; i++) {
            pk_cstr(&g->pk, ti->fields[pick[i]].name);
            gen_field_value(g, &ti->fields[pick[i]]);
        }
        return;
    }
    if (chance(6)) {
        gen_any(g, 2);
        return;
    }
    uint32_t n = chance(5) ? (uint32_t)ti->nfields : rnd(5);
    msgpack_pack_map(&g->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = rnd(100);
        const struct proto_field *f = &ti->fields[rnd((uint32_t)ti->nfields)];
        if (r < 72) {
            pk_cstr(&g->pk, f->name);
        } else if (r < 80) {
            const struct proto_typeinfo *o = proto_type_info((enum proto_type)rnd(PROTO_T_COUNT));
            f = &o->fields[rnd((uint32_t)o->nfields)];
            pk_cstr(&g->pk, f->name);
        } else if (r < 88) {
            static const char *const ro[] = {"id", "seq", "deadline", "created", "meeting"};
            pk_cstr(&g->pk, ro[rnd(sizeof(ro) / sizeof(ro[0]))]);
        } else if (r < 96) {
            gen_str(g);
        } else {
            gen_any(g, 3);
        }
        gen_field_value(g, f);
    }
}

static void gen_where(struct gen *g)
{
    if (chance(20)) {
        msgpack_pack_nil(&g->pk);
        return;
    }
    if (g->clean) {
        const struct proto_typeinfo *ti = proto_type_info(g->t);
        msgpack_pack_map(&g->pk, 3);
        pk_cstr(&g->pk, "type");
        pk_cstr(&g->pk, ti->name);
        pk_cstr(&g->pk, "id");
        gen_id(g);
        pk_cstr(&g->pk, "field");
        pk_cstr(&g->pk, ti->fields[rnd((uint32_t)ti->nfields)].name);
        return;
    }
    if (chance(15)) {
        gen_any(g, 2);
        return;
    }
    uint32_t n = 1 + rnd(3);
    msgpack_pack_map(&g->pk, n);
    static const char *const keys[] = {"type", "id", "field"};
    for (uint32_t i = 0; i < n; i++) {
        pk_cstr(&g->pk, keys[i]);
        if (i == 0 && chance(80)) {
            pk_cstr(&g->pk, proto_type_info(g->t)->name);
        } else if (i == 1 && chance(70)) {
            gen_id(g);
        } else if (i == 2 && chance(60)) {
            const struct proto_typeinfo *ti = proto_type_info(g->t);
            pk_cstr(&g->pk, ti->fields[rnd((uint32_t)ti->nfields)].name);
        } else {
            chance(50) ? gen_str(g) : gen_any(g, 3);
        }
    }
}

/* A report: the sample, the sample mangled, or anything. */
static void gen_report(struct gen *g)
{
    if (g->small || g->sweep || G.sample == NULL || chance(50)) {
        gen_str(g);
        return;
    }
    size_t n = G.sample_len;
    char *t = malloc(n * 2 + 64);
    memcpy(t, G.sample, n);
    int edits = chance(15) ? 0 : 1 + (int)rnd(12);
    for (int e = 0; e < edits; e++) {
        size_t at = rnd((uint32_t)n + 1);
        switch (rnd(6)) {
        case 0: /* cut */
            n = at;
            break;
        case 1: { /* drop a span */
            size_t len = rnd(200);
            if (at + len <= n) {
                memmove(t + at, t + at + len, n - at - len);
                n -= len;
            }
            break;
        }
        case 2: { /* repeat a span */
            size_t len = rnd(400);
            if (at + len <= n && n + len <= G.sample_len * 2) {
                memmove(t + at + len, t + at, n - at);
                n += len;
            }
            break;
        }
        case 3: /* an ASCII byte */
            if (at < n) {
                t[at] = (char)(0x20 + rnd(0x5f));
            }
            break;
        case 4: /* a line break */
            if (at < n) {
                t[at] = '\n';
            }
            break;
        default: { /* a hostile word */
            const char *w = rand_word();
            size_t len = strlen(w);
            if (n + len <= G.sample_len * 2) {
                memmove(t + at + len, t + at, n - at);
                memcpy(t + at, w, len);
                n += len;
            }
        }
        }
    }
    pk_str(&g->pk, t, n);
    free(t);
}

static void gen_user(struct gen *g)
{
    /* Before login, only accounts nobody else needs: failed logins count against them. */
    static const char *const guesses[] = {"victim", "nobody", "", "Victim", "victim ", "v"};
    if (g->small) {
        pk_cstr(&g->pk, guesses[rnd(sizeof(guesses) / sizeof(guesses[0]))]);
        return;
    }
    if (g->clean) {
        static const char *const real[] = {"fz", "ed", "victim", "nobody"};
        pk_cstr(&g->pk, real[rnd(4)]);
        return;
    }
    /* Never "rap": the watcher must keep its role in every meeting. */
    static const char *const names[] = {
        "fz",
        "ed",
        "victim",
        "nobody",
        "FZ",
        "",
        "fz ",
        "f",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    if (chance(80)) {
        pk_cstr(&g->pk, names[rnd(sizeof(names) / sizeof(names[0]))]);
    } else {
        gen_str(g);
    }
}

static void gen_param(struct gen *g, enum pkind k)
{
    msgpack_packer *pk = &g->pk;
    if (!g->clean && chance(15) && !(g->small && k == P_USER)) {
        gen_any(g, 2);
        return;
    }
    switch (k) {
    case P_MEETING:
        if (g->clean || chance(88)) {
            pk_cstr(pk, g->meeting);
        } else {
            gen_str(g);
        }
        break;
    case P_TYPE:
        if (g->clean || chance(88)) {
            pk_cstr(pk, proto_type_info(g->t)->name);
        } else {
            gen_str(g);
        }
        break;
    case P_ID:
        gen_id(g);
        break;
    case P_FIELDS:
        gen_fields(g, g->t);
        break;
    case P_TEXTFIELD: {
        const struct proto_typeinfo *ti = proto_type_info(g->t);
        const char *name = NULL;
        for (size_t i = 0; i < ti->nfields; i++) {
            if (ti->fields[i].kind == PROTO_F_TEXT) {
                name = ti->fields[i].name;
            }
        }
        if (name && (g->clean || chance(85))) {
            pk_cstr(pk, name);
        } else if (chance(50)) {
            pk_cstr(pk, ti->fields[rnd((uint32_t)ti->nfields)].name);
        } else {
            gen_str(g);
        }
        break;
    }
    case P_SEQ:
        gen_seq(g);
        break;
    case P_OP:
        gen_op(g);
        break;
    case P_CID: {
        char cid[80];
        if (g->clean || chance(70)) {
            snprintf(cid, sizeof(cid), "cid-%u", rnd(200)); /* repeats: the cid path */
            pk_cstr(pk, cid);
        } else if (chance(50)) {
            size_t n = chance(50) ? 64 : 65;
            memset(cid, 'c', n);
            pk_str(pk, cid, n);
        } else {
            gen_str(g);
        }
        break;
    }
    case P_USER:
        gen_user(g);
        break;
    case P_PW:
    case P_TOKEN: {
        if (chance(20) && !g->small && !g->clean) {
            memset(sbuf, 'p', 1025);
            pk_str(pk, sbuf, chance(50) ? 1024 : 1025);
        } else if (chance(40)) {
            static const char b64[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            size_t n = chance(70) ? 43 : rnd(60);
            for (size_t i = 0; i < n; i++) {
                sbuf[i] = b64[rnd(64)];
            }
            pk_str(pk, sbuf, n);
        } else {
            gen_str(g);
        }
        break;
    }
    case P_ROLE: {
        static const char *const roles[] = {"viewer",     "editor",     "associate",
                                            "counsellor", "rapporteur", "operator",
                                            "tsb",        "",           "Viewer"};
        pk_cstr(pk, roles[rnd(g->clean ? 5 : sizeof(roles) / sizeof(roles[0]))]);
        break;
    }
    case P_BOOL:
        chance(50) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case P_WHERE:
        gen_where(g);
        break;
    case P_LIMIT: {
        static const int64_t lims[] = {1, 2, 10, 100, 1000, 1001, 0, -1};
        msgpack_pack_int64(pk, lims[rnd(g->clean ? 5 : sizeof(lims) / sizeof(lims[0]))]);
        break;
    }
    case P_FORMAT: {
        static const char *const fmts[] = {"text", "markdown", "html", "pdf", "", "TEXT"};
        pk_cstr(pk, fmts[rnd(g->clean ? 3 : sizeof(fmts) / sizeof(fmts[0]))]);
        break;
    }
    case P_REPORT:
        gen_report(g);
        break;
    case P_NEWID: {
        char id[80];
        if (chance(75)) {
            snprintf(id, sizeof(id), "chaos-%u", G.meetings_made++);
            pk_cstr(pk, id);
        } else {
            gen_str(g);
        }
        break;
    }
    case P_MFIELDS:
        break; /* expanded by the caller */
    }
}

/* ---- methods of section 7 ---- */

struct mparam {
    const char *key;
    enum pkind kind;
};

struct mspec {
    const char *name;
    unsigned weight;
    struct mparam p[8];
};

static const struct mspec methods[] = {
    {"ping", 1, {{NULL, 0}}},
    {"auth.login", 1, {{"user", P_USER}, {"password", P_PW}, {"remember", P_BOOL}}},
    {"auth.token", 1, {{"user", P_USER}, {"token", P_TOKEN}}},
    {"auth.passwd", 1, {{"old", P_PW}, {"new", P_PW}}},
    {"whoami", 1, {{NULL, 0}}},
    {"meeting.list", 1, {{NULL, 0}}},
    {"meeting.create", 2, {{"id", P_NEWID}, {"rapporteur", P_USER}, {"", P_MFIELDS}}},
    {"meeting.get", 2, {{"meeting", P_MEETING}, {"at", P_SEQ}}},
    {"meeting.subscribe", 2, {{"meeting", P_MEETING}, {"since", P_SEQ}}},
    {"meeting.unsubscribe", 1, {{"meeting", P_MEETING}}},
    {"agenda.get", 1, {{"meeting", P_MEETING}}},
    {"obj.create",
     5,
     {{"meeting", P_MEETING}, {"type", P_TYPE}, {"fields", P_FIELDS}, {"cid", P_CID}}},
    {"obj.update",
     6,
     {{"meeting", P_MEETING},
      {"type", P_TYPE},
      {"id", P_ID},
      {"fields", P_FIELDS},
      {"if_seq", P_SEQ},
      {"cid", P_CID}}},
    {"obj.delete",
     2,
     {{"meeting", P_MEETING}, {"type", P_TYPE}, {"id", P_ID}, {"if_seq", P_SEQ}, {"cid", P_CID}}},
    {"text.edit",
     8,
     {{"meeting", P_MEETING},
      {"type", P_TYPE},
      {"id", P_ID},
      {"field", P_TEXTFIELD},
      {"base", P_SEQ},
      {"op", P_OP},
      {"cid", P_CID}}},
    {"member.list", 1, {{"meeting", P_MEETING}}},
    {"member.set", 2, {{"meeting", P_MEETING}, {"user", P_USER}, {"role", P_ROLE}, {"cid", P_CID}}},
    {"member.remove", 1, {{"meeting", P_MEETING}, {"user", P_USER}, {"cid", P_CID}}},
    {"presence.set", 2, {{"meeting", P_MEETING}, {"where", P_WHERE}}},
    {"presence.list", 1, {{"meeting", P_MEETING}}},
    {"history.list",
     2,
     {{"meeting", P_MEETING},
      {"since", P_SEQ},
      {"until", P_SEQ},
      {"user", P_USER},
      {"type", P_TYPE},
      {"id", P_ID},
      {"limit", P_LIMIT}}},
    {"audit.verify", 1, {{"meeting", P_MEETING}}},
    {"report.export", 2, {{"meeting", P_MEETING}, {"format", P_FORMAT}, {"at", P_SEQ}}},
    {"report.import", 1, {{"meeting", P_MEETING}, {"text", P_REPORT}}},
};

#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static const struct mspec *pick_method(void)
{
    unsigned total = 0;
    for (size_t i = 0; i < NMETHODS; i++) {
        total += methods[i].weight;
    }
    unsigned r = rnd(total);
    for (size_t i = 0; i < NMETHODS; i++) {
        if (r < methods[i].weight) {
            return &methods[i];
        }
        r -= methods[i].weight;
    }
    return &methods[0];
}

/* Packs a params map for ms into b: each key mostly present, with a value of its kind or
 * not, plus unknown keys, repeated keys and keys that are not strings. */
/* Parameters a method does without. */
static bool optional(const struct mspec *ms, const char *key)
{
    static const char *const opt[] = {"cid", "if_seq", "at", "since", "remember", "format"};
    if (strcmp(ms->name, "history.list") == 0) {
        return strcmp(key, "meeting") != 0;
    }
    for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
        if (strcmp(opt[i], key) == 0) {
            return true;
        }
    }
    return false;
}

struct pentry {
    const char *key;
    enum pkind kind;
    int extra; /* 1: unknown key, 2: key not a string */
};

static void gen_params(struct gen *g, const struct mspec *ms)
{
    struct pentry e[32];
    size_t n = 0;
    uint32_t r = g->clean ? rnd(86) / 2 : rnd(100);
    g->meeting = r < 72 ? MEETING : r < 80 ? HOME : r < 86 ? OTHER : r < 90 ? "nosuch" : "";
    if (r >= 94) {
        size_t len = rand_str(g);
        static char mbuf[80];
        len = len < sizeof(mbuf) - 1 ? len : sizeof(mbuf) - 1;
        memcpy(mbuf, sbuf, len);
        mbuf[len] = '\0';
        g->meeting = mbuf;
    }
    /* Text types first: text.edit is where the ops are. */
    static const enum proto_type types[] = {PROTO_T_ITEM,     PROTO_T_ITEM,    PROTO_T_ACTION,
                                            PROTO_T_DECISION, PROTO_T_MEETING, PROTO_T_SESSION,
                                            PROTO_T_DOC,      PROTO_T_INTERIM, PROTO_T_PERSON};
    g->t = types[rnd(sizeof(types) / sizeof(types[0]))];
    if (g->clean && strcmp(ms->name, "text.edit") == 0) {
        g->t = types[rnd(5)]; /* the types with a text field */
    } else if (g->clean && strncmp(ms->name, "obj.", 4) == 0 && g->t == PROTO_T_MEETING &&
               strcmp(ms->name, "obj.update") != 0) {
        g->t = PROTO_T_ITEM;
    }
    for (size_t i = 0; i < 8 && ms->p[i].key; i++) {
        if (ms->p[i].kind == P_MFIELDS) {
            const struct proto_typeinfo *ti = proto_type_info(PROTO_T_MEETING);
            for (uint32_t k = rnd(5); k > 0 && n < 24; k--) {
                e[n].key = ti->fields[rnd((uint32_t)ti->nfields)].name;
                e[n].kind = P_MFIELDS;
                e[n++].extra = 0;
            }
        } else if (g->clean ? !optional(ms, ms->p[i].key) || chance(40) : chance(90)) {
            e[n].key = ms->p[i].key;
            e[n].kind = ms->p[i].kind;
            e[n++].extra = 0;
        }
    }
    if (n > 0 && !g->clean && chance(4)) { /* a repeated key: the first wins */
        e[n] = e[rnd((uint32_t)n)];
        n++;
    }
    for (uint32_t k = chance(10) ? 1 + rnd(3) : 0; k > 0; k--) {
        e[n].key = NULL;
        e[n].kind = P_MEETING;
        e[n++].extra = g->clean || chance(80) ? 1 : 2;
    }
    for (size_t i = n; i > 1; i--) { /* any order */
        size_t j = rnd((uint32_t)i);
        struct pentry tmp = e[i - 1];
        e[i - 1] = e[j];
        e[j] = tmp;
    }
    msgpack_pack_map(&g->pk, n);
    for (size_t i = 0; i < n; i++) {
        if (e[i].extra == 1) {
            gen_str(g);
            gen_any(g, 2);
        } else if (e[i].extra == 2) {
            gen_any(g, 3);
            gen_any(g, 2);
        } else if (e[i].kind == P_MFIELDS) {
            pk_cstr(&g->pk, e[i].key);
            const struct proto_typeinfo *ti = proto_type_info(PROTO_T_MEETING);
            gen_field_value(
                g, &ti->fields[proto_field_find(PROTO_T_MEETING, e[i].key, strlen(e[i].key))]);
        } else {
            pk_cstr(&g->pk, e[i].key);
            gen_param(g, e[i].kind);
        }
    }
}

/* Parameters over the limits of proto_msgpack.h: too deep, or too many elements. */
static void gen_over_limits(struct gen *g)
{
    msgpack_pack_map(&g->pk, 1);
    pk_cstr(&g->pk, "meeting");
    if (g->small || chance(50)) {
        uint32_t d = 16 + rnd(30);
        for (uint32_t i = 0; i < d; i++) {
            msgpack_pack_array(&g->pk, 1);
        }
        msgpack_pack_nil(&g->pk);
    } else {
        uint32_t n = 4097 + rnd(2000);
        msgpack_pack_array(&g->pk, n);
        for (uint32_t i = 0; i < n; i++) {
            msgpack_pack_nil(&g->pk);
        }
    }
}

/* ---- the fuzzing connection ---- */

enum exp_kind {
    EXP_ANY,     /* any known answer (logged out: unauthenticated for non-public methods) */
    EXP_BAD,     /* a malformed message: bad_request */
    EXP_UNKNOWN, /* no such method: not_found (logged out: unauthenticated) */
    EXP_PING,    /* a result with "time" */
    EXP_NOLOGIN, /* auth.login/auth.token with made-up credentials: never a success */
    EXP_PASSWD,  /* auth.passwd with a made-up old password: never a success */
    EXP_LOGOUT,  /* auth.logout */
    EXP_RELOGIN, /* fz's own login after a logout: must succeed */
};

struct expect {
    uint32_t msgid;
    uint8_t kind;
    int8_t type;     /* obj.create: the type, so that the new id joins the pool */
    bool m1;         /* names m1: its seq is m1's */
    bool is_public;  /* ping, auth.login, auth.token */
    int8_t mi;       /* index in methods[], or -1 */
    uint32_t idx;    /* request number */
    char method[48]; /* for messages (sanitized) */
    uint8_t *params; /* a copy of the packed params (or the whole raw message) */
    size_t params_len;
};

struct fz {
    struct cli_conn *c;
    const char *name; /* for messages */
    bool prelogin;    /* the pre-login fuzzing: nothing may succeed but ping */
    struct expect q[QCAP];
    size_t qh, qn;
    bool logged_in; /* as of the last response read */
    uint32_t raw_msgid;
    struct proto_buf raw; /* raw messages waiting to go as one frame */
    unsigned sent, raw_sent, frames;
    unsigned answered, results, notes;
    unsigned by_code[16];
    unsigned m_sent[NMETHODS], m_ok[NMETHODS];
    size_t max_inflight;
};

static void describe(const struct expect *e, struct sb *b)
{
    sb_add(b, "request #%u msgid %u %s ", e->idx, (unsigned)e->msgid, e->method);
    render_bytes(b, e->params, e->params_len);
}

static void fz_fail(struct fz *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fz_fail(struct fz *f, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bool alive = server_alive();
    fprintf(stderr, "chaos %s: %s\n", f->name, msg);
    fprintf(stderr, "chaos %s: seed 0x%llx, %u requests sent, %zu in flight, server %s\n", f->name,
            (unsigned long long)G.seed, f->sent, f->qn, alive ? "running" : "gone");
    for (size_t i = 0; i < f->qn && i < 12; i++) {
        struct sb b = {0};
        describe(&f->q[(f->qh + i) % QCAP], &b);
        fprintf(stderr, "  in flight: %s\n", b.buf);
    }
    print_log_tail(60);
    fail_msg("%s: %s (seed 0x%llx: CONFER_CHAOS_SEED replays it)", f->name, msg,
             (unsigned long long)G.seed);
}

static void fz_push(struct fz *f, const struct expect *e)
{
    if (f->qn == QCAP) {
        fz_fail(f, "too many requests in flight");
    }
    f->q[(f->qh + f->qn) % QCAP] = *e;
    f->qn++;
    f->sent++;
    if (f->qn > f->max_inflight) {
        f->max_inflight = f->qn;
    }
}

static void fz_flush_raw(struct fz *f)
{
    if (f->raw.len == 0) {
        return;
    }
    int rc = cli_conn_send_plain(f->c, f->raw.data, f->raw.len);
    f->raw.len = 0;
    f->frames++;
    if (rc != 0) {
        fz_fail(f, "sending a frame failed: %s", cli_conn_error(f->c));
    }
}

static void fz_flush(struct fz *f)
{
    fz_flush_raw(f);
    int rc = cli_conn_flush(f->c);
    if (rc != 0) {
        fz_fail(f, "sending failed: %s", cli_conn_error(f->c));
    }
}

static void set_method(struct expect *e, const char *m, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < sizeof(e->method); i++) {
        unsigned char c = (unsigned char)m[i];
        if (c >= 0x20 && c < 0x7f) {
            e->method[k++] = (char)c;
        } else {
            k += (size_t)snprintf(e->method + k, sizeof(e->method) - k, "\\x%02x", c);
        }
    }
    e->method[k] = '\0';
}

/* Sends through the client library (corked: many requests per frame). */
static void fz_send_lib(struct fz *f, const char *method, const struct proto_buf *params,
                        struct expect *e)
{
    fz_flush_raw(f);
    uint32_t id = 0;
    int rc = cli_conn_send(f->c, method, params->data, params->len, &id);
    if (rc != 0) {
        fz_fail(f, "sending %s failed: %s", method, cli_conn_error(f->c));
    }
    e->msgid = id;
    e->params = malloc(params->len ? params->len : 1);
    memcpy(e->params, params->data, params->len);
    e->params_len = params->len;
    fz_push(f, e);
}

/* Sends [0, msgid, method, params] packed by hand: methods and msgids the library refuses,
 * and params that are not one acceptable map. alone: in a frame of its own (a fault in it
 * drops the rest of its frame). */
static void fz_send_raw(struct fz *f, const char *method, size_t mlen,
                        const struct proto_buf *params, uint32_t msgid, bool odd_msgid,
                        struct expect *e, bool alone)
{
    struct proto_buf m = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m, proto_buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    if (odd_msgid) {
        uint8_t raw[9] = {0xcf};
        for (int i = 0; i < 8; i++) {
            raw[1 + i] = (uint8_t)((uint64_t)msgid >> (8 * (7 - i)));
        }
        proto_buf_append(&m, raw, 9);
    } else {
        msgpack_pack_uint32(&pk, msgid);
    }
    pk_str(&pk, method, mlen);
    proto_buf_append(&m, params->data, params->len);
    if (alone || f->raw.len + m.len > RAW_BATCH_MAX || (f->prelogin && f->raw.len + m.len > 4000)) {
        fz_flush_raw(f);
    }
    proto_buf_append(&f->raw, m.data, m.len);
    e->params = malloc(m.len);
    memcpy(e->params, m.data, m.len);
    e->params_len = m.len;
    proto_buf_free(&m, 0);
    f->raw_sent++;
    fz_push(f, e);
    if (alone) {
        fz_flush_raw(f);
    }
}

static bool code_known(const char *code)
{
    for (const char *const *k = known_codes; *k; k++) {
        if (strcmp(*k, code) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks one message against the oldest request in flight. */
static void fz_check(struct fz *f, struct cli_msg *m)
{
    if (m->kind == PROTO_RPC_NOTIFY) {
        f->notes++;
        check_note(m, f->name, NULL);
        return;
    }
    if (f->qn == 0) {
        fz_fail(f, "a response (msgid %u) with nothing in flight", (unsigned)m->msgid);
    }
    struct expect *e = &f->q[f->qh];
    if (m->msgid != e->msgid) {
        fz_fail(f, "response msgid %u, expected %u (responses must come once each, in order)",
                (unsigned)m->msgid, (unsigned)e->msgid);
    }
    const char *code = m->error ? m->code : NULL;
    if (code && !code_known(code)) {
        fz_fail(f, "unknown error code \"%s\" for %s", code, e->method);
    }
    if (code && (strcmp(code, "internal") == 0 || strcmp(code, "unavailable") == 0)) {
        fz_fail(f, "%s answered %s: %s", e->method, code, m->message);
    }
    bool unauth = code && strcmp(code, "unauthenticated") == 0;
    bool bad = code && strcmp(code, "bad_request") == 0;
    bool logged_out = !f->logged_in;
    switch (e->kind) {
    case EXP_BAD:
        if (!bad && !(logged_out && unauth)) {
            fz_fail(f, "a malformed request answered %s, not bad_request", code ? code : "ok");
        }
        break;
    case EXP_UNKNOWN:
        if (logged_out ? !unauth : !(code && strcmp(code, "not_found") == 0)) {
            fz_fail(f, "an unknown method answered %s, not %s", code ? code : "ok",
                    logged_out ? "unauthenticated" : "not_found");
        }
        break;
    case EXP_PING:
        if (code || int_of(proto_mp_map_get(m->result, "time")) <= 0) {
            fz_fail(f, "ping answered %s", code ? code : "without a time");
        }
        break;
    case EXP_NOLOGIN:
        if (!code) {
            fz_fail(f, "%s with made-up credentials succeeded", e->method);
        }
        if (!logged_out && !bad) {
            fz_fail(f, "%s while logged in answered %s, not bad_request", e->method, code);
        }
        break;
    case EXP_PASSWD:
        if (!code) {
            fz_fail(f, "auth.passwd with a made-up old password succeeded");
        }
        break;
    case EXP_LOGOUT:
        if (!code) {
            f->logged_in = false;
        }
        break;
    case EXP_RELOGIN:
        if (code && !(f->logged_in && bad)) {
            fz_fail(f, "logging in again after a logout failed: %s: %s", code, m->message);
        }
        f->logged_in = true;
        break;
    default:
        if (logged_out && !e->is_public && !unauth) {
            fz_fail(f, "%s while logged out answered %s, not unauthenticated", e->method,
                    code ? code : "ok");
        }
        if (!logged_out && unauth) {
            fz_fail(f, "%s while logged in answered unauthenticated", e->method);
        }
    }
    if (e->mi >= 0) {
        f->m_sent[e->mi]++;
        f->m_ok[e->mi] += code == NULL;
    }
    if (code == NULL) {
        f->results++;
        int64_t id = int_of(proto_mp_map_get(m->result, "id"));
        int64_t seq = int_of(proto_mp_map_get(m->result, "seq"));
        if (e->type > 0 && id > 0 && e->m1) {
            pool_add(&G.ids[e->type], id);
        }
        if (e->m1 && seq > G.seq) {
            G.seq = seq;
        }
    } else {
        for (int i = 0; known_codes[i]; i++) {
            if (strcmp(known_codes[i], code) == 0) {
                f->by_code[i]++;
            }
        }
    }
    free(e->params);
    e->params = NULL;
    f->qh = (f->qh + 1) % QCAP;
    f->qn--;
    f->answered++;
}

/* Reads responses until at most target requests are in flight. */
static void fz_read(struct fz *f, size_t target)
{
    int64_t last = mono_ms();
    while (f->qn > target) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(f->c, STALL_MS, &m);
        if (rc == PROTO_ETIMEDOUT) {
            fz_fail(f, "no answer within %d ms: the server stalls", STALL_MS);
        }
        if (rc != 0) {
            fz_fail(f, "the connection was lost: %s", cli_conn_error(f->c));
        }
        if (m->kind == PROTO_RPC_RESPONSE) {
            last = mono_ms();
        } else if (mono_ms() - last > STALL_MS) {
            fz_fail(f, "only notifications for %d ms, no answer", STALL_MS);
        }
        fz_check(f, m);
        cli_msg_free(m);
    }
}

static void fz_send_login(struct fz *f, uint32_t idx)
{
    struct proto_buf p = {0};
    struct expect e = {.kind = EXP_RELOGIN, .idx = idx, .is_public = true, .mi = -1};
    assert_int_equal(cli_packf(&p, "{s:s, s:s}", "user", "fz", "password", "fz-password"), 0);
    set_method(&e, "auth.login", 10);
    fz_send_lib(f, "auth.login", &p, &e);
    proto_buf_free(&p, 1);
}

static const char *const unknown_methods[] = {
    "nosuch",     "PING",          "ping ", " ping",         "auth",
    "auth.",      "obj.create.x",  "obj",   "meeting.get\n", "\xf0\x9f\x98\x80",
    "text.edit2", "audit.verify ",
};

/* Makes and sends one request. */
static void fuzz_one(struct fz *f, uint32_t idx)
{
    struct proto_buf params = {0};
    struct gen g = {.b = &params, .budget = 200 * 1024, .small = f->prelogin, .clean = chance(45)};
    msgpack_packer_init(&g.pk, &params, proto_buf_msgpack_write);
    struct expect e = {.idx = idx, .type = -1, .mi = -1};
    char mname[400];
    size_t mlen = 0;
    bool raw = chance(8), lib_ok = true;
    uint32_t r = rnd(1000);
    if (!f->prelogin && f->logged_in && r < 3) {
        /* Log out, and back in at once: what follows must still be logged in. */
        memcpy(mname, "auth.logout", mlen = 11);
        e.kind = EXP_LOGOUT;
        if (chance(50)) {
            gen_params(&g, &methods[0]);
        } else {
            msgpack_pack_map(&g.pk, 0);
        }
    } else if (r < 80) {
        e.kind = EXP_UNKNOWN;
        uint32_t u = rnd(10);
        if (u < 5) {
            const char *s =
                unknown_methods[rnd(sizeof(unknown_methods) / sizeof(unknown_methods[0]))];
            memcpy(mname, s, mlen = strlen(s));
        } else if (u < 6) {
            mlen = 0; /* "" is a string: an unknown method */
        } else if (u < 7) {
            memset(mname, 'm', mlen = 300);
        } else {
            mlen = rand_str(&g);
            mlen = mlen < sizeof(mname) - 1 ? mlen : sizeof(mname) - 1;
            memcpy(mname, sbuf, mlen);
            g.budget = 200 * 1024;
            /* A random name may be a real method, or not valid UTF-8 (malformed). */
            if (!proto_utf8_valid(mname, mlen)) {
                e.kind = EXP_BAD;
            } else {
                for (size_t i = 0; i < NMETHODS; i++) {
                    if (strlen(methods[i].name) == mlen &&
                        memcmp(methods[i].name, mname, mlen) == 0) {
                        memcpy(mname, "nosuch", mlen = 6);
                    }
                }
                if (mlen == 11 && memcmp(mname, "auth.logout", 11) == 0) {
                    memcpy(mname, "nosuch", mlen = 6);
                }
            }
        }
        gen_params(&g, &methods[rnd(NMETHODS)]);
    } else {
        const struct mspec *ms = pick_method();
        if (f->prelogin && chance(50)) { /* before login, the logins are the point */
            ms = &methods[1 + rnd(2)];
        }
        if (strcmp(ms->name, "auth.passwd") == 0 && (G.passwd_left <= 0 || f->prelogin)) {
            ms = &methods[4]; /* whoami */
        }
        if (strcmp(ms->name, "auth.passwd") == 0) {
            G.passwd_left--;
            e.kind = EXP_PASSWD;
        } else if (strcmp(ms->name, "ping") == 0) {
            e.kind = EXP_PING;
        } else if (strncmp(ms->name, "auth.", 5) == 0) {
            e.kind = EXP_NOLOGIN;
        }
        memcpy(mname, ms->name, mlen = strlen(ms->name));
        e.mi = (int8_t)(ms - methods);
        gen_params(&g, ms);
        e.m1 = strcmp(g.meeting, MEETING) == 0;
        if (strcmp(ms->name, "obj.create") == 0) {
            e.type = (int8_t)g.t;
        }
    }
    set_method(&e, mname, mlen);
    e.is_public = (mlen == 4 && memcmp(mname, "ping", 4) == 0) ||
                  (mlen == 10 && memcmp(mname, "auth.login", 10) == 0) ||
                  (mlen == 10 && memcmp(mname, "auth.token", 10) == 0);
    if (e.kind == EXP_PING && chance(20)) {
        params.len = 0; /* ping's {} */
        msgpack_pack_map(&g.pk, 0);
    }
    /* Names the library will not send; params that are not one map within the limits. */
    if (mlen == 0 || memchr(mname, '\0', mlen) || !proto_utf8_valid(mname, mlen)) {
        lib_ok = false;
        if (mlen && (memchr(mname, '\0', mlen) || !proto_utf8_valid(mname, mlen))) {
            e.kind = EXP_BAD;
        }
    }
    if (f->prelogin && params.len + mlen > 3500) {
        params.len = 0; /* a frame before login holds at most 4 KiB */
        msgpack_pack_map(&g.pk, 0);
    }
    bool alone = false;
    uint32_t msgid = f->raw_msgid++;
    if (f->raw_msgid == 0) {
        f->raw_msgid = 0x40000000;
    }
    if (e.kind != EXP_LOGOUT && chance(2)) {
        params.len = 0;
        gen_over_limits(&g);
        e.kind = EXP_BAD;
        msgid = 0; /* a fault: the rest of its frame gets one bad_request with msgid 0 */
        raw = alone = true;
    } else if (e.kind != EXP_LOGOUT && chance(2)) {
        params.len = 0;
        uint32_t k = rnd(4);
        if (k == 0) {
            msgpack_pack_array(&g.pk, 0);
        } else if (k == 1) {
            msgpack_pack_nil(&g.pk);
        } else {
            gen_str(&g);
        }
        e.kind = EXP_BAD;
        raw = true;
    }
    if (raw || !lib_ok) {
        bool odd = chance(10);
        if (!alone && chance(3)) {
            msgid = chance(50) ? 0 : UINT32_MAX;
        } else if (!alone && chance(5)) {
            msgid = rnd(128); /* a fixint: nothing before the method has bytes of its own */
        }
        e.msgid = msgid;
        fz_send_raw(f, mname, mlen, &params, msgid, odd, &e, alone);
    } else {
        mname[mlen] = '\0';
        fz_send_lib(f, mname, &params, &e);
    }
    proto_buf_free(&params, 0);
    if (e.kind == EXP_LOGOUT) {
        fz_send_login(f, idx);
    }
}

static void fz_print_stats(const struct fz *f, int64_t ms)
{
    printf("chaos %s: %u requests (%u packed by hand) in %lld ms, %u answered: %u results", f->name,
           f->sent, f->raw_sent, (long long)ms, f->answered, f->results);
    for (int i = 0; known_codes[i]; i++) {
        if (f->by_code[i]) {
            printf(", %u %s", f->by_code[i], known_codes[i]);
        }
    }
    printf("; %u notifications; at most %zu in flight\n", f->notes, f->max_inflight);
    if (getenv("CONFER_CHAOS_VERBOSE")) {
        for (size_t i = 0; i < NMETHODS; i++) {
            printf("  %-20s %5u sent, %5u ok\n", methods[i].name, f->m_sent[i], f->m_ok[i]);
        }
    }
}

static void fz_close(struct fz *f)
{
    while (f->qn > 0) {
        free(f->q[f->qh].params);
        f->qh = (f->qh + 1) % QCAP;
        f->qn--;
    }
    proto_buf_free(&f->raw, 0);
    cli_conn_close(f->c);
    f->c = NULL;
}

/* ---- setup ---- */

static void kill_at_exit(void)
{
    if (G.s.pid > 0) {
        ts_kill(&G.s);
    }
}

/* The group's setup, not a test: when it fails, cmocka fails the whole group instead of
 * running the tests against a server that is not there. */
static int group_setup(void **state)
{
    (void)state;
    G.seed = env_u64("CONFER_CHAOS_SEED", 0xc0ffee2023d00dULL);
    printf("chaos: seed 0x%llx (set CONFER_CHAOS_SEED to replay another)\n",
           (unsigned long long)G.seed);
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_at_exit);
    G.sample = tu_read_data(SAMPLE, &G.sample_len);
    assert_non_null(G.sample);
    assert_int_equal(ts_start_args(&G.s, users, HOME, login_args), 0);
    G.up = true;
    struct cli_conn *fz = ts_login(&G.s, "fz");
    assert_non_null(fz);
    cli_conn_set_timeout(fz, STALL_MS);
    cli_msg_free(call_ok(fz, "meeting.create", "{s:s, s:s}", "id", MEETING, "rapporteur", "fz"));
    cli_msg_free(call_ok(fz, "report.import", "{s:s, s:S}", "meeting", MEETING, "text", G.sample,
                         G.sample_len));
    cli_msg_free(call_ok(fz, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "rap",
                         "role", "rapporteur"));
    cli_msg_free(call_ok(fz, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ed",
                         "role", "editor"));
    cli_msg_free(call_ok(fz, "member.set", "{s:s, s:s, s:s}", "meeting", HOME, "user", "rap",
                         "role", "rapporteur"));
    cli_msg_free(call_ok(fz, "meeting.create", "{s:s, s:s}", "id", OTHER, "rapporteur", "rap"));
    cli_conn_close(fz);
    G.watch = ts_login(&G.s, "rap");
    assert_non_null(G.watch);
    cli_conn_set_timeout(G.watch, STALL_MS);
    cli_msg_free(call_ok(G.watch, "report.import", "{s:s, s:S}", "meeting", OTHER, "text", G.sample,
                         G.sample_len));
    struct cli_msg *m = call_ok(G.watch, "meeting.get", "{s:s}", "meeting", OTHER);
    collect_ids(m->result, NULL, &G.other);
    cli_msg_free(m);
    m = call_ok(G.watch, "meeting.subscribe", "{s:s}", "meeting", MEETING);
    G.seq = G.watch_seq = int_of(proto_mp_map_get(m->result, "seq"));
    collect_ids(proto_mp_map_get(m->result, "snapshot"), G.ids, NULL);
    cli_msg_free(m);
    size_t n = 0;
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        n += G.ids[t].n;
    }
    printf("chaos: %s holds %zu objects at seq %lld; %s %zu\n", MEETING, n, (long long)G.seq, OTHER,
           G.other.n);
    assert_true(n > 20 && G.other.n > 20);
    return 0;
}

/* ---- 1a. the parameter sweep ---- */

/* Values every typed parameter must survive. The empty strings come in each encoding:
 * msgpack-c hands out a NULL pointer for some of them. */
static const char *const hostile_names[] = {
    "nil",    "\"\" (fixstr)", "\"\" (str8)", "\"\" (str32)", "-1",     "2^63",      "3.0", "[]",
    "{}",     "bin(0)",        "ext",         "true",         "64 KiB", "not UTF-8", "NUL", "-2^63",
    "2^64-1", "[nil]",         "{\"\": 1}"};
#define NHOSTILE (sizeof(hostile_names) / sizeof(hostile_names[0]))

static void pack_hostile(struct gen *g, size_t h)
{
    msgpack_packer *pk = &g->pk;
    static const uint8_t e0[] = {0xa0}, e8[] = {0xd9, 0x00}, e32[] = {0xdb, 0, 0, 0, 0};
    switch (h) {
    case 0:
        msgpack_pack_nil(pk);
        break;
    case 1:
        proto_buf_append(g->b, e0, sizeof(e0));
        break;
    case 2:
        proto_buf_append(g->b, e8, sizeof(e8));
        break;
    case 3:
        proto_buf_append(g->b, e32, sizeof(e32));
        break;
    case 4:
        msgpack_pack_int64(pk, -1);
        break;
    case 5:
        msgpack_pack_uint64(pk, (uint64_t)INT64_MAX + 1);
        break;
    case 6:
        msgpack_pack_double(pk, 3.0);
        break;
    case 7:
        msgpack_pack_array(pk, 0);
        break;
    case 8:
        msgpack_pack_map(pk, 0);
        break;
    case 9:
        msgpack_pack_bin(pk, 0);
        break;
    case 10:
        msgpack_pack_ext(pk, 1, 5);
        msgpack_pack_ext_body(pk, "x", 1);
        break;
    case 11:
        msgpack_pack_true(pk);
        break;
    case 12:
        memset(sbuf, 'x', 65536);
        pk_str(pk, sbuf, 65536);
        break;
    case 13:
        pk_str(pk, "\xff", 1);
        break;
    case 14:
        pk_str(pk, "a\0b", 3);
        break;
    case 15:
        msgpack_pack_int64(pk, INT64_MIN);
        break;
    case 16:
        msgpack_pack_uint64(pk, UINT64_MAX);
        break;
    case 17:
        msgpack_pack_array(pk, 1);
        msgpack_pack_nil(pk);
        break;
    default:
        msgpack_pack_map(pk, 1);
        proto_buf_append(g->b, e0, sizeof(e0));
        msgpack_pack_uint8(pk, 1);
    }
}

/* Sends one sweep request through the fuzzing machinery (checked in order like the rest). */
static void sweep_send(struct fz *f, const char *method, const struct proto_buf *params,
                       uint32_t idx)
{
    struct expect e = {.idx = idx, .type = -1, .mi = -1, .kind = EXP_ANY};
    set_method(&e, method, strlen(method));
    for (size_t i = 0; i < NMETHODS; i++) {
        if (strcmp(methods[i].name, method) == 0) {
            e.mi = (int8_t)i;
        }
    }
    if (strcmp(method, "ping") == 0) {
        e.kind = EXP_PING;
    } else if (strcmp(method, "auth.login") == 0 || strcmp(method, "auth.token") == 0) {
        e.kind = EXP_NOLOGIN;
        e.is_public = true;
    }
    e.msgid = f->raw_msgid++;
    fz_send_raw(f, method, strlen(method), params, e.msgid, false, &e, false);
}

/* Every parameter of every method, and every field of every type, set to each hostile value
 * while the others are valid. */
static void sweep_run(struct fz *f)
{
    uint32_t idx = 0;
    for (size_t mi = 0; mi < NMETHODS; mi++) {
        const struct mspec *ms = &methods[mi];
        if (strcmp(ms->name, "auth.passwd") == 0) {
            continue; /* a wrong old password counts against fz's logins */
        }
        const char *keys[32];
        enum pkind kinds[32];
        size_t nk = 0;
        for (size_t i = 0; i < 8 && ms->p[i].key; i++) {
            if (ms->p[i].kind != P_MFIELDS) {
                keys[nk] = ms->p[i].key;
                kinds[nk++] = ms->p[i].kind;
                continue;
            }
            const struct proto_typeinfo *ti = proto_type_info(PROTO_T_MEETING);
            for (size_t k = 0; k < ti->nfields; k++) {
                keys[nk] = ti->fields[k].name;
                kinds[nk++] = P_MFIELDS;
            }
        }
        cli_conn_cork(f->c);
        for (size_t hot = 0; hot < nk; hot++) {
            for (size_t h = 0; h < NHOSTILE; h++) {
                struct proto_buf params = {0};
                struct gen g = {.b = &params, .budget = 0, .clean = true, .sweep = true};
                msgpack_packer_init(&g.pk, &params, proto_buf_msgpack_write);
                g.meeting = MEETING;
                g.t = strcmp(ms->name, "text.edit") == 0 ? PROTO_T_ITEM
                                                         : (enum proto_type)(1 + h % 7);
                msgpack_pack_map(&g.pk, nk);
                for (size_t k = 0; k < nk; k++) {
                    pk_cstr(&g.pk, keys[k]);
                    if (k == hot) {
                        pack_hostile(&g, h);
                    } else if (kinds[k] == P_MFIELDS) {
                        gen_field_value(&g, &proto_type_info(PROTO_T_MEETING)
                                                 ->fields[proto_field_find(PROTO_T_MEETING, keys[k],
                                                                           strlen(keys[k]))]);
                    } else {
                        gen_param(&g, kinds[k]);
                    }
                }
                sweep_send(f, ms->name, &params, idx++);
                proto_buf_free(&params, 0);
            }
        }
        fz_flush(f);
        fz_read(f, 0);
    }
    /* Fields, for create and update; then op components and presence places. */
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        const struct proto_typeinfo *ti = proto_type_info((enum proto_type)t);
        cli_conn_cork(f->c);
        for (size_t k = 0; k <= ti->nfields; k++) {
            for (size_t h = 0; h < NHOSTILE; h++) {
                for (int upd = 0; upd < 2; upd++) {
                    struct proto_buf params = {0};
                    struct gen g = {.b = &params, .clean = true, .sweep = true};
                    msgpack_packer_init(&g.pk, &params, proto_buf_msgpack_write);
                    g.meeting = MEETING;
                    g.t = (enum proto_type)t;
                    msgpack_pack_map(&g.pk, upd ? 5 : 3);
                    pk_cstr(&g.pk, "meeting");
                    pk_cstr(&g.pk, MEETING);
                    pk_cstr(&g.pk, "type");
                    pk_cstr(&g.pk, ti->name);
                    pk_cstr(&g.pk, "fields");
                    msgpack_pack_map(&g.pk, 1);
                    if (k == ti->nfields) { /* the key itself */
                        pack_hostile(&g, h);
                        msgpack_pack_uint8(&g.pk, 1);
                    } else {
                        pk_cstr(&g.pk, ti->fields[k].name);
                        pack_hostile(&g, h);
                    }
                    if (upd) {
                        pk_cstr(&g.pk, "id");
                        gen_id(&g);
                        pk_cstr(&g.pk, "if_seq");
                        msgpack_pack_int64(&g.pk, G.seq);
                    }
                    sweep_send(f, upd ? "obj.update" : "obj.create", &params, idx++);
                    proto_buf_free(&params, 0);
                }
            }
        }
        fz_flush(f);
        fz_read(f, 0);
    }
    cli_conn_cork(f->c);
    for (size_t h = 0; h < NHOSTILE; h++) {
        for (int shape = 0; shape < 6; shape++) {
            struct proto_buf params = {0};
            struct gen g = {.b = &params, .clean = true, .sweep = true};
            msgpack_packer_init(&g.pk, &params, proto_buf_msgpack_write);
            g.meeting = MEETING;
            g.t = PROTO_T_ITEM;
            if (shape < 3) {
                msgpack_pack_map(&g.pk, 6);
                pk_cstr(&g.pk, "meeting");
                pk_cstr(&g.pk, MEETING);
                pk_cstr(&g.pk, "type");
                pk_cstr(&g.pk, "item");
                pk_cstr(&g.pk, "id");
                gen_id(&g);
                pk_cstr(&g.pk, "field");
                pk_cstr(&g.pk, "body");
                pk_cstr(&g.pk, "base");
                msgpack_pack_int64(&g.pk, G.seq);
                pk_cstr(&g.pk, "op");
                msgpack_pack_array(&g.pk, shape == 0 ? 1 : 2);
                if (shape == 1) {
                    msgpack_pack_uint8(&g.pk, 1);
                }
                if (shape == 2) {
                    pk_cstr(&g.pk, "x");
                    msgpack_pack_map(&g.pk, 1);
                    pk_cstr(&g.pk, "d");
                }
                pack_hostile(&g, h);
                sweep_send(f, "text.edit", &params, idx++);
            } else {
                static const char *const wk[] = {"type", "id", "field"};
                msgpack_pack_map(&g.pk, 2);
                pk_cstr(&g.pk, "meeting");
                pk_cstr(&g.pk, MEETING);
                pk_cstr(&g.pk, "where");
                msgpack_pack_map(&g.pk, 3);
                for (int k = 0; k < 3; k++) {
                    pk_cstr(&g.pk, wk[k]);
                    if (k == shape - 3) {
                        pack_hostile(&g, h);
                    } else if (k == 0) {
                        pk_cstr(&g.pk, "item");
                    } else if (k == 1) {
                        gen_id(&g);
                    } else {
                        pk_cstr(&g.pk, "body");
                    }
                }
                sweep_send(f, "presence.set", &params, idx++);
            }
            proto_buf_free(&params, 0);
        }
    }
    fz_flush(f);
    fz_read(f, 0);
}

/* Edges found by earlier runs, replayed every time. */
static void edge_cases(struct cli_conn *c)
{
    /* An action ref whose number has no successor, then an action to be numbered after it. */
    cli_msg_free(call_ok(c, "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", MEETING, "type",
                         "meeting", "id", MEETING, "fields", "action_prefix", "RG-IEM"));
    struct cli_msg *m = call_ok(c, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", MEETING, "type",
                                "action", "fields", "ref", "RG-IEM-99999999999999999999");
    int64_t id = int_of(proto_mp_map_get(m->result, "id"));
    cli_msg_free(m);
    m = call_any(c, "obj.create", "{s:s, s:s, s:{}}", "meeting", MEETING, "type", "action",
                 "fields");
    if (m->error == NULL || strcmp(m->code, "bad_request") != 0) {
        fail_msg("an action after RG-IEM-99999999999999999999: %s", m->error ? m->code : "ok");
    }
    cli_msg_free(m);
    cli_msg_free(call_ok(c, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "action",
                         "id", id));
}

static void test_param_sweep(void **state)
{
    (void)state;
    rng_seed(G.seed ^ 0x5555);
    static struct fz f;
    memset(&f, 0, sizeof(f));
    f.name = "sweep";
    f.raw_msgid = 0x20000000;
    f.c = open_from("127.0.0.2", "fz");
    f.logged_in = true;
    int64_t start = mono_ms();
    sweep_run(&f);
    fz_print_stats(&f, mono_ms() - start);
    watch_repair();
    edge_cases(f.c);
    cli_msg_free(call_ok(f.c, "ping", NULL));
    fz_close(&f);
    watch_ping("after the parameter sweep");
    watch_repair();
}

/* ---- 1. method fuzzing ---- */

/* Fuzzes over nf connections at once: bursts to one at a time, answers read from all. */
static void fuzz_run(struct fz *fs, int nf, unsigned total, int64_t ms, unsigned watch_every)
{
    int64_t start = mono_ms(), end = start + ms;
    uint32_t idx = 0, last_watch = 0;
    while (idx < total && mono_ms() < end) {
        struct fz *f = &fs[rnd((uint32_t)nf)];
        unsigned burst = 1 + rnd(chance(20) ? 64 : 12);
        cli_conn_cork(f->c);
        for (unsigned b = 0; b < burst && idx < total; b++) {
            fuzz_one(f, idx++);
        }
        fz_flush(f);
        for (int k = 0; k < nf; k++) {
            fz_read(&fs[k], chance(30) ? 0 : rnd(MAX_INFLIGHT));
        }
        if (watch_every && idx - last_watch >= watch_every) {
            last_watch = idx;
            watch_ping("during the fuzzing");
            watch_repair();
        }
        for (int k = 0; k < nf; k++) {
            if (!fs[k].logged_in && !fs[k].prelogin && fs[k].qn == 0) {
                fz_fail(&fs[k], "fz is logged out");
            }
        }
    }
    for (int k = 0; k < nf; k++) {
        struct fz *f = &fs[k];
        fz_read(f, 0);
        /* Nothing more may come: the next response is the ping's. */
        struct cli_msg *m = NULL;
        if (cli_conn_callf(f->c, &m, "ping", NULL) != 0 || m->error != NULL) {
            fz_fail(f, "ping after the fuzzing: %s", m ? m->code : cli_conn_error(f->c));
        }
        cli_msg_free(m);
        for (int i = 0; i < 100000; i++) {
            if (cli_conn_next(f->c, 0, &m) != 0) {
                break;
            }
            if (m->kind == PROTO_RPC_RESPONSE) {
                fz_fail(f, "an extra response (msgid %u)", (unsigned)m->msgid);
            }
            check_note(m, f->name, NULL);
            cli_msg_free(m);
        }
        fz_print_stats(f, mono_ms() - start);
    }
}

static void test_fuzz_methods(void **state)
{
    (void)state;
    unsigned total = (unsigned)env_u64("CONFER_CHAOS_REQUESTS", FUZZ_REQUESTS);
    int64_t secs = (int64_t)env_u64("CONFER_CHAOS_SECONDS", FUZZ_SECONDS);
    rng_seed(G.seed ^ 0x1111);
    printf("chaos: method fuzzing, seed 0x%llx, at most %u requests or %lld s\n",
           (unsigned long long)(G.seed ^ 0x1111), total, (long long)secs);
    /* Two connections of fz: each one's changes are the other's events, its edits the
     * other's concurrent ones. */
    static struct fz f[2];
    memset(f, 0, sizeof(f));
    G.passwd_left = PASSWD_MAX;
    for (int k = 0; k < 2; k++) {
        f[k].name = k ? "fuzz-b" : "fuzz-a";
        f[k].raw_msgid = 0x40000000;
        f[k].c = open_from("127.0.0.2", "fz");
        f[k].logged_in = true;
    }
    fuzz_run(f, 2, total, secs * 1000, 250);
    /* fz still works; the record and its chain are whole. */
    struct cli_msg *m = NULL;
    for (int k = 0; k < 2; k++) {
        m = call_ok(f[k].c, "whoami", NULL);
        assert_true(str_is(proto_mp_map_get(m->result, "user"), "fz"));
        cli_msg_free(m);
        fz_close(&f[k]);
    }
    watch_ping("after the fuzzing");
    for (int i = 0; i < 3; i++) {
        const char *mt = i == 0 ? MEETING : i == 1 ? HOME : OTHER;
        m = call_ok(G.watch, "audit.verify", "{s:s}", "meeting", mt);
        if (!proto_mp_map_get(m->result, "ok")->via.boolean) {
            fail_msg("audit.verify %s: the chain is broken at seq %lld", mt,
                     (long long)int_of(proto_mp_map_get(m->result, "bad_seq")));
        }
        printf("chaos: audit.verify %s ok, %lld entries\n", mt,
               (long long)int_of(proto_mp_map_get(m->result, "count")));
        cli_msg_free(m);
    }
    m = call_ok(G.watch, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_true(int_of(proto_mp_map_get(m->result, "seq")) >= G.watch_seq);
    cli_msg_free(m);
    assert_true(server_alive());
    printf("chaos: watcher pings %u, slowest %lld ms\n", G.watch_pings, (long long)G.watch_max_ms);
}

/* The same grammar before login, from an address of its own: only ping may succeed. */
static void test_fuzz_prelogin(void **state)
{
    (void)state;
    rng_seed(G.seed ^ 0x2222);
    printf("chaos: pre-login fuzzing, seed 0x%llx, %d requests\n",
           (unsigned long long)(G.seed ^ 0x2222), PRELOGIN_REQS);
    static struct fz f;
    int64_t start = mono_ms();
    unsigned sent = 0, conns = 0;
    while (sent < PRELOGIN_REQS && conns < 40) {
        memset(&f, 0, sizeof(f));
        f.name = "prelogin";
        f.prelogin = true;
        f.raw_msgid = 0x40000000;
        f.c = open_from("127.0.0.3", NULL);
        conns++;
        /* Well within the login deadline: then a fresh connection. */
        fuzz_run(&f, 1, 40, 1500, 0);
        sent += f.sent;
        fz_close(&f);
    }
    printf("chaos: pre-login: %u requests on %u connections in %lld ms\n", sent, conns,
           (long long)(mono_ms() - start));
    watch_ping("after the pre-login fuzzing");
}

/* ---- 2. message junk ---- */

struct jexp {
    uint32_t msgid;
    int what; /* 0: bad_request, 1: a result, 2: any answer, 3: unauthenticated, 4: not_found */
};

static unsigned junk_count;

/* Sends one plaintext and checks its answers, then that the connection still answers a
 * ping (and nothing else came). */
static void junk_check(struct cli_conn *c, const char *name, const uint8_t *p, size_t n,
                       const struct jexp *exp, size_t nexp)
{
    unsigned notes = 0;
    junk_count++;
    if (cli_conn_send_plain(c, p, n) != 0) {
        print_log_tail(30);
        fail_msg("junk \"%s\": cannot send: %s", name, cli_conn_error(c));
    }
    for (size_t i = 0; i < nexp; i++) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(c, STALL_MS, &m);
        if (rc != 0) {
            struct sb b = {0};
            render_bytes(&b, p, n);
            print_log_tail(40);
            fail_msg("junk \"%s\" (%s): answer %zu of %zu: %s", name, b.buf, i + 1, nexp,
                     cli_conn_error(c));
        }
        if (m->kind == PROTO_RPC_NOTIFY) {
            check_note(m, "junk", NULL);
            cli_msg_free(m);
            if (++notes > 1000) {
                fail_msg("junk \"%s\": notifications instead of answers", name);
            }
            i--;
            continue;
        }
        const char *code = m->error ? m->code : NULL;
        bool ok = m->msgid == exp[i].msgid;
        ok = ok && (exp[i].what != 0 || (code && strcmp(code, "bad_request") == 0));
        ok = ok && (exp[i].what != 1 || code == NULL);
        ok = ok && (exp[i].what != 3 || (code && strcmp(code, "unauthenticated") == 0));
        ok = ok && (exp[i].what != 4 || (code && strcmp(code, "not_found") == 0));
        ok = ok && (code == NULL || (code_known(code) && strcmp(code, "internal") != 0));
        if (!ok) {
            struct sb b = {0};
            render_bytes(&b, p, n);
            fail_msg("junk \"%s\" (%s): answer %zu is msgid %u %s, expected msgid %u %s", name,
                     b.buf, i + 1, (unsigned)m->msgid, code ? code : "ok", (unsigned)exp[i].msgid,
                     exp[i].what == 0   ? "bad_request"
                     : exp[i].what == 1 ? "ok"
                     : exp[i].what == 3 ? "unauthenticated"
                     : exp[i].what == 4 ? "not_found"
                                        : "any");
        }
        cli_msg_free(m);
    }
    struct cli_msg *m = NULL;
    uint32_t id = 0;
    if (cli_conn_sendf(c, &id, "ping", NULL) != 0 || cli_conn_next(c, STALL_MS, &m) != 0) {
        print_log_tail(30);
        fail_msg("junk \"%s\": the connection did not stay open: %s", name, cli_conn_error(c));
    }
    while (m->kind == PROTO_RPC_NOTIFY && ++notes < 1000) {
        cli_msg_free(m);
        assert_int_equal(cli_conn_next(c, STALL_MS, &m), 0);
    }
    if (m->msgid != id || m->error != NULL) {
        struct sb b = {0};
        render_bytes(&b, p, n);
        print_log_tail(40);
        fail_msg("junk \"%s\" (%s): an extra answer (msgid %u %s: %s) before the ping's", name,
                 b.buf, (unsigned)m->msgid, m->error ? m->code : "ok", m->error ? m->message : "");
    }
    cli_msg_free(m);
}

static void pack_ping(msgpack_packer *pk, uint32_t msgid)
{
    proto_rpc_pack_request(pk, msgid, "ping");
    msgpack_pack_map(pk, 0);
}

/* The fixed cases of PROTOCOL.md sections 4 and 10. logged_in: the connection is. */
static void junk_fixed(struct cli_conn *c, bool logged_in)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
#define RESET() (b.len = 0)
#define CHECK(name, ...)                                                                           \
    do {                                                                                           \
        const struct jexp e_[] = {__VA_ARGS__};                                                    \
        junk_check(c, name, b.data, b.len, e_, sizeof(e_) / sizeof(e_[0]));                        \
        RESET();                                                                                   \
    } while (0)
    static const uint8_t c1 = 0xc1;

    proto_buf_append(&b, &c1, 1);
    CHECK("not msgpack", {0, 0});
    pack_ping(&pk, 701);
    pack_ping(&pk, 702);
    proto_buf_append(&b, &c1, 1);
    CHECK("two pings, then not msgpack", {701, 1}, {702, 1}, {0, 0});
    pack_ping(&pk, 703);
    b.len = 7;
    CHECK("a request cut off", {0, 0});
    pack_ping(&pk, 704);
    size_t keep = b.len;
    pack_ping(&pk, 705);
    b.len = keep + 5;
    CHECK("a whole request, then one cut off", {704, 1}, {0, 0});
    pack_ping(&pk, 724);
    proto_buf_append(&b, &c1, 1);
    pack_ping(&pk, 725);
    CHECK("a request after the fault is not handled", {724, 1}, {0, 0});
    {
        const struct jexp e_[] = {{0, 0}};
        junk_check(c, "empty plaintext", NULL, 0, e_, 1);
    }
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 706);
    pk_cstr(&pk, "ping");
    CHECK("array of 3", {706, 0});
    pack_ping(&pk, 707);
    b.data[0] = 0x95; /* five elements */
    msgpack_pack_uint8(&pk, 1);
    CHECK("array of 5", {707, 0});
    msgpack_pack_array(&pk, 0);
    CHECK("empty array", {0, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint32(&pk, 708);
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    CHECK("a response from the client", {708, 0});
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 2);
    pk_cstr(&pk, "ping");
    msgpack_pack_map(&pk, 0);
    CHECK("a notification from the client", {0, 0});
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint32(&pk, 709);
    msgpack_pack_map(&pk, 0);
    CHECK("a notification with a uint32 in the msgid position", {709, 0});
    static const struct {
        const char *name;
        int kind; /* 0 -1, 1 2^32, 2 3.0, 3 "1", 4 nil, 5 2^64-1, 6 -2^63 */
    } ids[] = {{"msgid -1", 0},  {"msgid 2^32", 1},   {"msgid 3.0", 2},  {"msgid \"1\"", 3},
               {"msgid nil", 4}, {"msgid 2^64-1", 5}, {"msgid -2^63", 6}};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 0);
        switch (ids[i].kind) {
        case 0:
            msgpack_pack_int64(&pk, -1);
            break;
        case 1:
            msgpack_pack_uint64(&pk, (uint64_t)UINT32_MAX + 1);
            break;
        case 2:
            msgpack_pack_double(&pk, 3.0);
            break;
        case 3:
            pk_cstr(&pk, "1");
            break;
        case 4:
            msgpack_pack_nil(&pk);
            break;
        case 5:
            msgpack_pack_uint64(&pk, UINT64_MAX);
            break;
        default:
            msgpack_pack_int64(&pk, INT64_MIN);
        }
        pk_cstr(&pk, "ping");
        msgpack_pack_map(&pk, 0);
        CHECK(ids[i].name, {0, 0});
    }
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_uint32(&pk, 710);
    pk_cstr(&pk, "ping");
    msgpack_pack_map(&pk, 0);
    CHECK("kind 3", {710, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int8(&pk, -1);
    msgpack_pack_uint32(&pk, 711);
    pk_cstr(&pk, "ping");
    msgpack_pack_map(&pk, 0);
    CHECK("kind -1", {711, 0});
    msgpack_pack_array(&pk, 4);
    pk_cstr(&pk, "0");
    msgpack_pack_uint32(&pk, 712);
    pk_cstr(&pk, "ping");
    msgpack_pack_map(&pk, 0);
    CHECK("kind \"0\"", {712, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_double(&pk, 0.0);
    msgpack_pack_uint32(&pk, 727);
    pk_cstr(&pk, "ping");
    msgpack_pack_map(&pk, 0);
    CHECK("kind 0.0", {727, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 713);
    pk_cstr(&pk, "ping");
    msgpack_pack_array(&pk, 0);
    CHECK("params an array", {713, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 714);
    pk_cstr(&pk, "ping");
    msgpack_pack_nil(&pk);
    CHECK("params nil", {714, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 715);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_map(&pk, 0);
    CHECK("method an integer", {715, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 716);
    msgpack_pack_bin(&pk, 4);
    msgpack_pack_bin_body(&pk, "ping", 4);
    msgpack_pack_map(&pk, 0);
    CHECK("method a bin", {716, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 717);
    pk_str(&pk, "pi\xffng", 5);
    msgpack_pack_map(&pk, 0);
    CHECK("method not UTF-8", {717, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 728);
    pk_str(&pk, "ping\0", 5);
    msgpack_pack_map(&pk, 0);
    CHECK("method with a NUL", {728, 0});
    {
        /* An empty method in each encoding. msgpack-c gives a fixstr "" a NULL pointer when
         * nothing before it in the message had bytes of its own (a fixint msgid). */
        static const uint8_t e0[] = {0x94, 0x00, 0x05, 0xa0, 0x80};
        static const uint8_t e8[] = {0x94, 0x00, 0xcd, 0x02, 0xdd, 0xd9, 0x00, 0x80};
        proto_buf_append(&b, e0, sizeof(e0));
        CHECK("an empty method", {5, logged_in ? 4 : 3});
        proto_buf_append(&b, e8, sizeof(e8));
        CHECK("an empty method as str8", {0x2dd, logged_in ? 4 : 3});
    }
    msgpack_pack_map(&pk, 1);
    pk_cstr(&pk, "0");
    msgpack_pack_uint8(&pk, 1);
    CHECK("a map", {0, 0});
    msgpack_pack_nil(&pk);
    msgpack_pack_uint32(&pk, 729);
    pk_cstr(&pk, "ping");
    CHECK("three messages that are no arrays", {0, 0}, {0, 0}, {0, 0});
    msgpack_pack_ext(&pk, 4, 1);
    msgpack_pack_ext_body(&pk, "abcd", 4);
    CHECK("an ext", {0, 0});
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 718);
    pk_cstr(&pk, "ping");
    msgpack_pack_map(&pk, 1);
    pk_cstr(&pk, "a");
    for (int i = 0; i < 20; i++) {
        msgpack_pack_array(&pk, 1);
    }
    msgpack_pack_nil(&pk);
    CHECK("nested 24 deep", {0, 0});
    if (logged_in) { /* over the 4 KiB frame limit before login */
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_uint32(&pk, 719);
        pk_cstr(&pk, "ping");
        msgpack_pack_map(&pk, 1);
        pk_cstr(&pk, "a");
        msgpack_pack_array(&pk, 5000);
        for (int i = 0; i < 5000; i++) {
            msgpack_pack_nil(&pk);
        }
        CHECK("an array of 5000", {0, 0});
    }
    {
        static const uint8_t s32[] = {0x94, 0x00, 0xcd, 0x02, 0xd0, 0xa4, 'p',  'i',  'n', 'g',
                                      0x81, 0xa1, 'a',  0xdb, 0xff, 0xff, 0xff, 0x00, 'x', 'y'};
        proto_buf_append(&b, s32, sizeof(s32));
        CHECK("a str32 longer than the plaintext", {0, 0});
        static const uint8_t a32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
        proto_buf_append(&b, a32, sizeof(a32));
        CHECK("an array32 of 2^32-1", {0, 0});
        static const uint8_t m32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff};
        proto_buf_append(&b, m32, sizeof(m32));
        CHECK("a map32 of 2^31-1", {0, 0});
    }
    pack_ping(&pk, 721);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 722);
    pk_cstr(&pk, "ping");
    pack_ping(&pk, 723);
    CHECK("good, malformed, good", {721, 1}, {722, 0}, {723, 1});
    pack_ping(&pk, 0);
    CHECK("msgid 0", {0, 1});
    pack_ping(&pk, UINT32_MAX);
    CHECK("msgid 2^32-1", {UINT32_MAX, 1});
    {
        static const uint8_t odd[] = {0x94, 0x00, 0xcf, 0,   0,   0,   0,   0,   0,
                                      0x02, 0xd3, 0xa4, 'p', 'i', 'n', 'g', 0x80};
        proto_buf_append(&b, odd, sizeof(odd));
        CHECK("msgid as a uint64", {0x2d3, 1});
        static const uint8_t neg0[] = {0x94, 0xd3, 0,    0,    0,   0,   0,   0,   0,   0,
                                       0xcd, 0x02, 0xd4, 0xa4, 'p', 'i', 'n', 'g', 0x80};
        proto_buf_append(&b, neg0, sizeof(neg0));
        CHECK("kind 0 as an int64", {0x2d4, 1});
    }
    pack_ping(&pk, 726);
    msgpack_pack_nil(&pk);
    CHECK("a ping and a nil", {726, 1}, {0, 0});
    if (logged_in) {
        struct jexp many[64];
        for (uint32_t i = 0; i < 64; i++) {
            msgpack_pack_array(&pk, 3);
            msgpack_pack_uint8(&pk, 0);
            msgpack_pack_uint32(&pk, 800 + i);
            pk_cstr(&pk, "ping");
            many[i].msgid = 800 + i;
            many[i].what = 0;
        }
        junk_check(c, "64 malformed requests in one frame", b.data, b.len, many, 64);
        RESET();
        static struct jexp pings[1000];
        for (uint32_t i = 0; i < 1000; i++) {
            pack_ping(&pk, 1000 + i);
            pings[i].msgid = 1000 + i;
            pings[i].what = 1;
        }
        junk_check(c, "1000 pings in one frame", b.data, b.len, pings, 1000);
        RESET();
    } else {
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_uint32(&pk, 730);
        pk_cstr(&pk, "whoami");
        msgpack_pack_map(&pk, 0);
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_uint32(&pk, 731);
        pk_cstr(&pk, "nosuch");
        msgpack_pack_map(&pk, 0);
        CHECK("before login, known and unknown methods", {730, 3}, {731, 3});
    }
#undef CHECK
#undef RESET
    proto_buf_free(&b, 0);
}

/* Random junk: the expected answers follow from the rules of section 10 (the whole
 * messages before a fault each get one answer, a fault one bad_request with msgid 0). */
static void junk_random(struct cli_conn *c, int count)
{
    struct proto_buf b = {0};
    struct gen g = {.b = &b, .budget = 0, .small = true, .t = PROTO_T_ITEM, .meeting = MEETING};
    msgpack_packer_init(&g.pk, &b, proto_buf_msgpack_write);
    static const char *const names[] = {"ping",         "whoami",      "nosuch",
                                        "meeting.list", "member.list", ""};
    for (int k = 0; k < count; k++) {
        b.len = 0;
        int parts = 1 + (int)rnd(4);
        for (int p = 0; p < parts; p++) {
            switch (rnd(8)) {
            case 0: { /* random bytes */
                size_t n = rnd(24);
                for (size_t i = 0; i < n; i++) {
                    uint8_t x = (uint8_t)rnd(256);
                    proto_buf_append(&b, &x, 1);
                }
                break;
            }
            case 1:
            case 2:
            case 3: { /* a message-like array */
                uint32_t n = chance(70) ? 4 : rnd(7);
                msgpack_pack_array(&g.pk, n);
                for (uint32_t i = 0; i < n; i++) {
                    if (i == 0 && chance(70)) {
                        msgpack_pack_uint8(&g.pk, (uint8_t)rnd(4));
                    } else if (i == 1 && chance(60)) {
                        msgpack_pack_uint32(&g.pk, 2000 + rnd(1000));
                    } else if (i == 2 && chance(70)) {
                        pk_cstr(&g.pk, names[rnd(sizeof(names) / sizeof(names[0]))]);
                    } else if (i == 3 && chance(70)) {
                        msgpack_pack_map(&g.pk, 0);
                    } else {
                        gen_any(&g, 2);
                    }
                }
                break;
            }
            case 4: { /* a valid ping, cut short */
                size_t at = b.len;
                pack_ping(&g.pk, 3000 + rnd(100));
                if (chance(50)) {
                    b.len = at + rnd((uint32_t)(b.len - at));
                }
                break;
            }
            case 5:
                gen_any(&g, 1);
                break;
            case 6: { /* too deep */
                uint32_t d = 10 + rnd(20);
                for (uint32_t i = 0; i < d; i++) {
                    msgpack_pack_array(&g.pk, 1);
                }
                msgpack_pack_nil(&g.pk);
                break;
            }
            default:
                pack_ping(&g.pk, 3100 + rnd(100));
            }
        }
        /* The answers the server owes, from the rules. */
        size_t good = 0, off = 0, n = 0;
        int fault = proto_mp_check_seq(b.data, b.len, &good);
        struct jexp *exp = malloc((good + 1) * sizeof(*exp)); /* a message has a byte at least */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        while (off < good && msgpack_unpack_next(&u, (const char *)b.data, good, &off) ==
                                 MSGPACK_UNPACK_SUCCESS) {
            struct proto_rpc_msg m;
            int rc = proto_rpc_decode(&u.data, &m);
            exp[n].msgid = m.msgid;
            exp[n].what = rc != 0 || m.kind != PROTO_RPC_REQUEST ? 0 : 2;
            if (rc == 0 && m.kind == PROTO_RPC_REQUEST && proto_rpc_method_is(&m, "ping")) {
                exp[n].what = 1;
            }
            n++;
        }
        msgpack_unpacked_destroy(&u);
        if (fault != 0) {
            exp[n].msgid = 0;
            exp[n++].what = 0;
        }
        junk_check(c, "random", b.data, b.len, exp, n);
        free(exp);
    }
    proto_buf_free(&b, 0);
}

static void test_message_junk(void **state)
{
    (void)state;
    rng_seed(G.seed ^ 0x3333);
    printf("chaos: message junk, seed 0x%llx\n", (unsigned long long)(G.seed ^ 0x3333));
    int64_t start = mono_ms();
    struct cli_conn *c = open_from("127.0.0.1", "ed");
    junk_fixed(c, true);
    junk_random(c, (int)env_u64("CONFER_CHAOS_JUNK", 400));
    cli_msg_free(call_ok(c, "whoami", NULL));
    cli_conn_close(c);
    /* Before login (each connection well within the login deadline). */
    c = open_from("127.0.0.1", NULL);
    junk_fixed(c, false);
    cli_conn_close(c);
    c = open_from("127.0.0.1", NULL);
    junk_random(c, 40);
    cli_conn_close(c);
    printf("chaos: %u junk plaintexts answered as section 10 says, in %lld ms\n", junk_count,
           (long long)(mono_ms() - start));
    watch_ping("after the message junk");
    assert_true(server_alive());
}

/* ---- 3. frame junk ---- */

static int tcp_open(bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    struct sockaddr_in d;
    memset(&d, 0, sizeof(d));
    d.sin_family = AF_INET;
    d.sin_port = htons((uint16_t)G.s.port);
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    if (fd < 0) {
        fail_msg("socket: %s", strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&d, sizeof(d)) != 0 && errno != EINPROGRESS) {
        fail_msg("connect: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!nonblock) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
}

/* Writes everything; false when the peer is gone. */
static bool raw_write(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    int64_t end = mono_ms() + 5000;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w > 0) {
            q += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (mono_ms() > end) {
                return false;
            }
            poll(&pfd, 1, 50);
            continue;
        }
        return false;
    }
    return true;
}

/* Waits until the server closes fd; returns true when it did within ms. *got (may be NULL)
 * gets the bytes that came meanwhile. */
static bool raw_closed(int fd, int ms, size_t *got)
{
    int64_t end = mono_ms() + ms;
    uint8_t buf[4096];
    size_t total = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE))) {
            if (got) {
                *got = total;
            }
            return true;
        }
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        int64_t left = end - mono_ms();
        if (left <= 0) {
            if (got) {
                *got = total;
            }
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, (int)(left < 100 ? left : 100));
    }
}

struct rawc {
    int fd;
    struct proto_channel ch;
    struct proto_reader rd;
};

/* Reads one frame of at most max bytes into the reader; 1: a frame, 0: time out or closed. */
static int rawc_frame(struct rawc *r, uint32_t max, int ms, const uint8_t **p, uint32_t *n)
{
    int64_t end = mono_ms() + ms;
    proto_reader_set_max(&r->rd, max);
    for (;;) {
        int rc = proto_reader_next(&r->rd, p, n);
        if (rc != 0) {
            return rc == 1;
        }
        uint8_t *space = NULL;
        size_t len = 0;
        if (proto_reader_space(&r->rd, 65536, &space, &len) != 0) {
            return 0;
        }
        ssize_t got = recv(r->fd, space, len, 0);
        if (got > 0) {
            proto_reader_commit(&r->rd, (size_t)got);
            continue;
        }
        proto_reader_commit(&r->rd, 0);
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            return 0;
        }
        int64_t left = end - mono_ms();
        if (left <= 0) {
            return 0;
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        poll(&pfd, 1, (int)left);
    }
}

static bool send_frame(int fd, const void *p, size_t n)
{
    uint8_t hdr[4];
    proto_frame_put_len(hdr, (uint32_t)n);
    return raw_write(fd, hdr, 4) && raw_write(fd, p, n);
}

/* A handshake by hand (PROTOCOL.md section 2), so that later frames can be anything. */
static void rawc_open(struct rawc *r)
{
    struct proto_client_hs hs;
    struct proto_keys keys;
    uint8_t host[PROTO_KEY_BYTES], hdr[PROTO_STREAM_HDR];
    const uint8_t *p = NULL;
    uint32_t n = 0;
    memset(r, 0, sizeof(*r));
    r->fd = tcp_open(false);
    proto_reader_init(&r->rd, PROTO_HELLO_MAX);
    assert_int_equal(proto_hs_client_start(&hs), 0);
    assert_true(send_frame(r->fd, hs.hello, hs.hello_len));
    assert_int_equal(rawc_frame(r, PROTO_HELLO_MAX, 5000, &p, &n), 1);
    uint8_t sh[PROTO_HELLO_MAX];
    memcpy(sh, p, n);
    assert_int_equal(proto_hs_client_finish(&hs, sh, n, host, &keys), 0);
    assert_int_equal(proto_channel_init(&r->ch, &keys, hdr), 0);
    sodium_memzero(&keys, sizeof(keys));
    assert_true(send_frame(r->fd, hdr, sizeof(hdr)));
    assert_int_equal(rawc_frame(r, PROTO_STREAM_HDR, 5000, &p, &n), 1);
    assert_int_equal(proto_channel_recv_header(&r->ch, p, n), 0);
}

static void rawc_close(struct rawc *r)
{
    close(r->fd);
    proto_reader_free(&r->rd);
    proto_channel_wipe(&r->ch);
}

/* Seals m with any tag (flip >= 0: that bit of the sealed bytes flipped) and sends it. */
static bool rawc_send(struct rawc *r, const uint8_t *m, size_t mlen, unsigned char tag, long flip)
{
    uint8_t *buf = malloc(mlen + PROTO_ABYTES);
    crypto_secretstream_xchacha20poly1305_push(&r->ch.tx, buf, NULL, m, mlen, NULL, 0, tag);
    if (flip >= 0) {
        buf[(size_t)flip / 8 % (mlen + PROTO_ABYTES)] ^= (uint8_t)(1u << (flip % 8));
    }
    bool ok = send_frame(r->fd, buf, mlen + PROTO_ABYTES);
    free(buf);
    return ok;
}

/* Sends one request and returns the error code of its response ("" for a result). */
static const char *rawc_call(struct rawc *r, const uint8_t *m, size_t mlen)
{
    static char code[32];
    const uint8_t *p = NULL;
    uint32_t n = 0;
    if (!rawc_send(r, m, mlen, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, -1) ||
        rawc_frame(r, CLI_RECV_MAX, STALL_MS, &p, &n) != 1) {
        return NULL;
    }
    uint8_t *plain = malloc(n);
    size_t plen = 0;
    const char *res = NULL;
    if (proto_channel_open(&r->ch, p, n, plain, &plen) == 0) {
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        struct proto_rpc_msg rm;
        if (msgpack_unpack_next(&u, (const char *)plain, plen, &off) == MSGPACK_UNPACK_SUCCESS &&
            proto_rpc_decode(&u.data, &rm) == 0 && rm.kind == PROTO_RPC_RESPONSE) {
            const msgpack_object *c = proto_mp_map_get(rm.error, "code");
            snprintf(code, sizeof(code), "%.*s", c ? (int)c->via.str.size : 0,
                     c ? c->via.str.ptr : "");
            res = code;
        }
        msgpack_unpacked_destroy(&u);
    }
    free(plain);
    return res;
}

static void rawc_login(struct rawc *r, const char *user)
{
    struct proto_buf b = {0};
    char pw[64];
    snprintf(pw, sizeof(pw), "%s-password", user);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_request(&pk, 1, "auth.login");
    assert_int_equal(cli_packf(&b, "{s:s, s:s}", "user", user, "password", pw), 0);
    const char *code = rawc_call(r, b.data, b.len);
    assert_non_null(code);
    assert_string_equal(code, "");
    proto_buf_free(&b, 1);
}

static unsigned frame_cases;

/* fd must be closed by the server at once, with no reply (or only max_reply bytes). */
static void expect_closed(int fd, const char *what, size_t max_reply)
{
    size_t got = 0;
    frame_cases++;
    if (!raw_closed(fd, CLOSE_MS, &got)) {
        print_log_tail(20);
        fail_msg("frame junk \"%s\": the connection is still open after %d ms", what, CLOSE_MS);
    }
    if (got > max_reply) {
        fail_msg("frame junk \"%s\": %zu bytes of reply, expected at most %zu", what, got,
                 max_reply);
    }
    close(fd);
    watch_ping(what);
}

static void hello_case(const char *what, const uint8_t *payload, size_t n, size_t max_reply)
{
    int fd = tcp_open(false);
    send_frame(fd, payload, n);
    expect_closed(fd, what, max_reply);
}

/* A ClientHello map from parts: proto (NULL: absent), v (-2: absent, -3: "1"), kx bytes. */
static size_t make_hello(uint8_t *out, size_t cap, const char *proto, int64_t v, const uint8_t *kx,
                         size_t kxlen, bool kx_str, bool extra)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, (proto != NULL) + (v != -2) + (kx != NULL) + extra);
    if (proto) {
        pk_cstr(&pk, "proto");
        pk_cstr(&pk, proto);
    }
    if (v != -2) {
        pk_cstr(&pk, "v");
        if (v == -3) {
            pk_cstr(&pk, "1");
        } else {
            msgpack_pack_int64(&pk, v);
        }
    }
    if (kx) {
        pk_cstr(&pk, "kx");
        if (kx_str) {
            pk_str(&pk, (const char *)kx, kxlen);
        } else {
            msgpack_pack_bin(&pk, kxlen);
            msgpack_pack_bin_body(&pk, kx, kxlen);
        }
    }
    if (extra) {
        pk_cstr(&pk, "future");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_nil(&pk);
        pk_cstr(&pk, "x");
    }
    size_t n = b.len < cap ? b.len : cap;
    memcpy(out, b.data, n);
    proto_buf_free(&b, 0);
    return n;
}

static void frames_before_hello(void)
{
    uint8_t buf[2048], kx[33];
    uint8_t pkx[crypto_kx_PUBLICKEYBYTES], skx[crypto_kx_SECRETKEYBYTES];
    crypto_kx_keypair(pkx, skx);
    memcpy(kx, pkx, 32);
    kx[32] = 0;
    for (int i = 0; i < 6; i++) { /* random bytes where the hello should be */
        int fd = tcp_open(false);
        size_t n = 5 + rnd(200);
        for (size_t k = 0; k < n; k++) {
            buf[k] = (uint8_t)rnd(256);
        }
        if (i < 3) { /* a length that fits, so that the server reads a payload */
            proto_frame_put_len(buf, (uint32_t)(n - 4));
        } else { /* a length over the limit */
            buf[0] |= 0x80;
        }
        raw_write(fd, buf, n);
        expect_closed(fd, "random bytes before the hello", 0);
    }
    static const struct {
        const char *what;
        uint32_t len;
    } lens[] = {{"hello length 2^32-1", UINT32_MAX},
                {"hello length 1025", 1025},
                {"hello length 0", 0},
                {"hello length 2^31", 0x80000000u}};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        int fd = tcp_open(false);
        uint8_t hdr[4];
        proto_frame_put_len(hdr, lens[i].len);
        raw_write(fd, hdr, 4);
        expect_closed(fd, lens[i].what, 0);
    }
    /* Payloads that are not a hello. */
    static const uint8_t not_map[][8] = {
        {0x93, 1, 2, 3}, {0xc0}, {0xa6, 'c', 'o', 'n', 'f', 'e', 'r'},
        {0x01},          {0xc1}, {0xc4, 0x02, 0xaa, 0xbb}};
    static const size_t not_map_len[] = {4, 1, 7, 1, 1, 4};
    for (size_t i = 0; i < sizeof(not_map_len) / sizeof(not_map_len[0]); i++) {
        hello_case("a hello that is not a map", not_map[i], not_map_len[i], 0);
    }
    {
        static const uint8_t huge[][8] = {{0x81, 0xa5, 'p', 'r', 'o', 't', 'o', 0xdb},
                                          {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01},
                                          {0x83, 0xa2, 'k', 'x', 0xc6, 0x7f, 0xff, 0xff},
                                          {0xdd, 0xff, 0xff, 0xff, 0xf0, 0xc0, 0xc0, 0xc0}};
        for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
            hello_case("a hello with huge lengths inside", huge[i], 8, 0);
        }
        memset(buf, 0x91, 1024); /* 1024 nested arrays */
        hello_case("a hello nested 1024 deep", buf, 1024, 0);
    }
    size_t n = make_hello(buf, sizeof(buf), "confer", 1, kx, 31, false, false);
    hello_case("a hello with a 31-byte kx", buf, n, 0);
    n = make_hello(buf, sizeof(buf), "confer", 1, kx, 33, false, false);
    hello_case("a hello with a 33-byte kx", buf, n, 0);
    n = make_hello(buf, sizeof(buf), "confer", 1, kx, 32, true, false);
    hello_case("a hello with kx a str", buf, n, 0);
    n = make_hello(buf, sizeof(buf), "Confer", 1, kx, 32, false, false);
    hello_case("a hello of another protocol", buf, n, 0);
    n = make_hello(buf, sizeof(buf), NULL, 1, kx, 32, false, false);
    hello_case("a hello without proto", buf, n, 0);
    n = make_hello(buf, sizeof(buf), "confer", -2, kx, 32, false, false);
    hello_case("a hello without v", buf, n, 0);
    n = make_hello(buf, sizeof(buf), "confer", -3, kx, 32, false, false);
    hello_case("a hello with v \"1\"", buf, n, 0);
    n = make_hello(buf, sizeof(buf), "confer", 1, NULL, 0, false, false);
    hello_case("a hello without kx", buf, n, 0);
    uint8_t zero[32] = {0};
    n = make_hello(buf, sizeof(buf), "confer", 1, zero, 32, false, false);
    hello_case("a hello with a low-order kx", buf, n, 0);
    /* Another integer v: an unsupported_version answer, then the close. */
    n = make_hello(buf, sizeof(buf), "confer", 2, kx, 32, false, false);
    hello_case("a hello with v 2", buf, n, PROTO_HELLO_MAX + 4);
    n = make_hello(buf, sizeof(buf), "confer", INT64_MIN, kx, 32, false, false);
    hello_case("a hello with v -2^63", buf, n, PROTO_HELLO_MAX + 4);
    /* A good hello with unknown keys is a hello (the ignore rule): it gets an answer. */
    {
        struct rawc r;
        struct proto_client_hs hs;
        memset(&r, 0, sizeof(r));
        r.fd = tcp_open(false);
        proto_reader_init(&r.rd, PROTO_HELLO_MAX);
        assert_int_equal(proto_hs_client_start(&hs), 0);
        n = make_hello(buf, sizeof(buf), "confer", 1, hs.pk, 32, false, true);
        send_frame(r.fd, buf, n);
        const uint8_t *p = NULL;
        uint32_t len = 0;
        if (rawc_frame(&r, PROTO_HELLO_MAX, 5000, &p, &len) != 1) {
            fail_msg("a hello with an unknown key got no ServerHello");
        }
        rawc_close(&r);
        frame_cases++;
    }
    /* A good hello, then a stream header of the wrong size. */
    static const uint32_t hdr_lens[] = {23, 25, 0, 1u << 30};
    for (size_t i = 0; i < sizeof(hdr_lens) / sizeof(hdr_lens[0]); i++) {
        struct rawc r;
        struct proto_client_hs hs;
        memset(&r, 0, sizeof(r));
        r.fd = tcp_open(false);
        proto_reader_init(&r.rd, PROTO_HELLO_MAX);
        assert_int_equal(proto_hs_client_start(&hs), 0);
        send_frame(r.fd, hs.hello, hs.hello_len);
        uint8_t junk[32] = {0};
        uint8_t hdr[4];
        proto_frame_put_len(hdr, hdr_lens[i]);
        raw_write(r.fd, hdr, 4);
        raw_write(r.fd, junk, hdr_lens[i] < 32 ? hdr_lens[i] : 32);
        expect_closed(r.fd, "a stream header of the wrong size", 2048);
        proto_reader_free(&r.rd);
        sodium_memzero(&hs, sizeof(hs));
    }
}

/* Frames after a good handshake, before and after login. */
static void frames_in_channel(void)
{
    struct rawc r;
    uint8_t ping[64];
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    pack_ping(&pk, 9);
    memcpy(ping, b.data, b.len);
    size_t plen = b.len;
    proto_buf_free(&b, 0);
    for (int logged = 0; logged < 2; logged++) {
        const char *when = logged ? " (after login)" : "";
        char what[128];
        for (int i = 0; i < 4; i++) { /* a flipped bit: header, ciphertext or tag */
            rawc_open(&r);
            if (logged) {
                rawc_login(&r, "ed");
            }
            long bits = (long)((plen + PROTO_ABYTES) * 8);
            rawc_send(&r, ping, plen, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
                      i == 0   ? 0
                      : i == 1 ? bits - 1
                               : (long)rnd((uint32_t)bits));
            snprintf(what, sizeof(what), "a frame with a flipped bit%s", when);
            expect_closed(r.fd, what, 0);
            rawc_close(&r);
        }
        static const struct {
            const char *what;
            unsigned char tag;
            bool empty;
        } tags[] = {
            {"a non-empty TAG_FINAL", crypto_secretstream_xchacha20poly1305_TAG_FINAL, 0},
            {"a TAG_PUSH", crypto_secretstream_xchacha20poly1305_TAG_PUSH, 0},
            {"a TAG_REKEY", crypto_secretstream_xchacha20poly1305_TAG_REKEY, 0},
            {"an empty TAG_PUSH", crypto_secretstream_xchacha20poly1305_TAG_PUSH, 1},
            {"an empty TAG_FINAL (graceful)", crypto_secretstream_xchacha20poly1305_TAG_FINAL, 1}};
        for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
            rawc_open(&r);
            if (logged) {
                rawc_login(&r, "ed");
            }
            rawc_send(&r, ping, tags[i].empty ? 0 : plen, tags[i].tag, -1);
            snprintf(what, sizeof(what), "%s%s", tags[i].what, when);
            expect_closed(r.fd, what, 0);
            rawc_close(&r);
        }
        /* The same sealed frame twice: the second cannot decrypt. */
        rawc_open(&r);
        if (logged) {
            rawc_login(&r, "ed");
        }
        {
            uint8_t sealed[4 + 64 + PROTO_ABYTES];
            proto_frame_put_len(sealed, (uint32_t)(plen + PROTO_ABYTES));
            crypto_secretstream_xchacha20poly1305_push(&r.ch.tx, sealed + 4, NULL, ping, plen, NULL,
                                                       0, 0);
            raw_write(r.fd, sealed, 4 + plen + PROTO_ABYTES);
            raw_write(r.fd, sealed, 4 + plen + PROTO_ABYTES);
            snprintf(what, sizeof(what), "a replayed frame%s", when);
            size_t got = 0;
            frame_cases++;
            if (!raw_closed(r.fd, CLOSE_MS, &got)) {
                fail_msg("%s: still open", what);
            }
            watch_ping(what);
        }
        rawc_close(&r);
        /* Lengths the server must refuse before it reads (or allocates) the payload. */
        uint32_t limit =
            logged ? PROTO_DEFAULT_MAX + PROTO_ABYTES : PROTO_PRELOGIN_MAX + PROTO_ABYTES;
        const uint32_t bad_lens[] = {0, 1, PROTO_ABYTES - 1, limit + 1, UINT32_MAX};
        for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
            rawc_open(&r);
            if (logged) {
                rawc_login(&r, "ed");
            }
            uint8_t frame[4 + PROTO_ABYTES] = {0};
            proto_frame_put_len(frame, bad_lens[i]);
            size_t body = bad_lens[i] < PROTO_ABYTES ? bad_lens[i] : 0;
            raw_write(r.fd, frame, 4 + body);
            snprintf(what, sizeof(what), "a frame length of %u%s", (unsigned)bad_lens[i], when);
            expect_closed(r.fd, what, 0);
            rawc_close(&r);
        }
        /* A frame exactly at the limit is fine: a ping padded to it is answered. */
        if (!logged) {
            rawc_open(&r);
            struct proto_buf big = {0};
            msgpack_packer_init(&pk, &big, proto_buf_msgpack_write);
            proto_rpc_pack_request(&pk, 10, "ping");
            msgpack_pack_map(&pk, 1);
            pk_cstr(&pk, "pad");
            size_t pad = PROTO_PRELOGIN_MAX - big.len - 3;
            msgpack_pack_str(&pk, pad);
            char *padding = malloc(pad);
            memset(padding, 'p', pad);
            msgpack_pack_str_body(&pk, padding, pad);
            free(padding);
            assert_int_equal(big.len, PROTO_PRELOGIN_MAX);
            const char *code = rawc_call(&r, big.data, big.len);
            if (code == NULL || code[0] != '\0') {
                fail_msg("a ping of exactly %d bytes before login was not answered",
                         PROTO_PRELOGIN_MAX);
            }
            proto_buf_free(&big, 0);
            rawc_close(&r);
            frame_cases++;
        }
    }
}

/* Connections that stop half-way: the login deadline (4 s here) closes them. */
struct stalled {
    int fd;
    int64_t opened;
    const char *what;
};

static void open_stalled(struct stalled *s)
{
    s[0].fd = tcp_open(false); /* says nothing */
    s[0].opened = mono_ms();
    s[0].what = "a connection that says nothing";
    s[1].fd = tcp_open(false); /* half a hello */
    s[1].opened = mono_ms();
    s[1].what = "half a hello";
    uint8_t half[10] = {0, 0, 0, 60, 0x83, 0xa5, 'p', 'r', 'o', 't'};
    raw_write(s[1].fd, half, sizeof(half));
    struct rawc r;
    rawc_open(&r); /* half a frame after the handshake */
    uint8_t hdr[4 + 50] = {0};
    proto_frame_put_len(hdr, 100);
    raw_write(r.fd, hdr, sizeof(hdr));
    s[2].fd = dup(r.fd);
    s[2].opened = mono_ms();
    s[2].what = "half a frame after the handshake";
    rawc_close(&r);
    for (int i = 0; i < 3; i++) { /* incomplete is not broken: they wait */
        if (raw_closed(s[i].fd, 200, NULL)) {
            fail_msg("%s: closed at once", s[i].what);
        }
    }
}

static void wait_stalled(struct stalled *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* The others are served meanwhile. */
        while (mono_ms() - s[i].opened < LOGIN_TIMEOUT_MS - 500) {
            watch_ping("while a connection stalls");
            sleep_ms(200);
        }
        size_t got = 0;
        int left = (int)(s[i].opened + LOGIN_TIMEOUT_MS + 3000 - mono_ms());
        frame_cases++;
        if (!raw_closed(s[i].fd, left > 0 ? left : 1, &got)) {
            print_log_tail(20);
            fail_msg("%s: still open %d ms after the login deadline", s[i].what, 3000);
        }
        close(s[i].fd);
    }
}

/* 200 connections at once, in every state, dropped at once (half of them with a reset);
 * then logged-in clients that drop with responses still coming. */
static void many_connections(void)
{
    enum { N = 200 };
    static int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_open(true);
    }
    int64_t end = mono_ms() + 3000;
    for (int i = 0; i < N; i++) {
        struct pollfd pfd = {.fd = fds[i], .events = POLLOUT};
        int64_t left = end - mono_ms();
        poll(&pfd, 1, left > 0 ? (int)left : 0);
        struct proto_client_hs hs;
        proto_hs_client_start(&hs);
        uint8_t frame[4 + 64];
        proto_frame_put_len(frame, (uint32_t)hs.hello_len);
        memcpy(frame + 4, hs.hello, hs.hello_len);
        ssize_t w = 0;
        switch (i % 4) {
        case 1:
            w = send(fds[i], frame, 10, MSG_NOSIGNAL);
            break;
        case 2:
            w = send(fds[i], frame, 4 + hs.hello_len, MSG_NOSIGNAL);
            break;
        case 3:
            w = send(fds[i], "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL);
            break;
        default:
            break;
        }
        (void)w;
        sodium_memzero(&hs, sizeof(hs));
    }
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            struct linger l = {1, 0}; /* a reset, not a FIN */
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(fds[i]);
    }
    frame_cases += N;
    watch_ping("after 200 connections dropped at once");
    /* Clients that ask a lot and leave without reading. */
    for (int i = 0; i < 10; i++) { /* rap: the fuzzing may have removed ed from m1 */
        struct cli_conn *c = open_from("127.0.0.1", "rap");
        cli_conn_cork(c);
        for (int k = 0; k < 40; k++) {
            if (k % 2) {
                cli_conn_sendf(c, NULL, "meeting.get", "{s:s}", "meeting", MEETING);
            } else {
                cli_conn_sendf(c, NULL, "report.export", "{s:s, s:s}", "meeting", MEETING, "format",
                               "html");
            }
        }
        cli_conn_flush(c);
        if (i % 2) {
            struct linger l = {1, 0};
            setsockopt(cli_conn_fd(c), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        cli_conn_free(c);
    }
    frame_cases += 10;
    watch_ping("after clients left with answers pending");
    struct cli_conn *c = open_from("127.0.0.1", "rap");
    cli_msg_free(call_ok(c, "meeting.get", "{s:s}", "meeting", MEETING));
    cli_conn_close(c);
}

static void test_frame_junk(void **state)
{
    (void)state;
    rng_seed(G.seed ^ 0x4444);
    printf("chaos: frame junk, seed 0x%llx\n", (unsigned long long)(G.seed ^ 0x4444));
    int64_t start = mono_ms();
    struct stalled st[3];
    open_stalled(st);
    frames_before_hello();
    frames_in_channel();
    many_connections();
    wait_stalled(st, 3);
    printf("chaos: %u frame-level cases, each connection closed, others served, in %lld ms\n",
           frame_cases, (long long)(mono_ms() - start));
    assert_true(server_alive());
}

/* ---- 4. the end ---- */

static void test_clean_exit(void **state)
{
    (void)state;
    assert_true(server_alive());
    watch_ping("at the end");
    for (int i = 0; i < 3; i++) {
        const char *mt = i == 0 ? MEETING : i == 1 ? HOME : OTHER;
        struct cli_msg *m = call_ok(G.watch, "audit.verify", "{s:s}", "meeting", mt);
        assert_true(proto_mp_map_get(m->result, "ok")->via.boolean);
        cli_msg_free(m);
        m = call_ok(G.watch, "meeting.get", "{s:s}", "meeting", mt);
        cli_msg_free(m);
    }
    /* Every meeting, those the fuzzing made included, from the operator's tool. */
    const char *verify[] = {"audit", "verify", NULL};
    assert_int_equal(ts_conferd(&G.s, NULL, verify), 0);
    cli_conn_close(G.watch);
    G.watch = NULL;
    char *log = NULL;
    int rc = ts_stop_log(&G.s, &log);
    G.up = false;
    bool dirty = log && (strstr(log, "runtime error") || strstr(log, "AddressSanitizer") ||
                         strstr(log, "LeakSanitizer"));
    if (rc != 0 || log == NULL || dirty) {
        const char *at = log ? strstr(log, "==ERROR") : NULL;
        if (at == NULL && log) {
            at = strstr(log, "runtime error");
        }
        fprintf(stderr, "%.4000s\n", at ? at : log ? log : "(no log)");
    }
    free(log);
    assert_int_equal(rc, 0);
    assert_false(dirty);
}

static int group_teardown(void **state)
{
    (void)state;
    cli_conn_free(G.watch);
    G.watch = NULL;
    if (G.up) {
        ts_kill(&G.s);
        ts_stop(&G.s);
        G.up = false;
    }
    free(G.sample);
    G.sample = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_sweep),   cmocka_unit_test(test_fuzz_methods),
        cmocka_unit_test(test_fuzz_prelogin), cmocka_unit_test(test_message_junk),
        cmocka_unit_test(test_frame_junk),    cmocka_unit_test(test_clean_exit),
    };
    if (sodium_init() < 0) {
        return 1;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
