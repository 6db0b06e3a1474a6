/* srv_http.h - the HTTP transport of the live view (PROTOCOL.md section 14), on conferd's
 * own libuv loop through libwebsockets (its libuv event library on a foreign loop).
 *
 * This floor knows nothing of meetings: it parses requests (libwebsockets does), enforces
 * what every response shares (the security headers, GET and HEAD only, 8 KiB request heads,
 * streams per address and in total, slow readers) and hands each GET or HEAD to the ops
 * the layer above gave it. That layer answers with srv_http_reply or opens a live stream
 * (text/event-stream) with srv_http_reply_stream, and later feeds the stream messages that
 * are shared by reference between every stream they go to.
 */
#ifndef CONFER_SRV_HTTP_H
#define CONFER_SRV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SRV_HTTP_HEAD_MAX     8192              /* bytes of a request head */
#define SRV_HTTP_STREAM_QUEUE 64                /* messages a stream may fall behind by */
#define SRV_HTTP_STREAM_BYTES (2 * 1024 * 1024) /* bytes a stream may fall behind by */

struct srv_http;
struct srv_http_call;   /* one request being answered (valid during ops->request) */
struct srv_http_stream; /* one open live stream */

/* One message for streams, shared by reference; the bytes follow the struct (with room
 * libwebsockets needs in front of them). */
struct srv_http_msg {
    unsigned refs;
    size_t len;
    unsigned char *data;
};

/* What a request asks, as the layer above sees it. */
struct srv_http_request {
    bool head;              /* HEAD: the headers of the GET answer, no body */
    const char *path;       /* the path, without the query */
    const char *query;      /* what followed '?', "" when nothing */
    const char *last_event; /* the Last-Event-ID header, "" when none */
    const char *peer;       /* the peer's address */
};

struct srv_http_ops {
    /* Answers one request with srv_http_reply or srv_http_reply_stream (or neither: 404). */
    void (*request)(void *ud, struct srv_http_call *call, const struct srv_http_request *req);
    /* A stream has closed (the reader left, fell behind, or srv_http_stream_close): sud is
     * what srv_http_reply_stream was given. The stream is freed after this returns. */
    void (*stream_closed)(void *ud, struct srv_http_stream *s, void *sud);
};

struct srv_http_config {
    const char *host; /* an IP address */
    int port;         /* 0: any free port */
    unsigned max_streams;
    unsigned max_streams_per_addr;
};

/* Starts serving on cfg's address on loop. ops and ud must outlive the server. Returns 0 or
 * PROTO_EIO (cannot listen) / PROTO_ENOMEM, after logging why. */
int srv_http_start(struct srv_http **out, uv_loop_t *loop, const struct srv_http_config *cfg,
                   const struct srv_http_ops *ops, void *ud);

/* The port it listens on. */
int srv_http_port(const struct srv_http *h);

/* Stops listening and closes every connection (stream_closed is called for each stream);
 * the closes finish on the loop. Call srv_http_free after the loop has run down. */
void srv_http_stop(struct srv_http *h);

/* Frees what srv_http_stop began to close. NULL is a no-op. */
void srv_http_free(struct srv_http *h);

/* The fixed 404 body every unknown path and bad token gets. */
extern const char srv_http_404_body[];

/* Answers call with status, content type and body (copied). */
void srv_http_reply(struct srv_http_call *call, int status, const char *ctype, const void *body,
                    size_t len);

/* Answers call with a live stream (200, text/event-stream) that sud belongs to. Returns the
 * stream, or NULL when the limits refuse it (the call is then answered 503). */
struct srv_http_stream *srv_http_reply_stream(struct srv_http_call *call, void *sud);

/* A new message of len bytes (copied), one reference held by the caller; NULL when out of
 * memory. */
struct srv_http_msg *srv_http_msg_new(const void *data, size_t len);
void srv_http_msg_unref(struct srv_http_msg *m);

/* Queues m on s (taking a reference). A stream that has fallen behind by more than
 * SRV_HTTP_STREAM_QUEUE messages or SRV_HTTP_STREAM_BYTES bytes is closed instead; returns
 * 0, or PROTO_EBUSY when it was closed so. */
int srv_http_stream_send(struct srv_http_stream *s, struct srv_http_msg *m);

/* Closes s once what is queued has gone out (flush) or at once; stream_closed follows. */
void srv_http_stream_close(struct srv_http_stream *s, bool flush);

/* Open streams. */
unsigned srv_http_streams(const struct srv_http *h);

#endif
