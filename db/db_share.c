/* db_share.c - the share links of the live view: their hashes, labels and expiries. */
#include "db.h"
#include "db_int.h"

#include <string.h>

int db_share_add(struct db *db, const struct db_share *s)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || s == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_SHARE_ADD, &st);
    if (rc != 0) {
        return rc;
    }
    if ((rc = db_bind_int64(db, st, ":id", s->id)) != 0 ||
        (rc = db_bind_text(db, st, ":meeting", s->meeting)) != 0 ||
        (rc = db_bind_blob(db, st, ":hash", s->hash, sizeof(s->hash))) != 0 ||
        (rc = db_bind_text(db, st, ":label", s->label)) != 0 ||
        (rc = db_bind_text(db, st, ":user", s->user)) != 0 ||
        (rc = db_bind_int64(db, st, ":created", s->created_ms)) != 0 ||
        (rc = db_bind_int64(db, st, ":expires", s->expires_ms)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_share_revoke(struct db *db, const char *meeting, int64_t id, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_SHARE_REVOKE, &st);
    if (rc != 0) {
        return rc;
    }
    if ((rc = db_bind_int64(db, st, ":id", id)) != 0 ||
        (rc = db_bind_text(db, st, ":meeting", meeting)) != 0 ||
        (rc = db_bind_int64(db, st, ":now", now_ms)) != 0 || (rc = db_step(db, st)) != 0) {
        goto cleanup;
    }
    if (sqlite3_changes(db->conn) == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such live share");
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* Copies a text column into a buffer of cap bytes; false when it does not fit. */
static bool copy_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (t == NULL || n < 0 || (size_t)n >= cap) {
        return false;
    }
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return true;
}

int db_share_list(struct db *db, db_share_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_SHARE_LIST, &st);
    if (rc != 0) {
        return rc;
    }
    while ((rc = db_step(db, st)) == 1) {
        struct db_share s;
        memset(&s, 0, sizeof(s));
        s.id = sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 2);
        if (!copy_text(st, 1, s.meeting, sizeof(s.meeting)) || h == NULL ||
            sqlite3_column_bytes(st, 2) != (int)sizeof(s.hash) ||
            !copy_text(st, 3, s.label, sizeof(s.label)) ||
            !copy_text(st, 4, s.user, sizeof(s.user))) {
            rc = db_fail(db, PROTO_EDB, "malformed share row");
            break;
        }
        memcpy(s.hash, h, sizeof(s.hash));
        s.created_ms = sqlite3_column_int64(st, 5);
        s.expires_ms = sqlite3_column_int64(st, 6);
        rc = cb(ud, &s);
        if (rc != 0) {
            break;
        }
    }
    db_stmt_done(st);
    return rc;
}
