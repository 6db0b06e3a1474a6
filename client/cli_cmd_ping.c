/* cli_cmd_ping.c - confer ping. */
#include "cli_cmd.h"

#include <string.h>
#include <time.h>

#include "cli_render.h"

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int cli_cmd_ping(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "ping",
        "[options]",
        "Logs in with the saved session, sends one ping and prints the round-trip time\n"
        "and the server's clock (with its offset from this machine's clock).",
        NULL,
        0,
        true,
        0,
        0,
        false,
    };
    struct cli_args a;
    struct cli_session s;
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    int code = CLI_EXIT_FAIL;
    int64_t server_ms = 0;

    memset(&s, 0, sizeof(s));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_session_get(ctx, &s) != CLI_EXIT_OK ||
        cli_session_connect(ctx, &s, &c, NULL) != CLI_EXIT_OK) {
        goto cleanup;
    }
    int64_t wall0 = proto_now_ms();
    int64_t t0 = mono_us();
    /* ping {} -> {"time": ms since the epoch} */
    int rc = cli_conn_callf(c, &m, "ping", NULL);
    int64_t rtt_us = mono_us() - t0;
    if (rc != 0 || m->error != NULL) {
        code = cli_fail_call(ctx, "ping failed", c, rc, m);
        goto cleanup;
    }
    if (proto_param_i64(m->result, "time", &server_ms) != 0) {
        code = cli_fail(ctx, "ping failed: the server's answer has no time");
        goto cleanup;
    }
    /* the server read its clock about half a round trip after we sent */
    int64_t offset = server_ms - (wall0 + rtt_us / 2000);
    if (ctx->json) {
        json_t *j = json_object();
        json_object_set_new(j, "server", json_string(s.server));
        json_object_set_new(j, "rtt_ms", json_real((double)rtt_us / 1000.0));
        json_object_set_new(j, "time", json_integer(server_ms));
        json_object_set_new(j, "offset_ms", json_integer(offset));
        code = cli_print_json(ctx, j);
    } else {
        char when[64];
        cli_render_time(server_ms, when, sizeof(when));
        fprintf(ctx->out, "pong from %s: round trip %.3f ms, server time %s (offset %+lld ms)\n",
                s.server, (double)rtt_us / 1000.0, when, (long long)offset);
        code = CLI_EXIT_OK;
    }

cleanup:
    cli_msg_free(m);
    cli_conn_close(c);
    cli_session_wipe(&s);
    return code;
}
