/* cli_cmd_report.c - reading the report: confer agenda, show, history, export and import
 * (confer audit is in cli_cmd_audit.c). */
#include "cli_cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_names.h"
#include "cli_pack.h"
#include "cli_record.h"
#include "cli_render.h"

#define REPORT_MAX (4 << 20) /* the largest report the server imports */

/* ---- confer agenda ---- */

/* Prints the doc names of an agenda item, wrapped to the width, indented by indent. */
static void print_docs(struct cli_ctx *ctx, const msgpack_object *docs, size_t indent)
{
    size_t width = cli_width_or_all(ctx->width);
    size_t col = 0;
    for (uint32_t i = 0; docs != NULL && i < docs->via.array.size; i++) {
        char raw[CLI_REF_MAX + CLI_REV_MAX];
        char name[CLI_REF_MAX + CLI_REV_MAX];
        cli_docref_format(&docs->via.array.ptr[i], raw, sizeof(raw));
        cli_sanitize(raw, strlen(raw), name, sizeof(name));
        size_t w = proto_utf8_count(name, strlen(name));
        bool last = i + 1 == docs->via.array.size;
        if (col == 0) {
            fprintf(ctx->out, "%*s", (int)indent, "");
            col = indent;
        } else if (col + 1 + w + 1 > width) {
            fprintf(ctx->out, "\n%*s", (int)indent, "");
            col = indent;
        } else {
            fputc(' ', ctx->out);
            col++;
        }
        fprintf(ctx->out, "%s%s", name, last ? "" : ",");
        col += w + 1;
    }
    if (col > 0) {
        fputc('\n', ctx->out);
    }
}

int cli_cmd_agenda(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "agenda",
        "[options]",
        "Shows the agenda: the items in order, each with its number, its title, who is\n"
        "in it now (\xe2\x97\x8f associate) and the documents filed under it (REF and\n"
        "revision), then the sessions held. `confer show ITEM` prints an item's text.",
        NULL,
        0,
        true,
        0,
        0,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    const msgpack_object *items = NULL;
    const msgpack_object *sessions = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* agenda.get {meeting} -> {"seq", "items": [{"id", "number", "title", "docs"}], "sessions"} */
    if (cli_mtg_call(ctx, &m, "cannot read the agenda", &r, "agenda.get", "{s: s}", "meeting",
                     m.id) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    if (proto_param_array(r->result, "items", &items) != 0 ||
        proto_param_array(r->result, "sessions", &sessions) != 0) {
        code = cli_fail(ctx, "cannot read the agenda: the server's answer has no items");
        goto cleanup;
    }
    struct cli_msg *pres = cli_presence_fetch(&m);
    size_t width = cli_width_or_all(ctx->width);
    size_t numw = 1;
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        char num[40];
        cli_obj_strcpy(&items->via.array.ptr[i], "number", num, sizeof(num));
        numw = strlen(num) > numw ? strlen(num) : numw;
    }
    if (items->via.array.size == 0) {
        fprintf(ctx->out, "no agenda items yet: add one with %s items add NUMBER TITLE\n",
                ctx->prog);
    }
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        const msgpack_object *docs = NULL;
        char raw[40];
        char num[40];
        char title[2048];
        char fitted[2048];
        cli_obj_strcpy(it, "number", raw, sizeof(raw));
        cli_sanitize(raw, strlen(raw), num, sizeof(num));
        cli_obj_strcpy(it, "title", title, sizeof(title));
        int64_t id = 0;
        char who[256] = "";
        if (cli_obj_i64(it, "id", &id)) {
            cli_presence_in(pres, "item", id, NULL, who, sizeof(who));
        }
        size_t whow = who[0] ? proto_utf8_count(who, strlen(who)) + 4 : 0;
        cli_fit(title, width > numw + 2 + whow ? width - numw - 2 - whow : 3, fitted,
                sizeof(fitted));
        fprintf(ctx->out, "%-*s  %s%s%s\n", (int)numw, num, fitted, who[0] ? "  \xe2\x97\x8f " : "",
                who); /* U+25CF */
        if (proto_param_array(it, "docs", &docs) == 0) {
            print_docs(ctx, docs, numw + 2);
        }
    }
    fprintf(ctx->out, "\nsessions:\n");
    if (sessions->via.array.size == 0) {
        fprintf(ctx->out, "none yet\n");
        code = CLI_EXIT_OK;
    } else {
        code = cli_obj_table(ctx, PROTO_T_SESSION, NULL, sessions);
    }
    if (ferror(ctx->out)) {
        code = CLI_EXIT_FAIL;
    }
    cli_msg_free(pres);

cleanup:
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* ---- confer show ITEM ---- */

/* Prints one line of a body: a leading "·" or "- " becomes "• ". */
static void print_body_line(struct cli_ctx *ctx, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    size_t skip = 0;
    if (n - i >= 2 && (unsigned char)s[i] == 0xc2 && (unsigned char)s[i + 1] == 0xb7) {
        skip = 2; /* U+00B7 middle dot */
    } else if (n - i >= 3 && memcmp(s + i, "\xe2\x80\xa2", 3) == 0) {
        skip = 3; /* U+2022 bullet */
    } else if (n - i >= 2 && s[i] == '-' && s[i + 1] == ' ') {
        skip = 1;
    }
    if (skip == 0) {
        cli_text_print(ctx->out, s, n);
        fputc('\n', ctx->out);
        return;
    }
    i += skip;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    fputs("\xe2\x80\xa2 ", ctx->out);
    cli_text_print(ctx->out, s + i, n - i);
    fputc('\n', ctx->out);
}

int cli_cmd_show(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "show",
        "ITEM [options]",
        "Prints the agenda item ITEM (its number, e.g. 3 or 4.1, or #ID): the number and\n"
        "title, a rule, who is in the section now, then its text.",
        NULL,
        0,
        true,
        1,
        1,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK || cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
        goto cleanup;
    }
    const msgpack_object *it = cli_rec_find(m.rec, PROTO_T_ITEM, a.v[0]);
    if (it == NULL) {
        code = cli_fail(ctx, "no item %s in meeting %s: %s agenda lists the items", a.v[0], m.id,
                        ctx->prog);
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(it));
        goto cleanup;
    }
    char raw[2048];
    char head[2100];
    char num[40];
    cli_obj_strcpy(it, "number", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), num, sizeof(num));
    cli_obj_strcpy(it, "title", raw, sizeof(raw));
    snprintf(head, sizeof(head), "%s  %s", num, raw);
    size_t width = cli_width_or_all(ctx->width);
    char fitted[2200];
    cli_fit(head, width, fitted, sizeof(fitted));
    fprintf(ctx->out, "%s\n", fitted);
    size_t rule = proto_utf8_count(fitted, strlen(fitted));
    for (size_t i = 0; i < rule; i++) {
        fputs("\xe2\x94\x80", ctx->out); /* U+2500 */
    }
    fputc('\n', ctx->out);
    int64_t id = 0;
    char who[256] = "";
    struct cli_msg *pres = cli_obj_i64(it, "id", &id) ? cli_presence_fetch(&m) : NULL;
    cli_presence_in(pres, "item", id, NULL, who, sizeof(who));
    cli_msg_free(pres);
    if (who[0]) {
        fprintf(ctx->out, "\xe2\x97\x8f %s %s in this section now\n\n", who,
                strchr(who, ',') ? "are" : "is");
    }
    size_t n = 0;
    const char *body = cli_obj_str(it, "body", &n);
    while (body != NULL && n > 0) {
        const char *nl = memchr(body, '\n', n);
        size_t len = nl != NULL ? (size_t)(nl - body) : n;
        print_body_line(ctx, body, len);
        body += len + (nl != NULL ? 1 : 0);
        n -= len + (nl != NULL ? 1 : 0);
    }
    code = ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;

cleanup:
    cli_mtg_close(&m);
    return code;
}

/* ---- confer history ---- */

/* What `confer revert SEQ` would do to a change of this kind (PROTOCOL.md section 12). */
static const char *revert_would(const char *kind, int64_t seq, bool import)
{
    if (seq == 1) {
        return "-"; /* the meeting's creation */
    }
    if (import) {
        return "take the whole import back";
    }
    if (strcmp(kind, "create") == 0) {
        return "remove it";
    }
    if (strcmp(kind, "delete") == 0) {
        return "bring it back, with its links";
    }
    if (strcmp(kind, "update") == 0) {
        return "put the fields back (unless changed since)";
    }
    if (strcmp(kind, "text") == 0) {
        return "take the edit back";
    }
    if (strcmp(kind, "member") == 0) {
        return "put the role back";
    }
    return "-";
}

/* The newest seq at which the object of history entry e still stood: before its delete,
 * else at the entry itself. */
static int64_t stood_at(const msgpack_object *e)
{
    char kind[16];
    int64_t seq = 0;
    cli_obj_strcpy(e, "kind", kind, sizeof(kind));
    cli_obj_i64(e, "seq", &seq);
    return strcmp(kind, "delete") == 0 ? seq - 1 : seq;
}

/* Names the objects of the history list as people know them: from the record as it is,
 * then, for objects removed since, from the record when they last stood (a few reads of
 * meeting.get at a seq). */
static int name_history(struct cli_ctx *ctx, struct cli_mtg *m, const msgpack_object *list,
                        struct cli_names *nm)
{
    enum { OLD_READS = 8 };
    if (m->rec == NULL && cli_mtg_fetch(ctx, m) != CLI_EXIT_OK) {
        return CLI_EXIT_FAIL;
    }
    if (cli_names_add_record(nm, m->rec, true) != 0) {
        return cli_fail(ctx, "out of memory");
    }
    for (int reads = 0; reads < OLD_READS; reads++) {
        /* The newest seq that names an object still unknown. */
        int64_t at = 0;
        for (uint32_t i = 0; i < list->via.array.size; i++) {
            const msgpack_object *e = &list->via.array.ptr[i];
            char type[16];
            int64_t id = 0;
            cli_obj_strcpy(e, "type", type, sizeof(type));
            if (cli_obj_i64(e, "id", &id) && !cli_names_known(nm, type, id) && stood_at(e) > at) {
                at = stood_at(e);
            }
        }
        if (at < 1) {
            break;
        }
        struct cli_msg *old = NULL;
        int code = cli_mtg_call(ctx, m, "cannot read the record", &old, "meeting.get", "{s:s, s:I}",
                                "meeting", m->id, "at", at);
        if (code != CLI_EXIT_OK) {
            return code;
        }
        int rc = cli_names_add_record(nm, old->result, false);
        /* What that record does not hold either keeps its id, and is not asked again. */
        for (uint32_t i = 0; rc == 0 && i < list->via.array.size; i++) {
            const msgpack_object *e = &list->via.array.ptr[i];
            char type[16];
            int64_t id = 0;
            cli_obj_strcpy(e, "type", type, sizeof(type));
            if (cli_obj_i64(e, "id", &id) && stood_at(e) == at && !cli_names_known(nm, type, id)) {
                rc = cli_names_mark(nm, type, id);
            }
        }
        cli_msg_free(old);
        if (rc != 0) {
            return cli_fail(ctx, "out of memory");
        }
    }
    return CLI_EXIT_OK;
}

/* The change of history entry e as people read it: "update RG-IEM-4: status". */
static void describe(const struct cli_names *nm, const msgpack_object *e, char *out, size_t cap)
{
    char summary[512];
    cli_obj_strcpy(e, "summary", summary, sizeof(summary));
    const char *details = strstr(summary, ": ");
    cli_names_change(nm, e, details ? details + 2 : "", out, cap);
}

int cli_cmd_history(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *item = NULL;
    const char *user = NULL;
    const char *type = NULL;
    const char *limit = NULL;
    const struct cli_opt opts[] = {
        {"item", 0, CLI_OPT_STR, "ITEM", "only the changes to this agenda item (number or #ID)",
         NULL, &item},
        {"user", 0, CLI_OPT_STR, "USER", "only the changes made by this account", NULL, &user},
        {"type", 0, CLI_OPT_STR, "TYPE",
         "only changes to this type: meeting, session, item, doc, action, decision, interim, "
         "person or member",
         NULL, &type},
        {"limit", 0, CLI_OPT_STR, "N", "at most N changes (1-1000; default 100)", NULL, &limit},
    };
    const struct cli_usage u = {
        "history",
        "[options]",
        "Lists the changes to the meeting, newest first: the seq, when (in local time),\n"
        "who, what changed, and what `confer revert SEQ` would do to undo it.",
        opts,
        sizeof(opts) / sizeof(opts[0]),
        true,
        0,
        0,
        true,
    };
    const char *headers[] = {"SEQ", "WHEN", "USER", "CHANGE", "REVERT WOULD"};
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct cli_table *t = NULL;
    struct cli_names *nm = NULL;
    struct proto_buf b = {0};
    int code = CLI_EXIT_FAIL;
    long lim = 0;
    int64_t item_id = 0;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (limit != NULL) {
        char *end = NULL;
        lim = strtol(limit, &end, 10);
        if (*end != '\0' || lim < 1 || lim > 1000) {
            return cli_usage_error(ctx, "history", "--limit wants a number from 1 to 1000");
        }
    }
    if (type != NULL && strcmp(type, "member") != 0 &&
        proto_type_find(type, strlen(type)) == PROTO_T_COUNT) {
        return cli_usage_error(ctx, "history",
                               "--type must be meeting, session, item, doc, action, decision, "
                               "interim, person or member");
    }
    if (item != NULL && type != NULL && strcmp(type, "item") != 0) {
        return cli_usage_error(ctx, "history", "--item and --type %s do not go together", type);
    }
    if (user != NULL && !proto_name_valid(user, strlen(user))) {
        return cli_usage_error(ctx, "history", "not an account name: '%s'", user);
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (item != NULL) {
        if (cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
            goto cleanup;
        }
        const msgpack_object *it = cli_rec_find(m.rec, PROTO_T_ITEM, item);
        if (it == NULL || !cli_obj_i64(it, "id", &item_id)) {
            code = cli_fail(ctx, "no item %s in meeting %s: %s agenda lists the items", item, m.id,
                            ctx->prog);
            goto cleanup;
        }
        type = "item";
    }
    /* history.list {meeting, limit?, user?, type?, id?} ->
     * [{"seq", "time", "user", "kind", "type", "id", "summary", "hash"}] */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 1 + (lim > 0) + (user != NULL) + (type != NULL) + (item != NULL));
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, m.id);
    if (lim > 0) {
        proto_pack_cstr(&pk, "limit");
        msgpack_pack_int64(&pk, lim);
    }
    if (user != NULL) {
        proto_pack_cstr(&pk, "user");
        proto_pack_cstr(&pk, user);
    }
    if (type != NULL) {
        proto_pack_cstr(&pk, "type");
        proto_pack_cstr(&pk, type);
    }
    if (item != NULL) {
        proto_pack_cstr(&pk, "id");
        msgpack_pack_int64(&pk, item_id);
    }
    if (cli_mtg_call(ctx, &m, "cannot read the history", &r, "history.list", "r", b.data, b.len) !=
        CLI_EXIT_OK) {
        goto cleanup;
    }
    if (r->result->type != MSGPACK_OBJECT_ARRAY) {
        code = cli_fail(ctx, "cannot read the history: the server's answer is not a list");
        goto cleanup;
    }
    if ((nm = cli_names_new()) == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    if (name_history(ctx, &m, r->result, nm) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        /* The entries as the server gave them, with the names people read added. */
        json_t *j = cli_json_from_mp(r->result);
        for (uint32_t i = 0; j != NULL && i < r->result->via.array.size; i++) {
            const msgpack_object *e = &r->result->via.array.ptr[i];
            char name[CLI_NAME_MAX], change[700];
            cli_names_of(nm, e, name, sizeof(name));
            describe(nm, e, change, sizeof(change));
            json_object_set_new(json_array_get(j, i), "name", json_string(name));
            json_object_set_new(json_array_get(j, i), "change", json_string(change));
        }
        code = cli_print_json(ctx, j);
        goto cleanup;
    }
    if (r->result->via.array.size == 0) {
        fprintf(ctx->out, "no changes%s\n", item || user || type ? " match" : " yet");
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    t = cli_table_new(5, headers);
    if (t == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    int64_t now = proto_now_ms();
    for (uint32_t i = 0; i < r->result->via.array.size; i++) {
        const msgpack_object *e = &r->result->via.array.ptr[i];
        int64_t seq = 0;
        int64_t ms = 0;
        char seqs[24] = "";
        char when[128] = "";
        char at[64];
        char ago[32];
        char who[PROTO_NAME_MAX + 1];
        char summary[700];
        if (cli_obj_i64(e, "seq", &seq)) {
            snprintf(seqs, sizeof(seqs), "%lld", (long long)seq);
        }
        if (cli_obj_i64(e, "time", &ms)) {
            cli_render_time(ms, at, sizeof(at));
            cli_render_ago(ms, now, ago, sizeof(ago));
            snprintf(when, sizeof(when), "%s (%s)", at, ago);
        }
        cli_obj_strcpy(e, "user", who, sizeof(who));
        describe(nm, e, summary, sizeof(summary));
        char kind[16] = "";
        cli_obj_strcpy(e, "kind", kind, sizeof(kind));
        int64_t import = 0;
        const char *undo = revert_would(kind, seq, cli_obj_i64(e, "import", &import));
        const char *cells[] = {seqs, when, who, summary, undo};
        if (cli_table_add(t, cells) != 0) {
            code = cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    }
    code = cli_table_print(t, ctx->out, ctx->width) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;

cleanup:
    proto_buf_free(&b, 0);
    cli_names_free(nm);
    cli_table_free(t);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* ---- confer export ---- */

int cli_cmd_export(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL;
    const char *at = NULL;
    const char *file = NULL;
    const struct cli_opt opts[] = {
        {"format", 0, CLI_OPT_STR, "text|markdown|html", "the report's format (default text)", NULL,
         &format},
        {"at", 0, CLI_OPT_STR, "SEQ", "the report as it was at this seq (see confer history)", NULL,
         &at},
        {"output", 'o', CLI_OPT_STR, "FILE", "write the report to FILE (mode 0644, atomically)",
         NULL, &file},
    };
    const struct cli_usage u = {
        "export",
        "[options]",
        "Prints the meeting's report, or writes it to FILE with -o. The report ends with\n"
        "the head of the meeting's audit log, signed by the server's host key: `confer\n"
        "audit check FILE` checks a saved report later. The signature is checked now (a\n"
        "bad one fails and writes nothing) and the head kept for `confer audit verify`.",
        opts,
        sizeof(opts) / sizeof(opts[0]),
        true,
        0,
        0,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct proto_buf b = {0};
    int code = CLI_EXIT_FAIL;
    long long seq_at = 0;
    char err[1024];

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (format == NULL) {
        format = "text";
    }
    if (strcmp(format, "text") != 0 && strcmp(format, "markdown") != 0 &&
        strcmp(format, "html") != 0) {
        return cli_usage_error(ctx, "export", "--format must be text, markdown or html");
    }
    if (at != NULL) {
        char *end = NULL;
        seq_at = strtoll(at, &end, 10);
        if (*end != '\0' || seq_at < 1) {
            return cli_usage_error(ctx, "export", "--at wants a seq (a number from 1)");
        }
    }
    if (file != NULL && file[0] == '\0') {
        return cli_usage_error(ctx, "export", "-o wants a file name");
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* report.export {meeting, format, at?} -> {"seq", "content"} */
    int rc = at != NULL ? cli_mtg_call(ctx, &m, "cannot export the report", &r, "report.export",
                                       "{s: s, s: s, s: I}", "meeting", m.id, "format", format,
                                       "at", (int64_t)seq_at)
                        : cli_mtg_call(ctx, &m, "cannot export the report", &r, "report.export",
                                       "{s: s, s: s}", "meeting", m.id, "format", format);
    if (rc != CLI_EXIT_OK) {
        goto cleanup;
    }
    const char *content = NULL;
    size_t len = 0;
    int64_t seq = 0;
    if (proto_param_str(r->result, "content", &content, &len) != 0) {
        code = cli_fail(ctx, "cannot export the report: the server's answer has no content");
        goto cleanup;
    }
    (void)proto_param_i64(r->result, "seq", &seq);
    /* Before anything is written: a report whose signed head does not hold is worth
     * nothing as a record, and one that holds is kept as the newest head seen. */
    if (cli_export_head_check(ctx, &m, content, len) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (file != NULL) {
        if (cli_file_write_atomic(file, content, len, 0644, err, sizeof(err)) != 0) {
            code = cli_fail(ctx, "%s", err);
            goto cleanup;
        }
        if (ctx->json) {
            json_t *j = json_object();
            json_object_set_new(j, "seq", json_integer(seq));
            json_object_set_new(j, "file", json_string(file));
            json_object_set_new(j, "bytes", json_integer((json_int_t)len));
            code = cli_print_json(ctx, j);
        } else {
            fprintf(ctx->err, "%s: wrote the report of %s (seq %lld, %s) to %s\n", ctx->prog, m.id,
                    (long long)seq, format, file);
            code = CLI_EXIT_OK;
        }
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    code = cli_text_print(ctx->out, content, len) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (len > 0 && content[len - 1] != '\n') {
        fputc('\n', ctx->out);
    }

cleanup:
    proto_buf_free(&b, 0);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* ---- confer import ---- */

/* Reads all of fd into a malloc'd buffer of at most max bytes. Returns 0, PROTO_ETOOBIG,
 * PROTO_EIO or PROTO_ENOMEM. */
static int read_all(int fd, size_t max, char **out, size_t *len)
{
    size_t cap = 65536;
    size_t n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        return PROTO_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                return PROTO_ETOOBIG;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                return PROTO_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            free(buf);
            return PROTO_EIO;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    if (n > max) {
        free(buf);
        return PROTO_ETOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* The name of a type as people say it, plural ("items"); name has room for 32 bytes. */
static void type_plural(const msgpack_object *k, char *name, size_t size)
{
    enum proto_type t = proto_type_find(k->via.str.ptr, k->via.str.size);
    if (t != PROTO_T_COUNT) {
        snprintf(name, size, "%s", proto_type_info(t)->plural);
    } else {
        cli_sanitize(k->via.str.ptr, k->via.str.size, name, size);
    }
}

/* A conflict on mode "new": what the meeting holds, and what to do. */
static int import_conflict(struct cli_ctx *ctx, const struct cli_mtg *m, const struct cli_msg *r,
                           const char *file)
{
    const msgpack_object *held = NULL;
    char what[512] = "";
    size_t n = 0;
    if (r->data != NULL && proto_param_map(r->data, "counts", &held) == 0) {
        for (uint32_t i = 0; i < held->via.map.size && n + 64 < sizeof(what); i++) {
            const msgpack_object *k = &held->via.map.ptr[i].key;
            const msgpack_object *v = &held->via.map.ptr[i].val;
            char name[32];
            if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                continue;
            }
            type_plural(k, name, sizeof(name));
            n += (size_t)snprintf(what + n, sizeof(what) - n, "%s%llu %s", n > 0 ? ", " : "",
                                  (unsigned long long)v->via.u64, name);
        }
    }
    return cli_fail(ctx,
                    "cannot import the report: meeting %s is not empty (it holds %s): add to it "
                    "with %s import %s --merge, or import into a new meeting",
                    m->id, n > 0 ? what : "objects", ctx->prog, file);
}

int cli_cmd_import(struct cli_ctx *ctx, int argc, char **argv)
{
    bool merge = false;
    const struct cli_opt opts[] = {
        {"merge", 0, CLI_OPT_FLAG, NULL,
         "add to a meeting that has content: objects it has are updated, the others added", &merge,
         NULL},
    };
    const struct cli_usage u = {
        "import",
        "FILE [options]",
        "Reads FILE (\"-\": standard input), a report in the layout of the meeting reports or\n"
        "a text or Markdown export of confer, into the meeting: its fields, items with their\n"
        "text, sessions, people, actions, documents, agreements and interim meetings, and\n"
        "says per type what it created, updated and left unchanged. Into a meeting that has\n"
        "content already, use --merge: items are matched by number, documents by ref and\n"
        "revision, actions by ref, sessions and interim meetings by date and start, people\n"
        "by name, agreements by item and text; nothing is deleted. All or nothing.\n"
        "Rapporteur only.",
        opts,
        1,
        true,
        1,
        1,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct proto_buf req = {0};
    char *text = NULL;
    size_t len = 0;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    int rc = 0;
    if (strcmp(a.v[0], "-") == 0) {
        rc = read_all(ctx->in_fd, REPORT_MAX, &text, &len);
    } else {
        rc = cli_config_read_file(a.v[0], &text, &len);
    }
    if (rc == PROTO_ENOTFOUND) {
        return cli_fail(ctx, "cannot read %s: no such file", a.v[0]);
    }
    if (rc == PROTO_ETOOBIG) {
        return cli_fail(ctx, "%s is too large to import (at most %d MiB)", a.v[0],
                        strcmp(a.v[0], "-") == 0 ? REPORT_MAX >> 20 : CLI_FILE_MAX >> 20);
    }
    if (rc != 0) {
        return cli_fail(ctx, "cannot read %s: %s", a.v[0], proto_strerror(rc));
    }
    if (!proto_utf8_valid(text, len)) {
        code = cli_fail(ctx, "%s is not UTF-8 text: save the report as plain UTF-8 text", a.v[0]);
        goto cleanup;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* report.import {meeting, text, mode} -> {"seq", "counts": {type: {created, updated,
     * unchanged}}}; mode new refused: conflict with data.counts {type: n}. */
    rc = cli_packf(&req, "{s: s, s: S, s: s}", "meeting", m.id, "text", text, len, "mode",
                   merge ? "merge" : "new");
    if (rc != 0) {
        code = cli_fail(ctx, "cannot import the report: cannot pack the request (%s)",
                        proto_strerror(rc));
        goto cleanup;
    }
    rc = cli_conn_call(m.c, "report.import", req.data, req.len, &r);
    if (rc == 0 && r->error != NULL && r->code != NULL && strcmp(r->code, "conflict") == 0 &&
        !merge) {
        code = import_conflict(ctx, &m, r, a.v[0]);
        goto cleanup;
    }
    if (rc != 0 || r->error != NULL) {
        code = cli_mtg_fail(ctx, &m, "cannot import the report", rc, r);
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    const msgpack_object *counts = NULL;
    int64_t seq = 0;
    (void)proto_param_i64(r->result, "seq", &seq);
    fprintf(ctx->out, "imported into meeting %s (seq %lld):\n", m.id, (long long)seq);
    if (proto_param_map(r->result, "counts", &counts) != 0) {
        counts = NULL;
    }
    fprintf(ctx->out, "  %-12s %8s %8s %10s\n", "", "created", "updated", "unchanged");
    for (uint32_t i = 0; counts != NULL && i < counts->via.map.size; i++) {
        const msgpack_object *k = &counts->via.map.ptr[i].key;
        const msgpack_object *v = &counts->via.map.ptr[i].val;
        int64_t c = 0, up = 0, un = 0;
        char name[32];
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_MAP) {
            continue;
        }
        (void)proto_param_i64(v, "created", &c);
        (void)proto_param_i64(v, "updated", &up);
        (void)proto_param_i64(v, "unchanged", &un);
        type_plural(k, name, sizeof(name));
        fprintf(ctx->out, "  %-12s %8lld %8lld %10lld\n", name, (long long)c, (long long)up,
                (long long)un);
    }
    code = ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;

cleanup:
    proto_buf_free(&req, 0);
    free(text);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}
