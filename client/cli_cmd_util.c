/* cli_cmd_util.c - helpers shared by the confer commands: errors, JSON output, passwords,
 * connecting with the saved session, and who is where. */
#include "cli_cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_record.h"
#include "cli_render.h"

int cli_fail(struct cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    fprintf(ctx->err, "%s: ", ctx->prog);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->err);
    return CLI_EXIT_FAIL;
}

int cli_fail_rpc(struct cli_ctx *ctx, const char *what, const struct cli_msg *m)
{
    char msg[512];
    const char *code = m->code != NULL ? m->code : "internal";
    const char *text = m->message != NULL ? m->message : "";

    cli_sanitize(text, strlen(text), msg, sizeof(msg));
    if (strcmp(code, "rate_limited") == 0) {
        int64_t after = cli_msg_retry_after_ms(m);
        if (after < 0) {
            return cli_fail(ctx, "%s: %s (rate_limited); retry later", what, msg);
        }
        char in[64];
        char at[64];
        cli_render_duration(after, in, sizeof(in));
        cli_render_time(proto_now_ms() + after, at, sizeof(at));
        return cli_fail(ctx, "%s: %s (rate_limited); retry in %s (at %s)", what, msg, in, at);
    }
    if (strcmp(code, "unavailable") == 0) {
        return cli_fail(ctx, "%s: the server is unavailable (%s); try again later", what, msg);
    }
    if (strcmp(code, "internal") == 0) {
        return cli_fail(ctx, "%s: server error (%s); tell the server's operator", what, msg);
    }
    if (strcmp(code, "forbidden") == 0) {
        return cli_fail(ctx, "%s: not allowed: %s", what, msg);
    }
    char safe_code[64];
    cli_sanitize(code, strlen(code), safe_code, sizeof(safe_code));
    return cli_fail(ctx, "%s: %s (%s)", what, msg, safe_code);
}

int cli_fail_call(struct cli_ctx *ctx, const char *what, struct cli_conn *c, int rc,
                  const struct cli_msg *m)
{
    if (m != NULL && m->error != NULL) {
        return cli_fail_rpc(ctx, what, m);
    }
    const char *e = c != NULL ? cli_conn_error(c) : "";
    char safe[1024];
    cli_sanitize(e, strlen(e), safe, sizeof(safe));
    return cli_fail(ctx, "%s: %s", what, safe[0] != '\0' ? safe : proto_strerror(rc));
}

int cli_print_json(struct cli_ctx *ctx, json_t *j)
{
    if (j == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    int rc = cli_json_print(ctx->out, j);
    json_decref(j);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    bool over = false;
    bool any = false;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            buf[n] = '\0';
            return PROTO_EIO;
        }
        if (r == 0) {
            if (!any) {
                buf[0] = '\0';
                return PROTO_ECLOSED;
            }
            break;
        }
        any = true;
        if (ch == '\n') {
            break;
        }
        if (n + 1 < cap) {
            buf[n++] = ch;
        } else {
            over = true;
        }
    }
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    if (over) {
        sodium_memzero(buf, cap);
        return PROTO_ETOOBIG;
    }
    return 0;
}

/* Reads a line from the terminal fd with echo off, byte by byte in non-canonical mode so
 * that Ctrl-C cancels without a signal handler and the terminal is always restored. */
static int read_tty_password(struct cli_ctx *ctx, int fd, const char *prompt, char *buf, size_t cap)
{
    struct termios old;
    struct termios raw;
    size_t n = 0;
    bool over = false;
    int rc = 0;

    if (tcgetattr(fd, &old) != 0) {
        return PROTO_EIO;
    }
    raw = old;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | ISIG);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSAFLUSH, &raw) != 0) {
        return PROTO_EIO;
    }
    fputs(prompt, ctx->err);
    fflush(ctx->err);
    for (;;) {
        unsigned char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            rc = r == 0 ? PROTO_ECLOSED : PROTO_EIO;
            break;
        }
        if (ch == '\r' || ch == '\n') {
            break;
        }
        if (ch == old.c_cc[VINTR] || (ch == old.c_cc[VEOF] && n == 0)) {
            rc = PROTO_ECLOSED;
            break;
        }
        if (ch == old.c_cc[VERASE] || ch == 0x7f || ch == 0x08) {
            while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80) {
                n--; /* continuation bytes of the last character */
            }
            if (n > 0) {
                n--;
            }
            continue;
        }
        if (ch == old.c_cc[VKILL]) {
            n = 0;
            continue;
        }
        if (n + 1 < cap) {
            buf[n++] = (char)ch;
        } else {
            over = true;
        }
    }
    tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', ctx->err);
    buf[n] = '\0';
    if (rc == 0 && over) {
        rc = PROTO_ETOOBIG;
    }
    if (rc != 0) {
        sodium_memzero(buf, cap);
    }
    return rc;
}

int cli_read_password(struct cli_ctx *ctx, const char *prompt, char *buf, size_t cap)
{
    size_t lim = cap < CLI_PASSWORD_MAX + 2 ? cap : CLI_PASSWORD_MAX + 2;
    int rc;

    if (prompt != NULL) {
        if (!isatty(ctx->in_fd)) {
            return PROTO_EIO;
        }
        rc = read_tty_password(ctx, ctx->in_fd, prompt, buf, lim);
    } else {
        rc = cli_read_line(ctx->in_fd, buf, lim);
    }
    if (rc == 0 && strlen(buf) > CLI_PASSWORD_MAX) {
        sodium_memzero(buf, cap);
        rc = PROTO_ETOOBIG;
    }
    return rc;
}

int cli_session_get(struct cli_ctx *ctx, struct cli_session *s)
{
    int rc = cli_session_load(s, ctx->paths.session, ctx->err);
    if (rc == PROTO_ENOTFOUND || (rc == 0 && (s->server[0] == '\0' || s->user[0] == '\0'))) {
        return cli_fail(ctx, "not logged in: run %s login USER@HOST", ctx->prog);
    }
    if (rc != 0) {
        return cli_fail(ctx, "cannot read %s: %s", ctx->paths.session, proto_strerror(rc));
    }
    if (s->token[0] == '\0') {
        return cli_fail(ctx, "not logged in: run %s login %s@%s", ctx->prog, s->user, s->server);
    }
    if (s->expires > 0 && s->expires <= proto_now_ms()) {
        return cli_fail(ctx, "session expired: run %s login %s@%s", ctx->prog, s->user, s->server);
    }
    return CLI_EXIT_OK;
}

/* As cli_connect; *hopeless (when not NULL) says whether trying again cannot help: the
 * host key is not the pinned one, or not known (PROTO_EPERM), or the handshake failed
 * its signature check (PROTO_ECRYPTO). */
static int connect_to(struct cli_ctx *ctx, const char *hostport, const struct cli_host_policy *pol,
                      struct cli_conn **out, bool *hopeless)
{
    char host[CLI_HOST_MAX];
    char err[8192];
    uint16_t port = 0;

    *out = NULL;
    if (cli_hostport_parse(hostport, host, sizeof(host), &port) != 0) {
        if (hopeless != NULL) {
            *hopeless = true;
        }
        return cli_fail(ctx, "not a valid server address: %s", hostport);
    }
    if (pol->known_hosts != NULL && cli_config_mkdir(&ctx->paths, err, sizeof(err)) != 0) {
        return cli_fail(ctx, "%s", err);
    }
    int rc = cli_conn_open(out, host, port, pol, ctx->connect_timeout_ms, err, sizeof(err));
    if (rc != 0) {
        if (hopeless != NULL) {
            *hopeless = rc == PROTO_EPERM || rc == PROTO_ECRYPTO;
        }
        return cli_fail(ctx, "%s", err);
    }
    return CLI_EXIT_OK;
}

int cli_connect(struct cli_ctx *ctx, const char *hostport, const struct cli_host_policy *pol,
                struct cli_conn **out)
{
    return connect_to(ctx, hostport, pol, out, NULL);
}

int cli_session_reconnect(struct cli_ctx *ctx, const struct cli_session *s, struct cli_conn **out,
                          struct cli_msg **result, bool *hopeless)
{
    struct cli_host_policy pol;
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    char hint[CLI_HOSTPORT_MAX + PROTO_NAME_MAX + 128];
    int code = CLI_EXIT_FAIL;
    bool dummy = false;

    hopeless = hopeless != NULL ? hopeless : &dummy;
    *hopeless = false;
    *out = NULL;
    if (result != NULL) {
        *result = NULL;
    }
    snprintf(hint, sizeof(hint), "Run %s login %s@%s to check it and pin it.", ctx->prog, s->user,
             s->server);
    memset(&pol, 0, sizeof(pol));
    pol.known_hosts = ctx->paths.known_hosts;
    pol.unknown_hint = hint;
    pol.warn = ctx->err;
    if (connect_to(ctx, s->server, &pol, &c, hopeless) != CLI_EXIT_OK) {
        return CLI_EXIT_FAIL;
    }
    /* auth.token {user, token} -> {user, operator} */
    int rc =
        cli_conn_callf(c, &m, "auth.token", "{s: s, s: s}", "user", s->user, "token", s->token);
    if (rc != 0) {
        cli_fail_call(ctx, "cannot log in with the saved session", c, rc, NULL);
        goto cleanup;
    }
    if (cli_msg_is_error(m, "unauthenticated")) {
        /* the token expired or was revoked (password changed, account disabled): using it
         * again only counts as one more failed login */
        *hopeless = true;
        cli_fail(ctx,
                 "the server refused the saved session (it expired, or the password changed, "
                 "or the account was disabled): log in again: %s login %s@%s",
                 ctx->prog, s->user, s->server);
        goto cleanup;
    }
    if (m->error != NULL) {
        *hopeless = cli_msg_is_error(m, "rate_limited") || cli_msg_is_error(m, "forbidden");
        cli_fail_rpc(ctx, "cannot log in with the saved session", m);
        goto cleanup;
    }
    *out = c;
    c = NULL;
    if (result != NULL) {
        *result = m;
        m = NULL;
    }
    code = CLI_EXIT_OK;

cleanup:
    cli_msg_free(m);
    cli_conn_close(c);
    return code;
}

int cli_session_connect(struct cli_ctx *ctx, const struct cli_session *s, struct cli_conn **out,
                        struct cli_msg **result)
{
    return cli_session_reconnect(ctx, s, out, result, NULL);
}

/* ---- who is in a section (presence.list) ---- */

struct cli_msg *cli_presence_fetch(struct cli_mtg *m)
{
    struct cli_msg *r = NULL;
    if (cli_conn_callf(m->c, &r, "presence.list", "{s:s}", "meeting", m->id) != 0 ||
        r->error != NULL || r->result == NULL || r->result->type != MSGPACK_OBJECT_ARRAY) {
        cli_msg_free(r);
        return NULL;
    }
    return r;
}

void cli_presence_in(const struct cli_msg *pres, const char *type, int64_t id, const char *except,
                     char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; pres != NULL && i < pres->result->via.array.size; i++) {
        const msgpack_object *p = &pres->result->via.array.ptr[i];
        const msgpack_object *where = proto_mp_map_get(p, "where");
        char wtype[16], raw[PROTO_NAME_MAX + 1], user[2 * PROTO_NAME_MAX + 8];
        int64_t wid = 0;
        if (where == NULL || where->type != MSGPACK_OBJECT_MAP ||
            cli_obj_strcpy(where, "type", wtype, sizeof(wtype)) == NULL ||
            strcmp(wtype, type) != 0 || !cli_obj_i64(where, "id", &wid) || wid != id ||
            cli_obj_strcpy(p, "user", raw, sizeof(raw)) == NULL ||
            (except != NULL && strcmp(raw, except) == 0)) {
            continue;
        }
        cli_sanitize(raw, strlen(raw), user, sizeof(user));
        if (strstr(out, user) != NULL) {
            continue; /* one user on two connections */
        }
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", user);
        if (w < 0 || (size_t)w >= cap - n) {
            break;
        }
        n += (size_t)w;
    }
}

bool cli_ask_yes(struct cli_ctx *ctx, const char *question)
{
    for (int tries = 0; tries < 3; tries++) {
        char ans[16];
        fprintf(ctx->err, "%s (yes/no) ", question);
        fflush(ctx->err);
        int rc = cli_read_line(ctx->in_fd, ans, sizeof(ans));
        if (rc == PROTO_ECLOSED || rc == PROTO_EIO) {
            fputc('\n', ctx->err);
            return false;
        }
        if (rc == 0 && (strcasecmp(ans, "yes") == 0 || strcasecmp(ans, "y") == 0)) {
            return true;
        }
        if (rc == 0 && (strcasecmp(ans, "no") == 0 || strcasecmp(ans, "n") == 0)) {
            return false;
        }
    }
    return false;
}
