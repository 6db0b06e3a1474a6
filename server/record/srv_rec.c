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
