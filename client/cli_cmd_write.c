/* cli_cmd_write.c - `confer write`: one text (an item's body, an action's or a decision's
 * text) in a full-screen editor, co-edited live.
 *
 * The text is a replica (cli_text.h) and a model (cli_edbuf.h) that hold the same string.
 * A key changes the model, whose op goes to the replica; each burst of keys is one
 * text.edit (one in flight, the rest composed). Others' edits come through the replica;
 * the model takes the difference, which moves the cursor over them. The loop polls the
 * terminal and the connection together and never waits for a reply, so typing goes on
 * while the network is slow or away; after a break it reconnects on a thread of its own,
 * replays from the seq the replica holds and sends again what was in flight (with its cid:
 * applied once).
 * Words that did not reach the server are written to a recovery file, never lost.
 */
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_cmd.h"
#include "cli_edbuf.h"
#include "cli_record.h"
#include "cli_render.h"
#include "cli_text.h"
#include "proto_diff.h"

#define WR_HERE_MAX   16
#define WR_KEYS_BURST 4096             /* keys taken before the screen is drawn again */
#define WR_MSGS_BURST 1000             /* messages likewise */
#define WR_POLL_MS    250              /* the status line is fresh within this */
#define WR_LIFE_MS    (7LL * 86400000) /* an editor left open for a week closes */
#define WR_QUIT_WAIT  30               /* x 100 ms for the last edit to be acknowledged */
#define WR_CURSOR_MS  100              /* our cursor goes out at most this often */
#define WR_LABEL_ROWS 256              /* rows of the screen that name the cursors on them */

/* Keys ncurses has no code for in every terminal description. */
enum {
    WR_KEY_CLEFT = KEY_MAX + 1,
    WR_KEY_CRIGHT,
    WR_KEY_CHOME, /* Ctrl-Home, Ctrl-End: the start and the end of the text */
    WR_KEY_CEND,
};

struct wr_job;

struct wr {
    struct cli_ctx *ctx;
    struct cli_mtg mt;
    struct cli_text t;
    bool replica;
    struct cli_edbuf b;
    bool model;
    struct cli_edbuf_layout lay;

    enum proto_type type;
    const char *field;
    int64_t id;
    char label[96];
    char title[160]; /* the item's title, "" for the others */

    bool readonly;
    char why_ro[160];
    bool refused;  /* the server refused an edit: the replica is no longer in step */
    char msg[200]; /* a passing message on the status line */

    bool connected;
    int64_t retry_at;
    int backoff;
    struct wr_job *job;   /* a reconnection under way, NULL when none */
    uint32_t plist_msgid; /* the presence.list sent after a reconnection, 0 when none */

    struct {
        char user[PROTO_NAME_MAX + 1];
        int n;
    } here[WR_HERE_MAX];
    size_t nhere;

    /* Others' cursors, one per person (the last connection that said where it is). pos and
     * anchor are positions in the model's text once ready; before, they are in the server's
     * text at seq, which the replica has not reached yet. */
    struct wr_cur {
        char user[PROTO_NAME_MAX + 1];
        size_t pos, anchor;
        int64_t seq;
        bool ready;
    } curs[WR_HERE_MAX];
    size_t ncurs;
    char curnote[200];  /* cursors not named at their row: off the screen or the row is full */
    size_t sent_pos;    /* our cursor as last sent, SIZE_MAX to send it again */
    int64_t sent_acked; /* t.acked then: the server moved it over our own op since */
    int64_t sent_at;    /* when, in ms */

    char prompt;      /* 'f' find, 'g' go to an item, 0 none: keys go to the status line */
    char answer[256]; /* what is typed there (the find's text is kept for the next Ctrl-F) */
    size_t nanswer;

    size_t top; /* first row on screen */
    bool help;
    int key_cleft, key_cright, key_chome, key_cend;
    char recovery[4096];
};

/* ---- presence ---- */

static bool where_is_ours(const struct wr *w, const msgpack_object *where)
{
    char type[16] = "", field[16] = "";
    int64_t id = -1;
    if (where == NULL || where->type != MSGPACK_OBJECT_MAP) {
        return false;
    }
    cli_obj_strcpy(where, "type", type, sizeof(type));
    cli_obj_strcpy(where, "field", field, sizeof(field));
    cli_obj_i64(where, "id", &id);
    return strcmp(type, proto_type_info(w->type)->name) == 0 && id == w->id &&
           strcmp(field, w->field) == 0;
}

static void here_add(struct wr *w, const char *user, int delta)
{
    for (size_t i = 0; i < w->nhere; i++) {
        if (strcmp(w->here[i].user, user) == 0) {
            w->here[i].n += delta;
            if (w->here[i].n < 0) {
                w->here[i].n = 0;
            }
            return;
        }
    }
    if (delta > 0 && w->nhere < WR_HERE_MAX) {
        snprintf(w->here[w->nhere].user, sizeof(w->here[0].user), "%s", user);
        w->here[w->nhere].n = delta;
        w->nhere++;
    }
}

static bool here_has(const struct wr *w, const char *user)
{
    for (size_t i = 0; i < w->nhere; i++) {
        if (strcmp(w->here[i].user, user) == 0) {
            return w->here[i].n > 0;
        }
    }
    return false;
}

/* ---- others' cursors ---- */

static void cur_forget(struct wr *w, const char *user)
{
    for (size_t i = 0; i < w->ncurs; i++) {
        if (strcmp(w->curs[i].user, user) == 0) {
            w->curs[i] = w->curs[--w->ncurs];
            return;
        }
    }
}

/* Cursors whose seq the replica has reached move over what we have not had acknowledged
 * (the op in flight, then the buffer) into the model's text. The model equals the replica
 * whenever this runs. A notification that arrives after later events (a presence.list
 * answer read behind a replay) is taken as it is: off by those events at worst, and put
 * right by the next move. */
static void cur_resolve(struct wr *w)
{
    for (size_t i = 0; i < w->ncurs; i++) {
        struct wr_cur *c = &w->curs[i];
        if (c->ready || c->seq > w->t.seq) {
            continue;
        }
        size_t *ends[2] = {&c->pos, &c->anchor};
        for (int e = 0; e < 2; e++) {
            if (w->t.inflight) {
                *ends[e] = proto_op_transform_pos(*ends[e], &w->t.sent);
            }
            if (w->t.has_buffer) {
                *ends[e] = proto_op_transform_pos(*ends[e], &w->t.buffer);
            }
            if (*ends[e] > w->b.ncp) {
                *ends[e] = w->b.ncp;
            }
        }
        c->ready = true;
    }
}

/* The model's text changed through op (ours or others'): the cursors go with it. */
static void cur_move(struct wr *w, const struct proto_op *op)
{
    for (size_t i = 0; i < w->ncurs; i++) {
        if (w->curs[i].ready) {
            w->curs[i].pos = proto_op_transform_pos(w->curs[i].pos, op);
            w->curs[i].anchor = proto_op_transform_pos(w->curs[i].anchor, op);
        }
    }
}

/* Someone is at where (of seq): kept when it is a position in our text, else forgotten. */
static void cur_note(struct wr *w, const char *user, const msgpack_object *where, int64_t seq)
{
    int64_t pos = -1, anchor = -1;
    if (!where_is_ours(w, where) || !cli_obj_i64(where, "pos", &pos) || pos < 0) {
        cur_forget(w, user);
        return;
    }
    if (!cli_obj_i64(where, "anchor", &anchor) || anchor < 0) {
        anchor = pos;
    }
    struct wr_cur *c = NULL;
    for (size_t i = 0; i < w->ncurs && c == NULL; i++) {
        c = strcmp(w->curs[i].user, user) == 0 ? &w->curs[i] : NULL;
    }
    if (c == NULL) {
        if (w->ncurs == WR_HERE_MAX) {
            return;
        }
        c = &w->curs[w->ncurs++];
        snprintf(c->user, sizeof(c->user), "%s", user);
    }
    c->pos = (size_t)pos;
    c->anchor = (size_t)anchor;
    c->seq = seq;
    c->ready = false;
    cur_resolve(w);
}

/* Says where our cursor is, when the replica has nothing unacknowledged (so that its text
 * is the server's at t.seq, the base) and the cursor moved or our own op moved it on the
 * server; at most every WR_CURSOR_MS. */
static void cur_send(struct wr *w)
{
    if (!w->connected || w->refused || !cli_text_idle(&w->t) ||
        (w->b.cur == w->sent_pos && w->t.acked == w->sent_acked)) {
        return;
    }
    int64_t now = proto_now_ms();
    if (now - w->sent_at < WR_CURSOR_MS) {
        return;
    }
    if (cli_conn_sendf(w->mt.c, NULL, "presence.set", "{s:s, s:{s:s, s:I, s:s, s:I, s:I, s:I}}",
                       "meeting", w->mt.id, "where", "type", proto_type_info(w->type)->name, "id",
                       w->id, "field", w->field, "pos", (int64_t)w->b.cur, "anchor",
                       (int64_t)w->b.cur, "base", w->t.seq) == 0) {
        w->sent_pos = w->b.cur;
        w->sent_acked = w->t.acked;
        w->sent_at = now;
    }
}

/* A presence notification: {"user", "where", "state"}. Connections are not named, so a
 * person counts once per connection here; one that moves elsewhere or leaves counts off. */
static void presence_note(struct wr *w, const msgpack_object *p)
{
    char user[PROTO_NAME_MAX + 1] = "", state[8] = "";
    cli_obj_strcpy(p, "user", user, sizeof(user));
    cli_obj_strcpy(p, "state", state, sizeof(state));
    if (user[0] == '\0') {
        return;
    }
    const msgpack_object *where = proto_mp_map_get(p, "where");
    int64_t seq = 0;
    cli_obj_i64(p, "seq", &seq);
    if (strcmp(state, "leave") != 0 && where_is_ours(w, where)) {
        /* A move within this text (a cursor) is no one new; one from elsewhere is taken to
         * be, when that person was not counted here already. */
        if (strcmp(state, "join") == 0 || !here_has(w, user)) {
            here_add(w, user, 1);
        }
        cur_note(w, user, where, seq);
    } else {
        here_add(w, user, -1);
        cur_forget(w, user);
    }
}

/* The answer to presence.list: [{"user", "where", "since"}]. */
static void presence_take(struct wr *w, const struct cli_msg *m)
{
    if (m->error || m->result == NULL || m->result->type != MSGPACK_OBJECT_ARRAY) {
        return;
    }
    w->nhere = 0;
    w->ncurs = 0;
    for (uint32_t i = 0; i < m->result->via.array.size; i++) {
        const msgpack_object *e = &m->result->via.array.ptr[i];
        char user[PROTO_NAME_MAX + 1] = "";
        cli_obj_strcpy(e, "user", user, sizeof(user));
        const msgpack_object *where = proto_mp_map_get(e, "where");
        if (user[0] && where_is_ours(w, where)) {
            here_add(w, user, 1);
            /* Our own connection is among them and cannot be told from another of the
             * same person's: that one's cursor shows from its next move. */
            if (strcmp(user, w->mt.s.user) != 0) {
                int64_t seq = 0;
                cli_obj_i64(e, "seq", &seq);
                cur_note(w, user, where, seq);
            }
        }
    }
}

static void presence_load(struct wr *w)
{
    struct cli_msg *m = NULL;
    if (cli_conn_callf(w->mt.c, &m, "presence.list", "{s:s}", "meeting", w->mt.id) == 0) {
        presence_take(w, m);
    }
    cli_msg_free(m);
}

/* Says where we are (or, with here false, that we left) without waiting for the reply. */
static void presence_send(struct wr *w, bool here)
{
    if (!w->connected) {
        return;
    }
    if (!here) {
        cli_conn_sendf(w->mt.c, NULL, "presence.set", "{s:s, s:n}", "meeting", w->mt.id, "where");
    } else {
        cli_conn_sendf(w->mt.c, NULL, "presence.set", "{s:s, s:{s:s, s:I, s:s}}", "meeting",
                       w->mt.id, "where", "type", proto_type_info(w->type)->name, "id", w->id,
                       "field", w->field);
    }
}

/* ---- recovery ---- */

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            int rc = mkdir(path, 0700);
            *p = '/';
            if (rc != 0 && errno != EEXIST) {
                return -1;
            }
        }
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Writes the text as the user sees it to a new file (0600) of the state folder. */
static int recovery_save(struct wr *w)
{
    if (w->recovery[0]) {
        unlink(w->recovery); /* the newer text replaces it */
    }
    char dir[3500];
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') {
        snprintf(dir, sizeof(dir), "%s/confer", xdg);
    } else if (home && home[0] == '/') {
        snprintf(dir, sizeof(dir), "%s/.local/state/confer", home);
    } else {
        snprintf(dir, sizeof(dir), "/tmp");
    }
    if (mkdir_p(dir) != 0) {
        snprintf(dir, sizeof(dir), "/tmp");
    }
    char safe[48];
    size_t n = 0;
    for (const char *p = w->label; *p && n + 1 < sizeof(safe); p++) {
        char c = *p;
        safe[n++] =
            (char)((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                       ? c
                       : '-');
    }
    safe[n] = '\0';
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    snprintf(w->recovery, sizeof(w->recovery), "%s/write-%s-%s-%s-XXXXXX.txt", dir, w->mt.id, safe,
             stamp);
    int fd = mkstemps(w->recovery, 4); /* mode 0600 */
    if (fd < 0) {
        w->recovery[0] = '\0';
        return -1;
    }
    size_t off = 0;
    while (off < w->b.len) {
        ssize_t k = write(fd, w->b.text + off, w->b.len - off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        off += (size_t)k;
    }
    if (close(fd) != 0 || off < w->b.len) {
        return -1;
    }
    return 0;
}

/* ---- the connection ---- */

static void conn_lost(struct wr *w)
{
    if (w->mt.c) {
        cli_conn_free(w->mt.c);
        w->mt.c = NULL;
    }
    if (w->connected) {
        w->backoff = 250;
    }
    w->connected = false;
    w->retry_at = proto_now_ms() + w->backoff;
    w->backoff = w->backoff < 4000 ? w->backoff * 2 : 5000;
}

/* The replica's text changed under the model: take the difference (others' words). */
static void follow_replica(struct wr *w)
{
    if (w->t.len == w->b.len && memcmp(w->t.text, w->b.text, w->b.len) == 0) {
        return;
    }
    struct proto_op op;
    proto_op_init(&op);
    if (proto_diff(w->b.text, w->b.len, w->t.text, w->t.len, &op) == 0 &&
        cli_edbuf_remote(&w->b, w->t.text, w->t.len, &op) == 0) {
        cur_move(w, &op);
    }
    proto_op_free(&op);
}

static void refuse(struct wr *w, const char *why)
{
    w->refused = true;
    w->readonly = true;
    recovery_save(w);
    snprintf(w->why_ro, sizeof(w->why_ro), "edit refused (%.100s); your text is saved", why);
}

static void handle(struct wr *w, const struct cli_msg *m)
{
    if (m->kind == PROTO_RPC_NOTIFY && m->method && strcmp(m->method, "presence") == 0) {
        presence_note(w, m->params);
        return;
    }
    if (m->kind == PROTO_RPC_RESPONSE && w->plist_msgid && m->msgid == w->plist_msgid) {
        w->plist_msgid = 0;
        presence_take(w, m);
        return;
    }
    if (w->refused) {
        return;
    }
    cur_resolve(w);
    int rc = cli_text_handle(&w->t, w->mt.c, m);
    if (rc < 0) {
        if (rc == PROTO_EINVAL && w->t.error[0]) {
            refuse(w, w->t.error);
        } else {
            conn_lost(w); /* sending the next op failed */
        }
        return;
    }
    if (w->t.gone && !w->readonly) {
        w->readonly = true;
        snprintf(w->why_ro, sizeof(w->why_ro), "deleted by someone else");
        recovery_save(w);
    }
    follow_replica(w);
    cur_resolve(w);
}

/* Takes what the connection has, without waiting. */
static void drain(struct wr *w)
{
    for (int i = 0; i < WR_MSGS_BURST && w->connected; i++) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(w->mt.c, 0, &m);
        if (rc == PROTO_ETIMEDOUT) {
            return;
        }
        if (rc != 0) {
            conn_lost(w);
            return;
        }
        handle(w, m);
        cli_msg_free(m);
    }
}

static void flush(struct wr *w)
{
    if (w->connected && !w->refused && cli_text_flush(&w->t, w->mt.c) != 0) {
        conn_lost(w);
    }
}

/* A reconnection runs on a thread of its own, so that typing goes on while it connects,
 * logs in and subscribes (from the seq the replica held when it started: nothing changes
 * the replica's seq while offline). The loop picks the connection up when it is done. */
struct wr_job {
    pthread_t th;
    atomic_bool done;
    struct cli_ctx ctx; /* a copy whose errors go nowhere: the status line says it */
    struct cli_session s;
    char meeting[PROTO_NAME_MAX + 1];
    int64_t since;
    struct cli_conn *c; /* the result, NULL on failure */
};

static void *job_run(void *arg)
{
    struct wr_job *j = arg;
    struct cli_msg *m = NULL;
    if (cli_session_connect(&j->ctx, &j->s, &j->c, NULL) == CLI_EXIT_OK) {
        cli_conn_set_timeout(j->c, 5000);
        int rc = cli_conn_callf(j->c, &m, "meeting.subscribe", "{s:s, s:I}", "meeting", j->meeting,
                                "since", j->since);
        if (rc != 0 || m->error) {
            cli_conn_free(j->c);
            j->c = NULL;
        } else {
            cli_conn_set_timeout(j->c, CLI_CALL_TIMEOUT_MS);
        }
    }
    cli_msg_free(m);
    atomic_store(&j->done, true);
    return NULL;
}

static void job_start(struct wr *w)
{
    struct wr_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        w->retry_at = proto_now_ms() + w->backoff;
        return;
    }
    j->ctx = *w->ctx;
    j->ctx.err = fopen("/dev/null", "w");
    j->ctx.interactive = false;
    j->ctx.connect_timeout_ms = 2000;
    j->s = w->mt.s;
    snprintf(j->meeting, sizeof(j->meeting), "%s", w->mt.id);
    j->since = w->t.seq;
    atomic_init(&j->done, false);
    if (j->ctx.err == NULL || pthread_create(&j->th, NULL, job_run, j) != 0) {
        if (j->ctx.err) {
            fclose(j->ctx.err);
        }
        cli_session_wipe(&j->s);
        free(j);
        w->retry_at = proto_now_ms() + w->backoff;
        return;
    }
    w->job = j;
}

/* Waits for the job and returns its connection (NULL when it failed). */
static struct cli_conn *job_end(struct wr *w)
{
    struct wr_job *j = w->job;
    pthread_join(j->th, NULL);
    struct cli_conn *c = j->c;
    fclose(j->ctx.err);
    cli_session_wipe(&j->s);
    free(j);
    w->job = NULL;
    return c;
}

/* Comes back after a break, without waiting: starts a job when it is time; when one is
 * done, says where we are, asks who is here, takes the replay and sends again what was in
 * flight (with its cid: applied once). */
static void reconnect(struct wr *w)
{
    if (w->job == NULL) {
        if (proto_now_ms() >= w->retry_at) {
            job_start(w);
        }
        return;
    }
    if (!atomic_load(&w->job->done)) {
        return;
    }
    struct cli_conn *c = job_end(w);
    if (c == NULL) {
        conn_lost(w);
        return;
    }
    w->mt.c = c;
    w->connected = true;
    w->backoff = 250;
    presence_send(w, true);
    w->sent_pos = SIZE_MAX; /* the new connection has no cursor of ours yet */
    if (cli_conn_sendf(w->mt.c, &w->plist_msgid, "presence.list", "{s:s}", "meeting", w->mt.id) !=
        0) {
        w->plist_msgid = 0;
    }
    drain(w);
    if (w->connected && !w->refused && cli_text_resend(&w->t, w->mt.c) != 0) {
        conn_lost(w);
    }
}

/* ---- keys ---- */

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            return 0;
        }
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) {
        return 0;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* An edit's op goes to the replica; a failure there leaves the two apart, so it stops
 * editing (with the text saved). */
static void to_replica(struct wr *w, struct proto_op *op, int rc)
{
    if (rc == 0 && !proto_op_is_noop(op)) {
        if (cli_text_local(&w->t, op) != 0) {
            refuse(w, "the change does not fit the text");
        } else {
            cur_move(w, op);
        }
    }
    proto_op_free(op);
}

static bool editable(struct wr *w)
{
    if (w->readonly) {
        snprintf(w->msg, sizeof(w->msg), "read-only: %s", w->why_ro);
        return false;
    }
    return true;
}

static void insert_text(struct wr *w, const char *s, size_t n)
{
    if (n == 0 || !editable(w)) {
        return;
    }
    struct proto_op op;
    proto_op_init(&op);
    to_replica(w, &op, cli_edbuf_insert(&w->b, s, n, &op));
}

static int text_rows(void)
{
    return LINES > 2 ? LINES - 1 : 1;
}

static bool find_target(struct wr *w, const msgpack_object *rec, const char *name,
                        const char *decision, const char *field);
static void check_access(struct wr *w, const msgpack_object *rec);

/* Enter at the find prompt: the cursor goes to the next match, after the cursor's place. */
static void find_next(struct wr *w)
{
    if (w->nanswer == 0) {
        return;
    }
    bool wrapped = false;
    size_t from = w->b.cur < w->b.ncp ? w->b.cur + 1 : w->b.ncp;
    size_t at = cli_edbuf_find(&w->b, w->answer, w->nanswer, from, &wrapped);
    if (at == SIZE_MAX) {
        snprintf(w->msg, sizeof(w->msg), "not found");
        return;
    }
    cli_edbuf_set_cursor(&w->b, at);
    snprintf(w->msg, sizeof(w->msg), "%s", wrapped ? "wrapped to the start" : "");
}

/* Enter at the go-to prompt: the item of that number (or #ID) replaces this text in place,
 * from a new subscription's snapshot. Only when nothing of ours is unsent, so no words are
 * left behind. */
static void goto_item(struct wr *w)
{
    char name[sizeof(w->answer)];
    snprintf(name, sizeof(name), "%.*s", (int)w->nanswer, w->answer);
    if (name[0] == '\0') {
        return;
    }
    if (!w->connected) {
        snprintf(w->msg, sizeof(w->msg), "offline: go to an item once connected");
        return;
    }
    if (!w->refused && !cli_text_idle(&w->t)) {
        snprintf(w->msg, sizeof(w->msg), "your last words are still being sent: try again");
        return;
    }
    struct cli_msg *snap = NULL;
    if (cli_conn_callf(w->mt.c, &snap, "meeting.subscribe", "{s:s}", "meeting", w->mt.id) != 0) {
        cli_msg_free(snap);
        conn_lost(w); /* no answer: reconnecting resubscribes this text from its seq */
        snprintf(w->msg, sizeof(w->msg), "could not read the meeting again");
        return;
    }
    if (snap->error) {
        cli_msg_free(snap);
        snprintf(w->msg, sizeof(w->msg), "could not read the meeting again");
        return;
    }
    const msgpack_object *rec = proto_mp_map_get(snap->result, "snapshot");
    const msgpack_object *o = cli_rec_find(rec, PROTO_T_ITEM, name);
    int64_t seq = 0, id = 0;
    cli_obj_i64(snap->result, "seq", &seq);
    if (o) {
        cli_obj_i64(o, "id", &id);
    }
    size_t len = 0;
    const char *text = o ? cli_obj_str(o, "body", &len) : NULL;
    struct cli_text t;
    struct cli_edbuf b;
    if (o == NULL) {
        snprintf(w->msg, sizeof(w->msg), "no item %.100s (confer agenda lists them)", name);
    } else if (cli_text_init(&t, w->mt.id, "item", id, NULL, "body", text ? text : "",
                             text ? len : 0, seq) != 0) {
        snprintf(w->msg, sizeof(w->msg), "out of memory");
    } else if (cli_edbuf_init(&b, text ? text : "", text ? len : 0) != 0) {
        cli_text_free(&t);
        snprintf(w->msg, sizeof(w->msg), "the body of item %.100s is not valid UTF-8", name);
    } else {
        presence_send(w, false);
        cli_text_free(&w->t);
        cli_edbuf_free(&w->b);
        bool viewer = w->readonly && strstr(w->why_ro, "viewer") != NULL;
        find_target(w, rec, name, NULL, "body");
        w->t = t;
        w->b = b;
        w->refused = false;
        w->readonly = viewer;
        if (!viewer) {
            w->why_ro[0] = '\0';
            check_access(w, rec);
        }
        w->top = 0;
        w->nhere = 0;
        w->ncurs = 0;
        w->sent_pos = SIZE_MAX;
        presence_send(w, true);
        if (cli_conn_sendf(w->mt.c, &w->plist_msgid, "presence.list", "{s:s}", "meeting",
                           w->mt.id) != 0) {
            w->plist_msgid = 0;
        }
        w->msg[0] = '\0';
    }
    cli_msg_free(snap);
}

/* A key while the status line asks (Ctrl-F find, Ctrl-G go to). Returns false when the key
 * closed the prompt and is to be taken as usual. */
static bool prompt_key(struct wr *w, int rc, wint_t wch)
{
    if (rc == OK && wch >= 0x20 && wch != 0x7F) {
        char u[4];
        size_t k = utf8_put((uint32_t)wch, u);
        if (w->nanswer + k < sizeof(w->answer)) {
            memcpy(w->answer + w->nanswer, u, k);
            w->nanswer += k;
        }
        return true;
    }
    bool back =
        (rc == OK && (wch == 8 || wch == 0x7F)) || (rc == KEY_CODE_YES && wch == KEY_BACKSPACE);
    if (back) {
        while (w->nanswer > 0 && ((unsigned char)w->answer[w->nanswer - 1] & 0xC0) == 0x80) {
            w->nanswer--;
        }
        if (w->nanswer > 0) {
            w->nanswer--;
        }
        return true;
    }
    bool enter =
        (rc == OK && (wch == '\r' || wch == '\n')) || (rc == KEY_CODE_YES && wch == KEY_ENTER);
    if (enter || (rc == OK && wch == 6 && w->prompt == 'f')) {
        if (w->prompt == 'f') {
            find_next(w); /* the prompt stays: Enter again goes to the next one */
        } else {
            w->prompt = 0;
            goto_item(w);
        }
        return true;
    }
    w->prompt = 0;
    return rc == OK && wch == 27; /* Esc only closes; any other key acts as well */
}

/* One key (wch, from get_wch with kind rc). Returns false to quit. */
static bool key(struct wr *w, int rc, wint_t wch, char *typed, size_t *ntyped)
{
    if (w->prompt) {
        insert_text(w, typed, *ntyped);
        *ntyped = 0;
        if (prompt_key(w, rc, wch)) {
            return true;
        }
    }
    /* Typed characters gather into one insert (a paste is one edit). */
    if (rc == OK && wch >= 0x20 && wch != 0x7F) {
        char u[4];
        size_t k = utf8_put((uint32_t)wch, u);
        if (*ntyped + k > WR_KEYS_BURST) {
            insert_text(w, typed, *ntyped); /* full: what came so far is one insert */
            *ntyped = 0;
        }
        memcpy(typed + *ntyped, u, k);
        *ntyped += k;
        return true;
    }
    insert_text(w, typed, *ntyped);
    *ntyped = 0;
    struct proto_op op;
    proto_op_init(&op);
    int code = rc == KEY_CODE_YES ? (int)wch : -1;
    if (rc == OK) {
        switch (wch) {
        case 17: /* Ctrl-Q */
        case 3:  /* Ctrl-C */
            return false;
        case 6: /* Ctrl-F: the last find's text stays, to be used again or changed */
            w->prompt = 'f';
            return true;
        case 7: /* Ctrl-G */
            w->prompt = 'g';
            w->nanswer = 0;
            return true;
        case '\r':
        case '\n':
            insert_text(w, "\n", 1);
            return true;
        case '\t':
            insert_text(w, "\t", 1);
            return true;
        case 8:
        case 0x7F:
            code = KEY_BACKSPACE;
            break;
        case 26: /* Ctrl-Z */
        case 25: /* Ctrl-Y */
            if (editable(w)) {
                int u = wch == 26 ? cli_edbuf_undo(&w->b, &op) : cli_edbuf_redo(&w->b, &op);
                if (u == 1) {
                    snprintf(w->msg, sizeof(w->msg), "nothing to %s", wch == 26 ? "undo" : "redo");
                } else if (u == 2) {
                    snprintf(w->msg, sizeof(w->msg),
                             "others changed those words since: undo history cleared");
                }
                to_replica(w, &op, u);
            }
            return true;
        default:
            return true;
        }
    }
    if (code == w->key_cleft) {
        code = WR_KEY_CLEFT;
    } else if (code == w->key_cright) {
        code = WR_KEY_CRIGHT;
    } else if (code == w->key_chome) {
        code = WR_KEY_CHOME;
    } else if (code == w->key_cend) {
        code = WR_KEY_CEND;
    }
    switch (code) {
    case KEY_LEFT:
        cli_edbuf_left(&w->b);
        break;
    case KEY_RIGHT:
        cli_edbuf_right(&w->b);
        break;
    case WR_KEY_CLEFT:
        cli_edbuf_word_left(&w->b);
        break;
    case WR_KEY_CRIGHT:
        cli_edbuf_word_right(&w->b);
        break;
    case WR_KEY_CHOME:
        w->b.cur = 0;
        break;
    case WR_KEY_CEND:
        w->b.cur = w->b.ncp;
        break;
    case KEY_UP:
    case KEY_DOWN:
    case KEY_PPAGE:
    case KEY_NPAGE: {
        long step = code == KEY_UP ? -1 : code == KEY_DOWN ? 1 : text_rows() - 1;
        if (code == KEY_PPAGE) {
            step = -step;
        }
        cli_edbuf_layout(&w->b, COLS > 2 ? COLS - 1 : 2, &w->lay);
        cli_edbuf_vertical(&w->b, &w->lay, step);
        break;
    }
    case KEY_HOME:
    case KEY_END:
        cli_edbuf_layout(&w->b, COLS > 2 ? COLS - 1 : 2, &w->lay);
        if (code == KEY_HOME) {
            cli_edbuf_home(&w->b, &w->lay);
        } else {
            cli_edbuf_end(&w->b, &w->lay);
        }
        break;
    case KEY_BACKSPACE:
        if (editable(w)) {
            to_replica(w, &op, cli_edbuf_backspace(&w->b, &op));
        }
        break;
    case KEY_DC:
        if (editable(w)) {
            to_replica(w, &op, cli_edbuf_delete(&w->b, &op));
        }
        break;
    case KEY_ENTER:
        insert_text(w, "\n", 1);
        break;
    case KEY_F(1):
        w->help = !w->help;
        break;
    default:
        break;
    }
    return true;
}

/* Takes every key waiting. Returns false when the user quits. */
static bool keys(struct wr *w)
{
    char typed[WR_KEYS_BURST];
    size_t ntyped = 0;
    bool go = true;
    for (int i = 0; i < WR_KEYS_BURST && go; i++) {
        wint_t wch = 0;
        int rc = get_wch(&wch);
        if (rc == ERR) {
            break;
        }
        go = key(w, rc, wch, typed, &ntyped);
    }
    insert_text(w, typed, ntyped);
    return go;
}

/* ---- the screen ---- */

static void draw_status(struct wr *w, int y)
{
    char line[1600], who[300] = "";
    bool self_seen = false;
    for (size_t i = 0; i < w->nhere; i++) {
        int n = w->here[i].n;
        if (!self_seen && strcmp(w->here[i].user, w->mt.s.user) == 0) {
            n--; /* this connection */
            self_seen = true;
        }
        if (n > 0) {
            size_t l = strlen(who);
            snprintf(who + l, sizeof(who) - l, "%s%s", l ? ", " : "", w->here[i].user);
        }
    }
    const char *conn =
        w->connected ? (cli_text_idle(&w->t) ? "connected" : "sending") : "offline, reconnecting";
    /* The title is cut (at a character) so that the rest of the line stays on the screen. */
    int room = COLS - 60 - (w->readonly ? (int)strlen(w->why_ro) + 14 : 0) - (int)strlen(who) -
               (w->curnote[0] ? (int)strlen(w->curnote) + 12 : 0);
    char title[sizeof(w->title)];
    snprintf(title, sizeof(title), "%s", w->title);
    size_t cut = room > 8 ? (size_t)room : 8;
    if (strlen(title) > cut) {
        while (cut > 0 && ((unsigned char)title[cut] & 0xC0) == 0x80) {
            cut--;
        }
        title[cut] = '\0';
    }
    snprintf(line, sizeof(line), " %s%s%s | seq %lld | here: %s | %s%s%s%s%s | %s", w->label,
             title[0] ? " " : "", title, (long long)w->t.seq, who[0] ? who : "nobody else", conn,
             w->readonly ? " | read-only: " : "", w->readonly ? w->why_ro : "",
             w->curnote[0] ? " | cursors: " : "", w->curnote, w->msg[0] ? w->msg : "F1 help");
    char clean[1600];
    cli_sanitize(line, strlen(line), clean, sizeof(clean));
    attron(A_REVERSE);
    mvaddstr(y, 0, clean);
    for (int x = getcurx(stdscr); x < COLS && getcury(stdscr) == y; x++) {
        addch(' ');
    }
    attroff(A_REVERSE);
}

/* Others' cursors: a reversed cell, the selection underlined, and their names at the
 * right end of the row; on the status line when the row is full or the cursor is off the
 * screen. */
static void draw_cursors(struct wr *w, int h)
{
    char names[WR_LABEL_ROWS][64];
    int rows = h < WR_LABEL_ROWS ? h : WR_LABEL_ROWS;
    for (int y = 0; y < rows; y++) {
        names[y][0] = '\0';
    }
    w->curnote[0] = '\0';
    for (size_t i = 0; i < w->ncurs; i++) {
        const struct wr_cur *c = &w->curs[i];
        if (!c->ready) {
            continue;
        }
        size_t lo = c->pos < c->anchor ? c->pos : c->anchor;
        size_t hi = c->pos < c->anchor ? c->anchor : c->pos;
        lo = lo < w->b.ncp ? lo : w->b.ncp;
        hi = hi < w->b.ncp ? hi : w->b.ncp;
        size_t r1 = 0, r2 = 0, r = 0;
        int c1 = 0, c2 = 0, col = 0;
        cli_edbuf_locate(&w->b, &w->lay, lo, &r1, &c1);
        cli_edbuf_locate(&w->b, &w->lay, hi, &r2, &c2);
        for (size_t k = r1; k <= r2 && lo < hi; k++) {
            if (k < w->top || k >= w->top + (size_t)h || k >= w->lay.n) {
                continue;
            }
            int from = k == r1 ? c1 : 0, to = k == r2 ? c2 : w->lay.rows[k].width;
            if (to > from) {
                mvchgat((int)(k - w->top), from, to - from, A_UNDERLINE, 0, NULL);
            }
        }
        cli_edbuf_locate(&w->b, &w->lay, c->pos < w->b.ncp ? c->pos : w->b.ncp, &r, &col);
        if (r < w->top || r >= w->top + (size_t)h || r - w->top >= WR_LABEL_ROWS) {
            size_t l = strlen(w->curnote);
            snprintf(w->curnote + l, sizeof(w->curnote) - l, "%s%s %s", l ? ", " : "", c->user,
                     r < w->top ? "above" : "below");
            continue;
        }
        int y = (int)(r - w->top);
        mvchgat(y, col < COLS ? col : COLS - 1, 1, A_REVERSE, 0, NULL);
        if (y < rows) {
            size_t l = strlen(names[y]);
            snprintf(names[y] + l, sizeof(names[y]) - l, "%s%s", l ? "," : "<", c->user);
        }
    }
    for (int y = 0; y < rows; y++) {
        if (names[y][0] == '\0') {
            continue;
        }
        char clean[64];
        cli_sanitize(names[y], strlen(names[y]), clean, sizeof(clean));
        int len = (int)strlen(clean);
        int x = COLS - 1 - len;
        if (x <= w->lay.rows[w->top + (size_t)y].width) {
            /* No room after the row's words: the names go to the status line. */
            size_t l = strlen(w->curnote);
            snprintf(w->curnote + l, sizeof(w->curnote) - l, "%s%s at row %d", l ? ", " : "",
                     clean + 1, y + 1);
            continue;
        }
        attron(A_BOLD);
        mvaddstr(y, x > 0 ? x : 0, clean);
        attroff(A_BOLD);
    }
}

static void draw(struct wr *w)
{
    int width = COLS > 2 ? COLS - 1 : 2; /* the last column holds a cursor at a row's end */
    if (cli_edbuf_layout(&w->b, width, &w->lay) != 0) {
        return;
    }
    int h = text_rows() - (w->help ? 1 : 0);
    if (h < 1) {
        h = 1;
    }
    size_t crow = 0;
    int ccol = 0;
    cli_edbuf_locate(&w->b, &w->lay, w->b.cur, &crow, &ccol);
    if (crow < w->top) {
        w->top = crow;
    } else if (crow >= w->top + (size_t)h) {
        w->top = crow - (size_t)h + 1;
    }
    erase();
    wchar_t cells[1024];
    for (int y = 0; y < h && w->top + (size_t)y < w->lay.n; y++) {
        const struct cli_edbuf_row *r = &w->lay.rows[w->top + (size_t)y];
        int n = 0;
        for (size_t i = r->bstart; i < r->bend && n < (int)(sizeof(cells) / sizeof(cells[0]));) {
            size_t k = i + 1;
            while (k < r->bend && ((unsigned char)w->b.text[k] & 0xC0) == 0x80) {
                k++;
            }
            uint32_t cp = (unsigned char)w->b.text[i];
            if (k - i == 2) {
                cp = ((cp & 0x1F) << 6) | ((unsigned char)w->b.text[i + 1] & 0x3F);
            } else if (k - i == 3) {
                cp = ((cp & 0x0F) << 12) | (((unsigned char)w->b.text[i + 1] & 0x3F) << 6) |
                     ((unsigned char)w->b.text[i + 2] & 0x3F);
            } else if (k - i == 4) {
                cp = ((cp & 0x07) << 18) | (((unsigned char)w->b.text[i + 1] & 0x3F) << 12) |
                     (((unsigned char)w->b.text[i + 2] & 0x3F) << 6) |
                     ((unsigned char)w->b.text[i + 3] & 0x3F);
            }
            if (cp == '\t') {
                cp = ' ';
            } else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
                cp = '?';
            }
            cells[n++] = (wchar_t)cp;
            i = k;
        }
        if (n > 0) {
            mvaddnwstr(y, 0, cells, n);
        }
    }
    draw_cursors(w, h);
    if (w->help) {
        attron(A_BOLD);
        mvaddstr(h, 0,
                 " Ctrl-Q quit  Ctrl-Z undo  Ctrl-Y redo  Ctrl-F find  Ctrl-G go to item  "
                 "Ctrl-Left/Right word  Home/End (Ctrl: text)  PgUp/PgDn  F1 closes help");
        attroff(A_BOLD);
    }
    draw_status(w, LINES - 1);
    if (w->prompt) {
        char line[400], clean[400];
        snprintf(line, sizeof(line), " %s: %.*s", w->prompt == 'f' ? "find" : "go to item",
                 (int)w->nanswer, w->answer);
        cli_sanitize(line, strlen(line), clean, sizeof(clean));
        size_t l = strlen(clean);
        snprintf(clean + l, sizeof(clean) - l, "  %s",
                 w->msg[0]          ? w->msg
                 : w->prompt == 'f' ? "(Enter next, Esc done)"
                                    : "(Enter, Esc)");
        move(LINES - 1, 0);
        clrtoeol();
        mvaddstr(LINES - 1, 0, clean);
        /* The cursor waits at the answer's end (its columns as the screen counts them). */
        int x = 0;
        for (const char *p = line; *p; p++) {
            x += ((unsigned char)*p & 0xC0) != 0x80;
        }
        move(LINES - 1, x < COLS ? x : COLS - 1);
        refresh();
        return;
    }
    int y = (int)(crow - w->top);
    move(y, ccol < COLS ? ccol : COLS - 1);
    refresh();
}

/* ---- the command ---- */

/* Finds the text: ITEM (an item's number or #ID, else an action's ref) or --decision. */
static bool find_target(struct wr *w, const msgpack_object *rec, const char *name,
                        const char *decision, const char *field)
{
    const msgpack_object *o = NULL;
    if (decision) {
        w->type = PROTO_T_DECISION;
        o = cli_rec_find(rec, w->type, decision);
    } else {
        w->type = PROTO_T_ITEM;
        o = cli_rec_find(rec, w->type, name);
        if (o == NULL) {
            w->type = PROTO_T_ACTION;
            o = cli_rec_find(rec, w->type, name);
        }
    }
    if (o == NULL) {
        cli_fail(w->ctx,
                 "no %s %s in this meeting (confer agenda lists the items, confer "
                 "actions the actions)",
                 decision ? "decision" : "item or action", decision ? decision : name);
        return false;
    }
    w->field = field ? field : w->type == PROTO_T_ITEM ? "body" : "text";
    const msgpack_object *v = proto_mp_map_get(o, w->field);
    if (v && v->type != MSGPACK_OBJECT_STR && v->type != MSGPACK_OBJECT_NIL) {
        cli_fail(w->ctx, "%s is not a text field of a %s", w->field,
                 proto_type_info(w->type)->name);
        return false;
    }
    cli_obj_i64(o, "id", &w->id);
    cli_obj_label(w->type, o, w->label, sizeof(w->label));
    cli_obj_strcpy(o, w->type == PROTO_T_ITEM ? "title" : "to", w->title, sizeof(w->title));
    return true;
}

/* Why this user may not write here, from meeting.list (role) and the record (status). */
static void check_access(struct wr *w, const msgpack_object *rec)
{
    const msgpack_object *meeting = cli_rec_objects(rec, PROTO_T_MEETING);
    char status[16] = "";
    cli_obj_strcpy(meeting, "status", status, sizeof(status));
    if (strcmp(status, "final") == 0) {
        w->readonly = true;
        snprintf(w->why_ro, sizeof(w->why_ro), "the meeting is final");
        return;
    }
    struct cli_msg *m = NULL;
    if (cli_conn_callf(w->mt.c, &m, "meeting.list", NULL) == 0 && !m->error && m->result &&
        m->result->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < m->result->via.array.size; i++) {
            const msgpack_object *e = &m->result->via.array.ptr[i];
            char id[PROTO_NAME_MAX + 1] = "", role[16] = "";
            cli_obj_strcpy(e, "id", id, sizeof(id));
            cli_obj_strcpy(e, "role", role, sizeof(role));
            if (strcmp(id, w->mt.id) == 0 && strcmp(role, "viewer") == 0) {
                w->readonly = true;
                snprintf(w->why_ro, sizeof(w->why_ro), "you are a viewer of this meeting");
            }
        }
    }
    cli_msg_free(m);
}

static int open_text(struct wr *w, const char *name, const char *decision, const char *field)
{
    struct cli_msg *snap = NULL;
    int code = cli_mtg_call(w->ctx, &w->mt, "subscribe", &snap, "meeting.subscribe", "{s:s}",
                            "meeting", w->mt.id);
    if (code != CLI_EXIT_OK) {
        return code;
    }
    const msgpack_object *rec = proto_mp_map_get(snap->result, "snapshot");
    int64_t seq = 0;
    cli_obj_i64(snap->result, "seq", &seq);
    code = CLI_EXIT_FAIL;
    if (find_target(w, rec, name, decision, field)) {
        const msgpack_object *o = cli_rec_by_id(rec, w->type, w->id);
        size_t len = 0;
        const char *text = o ? cli_obj_str(o, w->field, &len) : NULL;
        if (text == NULL) {
            text = "";
            len = 0;
        }
        if (cli_text_init(&w->t, w->mt.id, proto_type_info(w->type)->name, w->id, NULL, w->field,
                          text, len, seq) != 0) {
            code = cli_fail(w->ctx, "out of memory");
        } else {
            w->replica = true;
            if (cli_edbuf_init(&w->b, text, len) != 0) {
                code = cli_fail(w->ctx, "the text of %s is not valid UTF-8", w->label);
            } else {
                w->model = true;
                check_access(w, rec);
                code = CLI_EXIT_OK;
            }
        }
    }
    cli_msg_free(snap);
    return code;
}

/* The key code a terminal description gives a capability, when it has it. */
static int key_of(const char *cap, const char *fallback, int code)
{
    char *s = tigetstr(cap);
    int k = 0;
    if (s != NULL && s != (char *)-1 && (k = key_defined(s)) > 0) {
        return k;
    }
    define_key(fallback, code);
    return code;
}

int cli_cmd_write(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *decision = NULL, *field = NULL;
    const struct cli_opt opts[] = {
        {"decision", 0, CLI_OPT_STR, "#ID", "write a decision's text", NULL, &decision},
        {"field", 0, CLI_OPT_STR, "F", "the text field (body of an item, text of the others)", NULL,
         &field},
    };
    const struct cli_usage u = {
        .cmd = "write",
        .synopsis = "ITEM [--field F]\nACTION-REF\n--decision #ID",
        .about = "Opens a full-screen editor on a text: an item's body (ITEM is its number, or "
                 "#ID), an action's text (RG-IEM-3) or a decision's. Others' changes appear "
                 "as they are made and yours reach them as you type. Keys: arrows, Home/End (with "
                 "Ctrl: of the text), "
                 "PgUp/PgDn, Ctrl-Left/Right by word, Backspace, Delete, Enter, Ctrl-Z/Ctrl-Y "
                 "undo/redo of your own typing, Ctrl-F find (Enter goes to the next match, "
                 "wrapping), Ctrl-G go to another item's body, F1 help, Ctrl-Q quit. A viewer, or "
                 "anyone in a "
                 "final meeting, reads only. Words the server did not take are kept in a file "
                 "under $XDG_STATE_HOME/confer (else ~/.local/state/confer), whose path is "
                 "printed.",
        .opts = opts,
        .nopts = sizeof(opts) / sizeof(opts[0]),
        .min_args = 0,
        .max_args = 1,
        .meeting = true,
    };
    struct cli_args a;
    int code = CLI_EXIT_OK;
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if ((a.n == 1) + (decision != NULL) != 1) {
        return cli_usage_error(ctx, "write", "name one text: ITEM, ACTION-REF or --decision");
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        return cli_fail(ctx, "write needs a terminal (confer edit uses $EDITOR instead)");
    }
    struct wr *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    w->ctx = ctx;
    w->backoff = 250;
    w->sent_pos = SIZE_MAX;
    code = cli_mtg_open(ctx, &w->mt, true);
    if (code == CLI_EXIT_OK) {
        code = open_text(w, a.n ? a.v[0] : NULL, decision, field);
    }
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    w->connected = true;
    presence_load(w);
    presence_send(w, true);

    setlocale(LC_ALL, "");
    set_escdelay(25);
    if (initscr() == NULL) {
        code = cli_fail(ctx, "cannot start the terminal screen");
        goto cleanup;
    }
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    w->key_cleft = key_of("kLFT5", "\033[1;5D", WR_KEY_CLEFT);
    w->key_cright = key_of("kRIT5", "\033[1;5C", WR_KEY_CRIGHT);
    w->key_chome = key_of("kHOM5", "\033[1;5H", WR_KEY_CHOME);
    w->key_cend = key_of("kEND5", "\033[1;5F", WR_KEY_CEND);
    define_key("\033b", WR_KEY_CLEFT); /* Alt-b, Alt-f: the same on terminals without them */
    define_key("\033f", WR_KEY_CRIGHT);

    int64_t end = proto_now_ms() + WR_LIFE_MS;
    bool go = true;
    while (go && proto_now_ms() < end) {
        drain(w);
        if (!w->connected) {
            reconnect(w);
        }
        flush(w);
        cur_send(w);
        draw(w);
        struct pollfd pf[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                               {.fd = w->connected ? cli_conn_fd(w->mt.c) : -1, .events = POLLIN}};
        int pr = poll(pf, 2, WR_POLL_MS);
        if (pr < 0 && errno != EINTR) {
            break;
        }
        if (pr > 0 && (pf[0].revents & (POLLHUP | POLLERR | POLLNVAL))) {
            break; /* the terminal went away */
        }
        w->msg[0] = pr > 0 && (pf[0].revents & POLLIN) ? '\0' : w->msg[0];
        go = keys(w);
        flush(w);
        cur_send(w);
    }
    /* Leaving: the last burst goes out and we wait a little for it to be acknowledged. */
    for (int i = 0; i < WR_QUIT_WAIT && w->connected && !w->refused && !cli_text_idle(&w->t); i++) {
        struct cli_msg *m = NULL;
        int rc = cli_conn_next(w->mt.c, 100, &m);
        if (rc == 0) {
            handle(w, m);
            cli_msg_free(m);
            flush(w);
        } else if (rc != PROTO_ETIMEDOUT) {
            conn_lost(w);
        }
    }
    if (w->job) {
        /* A reconnection under way ends within its timeouts; what it got is not used. */
        cli_conn_free(job_end(w));
    }
    presence_send(w, false);
    if (w->connected) {
        cli_conn_flush(w->mt.c);
    }
    bool unsent = !w->refused && !cli_text_idle(&w->t);
    if (unsent) {
        recovery_save(w);
    }
    endwin();
    if (w->refused) {
        code = cli_fail(ctx, "%s", w->why_ro);
    } else if (unsent) {
        code = cli_fail(ctx, "the last changes to %s did not reach the server", w->label);
    }
    if (w->recovery[0]) {
        fprintf(ctx->err, "confer: your text is kept in %s\n", w->recovery);
    } else if (code == CLI_EXIT_OK) {
        fprintf(ctx->out, "%s written, at seq %lld\n", w->label, (long long)w->t.seq);
    }
cleanup:
    cli_edbuf_layout_free(&w->lay);
    if (w->model) {
        cli_edbuf_free(&w->b);
    }
    if (w->replica) {
        cli_text_free(&w->t);
    }
    cli_mtg_close(&w->mt);
    free(w);
    return code;
}
