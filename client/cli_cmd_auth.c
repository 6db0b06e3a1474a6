/* cli_cmd_auth.c - confer login, logout, whoami, passwd. */
#include "cli_cmd.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_render.h"

/* A password typed later than this after connecting gets a fresh connection: the server
 * closes connections that have not logged in within 10 s (PROTOCOL.md section 2). */
#define LOGIN_FRESH_MS 5000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int password_error(struct cli_ctx *ctx, int rc)
{
    switch (rc) {
    case PROTO_ECLOSED:
        return cli_fail(ctx, "no password given");
    case PROTO_ETOOBIG:
        return cli_fail(ctx, "password too long (at most %d bytes)", CLI_PASSWORD_MAX);
    default:
        return cli_fail(ctx, "cannot read a password: standard input is not a terminal; use "
                             "--password-stdin");
    }
}

/* Asks on ctx->err whether to trust a new host key; reads the answer from ctx->in_fd. */
static bool confirm_host(void *ud, const char *hostport, const char *fp)
{
    struct cli_ctx *ctx = ud;
    fprintf(ctx->err,
            "The host key of %s is not known yet. Its fingerprint is\n"
            "    %s\n"
            "Compare it with the one the server's operator gets from `conferd fingerprint`.\n",
            hostport, fp);
    for (int tries = 0; tries < 3; tries++) {
        char ans[16];
        fprintf(ctx->err, "Trust this key and remember it (yes/no)? ");
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
        fprintf(ctx->err, "Please type yes or no.\n");
    }
    return false;
}

/* The result of auth.login with remember: {"user", "operator", "token"?, "expires"?}. */
struct login_result {
    char user[PROTO_NAME_MAX + 1];
    bool operator;
    char token[CLI_TOKEN_MAX];
    int64_t expires;
};

/* Calls auth.login and fills r. Reports failures; returns an exit code. */
static int do_login(struct cli_ctx *ctx, struct cli_conn *c, const char *user, const char *pw,
                    const char *what, struct login_result *r)
{
    struct cli_msg *m = NULL;
    int code = CLI_EXIT_FAIL;

    memset(r, 0, sizeof(*r));
    /* auth.login {user, password, remember} */
    int rc = cli_conn_callf(c, &m, "auth.login", "{s: s, s: s, s: b}", "user", user, "password", pw,
                            "remember", 1);
    if (rc != 0 || m->error != NULL) {
        cli_fail_call(ctx, what, c, rc, m);
        goto cleanup;
    }
    if (proto_param_strcpy(m->result, "user", r->user, sizeof(r->user)) != 0 ||
        !proto_name_valid(r->user, strlen(r->user))) {
        cli_fail(ctx, "%s: the server's answer has no valid user name", what);
        goto cleanup;
    }
    (void)proto_param_bool(m->result, "operator", &r->operator);
    int trc = proto_param_strcpy(m->result, "token", r->token, sizeof(r->token));
    if (trc != 0 && trc != PROTO_ENOTFOUND) {
        cli_fail(ctx, "%s: the server's session token is not valid", what);
        goto cleanup;
    }
    (void)proto_param_i64(m->result, "expires", &r->expires);
    code = CLI_EXIT_OK;

cleanup:
    cli_msg_free(m);
    return code;
}

/* Saves server, user and token, keeping the chosen meeting when the server and user are
 * the same as before. */
static int save_session(struct cli_ctx *ctx, const char *server, const struct login_result *r)
{
    struct cli_session old;
    struct cli_session s;
    char err[1024];

    memset(&s, 0, sizeof(s));
    if (cli_session_load(&old, ctx->paths.session, ctx->err) == 0 &&
        strcmp(old.server, server) == 0 && strcmp(old.user, r->user) == 0) {
        memcpy(s.meeting, old.meeting, sizeof(s.meeting));
    }
    cli_session_wipe(&old);
    snprintf(s.server, sizeof(s.server), "%s", server);
    memcpy(s.user, r->user, sizeof(s.user));
    memcpy(s.token, r->token, sizeof(s.token));
    s.expires = r->token[0] != '\0' ? r->expires : 0;
    int rc = cli_config_mkdir(&ctx->paths, err, sizeof(err));
    if (rc == 0) {
        rc = cli_session_save(&s, ctx->paths.session, err, sizeof(err));
    }
    cli_session_wipe(&s);
    if (rc != 0) {
        return cli_fail(ctx, "logged in, but cannot save the session: %s", err);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_login(struct cli_ctx *ctx, int argc, char **argv)
{
    bool pw_stdin = false;
    bool trust_new = false;
    const char *host_key = NULL;
    const struct cli_opt opts[] = {
        {"password-stdin", 0, CLI_OPT_FLAG, NULL,
         "read the password from the first line of standard input", &pw_stdin, NULL},
        {"trust-new-host", 0, CLI_OPT_FLAG, NULL,
         "trust and pin the server's key on first contact without asking", &trust_new, NULL},
        {"host-key", 0, CLI_OPT_STR, "SHA256:...",
         "the fingerprint the server's key must have (from `conferd fingerprint`)", NULL,
         &host_key},
    };
    const struct cli_usage u = {
        "login",
        "USER@HOST[:PORT] [options]",
        "Logs in to the confer server at HOST (port 7414 unless given; IPv6 as [::1]:7414)\n"
        "and remembers the session token, never the password. The first time, the server's\n"
        "key fingerprint is shown for you to confirm; without a terminal, pass\n"
        "--host-key or --trust-new-host. A changed key is always refused.",
        opts,
        sizeof(opts) / sizeof(opts[0]),
        true,
        1,
        1,
        false,
    };
    struct cli_args a;
    int code = CLI_EXIT_FAIL;
    char host[CLI_HOST_MAX];
    char hostport[CLI_HOSTPORT_MAX];
    char user[PROTO_NAME_MAX + 1];
    char prompt[CLI_HOSTPORT_MAX + PROTO_NAME_MAX + 32];
    char *pw = NULL;
    uint16_t port = 0;
    struct cli_conn *c = NULL;
    struct login_result r;

    memset(&r, 0, sizeof(r));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    const char *at = strchr(a.v[0], '@');
    if (at == NULL || at == a.v[0] || (size_t)(at - a.v[0]) > PROTO_NAME_MAX ||
        !proto_name_valid(a.v[0], (size_t)(at - a.v[0]))) {
        return cli_usage_error(ctx, "login",
                               "expected USER@HOST[:PORT], with a user name of "
                               "lower-case letters, digits, '.', '_' or '-'");
    }
    memcpy(user, a.v[0], (size_t)(at - a.v[0]));
    user[at - a.v[0]] = '\0';
    if (cli_hostport_parse(at + 1, host, sizeof(host), &port) != 0 ||
        cli_hostport_format(host, port, hostport, sizeof(hostport)) != 0) {
        return cli_usage_error(ctx, "login", "not a valid HOST[:PORT]: %s", at + 1);
    }
    if (host_key != NULL &&
        (strncmp(host_key, "SHA256:", 7) != 0 || strlen(host_key) != PROTO_FINGERPRINT_LEN - 1)) {
        return cli_usage_error(ctx, "login",
                               "--host-key wants a fingerprint like SHA256: followed by 43 "
                               "characters, as printed by `conferd fingerprint`");
    }

    if (!pw_stdin && !isatty(ctx->in_fd)) {
        return password_error(ctx, PROTO_EIO); /* say so before connecting */
    }
    pw = sodium_malloc(CLI_PASSWORD_MAX + 2);
    if (pw == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    if (pw_stdin) {
        int rc = cli_read_password(ctx, NULL, pw, CLI_PASSWORD_MAX + 2);
        if (rc != 0) {
            code = password_error(ctx, rc);
            goto cleanup;
        }
    }

    struct cli_host_policy pol;
    memset(&pol, 0, sizeof(pol));
    pol.known_hosts = ctx->paths.known_hosts;
    pol.trust_new = trust_new;
    pol.expect_fp = host_key;
    pol.interactive = ctx->interactive && !pw_stdin;
    pol.confirm = confirm_host;
    pol.confirm_ud = ctx;
    pol.warn = ctx->err;
    if (cli_connect(ctx, hostport, &pol, &c) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (cli_conn_trust(c) == CLI_TRUST_PINNED) {
        fprintf(ctx->err, "%s: pinned the host key of %s (%s) in %s\n", ctx->prog, hostport,
                cli_conn_fingerprint(c), ctx->paths.known_hosts);
    }
    if (!pw_stdin) {
        int64_t t0 = mono_ms();
        snprintf(prompt, sizeof(prompt), "Password for %s@%s: ", user, hostport);
        int rc = cli_read_password(ctx, prompt, pw, CLI_PASSWORD_MAX + 2);
        if (rc != 0) {
            code = password_error(ctx, rc);
            goto cleanup;
        }
        if (mono_ms() - t0 > LOGIN_FRESH_MS) {
            char fp[PROTO_FINGERPRINT_LEN];
            memcpy(fp, cli_conn_fingerprint(c), sizeof(fp));
            cli_conn_close(c);
            c = NULL;
            memset(&pol, 0, sizeof(pol));
            pol.known_hosts = ctx->paths.known_hosts;
            pol.expect_fp = fp; /* the key just checked, pinned or not */
            pol.warn = ctx->err;
            if (cli_connect(ctx, hostport, &pol, &c) != CLI_EXIT_OK) {
                goto cleanup;
            }
        }
    }
    code = do_login(ctx, c, user, pw, "login failed", &r);
    sodium_memzero(pw, CLI_PASSWORD_MAX + 2);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    code = save_session(ctx, hostport, &r);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (r.token[0] == '\0') {
        fprintf(ctx->err,
                "%s: warning: the server gave no session token; other commands cannot log "
                "in\n",
                ctx->prog);
    }
    if (ctx->json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", json_string(r.user));
        json_object_set_new(j, "operator", json_boolean(r.operator));
        json_object_set_new(j, "server", json_string(hostport));
        json_object_set_new(j, "expires", r.expires > 0 ? json_integer(r.expires) : json_null());
        code = cli_print_json(ctx, j);
    } else {
        fprintf(ctx->out, "logged in as %s on %s%s\n", r.user, hostport,
                r.operator? " (operator)" : "");
        if (r.expires > 0) {
            char when[64];
            cli_render_time(r.expires, when, sizeof(when));
            fprintf(ctx->out, "session valid until %s\n", when);
        }
    }

cleanup:
    sodium_memzero(&r, sizeof(r));
    sodium_free(pw);
    cli_conn_close(c);
    return code;
}

int cli_cmd_logout(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "logout",
        "[options]",
        "Revokes the session token on the server (auth.logout) and removes it from the\n"
        "session file. When the server cannot be reached, the token is removed locally\n"
        "anyway and the command fails: the token then stays valid until it expires.",
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
    bool revoked = false;
    char err[1024];

    memset(&s, 0, sizeof(s));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    int rc = cli_session_load(&s, ctx->paths.session, ctx->err);
    if (rc != 0 && rc != PROTO_ENOTFOUND) {
        return cli_fail(ctx, "cannot read %s: %s", ctx->paths.session, proto_strerror(rc));
    }
    if (rc == PROTO_ENOTFOUND || s.token[0] == '\0' || s.server[0] == '\0') {
        cli_session_wipe(&s);
        if (ctx->json) {
            json_t *j = json_object();
            json_object_set_new(j, "logged_out", json_false());
            return cli_print_json(ctx, j);
        }
        fprintf(ctx->out, "not logged in\n");
        return CLI_EXIT_OK;
    }
    bool expired = s.expires > 0 && s.expires <= proto_now_ms();
    if (!expired) {
        struct cli_host_policy pol;
        memset(&pol, 0, sizeof(pol));
        pol.known_hosts = ctx->paths.known_hosts;
        pol.warn = ctx->err;
        if (cli_connect(ctx, s.server, &pol, &c) == CLI_EXIT_OK) {
            rc = cli_conn_callf(c, &m, "auth.token", "{s: s, s: s}", "user", s.user, "token",
                                s.token);
            if (rc == 0 && cli_msg_is_error(m, "unauthenticated")) {
                expired = true; /* nothing left to revoke */
            } else if (rc != 0 || m->error != NULL) {
                cli_fail_call(ctx, "cannot revoke the session on the server", c, rc, m);
            } else {
                cli_msg_free(m);
                m = NULL;
                /* auth.logout {} -> {} */
                rc = cli_conn_callf(c, &m, "auth.logout", NULL);
                if (rc != 0 || m->error != NULL) {
                    cli_fail_call(ctx, "cannot revoke the session on the server", c, rc, m);
                } else {
                    revoked = true;
                }
            }
        }
    }
    /* the local token goes in every case */
    s.token[0] = '\0';
    s.expires = 0;
    if (cli_session_save(&s, ctx->paths.session, err, sizeof(err)) != 0) {
        code = cli_fail(ctx, "cannot update the session file: %s", err);
        goto cleanup;
    }
    code = revoked || expired ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (ctx->json) {
        json_t *j = json_object();
        json_object_set_new(j, "logged_out", json_true());
        json_object_set_new(j, "server", json_string(s.server));
        json_object_set_new(j, "revoked", json_boolean(revoked));
        if (cli_print_json(ctx, j) != CLI_EXIT_OK) {
            code = CLI_EXIT_FAIL;
        }
    } else if (revoked || expired) {
        fprintf(ctx->out, "logged out of %s\n", s.server);
    } else {
        fprintf(ctx->err, "%s: removed the local session token of %s@%s\n", ctx->prog, s.user,
                s.server);
    }

cleanup:
    cli_msg_free(m);
    cli_conn_close(c);
    cli_session_wipe(&s);
    return code;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Prints the meetings map {id: role} as a table sorted by id. */
static int print_meetings(struct cli_ctx *ctx, const msgpack_object *meetings)
{
    const char *headers[] = {"MEETING", "ROLE"};
    struct cli_table *t = NULL;
    char **rows = NULL;
    size_t n = 0;
    int code = CLI_EXIT_FAIL;

    if (meetings == NULL || meetings->type != MSGPACK_OBJECT_MAP || meetings->via.map.size == 0) {
        fprintf(ctx->out, "no meetings\n");
        return CLI_EXIT_OK;
    }
    /* "id\0role" strings, sorted by id */
    rows = calloc(meetings->via.map.size, sizeof(char *));
    t = cli_table_new(2, headers);
    if (rows == NULL || t == NULL) {
        cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; i < meetings->via.map.size; i++) {
        const msgpack_object *k = &meetings->via.map.ptr[i].key;
        const msgpack_object *v = &meetings->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) {
            continue;
        }
        size_t kl = k->via.str.size;
        size_t vl = v->type == MSGPACK_OBJECT_STR ? v->via.str.size : 0;
        char *row = malloc(kl + vl + 2);
        if (row == NULL) {
            cli_fail(ctx, "out of memory");
            goto cleanup;
        }
        memcpy(row, k->via.str.ptr, kl);
        row[kl] = '\0';
        if (vl > 0) {
            memcpy(row + kl + 1, v->via.str.ptr, vl);
        }
        row[kl + 1 + vl] = '\0';
        if (strlen(row) != kl) {
            free(row); /* a NUL inside the id */
            continue;
        }
        rows[n++] = row;
    }
    qsort(rows, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        const char *cells[] = {rows[i], rows[i] + strlen(rows[i]) + 1};
        if (cli_table_add(t, cells) != 0) {
            cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    }
    code = cli_table_print(t, ctx->out, ctx->width) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;

cleanup:
    for (size_t i = 0; i < n; i++) {
        free(rows[i]);
    }
    free(rows);
    cli_table_free(t);
    return code;
}

int cli_cmd_whoami(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "whoami",
        "[options]",
        "Shows the user you are logged in as, on which server, and your role in each\n"
        "meeting.",
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
    char user[PROTO_NAME_MAX + 1];
    bool op = false;

    memset(&s, 0, sizeof(s));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_session_get(ctx, &s) != CLI_EXIT_OK ||
        cli_session_connect(ctx, &s, &c, NULL) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* whoami {} -> {"user", "operator", "meetings": {id: role}} */
    int rc = cli_conn_callf(c, &m, "whoami", NULL);
    if (rc != 0 || m->error != NULL) {
        code = cli_fail_call(ctx, "whoami failed", c, rc, m);
        goto cleanup;
    }
    if (proto_param_strcpy(m->result, "user", user, sizeof(user)) != 0) {
        code = cli_fail(ctx, "whoami failed: the server's answer has no user");
        goto cleanup;
    }
    (void)proto_param_bool(m->result, "operator", &op);
    const msgpack_object *meetings = NULL;
    (void)proto_param_map(m->result, "meetings", &meetings);
    if (ctx->json) {
        json_t *j = cli_json_from_mp(m->result);
        if (j != NULL && json_is_object(j)) {
            json_object_set_new(j, "server", json_string(s.server));
            json_object_set_new(j, "expires",
                                s.expires > 0 ? json_integer(s.expires) : json_null());
        }
        code = cli_print_json(ctx, j);
        goto cleanup;
    }
    char safe_user[PROTO_NAME_MAX + 1];
    cli_sanitize(user, strlen(user), safe_user, sizeof(safe_user));
    fprintf(ctx->out, "%s on %s%s\n", safe_user, s.server, op ? " (operator)" : "");
    if (s.expires > 0) {
        char when[64];
        char left[64];
        cli_render_time(s.expires, when, sizeof(when));
        cli_render_duration(s.expires - proto_now_ms(), left, sizeof(left));
        fprintf(ctx->out, "session valid until %s (%s left)\n", when, left);
    }
    code = print_meetings(ctx, meetings);

cleanup:
    cli_msg_free(m);
    cli_conn_close(c);
    cli_session_wipe(&s);
    return code;
}

int cli_cmd_passwd(struct cli_ctx *ctx, int argc, char **argv)
{
    bool pw_stdin = false;
    const struct cli_opt opts[] = {
        {"password-stdin", 0, CLI_OPT_FLAG, NULL,
         "read two lines from standard input: the current password, then the new one", &pw_stdin,
         NULL},
    };
    const struct cli_usage u = {
        "passwd",
        "[options]",
        "Changes your password on the session's server. The server then ends every\n"
        "session of the account, so confer logs in again with the new password.",
        opts,
        sizeof(opts) / sizeof(opts[0]),
        true,
        0,
        0,
        false,
    };
    struct cli_args a;
    struct cli_session s;
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    struct login_result r;
    char *oldpw = NULL;
    char *newpw = NULL;
    char *again = NULL;
    int code = CLI_EXIT_FAIL;
    const size_t pwcap = CLI_PASSWORD_MAX + 2;

    memset(&s, 0, sizeof(s));
    memset(&r, 0, sizeof(r));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_session_get(ctx, &s) != CLI_EXIT_OK) {
        goto cleanup;
    }
    oldpw = sodium_malloc(pwcap);
    newpw = sodium_malloc(pwcap);
    again = sodium_malloc(pwcap);
    if (oldpw == NULL || newpw == NULL || again == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    int rc = 0;
    if (pw_stdin) {
        rc = cli_read_password(ctx, NULL, oldpw, pwcap);
        if (rc == 0) {
            rc = cli_read_password(ctx, NULL, newpw, pwcap);
        }
    } else {
        rc = cli_read_password(ctx, "Current password: ", oldpw, pwcap);
        if (rc == 0) {
            rc = cli_read_password(ctx, "New password: ", newpw, pwcap);
        }
        if (rc == 0) {
            rc = cli_read_password(ctx, "New password again: ", again, pwcap);
        }
        if (rc == 0 && strcmp(newpw, again) != 0) {
            code = cli_fail(ctx, "the new passwords do not match; password not changed");
            goto cleanup;
        }
    }
    if (rc != 0) {
        code = password_error(ctx, rc);
        goto cleanup;
    }
    if (newpw[0] == '\0') {
        code = cli_fail(ctx, "the new password is empty; password not changed");
        goto cleanup;
    }
    if (cli_session_connect(ctx, &s, &c, NULL) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* auth.passwd {old, new} -> {} */
    rc = cli_conn_callf(c, &m, "auth.passwd", "{s: s, s: s}", "old", oldpw, "new", newpw);
    if (rc != 0 || m->error != NULL) {
        code = cli_fail_call(ctx, "password not changed", c, rc, m);
        goto cleanup;
    }
    cli_conn_close(c);
    c = NULL;
    /* the change revoked every token, ours too: log in again with the new password */
    struct cli_host_policy pol;
    memset(&pol, 0, sizeof(pol));
    pol.known_hosts = ctx->paths.known_hosts;
    pol.warn = ctx->err;
    if (cli_connect(ctx, s.server, &pol, &c) != CLI_EXIT_OK ||
        do_login(ctx, c, s.user, newpw, "password changed, but logging in again failed", &r) !=
            CLI_EXIT_OK) {
        fprintf(ctx->err, "%s: password changed; run %s login %s@%s\n", ctx->prog, ctx->prog,
                s.user, s.server);
        goto cleanup;
    }
    code = save_session(ctx, s.server, &r);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", json_string(s.user));
        json_object_set_new(j, "server", json_string(s.server));
        json_object_set_new(j, "changed", json_true());
        code = cli_print_json(ctx, j);
    } else {
        fprintf(ctx->out, "password changed for %s on %s; other sessions were logged out\n", s.user,
                s.server);
    }

cleanup:
    sodium_free(oldpw);
    sodium_free(newpw);
    sodium_free(again);
    sodium_memzero(&r, sizeof(r));
    cli_msg_free(m);
    cli_conn_close(c);
    cli_session_wipe(&s);
    return code;
}
