/* srv.h - conferd: the server's shared types.
 *
 * One struct srv is built by main and passed down; every handle reaches it through
 * handle->data. One thread (the loop) owns all of it; the only other threads are libuv's
 * pool (password hashing, long reads) and the database writer (srv_writer.h).
 */
#ifndef CONFER_SRV_H
#define CONFER_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <msgpack.h>

#include "db.h"
#include "proto_channel.h"
#include "proto_err.h"
#include "proto_frame.h"
#include "proto_rpc.h"
#include "proto_util.h"
#include "srv_conn.h"
#include "srv_ratelimit.h"

#define SRV_DEFAULT_HOST   "127.0.0.1"
#define SRV_DB_FILE        "confer.db"
#define SRV_HOSTKEY_FILE   "host.key"
#define SRV_PASSWORD_MAX   1024
#define SRV_TOKEN_BYTES    32
#define SRV_MAX_UNANSWERED 64

/* Argon2id cost presets for crypto_pwhash_str. */
enum srv_pwcost {
    SRV_PWCOST_INTERACTIVE = 0, /* libsodium's INTERACTIVE limits: the default */
    SRV_PWCOST_MODERATE,
    SRV_PWCOST_MIN, /* the minimum limits: for tests only */
};

struct srv_config {
    const char *data_dir;
    char host[256];
    int port;
    const char *port_file;     /* write the bound port here once listening (tests) */
    uint32_t max_frame;        /* plaintext bytes per frame after login */
    size_t output_limit;       /* queued output bytes per connection before it is dropped */
    unsigned max_conns;        /* open connections */
    uint64_t login_timeout_ms; /* handshake + login deadline from accept */
    enum srv_pwcost pwcost;
    size_t min_password;         /* characters */
    size_t max_text;             /* bytes of one text field */
    uint64_t token_ttl_ms;       /* lifetime of remember tokens */
    unsigned pw_parallel;        /* password checks at once */
    unsigned pw_queue;           /* password checks waiting */
    size_t output_budget;        /* queued output bytes of all connections together */
    uint64_t frame_timeout_ms;   /* a started frame must be complete within this */
    unsigned max_conns_per_addr; /* open connections per IPv4 address or IPv6 /64 */
    unsigned max_conns_per_user; /* logged-in connections per user */
};

/* Fills a config with the defaults of PROTOCOL.md and DESIGN.md. */
void srv_config_defaults(struct srv_config *cfg);

/* Reads the Argon2id limits of a cost preset. */
void srv_pwcost_limits(enum srv_pwcost cost, unsigned long long *ops, size_t *mem);

/* Parses "interactive", "moderate" or "min"; returns 0 or PROTO_EINVAL. */
int srv_pwcost_parse(const char *s, enum srv_pwcost *out);

/* ---- logging: one line per event on stderr ---- */

enum srv_log_level { SRV_LOG_DEBUG, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR };

struct srv_conn;

/* Logs one line: time, level, connection id and peer (when conn is not NULL), message.
 * Never pass a password or token. */
void srv_log(const struct srv_conn *conn, enum srv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- requests (the request itself and its helpers: srv_req.h) ---- */

struct srv_reads;
struct srv_req;

/* Handles one decoded message of a connection (dispatch, checks, handler). */
void srv_rpc_handle(struct srv_conn *conn, const msgpack_object *msg);

/* ---- authentication (srv_auth.c) ---- */

void srv_auth_login(struct srv_req *req);
void srv_auth_token(struct srv_req *req);
void srv_auth_logout(struct srv_req *req);
void srv_auth_passwd(struct srv_req *req);
void srv_auth_whoami(struct srv_req *req);

/* Checks that a new password is valid UTF-8 of the configured length. Returns true when it
 * is fine, else false with a message for the user in msg. */
bool srv_password_check(const struct srv_config *cfg, const char *pw, size_t len, char *msg,
                        size_t msgsz);

/* Makes a hash string that no password matches with the same algorithm and Argon2
 * parameters as stored (a crypto_pwhash_str string): checking it costs what checking
 * stored does. Returns 0, or PROTO_EINVAL when stored is not such a string. */
int srv_pwhash_dummy_like(const char *stored, char out[DB_PWHASH_MAX]);

/* The hash an unknown user's password is checked against: a dummy like the stored hash
 * of an account of db (so the check takes as long as for a known user), else fallback. */
void srv_auth_unknown_hash(struct db *db, const char *fallback, char out[DB_PWHASH_MAX]);

/* Hashes a password with crypto_pwhash_str at the given cost (blocking: call it off the
 * loop). Returns 0 or PROTO_ENOMEM. */
int srv_password_hash(enum srv_pwcost cost, const char *pw, size_t len, char out[DB_PWHASH_MAX]);

/* ---- the server ---- */

struct srv_batch;
struct srv_addr_count;

struct srv {
    uv_loop_t *loop;
    struct srv_config cfg;
    struct db *db;
    struct proto_hostkey host;
    char fingerprint[PROTO_FINGERPRINT_LEN];

    uv_tcp_t listener;
    uv_prepare_t flusher;  /* flushes output at the end of each loop turn */
    uv_timer_t poll_timer; /* account changes by the operator tool, token purge */
    uv_signal_t sigint, sigterm;
    bool stopping;

    struct srv_conn *conns;
    struct srv_conn *dirty;
    struct srv_conn *close_asap, *close_asap_tail; /* marked: closed at the end of the turn */
    size_t out_total;                              /* queued output of every connection */
    bool trim;                                     /* give freed memory back at turn end */
    struct srv_addr_count **addr_counts;           /* open connections per address key */
    size_t naddr_buckets;
    unsigned nconns;
    uint64_t next_conn_id;
    int64_t data_version;
    int64_t last_purge_ms;

    /* Password checks on the pool. */
    unsigned pw_running;
    unsigned pw_waiting;
    struct srv_pwjob *pw_head, *pw_tail;
    char dummy_hash[DB_PWHASH_MAX]; /* unknown users, while no account exists */
    unsigned long long pw_ops;
    size_t pw_mem;

    struct srv_ratelimit rl_account;
    struct srv_ratelimit rl_addr;

    /* Meetings and group commit (srv_hub.c). */
    struct srv_meeting *meetings;
    struct db *wdb;                   /* the writer's connection, until the writer owns it */
    struct srv_writer *writer;        /* every write transaction runs there */
    struct srv_batch *open_batch;     /* gathering this turn's changes */
    struct srv_batch *write_batch;    /* being written by the writer */
    uint64_t next_batch;              /* id of the next batch to open */
    uint64_t committed_batch;         /* every batch up to this id is durable */
    int64_t next_obj_id, last_obj_id; /* reserved block of object ids */
    int64_t spare_obj_id;             /* first id of the next reserved block (0: none) */
    bool reserving_ids;               /* the writer is reserving the next block */
    struct srv_held *held;            /* connections' held output (srv_held.c) */
    bool offline;                     /* operator tool: no listener */
    unsigned write_failures;          /* batches the database refused */

    struct srv_reads *reads; /* long reads on the pool (srv_read.c); NULL until the first */
};

/* Opens the data folder (database, host key) and listens. Returns 0 or a PROTO_E* code
 * after logging why. */
int srv_init(struct srv *srv, uv_loop_t *loop, const struct srv_config *cfg);

/* Runs the loop until SIGINT/SIGTERM, then closes every connection gracefully and frees
 * everything. Returns 0 or a PROTO_E* code. */
int srv_run(struct srv *srv);

/* Opens a data folder for the operator tool: database, writer and meetings, no listener.
 * Changes made through the hub are written by srv_sync_offline. */
int srv_init_offline(struct srv *srv, uv_loop_t *loop, const char *data_dir);

/* Writes every change made so far and waits until it is durable. Returns 0 or PROTO_EDB. */
int srv_sync_offline(struct srv *srv);

/* Closes what srv_init_offline opened (the caller closes the loop). */
void srv_close_offline(struct srv *srv);

/* Begins a graceful shutdown: stop listening, send closing to everyone, close. */
void srv_stop(struct srv *srv);

/* Applies account changes made by another process (disable, password) to live
 * connections. */
void srv_check_accounts(struct srv *srv);

/* Tells whether conn may log in as user without passing max_conns_per_user (counting
 * the user's logged-in connections but conn). Called by the login paths before they
 * accept; when it says no they answer rate_limited and the connection stays logged out. */
bool srv_user_conn_allowed(struct srv *srv, const struct srv_conn *conn, const char *user);

/* Closes every live connection of user except keep (may be NULL), with reason. */
void srv_close_user(struct srv *srv, const char *user, struct srv_conn *keep, const char *reason);

/* ---- data folder and operator commands (srv_data.c, srv_ops.c) ---- */

/* Makes a data folder: directory 0700, host key and database 0600. Returns 0,
 * PROTO_ECONFLICT when it already holds a database, or PROTO_EIO. */
int srv_data_init(const char *dir, char fingerprint[PROTO_FINGERPRINT_LEN]);

/* Loads the host key of a data folder. Returns 0, PROTO_ENOTFOUND, PROTO_EIO or
 * PROTO_EPERM (the key file is readable by others). */
int srv_data_load_key(const char *dir, struct proto_hostkey *key);

/* Opens the database of a data folder. */
int srv_data_open_db(const char *dir, struct db **out);

/* Entry point of the operator commands: argv[0] is the command (init, serve, ...).
 * Returns the process exit code. */
int srv_main(int argc, char **argv);

#endif
