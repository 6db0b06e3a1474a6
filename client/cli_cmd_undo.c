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

/* A change of an import takes the whole import back (PROTOCOL.md section 12): asked on a
 * terminal unless yes, refused otherwise. True to go on. */
static bool confirm_import(struct cli_ctx *ctx, const msgpack_object *e, bool yes)
{
    int64_t first = 0, seq = 0;
    if (yes || !cli_obj_i64(e, "import", &first)) {
        return true;
    }
    cli_obj_i64(e, "seq", &seq);
    if (!ctx->interactive) {
        cli_fail(ctx,
                 "change %lld is part of the import that began at change %lld: reverting it "
                 "takes the whole import back; pass --yes to do that",
                 (long long)seq, (long long)first);
        return false;
    }
    char q[200];
    snprintf(q, sizeof(q),
             "Change %lld is part of the import that began at change %lld. Take the whole "
             "import back?",
             (long long)seq, (long long)first);
    if (cli_ask_yes(ctx, q)) {
        return true;
    }
    cli_fail(ctx, "nothing undone");
    return false;
}

/* Reverts the change of entry e and says what was undone. Returns an exit code. */
static int revert_entry(struct cli_ctx *ctx, struct cli_mtg *m, const msgpack_object *e, bool yes)
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
    if (!confirm_import(ctx, e, yes)) {
        return CLI_EXIT_FAIL;
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
    const msgpack_object *imp = proto_mp_map_get(r->result, "import");
    if (ctx->json) {
        json_t *j = json_object();
        if (j != NULL) {
            json_object_set_new(j, "seq", json_integer(now));
            json_object_set_new(j, "reverted", json_integer(seq));
            json_object_set_new(j, "summary", json_string(summary));
            json_object_set_new(j, "skipped", skipped ? cli_json_from_mp(skipped) : json_array());
            if (imp != NULL) {
                json_object_set_new(j, "import", cli_json_from_mp(imp));
            }
        }
        cli_msg_free(r);
        return cli_print_json(ctx, j);
    }
    if (imp != NULL) {
        int64_t first = 0, last = 0, n = 0;
        cli_obj_i64(imp, "first", &first);
        cli_obj_i64(imp, "last", &last);
        cli_obj_i64(imp, "reverted", &n);
        fprintf(
            ctx->out,
            "undid the import of changes %lld to %lld: %lld undoing changes (now at seq %lld)\n",
            (long long)first, (long long)last, (long long)n, (long long)now);
        const msgpack_object *left = proto_mp_map_get(imp, "skipped");
        if (left != NULL && left->type == MSGPACK_OBJECT_ARRAY && left->via.array.size > 0) {
            fputs("left as they are (undone or changed since): changes", ctx->out);
            for (uint32_t i = 0; i < left->via.array.size; i++) {
                const msgpack_object *s = &left->via.array.ptr[i];
                if (s->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                    fprintf(ctx->out, " %llu", (unsigned long long)s->via.u64);
                }
            }
            fputc('\n', ctx->out);
        }
        cli_msg_free(r);
        return ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
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
    bool yes = false;
    const struct cli_opt yes_opt[] = {
        {"yes", 0, CLI_OPT_FLAG, NULL, "take an import back without asking (scripts)", &yes, NULL},
    };
    const struct cli_usage u = {
        "undo",
        "[options]",
        "Undoes your own latest change to the meeting with a new change, and says what it\n"
        "undid. An undo is a change too: a second undo undoes the first. Fields that\n"
        "someone changed since are left as they are, and named. When that change was part\n"
        "of an import, the whole import is taken back, newest change first (asked first).",
        yes_opt,
        1,
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
    code = revert_entry(ctx, &m, e, yes);

cleanup:
    cli_msg_free(h);
    cli_mtg_close(&m);
    return code;
}

int cli_cmd_revert(struct cli_ctx *ctx, int argc, char **argv)
{
    bool yes = false;
    const struct cli_opt yes_opt[] = {
        {"yes", 0, CLI_OPT_FLAG, NULL, "take an import back without asking (scripts)", &yes, NULL},
    };
    const struct cli_usage u = {
        "revert",
        "SEQ [options]",
        "Undoes change SEQ of the meeting (its number in confer history) with a new change,\n"
        "and says what it undid. A created object is removed, a removed one comes back, a\n"
        "change of fields or text is taken back (fields changed since are left and named),\n"
        "a member gets the role from before. A change that an import made takes the\n"
        "whole import back (the rapporteur's, asked first on a terminal): each of its\n"
        "changes is undone, newest first, and those undone or changed since are left.",
        yes_opt,
        1,
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
    code = revert_entry(ctx, &m, e, yes);

cleanup:
    cli_msg_free(h);
    cli_mtg_close(&m);
    return code;
}
