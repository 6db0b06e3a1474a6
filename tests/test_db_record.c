/* test_db_record.c - meeting records in the database: object tables, members, the audit log
 * and checkpoints, against real files in a temporary folder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db.h"
#include "testutil.h"

#define LATEST_SCHEMA 4
#define PWHASH        "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
#define MAX_ROWS      64
#define VAL_MAX       256

struct fixture {
    char *dir;
    char path[4096];
    struct db *db;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int n;

    assert_non_null(f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    n = snprintf(f->path, sizeof(f->path), "%s/confer.db", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof(f->path));
    assert_int_equal(db_open(&f->db, f->path, DB_CREATE), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    db_close(f->db);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* Runs SQL on the file with a plain SQLite connection, behind db/'s back. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *c = NULL;
    char *err = NULL;

    assert_int_equal(sqlite3_open(path, &c), SQLITE_OK);
    if (sqlite3_exec(c, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s: %s", sql, err);
    }
    sqlite3_close(c);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open(path, &c), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

/* ---- values ---- */

struct vals {
    struct db_val v[PROTO_MAX_FIELDS];
};

static int field(enum proto_type t, const char *name)
{
    int i = proto_field_find(t, name, strlen(name));

    assert_true(i >= 0);
    return i;
}

static void set_s(struct vals *vs, enum proto_type t, const char *name, const char *s)
{
    struct db_val *v = &vs->v[field(t, name)];

    v->set = true;
    v->s = s;
    v->len = strlen(s);
}

static void set_i(struct vals *vs, enum proto_type t, const char *name, int64_t i)
{
    struct db_val *v = &vs->v[field(t, name)];

    v->set = true;
    v->i = i;
}

static void unset(struct vals *vs, enum proto_type t, const char *name)
{
    memset(&vs->v[field(t, name)], 0, sizeof(vs->v[0]));
}

/* A value for every field of t, of its kind; itemref points at item. */
static void fill_all(struct vals *vs, enum proto_type t, int64_t item)
{
    const struct proto_typeinfo *ti = proto_type_info(t);

    memset(vs, 0, sizeof(*vs));
    for (size_t i = 0; i < ti->nfields; i++) {
        const struct proto_field *fd = &ti->fields[i];
        struct db_val *v = &vs->v[i];

        v->set = true;
        switch (fd->kind) {
        case PROTO_F_STR:
            v->s = fd->name;
            break;
        case PROTO_F_TEXT:
            v->s = "Line one, «quoted» — ünïcode\nline two\n";
            break;
        case PROTO_F_INT:
            v->i = 42;
            break;
        case PROTO_F_DATE:
            v->s = "2023-06-12";
            break;
        case PROTO_F_TIME:
            v->s = "09:30";
            break;
        case PROTO_F_ENUM:
            v->s = fd->values[1] != NULL ? fd->values[1] : fd->values[0];
            break;
        case PROTO_F_ITEMREF:
            v->i = item;
            break;
        case PROTO_F_TZ:
            v->s = "Europe/Geneva";
            break;
        case PROTO_F_NUMBER:
            v->s = "4.1";
            break;
        case PROTO_F_COMPUTED:
            v->s = "ignored"; /* must not be stored, nor fail */
            break;
        }
        if (v->s != NULL) {
            v->len = strlen(v->s);
        }
    }
}

/* ---- collecting rows ---- */

struct row {
    int64_t id, seq;
    struct {
        bool set;
        char s[VAL_MAX];
        size_t len;
        int64_t i;
    } f[PROTO_MAX_FIELDS];
};

struct rows {
    enum proto_type t;
    int n;
    struct row r[MAX_ROWS];
};

static int collect_obj(void *ud, int64_t id, int64_t seq, const struct db_val *vals)
{
    struct rows *rs = ud;
    const struct proto_typeinfo *ti = proto_type_info(rs->t);
    struct row *r = NULL;

    assert_true(rs->n < MAX_ROWS);
    r = &rs->r[rs->n++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->seq = seq;
    for (size_t i = 0; i < ti->nfields; i++) {
        r->f[i].set = vals[i].set;
        r->f[i].i = vals[i].i;
        r->f[i].len = vals[i].len;
        if (vals[i].set && vals[i].s != NULL) {
            assert_true(vals[i].len < VAL_MAX);
            memcpy(r->f[i].s, vals[i].s, vals[i].len);
            assert_int_equal(vals[i].s[vals[i].len], '\0'); /* NUL-terminated */
        }
    }
    return 0;
}

static void load(struct db *db, const char *meeting, enum proto_type t, struct rows *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->t = t;
    assert_int_equal(db_obj_load(db, meeting, t, collect_obj, rs), 0);
}

/* The row holds exactly what vs held (COMPUTED fields read unset; unset text reads ""). */
static void assert_row(const struct row *r, enum proto_type t, const struct vals *vs)
{
    const struct proto_typeinfo *ti = proto_type_info(t);

    for (size_t i = 0; i < ti->nfields; i++) {
        const struct proto_field *fd = &ti->fields[i];
        const struct db_val *v = &vs->v[i];

        if (fd->kind == PROTO_F_COMPUTED) {
            assert_false(r->f[i].set);
        } else if (fd->kind == PROTO_F_TEXT) {
            assert_true(r->f[i].set);
            assert_int_equal(r->f[i].len, v->set ? v->len : 0);
            assert_memory_equal(r->f[i].s, v->set ? v->s : "", r->f[i].len);
        } else if (!v->set) {
            assert_false(r->f[i].set);
        } else if (fd->kind == PROTO_F_INT || fd->kind == PROTO_F_ITEMREF) {
            assert_true(r->f[i].set);
            assert_true(r->f[i].i == v->i);
        } else {
            assert_true(r->f[i].set);
            assert_int_equal(r->f[i].len, v->len);
            assert_memory_equal(r->f[i].s, v->s, v->len);
        }
    }
}

/* A meeting row with its required fields only. */
static void add_meeting(struct db *db, const char *id, int64_t seq)
{
    struct vals vs;

    memset(&vs, 0, sizeof(vs));
    set_i(&vs, PROTO_T_MEETING, "deadline_days", 7);
    set_s(&vs, PROTO_T_MEETING, "status", "draft");
    assert_int_equal(db_obj_put(db, id, PROTO_T_MEETING, 0, seq, vs.v), 0);
}

static void put_doc(struct db *db, const char *meeting, int64_t id, const char *ref,
                    const char *rev, int64_t item, int expect)
{
    struct vals vs;

    memset(&vs, 0, sizeof(vs));
    if (ref != NULL) {
        set_s(&vs, PROTO_T_DOC, "ref", ref);
    }
    if (rev != NULL) {
        set_s(&vs, PROTO_T_DOC, "revision", rev);
    }
    if (item != 0) {
        set_i(&vs, PROTO_T_DOC, "item", item);
    }
    assert_int_equal(db_obj_put(db, meeting, PROTO_T_DOC, id, 1, vs.v), expect);
}

static void put_item(struct db *db, const char *meeting, int64_t id, const char *title, int64_t seq)
{
    struct vals vs;

    memset(&vs, 0, sizeof(vs));
    set_s(&vs, PROTO_T_ITEM, "title", title);
    assert_int_equal(db_obj_put(db, meeting, PROTO_T_ITEM, id, seq, vs.v), 0);
}

/* ---- schema ---- */

static void test_schema_version_and_tables(void **state)
{
    struct fixture *f = *state;
    int version = 0;
    char sql[256];

    assert_int_equal(db_schema_version(f->db, &version), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE name = '%s'",
                 proto_type_info((enum proto_type)t)->table);
        assert_int_equal(raw_int(f->path, sql), 1);
    }
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                      " ('members', 'audit', 'checkpoints', 'counters')"),
                     4);
    /* The audit log is tied to nothing: no foreign key, nothing cascades into it. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_foreign_key_list('audit')"), 0);
    assert_int_equal(
        raw_int(f->path, "SELECT count(*) FROM pragma_foreign_key_list('checkpoints')"), 0);
    assert_int_equal(db_integrity_check(f->db), 0);
}

static void test_migrate_from_version_1(void **state)
{
    struct fixture *f = *state;
    struct db_account a;
    int version = 0;

    /* Make the file what version 1 left: accounts and tokens only. */
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, true), 0);
    db_close(f->db);
    f->db = NULL;
    raw_exec(f->path, "DROP TABLE sessions; DROP TABLE docs; DROP TABLE decisions;"
                      "DROP TABLE items; DROP TABLE actions; DROP TABLE interims;"
                      "DROP TABLE people; DROP TABLE members; DROP TABLE meetings;"
                      "DROP TABLE audit; DROP TABLE checkpoints; DROP TABLE counters;"
                      "DROP TABLE snapshots; DROP TABLE shares; PRAGMA user_version = 1");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master"), 4);

    assert_int_equal(db_open(&f->db, f->path, 0), 0);
    assert_int_equal(db_schema_version(f->db, &version), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    add_meeting(f->db, "m1", 1);
    assert_int_equal(db_meeting_exists(f->db, "m1"), 0);
    assert_int_equal(db_integrity_check(f->db), 0);

    /* A read-only connection accepts the migrated file. */
    db_close(f->db);
    assert_int_equal(db_open(&f->db, f->path, DB_READONLY), 0);
    assert_int_equal(db_meeting_exists(f->db, "m1"), 0);
}

/* ---- objects ---- */

/* Version 2 wrote every change's rows: migration 3 says they stand at the log's head. */
static void test_migrate_from_version_2(void **state)
{
    struct fixture *f = *state;
    struct db_audit e;
    int64_t seq = -1;

    add_meeting(f->db, "m1", 1);
    add_meeting(f->db, "m2", 1);
    memset(&e, 0, sizeof(e));
    e.meeting = "m1";
    e.user = "alice";
    e.kind = "create";
    e.type = "item";
    e.payload = (const uint8_t *)"\x80";
    e.payload_len = 1;
    for (int i = 1; i <= 3; i++) {
        e.seq = i;
        e.id_int = 10 + i;
        assert_int_equal(db_audit_append(f->db, &e), 0);
    }
    db_close(f->db);
    f->db = NULL;
    raw_exec(f->path, "DROP TABLE snapshots; DROP TABLE shares;"
                      "ALTER TABLE meetings DROP COLUMN rows_seq;"
                      "CREATE INDEX audit_user ON audit(meeting, user, seq);"
                      "CREATE INDEX audit_obj ON audit(obj, meeting, seq);"
                      "PRAGMA user_version = 2");
    assert_int_equal(db_open(&f->db, f->path, 0), 0);
    assert_int_equal(db_rows_seq(f->db, "m1", &seq), 0);
    assert_true(seq == 3);
    assert_int_equal(db_rows_seq(f->db, "m2", &seq), 0);
    assert_true(seq == 0);
    assert_int_equal(db_rows_seq(f->db, "m3", &seq), PROTO_ENOTFOUND);
    /* The log keeps its key and its cid index only. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND name IN ('audit_user', 'audit_obj')"),
                     0);
}

static int count_snap(void *ud, const struct db_snapshot *s)
{
    int64_t *seqs = ud;
    seqs[seqs[0] + 1] = s->seq;
    seqs[0]++;
    return 0;
}

static int first_snap(void *ud, const struct db_snapshot *s)
{
    int64_t *out = ud;
    out[0] = s->seq;
    out[1] = (int64_t)s->data_len;
    out[2] = s->data != NULL && s->data_len == 5 && memcmp(s->data, "hello", 5) == 0;
    return 1;
}

static void test_rows_seq_and_snapshots(void **state)
{
    struct fixture *f = *state;
    struct db_snapshot sn;
    int64_t seq = -1, seqs[8] = {0}, got[3] = {0};

    add_meeting(f->db, "m1", 1);
    assert_int_equal(db_rows_mark(f->db, "m1", 9), 0);
    assert_int_equal(db_rows_seq(f->db, "m1", &seq), 0);
    assert_true(seq == 9);
    assert_int_equal(db_rows_mark(f->db, "nope", 9), PROTO_EDB);

    assert_int_equal(db_member_put(f->db, "m1", "alice", "rapporteur", 1), 0);
    assert_int_equal(db_member_put(f->db, "m1", "bob", "editor", 2), 0);
    assert_int_equal(db_member_clear(f->db, "m1"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM members"), 0);

    memset(&sn, 0, sizeof(sn));
    sn.meeting = "m1";
    sn.data = (const uint8_t *)"hello";
    sn.data_len = 5;
    for (int64_t s = 10; s <= 30; s += 10) {
        sn.seq = s;
        sn.head[0] = (uint8_t)s;
        assert_int_equal(db_snapshot_add(f->db, &sn), 0);
    }
    /* One at a seq is kept. */
    sn.seq = 20;
    sn.data = (const uint8_t *)"other";
    assert_int_equal(db_snapshot_add(f->db, &sn), 0);
    assert_int_equal(db_snapshot_list(f->db, "m1", count_snap, seqs), 0);
    assert_true(seqs[0] == 3 && seqs[1] == 10 && seqs[2] == 20 && seqs[3] == 30);
    /* The newest at or before a seq, with its data. */
    assert_int_equal(db_snapshot_before(f->db, "m1", 25, first_snap, got), 1);
    assert_true(got[0] == 20 && got[1] == 5 && got[2] == 1);
    assert_int_equal(db_snapshot_before(f->db, "m1", 9, first_snap, got), 0);
    assert_int_equal(db_snapshot_before(f->db, "m2", 99, first_snap, got), 0);
}

static void test_roundtrip_every_type(void **state)
{
    struct fixture *f = *state;
    struct vals full[PROTO_T_COUNT], nil;
    struct rows rs;

    assert_int_equal(db_begin(f->db), 0);
    fill_all(&full[PROTO_T_MEETING], PROTO_T_MEETING, 0);
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_MEETING, 0, 1, full[PROTO_T_MEETING].v), 0);
    /* The item first: the docs and decisions point at it. */
    fill_all(&full[PROTO_T_ITEM], PROTO_T_ITEM, 0);
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ITEM, 10, 2, full[PROTO_T_ITEM].v), 0);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        if (t == PROTO_T_MEETING || t == PROTO_T_ITEM) {
            continue;
        }
        fill_all(&full[t], (enum proto_type)t, 10);
        assert_int_equal(db_obj_put(f->db, "m1", (enum proto_type)t, 100 + t, 3 + t, full[t].v), 0);
    }
    /* Every type again with every field nil (the meeting has two that may not be). */
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        memset(&nil, 0, sizeof(nil));
        assert_int_equal(db_obj_put(f->db, "m1", (enum proto_type)t, 200 + t, 20, nil.v), 0);
    }
    assert_int_equal(db_commit(f->db), 0);

    load(f->db, "m1", PROTO_T_MEETING, &rs);
    assert_int_equal(rs.n, 1);
    assert_true(rs.r[0].id == 0 && rs.r[0].seq == 1);
    assert_row(&rs.r[0], PROTO_T_MEETING, &full[PROTO_T_MEETING]);

    memset(&nil, 0, sizeof(nil));
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        load(f->db, "m1", (enum proto_type)t, &rs);
        if (t == PROTO_T_ITEM) {
            assert_int_equal(rs.n, 2);
            assert_true(rs.r[0].id == 10 && rs.r[0].seq == 2);
        } else {
            assert_int_equal(rs.n, 2);
            assert_true(rs.r[0].id == 100 + t && rs.r[0].seq == 3 + t);
        }
        assert_row(&rs.r[0], (enum proto_type)t, &full[t]);
        assert_true(rs.r[1].id == 200 + t && rs.r[1].seq == 20);
        assert_row(&rs.r[1], (enum proto_type)t, &nil);
        /* Nothing leaks into another meeting. */
        load(f->db, "m2", (enum proto_type)t, &rs);
        assert_int_equal(rs.n, 0);
    }
    load(f->db, "m2", PROTO_T_MEETING, &rs);
    assert_int_equal(rs.n, 0);
}

static void test_meeting_fields(void **state)
{
    struct fixture *f = *state;
    struct vals vs;
    struct rows rs;
    const char title[] = "Rapporteur group meeting, and more";

    /* Values are bound with their length, not up to a NUL. */
    memset(&vs, 0, sizeof(vs));
    vs.v[field(PROTO_T_MEETING, "title")] = (struct db_val){.set = true, .s = title, .len = 10};
    set_i(&vs, PROTO_T_MEETING, "deadline_days", 7);
    set_s(&vs, PROTO_T_MEETING, "status", "draft");
    vs.v[field(PROTO_T_MEETING, "abstract")] = (struct db_val){.set = true, .s = NULL, .len = 0};
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_MEETING, 0, 1, vs.v), 0);
    load(f->db, "m1", PROTO_T_MEETING, &rs);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.r[0].f[field(PROTO_T_MEETING, "title")].s, "Rapporteur");
    assert_true(rs.r[0].f[field(PROTO_T_MEETING, "abstract")].set);
    assert_int_equal(rs.r[0].f[field(PROTO_T_MEETING, "abstract")].len, 0);
    assert_false(rs.r[0].f[field(PROTO_T_MEETING, "venue")].set);

    /* An update replaces every field and the seq. */
    set_s(&vs, PROTO_T_MEETING, "status", "final");
    set_s(&vs, PROTO_T_MEETING, "venue", "Geneva");
    unset(&vs, PROTO_T_MEETING, "title");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_MEETING, 0, 9, vs.v), 0);
    load(f->db, "m1", PROTO_T_MEETING, &rs);
    assert_true(rs.r[0].seq == 9);
    assert_false(rs.r[0].f[field(PROTO_T_MEETING, "title")].set);
    assert_string_equal(rs.r[0].f[field(PROTO_T_MEETING, "venue")].s, "Geneva");
    assert_string_equal(rs.r[0].f[field(PROTO_T_MEETING, "status")].s, "final");

    /* deadline_days and status may not be nil; status is draft or final. */
    unset(&vs, PROTO_T_MEETING, "deadline_days");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_MEETING, 0, 10, vs.v), PROTO_EDB);
    set_i(&vs, PROTO_T_MEETING, "deadline_days", 7);
    set_s(&vs, PROTO_T_MEETING, "status", "closed");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_MEETING, 0, 10, vs.v), PROTO_EDB);
    load(f->db, "m1", PROTO_T_MEETING, &rs);
    assert_true(rs.r[0].seq == 9);

    /* A meeting id is a name. */
    set_s(&vs, PROTO_T_MEETING, "status", "draft");
    assert_int_equal(db_obj_put(f->db, "Bad Name", PROTO_T_MEETING, 0, 1, vs.v), PROTO_EDB);
    assert_int_equal(db_obj_put(f->db, "", PROTO_T_MEETING, 0, 1, vs.v), PROTO_EDB);
    assert_int_equal(db_obj_put(f->db, "rg-iem.2023_06", PROTO_T_MEETING, 0, 1, vs.v), 0);
}

static void test_enum_checks(void **state)
{
    struct fixture *f = *state;
    struct vals vs;
    int64_t id = 1;

    add_meeting(f->db, "m1", 1);
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        const struct proto_typeinfo *ti = proto_type_info((enum proto_type)t);

        for (size_t i = 0; i < ti->nfields; i++) {
            if (ti->fields[i].kind != PROTO_F_ENUM) {
                continue;
            }
            /* Every value of the schema is accepted, and nothing else. */
            for (const char *const *v = ti->fields[i].values; *v != NULL; v++) {
                memset(&vs, 0, sizeof(vs));
                set_s(&vs, (enum proto_type)t, ti->fields[i].name, *v);
                assert_int_equal(db_obj_put(f->db, "m1", (enum proto_type)t, id++, 1, vs.v), 0);
            }
            memset(&vs, 0, sizeof(vs));
            set_s(&vs, (enum proto_type)t, ti->fields[i].name, "bogus");
            assert_int_equal(db_obj_put(f->db, "m1", (enum proto_type)t, id++, 1, vs.v), PROTO_EDB);
            assert_non_null(strstr(db_errmsg(f->db), "CHECK"));
        }
    }
}

static void test_update_keeps_references(void **state)
{
    struct fixture *f = *state;
    struct vals vs;
    struct rows rs;

    assert_int_equal(db_begin(f->db), 0);
    add_meeting(f->db, "m1", 1);
    put_item(f->db, "m1", 1, "Opening", 2);
    put_item(f->db, "m1", 2, "Agenda", 3);
    put_doc(f->db, "m1", 3, "TD1", "", 1, 0);
    put_doc(f->db, "m1", 4, "TD2", "", 2, 0);
    memset(&vs, 0, sizeof(vs));
    set_i(&vs, PROTO_T_DECISION, "item", 1);
    set_s(&vs, PROTO_T_DECISION, "text", "agreed to open");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_DECISION, 5, 4, vs.v), 0);
    assert_int_equal(db_commit(f->db), 0);

    /* Updating the item keeps the row: the doc and decision still point at it. */
    assert_int_equal(db_begin(f->db), 0);
    put_item(f->db, "m1", 1, "Opening of the meeting", 6);
    assert_int_equal(db_commit(f->db), 0);
    load(f->db, "m1", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 2);
    assert_string_equal(rs.r[0].f[field(PROTO_T_ITEM, "title")].s, "Opening of the meeting");
    assert_true(rs.r[0].seq == 6);
    assert_string_equal(rs.r[1].f[field(PROTO_T_ITEM, "title")].s, "Agenda");
    assert_true(rs.r[1].seq == 3);
    load(f->db, "m1", PROTO_T_DOC, &rs);
    assert_int_equal(rs.n, 2);
    assert_true(rs.r[0].f[field(PROTO_T_DOC, "item")].set);
    assert_true(rs.r[0].f[field(PROTO_T_DOC, "item")].i == 1);
    load(f->db, "m1", PROTO_T_DECISION, &rs);
    assert_true(rs.r[0].f[field(PROTO_T_DECISION, "item")].i == 1);

    /* Writing the meeting row again keeps its objects (no delete, so no cascade). */
    add_meeting(f->db, "m1", 7);
    load(f->db, "m1", PROTO_T_DOC, &rs);
    assert_int_equal(rs.n, 2);

    /* Deleting it sets the references nil and touches nothing else. */
    assert_int_equal(db_begin(f->db), 0);
    assert_int_equal(db_obj_delete(f->db, "m1", PROTO_T_ITEM, 1), 0);
    assert_int_equal(db_commit(f->db), 0);
    load(f->db, "m1", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 1);
    assert_true(rs.r[0].id == 2);
    load(f->db, "m1", PROTO_T_DOC, &rs);
    assert_int_equal(rs.n, 2);
    assert_false(rs.r[0].f[field(PROTO_T_DOC, "item")].set);
    assert_true(rs.r[1].f[field(PROTO_T_DOC, "item")].i == 2);
    load(f->db, "m1", PROTO_T_DECISION, &rs);
    assert_int_equal(rs.n, 1);
    assert_false(rs.r[0].f[field(PROTO_T_DECISION, "item")].set);
    assert_string_equal(rs.r[0].f[field(PROTO_T_DECISION, "text")].s, "agreed to open");

    /* Deleting what is absent, or an object of another meeting, does nothing. */
    assert_int_equal(db_obj_delete(f->db, "m1", PROTO_T_ITEM, 99), 0);
    assert_int_equal(db_obj_delete(f->db, "m2", PROTO_T_ITEM, 2), 0);
    load(f->db, "m1", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 1);
}

static void test_unique_keys(void **state)
{
    struct fixture *f = *state;
    struct vals vs;
    struct rows rs;

    add_meeting(f->db, "m1", 1);
    add_meeting(f->db, "m2", 1);
    assert_int_equal(db_begin(f->db), 0);
    put_doc(f->db, "m1", 1, "TD257", "", 0, 0);
    put_doc(f->db, "m1", 2, "TD257", "R1", 0, 0);
    put_doc(f->db, "m1", 3, "TD257", "R1", 0, PROTO_ECONFLICT);
    /* nil and "" are the same revision. */
    put_doc(f->db, "m1", 3, "TD257", NULL, 0, PROTO_ECONFLICT);
    put_doc(f->db, "m1", 4, "TD258", NULL, 0, 0);
    put_doc(f->db, "m1", 5, "TD258", "", 0, PROTO_ECONFLICT);
    /* Docs without a ref do not collide; the same key in another meeting is fine. */
    put_doc(f->db, "m1", 6, NULL, NULL, 0, 0);
    put_doc(f->db, "m1", 7, NULL, NULL, 0, 0);
    put_doc(f->db, "m2", 8, "TD257", "R1", 0, 0);
    /* An update of a doc to its own key is no conflict; to another's is. */
    put_doc(f->db, "m1", 2, "TD257", "R1", 0, 0);
    put_doc(f->db, "m1", 2, "TD258", "", 0, PROTO_ECONFLICT);
    assert_string_equal(db_errmsg(f->db), "UNIQUE constraint failed: index 'docs_ref'");

    memset(&vs, 0, sizeof(vs));
    set_s(&vs, PROTO_T_ACTION, "ref", "RG-IEM-1");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ACTION, 20, 1, vs.v), 0);
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ACTION, 21, 1, vs.v), PROTO_ECONFLICT);
    assert_int_equal(db_obj_put(f->db, "m2", PROTO_T_ACTION, 22, 1, vs.v), 0);
    set_s(&vs, PROTO_T_ACTION, "ref", "RG-IEM-2");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ACTION, 21, 1, vs.v), 0);
    assert_int_equal(db_commit(f->db), 0);

    load(f->db, "m1", PROTO_T_DOC, &rs);
    assert_int_equal(rs.n, 5);
    load(f->db, "m1", PROTO_T_ACTION, &rs);
    assert_int_equal(rs.n, 2);
}

static void test_foreign_keys(void **state)
{
    struct fixture *f = *state;
    struct vals vs;
    struct rows rs;

    /* No meeting row: objects and members of it fail. */
    memset(&vs, 0, sizeof(vs));
    assert_int_equal(db_obj_put(f->db, "ghost", PROTO_T_ITEM, 1, 1, vs.v), PROTO_EDB);
    assert_non_null(strstr(db_errmsg(f->db), "FOREIGN KEY"));
    assert_int_equal(db_member_put(f->db, "ghost", "alice", "editor", 1), PROTO_EDB);

    /* A doc may only point at an existing item. */
    add_meeting(f->db, "m1", 1);
    put_doc(f->db, "m1", 2, "TD1", "", 77, PROTO_EDB);
    put_item(f->db, "m1", 77, "Item", 2);
    put_doc(f->db, "m1", 2, "TD1", "", 77, 0);

    /* An id already used in another meeting is not taken over. */
    add_meeting(f->db, "m2", 1);
    put_item(f->db, "m2", 5, "Theirs", 2);
    memset(&vs, 0, sizeof(vs));
    set_s(&vs, PROTO_T_ITEM, "title", "Mine");
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ITEM, 5, 3, vs.v), PROTO_ECONFLICT);
    load(f->db, "m2", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.r[0].f[field(PROTO_T_ITEM, "title")].s, "Theirs");
    load(f->db, "m1", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 1);
}

static void test_rollback_undoes_puts(void **state)
{
    struct fixture *f = *state;
    struct rows rs;

    add_meeting(f->db, "m1", 1);
    assert_int_equal(db_begin(f->db), 0);
    put_item(f->db, "m1", 1, "Gone", 2);
    assert_int_equal(db_member_put(f->db, "m1", "alice", "editor", 3), 0);
    assert_int_equal(db_rollback(f->db), 0);
    load(f->db, "m1", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 0);
}

/* ---- ids ---- */

static void test_max_id_and_reserve(void **state)
{
    struct fixture *f = *state;
    struct db *other = NULL;
    struct db_audit e;
    int64_t max = -1, a = 0, b = 0, c = 0;

    assert_int_equal(db_obj_max_id(f->db, &max), 0);
    assert_true(max == 0);
    add_meeting(f->db, "m1", 1);
    put_item(f->db, "m1", 7, "Item", 2);
    put_doc(f->db, "m1", 12, "TD1", "", 7, 0);
    assert_int_equal(db_obj_max_id(f->db, &max), 0);
    assert_true(max == 12);

    /* Ids of deleted objects stay taken: the audit log keeps them. Text ids do not count. */
    memset(&e, 0, sizeof(e));
    e.meeting = "m1";
    e.seq = 1;
    e.user = "alice";
    e.kind = "delete";
    e.type = "person";
    e.id_int = 30;
    assert_int_equal(db_audit_append(f->db, &e), 0);
    e.seq = 2;
    e.kind = "member";
    e.type = "member";
    e.id_str = "99999";
    assert_int_equal(db_audit_append(f->db, &e), 0);
    assert_int_equal(db_obj_max_id(f->db, &max), 0);
    assert_true(max == 30);

    /* Blocks start above every id in use and never overlap, across connections. */
    assert_int_equal(db_id_reserve(f->db, 100, &a), 0);
    assert_true(a == 31);
    assert_int_equal(db_open(&other, f->path, 0), 0);
    assert_int_equal(db_id_reserve(other, 10, &b), 0);
    assert_true(b == 131);
    assert_int_equal(db_id_reserve(f->db, 1, &c), 0);
    assert_true(c == 141);
    db_close(other);

    /* An id written without a reservation pushes the next block up. */
    put_item(f->db, "m1", 500, "Imported", 3);
    assert_int_equal(db_id_reserve(f->db, 5, &a), 0);
    assert_true(a == 501);

    /* Not inside the caller's transaction: its rollback would hand the ids out again. */
    assert_int_equal(db_begin(f->db), 0);
    assert_int_equal(db_id_reserve(f->db, 5, &a), PROTO_EDB);
    assert_int_equal(db_rollback(f->db), 0);
    assert_int_equal(db_id_reserve(f->db, 0, &a), PROTO_EINVAL);
    assert_int_equal(db_id_reserve(f->db, INT64_MAX, &a), PROTO_EDB);
    assert_int_equal(db_id_reserve(f->db, 1, &a), 0);
    assert_true(a == 506);

    /* Survives a reopen. */
    db_close(f->db);
    assert_int_equal(db_open(&f->db, f->path, 0), 0);
    assert_int_equal(db_id_reserve(f->db, 1, &a), 0);
    assert_true(a == 507);
}

/* ---- meetings and members ---- */

struct names {
    int n;
    char s[16][3][PROTO_NAME_MAX + 1];
    int64_t seq[16];
};

static int collect_meeting(void *ud, const char *id)
{
    struct names *ns = ud;

    assert_true(ns->n < 16);
    snprintf(ns->s[ns->n++][0], sizeof(ns->s[0][0]), "%s", id);
    return 0;
}

static int collect_member(void *ud, const char *meeting, const char *user, const char *role,
                          int64_t seq)
{
    struct names *ns = ud;

    assert_true(ns->n < 16);
    snprintf(ns->s[ns->n][0], sizeof(ns->s[0][0]), "%s", meeting);
    snprintf(ns->s[ns->n][1], sizeof(ns->s[0][1]), "%s", user);
    snprintf(ns->s[ns->n][2], sizeof(ns->s[0][2]), "%s", role);
    ns->seq[ns->n++] = seq;
    return 0;
}

static int stop_at_first(void *ud, const char *id)
{
    (void)ud;
    (void)id;
    return 7;
}

static void test_meeting_list_exists(void **state)
{
    struct fixture *f = *state;
    struct names ns;

    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_meeting_list(f->db, collect_meeting, &ns), 0);
    assert_int_equal(ns.n, 0);
    assert_int_equal(db_meeting_exists(f->db, "m1"), PROTO_ENOTFOUND);
    add_meeting(f->db, "zeta", 1);
    add_meeting(f->db, "alpha", 1);
    add_meeting(f->db, "m1", 1);
    add_meeting(f->db, "m1", 2); /* an update, not a second meeting */
    assert_int_equal(db_meeting_list(f->db, collect_meeting, &ns), 0);
    assert_int_equal(ns.n, 3);
    assert_string_equal(ns.s[0][0], "alpha");
    assert_string_equal(ns.s[1][0], "m1");
    assert_string_equal(ns.s[2][0], "zeta");
    assert_int_equal(db_meeting_exists(f->db, "m1"), 0);
    assert_int_equal(db_meeting_exists(f->db, "M1"), PROTO_ENOTFOUND);
    assert_int_equal(db_meeting_list(f->db, stop_at_first, NULL), 7);
}

static void test_members(void **state)
{
    struct fixture *f = *state;
    struct names ns;

    add_meeting(f->db, "m1", 1);
    add_meeting(f->db, "m2", 1);
    assert_int_equal(db_begin(f->db), 0);
    assert_int_equal(db_member_put(f->db, "m1", "carol", "rapporteur", 1), 0);
    assert_int_equal(db_member_put(f->db, "m1", "alice", "viewer", 2), 0);
    assert_int_equal(db_member_put(f->db, "m1", "bob", "editor", 3), 0);
    assert_int_equal(db_member_put(f->db, "m2", "alice", "associate", 1), 0);
    assert_int_equal(db_member_put(f->db, "m1", "alice", "counsellor", 4), 0); /* a change */
    assert_int_equal(db_member_put(f->db, "m1", "dave", "operator", 5), PROTO_EDB);
    assert_int_equal(db_commit(f->db), 0);

    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_member_list(f->db, "m1", collect_member, &ns), 0);
    assert_int_equal(ns.n, 3);
    assert_string_equal(ns.s[0][1], "alice");
    assert_string_equal(ns.s[0][2], "counsellor");
    assert_true(ns.seq[0] == 4);
    assert_string_equal(ns.s[1][1], "bob");
    assert_string_equal(ns.s[2][1], "carol");
    assert_string_equal(ns.s[2][2], "rapporteur");

    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_member_of(f->db, "alice", collect_member, &ns), 0);
    assert_int_equal(ns.n, 2);
    assert_string_equal(ns.s[0][0], "m1");
    assert_string_equal(ns.s[1][0], "m2");
    assert_string_equal(ns.s[1][2], "associate");

    /* Removing, also what is absent. */
    assert_int_equal(db_member_put(f->db, "m1", "alice", NULL, 6), 0);
    assert_int_equal(db_member_put(f->db, "m1", "nobody", NULL, 7), 0);
    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_member_of(f->db, "alice", collect_member, &ns), 0);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.s[0][0], "m2");
    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_member_list(f->db, "m1", collect_member, &ns), 0);
    assert_int_equal(ns.n, 2);
    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_member_of(f->db, "nobody", collect_member, &ns), 0);
    assert_int_equal(ns.n, 0);
}

/* ---- audit log ---- */

#define MAX_ENTRIES 64

struct entries {
    int n;
    struct {
        char meeting[PROTO_NAME_MAX + 1];
        int64_t seq, time_ms;
        char user[PROTO_NAME_MAX + 1];
        bool has_cid;
        char cid[65];
        char kind[16], type[16];
        bool id_is_str;
        char id_str[PROTO_NAME_MAX + 1];
        int64_t id_int;
        uint8_t payload[64];
        size_t payload_len;
        uint8_t hash[DB_HASH_BYTES];
    } e[MAX_ENTRIES];
};

static int collect_entry(void *ud, const struct db_audit *a)
{
    struct entries *es = ud;

    assert_true(es->n < MAX_ENTRIES);
    assert_non_null(a->payload);
    assert_true(a->payload_len <= sizeof(es->e[0].payload));
    snprintf(es->e[es->n].meeting, sizeof(es->e[0].meeting), "%s", a->meeting);
    es->e[es->n].seq = a->seq;
    es->e[es->n].time_ms = a->time_ms;
    snprintf(es->e[es->n].user, sizeof(es->e[0].user), "%s", a->user);
    es->e[es->n].has_cid = a->cid != NULL;
    snprintf(es->e[es->n].cid, sizeof(es->e[0].cid), "%s", a->cid != NULL ? a->cid : "");
    snprintf(es->e[es->n].kind, sizeof(es->e[0].kind), "%s", a->kind);
    snprintf(es->e[es->n].type, sizeof(es->e[0].type), "%s", a->type);
    es->e[es->n].id_is_str = a->id_str != NULL;
    snprintf(es->e[es->n].id_str, sizeof(es->e[0].id_str), "%s",
             a->id_str != NULL ? a->id_str : "");
    es->e[es->n].id_int = a->id_int;
    memcpy(es->e[es->n].payload, a->payload, a->payload_len);
    es->e[es->n].payload_len = a->payload_len;
    memcpy(es->e[es->n].hash, a->hash, DB_HASH_BYTES);
    es->n++;
    return 0;
}

static void entry(struct db_audit *e, const char *meeting, int64_t seq, const char *user,
                  const char *kind, const char *type)
{
    memset(e, 0, sizeof(*e));
    e->meeting = meeting;
    e->seq = seq;
    e->time_ms = 1686556800000 + seq;
    e->user = user;
    e->kind = kind;
    e->type = type;
    e->payload = (const uint8_t *)"\x81\xa5title\xa3new";
    e->payload_len = 11;
    for (int i = 0; i < DB_HASH_BYTES; i++) {
        e->hash[i] = (uint8_t)(seq * 7 + i);
    }
}

/* m1: 1 create meeting (carol), 2 member alice (carol, cid c1), 3 create item 10 (alice,
 * cid c1), 4 text item 10 (alice), 5 create doc 11 (bob, cid c9), 6 update item 10 (bob),
 * 7 update meeting (carol), 8 delete doc 11 (alice, cid c2); m2: 1 create meeting (alice). */
static void fill_log(struct db *db)
{
    struct db_audit e;

    assert_int_equal(db_begin(db), 0);
    entry(&e, "m1", 1, "carol", "create", "meeting");
    e.id_str = "m1";
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 2, "carol", "member", "member");
    e.id_str = "alice";
    e.cid = "c1";
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 3, "alice", "create", "item");
    e.id_int = 10;
    e.cid = "c1";
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 4, "alice", "text", "item");
    e.id_int = 10;
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 5, "bob", "create", "doc");
    e.id_int = 11;
    e.cid = "c9";
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 6, "bob", "update", "item");
    e.id_int = 10;
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 7, "carol", "update", "meeting");
    e.id_str = "m1";
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m1", 8, "alice", "delete", "doc");
    e.id_int = 11;
    e.cid = "c2";
    e.payload = NULL;
    e.payload_len = 0;
    assert_int_equal(db_audit_append(db, &e), 0);
    entry(&e, "m2", 1, "alice", "create", "meeting");
    e.id_str = "m2";
    e.cid = "c1";
    assert_int_equal(db_audit_append(db, &e), 0);
    assert_int_equal(db_commit(db), 0);
}

static void assert_seqs(const struct entries *es, int n, const int64_t *seqs)
{
    assert_int_equal(es->n, n);
    for (int i = 0; i < n; i++) {
        assert_true(es->e[i].seq == seqs[i]);
    }
}

static void test_audit_append_range_head(void **state)
{
    struct fixture *f = *state;
    struct entries es;
    struct db_audit e;
    uint8_t hash[DB_HASH_BYTES];
    int64_t seq = -1;

    /* An empty log: head 0, a zero hash. */
    memset(hash, 0xff, sizeof(hash));
    assert_int_equal(db_audit_head(f->db, "m1", &seq, hash), 0);
    assert_true(seq == 0);
    for (int i = 0; i < DB_HASH_BYTES; i++) {
        assert_int_equal(hash[i], 0);
    }

    /* No meeting row is needed: the log stands alone. */
    fill_log(f->db);
    assert_int_equal(db_meeting_exists(f->db, "m1"), PROTO_ENOTFOUND);

    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_range(f->db, "m1", 0, 100, collect_entry, &es), 0);
    assert_seqs(&es, 8, (const int64_t[]){1, 2, 3, 4, 5, 6, 7, 8});
    assert_string_equal(es.e[0].meeting, "m1");
    assert_true(es.e[0].time_ms == 1686556800000 + 1);
    assert_true(es.e[0].id_is_str);
    assert_string_equal(es.e[0].id_str, "m1");
    assert_false(es.e[0].has_cid);
    assert_true(es.e[1].has_cid);
    assert_string_equal(es.e[1].cid, "c1");
    assert_string_equal(es.e[2].user, "alice");
    assert_string_equal(es.e[2].kind, "create");
    assert_string_equal(es.e[2].type, "item");
    assert_false(es.e[2].id_is_str);
    assert_true(es.e[2].id_int == 10);
    assert_int_equal(es.e[2].payload_len, 11);
    assert_memory_equal(es.e[2].payload, "\x81\xa5title\xa3new", 11);
    assert_int_equal(es.e[7].payload_len, 0);
    entry(&e, "m1", 3, "alice", "create", "item");
    assert_memory_equal(es.e[2].hash, e.hash, DB_HASH_BYTES);

    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_range(f->db, "m1", 3, 6, collect_entry, &es), 0);
    assert_seqs(&es, 3, (const int64_t[]){4, 5, 6});
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_range(f->db, "m1", 8, 100, collect_entry, &es), 0);
    assert_int_equal(es.n, 0);
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_range(f->db, "m2", 0, 100, collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){1});

    assert_int_equal(db_audit_head(f->db, "m1", &seq, hash), 0);
    assert_true(seq == 8);
    entry(&e, "m1", 8, "alice", "delete", "doc");
    assert_memory_equal(hash, e.hash, DB_HASH_BYTES);
    assert_int_equal(db_audit_head(f->db, "m2", &seq, NULL), 0);
    assert_true(seq == 1);

    /* A taken seq, a taken (user, cid); the same cid of another user or meeting is fine. */
    entry(&e, "m1", 8, "bob", "update", "item");
    e.id_int = 10;
    assert_int_equal(db_audit_append(f->db, &e), PROTO_ECONFLICT);
    entry(&e, "m1", 9, "alice", "update", "item");
    e.id_int = 10;
    e.cid = "c2";
    assert_int_equal(db_audit_append(f->db, &e), PROTO_ECONFLICT);
    e.user = "bob";
    assert_int_equal(db_audit_append(f->db, &e), 0);
    entry(&e, "m2", 2, "alice", "update", "item");
    e.cid = "c2";
    assert_int_equal(db_audit_append(f->db, &e), 0);
    assert_int_equal(db_audit_head(f->db, "m1", &seq, hash), 0);
    assert_true(seq == 9);
}

static void test_audit_history(void **state)
{
    struct fixture *f = *state;
    struct db_history_filter hf;
    struct entries es;

    fill_log(f->db);
    memset(&hf, 0, sizeof(hf));
    hf.limit = 100;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 8, (const int64_t[]){8, 7, 6, 5, 4, 3, 2, 1});

    hf.limit = 3;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 3, (const int64_t[]){8, 7, 6});

    hf.limit = 1000;
    hf.since = 2;
    hf.until = 6;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 4, (const int64_t[]){6, 5, 4, 3});

    memset(&hf, 0, sizeof(hf));
    hf.limit = 100;
    hf.user = "alice";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 3, (const int64_t[]){8, 4, 3});

    hf.type = "item";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 2, (const int64_t[]){4, 3});

    memset(&hf, 0, sizeof(hf));
    hf.limit = 100;
    hf.type = "meeting";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 2, (const int64_t[]){7, 1});

    /* By object id: an integer id, with and without a user, and a text id. */
    memset(&hf, 0, sizeof(hf));
    hf.limit = 100;
    hf.id_int = 10;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 3, (const int64_t[]){6, 4, 3});
    hf.user = "bob";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){6});
    hf.user = NULL;
    hf.id_int = 0;
    hf.id_str = "alice";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){2});
    assert_true(es.e[0].id_is_str);
    hf.id_str = "m1";
    hf.type = "meeting";
    hf.until = 5;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){1});

    /* Nothing matches: another user, type, meeting. */
    memset(&hf, 0, sizeof(hf));
    hf.limit = 100;
    hf.user = "zed";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_int_equal(es.n, 0);
    hf.user = NULL;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m3", &hf, collect_entry, &es), 0);
    assert_int_equal(es.n, 0);

    /* The limit is 1..1000. */
    hf.limit = 0;
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), PROTO_EINVAL);
    hf.limit = 1001;
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), PROTO_EINVAL);
}

/* The object id keeps its type: "10" is not 10. */
static void test_audit_obj_text_vs_int(void **state)
{
    struct fixture *f = *state;
    struct db_history_filter hf;
    struct entries es;
    struct db_audit e;

    entry(&e, "m1", 1, "alice", "member", "member");
    e.id_str = "10";
    assert_int_equal(db_audit_append(f->db, &e), 0);
    entry(&e, "m1", 2, "alice", "create", "item");
    e.id_int = 10;
    assert_int_equal(db_audit_append(f->db, &e), 0);

    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_range(f->db, "m1", 0, 10, collect_entry, &es), 0);
    assert_int_equal(es.n, 2);
    assert_true(es.e[0].id_is_str);
    assert_string_equal(es.e[0].id_str, "10");
    assert_true(es.e[0].id_int == 0);
    assert_false(es.e[1].id_is_str);
    assert_true(es.e[1].id_int == 10);

    memset(&hf, 0, sizeof(hf));
    hf.limit = 10;
    hf.id_str = "10";
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){1});
    hf.id_str = NULL;
    hf.id_int = 10;
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_history(f->db, "m1", &hf, collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){2});
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM audit WHERE typeof(obj) = 'text'"), 1);
}

static void test_audit_find_cid(void **state)
{
    struct fixture *f = *state;
    struct entries es;

    fill_log(f->db);
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_find_cid(f->db, "m1", "alice", "c1", collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){3});
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_find_cid(f->db, "m1", "carol", "c1", collect_entry, &es), 0);
    assert_seqs(&es, 1, (const int64_t[]){2});
    assert_string_equal(es.e[0].id_str, "alice");
    memset(&es, 0, sizeof(es));
    assert_int_equal(db_audit_find_cid(f->db, "m2", "alice", "c1", collect_entry, &es), 0);
    assert_true(es.n == 1 && es.e[0].seq == 1);
    assert_int_equal(db_audit_find_cid(f->db, "m1", "bob", "c1", collect_entry, &es),
                     PROTO_ENOTFOUND);
    assert_int_equal(db_audit_find_cid(f->db, "m2", "alice", "c9", collect_entry, &es),
                     PROTO_ENOTFOUND);
    assert_int_equal(db_audit_find_cid(f->db, "m1", "bob", "c9", NULL, NULL), 0);
}

/* Should a meeting row ever go, its objects and members go with it; its log stays. */
static void test_meeting_delete_keeps_log(void **state)
{
    struct fixture *f = *state;
    uint8_t head[DB_HASH_BYTES] = {0}, sig[DB_SIG_BYTES] = {0};
    struct rows rs;

    add_meeting(f->db, "m1", 1);
    put_item(f->db, "m1", 1, "Item", 2);
    assert_int_equal(db_member_put(f->db, "m1", "alice", "editor", 3), 0);
    fill_log(f->db);
    assert_int_equal(db_checkpoint_add(f->db, "m1", 8, head, sig), 0);
    raw_exec(f->path, "PRAGMA foreign_keys = ON; DELETE FROM meetings WHERE id = 'm1'");
    load(f->db, "m1", PROTO_T_ITEM, &rs);
    assert_int_equal(rs.n, 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM members"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM audit WHERE meeting = 'm1'"), 8);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM checkpoints"), 1);
}

/* ---- checkpoints ---- */

struct cps {
    int n;
    int64_t seq[8];
    uint8_t head[8][DB_HASH_BYTES];
    uint8_t sig[8][DB_SIG_BYTES];
};

static int collect_cp(void *ud, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                      const uint8_t sig[DB_SIG_BYTES])
{
    struct cps *c = ud;

    assert_true(c->n < 8);
    c->seq[c->n] = seq;
    memcpy(c->head[c->n], head, DB_HASH_BYTES);
    memcpy(c->sig[c->n], sig, DB_SIG_BYTES);
    c->n++;
    return 0;
}

static void test_checkpoints(void **state)
{
    struct fixture *f = *state;
    uint8_t head[DB_HASH_BYTES], sig[DB_SIG_BYTES];
    struct cps c;

    memset(&c, 0, sizeof(c));
    assert_int_equal(db_checkpoint_list(f->db, "m1", collect_cp, &c), 0);
    assert_int_equal(c.n, 0);
    for (int s = 2; s >= 1; s--) {
        memset(head, s, sizeof(head));
        memset(sig, 0x40 + s, sizeof(sig));
        assert_int_equal(db_checkpoint_add(f->db, "m1", s * 100, head, sig), 0);
    }
    assert_int_equal(db_checkpoint_add(f->db, "m2", 100, head, sig), 0);
    assert_int_equal(db_checkpoint_add(f->db, "m1", 100, head, sig), PROTO_ECONFLICT);

    assert_int_equal(db_checkpoint_list(f->db, "m1", collect_cp, &c), 0);
    assert_int_equal(c.n, 2);
    assert_true(c.seq[0] == 100 && c.seq[1] == 200);
    assert_int_equal(c.head[0][0], 1);
    assert_int_equal(c.head[1][31], 2);
    assert_int_equal(c.sig[0][63], 0x41);
    assert_int_equal(c.sig[1][0], 0x42);
}

/* ---- callbacks calling back into db/ ---- */

struct nest {
    struct db *db;
    int calls;
    int inner_same;
    int inner_other;
    int64_t head;
};

static int nested_obj(void *ud, int64_t id, int64_t seq, const struct db_val *vals)
{
    struct nest *n = ud;
    struct rows rs;

    (void)id;
    (void)seq;
    (void)vals;
    n->calls++;
    /* Another statement works; the running one cannot run twice, and says so. */
    memset(&rs, 0, sizeof(rs));
    rs.t = PROTO_T_DOC;
    n->inner_other = db_obj_load(n->db, "m1", PROTO_T_DOC, collect_obj, &rs);
    n->inner_same = db_obj_load(n->db, "m1", PROTO_T_ITEM, collect_obj, &rs);
    put_doc(n->db, "m1", 100 + n->calls, NULL, NULL, 0, 0);
    return 0;
}

static int nested_audit(void *ud, const struct db_audit *e)
{
    struct nest *n = ud;
    struct db_history_filter hf;
    struct entries es;

    (void)e;
    n->calls++;
    memset(&hf, 0, sizeof(hf));
    hf.limit = 1;
    memset(&es, 0, sizeof(es));
    n->inner_other = db_audit_history(n->db, "m1", &hf, collect_entry, &es);
    n->inner_same = db_audit_range(n->db, "m1", 0, 1, collect_entry, &es);
    assert_int_equal(db_audit_head(n->db, "m1", &n->head, NULL), 0);
    return 0;
}

static void test_callback_reentrancy(void **state)
{
    struct fixture *f = *state;
    struct nest n;

    add_meeting(f->db, "m1", 1);
    put_item(f->db, "m1", 1, "One", 2);
    put_item(f->db, "m1", 2, "Two", 3);
    memset(&n, 0, sizeof(n));
    n.db = f->db;
    assert_int_equal(db_obj_load(f->db, "m1", PROTO_T_ITEM, nested_obj, &n), 0);
    assert_int_equal(n.calls, 2);
    assert_int_equal(n.inner_other, 0);
    assert_int_equal(n.inner_same, PROTO_EDB);
    assert_non_null(strstr(db_errmsg(f->db), "already running"));

    fill_log(f->db);
    memset(&n, 0, sizeof(n));
    n.db = f->db;
    assert_int_equal(db_audit_range(f->db, "m1", 0, 3, nested_audit, &n), 0);
    assert_int_equal(n.calls, 3);
    assert_int_equal(n.inner_other, 0);
    assert_int_equal(n.inner_same, PROTO_EDB);
    assert_true(n.head == 8);
}

/* ---- bad calls ---- */

static void test_errors(void **state)
{
    struct fixture *f = *state;
    struct db_history_filter hf;
    struct db_audit e;
    struct vals vs;
    uint8_t h[DB_HASH_BYTES] = {0};
    uint8_t s[DB_SIG_BYTES] = {0};
    int64_t v = 0;

    memset(&vs, 0, sizeof(vs));
    memset(&hf, 0, sizeof(hf));
    hf.limit = 10;
    add_meeting(f->db, "m1", 1);
    assert_int_equal(db_obj_put(NULL, "m1", PROTO_T_ITEM, 1, 1, vs.v), PROTO_EINVAL);
    assert_int_equal(db_obj_put(f->db, NULL, PROTO_T_ITEM, 1, 1, vs.v), PROTO_EINVAL);
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_COUNT, 1, 1, vs.v), PROTO_EINVAL);
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ITEM, 1, 1, NULL), PROTO_EINVAL);
    vs.v[field(PROTO_T_ITEM, "title")] = (struct db_val){.set = true, .s = NULL, .len = 3};
    assert_int_equal(db_obj_put(f->db, "m1", PROTO_T_ITEM, 1, 1, vs.v), PROTO_EINVAL);
    assert_int_equal(db_obj_delete(f->db, "m1", PROTO_T_MEETING, 0), PROTO_EINVAL);
    assert_int_equal(db_obj_delete(f->db, "m1", (enum proto_type) - 1, 0), PROTO_EINVAL);
    assert_int_equal(db_obj_load(f->db, "m1", PROTO_T_ITEM, NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_obj_max_id(f->db, NULL), PROTO_EINVAL);
    assert_int_equal(db_meeting_list(f->db, NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_meeting_exists(f->db, NULL), PROTO_EINVAL);
    assert_int_equal(db_member_put(f->db, "m1", NULL, "editor", 1), PROTO_EINVAL);
    assert_int_equal(db_member_list(f->db, NULL, collect_member, NULL), PROTO_EINVAL);
    assert_int_equal(db_member_of(f->db, "x", NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_audit_append(f->db, NULL), PROTO_EINVAL);
    entry(&e, "m1", 1, "alice", "create", "item");
    e.user = NULL;
    assert_int_equal(db_audit_append(f->db, &e), PROTO_EINVAL);
    entry(&e, "m1", 1, "alice", "create", "item");
    e.payload = NULL;
    assert_int_equal(db_audit_append(f->db, &e), PROTO_EINVAL);
    e.seq = 0; /* seqs start at 1 */
    e.payload_len = 0;
    assert_int_equal(db_audit_append(f->db, &e), PROTO_EDB);
    assert_int_equal(db_audit_range(f->db, NULL, 0, 1, collect_entry, NULL), PROTO_EINVAL);
    assert_int_equal(db_audit_history(f->db, "m1", NULL, collect_entry, NULL), PROTO_EINVAL);
    assert_int_equal(db_audit_history(f->db, "m1", &hf, NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_audit_head(f->db, "m1", NULL, h), PROTO_EINVAL);
    assert_int_equal(db_audit_find_cid(f->db, "m1", "alice", NULL, NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_checkpoint_add(f->db, "m1", 1, NULL, s), PROTO_EINVAL);
    assert_int_equal(db_checkpoint_list(f->db, "m1", NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_id_reserve(NULL, 1, &v), PROTO_EINVAL);

    /* The connection still works after all that. */
    put_item(f->db, "m1", 1, "Fine", 2);
    assert_int_equal(db_integrity_check(f->db), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_version_and_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_version_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows_seq_and_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meeting_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enum_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_undoes_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meeting_delete_keeps_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_id_and_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meeting_list_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_append_range_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_obj_text_vs_int, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_find_cid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_reentrancy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
