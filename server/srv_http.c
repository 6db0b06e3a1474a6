/* srv_http.c - HTTP for the live view through libwebsockets on conferd's libuv loop.
 *
 * libwebsockets parses every request; this file only answers. A context made with
 * LWS_SERVER_OPTION_LIBUV and foreign_loops runs on the loop it is given; its destruction is
 * asynchronous there (libuv closes handles on a later turn): srv_http_stop calls
 * lws_context_destroy while the loop still runs, and srv_http_free calls it again once the
 * loop has run down, which finishes it (pcontext is cleared when it is done).
 */
#include "srv_http.h"

#include "proto_err.h"
#include "srv_base.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define WRITE_CHUNK   16384
#define STREAM_SNDBUF (64 * 1024)

const char srv_http_404_body[] = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                                 "<title>Not found</title></head>\n<body><p>Not found.</p></body>"
                                 "</html>\n";

struct srv_http_stream {
    struct srv_http_stream *next, **pprev;
    struct srv_http *h;
    struct lws *wsi;
    void *sud;
    char peer[64];
    struct srv_http_msg *q[SRV_HTTP_STREAM_QUEUE];
    unsigned qhead, qlen;
    size_t qbytes;
    size_t off; /* bytes of q[qhead] already written */
    bool closing, flush_close;
};

struct srv_http {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    const struct srv_http_ops *ops;
    void *ud;
    struct srv_http_config cfg;
    struct srv_http_stream *streams;
    unsigned nstreams;
    int port;
    bool stopping;
};

/* Per connection (libwebsockets' per-session data): the answer being written. */
struct pss {
    unsigned char *resp; /* LWS_PRE + body */
    size_t len, off;
    bool head;
    struct srv_http_stream *stream;
};

struct srv_http_call {
    struct srv_http *h;
    struct lws *wsi;
    struct pss *pss;
    const struct srv_http_request *req;
    bool answered;
};

/* ---- messages ---- */

struct srv_http_msg *srv_http_msg_new(const void *data, size_t len)
{
    struct srv_http_msg *m = malloc(sizeof(*m) + LWS_PRE + len);
    if (m == NULL) {
        return NULL;
    }
    m->refs = 1;
    m->len = len;
    m->data = (unsigned char *)(m + 1) + LWS_PRE;
    memcpy(m->data, data, len);
    return m;
}

void srv_http_msg_unref(struct srv_http_msg *m)
{
    if (m != NULL && --m->refs == 0) {
        free(m);
    }
}

/* ---- headers ---- */

/* Every response carries these (PROTOCOL.md section 14): they are the vhost's headers, so
 * that libwebsockets' own answers (a request it refuses to parse) carry them too. */
static const struct lws_protocol_vhost_options sec_headers[] = {
    {&sec_headers[1], NULL, "content-security-policy:",
     "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
     "img-src 'self'"},
    {&sec_headers[2], NULL, "x-content-type-options:", "nosniff"},
    {&sec_headers[3], NULL, "referrer-policy:", "no-referrer"},
    {NULL, NULL, "cache-control:", "no-store"},
};

static int add_headers(struct lws *wsi, int status, const char *ctype, int64_t len, bool close,
                       unsigned char **p, unsigned char *end)
{
    if (lws_add_http_header_status(wsi, (unsigned)status, p, end) != 0) {
        return -1;
    }
    if (ctype != NULL &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ctype,
                                     (int)strlen(ctype), p, end) != 0) {
        return -1;
    }
    if (status == 405 &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW, (const unsigned char *)"GET, HEAD",
                                     9, p, end) != 0) {
        return -1;
    }
    if (len >= 0 && lws_add_http_header_content_length(wsi, (lws_filepos_t)len, p, end) != 0) {
        return -1;
    }
    if (close && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                              (const unsigned char *)"close", 5, p, end) != 0) {
        return -1;
    }
    return 0;
}

/* Writes the head of an answer whose body (len bytes, or a stream when len < 0) follows. */
static int write_head(struct lws *wsi, int status, const char *ctype, int64_t len, bool close)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    if (add_headers(wsi, status, ctype, len, close, &p, end) != 0 ||
        lws_finalize_write_http_header(wsi, start, &p, end) != 0) {
        return -1;
    }
    return 0;
}

/* Queues a whole answer on the connection: its head now, its body when writable. */
static int answer(struct lws *wsi, struct pss *pss, int status, const char *ctype, const void *body,
                  size_t len, bool head, bool close)
{
    if (write_head(wsi, status, ctype, (int64_t)len, close) != 0) {
        return -1;
    }
    free(pss->resp);
    pss->resp = NULL;
    pss->len = pss->off = 0;
    pss->head = head;
    if (!head && len > 0) {
        pss->resp = malloc(LWS_PRE + len);
        if (pss->resp == NULL) {
            return -1;
        }
        memcpy(pss->resp + LWS_PRE, body, len);
        pss->len = len;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

void srv_http_reply(struct srv_http_call *call, int status, const char *ctype, const void *body,
                    size_t len)
{
    if (call->answered) {
        return;
    }
    call->answered = true;
    if (answer(call->wsi, call->pss, status, ctype, body, len, call->req->head, false) != 0) {
        lws_set_timeout(call->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* ---- streams ---- */

static unsigned streams_of(const struct srv_http *h, const char *peer)
{
    unsigned n = 0;
    for (const struct srv_http_stream *s = h->streams; s; s = s->next) {
        n += strcmp(s->peer, peer) == 0;
    }
    return n;
}

struct srv_http_stream *srv_http_reply_stream(struct srv_http_call *call, void *sud)
{
    struct srv_http *h = call->h;
    if (call->answered) {
        return NULL;
    }
    if (call->req->head) {
        call->answered = true;
        if (write_head(call->wsi, 200, "text/event-stream", 0, false) != 0) {
            lws_set_timeout(call->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
        call->pss->head = true;
        lws_callback_on_writable(call->wsi);
        return NULL;
    }
    if (h->stopping || h->nstreams >= h->cfg.max_streams ||
        streams_of(h, call->req->peer) >= h->cfg.max_streams_per_addr) {
        static const char busy[] = "Too many live pages; try again later.\n";
        srv_log(NULL, SRV_LOG_WARN, "http: live stream of %s refused: %s", call->req->peer,
                h->nstreams >= h->cfg.max_streams ? "too many streams" : "too many from it");
        srv_http_reply(call, 503, "text/plain; charset=utf-8", busy, sizeof(busy) - 1);
        return NULL;
    }
    struct srv_http_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    call->answered = true;
    if (write_head(call->wsi, 200, "text/event-stream; charset=utf-8", -1, false) != 0) {
        free(s);
        lws_set_timeout(call->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return NULL;
    }
    lws_set_timeout(call->wsi, NO_PENDING_TIMEOUT, 0); /* a live stream has no deadline */
    /* Its request head is read: the 8 KiB of header space go back to the pool, for the
     * connections that wait for one (a stream would otherwise hold it for hours). */
    lws_http_headers_detach(call->wsi);
    s->h = h;
    s->wsi = call->wsi;
    s->sud = sud;
    snprintf(s->peer, sizeof(s->peer), "%s", call->req->peer);
    s->next = h->streams;
    s->pprev = &h->streams;
    if (h->streams) {
        h->streams->pprev = &s->next;
    }
    h->streams = s;
    h->nstreams++;
    call->pss->stream = s;
    /* A small kernel buffer: a reader that stops reading is seen falling behind soon,
     * and its bytes stay few. */
    int fd = lws_get_socket_fd(call->wsi);
    int sz = STREAM_SNDBUF;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    }
    return s;
}

static void stream_unlink(struct srv_http_stream *s)
{
    if (s->pprev == NULL) {
        return;
    }
    *s->pprev = s->next;
    if (s->next) {
        s->next->pprev = s->pprev;
    }
    s->pprev = NULL;
    s->h->nstreams--;
    while (s->qlen > 0) {
        srv_http_msg_unref(s->q[s->qhead]);
        s->qhead = (s->qhead + 1) % SRV_HTTP_STREAM_QUEUE;
        s->qlen--;
    }
}

void srv_http_stream_close(struct srv_http_stream *s, bool flush)
{
    if (s == NULL || s->closing) {
        return;
    }
    if (flush && s->qlen > 0) {
        s->flush_close = true;
        lws_callback_on_writable(s->wsi);
        /* Not waited for long: a reader that does not read is closed anyway. */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 1);
        return;
    }
    s->closing = true;
    /* libwebsockets would wait to write what it still holds for a reader that does not
     * read: the socket is shut first, so that the close happens now. */
    int fd = lws_get_socket_fd(s->wsi);
    if (fd >= 0) {
        shutdown(fd, SHUT_RDWR);
    }
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

int srv_http_stream_send(struct srv_http_stream *s, struct srv_http_msg *m)
{
    if (s->closing || s->flush_close) {
        return 0;
    }
    if (s->qlen == SRV_HTTP_STREAM_QUEUE || s->qbytes + m->len > SRV_HTTP_STREAM_BYTES) {
        srv_log(NULL, SRV_LOG_INFO, "http: live stream of %s closed: its reader fell behind",
                s->peer);
        srv_http_stream_close(s, false);
        return PROTO_EBUSY;
    }
    m->refs++;
    s->q[(s->qhead + s->qlen) % SRV_HTTP_STREAM_QUEUE] = m;
    s->qlen++;
    s->qbytes += m->len;
    lws_callback_on_writable(s->wsi);
    return 0;
}

unsigned srv_http_streams(const struct srv_http *h)
{
    return h ? h->nstreams : 0;
}

/* Writes what a stream has queued, one chunk per call. Returns -1 to close. */
static int stream_write(struct srv_http_stream *s)
{
    if (s->closing) {
        return -1;
    }
    if (s->qlen == 0) {
        return s->flush_close ? -1 : 0;
    }
    struct srv_http_msg *m = s->q[s->qhead];
    size_t n = m->len - s->off;
    if (n > WRITE_CHUNK) {
        n = WRITE_CHUNK;
    }
    /* The bytes in front of the chunk are libwebsockets' to write into: a copy, since the
     * message is shared. */
    unsigned char buf[LWS_PRE + WRITE_CHUNK];
    memcpy(buf + LWS_PRE, m->data + s->off, n);
    if (lws_write(s->wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP) != (int)n) {
        return -1;
    }
    s->off += n;
    if (s->off == m->len) {
        s->qbytes -= m->len;
        s->off = 0;
        srv_http_msg_unref(m);
        s->qhead = (s->qhead + 1) % SRV_HTTP_STREAM_QUEUE;
        s->qlen--;
    }
    if (s->qlen > 0 || s->flush_close) {
        lws_callback_on_writable(s->wsi);
    }
    return 0;
}

/* ---- requests ---- */

static bool has(struct lws *wsi, enum lws_token_indexes t)
{
    return lws_hdr_total_length(wsi, t) > 0;
}

static int on_http(struct srv_http *h, struct lws *wsi, struct pss *pss, const char *uri)
{
    char path[1024], query[512], last[64], peer[64];
    static const char bad_method[] = "Only GET and HEAD are served.\n";

    bool get = has(wsi, WSI_TOKEN_GET_URI), head = has(wsi, WSI_TOKEN_HEAD_URI);
    if (!get && !head) {
        return answer(wsi, pss, 405, "text/plain; charset=utf-8", bad_method,
                      sizeof(bad_method) - 1, false, true);
    }
    snprintf(path, sizeof(path), "%s", uri ? uri : "");
    query[0] = last[0] = peer[0] = '\0';
    int ql = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (ql > 0 && ql < (int)sizeof(query)) {
        lws_hdr_copy(wsi, query, sizeof(query), WSI_TOKEN_HTTP_URI_ARGS);
    }
    int ll = lws_hdr_custom_length(wsi, "last-event-id:", 14);
    if (ll > 0 && ll < (int)sizeof(last)) {
        lws_hdr_custom_copy(wsi, last, sizeof(last), "last-event-id:", 14);
    }
    lws_get_peer_simple(wsi, peer, sizeof(peer));
    struct srv_http_request req = {
        .head = head, .path = path, .query = query, .last_event = last, .peer = peer};
    struct srv_http_call call = {.h = h, .wsi = wsi, .pss = pss, .req = &req};
    if (!h->stopping) {
        h->ops->request(h->ud, &call, &req);
    }
    if (!call.answered) {
        srv_http_reply(&call, 404, "text/html; charset=utf-8", srv_http_404_body,
                       sizeof(srv_http_404_body) - 1);
    }
    return 0;
}

static int on_writable(struct lws *wsi, struct pss *pss)
{
    if (pss->stream != NULL) {
        return stream_write(pss->stream);
    }
    if (pss->head || pss->off == pss->len) {
        free(pss->resp);
        pss->resp = NULL;
        pss->len = pss->off = 0;
        pss->head = false;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    size_t n = pss->len - pss->off;
    if (n > WRITE_CHUNK) {
        n = WRITE_CHUNK;
    }
    bool last = pss->off + n == pss->len;
    unsigned char *p = pss->resp + LWS_PRE + pss->off;
    /* libwebsockets writes in front of the chunk: keep what lies there. */
    unsigned char save[LWS_PRE];
    memcpy(save, p - LWS_PRE, LWS_PRE);
    int w = lws_write(wsi, p, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    memcpy(p - LWS_PRE, save, LWS_PRE);
    if (w != (int)n) {
        return -1;
    }
    pss->off += n;
    if (last) {
        free(pss->resp);
        pss->resp = NULL;
        pss->len = pss->off = 0;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static void on_closed(struct srv_http *h, struct pss *pss)
{
    free(pss->resp);
    pss->resp = NULL;
    struct srv_http_stream *s = pss->stream;
    if (s == NULL) {
        return;
    }
    pss->stream = NULL;
    stream_unlink(s);
    h->ops->stream_closed(h->ud, s, s->sud);
    free(s);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    struct srv_http *h = ctx ? lws_context_user(ctx) : NULL;
    struct pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return h && pss ? on_http(h, wsi, pss, in) : -1;
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return 0; /* a body is never read: the answer was 405 and closes */
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return pss ? on_writable(wsi, pss) : -1;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (h && pss) {
            on_closed(h, pss);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        n--;
    }
    srv_log(NULL, SRV_LOG_WARN, "http: %.*s", (int)n, line); /* the peer's doing, mostly */
}

int srv_http_start(struct srv_http **out, uv_loop_t *loop, const struct srv_http_config *cfg,
                   const struct srv_http_ops *ops, void *ud)
{
    struct lws_context_creation_info info;
    void *loops[1] = {loop};
    struct srv_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return PROTO_ENOMEM;
    }
    h->ops = ops;
    h->ud = ud;
    h->cfg = *cfg;
    lws_set_log_level(LLL_ERR, lws_log);
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.pcontext = &h->ctx;
    info.port = cfg->port;
    info.iface = cfg->host;
    info.protocols = protocols;
    info.user = h;
    /* A head that does not fit is refused by libwebsockets' parser, which closes the
     * connection (4.1 has no hook to answer it first). */
    info.max_http_header_data = SRV_HTTP_HEAD_MAX;
    info.headers = sec_headers;
    info.max_http_header_pool = 256; /* heads being read at once (8 KiB each) */
    info.timeout_secs = 10;
    info.keepalive_timeout = 5;
    info.fd_limit_per_thread = cfg->max_streams + 256;
    h->ctx = lws_create_context(&info);
    if (h->ctx == NULL) {
        srv_log(NULL, SRV_LOG_ERROR, "http: cannot serve on %s:%d", cfg->host, cfg->port);
        free(h);
        return PROTO_EIO;
    }
    h->vh = lws_get_vhost_by_name(h->ctx, "default");
    h->port = h->vh ? lws_get_vhost_listen_port(h->vh) : cfg->port;
    if (h->port <= 0) {
        srv_log(NULL, SRV_LOG_ERROR, "http: cannot listen on %s:%d", cfg->host, cfg->port);
        srv_http_stop(h);
        *out = h;
        return PROTO_EIO;
    }
    srv_log(NULL, SRV_LOG_INFO, "live view on http://%s%s%s:%d/", strchr(cfg->host, ':') ? "[" : "",
            cfg->host, strchr(cfg->host, ':') ? "]" : "", h->port);
    *out = h;
    return 0;
}

int srv_http_port(const struct srv_http *h)
{
    return h->port;
}

void srv_http_stop(struct srv_http *h)
{
    if (h == NULL || h->stopping) {
        return;
    }
    h->stopping = true;
    if (h->ctx) {
        lws_context_destroy(h->ctx);
    }
}

void srv_http_free(struct srv_http *h)
{
    if (h == NULL) {
        return;
    }
    h->stopping = true;
    if (h->ctx) {
        lws_context_destroy(h->ctx);
    }
    free(h);
}
