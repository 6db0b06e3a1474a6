/* test_srv_flood.c - clients that stop reading, drip frames or open too many connections,
 * against a real conferd (built with the sanitizers): the server stays up, drops the
 * offender for the right reason, keeps its memory bounded and answers everyone else.
 *
 * Every loop is bounded in count and in time; each test runs its own server and ends with
 * a clean exit of it (no sanitizer report in its log).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "proto_frame.h"
#include "srv.h"
#include "testsrv.h"
#include "testutil.h"

#define MEETING  "m1"
#define BATCH    100   /* requests per corked frame */
#define FLOOD_MS 20000 /* bound of every flood loop */

static const char *const users[] = {"rap", "ed", "third", NULL};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((unused)) static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The server's log so far (malloc'd), or NULL. */
static char *read_log(const struct ts_server *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/server.log", s->dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, got = 0;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) {
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

/* Number of lines of the server's log containing what. */
static int log_count(const struct ts_server *s, const char *what)
{
    char *log = read_log(s);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, what)) != NULL; p += strlen(what)) {
        n++;
    }
    free(log);
    return n;
}

/* Prints the server's sanitizer report or the end of its log (for a failing test). */
static void dump_log(const struct ts_server *s)
{
    char *log = read_log(s);
    if (log) {
        const char *p = strstr(log, "==ERROR");
        size_t len = strlen(log);
        fprintf(stderr, "--- server log ---\n%s\n", p ? p : log + (len > 4000 ? len - 4000 : 0));
    }
    free(log);
}

/* Stops the server: it must exit 0 with no sanitizer report in its log. */
static void stop_clean(struct ts_server *s)
{
    char *log = NULL;
    int rc = ts_stop_log(s, &log);
    if (rc != 0 || (log && (strstr(log, "Sanitizer") || strstr(log, "runtime error")))) {
        fprintf(stderr, "%s\n", log ? log : "(no log)");
    }
    assert_non_null(log);
    assert_null(strstr(log, "Sanitizer"));
    assert_null(strstr(log, "runtime error"));
    assert_int_equal(rc, 0);
    free(log);
}

static void call_ok(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    struct proto_buf p = {0};
    va_list ap;
    va_start(ap, fmt);
    assert_int_equal(cli_vpackf(&p, fmt, ap), 0);
    va_end(ap);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_call(c, method, p.data, p.len, &m), 0);
    if (m->error) {
        fprintf(stderr, "%s: %s %s\n", method, m->code, m->message);
    }
    assert_null(m->error);
    cli_msg_free(m);
    proto_buf_free(&p, 0);
}

/* A client that will not read: its receive buffer is made small so that the server's
 * output backs up quickly. */
static struct cli_conn *stalled_subscriber(struct ts_server *s, const char *user)
{
    struct cli_conn *c = ts_login(s, user);
    assert_non_null(c);
    call_ok(c, "meeting.subscribe", "{s:s}", "meeting", MEETING);
    int small = 4096;
    setsockopt(cli_conn_fd(c), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    return c;
}

/* Another client is still answered. */
static void ping_ok(struct ts_server *s)
{
    struct cli_conn *c = ts_login(s, "third");
    if (c == NULL) {
        dump_log(s);
    }
    assert_non_null(c);
    call_ok(c, "ping", "{}");
    cli_conn_close(c);
}

/* Sends batches of requests made by pack(i) from c, reading the answers, until the log
 * shows "slow consumer", the connection breaks, max requests were sent or FLOOD_MS passed.
 * Returns true when the slow consumer was seen. */
static bool flood(struct ts_server *s, struct cli_conn *c, int max,
                  void (*pack)(struct proto_buf *b, int i), const char *method)
{
    int64_t end = mono_ms() + FLOOD_MS;
    bool seen = false;
    for (int i = 0; i < max && mono_ms() < end;) {
        uint32_t last = 0;
        cli_conn_cork(c);
        for (int k = 0; k < BATCH; k++, i++) {
            struct proto_buf p = {0};
            pack(&p, i);
            int rc = cli_conn_send(c, method, p.data, p.len, &last);
            proto_buf_free(&p, 0);
            if (rc != 0) {
                fprintf(stderr, "flood: send: %s\n", cli_conn_error(c));
                goto out;
            }
        }
        struct cli_msg *m = NULL;
        if (cli_conn_wait(c, last, 10000, &m) != 0) {
            fprintf(stderr, "flood: wait: %s\n", cli_conn_error(c));
            goto out;
        }
        if (m->error) {
            fprintf(stderr, "flood: %s: %s %s\n", method, m->code, m->message);
        }
        cli_msg_free(m);
        while (cli_conn_next(c, 0, &m) == 0) {
            cli_msg_free(m);
        }
        if (log_count(s, "slow consumer") > 0) {
            return true;
        }
    }
out:
    seen = log_count(s, "slow consumer") > 0;
    if (!seen) {
        dump_log(s);
    }
    return seen;
}

static void pack_presence(struct proto_buf *b, int i)
{
    cli_packf(b, "{s:s, s:{s:s, s:s, s:s}}", "meeting", MEETING, "where", "type", "meeting", "id",
              MEETING, "field", i % 2 ? "title" : "abstract");
}

static char big_body[4001];

static void pack_item(struct proto_buf *b, int i)
{
    (void)i;
    cli_packf(b, "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING, "type", "item", "fields", "title",
              "t", "body", big_body);
}

/* (a) A viewer that subscribes and stops reading while another client sends presence.set
 * in a loop: the fan-out drops the viewer as a slow consumer and the server stays up. */
static void test_presence_flood_slow_viewer(void **state)
{
    (void)state;
    static const char *const args[] = {"--output-limit", "65536", NULL};
    struct ts_server s;
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *viewer = stalled_subscriber(&s, "rap");
    struct cli_conn *flooder = ts_login(&s, "rap");
    assert_non_null(flooder);
    call_ok(flooder, "meeting.subscribe", "{s:s}", "meeting", MEETING);
    assert_true(flood(&s, flooder, 200000, pack_presence, "presence.set"));
    ping_ok(&s);
    call_ok(flooder, "ping", "{}");
    cli_conn_free(viewer);
    cli_conn_close(flooder);
    stop_clean(&s);
}

/* (b) A burst of events past the output limit through broadcast: one client creates items
 * with long titles while a subscriber does not read. */
static void test_broadcast_burst_slow_viewer(void **state)
{
    (void)state;
    static const char *const args[] = {"--output-limit", "65536", NULL};
    struct ts_server s;
    memset(big_body, 'x', sizeof(big_body) - 1);
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *viewer = stalled_subscriber(&s, "rap");
    struct cli_conn *editor = ts_login(&s, "rap");
    assert_non_null(editor);
    call_ok(editor, "meeting.subscribe", "{s:s}", "meeting", MEETING);
    assert_true(flood(&s, editor, 20000, pack_item, "obj.create"));
    ping_ok(&s);
    call_ok(editor, "ping", "{}");
    cli_conn_free(viewer);
    cli_conn_close(editor);
    stop_clean(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presence_flood_slow_viewer),
        cmocka_unit_test(test_broadcast_burst_slow_viewer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
