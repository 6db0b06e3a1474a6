/* cli_conn.c - client connection: TCP, handshake, host-key pinning, msgpack-RPC calls. */
#include "cli_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_config.h"
#include "cli_pack.h"
#include "proto_msgpack.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define READ_CHUNK       65536
#define BATCH_MAX        4096 /* corked batches stay under the server's pre-login frame limit */
#define CLOSE_TIMEOUT_MS 1000

/* One decrypted frame, shared by the messages unpacked from it: msgpack-c's objects point
 * into it for their strings and bins. Wiped when the last message goes. */
struct cli_frame {
    size_t refs;
    size_t len;
    uint8_t data[];
};

struct cli_conn {
    int fd;
    int dead;         /* 0 while usable, else the PROTO_E* code that ended it */
    bool established; /* the secure channel is up */
    bool peer_final;  /* the server closed (TAG_FINAL or end of stream) */
    bool corked;
    uint32_t next_msgid;
    int timeout_ms;
    enum cli_trust trust;
    char hostport[CLI_HOSTPORT_MAX];
    uint8_t host_pk[PROTO_KEY_BYTES];
    char fp[PROTO_FINGERPRINT_LEN];
    struct proto_channel ch;
    struct proto_reader rd;
    struct proto_buf out; /* corked requests */
    struct cli_msg *head;
    struct cli_msg *tail;
    size_t pending;
    char *closing_reason;
    char error[6144];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Absolute deadline for a timeout in ms; -1 (no deadline) for a negative timeout. */
static int64_t deadline_in(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
}

/* Milliseconds left for poll(): -1 for no deadline, 0 when passed. */
static int remaining(int64_t deadline)
{
    if (deadline < 0) {
        return -1;
    }
    int64_t left = deadline - mono_ms();
    if (left <= 0) {
        return 0;
    }
    return left > INT_MAX ? INT_MAX : (int)left;
}

static void set_error(struct cli_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

/* Marks c broken with rc and a message; the first failure wins. Returns c->dead. */
static int fail(struct cli_conn *c, int rc, const char *fmt, ...)
{
    if (c->dead != 0) {
        return c->dead;
    }
    c->dead = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    return rc;
}

static int fail_closed(struct cli_conn *c)
{
    c->peer_final = true;
    if (c->closing_reason != NULL) {
        return fail(c, PROTO_ECLOSED, "the server closed the connection: %s", c->closing_reason);
    }
    return fail(c, PROTO_ECLOSED, "the server closed the connection");
}

static void frame_unref(struct cli_frame *f)
{
    if (f != NULL && --f->refs == 0) {
        sodium_memzero(f->data, f->len);
        free(f);
    }
}

void cli_msg_free(struct cli_msg *m)
{
    if (m == NULL) {
        return;
    }
    msgpack_unpacked_destroy(&m->up_);
    frame_unref(m->frame_);
    free(m->text_);
    free(m);
}

bool cli_msg_is_error(const struct cli_msg *m, const char *code)
{
    return m != NULL && m->error != NULL && m->code != NULL && strcmp(m->code, code) == 0;
}

int64_t cli_msg_retry_after_ms(const struct cli_msg *m)
{
    int64_t v = 0;
    if (m == NULL || m->data == NULL || proto_param_i64(m->data, "retry_after_ms", &v) != 0 ||
        v < 0) {
        return -1;
    }
    return v;
}

/* ---- socket I/O ---- */

static int read_available(struct cli_conn *c);

/* Writes all of p[0..n) before deadline. With read_meanwhile (and the channel up), reads
 * what arrives while the socket is not writable, so that a peer writing to us while we write
 * cannot deadlock us. A partial write breaks the framing, so failures are fatal. */
static int write_all(struct cli_conn *c, const uint8_t *p, size_t n, int64_t deadline,
                     bool read_meanwhile)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            if (read_meanwhile && c->established && !c->peer_final) {
                pfd.events |= POLLIN;
            }
            int pr = poll(&pfd, 1, remaining(deadline));
            if (pr < 0 && errno == EINTR) {
                continue;
            }
            if (pr < 0) {
                return fail(c, PROTO_EIO, "poll failed: %s", strerror(errno));
            }
            if (pr == 0) {
                return fail(c, PROTO_ETIMEDOUT,
                            "timed out sending to the server (it does not read); "
                            "connection dropped");
            }
            if (pfd.revents & POLLIN) {
                int rc = read_available(c);
                if (rc != 0 && rc != PROTO_EAGAIN) {
                    return rc;
                }
            }
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            return fail_closed(c);
        }
        return fail(c, PROTO_EIO, "cannot send to the server: %s",
                    w < 0 ? strerror(errno) : "no progress");
    }
    return 0;
}

/* Receives once into the frame reader. With wait, polls until deadline for data. Returns 0
 * when bytes came, PROTO_EAGAIN (no wait, nothing there), PROTO_ETIMEDOUT (not fatal), or
 * a fatal error. */
static int recv_once(struct cli_conn *c, int64_t deadline, bool wait)
{
    uint8_t *p = NULL;
    size_t n = 0;
    int rc = proto_reader_space(&c->rd, READ_CHUNK, &p, &n);
    if (rc == PROTO_ETOOBIG) {
        return fail(c, PROTO_EINVAL,
                    "the server sent a frame length of 0 or over the limit of %u bytes%s",
                    (unsigned)c->rd.max, c->established ? "" : " (is it a confer server?)");
    }
    if (rc != 0) {
        return fail(c, rc, "out of memory for a frame from the server");
    }
    for (;;) {
        ssize_t got = recv(c->fd, p, n, 0);
        if (got > 0) {
            proto_reader_commit(&c->rd, (size_t)got);
            return 0;
        }
        if (got == 0) {
            return fail_closed(c);
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait) {
                proto_reader_commit(&c->rd, 0); /* releases an idle buffer */
                return PROTO_EAGAIN;
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, remaining(deadline));
            if (pr < 0 && errno != EINTR) {
                return fail(c, PROTO_EIO, "poll failed: %s", strerror(errno));
            }
            if (pr == 0) {
                proto_reader_commit(&c->rd, 0);
                return PROTO_ETIMEDOUT;
            }
            continue;
        }
        if (errno == ECONNRESET) {
            return fail_closed(c);
        }
        return fail(c, PROTO_EIO, "cannot read from the server: %s", strerror(errno));
    }
}

/* Reads the next whole frame (handshake phase). *p is valid until the next reader call. */
static int read_frame(struct cli_conn *c, int64_t deadline, const uint8_t **p, uint32_t *n)
{
    for (;;) {
        int r = proto_reader_next(&c->rd, p, n);
        if (r == 1) {
            return 0;
        }
        if (r < 0) {
            return fail(c, PROTO_EINVAL,
                        "the server sent a frame length of 0 or over the limit of %u bytes%s",
                        (unsigned)c->rd.max, c->established ? "" : " (is it a confer server?)");
        }
        int rc = recv_once(c, deadline, true);
        if (rc != 0) {
            return rc;
        }
    }
}

/* Writes one frame: u32be length || payload. */
static int write_frame(struct cli_conn *c, const uint8_t *payload, size_t len, int64_t deadline)
{
    uint8_t hdr[PROTO_FRAME_HDR];
    proto_frame_put_len(hdr, (uint32_t)len);
    int rc = write_all(c, hdr, sizeof(hdr), deadline, false);
    return rc != 0 ? rc : write_all(c, payload, len, deadline, false);
}

/* Encrypts plain[0..len) as one frame and sends it. */
static int write_sealed(struct cli_conn *c, const uint8_t *plain, size_t len, int final,
                        int64_t deadline, bool read_meanwhile)
{
    if (c->dead != 0) {
        return c->dead;
    }
    if (c->peer_final) {
        return fail_closed(c);
    }
    if (len > PROTO_SEND_MAX) {
        set_error(c, "message of %zu bytes is over the 16 MiB limit", len);
        return PROTO_ETOOBIG;
    }
    uint8_t *buf = malloc(PROTO_FRAME_HDR + len + PROTO_ABYTES);
    if (buf == NULL) {
        set_error(c, "out of memory");
        return PROTO_ENOMEM;
    }
    int rc = proto_channel_seal(&c->ch, plain, len, buf + PROTO_FRAME_HDR, final);
    if (rc != 0) {
        free(buf);
        return fail(c, PROTO_ECRYPTO, "cannot encrypt a message");
    }
    proto_frame_put_len(buf, (uint32_t)(len + PROTO_ABYTES));
    rc = write_all(c, buf, PROTO_FRAME_HDR + len + PROTO_ABYTES, deadline, read_meanwhile);
    free(buf);
    return rc;
}

/* ---- incoming messages ---- */

static void enqueue(struct cli_conn *c, struct cli_msg *m)
{
    m->next_ = NULL;
    if (c->tail != NULL) {
        c->tail->next_ = m;
    } else {
        c->head = m;
    }
    c->tail = m;
    c->pending++;
}

static struct cli_msg *dequeue(struct cli_conn *c)
{
    struct cli_msg *m = c->head;
    if (m != NULL) {
        c->head = m->next_;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        m->next_ = NULL;
        c->pending--;
    }
    return m;
}

/* Unlinks the response to msgid from the queue, or returns NULL. */
static struct cli_msg *take_response(struct cli_conn *c, uint32_t msgid)
{
    struct cli_msg *prev = NULL;
    for (struct cli_msg *m = c->head; m != NULL; prev = m, m = m->next_) {
        if (m->kind != PROTO_RPC_RESPONSE || m->msgid != msgid) {
            continue;
        }
        if (prev != NULL) {
            prev->next_ = m->next_;
        } else {
            c->head = m->next_;
        }
        if (c->tail == m) {
            c->tail = prev;
        }
        m->next_ = NULL;
        c->pending--;
        return m;
    }
    return NULL;
}

/* Makes a NUL-terminated copy of up to two strings into one allocation: a\0b\0. */
static char *dup_strs(const char *a, size_t al, const char *b, size_t bl)
{
    char *t = malloc(al + bl + 2);
    if (t != NULL) {
        if (al > 0) {
            memcpy(t, a, al);
        }
        t[al] = '\0';
        if (bl > 0) {
            memcpy(t + al + 1, b, bl);
        }
        t[al + 1 + bl] = '\0';
    }
    return t;
}

/* Fills m's public fields from its unpacked object. Returns 0 or PROTO_EINVAL/ENOMEM. */
static int fill_msg(struct cli_conn *c, struct cli_msg *m)
{
    struct proto_rpc_msg rpc;
    memset(&rpc, 0, sizeof(rpc));
    if (proto_rpc_decode(&m->up_.data, &rpc) != 0 || rpc.kind == PROTO_RPC_REQUEST) {
        return PROTO_EINVAL;
    }
    m->kind = rpc.kind;
    if (rpc.kind == PROTO_RPC_NOTIFY) {
        m->text_ = dup_strs(rpc.method, rpc.method_len, NULL, 0);
        if (m->text_ == NULL) {
            return PROTO_ENOMEM;
        }
        m->method = m->text_;
        m->params = rpc.params;
        if (proto_rpc_method_is(&rpc, "closing")) {
            const char *r = NULL;
            size_t rl = 0;
            if (proto_param_str(rpc.params, "reason", &r, &rl) != 0) {
                r = "no reason given";
                rl = strlen(r);
            }
            free(c->closing_reason);
            c->closing_reason = dup_strs(r, rl, NULL, 0);
        }
        return 0;
    }
    m->msgid = rpc.msgid;
    m->result = rpc.result;
    m->error = rpc.error;
    if (rpc.error != NULL) {
        const char *code = NULL;
        const char *msg = NULL;
        size_t cl = 0;
        size_t ml = 0;
        if (proto_param_str(rpc.error, "code", &code, &cl) != 0 ||
            proto_param_str(rpc.error, "message", &msg, &ml) != 0) {
            return PROTO_EINVAL;
        }
        m->text_ = dup_strs(code, cl, msg, ml);
        if (m->text_ == NULL) {
            return PROTO_ENOMEM;
        }
        m->code = m->text_;
        m->message = m->text_ + cl + 1;
        m->data = proto_mp_map_get(rpc.error, "data");
        if (m->data != NULL && m->data->type == MSGPACK_OBJECT_NIL) {
            m->data = NULL;
        }
    }
    return 0;
}

/* Unpacks every message of a decrypted frame and queues it. */
static int queue_frame(struct cli_conn *c, struct cli_frame *f)
{
    size_t good = 0;
    size_t off = 0;
    int check = proto_mp_check_seq(f->data, f->len, &good);

    while (off < good) {
        struct cli_msg *m = calloc(1, sizeof(*m));
        if (m == NULL) {
            return fail(c, PROTO_ENOMEM, "out of memory for a message from the server");
        }
        msgpack_unpacked_init(&m->up_);
        if (msgpack_unpack_next(&m->up_, (const char *)f->data, good, &off) !=
            MSGPACK_UNPACK_SUCCESS) {
            cli_msg_free(m);
            return fail(c, PROTO_EINVAL, "the server sent a message that cannot be read");
        }
        m->frame_ = f;
        f->refs++;
        int rc = fill_msg(c, m);
        if (rc != 0) {
            cli_msg_free(m);
            return fail(c, rc,
                        rc == PROTO_ENOMEM ? "out of memory"
                                           : "the server sent a message of the wrong shape");
        }
        enqueue(c, m);
    }
    if (check != 0) {
        return fail(c, PROTO_EINVAL, "the server sent bytes that are not msgpack");
    }
    return 0;
}

static int handle_frame(struct cli_conn *c, const uint8_t *payload, size_t len)
{
    if (len < PROTO_ABYTES) {
        return fail(c, PROTO_EINVAL, "the server sent a frame too short to be encrypted");
    }
    struct cli_frame *f = malloc(sizeof(*f) + len - PROTO_ABYTES + 1);
    if (f == NULL) {
        return fail(c, PROTO_ENOMEM, "out of memory for a frame from the server");
    }
    f->refs = 1;
    f->len = 0;
    size_t mlen = 0;
    int r = proto_channel_open(&c->ch, payload, len, f->data, &mlen);
    if (r == 1) {
        frame_unref(f);
        return fail_closed(c); /* graceful TAG_FINAL: the server sends nothing more */
    }
    if (r != 0) {
        frame_unref(f);
        return fail(c, PROTO_ECRYPTO,
                    "a frame from the server failed to decrypt; connection closed");
    }
    f->len = mlen;
    int rc = mlen > 0 ? queue_frame(c, f) : 0;
    frame_unref(f);
    return rc;
}

/* Handles every whole frame the reader holds. */
static int drain(struct cli_conn *c)
{
    while (c->dead == 0) {
        const uint8_t *p = NULL;
        uint32_t n = 0;
        int r = proto_reader_next(&c->rd, &p, &n);
        if (r == 0) {
            return 0;
        }
        if (r < 0) {
            return fail(c, PROTO_EINVAL,
                        "the server sent a frame length of 0 or over the limit of %u bytes",
                        (unsigned)c->rd.max);
        }
        int rc = handle_frame(c, p, n);
        if (rc != 0) {
            return rc;
        }
    }
    return c->dead;
}

/* Reads without waiting and handles what came. PROTO_EAGAIN when nothing was there. */
static int read_available(struct cli_conn *c)
{
    int rc = recv_once(c, 0, false);
    if (rc != 0) {
        return rc;
    }
    return drain(c);
}

/* Waits until deadline for at least one frame and handles it. */
static int pump(struct cli_conn *c, int64_t deadline)
{
    size_t before = c->pending;
    int rc = drain(c);
    if (rc != 0) {
        return rc;
    }
    while (c->pending == before && c->dead == 0) {
        rc = recv_once(c, deadline, true);
        if (rc != 0) {
            return rc;
        }
        rc = drain(c);
        if (rc != 0) {
            return rc;
        }
    }
    return c->dead;
}

/* ---- host keys ---- */

static ssize_t read_answer(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    bool over = false;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return n > 0 ? (ssize_t)n : -1;
        }
        if (ch == '\n') {
            break;
        }
        if (n + 1 < cap) {
            buf[n++] = ch;
        } else {
            over = true;
        }
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    return over ? 0 : (ssize_t)n;
}

static bool default_confirm(void *ud, const char *hostport, const char *fp)
{
    (void)ud;
    fprintf(stderr,
            "The host key of %s is not known yet. Its fingerprint is\n"
            "    %s\n"
            "Compare it with the one the server's operator reads from `conferd "
            "fingerprint`.\n",
            hostport, fp);
    for (int tries = 0; tries < 3; tries++) {
        char ans[16];
        fprintf(stderr, "Trust this key and remember it (yes/no)? ");
        fflush(stderr);
        if (read_answer(STDIN_FILENO, ans, sizeof(ans)) < 0) {
            fprintf(stderr, "\n");
            return false;
        }
        if (strcasecmp(ans, "yes") == 0 || strcasecmp(ans, "y") == 0) {
            return true;
        }
        if (strcasecmp(ans, "no") == 0 || strcasecmp(ans, "n") == 0) {
            return false;
        }
        fprintf(stderr, "Please type yes or no.\n");
    }
    return false;
}

static int refuse_mismatch(struct cli_conn *c, const char *path, const struct cli_known_host *e)
{
    char known_fp[PROTO_FINGERPRINT_LEN];
    char line[CLI_HOSTPORT_MAX + 64];
    proto_fingerprint(e->pk, known_fp);
    if (cli_known_hosts_line(e->hostport, e->pk, line, sizeof(line)) != 0) {
        snprintf(line, sizeof(line), "%s ...", e->hostport);
    }
    return fail(c, PROTO_EPERM,
                "the host key of %s does not match the pinned one: refusing to connect.\n"
                "  pinned:  %s (line %u of %s)\n"
                "  offered: %s\n"
                "Someone may be intercepting the connection, or the server's key was replaced.\n"
                "Ask the server's operator for its fingerprint (conferd fingerprint). Only if it "
                "is %s,\nremove this line from %s and connect again:\n  %s",
                c->hostport, known_fp, e->line, path, c->fp, c->fp, path, line);
}

/* Checks c->host_pk against the policy (see cli_host_policy). accepted, when set, is the
 * key the user accepted on a previous connection: it alone decides. *asked is set when the
 * user was asked. */
static int check_host_key(struct cli_conn *c, const struct cli_host_policy *pol,
                          const uint8_t *accepted, bool *asked)
{
    struct cli_known_hosts kh;
    int rc = 0;

    memset(&kh, 0, sizeof(kh));
    proto_fingerprint(c->host_pk, c->fp);
    if (accepted != NULL) {
        if (sodium_memcmp(accepted, c->host_pk, PROTO_KEY_BYTES) != 0) {
            return fail(c, PROTO_EPERM,
                        "the host key of %s changed between two connections (now %s): "
                        "refusing to connect",
                        c->hostport, c->fp);
        }
        return 0;
    }
    if (pol->expect_fp != NULL && strcmp(pol->expect_fp, c->fp) != 0) {
        return fail(c, PROTO_EPERM,
                    "the host key of %s does not have the fingerprint you gave: refusing to "
                    "connect.\n"
                    "  expected: %s\n"
                    "  offered:  %s\n"
                    "Check the fingerprint with the server's operator (conferd fingerprint).",
                    c->hostport, pol->expect_fp, c->fp);
    }
    if (pol->known_hosts != NULL) {
        rc = cli_known_hosts_load(&kh, pol->known_hosts, pol->warn);
        if (rc != 0) {
            return fail(c, PROTO_EIO, "cannot read %s: %s", pol->known_hosts, proto_strerror(rc));
        }
        const struct cli_known_host *e = cli_known_hosts_find(&kh, c->hostport);
        if (e != NULL) {
            if (sodium_memcmp(e->pk, c->host_pk, PROTO_KEY_BYTES) == 0) {
                c->trust = CLI_TRUST_KNOWN;
            } else {
                rc = refuse_mismatch(c, pol->known_hosts, e);
            }
            cli_known_hosts_free(&kh);
            return rc;
        }
        cli_known_hosts_free(&kh);
    }
    bool ok = pol->expect_fp != NULL || pol->trust_new;
    if (!ok && pol->interactive) {
        cli_confirm_fn confirm = pol->confirm != NULL ? pol->confirm : default_confirm;
        *asked = true;
        ok = confirm(pol->confirm_ud, c->hostport, c->fp);
        if (!ok) {
            return fail(c, PROTO_EPERM, "the host key of %s was not accepted; not connected",
                        c->hostport);
        }
    }
    if (!ok) {
        char hint[256];
        if (pol->unknown_hint == NULL) {
            snprintf(hint, sizeof(hint),
                     "Check it with the server's operator (conferd fingerprint), then pass "
                     "--host-key %s, or --trust-new-host to accept it as it is.",
                     c->fp);
        }
        return fail(c, PROTO_EPERM, "the host key of %s is not known yet (fingerprint %s).\n%s",
                    c->hostport, c->fp, pol->unknown_hint != NULL ? pol->unknown_hint : hint);
    }
    if (pol->known_hosts == NULL) {
        c->trust = CLI_TRUST_ACCEPTED;
        return 0;
    }
    char err[1024];
    rc = cli_known_hosts_add(pol->known_hosts, c->hostport, c->host_pk, err, sizeof(err));
    if (rc != 0) {
        return fail(c, PROTO_EIO, "cannot pin the host key of %s: %s", c->hostport, err);
    }
    c->trust = CLI_TRUST_PINNED;
    return 0;
}

/* ---- handshake ---- */

static void describe_versions(const uint8_t *sh, size_t n, char *out, size_t cap)
{
    msgpack_unpacked up;
    size_t off = 0;
    size_t vlen = 0;
    const msgpack_object *arr = NULL;

    snprintf(out, cap, "an unknown version");
    if (proto_mp_check_one(sh, n, &vlen) != 0) {
        return;
    }
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)sh, vlen, &off) == MSGPACK_UNPACK_SUCCESS &&
        proto_param_array(&up.data, "versions", &arr) == 0 && arr->via.array.size > 0) {
        size_t used = (size_t)snprintf(out, cap, "version");
        for (uint32_t i = 0; i < arr->via.array.size && used < cap; i++) {
            const msgpack_object *v = &arr->via.array.ptr[i];
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                used += (size_t)snprintf(out + used, cap - used, "%s %llu", i ? "," : "",
                                         (unsigned long long)v->via.u64);
            }
        }
    }
    msgpack_unpacked_destroy(&up);
}

/* Runs the handshake of PROTOCOL.md section 2 on c. With stop_after_ask, returns right
 * after the user was asked about the key (the caller connects again). */
static int handshake(struct cli_conn *c, const struct cli_host_policy *pol, const uint8_t *accepted,
                     int64_t deadline, bool stop_after_ask, bool *asked)
{
    struct proto_client_hs hs;
    struct proto_keys keys;
    uint8_t sh[PROTO_HELLO_MAX];
    uint8_t hdr[PROTO_STREAM_HDR];
    const uint8_t *p = NULL;
    uint32_t n = 0;
    size_t shlen = 0;
    int rc = 0;

    memset(&hs, 0, sizeof(hs));
    memset(&keys, 0, sizeof(keys));
    if (proto_hs_client_start(&hs) != 0) {
        rc = fail(c, PROTO_ECRYPTO, "cannot make a key for the handshake");
        goto cleanup;
    }
    /* ClientHello {"proto": "confer", "v": 1, "kx": bin(32)} */
    rc = write_frame(c, hs.hello, hs.hello_len, deadline);
    if (rc != 0) {
        goto cleanup;
    }
    /* ServerHello {"proto", "v", "kx", "host", "sig"} or {"error": "unsupported_version"} */
    proto_reader_set_max(&c->rd, PROTO_HELLO_MAX);
    rc = read_frame(c, deadline, &p, &n);
    if (rc != 0) {
        goto io_error;
    }
    memcpy(sh, p, n);
    shlen = n;
    proto_reader_set_max(&c->rd, PROTO_STREAM_HDR);
    rc = proto_hs_client_finish(&hs, sh, shlen, c->host_pk, &keys);
    if (rc == PROTO_EVERSION) {
        char versions[128];
        describe_versions(sh, shlen, versions, sizeof(versions));
        rc = fail(c, PROTO_EVERSION,
                  "%s does not speak version %d of the confer protocol (it speaks %s): use a "
                  "confer client that matches the server",
                  c->hostport, PROTO_VERSION, versions);
        goto cleanup;
    }
    if (rc == PROTO_ECRYPTO) {
        rc = fail(c, PROTO_ECRYPTO,
                  "the handshake with %s failed: bad host signature or key exchange; "
                  "not connected",
                  c->hostport);
        goto cleanup;
    }
    if (rc != 0) {
        rc = fail(c, PROTO_EINVAL, "%s sent a malformed handshake (is it a confer server?)",
                  c->hostport);
        goto cleanup;
    }
    rc = check_host_key(c, pol, accepted, asked);
    if (rc != 0 || (*asked && stop_after_ask)) {
        goto cleanup;
    }
    /* keys are final: our stream header goes out, the server's comes in */
    if (proto_channel_init(&c->ch, &keys, hdr) != 0) {
        rc = fail(c, PROTO_ECRYPTO, "cannot start the encrypted stream");
        goto cleanup;
    }
    rc = write_frame(c, hdr, sizeof(hdr), deadline);
    if (rc != 0) {
        goto cleanup;
    }
    rc = read_frame(c, deadline, &p, &n);
    if (rc != 0) {
        goto io_error;
    }
    if (proto_channel_recv_header(&c->ch, p, n) != 0) {
        rc = fail(c, PROTO_ECRYPTO, "%s sent a bad stream header; not connected", c->hostport);
        goto cleanup;
    }
    proto_reader_set_max(&c->rd, CLI_RECV_MAX);
    c->established = true;
    goto cleanup;

io_error:
    if (rc == PROTO_ETIMEDOUT) {
        rc = fail(c, PROTO_ETIMEDOUT, "%s did not complete the handshake in time", c->hostport);
    } else if (rc == PROTO_ECLOSED) {
        c->dead = 0; /* replace the generic message */
        rc = fail(c, PROTO_ECLOSED,
                  "%s closed the connection during the handshake (is it a confer server?)",
                  c->hostport);
    }
cleanup:
    sodium_memzero(&hs, sizeof(hs));
    sodium_memzero(&keys, sizeof(keys));
    sodium_memzero(hdr, sizeof(hdr));
    return rc;
}

static struct cli_conn *conn_new(int fd, const char *hostport)
{
    struct cli_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->fd = fd;
    c->next_msgid = 1;
    c->timeout_ms = CLI_CALL_TIMEOUT_MS;
    snprintf(c->hostport, sizeof(c->hostport), "%s", hostport);
    proto_reader_init(&c->rd, PROTO_HELLO_MAX);
    proto_buf_init(&c->out);
    return c;
}

static void conn_destroy(struct cli_conn *c, bool graceful)
{
    if (c == NULL) {
        return;
    }
    if (graceful && c->established && c->dead == 0 && !c->peer_final) {
        int64_t deadline = deadline_in(CLOSE_TIMEOUT_MS);
        if (c->out.len > 0) {
            (void)write_sealed(c, c->out.data, c->out.len, 0, deadline, true);
        }
        if (c->dead == 0) {
            (void)write_sealed(c, NULL, 0, 1, deadline, true); /* empty TAG_FINAL */
        }
        shutdown(c->fd, SHUT_WR);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    for (struct cli_msg *m = dequeue(c); m != NULL; m = dequeue(c)) {
        cli_msg_free(m);
    }
    proto_channel_wipe(&c->ch);
    proto_reader_free(&c->rd);
    proto_buf_free(&c->out, 1);
    free(c->closing_reason);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

void cli_conn_close(struct cli_conn *c)
{
    conn_destroy(c, true);
}

void cli_conn_free(struct cli_conn *c)
{
    conn_destroy(c, false);
}

static void copy_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", msg);
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return PROTO_EIO;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Connects to the first address of host:port that answers before deadline. */
static int tcp_connect(const char *host, uint16_t port, int64_t deadline, int timeout_ms,
                       int *fdout, char *err, size_t errlen)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char portstr[8];
    int last = 0;
    bool timed_out = false;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    int g = getaddrinfo(host, portstr, &hints, &res);
    if (g != 0) {
        if (err != NULL) {
            snprintf(err, errlen, "cannot find the address of %s: %s", host,
                     g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        }
        return PROTO_EIO;
    }
    for (struct addrinfo *ai = res; ai != NULL && !timed_out; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (set_nonblock(fd) != 0) {
            last = errno;
            close(fd);
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr;
            do {
                pr = poll(&pfd, 1, remaining(deadline));
            } while (pr < 0 && errno == EINTR);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (pr == 0) {
                timed_out = true;
                soerr = ETIMEDOUT;
            } else if (pr < 0) {
                soerr = errno;
            } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
                soerr = errno;
            }
            rc = soerr == 0 ? 0 : -1;
            errno = soerr;
        }
        if (rc != 0) {
            last = errno;
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        freeaddrinfo(res);
        *fdout = fd;
        return 0;
    }
    freeaddrinfo(res);
    if (err != NULL) {
        char hp[CLI_HOSTPORT_MAX];
        if (cli_hostport_format(host, port, hp, sizeof(hp)) != 0) {
            snprintf(hp, sizeof(hp), "%s", host);
        }
        if (timed_out) {
            snprintf(err, errlen, "cannot connect to %s: no answer within %d ms", hp, timeout_ms);
        } else {
            snprintf(err, errlen, "cannot connect to %s: %s", hp,
                     last != 0 ? strerror(last) : "no address");
        }
    }
    return timed_out ? PROTO_ETIMEDOUT : PROTO_EIO;
}

int cli_conn_open_fd(struct cli_conn **out, int fd, const char *hostport,
                     const struct cli_host_policy *pol, int timeout_ms, char *err, size_t errlen)
{
    struct cli_conn *c = NULL;
    bool asked = false;

    *out = NULL;
    if (fd < 0 || hostport == NULL || pol == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        copy_err(err, errlen, "bad arguments");
        return PROTO_EINVAL;
    }
    if (set_nonblock(fd) != 0) {
        close(fd);
        copy_err(err, errlen, "cannot set up the socket");
        return PROTO_EIO;
    }
    c = conn_new(fd, hostport);
    if (c == NULL) {
        close(fd);
        copy_err(err, errlen, "out of memory");
        return PROTO_ENOMEM;
    }
    int rc =
        handshake(c, pol, NULL, deadline_in(timeout_ms > 0 ? timeout_ms : CLI_CONNECT_TIMEOUT_MS),
                  false, &asked);
    if (rc != 0) {
        copy_err(err, errlen, c->error);
        cli_conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int cli_conn_open(struct cli_conn **out, const char *host, uint16_t port,
                  const struct cli_host_policy *pol, int timeout_ms, char *err, size_t errlen)
{
    char name[CLI_HOST_MAX];
    char hostport[CLI_HOSTPORT_MAX];
    uint8_t accepted[PROTO_KEY_BYTES];
    bool have_accepted = false;
    enum cli_trust trust = CLI_TRUST_KNOWN;
    int rc = PROTO_EINVAL;

    *out = NULL;
    if (host == NULL || pol == NULL || port == 0) {
        copy_err(err, errlen, "bad arguments");
        return PROTO_EINVAL;
    }
    /* known_hosts keys are canonical: lower case, IPv6 without brackets here */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(name)) {
        copy_err(err, errlen, "bad host name");
        return PROTO_EINVAL;
    }
    for (size_t i = 0; i < hl; i++) {
        char ch = host[i];
        name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    name[hl] = '\0';
    if (cli_hostport_format(name, port, hostport, sizeof(hostport)) != 0) {
        copy_err(err, errlen, "host name too long");
        return PROTO_EINVAL;
    }
    int tmo = timeout_ms > 0 ? timeout_ms : CLI_CONNECT_TIMEOUT_MS;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t deadline = deadline_in(tmo);
        int fd = -1;
        bool asked = false;
        rc = tcp_connect(name, port, deadline, tmo, &fd, err, errlen);
        if (rc != 0) {
            return rc;
        }
        struct cli_conn *c = conn_new(fd, hostport);
        if (c == NULL) {
            close(fd);
            copy_err(err, errlen, "out of memory");
            return PROTO_ENOMEM;
        }
        rc = handshake(c, pol, have_accepted ? accepted : NULL, deadline, attempt == 0, &asked);
        if (rc == 0 && asked) {
            /* the answer may have taken longer than the server's login deadline */
            memcpy(accepted, c->host_pk, sizeof(accepted));
            have_accepted = true;
            trust = c->trust;
            cli_conn_free(c);
            continue;
        }
        if (rc != 0) {
            copy_err(err, errlen, c->error);
            cli_conn_free(c);
            return rc;
        }
        if (have_accepted) {
            c->trust = trust;
        }
        *out = c;
        return 0;
    }
    copy_err(err, errlen, "cannot connect");
    return rc != 0 ? rc : PROTO_EIO;
}

/* ---- accessors ---- */

const char *cli_conn_hostport(const struct cli_conn *c)
{
    return c->hostport;
}

const uint8_t *cli_conn_host_key(const struct cli_conn *c)
{
    return c->host_pk;
}

const char *cli_conn_fingerprint(const struct cli_conn *c)
{
    return c->fp;
}

enum cli_trust cli_conn_trust(const struct cli_conn *c)
{
    return c->trust;
}

void cli_conn_set_timeout(struct cli_conn *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

const char *cli_conn_error(const struct cli_conn *c)
{
    return c->error;
}

const char *cli_conn_closing_reason(const struct cli_conn *c)
{
    return c->closing_reason;
}

size_t cli_conn_pending(const struct cli_conn *c)
{
    return c->pending;
}

int cli_conn_fd(const struct cli_conn *c)
{
    return c->fd;
}

/* ---- requests ---- */

static bool is_map(const uint8_t *p, size_t len)
{
    size_t vlen = 0;
    if (p == NULL || len == 0 || proto_mp_check_one(p, len, &vlen) != 0 || vlen != len) {
        return false;
    }
    return (p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf;
}

/* Sends the corked batch, if any. */
static int flush_out(struct cli_conn *c)
{
    if (c->out.len == 0) {
        return 0;
    }
    int rc = write_sealed(c, c->out.data, c->out.len, 0, deadline_in(c->timeout_ms), true);
    sodium_memzero(c->out.data, c->out.len);
    c->out.len = 0;
    return rc;
}

int cli_conn_send(struct cli_conn *c, const char *method, const uint8_t *params, size_t len,
                  uint32_t *msgid)
{
    struct proto_buf req;
    msgpack_packer pk;
    int rc = 0;

    proto_buf_init(&req);
    if (c->dead != 0) {
        return c->dead;
    }
    if (method == NULL || method[0] == '\0' || !proto_utf8_valid(method, strlen(method)) ||
        (params != NULL && !is_map(params, len)) || (params == NULL && len != 0)) {
        set_error(c, "bad request: the method must be a string and the parameters one map");
        return PROTO_EINVAL;
    }
    uint32_t id = c->next_msgid++;
    if (c->next_msgid == 0) {
        c->next_msgid = 1; /* msgids run from 1 */
    }
    /* [0, msgid, method, params] */
    msgpack_packer_init(&pk, &req, proto_buf_msgpack_write);
    rc = proto_rpc_pack_request(&pk, id, method);
    if (rc == 0) {
        rc = params != NULL ? proto_buf_append(&req, params, len)
                            : (msgpack_pack_map(&pk, 0) == 0 ? 0 : PROTO_ENOMEM);
    }
    if (rc != 0) {
        set_error(c, "out of memory");
        goto cleanup;
    }
    if (req.len > PROTO_SEND_MAX) {
        set_error(c, "request of %zu bytes is over the 16 MiB limit", req.len);
        rc = PROTO_ETOOBIG;
        goto cleanup;
    }
    if (c->corked) {
        if (c->out.len > 0 && c->out.len + req.len > BATCH_MAX) {
            rc = flush_out(c);
            if (rc != 0) {
                goto cleanup;
            }
        }
        rc = proto_buf_append(&c->out, req.data, req.len);
        if (rc != 0) {
            set_error(c, "out of memory");
            goto cleanup;
        }
    } else {
        rc = write_sealed(c, req.data, req.len, 0, deadline_in(c->timeout_ms), true);
        if (rc != 0) {
            goto cleanup;
        }
    }
    if (msgid != NULL) {
        *msgid = id;
    }

cleanup:
    proto_buf_free(&req, 1);
    return rc;
}

/* Packs fmt into b (NULL fmt: nothing). */
static int pack_params(struct cli_conn *c, struct proto_buf *b, const char *fmt, va_list ap)
{
    if (fmt == NULL) {
        return 0;
    }
    int rc = cli_vpackf(b, fmt, ap);
    if (rc != 0) {
        set_error(c, "bad parameter format \"%s\"", fmt);
    }
    return rc;
}

int cli_conn_sendf(struct cli_conn *c, uint32_t *msgid, const char *method, const char *fmt, ...)
{
    struct proto_buf b;
    va_list ap;

    proto_buf_init(&b);
    va_start(ap, fmt);
    int rc = pack_params(c, &b, fmt, ap);
    va_end(ap);
    if (rc == 0) {
        rc = cli_conn_send(c, method, fmt != NULL ? b.data : NULL, fmt != NULL ? b.len : 0, msgid);
    }
    proto_buf_free(&b, 1);
    return rc;
}

void cli_conn_cork(struct cli_conn *c)
{
    c->corked = true;
}

int cli_conn_flush(struct cli_conn *c)
{
    c->corked = false;
    return flush_out(c);
}

int cli_conn_next(struct cli_conn *c, int timeout_ms, struct cli_msg **out)
{
    int64_t deadline = deadline_in(timeout_ms);
    int rc = 0;

    *out = NULL;
    if (c->head == NULL && c->dead == 0) {
        rc = flush_out(c);
        if (rc != 0 && c->head == NULL) {
            return rc;
        }
    }
    for (;;) {
        if (c->head != NULL) {
            *out = dequeue(c);
            return 0;
        }
        if (c->dead != 0) {
            return c->dead;
        }
        rc = pump(c, deadline);
        if (rc != 0 && c->head == NULL) {
            if (rc == PROTO_ETIMEDOUT) {
                set_error(c, "no message from the server within %d ms", timeout_ms);
            }
            return rc;
        }
    }
}

int cli_conn_wait(struct cli_conn *c, uint32_t msgid, int timeout_ms, struct cli_msg **out)
{
    int64_t deadline = deadline_in(timeout_ms);

    *out = take_response(c, msgid);
    if (*out != NULL) {
        return 0;
    }
    int rc = flush_out(c);
    for (;;) {
        *out = take_response(c, msgid);
        if (*out != NULL) {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        if (c->dead != 0) {
            return c->dead;
        }
        rc = pump(c, deadline);
        if (rc == PROTO_ETIMEDOUT) {
            set_error(c, "no answer from the server within %d ms", timeout_ms);
        }
    }
}

int cli_conn_call(struct cli_conn *c, const char *method, const uint8_t *params, size_t len,
                  struct cli_msg **out)
{
    uint32_t id = 0;
    *out = NULL;
    int rc = cli_conn_send(c, method, params, len, &id);
    if (rc != 0) {
        return rc;
    }
    return cli_conn_wait(c, id, c->timeout_ms, out);
}

int cli_conn_callf(struct cli_conn *c, struct cli_msg **out, const char *method, const char *fmt,
                   ...)
{
    struct proto_buf b;
    va_list ap;

    *out = NULL;
    proto_buf_init(&b);
    va_start(ap, fmt);
    int rc = pack_params(c, &b, fmt, ap);
    va_end(ap);
    if (rc == 0) {
        rc = cli_conn_call(c, method, fmt != NULL ? b.data : NULL, fmt != NULL ? b.len : 0, out);
    }
    proto_buf_free(&b, 1); /* may hold a password */
    return rc;
}

int cli_conn_send_plain(struct cli_conn *c, const uint8_t *plain, size_t len)
{
    int rc = flush_out(c);
    if (rc != 0) {
        return rc;
    }
    return write_sealed(c, plain, len, 0, deadline_in(c->timeout_ms), false);
}

int cli_conn_send_raw(struct cli_conn *c, const uint8_t *bytes, size_t len)
{
    if (c->dead != 0) {
        return c->dead;
    }
    return write_all(c, bytes, len, deadline_in(c->timeout_ms), false);
}
