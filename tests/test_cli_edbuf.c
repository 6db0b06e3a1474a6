/* test_cli_edbuf.c - the model of `confer write`: edits at a cursor in multi-byte text, the
 * ops they produce, soft wrap with double-width characters, word motion, undo and redo. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "cli_edbuf.h"
#include "proto_diff.h"
#include "proto_err.h"
#include "proto_ot.h"

/* A mirror of the text, changed only by the ops the buffer hands out (the replica). */
struct mirror {
    char *text;
    size_t len;
};

static void mirror_apply(struct mirror *m, const struct proto_op *op)
{
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(proto_op_apply(m->text, m->len, op, 0, &out, &out_len), 0);
    free(m->text);
    m->text = out;
    m->len = out_len;
}

static void assert_same(const struct cli_edbuf *b, const struct mirror *m)
{
    assert_int_equal(b->len, m->len);
    assert_memory_equal(b->text, m->text, m->len);
    assert_string_equal(b->text, m->text);
}

static void test_insert_delete_multibyte(void **state)
{
    (void)state;
    const char *start = "héllo 世界";
    struct cli_edbuf b;
    struct mirror m = {strdup(start), strlen(start)};
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(cli_edbuf_init(&b, start, strlen(start)), 0);
    assert_int_equal(b.ncp, 8);

    cli_edbuf_set_cursor(&b, 7); /* between 世 and 界 */
    assert_int_equal(cli_edbuf_insert(&b, "の", strlen("の"), &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "héllo 世の界");
    assert_int_equal(b.cur, 8);
    assert_same(&b, &m);

    cli_edbuf_set_cursor(&b, 2); /* after é */
    assert_int_equal(cli_edbuf_backspace(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "hllo 世の界");
    assert_int_equal(b.cur, 1);
    assert_same(&b, &m);

    assert_int_equal(cli_edbuf_delete(&b, &op), 0); /* the first l */
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "hlo 世の界");
    assert_same(&b, &m);

    cli_edbuf_set_cursor(&b, 100);
    assert_int_equal(b.cur, b.ncp);
    assert_int_equal(cli_edbuf_delete(&b, &op), 0); /* nothing after the end */
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(cli_edbuf_insert(&b, "\n😀", strlen("\n😀"), &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "hlo 世の界\n😀");
    assert_int_equal(b.ncp, 9);
    assert_same(&b, &m);

    cli_edbuf_set_cursor(&b, 0);
    assert_int_equal(cli_edbuf_backspace(&b, &op), 0); /* nothing before the start */
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(cli_edbuf_insert(&b, "\xff", 1, &op), PROTO_EINVAL);
    assert_same(&b, &m);

    proto_op_free(&op);
    free(m.text);
    cli_edbuf_free(&b);
}

static void test_op_shape(void **state)
{
    (void)state;
    struct cli_edbuf b;
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(cli_edbuf_init(&b, "ab€d", strlen("ab€d")), 0);
    cli_edbuf_set_cursor(&b, 2);
    assert_int_equal(cli_edbuf_insert(&b, "X", 1, &op), 0);
    /* [2, "X"] with the rest (€d) as its tail: it fits the text before exactly. */
    assert_int_equal(op.len, 2);
    assert_int_equal(op.comps[0].kind, PROTO_OP_SKIP);
    assert_int_equal(op.comps[0].n, 2);
    assert_int_equal(op.comps[1].kind, PROTO_OP_INSERT);
    assert_string_equal(op.comps[1].s, "X");
    assert_int_equal(op.tail, 2);
    assert_int_equal(proto_op_check(&op, 4), 0);
    assert_int_equal(cli_edbuf_delete(&b, &op), 0); /* € */
    assert_int_equal(op.len, 2);
    assert_int_equal(op.comps[1].kind, PROTO_OP_DELETE);
    assert_int_equal(op.comps[1].n, 1);
    assert_int_equal(op.tail, 1);
    proto_op_free(&op);
    cli_edbuf_free(&b);
}

/* The rows of b at width as "text|text|..." for comparison. */
static char *rows_of(const struct cli_edbuf *b, int width, struct cli_edbuf_layout *lay)
{
    assert_int_equal(cli_edbuf_layout(b, width, lay), 0);
    char *s = calloc(1, b->len + 2 * lay->n + 1);
    for (size_t i = 0; i < lay->n; i++) {
        const struct cli_edbuf_row *r = &lay->rows[i];
        assert_true(r->width <= width);
        if (i) {
            strcat(s, "|");
        }
        strncat(s, b->text + r->bstart, r->bend - r->bstart);
    }
    return s;
}

static void test_wrap_double_width(void **state)
{
    (void)state;
    struct cli_edbuf b;
    struct cli_edbuf_layout lay = {0};
    assert_int_equal(cli_edbuf_cpwidth('a'), 1);
    assert_int_equal(cli_edbuf_cpwidth(0x4E16), 2);  /* 世 */
    assert_int_equal(cli_edbuf_cpwidth(0xFF21), 2);  /* Ａ fullwidth */
    assert_int_equal(cli_edbuf_cpwidth(0x1F600), 2); /* 😀 */
    assert_int_equal(cli_edbuf_cpwidth(0x0301), 0);  /* combining acute */
    assert_int_equal(cli_edbuf_cpwidth(0x00E9), 1);  /* é */

    /* Words move to the next row whole; the space that breaks stays at the row's end. */
    const char *t1 = "the quick brown fox";
    assert_int_equal(cli_edbuf_init(&b, t1, strlen(t1)), 0);
    char *s = rows_of(&b, 10, &lay);
    assert_string_equal(s, "the quick |brown fox");
    assert_int_equal(lay.rows[0].width, 10);
    assert_false(lay.rows[0].last);
    assert_true(lay.rows[1].last);
    free(s);
    cli_edbuf_free(&b);

    /* Six ideographs (12 columns) at width 5: two per row, never one split over a row. */
    const char *t2 = "世界世界世界";
    assert_int_equal(cli_edbuf_init(&b, t2, strlen(t2)), 0);
    s = rows_of(&b, 5, &lay);
    assert_string_equal(s, "世界|世界|世界");
    assert_int_equal(lay.rows[0].width, 4);
    free(s);
    size_t row = 0;
    int col = 0;
    cli_edbuf_locate(&b, &lay, 3, &row, &col);
    assert_int_equal(row, 1);
    assert_int_equal(col, 2);
    cli_edbuf_locate(&b, &lay, 6, &row, &col); /* the end */
    assert_int_equal(row, 2);
    assert_int_equal(col, 4);
    cli_edbuf_free(&b);

    /* Mixed: "ab世cd" at width 3 is "ab" (世 would not fit), "世c", "d". */
    const char *t3 = "ab世cd";
    assert_int_equal(cli_edbuf_init(&b, t3, strlen(t3)), 0);
    s = rows_of(&b, 3, &lay);
    assert_string_equal(s, "ab|世c|d");
    free(s);
    cli_edbuf_free(&b);

    /* Paragraphs: each newline starts a row; empty paragraphs have a row. */
    const char *t4 = "one\n\ntwo words\n";
    assert_int_equal(cli_edbuf_init(&b, t4, strlen(t4)), 0);
    s = rows_of(&b, 5, &lay);
    assert_string_equal(s, "one||two |words|");
    assert_int_equal(lay.n, 5);
    assert_true(lay.rows[1].last);
    assert_int_equal(lay.rows[1].start, 4);
    assert_int_equal(lay.rows[1].end, 4);
    free(s);
    cli_edbuf_locate(&b, &lay, 3, &row, &col); /* end of "one" */
    assert_int_equal(row, 0);
    assert_int_equal(col, 3);
    cli_edbuf_locate(&b, &lay, 9, &row, &col); /* start of "words" */
    assert_int_equal(row, 3);
    assert_int_equal(col, 0);
    cli_edbuf_free(&b);

    /* Combining marks take no column. */
    const char *t5 = "e\xcc\x81"
                     "e\xcc\x81"
                     "e\xcc\x81";
    assert_int_equal(cli_edbuf_init(&b, t5, strlen(t5)), 0);
    s = rows_of(&b, 3, &lay);
    assert_string_equal(s, t5);
    assert_int_equal(lay.rows[0].width, 3);
    free(s);
    cli_edbuf_free(&b);

    const char *t6 = "";
    assert_int_equal(cli_edbuf_init(&b, t6, 0), 0);
    s = rows_of(&b, 8, &lay);
    assert_int_equal(lay.n, 1);
    free(s);
    cli_edbuf_free(&b);
    cli_edbuf_layout_free(&lay);
}

static void test_vertical_home_end(void **state)
{
    (void)state;
    struct cli_edbuf b;
    struct cli_edbuf_layout lay = {0};
    const char *t = "abcdef\n世界x\nxy";
    assert_int_equal(cli_edbuf_init(&b, t, strlen(t)), 0);
    assert_int_equal(cli_edbuf_layout(&b, 20, &lay), 0);
    cli_edbuf_set_cursor(&b, 3); /* column 3 of row 0 */
    cli_edbuf_vertical(&b, &lay, 1);
    assert_int_equal(b.cur, 8); /* after 世 (column 2): 界 would pass column 3 */
    cli_edbuf_vertical(&b, &lay, 1);
    assert_int_equal(b.cur, 13); /* end of "xy" (column 2) */
    cli_edbuf_vertical(&b, &lay, -2);
    assert_int_equal(b.cur, 3); /* the goal column held */
    cli_edbuf_vertical(&b, &lay, -30);
    assert_int_equal(b.cur, 3);
    cli_edbuf_vertical(&b, &lay, 30);
    assert_int_equal(b.cur, 13);
    cli_edbuf_set_cursor(&b, 8);
    cli_edbuf_home(&b, &lay);
    assert_int_equal(b.cur, 7);
    cli_edbuf_end(&b, &lay);
    assert_int_equal(b.cur, 10);
    cli_edbuf_free(&b);

    /* On a wrapped row, End stops before the breaking space (still that row). */
    const char *w = "aaa bbb";
    assert_int_equal(cli_edbuf_init(&b, w, strlen(w)), 0);
    assert_int_equal(cli_edbuf_layout(&b, 5, &lay), 0);
    assert_int_equal(lay.n, 2);
    cli_edbuf_set_cursor(&b, 1);
    cli_edbuf_end(&b, &lay);
    assert_int_equal(b.cur, 3);
    size_t row = 9;
    int col = 0;
    cli_edbuf_locate(&b, &lay, b.cur, &row, &col);
    assert_int_equal(row, 0);
    cli_edbuf_free(&b);
    cli_edbuf_layout_free(&lay);
}

static void test_word_motion(void **state)
{
    (void)state;
    struct cli_edbuf b;
    const char *t = "Draft  new-text, 会議の報告 end";
    assert_int_equal(cli_edbuf_init(&b, t, strlen(t)), 0);
    size_t stops[] = {5, 10, 15, 22, 26};
    for (size_t i = 0; i < 5; i++) {
        cli_edbuf_word_right(&b);
        assert_int_equal(b.cur, stops[i]);
    }
    cli_edbuf_word_right(&b);
    assert_int_equal(b.cur, b.ncp);
    size_t back[] = {23, 17, 11, 7, 0, 0};
    for (size_t i = 0; i < 6; i++) {
        cli_edbuf_word_left(&b);
        assert_int_equal(b.cur, back[i]);
    }
    cli_edbuf_free(&b);
}

static void test_undo_redo(void **state)
{
    (void)state;
    struct cli_edbuf b;
    struct mirror m = {strdup("start"), 5};
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(cli_edbuf_init(&b, "start", 5), 0);
    cli_edbuf_set_cursor(&b, 5);
    /* " two words" typed one character at a time: a step per word (" ", "two ", "wörds"). */
    const char *typed[] = {" ", "t", "w", "o", " ", "w", "ö", "r", "d", "s"};
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(cli_edbuf_insert(&b, typed[i], strlen(typed[i]), &op), 0);
        mirror_apply(&m, &op);
    }
    assert_string_equal(b.text, "start two wörds");
    assert_int_equal(cli_edbuf_backspace(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_int_equal(cli_edbuf_backspace(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start two wör");

    assert_int_equal(cli_edbuf_undo(&b, &op), 0); /* the two backspaces */
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start two wörds");
    assert_int_equal(b.cur, 15);
    assert_same(&b, &m);
    assert_int_equal(cli_edbuf_undo(&b, &op), 0); /* "wörds" */
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start two ");
    assert_int_equal(cli_edbuf_undo(&b, &op), 0); /* "two " */
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start ");
    assert_int_equal(cli_edbuf_undo(&b, &op), 0); /* " " */
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start");
    assert_int_equal(b.cur, 5);
    assert_int_equal(cli_edbuf_undo(&b, &op), 1); /* nothing more */
    assert_same(&b, &m);

    assert_int_equal(cli_edbuf_redo(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start ");
    assert_int_equal(cli_edbuf_redo(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start two ");
    assert_int_equal(cli_edbuf_redo(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "start two wörds");
    assert_int_equal(b.cur, 15);
    assert_same(&b, &m);

    /* A new edit drops what could be redone. */
    cli_edbuf_set_cursor(&b, 0);
    assert_int_equal(cli_edbuf_insert(&b, "¡", strlen("¡"), &op), 0);
    mirror_apply(&m, &op);
    assert_int_equal(cli_edbuf_redo(&b, &op), 1);
    /* A motion ends a step: two inserts at one place, two steps. */
    cli_edbuf_set_cursor(&b, 1);
    assert_int_equal(cli_edbuf_insert(&b, "!", 1, &op), 0);
    mirror_apply(&m, &op);
    assert_int_equal(cli_edbuf_undo(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "¡start two wörds");
    assert_same(&b, &m);

    /* Forward deletes join, and undo puts the text back with the cursor where it was. */
    cli_edbuf_set_cursor(&b, 1);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(cli_edbuf_delete(&b, &op), 0);
        mirror_apply(&m, &op);
    }
    assert_string_equal(b.text, "¡two wörds");
    assert_int_equal(cli_edbuf_undo(&b, &op), 0);
    mirror_apply(&m, &op);
    assert_string_equal(b.text, "¡start two wörds");
    assert_int_equal(b.cur, 1);
    assert_same(&b, &m);

    proto_op_free(&op);
    free(m.text);
    cli_edbuf_free(&b);
}

/* Another person's edit: the cursor stays on its character, undo still undoes ours. */
static void test_remote(void **state)
{
    (void)state;
    struct cli_edbuf b;
    struct proto_op op, r;
    proto_op_init(&op);
    proto_op_init(&r);
    assert_int_equal(cli_edbuf_init(&b, "one three", 9), 0);
    cli_edbuf_set_cursor(&b, 9);
    assert_int_equal(cli_edbuf_insert(&b, " four", 5, &op), 0);
    assert_string_equal(b.text, "one three four");
    /* Someone inserts "two " before "three". */
    const char *after = "one two three four";
    assert_int_equal(proto_diff(b.text, b.len, after, strlen(after), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, after, strlen(after), &r), 0);
    assert_int_equal(b.cur, 18);
    assert_string_equal(b.text, after);
    assert_int_equal(cli_edbuf_undo(&b, &op), 0);
    assert_string_equal(b.text, "one two three");
    assert_int_equal(b.cur, 13);
    assert_int_equal(cli_edbuf_redo(&b, &op), 0);
    assert_string_equal(b.text, after);

    /* Text inserted just before our step's words: undo still finds them. */
    const char *before = "one two threeZ four";
    assert_int_equal(proto_diff(b.text, b.len, before, strlen(before), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, before, strlen(before), &r), 0);
    assert_int_equal(cli_edbuf_undo(&b, &op), 0);
    assert_string_equal(b.text, "one two threeZ");
    assert_int_equal(cli_edbuf_redo(&b, &op), 0);
    assert_string_equal(b.text, before);
    const char *unz = "one two three four";
    assert_int_equal(proto_diff(b.text, b.len, unz, strlen(unz), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, unz, strlen(unz), &r), 0);

    /* Text inserted at the cursor lands after it: the next key goes before their words. */
    cli_edbuf_set_cursor(&b, 4);
    const char *at = "one XYtwo three four";
    assert_int_equal(proto_diff(b.text, b.len, at, strlen(at), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, at, strlen(at), &r), 0);
    assert_int_equal(b.cur, 4);
    const char *back = "one two three four";
    assert_int_equal(proto_diff(b.text, b.len, back, strlen(back), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, back, strlen(back), &r), 0);

    /* Someone changes the words of our step: undo refuses rather than remove theirs. */
    const char *theirs = "one two three fur";
    assert_int_equal(proto_diff(b.text, b.len, theirs, strlen(theirs), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, theirs, strlen(theirs), &r), 0);
    assert_int_equal(cli_edbuf_undo(&b, &op), 2);
    assert_string_equal(b.text, theirs);
    assert_true(proto_op_is_noop(&op));
    assert_int_equal(cli_edbuf_undo(&b, &op), 1);

    /* A cursor inside deleted text goes to where the deletion was. */
    cli_edbuf_set_cursor(&b, 10);
    const char *cut = "one fur";
    assert_int_equal(proto_diff(b.text, b.len, cut, strlen(cut), &r), 0);
    assert_int_equal(cli_edbuf_remote(&b, cut, strlen(cut), &r), 0);
    assert_int_equal(b.cur, 4);
    proto_op_free(&op);
    proto_op_free(&r);
    cli_edbuf_free(&b);
}

/* A long deterministic run of mixed edits: the ops replayed give the same text. */
static void test_ops_replay(void **state)
{
    (void)state;
    struct cli_edbuf b;
    struct mirror m = {strdup(""), 0};
    struct proto_op op;
    proto_op_init(&op);
    assert_int_equal(cli_edbuf_init(&b, "", 0), 0);
    const char *pieces[] = {"a", "é", "世", " ", "\n", "😀", "xy"};
    uint32_t x = 12345;
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t r = (x >> 16) % 10;
        int rc = 0;
        if (r < 5) {
            const char *p = pieces[(x >> 8) % 7];
            rc = cli_edbuf_insert(&b, p, strlen(p), &op);
        } else if (r == 5) {
            rc = cli_edbuf_backspace(&b, &op);
        } else if (r == 6) {
            rc = cli_edbuf_delete(&b, &op);
        } else if (r == 7) {
            rc = cli_edbuf_undo(&b, &op);
        } else if (r == 8) {
            rc = cli_edbuf_redo(&b, &op);
        } else {
            cli_edbuf_set_cursor(&b, b.ncp ? (x >> 4) % (b.ncp + 1) : 0);
            continue;
        }
        assert_true(rc == 0 || rc == 1);
        if (rc == 0) {
            mirror_apply(&m, &op);
        }
        assert_same(&b, &m);
        assert_true(b.cur <= b.ncp);
    }
    proto_op_free(&op);
    free(m.text);
    cli_edbuf_free(&b);
}

/* Find goes forward from a position, by code points, and wraps to the text's start. */
static void test_find(void **state)
{
    (void)state;
    struct cli_edbuf b;
    const char *t = "会議 alpha beta alpha é-alpha";
    assert_int_equal(cli_edbuf_init(&b, t, strlen(t)), 0);
    bool wrapped = true;
    assert_int_equal(cli_edbuf_find(&b, "alpha", 5, 0, &wrapped), 3);
    assert_false(wrapped);
    assert_int_equal(cli_edbuf_find(&b, "alpha", 5, 4, &wrapped), 14);
    assert_int_equal(cli_edbuf_find(&b, "alpha", 5, 15, &wrapped), 22);
    assert_false(wrapped);
    assert_int_equal(cli_edbuf_find(&b, "alpha", 5, 23, &wrapped), 3);
    assert_true(wrapped);
    assert_int_equal(cli_edbuf_find(&b, "議", strlen("議"), 0, NULL), 1);
    assert_int_equal(cli_edbuf_find(&b, "é-", strlen("é-"), 0, NULL), 20);
    assert_int_equal(cli_edbuf_find(&b, "gamma", 5, 0, &wrapped), SIZE_MAX);
    assert_int_equal(cli_edbuf_find(&b, "", 0, 0, NULL), SIZE_MAX);
    assert_int_equal(cli_edbuf_find(&b, "a", 1, b.ncp, &wrapped), 3);
    assert_true(wrapped);
    cli_edbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_delete_multibyte),
        cmocka_unit_test(test_op_shape),
        cmocka_unit_test(test_wrap_double_width),
        cmocka_unit_test(test_vertical_home_end),
        cmocka_unit_test(test_word_motion),
        cmocka_unit_test(test_undo_redo),
        cmocka_unit_test(test_remote),
        cmocka_unit_test(test_ops_replay),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
