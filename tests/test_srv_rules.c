/* test_srv_rules.c - the value rules of PROTOCOL.md section 10 over a real conferd: item
 * numbers are unique (compared as strings), a session's or interim's end is later than its
 * start, a doc ref holds no white space, and a doc's (ref, revision) and an action's ref are
 * unique regardless of ASCII letter case, as is the action prefix when numbering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli_conn.h"
#include "proto_rpc.h"
#include "testsrv.h"

#define MEETING "m1"

static const char *const users[] = {"rap", NULL};

static struct ts_server S;
static struct cli_conn *C; /* rap: the meeting's rapporteur */

static int setup(void **state)
{
    (void)state;
    if (ts_start(&S, users, MEETING) != 0) {
        return -1;
    }
    C = ts_login(&S, "rap");
    return C ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cli_conn_close(C);
    return ts_stop(&S) == 0 ? 0 : -1;
}

static const char *code_of(const struct cli_msg *m)
{
    return m->error ? m->code : "ok";
}

/* Checks a bad_request whose message names param ("param: ..."), and frees m. */
static void want_bad(struct cli_msg *m, const char *param)
{
    size_t n = strlen(param);
    if (!m->error || strcmp(m->code, "bad_request") != 0 || strncmp(m->message, param, n) != 0 ||
        m->message[n] != ':') {
        fail_msg("want bad_request naming %s, got %s (%s)", param, code_of(m),
                 m->message ? m->message : "");
    }
    cli_msg_free(m);
}

/* Checks a conflict whose data.id is id, and frees m. */
static void want_conflict(struct cli_msg *m, int64_t id)
{
    int64_t got = 0;
    if (!m->error || strcmp(m->code, "conflict") != 0 || m->data == NULL ||
        proto_param_i64(m->data, "id", &got) != 0 || got != id) {
        fail_msg("want conflict with data.id %lld, got %s (%s)", (long long)id, code_of(m),
                 m->message ? m->message : "");
    }
    cli_msg_free(m);
}

static void want_ok(struct cli_msg *m)
{
    if (m->error) {
        fail_msg("want ok, got %s (%s)", m->code, m->message);
    }
    cli_msg_free(m);
}

/* obj.create of type with one string field; returns the response. */
static struct cli_msg *create1(const char *type, const char *k, const char *v)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", MEETING,
                                    "type", type, "fields", k, v),
                     0);
    return m;
}

/* obj.create of type with two string fields; returns the response. */
static struct cli_msg *create2(const char *type, const char *k1, const char *v1, const char *k2,
                               const char *v2)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting",
                                    MEETING, "type", type, "fields", k1, v1, k2, v2),
                     0);
    return m;
}

/* obj.update of one string field (nil when v is NULL) without if_seq. */
static struct cli_msg *update1(const char *type, int64_t id, const char *k, const char *v)
{
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                    MEETING, "type", type, "id", id, "fields", k, v),
                     0);
    return m;
}

/* The id of a successful create; frees m. */
static int64_t id_of(struct cli_msg *m)
{
    int64_t id = 0;
    if (m->error || proto_param_i64(m->result, "id", &id) != 0) {
        fail_msg("create failed: %s (%s)", code_of(m), m->message ? m->message : "");
    }
    cli_msg_free(m);
    return id;
}

static void test_item_numbers_unique(void **state)
{
    (void)state;
    int64_t a = id_of(create2("item", "number", "3", "title", "Three"));
    int64_t b = id_of(create1("item", "number", "4"));
    want_conflict(create1("item", "number", "3"), a);
    want_conflict(update1("item", b, "number", "3"), a);
    /* compared as strings: "03" is another number */
    int64_t c = id_of(create1("item", "number", "03"));
    /* its own number, another field, and a free number are fine */
    want_ok(update1("item", a, "number", "3"));
    want_ok(update1("item", a, "title", "Still three"));
    want_ok(update1("item", b, "number", "5"));
    want_ok(create1("item", "number", "4"));
    (void)c;
}

static void test_end_after_start(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s, s:s}}", "meeting",
                                    MEETING, "type", "interim", "fields", "date", "2024-04-02",
                                    "start", "15:00", "end", "13:00"),
                     0);
    want_bad(m, "end");
    want_bad(create2("session", "start", "10:00", "end", "10:00"), "end"); /* equal is refused */
    int64_t s = id_of(create2("session", "start", "09:00", "end", "10:30"));
    want_bad(update1("session", s, "start", "11:00"), "end"); /* against the stored end */
    want_bad(update1("session", s, "end", "08:59"), "end");   /* against the stored start */
    want_ok(update1("session", s, "start", "10:00"));
    want_ok(update1("session", s, "end", NULL)); /* no end: nothing to compare */
    want_ok(update1("session", s, "start", "23:00"));
    int64_t i = id_of(create2("interim", "start", "13:00", "end", "15:00"));
    want_bad(update1("interim", i, "start", "15:00"), "end");
    want_ok(update1("interim", i, "end", "16:00"));
}

static void test_doc_refs(void **state)
{
    (void)state;
    want_bad(create1("doc", "ref", "TSAG TD301"), "ref");
    want_bad(create1("doc", "ref", "TSAG-TD301\t"), "ref");
    want_bad(create1("doc", "ref", "TSAG\xc2\xa0TD301"), "ref");     /* U+00A0 */
    want_bad(create1("doc", "ref", "TSAG\xe3\x80\x80TD301"), "ref"); /* U+3000 */
    int64_t d = id_of(create1("doc", "ref", "TSAG-TD301"));
    want_conflict(create1("doc", "ref", "tsag-td301"), d);
    int64_t r = id_of(create2("doc", "ref", "TSAG-TD301", "revision", "R1"));
    want_conflict(create2("doc", "ref", "tsag-Td301", "revision", "r1"), r);
    want_conflict(update1("doc", r, "revision", NULL), d);
    want_bad(update1("doc", r, "ref", "TSAG TD301"), "ref");
    want_ok(update1("doc", r, "revision", "R2"));
}

static void test_action_refs(void **state)
{
    (void)state;
    int64_t a = id_of(create2("action", "ref", "RG-IEM-4", "text", "Review"));
    want_conflict(create1("action", "ref", "rg-iem-4"), a);
    int64_t b = id_of(create1("action", "ref", "rg-iem-7"));
    want_conflict(update1("action", b, "ref", "RG-iem-4"), a);
    /* numbering: the prefix matches regardless of letter case */
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting",
                                    MEETING, "type", "meeting", "id", MEETING, "fields",
                                    "action_prefix", "RG-IEM"),
                     0);
    want_ok(m);
    assert_int_equal(cli_conn_callf(C, &m, "obj.create", "{s:s, s:s, s:{}}", "meeting", MEETING,
                                    "type", "action", "fields"),
                     0);
    int64_t c = id_of(m);
    assert_int_equal(cli_conn_callf(C, &m, "meeting.get", "{s:s}", "meeting", MEETING), 0);
    const msgpack_object *acts = proto_mp_map_get(m->result, "actions");
    assert_non_null(acts);
    bool found = false;
    for (uint32_t i = 0; i < acts->via.array.size; i++) {
        const msgpack_object *o = &acts->via.array.ptr[i];
        int64_t id = 0;
        const msgpack_object *ref = proto_mp_map_get(o, "ref");
        if (proto_param_i64(o, "id", &id) == 0 && id == c) {
            assert_non_null(ref);
            assert_int_equal(ref->via.str.size, 8);
            assert_memory_equal(ref->via.str.ptr, "RG-IEM-8", 8);
            found = true;
        }
    }
    assert_true(found);
    cli_msg_free(m);
}

/* Undoing a change keeps the keys unique too: an item deleted, its number given to another,
 * cannot come back; nor a doc renamed since to a ref that differs only in letter case. */
static void test_revert_keeps_keys(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    int64_t a = id_of(create1("item", "number", "20"));
    assert_int_equal(cli_conn_callf(C, &m, "obj.delete", "{s:s, s:s, s:I}", "meeting", MEETING,
                                    "type", "item", "id", a),
                     0);
    int64_t del = 0;
    assert_null(m->error);
    assert_int_equal(proto_param_i64(m->result, "seq", &del), 0);
    cli_msg_free(m);
    int64_t b = id_of(create1("item", "number", "20"));
    assert_int_equal(
        cli_conn_callf(C, &m, "change.revert", "{s:s, s:I}", "meeting", MEETING, "seq", del), 0);
    want_conflict(m, b);

    int64_t d = id_of(create1("doc", "ref", "TSAG-TD900"));
    struct cli_msg *u = update1("doc", d, "ref", "TSAG-TD901");
    int64_t ren = 0;
    assert_null(u->error);
    assert_int_equal(proto_param_i64(u->result, "seq", &ren), 0);
    cli_msg_free(u);
    int64_t e = id_of(create1("doc", "ref", "tsag-td900"));
    assert_int_equal(
        cli_conn_callf(C, &m, "change.revert", "{s:s, s:I}", "meeting", MEETING, "seq", ren), 0);
    want_conflict(m, e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item_numbers_unique),
        cmocka_unit_test(test_end_after_start),
        cmocka_unit_test(test_doc_refs),
        cmocka_unit_test(test_action_refs),
        cmocka_unit_test(test_revert_keeps_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
