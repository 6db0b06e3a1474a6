/* cli_text.h - a local replica of one co-edited text field, kept in step with the server
 * by the client rule of PROTOCOL.md section 6.
 *
 * The replica holds the text as the user sees it: the server's text, then the op in flight
 * (sent, not yet acknowledged), then the ops made since (composed into one buffer, sent
 * when the flight lands). A server op S that arrives is transformed against what is
 * pending: P' = transform(P, S, left), S' = transform(S, P, right), and S' is applied.
 *
 *   struct cli_text t;
 *   cli_text_init(&t, "rg", "item", 12, "body", text, len, seq);
 *   cli_text_local(&t, &op);         // the user typed: op against t.text
 *   cli_text_flush(&t, conn);        // sends text.edit when nothing is in flight
 *   ... for each message m from cli_conn_next: cli_text_handle(&t, conn, m);
 *
 * One replica per field; it does not own the connection.
 */
#ifndef CONFER_CLI_TEXT_H
#define CONFER_CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli_conn.h"
#include "proto_ot.h"

struct cli_text {
    char meeting[PROTO_NAME_MAX + 1];
    char type[16];
    int64_t id; /* the object's id (0 with id_str for the meeting's abstract) */
    char id_str[PROTO_NAME_MAX + 1];
    char field[16];

    char *text; /* what the user sees (NUL-terminated, owned) */
    size_t len;
    int64_t seq; /* the meeting seq the server part reflects */

    bool inflight; /* an op was sent and not yet acknowledged */
    uint32_t inflight_msgid;
    char inflight_cid[40];
    struct proto_op sent; /* the op in flight */
    bool has_buffer;
    struct proto_op buffer; /* ops made while one was in flight */

    int64_t remote_ops; /* ops of others applied */
    int64_t acked;      /* own ops acknowledged */
    bool gone;          /* the object was deleted */
    char error[256];    /* why the last edit was refused, when it was */
};

/* Starts a replica of field of object (type, id) of meeting, whose server text at seq is
 * text[0..len). Returns 0 or PROTO_ENOMEM. Free with cli_text_free. */
int cli_text_init(struct cli_text *t, const char *meeting, const char *type, int64_t id,
                  const char *id_str, const char *field, const char *text, size_t len, int64_t seq);

void cli_text_free(struct cli_text *t);

/* Applies a local edit (an op against t->text) and queues it for the server.
 * Returns 0, PROTO_EINVAL (op does not fit) or PROTO_ENOMEM. */
int cli_text_local(struct cli_text *t, const struct proto_op *op);

/* Sends the buffered ops as one text.edit when nothing is in flight. Returns 0 or an error
 * of cli_conn_send. */
int cli_text_flush(struct cli_text *t, struct cli_conn *c);

/* Takes one message from the server: an `event` of this field (transformed and applied),
 * an event of anything else in the meeting (seq noted), or the response to the op in
 * flight (acknowledged; the buffer is sent next). Returns 1 when the message was about
 * this replica, 0 when not (the caller handles it), or a negative error (the server
 * refused the edit: t->error says why; the replica must be reloaded). */
int cli_text_handle(struct cli_text *t, struct cli_conn *c, const struct cli_msg *m);

/* After a reconnect (and a subscribe with since = t->seq, whose replayed events went
 * through cli_text_handle): sends the op still in flight again, with its cid, so that it
 * is applied once whether or not the server got it the first time. */
int cli_text_resend(struct cli_text *t, struct cli_conn *c);

/* True when nothing is in flight or buffered. */
bool cli_text_idle(const struct cli_text *t);

#endif
