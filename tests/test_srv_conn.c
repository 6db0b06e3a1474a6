/* test_srv_conn.c - the transport in process: a uv loop, a srv_conn on one end of a
 * socketpair, the real client (in a thread) or raw bytes on the other, and callback
 * counters. Also the per-address key of IPv4 and IPv6 addresses. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_conn.h"
#include "srv.h"
#include "srv_conn.h"

#define RUN_MAX 20000 /* loop iterations a test may take, each at most TICK_MS */
#define TICK_MS 10

struct fixture {
    uv_loop_t loop;
    struct srv srv;
    uv_prepare_t end_turn;
    uv_timer_t tick; /* keeps uv_run(UV_RUN_ONCE) from blocking for ever */
    struct srv_conn *conn;
    int client_fd;
    int messages;
    int closes;
    size_t send_on_message; /* bytes to send from on_message (0: none) */
    bool marked_in_cb;      /* the send marked it, and it was still open */
    pthread_t client;
    bool client_started;
};

static void on_message(struct srv_conn *conn, const msgpack_object *msg, void *data)
{
    struct fixture *f = data;
    (void)msg;
    f->messages++;
    if (f->send_on_message > 0) {
        uint8_t *big = calloc(1, f->send_on_message);
        assert_non_null(big);
        srv_conn_send(conn, big, f->send_on_message);
        free(big);
        /* Marked, not closed: the caller may go on using conn until the turn ends. */
        f->marked_in_cb = conn->close_asap && !conn->closed && f->closes == 0;
    }
}

static void on_close(struct srv_conn *conn, void *data)
{
    struct fixture *f = data;
    assert_ptr_equal(conn, f->conn);
    f->closes++;
}

static const struct srv_conn_cb cb = {on_message, on_close};

static void on_end_turn(uv_prepare_t *p)
{
    srv_conn_end_turn(p->data);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->srv.loop = &f->loop;
    srv_config_defaults(&f->srv.cfg);
    f->srv.cfg.output_limit = 64 * 1024;
    assert_int_equal(proto_hostkey_generate(&f->srv.host), 0);
    uv_prepare_init(&f->loop, &f->end_turn);
    f->end_turn.data = &f->srv;
    uv_prepare_start(&f->end_turn, on_end_turn);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, TICK_MS, TICK_MS);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(srv_conn_new(&f->srv, &f->conn), 0);
    assert_int_equal(uv_tcp_open(&f->conn->tcp, sv[0]), 0);
    f->client_fd = sv[1];
    *state = f;
    return 0;
}

/* Runs the loop until cond(f) holds, for a bounded number of turns. */
static bool run_until(struct fixture *f, bool (*cond)(const struct fixture *f))
{
    for (int i = 0; i < RUN_MAX && !cond(f); i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return cond(f);
}

static bool closed_once(const struct fixture *f)
{
    return f->closes > 0;
}

static bool got_message(const struct fixture *f)
{
    return f->messages > 0;
}

static bool conns_gone(const struct fixture *f)
{
    return f->srv.conns == NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->srv.conns && !f->srv.conns->closed) {
        srv_conn_close(f->srv.conns, NULL);
    }
    if (f->client_fd >= 0) {
        close(f->client_fd);
        f->client_fd = -1;
    }
    assert_true(run_until(f, conns_gone));
    if (f->client_started) {
        pthread_join(f->client, NULL);
    }
    uv_close((uv_handle_t *)&f->end_turn, NULL);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sodium_memzero(&f->srv.host, sizeof(f->srv.host));
    free(f);
    return 0;
}

/* The client thread: handshake, one ping, then wait (bounded) for the server to close. */
static void *client_main(void *arg)
{
    int fd = *(int *)arg;
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[256];
    if (cli_conn_open_fd(&c, fd, "test:0", &pol, 5000, err, sizeof(err)) != 0) {
        return NULL;
    }
    cli_conn_send(c, "ping", NULL, 0, NULL);
    struct cli_msg *m = NULL;
    for (int i = 0; i < 100 && cli_conn_next(c, 100, &m) != PROTO_ECLOSED; i++) {
        cli_msg_free(m);
        m = NULL;
        if (cli_conn_fd(c) < 0) {
            break;
        }
    }
    cli_msg_free(m);
    cli_conn_free(c);
    return NULL;
}

static void start_client(struct fixture *f)
{
    static int fd;
    fd = f->client_fd;
    f->client_fd = -1; /* the client owns it now */
    assert_int_equal(pthread_create(&f->client, NULL, client_main, &fd), 0);
    f->client_started = true;
}

/* A request from the client reaches on_message; closing then calls on_close once. */
static void test_message_delivered(void **state)
{
    struct fixture *f = *state;
    srv_conn_start(f->conn, &cb, f);
    start_client(f);
    assert_true(run_until(f, got_message));
    assert_int_equal(f->messages, 1);
    assert_int_equal(f->closes, 0);
    srv_conn_close(f->conn, "test over");
    assert_true(run_until(f, closed_once));
    assert_int_equal(f->closes, 1);
}

/* A hello that is not one closes the connection, with on_close once and no message. */
static void test_broken_frame_closes_once(void **state)
{
    struct fixture *f = *state;
    srv_conn_start(f->conn, &cb, f);
    uint8_t junk[4 + 16];
    memset(junk, 0x5a, sizeof(junk));
    proto_frame_put_len(junk, 16);
    assert_int_equal(write(f->client_fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    assert_true(run_until(f, closed_once));
    for (int i = 0; i < 10; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->messages, 0);
}

/* A send over the output limit only marks the connection: it stays valid and open until
 * the end of the turn, where it is closed (on_close once). */
static void test_over_limit_closes_at_end_of_turn(void **state)
{
    struct fixture *f = *state;
    f->send_on_message = f->srv.cfg.output_limit + 1;
    srv_conn_start(f->conn, &cb, f);
    start_client(f);
    assert_true(run_until(f, got_message));
    assert_true(f->marked_in_cb);
    assert_true(run_until(f, closed_once));
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->srv.out_total, 0);
}

/* IPv4 addresses are their own key; IPv6 ones share the key of their /64. */
static void test_addr_key(void **state)
{
    (void)state;
    char a[48], b[48];
    assert_int_equal(srv_conn_addr_key("2001:db8:1:2::1", a, sizeof(a)), 0);
    assert_int_equal(srv_conn_addr_key("2001:db8:1:2:ffff:eeee:dddd:cccc", b, sizeof(b)), 0);
    assert_string_equal(a, b);
    assert_string_equal(a, "2001:db8:1:2::/64");
    assert_int_equal(srv_conn_addr_key("2001:db8:1:3::1", b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(srv_conn_addr_key("192.0.2.7", a, sizeof(a)), 0);
    assert_string_equal(a, "192.0.2.7");
    assert_int_equal(srv_conn_addr_key("::ffff:192.0.2.7", b, sizeof(b)), 0);
    assert_string_equal(b, "192.0.2.7");
    assert_int_equal(srv_conn_addr_key("192.0.2.8", b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(srv_conn_addr_key("not an address", a, sizeof(a)), PROTO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_message_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_frame_closes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_limit_closes_at_end_of_turn, setup, teardown),
        cmocka_unit_test(test_addr_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
