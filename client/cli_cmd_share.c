/* cli_cmd_share.c - confer share [create|list|revoke]: the links of the live view
 * (PROTOCOL.md section 14), for the rapporteur. */
#include "cli_cmd.h"

#include <stdlib.h>
#include <string.h>

#include "cli_record.h"
#include "cli_render.h"

/* "90m", "8h", "3d", "45s" as milliseconds; -1 when it does not read. */
static int64_t parse_duration(const char *s)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    long long n = strtoll(s, &end, 10);
    int64_t unit = 0;
    if (strcmp(end, "s") == 0) {
        unit = 1000;
    } else if (strcmp(end, "m") == 0) {
        unit = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        unit = 3600 * 1000;
    } else if (strcmp(end, "d") == 0) {
        unit = 24 * 3600 * 1000;
    }
    if (unit == 0 || n <= 0 || n > 3650LL * 24 * 3600) {
        return -1;
    }
    return (int64_t)n * unit;
}

static int share_create(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *label = NULL, *expires_in = NULL, *base = NULL;
    const struct cli_opt opts[] = {
        {"label", 0, CLI_OPT_STR, "TEXT", "what the link is for (e.g. \"projector\")", NULL,
         &label},
        {"expires-in", 0, CLI_OPT_STR, "DURATION",
         "the link stops working after DURATION (45s, 90m, 8h, 3d)", NULL, &expires_in},
        {"base-url", 0, CLI_OPT_STR, "URL",
         "what the link starts with, as delegates reach the server (e.g. "
         "https://confer.example.org)",
         NULL, &base},
    };
    const struct cli_usage u = {
        "share create",
        "[--label TEXT] [--expires-in DURATION] [--base-url URL] [options]",
        "Makes a link to the meeting's live view: a read-only page of the whole report\n"
        "that follows the meeting as it is written, for the projector and for delegates\n"
        "without an account. Anyone with the link can read the meeting: give it to those\n"
        "who may, and revoke it (confer share revoke ID) when it should stop. The link is\n"
        "shown this once. Rapporteur only.",
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
    int code = CLI_EXIT_FAIL;
    char path[128], url[1200], srvurl[1024];

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    int64_t expires = 0;
    if (expires_in != NULL) {
        int64_t d = parse_duration(expires_in);
        if (d < 0) {
            return cli_usage_error(ctx, u.cmd,
                                   "--expires-in takes a duration such as 90m, 8h or 3d");
        }
        expires = proto_now_ms() + d;
    }
    if (base != NULL && strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0) {
        return cli_usage_error(ctx, u.cmd, "--base-url takes a URL starting with https://");
    }
    if (label != NULL && strlen(label) > 200) {
        return cli_usage_error(ctx, u.cmd, "--label takes at most 200 bytes");
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* share.create {meeting, label?, expires?} -> {"id", "token", "path", "expires", "url"?} */
    int rc = expires ? cli_mtg_call(ctx, &m, "cannot make the link", &r, "share.create",
                                    "{s: s, s: s, s: I}", "meeting", m.id, "label",
                                    label ? label : "", "expires", expires)
                     : cli_mtg_call(ctx, &m, "cannot make the link", &r, "share.create",
                                    "{s: s, s: s}", "meeting", m.id, "label", label ? label : "");
    if (rc != CLI_EXIT_OK) {
        goto cleanup;
    }
    int64_t id = 0;
    cli_obj_i64(r->result, "id", &id);
    cli_obj_strcpy(r->result, "path", path, sizeof(path));
    cli_obj_strcpy(r->result, "url", srvurl, sizeof(srvurl));
    if (base != NULL) {
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/') {
            n--;
        }
        snprintf(url, sizeof(url), "%.*s%s", (int)n, base, path);
    } else {
        snprintf(url, sizeof(url), "%s", srvurl);
    }
    if (ctx->json) {
        json_t *j = cli_json_from_mp(r->result);
        if (url[0]) {
            json_object_set_new(j, "url", json_string(url));
        }
        code = cli_print_json(ctx, j);
    } else if (url[0]) {
        fprintf(ctx->out, "%s\n", url);
        fprintf(ctx->err,
                "share %lld of %s: add ?follow=1 for the projector (large type, the "
                "section being edited kept in view); revoke with: confer share revoke "
                "%lld\n",
                (long long)id, m.id, (long long)id);
        code = CLI_EXIT_OK;
    } else {
        fprintf(ctx->out, "%s\n", path);
        fprintf(ctx->err,
                "share %lld of %s: the server does not say where its live view is "
                "reached: put --base-url URL (the address of the server's --http, or "
                "of the proxy in front) before the path above\n",
                (long long)id, m.id);
        code = CLI_EXIT_OK;
    }

cleanup:
    if (r != NULL && r->result != NULL) {
        /* The token was in the answer: it is not kept. */
        memset(path, 0, sizeof(path));
        memset(url, 0, sizeof(url));
    }
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

static int share_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "share",
        "[list] [options]\n"
        "create [--label TEXT] [--expires-in DURATION] [--base-url URL] [options]\n"
        "revoke ID [options]",
        "Lists the meeting's live view links that still work (neither revoked nor\n"
        "expired): their id, label, who made them and when they expire. `create` makes\n"
        "one, `revoke` stops one at once. Rapporteur only.",
        NULL,
        0,
        true,
        0,
        0,
        true,
    };
    const char *headers[] = {"ID", "LABEL", "BY", "CREATED", "EXPIRES"};
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
    /* share.list {meeting} -> [{"id", "label", "user", "created", "expires"}] */
    if (cli_mtg_call(ctx, &m, "cannot list the links", &r, "share.list", "{s: s}", "meeting",
                     m.id) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    t = cli_table_new(5, headers);
    if (t == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; r->result->type == MSGPACK_OBJECT_ARRAY && i < r->result->via.array.size;
         i++) {
        const msgpack_object *o = &r->result->via.array.ptr[i];
        char id[24], label[256], user[PROTO_NAME_MAX + 1], created[64], expires[64];
        int64_t v = 0;
        cli_obj_i64(o, "id", &v);
        snprintf(id, sizeof(id), "%lld", (long long)v);
        cli_obj_strcpy(o, "label", label, sizeof(label));
        cli_obj_strcpy(o, "user", user, sizeof(user));
        v = 0;
        cli_obj_i64(o, "created", &v);
        cli_render_time(v, created, sizeof(created));
        v = 0;
        if (cli_obj_i64(o, "expires", &v) && v > 0) {
            cli_render_time(v, expires, sizeof(expires));
        } else {
            snprintf(expires, sizeof(expires), "never");
        }
        const char *cells[] = {id, label, user, created, expires};
        if (cli_table_add(t, cells) != 0) {
            code = cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    }
    if (cli_table_rows(t) == 0) {
        fprintf(ctx->out, "No live view links: confer share create makes one.\n");
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    code = cli_table_print(t, ctx->out, ctx->width) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;

cleanup:
    cli_table_free(t);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

static int share_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "share revoke",
        "ID [options]",
        "Stops the live view link ID (confer share list shows the ids): it answers\n"
        "\"not found\" from now on, and pages open on it stop following the meeting\n"
        "within a second. Rapporteur only.",
        NULL,
        0,
        true,
        1,
        1,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    char *end = NULL;
    long long id = strtoll(a.v[0], &end, 10);
    if (*a.v[0] == '\0' || *end != '\0' || id <= 0) {
        return cli_usage_error(ctx, u.cmd, "ID is a number: confer share list shows them");
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    /* share.revoke {meeting, id} -> {} */
    if (cli_mtg_call(ctx, &m, "cannot revoke the link", &r, "share.revoke", "{s: s, s: I}",
                     "meeting", m.id, "id", (int64_t)id) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (ctx->json) {
        json_t *j = json_object();
        json_object_set_new(j, "id", json_integer(id));
        json_object_set_new(j, "revoked", json_true());
        code = cli_print_json(ctx, j);
    } else {
        fprintf(ctx->out, "link %lld revoked: its pages have stopped\n", id);
        code = CLI_EXIT_OK;
    }

cleanup:
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

int cli_cmd_share(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "create") == 0) {
        return share_create(ctx, argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0) {
        return share_revoke(ctx, argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        return share_list(ctx, argc - 1, argv + 1);
    }
    return share_list(ctx, argc, argv);
}
