/* test_srv_req.c - the request helpers in process, without sockets: the parameter decoder
 * (types, required, nil, UTF-8 anywhere), the meeting checks in section 10's order, and the
 * object, lock and if_seq helpers. Answers are read from the connection's output buffer,
 * which nothing flushes here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli_pack.h"
#include "srv_req.h"

#define OFF(f) offsetof(struct srv_params, f)

static const char *const roles[] = {"viewer", "editor", NULL};

static const struct srv_param P_MEETING = {
    .name = "meeting", .type = SRV_PT_STR, .off = OFF(meeting), .hint = "a meeting id"};
static const struct srv_param P_TYPE = {
    .name = "type", .type = SRV_PT_TYPE, .off = OFF(type), .hint = "an object type"};
static const struct srv_param P_OBJID = {
    .name = "id", .type = SRV_PT_OBJID, .off = OFF(id), .hint = "an object id"};
static const struct srv_param P_IF_SEQ = {.name = "if_seq",
                                          .type = SRV_PT_INT,
                                          .optional = true,
                                          .off = OFF(if_seq),
                                          .hint = "an integer seq",
                                          .min = INT64_MIN,
                                          .max = INT64_MAX};
static const struct srv_param P_LIMIT = {.name = "limit",
                                         .type = SRV_PT_INT,
                                         .optional = true,
                                         .off = OFF(limit),
                                         .hint = "1 to 10",
                                         .min = 1,
                                         .max = 10};
static const struct srv_param P_ROLE = {
    .name = "role", .type = SRV_PT_ENUM, .off = OFF(role), .hint = "a role", .values = roles};
static const struct srv_param P_CID = {
    .name = "cid", .type = SRV_PT_CID, .optional = true, .off = OFF(cid), .hint = "a cid"};
static const struct srv_param P_OP = {
    .name = "op", .type = SRV_PT_OP, .off = OFF(op), .hint = "a text op"};
static const struct srv_param P_WHERE = {
    .name = "where", .type = SRV_PT_WHERE, .off = OFF(where), .hint = "a place or nil"};

/* A server and a logged-in connection that exist only in memory, and meeting m1 where ann
 * is an editor. */
struct fix {
    struct srv srv;
    struct srv_conn conn;
    struct srv_meeting m;
    struct proto_buf in;
    msgpack_unpacked u;
    struct srv_req req;
    msgpack_unpacked answer;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->srv.cfg.output_limit = 1 << 20;
    f->conn.srv = &f->srv;
    f->conn.state = SRV_CONN_READY;
    snprintf(f->conn.user, sizeof(f->conn.user), "ann");
    f->m.rec = srv_rec_new("m1");
    assert_non_null(f->m.rec);
    assert_int_equal(srv_rec_set_member(f->m.rec, "ann", "editor", 1), 0);
    f->srv.meetings = &f->m;
    msgpack_unpacked_init(&f->u);
    msgpack_unpacked_init(&f->answer);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    srv_req_free(&f->req);
    msgpack_unpacked_destroy(&f->u);
    msgpack_unpacked_destroy(&f->answer);
    proto_buf_free(&f->in, 0);
    proto_buf_free(&f->conn.out, 0);
    srv_rec_free(f->m.rec);
    free(f);
    return 0;
}

/* Makes a request of msgid 7 whose params are packed from fmt (cli_pack.h). */
static struct srv_req *make(struct fix *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    proto_buf_free(&f->in, 0);
    assert_int_equal(cli_vpackf(&f->in, fmt, ap), 0);
    va_end(ap);
    size_t off = 0;
    msgpack_unpacked_destroy(&f->u);
    msgpack_unpacked_init(&f->u);
    assert_int_equal(msgpack_unpack_next(&f->u, (const char *)f->in.data, f->in.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    srv_req_free(&f->req);
    f->req = (struct srv_req){.conn = &f->conn, .msgid = 7, .params = &f->u.data};
    proto_buf_free(&f->conn.out, 0);
    return &f->req;
}

/* The one answer queued: "ok", or its error code; *message gets the error's message. */
static const char *answer(struct fix *f, char *message, size_t cap)
{
    size_t off = 0;
    static char code[32];
    msgpack_unpacked_destroy(&f->answer);
    msgpack_unpacked_init(&f->answer);
    assert_int_equal(
        msgpack_unpack_next(&f->answer, (const char *)f->conn.out.data, f->conn.out.len, &off),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, f->conn.out.len);
    struct proto_rpc_msg m;
    assert_int_equal(proto_rpc_decode(&f->answer.data, &m), 0);
    assert_int_equal(m.msgid, 7);
    if (m.error == NULL) {
        snprintf(message, cap, "%s", "");
        return "ok";
    }
    const msgpack_object *c = proto_mp_map_get(m.error, "code");
    const msgpack_object *t = proto_mp_map_get(m.error, "message");
    snprintf(code, sizeof(code), "%.*s", (int)c->via.str.size, c->via.str.ptr);
    snprintf(message, cap, "%.*s", (int)t->via.str.size, t->via.str.ptr);
    return code;
}

/* Checks that the request was answered bad_request naming param. */
static void expect_bad(struct fix *f, const char *param)
{
    char msg[320];
    assert_string_equal(answer(f, msg, sizeof(msg)), "bad_request");
    size_t n = strlen(param);
    if (strncmp(msg, param, n) != 0 || msg[n] != ':') {
        fail_msg("want a message naming %s, got \"%s\"", param, msg);
    }
}

static void test_utf8_walk(void **state)
{
    struct fix *f = *state;
    make(f, "{s:[s, {s:s}], s:S}", "a", "é", "k", "日本", "nul", "a\0b", (size_t)3);
    assert_true(srv_req_utf8_ok(f->req.params));
    make(f, "{s:[i, {s:i}]}", "a", 1, "\xc3", 2);
    assert_false(srv_req_utf8_ok(f->req.params));
    make(f, "{s:[s]}", "a", "\xed\xa0\x80");
    assert_false(srv_req_utf8_ok(f->req.params));
}

static void test_fills_typed_values(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, &P_TYPE, &P_OBJID, &P_IF_SEQ, &P_CID, NULL};
    struct srv_req *r = make(f, "{s:s, s:s, s:i, s:i, s:s}", "meeting", "m1", "type", "item", "id",
                             5, "if_seq", -3, "cid", "c-1");
    assert_true(srv_req_decode(r, list));
    assert_int_equal(f->conn.out.len, 0); /* nothing answered */
    assert_true(r->p.meeting.set);
    assert_int_equal(r->p.meeting.len, 2);
    assert_int_equal(r->p.t, PROTO_T_ITEM);
    assert_int_equal(r->p.id.i, 5);
    assert_int_equal(r->p.if_seq.i, -3);
    assert_string_equal(r->cid, "c-1");
}

static void test_missing_required(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, &P_TYPE, NULL};
    assert_false(srv_req_decode(make(f, "{s:s}", "meeting", "m1"), list));
    expect_bad(f, "type");
}

static void test_nil_is_absent(void **state)
{
    struct fix *f = *state;
    const struct srv_param *opt[] = {&P_IF_SEQ, NULL};
    struct srv_req *r = make(f, "{s:n}", "if_seq");
    assert_true(srv_req_decode(r, opt));
    assert_false(r->p.if_seq.set);
    const struct srv_param *req[] = {&P_MEETING, NULL};
    assert_false(srv_req_decode(make(f, "{s:n}", "meeting"), req));
    expect_bad(f, "meeting");
}

static void test_float_is_no_integer(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_IF_SEQ, NULL};
    struct srv_req *r = make(f, "{}");
    /* cli_packf has no float: pack {"if_seq": 3.0} by hand. */
    proto_buf_free(&f->in, 0);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f->in, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "if_seq", 6);
    msgpack_pack_double(&pk, 3.0);
    size_t off = 0;
    msgpack_unpacked_destroy(&f->u);
    msgpack_unpacked_init(&f->u);
    assert_int_equal(msgpack_unpack_next(&f->u, (const char *)f->in.data, f->in.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    r->params = &f->u.data;
    assert_false(srv_req_decode(r, list));
    expect_bad(f, "if_seq");
}

static void test_int_bounds(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_LIMIT, NULL};
    assert_false(srv_req_decode(make(f, "{s:i}", "limit", 0), list));
    expect_bad(f, "limit");
    assert_true(srv_req_decode(make(f, "{s:i}", "limit", 10), list));
}

static void test_enum(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_ROLE, NULL};
    assert_false(srv_req_decode(make(f, "{s:s}", "role", "boss"), list));
    expect_bad(f, "role");
    assert_true(srv_req_decode(make(f, "{s:s}", "role", "editor"), list));
}

static void test_object_id_follows_type(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_TYPE, &P_OBJID, NULL};
    assert_false(srv_req_decode(make(f, "{s:s, s:i}", "type", "meeting", "id", 5), list));
    expect_bad(f, "id");
    assert_false(srv_req_decode(make(f, "{s:s, s:s}", "type", "item", "id", "m1"), list));
    expect_bad(f, "id");
    assert_true(srv_req_decode(make(f, "{s:s, s:s}", "type", "meeting", "id", "m1"), list));
}

static void test_op(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_OP, NULL};
    assert_false(srv_req_decode(make(f, "{s:[i]}", "op", 3), list));
    expect_bad(f, "op"); /* a lone skip does nothing */
    assert_false(srv_req_decode(make(f, "{s:[i]}", "op", 0), list));
    expect_bad(f, "op");
    /* A real op is decoded and owned by the request (srv_req_free, in make and teardown). */
    struct srv_req *r = make(f, "{s:[i, s]}", "op", 2, "xy");
    assert_true(srv_req_decode(r, list));
    assert_false(proto_op_is_noop(&r->p.ed));
}

static void test_where(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_WHERE, NULL};
    assert_false(srv_req_decode(make(f, "{}"), list));
    expect_bad(f, "where");
    struct srv_req *r = make(f, "{s:n}", "where");
    assert_true(srv_req_decode(r, list));
    assert_false(r->p.wh.present);
    r = make(f, "{s:{s:s, s:i, s:s}}", "where", "type", "item", "id", 4, "field", "body");
    assert_true(srv_req_decode(r, list));
    assert_true(r->p.wh.present);
    assert_int_equal(r->p.wh.id, 4);
    assert_string_equal(r->p.wh.field, "body");
}

static void test_bad_utf8_in_ignored_param(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, NULL};
    assert_false(srv_req_decode(make(f, "{s:s, s:i}", "meeting", "m1", "\xff\xfe", 1), list));
    expect_bad(f, "params");
    assert_false(
        srv_req_decode(make(f, "{s:s, s:{s:s}}", "meeting", "m1", "x", "y", "\xc3"), list));
    expect_bad(f, "y");
}

/* The answer names a key only as far as it is printable: never bytes past its end. */
static void test_bad_utf8_unnamed_key(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {NULL};
    assert_false(srv_req_decode(make(f, "{s:s}", "", "\xc3"), list));
    expect_bad(f, "params");
    assert_false(srv_req_decode(make(f, "{S:s}", "\0xyz", (size_t)4, "\xc3"), list));
    expect_bad(f, "params");
}

static void test_first_repeated_key_wins(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, NULL};
    struct srv_req *r = make(f, "{s:s, s:i}", "meeting", "m1", "meeting", 5);
    assert_true(srv_req_decode(r, list));
    assert_int_equal(r->p.meeting.len, 2);
}

static void test_enter_not_member(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, NULL};
    char msg[320];
    snprintf(f->conn.user, sizeof(f->conn.user), "bob");
    struct srv_req *r = make(f, "{s:s}", "meeting", "m1");
    assert_true(srv_req_decode(r, list));
    assert_false(srv_req_enter(r, SRV_ROLE_VIEWER));
    assert_string_equal(answer(f, msg, sizeof(msg)), "not_found");
    /* An unknown meeting gets the same answer. */
    snprintf(f->conn.user, sizeof(f->conn.user), "ann");
    r = make(f, "{s:s}", "meeting", "m2");
    assert_true(srv_req_decode(r, list));
    assert_false(srv_req_enter(r, SRV_ROLE_VIEWER));
    assert_string_equal(answer(f, msg, sizeof(msg)), "not_found");
}

static void test_enter_role(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, &P_CID, NULL};
    char msg[320];
    struct srv_req *r = make(f, "{s:s}", "meeting", "m1");
    assert_true(srv_req_decode(r, list));
    assert_false(srv_req_enter(r, SRV_ROLE_ASSOCIATE));
    assert_string_equal(answer(f, msg, sizeof(msg)), "forbidden");
    r = make(f, "{s:s}", "meeting", "m1");
    assert_true(srv_req_decode(r, list));
    assert_true(srv_req_enter(r, SRV_ROLE_EDITOR));
    assert_ptr_equal(r->m, &f->m);
    assert_int_equal(r->role, SRV_ROLE_EDITOR);
    assert_int_equal(f->conn.out.len, 0);
}

/* A repeated cid is answered with the first result before the role is checked. */
static void test_enter_cid_before_role(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_MEETING, &P_CID, NULL};
    char msg[320];
    struct srv_entry e = {
        .a = {
            .seq = 9, .user = "ann", .cid = "c-1", .kind = "create", .type = "item", .id_int = 4}};
    f->m.pending = &e;
    struct srv_req *r = make(f, "{s:s, s:s}", "meeting", "m1", "cid", "c-1");
    assert_true(srv_req_decode(r, list));
    assert_false(srv_req_enter(r, SRV_ROLE_RAPPORTEUR));
    f->m.pending = NULL;
    assert_string_equal(answer(f, msg, sizeof(msg)), "ok");
    struct proto_rpc_msg m;
    assert_int_equal(proto_rpc_decode(&f->answer.data, &m), 0);
    assert_int_equal(proto_mp_map_get(m.result, "seq")->via.i64, 9);
    assert_int_equal(proto_mp_map_get(m.result, "id")->via.i64, 4);
}

static void test_obj_lock_if_seq(void **state)
{
    struct fix *f = *state;
    const struct srv_param *list[] = {&P_TYPE, &P_OBJID, &P_IF_SEQ, NULL};
    char msg[320];
    struct srv_req *r = make(f, "{s:s, s:i}", "type", "item", "id", 4);
    assert_true(srv_req_decode(r, list));
    assert_null(srv_req_obj(r, &f->m));
    assert_string_equal(answer(f, msg, sizeof(msg)), "not_found");

    r = make(f, "{s:s, s:s, s:i}", "type", "meeting", "id", "m1", "if_seq", 2);
    assert_true(srv_req_decode(r, list));
    struct srv_obj *o = srv_req_obj(r, &f->m);
    assert_ptr_equal(o, &f->m.rec->meeting);
    o->seq = 3;
    assert_false(srv_req_if_seq(r, o));
    assert_string_equal(answer(f, msg, sizeof(msg)), "conflict");

    r = make(f, "{}");
    struct srv_val *st = &o->f[proto_field_find(PROTO_T_MEETING, "status", 6)];
    free(st->s);
    st->s = strdup("final");
    st->len = 5;
    st->set = true;
    assert_true(srv_req_unlocked(r, &f->m, true)); /* the status alone may change */
    assert_false(srv_req_unlocked(r, &f->m, false));
    assert_string_equal(answer(f, msg, sizeof(msg)), "locked");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_utf8_walk),
        T(test_fills_typed_values),
        T(test_missing_required),
        T(test_nil_is_absent),
        T(test_float_is_no_integer),
        T(test_int_bounds),
        T(test_enum),
        T(test_object_id_follows_type),
        T(test_op),
        T(test_where),
        T(test_bad_utf8_in_ignored_param),
        T(test_bad_utf8_unnamed_key),
        T(test_first_repeated_key_wins),
        T(test_enter_not_member),
        T(test_enter_role),
        T(test_enter_cid_before_role),
        T(test_obj_lock_if_seq),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
