/* srv_auth.c - auth.login, auth.token, auth.logout, auth.passwd, whoami.
 *
 * Argon2id checks run on libuv's pool, at most cfg.pw_parallel at once with at most
 * cfg.pw_queue waiting; the connection handles nothing else until its check is answered,
 * so responses keep the order of requests.
 */
#include "srv.h"
#include "srv_meeting.h"

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

static void pw_start(struct srv *srv, struct srv_pwjob *job)
{
    srv->pw_running++;
    job->work.data = job;
    if (uv_queue_work(srv->loop, &job->work, pw_work, pw_done) != 0) {
        /* Cannot happen with a valid loop and callbacks; answer rather than hang. */
        srv->pw_running--;
        struct srv_req req = {.conn = job->conn, .msgid = job->msgid};
        srv_reply_error(&req, PROTO_CODE_INTERNAL, "cannot queue the password check");
        job->conn->busy = false;
        srv_conn_done(job->conn);
        job_free(job);
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
        pw_start(srv, job);
    }
}

/* Queues a password job, or answers rate_limited when the queue is full. The connection
 * holds its other requests until the job is answered. */
static void pw_submit(struct srv_req *req, struct srv_pwjob *job)
{
    struct srv *srv = req->conn->srv;
    if (srv->pw_running >= srv->cfg.pw_parallel && srv->pw_waiting >= srv->cfg.pw_queue) {
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
        pw_start(srv, job);
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

static void count_failure(struct srv_conn *conn, const char *user)
{
    int64_t now = proto_now_ms();
    srv_rl_addr_fail(&conn->srv->rl_addr, conn->peer_ip, now);
    if (user && *user) {
        srv_rl_account_fail(&conn->srv->rl_account, user, now);
    }
}

/* Answers rate_limited when the address or the account may not try now. */
static bool rate_limited(struct srv_req *req, const char *user)
{
    struct srv *srv = req->conn->srv;
    int64_t now = proto_now_ms();
    int64_t wait = srv_rl_addr_check(&srv->rl_addr, req->conn->peer_ip, now);
    int64_t w2 = user ? srv_rl_account_check(&srv->rl_account, user, now) : 0;
    if (w2 > wait) {
        wait = w2;
    }
    if (wait <= 0) {
        return false;
    }
    srv_log(req->conn, SRV_LOG_WARN, "login refused: rate limited (user=%s)", user ? user : "");
    srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "too many failed logins: retry later",
                         "retry_after_ms", wait);
    return true;
}

static void become_ready(struct srv_conn *conn, const char *user, bool operator, int64_t gen)
{
    snprintf(conn->user, sizeof(conn->user), "%s", user);
    conn->operator= operator;
    conn->gen = gen;
    conn->state = SRV_CONN_READY;
    conn->logged_in_once = true;
    uv_timer_stop(&conn->deadline);
    proto_reader_set_max(&conn->rd, conn->srv->cfg.max_frame + PROTO_ABYTES);
}

/* Makes and stores a token; writes its base64url form into out (44 bytes). */
static int issue_token(struct srv_conn *conn, char out[64], int64_t *expires)
{
    uint8_t tok[SRV_TOKEN_BYTES];
    uint8_t h[DB_TOKEN_HASH_BYTES];
    randombytes_buf(tok, sizeof(tok));
    crypto_generichash(h, sizeof(h), tok, sizeof(tok), NULL, 0);
    *expires = proto_now_ms() + (int64_t)conn->srv->cfg.token_ttl_ms;
    int rc = db_token_add(conn->srv->db, conn->user, h, *expires);
    if (rc == 0) {
        proto_b64url_encode(tok, sizeof(tok), out, 64);
        memcpy(conn->token_hash, h, sizeof(h));
        conn->has_token = true;
    }
    sodium_memzero(tok, sizeof(tok));
    sodium_memzero(h, sizeof(h));
    return rc;
}

static void login_done(struct srv_pwjob *job)
{
    struct srv_conn *conn = job->conn;
    struct srv *srv = conn->srv;
    struct srv_req req = {.conn = conn, .msgid = job->msgid};
    if (!job->ok) {
        count_failure(conn, job->user);
        srv_log(conn, SRV_LOG_INFO, "login failed (user=%s)", job->user);
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, BAD_CREDENTIALS);
        return;
    }
    /* The account may have changed while the check ran. */
    struct db_account a;
    if (db_account_get(srv->db, job->user, &a) != 0 || a.disabled || a.gen != job->gen) {
        count_failure(conn, job->user);
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, BAD_CREDENTIALS);
        sodium_memzero(&a, sizeof(a));
        return;
    }
    sodium_memzero(&a, sizeof(a));
    if (job->rehashed) {
        if (db_account_set_pwhash(srv->db, job->user, job->newhash, false) == 0) {
            srv_log(conn, SRV_LOG_INFO, "password hash of %s upgraded", job->user);
        }
    }
    if (!srv_user_conn_allowed(srv, conn, job->user)) {
        srv_reply_error_data(&req, PROTO_CODE_RATE_LIMITED, "too many connections for this user",
                             "retry_after_ms", 5000);
        return;
    }
    srv_rl_account_reset(&srv->rl_account, job->user);
    become_ready(conn, job->user, job->operator, job->gen);
    char token[64] = "";
    int64_t expires = 0;
    if (job->remember && issue_token(conn, token, &expires) != 0) {
        srv_log(conn, SRV_LOG_ERROR, "cannot store token: %s", db_errmsg(srv->db));
        srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
        conn->state = SRV_CONN_AUTH;
        return;
    }
    srv_log(conn, SRV_LOG_INFO, "login ok (user=%s%s)", job->user,
            job->remember ? ", token issued" : "");
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(&req, &pk, &b);
    msgpack_pack_map(&pk, job->remember ? 4 : 2);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, conn->user);
    proto_pack_cstr(&pk, "operator");
    conn->operator? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (job->remember) {
        proto_pack_cstr(&pk, "token");
        proto_pack_cstr(&pk, token);
        proto_pack_cstr(&pk, "expires");
        msgpack_pack_int64(&pk, expires);
    }
    sodium_memzero(token, sizeof(token));
    srv_reply_finish(&req, &b);
    proto_buf_free(&b, 1);
}

static void passwd_done(struct srv_pwjob *job)
{
    struct srv_conn *conn = job->conn;
    struct srv *srv = conn->srv;
    struct srv_req req = {.conn = conn, .msgid = job->msgid};
    if (!job->ok) {
        count_failure(conn, job->user);
        srv_log(conn, SRV_LOG_INFO, "password change refused: wrong password");
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, "wrong password");
        return;
    }
    if (job->hash_rc != 0) {
        srv_reply_error(&req, PROTO_CODE_INTERNAL, "cannot hash the new password");
        return;
    }
    if (db_account_set_pwhash(srv->db, job->user, job->newhash, true) != 0) {
        srv_log(conn, SRV_LOG_ERROR, "cannot store password: %s", db_errmsg(srv->db));
        srv_reply_error(&req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
        return;
    }
    struct db_account a;
    if (db_account_get(srv->db, job->user, &a) == 0) {
        conn->gen = a.gen;
    }
    sodium_memzero(&a, sizeof(a));
    conn->has_token = false; /* revoked with all the others */
    srv_log(conn, SRV_LOG_INFO, "password changed (user=%s)", job->user);
    srv_close_user(srv, job->user, conn, "password changed");
    srv_reply_empty(&req);
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

/* Reads user (a valid name) and a password parameter. Answers and returns false on
 * failure. */
static bool read_credentials(struct srv_req *req, const char *pwkey, char user[PROTO_NAME_MAX + 1],
                             const char **pw, size_t *pwlen)
{
    const char *u = NULL;
    size_t ulen = 0;
    if (proto_param_str(req->params, "user", &u, &ulen) != 0) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "user: a string is required");
        return false;
    }
    if (proto_param_str(req->params, pwkey, pw, pwlen) != 0) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "password: a string is required");
        return false;
    }
    /* An invalid name is an unknown user: same answer as a wrong password, later. */
    if (ulen <= PROTO_NAME_MAX) {
        memcpy(user, u, ulen);
        user[ulen] = '\0';
    } else {
        user[0] = '\0';
    }
    if (!proto_name_valid(u, ulen)) {
        user[0] = '\0';
    }
    return true;
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
    if (!read_credentials(req, "password", user, &pw, &pwlen)) {
        return;
    }
    if (proto_param_bool(req->params, "remember", &remember) == PROTO_EINVAL) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "remember: must be a boolean");
        return;
    }
    if (rate_limited(req, user[0] ? user : NULL)) {
        return;
    }
    if (pwlen > SRV_PASSWORD_MAX) {
        count_failure(conn, user);
        srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED, BAD_CREDENTIALS);
        return;
    }
    struct srv_pwjob *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->password = dup_secret(pw, pwlen)) == NULL) {
        job_free(job);
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
        memcpy(job->hash, srv->dummy_hash, sizeof(job->hash));
    }
    sodium_memzero(&a, sizeof(a));
    pw_submit(req, job);
}

void srv_auth_token(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    struct srv *srv = conn->srv;
    const char *u = NULL, *t = NULL;
    size_t ulen = 0, tlen = 0;
    if (conn->state == SRV_CONN_READY) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "already logged in: log out first");
        return;
    }
    if (proto_param_str(req->params, "user", &u, &ulen) != 0) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "user: a string is required");
        return;
    }
    if (proto_param_str(req->params, "token", &t, &tlen) != 0) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "token: a string is required");
        return;
    }
    char user[PROTO_NAME_MAX + 1] = "";
    if (proto_name_valid(u, ulen)) {
        memcpy(user, u, ulen);
        user[ulen] = '\0';
    }
    if (rate_limited(req, user[0] ? user : NULL)) {
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
        count_failure(conn, user);
        srv_log(conn, SRV_LOG_INFO, "token login failed (user=%s)", user);
        srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED, "bad user name or token");
        return;
    }
    if (!srv_user_conn_allowed(srv, conn, user)) {
        sodium_memzero(h, sizeof(h));
        sodium_memzero(&a, sizeof(a));
        srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "too many connections for this user",
                             "retry_after_ms", 5000);
        return;
    }
    srv_rl_account_reset(&srv->rl_account, user);
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

void srv_auth_logout(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    if (conn->has_token) {
        if (db_token_delete(conn->srv->db, conn->token_hash) != 0) {
            srv_log(conn, SRV_LOG_ERROR, "cannot revoke token: %s", db_errmsg(conn->srv->db));
            srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
            return;
        }
        sodium_memzero(conn->token_hash, sizeof(conn->token_hash));
        conn->has_token = false;
    }
    srv_log(conn, SRV_LOG_INFO, "logout (user=%s)", conn->user);
    srv_hub_drop_conn(conn->srv, conn);
    conn->state = SRV_CONN_AUTH;
    conn->user[0] = '\0';
    conn->operator= false;
    /* A logged-out connection must log in again within the deadline or be closed. */
    srv_conn_arm_deadline(conn);
    srv_reply_empty(req);
}

void srv_auth_passwd(struct srv_req *req)
{
    struct srv_conn *conn = req->conn;
    struct srv *srv = conn->srv;
    const char *old = NULL, *nw = NULL;
    size_t oldlen = 0, nwlen = 0;
    if (proto_param_str(req->params, "old", &old, &oldlen) != 0) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "old: a string is required");
        return;
    }
    if (proto_param_str(req->params, "new", &nw, &nwlen) != 0) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, "new: a string is required");
        return;
    }
    char why[96], msg[128];
    if (!srv_password_check(&srv->cfg, nw, nwlen, why, sizeof(why))) {
        snprintf(msg, sizeof(msg), "new: %s", why);
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, msg);
        return;
    }
    if (rate_limited(req, conn->user)) {
        return;
    }
    if (oldlen > SRV_PASSWORD_MAX) {
        count_failure(conn, conn->user);
        srv_reply_error(req, PROTO_CODE_UNAUTHENTICATED, "wrong password");
        return;
    }
    struct srv_pwjob *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->password = dup_secret(old, oldlen)) == NULL ||
        (job->newpw = dup_secret(nw, nwlen)) == NULL) {
        job_free(job);
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
        memcpy(job->hash, srv->dummy_hash, sizeof(job->hash));
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
    srv_pack_my_meetings(conn->srv, conn->user, &pk);
    srv_reply_finish(req, &b);
}
