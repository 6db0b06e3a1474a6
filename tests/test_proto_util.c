/* test_proto_util.c - UTF-8, names, base64url, hex, buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "proto_err.h"
#include "proto_util.h"
#include "testutil.h"

#define U8(lit) proto_utf8_valid((lit), sizeof(lit) - 1)

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(proto_utf8_valid("", 0));
    assert_true(U8("plain ascii"));
    assert_true(U8("\x7f"));
    assert_true(U8("caf\xc3\xa9"));      /* U+00E9 */
    assert_true(U8("\xc2\x80"));         /* U+0080, smallest 2-byte */
    assert_true(U8("\xdf\xbf"));         /* U+07FF */
    assert_true(U8("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
    assert_true(U8("\xe2\x82\xac"));     /* euro sign */
    assert_true(U8("\xed\x9f\xbf"));     /* U+D7FF, just below the surrogates */
    assert_true(U8("\xee\x80\x80"));     /* U+E000, just above */
    assert_true(U8("\xef\xbf\xbf"));     /* U+FFFF */
    assert_true(U8("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
    assert_true(U8("\xf0\x9f\x98\x80")); /* emoji */
    assert_true(U8("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
}

static void test_utf8_invalid(void **state)
{
    (void)state;
    /* NUL is valid UTF-8 but never allowed in a confer string. */
    assert_false(proto_utf8_valid("a\0b", 3));
    assert_false(U8("\x80")); /* lone continuation */
    assert_false(U8("\xbf"));
    assert_false(U8("\xc0\x80"));                 /* overlong NUL */
    assert_false(U8("\xc0\xaf"));                 /* overlong '/' */
    assert_false(U8("\xc1\xbf"));                 /* overlong */
    assert_false(U8("\xe0\x80\xaf"));             /* overlong 3-byte '/' */
    assert_false(U8("\xe0\x9f\xbf"));             /* overlong U+07FF */
    assert_false(U8("\xf0\x80\x80\xaf"));         /* overlong 4-byte */
    assert_false(U8("\xf0\x8f\xbf\xbf"));         /* overlong U+FFFF */
    assert_false(U8("\xed\xa0\x80"));             /* U+D800 surrogate */
    assert_false(U8("\xed\xbf\xbf"));             /* U+DFFF surrogate */
    assert_false(U8("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair */
    assert_false(U8("\xf4\x90\x80\x80"));         /* U+110000 */
    assert_false(U8("\xf5\x80\x80\x80"));
    assert_false(U8("\xf8\x88\x80\x80\x80")); /* 5-byte form */
    assert_false(U8("\xfe"));
    assert_false(U8("\xff"));
    /* Truncated sequences, alone and before more text. */
    assert_false(U8("\xc3"));
    assert_false(U8("\xe2\x82"));
    assert_false(U8("\xf0\x9f\x98"));
    assert_false(U8("\xe2\x82x"));
    assert_false(U8("\xf0\x9f\x98x"));
    assert_false(U8("\xc3\xc3\xa9"));
    /* Bad continuation bytes after a good lead. */
    assert_false(U8("\xe2\x28\xa1"));
    assert_false(U8("\xe2\x82\x28"));
    assert_false(U8("\xf0\x9f\x28\x80"));
    /* A valid string cut at every byte inside its last code point. */
    {
        const char *s = "ab\xf0\x9f\x98\x80";
        for (size_t n = 3; n < 6; n++) {
            assert_false(proto_utf8_valid(s, n));
        }
        assert_true(proto_utf8_valid(s, 6));
        assert_true(proto_utf8_valid(s, 2));
    }
}

static void test_utf8_count(void **state)
{
    (void)state;
    assert_int_equal(proto_utf8_count("", 0), 0);
    assert_int_equal(proto_utf8_count("abc", 3), 3);
    assert_int_equal(proto_utf8_count("caf\xc3\xa9", 5), 4);
    assert_int_equal(proto_utf8_count("\xe2\x82\xac\xf0\x9f\x98\x80x", 8), 3);
}

#define NAME(lit) proto_name_valid((lit), sizeof(lit) - 1)

static void test_names(void **state)
{
    char longname[PROTO_NAME_MAX + 2];

    (void)state;
    assert_true(NAME("a"));
    assert_true(NAME("0"));
    assert_true(NAME("alice"));
    assert_true(NAME("rg-iem.2023_06"));
    assert_true(NAME("9lives"));
    assert_false(proto_name_valid("", 0));
    assert_false(proto_name_valid(NULL, 0));
    assert_false(NAME("Alice"));
    assert_false(NAME("-a"));
    assert_false(NAME(".a"));
    assert_false(NAME("_a"));
    assert_false(NAME("a b"));
    assert_false(NAME("a/b"));
    assert_false(NAME("caf\xc3\xa9"));
    assert_false(proto_name_valid("a\0b", 3));

    memset(longname, 'x', sizeof(longname));
    assert_true(proto_name_valid(longname, PROTO_NAME_MAX));
    assert_false(proto_name_valid(longname, PROTO_NAME_MAX + 1));
}

static void test_b64url_roundtrip(void **state)
{
    uint8_t in[64];
    uint8_t back[64];
    char enc[100];

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(i * 37 + 250);
    }
    for (size_t n = 0; n <= sizeof(in); n++) {
        proto_b64url_encode(in, n, enc, sizeof(enc));
        assert_int_equal(strlen(enc), (n * 4 + 2) / 3);
        assert_null(strchr(enc, '='));
        assert_null(strchr(enc, '+'));
        assert_null(strchr(enc, '/'));
        assert_int_equal(proto_b64url_decode(enc, strlen(enc), back, sizeof(back)), (int)n);
        assert_memory_equal(back, in, n);
    }

    /* A 32-byte token is 43 characters. */
    proto_b64url_encode(in, 32, enc, 44);
    assert_int_equal(strlen(enc), 43);

    /* Known vectors: 0xfb 0xff uses both URL-safe characters. */
    proto_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc, sizeof(enc));
    assert_string_equal(enc, "-_8");
    proto_b64url_encode((const uint8_t *)"foobar", 6, enc, sizeof(enc));
    assert_string_equal(enc, "Zm9vYmFy");
}

static void test_b64url_rejects(void **state)
{
    uint8_t out[64];
    char enc[8];

    (void)state;
    /* Padding, standard-alphabet characters, spaces, junk. */
    assert_int_equal(proto_b64url_decode("Zm8=", 4, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("Zg==", 4, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("+_8", 3, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("-/8", 3, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("Zm9v YmFy", 9, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("Zm9v!", 5, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("Zm9v\0", 5, out, sizeof(out)), PROTO_EINVAL);
    /* A length that no byte count encodes to (1 mod 4). */
    assert_int_equal(proto_b64url_decode("Zm9vY", 5, out, sizeof(out)), PROTO_EINVAL);
    /* Non-canonical: leftover bits that are not zero ("Zh" would be "Zg"). */
    assert_int_equal(proto_b64url_decode("Zh", 2, out, sizeof(out)), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("Zg", 2, out, sizeof(out)), 1);
    /* More bytes than fit. */
    assert_int_equal(proto_b64url_decode("Zm9vYmFy", 8, out, 5), PROTO_EINVAL);
    assert_int_equal(proto_b64url_decode("Zm9vYmFy", 8, out, 6), 6);
    assert_memory_equal(out, "foobar", 6);
    /* Empty string: zero bytes. */
    assert_int_equal(proto_b64url_decode("", 0, out, sizeof(out)), 0);
    /* Encoding into too small a buffer gives an empty string instead of aborting. */
    proto_b64url_encode((const uint8_t *)"foobar", 6, enc, sizeof(enc) - 1);
    assert_string_equal(enc, "");
}

static void test_hex(void **state)
{
    char out[9];

    (void)state;
    proto_hex((const uint8_t *)"\x00\x0f\xa5\xff", 4, out);
    assert_string_equal(out, "000fa5ff");
    proto_hex(NULL, 0, out);
    assert_string_equal(out, "");
}

static void test_now_ms(void **state)
{
    int64_t t = proto_now_ms();

    (void)state;
    /* After 2023-01-01 and before 2100-01-01. */
    assert_true(t > INT64_C(1672531200000));
    assert_true(t < INT64_C(4102444800000));
}

static void test_buf(void **state)
{
    struct proto_buf b;
    uint8_t chunk[100];

    (void)state;
    proto_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(proto_buf_append(&b, NULL, 0), 0);
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (uint8_t)i;
    }
    for (int i = 0; i < 50; i++) {
        assert_int_equal(proto_buf_append(&b, chunk, sizeof(chunk)), 0);
    }
    assert_int_equal(b.len, 5000);
    assert_true(b.cap >= b.len);
    assert_memory_equal(b.data + 4900, chunk, 100);

    proto_buf_consume(&b, 4950);
    assert_int_equal(b.len, 50);
    assert_memory_equal(b.data, chunk + 50, 50);
    proto_buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);

    assert_int_equal(proto_buf_reserve(&b, 100000), 0);
    assert_true(b.cap >= 100000);
    /* len + n would wrap around: refused before any allocation. */
    assert_int_equal(proto_buf_append(&b, "x", 1), 0);
    assert_int_equal(proto_buf_reserve(&b, SIZE_MAX), PROTO_ENOMEM);
    assert_int_equal(b.len, 1);
    proto_buf_free(&b, 1);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    proto_buf_free(&b, 0);
    proto_buf_free(NULL, 0);
}

static void test_buf_msgpack(void **state)
{
    struct proto_buf b;
    msgpack_packer pk;

    (void)state;
    proto_buf_init(&b);
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    assert_int_equal(msgpack_pack_array(&pk, 2), 0);
    assert_int_equal(msgpack_pack_uint32(&pk, 300), 0);
    assert_int_equal(msgpack_pack_str_with_body(&pk, "hi", 2), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "\x92\xcd\x01\x2c\xa2hi", 7);
    proto_buf_free(&b, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_utf8_count),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_buf_msgpack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
