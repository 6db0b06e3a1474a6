/* srv.h - conferd's top: the listener, the loop, start-up and shutdown (srv.c).
 *
 * Only the operator commands (srv_ops.c), main and tests include it: srv.c builds the
 * floors below (srv_base.h up to the method table) and ties them together with the
 * callbacks it gives the transport.
 */
#ifndef CONFER_SRV_H
#define CONFER_SRV_H

#include "srv_base.h"

/* Opens the data folder (database, host key) and listens. Returns 0 or a PROTO_E* code
 * after logging why. */
int srv_init(struct srv *srv, uv_loop_t *loop, const struct srv_config *cfg);

/* Runs the loop until SIGINT/SIGTERM, then closes every connection gracefully and frees
 * everything. Returns 0 or a PROTO_E* code. */
int srv_run(struct srv *srv);

/* Opens a data folder for the operator tool: database, writer and meetings, no listener.
 * Changes made through the hub are written by srv_sync_offline. */
int srv_init_offline(struct srv *srv, uv_loop_t *loop, const char *data_dir);

/* Writes every change made so far and waits until it is durable. Returns 0 or PROTO_EDB. */
int srv_sync_offline(struct srv *srv);

/* Closes what srv_init_offline opened (the caller closes the loop). */
void srv_close_offline(struct srv *srv);

/* Begins a graceful shutdown: stop listening, send closing to everyone, close. */
void srv_stop(struct srv *srv);

/* Applies account changes made by another process (disable, password) to live
 * connections. */
void srv_check_accounts(struct srv *srv);

#endif
