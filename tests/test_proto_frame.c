/* test_proto_frame.c - the frame reader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_err.h"
#include "proto_frame.h"
#include "testutil.h"

/* Appends one frame of len bytes (byte i = seed + i) to out; returns the bytes written. */
static size_t make_frame(uint8_t *out, uint32_t len, uint8_t seed)
{
    proto_frame_put_len(out, len);
    for (uint32_t i = 0; i < len; i++) {
        out[PROTO_FRAME_HDR + i] = (uint8_t)(seed + i);
    }
    return PROTO_FRAME_HDR + (size_t)len;
}

static void assert_payload(const uint8_t *p, uint32_t len, uint8_t seed)
{
    for (uint32_t i = 0; i < len; i++) {
        assert_int_equal(p[i], (uint8_t)(seed + i));
    }
}

static void test_len_codec(void **state)
{
    uint8_t b[4];

    (void)state;
    proto_frame_put_len(b, 0x01020304u);
    assert_memory_equal(b, "\x01\x02\x03\x04", 4);
    assert_int_equal(proto_frame_get_len(b), 0x01020304u);
    proto_frame_put_len(b, UINT32_MAX);
    assert_int_equal(proto_frame_get_len(b), UINT32_MAX);
}

static void test_lengths(void **state)
{
    const uint32_t max = 1000;
    struct proto_reader r;
    uint8_t *buf = malloc(PROTO_FRAME_HDR + max + 1);
    const uint8_t *p = NULL;
    uint32_t len = 0;
    size_t n = 0;

    (void)state;
    assert_non_null(buf);

    /* 1 and max pass. */
    proto_reader_init(&r, max);
    n = make_frame(buf, 1, 7);
    assert_int_equal(proto_reader_push(&r, buf, n), 0);
    assert_int_equal(proto_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 7);
    n = make_frame(buf, max, 9);
    assert_int_equal(proto_reader_push(&r, buf, n), 0);
    assert_int_equal(proto_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, max);
    assert_payload(p, len, 9);
    assert_int_equal(proto_reader_next(&r, &p, &len), 0);
    proto_reader_free(&r);

    /* 0 fails. */
    proto_reader_init(&r, max);
    assert_int_equal(proto_reader_push(&r, (const uint8_t *)"\0\0\0\0", 4), 0);
    assert_int_equal(proto_reader_next(&r, &p, &len), PROTO_ETOOBIG);
    proto_reader_free(&r);

    /* max + 1 fails, even with every byte present. */
    proto_reader_init(&r, max);
    n = make_frame(buf, max + 1, 0);
    assert_int_equal(proto_reader_push(&r, buf, n), 0);
    assert_int_equal(proto_reader_next(&r, &p, &len), PROTO_ETOOBIG);
    proto_reader_free(&r);

    /* Raising the limit (after login) lets the same frame through. */
    proto_reader_init(&r, max);
    assert_int_equal(proto_reader_push(&r, buf, n), 0);
    assert_int_equal(proto_reader_next(&r, &p, &len), PROTO_ETOOBIG);
    proto_reader_set_max(&r, max + 1);
    assert_int_equal(proto_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, max + 1);
    proto_reader_free(&r);
    free(buf);
}

static void test_byte_by_byte(void **state)
{
    struct proto_reader r;
    uint8_t stream[2000];
    size_t total = 0;
    const uint8_t *p = NULL;
    uint32_t len = 0;
    int got = 0;

    (void)state;
    total += make_frame(stream + total, 300, 1);
    total += make_frame(stream + total, 1, 2);
    total += make_frame(stream + total, 1000, 3);
    proto_reader_init(&r, 1000);
    for (size_t i = 0; i < total; i++) {
        int rc = 0;
        assert_int_equal(proto_reader_push(&r, stream + i, 1), 0);
        rc = proto_reader_next(&r, &p, &len);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            static const uint32_t lens[3] = {300, 1, 1000};
            assert_int_equal(len, lens[got]);
            assert_payload(p, len, (uint8_t)(got + 1));
            got++;
            /* The frame is complete exactly at its last byte. */
            assert_true(i == 303 || i == 308 || i == total - 1);
        }
    }
    assert_int_equal(got, 3);
    assert_int_equal(proto_reader_next(&r, &p, &len), 0);
    assert_null(r.buf);
    proto_reader_free(&r);
}

static void test_many_in_one_push(void **state)
{
    struct proto_reader r;
    uint8_t stream[4000];
    size_t total = 0;
    const uint8_t *p[10];
    uint32_t len = 0;

    (void)state;
    for (int i = 0; i < 10; i++) {
        total += make_frame(stream + total, (uint32_t)(10 + i * 30), (uint8_t)i);
    }
    /* Plus the first half of an eleventh. */
    total += make_frame(stream + total, 100, 0xaa) - 50;
    proto_reader_init(&r, 4096);
    assert_int_equal(proto_reader_push(&r, stream, total), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(proto_reader_next(&r, &p[i], &len), 1);
        assert_int_equal(len, 10 + i * 30);
        assert_payload(p[i], len, (uint8_t)i);
    }
    assert_int_equal(proto_reader_next(&r, &p[0], &len), 0);
    assert_non_null(r.buf); /* half a frame is held */
    /* The rest of the eleventh arrives. */
    make_frame(stream, 100, 0xaa);
    assert_int_equal(proto_reader_push(&r, stream + 54, 50), 0);
    assert_int_equal(proto_reader_next(&r, &p[0], &len), 1);
    assert_int_equal(len, 100);
    assert_payload(p[0], 100, 0xaa);
    assert_int_equal(proto_reader_next(&r, &p[0], &len), 0);
    assert_null(r.buf);
    proto_reader_free(&r);
}

/* A payload stays valid until the next call, even when that call is the one that frees. */
static void test_payload_valid_until_next_call(void **state)
{
    struct proto_reader r;
    uint8_t stream[100];
    size_t total = 0;
    const uint8_t *a = NULL;
    const uint8_t *b = NULL;
    uint32_t la = 0;
    uint32_t lb = 0;

    (void)state;
    total += make_frame(stream + total, 20, 5);
    total += make_frame(stream + total, 20, 6);
    proto_reader_init(&r, 100);
    assert_int_equal(proto_reader_push(&r, stream, total), 0);
    assert_int_equal(proto_reader_next(&r, &a, &la), 1);
    assert_int_equal(proto_reader_next(&r, &b, &lb), 1);
    /* Both frames came from one buffer that nothing has touched since. */
    assert_payload(a, la, 5);
    assert_payload(b, lb, 6);
    assert_non_null(r.buf);
    assert_int_equal(proto_reader_next(&r, &b, &lb), 0);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);
    proto_reader_free(&r);
}

static void test_space_commit(void **state)
{
    struct proto_reader r;
    uint8_t stream[3000];
    size_t total = 0;
    size_t fed = 0;
    const uint8_t *p = NULL;
    uint32_t len = 0;
    uint8_t *dst = NULL;
    size_t n = 0;
    int got = 0;

    (void)state;
    total += make_frame(stream + total, 1500, 1);
    total += make_frame(stream + total, 3, 2);
    total += make_frame(stream + total, 700, 3);
    proto_reader_init(&r, 2000);

    /* An idle reader holds nothing, and a read that brings nothing leaves nothing. */
    assert_null(r.buf);
    assert_int_equal(proto_reader_space(&r, 64, &dst, &n), 0);
    assert_int_equal(n, 64);
    assert_non_null(r.buf);
    proto_reader_commit(&r, 0);
    assert_null(r.buf);

    /* Between frames the suggestion is honoured but at least the header is asked for. */
    assert_int_equal(proto_reader_space(&r, 0, &dst, &n), 0);
    assert_int_equal(n, PROTO_FRAME_HDR);
    proto_reader_commit(&r, 0);
    /* ...and never more than one largest frame. */
    assert_int_equal(proto_reader_space(&r, 1 << 20, &dst, &n), 0);
    assert_int_equal(n, PROTO_FRAME_HDR + 2000);
    proto_reader_commit(&r, 0);

    /* Feed by the reader's own buffers, at most 100 bytes a read. */
    while (fed < total) {
        size_t take = 0;
        assert_int_equal(proto_reader_space(&r, 100, &dst, &n), 0);
        assert_true(n >= 1);
        take = n < 100 ? n : 100;
        if (take > total - fed) {
            take = total - fed;
        }
        memcpy(dst, stream + fed, take);
        proto_reader_commit(&r, take);
        fed += take;
        while (proto_reader_next(&r, &p, &len) == 1) {
            static const uint32_t lens[3] = {1500, 3, 700};
            assert_int_equal(len, lens[got]);
            assert_payload(p, len, (uint8_t)(got + 1));
            got++;
        }
    }
    assert_int_equal(got, 3);
    assert_null(r.buf);

    /* Inside a frame, space is exactly what the frame still needs. */
    assert_int_equal(proto_reader_push(&r, stream, 10), 0);
    assert_int_equal(proto_reader_space(&r, 100000, &dst, &n), 0);
    assert_int_equal(n, PROTO_FRAME_HDR + 1500 - 10);
    proto_reader_commit(&r, 0);
    proto_reader_free(&r);
    assert_null(r.buf);
}

/* A header announcing too much fails before anything is allocated for it. */
static void test_too_big_before_alloc(void **state)
{
    struct proto_reader r;
    uint8_t hdr[4];
    uint8_t *dst = NULL;
    size_t n = 0;
    const uint8_t *p = NULL;
    uint32_t len = 0;

    (void)state;
    proto_frame_put_len(hdr, UINT32_MAX);
    proto_reader_init(&r, PROTO_HELLO_MAX);
    /* Read the header through the reader's own space: 4 bytes asked. */
    assert_int_equal(proto_reader_space(&r, 0, &dst, &n), 0);
    assert_int_equal(n, 4);
    memcpy(dst, hdr, 4);
    proto_reader_commit(&r, 4);
    assert_int_equal(proto_reader_space(&r, 0, &dst, &n), PROTO_ETOOBIG);
    assert_true(r.cap <= 8); /* nothing near 4 GiB was asked for */
    assert_int_equal(proto_reader_next(&r, &p, &len), PROTO_ETOOBIG);
    proto_reader_free(&r);

    proto_frame_put_len(hdr, PROTO_HELLO_MAX + 1);
    proto_reader_init(&r, PROTO_HELLO_MAX);
    assert_int_equal(proto_reader_push(&r, hdr, 4), 0);
    assert_int_equal(proto_reader_next(&r, &p, &len), PROTO_ETOOBIG);
    assert_int_equal(proto_reader_space(&r, 0, &dst, &n), PROTO_ETOOBIG);
    assert_true(r.cap < PROTO_HELLO_MAX);
    proto_reader_free(&r);

    /* A zero length behind a good frame is found by space too. */
    proto_reader_init(&r, 100);
    assert_int_equal(proto_reader_push(&r, (const uint8_t *)"\0\0\0\1x\0\0\0\0", 9), 0);
    assert_int_equal(proto_reader_space(&r, 0, &dst, &n), PROTO_ETOOBIG);
    assert_int_equal(proto_reader_next(&r, &p, &len), 1);
    assert_int_equal(proto_reader_next(&r, &p, &len), PROTO_ETOOBIG);
    proto_reader_free(&r);
    proto_reader_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_len_codec),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_many_in_one_push),
        cmocka_unit_test(test_payload_valid_until_next_call),
        cmocka_unit_test(test_space_commit),
        cmocka_unit_test(test_too_big_before_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
