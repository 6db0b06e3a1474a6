/* test_proto_diff_words.c - the word diff and the three-way merge that refuses to fuse two
 * changes of the same words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* The op of the word diff old -> new, as "skip/del/ins" text: "S4 D10 I'TSAG-TD196'". */
static void describe(const char *old, const char *new_text, char *buf, size_t cap)
{
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_diff_words(old, strlen(old), new_text, strlen(new_text), &op), 0);
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < op.len; i++) {
        const struct proto_op_comp *c = &op.comps[i];
        int w = c->kind == PROTO_OP_SKIP ? snprintf(buf + n, cap - n, "%sS%zu", n ? " " : "", c->n)
                : c->kind == PROTO_OP_DELETE
                    ? snprintf(buf + n, cap - n, "%sD%zu", n ? " " : "", c->n)
                    : snprintf(buf + n, cap - n, "%sI'%s'", n ? " " : "", c->s);
        n += (size_t)w;
    }
    /* The op turns old into new. */
    char *got = NULL;
    size_t got_len = 0;
    assert_int_equal(proto_op_apply(old, strlen(old), &op, 0, &got, &got_len), 0);
    assert_string_equal(got, new_text);
    free(got);
    proto_op_free(&op);
}

static void test_words(void **state)
{
    (void)state;
    char d[256];
    /* A document number is one word: replaced whole, not digit by digit. */
    describe("see TSAG-TD182 now", "see TSAG-TD196 now", d, sizeof(d));
    assert_string_equal(d, "S4 D10 I'TSAG-TD196'");
    describe("RG-IEM-4 and C.1/2", "RG-IEM-5 and C.1/2", d, sizeof(d));
    assert_string_equal(d, "D8 I'RG-IEM-5'");
    describe("closed at 17:30 hours.", "closed at 17:35 hours.", d, sizeof(d));
    assert_string_equal(d, "S10 D5 I'17:35'");
    /* A joining mark at a word's end is a mark of its own. */
    describe("hours.", "hours!", d, sizeof(d));
    assert_string_equal(d, "S5 D1 I'!'");
    describe("a - b", "a -- b", d, sizeof(d));
    assert_string_equal(d, "S3 I'-'");
    /* A run of spaces is one token. */
    describe("a   b", "a b", d, sizeof(d));
    assert_string_equal(d, "S1 D3 I' '");
    describe("a b", "a\t\nb", d, sizeof(d));
    assert_string_equal(d, "S1 D1 I'\t\n'");
    /* UTF-8: positions in code points, accented and CJK letters inside words, emoji and
     * typographic punctuation on their own. */
    describe("\xc3\xa9tude n\xc2\xb0"
             "5",
             "\xc3\xa9tudes n\xc2\xb0"
             "5",
             d, sizeof(d));
    assert_string_equal(d, "D5 I'\xc3\xa9tudes'");
    describe("caf\xc3\xa9 \xe2\x80\x94 ok", "caf\xc3\xa9 \xe2\x80\x93 ok", d, sizeof(d));
    assert_string_equal(d, "S5 D1 I'\xe2\x80\x93'");
    describe("x\xf0\x9f\x93\x84y", "x\xf0\x9f\x93\x84z", d, sizeof(d));
    assert_string_equal(d, "S2 D1 I'z'");
    describe("l\xe2\x80\x99"
             "avis",
             "l\xe2\x80\x99"
             "accord",
             d, sizeof(d));
    assert_string_equal(d, "D6 I'l\xe2\x80\x99"
                           "accord'");
    describe("", "new", d, sizeof(d));
    assert_string_equal(d, "I'new'");
    describe("old", "", d, sizeof(d));
    assert_string_equal(d, "D3");
    describe("same", "same", d, sizeof(d));
    assert_string_equal(d, "");

    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_diff_words("a\xff", 2, "a", 1, &op), PROTO_EINVAL);
    assert_int_equal(proto_diff_words("a", 1, "a\0b", 3, &op), PROTO_EINVAL);
    proto_op_free(&op);
}

/* A long text with a few words changed: the op is as small as the words. */
static void test_words_large(void **state)
{
    (void)state;
    size_t cap = 600000, n = 0;
    char *a = malloc(cap);
    char *b = malloc(cap);
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; n + 64 < cap; i++) {
        n += (size_t)snprintf(a + n, cap - n, "Doc TSAG-TD%d was noted. ", i);
    }
    memcpy(b, a, n + 1);
    memcpy(strstr(b, "TSAG-TD777 "), "TSAG-TD999 ", 11);
    memcpy(strstr(b, "TSAG-TD9000 "), "TSAG-TD0009 ", 12);
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(proto_diff_words(a, n, b, n, &op), 0);
    size_t changed = 0;
    for (size_t i = 0; i < op.len; i++) {
        if (op.comps[i].kind != PROTO_OP_SKIP) {
            changed += op.comps[i].n;
        }
    }
    assert_int_equal(changed, 2 * 10 + 2 * 11);
    char *got = NULL;
    size_t got_len = 0;
    assert_int_equal(proto_op_apply(a, n, &op, 0, &got, &got_len), 0);
    assert_string_equal(got, b);
    free(got);
    proto_op_free(&op);
    free(a);
    free(b);
}

struct merge_case {
    const char *name;
    const char *base, *mine, *theirs;
    size_t conflicts;
    const char *merged; /* the clean merge when conflicts == 0 */
};

static const struct merge_case cases[] = {
    /* The two fusions of the issue. */
    {"document number, both changed", "Report: TSAG-TD182.", "Report: TSAG-TD196.",
     "Report: TSAG-TD283.", 1, NULL},
    {"closing time, both changed", "The meeting was closed at 17:30 hours.",
     "The meeting was closed at 17:35 hours.", "The meeting was was closed at 17:40.", 1, NULL},
    {"same word", "the group agreed", "the team agreed", "the groups agreed", 1, NULL},
    {"adjacent words", "the group agreed to it", "the team agreed to it", "the group decided to it",
     1, NULL},
    {"insert at the other's word", "the group agreed", "the group agreed warmly", "the group noted",
     1, NULL},
    {"both insert at one place", "a b", "a x b", "a y b", 1, NULL},
    {"one deletes the sentence the other edits", "First one. The group agreed. Last one.",
     "First one. Last one.", "First one. The group agreed it. Last one.", 1, NULL},
    {"both the same change", "the group agreed", "the team agreed", "the team agreed", 0,
     "the team agreed"},
    {"different sentences", "First the group agreed. Then it noted TD1.",
     "First the team agreed. Then it noted TD1.", "First the group agreed. Then it noted TD2.", 0,
     "First the team agreed. Then it noted TD2."},
    {"different lines", "line one\nline two\n", "line 1\nline two\n", "line one\nline 2\n", 0,
     "line 1\nline 2\n"},
    {"words apart in one sentence", "the group agreed to send it", "the team agreed to send it",
     "the group agreed to mail it", 0, "the team agreed to mail it"},
    {"only mine", "a b c", "a B c", "a b c", 0, "a B c"},
    {"only theirs", "a b c", "a b c", "a b C", 0, "a b C"},
    {"utf-8 words apart", "\xc3\xa9t\xc3\xa9 \xe2\x80\x94 TD1 \xe2\x80\x94 hiver",
     "\xc3\xa9t\xc3\xa9s \xe2\x80\x94 TD1 \xe2\x80\x94 hiver",
     "\xc3\xa9t\xc3\xa9 \xe2\x80\x94 TD1 \xe2\x80\x94 hivers", 0,
     "\xc3\xa9t\xc3\xa9s \xe2\x80\x94 TD1 \xe2\x80\x94 hivers"},
    {"utf-8 same word", "\xe4\xb8\xad\xe6\x96\x87 x", "\xe4\xb8\xad x", "\xe6\x96\x87 x", 1, NULL},
};

static void test_merge_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct merge_case *c = &cases[i];
        char *out = NULL;
        size_t len = 0, conflicts = 99;
        int rc = proto_merge3(c->base, strlen(c->base), c->mine, strlen(c->mine), c->theirs,
                              strlen(c->theirs), "associate (seq 12)", &out, &len, &conflicts);
        if (rc != 0 || conflicts != c->conflicts) {
            print_error("case '%s': rc %d, %zu conflicts, got:\n%s\n", c->name, rc, conflicts,
                        out ? out : "");
            fail();
        }
        assert_int_equal(strlen(out), len);
        if (c->conflicts == 0) {
            assert_string_equal(out, c->merged);
            assert_false(proto_merge_has_markers(out, len));
        } else {
            assert_true(proto_merge_has_markers(out, len));
        }
        free(out);
    }
}

/* What a conflict looks like: whole lines, both versions, the other side named. */
static void test_merge_markers(void **state)
{
    (void)state;
    const char *base = "Opened at 9:00.\nThe meeting was closed at 17:30 hours.\nEnd.";
    const char *mine = "Opened at 9:30.\nThe meeting was closed at 17:35 hours.\nEnd.";
    const char *theirs = "Opened at 9:00.\nThe meeting was closed at 17:40.\nEnd!";
    char *out = NULL;
    size_t len = 0, conflicts = 0;
    assert_int_equal(proto_merge3(base, strlen(base), mine, strlen(mine), theirs, strlen(theirs),
                                  "associate (seq 12)", &out, &len, &conflicts),
                     0);
    assert_int_equal(conflicts, 1);
    assert_string_equal(out, "Opened at 9:30.\n"
                             "<<<<<<< yours\n"
                             "The meeting was closed at 17:35 hours.\n"
                             "=======\n"
                             "The meeting was closed at 17:40.\n"
                             ">>>>>>> associate (seq 12)\n"
                             "End!");
    free(out);

    /* At the text's end, without a final newline. */
    assert_int_equal(
        proto_merge3("x TD1", 5, "x TD2", 5, "x TD3", 5, "bob (seq 3)", &out, &len, &conflicts), 0);
    assert_int_equal(conflicts, 1);
    assert_string_equal(out, "<<<<<<< yours\nx TD2\n=======\nx TD3\n>>>>>>> bob (seq 3)");
    free(out);

    /* Two conflicts on two lines, a clean change between them. */
    assert_int_equal(proto_merge3("a 1\nb\nc 1\n", 10, "a 2\nb\nc 2\n", 10, "a 3\nB\nc 3\n", 10,
                                  "x", &out, &len, &conflicts),
                     0);
    assert_int_equal(conflicts, 2);
    assert_string_equal(out, "<<<<<<< yours\na 2\n=======\na 3\n>>>>>>> x\nB\n"
                             "<<<<<<< yours\nc 2\n=======\nc 3\n>>>>>>> x\n");
    free(out);
}

static void test_markers(void **state)
{
    (void)state;
    const char *yes[] = {"<<<<<<< yours\n", "a\n=======\nb", "x\n>>>>>>> bob (seq 1)",
                         "=======", "a\r\n=======\r\n"};
    const char *no[] = {"", "a <<<<<<< b", "========\n", "<<<<<<\n", "== =====\n", "x\n =======\n"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        assert_true(proto_merge_has_markers(yes[i], strlen(yes[i])));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        assert_false(proto_merge_has_markers(no[i], strlen(no[i])));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),       cmocka_unit_test(test_words_large),
        cmocka_unit_test(test_merge_table), cmocka_unit_test(test_merge_markers),
        cmocka_unit_test(test_markers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
