/* test_srv_wire.c - the meeting methods over the wire: a real conferd on a loopback port with
 * a temporary data folder, driven with the client library. Roles, validation, if_seq, cid,
 * the final lock, unique keys, subscriptions and events, time travel, import and export,
 * and a backup taken while a client writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>

#include "cli_conn.h"
#include "cli_pack.h"
#include "db.h"
#include "proto_rpc.h"
#include "proto_schema.h"
#include "srv.h"
#include "srv_data.h"
#include "srv_hub.h"
#include "testsrv.h"
#include "testutil.h"

#define MAX_FRAME "4194304" /* room for a request carrying a text over the 1 MiB limit */
#define TEXT_MAX  (1024 * 1024)
#define WAIT_MS   10000
#define SAMPLE    "rg-iem-report-2023-06.txt"

/* Accounts: op is the operator; the meetings' rapporteur is rap. */
enum { OP, RAP, ASSOC, COUNS, ED, VIEW, OUTSIDER, SPARE, NUSERS };
static const char *const user_names[NUSERS] = {"op", "rap",  "assoc",    "couns",
                                               "ed", "view", "outsider", "spare"};

struct world {
    struct ts_server ts;
    pid_t pid;
    char data[4096];
    struct cli_conn *c[NUSERS];
    char *sample;
    size_t sample_len;
    int next_meeting;
};

static struct world W;

/* ---- the server ---- */

static int64_t now_ms(void)
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

static void print_log_tail(void)
{
    char path[4096], line[1024];
    if (W.ts.dir == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s/server.log", W.ts.dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    /* The last 40 lines. */
    static char ring[40][1024];
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        snprintf(ring[n % 40], sizeof(ring[0]), "%s", line);
        n++;
    }
    fclose(f);
    fprintf(stderr, "--- server log (last lines) ---\n");
    for (size_t i = n > 40 ? n - 40 : 0; i < n; i++) {
        fputs(ring[i % 40], stderr);
    }
}

/* Waits up to ms for pid; returns its wait status, or -1 when it is still running. */
static int wait_for(pid_t pid, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return st;
        }
        if (r < 0 && errno != EINTR) {
            return 0;
        }
        if (now_ms() > end) {
            return -1;
        }
        sleep_ms(10);
    }
}

/* Stops the server: SIGTERM, then SIGKILL if it does not exit in time. Returns its exit
 * status (0: a clean stop, no sanitizer report). */
static int server_stop(void)
{
    if (W.pid <= 0) {
        return 0;
    }
    kill(W.pid, SIGTERM);
    int st = wait_for(W.pid, 15000);
    if (st < 0) {
        kill(W.pid, SIGKILL);
        waitpid(W.pid, &st, 0);
        W.pid = 0;
        return -1;
    }
    W.pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void kill_at_exit(void)
{
    if (W.pid > 0) {
        kill(W.pid, SIGKILL);
        waitpid(W.pid, NULL, 0);
        W.pid = 0;
    }
}

static int server_start(void)
{
    char port_file[4096], log[4096];
    snprintf(port_file, sizeof(port_file), "%s/port", W.ts.dir);
    snprintf(log, sizeof(log), "%s/server.log", W.ts.dir);
    const char *conferd = getenv("CONFERD");
    if (conferd == NULL) {
        fprintf(stderr, "CONFERD must name the conferd binary\n");
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* The server dies with the test, whatever happens to the test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(conferd, conferd, "serve", "--data", W.data, "--listen", "127.0.0.1:0", "--port-file",
              port_file, "--pwhash-cost", "min", "--min-password", "8", "--max-frame", MAX_FRAME,
              (char *)NULL);
        _exit(127);
    }
    W.pid = pid;
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int port = 0;
            int got = fscanf(f, "%d", &port);
            fclose(f);
            if (got == 1 && port > 0) {
                W.ts.port = port;
                return 0;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            W.pid = 0;
            fprintf(stderr, "conferd exited at start\n");
            return -1;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "conferd did not start listening\n");
    return -1;
}

static int add_account(const char *name, bool operator)
{
    char pw[128];
    snprintf(pw, sizeof(pw), "%s-password\n", name);
    const char *args[] = {"account",
                          "add",
                          name,
                          "--password-stdin",
                          "--pwhash-cost",
                          "min",
                          "--min-password",
                          "8",
                          operator? "--operator" : NULL,
                          NULL};
    return ts_conferd(&W.ts, pw, args);
}

static struct cli_conn *login(int u)
{
    struct cli_conn *c = ts_login(&W.ts, user_names[u]);
    if (c) {
        cli_conn_set_timeout(c, WAIT_MS);
    }
    return c;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int u = 0; u < NUSERS; u++) {
        cli_conn_close(W.c[u]);
        W.c[u] = NULL;
    }
    int rc = server_stop();
    if (rc != 0) {
        fprintf(stderr, "conferd exited with status %d\n", rc);
        print_log_tail();
    }
    tu_rmtree(W.ts.dir);
    W.ts.dir = NULL;
    free(W.sample);
    W.sample = NULL;
    return rc == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    if (sodium_init() < 0) {
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_at_exit);
    W.sample = tu_read_data(SAMPLE, &W.sample_len);
    W.ts.dir = tu_tmpdir();
    if (W.sample == NULL || W.ts.dir == NULL) {
        fprintf(stderr, "cannot read %s or make a folder\n", SAMPLE);
        goto fail;
    }
    snprintf(W.data, sizeof(W.data), "%s/data", W.ts.dir);
    const char *init[] = {"init", NULL};
    if (ts_conferd(&W.ts, NULL, init) != 0) {
        fprintf(stderr, "conferd init failed\n");
        goto fail;
    }
    for (int u = 0; u < NUSERS; u++) {
        if (add_account(user_names[u], u == OP) != 0) {
            fprintf(stderr, "conferd account add %s failed\n", user_names[u]);
            goto fail;
        }
    }
    if (server_start() != 0) {
        goto fail;
    }
    for (int u = 0; u < NUSERS; u++) {
        if ((W.c[u] = login(u)) == NULL) {
            goto fail;
        }
    }
    return 0;
fail:
    print_log_tail();
    group_teardown(state);
    return -1;
}

/* ---- calls ---- */

static struct cli_msg *vcall(struct cli_conn *c, const char *method, const char *fmt, va_list ap)
{
    struct proto_buf b = {0};
    struct cli_msg *m = NULL;
    if (fmt) {
        assert_int_equal(cli_vpackf(&b, fmt, ap), 0);
    }
    int rc = cli_conn_call(c, method, b.data, b.len, &m);
    proto_buf_free(&b, 0);
    if (rc != 0) {
        print_log_tail();
        fail_msg("%s: %s (%s)", method, proto_strerror(rc), cli_conn_error(c));
    }
    return m;
}

/* Calls method with params packed from fmt; returns the response (free it). */
static struct cli_msg *call(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    return m;
}

static const char *code_of(const struct cli_msg *m)
{
    return m->error ? m->code : "ok";
}

/* Calls and checks that the answer is a success; returns it (free it). */
static struct cli_msg *call_ok(struct cli_conn *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    if (m->error) {
        fail_msg("%s: %s: %s", method, m->code, m->message);
    }
    return m;
}

/* Calls and checks the answer's code ("ok" or an error code). */
static void call_expect(struct cli_conn *c, const char *want, const char *method, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct cli_msg *m = vcall(c, method, fmt, ap);
    va_end(ap);
    if (strcmp(code_of(m), want) != 0) {
        fail_msg("%s: want %s, got %s (%s)", method, want, code_of(m),
                 m->message ? m->message : "");
    }
    cli_msg_free(m);
}

/* ---- reading results ---- */

static const msgpack_object *mget(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_mp_map_get(map, key);
    if (v == NULL) {
        fail_msg("no key %s", key);
    }
    return v;
}

static int64_t mint(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = mget(map, key);
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return (int64_t)v->via.u64;
    }
    if (v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        fail_msg("%s is not an integer", key);
    }
    return v->via.i64;
}

static bool mstr_is(const msgpack_object *v, const char *want)
{
    if (want == NULL) {
        return v->type == MSGPACK_OBJECT_NIL;
    }
    return v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(want) &&
           memcmp(v->via.str.ptr, want, v->via.str.size) == 0;
}

/* Checks a string (or nil when want is NULL) at map[key]. */
static void assert_mstr(const msgpack_object *map, const char *key, const char *want)
{
    const msgpack_object *v = mget(map, key);
    if (!mstr_is(v, want)) {
        if (v->type == MSGPACK_OBJECT_STR) {
            fail_msg("%s: want %s, got \"%.*s\"", key, want ? want : "nil", (int)v->via.str.size,
                     v->via.str.ptr);
        }
        fail_msg("%s: want %s, got type %d", key, want ? want : "nil", (int)v->type);
    }
}

/* True when the string object v contains s. */
static bool mstr_has(const msgpack_object *v, const char *s)
{
    size_t n = strlen(s);
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size < n) {
        return false;
    }
    for (size_t i = 0; i + n <= v->via.str.size; i++) {
        if (memcmp(v->via.str.ptr + i, s, n) == 0) {
            return true;
        }
    }
    return false;
}

/* The object of a list with the given id, or NULL. */
static const msgpack_object *find_id(const msgpack_object *list, int64_t id)
{
    assert_int_equal(list->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        if (mint(&list->via.array.ptr[i], "id") == id) {
            return &list->via.array.ptr[i];
        }
    }
    return NULL;
}

/* ---- meetings and objects ---- */

/* Makes a meeting (op creates it with rap as rapporteur; rap adds assoc, couns, ed, view)
 * with a fresh id "<prefix>-N" written to id. */
static void new_meeting_with(const char *prefix, char id[64], const char *action_prefix)
{
    snprintf(id, 64, "%s-%d", prefix, ++W.next_meeting);
    struct cli_msg *m = NULL;
    if (action_prefix) {
        m = call_ok(W.c[OP], "meeting.create", "{s:s, s:s, s:s, s:s}", "id", id, "rapporteur",
                    "rap", "title", "A test meeting", "action_prefix", action_prefix);
    } else {
        m = call_ok(W.c[OP], "meeting.create", "{s:s, s:s}", "id", id, "rapporteur", "rap");
    }
    assert_true(mstr_is(mget(m->result, "id"), id));
    assert_int_equal(mint(m->result, "seq"), 1);
    cli_msg_free(m);
    static const struct {
        int u;
        const char *role;
    } members[] = {{ASSOC, "associate"}, {COUNS, "counsellor"}, {ED, "editor"}, {VIEW, "viewer"}};
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        call_expect(W.c[RAP], "ok", "member.set", "{s:s, s:s, s:s}", "meeting", id, "user",
                    user_names[members[i].u], "role", members[i].role);
    }
}

static void new_meeting(const char *prefix, char id[64])
{
    new_meeting_with(prefix, id, "RG-T");
}

/* Creates an item; returns its id (and its seq in *seq when not NULL). */
static int64_t new_item(struct cli_conn *c, const char *meeting, const char *number,
                        const char *title, int64_t *seq)
{
    struct cli_msg *m = call_ok(c, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", meeting,
                                "type", "item", "fields", "number", number, "title", title);
    int64_t id = mint(m->result, "id");
    if (seq) {
        *seq = mint(m->result, "seq");
    }
    cli_msg_free(m);
    return id;
}

static int64_t meeting_seq(struct cli_conn *c, const char *meeting)
{
    struct cli_msg *m = call_ok(c, "meeting.get", "{s:s}", "meeting", meeting);
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    return seq;
}

/* ---- the role matrix ---- */

enum { ROW_VIEWER, ROW_EDITOR, ROW_ASSOC, ROW_COUNS, ROW_RAP, ROW_OUTSIDER, ROW_OP, NROWS };
static const int row_user[NROWS] = {VIEW, ED, ASSOC, COUNS, RAP, OUTSIDER, OP};
static const char *const row_name[NROWS] = {"viewer",
                                            "editor",
                                            "associate",
                                            "counsellor",
                                            "rapporteur",
                                            "non-member",
                                            "operator without role"};

/* One letter per row (viewer, editor, associate, counsellor, rapporteur, non-member,
 * operator): o ok, f forbidden, n not_found, b bad_request. In order: later cases rely on
 * earlier ones (the subscription, the item still there). */
static const struct {
    const char *what;
    const char *want;
} matrix[] = {
    {"meeting.get", "ooooonn"},
    {"meeting.get at 1", "ooooonn"},
    {"meeting.subscribe", "ooooonn"},
    {"presence.set", "ooooonn"},
    {"presence.list", "ooooonn"},
    {"meeting.unsubscribe", "ooooonn"},
    {"agenda.get", "ooooonn"},
    {"member.list", "ooooonn"},
    {"history.list", "ooooonn"},
    {"audit.verify", "ooooonn"},
    {"report.export", "ooooonn"},
    {"obj.create item", "ffooonn"},
    {"obj.update item", "ffooonn"},
    {"obj.update unknown item", "ffnnnnn"},
    {"obj.update meeting", "ffffonn"},
    {"obj.create meeting", "bbbbbbb"},
    {"obj.delete meeting", "bbbbbbb"},
    {"text.edit item.body", "foooonn"},
    {"text.edit meeting.abstract", "ffooonn"},
    {"obj.delete item", "ffooonn"},
    {"member.set", "ffffonn"},
    {"member.remove", "ffffonn"},
    {"report.import", "ffffonn"},
    {"meeting.get of no meeting", "nnnnnnn"},
    {"meeting.create", "ffffffo"},
};

static struct cli_msg *matrix_call(size_t k, int row, struct cli_conn *c, const char *mid,
                                   int64_t item)
{
    const char *what = matrix[k].what;
    char newid[64];
    if (strcmp(what, "meeting.get") == 0) {
        return call(c, "meeting.get", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "meeting.get at 1") == 0) {
        return call(c, "meeting.get", "{s:s, s:i}", "meeting", mid, "at", 1);
    }
    if (strcmp(what, "meeting.subscribe") == 0) {
        return call(c, "meeting.subscribe", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "presence.set") == 0) {
        return call(c, "presence.set", "{s:s, s:{s:s, s:I, s:s}}", "meeting", mid, "where", "type",
                    "item", "id", item, "field", "body");
    }
    if (strcmp(what, "presence.list") == 0) {
        return call(c, "presence.list", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "meeting.unsubscribe") == 0) {
        return call(c, "meeting.unsubscribe", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "agenda.get") == 0) {
        return call(c, "agenda.get", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "member.list") == 0) {
        return call(c, "member.list", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "history.list") == 0) {
        return call(c, "history.list", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "audit.verify") == 0) {
        return call(c, "audit.verify", "{s:s}", "meeting", mid);
    }
    if (strcmp(what, "report.export") == 0) {
        return call(c, "report.export", "{s:s, s:s}", "meeting", mid, "format", "text");
    }
    if (strcmp(what, "obj.create item") == 0) {
        return call(c, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", mid, "type", "item",
                    "fields", "title", "by the row's user");
    }
    if (strcmp(what, "obj.update item") == 0) {
        return call(c, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid, "type", "item",
                    "id", item, "fields", "title", "changed");
    }
    if (strcmp(what, "obj.update unknown item") == 0) {
        return call(c, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid, "type", "item",
                    "id", (int64_t)999999999, "fields", "title", "changed");
    }
    if (strcmp(what, "obj.update meeting") == 0) {
        return call(c, "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid, "type", "meeting",
                    "id", mid, "fields", "venue", "Geneva");
    }
    if (strcmp(what, "obj.create meeting") == 0) {
        return call(c, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", mid, "type", "meeting",
                    "fields", "title", "x");
    }
    if (strcmp(what, "obj.delete meeting") == 0) {
        return call(c, "obj.delete", "{s:s, s:s, s:s}", "meeting", mid, "type", "meeting", "id",
                    mid);
    }
    if (strcmp(what, "text.edit item.body") == 0) {
        int64_t base = meeting_seq(W.c[RAP], mid);
        return call(c, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", mid, "type",
                    "item", "id", item, "field", "body", "base", base, "op", "Edited. ");
    }
    if (strcmp(what, "text.edit meeting.abstract") == 0) {
        int64_t base = meeting_seq(W.c[RAP], mid);
        return call(c, "text.edit", "{s:s, s:s, s:s, s:s, s:I, s:[s]}", "meeting", mid, "type",
                    "meeting", "id", mid, "field", "abstract", "base", base, "op", "Abstract. ");
    }
    if (strcmp(what, "obj.delete item") == 0) {
        return call(c, "obj.delete", "{s:s, s:s, s:I}", "meeting", mid, "type", "item", "id", item);
    }
    if (strcmp(what, "member.set") == 0) {
        return call(c, "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user", "spare", "role",
                    "editor");
    }
    if (strcmp(what, "member.remove") == 0) {
        return call(c, "member.remove", "{s:s, s:s}", "meeting", mid, "user", "spare");
    }
    if (strcmp(what, "report.import") == 0) {
        return call(c, "report.import", "{s:s, s:S, s:s}", "meeting", mid, "text", W.sample,
                    W.sample_len, "mode", "merge");
    }
    if (strcmp(what, "meeting.get of no meeting") == 0) {
        return call(c, "meeting.get", "{s:s}", "meeting", "no-such-meeting");
    }
    if (strcmp(what, "meeting.create") == 0) {
        snprintf(newid, sizeof(newid), "made-by-row-%d-%d", row, ++W.next_meeting);
        return call(c, "meeting.create", "{s:s, s:s}", "id", newid, "rapporteur", "rap");
    }
    fail_msg("unknown matrix case %s", what);
    return NULL;
}

static const char *letter_code(char l)
{
    switch (l) {
    case 'o':
        return "ok";
    case 'f':
        return "forbidden";
    case 'n':
        return "not_found";
    default:
        return "bad_request";
    }
}

static void test_role_matrix(void **state)
{
    (void)state;
    int failures = 0;
    for (int row = 0; row < NROWS; row++) {
        char mid[64];
        new_meeting("matrix", mid);
        call_expect(W.c[RAP], "ok", "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user",
                    "spare", "role", "viewer");
        int64_t item = new_item(W.c[RAP], mid, "1", "Opening", NULL);
        struct cli_conn *c = W.c[row_user[row]];
        for (size_t k = 0; k < sizeof(matrix) / sizeof(matrix[0]); k++) {
            assert_int_equal(strlen(matrix[k].want), NROWS);
            const char *want = letter_code(matrix[k].want[row]);
            struct cli_msg *m = matrix_call(k, row, c, mid, item);
            if (strcmp(code_of(m), want) != 0) {
                print_message("%s by %s: want %s, got %s (%s)\n", matrix[k].what, row_name[row],
                              want, code_of(m), m->message ? m->message : "");
                failures++;
            }
            cli_msg_free(m);
        }
        /* Nothing was left queued for the row's connection: it unsubscribed. */
        assert_int_equal(cli_conn_pending(c), 0);
    }
    assert_int_equal(failures, 0);
}

/* meeting.create: the operator's, with its own checks. */
static void test_meeting_create(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("create", mid);
    call_expect(W.c[OP], "conflict", "meeting.create", "{s:s, s:s}", "id", mid, "rapporteur",
                "rap");
    call_expect(W.c[OP], "bad_request", "meeting.create", "{s:s, s:s}", "id", "Bad Id",
                "rapporteur", "rap");
    call_expect(W.c[OP], "bad_request", "meeting.create", "{s:s, s:s}", "id", "no-rap-account",
                "rapporteur", "nobody");
    call_expect(W.c[OP], "bad_request", "meeting.create", "{s:s}", "id", "no-rap-given");
    /* The meeting's fields are checked as in obj.update. */
    struct cli_msg *m = call(W.c[OP], "meeting.create", "{s:s, s:s, s:s}", "id", "bad-date",
                             "rapporteur", "rap", "start", "2023-02-30");
    assert_string_equal(code_of(m), "bad_request");
    assert_true(strncmp(m->message, "start:", 6) == 0);
    cli_msg_free(m);
    /* Bad parameters are answered before the operator check. */
    call_expect(W.c[RAP], "bad_request", "meeting.create", "{s:s, s:s}", "id", "Bad Id",
                "rapporteur", "rap");
    /* A new meeting: seq 1, its rapporteur a member, its fields as given. */
    m = call_ok(W.c[OP], "meeting.create", "{s:s, s:s, s:s, s:I, s:s}", "id", "created-full",
                "rapporteur", "rap", "title", "Full", "deadline_days", (int64_t)10, "tz",
                "Europe/Zurich");
    cli_msg_free(m);
    m = call_ok(W.c[RAP], "meeting.get", "{s:s}", "meeting", "created-full");
    assert_int_equal(mint(m->result, "seq"), 1);
    const msgpack_object *mt = mget(m->result, "meeting");
    assert_mstr(mt, "id", "created-full");
    assert_mstr(mt, "title", "Full");
    assert_mstr(mt, "tz", "Europe/Zurich");
    assert_mstr(mt, "status", "draft");
    assert_mstr(mt, "abstract", "");
    assert_int_equal(mint(mt, "deadline_days"), 10);
    assert_int_equal(mint(mt, "seq"), 1);
    cli_msg_free(m);
    m = call_ok(W.c[RAP], "member.list", "{s:s}", "meeting", "created-full");
    assert_int_equal(m->result->via.array.size, 1);
    assert_mstr(&m->result->via.array.ptr[0], "user", "rap");
    assert_mstr(&m->result->via.array.ptr[0], "role", "rapporteur");
    cli_msg_free(m);
    /* The operator has no role in it. */
    call_expect(W.c[OP], "not_found", "member.list", "{s:s}", "meeting", "created-full");
}

/* ---- validation ---- */

/* A bad value to pack: a string, an integer, a float, or raw msgpack. */
enum bv_kind { BV_STR, BV_INT, BV_FLOAT };
struct badval {
    enum bv_kind kind;
    const char *s; /* BV_STR; NULL: a string of n bytes 'x' */
    size_t n;
    int64_t i;
    double d;
    const char *why;
};

static void pack_badval(const struct badval *b, struct proto_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    if (b->kind == BV_INT) {
        msgpack_pack_int64(&pk, b->i);
    } else if (b->kind == BV_FLOAT) {
        msgpack_pack_double(&pk, b->d);
    } else if (b->s) {
        proto_pack_cstr(&pk, b->s);
    } else {
        char *s = malloc(b->n);
        assert_non_null(s);
        memset(s, 'x', b->n);
        proto_pack_str(&pk, s, b->n);
        free(s);
    }
}

/* The bad values of a field, by its kind. */
static size_t bad_values(const struct proto_field *f, struct badval *out)
{
    size_t n = 0;
    switch (f->kind) {
    case PROTO_F_STR:
        out[n++] =
            (struct badval){.kind = BV_STR, .n = (f->max ? f->max : 1024) + 1, .why = "too long"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "two\nlines", .why = "two lines"};
        out[n++] = (struct badval){.kind = BV_INT, .i = 5, .why = "an integer"};
        break;
    case PROTO_F_TEXT:
        out[n++] = (struct badval){.kind = BV_INT, .i = 5, .why = "an integer"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "nul\xff", .why = "not UTF-8"};
        break;
    case PROTO_F_INT:
        out[n++] = (struct badval){.kind = BV_FLOAT, .d = 3.0, .why = "3.0"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "7", .why = "a string"};
        out[n++] = (struct badval){.kind = BV_INT, .i = f->max_i + 1, .why = "above max"};
        out[n++] = (struct badval){.kind = BV_INT, .i = f->min_i - 1, .why = "below min"};
        break;
    case PROTO_F_DATE:
        out[n++] = (struct badval){.kind = BV_STR, .s = "2023-02-30", .why = "no such day"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "2023-6-1", .why = "layout"};
        break;
    case PROTO_F_TIME:
        out[n++] = (struct badval){.kind = BV_STR, .s = "24:00", .why = "hour 24"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "12:60", .why = "minute 60"};
        break;
    case PROTO_F_ENUM:
        out[n++] = (struct badval){.kind = BV_STR, .s = "bogus", .why = "not in the enum"};
        break;
    case PROTO_F_ITEMREF:
        out[n++] = (struct badval){.kind = BV_FLOAT, .d = 3.0, .why = "3.0"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "1", .why = "a string"};
        out[n++] = (struct badval){.kind = BV_INT, .i = 987654321, .why = "no such item"};
        break;
    case PROTO_F_TZ:
        out[n++] = (struct badval){.kind = BV_STR, .s = "Mars/Olympus_Mons", .why = "no zone"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "../etc/passwd", .why = "a path"};
        break;
    case PROTO_F_NUMBER:
        out[n++] = (struct badval){.kind = BV_STR, .s = "4..1", .why = "double dot"};
        out[n++] = (struct badval){.kind = BV_STR, .s = "4a", .why = "a letter"};
        break;
    case PROTO_F_COMPUTED:
        out[n++] = (struct badval){.kind = BV_STR, .s = "2023-07-20", .why = "read-only"};
        break;
    }
    return n;
}

/* Sends obj.create (id 0) or obj.update (id != 0; the meeting's own id for type meeting)
 * with fields {name: value}; checks bad_request whose message names the field. */
static void expect_bad_field(const char *mid, enum proto_type t, int64_t id, const char *name,
                             const struct proto_buf *val, const char *why, int *failures)
{
    const char *type = proto_type_info(t)->name;
    struct cli_msg *m = NULL;
    if (t == PROTO_T_MEETING) {
        m = call(W.c[RAP], "obj.update", "{s:s, s:s, s:s, s:{s:r}}", "meeting", mid, "type", type,
                 "id", mid, "fields", name, val->data, val->len);
    } else if (id == 0) {
        m = call(W.c[RAP], "obj.create", "{s:s, s:s, s:{s:r}}", "meeting", mid, "type", type,
                 "fields", name, val->data, val->len);
    } else {
        m = call(W.c[RAP], "obj.update", "{s:s, s:s, s:I, s:{s:r}}", "meeting", mid, "type", type,
                 "id", id, "fields", name, val->data, val->len);
    }
    size_t nl = strlen(name);
    bool ok = strcmp(code_of(m), "bad_request") == 0 && m->message &&
              strncmp(m->message, name, nl) == 0 && m->message[nl] == ':';
    if (!ok) {
        print_message("%s %s.%s (%s): want bad_request naming the field, got %s (%s)\n",
                      t == PROTO_T_MEETING || id ? "update" : "create", type, name, why, code_of(m),
                      m->message ? m->message : "");
        (*failures)++;
    }
    cli_msg_free(m);
}

static void test_validation(void **state)
{
    (void)state;
    char mid[64], other[64];
    int failures = 0;
    new_meeting("valid", mid);
    new_meeting("valid-other", other);
    int64_t other_item = new_item(W.c[RAP], other, "1", "Elsewhere", NULL);
    int64_t seq_before = meeting_seq(W.c[RAP], mid);

    /* One object of every type to update. */
    int64_t ids[PROTO_T_COUNT] = {0};
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        const char *type = proto_type_info((enum proto_type)t)->name;
        /* fields is required, and every field is optional on create. */
        struct cli_msg *m = call_ok(W.c[RAP], "obj.create", "{s:s, s:s, s:{}}", "meeting", mid,
                                    "type", type, "fields");
        ids[t] = mint(m->result, "id");
        cli_msg_free(m);
    }
    int64_t seq_objs = meeting_seq(W.c[RAP], mid);
    assert_int_equal(seq_objs, seq_before + PROTO_T_COUNT - 1);

    for (int t = 0; t < PROTO_T_COUNT; t++) {
        const struct proto_typeinfo *ti = proto_type_info((enum proto_type)t);
        for (size_t k = 0; k < ti->nfields; k++) {
            struct badval bv[8];
            size_t n = bad_values(&ti->fields[k], bv);
            assert_true(n > 0);
            for (size_t j = 0; j < n; j++) {
                struct proto_buf val = {0};
                pack_badval(&bv[j], &val);
                if (t != PROTO_T_MEETING) {
                    expect_bad_field(mid, (enum proto_type)t, 0, ti->fields[k].name, &val,
                                     bv[j].why, &failures);
                }
                expect_bad_field(mid, (enum proto_type)t, ids[t], ti->fields[k].name, &val,
                                 bv[j].why, &failures);
                proto_buf_free(&val, 0);
            }
        }
        /* Unknown and read-only names. */
        static const char *const names[] = {"colour", "id", "seq", "deadline"};
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            struct proto_buf val = {0};
            struct badval b = {.kind = BV_STR, .s = "2023-07-20"};
            pack_badval(&b, &val);
            if (t != PROTO_T_MEETING) {
                expect_bad_field(mid, (enum proto_type)t, 0, names[k], &val, "name", &failures);
            }
            expect_bad_field(mid, (enum proto_type)t, ids[t], names[k], &val, "name", &failures);
            proto_buf_free(&val, 0);
        }
        /* A reference to another meeting's item. */
        for (size_t k = 0; k < ti->nfields; k++) {
            if (ti->fields[k].kind != PROTO_F_ITEMREF) {
                continue;
            }
            struct proto_buf val = {0};
            struct badval b = {.kind = BV_INT, .i = other_item};
            pack_badval(&b, &val);
            expect_bad_field(mid, (enum proto_type)t, 0, ti->fields[k].name, &val,
                             "another meeting's item", &failures);
            expect_bad_field(mid, (enum proto_type)t, ids[t], ti->fields[k].name, &val,
                             "another meeting's item", &failures);
            proto_buf_free(&val, 0);
        }
    }
    assert_int_equal(failures, 0);
    /* None of it changed anything. */
    assert_int_equal(meeting_seq(W.c[RAP], mid), seq_objs);

    /* Ids of another meeting are unknown here. */
    call_expect(W.c[RAP], "not_found", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid,
                "type", "item", "id", other_item, "fields", "title", "x");
    call_expect(W.c[RAP], "not_found", "obj.delete", "{s:s, s:s, s:I}", "meeting", mid, "type",
                "item", "id", other_item);
    call_expect(W.c[RAP], "not_found", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid,
                "type", "meeting", "id", other, "fields", "title", "x");
    /* The same id with the wrong type. */
    call_expect(W.c[RAP], "not_found", "obj.delete", "{s:s, s:s, s:I}", "meeting", mid, "type",
                "doc", "id", ids[PROTO_T_ITEM]);

    /* Malformed parameters. */
    call_expect(W.c[RAP], "bad_request", "obj.create", "{s:s, s:s}", "meeting", mid, "type",
                "gadget");
    call_expect(W.c[RAP], "bad_request", "obj.create", "{s:s, s:s, s:s}", "meeting", mid, "type",
                "item", "fields", "title");
    call_expect(W.c[RAP], "bad_request", "obj.update", "{s:s, s:s, s:{s:s}}", "meeting", mid,
                "type", "item", "fields", "title", "x");
    call_expect(W.c[RAP], "bad_request", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid,
                "type", "item", "id", "1", "fields", "title", "x");
    call_expect(W.c[RAP], "bad_request", "obj.create", "{s:s, s:{}}", "type", "item", "fields");
    call_expect(W.c[RAP], "bad_request", "meeting.get", "{s:I}", "meeting", (int64_t)1);
    assert_int_equal(meeting_seq(W.c[RAP], mid), seq_objs);

    /* Values at their limits are fine. */
    struct badval edge = {.kind = BV_STR, .n = 500};
    struct proto_buf v500 = {0};
    pack_badval(&edge, &v500);
    struct cli_msg *m =
        call_ok(W.c[RAP], "obj.update", "{s:s, s:s, s:I, s:{s:r, s:s, s:s}}", "meeting", mid,
                "type", "session", "id", ids[PROTO_T_SESSION], "fields", "title", v500.data,
                v500.len, "date", "2024-02-29", "end", "23:59");
    cli_msg_free(m);
    proto_buf_free(&v500, 0);
    m = call_ok(W.c[RAP], "obj.update", "{s:s, s:s, s:s, s:{s:I, s:s}}", "meeting", mid, "type",
                "meeting", "id", mid, "fields", "deadline_days", (int64_t)0, "tz", "UTC");
    cli_msg_free(m);
}

/* A text over the limit is too_large; at the limit it fits (UTF-8 bytes, not characters). */
static void test_too_large(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("large", mid);
    size_t n = TEXT_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i + 1 < n; i += 2) {
        big[i] = (char)0xc3; /* é: two bytes, one character */
        big[i + 1] = (char)0xa9;
    }
    big[n - 1] = 'x';

    struct cli_msg *m = call(W.c[RAP], "obj.create", "{s:s, s:s, s:{s:S}}", "meeting", mid, "type",
                             "item", "fields", "body", big, n);
    assert_string_equal(code_of(m), "too_large");
    assert_true(strncmp(m->message, "body:", 5) == 0);
    cli_msg_free(m);

    m = call_ok(W.c[RAP], "obj.create", "{s:s, s:s, s:{s:S}}", "meeting", mid, "type", "action",
                "fields", "text", big, n - 1);
    int64_t action = mint(m->result, "id");
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    m = call(W.c[RAP], "obj.update", "{s:s, s:s, s:I, s:I, s:{s:S}}", "meeting", mid, "type",
             "action", "id", action, "if_seq", seq, "fields", "text", big, n);
    assert_string_equal(code_of(m), "too_large");
    cli_msg_free(m);
    m = call(W.c[RAP], "obj.update", "{s:s, s:s, s:s, s:I, s:{s:S}}", "meeting", mid, "type",
             "meeting", "id", mid, "if_seq", (int64_t)1, "fields", "abstract", big, n);
    assert_string_equal(code_of(m), "too_large");
    cli_msg_free(m);
    /* An edit that would pass the limit. */
    m = call(W.c[RAP], "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", mid, "type",
             "action", "id", action, "field", "text", "base", seq, "op", "y");
    assert_string_equal(code_of(m), "too_large");
    cli_msg_free(m);
    assert_int_equal(meeting_seq(W.c[RAP], mid), seq);
    free(big);
}

/* ---- if_seq ---- */

static void test_if_seq(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("ifseq", mid);
    int64_t s1 = 0;
    int64_t item = new_item(W.c[ASSOC], mid, "1", "First", &s1);
    struct cli_msg *m =
        call_ok(W.c[ASSOC], "obj.update", "{s:s, s:s, s:I, s:I, s:{s:s}}", "meeting", mid, "type",
                "item", "id", item, "if_seq", s1, "fields", "title", "Second");
    int64_t s2 = mint(m->result, "seq");
    assert_true(s2 > s1);
    cli_msg_free(m);

    /* A stale if_seq: conflict, with the object's seq. */
    m = call(W.c[COUNS], "obj.update", "{s:s, s:s, s:I, s:I, s:{s:s}}", "meeting", mid, "type",
             "item", "id", item, "if_seq", s1, "fields", "title", "Lost");
    assert_string_equal(code_of(m), "conflict");
    assert_non_null(m->data);
    assert_int_equal(mint(m->data, "seq"), s2);
    cli_msg_free(m);
    m = call(W.c[COUNS], "obj.delete", "{s:s, s:s, s:I, s:I}", "meeting", mid, "type", "item", "id",
             item, "if_seq", s1);
    assert_string_equal(code_of(m), "conflict");
    assert_int_equal(mint(m->data, "seq"), s2);
    cli_msg_free(m);
    /* Another object's change does not move this one's seq. */
    new_item(W.c[ASSOC], mid, "2", "Other", NULL);
    m = call_ok(W.c[COUNS], "meeting.get", "{s:s}", "meeting", mid);
    assert_int_equal(mint(find_id(mget(m->result, "items"), item), "seq"), s2);
    assert_string_equal(code_of(m), "ok");
    cli_msg_free(m);

    /* A text replaced through obj.update needs if_seq. */
    m = call(W.c[COUNS], "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid, "type", "item",
             "id", item, "fields", "body", "Replaced");
    assert_string_equal(code_of(m), "bad_request");
    assert_true(strncmp(m->message, "body:", 5) == 0);
    cli_msg_free(m);
    m = call_ok(W.c[COUNS], "obj.update", "{s:s, s:s, s:I, s:I, s:{s:s}}", "meeting", mid, "type",
                "item", "id", item, "if_seq", s2, "fields", "body", "Replaced");
    int64_t s3 = mint(m->result, "seq");
    cli_msg_free(m);
    /* An edit made against the text before the replacement transforms over it. */
    m = call_ok(W.c[ED], "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", mid, "type",
                "item", "id", item, "field", "body", "base", s2, "op", "Typed. ");
    cli_msg_free(m);
    m = call_ok(W.c[ED], "meeting.get", "{s:s}", "meeting", mid);
    const msgpack_object *it = find_id(mget(m->result, "items"), item);
    assert_mstr(it, "title", "Second");
    assert_mstr(it, "body", "Typed. Replaced");
    cli_msg_free(m);

    /* The meeting's own seq for if_seq. */
    m = call_ok(W.c[RAP], "meeting.get", "{s:s}", "meeting", mid);
    int64_t ms = mint(mget(m->result, "meeting"), "seq");
    cli_msg_free(m);
    call_expect(W.c[RAP], "conflict", "obj.update", "{s:s, s:s, s:s, s:I, s:{s:s}}", "meeting", mid,
                "type", "meeting", "id", mid, "if_seq", ms - 1, "fields", "title", "x");
    call_expect(W.c[RAP], "ok", "obj.update", "{s:s, s:s, s:s, s:I, s:{s:s}}", "meeting", mid,
                "type", "meeting", "id", mid, "if_seq", ms, "fields", "title", "x");
    /* if_seq must be an integer (3.0 is not). */
    call_expect(W.c[COUNS], "bad_request", "obj.update", "{s:s, s:s, s:I, s:r, s:{s:s}}", "meeting",
                mid, "type", "item", "id", item, "if_seq", "\xcb\x40\x08\0\0\0\0\0\0", (size_t)9,
                "fields", "title", "x");
    call_expect(W.c[COUNS], "ok", "obj.delete", "{s:s, s:s, s:I, s:I}", "meeting", mid, "type",
                "item", "id", item, "if_seq", s3 + 1);
}

/* ---- cid ---- */

static size_t history_count_cid(struct cli_conn *c, const char *mid, const char *cid)
{
    struct cli_msg *m = call_ok(c, "history.list", "{s:s, s:i}", "meeting", mid, "limit", 1000);
    size_t n = 0;
    for (uint32_t i = 0; i < m->result->via.array.size; i++) {
        const msgpack_object *e = proto_mp_map_get(&m->result->via.array.ptr[i], "cid");
        n += e && mstr_is(e, cid);
    }
    cli_msg_free(m);
    return n;
}

static void test_cid(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("cid", mid);
    struct cli_conn *sub = login(VIEW);
    assert_non_null(sub);
    struct cli_msg *m = call_ok(sub, "meeting.subscribe", "{s:s}", "meeting", mid);
    cli_msg_free(m);

    m = call_ok(W.c[ASSOC], "obj.create", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid, "type",
                "item", "cid", "k1", "fields", "title", "Once");
    int64_t id = mint(m->result, "id"), seq = mint(m->result, "seq");
    cli_msg_free(m);
    /* Repeated, even with other parameters: the first result, nothing applied. */
    m = call_ok(W.c[ASSOC], "obj.create", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid, "type", "doc",
                "cid", "k1", "fields", "ref", "TSAG-C1");
    assert_int_equal(mint(m->result, "id"), id);
    assert_int_equal(mint(m->result, "seq"), seq);
    assert_int_equal(m->result->via.map.size, 2);
    cli_msg_free(m);
    assert_int_equal(meeting_seq(W.c[ASSOC], mid), seq);
    assert_int_equal(history_count_cid(W.c[ASSOC], mid, "k1"), 1);

    /* Two requests with one cid in flight at once (the first not yet durable). */
    uint32_t a = 0, b = 0;
    struct cli_msg *ra = NULL, *rb = NULL;
    assert_int_equal(cli_conn_sendf(W.c[ASSOC], &a, "obj.create", "{s:s, s:s, s:s, s:{s:s}}",
                                    "meeting", mid, "type", "item", "cid", "k2", "fields", "title",
                                    "Twice sent"),
                     0);
    assert_int_equal(cli_conn_sendf(W.c[ASSOC], &b, "obj.create", "{s:s, s:s, s:s, s:{s:s}}",
                                    "meeting", mid, "type", "item", "cid", "k2", "fields", "title",
                                    "Twice sent"),
                     0);
    assert_int_equal(cli_conn_wait(W.c[ASSOC], a, WAIT_MS, &ra), 0);
    assert_int_equal(cli_conn_wait(W.c[ASSOC], b, WAIT_MS, &rb), 0);
    assert_null(ra->error);
    assert_null(rb->error);
    assert_int_equal(mint(ra->result, "id"), mint(rb->result, "id"));
    assert_int_equal(mint(ra->result, "seq"), mint(rb->result, "seq"));
    int64_t seq2 = mint(ra->result, "seq");
    cli_msg_free(ra);
    cli_msg_free(rb);
    assert_int_equal(history_count_cid(W.c[ASSOC], mid, "k2"), 1);

    /* Updates, deletes and member changes: the first {seq}. */
    m = call_ok(W.c[ASSOC], "obj.update", "{s:s, s:s, s:I, s:s, s:{s:s}}", "meeting", mid, "type",
                "item", "id", id, "cid", "k3", "fields", "title", "Updated");
    int64_t seq3 = mint(m->result, "seq");
    cli_msg_free(m);
    m = call_ok(W.c[ASSOC], "obj.update", "{s:s, s:s, s:I, s:s, s:{s:s}}", "meeting", mid, "type",
                "item", "id", id, "cid", "k3", "fields", "title", "Updated again");
    assert_int_equal(mint(m->result, "seq"), seq3);
    assert_int_equal(m->result->via.map.size, 1);
    cli_msg_free(m);
    m = call_ok(W.c[RAP], "member.set", "{s:s, s:s, s:s, s:s}", "meeting", mid, "user", "spare",
                "role", "viewer", "cid", "k3");
    int64_t seq4 = mint(m->result, "seq"); /* another user's k3 is another change */
    assert_true(seq4 > seq3);
    cli_msg_free(m);
    m = call_ok(W.c[RAP], "member.set", "{s:s, s:s, s:s, s:s}", "meeting", mid, "user", "spare",
                "role", "editor", "cid", "k3");
    assert_int_equal(mint(m->result, "seq"), seq4);
    cli_msg_free(m);
    m = call_ok(W.c[RAP], "member.list", "{s:s}", "meeting", mid);
    bool found = false;
    for (uint32_t i = 0; i < m->result->via.array.size; i++) {
        const msgpack_object *e = &m->result->via.array.ptr[i];
        if (mstr_is(mget(e, "user"), "spare")) {
            assert_mstr(e, "role", "viewer");
            found = true;
        }
    }
    assert_true(found);
    cli_msg_free(m);
    m = call_ok(W.c[ASSOC], "obj.delete", "{s:s, s:s, s:I, s:s}", "meeting", mid, "type", "item",
                "id", id, "cid", "k4");
    int64_t seq5 = mint(m->result, "seq");
    cli_msg_free(m);
    m = call_ok(W.c[ASSOC], "obj.delete", "{s:s, s:s, s:I, s:s}", "meeting", mid, "type", "item",
                "id", id, "cid", "k4");
    assert_int_equal(mint(m->result, "seq"), seq5);
    cli_msg_free(m);
    assert_int_equal(meeting_seq(W.c[ASSOC], mid), seq5);

    /* Bad cids. */
    char longcid[66];
    memset(longcid, 'c', 65);
    longcid[65] = '\0';
    call_expect(W.c[ASSOC], "bad_request", "obj.create", "{s:s, s:s, s:s, s:{}}", "meeting", mid,
                "type", "item", "cid", longcid, "fields");
    call_expect(W.c[ASSOC], "bad_request", "obj.create", "{s:s, s:s, s:s, s:{}}", "meeting", mid,
                "type", "item", "cid", "", "fields");
    call_expect(W.c[ASSOC], "bad_request", "obj.create", "{s:s, s:s, s:i, s:{}}", "meeting", mid,
                "type", "item", "cid", 7, "fields");

    /* Events carry the cid; the subscriber saw every change once. */
    int64_t want[] = {seq, seq2, seq3, seq4, seq5};
    size_t w = 0;
    for (;;) {
        struct cli_msg *ev = NULL;
        if (w == sizeof(want) / sizeof(want[0])) {
            break;
        }
        assert_int_equal(cli_conn_next(sub, WAIT_MS, &ev), 0);
        assert_int_equal(ev->kind, PROTO_RPC_NOTIFY);
        assert_string_equal(ev->method, "event");
        int64_t s = mint(ev->params, "seq");
        assert_true(s <= want[w]);
        if (s == want[w]) {
            const char *cids[] = {"k1", "k2", "k3", "k3", "k4"};
            assert_mstr(ev->params, "cid", cids[w]);
            w++;
        }
        cli_msg_free(ev);
    }
    cli_conn_close(sub);
}

/* ---- the final lock ---- */

static void test_locked(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("locked", mid);
    int64_t item = new_item(W.c[ASSOC], mid, "1", "Before", NULL);
    int64_t s_item = meeting_seq(W.c[RAP], mid);
    call_expect(W.c[RAP], "ok", "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user", "spare",
                "role", "viewer");
    /* Only the rapporteur may make it final. */
    call_expect(W.c[ASSOC], "forbidden", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid,
                "type", "meeting", "id", mid, "fields", "status", "final");
    call_expect(W.c[RAP], "ok", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid, "type",
                "meeting", "id", mid, "fields", "status", "final");
    int64_t s_final = meeting_seq(W.c[RAP], mid);
    int64_t base = s_final;

    /* Changes: locked for roles that could make them, forbidden for the others. */
    static const struct {
        int u;
        const char *want;
    } creates[] = {{VIEW, "forbidden"}, {ED, "forbidden"}, {ASSOC, "locked"},
                   {COUNS, "locked"},   {RAP, "locked"},   {OUTSIDER, "not_found"}};
    for (size_t i = 0; i < sizeof(creates) / sizeof(creates[0]); i++) {
        struct cli_conn *c = W.c[creates[i].u];
        const char *want = creates[i].want;
        call_expect(c, want, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", mid, "type", "item",
                    "fields", "title", "x");
        call_expect(c, want, "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid, "type",
                    "item", "id", item, "fields", "title", "x");
        call_expect(c, want, "obj.delete", "{s:s, s:s, s:I}", "meeting", mid, "type", "item", "id",
                    item);
        call_expect(c, want, "text.edit", "{s:s, s:s, s:s, s:s, s:I, s:[s]}", "meeting", mid,
                    "type", "meeting", "id", mid, "field", "abstract", "base", base, "op", "x");
    }
    call_expect(W.c[VIEW], "forbidden", "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting",
                mid, "type", "item", "id", item, "field", "body", "base", base, "op", "x");
    call_expect(W.c[ED], "locked", "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", mid,
                "type", "item", "id", item, "field", "body", "base", base, "op", "x");
    /* The rapporteur's other changes. */
    call_expect(W.c[RAP], "locked", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid,
                "type", "meeting", "id", mid, "fields", "title", "x");
    call_expect(W.c[RAP], "locked", "obj.update", "{s:s, s:s, s:s, s:{s:s, s:s}}", "meeting", mid,
                "type", "meeting", "id", mid, "fields", "status", "draft", "title", "x");
    call_expect(W.c[RAP], "locked", "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user",
                "spare", "role", "editor");
    call_expect(W.c[RAP], "locked", "member.remove", "{s:s, s:s}", "meeting", mid, "user", "spare");
    call_expect(W.c[RAP], "locked", "report.import", "{s:s, s:S}", "meeting", mid, "text", W.sample,
                W.sample_len);
    call_expect(W.c[ASSOC], "forbidden", "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user",
                "spare", "role", "editor");
    call_expect(W.c[ASSOC], "forbidden", "report.import", "{s:s, s:S}", "meeting", mid, "text",
                W.sample, W.sample_len);
    call_expect(W.c[ASSOC], "forbidden", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid,
                "type", "meeting", "id", mid, "fields", "status", "draft");
    /* locked is answered before if_seq, and after an unknown object. */
    call_expect(W.c[ASSOC], "locked", "obj.update", "{s:s, s:s, s:I, s:I, s:{s:s}}", "meeting", mid,
                "type", "item", "id", item, "if_seq", s_item - 1, "fields", "title", "x");
    call_expect(W.c[ASSOC], "not_found", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid,
                "type", "item", "id", (int64_t)999999999, "fields", "title", "x");
    /* Nothing changed; reading still works. */
    assert_int_equal(meeting_seq(W.c[VIEW], mid), s_final);
    call_expect(W.c[VIEW], "ok", "report.export", "{s:s, s:s}", "meeting", mid, "format",
                "markdown");
    call_expect(W.c[VIEW], "ok", "history.list", "{s:s}", "meeting", mid);

    /* Setting final again is a status-only change too. */
    call_expect(W.c[RAP], "ok", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid, "type",
                "meeting", "id", mid, "fields", "status", "final");
    /* Exactly {status: draft} by the rapporteur reopens it. */
    call_expect(W.c[RAP], "ok", "obj.update", "{s:s, s:s, s:s, s:{s:s}}", "meeting", mid, "type",
                "meeting", "id", mid, "fields", "status", "draft");
    call_expect(W.c[ASSOC], "ok", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid, "type",
                "item", "id", item, "fields", "title", "After");
    call_expect(W.c[RAP], "ok", "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user", "spare",
                "role", "editor");
    call_expect(W.c[ED], "forbidden", "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", mid, "type",
                "item", "fields", "title", "x");
}

/* ---- unique keys ---- */

static int64_t create_doc(const char *mid, const char *ref, const char *rev, const char *want)
{
    struct cli_msg *m = NULL;
    if (rev) {
        m = call(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", mid, "type",
                 "doc", "fields", "ref", ref, "revision", rev);
    } else {
        m = call(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s, s:n}}", "meeting", mid, "type",
                 "doc", "fields", "ref", ref, "revision");
    }
    if (strcmp(code_of(m), want) != 0) {
        fail_msg("doc %s %s: want %s, got %s", ref, rev ? rev : "nil", want, code_of(m));
    }
    int64_t id = m->error ? 0 : mint(m->result, "id");
    cli_msg_free(m);
    return id;
}

/* Creates an action (ref NULL: none given); returns its ref as the server stored it. */
static void create_action(const char *mid, const char *ref, const char *want, char out[64])
{
    struct cli_msg *m = NULL;
    if (ref) {
        m = call(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", mid, "type", "action",
                 "fields", "ref", ref);
    } else {
        m = call(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", mid, "type", "action",
                 "fields", "to", "WP2");
    }
    if (strcmp(code_of(m), want) != 0) {
        fail_msg("action %s: want %s, got %s (%s)", ref ? ref : "(no ref)", want, code_of(m),
                 m->message ? m->message : "");
    }
    out[0] = '\0';
    if (m->error == NULL) {
        int64_t id = mint(m->result, "id");
        struct cli_msg *g = call_ok(W.c[ASSOC], "meeting.get", "{s:s}", "meeting", mid);
        const msgpack_object *a = find_id(mget(g->result, "actions"), id);
        assert_non_null(a);
        const msgpack_object *r = mget(a, "ref");
        assert_int_equal(r->type, MSGPACK_OBJECT_STR);
        snprintf(out, 64, "%.*s", (int)r->via.str.size, r->via.str.ptr);
        cli_msg_free(g);
    }
    cli_msg_free(m);
}

static void test_unique_keys(void **state)
{
    (void)state;
    char mid[64], ref[64];
    new_meeting_with("unique", mid, "RG-IEM");

    int64_t d1 = create_doc(mid, "TSAG-TD257", "R1", "ok");
    struct cli_msg *m = call(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", mid,
                             "type", "doc", "fields", "ref", "TSAG-TD257", "revision", "R1");
    assert_string_equal(code_of(m), "conflict");
    cli_msg_free(m);
    int64_t d0 = create_doc(mid, "TSAG-TD257", "", "ok");
    create_doc(mid, "TSAG-TD257", NULL, "conflict"); /* nil and "" are the same revision */
    create_doc(mid, "TSAG-TD257", "R2", "ok");
    create_doc(mid, "TSAG-C032", NULL, "ok");
    create_doc(mid, "TSAG-C032", "", "conflict");
    /* An update onto a taken key; onto itself is fine. */
    call_expect(W.c[ASSOC], "conflict", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid,
                "type", "doc", "id", d0, "fields", "revision", "R1");
    call_expect(W.c[ASSOC], "ok", "obj.update", "{s:s, s:s, s:I, s:{s:s, s:s}}", "meeting", mid,
                "type", "doc", "id", d1, "fields", "revision", "R1", "title", "ToR");
    /* The same key in another meeting is another key. */
    char other[64];
    new_meeting("unique-other", other);
    create_doc(other, "TSAG-TD257", "R1", "ok");

    create_action(mid, "RG-IEM-3", "ok", ref);
    assert_string_equal(ref, "RG-IEM-3");
    create_action(mid, "RG-IEM-3", "conflict", ref);
    create_action(mid, NULL, "ok", ref);
    assert_string_equal(ref, "RG-IEM-4");
    create_action(mid, "RG-IEM-10", "ok", ref);
    create_action(mid, "OTHER-99", "ok", ref);
    create_action(mid, "RG-IEM-x7", "ok", ref);
    create_action(mid, NULL, "ok", ref);
    assert_string_equal(ref, "RG-IEM-11");
    create_action(mid, NULL, "ok", ref);
    assert_string_equal(ref, "RG-IEM-12");
    create_action(mid, "RG-IEM-12", "conflict", ref);

    /* Without an action_prefix the ref is required. */
    char bare[64];
    new_meeting_with("unique-bare", bare, NULL);
    m = call(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s}}", "meeting", bare, "type", "action",
             "fields", "to", "WP2");
    assert_string_equal(code_of(m), "bad_request");
    assert_true(strncmp(m->message, "ref:", 4) == 0);
    cli_msg_free(m);
    create_action(bare, "A-1", "ok", ref);
}

/* ---- subscriptions and events ---- */

/* Reads notifications until n events arrived; checks they are consecutive from first.
 * Returns the last seq. */
static int64_t read_events(struct cli_conn *c, int64_t first, int n)
{
    int64_t want = first;
    for (int i = 0; i < n; i++) {
        struct cli_msg *ev = NULL;
        assert_int_equal(cli_conn_next(c, WAIT_MS, &ev), 0);
        assert_int_equal(ev->kind, PROTO_RPC_NOTIFY);
        assert_string_equal(ev->method, "event");
        assert_int_equal(mint(ev->params, "seq"), want);
        want++;
        cli_msg_free(ev);
    }
    return want - 1;
}

/* True when nothing more arrives on c within ms (after a ping round trip). */
static bool nothing_queued(struct cli_conn *c)
{
    struct cli_msg *m = call_ok(c, "ping", NULL);
    cli_msg_free(m);
    m = NULL;
    int rc = cli_conn_next(c, 0, &m);
    cli_msg_free(m);
    return rc == PROTO_ETIMEDOUT;
}

static void test_events(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("events", mid);
    struct cli_conn *author = login(ASSOC), *author2 = login(ASSOC), *watcher = login(VIEW);
    assert_non_null(author);
    assert_non_null(author2);
    assert_non_null(watcher);

    struct cli_msg *m = call_ok(watcher, "meeting.subscribe", "{s:s}", "meeting", mid);
    int64_t s0 = mint(m->result, "seq");
    const msgpack_object *snap = mget(m->result, "snapshot");
    assert_int_equal(mint(snap, "seq"), s0);
    assert_true(mstr_is(mget(mget(snap, "meeting"), "id"), mid));
    cli_msg_free(m);
    m = call_ok(author, "meeting.subscribe", "{s:s}", "meeting", mid);
    cli_msg_free(m);
    m = call_ok(author2, "meeting.subscribe", "{s:s, s:I}", "meeting", mid, "since", s0);
    assert_null(proto_mp_map_get(m->result, "snapshot"));
    assert_int_equal(mint(m->result, "seq"), s0);
    cli_msg_free(m);

    /* Changes of every kind by the author. */
    m = call_ok(author, "obj.create", "{s:s, s:s, s:s, s:{s:s, s:s}}", "meeting", mid, "type",
                "item", "cid", "ev-1", "fields", "number", "3", "title", "Metrics");
    int64_t item = mint(m->result, "id");
    cli_msg_free(m);
    call_expect(author, "ok", "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting", mid, "type",
                "item", "id", item, "fields", "title", "Industry metrics");
    call_expect(author, "ok", "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[s]}", "meeting", mid,
                "type", "item", "id", item, "field", "body", "base", s0 + 2, "op", "Hello");
    call_expect(W.c[RAP], "ok", "member.set", "{s:s, s:s, s:s}", "meeting", mid, "user", "spare",
                "role", "editor");
    call_expect(author, "ok", "obj.delete", "{s:s, s:s, s:I}", "meeting", mid, "type", "item", "id",
                item);
    call_expect(W.c[RAP], "ok", "member.remove", "{s:s, s:s}", "meeting", mid, "user", "spare");

    /* The watcher and the author's other connection see them all, in order; the author sees
     * only the rapporteur's. */
    struct cli_conn *seers[] = {watcher, author2};
    for (size_t k = 0; k < 2; k++) {
        struct cli_msg *ev[6];
        for (int i = 0; i < 6; i++) {
            assert_int_equal(cli_conn_next(seers[k], WAIT_MS, &ev[i]), 0);
            assert_int_equal(ev[i]->kind, PROTO_RPC_NOTIFY);
            assert_string_equal(ev[i]->method, "event");
            assert_true(mstr_is(mget(ev[i]->params, "meeting"), mid));
            assert_int_equal(mint(ev[i]->params, "seq"), s0 + 1 + i);
            assert_true(mint(ev[i]->params, "time") > 1600000000000);
        }
        const msgpack_object *p = ev[0]->params;
        assert_mstr(p, "kind", "create");
        assert_mstr(p, "type", "item");
        assert_mstr(p, "user", "assoc");
        assert_mstr(p, "cid", "ev-1");
        assert_int_equal(mint(p, "id"), item);
        assert_mstr(mget(p, "fields"), "title", "Metrics");
        p = ev[1]->params;
        assert_mstr(p, "kind", "update");
        assert_null(proto_mp_map_get(p, "cid"));
        /* An update event's fields are those of the request. */
        assert_int_equal(mget(p, "fields")->via.map.size, 1);
        assert_mstr(mget(p, "fields"), "title", "Industry metrics");
        p = ev[2]->params;
        assert_mstr(p, "kind", "text");
        assert_mstr(p, "field", "body");
        assert_int_equal(mget(p, "op")->type, MSGPACK_OBJECT_ARRAY);
        p = ev[3]->params;
        assert_mstr(p, "kind", "member");
        assert_mstr(p, "type", "member");
        assert_mstr(p, "id", "spare");
        assert_mstr(p, "role", "editor");
        assert_mstr(p, "user", "rap");
        assert_mstr(ev[4]->params, "kind", "delete");
        assert_int_equal(mint(ev[4]->params, "id"), item);
        p = ev[5]->params;
        assert_mstr(p, "kind", "member");
        assert_mstr(p, "role", NULL);
        for (int i = 0; i < 6; i++) {
            cli_msg_free(ev[i]);
        }
    }
    assert_int_equal(read_events(author, s0 + 4, 1), s0 + 4);
    assert_int_equal(read_events(author, s0 + 6, 1), s0 + 6);
    assert_true(nothing_queued(author));
    assert_true(nothing_queued(watcher));
    int64_t last_seen = s0 + 6;

    /* The watcher drops; 5 changes; it comes back and asks since what it saw. */
    cli_conn_free(watcher);
    for (int i = 0; i < 5; i++) {
        char title[32];
        char number[16];
        snprintf(title, sizeof(title), "Missed %d", i);
        snprintf(number, sizeof(number), "9.%d", i + 1); /* numbers are unique */
        new_item(author, mid, number, title, NULL);
    }
    watcher = login(VIEW);
    assert_non_null(watcher);
    uint32_t id = 0;
    assert_int_equal(cli_conn_sendf(watcher, &id, "meeting.subscribe", "{s:s, s:I}", "meeting", mid,
                                    "since", last_seen),
                     0);
    assert_int_equal(read_events(watcher, last_seen + 1, 5), last_seen + 5);
    m = NULL;
    assert_int_equal(cli_conn_next(watcher, WAIT_MS, &m), 0);
    assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
    assert_int_equal(m->msgid, id);
    assert_null(m->error);
    assert_int_equal(mint(m->result, "seq"), last_seen + 5);
    assert_null(proto_mp_map_get(m->result, "snapshot"));
    cli_msg_free(m);
    /* A replay sends the caller's own events too. */
    m = call_ok(author, "meeting.subscribe", "{s:s, s:I}", "meeting", mid, "since", last_seen + 3);
    cli_msg_free(m);
    assert_int_equal(read_events(author, last_seen + 4, 2), last_seen + 5);
    assert_true(nothing_queued(author));
    assert_true(nothing_queued(watcher));
    /* The author's other connection stayed subscribed all along. */
    assert_int_equal(read_events(author2, last_seen + 1, 5), last_seen + 5);
    assert_true(nothing_queued(author2));

    /* since out of range. */
    call_expect(watcher, "bad_request", "meeting.subscribe", "{s:s, s:I}", "meeting", mid, "since",
                last_seen + 6);
    call_expect(watcher, "bad_request", "meeting.subscribe", "{s:s, s:i}", "meeting", mid, "since",
                -1);
    call_expect(watcher, "bad_request", "meeting.subscribe", "{s:s, s:s}", "meeting", mid, "since",
                "1");
    /* since 0: the whole log. */
    m = call_ok(author2, "meeting.unsubscribe", "{s:s}", "meeting", mid);
    cli_msg_free(m);
    assert_int_equal(
        cli_conn_sendf(author2, &id, "meeting.subscribe", "{s:s, s:i}", "meeting", mid, "since", 0),
        0);
    assert_int_equal(read_events(author2, 1, (int)(last_seen + 5)), last_seen + 5);
    assert_int_equal(cli_conn_wait(author2, id, WAIT_MS, &m), 0);
    assert_null(m->error);
    cli_msg_free(m);

    /* Unsubscribed: no more events. */
    m = call_ok(watcher, "meeting.unsubscribe", "{s:s}", "meeting", mid);
    cli_msg_free(m);
    new_item(author, mid, "10", "Unseen", NULL);
    assert_true(nothing_queued(watcher));
    assert_int_equal(read_events(author2, last_seen + 6, 1), last_seen + 6);

    cli_conn_close(author);
    cli_conn_close(author2);
    cli_conn_close(watcher);
}

/* Every event with a seq below a response's seq arrives before that response, also while
 * others write as fast as they can. */
static void test_event_order(void **state)
{
    (void)state;
    enum { N = 40 };
    char mid[64];
    new_meeting("order", mid);
    struct cli_conn *writer = login(ASSOC), *me = login(COUNS);
    assert_non_null(writer);
    assert_non_null(me);
    struct cli_msg *m = call_ok(me, "meeting.subscribe", "{s:s}", "meeting", mid);
    int64_t s0 = mint(m->result, "seq");
    cli_msg_free(m);

    /* Rounds, because where my change lands among theirs varies from run to run. */
    for (int round = 0; round < 3; round++) {
        /* Half the writer's changes, my own, the other half: mine lands among theirs. */
        uint32_t ids[N], mine = 0;
        cli_conn_cork(writer);
        for (int i = 0; i < N / 2; i++) {
            assert_int_equal(cli_conn_sendf(writer, &ids[i], "obj.create", "{s:s, s:s, s:{s:s}}",
                                            "meeting", mid, "type", "item", "fields", "title", "w"),
                             0);
        }
        assert_int_equal(cli_conn_flush(writer), 0);
        assert_int_equal(cli_conn_sendf(me, &mine, "obj.create", "{s:s, s:s, s:{s:s}}", "meeting",
                                        mid, "type", "item", "fields", "title", "mine"),
                         0);
        cli_conn_cork(writer);
        for (int i = N / 2; i < N; i++) {
            assert_int_equal(cli_conn_sendf(writer, &ids[i], "obj.create", "{s:s, s:s, s:{s:s}}",
                                            "meeting", mid, "type", "item", "fields", "title", "w"),
                             0);
        }
        assert_int_equal(cli_conn_flush(writer), 0);

        /* What arrives: N events and my response, in some order. */
        int64_t seen[N], my_seq = 0;
        int events = 0, before_response = -1;
        int64_t deadline = now_ms() + WAIT_MS;
        while (events < N || my_seq == 0) {
            assert_true(now_ms() < deadline);
            m = NULL;
            assert_int_equal(cli_conn_next(me, WAIT_MS, &m), 0);
            if (m->kind == PROTO_RPC_RESPONSE) {
                assert_int_equal(m->msgid, mine);
                assert_null(m->error);
                my_seq = mint(m->result, "seq");
                before_response = events;
            } else {
                assert_string_equal(m->method, "event");
                assert_true(events < N);
                assert_mstr(m->params, "user", "assoc");
                seen[events++] = mint(m->params, "seq");
            }
            cli_msg_free(m);
        }
        assert_true(nothing_queued(me));
        /* Events in seq order, every seq but mine (never sent to me)... */
        int64_t want = s0 + 1;
        for (int i = 0; i < N; i++) {
            want += want == my_seq;
            assert_int_equal(seen[i], want);
            want++;
        }
        /* ... and every one below mine before my response. */
        for (int i = 0; i < N; i++) {
            if (seen[i] < my_seq) {
                assert_true(i < before_response);
            }
        }
        for (int i = 0; i < N; i++) {
            assert_int_equal(cli_conn_wait(writer, ids[i], WAIT_MS, &m), 0);
            assert_null(m->error);
            cli_msg_free(m);
        }
        s0 += N + 1;
    }
    cli_conn_close(writer);
    cli_conn_close(me);
}

/* ---- time travel over the wire ---- */

static void test_time_travel(void **state)
{
    (void)state;
    char mid[64];
    new_meeting("travel", mid);
    int64_t s_item = 0;
    int64_t item = new_item(W.c[ASSOC], mid, "2", "Old title", &s_item);
    struct cli_msg *m = call_ok(W.c[ASSOC], "obj.update", "{s:s, s:s, s:I, s:{s:s}}", "meeting",
                                mid, "type", "item", "id", item, "fields", "title", "New title");
    int64_t s_upd = mint(m->result, "seq");
    cli_msg_free(m);
    m = call_ok(W.c[ASSOC], "obj.create", "{s:s, s:s, s:{s:s, s:I}}", "meeting", mid, "type", "doc",
                "fields", "ref", "TSAG-TD1", "item", item);
    int64_t doc = mint(m->result, "id");
    cli_msg_free(m);
    m = call_ok(W.c[ASSOC], "obj.delete", "{s:s, s:s, s:I}", "meeting", mid, "type", "item", "id",
                item);
    int64_t s_del = mint(m->result, "seq");
    cli_msg_free(m);

    struct {
        int64_t at;
        const char *title; /* NULL: the item is absent */
        bool doc_ref;      /* the doc points at the item */
    } want[] = {
        {s_item - 1, NULL, false},      {s_item, "Old title", false}, {s_upd, "New title", false},
        {s_del - 1, "New title", true}, {s_del, NULL, false},
    };
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        m = call_ok(W.c[VIEW], "meeting.get", "{s:s, s:I}", "meeting", mid, "at", want[k].at);
        assert_int_equal(mint(m->result, "seq"), want[k].at);
        const msgpack_object *it = find_id(mget(m->result, "items"), item);
        if (want[k].title == NULL) {
            assert_null(it);
        } else {
            assert_non_null(it);
            assert_mstr(it, "title", want[k].title);
            assert_mstr(it, "number", "2");
        }
        const msgpack_object *d = find_id(mget(m->result, "docs"), doc);
        if (want[k].at >= s_upd + 1) {
            assert_non_null(d);
            if (want[k].doc_ref) {
                assert_int_equal(mint(d, "item"), item);
            } else {
                assert_int_equal(mget(d, "item")->type, MSGPACK_OBJECT_NIL);
            }
        } else {
            assert_null(d);
        }
        cli_msg_free(m);
    }
    /* The record at the meeting's seq is the live one; the first is the bare meeting. */
    m = call_ok(W.c[VIEW], "meeting.get", "{s:s, s:i}", "meeting", mid, "at", 1);
    assert_int_equal(mget(m->result, "items")->via.array.size, 0);
    assert_mstr(mget(m->result, "meeting"), "title", "A test meeting");
    cli_msg_free(m);
    /* Export at a seq ends with that seq's audit head. */
    m = call_ok(W.c[VIEW], "report.export", "{s:s, s:s, s:I}", "meeting", mid, "format", "text",
                "at", s_upd);
    assert_int_equal(mint(m->result, "seq"), s_upd);
    const msgpack_object *content = mget(m->result, "content");
    char tail[64];
    snprintf(tail, sizeof(tail), "seq %lld", (long long)s_upd);
    assert_true(mstr_has(content, tail));
    assert_true(mstr_has(content, "New title"));
    cli_msg_free(m);

    int64_t seq = meeting_seq(W.c[VIEW], mid);
    call_expect(W.c[VIEW], "bad_request", "meeting.get", "{s:s, s:I}", "meeting", mid, "at",
                seq + 1);
    call_expect(W.c[VIEW], "bad_request", "meeting.get", "{s:s, s:i}", "meeting", mid, "at", 0);
    call_expect(W.c[VIEW], "bad_request", "meeting.get", "{s:s, s:i}", "meeting", mid, "at", -1);
    call_expect(W.c[VIEW], "bad_request", "report.export", "{s:s, s:I}", "meeting", mid, "at",
                seq + 1);
}

/* ---- import and export ---- */

/* A canonical text of an object without its id and seq; item references are given as the
 * item's number. */
static void canon_obj(const msgpack_object *o, const msgpack_object *items, struct proto_buf *out)
{
    char line[256];
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    /* Keys in the server's order (schema order), which both records share. */
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        if (mstr_is(k, "id") || mstr_is(k, "seq")) {
            continue;
        }
        proto_buf_append(out, k->via.str.ptr, k->via.str.size);
        proto_buf_append(out, "=", 1);
        if (mstr_is(k, "item") && v->type != MSGPACK_OBJECT_NIL) {
            const msgpack_object *it = find_id(items, (int64_t)v->via.u64);
            assert_non_null(it);
            const msgpack_object *num = mget(it, "number");
            proto_buf_append(out, "#", 1);
            proto_buf_append(out, num->via.str.ptr, num->via.str.size);
        } else if (v->type == MSGPACK_OBJECT_STR) {
            proto_buf_append(out, v->via.str.ptr, v->via.str.size);
        } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(line, sizeof(line), "%llu", (unsigned long long)v->via.u64);
            proto_buf_append(out, line, strlen(line));
        } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            snprintf(line, sizeof(line), "%lld", (long long)v->via.i64);
            proto_buf_append(out, line, strlen(line));
        } else {
            proto_buf_append(out, "(nil)", 5);
        }
        proto_buf_append(out, "\n", 1);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares two meeting.get results field by field, ignoring ids and seqs. Returns the
 * number of differences (printed). */
static int compare_records(const msgpack_object *a, const msgpack_object *b)
{
    static const char *const lists[] = {"sessions",  "items",    "docs",  "actions",
                                        "decisions", "interims", "people"};
    int diffs = 0;
    struct proto_buf ma = {0}, mb = {0};
    canon_obj(mget(a, "meeting"), mget(a, "items"), &ma);
    canon_obj(mget(b, "meeting"), mget(b, "items"), &mb);
    /* The meeting's id differs by construction: drop nothing else. */
    if (ma.len != mb.len || memcmp(ma.data, mb.data, ma.len) != 0) {
        print_message("meeting fields differ:\n%.*s---\n%.*s\n", (int)ma.len, (char *)ma.data,
                      (int)mb.len, (char *)mb.data);
        diffs++;
    }
    proto_buf_free(&ma, 0);
    proto_buf_free(&mb, 0);
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        const msgpack_object *la = mget(a, lists[l]), *lb = mget(b, lists[l]);
        if (la->via.array.size != lb->via.array.size) {
            print_message("%s: %u vs %u\n", lists[l], la->via.array.size, lb->via.array.size);
            diffs++;
            continue;
        }
        size_t n = la->via.array.size;
        char **sa = calloc(n + 1, sizeof(char *)), **sb = calloc(n + 1, sizeof(char *));
        assert_non_null(sa);
        assert_non_null(sb);
        for (size_t i = 0; i < n; i++) {
            struct proto_buf x = {0}, y = {0};
            canon_obj(&la->via.array.ptr[i], mget(a, "items"), &x);
            canon_obj(&lb->via.array.ptr[i], mget(b, "items"), &y);
            proto_buf_append(&x, "", 1);
            proto_buf_append(&y, "", 1);
            sa[i] = (char *)x.data;
            sb[i] = (char *)y.data;
        }
        qsort(sa, n, sizeof(char *), cmp_str);
        qsort(sb, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(sa[i], sb[i]) != 0) {
                print_message("%s differ:\n%s---\n%s\n", lists[l], sa[i], sb[i]);
                diffs++;
            }
            free(sa[i]);
            free(sb[i]);
        }
        free(sa);
        free(sb);
    }
    return diffs;
}

static void test_import_export(void **state)
{
    (void)state;
    char m1[64], m2[64];
    new_meeting_with("import", m1, NULL);
    struct cli_msg *m = call_ok(W.c[RAP], "report.import", "{s:s, s:S}", "meeting", m1, "text",
                                W.sample, W.sample_len);
    static const struct {
        const char *type;
        int64_t n;
    } counts[] = {{"item", 10},  {"action", 5}, {"interim", 6},  {"session", 3},
                  {"person", 3}, {"doc", 21},   {"decision", 11}};
    /* counts: {type: {"created", "updated", "unchanged"}} for every type but meeting. */
    const msgpack_object *got = mget(m->result, "counts");
    assert_int_equal(got->via.map.size, sizeof(counts) / sizeof(counts[0]));
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        const msgpack_object *per = mget(got, counts[i].type);
        if (mint(per, "created") != counts[i].n || mint(per, "updated") != 0 ||
            mint(per, "unchanged") != 0) {
            fail_msg("%s: %lld created, want %lld", counts[i].type, (long long)mint(per, "created"),
                     (long long)counts[i].n);
        }
    }
    int64_t seq = mint(m->result, "seq");
    cli_msg_free(m);
    assert_int_equal(meeting_seq(W.c[VIEW], m1), seq);

    /* The agenda: items 0..9 in order, each with its documents in order. */
    /* Each document under the first section that discusses it (not the list of actions). */
    static const char *const docs[10][8] = {
        {NULL},
        {NULL},
        {"TSAG-TD181", "TSAG-TD181R1", "TSAG-TD232"},
        {"TSAG-TD256", "TSAG-C030", "TSAG-C021", "TSAG-C022", "TSAG-TD257", "TSAG-C032",
         "TSAG-TD257R1"},
        {"TSAG-C025", "TSAG-TD239", "TSAG-TD290R1", "TSAG-TD258", "TSAG-C031", "TSAG-TD299"},
        {"TSAG-TD267", "TSAG-TD273R1"},
        {"TSAG-TD192", "TSAG-TD193"},
        {NULL},
        {NULL},
        {"TSAG-TD182"},
    };
    m = call_ok(W.c[VIEW], "agenda.get", "{s:s}", "meeting", m1);
    assert_int_equal(mint(m->result, "seq"), seq);
    const msgpack_object *items = mget(m->result, "items");
    assert_int_equal(items->via.array.size, 10);
    size_t ndocs = 0;
    for (uint32_t i = 0; i < 10; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        char num[8];
        snprintf(num, sizeof(num), "%u", i);
        assert_mstr(it, "number", num);
        assert_int_equal(mget(it, "title")->type, MSGPACK_OBJECT_STR);
        const msgpack_object *d = mget(it, "docs");
        size_t k = 0;
        for (; k < 8 && docs[i][k]; k++) {
            assert_true(k < d->via.array.size);
            const msgpack_object *doc = &d->via.array.ptr[k];
            char ref[64];
            const msgpack_object *r = mget(doc, "ref"), *rev = mget(doc, "revision");
            snprintf(ref, sizeof(ref), "%.*s%.*s", (int)r->via.str.size, r->via.str.ptr,
                     rev->type == MSGPACK_OBJECT_STR ? (int)rev->via.str.size : 0,
                     rev->type == MSGPACK_OBJECT_STR ? rev->via.str.ptr : "");
            assert_string_equal(ref, docs[i][k]);
            assert_int_equal(mint(doc, "item"), mint(it, "id"));
        }
        assert_int_equal(d->via.array.size, k);
        ndocs += k;
    }
    assert_int_equal(ndocs, 21);
    assert_int_equal(mget(m->result, "sessions")->via.array.size, 3);
    cli_msg_free(m);

    /* Export as text, import into a fresh meeting: the same record. */
    m = call_ok(W.c[VIEW], "report.export", "{s:s, s:s}", "meeting", m1, "format", "text");
    assert_int_equal(mint(m->result, "seq"), seq);
    const msgpack_object *content = mget(m->result, "content");
    new_meeting_with("reimport", m2, NULL);
    struct cli_msg *r = call_ok(W.c[RAP], "report.import", "{s:s, s:S}", "meeting", m2, "text",
                                content->via.str.ptr, (size_t)content->via.str.size);
    cli_msg_free(r);
    cli_msg_free(m);
    struct cli_msg *g1 = call_ok(W.c[VIEW], "meeting.get", "{s:s}", "meeting", m1);
    struct cli_msg *g2 = call_ok(W.c[VIEW], "meeting.get", "{s:s}", "meeting", m2);
    assert_int_equal(compare_records(g1->result, g2->result), 0);
    cli_msg_free(g1);
    cli_msg_free(g2);

    /* The other formats render; a bad format is refused. */
    m = call_ok(W.c[VIEW], "report.export", "{s:s, s:s}", "meeting", m1, "format", "html");
    content = mget(m->result, "content");
    assert_true(mstr_has(content, "TSAG-TD257"));
    cli_msg_free(m);
    call_expect(W.c[VIEW], "bad_request", "report.export", "{s:s, s:s}", "meeting", m1, "format",
                "pdf");
    /* Not a report. */
    m = call(W.c[RAP], "report.import", "{s:s, s:s}", "meeting", m2, "text", "hello");
    assert_string_equal(code_of(m), "bad_request");
    assert_true(strncmp(m->message, "text:", 5) == 0);
    cli_msg_free(m);
    /* The chains verify. */
    m = call_ok(W.c[VIEW], "audit.verify", "{s:s}", "meeting", m1);
    assert_true(mget(m->result, "ok")->type == MSGPACK_OBJECT_BOOLEAN &&
                mget(m->result, "ok")->via.boolean);
    assert_int_equal(mint(m->result, "count"), seq);
    cli_msg_free(m);
}

/* ---- a backup while a client writes ---- */

static void test_backup_while_serving(void **state)
{
    (void)state;
    enum { WRITES = 300, BACKUP_AT = 60 };
    char mid[64], file[4096];
    new_meeting("backup", mid);
    snprintf(file, sizeof(file), "%s/backup.db", W.ts.dir);
    const char *conferd = getenv("CONFERD");
    assert_non_null(conferd);
    struct cli_conn *c = login(ASSOC);
    assert_non_null(c);
    pid_t backup = 0;
    int64_t end = now_ms() + 40000;
    for (int i = 0; i < WRITES; i++) {
        assert_true(now_ms() < end);
        if (i == BACKUP_AT) {
            backup = fork();
            assert_true(backup >= 0);
            if (backup == 0) {
                int fd = open("/dev/null", O_WRONLY);
                if (fd >= 0) {
                    dup2(fd, 1);
                }
                execl(conferd, conferd, "backup", file, "--data", W.data, (char *)NULL);
                _exit(127);
            }
        }
        char title[32];
        snprintf(title, sizeof(title), "Write %d", i);
        if (i % 3 == 0) {
            char number[16];
            snprintf(number, sizeof(number), "%d", i + 1); /* numbers are unique */
            new_item(c, mid, number, title, NULL);
        } else {
            call_expect(c, "ok", "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", mid, "type",
                        "action", "fields", "to", title, "text", "Lorem ipsum dolor");
        }
    }
    int st = wait_for(backup, 30000);
    if (st < 0) {
        kill(backup, SIGKILL);
        waitpid(backup, NULL, 0);
        fail_msg("conferd backup did not finish");
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    int64_t live_seq = meeting_seq(c, mid);
    cli_conn_close(c);

    /* The copy is a sound database whose every chain verifies. */
    struct proto_hostkey key;
    struct db *db = NULL;
    assert_int_equal(srv_data_load_key(W.data, &key), 0);
    assert_int_equal(db_open(&db, file, 0), 0);
    assert_int_equal(db_integrity_check(db), 0);
    int64_t count = 0, bad = -1;
    uint8_t head[DB_HASH_BYTES];
    assert_int_equal(srv_audit_verify(db, mid, key.pk, &count, head, &bad), 0);
    assert_int_equal(bad, 0);
    assert_true(count >= 5 && count <= live_seq);
    print_message("backup holds %lld of the meeting's %lld entries\n", (long long)count,
                  (long long)live_seq);
    char hex[2 * DB_HASH_BYTES + 1];
    proto_hex(head, DB_HASH_BYTES, hex);
    /* Its head is the live chain's entry at that seq. */
    struct cli_msg *m = call_ok(W.c[VIEW], "history.list", "{s:s, s:I, s:I}", "meeting", mid,
                                "since", count - 1, "until", count);
    assert_int_equal(m->result->via.array.size, 1);
    assert_mstr(&m->result->via.array.ptr[0], "hash", hex);
    cli_msg_free(m);
    /* Every other meeting of the copy verifies too. */
    static const char *const others[] = {"create-2", "created-full"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (db_meeting_exists(db, others[i]) == 0) {
            assert_int_equal(srv_audit_verify(db, others[i], key.pk, &count, head, &bad), 0);
            assert_int_equal(bad, 0);
        }
    }
    db_close(db);
    sodium_memzero(&key, sizeof(key));

    /* The operator's verify agrees while the server runs. */
    const char *verify[] = {"audit", "verify", NULL};
    assert_int_equal(ts_conferd(&W.ts, NULL, verify), 0);
    /* A backup never overwrites a file. */
    const char *again[] = {"backup", file, NULL};
    assert_int_not_equal(ts_conferd(&W.ts, NULL, again), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_matrix),
        cmocka_unit_test(test_meeting_create),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_if_seq),
        cmocka_unit_test(test_cid),
        cmocka_unit_test(test_locked),
        cmocka_unit_test(test_unique_keys),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_event_order),
        cmocka_unit_test(test_time_travel),
        cmocka_unit_test(test_import_export),
        cmocka_unit_test(test_backup_while_serving),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
