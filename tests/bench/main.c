/* confer-bench - load generator for conferd. Prints one JSON line per run.
 *
 *   confer-bench edits [--clients N] [--edits M] [--rate R] [--subscribers S]
 *       N editors (one edit in flight each, against their latest seq, so the server
 *       transforms) submit M small edits each to one item; with --rate, the editors
 *       together submit R edits/s; S extra read-only subscribers (default 0) receive them.
 *   confer-bench idle [--conns K]
 *       opens K authenticated idle connections: handshakes + token logins per second, and
 *       the server's memory per idle connection.
 *
 * By default it starts its own conferd (from $CONFERD, else conferd beside this program)
 * on a temporary data folder; --keep-data leaves it. Every run is bounded in count and time
 * (--timeout seconds, default 120).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_conn.h"
#include "cli_text.h"

#define MEETING  "bench"
#define USER     "bench"
#define PASSWORD "bench-password-1"

struct opts {
    const char *mode;
    int clients, edits, subscribers, conns;
    double rate;
    int timeout_s;
};

struct server {
    char dir[256];
    pid_t pid;
    int port;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *conferd_path(char *buf, size_t cap)
{
    const char *env = getenv("CONFERD");
    if (env) {
        return env;
    }
    ssize_t n = readlink("/proc/self/exe", buf, cap - 16);
    if (n <= 0) {
        return "conferd";
    }
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    snprintf(slash ? slash + 1 : buf, 16, "conferd");
    return buf;
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int server_start(struct server *s)
{
    char bin[PATH_MAX], cmd[8 * PATH_MAX];
    const char *conferd = conferd_path(bin, sizeof(bin));
    snprintf(s->dir, sizeof(s->dir), "/tmp/confer-bench-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        return -1;
    }
    snprintf(cmd, sizeof(cmd),
             "'%s' init --data '%s/data' >/dev/null && printf '%%s\\n' '%s' | '%s' account add "
             "%s --password-stdin --pwhash-cost min --data '%s/data' >/dev/null && '%s' meeting "
             "create %s --rapporteur %s --data '%s/data' >/dev/null",
             conferd, s->dir, PASSWORD, conferd, USER, s->dir, conferd, MEETING, USER, s->dir);
    if (sh(cmd) != 0) {
        fprintf(stderr, "confer-bench: cannot prepare a data folder with %s\n", conferd);
        return -1;
    }
    char data[512], portfile[512], log[512];
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
    snprintf(log, sizeof(log), "%s/server.log", s->dir);
    s->pid = fork();
    if (s->pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execl(conferd, conferd, "serve", "--data", data, "--listen", "127.0.0.1:0", "--port-file",
              portfile, "--pwhash-cost", "min", "--max-conns", "100000", "--max-conns-per-addr",
              "100000", "--max-conns-per-user", "100000", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port);
            fclose(f);
            if (ok == 1) {
                return 0;
            }
        }
        usleep(10000);
    }
    return -1;
}

static void server_stop(struct server *s)
{
    char cmd[512];
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    sh(cmd);
}

/* A /proc/PID/status value in KiB (VmRSS, VmHWM). */
static long proc_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

static struct cli_conn *connect_token(struct server *s, const char *token)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    char err[256];
    if (cli_conn_open(&c, "127.0.0.1", (uint16_t)s->port, &pol, 10000, err, sizeof(err)) != 0) {
        fprintf(stderr, "confer-bench: %s\n", err);
        return NULL;
    }
    if (cli_conn_callf(c, &m, "auth.token", "{s:s, s:s}", "user", USER, "token", token) != 0 ||
        m->error) {
        fprintf(stderr, "confer-bench: token login failed\n");
        cli_msg_free(m);
        cli_conn_free(c);
        return NULL;
    }
    cli_msg_free(m);
    return c;
}

static int get_token(struct server *s, char *token, size_t cap)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    char err[256];
    int rc = -1;
    if (cli_conn_open(&c, "127.0.0.1", (uint16_t)s->port, &pol, 10000, err, sizeof(err)) != 0) {
        fprintf(stderr, "confer-bench: %s\n", err);
        return -1;
    }
    if (cli_conn_callf(c, &m, "auth.login", "{s:s, s:s, s:b}", "user", USER, "password", PASSWORD,
                       "remember", 1) == 0 &&
        m->error == NULL) {
        const msgpack_object *t = proto_mp_map_get(m->result, "token");
        if (t && t->type == MSGPACK_OBJECT_STR && t->via.str.size < cap) {
            memcpy(token, t->via.str.ptr, t->via.str.size);
            token[t->via.str.size] = '\0';
            rc = 0;
        }
    }
    cli_msg_free(m);
    cli_conn_close(c);
    return rc;
}

/* The bytes a process caused to be written to storage (/proc/PID/io write_bytes). */
static long long proc_write_bytes(pid_t pid)
{
    char path[64], line[256];
    long long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "write_bytes:", 12) == 0) {
            v = strtoll(line + 12, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

/* ---- latency samples ---- */

struct samples {
    double *v;
    size_t n, cap;
};

static void sample_add(struct samples *s, double ms)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        double *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p)
{
    if (s->n == 0) {
        return 0;
    }
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static void print_lat(const char *name, struct samples *s)
{
    qsort(s->v, s->n, sizeof(double), cmp_double);
    printf("\"%s_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, \"n\": %zu}",
           name, pct(s, 0.5), pct(s, 0.9), pct(s, 0.99), s->n ? s->v[s->n - 1] : 0, s->n);
}

/* Send times by cid, for the receipt latency at the other subscribers. */
struct sent_map {
    char (*cid)[40];
    int64_t *at;
    size_t cap;
};

static size_t hash_cid(const char *s, size_t cap)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return (size_t)(h & (cap - 1));
}

static void sent_put(struct sent_map *m, const char *cid, int64_t at)
{
    size_t i = hash_cid(cid, m->cap);
    while (m->cid[i][0] && strcmp(m->cid[i], cid) != 0) {
        i = (i + 1) & (m->cap - 1);
    }
    snprintf(m->cid[i], sizeof(m->cid[i]), "%s", cid);
    m->at[i] = at;
}

static int64_t sent_get(const struct sent_map *m, const char *cid, size_t len)
{
    char key[40];
    snprintf(key, sizeof(key), "%.*s", (int)len, cid);
    size_t i = hash_cid(key, m->cap);
    while (m->cid[i][0]) {
        if (strcmp(m->cid[i], key) == 0) {
            return m->at[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

struct editor {
    struct cli_conn *c;
    struct cli_text t;
    int submitted;
    int64_t sent_at;
    bool writer;
};

static void small_edit(struct editor *e, int k)
{
    /* Insert a short word somewhere, or delete a little when the text grows long. */
    struct proto_op op;
    proto_op_init(&op);
    size_t n = proto_utf8_count(e->t.text, e->t.len);
    size_t at = n ? (size_t)rand() % (n + 1) : 0;
    proto_op_skip(&op, at);
    if (n > 2000 && at + 3 <= n) {
        proto_op_delete(&op, 3);
    } else {
        char w[16];
        snprintf(w, sizeof(w), "w%d ", k % 1000);
        proto_op_insert(&op, w, strlen(w));
    }
    cli_text_local(&e->t, &op);
    proto_op_free(&op);
}

static int run_edits(struct opts *o)
{
    struct server s = {0};
    char token[64];
    int rc = 1;
    int total = o->clients + o->subscribers;
    struct editor *ed = calloc((size_t)total, sizeof(*ed));
    struct pollfd *pfd = calloc((size_t)total, sizeof(*pfd));
    struct samples ack = {0}, fan = {0};
    struct sent_map sent = {0};
    size_t expected = (size_t)o->clients * (size_t)o->edits;
    sent.cap = 1;
    while (sent.cap < expected * 2 + 16) {
        sent.cap <<= 1;
    }
    sent.cid = calloc(sent.cap, sizeof(*sent.cid));
    sent.at = calloc(sent.cap, sizeof(*sent.at));
    if (ed == NULL || pfd == NULL || sent.cid == NULL || sent.at == NULL || server_start(&s) != 0 ||
        get_token(&s, token, sizeof(token)) != 0) {
        goto cleanup;
    }
    /* One item to edit. */
    struct editor *e0 = &ed[0];
    e0->c = connect_token(&s, token);
    if (e0->c == NULL) {
        goto cleanup;
    }
    struct cli_msg *m = NULL;
    if (cli_conn_callf(e0->c, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING,
                       "type", "item", "fields", "number", "1", "title", "Bench") != 0 ||
        m->error) {
        cli_msg_free(m);
        goto cleanup;
    }
    int64_t id = (int64_t)proto_mp_map_get(m->result, "id")->via.u64;
    cli_msg_free(m);
    for (int i = 0; i < total; i++) {
        struct editor *e = &ed[i];
        if (e->c == NULL && (e->c = connect_token(&s, token)) == NULL) {
            goto cleanup;
        }
        e->writer = i < o->clients;
        if (cli_conn_callf(e->c, &m, "meeting.subscribe", "{s:s}", "meeting", MEETING) != 0 ||
            m->error) {
            cli_msg_free(m);
            goto cleanup;
        }
        int64_t seq = (int64_t)proto_mp_map_get(m->result, "seq")->via.u64;
        cli_msg_free(m);
        cli_text_init(&e->t, MEETING, "item", id, NULL, "body", "", 0, seq);
        cli_conn_set_timeout(e->c, 10000);
        pfd[i].fd = cli_conn_fd(e->c);
        pfd[i].events = POLLIN;
    }
    /* Everyone starts from the same seq: catch up on the subscribes' own history. */
    long long wb0 = proc_write_bytes(s.pid);
    int64_t start = now_us(), deadline = start + (int64_t)o->timeout_s * 1000000;
    double interval_us = o->rate > 0 ? 1e6 / o->rate : 0;
    int64_t next_due = start;
    size_t acked = 0, submitted = 0;
    int rr = 0;
    while (acked < expected && now_us() < deadline) {
        int64_t now = now_us();
        /* Submit: as fast as acknowledged, or at the target rate across editors. */
        for (int k = 0; k < o->clients; k++) {
            struct editor *e = &ed[(rr + k) % o->clients];
            if (e->submitted >= o->edits || !cli_text_idle(&e->t)) {
                continue;
            }
            if (interval_us > 0 && now < next_due) {
                break;
            }
            small_edit(e, e->submitted);
            e->sent_at = now_us();
            if (cli_text_flush(&e->t, e->c) != 0) {
                fprintf(stderr, "confer-bench: send failed\n");
                goto cleanup;
            }
            sent_put(&sent, e->t.inflight_cid, e->sent_at);
            e->submitted++;
            submitted++;
            if (interval_us > 0) {
                next_due += (int64_t)interval_us;
                rr = (rr + k + 1) % o->clients;
                break;
            }
        }
        int wait_ms = interval_us > 0 ? (int)((next_due - now_us()) / 1000) : 50;
        if (wait_ms < 0) {
            wait_ms = 0;
        }
        if (poll(pfd, (nfds_t)total, wait_ms) < 0 && errno != EINTR) {
            goto cleanup;
        }
        for (int i = 0; i < total; i++) {
            struct editor *e = &ed[i];
            if (!(pfd[i].revents & POLLIN) && cli_conn_pending(e->c) == 0) {
                continue;
            }
            for (;;) {
                struct cli_msg *msg = NULL;
                int r = cli_conn_next(e->c, 0, &msg);
                if (r == PROTO_ETIMEDOUT) {
                    break;
                }
                if (r != 0) {
                    fprintf(stderr, "confer-bench: connection lost: %s\n", cli_conn_error(e->c));
                    goto cleanup;
                }
                int64_t t = now_us();
                bool was_inflight = e->t.inflight;
                if (msg->kind == PROTO_RPC_NOTIFY && msg->method &&
                    strcmp(msg->method, "event") == 0) {
                    const msgpack_object *cid = proto_mp_map_get(msg->params, "cid");
                    if (cid && cid->type == MSGPACK_OBJECT_STR) {
                        int64_t at = sent_get(&sent, cid->via.str.ptr, cid->via.str.size);
                        if (at > 0) {
                            sample_add(&fan, (double)(t - at) / 1000.0);
                        }
                    }
                }
                int h = cli_text_handle(&e->t, e->c, msg);
                if (h < 0) {
                    fprintf(stderr, "confer-bench: edit refused: %s\n", e->t.error);
                    cli_msg_free(msg);
                    goto cleanup;
                }
                if (was_inflight && !e->t.inflight) {
                    sample_add(&ack, (double)(t - e->sent_at) / 1000.0);
                    acked++;
                }
                cli_msg_free(msg);
            }
        }
    }
    int64_t elapsed = now_us() - start;
    long long wb1 = proc_write_bytes(s.pid);
    /* Drain the last events, then compare every replica with the server. */
    for (int round = 0; round < 200; round++) {
        int got = 0;
        for (int i = 0; i < total; i++) {
            struct cli_msg *msg = NULL;
            while (cli_conn_next(ed[i].c, round == 0 ? 0 : 1, &msg) == 0) {
                cli_text_handle(&ed[i].t, ed[i].c, msg);
                cli_msg_free(msg);
                got++;
            }
        }
        if (got == 0 && round > 5) {
            break;
        }
    }
    bool converged = false;
    if (cli_conn_callf(e0->c, &m, "meeting.get", "{s:s}", "meeting", MEETING) == 0 &&
        m->error == NULL) {
        const msgpack_object *items = proto_mp_map_get(m->result, "items");
        const msgpack_object *body = proto_mp_map_get(&items->via.array.ptr[0], "body");
        converged = true;
        for (int i = 0; i < total; i++) {
            converged = converged && body->via.str.size == ed[i].t.len &&
                        memcmp(body->via.str.ptr, ed[i].t.text, ed[i].t.len) == 0;
        }
    }
    cli_msg_free(m);
    printf("{\"mode\": \"edits\", \"clients\": %d, \"subscribers\": %d, \"target_rate\": %.0f, "
           "\"edits_submitted\": %zu, \"edits_acknowledged\": %zu, \"seconds\": %.3f, "
           "\"edits_per_s\": %.0f, ",
           o->clients, o->subscribers, o->rate, submitted, acked, (double)elapsed / 1e6,
           (double)acked / ((double)elapsed / 1e6));
    print_lat("submit_to_ack", &ack);
    printf(", ");
    print_lat("submit_to_receipt", &fan);
    printf(", \"server_write_bytes_per_edit\": %.0f", acked ? (double)(wb1 - wb0) / (double)acked : 0);
    printf(", \"converged\": %s, \"server_peak_rss_kib\": %ld}\n", converged ? "true" : "false",
           proc_kib(s.pid, "VmHWM"));
    fflush(stdout);
    rc = converged && acked == expected ? 0 : 1;
cleanup:
    for (int i = 0; ed && i < total; i++) {
        cli_text_free(&ed[i].t);
        cli_conn_free(ed[i].c);
    }
    free(ed);
    free(pfd);
    free(ack.v);
    free(fan.v);
    free(sent.cid);
    free(sent.at);
    server_stop(&s);
    return rc;
}

static int run_idle(struct opts *o)
{
    struct server s = {0};
    char token[64];
    int rc = 1, opened = 0;
    struct cli_conn **c = calloc((size_t)o->conns, sizeof(*c));
    if (c == NULL || server_start(&s) != 0 || get_token(&s, token, sizeof(token)) != 0) {
        goto cleanup;
    }
    usleep(200000);
    long before = proc_kib(s.pid, "VmRSS");
    int64_t start = now_us(), deadline = start + (int64_t)o->timeout_s * 1000000;
    for (; opened < o->conns && now_us() < deadline; opened++) {
        c[opened] = connect_token(&s, token);
        if (c[opened] == NULL) {
            break;
        }
    }
    int64_t elapsed = now_us() - start;
    usleep(500000);
    long after = proc_kib(s.pid, "VmRSS");
    double per = opened ? (double)(after - before) * 1024.0 / opened : 0;
    printf("{\"mode\": \"idle\", \"connections\": %d, \"seconds\": %.3f, "
           "\"handshakes_and_token_logins_per_s\": %.0f, \"server_rss_before_kib\": %ld, "
           "\"server_rss_after_kib\": %ld, \"bytes_per_idle_connection\": %.0f}\n",
           opened, (double)elapsed / 1e6, opened / ((double)elapsed / 1e6), before, after, per);
    fflush(stdout);
    rc = opened == o->conns ? 0 : 1;
cleanup:
    for (int i = 0; c && i < opened; i++) {
        cli_conn_free(c[i]);
    }
    free(c);
    server_stop(&s);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: confer-bench edits [--clients N] [--edits M] [--rate R] [--subscribers S]\n"
          "       confer-bench idle [--conns K]\n"
          "options: --timeout SECONDS (default 120); $CONFERD names the server binary\n",
          f);
}

int main(int argc, char **argv)
{
    struct opts o = {.clients = 10, .edits = 1000, .conns = 1000, .timeout_s = 120};
    static const struct option lo[] = {
        {"clients", required_argument, NULL, 'c'}, {"edits", required_argument, NULL, 'e'},
        {"rate", required_argument, NULL, 'r'},    {"subscribers", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'k'},   {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    if (argc < 2 || sodium_init() < 0) {
        usage(stderr);
        return 2;
    }
    o.mode = argv[1];
    if (strcmp(o.mode, "--help") == 0 || strcmp(o.mode, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.clients = atoi(optarg);
            break;
        case 'e':
            o.edits = atoi(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 's':
            o.subscribers = atoi(optarg);
            break;
        case 'k':
            o.conns = atoi(optarg);
            break;
        case 't':
            o.timeout_s = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.clients < 1 || o.clients > 5000 || o.edits < 1 || o.edits > 1000000 || o.conns < 1 ||
        o.conns > 200000 || o.subscribers < 0 || o.timeout_s < 1) {
        usage(stderr);
        return 2;
    }
    /* Enough descriptors for every connection. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    srand(12345);
    if (strcmp(o.mode, "edits") == 0) {
        return run_edits(&o);
    }
    if (strcmp(o.mode, "idle") == 0) {
        return run_idle(&o);
    }
    usage(stderr);
    return 2;
}
