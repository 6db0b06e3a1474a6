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

#include <sodium.h>

/* The first prev_hash of a meeting's chain: H("confer audit genesis" || meeting id). */
void srv_audit_genesis(const char *meeting, uint8_t out[DB_HASH_BYTES]);

/* Computes the hash of an entry: H(prev || canonical msgpack of the entry). */
int srv_audit_entry_hash(const uint8_t prev[DB_HASH_BYTES], const struct db_audit *e,
                         uint8_t out[DB_HASH_BYTES]);

/* Appends the message a checkpoint signs to out (PROTOCOL.md section 15):
 *   "confer/1 audit checkpoint" || u32be(len(meeting)) || meeting || u64be(seq) || head */
void srv_audit_checkpoint_msg(const char *meeting, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                              struct proto_buf *out);

/* Loads the rows of a meeting (its objects, members and meeting row) into a new record,
 * and the seq they stand at (rec->seq is set to it). Returns 0, PROTO_ENOTFOUND (no such
 * meeting), PROTO_EDB, PROTO_ENOMEM. */
int srv_audit_load_rows(struct db *db, const char *meeting, struct srv_rec **out,
                        int64_t *rows_seq);

/* ---- snapshots: signed dumps of a record (srv_rec_dump) ---- */

/* Dumps rec into data and fills s (meeting and seq of rec, head, the state hash of data,
 * the host key's signature of "confer/1 snapshot" || u32be(len(meeting)) || meeting ||
 * u64be(seq) || head || state). s->meeting and s->data point into rec and data.
 * Returns 0 or PROTO_ENOMEM. */
int srv_audit_snapshot_make(const struct srv_rec *rec, const uint8_t head[DB_HASH_BYTES],
                            const uint8_t sk[crypto_sign_SECRETKEYBYTES], struct db_snapshot *s,
                            struct proto_buf *data);

/* True when the host key pk signed s, and (when s->data is set) its data is its state. */
bool srv_audit_snapshot_ok(const struct db_snapshot *s, const uint8_t pk[PROTO_KEY_BYTES]);

/* ---- the record at a seq ---- */

/* A record being rebuilt at a seq: from the newest snapshot at or before it that holds
 * (srv_audit_snapshot_ok, its head the log's at its seq), then the log after it. */
struct srv_rebuild {
    struct srv_rec *rec;
    struct srv_replay *replay;
    int64_t seq;                 /* of the last entry added (or of the snapshot) */
    uint8_t head[DB_HASH_BYTES]; /* the chain's hash at seq */
    int64_t snapshot_seq;        /* the snapshot started from; 0: the log's start */
    int rc;
};

/* Starts a rebuild of meeting at upto (from the log's start when pk is NULL), with the log's
 * entries up to upto that the database holds. More entries (not yet durable) may follow with
 * srv_audit_rebuild_add; srv_audit_rebuild_end finishes. Returns 0 or PROTO_EDB / PROTO_ENOMEM (rb
 * is then freed); a log that does not apply shows in srv_audit_rebuild_end. */
int srv_audit_rebuild_begin(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                            int64_t upto, struct srv_rebuild *rb);

/* Adds the next entry (its seq must follow rb->seq). Returns 0 or the replay's error. */
int srv_audit_rebuild_add(struct srv_rebuild *rb, const struct db_audit *e);

/* Finishes: rb->rec is the record at rb->seq, rb->head its head. Returns 0 or
 * PROTO_EINVAL (the log does not apply: a gap, an entry that does not fit) or
 * PROTO_ENOMEM; rb->rec is then NULL. */
int srv_audit_rebuild_end(struct srv_rebuild *rb);

/* Frees what rb holds (its record too: take rb->rec first to keep it). */
void srv_audit_rebuild_free(struct srv_rebuild *rb);

/* ---- verification ---- */

/* What the caller knows must hold, besides the chain itself. */
struct srv_audit_expect {
    int64_t known_seq; /* a head seen earlier (known_hash not NULL) */
    const uint8_t *known_hash;
    int64_t checkpoint_seq; /* a checkpoint the server wrote (0: none) */
    bool head_signed;       /* a stopped server: a checkpoint covers the newest entry */
};

#define SRV_AUDIT_MISMATCH_MAX 100

struct srv_audit_mismatch {
    char type[16]; /* a schema type name, or "member" */
    int64_t id;
    bool has_str; /* id_str names it: the meeting, a member */
    char id_str[PROTO_NAME_MAX + 1];
    bool has_field; /* else the object is on one side only */
    char field[32];
};

struct srv_audit_result {
    int64_t count;   /* entries checked */
    int64_t seq;     /* the head's seq */
    int64_t bad_seq; /* the lowest seq that failed; 0: ok */
    uint8_t head[DB_HASH_BYTES];
    bool state;       /* the stored rows equal the log replayed to their seq */
    int64_t rows_seq; /* the seq the rows stand at */
    size_t nmismatch; /* every difference (the first SRV_AUDIT_MISMATCH_MAX are kept) */
    struct srv_audit_mismatch mismatch[SRV_AUDIT_MISMATCH_MAX];
    char why[160]; /* the lowest failure in words */
};

/* Verifies a meeting (PROTOCOL.md section 15): its chain from the genesis hash, every
 * checkpoint and snapshot against the host key pk and the chain, what x expects (x may be
 * NULL), and the stored rows against the record rebuilt from the log at their seq. All in
 * one read transaction. r->bad_seq is 0 when everything holds. Returns 0 (checked: see r)
 * or PROTO_EDB / PROTO_ENOMEM. */
int srv_audit_check(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                    const struct srv_audit_expect *x, struct srv_audit_result *r);

/* srv_audit_check without expectations, for its counts: *count entries, head, *bad_seq. */
int srv_audit_verify(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                     int64_t *count, uint8_t head[DB_HASH_BYTES], int64_t *bad_seq);

#endif
