/* test_cli_record.c - the client's reading of a meeting record: REF[REV] parsing, finding
 * items, actions, docs and others by the names people type, labels, and the order interim
 * meetings are listed in. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include <msgpack.h>

#include "cli_cmd.h"
#include "cli_pack.h"
#include "cli_record.h"
#include "cli_render.h"
#include "proto_util.h"

/* A packed record, unpacked into u. */
struct rec {
    struct proto_buf b;
    msgpack_unpacked u;
};

static const msgpack_object *rec_make(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    int rc = cli_packf(
        &r->b,
        "{s: I, s: {s: s, s: I, s: s, s: s},"
        " s: [{s: I, s: I, s: s, s: s}, {s: I, s: I, s: s, s: s}, {s: I, s: I, s: s, s: s},"
        "     {s: I, s: I, s: s, s: s}],"
        " s: [{s: I, s: I, s: s, s: s, s: I}, {s: I, s: I, s: s, s: s, s: I},"
        "     {s: I, s: I, s: s, s: s, s: n}],"
        " s: [{s: I, s: I, s: s, s: s}, {s: I, s: I, s: s, s: s}],"
        " s: [{s: I, s: I, s: s}],"
        " s: [{s: I, s: I, s: s, s: s}],"
        " s: s,"
        " s: [{s: I, s: I, s: s, s: s, s: s, s: s}, {s: I, s: I, s: s, s: s, s: s, s: s},"
        "     {s: I, s: I, s: s, s: s, s: s, s: s}, {s: I, s: I, s: s, s: s, s: s, s: s}]}",
        "seq", (int64_t)40, "meeting", "id", "rg-iem", "seq", (int64_t)2, "action_prefix", "RG-IEM",
        "tz", "Europe/Zurich",
        /* items, in agenda order */
        "items", "id", (int64_t)1, "seq", (int64_t)3, "number", "3", "title", "Industry engagement",
        "id", (int64_t)2, "seq", (int64_t)4, "number", "4", "title", "Mechanisms", "id", (int64_t)3,
        "seq", (int64_t)5, "number", "4.1", "title", "Incubation", "id", (int64_t)4, "seq",
        (int64_t)6, "number", "10", "title", "Closure",
        /* docs */
        "docs", "id", (int64_t)10, "seq", (int64_t)7, "ref", "TSAG-TD257", "revision", "R1", "item",
        (int64_t)1, "id", (int64_t)11, "seq", (int64_t)8, "ref", "TSAG-TD257", "revision", "",
        "item", (int64_t)1, "id", (int64_t)12, "seq", (int64_t)9, "ref", "TSAG-C032", "revision",
        "", "item",
        /* actions */
        "actions", "id", (int64_t)20, "seq", (int64_t)10, "ref", "RG-IEM-1", "to", "WP2", "id",
        (int64_t)21, "seq", (int64_t)11, "ref", "RG-IEM-12", "to", "WP2",
        /* sessions */
        "sessions", "id", (int64_t)30, "seq", (int64_t)12, "date", "2023-05-31",
        /* people */
        "people", "id", (int64_t)40, "seq", (int64_t)13, "name", "Noah LUO", "role", "associate",
        /* not an array: a record that cannot be read that way */
        "decisions", "none",
        /* interims, not in date order */
        "interims", "id", (int64_t)50, "seq", (int64_t)14, "date", "2023-10-09", "start", "13:00",
        "topic", "Res.68", "deadline", "2023-10-02", "id", (int64_t)51, "seq", (int64_t)15, "date",
        "2023-07-27", "start", "13:00", "topic", "CTO/CxO review", "deadline", "2023-07-20", "id",
        (int64_t)52, "seq", (int64_t)16, "date", "2024-01-30", "start", "13:00", "topic",
        "Industry participation", "deadline", "2024-01-23", "id", (int64_t)53, "seq", (int64_t)17,
        "date", "2023-10-09", "start", "09:00", "topic", "Early call", "deadline", "2023-10-02");
    assert_int_equal(rc, 0);
    msgpack_unpacked_init(&r->u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&r->u, (const char *)r->b.data, r->b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    return &r->u.data;
}

static void rec_free(struct rec *r)
{
    msgpack_unpacked_destroy(&r->u);
    proto_buf_free(&r->b, 0);
}

static int64_t id_of(const msgpack_object *o)
{
    int64_t id = -1;
    assert_non_null(o);
    assert_true(cli_obj_i64(o, "id", &id));
    return id;
}

static void test_docref_parse(void **state)
{
    (void)state;
    char ref[CLI_REF_MAX];
    char rev[CLI_REV_MAX];

    assert_int_equal(cli_docref_parse("TSAG-TD257R1", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "TSAG-TD257");
    assert_string_equal(rev, "R1");
    assert_int_equal(cli_docref_parse("TSAG-C032", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "TSAG-C032");
    assert_string_equal(rev, "");
    assert_int_equal(cli_docref_parse("SG17-TD1234R12", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "SG17-TD1234");
    assert_string_equal(rev, "R12");
    /* an R that does not follow a digit, or with no digits, or too many, is part of the ref */
    assert_int_equal(cli_docref_parse("TSAG-TDR1", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "TSAG-TDR1");
    assert_string_equal(rev, "");
    assert_int_equal(cli_docref_parse("TSAG-TD257R", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "TSAG-TD257R");
    assert_int_equal(cli_docref_parse("TD1R1234", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "TD1R1234");
    assert_string_equal(rev, "");
    /* no ref at all */
    assert_int_equal(cli_docref_parse("", ref, sizeof(ref), rev, sizeof(rev)), PROTO_EINVAL);
    assert_int_equal(cli_docref_parse("R1", ref, sizeof(ref), rev, sizeof(rev)), 0);
    assert_string_equal(ref, "R1");
    /* too long for the buffers */
    assert_int_equal(cli_docref_parse("TSAG-TD257R1", ref, 5, rev, sizeof(rev)), PROTO_ETOOBIG);
}

static void test_id_parse(void **state)
{
    (void)state;
    int64_t id = 0;
    assert_int_equal(cli_id_parse("#12", false, &id), 0);
    assert_int_equal(id, 12);
    assert_int_equal(cli_id_parse("12", false, &id), PROTO_EINVAL);
    assert_int_equal(cli_id_parse("12", true, &id), 0);
    assert_int_equal(id, 12);
    assert_int_equal(cli_id_parse("#", true, &id), PROTO_EINVAL);
    assert_int_equal(cli_id_parse("#1x", true, &id), PROTO_EINVAL);
    assert_int_equal(cli_id_parse("#-1", true, &id), PROTO_EINVAL);
    assert_int_equal(cli_id_parse("4.1", true, &id), PROTO_EINVAL);
}

static void test_number_same(void **state)
{
    (void)state;
    assert_true(cli_number_same("4.1", "4.1"));
    assert_true(cli_number_same("04.1", "4.1"));
    assert_false(cli_number_same("4", "4.1"));
    assert_false(cli_number_same("4.1", "4"));
    assert_false(cli_number_same("abc", "abc")); /* not numbers: never the same */
    assert_false(cli_number_same("", "4"));
}

static void test_find_items(void **state)
{
    (void)state;
    struct rec r;
    const msgpack_object *rec = rec_make(&r);

    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ITEM, "3")), 1);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ITEM, "4")), 2);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ITEM, "4.1")), 3);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ITEM, "04.01")), 3);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ITEM, "10")), 4);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ITEM, "#2")), 2);
    /* a plain number is an item number, never an id */
    assert_null(cli_rec_find(rec, PROTO_T_ITEM, "1"));
    assert_null(cli_rec_find(rec, PROTO_T_ITEM, "4.2"));
    assert_null(cli_rec_find(rec, PROTO_T_ITEM, "#99"));
    assert_null(cli_rec_find(rec, PROTO_T_ITEM, ""));
    assert_null(cli_rec_find(rec, PROTO_T_ITEM, "four"));
    rec_free(&r);
}

static void test_find_others(void **state)
{
    (void)state;
    struct rec r;
    const msgpack_object *rec = rec_make(&r);

    /* docs by REF[REV] */
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_DOC, "TSAG-TD257R1")), 10);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_DOC, "TSAG-TD257")), 11);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_DOC, "tsag-td257r1")), 10);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_DOC, "TSAG-C032")), 12);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_DOC, "#12")), 12);
    assert_null(cli_rec_find(rec, PROTO_T_DOC, "TSAG-TD257R2"));
    assert_null(cli_rec_find(rec, PROTO_T_DOC, "TSAG-C032R1"));

    /* actions by ref, any case, or N for ACTION_PREFIX-N */
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ACTION, "RG-IEM-1")), 20);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ACTION, "rg-iem-12")), 21);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ACTION, "12")), 21);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_ACTION, "#20")), 20);
    assert_null(cli_rec_find(rec, PROTO_T_ACTION, "RG-IEM-2"));
    assert_null(cli_rec_find(rec, PROTO_T_ACTION, "2"));

    /* the rest by #ID or a plain id; people by name too */
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_SESSION, "#30")), 30);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_SESSION, "30")), 30);
    assert_null(cli_rec_find(rec, PROTO_T_SESSION, "31"));
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_INTERIM, "52")), 52);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_PERSON, "noah luo")), 40);
    assert_int_equal(id_of(cli_rec_find(rec, PROTO_T_PERSON, "#40")), 40);
    assert_null(cli_rec_find(rec, PROTO_T_DECISION, "#1"));
    /* the wrong type's id finds nothing */
    assert_null(cli_rec_find(rec, PROTO_T_SESSION, "#40"));

    /* the meeting by its id */
    assert_non_null(cli_rec_find(rec, PROTO_T_MEETING, "rg-iem"));
    assert_null(cli_rec_find(rec, PROTO_T_MEETING, "other"));
    rec_free(&r);
}

static void test_fields_and_labels(void **state)
{
    (void)state;
    struct rec r;
    const msgpack_object *rec = rec_make(&r);
    char buf[64];

    const msgpack_object *doc = cli_rec_by_id(rec, PROTO_T_DOC, 10);
    assert_string_equal(cli_docref_format(doc, buf, sizeof(buf)), "TSAG-TD257R1");
    assert_string_equal(cli_obj_label(PROTO_T_DOC, doc, buf, sizeof(buf)), "document TSAG-TD257R1");
    assert_string_equal(
        cli_obj_label(PROTO_T_ITEM, cli_rec_by_id(rec, PROTO_T_ITEM, 3), buf, sizeof(buf)),
        "item 4.1");
    assert_string_equal(
        cli_obj_label(PROTO_T_ACTION, cli_rec_by_id(rec, PROTO_T_ACTION, 21), buf, sizeof(buf)),
        "action RG-IEM-12");
    assert_string_equal(
        cli_obj_label(PROTO_T_SESSION, cli_rec_by_id(rec, PROTO_T_SESSION, 30), buf, sizeof(buf)),
        "session 2023-05-31");
    assert_string_equal(
        cli_obj_label(PROTO_T_MEETING, cli_rec_objects(rec, PROTO_T_MEETING), buf, sizeof(buf)),
        "meeting rg-iem");

    /* a nil field reads "", an absent one too; strings are cut at a character boundary */
    const msgpack_object *c032 = cli_rec_by_id(rec, PROTO_T_DOC, 12);
    int64_t v = 0;
    assert_false(cli_obj_i64(c032, "item", &v));
    assert_null(cli_obj_str(c032, "title", NULL));
    assert_string_equal(cli_obj_strcpy(c032, "title", buf, sizeof(buf)), "");
    assert_string_equal(cli_obj_strcpy(c032, "ref", buf, 5), "TSAG");
    assert_null(cli_rec_objects(rec, PROTO_T_DECISION)); /* not an array in this record */
    rec_free(&r);
}

static void test_interims_order(void **state)
{
    (void)state;
    struct rec r;
    const msgpack_object *rec = rec_make(&r);
    const msgpack_object *arr = cli_rec_objects(rec, PROTO_T_INTERIM);
    size_t order[8];

    /* before them all: date order, same date by start time */
    size_t n = cli_interims_order(arr, "2023-06-02", order, 8);
    assert_int_equal(n, 4);
    int64_t want1[] = {51, 53, 50, 52};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(id_of(&arr->via.array.ptr[order[i]]), want1[i]);
    }
    assert_true(cli_interim_upcoming(&arr->via.array.ptr[order[0]], "2023-06-02"));

    /* between: the upcoming ones first (the next one on top), then the past ones */
    n = cli_interims_order(arr, "2023-10-09", order, 8);
    int64_t want2[] = {53, 50, 52, 51};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(id_of(&arr->via.array.ptr[order[i]]), want2[i]);
    }
    assert_true(cli_interim_upcoming(&arr->via.array.ptr[order[0]], "2023-10-09"));
    assert_false(cli_interim_upcoming(&arr->via.array.ptr[order[3]], "2023-10-09"));

    /* after them all: none is upcoming, all in date order */
    n = cli_interims_order(arr, "2026-01-01", order, 8);
    int64_t want3[] = {51, 53, 50, 52};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(id_of(&arr->via.array.ptr[order[i]]), want3[i]);
    }
    assert_false(cli_interim_upcoming(&arr->via.array.ptr[order[0]], "2026-01-01"));

    /* a short order buffer takes the first ones; no array, nothing */
    assert_int_equal(cli_interims_order(arr, "2023-06-02", order, 2), 2);
    assert_int_equal(cli_interims_order(NULL, "2023-06-02", order, 8), 0);
    rec_free(&r);
}

static void test_render_helpers(void **state)
{
    (void)state;
    char buf[64];
    int64_t now = 1700000000000;

    cli_render_ago(now - 3000, now, buf, sizeof(buf));
    assert_string_equal(buf, "just now");
    cli_render_ago(now - 42000, now, buf, sizeof(buf));
    assert_string_equal(buf, "42s ago");
    cli_render_ago(now - 150000, now, buf, sizeof(buf));
    assert_string_equal(buf, "2m ago");
    cli_render_ago(now - 5 * 3600000LL, now, buf, sizeof(buf));
    assert_string_equal(buf, "5h ago");
    cli_render_ago(now - 3 * 86400000LL, now, buf, sizeof(buf));
    assert_string_equal(buf, "3d ago");
    cli_render_ago(now + 120000, now, buf, sizeof(buf));
    assert_string_equal(buf, "in 2m");

    cli_fit("Industry engagement", 8, buf, sizeof(buf));
    assert_string_equal(buf, "Industr\xe2\x80\xa6");
    cli_fit("short", 8, buf, sizeof(buf));
    assert_string_equal(buf, "short");
    cli_fit("\x1b[2Jcl\xc3\xa9", 8, buf, sizeof(buf));
    assert_string_equal(buf, "?[2Jcl\xc3\xa9");

    /* text keeps its newlines and tabs, loses control characters */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    const char text[] = "0\tAction\n\xc2\xb7 RG-IEM-1\x07\n\x1b]0;x\x07";
    assert_int_equal(cli_text_print(f, text, sizeof(text) - 1), 0);
    fclose(f);
    assert_string_equal(out, "0\tAction\n\xc2\xb7 RG-IEM-1?\n?]0;x?");
    free(out);
}

/* The message cli_mtg_fail prints for an error response with this code, message and data
 * ({data_key: v} when data_key is not NULL). The caller frees it. */
static char *fail_text(const char *code, const char *message, const char *data_key, int64_t v)
{
    struct cli_ctx ctx;
    struct cli_mtg m;
    struct cli_msg msg;
    struct proto_buf b = {0};
    msgpack_unpacked u;
    msgpack_object err = {.type = MSGPACK_OBJECT_MAP};
    char *out = NULL;
    size_t len = 0;

    memset(&ctx, 0, sizeof(ctx));
    memset(&m, 0, sizeof(m));
    memset(&msg, 0, sizeof(msg));
    msgpack_unpacked_init(&u);
    ctx.prog = "confer";
    ctx.err = open_memstream(&out, &len);
    snprintf(m.id, sizeof(m.id), "rg-iem");
    msg.kind = PROTO_RPC_RESPONSE;
    msg.error = &err;
    msg.code = code;
    msg.message = message;
    if (data_key != NULL) {
        size_t off = 0;
        assert_int_equal(cli_packf(&b, "{s: I}", data_key, v), 0);
        assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        msg.data = &u.data;
    }
    assert_int_equal(cli_mtg_fail(&ctx, &m, "cannot change action RG-IEM-1", 0, &msg),
                     CLI_EXIT_FAIL);
    fclose(ctx.err);
    msgpack_unpacked_destroy(&u);
    proto_buf_free(&b, 0);
    return out;
}

static void test_error_messages(void **state)
{
    (void)state;
    char *s = fail_text("conflict", "the object changed since if_seq", "seq", 12);
    assert_string_equal(s, "confer: cannot change action RG-IEM-1: changed meanwhile by someone "
                           "else: run the command again\n");
    free(s);
    s = fail_text("conflict", "an action with this ref exists", "id", 7);
    assert_string_equal(s, "confer: cannot change action RG-IEM-1: an action with this ref "
                           "exists\n");
    free(s);
    s = fail_text("locked", "the meeting is final", NULL, 0);
    assert_non_null(strstr(s, "the meeting is final: the rapporteur can reopen it with confer "
                              "meeting set --status draft"));
    free(s);
    s = fail_text("not_found", "no such meeting, or you are not a member of it", NULL, 0);
    assert_non_null(
        strstr(s, "no meeting rg-iem, or you are not a member of it: ask its rapporteur"));
    free(s);
    s = fail_text("bad_request", "due: must be a date YYYY-MM-DD", NULL, 0);
    assert_string_equal(s, "confer: cannot change action RG-IEM-1: due: must be a date "
                           "YYYY-MM-DD\n");
    free(s);
    /* without a connection to ask for the role, the server's words */
    s = fail_text("forbidden", "your role in this meeting does not allow it", NULL, 0);
    assert_non_null(strstr(s, "not allowed: your role in this meeting does not allow it"));
    free(s);
    /* control characters from the server never reach the terminal */
    s = fail_text("bad_request", "title: \x1b[31mred", NULL, 0);
    assert_null(strchr(s, 0x1b));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docref_parse),   cmocka_unit_test(test_id_parse),
        cmocka_unit_test(test_number_same),    cmocka_unit_test(test_find_items),
        cmocka_unit_test(test_find_others),    cmocka_unit_test(test_fields_and_labels),
        cmocka_unit_test(test_interims_order), cmocka_unit_test(test_render_helpers),
        cmocka_unit_test(test_error_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
