/* srv_conn.c - one client connection: handshake, frames, limits, output batching.
 *
 * Transport only: it turns bytes into decrypted messages for srv_rpc_handle and queued
 * messages back into one encrypted frame per loop turn. RPC code never touches the socket.
 */
#include "srv.h"

#include <stdlib.h>
#include <string.h>

#include "proto_msgpack.h"
#include "srv_held.h"
#include "srv_hub.h"

#define READ_SUGGEST   (64 * 1024)
#define CLOSE_GRACE_MS 2000

struct srv_wreq {
    uv_write_t req;
    struct srv_conn *conn;
    size_t size;
    uint8_t data[];
};

static void process(struct srv_conn *conn);
static void update_reading(struct srv_conn *conn);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

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

void srv_conn_unref(struct srv_conn *conn)
{
    conn->refs--;
    maybe_free(conn);
}

/* Closes the handles now; pending writes are cancelled. */
static void close_now(struct srv_conn *conn)
{
    if (conn->closed) {
        return;
    }
    conn->closed = true;
    conn->state = SRV_CONN_CLOSING;
    conn->busy = true; /* nothing more is handled */
    proto_buf_free(&conn->out, 1);
    srv_hub_drop_conn(conn->srv, conn);
    uv_close((uv_handle_t *)&conn->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&conn->deadline, on_handle_closed);
    srv_log(conn, SRV_LOG_INFO, "closed");
}

static void on_deadline(uv_timer_t *t)
{
    struct srv_conn *conn = t->data;
    if (conn->state != SRV_CONN_CLOSING) {
        srv_log(conn, SRV_LOG_INFO, "login deadline passed");
    }
    close_now(conn);
}

static void mark_dirty(struct srv_conn *conn)
{
    if (!conn->dirty) {
        conn->dirty = true;
        conn->dirty_next = conn->srv->dirty;
        conn->srv->dirty = conn;
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct srv_wreq *w = (struct srv_wreq *)req;
    struct srv_conn *conn = w->conn;
    conn->write_pending -= w->size;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            srv_log(conn, SRV_LOG_INFO, "write failed: %s", uv_strerror(status));
        }
        close_now(conn);
        return;
    }
    if (conn->state == SRV_CONN_CLOSING && conn->write_pending == 0 && conn->out.len == 0) {
        close_now(conn);
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
        free(w);
        return PROTO_EIO;
    }
    conn->write_pending += n;
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

/* Encrypts the queued plaintext as one frame and writes it. */
static void flush(struct srv_conn *conn)
{
    if (conn->closed || conn->out.len == 0) {
        return;
    }
    size_t n = conn->out.len;
    size_t flen = PROTO_FRAME_HDR + n + PROTO_ABYTES;
    uint8_t *frame = malloc(flen);
    if (frame == NULL) {
        srv_log(conn, SRV_LOG_ERROR, "out of memory sealing %zu bytes", n);
        close_now(conn);
        return;
    }
    proto_frame_put_len(frame, (uint32_t)(n + PROTO_ABYTES));
    int rc = proto_channel_seal(&conn->ch, conn->out.data, n, frame + PROTO_FRAME_HDR, 0);
    proto_buf_free(&conn->out, 0);
    if (rc == 0) {
        rc = write_bytes(conn, frame, flen);
    }
    free(frame);
    if (rc != 0) {
        srv_log(conn, SRV_LOG_INFO, "write failed: %s", proto_strerror(rc));
        close_now(conn);
        return;
    }
    if (conn->state == SRV_CONN_CLOSING && conn->write_pending == 0) {
        close_now(conn);
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
}

static void drop_slow(struct srv_conn *conn)
{
    srv_log(conn, SRV_LOG_WARN, "slow consumer: %zu bytes queued, dropped",
            conn->out.len + conn->write_pending);
    close_now(conn);
}

void srv_conn_send(struct srv_conn *conn, const void *msg, size_t len)
{
    if (conn->closed) {
        return;
    }
    if (conn->out.len + conn->write_pending + len > conn->srv->cfg.output_limit) {
        drop_slow(conn);
        return;
    }
    /* A frame holds whole messages only: cut the batch before it passes the limit. */
    if (conn->out.len > 0 && conn->out.len + len > PROTO_SEND_MAX) {
        flush(conn);
        if (conn->closed) {
            return;
        }
    }
    if (proto_buf_append(&conn->out, msg, len) != 0) {
        srv_log(conn, SRV_LOG_ERROR, "out of memory queueing %zu bytes", len);
        close_now(conn);
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
    if (conn->closed) {
        return;
    }
    conn->state = SRV_CONN_CLOSING;
    conn->busy = true;
    if (conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
    flush(conn);
    if (conn->closed) {
        return;
    }
    if (conn->write_pending == 0) {
        close_now(conn);
        return;
    }
    /* Give the last bytes a short while to leave, then close regardless. */
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
            close_now(conn);
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

/* Answers the unreadable rest of a plaintext with one bad_request (msgid 0). */
static void reply_fault(struct srv_conn *conn)
{
    /* Packed here, not through the request helpers: they sit above the transport. */
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_error(&pk, 0, PROTO_CODE_BAD_REQUEST, "malformed message: not msgpack-RPC", NULL,
                         0);
    srv_held_send(conn, b.data, b.len, 0);
    proto_buf_free(&b, 0);
}

/* Handles queued plaintext messages until none is left or one goes asynchronous. */
static void handle_plaintext(struct srv_conn *conn)
{
    while (!conn->busy && conn->in_off < conn->in_good) {
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
        srv_rpc_handle(conn, &u.data);
        msgpack_unpacked_destroy(&u);
    }
    if (!conn->busy && conn->in_off >= conn->in_good) {
        if (conn->in_fault && !conn->closed) {
            reply_fault(conn);
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
            close_now(conn);
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
                close_now(conn);
                return;
            }
            break;
        case SRV_CONN_CLOSING:
            return;
        }
        if (rc != 0) {
            srv_log(conn, SRV_LOG_INFO, "broken frame (%s): closing", proto_strerror(rc));
            close_now(conn);
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
        close_now(conn);
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
    uv_timer_start(&conn->deadline, on_deadline, conn->srv->cfg.login_timeout_ms, 0);
}

void srv_conn_start(struct srv_conn *conn)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[48] = "?";
    int port = 0;
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
    snprintf(conn->peer, sizeof(conn->peer), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
             port);
    uv_tcp_nodelay(&conn->tcp, 1);
    proto_reader_init(&conn->rd, PROTO_HELLO_MAX);
    conn->state = SRV_CONN_HELLO;
    srv_conn_arm_deadline(conn);
    srv_log(conn, SRV_LOG_INFO, "connected");
    update_reading(conn);
}
