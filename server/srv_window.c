/* srv_window.c - the window of recent text ops of a meeting (srv_window.h). */
#include "srv_window.h"

#include "proto_err.h"

#include <stdlib.h>

/* The window of recent ops per meeting holds at most this many ops and this much op
 * content: an editor alternating a large insert and its delete must not grow memory
 * without end. Edits with an older base read the ops from the audit log. */
#define WINDOW_MAX       4096
#define WINDOW_MAX_BYTES (8u * 1024 * 1024)

/* What an op costs the window: its components and the text it inserts. */
static size_t op_bytes(const struct proto_op *op)
{
    size_t n = sizeof(struct srv_textop) + op->len * sizeof(*op->comps);
    for (size_t i = 0; i < op->len; i++) {
        n += op->comps[i].slen;
    }
    return n;
}

/* Drops the oldest op: the window now starts after it. */
static void drop_oldest(struct srv_window *w)
{
    struct srv_textop *old = &w->ops[w->head];
    w->from = old->seq + 1;
    w->bytes -= op_bytes(&old->op);
    proto_op_free(&old->op);
    w->head = (w->head + 1) % w->cap;
    w->n--;
}

void srv_window_free(struct srv_window *w)
{
    for (size_t i = 0; i < w->n; i++) {
        proto_op_free(&w->ops[(w->head + i) % w->cap].op);
    }
    free(w->ops);
    w->ops = NULL;
    w->n = w->cap = w->head = 0;
    w->bytes = 0;
}

int srv_window_add(struct srv_window *w, int64_t seq, enum proto_type t, int64_t id, int field,
                   const struct proto_op *op)
{
    size_t cost = op_bytes(op);
    if (cost > WINDOW_MAX_BYTES) {
        /* Alone over the bound: keep nothing, the log has it. */
        while (w->n > 0) {
            drop_oldest(w);
        }
        w->from = seq + 1;
        return 0;
    }
    if (w->cap == 0) {
        w->ops = calloc(WINDOW_MAX, sizeof(*w->ops));
        if (w->ops == NULL) {
            w->from = seq + 1; /* the window holds nothing before this */
            return PROTO_ENOMEM;
        }
        w->cap = WINDOW_MAX;
    }
    while (w->n > 0 && (w->n == w->cap || w->bytes + cost > WINDOW_MAX_BYTES)) {
        drop_oldest(w);
    }
    struct srv_textop *slot = &w->ops[(w->head + w->n) % w->cap];
    proto_op_init(&slot->op);
    if (proto_op_copy(op, &slot->op) != 0) {
        /* Nothing before this op can be trusted to be complete any more. */
        while (w->n > 0) {
            drop_oldest(w);
        }
        w->from = seq + 1;
        return PROTO_ENOMEM;
    }
    slot->seq = seq;
    slot->type = t;
    slot->id = id;
    slot->field = field;
    w->n++;
    w->bytes += cost;
    return 0;
}
