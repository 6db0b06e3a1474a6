/* srv_audit.h - the audit log of a meeting: its hash chain, the checkpoints the host key
 * signs, and verification.
 *
 * Every change is an entry of the meeting's log, hashed with the entry before it (from a
 * genesis hash of the meeting id). The server signs checkpoints of the chain's head with
 * its host key, so anyone who holds the key's fingerprint can tell a head it produced.
 */
#ifndef CONFER_SRV_AUDIT_H
#define CONFER_SRV_AUDIT_H

#include "db.h"
#include "proto_channel.h"
#include "proto_frame.h"
#include "proto_util.h"
#include "srv_apply.h"

/* The first prev_hash of a meeting's chain: H("confer audit genesis" || meeting id). */
void srv_audit_genesis(const char *meeting, uint8_t out[DB_HASH_BYTES]);

/* Computes the hash of an entry: H(prev || canonical msgpack of the entry). */
int srv_audit_entry_hash(const uint8_t prev[DB_HASH_BYTES], const struct db_audit *e,
                         uint8_t out[DB_HASH_BYTES]);

/* Appends the message a checkpoint signs to out (PROTOCOL.md section 15):
 *   "confer/1 audit checkpoint" || u32be(len(meeting)) || meeting || u64be(seq) || head */
void srv_audit_checkpoint_msg(const char *meeting, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                              struct proto_buf *out);

/* Verifies a meeting's chain in the database (and its checkpoints against pk).
 * *count gets the entries checked, head the last hash, *bad_seq the first bad seq
 * (0 when ok). Returns 0 (checked; see bad_seq) or PROTO_EDB. */
int srv_audit_verify(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                     int64_t *count, uint8_t head[DB_HASH_BYTES], int64_t *bad_seq);

/* As srv_audit_verify, and known_hash (when not NULL) is a head the caller saw earlier:
 * unless the log holds known_seq with that hash, *bad_seq is known_seq (or a lower seq
 * that failed). */
int srv_audit_verify_known(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                           int64_t known_seq, const uint8_t known_hash[DB_HASH_BYTES],
                           int64_t *count, uint8_t head[DB_HASH_BYTES], int64_t *bad_seq);

#endif
