/* srv_rec.c - a meeting record in memory.
 *
 * Everything here is driven by proto_schema's field table, so a field added to the schema
 * gets its default, its copy and its wire form without a change in this file.
 */
#include "srv_rec.h"

#include <stdlib.h>
#include <string.h>

#include "proto_err.h"

void srv_val_unset(struct srv_val *v)
{
    free(v->s);
    v->s = NULL;
    v->len = 0;
    v->i = 0;
    v->set = false;
}

int srv_val_set_str(struct srv_val *v, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return PROTO_ENOMEM;
    }
    if (len > 0) {
        memcpy(copy, s, len);
    }
    copy[len] = '\0';
    srv_val_unset(v);
    v->s = copy;
    v->len = len;
    v->set = true;
    return 0;
}

void srv_val_set_int(struct srv_val *v, int64_t i)
{
    srv_val_unset(v);
    v->i = i;
    v->set = true;
}

static void obj_clear(struct srv_obj *o)
{
    for (size_t k = 0; k < PROTO_MAX_FIELDS; k++) {
        srv_val_unset(&o->f[k]);
    }
}

/* Fills o's fields with the schema's defaults; o must be zeroed. */
static int obj_defaults(struct srv_obj *o, enum proto_type t)
{
    const struct proto_typeinfo *ti = proto_type_info(t);

    o->type = t;
    for (size_t k = 0; k < ti->nfields; k++) {
        const struct proto_field *fd = &ti->fields[k];
        if (fd->kind == PROTO_F_INT && fd->has_def_int) {
            srv_val_set_int(&o->f[k], fd->def_int);
        } else if (fd->def_str != NULL &&
                   srv_val_set_str(&o->f[k], fd->def_str, strlen(fd->def_str)) < 0) {
            obj_clear(o);
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

struct srv_obj *srv_obj_new(enum proto_type t)
{
    struct srv_obj *o = NULL;

    if (proto_type_info(t) == NULL) {
        return NULL;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return NULL;
    }
    if (obj_defaults(o, t) < 0) {
        free(o);
        return NULL;
    }
    return o;
}

void srv_obj_free(struct srv_obj *o)
{
    if (o == NULL) {
        return;
    }
    obj_clear(o);
    free(o);
}

struct srv_obj *srv_obj_dup(const struct srv_obj *o)
{
    struct srv_obj *d = NULL;

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->type = o->type;
    d->id = o->id;
    d->seq = o->seq;
    for (size_t k = 0; k < PROTO_MAX_FIELDS; k++) {
        const struct srv_val *v = &o->f[k];
        if (!v->set) {
            continue;
        }
        if (v->s != NULL) {
            if (srv_val_set_str(&d->f[k], v->s, v->len) < 0) {
                srv_obj_free(d);
                return NULL;
            }
        } else {
            srv_val_set_int(&d->f[k], v->i);
        }
    }
    return d;
}

struct srv_rec *srv_rec_new(const char *id)
{
    struct srv_rec *rec = NULL;
    size_t n = 0;

    /* A longer id would have to be cut, and a cut id names another meeting. */
    if (id == NULL || (n = strlen(id)) > PROTO_NAME_MAX) {
        return NULL;
    }
    rec = calloc(1, sizeof(*rec));
    if (rec == NULL) {
        return NULL;
    }
    memcpy(rec->id, id, n + 1);
    if (obj_defaults(&rec->meeting, PROTO_T_MEETING) < 0) {
        free(rec);
        return NULL;
    }
    return rec;
}

void srv_rec_free(struct srv_rec *rec)
{
    if (rec == NULL) {
        return;
    }
    obj_clear(&rec->meeting);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        struct srv_objvec *vec = &rec->objs[t];
        for (size_t k = 0; k < vec->n; k++) {
            srv_obj_free(vec->v[k]);
        }
        free(vec->v);
    }
    free(rec->members);
    free(rec);
}

/* Index of id in vec, or of where it would go (*found false). */
static size_t vec_search(const struct srv_objvec *vec, int64_t id, bool *found)
{
    size_t lo = 0, hi = vec->n;

    *found = false;
    /* Ids grow, so a new object usually goes last: check that first. */
    if (vec->n > 0 && vec->v[vec->n - 1]->id < id) {
        return vec->n;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vec->v[mid]->id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < vec->n && vec->v[lo]->id == id;
    return lo;
}

struct srv_obj *srv_rec_find(struct srv_rec *rec, enum proto_type t, int64_t id)
{
    bool found = false;
    size_t at = 0;

    if (t == PROTO_T_MEETING) {
        return &rec->meeting;
    }
    if ((unsigned)t >= PROTO_T_COUNT) {
        return NULL;
    }
    at = vec_search(&rec->objs[t], id, &found);
    return found ? rec->objs[t].v[at] : NULL;
}

int srv_rec_add(struct srv_rec *rec, struct srv_obj *o)
{
    struct srv_objvec *vec = NULL;
    bool found = false;
    size_t at = 0;

    if (o == NULL || o->type == PROTO_T_MEETING || (unsigned)o->type >= PROTO_T_COUNT) {
        return PROTO_EINVAL;
    }
    vec = &rec->objs[o->type];
    at = vec_search(vec, o->id, &found);
    if (found) {
        return PROTO_ECONFLICT;
    }
    if (vec->n == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 16;
        struct srv_obj **nv = realloc(vec->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return PROTO_ENOMEM;
        }
        vec->v = nv;
        vec->cap = ncap;
    }
    memmove(&vec->v[at + 1], &vec->v[at], (vec->n - at) * sizeof(*vec->v));
    vec->v[at] = o;
    vec->n++;
    return 0;
}

int srv_rec_remove(struct srv_rec *rec, enum proto_type t, int64_t id)
{
    struct srv_objvec *vec = NULL;
    bool found = false;
    size_t at = 0;

    if (t == PROTO_T_MEETING || (unsigned)t >= PROTO_T_COUNT) {
        return PROTO_ENOTFOUND;
    }
    vec = &rec->objs[t];
    at = vec_search(vec, id, &found);
    if (!found) {
        return PROTO_ENOTFOUND;
    }
    srv_obj_free(vec->v[at]);
    memmove(&vec->v[at], &vec->v[at + 1], (vec->n - at - 1) * sizeof(*vec->v));
    vec->n--;
    return 0;
}

/* Members are kept sorted by user name, so member.list needs no sort. */
static size_t member_search(const struct srv_rec *rec, const char *user, bool *found)
{
    size_t lo = 0, hi = rec->nmembers;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(rec->members[mid].user, user) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < rec->nmembers && strcmp(rec->members[lo].user, user) == 0;
    return lo;
}

struct srv_member *srv_rec_member(struct srv_rec *rec, const char *user)
{
    bool found = false;
    size_t at = member_search(rec, user, &found);
    return found ? &rec->members[at] : NULL;
}

int srv_rec_set_member(struct srv_rec *rec, const char *user, const char *role, int64_t seq)
{
    struct srv_member *m = NULL;
    bool found = false;
    size_t at = 0;

    if (strlen(user) > PROTO_NAME_MAX || (role != NULL && strlen(role) >= sizeof(m->role))) {
        return PROTO_EINVAL;
    }
    at = member_search(rec, user, &found);
    if (role == NULL) {
        if (found) {
            memmove(&rec->members[at], &rec->members[at + 1],
                    (rec->nmembers - at - 1) * sizeof(*rec->members));
            rec->nmembers--;
        }
        return 0;
    }
    if (!found) {
        if (rec->nmembers == rec->members_cap) {
            size_t ncap = rec->members_cap ? rec->members_cap * 2 : 8;
            struct srv_member *nm = realloc(rec->members, ncap * sizeof(*nm));
            if (nm == NULL) {
                return PROTO_ENOMEM;
            }
            rec->members = nm;
            rec->members_cap = ncap;
        }
        memmove(&rec->members[at + 1], &rec->members[at],
                (rec->nmembers - at) * sizeof(*rec->members));
        rec->nmembers++;
        memset(&rec->members[at], 0, sizeof(rec->members[at]));
        strcpy(rec->members[at].user, user);
    }
    m = &rec->members[at];
    memset(m->role, 0, sizeof(m->role));
    strcpy(m->role, role);
    m->seq = seq;
    return 0;
}

int64_t srv_rec_max_id(const struct srv_rec *rec)
{
    int64_t max = 0;

    for (int t = 0; t < PROTO_T_COUNT; t++) {
        const struct srv_objvec *vec = &rec->objs[t];
        if (vec->n > 0 && vec->v[vec->n - 1]->id > max) {
            max = vec->v[vec->n - 1]->id;
        }
    }
    return max;
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct srv_obj *a = *(const struct srv_obj *const *)pa;
    const struct srv_obj *b = *(const struct srv_obj *const *)pb;
    int k = proto_field_find(PROTO_T_ITEM, "number", 6);
    const struct srv_val *na = &a->f[k], *nb = &b->f[k];
    /* proto_number_cmp only terminates on valid numbers; anything else goes last. */
    bool va = na->set && proto_number_valid(na->s, na->len);
    bool vb = nb->set && proto_number_valid(nb->s, nb->len);
    int c = 0;

    if (va != vb) {
        return va ? -1 : 1;
    }
    if (va) {
        c = proto_number_cmp(na->s, nb->s);
    }
    if (c != 0) {
        return c;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

void srv_rec_items_sorted(const struct srv_rec *rec, const struct srv_obj **out)
{
    const struct srv_objvec *vec = &rec->objs[PROTO_T_ITEM];

    for (size_t k = 0; k < vec->n; k++) {
        out[k] = vec->v[k];
    }
    if (vec->n > 1) {
        qsort(out, vec->n, sizeof(*out), item_cmp);
    }
}

void srv_rec_interim_deadline(const struct srv_rec *rec, const struct srv_obj *interim,
                              char out[11])
{
    int kdate = proto_field_find(PROTO_T_INTERIM, "date", 4);
    int kdays = proto_field_find(PROTO_T_INTERIM, "deadline_days", 13);
    int kmdays = proto_field_find(PROTO_T_MEETING, "deadline_days", 13);
    const struct srv_val *date = &interim->f[kdate];
    const struct srv_val *days = &interim->f[kdays];

    out[0] = '\0';
    if (!date->set || !proto_date_valid(date->s, date->len)) {
        return;
    }
    if (!days->set) {
        days = &rec->meeting.f[kmdays];
    }
    /* With no days at all (the meeting's cleared too) no deadline applies. */
    if (!days->set) {
        return;
    }
    proto_days_date(proto_date_days(date->s) - days->i, out);
}

/* msgpack-c's pack calls fail only when the write callback does, i.e. out of memory. */
static int pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (msgpack_pack_str(pk, len) != 0 || msgpack_pack_str_body(pk, s, len) != 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    return pack_str(pk, s, strlen(s));
}

static int pack_value(msgpack_packer *pk, const struct srv_rec *rec, const struct srv_obj *o,
                      const struct proto_field *fd, const struct srv_val *v)
{
    char date[11];

    switch (fd->kind) {
    case PROTO_F_TEXT:
        return v->set ? pack_str(pk, v->s, v->len) : pack_str(pk, "", 0);
    case PROTO_F_INT:
    case PROTO_F_ITEMREF:
        if (!v->set) {
            return msgpack_pack_nil(pk) != 0 ? PROTO_ENOMEM : 0;
        }
        return msgpack_pack_int64(pk, v->i) != 0 ? PROTO_ENOMEM : 0;
    case PROTO_F_COMPUTED:
        date[0] = '\0';
        if (o->type == PROTO_T_INTERIM && strcmp(fd->name, "deadline") == 0) {
            srv_rec_interim_deadline(rec, o, date);
        }
        if (date[0] == '\0') {
            return msgpack_pack_nil(pk) != 0 ? PROTO_ENOMEM : 0;
        }
        return pack_str(pk, date, 10);
    default:
        if (!v->set || v->s == NULL) {
            return msgpack_pack_nil(pk) != 0 ? PROTO_ENOMEM : 0;
        }
        return pack_str(pk, v->s, v->len);
    }
}

int srv_obj_pack(msgpack_packer *pk, const struct srv_rec *rec, const struct srv_obj *o)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    int rc = 0;

    if (ti == NULL) {
        return PROTO_EINVAL;
    }
    if (msgpack_pack_map(pk, ti->nfields + 2) != 0 || (rc = pack_cstr(pk, "id")) < 0) {
        return PROTO_ENOMEM;
    }
    if (o->type == PROTO_T_MEETING) {
        rc = pack_cstr(pk, rec->id);
    } else {
        rc = msgpack_pack_int64(pk, o->id) != 0 ? PROTO_ENOMEM : 0;
    }
    if (rc < 0 || (rc = pack_cstr(pk, "seq")) < 0) {
        return rc;
    }
    if (msgpack_pack_int64(pk, o->seq) != 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < ti->nfields; k++) {
        if ((rc = pack_cstr(pk, ti->fields[k].name)) < 0 ||
            (rc = pack_value(pk, rec, o, &ti->fields[k], &o->f[k])) < 0) {
            return rc;
        }
    }
    return 0;
}

int srv_rec_pack(msgpack_packer *pk, const struct srv_rec *rec)
{
    const struct srv_obj **items = NULL;
    int rc = 0;

    if (msgpack_pack_map(pk, PROTO_T_COUNT + 1) != 0 || pack_cstr(pk, "seq") < 0 ||
        msgpack_pack_int64(pk, rec->seq) != 0 || pack_cstr(pk, "meeting") < 0) {
        return PROTO_ENOMEM;
    }
    rc = srv_obj_pack(pk, rec, &rec->meeting);
    if (rc < 0) {
        return rc;
    }
    /* Items go in their natural order (the agenda's), everything else by id. */
    if (rec->objs[PROTO_T_ITEM].n > 0) {
        items = malloc(rec->objs[PROTO_T_ITEM].n * sizeof(*items));
        if (items == NULL) {
            return PROTO_ENOMEM;
        }
        srv_rec_items_sorted(rec, items);
    }
    for (int t = PROTO_T_MEETING + 1; t < PROTO_T_COUNT; t++) {
        const struct srv_objvec *vec = &rec->objs[t];
        if ((rc = pack_cstr(pk, proto_type_info((enum proto_type)t)->plural)) < 0) {
            goto cleanup;
        }
        if (msgpack_pack_array(pk, vec->n) != 0) {
            rc = PROTO_ENOMEM;
            goto cleanup;
        }
        for (size_t k = 0; k < vec->n; k++) {
            const struct srv_obj *o = t == PROTO_T_ITEM ? items[k] : vec->v[k];
            if ((rc = srv_obj_pack(pk, rec, o)) < 0) {
                goto cleanup;
            }
        }
    }
cleanup:
    free(items);
    return rc;
}

struct srv_rec_byitem {
    const struct srv_rec *rec;
    /* Group k (the k-th item of rec->objs[PROTO_T_ITEM]) is objs[start[k] .. start[k+1]). */
    size_t *start;
    const struct srv_obj **objs;
};

struct srv_rec_byitem *srv_rec_byitem_new(const struct srv_rec *rec, enum proto_type t)
{
    const struct srv_objvec *items = &rec->objs[PROTO_T_ITEM], *vec = NULL;
    struct srv_rec_byitem *g = NULL;
    size_t *which = NULL;
    int k = -1;

    if (t == PROTO_T_MEETING || (unsigned)t >= PROTO_T_COUNT ||
        (k = proto_field_find(t, "item", 4)) < 0 ||
        proto_type_info(t)->fields[k].kind != PROTO_F_ITEMREF) {
        return NULL;
    }
    vec = &rec->objs[t];
    g = calloc(1, sizeof(*g));
    which = malloc((vec->n ? vec->n : 1) * sizeof(*which));
    if (g == NULL || which == NULL) {
        goto fail;
    }
    g->rec = rec;
    /* A counting sort by item index: counts go one place further up than the groups'
     * starts, so that placing the objects moves each start to where the next group
     * begins. Objects are taken in id order, so each group stays in id order. */
    g->start = calloc(items->n + 2, sizeof(*g->start));
    g->objs = malloc((vec->n ? vec->n : 1) * sizeof(*g->objs));
    if (g->start == NULL || g->objs == NULL) {
        goto fail;
    }
    for (size_t j = 0; j < vec->n; j++) {
        const struct srv_val *v = &vec->v[j]->f[k];
        bool found = false;
        which[j] = v->set ? vec_search(items, v->i, &found) : 0;
        if (!found) {
            which[j] = SIZE_MAX;
            continue;
        }
        g->start[which[j] + 2]++;
    }
    for (size_t i = 2; i < items->n + 2; i++) {
        g->start[i] += g->start[i - 1];
    }
    for (size_t j = 0; j < vec->n; j++) {
        if (which[j] != SIZE_MAX) {
            g->objs[g->start[which[j] + 1]++] = vec->v[j];
        }
    }
    free(which);
    return g;
fail:
    free(which);
    srv_rec_byitem_free(g);
    return NULL;
}

void srv_rec_byitem_free(struct srv_rec_byitem *g)
{
    if (g == NULL) {
        return;
    }
    free(g->start);
    free(g->objs);
    free(g);
}

const struct srv_obj *const *srv_rec_byitem_get(const struct srv_rec_byitem *g,
                                                const struct srv_obj *item, size_t *n)
{
    bool found = false;
    size_t at = vec_search(&g->rec->objs[PROTO_T_ITEM], item->id, &found);

    *n = 0;
    if (!found) {
        return g->objs;
    }
    *n = g->start[at + 1] - g->start[at];
    return g->objs + g->start[at];
}

/* A short field as agenda.get shows it: nil when not set. */
static int pack_short(msgpack_packer *pk, const struct srv_obj *o, const char *name)
{
    const struct srv_val *v = &o->f[proto_field_find(o->type, name, strlen(name))];
    if (v->set && v->s != NULL) {
        return pack_str(pk, v->s, v->len);
    }
    return msgpack_pack_nil(pk) != 0 ? PROTO_ENOMEM : 0;
}

int srv_rec_pack_agenda(msgpack_packer *pk, const struct srv_rec *rec)
{
    const struct srv_objvec *ss = &rec->objs[PROTO_T_SESSION];
    size_t nitems = rec->objs[PROTO_T_ITEM].n;
    const struct srv_obj **items = NULL;
    struct srv_rec_byitem *docs = NULL;
    int rc = PROTO_ENOMEM;

    /* Docs grouped once: a scan of all docs per item would be items x docs on the loop. */
    items = calloc(nitems ? nitems : 1, sizeof(*items));
    docs = srv_rec_byitem_new(rec, PROTO_T_DOC);
    if (items == NULL || docs == NULL) {
        goto cleanup;
    }
    srv_rec_items_sorted(rec, items);
    if (msgpack_pack_map(pk, 3) != 0 || pack_cstr(pk, "seq") < 0 ||
        msgpack_pack_int64(pk, rec->seq) != 0 || pack_cstr(pk, "items") < 0 ||
        msgpack_pack_array(pk, nitems) != 0) {
        goto cleanup;
    }
    for (size_t i = 0; i < nitems; i++) {
        const struct srv_obj *it = items[i];
        size_t nd = 0;
        const struct srv_obj *const *d = srv_rec_byitem_get(docs, it, &nd);
        if (msgpack_pack_map(pk, 4) != 0 || pack_cstr(pk, "id") < 0 ||
            msgpack_pack_int64(pk, it->id) != 0 || pack_cstr(pk, "number") < 0 ||
            pack_short(pk, it, "number") < 0 || pack_cstr(pk, "title") < 0 ||
            pack_short(pk, it, "title") < 0 || pack_cstr(pk, "docs") < 0) {
            goto cleanup;
        }
        if (msgpack_pack_array(pk, nd) != 0) {
            goto cleanup;
        }
        for (size_t k = 0; k < nd; k++) {
            if (srv_obj_pack(pk, rec, d[k]) < 0) {
                goto cleanup;
            }
        }
    }
    if (pack_cstr(pk, "sessions") < 0 || msgpack_pack_array(pk, ss->n) != 0) {
        goto cleanup;
    }
    for (size_t i = 0; i < ss->n; i++) {
        if (srv_obj_pack(pk, rec, ss->v[i]) < 0) {
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    srv_rec_byitem_free(docs);
    free(items);
    return rc;
}

/* ---- Canonical dump ---- */

static bool kind_is_int(enum proto_fkind k)
{
    return k == PROTO_F_INT || k == PROTO_F_ITEMREF;
}

/* A string-kind value is a string only with bytes behind it, as srv_obj_pack sees it. */
static bool val_has_str(const struct srv_val *v)
{
    return v->set && v->s != NULL;
}

static size_t stored_fields(const struct proto_typeinfo *ti)
{
    size_t n = 0;

    for (size_t k = 0; k < ti->nfields; k++) {
        n += ti->fields[k].kind != PROTO_F_COMPUTED;
    }
    return n;
}

/* msgpack's headers hold 32-bit lengths; nothing in a record comes near, but a length
 * that did would otherwise be cut silently into another dump. */
static int dump_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (len > UINT32_MAX) {
        return PROTO_EINVAL;
    }
    return pack_str(pk, s, len);
}

static int dump_int(msgpack_packer *pk, int64_t i)
{
    /* msgpack-c packs an int64 in its shortest form, so a value has one encoding. */
    return msgpack_pack_int64(pk, i) != 0 ? PROTO_ENOMEM : 0;
}

static int dump_array(msgpack_packer *pk, size_t n)
{
    if (n > UINT32_MAX) {
        return PROTO_EINVAL;
    }
    return msgpack_pack_array(pk, n) != 0 ? PROTO_ENOMEM : 0;
}

/* [type, id, seq, [value...]]; t rather than o->type: the list an object is in decides. */
static int dump_obj(msgpack_packer *pk, enum proto_type t, int64_t id, const struct srv_obj *o)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    int rc = 0;

    if (ti == NULL) {
        return PROTO_EINVAL;
    }
    if ((rc = dump_array(pk, 4)) < 0 || (rc = pack_cstr(pk, ti->name)) < 0 ||
        (rc = dump_int(pk, id)) < 0 || (rc = dump_int(pk, o->seq)) < 0 ||
        (rc = dump_array(pk, stored_fields(ti))) < 0) {
        return rc;
    }
    for (size_t k = 0; k < ti->nfields; k++) {
        const struct proto_field *fd = &ti->fields[k];
        const struct srv_val *v = &o->f[k];
        if (fd->kind == PROTO_F_COMPUTED) {
            continue;
        }
        if (kind_is_int(fd->kind) ? v->set : val_has_str(v)) {
            rc = kind_is_int(fd->kind) ? dump_int(pk, v->i) : dump_str(pk, v->s, v->len);
        } else {
            rc = msgpack_pack_nil(pk) != 0 ? PROTO_ENOMEM : 0;
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

int srv_rec_dump(const struct srv_rec *rec, struct proto_buf *out)
{
    size_t start = out->len, nobjs = 0;
    msgpack_packer pk;
    int rc = 0;

    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    for (int t = PROTO_T_MEETING + 1; t < PROTO_T_COUNT; t++) {
        nobjs += rec->objs[t].n;
    }
    if ((rc = dump_array(&pk, 6)) < 0 || (rc = dump_int(&pk, 1)) < 0 ||
        (rc = pack_cstr(&pk, rec->id)) < 0 || (rc = dump_int(&pk, rec->seq)) < 0 ||
        (rc = dump_obj(&pk, PROTO_T_MEETING, 0, &rec->meeting)) < 0 ||
        (rc = dump_array(&pk, nobjs)) < 0) {
        goto fail;
    }
    for (int t = PROTO_T_MEETING + 1; t < PROTO_T_COUNT; t++) {
        const struct srv_objvec *vec = &rec->objs[t];
        for (size_t k = 0; k < vec->n; k++) {
            if ((rc = dump_obj(&pk, (enum proto_type)t, vec->v[k]->id, vec->v[k])) < 0) {
                goto fail;
            }
        }
    }
    if ((rc = dump_array(&pk, rec->nmembers)) < 0) {
        goto fail;
    }
    for (size_t k = 0; k < rec->nmembers; k++) {
        const struct srv_member *m = &rec->members[k];
        if ((rc = dump_array(&pk, 3)) < 0 || (rc = pack_cstr(&pk, m->user)) < 0 ||
            (rc = pack_cstr(&pk, m->role)) < 0 || (rc = dump_int(&pk, m->seq)) < 0) {
            goto fail;
        }
    }
    return 0;
fail:
    /* A half-written dump must not pass for a whole one. */
    out->len = start;
    return rc;
}

/* ---- Reading a dump ----
 *
 * A reader of its own rather than msgpack-c's unpacker: that one allocates an array's
 * elements before it reads them, and a snapshot holds more objects than the wire's
 * PROTO_MP_MAX_COUNT lets proto_msgpack vouch for. Each read checks the bytes left. */

struct dump_rd {
    const uint8_t *p;
    size_t len, at;
};

static size_t rd_left(const struct dump_rd *r)
{
    return r->len - r->at;
}

/* A big-endian unsigned of w bytes. */
static int rd_be(struct dump_rd *r, size_t w, uint64_t *v)
{
    if (rd_left(r) < w) {
        return PROTO_EINVAL;
    }
    *v = 0;
    for (size_t k = 0; k < w; k++) {
        *v = *v << 8 | r->p[r->at + k];
    }
    r->at += w;
    return 0;
}

static int rd_byte(struct dump_rd *r, uint8_t *b)
{
    if (rd_left(r) < 1) {
        return PROTO_EINVAL;
    }
    *b = r->p[r->at++];
    return 0;
}

static bool rd_nil(struct dump_rd *r)
{
    if (rd_left(r) >= 1 && r->p[r->at] == 0xc0) {
        r->at++;
        return true;
    }
    return false;
}

static int rd_int(struct dump_rd *r, int64_t *v)
{
    uint8_t b = 0;
    uint64_t u = 0;

    if (rd_byte(r, &b) < 0) {
        return PROTO_EINVAL;
    }
    if (b <= 0x7f) {
        *v = b;
        return 0;
    }
    if (b >= 0xe0) {
        *v = (int64_t)b - 256;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) { /* uint 8, 16, 32, 64 */
        if (rd_be(r, (size_t)1 << (b - 0xcc), &u) < 0 || u > INT64_MAX) {
            return PROTO_EINVAL;
        }
        *v = (int64_t)u;
        return 0;
    }
    if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64 */
        size_t w = (size_t)1 << (b - 0xd0);
        if (rd_be(r, w, &u) < 0) {
            return PROTO_EINVAL;
        }
        /* Sign-extend from w bytes without shifting into the sign bit. */
        if (w < 8 && (u >> (8 * w - 1)) != 0) {
            *v = (int64_t)u - ((int64_t)1 << (8 * w));
        } else {
            *v = (int64_t)u;
        }
        return 0;
    }
    return PROTO_EINVAL;
}

/* A string: its bytes stay in the dump; valid UTF-8 without NUL, as a record's are. */
static int rd_str(struct dump_rd *r, const char **s, size_t *len)
{
    uint8_t b = 0;
    uint64_t n = 0;

    if (rd_byte(r, &b) < 0) {
        return PROTO_EINVAL;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
    } else if (b < 0xd9 || b > 0xdb || rd_be(r, (size_t)1 << (b - 0xd9), &n) < 0) {
        return PROTO_EINVAL;
    }
    if (n > rd_left(r) || !proto_utf8_valid((const char *)r->p + r->at, (size_t)n)) {
        return PROTO_EINVAL;
    }
    *s = (const char *)r->p + r->at;
    *len = (size_t)n;
    r->at += (size_t)n;
    return 0;
}

/* An array header; every element takes a byte at least, so a count past the bytes left is
 * a lie told before any of it is believed. */
static int rd_array(struct dump_rd *r, size_t *n)
{
    uint8_t b = 0;
    uint64_t u = 0;

    if (rd_byte(r, &b) < 0) {
        return PROTO_EINVAL;
    }
    if (b >= 0x90 && b <= 0x9f) {
        u = b & 0x0f;
    } else if ((b != 0xdc && b != 0xdd) || rd_be(r, b == 0xdc ? 2 : 4, &u) < 0) {
        return PROTO_EINVAL;
    }
    if (u > rd_left(r)) {
        return PROTO_EINVAL;
    }
    *n = (size_t)u;
    return 0;
}

static int rd_array_of(struct dump_rd *r, size_t want)
{
    size_t n = 0;
    return rd_array(r, &n) < 0 || n != want ? PROTO_EINVAL : 0;
}

/* [type, id, seq, ...: the head of an object, up to its values. */
static int rd_obj_head(struct dump_rd *r, enum proto_type *t, int64_t *id, int64_t *seq)
{
    const char *name = NULL;
    size_t nlen = 0;

    if (rd_array_of(r, 4) < 0 || rd_str(r, &name, &nlen) < 0) {
        return PROTO_EINVAL;
    }
    *t = proto_type_find(name, nlen);
    if (*t == PROTO_T_COUNT || rd_int(r, id) < 0 || rd_int(r, seq) < 0) {
        return PROTO_EINVAL;
    }
    return 0;
}

/* [value...] into o's fields, every stored field written (a default o starts with is
 * replaced by what the dump says, nil included). */
static int rd_values(struct dump_rd *r, enum proto_type t, struct srv_obj *o)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    const char *s = NULL;
    size_t len = 0;
    int64_t i = 0;

    if (rd_array_of(r, stored_fields(ti)) < 0) {
        return PROTO_EINVAL;
    }
    for (size_t k = 0; k < ti->nfields; k++) {
        enum proto_fkind kind = ti->fields[k].kind;
        if (kind == PROTO_F_COMPUTED || rd_nil(r)) {
            srv_val_unset(&o->f[k]);
        } else if (kind_is_int(kind)) {
            if (rd_int(r, &i) < 0) {
                return PROTO_EINVAL;
            }
            srv_val_set_int(&o->f[k], i);
        } else {
            if (rd_str(r, &s, &len) < 0) {
                return PROTO_EINVAL;
            }
            if (srv_val_set_str(&o->f[k], s, len) < 0) {
                return PROTO_ENOMEM;
            }
        }
    }
    return 0;
}

static int rd_objects(struct dump_rd *r, struct srv_rec *rec)
{
    enum proto_type last_t = PROTO_T_MEETING, t = PROTO_T_MEETING;
    int64_t last_id = 0, id = 0, seq = 0;
    size_t n = 0;
    int rc = 0;

    if (rd_array(r, &n) < 0) {
        return PROTO_EINVAL;
    }
    for (size_t k = 0; k < n; k++) {
        struct srv_obj *o = NULL;
        if (rd_obj_head(r, &t, &id, &seq) < 0 || t == PROTO_T_MEETING || t < last_t ||
            (t == last_t && id <= last_id)) {
            return PROTO_EINVAL;
        }
        if ((o = srv_obj_new(t)) == NULL) {
            return PROTO_ENOMEM;
        }
        o->id = id;
        o->seq = seq;
        /* In order, so srv_rec_add appends; it cannot find the id taken. */
        if ((rc = rd_values(r, t, o)) < 0 || (rc = srv_rec_add(rec, o)) < 0) {
            srv_obj_free(o);
            return rc;
        }
        last_t = t;
        last_id = id;
    }
    return 0;
}

static int rd_members(struct dump_rd *r, struct srv_rec *rec)
{
    char prev[PROTO_NAME_MAX + 1] = "", user[PROTO_NAME_MAX + 1], role[16];
    const char *s = NULL;
    size_t n = 0, len = 0;
    int64_t seq = 0;
    int rc = 0;

    if (rd_array(r, &n) < 0) {
        return PROTO_EINVAL;
    }
    for (size_t k = 0; k < n; k++) {
        if (rd_array_of(r, 3) < 0 || rd_str(r, &s, &len) < 0 || len > PROTO_NAME_MAX) {
            return PROTO_EINVAL;
        }
        memcpy(user, s, len);
        user[len] = '\0';
        if (rd_str(r, &s, &len) < 0 || len >= sizeof(role) || rd_int(r, &seq) < 0) {
            return PROTO_EINVAL;
        }
        memcpy(role, s, len);
        role[len] = '\0';
        /* Strictly increasing: a duplicate, or one out of place, is not a dump. Neither
         * holds a NUL, so strcmp orders them as srv_rec_set_member does. */
        if (k > 0 && strcmp(prev, user) >= 0) {
            return PROTO_EINVAL;
        }
        if ((rc = srv_rec_set_member(rec, user, role, seq)) < 0) {
            return rc;
        }
        memcpy(prev, user, sizeof(prev));
    }
    return 0;
}

int srv_rec_undump(const char *meeting, const uint8_t *data, size_t len, struct srv_rec **out)
{
    struct dump_rd r = {data, len, 0};
    struct srv_rec *rec = NULL;
    enum proto_type t = PROTO_T_MEETING;
    const char *id = NULL;
    size_t idlen = 0;
    int64_t version = 0, seq = 0, oid = 0, mseq = 0;
    int rc = PROTO_EINVAL;

    if (out == NULL) {
        return PROTO_EINVAL;
    }
    *out = NULL;
    if (meeting == NULL || (data == NULL && len > 0) || strlen(meeting) > PROTO_NAME_MAX) {
        return PROTO_EINVAL;
    }
    if (rd_array_of(&r, 6) < 0 || rd_int(&r, &version) < 0 || version != 1 ||
        rd_str(&r, &id, &idlen) < 0 || idlen != strlen(meeting) ||
        memcmp(id, meeting, idlen) != 0 || rd_int(&r, &seq) < 0 ||
        rd_obj_head(&r, &t, &oid, &mseq) < 0 || t != PROTO_T_MEETING || oid != 0) {
        return PROTO_EINVAL;
    }
    if ((rec = srv_rec_new(meeting)) == NULL) {
        return PROTO_ENOMEM;
    }
    rec->seq = seq;
    rec->meeting.seq = mseq;
    if ((rc = rd_values(&r, PROTO_T_MEETING, &rec->meeting)) < 0 ||
        (rc = rd_objects(&r, rec)) < 0 || (rc = rd_members(&r, rec)) < 0) {
        goto fail;
    }
    if (r.at != len) {
        rc = PROTO_EINVAL;
        goto fail;
    }
    *out = rec;
    return 0;
fail:
    srv_rec_free(rec);
    return rc;
}

/* ---- Diff ---- */

struct diff_ctx {
    srv_rec_diff_cb cb;
    void *ud;
    size_t n;
};

static void diff_emit(struct diff_ctx *d, const char *type, int64_t id, const char *id_str,
                      const char *field)
{
    d->n++;
    if (d->cb != NULL) {
        d->cb(d->ud, type, id, id_str, field);
    }
}

/* Equal as a dump writes them. */
static bool val_eq(enum proto_fkind kind, const struct srv_val *a, const struct srv_val *b)
{
    if (kind_is_int(kind)) {
        return a->set == b->set && (!a->set || a->i == b->i);
    }
    /* A TEXT field that is not set reads "" (and is stored so): the two are equal. */
    if (kind == PROTO_F_TEXT) {
        size_t la = val_has_str(a) ? a->len : 0, lb = val_has_str(b) ? b->len : 0;
        return la == lb && (la == 0 || memcmp(a->s, b->s, la) == 0);
    }
    if (val_has_str(a) != val_has_str(b)) {
        return false;
    }
    return !val_has_str(a) || (a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
}

static void diff_obj(struct diff_ctx *d, enum proto_type t, const struct srv_obj *a,
                     const struct srv_obj *b, int64_t id, const char *id_str)
{
    const struct proto_typeinfo *ti = proto_type_info(t);

    if (a->seq != b->seq) {
        diff_emit(d, ti->name, id, id_str, "seq");
    }
    for (size_t k = 0; k < ti->nfields; k++) {
        enum proto_fkind kind = ti->fields[k].kind;
        if (kind != PROTO_F_COMPUTED && !val_eq(kind, &a->f[k], &b->f[k])) {
            diff_emit(d, ti->name, id, id_str, ti->fields[k].name);
        }
    }
}

static void diff_vec(struct diff_ctx *d, enum proto_type t, const struct srv_objvec *va,
                     const struct srv_objvec *vb)
{
    const char *name = proto_type_info(t)->name;
    size_t i = 0, j = 0;

    while (i < va->n || j < vb->n) {
        if (j == vb->n || (i < va->n && va->v[i]->id < vb->v[j]->id)) {
            diff_emit(d, name, va->v[i]->id, NULL, NULL);
            i++;
        } else if (i == va->n || vb->v[j]->id < va->v[i]->id) {
            diff_emit(d, name, vb->v[j]->id, NULL, NULL);
            j++;
        } else {
            diff_obj(d, t, va->v[i], vb->v[j], va->v[i]->id, NULL);
            i++;
            j++;
        }
    }
}

static void diff_members(struct diff_ctx *d, const struct srv_rec *a, const struct srv_rec *b)
{
    size_t i = 0, j = 0;

    while (i < a->nmembers || j < b->nmembers) {
        const struct srv_member *ma = i < a->nmembers ? &a->members[i] : NULL;
        const struct srv_member *mb = j < b->nmembers ? &b->members[j] : NULL;
        int c = ma == NULL ? 1 : mb == NULL ? -1 : strcmp(ma->user, mb->user);
        if (c < 0) {
            diff_emit(d, "member", 0, ma->user, NULL);
            i++;
        } else if (c > 0) {
            diff_emit(d, "member", 0, mb->user, NULL);
            j++;
        } else {
            if (strcmp(ma->role, mb->role) != 0) {
                diff_emit(d, "member", 0, ma->user, "role");
            }
            if (ma->seq != mb->seq) {
                diff_emit(d, "member", 0, ma->user, "seq");
            }
            i++;
            j++;
        }
    }
}

size_t srv_rec_diff(const struct srv_rec *a, const struct srv_rec *b, srv_rec_diff_cb cb, void *ud)
{
    struct diff_ctx d = {cb, ud, 0};

    if (strcmp(a->id, b->id) != 0) {
        diff_emit(&d, "meeting", 0, a->id, "id");
    }
    diff_obj(&d, PROTO_T_MEETING, &a->meeting, &b->meeting, 0, a->id);
    for (int t = PROTO_T_MEETING + 1; t < PROTO_T_COUNT; t++) {
        diff_vec(&d, (enum proto_type)t, &a->objs[t], &b->objs[t]);
    }
    diff_members(&d, a, b);
    return d.n;
}
