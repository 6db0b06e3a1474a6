/* test_srv_member.c - a member removed from a meeting stops receiving it live: no more
 * events of it, and the others see their presence leave. Against a real conferd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "testsrv.h"

#define MEETING "m1"

static const char *const names[] = {"rap", "view", NULL};

static struct cli_msg *call_ok(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    struct cli_msg *m = NULL;
    va_list ap;
    va_start(ap, fmt);
    struct proto_buf b = {0};
    if (fmt) {
        assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    }
    va_end(ap);
    assert_int_equal(cli_conn_call(c, method, b.data, b.len, &m), 0);
    proto_buf_free(&b, 0);
    if (m->error) {
        fail_msg("%s: %s: %s", method, m->code, m->message);
    }
    return m;
}

static int64_t int_param(const msgpack_object *map, const char *key)
{
    int64_t v = 0;
    assert_int_equal(proto_param_i64(map, key, &v), 0);
    return v;
}

static bool str_param_is(const msgpack_object *map, const char *key, const char *want)
{
    char v[128];
    return proto_param_strcpy(map, key, v, sizeof(v)) == 0 && strcmp(v, want) == 0;
}

/* Answers a ping (so that everything sent before it has arrived), then counts the queued
 * notifications: events of kind with seq > after, and presence leaves of user. */
static void drain(struct cli_conn *c, const char *kind, int64_t after, const char *user,
                  int *events, int *leaves)
{
    cli_msg_free(call_ok(c, "ping", NULL));
    *events = *leaves = 0;
    struct cli_msg *m = NULL;
    for (int i = 0; i < 10000 && cli_conn_next(c, 0, &m) == 0; i++) {
        if (m->method && strcmp(m->method, "event") == 0 && str_param_is(m->params, "kind", kind) &&
            int_param(m->params, "seq") > after) {
            (*events)++;
        }
        if (m->method && strcmp(m->method, "presence") == 0 &&
            str_param_is(m->params, "user", user) && str_param_is(m->params, "state", "leave")) {
            (*leaves)++;
        }
        cli_msg_free(m);
        m = NULL;
    }
}

static void test_removed_member_gets_no_more_events(void **state)
{
    (void)state;
    struct ts_server s = {0};
    assert_int_equal(ts_start(&s, names, MEETING), 0);
    struct cli_conn *rap = ts_login(&s, "rap"), *view = ts_login(&s, "view");
    assert_non_null(rap);
    assert_non_null(view);
    struct cli_msg *m = call_ok(rap, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                                "type", "item", "fields", "number", "1", "title", "One");
    int64_t item = int_param(m->result, "id");
    cli_msg_free(m);
    cli_msg_free(call_ok(rap, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user", "view",
                         "role", "viewer"));
    cli_msg_free(call_ok(rap, "meeting.subscribe", "{s:s}", "meeting", MEETING));
    cli_msg_free(call_ok(view, "meeting.subscribe", "{s:s}", "meeting", MEETING));
    cli_msg_free(call_ok(view, "presence.set", "{s:s, s:{s:s, s:I, s:s}}", "meeting", MEETING,
                         "where", "type", "item", "id", item, "field", "body"));

    m = call_ok(rap, "member.remove", "{s:s, s:s}", "meeting", MEETING, "user", "view");
    int64_t removed = int_param(m->result, "seq");
    cli_msg_free(m);
    cli_msg_free(call_ok(rap, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING, "type",
                         "item", "fields", "number", "2", "title", "Two"));

    int events = 0, leaves = 0;
    drain(view, "create", removed, "view", &events, &leaves);
    assert_int_equal(events, 0);
    drain(rap, "create", 0, "view", &events, &leaves);
    assert_int_equal(leaves, 1);

    cli_conn_close(view);
    cli_conn_close(rap);
    assert_int_equal(ts_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_removed_member_gets_no_more_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
