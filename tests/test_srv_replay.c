/* test_srv_replay.c - a replay (srv_replay_*) gives the record that applying the same entries
 * one by one (srv_apply_entry) gives: random logs of every kind of entry replayed in chunks
 * onto a record that already holds the entries before, entries that do not fit, fields
 * whose buffered ops pass the bounds, and a large body edited 4,096 times (both durations
 * printed). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "proto_err.h"
#include "proto_util.h"
#include "srv_apply.h"
#include "srv_rec.h"

#define MEETING "m-replay"

/* ---- entries ---- */

struct entry {
    struct db_audit a;
    char *payload; /* malloc'd msgpack */
};

struct log {
    struct entry *v;
    size_t n, cap;
    int64_t seq;
};

static void log_free(struct log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].payload);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends an entry with the next seq; takes sb's buffer. kind, type and id_str must
 * outlive the log (literals). */
static struct entry *log_add(struct log *l, const char *kind, const char *type, int64_t id,
                             const char *id_str, msgpack_sbuffer *sb)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    struct entry *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    e->a.meeting = MEETING;
    e->a.seq = ++l->seq;
    e->a.time_ms = 1685000000000 + e->a.seq;
    e->a.user = "rap";
    e->a.kind = kind;
    e->a.type = type;
    e->a.id_int = id;
    e->a.id_str = id_str;
    e->a.payload_len = sb->size;
    e->payload = msgpack_sbuffer_release(sb);
    e->a.payload = (const uint8_t *)e->payload;
    return e;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* A component of an op as it is written (not necessarily normalized). */
enum { C_SKIP, C_INS, C_DEL, C_DEL_STR };

struct comp {
    int kind;
    size_t n;      /* skip, delete */
    const char *s; /* insert; for C_DEL_STR, a string of n code points */
};

/* The payload of a text entry: {"field": field, "op": [comps...]}. */
static void pack_text(msgpack_sbuffer *sb, const char *field, const struct comp *c, size_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "field");
    pk_str(&pk, field);
    pk_str(&pk, "op");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        switch (c[i].kind) {
        case C_SKIP:
            msgpack_pack_uint64(&pk, c[i].n);
            break;
        case C_INS:
            pk_str(&pk, c[i].s);
            break;
        case C_DEL:
            msgpack_pack_map(&pk, 1);
            pk_str(&pk, "d");
            msgpack_pack_uint64(&pk, c[i].n);
            break;
        default:
            msgpack_pack_map(&pk, 1);
            pk_str(&pk, "d");
            pk_str(&pk, c[i].s);
            break;
        }
    }
}

static void add_text(struct log *l, const char *type, int64_t id, const char *field,
                     const struct comp *c, size_t n)
{
    msgpack_sbuffer sb;
    pack_text(&sb, field, c, n);
    log_add(l, "text", type, id, strcmp(type, "meeting") == 0 ? MEETING : NULL, &sb);
}

/* {"fields": {k1: v1, ...}} with string values (NULL: nil), plus "rapporteur" for the
 * meeting's create. */
static void add_fields(struct log *l, const char *kind, const char *type, int64_t id,
                       const char *const *kv, size_t npairs)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool meeting_create = strcmp(type, "meeting") == 0 && strcmp(kind, "create") == 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, meeting_create ? 2 : 1);
    pk_str(&pk, "fields");
    msgpack_pack_map(&pk, npairs);
    for (size_t i = 0; i < npairs; i++) {
        pk_str(&pk, kv[2 * i]);
        if (kv[2 * i + 1] == NULL) {
            msgpack_pack_nil(&pk);
        } else {
            pk_str(&pk, kv[2 * i + 1]);
        }
    }
    if (meeting_create) {
        pk_str(&pk, "rapporteur");
        pk_str(&pk, "rap");
    }
    log_add(l, kind, type, id, strcmp(type, "meeting") == 0 ? MEETING : NULL, &sb);
}

static void add_raw(struct log *l, const char *kind, const char *type, int64_t id,
                    const char *id_str, const void *bytes, size_t n)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (n > 0) {
        msgpack_sbuffer_write(&sb, bytes, n);
    }
    log_add(l, kind, type, id, id_str, &sb);
}

static void add_member(struct log *l, const char *user, const char *role)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "role");
    if (role == NULL) {
        msgpack_pack_nil(&pk);
    } else {
        pk_str(&pk, role);
    }
    log_add(l, "member", "member", 0, user, &sb);
}

/* ---- comparing records ---- */

/* Off for the test of texts that are not UTF-8. */
static bool utf8_strict = true;

static void assert_valid_str(const struct srv_val *v)
{
    if (!v->set || v->s == NULL || !utf8_strict) {
        return;
    }
    assert_int_equal(v->s[v->len], '\0');
    assert_int_equal(strlen(v->s), v->len);
    assert_true(proto_utf8_valid(v->s, v->len));
}

static void assert_same_obj(const struct srv_obj *a, const struct srv_obj *b)
{
    const struct proto_typeinfo *ti = proto_type_info(a->type);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->created, b->created);
    for (size_t f = 0; f < ti->nfields; f++) {
        const struct srv_val *va = &a->f[f], *vb = &b->f[f];
        assert_int_equal(va->set, vb->set);
        if (!va->set) {
            continue;
        }
        if (ti->fields[f].kind == PROTO_F_INT || ti->fields[f].kind == PROTO_F_ITEMREF) {
            assert_int_equal(va->i, vb->i);
            continue;
        }
        assert_valid_str(va);
        assert_valid_str(vb);
        assert_int_equal(va->s == NULL, vb->s == NULL);
        if (va->s != NULL) {
            assert_int_equal(va->len, vb->len);
            assert_memory_equal(va->s, vb->s, va->len);
        }
    }
}

/* Every object's every field value and seq, the members, and the record's seq. */
static void assert_same_record(const struct srv_rec *a, const struct srv_rec *b)
{
    assert_int_equal(a->seq, b->seq);
    assert_same_obj(&a->meeting, &b->meeting);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        assert_int_equal(a->objs[t].n, b->objs[t].n);
        for (size_t i = 0; i < a->objs[t].n; i++) {
            assert_same_obj(a->objs[t].v[i], b->objs[t].v[i]);
        }
    }
    assert_int_equal(a->nmembers, b->nmembers);
    for (size_t i = 0; i < a->nmembers; i++) {
        assert_string_equal(a->members[i].user, b->members[i].user);
        assert_string_equal(a->members[i].role, b->members[i].role);
        assert_int_equal(a->members[i].seq, b->members[i].seq);
    }
}

/* ---- replaying both ways ---- */

static void apply_all(struct srv_rec *rec, const struct log *l, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        assert_int_equal(srv_apply_entry(rec, &l->v[i].a), 0);
    }
}

static void replay_all(struct srv_rec *rec, const struct log *l, size_t from, size_t to)
{
    struct srv_replay *r = srv_replay_new(rec);
    assert_non_null(r);
    for (size_t i = from; i < to; i++) {
        assert_int_equal(srv_replay_add(r, &l->v[i].a), 0);
        assert_int_equal(rec->seq, l->v[i].a.seq); /* rec->seq follows the entries added */
    }
    assert_int_equal(srv_replay_finish(r), 0);
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: fixed seeds give the same logs on every machine. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717u;
}

static size_t rnd(uint64_t *s, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(s) >> 11) % n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- random logs ---- */

static const char *const words[] = {
    "a", "hello ", "é", "ça va ", "中", "中文字 ", "😀", "🎉x", "naïve 😀 中", "\n", "Z",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Strings of 1..8 code points, for deletes written {"d": "..."}. */
static const char *const dstr[] = {"x",     "éé",     "中x中",   "😀abc",
                                   "ab😀cd", "123456", "é中😀abc", "abcdefgh"};

/* A text field that can be edited, in the generator's own record. */
struct target {
    const char *type; /* literal */
    enum proto_type t;
    int64_t id;
    const char *field; /* literal */
};

struct gen {
    uint64_t rng;
    struct srv_rec *rec; /* the log applied one by one as it is made */
    struct log log;
    int64_t next_id;
    struct target cur;
    bool have_cur;
};

static void gen_apply_last(struct gen *g)
{
    assert_int_equal(srv_apply_entry(g->rec, &g->log.v[g->log.n - 1].a), 0);
}

static struct srv_val *target_val(struct gen *g, const struct target *tg)
{
    struct srv_obj *o = srv_rec_find(g->rec, tg->t, tg->id);
    if (o == NULL) {
        return NULL;
    }
    return &o->f[proto_field_find(tg->t, tg->field, strlen(tg->field))];
}

/* A random existing object of type item, action or decision; false when there is none. */
static bool gen_pick_obj(struct gen *g, struct target *tg)
{
    static const struct {
        const char *type;
        enum proto_type t;
        const char *field;
    } kinds[] = {
        {"item", PROTO_T_ITEM, "body"},
        {"action", PROTO_T_ACTION, "text"},
        {"decision", PROTO_T_DECISION, "text"},
    };
    size_t k = rnd(&g->rng, 3);
    for (size_t tries = 0; tries < 3; tries++, k = (k + 1) % 3) {
        const struct srv_objvec *ov = &g->rec->objs[kinds[k].t];
        if (ov->n > 0) {
            tg->type = kinds[k].type;
            tg->t = kinds[k].t;
            tg->field = kinds[k].field;
            tg->id = ov->v[rnd(&g->rng, ov->n)]->id;
            return true;
        }
    }
    return false;
}

/* A random op on a text of len code points, in any of the shapes a log may hold: [], a
 * lone trailing skip, inserts, deletes (as counts or strings), several pieces. */
static size_t gen_op(struct gen *g, size_t len, struct comp *c)
{
    size_t n = 0, r = rnd(&g->rng, 100);
    if (r < 4) {
        return 0; /* [] */
    }
    if (r < 7 && len > 0) {
        c[n++] = (struct comp){C_SKIP, 1 + rnd(&g->rng, len), NULL}; /* a no-op with a tail */
        return n;
    }
    if (r < 45 || len == 0) {
        size_t at = rnd(&g->rng, len + 1);
        if (at > 0) {
            c[n++] = (struct comp){C_SKIP, at, NULL};
        }
        c[n++] = (struct comp){C_INS, 0, words[rnd(&g->rng, NWORDS)]};
        if (rnd(&g->rng, 5) == 0 && at < len) {
            c[n++] = (struct comp){C_SKIP, 1 + rnd(&g->rng, len - at), NULL};
        }
        return n;
    }
    if (r < 80) {
        size_t at = rnd(&g->rng, len);
        size_t max = len - at < 8 ? len - at : 8;
        size_t k = 1 + rnd(&g->rng, max);
        if (at > 0) {
            c[n++] = (struct comp){C_SKIP, at, NULL};
        }
        if (rnd(&g->rng, 3) == 0) {
            c[n++] = (struct comp){C_DEL_STR, k, dstr[k - 1]};
        } else {
            c[n++] = (struct comp){C_DEL, k, NULL};
        }
        if (r < 60) {
            c[n++] = (struct comp){C_INS, 0, words[rnd(&g->rng, NWORDS)]};
        }
        return n;
    }
    /* Several pieces left to right. */
    size_t pos = 0, pieces = 2 + rnd(&g->rng, 5);
    for (size_t i = 0; i < pieces; i++) {
        size_t skip = rnd(&g->rng, (len - pos < 40 ? len - pos : 40) + 1);
        if (skip > 0) {
            c[n++] = (struct comp){C_SKIP, skip, NULL};
            pos += skip;
        }
        if (pos < len && rnd(&g->rng, 2) == 0) {
            size_t k = 1 + rnd(&g->rng, len - pos < 5 ? len - pos : 5);
            c[n++] = (struct comp){C_DEL, k, NULL};
            pos += k;
        } else {
            c[n++] = (struct comp){C_INS, 0, words[rnd(&g->rng, NWORDS)]};
        }
    }
    return n;
}

static void gen_text(struct gen *g)
{
    if (!g->have_cur || rnd(&g->rng, 100) >= 80 || target_val(g, &g->cur) == NULL) {
        /* A new field: the meeting's abstract or an object's text. */
        if (rnd(&g->rng, 5) == 0 || !gen_pick_obj(g, &g->cur)) {
            g->cur = (struct target){"meeting", PROTO_T_MEETING, 0, "abstract"};
        }
        g->have_cur = true;
    }
    struct srv_val *v = target_val(g, &g->cur);
    size_t len = v->set && v->s ? proto_utf8_count(v->s, v->len) : 0;
    struct comp c[16];
    size_t n = gen_op(g, len, c);
    add_text(&g->log, g->cur.type, g->cur.id, g->cur.field, c, n);
    gen_apply_last(g);
}

static void gen_step(struct gen *g)
{
    size_t r = rnd(&g->rng, 100);
    struct target tg;
    char num[16];
    if (r < 5) {
        int64_t id = g->next_id++;
        size_t k = rnd(&g->rng, 3);
        snprintf(num, sizeof(num), "%lld", (long long)id);
        if (k == 0) {
            const char *kv[] = {"number", num,
                                "title",  words[rnd(&g->rng, NWORDS)],
                                "body",   words[rnd(&g->rng, NWORDS)]};
            add_fields(&g->log, "create", "item", id, kv, rnd(&g->rng, 2) ? 3 : 2);
        } else if (k == 1) {
            const char *kv[] = {"ref", num, "text", words[rnd(&g->rng, NWORDS)]};
            add_fields(&g->log, "create", "action", id, kv, rnd(&g->rng, 2) ? 2 : 1);
        } else {
            const char *kv[] = {"kind", "agreed", "text", words[rnd(&g->rng, NWORDS)]};
            add_fields(&g->log, "create", "decision", id, kv, 2);
        }
        gen_apply_last(g);
    } else if (r < 9) {
        if (rnd(&g->rng, 4) == 0 || !gen_pick_obj(g, &tg)) {
            const char *kv[] = {rnd(&g->rng, 2) ? "title" : "abstract",
                                words[rnd(&g->rng, NWORDS)]};
            add_fields(&g->log, "update", "meeting", 0, kv, 1);
        } else {
            /* A whole new text, or a short field beside it. */
            const char *other = tg.t == PROTO_T_ITEM     ? "title"
                                : tg.t == PROTO_T_ACTION ? "owner"
                                                         : "kind";
            const char *kv[] = {rnd(&g->rng, 2) ? tg.field : other,
                                tg.t == PROTO_T_DECISION ? "noted" : words[rnd(&g->rng, NWORDS)]};
            if (strcmp(kv[0], tg.field) == 0) {
                kv[1] = rnd(&g->rng, 4) == 0 ? NULL : words[rnd(&g->rng, NWORDS)];
            }
            add_fields(&g->log, "update", tg.type, tg.id, kv, 1);
        }
        gen_apply_last(g);
    } else if (r < 11) {
        if (gen_pick_obj(g, &tg)) {
            add_raw(&g->log, "delete", tg.type, tg.id, NULL, "\x80", 1); /* {} */
            gen_apply_last(g);
        }
    } else if (r < 14) {
        static const char *const users[] = {"ann", "bob", "cy"};
        static const char *const roles[] = {"editor", "viewer", "counsellor", NULL};
        add_member(&g->log, users[rnd(&g->rng, 3)], roles[rnd(&g->rng, 4)]);
        gen_apply_last(g);
    } else {
        gen_text(g);
    }
}

static void gen_init(struct gen *g, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    g->rng = seed * 0x9E3779B97F4A7C15u + 1;
    g->rec = srv_rec_new(MEETING);
    assert_non_null(g->rec);
    g->next_id = 1;
    const char *kv[] = {"title", "Replay", "abstract", "Début: 中文 😀."};
    add_fields(&g->log, "create", "meeting", 0, kv, 2);
    gen_apply_last(g);
}

static void gen_free(struct gen *g)
{
    srv_rec_free(g->rec);
    log_free(&g->log);
}

/* Random logs replayed one by one and in chunks, each chunk a replay on a record that
 * holds the chunks before: equal after every chunk. */
static void test_random_logs(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct gen g;
        gen_init(&g, seed);
        size_t entries = 300 + 100 * (size_t)seed;
        while (g.log.n < entries) {
            gen_step(&g);
        }
        struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
        assert_non_null(a);
        assert_non_null(b);
        uint64_t cut = seed;
        for (size_t at = 0; at < g.log.n;) {
            /* The first log in one replay, the others in chunks of 1 to 200 entries. */
            size_t n = seed == 1 ? g.log.n : 1 + rnd(&cut, 200);
            size_t to = at + n < g.log.n ? at + n : g.log.n;
            apply_all(a, &g.log, at, to);
            replay_all(b, &g.log, at, to);
            assert_same_record(a, b);
            at = to;
        }
        assert_same_record(g.rec, b);
        srv_rec_free(a);
        srv_rec_free(b);
        gen_free(&g);
    }
}

/* ---- entries that do not fit ---- */

/* prefix: entries that fit; then bad, then one more entry that fits. One by one, bad fails
 * with PROTO_EINVAL; the replay fails on bad with the same error, returns it for every later
 * entry and from finish, and leaves the record the prefix made. */
static void check_bad(struct log *l, size_t nprefix)
{
    assert_int_equal(l->n, nprefix + 2);
    struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
    assert_non_null(a);
    assert_non_null(b);
    apply_all(a, l, 0, nprefix);
    int64_t seq = a->seq;
    assert_int_equal(srv_apply_entry(a, &l->v[nprefix].a), PROTO_EINVAL);
    assert_int_equal(a->seq, seq);

    /* Part of the prefix in a replay of its own: the failing one starts on a record that
     * holds entries already. */
    replay_all(b, l, 0, 2);
    struct srv_replay *r = srv_replay_new(b);
    assert_non_null(r);
    for (size_t i = 2; i < nprefix; i++) {
        assert_int_equal(srv_replay_add(r, &l->v[i].a), 0);
    }
    assert_int_equal(srv_replay_add(r, &l->v[nprefix].a), PROTO_EINVAL);
    assert_int_equal(b->seq, seq);
    assert_int_equal(srv_replay_add(r, &l->v[nprefix + 1].a), PROTO_EINVAL);
    assert_int_equal(srv_replay_finish(r), PROTO_EINVAL);
    assert_same_record(a, b);
    srv_rec_free(a);
    srv_rec_free(b);
}

/* The start of every case: the meeting, item 1 with a body of 11 code points, and edits of
 * it (item 1's body ends "héllo wörld!!", 13 code points) so that the body has ops buffered
 * when the bad entry comes. */
static size_t bad_prefix(struct log *l)
{
    const char *mkv[] = {"title", "Bad"};
    add_fields(l, "create", "meeting", 0, mkv, 1);
    const char *ikv[] = {"number", "1", "body", "héllo wörld"};
    add_fields(l, "create", "item", 1, ikv, 2);
    struct comp c1[] = {{C_SKIP, 11, NULL}, {C_INS, 0, "!"}};
    add_text(l, "item", 1, "body", c1, 2);
    struct comp c2[] = {{C_SKIP, 12, NULL}, {C_INS, 0, "!"}};
    add_text(l, "item", 1, "body", c2, 2);
    return l->n;
}

static void bad_case(const struct comp *c, size_t n, bool after_delete)
{
    struct log l = {0};
    size_t np = bad_prefix(&l);
    if (after_delete) {
        /* The body down to "héllo" (5): ops that fit the 13 before do not fit now. */
        struct comp d[] = {{C_SKIP, 5, NULL}, {C_DEL, 8, NULL}};
        add_text(&l, "item", 1, "body", d, 2);
        np++;
    }
    add_text(&l, "item", 1, "body", c, n);
    struct comp ok[] = {{C_INS, 0, "ok"}};
    add_text(&l, "item", 1, "body", ok, 1);
    check_bad(&l, np);
    log_free(&l);
}

static void test_op_past_the_end(void **state)
{
    (void)state;
    struct comp past[] = {{C_SKIP, 20, NULL}, {C_INS, 0, "x"}};
    bad_case(past, 2, false);
    bad_case(past, 2, true);
    struct comp del_past[] = {{C_SKIP, 10, NULL}, {C_DEL, 4, NULL}};
    bad_case(del_past, 2, false);
    struct comp tail_past[] = {{C_SKIP, 2, NULL}, {C_INS, 0, "é"}, {C_SKIP, 12, NULL}};
    bad_case(tail_past, 3, false);
    /* Fits the 13 code points before the delete, not the 5 after it. */
    struct comp fits_before[] = {{C_SKIP, 7, NULL}, {C_DEL, 3, NULL}};
    bad_case(fits_before, 2, true);
    struct comp lone_tail[] = {{C_SKIP, 6, NULL}};
    bad_case(lone_tail, 1, true);
    struct comp del_str[] = {{C_SKIP, 3, NULL}, {C_DEL_STR, 3, "中x中"}};
    bad_case(del_str, 2, true);

    /* The first op of a field's run (applied on its own) past the end too. */
    struct log l = {0};
    const char *mkv[] = {"title", "Bad"};
    add_fields(&l, "create", "meeting", 0, mkv, 1);
    const char *ikv[] = {"number", "1", "body", "ab"};
    add_fields(&l, "create", "item", 1, ikv, 2);
    struct comp c[] = {{C_SKIP, 3, NULL}, {C_INS, 0, "x"}};
    add_text(&l, "item", 1, "body", c, 2);
    add_text(&l, "item", 1, "body", c, 2);
    check_bad(&l, 2);
    log_free(&l);
}

static void test_unknown_object_or_field(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int64_t id;
        const char *field;
    } cases[] = {
        {"item", 999, "body"}, /* no such item */
        {"action", 1, "text"}, /* no such action (1 is an item) */
        {"item", 1, "colour"}, /* no such field */
        {"item", 1, "title"},  /* not a text field */
        {"item", 1, "number"}, {"meeting", 0, "title"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct log l = {0};
        size_t np = bad_prefix(&l);
        struct comp c[] = {{C_INS, 0, "x"}};
        add_text(&l, cases[i].type, cases[i].id, cases[i].field, c, 1);
        add_text(&l, "item", 1, "body", c, 1);
        check_bad(&l, np);
        log_free(&l);
    }
    /* A deleted item's body: the delete comes between its edits. */
    struct log l = {0};
    bad_prefix(&l);
    add_raw(&l, "delete", "item", 1, NULL, "\x80", 1);
    size_t np = l.n;
    struct comp c[] = {{C_INS, 0, "x"}};
    add_text(&l, "item", 1, "body", c, 1);
    add_text(&l, "meeting", 0, "abstract", c, 1);
    check_bad(&l, np);
    log_free(&l);
}

/* Payloads that are not {"field", "op"} with a well-formed op. */
#define B(lit) lit, sizeof(lit) - 1
/* {"field": "body", "op": ...} (octal escapes: a letter after one is not taken into it) */
#define FIELD_BODY_OP "\202\245field\244body\242op"
static void test_bad_payload(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        const char *bytes;
        size_t n;
    } cases[] = {
        {"item", B("\xc1")},                                       /* not msgpack */
        {"item", B("")},                                           /* nothing */
        {"item", B("\201\245field\244body")},                      /* no op */
        {"item", B("\201\242op\221\241x")},                        /* no field */
        {"item", B("\202\245field\001\242op\221\241x")},           /* field not a string */
        {"item", B("\222\245field\244body")},                      /* an array, not a map */
        {"item", B(FIELD_BODY_OP "\241x")},                        /* op not an array */
        {"item", B(FIELD_BODY_OP "\222\000\241x")},                /* a zero count */
        {"item", B(FIELD_BODY_OP "\221\240")},                     /* an empty insert */
        {"item", B(FIELD_BODY_OP "\221\242\303\050")},             /* bad UTF-8 */
        {"item", B(FIELD_BODY_OP "\221\242x\000")},                /* a NUL byte */
        {"item", B(FIELD_BODY_OP "\221\201\241x\001")},            /* {"x": 1} */
        {"item", B(FIELD_BODY_OP "\221\313\077\360\0\0\0\0\0\0")}, /* a float */
        {"item", B(FIELD_BODY_OP "\221\377")},                     /* a negative count */
        {"gadget", B(FIELD_BODY_OP "\221\241x")},                  /* no such type */
    };
    /* The same bytes with a good op do fit, both ways. */
    struct log good = {0};
    size_t ngood = bad_prefix(&good);
    add_raw(&good, "text", "item", 1, NULL, B(FIELD_BODY_OP "\221\241x"));
    struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
    assert_non_null(a);
    assert_non_null(b);
    apply_all(a, &good, 0, good.n);
    replay_all(b, &good, 0, good.n);
    assert_same_record(a, b);
    assert_string_equal(srv_rec_find(b, PROTO_T_ITEM, 1)->f[2].s, "xhéllo wörld!!");
    assert_int_equal(b->seq, (int64_t)ngood + 1);
    srv_rec_free(a);
    srv_rec_free(b);
    log_free(&good);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct log l = {0};
        size_t np = bad_prefix(&l);
        add_raw(&l, "text", cases[i].type, 1, NULL, cases[i].bytes, cases[i].n);
        struct comp c[] = {{C_INS, 0, "x"}};
        add_text(&l, "item", 1, "body", c, 1);
        check_bad(&l, np);
        log_free(&l);
    }
}

/* Fields whose buffered ops pass the bounds (4 MiB inserted, 64k components) are applied
 * early and go on buffering: the same texts as one by one. Item 1 takes large inserts, item
 * 2 (edited in turn with it) ops of many small inserts far apart. */
static void test_bounds(void **state)
{
    (void)state;
    uint64_t rng = 77;
    struct log l = {0};
    const char *mkv[] = {"title", "Bounds"};
    add_fields(&l, "create", "meeting", 0, mkv, 1);
    size_t base = 1024 * 1024;
    char *body = malloc(base + 1);
    assert_non_null(body);
    for (size_t i = 0; i < base; i++) {
        body[i] = (char)('a' + i % 26);
    }
    body[base] = '\0';
    const char *ikv[] = {"number", "1", "body", body};
    add_fields(&l, "create", "item", 1, ikv, 2);
    ikv[1] = "2";
    add_fields(&l, "create", "item", 2, ikv, 2);

    /* 300 inserts of 16 KiB (of "é": 8,192 code points each): 4.7 MiB inserted. */
    size_t big = 16 * 1024;
    char *ins = malloc(big + 1);
    assert_non_null(ins);
    for (size_t i = 0; i < big; i += 2) {
        memcpy(ins + i, "\xc3\xa9", 2);
    }
    ins[big] = '\0';
    /* 200 ops of 400 one-letter inserts each, about 1,000 code points apart: some 160,000
     * components once composed. */
    struct comp *many = malloc(801 * sizeof(*many));
    assert_non_null(many);
    for (int i = 0; i < 300; i++) {
        size_t at = rnd(&rng, 64 * 1024 + 1); /* near the start: one by one stays quick */
        struct comp c[] = {{C_SKIP, at, NULL}, {C_INS, 0, ins}};
        add_text(&l, "item", 1, "body", at ? c : c + 1, at ? 2 : 1);
        if (i >= 200) {
            continue;
        }
        size_t n = 0;
        for (int k = 0; k < 400; k++) {
            many[n++] = (struct comp){C_SKIP, 1 + rnd(&rng, 2000), NULL};
            many[n++] = (struct comp){C_INS, 0, k % 2 ? "x" : "中"};
        }
        add_text(&l, "item", 2, "body", many, n);
    }
    struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
    assert_non_null(a);
    assert_non_null(b);
    apply_all(a, &l, 0, l.n);
    replay_all(b, &l, 0, l.n);
    assert_same_record(a, b);
    srv_rec_free(a);
    srv_rec_free(b);
    free(many);
    free(ins);
    free(body);
    log_free(&l);
}

/* A run of edits over many fields (no other entry between them): each buffered on its own. */
static void test_many_fields(void **state)
{
    (void)state;
    struct gen g;
    gen_init(&g, 99);
    char num[16];
    for (int64_t id = 1; id <= 60; id++) {
        snprintf(num, sizeof(num), "%lld", (long long)id);
        const char *kv[] = {"ref", num, "text", words[id % NWORDS]};
        add_fields(&g.log, "create", id % 2 ? "action" : "decision", id, id % 2 ? kv : kv + 2,
                   id % 2 ? 2 : 1);
        gen_apply_last(&g);
    }
    size_t created = g.log.n;
    for (int i = 0; i < 3000; i++) {
        gen_text(&g);
    }
    struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
    assert_non_null(a);
    assert_non_null(b);
    apply_all(a, &g.log, 0, g.log.n);
    replay_all(b, &g.log, 0, created);
    replay_all(b, &g.log, created, g.log.n);
    assert_same_record(a, b);
    assert_same_record(g.rec, b);
    srv_rec_free(a);
    srv_rec_free(b);
    gen_free(&g);
}

/* A log may hold a text that is not UTF-8 (a create does not check its values): positions
 * still count as they do one by one, even in a text that starts with a continuation byte. */
static void test_not_utf8(void **state)
{
    (void)state;
    struct log l = {0};
    const char *mkv[] = {"title", "Bytes"};
    add_fields(&l, "create", "meeting", 0, mkv, 1);
    const char *ikv[] = {"number", "1", "body",
                         "\x80"
                         "ab"};
    add_fields(&l, "create", "item", 1, ikv, 2);
    const char *akv[] = {"text", "a\xff\xc3"
                                 "b\x80\x80"
                                 "c"};
    add_fields(&l, "create", "action", 2, akv, 1);
    /* Item 1: "\x80yab", "x\x80yab" (4 code points one by one: "x\x80" is one), "x\x80yabz",
     * "yabz", "yabéz". */
    struct comp c1[] = {{C_SKIP, 1, NULL}, {C_INS, 0, "y"}};
    add_text(&l, "item", 1, "body", c1, 2);
    struct comp c2[] = {{C_INS, 0, "x"}};
    add_text(&l, "item", 1, "body", c2, 1);
    struct comp c3[] = {{C_SKIP, 4, NULL}, {C_INS, 0, "z"}};
    add_text(&l, "item", 1, "body", c3, 2);
    struct comp c4[] = {{C_DEL, 1, NULL}};
    add_text(&l, "item", 1, "body", c4, 1);
    struct comp c5[] = {{C_SKIP, 3, NULL}, {C_INS, 0, "é"}, {C_SKIP, 1, NULL}};
    add_text(&l, "item", 1, "body", c5, 3);
    /* Action 2: invalid bytes inside the text, buffered as usual. */
    struct comp d1[] = {{C_SKIP, 2, NULL}, {C_INS, 0, "中"}};
    add_text(&l, "action", 2, "text", d1, 2);
    struct comp d2[] = {{C_SKIP, 1, NULL}, {C_DEL, 3, NULL}, {C_INS, 0, "😀"}};
    add_text(&l, "action", 2, "text", d2, 3);
    struct comp d3[] = {{C_SKIP, 3, NULL}, {C_INS, 0, "!"}};
    add_text(&l, "action", 2, "text", d3, 2);
    struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
    assert_non_null(a);
    assert_non_null(b);
    apply_all(a, &l, 0, l.n);
    replay_all(b, &l, 0, l.n);
    utf8_strict = false;
    assert_same_record(a, b);
    utf8_strict = true;
    assert_string_equal(srv_rec_find(b, PROTO_T_ITEM, 1)->f[2].s, "yabéz");
    assert_string_equal(srv_rec_find(b, PROTO_T_ACTION, 2)->f[5].s, "a😀b\x80\x80!c");
    srv_rec_free(a);
    srv_rec_free(b);
    log_free(&l);
}

/* 4,096 small edits (inserts of about 20 bytes, deletes of 1 to 8 code points) at random
 * places of a 900 KB body: the same body both ways. Prints how long each took. */
static void test_large_body(void **state)
{
    (void)state;
    uint64_t rng = 4096;
    struct log l = {0};
    const char *mkv[] = {"title", "Large"};
    add_fields(&l, "create", "meeting", 0, mkv, 1);
    static const char unit[] = "Lorem ipsum dolor sit amet, é 中文 😀 consectetur. ";
    size_t ulen = strlen(unit), size = 900 * 1000;
    char *body = malloc(size + ulen + 1);
    assert_non_null(body);
    size_t blen = 0;
    while (blen < size) {
        memcpy(body + blen, unit, ulen);
        blen += ulen;
    }
    body[blen] = '\0';
    const char *ikv[] = {"number", "1", "body", body};
    add_fields(&l, "create", "item", 1, ikv, 2);
    size_t len = proto_utf8_count(body, blen);
    static const char *const ins[] = {
        "inserted text, twenty",
        "é twenty bytes or so",
        "中文 twenty bytes..",
        "😀 about 20 bytes!",
    };
    for (int i = 0; i < 4096; i++) {
        size_t at = rnd(&rng, len + 1);
        struct comp c[2];
        size_t n = 0;
        if (at > 0) {
            c[n++] = (struct comp){C_SKIP, at, NULL};
        }
        if (rnd(&rng, 10) < 6 || at == len) {
            const char *s = ins[rnd(&rng, 4)];
            c[n++] = (struct comp){C_INS, 0, s};
            len += proto_utf8_count(s, strlen(s));
        } else {
            size_t k = 1 + rnd(&rng, len - at < 8 ? len - at : 8);
            c[n++] = (struct comp){C_DEL, k, NULL};
            len -= k;
        }
        add_text(&l, "item", 1, "body", c, n);
    }
    struct srv_rec *a = srv_rec_new(MEETING), *b = srv_rec_new(MEETING);
    assert_non_null(a);
    assert_non_null(b);
    apply_all(a, &l, 0, 2);
    replay_all(b, &l, 0, 2);
    double t0 = now_ms();
    apply_all(a, &l, 2, l.n);
    double t1 = now_ms();
    replay_all(b, &l, 2, l.n);
    double t2 = now_ms();
    printf("replay of 4,096 edits of a %zu-byte body: one by one %.1f ms, srv_replay %.1f ms\n",
           blen, t1 - t0, t2 - t1);
    assert_same_record(a, b);
    const struct srv_val *v = &srv_rec_find(b, PROTO_T_ITEM, 1)->f[2];
    assert_int_equal(proto_utf8_count(v->s, v->len), len);
    srv_rec_free(a);
    srv_rec_free(b);
    free(body);
    log_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_logs),
        cmocka_unit_test(test_op_past_the_end),
        cmocka_unit_test(test_unknown_object_or_field),
        cmocka_unit_test(test_bad_payload),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_not_utf8),
        cmocka_unit_test(test_large_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
