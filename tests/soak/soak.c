/* soak.c - the kill -9 soak: nothing acknowledged is lost or applied twice.
 *
 * Starts conferd on a temporary data folder and a free loopback port; SOAK_WRITERS writer
 * connections (default 4, each its own user, role associate) make changes, one in flight
 * each, every one with a unique cid: obj.create of actions and items, obj.update of an
 * action's owner, text.edit appending a marker to an action's text (base: the writer's
 * last acknowledged seq; only that writer edits that text). Every 0.3-2 s the server is
 * killed with SIGKILL and restarted on the same folder and port; writers reconnect and
 * resend their unacknowledged request with the SAME cid and parameters. After SOAK_KILLS
 * kills (default 300) the writers finish, the server stops, and the database is checked:
 * every acknowledged cid is in the audit log exactly once at the seq it was acknowledged
 * with, no other cid is there, each acknowledged create made exactly one object, each
 * marker is in its text exactly once, each owner is the last one acknowledged;
 * PRAGMA integrity_check and `conferd audit verify` pass. One summary line ends the run.
 *
 * Environment: CONFERD (the binary), SOAK_KILLS, SOAK_WRITERS, SOAK_SEED. Exits 0 when
 * nothing is lost or doubled and both checks pass. Every wait is bounded.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_conn.h"
#include "proto_rpc.h"
#include "testsrv.h"

#define MEETING      "soak"
#define MAX_WRITERS  16
#define CALL_MS      10000 /* a request unanswered this long: the connection is dropped */
#define FINISH_MS    60000 /* after the last kill, for the writers to get their acks */
#define EDITS_PER_AC 40    /* text edits per action before a newer one is edited */

enum kind { K_ACTION, K_ITEM, K_UPDATE, K_EDIT };
enum state { S_PENDING, S_ACKED, S_REFUSED };

/* One change. Its parameters are rebuilt from these fields for every resend. */
struct op {
    uint8_t kind, writer, state;
    uint8_t sends;  /* how many times it was sent (saturating) */
    int32_t action; /* K_UPDATE, K_EDIT: index in actions[] */
    int64_t pos;    /* K_EDIT: where the marker goes (the text's length when first sent) */
    int64_t base;   /* K_EDIT: base seq */
    int64_t seq;    /* the acknowledged seq */
    int64_t id;     /* K_ACTION, K_ITEM: the acknowledged id */
};

struct action {
    int32_t op;        /* the K_ACTION op that made it */
    int32_t writer;    /* its only editor */
    int64_t id;        /* its id */
    int64_t len;       /* the length of its text as the writer knows it (ASCII) */
    int32_t edits;     /* acknowledged edits */
    int32_t last_upd;  /* the last acknowledged K_UPDATE op, or -1 */
    int32_t last_sent; /* the last K_UPDATE op sent (acknowledged or not), or -1 */
};

struct writer {
    char name[16];
    struct cli_conn *c;
    int32_t inflight; /* op index, or -1 */
    uint32_t msgid;
    bool sent;        /* inflight was sent on the current connection */
    int64_t sent_ms;  /* when */
    int64_t last_seq; /* the seq of its last acknowledged change */
    int32_t edit_at;  /* index in actions[] of the action it appends to, or -1 */
};

static struct op *ops;
static size_t nops, capops;
static struct action *actions;
static size_t nactions, capactions;
static struct writer writers[MAX_WRITERS];
static int nwriters = 4;
static uint64_t rng;
static unsigned reconnects, resends, unavailable, refused;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long env_long(const char *name, long def, long min, long max)
{
    const char *s = getenv(name);
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : def;
    if (s && (end == s || *end != '\0')) {
        v = def;
    }
    return v < min ? min : v > max ? max : v;
}

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return p;
    }
    size_t nc = *cap ? *cap * 2 : 4096;
    void *q = realloc(p, nc * size);
    if (q == NULL) {
        fprintf(stderr, "soak: out of memory\n");
        exit(2);
    }
    *cap = nc;
    return q;
}

static void cid_of(size_t i, char out[32])
{
    snprintf(out, 32, "k%zu", i);
}

/* ---- connections ---- */

static struct cli_conn *login(struct ts_server *s, const char *user)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    char err[512], pw[64];
    if (cli_conn_open(&c, "127.0.0.1", (uint16_t)s->port, &pol, 3000, err, sizeof(err)) != 0) {
        return NULL;
    }
    cli_conn_set_timeout(c, CALL_MS);
    snprintf(pw, sizeof(pw), "%s-password", user);
    if (cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", user, "password", pw) != 0 ||
        m->error != NULL) {
        cli_msg_free(m);
        cli_conn_free(c);
        return NULL;
    }
    cli_msg_free(m);
    return c;
}

static void drop(struct writer *w)
{
    cli_conn_free(w->c);
    w->c = NULL;
    w->sent = false;
}

/* ---- changes ---- */

/* Picks the next change of writer wi and appends it to ops. */
static void new_op(int wi)
{
    struct writer *w = &writers[wi];
    ops = grow(ops, &capops, nops, sizeof(*ops));
    struct op *o = &ops[nops];
    memset(o, 0, sizeof(*o));
    o->writer = (uint8_t)wi;
    o->action = -1;
    unsigned r = (unsigned)(next_rand() % 100);
    /* The writer's actions, newest last: edits go to w->edit_at, updates to any. */
    if (w->edit_at < 0 || r < 25) {
        o->kind = K_ACTION;
    } else if (r < 32) {
        o->kind = K_ITEM;
    } else if (r < 50) {
        /* an acknowledged action of this writer, picked among the last few */
        int32_t pick = -1;
        for (size_t i = nactions, seen = 0; i-- > 0 && seen < 8;) {
            if (actions[i].writer == wi) {
                seen++;
                if (pick < 0 || next_rand() % 2 == 0) {
                    pick = (int32_t)i;
                }
            }
        }
        o->kind = K_UPDATE;
        o->action = pick;
        actions[pick].last_sent = (int32_t)nops;
    } else {
        o->kind = K_EDIT;
        o->action = w->edit_at;
        o->pos = actions[w->edit_at].len;
        o->base = w->last_seq;
    }
    w->inflight = (int32_t)nops;
    w->sent = false;
    nops++;
}

static int send_op(struct writer *w)
{
    struct op *o = &ops[w->inflight];
    char cid[32], val[40];
    cid_of((size_t)w->inflight, cid);
    int rc = 0;
    switch (o->kind) {
    case K_ACTION:
        /* ref and text carry the cid: the check counts the actions that have it */
        snprintf(val, sizeof(val), "S-%s", cid);
        rc = cli_conn_sendf(w->c, &w->msgid, "obj.create", "{s:s, s:s, s:{s:s, s:s}, s:s}",
                            "meeting", MEETING, "type", "action", "fields", "ref", val, "text", cid,
                            "cid", cid);
        break;
    case K_ITEM:
        /* an item number is digits and dots: the op's index is unique */
        snprintf(val, sizeof(val), "%d", (int)w->inflight);
        rc = cli_conn_sendf(w->c, &w->msgid, "obj.create", "{s:s, s:s, s:{s:s, s:s}, s:s}",
                            "meeting", MEETING, "type", "item", "fields", "number", val, "title",
                            cid, "cid", cid);
        break;
    case K_UPDATE:
        rc = cli_conn_sendf(w->c, &w->msgid, "obj.update", "{s:s, s:s, s:I, s:{s:s}, s:s}",
                            "meeting", MEETING, "type", "action", "id", actions[o->action].id,
                            "fields", "owner", cid, "cid", cid);
        break;
    case K_EDIT:
        snprintf(val, sizeof(val), " [%s]", cid);
        rc =
            cli_conn_sendf(w->c, &w->msgid, "text.edit", "{s:s, s:s, s:I, s:s, s:I, s:[I, s], s:s}",
                           "meeting", MEETING, "type", "action", "id", actions[o->action].id,
                           "field", "text", "base", o->base, "op", o->pos, val, "cid", cid);
        break;
    }
    if (rc != 0) {
        return rc;
    }
    w->sent = true;
    w->sent_ms = now_ms();
    return 0;
}

static int64_t int_field(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = map ? proto_mp_map_get(map, key) : NULL;
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return (int64_t)v->via.u64;
    }
    return -1;
}

static void acked(struct writer *w, const struct cli_msg *m)
{
    struct op *o = &ops[w->inflight];
    o->state = S_ACKED;
    o->seq = int_field(m->result, "seq");
    w->last_seq = o->seq > w->last_seq ? o->seq : w->last_seq;
    if (o->kind == K_ACTION || o->kind == K_ITEM) {
        o->id = int_field(m->result, "id");
    }
    if (o->kind == K_ACTION) {
        actions = grow(actions, &capactions, nactions, sizeof(*actions));
        char cid[32];
        cid_of((size_t)w->inflight, cid);
        actions[nactions] = (struct action){.op = w->inflight,
                                            .writer = o->writer,
                                            .id = o->id,
                                            .len = (int64_t)strlen(cid),
                                            .last_upd = -1,
                                            .last_sent = -1};
        if (w->edit_at < 0 || actions[w->edit_at].edits >= EDITS_PER_AC) {
            w->edit_at = (int32_t)nactions;
        }
        nactions++;
    } else if (o->kind == K_UPDATE) {
        struct action *a = &actions[o->action];
        if (a->last_upd < w->inflight) {
            a->last_upd = w->inflight;
        }
    } else if (o->kind == K_EDIT) {
        char cid[32];
        cid_of((size_t)w->inflight, cid);
        actions[o->action].len += (int64_t)strlen(cid) + 3;
        actions[o->action].edits++;
    }
    w->inflight = -1;
}

/* One turn of a writer: (re)connect, send (a new change only when make_new), or take the
 * response. A broken connection is dropped; its request is sent again on the next. */
static void writer_turn(struct ts_server *s, struct writer *w, int wi, bool make_new)
{
    if (w->c == NULL) {
        if (s->pid <= 0 || (w->c = login(s, w->name)) == NULL) {
            return;
        }
        reconnects++;
    }
    if (w->inflight < 0) {
        if (!make_new) {
            return;
        }
        new_op(wi);
    }
    if (!w->sent) {
        struct op *o = &ops[w->inflight];
        if (o->sends > 0) {
            resends++; /* the same cid and parameters again */
        }
        o->sends = o->sends < 255 ? o->sends + 1 : 255;
        if (send_op(w) != 0) {
            drop(w);
            return;
        }
    }
    struct cli_msg *m = NULL;
    int rc = cli_conn_wait(w->c, w->msgid, 2, &m);
    if (rc == PROTO_ETIMEDOUT) {
        if (now_ms() - w->sent_ms > CALL_MS) {
            drop(w);
        }
        return;
    }
    if (rc != 0) {
        drop(w);
        return;
    }
    if (m->error == NULL) {
        acked(w, m);
    } else if (cli_msg_is_error(m, "unavailable")) {
        unavailable++;
        w->sent = false; /* resend with the same cid */
    } else {
        char cid[32];
        cid_of((size_t)w->inflight, cid);
        if (refused < 10) {
            fprintf(stderr, "soak: %s refused %s (%d): %s %s\n", w->name, cid,
                    ops[w->inflight].kind, m->code ? m->code : "?", m->message ? m->message : "");
        }
        ops[w->inflight].state = S_REFUSED;
        refused++;
        w->inflight = -1;
    }
    /* Notifications are not asked for (no subscription), but drain any. */
    cli_msg_free(m);
}

/* ---- the checks, on the stopped server's database ---- */

struct tally {
    size_t acked, lost, doubled, stray;
};

/* Index of the op whose cid is s (k<n>), or -1. */
static long op_of_cid(const char *s, size_t len)
{
    if (len < 2 || s[0] != 'k') {
        return -1;
    }
    long v = 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 100000000) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v < (long)nops ? v : -1;
}

static int check_db(const char *path, struct tally *t, char *integrity, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 1;
    uint32_t *seen = calloc(nops + 1, sizeof(*seen));
    uint32_t *marks = calloc(nops + 1, sizeof(*marks));
    uint32_t *made = calloc(nops + 1, sizeof(*made));
    if (!seen || !marks || !made ||
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "soak: cannot open %s\n", path);
        goto cleanup;
    }
    snprintf(integrity, cap, "?");
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        snprintf(integrity, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);

    /* The audit log: every acknowledged cid once, at its seq; nothing else. */
    sqlite3_prepare_v2(db,
                       "SELECT cid, seq FROM audit WHERE meeting = '" MEETING "'"
                       " AND cid IS NOT NULL",
                       -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *cid = (const char *)sqlite3_column_text(st, 0);
        long i = op_of_cid(cid, strlen(cid));
        if (i < 0 || ops[i].state != S_ACKED) {
            t->stray++;
            continue;
        }
        if (seen[i]++ == 0 && sqlite3_column_int64(st, 1) != ops[i].seq) {
            fprintf(stderr, "soak: %s acknowledged at seq %lld, logged at %lld\n", cid,
                    (long long)ops[i].seq, (long long)sqlite3_column_int64(st, 1));
            t->lost++;
        }
    }
    sqlite3_finalize(st);

    /* Actions: the one its create made (ref S-<cid>, text starting with <cid>), the markers
     * in its text, its owner. */
    sqlite3_prepare_v2(db, "SELECT ref, text, owner FROM actions WHERE meeting = '" MEETING "'", -1,
                       &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *ref = (const char *)sqlite3_column_text(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        const char *owner = (const char *)sqlite3_column_text(st, 2);
        long i = ref && strncmp(ref, "S-", 2) == 0 ? op_of_cid(ref + 2, strlen(ref + 2)) : -1;
        if (i < 0 || ops[i].kind != K_ACTION) {
            t->stray++;
            continue;
        }
        made[i]++;
        const char *sp = text ? strchr(text, ' ') : NULL;
        size_t head = text ? (sp ? (size_t)(sp - text) : strlen(text)) : 0;
        if (op_of_cid(text, head) != i) {
            fprintf(stderr, "soak: action %s has text '%.40s'\n", ref, text ? text : "");
            t->lost++;
        }
        for (const char *p = text ? strstr(text, " [") : NULL; p; p = strstr(p + 1, " [")) {
            const char *end = strchr(p, ']');
            long e = end ? op_of_cid(p + 2, (size_t)(end - p - 2)) : -1;
            if (e < 0 || ops[e].kind != K_EDIT || ops[e].state != S_ACKED) {
                t->stray++;
            } else {
                marks[e]++;
            }
        }
        /* The owner: the last acknowledged update of this action (one writer, one op in
         * flight: acknowledgements come in the order sent). */
        long a = -1;
        for (size_t k = 0; k < nactions; k++) {
            if (actions[k].op == i) {
                a = (long)k;
                break;
            }
        }
        long want = a >= 0 ? actions[a].last_upd : -1;
        long got = owner ? op_of_cid(owner, strlen(owner)) : -1;
        if (want != got) {
            fprintf(stderr, "soak: action %s has owner %s, the last acknowledged is k%ld\n", ref,
                    owner ? owner : "nil", want);
            t->lost++;
        }
    }
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "SELECT title FROM items WHERE meeting = '" MEETING "'", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *num = (const char *)sqlite3_column_text(st, 0);
        long i = num ? op_of_cid(num, strlen(num)) : -1;
        if (i >= 0 && ops[i].kind == K_ITEM) {
            made[i]++;
        } else {
            t->stray++;
        }
    }
    sqlite3_finalize(st);

    for (size_t i = 0; i < nops; i++) {
        if (ops[i].state != S_ACKED) {
            continue;
        }
        t->acked++;
        uint32_t n = seen[i];
        if (ops[i].kind == K_ACTION || ops[i].kind == K_ITEM) {
            n = n < made[i] ? n : made[i];
            if (made[i] > 1) {
                t->doubled++;
            }
        } else if (ops[i].kind == K_EDIT) {
            n = n < marks[i] ? n : marks[i];
            if (marks[i] > 1) {
                t->doubled++;
            }
        }
        if (seen[i] > 1) {
            t->doubled++;
        }
        if (n == 0) {
            char cid[32];
            cid_of(i, cid);
            fprintf(stderr, "soak: acknowledged %s (kind %d) is not in the record\n", cid,
                    ops[i].kind);
            t->lost++;
        }
    }
    rc = 0;
cleanup:
    sqlite3_close(db);
    free(seen);
    free(marks);
    free(made);
    return rc;
}

/* ---- the run ---- */

static int setup_meeting(struct ts_server *s)
{
    struct cli_conn *c = login(s, "op");
    struct cli_msg *m = NULL;
    int rc = c ? 0 : -1;
    for (int i = 0; rc == 0 && i < nwriters; i++) {
        rc = cli_conn_callf(c, &m, "member.set", "{s:s, s:s, s:s}", "meeting", MEETING, "user",
                            writers[i].name, "role", "associate");
        rc = rc == 0 && m->error == NULL ? 0 : -1;
        cli_msg_free(m);
        m = NULL;
    }
    cli_conn_close(c);
    return rc;
}

int main(void)
{
    long kills_wanted = env_long("SOAK_KILLS", 300, 1, 100000);
    nwriters = (int)env_long("SOAK_WRITERS", 4, 1, MAX_WRITERS);
    rng = (uint64_t)env_long("SOAK_SEED", (long)(time(NULL) ^ getpid()), 1, 0x7fffffffL);
    printf("soak: %ld kills, %d writers, seed %llu (SOAK_SEED replays the timings)\n", kills_wanted,
           nwriters, (unsigned long long)rng);
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        return 2;
    }
    const char *names[MAX_WRITERS + 2] = {"op"};
    for (int i = 0; i < nwriters; i++) {
        snprintf(writers[i].name, sizeof(writers[i].name), "w%d", i + 1);
        writers[i].inflight = -1;
        writers[i].edit_at = -1;
        names[i + 1] = writers[i].name;
    }
    struct ts_server s;
    if (ts_start(&s, names, MEETING) != 0 || setup_meeting(&s) != 0) {
        fprintf(stderr, "soak: cannot start conferd (CONFERD=%s)\n", getenv("CONFERD"));
        return 2;
    }
    /* The whole run is bounded: a kill every 2 s at most, restarts, and the finish. */
    int64_t start = now_ms();
    int64_t deadline = start + kills_wanted * 6000 + FINISH_MS + 60000;
    int64_t next_kill = start + 300 + (int64_t)(next_rand() % 1701);
    long kills = 0;
    int status = 0;
    while (kills < kills_wanted && now_ms() < deadline) {
        for (int i = 0; i < nwriters; i++) {
            writer_turn(&s, &writers[i], i, true);
        }
        if (now_ms() >= next_kill) {
            ts_kill(&s);
            kills++;
            for (int i = 0; i < nwriters; i++) {
                drop(&writers[i]);
            }
            if (ts_restart(&s) != 0) {
                fprintf(stderr, "soak: conferd did not restart after kill %ld\n", kills);
                status = 2;
                break;
            }
            next_kill = now_ms() + 300 + (int64_t)(next_rand() % 1701);
            if (kills % 25 == 0) {
                printf("soak: %ld kills, %zu changes sent\n", kills, nops);
                fflush(stdout);
            }
        }
    }
    /* No more kills: every writer gets its last request acknowledged (or refused). */
    int64_t finish = now_ms() + FINISH_MS;
    bool busy = true;
    while (status == 0 && busy && now_ms() < finish) {
        busy = false;
        for (int i = 0; i < nwriters; i++) {
            writer_turn(&s, &writers[i], i, false);
            busy = busy || writers[i].inflight >= 0;
        }
    }
    for (int i = 0; i < nwriters; i++) {
        if (writers[i].inflight >= 0) {
            fprintf(stderr, "soak: %s never got an answer\n", writers[i].name);
            status = status ? status : 1;
        }
        cli_conn_close(writers[i].c);
        writers[i].c = NULL;
    }
    /* Stop the server cleanly, then look at what it left. */
    int exit_rc = -1;
    if (s.pid > 0) {
        int st = 0;
        kill(s.pid, SIGTERM);
        waitpid(s.pid, &st, 0);
        exit_rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        s.pid = 0;
    }
    char path[4096], integrity[256] = "?";
    snprintf(path, sizeof(path), "%s/data/confer.db", s.dir);
    struct tally t = {0};
    if (check_db(path, &t, integrity, sizeof(integrity)) != 0) {
        status = 2;
    }
    const char *verify[] = {"audit", "verify", NULL};
    int audit = ts_conferd(&s, NULL, verify);
    printf("soak: kills %ld, acknowledged %zu (of %zu sent; %u resent, %u unavailable, %u "
           "refused, %u reconnects), lost %zu, doubled %zu, stray %zu, integrity %s, audit %s, "
           "clean stop %s, %lld s\n",
           kills, t.acked, nops, resends, unavailable, refused, reconnects, t.lost, t.doubled,
           t.stray, integrity, audit == 0 ? "ok" : "FAILED", exit_rc == 0 ? "yes" : "no",
           (long long)((now_ms() - start) / 1000));
    if (t.lost || t.doubled || t.stray || strcmp(integrity, "ok") != 0 || audit != 0 ||
        kills < kills_wanted || refused || exit_rc != 0) {
        status = status ? status : 1;
        fprintf(stderr, "soak: FAILED; the data folder and server.log are kept in %s\n", s.dir);
        free(s.dir);
    } else {
        ts_stop(&s);
    }
    free(ops);
    free(actions);
    return status;
}
