/* db.h - the confer database: the only module that includes sqlite3.h.
 *
 * One struct db is one SQLite connection with its prepared statements; it is used from
 * one thread at a time. The file is opened in WAL mode with synchronous=FULL, foreign
 * keys on and a busy timeout, and migrated forward (PRAGMA user_version) on open.
 * Errors are PROTO_E* codes: PROTO_ENOTFOUND (no such row), PROTO_ECONFLICT (unique key
 * taken), PROTO_EDB (anything SQLite reported; the message is in db_errmsg).
 */
#ifndef CONFER_DB_H
#define CONFER_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_err.h"
#include "proto_util.h"

struct db;

#define DB_CREATE   1 /* create the file (mode 0600) when it does not exist */
#define DB_READONLY 2 /* open read-only (no migration) */

/* Opens (and migrates) the database at path. *out is owned by the caller: db_close it.
 * Returns 0, PROTO_ENOTFOUND (no file and no DB_CREATE), or PROTO_EDB. */
int db_open(struct db **out, const char *path, int flags);

/* db_open that also says why it failed: on failure, why (cap bytes, may be NULL) gets one
 * line naming the file at fault (the database, its -wal or -shm, or their folder), the
 * reason SQLite or the system gave, and what to do. A read-write open fails when SQLite
 * could only open the file read-only, or when a write transaction cannot start. */
int db_open_why(struct db **out, const char *path, int flags, char *why, size_t cap);

/* Finalizes every statement and closes the connection. db_close(NULL) is a no-op. */
void db_close(struct db *db);

/* The last SQLite error message of this connection (static or owned by db). */
const char *db_errmsg(struct db *db);

/* PRAGMA data_version: changes when another connection commits to the file. */
int db_data_version(struct db *db, int64_t *out);

/* Schema version after migration (PRAGMA user_version). */
int db_schema_version(struct db *db, int *out);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK for callers that group several writes. */
int db_begin(struct db *db);
/* A read transaction (BEGIN DEFERRED): what it reads is one consistent state of the
 * database; end it with db_commit or db_rollback. */
int db_begin_read(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db);

/* Defers foreign key checks of the open transaction to its COMMIT (PRAGMA
 * defer_foreign_keys, which SQLite resets when the transaction ends): a sequence of writes
 * that is valid as a whole may pass through states a row-by-row check would refuse. */
int db_defer_foreign_keys(struct db *db);

/* Copies the whole database to path with SQLite's online backup (safe while another
 * connection writes); the copy is made with mode 0600. */
int db_backup(struct db *db, const char *path);

/* PRAGMA integrity_check; returns 0 when "ok", PROTO_EDB otherwise. */
int db_integrity_check(struct db *db);

/* Checks that the file at path is a confer database this program can open: SQLite, with
 * confer's application_id and a schema version from 1 to the latest (older ones are
 * migrated when the server opens it), its core tables, and a clean integrity_check. It is
 * opened read-write without migrating (SQLite may make and remove a -wal and -shm beside
 * it). *version (when not NULL) gets the schema version. Returns 0, PROTO_ENOTFOUND (no
 * such file) or PROTO_EDB, with one line in why saying what is wrong. */
int db_check_file(const char *path, int *version, char *why, size_t cap);

/* ---- accounts ---- */

#define DB_PWHASH_MAX 128 /* crypto_pwhash_STRBYTES */

struct db_account {
    int64_t id;
    char name[PROTO_NAME_MAX + 1];
    char pwhash[DB_PWHASH_MAX];
    bool operator;
    bool disabled;
    int64_t gen; /* bumped on every password change, disable and enable */
    int64_t created_ms;
};

/* Adds an account. Returns 0, PROTO_ECONFLICT when the name is taken, PROTO_EINVAL for
 * an invalid name. */
int db_account_add(struct db *db, const char *name, const char *pwhash, bool operator);

/* Reads an account by name. Returns 0 or PROTO_ENOTFOUND. */
int db_account_get(struct db *db, const char *name, struct db_account *out);

/* Disables or enables an account and bumps its gen; disabling also deletes its tokens.
 * Returns 0 or PROTO_ENOTFOUND. */
int db_account_set_disabled(struct db *db, const char *name, bool disabled);

/* Replaces the password hash. With revoke, bumps gen and deletes the account's tokens (a
 * password change); without, only the hash changes (a rehash at login).
 * Returns 0 or PROTO_ENOTFOUND. */
int db_account_set_pwhash(struct db *db, const char *name, const char *pwhash, bool revoke);

/* Calls cb for every account in name order; stops early (returning cb's value) when cb
 * returns non-zero. */
typedef int (*db_account_cb)(void *ud, const struct db_account *a);
int db_account_list(struct db *db, db_account_cb cb, void *ud);

/* ---- login tokens (only their hashes are stored) ---- */

#define DB_TOKEN_HASH_BYTES 32

/* Stores a token hash for an account, valid until expires_ms. Returns 0 or
 * PROTO_ENOTFOUND for an unknown or disabled account. */
int db_token_add(struct db *db, const char *name, const uint8_t hash[DB_TOKEN_HASH_BYTES],
                 int64_t expires_ms);

/* Checks a token hash for an account: 0 when it exists, belongs to name, the account is
 * enabled and now_ms < expiry; PROTO_ENOTFOUND otherwise. */
int db_token_check(struct db *db, const char *name, const uint8_t hash[DB_TOKEN_HASH_BYTES],
                   int64_t now_ms);

/* Deletes one token (logout). Deleting an absent token is not an error. */
int db_token_delete(struct db *db, const uint8_t hash[DB_TOKEN_HASH_BYTES]);

/* Deletes every expired token; *count (may be NULL) gets how many. */
int db_token_purge(struct db *db, int64_t now_ms, int *count);

/* ---- share links of the live view (only their tokens' hashes are stored) ---- */

#define DB_SHARE_LABEL_MAX 200

struct db_share {
    int64_t id;
    char meeting[PROTO_NAME_MAX + 1];
    uint8_t hash[DB_TOKEN_HASH_BYTES];
    char label[DB_SHARE_LABEL_MAX + 1];
    char user[PROTO_NAME_MAX + 1];
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
};

/* Stores a share. Returns 0, PROTO_ECONFLICT (id or hash taken) or PROTO_EDB. */
int db_share_add(struct db *db, const struct db_share *s);

/* Marks share id of meeting revoked at now_ms. Returns 0, PROTO_ENOTFOUND when no such
 * share is live, or PROTO_EDB. */
int db_share_revoke(struct db *db, const char *meeting, int64_t id, int64_t now_ms);

/* Calls cb for every share not revoked (expired ones included), in id order; stops early
 * with cb's value when it is not 0. */
typedef int (*db_share_cb)(void *ud, const struct db_share *s);
int db_share_list(struct db *db, db_share_cb cb, void *ud);

/* ---- meeting records, members, audit log ---- */

#include "db_record.h"

#endif
