/* test_record_large.c - a record of 2,000 items, 20,000 docs and 4,000 decisions, packed for
 * agenda.get and exported in every format: each doc and decision must show up once, under
 * its own item. The grouping by item is what these check; they assert results, not time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "proto_schema.h"
#include "proto_util.h"
#include "srv_rec.h"
#include "srv_report.h"

#define NITEMS   2000
#define NDOCS    20000
#define NDECS    4000
#define DOC_ID   100000 /* first doc id */
#define DEC_ID   200000 /* first decision id */
#define NO_ITEM  999999 /* an item id no item has */
#define NUM_SIZE 48

/* Item id i (1..NITEMS) is numbered so that the natural order is the reverse of the ids,
 * and "10.1" has to sort after "9.50". */
static void item_number(int64_t i, char out[NUM_SIZE])
{
    int64_t r = NITEMS - i;
    snprintf(out, NUM_SIZE, "%lld.%lld", (long long)(r / 50 + 1), (long long)(r % 50 + 1));
}

/* The item of doc d: none for some, an absent one for a few, else spread over all items. */
static int64_t doc_item(int d)
{
    if (d % 17 == 0) {
        return 0;
    }
    if (d % 1001 == 5) {
        return NO_ITEM;
    }
    return (int64_t)d * 7919 % NITEMS + 1;
}

static int64_t dec_item(int e)
{
    return e % 11 == 0 ? 0 : (int64_t)e * 31 % NITEMS + 1;
}

static void set_field(struct srv_obj *o, const char *name, const char *s)
{
    int k = proto_field_find(o->type, name, strlen(name));
    assert_true(k >= 0);
    assert_int_equal(srv_val_set_str(&o->f[k], s, strlen(s)), 0);
}

static void set_item(struct srv_obj *o, int64_t item)
{
    if (item != 0) {
        srv_val_set_int(&o->f[proto_field_find(o->type, "item", 4)], item);
    }
}

static void add(struct srv_rec *rec, enum proto_type t, int64_t id, struct srv_obj **out)
{
    struct srv_obj *o = srv_obj_new(t);
    assert_non_null(o);
    o->id = id;
    o->seq = id;
    assert_int_equal(srv_rec_add(rec, o), 0);
    *out = o;
}

static struct srv_rec *big_record(void)
{
    struct srv_rec *rec = srv_rec_new("big");
    struct srv_obj *o = NULL;
    char s[64];

    assert_non_null(rec);
    rec->seq = 7;
    for (int64_t i = 1; i <= NITEMS; i++) {
        add(rec, PROTO_T_ITEM, i, &o);
        item_number(i, s);
        set_field(o, "number", s);
        snprintf(s, sizeof(s), "Item %lld", (long long)i);
        set_field(o, "title", s);
    }
    for (int d = 0; d < NDOCS; d++) {
        add(rec, PROTO_T_DOC, DOC_ID + d, &o);
        snprintf(s, sizeof(s), "TSAG-TD%d", d);
        set_field(o, "ref", s);
        set_item(o, doc_item(d));
    }
    for (int e = 0; e < NDECS; e++) {
        add(rec, PROTO_T_DECISION, DEC_ID + e, &o);
        snprintf(s, sizeof(s), "decision %d", e);
        set_field(o, "text", s);
        set_item(o, dec_item(e));
    }
    return rec;
}

/* The number an export shows for an item ref: "" for none or an absent item. */
static void shown_number(int64_t item, char out[NUM_SIZE])
{
    out[0] = '\0';
    if (item >= 1 && item <= NITEMS) {
        item_number(item, out);
    }
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t k = 0; k < map->via.map.size; k++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[k];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0) {
            return &kv->val;
        }
    }
    fail_msg("no key %s", key);
    return NULL;
}

static int64_t get_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = get(map, key);
    assert_true(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    return (int64_t)v->via.u64;
}

/* agenda.get: items in their natural order, each with exactly its own docs, by id. */
static void test_agenda_groups_docs(void **state)
{
    (void)state;
    struct srv_rec *rec = big_record();
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_unpacked up;
    size_t off = 0, total = 0, want_total = 0;
    static size_t want[NITEMS + 1];
    char num[NUM_SIZE];

    memset(want, 0, sizeof(want));
    for (int d = 0; d < NDOCS; d++) {
        int64_t it = doc_item(d);
        if (it >= 1 && it <= NITEMS) {
            want[it]++;
            want_total++;
        }
    }
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    assert_int_equal(srv_rec_pack_agenda(&pk, rec), 0);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b.len);
    assert_int_equal(get_int(&up.data, "seq"), 7);
    const msgpack_object *items = get(&up.data, "items");
    assert_int_equal(items->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(items->via.array.size, NITEMS);
    for (uint32_t k = 0; k < NITEMS; k++) {
        const msgpack_object *it = &items->via.array.ptr[k];
        int64_t id = get_int(it, "id");
        const msgpack_object *n = get(it, "number");
        const msgpack_object *docs = get(it, "docs");
        int64_t last = 0;
        assert_int_equal(id, NITEMS - (int64_t)k);
        item_number(id, num);
        assert_int_equal(n->type, MSGPACK_OBJECT_STR);
        assert_int_equal(n->via.str.size, strlen(num));
        assert_memory_equal(n->via.str.ptr, num, strlen(num));
        assert_int_equal(docs->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(docs->via.array.size, want[id]);
        for (uint32_t d = 0; d < docs->via.array.size; d++) {
            const msgpack_object *doc = &docs->via.array.ptr[d];
            int64_t did = get_int(doc, "id");
            assert_true(did > last);
            assert_int_equal(get_int(doc, "item"), id);
            assert_int_equal(doc_item((int)(did - DOC_ID)), id);
            last = did;
        }
        total += docs->via.array.size;
    }
    assert_int_equal(total, want_total);
    assert_int_equal(get(&up.data, "sessions")->via.array.size, 0);
    msgpack_unpacked_destroy(&up);
    proto_buf_free(&b, 0);
    srv_rec_free(rec);
}

/* Splits one line of out at sep into at most max cells (the text before the first
 * separator is cell 0); returns how many. */
static size_t cells(char *line, const char *sep, char **cell, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        char *q = strstr(p, sep);
        cell[n++] = p;
        if (q == NULL) {
            break;
        }
        *q = '\0';
        p = q + strlen(sep);
    }
    return n;
}

static void trim(char **s)
{
    size_t n = strlen(*s);
    while (**s == ' ') {
        (*s)++;
        n--;
    }
    while (n > 0 && (*s)[n - 1] == ' ') {
        (*s)[--n] = '\0';
    }
}

struct seen {
    size_t docs, decs;
};

/* Checks one table row (cells after the row's opening mark) or annex line: a doc's item
 * column, found by its ref; a decision's, found by its text. */
static void check_row(char **c, size_t n, size_t ref_col, size_t ditem_col, size_t dtext_col,
                      size_t eitem_col, const char *none, struct seen *seen)
{
    char want[NUM_SIZE];
    int k = 0;

    if (n > ditem_col && sscanf(c[ref_col], "TSAG-TD%d", &k) == 1) {
        shown_number(doc_item(k), want);
        assert_string_equal(c[ditem_col], want[0] ? want : none);
        seen->docs++;
    } else if (n > dtext_col && sscanf(c[dtext_col], "decision %d", &k) == 1) {
        shown_number(dec_item(k), want);
        assert_string_equal(c[eitem_col], want[0] ? want : none);
        seen->decs++;
    }
}

static char *export(const struct srv_rec *rec, enum srv_report_format fmt)
{
    struct proto_buf b = {0};
    assert_int_equal(srv_report_export(rec, fmt, 7, "00", NULL, &b), 0);
    assert_int_equal(proto_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static void test_export_text_items(void **state)
{
    (void)state;
    struct srv_rec *rec = big_record();
    char *out = export(rec, SRV_REPORT_TEXT), *save = NULL;
    struct seen seen = {0};

    /* Annex lines: "doc\tref\trevision\ttitle\tsource\titem\tstatus",
     * "decision\titem\tkind\ttext"; "-" is no item. */
    for (char *ln = strtok_r(out, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
        char *c[8];
        size_t n = cells(ln, "\t", c, 8);
        if (strcmp(c[0], "doc") == 0) {
            check_row(c, n, 1, 5, 99, 99, "-", &seen);
        } else if (strcmp(c[0], "decision") == 0) {
            check_row(c, n, 99, 99, 3, 1, "-", &seen);
        }
    }
    assert_int_equal(seen.docs, NDOCS);
    assert_int_equal(seen.decs, NDECS);
    free(out);
    srv_rec_free(rec);
}

static void test_export_markdown_items(void **state)
{
    (void)state;
    struct srv_rec *rec = big_record();
    char *out = export(rec, SRV_REPORT_MARKDOWN), *save = NULL;
    struct seen seen = {0};

    /* "| ref | revision | title | source | item | status |", "| item | kind | text |". */
    for (char *ln = strtok_r(out, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
        char *c[9];
        size_t n = 0;
        if (ln[0] != '|') {
            continue;
        }
        n = cells(ln + 1, "|", c, 9);
        for (size_t k = 0; k < n; k++) {
            trim(&c[k]);
        }
        check_row(c, n, 0, 4, 2, 0, "", &seen);
    }
    assert_int_equal(seen.docs, NDOCS);
    assert_int_equal(seen.decs, NDECS);
    free(out);
    srv_rec_free(rec);
}

static void test_export_html_items(void **state)
{
    (void)state;
    struct srv_rec *rec = big_record();
    char *out = export(rec, SRV_REPORT_HTML), *save = NULL;
    struct seen seen = {0};

    /* "<tr><td>ref</td><td>revision</td>...": cells apart by "</td><td>". */
    for (char *ln = strtok_r(out, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
        char *c[9];
        size_t n = 0, len = strlen(ln);
        if (strncmp(ln, "<tr><td>", 8) != 0 || len < 18) {
            continue;
        }
        ln[len - 10] = '\0'; /* "</td></tr>" */
        n = cells(ln + 8, "</td><td>", c, 9);
        check_row(c, n, 0, 4, 2, 0, "", &seen);
    }
    assert_int_equal(seen.docs, NDOCS);
    assert_int_equal(seen.decs, NDECS);
    free(out);
    srv_rec_free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agenda_groups_docs),
        cmocka_unit_test(test_export_text_items),
        cmocka_unit_test(test_export_markdown_items),
        cmocka_unit_test(test_export_html_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
