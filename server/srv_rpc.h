/* srv_rpc.h - the method table: every method with its role and parameters, checked and
 * decoded before its handler runs (srv_rpc.c). */
#ifndef CONFER_SRV_RPC_H
#define CONFER_SRV_RPC_H

#include <msgpack.h>

struct srv_conn;

/* Handles one decoded message of a connection (dispatch, checks, handler). */
void srv_rpc_handle(struct srv_conn *conn, const msgpack_object *msg);

#endif
