/* srv_auth.c - auth.login, auth.token, auth.logout, auth.passwd, whoami.
 *
 * Argon2id checks run on libuv's pool, at most cfg.pw_parallel at once with at most
 * cfg.pw_queue waiting; the connection handles nothing else until its check is answered,
 * so responses keep the order of requests.
 */
#include "srv_auth.h"

#include "srv_conn.h"
#include "srv_hub.h"
#include "srv_req.h"
#include "srv_store.h"

#include <stdlib.h>
#include <string.h>

#define BAD_CREDENTIALS "bad user name or password"

enum pwjob_kind { PWJOB_LOGIN, PWJOB_PASSWD };

struct srv_pwjob {
    uv_work_t work;
    struct srv_pwjob *next;
    struct srv_conn *conn;
    uint32_t msgid;
    enum pwjob_kind kind;
    char user[PROTO_NAME_MAX + 1];
    bool known;    /* the account exists and is enabled */
    bool remember; /* login: issue a token */
    int64_t gen;
    bool operator;
    unsigned long long ops;
    size_t mem;
    char hash[DB_PWHASH_MAX]; /* stored hash, or the dummy */
    char *password;           /* wiped and freed after use */
    size_t password_len;
    char *newpw; /* passwd: the new password */
    size_t newpw_len;
    /* results, written on the pool */
    bool ok;
    bool rehashed;
    char newhash[DB_PWHASH_MAX];
    int hash_rc;
};

void srv_pwcost_limits(enum srv_pwcost cost, unsigned long long *ops, size_t *mem)
{
    switch (cost) {
    case SRV_PWCOST_MODERATE:
        *ops = crypto_pwhash_OPSLIMIT_MODERATE;
        *mem = crypto_pwhash_MEMLIMIT_MODERATE;
        break;
    case SRV_PWCOST_MIN:
        *ops = crypto_pwhash_OPSLIMIT_MIN;
        *mem = crypto_pwhash_MEMLIMIT_MIN;
        break;
    case SRV_PWCOST_INTERACTIVE:
    default:
        *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
        break;
    }
}

int srv_pwcost_parse(const char *s, enum srv_pwcost *out)
{
    if (strcmp(s, "interactive") == 0) {
        *out = SRV_PWCOST_INTERACTIVE;
    } else if (strcmp(s, "moderate") == 0) {
        *out = SRV_PWCOST_MODERATE;
    } else if (strcmp(s, "min") == 0) {
        *out = SRV_PWCOST_MIN;
    } else {
        return PROTO_EINVAL;
    }
    return 0;
}

int srv_password_hash(enum srv_pwcost cost, const char *pw, size_t len, char out[DB_PWHASH_MAX])
{
    unsigned long long ops = 0;
    size_t mem = 0;
    srv_pwcost_limits(cost, &ops, &mem);
    if (crypto_pwhash_str(out, pw, len, ops, mem) != 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

bool srv_password_check(const struct srv_config *cfg, const char *pw, size_t len, char *msg,
                        size_t msgsz)
{
    if (len > SRV_PASSWORD_MAX) {
        snprintf(msg, msgsz, "password too long: at most %d bytes", SRV_PASSWORD_MAX);
        return false;
    }
    if (!proto_utf8_valid(pw, len)) {
        snprintf(msg, msgsz, "password must be valid UTF-8 text");
        return false;
    }
    if (proto_utf8_count(pw, len) < cfg->min_password) {
        snprintf(msg, msgsz, "password too short: at least %zu characters", cfg->min_password);
        return false;
    }
    return true;
}

int srv_pwhash_dummy_like(const char *stored, char out[DB_PWHASH_MAX])
{
    /* "$argon2id$v=19$m=...,t=...,p=...$SALT$HASH": keep everything up to the salt, and
     * put random bytes of the same lengths in place of the salt and the hash. */
    const char *p = stored;
    for (int i = 0; i < 3 && p; i++) {
        p = strchr(p + 1, '$');
    }
    if (strncmp(stored, "$argon2", 7) != 0 || p == NULL) {
        return PROTO_EINVAL;
    }
    const char *salt = p + 1, *hash = strchr(salt, '$');
    if (hash == NULL) {
        return PROTO_EINVAL;
    }
    hash++;
    size_t salt_bytes = (size_t)(hash - 1 - salt) * 6 / 8, hash_bytes = strlen(hash) * 6 / 8;
    size_t prefix = (size_t)(salt - stored);
    uint8_t rnd[64];
    const int v = sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    if (salt_bytes == 0 || hash_bytes == 0 || salt_bytes > sizeof(rnd) ||
        hash_bytes > sizeof(rnd) ||
        prefix + sodium_base64_ENCODED_LEN(salt_bytes, v) +
                sodium_base64_ENCODED_LEN(hash_bytes, v) >
            DB_PWHASH_MAX) {
        return PROTO_EINVAL;
    }
    memcpy(out, stored, prefix);
    size_t n = prefix;
    randombytes_buf(rnd, salt_bytes);
    sodium_bin2base64(out + n, DB_PWHASH_MAX - n, rnd, salt_bytes, v);
    n += strlen(out + n);
    out[n++] = '$';
    randombytes_buf(rnd, hash_bytes);
    sodium_bin2base64(out + n, DB_PWHASH_MAX - n, rnd, hash_bytes, v);
    return 0;
}

static int first_hash(void *ud, const struct db_account *a)
{
    return srv_pwhash_dummy_like(a->pwhash, ud) == 0 ? 1 : 0;
}

void srv_auth_unknown_hash(struct db *db, const char *fallback, char out[DB_PWHASH_MAX])
{
    /* The stored hashes, not --pwhash-cost, set the time a real check takes (accounts
     * made at another cost keep it until their owner logs in). */
    if (db_account_list(db, first_hash, out) != 1) {
        snprintf(out, DB_PWHASH_MAX, "%s", fallback);
    }
}

static void job_free(struct srv_pwjob *job)
{
    if (job == NULL) {
        return;
    }
    if (job->password) {
        sodium_memzero(job->password, job->password_len);
        free(job->password);
    }
    if (job->newpw) {
        sodium_memzero(job->newpw, job->newpw_len);
        free(job->newpw);
    }
    sodium_memzero(job->hash, sizeof(job->hash));
    sodium_memzero(job->newhash, sizeof(job->newhash));
    free(job);
}

static char *dup_secret(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* On the pool: verify, then (re)hash when needed. */
static void pw_work(uv_work_t *w)
{
    struct srv_pwjob *job = w->data;
    job->ok = crypto_pwhash_str_verify(job->hash, job->password, job->password_len) == 0;
    if (!job->known) {
        job->ok = false;
    }
    if (!job->ok) {
        return;
    }
    if (job->kind == PWJOB_PASSWD) {
        job->hash_rc =
            crypto_pwhash_str(job->newhash, job->newpw, job->newpw_len, job->ops, job->mem) == 0
                ? 0
                : PROTO_ENOMEM;
        return;
    }
    if (crypto_pwhash_str_needs_rehash(job->hash, job->ops, job->mem) != 0) {
        job->rehashed = crypto_pwhash_str(job->newhash, job->password, job->password_len, job->ops,
                                          job->mem) == 0;
    }
}

static void pw_done(uv_work_t *w, int status);

static void refund(struct srv_conn *conn, const char *user);

/* Starts a job on the pool. queued: it waited in srv->pw_head, so its connection is
 * paused and must be resumed here when the job cannot start; otherwise the connection is
 * still handling the request and goes on by itself. */
static void pw_start(struct srv *srv, struct srv_pwjob *job, bool queued)
{
    srv->pw_running++;
    job->work.data = job;
    if (uv_queue_work(srv->loop, &job->work, pw_work, pw_done) != 0) {
        /* Cannot happen with a valid loop and callbacks; answer rather than hang. */
        struct srv_conn *conn = job->conn;
        srv->pw_running--;
        conn->busy = false;
        if (!conn->closed && conn->state != SRV_CONN_CLOSING) {
            struct srv_req req = {.conn = conn, .msgid = job->msgid};
            refund(conn, job->user); /* no password was checked */
            srv_reply_error(&req, PROTO_CODE_INTERNAL, "cannot queue the password check");
            if (queued) {
                srv_conn_resume(conn);
            }
        }
        job_free(job);
        srv_conn_done(conn);
    }
}

static void pw_next(struct srv *srv)
{
    while (srv->pw_head && srv->pw_running < srv->cfg.pw_parallel) {
        struct srv_pwjob *job = srv->pw_head;
        srv->pw_head = job->next;
        if (srv->pw_head == NULL) {
            srv->pw_tail = NULL;
        }
        srv->pw_waiting--;
        pw_start(srv, job, true);
    }
}

/* Queues a password job, or answers rate_limited when the queue is full. The connection
 * holds its other requests until the job is answered. */
static void pw_submit(struct srv_req *req, struct srv_pwjob *job)
{
    struct srv *srv = req->conn->srv;
    if (srv->pw_running >= srv->cfg.pw_parallel && srv->pw_waiting >= srv->cfg.pw_queue) {
        refund(req->conn, job->user); /* no password was checked */
        srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "server busy checking passwords",
                             "retry_after_ms", 1000);
        job_free(job);
        return;
    }
    job->conn = req->conn;
    job->msgid = req->msgid;
    srv_pwcost_limits(srv->cfg.pwcost, &job->ops, &job->mem);
    srv_conn_hold(req->conn);
    req->conn->busy = true;
    if (srv->pw_running < srv->cfg.pw_parallel) {
        pw_start(srv, job, false);
        return;
    }
    job->next = NULL;
    if (srv->pw_tail) {
        srv->pw_tail->next = job;
    } else {
        srv->pw_head = job;
    }
    srv->pw_tail = job;
    srv->pw_waiting++;
}

/* Password checks are limited by the rule of srv_ratelimit.h: per client address, per
 * (account, address) and per account. Each check is charged as a failure when it is
 * queued, before Argon2 runs, so that simultaneous attempts cannot outrun the limit; a
 * check that succeeds, or never runs, is refunded. */

/* Answers rate_limited (and returns true) when user may not have a password checked from
 * this connection's address now; otherwise charges the attempt and returns false. user
 * may be "" (an invalid name: only the address is charged). */
static bool charge(struct srv_req *req, const char *user)
{
    struct srv_conn *conn = req->conn;
    struct srv *srv = conn->srv;
    int64_t now = proto_now_ms();
    int64_t wait = srv_rl_addr_check(&srv->rl_addr, conn->peer_ip, now);
    if (user[0]) {
        int64_t w = srv_rl_pair_check(&srv->rl_account, user, conn->peer_ip, now);
        wait = w > wait ? w : wait;
        w = srv_rl_account_check(&srv->rl_account, user, now);
        wait = w > wait ? w : wait;
    }
    if (wait > 0) {
        srv_log(conn, SRV_LOG_WARN, "login refused: rate limited (user=%s)", user);
        srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "too many failed logins: retry later",
                             "retry_after_ms", wait);
        return true;
    }
    srv_rl_addr_fail(&srv->rl_addr, conn->peer_ip, now);
    if (user[0]) {
        srv_rl_pair_fail(&srv->rl_account, user, conn->peer_ip, now);
        srv_rl_account_fail(&srv->rl_account, user, now);
    }
    return false;
}

/* Takes back a charge whose password was never checked. */
static void refund(struct srv_conn *conn, const char *user)
{
    struct srv *srv = conn->srv;
    srv_rl_addr_refund(&srv->rl_addr, conn->peer_ip);
    if (user[0]) {
        srv_rl_pair_refund(&srv->rl_account, user, conn->peer_ip);
        srv_rl_account_refund(&srv->rl_account, user);
    }
}

/* A correct password: its charge is taken back and the account's failures forgotten. */
static void succeeded(struct srv_conn *conn, const char *user)
{
    struct srv *srv = conn->srv;
    srv_rl_addr_refund(&srv->rl_addr, conn->peer_ip);
    srv_rl_pair_reset(&srv->rl_account, user, conn->peer_ip);
    srv_rl_account_reset(&srv->rl_account, user);
}

static void become_ready(struct srv_conn *conn, const char *user, bool operator, int64_t gen)
{
    srv_conn_set_user(conn, user);
    conn->operator= operator;
    conn->gen = gen;
    conn->state = SRV_CONN_READY;
    conn->logged_in_once = true;
    uv_timer_stop(&conn->deadline);
    proto_reader_set_max(&conn->rd, conn->srv->cfg.max_frame + PROTO_ABYTES);
}

/* The answer to a successful login, with its token when one was issued. */
static void login_reply(struct srv_conn *conn, uint32_t msgid, const char *token, int64_t expires)
{
    struct srv_req req = {.conn = conn, .msgid = msgid};
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(&req, &pk, &b);
    msgpack_pack_map(&pk, token ? 4 : 2);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, conn->user);
    proto_pack_cstr(&pk, "operator");
    conn->operator? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (token) {
        proto_pack_cstr(&pk, "token");
        proto_pack_cstr(&pk, token);
        proto_pack_cstr(&pk, "expires");
        msgpack_pack_int64(&pk, expires);
    }
    srv_reply_finish(&req, &b);
    proto_buf_free(&b, 1);
}

/* A login whose token could not be stored is undone: the connection must log in within
 * the deadline, as after auth.logout. */
static void logged_out_again(struct srv_conn *conn)
{
    conn->state = SRV_CONN_AUTH;
    srv_conn_set_user(conn, NULL);
    conn->operator= false;
    srv_conn_arm_deadline(conn);
}

/* A token being stored on the writer; the login is answered when it is. */
struct token_job {
    uint32_t msgid;
    char token[64]; /* base64url */
    uint8_t hash[DB_TOKEN_HASH_BYTES];
    int64_t expires;
};

static void token_stored(struct srv_conn *conn, void *ud, int rc)
{
    struct token_job *t = ud;
    if (!conn->closed && conn->state != SRV_CONN_CLOSING) {
        if (rc != 0) {
            struct srv_req req = {.conn = conn, .msgid = t->msgid};
            srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
            logged_out_again(conn);
        } else {
            memcpy(conn->token_hash, t->hash, sizeof(t->hash));
            conn->has_token = true;
            srv_log(conn, SRV_LOG_INFO, "login ok (user=%s, token issued)", conn->user);
            login_reply(conn, t->msgid, t->token, t->expires);
        }
    }
    sodium_memzero(t, sizeof(*t));
    free(t);
}

/* Makes a token and stores it on the writer; token_stored answers the login. Returns 0 or
 * an error (nothing was answered). */
static int issue_token(struct srv_conn *conn, uint32_t msgid)
{
    struct token_job *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return PROTO_ENOMEM;
    }
    uint8_t tok[SRV_TOKEN_BYTES];
    randombytes_buf(tok, sizeof(tok));
    crypto_generichash(t->hash, sizeof(t->hash), tok, sizeof(tok), NULL, 0);
    proto_b64url_encode(tok, sizeof(tok), t->token, sizeof(t->token));
    sodium_memzero(tok, sizeof(tok));
    t->msgid = msgid;
    t->expires = proto_now_ms() + (int64_t)conn->srv->cfg.token_ttl_ms;
    int rc = srv_store_token_add(conn, conn->user, t->hash, t->expires, token_stored, t);
    if (rc != 0) {
        sodium_memzero(t, sizeof(*t));
        free(t);
    }
    return rc;
}

static void login_done(struct srv_pwjob *job)
{
    struct srv_conn *conn = job->conn;
    struct srv *srv = conn->srv;
    struct srv_req req = {.conn = conn, .msgid = job->msgid};
    if (!job->ok) {
        /* Counted already: the check was charged as a failure when it was queued. */
        srv_log(conn, SRV_LOG_INFO, "login failed (user=%s)", job->user);
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, BAD_CREDENTIALS);
        return;
    }
    /* The account may have changed while the check ran. */
    struct db_account a;
    if (db_account_get(srv->db, job->user, &a) != 0 || a.disabled || a.gen != job->gen) {
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, BAD_CREDENTIALS);
        sodium_memzero(&a, sizeof(a));
        return;
    }
    sodium_memzero(&a, sizeof(a));
    if (job->rehashed &&
        srv_store_pwhash(srv, NULL, job->user, job->newhash, false, job->gen, NULL, NULL) == 0) {
        srv_log(conn, SRV_LOG_INFO, "password hash of %s upgraded", job->user);
    }
    succeeded(conn, job->user);
    if (!srv_conn_user_allowed(srv, conn, job->user)) {
        srv_reply_error_data(&req, PROTO_CODE_RATE_LIMITED, "too many connections for this user",
                             "retry_after_ms", 5000);
        return;
    }
    become_ready(conn, job->user, job->operator, job->gen);
    if (job->remember) {
        if (issue_token(conn, job->msgid) != 0) {
            srv_log(conn, SRV_LOG_ERROR, "cannot store token: the writer is not running");
            srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
            logged_out_again(conn);
        }
        return;
    }
    srv_log(conn, SRV_LOG_INFO, "login ok (user=%s)", job->user);
    login_reply(conn, job->msgid, NULL, 0);
}

/* The msgid of a request whose write runs on the writer. */
struct msgid_job {
    uint32_t msgid;
    int64_t gen; /* passwd: the account's gen the change was checked against */
};

/* The account changed (reset, disabled) while a password change was under way: the reset
 * wins, and this session ends as it would have at the reset. */
static void passwd_refused(struct srv_conn *conn, struct srv_req *req)
{
    srv_log(conn, SRV_LOG_INFO, "password change refused: account changed (user=%s)", conn->user);
    srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED,
                    "your password was reset or your account changed: log in again");
    srv_conn_close(conn, "password changed");
}

static void passwd_stored(struct srv_conn *conn, void *ud, int rc)
{
    struct msgid_job *p = ud;
    struct srv_req req = {.conn = conn, .msgid = p->msgid};
    int64_t gen = p->gen;
    free(p);
    if (conn->closed || conn->state == SRV_CONN_CLOSING) {
        return;
    }
    if (rc == PROTO_ECONFLICT) {
        passwd_refused(conn, &req);
        return;
    }
    if (rc != 0) {
        srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
        return;
    }
    struct srv *srv = conn->srv;
    /* Our own write bumped gen by one; a fresh read could already see a later change. */
    conn->gen = gen + 1;
    conn->has_token = false; /* revoked with all the others */
    srv_log(conn, SRV_LOG_INFO, "password changed (user=%s)", conn->user);
    srv_conn_close_user(srv, conn->user, conn, "password changed");
    srv_reply_empty(&req);
}

static void passwd_done(struct srv_pwjob *job)
{
    struct srv_conn *conn = job->conn;
    struct srv *srv = conn->srv;
    struct srv_req req = {.conn = conn, .msgid = job->msgid};
    if (!job->ok) {
        srv_log(conn, SRV_LOG_INFO, "password change refused: wrong password");
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, "wrong password");
        return;
    }
    if (job->hash_rc != 0) {
        srv_reply_error(&req, PROTO_CODE_INTERNAL, "cannot hash the new password");
        return;
    }
    succeeded(conn, job->user);
    struct msgid_job *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        p->msgid = job->msgid;
        p->gen = job->gen;
    }
    /* The account may change while the check runs: an operator's reset (or disable) in
     * between wins, checked with the write in one transaction (passwd_stored). */
    if (p == NULL || job->gen != conn->gen ||
        srv_store_pwhash(srv, conn, job->user, job->newhash, true, job->gen, passwd_stored, p) !=
            0) {
        bool changed = p != NULL && job->gen != conn->gen;
        free(p);
        if (changed) {
            passwd_refused(conn, &req);
            return;
        }
        srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
    }
}

static void pw_done(uv_work_t *w, int status)
{
    struct srv_pwjob *job = w->data;
    struct srv_conn *conn = job->conn;
    struct srv *srv = conn->srv;
    srv->pw_running--;
    conn->busy = false;
    if (!conn->closed && conn->state != SRV_CONN_CLOSING) {
        if (status != 0) {
            struct srv_req req = {.conn = conn, .msgid = job->msgid};
            srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "server shutting down");
        } else if (job->kind == PWJOB_LOGIN) {
            login_done(job);
        } else {
            passwd_done(job);
        }
    }
    job_free(job);
    pw_next(srv);
    if (!conn->closed) {
        srv_conn_resume(conn);
    }
    srv_conn_done(conn);
}

/* The user of a login as a NUL-terminated name: "" when it is not a valid name (an
 * invalid name is an unknown user: same answer as a wrong password, later). */
static void login_user(const struct srv_req *req, char user[PROTO_NAME_MAX + 1])
{
    const char *u = req->p.user.s;
    size_t ulen = req->p.user.len;
    user[0] = '\0';
    if (ulen <= PROTO_NAME_MAX && proto_name_valid(u, ulen)) {
        memcpy(user, u, ulen);
        user[ulen] = '\0';
    }
}

void srv_auth_login(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    struct srv *srv = conn->srv;
    char user[PROTO_NAME_MAX + 1];
    const char *pw = NULL;
    size_t pwlen = 0;
    bool remember = false;
    if (conn->state == SRV_CONN_READY) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "already logged in: log out first");
        return;
    }
    login_user(req, user);
    pw = req->p.password.s;
    pwlen = req->p.password.len;
    remember = req->p.remember.set && req->p.remember.b;
    if (charge(req, user)) {
        return;
    }
    if (pwlen > SRV_PASSWORD_MAX) {
        srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED, BAD_CREDENTIALS); /* stays charged */
        return;
    }
    struct srv_pwjob *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->password = dup_secret(pw, pwlen)) == NULL) {
        job_free(job);
        refund(conn, user);
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    job->kind = PWJOB_LOGIN;
    job->password_len = pwlen;
    job->remember = remember;
    snprintf(job->user, sizeof(job->user), "%s", user);
    struct db_account a;
    if (user[0] && db_account_get(srv->db, user, &a) == 0 && !a.disabled) {
        job->known = true;
        job->gen = a.gen;
        job->operator= a.operator;
        memcpy(job->hash, a.pwhash, sizeof(job->hash));
    } else {
        /* Unknown users are checked against a dummy hash: same time, same answer. */
        srv_auth_unknown_hash(srv->db, srv->dummy_hash, job->hash);
    }
    sodium_memzero(&a, sizeof(a));
    pw_submit(req, job);
}

void srv_auth_token(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    struct srv *srv = conn->srv;
    if (conn->state == SRV_CONN_READY) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "already logged in: log out first");
        return;
    }
    const char *t = req->p.token.s;
    size_t tlen = req->p.token.len;
    char user[PROTO_NAME_MAX + 1];
    login_user(req, user);
    /* Only failed token logins of this address limit it: failed password logins never
     * refuse a valid token (srv_ratelimit.h). */
    int64_t wait = srv_rl_token_check(&srv->rl_addr, conn->peer_ip, proto_now_ms());
    if (wait > 0) {
        srv_log(conn, SRV_LOG_WARN, "token login refused: rate limited (user=%s)", user);
        srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "too many failed logins: retry later",
                             "retry_after_ms", wait);
        return;
    }
    uint8_t tok[SRV_TOKEN_BYTES + 1];
    uint8_t h[DB_TOKEN_HASH_BYTES];
    struct db_account a;
    bool ok = false;
    if (user[0] && proto_b64url_decode(t, tlen, tok, sizeof(tok)) == SRV_TOKEN_BYTES) {
        crypto_generichash(h, sizeof(h), tok, SRV_TOKEN_BYTES, NULL, 0);
        ok = db_token_check(srv->db, user, h, proto_now_ms()) == 0 &&
             db_account_get(srv->db, user, &a) == 0 && !a.disabled;
    }
    sodium_memzero(tok, sizeof(tok));
    if (!ok) {
        sodium_memzero(h, sizeof(h));
        srv_rl_token_fail(&srv->rl_addr, conn->peer_ip, proto_now_ms());
        srv_log(conn, SRV_LOG_INFO, "token login failed (user=%s)", user);
        srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED, "bad user name or token");
        return;
    }
    if (!srv_conn_user_allowed(srv, conn, user)) {
        sodium_memzero(h, sizeof(h));
        sodium_memzero(&a, sizeof(a));
        srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "too many connections for this user",
                             "retry_after_ms", 5000);
        return;
    }
    become_ready(conn, user, a.operator, a.gen);
    memcpy(conn->token_hash, h, sizeof(h));
    conn->has_token = true;
    sodium_memzero(h, sizeof(h));
    sodium_memzero(&a, sizeof(a));
    srv_log(conn, SRV_LOG_INFO, "token login ok (user=%s)", user);
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, conn->user);
    proto_pack_cstr(&pk, "operator");
    conn->operator? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    srv_reply_finish(req, &b);
}

static void logout_finish(struct srv_req *req);

static void token_deleted(struct srv_conn *conn, void *ud, int rc)
{
    struct msgid_job *p = ud;
    struct srv_req req = {.conn = conn, .msgid = p->msgid};
    free(p);
    if (conn->closed || conn->state == SRV_CONN_CLOSING) {
        return;
    }
    if (rc != 0) {
        srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
        return;
    }
    sodium_memzero(conn->token_hash, sizeof(conn->token_hash));
    conn->has_token = false;
    logout_finish(&req);
}

void srv_auth_logout(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    if (conn->has_token) {
        /* The token is revoked on the writer first; the logout ends when it is. */
        struct msgid_job *p = calloc(1, sizeof(*p));
        if (p != NULL) {
            p->msgid = req->msgid;
        }
        if (p == NULL || srv_store_token_delete(conn, conn->token_hash, token_deleted, p) != 0) {
            free(p);
            srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
        }
        return;
    }
    logout_finish(req);
}

static void logout_finish(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    srv_log(conn, SRV_LOG_INFO, "logout (user=%s)", conn->user);
    srv_hub_drop_conn(conn->srv, conn);
    conn->state = SRV_CONN_AUTH;
    srv_conn_set_user(conn, NULL);
    conn->operator= false;
    /* A logged-out connection must log in again within the deadline or be closed. */
    srv_conn_arm_deadline(conn);
    srv_reply_empty(req);
}

void srv_auth_passwd(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    struct srv *srv = conn->srv;
    const char *old = req->p.old.s, *nw = req->p.new_.s;
    size_t oldlen = req->p.old.len, nwlen = req->p.new_.len;
    char why[96], msg[128];
    if (!srv_password_check(&srv->cfg, nw, nwlen, why, sizeof(why))) {
        snprintf(msg, sizeof(msg), "new: %s", why);
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, msg);
        return;
    }
    if (charge(req, conn->user)) {
        return;
    }
    if (oldlen > SRV_PASSWORD_MAX) {
        srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED, "wrong password"); /* stays charged */
        return;
    }
    struct srv_pwjob *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->password = dup_secret(old, oldlen)) == NULL ||
        (job->newpw = dup_secret(nw, nwlen)) == NULL) {
        job_free(job);
        refund(conn, conn->user);
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    job->kind = PWJOB_PASSWD;
    job->password_len = oldlen;
    job->newpw_len = nwlen;
    snprintf(job->user, sizeof(job->user), "%s", conn->user);
    struct db_account a;
    if (db_account_get(srv->db, conn->user, &a) == 0 && !a.disabled) {
        job->known = true;
        job->gen = a.gen;
        memcpy(job->hash, a.pwhash, sizeof(job->hash));
    } else {
        srv_auth_unknown_hash(srv->db, srv->dummy_hash, job->hash);
    }
    sodium_memzero(&a, sizeof(a));
    pw_submit(req, job);
}

void srv_auth_whoami(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 3);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, conn->user);
    proto_pack_cstr(&pk, "operator");
    conn->operator? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    proto_pack_cstr(&pk, "meetings");
    srv_hub_pack_my_meetings(conn->srv, conn->user, &pk);
    srv_reply_finish(req, &b);
}
