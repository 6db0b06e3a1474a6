/* srv_writer.h - the database writer: one thread of its own with its own connection.
 *
 * Every write transaction of the server runs here, in the order it was submitted, so the
 * loop never waits for a write lock or an fsync and libuv's pool (password hashing,
 * reads) never delays a commit. A job's work runs on the writer thread with the writer's
 * connection; its done callback runs on the loop afterwards.
 */
#ifndef CONFER_SRV_WRITER_H
#define CONFER_SRV_WRITER_H

#include <stddef.h>
#include <uv.h>

#include "db.h"

struct srv_writer;

/* Work of a job, on the writer thread: returns 0 or a PROTO_E* code; err (errlen bytes)
 * may get a message. It must touch nothing the loop owns. */
typedef int (*srv_writer_work_fn)(struct db *db, void *ud, char *err, size_t errlen);

/* End of a job, on the loop: rc is what work returned, err its message ("" when none). */
typedef void (*srv_writer_done_fn)(void *ud, int rc, const char *err);

/* Starts the writer thread on db (which it owns from now on and closes in
 * srv_writer_close). Returns 0 or PROTO_ENOMEM/PROTO_EIO (db is then closed). */
int srv_writer_start(struct srv_writer **out, uv_loop_t *loop, struct db *db);

/* Queues a job; done is called on the loop when work has run. The loop stays alive while
 * jobs are queued. Returns 0 or PROTO_ENOMEM (nothing is called then). */
int srv_writer_submit(struct srv_writer *w, srv_writer_work_fn work, srv_writer_done_fn done,
                      void *ud);

/* Runs work on the writer after everything queued before it and waits for it (for the
 * rare write the loop cannot go on without). Returns what work returned. */
int srv_writer_call(struct srv_writer *w, srv_writer_work_fn work, void *ud, char *err,
                    size_t errlen);

/* Jobs submitted and not yet done. */
unsigned srv_writer_inflight(const struct srv_writer *w);

/* Waits for the queued jobs to run, stops the thread, closes its connection and its loop
 * handle (run the loop once more before uv_loop_close) and frees w. NULL is a no-op. */
void srv_writer_close(struct srv_writer *w);

#endif
