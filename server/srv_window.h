/* srv_window.h - the window of recent text ops of a meeting.
 *
 * text.edit transforms an edit over every op applied to its field after its base; the
 * window keeps the newest ops in memory for that, a ring bounded in count and bytes (an
 * editor alternating a large insert and its delete must not grow memory without end).
 * An edit with an older base reads the ops from the audit log instead.
 */
#ifndef CONFER_SRV_WINDOW_H
#define CONFER_SRV_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "proto_ot.h"
#include "proto_schema.h"

/* A text op as applied, kept for transforming edits made against older seqs. */
struct srv_textop {
    int64_t seq;
    enum proto_type type;
    int64_t id;
    int field;
    struct proto_op op;
};

/* The window: every text op with seq >= from is in it (from moves up as it drops). */
struct srv_window {
    struct srv_textop *ops; /* a ring of cap slots, n of them used from head */
    size_t cap, head, n;
    int64_t from;
    size_t bytes; /* op content held */
};

/* Records a text op applied to a field at seq in the window (copying op). The window
 * keeps at most 4096 ops and 8 MiB of them, dropping the oldest. Returns 0 or
 * PROTO_ENOMEM (the window then starts after seq). */
int srv_window_add(struct srv_window *w, int64_t seq, enum proto_type t, int64_t id, int field,
                   const struct proto_op *op);

/* Frees the ops of the window; it is empty afterwards (from is kept). */
void srv_window_free(struct srv_window *w);

#endif
