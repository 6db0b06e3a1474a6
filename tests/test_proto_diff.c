/* test_proto_diff.c - diff(old, new) as a text op. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto_diff.h"
#include "proto_err.h"
#include "proto_ot.h"
#include "testutil.h"

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

static const char *const alphabet[] = {
    "a", "b", "c", " ", "\xc3\xa9", "\xe4\xb8\xad", "\n", "\xf0\x9f\x91\xbb", "\xf0\x9f\xa5\xb0",
};

#define ALPHA (sizeof(alphabet) / sizeof(alphabet[0]))

static size_t cps(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

/* Code points of valid UTF-8 s into out (len entries at most); returns the count. */
static size_t to_cps(const char *str, uint32_t *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = 0;
    while (*s) {
        uint32_t c = *s;
        size_t more = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        if (more) {
            c &= 0x3F >> more;
        }
        for (size_t i = 1; i <= more; i++) {
            c = (c << 6) | (s[i] & 0x3F);
        }
        out[n++] = c;
        s += more + 1;
    }
    return n;
}

/* Code points deleted plus inserted by op. */
static size_t edit_size(const struct proto_op *op)
{
    size_t n = 0;
    for (size_t i = 0; i < op->len; i++) {
        if (op->comps[i].kind != PROTO_OP_SKIP) {
            n += op->comps[i].n;
        }
    }
    return n;
}

/* Diffs a against b, checks that the op fits a and turns it into b; returns the op's
 * edit size. */
static size_t diff_ok(const char *a, size_t alen, const char *b, size_t blen)
{
    struct proto_op op;
    char *out = NULL;
    size_t out_len = 0;
    proto_op_init(&op);
    assert_int_equal(proto_diff(a, alen, b, blen, &op), 0);
    assert_int_equal(proto_op_check(&op, cps(a, alen)), 0);
    assert_int_equal(proto_op_base_len(&op), cps(a, alen));
    assert_int_equal(proto_op_apply(a, alen, &op, 0, &out, &out_len), 0);
    assert_int_equal(out_len, blen);
    assert_memory_equal(out, b, blen);
    /* Normalized: no zero counts, no two neighbours of one kind, no trailing skip. */
    for (size_t i = 0; i < op.len; i++) {
        assert_true(op.comps[i].n > 0);
        if (i > 0) {
            assert_int_not_equal(op.comps[i].kind, op.comps[i - 1].kind);
        }
    }
    if (op.len > 0) {
        assert_int_not_equal(op.comps[op.len - 1].kind, PROTO_OP_SKIP);
    }
    size_t n = edit_size(&op);
    free(out);
    proto_op_free(&op);
    return n;
}

static size_t diff_str(const char *a, const char *b)
{
    return diff_ok(a, strlen(a), b, strlen(b));
}

/* Length of a longest common subsequence of code points (quadratic; small inputs). */
static size_t lcs(const uint32_t *a, size_t n, const uint32_t *b, size_t m)
{
    size_t *row = calloc(m + 1, sizeof(*row));
    assert_non_null(row);
    for (size_t i = 1; i <= n; i++) {
        size_t diag = 0;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            row[j] = a[i - 1] == b[j - 1] ? diag + 1 : (row[j - 1] > up ? row[j - 1] : up);
            diag = up;
        }
    }
    size_t r = row[m];
    free(row);
    return r;
}

static void test_basic(void **state)
{
    (void)state;
    struct proto_op op;
    proto_op_init(&op);

    assert_int_equal(proto_diff("same", 4, "same", 4, &op), 0);
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(op.tail, 4);
    assert_int_equal(proto_diff("", 0, "", 0, &op), 0);
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(proto_diff(NULL, 0, NULL, 0, &op), 0);
    assert_true(proto_op_is_noop(&op));

    assert_int_equal(proto_diff("", 0, "new \xf0\x9f\x91\xbb", 8, &op), 0);
    assert_int_equal(op.len, 1);
    assert_int_equal(op.comps[0].kind, PROTO_OP_INSERT);
    assert_string_equal(op.comps[0].s, "new \xf0\x9f\x91\xbb");
    assert_int_equal(op.comps[0].n, 5);

    assert_int_equal(proto_diff("old \xe4\xb8\xad", 7, "", 0, &op), 0);
    assert_int_equal(op.len, 1);
    assert_int_equal(op.comps[0].kind, PROTO_OP_DELETE);
    assert_int_equal(op.comps[0].n, 5);

    /* One inserted character: [2, "X"] with the rest as tail. */
    assert_int_equal(proto_diff("abc", 3, "abXc", 4, &op), 0);
    assert_int_equal(op.len, 2);
    assert_int_equal(op.comps[0].kind, PROTO_OP_SKIP);
    assert_int_equal(op.comps[0].n, 2);
    assert_string_equal(op.comps[1].s, "X");
    assert_int_equal(op.tail, 1);

    /* One emoji replaced by another: a delete and an insert of one code point each. */
    assert_int_equal(proto_diff("a\xf0\x9f\x91\xbb"
                                "b",
                                6,
                                "a\xf0\x9f\xa5\xb0"
                                "b",
                                6, &op),
                     0);
    assert_int_equal(edit_size(&op), 2);
    assert_int_equal(op.comps[0].kind, PROTO_OP_SKIP);
    assert_int_equal(op.comps[0].n, 1);
    assert_int_equal(op.tail, 1);
    proto_op_free(&op);

    assert_int_equal(diff_str("the cat sat", "the cut sat"), 2);
    assert_int_equal(diff_str("abcabba", "cbabac"), 5); /* Myers' paper example, D = 5 */
    assert_int_equal(diff_str("x\n", "x\ny\n"), 2);
}

static void test_rejects(void **state)
{
    (void)state;
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_op_insert(&op, "keep", 4), 0);
    assert_int_equal(proto_diff("a\xff", 2, "a", 1, &op), PROTO_EINVAL);
    assert_int_equal(proto_diff("a", 1, "a\xc0\xaf", 3, &op), PROTO_EINVAL);
    assert_int_equal(proto_diff("a", 1, "a\0b", 3, &op), PROTO_EINVAL);
    assert_int_equal(proto_diff("\xed\xa0\x80", 3, "a", 1, &op), PROTO_EINVAL);
    assert_int_equal(proto_diff("a", 1, "\xf0\x9f\x91", 3, &op), PROTO_EINVAL);
    /* out untouched on failure */
    assert_int_equal(op.len, 1);
    assert_string_equal(op.comps[0].s, "keep");
    proto_op_free(&op);
}

static void rnd_text(char *buf, size_t cap, size_t count)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const char *c = alphabet[rnd_below(ALPHA)];
        size_t l = strlen(c);
        assert_true(n + l < cap);
        memcpy(buf + n, c, l);
        n += l;
    }
    buf[n] = '\0';
}

/* A copy of src with a few random edits (code point aligned). */
static void mutate(const char *src, char *dst, size_t cap)
{
    size_t n = strlen(src);
    size_t w = 0;
    size_t i = 0;
    while (i < n) {
        size_t clen = 1;
        while (i + clen < n && ((unsigned char)src[i + clen] & 0xC0) == 0x80) {
            clen++;
        }
        size_t r = rnd_below(10);
        if (r == 0) {
            i += clen; /* delete */
            continue;
        }
        if (r == 1) {
            char ins[32];
            rnd_text(ins, sizeof(ins), 1 + rnd_below(3));
            assert_true(w + strlen(ins) < cap);
            memcpy(dst + w, ins, strlen(ins));
            w += strlen(ins);
        }
        assert_true(w + clen < cap);
        memcpy(dst + w, src + i, clen);
        w += clen;
        i += clen;
    }
    dst[w] = '\0';
}

/* Random pairs: the op turns a into b and is a shortest edit script. */
static void test_property_small(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {3, 1234, 987654321};
    char a[512], b[1024];
    uint32_t ca[512], cb[1024];
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        rng_state = seeds[s];
        for (int i = 0; i < 2000; i++) {
            rnd_text(a, sizeof(a), rnd_below(60));
            if (rnd_below(4) == 0) {
                rnd_text(b, sizeof(b), rnd_below(60));
            } else {
                mutate(a, b, sizeof(b));
            }
            size_t n = to_cps(a, ca);
            size_t m = to_cps(b, cb);
            size_t d = diff_str(a, b);
            assert_int_equal(d, n + m - 2 * lcs(ca, n, cb, m));
        }
    }
}

/* Two people change different words of one paragraph; after transform both keep their
 * words, whichever op the server got first. */
static void test_concurrent_words(void **state)
{
    (void)state;
    const char *base = "The quick brown fox jumps over the lazy dog, and the rapporteur "
                       "notes that the group agreed to send a liaison statement.";
    const char *pa = "The quick red fox jumps over the lazy dog, and the rapporteur "
                     "notes that the group agreed to send a liaison statement.";
    const char *pb = "The quick brown fox jumps over the lazy dog, and the chairman "
                     "notes that the group agreed to send a liaison statement.";
    const char *both = "The quick red fox jumps over the lazy dog, and the chairman "
                       "notes that the group agreed to send a liaison statement.";
    struct proto_op da, db, t;
    proto_op_init(&da);
    proto_op_init(&db);
    proto_op_init(&t);
    assert_int_equal(proto_diff(base, strlen(base), pa, strlen(pa), &da), 0);
    assert_int_equal(proto_diff(base, strlen(base), pb, strlen(pb), &db), 0);
    for (int first = 0; first < 2; first++) {
        const struct proto_op *x = first ? &db : &da;
        const struct proto_op *y = first ? &da : &db;
        char *t1 = NULL, *t2 = NULL;
        size_t l1 = 0, l2 = 0;
        assert_int_equal(proto_op_apply(base, strlen(base), x, 0, &t1, &l1), 0);
        assert_int_equal(proto_op_transform(y, x, PROTO_OP_LEFT, &t), 0);
        assert_int_equal(proto_op_apply(t1, l1, &t, 0, &t2, &l2), 0);
        assert_string_equal(t2, both);
        free(t1);
        free(t2);
    }
    proto_op_free(&da);
    proto_op_free(&db);
    proto_op_free(&t);
}

static const char *const words[] = {
    "meeting",          "report", "agreed",   "the",          "of",
    "liaison",          "draft",  "Question", "\xc3\xa9tude", "\xe4\xb8\xad\xe6\x96\x87",
    "\xf0\x9f\x93\x84", "and",    "to",       "contribution",
};

/* About size bytes of words, spaces and a newline every dozen words. */
static char *make_text(size_t size, size_t *len)
{
    char *t = malloc(size + 64);
    size_t n = 0;
    size_t count = 0;
    assert_non_null(t);
    while (n < size) {
        const char *w = words[rnd_below(sizeof(words) / sizeof(words[0]))];
        size_t l = strlen(w);
        memcpy(t + n, w, l);
        n += l;
        t[n++] = ++count % 12 == 0 ? '\n' : ' ';
    }
    t[n] = '\0';
    *len = n;
    return t;
}

/* Copies src with edits at scattered positions: one every `every` bytes on average,
 * each deleting up to 8 characters and/or inserting a word. Returns the new text. */
static char *scatter(const char *src, size_t len, size_t every, size_t *out_len, size_t *edited)
{
    char *t = malloc(2 * len + 64);
    size_t w = 0;
    size_t i = 0;
    assert_non_null(t);
    *edited = 0;
    while (i < len) {
        size_t run = rnd_below(2 * every);
        size_t end = i + run < len ? i + run : len;
        while (end < len && ((unsigned char)src[end] & 0xC0) == 0x80) {
            end++;
        }
        memcpy(t + w, src + i, end - i);
        w += end - i;
        i = end;
        if (i >= len) {
            break;
        }
        size_t del = rnd_below(8);
        for (size_t k = 0; k < del && i < len; k++) {
            i++;
            while (i < len && ((unsigned char)src[i] & 0xC0) == 0x80) {
                i++;
            }
            (*edited)++;
        }
        if (rnd_below(2) == 0) {
            const char *wd = words[rnd_below(sizeof(words) / sizeof(words[0]))];
            memcpy(t + w, wd, strlen(wd));
            w += strlen(wd);
            *edited += cps(wd, strlen(wd));
        }
    }
    t[w] = '\0';
    *out_len = w;
    return t;
}

/* A 1 MiB text with a couple hundred scattered edits: the diff is as small as the edits. */
static void test_large_scattered(void **state)
{
    (void)state;
    size_t alen = 0, blen = 0, edited = 0;
    rng_state = 77;
    char *a = make_text(1 << 20, &alen);
    char *b = scatter(a, alen, 5000, &blen, &edited);
    assert_true(edited > 100);
    size_t d = diff_ok(a, alen, b, blen);
    assert_true(d <= edited);
    free(a);
    free(b);
}

/* Too many differences for the exact diff: the coarse path must still be exact and keep
 * the unchanged lines. */
static void test_large_dense(void **state)
{
    (void)state;
    size_t alen = 0, blen = 0, edited = 0;
    rng_state = 4242;
    char *a = make_text(1 << 19, &alen);
    char *b = scatter(a, alen, 40, &blen, &edited);
    size_t d = diff_ok(a, alen, b, blen);
    assert_true(d <= 2 * edited);
    free(b);

    /* Dense edits in half of the lines, the other half untouched. */
    b = malloc(2 * alen + 64);
    assert_non_null(b);
    blen = 0;
    edited = 0;
    size_t changed = 0; /* code points of the changed lines, before and after */
    for (size_t i = 0, line = 0; i < alen; line++) {
        size_t end = i;
        while (end < alen && a[end] != '\n') {
            end++;
        }
        end = end < alen ? end + 1 : end;
        if (line % 2 == 0) {
            size_t l = 0, e = 0;
            char *piece = NULL;
            char *copy = malloc(end - i + 1);
            assert_non_null(copy);
            memcpy(copy, a + i, end - i);
            copy[end - i] = '\0';
            piece = scatter(copy, end - i, 6, &l, &e);
            changed += cps(copy, end - i) + cps(piece, l);
            memcpy(b + blen, piece, l);
            blen += l;
            edited += e;
            free(piece);
            free(copy);
        } else {
            memcpy(b + blen, a + i, end - i);
            blen += end - i;
        }
        i = end;
    }
    b[blen] = '\0';
    d = diff_ok(a, alen, b, blen);
    assert_true(d <= edited);
    assert_true(d <= changed);
    free(b);

    /* One long line, no newlines at all. */
    for (size_t i = 0; i < alen; i++) {
        if (a[i] == '\n') {
            a[i] = ' ';
        }
    }
    b = scatter(a, alen, 30, &blen, &edited);
    d = diff_ok(a, alen, b, blen);
    assert_true(d <= 2 * edited);
    free(b);
    free(a);
}

/* Two unrelated 1 MiB texts: correct, and done in reasonable time. */
static void test_large_unrelated(void **state)
{
    (void)state;
    size_t alen = 0, blen = 0;
    rng_state = 31337;
    char *a = make_text(1 << 20, &alen);
    char *b = make_text(1 << 20, &blen);
    (void)diff_ok(a, alen, b, blen);
    /* And random characters with no words to anchor on. */
    free(b);
    b = malloc((1 << 20) + 64);
    assert_non_null(b);
    rnd_text(b, (1 << 20) + 64, 1 << 18);
    (void)diff_ok(a, alen, b, strlen(b));
    (void)diff_ok(b, strlen(b), a, alen);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),           cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_property_small),  cmocka_unit_test(test_concurrent_words),
        cmocka_unit_test(test_large_scattered), cmocka_unit_test(test_large_dense),
        cmocka_unit_test(test_large_unrelated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
