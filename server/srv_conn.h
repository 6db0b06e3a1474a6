/* srv_conn.h - the transport: one client connection (handshake, frames, limits, output).
 *
 * It turns bytes into decrypted messages handed to an on_message callback, and queued
 * messages back into one encrypted frame per loop turn. It knows nothing above it: srv.c
 * gives it its callbacks. srv_conn.c alone owns a connection's life and its references.
 *
 * A send never closes or frees a connection: a slow consumer (or an out-of-memory or a
 * write error) is only marked, and marked connections are closed at the end of the loop
 * turn by srv_conn_flush_all, so that any loop over connections or subscribers can go on
 * standing on the one it is sending to.
 */
#ifndef CONFER_SRV_CONN_H
#define CONFER_SRV_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <msgpack.h>

#include "db.h"
#include "proto_channel.h"
#include "proto_frame.h"
#include "proto_util.h"
#include "srv_base.h"

struct srv_meeting;

enum srv_conn_state {
    SRV_CONN_HELLO,     /* waiting for ClientHello */
    SRV_CONN_STREAMHDR, /* waiting for the client's secretstream header */
    SRV_CONN_AUTH,      /* secure channel up, not logged in */
    SRV_CONN_READY,     /* logged in */
    SRV_CONN_CLOSING,   /* flushing, or marked to close at the end of the turn */
};

/* What the transport tells the layer above. on_message gets one decoded msgpack object
 * (valid during the call); on_close is called once, at the end of a loop turn, when the
 * connection is closed (its memory stays valid until every reference is dropped). */
struct srv_conn_cb {
    void (*on_message)(struct srv_conn *conn, const msgpack_object *msg, void *data);
    void (*on_close)(struct srv_conn *conn, void *data);
};

struct srv_held;

struct srv_conn {
    struct srv_conn_tag tag; /* first: the log reads it (srv_base.h) */
    struct srv *srv;
    uv_tcp_t tcp;
    uv_timer_t deadline; /* login deadline, then the frame deadline, then the closing grace */
    char peer_ip[48];    /* address only */
    char peer_key[48];   /* the per-address key: the IPv4 address or the IPv6 /64 */
    enum srv_conn_state state;
    struct srv_conn *prev, *next; /* srv->conns */
    struct srv_conn *dirty_next;  /* srv->dirty: has output to flush */
    struct srv_conn *close_next;  /* srv->close_asap: to close at the end of the turn */
    bool dirty;
    bool reading;
    bool busy;           /* a request is being answered off the loop: hold the rest */
    bool logged_in_once; /* the frame limit stays raised after logout */
    bool user_counted;   /* counted in srv->user_counts (srv_conn_set_user) */
    bool close_asap;     /* marked: nothing more is queued or handled; closed at turn end */
    bool closed;         /* uv_close called */
    bool frame_timer;    /* the deadline timer runs for a started frame */
    int handles_open;    /* tcp and timer not yet closed */
    int refs;            /* srv_conn_hold without srv_conn_done */
    unsigned unanswered;
    const char *close_reason; /* why it was marked (a static string) */

    struct srv_conn_cb cb;
    void *cb_data;

    struct proto_reader rd;
    struct proto_channel ch;

    /* Decrypted plaintext being handled, message by message. */
    struct proto_buf in;
    size_t in_off;
    size_t in_good; /* validated prefix of in */
    bool in_fault;  /* bytes after in_good were not msgpack: answer once */

    struct proto_buf out; /* plaintext messages queued this turn */
    size_t write_pending; /* bytes handed to libuv and not yet written */
    size_t queued;        /* output counted against the limits: out, writes, held */

    /* Output that waits for a batch to be durable (srv_held.h owns it), and how many
     * messages wait there: reading stops while too many do (srv_conn_set_backlog). */
    struct srv_held *held;
    unsigned backlog;

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

/* Allocates a connection of srv with its handles initialised on srv->loop and links it
 * into srv->conns. The caller connects conn->tcp (uv_accept, uv_tcp_open), then calls
 * srv_conn_start, or srv_conn_close to give it up. Returns 0 or PROTO_ENOMEM. */
int srv_conn_new(struct srv *srv, struct srv_conn **out);

/* Starts handling a connected connection: the handshake, then messages for cb->on_message
 * (data is passed back to both callbacks). */
void srv_conn_start(struct srv_conn *conn, const struct srv_conn_cb *cb, void *data);

/* Appends one whole encoded message to the connection's output; it is encrypted and
 * written at the end of the loop turn, batched with the others in one frame. Never closes
 * synchronously: a connection whose output passes the limit (or the global budget) is
 * marked a slow consumer and closed at the end of the turn; a marked one gets nothing. */
void srv_conn_send(struct srv_conn *conn, const void *msg, size_t len);

/* Tells the transport how many messages wait for this connection above it (held
 * output): it stops reading while those and the unanswered requests pass
 * SRV_MAX_UNANSWERED, and reads again when they fall. */
void srv_conn_set_backlog(struct srv_conn *conn, unsigned n);

/* Counts delta bytes of output kept for conn outside the transport (held responses)
 * against its limit and the global budget; a connection that passes either is marked a
 * slow consumer. Returns false when conn is (now) marked or closing and takes nothing. */
bool srv_conn_account(struct srv_conn *conn, ptrdiff_t delta);

/* True when conn takes no more output or requests (closing, or marked to close). */
bool srv_conn_closing(const struct srv_conn *conn);

/* Closes a connection gracefully: when reason is not NULL and the channel is up, a
 * closing notification is sent (and flushed, for at most a short grace period) first. It
 * handles no more requests from now on; it is closed at the end of a loop turn at the
 * earliest, so callers may walk connections while calling it. */
void srv_conn_close(struct srv_conn *conn, const char *reason);

/* Encrypts and writes the queued output of every connection that has some, then marks
 * the biggest consumers while the global output budget is passed. Closes nothing. */
void srv_conn_flush_all(struct srv *srv);

/* The end of a loop turn (srv.c's prepare callback): flushes, then closes the marked
 * connections (calling their on_close), until nothing is left to do. Never call it from
 * inside a loop over connections or subscribers. */
void srv_conn_end_turn(struct srv *srv);

/* (Re)starts the login deadline: the connection is closed unless it logs in in time. */
void srv_conn_arm_deadline(struct srv_conn *conn);

/* Goes on handling queued requests after an asynchronous one finished. */
void srv_conn_resume(struct srv_conn *conn);

/* Takes a reference: conn's memory stays valid (it may be closed meanwhile) until the
 * matching srv_conn_done. */
void srv_conn_hold(struct srv_conn *conn);

/* Drops a reference taken with srv_conn_hold; frees the connection when it was the last
 * and its handles are closed. */
void srv_conn_done(struct srv_conn *conn);

/* Writes the per-address key of a textual IP address into key: an IPv4 address as it is
 * (also when IPv4-mapped, ::ffff:a.b.c.d), an IPv6 address as its /64 prefix ("2001:db8:1:2::/64").
 * Returns 0, or PROTO_EINVAL when ip is not an address (key then gets ip itself). */
int srv_conn_addr_key(const char *ip, char *key, size_t keysz);

/* Sets the user a connection is logged in as (user NULL or "": logged out), keeping the
 * count of each user's logged-in connections that srv_conn_user_allowed reads. Returns 0 or
 * PROTO_ENOMEM (the connection is then logged out). */
int srv_conn_set_user(struct srv_conn *conn, const char *user);

/* Frees the per-user counts (when the server is freed). */
void srv_conn_counts_free(struct srv *srv);

/* Tells whether conn may log in as user without passing max_conns_per_user (counting
 * the user's logged-in connections but conn). Called by the login paths before they
 * accept; when it says no they answer rate_limited and the connection stays logged out. */
bool srv_conn_user_allowed(struct srv *srv, const struct srv_conn *conn, const char *user);

/* Closes every logged-in connection of user except keep (may be NULL), with reason. */
void srv_conn_close_user(struct srv *srv, const char *user, struct srv_conn *keep,
                         const char *reason);

#endif
