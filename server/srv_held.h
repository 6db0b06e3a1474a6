/* srv_held.h - output that waits for a batch to be durable.
 *
 * A response or event produced by a change may only reach its connection once the batch
 * holding the change has committed; whatever the connection is sent after it waits in
 * line behind it. Held messages are kept one by one, so that when a batch fails its
 * responses can be turned into `unavailable` errors and its events dropped. Built on
 * srv_conn_send and the transport's back-pressure hook (srv_conn_set_backlog); a
 * connection with held output keeps a reference (refs), so a closed one stays allocated
 * until its batch ends and the output is dropped.
 */
#ifndef CONFER_SRV_HELD_H
#define CONFER_SRV_HELD_H

#include "srv_base.h"

/* Like srv_conn_send, for a message that must wait until batch is durable: it is held
 * (with everything the connection is sent after it) until then. batch 0: no wait. */
void srv_held_send(struct srv_conn *conn, const void *msg, size_t len, uint64_t batch);

/* Sends the held output of every connection whose batches are now durable
 * (srv->committed_batch). Output of a closing connection is dropped, never sent. */
void srv_held_release(struct srv *srv);

/* Every batch after srv->committed_batch failed: held responses that waited for one of
 * them become `unavailable` errors with the same msgid, held events of them are dropped,
 * and the rest is sent. */
void srv_held_fail(struct srv *srv);

/* Drops the held output of a connection now (it is dropped anyway, never sent, once the
 * connection is closing and its batch ends). */
void srv_held_drop(struct srv_conn *conn);

/* Drops the held output of every connection (when the server is freed). */
void srv_held_drop_all(struct srv *srv);

#endif
