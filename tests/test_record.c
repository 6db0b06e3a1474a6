/* test_record.c - the in-memory meeting record: defaults, objects, members, item order,
 * interim deadlines, packing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "proto_err.h"
#include "proto_schema.h"
#include "proto_util.h"
#include "srv_rec.h"
#include "testutil.h"

static struct srv_val *fv(const struct srv_obj *o, const char *name)
{
    int k = proto_field_find(o->type, name, strlen(name));
    assert_true(k >= 0);
    return (struct srv_val *)&o->f[k];
}

static void set(struct srv_obj *o, const char *name, const char *s)
{
    assert_int_equal(srv_val_set_str(fv(o, name), s, strlen(s)), 0);
}

static struct srv_obj *obj(enum proto_type t, int64_t id)
{
    struct srv_obj *o = srv_obj_new(t);
    assert_non_null(o);
    o->id = id;
    return o;
}

static void test_rec_defaults(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("rg-iem-2023-06");
    assert_non_null(rec);
    assert_string_equal(rec->id, "rg-iem-2023-06");
    assert_int_equal(rec->meeting.type, PROTO_T_MEETING);
    assert_int_equal(rec->meeting.id, 0);
    assert_true(fv(&rec->meeting, "deadline_days")->set);
    assert_int_equal(fv(&rec->meeting, "deadline_days")->i, 7);
    assert_string_equal(fv(&rec->meeting, "status")->s, "draft");
    assert_false(fv(&rec->meeting, "title")->set);
    assert_false(fv(&rec->meeting, "abstract")->set);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        assert_int_equal(rec->objs[t].n, 0);
    }
    assert_ptr_equal(srv_rec_find(rec, PROTO_T_MEETING, 0), &rec->meeting);
    assert_ptr_equal(srv_rec_find(rec, PROTO_T_MEETING, 42), &rec->meeting);
    assert_int_equal(srv_rec_max_id(rec), 0);
    srv_rec_free(rec);
    srv_rec_free(NULL);

    /* An id that does not fit is refused rather than cut into another meeting's id. */
    char longid[PROTO_NAME_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_null(srv_rec_new(longid));
    longid[PROTO_NAME_MAX] = '\0';
    rec = srv_rec_new(longid);
    assert_non_null(rec);
    srv_rec_free(rec);
    assert_null(srv_rec_new(NULL));
}

static void test_obj_defaults(void **state)
{
    (void)state;
    struct srv_obj *o = NULL;

    o = srv_obj_new(PROTO_T_ACTION);
    assert_string_equal(fv(o, "status")->s, "open");
    assert_false(fv(o, "ref")->set);
    assert_false(fv(o, "text")->set);
    srv_obj_free(o);

    o = srv_obj_new(PROTO_T_SESSION);
    assert_string_equal(fv(o, "kind")->s, "session");
    srv_obj_free(o);

    o = srv_obj_new(PROTO_T_DECISION);
    assert_string_equal(fv(o, "kind")->s, "agreed");
    assert_false(fv(o, "item")->set);
    srv_obj_free(o);

    o = srv_obj_new(PROTO_T_INTERIM);
    assert_string_equal(fv(o, "mode")->s, "virtual");
    assert_false(fv(o, "deadline_days")->set); /* nil: the meeting's applies */
    srv_obj_free(o);

    o = srv_obj_new(PROTO_T_PERSON);
    assert_string_equal(fv(o, "role")->s, "delegate");
    srv_obj_free(o);

    assert_null(srv_obj_new(PROTO_T_COUNT));
    srv_obj_free(NULL);
}

static void test_values_and_dup(void **state)
{
    (void)state;
    struct srv_obj *o = obj(PROTO_T_DOC, 5), *d = NULL;

    o->seq = 17;
    set(o, "ref", "TSAG-TD257");
    set(o, "revision", "");
    srv_val_set_int(fv(o, "item"), 3);
    assert_true(fv(o, "revision")->set);
    assert_int_equal(fv(o, "revision")->len, 0);
    assert_string_equal(fv(o, "revision")->s, "");

    /* Setting again replaces; a value may be set from its own bytes. */
    set(o, "ref", "TSAG-TD258");
    assert_string_equal(fv(o, "ref")->s, "TSAG-TD258");
    assert_int_equal(srv_val_set_str(fv(o, "title"), fv(o, "ref")->s, 4), 0);
    assert_string_equal(fv(o, "title")->s, "TSAG");

    d = srv_obj_dup(o);
    assert_non_null(d);
    assert_int_equal(d->type, PROTO_T_DOC);
    assert_int_equal(d->id, 5);
    assert_int_equal(d->seq, 17);
    assert_string_equal(fv(d, "ref")->s, "TSAG-TD258");
    assert_ptr_not_equal(fv(d, "ref")->s, fv(o, "ref")->s);
    assert_int_equal(fv(d, "item")->i, 3);
    assert_false(fv(d, "source")->set);

    set(d, "ref", "changed");
    assert_string_equal(fv(o, "ref")->s, "TSAG-TD258");

    srv_val_unset(fv(o, "item"));
    assert_false(fv(o, "item")->set);
    srv_val_unset(fv(o, "ref"));
    assert_false(fv(o, "ref")->set);
    assert_null(fv(o, "ref")->s);
    srv_val_set_int(fv(o, "item"), -4);
    assert_int_equal(fv(o, "item")->i, -4);

    srv_obj_free(o);
    srv_obj_free(d);
}

static void test_add_find_remove(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m");
    const int64_t ids[] = {7, 3, 9, 1, 5};
    struct srv_obj *dup = NULL;

    for (size_t k = 0; k < 5; k++) {
        assert_int_equal(srv_rec_add(rec, obj(PROTO_T_DOC, ids[k])), 0);
    }
    assert_int_equal(srv_rec_add(rec, obj(PROTO_T_ITEM, 11)), 0);
    assert_int_equal(rec->objs[PROTO_T_DOC].n, 5);
    for (size_t k = 1; k < 5; k++) {
        assert_true(rec->objs[PROTO_T_DOC].v[k - 1]->id < rec->objs[PROTO_T_DOC].v[k]->id);
    }
    assert_int_equal(srv_rec_find(rec, PROTO_T_DOC, 9)->id, 9);
    assert_null(srv_rec_find(rec, PROTO_T_DOC, 4));
    assert_null(srv_rec_find(rec, PROTO_T_ITEM, 9)); /* ids are looked up per type */
    assert_null(srv_rec_find(rec, PROTO_T_COUNT, 9));
    assert_int_equal(srv_rec_max_id(rec), 11);

    dup = obj(PROTO_T_DOC, 3);
    assert_int_equal(srv_rec_add(rec, dup), PROTO_ECONFLICT);
    srv_obj_free(dup);
    dup = obj(PROTO_T_MEETING, 0);
    assert_int_equal(srv_rec_add(rec, dup), PROTO_EINVAL);
    srv_obj_free(dup);

    assert_int_equal(srv_rec_remove(rec, PROTO_T_DOC, 5), 0);
    assert_int_equal(srv_rec_remove(rec, PROTO_T_DOC, 5), PROTO_ENOTFOUND);
    assert_int_equal(srv_rec_remove(rec, PROTO_T_MEETING, 0), PROTO_ENOTFOUND);
    assert_null(srv_rec_find(rec, PROTO_T_DOC, 5));
    assert_int_equal(rec->objs[PROTO_T_DOC].n, 4);
    assert_int_equal(srv_rec_remove(rec, PROTO_T_ITEM, 11), 0);
    assert_int_equal(srv_rec_max_id(rec), 9);

    /* Many objects, added backwards, still come out sorted. */
    for (int64_t id = 1000; id > 100; id--) {
        assert_int_equal(srv_rec_add(rec, obj(PROTO_T_ACTION, id)), 0);
    }
    for (size_t k = 1; k < rec->objs[PROTO_T_ACTION].n; k++) {
        assert_true(rec->objs[PROTO_T_ACTION].v[k - 1]->id < rec->objs[PROTO_T_ACTION].v[k]->id);
    }
    assert_int_equal(srv_rec_find(rec, PROTO_T_ACTION, 500)->id, 500);
    srv_rec_free(rec);
}

static void test_members(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m");

    assert_null(srv_rec_member(rec, "alice"));
    assert_int_equal(srv_rec_set_member(rec, "carol", "editor", 2), 0);
    assert_int_equal(srv_rec_set_member(rec, "alice", "rapporteur", 3), 0);
    assert_int_equal(srv_rec_set_member(rec, "bob", "viewer", 4), 0);
    assert_int_equal(rec->nmembers, 3);
    assert_string_equal(rec->members[0].user, "alice");
    assert_string_equal(rec->members[1].user, "bob");
    assert_string_equal(rec->members[2].user, "carol");

    assert_int_equal(srv_rec_set_member(rec, "bob", "associate", 5), 0);
    assert_int_equal(rec->nmembers, 3);
    assert_string_equal(srv_rec_member(rec, "bob")->role, "associate");
    assert_int_equal(srv_rec_member(rec, "bob")->seq, 5);

    assert_int_equal(srv_rec_set_member(rec, "bob", NULL, 6), 0);
    assert_null(srv_rec_member(rec, "bob"));
    assert_int_equal(rec->nmembers, 2);
    assert_int_equal(srv_rec_set_member(rec, "nobody", NULL, 7), 0);

    assert_int_equal(srv_rec_set_member(rec, "dave", "a-role-much-too-long", 8), PROTO_EINVAL);
    char longuser[PROTO_NAME_MAX + 2];
    memset(longuser, 'u', sizeof(longuser) - 1);
    longuser[sizeof(longuser) - 1] = '\0';
    assert_int_equal(srv_rec_set_member(rec, longuser, "viewer", 9), PROTO_EINVAL);

    for (int k = 0; k < 100; k++) {
        char name[16];
        snprintf(name, sizeof(name), "user%03d", 99 - k);
        assert_int_equal(srv_rec_set_member(rec, name, "viewer", k), 0);
    }
    assert_int_equal(rec->nmembers, 102);
    for (size_t k = 1; k < rec->nmembers; k++) {
        assert_true(strcmp(rec->members[k - 1].user, rec->members[k].user) < 0);
    }
    srv_rec_free(rec);
}

static void test_items_sorted(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m");
    const char *numbers[] = {"10", "2", "4.1", "4", "1.10", "1.9", "4", "bad", NULL};
    const char *want[] = {"1.9", "1.10", "2", "4", "4", "4.1", "10", "bad", NULL};
    const struct srv_obj *out[9];

    for (int k = 0; k < 9; k++) {
        struct srv_obj *o = obj(PROTO_T_ITEM, k + 1);
        if (numbers[k] != NULL) {
            set(o, "number", numbers[k]);
        }
        assert_int_equal(srv_rec_add(rec, o), 0);
    }
    srv_rec_items_sorted(rec, out);
    for (int k = 0; k < 9; k++) {
        const struct srv_val *v = fv(out[k], "number");
        if (want[k] == NULL) {
            assert_false(v->set);
        } else {
            assert_string_equal(v->s, want[k]);
        }
    }
    /* Equal numbers keep id order; invalid and unset numbers go last. */
    assert_int_equal(out[3]->id, 4);
    assert_int_equal(out[4]->id, 7);
    assert_int_equal(out[7]->id, 8);
    assert_int_equal(out[8]->id, 9);
    srv_rec_free(rec);
}

static void test_interim_deadline(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m");
    struct srv_obj *o = obj(PROTO_T_INTERIM, 1);
    char out[11];

    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, ""); /* no date */

    set(o, "date", "2023-07-27");
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "2023-07-20");

    set(o, "date", "2024-01-03");
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "2023-12-27");

    set(o, "date", "2024-03-05"); /* across a leap day */
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "2024-02-27");

    srv_val_set_int(fv(&rec->meeting, "deadline_days"), 14);
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "2024-02-20");

    srv_val_set_int(fv(o, "deadline_days"), 0);
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "2024-03-05");

    srv_val_set_int(fv(o, "deadline_days"), 10);
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "2024-02-24");

    /* Neither the interim nor the meeting has days: no deadline applies. */
    srv_val_unset(fv(o, "deadline_days"));
    srv_val_unset(fv(&rec->meeting, "deadline_days"));
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "");

    srv_val_set_int(fv(&rec->meeting, "deadline_days"), 7);
    set(o, "date", "2023-02-30");
    srv_rec_interim_deadline(rec, o, out);
    assert_string_equal(out, "");

    srv_obj_free(o);
    srv_rec_free(rec);
}

/* ---- packing ---- */

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t k = 0; k < map->via.map.size; k++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[k];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0) {
            return &kv->val;
        }
    }
    return NULL;
}

static void assert_mp_str(const msgpack_object *o, const char *want)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

static void assert_mp_nil(const msgpack_object *o)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_NIL);
}

static void assert_mp_int(const msgpack_object *o, int64_t want)
{
    assert_non_null(o);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 == want
                                                           : o->via.i64 == want);
}

struct packed {
    struct proto_buf buf;
    msgpack_unpacked up;
};

static void unpack(struct packed *p)
{
    size_t off = 0;
    msgpack_unpacked_init(&p->up);
    assert_int_equal(msgpack_unpack_next(&p->up, (const char *)p->buf.data, p->buf.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, p->buf.len);
}

static void packed_free(struct packed *p)
{
    msgpack_unpacked_destroy(&p->up);
    proto_buf_free(&p->buf, 0);
}

static void test_obj_pack(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("rg-iem");
    struct srv_obj *im = obj(PROTO_T_INTERIM, 12), *it = obj(PROTO_T_ITEM, 3);
    struct packed p = {0};
    msgpack_packer pk;
    const struct proto_typeinfo *ti = proto_type_info(PROTO_T_INTERIM);

    im->seq = 40;
    set(im, "date", "2023-07-27");
    set(im, "topic", "CTO/CxO review");
    assert_int_equal(srv_rec_add(rec, im), 0);
    assert_int_equal(srv_rec_add(rec, it), 0);

    msgpack_packer_init(&pk, &p.buf, proto_buf_msgpack_write);
    assert_int_equal(srv_obj_pack(&pk, rec, im), 0);
    unpack(&p);
    const msgpack_object *m = &p.up.data;
    assert_int_equal(m->via.map.size, ti->nfields + 2);
    for (size_t k = 0; k < ti->nfields; k++) {
        assert_non_null(map_get(m, ti->fields[k].name));
    }
    assert_mp_int(map_get(m, "id"), 12);
    assert_mp_int(map_get(m, "seq"), 40);
    assert_mp_str(map_get(m, "date"), "2023-07-27");
    assert_mp_str(map_get(m, "topic"), "CTO/CxO review");
    assert_mp_str(map_get(m, "mode"), "virtual");
    assert_mp_nil(map_get(m, "start"));
    assert_mp_nil(map_get(m, "deadline_days"));
    assert_mp_str(map_get(m, "deadline"), "2023-07-20");
    packed_free(&p);

    /* Without a date the computed deadline is nil. */
    srv_val_unset(fv(im, "date"));
    memset(&p, 0, sizeof(p));
    msgpack_packer_init(&pk, &p.buf, proto_buf_msgpack_write);
    assert_int_equal(srv_obj_pack(&pk, rec, im), 0);
    unpack(&p);
    assert_mp_nil(map_get(&p.up.data, "deadline"));
    packed_free(&p);

    /* An unset text reads "", an unset item ref nil. */
    memset(&p, 0, sizeof(p));
    msgpack_packer_init(&pk, &p.buf, proto_buf_msgpack_write);
    assert_int_equal(srv_obj_pack(&pk, rec, it), 0);
    unpack(&p);
    assert_int_equal(p.up.data.via.map.size, proto_type_info(PROTO_T_ITEM)->nfields + 2);
    assert_mp_str(map_get(&p.up.data, "body"), "");
    assert_mp_nil(map_get(&p.up.data, "number"));
    assert_mp_nil(map_get(&p.up.data, "title"));
    packed_free(&p);

    /* The meeting: its id is the meeting id string. */
    rec->meeting.seq = 9;
    set(&rec->meeting, "title", "TSAG RG-IEM");
    memset(&p, 0, sizeof(p));
    msgpack_packer_init(&pk, &p.buf, proto_buf_msgpack_write);
    assert_int_equal(srv_obj_pack(&pk, rec, &rec->meeting), 0);
    unpack(&p);
    assert_int_equal(p.up.data.via.map.size, proto_type_info(PROTO_T_MEETING)->nfields + 2);
    assert_mp_str(map_get(&p.up.data, "id"), "rg-iem");
    assert_mp_int(map_get(&p.up.data, "seq"), 9);
    assert_mp_str(map_get(&p.up.data, "title"), "TSAG RG-IEM");
    assert_mp_int(map_get(&p.up.data, "deadline_days"), 7);
    assert_mp_str(map_get(&p.up.data, "status"), "draft");
    assert_mp_str(map_get(&p.up.data, "abstract"), "");
    assert_mp_nil(map_get(&p.up.data, "tz"));
    packed_free(&p);
    srv_rec_free(rec);
}

static void test_rec_pack(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m1");
    const char *numbers[] = {"10", "2", "1"};
    struct packed p = {0};
    msgpack_packer pk;

    rec->seq = 77;
    for (int k = 0; k < 3; k++) {
        struct srv_obj *o = obj(PROTO_T_ITEM, k + 1);
        set(o, "number", numbers[k]);
        assert_int_equal(srv_rec_add(rec, o), 0);
    }
    assert_int_equal(srv_rec_add(rec, obj(PROTO_T_DOC, 9)), 0);
    assert_int_equal(srv_rec_add(rec, obj(PROTO_T_DOC, 4)), 0);
    assert_int_equal(srv_rec_add(rec, obj(PROTO_T_PERSON, 5)), 0);

    msgpack_packer_init(&pk, &p.buf, proto_buf_msgpack_write);
    assert_int_equal(srv_rec_pack(&pk, rec), 0);
    unpack(&p);
    const msgpack_object *m = &p.up.data;
    assert_int_equal(m->via.map.size, 9);
    assert_mp_int(map_get(m, "seq"), 77);
    assert_mp_str(map_get(map_get(m, "meeting"), "id"), "m1");
    const char *lists[] = {"sessions",  "items",    "docs",  "actions",
                           "decisions", "interims", "people"};
    const uint32_t counts[] = {0, 3, 2, 0, 0, 0, 1};
    for (int k = 0; k < 7; k++) {
        const msgpack_object *a = map_get(m, lists[k]);
        assert_non_null(a);
        assert_int_equal(a->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(a->via.array.size, counts[k]);
    }
    /* Items in agenda order, the rest by id. */
    const msgpack_object *items = map_get(m, "items");
    assert_mp_str(map_get(&items->via.array.ptr[0], "number"), "1");
    assert_mp_str(map_get(&items->via.array.ptr[1], "number"), "2");
    assert_mp_str(map_get(&items->via.array.ptr[2], "number"), "10");
    const msgpack_object *docs = map_get(m, "docs");
    assert_mp_int(map_get(&docs->via.array.ptr[0], "id"), 4);
    assert_mp_int(map_get(&docs->via.array.ptr[1], "id"), 9);
    packed_free(&p);
    srv_rec_free(rec);
}

/* Grouping by item: each item's objects in id order; none for an unset or absent item. */
static void test_byitem(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m1");
    struct srv_obj *a = obj(PROTO_T_ITEM, 2), *b = obj(PROTO_T_ITEM, 7);
    struct srv_obj *outside = obj(PROTO_T_ITEM, 9);
    const int64_t refs[] = {7, 0, 2, 7, 99, 7}; /* decisions 11..16; 0: unset, 99: absent */
    const struct srv_obj *const *v = NULL;
    struct srv_rec_byitem *g = NULL;
    size_t n = 0;

    assert_int_equal(srv_rec_add(rec, a), 0);
    assert_int_equal(srv_rec_add(rec, b), 0);
    for (int k = 5; k >= 0; k--) {
        struct srv_obj *d = obj(PROTO_T_DECISION, 11 + k);
        if (refs[k] != 0) {
            srv_val_set_int(fv(d, "item"), refs[k]);
        }
        assert_int_equal(srv_rec_add(rec, d), 0);
    }
    g = srv_rec_byitem_new(rec, PROTO_T_DECISION);
    assert_non_null(g);
    v = srv_rec_byitem_get(g, b, &n);
    assert_int_equal(n, 3);
    assert_int_equal(v[0]->id, 11);
    assert_int_equal(v[1]->id, 14);
    assert_int_equal(v[2]->id, 16);
    v = srv_rec_byitem_get(g, a, &n);
    assert_int_equal(n, 1);
    assert_int_equal(v[0]->id, 13);
    srv_rec_byitem_get(g, outside, &n);
    assert_int_equal(n, 0);
    srv_rec_byitem_free(g);

    /* No docs at all; a type without an item field has no grouping. */
    g = srv_rec_byitem_new(rec, PROTO_T_DOC);
    assert_non_null(g);
    srv_rec_byitem_get(g, a, &n);
    assert_int_equal(n, 0);
    srv_rec_byitem_free(g);
    assert_null(srv_rec_byitem_new(rec, PROTO_T_SESSION));
    assert_null(srv_rec_byitem_new(rec, PROTO_T_MEETING));
    srv_rec_byitem_free(NULL);
    srv_obj_free(outside);
    srv_rec_free(rec);
}

/* agenda.get's shape: nil number and title when unset, docs of no item left out. */
static void test_rec_pack_agenda(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m1");
    struct srv_obj *it = obj(PROTO_T_ITEM, 3), *bare = obj(PROTO_T_ITEM, 2);
    struct srv_obj *d1 = obj(PROTO_T_DOC, 8), *d2 = obj(PROTO_T_DOC, 5), *d3 = obj(PROTO_T_DOC, 6);
    struct packed p = {0};
    msgpack_packer pk;

    rec->seq = 12;
    set(it, "number", "1");
    set(it, "title", "Opening");
    srv_val_set_int(fv(d1, "item"), 3);
    srv_val_set_int(fv(d2, "item"), 3);
    assert_int_equal(srv_rec_add(rec, it), 0);
    assert_int_equal(srv_rec_add(rec, bare), 0);
    assert_int_equal(srv_rec_add(rec, d1), 0);
    assert_int_equal(srv_rec_add(rec, d2), 0);
    assert_int_equal(srv_rec_add(rec, d3), 0);
    assert_int_equal(srv_rec_add(rec, obj(PROTO_T_SESSION, 4)), 0);

    msgpack_packer_init(&pk, &p.buf, proto_buf_msgpack_write);
    assert_int_equal(srv_rec_pack_agenda(&pk, rec), 0);
    unpack(&p);
    const msgpack_object *m = &p.up.data;
    assert_int_equal(m->via.map.size, 3);
    assert_mp_int(map_get(m, "seq"), 12);
    const msgpack_object *items = map_get(m, "items");
    assert_int_equal(items->via.array.size, 2);
    const msgpack_object *first = &items->via.array.ptr[0], *second = &items->via.array.ptr[1];
    assert_int_equal(first->via.map.size, 4);
    assert_mp_int(map_get(first, "id"), 3);
    assert_mp_str(map_get(first, "number"), "1");
    assert_mp_str(map_get(first, "title"), "Opening");
    const msgpack_object *docs = map_get(first, "docs");
    assert_int_equal(docs->via.array.size, 2);
    assert_mp_int(map_get(&docs->via.array.ptr[0], "id"), 5);
    assert_mp_int(map_get(&docs->via.array.ptr[1], "id"), 8);
    assert_mp_int(map_get(&docs->via.array.ptr[1], "item"), 3);
    /* An item without a number sorts last; its unset number and title are nil. */
    assert_mp_int(map_get(second, "id"), 2);
    assert_mp_nil(map_get(second, "number"));
    assert_mp_nil(map_get(second, "title"));
    assert_int_equal(map_get(second, "docs")->via.array.size, 0);
    const msgpack_object *ss = map_get(m, "sessions");
    assert_int_equal(ss->via.array.size, 1);
    assert_mp_int(map_get(&ss->via.array.ptr[0], "id"), 4);
    packed_free(&p);
    srv_rec_free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rec_defaults),     cmocka_unit_test(test_obj_defaults),
        cmocka_unit_test(test_values_and_dup),   cmocka_unit_test(test_add_find_remove),
        cmocka_unit_test(test_members),          cmocka_unit_test(test_items_sorted),
        cmocka_unit_test(test_interim_deadline), cmocka_unit_test(test_obj_pack),
        cmocka_unit_test(test_rec_pack),         cmocka_unit_test(test_rec_pack_agenda),
        cmocka_unit_test(test_byitem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
