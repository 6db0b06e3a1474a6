/* cli_cmd_meeting.c - confer use, meetings, meeting, members. */
#include "cli_cmd.h"

#include <stdlib.h>
#include <string.h>

#include "cli_pack.h"
#include "cli_record.h"
#include "cli_render.h"

/* ---- confer use ---- */

/* Finds the entry of meeting id in a meeting.list result. */
static const msgpack_object *list_find(const msgpack_object *list, const char *id)
{
    for (uint32_t i = 0;
         list != NULL && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++) {
        size_t n = 0;
        const char *v = cli_obj_str(&list->via.array.ptr[i], "id", &n);
        if (v != NULL && n == strlen(id) && memcmp(v, id, n) == 0) {
            return &list->via.array.ptr[i];
        }
    }
    return NULL;
}

int cli_cmd_use(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "use",
        "[MEETING] [options]",
        "Chooses the meeting that the other commands work on, after checking that you are\n"
        "a member of it, and keeps it in the session file. `-m MEETING` on another command\n"
        "overrides it once. Without MEETING, shows the meeting chosen now.",
        NULL,
        0,
        true,
        0,
        1,
        false,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    int code = CLI_EXIT_FAIL;
    char err[1024];

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (a.n == 0) {
        if (cli_session_get(ctx, &m.s) != CLI_EXIT_OK) {
            goto cleanup;
        }
        if (m.s.meeting[0] == '\0') {
            code = cli_fail(ctx, "no meeting chosen: run %s use MEETING (%s meetings lists yours)",
                            ctx->prog, ctx->prog);
            goto cleanup;
        }
        if (ctx->json) {
            json_t *j = json_object();
            json_object_set_new(j, "meeting", json_string(m.s.meeting));
            code = cli_print_json(ctx, j);
        } else {
            fprintf(ctx->out, "using meeting %s\n", m.s.meeting);
            code = CLI_EXIT_OK;
        }
        goto cleanup;
    }
    if (!proto_name_valid(a.v[0], strlen(a.v[0]))) {
        return cli_usage_error(ctx, "use",
                               "not a meeting id: '%s' (lower-case letters, digits, '.', '_', "
                               "'-'); %s meetings lists yours",
                               a.v[0], ctx->prog);
    }
    ctx->meeting = a.v[0];
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* meeting.list {} -> [{"id", "title", "start", "end", "status", "role"}] */
    if (cli_mtg_call(ctx, &m, "cannot list your meetings", &r, "meeting.list", NULL) !=
        CLI_EXIT_OK) {
        goto cleanup;
    }
    const msgpack_object *e = list_find(r->result, m.id);
    if (e == NULL) {
        code =
            cli_fail(ctx, "no meeting %s, or you are not a member of it: ask its rapporteur", m.id);
        goto cleanup;
    }
    char raw[512];
    char role[32];
    char title[512];
    cli_obj_strcpy(e, "role", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), role, sizeof(role));
    if (role[0] == '\0') {
        code = cli_fail(ctx,
                        "you have no role in meeting %s (an operator sees every meeting): ask "
                        "its rapporteur to add you",
                        m.id);
        goto cleanup;
    }
    /* save it in a fresh copy of the session file: only the meeting changes */
    struct cli_session s;
    if (cli_session_load(&s, ctx->paths.session, ctx->err) != 0) {
        code = cli_fail(ctx, "cannot read %s", ctx->paths.session);
        goto cleanup;
    }
    snprintf(s.meeting, sizeof(s.meeting), "%s", m.id);
    int rc = cli_session_save(&s, ctx->paths.session, err, sizeof(err));
    cli_session_wipe(&s);
    if (rc != 0) {
        code = cli_fail(ctx, "cannot save the session: %s", err);
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(e));
        goto cleanup;
    }
    cli_obj_strcpy(e, "title", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), title, sizeof(title));
    fprintf(ctx->out, "using meeting %s%s%s (your role: %s)\n", m.id, title[0] ? ": " : "", title,
            role);
    code = CLI_EXIT_OK;

cleanup:
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* ---- confer meetings ---- */

static int cmp_by_id(const void *a, const void *b)
{
    const msgpack_object *x = *(const msgpack_object *const *)a;
    const msgpack_object *y = *(const msgpack_object *const *)b;
    char ix[PROTO_NAME_MAX + 1];
    char iy[PROTO_NAME_MAX + 1];
    return strcmp(cli_obj_strcpy(x, "id", ix, sizeof(ix)), cli_obj_strcpy(y, "id", iy, sizeof(iy)));
}

int cli_cmd_meetings(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "meetings",
        "[options]",
        "Lists the meetings you are a member of (an operator sees all of them), with your\n"
        "role in each. Choose one with `confer use MEETING`.",
        NULL,
        0,
        true,
        0,
        0,
        false,
    };
    const char *headers[] = {"ID", "TITLE", "DATES", "STATUS", "ROLE"};
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct cli_table *t = NULL;
    const msgpack_object **v = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, false) != CLI_EXIT_OK ||
        cli_mtg_call(ctx, &m, "cannot list your meetings", &r, "meeting.list", NULL) !=
            CLI_EXIT_OK) {
        goto cleanup;
    }
    if (r->result->type != MSGPACK_OBJECT_ARRAY) {
        code = cli_fail(ctx, "cannot list your meetings: the server's answer is not a list");
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    uint32_t n = r->result->via.array.size;
    if (n == 0) {
        fprintf(ctx->out, "no meetings: a meeting's rapporteur adds you with %s members set\n",
                ctx->prog);
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    v = calloc(n, sizeof(*v));
    t = cli_table_new(5, headers);
    if (v == NULL || t == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; i < n; i++) {
        v[i] = &r->result->via.array.ptr[i];
    }
    qsort(v, n, sizeof(*v), cmp_by_id);
    for (uint32_t i = 0; i < n; i++) {
        char id[PROTO_NAME_MAX + 1];
        char title[512];
        char start[CLI_DATE_LEN];
        char end[CLI_DATE_LEN];
        char dates[32];
        char status[16];
        char role[32];
        cli_obj_strcpy(v[i], "id", id, sizeof(id));
        cli_obj_strcpy(v[i], "title", title, sizeof(title));
        cli_obj_strcpy(v[i], "start", start, sizeof(start));
        cli_obj_strcpy(v[i], "end", end, sizeof(end));
        cli_obj_strcpy(v[i], "status", status, sizeof(status));
        cli_obj_strcpy(v[i], "role", role, sizeof(role));
        if (start[0] != '\0' && end[0] != '\0' && strcmp(start, end) != 0) {
            snprintf(dates, sizeof(dates), "%s..%s", start, end);
        } else {
            snprintf(dates, sizeof(dates), "%s", start[0] != '\0' ? start : end);
        }
        if (strcmp(id, m.s.meeting) == 0) {
            strncat(id, " *", sizeof(id) - strlen(id) - 1);
        }
        const char *cells[] = {id, title, dates, status, role[0] != '\0' ? role : "-"};
        if (cli_table_add(t, cells) != 0) {
            code = cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    }
    code = cli_table_print(t, ctx->out, ctx->width) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;

cleanup:
    free(v);
    cli_table_free(t);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* ---- confer meeting [show|set|create] ---- */

/* Prints a text field: an indented paragraph per line. */
static void print_para(struct cli_ctx *ctx, const char *s, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(s, '\n', n);
        size_t len = nl != NULL ? (size_t)(nl - s) : n;
        fputs("  ", ctx->out);
        cli_text_print(ctx->out, s, len);
        fputc('\n', ctx->out);
        s += len + (nl != NULL ? 1 : 0);
        n -= len + (nl != NULL ? 1 : 0);
    }
}

static int meeting_show(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "meeting",
        "[show] [options]\n"
        "set [options]       (see confer meeting set --help)\n"
        "create ID --rapporteur USER [options]   (see confer meeting create --help)",
        "Shows the fields of the meeting: title, group, venue, dates, time zone, the\n"
        "report's reference, the action prefix, the contribution deadline, the status and\n"
        "the abstract, and how many objects its record holds.",
        NULL,
        0,
        true,
        0,
        0,
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
    const msgpack_object *mt = cli_rec_objects(m.rec, PROTO_T_MEETING);
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(mt));
        goto cleanup;
    }
    const struct proto_typeinfo *ti = proto_type_info(PROTO_T_MEETING);
    size_t w = strlen("seq");
    for (size_t i = 0; i < ti->nfields; i++) {
        w = strlen(ti->fields[i].name) > w ? strlen(ti->fields[i].name) : w;
    }
    fprintf(ctx->out, "%-*s  %s\n", (int)w + 1, "id:", m.id);
    for (size_t i = 0; i < ti->nfields; i++) {
        const struct proto_field *f = &ti->fields[i];
        const msgpack_object *v = proto_mp_map_get(mt, f->name);
        char label[64];
        snprintf(label, sizeof(label), "%s:", f->name);
        if (f->kind == PROTO_F_TEXT) {
            size_t n = 0;
            const char *s = cli_obj_str(mt, f->name, &n);
            fprintf(ctx->out, "%s\n", label);
            print_para(ctx, s != NULL ? s : "", s != NULL ? n : 0);
            continue;
        }
        char val[1100] = "";
        int64_t iv = 0;
        if (v != NULL && v->type == MSGPACK_OBJECT_STR) {
            cli_sanitize(v->via.str.ptr, v->via.str.size, val, sizeof(val));
        } else if (cli_obj_i64(mt, f->name, &iv)) {
            snprintf(val, sizeof(val), "%lld", (long long)iv);
        }
        fprintf(ctx->out, "%-*s  %s\n", (int)w + 1, label, val);
    }
    int64_t seq = 0;
    (void)cli_obj_i64(m.rec, "seq", &seq);
    fprintf(ctx->out, "%-*s  %lld", (int)w + 1, "seq:", (long long)seq);
    const char *sep = " (";
    for (int t = PROTO_T_MEETING + 1; t < PROTO_T_COUNT; t++) {
        const msgpack_object *arr = cli_rec_objects(m.rec, (enum proto_type)t);
        uint32_t n = arr != NULL ? arr->via.array.size : 0;
        fprintf(ctx->out, "%s%u %s", sep, n, proto_type_info((enum proto_type)t)->plural);
        sep = ", ";
    }
    fputs(")\n", ctx->out);
    code = ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;

cleanup:
    cli_mtg_close(&m);
    return code;
}

int cli_cmd_meeting(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "set") == 0 || strcmp(argv[1], "create") == 0)) {
        return cli_obj_change(ctx, PROTO_T_MEETING, argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        return meeting_show(ctx, argc - 1, argv + 1);
    }
    return meeting_show(ctx, argc, argv);
}

/* ---- confer members [set USER ROLE | remove USER] ---- */

static const char *const member_roles[] = {"viewer", "editor", "associate", "counsellor",
                                           "rapporteur"};

static int members_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "members",
        "[options]\n"
        "set USER ROLE [options]\n"
        "remove USER [options]",
        "Lists the accounts that are members of the meeting, with their roles. The\n"
        "rapporteur adds a member or changes a role with `set` (ROLE: viewer, editor,\n"
        "associate, counsellor or rapporteur) and takes it away with `remove`.",
        NULL,
        0,
        true,
        0,
        0,
        true,
    };
    const char *headers[] = {"USER", "ROLE"};
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct cli_table *t = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* member.list {meeting} -> [{"user", "role"}] */
    if (cli_mtg_call(ctx, &m, "cannot list the members", &r, "member.list", "{s: s}", "meeting",
                     m.id) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    t = cli_table_new(2, headers);
    if (t == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; r->result->type == MSGPACK_OBJECT_ARRAY && i < r->result->via.array.size;
         i++) {
        char user[PROTO_NAME_MAX + 1];
        char role[32];
        cli_obj_strcpy(&r->result->via.array.ptr[i], "user", user, sizeof(user));
        cli_obj_strcpy(&r->result->via.array.ptr[i], "role", role, sizeof(role));
        const char *cells[] = {user, role};
        if (cli_table_add(t, cells) != 0) {
            code = cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    }
    code = cli_table_print(t, ctx->out, ctx->width) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;

cleanup:
    cli_table_free(t);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

static int members_change(struct cli_ctx *ctx, bool set, int argc, char **argv)
{
    const struct cli_usage u = {
        set ? "members set" : "members remove",
        set ? "USER ROLE [options]" : "USER [options]",
        set ? "Makes the account USER a member of the meeting with ROLE (viewer, editor,\n"
              "associate, counsellor or rapporteur), or changes its role. Rapporteur only."
            : "Takes the account USER out of the meeting. Rapporteur only; a meeting keeps\n"
              "at least one rapporteur.",
        NULL,
        0,
        true,
        set ? 2 : 1,
        set ? 2 : 1,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct proto_buf b = {0};
    char cid[CLI_CID_LEN + 1];
    char what[160];
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    const char *user = a.v[0];
    const char *role = set ? a.v[1] : NULL;
    if (!proto_name_valid(user, strlen(user))) {
        return cli_usage_error(ctx, u.cmd, "not an account name: '%s'", user);
    }
    bool known = !set;
    for (size_t i = 0; set && i < sizeof(member_roles) / sizeof(member_roles[0]); i++) {
        known = known || strcmp(role, member_roles[i]) == 0;
    }
    if (!known) {
        return cli_usage_error(ctx, u.cmd,
                               "ROLE must be viewer, editor, associate, counsellor or rapporteur");
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    cli_cid_new(cid);
    /* member.set {meeting, user, role, cid} / member.remove {meeting, user, cid} -> {"seq"} */
    int rc = set ? cli_packf(&b, "{s: s, s: s, s: s, s: s}", "meeting", m.id, "user", user, "role",
                             role, "cid", cid)
                 : cli_packf(&b, "{s: s, s: s, s: s}", "meeting", m.id, "user", user, "cid", cid);
    if (rc != 0) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    snprintf(what, sizeof(what), set ? "cannot make %s a member" : "cannot remove %s", user);
    if (cli_mtg_change(ctx, &m, what, &b, set ? "member.set" : "member.remove", &r) !=
        CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
    } else if (set) {
        fprintf(ctx->out, "%s is %s in meeting %s\n", user, role, m.id);
        code = CLI_EXIT_OK;
    } else {
        fprintf(ctx->out, "%s is no longer a member of meeting %s\n", user, m.id);
        code = CLI_EXIT_OK;
    }

cleanup:
    proto_buf_free(&b, 0);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

int cli_cmd_members(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "set") == 0) {
        return members_change(ctx, true, argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "remove") == 0) {
        return members_change(ctx, false, argc - 1, argv + 1);
    }
    return members_list(ctx, argc, argv);
}
