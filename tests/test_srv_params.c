/* test_srv_params.c - the two parameter rules of PROTOCOL.md section 10 over a real conferd:
 * invalid UTF-8 anywhere in a message is a bad_request (also in params a method ignores),
 * and every parameter the method tables list without "optional" is required. */
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

static const char *const users[] = {"rap", "ann", NULL};

static struct ts_server S;
static struct cli_conn *C; /* rap: operator and the meeting's rapporteur */

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

/* The error code of a response, "ok" for a result. */
static const char *code_of(const struct cli_msg *m)
{
    return m->error ? m->code : "ok";
}

/* Checks a bad_request whose message names param ("param: ..."). */
static void assert_bad_naming(const struct cli_msg *m, const char *param)
{
    size_t n = strlen(param);
    if (!m->error || strcmp(m->code, "bad_request") != 0 || strncmp(m->message, param, n) != 0 ||
        m->message[n] != ':') {
        fail_msg("want bad_request naming %s, got %s (%s)", param, code_of(m),
                 m->message ? m->message : "");
    }
}

static void pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

/* Packs [0, msgid, "ping", {key: val}] (key and val of the given lengths). */
static void pack_ping(msgpack_packer *pk, uint32_t msgid, const char *key, size_t klen,
                      const char *val, size_t vlen)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_uint32(pk, msgid);
    pack_str(pk, "ping", 4);
    msgpack_pack_map(pk, key ? 1 : 0);
    if (key) {
        pack_str(pk, key, klen);
        pack_str(pk, val, vlen);
    }
}

/* Sends one plaintext and reads n responses into codes (notifications skipped). */
static void send_and_read(const struct proto_buf *b, size_t n, uint32_t *msgids, const char **codes,
                          char (*bufs)[32])
{
    assert_int_equal(cli_conn_send_plain(C, b->data, b->len), 0);
    for (size_t i = 0; i < n; i++) {
        struct cli_msg *m = NULL;
        assert_int_equal(cli_conn_next(C, 5000, &m), 0);
        if (m->kind == PROTO_RPC_NOTIFY) {
            cli_msg_free(m);
            i--;
            continue;
        }
        msgids[i] = m->msgid;
        snprintf(bufs[i], sizeof(bufs[i]), "%s", code_of(m));
        codes[i] = bufs[i];
        cli_msg_free(m);
    }
}

/* A params key that is not UTF-8, in a method that takes no params. */
static void test_bad_utf8_ignored_key(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "ping", "{s:i}", "\xff\xfe", 1), 0);
    assert_string_equal(code_of(m), "bad_request");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(C, &m, "meeting.list", "{s:i}", "\xff\xfe", 1), 0);
    assert_string_equal(code_of(m), "bad_request");
    cli_msg_free(m);
}

/* A string deep inside a params value the method never reads: the answer names the
 * innermost key around it. */
static void test_bad_utf8_deep_value(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "meeting.get", "{s:s, s:[s, {s:s}]}", "meeting", MEETING,
                                    "extra", "fine", "k", "caf\xc3"),
                     0);
    assert_bad_naming(m, "k");
    cli_msg_free(m);
}

/* A NUL is valid UTF-8: in an ignored param it is no reason to refuse. */
static void test_nul_in_ignored_value(void **state)
{
    (void)state;
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    pack_ping(&pk, 900, "note", 4, "a\0b", 3);
    uint32_t ids[1];
    const char *codes[1];
    char bufs[1][32];
    send_and_read(&b, 1, ids, codes, bufs);
    proto_buf_free(&b, 0);
    assert_int_equal(ids[0], 900);
    assert_string_equal(codes[0], "ok");
}

/* The bad message is answered with its own msgid; those around it in the same plaintext
 * are handled as usual. */
static void test_bad_utf8_msgid_and_next(void **state)
{
    (void)state;
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    pack_ping(&pk, 801, NULL, 0, NULL, 0);
    pack_ping(&pk, 802, "\xff\xfe", 2, "x", 1);
    pack_ping(&pk, 803, "x", 1, "\xed\xa0\x80", 3);
    pack_ping(&pk, 804, NULL, 0, NULL, 0);
    uint32_t ids[4];
    const char *codes[4];
    char bufs[4][32];
    send_and_read(&b, 4, ids, codes, bufs);
    proto_buf_free(&b, 0);
    static const uint32_t want_id[] = {801, 802, 803, 804};
    static const char *const want_code[] = {"ok", "bad_request", "bad_request", "ok"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ids[i], want_id[i]);
        assert_string_equal(codes[i], want_code[i]);
    }
}

/* obj.create lists fields without "optional". */
static void test_create_needs_fields(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    assert_int_equal(
        cli_conn_callf(C, &m, "obj.create", "{s:s, s:s}", "meeting", MEETING, "type", "item"), 0);
    assert_bad_naming(m, "fields");
    cli_msg_free(m);
    /* An empty map is a fields parameter: every field is optional on create. */
    assert_int_equal(cli_conn_callf(C, &m, "obj.create", "{s:s, s:s, s:{}}", "meeting", MEETING,
                                    "type", "item", "fields"),
                     0);
    assert_string_equal(code_of(m), "ok");
    cli_msg_free(m);
}

/* report.export lists format without "optional". */
static void test_export_needs_format(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "report.export", "{s:s}", "meeting", MEETING), 0);
    assert_bad_naming(m, "format");
    cli_msg_free(m);
}

/* presence.set lists where (a map or nil) without "optional": nil is a value, absence is
 * not. */
static void test_presence_needs_where(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(C, &m, "meeting.subscribe", "{s:s}", "meeting", MEETING), 0);
    assert_string_equal(code_of(m), "ok");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(C, &m, "presence.set", "{s:s}", "meeting", MEETING), 0);
    assert_bad_naming(m, "where");
    cli_msg_free(m);
    assert_int_equal(
        cli_conn_callf(C, &m, "presence.set", "{s:s, s:n}", "meeting", MEETING, "where"), 0);
    assert_string_equal(code_of(m), "ok");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(C, &m, "meeting.unsubscribe", "{s:s}", "meeting", MEETING), 0);
    cli_msg_free(m);
}

/* Section 10's order: a repeated cid is answered with its first result before the role is
 * checked, so a member demoted since still learns that the change was applied. */
static void test_cid_repeat_before_role(void **state)
{
    (void)state;
    struct cli_msg *m = NULL;
    struct cli_conn *ann = ts_login(&S, "ann");
    assert_non_null(ann);
    assert_int_equal(cli_conn_callf(C, &m, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING,
                                    "user", "ann", "role", "associate"),
                     0);
    assert_string_equal(code_of(m), "ok");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(ann, &m, "obj.create", "{s:s, s:s, s:{s:s}, s:s}", "meeting",
                                    MEETING, "type", "item", "fields", "number", "9", "cid",
                                    "ann-cid-1"),
                     0);
    assert_string_equal(code_of(m), "ok");
    int64_t id = (int64_t)proto_mp_map_get(m->result, "id")->via.u64;
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(C, &m, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING,
                                    "user", "ann", "role", "viewer"),
                     0);
    assert_string_equal(code_of(m), "ok");
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(ann, &m, "obj.create", "{s:s, s:s, s:{s:s}, s:s}", "meeting",
                                    MEETING, "type", "item", "fields", "number", "9", "cid",
                                    "ann-cid-1"),
                     0);
    assert_string_equal(code_of(m), "ok");
    assert_int_equal((int64_t)proto_mp_map_get(m->result, "id")->via.u64, id);
    cli_msg_free(m);
    /* Without the cid the viewer is refused. */
    assert_int_equal(cli_conn_callf(ann, &m, "obj.create", "{s:s, s:s, s:{}}", "meeting", MEETING,
                                    "type", "item", "fields"),
                     0);
    assert_string_equal(code_of(m), "forbidden");
    cli_msg_free(m);
    cli_conn_close(ann);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_utf8_ignored_key), cmocka_unit_test(test_bad_utf8_deep_value),
        cmocka_unit_test(test_nul_in_ignored_value), cmocka_unit_test(test_bad_utf8_msgid_and_next),
        cmocka_unit_test(test_create_needs_fields),  cmocka_unit_test(test_export_needs_format),
        cmocka_unit_test(test_presence_needs_where), cmocka_unit_test(test_cid_repeat_before_role),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
