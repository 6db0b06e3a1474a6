/* test_srv_checkpoint.c - a server that shuts down signs the head of every meeting it
 * changed, so that a log cut after the last signed head can be told from a whole one.
 * Against a real conferd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "testsrv.h"

#define MEETING "m1"

static const char *const names[] = {"rap", NULL};

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_signs_the_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
