/* cli_cmd_edit.c - `confer edit`: a text field in $EDITOR, merged on save.
 *
 * The text and its seq come from meeting.subscribe (one snapshot, no gap before the events
 * that follow). The user edits a temporary file; on save the difference becomes one op
 * against that seq, transformed over whatever others changed meanwhile (cli_text), and sent
 * with a cid, so a retry after a broken connection is applied once. If anything fails, the
 * file is kept and its path printed: a user's words are never thrown away.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_cmd.h"
#include "cli_record.h"
#include "cli_render.h"
#include "cli_text.h"
#include "proto_diff.h"

#define EDIT_FILE_MAX (1024 * 1024) /* the server's text limit */

/* Which field of which object: item.body, meeting.abstract, action.text, decision.text. */
struct target {
    enum proto_type type;
    const char *field;
    const msgpack_object *obj;
    int64_t id;
    char label[96];
};

/* Finds the target in the snapshot rec. Reports and returns false when there is none. */
static bool find_target(struct cli_ctx *ctx, const msgpack_object *rec, const char *item,
                        bool abstract, const char *action, const char *decision, struct target *t)
{
    if (abstract) {
        t->type = PROTO_T_MEETING;
        t->field = "abstract";
    } else if (action) {
        t->type = PROTO_T_ACTION;
        t->field = "text";
    } else if (decision) {
        t->type = PROTO_T_DECISION;
        t->field = "text";
    } else {
        t->type = PROTO_T_ITEM;
        t->field = "body";
    }
    const char *name = action ? action : decision ? decision : item;
    t->obj = abstract ? cli_rec_objects(rec, PROTO_T_MEETING) : cli_rec_find(rec, t->type, name);
    if (t->obj == NULL) {
        cli_fail(ctx, "no %s %s in this meeting (confer agenda lists the items)",
                 proto_type_info(t->type)->name, name ? name : "");
        return false;
    }
    t->id = 0;
    cli_obj_i64(t->obj, "id", &t->id);
    cli_obj_label(t->type, t->obj, t->label, sizeof(t->label));
    return true;
}

/* Writes text to a new private temporary file; its path goes to path. */
static int write_temp(const char *text, size_t len, const char *hint, char *path, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    char safe[32];
    size_t n = 0;
    for (const char *p = hint; *p && n + 1 < sizeof(safe); p++) {
        safe[n++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '-');
    }
    safe[n] = '\0';
    snprintf(path, cap, "%s/confer-%s-XXXXXX.txt", dir && *dir ? dir : "/tmp", safe);
    int fd = mkstemps(path, 4);
    if (fd < 0) {
        return PROTO_EIO;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            close(fd);
            return PROTO_EIO;
        }
        off += (size_t)w;
    }
    return close(fd) == 0 ? 0 : PROTO_EIO;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) {
        return NULL;
    }
    buf = malloc(EDIT_FILE_MAX + 2);
    if (buf) {
        *len = fread(buf, 1, EDIT_FILE_MAX + 1, f);
        if (ferror(f) || *len > EDIT_FILE_MAX) {
            free(buf);
            buf = NULL;
        } else {
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Runs $EDITOR (else vi) on path and waits. Returns its exit status, or -1. */
static int run_editor(const char *path)
{
    const char *editor = getenv("VISUAL");
    if (editor == NULL || *editor == '\0') {
        editor = getenv("EDITOR");
    }
    if (editor == NULL || *editor == '\0') {
        editor = "vi";
    }
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* Through the shell, so EDITOR may carry arguments ("code --wait"). */
        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Users whose changes arrived while the user was editing. */
struct others {
    char names[8][PROTO_NAME_MAX + 1];
    int n;
    int edits;
};

static void note_other(struct others *o, const struct cli_msg *m, const struct cli_text *t)
{
    if (m->kind != PROTO_RPC_NOTIFY || m->method == NULL || strcmp(m->method, "event") != 0) {
        return;
    }
    const char *user = cli_obj_str(m->params, "user", NULL);
    const char *type = cli_obj_str(m->params, "type", NULL);
    int64_t id = 0;
    cli_obj_i64(m->params, "id", &id);
    if (user == NULL || type == NULL || strncmp(type, t->type, strlen(t->type)) != 0 ||
        (t->id_str[0] == '\0' && id != t->id)) {
        return;
    }
    o->edits++;
    size_t ulen = 0;
    cli_obj_str(m->params, "user", &ulen);
    for (int i = 0; i < o->n; i++) {
        if (strlen(o->names[i]) == ulen && memcmp(o->names[i], user, ulen) == 0) {
            return;
        }
    }
    if (o->n < 8 && ulen <= PROTO_NAME_MAX) {
        memcpy(o->names[o->n], user, ulen);
        o->names[o->n][ulen] = '\0';
        o->n++;
    }
}

/* Takes every message waiting (wait_ms for the first) into the replica. Returns 0, or a
 * transport error, or PROTO_EINVAL when the server refused the edit. */
static int pump(struct cli_conn *c, struct cli_text *t, struct others *o, int wait_ms)
{
    for (int first = 1;; first = 0) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(c, first ? wait_ms : 0, &m);
        if (rc == PROTO_ETIMEDOUT) {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        note_other(o, m, t);
        rc = cli_text_handle(t, c, m);
        cli_msg_free(m);
        if (rc < 0) {
            return rc;
        }
    }
}

/* Subscribes (again, with since when seq >= 0) and returns the snapshot response. */
static int subscribe(struct cli_ctx *ctx, struct cli_mtg *mt, int64_t since, struct cli_msg **out)
{
    if (since >= 0) {
        return cli_mtg_call(ctx, mt, "subscribe", out, "meeting.subscribe", "{s:s, s:I}", "meeting",
                            mt->id, "since", since);
    }
    return cli_mtg_call(ctx, mt, "subscribe", out, "meeting.subscribe", "{s:s}", "meeting", mt->id);
}

int cli_cmd_edit(struct cli_ctx *ctx, int argc, char **argv)
{
    bool abstract = false;
    const char *action = NULL, *decision = NULL;
    const struct cli_opt opts[] = {
        {"abstract", 0, CLI_OPT_FLAG, NULL, "edit the meeting's abstract", &abstract, NULL},
        {"action", 0, CLI_OPT_STR, "REF", "edit the text of an action (RG-IEM-4)", NULL, &action},
        {"decision", 0, CLI_OPT_STR, "#ID", "edit the text of a decision", NULL, &decision},
    };
    const struct cli_usage u = {
        .cmd = "edit",
        .synopsis = "ITEM\n--abstract | --action REF | --decision #ID",
        .about = "Opens a text in $EDITOR (else vi): an item's body (ITEM is its number, or "
                 "#ID), the meeting's abstract, or an action's or decision's text. On save, "
                 "your changes are merged with what others changed meanwhile and sent; "
                 "confer prints who else changed it and the merged seq. If anything fails, "
                 "your edited file is kept and its path printed.",
        .opts = opts,
        .nopts = sizeof(opts) / sizeof(opts[0]),
        .json = true,
        .min_args = 0,
        .max_args = 1,
        .meeting = true,
    };
    struct cli_args a;
    int code = CLI_EXIT_OK;
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    int picked = (a.n == 1) + abstract + (action != NULL) + (decision != NULL);
    if (picked != 1) {
        return cli_usage_error(ctx, "edit",
                               "name one text: ITEM, --abstract, --action or "
                               "--decision");
    }
    struct cli_mtg mt;
    struct cli_msg *snap = NULL;
    struct cli_text t;
    struct others others = {0};
    struct target tg;
    char path[4096] = "";
    char *edited = NULL;
    bool keep = true;
    bool replica = false;
    memset(&mt, 0, sizeof(mt));
    memset(&t, 0, sizeof(t));
    code = cli_mtg_open(ctx, &mt, true);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    code = subscribe(ctx, &mt, -1, &snap);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    code = CLI_EXIT_FAIL;
    const msgpack_object *rec = proto_mp_map_get(snap->result, "snapshot");
    int64_t base = 0;
    cli_obj_i64(snap->result, "seq", &base);
    if (!find_target(ctx, rec, a.n ? a.v[0] : NULL, abstract, action, decision, &tg)) {
        keep = false;
        goto cleanup;
    }
    size_t old_len = 0;
    const char *old = cli_obj_str(tg.obj, tg.field, &old_len);
    if (old == NULL) {
        old = "";
    }
    if (cli_text_init(&t, mt.id, proto_type_info(tg.type)->name, tg.id,
                      tg.type == PROTO_T_MEETING ? mt.id : NULL, tg.field, old, old_len,
                      base) != 0) {
        goto cleanup;
    }
    replica = true;
    /* Others see where we are while the editor is open. */
    struct cli_msg *pm = NULL;
    if (tg.type == PROTO_T_MEETING) {
        cli_mtg_call(ctx, &mt, "presence", &pm, "presence.set", "{s:s, s:{s:s, s:s, s:s}}",
                     "meeting", mt.id, "where", "type", "meeting", "id", mt.id, "field", tg.field);
    } else {
        cli_mtg_call(ctx, &mt, "presence", &pm, "presence.set", "{s:s, s:{s:s, s:I, s:s}}",
                     "meeting", mt.id, "where", "type", proto_type_info(tg.type)->name, "id", tg.id,
                     "field", tg.field);
    }
    cli_msg_free(pm);
    if (write_temp(old, old_len, tg.label, path, sizeof(path)) != 0) {
        cli_fail(ctx, "cannot write a temporary file for the text");
        keep = false;
        goto cleanup;
    }
    int st = run_editor(path);
    if (st != 0) {
        cli_fail(ctx, "the editor exited with status %d; nothing was sent", st);
        goto cleanup;
    }
    size_t new_len = 0;
    edited = read_all(path, &new_len);
    if (edited == NULL) {
        cli_fail(ctx, "cannot read the edited file (or it is over 1 MiB)");
        goto cleanup;
    }
    if (!proto_utf8_valid(edited, new_len)) {
        cli_fail(ctx, "the edited file is not valid UTF-8 text; nothing was sent");
        goto cleanup;
    }
    if (new_len == old_len && memcmp(edited, old, old_len) == 0) {
        fprintf(ctx->out, "no changes to %s\n", tg.label);
        keep = false;
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    struct proto_op op;
    proto_op_init(&op);
    int rc = proto_diff(old, old_len, edited, new_len, &op);
    if (rc == 0) {
        rc = cli_text_local(&t, &op);
    }
    proto_op_free(&op);
    if (rc != 0) {
        cli_fail(ctx, "cannot compute the change");
        goto cleanup;
    }
    /* Catch up on what others did while the editor was open, then send and wait. If the
     * connection broke meanwhile, come back with since and send again: the cid makes the
     * second sending apply once. */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = pump(mt.c, &t, &others, 0);
        if (rc == 0) {
            rc = attempt == 0 ? cli_text_flush(&t, mt.c) : cli_text_resend(&t, mt.c);
        }
        for (int waited = 0; rc == 0 && !cli_text_idle(&t) && waited < 300; waited++) {
            rc = pump(mt.c, &t, &others, 100);
        }
        if (rc == 0 && cli_text_idle(&t)) {
            break;
        }
        if (rc == PROTO_EINVAL) {
            cli_fail(ctx, "the server refused the change: %s", t.error);
            goto cleanup;
        }
        /* Reconnect and replay from where the replica is. */
        cli_conn_free(mt.c);
        mt.c = NULL;
        cli_msg_free(snap);
        snap = NULL;
        if (cli_session_connect(ctx, &mt.s, &mt.c, NULL) != CLI_EXIT_OK ||
            subscribe(ctx, &mt, t.seq, &snap) != CLI_EXIT_OK) {
            break;
        }
        rc = -1;
    }
    if (!cli_text_idle(&t)) {
        cli_fail(ctx, "the change could not be sent");
        goto cleanup;
    }
    keep = false;
    code = CLI_EXIT_OK;
    if (ctx->json) {
        json_t *j = json_pack("{s:s, s:I, s:i, s:[]}", "edited", tg.label, "seq", (json_int_t)t.seq,
                              "others_changes", others.edits, "others");
        for (int i = 0; i < others.n; i++) {
            json_array_append_new(json_object_get(j, "others"), json_string(others.names[i]));
        }
        code = cli_print_json(ctx, j);
    } else {
        if (others.edits > 0) {
            fprintf(ctx->out, "merged with %d change%s by", others.edits,
                    others.edits == 1 ? "" : "s");
            for (int i = 0; i < others.n; i++) {
                fprintf(ctx->out, "%s %s", i ? "," : "", others.names[i]);
            }
            fprintf(ctx->out, " made while you edited\n");
        }
        fprintf(ctx->out, "%s saved at seq %lld\n", tg.label, (long long)t.seq);
    }
cleanup:
    if (keep && path[0]) {
        fprintf(ctx->err, "confer: your text is kept in %s\n", path);
    } else if (path[0]) {
        unlink(path);
    }
    free(edited);
    if (replica) {
        cli_text_free(&t);
    }
    cli_msg_free(snap);
    cli_mtg_close(&mt);
    return code;
}
