/* cli_cmd_undo.c - undoing changes: confer undo (your own latest change) and confer revert
 * SEQ (any change), both with change.revert (PROTOCOL.md section 12). */
#include "cli_cmd.h"

#include <stdlib.h>
#include <string.h>

#include "cli_pack.h"
#include "cli_record.h"
#include "cli_render.h"

/* Reads the history entry of one change: history.list over (seq - 1, seq], or with user
 * set the user's latest change (seq 0). *out is the entry's response (free it) and *e the
 * entry, NULL when there is none. Returns an exit code. */
static int find_change(struct cli_ctx *ctx, struct cli_mtg *m, int64_t seq, const char *user,
                       struct cli_msg **out, const msgpack_object **e)
{
    int code;
    *e = NULL;
    /* history.list {meeting, since?, until?, user?, limit} -> [{"seq", "kind", "summary"...}] */
    if (user != NULL) {
        code = cli_mtg_call(ctx, m, "cannot read the history", out, "history.list",
                            "{s:s, s:s, s:i}", "meeting", m->id, "user", user, "limit", 1);
    } else {
        code = cli_mtg_call(ctx, m, "cannot read the history", out, "history.list",
                            "{s:s, s:I, s:I, s:i}", "meeting", m->id, "since", seq - 1, "until",
                            seq, "limit", 1);
    }
    if (code != CLI_EXIT_OK) {
        return code;
    }
    const msgpack_object *r = (*out)->result;
    if (r == NULL || r->type != MSGPACK_OBJECT_ARRAY) {
        return cli_fail(ctx, "cannot read the history: the server's answer is not a list");
    }
    if (r->via.array.size > 0) {
        *e = &r->via.array.ptr[0];
    }
    return CLI_EXIT_OK;
}

/* Reverts the change of entry e and says what was undone. Returns an exit code. */
static int revert_entry(struct cli_ctx *ctx, struct cli_mtg *m, const msgpack_object *e)
{
    int64_t seq = 0;
    char summary[512] = "", safe[512];
    char cid[CLI_CID_LEN + 1];
    char what[600];
    struct proto_buf b = {0};
    struct cli_msg *r = NULL;
    if (!cli_obj_i64(e, "seq", &seq)) {
        return cli_fail(ctx, "cannot read the history: an entry has no seq");
    }
    cli_obj_strcpy(e, "summary", summary, sizeof(summary));
    cli_sanitize(summary, strlen(summary), safe, sizeof(safe));
    snprintf(what, sizeof(what), "cannot undo change %lld (%s)", (long long)seq, safe);
    cli_cid_new(cid);
    /* change.revert {meeting, seq, cid} -> {"seq", "skipped"?} */
    if (cli_packf(&b, "{s:s, s:I, s:s}", "meeting", m->id, "seq", seq, "cid", cid) != 0) {
        proto_buf_free(&b, 0);
        return cli_fail(ctx, "out of memory");
    }
    int code = cli_mtg_change(ctx, m, what, &b, "change.revert", &r);
    proto_buf_free(&b, 0);
    if (code != CLI_EXIT_OK) {
        return code;
    }
    int64_t now = 0;
    const msgpack_object *skipped = proto_mp_map_get(r->result, "skipped");
    if (!cli_obj_i64(r->result, "seq", &now)) {
        cli_msg_free(r);
        return cli_fail(ctx, "the server's answer has no seq");
    }
    if (ctx->json) {
        json_t *j = json_object();
        if (j != NULL) {
            json_object_set_new(j, "seq", json_integer(now));
            json_object_set_new(j, "reverted", json_integer(seq));
            json_object_set_new(j, "summary", json_string(summary));
            json_object_set_new(j, "skipped", skipped ? cli_json_from_mp(skipped) : json_array());
        }
        cli_msg_free(r);
        return cli_print_json(ctx, j);
    }
    fprintf(ctx->out, "undid change %lld: %s (now at seq %lld)\n", (long long)seq, safe,
            (long long)now);
    if (skipped != NULL && skipped->type == MSGPACK_OBJECT_ARRAY && skipped->via.array.size > 0) {
        fputs("left as they are (changed since):", ctx->out);
        for (uint32_t i = 0; i < skipped->via.array.size; i++) {
            const msgpack_object *s = &skipped->via.array.ptr[i];
            if (s->type == MSGPACK_OBJECT_STR) {
                cli_sanitize(s->via.str.ptr, s->via.str.size, safe, sizeof(safe));
                fprintf(ctx->out, " %s", safe);
            }
        }
        fputc('\n', ctx->out);
    }
    cli_msg_free(r);
    return ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_undo(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "undo",
        "[options]",
        "Undoes your own latest change to the meeting with a new change, and says what it\n"
        "undid. An undo is a change too: a second undo undoes the first. Fields that\n"
        "someone changed since are left as they are, and named.",
        NULL,
        0,
        true,
        0,
        0,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *h = NULL;
    const msgpack_object *e = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK ||
        find_change(ctx, &m, 0, m.s.user, &h, &e) != CLI_EXIT_OK) {
        goto cleanup;
    }
    int64_t seq = 0;
    if (e == NULL || (cli_obj_i64(e, "seq", &seq) && seq < 2)) {
        /* seq 1 is the meeting's creation, which no revert undoes */
        code = cli_fail(ctx, "you have made no change to meeting %s that can be undone", m.id);
        goto cleanup;
    }
    code = revert_entry(ctx, &m, e);

cleanup:
    cli_msg_free(h);
    cli_mtg_close(&m);
    return code;
}

int cli_cmd_revert(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "revert",
        "SEQ [options]",
        "Undoes change SEQ of the meeting (its number in confer history) with a new change,\n"
        "and says what it undid. A created object is removed, a removed one comes back, a\n"
        "change of fields or text is taken back (fields changed since are left and named),\n"
        "a member gets the role from before.",
        NULL,
        0,
        true,
        1,
        1,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *h = NULL;
    const msgpack_object *e = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    char *end = NULL;
    long long seq = strtoll(a.v[0], &end, 10);
    if (a.v[0][0] == '\0' || *end != '\0' || seq < 2) {
        return cli_usage_error(ctx, "revert",
                               "SEQ must be the number of a change (2 or more): %s history "
                               "lists them",
                               ctx->prog);
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK ||
        find_change(ctx, &m, seq, NULL, &h, &e) != CLI_EXIT_OK) {
        goto cleanup;
    }
    int64_t got = 0;
    if (e == NULL || !cli_obj_i64(e, "seq", &got) || got != seq) {
        code = cli_fail(ctx, "meeting %s has no change %lld: %s history lists them", m.id, seq,
                        ctx->prog);
        goto cleanup;
    }
    code = revert_entry(ctx, &m, e);

cleanup:
    cli_msg_free(h);
    cli_mtg_close(&m);
    return code;
}
