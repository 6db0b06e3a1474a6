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
        if (rc == 0) {
            rc = srv_rec_add(rec, o);
        }
        if (rc != 0) {
            srv_obj_free(o);
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

/* ---- replays ---- */

struct srv_replay {
    struct srv_rec *rec;
    int rc;
};

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
    if (r->rc == 0) {
        r->rc = srv_apply_entry(r->rec, e);
    }
    return r->rc;
}

int srv_replay_finish(struct srv_replay *r)
{
    int rc = r ? r->rc : PROTO_ENOMEM;
    free(r);
    return rc;
}
