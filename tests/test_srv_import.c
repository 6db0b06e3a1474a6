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

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_refuses_cr_in_title),
        cmocka_unit_test(test_import_respects_max_text),
        cmocka_unit_test(test_import_abstract_is_a_text_op),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
