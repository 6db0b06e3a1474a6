/* srv_revert.c - change.revert: undoing one change with a new change (PROTOCOL.md
 * section 12).
 *
 * The values a change replaced are those of the record at the seq before it, and whether
 * anything touched the same things after it is in the log after it: both are long reads,
 * done off the loop (srv_read.h). Back on the loop the undoing change is made only if the
 * meeting is still at the seq the read went up to, so what was read is what the change is
 * checked against; otherwise the read runs again over the new state, and a meeting that
 * keeps moving is answered conflict.
 */
#include "srv_revert.h"

#include "srv_hub.h"
#include "srv_read.h"
#include "srv_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A read that the meeting moved past again and again gives up after this many. */
#define REVERT_ROUNDS 4
/* An import's revert names at most this many of its changes that it left. */
#define REVERT_SKIPPED_MAX 100

/* What a revert needs, copied on the loop; the pool thread sees only this. */
struct job {
    char meeting[PROTO_NAME_MAX + 1];
    char user[PROTO_NAME_MAX + 1];
    char cid[SRV_CID_MAX + 1]; /* "" when none */
    uint8_t pk[PROTO_KEY_BYTES];
    int64_t seq;      /* the change to undo */
    int64_t head;     /* the meeting's seq when the read was queued */
    int64_t db_until; /* the log in the database reaches this far; pending copies after it */
    struct srv_entry *pending;
    int rounds;
    /* what the read found */
    struct srv_entry *target; /* the entry at seq */
    struct srv_rec *before;   /* the record at seq - 1 */
    struct srv_entry *later;  /* entries after seq that may bear on the revert, in order */
    struct srv_entry *later_tail;
    int rc;
    /* An import's changes are reverted as a whole, newest first, one read and one undoing
     * change each: the import's first and last seq (0 when the target is not an import's),
     * and while chain is set, what the undo functions did instead of answering. */
    int64_t imp_first, imp_last;
    bool chain;
    enum { UNDO_ANSWERED, UNDO_MADE, UNDO_SKIPPED } outcome;
    int64_t last_made; /* the seq of the newest undoing change of the chain */
    size_t nmade, nskipped;
    int64_t skipped[REVERT_SKIPPED_MAX]; /* the first seqs of the import left as they are */
};

static void entries_free(struct srv_entry *e)
{
    while (e) {
        struct srv_entry *next = e->next;
        free(e->payload);
        free(e);
        e = next;
    }
}

/* Drops what a read found and the pending copies it was given. */
static void job_clear(struct job *j)
{
    entries_free(j->pending);
    entries_free(j->target);
    entries_free(j->later);
    srv_rec_free(j->before);
    j->pending = j->target = j->later = j->later_tail = NULL;
    j->before = NULL;
    j->rc = 0;
}

static void job_free(void *ud)
{
    struct job *j = ud;
    if (j) {
        job_clear(j);
        free(j);
    }
}

/* A copy of an entry that owns its strings and payload. NULL when out of memory. */
static struct srv_entry *entry_copy(const struct db_audit *a)
{
    struct srv_entry *e = calloc(1, sizeof(*e));
    uint8_t *payload = malloc(a->payload_len ? a->payload_len : 1);
    if (e == NULL || payload == NULL) {
        free(e);
        free(payload);
        return NULL;
    }
    memcpy(payload, a->payload, a->payload_len);
    e->a = *a;
    snprintf(e->meeting, sizeof(e->meeting), "%s", a->meeting ? a->meeting : "");
    snprintf(e->user, sizeof(e->user), "%s", a->user ? a->user : "");
    snprintf(e->cid, sizeof(e->cid), "%s", a->cid ? a->cid : "");
    snprintf(e->kind, sizeof(e->kind), "%s", a->kind);
    snprintf(e->type, sizeof(e->type), "%s", a->type);
    snprintf(e->id_str, sizeof(e->id_str), "%s", a->id_str ? a->id_str : "");
    e->payload = payload;
    e->a.payload = payload;
    e->a.meeting = e->meeting;
    e->a.user = e->user;
    e->a.cid = a->cid ? e->cid : NULL;
    e->a.kind = e->kind;
    e->a.type = e->type;
    e->a.id_str = a->id_str ? e->id_str : NULL;
    return e;
}

/* True when e and x name the same object (or member, or the meeting). */
static bool same_target(const struct db_audit *e, const struct db_audit *x)
{
    if (strcmp(e->type, x->type) != 0) {
        return false;
    }
    if (x->id_str) {
        return e->id_str && strcmp(e->id_str, x->id_str) == 0;
    }
    return e->id_str == NULL && e->id_int == x->id_int;
}

/* ---- the read, on the pool ---- */

static int take_target(void *ud, const struct db_audit *e)
{
    struct job *j = ud;
    if (e->seq == j->seq && j->target == NULL && (j->target = entry_copy(e)) == NULL) {
        return PROTO_ENOMEM;
    }
    return 0;
}

/* Extends the import's last seq over the consecutive entries that name its first. */
static int take_import(void *ud, const struct db_audit *e)
{
    struct job *j = ud;
    if (e->seq == j->imp_last + 1 && srv_hub_entry_import(e) == j->imp_first) {
        j->imp_last = e->seq;
    }
    return 0;
}

/* Keeps the later entries of the same object, and for an item's delete the updates of docs
 * and decisions (it cleared their item: whether someone set it since decides its restore). */
static int take_later(void *ud, const struct db_audit *e)
{
    struct job *j = ud;
    const struct db_audit *t = &j->target->a;
    bool item_delete = strcmp(t->kind, "delete") == 0 && strcmp(t->type, "item") == 0;
    bool keep =
        same_target(e, t) || (item_delete && strcmp(e->kind, "update") == 0 &&
                              (strcmp(e->type, "doc") == 0 || strcmp(e->type, "decision") == 0));
    if (!keep) {
        return 0;
    }
    struct srv_entry *c = entry_copy(e);
    if (c == NULL) {
        return PROTO_ENOMEM;
    }
    if (j->later_tail) {
        j->later_tail->next = c;
    } else {
        j->later = c;
    }
    j->later_tail = c;
    return 0;
}

static int revert_read(struct db *db, void *ud)
{
    struct job *j = ud;
    int rc = 0;
    if (j->seq <= j->db_until) {
        rc = db_audit_range(db, j->meeting, j->seq - 1, j->seq, take_target, j);
    }
    for (struct srv_entry *e = j->pending; e && rc == 0; e = e->next) {
        rc = take_target(j, &e->a);
    }
    if (rc != 0) {
        return rc;
    }
    if (j->target == NULL) {
        return PROTO_EINVAL; /* the log lost the entry */
    }
    if (!j->chain && (j->imp_first = srv_hub_entry_import(&j->target->a)) != 0) {
        /* The whole import is reverted, from its last change: find it, and read nothing
         * else now (each change gets its own read). */
        j->imp_last = j->imp_first;
        if (j->imp_first <= j->db_until) {
            rc = db_audit_range(db, j->meeting, j->imp_first, j->db_until, take_import, j);
        }
        for (struct srv_entry *e = j->pending; e && rc == 0; e = e->next) {
            rc = take_import(j, &e->a);
        }
        return rc;
    }
    if (strcmp(j->target->a.kind, "create") == 0) {
        return 0; /* deleting the object again needs neither the record before nor after */
    }
    struct srv_rebuild rb;
    int64_t upto = j->seq - 1 < j->db_until ? j->seq - 1 : j->db_until;
    rc = srv_audit_rebuild_begin(db, j->meeting, j->pk, upto, &rb);
    for (struct srv_entry *e = j->pending; e && rc == 0 && e->a.seq < j->seq; e = e->next) {
        rc = srv_audit_rebuild_add(&rb, &e->a);
    }
    if (rc == 0) {
        rc = srv_audit_rebuild_end(&rb);
    }
    if (rc == 0 && rb.seq != j->seq - 1) {
        rc = PROTO_EINVAL;
    }
    if (rc != 0) {
        srv_audit_rebuild_free(&rb);
        return rc;
    }
    j->before = rb.rec;
    rb.rec = NULL;
    srv_audit_rebuild_free(&rb);
    if (j->db_until > j->seq) {
        rc = db_audit_range(db, j->meeting, j->seq, j->db_until, take_later, j);
    }
    for (struct srv_entry *e = j->pending; e && rc == 0; e = e->next) {
        if (e->a.seq > j->seq) {
            rc = take_later(j, &e->a);
        }
    }
    return rc;
}

/* ---- on the loop ---- */

static void revert_done(struct srv_req *req, int rc, void *ud);

static const struct srv_read_ops revert_ops = {NULL, revert_read, revert_done, job_free};

/* Takes the meeting's state for a read: its seq, how far its log is durable, copies of the
 * entries that are not. Returns 0 or PROTO_ENOMEM. */
static int job_prepare(struct job *j, struct srv_meeting *m)
{
    job_clear(j);
    j->head = m->rec->seq;
    j->db_until = m->committed_seq;
    struct srv_entry **tail = &j->pending;
    for (struct srv_entry *e = m->pending; e; e = e->next) {
        if (e->a.seq > j->db_until) {
            if ((*tail = entry_copy(&e->a)) == NULL) {
                return PROTO_ENOMEM;
            }
            tail = &(*tail)->next;
        }
    }
    return 0;
}

/* A change that cannot be undone: answered conflict, or in an import's revert, left and
 * named. Returns true when it was left (the caller answers nothing). */
static bool skip(struct job *j)
{
    if (!j->chain) {
        return false;
    }
    if (j->nskipped < REVERT_SKIPPED_MAX) {
        j->skipped[j->nskipped] = j->seq;
    }
    j->nskipped++;
    j->outcome = UNDO_SKIPPED;
    return true;
}

static void conflict(struct srv_req *req, struct job *j, const char *msg)
{
    if (!skip(j)) {
        srv_reply_error(req, PROTO_CODE_CONFLICT, msg);
    }
}

/* The field named name was changed by a later entry e of the same object. */
static bool touches(const struct db_audit *e, const msgpack_object *pl, const char *name)
{
    if (strcmp(e->kind, "update") == 0) {
        return proto_mp_map_get(proto_mp_map_get(pl, "fields"), name) != NULL;
    }
    if (strcmp(e->kind, "text") == 0) {
        const msgpack_object *f = proto_mp_map_get(pl, "field");
        return f && f->type == MSGPACK_OBJECT_STR && f->via.str.size == strlen(name) &&
               memcmp(f->via.str.ptr, name, f->via.str.size) == 0;
    }
    return false;
}

/* Calls fn for every later entry of the target with its payload decoded; stops at the
 * first true and returns it. */
typedef bool (*later_fn)(const struct db_audit *e, const msgpack_object *pl, void *ud);

static bool any_later(const struct job *j, const struct db_audit *of, later_fn fn, void *ud)
{
    bool hit = false;
    for (const struct srv_entry *e = j->later; e && !hit; e = e->next) {
        if (of && !same_target(&e->a, of)) {
            continue;
        }
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *)e->a.payload, e->a.payload_len, &off) ==
            MSGPACK_UNPACK_SUCCESS) {
            hit = fn(&e->a, &u.data, ud);
        }
        msgpack_unpacked_destroy(&u);
    }
    return hit;
}

static bool is_delete(const struct db_audit *e, const msgpack_object *pl, void *ud)
{
    (void)pl;
    (void)ud;
    return strcmp(e->kind, "delete") == 0;
}

static bool is_any(const struct db_audit *e, const msgpack_object *pl, void *ud)
{
    (void)e;
    (void)pl;
    (void)ud;
    return true;
}

static bool touches_field(const struct db_audit *e, const msgpack_object *pl, void *ud)
{
    return touches(e, pl, ud);
}

static void pack_val(msgpack_packer *pk, const struct proto_field *f, const struct srv_val *v)
{
    if (!v->set) {
        msgpack_pack_nil(pk);
    } else if (f->kind == PROTO_F_INT || f->kind == PROTO_F_ITEMREF) {
        msgpack_pack_int64(pk, v->i);
    } else {
        proto_pack_str(pk, v->s ? v->s : "", v->s ? v->len : 0);
    }
}

static bool val_same(const struct srv_val *a, const struct srv_val *b)
{
    const char *as = a->set && a->s ? a->s : "", *bs = b->set && b->s ? b->s : "";
    size_t al = a->set && a->s ? a->len : 0, bl = b->set && b->s ? b->len : 0;
    return al == bl && memcmp(as, bs, al) == 0;
}

/* As val_same, but for ASCII letter case. */
static bool val_same_nocase(const struct srv_val *a, const struct srv_val *b)
{
    const char *as = a->set && a->s ? a->s : "", *bs = b->set && b->s ? b->s : "";
    size_t al = a->set && a->s ? a->len : 0, bl = b->set && b->s ? b->len : 0;
    if (al != bl) {
        return false;
    }
    for (size_t i = 0; i < al; i++) {
        char x = as[i] >= 'A' && as[i] <= 'Z' ? (char)(as[i] - 'A' + 'a') : as[i];
        char y = bs[i] >= 'A' && bs[i] <= 'Z' ? (char)(bs[i] - 'A' + 'a') : bs[i];
        if (x != y) {
            return false;
        }
    }
    return true;
}

/* The object of rec other than id whose unique key (section 10: an item's number, a doc's
 * ref and revision, an action's ref, the last two regardless of letter case) the values
 * vals would repeat; 0 when none. */
static int64_t unique_clash(const struct srv_rec *rec, enum proto_type t, int64_t id,
                            const struct srv_val *const *vals)
{
    if (t != PROTO_T_DOC && t != PROTO_T_ACTION && t != PROTO_T_ITEM) {
        return 0;
    }
    bool item = t == PROTO_T_ITEM;
    int ref = item ? proto_field_find(t, "number", 6) : proto_field_find(t, "ref", 3);
    int rev = t == PROTO_T_DOC ? proto_field_find(t, "revision", 8) : -1;
    if (!vals[ref]->set) {
        return 0;
    }
    const struct srv_objvec *vec = &rec->objs[t];
    for (size_t i = 0; i < vec->n; i++) {
        const struct srv_obj *o = vec->v[i];
        if (o->id == id || !o->f[ref].set ||
            !(item ? val_same(&o->f[ref], vals[ref]) : val_same_nocase(&o->f[ref], vals[ref]))) {
            continue;
        }
        if (rev >= 0 && !val_same_nocase(&o->f[rev], vals[rev])) {
            continue;
        }
        return o->id;
    }
    return 0;
}

static enum srv_role role_for(enum proto_type t, bool text)
{
    if (text) {
        return t == PROTO_T_MEETING ? SRV_ROLE_ASSOCIATE : SRV_ROLE_EDITOR;
    }
    return t == PROTO_T_MEETING ? SRV_ROLE_RAPPORTEUR : SRV_ROLE_ASSOCIATE;
}

/* Role, then the final lock (status_only: the undoing change sets exactly the meeting's
 * status, which a final meeting accepts). Answers and returns false. */
static bool may(struct srv_req *req, struct srv_meeting *m, const struct job *j, enum srv_role need,
                bool status_only)
{
    if (srv_hub_role(m, j->user) < need) {
        srv_reply_error(req, PROTO_CODE_FORBIDDEN,
                        "your role in this meeting does not allow the undoing change");
        return false;
    }
    return srv_req_unlocked(req, m, status_only);
}

/* Starts the undoing change; its payload map (n pairs besides "revert") follows in pk. */
static void change_begin(struct srv_change *ch, struct srv_req *req, struct srv_meeting *m,
                         const struct job *j, const char *kind, enum proto_type t, int64_t id,
                         msgpack_packer *pk, size_t n)
{
    *ch = (struct srv_change){.m = m,
                              .user = req->conn->user,
                              .cid = j->cid[0] && (!j->chain || j->seq == j->imp_first) ? j->cid
                                                                                        : NULL,
                              .kind = kind,
                              .type = t,
                              .id = id,
                              .id_str = t == PROTO_T_MEETING ? m->rec->id : NULL,
                              .author = req->conn};
    msgpack_packer_init(pk, &ch->payload, proto_buf_msgpack_write);
    msgpack_pack_map(pk, n + 1);
    proto_pack_cstr(pk, "revert");
    msgpack_pack_int64(pk, j->seq);
}

/* Commits and answers {seq, skipped?} (in an import's revert, answers only a failure).
 * Returns the seq, or a negative code (answered). */
static int64_t finish(struct srv_req *req, struct job *j, struct srv_change *ch,
                      const char *const *skipped, size_t nskipped)
{
    struct srv *srv = req->conn->srv;
    int64_t seq = srv_hub_commit(srv, ch);
    if (seq < 0) {
        if (seq == PROTO_EDB) {
            srv_reply_error(req, PROTO_CODE_UNAVAILABLE,
                            "the server cannot read this meeting's record from its database: "
                            "try again later");
        } else {
            srv_log(req->conn, SRV_LOG_ERROR, "revert refused: %s", proto_strerror((int)seq));
            srv_reply_error(req, PROTO_CODE_INTERNAL, "the undoing change could not be applied");
        }
        return seq;
    }
    if (j->chain) {
        j->outcome = UNDO_MADE;
        j->last_made = seq;
        j->nmade++;
        return seq;
    }
    req->hold = srv_hub_hold(srv, ch->m);
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, nskipped ? 2 : 1);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, seq);
    if (nskipped) {
        proto_pack_cstr(&pk, "skipped");
        msgpack_pack_array(&pk, nskipped);
        for (size_t i = 0; i < nskipped; i++) {
            proto_pack_cstr(&pk, skipped[i]);
        }
    }
    srv_reply_finish(req, &b);
    return seq;
}

/* create -> the object is deleted. */
static void undo_create(struct srv_req *req, struct srv_meeting *m, struct job *j,
                        enum proto_type t)
{
    int64_t id = j->target->a.id_int;
    if (!may(req, m, j, role_for(t, false), false)) {
        return;
    }
    if (srv_rec_find(m->rec, t, id) == NULL) {
        conflict(req, j, "the object is already gone");
        return;
    }
    struct srv_change ch;
    msgpack_packer pk;
    change_begin(&ch, req, m, j, "delete", t, id, &pk, t == PROTO_T_ITEM ? 1 : 0);
    if (t == PROTO_T_ITEM) {
        srv_apply_pack_unlinked(&pk, m->rec, id);
    }
    finish(req, j, &ch, NULL, 0);
}

/* The later entry e sets the item of the object it names. */
static bool sets_item(const struct db_audit *e, const msgpack_object *pl, void *ud)
{
    (void)ud;
    return touches(e, pl, "item");
}

/* The docs or decisions that an item's delete cleared (they named it at seq - 1) and that
 * still exist with no item, nobody having set it since: their ids go into out. */
static size_t relinks(const struct job *j, struct srv_meeting *m, enum proto_type t, int64_t item,
                      int64_t *out, size_t cap)
{
    int idx = proto_field_find(t, "item", 4);
    const struct srv_objvec *vec = &j->before->objs[t];
    size_t n = 0;
    for (size_t i = 0; i < vec->n && n < cap; i++) {
        const struct srv_obj *o = vec->v[i];
        if (!o->f[idx].set || o->f[idx].i != item) {
            continue;
        }
        const struct srv_obj *cur = srv_rec_find(m->rec, t, o->id);
        if (cur == NULL || cur->f[idx].set) {
            continue;
        }
        struct db_audit of = {.type = proto_type_info(t)->name, .id_int = o->id};
        if (!any_later(j, &of, sets_item, NULL)) {
            out[n++] = o->id;
        }
    }
    return n;
}

static void pack_ids(msgpack_packer *pk, const int64_t *v, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_int64(pk, v[i]);
    }
}

/* delete -> the object back with its id, its fields of seq - 1 and (an item) the links the
 * delete cleared that nobody set since. */
static void undo_delete(struct srv_req *req, struct srv_meeting *m, struct job *j,
                        enum proto_type t)
{
    int64_t id = j->target->a.id_int;
    if (!may(req, m, j, role_for(t, false), false)) {
        return;
    }
    const struct srv_obj *ob = srv_rec_find(j->before, t, id);
    if (ob == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the log does not hold the deleted object");
        return;
    }
    if (srv_rec_find(m->rec, t, id) != NULL) {
        conflict(req, j, "the object exists again");
        return;
    }
    const struct proto_typeinfo *ti = proto_type_info(t);
    const struct srv_val *vals[PROTO_MAX_FIELDS];
    struct srv_val none = {0};
    size_t nf = 0;
    for (size_t i = 0; i < ti->nfields; i++) {
        vals[i] = &ob->f[i];
        /* A reference to an item deleted since cannot come back. */
        if (ti->fields[i].kind == PROTO_F_ITEMREF && ob->f[i].set &&
            srv_rec_find(m->rec, PROTO_T_ITEM, ob->f[i].i) == NULL) {
            vals[i] = &none;
        }
        nf += ti->fields[i].kind != PROTO_F_COMPUTED;
    }
    int64_t clash = unique_clash(m->rec, t, id, vals);
    if (clash != 0 && !skip(j)) {
        srv_reply_error_data(req, PROTO_CODE_CONFLICT,
                             t == PROTO_T_DOC    ? "a document with this ref and revision exists"
                             : t == PROTO_T_ITEM ? "an item with this number exists"
                                                 : "an action with this ref exists",
                             "id", clash);
    }
    if (clash != 0) {
        return;
    }
    size_t ndocs = 0, ndec = 0;
    int64_t *docs = NULL, *decs = NULL;
    if (t == PROTO_T_ITEM) {
        size_t cd = j->before->objs[PROTO_T_DOC].n, cc = j->before->objs[PROTO_T_DECISION].n;
        docs = calloc(cd ? cd : 1, sizeof(*docs));
        decs = calloc(cc ? cc : 1, sizeof(*decs));
        if (docs == NULL || decs == NULL) {
            free(docs);
            free(decs);
            srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
            return;
        }
        ndocs = relinks(j, m, PROTO_T_DOC, id, docs, cd);
        ndec = relinks(j, m, PROTO_T_DECISION, id, decs, cc);
    }
    struct srv_change ch;
    msgpack_packer pk;
    change_begin(&ch, req, m, j, "create", t, id, &pk, t == PROTO_T_ITEM ? 2 : 1);
    proto_pack_cstr(&pk, "fields");
    msgpack_pack_map(&pk, nf);
    for (size_t i = 0; i < ti->nfields; i++) {
        if (ti->fields[i].kind != PROTO_F_COMPUTED) {
            proto_pack_cstr(&pk, ti->fields[i].name);
            pack_val(&pk, &ti->fields[i], vals[i]);
        }
    }
    if (t == PROTO_T_ITEM) {
        proto_pack_cstr(&pk, "relinked");
        msgpack_pack_map(&pk, 2);
        proto_pack_cstr(&pk, "doc");
        pack_ids(&pk, docs, ndocs);
        proto_pack_cstr(&pk, "decision");
        pack_ids(&pk, decs, ndec);
    }
    free(docs);
    free(decs);
    finish(req, j, &ch, NULL, 0);
}

/* update -> each field its value of seq - 1, unless changed since (skipped). */
static void undo_update(struct srv_req *req, struct srv_meeting *m, struct job *j,
                        enum proto_type t, const msgpack_object *pl)
{
    const struct db_audit *a = &j->target->a;
    int64_t id = t == PROTO_T_MEETING ? 0 : a->id_int;
    const struct proto_typeinfo *ti = proto_type_info(t);
    const msgpack_object *fields = proto_mp_map_get(pl, "fields");
    if (fields == NULL || fields->type != MSGPACK_OBJECT_MAP) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the change's entry has no fields");
        return;
    }
    bool restore[PROTO_MAX_FIELDS] = {0};
    const char *skipped[PROTO_MAX_FIELDS];
    size_t nrestore = 0, nskipped = 0;
    bool status_only = false;
    struct srv_obj *cur = srv_rec_find(m->rec, t, id);
    const struct srv_obj *ob = srv_rec_find(j->before, t, id);
    bool gone = cur == NULL || ob == NULL || any_later(j, a, is_delete, NULL);
    for (uint32_t i = 0; i < fields->via.map.size && !gone; i++) {
        const msgpack_object *k = &fields->via.map.ptr[i].key;
        int idx = k->type == MSGPACK_OBJECT_STR
                      ? proto_field_find(t, k->via.str.ptr, k->via.str.size)
                      : -1;
        if (idx < 0 || restore[idx]) {
            continue;
        }
        const struct proto_field *f = &ti->fields[idx];
        bool later = any_later(j, a, touches_field, (void *)f->name);
        /* A reference to an item deleted since cannot come back either. */
        bool dangling = f->kind == PROTO_F_ITEMREF && ob->f[idx].set &&
                        srv_rec_find(m->rec, PROTO_T_ITEM, ob->f[idx].i) == NULL;
        if (later || dangling) {
            skipped[nskipped++] = f->name;
        } else {
            restore[idx] = true;
            nrestore++;
            status_only = t == PROTO_T_MEETING && strcmp(f->name, "status") == 0;
        }
    }
    if (!may(req, m, j, role_for(t, false), status_only && nrestore == 1)) {
        return;
    }
    if (gone) {
        conflict(req, j, "the object was deleted since");
        return;
    }
    if (nrestore == 0) {
        conflict(req, j, "every field of that change was changed since");
        return;
    }
    const struct srv_val *vals[PROTO_MAX_FIELDS];
    for (size_t i = 0; i < ti->nfields; i++) {
        vals[i] = restore[i] ? &ob->f[i] : &cur->f[i];
    }
    int64_t clash = unique_clash(m->rec, t, id, vals);
    if (clash != 0 && !skip(j)) {
        srv_reply_error_data(req, PROTO_CODE_CONFLICT,
                             t == PROTO_T_DOC    ? "a document with this ref and revision exists"
                             : t == PROTO_T_ITEM ? "an item with this number exists"
                                                 : "an action with this ref exists",
                             "id", clash);
    }
    if (clash != 0) {
        return;
    }
    /* A text put back enters its field's history as obj.update's replacement does:
     * [{"d": len(now)}, before]. */
    struct proto_op ops[PROTO_MAX_FIELDS];
    int op_field[PROTO_MAX_FIELDS];
    size_t nops = 0;
    for (size_t i = 0; i < ti->nfields; i++) {
        if (!restore[i] || ti->fields[i].kind != PROTO_F_TEXT) {
            continue;
        }
        struct proto_op *op = &ops[nops];
        proto_op_init(op);
        const struct srv_val *c = &cur->f[i], *o = &ob->f[i];
        proto_op_delete(op, c->set && c->s ? proto_utf8_count(c->s, c->len) : 0);
        if (o->set && o->s && o->len > 0) {
            proto_op_insert(op, o->s, o->len);
        }
        op_field[nops++] = (int)i;
    }
    struct srv_change ch;
    msgpack_packer pk;
    change_begin(&ch, req, m, j, "update", t, id, &pk, nops ? 2 : 1);
    proto_pack_cstr(&pk, "fields");
    msgpack_pack_map(&pk, nrestore);
    for (size_t i = 0; i < ti->nfields; i++) {
        if (restore[i]) {
            proto_pack_cstr(&pk, ti->fields[i].name);
            if (ti->fields[i].kind == PROTO_F_TEXT && !ob->f[i].set) {
                proto_pack_cstr(&pk, ""); /* an unset text reads "" */
            } else {
                pack_val(&pk, &ti->fields[i], &ob->f[i]);
            }
        }
    }
    if (nops) {
        proto_pack_cstr(&pk, "ops");
        msgpack_pack_map(&pk, nops);
        for (size_t i = 0; i < nops; i++) {
            proto_pack_cstr(&pk, ti->fields[op_field[i]].name);
            proto_op_encode(&ops[i], &pk);
        }
    }
    int64_t seq = finish(req, j, &ch, skipped, nskipped);
    for (size_t i = 0; i < nops; i++) {
        if (seq > 0) {
            srv_window_add(&m->win, seq, t, id, op_field[i], &ops[i]);
        }
        proto_op_free(&ops[i]);
    }
}

/* Moves *pos over n code points of s[0..len); false past the end. */
static bool cp_skip(const char *s, size_t len, size_t *pos, size_t n)
{
    size_t p = *pos;
    for (size_t i = 0; i < n; i++) {
        if (p >= len) {
            return false;
        }
        p++;
        while (p < len && ((unsigned char)s[p] & 0xC0) == 0x80) {
            p++;
        }
    }
    *pos = p;
    return true;
}

/* The op that undoes op applied to text: its skips kept, its inserts deleted, its deletes
 * inserted back with the code points they removed. Returns 0 or PROTO_EINVAL. */
static int op_invert(const struct proto_op *op, const char *text, size_t len, struct proto_op *out)
{
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < op->len && rc == 0; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        size_t start = pos;
        if (c->kind != PROTO_OP_INSERT && !cp_skip(text, len, &pos, c->n)) {
            return PROTO_EINVAL;
        }
        if (c->kind == PROTO_OP_SKIP) {
            rc = proto_op_skip(out, c->n);
        } else if (c->kind == PROTO_OP_INSERT) {
            rc = proto_op_delete(out, c->n);
        } else {
            rc = proto_op_insert(out, text + start, pos - start);
        }
    }
    return rc;
}

/* The later ops of one text field, gathered in order. */
struct later_ops {
    const char *field;
    struct proto_op *v;
    size_t n, cap;
    int rc;
};

static bool gather_op(const struct db_audit *e, const msgpack_object *pl, void *ud)
{
    struct later_ops *l = ud;
    const msgpack_object *op = NULL;
    if (strcmp(e->kind, "text") == 0 && touches(e, pl, l->field)) {
        op = proto_mp_map_get(pl, "op");
    } else if (strcmp(e->kind, "update") == 0) {
        op = proto_mp_map_get(proto_mp_map_get(pl, "ops"), l->field);
    }
    if (op == NULL || (op->type == MSGPACK_OBJECT_ARRAY && op->via.array.size == 0)) {
        return false;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct proto_op *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->rc = PROTO_ENOMEM;
            return true;
        }
        l->v = v;
        l->cap = cap;
    }
    proto_op_init(&l->v[l->n]);
    if ((l->rc = proto_op_decode(op, &l->v[l->n])) != 0) {
        return true;
    }
    l->n++;
    return false;
}

/* text -> the inverse op, transformed over the field's later ops, applied. */
static void undo_text(struct srv_req *req, struct srv_meeting *m, struct job *j, enum proto_type t,
                      const msgpack_object *pl)
{
    struct srv *srv = req->conn->srv;
    const struct db_audit *a = &j->target->a;
    int64_t id = t == PROTO_T_MEETING ? 0 : a->id_int;
    if (!may(req, m, j, role_for(t, true), false)) {
        return;
    }
    const msgpack_object *fo = proto_mp_map_get(pl, "field");
    const msgpack_object *opo = proto_mp_map_get(pl, "op");
    int idx = fo && fo->type == MSGPACK_OBJECT_STR
                  ? proto_field_find(t, fo->via.str.ptr, fo->via.str.size)
                  : -1;
    struct srv_obj *cur = srv_rec_find(m->rec, t, id);
    const struct srv_obj *ob = srv_rec_find(j->before, t, id);
    if (cur == NULL || any_later(j, a, is_delete, NULL)) {
        conflict(req, j, "the object was deleted since");
        return;
    }
    if (idx < 0 || opo == NULL || ob == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the change's entry does not fit the log");
        return;
    }
    if (opo->type == MSGPACK_OBJECT_ARRAY && opo->via.array.size == 0) {
        conflict(req, j, "that edit changed nothing: there is nothing to undo");
        return;
    }
    const char *fname = proto_type_info(t)->fields[idx].name;
    struct proto_op op, inv;
    proto_op_init(&op);
    proto_op_init(&inv);
    struct later_ops l = {.field = fname};
    const struct srv_val *v = &ob->f[idx];
    int rc = proto_op_decode(opo, &op);
    if (rc == 0) {
        rc = op_invert(&op, v->set && v->s ? v->s : "", v->set && v->s ? v->len : 0, &inv);
    }
    if (rc == 0) {
        any_later(j, a, gather_op, &l);
        rc = l.rc;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        rc = proto_op_transform(&inv, &l.v[i], PROTO_OP_LEFT, &inv);
    }
    if (rc == 0) {
        rc = srv_apply_text_fits(&cur->f[idx], &inv, srv->cfg.max_text);
    }
    for (size_t i = 0; i < l.n; i++) {
        proto_op_free(&l.v[i]);
    }
    free(l.v);
    proto_op_free(&op);
    if (rc == PROTO_ETOOBIG) {
        srv_reply_error(req, PROTO_CODE_TOO_LARGE, "the text would pass its size limit");
    } else if (rc != 0) {
        srv_log(req->conn, SRV_LOG_ERROR, "revert of a text edit: %s", proto_strerror(rc));
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the edit's inverse does not fit the text");
    } else {
        struct srv_change ch;
        msgpack_packer pk;
        change_begin(&ch, req, m, j, "text", t, id, &pk, 2);
        proto_pack_cstr(&pk, "field");
        proto_pack_cstr(&pk, fname);
        proto_pack_cstr(&pk, "op");
        proto_op_encode(&inv, &pk);
        int64_t seq = finish(req, j, &ch, NULL, 0);
        if (seq > 0) {
            srv_window_add(&m->win, seq, t, id, idx, &inv);
        }
    }
    proto_op_free(&inv);
}

/* Ends the subscriptions in m of every connection of user, once an undo has left user no
 * role in m (as member.remove does): a former member gets no more of the meeting live. The
 * connections are held while this runs, since ending a presence sends to the others and
 * may close a slow one, which changes the list being walked. */
static void end_subscriptions(struct srv_meeting *m, const char *user)
{
    size_t n = 0;
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        n += strcmp(s->conn->user, user) == 0;
    }
    struct srv_conn **v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && v == NULL) {
        for (struct srv_sub *s = m->subs; s; s = s->next) {
            if (strcmp(s->conn->user, user) == 0) {
                srv_conn_close(s->conn, "removed from a meeting");
            }
        }
        return;
    }
    size_t k = 0;
    for (struct srv_sub *s = m->subs; s && k < n; s = s->next) {
        if (strcmp(s->conn->user, user) == 0) {
            srv_conn_hold(v[k] = s->conn);
            k++;
        }
    }
    for (size_t i = 0; i < k; i++) {
        srv_hub_unsubscribe(m, v[i]);
        srv_conn_done(v[i]);
    }
    free(v);
}

/* member -> the role before that change, if nobody changed it since. */
static void undo_member(struct srv_req *req, struct srv_meeting *m, struct job *j)
{
    const struct db_audit *a = &j->target->a;
    if (!may(req, m, j, SRV_ROLE_RAPPORTEUR, false)) {
        return;
    }
    if (a->id_str == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the change's entry names no member");
        return;
    }
    const struct srv_member *was = srv_rec_member(j->before, a->id_str);
    const struct srv_member *now = srv_rec_member(m->rec, a->id_str);
    if (any_later(j, a, is_any, NULL)) {
        conflict(req, j, "the member's role changed since");
        return;
    }
    bool demotes = now && strcmp(now->role, "rapporteur") == 0 &&
                   (was == NULL || strcmp(was->role, "rapporteur") != 0);
    size_t nrap = 0;
    for (size_t i = 0; i < m->rec->nmembers; i++) {
        nrap += strcmp(m->rec->members[i].role, "rapporteur") == 0;
    }
    if (demotes && nrap <= 1) {
        conflict(req, j, "a meeting needs a rapporteur: make someone else rapporteur first");
        return;
    }
    struct srv_change ch;
    msgpack_packer pk;
    change_begin(&ch, req, m, j, "member", PROTO_T_COUNT, 0, &pk, 1);
    ch.id_str = a->id_str;
    proto_pack_cstr(&pk, "role");
    was ? proto_pack_cstr(&pk, was->role) : msgpack_pack_nil(&pk);
    char user[PROTO_NAME_MAX + 1];
    snprintf(user, sizeof(user), "%s", a->id_str);
    if (finish(req, j, &ch, NULL, 0) > 0 && srv_hub_role(m, user) == SRV_ROLE_NONE) {
        end_subscriptions(m, user);
    }
}

/* The undoing change of what the read found, against the record as it is. */
static void undo(struct srv_req *req, struct srv_meeting *m, struct job *j)
{
    const struct db_audit *a = &j->target->a;
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)a->payload, a->payload_len, &off) !=
        MSGPACK_UNPACK_SUCCESS) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the change's entry does not read");
        msgpack_unpacked_destroy(&u);
        return;
    }
    enum proto_type t = proto_type_find(a->type, strlen(a->type));
    if (strcmp(a->kind, "member") == 0 && strcmp(a->type, "member") == 0) {
        undo_member(req, m, j);
    } else if (t == PROTO_T_COUNT || (t == PROTO_T_MEETING && strcmp(a->kind, "update") != 0 &&
                                      strcmp(a->kind, "text") != 0)) {
        srv_reply_bad(req, "seq", "that change cannot be reverted");
    } else if (strcmp(a->kind, "create") == 0) {
        undo_create(req, m, j, t);
    } else if (strcmp(a->kind, "delete") == 0) {
        undo_delete(req, m, j, t);
    } else if (strcmp(a->kind, "update") == 0) {
        undo_update(req, m, j, t, &u.data);
    } else if (strcmp(a->kind, "text") == 0) {
        undo_text(req, m, j, t, &u.data);
    } else {
        srv_reply_bad(req, "seq", "that change cannot be reverted");
    }
    msgpack_unpacked_destroy(&u);
}

/* Queues the read of j for req; answers when it cannot. Takes j. */
static void submit(struct srv_req *req, struct srv_meeting *m, struct job *j)
{
    if (job_prepare(j, m) != 0) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        job_free(j);
        return;
    }
    srv_read_submit(req, &revert_ops, j); /* answers (and frees j) when refused */
}

/* Goes on with a copy of j reading the change at seq (j is freed after its done returns). */
static void resubmit(struct srv_req *req, struct srv_meeting *m, struct job *j, int64_t seq)
{
    struct job *n = malloc(sizeof(*n));
    if (n == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    *n = *j;
    if (n->seq != seq) {
        n->seq = seq;
        n->rounds = 0;
    }
    j->pending = j->target = j->later = j->later_tail = NULL;
    j->before = NULL;
    submit(req, m, n);
}

/* The answer to an import's revert, once its first change was undone or left:
 * {seq, import: {first, last, reverted, skipped}}. */
static void answer_import(struct srv_req *req, struct srv_meeting *m, const struct job *j)
{
    if (j->nmade == 0) {
        srv_reply_error(req, PROTO_CODE_CONFLICT,
                        "every change of that import was undone or overtaken already");
        return;
    }
    req->hold = srv_hub_hold(req->conn->srv, m);
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, j->last_made);
    proto_pack_cstr(&pk, "import");
    msgpack_pack_map(&pk, 4);
    proto_pack_cstr(&pk, "first");
    msgpack_pack_int64(&pk, j->imp_first);
    proto_pack_cstr(&pk, "last");
    msgpack_pack_int64(&pk, j->imp_last);
    proto_pack_cstr(&pk, "reverted");
    msgpack_pack_uint64(&pk, j->nmade);
    proto_pack_cstr(&pk, "skipped");
    size_t n = j->nskipped < REVERT_SKIPPED_MAX ? j->nskipped : REVERT_SKIPPED_MAX;
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_int64(&pk, j->skipped[i]);
    }
    srv_reply_finish(req, &b);
}

static void revert_done(struct srv_req *req, int rc, void *ud)
{
    struct job *j = ud;
    if (rc != 0) {
        if (rc != PROTO_EDB && rc != PROTO_EBUSY) {
            srv_log(req->conn, SRV_LOG_ERROR, "revert: reading the log: %s", proto_strerror(rc));
        }
        srv_reply_error(req, rc == PROTO_EINVAL ? PROTO_CODE_INTERNAL : PROTO_CODE_UNAVAILABLE,
                        rc == PROTO_EINVAL ? "cannot rebuild the record before that change"
                                           : "cannot read the meeting's log");
        return;
    }
    struct srv *srv = req->conn->srv;
    struct srv_meeting *m = srv_hub_find(srv, j->meeting, strlen(j->meeting));
    if (m == NULL || srv_hub_role(m, j->user) == SRV_ROLE_NONE) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND,
                        "no such meeting, or you are not a member of it: ask its rapporteur");
        return;
    }
    if (srv_cid_repeat(req, m, j->cid)) {
        return; /* the same cid came through another connection meanwhile */
    }
    if (m->rec->seq != j->head) {
        /* Changes came in meanwhile: read again over them. The job is freed after this
         * returns, so the next read goes on in a copy. */
        srv_log(req->conn, SRV_LOG_DEBUG,
                "revert of seq %lld: the meeting moved to %lld "
                "during the read: reading again",
                (long long)j->seq, (long long)m->rec->seq);
        if (++j->rounds >= REVERT_ROUNDS) {
            srv_reply_error(req, PROTO_CODE_CONFLICT, "the meeting changes too fast: retry");
            return;
        }
        resubmit(req, m, j, j->seq);
        return;
    }
    if (j->imp_first != 0 && !j->chain) {
        /* A change of an import: the whole import goes, which needs the rapporteur. */
        if (srv_hub_role(m, j->user) < SRV_ROLE_RAPPORTEUR) {
            srv_reply_error(req, PROTO_CODE_FORBIDDEN,
                            "that change is part of an import: only the rapporteur can revert "
                            "an import");
            return;
        }
        if (!srv_req_unlocked(req, m, false)) {
            return;
        }
        j->chain = true;
        resubmit(req, m, j, j->imp_last);
        return;
    }
    j->outcome = UNDO_ANSWERED;
    undo(req, m, j);
    if (!j->chain || j->outcome == UNDO_ANSWERED) {
        return;
    }
    if (j->seq > j->imp_first) {
        resubmit(req, m, j, j->seq - 1);
        return;
    }
    answer_import(req, m, j);
}

void srv_change_revert(struct srv_req *req)
{
    /* Parameters, membership and cid were checked by the decoder (srv_req.h); the role
     * depends on the undoing change, known once the change is read. */
    struct srv_meeting *m = req->m;
    int64_t seq = req->p.at.i;
    if (seq < 2 || seq > m->rec->seq) {
        char why[96];
        snprintf(why, sizeof(why), "must be from 2 to the meeting's seq (%lld)",
                 (long long)m->rec->seq);
        srv_reply_bad(req, "seq", why);
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    snprintf(j->meeting, sizeof(j->meeting), "%s", m->rec->id);
    snprintf(j->user, sizeof(j->user), "%s", req->conn->user);
    snprintf(j->cid, sizeof(j->cid), "%s", req->cid);
    memcpy(j->pk, req->conn->srv->host.pk, sizeof(j->pk));
    j->seq = seq;
    submit(req, m, j);
}
