/* srv.c - the server: listener, loop phases, signals, account polling, shutdown. */
#include "srv.h"

#include "srv_auth.h"
#include "srv_conn.h"
#include "srv_data.h"
#include "srv_hub.h"
#include "srv_live.h"
#include "srv_read.h"
#include "srv_req.h"
#include "srv_rpc.h"
#include "srv_writer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS        500
#define PURGE_EVERY_MS (10 * 60 * 1000)
#define ADDR_BUCKETS   1024

/* Open connections of one address key (srv_conn_addr_key). */
struct srv_addr_count {
    struct srv_addr_count *next;
    unsigned n;
    char key[48];
};

static void on_flush(uv_prepare_t *p)
{
    struct srv *srv = p->data;
    srv_hub_flush(srv);
    /* Output goes out first, then connections marked during the turn are closed. */
    srv_conn_end_turn(srv);
}

static size_t addr_bucket(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h % ADDR_BUCKETS;
}

/* The count of key, created at 0 when create is set; NULL when absent or out of memory. */
static struct srv_addr_count *addr_find(struct srv *srv, const char *key, bool create)
{
    if (srv->addr_counts == NULL) {
        if (!create) {
            return NULL;
        }
        srv->addr_counts = calloc(ADDR_BUCKETS, sizeof(*srv->addr_counts));
        if (srv->addr_counts == NULL) {
            return NULL;
        }
        srv->naddr_buckets = ADDR_BUCKETS;
    }
    struct srv_addr_count **pp = &srv->addr_counts[addr_bucket(key)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            return *pp;
        }
    }
    if (!create) {
        return NULL;
    }
    struct srv_addr_count *a = calloc(1, sizeof(*a));
    if (a != NULL) {
        snprintf(a->key, sizeof(a->key), "%s", key);
        *pp = a;
    }
    return a;
}

static void addr_release(struct srv *srv, const char *key)
{
    if (srv->addr_counts == NULL) {
        return;
    }
    for (struct srv_addr_count **pp = &srv->addr_counts[addr_bucket(key)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct srv_addr_count *a = *pp;
            if (--a->n == 0) {
                *pp = a->next;
                free(a);
            }
            return;
        }
    }
}

static void addr_counts_free(struct srv *srv)
{
    for (size_t i = 0; srv->addr_counts && i < srv->naddr_buckets; i++) {
        while (srv->addr_counts[i]) {
            struct srv_addr_count *a = srv->addr_counts[i];
            srv->addr_counts[i] = a->next;
            free(a);
        }
    }
    free(srv->addr_counts);
    srv->addr_counts = NULL;
    srv->naddr_buckets = 0;
}

/* The transport's callbacks: messages go to the dispatcher; a closed connection leaves its
 * meetings and its address's count. */
static void conn_message(struct srv_conn *conn, const msgpack_object *msg, void *data)
{
    (void)data;
    if (msg == NULL) {
        /* The unreadable rest of a plaintext: one bad_request with msgid 0. */
        struct srv_req req = {.conn = conn, .msgid = 0, .params = NULL};
        conn->unanswered++;
        srv_reply_error(&req, PROTO_CODE_BAD_REQUEST, "malformed message: not msgpack-RPC");
        return;
    }
    srv_rpc_handle(conn, msg);
}

static void conn_closed(struct srv_conn *conn, void *data)
{
    struct srv *srv = data;
    srv_hub_drop_conn(srv, conn);
    addr_release(srv, conn->peer_key);
}

static const struct srv_conn_cb conn_cb = {conn_message, conn_closed};

/* The per-address key of an accepted socket (see srv_conn_addr_key). */
static void peer_key(uv_tcp_t *tcp, char *key, size_t keysz)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[48] = "?";
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
        }
    }
    srv_conn_addr_key(ip, key, keysz);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct srv *srv = server->data;
    if (status < 0) {
        srv_log(NULL, SRV_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    struct srv_conn *conn = NULL;
    if (srv_conn_new(srv, &conn) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "out of memory accepting a connection");
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
        srv_conn_close(conn, NULL);
        return;
    }
    if (srv->stopping || srv->nconns > srv->cfg.max_conns) {
        srv_log(NULL, SRV_LOG_WARN, "connection refused: %s",
                srv->stopping ? "shutting down" : "too many connections");
        srv_conn_close(conn, NULL);
        return;
    }
    char key[48];
    peer_key(&conn->tcp, key, sizeof(key));
    struct srv_addr_count *a = addr_find(srv, key, true);
    if (a == NULL || a->n >= srv->cfg.max_conns_per_addr) {
        srv_log(NULL, SRV_LOG_WARN, "connection refused: %s (%s)",
                a ? "too many connections from this address" : "out of memory", key);
        srv_conn_close(conn, NULL);
        return;
    }
    a->n++; /* released by conn_closed: only started connections count */
    srv_conn_start(conn, &conn_cb, srv);
}

/* The state of every account, sorted by name, read in one pass. */
struct acct_state {
    char name[PROTO_NAME_MAX + 1];
    bool disabled;
    int64_t gen;
};

struct acct_list {
    struct acct_state *v;
    size_t n, cap;
};

static int collect_account(void *ud, const struct db_account *a)
{
    struct acct_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct acct_state *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", a->name);
    l->v[l->n].disabled = a->disabled;
    l->v[l->n].gen = a->gen;
    l->n++;
    return 0;
}

static int cmp_acct(const void *k, const void *e)
{
    return strcmp(k, ((const struct acct_state *)e)->name);
}

void srv_check_accounts(struct srv *srv)
{
    /* The database changes with every batch the writer commits: read the accounts once
     * (db_account_list is in name order) rather than once per connection. */
    struct acct_list l = {0};
    if (db_account_list(srv->db, collect_account, &l) != 0) {
        free(l.v);
        return;
    }
    for (struct srv_conn *c = srv->conns; c; c = c->next) {
        if (c->state != SRV_CONN_READY) {
            continue;
        }
        const struct acct_state *a = bsearch(c->user, l.v, l.n, sizeof(*l.v), cmp_acct);
        if (a == NULL || a->disabled) {
            srv_conn_close(c, "account disabled");
        } else if (a->gen != c->gen) {
            srv_conn_close(c, "password changed");
        }
    }
    free(l.v);
}

struct purge_job {
    int64_t now;
    int count;
};

static int purge_work(struct db *db, void *ud, char *err, size_t errlen)
{
    struct purge_job *j = ud;
    int rc = db_token_purge(db, j->now, &j->count);
    if (rc != 0) {
        snprintf(err, errlen, "%s", db_errmsg(db));
    }
    return rc;
}

static void purge_done(void *ud, int rc, const char *err)
{
    if (rc != 0) {
        srv_log(NULL, SRV_LOG_WARN, "cannot purge expired tokens: %s", err);
    }
    free(ud);
}

/* Deletes expired tokens on the writer (the loop never writes). */
static void purge_tokens(struct srv *srv, int64_t now)
{
    struct purge_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return;
    }
    j->now = now;
    if (srv_writer_submit(srv->writer, purge_work, purge_done, j) != 0) {
        free(j);
    }
}

static void on_poll(uv_timer_t *t)
{
    struct srv *srv = t->data;
    int64_t v = 0;
    if (db_data_version(srv->db, &v) == 0 && v != srv->data_version) {
        srv->data_version = v;
        srv_check_accounts(srv);
        /* Meetings another process (conferd meeting ...) made. */
        if (srv_hub_load(srv) != 0) {
            srv_log(NULL, SRV_LOG_ERROR, "cannot load new meetings: %s", db_errmsg(srv->db));
        }
    }
    srv_hub_flush(srv); /* checkpoints that have come due */
    int64_t now = proto_now_ms();
    if (now - srv->last_purge_ms > PURGE_EVERY_MS) {
        srv->last_purge_ms = now;
        purge_tokens(srv, now);
        srv_ratelimit_sweep(&srv->rl_account, now);
        srv_ratelimit_sweep(&srv->rl_addr, now);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct srv *srv = s->data;
    if (srv->stopping) {
        srv_log(NULL, SRV_LOG_WARN, "second signal: exiting now");
        exit(1);
    }
    srv_log(NULL, SRV_LOG_INFO, "signal %d: shutting down", signum);
    srv_stop(srv);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return PROTO_EIO;
    }
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        return PROTO_EIO;
    }
    return 0;
}

static int listen_on(struct srv *srv)
{
    struct sockaddr_storage ss;
    const char *host = srv->cfg.host;
    int r = uv_ip4_addr(host, srv->cfg.port, (struct sockaddr_in *)&ss);
    if (r != 0) {
        r = uv_ip6_addr(host, srv->cfg.port, (struct sockaddr_in6 *)&ss);
    }
    if (r != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "bad listen address %s: use an IP address", host);
        return PROTO_EINVAL;
    }
    r = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (r == 0) {
        r = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
    }
    if (r != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot listen on %s:%d: %s", host, srv->cfg.port,
                uv_strerror(r));
        return PROTO_EIO;
    }
    int len = sizeof(ss);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    srv->cfg.port = port;
    srv_log(NULL, SRV_LOG_INFO, "listening on %s%s%s:%d, host key %s", strchr(host, ':') ? "[" : "",
            host, strchr(host, ':') ? "]" : "", port, srv->fingerprint);
    if (srv->cfg.port_file && write_port_file(srv->cfg.port_file, port) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot write %s", srv->cfg.port_file);
        return PROTO_EIO;
    }
    return 0;
}

int srv_init(struct srv *srv, uv_loop_t *loop, const struct srv_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = *cfg;
    int rc = srv_data_load_key(cfg->data_dir, &srv->host);
    if (rc != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot load the host key of %s: %s (run conferd init)",
                cfg->data_dir, proto_strerror(rc));
        return rc;
    }
    proto_fingerprint(srv->host.pk, srv->fingerprint);
    rc = srv_data_open_db(cfg->data_dir, &srv->db);
    if (rc != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot open the database in %s: %s", cfg->data_dir,
                proto_strerror(rc));
        sodium_memzero(&srv->host, sizeof(srv->host));
        return rc;
    }
    db_data_version(srv->db, &srv->data_version);
    if ((rc = srv_data_open_db(cfg->data_dir, &srv->wdb)) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot open the writer's database in %s: %s", cfg->data_dir,
                proto_strerror(rc));
        goto fail;
    }
    rc = srv_writer_start(&srv->writer, loop, srv->wdb);
    srv->wdb = NULL; /* the writer owns it now (and closed it on failure) */
    if (rc != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot start the database writer: %s", proto_strerror(rc));
        goto fail;
    }
    if ((rc = srv_live_init(srv)) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot load the share links: %s", db_errmsg(srv->db));
        goto fail;
    }
    if ((rc = srv_hub_load(srv)) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot load meetings: %s", db_errmsg(srv->db));
        goto fail;
    }
    srv_pwcost_limits(cfg->pwcost, &srv->pw_ops, &srv->pw_mem);
    {
        /* The dummy hash of unknown users: a random password at the current cost. */
        uint8_t rnd[24];
        randombytes_buf(rnd, sizeof(rnd));
        rc = crypto_pwhash_str(srv->dummy_hash, (const char *)rnd, sizeof(rnd), srv->pw_ops,
                               srv->pw_mem);
        sodium_memzero(rnd, sizeof(rnd));
        if (rc != 0) {
            rc = PROTO_ENOMEM;
            goto fail;
        }
    }
    if ((rc = srv_ratelimit_init(&srv->rl_account, 1024, 100000)) != 0 ||
        (rc = srv_ratelimit_init(&srv->rl_addr, 1024, 100000)) != 0) {
        goto fail;
    }
    uv_prepare_init(loop, &srv->flusher);
    srv->flusher.data = srv;
    uv_prepare_start(&srv->flusher, on_flush);
    uv_timer_init(loop, &srv->poll_timer);
    srv->poll_timer.data = srv;
    uv_timer_start(&srv->poll_timer, on_poll, POLL_MS, POLL_MS);
    uv_signal_init(loop, &srv->sigint);
    uv_signal_init(loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    srv->last_purge_ms = proto_now_ms();
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    rc = listen_on(srv);
    if (rc == 0) {
        rc = srv_live_start(srv);
    }
    if (rc == 0 && srv->cfg.http_port_file &&
        write_port_file(srv->cfg.http_port_file, srv_live_port(srv)) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "cannot write %s", srv->cfg.http_port_file);
        rc = PROTO_EIO;
    }
    if (rc != 0) {
        srv_stop(srv);
        uv_run(loop, UV_RUN_DEFAULT);
        goto fail;
    }
    return 0;
fail:
    srv_live_free(srv);
    srv_read_free(srv);
    srv_hub_free(srv);
    srv_writer_close(srv->writer);
    srv->writer = NULL;
    srv_ratelimit_free(&srv->rl_account);
    srv_ratelimit_free(&srv->rl_addr);
    db_close(srv->db);
    srv->db = NULL;
    sodium_memzero(&srv->host, sizeof(srv->host));
    return rc;
}

void srv_stop(struct srv *srv)
{
    if (srv->stopping) {
        return;
    }
    srv->stopping = true;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_close((uv_handle_t *)&srv->poll_timer, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    srv_live_stop(srv);
    for (struct srv_conn *c = srv->conns; c; c = c->next) {
        srv_conn_close(c, "server shutting down");
    }
    srv_hub_checkpoint_all(srv); /* the last head is signed, written after its changes */
    srv_hub_flush(srv);          /* what was accepted is still written */
    srv_conn_end_turn(srv);
    /* The flusher stays until the loop ends: closing notifications still go out. */
    uv_unref((uv_handle_t *)&srv->flusher);
}

int srv_run(struct srv *srv)
{
    uv_run(srv->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&srv->flusher, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    srv_read_free(srv);
    srv_writer_close(srv->writer); /* every queued write has run by now */
    srv->writer = NULL;
    srv_hub_free(srv);
    srv_live_free(srv);
    addr_counts_free(srv);
    srv_conn_counts_free(srv);
    srv_ratelimit_free(&srv->rl_account);
    srv_ratelimit_free(&srv->rl_addr);
    db_close(srv->db);
    srv->db = NULL;
    sodium_memzero(&srv->host, sizeof(srv->host));
    sodium_memzero(srv->dummy_hash, sizeof(srv->dummy_hash));
    srv_log(NULL, SRV_LOG_INFO, "stopped");
    return uv_loop_close(srv->loop) == 0 ? 0 : PROTO_EBUSY;
}

int srv_init_offline(struct srv *srv, uv_loop_t *loop, const char *data_dir)
{
    memset(srv, 0, sizeof(*srv));
    srv_config_defaults(&srv->cfg);
    srv->cfg.data_dir = data_dir;
    srv->loop = loop;
    srv->offline = true;
    int rc = srv_data_load_key(data_dir, &srv->host);
    if (rc == 0) {
        rc = srv_data_open_db(data_dir, &srv->db);
    }
    if (rc == 0) {
        rc = srv_data_open_db(data_dir, &srv->wdb);
    }
    if (rc == 0) {
        rc = srv_writer_start(&srv->writer, loop, srv->wdb);
        srv->wdb = NULL; /* the writer owns it now */
    }
    if (rc == 0) {
        rc = srv_hub_load(srv);
    }
    if (rc != 0) {
        srv_close_offline(srv);
    }
    return rc;
}

int srv_sync_offline(struct srv *srv)
{
    unsigned failures = srv->write_failures;
    srv_hub_flush(srv);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    return srv->write_failures == failures && srv->open_batch == NULL ? 0 : PROTO_EDB;
}

void srv_close_offline(struct srv *srv)
{
    /* As a server that stops: rows refreshed, a snapshot stored, the heads signed. */
    srv_hub_checkpoint_all(srv);
    srv_hub_flush(srv);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    srv_read_free(srv);
    srv_writer_close(srv->writer);
    srv->writer = NULL;
    srv_hub_free(srv);
    db_close(srv->wdb);
    db_close(srv->db);
    srv->wdb = srv->db = NULL;
    sodium_memzero(&srv->host, sizeof(srv->host));
}
