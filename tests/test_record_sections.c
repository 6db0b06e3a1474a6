/* test_record_sections.c - the HTML export section by section (srv_report_html_sections),
 * which the live view's page and updates are made of: the sections put together are the
 * export's body, so the page is the export's rendering, not a second one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_err.h"
#include "proto_util.h"
#include "srv_rec.h"
#include "srv_report.h"
#include "testutil.h"

struct joined {
    struct proto_buf b;
    char keys[64][32];
    size_t n;
};

static int join(void *ud, const char *key, int64_t id, const char *html, size_t len)
{
    struct joined *j = ud;
    assert_int_equal(proto_buf_append(&j->b, html, len), 0);
    if (j->n < 64) {
        snprintf(j->keys[j->n++], sizeof(j->keys[0]), "%s", key);
    }
    if (strncmp(key, "item-", 5) == 0) {
        assert_true(id > 0);
    }
    return 0;
}

static struct srv_rec *import_sample(void)
{
    size_t len = 0;
    char *text = tu_read_data("rg-iem-report-2023-06.txt", &len);
    struct srv_rec *rec = NULL;
    char err[256] = "";
    assert_non_null(text);
    assert_int_equal(srv_report_import(text, len, &rec, err, sizeof(err)), 0);
    free(text);
    return rec;
}

/* The body of the HTML export: what lies between <body> and the footer. */
static void export_body(const struct srv_rec *rec, struct proto_buf *out)
{
    struct proto_buf b = {0};
    assert_int_equal(srv_report_export(rec, SRV_REPORT_HTML, 1, NULL, NULL, &b), 0);
    assert_int_equal(proto_buf_append(&b, "", 1), 0);
    const char *from = strstr((const char *)b.data, "<body>\n");
    const char *to = strstr((const char *)b.data, "<footer>");
    assert_non_null(from);
    assert_non_null(to);
    from += strlen("<body>\n");
    assert_int_equal(proto_buf_append(out, from, (size_t)(to - from)), 0);
    proto_buf_free(&b, 0);
}

static void test_sections_are_the_export(void **state)
{
    struct srv_rec *rec = import_sample();
    struct joined j = {0};
    struct proto_buf body = {0};
    assert_int_equal(srv_report_html_sections(rec, join, &j), 0);
    export_body(rec, &body);
    assert_int_equal(j.b.len, body.len);
    assert_memory_equal(j.b.data, body.data, body.len);
    /* head, abstract, one per item (one holds the actions), the six tables, the annex */
    assert_string_equal(j.keys[0], "head");
    assert_string_equal(j.keys[1], "abstract");
    assert_int_equal(j.n, 2 + rec->objs[PROTO_T_ITEM].n + 6 + 1);
    assert_string_equal(j.keys[j.n - 7], "actions");
    assert_string_equal(j.keys[j.n - 2], "people");
    assert_string_equal(j.keys[j.n - 1], "annex");
    proto_buf_free(&j.b, 0);
    proto_buf_free(&body, 0);
    srv_rec_free(rec);
}

static int first_item_title(struct srv_rec *rec, const char *title)
{
    const struct srv_obj *items[64];
    srv_rec_items_sorted(rec, items);
    int f = proto_field_find(PROTO_T_ITEM, "title", 5);
    return srv_val_set_str((struct srv_val *)&items[0]->f[f], title, strlen(title));
}

static void test_sections_escape(void **state)
{
    struct srv_rec *rec = import_sample();
    struct joined j = {0};
    assert_int_equal(first_item_title(rec, "<script>alert('x')</script> \"q\" & more"), 0);
    assert_int_equal(srv_report_html_sections(rec, join, &j), 0);
    assert_int_equal(proto_buf_append(&j.b, "", 1), 0);
    assert_null(strstr((const char *)j.b.data, "<script>"));
    assert_non_null(
        strstr((const char *)j.b.data,
               "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;q&quot; &amp; more"));
    proto_buf_free(&j.b, 0);
    srv_rec_free(rec);
}

static int stop_at_third(void *ud, const char *key, int64_t id, const char *html, size_t len)
{
    int *n = ud;
    return ++*n == 3 ? PROTO_EINVAL : 0;
}

static void test_sections_stop(void **state)
{
    struct srv_rec *rec = import_sample();
    int n = 0;
    assert_int_equal(srv_report_html_sections(rec, stop_at_third, &n), PROTO_EINVAL);
    assert_int_equal(n, 3);
    srv_rec_free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_are_the_export),
        cmocka_unit_test(test_sections_escape),
        cmocka_unit_test(test_sections_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
