/* confer-testpeer - a protocol peer for the integration tests: it does what the real
 * client never does (garbage frames, floods without reading) and reports what the server
 * did about it. Usage: confer-testpeer MODE HOST PORT [USER PASSWORD] [ARG]
 *
 *   hold USER PW MS      log in, print "ready", wait for the server to close; prints
 *                        "closed <reason> <unix ms>" and exits 0, or exits 1 after MS
 *   garbage USER PW      log in, send a frame that cannot decrypt; exit 0 when closed
 *   badmsg USER PW       log in, send a plaintext that is not msgpack: expects one
 *                        bad_request (msgid 0) and a working connection after it
 *   flood USER PW MB     log in, send MB MiB of pings without ever reading; exit 0 when
 *                        the server dropped the connection
 *   idle                 handshake only; prints the ms until the server closes
 *   oversize             before the hello, announce a frame over the limit; exit 0 when
 *                        the server closes at once
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_conn.h"
#include "cli_pack.h"

static int64_t now_ms(void)
{
    return proto_now_ms();
}

static struct cli_conn *open_conn(const char *host, const char *port)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[512];
    if (cli_conn_open(&c, host, (uint16_t)atoi(port), &pol, 5000, err, sizeof(err)) != 0) {
        fprintf(stderr, "testpeer: %s\n", err);
        return NULL;
    }
    return c;
}

static struct cli_conn *login(const char *host, const char *port, const char *user, const char *pw)
{
    struct cli_conn *c = open_conn(host, port);
    struct cli_msg *m = NULL;
    if (c == NULL) {
        return NULL;
    }
    if (cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", user, "password", pw) != 0 ||
        m->error != NULL) {
        fprintf(stderr, "testpeer: login failed: %s\n", m && m->message ? m->message : "?");
        cli_msg_free(m);
        cli_conn_free(c);
        return NULL;
    }
    cli_msg_free(m);
    return c;
}

/* Waits until the server closes; returns 0 when it did within ms. */
static int wait_closed(struct cli_conn *c, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0) {
            return 1;
        }
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(c, (int)left, &m);
        cli_msg_free(m);
        if (rc == PROTO_ETIMEDOUT) {
            return 1;
        }
        if (rc != 0) {
            return 0;
        }
    }
}

static int mode_hold(struct cli_conn *c, int ms)
{
    printf("ready\n");
    fflush(stdout);
    if (wait_closed(c, ms) != 0) {
        fprintf(stderr, "testpeer: still open after %d ms\n", ms);
        return 1;
    }
    const char *why = cli_conn_closing_reason(c);
    printf("closed %s %lld\n", why ? why : "-", (long long)now_ms());
    return 0;
}

static int mode_garbage(struct cli_conn *c)
{
    uint8_t frame[4 + 64];
    proto_frame_put_len(frame, 64);
    randombytes_buf(frame + 4, 64);
    if (cli_conn_send_raw(c, frame, sizeof(frame)) != 0) {
        return 1;
    }
    return wait_closed(c, 3000);
}

static int mode_badmsg(struct cli_conn *c)
{
    static const uint8_t junk[] = {0xc1, 0xc1, 0xc1};
    struct cli_msg *m = NULL;
    if (cli_conn_send_plain(c, junk, sizeof(junk)) != 0 || cli_conn_next(c, 3000, &m) != 0) {
        fprintf(stderr, "testpeer: no answer to junk\n");
        return 1;
    }
    bool ok = m->kind == PROTO_RPC_RESPONSE && m->msgid == 0 && cli_msg_is_error(m, "bad_request");
    cli_msg_free(m);
    m = NULL;
    if (!ok) {
        fprintf(stderr, "testpeer: junk was not answered bad_request with msgid 0\n");
        return 1;
    }
    if (cli_conn_callf(c, &m, "ping", NULL) != 0 || m->error != NULL) {
        fprintf(stderr, "testpeer: ping after junk failed\n");
        cli_msg_free(m);
        return 1;
    }
    cli_msg_free(m);
    printf("ok\n");
    return 0;
}

static int mode_flood(struct cli_conn *c, int mb)
{
    /* One frame of back-to-back ping requests, sent only while the socket takes it at once,
     * so this peer never reads. */
    struct proto_buf plain = {0};
    int fd = cli_conn_fd(c);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    for (uint32_t id = 1; plain.len < 16 * 1024; id++) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &plain, proto_buf_msgpack_write);
        proto_rpc_pack_request(&pk, id, "ping");
        msgpack_pack_map(&pk, 0);
    }
    size_t sent = 0, goal = (size_t)mb * 1024 * 1024;
    int64_t end = now_ms() + 30000;
    int closed = 1;
    while (sent < goal && now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) < 0) {
            break;
        }
        if (p.revents & (POLLERR | POLLHUP)) {
            closed = 0;
            break;
        }
        if (!(p.revents & POLLOUT)) {
            continue; /* the server stopped taking bytes: keep waiting, never read */
        }
        if (cli_conn_send_plain(c, plain.data, plain.len) != 0) {
            closed = 0;
            break;
        }
        sent += plain.len;
    }
    proto_buf_free(&plain, 0);
    if (closed != 0) {
        /* Everything was sent; now see whether the server gave up on us. */
        closed = wait_closed(c, 10000);
    }
    printf("sent %zu bytes, %s\n", sent, closed == 0 ? "dropped" : "not dropped");
    return closed;
}

static int mode_idle(const char *host, const char *port)
{
    int64_t start = now_ms();
    struct cli_conn *c = open_conn(host, port);
    if (c == NULL) {
        return 1;
    }
    int rc = wait_closed(c, 60000);
    printf("%lld\n", (long long)(now_ms() - start));
    cli_conn_free(c);
    return rc;
}

static int mode_oversize(const char *host, const char *port)
{
    struct cli_conn *c = open_conn(host, port);
    if (c == NULL) {
        return 1;
    }
    /* After the handshake, announce 64 MiB: more than the pre-login limit. */
    uint8_t hdr[4];
    proto_frame_put_len(hdr, 64u * 1024 * 1024);
    cli_conn_send_raw(c, hdr, sizeof(hdr));
    int rc = wait_closed(c, 3000);
    cli_conn_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0 || argc < 4) {
        fprintf(stderr, "usage: confer-testpeer MODE HOST PORT [USER PASSWORD] [ARG]\n");
        return 2;
    }
    const char *mode = argv[1], *host = argv[2], *port = argv[3];
    if (strcmp(mode, "idle") == 0) {
        return mode_idle(host, port);
    }
    if (strcmp(mode, "oversize") == 0) {
        return mode_oversize(host, port);
    }
    if (argc < 6) {
        fprintf(stderr, "testpeer: %s needs USER PASSWORD\n", mode);
        return 2;
    }
    struct cli_conn *c = login(host, port, argv[4], argv[5]);
    if (c == NULL) {
        return 1;
    }
    int rc = 2;
    if (strcmp(mode, "hold") == 0) {
        rc = mode_hold(c, argc > 6 ? atoi(argv[6]) : 5000);
    } else if (strcmp(mode, "garbage") == 0) {
        rc = mode_garbage(c);
    } else if (strcmp(mode, "badmsg") == 0) {
        rc = mode_badmsg(c);
    } else if (strcmp(mode, "flood") == 0) {
        rc = mode_flood(c, argc > 6 ? atoi(argv[6]) : 64);
    } else {
        fprintf(stderr, "testpeer: unknown mode %s\n", mode);
    }
    cli_conn_free(c);
    return rc;
}
