/* test_record_dump.c - the canonical dump of a record, reading it back, and the diff of two
 * records: round trips, determinism, every kind of difference, malformed dumps, and
 * truncated or damaged ones. */
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

#define MID "rg-iem-2023-06"

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

static void seti(struct srv_obj *o, const char *name, int64_t i)
{
    srv_val_set_int(fv(o, name), i);
}

static struct srv_obj *obj(enum proto_type t, int64_t id, int64_t seq)
{
    struct srv_obj *o = srv_obj_new(t);
    assert_non_null(o);
    o->id = id;
    o->seq = seq;
    return o;
}

/* Integers of every msgpack width, both signs: interims carry them as deadline_days and
 * as seq, so that a round trip goes through each of the reader's integer forms. */
static const int64_t widths[] = {
    0,  1,   127, 128,  255,  256,    65535,  65536,     4294967295,    4294967296, INT64_MAX,
    -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, -2147483649LL, INT64_MIN,
};
#define NWIDTHS    (sizeof(widths) / sizeof(widths[0]))
#define WIDTH_BASE 1000 /* the probe interims' first id */

/* A record with every type and field kind: multi-byte text, nil and "" side by side, item
 * references set and nil, members. backwards adds objects and members in the reverse
 * order; the record is the same. */
static struct srv_rec *make_full(const char *id, bool backwards)
{
    struct srv_rec *rec = srv_rec_new(id);
    struct srv_obj *m = NULL, *objs[32];
    size_t n = 0;

    assert_non_null(rec);
    rec->seq = 4242;
    m = &rec->meeting;
    m->seq = 4200;
    set(m, "title", "Réunion du groupe — Genève");
    set(m, "group", ""); /* "" is not nil (parent stays nil) */
    set(m, "venue", "東京 (ハイブリッド)");
    set(m, "start", "2023-06-12");
    set(m, "end", "2023-06-16");
    set(m, "tz", "Europe/Geneva");
    set(m, "action_prefix", "IEM");
    seti(m, "deadline_days", 10);
    set(m, "abstract", "Résumé ✓ 𝄞 done");

    objs[n] = obj(PROTO_T_SESSION, 1, 11);
    set(objs[n], "date", "2023-06-12");
    set(objs[n], "start", "09:30");
    set(objs[n], "end", "12:30");
    set(objs[n], "title", "Opening");
    n++;
    objs[n] = obj(PROTO_T_ITEM, 2, 12);
    set(objs[n], "number", "1");
    set(objs[n], "title", "Opening of the meeting");
    set(objs[n], "body", "Der Vorsitzende eröffnete die Sitzung. «Ça va»");
    n++;
    objs[n] = obj(PROTO_T_ITEM, 3, 13);
    set(objs[n], "number", "2.1");
    set(objs[n], "title", "Агенда");
    n++;
    objs[n] = obj(PROTO_T_ITEM, 4, 14);
    set(objs[n], "number", "10");
    set(objs[n], "body", "");
    n++;
    objs[n] = obj(PROTO_T_DOC, 5, 15);
    set(objs[n], "ref", "TD-257");
    set(objs[n], "revision", "");
    set(objs[n], "title", "Draft Recommendation Y.ñ");
    set(objs[n], "source", "Editors");
    seti(objs[n], "item", 3);
    set(objs[n], "status", "agreed");
    n++;
    objs[n] = obj(PROTO_T_DOC, 6, 16);
    set(objs[n], "ref", "C-12");
    n++;
    objs[n] = obj(PROTO_T_ACTION, 7, 17);
    set(objs[n], "ref", "IEM-1");
    set(objs[n], "to", "Editors");
    set(objs[n], "owner", "Zoë");
    set(objs[n], "status", "done");
    set(objs[n], "due", "2023-09-01");
    set(objs[n], "text", "Prepare the draft — 草案");
    n++;
    objs[n] = obj(PROTO_T_DECISION, 8, 18);
    seti(objs[n], "item", 2);
    set(objs[n], "kind", "noted");
    set(objs[n], "text", "Noted with thanks.");
    n++;
    objs[n] = obj(PROTO_T_DECISION, 9, 19);
    set(objs[n], "text", "");
    n++;
    objs[n] = obj(PROTO_T_INTERIM, 10, 20);
    set(objs[n], "date", "2023-10-02");
    set(objs[n], "start", "13:00");
    set(objs[n], "end", "15:00");
    set(objs[n], "mode", "physical");
    set(objs[n], "topic", "Y.iem — comments");
    seti(objs[n], "deadline_days", 14);
    n++;
    objs[n] = obj(PROTO_T_INTERIM, 11, 21);
    set(objs[n], "date", "2023-11-06");
    n++;
    objs[n] = obj(PROTO_T_PERSON, 12, 22);
    set(objs[n], "name", "Jürgen Müller");
    set(objs[n], "affiliation", "");
    set(objs[n], "role", "rapporteur");
    set(objs[n], "note", "chair");
    n++;
    objs[n] = obj(PROTO_T_PERSON, INT64_MAX, 23);
    set(objs[n], "name", "李雷");
    n++;
    assert_true(n <= sizeof(objs) / sizeof(objs[0]));

    for (size_t k = 0; k < n; k++) {
        assert_int_equal(srv_rec_add(rec, objs[backwards ? n - 1 - k : k]), 0);
    }
    for (size_t k = 0; k < NWIDTHS; k++) {
        size_t w = backwards ? NWIDTHS - 1 - k : k;
        struct srv_obj *o = obj(PROTO_T_INTERIM, WIDTH_BASE + (int64_t)w, widths[NWIDTHS - 1 - w]);
        seti(o, "deadline_days", widths[w]);
        assert_int_equal(srv_rec_add(rec, o), 0);
    }

    const char *users[] = {"admin", "alice", "bob.x", "z-9"};
    const char *roles[] = {"rapporteur", "editor", "viewer", "associate"};
    const int64_t seqs[] = {1, 5, -3, 300000};
    for (size_t k = 0; k < 4; k++) {
        size_t u = backwards ? 3 - k : k;
        assert_int_equal(srv_rec_set_member(rec, users[u], roles[u], seqs[u]), 0);
    }
    return rec;
}

static void dump(const struct srv_rec *rec, struct proto_buf *b)
{
    proto_buf_init(b);
    assert_int_equal(srv_rec_dump(rec, b), 0);
    assert_true(b->len > 0);
}

static bool same_bytes(const struct proto_buf *a, const struct proto_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static bool dumps_equal(const struct srv_rec *a, const struct srv_rec *b)
{
    struct proto_buf da, db;
    bool eq = false;

    dump(a, &da);
    dump(b, &db);
    eq = same_bytes(&da, &db);
    proto_buf_free(&da, 0);
    proto_buf_free(&db, 0);
    return eq;
}

/* Undumps a dump of rec and checks that it dumps to the same bytes. */
static struct srv_rec *round_trip(const struct srv_rec *rec)
{
    struct proto_buf d1, d2;
    struct srv_rec *back = NULL;

    dump(rec, &d1);
    assert_int_equal(srv_rec_undump(rec->id, d1.data, d1.len, &back), 0);
    assert_non_null(back);
    dump(back, &d2);
    assert_true(same_bytes(&d1, &d2));
    proto_buf_free(&d1, 0);
    proto_buf_free(&d2, 0);
    return back;
}

/* ---- collecting differences ---- */

struct diff_one {
    char type[16];
    int64_t id;
    bool has_id_str, has_field;
    char id_str[PROTO_NAME_MAX + 1];
    char field[32];
};

struct diffs {
    size_t n;
    struct diff_one d[64];
};

static void collect(void *ud, const char *type, int64_t id, const char *id_str, const char *field)
{
    struct diffs *ds = ud;
    struct diff_one *d = NULL;

    assert_non_null(type);
    if (ds->n < sizeof(ds->d) / sizeof(ds->d[0])) {
        d = &ds->d[ds->n];
        snprintf(d->type, sizeof(d->type), "%s", type);
        d->id = id;
        d->has_id_str = id_str != NULL;
        snprintf(d->id_str, sizeof(d->id_str), "%s", id_str ? id_str : "");
        d->has_field = field != NULL;
        snprintf(d->field, sizeof(d->field), "%s", field ? field : "");
    }
    ds->n++;
}

static void assert_diff(const struct diffs *ds, size_t at, const char *type, int64_t id,
                        const char *id_str, const char *field)
{
    const struct diff_one *d = NULL;

    assert_true(at < ds->n);
    d = &ds->d[at];
    assert_string_equal(d->type, type);
    assert_int_equal(d->id, id);
    assert_int_equal(d->has_id_str, id_str != NULL);
    if (id_str != NULL) {
        assert_string_equal(d->id_str, id_str);
    }
    assert_int_equal(d->has_field, field != NULL);
    if (field != NULL) {
        assert_string_equal(d->field, field);
    }
}

/* a and b differ in exactly one thing, in both directions, and their dumps differ. */
static void assert_one_diff(const struct srv_rec *a, const struct srv_rec *b, const char *type,
                            int64_t id, const char *id_str, const char *field)
{
    struct diffs ds = {0};

    assert_int_equal(srv_rec_diff(a, b, collect, &ds), 1);
    assert_int_equal(ds.n, 1);
    assert_diff(&ds, 0, type, id, id_str, field);
    memset(&ds, 0, sizeof(ds));
    assert_int_equal(srv_rec_diff(b, a, collect, &ds), 1);
    /* The meeting is named by the first record's id. */
    if (!(id_str != NULL && strcmp(type, "meeting") == 0)) {
        assert_diff(&ds, 0, type, id, id_str, field);
    }
    assert_false(dumps_equal(a, b));
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
    (void)state;
    struct srv_rec *rec = make_full(MID, false), *back = round_trip(rec);

    assert_int_equal(srv_rec_diff(rec, back, NULL, NULL), 0);
    assert_string_equal(back->id, MID);
    assert_int_equal(back->seq, 4242);
    assert_int_equal(back->meeting.seq, 4200);
    assert_int_equal(back->meeting.type, PROTO_T_MEETING);
    assert_string_equal(fv(&back->meeting, "title")->s, "Réunion du groupe — Genève");
    assert_true(fv(&back->meeting, "group")->set);
    assert_int_equal(fv(&back->meeting, "group")->len, 0);
    assert_false(fv(&back->meeting, "parent")->set);
    assert_false(fv(&back->meeting, "report_ref")->set);
    assert_int_equal(fv(&back->meeting, "deadline_days")->i, 10);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        assert_int_equal(back->objs[t].n, rec->objs[t].n);
    }
    const struct srv_obj *doc = srv_rec_find(back, PROTO_T_DOC, 5);
    assert_non_null(doc);
    assert_int_equal(doc->type, PROTO_T_DOC);
    assert_int_equal(doc->seq, 15);
    assert_int_equal(fv(doc, "item")->i, 3);
    assert_true(fv(doc, "revision")->set);
    assert_false(fv(srv_rec_find(back, PROTO_T_DOC, 6), "item")->set);
    /* A default the dump says is nil stays nil: the decision's kind is cleared here. */
    struct srv_obj *dec = srv_rec_find(rec, PROTO_T_DECISION, 9);
    srv_val_unset(fv(dec, "kind"));
    srv_rec_free(back);
    back = round_trip(rec);
    assert_false(fv(srv_rec_find(back, PROTO_T_DECISION, 9), "kind")->set);
    for (size_t k = 0; k < NWIDTHS; k++) {
        const struct srv_obj *o = srv_rec_find(back, PROTO_T_INTERIM, WIDTH_BASE + (int64_t)k);
        assert_non_null(o);
        assert_true(fv(o, "deadline_days")->i == widths[k]);
        assert_true(o->seq == widths[NWIDTHS - 1 - k]);
    }
    assert_non_null(srv_rec_find(back, PROTO_T_PERSON, INT64_MAX));
    assert_int_equal(back->nmembers, 4);
    assert_string_equal(back->members[2].user, "bob.x");
    assert_string_equal(back->members[2].role, "viewer");
    assert_int_equal(back->members[2].seq, -3);
    srv_rec_free(back);
    srv_rec_free(rec);

    /* An empty record round trips too. */
    rec = srv_rec_new("m");
    assert_non_null(rec);
    back = round_trip(rec);
    assert_int_equal(srv_rec_diff(rec, back, NULL, NULL), 0);
    srv_rec_free(back);
    srv_rec_free(rec);
}

static void test_determinism(void **state)
{
    (void)state;
    struct srv_rec *a = make_full(MID, false), *b = make_full(MID, true);
    struct proto_buf da, db, pre;

    /* Built in another order, and the hub's bookkeeping aside, the bytes are the same. */
    srv_rec_find(b, PROTO_T_DOC, 5)->put_batch = 99;
    srv_rec_find(b, PROTO_T_ITEM, 3)->created = 13;
    b->meeting.put_batch = 7;
    /* A COMPUTED field holds nothing stored. */
    struct srv_obj *in = srv_rec_find(b, PROTO_T_INTERIM, 10);
    set(in, "deadline", "2023-09-18");
    dump(a, &da);
    dump(b, &db);
    assert_true(same_bytes(&da, &db));
    assert_int_equal(srv_rec_diff(a, b, NULL, NULL), 0);
    proto_buf_free(&db, 0);
    dump(a, &db);
    assert_true(same_bytes(&da, &db));

    /* It appends: what was in the buffer stays, and the dump after it reads alone. */
    proto_buf_init(&pre);
    assert_int_equal(proto_buf_append(&pre, "head", 4), 0);
    assert_int_equal(srv_rec_dump(a, &pre), 0);
    assert_int_equal(pre.len, 4 + da.len);
    assert_memory_equal(pre.data, "head", 4);
    assert_memory_equal(pre.data + 4, da.data, da.len);
    struct srv_rec *back = NULL;
    assert_int_equal(srv_rec_undump(MID, pre.data + 4, pre.len - 4, &back), 0);
    assert_int_equal(srv_rec_diff(a, back, NULL, NULL), 0);
    srv_rec_free(back);

    /* The layout as documented: [1, id, seq, [meeting...], ...]. */
    assert_int_equal(da.data[0], 0x96);
    assert_int_equal(da.data[1], 0x01);
    assert_int_equal(da.data[2], 0xa0 | strlen(MID));
    assert_memory_equal(da.data + 3, MID, strlen(MID));

    proto_buf_free(&pre, 0);
    proto_buf_free(&da, 0);
    proto_buf_free(&db, 0);
    srv_rec_free(a);
    srv_rec_free(b);
}

/* Every stored field of every object, changed and cleared one at a time, is one difference
 * named by its type, id and field, and gives other bytes. */
static void test_diff_each_field(void **state)
{
    (void)state;
    struct srv_rec *a = make_full(MID, false);
    size_t checked = 0;

    for (int t = 0; t < PROTO_T_COUNT; t++) {
        const struct proto_typeinfo *ti = proto_type_info((enum proto_type)t);
        size_t nobj = t == PROTO_T_MEETING ? 1 : a->objs[t].n;
        for (size_t j = 0; j < nobj; j++) {
            const struct srv_obj *oa = t == PROTO_T_MEETING ? &a->meeting : a->objs[t].v[j];
            int64_t id = t == PROTO_T_MEETING ? 0 : oa->id;
            const char *id_str = t == PROTO_T_MEETING ? MID : NULL;
            for (size_t k = 0; k < ti->nfields; k++) {
                const struct proto_field *fd = &ti->fields[k];
                bool is_int = fd->kind == PROTO_F_INT || fd->kind == PROTO_F_ITEMREF;
                if (fd->kind == PROTO_F_COMPUTED) {
                    continue;
                }
                for (int variant = 0; variant < 2; variant++) {
                    struct srv_rec *b = make_full(MID, false);
                    struct srv_obj *ob = srv_rec_find(b, (enum proto_type)t, id);
                    struct srv_val *v = &ob->f[k];
                    if (variant == 0 && v->set) {
                        /* Another value of the same kind. */
                        if (is_int) {
                            srv_val_set_int(v, v->i == INT64_MAX ? 0 : v->i + 1);
                        } else {
                            char buf[2048];
                            snprintf(buf, sizeof(buf), "%sx", v->s);
                            assert_int_equal(srv_val_set_str(v, buf, strlen(buf)), 0);
                        }
                    } else if (variant == 0) {
                        /* nil becomes 0 or "" (a TEXT field's nil reads "": "x" then) */
                        if (is_int) {
                            srv_val_set_int(v, 0);
                        } else if (fd->kind == PROTO_F_TEXT) {
                            assert_int_equal(srv_val_set_str(v, "x", 1), 0);
                        } else {
                            assert_int_equal(srv_val_set_str(v, "", 0), 0);
                        }
                    } else if (v->set && !(fd->kind == PROTO_F_TEXT && v->len == 0)) {
                        srv_val_unset(v);
                    } else {
                        srv_rec_free(b);
                        continue;
                    }
                    assert_one_diff(a, b, ti->name, id, id_str, fd->name);
                    struct srv_rec *back = round_trip(b);
                    assert_int_equal(srv_rec_diff(b, back, NULL, NULL), 0);
                    srv_rec_free(back);
                    srv_rec_free(b);
                    checked++;
                }
            }
        }
    }
    /* Every type's fields took part. */
    assert_true(checked > 100);
    /* A TEXT field's nil reads "" (and is stored so): not a difference, though the dumps,
     * which copy a record exactly, tell them apart. */
    struct srv_rec *b = make_full(MID, false);
    struct srv_obj *item = b->objs[PROTO_T_ITEM].v[0];
    int body = proto_field_find(PROTO_T_ITEM, "body", 4);
    assert_true(body >= 0);
    srv_val_unset(&item->f[body]);
    struct srv_rec *c = make_full(MID, false);
    assert_int_equal(srv_val_set_str(&c->objs[PROTO_T_ITEM].v[0]->f[body], "", 0), 0);
    assert_int_equal(srv_rec_diff(b, c, NULL, NULL), 0);
    assert_false(dumps_equal(b, c));
    srv_rec_free(b);
    srv_rec_free(c);
    srv_rec_free(a);
}

static void test_diff_kinds(void **state)
{
    (void)state;
    struct srv_rec *a = make_full(MID, false), *b = NULL;

    /* rec->seq is in the dump but the callers compare it: no difference reported. */
    b = make_full(MID, false);
    b->seq++;
    assert_int_equal(srv_rec_diff(a, b, NULL, NULL), 0);
    assert_false(dumps_equal(a, b));
    srv_rec_free(b);

    b = make_full("rg-iem-2023-07", false);
    assert_one_diff(a, b, "meeting", 0, MID, "id");
    srv_rec_free(b);

    b = make_full(MID, false);
    b->meeting.seq = 1;
    assert_one_diff(a, b, "meeting", 0, MID, "seq");
    srv_rec_free(b);

    b = make_full(MID, false);
    srv_rec_find(b, PROTO_T_ACTION, 7)->seq = 70;
    assert_one_diff(a, b, "action", 7, NULL, "seq");
    srv_rec_free(b);

    b = make_full(MID, false);
    assert_int_equal(srv_rec_remove(b, PROTO_T_DOC, 6), 0);
    assert_one_diff(a, b, "doc", 6, NULL, NULL);
    srv_rec_free(b);

    /* The same id under another type is two differences, one of each type. */
    b = make_full(MID, false);
    assert_int_equal(srv_rec_remove(b, PROTO_T_SESSION, 1), 0);
    assert_int_equal(srv_rec_add(b, obj(PROTO_T_PERSON, 1, 11)), 0);
    struct diffs ds = {0};
    assert_int_equal(srv_rec_diff(a, b, collect, &ds), 2);
    assert_diff(&ds, 0, "session", 1, NULL, NULL);
    assert_diff(&ds, 1, "person", 1, NULL, NULL);
    assert_false(dumps_equal(a, b));
    srv_rec_free(b);

    b = make_full(MID, false);
    assert_int_equal(srv_rec_set_member(b, "bob.x", NULL, 0), 0);
    assert_one_diff(a, b, "member", 0, "bob.x", NULL);
    srv_rec_free(b);

    b = make_full(MID, false);
    assert_int_equal(srv_rec_set_member(b, "aaron", "viewer", 2), 0);
    assert_one_diff(a, b, "member", 0, "aaron", NULL);
    srv_rec_free(b);

    b = make_full(MID, false);
    assert_int_equal(srv_rec_set_member(b, "alice", "associate", 5), 0);
    assert_one_diff(a, b, "member", 0, "alice", "role");
    srv_rec_free(b);

    b = make_full(MID, false);
    assert_int_equal(srv_rec_set_member(b, "z-9", "associate", 300001), 0);
    assert_one_diff(a, b, "member", 0, "z-9", "seq");
    srv_rec_free(b);

    srv_rec_free(a);
}

/* Many differences come in the documented order, all of them counted. */
static void test_diff_order(void **state)
{
    (void)state;
    struct srv_rec *a = make_full(MID, false), *b = make_full(MID, false);
    struct diffs ds = {0};

    set(&b->meeting, "abstract", "other");
    set(&b->meeting, "title", "other");
    b->meeting.seq = 1;
    assert_int_equal(srv_rec_remove(b, PROTO_T_SESSION, 1), 0);
    set(srv_rec_find(b, PROTO_T_ITEM, 3), "body", "now set");
    srv_rec_find(b, PROTO_T_ITEM, 3)->seq = 99;
    assert_int_equal(srv_rec_add(b, obj(PROTO_T_DOC, 50, 50)), 0);
    assert_int_equal(srv_rec_remove(a, PROTO_T_INTERIM, 11), 0);
    set(srv_rec_find(b, PROTO_T_PERSON, 12), "role", "tsb");
    srv_val_unset(fv(srv_rec_find(b, PROTO_T_PERSON, 12), "name"));
    assert_int_equal(srv_rec_set_member(b, "alice", "viewer", 6), 0);
    assert_int_equal(srv_rec_set_member(b, "zed", "viewer", 1), 0);
    assert_int_equal(srv_rec_set_member(a, "aaa", "viewer", 1), 0);

    assert_int_equal(srv_rec_diff(a, b, collect, &ds), 14);
    size_t i = 0;
    assert_diff(&ds, i++, "meeting", 0, MID, "seq");
    assert_diff(&ds, i++, "meeting", 0, MID, "title");
    assert_diff(&ds, i++, "meeting", 0, MID, "abstract");
    assert_diff(&ds, i++, "session", 1, NULL, NULL);
    assert_diff(&ds, i++, "item", 3, NULL, "seq");
    assert_diff(&ds, i++, "item", 3, NULL, "body");
    assert_diff(&ds, i++, "doc", 50, NULL, NULL);
    assert_diff(&ds, i++, "interim", 11, NULL, NULL);
    assert_diff(&ds, i++, "person", 12, NULL, "name");
    assert_diff(&ds, i++, "person", 12, NULL, "role");
    assert_diff(&ds, i++, "member", 0, "aaa", NULL);
    assert_diff(&ds, i++, "member", 0, "alice", "role");
    assert_diff(&ds, i++, "member", 0, "alice", "seq");
    assert_diff(&ds, i++, "member", 0, "zed", NULL);
    assert_int_equal(ds.n, i);
    /* Without a callback, the same count. */
    assert_int_equal(srv_rec_diff(a, b, NULL, NULL), 14);
    srv_rec_free(a);
    srv_rec_free(b);
}

/* Many objects on both sides, each third one changed: the diff is a merge, so it ends
 * quickly, and finds each. */
static void test_diff_many(void **state)
{
    (void)state;
    struct srv_rec *a = srv_rec_new("m"), *b = srv_rec_new("m");
    const int64_t n = 20000;

    for (int64_t id = 1; id <= n; id++) {
        assert_int_equal(srv_rec_add(a, obj(PROTO_T_ACTION, id, id)), 0);
        if (id % 5 != 0) {
            assert_int_equal(srv_rec_add(b, obj(PROTO_T_ACTION, id, id % 3 == 0 ? 0 : id)), 0);
        }
    }
    /* ids divisible by 5 are on a's side only; of the others, those divisible by 3 differ
     * in seq. */
    size_t want = (size_t)(n / 5) + (size_t)(n / 3 - n / 15);
    assert_int_equal(srv_rec_diff(a, b, NULL, NULL), want);
    struct srv_rec *back = round_trip(a);
    assert_int_equal(srv_rec_diff(a, back, NULL, NULL), 0);
    srv_rec_free(back);
    srv_rec_free(a);
    srv_rec_free(b);
}

/* ---- malformed dumps, built by hand ---- */

enum fault {
    F_NONE,
    F_OK_LIMITS, /* a user of 64 bytes, a role of 15: accepted */
    F_OK_WIDE,   /* integers and headers wider than needed: accepted */
    F_TOP_MAP,
    F_TOP_COUNT,
    F_VERSION,
    F_MEETING_ID,
    F_ID_NOT_STR,
    F_SEQ_FLOAT,
    F_SEQ_TOO_BIG,
    F_MEETING_TYPE,
    F_MEETING_NONZERO_ID,
    F_MEETING_AMONG,
    F_UNKNOWN_TYPE,
    F_OBJ_ARRAY_COUNT,
    F_FEWER_FIELDS,
    F_MORE_FIELDS,
    F_STR_FOR_INT,
    F_INT_FOR_STR,
    F_BOOL_FOR_STR,
    F_ARRAY_FOR_STR,
    F_BIN_FOR_STR,
    F_IDS_EQUAL,
    F_IDS_DECREASING,
    F_TYPES_ORDER,
    F_BAD_UTF8,
    F_SURROGATE,
    F_NUL_IN_STR,
    F_COUNT_LIE,
    F_STR_LEN_LIE,
    F_TRAILING,
    F_MEMBER_DUP,
    F_MEMBER_ORDER,
    F_MEMBER_USER_LONG,
    F_MEMBER_ROLE_LONG,
    F_MEMBER_FIELDS,
    F_MEMBER_SEQ_STR,
    F_COUNT
};

static void pk_str(msgpack_packer *pk, const char *s, size_t len)
{
    assert_int_equal(msgpack_pack_str(pk, len), 0);
    assert_int_equal(msgpack_pack_str_body(pk, s, len), 0);
}

static void pk_cstr(msgpack_packer *pk, const char *s)
{
    pk_str(pk, s, strlen(s));
}

static void pk_raw(msgpack_packer *pk, const void *p, size_t n)
{
    struct proto_buf *b = pk->data;
    assert_int_equal(proto_buf_append(b, p, n), 0);
}

/* An integer as int64 on 9 bytes, wider than msgpack-c would write it. */
static void pk_wide(msgpack_packer *pk, int64_t v)
{
    uint8_t raw[9] = {0xd3};
    for (int k = 0; k < 8; k++) {
        raw[1 + k] = (uint8_t)((uint64_t)v >> (56 - 8 * k));
    }
    pk_raw(pk, raw, sizeof(raw));
}

/* The item values [number, title, body]; title is where a wrong kind goes. */
static void pk_item(msgpack_packer *pk, enum fault f, int64_t id, bool title)
{
    size_t nv = f == F_FEWER_FIELDS ? 2 : f == F_MORE_FIELDS ? 4 : 3;

    msgpack_pack_array(pk, f == F_OBJ_ARRAY_COUNT ? 5 : 4);
    pk_cstr(pk, "item");
    msgpack_pack_int64(pk, id);
    msgpack_pack_int64(pk, 1);
    if (f == F_OBJ_ARRAY_COUNT) {
        msgpack_pack_nil(pk);
    }
    msgpack_pack_array(pk, nv);
    pk_cstr(pk, "1");
    if (!title) {
        msgpack_pack_nil(pk);
    } else if (f == F_INT_FOR_STR) {
        msgpack_pack_int64(pk, 5);
    } else if (f == F_BOOL_FOR_STR) {
        msgpack_pack_true(pk);
    } else if (f == F_ARRAY_FOR_STR) {
        msgpack_pack_array(pk, 0);
    } else if (f == F_BIN_FOR_STR) {
        msgpack_pack_bin(pk, 1);
        msgpack_pack_bin_body(pk, "t", 1);
    } else if (f == F_BAD_UTF8) {
        pk_str(pk, "t\xc3\x28", 3);
    } else if (f == F_SURROGATE) {
        pk_str(pk, "\xed\xa0\x80", 3);
    } else if (f == F_NUL_IN_STR) {
        pk_str(pk, "a\0b", 3);
    } else {
        pk_cstr(pk, "Título");
    }
    if (nv >= 3) {
        msgpack_pack_nil(pk);
    }
    if (nv >= 4) {
        msgpack_pack_nil(pk);
    }
}

static void pk_meeting_obj(msgpack_packer *pk, enum fault f, const char *type, int64_t id)
{
    const struct proto_typeinfo *ti = proto_type_info(PROTO_T_MEETING);

    msgpack_pack_array(pk, 4);
    pk_cstr(pk, type);
    msgpack_pack_int64(pk, id);
    msgpack_pack_int64(pk, 3);
    msgpack_pack_array(pk, ti->nfields);
    for (size_t k = 0; k < ti->nfields; k++) {
        if (strcmp(ti->fields[k].name, "deadline_days") == 0) {
            if (f == F_STR_FOR_INT) {
                pk_cstr(pk, "7");
            } else if (f == F_OK_WIDE) {
                pk_wide(pk, 7);
            } else {
                msgpack_pack_int64(pk, 7);
            }
        } else if (strcmp(ti->fields[k].name, "title") == 0) {
            if (f == F_OK_WIDE) {
                uint8_t raw[] = {0xdb, 0, 0, 0, 2, 'T', 'T'}; /* str32 for two bytes */
                pk_raw(pk, raw, sizeof(raw));
            } else {
                pk_cstr(pk, "TT");
            }
        } else {
            msgpack_pack_nil(pk);
        }
    }
}

static void pk_member(msgpack_packer *pk, enum fault f, const char *user, const char *role,
                      int64_t seq)
{
    msgpack_pack_array(pk, f == F_MEMBER_FIELDS ? 2 : 3);
    pk_cstr(pk, user);
    pk_cstr(pk, role);
    if (f == F_MEMBER_FIELDS) {
        return;
    }
    if (f == F_MEMBER_SEQ_STR) {
        pk_cstr(pk, "1");
    } else {
        msgpack_pack_int64(pk, seq);
    }
}

/* A dump of meeting "m" with items 1 and 2 and a doc 3, two members, and fault f. */
static void build(struct proto_buf *b, enum fault f)
{
    msgpack_packer pk;
    char longuser[PROTO_NAME_MAX + 2];

    proto_buf_init(b);
    msgpack_packer_init(&pk, b, proto_buf_msgpack_write);
    if (f == F_TOP_MAP) {
        msgpack_pack_map(&pk, 0);
        return;
    }
    if (f == F_OK_WIDE) {
        uint8_t raw[] = {0xdd, 0, 0, 0, 6}; /* array32 */
        pk_raw(&pk, raw, sizeof(raw));
    } else {
        msgpack_pack_array(&pk, f == F_TOP_COUNT ? 5 : 6);
    }
    msgpack_pack_int64(&pk, f == F_VERSION ? 2 : 1);
    if (f == F_ID_NOT_STR) {
        msgpack_pack_int64(&pk, 1);
    } else if (f == F_STR_LEN_LIE) {
        uint8_t raw[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'm'};
        pk_raw(&pk, raw, sizeof(raw));
    } else {
        pk_cstr(&pk, f == F_MEETING_ID ? "n" : "m");
    }
    if (f == F_SEQ_FLOAT) {
        msgpack_pack_double(&pk, 9.0);
    } else if (f == F_SEQ_TOO_BIG) {
        msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
    } else if (f == F_OK_WIDE) {
        pk_wide(&pk, 9);
    } else {
        msgpack_pack_int64(&pk, 9);
    }
    pk_meeting_obj(&pk, f, f == F_MEETING_TYPE ? "item" : "meeting",
                   f == F_MEETING_NONZERO_ID ? 1 : 0);

    if (f == F_COUNT_LIE) {
        uint8_t raw[] = {0xdd, 0x3b, 0x9a, 0xca, 0x00}; /* a billion objects */
        pk_raw(&pk, raw, sizeof(raw));
    } else if (f == F_OK_WIDE) {
        uint8_t raw[] = {0xdc, 0, 3}; /* array16 */
        pk_raw(&pk, raw, sizeof(raw));
    } else {
        msgpack_pack_array(&pk, f == F_TYPES_ORDER || f == F_MEETING_AMONG ? 4 : 3);
    }
    pk_item(&pk, f, 1, true);
    pk_item(&pk, f, f == F_IDS_EQUAL ? 1 : f == F_IDS_DECREASING ? 0 : 2, false);
    msgpack_pack_array(&pk, 4);
    pk_cstr(&pk, f == F_UNKNOWN_TYPE ? "docs" : "doc");
    msgpack_pack_int64(&pk, 3);
    msgpack_pack_int64(&pk, -2);
    msgpack_pack_array(&pk, 6);
    for (int k = 0; k < 6; k++) {
        if (k == 4) {
            msgpack_pack_int64(&pk, 1); /* item */
        } else {
            msgpack_pack_nil(&pk);
        }
    }
    if (f == F_TYPES_ORDER) {
        pk_item(&pk, f, 4, false);
    } else if (f == F_MEETING_AMONG) {
        pk_meeting_obj(&pk, f, "meeting", 5);
    }

    msgpack_pack_array(&pk, 2);
    memset(longuser, 'u', sizeof(longuser) - 1);
    longuser[f == F_OK_LIMITS ? PROTO_NAME_MAX : PROTO_NAME_MAX + 1] = '\0';
    const char *first = f == F_MEMBER_ORDER ? "bob" : "alice";
    const char *second = f == F_MEMBER_ORDER || f == F_MEMBER_DUP ? "alice" : "bob";
    if (f == F_OK_LIMITS || f == F_MEMBER_USER_LONG) {
        second = longuser;
    }
    pk_member(&pk, f, first, f == F_OK_LIMITS ? "fifteen-bytes-r" : "editor", 1);
    pk_member(&pk, f, second, f == F_MEMBER_ROLE_LONG ? "sixteen-bytes-rr" : "viewer", 2);
    if (f == F_TRAILING) {
        msgpack_pack_nil(&pk);
    }
}

static void test_undump_rejects(void **state)
{
    (void)state;
    struct proto_buf b;
    struct srv_rec *rec = NULL;

    for (int f = 0; f < F_COUNT; f++) {
        build(&b, (enum fault)f);
        rec = (struct srv_rec *)1;
        int rc = srv_rec_undump("m", b.data, b.len, &rec);
        if (f == F_NONE || f == F_OK_LIMITS || f == F_OK_WIDE) {
            if (rc != 0) {
                fail_msg("fault %d: rc %d, want 0", f, rc);
            }
            assert_int_equal(rec->seq, 9);
            assert_int_equal(rec->meeting.seq, 3);
            assert_string_equal(fv(&rec->meeting, "title")->s, "TT");
            assert_int_equal(fv(&rec->meeting, "deadline_days")->i, 7);
            assert_false(fv(&rec->meeting, "status")->set); /* nil replaced the default */
            assert_int_equal(rec->objs[PROTO_T_ITEM].n, 2);
            assert_string_equal(fv(srv_rec_find(rec, PROTO_T_ITEM, 1), "title")->s, "Título");
            assert_int_equal(srv_rec_find(rec, PROTO_T_DOC, 3)->seq, -2);
            assert_int_equal(fv(srv_rec_find(rec, PROTO_T_DOC, 3), "item")->i, 1);
            assert_int_equal(rec->nmembers, 2);
            assert_int_equal(rec->members[1].seq, 2);
            /* What is read dumps canonically, and that reads back the same. */
            struct srv_rec *back = round_trip(rec);
            assert_int_equal(srv_rec_diff(rec, back, NULL, NULL), 0);
            srv_rec_free(back);
            srv_rec_free(rec);
        } else {
            if (rc != PROTO_EINVAL) {
                fail_msg("fault %d: rc %d, want PROTO_EINVAL", f, rc);
            }
            assert_null(rec);
        }
        proto_buf_free(&b, 0);
    }

    /* Arguments. */
    build(&b, F_NONE);
    assert_int_equal(srv_rec_undump(NULL, b.data, b.len, &rec), PROTO_EINVAL);
    assert_int_equal(srv_rec_undump("m", b.data, b.len, NULL), PROTO_EINVAL);
    assert_int_equal(srv_rec_undump("m", NULL, 0, &rec), PROTO_EINVAL);
    assert_int_equal(srv_rec_undump("m", b.data, 0, &rec), PROTO_EINVAL);
    assert_null(rec);
    char longid[PROTO_NAME_MAX + 2];
    memset(longid, 'm', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(srv_rec_undump(longid, b.data, b.len, &rec), PROTO_EINVAL);
    proto_buf_free(&b, 0);
}

/* ---- damaged dumps ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64: a fixed seed, so a failure repeats. */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A damaged dump either fails or is a record that round trips. */
static void check_damaged(const uint8_t *p, size_t len)
{
    struct srv_rec *rec = NULL;
    int rc = srv_rec_undump(MID, p, len, &rec);

    if (rc != 0) {
        assert_int_equal(rc, PROTO_EINVAL);
        assert_null(rec);
        return;
    }
    struct srv_rec *back = round_trip(rec);
    assert_int_equal(srv_rec_diff(rec, back, NULL, NULL), 0);
    srv_rec_free(back);
    srv_rec_free(rec);
}

static void test_truncation_and_flips(void **state)
{
    (void)state;
    struct srv_rec *rec = make_full(MID, false), *back = NULL;
    struct proto_buf d;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t accepted = 0;

    dump(rec, &d);
    /* Every cut is an error: a dump's counts promise more than a prefix holds. Each cut
     * is a copy of its own, so that ASan sees a read past it. */
    for (size_t n = 0; n < d.len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, d.data, n);
        back = (struct srv_rec *)1;
        assert_int_equal(srv_rec_undump(MID, cut, n, &back), PROTO_EINVAL);
        assert_null(back);
        free(cut);
    }

    uint8_t *copy = malloc(d.len);
    assert_non_null(copy);
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, d.data, d.len);
        int flips = 1 + (int)(rng_next(&seed) % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = rng_next(&seed) % d.len;
            uint64_t r = rng_next(&seed);
            /* Half flip one bit, half put a byte that is often a header. */
            copy[at] = (r & 1) ? copy[at] ^ (uint8_t)(1u << ((r >> 1) % 8)) : (uint8_t)(r >> 8);
        }
        size_t len = d.len;
        if (round % 10 == 0) {
            len = rng_next(&seed) % d.len; /* damaged and cut */
        }
        struct srv_rec *tmp = NULL;
        if (srv_rec_undump(MID, copy, len, &tmp) == 0) {
            accepted++;
            srv_rec_free(tmp);
        }
        check_damaged(copy, len);
    }
    /* Some flips land in values and still make a dump (a changed letter, seq or id). */
    assert_true(accepted > 0);
    free(copy);
    proto_buf_free(&d, 0);
    srv_rec_free(rec);
}

/* A 1 MiB text of multi-byte characters round trips, and a change to its last byte is a
 * difference of that field. */
static void test_big_text(void **state)
{
    (void)state;
    const size_t size = 1024 * 1024;
    const char unit[] = "é€𝄞a"; /* 2 + 3 + 4 + 1 bytes */
    const size_t ulen = sizeof(unit) - 1;
    char *text = malloc(size + 1);
    struct srv_rec *a = make_full(MID, false), *b = NULL, *back = NULL;
    struct proto_buf d;
    size_t n = 0;

    assert_non_null(text);
    while (n + ulen <= size) {
        memcpy(text + n, unit, ulen);
        n += ulen;
    }
    memset(text + n, 'a', size - n);
    text[size] = '\0';
    assert_true(proto_utf8_valid(text, size));
    assert_int_equal(srv_val_set_str(fv(srv_rec_find(a, PROTO_T_ITEM, 2), "body"), text, size), 0);

    back = round_trip(a);
    const struct srv_val *v = fv(srv_rec_find(back, PROTO_T_ITEM, 2), "body");
    assert_int_equal(v->len, size);
    assert_memory_equal(v->s, text, size);
    assert_int_equal(srv_rec_diff(a, back, NULL, NULL), 0);

    b = make_full(MID, false);
    text[size - 1] = 'b';
    assert_int_equal(srv_val_set_str(fv(srv_rec_find(b, PROTO_T_ITEM, 2), "body"), text, size), 0);
    assert_one_diff(a, b, "item", 2, NULL, "body");

    /* Cut inside the big string, or just before its end. */
    dump(a, &d);
    assert_true(d.len > size);
    struct srv_rec *none = NULL;
    assert_int_equal(srv_rec_undump(MID, d.data, d.len / 2, &none), PROTO_EINVAL);
    assert_int_equal(srv_rec_undump(MID, d.data, d.len - 1, &none), PROTO_EINVAL);
    assert_null(none);

    proto_buf_free(&d, 0);
    free(text);
    srv_rec_free(back);
    srv_rec_free(a);
    srv_rec_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_diff_each_field), cmocka_unit_test(test_diff_kinds),
        cmocka_unit_test(test_diff_order),      cmocka_unit_test(test_diff_many),
        cmocka_unit_test(test_undump_rejects),  cmocka_unit_test(test_truncation_and_flips),
        cmocka_unit_test(test_big_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
