/* test_cli_render.c - tables, safe strings, JSON conversion and option parsing of the CLI. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <msgpack.h>

#include "cli_cmd.h"
#include "cli_pack.h"
#include "cli_render.h"
#include "proto_util.h"

static size_t max_line_width(const char *s)
{
    size_t best = 0;
    while (*s != '\0') {
        const char *nl = strchr(s, '\n');
        size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
        size_t w = cli_cells(s, n);
        best = w > best ? w : best;
        s += n + (nl != NULL ? 1 : 0);
    }
    return best;
}

static char *print_table(const struct cli_table *t, int width)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(cli_table_print(t, f, width), 0);
    fclose(f);
    return buf;
}

static void test_table(void **state)
{
    (void)state;
    const char *headers[] = {"ID", "TITLE", "ROLE"};
    struct cli_table *t = cli_table_new(3, headers);
    assert_non_null(t);
    const char *r1[] = {"rg-iem", "Regional group meeting on IoT and smart cities", "rapporteur"};
    const char *r2[] = {"t\xc3\xa9st", "short", NULL};
    const char *r3[] = {"evil", "\x1b]0;owned\x07title\nnext", "viewer"};
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    assert_int_equal(cli_table_add(t, r3), 0);
    assert_int_equal(cli_table_rows(t), 3);

    /* wide enough: everything as it is, columns aligned */
    char *out = print_table(t, 200);
    assert_non_null(strstr(out, "Regional group meeting on IoT and smart cities"));
    assert_non_null(strstr(out, "ID      TITLE"));
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\x07'));
    assert_non_null(strstr(out, "?]0;owned?title next"));
    assert_int_equal(max_line_width(out),
                     strlen("rg-iem  ") + strlen(r1[1]) + 2 + strlen("rapporteur"));
    free(out);

    /* narrow: the widest column shrinks and its text wraps; nothing passes the width */
    out = print_table(t, 40);
    assert_true(max_line_width(out) <= 40);
    assert_null(strstr(out, "\xe2\x80\xa6"));
    assert_non_null(strstr(out, "rapporteur"));
    assert_non_null(strstr(out, "t\xc3\xa9st"));
    free(out);

    /* absurdly narrow: columns stop at 3 characters */
    out = print_table(t, 5);
    assert_non_null(out);
    assert_true(max_line_width(out) <= 3 * 3 + 2 * 2);
    free(out);
    cli_table_free(t);
    cli_table_free(NULL);
    assert_null(cli_table_new(0, NULL));
}

/* The lines of s (a table's output) as an array of at most cap strings, each malloc'd. */
static size_t split_lines(const char *s, char **lines, size_t cap)
{
    size_t n = 0;
    while (*s != '\0' && n < cap) {
        const char *nl = strchr(s, '\n');
        size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);
        lines[n] = strndup(s, len);
        assert_non_null(lines[n]);
        n++;
        s += len + (nl != NULL ? 1 : 0);
    }
    return n;
}

static void test_table_wrap(void **state)
{
    (void)state;
    const char *headers[] = {"REF", "STATUS", "TEXT"};
    const char *text = "To liaise with ITU-T SG20 on the draft Recommendation Y.IEM-arch and "
                       "report back at the next interim meeting";
    const char *r1[] = {"RG-IEM-1", "open", text};
    const char *r2[] = {"RG-IEM-2", "done", "short"};
    struct cli_table *t = cli_table_new(3, headers);
    assert_non_null(t);
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);

    char *out = print_table(t, 40);
    char *lines[32];
    size_t n = split_lines(out, lines, 32);
    /* the header, the long row on several lines, the short row */
    assert_true(n >= 5);
    assert_true(max_line_width(out) <= 40);
    assert_null(strstr(out, "\xe2\x80\xa6"));
    assert_string_equal(lines[0], "REF       STATUS  TEXT");
    assert_int_equal(strncmp(lines[1], "RG-IEM-1  open    To liaise", 27), 0);
    /* continuation lines: the other columns blank, the text under its column */
    size_t textcol = strlen("RG-IEM-1  open    ");
    char joined[512] = "";
    for (size_t i = 1; i + 1 < n; i++) {
        assert_true(strlen(lines[i]) > textcol);
        if (i > 1) {
            for (size_t c = 0; c < textcol; c++) {
                assert_int_equal(lines[i][c], ' ');
            }
            assert_true(lines[i][textcol] != ' ');
            strcat(joined, " ");
        }
        strcat(joined, lines[i] + textcol);
        /* words are not cut: every line ends at a word's end */
        size_t len = strlen(lines[i]);
        assert_true(lines[i][len - 1] != ' ');
    }
    assert_string_equal(joined, text);
    assert_string_equal(lines[n - 1], "RG-IEM-2  done    short");
    for (size_t i = 0; i < n; i++) {
        free(lines[i]);
    }
    free(out);

    /* a word longer than its column is broken inside it, nothing is lost */
    const char *h2[] = {"A", "B"};
    const char *r3[] = {"x", "abcdefghijklmnopqrstuvwxyz"};
    struct cli_table *t2 = cli_table_new(2, h2);
    assert_non_null(t2);
    assert_int_equal(cli_table_add(t2, r3), 0);
    out = print_table(t2, 13);
    assert_string_equal(out, "A  B\nx  abcdefghij\n   klmnopqrst\n   uvwxyz\n");
    free(out);
    cli_table_free(t2);
    cli_table_free(t);
}

static void test_cells(void **state)
{
    (void)state;
    /* ASCII, Latin with a combining accent, CJK, emoji, emoji with a variation selector */
    assert_int_equal(cli_cells("abc", 3), 3);
    assert_int_equal(cli_cells("e\xcc\x81", 3), 1);                /* e + U+0301 */
    assert_int_equal(cli_cells("\xe4\xbc\x9a\xe8\xae\xae", 6), 4); /* 会议 */
    assert_int_equal(cli_cells("\xf0\x9f\x8e\x89", 4), 2);         /* U+1F389 */
    assert_int_equal(cli_cells("\xe2\x9c\x93", 3), 1);             /* U+2713 check mark */
    assert_int_equal(cli_cells("\xea\xb0\x80", 3), 2);             /* Hangul */
    assert_int_equal(cli_cells("\xef\xbc\xa1", 3), 2);             /* fullwidth A */
    assert_int_equal(cli_cells("\xff", 1), 1);                     /* invalid: '?' */

    /* cli_fit counts cells: 5 cells of CJK do not fit in 4 */
    char out[64];
    cli_fit("\xe4\xbc\x9a\xe8\xae\xae\xe5\xae\xa4", 4, out, sizeof(out)); /* 会议室 */
    assert_string_equal(out, "\xe4\xbc\x9a\xe2\x80\xa6");
    assert_true(cli_cells(out, strlen(out)) <= 4);
    cli_fit("\xe4\xbc\x9a\xe8\xae\xae", 4, out, sizeof(out));
    assert_string_equal(out, "\xe4\xbc\x9a\xe8\xae\xae");

    /* columns align on cells: CJK and emoji rows line up with ASCII ones */
    const char *headers[] = {"NAME", "NOTE"};
    const char *r1[] = {"\xe5\xbc\xa0\xe4\xbc\x9f", "chair"}; /* 张伟: 4 cells */
    const char *r2[] = {"\xf0\x9f\x8e\x89 party", "emoji"};   /* 8 cells */
    const char *r3[] = {"ascii", "plain"};
    struct cli_table *t = cli_table_new(2, headers);
    assert_non_null(t);
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    assert_int_equal(cli_table_add(t, r3), 0);
    char *s = print_table(t, 80);
    assert_string_equal(s, "NAME      NOTE\n"
                           "\xe5\xbc\xa0\xe4\xbc\x9f      chair\n"
                           "\xf0\x9f\x8e\x89 party  emoji\n"
                           "ascii     plain\n");
    free(s);
    /* wrapping CJK (no blanks) by cells: 3 cells hold one wide character */
    const char *h2[] = {"X", "CJK"};
    const char *r4[] = {"a", "\xe4\xbc\x9a\xe8\xae\xae\xe5\xae\xa4"};
    struct cli_table *t2 = cli_table_new(2, h2);
    assert_non_null(t2);
    assert_int_equal(cli_table_add(t2, r4), 0);
    s = print_table(t2, 7);
    assert_string_equal(s, "X  CJK\n"
                           "a  \xe4\xbc\x9a\xe8\xae\xae\n"
                           "   \xe5\xae\xa4\n");
    assert_true(max_line_width(s) <= 7);
    free(s);
    cli_table_free(t2);
    cli_table_free(t);
}

static void test_table_piped(void **state)
{
    (void)state;
    const char *headers[] = {"REF", "OWNER", "TEXT"};
    char longtext[600];
    memset(longtext, 'w', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    for (size_t i = 7; i < sizeof(longtext) - 1; i += 8) {
        longtext[i] = ' ';
    }
    const char *r1[] = {"RG-IEM-1", "Jane\tDoe", longtext};
    const char *r2[] = {"RG-IEM-2", NULL, "x"};
    struct cli_table *t = cli_table_new(3, headers);
    assert_non_null(t);
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    /* not a terminal (width 0): full text, tab-separated, a tab inside a cell a blank */
    char *out = print_table(t, 0);
    char expect[1024];
    snprintf(expect, sizeof(expect), "REF\tOWNER\tTEXT\nRG-IEM-1\tJane Doe\t%s\nRG-IEM-2\t\tx\n",
             longtext);
    assert_string_equal(out, expect);
    free(out);
    cli_table_free(t);

    /* with no $COLUMNS a descriptor that is not a terminal has no width */
    unsetenv("COLUMNS");
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(cli_term_width(fileno(f)), 0);
    setenv("COLUMNS", "60", 1);
    assert_int_equal(cli_term_width(fileno(f)), 60);
    setenv("COLUMNS", "6x", 1);
    assert_int_equal(cli_term_width(fileno(f)), 0);
    unsetenv("COLUMNS");
    fclose(f);
    assert_true(cli_width_or_all(0) > 100000);
    assert_int_equal(cli_width_or_all(72), 72);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[64];
    cli_sanitize("a\tb\nc\x1b[2Jd\x7f", 11, out, sizeof(out));
    assert_string_equal(out, "a b c?[2Jd?");
    cli_sanitize("\xc3\xa9\xff\xc2\x9b!", 6, out, sizeof(out));
    assert_string_equal(out, "\xc3\xa9?"
                             "?!");
    /* cut at a character boundary */
    assert_int_equal(cli_sanitize("\xc3\xa9\xc3\xa9", 4, out, 4), 2);
    assert_string_equal(out, "\xc3\xa9");
    char *d = cli_sanitize_dup("x\0y", 3);
    assert_string_equal(d, "x?y");
    free(d);
}

static void test_durations(void **state)
{
    (void)state;
    char out[64];
    cli_render_duration(850, out, sizeof(out));
    assert_string_equal(out, "850 ms");
    cli_render_duration(42000, out, sizeof(out));
    assert_string_equal(out, "42 s");
    cli_render_duration(185000, out, sizeof(out));
    assert_string_equal(out, "3 min 5 s");
    cli_render_duration(2 * 3600000 + 600000, out, sizeof(out));
    assert_string_equal(out, "2 h 10 min");
    cli_render_duration(-5, out, sizeof(out));
    assert_string_equal(out, "0 ms");
    cli_render_time(0, out, sizeof(out));
    assert_int_equal(strlen(out), strlen("1970-01-01 00:00:00"));
}

static void test_json_from_mp(void **state)
{
    (void)state;
    struct proto_buf b;
    msgpack_unpacked up;
    size_t off = 0;

    proto_buf_init(&b);
    assert_int_equal(cli_packf(&b, "{s: s, s: i, s: u, s: b, s: n, s: [s], s: B, s: S}", "str",
                               "v\xc3\xa9", "neg", -3, "big", (uint64_t)UINT64_MAX, "t", 1, "nil",
                               "arr", "x", "bin", "\x00\x01", (size_t)2, "bad", "a\xff", (size_t)2),
                     0);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    json_t *j = cli_json_from_mp(&up.data);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "str")), "v\xc3\xa9");
    assert_int_equal(json_integer_value(json_object_get(j, "neg")), -3);
    assert_true(json_is_real(json_object_get(j, "big")));
    assert_true(json_is_true(json_object_get(j, "t")));
    assert_true(json_is_null(json_object_get(j, "nil")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "arr"), 0)), "x");
    assert_string_equal(json_string_value(json_object_get(j, "bin")), "AAE=");
    assert_string_equal(json_string_value(json_object_get(j, "bad")), "a\xef\xbf\xbd");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(cli_json_print(f, j), 0);
    fclose(f);
    assert_int_equal(buf[len - 1], '\n');
    json_error_t err;
    json_t *back = json_loads(buf, 0, &err);
    assert_non_null(back);
    assert_true(json_equal(back, j));
    json_decref(back);
    free(buf);
    json_decref(j);
    msgpack_unpacked_destroy(&up);
    proto_buf_free(&b, 0);
}

static struct cli_ctx make_ctx(char **out, size_t *outlen, char **err, size_t *errlen)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.prog = "confer";
    ctx.out = open_memstream(out, outlen);
    ctx.err = open_memstream(err, errlen);
    ctx.width = 80;
    return ctx;
}

static void test_args_parse(void **state)
{
    (void)state;
    bool flag = false;
    const char *val = NULL;
    const struct cli_opt opts[] = {
        {"flag", 'f', CLI_OPT_FLAG, NULL, "a flag", &flag, NULL},
        {"value", 'v', CLI_OPT_STR, "X", "a value", NULL, &val},
    };
    const struct cli_usage u = {"demo", "ARG [options]", "About.", opts, 2, true, 1, 2, false};
    char *out = NULL;
    char *err = NULL;
    size_t outlen = 0;
    size_t errlen = 0;
    struct cli_args a;
    int code = -1;

    struct cli_ctx ctx = make_ctx(&out, &outlen, &err, &errlen);
    char *argv1[] = {"demo", "one", "--flag", "--value=x=y", "two", NULL};
    assert_true(cli_args_parse(&ctx, &u, 5, argv1, &a, &code));
    assert_true(flag);
    assert_string_equal(val, "x=y");
    assert_int_equal(a.n, 2);
    assert_string_equal(a.v[0], "one");
    assert_string_equal(a.v[1], "two");

    flag = false;
    char *argv2[] = {"demo", "-v", "z", "--json", "--", "-notanoption", NULL};
    assert_true(cli_args_parse(&ctx, &u, 6, argv2, &a, &code));
    assert_string_equal(val, "z");
    assert_true(ctx.json);
    assert_false(flag);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.v[0], "-notanoption");

    char *bad1[] = {"demo", "x", "--nope", NULL};
    assert_false(cli_args_parse(&ctx, &u, 3, bad1, &a, &code));
    assert_int_equal(code, CLI_EXIT_USAGE);
    char *bad2[] = {"demo", "x", "--value", NULL};
    assert_false(cli_args_parse(&ctx, &u, 3, bad2, &a, &code));
    assert_int_equal(code, CLI_EXIT_USAGE);
    char *bad3[] = {"demo", "--flag=1", "x", NULL};
    assert_false(cli_args_parse(&ctx, &u, 3, bad3, &a, &code));
    assert_int_equal(code, CLI_EXIT_USAGE);
    char *bad4[] = {"demo", NULL};
    assert_false(cli_args_parse(&ctx, &u, 1, bad4, &a, &code));
    assert_int_equal(code, CLI_EXIT_USAGE);
    char *bad5[] = {"demo", "a", "b", "c", NULL};
    assert_false(cli_args_parse(&ctx, &u, 4, bad5, &a, &code));
    assert_int_equal(code, CLI_EXIT_USAGE);
    char *help[] = {"demo", "--flag", "-h", NULL};
    assert_false(cli_args_parse(&ctx, &u, 3, help, &a, &code));
    assert_int_equal(code, CLI_EXIT_OK);

    fclose(ctx.out);
    fclose(ctx.err);
    assert_non_null(strstr(out, "usage: confer demo ARG [options]"));
    assert_non_null(strstr(out, "-v, --value X"));
    assert_non_null(strstr(out, "--json"));
    assert_non_null(strstr(err, "unknown option --nope"));
    assert_non_null(strstr(err, "option --value needs a value"));
    assert_non_null(strstr(err, "option --flag takes no value"));
    assert_non_null(strstr(err, "unexpected argument 'c'"));
    assert_non_null(strstr(err, "Try 'confer demo --help'."));
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),        cmocka_unit_test(test_table_wrap),
        cmocka_unit_test(test_cells),        cmocka_unit_test(test_table_piped),
        cmocka_unit_test(test_sanitize),     cmocka_unit_test(test_durations),
        cmocka_unit_test(test_json_from_mp), cmocka_unit_test(test_args_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
