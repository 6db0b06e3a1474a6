/* test_srv_checkpoint.c - what binds a kept head to the log: a server that shuts down
 * signs the head of every meeting it changed, and audit.verify checks a head the caller
 * saw earlier (`known`). Against a real conferd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "proto_msgpack.h"
#include "testsrv.h"

#define MEETING "m1"

static const char *const names[] = {"rap", "ed", NULL};

static void create_item(struct cli_conn *c, int i)
{
    struct cli_msg *m = NULL;
    struct proto_buf b = {0};
    char number[16];
    snprintf(number, sizeof(number), "%d", i + 1);
    assert_int_equal(cli_packf(&b, "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING, "type", "item",
                               "fields", "number", number, "title", "a section"),
                     0);
    assert_int_equal(cli_conn_call(c, "obj.create", b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    if (m->error) {
        fail_msg("obj.create: %s: %s", m->code, m->message);
    }
    cli_msg_free(m);
}

/* The highest seq of sql (one integer column) in the stopped server's database. */
static int64_t query_max(const struct ts_server *s, const char *sql)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", s->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, MEETING, -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Fewer changes than a periodic checkpoint needs, then a graceful stop: the newest entry
 * is covered by a checkpoint all the same. */
static void test_shutdown_signs_the_head(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, names, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    for (int i = 0; i < 5; i++) {
        create_item(c, i);
    }
    cli_conn_close(c);
    int st = 0;
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    assert_int_equal(waitpid(s.pid, &st, 0), s.pid);
    s.pid = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int64_t head = query_max(&s, "SELECT max(seq) FROM audit WHERE meeting = ?1");
    int64_t signed_seq =
        query_max(&s, "SELECT coalesce(max(seq), 0) FROM checkpoints WHERE meeting = ?1");
    assert_int_equal(head, 6); /* the meeting's create and five items */
    assert_int_equal(signed_seq, head);
    /* The chain and the new checkpoint verify. */
    static const char *const verify[] = {"audit", "verify", "--meeting", MEETING, NULL};
    assert_int_equal(ts_conferd(&s, NULL, verify), 0);
    assert_int_equal(ts_stop(&s), 0);
}

static void call_or_fail(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    struct proto_buf b = {0};
    struct cli_msg *m = NULL;
    va_start(ap, fmt);
    assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    va_end(ap);
    assert_int_equal(cli_conn_call(c, method, b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    if (m->error) {
        fail_msg("%s: %s: %s", method, m->code, m->message);
    }
    cli_msg_free(m);
}

/* Changes that leave no trace in an object's row (a new member, a deleted item), then a
 * crash before any refresh: the restarted server knows only the log, and the rows it
 * writes next must still come to agree with it. (Seen failing: the refresh wrote only the
 * objects changed since the rows and no members, so verify found the member missing and
 * the deleted item still there.) */
static void test_crash_then_refresh_agrees(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, names, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    for (int i = 0; i < 3; i++) {
        create_item(c, i);
    }
    call_or_fail(c, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ed", "role",
                 "editor");
    /* The items are ids 2.. of the first block: find one through the record. */
    struct cli_msg *m = NULL;
    struct proto_buf b = {0};
    assert_int_equal(cli_packf(&b, "{s:s}", "meeting", MEETING), 0);
    assert_int_equal(cli_conn_call(c, "meeting.get", b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    const msgpack_object *items = proto_mp_map_get(m->result, "items");
    assert_true(items != NULL && items->via.array.size == 3);
    int64_t first = 0;
    assert_int_equal(proto_param_i64(&items->via.array.ptr[0], "id", &first), 0);
    cli_msg_free(m);
    call_or_fail(c, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "item", "id",
                 first);
    cli_conn_close(c);
    ts_kill(&s); /* before the minute after which the rows would have been refreshed */
    assert_int_equal(ts_restart(&s), 0);
    int st = 0;
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    assert_int_equal(waitpid(s.pid, &st, 0), s.pid);
    s.pid = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    static const char *const verify[] = {"audit", "verify", "--meeting", MEETING, NULL};
    assert_int_equal(ts_conferd(&s, NULL, verify), 0);
    assert_int_equal(ts_stop(&s), 0);
}

/* audit.verify with known = {seq, hash} (hash NULL: none); returns the message. */
static struct cli_msg *verify_known(struct cli_conn *c, int64_t seq, const char *hash)
{
    struct cli_msg *m = NULL;
    struct proto_buf b = {0};
    if (hash) {
        assert_int_equal(cli_packf(&b, "{s:s, s:{s:I, s:s}}", "meeting", MEETING, "known", "seq",
                                   seq, "hash", hash),
                         0);
    } else {
        assert_int_equal(cli_packf(&b, "{s:s}", "meeting", MEETING), 0);
    }
    assert_int_equal(cli_conn_call(c, "audit.verify", b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    return m;
}

static bool result_ok(const struct cli_msg *m, int64_t *bad_seq)
{
    assert_null(m->error);
    const msgpack_object *ok = proto_mp_map_get(m->result, "ok");
    assert_non_null(ok);
    *bad_seq = 0;
    proto_param_i64(m->result, "bad_seq", bad_seq);
    return ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean;
}

/* A head the log holds verifies; one it does not hold (another hash, a seq past the end)
 * fails at that seq; a malformed one is a bad_request. */
static void test_verify_known_head(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, names, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    for (int i = 0; i < 3; i++) {
        create_item(c, i);
    }
    struct cli_msg *m = verify_known(c, 0, NULL);
    int64_t bad = 0, count = 0;
    char head[65];
    assert_true(result_ok(m, &bad));
    assert_int_equal(proto_param_i64(m->result, "count", &count), 0);
    assert_int_equal(proto_param_strcpy(m->result, "head", head, sizeof(head)), 0);
    cli_msg_free(m);
    assert_int_equal(count, 4);

    m = verify_known(c, count, head);
    assert_true(result_ok(m, &bad));
    cli_msg_free(m);

    char other[65];
    memcpy(other, head, sizeof(other));
    other[0] = other[0] == '0' ? '1' : '0';
    m = verify_known(c, count, other);
    assert_false(result_ok(m, &bad));
    assert_int_equal(bad, count);
    cli_msg_free(m);

    m = verify_known(c, count + 10, head); /* a head of a log cut since */
    assert_false(result_ok(m, &bad));
    assert_int_equal(bad, count + 10);
    cli_msg_free(m);

    m = verify_known(c, count, "not hex");
    assert_true(cli_msg_is_error(m, "bad_request"));
    cli_msg_free(m);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_signs_the_head),
        cmocka_unit_test(test_verify_known_head),
        cmocka_unit_test(test_crash_then_refresh_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
