/* test_srv_writer.c - the writer and group commit against a real conferd: changes made in
 * one frame are written in the order they were made (a swap of unique refs, a doc pointed
 * at an item created after it), a batch the database refuses is answered `unavailable`
 * without closing anyone, and a full disk is answered the same way. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <sqlite3.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "testsrv.h"
#include "testutil.h"

#define WAIT_MS 10000

static const char *const names[] = {"op", "view", NULL};

/* ---- helpers ---- */

static struct cli_msg *call(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct proto_buf b = {0};
    int rc = cli_vpackf(&b, fmt, ap);
    va_end(ap);
    assert_int_equal(rc, 0);
    struct cli_msg *m = NULL;
    rc = cli_conn_call(c, method, b.data, b.len, &m);
    proto_buf_free(&b, 0);
    if (rc != 0) {
        fail_msg("%s: %s (%s)", method, proto_strerror(rc), cli_conn_error(c));
    }
    return m;
}

static const char *code_of(const struct cli_msg *m)
{
    return m->error ? m->code : "ok";
}

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
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : v->via.i64;
}

static bool mstr_is(const msgpack_object *v, const char *want)
{
    return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(want) &&
           memcmp(v->via.str.ptr, want, v->via.str.size) == 0;
}

/* A successful call's result; fails the test on an error. */
static struct cli_msg *call_ok(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct proto_buf b = {0};
    assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    va_end(ap);
    struct cli_msg *m = NULL;
    int rc = cli_conn_call(c, method, b.data, b.len, &m);
    proto_buf_free(&b, 0);
    if (rc != 0) {
        fail_msg("%s: %s (%s)", method, proto_strerror(rc), cli_conn_error(c));
    }
    if (m->error) {
        fail_msg("%s: %s: %s", method, m->code, m->message);
    }
    return m;
}

static int64_t create(struct cli_conn *c, const char *mid, const char *type, const char *k1,
                      const char *v1, const char *k2, const char *v2)
{
    struct cli_msg *m = call_ok(c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", mid, "type",
                                type, "fields", k1, v1, k2, v2);
    int64_t id = mint(m->result, "id");
    cli_msg_free(m);
    return id;
}

/* The object of type (plural key, e.g. "docs") with id in meeting.get's result. */
static const msgpack_object *find_obj(const msgpack_object *rec, const char *key, int64_t id)
{
    const msgpack_object *list = mget(rec, key);
    assert_non_null(list);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];
        if (mint(o, "id") == id) {
            return o;
        }
    }
    return NULL;
}

/* Waits for the response to msgid; fails the test when none comes. */
static struct cli_msg *wait_for(struct cli_conn *c, uint32_t msgid)
{
    struct cli_msg *m = NULL;
    int rc = cli_conn_wait(c, msgid, WAIT_MS, &m);
    if (rc != 0) {
        fail_msg("msgid %u: %s (%s)", (unsigned)msgid, proto_strerror(rc), cli_conn_error(c));
    }
    return m;
}

static void assert_no_failed_batch(const struct ts_server *s)
{
    char *log = ts_read_log(s);
    if (strstr(log, "failed") != NULL) {
        fprintf(stderr, "%s", log);
        free(log);
        fail_msg("the server log reports a failed write");
    }
    free(log);
}

/* Kills the server (nothing is written at exit) and starts it again on the same data. */
static void restart(struct ts_server *s)
{
    ts_kill(s);
    assert_int_equal(ts_restart(s), 0);
}

static void stop(struct ts_server *s)
{
    char *log = NULL;
    int st = ts_stop_log(s, &log);
    if (st != 0) {
        fprintf(stderr, "%s", log ? log : "");
    }
    free(log);
    assert_int_equal(st, 0);
}

/* The server of the running test and the tmpfs it may have mounted: the teardown stops
 * and removes them however the test ended. */
static struct ts_server S;
static char mounted[2048];

static int teardown(void **state)
{
    (void)state;
    ts_kill(&S);
    if (mounted[0]) {
        char cmd[2100];
        snprintf(cmd, sizeof(cmd), "umount '%s'", mounted);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot unmount %s\n", mounted);
        }
        mounted[0] = '\0';
    }
    if (S.dir) {
        ts_stop(&S);
    }
    memset(&S, 0, sizeof(S));
    return 0;
}

/* ---- changes of one frame are written in their order ---- */

/* Three updates in one frame swap the refs of two docs through a free one: each state is
 * valid in memory, so each must be valid in SQLite (docs' refs are unique). */
static void test_swap_refs_one_frame(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *c = ts_login(&S, "op");
    assert_non_null(c);
    int64_t a = create(c, "m1", "doc", "ref", "x", "title", "A");
    int64_t b = create(c, "m1", "doc", "ref", "y", "title", "B");
    uint32_t id[3];
    cli_conn_cork(c);
    assert_int_equal(cli_conn_sendf(c, &id[0], "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                    "m1", "type", "doc", "id", a, "fields", "ref", "z"),
                     0);
    assert_int_equal(cli_conn_sendf(c, &id[1], "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                    "m1", "type", "doc", "id", b, "fields", "ref", "x"),
                     0);
    assert_int_equal(cli_conn_sendf(c, &id[2], "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                    "m1", "type", "doc", "id", a, "fields", "ref", "y"),
                     0);
    assert_int_equal(cli_conn_flush(c), 0);
    for (int i = 0; i < 3; i++) {
        struct cli_msg *m = wait_for(c, id[i]);
        assert_string_equal(code_of(m), "ok");
        cli_msg_free(m);
    }
    cli_conn_close(c);
    assert_no_failed_batch(&S);
    restart(&S);
    c = ts_login(&S, "op");
    assert_non_null(c);
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s}", "meeting", "m1");
    assert_true(mstr_is(mget(find_obj(m->result, "docs", a), "ref"), "y"));
    assert_true(mstr_is(mget(find_obj(m->result, "docs", b), "ref"), "x"));
    cli_msg_free(m);
    cli_conn_close(c);
    stop(&S);
}

/* In one frame: update a doc, create an item, point the doc at the item. The doc's first
 * write must not already point at an item that does not exist yet. */
static void test_doc_points_at_new_item(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *c = ts_login(&S, "op");
    assert_non_null(c);
    int64_t doc = create(c, "m1", "doc", "ref", "d1", "title", "D");
    int64_t first = create(c, "m1", "item", "number", "1", "title", "first");
    int64_t next = first + 1; /* ids come from one reserved block, in order */
    uint32_t id[3];
    cli_conn_cork(c);
    assert_int_equal(cli_conn_sendf(c, &id[0], "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                    "m1", "type", "doc", "id", doc, "fields", "title", "D2"),
                     0);
    assert_int_equal(cli_conn_sendf(c, &id[1], "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    "m1", "type", "item", "fields", "number", "2", "title",
                                    "second"),
                     0);
    assert_int_equal(cli_conn_sendf(c, &id[2], "obj.update", "{s:s, s:s, s:I, s:{s:I}}", "meeting",
                                    "m1", "type", "doc", "id", doc, "fields", "item", next),
                     0);
    assert_int_equal(cli_conn_flush(c), 0);
    for (int i = 0; i < 3; i++) {
        struct cli_msg *m = wait_for(c, id[i]);
        assert_string_equal(code_of(m), "ok");
        if (i == 1) {
            assert_int_equal(mint(m->result, "id"), next);
        }
        cli_msg_free(m);
    }
    cli_conn_close(c);
    assert_no_failed_batch(&S);
    restart(&S);
    c = ts_login(&S, "op");
    assert_non_null(c);
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s}", "meeting", "m1");
    const msgpack_object *d = find_obj(m->result, "docs", doc);
    assert_non_null(d);
    assert_true(mstr_is(mget(d, "title"), "D2"));
    assert_int_equal(mint(d, "item"), next);
    assert_non_null(find_obj(m->result, "items", next));
    cli_msg_free(m);
    cli_conn_close(c);
    stop(&S);
}

/* ---- a batch the database refuses ---- */

/* Installs, through SQLite itself, a trigger that refuses any log entry holding "FAIL" (a
 * doc whose ref is FAIL, say): the server's next write of one fails as a real constraint
 * would. */
static void install_refusal(const struct ts_server *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", s->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    int rc = sqlite3_exec(db,
                          "CREATE TRIGGER test_refuse BEFORE INSERT ON audit "
                          "WHEN instr(NEW.payload, CAST('FAIL' AS BLOB)) > 0 "
                          "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
                          "CREATE TRIGGER test_refuse_meeting BEFORE INSERT ON meetings "
                          "WHEN NEW.id = 'm-lost' BEGIN SELECT RAISE(ABORT, 'refused by the "
                          "test'); END;",
                          NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        fail_msg("trigger: %s", err ? err : "?");
    }
    sqlite3_close(db);
}

/* A subscriber of m2 (view) receives the event of a change there within the wait. */
static void assert_event_arrives(struct cli_conn *watcher, struct cli_conn *writer,
                                 const char *title)
{
    struct cli_msg *m = call_ok(writer, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", "m2",
                                "type", "item", "fields", "number", "9", "title", title);
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    for (int i = 0; i < 100; i++) {
        struct cli_msg *ev = NULL;
        int rc = cli_conn_next(watcher, WAIT_MS, &ev);
        if (rc != 0) {
            fail_msg("the bystander got no event: %s (%s)", proto_strerror(rc),
                     cli_conn_error(watcher));
        }
        bool found = ev->kind == PROTO_RPC_NOTIFY && strcmp(ev->method, "event") == 0 &&
                     mint(ev->params, "seq") == seq;
        cli_msg_free(ev);
        if (found) {
            return;
        }
    }
    fail_msg("the bystander never got the event of seq %lld", (long long)seq);
}

static void test_failed_batch_answers_unavailable(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *w = ts_login(&S, "op");
    struct cli_conn *v = ts_login(&S, "view");
    assert_non_null(w);
    assert_non_null(v);
    cli_msg_free(call_ok(w, "meeting.create", "{s:s, s:s}", "id", "m2", "rapporteur", "op"));
    cli_msg_free(call_ok(w, "member.set", "{s:s, s:s, s:s}", "meeting", "m2", "user", "view",
                         "role", "viewer"));
    cli_msg_free(call_ok(v, "meeting.subscribe", "{s:s}", "meeting", "m2"));
    /* The writer watches m1 too: its subscription must survive the failure. */
    cli_msg_free(call_ok(w, "meeting.subscribe", "{s:s}", "meeting", "m1"));
    create(w, "m1", "doc", "ref", "before", "title", "kept");
    struct cli_msg *m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);

    install_refusal(&S);
    m = call(w, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", "m1", "type", "doc", "fields",
             "ref", "FAIL", "title", "lost");
    assert_string_equal(code_of(m), "unavailable");
    cli_msg_free(m);

    /* Nobody was closed: the bystander keeps receiving its meeting. */
    assert_event_arrives(v, w, "after the failure");
    /* The failed change is not in the record, and its seq is handed out again. */
    m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    assert_int_equal(mint(m->result, "seq"), seq);
    assert_int_equal(mget(m->result, "docs")->via.array.size, 1);
    cli_msg_free(m);
    m = call_ok(w, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", "m1", "type", "doc",
                "fields", "ref", "after", "title", "kept too");
    assert_int_equal(mint(m->result, "seq"), seq + 1);
    cli_msg_free(m);
    cli_conn_close(w);
    cli_conn_close(v);

    restart(&S);
    w = ts_login(&S, "op");
    assert_non_null(w);
    m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    assert_int_equal(mint(m->result, "seq"), seq + 1);
    const msgpack_object *docs = mget(m->result, "docs");
    assert_int_equal(docs->via.array.size, 2);
    for (uint32_t i = 0; i < docs->via.array.size; i++) {
        assert_false(mstr_is(mget(&docs->via.array.ptr[i], "ref"), "FAIL"));
    }
    cli_msg_free(m);
    cli_conn_close(w);
    stop(&S);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* While the failing batch waits for the database (a test connection holds its write lock,
 * well within the busy timeout), more changes gather in the next batch, of its meeting and
 * of another: that batch was built on the lost one and fails with it. Its event is never
 * sent, and its seq is handed out again. */
static void test_failed_batch_fails_the_open_batch(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *w = ts_login(&S, "op");
    struct cli_conn *v = ts_login(&S, "view");
    assert_non_null(w);
    assert_non_null(v);
    cli_msg_free(call_ok(w, "meeting.create", "{s:s, s:s}", "id", "m2", "rapporteur", "op"));
    cli_msg_free(call_ok(w, "member.set", "{s:s, s:s, s:s}", "meeting", "m2", "user", "view",
                         "role", "viewer"));
    cli_msg_free(call_ok(v, "meeting.subscribe", "{s:s}", "meeting", "m2"));
    struct cli_msg *m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m2");
    int64_t seq2 = mint(m->result, "seq");
    cli_msg_free(m);
    install_refusal(&S);

    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", S.dir);
    sqlite3 *lock = NULL;
    assert_int_equal(sqlite3_open_v2(path, &lock, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    uint32_t id[3];
    assert_int_equal(cli_conn_sendf(w, &id[0], "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    "m1", "type", "doc", "fields", "ref", "FAIL", "title", "lost"),
                     0);
    sleep_ms(300); /* its batch is with the writer, waiting for the lock */
    assert_int_equal(cli_conn_sendf(w, &id[1], "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    "m1", "type", "doc", "fields", "ref", "b", "title",
                                    "built on it"),
                     0);
    assert_int_equal(cli_conn_sendf(w, &id[2], "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    "m2", "type", "item", "fields", "number", "1", "title",
                                    "built on it too"),
                     0);
    sleep_ms(300); /* both are in the open batch */
    assert_int_equal(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    for (int i = 0; i < 3; i++) {
        m = wait_for(w, id[i]);
        assert_string_equal(code_of(m), "unavailable");
        cli_msg_free(m);
    }
    m = call_ok(w, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", "m2", "type", "item",
                "fields", "number", "1", "title", "kept");
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    assert_int_equal(seq, seq2 + 1);
    /* The bystander's first event is the kept change: the lost one never reached it. */
    struct cli_msg *ev = NULL;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cli_conn_next(v, WAIT_MS, &ev), 0);
        if (ev->kind == PROTO_RPC_NOTIFY && strcmp(ev->method, "event") == 0) {
            break;
        }
        cli_msg_free(ev);
        ev = NULL;
    }
    assert_non_null(ev);
    assert_int_equal(mint(ev->params, "seq"), seq);
    assert_true(mstr_is(mget(mget(ev->params, "fields"), "title"), "kept"));
    cli_msg_free(ev);
    m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    assert_int_equal(mget(m->result, "docs")->via.array.size, 0);
    cli_msg_free(m);
    cli_conn_close(w);
    cli_conn_close(v);
    stop(&S);
}

/* A meeting whose create is lost is gone again: nothing points at it, and its id is free
 * for a create that succeeds. */
static void test_failed_batch_loses_new_meeting(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *w = ts_login(&S, "op");
    assert_non_null(w);
    install_refusal(&S);
    struct cli_msg *m = call(w, "meeting.create", "{s:s, s:s}", "id", "m-lost", "rapporteur", "op");
    assert_string_equal(code_of(m), "unavailable");
    cli_msg_free(m);
    m = call(w, "meeting.get", "{s:s}", "meeting", "m-lost");
    assert_true(m->error != NULL);
    assert_string_not_equal(code_of(m), "ok");
    cli_msg_free(m);
    m = call(w, "meeting.subscribe", "{s:s}", "meeting", "m-lost");
    assert_true(m->error != NULL);
    cli_msg_free(m);
    cli_msg_free(call_ok(w, "meeting.create", "{s:s, s:s}", "id", "m-kept", "rapporteur", "op"));
    cli_conn_close(w);
    stop(&S);
}

/* A subscriber that stopped reading (its output waits in the socket, so a close would
 * keep it CLOSING for a grace period) is subscribed to the meeting of a failing batch: the
 * meeting must not be freed under it, and it is not closed at all. */
static void test_failed_batch_with_stalled_subscriber(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *w = ts_login(&S, "op");
    struct cli_conn *stalled = ts_login(&S, "op");
    assert_non_null(w);
    assert_non_null(stalled);
    cli_msg_free(call_ok(stalled, "meeting.subscribe", "{s:s}", "meeting", "m1"));
    /* Events of 4 MiB in all that the stalled connection never reads. */
    int64_t item = create(w, "m1", "item", "number", "1", "title", "filling");
    size_t n = 64 * 1024;
    char *chunk = malloc(n + 1);
    memset(chunk, 'e', n);
    chunk[n] = '\0';
    struct cli_msg *m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    for (int i = 0; i < 64; i++) {
        m = call_ok(w, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", "m1", "type",
                    "item", "id", item, "field", "body", "base", seq, "op", chunk);
        seq = mint(m->result, "seq");
        cli_msg_free(m);
        m = call_ok(w, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[{s:I}]}", "meeting", "m1", "type",
                    "item", "id", item, "field", "body", "base", seq, "op", "d", (int64_t)n);
        seq = mint(m->result, "seq");
        cli_msg_free(m);
    }
    free(chunk);
    install_refusal(&S);
    m = call(w, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", "m1", "type", "doc", "fields",
             "ref", "FAIL", "title", "lost");
    assert_string_equal(code_of(m), "unavailable");
    cli_msg_free(m);
    /* Past the grace period a closing connection would have had. */
    struct timespec ts = {2, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    cli_msg_free(m);
    cli_conn_free(stalled);
    cli_conn_close(w);
    stop(&S);
}

/* ---- a full disk ---- */

/* Fills the filesystem of dir with one file; returns its path (malloc'd). */
static char *fill_disk(const char *dir)
{
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char block[64 * 1024];
    for (int i = 0; i < 100000; i++) { /* bounded: 6 GiB, far over the mount's size */
        ssize_t n = write(fd, block, sizeof(block));
        if (n < 0 && errno == ENOSPC) {
            break;
        }
        if (n <= 0) {
            /* A last partial block: try small writes until nothing fits. */
            if (write(fd, block, 512) <= 0) {
                break;
            }
        }
    }
    for (int i = 0; i < 100000 && write(fd, block, 1) == 1; i++) {
    }
    close(fd);
    return path;
}

static void test_full_disk_answers_unavailable(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    /* The data folder moves onto a small tmpfs of its own. */
    ts_kill(&S);
    char data[2048], saved[2048], cmd[9000];
    snprintf(data, sizeof(data), "%.1900s/data", S.dir);
    snprintf(saved, sizeof(saved), "%.1900s/saved", S.dir);
    snprintf(cmd, sizeof(cmd), "mv '%s' '%s' && mkdir '%s' && mount -t tmpfs -o size=6m tmpfs '%s'",
             data, saved, data, data);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "rmdir '%s'; mv '%s' '%s'", data, saved, data);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(ts_restart(&S), 0);
        stop(&S);
        fprintf(stderr, "full disk test skipped: cannot mount a tmpfs here (needs root)\n");
        skip();
        return;
    }
    snprintf(mounted, sizeof(mounted), "%s", data);
    snprintf(cmd, sizeof(cmd), "cp -a '%s'/. '%s'/", saved, data);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ts_restart(&S), 0);

    struct cli_conn *w = ts_login(&S, "op");
    struct cli_conn *v = ts_login(&S, "view");
    assert_non_null(w);
    assert_non_null(v);
    cli_msg_free(call_ok(w, "meeting.create", "{s:s, s:s}", "id", "m2", "rapporteur", "op"));
    cli_msg_free(call_ok(w, "member.set", "{s:s, s:s, s:s}", "meeting", "m2", "user", "view",
                         "role", "viewer"));
    cli_msg_free(call_ok(v, "meeting.subscribe", "{s:s}", "meeting", "m2"));
    /* An item to change (its id block is reserved now, before the disk fills). */
    int64_t item = create(w, "m1", "item", "number", "1", "title", "small");
    struct cli_msg *m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);

    /* A body bigger than anything written so far: the WAL must grow to hold it. */
    size_t big = 700 * 1024;
    char *body = malloc(big + 1);
    memset(body, 'b', big);
    body[big] = '\0';
    char *filler = fill_disk(data);
    m = call(w, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", "m1", "type", "item",
             "id", item, "field", "body", "base", seq, "op", body);
    assert_string_equal(code_of(m), "unavailable");
    cli_msg_free(m);
    m = call_ok(w, "meeting.get", "{s:s}", "meeting", "m1");
    assert_int_equal(mint(m->result, "seq"), seq);
    const msgpack_object *kept = mget(find_obj(m->result, "items", item), "body");
    assert_true(kept == NULL || kept->type != MSGPACK_OBJECT_STR || kept->via.str.size != big);
    cli_msg_free(m);

    /* Space comes back: writes resume, and nobody was closed meanwhile. */
    unlink(filler);
    free(filler);
    m = call_ok(w, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", "m1", "type", "item",
                "id", item, "field", "body", "base", seq, "op", body);
    assert_int_equal(mint(m->result, "seq"), seq + 1);
    cli_msg_free(m);
    assert_event_arrives(v, w, "after the full disk");
    free(body);
    cli_conn_close(w);
    cli_conn_close(v);
    /* The folder is removed with the server stopped and the tmpfs gone. */
}

/* The writer is a thread of its own, not one of libuv's pool (which checks passwords). */
static void test_writer_has_its_own_thread(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, "m1"), 0);
    struct cli_conn *w = ts_login(&S, "op");
    assert_non_null(w);
    create(w, "m1", "item", "number", "1", "title", "written");
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)S.pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[600], comm[64] = "";
        snprintf(path, sizeof(path), "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            found = fgets(comm, sizeof(comm), f) && strcmp(comm, "confer-writer\n") == 0;
            fclose(f);
        }
    }
    closedir(d);
    assert_true(found);
    cli_conn_close(w);
    stop(&S);
}

/* ---- account writes go through the writer too ---- */

static struct cli_conn *open_conn(void)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[512];
    assert_int_equal(cli_conn_open(&c, "127.0.0.1", (uint16_t)S.port, &pol, 5000, err, sizeof(err)),
                     0);
    return c;
}

/* A remembered token, its use, its revocation at logout and a password change: each
 * stored by the writer before its request is answered. */
static void test_account_writes(void **state)
{
    (void)state;
    assert_int_equal(ts_start(&S, names, NULL), 0);
    struct cli_conn *c = open_conn();
    struct cli_msg *m = call_ok(c, "auth.login", "{s:s, s:s, s:b}", "user", "view", "password",
                                "view-password", "remember", 1);
    const msgpack_object *t = mget(m->result, "token");
    assert_non_null(t);
    char token[64];
    assert_true(t->via.str.size < sizeof(token));
    memcpy(token, t->via.str.ptr, t->via.str.size);
    token[t->via.str.size] = '\0';
    cli_msg_free(m);

    struct cli_conn *c2 = open_conn();
    cli_msg_free(call_ok(c2, "auth.token", "{s:s, s:s}", "user", "view", "token", token));
    cli_msg_free(call_ok(c2, "auth.logout", "{}"));
    cli_conn_close(c2);
    c2 = open_conn();
    m = call(c2, "auth.token", "{s:s, s:s}", "user", "view", "token", token);
    assert_string_equal(code_of(m), "unauthenticated");
    cli_msg_free(m);
    cli_conn_close(c2);

    cli_msg_free(call_ok(c, "auth.passwd", "{s:s, s:s}", "old", "view-password", "new",
                         "a new password for view"));
    cli_conn_close(c);
    c = open_conn();
    cli_msg_free(call_ok(c, "auth.login", "{s:s, s:s}", "user", "view", "password",
                         "a new password for view"));
    cli_conn_close(c);
    stop(&S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_swap_refs_one_frame, teardown),
        cmocka_unit_test_teardown(test_doc_points_at_new_item, teardown),
        cmocka_unit_test_teardown(test_failed_batch_answers_unavailable, teardown),
        cmocka_unit_test_teardown(test_failed_batch_fails_the_open_batch, teardown),
        cmocka_unit_test_teardown(test_failed_batch_loses_new_meeting, teardown),
        cmocka_unit_test_teardown(test_failed_batch_with_stalled_subscriber, teardown),
        cmocka_unit_test_teardown(test_full_disk_answers_unavailable, teardown),
        cmocka_unit_test_teardown(test_writer_has_its_own_thread, teardown),
        cmocka_unit_test_teardown(test_account_writes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
