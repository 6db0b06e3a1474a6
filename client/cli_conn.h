/* cli_conn.h - a client connection to conferd: TCP, the secure channel handshake with
 * host-key pinning (PROTOCOL.md sections 2-3) and msgpack-RPC calls (section 4).
 *
 * Blocking style: every function returns when its work is done or its timeout passes; the
 * socket is driven with poll(), and there is no event loop. While a function waits to send
 * it also reads, so a peer that writes while we write cannot deadlock us. Messages that
 * arrive while waiting for one response (notifications, other responses) are queued in
 * arrival order and handed out by cli_conn_next.
 *
 *   struct cli_conn *c = NULL;
 *   struct cli_host_policy pol = {.known_hosts = path, .trust_new = true};
 *   if (cli_conn_open(&c, "example.org", 7414, &pol, 0, err, sizeof(err)) == 0) {
 *       struct cli_msg *m = NULL;
 *       if (cli_conn_callf(c, &m, "ping", NULL) == 0 && m->error == NULL) { ... m->result }
 *       cli_msg_free(m);
 *   }
 *   cli_conn_close(c);
 *
 * The queue has no bound: a caller that subscribes to events must keep calling
 * cli_conn_next. One connection is used by one thread at a time.
 */
#ifndef CONFER_CLI_CONN_H
#define CONFER_CLI_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

#include "proto_channel.h"
#include "proto_err.h"
#include "proto_frame.h"
#include "proto_rpc.h"
#include "proto_util.h"

#define CLI_CONNECT_TIMEOUT_MS 10000 /* connect + handshake, when the caller gives 0 */
#define CLI_CALL_TIMEOUT_MS    30000 /* default wait for a response */
#define CLI_RECV_MAX           (PROTO_SEND_MAX + PROTO_ABYTES) /* largest frame accepted */

/* Asks whether to trust an unknown host key; returns true to trust (and pin) it. */
typedef bool (*cli_confirm_fn)(void *ud, const char *hostport, const char *fingerprint);

/* What to do with the server's host key (PROTOCOL.md section 3). The checks run in order:
 *   1. expect_fp set: the key's fingerprint must equal it, else refuse.
 *   2. known_hosts has a line for host:port: the key must equal it, else refuse (no
 *      override: the message shows both fingerprints and the line to remove).
 *   3. unknown key: accept when expect_fp matched or trust_new; else ask through confirm
 *      when interactive; else refuse.
 * An accepted unknown key is appended to known_hosts (when set). */
struct cli_host_policy {
    const char *known_hosts;  /* path of the pinned keys; NULL: none read or written */
    bool trust_new;           /* accept an unknown key without asking */
    const char *expect_fp;    /* "SHA256:..." the key must have; NULL: no expectation */
    bool interactive;         /* may ask about an unknown key */
    cli_confirm_fn confirm;   /* NULL: ask on stderr, read the answer from stdin */
    void *confirm_ud;         /* passed to confirm */
    const char *unknown_hint; /* ends the refusal of an unknown key; NULL: names the flags */
    FILE *warn;               /* warnings about malformed known_hosts lines; NULL: silent */
};

/* How the host key of an open connection was trusted. */
enum cli_trust {
    CLI_TRUST_KNOWN = 0, /* it was already in known_hosts */
    CLI_TRUST_PINNED,    /* unknown, accepted and added to known_hosts */
    CLI_TRUST_ACCEPTED,  /* unknown, accepted, not saved (no known_hosts path) */
};

/* One message from the server: a response or a notification. Free with cli_msg_free.
 * Every pointer points into memory owned by the message. */
struct cli_msg {
    enum proto_rpc_kind kind;     /* PROTO_RPC_RESPONSE or PROTO_RPC_NOTIFY */
    uint32_t msgid;               /* response: the request's msgid */
    const char *method;           /* notification: the method, NUL-terminated; else NULL */
    const msgpack_object *params; /* notification: a map; else NULL */
    const msgpack_object *result; /* response: the result (nil when error is set) */
    const msgpack_object *error;  /* response: NULL on success, else the error map */
    const char *code;             /* error: the code ("rate_limited"...), NUL-terminated */
    const char *message;          /* error: the message, NUL-terminated */
    const msgpack_object *data;   /* error: the "data" value, or NULL when absent */

    /* private */
    struct cli_frame *frame_;
    msgpack_unpacked up_;
    char *text_;
    struct cli_msg *next_;
};

/* Frees a message; NULL is a no-op. */
void cli_msg_free(struct cli_msg *m);

/* True when m is a response carrying an error whose code equals code. */
bool cli_msg_is_error(const struct cli_msg *m, const char *code);

/* Reads data.retry_after_ms of a rate_limited error; returns it, or -1 when absent. */
int64_t cli_msg_retry_after_ms(const struct cli_msg *m);

struct cli_conn;

/* Resolves host (name, IPv4 or IPv6 address), connects to port within timeout_ms (0: the
 * default; the same deadline covers the handshake), runs the handshake and checks the host
 * key against pol. On success *out is an open connection (free with cli_conn_close).
 * When the user is asked about a new key (pol->interactive), the connection is made again
 * after the answer, so a slow answer cannot run into the server's login deadline.
 * Returns 0, or: PROTO_EINVAL (bad arguments), PROTO_EIO (cannot resolve or connect, or a
 * socket error), PROTO_ETIMEDOUT, PROTO_ECLOSED (the server closed the connection),
 * PROTO_EVERSION (the server does not speak version 1), PROTO_ECRYPTO (bad signature or
 * key exchange), PROTO_EPERM (host key refused), PROTO_ENOMEM. err gets a sentence in
 * plain words saying what happened and, where it helps, what to do. */
int cli_conn_open(struct cli_conn **out, const char *host, uint16_t port,
                  const struct cli_host_policy *pol, int timeout_ms, char *err, size_t errlen);

/* As cli_conn_open over an already connected stream socket fd (a socketpair in tests).
 * hostport names the server in known_hosts and messages. The connection owns fd from the
 * call on, on failure too (it is closed). No reconnection after asking. */
int cli_conn_open_fd(struct cli_conn **out, int fd, const char *hostport,
                     const struct cli_host_policy *pol, int timeout_ms, char *err, size_t errlen);

/* Closes gracefully: sends an empty TAG_FINAL frame (unless the connection is broken or the
 * server already closed), closes the socket, wipes the keys, frees queued messages and c.
 * NULL is a no-op. */
void cli_conn_close(struct cli_conn *c);

/* Like cli_conn_close without the TAG_FINAL frame: the server sees the socket drop. */
void cli_conn_free(struct cli_conn *c);

/* The server's "host:port" as given to open, its host key and its fingerprint
 * ("SHA256:..."), and how the key was trusted. Valid while c lives. */
const char *cli_conn_hostport(const struct cli_conn *c);
const uint8_t *cli_conn_host_key(const struct cli_conn *c);
const char *cli_conn_fingerprint(const struct cli_conn *c);
enum cli_trust cli_conn_trust(const struct cli_conn *c);

/* Sets how long cli_conn_call and cli_conn_callf wait for their response, in ms; -1 waits
 * for ever. Default CLI_CALL_TIMEOUT_MS. */
void cli_conn_set_timeout(struct cli_conn *c, int timeout_ms);

/* The last error of c in words ("" when none), e.g. "the server closed the connection:
 * shutdown". Valid until the next call on c. */
const char *cli_conn_error(const struct cli_conn *c);

/* The reason of the server's `closing` notification, or NULL when none came. */
const char *cli_conn_closing_reason(const struct cli_conn *c);

/* Sends the request [0, msgid, method, params] with the next msgid (1, 2, ...) and returns
 * without waiting; *msgid (may be NULL) gets the id. params[0..len) is one packed msgpack
 * map, or NULL/0 for {}. Returns 0; PROTO_EINVAL (params not one map, bad method);
 * PROTO_ETOOBIG (over 16 MiB); PROTO_EIO, PROTO_ECLOSED, PROTO_ETIMEDOUT (sending took
 * longer than the call timeout; the connection is then unusable) or another error of a
 * broken connection. */
int cli_conn_send(struct cli_conn *c, const char *method, const uint8_t *params, size_t len,
                  uint32_t *msgid);

/* As cli_conn_send with params packed from fmt (see cli_pack.h; must make one map, or fmt
 * NULL for {}). */
int cli_conn_sendf(struct cli_conn *c, uint32_t *msgid, const char *method, const char *fmt, ...);

/* Holds back the requests sent from now on and sends them all in one frame at
 * cli_conn_flush (a sender may batch, PROTOCOL.md section 2). Waiting functions flush. */
void cli_conn_cork(struct cli_conn *c);

/* Sends what cli_conn_cork held back and stops holding. Returns 0 or a send error. */
int cli_conn_flush(struct cli_conn *c);

/* Returns the next message, oldest first: a queued one, else the next to arrive within
 * timeout_ms (0: do not wait; -1: wait for ever). The caller frees *out with cli_msg_free.
 * Returns 0; PROTO_ETIMEDOUT; PROTO_ECLOSED when the server closed (cli_conn_error and
 * cli_conn_closing_reason say why) and nothing is queued; PROTO_EIO, PROTO_ECRYPTO or
 * PROTO_EINVAL (the server broke the protocol) for a broken connection. */
int cli_conn_next(struct cli_conn *c, int timeout_ms, struct cli_msg **out);

/* Waits up to timeout_ms (-1: for ever) for the response to msgid, queueing whatever else
 * arrives. Errors as cli_conn_next. */
int cli_conn_wait(struct cli_conn *c, uint32_t msgid, int timeout_ms, struct cli_msg **out);

/* Sends a request and waits for its response (within the call timeout); notifications and
 * other responses that arrive meanwhile are queued for cli_conn_next. Returns 0 when the
 * response came: *out is it, with (*out)->error set when the server answered an error;
 * otherwise an error of cli_conn_send or cli_conn_wait and *out is NULL. */
int cli_conn_call(struct cli_conn *c, const char *method, const uint8_t *params, size_t len,
                  struct cli_msg **out);

/* As cli_conn_call with params packed from fmt (see cli_pack.h; NULL for {}). The packed
 * parameters are wiped after sending, so passwords can be passed. */
int cli_conn_callf(struct cli_conn *c, struct cli_msg **out, const char *method, const char *fmt,
                   ...);

/* Number of queued messages. */
size_t cli_conn_pending(const struct cli_conn *c);

/* For tests: encrypts plain[0..len) (anything, even empty or not msgpack) as one frame.
 * Unlike the other senders it does not read while it waits for the socket, so a test can
 * play a peer that never reads. */
int cli_conn_send_plain(struct cli_conn *c, const uint8_t *plain, size_t len);

/* For tests: writes bytes[0..len) to the socket as they are, outside the channel (and,
 * like cli_conn_send_plain, without reading meanwhile). */
int cli_conn_send_raw(struct cli_conn *c, const uint8_t *bytes, size_t len);

/* The socket, for poll() in a caller's loop or for tests. Still owned by c. */
int cli_conn_fd(const struct cli_conn *c);

#endif
