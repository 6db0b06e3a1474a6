/* test_proto_ot.c - text operations: wire format, apply, transform, compose, cursors.
 *
 * The expected results of the hand-written transform, compose and cursor cases are those
 * of ot-text-unicode 4.0 (transform, compose, transformPosition) for the same inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "proto_err.h"
#include "proto_ot.h"
#include "testutil.h"

/* ---- helpers ---- */

/* Packs a small JSON-like text: integers (also negative), floats (with a '.', "f" suffix
 * for float32), "strings" with \xNN escapes, b"bin", [arrays], {maps}, null, true. */
static const char *pack_value(msgpack_packer *pk, const char *p);

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == ',' || *p == ':') {
        p++;
    }
    return p;
}

static const char *pack_string(msgpack_packer *pk, const char *p, int bin)
{
    char buf[256];
    size_t n = 0;
    p++; /* opening quote */
    while (*p != '"') {
        if (p[0] == '\\' && p[1] == 'x') {
            char hex[3] = {p[2], p[3], 0};
            buf[n++] = (char)strtol(hex, NULL, 16);
            p += 4;
        } else {
            buf[n++] = *p++;
        }
        assert_true(n < sizeof(buf));
    }
    if (bin) {
        msgpack_pack_bin_with_body(pk, buf, n);
    } else {
        msgpack_pack_str_with_body(pk, buf, n);
    }
    return p + 1;
}

static size_t count_items(const char *p, char close)
{
    /* Counts top-level items up to the matching close bracket. */
    int depth = 0;
    size_t items = 0;
    int in_item = 0;
    int in_str = 0;
    for (; *p; p++) {
        if (in_str) {
            if (*p == '\\') {
                p++;
            } else if (*p == '"') {
                in_str = 0;
            }
            continue;
        }
        if (*p == '"') {
            in_str = 1;
        }
        if (depth == 0 && *p == close) {
            break;
        }
        if (*p == '[' || *p == '{') {
            depth++;
        } else if (*p == ']' || *p == '}') {
            depth--;
        }
        if (depth == 0 && (*p == ',' || *p == ':')) {
            in_item = 0;
        } else if (*p != ' ' && !in_item) {
            in_item = 1;
            items++;
        }
    }
    return items;
}

static const char *pack_value(msgpack_packer *pk, const char *p)
{
    p = skip_ws(p);
    if (*p == '[' || *p == '{') {
        char close = *p == '[' ? ']' : '}';
        size_t items = count_items(p + 1, close);
        if (close == ']') {
            msgpack_pack_array(pk, items);
        } else {
            msgpack_pack_map(pk, items / 2);
        }
        p = skip_ws(p + 1);
        while (*p != close) {
            p = skip_ws(pack_value(pk, p));
        }
        return p + 1;
    }
    if (*p == '"') {
        return pack_string(pk, p, 0);
    }
    if (p[0] == 'b' && p[1] == '"') {
        return pack_string(pk, p + 1, 1);
    }
    if (strncmp(p, "null", 4) == 0) {
        msgpack_pack_nil(pk);
        return p + 4;
    }
    if (strncmp(p, "true", 4) == 0) {
        msgpack_pack_true(pk);
        return p + 4;
    }
    char *end = NULL;
    if (strcspn(p, ".,]}") < strcspn(p, ",]}")) {
        double d = strtod(p, &end);
        if (*end == 'f') {
            msgpack_pack_float(pk, (float)d);
            return end + 1;
        }
        msgpack_pack_double(pk, d);
        return end;
    }
    long long v = strtoll(p, &end, 10);
    assert_true(end != p);
    if (v < 0) {
        msgpack_pack_int64(pk, v);
    } else {
        msgpack_pack_uint64(pk, (uint64_t)v);
    }
    return end;
}

/* Decodes the op written as text into *op; returns proto_op_decode's result. */
static int decode_text(const char *text, struct proto_op *op)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_value(&pk, text);
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    int rc = proto_op_decode(&up.data, op);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Renders an op as JSON the way ot-text-unicode's results print (no escaping needed for
 * the test strings). Returns a static buffer. */
static const char *render(const struct proto_op *op)
{
    static char buf[8192];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[");
    for (size_t i = 0; i < op->len; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        const char *sep = i ? "," : "";
        if (c->kind == PROTO_OP_SKIP) {
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%zu", sep, c->n);
        } else if (c->kind == PROTO_OP_INSERT) {
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\"", sep, c->s);
        } else {
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s{\"d\":%zu}", sep, c->n);
        }
        assert_true(n < sizeof(buf));
    }
    snprintf(buf + n, sizeof(buf) - n, "]");
    return buf;
}

/* Parses an op from JSON as ot-text-unicode prints it, failing the test if it is bad. */
static void op_of(const char *json, struct proto_op *op)
{
    proto_op_init(op);
    assert_int_equal(decode_text(json, op), 0);
}

/* Applies op to text, which must succeed; returns the malloc'd result. */
static char *apply_ok(const char *text, const struct proto_op *op)
{
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(proto_op_apply(text, strlen(text), op, 0, &out, &out_len), 0);
    assert_int_equal(strlen(out), out_len);
    return out;
}

static size_t cps(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

/* ---- decode / encode ---- */

static void test_decode_normalizes(void **state)
{
    (void)state;
    struct proto_op op;
    proto_op_init(&op);

    assert_int_equal(decode_text("[1, 2, \"a\", \"b\", {\"d\": 1}, {\"d\": \"xy\"}, 3]", &op), 0);
    assert_string_equal(render(&op), "[3,\"ab\",{\"d\":3}]");
    assert_int_equal(op.tail, 3);
    assert_int_equal(op.comps[1].n, 2);
    assert_int_equal(op.comps[1].slen, 2);

    /* {"d": str} counts code points, not bytes; inserts count code points too. */
    assert_int_equal(decode_text("[{\"d\": \"\xf0\x9f\x91\xbb\xc3\xa9\"}, \"\xe4\xb8\xad\"]", &op),
                     0);
    assert_string_equal(render(&op), "[{\"d\":2},\"\xe4\xb8\xad\"]");
    assert_int_equal(op.comps[1].n, 1);
    assert_int_equal(op.comps[1].slen, 3);
    assert_int_equal(op.tail, 0);

    /* Signed msgpack encodings of positive numbers are still numbers. */
    assert_int_equal(decode_text("[2, 5, {\"d\": 1}, 7]", &op), 0);
    assert_string_equal(render(&op), "[7,{\"d\":1}]");

    assert_int_equal(decode_text("[]", &op), 0);
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(decode_text("[4, 1]", &op), 0);
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(op.len, 0);
    assert_int_equal(op.tail, 5);
    assert_int_equal(proto_op_check(&op, 4), PROTO_EINVAL);
    assert_int_equal(proto_op_check(&op, 5), 0);

    assert_int_equal(decode_text("[\"a\", 3]", &op), 0);
    assert_false(proto_op_is_noop(&op));
    proto_op_free(&op);
    proto_op_free(&op); /* twice is fine */
    proto_op_free(NULL);
}

/* Many adjacent inserts merge into one component with all their text. */
static void test_decode_many_inserts(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    struct proto_op op;
    size_t off = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4002);
    msgpack_pack_uint64(&pk, 1);
    for (int i = 0; i < 4000; i++) {
        msgpack_pack_str_with_body(&pk, i % 2 ? "\xf0\x9f\x91\xbb" : "ab", i % 2 ? 4 : 2);
    }
    msgpack_pack_uint64(&pk, 1);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    proto_op_init(&op);
    assert_int_equal(proto_op_decode(&up.data, &op), 0);
    assert_int_equal(op.len, 2);
    assert_int_equal(op.comps[1].kind, PROTO_OP_INSERT);
    assert_int_equal(op.comps[1].n, 6000);
    assert_int_equal(op.comps[1].slen, 12000);
    assert_int_equal(strlen(op.comps[1].s), 12000);
    assert_memory_equal(op.comps[1].s + 11994, "ab\xf0\x9f\x91\xbb", 6);
    assert_int_equal(op.tail, 1);
    proto_op_free(&op);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "[0]",
        "[-1]",
        "[1.0]",
        "[3.0f]",
        "[\"\"]",
        "[{\"d\": 0}]",
        "[{\"d\": -2}]",
        "[{\"d\": 1.5}]",
        "[{\"d\": \"\"}]",
        "[{\"d\": null}]",
        "[{\"d\": [1]}]",
        "[{\"x\": 1}]",
        "[{\"dd\": 1}]",
        "[{\"D\": 1}]",
        "[{b\"d\": 1}]",
        "[{\"d\": 1, \"e\": 2}]",
        "[{\"d\": 1, \"d\": 1}]",
        "[{}]",
        "[null]",
        "[true]",
        "[[1]]",
        "[b\"ab\"]",
        "{\"d\": 1}",
        "3",
        "\"abc\"",
        "null",
        "[\"\\xff\"]",                /* not UTF-8 */
        "[\"a\\x00b\"]",              /* NUL */
        "[\"\\xed\\xa0\\x80\"]",      /* surrogate */
        "[\"\\xc0\\xaf\"]",           /* overlong */
        "[\"\\xe4\\xb8\"]",           /* cut off */
        "[\"\\xf4\\x90\\x80\\x80\"]", /* past U+10FFFF */
        "[{\"d\": \"\\xff\"}]",
        "[{\"d\": \"\\x00\"}]",
        "[1, \"a\", 0]",
        "[4294967296]",    /* past PROTO_OP_MAX_COUNT */
        "[4294967295, 1]", /* merged skip past it */
        "[{\"d\": 4294967295}, {\"d\": 1}]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proto_op op;
        op_of("[2, \"keep\"]", &op);
        int rc = decode_text(bad[i], &op);
        if (rc != PROTO_EINVAL) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
        }
        assert_int_equal(rc, PROTO_EINVAL);
        /* out is untouched on failure */
        assert_string_equal(render(&op), "[2,\"keep\"]");
        proto_op_free(&op);
    }
    struct proto_op op;
    op_of("[4294967295, \"a\", 4294967295]", &op); /* the maximum itself is fine */
    assert_int_equal(op.tail, 4294967295u);
    assert_int_equal(proto_op_check(&op, SIZE_MAX), 0);
    proto_op_free(&op);
}

static int failing_write(void *data, const char *buf, size_t len)
{
    (void)data;
    (void)buf;
    (void)len;
    return -1;
}

static void test_encode(void **state)
{
    (void)state;
    struct proto_op op;
    msgpack_sbuffer got, want;
    msgpack_packer pk;
    proto_op_init(&op);
    assert_int_equal(proto_op_skip(&op, 1), 0);
    assert_int_equal(proto_op_skip(&op, 2), 0);
    assert_int_equal(proto_op_insert(&op, "\xf0\x9f\x91\xbb", 4), 0);
    assert_int_equal(proto_op_insert(&op, "b", 1), 0);
    assert_int_equal(proto_op_delete(&op, 2), 0);
    assert_int_equal(proto_op_delete(&op, 1), 0);
    assert_int_equal(proto_op_skip(&op, 9), 0); /* trailing: not sent */

    msgpack_sbuffer_init(&got);
    msgpack_packer_init(&pk, &got, msgpack_sbuffer_write);
    assert_int_equal(proto_op_encode(&op, &pk), 0);
    msgpack_sbuffer_init(&want);
    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
    pack_value(&pk, "[3, \"\xf0\x9f\x91\xbb"
                    "b\", {\"d\": 3}]");
    assert_int_equal(got.size, want.size);
    assert_memory_equal(got.data, want.data, got.size);

    /* Round trip. */
    struct proto_op back;
    msgpack_unpacked up;
    size_t off = 0;
    proto_op_init(&back);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, got.data, got.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(proto_op_decode(&up.data, &back), 0);
    assert_string_equal(render(&back), "[3,\"\xf0\x9f\x91\xbb"
                                       "b\",{\"d\":3}]");
    msgpack_unpacked_destroy(&up);

    /* The empty op is []. */
    proto_op_free(&back);
    msgpack_sbuffer_clear(&got);
    msgpack_packer_init(&pk, &got, msgpack_sbuffer_write);
    assert_int_equal(proto_op_encode(&back, &pk), 0);
    assert_int_equal(got.size, 1);
    assert_int_equal((unsigned char)got.data[0], 0x90);

    /* A writer that fails. */
    msgpack_packer_init(&pk, NULL, failing_write);
    assert_int_equal(proto_op_encode(&op, &pk), PROTO_ENOMEM);

    msgpack_sbuffer_destroy(&got);
    msgpack_sbuffer_destroy(&want);
    proto_op_free(&op);
}

static void test_builders(void **state)
{
    (void)state;
    struct proto_op op, copy;
    proto_op_init(&op);
    proto_op_init(&copy);
    assert_int_equal(proto_op_skip(&op, 0), 0);
    assert_int_equal(proto_op_insert(&op, "", 0), 0);
    assert_int_equal(proto_op_delete(&op, 0), 0);
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(op.tail, 0);

    assert_int_equal(proto_op_insert(&op, "ab", 2), 0);
    assert_int_equal(proto_op_insert(&op, "\xff", 1), PROTO_EINVAL);
    assert_int_equal(proto_op_insert(&op, "a\0", 2), PROTO_EINVAL);
    assert_int_equal(proto_op_skip(&op, PROTO_OP_MAX_COUNT + 1), PROTO_EINVAL);
    assert_int_equal(proto_op_delete(&op, PROTO_OP_MAX_COUNT + 1), PROTO_EINVAL);
    assert_string_equal(render(&op), "[\"ab\"]");
    assert_int_equal(proto_op_insert(&op, "c", 1), 0);
    assert_int_equal(proto_op_skip(&op, 2), 0);
    assert_int_equal(proto_op_delete(&op, 1), 0);
    assert_int_equal(proto_op_skip(&op, 5), 0);
    assert_string_equal(render(&op), "[\"abc\",2,{\"d\":1}]");
    assert_int_equal(op.comps[0].s[3], '\0');
    assert_int_equal(op.tail, 5);
    assert_int_equal(proto_op_base_len(&op), 8);

    assert_int_equal(proto_op_copy(&op, &copy), 0);
    assert_string_equal(render(&copy), "[\"abc\",2,{\"d\":1}]");
    assert_int_equal(copy.tail, 5);
    assert_ptr_not_equal(copy.comps[0].s, op.comps[0].s);
    /* Copying over a non-empty op frees what it held. */
    assert_int_equal(proto_op_copy(&op, &copy), 0);
    proto_op_free(&op);
    assert_string_equal(render(&copy), "[\"abc\",2,{\"d\":1}]");
    proto_op_free(&copy);
}

static void test_check(void **state)
{
    (void)state;
    struct proto_op op;
    op_of("[2, {\"d\": 3}, \"xyz\", 1]", &op);
    assert_int_equal(proto_op_base_len(&op), 6);
    assert_int_equal(proto_op_check(&op, 5), PROTO_EINVAL);
    assert_int_equal(proto_op_check(&op, 6), 0);
    assert_int_equal(proto_op_check(&op, 100), 0);
    proto_op_free(&op);

    op_of("[\"only inserts\"]", &op);
    assert_int_equal(proto_op_check(&op, 0), 0);
    assert_false(proto_op_is_noop(&op));
    proto_op_free(&op);

    /* Large counts add up exactly. */
    op_of("[4294967295, \"a\", 4294967295]", &op);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(proto_op_insert(&op, "b", 1), 0);
        assert_int_equal(proto_op_skip(&op, PROTO_OP_MAX_COUNT), 0);
    }
    assert_int_equal(proto_op_check(&op, 100), PROTO_EINVAL);
    proto_op_free(&op);
}

/* ---- apply ---- */

static void test_apply(void **state)
{
    (void)state;
    struct proto_op op;
    char *out = NULL;
    size_t out_len = 99;

    /* Code point positions over multi-byte text. */
    op_of("[2, \"X\", 1, {\"d\": 1}]", &op);
    out = apply_ok("a\xc3\xa9\xf0\x9f\x91\xbb\xe4\xb8\xad"
                   "b",
                   &op);
    assert_string_equal(out, "a\xc3\xa9X\xf0\x9f\x91\xbb"
                             "b");
    free(out);
    proto_op_free(&op);

    /* Into an empty text; the NULL text of length 0 is empty too. */
    op_of("[\"hello\"]", &op);
    out = apply_ok("", &op);
    assert_string_equal(out, "hello");
    free(out);
    assert_int_equal(proto_op_apply(NULL, 0, &op, 0, &out, &out_len), 0);
    assert_string_equal(out, "hello");
    free(out);
    proto_op_free(&op);

    /* Delete all; skip all (noop); a tail that fits. */
    op_of("[{\"d\": 3}]", &op);
    out = apply_ok("\xf0\x9f\x91\xbb\xf0\x9f\xa5\xb0z", &op);
    assert_string_equal(out, "");
    free(out);
    proto_op_free(&op);
    op_of("[3]", &op);
    out = apply_ok("abc", &op);
    assert_string_equal(out, "abc");
    free(out);
    proto_op_free(&op);

    /* Does not fit: skip, delete, or tail past the end. */
    out = NULL;
    out_len = 99;
    static const char *nofit[] = {"[4, \"x\"]", "[2, {\"d\": 2}]", "[\"x\", 4]", "[{\"d\": 1}, 3]",
                                  "[3, {\"d\": 1}]"};
    for (size_t i = 0; i < sizeof(nofit) / sizeof(nofit[0]); i++) {
        op_of(nofit[i], &op);
        assert_int_equal(proto_op_apply("a\xc3\xa9z", 4, &op, 0, &out, &out_len), PROTO_EINVAL);
        assert_null(out);
        assert_int_equal(out_len, 99);
        proto_op_free(&op);
    }

    /* The byte limit: at the limit fine, one byte over is too big. */
    op_of("[3, \"\xc3\xa9\"]", &op); /* 3 + 2 bytes after */
    assert_int_equal(proto_op_apply("abc", 3, &op, 5, &out, &out_len), 0);
    assert_int_equal(out_len, 5);
    free(out);
    out = NULL;
    assert_int_equal(proto_op_apply("abc", 3, &op, 4, &out, &out_len), PROTO_ETOOBIG);
    assert_null(out);
    proto_op_free(&op);
    /* A delete that brings an oversized text under the limit is fine. */
    op_of("[{\"d\": 2}]", &op);
    assert_int_equal(proto_op_apply("abcdef", 6, &op, 4, &out, &out_len), 0);
    assert_string_equal(out, "cdef");
    free(out);
    proto_op_free(&op);
}

/* ---- transform, compose, cursors (expected values from ot-text-unicode) ---- */

struct tcase {
    const char *op, *other, *left, *right;
};

static void test_transform_cases(void **state)
{
    (void)state;
    static const struct tcase cases[] = {
        /* The same-position insert tie: left goes first, right after. */
        {"[3, \"a\"]", "[3, \"b\"]", "[3,\"a\"]", "[4,\"a\"]"},
        {"[\"\xf0\x9f\x91\xbb\"]", "[\"\xf0\x9f\xa5\xb0\"]", "[\"\xf0\x9f\x91\xbb\"]",
         "[1,\"\xf0\x9f\x91\xbb\"]"},
        {"[2, \"\xc3\xa9\"]", "[2, \"\xe4\xb8\xad\xe6\x96\x87\"]", "[2,\"\xc3\xa9\"]",
         "[4,\"\xc3\xa9\"]"},
        {"[\"x\", {\"d\": 1}]", "[\"y\"]", "[\"x\",1,{\"d\":1}]", "[1,\"x\",{\"d\":1}]"},
        /* An insert after our own delete at the spot is not a tie. */
        {"[{\"d\": 1}, \"x\"]", "[\"y\"]", "[1,{\"d\":1},\"x\"]", "[1,{\"d\":1},\"x\"]"},
        {"[2, \"x\"]", "[2, {\"d\": 1}, \"y\"]", "[2,\"x\"]", "[2,\"x\"]"},
        /* Inserts inside deleted text survive at the delete's position. */
        {"[3, \"x\"]", "[1, {\"d\": 4}]", "[1,\"x\"]", "[1,\"x\"]"},
        {"[\"x\"]", "[{\"d\": 2}]", "[\"x\"]", "[\"x\"]"},
        {"[{\"d\": 2}]", "[\"x\"]", "[1,{\"d\":2}]", "[1,{\"d\":2}]"},
        /* Overlapping deletes. */
        {"[1, {\"d\": 3}]", "[2, {\"d\": 3}]", "[1,{\"d\":1}]", "[1,{\"d\":1}]"},
        {"[1, {\"d\": 2}, \"ab\"]", "[1, {\"d\": 2}, \"cd\"]", "[1,\"ab\"]", "[3,\"ab\"]"},
        {"[5, \"end\"]", "[1, \"\xf0\x9f\x91\xbb\"]", "[6,\"end\"]", "[6,\"end\"]"},
        {"[2, \"a\", 2, \"b\"]", "[1, \"X\", 2, \"Y\"]", "[3,\"a\",3,\"b\"]", "[3,\"a\",3,\"b\"]"},
        {"[]", "[2, \"x\"]", "[]", "[]"},
        {"[1, \"q\"]", "[]", "[1,\"q\"]", "[1,\"q\"]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_op a, b, r;
        op_of(cases[i].op, &a);
        op_of(cases[i].other, &b);
        proto_op_init(&r);
        assert_int_equal(proto_op_transform(&a, &b, PROTO_OP_LEFT, &r), 0);
        assert_string_equal(render(&r), cases[i].left);
        assert_int_equal(proto_op_transform(&a, &b, PROTO_OP_RIGHT, &r), 0);
        assert_string_equal(render(&r), cases[i].right);
        /* In place: out may be the op itself. */
        assert_int_equal(proto_op_transform(&a, &b, PROTO_OP_LEFT, &a), 0);
        assert_string_equal(render(&a), cases[i].left);
        proto_op_free(&a);
        proto_op_free(&b);
        proto_op_free(&r);
    }
}

/* PROTOCOL.md section 6: the server transforms a later op P over an applied op S with
 * "left", so at one position P's insert lands first; a client with pending P that gets S
 * uses transform(P, S, left) and transform(S, P, right), and both reach the same text. */
static void test_transform_server_rule(void **state)
{
    (void)state;
    const char *base = "ab";
    struct proto_op s, p, p2, s2;
    op_of("[1, \"S\"]", &s); /* applied first */
    op_of("[1, \"P\"]", &p); /* submitted later against the same base */
    proto_op_init(&p2);
    proto_op_init(&s2);
    assert_int_equal(proto_op_transform(&p, &s, PROTO_OP_LEFT, &p2), 0);
    assert_int_equal(proto_op_transform(&s, &p, PROTO_OP_RIGHT, &s2), 0);
    char *t1 = apply_ok(base, &s);
    char *server = apply_ok(t1, &p2);
    char *t2 = apply_ok(base, &p);
    char *client = apply_ok(t2, &s2);
    assert_string_equal(server, "aPSb");
    assert_string_equal(client, "aPSb");
    free(t1);
    free(t2);
    free(server);
    free(client);
    proto_op_free(&s);
    proto_op_free(&p);
    proto_op_free(&p2);
    proto_op_free(&s2);
}

static void test_compose_cases(void **state)
{
    (void)state;
    static const char *cases[][3] = {
        {"[\"\xf0\x9f\x91\xbb\"]", "[1, \"\xf0\x9f\xa5\xb0\"]",
         "[\"\xf0\x9f\x91\xbb\xf0\x9f\xa5\xb0\"]"},
        {"[1, \"a\xf0\x9f\x91\xbb"
         "b\"]",
         "[2, {\"d\": 1}]", "[1,\"ab\"]"},
        {"[\"\xf0\x9f\x91\xbb\xf0\x9f\xa5\xb0\xf0\x9f\x92\x83\"]", "[1, {\"d\": 1}]",
         "[\"\xf0\x9f\x91\xbb\xf0\x9f\x92\x83\"]"},
        {"[{\"d\": 2}]", "[{\"d\": 2}]", "[{\"d\":4}]"},
        {"[2, \"ab\"]", "[1, {\"d\": 2}]", "[1,{\"d\":1},\"b\"]"},
        {"[{\"d\": 1}]", "[\"x\"]", "[\"x\",{\"d\":1}]"},
        {"[1, {\"d\": 1}]", "[1, \"x\"]", "[1,\"x\",{\"d\":1}]"},
        {"[\"abc\"]", "[1, {\"d\": 1}, 1, \"Z\"]", "[\"acZ\"]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_op a, b, r;
        op_of(cases[i][0], &a);
        op_of(cases[i][1], &b);
        proto_op_init(&r);
        assert_int_equal(proto_op_compose(&a, &b, &r), 0);
        assert_string_equal(render(&r), cases[i][2]);
        assert_int_equal(proto_op_compose(&a, &b, &b), 0); /* in place */
        assert_string_equal(render(&b), cases[i][2]);
        proto_op_free(&a);
        proto_op_free(&b);
        proto_op_free(&r);
    }
}

static void test_transform_pos(void **state)
{
    (void)state;
    struct proto_op op, del, ins, x;
    op_of("[10, \"oh hi\", 10, {\"d\": 20}]", &op);
    op_of("[25, {\"d\": 20}]", &del);
    op_of("[10, \"oh hi\"]", &ins);
    static const size_t want[][4] = {
        /* cursor, over op, over del, over ins */
        {0, 0, 0, 0},     {9, 9, 9, 9},     {10, 10, 10, 10}, {11, 16, 11, 16},
        {14, 19, 14, 19}, {15, 20, 15, 20}, {20, 25, 20, 25}, {25, 25, 25, 30},
        {30, 25, 25, 35}, {45, 30, 25, 50}, {46, 31, 26, 51}, {60, 45, 40, 65},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(proto_op_transform_pos(want[i][0], &op), want[i][1]);
        assert_int_equal(proto_op_transform_pos(want[i][0], &del), want[i][2]);
        assert_int_equal(proto_op_transform_pos(want[i][0], &ins), want[i][3]);
    }
    op_of("[\"ab\"]", &x);
    assert_int_equal(proto_op_transform_pos(0, &x), 0);
    proto_op_free(&x);
    op_of("[{\"d\": 1}, \"\xf0\x9f\x91\xbb\"]", &x);
    assert_int_equal(proto_op_transform_pos(1, &x), 0);
    proto_op_free(&x);
    op_of("[1, {\"d\": 5}]", &x);
    assert_int_equal(proto_op_transform_pos(2, &x), 1);
    proto_op_free(&x);
    proto_op_free(&op);
    proto_op_free(&del);
    proto_op_free(&ins);
}

/* ---- properties ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static const char *const alphabet[] = {"a",
                                       "b",
                                       "c",
                                       " ",
                                       "\xc3\xa9",
                                       "\xc3\x9f",
                                       "\xe2\x82\xac",
                                       "\xe4\xb8\xad",
                                       "\n",
                                       "\xf0\x9f\x91\xbb",
                                       "\xf0\x9f\xa5\xb0"};

static void rnd_text(char *buf, size_t cap, size_t cps_count)
{
    size_t n = 0;
    for (size_t i = 0; i < cps_count; i++) {
        const char *c = alphabet[rnd_below(sizeof(alphabet) / sizeof(alphabet[0]))];
        size_t l = strlen(c);
        assert_true(n + l < cap);
        memcpy(buf + n, c, l);
        n += l;
    }
    buf[n] = '\0';
}

/* A random op that fits a text of len code points. */
static void rnd_op(size_t len, struct proto_op *op)
{
    size_t pos = 0;
    char ins[64];
    proto_op_init(op);
    while (rnd_below(100) >= 8) {
        size_t left = len - pos;
        switch (rnd_below(3)) {
        case 0:
            if (left > 0) {
                size_t n = 1 + rnd_below(left < 6 ? left : 6);
                assert_int_equal(proto_op_skip(op, n), 0);
                pos += n;
            }
            break;
        case 1:
            rnd_text(ins, sizeof(ins), 1 + rnd_below(4));
            assert_int_equal(proto_op_insert(op, ins, strlen(ins)), 0);
            break;
        default:
            if (left > 0) {
                size_t n = 1 + rnd_below(left < 6 ? left : 6);
                assert_int_equal(proto_op_delete(op, n), 0);
                pos += n;
            }
            break;
        }
    }
    assert_int_equal(proto_op_check(op, len), 0);
}

static void test_property_transform(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {1, 42, 20230607};
    char doc[1024];
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        rng_state = seeds[s];
        for (int i = 0; i < 3000; i++) {
            struct proto_op a, b, a2, b2;
            rnd_text(doc, sizeof(doc), rnd_below(40));
            size_t len = cps(doc);
            rnd_op(len, &a);
            rnd_op(len, &b);
            proto_op_init(&a2);
            proto_op_init(&b2);
            assert_int_equal(proto_op_transform(&b, &a, PROTO_OP_LEFT, &b2), 0);
            assert_int_equal(proto_op_transform(&a, &b, PROTO_OP_RIGHT, &a2), 0);
            char *da = apply_ok(doc, &a);
            char *db = apply_ok(doc, &b);
            assert_int_equal(proto_op_check(&b2, cps(da)), 0);
            assert_int_equal(proto_op_check(&a2, cps(db)), 0);
            char *dab = apply_ok(da, &b2);
            char *dba = apply_ok(db, &a2);
            assert_string_equal(dab, dba);
            free(dab);
            free(dba);
            /* The mirror: a on the left. */
            assert_int_equal(proto_op_transform(&a, &b, PROTO_OP_LEFT, &a2), 0);
            assert_int_equal(proto_op_transform(&b, &a, PROTO_OP_RIGHT, &b2), 0);
            dab = apply_ok(da, &b2);
            dba = apply_ok(db, &a2);
            assert_string_equal(dab, dba);
            /* Transformed cursors stay inside the text. */
            size_t cur = rnd_below(len + 1);
            assert_true(proto_op_transform_pos(cur, &a) <= cps(da));
            free(dab);
            free(dba);
            free(da);
            free(db);
            proto_op_free(&a);
            proto_op_free(&b);
            proto_op_free(&a2);
            proto_op_free(&b2);
        }
    }
}

static void test_property_compose(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {7, 99, 123456789};
    char doc[1024];
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        rng_state = seeds[s];
        for (int i = 0; i < 3000; i++) {
            struct proto_op a, b, ab;
            rnd_text(doc, sizeof(doc), rnd_below(40));
            rnd_op(cps(doc), &a);
            char *da = apply_ok(doc, &a);
            rnd_op(cps(da), &b);
            char *dab = apply_ok(da, &b);
            proto_op_init(&ab);
            assert_int_equal(proto_op_compose(&a, &b, &ab), 0);
            assert_int_equal(proto_op_check(&ab, cps(doc)), 0);
            char *once = apply_ok(doc, &ab);
            assert_string_equal(once, dab);
            free(once);
            free(da);
            free(dab);
            proto_op_free(&a);
            proto_op_free(&b);
            proto_op_free(&ab);
        }
    }
}

/* A client's pending op against a server history of several ops converges too. */
static void test_property_history(void **state)
{
    (void)state;
    char doc[1024];
    rng_state = 5150;
    for (int i = 0; i < 1000; i++) {
        struct proto_op hist[4], p, tmp;
        rnd_text(doc, sizeof(doc), rnd_below(30));
        char *server = strdup(doc);
        for (int h = 0; h < 4; h++) {
            rnd_op(cps(server), &hist[h]);
            char *next = apply_ok(server, &hist[h]);
            free(server);
            server = next;
        }
        rnd_op(cps(doc), &p);
        /* Server: p over each applied op with left. */
        proto_op_init(&tmp);
        assert_int_equal(proto_op_copy(&p, &tmp), 0);
        for (int h = 0; h < 4; h++) {
            assert_int_equal(proto_op_transform(&tmp, &hist[h], PROTO_OP_LEFT, &tmp), 0);
        }
        char *final_server = apply_ok(server, &tmp);
        /* Client: applied p, then each server op transformed over its pending op. */
        char *client = apply_ok(doc, &p);
        for (int h = 0; h < 4; h++) {
            struct proto_op s2;
            proto_op_init(&s2);
            assert_int_equal(proto_op_transform(&hist[h], &p, PROTO_OP_RIGHT, &s2), 0);
            assert_int_equal(proto_op_transform(&p, &hist[h], PROTO_OP_LEFT, &p), 0);
            char *next = apply_ok(client, &s2);
            free(client);
            client = next;
            proto_op_free(&s2);
        }
        assert_string_equal(client, final_server);
        free(client);
        free(final_server);
        free(server);
        for (int h = 0; h < 4; h++) {
            proto_op_free(&hist[h]);
        }
        proto_op_free(&p);
        proto_op_free(&tmp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_normalizes),
        cmocka_unit_test(test_decode_many_inserts),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_transform_cases),
        cmocka_unit_test(test_transform_server_rule),
        cmocka_unit_test(test_compose_cases),
        cmocka_unit_test(test_transform_pos),
        cmocka_unit_test(test_property_transform),
        cmocka_unit_test(test_property_compose),
        cmocka_unit_test(test_property_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
