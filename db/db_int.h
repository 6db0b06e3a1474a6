/* db_int.h - private to db/: the connection struct, the statement cache and the helpers
 * every db_*.c file uses. Nothing outside db/ includes this (or sqlite3.h).
 */
#ifndef CONFER_DB_INT_H
#define CONFER_DB_INT_H

#include <sqlite3.h>

#include "db.h"

/* Every SQL statement db/ runs after open, by id; the SQL is in the one table in db.c.
 * Add new statements at the end of their group; the order is not stored anywhere. */
enum db_stmt {
    DB_ST_BEGIN,
    DB_ST_COMMIT,
    DB_ST_ROLLBACK,
    DB_ST_SAVEPOINT,
    DB_ST_RELEASE,
    DB_ST_ROLLBACK_TO,
    DB_ST_DATA_VERSION,
    DB_ST_USER_VERSION,
    DB_ST_INTEGRITY,
    DB_ST_DEFER_FK,

    DB_ST_ACCOUNT_ADD,
    DB_ST_ACCOUNT_GET,
    DB_ST_ACCOUNT_LIST,
    DB_ST_ACCOUNT_SET_DISABLED,
    DB_ST_ACCOUNT_SET_PWHASH,
    DB_ST_ACCOUNT_TOKENS_DELETE,

    DB_ST_TOKEN_ADD,
    DB_ST_TOKEN_CHECK,
    DB_ST_TOKEN_DELETE,
    DB_ST_TOKEN_PURGE,

    DB_ST_MEETING_LIST,
    DB_ST_MEETING_EXISTS,

    DB_ST_MEMBER_SET,
    DB_ST_MEMBER_DELETE,
    DB_ST_MEMBER_LIST,
    DB_ST_MEMBER_OF,

    DB_ST_AUDIT_APPEND,
    DB_ST_AUDIT_RANGE,
    DB_ST_AUDIT_HISTORY,
    DB_ST_AUDIT_HISTORY_USER,
    DB_ST_AUDIT_HISTORY_OBJ,
    DB_ST_AUDIT_HEAD,
    DB_ST_AUDIT_FIND_CID,

    DB_ST_CHECKPOINT_ADD,
    DB_ST_CHECKPOINT_LIST,

    DB_ST_ROWS_SEQ_GET,
    DB_ST_ROWS_SEQ_SET,
    DB_ST_MEMBER_CLEAR,
    DB_ST_SNAPSHOT_ADD,
    DB_ST_SNAPSHOT_FIND,
    DB_ST_SNAPSHOT_LIST,
    DB_ST_BEGIN_READ,

    DB_ST_COUNTER_GET,
    DB_ST_COUNTER_SET,

    DB_ST_SHARE_ADD,
    DB_ST_SHARE_REVOKE,
    DB_ST_SHARE_LIST,

    DB_ST_COUNT
};

/* The statements of each object type, whose SQL db_record.c generates from proto_schema. */
enum db_obj_st { DB_OBJ_PUT, DB_OBJ_LOAD, DB_OBJ_DELETE, DB_OBJ_ST_COUNT };

struct db {
    sqlite3 *conn;
    sqlite3_stmt *stmt[DB_ST_COUNT]; /* prepared on first use, finalized in db_close */
    sqlite3_stmt *obj_stmt[PROTO_T_COUNT][DB_OBJ_ST_COUNT]; /* likewise, by type */
    sqlite3_stmt *obj_max_id;                               /* likewise */
    char errmsg[256]; /* the last error, copied before anything overwrites it */
    int errcode;      /* the extended SQLite code of that error, when SQLite reported it */
    int errnum;       /* and the errno behind it (sqlite3_system_errno), or 0 */
};

/* How db_tx_begin opened its transaction, for db_tx_end. */
enum db_tx {
    DB_TX_TOP,       /* BEGIN IMMEDIATE: no transaction was open */
    DB_TX_SAVEPOINT, /* SAVEPOINT inside the caller's db_begin */
};

/* Returns the cached statement id in *out, preparing it (SQLITE_PREPARE_PERSISTENT) on
 * first use. Fails with PROTO_EDB when the statement is already running (a re-entrant call
 * from a callback). Pair every successful call with db_stmt_done. */
int db_stmt_get(struct db *db, enum db_stmt id, sqlite3_stmt **out);

/* Resets the statement and clears its bindings; NULL is a no-op. */
void db_stmt_done(sqlite3_stmt *st);

/* Binds a value to the named parameter (":name"). Return 0 or a PROTO_E* code. */
int db_bind_text(struct db *db, sqlite3_stmt *st, const char *param, const char *s);
int db_bind_int64(struct db *db, sqlite3_stmt *st, const char *param, int64_t v);
int db_bind_blob(struct db *db, sqlite3_stmt *st, const char *param, const void *p, size_t n);

/* Steps once: 1 for a row, 0 when done, or a negative PROTO_E* code (message recorded). */
int db_step(struct db *db, sqlite3_stmt *st);

/* Runs a statement that returns no rows (or whose rows are ignored) to completion. */
int db_exec_stmt(struct db *db, enum db_stmt id);

/* Records the connection's current error message and translates an SQLite result code:
 * unique or primary key violations are PROTO_ECONFLICT, anything else PROTO_EDB. */
int db_sqlerr(struct db *db, int rc);

/* Records a message of ours and returns err. */
int db_fail(struct db *db, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Opens a write transaction for a function that needs several statements to be atomic:
 * BEGIN IMMEDIATE when none is open, else a SAVEPOINT nested in the caller's. */
int db_tx_begin(struct db *db, enum db_tx *tx);

/* Commits (rc == 0) or rolls back (rc != 0) what db_tx_begin opened; returns rc, or the
 * commit's error when rc was 0 and the commit failed (the work is then rolled back). */
int db_tx_end(struct db *db, enum db_tx tx, int rc);

/* Milliseconds since the Unix epoch. */
int64_t db_now_ms(void);

#endif
