/* srv.h - conferd: the server's shared types.
 *
 * One struct srv is built by main and passed down; every handle reaches it through
 * handle->data. One thread (the loop) owns all of it; the only other threads are libuv's
 * pool (password hashing) and, later, the database writer.
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
    size_t min_password;   /* characters */
    size_t max_text;       /* bytes of one text field */
    uint64_t token_ttl_ms; /* lifetime of remember tokens */
    unsigned pw_parallel;  /* password checks at once */
    unsigned pw_queue;     /* password checks waiting */
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

/* ---- rate limits for failed logins ---- */

struct srv_rl_entry;

struct srv_ratelimit {
    struct srv_rl_entry **buckets;
    size_t nbuckets;
    size_t count;
    size_t max_entries;
};

int srv_ratelimit_init(struct srv_ratelimit *rl, size_t nbuckets, size_t max_entries);
void srv_ratelimit_free(struct srv_ratelimit *rl);

/* Per account: 5 failures free, then a delay doubling from 1 s up to 15 minutes.
 * Returns 0 when a login may be tried, else the ms until it may. */
int64_t srv_rl_account_check(struct srv_ratelimit *rl, const char *name, int64_t now_ms);
void srv_rl_account_fail(struct srv_ratelimit *rl, const char *name, int64_t now_ms);
void srv_rl_account_reset(struct srv_ratelimit *rl, const char *name);

/* Per client address: at most 10 failures in any minute. */
int64_t srv_rl_addr_check(struct srv_ratelimit *rl, const char *addr, int64_t now_ms);
void srv_rl_addr_fail(struct srv_ratelimit *rl, const char *addr, int64_t now_ms);

/* Drops entries that no longer limit anything. */
void srv_ratelimit_sweep(struct srv_ratelimit *rl, int64_t now_ms);

/* ---- connections ---- */

enum srv_conn_state {
    SRV_CONN_HELLO,     /* waiting for ClientHello */
    SRV_CONN_STREAMHDR, /* waiting for the client's secretstream header */
    SRV_CONN_AUTH,      /* secure channel up, not logged in */
    SRV_CONN_READY,     /* logged in */
    SRV_CONN_CLOSING,   /* flushing, then closed */
};

struct srv;
struct srv_meeting;
struct srv_batch;
struct srv_reads;

struct srv_conn {
    struct srv *srv;
    uv_tcp_t tcp;
    uv_timer_t deadline; /* handshake + login deadline, and the closing grace period */
    uint64_t id;
    char peer[64];    /* "addr:port" */
    char peer_ip[48]; /* address only: the rate-limit key */
    enum srv_conn_state state;
    struct srv_conn *prev, *next; /* srv->conns */
    struct srv_conn *dirty_next;  /* srv->dirty: has output to flush */
    bool dirty;
    bool reading;
    bool busy;           /* a request is being answered off the loop: hold the rest */
    bool logged_in_once; /* the frame limit stays raised after logout */
    bool closed;         /* uv_close called */
    int handles_open;    /* tcp and timer not yet closed */
    int refs;            /* pool jobs still pointing here */
    unsigned unanswered;

    struct proto_reader rd;
    struct proto_channel ch;

    /* Decrypted plaintext being handled, message by message. */
    struct proto_buf in;
    size_t in_off;
    size_t in_good; /* validated prefix of in */
    bool in_fault;  /* bytes after in_good were not msgpack: answer once */

    struct proto_buf out; /* plaintext messages queued this turn */
    size_t write_pending; /* bytes handed to libuv and not yet written */

    /* Output that waits for a batch to be durable (srv_conn_send_after). */
    struct proto_buf held;
    uint64_t held_batch;
    unsigned held_msgs;
    bool in_held_list;
    struct srv_conn *held_next;

    /* Meetings this connection is subscribed to. */
    struct srv_meeting **subs;
    size_t nsubs;

    /* Identity once logged in. */
    char user[PROTO_NAME_MAX + 1];
    bool operator;
    int64_t gen;
    bool has_token;
    uint8_t token_hash[DB_TOKEN_HASH_BYTES];
};

/* Starts handling an accepted connection (its tcp handle must be initialised and
 * accepted by the caller). */
void srv_conn_start(struct srv_conn *conn);

/* Appends one whole encoded message to the connection's output; it is encrypted and
 * written at the end of the loop turn, batched with the others in one frame. A connection
 * whose queued output passes the limit is dropped as a slow consumer. */
void srv_conn_send(struct srv_conn *conn, const void *msg, size_t len);

/* Like srv_conn_send, for a message that must wait until batch is durable: it is held
 * (with everything the connection is sent after it) until then. batch 0: no wait. */
void srv_conn_send_after(struct srv_conn *conn, const void *msg, size_t len, uint64_t batch);

/* Releases the held output of every connection whose batch is now durable. */
void srv_conn_release(struct srv *srv);

/* Closes a connection: when reason is not NULL and the channel is up, a closing
 * notification is sent (and flushed, for at most a short grace period) first. */
void srv_conn_close(struct srv_conn *conn, const char *reason);

/* Encrypts and writes the queued output of every connection that has some. */
void srv_conn_flush_all(struct srv *srv);

/* (Re)starts the login deadline: the connection is closed unless it logs in in time. */
void srv_conn_arm_deadline(struct srv_conn *conn);

/* Goes on handling queued requests after an asynchronous one finished. */
void srv_conn_resume(struct srv_conn *conn);

/* Drops a reference taken by a pool job; frees the connection when it was the last and
 * the handles are closed. */
void srv_conn_unref(struct srv_conn *conn);

/* ---- requests ---- */

/* Context of one request being answered. */
struct srv_req {
    struct srv_conn *conn;
    uint32_t msgid;
    const msgpack_object *params;
    uint64_t hold; /* the response waits until this batch is durable (0: no wait) */
};

/* Handles one decoded message of a connection (dispatch, checks, handler). */
void srv_rpc_handle(struct srv_conn *conn, const msgpack_object *msg);

/* Response helpers: each queues one whole response to the request's connection and
 * counts the request as answered. */
void srv_reply_error(struct srv_req *req, enum proto_code code, const char *message);
void srv_reply_error_data(struct srv_req *req, enum proto_code code, const char *message,
                          const char *data_key, int64_t data_value);
/* Starts a success response in pk (a packer over a scratch buffer): the caller packs the
 * result, then calls srv_reply_finish. */
void srv_reply_begin(struct srv_req *req, msgpack_packer *pk, struct proto_buf *buf);
void srv_reply_finish(struct srv_req *req, struct proto_buf *buf);
/* An empty map result. */
void srv_reply_empty(struct srv_req *req);

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

/* Hashes a password with crypto_pwhash_str at the given cost (blocking: call it off the
 * loop). Returns 0 or PROTO_ENOMEM. */
int srv_password_hash(enum srv_pwcost cost, const char *pw, size_t len, char out[DB_PWHASH_MAX]);

/* ---- the server ---- */

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
    unsigned nconns;
    uint64_t next_conn_id;
    int64_t data_version;
    int64_t last_purge_ms;

    /* Password checks on the pool. */
    unsigned pw_running;
    unsigned pw_waiting;
    struct srv_pwjob *pw_head, *pw_tail;
    char dummy_hash[DB_PWHASH_MAX]; /* for unknown users: same cost as a real check */
    unsigned long long pw_ops;
    size_t pw_mem;

    struct srv_ratelimit rl_account;
    struct srv_ratelimit rl_addr;

    /* Meetings and group commit (srv_hub.c). */
    struct srv_meeting *meetings;
    struct db *wdb;                   /* the writer's own connection */
    struct srv_batch *open_batch;     /* gathering this turn's changes */
    struct srv_batch *write_batch;    /* being written by the writer */
    uint64_t next_batch;              /* id of the next batch to open */
    uint64_t committed_batch;         /* every batch up to this id is durable */
    int64_t next_obj_id, last_obj_id; /* reserved block of object ids */
    struct srv_conn *held;            /* connections with held output */
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
