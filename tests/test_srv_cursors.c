/* test_srv_cursors.c - live cursors in presence (PROTOCOL.md section 11) over a real conferd:
 * positions given at an old base are carried over the later ops, they move with every later
 * edit, presence.list and the notifications carry the seq they refer to, the bounds of pos
 * and base, multi-byte text, and notifications that never overtake the events they count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli_conn.h"
#include "proto_rpc.h"
#include "proto_util.h"
#include "testsrv.h"

#define MEETING "m1"

static const char *const users[] = {"rap", "ed2", NULL};

static int64_t get_i(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_mp_map_get(map, key);
    assert_non_null(v);
    assert_true(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    return (int64_t)v->via.u64;
}

/* Creates an item with body text (through one edit, unless it is "") and returns its id;
 * *seq gets the seq after it. */
static int64_t make_item(struct cli_conn *c, const char *body, int64_t *seq)
{
    static int made = 0; /* item numbers are unique in a meeting */
    char number[16];
    snprintf(number, sizeof(number), "%d", ++made);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    MEETING, "type", "item", "fields", "number", number, "title",
                                    "Cursors"),
                     0);
    assert_null(m->error);
    int64_t id = get_i(m->result, "id");
    *seq = get_i(m->result, "seq");
    cli_msg_free(m);
    if (body[0] == '\0') {
        return id;
    }
    assert_int_equal(cli_conn_callf(c, &m, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}",
                                    "meeting", MEETING, "type", "item", "id", id, "field", "body",
                                    "base", *seq, "op", body),
                     0);
    assert_null(m->error);
    *seq = get_i(m->result, "seq");
    cli_msg_free(m);
    return id;
}

static void subscribe(struct cli_conn *c)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "meeting.subscribe", "{s:s}", "meeting", MEETING), 0);
    assert_null(m->error);
    cli_msg_free(m);
}

/* An edit of the item's body against base; returns its seq. */
static int64_t edit(struct cli_conn *c, int64_t id, int64_t base, const struct proto_op *op)
{
    uint32_t msgid = 0;
    struct cli_msg *m = NULL;
    ts_send_edit(c, MEETING, id, base, op, &msgid);
    assert_int_equal(cli_conn_wait(c, msgid, 5000, &m), 0);
    if (m->error) {
        fail_msg("edit refused: %s %s", m->code, m->message);
    }
    int64_t seq = get_i(m->result, "seq");
    cli_msg_free(m);
    return seq;
}

/* skip, then insert ins (may be NULL), then delete del. */
static void make_op(struct proto_op *op, size_t skip, const char *ins, size_t del)
{
    proto_op_init(op);
    assert_int_equal(proto_op_skip(op, skip), 0);
    if (ins) {
        assert_int_equal(proto_op_insert(op, ins, strlen(ins)), 0);
    }
    assert_int_equal(proto_op_delete(op, del), 0);
}

/* presence.set with a cursor in the item's body; returns the answer (the caller frees). */
static struct cli_msg *set_cursor(struct cli_conn *c, int64_t id, int64_t base, int64_t pos,
                                  int64_t anchor)
{
    struct cli_msg *m = NULL;
    int rc;
    if (anchor < 0) {
        rc = cli_conn_callf(c, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:I, s:I}}", "meeting",
                            MEETING, "where", "type", "item", "id", id, "field", "body", "base",
                            base, "pos", pos);
    } else {
        rc = cli_conn_callf(c, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:I, s:I, s:I}}",
                            "meeting", MEETING, "where", "type", "item", "id", id, "field", "body",
                            "base", base, "pos", pos, "anchor", anchor);
    }
    assert_int_equal(rc, 0);
    return m;
}

static void set_cursor_ok(struct cli_conn *c, int64_t id, int64_t base, int64_t pos, int64_t anchor)
{
    struct cli_msg *m = set_cursor(c, id, base, pos, anchor);
    if (m->error) {
        fail_msg("presence.set refused: %s %s", m->code, m->message);
    }
    cli_msg_free(m);
}

static void set_cursor_refused(struct cli_conn *c, int64_t id, int64_t base, int64_t pos,
                               int64_t anchor, const char *code)
{
    struct cli_msg *m = set_cursor(c, id, base, pos, anchor);
    assert_non_null(m->error);
    assert_string_equal(m->code, code);
    cli_msg_free(m);
}

/* presence.list as seen by c: the entry of user's connection (there is one), its pos,
 * anchor and seq. */
static void list_cursor(struct cli_conn *c, const char *user, int64_t *pos, int64_t *anchor,
                        int64_t *seq)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "presence.list", "{s:s}", "meeting", MEETING), 0);
    assert_null(m->error);
    bool found = false;
    for (uint32_t i = 0; i < m->result->via.array.size; i++) {
        const msgpack_object *e = &m->result->via.array.ptr[i];
        const msgpack_object *u = proto_mp_map_get(e, "user");
        if (u->via.str.size != strlen(user) || memcmp(u->via.str.ptr, user, u->via.str.size)) {
            continue;
        }
        const msgpack_object *w = proto_mp_map_get(e, "where");
        assert_null(proto_mp_map_get(w, "base"));
        *pos = get_i(w, "pos");
        *anchor = get_i(w, "anchor");
        *seq = get_i(e, "seq");
        found = true;
    }
    assert_true(found);
    cli_msg_free(m);
}

/* The meeting's seq, as meeting.get gives it. */
static int64_t meeting_seq(struct cli_conn *c)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "meeting.get", "{s:s}", "meeting", MEETING), 0);
    assert_null(m->error);
    int64_t seq = get_i(m->result, "seq");
    cli_msg_free(m);
    return seq;
}

/* Drops every message queued on c; returns how many presence notifications were among them. */
static int drain(struct cli_conn *c, int timeout_ms)
{
    int presence = 0;
    struct cli_msg *m = NULL;
    while (cli_conn_next(c, timeout_ms, &m) == 0) {
        if (m->method && strcmp(m->method, "presence") == 0) {
            presence++;
        }
        cli_msg_free(m);
        timeout_ms = 0;
    }
    return presence;
}

/* A cursor given at an old base is carried over the ops after it: its own field's ops move
 * it, another item's do not. */
static void test_old_base(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap"), *b = ts_login(&s, "ed2");
    assert_non_null(a);
    assert_non_null(b);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(a, &m, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING,
                                    "user", "ed2", "role", "editor"),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    int64_t base = 0;
    int64_t id = make_item(a, "hello world", &base); /* 11 code points */
    int64_t seq = 0;
    int64_t other = make_item(a, "other", &seq);
    subscribe(a);
    subscribe(b);
    /* After base: "XY" at 0, the other item edited, "world" deleted, "!" at the end. */
    struct proto_op op;
    make_op(&op, 0, "XY", 0);
    seq = edit(a, id, base, &op);
    proto_op_free(&op);
    make_op(&op, 0, "zzz", 0);
    edit(a, other, seq, &op);
    proto_op_free(&op);
    make_op(&op, 8, NULL, 5); /* "XYhello world" -> "XYhello " */
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    make_op(&op, 8, "!", 0);
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    int64_t now = meeting_seq(b);
    assert_true(now >= seq);
    /* b's cursor at base: pos 3 (in "hello"), selection from 9 (in "world"). */
    set_cursor_ok(b, id, base, 3, 9);
    int64_t pos = 0, anchor = 0, at = 0;
    list_cursor(a, "ed2", &pos, &anchor, &at);
    assert_int_equal(pos, 5);
    assert_int_equal(anchor, 8); /* inside the deleted text: where the deletion was */
    assert_int_equal(at, now);
    /* The end of the text at base is a valid position; anchor defaults to pos. */
    set_cursor_ok(b, id, base, 11, -1);
    list_cursor(a, "ed2", &pos, &anchor, &at);
    assert_int_equal(pos, 8);
    assert_int_equal(anchor, 8);
    cli_conn_free(a);
    cli_conn_free(b);
    assert_int_equal(ts_stop(&s), 0);
}

/* Set positions move with every later op of the field: presence.list shows them moved,
 * with its seq; no notification is sent because an op moved a cursor. */
static void test_moves(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap"), *b = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(a, "abcdefghij", &seq);
    subscribe(a);
    subscribe(b);
    set_cursor_ok(b, id, seq, 4, 6);     /* selection "ef" */
    assert_int_equal(drain(a, 2000), 1); /* the join */
    struct proto_op op;
    make_op(&op, 1, "123", 0); /* before both ends: +3 */
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    int64_t pos = 0, anchor = 0, at = 0;
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 7);
    assert_int_equal(anchor, 9);
    assert_int_equal(at, seq);
    make_op(&op, 8, NULL, 3); /* "a123bcdefghij": delete "fgh", over the anchor */
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 7);
    assert_int_equal(anchor, 8);
    assert_int_equal(at, seq);
    make_op(&op, 7, "Q", 0); /* an insert at the cursor lands after it */
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 7);
    assert_int_equal(anchor, 9);
    assert_int_equal(at, seq);
    /* Replacing the whole text with obj.update moves the cursor to its start. */
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(a, &m, "obj.update", "{s:s, s:s, s:I, s:{s:s}, s:I}", "meeting",
                                    MEETING, "type", "item", "id", id, "fields", "body", "new text",
                                    "if_seq", seq),
                     0);
    assert_null(m->error);
    seq = get_i(m->result, "seq");
    cli_msg_free(m);
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 0);
    assert_int_equal(anchor, 0);
    assert_int_equal(at, seq);
    /* b got the events of those edits, a their answers: neither got a presence. */
    assert_int_equal(drain(a, 300), 0);
    assert_int_equal(drain(b, 300), 0);
    /* Deleting the item forgets the cursor: where stays, without positions. */
    assert_int_equal(cli_conn_callf(a, &m, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING,
                                    "type", "item", "id", id),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(a, &m, "presence.list", "{s:s}", "meeting", MEETING), 0);
    assert_null(m->error);
    assert_int_equal(m->result->via.array.size, 1);
    const msgpack_object *w = proto_mp_map_get(&m->result->via.array.ptr[0], "where");
    assert_non_null(proto_mp_map_get(w, "field"));
    assert_null(proto_mp_map_get(w, "pos"));
    cli_msg_free(m);
    cli_conn_free(a);
    cli_conn_free(b);
    assert_int_equal(ts_stop(&s), 0);
}

/* Bounds: past the text at base, a missing base, anchor without pos, negative and non
 * integer values, a field that is not a text, bases out of range or older than the
 * window (after a restart the window starts at the restart). Nothing refused is kept. */
static void test_refused(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(a, "abc", &seq);
    int64_t created = seq - 1;
    subscribe(a);
    set_cursor_refused(a, id, seq, 4, -1, "bad_request");
    set_cursor_refused(a, id, seq, 1, 4, "bad_request");
    set_cursor_refused(a, id, seq, -1, -1, "bad_request");
    set_cursor_refused(a, id, seq + 1, 0, -1, "bad_request");
    set_cursor_refused(a, id, created - 1, 0, -1, "bad_request");
    set_cursor_refused(a, id, -1, 0, -1, "bad_request");
    set_cursor_refused(a, id + 100, seq, 0, -1, "not_found");
    /* At the create the body was empty: only 0 fits. */
    set_cursor_refused(a, id, created, 1, -1, "bad_request");
    set_cursor_ok(a, id, created, 0, -1);
    struct cli_msg *m = NULL;
    /* pos without base; pos not an integer; anchor without pos; not a text field; no field */
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:i}}",
                                    "meeting", MEETING, "where", "type", "item", "id", id, "field",
                                    "body", "pos", 1),
                     0);
    assert_non_null(m->error);
    assert_string_equal(m->code, "bad_request");
    assert_non_null(strstr(m->message, "base"));
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:s}}",
                                    "meeting", MEETING, "where", "type", "item", "id", id, "field",
                                    "body", "pos", "1"),
                     0);
    assert_string_equal(m->code, "bad_request");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:I, s:i}}",
                                    "meeting", MEETING, "where", "type", "item", "id", id, "field",
                                    "body", "base", seq, "anchor", 1),
                     0);
    assert_string_equal(m->code, "bad_request");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:I, s:i}}",
                                    "meeting", MEETING, "where", "type", "item", "id", id, "field",
                                    "title", "base", seq, "pos", 0),
                     0);
    assert_string_equal(m->code, "bad_request");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:I, s:I, s:i}}",
                                    "meeting", MEETING, "where", "type", "item", "id", id, "base",
                                    seq, "pos", 0),
                     0);
    assert_string_equal(m->code, "bad_request");
    cli_msg_free(m);
    /* The refusals kept the last cursor that was accepted. */
    int64_t pos = -1, anchor = -1, at = 0;
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 0);
    assert_int_equal(at, seq);
    /* A presence without positions is still a presence. */
    assert_int_equal(cli_conn_callf(a, &m, "presence.set", "{s:s, s:{s:s, s:I, s:s}}", "meeting",
                                    MEETING, "where", "type", "item", "id", id, "field", "body"),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    cli_conn_free(a);
    /* After a restart the window of ops starts at the seq loaded: an older base is a
     * conflict, the seq loaded itself is fine. */
    ts_kill(&s);
    assert_int_equal(ts_restart(&s), 0);
    a = ts_login(&s, "rap");
    assert_non_null(a);
    subscribe(a);
    set_cursor_refused(a, id, seq - 1, 0, -1, "conflict");
    set_cursor_ok(a, id, seq, 3, 1);
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 3);
    assert_int_equal(anchor, 1);
    cli_conn_free(a);
    assert_int_equal(ts_stop(&s), 0);
}

/* Positions count code points: a text of multi-byte characters, positions at and past its
 * end, and moves over inserts of them. */
static void test_multibyte(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap"), *b = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(a, "😀é日本x", &seq); /* 5 code points, 13 bytes */
    subscribe(a);
    subscribe(b);
    set_cursor_refused(b, id, seq, 6, -1, "bad_request");
    set_cursor_refused(b, id, seq, 13, -1, "bad_request");
    set_cursor_ok(b, id, seq, 5, 3);
    int64_t base = seq;
    struct proto_op op;
    make_op(&op, 1, "Ωü", 0); /* after the emoji */
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    make_op(&op, 4, "–", 1); /* "😀Ωüé日本x": an insert and a delete of "日" */
    seq = edit(a, id, seq, &op);
    proto_op_free(&op);
    int64_t pos = 0, anchor = 0, at = 0;
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 7);    /* "😀Ωüé–本x" is 7 long; the cursor was at the end */
    assert_int_equal(anchor, 5); /* before "本" still: the insert and the delete cancel */
    assert_int_equal(at, seq);
    /* Given again at the old base, the same positions come out. */
    set_cursor_ok(b, id, base, 5, 3);
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, 7);
    assert_int_equal(anchor, 5);
    cli_conn_free(a);
    cli_conn_free(b);
    assert_int_equal(ts_stop(&s), 0);
}

/* The meeting's own text field: its id is the meeting's id; a text past the bytes a quick
 * bound decides (a long multi-byte text) is counted. */
static void test_meeting_abstract(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap"), *b = ts_login(&s, "rap");
    subscribe(a);
    subscribe(b);
    enum { N = 3000 };
    char *text = malloc(N * 2 + 1);
    assert_non_null(text);
    for (int i = 0; i < N; i++) {
        memcpy(text + 2 * i, "é", 2);
    }
    text[N * 2] = '\0';
    int64_t seq = meeting_seq(a);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(a, &m, "text.edit", "{s:s, s:s, s:s, s:s, s:I, s:[s]}",
                                    "meeting", MEETING, "type", "meeting", "id", MEETING, "field",
                                    "abstract", "base", seq, "op", text),
                     0);
    assert_null(m->error);
    seq = get_i(m->result, "seq");
    cli_msg_free(m);
    free(text);
    const char *fmt = "{s:s, s:{s:s, s:s, s:s, s:I, s:I, s:I}}";
    assert_int_equal(cli_conn_callf(b, &m, "presence.set", fmt, "meeting", MEETING, "where", "type",
                                    "meeting", "id", MEETING, "field", "abstract", "base", seq,
                                    "pos", (int64_t)N + 1, "anchor", (int64_t)0),
                     0);
    assert_string_equal(m->code, "bad_request");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(b, &m, "presence.set", fmt, "meeting", MEETING, "where", "type",
                                    "meeting", "id", "other", "field", "abstract", "base", seq,
                                    "pos", (int64_t)0, "anchor", (int64_t)0),
                     0);
    assert_string_equal(m->code, "not_found");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(b, &m, "presence.set", fmt, "meeting", MEETING, "where", "type",
                                    "meeting", "id", MEETING, "field", "abstract", "base", seq,
                                    "pos", (int64_t)N, "anchor", (int64_t)10),
                     0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(a, &m, "text.edit", "{s:s, s:s, s:s, s:s, s:I, s:[i, s]}",
                                    "meeting", MEETING, "type", "meeting", "id", MEETING, "field",
                                    "abstract", "base", seq, "op", 5, "日本"),
                     0);
    assert_null(m->error);
    seq = get_i(m->result, "seq");
    cli_msg_free(m);
    int64_t pos = 0, anchor = 0, at = 0;
    list_cursor(a, "rap", &pos, &anchor, &at);
    assert_int_equal(pos, N + 2);
    assert_int_equal(anchor, 12);
    assert_int_equal(at, seq);
    cli_conn_free(a);
    cli_conn_free(b);
    assert_int_equal(ts_stop(&s), 0);
}

/* Notifications carry seq, have no base, and arrive after every event with a lower or
 * equal seq: an editor pipelines an edit and its cursor (one frame, one loop turn, so the
 * cursor is set while the edit's batch is not yet durable) many times over. */
static void test_notify_order(void **state)
{
    (void)state;
    struct ts_server s;
    assert_int_equal(ts_start(&s, users, MEETING), 0);
    struct cli_conn *a = ts_login(&s, "rap"), *b = ts_login(&s, "rap");
    int64_t seq = 0;
    int64_t id = make_item(a, "", &seq);
    subscribe(a);
    subscribe(b);
    enum { ROUNDS = 40 };
    int64_t len = 0;
    for (int r = 0; r < ROUNDS; r++) {
        struct proto_op op;
        make_op(&op, (size_t)len, "é", 0);
        uint32_t ids[2];
        cli_conn_cork(a);
        ts_send_edit(a, MEETING, id, seq, &op, &ids[0]);
        proto_op_free(&op);
        /* The cursor after the insert, given against the base before it: the server
         * carries it over the edit it has just applied. */
        assert_int_equal(cli_conn_sendf(a, &ids[1], "presence.set",
                                        "{s:s, s:{s:s, s:I, s:s, s:I, s:I}}", "meeting", MEETING,
                                        "where", "type", "item", "id", id, "field", "body", "base",
                                        seq, "pos", len),
                         0);
        assert_int_equal(cli_conn_flush(a), 0);
        struct cli_msg *m = NULL;
        assert_int_equal(cli_conn_wait(a, ids[0], 5000, &m), 0);
        assert_null(m->error);
        seq = get_i(m->result, "seq");
        cli_msg_free(m);
        assert_int_equal(cli_conn_wait(a, ids[1], 5000, &m), 0);
        assert_null(m->error);
        cli_msg_free(m);
        len++;
    }
    /* b: every presence comes after the events up to its seq; its cursor is at the end of
     * the text that those events make (the insert at the cursor lands after it: at len-1,
     * the cursor given before the insert stays before it). */
    int64_t last_event = 0;
    int presences = 0, events = 0;
    int64_t give_up = proto_now_ms() + 10000;
    while ((presences < ROUNDS || events < ROUNDS) && proto_now_ms() < give_up) {
        struct cli_msg *m = NULL;
        if (cli_conn_next(b, 1000, &m) != 0) {
            continue;
        }
        if (strcmp(m->method, "event") == 0) {
            int64_t es = get_i(m->params, "seq");
            assert_true(es > last_event);
            last_event = es;
            events++;
        } else if (strcmp(m->method, "presence") == 0) {
            int64_t ps = get_i(m->params, "seq");
            assert_true(ps <= last_event);
            assert_int_equal(ps, last_event);
            const msgpack_object *w = proto_mp_map_get(m->params, "where");
            assert_null(proto_mp_map_get(w, "base"));
            /* Round r gave pos r at the base before its insert at r: the insert lands after
             * the cursor, so it stays at r. */
            assert_int_equal(get_i(w, "pos"), presences);
            assert_int_equal(get_i(w, "anchor"), presences);
            presences++;
        }
        cli_msg_free(m);
    }
    assert_int_equal(events, ROUNDS);
    assert_int_equal(presences, ROUNDS);
    cli_conn_free(a);
    cli_conn_free(b);
    assert_int_equal(ts_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_base),         cmocka_unit_test(test_moves),
        cmocka_unit_test(test_refused),          cmocka_unit_test(test_multibyte),
        cmocka_unit_test(test_meeting_abstract), cmocka_unit_test(test_notify_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
