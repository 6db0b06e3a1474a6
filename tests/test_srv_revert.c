/* test_srv_revert.c - change.revert against a real conferd: every kind of change undone,
 * an undo undone, an item brought back with its docs and decisions, a text edit undone
 * after later concurrent edits, skipped fields, conflicts, the final lock, seqs out of
 * range and roles. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "proto_msgpack.h"
#include "proto_ot.h"
#include "testsrv.h"
#include "testutil.h"

#define MEETING "m1"

static const char *const names[] = {"rap", "ed", "ass", NULL};

struct fixture {
    struct ts_server s;
    struct cli_conn *rap;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(ts_start(&f->s, names, MEETING), 0);
    f->rap = ts_login(&f->s, "rap");
    assert_non_null(f->rap);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cli_conn_close(f->rap);
    assert_int_equal(ts_stop(&f->s), 0);
    free(f);
    return 0;
}

/* A call whose answer the caller reads (and frees). */
static struct cli_msg *call(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    struct proto_buf b = {0};
    struct cli_msg *m = NULL;
    va_start(ap, fmt);
    assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    va_end(ap);
    assert_int_equal(cli_conn_call(c, method, b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    return m;
}

/* The result's key (an integer) of a call that must succeed. */
static int64_t ok_int(struct cli_msg *m, const char *what, const char *key)
{
    if (m->error) {
        fail_msg("%s: %s: %s", what, m->code, m->message);
    }
    int64_t v = 0;
    assert_int_equal(proto_param_i64(m->result, key, &v), 0);
    cli_msg_free(m);
    return v;
}

static void expect_error(struct cli_msg *m, const char *code)
{
    assert_non_null(m->error);
    if (strcmp(m->code, code) != 0) {
        fail_msg("expected %s, got %s: %s", code, m->code, m->message);
    }
    cli_msg_free(m);
}

static struct cli_msg *revert(struct cli_conn *c, int64_t seq)
{
    return call(c, "change.revert", "{s:s, s:I}", "meeting", MEETING, "seq", seq);
}

static int64_t revert_ok(struct cli_conn *c, int64_t seq)
{
    return ok_int(revert(c, seq), "change.revert", "seq");
}

static int64_t head(struct cli_conn *c)
{
    return ok_int(call(c, "meeting.get", "{s:s}", "meeting", MEETING), "meeting.get", "seq");
}

static int64_t create_item(struct cli_conn *c, const char *number, const char *title,
                           const char *body)
{
    return ok_int(call(c, "obj.create", "{s:s, s:s, s:{s:s, s:s, s:s}}", "meeting", MEETING, "type",
                       "item", "fields", "number", number, "title", title, "body", body),
                  "obj.create", "id");
}

/* The object of type (a list of meeting.get: "items", "docs", ...) with id, as a map in
 * *m (freed by the caller); NULL when absent. */
static const msgpack_object *get_obj(struct cli_conn *c, const char *list, int64_t id,
                                     struct cli_msg **m)
{
    *m = call(c, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_null((*m)->error);
    const msgpack_object *v = proto_mp_map_get((*m)->result, list);
    assert_non_null(v);
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        int64_t x = 0;
        if (proto_param_i64(&v->via.array.ptr[i], "id", &x) == 0 && x == id) {
            return &v->via.array.ptr[i];
        }
    }
    return NULL;
}

/* Field key of the object, as a string ("" for nil). */
static void field_str(struct cli_conn *c, const char *list, int64_t id, const char *key, char *out,
                      size_t cap)
{
    struct cli_msg *m = NULL;
    const msgpack_object *o = get_obj(c, list, id, &m);
    assert_non_null(o);
    const msgpack_object *v = proto_mp_map_get(o, key);
    out[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR) {
        snprintf(out, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    }
    cli_msg_free(m);
}

/* A doc's or decision's item (0 for nil). */
static int64_t field_int(struct cli_conn *c, const char *list, int64_t id, const char *key)
{
    struct cli_msg *m = NULL;
    const msgpack_object *o = get_obj(c, list, id, &m);
    assert_non_null(o);
    int64_t v = 0;
    const msgpack_object *x = proto_mp_map_get(o, key);
    if (x && x->type != MSGPACK_OBJECT_NIL) {
        assert_int_equal(proto_param_i64(o, key, &v), 0);
    }
    cli_msg_free(m);
    return v;
}

static bool exists(struct cli_conn *c, const char *list, int64_t id)
{
    struct cli_msg *m = NULL;
    bool found = get_obj(c, list, id, &m) != NULL;
    cli_msg_free(m);
    return found;
}

static void verify_ok(struct cli_conn *c)
{
    struct cli_msg *m = call(c, "audit.verify", "{s:s}", "meeting", MEETING);
    assert_null(m->error);
    const msgpack_object *ok = proto_mp_map_get(m->result, "ok");
    assert_true(ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean);
    cli_msg_free(m);
}

/* Waits for the event of seq on c (subscribed), skipping the others; the caller frees it. */
static struct cli_msg *wait_event(struct cli_conn *c, int64_t seq)
{
    for (int i = 0; i < 100; i++) {
        struct cli_msg *ev = NULL;
        assert_int_equal(cli_conn_next(c, 5000, &ev), 0);
        int64_t s = 0;
        if (ev->method && strcmp(ev->method, "event") == 0 &&
            proto_param_i64(ev->params, "seq", &s) == 0 && s == seq) {
            return ev;
        }
        cli_msg_free(ev);
    }
    fail_msg("no event for seq %lld", (long long)seq);
    return NULL;
}

/* The ids of list key of map o, in order, into v (at most cap); returns how many. */
static size_t ids_of(const msgpack_object *o, const char *key, int64_t *v, size_t cap)
{
    const msgpack_object *a = proto_mp_map_get(o, key);
    assert_true(a && a->type == MSGPACK_OBJECT_ARRAY);
    size_t n = 0;
    for (uint32_t i = 0; i < a->via.array.size && n < cap; i++) {
        v[n++] = (int64_t)a->via.array.ptr[i].via.u64;
    }
    return n;
}

/* create -> delete; the delete reverted -> the same object back; events carry revert. */
static void test_create_and_its_undo(void **state)
{
    struct fixture *f = *state;
    struct cli_conn *watch = ts_login(&f->s, "rap");
    assert_non_null(watch);
    cli_msg_free(call(watch, "meeting.subscribe", "{s:s}", "meeting", MEETING));
    int64_t id = create_item(f->rap, "1", "Opening", "first words");
    int64_t created = head(f->rap);
    int64_t undo = revert_ok(f->rap, created);
    assert_int_equal(undo, created + 1);
    assert_false(exists(f->rap, "items", id));
    /* The watcher sees the create, then a delete that names the seq it undid. */
    struct cli_msg *ev = NULL;
    bool seen = false;
    for (int i = 0; i < 5 && !seen; i++) {
        assert_int_equal(cli_conn_next(watch, 5000, &ev), 0);
        int64_t seq = 0, rv = 0;
        if (ev->method && strcmp(ev->method, "event") == 0 &&
            proto_param_i64(ev->params, "seq", &seq) == 0 && seq == undo) {
            char kind[16] = "";
            assert_int_equal(proto_param_strcpy(ev->params, "kind", kind, sizeof(kind)), 0);
            assert_string_equal(kind, "delete");
            assert_int_equal(proto_param_i64(ev->params, "revert", &rv), 0);
            assert_int_equal(rv, created);
            seen = true;
        }
        cli_msg_free(ev);
    }
    assert_true(seen);
    cli_conn_close(watch);
    /* Undoing the undo brings the item back with its id and fields, body included. */
    revert_ok(f->rap, undo);
    char s[64];
    field_str(f->rap, "items", id, "title", s, sizeof(s));
    assert_string_equal(s, "Opening");
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, "first words");
    /* A create whose object is gone again: conflict. */
    cli_msg_free(call(f->rap, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "item",
                      "id", id));
    expect_error(revert(f->rap, created), "conflict");
    verify_ok(f->rap);
}

/* A deleted item comes back with the links its delete cleared, except one set since. */
static void test_delete_restores_links(void **state)
{
    struct fixture *f = *state;
    struct cli_conn *watch = ts_login(&f->s, "rap");
    assert_non_null(watch);
    cli_msg_free(call(watch, "meeting.subscribe", "{s:s}", "meeting", MEETING));
    int64_t item = create_item(f->rap, "1", "Budget", "");
    int64_t other = create_item(f->rap, "2", "Other", "");
    int64_t doc = ok_int(call(f->rap, "obj.create", "{s:s, s:s, s:{s:s, s:I}}", "meeting", MEETING,
                              "type", "doc", "fields", "ref", "D-1", "item", item),
                         "obj.create", "id");
    int64_t doc2 = ok_int(call(f->rap, "obj.create", "{s:s, s:s, s:{s:s, s:I}}", "meeting", MEETING,
                               "type", "doc", "fields", "ref", "D-2", "item", item),
                          "obj.create", "id");
    int64_t dec = ok_int(call(f->rap, "obj.create", "{s:s, s:s, s:{s:I, s:s}}", "meeting", MEETING,
                              "type", "decision", "fields", "item", item, "text", "approved"),
                         "obj.create", "id");
    int64_t del = ok_int(call(f->rap, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type",
                              "item", "id", item),
                         "obj.delete", "seq");
    assert_int_equal(field_int(f->rap, "docs", doc, "item"), 0);
    assert_int_equal(field_int(f->rap, "decisions", dec, "item"), 0);
    /* The delete's event names what it unlinked. */
    struct cli_msg *ev = wait_event(watch, del);
    const msgpack_object *ul = proto_mp_map_get(ev->params, "unlinked");
    assert_non_null(ul);
    int64_t v[4];
    assert_int_equal(ids_of(ul, "doc", v, 4), 2);
    assert_true((v[0] == doc && v[1] == doc2) || (v[0] == doc2 && v[1] == doc));
    assert_int_equal(ids_of(ul, "decision", v, 4), 1);
    assert_int_equal(v[0], dec);
    cli_msg_free(ev);
    /* Someone points the second doc elsewhere meanwhile: it stays there. */
    ok_int(call(f->rap, "obj.update", "{s:s, s:s, s:I, s:{s:I}}", "meeting", MEETING, "type", "doc",
                "id", doc2, "fields", "item", other),
           "obj.update", "seq");
    int64_t undo = revert_ok(f->rap, del);
    ev = wait_event(watch, undo);
    const msgpack_object *rl = proto_mp_map_get(ev->params, "relinked");
    assert_non_null(rl);
    assert_int_equal(ids_of(rl, "doc", v, 4), 1);
    assert_int_equal(v[0], doc);
    assert_int_equal(ids_of(rl, "decision", v, 4), 1);
    cli_msg_free(ev);
    cli_conn_close(watch);
    assert_true(exists(f->rap, "items", item));
    assert_int_equal(field_int(f->rap, "docs", doc, "item"), item);
    assert_int_equal(field_int(f->rap, "decisions", dec, "item"), item);
    assert_int_equal(field_int(f->rap, "docs", doc2, "item"), other);
    verify_ok(f->rap);
    /* The restore undone deletes the item again, and clears the links again. */
    revert_ok(f->rap, undo);
    assert_false(exists(f->rap, "items", item));
    assert_int_equal(field_int(f->rap, "docs", doc, "item"), 0);
    /* A doc deleted and its ref taken meanwhile: conflict. */
    int64_t ddel = ok_int(
        call(f->rap, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "doc", "id", doc),
        "obj.delete", "seq");
    ok_int(call(f->rap, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", MEETING, "type", "doc",
                "fields", "ref", "D-1"),
           "obj.create", "id");
    expect_error(revert(f->rap, ddel), "conflict");
    verify_ok(f->rap);
}

/* update -> the fields back unless changed since (skipped); all changed: conflict. */
static void test_update_skips_later_fields(void **state)
{
    struct fixture *f = *state;
    int64_t id = create_item(f->rap, "1", "Old title", "");
    int64_t up =
        ok_int(call(f->rap, "obj.update", "{s:s, s:s, s:I, s:{s:s, s:s}}", "meeting", MEETING,
                    "type", "item", "id", id, "fields", "number", "7", "title", "New title"),
               "obj.update", "seq");
    ok_int(call(f->rap, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", MEETING, "type",
                "item", "id", id, "fields", "number", "8"),
           "obj.update", "seq");
    struct cli_msg *m = revert(f->rap, up);
    assert_null(m->error);
    const msgpack_object *sk = proto_mp_map_get(m->result, "skipped");
    assert_true(sk && sk->type == MSGPACK_OBJECT_ARRAY && sk->via.array.size == 1);
    assert_int_equal(sk->via.array.ptr[0].via.str.size, 6);
    assert_memory_equal(sk->via.array.ptr[0].via.str.ptr, "number", 6);
    cli_msg_free(m);
    char s[64];
    field_str(f->rap, "items", id, "title", s, sizeof(s));
    assert_string_equal(s, "Old title");
    field_str(f->rap, "items", id, "number", s, sizeof(s));
    assert_string_equal(s, "8");
    /* The first update again: its title was set since (by the revert), its number by the
     * second update: nothing is left to undo. */
    expect_error(revert(f->rap, up), "conflict");
    /* An update of an object deleted since: conflict. */
    int64_t up2 = ok_int(call(f->rap, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", MEETING,
                              "type", "item", "id", id, "fields", "title", "T"),
                         "obj.update", "seq");
    cli_msg_free(call(f->rap, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "item",
                      "id", id));
    expect_error(revert(f->rap, up2), "conflict");
    verify_ok(f->rap);
}

static int64_t edit(struct cli_conn *c, int64_t id, int64_t base, size_t skip, const char *ins)
{
    struct proto_op op;
    proto_op_init(&op);
    proto_op_skip(&op, skip);
    proto_op_insert(&op, ins, strlen(ins));
    struct proto_buf ob = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ob, proto_buf_msgpack_write);
    proto_op_encode(&op, &pk);
    proto_op_free(&op);
    int64_t seq =
        ok_int(call(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:r}", "meeting", MEETING, "type",
                    "item", "id", id, "field", "body", "base", base, "op", ob.data, ob.len),
               "text.edit", "seq");
    proto_buf_free(&ob, 0);
    return seq;
}

/* text -> the inverse op, over the edits made after it (one of them concurrent). */
static void test_text_after_concurrent_edits(void **state)
{
    struct fixture *f = *state;
    int64_t id = create_item(f->rap, "1", "T", "hello world");
    int64_t base = head(f->rap);
    int64_t big = edit(f->rap, id, base, 6, "big "); /* hello big world */
    edit(f->rap, id, base, 11, "!");                 /* concurrent: hello big world! */
    edit(f->rap, id, head(f->rap), 0, ">> ");        /* >> hello big world! */
    char s[64];
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, ">> hello big world!");
    int64_t undo = revert_ok(f->rap, big);
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, ">> hello world!");
    /* The undo undone: the words come back where they were. */
    revert_ok(f->rap, undo);
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, ">> hello big world!");
    /* A text replaced with obj.update is undone with the old text. */
    struct cli_msg *m = NULL;
    const msgpack_object *o = get_obj(f->rap, "items", id, &m);
    int64_t oseq = 0;
    assert_int_equal(proto_param_i64(o, "seq", &oseq), 0);
    cli_msg_free(m);
    int64_t rep =
        ok_int(call(f->rap, "obj.update", "{s:s, s:s, s:I, s:{s:s}, s:I}", "meeting", MEETING,
                    "type", "item", "id", id, "fields", "body", "replaced", "if_seq", oseq),
               "obj.update", "seq");
    revert_ok(f->rap, rep);
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, ">> hello big world!");
    verify_ok(f->rap);
}

/* member -> the role before; changed since: conflict; the role rules apply. */
static void test_member_and_roles(void **state)
{
    struct fixture *f = *state;
    int64_t set = ok_int(call(f->rap, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user",
                              "ed", "role", "editor"),
                         "member.set", "seq");
    ok_int(call(f->rap, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ass", "role",
                "associate"),
           "member.set", "seq");
    int64_t id = create_item(f->rap, "1", "T", "abc");
    int64_t created = head(f->rap);
    int64_t ed_edit = 0;
    struct cli_conn *ed = ts_login(&f->s, "ed");
    assert_non_null(ed);
    ed_edit = edit(ed, id, created, 3, "d");
    /* An editor may undo a text edit, not a create; an associate may undo the create. */
    expect_error(revert(ed, created), "forbidden");
    revert_ok(ed, ed_edit);
    struct cli_conn *ass = ts_login(&f->s, "ass");
    assert_non_null(ass);
    expect_error(revert(ass, set), "forbidden"); /* a member change is the rapporteur's */
    revert_ok(ass, created);
    cli_conn_close(ass);
    cli_conn_close(ed);
    /* The rapporteur undoes ed's membership: ed is no member any more, and a connection
     * of ed's that followed the meeting gets nothing of it after that. */
    struct cli_conn *ed2 = ts_login(&f->s, "ed");
    assert_non_null(ed2);
    struct cli_msg *m = call(ed2, "meeting.subscribe", "{s:s}", "meeting", MEETING);
    assert_null(m->error);
    cli_msg_free(m);
    int64_t undo = revert_ok(f->rap, set);
    m = call(f->rap, "member.list", "{s:s}", "meeting", MEETING);
    assert_null(m->error);
    assert_int_equal(m->result->via.array.size, 2);
    cli_msg_free(m);
    create_item(f->rap, "9", "after ed left", "");
    for (int i = 0; i < 10; i++) {
        if (cli_conn_next(ed2, i == 0 ? 500 : 0, &m) != 0) {
            break;
        }
        int64_t seq = 0;
        if (m->method && strcmp(m->method, "event") == 0 &&
            proto_param_i64(m->params, "seq", &seq) == 0 && seq > undo) {
            fail_msg("a removed member got event %lld", (long long)seq);
        }
        cli_msg_free(m);
    }
    cli_conn_close(ed2);
    /* Undoing it again makes ed an editor again; then a later change blocks the first. */
    revert_ok(f->rap, undo);
    ok_int(call(f->rap, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ed", "role",
                "viewer"),
           "member.set", "seq");
    expect_error(revert(f->rap, set), "conflict");
    verify_ok(f->rap);
}

/* Final: locked, but the finalisation itself may be undone; seqs out of range. */
static void test_locked_and_bad_seq(void **state)
{
    struct fixture *f = *state;
    create_item(f->rap, "1", "T", "");
    int64_t created = head(f->rap);
    int64_t fin = ok_int(call(f->rap, "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", MEETING,
                              "type", "meeting", "id", MEETING, "fields", "status", "final"),
                         "obj.update", "seq");
    expect_error(revert(f->rap, created), "locked");
    revert_ok(f->rap, fin);
    char s[32];
    struct cli_msg *m = call(f->rap, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_int_equal(
        proto_param_strcpy(proto_mp_map_get(m->result, "meeting"), "status", s, sizeof(s)), 0);
    assert_string_equal(s, "draft");
    cli_msg_free(m);
    int64_t h = head(f->rap);
    expect_error(revert(f->rap, 1), "bad_request");
    expect_error(revert(f->rap, 0), "bad_request");
    expect_error(revert(f->rap, h + 1), "bad_request");
    expect_error(call(f->rap, "change.revert", "{s:s}", "meeting", MEETING), "bad_request");
    expect_error(call(f->rap, "change.revert", "{s:s, s:s}", "meeting", MEETING, "seq", "2"),
                 "bad_request");
    /* A repeated cid gets the first answer, not a second undo. */
    int64_t id = create_item(f->rap, "2", "U", "");
    int64_t c2 = head(f->rap);
    int64_t a = ok_int(call(f->rap, "change.revert", "{s:s, s:I, s:s}", "meeting", MEETING, "seq",
                            c2, "cid", "undo-1"),
                       "change.revert", "seq");
    int64_t b = ok_int(call(f->rap, "change.revert", "{s:s, s:I, s:s}", "meeting", MEETING, "seq",
                            c2, "cid", "undo-1"),
                       "change.revert", "seq");
    assert_int_equal(a, b);
    assert_false(exists(f->rap, "items", id));
    verify_ok(f->rap);
}

/* A revert after a restart reads the log from the database (nothing pending). */
static void test_after_restart(void **state)
{
    struct fixture *f = *state;
    int64_t id = create_item(f->rap, "1", "T", "abc");
    int64_t del = ok_int(
        call(f->rap, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "item", "id", id),
        "obj.delete", "seq");
    cli_conn_close(f->rap);
    ts_kill(&f->s);
    assert_int_equal(ts_restart(&f->s), 0);
    f->rap = ts_login(&f->s, "rap");
    assert_non_null(f->rap);
    revert_ok(f->rap, del);
    char s[16];
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, "abc");
    verify_ok(f->rap);
}

/* A revert while another connection's edits pour in: whether the read had to run again or
 * not, the undo lands on the text as it is then, and the record verifies. */
static void test_while_others_edit(void **state)
{
    struct fixture *f = *state;
    ok_int(call(f->rap, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ed", "role",
                "editor"),
           "member.set", "seq");
    int64_t id = create_item(f->rap, "1", "T", "base");
    int64_t x = edit(f->rap, id, head(f->rap), 0, "X"); /* Xbase */
    struct cli_conn *ed = ts_login(&f->s, "ed");
    assert_non_null(ed);
    struct proto_op op;
    proto_op_init(&op);
    proto_op_skip(&op, 5);
    proto_op_insert(&op, "e", 1);
    enum { N = 100 };
    uint32_t ids[N];
    for (int i = 0; i < N; i++) {
        ts_send_edit(ed, MEETING, id, x, &op, &ids[i]);
    }
    proto_op_free(&op);
    struct cli_msg *m = revert(f->rap, x);
    bool undone = m->error == NULL;
    if (!undone) {
        assert_string_equal(m->code, "conflict"); /* the meeting moved too often */
    }
    cli_msg_free(m);
    for (int i = 0; i < N; i++) {
        struct cli_msg *r = NULL;
        assert_int_equal(cli_conn_wait(ed, ids[i], 10000, &r), 0);
        assert_null(r->error);
        cli_msg_free(r);
    }
    cli_conn_close(ed);
    char *log = ts_read_log(&f->s);
    print_message("revert %s; reads again: %s\n", undone ? "made" : "refused",
                  log && strstr(log, "reading again") ? "yes" : "no");
    free(log);
    if (!undone) {
        revert_ok(f->rap, x);
    }
    char want[8 + N], s[8 + N + 8];
    snprintf(want, sizeof(want), "base");
    memset(want + 4, 'e', N);
    want[4 + N] = '\0';
    field_str(f->rap, "items", id, "body", s, sizeof(s));
    assert_string_equal(s, want);
    verify_ok(f->rap);
}

/* The number of objects of a meeting.get list. */
static uint32_t count(struct cli_conn *c, const char *list)
{
    struct cli_msg *m = call(c, "meeting.get", "{s:s}", "meeting", MEETING);
    assert_null(m->error);
    const msgpack_object *v = proto_mp_map_get(m->result, list);
    assert_true(v && v->type == MSGPACK_OBJECT_ARRAY);
    uint32_t n = v->via.array.size;
    cli_msg_free(m);
    return n;
}

/* The id of the first object of a meeting.get list that the record had not before. */
static int64_t first_id_above(struct cli_conn *c, const char *list, int64_t above)
{
    struct cli_msg *m = call(c, "meeting.get", "{s:s}", "meeting", MEETING);
    const msgpack_object *v = proto_mp_map_get(m->result, list);
    int64_t found = 0;
    for (uint32_t i = 0; v && i < v->via.array.size && found == 0; i++) {
        int64_t x = 0;
        if (proto_param_i64(&v->via.array.ptr[i], "id", &x) == 0 && x > above) {
            found = x;
        }
    }
    cli_msg_free(m);
    assert_true(found > 0);
    return found;
}

/* The seq of the change that created object id, from history.list; *import gets the entry's
 * "import" (0 when it has none). */
static int64_t created_at(struct cli_conn *c, const char *type, int64_t id, int64_t *import)
{
    struct cli_msg *m =
        call(c, "history.list", "{s:s, s:s, s:I}", "meeting", MEETING, "type", type, "id", id);
    assert_null(m->error);
    int64_t seq = 0;
    *import = 0;
    for (uint32_t i = 0; i < m->result->via.array.size; i++) {
        const msgpack_object *e = &m->result->via.array.ptr[i];
        char kind[16] = "";
        proto_param_strcpy(e, "kind", kind, sizeof(kind));
        if (strcmp(kind, "create") == 0) {
            assert_int_equal(proto_param_i64(e, "seq", &seq), 0);
            if (proto_mp_map_get(e, "import") != NULL) {
                assert_int_equal(proto_param_i64(e, "import", import), 0);
            }
        }
    }
    cli_msg_free(m);
    assert_true(seq > 0);
    return seq;
}

/* Reverting any change of an import takes the whole import back, newest first: what it made
 * goes, what was there before stays, a change already undone is left and named, only the
 * rapporteur may, and a second time is a conflict. */
static void test_import_reverts_whole(void **state)
{
    struct fixture *f = *state;
    int64_t before = create_item(f->rap, "99", "Kept", "made before the import");
    int64_t head0 = head(f->rap);
    size_t len = 0;
    char *report = tu_read_data("rg-iem-report-2023-06.txt", &len);
    assert_non_null(report);
    struct cli_msg *m = call(f->rap, "report.import", "{s:s, s:s, s:s}", "meeting", MEETING, "text",
                             report, "mode", "merge");
    free(report);
    assert_null(m->error);
    cli_msg_free(m);
    int64_t last = head(f->rap);
    assert_true(last > head0 + 10);
    uint32_t items = count(f->rap, "items"), docs = count(f->rap, "docs");
    assert_true(items > 5 && docs > 5);
    /* An imported doc removed since: its create is left by the revert. */
    int64_t doc = first_id_above(f->rap, "docs", before);
    int64_t imp = 0;
    int64_t doc_seq = created_at(f->rap, "doc", doc, &imp);
    assert_int_equal(imp, head0 + 1);
    revert_ok(f->rap, doc_seq);                  /* reverting a change of the import... */
    assert_int_equal(count(f->rap, "items"), 1); /* ...took it all back */
    assert_int_equal(count(f->rap, "docs"), 0);
    assert_int_equal(count(f->rap, "actions"), 0);
    assert_int_equal(count(f->rap, "decisions"), 0);
    assert_true(exists(f->rap, "items", before));
    verify_ok(f->rap);
}

/* The answer names the import and what it left; only the rapporteur reverts an import. */
static void test_import_revert_answer(void **state)
{
    struct fixture *f = *state;
    ok_int(call(f->rap, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "ass", "role",
                "associate"),
           "member.set", "seq");
    int64_t before = create_item(f->rap, "99", "Kept", "made before the import");
    int64_t head0 = head(f->rap);
    size_t len = 0;
    char *report = tu_read_data("rg-iem-report-2023-06.txt", &len);
    assert_non_null(report);
    cli_msg_free(call(f->rap, "report.import", "{s:s, s:s, s:s}", "meeting", MEETING, "text",
                      report, "mode", "merge"));
    free(report);
    int64_t last = head(f->rap);
    int64_t doc = first_id_above(f->rap, "docs", before), imp = 0;
    int64_t doc_seq = created_at(f->rap, "doc", doc, &imp);
    cli_msg_free(call(f->rap, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING, "type", "doc",
                      "id", doc));
    struct cli_conn *ass = ts_login(&f->s, "ass");
    assert_non_null(ass);
    expect_error(revert(ass, doc_seq), "forbidden");
    cli_conn_close(ass);
    struct cli_msg *r = revert(f->rap, last);
    assert_null(r->error);
    const msgpack_object *im = proto_mp_map_get(r->result, "import");
    assert_non_null(im);
    int64_t first = 0, got_last = 0, n = 0;
    assert_int_equal(proto_param_i64(im, "first", &first), 0);
    assert_int_equal(proto_param_i64(im, "last", &got_last), 0);
    assert_int_equal(proto_param_i64(im, "reverted", &n), 0);
    assert_int_equal(first, head0 + 1);
    assert_int_equal(got_last, last);
    assert_int_equal(n, last - head0 - 1); /* all but the doc's create */
    const msgpack_object *sk = proto_mp_map_get(im, "skipped");
    assert_true(sk && sk->type == MSGPACK_OBJECT_ARRAY && sk->via.array.size == 1);
    assert_int_equal((int64_t)sk->via.array.ptr[0].via.u64, doc_seq);
    int64_t seq = 0;
    assert_int_equal(proto_param_i64(r->result, "seq", &seq), 0);
    assert_int_equal(seq, head(f->rap));
    cli_msg_free(r);
    assert_int_equal(count(f->rap, "items"), 1);
    /* Again: everything of it is undone already. */
    expect_error(revert(f->rap, first), "conflict");
    verify_ok(f->rap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_its_undo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_restores_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_skips_later_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_after_concurrent_edits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_and_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_and_bad_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_while_others_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_reverts_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_revert_answer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
