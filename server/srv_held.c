/* srv_held.c - output that waits for a batch to be durable. */
#include "srv_held.h"

#include <stdlib.h>
#include <string.h>

#include "proto_msgpack.h"
#include "srv_conn.h"

/* One held message: bytes [off, off + len) of the connection's buffer. */
struct held_msg {
    size_t off, len;
    uint64_t batch; /* 0: waits only because something before it does */
    int64_t msgid;  /* a response's msgid, or -1 for anything else */
};

struct srv_held {
    struct srv_held *next; /* srv->held */
    struct srv_conn *conn;
    struct proto_buf buf;
    struct held_msg *v;
    size_t n, cap;
    uint64_t max_batch;
};

/* The msgid of a response [1, msgid, error, result], or -1 when msg is not one. */
static int64_t response_msgid(const uint8_t *p, size_t len)
{
    if (len < 3 || p[0] != 0x94 || p[1] != 0x01) {
        return -1;
    }
    if (p[2] <= 0x7f) {
        return p[2];
    }
    size_t n = p[2] == 0xcc ? 1 : p[2] == 0xcd ? 2 : p[2] == 0xce ? 4 : 0;
    if (n == 0 || len < 3 + n) {
        return -1;
    }
    int64_t id = 0;
    for (size_t i = 0; i < n; i++) {
        id = (id << 8) | p[3 + i];
    }
    return id;
}

static void held_free(struct srv_held *h)
{
    proto_buf_free(&h->buf, 1);
    free(h->v);
    free(h);
}

static void unlink_held(struct srv *srv, struct srv_held *h)
{
    for (struct srv_held **pp = &srv->held; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
}

void srv_held_drop(struct srv_conn *conn)
{
    struct srv_held *h = conn->held;
    if (h == NULL) {
        return;
    }
    conn->held = NULL;
    unlink_held(conn->srv, h);
    srv_conn_account(conn, -(ptrdiff_t)h->buf.len);
    held_free(h);
    srv_conn_set_backlog(conn, 0);
    srv_conn_done(conn);
}

static bool gone(const struct srv_conn *conn)
{
    return conn->closed || conn->state == SRV_CONN_CLOSING;
}

void srv_held_send(struct srv_conn *conn, const void *msg, size_t len, uint64_t batch)
{
    struct srv *srv = conn->srv;
    if (gone(conn)) {
        return;
    }
    struct srv_held *h = conn->held;
    if (h == NULL && batch <= srv->committed_batch) {
        srv_conn_send(conn, msg, len);
        return;
    }
    /* Held bytes count against the connection's limit and the global budget. */
    if (!srv_conn_account(conn, (ptrdiff_t)len)) {
        return;
    }
    if (h == NULL && (h = calloc(1, sizeof(*h))) != NULL) {
        h->conn = conn;
        h->next = srv->held;
        srv->held = h;
        conn->held = h;
        srv_conn_hold(conn); /* the connection outlives its held output, even once closed */
    }
    if (h != NULL && h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        struct held_msg *v = realloc(h->v, cap * sizeof(*v));
        if (v != NULL) {
            h->v = v;
            h->cap = cap;
        }
    }
    if (h == NULL || h->n == h->cap || proto_buf_append(&h->buf, msg, len) != 0) {
        srv_conn_account(conn, -(ptrdiff_t)len);
        srv_log(conn, SRV_LOG_ERROR, "out of memory holding %zu bytes", len);
        srv_conn_close(conn, NULL);
        return;
    }
    h->v[h->n++] = (struct held_msg){
        .off = h->buf.len - len, .len = len, .batch = batch, .msgid = response_msgid(msg, len)};
    if (batch > h->max_batch) {
        h->max_batch = batch;
    }
    srv_conn_set_backlog(conn, (unsigned)h->n);
}

/* Sends a connection's held messages in order and frees them; with failed, those of a
 * batch after srv->committed_batch are answered `unavailable` (responses) or dropped. */
static void release(struct srv_held *h, bool failed)
{
    struct srv_conn *conn = h->conn;
    uint64_t committed = conn->srv->committed_batch;
    conn->held = NULL;
    srv_conn_account(conn, -(ptrdiff_t)h->buf.len); /* srv_conn_send counts what it takes */
    for (size_t i = 0; i < h->n && !gone(conn); i++) {
        const struct held_msg *m = &h->v[i];
        if (!failed || m->batch <= committed) {
            srv_conn_send(conn, h->buf.data + m->off, m->len);
        } else if (m->msgid >= 0) {
            struct proto_buf b = {0};
            msgpack_packer pk;
            msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
            proto_rpc_pack_error(&pk, (uint32_t)m->msgid, PROTO_CODE_UNAVAILABLE,
                                 "the server could not write its database: nothing of this "
                                 "request was kept, try again later",
                                 NULL, 0);
            srv_conn_send(conn, b.data, b.len);
            proto_buf_free(&b, 0);
        }
    }
    held_free(h);
    if (!conn->closed) {
        srv_conn_set_backlog(conn, 0);
    }
    srv_conn_done(conn); /* may free it: the last use */
}

void srv_held_release(struct srv *srv)
{
    struct srv_held **pp = &srv->held;
    while (*pp) {
        struct srv_held *h = *pp;
        if (gone(h->conn) || h->max_batch <= srv->committed_batch) {
            *pp = h->next;
            release(h, false);
        } else {
            pp = &h->next;
        }
    }
}

void srv_held_fail(struct srv *srv)
{
    while (srv->held) {
        struct srv_held *h = srv->held;
        srv->held = h->next;
        release(h, true);
    }
}

void srv_held_drop_all(struct srv *srv)
{
    while (srv->held) {
        srv_held_drop(srv->held->conn);
    }
}
