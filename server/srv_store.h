/* srv_store.h - the account writes of requests (login tokens, password hashes), done on
 * the writer like every other write transaction.
 *
 * With a connection, the connection handles nothing else (busy) and stays allocated until
 * the callback has run on the loop; the callback checks conn->closed before answering.
 */
#ifndef CONFER_SRV_STORE_H
#define CONFER_SRV_STORE_H

#include "srv_base.h"

/* Called on the loop when the write is done: rc is 0 or the PROTO_E* code of db/. */
typedef void (*srv_store_cb)(struct srv_conn *conn, void *ud, int rc);

/* Stores a token hash for user, valid until expires_ms (db_token_add). Returns 0 (cb will
 * run) or PROTO_ENOMEM/PROTO_EIO (it will not). */
int srv_store_token_add(struct srv_conn *conn, const char *user,
                        const uint8_t hash[DB_TOKEN_HASH_BYTES], int64_t expires_ms,
                        srv_store_cb cb, void *ud);

/* Deletes a token (db_token_delete). Returns as srv_store_token_add. */
int srv_store_token_delete(struct srv_conn *conn, const uint8_t hash[DB_TOKEN_HASH_BYTES],
                           srv_store_cb cb, void *ud);

/* Replaces user's password hash (db_account_set_pwhash). With if_gen >= 0 only while the
 * account is enabled and its gen is if_gen, checked in the same transaction (else rc is
 * PROTO_ECONFLICT). conn and cb may be NULL for a write nobody waits for (a rehash at
 * login); its failure is logged. Returns as srv_store_token_add. */
int srv_store_pwhash(struct srv *srv, struct srv_conn *conn, const char *user, const char *pwhash,
                     bool revoke, int64_t if_gen, srv_store_cb cb, void *ud);

#endif
