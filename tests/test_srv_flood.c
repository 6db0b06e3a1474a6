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
#include "proto_rpc.h"
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

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Number of lines of the server's log containing what. */
static int log_count(const struct ts_server *s, const char *what)
{
    char *log = ts_read_log(s);
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
    char *log = ts_read_log(s);
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
        if (log_count(s, "slow consumer:") > 0) {
            return true;
        }
    }
out:
    seen = log_count(s, "slow consumer:") > 0;
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

#define NSTALLED  200
#define EDIT_TEXT (8 * 1024)
#define EDIT_RUN  8            /* inserts pipelined on one base, then one delete of them all */
#define RSS_MAX   (256 * 1024) /* KiB: the bound on the peak */

/* Packs a text.edit of the meeting's abstract at base: an insert at 0, or (insert NULL) a
 * delete of del code points at 0. */
static void pack_edit(struct proto_buf *p, int64_t base, const char *insert, int del)
{
    if (insert) {
        cli_packf(p, "{s:s, s:s, s:s, s:s, s:I, s:[s]}", "meeting", MEETING, "type", "meeting",
                  "id", MEETING, "field", "abstract", "base", base, "op", insert);
    } else {
        cli_packf(p, "{s:s, s:s, s:s, s:s, s:I, s:[{s:i}]}", "meeting", MEETING, "type", "meeting",
                  "id", MEETING, "field", "abstract", "base", base, "op", "d", del);
    }
}

/* EDIT_RUN inserts of text pipelined on base, then a delete of all of them: the text
 * stays small while every subscriber gets EDIT_RUN + 1 events. Returns the new seq or -1. */
static int64_t edit_run(struct cli_conn *c, int64_t base, const char *text)
{
    uint32_t id[EDIT_RUN + 1];
    int64_t seq = -1;
    cli_conn_cork(c);
    for (int k = 0; k < EDIT_RUN; k++) {
        struct proto_buf p = {0};
        pack_edit(&p, base, text, 0);
        int rc = cli_conn_send(c, "text.edit", p.data, p.len, &id[k]);
        proto_buf_free(&p, 0);
        if (rc != 0) {
            return -1;
        }
    }
    for (int k = 0; k <= EDIT_RUN; k++) {
        struct cli_msg *m = NULL;
        if (k == EDIT_RUN) {
            struct proto_buf p = {0};
            pack_edit(&p, seq, NULL, EDIT_RUN * EDIT_TEXT);
            int rc = cli_conn_send(c, "text.edit", p.data, p.len, &id[k]);
            proto_buf_free(&p, 0);
            if (rc != 0) {
                return -1;
            }
        }
        if (cli_conn_wait(c, id[k], 10000, &m) != 0 || m->error != NULL) {
            fprintf(stderr, "text.edit: %s\n", m && m->message ? m->message : cli_conn_error(c));
            cli_msg_free(m);
            return -1;
        }
        proto_param_i64(m->result, "seq", &seq);
        cli_msg_free(m);
    }
    return seq;
}

/* (c) 200 subscribers of a busy meeting stop reading: the global output budget keeps the
 * server's peak RSS under 256 MiB, the subscribers are dropped as slow consumers, the
 * memory falls back, and the server still answers. */
static void test_stalled_subscribers_rss(void **state)
{
    (void)state;
    static const char *const args[] = {"--max-conns-per-user", "1000", NULL};
    /* Measure the server's memory, not the sanitizer's: ASan's quarantine would keep
     * 256 MiB of freed memory on its own. */
    const char *old = getenv("ASAN_OPTIONS");
    char *saved = old ? strdup(old) : NULL;
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=1", old ? old : "",
             old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    struct ts_server s;
    int rc = ts_start_args(&s, users, MEETING, args);
    if (saved) {
        setenv("ASAN_OPTIONS", saved, 1);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
    free(saved);
    assert_int_equal(rc, 0);
    static struct cli_conn *stalled[NSTALLED];
    for (int i = 0; i < NSTALLED; i++) {
        stalled[i] = stalled_subscriber(&s, "rap");
    }
    struct cli_conn *editor = ts_login(&s, "rap");
    assert_non_null(editor);
    char *text = malloc(EDIT_TEXT + 1);
    assert_non_null(text);
    memset(text, 'a', EDIT_TEXT);
    text[EDIT_TEXT] = '\0';
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(editor, &m, "meeting.get", "{s:s}", "meeting", MEETING), 0);
    int64_t seq = 0;
    assert_non_null(m->result);
    proto_param_i64(m->result, "seq", &seq);
    cli_msg_free(m);
    long before = ts_proc_kib(s.pid, "VmRSS:");
    int64_t end = mono_ms() + 90000;
    int edits = 0;
    while (mono_ms() < end && log_count(&s, "slow consumer:") < NSTALLED) {
        seq = edit_run(editor, seq, text);
        assert_true(seq > 0);
        edits += EDIT_RUN + 1;
    }
    long peak = ts_proc_kib(s.pid, "VmHWM:");
    int drops = log_count(&s, "slow consumer:");
    sleep_ms(1000); /* the last closes and the allocator's release */
    long after = ts_proc_kib(s.pid, "VmRSS:");
    fprintf(stderr, "%d edits, %d dropped, RSS before %ld KiB, peak %ld KiB, after %ld KiB\n",
            edits, drops, before, peak, after);
    assert_int_equal(drops, NSTALLED);
    assert_true(peak > 0 && peak < RSS_MAX);
    assert_true(after < peak * 3 / 4);
    ping_ok(&s);
    for (int i = 0; i < NSTALLED; i++) {
        cli_conn_free(stalled[i]);
    }
    free(text);
    cli_conn_close(editor);
    stop_clean(&s);
}

/* (d) A client that drips a frame one byte at a time after login is closed by the frame
 * deadline, long before any other deadline (the login deadline is a minute here). */
static void test_post_login_dripper(void **state)
{
    (void)state;
    static const char *const args[] = {"--frame-timeout", "1000", "--login-timeout", "60000", NULL};
    struct ts_server s;
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *c = ts_login(&s, "rap");
    assert_non_null(c);
    uint8_t frame[PROTO_FRAME_HDR + 100] = {0};
    proto_frame_put_len(frame, 100);
    int64_t start = mono_ms(), closed_ms = -1;
    for (size_t i = 0; i < sizeof(frame) && mono_ms() - start < 15000; i++) {
        if (cli_conn_send_raw(c, frame + i, 1) != 0) {
            closed_ms = mono_ms() - start;
            break;
        }
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(c, 500, &m); /* one byte each half second */
        cli_msg_free(m);
        if (rc != 0 && rc != PROTO_ETIMEDOUT) {
            closed_ms = mono_ms() - start;
            break;
        }
    }
    fprintf(stderr, "dripper closed after %lld ms\n", (long long)closed_ms);
    assert_true(closed_ms >= 900 && closed_ms < 5000);
    assert_int_equal(log_count(&s, "frame deadline passed"), 1);
    ping_ok(&s);
    cli_conn_free(c);
    stop_clean(&s);
}

/* (e1) Connections past max_conns_per_addr are refused at accept; a closed one frees its
 * place. */
static void test_conns_per_addr_cap(void **state)
{
    (void)state;
    static const char *const args[] = {"--max-conns-per-addr", "3", NULL};
    struct ts_server s;
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = ts_login(&s, "rap");
        assert_non_null(c[i]);
    }
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *extra = NULL;
    char err[512];
    assert_int_not_equal(
        cli_conn_open(&extra, "127.0.0.1", (uint16_t)s.port, &pol, 5000, err, sizeof(err)), 0);
    assert_int_equal(log_count(&s, "too many connections from this address"), 1);
    cli_conn_close(c[0]);
    /* The close is seen by the server at its next turn: retry a bounded number of times. */
    struct cli_conn *again = NULL;
    for (int i = 0; i < 50 && again == NULL; i++) {
        again = ts_login(&s, "ed");
        if (again == NULL) {
            sleep_ms(100);
        }
    }
    assert_non_null(again);
    cli_conn_close(again);
    cli_conn_close(c[1]);
    cli_conn_close(c[2]);
    stop_clean(&s);
}

/* (e2) The login that would pass max_conns_per_user is answered rate_limited with
 * retry_after_ms; the connection stays logged out and may log in as someone else. */
static void test_conns_per_user_cap(void **state)
{
    (void)state;
    static const char *const args[] = {"--max-conns-per-user", "2", NULL};
    struct ts_server s;
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *a = ts_login(&s, "rap");
    struct cli_conn *b = ts_login(&s, "rap");
    assert_non_null(a);
    assert_non_null(b);
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[512];
    assert_int_equal(cli_conn_open(&c, "127.0.0.1", (uint16_t)s.port, &pol, 5000, err, sizeof(err)),
                     0);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", "rap", "password",
                                    "rap-password"),
                     0);
    assert_true(cli_msg_is_error(m, "rate_limited"));
    assert_true(cli_msg_retry_after_ms(m) > 0);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "whoami", NULL), 0);
    assert_true(cli_msg_is_error(m, "unauthenticated"));
    cli_msg_free(m);
    assert_int_equal(
        cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", "ed", "password", "ed-password"),
        0);
    assert_null(m->error);
    cli_msg_free(m);
    cli_conn_close(c);
    cli_conn_close(a);
    cli_conn_close(b);
    stop_clean(&s);
}

/* Logs c in as user; returns the error code, or NULL when the login succeeded. */
static const char *login_code(struct cli_conn *c, const char *user, const char *password,
                              char *code, size_t cap)
{
    struct cli_msg *m = NULL;
    assert_int_equal(
        cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", user, "password", password), 0);
    const char *rc = NULL;
    if (m->error) {
        snprintf(code, cap, "%s", cli_msg_is_error(m, "rate_limited") ? "rate_limited" : "other");
        rc = code;
    }
    cli_msg_free(m);
    return rc;
}

/* The per-user count follows logouts and closes: a place they free is taken again, and
 * a logout followed by a login as someone else counts for the new user only. */
static void test_conns_per_user_cap_frees_places(void **state)
{
    (void)state;
    static const char *const args[] = {"--max-conns-per-user", "2", NULL};
    struct ts_server s;
    assert_int_equal(ts_start_args(&s, users, MEETING, args), 0);
    struct cli_conn *a = ts_login(&s, "rap");
    struct cli_conn *b = ts_login(&s, "rap");
    assert_non_null(a);
    assert_non_null(b);
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[512], code[32];
    assert_int_equal(cli_conn_open(&c, "127.0.0.1", (uint16_t)s.port, &pol, 5000, err, sizeof(err)),
                     0);
    const char *rc = login_code(c, "rap", "rap-password", code, sizeof(code));
    assert_non_null(rc);
    assert_string_equal(rc, "rate_limited");
    /* a logs out and in as ed: one place of rap is free, and c takes it. */
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(a, &m, "auth.logout", NULL), 0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_null(login_code(a, "ed", "ed-password", code, sizeof(code)));
    assert_null(login_code(c, "rap", "rap-password", code, sizeof(code)));
    /* Full again; b closes, and a new connection may log in as rap. */
    struct cli_conn *d = NULL;
    assert_int_equal(cli_conn_open(&d, "127.0.0.1", (uint16_t)s.port, &pol, 5000, err, sizeof(err)),
                     0);
    rc = login_code(d, "rap", "rap-password", code, sizeof(code));
    assert_non_null(rc);
    assert_string_equal(rc, "rate_limited");
    cli_conn_close(b);
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) { /* the close reaches the server within a turn */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ok = login_code(d, "rap", "rap-password", code, sizeof(code)) == NULL;
    }
    assert_true(ok);
    cli_conn_close(d);
    cli_conn_close(c);
    cli_conn_close(a);
    stop_clean(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presence_flood_slow_viewer),
        cmocka_unit_test(test_broadcast_burst_slow_viewer),
        cmocka_unit_test(test_stalled_subscribers_rss),
        cmocka_unit_test(test_post_login_dripper),
        cmocka_unit_test(test_conns_per_addr_cap),
        cmocka_unit_test(test_conns_per_user_cap),
        cmocka_unit_test(test_conns_per_user_cap_frees_places),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
