/* confer-bench - load generator for conferd. Prints one JSON line per run.
 *
 *   confer-bench edits [--clients N] [--edits M] [--rate R] [--subscribers S] [--size BYTES]
 *                      [--idle-wait SECONDS]
 *       N editors (one edit in flight each, against their latest seq, so the server
 *       transforms) submit M small edits each to one item; with --rate, the editors
 *       together submit R edits/s; S extra read-only subscribers (default 0) receive them.
 *       With --size, editor 0 first fills the item's body to about BYTES (inserts of at most
 *       32 KiB, one at a time), everyone subscribes after that, and the edits keep the text
 *       about that size. server_write_bytes_per_edit is what the server wrote to storage
 *       (/proc/PID/io) during the timed edits, read at the last acknowledgement; with
 *       --idle-wait, a second figure is read that many seconds after it.
 *   confer-bench travel [--size BYTES] [--edits M] [--gets K] [--clients N]
 *       N editors build one item's body of about BYTES (default 900000) through M edits
 *       (default 40000: inserts at random places, every 20th a delete); then K (default 50)
 *       meeting.get and K/5 report.export (text) at a random seq of the history, one at a
 *       time on a connection of their own: the cost of reading the record as it was.
 *   confer-bench typing [--clients E] [--rate K] [--subscribers W] [--seconds S]
 *       E (default 3) live editors type K (default 10) keys/s each into one item for S
 *       (default 10) seconds, each key a local op sent at once when nothing is in flight,
 *       else composed with the next ones (PROTOCOL.md section 6); W (default 50) watchers
 *       subscribe. Prints the time from a keystroke to each watcher's receipt of the event
 *       that carries it (p50, p99) and the text.edits sent per 100 keystrokes.
 *   confer-bench idle [--conns K]
 *       opens K authenticated idle connections: handshakes + token logins per second, and
 *       the server's memory per idle connection.
 *
 * Texts stay below the server's default limit of a text field (1 MiB): a --size near it is
 * cut to what fits. By default it starts its own conferd (from $CONFERD, else conferd beside
 * this program) on a temporary data folder. Every run is bounded in count and time
 * (--timeout seconds, default 120, over the whole run).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_conn.h"
#include "cli_text.h"

#define MEETING  "bench"
#define USER     "bench"
#define PASSWORD "bench-password-1"

/* conferd's default limit on a text field, in bytes (PROTOCOL.md section 6). */
#define SERVER_MAX_TEXT ((size_t)1024 * 1024)
/* The largest insert the bench sends. */
#define FILL_CHUNK ((size_t)32 * 1024)

struct opts {
    const char *mode;
    int clients, edits, subscribers, conns, size, gets, pages;
    double rate, idle_wait_s, seconds;
    int timeout_s;
};

struct server {
    char dir[256];
    pid_t pid;
    int port;
    int http_port; /* the live view's */
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
    char data[512], portfile[512], hportfile[512], log[512];
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
    snprintf(hportfile, sizeof(hportfile), "%s/hport", s->dir);
    snprintf(log, sizeof(log), "%s/server.log", s->dir);
    s->pid = fork();
    if (s->pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execl(conferd, conferd, "serve", "--data", data, "--listen", "127.0.0.1:0", "--port-file",
              portfile, "--pwhash-cost", "min", "--max-conns", "100000", "--max-conns-per-addr",
              "100000", "--max-conns-per-user", "100000", "--http", "127.0.0.1:0",
              "--http-port-file", hportfile, "--http-max-streams", "100000",
              "--http-streams-per-addr", "100000", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r"), *h = fopen(hportfile, "r");
        int ok = f && fscanf(f, "%d", &s->port) == 1 && h && fscanf(h, "%d", &s->http_port) == 1;
        if (f) {
            fclose(f);
        }
        if (h) {
            fclose(h);
        }
        if (ok) {
            return 0;
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
    if (s->n > 0) {
        qsort(s->v, s->n, sizeof(double), cmp_double);
    }
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

/* ---- text the bench writes ---- */

/* Every text the bench writes is ASCII, so its code points are its bytes: positions come
 * from t.len, not from counting a text that may be a megabyte long at every edit. */

/* n bytes of lowercase words, a newline after every dozen. */
static void fill_words(char *buf, size_t n)
{
    size_t i = 0;
    int words = 0;
    while (i < n) {
        int wl = 2 + rand() % 8;
        for (int j = 0; j < wl && i < n; j++) {
            buf[i++] = (char)('a' + rand() % 26);
        }
        if (i < n) {
            buf[i++] = ++words % 12 == 0 ? '\n' : ' ';
        }
    }
}

/* Bytes of op as msgpack, as text.edit carries it. */
static size_t op_encoded_bytes(msgpack_sbuffer *sb, const struct proto_op *op)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    return proto_op_encode(op, &pk) == 0 ? sb->size : 0;
}

/* CPU seconds (user + system) of a process, from /proc/PID/stat; -1 when unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The name in parentheses may hold spaces: count fields from the last ')' (field 2);
     * utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return -1;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int ms_left(int64_t deadline)
{
    int64_t left = (deadline - now_us()) / 1000;
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- editors ---- */

struct editor {
    struct cli_conn *c;
    struct cli_text t;
    int quota; /* edits to submit */
    int submitted;
    int64_t sent_at;
};

struct drive;
typedef int (*edit_fn)(struct editor *e, const struct drive *d);

/* N editors, one edit in flight each, against their latest seq (so the server transforms),
 * plus read-only subscribers, all on one item. */
struct drive {
    struct editor *ed;
    struct pollfd *pfd;
    int writers, total; /* ed[0..writers) edit, ed[writers..total) only receive */
    double rate;        /* edits/s over all editors, 0: as fast as acknowledged */
    int64_t deadline;
    edit_fn edit;
    size_t cap;     /* small_edit: deletes past this many bytes */
    size_t target;  /* travel_edit: bytes to reach at the last edit */
    size_t del_len; /* travel_edit: bytes of each delete */

    size_t expected, acked, submitted;
    size_t op_bytes; /* msgpack bytes of the ops sent */
    int64_t start, end;
    struct samples ack, fan;
    struct sent_map sent;
    msgpack_sbuffer sb;
};

/* The edits mode: insert a short word somewhere, or delete a little when the text is past
 * its size. */
static int small_edit(struct editor *e, const struct drive *d)
{
    struct proto_op op;
    proto_op_init(&op);
    size_t n = e->t.len;
    size_t at = n ? (size_t)rand() % (n + 1) : 0;
    int rc = proto_op_skip(&op, at);
    if (n > d->cap && at + 3 <= n) {
        rc = rc ? rc : proto_op_delete(&op, 3);
    } else {
        char w[16];
        snprintf(w, sizeof(w), "w%d ", e->submitted % 1000);
        rc = rc ? rc : proto_op_insert(&op, w, strlen(w));
    }
    rc = rc ? rc : cli_text_local(&e->t, &op);
    proto_op_free(&op);
    return rc;
}

/* The travel mode: every 20th edit deletes del_len bytes at a random place; the others
 * insert words at a random place, as many as bring the text to target bytes at the last
 * edit (the editors move at about the same pace, so an editor's remaining edits times the
 * number of editors is about what all of them have left). */
static int travel_edit(struct editor *e, const struct drive *d)
{
    struct proto_op op;
    proto_op_init(&op);
    size_t n = e->t.len;
    int rc;
    if (e->submitted % 20 == 19 && n > d->del_len) {
        rc = proto_op_skip(&op, (size_t)rand() % (n - d->del_len + 1));
        rc = rc ? rc : proto_op_delete(&op, d->del_len);
    } else {
        size_t left = (size_t)(e->quota - e->submitted) * (size_t)d->writers;
        size_t deletes = left / 20, inserts = left - deletes;
        size_t goal = d->target + deletes * d->del_len;
        size_t len = goal > n ? (goal - n) / (inserts ? inserts : 1) : 1;
        len = len < 1 ? 1 : len > FILL_CHUNK ? FILL_CHUNK : len;
        char *w = malloc(len);
        if (w == NULL) {
            return PROTO_ENOMEM;
        }
        fill_words(w, len);
        rc = proto_op_skip(&op, (size_t)rand() % (n + 1));
        rc = rc ? rc : proto_op_insert(&op, w, len);
        free(w);
    }
    rc = rc ? rc : cli_text_local(&e->t, &op);
    proto_op_free(&op);
    return rc;
}

static int drive_init(struct drive *d, int writers, int total)
{
    memset(d, 0, sizeof(*d));
    d->writers = writers;
    d->total = total;
    d->ed = calloc((size_t)total, sizeof(*d->ed));
    d->pfd = calloc((size_t)total, sizeof(*d->pfd));
    msgpack_sbuffer_init(&d->sb);
    return d->ed && d->pfd ? 0 : -1;
}

/* Sizes the map of send times (receipt latency) once the quotas are set. */
static int drive_expect(struct drive *d)
{
    d->expected = 0;
    for (int i = 0; i < d->writers; i++) {
        d->expected += (size_t)d->ed[i].quota;
    }
    d->sent.cap = 1;
    while (d->sent.cap < d->expected * 2 + 16) {
        d->sent.cap <<= 1;
    }
    d->sent.cid = calloc(d->sent.cap, sizeof(*d->sent.cid));
    d->sent.at = calloc(d->sent.cap, sizeof(*d->sent.at));
    return d->sent.cid && d->sent.at ? 0 : -1;
}

static void drive_free(struct drive *d)
{
    for (int i = 0; d->ed && i < d->total; i++) {
        cli_text_free(&d->ed[i].t);
        cli_conn_free(d->ed[i].c);
    }
    free(d->ed);
    free(d->pfd);
    free(d->ack.v);
    free(d->fan.v);
    free(d->sent.cid);
    free(d->sent.at);
    msgpack_sbuffer_destroy(&d->sb);
}

/* Runs the editors until every edit is acknowledged or the deadline. Returns 0 (check
 * d->acked against d->expected), or -1 when a connection failed or an edit was refused. */
static int drive_run(struct drive *d)
{
    double interval_us = d->rate > 0 ? 1e6 / d->rate : 0;
    d->start = now_us();
    int64_t next_due = d->start;
    int rr = 0;
    while (d->acked < d->expected && now_us() < d->deadline) {
        int64_t now = now_us();
        /* Submit: as fast as acknowledged, or at the target rate across editors. */
        for (int k = 0; k < d->writers; k++) {
            struct editor *e = &d->ed[(rr + k) % d->writers];
            if (e->submitted >= e->quota || !cli_text_idle(&e->t)) {
                continue;
            }
            if (interval_us > 0 && now < next_due) {
                break;
            }
            if (d->edit(e, d) != 0) {
                fprintf(stderr, "confer-bench: cannot make an edit\n");
                return -1;
            }
            d->op_bytes += op_encoded_bytes(&d->sb, &e->t.buffer);
            e->sent_at = now_us();
            if (cli_text_flush(&e->t, e->c) != 0) {
                fprintf(stderr, "confer-bench: send failed\n");
                return -1;
            }
            sent_put(&d->sent, e->t.inflight_cid, e->sent_at);
            e->submitted++;
            d->submitted++;
            if (interval_us > 0) {
                next_due += (int64_t)interval_us;
                rr = (rr + k + 1) % d->writers;
                break;
            }
        }
        int wait_ms = interval_us > 0 ? (int)((next_due - now_us()) / 1000) : 50;
        if (wait_ms < 0) {
            wait_ms = 0;
        }
        if (poll(d->pfd, (nfds_t)d->total, wait_ms) < 0 && errno != EINTR) {
            return -1;
        }
        for (int i = 0; i < d->total; i++) {
            struct editor *e = &d->ed[i];
            if (!(d->pfd[i].revents & POLLIN) && cli_conn_pending(e->c) == 0) {
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
                    return -1;
                }
                int64_t t = now_us();
                bool was_inflight = e->t.inflight;
                if (msg->kind == PROTO_RPC_NOTIFY && msg->method &&
                    strcmp(msg->method, "event") == 0) {
                    const msgpack_object *cid = proto_mp_map_get(msg->params, "cid");
                    if (cid && cid->type == MSGPACK_OBJECT_STR) {
                        int64_t at = sent_get(&d->sent, cid->via.str.ptr, cid->via.str.size);
                        if (at > 0) {
                            sample_add(&d->fan, (double)(t - at) / 1000.0);
                        }
                    }
                }
                int h = cli_text_handle(&e->t, e->c, msg);
                if (h < 0) {
                    fprintf(stderr, "confer-bench: edit refused: %s\n", e->t.error);
                    cli_msg_free(msg);
                    return -1;
                }
                if (was_inflight && !e->t.inflight) {
                    sample_add(&d->ack, (double)(t - e->sent_at) / 1000.0);
                    d->acked++;
                }
                cli_msg_free(msg);
            }
        }
    }
    d->end = now_us();
    return 0;
}

/* The body of item id in a record as meeting.get packs it, or NULL. */
static const msgpack_object *item_body(const msgpack_object *rec, int64_t id)
{
    const msgpack_object *items = proto_mp_map_get(rec, "items");
    if (items == NULL || items->type != MSGPACK_OBJECT_ARRAY) {
        return NULL;
    }
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        const msgpack_object *oid = proto_mp_map_get(it, "id");
        const msgpack_object *body = proto_mp_map_get(it, "body");
        if (oid && oid->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (int64_t)oid->via.u64 == id &&
            body && body->type == MSGPACK_OBJECT_STR) {
            return body;
        }
    }
    return NULL;
}

static int64_t result_seq(const struct cli_msg *m)
{
    const msgpack_object *seq = m && m->error == NULL ? proto_mp_map_get(m->result, "seq") : NULL;
    return seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)seq->via.u64 : -1;
}

/* Subscribes e to the meeting and starts its replica of the item's body from the snapshot:
 * the text and seq the server has now. */
static int subscribe_replica(struct editor *e, int64_t id)
{
    struct cli_msg *m = NULL;
    int rc = -1;
    if (cli_conn_callf(e->c, &m, "meeting.subscribe", "{s:s}", "meeting", MEETING) == 0 &&
        m->error == NULL) {
        const msgpack_object *body = item_body(proto_mp_map_get(m->result, "snapshot"), id);
        int64_t seq = result_seq(m);
        if (body && seq > 0) {
            cli_text_free(&e->t);
            rc = cli_text_init(&e->t, MEETING, "item", id, NULL, "body", body->via.str.ptr,
                               body->via.str.size, seq);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "confer-bench: cannot subscribe: %s\n",
                m && m->message ? m->message : cli_conn_error(e->c));
    }
    cli_msg_free(m);
    return rc;
}

/* Connects every editor (ed[0] may be already) and subscribes it. */
static int drive_connect(struct drive *d, struct server *s, const char *token, int64_t id)
{
    for (int i = 0; i < d->total; i++) {
        struct editor *e = &d->ed[i];
        if (e->c == NULL && (e->c = connect_token(s, token)) == NULL) {
            return -1;
        }
        if (subscribe_replica(e, id) != 0) {
            return -1;
        }
        cli_conn_set_timeout(e->c, 10000);
        d->pfd[i].fd = cli_conn_fd(e->c);
        d->pfd[i].events = POLLIN;
    }
    return 0;
}

/* Creates the item to edit through c; returns its id (and *seq, the seq of its creation),
 * or -1. */
static int64_t create_item(struct cli_conn *c, int64_t *seq)
{
    static int made = 0; /* item numbers are unique in a meeting */
    char number[16];
    snprintf(number, sizeof(number), "%d", ++made);
    struct cli_msg *m = NULL;
    int64_t id = -1;
    if (cli_conn_callf(c, &m, "obj.create", "{s:s, s:s, s:{s:s, s:s}}", "meeting", MEETING, "type",
                       "item", "fields", "number", number, "title", "Bench") == 0 &&
        m->error == NULL) {
        const msgpack_object *o = proto_mp_map_get(m->result, "id");
        if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            id = (int64_t)o->via.u64;
            *seq = result_seq(m);
        }
    }
    cli_msg_free(m);
    return id;
}

/* Fills e's text, on a connection that is not subscribed (only e edits), to target bytes:
 * inserts at the end of at most FILL_CHUNK bytes, each acknowledged before the next. */
static int fill_text(struct editor *e, size_t target, int64_t deadline)
{
    char *chunk = malloc(FILL_CHUNK);
    int rc = chunk ? 0 : -1;
    while (rc == 0 && e->t.len < target) {
        size_t n = target - e->t.len < FILL_CHUNK ? target - e->t.len : FILL_CHUNK;
        struct proto_op op;
        proto_op_init(&op);
        fill_words(chunk, n);
        if (proto_op_skip(&op, e->t.len) != 0 || proto_op_insert(&op, chunk, n) != 0 ||
            cli_text_local(&e->t, &op) != 0 || cli_text_flush(&e->t, e->c) != 0) {
            rc = -1;
        }
        proto_op_free(&op);
        while (rc == 0 && e->t.inflight) {
            struct cli_msg *msg = NULL;
            int left = ms_left(deadline);
            if (left == 0 || cli_conn_next(e->c, left, &msg) != 0) {
                fprintf(stderr, "confer-bench: filling the text: %s\n",
                        left ? cli_conn_error(e->c) : "timed out");
                rc = -1;
                break;
            }
            if (cli_text_handle(&e->t, e->c, msg) < 0) {
                fprintf(stderr, "confer-bench: fill edit refused: %s\n", e->t.error);
                rc = -1;
            }
            cli_msg_free(msg);
        }
    }
    free(chunk);
    return rc;
}

/* Drains the last events, then compares every replica with the server's text read back
 * through c. *text_bytes and *head get the body's length and the meeting's seq. */
static bool drive_converged(struct drive *d, struct cli_conn *c, int64_t id, size_t *text_bytes,
                            int64_t *head)
{
    for (int round = 0; round < 200; round++) {
        int got = 0;
        for (int i = 0; i < d->total; i++) {
            struct cli_msg *msg = NULL;
            while (cli_conn_next(d->ed[i].c, round == 0 ? 0 : 1, &msg) == 0) {
                cli_text_handle(&d->ed[i].t, d->ed[i].c, msg);
                cli_msg_free(msg);
                got++;
            }
        }
        if (got == 0 && round > 5) {
            break;
        }
    }
    bool converged = false;
    struct cli_msg *m = NULL;
    if (cli_conn_callf(c, &m, "meeting.get", "{s:s}", "meeting", MEETING) == 0 &&
        m->error == NULL) {
        const msgpack_object *body = item_body(m->result, id);
        converged = body != NULL;
        for (int i = 0; converged && i < d->total; i++) {
            converged = body->via.str.size == d->ed[i].t.len &&
                        memcmp(body->via.str.ptr, d->ed[i].t.text, d->ed[i].t.len) == 0;
        }
        *text_bytes = body ? body->via.str.size : 0;
        *head = result_seq(m);
    }
    cli_msg_free(m);
    return converged;
}

/* The largest text the bench aims at: under the server's limit by room for the inserts that
 * editors make at once before they see each other's. */
static size_t text_room(int writers)
{
    return SERVER_MAX_TEXT - 4096 - 8 * (size_t)writers;
}

static int run_edits(struct opts *o)
{
    struct server s = {0};
    struct drive d;
    char token[64];
    int rc = 1;
    int64_t deadline = now_us() + (int64_t)o->timeout_s * 1000000;
    if (drive_init(&d, o->clients, o->clients + o->subscribers) != 0 || server_start(&s) != 0 ||
        get_token(&s, token, sizeof(token)) != 0) {
        goto cleanup;
    }
    d.rate = o->rate;
    d.deadline = deadline;
    d.edit = small_edit;
    /* The text stays about --size bytes: deletes past size + 2000 (at least 2000), all below
     * the server's limit on a text field. */
    size_t room = text_room(o->clients);
    d.cap = (size_t)o->size + 2000 < room ? (size_t)o->size + 2000 : room;
    size_t fill = (size_t)o->size < d.cap ? (size_t)o->size : d.cap;
    for (int i = 0; i < o->clients; i++) {
        d.ed[i].quota = o->edits;
    }
    if (drive_expect(&d) != 0) {
        goto cleanup;
    }
    /* One item to edit, filled by editor 0 before anyone subscribes. */
    struct editor *e0 = &d.ed[0];
    int64_t seq = 0;
    if ((e0->c = connect_token(&s, token)) == NULL) {
        goto cleanup;
    }
    int64_t id = create_item(e0->c, &seq);
    if (id < 0 || cli_text_init(&e0->t, MEETING, "item", id, NULL, "body", "", 0, seq) != 0) {
        goto cleanup;
    }
    int64_t fill_start = now_us();
    if (fill > 0 && fill_text(e0, fill, deadline) != 0) {
        goto cleanup;
    }
    double fill_s = (double)(now_us() - fill_start) / 1e6;
    /* Everyone starts from the filled text at the seq after it. */
    if (drive_connect(&d, &s, token, id) != 0) {
        goto cleanup;
    }
    long long wb0 = proc_write_bytes(s.pid);
    double scpu0 = proc_cpu_s(s.pid), bcpu0 = self_cpu_s();
    if (drive_run(&d) != 0) {
        goto cleanup;
    }
    /* Right after the last acknowledgement: only what the timed edits made durable. */
    long long wb1 = proc_write_bytes(s.pid);
    double scpu1 = proc_cpu_s(s.pid), bcpu1 = self_cpu_s();
    double elapsed = (double)(d.end - d.start) / 1e6;
    size_t text_bytes = 0;
    int64_t head = 0;
    bool converged = drive_converged(&d, e0->c, id, &text_bytes, &head);
    long long wb2 = -1;
    if (o->idle_wait_s > 0) {
        /* What the server still writes once the edits stop (checkpoints, WAL), counted
         * from the last acknowledgement. */
        int64_t until = d.end + (int64_t)(o->idle_wait_s * 1e6);
        while (now_us() < until) {
            int64_t left = until - now_us();
            usleep(left > 100000 ? 100000 : (useconds_t)(left > 0 ? left : 0));
        }
        wb2 = proc_write_bytes(s.pid);
    }
    printf("{\"mode\": \"edits\", \"clients\": %d, \"subscribers\": %d, \"target_rate\": %.0f, "
           "\"size\": %d, \"fill_seconds\": %.3f, \"edits_submitted\": %zu, "
           "\"edits_acknowledged\": %zu, \"seconds\": %.3f, \"edits_per_s\": %.0f, ",
           o->clients, o->subscribers, o->rate, o->size, fill_s, d.submitted, d.acked, elapsed,
           (double)d.acked / elapsed);
    print_lat("submit_to_ack", &d.ack);
    printf(", ");
    print_lat("submit_to_receipt", &d.fan);
    printf(", \"text_bytes\": %zu, \"op_bytes_mean\": %.1f", text_bytes,
           d.submitted ? (double)d.op_bytes / (double)d.submitted : 0);
    printf(", \"server_write_bytes_per_edit\": %.0f",
           d.acked ? (double)(wb1 - wb0) / (double)d.acked : 0);
    if (o->idle_wait_s > 0) {
        printf(", \"idle_wait_s\": %g, \"server_write_bytes_per_edit_after_idle\": %.0f",
               o->idle_wait_s, d.acked ? (double)(wb2 - wb0) / (double)d.acked : 0);
    }
    printf(", \"server_cpu_s\": %.2f, \"bench_cpu_s\": %.2f", scpu1 - scpu0, bcpu1 - bcpu0);
    printf(", \"converged\": %s, \"server_peak_rss_kib\": %ld}\n", converged ? "true" : "false",
           proc_kib(s.pid, "VmHWM"));
    fflush(stdout);
    rc = converged && d.acked == d.expected ? 0 : 1;
cleanup:
    drive_free(&d);
    server_stop(&s);
    return rc;
}

/* One read of the record at a past seq: method with {meeting, at[, format]} through c, each
 * answered before the next. Returns 0, 1 for an error answer (or a wrong seq), -1 when the
 * connection failed or the deadline passed (*timed_out then). */
static int travel_read(struct cli_conn *c, const char *method, int64_t head, int64_t deadline,
                       struct samples *lat, bool *timed_out)
{
    int64_t at = 1 + (int64_t)((unsigned)rand() % (unsigned)head);
    int left = ms_left(deadline);
    if (left == 0) {
        *timed_out = true;
        return -1;
    }
    cli_conn_set_timeout(c, left);
    struct cli_msg *m = NULL;
    int64_t t0 = now_us();
    int r = strcmp(method, "report.export") == 0
                ? cli_conn_callf(c, &m, method, "{s:s, s:s, s:I}", "meeting", MEETING, "format",
                                 "text", "at", at)
                : cli_conn_callf(c, &m, method, "{s:s, s:I}", "meeting", MEETING, "at", at);
    int64_t t1 = now_us();
    if (r != 0) {
        *timed_out = r == PROTO_ETIMEDOUT;
        fprintf(stderr, "confer-bench: %s at %lld: %s\n", method, (long long)at,
                *timed_out ? "timed out" : cli_conn_error(c));
        return -1;
    }
    int rc = 0;
    if (m->error) {
        fprintf(stderr, "confer-bench: %s at %lld: %s: %s\n", method, (long long)at,
                m->code ? m->code : "error", m->message ? m->message : "");
        rc = 1;
    } else if (result_seq(m) != at) {
        fprintf(stderr, "confer-bench: %s at %lld answered seq %lld\n", method, (long long)at,
                (long long)result_seq(m));
        rc = 1;
    } else {
        sample_add(lat, (double)(t1 - t0) / 1000.0);
    }
    cli_msg_free(m);
    return rc;
}

static int run_travel(struct opts *o)
{
    struct server s = {0};
    struct drive d;
    struct samples get = {0}, exp = {0};
    struct cli_conn *reader = NULL;
    char token[64];
    int rc = 1, errors = 0;
    bool timed_out = false, converged = false;
    size_t text_bytes = 0;
    int64_t head = 0;
    double build_s = 0, scpu_build = 0, scpu_reads = 0;
    int64_t deadline = now_us() + (int64_t)o->timeout_s * 1000000;
    if (drive_init(&d, o->clients, o->clients) != 0 || server_start(&s) != 0 ||
        get_token(&s, token, sizeof(token)) != 0) {
        goto cleanup;
    }
    d.deadline = deadline;
    d.edit = travel_edit;
    size_t room = text_room(o->clients) - FILL_CHUNK;
    d.target = (size_t)o->size < room ? (size_t)o->size : room;
    d.del_len = d.target / (size_t)o->edits ? d.target / (size_t)o->edits : 1;
    for (int i = 0; i < o->clients; i++) {
        d.ed[i].quota = o->edits / o->clients + (i < o->edits % o->clients);
    }
    if (drive_expect(&d) != 0 || (reader = connect_token(&s, token)) == NULL) {
        goto cleanup;
    }
    int64_t seq = 0;
    int64_t id = create_item(reader, &seq);
    if (id < 0 || drive_connect(&d, &s, token, id) != 0) {
        goto cleanup;
    }
    double scpu0 = proc_cpu_s(s.pid);
    if (drive_run(&d) != 0) {
        goto cleanup;
    }
    build_s = (double)(d.end - d.start) / 1e6;
    double scpu1 = proc_cpu_s(s.pid);
    scpu_build = scpu1 - scpu0;
    if (d.acked < d.expected) {
        timed_out = true;
        fprintf(stderr, "confer-bench: the build timed out after %zu of %zu edits\n", d.acked,
                d.expected);
    }
    /* Past the deadline, a moment more to read back how far the build came. */
    cli_conn_set_timeout(reader, ms_left(deadline) > 2000 ? ms_left(deadline) : 2000);
    converged = drive_converged(&d, reader, id, &text_bytes, &head);
    /* The reads: one at a time on a connection of their own, at seqs drawn the same way at
     * every run. */
    srand(12345);
    for (int i = 0; !timed_out && head > 0 && i < o->gets; i++) {
        int r = travel_read(reader, "meeting.get", head, deadline, &get, &timed_out);
        errors += r > 0 || (r < 0 && !timed_out);
        if (r < 0) {
            break;
        }
    }
    for (int i = 0; !timed_out && head > 0 && i < o->gets / 5; i++) {
        int r = travel_read(reader, "report.export", head, deadline, &exp, &timed_out);
        errors += r > 0 || (r < 0 && !timed_out);
        if (r < 0) {
            break;
        }
    }
    scpu_reads = proc_cpu_s(s.pid) - scpu1;
    printf("{\"mode\": \"travel\", \"clients\": %d, \"size\": %d, \"text_bytes\": %zu, "
           "\"edits\": %zu, \"head_seq\": %lld, \"build_seconds\": %.3f, "
           "\"build_edits_per_s\": %.0f, \"op_bytes_mean\": %.1f, \"converged\": %s, ",
           o->clients, o->size, text_bytes, d.acked, (long long)head, build_s,
           build_s > 0 ? (double)d.acked / build_s : 0,
           d.submitted ? (double)d.op_bytes / (double)d.submitted : 0,
           converged ? "true" : "false");
    print_lat("get_at", &get);
    printf(", ");
    print_lat("export_at", &exp);
    printf(", \"errors\": %d, \"timed_out\": %s, \"server_cpu_s\": {\"build\": %.2f, \"reads\": "
           "%.2f}, \"server_peak_rss_kib\": %ld}\n",
           errors, timed_out ? "true" : "false", scpu_build, scpu_reads, proc_kib(s.pid, "VmHWM"));
    fflush(stdout);
    rc = errors == 0 && !timed_out && converged ? 0 : 1;
cleanup:
    cli_conn_free(reader);
    drive_free(&d);
    free(get.v);
    free(exp.v);
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

/* ---- typing: keystrokes of live editors to the screens of watchers ---- */

/* The keystrokes an op in flight carries: editor e's keys [from, from + n). */
struct flight {
    char cid[40];
    int e;
    size_t from, n;
    int64_t seq; /* once acknowledged (live pages match on it) */
};

/* ---- live pages (PROTOCOL.md section 14): raw HTTP streams of the live view ---- */

struct arrival {
    int64_t seq, at;
};

struct page {
    int fd;
    char pre[32]; /* the start of the line being read */
    size_t npre;
    struct arrival *v;
    size_t n, cap;
    bool updated; /* has had its first update */
};

static int page_open(struct page *p, int port, const char *token)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256];
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        return -1;
    }
    int n = snprintf(req, sizeof(req), "GET /v/%s/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", token);
    if (write(p->fd, req, (size_t)n) != n) {
        return -1;
    }
    fcntl(p->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Reads what a page was sent, noting when each "id: SEQ" line came. Returns -1 at its end. */
static int page_read(struct page *p, int64_t now)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(p->fd, buf, sizeof(buf));
        if (n == 0) {
            return -1;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        for (ssize_t k = 0; k < n; k++) {
            if (buf[k] != '\n') {
                if (p->npre < sizeof(p->pre) - 1) {
                    p->pre[p->npre++] = buf[k];
                }
                continue;
            }
            p->pre[p->npre] = '\0';
            if (strncmp(p->pre, "id: ", 4) == 0) {
                if (p->n == p->cap) {
                    size_t cap = p->cap ? p->cap * 2 : 64;
                    struct arrival *v = realloc(p->v, cap * sizeof(*v));
                    if (v == NULL) {
                        return -1;
                    }
                    p->v = v;
                    p->cap = cap;
                }
                p->v[p->n++] = (struct arrival){.seq = atoll(p->pre + 4), .at = now};
            } else if (strncmp(p->pre, "event: update", 13) == 0) {
                p->updated = true;
            }
            p->npre = 0;
        }
    }
}

/* When page p first showed seq or a later one; -1 when it never did. */
static int64_t page_seen(const struct page *p, int64_t seq)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->v[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < p->n ? p->v[lo].at : -1;
}

/* A share link of the bench meeting: its token. */
static int make_share(struct cli_conn *c, char *token, size_t cap)
{
    struct cli_msg *m = NULL;
    int rc = -1;
    if (cli_conn_callf(c, &m, "share.create", "{s:s, s:s}", "meeting", MEETING, "label", "bench") ==
            0 &&
        m->error == NULL) {
        const msgpack_object *t = proto_mp_map_get(m->result, "token");
        if (t && t->type == MSGPACK_OBJECT_STR && t->via.str.size < cap) {
            memcpy(token, t->via.str.ptr, t->via.str.size);
            token[t->via.str.size] = '\0';
            rc = 0;
        }
    }
    cli_msg_free(m);
    return rc;
}

struct typist {
    struct cli_conn *c;
    struct cli_text t;
    int64_t *key_at; /* the time of each key typed, us */
    size_t keys, sent_keys;
    size_t cursor;
    int64_t next_key;
    char last_cid[40];
};

/* Notes what a replica has just sent (a new cid in flight): the keys typed since the last
 * send. */
static void note_flight(struct typist *ty, int e, struct flight *fl, size_t *nfl, size_t cap)
{
    if (!ty->t.inflight || strcmp(ty->t.inflight_cid, ty->last_cid) == 0) {
        return;
    }
    snprintf(ty->last_cid, sizeof(ty->last_cid), "%s", ty->t.inflight_cid);
    if (*nfl < cap) {
        fl[*nfl] = (struct flight){.e = e, .from = ty->sent_keys, .n = ty->keys - ty->sent_keys};
        snprintf(fl[*nfl].cid, sizeof(fl[*nfl].cid), "%s", ty->t.inflight_cid);
        (*nfl)++;
    }
    ty->sent_keys = ty->keys;
}

static const struct flight *flight_find(const struct flight *fl, size_t n, const char *cid,
                                        size_t len)
{
    for (size_t i = n; i-- > 0;) { /* the newest first: what arrives is recent */
        if (strlen(fl[i].cid) == len && memcmp(fl[i].cid, cid, len) == 0) {
            return &fl[i];
        }
    }
    return NULL;
}

static int run_typing(struct opts *o)
{
    struct server s = {0};
    char token[64];
    int rc = 1;
    int ne = o->clients, nw = o->subscribers, np = o->pages, total = ne + nw + np;
    struct page *pg = calloc((size_t)(np ? np : 1), sizeof(*pg));
    long rss_before = 0, rss_pages = 0;
    struct samples plat = {0};
    double secs = o->seconds;
    size_t max_keys = (size_t)(o->rate * secs) + 16, cap_fl = (size_t)ne * max_keys + 16;
    struct typist *ty = calloc((size_t)ne, sizeof(*ty));
    struct cli_conn **wc = calloc((size_t)(nw ? nw : 1), sizeof(*wc));
    struct pollfd *pfd = calloc((size_t)total, sizeof(*pfd));
    struct flight *fl = calloc(cap_fl, sizeof(*fl));
    size_t nfl = 0, edits = 0, typed = 0, late = 0;
    struct samples lat = {0};
    int64_t seq = 0;
    if (ty == NULL || wc == NULL || pfd == NULL || fl == NULL || server_start(&s) != 0 ||
        get_token(&s, token, sizeof(token)) != 0) {
        goto cleanup;
    }
    for (int i = 0; i < ne; i++) {
        if ((ty[i].c = connect_token(&s, token)) == NULL ||
            (ty[i].key_at = calloc(max_keys, sizeof(int64_t))) == NULL) {
            goto cleanup;
        }
    }
    int64_t id = create_item(ty[0].c, &seq);
    if (id < 0) {
        goto cleanup;
    }
    for (int i = 0; i < ne; i++) {
        struct editor e = {.c = ty[i].c};
        if (subscribe_replica(&e, id) != 0) {
            goto cleanup;
        }
        ty[i].t = e.t;
        cli_conn_set_timeout(ty[i].c, 10000);
        pfd[i].fd = cli_conn_fd(ty[i].c);
        pfd[i].events = POLLIN;
    }
    for (int i = 0; i < nw; i++) {
        struct cli_msg *m = NULL;
        if ((wc[i] = connect_token(&s, token)) == NULL ||
            cli_conn_callf(wc[i], &m, "meeting.subscribe", "{s:s}", "meeting", MEETING) != 0 ||
            m->error) {
            cli_msg_free(m);
            goto cleanup;
        }
        cli_msg_free(m);
        pfd[ne + i].fd = cli_conn_fd(wc[i]);
        pfd[ne + i].events = POLLIN;
    }
    int64_t deadline = now_us() + (int64_t)o->timeout_s * 1000000;
    if (np > 0) {
        char share[64];
        if (pg == NULL || make_share(ty[0].c, share, sizeof(share)) != 0) {
            fprintf(stderr, "confer-bench: cannot make a share link\n");
            goto cleanup;
        }
        usleep(200000); /* the link is live once durable */
        rss_before = proc_kib(s.pid, "VmRSS");
        for (int i = 0; i < np; i++) {
            if (page_open(&pg[i], s.http_port, share) != 0) {
                fprintf(stderr, "confer-bench: cannot open live page %d\n", i);
                goto cleanup;
            }
            pfd[ne + nw + i].fd = pg[i].fd;
            pfd[ne + nw + i].events = POLLIN;
        }
        /* Every page has its sections before anyone types. */
        int ready = 0;
        while (ready < np && now_us() < deadline) {
            if (poll(pfd + ne + nw, (nfds_t)np, 50) < 0 && errno != EINTR) {
                goto cleanup;
            }
            ready = 0;
            for (int i = 0; i < np; i++) {
                if ((pfd[ne + nw + i].revents & POLLIN) && page_read(&pg[i], now_us()) != 0) {
                    fprintf(stderr, "confer-bench: live page %d closed\n", i);
                    goto cleanup;
                }
                ready += pg[i].updated;
            }
        }
        if (ready < np) {
            fprintf(stderr, "confer-bench: only %d of %d live pages opened\n", ready, np);
            goto cleanup;
        }
        rss_pages = proc_kib(s.pid, "VmRSS");
    }
    int64_t start = now_us(), stop = start + (int64_t)(secs * 1e6);
    int64_t gap = (int64_t)(1e6 / o->rate);
    for (int i = 0; i < ne; i++) {
        ty[i].next_key = start + gap * i / ne; /* spread over the first key interval */
        ty[i].cursor = 0;
    }
    bool typing = true;
    while (now_us() < deadline) {
        int64_t now = now_us();
        typing = now < stop;
        /* Keys that are due: one character at the editor's cursor, sent when nothing is in
         * flight, else composed with what follows (the client rule of section 6). */
        for (int i = 0; typing && i < ne; i++) {
            struct typist *t = &ty[i];
            while (t->next_key <= now && t->keys < max_keys) {
                struct proto_op op;
                char ch[2] = {(char)('a' + (int)(t->keys % 26)), '\0'};
                size_t n = proto_utf8_count(t->t.text, t->t.len);
                size_t at = t->cursor < n ? t->cursor : n;
                proto_op_init(&op);
                proto_op_skip(&op, at);
                proto_op_insert(&op, (t->keys % 12 == 11) ? " " : ch, 1);
                if (cli_text_local(&t->t, &op) != 0) {
                    proto_op_free(&op);
                    goto cleanup;
                }
                proto_op_free(&op);
                t->cursor = at + 1;
                t->key_at[t->keys++] = now_us();
                typed++;
                if (cli_text_flush(&t->t, t->c) != 0) {
                    goto cleanup;
                }
                note_flight(t, i, fl, &nfl, cap_fl);
                /* 10 keys/s with a little jitter, as people type */
                t->next_key += gap / 2 + (int64_t)(rand() % (int)(gap > 0 ? gap : 1));
            }
        }
        bool idle = true;
        for (int i = 0; i < ne; i++) {
            idle = idle && cli_text_idle(&ty[i].t) && ty[i].sent_keys == ty[i].keys;
        }
        if (!typing && idle && now_us() > stop + 500000) {
            break; /* everything typed is acknowledged and had time to arrive */
        }
        int64_t next = stop;
        for (int i = 0; typing && i < ne; i++) {
            next = ty[i].next_key < next ? ty[i].next_key : next;
        }
        int wait_ms = typing ? (int)((next - now_us()) / 1000) : 20;
        wait_ms = wait_ms < 0 ? 0 : wait_ms > 50 ? 50 : wait_ms;
        if (poll(pfd, (nfds_t)total, wait_ms) < 0 && errno != EINTR) {
            goto cleanup;
        }
        for (int i = ne + nw; i < total; i++) {
            if ((pfd[i].revents & (POLLIN | POLLHUP)) &&
                page_read(&pg[i - ne - nw], now_us()) != 0) {
                fprintf(stderr, "confer-bench: live page %d closed by the server\n", i - ne - nw);
                goto cleanup;
            }
        }
        for (int i = 0; i < ne + nw; i++) {
            struct cli_conn *c = i < ne ? ty[i].c : wc[i - ne];
            if (!(pfd[i].revents & POLLIN) && cli_conn_pending(c) == 0) {
                continue;
            }
            struct cli_msg *m = NULL;
            while (cli_conn_next(c, 0, &m) == 0) {
                int64_t got = now_us();
                if (i >= ne && m->kind == PROTO_RPC_NOTIFY && m->method &&
                    strcmp(m->method, "event") == 0) {
                    /* A watcher's screen: every key this event carries has arrived. */
                    const msgpack_object *cid = proto_mp_map_get(m->params, "cid");
                    const struct flight *f =
                        cid && cid->type == MSGPACK_OBJECT_STR
                            ? flight_find(fl, nfl, cid->via.str.ptr, cid->via.str.size)
                            : NULL;
                    for (size_t k = 0; f && k < f->n; k++) {
                        sample_add(&lat, (double)(got - ty[f->e].key_at[f->from + k]) / 1000.0);
                    }
                    late += f == NULL && cid != NULL;
                } else if (i < ne) {
                    bool was = ty[i].t.inflight;
                    if (was && m->kind == PROTO_RPC_RESPONSE &&
                        m->msgid == ty[i].t.inflight_msgid) {
                        const struct flight *f = flight_find(fl, nfl, ty[i].t.inflight_cid,
                                                             strlen(ty[i].t.inflight_cid));
                        if (f != NULL) {
                            ((struct flight *)f)->seq = result_seq(m);
                        }
                    }
                    if (cli_text_handle(&ty[i].t, c, m) < 0) {
                        fprintf(stderr, "confer-bench: edit refused: %s\n", ty[i].t.error);
                        cli_msg_free(m);
                        goto cleanup;
                    }
                    edits += was && m->kind == PROTO_RPC_RESPONSE;
                    note_flight(&ty[i], i, fl, &nfl, cap_fl);
                }
                cli_msg_free(m);
                m = NULL;
            }
        }
    }
    size_t sent = 0;
    for (int i = 0; i < ne; i++) {
        sent += (size_t)ty[i].t.acked;
    }
    printf("{\"mode\": \"typing\", \"editors\": %d, \"keys_per_s_each\": %.1f, \"watchers\": %d, "
           "\"seconds\": %.1f, \"keys\": %zu, \"text_edits\": %zu, "
           "\"text_edits_per_100_keys\": %.1f, ",
           ne, o->rate, nw, secs, typed, sent, typed ? 100.0 * (double)sent / (double)typed : 0);
    print_lat("key_to_watcher", &lat);
    if (np > 0) {
        /* Each key typed, to each page: from the key to the first update of that page at
         * the key's seq or later. */
        size_t missed = 0;
        for (size_t k = 0; k < nfl; k++) {
            for (int p = 0; fl[k].seq > 0 && p < np; p++) {
                int64_t at = page_seen(&pg[p], fl[k].seq);
                for (size_t j = 0; j < fl[k].n; j++) {
                    if (at < 0) {
                        missed++;
                    } else {
                        sample_add(&plat,
                                   (double)(at - ty[fl[k].e].key_at[fl[k].from + j]) / 1000.0);
                    }
                }
            }
        }
        printf(", \"pages\": %d, ", np);
        print_lat("key_to_page", &plat);
        printf(", \"page_keys_missed\": %zu, \"server_rss_kib_before_pages\": %ld, "
               "\"server_rss_kib_with_pages\": %ld, \"server_rss_kib_per_page\": %.2f",
               missed, rss_before, rss_pages, (double)(rss_pages - rss_before) / np);
    }
    printf(", \"unmatched_events\": %zu, \"server_peak_rss_kib\": %ld}\n", late,
           proc_kib(s.pid, "VmHWM"));
    fflush(stdout);
    (void)edits;
    rc = lat.n > 0 || plat.n > 0 ? 0 : 1;
cleanup:
    for (int i = 0; ty && i < ne; i++) {
        cli_text_free(&ty[i].t);
        cli_conn_free(ty[i].c);
        free(ty[i].key_at);
    }
    for (int i = 0; wc && i < nw; i++) {
        cli_conn_free(wc[i]);
    }
    for (int i = 0; pg && i < np; i++) {
        if (pg[i].fd > 0) {
            close(pg[i].fd);
        }
        free(pg[i].v);
    }
    free(pg);
    free(plat.v);
    free(ty);
    free(wc);
    free(pfd);
    free(fl);
    free(lat.v);
    server_stop(&s);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: confer-bench edits [--clients N] [--edits M] [--rate R] [--subscribers S]\n"
          "                          [--size BYTES] [--idle-wait SECONDS]\n"
          "       confer-bench travel [--size BYTES] [--edits M] [--gets K] [--clients N]\n"
          "       confer-bench typing [--clients E] [--rate K] [--subscribers W] [--seconds S]\n"
          "       confer-bench idle [--conns K]\n"
          "edits:  defaults N 10, M 1000 each, R 0 (as fast as acknowledged), S 0, BYTES 0\n"
          "        (fill the text to about BYTES first), SECONDS 0 (no second write figure)\n"
          "travel: defaults BYTES 900000, M 40000 in all, K 50 meeting.get (and K/5\n"
          "        report.export) at random past seqs, N 4\n"
          "typing: E 3 live editors typing K 10 keys/s each for S 10 s, W 50 watchers: the\n"
          "        time from a keystroke to the watchers' receipt, and text.edits per 100 keys;\n"
          "        --pages P adds P live pages (the live view's stream): the time from a\n"
          "        keystroke to each page, and the server's memory per page\n"
          "idle:   default K 1000\n"
          "options: --timeout SECONDS (default 120, the whole run); $CONFERD names the server\n"
          "binary\n",
          f);
}

int main(int argc, char **argv)
{
    /* -1: the mode's default. */
    struct opts o = {.clients = -1,
                     .edits = -1,
                     .subscribers = -1,
                     .conns = 1000,
                     .size = -1,
                     .gets = 50,
                     .timeout_s = 120};
    static const struct option lo[] = {
        {"clients", required_argument, NULL, 'c'},
        {"edits", required_argument, NULL, 'e'},
        {"rate", required_argument, NULL, 'r'},
        {"subscribers", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"size", required_argument, NULL, 'z'},
        {"gets", required_argument, NULL, 'g'},
        {"idle-wait", required_argument, NULL, 'i'},
        {"seconds", required_argument, NULL, 'S'},
        {"pages", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
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
        case 'z':
            o.size = atoi(optarg);
            break;
        case 'g':
            o.gets = atoi(optarg);
            break;
        case 'i':
            o.idle_wait_s = atof(optarg);
            break;
        case 'S':
            o.seconds = atof(optarg);
            break;
        case 'p':
            o.pages = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool travel = strcmp(o.mode, "travel") == 0;
    bool typing = strcmp(o.mode, "typing") == 0;
    if (typing) {
        o.clients = o.clients == -1 ? 3 : o.clients;
        o.rate = o.rate > 0 ? o.rate : 10;
        o.subscribers = o.subscribers >= 0 ? o.subscribers : 50;
        o.seconds = o.seconds > 0 ? o.seconds : 10;
        if (o.seconds > 3600 || o.rate > 1000 || o.clients > 1000 || o.pages < 0 ||
            o.pages > 20000) {
            usage(stderr);
            return 2;
        }
    }
    if (o.subscribers == -1) {
        o.subscribers = 0;
    }
    if (o.clients == -1) {
        o.clients = travel ? 4 : 10;
    }
    if (o.edits == -1) {
        o.edits = travel ? 40000 : 1000;
    }
    if (o.size == -1) {
        o.size = travel ? 900000 : 0;
    }
    if (o.clients < 1 || o.clients > 5000 || o.edits < 1 || o.edits > 1000000 || o.conns < 1 ||
        o.conns > 200000 || o.subscribers < 0 || o.timeout_s < 1 || o.size < 0 ||
        o.size > 64 * 1024 * 1024 || (travel && (o.size < 1 || o.edits < o.clients)) ||
        o.gets < 1 || o.gets > 1000000 || !(o.idle_wait_s >= 0 && o.idle_wait_s <= 3600)) {
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
    if (travel) {
        return run_travel(&o);
    }
    if (typing) {
        return run_typing(&o);
    }
    if (strcmp(o.mode, "idle") == 0) {
        return run_idle(&o);
    }
    usage(stderr);
    return 2;
}
