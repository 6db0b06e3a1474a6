/* db_record.h - meeting records in the database: the tables of every object type of
 * proto_schema.h, members, and the audit log (which is also the op log).
 *
 * The server keeps the record of a meeting in memory and writes each accepted change
 * here, in one transaction per batch (db_begin / db_commit). These functions never open
 * a transaction of their own, except db_audit_* reads which need none.
 * Included by db.h; part of the db module.
 */
#ifndef CONFER_DB_RECORD_H
#define CONFER_DB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_schema.h"

struct db;

/* A field value as stored: kind comes from the schema (INT and ITEMREF use i; the others
 * s[0..len), NUL-terminated when read back). set == false is NULL. */
struct db_val {
    bool set;
    const char *s;
    size_t len;
    int64_t i;
};

/* ---- objects (every type but the meeting, and the meeting row itself) ---- */

/* Inserts or updates (by id) one object of a meeting: vals holds one value per schema field
 * of type t, in schema order (COMPUTED fields are ignored). For PROTO_T_MEETING, id is
 * ignored and the row of meeting `meeting` is written.
 * Returns 0, PROTO_ECONFLICT (a unique key: doc ref+revision, action ref), PROTO_EDB. */
int db_obj_put(struct db *db, const char *meeting, enum proto_type t, int64_t id, int64_t seq,
               const struct db_val *vals);

/* Deletes one object; absent is not an error. Returns 0 or PROTO_EDB. */
int db_obj_delete(struct db *db, const char *meeting, enum proto_type t, int64_t id);

/* Deletes every object of type t (not the meeting) of a meeting. Returns 0 or PROTO_EDB. */
int db_obj_clear(struct db *db, const char *meeting, enum proto_type t);

/* Calls cb for every object of type t of a meeting, in id order (for PROTO_T_MEETING: its
 * one row, id 0). The values point into SQLite's memory: copy what you keep.
 * Returns 0, cb's non-zero value, or PROTO_EDB. */
typedef int (*db_obj_cb)(void *ud, int64_t id, int64_t seq, const struct db_val *vals);
int db_obj_load(struct db *db, const char *meeting, enum proto_type t, db_obj_cb cb, void *ud);

/* Reserves count object ids for this process: *first .. *first + count - 1 are never
 * handed to anyone else (a counter row, advanced in its own transaction; the first block
 * starts above db_obj_max_id). Returns 0 or PROTO_EDB. */
int db_id_reserve(struct db *db, int64_t count, int64_t *first);

/* The largest object id of any type in any meeting (0 when none). */
int db_obj_max_id(struct db *db, int64_t *out);

/* Calls cb with the id of every meeting, in id order. */
typedef int (*db_meeting_cb)(void *ud, const char *id);
int db_meeting_list(struct db *db, db_meeting_cb cb, void *ud);

/* Returns 0 when the meeting exists, else PROTO_ENOTFOUND. */
int db_meeting_exists(struct db *db, const char *meeting);

/* ---- members ---- */

/* Sets (role != NULL) or removes (role == NULL) a member. Returns 0 or PROTO_EDB. */
int db_member_put(struct db *db, const char *meeting, const char *user, const char *role,
                  int64_t seq);

typedef int (*db_member_cb)(void *ud, const char *meeting, const char *user, const char *role,
                            int64_t seq);
/* Every member of a meeting, by user name. */
int db_member_list(struct db *db, const char *meeting, db_member_cb cb, void *ud);
/* Every meeting a user is a member of, by meeting id. */
int db_member_of(struct db *db, const char *user, db_member_cb cb, void *ud);

/* ---- audit log ---- */

#define DB_HASH_BYTES 32

/* One entry. id is the object's id: id_str for the meeting and member entries, else id_int.
 * payload is the canonical msgpack map of the event's own keys (fields, field/op, role).
 * cid may be NULL. */
struct db_audit {
    const char *meeting;
    int64_t seq;
    int64_t time_ms;
    const char *user;
    const char *cid;
    const char *kind; /* create, update, delete, text, member */
    const char *type; /* a proto_schema type name, or "member" */
    const char *id_str;
    int64_t id_int;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t hash[DB_HASH_BYTES];
};

/* Appends an entry. Returns 0, PROTO_ECONFLICT (seq or (user, cid) taken), PROTO_EDB. */
int db_audit_append(struct db *db, const struct db_audit *e);

/* Calls cb for the entries of a meeting with since < seq <= until, in seq order.
 * Pointers in e are valid during the call only. */
typedef int (*db_audit_cb)(void *ud, const struct db_audit *e);
int db_audit_range(struct db *db, const char *meeting, int64_t since, int64_t until, db_audit_cb cb,
                   void *ud);

/* Filtered history for history.list: entries with since < seq <= until (until 0: no bound),
 * and when not NULL/0, of that user, type and object id (as text or int); newest first, at
 * most limit. */
struct db_history_filter {
    int64_t since, until;
    const char *user;
    const char *type;
    const char *id_str;
    int64_t id_int;
    int limit;
};
int db_audit_history(struct db *db, const char *meeting, const struct db_history_filter *f,
                     db_audit_cb cb, void *ud);

/* The last entry's seq and hash; seq 0 when the meeting has none. */
int db_audit_head(struct db *db, const char *meeting, int64_t *seq, uint8_t hash[DB_HASH_BYTES]);

/* Finds the entry a user made with cid in a meeting: calls cb once when found.
 * Returns 0 (found), PROTO_ENOTFOUND, or PROTO_EDB. */
int db_audit_find_cid(struct db *db, const char *meeting, const char *user, const char *cid,
                      db_audit_cb cb, void *ud);

/* ---- signed checkpoints of the audit chain ---- */

#define DB_SIG_BYTES 64

int db_checkpoint_add(struct db *db, const char *meeting, int64_t seq,
                      const uint8_t head[DB_HASH_BYTES], const uint8_t sig[DB_SIG_BYTES]);

typedef int (*db_checkpoint_cb)(void *ud, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                                const uint8_t sig[DB_SIG_BYTES]);
int db_checkpoint_list(struct db *db, const char *meeting, db_checkpoint_cb cb, void *ud);

/* ---- the rows as a cache of the log ---- */

/* The seq the rows of a meeting stand at (its objects, members and meeting row show the
 * record as the log makes it at that seq). Returns 0, PROTO_ENOTFOUND, PROTO_EDB. */
int db_rows_seq(struct db *db, const char *meeting, int64_t *seq);

/* Records that the meeting's rows now stand at seq (in the transaction that wrote them).
 * Returns 0 or PROTO_EDB (no meeting row). */
int db_rows_mark(struct db *db, const char *meeting, int64_t seq);

/* Removes every member row of a meeting (before writing them all again). */
int db_member_clear(struct db *db, const char *meeting);

/* ---- snapshots: signed dumps of a record at a seq ---- */

struct db_snapshot {
    const char *meeting;
    int64_t seq;
    uint8_t head[DB_HASH_BYTES];  /* the chain's hash at seq */
    uint8_t state[DB_HASH_BYTES]; /* the hash of data */
    uint8_t sig[DB_SIG_BYTES];
    const uint8_t *data; /* NULL from db_snapshot_list */
    size_t data_len;
};

/* Stores a snapshot; one that exists at that seq is kept. Returns 0 or PROTO_EDB. */
int db_snapshot_add(struct db *db, const struct db_snapshot *s);

/* Calls cb for the snapshots of a meeting with seq <= at, newest first, until cb returns
 * non-zero (its value is returned; 0 when none is left). data is valid during the call. */
typedef int (*db_snapshot_cb)(void *ud, const struct db_snapshot *s);
int db_snapshot_before(struct db *db, const char *meeting, int64_t at, db_snapshot_cb cb, void *ud);

/* Calls cb for every snapshot of a meeting in seq order, without its data. */
int db_snapshot_list(struct db *db, const char *meeting, db_snapshot_cb cb, void *ud);

#endif
