/* srv_hub.c - meetings in memory, the change pipeline, group commit and events. */
#include "srv_hub.h"
#include "srv_writer.h"

#include <stdlib.h>
#include <string.h>

#define CHECKPOINT_EVERY    100
#define CHECKPOINT_AFTER_MS (60 * 1000)
#define ID_BLOCK            1024

/* One write of a batch, done by the writer in the order the changes were made. */
enum wop_kind { WOP_PUT, WOP_DEL, WOP_MEMBER, WOP_AUDIT, WOP_CHECKPOINT };

struct srv_wop {
    struct srv_wop *next;
    enum wop_kind kind;
    char meeting[PROTO_NAME_MAX + 1];
    enum proto_type type;
    int64_t id;
    int64_t seq;
    /* PUT: while it is the latest write of its object its values are the object's current
     * ones, taken at hand-over (obj); a later write of the object freezes them first. */
    struct srv_obj *obj;
    bool lazy;
    bool text_only; /* made by a text edit: differs from the write before only in text */
    bool skip;      /* PUT: merged into a later write of the same object */
    struct db_val vals[PROTO_MAX_FIELDS];
    char *strs[PROTO_MAX_FIELDS];  /* copies the vals point to */
    char user[PROTO_NAME_MAX + 1]; /* MEMBER */
    char role[16];                 /* MEMBER: "" removes */
    struct srv_entry *entry;       /* AUDIT: owned by the meeting's pending list */
    uint8_t head[DB_HASH_BYTES];   /* CHECKPOINT */
    uint8_t sig[DB_SIG_BYTES];
};

struct srv_batch {
    struct srv *srv;
    uint64_t id;
    struct srv_wop *head, *tail;
    size_t count;
    /* The latest PUT of each object, by object (open addressing; NULL slots are free). */
    struct srv_wop **latest;
    size_t nlatest, cap_latest;
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

struct load_ctx {
    struct srv_rec *rec;
    enum proto_type type;
    int rc;
};

static int load_obj(void *ud, int64_t id, int64_t seq, const struct db_val *vals)
{
    struct load_ctx *ctx = ud;
    const struct proto_typeinfo *ti = proto_type_info(ctx->type);
    struct srv_obj *o = ctx->type == PROTO_T_MEETING ? &ctx->rec->meeting : srv_obj_new(ctx->type);
    if (o == NULL) {
        return PROTO_ENOMEM;
    }
    o->id = ctx->type == PROTO_T_MEETING ? 0 : id;
    o->seq = seq;
    for (size_t i = 0; i < ti->nfields; i++) {
        enum proto_fkind k = ti->fields[i].kind;
        if (k == PROTO_F_COMPUTED) {
            continue;
        }
        if (!vals[i].set) {
            srv_val_unset(&o->f[i]);
        } else if (k == PROTO_F_INT || k == PROTO_F_ITEMREF) {
            srv_val_set_int(&o->f[i], vals[i].i);
        } else if (srv_val_set_str(&o->f[i], vals[i].s, vals[i].len) != 0) {
            return PROTO_ENOMEM;
        }
    }
    if (ctx->type != PROTO_T_MEETING && srv_rec_add(ctx->rec, o) != 0) {
        srv_obj_free(o);
        return PROTO_ENOMEM;
    }
    return 0;
}

static int load_member(void *ud, const char *meeting, const char *user, const char *role,
                       int64_t seq)
{
    struct srv_rec *rec = ud;
    (void)meeting;
    return srv_rec_set_member(rec, user, role, seq);
}

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
};

static int load_record(struct srv *srv, const char *id, struct loaded *l)
{
    int rc = 0;
    memset(l, 0, sizeof(*l));
    if ((l->rec = srv_rec_new(id)) == NULL) {
        return PROTO_ENOMEM;
    }
    for (int t = 0; t < PROTO_T_COUNT && rc == 0; t++) {
        struct load_ctx ctx = {.rec = l->rec, .type = (enum proto_type)t};
        rc = db_obj_load(srv->db, id, (enum proto_type)t, load_obj, &ctx);
    }
    if (rc == 0) {
        rc = db_member_list(srv->db, id, load_member, l->rec);
    }
    if (rc == 0) {
        rc = db_audit_head(srv->db, id, &l->committed_seq, l->head);
    }
    if (rc == 0) {
        rc = db_checkpoint_list(srv->db, id, last_checkpoint, &l->checkpoint_seq);
    }
    if (rc != 0) {
        srv_rec_free(l->rec);
        l->rec = NULL;
        return rc;
    }
    l->rec->seq = l->committed_seq;
    return 0;
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
    m->rec = l.rec;
    m->committed_seq = l.committed_seq;
    memcpy(m->head, l.head, DB_HASH_BYTES);
    m->checkpoint_seq = l.checkpoint_seq;
    m->win.from = m->committed_seq + 1;
    m->next = srv->meetings;
    srv->meetings = m;
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
    free(m);
}

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
    m->last_batch = 0;
    m->reload = false;
    if (rc != 0) {
        m->broken = rc != PROTO_ENOTFOUND;
        return rc;
    }
    srv_rec_free(m->rec);
    m->rec = l.rec;
    m->committed_seq = l.committed_seq;
    memcpy(m->head, l.head, DB_HASH_BYTES);
    m->checkpoint_seq = l.checkpoint_seq;
    m->win.from = m->committed_seq + 1;
    m->broken = false;
    return 0;
}

static void batch_free(struct srv_batch *b)
{
    if (b == NULL) {
        return;
    }
    while (b->head) {
        struct srv_wop *w = b->head;
        b->head = w->next;
        for (int i = 0; i < PROTO_MAX_FIELDS; i++) {
            free(w->strs[i]);
        }
        free(w);
    }
    free(b->latest);
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
    batch_free(srv->open_batch);
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

/* The slot of o in the batch's table of latest PUTs: the one holding it, or the free slot
 * where it goes. Slots of PUTs no longer latest (obj NULL) are passed over. */
static size_t latest_slot(const struct srv_batch *b, const struct srv_obj *o)
{
    size_t mask = b->cap_latest - 1;
    size_t i = (size_t)(((uintptr_t)o >> 4) * 0x9e3779b97f4a7c15ull) & mask;
    while (b->latest[i] != NULL && b->latest[i]->obj != o) {
        i = (i + 1) & mask;
    }
    return i;
}

static struct srv_wop *latest_get(const struct srv_batch *b, const struct srv_obj *o)
{
    if (b->cap_latest == 0 || o == NULL) {
        return NULL;
    }
    return b->latest[latest_slot(b, o)];
}

/* Makes w the latest PUT of w->obj. Returns 0 or PROTO_ENOMEM. */
static int latest_set(struct srv_batch *b, struct srv_wop *w)
{
    if ((b->nlatest + 1) * 2 > b->cap_latest) {
        size_t cap = b->cap_latest ? b->cap_latest * 2 : 64;
        struct srv_wop **old = b->latest;
        size_t old_cap = b->cap_latest;
        b->latest = calloc(cap, sizeof(*b->latest));
        if (b->latest == NULL) {
            b->latest = old;
            return PROTO_ENOMEM;
        }
        b->cap_latest = cap;
        b->nlatest = 0;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i] != NULL && old[i]->obj != NULL) {
                b->latest[latest_slot(b, old[i]->obj)] = old[i];
                b->nlatest++;
            }
        }
        free(old);
    }
    size_t i = latest_slot(b, w->obj);
    if (b->latest[i] == NULL) {
        b->nlatest++;
    }
    b->latest[i] = w;
    return 0;
}

/* Copies the current values of w's object into w (for the writer thread). */
static int snapshot(struct srv_wop *w)
{
    const struct srv_obj *o = w->obj;
    const struct proto_typeinfo *ti = proto_type_info(w->type);
    w->lazy = false;
    w->seq = o->seq;
    for (size_t i = 0; i < ti->nfields; i++) {
        const struct srv_val *v = &o->f[i];
        w->vals[i].set = v->set;
        w->vals[i].i = v->i;
        if (v->set && v->s) {
            w->strs[i] = malloc(v->len + 1);
            if (w->strs[i] == NULL) {
                return PROTO_ENOMEM;
            }
            memcpy(w->strs[i], v->s, v->len + 1);
            w->vals[i].s = w->strs[i];
            w->vals[i].len = v->len;
        }
    }
    return 0;
}

static int write_one(struct db *db, struct srv_wop *w)
{
    switch (w->kind) {
    case WOP_PUT:
        return w->skip ? 0 : db_obj_put(db, w->meeting, w->type, w->id, w->seq, w->vals);
    case WOP_DEL:
        return db_obj_delete(db, w->meeting, w->type, w->id);
    case WOP_MEMBER:
        return db_member_put(db, w->meeting, w->user, w->role[0] ? w->role : NULL, w->seq);
    case WOP_AUDIT:
        return db_audit_append(db, &w->entry->a);
    case WOP_CHECKPOINT:
        return db_checkpoint_add(db, w->meeting, w->seq, w->head, w->sig);
    }
    return PROTO_EINVAL;
}

/* True when a batch writes more than text and its log: only such writes touch a foreign
 * key. A batch of text edits alone (the common case while people type) skips the deferral,
 * because that PRAGMA expires every prepared statement of the connection, which SQLite
 * then prepares again (about a sixth of the writer's time in a 10-editor benchmark). */
static bool batch_needs_deferral(const struct srv_batch *b)
{
    for (const struct srv_wop *w = b->head; w; w = w->next) {
        bool plain = w->kind == WOP_AUDIT || w->kind == WOP_CHECKPOINT ||
                     (w->kind == WOP_PUT && w->text_only);
        if (!plain) {
            return true;
        }
    }
    return false;
}

/* On the writer thread: the whole batch in one transaction, in the order of the changes;
 * foreign keys are checked at the commit, as memory checked them for the whole turn. */
static int batch_work(struct db *db, void *ud, char *err, size_t errlen)
{
    struct srv_batch *b = ud;
    int rc = db_begin(db);
    if (rc == 0 && batch_needs_deferral(b)) {
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
    batch_free(open);
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
        batch_free(b);
        srv_conn_flush_all(srv);
        return;
    }
    srv->committed_batch = b->id;
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        while (m->pending && m->pending->batch <= b->id) {
            struct srv_entry *e = m->pending;
            m->pending = e->next;
            m->committed_seq = e->a.seq;
            entry_free(e);
        }
        if (m->pending == NULL) {
            m->pending_tail = NULL;
        }
    }
    for (struct srv_wop *w = b->head; w; w = w->next) {
        if (w->kind == WOP_CHECKPOINT) {
            struct srv_meeting *m = srv_hub_find(srv, w->meeting, strlen(w->meeting));
            if (m && w->seq > m->checkpoint_seq) {
                m->checkpoint_seq = w->seq;
            }
        }
    }
    batch_free(b);
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

void srv_hub_checkpoint_all(struct srv *srv)
{
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        if (m->rec->seq > m->checkpoint_seq && m->rec->seq > 0 && !m->broken) {
            struct srv_batch *b = open_batch(srv);
            if (b == NULL || add_checkpoint(srv, b, m) != 0) {
                srv_log(NULL, SRV_LOG_ERROR, "meeting %s: cannot sign its head at shutdown",
                        m->rec->id);
            }
        }
    }
}

void srv_hub_flush(struct srv *srv)
{
    int64_t now = proto_now_ms();
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        if (m->broken && meeting_reload(srv, m) == 0) {
            srv_log(NULL, SRV_LOG_INFO, "meeting %s reloaded", m->rec->id);
        }
        /* Checkpoint meetings that changed a while ago and have none since. */
        bool due = m->rec->seq > m->checkpoint_seq &&
                   (m->rec->seq - m->checkpoint_seq >= CHECKPOINT_EVERY ||
                    now - m->last_change_ms >= CHECKPOINT_AFTER_MS);
        if (due && m->rec->seq > 0 && !m->broken) {
            struct srv_batch *b = open_batch(srv);
            if (b) {
                add_checkpoint(srv, b, m);
            }
        }
    }
    if (!srv->offline) {
        reserve_ids_ahead(srv);
    }
    if (srv->write_batch != NULL || srv->open_batch == NULL) {
        return;
    }
    struct srv_batch *b = srv->open_batch;
    srv->open_batch = NULL;
    /* The latest write of each object takes its values now: they are the current ones. */
    for (struct srv_wop *w = b->head; w && b->rc == 0; w = w->next) {
        if (w->kind == WOP_PUT && w->lazy && !w->skip && snapshot(w) != 0) {
            b->rc = PROTO_ENOMEM;
            snprintf(b->err, sizeof(b->err), "out of memory copying a write");
        }
    }
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
             ch->type == PROTO_T_COUNT ? "member" : proto_type_info(ch->type)->name);
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

/* Applies a live change exactly as a replay of its entry would (text edits included). */
static int apply_change(struct srv_meeting *m, struct srv_change *ch, const struct db_audit *a)
{
    (void)ch;
    return srv_apply_entry(m->rec, a);
}

/* The object a change writes (NULL for members, and for an object not created yet). */
static struct srv_obj *change_obj(struct srv_meeting *m, const struct srv_change *ch)
{
    if (ch->type == PROTO_T_COUNT) {
        return NULL;
    }
    return srv_rec_find(m->rec, ch->type, ch->type == PROTO_T_MEETING ? 0 : ch->id);
}

/* Queues the writes of a change just applied, in the batch's order: the object as the
 * change left it (a member row for member changes, a delete for deletes), then the entry.
 * prev is the object's latest PUT before the change: a text edit's is merged into this
 * write (text columns carry no constraint, so nothing written between them can tell),
 * any other was frozen before the change. */
static int queue_writes(struct srv_batch *b, struct srv_meeting *m, struct srv_change *ch,
                        struct srv_wop *prev, struct srv_entry *e)
{
    if (prev && prev->text_only) {
        prev->skip = true;
        prev->lazy = false;
    }
    if (ch->type == PROTO_T_COUNT) {
        struct srv_wop *w = add_wop(b, WOP_MEMBER, m->rec->id);
        struct srv_member *mb = srv_rec_member(m->rec, ch->id_str);
        if (w == NULL) {
            return PROTO_ENOMEM;
        }
        snprintf(w->user, sizeof(w->user), "%s", ch->id_str);
        snprintf(w->role, sizeof(w->role), "%s", mb ? mb->role : "");
        w->seq = e->a.seq;
    } else if (strcmp(ch->kind, "delete") == 0) {
        struct srv_wop *w = add_wop(b, WOP_DEL, m->rec->id);
        if (w == NULL) {
            return PROTO_ENOMEM;
        }
        w->type = ch->type;
        w->id = ch->id;
        if (prev) {
            prev->obj = NULL; /* the object is gone: its slot no longer matches */
        }
    } else {
        struct srv_obj *o = change_obj(m, ch);
        struct srv_wop *w = o ? add_wop(b, WOP_PUT, m->rec->id) : NULL;
        if (w == NULL) {
            return o ? PROTO_ENOMEM : PROTO_EINVAL;
        }
        w->type = ch->type;
        w->id = ch->type == PROTO_T_MEETING ? 0 : ch->id;
        w->obj = o;
        w->lazy = true;
        w->text_only = strcmp(ch->kind, "text") == 0;
        if (prev) {
            prev->obj = NULL;
        }
        if (latest_set(b, w) != 0) {
            return PROTO_ENOMEM;
        }
        /* A new meeting's rapporteur comes with its create entry. */
        bool new_meeting = strcmp(ch->kind, "create") == 0 && ch->type == PROTO_T_MEETING;
        if (new_meeting && m->rec->nmembers > 0) {
            struct srv_wop *mw = add_wop(b, WOP_MEMBER, m->rec->id);
            if (mw == NULL) {
                return PROTO_ENOMEM;
            }
            snprintf(mw->user, sizeof(mw->user), "%s", m->rec->members[0].user);
            snprintf(mw->role, sizeof(mw->role), "%s", m->rec->members[0].role);
            mw->seq = e->a.seq;
        }
    }
    struct srv_wop *aw = add_wop(b, WOP_AUDIT, m->rec->id);
    if (aw == NULL) {
        return PROTO_ENOMEM;
    }
    aw->entry = e;
    return 0;
}

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
    /* The object's latest write must keep the values it has now, before this change:
     * unless a text edit made it (then it merges into this change's write), copy them. */
    struct srv_wop *prev = latest_get(b, change_obj(m, ch));
    if (prev && prev->lazy && !prev->text_only && snapshot(prev) != 0) {
        b->rc = PROTO_ENOMEM;
        snprintf(b->err, sizeof(b->err), "out of memory copying a write");
        entry_free(e);
        return PROTO_ENOMEM;
    }
    if ((rc = apply_change(m, ch, &e->a)) != 0) {
        entry_free(e);
        return rc;
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
    if (queue_writes(b, m, ch, prev, e) != 0) {
        /* Memory and the open batch no longer agree: the batch cannot be trusted. */
        b->rc = PROTO_ENOMEM;
        snprintf(b->err, sizeof(b->err), "out of memory queueing a write");
        return PROTO_ENOMEM;
    }
    broadcast(m, &e->a, ch->author, b->id);
    return e->a.seq;
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

void srv_hub_pack_where(msgpack_packer *pk, const struct srv_sub *s)
{
    if (!s->present) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, s->where_field[0] ? 3 : 2);
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
}

void srv_hub_presence_notify(struct srv_meeting *m, const struct srv_sub *from, const char *state)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_notify(&pk, "presence");
    msgpack_pack_map(&pk, 4);
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, m->rec->id);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, from->conn->user);
    proto_pack_cstr(&pk, "where");
    srv_hub_pack_where(&pk, from);
    proto_pack_cstr(&pk, "state");
    proto_pack_cstr(&pk, state);
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        if (s != from) {
            srv_held_send(s->conn, b.data, b.len, 0);
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
