/* test_srv_subscribe.c - meeting.subscribe with since over a real conferd: a catch-up over a
 * long log does not hold up other clients, the events made while it runs all arrive once and
 * in order after the replayed ones, one over the output limit is refused, and a meeting that
 * cannot be reloaded from its database answers changes `unavailable`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <stdio.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "proto_ot.h"
#include "testsrv.h"

#define MEETING  "m1"
#define LONG_LOG 6000 /* edits in the long log */
#define BIG_TEXT 8192 /* bytes inserted by every other edit of it */
#define WAIT_MS  60000

static const char *const users[] = {"rap", "ed2", NULL};

/* The server with the long log, shared by the catch-up tests (they only add to it). */
static struct ts_server S;
static int64_t item_id, log_seq;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mint(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_mp_map_get(map, key);
    assert_non_null(v);
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : v->via.i64;
}

static int64_t make_item(struct cli_conn *c, const char *number, int64_t *seq)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    MEETING, "type", "item", "fields", "number", number, "title",
                                    "Long"),
                     0);
    if (m->error) {
        fail_msg("obj.create: %s %s", m->code, m->message);
    }
    int64_t id = mint(m->result, "id");
    *seq = mint(m->result, "seq");
    cli_msg_free(m);
    return id;
}

/* n edits of item id, pipelined in frames of 50, each against the one before it: edit i
 * applies ops[i % 2]. Returns the seq after the last. */
static int64_t edits(struct cli_conn *c, int64_t id, int64_t seq, int n,
                     const struct proto_op ops[2])
{
    for (int done = 0; done < n;) {
        int k = n - done < 50 ? n - done : 50;
        uint32_t ids[50];
        cli_conn_cork(c);
        for (int i = 0; i < k; i++) {
            ts_send_edit(c, MEETING, id, seq + i, &ops[(done + i) % 2], &ids[i]);
        }
        assert_int_equal(cli_conn_flush(c), 0);
        for (int i = 0; i < k; i++) {
            struct cli_msg *m = NULL;
            assert_int_equal(cli_conn_wait(c, ids[i], WAIT_MS, &m), 0);
            if (m->error) {
                fail_msg("edit refused: %s %s", m->code, m->message);
            }
            assert_int_equal(mint(m->result, "seq"), seq + i + 1);
            cli_msg_free(m);
        }
        seq += k;
        done += k;
    }
    return seq;
}

/* n edits of item id, each inserting s at the start. */
static int64_t many_edits(struct cli_conn *c, int64_t id, int64_t seq, int n, const char *s)
{
    struct proto_op op[2];
    proto_op_init(&op[0]);
    assert_int_equal(proto_op_insert(&op[0], s, strlen(s)), 0);
    op[1] = op[0];
    seq = edits(c, id, seq, n, op);
    proto_op_free(&op[0]);
    return seq;
}

/* Starts the server and makes the long log: an item and LONG_LOG edits of its body. */
static int setup_long_log(void **state)
{
    (void)state;
    if (ts_start(&S, users, MEETING) != 0) {
        return -1;
    }
    struct cli_conn *ed = ts_login(&S, "rap");
    if (ed == NULL) {
        return -1;
    }
    item_id = make_item(ed, "1", &log_seq);
    /* Big entries, so that reading and sending the log is long: an insert of BIG_TEXT
     * bytes and its delete, over and over. */
    char *big = malloc(BIG_TEXT + 1);
    struct proto_op op[2];
    if (big == NULL) {
        return -1;
    }
    memset(big, 'b', BIG_TEXT);
    big[BIG_TEXT] = '\0';
    proto_op_init(&op[0]);
    proto_op_init(&op[1]);
    assert_int_equal(proto_op_insert(&op[0], big, BIG_TEXT), 0);
    assert_int_equal(proto_op_delete(&op[1], BIG_TEXT), 0);
    free(big);
    log_seq = edits(ed, item_id, log_seq, LONG_LOG, op);
    proto_op_free(&op[0]);
    proto_op_free(&op[1]);
    cli_conn_close(ed);
    return 0;
}

static int teardown_long_log(void **state)
{
    (void)state;
    return ts_stop(&S) == 0 ? 0 : -1;
}

/* A late subscriber with since=0 over the long log must not hold up another client: its
 * ping is answered before the first byte of the catch-up reaches the subscriber (the
 * catch-up is one big frame, so bytes waiting in the socket are what shows it started). */
static void test_catch_up_does_not_stall(void **state)
{
    (void)state;
    struct cli_conn *viewer = ts_login(&S, "rap");
    struct cli_conn *other = ts_login(&S, "rap");
    assert_non_null(viewer);
    assert_non_null(other);
    uint32_t sub = 0, ping = 0;
    assert_int_equal(cli_conn_sendf(viewer, &sub, "meeting.subscribe", "{s:s, s:i}", "meeting",
                                    MEETING, "since", 0),
                     0);
    assert_int_equal(cli_conn_flush(viewer), 0);
    sleep_ms(5); /* let the server read the subscribe first */
    assert_int_equal(cli_conn_sendf(other, &ping, "ping", NULL), 0);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_wait(other, ping, WAIT_MS, &m), 0);
    assert_null(m->error);
    cli_msg_free(m);
    int waiting = 0;
    assert_int_equal(ioctl(cli_conn_fd(viewer), FIONREAD, &waiting), 0);
    if (waiting > 0) {
        fail_msg("the catch-up reached the subscriber before another client's ping was "
                 "answered: the loop stalled");
    }
    /* The catch-up itself is whole: every event up to the response's seq, then it. */
    for (int64_t want = 1; want <= log_seq + 1; want++) {
        assert_int_equal(cli_conn_next(viewer, WAIT_MS, &m), 0);
        if (want <= log_seq) {
            assert_int_equal(m->kind, PROTO_RPC_NOTIFY);
            assert_int_equal(mint(m->params, "seq"), want);
        } else {
            assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
            assert_int_equal(m->msgid, sub);
            assert_null(m->error);
            assert_int_equal(mint(m->result, "seq"), log_seq);
            assert_null(proto_mp_map_get(m->result, "snapshot"));
        }
        cli_msg_free(m);
    }
    cli_conn_close(viewer);
    cli_conn_close(other);
}

/* What a subscriber has received so far: events must come in seq order, once each, with
 * no gap, and the response after every event below its seq and before every later one. */
struct watch {
    uint32_t sub;     /* the subscribe's msgid */
    int64_t want;     /* the next event's seq */
    int64_t resp_seq; /* the response's seq, -1 until it came */
};

/* Takes one message of the subscriber within timeout_ms and checks it; false when none
 * came. */
static bool watch_one(struct cli_conn *c, struct watch *w, int timeout_ms)
{
    struct cli_msg *m = NULL;
    int rc = cli_conn_next(c, timeout_ms, &m);
    if (rc == PROTO_ETIMEDOUT) {
        return false;
    }
    assert_int_equal(rc, 0);
    if (m->kind == PROTO_RPC_RESPONSE) {
        assert_int_equal(m->msgid, w->sub);
        assert_null(m->error);
        assert_int_equal(w->resp_seq, -1);
        w->resp_seq = mint(m->result, "seq");
        assert_int_equal(w->resp_seq, w->want - 1);
    } else {
        assert_string_equal(m->method, "event");
        assert_int_equal(mint(m->params, "seq"), w->want);
        w->want++;
    }
    cli_msg_free(m);
    return true;
}

/* Events a writer makes while a catch-up over the long log runs, and after it, arrive
 * exactly once and in seq order: those up to the response's seq before it, the rest after
 * it, with no gap and no duplicate. The writer goes on until the response has come. */
#define LIVE_FRAMES 400 /* at most, of 50 edits */

static void test_live_events_during_catch_up(void **state)
{
    (void)state;
    struct cli_conn *viewer = ts_login(&S, "rap");
    struct cli_conn *writer = ts_login(&S, "rap");
    assert_non_null(viewer);
    assert_non_null(writer);
    struct watch w = {.want = 1, .resp_seq = -1};
    assert_int_equal(cli_conn_sendf(viewer, &w.sub, "meeting.subscribe", "{s:s, s:i}", "meeting",
                                    MEETING, "since", 0),
                     0);
    assert_int_equal(cli_conn_flush(viewer), 0);
    int64_t last = log_seq;
    int after = 0;
    for (int i = 0; i < LIVE_FRAMES && after < 2; i++) {
        last = many_edits(writer, item_id, last, 50, "w");
        while (watch_one(viewer, &w, 0)) {
        }
        after += w.resp_seq >= 0;
    }
    log_seq = last;
    assert_true(w.resp_seq >= 0 && w.resp_seq < last); /* some events came live */
    for (int64_t i = 0; i <= last && w.want <= last; i++) {
        assert_true(watch_one(viewer, &w, WAIT_MS));
    }
    assert_int_equal(w.want, last + 1);
    /* Nothing more, no duplicate: a ping on the viewer is the next message. */
    uint32_t ping = 0;
    assert_int_equal(cli_conn_sendf(viewer, &ping, "ping", NULL), 0);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_next(viewer, WAIT_MS, &m), 0);
    assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
    assert_int_equal(m->msgid, ping);
    cli_msg_free(m);
    cli_conn_close(viewer);
    cli_conn_close(writer);
}

/* A member removed while its catch-up runs is not subscribed when the catch-up is done:
 * it is refused (not_found) or, when the removal came after, unsubscribed by it; either
 * way no later event of the meeting reaches it. */
static void test_removed_during_catch_up(void **state)
{
    (void)state;
    struct cli_conn *rap = ts_login(&S, "rap");
    assert_non_null(rap);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(rap, &m, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING,
                                    "user", "ed2", "role", "viewer"),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    struct cli_conn *ed2 = ts_login(&S, "ed2");
    assert_non_null(ed2);
    uint32_t sub = 0;
    assert_int_equal(cli_conn_sendf(ed2, &sub, "meeting.subscribe", "{s:s, s:i}", "meeting",
                                    MEETING, "since", 0),
                     0);
    assert_int_equal(cli_conn_flush(ed2), 0);
    assert_int_equal(
        cli_conn_callf(rap, &m, "member.remove", "{s:s, s:s}", "meeting", MEETING, "user", "ed2"),
        0);
    assert_null(m->error);
    cli_msg_free(m);
    /* The catch-up's events (if any), then its response. */
    assert_int_equal(cli_conn_wait(ed2, sub, WAIT_MS, &m), 0);
    assert_true(m->error == NULL || strcmp(m->code, "not_found") == 0);
    cli_msg_free(m);
    while (cli_conn_pending(ed2) > 0) {
        assert_int_equal(cli_conn_next(ed2, 0, &m), 0);
        cli_msg_free(m); /* events of the catch-up, before its response */
    }
    log_seq = many_edits(rap, item_id, log_seq + 2, 1, "r");
    /* Its event was queued to every subscriber before the edit was answered: a ping
     * answered first shows ed2 is not one. */
    uint32_t ping = 0;
    assert_int_equal(cli_conn_sendf(ed2, &ping, "ping", NULL), 0);
    assert_int_equal(cli_conn_next(ed2, WAIT_MS, &m), 0);
    if (m->kind != PROTO_RPC_RESPONSE || m->msgid != ping) {
        cli_msg_free(m);
        fail_msg("a member removed during its catch-up still receives the meeting");
    }
    cli_msg_free(m);
    cli_conn_close(ed2);
    cli_conn_close(rap);
}

/* A catch-up whose events are over the connection's output limit is refused too_large
 * (subscribing without since still works), rather than sent and the subscriber closed as a
 * slow consumer. */
static void test_catch_up_over_output_limit(void **state)
{
    (void)state;
    static const char *const args[] = {"--output-limit", "262144", NULL};
    struct ts_server s;
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    char *big = malloc(BIG_TEXT + 1);
    assert_non_null(big);
    memset(big, 'b', BIG_TEXT);
    big[BIG_TEXT] = '\0';
    struct proto_op op[2];
    proto_op_init(&op[0]);
    proto_op_init(&op[1]);
    assert_int_equal(proto_op_insert(&op[0], big, BIG_TEXT), 0);
    assert_int_equal(proto_op_delete(&op[1], BIG_TEXT), 0);
    free(big);
    int64_t seq = 0;
    int64_t id = make_item(c, "1", &seq);
    edits(c, id, seq, 100, op); /* 50 inserts of 8 KiB: 400 KiB of events */
    proto_op_free(&op[0]);
    proto_op_free(&op[1]);
    struct cli_msg *m = NULL;
    assert_int_equal(
        cli_conn_callf(c, &m, "meeting.subscribe", "{s:s, s:i}", "meeting", MEETING, "since", 0),
        0);
    assert_true(cli_msg_is_error(m, "too_large"));
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "meeting.subscribe", "{s:s}", "meeting", MEETING), 0);
    assert_null(m->error);
    assert_non_null(proto_mp_map_get(m->result, "snapshot"));
    cli_msg_free(m);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* ---- a meeting whose reload failed ---- */

static void rename_table(const struct ts_server *s, const char *from, const char *to)
{
    char path[4096], sql[128];
    snprintf(path, sizeof(path), "%s/data/confer.db", s->dir);
    snprintf(sql, sizeof(sql), "ALTER TABLE %s RENAME TO %s", from, to);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s: %s", sql, err ? err : "?");
    }
    sqlite3_close(db);
}

static void expect_code(struct cli_conn *c, const char *code, const char *method, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct proto_buf b = {0};
    assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    va_end(ap);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_call(c, method, b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    const char *got = m->error ? m->code : "ok";
    if (strcmp(got, code) != 0) {
        fail_msg("%s answered %s (%s), not %s", method, got, m->error ? m->message : "", code);
    }
    cli_msg_free(m);
}

/* With the log's table out of the way, a change fails its batch and the meeting cannot be
 * reloaded: every change of it is then refused `unavailable` (the server cannot use its
 * database), not `internal`; once the table is back it takes changes. */
static void test_broken_meeting_answers_unavailable(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    int64_t seq = 0;
    int64_t a = make_item(c, "1", &seq);
    int64_t b = make_item(c, "2", &seq);
    rename_table(&s, "audit", "audit_away");
    expect_code(c, "unavailable", "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                "type", "doc", "fields", "ref", "D1", "title", "lost");
    expect_code(c, "unavailable", "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                "type", "item", "fields", "number", "3", "title", "refused");
    expect_code(c, "unavailable", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", MEETING,
                "type", "item", "id", a, "fields", "title", "refused");
    expect_code(c, "unavailable", "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type",
                "item", "id", b);
    expect_code(c, "unavailable", "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user",
                "ed2", "role", "editor");
    expect_code(c, "unavailable", "report.import", "{s:s, s:s}", "meeting", MEETING, "text",
                "Abstract:\n\tThe new abstract.\n\n1\tIntroduction\nSome body.\n");
    rename_table(&s, "audit_away", "audit");
    /* The server retries the reload at the end of a loop turn: a ping makes one. */
    expect_code(c, "ok", "ping", "{}");
    expect_code(c, "ok", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", MEETING, "type",
                "item", "id", a, "fields", "title", "kept");
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest catch_up[] = {
        cmocka_unit_test(test_catch_up_does_not_stall),
        cmocka_unit_test(test_live_events_during_catch_up),
        cmocka_unit_test(test_removed_during_catch_up),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_broken_meeting_answers_unavailable),
        cmocka_unit_test(test_catch_up_over_output_limit),
    };
    int failed =
        cmocka_run_group_tests_name("catch-up", catch_up, setup_long_log, teardown_long_log);
    return failed + cmocka_run_group_tests_name("own server", own, NULL, NULL);
}
