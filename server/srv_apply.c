/* srv_apply.c - applying audit entries to a record, live and in replays. */
#include "srv_apply.h"

#include <stdlib.h>
#include <string.h>

/* ---- applying entries to a record ---- */

static int set_field(struct srv_rec *rec, struct srv_obj *o, int idx, const msgpack_object *v)
{
    const struct proto_field *f = &proto_type_info(o->type)->fields[idx];
    struct srv_val *val = &o->f[idx];
    (void)rec;
    if (v->type == MSGPACK_OBJECT_NIL) {
        srv_val_unset(val);
        return 0;
    }
    if (f->kind == PROTO_F_INT || f->kind == PROTO_F_ITEMREF) {
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            srv_val_set_int(val, (int64_t)v->via.u64);
        } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            srv_val_set_int(val, v->via.i64);
        } else {
            return PROTO_EINVAL;
        }
        return 0;
    }
    if (v->type != MSGPACK_OBJECT_STR) {
        return PROTO_EINVAL;
    }
    return srv_val_set_str(val, v->via.str.ptr, v->via.str.size);
}

/* True when v may go into field idx of type t (nil, an integer or a string as it says). */
static bool value_fits(enum proto_type t, int idx, const msgpack_object *v)
{
    enum proto_fkind k = proto_type_info(t)->fields[idx].kind;
    if (v->type == MSGPACK_OBJECT_NIL) {
        return true;
    }
    if (k == PROTO_F_INT || k == PROTO_F_ITEMREF) {
        return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
               v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    }
    return v->type == MSGPACK_OBJECT_STR && k != PROTO_F_COMPUTED;
}

static int apply_fields(struct srv_rec *rec, struct srv_obj *o, const msgpack_object *fields)
{
    if (fields == NULL || fields->type != MSGPACK_OBJECT_MAP) {
        return 0;
    }
    /* Check every pair first: an entry applies whole or not at all. */
    for (uint32_t i = 0; i < fields->via.map.size; i++) {
        const msgpack_object_kv *kv = &fields->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            return PROTO_EINVAL;
        }
        int idx = proto_field_find(o->type, kv->key.via.str.ptr, kv->key.via.str.size);
        if (idx < 0 || !value_fits(o->type, idx, &kv->val)) {
            return PROTO_EINVAL;
        }
    }
    for (uint32_t i = 0; i < fields->via.map.size; i++) {
        const msgpack_object_kv *kv = &fields->via.map.ptr[i];
        int idx = proto_field_find(o->type, kv->key.via.str.ptr, kv->key.via.str.size);
        int rc = set_field(rec, o, idx, &kv->val);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Deleting an item leaves the objects that pointed at it pointing nowhere, as the
 * database's ON DELETE SET NULL does. */
static void clear_item_refs(struct srv_rec *rec, int64_t item)
{
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        const struct proto_typeinfo *ti = proto_type_info((enum proto_type)t);
        for (size_t f = 0; f < ti->nfields; f++) {
            if (ti->fields[f].kind != PROTO_F_ITEMREF) {
                continue;
            }
            for (size_t i = 0; i < rec->objs[t].n; i++) {
                struct srv_val *v = &rec->objs[t].v[i]->f[f];
                if (v->set && v->i == item) {
                    srv_val_unset(v);
                }
            }
        }
    }
}

/* An item brought back by change.revert names in "relinked": {"doc": [ids], "decision":
 * [ids]} the docs and decisions whose item its delete had cleared and that get it back in
 * the same change (they take its seq, so that the next rows refresh writes them). */
static const enum proto_type relink_types[] = {PROTO_T_DOC, PROTO_T_DECISION};

/* Checks every id first: an entry applies whole or not at all. */
static int relink_check(struct srv_rec *rec, const msgpack_object *relinked)
{
    if (relinked->type != MSGPACK_OBJECT_MAP) {
        return PROTO_EINVAL;
    }
    for (size_t k = 0; k < sizeof(relink_types) / sizeof(relink_types[0]); k++) {
        enum proto_type t = relink_types[k];
        const msgpack_object *ids = proto_mp_map_get(relinked, proto_type_info(t)->name);
        if (ids == NULL) {
            continue;
        }
        if (ids->type != MSGPACK_OBJECT_ARRAY) {
            return PROTO_EINVAL;
        }
        for (uint32_t i = 0; i < ids->via.array.size; i++) {
            const msgpack_object *id = &ids->via.array.ptr[i];
            if (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                srv_rec_find(rec, t, (int64_t)id->via.u64) == NULL) {
                return PROTO_EINVAL;
            }
        }
    }
    return 0;
}

static void relink(struct srv_rec *rec, const msgpack_object *relinked, int64_t item, int64_t seq)
{
    for (size_t k = 0; k < sizeof(relink_types) / sizeof(relink_types[0]); k++) {
        enum proto_type t = relink_types[k];
        const msgpack_object *ids = proto_mp_map_get(relinked, proto_type_info(t)->name);
        int idx = proto_field_find(t, "item", 4);
        for (uint32_t i = 0; ids && i < ids->via.array.size; i++) {
            struct srv_obj *o = srv_rec_find(rec, t, (int64_t)ids->via.array.ptr[i].via.u64);
            srv_val_set_int(&o->f[idx], item);
            o->seq = seq;
        }
    }
}

void srv_apply_pack_unlinked(msgpack_packer *pk, const struct srv_rec *rec, int64_t item)
{
    proto_pack_cstr(pk, "unlinked");
    msgpack_pack_map(pk, sizeof(relink_types) / sizeof(relink_types[0]));
    for (size_t k = 0; k < sizeof(relink_types) / sizeof(relink_types[0]); k++) {
        enum proto_type t = relink_types[k];
        const struct srv_objvec *vec = &rec->objs[t];
        int idx = proto_field_find(t, "item", 4);
        size_t n = 0;
        for (size_t i = 0; i < vec->n; i++) {
            n += vec->v[i]->f[idx].set && vec->v[i]->f[idx].i == item;
        }
        proto_pack_cstr(pk, proto_type_info(t)->name);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < vec->n; i++) {
            if (vec->v[i]->f[idx].set && vec->v[i]->f[idx].i == item) {
                msgpack_pack_int64(pk, vec->v[i]->id);
            }
        }
    }
}

/* ---- text: one way to apply an op to a field, live and in replays ---- */

/* Ops with at most this many inserts and deletes are applied in the field's own buffer
 * (one memmove of the tail each); longer ones build the result once and swap it in, so an
 * op of many pieces never costs a move of the whole text per piece. */
#define TEXT_INPLACE_EDITS 4

struct text_edit {
    size_t at;  /* byte offset in the text before the op */
    size_t del; /* bytes deleted from at */
    const char *ins;
    size_t ins_len;
};

/* Moves *pos over n code points of the valid UTF-8 s[0..len); false past the end. */
static bool utf8_skip(const char *s, size_t len, size_t *pos, size_t n)
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

/* Walks op over text: the edits in byte offsets (the first cap of them in e, their count
 * in *ne) and the length of the result. Returns 0 or PROTO_EINVAL when op does not fit. */
static int text_plan(const char *text, size_t len, const struct proto_op *op, struct text_edit *e,
                     size_t cap, size_t *ne, size_t *new_len)
{
    size_t pos = 0, out = len, n = 0;
    for (size_t i = 0; i < op->len; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        size_t start = pos;
        if (c->kind != PROTO_OP_INSERT && !utf8_skip(text, len, &pos, c->n)) {
            return PROTO_EINVAL;
        }
        if (c->kind == PROTO_OP_SKIP) {
            continue;
        }
        if (n < cap) {
            e[n] = (struct text_edit){.at = start};
            if (c->kind == PROTO_OP_INSERT) {
                e[n].ins = c->s;
                e[n].ins_len = c->slen;
            } else {
                e[n].del = pos - start;
            }
        }
        n++;
        if (c->kind == PROTO_OP_INSERT) {
            if (c->slen > SIZE_MAX - 1 - out) {
                return PROTO_EINVAL;
            }
            out += c->slen;
        } else {
            out -= pos - start;
        }
    }
    if (!utf8_skip(text, len, &pos, op->tail)) {
        return PROTO_EINVAL;
    }
    *ne = n;
    *new_len = out;
    return 0;
}

int srv_apply_text_fits(const struct srv_val *v, const struct proto_op *op, size_t max)
{
    size_t ne = 0, new_len = 0;
    int rc = text_plan(v->set && v->s ? v->s : "", v->set && v->s ? v->len : 0, op, NULL, 0, &ne,
                       &new_len);
    if (rc == 0 && max > 0 && new_len > max) {
        rc = PROTO_ETOOBIG;
    }
    return rc;
}

int srv_apply_text(struct srv_val *v, const struct proto_op *op)
{
    const char *text = v->set && v->s ? v->s : "";
    size_t len = v->set && v->s ? v->len : 0;
    struct text_edit e[TEXT_INPLACE_EDITS];
    size_t ne = 0, new_len = 0;
    int rc = text_plan(text, len, op, e, TEXT_INPLACE_EDITS, &ne, &new_len);
    if (rc != 0) {
        return rc;
    }
    if (ne > TEXT_INPLACE_EDITS) {
        char *out = NULL;
        size_t out_len = 0;
        rc = proto_op_apply(text, len, op, 0, &out, &out_len);
        if (rc != 0) {
            return rc;
        }
        free(v->s);
        v->s = out;
        v->len = out_len;
        v->set = true;
        return 0;
    }
    /* Edits run from the last to the first, so the text may pass new_len on the way: room
     * for every insert before any delete. */
    size_t need = len;
    for (size_t i = 0; i < ne; i++) {
        need += e[i].ins_len;
    }
    char *b = v->s; /* NULL when unset; an unset field reads "" (len 0 above) */
    if (b == NULL || need > len) {
        /* A buffer is never shrunk, and realloc of a large block remaps pages rather than
         * copying bytes, so an edit does not cost a copy of the whole text. */
        char *nb = realloc(b, need + 1);
        if (nb == NULL) {
            return PROTO_ENOMEM;
        }
        b = nb;
    }
    /* From the last edit to the first: the offsets of the earlier ones stay valid. */
    size_t cur = len;
    for (size_t i = ne; i-- > 0;) {
        if (e[i].del) {
            memmove(b + e[i].at, b + e[i].at + e[i].del, cur - e[i].at - e[i].del);
            cur -= e[i].del;
        } else {
            memmove(b + e[i].at + e[i].ins_len, b + e[i].at, cur - e[i].at);
            memcpy(b + e[i].at, e[i].ins, e[i].ins_len);
            cur += e[i].ins_len;
        }
    }
    b[new_len] = '\0';
    v->s = b;
    v->len = new_len;
    v->set = true;
    return 0;
}

/* A text entry: {"field", "op"} applied to the field's current value. */
static int apply_text(struct srv_rec *rec, enum proto_type t, const struct db_audit *e,
                      const msgpack_object *payload)
{
    struct srv_obj *o = srv_rec_find(rec, t, t == PROTO_T_MEETING ? 0 : e->id_int);
    const msgpack_object *f = proto_mp_map_get(payload, "field");
    const msgpack_object *opo = proto_mp_map_get(payload, "op");
    if (o == NULL || f == NULL || f->type != MSGPACK_OBJECT_STR || opo == NULL) {
        return PROTO_EINVAL;
    }
    int idx = proto_field_find(t, f->via.str.ptr, f->via.str.size);
    if (idx < 0 || proto_type_info(t)->fields[idx].kind != PROTO_F_TEXT) {
        return PROTO_EINVAL;
    }
    if (opo->type == MSGPACK_OBJECT_ARRAY && opo->via.array.size == 0) {
        o->seq = e->seq;
        return 0; /* an edit transformed into nothing still takes its seq */
    }
    struct proto_op op;
    proto_op_init(&op);
    int rc = proto_op_decode(opo, &op);
    if (rc == 0) {
        rc = srv_apply_text(&o->f[idx], &op);
    }
    if (rc == 0) {
        o->seq = e->seq;
    }
    proto_op_free(&op);
    return rc;
}

int srv_apply_entry(struct srv_rec *rec, const struct db_audit *e)
{
    msgpack_unpacked u;
    size_t off = 0;
    int rc = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) !=
        MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&u);
        return PROTO_EINVAL;
    }
    const msgpack_object *payload = &u.data;
    const msgpack_object *fields = proto_mp_map_get(payload, "fields");
    if (strcmp(e->type, "member") == 0) {
        const char *role = NULL;
        size_t rlen = 0;
        char rbuf[16] = "";
        if (proto_param_str(payload, "role", &role, &rlen) == 0 && rlen < sizeof(rbuf)) {
            memcpy(rbuf, role, rlen);
        }
        rc = srv_rec_set_member(rec, e->id_str, rbuf[0] ? rbuf : NULL, e->seq);
        goto done;
    }
    if (strcmp(e->type, "share") == 0) {
        goto done; /* a share link (PROTOCOL.md section 14) is no part of the record */
    }
    enum proto_type t = proto_type_find(e->type, strlen(e->type));
    if (t == PROTO_T_COUNT) {
        rc = PROTO_EINVAL;
        goto done;
    }
    if (strcmp(e->kind, "text") == 0) {
        rc = apply_text(rec, t, e, payload);
        goto done;
    }
    if (t == PROTO_T_MEETING) {
        rc = apply_fields(rec, &rec->meeting, fields);
        if (rc == 0) {
            rec->meeting.seq = e->seq;
        }
        if (rc == 0 && strcmp(e->kind, "create") == 0) {
            char user[PROTO_NAME_MAX + 1];
            if (proto_param_strcpy(payload, "rapporteur", user, sizeof(user)) == 0) {
                rc = srv_rec_set_member(rec, user, "rapporteur", e->seq);
            }
        }
        goto done;
    }
    if (strcmp(e->kind, "create") == 0) {
        struct srv_obj *o = srv_obj_new(t);
        if (o == NULL) {
            rc = PROTO_ENOMEM;
            goto done;
        }
        o->id = e->id_int;
        o->seq = e->seq;
        o->created = e->seq;
        rc = apply_fields(rec, o, fields);
        const msgpack_object *relinked = proto_mp_map_get(payload, "relinked");
        if (rc == 0 && relinked) {
            rc = relink_check(rec, relinked);
        }
        if (rc == 0) {
            rc = srv_rec_add(rec, o);
        }
        if (rc != 0) {
            srv_obj_free(o);
        } else if (relinked) {
            relink(rec, relinked, o->id, e->seq);
        }
        goto done;
    }
    struct srv_obj *o = srv_rec_find(rec, t, e->id_int);
    if (o == NULL) {
        rc = PROTO_EINVAL;
        goto done;
    }
    if (strcmp(e->kind, "delete") == 0) {
        rc = srv_rec_remove(rec, t, e->id_int);
        if (rc == 0 && t == PROTO_T_ITEM) {
            clear_item_refs(rec, e->id_int);
        }
    } else if (strcmp(e->kind, "update") == 0) {
        rc = apply_fields(rec, o, fields);
        if (rc == 0) {
            o->seq = e->seq;
        }
    } else {
        rc = PROTO_EINVAL;
    }
done:
    if (rc == 0) {
        rec->seq = e->seq;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- replays ----
 *
 * The text entries of a run are buffered per (object, field) and composed, so that the
 * field's text is walked once for the whole run rather than once per entry. The first op
 * of a field's run is applied at once, as srv_apply_entry would (a field edited once
 * between two other entries costs nothing more than one by one); from its second op on
 * the ops go on a stack of partial compositions, merged like a binary counter: level k
 * holds the composition of 2^k consecutive ops, and a new op merges with the top while
 * the two hold as many ops. Each op is thus composed O(log n) times, each compose costs
 * the components of its two inputs, and a run of n ops costs O(n log n) components, never
 * O(n^2). When the run ends (an entry that is not text, srv_replay_finish) the stack is
 * composed into one op, applied with srv_apply_text.
 *
 * Every op is checked when it is added, against the code point length of the text it
 * will apply to (counted once, at the field's second op, then kept up to date from each
 * op's inserts and deletes): an op that does not fit fails its own entry, as it would one
 * by one, and the composed op always fits. (A field whose text starts with a continuation
 * byte, which only a log of invalid UTF-8 can make, goes one by one: see replay_text.)
 * Object and record seqs are set as each entry is added. Buffered fields point at objects
 * of the record; the entries that may move or free an object are not text, and every
 * buffered field is applied before them. */

/* Past either bound a field's buffered ops are applied early: a replay holds at most about
 * this much beside the text it builds. */
#define REPLAY_MAX_INSERT ((size_t)4 << 20)  /* bytes inserted by a field's buffered ops */
#define REPLAY_MAX_COMPS  ((size_t)64 << 10) /* components of a field's buffered ops */

struct replay_level {
    struct proto_op op;
    uint64_t n; /* ops composed into op: a power of two */
    size_t ins; /* bytes op inserts */
};

/* A field with a run of text entries under way. */
struct replay_field {
    struct srv_obj *o;
    int idx;
    size_t slot;             /* its place in the replay's table */
    bool counted;            /* cp_len is known (from the run's second op on) */
    bool direct;             /* every op applied as it comes (see replay_text) */
    size_t cp_len;           /* code points of the text once the buffered ops apply */
    struct replay_level *lv; /* lv[0] the oldest ops */
    size_t nlv, lvcap;
    size_t ins, comps; /* inserted bytes and components over lv */
};

struct srv_replay {
    struct srv_rec *rec;
    int rc;
    struct replay_field **fields; /* the fields with a run under way */
    size_t nfields, fields_cap;
    struct replay_field **table; /* open addressing on (o, idx); NULL: free slot */
    size_t table_cap;            /* 0 or a power of two, at least twice nfields */
    struct replay_field *last;   /* the field of the latest text entry */
};

/* Code points as utf8_skip counts them: a byte that is not a continuation byte starts one. */
static size_t replay_count_cps(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    return n;
}

static size_t replay_insert_bytes(const struct proto_op *op)
{
    size_t n = 0;
    for (size_t i = 0; i < op->len; i++) {
        n += op->comps[i].slen; /* 0 for skips and deletes */
    }
    return n;
}

static size_t replay_hash(const struct srv_obj *o, int idx, size_t mask)
{
    uint64_t h = ((uint64_t)(uintptr_t)o ^ (uint64_t)idx) * 0x9E3779B97F4A7C15u;
    return (size_t)(h >> 17) & mask;
}

static struct replay_field *replay_find(struct srv_replay *r, const struct srv_obj *o, int idx)
{
    if (r->last != NULL && r->last->o == o && r->last->idx == idx) {
        return r->last;
    }
    if (r->table_cap == 0) {
        return NULL;
    }
    size_t mask = r->table_cap - 1;
    for (size_t i = replay_hash(o, idx, mask);; i = (i + 1) & mask) {
        struct replay_field *f = r->table[i];
        if (f == NULL || (f->o == o && f->idx == idx)) {
            return f;
        }
    }
}

static void replay_place(struct srv_replay *r, struct replay_field *f)
{
    size_t mask = r->table_cap - 1;
    size_t i = replay_hash(f->o, f->idx, mask);
    while (r->table[i] != NULL) {
        i = (i + 1) & mask;
    }
    r->table[i] = f;
    f->slot = i;
}

/* Starts a run for (o, idx). Returns the field or NULL when out of memory. */
static struct replay_field *replay_track(struct srv_replay *r, struct srv_obj *o, int idx)
{
    if (r->nfields == r->fields_cap) {
        size_t cap = r->fields_cap ? r->fields_cap * 2 : 8;
        struct replay_field **nf = realloc(r->fields, cap * sizeof(*nf));
        if (nf == NULL) {
            return NULL;
        }
        r->fields = nf;
        r->fields_cap = cap;
    }
    if (2 * (r->nfields + 1) > r->table_cap) {
        size_t cap = r->table_cap ? r->table_cap * 2 : 16;
        struct replay_field **nt = calloc(cap, sizeof(*nt));
        if (nt == NULL) {
            return NULL;
        }
        free(r->table);
        r->table = nt;
        r->table_cap = cap;
        for (size_t i = 0; i < r->nfields; i++) {
            replay_place(r, r->fields[i]);
        }
    }
    struct replay_field *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->o = o;
    f->idx = idx;
    replay_place(r, f);
    r->fields[r->nfields++] = f;
    return f;
}

/* Composes lv[i] and lv[i + 1] into lv[i]. Returns 0, PROTO_ENOMEM or PROTO_EINVAL (a
 * count overflows); both levels stay as they were on failure. */
static int replay_merge(struct replay_field *f, size_t i)
{
    struct replay_level *a = &f->lv[i], *b = &f->lv[i + 1];
    size_t comps = f->comps - a->op.len - b->op.len;
    int rc = proto_op_compose(&a->op, &b->op, &a->op);
    if (rc != 0) {
        return rc;
    }
    f->ins -= a->ins + b->ins;
    a->ins = replay_insert_bytes(&a->op);
    f->ins += a->ins;
    f->comps = comps + a->op.len;
    a->n += b->n;
    proto_op_free(&b->op);
    f->nlv--;
    return 0;
}

/* Applies a field's buffered ops, composed into one. Returns 0 or the error. */
static int replay_flush_field(struct replay_field *f)
{
    int rc = 0;
    while (rc == 0 && f->nlv > 1) {
        rc = replay_merge(f, f->nlv - 2);
    }
    if (rc == 0 && f->nlv == 1) {
        rc = srv_apply_text(&f->o->f[f->idx], &f->lv[0].op);
    }
    for (size_t i = 0; i < f->nlv; i++) {
        proto_op_free(&f->lv[i].op);
    }
    f->nlv = 0;
    f->ins = 0;
    f->comps = 0;
    return rc;
}

/* Applies every buffered field and ends their runs. Returns 0 or the first error. */
static int replay_flush_all(struct srv_replay *r)
{
    int rc = 0;
    for (size_t i = 0; i < r->nfields; i++) {
        struct replay_field *f = r->fields[i];
        int frc = replay_flush_field(f);
        if (rc == 0) {
            rc = frc;
        }
        r->table[f->slot] = NULL; /* every used slot is some field's: the table ends empty */
        free(f->lv);
        free(f);
    }
    r->nfields = 0;
    r->last = NULL;
    return rc;
}

/* Buffers op (which fits the text: checked by the caller), taking what it owns. Returns 0
 * or PROTO_ENOMEM / PROTO_EINVAL from a compose; op is freed either way. */
static int replay_push(struct replay_field *f, struct proto_op *op)
{
    if (f->nlv == f->lvcap) {
        size_t cap = f->lvcap ? f->lvcap * 2 : 8;
        struct replay_level *nl = realloc(f->lv, cap * sizeof(*nl));
        if (nl == NULL) {
            proto_op_free(op);
            return PROTO_ENOMEM;
        }
        f->lv = nl;
        f->lvcap = cap;
    }
    struct replay_level *l = &f->lv[f->nlv++];
    l->op = *op;
    proto_op_init(op);
    l->n = 1;
    l->ins = replay_insert_bytes(&l->op);
    f->ins += l->ins;
    f->comps += l->op.len;
    while (f->nlv > 1 && f->lv[f->nlv - 2].n == f->lv[f->nlv - 1].n) {
        int rc = replay_merge(f, f->nlv - 2);
        if (rc != 0) {
            return rc;
        }
    }
    if (f->ins > REPLAY_MAX_INSERT || f->comps > REPLAY_MAX_COMPS) {
        return replay_flush_field(f);
    }
    return 0;
}

/* A text entry, checked as apply_text checks it. */
static int replay_text(struct srv_replay *r, enum proto_type t, const struct db_audit *e,
                       const msgpack_object *payload)
{
    struct srv_obj *o = srv_rec_find(r->rec, t, t == PROTO_T_MEETING ? 0 : e->id_int);
    const msgpack_object *fo = proto_mp_map_get(payload, "field");
    const msgpack_object *opo = proto_mp_map_get(payload, "op");
    if (o == NULL || fo == NULL || fo->type != MSGPACK_OBJECT_STR || opo == NULL) {
        return PROTO_EINVAL;
    }
    int idx = proto_field_find(t, fo->via.str.ptr, fo->via.str.size);
    if (idx < 0 || proto_type_info(t)->fields[idx].kind != PROTO_F_TEXT) {
        return PROTO_EINVAL;
    }
    if (opo->type == MSGPACK_OBJECT_ARRAY && opo->via.array.size == 0) {
        o->seq = e->seq; /* an edit transformed into nothing still takes its seq */
        return 0;
    }
    struct proto_op op;
    proto_op_init(&op);
    int rc = proto_op_decode(opo, &op);
    if (rc != 0) {
        return rc;
    }
    struct srv_val *v = &o->f[idx];
    struct replay_field *f = replay_find(r, o, idx);
    if (f != NULL && !f->counted) {
        /* The run's second op: buffering starts, against the text the first one left. */
        f->cp_len = v->set && v->s ? replay_count_cps(v->s, v->len) : 0;
        f->counted = true;
        /* A text that starts with a continuation byte (no valid record holds one, but a log
         * may) glues its first code point to what is inserted before it: the positions
         * after such an insert are not those the composed op would assume. */
        f->direct = v->set && v->s && v->len > 0 && ((unsigned char)v->s[0] & 0xC0) == 0x80;
    }
    if (f == NULL || f->direct) {
        /* One by one: the run's first op, with nothing to compose it with yet, or a field
         * that composing would get wrong. */
        f = f != NULL ? f : replay_track(r, o, idx);
        rc = f == NULL ? PROTO_ENOMEM : srv_apply_text(v, &op);
    } else {
        rc = proto_op_check(&op, f->cp_len);
        if (rc == 0) {
            /* The op's inserts and deletes, in code points; its deletes are within cp_len. */
            size_t cp = f->cp_len;
            for (size_t i = 0; i < op.len; i++) {
                if (op.comps[i].kind == PROTO_OP_INSERT) {
                    cp += op.comps[i].n;
                } else if (op.comps[i].kind == PROTO_OP_DELETE) {
                    cp -= op.comps[i].n;
                }
            }
            f->cp_len = cp;
            rc = op.len == 0 ? 0 : replay_push(f, &op);
        }
    }
    proto_op_free(&op);
    if (f != NULL) {
        r->last = f;
    }
    if (rc == 0) {
        o->seq = e->seq;
    }
    return rc;
}

struct srv_replay *srv_replay_new(struct srv_rec *rec)
{
    struct srv_replay *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->rec = rec;
    }
    return r;
}

int srv_replay_add(struct srv_replay *r, const struct db_audit *e)
{
    if (r->rc != 0) {
        return r->rc;
    }
    /* Text entries of a type of the schema are buffered; everything else, a member entry
     * even if it says "text", is applied by srv_apply_entry after what is buffered. */
    enum proto_type t = PROTO_T_COUNT;
    if (strcmp(e->kind, "text") == 0 && strcmp(e->type, "member") != 0) {
        t = proto_type_find(e->type, strlen(e->type));
    }
    if (t == PROTO_T_COUNT) {
        int rc = replay_flush_all(r);
        r->rc = rc != 0 ? rc : srv_apply_entry(r->rec, e);
        return r->rc;
    }
    msgpack_unpacked u;
    size_t off = 0;
    int rc = PROTO_EINVAL;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        rc = replay_text(r, t, e, &u.data);
    }
    msgpack_unpacked_destroy(&u);
    if (rc == 0) {
        r->rec->seq = e->seq;
    }
    r->rc = rc;
    return rc;
}

int srv_replay_finish(struct srv_replay *r)
{
    if (r == NULL) {
        return PROTO_ENOMEM;
    }
    /* What is buffered was checked when added: applying it after a failed entry leaves the
     * record as the entries before that one made it. */
    int rc = replay_flush_all(r);
    if (r->rc != 0) {
        rc = r->rc;
    }
    free(r->fields);
    free(r->table);
    free(r);
    return rc;
}
