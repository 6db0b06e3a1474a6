/* test_proto_rpc.c - msgpack-RPC decoding, typed parameters and packing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "proto_err.h"
#include "proto_msgpack.h"
#include "proto_rpc.h"
#include "proto_util.h"
#include "testutil.h"

/* A packer writing into a proto_buf, plus the unpacked result of its bytes. */
struct fx {
    struct proto_buf b;
    msgpack_packer pk;
    msgpack_unpacked u;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    proto_buf_init(&f->b);
    msgpack_packer_init(&f->pk, &f->b, proto_buf_msgpack_write);
    msgpack_unpacked_init(&f->u);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    msgpack_unpacked_destroy(&f->u);
    proto_buf_free(&f->b, 0);
    free(f);
    return 0;
}

/* Starts over with an empty buffer. */
static void reset(struct fx *f)
{
    f->b.len = 0;
}

/* What a server does with a frame's bytes: check, unpack, decode. */
static int bytes_to_msg(struct fx *f, struct proto_rpc_msg *m)
{
    size_t good = 0;
    size_t off = 0;

    assert_int_equal(proto_mp_check_seq(f->b.data, f->b.len, &good), 0);
    assert_int_equal(good, f->b.len);
    assert_int_equal(msgpack_unpack_next(&f->u, (const char *)f->b.data, f->b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, f->b.len);
    return proto_rpc_decode(&f->u.data, m);
}

/* Packs raw bytes (a hand-made message) into the buffer. */
static void raw(struct fx *f, const char *p, size_t n)
{
    reset(f);
    assert_int_equal(proto_buf_append(&f->b, p, n), 0);
}

#define RAW(f, lit) raw((f), (lit), sizeof(lit) - 1)

static void test_request_roundtrip(void **state)
{
    struct fx *f = *state;
    struct proto_rpc_msg m;
    const char *s = NULL;
    size_t len = 0;

    proto_rpc_pack_request(&f->pk, 4000000000u, "meeting.get");
    msgpack_pack_map(&f->pk, 1);
    proto_pack_cstr(&f->pk, "meeting");
    proto_pack_str(&f->pk, "rg-iem", 6);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_int_equal(m.kind, PROTO_RPC_REQUEST);
    assert_int_equal(m.msgid, 4000000000u);
    assert_true(proto_rpc_method_is(&m, "meeting.get"));
    assert_false(proto_rpc_method_is(&m, "meeting.ge"));
    assert_false(proto_rpc_method_is(&m, "meeting.gets"));
    assert_int_equal(m.method_len, 11);
    assert_non_null(m.params);
    assert_int_equal(proto_param_str(m.params, "meeting", &s, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "rg-iem", 6);
    assert_null(m.error);
    assert_null(m.result);

    /* Exact bytes for a small request: [0, 1, "ping", {}]. */
    reset(f);
    proto_rpc_pack_request(&f->pk, 1, "ping");
    msgpack_pack_map(&f->pk, 0);
    assert_int_equal(f->b.len, 9);
    assert_memory_equal(f->b.data, "\x94\x00\x01\xa4ping\x80", 9);
}

static void test_response_roundtrip(void **state)
{
    struct fx *f = *state;
    struct proto_rpc_msg m;
    int64_t t = 0;

    proto_rpc_pack_result(&f->pk, 7);
    msgpack_pack_map(&f->pk, 1);
    proto_pack_cstr(&f->pk, "time");
    msgpack_pack_int64(&f->pk, 1700000000000);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_int_equal(m.kind, PROTO_RPC_RESPONSE);
    assert_int_equal(m.msgid, 7);
    assert_null(m.error);
    assert_non_null(m.result);
    assert_int_equal(proto_param_i64(m.result, "time", &t), 0);
    assert_int_equal(t, 1700000000000);
    assert_null(m.method);
    assert_null(m.params);

    /* A nil result is a result too. */
    reset(f);
    proto_rpc_pack_result(&f->pk, 8);
    msgpack_pack_nil(&f->pk);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_non_null(m.result);
    assert_int_equal(m.result->type, MSGPACK_OBJECT_NIL);
}

static void test_error_roundtrip(void **state)
{
    struct fx *f = *state;
    struct proto_rpc_msg m;
    const char *s = NULL;
    size_t len = 0;
    const msgpack_object *data = NULL;
    int64_t v = 0;

    assert_int_equal(proto_rpc_pack_error(&f->pk, 9, PROTO_CODE_CONFLICT, "changed", "seq", 42), 0);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_int_equal(m.kind, PROTO_RPC_RESPONSE);
    assert_int_equal(m.msgid, 9);
    assert_non_null(m.error);
    assert_int_equal(proto_param_str(m.error, "code", &s, &len), 0);
    assert_int_equal(proto_code_parse(s, len), PROTO_CODE_CONFLICT);
    assert_int_equal(proto_param_str(m.error, "message", &s, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(s, "changed", 7);
    assert_int_equal(proto_param_map(m.error, "data", &data), 0);
    assert_int_equal(proto_param_i64(data, "seq", &v), 0);
    assert_int_equal(v, 42);
    assert_non_null(m.result);
    assert_int_equal(m.result->type, MSGPACK_OBJECT_NIL);

    /* Without data, and with the exact bytes. */
    reset(f);
    assert_int_equal(proto_rpc_pack_error(&f->pk, 0, PROTO_CODE_BAD_REQUEST, "bad", NULL, 0), 0);
    {
        static const char want[] = "\x94\x01\x00\x82\xa4"
                                   "code\xab"
                                   "bad_request\xa7"
                                   "message\xa3"
                                   "bad\xc0";
        assert_int_equal(f->b.len, sizeof(want) - 1);
        assert_memory_equal(f->b.data, want, sizeof(want) - 1);
    }
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_null(proto_mp_map_get(m.error, "data"));

    /* Negative data value (retry_after_ms is never negative, but the packer must not care). */
    reset(f);
    proto_rpc_pack_error(&f->pk, 3, PROTO_CODE_RATE_LIMITED, "slow down", "retry_after_ms", -5);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_int_equal(proto_param_map(m.error, "data", &data), 0);
    assert_int_equal(proto_param_i64(data, "retry_after_ms", &v), 0);
    assert_int_equal(v, -5);
}

static void test_notify_roundtrip(void **state)
{
    struct fx *f = *state;
    struct proto_rpc_msg m;
    uint64_t seq = 0;

    proto_rpc_pack_notify(&f->pk, "event");
    msgpack_pack_map(&f->pk, 1);
    proto_pack_cstr(&f->pk, "seq");
    msgpack_pack_uint64(&f->pk, 12);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_int_equal(m.kind, PROTO_RPC_NOTIFY);
    assert_int_equal(m.msgid, 0);
    assert_true(proto_rpc_method_is(&m, "event"));
    assert_int_equal(proto_param_u64(m.params, "seq", &seq), 0);
    assert_int_equal(seq, 12);
}

/* Expects decode to fail with msgid recovered as want_msgid. */
static void expect_bad(struct fx *f, const char *p, size_t n, uint32_t want_msgid)
{
    struct proto_rpc_msg m;

    raw(f, p, n);
    memset(&m, 0x5a, sizeof(m));
    assert_int_equal(bytes_to_msg(f, &m), PROTO_EINVAL);
    assert_int_equal(m.msgid, want_msgid);
    assert_null(m.method);
    assert_null(m.params);
    assert_null(m.error);
    assert_null(m.result);
}

#define BAD(f, lit, id) expect_bad((f), (lit), sizeof(lit) - 1, (id))

static void test_rejects(void **state)
{
    struct fx *f = *state;
    struct proto_rpc_msg m;

    /* Not an array, empty, wrong kind. */
    BAD(f, "\x80", 0);
    BAD(f, "\x05", 0);
    BAD(f, "\xa4ping", 0);
    BAD(f, "\x90", 0);
    BAD(f, "\x91\x00", 0);
    BAD(f, "\x94\x03\x05\xa4ping\x80", 5);
    BAD(f, "\x94\xff\x05\xa4ping\x80", 5);                                 /* kind -1 */
    BAD(f, "\x94\xc0\x05\xa4ping\x80", 5);                                 /* kind nil */
    BAD(f, "\x94\xcb\x00\x00\x00\x00\x00\x00\x00\x00\x05\xa4ping\x80", 5); /* kind 0.0 */
    /* Request: wrong array lengths. */
    BAD(f, "\x93\x00\x05\xa4ping", 5);
    BAD(f, "\x95\x00\x05\xa4ping\x80\xc0", 5);
    /* msgid negative, float, too big, nil, str. */
    BAD(f, "\x94\x00\xff\xa4ping\x80", 0);
    BAD(f, "\x94\x00\xd0\x80\xa4ping\x80", 0);
    BAD(f, "\x94\x00\xcb\x40\x08\x00\x00\x00\x00\x00\x00\xa4ping\x80", 0); /* 3.0 */
    BAD(f, "\x94\x00\xca\x40\x40\x00\x00\xa4ping\x80", 0);                 /* 3.0f */
    BAD(f, "\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa4ping\x80", 0); /* 2^32 */
    BAD(f, "\x94\x00\xc0\xa4ping\x80", 0);
    BAD(f, "\x94\x00\xa1x\xa4ping\x80", 0);
    /* method not a str (bin, int, nil), or not valid UTF-8, or holding NUL. */
    BAD(f, "\x94\x00\x05\xc4\x04ping\x80", 5);
    BAD(f, "\x94\x00\x05\x01\x80", 5);
    BAD(f, "\x94\x00\x05\xc0\x80", 5);
    BAD(f, "\x94\x00\x05\xa2\xc0\xaf\x80", 5);
    BAD(f, "\x94\x00\x05\xa3\xed\xa0\x80\x80", 5);
    BAD(f, "\x94\x00\x05\xa2p\x00\x80", 5);
    /* params not a map. */
    BAD(f, "\x94\x00\x05\xa4ping\x90", 5);
    BAD(f, "\x94\x00\x05\xa4ping\xc0", 5);
    BAD(f, "\x94\x00\x05\xa4ping\x01", 5);
    /* The largest msgid is recovered from a bad message. */
    BAD(f, "\x94\x00\xce\xff\xff\xff\xff\xa4ping\x90", UINT32_MAX);
    /* A msgid in a message of unknown kind, or of a wrong length, is still recovered. */
    BAD(f, "\x92\x07\x09", 9);

    /* Response: wrong lengths, bad msgid, error neither nil nor a proper map. */
    BAD(f, "\x93\x01\x05\xc0", 5);
    BAD(f, "\x95\x01\x05\xc0\xc0\xc0", 5);
    BAD(f, "\x94\x01\xff\xc0\xc0", 0);
    BAD(f,
        "\x94\x01\x05\xa3"
        "bad\xc0",
        5);
    BAD(f, "\x94\x01\x05\x90\xc0", 5);
    BAD(f, "\x94\x01\x05\x80\xc0", 5); /* no code, no message */
    BAD(f,
        "\x94\x01\x05\x81\xa4"
        "code\xa1x\xc0",
        5);                                            /* no message */
    BAD(f, "\x94\x01\x05\x81\xa7message\xa1x\xc0", 5); /* no code */
    BAD(f,
        "\x94\x01\x05\x82\xa4"
        "code\x01\xa7message\xa1x\xc0",
        5); /* code not str */
    BAD(f,
        "\x94\x01\x05\x82\xa4"
        "code\xa1x\xa7message\xc0\xc0",
        5); /* message nil */

    /* Notification: wrong length, method not str, params not a map. */
    BAD(f,
        "\x92\x02\xa5"
        "event",
        0);
    BAD(f,
        "\x94\x02\xa5"
        "event\x80\xc0",
        0);
    BAD(f, "\x93\x02\x05\x80", 5);
    BAD(f,
        "\x93\x02\xa5"
        "event\x90",
        0);

    /* A good error response decodes (sanity check of the bytes above). */
    RAW(f, "\x94\x01\x05\x82\xa4"
           "code\xa1x\xa7message\xa0\xc0");
    assert_int_equal(bytes_to_msg(f, &m), 0);
    assert_non_null(m.error);
    assert_int_equal(m.msgid, 5);

    /* Not even an object. */
    assert_int_equal(proto_rpc_decode(NULL, &m), PROTO_EINVAL);
}

/* Params of every type, for the typed helpers. */
static void pack_params(struct fx *f)
{
    msgpack_packer *pk = &f->pk;

    reset(f);
    proto_rpc_pack_request(pk, 1, "x");
    msgpack_pack_map(pk, 18);
    proto_pack_cstr(pk, "s");
    proto_pack_cstr(pk, "h\xc3\xa9llo");
    proto_pack_cstr(pk, "empty");
    proto_pack_cstr(pk, "");
    proto_pack_cstr(pk, "nul");
    proto_pack_str(pk, "a\0b", 3);
    proto_pack_cstr(pk, "badutf");
    proto_pack_str(pk, "\xc0\xaf", 2);
    proto_pack_cstr(pk, "bin");
    msgpack_pack_bin_with_body(pk, "\x01\x02", 2);
    proto_pack_cstr(pk, "t");
    msgpack_pack_true(pk);
    proto_pack_cstr(pk, "i");
    msgpack_pack_int64(pk, -42);
    proto_pack_cstr(pk, "u");
    msgpack_pack_uint64(pk, 42);
    proto_pack_cstr(pk, "big");
    msgpack_pack_uint64(pk, UINT64_MAX);
    proto_pack_cstr(pk, "f");
    msgpack_pack_double(pk, 3.0);
    proto_pack_cstr(pk, "f32");
    msgpack_pack_float(pk, 3.0f);
    proto_pack_cstr(pk, "nil");
    msgpack_pack_nil(pk);
    proto_pack_cstr(pk, "m");
    msgpack_pack_map(pk, 0);
    proto_pack_cstr(pk, "a");
    msgpack_pack_array(pk, 1);
    msgpack_pack_uint8(pk, 1);
    proto_pack_cstr(pk, "dup");
    msgpack_pack_uint8(pk, 1);
    proto_pack_cstr(pk, "dup");
    msgpack_pack_uint8(pk, 2);
    proto_pack_cstr(pk, "imin");
    msgpack_pack_int64(pk, INT64_MIN);
    /* A non-str key is skipped by lookups. */
    msgpack_pack_uint8(pk, 7);
    msgpack_pack_uint8(pk, 7);
}

static void test_typed_params(void **state)
{
    struct fx *f = *state;
    struct proto_rpc_msg m;
    const msgpack_object *p = NULL;
    const char *s = NULL;
    size_t len = 0;
    const uint8_t *bin = NULL;
    bool b = false;
    int64_t i = 0;
    uint64_t u = 0;
    const msgpack_object *o = NULL;
    char buf[8];

    pack_params(f);
    assert_int_equal(bytes_to_msg(f, &m), 0);
    p = m.params;

    assert_int_equal(proto_param_str(p, "s", &s, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "h\xc3\xa9llo", 6);
    assert_int_equal(proto_param_str(p, "empty", &s, &len), 0);
    assert_int_equal(len, 0);
    assert_non_null(s);
    assert_int_equal(proto_param_str(p, "nul", &s, &len), PROTO_EINVAL);
    assert_int_equal(proto_param_str(p, "badutf", &s, &len), PROTO_EINVAL);
    assert_int_equal(proto_param_str(p, "bin", &s, &len), PROTO_EINVAL);
    assert_int_equal(proto_param_str(p, "u", &s, &len), PROTO_EINVAL);
    assert_int_equal(proto_param_str(p, "nil", &s, &len), PROTO_ENOTFOUND);
    assert_int_equal(proto_param_str(p, "absent", &s, &len), PROTO_ENOTFOUND);

    assert_int_equal(proto_param_bin(p, "bin", &bin, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(bin, "\x01\x02", 2);
    assert_int_equal(proto_param_bin(p, "s", &bin, &len), PROTO_EINVAL);
    assert_int_equal(proto_param_bin(p, "nil", &bin, &len), PROTO_ENOTFOUND);

    assert_int_equal(proto_param_bool(p, "t", &b), 0);
    assert_true(b);
    assert_int_equal(proto_param_bool(p, "u", &b), PROTO_EINVAL);
    assert_int_equal(proto_param_bool(p, "nil", &b), PROTO_ENOTFOUND);

    assert_int_equal(proto_param_i64(p, "i", &i), 0);
    assert_int_equal(i, -42);
    assert_int_equal(proto_param_i64(p, "u", &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(proto_param_i64(p, "imin", &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(proto_param_i64(p, "big", &i), PROTO_EINVAL);
    assert_int_equal(proto_param_i64(p, "f", &i), PROTO_EINVAL);
    assert_int_equal(proto_param_i64(p, "f32", &i), PROTO_EINVAL);
    assert_int_equal(proto_param_i64(p, "s", &i), PROTO_EINVAL);
    assert_int_equal(proto_param_i64(p, "t", &i), PROTO_EINVAL);
    assert_int_equal(proto_param_i64(p, "nil", &i), PROTO_ENOTFOUND);
    assert_int_equal(proto_param_i64(p, "absent", &i), PROTO_ENOTFOUND);

    assert_int_equal(proto_param_u64(p, "u", &u), 0);
    assert_int_equal(u, 42);
    assert_int_equal(proto_param_u64(p, "big", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(proto_param_u64(p, "i", &u), PROTO_EINVAL);
    assert_int_equal(proto_param_u64(p, "f", &u), PROTO_EINVAL);
    assert_int_equal(proto_param_u64(p, "f32", &u), PROTO_EINVAL);
    assert_int_equal(proto_param_u64(p, "nil", &u), PROTO_ENOTFOUND);

    assert_int_equal(proto_param_map(p, "m", &o), 0);
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(proto_param_map(p, "a", &o), PROTO_EINVAL);
    assert_int_equal(proto_param_map(p, "nil", &o), PROTO_ENOTFOUND);
    assert_int_equal(proto_param_array(p, "a", &o), 0);
    assert_int_equal(o->via.array.size, 1);
    assert_int_equal(proto_param_array(p, "m", &o), PROTO_EINVAL);
    assert_int_equal(proto_param_array(p, "absent", &o), PROTO_ENOTFOUND);

    /* The first of repeated keys wins. */
    assert_int_equal(proto_param_u64(p, "dup", &u), 0);
    assert_int_equal(u, 1);

    assert_int_equal(proto_param_strcpy(p, "s", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "h\xc3\xa9llo");
    assert_int_equal(proto_param_strcpy(p, "s", buf, 6), PROTO_ETOOBIG);
    assert_int_equal(proto_param_strcpy(p, "s", buf, 7), 0);
    assert_int_equal(proto_param_strcpy(p, "empty", buf, 1), 0);
    assert_string_equal(buf, "");
    assert_int_equal(proto_param_strcpy(p, "u", buf, sizeof(buf)), PROTO_EINVAL);
    assert_int_equal(proto_param_strcpy(p, "absent", buf, sizeof(buf)), PROTO_ENOTFOUND);

    /* Lookups in something that is not a map find nothing. */
    assert_null(proto_mp_map_get(&f->u.data, "s"));
    assert_null(proto_mp_map_get(NULL, "s"));
    assert_int_equal(proto_param_u64(&f->u.data, "u", &u), PROTO_ENOTFOUND);
}

static void test_codes(void **state)
{
    static const char *const names[PROTO_CODE_COUNT] = {
        "bad_request", "unauthenticated", "forbidden",    "not_found",   "conflict",
        "locked",      "too_large",       "rate_limited", "unavailable", "internal",
    };

    (void)state;
    for (int i = 0; i < PROTO_CODE_COUNT; i++) {
        assert_string_equal(proto_code_name((enum proto_code)i), names[i]);
        assert_int_equal(proto_code_parse(names[i], strlen(names[i])), i);
    }
    assert_int_equal(proto_code_parse("bad_reques", 10), -1);
    assert_int_equal(proto_code_parse("bad_requests", 12), -1);
    assert_int_equal(proto_code_parse("", 0), -1);
    assert_string_equal(proto_code_name(PROTO_CODE_COUNT), "internal");
    assert_string_equal(proto_strerror(PROTO_ETOOBIG), "over a size limit");
    assert_string_equal(proto_strerror(0), "success");
    assert_string_equal(proto_strerror(-999), "unknown error");
}

/* The write callback's failure reaches the caller as PROTO_ENOMEM. */
static int failing_write(void *data, const char *buf, size_t len)
{
    (void)data;
    (void)buf;
    (void)len;
    return -1;
}

static void test_pack_failure(void **state)
{
    msgpack_packer pk;

    (void)state;
    msgpack_packer_init(&pk, NULL, failing_write);
    assert_int_equal(proto_rpc_pack_request(&pk, 1, "ping"), PROTO_ENOMEM);
    assert_int_equal(proto_rpc_pack_result(&pk, 1), PROTO_ENOMEM);
    assert_int_equal(proto_rpc_pack_notify(&pk, "event"), PROTO_ENOMEM);
    assert_int_equal(proto_rpc_pack_error(&pk, 1, PROTO_CODE_INTERNAL, "x", "k", 1), PROTO_ENOMEM);
    assert_int_equal(proto_pack_cstr(&pk, "x"), PROTO_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_params, setup, teardown),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_pack_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
