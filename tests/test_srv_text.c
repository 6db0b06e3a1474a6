/* test_srv_text.c - co-editing over a real conferd: convergence of concurrent edits with
 * stale bases, reconnects with since, cid repeats, presence, and kill -9 durability. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cli_conn.h"
#include "cli_text.h"
#include "testsrv.h"

#define MEETING "m1"
#define CLIENTS 4

static const char *const users[] = {"rap", "ed2", NULL};

/* A small fixed-seed generator, so a failure can be replayed. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const pieces[] = {"a", "b", "é", "ü", "日本", "😀", " ", "x\n", "–", "Ω"};

/* Creates an item and returns its id and the seq after it. */
static int64_t make_item(struct cli_conn *c, int64_t *seq)
{
    static int made = 0; /* item numbers are unique in a meeting */
    char number[16];
    snprintf(number, sizeof(number), "%d", ++made);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    MEETING, "type", "item", "fields", "number", number, "title",
                                    "Edited"),
                     0);
    assert_null(m->error);
    int64_t id = (int64_t)proto_mp_map_get(m->result, "id")->via.u64;
    *seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
    cli_msg_free(m);
    return id;
}

static void subscribe(struct cli_conn *c, int64_t since)
{
    struct cli_msg *m = NULL;
    if (since >= 0) {
        assert_int_equal(cli_conn_callf(c, &m, "meeting.subscribe", "{s:s, s:I}", "meeting",
                                        MEETING, "since", since),
                         0);
    } else {
        assert_int_equal(cli_conn_callf(c, &m, "meeting.subscribe", "{s:s}", "meeting", MEETING),
                         0);
    }
    assert_null(m->error);
    cli_msg_free(m);
}

/* The body of an item as the server has it now. */
static char *server_body(struct cli_conn *c, int64_t id)
{
    struct cli_msg *m = NULL;
    char *out = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "meeting.get", "{s:s}", "meeting", MEETING), 0);
    assert_null(m->error);
    const msgpack_object *items = proto_mp_map_get(m->result, "items");
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        if ((int64_t)proto_mp_map_get(it, "id")->via.u64 == id) {
            const msgpack_object *b = proto_mp_map_get(it, "body");
            out = strndup(b->via.str.ptr, b->via.str.size);
        }
    }
    cli_msg_free(m);
    assert_non_null(out);
    return out;
}

/* A random edit of t's text: an insert or a delete somewhere. */
static void random_edit(struct cli_text *t)
{
    struct proto_op op;
    proto_op_init(&op);
    size_t n = proto_utf8_count(t->text, t->len);
    size_t at = n ? rnd((uint32_t)n + 1) : 0;
    proto_op_skip(&op, at);
    if (n > at && rnd(3) == 0) {
        size_t del = 1 + rnd((uint32_t)(n - at < 5 ? n - at : 5));
        proto_op_delete(&op, del);
    } else {
        const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
        proto_op_insert(&op, p, strlen(p));
    }
    assert_int_equal(cli_text_local(t, &op), 0);
    proto_op_free(&op);
}

/* Hands every queued message of c to t; returns how many there were. */
static int pump(struct cli_conn *c, struct cli_text *t, int timeout_ms)
{
    int n = 0;
    for (;;) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(c, n == 0 ? timeout_ms : 0, &m);
        if (rc == PROTO_ETIMEDOUT) {
            return n;
        }
        assert_int_equal(rc, 0);
        int h = cli_text_handle(t, c, m);
        if (h < 0) {
            fail_msg("edit refused: %s", t->error);
        }
        cli_msg_free(m);
        n++;
    }
}

/* Four replicas edit one item concurrently; all converge to the server's text. */
static void test_converge(void **state)
{
    (void)state;
    struct ts_server s;
    struct cli_conn *c[CLIENTS];
    struct cli_text t[CLIENTS];
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = ts_login(&s, users[0]); /* other connections of one user get events too */
        assert_non_null(c[i]);
    }
    int64_t seq = 0;
    int64_t id = make_item(c[0], &seq);
    for (int i = 0; i < CLIENTS; i++) {
        subscribe(c[i], seq);
        assert_int_equal(cli_text_init(&t[i], MEETING, "item", id, NULL, "body", "", 0, seq), 0);
    }
    int edits[CLIENTS] = {0};
    const int per_client = 125; /* 500 edits in all */
    bool dropped = false;
    for (int step = 0; step < 20000; step++) {
        int i = (int)rnd(CLIENTS);
        if (edits[i] < per_client && rnd(2) == 0) {
            random_edit(&t[i]);
            edits[i]++;
            assert_int_equal(cli_text_flush(&t[i], c[i]), 0);
        } else {
            pump(c[i], &t[i], 0);
        }
        /* Client 3 drops its connection mid-stream, then comes back with since. */
        if (!dropped && edits[3] == per_client / 2) {
            dropped = true;
            cli_conn_free(c[3]);
            for (int k = 0; k < 20; k++) {
                random_edit(&t[3]); /* typing on while offline */
            }
            c[3] = ts_login(&s, users[0]);
            assert_non_null(c[3]);
            subscribe(c[3], t[3].seq);
            pump(c[3], &t[3], 200);
            assert_int_equal(cli_text_resend(&t[3], c[3]), 0);
        }
        bool done = true;
        for (int k = 0; k < CLIENTS; k++) {
            done = done && edits[k] == per_client;
        }
        if (done) {
            break;
        }
    }
    /* Let everything land. */
    for (int round = 0; round < 2000; round++) {
        int got = 0;
        bool idle = true;
        for (int i = 0; i < CLIENTS; i++) {
            got += pump(c[i], &t[i], 5);
            idle = idle && cli_text_idle(&t[i]);
        }
        if (idle && got == 0) {
            break;
        }
    }
    char *server = server_body(c[0], id);
    for (int i = 0; i < CLIENTS; i++) {
        assert_true(cli_text_idle(&t[i]));
        assert_string_equal(t[i].text, server);
    }
    assert_true(strlen(server) > 0);
    free(server);
    for (int i = 0; i < CLIENTS; i++) {
        cli_text_free(&t[i]);
        cli_conn_close(c[i]);
    }
    assert_int_equal(ts_stop(&s), 0);
}

/* A text.edit repeated with its cid (as after a dropped connection) is applied once. */
static void test_cid_once(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(c, &seq);
    struct cli_msg *m1 = NULL, *m2 = NULL;
    const char *fmt = "{s:s, s:s, s:I, s:s, s:I, s:s, s:[s]}";
    assert_int_equal(cli_conn_callf(c, &m1, "text.edit", fmt, "meeting", MEETING, "type", "item",
                                    "id", id, "field", "body", "base", seq, "cid", "c-1", "op",
                                    "hello"),
                     0);
    assert_null(m1->error);
    cli_conn_free(c);
    c = ts_login(&s, "rap");
    assert_int_equal(cli_conn_callf(c, &m2, "text.edit", fmt, "meeting", MEETING, "type", "item",
                                    "id", id, "field", "body", "base", seq, "cid", "c-1", "op",
                                    "hello"),
                     0);
    assert_null(m2->error);
    assert_int_equal(proto_mp_map_get(m1->result, "seq")->via.u64,
                     proto_mp_map_get(m2->result, "seq")->via.u64);
    char *body = server_body(c, id);
    assert_string_equal(body, "hello");
    free(body);
    cli_msg_free(m1);
    cli_msg_free(m2);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* Stale bases transform: two edits against the same base both land (ShareDB's rule puts
 * the later one first at a tie). */
static void test_stale_base(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(c, &seq);
    struct cli_msg *m = NULL;
    const char *fmt = "{s:s, s:s, s:I, s:s, s:I, s:[s]}";
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", fmt, "meeting", MEETING, "type", "item",
                                    "id", id, "field", "body", "base", seq, "op", "world"),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", fmt, "meeting", MEETING, "type", "item",
                                    "id", id, "field", "body", "base", seq, "op", "hello "),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    char *body = server_body(c, id);
    assert_string_equal(body, "hello world");
    free(body);
    /* An op that does not fit, a base in the future, an empty op: bad_request. */
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[I]}",
                                    "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                    "base", seq + 2, "op", (int64_t)500),
                     0);
    assert_true(cli_msg_is_error(m, "bad_request"));
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[]}",
                                    "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                    "base", seq, "op"),
                     0);
    assert_true(cli_msg_is_error(m, "bad_request"));
    cli_msg_free(m);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* Presence: join, move and leave reach the other subscribed connections. */
static void test_presence(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap"), *b = ts_login(&s, "rap");
    subscribe(a, -1);
    subscribe(b, -1);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:i, s:s}}", "meeting",
                                    MEETING, "where", "type", "item", "id", 1, "field", "body"),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_next(b, 2000, &m), 0);
    assert_string_equal(m->method, "presence");
    assert_string_equal(proto_mp_map_get(m->params, "state")->via.str.ptr[0] == 'j' ? "join" : "?",
                        "join");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(b, &m, "presence.list", "{s:s}", "meeting", MEETING), 0);
    assert_int_equal(m->result->via.array.size, 1);
    cli_msg_free(m);
    cli_conn_free(a); /* closing the connection is a leave */
    assert_int_equal(cli_conn_next(b, 2000, &m), 0);
    assert_string_equal(m->method, "presence");
    assert_int_equal(proto_mp_map_get(m->params, "state")->via.str.size, 5); /* "leave" */
    cli_msg_free(m);
    cli_conn_close(b);
    assert_int_equal(ts_stop(&s), 0);
}

/* kill -9 during a stream of edits: every acknowledged edit survives the restart, and the
 * audit chain verifies. Repeated at several kill points. */
static void test_kill9(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(c, &seq);
    char acked[4][64][16];
    int nacked[4] = {0};
    for (int round = 0; round < 4; round++) {
        /* Pipeline edits, each inserting a unique token, and kill the server once some
         * are acknowledged while others are still in flight. */
        int kill_after = 3 + round * 7;
        uint32_t ids[64];
        char tok[64][16];
        int sent = 0, answered = 0;
        bool killed = false;
        int64_t give_up = proto_now_ms() + 10000;
        while (answered < sent || (!killed && sent < 60)) {
            if (!killed && sent < 60) {
                snprintf(tok[sent], sizeof(tok[sent]), "[%d.%d]", round, sent);
                if (cli_conn_sendf(c, &ids[sent], "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}",
                                   "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                   "base", seq, "op", tok[sent]) != 0) {
                    break;
                }
                sent++;
            }
            struct cli_msg *m = NULL;
            int rc = cli_conn_next(c, killed || sent == 60 ? 500 : 2, &m);
            if (rc == PROTO_ETIMEDOUT) {
                if (killed || proto_now_ms() > give_up) {
                    break;
                }
                continue;
            }
            if (rc != 0) {
                break; /* the server is gone: the rest are unanswered */
            }
            if (m->kind == PROTO_RPC_RESPONSE) {
                for (int i = answered; i < sent; i++) {
                    if (ids[i] == m->msgid) {
                        if (m->error == NULL) {
                            snprintf(acked[round][nacked[round]++], 16, "%s", tok[i]);
                        }
                        answered = i + 1;
                    }
                }
            }
            cli_msg_free(m);
            if (!killed && nacked[round] >= kill_after) {
                ts_kill(&s);
                killed = true;
            }
        }
        cli_conn_free(c);
        ts_kill(&s);
        assert_int_equal(ts_restart(&s), 0);
        c = ts_login(&s, "rap");
        assert_non_null(c);
        char *body = server_body(c, id);
        for (int r = 0; r <= round; r++) {
            for (int i = 0; i < nacked[r]; i++) {
                if (strstr(body, acked[r][i]) == NULL) {
                    fail_msg("acknowledged edit %s lost after kill -9", acked[r][i]);
                }
            }
        }
        free(body);
        struct cli_msg *m = NULL;
        assert_int_equal(cli_conn_callf(c, &m, "audit.verify", "{s:s}", "meeting", MEETING), 0);
        assert_null(m->error);
        assert_true(proto_mp_map_get(m->result, "ok")->via.boolean);
        cli_msg_free(m);
        assert_int_equal(cli_conn_callf(c, &m, "meeting.get", "{s:s}", "meeting", MEETING), 0);
        seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
        cli_msg_free(m);
    }
    int total = 0;
    for (int r = 0; r < 4; r++) {
        total += nacked[r];
        print_message("round %d: %d edits acknowledged before kill -9\n", r, nacked[r]);
    }
    assert_true(total > 0); /* the test must have something to lose */
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* ---- the op log fallback: bases older than the window of recent ops ---- */

#define EDIT_FMT "{s:s, s:s, s:I, s:s, s:I, s:[s]}"

/* n inserts into item id pipelined in frames of 50, each based on the one before it. */
static int64_t filler_edits(struct cli_conn *c, int64_t id, int64_t seq, int n)
{
    for (int done = 0; done < n;) {
        int k = n - done < 50 ? n - done : 50;
        uint32_t ids[50];
        cli_conn_cork(c);
        for (int i = 0; i < k; i++) {
            assert_int_equal(cli_conn_sendf(c, &ids[i], "text.edit", EDIT_FMT, "meeting", MEETING,
                                            "type", "item", "id", id, "field", "body", "base",
                                            seq + i, "op", "y"),
                             0);
        }
        assert_int_equal(cli_conn_flush(c), 0);
        for (int i = 0; i < k; i++) {
            struct cli_msg *m = NULL;
            assert_int_equal(cli_conn_wait(c, ids[i], 60000, &m), 0);
            assert_null(m->error);
            cli_msg_free(m);
        }
        seq += k;
        done += k;
    }
    return seq;
}

/* Item id's body goes "abc" (at the returned seq b), then "abcdef" and "bcdef". */
static int64_t old_base_setup(struct cli_conn *c, int64_t id, int64_t seq)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", EDIT_FMT, "meeting", MEETING, "type",
                                    "item", "id", id, "field", "body", "base", seq, "op", "abc"),
                     0);
    assert_null(m->error);
    int64_t b = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[I, s]}",
                                    "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                    "base", b, "op", (int64_t)3, "def"),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[{s:I}]}",
                                    "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                    "base", b + 1, "op", "d", (int64_t)1),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    return b;
}

/* An insert after "abc" made at b lands after "bc" and before "def" (it wins the tie). */
static void old_base_check(struct cli_conn *c, int64_t id, int64_t b)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[I, s]}",
                                    "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                    "base", b, "op", (int64_t)3, "X"),
                     0);
    if (m->error) {
        fail_msg("edit with an old base refused: %s %s", m->code, m->message);
    }
    cli_msg_free(m);
    char *body = server_body(c, id);
    assert_string_equal(body, "bcXdef");
    free(body);
}

/* A base older than the window (more text ops since than it holds): read from the log. */
static void test_old_base_window(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    int64_t seq = 0;
    int64_t id = make_item(c, &seq);
    int64_t b = old_base_setup(c, id, seq);
    int64_t other = make_item(c, &seq);
    filler_edits(c, other, seq, 4200); /* past the window of 4096 ops */
    old_base_check(c, id, b);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* After a restart the window is empty: any old base is read from the log. */
static void test_old_base_restart(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    int64_t seq = 0;
    int64_t id = make_item(c, &seq);
    int64_t b = old_base_setup(c, id, seq);
    cli_conn_free(c);
    ts_kill(&s);
    assert_int_equal(ts_restart(&s), 0);
    c = ts_login(&s, "rap");
    assert_non_null(c);
    old_base_check(c, id, b);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_base),
        cmocka_unit_test(test_cid_once),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_converge),
        cmocka_unit_test(test_kill9),
        cmocka_unit_test(test_old_base_window),
        cmocka_unit_test(test_old_base_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
