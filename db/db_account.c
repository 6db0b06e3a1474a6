/* db_account.c - accounts and login tokens. */
#include "db_int.h"

#include <string.h>

/* 1..PROTO_NAME_MAX bytes of [a-z0-9._-] starting with [a-z0-9], as proto_name_valid;
 * the accounts table checks the same. */
static bool name_valid(const char *s)
{
    size_t n;

    if (s == NULL) {
        return false;
    }
    n = strnlen(s, PROTO_NAME_MAX + 1);
    if (n == 0 || n > PROTO_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return false;
        }
    }
    return true;
}

/* A hash that fits struct db_account.pwhash with its NUL. */
static bool pwhash_valid(const char *s)
{
    size_t n;

    if (s == NULL) {
        return false;
    }
    n = strnlen(s, DB_PWHASH_MAX);
    return n > 0 && n < DB_PWHASH_MAX;
}

/* Copies a row of ACCOUNT_COLUMNS into out. */
static int read_account(struct db *db, sqlite3_stmt *st, struct db_account *out)
{
    const unsigned char *name = sqlite3_column_text(st, 1);
    int name_len = sqlite3_column_bytes(st, 1);
    const unsigned char *pwhash = sqlite3_column_text(st, 2);
    int pwhash_len = sqlite3_column_bytes(st, 2);

    memset(out, 0, sizeof(*out));
    if (name == NULL || pwhash == NULL || name_len > PROTO_NAME_MAX ||
        pwhash_len >= DB_PWHASH_MAX) {
        return db_fail(db, PROTO_EDB, "malformed account row");
    }
    out->id = sqlite3_column_int64(st, 0);
    memcpy(out->name, name, (size_t)name_len);
    memcpy(out->pwhash, pwhash, (size_t)pwhash_len);
    out->operator= sqlite3_column_int64(st, 3) != 0;
    out->disabled = sqlite3_column_int64(st, 4) != 0;
    out->gen = sqlite3_column_int64(st, 5);
    out->created_ms = sqlite3_column_int64(st, 6);
    return 0;
}

int db_account_add(struct db *db, const char *name, const char *pwhash, bool operator)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL) {
        return PROTO_EINVAL;
    }
    if (!name_valid(name)) {
        return db_fail(db, PROTO_EINVAL, "invalid account name");
    }
    if (!pwhash_valid(pwhash)) {
        return db_fail(db, PROTO_EINVAL, "invalid password hash");
    }
    rc = db_stmt_get(db, DB_ST_ACCOUNT_ADD, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":name", name)) != 0 ||
        (rc = db_bind_text(db, st, ":pwhash", pwhash)) != 0 ||
        (rc = db_bind_int64(db, st, ":operator", operator? 1 : 0)) != 0 ||
        (rc = db_bind_int64(db, st, ":now", db_now_ms())) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_account_get(struct db *db, const char *name, struct db_account *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || name == NULL || out == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_ACCOUNT_GET, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":name", name);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        rc = read_account(db, st, out);
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such account");
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* Runs a statement bound to :name only. */
static int run_by_name(struct db *db, enum db_stmt id, const char *name)
{
    sqlite3_stmt *st = NULL;
    int rc = db_stmt_get(db, id, &st);

    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":name", name);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_account_set_disabled(struct db *db, const char *name, bool disabled)
{
    sqlite3_stmt *st = NULL;
    enum db_tx tx = DB_TX_TOP;
    int rc;

    if (db == NULL || name == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_tx_begin(db, &tx);
    if (rc != 0) {
        return rc;
    }
    rc = db_stmt_get(db, DB_ST_ACCOUNT_SET_DISABLED, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_int64(db, st, ":disabled", disabled ? 1 : 0)) != 0 ||
        (rc = db_bind_text(db, st, ":name", name)) != 0 || (rc = db_step(db, st)) != 0) {
        goto cleanup;
    }
    if (sqlite3_changes(db->conn) == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such account");
        goto cleanup;
    }
    if (disabled) {
        rc = run_by_name(db, DB_ST_ACCOUNT_TOKENS_DELETE, name);
    }
cleanup:
    db_stmt_done(st);
    return db_tx_end(db, tx, rc);
}

int db_account_set_pwhash(struct db *db, const char *name, const char *pwhash, bool revoke)
{
    sqlite3_stmt *st = NULL;
    enum db_tx tx = DB_TX_TOP;
    bool in_tx = false;
    int rc;

    if (db == NULL || name == NULL) {
        return PROTO_EINVAL;
    }
    if (!pwhash_valid(pwhash)) {
        return db_fail(db, PROTO_EINVAL, "invalid password hash");
    }
    /* A rehash at login is one statement; a password change must also drop the tokens. */
    if (revoke) {
        rc = db_tx_begin(db, &tx);
        if (rc != 0) {
            return rc;
        }
        in_tx = true;
    }
    rc = db_stmt_get(db, DB_ST_ACCOUNT_SET_PWHASH, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":pwhash", pwhash)) != 0 ||
        (rc = db_bind_int64(db, st, ":bump", revoke ? 1 : 0)) != 0 ||
        (rc = db_bind_text(db, st, ":name", name)) != 0 || (rc = db_step(db, st)) != 0) {
        goto cleanup;
    }
    if (sqlite3_changes(db->conn) == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such account");
        goto cleanup;
    }
    if (revoke) {
        rc = run_by_name(db, DB_ST_ACCOUNT_TOKENS_DELETE, name);
    }
cleanup:
    db_stmt_done(st);
    return in_tx ? db_tx_end(db, tx, rc) : rc;
}

int db_account_list(struct db *db, db_account_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    struct db_account a;
    int rc;

    if (db == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_ACCOUNT_LIST, &st);
    if (rc != 0) {
        goto cleanup;
    }
    while ((rc = db_step(db, st)) == 1) {
        rc = read_account(db, st, &a);
        if (rc != 0) {
            goto cleanup;
        }
        rc = cb(ud, &a);
        if (rc != 0) {
            goto cleanup;
        }
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* ---- tokens ---- */

int db_token_add(struct db *db, const char *name, const uint8_t hash[DB_TOKEN_HASH_BYTES],
                 int64_t expires_ms)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || name == NULL || hash == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_TOKEN_ADD, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_blob(db, st, ":hash", hash, DB_TOKEN_HASH_BYTES)) != 0 ||
        (rc = db_bind_int64(db, st, ":expires", expires_ms)) != 0 ||
        (rc = db_bind_int64(db, st, ":now", db_now_ms())) != 0 ||
        (rc = db_bind_text(db, st, ":name", name)) != 0 || (rc = db_step(db, st)) != 0) {
        goto cleanup;
    }
    /* No row inserted: no such account, or it is disabled (it may not log in). */
    if (sqlite3_changes(db->conn) == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such enabled account");
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_token_check(struct db *db, const char *name, const uint8_t hash[DB_TOKEN_HASH_BYTES],
                   int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || name == NULL || hash == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_TOKEN_CHECK, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_blob(db, st, ":hash", hash, DB_TOKEN_HASH_BYTES)) != 0 ||
        (rc = db_bind_text(db, st, ":name", name)) != 0 ||
        (rc = db_bind_int64(db, st, ":now", now_ms)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        rc = 0;
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such valid token");
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_token_delete(struct db *db, const uint8_t hash[DB_TOKEN_HASH_BYTES])
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || hash == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_TOKEN_DELETE, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_blob(db, st, ":hash", hash, DB_TOKEN_HASH_BYTES);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_token_purge(struct db *db, int64_t now_ms, int *count)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (count != NULL) {
        *count = 0;
    }
    if (db == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_TOKEN_PURGE, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_int64(db, st, ":now", now_ms);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 0 && count != NULL) {
        *count = sqlite3_changes(db->conn);
    }
cleanup:
    db_stmt_done(st);
    return rc;
}
