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
        size_t w = proto_utf8_count(s, n);
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

    /* narrow: the widest column shrinks with an ellipsis; nothing passes the width */
    out = print_table(t, 40);
    assert_true(max_line_width(out) <= 40);
    assert_non_null(strstr(out, "\xe2\x80\xa6"));
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
        cmocka_unit_test(test_table),      cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_durations),  cmocka_unit_test(test_json_from_mp),
        cmocka_unit_test(test_args_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
