/* test_srv_reads.c - long reads over a real conferd: time travel and exports do not stall
 * other clients, audit.verify is bounded and does not delay editors, and time travel
 * rebuilds exactly the record that was live at every seq. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cli_conn.h"
#include "proto_ot.h"
#include "srv_hub.h"
#include "testsrv.h"

#define MEETING "m1"

static const char *const users[] = {"rap", "ed2", "view", NULL};

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t make_item(struct cli_conn *c, int64_t *seq)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    MEETING, "type", "item", "fields", "number", "1", "title",
                                    "Long"),
                     0);
    assert_null(m->error);
    int64_t id = (int64_t)proto_mp_map_get(m->result, "id")->via.u64;
    *seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
    cli_msg_free(m);
    return id;
}

/* Waits for the answer to msgid and returns its seq (the edit must be accepted). */
static int64_t wait_seq(struct cli_conn *c, uint32_t msgid)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_wait(c, msgid, 60000, &m), 0);
    if (m->error) {
        fail_msg("edit refused: %s %s", m->code, m->message);
    }
    int64_t seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
    cli_msg_free(m);
    return seq;
}

/* n edits of item id, each inserting at the start, pipelined in frames of 50: quick to make,
 * and each one is a new entry in the log. Returns the seq after the last. */
static int64_t many_edits(struct cli_conn *c, int64_t id, int64_t seq, int n, const char *s)
{
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_op_insert(&op, s, strlen(s)), 0);
    for (int done = 0; done < n;) {
        int k = n - done < 50 ? n - done : 50;
        uint32_t ids[50];
        cli_conn_cork(c);
        for (int i = 0; i < k; i++) {
            ts_send_edit(c, MEETING, id, seq + i, &op, &ids[i]); /* base: the edit before it */
        }
        assert_int_equal(cli_conn_flush(c), 0);
        for (int i = 0; i < k; i++) {
            assert_int_equal(wait_seq(c, ids[i]), seq + i + 1);
        }
        seq += k;
        done += k;
    }
    proto_op_free(&op);
    return seq;
}

/* n edits of item id as many_edits makes them, each followed by an update of the item's
 * title: a replay cannot compose the edits into one op, so it applies each to the whole
 * text. Returns the seq after the last. */
static int64_t edits_apart(struct cli_conn *c, int64_t id, int64_t seq, int n)
{
    for (int i = 0; i < n; i++) {
        seq = many_edits(c, id, seq, 1, "x");
        struct cli_msg *m = NULL;
        assert_int_equal(cli_conn_callf(c, &m, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                        MEETING, "type", "item", "id", id, "fields", "title",
                                        i % 2 ? "Long" : "Longer"),
                         0);
        assert_null(m->error);
        seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
        cli_msg_free(m);
    }
    return seq;
}

/* Finding 4: a viewer's time travel over a long history (four meeting.get and an export
 * with `at` in one frame) must not hold up another client: its ping is answered before any
 * of the viewer's replies, and the viewer's replies come in order. The reads are made
 * long on purpose: no snapshots, and edits that a replay cannot compose. */
static void test_time_travel_does_not_stall(void **state)
{
    (void)state;
    struct ts_server s;
    static const char *const args[] = {"--snapshot-every", "1000000", NULL};
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *ed = ts_login(&s, "rap");
    struct cli_conn *viewer = ts_login(&s, "rap");
    struct cli_conn *other = ts_login(&s, "rap");
    assert_non_null(ed);
    assert_non_null(viewer);
    assert_non_null(other);
    int64_t seq = 0;
    int64_t id = make_item(ed, &seq);
    size_t big_len = 200 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[big_len] = '\0';
    seq = many_edits(ed, id, seq, 1, big);
    free(big);
    int64_t first = seq;
    seq = edits_apart(ed, id, seq, 1500);

    const int64_t at[4] = {seq - 1, seq - 2, first + 1500, first + 10};
    uint32_t ids[5], ping = 0;
    cli_conn_cork(viewer);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cli_conn_sendf(viewer, &ids[i], "meeting.get", "{s:s, s:I}", "meeting",
                                        MEETING, "at", at[i]),
                         0);
    }
    assert_int_equal(cli_conn_sendf(viewer, &ids[4], "report.export", "{s:s, s:s, s:I}", "meeting",
                                    MEETING, "format", "text", "at", seq - 3),
                     0);
    assert_int_equal(cli_conn_flush(viewer), 0);
    sleep_ms(30); /* let the server start on the viewer's frame */
    assert_int_equal(cli_conn_sendf(other, &ping, "ping", NULL), 0);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_wait(other, ping, 60000, &m), 0);
    assert_null(m->error);
    cli_msg_free(m);
    /* The ping is answered: none of the viewer's replies may have come yet. */
    m = NULL;
    int rc = cli_conn_next(viewer, 0, &m);
    if (rc == 0) {
        cli_msg_free(m);
        fail_msg("a viewer's time travel answered before another client's ping: the loop "
                 "stalled");
    }
    assert_int_equal(rc, PROTO_ETIMEDOUT);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cli_conn_next(viewer, 60000, &m), 0);
        assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
        assert_int_equal(m->msgid, ids[i]); /* answered in order */
        assert_null(m->error);
        int64_t want = i < 4 ? at[i] : seq - 3;
        assert_int_equal((int64_t)proto_mp_map_get(m->result, "seq")->via.u64, want);
        cli_msg_free(m);
    }
    cli_conn_close(ed);
    cli_conn_close(viewer);
    cli_conn_close(other);
    assert_int_equal(ts_stop(&s), 0);
}

/* Finding 4, the op log: after a restart (empty window) edits with an old base read the
 * ops since from the log; several in one frame must not hold up another client's ping.
 * The edits do not fit the text (so their answers wait for no commit): each is refused
 * only after the log was read and the op transformed. */
#define OLD_EDITS 40

static void test_old_base_does_not_stall(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *ed = ts_login(&s, "rap");
    assert_non_null(ed);
    int64_t seq = 0;
    int64_t id = make_item(ed, &seq);
    int64_t base = seq;
    char z[257];
    memset(z, 'z', 256);
    z[256] = '\0';
    seq = many_edits(ed, id, seq, 3000, z);
    cli_conn_free(ed);
    ts_kill(&s);
    assert_int_equal(ts_restart(&s), 0);
    ed = ts_login(&s, "rap");
    struct cli_conn *other = ts_login(&s, "rap");
    assert_non_null(ed);
    assert_non_null(other);
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_op_skip(&op, 5), 0); /* the body was empty at base */
    assert_int_equal(proto_op_insert(&op, "Q", 1), 0);
    uint32_t ids[OLD_EDITS], ping = 0;
    cli_conn_cork(ed);
    for (int i = 0; i < OLD_EDITS; i++) {
        ts_send_edit(ed, MEETING, id, base, &op, &ids[i]);
    }
    assert_int_equal(cli_conn_flush(ed), 0);
    proto_op_free(&op);
    sleep_ms(30); /* let the server start on the editor's frame */
    assert_int_equal(cli_conn_sendf(other, &ping, "ping", NULL), 0);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_wait(other, ping, 60000, &m), 0);
    cli_msg_free(m);
    m = NULL;
    int rc = cli_conn_next(ed, 0, &m);
    if (rc == 0) {
        cli_msg_free(m);
        fail_msg("edits with an old base answered before another client's ping: the loop "
                 "stalled");
    }
    assert_int_equal(rc, PROTO_ETIMEDOUT);
    for (int i = 0; i < OLD_EDITS; i++) {
        assert_int_equal(cli_conn_next(ed, 60000, &m), 0);
        assert_int_equal(m->msgid, ids[i]); /* in order */
        assert_true(cli_msg_is_error(m, "bad_request"));
        cli_msg_free(m);
    }
    cli_conn_close(ed);
    cli_conn_close(other);
    assert_int_equal(ts_stop(&s), 0);
}

#define VERIFIERS 80

/* Finding 5: many viewers verifying a long log at once. Past the bound they are answered
 * rate_limited (with retry_after_ms); an editor's edit is acknowledged before most of the
 * verifications have answered. */
static void test_verify_crowd(void **state)
{
    (void)state;
    struct ts_server s;
    /* One user on one address: lift the connection caps past the crowd. */
    static const char *const args[] = {"--max-conns-per-user", "1000", "--max-conns-per-addr",
                                       "1000", NULL};
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *ed = ts_login(&s, "rap");
    assert_non_null(ed);
    int64_t seq = 0;
    int64_t id = make_item(ed, &seq);
    seq = many_edits(ed, id, seq, 2000, "y");
    struct cli_conn *v[VERIFIERS];
    for (int i = 0; i < VERIFIERS; i++) {
        v[i] = ts_login(&s, "rap");
        assert_non_null(v[i]);
    }
    uint32_t ids[VERIFIERS];
    for (int i = 0; i < VERIFIERS; i++) {
        assert_int_equal(cli_conn_sendf(v[i], &ids[i], "audit.verify", "{s:s}", "meeting", MEETING),
                         0);
    }
    /* A round trip on the editor's connection: the server has read the verifications. */
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(ed, &m, "ping", NULL), 0);
    cli_msg_free(m);
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_op_insert(&op, "E", 1), 0);
    uint32_t edit = 0;
    ts_send_edit(ed, MEETING, id, seq, &op, &edit);
    proto_op_free(&op);
    assert_int_equal(wait_seq(ed, edit), seq + 1);

    /* Which verifications had answered by the time the edit was acknowledged. */
    int before = 0, ok = 0, limited = 0;
    struct cli_msg *ans[VERIFIERS] = {0};
    bool early[VERIFIERS] = {0};
    for (int i = 0; i < VERIFIERS; i++) {
        early[i] = cli_conn_next(v[i], 0, &ans[i]) == 0;
    }
    for (int i = 0; i < VERIFIERS; i++) {
        if (ans[i] == NULL) {
            assert_int_equal(cli_conn_next(v[i], 120000, &ans[i]), 0);
        }
        assert_int_equal(ans[i]->msgid, ids[i]);
        if (cli_msg_is_error(ans[i], "rate_limited")) {
            assert_true(cli_msg_retry_after_ms(ans[i]) > 0);
            limited++;
        } else {
            assert_null(ans[i]->error);
            assert_true(proto_mp_map_get(ans[i]->result, "ok")->via.boolean);
            /* the whole log, with or without the edit */
            assert_true((int64_t)proto_mp_map_get(ans[i]->result, "count")->via.u64 >= seq);
            ok++;
            before += early[i];
        }
        cli_msg_free(ans[i]);
    }
    print_message("verify crowd: %d verified before the edit's ack, %d ok, %d rate_limited\n",
                  before, ok, limited);
    assert_true(limited > 0);               /* the queue is bounded */
    assert_true(limited <= VERIFIERS - 66); /* 2 running and 64 waiting were taken */
    assert_true(before < ok / 2);           /* the editor did not wait for the crowd */
    for (int i = 0; i < VERIFIERS; i++) {
        cli_conn_close(v[i]);
    }
    cli_conn_close(ed);
    assert_int_equal(ts_stop(&s), 0);
}

/* The record as meeting.get answers it (at 0: live), packed again into bytes. */
static void get_record(struct cli_conn *c, int64_t at, struct proto_buf *out, int64_t *seq)
{
    struct cli_msg *m = NULL;
    if (at > 0) {
        assert_int_equal(
            cli_conn_callf(c, &m, "meeting.get", "{s:s, s:I}", "meeting", MEETING, "at", at), 0);
    } else {
        assert_int_equal(cli_conn_callf(c, &m, "meeting.get", "{s:s}", "meeting", MEETING), 0);
    }
    if (m->error) {
        fail_msg("meeting.get at %lld: %s %s", (long long)at, m->code, m->message);
    }
    *seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
    msgpack_packer pk;
    proto_buf_init(out);
    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    msgpack_pack_object(&pk, *m->result);
    cli_msg_free(m);
}

/* The body of item id in a packed record (malloc'd). */
static char *body_of(const struct proto_buf *rec, int64_t id)
{
    msgpack_unpacked u;
    size_t off = 0;
    char *out = NULL;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)rec->data, rec->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *items = proto_mp_map_get(&u.data, "items");
    for (uint32_t i = 0; items && i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        if ((int64_t)proto_mp_map_get(it, "id")->via.u64 == id) {
            const msgpack_object *b = proto_mp_map_get(it, "body");
            out = strndup(b->via.str.ptr, b->via.str.size);
        }
    }
    msgpack_unpacked_destroy(&u);
    assert_non_null(out);
    return out;
}

#define RUN_EDITS 240

static const char *const pieces[] = {"a", "é", "日本", "😀", " ", "x\n", "Ω"};

/* A random insert or delete against text (made at some older seq). */
static void random_op(const char *text, struct proto_op *op)
{
    size_t n = proto_utf8_count(text, strlen(text));
    size_t at = n ? rnd((uint32_t)n + 1) : 0;
    proto_op_skip(op, at);
    if (n > at && rnd(3) == 0) {
        proto_op_delete(op, 1 + rnd((uint32_t)(n - at < 4 ? n - at : 4)));
    } else {
        const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
        proto_op_insert(op, p, strlen(p));
    }
}

/* Two clients edit one body with stale bases (so the server transforms); after each
 * change the live record is read. Then meeting.get at s equals, byte for byte, the record
 * that was live at s, for every seq of the run. */
static void test_time_travel_equals_live(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *c[2] = {ts_login(&s, "rap"), ts_login(&s, "rap")};
    assert_non_null(c[0]);
    assert_non_null(c[1]);
    int64_t first = 0;
    int64_t id = make_item(c[0], &first);
    struct proto_buf *live = calloc(first + RUN_EDITS + 1, sizeof(*live));
    assert_non_null(live);
    int64_t seq = 0;
    get_record(c[0], 0, &live[first], &seq);
    assert_int_equal(seq, first);
    for (int i = 0; i < RUN_EDITS; i++) {
        /* A base up to 4 changes old: the text the client saw then. */
        int64_t base = seq - (int64_t)rnd(5);
        base = base < first ? first : base;
        char *text = body_of(&live[base], id);
        struct proto_op op;
        proto_op_init(&op);
        random_op(text, &op);
        free(text);
        uint32_t msgid = 0;
        ts_send_edit(c[i % 2], MEETING, id, base, &op, &msgid);
        proto_op_free(&op);
        int64_t got = wait_seq(c[i % 2], msgid);
        assert_int_equal(got, seq + 1);
        get_record(c[(i + 1) % 2], 0, &live[got], &seq);
        assert_int_equal(seq, got);
    }
    for (int64_t at = first; at <= seq; at++) {
        struct proto_buf b;
        int64_t got = 0;
        get_record(c[0], at, &b, &got);
        assert_int_equal(got, at);
        if (b.len != live[at].len || memcmp(b.data, live[at].data, b.len) != 0) {
            fail_msg("meeting.get at %lld differs from the record live at that seq", (long long)at);
        }
        proto_buf_free(&b, 0);
    }
    for (int64_t at = first; at <= seq; at++) {
        proto_buf_free(&live[at], 0);
    }
    free(live);
    cli_conn_close(c[0]);
    cli_conn_close(c[1]);
    assert_int_equal(ts_stop(&s), 0);
}

/* The one text-apply function (in place for short ops, by rebuilding for long ones) gives
 * what proto_op_apply gives, for random ops of 1 to 12 pieces over random texts, and
 * leaves the field untouched when the op does not fit. */
static void test_text_apply_equals_op_apply(void **state)
{
    (void)state;
    for (int round = 0; round < 2000; round++) {
        struct srv_val v = {0};
        size_t n = rnd(3) == 0 ? 0 : rnd(40);
        char text[256] = "";
        for (size_t i = 0; i < n; i++) {
            strcat(text, pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))]);
        }
        if (rnd(4) != 0) {
            assert_int_equal(srv_val_set_str(&v, text, strlen(text)), 0);
        } else {
            text[0] = '\0'; /* an unset field reads "" */
        }
        size_t cps = proto_utf8_count(text, strlen(text));
        struct proto_op op;
        proto_op_init(&op);
        size_t pos = 0;
        for (uint32_t k = 1 + rnd(12); k > 0; k--) {
            size_t skip = rnd((uint32_t)(cps - pos) + 1);
            proto_op_skip(&op, skip);
            pos += skip;
            if (pos < cps && rnd(2) == 0) {
                size_t del = 1 + rnd((uint32_t)(cps - pos < 3 ? cps - pos : 3));
                proto_op_delete(&op, del);
                pos += del;
            } else {
                const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
                proto_op_insert(&op, p, strlen(p));
            }
        }
        bool misfit = rnd(10) == 0;
        if (misfit) {
            proto_op_skip(&op, cps - pos + 1);
            proto_op_insert(&op, "!", 1);
        }
        char *want = NULL;
        size_t want_len = 0;
        int want_rc = proto_op_apply(text, strlen(text), &op, 0, &want, &want_len);
        assert_int_equal(srv_apply_text_fits(&v, &op, 0), want_rc);
        if (want_rc == 0 && want_len > 1) {
            assert_int_equal(srv_apply_text_fits(&v, &op, want_len), 0);
            assert_int_equal(srv_apply_text_fits(&v, &op, want_len - 1), PROTO_ETOOBIG);
        }
        assert_int_equal(srv_apply_text(&v, &op), want_rc);
        if (want_rc == 0) {
            assert_true(v.set);
            assert_int_equal(v.len, want_len);
            assert_memory_equal(v.s, want, want_len + 1);
        } else {
            assert_true(misfit);
            assert_int_equal(v.set ? v.len : 0, v.set ? strlen(text) : 0);
        }
        free(want);
        proto_op_free(&op);
        srv_val_unset(&v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_travel_does_not_stall),
        cmocka_unit_test(test_old_base_does_not_stall),
        cmocka_unit_test(test_verify_crowd),
        cmocka_unit_test(test_time_travel_equals_live),
        cmocka_unit_test(test_text_apply_equals_op_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
