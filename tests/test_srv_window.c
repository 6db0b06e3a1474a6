/* test_srv_window.c - the window of recent text ops is bounded in bytes: an editor that
 * alternates a large insert and its delete does not grow the server's memory, and an edit
 * with a base older than the window is still transformed right (from the log). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "testsrv.h"
#include "testutil.h"

#define BIG   (512 * 1024) /* bytes (and code points) of one insert */
#define PAIRS 160          /* 80 MiB of inserted text in all: ten times the window's bound */
/* Growth of the server's resident memory allowed over the run: the window's 8 MiB and room
 * for allocator slack, far below the 80 MiB an unbounded window keeps. */
#define GROWTH_KIB (40 * 1024)

static const char *const names[] = {"op", NULL};
static const char *const serve_args[] = {"--max-frame", "4194304", NULL};
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

static const msgpack_object *mget(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; map && map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++) {
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

/* VmRSS of the server, in KiB. */
static long server_rss_kib_now(void)
{
    long kib = ts_proc_kib(S.pid, "VmRSS:");
    assert_true(kib > 0);
    return kib;
}

/* One insert of BIG bytes at 0 and its delete; returns the seq after both. */
static int64_t insert_and_delete(struct cli_conn *c, int64_t item, int64_t base, const char *big)
{
    struct cli_msg *m =
        call_ok(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", "m1", "type", "item",
                "id", item, "field", "body", "base", base, "op", big);
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    m = call_ok(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[{s:I}]}", "meeting", "m1", "type",
                "item", "id", item, "field", "body", "base", seq, "op", "d", (int64_t)BIG);
    seq = mint(m->result, "seq");
    cli_msg_free(m);
    return seq;
}

static void test_window_bounded_in_bytes(void **state)
{
    (void)state;
    /* Freed blocks are reused at once, so resident memory shows what is really kept. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=1", asan ? asan : "", asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    assert_int_equal(ts_start_args(&S, names, "m1", serve_args), 0);
    struct cli_conn *c = ts_login(&S, "op");
    assert_non_null(c);
    struct cli_msg *m = call_ok(c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", "m1",
                                "type", "item", "fields", "number", "1", "title", "window");
    int64_t item = mint(m->result, "id");
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    m = call_ok(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", "m1", "type", "item",
                "id", item, "field", "body", "base", seq, "op", "abc");
    int64_t old_base = mint(m->result, "seq"); /* the body is "abc" here */
    cli_msg_free(m);

    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'w', BIG);
    big[BIG] = '\0';
    seq = old_base;
    for (int i = 0; i < 8; i++) { /* warm up buffers, caches and the allocator */
        seq = insert_and_delete(c, item, seq, big);
    }
    long before = server_rss_kib_now();
    for (int i = 0; i < PAIRS; i++) {
        seq = insert_and_delete(c, item, seq, big);
    }
    long after = server_rss_kib_now();
    free(big);
    fprintf(stderr, "server VmRSS: %ld KiB before, %ld KiB after %d pairs\n", before, after, PAIRS);
    assert_true(after - before < GROWTH_KIB);

    /* An edit made against the text of long ago: "abc" + "X" at its end. */
    m = call_ok(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[I, s]}", "meeting", "m1", "type",
                "item", "id", item, "field", "body", "base", old_base, "op", (int64_t)3, "X");
    cli_msg_free(m);
    m = call_ok(c, "meeting.get", "{s:s}", "meeting", "m1");
    const msgpack_object *items = mget(m->result, "items");
    assert_non_null(items);
    assert_int_equal(items->via.array.size, 1);
    const msgpack_object *body = mget(&items->via.array.ptr[0], "body");
    assert_non_null(body);
    assert_int_equal(body->type, MSGPACK_OBJECT_STR);
    assert_int_equal(body->via.str.size, 4);
    assert_memory_equal(body->via.str.ptr, "abcX", 4);
    cli_msg_free(m);
    cli_conn_close(c);
    char *log = NULL;
    int st = ts_stop_log(&S, &log);
    if (st != 0) {
        fprintf(stderr, "%s", log ? log : "");
    }
    free(log);
    assert_int_equal(st, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_window_bounded_in_bytes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
