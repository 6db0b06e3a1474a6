/* test_srv_snapshot.c - the log as the truth, against a real conferd. A change writes only
 * its log entry; rows (and signed snapshots) follow now and then; a load reads the rows and
 * replays the log after them; time travel starts at the nearest snapshot. So:
 *
 *   - the record at every seq of a random run, over the wire, equals the log replayed from
 *     its start in this process (no snapshot trusted), and the record rebuilt from the
 *     snapshots, and what meeting.get answered live at that seq; exports too;
 *   - kills between log writes and row refreshes lose no acknowledged edit and, with the
 *     edits in flight resent under their cids, apply none twice;
 *   - a restart stands on the rows and replays only the log after rows_seq, and what that
 *     replay did (deletes and member changes too) is in the rows it refreshes next.
 *
 * CONFER_TEST_SEED=N replays another random run (the seed is printed). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "cli_text.h"
#include "db.h"
#include "proto_ot.h"
#include "srv_audit.h"
#include "srv_data.h"
#include "srv_rec.h"
#include "srv_report.h"
#include "testsrv.h"
#include "testutil.h"

#define MEETING "snap"
#define WAIT_MS 20000

/* op is the operator and the meeting's rapporteur; the others come and go as members. */
static const char *const names[] = {"op", "assoc", "ed", "view", NULL};

/* The server of the running test: the teardown stops and removes it however it ended. */
static struct ts_server S;

static int teardown(void **state)
{
    (void)state;
    ts_kill(&S);
    if (S.dir) {
        ts_stop(&S);
    }
    memset(&S, 0, sizeof(S));
    return 0;
}

/* ---- time, randomness ---- */

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

static uint64_t rng_state;

/* Seeds the generator from CONFER_TEST_SEED, else from dflt, and says which: a failure
 * replays with the same seed. */
static void rng_seed(const char *test, uint64_t dflt)
{
    const char *e = getenv("CONFER_TEST_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 10) : dflt;
    fprintf(stderr, "%s: seed %" PRIu64 "\n", test, seed);
    rng_state = seed * 2654435761u + 0x9e3779b97f4a7c15ull;
    if (rng_state == 0) {
        rng_state = 1;
    }
}

/* xorshift64*: a number in [0, n) (0 when n is 0). */
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t x = rng_state * 0x2545f4914f6cdd1dull;
    return n ? (uint32_t)((x >> 32) % n) : 0;
}

/* ---- calls and results ---- */

static const msgpack_object *mget(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

static int64_t mint(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = mget(map, key);
    assert_non_null(v);
    assert_true(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : v->via.i64;
}

/* Sends params (one packed map) and waits for the answer; a read the server is too busy for
 * (rate_limited) is tried again after the time it asks, a bounded number of times. */
static struct cli_msg *call_raw(struct cli_conn *c, const char *method, const struct proto_buf *p)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_call(c, method, p->data, p->len, &m);
        if (rc != 0) {
            fail_msg("%s: %s (%s)", method, proto_strerror(rc), cli_conn_error(c));
        }
        if (!cli_msg_is_error(m, "rate_limited")) {
            return m;
        }
        int64_t wait = cli_msg_retry_after_ms(m);
        cli_msg_free(m);
        sleep_ms(wait > 0 && wait < 1000 ? (int)wait : 50);
    }
    fail_msg("%s: still rate_limited after 50 attempts", method);
    return NULL;
}

static struct cli_msg *vcall(struct cli_conn *c, const char *method, const char *fmt, va_list ap)
{
    struct proto_buf b = {0};
    assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    struct cli_msg *m = call_raw(c, method, &b);
    proto_buf_free(&b, 0);
    return m;
}

/* A call's answer, error or not. */
static struct cli_msg *call(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    return m;
}

/* A successful call's answer; fails the test on an error. */
static struct cli_msg *call_ok(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    if (m->error) {
        fail_msg("%s: %s: %s", method, m->code, m->message);
    }
    return m;
}

/* Copies the body of item id out of a meeting.get result (malloc'd; *len its bytes). */
static char *body_of(const msgpack_object *rec, int64_t id, size_t *len)
{
    const msgpack_object *items = mget(rec, "items");
    assert_non_null(items);
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *o = &items->via.array.ptr[i];
        if (mint(o, "id") == id) {
            const msgpack_object *b = mget(o, "body");
            assert_non_null(b);
            assert_int_equal(b->type, MSGPACK_OBJECT_STR);
            char *s = malloc(b->via.str.size + 1);
            assert_non_null(s);
            memcpy(s, b->via.str.ptr, b->via.str.size);
            s[b->via.str.size] = '\0';
            *len = b->via.str.size;
            return s;
        }
    }
    fail_msg("item %lld is not in the record", (long long)id);
    return NULL;
}

/* The live body of item id. */
static char *fetch_body(struct cli_conn *c, int64_t id, size_t *len, int64_t *seq)
{
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s}", "meeting", MEETING);
    char *s = body_of(m->result, id, len);
    if (seq) {
        *seq = mint(m->result, "seq");
    }
    cli_msg_free(m);
    return s;
}

/* ---- comparing records ---- */

static char why[512]; /* where the last comparison found a difference */

static bool mp_int(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    return false;
}

/* Deep equality of two msgpack values: maps by key whatever their order, arrays in order,
 * integers by value whatever their width. On a difference, why names its path. */
static bool mp_equal(const msgpack_object *a, const msgpack_object *b, const char *path)
{
    int64_t ia, ib;
    if (mp_int(a, &ia) && mp_int(b, &ib)) {
        if (ia != ib) {
            snprintf(why, sizeof(why), "%s: %lld against %lld", path, (long long)ia, (long long)ib);
            return false;
        }
        return true;
    }
    if (a->type != b->type) {
        snprintf(why, sizeof(why), "%s: msgpack types %d and %d", path, (int)a->type, (int)b->type);
        return false;
    }
    char sub[256];
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        if (a->via.boolean != b->via.boolean) {
            snprintf(why, sizeof(why), "%s: booleans differ", path);
            return false;
        }
        return true;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        if (a->via.str.size != b->via.str.size ||
            memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) != 0) {
            snprintf(why, sizeof(why), "%s: strings of %u and %u bytes differ", path,
                     (unsigned)a->via.str.size, (unsigned)b->via.str.size);
            return false;
        }
        return true;
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size) {
            snprintf(why, sizeof(why), "%s: %u elements against %u", path,
                     (unsigned)a->via.array.size, (unsigned)b->via.array.size);
            return false;
        }
        for (uint32_t i = 0; i < a->via.array.size; i++) {
            int64_t id = 0;
            const msgpack_object *ido = mget(&a->via.array.ptr[i], "id");
            if (ido && mp_int(ido, &id)) {
                snprintf(sub, sizeof(sub), "%.200s[%u] (id %lld)", path, (unsigned)i,
                         (long long)id);
            } else {
                snprintf(sub, sizeof(sub), "%.200s[%u]", path, (unsigned)i);
            }
            if (!mp_equal(&a->via.array.ptr[i], &b->via.array.ptr[i], sub)) {
                return false;
            }
        }
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size) {
            snprintf(why, sizeof(why), "%s: maps of %u and %u keys", path,
                     (unsigned)a->via.map.size, (unsigned)b->via.map.size);
            return false;
        }
        for (uint32_t i = 0; i < a->via.map.size; i++) {
            const msgpack_object *k = &a->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR) {
                snprintf(why, sizeof(why), "%s: a key that is not a string", path);
                return false;
            }
            snprintf(sub, sizeof(sub), "%.200s.%.*s", path, (int)(k->via.str.size % 50),
                     k->via.str.ptr);
            const msgpack_object *vb = NULL;
            for (uint32_t j = 0; j < b->via.map.size && vb == NULL; j++) {
                const msgpack_object *kb = &b->via.map.ptr[j].key;
                if (kb->type == MSGPACK_OBJECT_STR && kb->via.str.size == k->via.str.size &&
                    memcmp(kb->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0) {
                    vb = &b->via.map.ptr[j].val;
                }
            }
            if (vb == NULL) {
                snprintf(why, sizeof(why), "%s: only on one side", sub);
                return false;
            }
            if (!mp_equal(&a->via.map.ptr[i].val, vb, sub)) {
                return false;
            }
        }
        return true;
    default:
        snprintf(why, sizeof(why), "%s: unexpected msgpack type %d", path, (int)a->type);
        return false;
    }
}

/* A packed msgpack value and its unpacked form. */
struct packed {
    struct proto_buf buf;
    msgpack_unpacked up;
};

static void packed_unpack(struct packed *p)
{
    size_t off = 0;
    msgpack_unpacked_init(&p->up);
    assert_int_equal(msgpack_unpack_next(&p->up, (const char *)p->buf.data, p->buf.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, p->buf.len);
}

/* rec as meeting.get packs it. */
static void packed_rec(const struct srv_rec *rec, struct packed *p)
{
    memset(p, 0, sizeof(*p));
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p->buf, proto_buf_msgpack_write);
    assert_int_equal(srv_rec_pack(&pk, rec), 0);
    packed_unpack(p);
}

static void packed_free(struct packed *p)
{
    msgpack_unpacked_destroy(&p->up);
    proto_buf_free(&p->buf, 0);
}

static void print_diff(void *ud, const char *type, int64_t id, const char *id_str,
                       const char *field)
{
    size_t *n = ud;
    if ((*n)++ < 10) {
        fprintf(stderr, "  differs: %s %lld%s%s %s\n", type, (long long)id, id_str ? " " : "",
                id_str ? id_str : "", field ? field : "(on one side only)");
    }
}

/* ---- the database, read in this process ---- */

static void data_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/data", S.dir);
}

static struct db *open_ro(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", S.dir);
    struct db *db = NULL;
    int rc = db_open(&db, path, DB_READONLY);
    if (rc != 0) {
        fail_msg("db_open %s read-only: %s", path, proto_strerror(rc));
    }
    return db;
}

static void host_pk(uint8_t pk[PROTO_KEY_BYTES])
{
    char dir[4096];
    struct proto_hostkey key;
    data_dir(dir, sizeof(dir));
    assert_int_equal(srv_data_load_key(dir, &key), 0);
    memcpy(pk, key.pk, PROTO_KEY_BYTES);
    sodium_memzero(&key, sizeof(key));
}

/* The record of the meeting at seq s rebuilt in this process: with pk NULL from the log's
 * start, else from the newest snapshot that holds. head gets the chain's hash at s and
 * *from (may be NULL) the snapshot's seq (0: none). */
static struct srv_rec *rebuild(struct db *db, const uint8_t *pk, int64_t s,
                               uint8_t head[DB_HASH_BYTES], int64_t *from)
{
    struct srv_rebuild rb;
    int rc = srv_audit_rebuild_begin(db, MEETING, pk, s, &rb);
    if (rc != 0) {
        fail_msg("rebuild at %lld: %s", (long long)s, proto_strerror(rc));
    }
    int64_t snap = rb.snapshot_seq;
    rc = srv_audit_rebuild_end(&rb);
    if (rc != 0) {
        fail_msg("rebuild at %lld (%s): %s", (long long)s, pk ? "from a snapshot" : "from scratch",
                 proto_strerror(rc));
    }
    assert_int_equal(rb.seq, s);
    struct srv_rec *rec = rb.rec;
    rb.rec = NULL;
    srv_audit_rebuild_free(&rb);
    assert_non_null(rec);
    assert_int_equal(rec->seq, s);
    assert_true(pk != NULL || snap == 0);
    memcpy(head, rb.head, DB_HASH_BYTES);
    if (from) {
        *from = snap;
    }
    return rec;
}

/* One integer from SQL on the database file (read-only; the server may run or be dead). */
static int64_t sql_int(const char *sql)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", S.dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void sql_exec(const char *sql)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", S.dir);
    sqlite3 *db = NULL;
    char *err = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s: %s", sql, err ? err : "?");
    }
    sqlite3_close(db);
}

static int64_t rows_seq(void)
{
    return sql_int("SELECT rows_seq FROM meetings WHERE id = '" MEETING "'");
}

static int64_t log_head(void)
{
    return sql_int("SELECT coalesce(max(seq), 0) FROM audit WHERE meeting = '" MEETING "'");
}

/* SIGTERM and wait (at most 15 s): a graceful stop that leaves the data folder. Returns the
 * exit status (-1 when it had to be killed). */
static int graceful_stop(struct ts_server *s)
{
    int st = 0;
    pid_t r = 0;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 1500 && r == 0; i++) {
        r = waitpid(s->pid, &st, WNOHANG);
        if (r == 0) {
            sleep_ms(10);
        } else if (r < 0 && errno == EINTR) {
            r = 0;
        }
    }
    if (r == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        s->pid = 0;
        return -1;
    }
    s->pid = 0;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc != 0) {
        char *log = ts_read_log(s);
        fprintf(stderr, "%s", log);
        free(log);
    }
    return rc;
}

/* ---- text ---- */

/* Pieces of text: ASCII, 2-, 3- and 4-byte code points, a combining accent, CJK. */
static const char *const pieces[] = {"a", "b",  "z",  " ", "\n",        ".", "é", "ß",
                                     "€", "中", "文", "😀", "e\xcc\x81", "Ω", "x", "—"};

#define NPIECES (sizeof(pieces) / sizeof(pieces[0]))

/* Appends n random pieces to b; returns the code points added. */
static size_t rand_text(struct proto_buf *b, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd(NPIECES)];
        assert_int_equal(proto_buf_append(b, p, strlen(p)), 0);
        cps += proto_utf8_count(p, strlen(p));
    }
    return cps;
}

/* A NUL-terminated random text of n pieces (malloc'd). */
static char *rand_str(size_t n)
{
    struct proto_buf b = {0};
    rand_text(&b, n);
    assert_int_equal(proto_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

/* As rand_str, on one line and not blank at either end (a short string field). */
static char *rand_line(size_t n)
{
    struct proto_buf b = {0};
    assert_int_equal(proto_buf_append(&b, "T", 1), 0);
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd(NPIECES)];
        if (strcmp(p, "\n") != 0) {
            assert_int_equal(proto_buf_append(&b, p, strlen(p)), 0);
        }
    }
    assert_int_equal(proto_buf_append(&b, "t", 2), 0);
    return (char *)b.data;
}

/* A random edit of a text of cps code points into op: an insert, a delete or both at a
 * random place, of up to max code points (a large paste when max is large). Returns the
 * change in code points. */
static long rand_edit(struct proto_op *op, size_t cps, size_t max, bool prefer_insert)
{
    proto_op_init(op);
    size_t at = rnd((uint32_t)cps + 1);
    unsigned kind = rnd(prefer_insert ? 4 : 3); /* 0 insert, 1 delete, 2 replace, 3 insert */
    size_t del = 0;
    if (kind == 1 || kind == 2) {
        del = cps - at < max ? cps - at : max;
        del = del ? 1 + rnd((uint32_t)del) : 0;
    }
    if (del == 0 && kind == 1) {
        kind = 0;
    }
    assert_int_equal(proto_op_skip(op, at), 0);
    assert_int_equal(proto_op_delete(op, del), 0);
    long diff = -(long)del;
    if (kind != 1) {
        struct proto_buf b = {0};
        diff += (long)rand_text(&b, 1 + rnd((uint32_t)max));
        assert_int_equal(proto_op_insert(op, (const char *)b.data, b.len), 0);
        proto_buf_free(&b, 0);
    }
    return diff;
}

/* ---- 1. time travel at every seq of a random run ---- */

#define MAX_OBJS 64
#define RUN_MAX  400

/* What the run knows of one object: its id, its seq, and its text field as it stands. */
struct mobj {
    int64_t id;
    int64_t seq;
    char *text;
    size_t len; /* bytes */
    size_t cps; /* code points */
};

struct run {
    struct cli_conn *c;
    int64_t seq;
    struct mobj objs[PROTO_T_COUNT][MAX_OBJS];
    size_t n[PROTO_T_COUNT];
    struct mobj meeting; /* its abstract */
    int docs_made;
    int items_made; /* item numbers are unique: each new one has a top number of its own */
    int pastes;
    bool member[3];                      /* assoc, ed, view */
    struct proto_buf live[RUN_MAX + 1];  /* meeting.get as answered right after each seq */
    struct proto_buf early[RUN_MAX + 1]; /* meeting.get at the seq, before it was durable */
    int kinds[16];                       /* how many changes of each kind were made */
    int bursts;
};

static const char *const others[] = {"assoc", "ed", "view"};

static void keep(struct proto_buf *b, const msgpack_object *o)
{
    msgpack_packer pk;
    assert_null(b->data);
    msgpack_packer_init(&pk, b, proto_buf_msgpack_write);
    assert_int_equal(msgpack_pack_object(&pk, *o), 0);
}

/* Takes the answer of a change: it got the next seq. Returns the seq. */
static int64_t took_seq(struct run *r, struct cli_msg *m, const char *what)
{
    if (m->error) {
        fail_msg("%s: %s: %s", what, m->code, m->message);
    }
    int64_t seq = mint(m->result, "seq");
    assert_int_equal(seq, r->seq + 1);
    r->seq = seq;
    assert_true(seq <= RUN_MAX);
    return seq;
}

/* Keeps meeting.get of the live record: what a client saw at the run's seq. */
static void keep_live(struct run *r)
{
    struct cli_msg *g = call_ok(r->c, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_int_equal(mint(g->result, "seq"), r->seq);
    keep(&r->live[r->seq], g->result);
    cli_msg_free(g);
}

/* took_seq, and the live record at that seq kept. */
static int64_t took(struct run *r, struct cli_msg *m, const char *what)
{
    int64_t seq = took_seq(r, m, what);
    keep_live(r);
    return seq;
}

/* Sends a change packed by hand (params: one map) and takes its answer. */
static struct cli_msg *send_change(struct run *r, const char *method, struct proto_buf *p)
{
    struct cli_msg *m = call_raw(r->c, method, p);
    proto_buf_free(p, 0);
    return m;
}

static struct mobj *pick(struct run *r, enum proto_type t)
{
    return r->n[t] ? &r->objs[t][rnd((uint32_t)r->n[t])] : NULL;
}

static void forget(struct run *r, enum proto_type t, struct mobj *o)
{
    free(o->text);
    *o = r->objs[t][--r->n[t]];
}

static struct mobj *remember(struct run *r, enum proto_type t, int64_t id, int64_t seq,
                             const char *text)
{
    assert_true(r->n[t] < MAX_OBJS);
    struct mobj *o = &r->objs[t][r->n[t]++];
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->seq = seq;
    o->text = strdup(text ? text : "");
    o->len = strlen(o->text);
    o->cps = proto_utf8_count(o->text, o->len);
    return o;
}

/* The text field of a type ("body", "text", "abstract"), or NULL. */
static const char *text_field(enum proto_type t)
{
    switch (t) {
    case PROTO_T_ITEM:
        return "body";
    case PROTO_T_ACTION:
    case PROTO_T_DECISION:
        return "text";
    case PROTO_T_MEETING:
        return "abstract";
    default:
        return NULL;
    }
}

static void pack_head(msgpack_packer *pk, size_t n, const char *type)
{
    msgpack_pack_map(pk, n);
    proto_pack_cstr(pk, "meeting");
    proto_pack_cstr(pk, MEETING);
    proto_pack_cstr(pk, "type");
    proto_pack_cstr(pk, type);
}

static void pack_id(msgpack_packer *pk, enum proto_type t, int64_t id)
{
    proto_pack_cstr(pk, "id");
    if (t == PROTO_T_MEETING) {
        proto_pack_cstr(pk, MEETING);
    } else {
        msgpack_pack_int64(pk, id);
    }
}

/* A text.edit of o's text field with op, at the run's seq; o follows. */
static void edit_text(struct run *r, enum proto_type t, struct mobj *o, const struct proto_op *op)
{
    struct proto_buf p = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, proto_buf_msgpack_write);
    pack_head(&pk, 6, proto_type_info(t)->name);
    pack_id(&pk, t, o->id);
    proto_pack_cstr(&pk, "field");
    proto_pack_cstr(&pk, text_field(t));
    proto_pack_cstr(&pk, "base");
    msgpack_pack_int64(&pk, r->seq);
    proto_pack_cstr(&pk, "op");
    proto_op_encode(op, &pk);
    struct cli_msg *m = send_change(r, "text.edit", &p);
    o->seq = took(r, m, "text.edit");
    cli_msg_free(m);
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(proto_op_apply(o->text, o->len, op, 0, &out, &out_len), 0);
    free(o->text);
    o->text = out;
    o->len = out_len;
    o->cps = proto_utf8_count(out, out_len);
}

/* A random date of 2024 and a random time. */
static void rand_date(char out[11])
{
    snprintf(out, 11, "2024-%02u-%02u", 1 + rnd(12), 1 + rnd(28));
}

static void rand_time(char out[6])
{
    snprintf(out, 6, "%02u:%02u", 8 + rnd(10), rnd(4) * 15);
}

/* An item reference: a random item of the run, or nil. */
static void pack_itemref(struct run *r, msgpack_packer *pk)
{
    struct mobj *it = rnd(3) ? pick(r, PROTO_T_ITEM) : NULL;
    if (it) {
        msgpack_pack_int64(pk, it->id);
    } else {
        msgpack_pack_nil(pk);
    }
}

static void pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    proto_pack_cstr(pk, k);
    proto_pack_cstr(pk, v);
}

/* obj.create of type t with random fields; remembers the new object. */
static void create_obj(struct run *r, enum proto_type t)
{
    struct proto_buf p = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, proto_buf_msgpack_write);
    char date[11], t1[6], t2[6], num[32];
    char *s1 = rand_line(rnd(12)), *txt = rand_str(rnd(30));
    assert_true(t != PROTO_T_ACTION); /* create_action */
    pack_head(&pk, 3, proto_type_info(t)->name);
    proto_pack_cstr(&pk, "fields");
    switch (t) {
    case PROTO_T_ITEM:
        if (rnd(3) == 0) {
            snprintf(num, sizeof(num), "%d.%u", ++r->items_made, 1 + rnd(5));
        } else {
            snprintf(num, sizeof(num), "%d", ++r->items_made);
        }
        msgpack_pack_map(&pk, 3);
        pack_kv(&pk, "number", num);
        pack_kv(&pk, "title", s1);
        pack_kv(&pk, "body", txt);
        break;
    case PROTO_T_DOC:
        snprintf(num, sizeof(num), "TD-%d", ++r->docs_made);
        msgpack_pack_map(&pk, 5);
        pack_kv(&pk, "ref", num);
        pack_kv(&pk, "revision", rnd(2) ? "R1" : "");
        pack_kv(&pk, "title", s1);
        pack_kv(&pk, "status", rnd(2) ? "noted" : "agreed");
        proto_pack_cstr(&pk, "item");
        pack_itemref(r, &pk);
        break;
    case PROTO_T_DECISION:
        msgpack_pack_map(&pk, 3);
        pack_kv(&pk, "kind", rnd(2) ? "agreed" : "noted");
        pack_kv(&pk, "text", txt);
        proto_pack_cstr(&pk, "item");
        pack_itemref(r, &pk);
        break;
    case PROTO_T_INTERIM:
        rand_date(date);
        rand_time(t1);
        /* Some with days of their own, others the meeting's (a computed deadline). */
        if (rnd(2)) {
            msgpack_pack_map(&pk, 5);
            proto_pack_cstr(&pk, "deadline_days");
            msgpack_pack_int64(&pk, rnd(30));
        } else {
            msgpack_pack_map(&pk, 4);
        }
        pack_kv(&pk, "date", date);
        pack_kv(&pk, "start", t1);
        pack_kv(&pk, "mode", rnd(2) ? "virtual" : "physical");
        pack_kv(&pk, "topic", s1);
        break;
    case PROTO_T_SESSION:
        rand_date(date);
        rand_time(t1);
        rand_time(t2);
        if (strcmp(t2, t1) < 0) { /* a session ends after it starts */
            char tmp[6];
            memcpy(tmp, t1, sizeof(tmp));
            memcpy(t1, t2, sizeof(tmp));
            memcpy(t2, tmp, sizeof(tmp));
        } else if (strcmp(t2, t1) == 0) {
            memcpy(t2, "18:00", sizeof(t2)); /* rand_time is before 18:00 */
        }
        msgpack_pack_map(&pk, 5);
        pack_kv(&pk, "date", date);
        pack_kv(&pk, "start", t1);
        pack_kv(&pk, "end", t2);
        pack_kv(&pk, "kind", rnd(2) ? "session" : "drafting");
        pack_kv(&pk, "title", s1);
        break;
    case PROTO_T_PERSON:
        msgpack_pack_map(&pk, 3);
        pack_kv(&pk, "name", s1);
        pack_kv(&pk, "affiliation", "ITU");
        pack_kv(&pk, "role", rnd(2) ? "delegate" : "tsb");
        break;
    default:
        fail();
    }
    free(s1);
    struct cli_msg *m = send_change(r, "obj.create", &p);
    int64_t seq = took(r, m, "obj.create");
    remember(r, t, mint(m->result, "id"), seq, text_field(t) ? txt : NULL);
    cli_msg_free(m);
    free(txt);
}

/* An action's create, with a ref of its own or the next one of the meeting's prefix. */
static void create_action(struct run *r)
{
    struct proto_buf p = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, proto_buf_msgpack_write);
    char date[11], ref[32];
    char *owner = rand_line(rnd(8)), *txt = rand_str(rnd(30));
    bool own_ref = rnd(2);
    snprintf(ref, sizeof(ref), "X-%d", ++r->docs_made);
    rand_date(date);
    pack_head(&pk, 3, "action");
    proto_pack_cstr(&pk, "fields");
    msgpack_pack_map(&pk, own_ref ? 5 : 4);
    if (own_ref) {
        pack_kv(&pk, "ref", ref);
    }
    pack_kv(&pk, "to", "WP2");
    pack_kv(&pk, "owner", owner);
    pack_kv(&pk, "due", date);
    pack_kv(&pk, "text", txt);
    free(owner);
    struct cli_msg *m = send_change(r, "obj.create", &p);
    int64_t seq = took(r, m, "obj.create action");
    remember(r, PROTO_T_ACTION, mint(m->result, "id"), seq, txt);
    cli_msg_free(m);
    free(txt);
}

/* obj.update of o (type t) with the map fields_fmt packs (cli_pack format of one map). */
static void update_fields(struct run *r, enum proto_type t, struct mobj *o, const char *fmt, ...)
{
    struct proto_buf f = {0}, p = {0};
    va_list ap;
    va_start(ap, fmt);
    assert_int_equal(cli_vpackf(&f, fmt, ap), 0);
    va_end(ap);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, proto_buf_msgpack_write);
    pack_head(&pk, 4, proto_type_info(t)->name);
    pack_id(&pk, t, o->id);
    proto_pack_cstr(&pk, "fields");
    assert_int_equal(proto_buf_append(&p, f.data, f.len), 0);
    proto_buf_free(&f, 0);
    struct cli_msg *m = send_change(r, "obj.update", &p);
    o->seq = took(r, m, "obj.update");
    cli_msg_free(m);
}

static void delete_obj(struct run *r, enum proto_type t)
{
    struct mobj *o = pick(r, t);
    if (o == NULL || (t == PROTO_T_ITEM && r->n[t] < 2)) {
        return;
    }
    struct proto_buf p = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, proto_buf_msgpack_write);
    pack_head(&pk, 3, proto_type_info(t)->name);
    pack_id(&pk, t, o->id);
    struct cli_msg *m = send_change(r, "obj.delete", &p);
    took(r, m, "obj.delete");
    cli_msg_free(m);
    forget(r, t, o);
}

/* member.set or member.remove of one of the other accounts. */
static void member_change(struct run *r)
{
    static const char *const roles[] = {"viewer", "editor", "associate", "counsellor"};
    int u = (int)rnd(3);
    struct cli_msg *m;
    if (r->member[u] && rnd(3) == 0) {
        m = call(r->c, "member.remove", "{s:s, s:s}", "meeting", MEETING, "user", others[u]);
        r->member[u] = false;
    } else {
        m = call(r->c, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", others[u],
                 "role", roles[rnd(4)]);
        r->member[u] = true;
    }
    took(r, m, "member change");
    cli_msg_free(m);
}

/* A text edit of a random text field: an item's body mostly, an action's or a decision's
 * text, the meeting's abstract. A big one pastes 8,000 to 24,000 random pieces (16 to
 * 60 KB; five pastes in a run at most) or cuts most of a long text. */
static void text_step(struct run *r, bool big)
{
    unsigned k = rnd(20);
    enum proto_type t = k < 14   ? PROTO_T_ITEM
                        : k < 17 ? PROTO_T_ACTION
                        : k < 19 ? PROTO_T_DECISION
                                 : PROTO_T_MEETING;
    struct mobj *o = t == PROTO_T_MEETING ? &r->meeting : pick(r, t);
    bool cut = false;
    if (big && r->pastes > 0 && (r->pastes >= 5 || rnd(2))) {
        /* A cut goes to the longest body, where the pastes are. */
        for (size_t i = 0; i < r->n[PROTO_T_ITEM]; i++) {
            struct mobj *it = &r->objs[PROTO_T_ITEM][i];
            if (it->cps > 5000 && (!cut || it->cps > o->cps)) {
                t = PROTO_T_ITEM;
                o = it;
                cut = true;
            }
        }
    }
    if (o == NULL) {
        return;
    }
    struct proto_op op;
    if (!big || (!cut && r->pastes >= 5)) {
        rand_edit(&op, o->cps, 12, rnd(3) != 0);
        r->kinds[0]++;
    } else if (cut) {
        proto_op_init(&op);
        size_t from = rnd((uint32_t)(o->cps / 4));
        assert_int_equal(proto_op_skip(&op, from), 0);
        assert_int_equal(proto_op_delete(&op, o->cps - from - rnd(100)), 0);
        r->kinds[1]++;
    } else {
        struct proto_buf b = {0};
        rand_text(&b, 8000 + rnd(16000));
        proto_op_init(&op);
        assert_int_equal(proto_op_skip(&op, rnd((uint32_t)o->cps + 1)), 0);
        assert_int_equal(proto_op_insert(&op, (const char *)b.data, b.len), 0);
        proto_buf_free(&b, 0);
        r->pastes++;
        r->kinds[2]++;
    }
    if (!proto_op_is_noop(&op)) {
        edit_text(r, t, o, &op);
    }
    proto_op_free(&op);
}

/* obj.update of an item's body: the whole text replaced, which needs if_seq. */
static void replace_body(struct run *r)
{
    struct mobj *o = pick(r, PROTO_T_ITEM);
    if (o == NULL) {
        return;
    }
    char *text = rand_str(rnd(40));
    struct cli_msg *m =
        call(r->c, "obj.update", "{s:s, s:s, s:I, s:{s:s}, s:I}", "meeting", MEETING, "type",
             "item", "id", o->id, "fields", "body", text, "if_seq", o->seq);
    o->seq = took(r, m, "obj.update body");
    cli_msg_free(m);
    free(o->text);
    o->text = text;
    o->len = strlen(text);
    o->cps = proto_utf8_count(text, o->len);
    r->kinds[3]++;
}

/* One random update of an object of type t. */
static void update_step(struct run *r, enum proto_type t)
{
    struct mobj *o = t == PROTO_T_MEETING ? &r->meeting : pick(r, t);
    if (o == NULL) {
        return;
    }
    char *s = rand_line(rnd(10));
    char date[11], num[16];
    rand_date(date);
    snprintf(num, sizeof(num), "%d.%u", ++r->items_made, rnd(3) + 1);
    static const char *const astatus[] = {"open", "done", "dropped"};
    switch (t) {
    case PROTO_T_MEETING:
        if (rnd(2)) {
            update_fields(r, t, o, "{s:s, s:s}", "title", s, "venue", "Geneva");
        } else {
            update_fields(r, t, o, "{s:I}", "deadline_days", (int64_t)rnd(30));
        }
        break;
    case PROTO_T_ITEM:
        if (rnd(2)) {
            update_fields(r, t, o, "{s:s}", "title", s);
        } else {
            update_fields(r, t, o, "{s:s, s:s}", "number", num, "title", s);
        }
        break;
    case PROTO_T_DOC: {
        struct mobj *it = pick(r, PROTO_T_ITEM);
        switch (rnd(3)) {
        case 0:
            update_fields(r, t, o, "{s:s, s:s}", "title", s, "source", "Editor");
            break;
        case 1:
            update_fields(r, t, o, "{s:s}", "status", rnd(2) ? "noted" : "revised");
            break;
        default:
            if (it && rnd(3)) {
                update_fields(r, t, o, "{s:I}", "item", it->id);
            } else {
                update_fields(r, t, o, "{s:n}", "item");
            }
        }
        break;
    }
    case PROTO_T_ACTION:
        if (rnd(2)) {
            update_fields(r, t, o, "{s:s}", "status", astatus[rnd(3)]);
        } else {
            update_fields(r, t, o, "{s:s, s:s}", "owner", s, "due", date);
        }
        break;
    case PROTO_T_DECISION:
        update_fields(r, t, o, "{s:s}", "kind", rnd(2) ? "decided" : "noted");
        break;
    case PROTO_T_INTERIM:
        if (rnd(2)) {
            update_fields(r, t, o, "{s:s}", "date", date);
        } else if (rnd(2)) {
            update_fields(r, t, o, "{s:I}", "deadline_days", (int64_t)rnd(20));
        } else {
            update_fields(r, t, o, "{s:n}", "deadline_days");
        }
        break;
    case PROTO_T_SESSION:
        update_fields(r, t, o, "{s:s}", "title", s);
        break;
    case PROTO_T_PERSON:
        update_fields(r, t, o, "{s:s}", "note", s);
        break;
    default:
        fail();
    }
    free(s);
    r->kinds[4]++;
}

static struct cli_msg *wait_for(struct cli_conn *c, uint32_t msgid)
{
    struct cli_msg *m = NULL;
    int rc = cli_conn_wait(c, msgid, WAIT_MS, &m);
    if (rc != 0) {
        fail_msg("msgid %u: %s (%s)", (unsigned)msgid, proto_strerror(rc), cli_conn_error(c));
    }
    return m;
}

#define BURST_MAX 8

/* A burst: changes sent in one frame (item titles, new docs) and after them, in the same
 * frame, meeting.get at each seq they take but the last. Those reads are handled in the
 * loop turn of the changes, before their batch goes to the writer: the rebuild takes the
 * entries that are not durable yet from memory. */
static void burst(struct run *r)
{
    size_t n = 3 + rnd(BURST_MAX - 2);
    uint32_t ids[BURST_MAX], gets[BURST_MAX];
    struct mobj *updated[BURST_MAX];
    cli_conn_cork(r->c);
    for (size_t i = 0; i < n; i++) {
        updated[i] = rnd(2) ? pick(r, PROTO_T_ITEM) : NULL;
        char *title = rand_line(rnd(8));
        char ref[32];
        if (updated[i]) {
            assert_int_equal(cli_conn_sendf(r->c, &ids[i], "obj.update", "{s:s, s:s, s:I, s:{s:s}}",
                                            "meeting", MEETING, "type", "item", "id",
                                            updated[i]->id, "fields", "title", title),
                             0);
        } else {
            snprintf(ref, sizeof(ref), "TD-%d", ++r->docs_made);
            assert_int_equal(cli_conn_sendf(r->c, &ids[i], "obj.create", "{s:s, s:s, s:{s:s, s:s}}",
                                            "meeting", MEETING, "type", "doc", "fields", "ref", ref,
                                            "title", title),
                             0);
        }
        free(title);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        assert_int_equal(cli_conn_sendf(r->c, &gets[i], "meeting.get", "{s:s, s:I}", "meeting",
                                        MEETING, "at", r->seq + 1 + (int64_t)i),
                         0);
    }
    assert_int_equal(cli_conn_flush(r->c), 0);
    int64_t first = r->seq + 1;
    for (size_t i = 0; i < n; i++) {
        struct cli_msg *m = wait_for(r->c, ids[i]);
        int64_t seq = took_seq(r, m, "burst");
        if (updated[i]) {
            updated[i]->seq = seq;
        } else {
            remember(r, PROTO_T_DOC, mint(m->result, "id"), seq, NULL);
        }
        cli_msg_free(m);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        struct cli_msg *m = wait_for(r->c, gets[i]);
        if (cli_msg_is_error(m, "rate_limited")) {
            cli_msg_free(m); /* the server had too many reads: this one is not kept */
            continue;
        }
        if (m->error) {
            fail_msg("meeting.get at %lld in a burst: %s: %s", (long long)(first + (int64_t)i),
                     m->code, m->message);
        }
        assert_int_equal(mint(m->result, "seq"), first + (int64_t)i);
        keep(&r->early[first + (int64_t)i], m->result);
        cli_msg_free(m);
    }
    keep_live(r);
    r->bursts++;
}

/* One random change; most are small text edits, as in a meeting. */
static void step(struct run *r)
{
    static const enum proto_type rare[] = {PROTO_T_DECISION, PROTO_T_INTERIM, PROTO_T_SESSION,
                                           PROTO_T_PERSON};
    unsigned k = rnd(100);
    if (k < 40) {
        text_step(r, false);
    } else if (k < 42) {
        text_step(r, true);
    } else if (k < 44) {
        replace_body(r);
    } else if (k < 49) {
        create_obj(r, PROTO_T_ITEM);
    } else if (k < 54) {
        create_obj(r, PROTO_T_DOC);
    } else if (k < 58) {
        create_action(r);
    } else if (k < 62) {
        create_obj(r, rare[rnd(4)]);
    } else if (k < 66) {
        update_step(r, PROTO_T_ITEM);
    } else if (k < 70) {
        update_step(r, PROTO_T_DOC);
    } else if (k < 74) {
        update_step(r, PROTO_T_ACTION);
    } else if (k < 76) {
        update_step(r, PROTO_T_MEETING);
    } else if (k < 80) {
        update_step(r, rare[rnd(4)]);
    } else if (k < 82) {
        delete_obj(r, PROTO_T_ITEM);
    } else if (k < 85) {
        delete_obj(r, PROTO_T_DOC);
    } else if (k < 87) {
        delete_obj(r, PROTO_T_ACTION);
    } else if (k < 90) {
        delete_obj(r, rare[rnd(4)]);
    } else if (k < 96) {
        member_change(r);
    } else if (r->seq + BURST_MAX < 300) {
        burst(r);
    }
}

/* The last line of text[0..len) starts at the returned offset (the text ends with '\n'). */
static size_t last_line(const char *text, size_t len)
{
    assert_true(len > 0 && text[len - 1] == '\n');
    size_t i = len - 1;
    while (i > 0 && text[i - 1] != '\n') {
        i--;
    }
    return i;
}

/* report.export at s in fmt equals the export of the record rebuilt from the log's start,
 * but for its last line, which carries the head signed with the host key. */
static void check_export(struct run *r, struct db *db, const uint8_t pk[PROTO_KEY_BYTES], int64_t s,
                         enum srv_report_format fmt)
{
    static const char *const fname[] = {"text", "markdown", "html"};
    struct cli_msg *m = call_ok(r->c, "report.export", "{s:s, s:s, s:I}", "meeting", MEETING,
                                "format", fname[fmt], "at", s);
    assert_int_equal(mint(m->result, "seq"), s);
    const msgpack_object *c = mget(m->result, "content");
    assert_non_null(c);
    assert_int_equal(c->type, MSGPACK_OBJECT_STR);
    const char *got = c->via.str.ptr;
    size_t glen = c->via.str.size;

    uint8_t head[DB_HASH_BYTES];
    char hex[2 * DB_HASH_BYTES + 1];
    struct srv_rec *rec = rebuild(db, NULL, s, head, NULL);
    proto_hex(head, DB_HASH_BYTES, hex);
    struct proto_buf want = {0};
    assert_int_equal(srv_report_export(rec, fmt, s, hex, NULL, &want), 0);
    srv_rec_free(rec);
    assert_int_equal(proto_buf_append(&want, "", 1), 0);
    const char *w = (const char *)want.data;
    size_t wlen = want.len - 1;

    size_t wl = last_line(w, wlen), gl = last_line(got, glen);
    if (wl != gl || memcmp(w, got, wl) != 0) {
        size_t i = 0;
        while (i < wl && i < gl && w[i] == got[i]) {
            i++;
        }
        fail_msg("report.export %s at %lld: differs from the log's record at byte %zu of %zu",
                 fname[fmt], (long long)s, i, wl);
    }
    /* The last line: the one expected, with ", signed SIG" after the head's hash. */
    const char *hp = strstr(w + wl, hex);
    assert_non_null(hp);
    size_t pre = (size_t)(hp - w) + strlen(hex);
    static const char mark[] = ", signed ";
    assert_true(glen > pre + strlen(mark));
    assert_memory_equal(got + wl, w + wl, pre - wl);
    assert_memory_equal(got + pre, mark, strlen(mark));
    const char *sig64 = got + pre + strlen(mark);
    size_t n64 = 0;
    while (sig64 + n64 < got + glen && sig64[n64] != '<' && sig64[n64] != '\n') {
        n64++;
    }
    assert_int_equal(glen - (size_t)(sig64 + n64 - got), wlen - pre);
    assert_memory_equal(sig64 + n64, w + pre, wlen - pre);
    uint8_t sig[crypto_sign_BYTES];
    size_t siglen = 0;
    assert_int_equal(sodium_base642bin(sig, sizeof(sig), sig64, n64, NULL, &siglen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(siglen, sizeof(sig));
    struct proto_buf msg = {0};
    srv_audit_checkpoint_msg(MEETING, s, head, &msg);
    assert_int_equal(crypto_sign_verify_detached(sig, msg.data, msg.len, pk), 0);
    proto_buf_free(&msg, 0);
    proto_buf_free(&want, 0);
    cli_msg_free(m);
}

/* meeting.get at s over the wire, the log replayed here from its start and the record
 * rebuilt here from the snapshots are one record: want gets it packed (free it with
 * packed_free), *from the seq of the snapshot the rebuild started from. */
static void travel_one(struct cli_conn *c, struct db *db, const uint8_t pk[PROTO_KEY_BYTES],
                       int64_t s, struct packed *want, int64_t *from)
{
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s, s:I}", "meeting", MEETING, "at", s);
    assert_int_equal(mint(m->result, "seq"), s);
    uint8_t h0[DB_HASH_BYTES], h1[DB_HASH_BYTES];
    struct srv_rec *scratch = rebuild(db, NULL, s, h0, NULL);
    struct srv_rec *snap = rebuild(db, pk, s, h1, from);
    size_t shown = 0;
    size_t nd = srv_rec_diff(scratch, snap, print_diff, &shown);
    if (nd != 0) {
        fail_msg("at seq %lld the log from its start and from the snapshot at %lld differ "
                 "(%zu differences)",
                 (long long)s, (long long)*from, nd);
    }
    assert_memory_equal(h0, h1, DB_HASH_BYTES);
    packed_rec(scratch, want);
    if (!mp_equal(m->result, &want->up.data, "meeting.get")) {
        fail_msg("at seq %lld meeting.get over the wire differs from the log replayed from its "
                 "start: %s",
                 (long long)s, why);
    }
    srv_rec_free(scratch);
    srv_rec_free(snap);
    cli_msg_free(m);
}

/* travel_one at the seqs from `first` to `last`, every `stride`th, and at last. Returns how
 * many rebuilds started from a snapshot. */
static int64_t check_travel(struct cli_conn *c, int64_t first, int64_t last, int64_t stride)
{
    struct db *db = open_ro();
    uint8_t pk[PROTO_KEY_BYTES];
    host_pk(pk);
    int64_t n = 0, s = first;
    for (int i = 0; i < 100000; i++) {
        struct packed want;
        int64_t from = 0;
        travel_one(c, db, pk, s, &want, &from);
        packed_free(&want);
        n += from > 0;
        if (s >= last) {
            break;
        }
        s = s + stride < last ? s + stride : last;
    }
    db_close(db);
    return n;
}

/* For every seq: meeting.get at it over the wire, the log replayed from its start here, the
 * record rebuilt here from the snapshots, and what meeting.get answered live at that seq are
 * one record. */
static void check_every_seq(struct run *r)
{
    struct db *db = open_ro();
    uint8_t pk[PROTO_KEY_BYTES];
    host_pk(pk);
    int64_t from_snapshot = 0, early_seen = 0;
    for (int64_t s = 1; s <= r->seq; s++) {
        struct packed want, live = {.buf = r->live[s]};
        int64_t from = 0;
        travel_one(r->c, db, pk, s, &want, &from);
        /* A snapshot comes once 7 changes passed the last one (in the loop turn of the 7th,
         * or of a burst's last change): the rebuild starts less than 7 + BURST_MAX behind. */
        if (s >= 7 + BURST_MAX) {
            if (from == 0 || s - from >= 7 + BURST_MAX) {
                fail_msg("the rebuild at seq %lld started from %lld", (long long)s,
                         (long long)from);
            }
        }
        from_snapshot += from > 0;
        /* The seqs of a burst but its last were not read live; they were read at once. */
        if (live.buf.data) {
            packed_unpack(&live);
            if (!mp_equal(&live.up.data, &want.up.data, "live")) {
                fail_msg("at seq %lld what meeting.get answered then differs from the log "
                         "replayed from its start: %s",
                         (long long)s, why);
            }
            msgpack_unpacked_destroy(&live.up);
        }
        if (r->early[s].data) {
            struct packed early = {.buf = r->early[s]};
            packed_unpack(&early);
            if (!mp_equal(&early.up.data, &want.up.data, "early")) {
                fail_msg("at seq %lld meeting.get at it before it was durable differs from the "
                         "log replayed from its start: %s",
                         (long long)s, why);
            }
            msgpack_unpacked_destroy(&early.up);
            early_seen++;
        }
        packed_free(&want);
    }
    int64_t nsnap = sql_int("SELECT count(*) FROM snapshots WHERE meeting = '" MEETING "'");
    fprintf(stderr,
            "time travel: %lld seqs checked, %lld from a snapshot, %lld snapshots, %lld read in "
            "%d bursts before they were durable\n",
            (long long)r->seq, (long long)from_snapshot, (long long)nsnap, (long long)early_seen,
            r->bursts);
    /* One every 7 changes, or after a burst that passes 7: at least one per 7 + BURST_MAX. */
    assert_true(nsnap >= r->seq / (7 + BURST_MAX));

    /* Exports at a few seqs, in each format: the first, around the first snapshot, the
     * middle, the end. */
    const int64_t at[] = {1, 6, 7, 8, r->seq / 2, r->seq - 1, r->seq};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        check_export(r, db, pk, at[i], (enum srv_report_format)(i % 3));
    }
    db_close(db);
}

static void stop_ok(struct ts_server *s)
{
    char *log = NULL;
    int st = ts_stop_log(s, &log);
    if (st != 0) {
        fprintf(stderr, "%s", log ? log : "");
    }
    free(log);
    assert_int_equal(st, 0);
}

static void test_time_travel_every_seq(void **state)
{
    (void)state;
    static const char *const args[] = {"--snapshot-every", "7", NULL};
    rng_seed("time travel", 20240611);
    assert_int_equal(ts_start_args(&S, names, MEETING, args), 0);
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->c = ts_login(&S, "op");
    assert_non_null(r->c);
    r->meeting.text = strdup("");
    /* seq 1 is the meeting's create. */
    struct cli_msg *g = call_ok(r->c, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_int_equal(mint(g->result, "seq"), 1);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r->live[1], proto_buf_msgpack_write);
    assert_int_equal(msgpack_pack_object(&pk, *g->result), 0);
    cli_msg_free(g);
    r->seq = 1;
    update_fields(r, PROTO_T_MEETING, &r->meeting, "{s:s, s:s}", "action_prefix", "RG-T", "title",
                  "Snapshots");
    create_obj(r, PROTO_T_ITEM);
    create_obj(r, PROTO_T_ITEM);
    while (r->seq < 300) {
        step(r);
    }
    fprintf(stderr,
            "time travel: %lld changes (%d small text edits, %d cuts, %d pastes, %d body "
            "replacements, %d updates)\n",
            (long long)r->seq, r->kinds[0], r->kinds[1], r->kinds[2], r->kinds[3], r->kinds[4]);
    check_every_seq(r);

    for (int t = 0; t < PROTO_T_COUNT; t++) {
        for (size_t i = 0; i < r->n[t]; i++) {
            free(r->objs[t][i].text);
        }
    }
    free(r->meeting.text);
    for (int s = 0; s <= RUN_MAX; s++) {
        proto_buf_free(&r->live[s], 0);
        proto_buf_free(&r->early[s], 0);
    }
    cli_conn_close(r->c);
    free(r);
    stop_ok(&S);
}

/* ---- 2. kills between log writes and row refreshes ---- */

/* One client streaming small edits to one item's body, one in flight, through cli_text;
 * and what every acknowledged edit makes of the body. */
struct stream {
    struct cli_conn *c;
    int64_t item;
    struct cli_text t;
    char *acked; /* the body as the acknowledged edits leave it */
    size_t acked_len;
    size_t cps;             /* code points of t.text */
    size_t target;          /* the size (code points) the edits keep the body around */
    struct proto_op flying; /* the op in flight, as made */
    bool has_flying;
    int64_t seen; /* acknowledgements already applied to acked */
};

/* Starts the replica from the live body. */
static void stream_init(struct stream *st)
{
    size_t len = 0;
    int64_t seq = 0;
    char *body = fetch_body(st->c, st->item, &len, &seq);
    assert_int_equal(cli_text_init(&st->t, MEETING, "item", st->item, NULL, "body", body, len, seq),
                     0);
    st->acked = body;
    st->acked_len = len;
    st->cps = proto_utf8_count(body, len);
    st->has_flying = false;
    st->seen = 0;
}

static void stream_free(struct stream *st)
{
    cli_text_free(&st->t);
    free(st->acked);
    st->acked = NULL;
    if (st->has_flying) {
        proto_op_free(&st->flying);
        st->has_flying = false;
    }
}

/* Brings acked up to the replica's acknowledgements. */
static void stream_note(struct stream *st)
{
    if (st->t.acked == st->seen) {
        return;
    }
    assert_int_equal(st->t.acked, st->seen + 1); /* one in flight at most */
    assert_true(st->has_flying);
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(proto_op_apply(st->acked, st->acked_len, &st->flying, 0, &out, &out_len), 0);
    free(st->acked);
    st->acked = out;
    st->acked_len = out_len;
    proto_op_free(&st->flying);
    st->has_flying = false;
    st->seen = st->t.acked;
}

/* A small edit (at most 6 code points in or out) sent at once. */
static void stream_edit(struct stream *st)
{
    struct proto_op op;
    long d = rand_edit(&op, st->cps, 6, st->cps < st->target);
    if (proto_op_is_noop(&op)) {
        proto_op_free(&op);
        return;
    }
    assert_int_equal(cli_text_local(&st->t, &op), 0);
    st->cps = (size_t)((long)st->cps + d);
    st->flying = op;
    st->has_flying = true;
    assert_int_equal(cli_text_flush(&st->t, st->c), 0);
    assert_true(st->t.inflight);
}

/* Takes one message into the replica. */
static void stream_take(struct stream *st, struct cli_msg *m)
{
    int h = cli_text_handle(&st->t, st->c, m);
    if (h < 0) {
        fail_msg("an edit was refused: %s", st->t.error);
    }
    cli_msg_free(m);
    stream_note(st);
}

/* Streams edits until `acks` more are acknowledged (ms < 0; within 30 s), or for ms. */
static void stream_run(struct stream *st, int64_t acks, int ms)
{
    int64_t want = st->t.acked + acks;
    int64_t end = mono_ms() + (ms >= 0 ? ms : 30000);
    for (int i = 0; i < 1000000; i++) {
        if (ms < 0 && st->t.acked >= want) {
            return;
        }
        if (cli_text_idle(&st->t)) {
            stream_edit(st);
        }
        int64_t left = end - mono_ms();
        if (left <= 0) {
            if (ms < 0) {
                fail_msg("%lld acknowledgements in 30 s, %lld wanted", (long long)st->t.acked,
                         (long long)want);
            }
            return;
        }
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(st->c, (int)left, &m);
        if (rc == PROTO_ETIMEDOUT) {
            continue;
        }
        if (rc != 0) {
            fail_msg("stream: %s (%s)", proto_strerror(rc), cli_conn_error(st->c));
        }
        stream_take(st, m);
    }
}

/* Waits until nothing is in flight. */
static void stream_settle(struct stream *st)
{
    for (int i = 0; i < 100 && !cli_text_idle(&st->t); i++) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(st->c, WAIT_MS, &m);
        if (rc != 0) {
            fail_msg("settle: %s (%s)", proto_strerror(rc), cli_conn_error(st->c));
        }
        stream_take(st, m);
    }
    assert_true(cli_text_idle(&st->t));
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* After a restart: the body holds every acknowledged edit (and the one in flight or not);
 * the edit in flight is sent again with its cid, after a replay of what the log holds
 * since the replica's seq (replay) or straight away (the server must know the cid); then
 * the body is the replica's, each edit once. Returns whether the server had the edit in
 * flight already. */
static bool stream_reconnect(struct stream *st, int kill_no, bool replay)
{
    st->c = ts_login(&S, "op");
    assert_non_null(st->c);
    size_t len = 0;
    char *body = fetch_body(st->c, st->item, &len, NULL);
    bool is_acked = same(body, len, st->acked, st->acked_len);
    bool is_all = st->t.inflight && same(body, len, st->t.text, st->t.len);
    if (!is_acked && !is_all) {
        fail_msg("after kill %d the body (%zu bytes) is neither the %lld acknowledged edits "
                 "(%zu bytes) nor those and the one in flight (%zu bytes)",
                 kill_no, len, (long long)st->t.acked, st->acked_len, st->t.len);
    }
    free(body);
    if (replay) {
        struct cli_msg *m = call_ok(st->c, "meeting.subscribe", "{s:s, s:I}", "meeting", MEETING,
                                    "since", st->t.seq);
        cli_msg_free(m);
        while (cli_conn_pending(st->c) > 0) {
            m = NULL;
            assert_int_equal(cli_conn_next(st->c, 0, &m), 0);
            stream_take(st, m);
        }
    }
    assert_int_equal(cli_text_resend(&st->t, st->c), 0);
    stream_settle(st);
    body = fetch_body(st->c, st->item, &len, NULL);
    if (!same(body, len, st->t.text, st->t.len) || !same(body, len, st->acked, st->acked_len)) {
        fail_msg("after kill %d and the resend the body (%zu bytes) is not the replica "
                 "(%zu bytes, %lld edits): an edit lost or applied twice",
                 kill_no, len, st->t.len, (long long)st->t.acked);
    }
    free(body);
    return is_all && !is_acked;
}

/* Fills item id's body with about `bytes` of random text in one edit. */
static void fill_body(struct cli_conn *c, int64_t id, size_t bytes)
{
    struct proto_buf b = {0};
    while (b.len < bytes) {
        rand_text(&b, 1000);
    }
    assert_int_equal(proto_buf_append(&b, "", 1), 0);
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s}", "meeting", MEETING);
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    m = call_ok(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", MEETING, "type",
                "item", "id", id, "field", "body", "base", seq, "op", (const char *)b.data);
    cli_msg_free(m);
    proto_buf_free(&b, 0);
}

static int64_t create_item(struct cli_conn *c, const char *title)
{
    static int made = 0; /* item numbers are unique in a meeting */
    char number[16];
    snprintf(number, sizeof(number), "%d", ++made);
    struct cli_msg *m = call_ok(c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                                "type", "item", "fields", "number", number, "title", title);
    int64_t id = mint(m->result, "id");
    cli_msg_free(m);
    return id;
}

static void audit_verify_ok(void)
{
    static const char *const verify[] = {"audit", "verify", NULL};
    int rc = ts_conferd(&S, NULL, verify);
    if (rc != 0) {
        char *log = ts_read_log(&S);
        fprintf(stderr, "%s", log);
        free(log);
    }
    assert_int_equal(rc, 0);
}

#define KILLS       40
#define KILLS_MIN   20
#define KILL_BUDGET 75000 /* ms for all the kills */

static void test_kills_between_log_and_rows(void **state)
{
    (void)state;
    static const char *const args[] = {"--snapshot-every", "5", "--idle-after", "50", NULL};
    rng_seed("kills", 424242);
    assert_int_equal(ts_start_args(&S, names, MEETING, args), 0);
    struct stream st = {0};
    st.c = ts_login(&S, "op");
    assert_non_null(st.c);
    st.item = create_item(st.c, "typed while the server dies");
    fill_body(st.c, st.item, 200 * 1024);
    stream_init(&st);
    st.target = st.cps;
    fprintf(stderr, "kills: body of %zu bytes, %zu code points\n", st.acked_len, st.cps);

    int64_t t0 = mono_ms();
    int kills = 0, behind = 0, applied_unacked = 0;
    for (; kills < KILLS && mono_ms() - t0 < KILL_BUDGET; kills++) {
        stream_run(&st, 1 + rnd(30), -1);
        if (rnd(3) == 0) {
            /* A pause past --idle-after: the kill lands around an idle refresh. */
            sleep_ms(30 + (int)rnd(60));
        }
        stream_run(&st, 0, (int)rnd(31));
        ts_kill(&S);
        cli_conn_free(st.c);
        st.c = NULL;
        int64_t rs = rows_seq(), head = log_head();
        assert_true(rs >= 1);
        assert_true(rs <= head);
        behind += rs < head;
        assert_int_equal(ts_restart(&S), 0);
        applied_unacked += stream_reconnect(&st, kills, kills % 2 == 0);
    }
    fprintf(stderr,
            "kills: %d in %lld ms, %d with the rows behind the log, %d edits applied but not "
            "acknowledged, %lld edits acknowledged\n",
            kills, (long long)(mono_ms() - t0), behind, applied_unacked, (long long)st.t.acked);
    assert_true(kills >= KILLS_MIN);
    /* Most kills must land between a log write and a row refresh, or this tests nothing. */
    assert_true(behind >= kills / 4);
    /* Time travel over the log and the snapshots that the killed servers left. */
    int64_t head = log_head();
    int64_t t1 = mono_ms();
    int64_t snapped = check_travel(st.c, 1, head, 23);
    snapped += check_travel(st.c, head > 40 ? head - 40 : 1, head, 1);
    fprintf(stderr, "kills: time travel checked in %lld ms (%lld from a snapshot)\n",
            (long long)(mono_ms() - t1), (long long)snapped);

    cli_conn_close(st.c);
    assert_int_equal(graceful_stop(&S), 0);
    head = log_head();
    assert_int_equal(rows_seq(), head);
    /* Every acknowledged edit is in the log once, under its cid. */
    assert_int_equal(sql_int("SELECT count(*) FROM audit WHERE meeting = '" MEETING
                             "' AND kind = 'text' AND cid IS NOT NULL"),
                     st.t.acked);
    assert_int_equal(sql_int("SELECT count(DISTINCT cid) FROM audit WHERE meeting = '" MEETING
                             "' AND kind = 'text' AND cid IS NOT NULL"),
                     st.t.acked);
    audit_verify_ok();
    stream_free(&st);
}

/* ---- 3. a restart rebuilds from the newest snapshot and the log after it ---- */

static void test_restart_replays_after_rows_seq(void **state)
{
    (void)state;
    static const char *const args[] = {"--snapshot-every", "5", "--idle-after", "600000", NULL};
    rng_seed("restart", 99);
    assert_int_equal(ts_start_args(&S, names, MEETING, args), 0);
    struct stream st = {0};
    st.c = ts_login(&S, "op");
    assert_non_null(st.c);
    st.item = create_item(st.c, "edited");
    struct cli_msg *m = call_ok(st.c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                                "type", "doc", "fields", "ref", "TD-1", "title", "from the log");
    int64_t doc = mint(m->result, "id");
    cli_msg_free(m);
    fill_body(st.c, st.item, 20 * 1024);
    stream_init(&st);
    st.target = st.cps;
    /* 1 (create) + 3 + 13 edits: the rows stand at the last snapshot, 15. */
    stream_run(&st, 13, -1);
    stream_settle(&st);
    cli_conn_close(st.c);
    int64_t head = log_head();
    assert_int_equal(head, 17);
    assert_true(rows_seq() < head);

    /* A graceful stop brings the rows to the head, with a snapshot there. */
    assert_int_equal(graceful_stop(&S), 0);
    assert_int_equal(rows_seq(), head);
    assert_int_equal(
        sql_int("SELECT coalesce(max(seq), 0) FROM snapshots WHERE meeting = '" MEETING "'"), head);

    /* kill -9 mid-stream until the rows are caught behind the log. */
    int64_t rs = 0;
    for (int attempt = 0; attempt < 10; attempt++) {
        assert_int_equal(ts_restart(&S), 0);
        st.c = ts_login(&S, "op");
        assert_non_null(st.c);
        stream_free(&st);
        stream_init(&st);
        stream_run(&st, 1 + rnd(12), -1);
        stream_run(&st, 0, (int)rnd(20));
        ts_kill(&S);
        cli_conn_free(st.c);
        st.c = NULL;
        rs = rows_seq();
        head = log_head();
        assert_true(rs <= head);
        if (rs < head) {
            break;
        }
    }
    fprintf(stderr, "restart: rows at %lld, log at %lld\n", (long long)rs, (long long)head);
    assert_true(rs < head);

    /* The restarted server's record is the log replayed from its start to the head. */
    struct db *db = open_ro();
    uint8_t h[DB_HASH_BYTES];
    struct srv_rec *scratch = rebuild(db, NULL, head, h, NULL);
    db_close(db);
    assert_int_equal(ts_restart(&S), 0);
    struct cli_conn *c = ts_login(&S, "op");
    assert_non_null(c);
    m = call_ok(c, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_int_equal(mint(m->result, "seq"), head);
    struct packed want;
    packed_rec(scratch, &want);
    if (!mp_equal(m->result, &want.up.data, "meeting.get")) {
        fail_msg("after the restart meeting.get differs from the log replayed from its start: %s",
                 why);
    }
    packed_free(&want);
    srv_rec_free(scratch);
    cli_msg_free(m);
    /* And so is the record at every seq, through the snapshots of every run before. */
    check_travel(c, 1, head, 1);
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    assert_int_equal(rows_seq(), log_head());
    audit_verify_ok();

    /* A row changed behind the server's back is not what the next load shows: the record
     * is rebuilt from the signed snapshot and the log, never from the rows. audit verify
     * tells the row from the log. */
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE docs SET title = 'changed in the rows' WHERE id = %lld",
             (long long)doc);
    sql_exec(sql);
    assert_int_equal(ts_restart(&S), 0);
    c = ts_login(&S, "op");
    assert_non_null(c);
    m = call_ok(c, "meeting.get", "{s:s}", "meeting", MEETING);
    const msgpack_object *docs = mget(m->result, "docs");
    assert_non_null(docs);
    assert_int_equal(docs->via.array.size, 1);
    const msgpack_object *title = mget(&docs->via.array.ptr[0], "title");
    assert_non_null(title);
    assert_int_equal(title->type, MSGPACK_OBJECT_STR);
    assert_false(title->via.str.size == strlen("changed in the rows") &&
                 memcmp(title->via.str.ptr, "changed in the rows", title->via.str.size) == 0);
    cli_msg_free(m);
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    static const char *const verify[] = {"audit", "verify", NULL};
    assert_int_equal(ts_conferd(&S, NULL, verify), 1);
    stream_free(&st);
}

/* The record at the head is the log replayed from its start: meeting.get over the wire,
 * and member.list against its members. */
static void assert_head_is_log(struct cli_conn *c, const char *when)
{
    int64_t head = log_head();
    struct db *db = open_ro();
    uint8_t h[DB_HASH_BYTES];
    struct srv_rec *scratch = rebuild(db, NULL, head, h, NULL);
    db_close(db);
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_int_equal(mint(m->result, "seq"), head);
    struct packed want;
    packed_rec(scratch, &want);
    bool objects = mp_equal(m->result, &want.up.data, "meeting.get");
    char objects_why[sizeof(why)];
    snprintf(objects_why, sizeof(objects_why), "%s", why);
    packed_free(&want);
    cli_msg_free(m);

    m = call_ok(c, "member.list", "{s:s}", "meeting", MEETING);
    const msgpack_object *list = m->result;
    bool members = list->type == MSGPACK_OBJECT_ARRAY && list->via.array.size == scratch->nmembers;
    for (size_t i = 0; members && i < scratch->nmembers; i++) {
        const msgpack_object *mb = &list->via.array.ptr[i];
        const msgpack_object *u = mget(mb, "user"), *role = mget(mb, "role");
        struct srv_member *want_mb = NULL;
        if (u && u->type == MSGPACK_OBJECT_STR && u->via.str.size <= PROTO_NAME_MAX) {
            char name[PROTO_NAME_MAX + 1];
            memcpy(name, u->via.str.ptr, u->via.str.size);
            name[u->via.str.size] = '\0';
            want_mb = srv_rec_member(scratch, name);
        }
        members = want_mb && role && role->type == MSGPACK_OBJECT_STR &&
                  role->via.str.size == strlen(want_mb->role) &&
                  memcmp(role->via.str.ptr, want_mb->role, role->via.str.size) == 0;
    }
    if (!members) {
        fprintf(stderr, "%s: member.list has %u members, the log %zu:", when,
                (unsigned)list->via.array.size, scratch->nmembers);
        for (size_t i = 0; i < scratch->nmembers; i++) {
            fprintf(stderr, " %s=%s", scratch->members[i].user, scratch->members[i].role);
        }
        fprintf(stderr, "\n");
    }
    cli_msg_free(m);
    srv_rec_free(scratch);
    if (!objects || !members) {
        fail_msg("%s: the record is not the log replayed from its start: %s%s", when,
                 objects ? "" : objects_why, members ? "" : " (and the members differ)");
    }
}

/* Deletes and membership changes that only the log holds when the server dies: the load
 * replays them onto the rows, and the next refresh of the rows must carry them too (the
 * rows of deleted objects removed, the item links a deleted item cleared, the members as
 * the log left them), or the load after it brings the old rows back. */
static void test_crash_after_deletes_and_members(void **state)
{
    (void)state;
    static const char *const args[] = {"--snapshot-every", "1000", "--idle-after", "600000", NULL};
    assert_int_equal(ts_start_args(&S, names, MEETING, args), 0);
    struct cli_conn *c = ts_login(&S, "op");
    assert_non_null(c);
    int64_t item = create_item(c, "to be deleted");
    struct cli_msg *m =
        call_ok(c, "obj.create", "{s:s, s:s, s:{s:s, s:s, s:I}}", "meeting", MEETING, "type", "doc",
                "fields", "ref", "TD-1", "title", "on the deleted item", "item", item);
    cli_msg_free(m);
    m = call_ok(c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING, "type", "doc",
                "fields", "ref", "TD-2", "title", "to be deleted");
    int64_t doc2 = mint(m->result, "id");
    cli_msg_free(m);
    cli_msg_free(call_ok(c, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "view",
                         "role", "viewer"));
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    assert_int_equal(rows_seq(), log_head());

    /* Only the log: an item and a doc deleted, a member removed, another added. */
    assert_int_equal(ts_restart(&S), 0);
    c = ts_login(&S, "op");
    assert_non_null(c);
    cli_msg_free(call_ok(c, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "item",
                         "id", item));
    cli_msg_free(
        call_ok(c, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "doc", "id", doc2));
    cli_msg_free(call_ok(c, "member.remove", "{s:s, s:s}", "meeting", MEETING, "user", "view"));
    cli_msg_free(call_ok(c, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ed",
                         "role", "editor"));
    assert_head_is_log(c, "before the kill");
    cli_conn_free(c);
    ts_kill(&S);
    assert_true(rows_seq() < log_head());

    /* The load replays them. */
    assert_int_equal(ts_restart(&S), 0);
    c = ts_login(&S, "op");
    assert_non_null(c);
    assert_head_is_log(c, "after the kill");
    cli_conn_close(c);
    /* The load's replay is in memory only; the refresh that follows it (at the first loop
     * turn: a loaded meeting counts as idle) marks the rows at the head, so they must hold
     * what the replay did: the next load stands on them. */
    assert_int_equal(graceful_stop(&S), 0);
    assert_int_equal(rows_seq(), log_head());
    assert_int_equal(ts_restart(&S), 0);
    c = ts_login(&S, "op");
    assert_non_null(c);
    assert_head_is_log(c, "after the stop that followed");
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    audit_verify_ok();
}

/* The same replay runs when a batch fails and its meeting is reloaded from the database
 * (rows, then the log after rows_seq): a delete that only the log held must still reach the
 * rows at the next refresh. */
static void test_reload_after_failed_batch_keeps_deletes(void **state)
{
    (void)state;
    static const char *const args[] = {"--snapshot-every", "1000", "--idle-after", "600000", NULL};
    assert_int_equal(ts_start_args(&S, names, MEETING, args), 0);
    struct cli_conn *c = ts_login(&S, "op");
    assert_non_null(c);
    int64_t item = create_item(c, "to be deleted");
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    assert_int_equal(ts_restart(&S), 0);
    c = ts_login(&S, "op");
    assert_non_null(c);
    cli_msg_free(call_ok(c, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "item",
                         "id", item));
    assert_true(rows_seq() < log_head());
    /* A change the database refuses (a trigger of this test's): its batch fails, and the
     * meeting is reloaded. */
    sql_exec("CREATE TRIGGER test_refuse BEFORE INSERT ON audit WHEN instr(NEW.payload, "
             "CAST('FAIL' AS BLOB)) > 0 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");
    struct cli_msg *m = call(c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                             "type", "doc", "fields", "ref", "FAIL", "title", "lost");
    assert_true(cli_msg_is_error(m, "unavailable"));
    cli_msg_free(m);
    sql_exec("DROP TRIGGER test_refuse");
    assert_head_is_log(c, "after the reload");
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    assert_int_equal(rows_seq(), log_head());
    assert_int_equal(ts_restart(&S), 0);
    c = ts_login(&S, "op");
    assert_non_null(c);
    assert_head_is_log(c, "after the stop that followed");
    cli_conn_close(c);
    assert_int_equal(graceful_stop(&S), 0);
    audit_verify_ok();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_time_travel_every_seq, teardown),
        cmocka_unit_test_teardown(test_kills_between_log_and_rows, teardown),
        cmocka_unit_test_teardown(test_restart_replays_after_rows_seq, teardown),
        cmocka_unit_test_teardown(test_crash_after_deletes_and_members, teardown),
        cmocka_unit_test_teardown(test_reload_after_failed_batch_keeps_deletes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
