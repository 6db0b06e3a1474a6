/* cli_cmd_edit.c - `confer edit`: a text field in $EDITOR, merged on save.
 *
 * The text and its seq come from meeting.subscribe (one snapshot, no gap before the events
 * that follow). The user edits a temporary file; on save, the user's change (the text at
 * open -> the file) and what others changed meanwhile (the text at open -> the server's
 * text now, kept by the replica from the events) are compared word by word (proto_merge3).
 * Changes of different words merge, and the result goes out as one op against the
 * replica's seq with a cid, so a retry after a broken connection is applied once. Changes
 * of the same or adjacent words are never fused: the editor opens again with git-style
 * conflict markers naming the other author, or, with --no-edit, nothing is sent. If
 * anything fails, the file is kept and its path printed: a user's words are never thrown
 * away.
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

/* Writes text to path, truncating it, with a final newline when text has none (editors
 * add one; read_edit takes it off again). Returns 0 or PROTO_EIO. */
static int write_text(int fd, const char *text, size_t len)
{
    size_t off = 0;
    bool nl = len == 0 || text[len - 1] != '\n';
    while (off < len + nl) {
        const char *p = off < len ? text + off : "\n";
        size_t n = off < len ? len - off : 1;
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return PROTO_EIO;
        }
        off += (size_t)w;
    }
    return 0;
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
    int rc = write_text(fd, text, len);
    return close(fd) == 0 ? rc : PROTO_EIO;
}

/* Writes text over the file at path (kept private: it was made by write_temp). */
static int rewrite_temp(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        return PROTO_EIO;
    }
    int rc = write_text(fd, text, len);
    return close(fd) == 0 ? rc : PROTO_EIO;
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

/* Reads the edited file: the final newline that write_text added to written (which had
 * none) is not part of the text. */
static char *read_edit(const char *path, const char *written, size_t written_len, size_t *len)
{
    char *buf = read_all(path, len);
    bool added = written_len == 0 || written[written_len - 1] != '\n';
    if (buf != NULL && added && *len > 0 && buf[*len - 1] == '\n') {
        buf[--*len] = '\0';
    }
    return buf;
}

/* Runs $VISUAL, else $EDITOR, else vi on path and waits. Returns its exit status, or -1. */
static int run_editor(const char *path)
{
    const char *editor = getenv("VISUAL");
    if (editor == NULL || *editor == '\0') {
        editor = getenv("EDITOR");
    }
    if (editor == NULL || *editor == '\0') {
        editor = "vi";
    }
    /* As git does: the variable is shell text (EDITOR='vi -n', EDITOR='"/a b/ed"'), the
     * file one argument after it, whatever it holds. */
    size_t cap = strlen(editor) + 8;
    char *cmd = malloc(cap);
    if (cmd == NULL) {
        return -1;
    }
    snprintf(cmd, cap, "%s \"$@\"", editor);
    pid_t pid = fork();
    if (pid < 0) {
        free(cmd);
        return -1;
    }
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, "editor", path, (char *)NULL);
        _exit(127);
    }
    free(cmd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Who changed the text while the user edited, and at which seq last. */
struct others {
    char names[8][PROTO_NAME_MAX + 1];
    int64_t last[8];
    int n;
    int edits;
};

/* True when the string field name of o is want (msgpack strings are not NUL-terminated). */
static bool field_is(const msgpack_object *o, const char *name, const char *want)
{
    size_t len = 0;
    const char *s = cli_obj_str(o, name, &len);
    return s != NULL && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* The op by which event p changed the replica's field, or NULL when it did not. */
static const msgpack_object *field_op(const struct cli_text *t, const msgpack_object *p)
{
    const msgpack_object *id = proto_mp_map_get(p, "id");
    if (id == NULL || !field_is(p, "type", t->type)) {
        return NULL;
    }
    if (t->id_str[0] != '\0') {
        if (!field_is(p, "id", t->id_str)) {
            return NULL;
        }
    } else if (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || (int64_t)id->via.u64 != t->id) {
        return NULL;
    }
    if (field_is(p, "kind", "text")) {
        return field_is(p, "field", t->field) ? proto_mp_map_get(p, "op") : NULL;
    }
    if (field_is(p, "kind", "update")) {
        return proto_mp_map_get(proto_mp_map_get(p, "ops"), t->field);
    }
    return NULL;
}

/* Notes who changed the field (events of it newer than the replica's seq), and, while an
 * op of ours is in flight, applies their op to *raced: the text as they left it. */
static void note_other(struct others *o, const struct cli_msg *m, const struct cli_text *t,
                       char **raced, size_t *raced_len)
{
    int64_t seq = 0;
    if (m->kind != PROTO_RPC_NOTIFY || m->method == NULL || strcmp(m->method, "event") != 0 ||
        !cli_obj_i64(m->params, "seq", &seq) || seq <= t->seq) {
        return;
    }
    const msgpack_object *opo = field_op(t, m->params);
    size_t ulen = 0;
    const char *user = cli_obj_str(m->params, "user", &ulen);
    if (opo == NULL || user == NULL) {
        return;
    }
    o->edits++;
    if (t->inflight && raced != NULL && *raced != NULL) {
        struct proto_op op;
        proto_op_init(&op);
        char *next = NULL;
        size_t next_len = 0;
        if (proto_op_decode(opo, &op) == 0 &&
            proto_op_apply(*raced, *raced_len, &op, 0, &next, &next_len) == 0) {
            free(*raced);
            *raced = next;
            *raced_len = next_len;
        }
        proto_op_free(&op);
    }
    int i = 0;
    while (i < o->n && !(strlen(o->names[i]) == ulen && memcmp(o->names[i], user, ulen) == 0)) {
        i++;
    }
    if (i == o->n) {
        if (o->n == 8 || ulen > PROTO_NAME_MAX) {
            return;
        }
        memcpy(o->names[i], user, ulen);
        o->names[i][ulen] = '\0';
        o->n++;
    }
    o->last[i] = seq;
}

/* "associate (seq 123)", or "associate, counsellor (seq 125)": who changed the field after
 * seq since, and the last seq of theirs. */
static void others_label(const struct others *o, int64_t since, char *out, size_t cap)
{
    size_t n = 0;
    int64_t last = 0;
    char safe[PROTO_NAME_MAX + 1];
    out[0] = '\0';
    for (int i = 0; i < o->n; i++) {
        if (o->last[i] <= since) {
            continue;
        }
        cli_sanitize(o->names[i], strlen(o->names[i]), safe, sizeof(safe));
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", safe);
        if (w < 0 || (size_t)w >= cap - n) {
            break;
        }
        n += (size_t)w;
        last = o->last[i] > last ? o->last[i] : last;
    }
    if (n == 0) {
        snprintf(out, cap, "someone else");
    } else {
        snprintf(out + n, cap - n, " (seq %lld)", (long long)last);
    }
}

/* Takes every message waiting (wait_ms for the first) into the replica. Returns 0, or a
 * transport error, or PROTO_EINVAL when the server refused the edit. */
static int pump(struct cli_conn *c, struct cli_text *t, struct others *o, int wait_ms, char **raced,
                size_t *raced_len)
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
        note_other(o, m, t, raced, raced_len);
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

/* Says why the user may not edit the target, before any editor opens: the role (from
 * whoami; PROTOCOL.md section 8) or a final meeting. True when the edit may go on; the
 * server has the last word, so a role that cannot be read lets it go on. */
static bool may_edit(struct cli_ctx *ctx, struct cli_mtg *mt, const msgpack_object *rec,
                     const struct target *tg)
{
    struct cli_msg *w = NULL;
    const msgpack_object *meetings = NULL;
    char role[32] = "";
    /* whoami {} -> {"user", "operator", "meetings": {id: role}} */
    if (cli_conn_callf(mt->c, &w, "whoami", NULL) == 0 && w->error == NULL &&
        proto_param_map(w->result, "meetings", &meetings) == 0) {
        char raw[32];
        if (proto_param_strcpy(meetings, mt->id, raw, sizeof(raw)) == 0) {
            cli_sanitize(raw, strlen(raw), role, sizeof(role));
        }
    }
    cli_msg_free(w);
    bool editor_ok = tg->type != PROTO_T_MEETING;
    if (strcmp(role, "viewer") == 0 || (strcmp(role, "editor") == 0 && !editor_ok)) {
        cli_fail(ctx,
                 "you are %s %s of meeting %s: that role cannot change %s (%s); ask the "
                 "rapporteur for a higher role. Nothing was opened.",
                 role[0] == 'e' ? "an" : "a", role, mt->id, tg->label,
                 editor_ok ? "editors and above can" : "associates and above can");
        return false;
    }
    const msgpack_object *meeting = cli_rec_objects(rec, PROTO_T_MEETING);
    if (meeting != NULL && field_is(meeting, "status", "final")) {
        cli_fail(ctx,
                 "meeting %s is final: nothing in it can change until its rapporteur reopens "
                 "it with %s meeting set --status draft. Nothing was opened.",
                 mt->id, ctx->prog);
        return false;
    }
    return true;
}

/* Sends what the replica holds and waits for its acknowledgement. When the connection
 * breaks, comes back with since and sends again: the cid makes the second sending apply
 * once. raced (when not NULL) follows the others' ops that came while ours was in flight.
 * Returns 0, PROTO_EINVAL (refused: t->error says why), or another error. */
static int send_and_wait(struct cli_ctx *ctx, struct cli_mtg *mt, struct cli_text *t,
                         struct others *others, struct cli_msg **snap, char **raced,
                         size_t *raced_len)
{
    int rc = -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = attempt == 0 ? cli_text_flush(t, mt->c) : cli_text_resend(t, mt->c);
        for (int waited = 0; rc == 0 && !cli_text_idle(t) && waited < 300; waited++) {
            rc = pump(mt->c, t, others, 100, raced, raced_len);
        }
        if (rc == 0 && cli_text_idle(t)) {
            return 0;
        }
        if (rc == PROTO_EINVAL) {
            return rc;
        }
        /* Reconnect and replay from where the replica is. */
        cli_conn_free(mt->c);
        mt->c = NULL;
        cli_msg_free(*snap);
        *snap = NULL;
        if (cli_session_connect(ctx, &mt->s, &mt->c, NULL) != CLI_EXIT_OK ||
            subscribe(ctx, mt, t->seq, snap) != CLI_EXIT_OK) {
            break;
        }
        rc = -1;
    }
    return rc != 0 ? rc : PROTO_EIO;
}

/* Replaces *dst with a copy of src[0..len). Returns 0 or PROTO_ENOMEM. */
static int set_text(char **dst, size_t *dst_len, const char *src, size_t len)
{
    char *p = malloc(len + 1);
    if (p == NULL) {
        return PROTO_ENOMEM;
    }
    memcpy(p, src, len);
    p[len] = '\0';
    free(*dst);
    *dst = p;
    *dst_len = len;
    return 0;
}

int cli_cmd_edit(struct cli_ctx *ctx, int argc, char **argv)
{
    bool abstract = false, no_edit = false;
    const char *action = NULL, *decision = NULL;
    const struct cli_opt opts[] = {
        {"abstract", 0, CLI_OPT_FLAG, NULL, "edit the meeting's abstract", &abstract, NULL},
        {"action", 0, CLI_OPT_STR, "REF", "edit the text of an action (RG-IEM-4)", NULL, &action},
        {"decision", 0, CLI_OPT_STR, "#ID", "edit the text of a decision", NULL, &decision},
        {"no-edit", 0, CLI_OPT_FLAG, NULL,
         "on a conflict, do not reopen the editor: keep both versions in a file, send nothing",
         &no_edit, NULL},
    };
    const struct cli_usage u = {
        .cmd = "edit",
        .synopsis = "ITEM [--no-edit]\n--abstract | --action REF | --decision #ID [--no-edit]",
        .about = "Opens a text in $EDITOR (else vi): an item's body (ITEM is its number, or "
                 "#ID), the meeting's abstract, or an action's or decision's text. On save, "
                 "your changes are merged with what others changed meanwhile and sent; "
                 "confer prints who else changed it and the merged seq. Changes compare word "
                 "by word: where yours and another's change the same or adjacent words, "
                 "nothing is merged; the editor opens again with both versions between "
                 "conflict markers (<<<<<<< yours, =======, >>>>>>> who (seq N)) to choose "
                 "from, and a file that still holds markers is refused. With --no-edit, both "
                 "versions are kept in a file and nothing is sent (exit 1). If anything fails, "
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
    char *mine = NULL, *base_text = NULL, *merged = NULL, *sent_from = NULL, *raced = NULL;
    size_t mine_len = 0, base_len = 0, merged_len = 0, sent_len = 0, raced_len = 0;
    bool keep = true;
    bool replica = false;
    int rc = 0;
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
    if (!find_target(ctx, rec, a.n ? a.v[0] : NULL, abstract, action, decision, &tg) ||
        !may_edit(ctx, &mt, rec, &tg)) {
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
                      base) != 0 ||
        set_text(&base_text, &base_len, old, old_len) != 0) {
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
    /* ... and we see who else is in it. */
    if (tg.type != PROTO_T_MEETING) {
        char who[256] = "";
        struct cli_msg *pres = cli_presence_fetch(&mt);
        cli_presence_in(pres, proto_type_info(tg.type)->name, tg.id, mt.s.user, who, sizeof(who));
        cli_msg_free(pres);
        if (who[0]) {
            fprintf(ctx->err, "\xe2\x97\x8f %s %s in this section now\n", who,
                    strchr(who, ',') ? "are" : "is");
        }
    }
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
    mine = read_edit(path, old, old_len, &mine_len);
    if (mine == NULL) {
        cli_fail(ctx, "cannot read the edited file (or it is over 1 MiB)");
        goto cleanup;
    }
    if (!proto_utf8_valid(mine, mine_len)) {
        cli_fail(ctx, "the edited file is not valid UTF-8 text; nothing was sent");
        goto cleanup;
    }
    if (mine_len == old_len && memcmp(mine, old, old_len) == 0) {
        fprintf(ctx->out, "no changes to %s\n", tg.label);
        keep = false;
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    /* Catch up on what others did while the editor was open and compare it with the user's
     * change, word by word. A conflict goes back to the user (at most a few rounds: each one
     * is a new look at the text), with base_text the server's text the markers were made
     * against. */
    char label[160] = "";
    int64_t base_seq = base;
    size_t conflicts = 1;
    for (int round = 0; round < 4 && conflicts > 0; round++) {
        rc = pump(mt.c, &t, &others, 0, NULL, NULL);
        if (rc != 0) {
            cli_fail(ctx, "the connection was lost: %s; nothing was sent", proto_strerror(rc));
            goto cleanup;
        }
        if (t.gone) {
            cli_fail(ctx, "%s was deleted while you edited; nothing was sent", tg.label);
            goto cleanup;
        }
        others_label(&others, base_seq, label, sizeof(label));
        free(merged);
        merged = NULL;
        rc = proto_merge3(base_text, base_len, mine, mine_len, t.text, t.len, label, &merged,
                          &merged_len, &conflicts);
        if (rc != 0) {
            cli_fail(ctx, "cannot compare your change with the others': %s", proto_strerror(rc));
            goto cleanup;
        }
        if (conflicts == 0) {
            break;
        }
        if (rewrite_temp(path, merged, merged_len) != 0) {
            cli_fail(ctx, "cannot write the conflict into %s", path);
            goto cleanup;
        }
        if (no_edit) {
            cli_fail(ctx,
                     "your change and the change by %s touch the same words of %s (%zu "
                     "conflict%s); "
                     "nothing was sent. Both versions are in the file below, between <<<<<<< "
                     "yours and >>>>>>> %s: choose, then run %s edit again",
                     label, tg.label, conflicts, conflicts == 1 ? "" : "s", label, ctx->prog);
            goto cleanup;
        }
        fprintf(ctx->err,
                "confer: your change and the change by %s touch the same words of %s (%zu "
                "conflict%s): "
                "choose between the conflict markers in the editor\n",
                label, tg.label, conflicts, conflicts == 1 ? "" : "s");
        st = run_editor(path);
        if (st != 0) {
            cli_fail(ctx, "the editor exited with status %d; nothing was sent", st);
            goto cleanup;
        }
        free(mine);
        mine = read_edit(path, merged, merged_len, &mine_len);
        if (mine == NULL || !proto_utf8_valid(mine, mine_len)) {
            cli_fail(ctx, "cannot read the edited file (over 1 MiB, or not UTF-8 text); nothing "
                          "was sent");
            goto cleanup;
        }
        if (proto_merge_has_markers(mine, mine_len)) {
            cli_fail(ctx, "conflict markers remain in the file (<<<<<<<, =======, >>>>>>>): "
                          "nothing was sent");
            goto cleanup;
        }
        /* The file now stands on the server's text as it was shown. */
        if (set_text(&base_text, &base_len, t.text, t.len) != 0) {
            goto cleanup;
        }
        base_seq = t.seq;
    }
    if (conflicts > 0) {
        cli_fail(ctx, "%s keeps changing under your edits; nothing was sent", tg.label);
        goto cleanup;
    }
    /* The clean merge, as one op against the replica, sent at once: nothing is read from
     * the server between the comparison and the sending. */
    struct proto_op op;
    proto_op_init(&op);
    rc = proto_diff_words(t.text, t.len, merged, merged_len, &op);
    if (rc == 0 && proto_op_is_noop(&op)) {
        proto_op_free(&op);
        fprintf(ctx->out, "%s already reads as you saved it (seq %lld)\n", tg.label,
                (long long)t.seq);
        keep = false;
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    if (rc == 0 && (rc = set_text(&sent_from, &sent_len, t.text, t.len)) == 0) {
        rc = set_text(&raced, &raced_len, t.text, t.len);
    }
    if (rc == 0) {
        rc = cli_text_local(&t, &op);
    }
    proto_op_free(&op);
    if (rc != 0) {
        cli_fail(ctx, "cannot compute the change");
        goto cleanup;
    }
    int edits_before = others.edits;
    rc = send_and_wait(ctx, &mt, &t, &others, &snap, &raced, &raced_len);
    if (rc == PROTO_EINVAL) {
        cli_fail(ctx, "the server refused the change: %s", t.error);
        goto cleanup;
    }
    if (rc != 0) {
        cli_fail(ctx, "the change could not be sent");
        goto cleanup;
    }
    if (others.edits > edits_before) {
        /* Someone's change reached the server between our comparison and our op, and the
         * server merged the two. When theirs touched the same words, ours goes: the first
         * change stands, and the user gets both versions. */
        size_t late = 0;
        char *both = NULL;
        size_t both_len = 0;
        char late_label[160];
        others_label(&others, base_seq, late_label, sizeof(late_label));
        rc = proto_merge3(sent_from, sent_len, merged, merged_len, raced, raced_len, late_label,
                          &both, &both_len, &late);
        if (rc == 0 && late > 0) {
            proto_op_init(&op);
            rc = proto_diff_words(t.text, t.len, raced, raced_len, &op);
            if (rc == 0 && !proto_op_is_noop(&op)) {
                rc = cli_text_local(&t, &op);
                if (rc == 0) {
                    rc = send_and_wait(ctx, &mt, &t, &others, &snap, NULL, NULL);
                }
            }
            proto_op_free(&op);
            if (rewrite_temp(path, both, both_len) != 0) {
                rc = PROTO_EIO;
            }
            free(both);
            if (rc != 0) {
                cli_fail(ctx,
                         "%s changed the same words of %s at the same moment, and your change "
                         "could not be taken back: check it with %s show",
                         late_label, tg.label, ctx->prog);
                goto cleanup;
            }
            cli_fail(ctx,
                     "%s changed the same words of %s at the same moment; theirs came first, "
                     "so yours was taken back (seq %lld). Both versions are in the file below: "
                     "choose, then run %s edit again",
                     late_label, tg.label, (long long)t.seq, ctx->prog);
            goto cleanup;
        }
        free(both);
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
                char safe[PROTO_NAME_MAX + 1];
                cli_sanitize(others.names[i], strlen(others.names[i]), safe, sizeof(safe));
                fprintf(ctx->out, "%s %s", i ? "," : "", safe);
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
    free(mine);
    free(base_text);
    free(merged);
    free(sent_from);
    free(raced);
    if (replica) {
        cli_text_free(&t);
    }
    cli_msg_free(snap);
    cli_mtg_close(&mt);
    return code;
}
