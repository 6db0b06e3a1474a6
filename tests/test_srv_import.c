/* test_srv_import.c - report.import checks what it sets as obj.create and obj.update do,
 * and replaces the abstract with a text op. In process, on a data folder made by conferd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "srv.h"
#include "srv_hub.h"
#include "srv_meeting.h"
#include "testsrv.h"

#define MEETING "m1"

struct world {
    struct ts_server ts;
    uv_loop_t loop;
    struct srv srv;
    struct srv_meeting *m;
};

static int setup(void **state)
{
    static struct world w;
    static const char *const names[] = {"rap", NULL};
    memset(&w, 0, sizeof(w));
    char data[4096];
    if (ts_start(&w.ts, names, MEETING) != 0) {
        return -1;
    }
    ts_kill(&w.ts);
    snprintf(data, sizeof(data), "%s/data", w.ts.dir);
    if (uv_loop_init(&w.loop) != 0 || srv_init_offline(&w.srv, &w.loop, data) != 0) {
        return -1;
    }
    w.m = srv_hub_find(&w.srv, MEETING, strlen(MEETING));
    *state = &w;
    return w.m ? 0 : -1;
}

static int teardown(void **state)
{
    struct world *w = *state;
    srv_close_offline(&w->srv);
    uv_loop_close(&w->loop);
    ts_stop(&w->ts);
    return 0;
}

static int import(struct world *w, const char *text, char *err, size_t errlen)
{
    struct srv_import_counts counts;
    int rc = srv_import_into(&w->srv, w->m, "rap", NULL, text, strlen(text), SRV_IMPORT_MERGE,
                             &counts, err, errlen);
    assert_int_equal(srv_sync_offline(&w->srv), 0);
    return rc;
}

/* A carriage return in an item's title (a one-line field) is refused, and nothing of the
 * report is applied. */
static void test_import_refuses_cr_in_title(void **state)
{
    struct world *w = *state;
    int64_t seq = w->m->rec->seq;
    char err[256] = "";
    int rc = import(w, "Abstract:\n\tA short abstract.\n\n1\tIntro\rduction\nSome body.\n", err,
                    sizeof(err));
    assert_int_equal(rc, PROTO_EINVAL);
    assert_non_null(strstr(err, "one line"));
    assert_int_equal(w->m->rec->seq, seq);
}

/* A text over the server's max_text is refused as too large, nothing applied. */
static void test_import_respects_max_text(void **state)
{
    struct world *w = *state;
    size_t saved = w->srv.cfg.max_text;
    w->srv.cfg.max_text = 64;
    int64_t seq = w->m->rec->seq;
    char err[256] = "";
    int rc = import(w,
                    "Abstract:\n\tA short abstract.\n\n1\tIntroduction\n"
                    "A body that is well over sixty-four bytes long, so that the import must "
                    "refuse it.\n",
                    err, sizeof(err));
    w->srv.cfg.max_text = saved;
    assert_int_equal(rc, PROTO_ETOOBIG);
    assert_int_equal(w->m->rec->seq, seq);
}

/* Replacing the abstract enters its history as a text op, as obj.update does. */
static void test_import_abstract_is_a_text_op(void **state)
{
    struct world *w = *state;
    size_t ops = w->m->win.n;
    char err[256] = "";
    int rc = import(w, "Abstract:\n\tThe new abstract.\n\n1\tIntroduction\nSome body.\n", err,
                    sizeof(err));
    if (rc != 0) {
        fail_msg("import: %s", err);
    }
    int abstract = proto_field_find(PROTO_T_MEETING, "abstract", 8);
    const struct srv_val *v = &w->m->rec->meeting.f[abstract];
    assert_true(v->set && strstr(v->s, "The new abstract") != NULL);
    assert_int_equal(w->m->win.n, ops + 1);
    const struct srv_textop *op =
        &w->m->win.ops[(w->m->win.head + w->m->win.n - 1) % w->m->win.cap];
    assert_int_equal(op->type, PROTO_T_MEETING);
    assert_int_equal(op->field, abstract);
}

static int import_mode(struct world *w, const char *text, enum srv_import_mode mode,
                       struct srv_import_counts *counts, char *err, size_t errlen)
{
    int rc =
        srv_import_into(&w->srv, w->m, "rap", NULL, text, strlen(text), mode, counts, err, errlen);
    assert_int_equal(srv_sync_offline(&w->srv), 0);
    return rc;
}

#define REPORT                                                                                     \
    "Abstract:\n\tThe abstract.\n\n"                                                               \
    "1\tIntroduction\nThe meeting noted TSAG-TD181.\n"                                             \
    "2\tActions from RG to WP2\n\xc2\xb7 RG-1: to do a thing,\n"                                   \
    "3\tResults\nThe meeting agreed to go on.\n"

/* Mode new into a meeting that holds objects is a conflict that says what it holds, and
 * changes nothing. */
static void test_import_new_needs_an_empty_meeting(void **state)
{
    struct world *w = *state;
    struct srv_import_counts c;
    char err[256] = "";
    int64_t seq = w->m->rec->seq;
    size_t items = w->m->rec->objs[PROTO_T_ITEM].n;
    assert_true(items > 0);
    int rc = import_mode(w, REPORT, SRV_IMPORT_NEW, &c, err, sizeof(err));
    assert_int_equal(rc, PROTO_ECONFLICT);
    assert_non_null(strstr(err, "merge"));
    assert_int_equal(c.held[PROTO_T_ITEM], (int64_t)items);
    assert_int_equal(c.held[PROTO_T_DOC], 0);
    assert_int_equal(w->m->rec->seq, seq);
}

/* Merging the same report twice: the second time everything is unchanged and nothing is
 * duplicated; a changed body is one text change (an op in the window), a new section is
 * created, and every change names the import. */
static void test_import_merge_matches(void **state)
{
    struct world *w = *state;
    struct srv_import_counts c;
    char err[256] = "";
    int rc = import_mode(w, REPORT, SRV_IMPORT_MERGE, &c, err, sizeof(err));
    if (rc != 0) {
        fail_msg("import: %s", err);
    }
    size_t items = w->m->rec->objs[PROTO_T_ITEM].n, docs = w->m->rec->objs[PROTO_T_DOC].n;
    size_t decisions = w->m->rec->objs[PROTO_T_DECISION].n;
    assert_true(decisions > 0 && docs > 0);
    int64_t seq = w->m->rec->seq;
    rc = import_mode(w, REPORT, SRV_IMPORT_MERGE, &c, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(w->m->rec->seq, seq);
    assert_int_equal(w->m->rec->objs[PROTO_T_ITEM].n, items);
    assert_int_equal(w->m->rec->objs[PROTO_T_DOC].n, docs);
    assert_int_equal(w->m->rec->objs[PROTO_T_DECISION].n, decisions);
    assert_int_equal(c.created[PROTO_T_ITEM], 0);
    assert_int_equal(c.updated[PROTO_T_ITEM], 0);
    assert_int_equal(c.unchanged[PROTO_T_ITEM], 3);
    assert_int_equal(c.unchanged[PROTO_T_ACTION], 1);
    assert_int_equal(c.unchanged[PROTO_T_DECISION], (int64_t)decisions);

    size_t ops = w->m->win.n;
    rc = import_mode(w,
                     "Abstract:\n\tThe abstract.\n\n"
                     "1\tIntroduction\nThe meeting noted TSAG-TD181 with thanks.\n"
                     "9\tAOB\nNone.\n",
                     SRV_IMPORT_MERGE, &c, err, sizeof(err));
    if (rc != 0) {
        fail_msg("import: %s", err);
    }
    assert_int_equal(c.updated[PROTO_T_ITEM], 1);
    assert_int_equal(c.created[PROTO_T_ITEM], 1);
    assert_int_equal(c.unchanged[PROTO_T_DOC], 1);
    assert_int_equal(w->m->rec->objs[PROTO_T_ITEM].n, items + 1);
    /* The changed sentence is an agreement of its own, the old one stays. */
    assert_int_equal(c.created[PROTO_T_DECISION], 1);
    assert_int_equal(w->m->rec->seq, seq + 3);
    assert_int_equal(w->m->win.n, ops + 1);
    /* Nothing deleted: section 3 and its agreement stay. */
    assert_int_equal(w->m->rec->objs[PROTO_T_DECISION].n, decisions + 1);
    int body = proto_field_find(PROTO_T_ITEM, "body", 4);
    bool found = false;
    for (size_t i = 0; i < w->m->rec->objs[PROTO_T_ITEM].n; i++) {
        const struct srv_obj *o = w->m->rec->objs[PROTO_T_ITEM].v[i];
        found = found || (o->f[body].set && strstr(o->f[body].s, "with thanks") != NULL);
    }
    assert_true(found);
}

/* An import is one transaction: when its batch fails (as the import makes it fail when a
 * later change cannot be made), none of its changes stays, and the meeting is reloaded as
 * it was. */
static void test_import_fails_whole(void **state)
{
    struct world *w = *state;
    struct srv_import_counts c;
    char err[256] = "";
    int64_t seq = w->m->rec->seq;
    size_t items = w->m->rec->objs[PROTO_T_ITEM].n;
    const char *text = "Abstract:\n\tAnother abstract.\n\n"
                       "77\tSeventy-seven\nA body.\n78\tSeventy-eight\nAnother body.\n";
    int rc = srv_import_into(&w->srv, w->m, "rap", NULL, text, strlen(text), SRV_IMPORT_MERGE, &c,
                             err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(c.created[PROTO_T_ITEM], 2);
    assert_true(w->m->rec->seq >= seq + 3);
    srv_hub_fail_open(&w->srv, w->m, "an import could not make all of its changes");
    assert_int_not_equal(srv_sync_offline(&w->srv), 0);
    w->m = srv_hub_find(&w->srv, MEETING, strlen(MEETING));
    assert_non_null(w->m);
    assert_int_equal(w->m->rec->seq, seq);
    assert_int_equal(w->m->rec->objs[PROTO_T_ITEM].n, items);
    /* And the meeting takes changes again. */
    rc = import_mode(w, text, SRV_IMPORT_MERGE, &c, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(w->m->rec->objs[PROTO_T_ITEM].n, items + 2);
}

/* A report that numbers two sections alike is refused whole (item numbers are unique); a
 * merge matches an action's ref regardless of letter case. */
static void test_import_keys(void **state)
{
    struct world *w = *state;
    struct srv_import_counts c;
    char err[256] = "";
    int64_t seq = w->m->rec->seq;
    int rc = import_mode(w,
                         "Abstract:\n\tThe abstract.\n\n1\tIntroduction\nOne.\n"
                         "1\tIntroduction again\nTwo.\n",
                         SRV_IMPORT_MERGE, &c, err, sizeof(err));
    assert_int_equal(rc, PROTO_EINVAL);
    assert_non_null(strstr(err, "numbered 1"));
    assert_int_equal(w->m->rec->seq, seq);
    rc = import_mode(w, REPORT, SRV_IMPORT_MERGE, &c, err, sizeof(err));
    if (rc != 0) {
        fail_msg("import: %s", err);
    }
    size_t actions = w->m->rec->objs[PROTO_T_ACTION].n;
    rc = import_mode(w,
                     "Abstract:\n\tThe abstract.\n\n"
                     "2\tActions from RG to WP2\n\xc2\xb7 rg-1: to do a thing,\n",
                     SRV_IMPORT_MERGE, &c, err, sizeof(err));
    if (rc != 0) {
        fail_msg("import: %s", err);
    }
    assert_int_equal(w->m->rec->objs[PROTO_T_ACTION].n, actions);
    assert_int_equal(c.created[PROTO_T_ACTION], 0);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_refuses_cr_in_title),
        cmocka_unit_test(test_import_respects_max_text),
        cmocka_unit_test(test_import_abstract_is_a_text_op),
        cmocka_unit_test(test_import_new_needs_an_empty_meeting),
        cmocka_unit_test(test_import_merge_matches),
        cmocka_unit_test(test_import_fails_whole),
        cmocka_unit_test(test_import_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
