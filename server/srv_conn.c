/* srv_conn.c - one client connection: handshake, frames, limits, output batching.
 *
 * Transport only: it turns bytes into decrypted messages for the on_message callback srv.c
 * gave it, and queued messages back into one encrypted frame per loop turn. RPC code
 * never touches the socket, and this file never names the layers above it.
 *
 * Nothing here closes a connection synchronously where a caller could be walking
 * connections or subscribers: mark_close puts it on srv->close_asap, and srv_conn_end_turn
 * closes the marked ones (Redis CLIENT_CLOSE_ASAP / freeClientsInAsyncFreeQueue).
 */
#define _GNU_SOURCE
#include "srv_conn.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
/* The sanitizer's allocator replaces glibc's: its equivalent of malloc_trim. */
void __sanitizer_purge_allocator(void);
#endif

#include "proto_msgpack.h"

/* srv_log reads a connection as its tag (srv_base.h). */
_Static_assert(offsetof(struct srv_conn, tag) == 0, "the tag must be the first member");

#define READ_SUGGEST   (64 * 1024)
#define CLOSE_GRACE_MS 2000
#define TRIM_BYTES     (1024 * 1024) /* a close that frees this much trims the heap */

struct srv_wreq {
    uv_write_t req;
    struct srv_conn *conn;
    size_t size;
    uint8_t data[];
};

static void process(struct srv_conn *conn);
static void update_reading(struct srv_conn *conn);
static void user_uncount(struct srv_conn *conn);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_deadline(uv_timer_t *t);

static void conn_free(struct srv_conn *conn)
{
    struct srv *srv = conn->srv;
    if (conn->dirty) {
        for (struct srv_conn **pp = &srv->dirty; *pp; pp = &(*pp)->dirty_next) {
            if (*pp == conn) {
                *pp = conn->dirty_next;
                break;
            }
        }
    }
    if (conn->prev) {
        conn->prev->next = conn->next;
    } else if (srv->conns == conn) {
        srv->conns = conn->next;
    }
    if (conn->next) {
        conn->next->prev = conn->prev;
    }
    srv->nconns--;
    proto_reader_free(&conn->rd);
    proto_buf_free(&conn->in, 1);
    proto_buf_free(&conn->out, 1);
    free(conn->subs);
    proto_channel_wipe(&conn->ch);
    sodium_memzero(conn->token_hash, sizeof(conn->token_hash));
    free(conn);
}

static void maybe_free(struct srv_conn *conn)
{
    if (conn->closed && conn->handles_open == 0 && conn->refs == 0) {
        conn_free(conn);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct srv_conn *conn = h->data;
    conn->handles_open--;
    maybe_free(conn);
}

void srv_conn_hold(struct srv_conn *conn)
{
    conn->refs++;
}

void srv_conn_done(struct srv_conn *conn)
{
    conn->refs--;
    maybe_free(conn);
}

bool srv_conn_closing(const struct srv_conn *conn)
{
    return conn->closed || conn->close_asap || conn->state == SRV_CONN_CLOSING;
}

/* Counts output bytes of conn against the limits. A marked or closed connection's bytes
 * left the count when it was marked (its writes are cancelled at the close). */
static void count_out(struct srv_conn *conn, ptrdiff_t delta)
{
    if (conn->closed || conn->close_asap) {
        return;
    }
    conn->queued = (size_t)((ptrdiff_t)conn->queued + delta);
    conn->srv->out_total = (size_t)((ptrdiff_t)conn->srv->out_total + delta);
}

/* Marks conn to be closed at the end of the loop turn: it handles and takes nothing more,
 * and the output it had queued is freed now (its memory is what a slow consumer costs). */
static void mark_close(struct srv_conn *conn, const char *reason)
{
    struct srv *srv = conn->srv;
    if (conn->closed || conn->close_asap) {
        return;
    }
    srv->out_total -= conn->queued;
    conn->queued = 0;
    conn->close_asap = true;
    conn->close_reason = reason;
    conn->state = SRV_CONN_CLOSING;
    if (conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
    /* Not conn->in: the message being handled may point into it. */
    proto_buf_free(&conn->out, 1);
    conn->close_next = NULL;
    if (srv->close_asap_tail) {
        srv->close_asap_tail->close_next = conn;
    } else {
        srv->close_asap = conn;
    }
    srv->close_asap_tail = conn;
}

/* Closes the handles now; pending writes are cancelled. Only called at the end of a turn
 * (srv_conn_end_turn), never under a loop over connections or subscribers. */
static void close_now(struct srv_conn *conn)
{
    if (conn->closed) {
        return;
    }
    if (!conn->close_asap) {
        conn->srv->out_total -= conn->queued;
        conn->queued = 0;
    }
    conn->closed = true;
    conn->state = SRV_CONN_CLOSING;
    conn->busy = true; /* nothing more is handled */
    user_uncount(conn);
    proto_buf_free(&conn->out, 1);
    if (conn->cb.on_close) {
        conn->cb.on_close(conn, conn->cb_data);
    }
    if (conn->write_pending >= TRIM_BYTES ||
        (conn->close_reason && strcmp(conn->close_reason, "slow consumer") == 0)) {
        conn->srv->trim = true; /* at the next turn, once its writes are cancelled */
    }
    uv_close((uv_handle_t *)&conn->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&conn->deadline, on_handle_closed);
    if (conn->close_reason) {
        srv_log(conn, SRV_LOG_INFO, "closed (%s)", conn->close_reason);
    } else {
        srv_log(conn, SRV_LOG_INFO, "closed");
    }
}

static void drop_slow(struct srv_conn *conn, size_t extra, const char *why)
{
    srv_log(conn, SRV_LOG_WARN, "slow consumer: %zu bytes queued%s, dropped", conn->queued + extra,
            why);
    mark_close(conn, "slow consumer");
}

/* Marks the connections with the most queued output as slow consumers until the total,
 * with extra bytes about to be queued, is within the global budget. */
static void enforce_budget(struct srv *srv, size_t extra)
{
    while (srv->out_total + extra > srv->cfg.output_budget) {
        struct srv_conn *big = NULL;
        for (struct srv_conn *c = srv->conns; c; c = c->next) {
            if (!c->closed && !c->close_asap && (big == NULL || c->queued > big->queued)) {
                big = c;
            }
        }
        if (big == NULL || big->queued == 0) {
            return;
        }
        drop_slow(big, 0, " (over the global output budget)");
    }
}

bool srv_conn_account(struct srv_conn *conn, ptrdiff_t delta)
{
    struct srv *srv = conn->srv;
    if (conn->closed || conn->close_asap) {
        return false;
    }
    if (delta > 0) {
        if (conn->queued + (size_t)delta > srv->cfg.output_limit) {
            drop_slow(conn, (size_t)delta, "");
            return false;
        }
        if (srv->out_total + (size_t)delta > srv->cfg.output_budget) {
            enforce_budget(srv, (size_t)delta);
            if (conn->close_asap) {
                return false;
            }
        }
    }
    count_out(conn, delta);
    return true;
}

static void on_deadline(uv_timer_t *t)
{
    struct srv_conn *conn = t->data;
    if (conn->state == SRV_CONN_READY) {
        srv_log(conn, SRV_LOG_INFO, "frame deadline passed: closing");
        mark_close(conn, "frame deadline");
        return;
    }
    if (conn->state != SRV_CONN_CLOSING) {
        srv_log(conn, SRV_LOG_INFO, "login deadline passed");
        mark_close(conn, "login deadline");
        return;
    }
    mark_close(conn, NULL); /* the closing grace period is over */
}

static void mark_dirty(struct srv_conn *conn)
{
    if (!conn->dirty) {
        conn->dirty = true;
        conn->dirty_next = conn->srv->dirty;
        conn->srv->dirty = conn;
    }
}

static void wreq_free(struct srv_wreq *w)
{
    sodium_memzero(w->data, w->size);
    free(w);
}

static void on_write(uv_write_t *req, int status)
{
    struct srv_wreq *w = (struct srv_wreq *)req;
    struct srv_conn *conn = w->conn;
    conn->write_pending -= w->size;
    count_out(conn, -(ptrdiff_t)w->size);
    wreq_free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            srv_log(conn, SRV_LOG_INFO, "write failed: %s", uv_strerror(status));
        }
        mark_close(conn, NULL);
        return;
    }
    if (conn->state == SRV_CONN_CLOSING && conn->write_pending == 0 && conn->out.len == 0) {
        mark_close(conn, NULL);
    }
}

/* Writes bytes, directly when the socket takes them, else through a write request. */
static int write_bytes(struct srv_conn *conn, const uint8_t *p, size_t n)
{
    if (conn->write_pending == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r < 0 && r != UV_EAGAIN) {
            return PROTO_EIO;
        }
        if (n == 0) {
            return 0;
        }
    }
    struct srv_wreq *w = malloc(sizeof(*w) + n);
    if (w == NULL) {
        return PROTO_ENOMEM;
    }
    w->conn = conn;
    w->size = n;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write) != 0) {
        wreq_free(w);
        return PROTO_EIO;
    }
    conn->write_pending += n;
    count_out(conn, (ptrdiff_t)n);
    return 0;
}

/* Sends a plaintext frame (handshake phase). */
static int send_plain_frame(struct srv_conn *conn, const uint8_t *p, size_t n)
{
    uint8_t frame[PROTO_FRAME_HDR + PROTO_HELLO_MAX];
    if (n > PROTO_HELLO_MAX) {
        return PROTO_ETOOBIG;
    }
    proto_frame_put_len(frame, (uint32_t)n);
    memcpy(frame + PROTO_FRAME_HDR, p, n);
    return write_bytes(conn, frame, PROTO_FRAME_HDR + n);
}

/* Encrypts the queued plaintext as one frame and writes it. Errors only mark. */
static void flush(struct srv_conn *conn)
{
    if (conn->closed || conn->close_asap || conn->out.len == 0) {
        return;
    }
    size_t n = conn->out.len;
    size_t flen = PROTO_FRAME_HDR + n + PROTO_ABYTES;
    uint8_t *frame = malloc(flen);
    if (frame == NULL) {
        srv_log(conn, SRV_LOG_ERROR, "out of memory sealing %zu bytes", n);
        mark_close(conn, NULL);
        return;
    }
    proto_frame_put_len(frame, (uint32_t)(n + PROTO_ABYTES));
    int rc = proto_channel_seal(&conn->ch, conn->out.data, n, frame + PROTO_FRAME_HDR, 0);
    count_out(conn, -(ptrdiff_t)n);
    proto_buf_free(&conn->out, 1); /* a login response's token may be in it */
    if (rc == 0) {
        rc = write_bytes(conn, frame, flen);
    }
    sodium_memzero(frame, flen);
    free(frame);
    if (rc != 0) {
        srv_log(conn, SRV_LOG_INFO, "write failed: %s", proto_strerror(rc));
        mark_close(conn, NULL);
        return;
    }
    if (conn->state == SRV_CONN_CLOSING && conn->write_pending == 0) {
        mark_close(conn, NULL);
    }
}

void srv_conn_flush_all(struct srv *srv)
{
    while (srv->dirty) {
        struct srv_conn *conn = srv->dirty;
        srv->dirty = conn->dirty_next;
        conn->dirty = false;
        conn->dirty_next = NULL;
        flush(conn);
    }
    enforce_budget(srv, 0);
}

void srv_conn_end_turn(struct srv *srv)
{
    if (srv->trim) {
        /* Slow consumers closed in an earlier turn: their cancelled writes are freed by
         * now; give the memory back to the system (glibc keeps it otherwise). */
        srv->trim = false;
#if defined(__SANITIZE_ADDRESS__)
        __sanitizer_purge_allocator();
#elif defined(__GLIBC__)
        malloc_trim(0);
#endif
    }
    /* Closing a connection can queue output to others (presence leave), which can mark
     * more of them: go on until both lists are empty. Each pass closes at least one
     * connection or empties the dirty list, so this ends. */
    srv_conn_flush_all(srv);
    while (srv->close_asap) {
        while (srv->close_asap) {
            struct srv_conn *conn = srv->close_asap;
            srv->close_asap = conn->close_next;
            if (srv->close_asap == NULL) {
                srv->close_asap_tail = NULL;
            }
            conn->close_next = NULL;
            close_now(conn);
        }
        srv_conn_flush_all(srv);
    }
}

void srv_conn_send(struct srv_conn *conn, const void *msg, size_t len)
{
    if (conn->closed || conn->close_asap) {
        return;
    }
    /* A frame holds whole messages only: cut the batch before it passes the limit. */
    if (conn->out.len > 0 && conn->out.len + len > PROTO_SEND_MAX) {
        flush(conn);
    }
    if (!srv_conn_account(conn, (ptrdiff_t)len)) {
        return;
    }
    if (proto_buf_append(&conn->out, msg, len) != 0) {
        count_out(conn, -(ptrdiff_t)len);
        srv_log(conn, SRV_LOG_ERROR, "out of memory queueing %zu bytes", len);
        mark_close(conn, NULL);
        return;
    }
    mark_dirty(conn);
}

void srv_conn_set_backlog(struct srv_conn *conn, unsigned n)
{
    conn->backlog = n;
    update_reading(conn);
}

void srv_conn_close(struct srv_conn *conn, const char *reason)
{
    if (conn->closed || conn->state == SRV_CONN_CLOSING) {
        return;
    }
    bool secure = conn->state == SRV_CONN_AUTH || conn->state == SRV_CONN_READY;
    if (reason != NULL && secure) {
        /* closing {"reason"} */
        struct proto_buf b = {0};
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
        proto_rpc_pack_notify(&pk, "closing");
        msgpack_pack_map(&pk, 1);
        proto_pack_cstr(&pk, "reason");
        proto_pack_cstr(&pk, reason);
        srv_conn_send(conn, b.data, b.len);
        proto_buf_free(&b, 0);
        srv_log(conn, SRV_LOG_INFO, "closing: %s", reason);
    }
    if (conn->close_asap) {
        return; /* the notification itself passed a limit */
    }
    conn->state = SRV_CONN_CLOSING;
    if (conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
    conn->frame_timer = false;
    if (conn->out.len == 0 && conn->write_pending == 0) {
        mark_close(conn, NULL);
        return;
    }
    /* The output goes at the end of the turn; give the last bytes a short while to leave,
     * then close regardless. */
    uv_timer_start(&conn->deadline, on_deadline, CLOSE_GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srv_conn *conn = h->data;
    uint8_t *p = NULL;
    size_t n = 0;
    (void)suggested;
    if (proto_reader_space(&conn->rd, READ_SUGGEST, &p, &n) != 0) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)p, (unsigned)n);
}

/* True when the reader holds the start of a frame that is not complete yet. */
static bool frame_started(const struct proto_reader *rd)
{
    size_t have = rd->len - rd->off;
    if (have == 0) {
        return false;
    }
    if (have < PROTO_FRAME_HDR) {
        return true;
    }
    return have - PROTO_FRAME_HDR < proto_frame_get_len(rd->buf + rd->off);
}

/* After login the deadline timer bounds the time a started frame takes to arrive (before
 * it, the login deadline does). It runs only while we read: a frame we stopped reading
 * is not the peer's delay. */
static void update_frame_timer(struct srv_conn *conn)
{
    if (conn->state != SRV_CONN_READY) {
        return;
    }
    bool want = conn->reading && frame_started(&conn->rd);
    if (want && !conn->frame_timer) {
        uv_timer_start(&conn->deadline, on_deadline, conn->srv->cfg.frame_timeout_ms, 0);
        conn->frame_timer = true;
    } else if (!want && conn->frame_timer) {
        uv_timer_stop(&conn->deadline);
        conn->frame_timer = false;
    }
}

static void update_reading(struct srv_conn *conn)
{
    if (conn->closed || conn->state == SRV_CONN_CLOSING) {
        return;
    }
    bool want = !conn->busy && conn->unanswered + conn->backlog <= SRV_MAX_UNANSWERED;
    if (want && !conn->reading) {
        if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0) {
            conn->reading = true;
        }
    } else if (!want && conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
    update_frame_timer(conn);
}

/* ClientHello -> ServerHello + our stream header. */
static int handle_hello(struct srv_conn *conn, const uint8_t *p, uint32_t n)
{
    uint8_t out[256];
    size_t out_len = 0;
    struct proto_keys keys;
    int rc = proto_hs_server_answer(&conn->srv->host, p, n, out, sizeof(out), &out_len, &keys);
    if (rc == PROTO_EVERSION) {
        srv_log(conn, SRV_LOG_INFO, "hello: unsupported version");
        send_plain_frame(conn, out, out_len);
        conn->state = SRV_CONN_CLOSING;
        if (conn->write_pending == 0) {
            mark_close(conn, NULL);
        } else {
            uv_timer_start(&conn->deadline, on_deadline, CLOSE_GRACE_MS, 0);
        }
        return 0;
    }
    if (rc != 0) {
        srv_log(conn, SRV_LOG_INFO, "hello rejected: %s", proto_strerror(rc));
        sodium_memzero(&keys, sizeof(keys));
        return rc;
    }
    uint8_t hdr[PROTO_FRAME_HDR + PROTO_STREAM_HDR];
    rc = proto_channel_init(&conn->ch, &keys, hdr + PROTO_FRAME_HDR);
    sodium_memzero(&keys, sizeof(keys));
    if (rc != 0) {
        return rc;
    }
    proto_frame_put_len(hdr, PROTO_STREAM_HDR);
    rc = send_plain_frame(conn, out, out_len);
    if (rc == 0) {
        rc = write_bytes(conn, hdr, sizeof(hdr));
    }
    if (rc != 0) {
        return rc;
    }
    conn->state = SRV_CONN_STREAMHDR;
    proto_reader_set_max(&conn->rd, PROTO_STREAM_HDR);
    return 0;
}

/* Handles queued plaintext messages until none is left, one goes asynchronous or the
 * connection is closing. */
static void handle_plaintext(struct srv_conn *conn)
{
    while (!conn->busy && conn->state != SRV_CONN_CLOSING && conn->in_off < conn->in_good) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = conn->in_off;
        int r = msgpack_unpack_next(&u, (const char *)conn->in.data, conn->in_good, &off);
        if (r != MSGPACK_UNPACK_SUCCESS) {
            /* Cannot happen after proto_mp_check_seq; answer rather than trust it. */
            msgpack_unpacked_destroy(&u);
            conn->in_off = conn->in_good;
            conn->in_fault = true;
            break;
        }
        conn->in_off = off;
        conn->cb.on_message(conn, &u.data, conn->cb_data);
        msgpack_unpacked_destroy(&u);
    }
    if (!conn->busy && conn->state != SRV_CONN_CLOSING && conn->in_off >= conn->in_good) {
        if (conn->in_fault) {
            /* The unreadable rest of the plaintext: the layer above answers it once. */
            conn->cb.on_message(conn, NULL, conn->cb_data);
        }
        conn->in_fault = false;
        proto_buf_free(&conn->in, 1);
        conn->in_off = conn->in_good = 0;
    }
}

/* Decrypts one frame into conn->in. Returns 0, 1 for a graceful close, or an error. */
static int open_frame(struct srv_conn *conn, const uint8_t *p, uint32_t n)
{
    if (n < PROTO_ABYTES) {
        return PROTO_EINVAL;
    }
    proto_buf_free(&conn->in, 1);
    if (proto_buf_reserve(&conn->in, n - PROTO_ABYTES + 1) != 0) {
        return PROTO_ENOMEM;
    }
    size_t mlen = 0;
    int rc = proto_channel_open(&conn->ch, p, n, conn->in.data, &mlen);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        return 1;
    }
    conn->in.len = mlen;
    conn->in_off = 0;
    size_t good = 0;
    if (proto_mp_check_seq(conn->in.data, mlen, &good) != 0) {
        conn->in_fault = true;
    }
    conn->in_good = good;
    return 0;
}

/* The state machine over whole frames. */
static void process(struct srv_conn *conn)
{
    for (;;) {
        if (conn->closed || conn->state == SRV_CONN_CLOSING) {
            return;
        }
        handle_plaintext(conn);
        if (conn->busy || conn->closed || conn->state == SRV_CONN_CLOSING) {
            break;
        }
        const uint8_t *p = NULL;
        uint32_t n = 0;
        int r = proto_reader_next(&conn->rd, &p, &n);
        if (r < 0) {
            srv_log(conn, SRV_LOG_INFO, "bad frame length: closing");
            mark_close(conn, "bad frame length");
            return;
        }
        if (r == 0) {
            break;
        }
        int rc = 0;
        switch (conn->state) {
        case SRV_CONN_HELLO:
            rc = handle_hello(conn, p, n);
            break;
        case SRV_CONN_STREAMHDR:
            rc = proto_channel_recv_header(&conn->ch, p, n);
            if (rc == 0) {
                conn->state = SRV_CONN_AUTH;
                proto_reader_set_max(&conn->rd, PROTO_PRELOGIN_MAX + PROTO_ABYTES);
            }
            break;
        case SRV_CONN_AUTH:
        case SRV_CONN_READY:
            rc = open_frame(conn, p, n);
            if (rc == 1) {
                srv_log(conn, SRV_LOG_INFO, "peer closed the channel");
                mark_close(conn, NULL);
                return;
            }
            break;
        case SRV_CONN_CLOSING:
            return;
        }
        if (rc != 0) {
            srv_log(conn, SRV_LOG_INFO, "broken frame (%s): closing", proto_strerror(rc));
            mark_close(conn, "broken frame");
            return;
        }
    }
    update_reading(conn);
}

void srv_conn_resume(struct srv_conn *conn)
{
    if (conn->closed) {
        return;
    }
    process(conn);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_conn *conn = s->data;
    (void)buf;
    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            srv_log(conn, SRV_LOG_INFO, "bad frame length: closing");
        } else if (nread != UV_EOF) {
            srv_log(conn, SRV_LOG_INFO, "read failed: %s", uv_strerror((int)nread));
        }
        mark_close(conn, nread == UV_ENOBUFS ? "bad frame length" : NULL);
        return;
    }
    /* A commit of 0 bytes lets the reader free a buffer it handed out for nothing. */
    proto_reader_commit(&conn->rd, (size_t)nread);
    if (nread == 0) {
        return;
    }
    process(conn);
}

void srv_conn_arm_deadline(struct srv_conn *conn)
{
    conn->frame_timer = false;
    uv_timer_start(&conn->deadline, on_deadline, conn->srv->cfg.login_timeout_ms, 0);
}

int srv_conn_new(struct srv *srv, struct srv_conn **out)
{
    struct srv_conn *conn = calloc(1, sizeof(*conn));
    *out = NULL;
    if (conn == NULL) {
        return PROTO_ENOMEM;
    }
    conn->srv = srv;
    conn->tag.id = ++srv->next_conn_id;
    uv_tcp_init(srv->loop, &conn->tcp);
    uv_timer_init(srv->loop, &conn->deadline);
    conn->tcp.data = conn;
    conn->deadline.data = conn;
    conn->handles_open = 2;
    conn->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = conn;
    }
    srv->conns = conn;
    srv->nconns++;
    *out = conn;
    return 0;
}

int srv_conn_addr_key(const char *ip, char *key, size_t keysz)
{
    struct in_addr a4;
    struct in6_addr a6;
    char buf[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        snprintf(key, keysz, "%s", ip);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6) != 1) {
        snprintf(key, keysz, "%s", ip);
        return PROTO_EINVAL;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf));
        snprintf(key, keysz, "%s", buf);
        return 0;
    }
    /* One site gets a /64 and picks addresses in it at will: limits count the prefix. */
    memset(&a6.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
    snprintf(key, keysz, "%s/64", buf);
    return 0;
}

void srv_conn_start(struct srv_conn *conn, const struct srv_conn_cb *cb, void *data)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[48] = "?";
    int port = 0;
    conn->cb = *cb;
    conn->cb_data = data;
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(conn->peer_ip, sizeof(conn->peer_ip), "%s", ip);
    srv_conn_addr_key(ip, conn->peer_key, sizeof(conn->peer_key));
    snprintf(conn->tag.peer, sizeof(conn->tag.peer), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
             ip, port);
    uv_tcp_nodelay(&conn->tcp, 1);
    proto_reader_init(&conn->rd, PROTO_HELLO_MAX);
    conn->state = SRV_CONN_HELLO;
    srv_conn_arm_deadline(conn);
    srv_log(conn, SRV_LOG_INFO, "connected");
    update_reading(conn);
}

#define USER_BUCKETS 1024

struct srv_user_count {
    struct srv_user_count *next;
    unsigned n;
    char user[PROTO_NAME_MAX + 1];
};

/* The count of user, created (at 0) when create; NULL when absent or out of memory. */
static struct srv_user_count **user_slot(struct srv *srv, const char *user, bool create)
{
    if (srv->user_counts == NULL) {
        if (!create || (srv->user_counts = calloc(USER_BUCKETS, sizeof(void *))) == NULL) {
            return NULL;
        }
    }
    uint32_t h = 2166136261u;
    for (const char *p = user; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    struct srv_user_count **pp = &srv->user_counts[h % USER_BUCKETS];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->user, user) == 0) {
            return pp;
        }
    }
    if (!create || (*pp = calloc(1, sizeof(**pp))) == NULL) {
        return NULL;
    }
    snprintf((*pp)->user, sizeof((*pp)->user), "%s", user);
    return pp;
}

static void user_uncount(struct srv_conn *conn)
{
    if (!conn->user_counted) {
        return;
    }
    conn->user_counted = false;
    struct srv_user_count **pp = user_slot(conn->srv, conn->user, false);
    if (pp && --(*pp)->n == 0) {
        struct srv_user_count *u = *pp;
        *pp = u->next;
        free(u);
    }
}

int srv_conn_set_user(struct srv_conn *conn, const char *user)
{
    user_uncount(conn);
    conn->user[0] = '\0';
    if (user == NULL || user[0] == '\0') {
        return 0;
    }
    struct srv_user_count **pp = user_slot(conn->srv, user, true);
    if (pp == NULL) {
        return PROTO_ENOMEM;
    }
    (*pp)->n++;
    conn->user_counted = true;
    snprintf(conn->user, sizeof(conn->user), "%s", user);
    return 0;
}

void srv_conn_counts_free(struct srv *srv)
{
    for (size_t i = 0; srv->user_counts && i < USER_BUCKETS; i++) {
        while (srv->user_counts[i]) {
            struct srv_user_count *u = srv->user_counts[i];
            srv->user_counts[i] = u->next;
            free(u);
        }
    }
    free(srv->user_counts);
    srv->user_counts = NULL;
}

bool srv_conn_user_allowed(struct srv *srv, const struct srv_conn *conn, const char *user)
{
    struct srv_user_count **pp = user_slot(srv, user, false);
    unsigned n = pp ? (*pp)->n : 0;
    if (conn->user_counted && strcmp(conn->user, user) == 0) {
        n--; /* the connection itself */
    }
    if (n >= srv->cfg.max_conns_per_user) {
        srv_log(conn, SRV_LOG_WARN, "login refused: %s has %u connections", user, n);
        return false;
    }
    return true;
}

void srv_conn_close_user(struct srv *srv, const char *user, struct srv_conn *keep,
                         const char *reason)
{
    for (struct srv_conn *c = srv->conns; c; c = c->next) {
        if (c != keep && c->state == SRV_CONN_READY && strcmp(c->user, user) == 0) {
            srv_conn_close(c, reason);
        }
    }
}
