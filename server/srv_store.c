/* srv_store.c - the account writes of requests, on the writer. */
#include "srv_store.h"

#include <stdlib.h>
#include <string.h>

#include "srv_conn.h"
#include "srv_writer.h"

enum store_kind { STORE_TOKEN_ADD, STORE_TOKEN_DELETE, STORE_PWHASH };

struct store_job {
    struct srv *srv;
    struct srv_conn *conn; /* may be NULL */
    enum store_kind kind;
    srv_store_cb cb;
    void *ud;
    char user[PROTO_NAME_MAX + 1];
    uint8_t hash[DB_TOKEN_HASH_BYTES];
    int64_t expires_ms;
    char pwhash[DB_PWHASH_MAX];
    bool revoke;
    int64_t if_gen; /* STORE_PWHASH: only while the account's gen is this (-1: always) */
};

static void job_free(struct store_job *j)
{
    sodium_memzero(j, sizeof(*j));
    free(j);
}

/* The check of the account and the write are one transaction, so no operator reset (from
 * another process) can fall between them. PROTO_ECONFLICT: the account changed. */
static int set_pwhash_if_gen(struct db *db, struct store_job *j)
{
    struct db_account a;
    bool changed = false;
    int rc = db_begin(db);
    if (rc == 0 && (rc = db_account_get(db, j->user, &a)) == 0) {
        changed = a.disabled || a.gen != j->if_gen;
    }
    sodium_memzero(&a, sizeof(a));
    if (rc == PROTO_ENOTFOUND) {
        changed = true;
        rc = 0;
    }
    if (rc == 0 && !changed) {
        rc = db_account_set_pwhash(db, j->user, j->pwhash, j->revoke);
    }
    if (rc == 0 && !changed) {
        return db_commit(db); /* rolls back when it fails */
    }
    db_rollback(db);
    return rc != 0 ? rc : PROTO_ECONFLICT;
}

static int store_work(struct db *db, void *ud, char *err, size_t errlen)
{
    struct store_job *j = ud;
    int rc = PROTO_EINVAL;
    switch (j->kind) {
    case STORE_TOKEN_ADD:
        rc = db_token_add(db, j->user, j->hash, j->expires_ms);
        break;
    case STORE_TOKEN_DELETE:
        rc = db_token_delete(db, j->hash);
        break;
    case STORE_PWHASH:
        rc = j->if_gen < 0 ? db_account_set_pwhash(db, j->user, j->pwhash, j->revoke)
                           : set_pwhash_if_gen(db, j);
        break;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", db_errmsg(db));
    }
    return rc;
}

static void store_done(void *ud, int rc, const char *err)
{
    struct store_job *j = ud;
    struct srv_conn *conn = j->conn;
    if (rc != 0) {
        srv_log(conn, SRV_LOG_ERROR, "cannot write an account change: %s", err);
    }
    if (conn && !conn->closed && conn->state != SRV_CONN_CLOSING) {
        conn->busy = false; /* before cb: it may start another write */
    }
    if (j->cb) {
        j->cb(conn, j->ud, rc);
    }
    if (conn) {
        if (!conn->closed && !conn->busy) {
            srv_conn_resume(conn);
        }
        srv_conn_done(conn);
    }
    job_free(j);
}

static int submit(struct store_job *j)
{
    if (srv_writer_submit(j->srv->writer, store_work, store_done, j) != 0) {
        job_free(j);
        return PROTO_EIO;
    }
    if (j->conn) {
        j->conn->busy = true;
        srv_conn_hold(j->conn);
    }
    return 0;
}

static struct store_job *job_new(struct srv *srv, struct srv_conn *conn, enum store_kind kind,
                                 srv_store_cb cb, void *ud)
{
    struct store_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->srv = srv;
        j->conn = conn;
        j->kind = kind;
        j->cb = cb;
        j->ud = ud;
    }
    return j;
}

int srv_store_token_add(struct srv_conn *conn, const char *user,
                        const uint8_t hash[DB_TOKEN_HASH_BYTES], int64_t expires_ms,
                        srv_store_cb cb, void *ud)
{
    struct store_job *j = job_new(conn->srv, conn, STORE_TOKEN_ADD, cb, ud);
    if (j == NULL) {
        return PROTO_ENOMEM;
    }
    snprintf(j->user, sizeof(j->user), "%s", user);
    memcpy(j->hash, hash, DB_TOKEN_HASH_BYTES);
    j->expires_ms = expires_ms;
    return submit(j);
}

int srv_store_token_delete(struct srv_conn *conn, const uint8_t hash[DB_TOKEN_HASH_BYTES],
                           srv_store_cb cb, void *ud)
{
    struct store_job *j = job_new(conn->srv, conn, STORE_TOKEN_DELETE, cb, ud);
    if (j == NULL) {
        return PROTO_ENOMEM;
    }
    memcpy(j->hash, hash, DB_TOKEN_HASH_BYTES);
    return submit(j);
}

int srv_store_pwhash(struct srv *srv, struct srv_conn *conn, const char *user, const char *pwhash,
                     bool revoke, int64_t if_gen, srv_store_cb cb, void *ud)
{
    struct store_job *j = job_new(srv, conn, STORE_PWHASH, cb, ud);
    if (j == NULL) {
        return PROTO_ENOMEM;
    }
    snprintf(j->user, sizeof(j->user), "%s", user);
    snprintf(j->pwhash, sizeof(j->pwhash), "%s", pwhash);
    j->revoke = revoke;
    j->if_gen = if_gen;
    return submit(j);
}
