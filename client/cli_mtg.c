/* cli_mtg.c - the meeting a command works on: choosing it, connecting, calls and changes
 * with their errors in words, cids, today's date. Below every command file. */
#include "cli_cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cli_pack.h"
#include "cli_record.h"
#include "cli_render.h"

/* ---- the meeting of a command ---- */

int cli_mtg_open(struct cli_ctx *ctx, struct cli_mtg *m, bool need)
{
    if (cli_session_get(ctx, &m->s) != CLI_EXIT_OK) {
        return CLI_EXIT_FAIL;
    }
    const char *id = ctx->meeting != NULL ? ctx->meeting : m->s.meeting;
    snprintf(m->id, sizeof(m->id), "%s", id);
    if (need && m->id[0] == '\0') {
        return cli_fail(ctx, "no meeting chosen: run %s use MEETING (%s meetings lists yours)",
                        ctx->prog, ctx->prog);
    }
    return cli_session_connect(ctx, &m->s, &m->c, NULL);
}

void cli_mtg_close(struct cli_mtg *m)
{
    cli_msg_free(m->got);
    m->got = NULL;
    m->rec = NULL;
    cli_conn_close(m->c);
    m->c = NULL;
    cli_session_wipe(&m->s);
}

void cli_cid_new(char out[CLI_CID_LEN + 1])
{
    uint8_t r[16];
    randombytes_buf(r, sizeof(r));
    proto_b64url_encode(r, sizeof(r), out, CLI_CID_LEN + 1);
}

void cli_today(const char *tz, char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    char *old = NULL;
    bool set = tz != NULL && tz[0] != '\0' && proto_tz_valid(tz, strlen(tz));

    if (set) {
        const char *cur = getenv("TZ");
        old = cur != NULL ? strdup(cur) : NULL;
        setenv("TZ", tz, 1);
        tzset();
    }
    if (localtime_r(&now, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) == 0) {
        snprintf(out, 11, "1970-01-01");
    }
    if (set) {
        if (old != NULL) {
            setenv("TZ", old, 1);
        } else {
            unsetenv("TZ");
        }
        tzset();
    }
    free(old);
}

/* The caller's role in the meeting, from whoami; "" when it has none or cannot tell. */
static void my_role(struct cli_mtg *m, char *out, size_t cap)
{
    struct cli_msg *w = NULL;
    const msgpack_object *meetings = NULL;

    out[0] = '\0';
    /* whoami {} -> {"user", "operator", "meetings": {id: role}} */
    if (m->c == NULL || m->id[0] == '\0' || cli_conn_callf(m->c, &w, "whoami", NULL) != 0 ||
        w->error != NULL || proto_param_map(w->result, "meetings", &meetings) != 0) {
        cli_msg_free(w);
        return;
    }
    char raw[32];
    if (proto_param_strcpy(meetings, m->id, raw, sizeof(raw)) == 0) {
        cli_sanitize(raw, strlen(raw), out, cap);
    }
    cli_msg_free(w);
}

int cli_mtg_fail(struct cli_ctx *ctx, struct cli_mtg *m, const char *what, int rc,
                 const struct cli_msg *msg)
{
    if (rc != 0 || msg == NULL || msg->error == NULL) {
        return cli_fail_call(ctx, what, m->c, rc, msg);
    }
    const char *code = msg->code != NULL ? msg->code : "";
    const char *text = msg->message != NULL ? msg->message : "";
    char safe[512];
    cli_sanitize(text, strlen(text), safe, sizeof(safe));

    if (strcmp(code, "not_found") == 0 && strncmp(text, "no such meeting", 15) == 0) {
        return cli_fail(ctx, "%s: no meeting %s, or you are not a member of it: ask its rapporteur",
                        what, m->id);
    }
    if (strcmp(code, "not_found") == 0 && strstr(text, "object") != NULL) {
        return cli_fail(ctx, "%s: it was removed meanwhile by someone else", what);
    }
    if (strcmp(code, "forbidden") == 0) {
        char role[32];
        my_role(m, role, sizeof(role));
        if (role[0] != '\0') {
            return cli_fail(ctx, "%s: your role (%s) does not allow this: ask the rapporteur", what,
                            role);
        }
        return cli_fail(ctx, "%s: not allowed: %s", what, safe);
    }
    if (strcmp(code, "locked") == 0) {
        return cli_fail(ctx,
                        "%s: the meeting is final: the rapporteur can reopen it with %s meeting "
                        "set --status draft",
                        what, ctx->prog);
    }
    int64_t seq = 0;
    if (strcmp(code, "conflict") == 0 && msg->data != NULL &&
        proto_param_i64(msg->data, "seq", &seq) == 0) {
        return cli_fail(ctx, "%s: changed meanwhile by someone else: run the command again", what);
    }
    if (strcmp(code, "conflict") == 0 || strcmp(code, "bad_request") == 0 ||
        strcmp(code, "too_large") == 0 || strcmp(code, "not_found") == 0) {
        return cli_fail(ctx, "%s: %s", what, safe);
    }
    return cli_fail_rpc(ctx, what, msg);
}

int cli_mtg_fetch(struct cli_ctx *ctx, struct cli_mtg *m)
{
    struct cli_msg *r = NULL;
    /* meeting.get {meeting} -> {"seq", "meeting", "sessions", "items", "docs", ...} */
    if (cli_mtg_call(ctx, m, "cannot read the meeting", &r, "meeting.get", "{s: s}", "meeting",
                     m->id) != CLI_EXIT_OK) {
        return CLI_EXIT_FAIL;
    }
    if (r->result == NULL || r->result->type != MSGPACK_OBJECT_MAP ||
        cli_rec_objects(r->result, PROTO_T_MEETING) == NULL) {
        cli_msg_free(r);
        return cli_fail(ctx, "cannot read the meeting: the server's answer is not a record");
    }
    cli_msg_free(m->got);
    m->got = r;
    m->rec = r->result;
    return CLI_EXIT_OK;
}

int cli_mtg_call(struct cli_ctx *ctx, struct cli_mtg *m, const char *what, struct cli_msg **out,
                 const char *method, const char *fmt, ...)
{
    struct proto_buf b = {0};
    struct cli_msg *r = NULL;
    int code = CLI_EXIT_FAIL;

    *out = NULL;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int rc = cli_vpackf(&b, fmt, ap);
        va_end(ap);
        if (rc != 0) {
            code = cli_fail(ctx, "%s: cannot pack the request (%s)", what, proto_strerror(rc));
            goto cleanup;
        }
    }
    int rc = cli_conn_call(m->c, method, b.data, b.len, &r);
    if (rc != 0 || r->error != NULL) {
        code = cli_mtg_fail(ctx, m, what, rc, r);
        goto cleanup;
    }
    *out = r;
    r = NULL;
    code = CLI_EXIT_OK;

cleanup:
    cli_msg_free(r);
    proto_buf_free(&b, 0);
    return code;
}

/* True for errors after which the connection is gone but the request may have arrived. */
static bool broken(int rc)
{
    return rc == PROTO_ECLOSED || rc == PROTO_EIO || rc == PROTO_ETIMEDOUT;
}

int cli_mtg_change(struct cli_ctx *ctx, struct cli_mtg *m, const char *what,
                   const struct proto_buf *params, const char *method, struct cli_msg **out)
{
    struct cli_msg *r = NULL;

    *out = NULL;
    int rc = cli_conn_call(m->c, method, params->data, params->len, &r);
    if (rc != 0 && broken(rc)) {
        fprintf(ctx->err, "%s: the connection broke (%s); sending the change again\n", ctx->prog,
                proto_strerror(rc));
        cli_conn_free(m->c);
        m->c = NULL;
        if (cli_session_connect(ctx, &m->s, &m->c, NULL) != CLI_EXIT_OK) {
            return CLI_EXIT_FAIL;
        }
        rc = cli_conn_call(m->c, method, params->data, params->len, &r);
    }
    if (rc != 0 || r->error != NULL) {
        int code = cli_mtg_fail(ctx, m, what, rc, r);
        cli_msg_free(r);
        return code;
    }
    *out = r;
    return CLI_EXIT_OK;
}
