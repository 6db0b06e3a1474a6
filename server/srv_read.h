/* srv_read.h - long reads off the loop: time travel, verify, history, old bases, exports.
 *
 * A read job runs on libuv's pool with a read-only database connection of its own (WAL
 * lets it read while the writer writes). At most SRV_READ_RUNNING jobs run at once and
 * SRV_READ_QUEUE wait; past that a request is answered rate_limited. The connection that
 * asked handles no further request until its job has answered, so its responses keep
 * their order, and it is referenced so that it outlives the job.
 *
 * The work function runs on a pool thread: it must touch nothing the loop owns (no
 * meeting, record or connection), only what the job was given (copies made at submit
 * time) and the database connection.
 */
#ifndef CONFER_SRV_READ_H
#define CONFER_SRV_READ_H

#include "srv_req.h"

#define SRV_READ_RUNNING  2   /* jobs running at once (each with its own connection) */
#define SRV_READ_QUEUE    64  /* jobs waiting */
#define SRV_READ_RETRY_MS 250 /* retry_after_ms of a refused read */

/* The parts of a read job, all given the job's ud.
 * start: optional, on the loop just before work is queued: takes what work needs that is
 *       better not held while waiting (a copy of a big record); may set *hold to the batch
 *       the response must then wait for. Returns 0, or a PROTO_E* code handed to done.
 * work: on a pool thread, with a read-only connection; returns 0 or a PROTO_E* code.
 * done: on the loop, when the connection is still open: answers req (msgid and hold set)
 *       from what work left in ud; rc is work's result, or PROTO_EDB when no connection
 *       could be opened, PROTO_EBUSY when the pool did not run it (shutdown).
 * free: on the loop, always last: releases ud. */
struct srv_read_ops {
    int (*start)(struct srv *srv, void *ud, uint64_t *hold);
    int (*work)(struct db *db, void *ud);
    void (*done)(struct srv_req *req, int rc, void *ud);
    void (*free)(void *ud);
};

/* Queues a read job answering req; ops must outlive it (a static table). Returns 0 when
 * queued: the connection is held until done has answered. Otherwise req has been answered
 * (rate_limited with retry_after_ms when the queue is full, internal when out of memory),
 * ops->free(ud) has been called, and a negative PROTO_E* code is returned. */
int srv_read_submit(struct srv_req *req, const struct srv_read_ops *ops, void *ud);

/* Closes the idle read-only connections (after the loop has run dry: no job left). */
void srv_read_free(struct srv *srv);

#endif
