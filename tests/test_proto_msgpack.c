/* test_proto_msgpack.c - the structural check that runs before msgpack-c. */
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
#include "proto_util.h"
#include "testutil.h"

/* check_one on a literal; returns the code, *vlen the value length. */
static int one(const char *lit, size_t len, size_t *vlen)
{
    *vlen = (size_t)-1;
    return proto_mp_check_one((const uint8_t *)lit, len, vlen);
}

#define ONE(lit, vl) one((lit), sizeof(lit) - 1, (vl))

/* Asserts that msgpack-c parses buf[0..len) as one value of exactly len bytes. */
static void assert_msgpack_parses(const uint8_t *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    msgpack_unpacked_destroy(&u);
}

static void test_scalars(void **state)
{
    size_t vl = 0;

    (void)state;
    assert_int_equal(ONE("\x00", &vl), 0);
    assert_int_equal(vl, 1);
    assert_int_equal(ONE("\x7f\x00", &vl), 0); /* trailing bytes are not part of it */
    assert_int_equal(vl, 1);
    assert_int_equal(ONE("\xe0", &vl), 0);
    assert_int_equal(ONE("\xc0", &vl), 0);
    assert_int_equal(ONE("\xc2", &vl), 0);
    assert_int_equal(ONE("\xc3", &vl), 0);
    assert_int_equal(ONE("\xcc\xff", &vl), 0);
    assert_int_equal(vl, 2);
    assert_int_equal(ONE("\xcd\x01\x00", &vl), 0);
    assert_int_equal(vl, 3);
    assert_int_equal(ONE("\xce\x00\x00\x00\x01", &vl), 0);
    assert_int_equal(vl, 5);
    assert_int_equal(ONE("\xcf\x00\x00\x00\x00\x00\x00\x00\x01", &vl), 0);
    assert_int_equal(vl, 9);
    assert_int_equal(ONE("\xd3\xff\xff\xff\xff\xff\xff\xff\xff", &vl), 0);
    assert_int_equal(vl, 9);
    assert_int_equal(ONE("\xca\x40\x40\x00\x00", &vl), 0);
    assert_int_equal(vl, 5);
    assert_int_equal(ONE("\xcb\x40\x08\x00\x00\x00\x00\x00\x00", &vl), 0);
    assert_int_equal(vl, 9);
    assert_int_equal(ONE("\xa3"
                         "abc",
                         &vl),
                     0);
    assert_int_equal(vl, 4);
    assert_int_equal(ONE("\xd9\x03"
                         "abc",
                         &vl),
                     0);
    assert_int_equal(vl, 5);
    assert_int_equal(ONE("\xda\x00\x03"
                         "abc",
                         &vl),
                     0);
    assert_int_equal(vl, 6);
    assert_int_equal(ONE("\xdb\x00\x00\x00\x03"
                         "abc",
                         &vl),
                     0);
    assert_int_equal(vl, 8);
    assert_int_equal(ONE("\xc4\x02\x00\x01", &vl), 0);
    assert_int_equal(vl, 4);
    assert_int_equal(ONE("\xc5\x00\x02\x00\x01", &vl), 0);
    assert_int_equal(vl, 5);
    assert_int_equal(ONE("\xc6\x00\x00\x00\x02\x00\x01", &vl), 0);
    assert_int_equal(vl, 7);
    assert_int_equal(ONE("\xd4\x01\x00", &vl), 0);
    assert_int_equal(vl, 3);
    assert_int_equal(ONE("\xd8\x01"
                         "0123456789abcdef",
                         &vl),
                     0);
    assert_int_equal(vl, 18);
    assert_int_equal(ONE("\xc7\x02\x05\x00\x00", &vl), 0); /* ext8: len, type, data */
    assert_int_equal(vl, 5);
    assert_int_equal(ONE("\xc9\x00\x00\x00\x01\x05\x00", &vl), 0);
    assert_int_equal(vl, 7);
    assert_int_equal(ONE("\x90", &vl), 0);
    assert_int_equal(ONE("\x80", &vl), 0);
    assert_int_equal(ONE("\xdc\x00\x00", &vl), 0);
    assert_int_equal(vl, 3);
    assert_int_equal(ONE("\x82\xa1k\x01\xa1j\x92\x01\x02", &vl), 0);
    assert_int_equal(vl, 9);
}

static void test_c1(void **state)
{
    size_t vl = 0;
    size_t good = 0;

    (void)state;
    assert_int_equal(ONE("\xc1", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\x92\x01\xc1", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\x81\xc1\x01", &vl), PROTO_EINVAL);
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"\x01\x02\xc1\x03", 4, &good),
                     PROTO_EINVAL);
    assert_int_equal(good, 2);
}

/* Writes n nested arrays (each holding the next), the innermost holding inner (or empty). */
static size_t nest(uint8_t *out, int n, int map, int inner)
{
    size_t len = 0;

    for (int i = 0; i < n; i++) {
        if (map) {
            out[len++] = 0x81; /* {"k": ...} */
            out[len++] = 0xa1;
            out[len++] = 'k';
        } else {
            out[len++] = 0x91;
        }
    }
    if (inner) {
        out[len++] = 0x01;
    } else {
        /* Replace the last header by its empty form. */
        out[len - (map ? 3 : 1)] = map ? 0x80 : 0x90;
        if (map) {
            len -= 2;
        }
    }
    return len;
}

static void test_depth(void **state)
{
    uint8_t buf[128];
    size_t len = 0;
    size_t vl = 0;
    size_t good = 0;

    (void)state;
    for (int map = 0; map <= 1; map++) {
        for (int inner = 0; inner <= 1; inner++) {
            len = nest(buf, PROTO_MP_MAX_DEPTH, map, inner);
            assert_int_equal(proto_mp_check_one(buf, len, &vl), 0);
            assert_int_equal(vl, len);
            assert_int_equal(proto_mp_check_seq(buf, len, &good), 0);
            assert_int_equal(good, len);
            assert_msgpack_parses(buf, len);

            len = nest(buf, PROTO_MP_MAX_DEPTH + 1, map, inner);
            assert_int_equal(proto_mp_check_one(buf, len, &vl), PROTO_EINVAL);
            assert_int_equal(proto_mp_check_seq(buf, len, &good), PROTO_EINVAL);
            assert_int_equal(good, 0);
        }
    }

    /* Depth is about nesting, not about how many containers there are. */
    memset(buf, 0x90, 40);
    buf[0] = 0xdc;
    buf[1] = 0x00;
    buf[2] = 37;
    assert_int_equal(proto_mp_check_one(buf, 40, &vl), 0);
    assert_int_equal(vl, 40);

    /* A very deep input (far past the limit) fails fast without recursion. */
    {
        uint8_t deep[100000];
        memset(deep, 0x91, sizeof(deep));
        assert_int_equal(proto_mp_check_one(deep, sizeof(deep), &vl), PROTO_EINVAL);
    }
}

static void test_huge_counts(void **state)
{
    size_t vl = 0;
    size_t good = 0;
    uint8_t *big = NULL;
    size_t n = 0;

    (void)state;
    /* 5 bytes announcing 4278190080 elements: msgpack-c would try to allocate ~96 GB. */
    assert_int_equal(ONE("\xdd\xff\x00\x00\x00", &vl), PROTO_EINVAL);
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"\xdd\xff\x00\x00\x00", 5, &good),
                     PROTO_EINVAL);
    assert_int_equal(good, 0);
    assert_int_equal(ONE("\xdc\xff\xff", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\xdf\xff\xff\xff\xff", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\xdf\x00\x01\x00\x00", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\xde\xff\xff", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\xdc\x10\x01", &vl), PROTO_EINVAL); /* 4097 */
    assert_int_equal(ONE("\xde\x10\x01", &vl), PROTO_EINVAL);
    assert_int_equal(ONE("\x91\xdd\xff\x00\x00\x00", &vl), PROTO_EINVAL);

    /* A count within the limit but past the bytes present is not whole. */
    assert_int_equal(ONE("\xdc\x10\x00\x01\x02", &vl), PROTO_EAGAIN);
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"\xdc\x10\x00\x01\x02", 5, &good),
                     PROTO_EINVAL);
    assert_int_equal(ONE("\x83\x01\x02", &vl), PROTO_EAGAIN);

    /* Exactly the limit, with every element present, passes (array and map). */
    n = 3 + PROTO_MP_MAX_COUNT * 2;
    big = calloc(1, n);
    assert_non_null(big);
    big[0] = 0xdc;
    big[1] = 0x10;
    big[2] = 0x00;
    assert_int_equal(proto_mp_check_one(big, 3 + PROTO_MP_MAX_COUNT, &vl), 0);
    assert_int_equal(vl, 3 + PROTO_MP_MAX_COUNT);
    assert_msgpack_parses(big, vl);
    big[0] = 0xde;
    assert_int_equal(proto_mp_check_one(big, n, &vl), 0);
    assert_int_equal(vl, n);
    assert_int_equal(proto_mp_check_one(big, n - 1, &vl), PROTO_EAGAIN);
    free(big);
}

static void test_lengths_past_end(void **state)
{
    size_t vl = 0;
    size_t good = 0;

    (void)state;
    assert_int_equal(ONE("\xa5"
                         "ab",
                         &vl),
                     PROTO_EAGAIN);
    assert_int_equal(ONE("\xd9\x05"
                         "ab",
                         &vl),
                     PROTO_EAGAIN);
    assert_int_equal(ONE("\xdb\xff\xff\xff\xff"
                         "ab",
                         &vl),
                     PROTO_EAGAIN);
    assert_int_equal(ONE("\xc6\xff\xff\xff\xff"
                         "ab",
                         &vl),
                     PROTO_EAGAIN);
    assert_int_equal(ONE("\xc9\xff\xff\xff\xff\x01"
                         "ab",
                         &vl),
                     PROTO_EAGAIN);
    assert_int_equal(ONE("\xd8\x01"
                         "short",
                         &vl),
                     PROTO_EAGAIN);
    /* In a whole frame the same bytes are simply invalid. */
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"\x01\xa5"
                                                         "ab",
                                        4, &good),
                     PROTO_EINVAL);
    assert_int_equal(good, 1);
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"\x01\xdb\xff\xff\xff\xff"
                                                         "ab",
                                        8, &good),
                     PROTO_EINVAL);
    assert_int_equal(good, 1);
    assert_int_equal(ONE("", &vl), PROTO_EAGAIN);
}

/* A message using every kind of item: packed by msgpack-c itself. */
static void pack_sample(struct proto_buf *b)
{
    msgpack_packer pk;
    static const char ext[3] = {1, 2, 3};

    msgpack_packer_init(&pk, b, proto_buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 70000);
    msgpack_pack_str_with_body(&pk, "obj.update", 10);
    msgpack_pack_map(&pk, 9);
    msgpack_pack_str_with_body(&pk, "neg", 3);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_str_with_body(&pk, "u64", 3);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_str_with_body(&pk, "f", 1);
    msgpack_pack_double(&pk, 3.0);
    msgpack_pack_str_with_body(&pk, "f32", 3);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_str_with_body(&pk, "bin", 3);
    msgpack_pack_bin_with_body(&pk, "\x00\x01\x02", 3);
    msgpack_pack_str_with_body(&pk, "ext", 3);
    msgpack_pack_ext_with_body(&pk, ext, sizeof(ext), 7);
    msgpack_pack_str_with_body(&pk, "nested", 6);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "d", 1);
    msgpack_pack_int32(&pk, -300);
    msgpack_pack_str_with_body(&pk, "long", 4);
    {
        char s[300];
        memset(s, 'x', sizeof(s));
        msgpack_pack_str_with_body(&pk, s, sizeof(s));
    }
    msgpack_pack_str_with_body(&pk, "empty", 5);
    msgpack_pack_map(&pk, 0);
}

static void test_every_prefix(void **state)
{
    struct proto_buf b;
    size_t vl = 0;

    (void)state;
    proto_buf_init(&b);
    pack_sample(&b);
    assert_true(b.len > 300);
    assert_int_equal(proto_mp_check_one(b.data, b.len, &vl), 0);
    assert_int_equal(vl, b.len);
    assert_msgpack_parses(b.data, b.len);
    for (size_t n = 0; n < b.len; n++) {
        vl = 12345;
        assert_int_equal(proto_mp_check_one(b.data, n, &vl), PROTO_EAGAIN);
        assert_int_equal(vl, 12345);
    }
    proto_buf_free(&b, 0);
}

static void test_seq(void **state)
{
    struct proto_buf b;
    size_t good = 99;
    size_t first = 0;
    size_t two = 0;

    (void)state;
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"", 0, &good), PROTO_EINVAL);
    assert_int_equal(good, 0);

    proto_buf_init(&b);
    pack_sample(&b);
    first = b.len;
    pack_sample(&b);
    two = b.len;
    assert_int_equal(proto_mp_check_seq(b.data, two, &good), 0);
    assert_int_equal(good, two);

    /* A third value cut off at every length: the two whole ones are the good prefix. */
    pack_sample(&b);
    for (size_t n = two + 1; n < b.len; n++) {
        assert_int_equal(proto_mp_check_seq(b.data, n, &good), PROTO_EINVAL);
        assert_int_equal(good, two);
    }
    assert_int_equal(proto_mp_check_seq(b.data, b.len, &good), 0);
    assert_int_equal(good, b.len);
    /* Cut inside the second one. */
    assert_int_equal(proto_mp_check_seq(b.data, first + 5, &good), PROTO_EINVAL);
    assert_int_equal(good, first);
    proto_buf_free(&b, 0);

    /* Many small values. */
    assert_int_equal(proto_mp_check_seq((const uint8_t *)"\x01\x02\xc0\x90\x80", 5, &good), 0);
    assert_int_equal(good, 5);
}

/* Random inputs: whatever the check accepts, msgpack-c parses to the same length. Small
 * counts keep what msgpack-c allocates small. */
static void test_random_agrees_with_msgpack(void **state)
{
    uint8_t buf[64];
    uint64_t x = 0x9e3779b97f4a7c15u;
    size_t accepted = 0;

    (void)state;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 0;
        size_t vl = 0;
        int rc = 0;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = 1 + x % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* Bias towards small containers and scalars so that some inputs are valid. */
            buf[i] = (uint8_t)(x >> 32);
            if ((x & 3) == 0) {
                buf[i] = (uint8_t)(0x90 | ((x >> 8) & 3));
            } else if ((x & 3) == 1) {
                buf[i] = (uint8_t)((x >> 8) & 0x7f);
            }
        }
        rc = proto_mp_check_one(buf, len, &vl);
        assert_true(rc == 0 || rc == PROTO_EAGAIN || rc == PROTO_EINVAL);
        if (rc == 0) {
            accepted++;
            assert_true(vl >= 1 && vl <= len);
            assert_msgpack_parses(buf, vl);
        }
    }
    assert_true(accepted > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_c1),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_lengths_past_end),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_seq),
        cmocka_unit_test(test_random_agrees_with_msgpack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
