/* srv_base.h - conferd's bottom floor: the definitions every layer shares.
 *
 * struct srv, its configuration and defaults, the server's constants and the log. It
 * includes nothing of server/ but the rate limiter's table (held in struct srv by value),
 * so any file may include it without an arrow up to the files that run the server (srv.h
 * is the top).
 *
 * One struct srv is filled by srv_init (or srv_init_offline) and passed down; every handle reaches
 * it through handle->data. One thread (the loop) owns all of it; the only other threads are libuv's
 * pool (password hashing, long reads) and the database writer (srv_writer.h).
 */
#ifndef CONFER_SRV_BASE_H
#define CONFER_SRV_BASE_H

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
    unsigned snapshot_every;     /* changes between two snapshots of a meeting */
    uint64_t idle_ms;            /* unchanged this long: rows, snapshot and checkpoint */
    /* The live view (PROTOCOL.md section 14): off while http_port < 0. */
    char http_host[256];
    int http_port;
    const char *http_port_file;     /* write the HTTP port here once listening (tests) */
    const char *http_base_url;      /* what share links start with ("" : http://HOST:PORT) */
    unsigned http_max_streams;      /* live pages open at once */
    unsigned http_streams_per_addr; /* live pages open at once from one address */
};

/* Fills a config with the defaults of PROTOCOL.md and DESIGN.md. */
void srv_config_defaults(struct srv_config *cfg);

/* ---- logging: one line per event on stderr ---- */

struct srv_conn;

/* What the log prints of a connection. struct srv_conn begins with it (srv_conn.h), so
 * srv_log reads a connection without knowing the transport above this floor. */
struct srv_conn_tag {
    uint64_t id;
    char peer[64]; /* "addr:port" */
};

enum srv_log_level { SRV_LOG_DEBUG, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR };

/* Logs one line: time, level, connection id and peer (when conn is not NULL), message.
 * Never pass a password or token. */
void srv_log(const struct srv_conn *conn, enum srv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the server ---- */

struct srv_meeting;
struct srv_pwjob;
struct srv_writer;
struct srv_held;
struct srv_reads;
struct srv_batch;
struct srv_addr_count;
struct srv_live;
struct db_audit;

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
    struct srv_user_count **user_counts; /* logged-in connections per user */
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

    /* Told of every change once it is durable, in seq order, and of every meeting loaded
     * (e NULL): the live view (srv_live.c) sets it through srv_hub_listen. */
    void (*durable_cb)(void *ud, struct srv_meeting *m, const struct db_audit *e);
    void *durable_ud;
    struct srv_live *live; /* the live view (srv_live.c); NULL without --http */
};

#endif
