/* srv_hub.c - meetings in memory, the change pipeline, group commit and events. */
#include "srv_hub.h"
#include "srv_writer.h"

#include <stdlib.h>
#include <string.h>

#define CHECKPOINT_EVERY    100
#define CHECKPOINT_AFTER_MS (60 * 1000)
#define ID_BLOCK            1024

/* One write of a batch, done by the writer in the order the changes were made. */
enum wop_kind { WOP_AUDIT, WOP_CHECKPOINT, WOP_ROWS, WOP_EXTRA };

/* A refresh of a meeting's rows to its record at seq, with copies taken on the loop: the
 * meeting row, the objects changed since the last refresh, the ids deleted since, every
 * member when they changed; and the signed dump of the record (its snapshot). */
struct srv_rows {
    struct srv_obj *meeting;
    struct srv_obj **objs;
    size_t nobjs;
    struct srv_deleted *deleted;
    size_t ndeleted;
    struct srv_member *members; /* NULL: members unchanged */
    size_t nmembers;
    bool all; /* every row of the meeting is deleted first, every object written */
    struct db_snapshot snap;
    struct proto_buf data; /* snap.data points here */
};

struct srv_wop {
    struct srv_wop *next;
    enum wop_kind kind;
    char meeting[PROTO_NAME_MAX + 1];
    int64_t seq;
    struct srv_entry *entry;     /* AUDIT: owned by the meeting's pending list */
    uint8_t head[DB_HASH_BYTES]; /* CHECKPOINT */
    uint8_t sig[DB_SIG_BYTES];
    struct srv_rows *rows;                /* ROWS */
    int (*work)(struct db *db, void *ud); /* EXTRA */
    void (*done)(void *ud, int rc);
    void *ud;
};

struct srv_batch {
    struct srv *srv;
    uint64_t id;
    struct srv_wop *head, *tail;
    size_t count;
    bool has_rows; /* writes rows: foreign keys are checked at its commit */
    int rc;
    char err[256];
};

enum srv_role srv_role_parse(const char *s)
{
    if (s == NULL) {
        return SRV_ROLE_NONE;
    }
    if (strcmp(s, "viewer") == 0) {
        return SRV_ROLE_VIEWER;
    }
    if (strcmp(s, "editor") == 0) {
        return SRV_ROLE_EDITOR;
    }
    if (strcmp(s, "associate") == 0 || strcmp(s, "counsellor") == 0) {
        return SRV_ROLE_ASSOCIATE;
    }
    if (strcmp(s, "rapporteur") == 0) {
        return SRV_ROLE_RAPPORTEUR;
    }
    return SRV_ROLE_NONE;
}

/* ---- events ---- */

static void pack_id(msgpack_packer *pk, const struct db_audit *e)
{
    if (e->id_str) {
        proto_pack_cstr(pk, e->id_str);
    } else {
        msgpack_pack_int64(pk, e->id_int);
    }
}

/* Reads the map header of a packed map; returns its entry count and the offset of its
 * first key, or -1 when p is not a map. */
static int64_t map_header(const uint8_t *p, size_t len, size_t *off)
{
    if (len >= 1 && (p[0] & 0xf0) == 0x80) {
        *off = 1;
        return p[0] & 0x0f;
    }
    if (len >= 3 && p[0] == 0xde) {
        *off = 3;
        return ((int64_t)p[1] << 8) | p[2];
    }
    if (len >= 5 && p[0] == 0xdf) {
        *off = 5;
        return (int64_t)proto_frame_get_len(p + 1);
    }
    return -1;
}

size_t srv_hub_entry_keys(const struct db_audit *e)
{
    return e->cid ? 7 : 6;
}

void srv_hub_pack_entry_keys(msgpack_packer *pk, const struct db_audit *e)
{
    proto_pack_cstr(pk, "seq");
    msgpack_pack_int64(pk, e->seq);
    proto_pack_cstr(pk, "time");
    msgpack_pack_int64(pk, e->time_ms);
    proto_pack_cstr(pk, "user");
    proto_pack_cstr(pk, e->user);
    if (e->cid) {
        proto_pack_cstr(pk, "cid");
        proto_pack_cstr(pk, e->cid);
    }
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, e->kind);
    proto_pack_cstr(pk, "type");
    proto_pack_cstr(pk, e->type);
    proto_pack_cstr(pk, "id");
    pack_id(pk, e);
}

int64_t srv_hub_entry_import(const struct db_audit *e)
{
    msgpack_unpacked u;
    size_t off = 0;
    int64_t first = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *v = proto_mp_map_get(&u.data, "import");
        if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 >= 2 &&
            v->via.u64 <= (uint64_t)e->seq) {
            first = (int64_t)v->via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
    return first;
}

int srv_hub_pack_event(const struct db_audit *e, struct proto_buf *out)
{
    size_t off = 0;
    int64_t n = map_header(e->payload, e->payload_len, &off);
    if (n < 0) {
        return PROTO_EINVAL;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    proto_rpc_pack_notify(&pk, "event");
    msgpack_pack_map(&pk, (size_t)(1 + srv_hub_entry_keys(e) + n));
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, e->meeting);
    srv_hub_pack_entry_keys(&pk, e);
    /* The payload's own keys follow as they are stored. */
    return proto_buf_append(out, e->payload + off, e->payload_len - off);
}
/* ---- loading ---- */

static int last_checkpoint(void *ud, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                           const uint8_t sig[DB_SIG_BYTES])
{
    int64_t *out = ud;
    (void)head;
    (void)sig;
    if (seq > *out) {
        *out = seq;
    }
    return 0;
}

/* What the database holds of one meeting. */
struct loaded {
    struct srv_rec *rec;
    int64_t committed_seq;
    uint8_t head[DB_HASH_BYTES];
    int64_t checkpoint_seq;
    int64_t rows_seq;
    int64_t snapshot_seq;
};

static int newest_snapshot(void *ud, const struct db_snapshot *sn)
{
    int64_t *out = ud;
    *out = sn->seq > *out ? sn->seq : *out;
    return 0;
}

/* The record is rebuilt from the log, the truth: from the newest snapshot that holds (the
 * host key signed it and it matches the chain) and the entries after it, or from the
 * log's start. The rows, which anyone with the file could have changed, are not read:
 * audit.verify compares them with the log. */
static int load_record(struct srv *srv, const char *id, struct loaded *l)
{
    struct srv_rebuild rb;
    memset(l, 0, sizeof(*l));
    int rc = db_rows_seq(srv->db, id, &l->rows_seq);
    if (rc == 0) {
        rc = db_audit_head(srv->db, id, &l->committed_seq, l->head);
    }
    if (rc == 0) {
        rc = db_checkpoint_list(srv->db, id, last_checkpoint, &l->checkpoint_seq);
    }
    if (rc == 0) {
        rc = db_snapshot_list(srv->db, id, newest_snapshot, &l->snapshot_seq);
    }
    if (rc == 0 &&
        (rc = srv_audit_rebuild_begin(srv->db, id, srv->host.pk, l->committed_seq, &rb)) == 0) {
        rc = srv_audit_rebuild_end(&rb);
        if (rc == 0 && rb.seq != l->committed_seq) {
            rc = PROTO_EINVAL;
        }
        if (rc != 0) {
            srv_log(NULL, SRV_LOG_ERROR,
                    "meeting %s: its log does not replay (from seq %lld): run conferd audit "
                    "verify",
                    id, (long long)rb.snapshot_seq);
            rc = rc == PROTO_ENOMEM ? PROTO_ENOMEM : PROTO_EDB;
        }
        l->rec = rb.rec;
        rb.rec = NULL;
        srv_audit_rebuild_free(&rb);
    }
    if (rc == 0 && l->rows_seq > l->committed_seq) {
        /* The rows stand after the log's end: entries were cut off. The record is what
         * the log holds; the next refresh writes every object again. */
        srv_log(NULL, SRV_LOG_ERROR,
                "meeting %s: its stored record stands at seq %lld, after the log's last "
                "entry %lld: run conferd audit verify",
                id, (long long)l->rows_seq, (long long)l->committed_seq);
        l->rows_seq = 0;
    }
    if (rc != 0) {
        srv_rec_free(l->rec);
        l->rec = NULL;
        return rc;
    }
    return 0;
}

/* Makes m hold what l loaded (l's record is taken). */
static void take_loaded(struct srv_meeting *m, struct loaded *l)
{
    m->rec = l->rec;
    m->committed_seq = l->committed_seq;
    memcpy(m->head, l->head, DB_HASH_BYTES);
    m->checkpoint_seq = l->checkpoint_seq;
    m->checkpoint_stored = l->checkpoint_seq;
    m->rows_seq = l->rows_seq;
    m->snapshot_seq = l->snapshot_seq;
    m->win.from = m->committed_seq + 1;
    m->ndeleted = 0;
    m->members_changed = false;
    /* The deletes and member changes logged after the rows are not known here. */
    m->rows_all = l->rows_seq < l->committed_seq;
}

static int load_meeting(struct srv *srv, const char *id)
{
    struct loaded l;
    int rc = load_record(srv, id, &l);
    if (rc != 0) {
        return rc;
    }
    struct srv_meeting *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        srv_rec_free(l.rec);
        return PROTO_ENOMEM;
    }
    take_loaded(m, &l);
    m->next = srv->meetings;
    srv->meetings = m;
    if (srv->durable_cb) {
        srv->durable_cb(srv->durable_ud, m, NULL);
    }
    return 0;
}

struct list_ctx {
    struct srv *srv;
    int rc;
};

static int load_if_new(void *ud, const char *id)
{
    struct list_ctx *ctx = ud;
    if (srv_hub_find(ctx->srv, id, strlen(id)) != NULL) {
        return 0;
    }
    ctx->rc = load_meeting(ctx->srv, id);
    if (ctx->rc == 0 && !ctx->srv->offline) {
        srv_log(NULL, SRV_LOG_INFO, "meeting %s loaded", id);
    }
    return ctx->rc;
}

int srv_hub_load(struct srv *srv)
{
    struct list_ctx ctx = {.srv = srv};
    int rc = db_meeting_list(srv->db, load_if_new, &ctx);
    return rc != 0 ? rc : ctx.rc;
}

static void entry_free(struct srv_entry *e)
{
    if (e) {
        free(e->payload);
        free(e);
    }
}

static void pending_free(struct srv_meeting *m)
{
    while (m->pending) {
        struct srv_entry *e = m->pending;
        m->pending = e->next;
        entry_free(e);
    }
    m->pending_tail = NULL;
}

static void meeting_free(struct srv_meeting *m)
{
    pending_free(m);
    while (m->subs) {
        struct srv_sub *s = m->subs;
        m->subs = s->next;
        free(s);
    }
    srv_window_free(&m->win);
    srv_rec_free(m->rec);
    free(m->deleted);
    free(m);
}

static void presence_forget_cursors(struct srv_meeting *m);

/* Puts m back to what the database holds (record, seq, head, checkpoints), in place:
 * connections keep pointing at it. Its pending entries and op window are dropped.
 * Returns 0, PROTO_ENOTFOUND when the database has no such meeting (its create was lost),
 * or an error: m is then broken and refuses changes until a reload succeeds. */
static int meeting_reload(struct srv *srv, struct srv_meeting *m)
{
    char id[PROTO_NAME_MAX + 1];
    struct loaded l = {0};
    snprintf(id, sizeof(id), "%s", m->rec->id);
    int rc = db_meeting_exists(srv->db, id);
    if (rc == 0) {
        rc = load_record(srv, id, &l);
    }
    pending_free(m);
    srv_window_free(&m->win);
    presence_forget_cursors(m);
    free(m->deleted);
    m->deleted = NULL;
    m->ndeleted = m->cap_deleted = 0;
    m->last_batch = 0;
    m->reload = false;
    if (rc != 0) {
        m->broken = rc != PROTO_ENOTFOUND;
        return rc;
    }
    srv_rec_free(m->rec);
    take_loaded(m, &l);
    m->broken = false;
    if (srv->durable_cb) {
        srv->durable_cb(srv->durable_ud, m, NULL);
    }
    return 0;
}

static void rows_free(struct srv_rows *r);

/* Frees a batch; the handlers' own writes in it are told rc (0: it is durable). */
static void batch_free(struct srv_batch *b, int rc)
{
    if (b == NULL) {
        return;
    }
    while (b->head) {
        struct srv_wop *w = b->head;
        b->head = w->next;
        if (w->kind == WOP_EXTRA && w->done) {
            w->done(w->ud, rc);
        }
        rows_free(w->rows);
        free(w);
    }
    free(b);
}

void srv_hub_free(struct srv *srv)
{
    srv_held_drop_all(srv);
    while (srv->meetings) {
        struct srv_meeting *m = srv->meetings;
        srv->meetings = m->next;
        meeting_free(m);
    }
    batch_free(srv->open_batch, PROTO_ECLOSED);
    srv->open_batch = NULL;
}

struct srv_meeting *srv_hub_find(struct srv *srv, const char *id, size_t len)
{
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        if (strlen(m->rec->id) == len && memcmp(m->rec->id, id, len) == 0) {
            return m;
        }
    }
    return NULL;
}

enum srv_role srv_hub_role(struct srv_meeting *m, const char *user)
{
    struct srv_member *mb = srv_rec_member(m->rec, user);
    return mb ? srv_role_parse(mb->role) : SRV_ROLE_NONE;
}

/* ---- batches ---- */

static struct srv_batch *open_batch(struct srv *srv)
{
    if (srv->open_batch == NULL) {
        struct srv_batch *b = calloc(1, sizeof(*b));
        if (b == NULL) {
            return NULL;
        }
        b->srv = srv;
        b->id = ++srv->next_batch;
        srv->open_batch = b;
    }
    return srv->open_batch;
}

static struct srv_wop *add_wop(struct srv_batch *b, enum wop_kind kind, const char *meeting)
{
    struct srv_wop *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->kind = kind;
    snprintf(w->meeting, sizeof(w->meeting), "%s", meeting);
    if (b->tail) {
        b->tail->next = w;
    } else {
        b->head = w;
    }
    b->tail = w;
    b->count++;
    return w;
}

uint64_t srv_hub_hold(struct srv *srv, struct srv_meeting *m)
{
    return m->last_batch > srv->committed_batch ? m->last_batch : 0;
}

static void rows_free(struct srv_rows *r)
{
    if (r == NULL) {
        return;
    }
    srv_obj_free(r->meeting);
    for (size_t i = 0; i < r->nobjs; i++) {
        srv_obj_free(r->objs[i]);
    }
    free(r->objs);
    free(r->deleted);
    free(r->members);
    proto_buf_free(&r->data, 0);
    free(r);
}

/* Copies a meeting's rows as its record has them now (see struct srv_rows), with its signed
 * snapshot; what the refresh covers is then no longer pending in m.
 * Returns NULL when out of memory (m is unchanged). */
static struct srv_rows *rows_take(struct srv *srv, struct srv_meeting *m)
{
    struct srv_rec *rec = m->rec;
    struct srv_rows *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->meeting = srv_obj_dup(&rec->meeting)) == NULL) {
        goto fail;
    }
    int64_t since = m->rows_all ? -1 : m->rows_seq;
    size_t n = 0;
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        for (size_t i = 0; i < rec->objs[t].n; i++) {
            n += rec->objs[t].v[i]->seq > since;
        }
    }
    if (n > 0 && (r->objs = calloc(n, sizeof(*r->objs))) == NULL) {
        goto fail;
    }
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        for (size_t i = 0; i < rec->objs[t].n; i++) {
            const struct srv_obj *o = rec->objs[t].v[i];
            if (o->seq > since && (r->objs[r->nobjs++] = srv_obj_dup(o)) == NULL) {
                goto fail;
            }
        }
    }
    r->all = m->rows_all;
    if (m->members_changed || m->rows_seq == 0 || m->rows_all) {
        r->members = malloc((rec->nmembers ? rec->nmembers : 1) * sizeof(*r->members));
        if (r->members == NULL) {
            goto fail;
        }
        memcpy(r->members, rec->members, rec->nmembers * sizeof(*r->members));
        r->nmembers = rec->nmembers;
    }
    if (srv_audit_snapshot_make(rec, m->head, srv->host.sk, &r->snap, &r->data) != 0) {
        goto fail;
    }
    /* The deleted ids move into the refresh. */
    r->deleted = m->deleted;
    r->ndeleted = m->ndeleted;
    m->deleted = NULL;
    m->ndeleted = m->cap_deleted = 0;
    m->members_changed = false;
    m->rows_all = false;
    m->rows_seq = rec->seq;
    m->snapshot_seq = rec->seq;
    return r;
fail:
    rows_free(r);
    return NULL;
}

/* One object's values as the database takes them (pointing into o). */
static int put_obj(struct db *db, const char *meeting, const struct srv_obj *o)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    struct db_val vals[PROTO_MAX_FIELDS];
    memset(vals, 0, sizeof(vals));
    for (size_t i = 0; i < ti->nfields; i++) {
        vals[i].set = o->f[i].set;
        vals[i].i = o->f[i].i;
        vals[i].s = o->f[i].s;
        vals[i].len = o->f[i].len;
    }
    return db_obj_put(db, meeting, o->type, o->id, o->seq, vals);
}

/* On the writer: a meeting's rows to its record at w->seq. Deletes go first (their item
 * links are cleared by the database as memory cleared them); the changed objects of types
 * with a unique key (a doc's ref and revision, an action's ref) are deleted before they
 * are written again, so keys that moved between them never collide on the way. */
static int write_rows(struct db *db, const struct srv_wop *w)
{
    const struct srv_rows *r = w->rows;
    int rc = 0;
    for (int t = 0; r->all && t < PROTO_T_COUNT && rc == 0; t++) {
        if (t != PROTO_T_MEETING) {
            rc = db_obj_clear(db, w->meeting, (enum proto_type)t);
        }
    }
    for (size_t i = 0; i < r->ndeleted && rc == 0; i++) {
        rc = db_obj_delete(db, w->meeting, r->deleted[i].type, r->deleted[i].id);
    }
    for (size_t i = 0; i < r->nobjs && rc == 0; i++) {
        enum proto_type t = r->objs[i]->type;
        if (!r->all && (t == PROTO_T_DOC || t == PROTO_T_ACTION)) {
            rc = db_obj_delete(db, w->meeting, t, r->objs[i]->id);
        }
    }
    if (rc == 0) {
        rc = put_obj(db, w->meeting, r->meeting);
    }
    for (size_t i = 0; i < r->nobjs && rc == 0; i++) {
        rc = put_obj(db, w->meeting, r->objs[i]);
    }
    if (rc == 0 && r->members != NULL) {
        rc = db_member_clear(db, w->meeting);
        for (size_t i = 0; i < r->nmembers && rc == 0; i++) {
            rc = db_member_put(db, w->meeting, r->members[i].user, r->members[i].role,
                               r->members[i].seq);
        }
    }
    if (rc == 0) {
        rc = db_snapshot_add(db, &r->snap);
    }
    if (rc == 0) {
        rc = db_rows_mark(db, w->meeting, w->seq);
    }
    return rc;
}

static int write_one(struct db *db, struct srv_wop *w)
{
    switch (w->kind) {
    case WOP_AUDIT:
        return db_audit_append(db, &w->entry->a);
    case WOP_CHECKPOINT:
        return db_checkpoint_add(db, w->meeting, w->seq, w->head, w->sig);
    case WOP_ROWS:
        return write_rows(db, w);
    case WOP_EXTRA:
        return w->work(db, w->ud);
    }
    return PROTO_EINVAL;
}

/* On the writer thread: the whole batch in one transaction, in the order of the changes.
 * A batch of log entries alone (the common case while people type) touches no foreign
 * key; one that refreshes rows has its foreign keys checked at the commit, as memory
 * checked them. The deferral is not asked for otherwise, because that PRAGMA expires
 * every prepared statement of the connection, which SQLite then prepares again. */
static int batch_work(struct db *db, void *ud, char *err, size_t errlen)
{
    struct srv_batch *b = ud;
    int rc = db_begin(db);
    if (rc == 0 && b->has_rows) {
        rc = db_defer_foreign_keys(db);
    }
    for (struct srv_wop *w = b->head; w && rc == 0; w = w->next) {
        rc = write_one(db, w);
    }
    if (rc == 0) {
        rc = db_commit(db); /* rolls back when it fails */
    } else {
        snprintf(err, errlen, "%s", db_errmsg(db));
        db_rollback(db);
    }
    if (rc != 0 && err[0] == '\0') {
        snprintf(err, errlen, "%s", db_errmsg(db));
    }
    return rc;
}

static void mark_reload(struct srv *srv, const struct srv_batch *b)
{
    const char *last = NULL;
    for (const struct srv_wop *w = b ? b->head : NULL; w; w = w->next) {
        if (last != NULL && strcmp(last, w->meeting) == 0) {
            continue; /* writes of one meeting come in runs */
        }
        last = w->meeting;
        struct srv_meeting *m = srv_hub_find(srv, w->meeting, strlen(w->meeting));
        if (m) {
            m->reload = true;
        }
    }
}

/* A batch could not be written: memory is ahead of the database. Nothing of it (nor of the
 * open batch built on it) was acknowledged: its responses become `unavailable`, its events
 * are dropped, and the meetings it changed are reloaded in place; other meetings and
 * every connection carry on. */
static void batch_failed(struct srv *srv, struct srv_batch *b)
{
    struct srv_batch *open = srv->open_batch;
    srv->open_batch = NULL;
    srv_log(NULL, SRV_LOG_ERROR,
            "batch %llu (%zu writes) failed: %s: its requests are answered unavailable and "
            "the meetings it changed reloaded",
            (unsigned long long)b->id, b->count + (open ? open->count : 0), b->err);
    srv->write_failures++;
    mark_reload(srv, b);
    mark_reload(srv, open);
    batch_free(open, PROTO_EDB);
    srv_held_fail(srv);
    /* Nothing before the next batch is outstanding any more. */
    srv->committed_batch = srv->next_batch;
    struct srv_meeting **pp = &srv->meetings;
    while (*pp) {
        struct srv_meeting *m = *pp;
        int rc = m->reload ? meeting_reload(srv, m) : 0;
        if (rc == PROTO_ENOTFOUND) {
            /* Its create was lost: nobody may point at it when it is freed. */
            while (m->subs) {
                srv_hub_unsubscribe(m, m->subs->conn);
            }
            *pp = m->next;
            meeting_free(m);
            continue;
        }
        if (rc != 0) {
            srv_log(NULL, SRV_LOG_ERROR, "cannot reload meeting %s: %s (changes refused)",
                    m->rec->id, db_errmsg(srv->db));
        }
        pp = &m->next;
    }
}

static void batch_done(void *ud, int rc, const char *err)
{
    struct srv_batch *b = ud;
    struct srv *srv = b->srv;
    srv->write_batch = NULL;
    if (rc != 0) {
        if (b->err[0] == '\0') {
            snprintf(b->err, sizeof(b->err), "%s", err[0] ? err : proto_strerror(rc));
        }
        batch_failed(srv, b);
        batch_free(b, PROTO_EDB);
        srv_conn_flush_all(srv);
        return;
    }
    srv->committed_batch = b->id;
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        while (m->pending && m->pending->batch <= b->id) {
            struct srv_entry *e = m->pending;
            m->pending = e->next;
            m->committed_seq = e->a.seq;
            if (srv->durable_cb) {
                srv->durable_cb(srv->durable_ud, m, &e->a);
            }
            entry_free(e);
        }
        if (m->pending == NULL) {
            m->pending_tail = NULL;
        }
    }
    for (struct srv_wop *w = b->head; w; w = w->next) {
        if (w->kind == WOP_CHECKPOINT) {
            struct srv_meeting *m = srv_hub_find(srv, w->meeting, strlen(w->meeting));
            if (m && w->seq > m->checkpoint_stored) {
                m->checkpoint_stored = w->seq;
            }
        }
    }
    batch_free(b, 0);
    srv_held_release(srv);
    srv_hub_flush(srv);
    srv_conn_flush_all(srv);
}

static int add_checkpoint(struct srv *srv, struct srv_batch *b, struct srv_meeting *m)
{
    struct srv_wop *w = add_wop(b, WOP_CHECKPOINT, m->rec->id);
    if (w == NULL) {
        return PROTO_ENOMEM;
    }
    struct proto_buf msg = {0};
    w->seq = m->rec->seq;
    memcpy(w->head, m->head, DB_HASH_BYTES);
    srv_audit_checkpoint_msg(m->rec->id, w->seq, w->head, &msg);
    crypto_sign_detached(w->sig, NULL, msg.data, msg.len, srv->host.sk);
    proto_buf_free(&msg, 0);
    m->checkpoint_seq = w->seq; /* do not sign the same head twice */
    return 0;
}

static void reserve_ids_ahead(struct srv *srv);

void srv_hub_sign_head(struct srv *srv, struct srv_meeting *m)
{
    if (m->rec->seq > m->checkpoint_seq && !m->broken) {
        struct srv_batch *b = open_batch(srv);
        if (b != NULL && add_checkpoint(srv, b, m) == 0) {
            m->last_batch = b->id;
        }
    }
}

void srv_hub_checkpoint_all(struct srv *srv)
{
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        m->settle = m->rec->seq > 0;
    }
}

/* Queues, at the end of the open batch, what has come due for m: a signed snapshot of
 * its record with the refresh of its rows (every cfg.snapshot_every changes, when it has
 * been idle for cfg.idle_ms, when it settles, and for a new meeting, whose meeting row the
 * database must hold), and a checkpoint of its head (every CHECKPOINT_EVERY entries, when
 * idle, when it settles). All of them stand at rec->seq: every entry up to it is in this
 * batch or an earlier one, so they commit together or not at all. */
static void queue_due(struct srv *srv, struct srv_meeting *m, int64_t now)
{
    int64_t seq = m->rec->seq;
    bool idle = now - m->last_change_ms >= (int64_t)srv->cfg.idle_ms;
    bool rows =
        seq > m->snapshot_seq && (seq - m->snapshot_seq >= (int64_t)srv->cfg.snapshot_every ||
                                  idle || m->settle || m->rows_seq == 0);
    bool sign = seq > m->checkpoint_seq &&
                (seq - m->checkpoint_seq >= CHECKPOINT_EVERY || idle || m->settle);
    m->settle = false;
    if (seq == 0 || m->broken || (!rows && !sign)) {
        return;
    }
    struct srv_batch *b = open_batch(srv);
    if (b == NULL) {
        return;
    }
    if (rows) {
        struct srv_wop *w = add_wop(b, WOP_ROWS, m->rec->id);
        if (w == NULL || (w->rows = rows_take(srv, m)) == NULL) {
            /* Memory and the open batch no longer agree: the batch cannot be trusted. */
            b->rc = PROTO_ENOMEM;
            snprintf(b->err, sizeof(b->err), "out of memory copying the rows of %s", m->rec->id);
            return;
        }
        w->seq = seq;
        w->rows->snap.meeting = w->meeting; /* the record's id may go before the write */
        b->has_rows = true;
    }
    if (sign) {
        add_checkpoint(srv, b, m);
    }
}

void srv_hub_fail_open(struct srv *srv, struct srv_meeting *m, const char *why)
{
    struct srv_batch *b = open_batch(srv);
    m->reload = true;
    if (b != NULL && b->rc == 0) {
        b->rc = PROTO_EINVAL;
        snprintf(b->err, sizeof(b->err), "%s", why);
    }
}

void srv_hub_flush(struct srv *srv)
{
    int64_t now = proto_now_ms();
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        if (m->broken && meeting_reload(srv, m) == 0) {
            srv_log(NULL, SRV_LOG_INFO, "meeting %s reloaded", m->rec->id);
        }
        queue_due(srv, m, now);
    }
    if (!srv->offline) {
        reserve_ids_ahead(srv);
    }
    if (srv->write_batch != NULL || srv->open_batch == NULL) {
        return;
    }
    struct srv_batch *b = srv->open_batch;
    srv->open_batch = NULL;
    srv->write_batch = b;
    int rc = b->rc;
    if (rc == 0 && (rc = srv_writer_submit(srv->writer, batch_work, batch_done, b)) != 0) {
        snprintf(b->err, sizeof(b->err), "cannot start the writer");
    }
    if (rc != 0) {
        batch_done(b, rc, b->err);
    }
}

/* ---- committing changes ---- */

static struct srv_entry *make_entry(struct srv_change *ch, int64_t seq, uint64_t batch)
{
    struct srv_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->batch = batch;
    snprintf(e->meeting, sizeof(e->meeting), "%s", ch->m ? ch->m->rec->id : ch->id_str);
    snprintf(e->user, sizeof(e->user), "%s", ch->user);
    snprintf(e->kind, sizeof(e->kind), "%s", ch->kind);
    snprintf(e->type, sizeof(e->type), "%s",
             ch->type != PROTO_T_COUNT ? proto_type_info(ch->type)->name
                                       : (ch->type_name ? ch->type_name : "member"));
    e->a.meeting = e->meeting;
    e->a.user = e->user;
    e->a.kind = e->kind;
    e->a.type = e->type;
    e->a.seq = seq;
    e->a.time_ms = proto_now_ms();
    if (ch->cid) {
        snprintf(e->cid, sizeof(e->cid), "%s", ch->cid);
        e->a.cid = e->cid;
    }
    if (ch->id_str) {
        snprintf(e->id_str, sizeof(e->id_str), "%s", ch->id_str);
        e->a.id_str = e->id_str;
    } else {
        e->a.id_int = ch->id;
    }
    e->payload = malloc(ch->payload.len ? ch->payload.len : 1);
    if (e->payload == NULL) {
        free(e);
        return NULL;
    }
    memcpy(e->payload, ch->payload.data, ch->payload.len);
    e->a.payload = e->payload;
    e->a.payload_len = ch->payload.len;
    return e;
}

/* Sends an event to every subscriber of m but the author's connection. */
static void broadcast(struct srv_meeting *m, const struct db_audit *a, struct srv_conn *author,
                      uint64_t batch)
{
    if (m->subs == NULL) {
        return;
    }
    struct proto_buf ev = {0};
    if (srv_hub_pack_event(a, &ev) == 0) {
        for (struct srv_sub *s = m->subs; s; s = s->next) {
            if (s->conn != author) {
                srv_held_send(s->conn, ev.data, ev.len, batch);
            }
        }
    }
    proto_buf_free(&ev, 0);
}

/* Notes what the next refresh of m's rows must write besides the changed objects: a
 * deleted object's id, or that the members changed. Returns 0 or PROTO_ENOMEM. */
static int note_change(struct srv_meeting *m, const struct srv_change *ch)
{
    if (ch->type == PROTO_T_COUNT && ch->type_name != NULL) {
        return 0; /* a share: no row of the record */
    }
    if (ch->type == PROTO_T_COUNT) {
        m->members_changed = true;
        return 0;
    }
    if (strcmp(ch->kind, "delete") != 0) {
        return 0;
    }
    if (m->ndeleted == m->cap_deleted) {
        size_t cap = m->cap_deleted ? m->cap_deleted * 2 : 16;
        struct srv_deleted *d = realloc(m->deleted, cap * sizeof(*d));
        if (d == NULL) {
            return PROTO_ENOMEM;
        }
        m->deleted = d;
        m->cap_deleted = cap;
    }
    m->deleted[m->ndeleted++] = (struct srv_deleted){.type = ch->type, .id = ch->id};
    return 0;
}

static void presence_move(struct srv_meeting *m, const struct db_audit *e);

/* A change writes its log entry alone: the rows follow at the next refresh (queue_due).
 * It is applied exactly as a replay of its entry would be (text edits included). */
static int64_t commit_entry(struct srv *srv, struct srv_meeting *m, struct srv_change *ch)
{
    if (m->broken) {
        return PROTO_EDB; /* memory and database disagree until it reloads */
    }
    struct srv_batch *b = open_batch(srv);
    struct srv_entry *e = NULL;
    int rc = 0;
    if (b == NULL || (e = make_entry(ch, m->rec->seq + 1, b->id)) == NULL) {
        return PROTO_ENOMEM;
    }
    if ((rc = srv_audit_entry_hash(m->head, &e->a, e->a.hash)) != 0) {
        entry_free(e);
        return rc;
    }
    if ((rc = srv_apply_entry(m->rec, &e->a)) != 0) {
        entry_free(e);
        return rc;
    }
    presence_move(m, &e->a);
    struct srv_wop *w = add_wop(b, WOP_AUDIT, m->rec->id);
    if (w != NULL) {
        w->entry = e;
    }
    memcpy(m->head, e->a.hash, DB_HASH_BYTES);
    m->last_batch = b->id;
    m->last_change_ms = e->a.time_ms;
    if (m->pending_tail) {
        m->pending_tail->next = e;
    } else {
        m->pending = e;
    }
    m->pending_tail = e;
    if (w == NULL || note_change(m, ch) != 0) {
        /* Memory and the open batch no longer agree: the batch cannot be trusted. */
        b->rc = PROTO_ENOMEM;
        snprintf(b->err, sizeof(b->err), "out of memory queueing a change");
        m->reload = true;
        return PROTO_ENOMEM;
    }
    broadcast(m, &e->a, ch->author, b->id);
    return e->a.seq;
}

int srv_hub_add_write(struct srv *srv, const char *meeting, int (*work)(struct db *db, void *ud),
                      void (*done)(void *ud, int rc), void *ud)
{
    struct srv_batch *b = open_batch(srv);
    struct srv_wop *w = b ? add_wop(b, WOP_EXTRA, meeting) : NULL;
    if (w == NULL) {
        return PROTO_ENOMEM;
    }
    w->work = work;
    w->done = done;
    w->ud = ud;
    return 0;
}

void srv_hub_listen(struct srv *srv,
                    void (*cb)(void *ud, struct srv_meeting *m, const struct db_audit *e), void *ud)
{
    srv->durable_cb = cb;
    srv->durable_ud = ud;
}

int64_t srv_hub_commit(struct srv *srv, struct srv_change *ch)
{
    int64_t seq = commit_entry(srv, ch->m, ch);
    proto_buf_free(&ch->payload, 0);
    return seq;
}

int srv_hub_create_meeting(struct srv *srv, const char *id, struct srv_change *ch,
                           struct srv_meeting **out)
{
    if (srv_hub_find(srv, id, strlen(id)) != NULL || db_meeting_exists(srv->db, id) == 0) {
        proto_buf_free(&ch->payload, 0);
        return PROTO_ECONFLICT;
    }
    struct srv_meeting *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->rec = srv_rec_new(id)) == NULL) {
        free(m);
        proto_buf_free(&ch->payload, 0);
        return PROTO_ENOMEM;
    }
    srv_audit_genesis(id, m->head);
    m->win.from = 1;
    m->next = srv->meetings;
    srv->meetings = m;
    ch->m = m;
    ch->type = PROTO_T_MEETING;
    ch->kind = "create";
    ch->id_str = m->rec->id;
    int64_t seq = srv_hub_commit(srv, ch);
    if (seq < 0) {
        return (int)seq;
    }
    *out = m;
    return 0;
}

/* ---- reading the log ---- */

int srv_hub_entries(struct srv *srv, struct srv_meeting *m, int64_t since, int64_t until,
                    db_audit_cb cb, void *ud)
{
    int64_t db_until = until < m->committed_seq ? until : m->committed_seq;
    int rc = 0;
    if (since < db_until) {
        rc = db_audit_range(srv->db, m->rec->id, since, db_until, cb, ud);
    }
    for (struct srv_entry *e = m->pending; e && rc == 0; e = e->next) {
        if (e->a.seq > since && e->a.seq <= until && e->a.seq > db_until) {
            rc = cb(ud, &e->a);
        }
    }
    return rc;
}

/* ---- members across meetings ---- */

void srv_hub_pack_my_meetings(struct srv *srv, const char *user, msgpack_packer *pk)
{
    size_t n = 0;
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        n += srv_rec_member(m->rec, user) != NULL;
    }
    msgpack_pack_map(pk, n);
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        struct srv_member *mb = srv_rec_member(m->rec, user);
        if (mb) {
            proto_pack_cstr(pk, m->rec->id);
            proto_pack_cstr(pk, mb->role);
        }
    }
}

/* ---- subscriptions ---- */

/* ---- presence: what subscribing, unsubscribing and closing need ---- */

/* True when the cursor of s is in the object that entry e changed. */
static bool cursor_on(const struct srv_sub *s, const struct db_audit *e)
{
    return s->has_cursor && strcmp(s->where_type, e->type) == 0 &&
           (s->cursor_type == PROTO_T_MEETING || (e->id_str == NULL && e->id_int == s->where_id));
}

/* The op of an unpacked text or update entry's payload on the text field named field: an
 * op as stored, or NULL when the entry did not touch that field. */
static const msgpack_object *payload_field_op(const struct db_audit *e,
                                              const msgpack_object *payload, const char *field)
{
    if (strcmp(e->kind, "text") == 0) {
        const msgpack_object *f = proto_mp_map_get(payload, "field");
        if (f && f->type == MSGPACK_OBJECT_STR && f->via.str.size == strlen(field) &&
            memcmp(f->via.str.ptr, field, f->via.str.size) == 0) {
            return proto_mp_map_get(payload, "op");
        }
        return NULL;
    }
    if (strcmp(e->kind, "update") == 0) {
        return proto_mp_map_get(proto_mp_map_get(payload, "ops"), field);
    }
    return NULL;
}

/* Decodes an op as stored into out; one transformed into nothing is stored as []. */
static int decode_stored_op(const msgpack_object *o, struct proto_op *out)
{
    if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0) {
        proto_op_free(out);
        return 0;
    }
    return proto_op_decode(o, out);
}

/* Moves the cursors in the object that e changed over its op (section 11). Called for
 * every change, so the common case - nobody's cursor is in that object - costs one walk of
 * the subscribers and no decoding; the payload is unpacked once and each op decoded once.
 * A delete forgets the cursors in the object; an op that cannot be read forgets those in
 * its field rather than leave them wrong. */
static void presence_move(struct srv_meeting *m, const struct db_audit *e)
{
    struct srv_sub *first = m->subs;
    while (first && !cursor_on(first, e)) {
        first = first->next;
    }
    if (first == NULL) {
        return;
    }
    if (strcmp(e->kind, "delete") == 0) {
        for (struct srv_sub *s = first; s; s = s->next) {
            if (cursor_on(s, e)) {
                s->has_cursor = false;
            }
        }
        return;
    }
    if (strcmp(e->kind, "text") != 0 && strcmp(e->kind, "update") != 0) {
        return;
    }
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    bool ok = msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) ==
              MSGPACK_UNPACK_SUCCESS;
    struct proto_op op;
    proto_op_init(&op);
    const msgpack_object *decoded = NULL; /* the stored op that op holds */
    int rc = 0;
    for (struct srv_sub *s = first; s; s = s->next) {
        if (!cursor_on(s, e)) {
            continue;
        }
        const msgpack_object *o = ok ? payload_field_op(e, &u.data, s->where_field) : NULL;
        if (o == NULL) {
            if (!ok) {
                s->has_cursor = false;
            }
            continue;
        }
        if (o != decoded) {
            rc = decode_stored_op(o, &op);
            decoded = rc == 0 ? o : NULL;
        }
        if (rc != 0) {
            s->has_cursor = false;
            continue;
        }
        s->pos = proto_op_transform_pos(s->pos, &op);
        s->anchor = proto_op_transform_pos(s->anchor, &op);
    }
    proto_op_free(&op);
    msgpack_unpacked_destroy(&u);
}

/* After a failed batch the record went back to the database's: the positions were moved
 * over ops that are gone, so they are forgotten until their clients set them again. */
static void presence_forget_cursors(struct srv_meeting *m)
{
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        s->has_cursor = false;
    }
}

int srv_hub_field_ops(struct srv_meeting *m, enum proto_type t, int64_t id, int field, int64_t base,
                      int (*cb)(void *ud, const struct proto_op *op), void *ud)
{
    if (base + 1 >= m->win.from) {
        /* Only the newest ops are after base: find where they start, from the end. */
        const struct srv_window *w = &m->win;
        size_t first = w->n;
        while (first > 0 && w->ops[(w->head + first - 1) % w->cap].seq > base) {
            first--;
        }
        for (size_t i = first; i < w->n; i++) {
            const struct srv_textop *x = &w->ops[(w->head + i) % w->cap];
            if (x->type == t && x->id == id && x->field == field) {
                int rc = cb(ud, &x->op);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        return 0;
    }
    if (m->committed_seq > base) {
        return 1;
    }
    const struct proto_typeinfo *ti = proto_type_info(t);
    for (const struct srv_entry *p = m->pending; p; p = p->next) {
        const struct db_audit *e = &p->a;
        if (e->seq <= base || strcmp(e->type, ti->name) != 0 ||
            (t != PROTO_T_MEETING && (e->id_str != NULL || e->id_int != id))) {
            continue;
        }
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        int rc = 0;
        if (msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) ==
            MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *o = payload_field_op(e, &u.data, ti->fields[field].name);
            if (o != NULL) {
                struct proto_op op;
                proto_op_init(&op);
                rc = decode_stored_op(o, &op);
                if (rc == 0) {
                    rc = cb(ud, &op);
                }
                proto_op_free(&op);
            }
        }
        msgpack_unpacked_destroy(&u);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

void srv_hub_pack_where(msgpack_packer *pk, const struct srv_sub *s)
{
    if (!s->present) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 2 + (s->where_field[0] ? 1 : 0) + (s->has_cursor ? 2 : 0));
    proto_pack_cstr(pk, "type");
    proto_pack_cstr(pk, s->where_type);
    proto_pack_cstr(pk, "id");
    if (s->where_id_str[0]) {
        proto_pack_cstr(pk, s->where_id_str);
    } else {
        msgpack_pack_int64(pk, s->where_id);
    }
    if (s->where_field[0]) {
        proto_pack_cstr(pk, "field");
        proto_pack_cstr(pk, s->where_field);
    }
    if (s->has_cursor) {
        proto_pack_cstr(pk, "pos");
        msgpack_pack_uint64(pk, s->pos);
        proto_pack_cstr(pk, "anchor");
        msgpack_pack_uint64(pk, s->anchor);
    }
}

void srv_hub_presence_notify(struct srv_meeting *m, const struct srv_sub *from, const char *state)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_notify(&pk, "presence");
    msgpack_pack_map(&pk, 5);
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, m->rec->id);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, from->conn->user);
    proto_pack_cstr(&pk, "where");
    srv_hub_pack_where(&pk, from);
    proto_pack_cstr(&pk, "state");
    proto_pack_cstr(&pk, state);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, m->rec->seq);
    /* The positions refer to seq: the notification waits for the batch of its latest change
     * like that change's event, so it never arrives before an event it counts. */
    uint64_t batch = srv_hub_hold(from->conn->srv, m);
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        if (s != from) {
            srv_held_send(s->conn, b.data, b.len, batch);
        }
    }
    proto_buf_free(&b, 0);
}

void srv_hub_presence_leave(struct srv_meeting *m, struct srv_sub *sub)
{
    if (!sub->present) {
        return;
    }
    sub->present = false;
    sub->has_cursor = false;
    srv_hub_presence_notify(m, sub, "leave");
}

int srv_hub_subscribe(struct srv_meeting *m, struct srv_conn *conn)
{
    for (size_t i = 0; i < conn->nsubs; i++) {
        if (conn->subs[i] == m) {
            return 0;
        }
    }
    struct srv_sub *s = calloc(1, sizeof(*s));
    struct srv_meeting **v = realloc(conn->subs, (conn->nsubs + 1) * sizeof(*v));
    if (s == NULL || v == NULL) {
        free(s);
        if (v) {
            conn->subs = v;
        }
        return PROTO_ENOMEM;
    }
    conn->subs = v;
    conn->subs[conn->nsubs++] = m;
    s->conn = conn;
    s->next = m->subs;
    m->subs = s;
    return 0;
}

void srv_hub_unsubscribe(struct srv_meeting *m, struct srv_conn *conn)
{
    for (struct srv_sub **pp = &m->subs; *pp; pp = &(*pp)->next) {
        if ((*pp)->conn == conn) {
            struct srv_sub *s = *pp;
            *pp = s->next;
            srv_hub_presence_leave(m, s);
            free(s);
            break;
        }
    }
    for (size_t i = 0; i < conn->nsubs; i++) {
        if (conn->subs[i] == m) {
            conn->subs[i] = conn->subs[--conn->nsubs];
            break;
        }
    }
}

void srv_hub_drop_conn(struct srv *srv, struct srv_conn *conn)
{
    (void)srv;
    while (conn->nsubs > 0) {
        srv_hub_unsubscribe(conn->subs[conn->nsubs - 1], conn);
    }
}

/* ---- object ids ---- */

struct id_job {
    struct srv *srv;
    int64_t first;
};

static int reserve_work(struct db *db, void *ud, char *err, size_t errlen)
{
    struct id_job *j = ud;
    int rc = db_id_reserve(db, ID_BLOCK, &j->first);
    if (rc != 0) {
        snprintf(err, errlen, "%s", db_errmsg(db));
    }
    return rc;
}

static void reserve_done(void *ud, int rc, const char *err)
{
    struct id_job *j = ud;
    j->srv->reserving_ids = false;
    if (rc == 0) {
        j->srv->spare_obj_id = j->first;
    } else {
        srv_log(NULL, SRV_LOG_ERROR, "cannot reserve object ids: %s", err);
    }
    free(j);
}

/* Asks the writer for the next block once none is spare and half of this one is used. */
static void reserve_ids_ahead(struct srv *srv)
{
    bool low = srv->next_obj_id == 0 || srv->last_obj_id - srv->next_obj_id < ID_BLOCK / 2;
    if (srv->writer == NULL || srv->reserving_ids || srv->spare_obj_id != 0 || !low) {
        return;
    }
    struct id_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return;
    }
    j->srv = srv;
    if (srv_writer_submit(srv->writer, reserve_work, reserve_done, j) != 0) {
        free(j);
        return;
    }
    srv->reserving_ids = true;
}

int64_t srv_hub_next_id(struct srv *srv)
{
    if (srv->next_obj_id == 0 || srv->next_obj_id > srv->last_obj_id) {
        if (srv->spare_obj_id == 0) {
            /* Nothing reserved ahead (an operator tool, or a burst): wait for the writer. */
            struct id_job j = {.srv = srv};
            char err[256];
            if (srv->writer == NULL ||
                srv_writer_call(srv->writer, reserve_work, &j, err, sizeof(err)) != 0) {
                return PROTO_EDB;
            }
            srv->spare_obj_id = j.first;
        }
        srv->next_obj_id = srv->spare_obj_id;
        srv->last_obj_id = srv->spare_obj_id + ID_BLOCK - 1;
        srv->spare_obj_id = 0;
    }
    int64_t id = srv->next_obj_id++;
    if (!srv->offline) {
        reserve_ids_ahead(srv);
    }
    return id;
}
