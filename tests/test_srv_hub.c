/* test_srv_hub.c - the hub offline (srv_init_offline on a temporary data folder): the audit
 * chain and its checkpoints against tampering, time travel by replaying the log, and
 * srv_apply_entry on every kind of entry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cli_pack.h"
#include "db.h"
#include "srv.h"
#include "srv_auth.h"
#include "srv_data.h"
#include "srv_hub.h"
#include "srv_rec.h"
#include "testutil.h"

#define PASSWORD "hub-test-password"

struct fixture {
    char *dir;
    char dbpath[4096];
    uv_loop_t loop;
    struct srv srv;
    bool open;
    uint8_t pk[PROTO_KEY_BYTES];
};

/* ---- the data folder and the offline hub ---- */

static int setup(void **state)
{
    static const char *const users[] = {"rap", "assoc", "ed", "view"};
    struct fixture *f = calloc(1, sizeof(*f));
    char fp[PROTO_FINGERPRINT_LEN], hash[DB_PWHASH_MAX];
    struct db *db = NULL;
    struct proto_hostkey key;

    assert_non_null(f);
    assert_true(sodium_init() >= 0);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    snprintf(f->dbpath, sizeof(f->dbpath), "%s/%s", f->dir, SRV_DB_FILE);
    assert_int_equal(srv_data_init(f->dir, fp), 0);
    assert_int_equal(srv_data_open_db(f->dir, &db), 0);
    assert_int_equal(srv_password_hash(SRV_PWCOST_MIN, PASSWORD, strlen(PASSWORD), hash), 0);
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        assert_int_equal(db_account_add(db, users[i], hash, false), 0);
    }
    db_close(db);
    assert_int_equal(srv_data_load_key(f->dir, &key), 0);
    memcpy(f->pk, key.pk, sizeof(f->pk));
    sodium_memzero(&key, sizeof(key));
    *state = f;
    return 0;
}

static void hub_open(struct fixture *f)
{
    assert_false(f->open);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(srv_init_offline(&f->srv, &f->loop, f->dir), 0);
    f->open = true;
}

static void hub_close(struct fixture *f)
{
    if (!f->open) {
        return;
    }
    srv_close_offline(&f->srv);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    f->open = false;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hub_close(f);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* ---- making changes through the hub ---- */

static int64_t vcommit(struct srv *srv, struct srv_meeting *m, const char *user, const char *cid,
                       const char *kind, enum proto_type t, int64_t id, const char *id_str,
                       const char *fmt, va_list ap)
{
    struct srv_change ch = {
        .m = m, .user = user, .cid = cid, .kind = kind, .type = t, .id = id, .id_str = id_str};
    assert_int_equal(cli_vpackf(&ch.payload, fmt, ap), 0);
    return srv_hub_commit(srv, &ch);
}

/* Creates an object of type t; fmt packs its payload ({"fields": {...}}). Returns its id. */
static int64_t create(struct fixture *f, struct srv_meeting *m, const char *cid, enum proto_type t,
                      const char *fmt, ...)
{
    int64_t id = srv_hub_next_id(&f->srv);
    assert_true(id > 0);
    va_list ap;
    va_start(ap, fmt);
    int64_t seq = vcommit(&f->srv, m, "rap", cid, "create", t, id, NULL, fmt, ap);
    va_end(ap);
    assert_int_equal(seq, m->rec->seq);
    assert_non_null(srv_rec_find(m->rec, t, id));
    return id;
}

/* Updates (or deletes, with kind "delete") an object; returns the seq. */
static int64_t change(struct fixture *f, struct srv_meeting *m, const char *cid, const char *kind,
                      enum proto_type t, int64_t id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int64_t seq = vcommit(&f->srv, m, "assoc", cid, kind, t, id,
                          t == PROTO_T_MEETING ? m->rec->id : NULL, fmt, ap);
    va_end(ap);
    assert_true(seq > 0);
    return seq;
}

/* Sets (role) or removes (NULL) a member; returns the seq. */
static int64_t member(struct fixture *f, struct srv_meeting *m, const char *user, const char *role)
{
    struct srv_change ch = {
        .m = m, .user = "rap", .kind = "member", .type = PROTO_T_COUNT, .id_str = user};
    assert_int_equal(cli_packf(&ch.payload, "{s:s}", "role", role), 0);
    int64_t seq = srv_hub_commit(&f->srv, &ch);
    assert_true(seq > 0);
    return seq;
}

static struct srv_meeting *new_meeting(struct fixture *f, const char *id, const char *title)
{
    struct srv_change ch = {.user = "conferd", .id_str = id};
    struct srv_meeting *m = NULL;
    assert_int_equal(cli_packf(&ch.payload, "{s:{s:s, s:s}, s:s}", "fields", "title", title,
                               "action_prefix", "RG-T", "rapporteur", "rap"),
                     0);
    assert_int_equal(srv_hub_create_meeting(&f->srv, id, &ch, &m), 0);
    assert_non_null(m);
    assert_int_equal(m->rec->seq, 1);
    return m;
}

/* A meeting with 21 entries of every kind: creates, updates, deletes, member changes. */
#define CHAIN_ID      "m-chain"
#define CHAIN_ENTRIES 21

static void make_chain_meeting(struct fixture *f)
{
    struct srv_meeting *m = new_meeting(f, CHAIN_ID, "Chain");
    member(f, m, "assoc", "associate");
    member(f, m, "ed", "editor");
    int64_t i1 = create(f, m, "c-4", PROTO_T_ITEM, "{s:{s:s, s:s}}", "fields", "number", "1",
                        "title", "Opening");
    int64_t i2 = create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s, s:s, s:s}}", "fields", "number", "2",
                        "title", "Metrics", "body", "Some text\nover lines");
    int64_t d1 = create(f, m, NULL, PROTO_T_DOC, "{s:{s:s, s:s, s:I}}", "fields", "ref", "TSAG-TD1",
                        "revision", "R1", "item", i1);
    change(f, m, NULL, "update", PROTO_T_ITEM, i1, "{s:{s:s}}", "fields", "title", "Welcome");
    int64_t a1 = create(f, m, NULL, PROTO_T_ACTION, "{s:{s:s, s:s}}", "fields", "ref", "RG-T-1",
                        "to", "WP2");
    change(f, m, NULL, "update", PROTO_T_MEETING, 0, "{s:{s:s}}", "fields", "venue", "Geneva");
    member(f, m, "ed", "viewer");
    create(f, m, NULL, PROTO_T_DECISION, "{s:{s:I, s:s}}", "fields", "item", i2, "kind", "noted");
    int64_t s1 = create(f, m, NULL, PROTO_T_SESSION, "{s:{s:s, s:s, s:s}}", "fields", "date",
                        "2023-05-31", "start", "16:15", "end", "17:30");
    create(f, m, NULL, PROTO_T_INTERIM, "{s:{s:s, s:I}}", "fields", "date", "2023-07-27",
           "deadline_days", (int64_t)5);
    int64_t p1 = create(f, m, NULL, PROTO_T_PERSON, "{s:{s:s, s:s}}", "fields", "name",
                        "Glenn PARSONS", "role", "rapporteur");
    change(f, m, NULL, "delete", PROTO_T_DOC, d1, "{}");
    change(f, m, "c-16", "update", PROTO_T_ACTION, a1, "{s:{s:s}}", "fields", "status", "done");
    change(f, m, NULL, "delete", PROTO_T_ITEM, i2, "{}");
    member(f, m, "assoc", NULL);
    change(f, m, NULL, "update", PROTO_T_PERSON, p1, "{s:{s:s}}", "fields", "affiliation",
           "Ericsson Canada");
    change(f, m, NULL, "delete", PROTO_T_SESSION, s1, "{}");
    create(f, m, NULL, PROTO_T_DOC, "{s:{s:s, s:n}}", "fields", "ref", "TSAG-C032", "item");
    assert_int_equal(m->rec->seq, CHAIN_ENTRIES);
}

/* Writes everything; a minute after the last change (simulated) the head is signed too. */
static void sync_with_checkpoint(struct fixture *f, const char *id)
{
    struct srv_meeting *m = srv_hub_find(&f->srv, id, strlen(id));
    assert_non_null(m);
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_true(m->checkpoint_seq < m->rec->seq); /* not due yet */
    m->last_change_ms -= 61 * 1000;
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(m->checkpoint_seq, m->rec->seq);
}

/* ---- reading the database behind db/'s back ---- */

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(c, 5000);
    return c;
}

static void raw_exec(sqlite3 *c, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(c, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s: %s", sql, err ? err : "?");
    }
}

struct verdict {
    int64_t count;
    int64_t bad_seq;
    uint8_t head[DB_HASH_BYTES];
};

/* Verifies a meeting's chain in the database file at path (a fresh connection each time). */
static struct verdict verify_file(const char *path, const char *meeting, const uint8_t *pk)
{
    struct verdict v = {0};
    struct db *db = NULL;
    assert_int_equal(db_open(&db, path, 0), 0);
    assert_int_equal(srv_audit_verify(db, meeting, pk, &v.count, v.head, &v.bad_seq), 0);
    db_close(db);
    return v;
}

/* Copies the database (SQLite online backup) to a new file under dir; returns its path. */
static void copy_db(struct fixture *f, const char *name, char *out, size_t cap)
{
    struct db *db = NULL;
    snprintf(out, cap, "%s/%s", f->dir, name);
    assert_int_equal(db_open(&db, f->dbpath, 0), 0);
    assert_int_equal(db_backup(db, out), 0);
    db_close(db);
}

/* The hash of every entry, recomputed here from PROTOCOL/DESIGN's definition rather than
 * through srv_audit_entry_hash: H(prev || msgpack [meeting, seq, time, user, cid|nil, kind,
 * type, id, payload]) from H("confer audit genesis" || meeting). Checks the stored hashes
 * and returns the count of entries. */
static int64_t recompute_chain(const char *path, const char *meeting, uint8_t head[32])
{
    sqlite3 *c = raw_open(path);
    sqlite3_stmt *st = NULL;
    crypto_generichash_state hs;
    uint8_t prev[32];
    int64_t n = 0;
    static const char genesis[] = "confer audit genesis";

    crypto_generichash_init(&hs, NULL, 0, 32);
    crypto_generichash_update(&hs, (const uint8_t *)genesis, sizeof(genesis) - 1);
    crypto_generichash_update(&hs, (const uint8_t *)meeting, strlen(meeting));
    crypto_generichash_final(&hs, prev, 32);
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "SELECT meeting, seq, time_ms, user, cid, kind, type, "
                                        "obj, payload, hash FROM audit WHERE meeting = ?1 "
                                        "ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, meeting, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 9);
        for (int col = 0; col < 9; col++) {
            int type = sqlite3_column_type(st, col);
            if (col == 8) {
                msgpack_sbuffer_write(&sb, sqlite3_column_blob(st, col),
                                      (size_t)sqlite3_column_bytes(st, col));
            } else if (type == SQLITE_NULL) {
                msgpack_pack_nil(&pk);
            } else if (type == SQLITE_INTEGER) {
                msgpack_pack_int64(&pk, sqlite3_column_int64(st, col));
            } else {
                const char *s = (const char *)sqlite3_column_text(st, col);
                size_t len = (size_t)sqlite3_column_bytes(st, col);
                msgpack_pack_str(&pk, len);
                msgpack_pack_str_body(&pk, s, len);
            }
        }
        n++;
        assert_int_equal(sqlite3_column_int64(st, 1), n);
        crypto_generichash_init(&hs, NULL, 0, 32);
        crypto_generichash_update(&hs, prev, 32);
        crypto_generichash_update(&hs, (const uint8_t *)sb.data, sb.size);
        crypto_generichash_final(&hs, prev, 32);
        msgpack_sbuffer_destroy(&sb);
        assert_int_equal(sqlite3_column_bytes(st, 9), 32);
        assert_memory_equal(sqlite3_column_blob(st, 9), prev, 32);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    memcpy(head, prev, 32);
    return n;
}

static const char *const audit_cols[] = {"meeting", "seq",  "time_ms", "user",    "cid",
                                         "kind",    "type", "obj",     "payload", "hash"};

/* Changes one value of column col of the entry (meeting, seq): an integer by one (a seq by
 * 1000, so as not to take another entry's key), one byte of a string or blob, a NULL to a
 * string. *old gets the value before; *key_meeting and *key_seq where the row now is. */
static void tamper(sqlite3 *c, const char *meeting, int64_t seq, const char *col,
                   sqlite3_value **old, char *key_meeting, size_t cap, int64_t *key_seq)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "SELECT %s FROM audit WHERE meeting = ?1 AND seq = ?2", col);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, meeting, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *old = sqlite3_value_dup(sqlite3_column_value(st, 0));
    assert_non_null(*old);
    sqlite3_finalize(st);

    snprintf(sql, sizeof(sql), "UPDATE audit SET %s = ?1 WHERE meeting = ?2 AND seq = ?3", col);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    snprintf(key_meeting, cap, "%s", meeting);
    *key_seq = seq;
    int type = sqlite3_value_type(*old);
    int len = sqlite3_value_bytes(*old);
    uint8_t buf[4096];
    if (type == SQLITE_INTEGER) {
        int64_t v = sqlite3_value_int64(*old) + (strcmp(col, "seq") == 0 ? 1000 : 1);
        sqlite3_bind_int64(st, 1, v);
        if (strcmp(col, "seq") == 0) {
            *key_seq = v;
        }
    } else if (type == SQLITE_NULL) {
        sqlite3_bind_text(st, 1, "forged", -1, SQLITE_TRANSIENT);
    } else {
        assert_true(len > 0 && (size_t)len < sizeof(buf));
        memcpy(buf,
               type == SQLITE_TEXT ? (const void *)sqlite3_value_text(*old)
                                   : sqlite3_value_blob(*old),
               (size_t)len);
        /* The last byte of a string (ASCII stays ASCII), the middle one of a blob. */
        buf[type == SQLITE_TEXT ? len - 1 : len / 2] ^= 0x01;
        if (type == SQLITE_TEXT) {
            sqlite3_bind_text(st, 1, (const char *)buf, len, SQLITE_TRANSIENT);
            if (strcmp(col, "meeting") == 0) {
                snprintf(key_meeting, cap, "%.*s", len, (const char *)buf);
            }
        } else {
            sqlite3_bind_blob(st, 1, buf, len, SQLITE_TRANSIENT);
        }
    }
    sqlite3_bind_text(st, 2, meeting, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, seq);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(c), 1);
    sqlite3_finalize(st);
}

static void restore(sqlite3 *c, const char *key_meeting, int64_t key_seq, const char *col,
                    sqlite3_value *old)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "UPDATE audit SET %s = ?1 WHERE meeting = ?2 AND seq = ?3", col);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_value(st, 1, old);
    sqlite3_bind_text(st, 2, key_meeting, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, key_seq);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(c), 1);
    sqlite3_finalize(st);
    sqlite3_value_free(old);
}

/* ---- the audit chain ---- */

static void test_chain_verifies(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    make_chain_meeting(f);
    struct srv_meeting *m = srv_hub_find(&f->srv, CHAIN_ID, strlen(CHAIN_ID));
    uint8_t live_head[DB_HASH_BYTES];
    memcpy(live_head, m->head, sizeof(live_head));
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(m->committed_seq, CHAIN_ENTRIES);
    assert_null(m->pending);

    /* What the live hub verifies is what a fresh connection verifies. */
    int64_t count = 0, bad = -1;
    uint8_t head[DB_HASH_BYTES];
    assert_int_equal(srv_audit_verify(f->srv.db, CHAIN_ID, f->srv.host.pk, &count, head, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(count, CHAIN_ENTRIES);
    assert_memory_equal(head, live_head, DB_HASH_BYTES);
    hub_close(f);

    struct verdict v = verify_file(f->dbpath, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 0);
    assert_int_equal(v.count, CHAIN_ENTRIES);
    assert_memory_equal(v.head, live_head, DB_HASH_BYTES);

    /* The chain is the one the protocol defines, recomputed independently. */
    uint8_t mine[32];
    assert_int_equal(recompute_chain(f->dbpath, CHAIN_ID, mine), CHAIN_ENTRIES);
    assert_memory_equal(mine, live_head, 32);

    /* An unknown meeting has an empty chain, which is not an error. */
    v = verify_file(f->dbpath, "no-such-meeting", f->pk);
    assert_int_equal(v.count, 0);
    assert_int_equal(v.bad_seq, 0);

    /* Reopening the folder loads the meeting at its head. */
    hub_open(f);
    m = srv_hub_find(&f->srv, CHAIN_ID, strlen(CHAIN_ID));
    assert_non_null(m);
    assert_int_equal(m->rec->seq, CHAIN_ENTRIES);
    assert_memory_equal(m->head, live_head, DB_HASH_BYTES);
    hub_close(f);
}

/* Every column of every entry, changed by one value, is caught at that entry. */
static void test_chain_tamper_every_column(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    make_chain_meeting(f);
    sync_with_checkpoint(f, CHAIN_ID); /* so that even the last entry cannot go unnoticed */
    hub_close(f);

    sqlite3 *c = raw_open(f->dbpath);
    struct db *db = NULL;
    assert_int_equal(db_open(&db, f->dbpath, 0), 0);
    for (int64_t seq = 1; seq <= CHAIN_ENTRIES; seq++) {
        for (size_t k = 0; k < sizeof(audit_cols) / sizeof(audit_cols[0]); k++) {
            sqlite3_value *old = NULL;
            char km[PROTO_NAME_MAX + 1];
            int64_t ks = 0, count = 0, bad = 0;
            uint8_t head[DB_HASH_BYTES];
            tamper(c, CHAIN_ID, seq, audit_cols[k], &old, km, sizeof(km), &ks);
            assert_int_equal(srv_audit_verify(db, CHAIN_ID, f->pk, &count, head, &bad), 0);
            if (bad != seq) {
                fail_msg("seq %lld column %s: bad_seq %lld", (long long)seq, audit_cols[k],
                         (long long)bad);
            }
            assert_int_equal(count, seq - 1);
            restore(c, km, ks, audit_cols[k], old);
        }
        int64_t count = 0, bad = -1;
        uint8_t head[DB_HASH_BYTES];
        assert_int_equal(srv_audit_verify(db, CHAIN_ID, f->pk, &count, head, &bad), 0);
        assert_int_equal(bad, 0);
        assert_int_equal(count, CHAIN_ENTRIES);
    }
    db_close(db);
    sqlite3_close(c);
}

static void test_chain_delete_and_swap(void **state)
{
    struct fixture *f = *state;
    char path[4096];
    hub_open(f);
    make_chain_meeting(f);
    sync_with_checkpoint(f, CHAIN_ID);
    hub_close(f);

    /* A deleted entry in the middle: the chain misses its seq. */
    copy_db(f, "del.db", path, sizeof(path));
    sqlite3 *c = raw_open(path);
    raw_exec(c, "DELETE FROM audit WHERE meeting = 'm-chain' AND seq = 7");
    sqlite3_close(c);
    struct verdict v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 7);
    assert_int_equal(v.count, 6);

    /* The first entry deleted. */
    copy_db(f, "del1.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "DELETE FROM audit WHERE meeting = 'm-chain' AND seq = 1");
    sqlite3_close(c);
    v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 1);

    /* Two entries' payloads swapped: the first of them no longer hashes. */
    copy_db(f, "swap.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "UPDATE audit SET payload = CASE seq"
                " WHEN 5 THEN (SELECT payload FROM audit WHERE meeting = 'm-chain' AND seq = 9)"
                " ELSE (SELECT payload FROM audit WHERE meeting = 'm-chain' AND seq = 5) END"
                " WHERE meeting = 'm-chain' AND seq IN (5, 9)");
    sqlite3_close(c);
    v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 5);

    /* Two entries' seqs swapped (the log reordered). */
    copy_db(f, "swapseq.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "UPDATE audit SET seq = 1005 WHERE meeting = 'm-chain' AND seq = 5;"
                "UPDATE audit SET seq = 5 WHERE meeting = 'm-chain' AND seq = 12;"
                "UPDATE audit SET seq = 12 WHERE meeting = 'm-chain' AND seq = 1005;");
    sqlite3_close(c);
    v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 5);

    /* An entry of another meeting moved in (the same seq taken out first). */
    copy_db(f, "graft.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "INSERT INTO audit SELECT 'm-other', seq, time_ms, user, cid, kind, type, obj,"
                " payload, hash FROM audit WHERE meeting = 'm-chain';"
                "DELETE FROM audit WHERE meeting = 'm-chain' AND seq = 3;"
                "UPDATE audit SET meeting = 'm-chain' WHERE meeting = 'm-other' AND seq = 3;");
    sqlite3_close(c);
    v = verify_file(path, "m-other", f->pk);
    assert_int_equal(v.bad_seq, 1); /* its genesis is not m-chain's */
    v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 0); /* the same bytes under the same meeting id */

    /* The tail cut off before the signed head: the first missing seq. */
    copy_db(f, "tail.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "DELETE FROM audit WHERE meeting = 'm-chain' AND seq > 18");
    sqlite3_close(c);
    v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 19);
    assert_int_equal(v.count, 18);

    /* The checkpoint removed as well: the rows and the signed snapshot still stand at the
     * head that was cut off. */
    c = raw_open(path);
    raw_exec(c, "DELETE FROM checkpoints WHERE meeting = 'm-chain'");
    sqlite3_close(c);
    v = verify_file(path, CHAIN_ID, f->pk);
    assert_int_equal(v.bad_seq, 19);
    assert_int_equal(v.count, 18);

    /* And those too, with the rows put back at the new end: nothing left to tell but a
     * head kept by a client (known) or a stopped server's unsigned tail (head_signed). */
    c = raw_open(path);
    raw_exec(c, "DELETE FROM snapshots WHERE meeting = 'm-chain' AND seq > 18;"
                "UPDATE meetings SET rows_seq = 18 WHERE id = 'm-chain'");
    sqlite3_close(c);
    struct db *db = NULL;
    struct srv_audit_result *r = malloc(sizeof(*r));
    struct srv_audit_expect x = {.head_signed = true};
    assert_non_null(r);
    assert_int_equal(db_open(&db, path, 0), 0);
    assert_int_equal(srv_audit_check(db, CHAIN_ID, f->pk, NULL, r), 0);
    /* The rows were refreshed at 20: rewinding rows_seq alone leaves them ahead of 18. */
    assert_false(r->state);
    assert_int_equal(srv_audit_check(db, CHAIN_ID, f->pk, &x, r), 0);
    assert_true(r->bad_seq >= 1 && r->bad_seq <= 18);
    db_close(db);
    free(r);
}

/* ---- checkpoints ---- */

#define CP_ID    "m-cp"
#define CP_FIRST 105 /* entries before the first sync: checkpoint at 105 */
#define CP_TOTAL 115

static void make_checkpointed_meeting(struct fixture *f)
{
    struct srv_meeting *m = new_meeting(f, CP_ID, "Checkpoints");
    int64_t item = create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s}}", "fields", "number", "1");
    while (m->rec->seq < CP_FIRST) {
        char title[32];
        snprintf(title, sizeof(title), "title %lld", (long long)m->rec->seq);
        change(f, m, NULL, "update", PROTO_T_ITEM, item, "{s:{s:s}}", "fields", "title", title);
    }
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(m->checkpoint_seq, CP_FIRST);
    while (m->rec->seq < CP_TOTAL) {
        create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s}}", "fields", "title", "later");
    }
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(m->checkpoint_seq, CP_FIRST); /* not due yet: 10 entries, not a minute */
}

/* Rewrites the payload of entry seq (> 1) and recomputes every later hash, as a forger
 * without the host key could. */
static void forge_from(const char *path, const char *meeting, int64_t seq)
{
    /* {"fields": {"title": "forged"}} */
    static const uint8_t forged[] = {0x81, 0xa6, 'f', 'i', 'e',  'l', 'd', 's', 0x81, 0xa5, 't',
                                     'i',  't',  'l', 'e', 0xa6, 'f', 'o', 'r', 'g',  'e',  'd'};
    struct fe {
        struct db_audit a;
        char user[PROTO_NAME_MAX + 1], kind[16], type[16], cid[80], id_str[PROTO_NAME_MAX + 1];
        uint8_t payload[512];
    };
    static struct fe list[CP_TOTAL];
    sqlite3 *c = raw_open(path);
    sqlite3_stmt *st = NULL;
    uint8_t prev[DB_HASH_BYTES];
    size_t n = 0;

    assert_true(seq > 1);
    assert_int_equal(sqlite3_prepare_v2(c, "SELECT hash FROM audit WHERE meeting = ?1 AND seq = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, meeting, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq - 1);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    memcpy(prev, sqlite3_column_blob(st, 0), DB_HASH_BYTES);
    sqlite3_finalize(st);

    /* Read the entries into a list first, then write. */
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "SELECT seq, time_ms, user, cid, kind, type, obj, "
                                        "payload FROM audit WHERE meeting = ?1 AND seq >= ?2 "
                                        "ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, meeting, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_true(n < CP_TOTAL);
        struct fe *e = &list[n++];
        memset(e, 0, sizeof(*e));
        e->a.meeting = meeting;
        e->a.seq = sqlite3_column_int64(st, 0);
        e->a.time_ms = sqlite3_column_int64(st, 1);
        snprintf(e->user, sizeof(e->user), "%s", (const char *)sqlite3_column_text(st, 2));
        e->a.user = e->user;
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            snprintf(e->cid, sizeof(e->cid), "%s", (const char *)sqlite3_column_text(st, 3));
            e->a.cid = e->cid;
        }
        snprintf(e->kind, sizeof(e->kind), "%s", (const char *)sqlite3_column_text(st, 4));
        snprintf(e->type, sizeof(e->type), "%s", (const char *)sqlite3_column_text(st, 5));
        e->a.kind = e->kind;
        e->a.type = e->type;
        if (sqlite3_column_type(st, 6) == SQLITE_TEXT) {
            snprintf(e->id_str, sizeof(e->id_str), "%s", (const char *)sqlite3_column_text(st, 6));
            e->a.id_str = e->id_str;
        } else {
            e->a.id_int = sqlite3_column_int64(st, 6);
        }
        size_t plen = (size_t)sqlite3_column_bytes(st, 7);
        assert_true(plen <= sizeof(e->payload));
        memcpy(e->payload, sqlite3_column_blob(st, 7), plen);
        if (e->a.seq == seq) {
            memcpy(e->payload, forged, sizeof(forged));
            plen = sizeof(forged);
        }
        e->a.payload = e->payload;
        e->a.payload_len = plen;
    }
    sqlite3_finalize(st);
    assert_true(n > 0);

    assert_int_equal(sqlite3_prepare_v2(c,
                                        "UPDATE audit SET payload = ?1, hash = ?2 WHERE "
                                        "meeting = ?3 AND seq = ?4",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        uint8_t h[DB_HASH_BYTES];
        assert_int_equal(srv_audit_entry_hash(prev, &list[i].a, h), 0);
        sqlite3_bind_blob(st, 1, list[i].a.payload, (int)list[i].a.payload_len, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 2, h, DB_HASH_BYTES, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, meeting, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, list[i].a.seq);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(c), 1);
        sqlite3_reset(st);
        memcpy(prev, h, DB_HASH_BYTES);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
}

static void test_checkpoints(void **state)
{
    struct fixture *f = *state;
    char path[4096];
    hub_open(f);
    make_checkpointed_meeting(f);
    hub_close(f);

    struct verdict v = verify_file(f->dbpath, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, 0);
    assert_int_equal(v.count, CP_TOTAL);

    /* The checkpoint is signed by the host key over the documented message:
     * "confer/1 audit checkpoint" || u32be(len(meeting)) || meeting || u64be(seq) || head. */
    sqlite3 *c = raw_open(f->dbpath);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "SELECT seq, head, sig FROM checkpoints WHERE meeting = "
                                        "'m-cp'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int ncp = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint8_t msg[256];
        size_t n = 0;
        static const char label[] = "confer/1 audit checkpoint";
        int64_t seq = sqlite3_column_int64(st, 0);
        memcpy(msg, label, sizeof(label) - 1);
        n = sizeof(label) - 1;
        proto_frame_put_len(msg + n, (uint32_t)strlen(CP_ID));
        n += 4;
        memcpy(msg + n, CP_ID, strlen(CP_ID));
        n += strlen(CP_ID);
        for (int i = 0; i < 8; i++) {
            msg[n++] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
        }
        memcpy(msg + n, sqlite3_column_blob(st, 1), 32);
        n += 32;
        /* The periodic one, and the head signed when the session closed. */
        assert_int_equal(seq, ncp == 0 ? CP_FIRST : CP_TOTAL);
        assert_int_equal(crypto_sign_verify_detached(sqlite3_column_blob(st, 2), msg, n, f->pk), 0);
        ncp++;
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    assert_int_equal(ncp, 2);

    /* Truncation after the periodic checkpoint: the head signed at the close (and the
     * snapshot and rows stored with it) stand past the chain's end. */
    copy_db(f, "after.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "DELETE FROM audit WHERE meeting = 'm-cp' AND seq > 110");
    sqlite3_close(c);
    v = verify_file(path, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, 111);
    assert_int_equal(v.count, 110);

    /* Truncation before it is caught: the checkpoint is past the chain's end. */
    copy_db(f, "before.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "DELETE FROM audit WHERE meeting = 'm-cp' AND seq >= 100");
    sqlite3_close(c);
    v = verify_file(path, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, 100);
    assert_int_equal(v.count, 99);

    /* Just the checkpointed entry and what follows cut off. */
    copy_db(f, "at.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "DELETE FROM audit WHERE meeting = 'm-cp' AND seq >= 105");
    sqlite3_close(c);
    v = verify_file(path, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, 105);

    /* An entry rewritten with every later hash recomputed: the chain holds, the signed
     * head does not. */
    copy_db(f, "forged.db", path, sizeof(path));
    forge_from(path, CP_ID, 50);
    v = verify_file(path, CP_ID, NULL); /* without the key: the chain alone looks fine */
    assert_int_equal(v.bad_seq, 0);
    assert_int_equal(v.count, CP_TOTAL);
    v = verify_file(path, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, CP_FIRST);

    /* ... and moving the checkpoint's head along does not help without the key. */
    c = raw_open(path);
    raw_exec(c, "UPDATE checkpoints SET head = (SELECT hash FROM audit WHERE meeting = 'm-cp'"
                " AND seq = 105) WHERE meeting = 'm-cp'");
    sqlite3_close(c);
    v = verify_file(path, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, CP_FIRST);

    /* A damaged signature, and another server's key. */
    copy_db(f, "sig.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "UPDATE checkpoints SET sig = zeroblob(64) WHERE meeting = 'm-cp'");
    sqlite3_close(c);
    v = verify_file(path, CP_ID, f->pk);
    assert_int_equal(v.bad_seq, CP_FIRST);
    struct proto_hostkey other;
    assert_int_equal(proto_hostkey_generate(&other), 0);
    v = verify_file(f->dbpath, CP_ID, other.pk);
    sodium_memzero(&other, sizeof(other));
    assert_int_equal(v.bad_seq, CP_FIRST);

    /* A checkpoint of one meeting copied onto another does not verify. */
    copy_db(f, "graft.db", path, sizeof(path));
    c = raw_open(path);
    raw_exec(c, "INSERT INTO audit SELECT 'm-cq', seq, time_ms, user, cid, kind, type, obj,"
                " payload, hash FROM audit WHERE meeting = 'm-cp';"
                "INSERT INTO checkpoints SELECT 'm-cq', seq, head, sig FROM checkpoints"
                " WHERE meeting = 'm-cp'");
    sqlite3_close(c);
    v = verify_file(path, "m-cq", f->pk);
    assert_int_equal(v.bad_seq, 1);
}

/* ---- time travel: replaying the log to a seq gives the record as it was ---- */

struct replay {
    struct srv_rec *rec;
    int rc;
};

static int replay_one(void *ud, const struct db_audit *e)
{
    struct replay *r = ud;
    r->rc = srv_apply_entry(r->rec, e);
    return r->rc;
}

/* The record of meeting m at seq `at`, from the hub's log (database and pending). */
static struct srv_rec *record_at(struct fixture *f, struct srv_meeting *m, int64_t at)
{
    struct replay r = {.rec = srv_rec_new(m->rec->id)};
    assert_non_null(r.rec);
    assert_int_equal(srv_hub_entries(&f->srv, m, 0, at, replay_one, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.rec->seq, at);
    return r.rec;
}

static const struct srv_val *val(struct srv_rec *rec, enum proto_type t, int64_t id,
                                 const char *field)
{
    struct srv_obj *o = srv_rec_find(rec, t, id);
    if (o == NULL) {
        return NULL;
    }
    return &o->f[proto_field_find(t, field, strlen(field))];
}

static const char *str_of(struct srv_rec *rec, enum proto_type t, int64_t id, const char *field)
{
    const struct srv_val *v = val(rec, t, id, field);
    assert_non_null(v);
    return v->set ? v->s : NULL;
}

static const char *role_of(struct srv_rec *rec, const char *user)
{
    struct srv_member *mb = srv_rec_member(rec, user);
    return mb ? mb->role : NULL;
}

static void pack_rec(const struct srv_rec *rec, struct proto_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    assert_int_equal(srv_rec_pack(&pk, rec), 0);
}

static void assert_same_record(const struct srv_rec *a, const struct srv_rec *b)
{
    struct proto_buf pa = {0}, pb = {0};
    pack_rec(a, &pa);
    pack_rec(b, &pb);
    assert_int_equal(pa.len, pb.len);
    assert_memory_equal(pa.data, pb.data, pa.len);
    proto_buf_free(&pa, 0);
    proto_buf_free(&pb, 0);
    assert_int_equal(a->nmembers, b->nmembers);
    for (size_t i = 0; i < a->nmembers; i++) {
        struct srv_member *mb = srv_rec_member((struct srv_rec *)b, a->members[i].user);
        assert_non_null(mb);
        assert_string_equal(mb->role, a->members[i].role);
    }
}

static void test_time_travel(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    struct srv_meeting *m = new_meeting(f, "m-tt", "Before");
    int64_t s_ed = member(f, m, "ed", "editor"); /* 2 */
    int64_t item = create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s, s:s}}", "fields", "number", "4",
                          "title", "Old title"); /* 3 */
    int64_t s_item = m->rec->seq;
    int64_t doc = create(f, m, NULL, PROTO_T_DOC, "{s:{s:s, s:I}}", "fields", "ref", "TSAG-TD257",
                         "item", item); /* 4 */
    int64_t s_doc = m->rec->seq;
    int64_t s_upd = change(f, m, NULL, "update", PROTO_T_ITEM, item, "{s:{s:s}}", "fields", "title",
                           "New title"); /* 5 */
    int64_t s_meet = change(f, m, NULL, "update", PROTO_T_MEETING, 0, "{s:{s:s}}", "fields",
                            "title", "After");      /* 6 */
    assert_int_equal(srv_sync_offline(&f->srv), 0); /* the rest stays pending for a while */
    int64_t s_view = member(f, m, "ed", "viewer");  /* 7 */
    int64_t s_idel = change(f, m, NULL, "delete", PROTO_T_ITEM, item, "{}"); /* 8 */
    int64_t s_gone = member(f, m, "ed", NULL);                               /* 9 */
    int64_t s_ddel = change(f, m, NULL, "delete", PROTO_T_DOC, doc, "{}");   /* 10 */
    assert_int_equal(m->rec->seq, 10);
    assert_non_null(m->pending);

    for (int pass = 0; pass < 2; pass++) {
        struct srv_rec *r = NULL;

        r = record_at(f, m, 1);
        assert_string_equal(str_of(r, PROTO_T_MEETING, 0, "title"), "Before");
        assert_string_equal(role_of(r, "rap"), "rapporteur");
        assert_null(role_of(r, "ed"));
        srv_rec_free(r);

        r = record_at(f, m, s_ed);
        assert_string_equal(role_of(r, "ed"), "editor");
        assert_null(srv_rec_find(r, PROTO_T_ITEM, item)); /* before its create */
        srv_rec_free(r);

        r = record_at(f, m, s_item);
        assert_string_equal(str_of(r, PROTO_T_ITEM, item, "title"), "Old title");
        assert_int_equal(srv_rec_find(r, PROTO_T_ITEM, item)->seq, s_item);
        assert_null(srv_rec_find(r, PROTO_T_DOC, doc));
        srv_rec_free(r);

        r = record_at(f, m, s_doc);
        assert_int_equal(val(r, PROTO_T_DOC, doc, "item")->i, item);
        assert_string_equal(str_of(r, PROTO_T_ITEM, item, "title"), "Old title");
        srv_rec_free(r);

        r = record_at(f, m, s_upd);
        assert_string_equal(str_of(r, PROTO_T_ITEM, item, "title"), "New title");
        assert_string_equal(str_of(r, PROTO_T_ITEM, item, "number"), "4");
        assert_int_equal(srv_rec_find(r, PROTO_T_ITEM, item)->seq, s_upd);
        assert_string_equal(str_of(r, PROTO_T_MEETING, 0, "title"), "Before");
        srv_rec_free(r);

        r = record_at(f, m, s_meet);
        assert_string_equal(str_of(r, PROTO_T_MEETING, 0, "title"), "After");
        assert_int_equal(r->meeting.seq, s_meet);
        assert_string_equal(role_of(r, "ed"), "editor");
        srv_rec_free(r);

        r = record_at(f, m, s_view);
        assert_string_equal(role_of(r, "ed"), "viewer");
        assert_non_null(srv_rec_find(r, PROTO_T_ITEM, item));
        srv_rec_free(r);

        r = record_at(f, m, s_idel);
        assert_null(srv_rec_find(r, PROTO_T_ITEM, item)); /* after its delete */
        assert_non_null(srv_rec_find(r, PROTO_T_DOC, doc));
        assert_false(val(r, PROTO_T_DOC, doc, "item")->set); /* its reference cleared */
        srv_rec_free(r);

        r = record_at(f, m, s_gone);
        assert_null(role_of(r, "ed"));
        assert_string_equal(role_of(r, "rap"), "rapporteur");
        srv_rec_free(r);

        r = record_at(f, m, s_ddel);
        assert_null(srv_rec_find(r, PROTO_T_DOC, doc));
        assert_same_record(r, m->rec); /* replay to the head is the live record */
        srv_rec_free(r);

        /* Second pass: everything durable, read from the database only. */
        assert_int_equal(srv_sync_offline(&f->srv), 0);
        assert_null(m->pending);
    }

    /* The record loaded from the tables equals the replay of the whole log. */
    struct srv_rec *live = record_at(f, m, m->rec->seq);
    hub_close(f);
    hub_open(f);
    m = srv_hub_find(&f->srv, "m-tt", 4);
    assert_non_null(m);
    assert_same_record(live, m->rec);
    srv_rec_free(live);
    hub_close(f);
}

/* The whole chain meeting, loaded from its tables, equals its replay. */
static void test_load_equals_replay(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    make_chain_meeting(f);
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    hub_close(f);
    hub_open(f);
    struct srv_meeting *m = srv_hub_find(&f->srv, CHAIN_ID, strlen(CHAIN_ID));
    assert_non_null(m);
    struct srv_rec *r = record_at(f, m, CHAIN_ENTRIES);
    assert_same_record(r, m->rec);
    srv_rec_free(r);
    hub_close(f);
}

/* ---- srv_apply_entry on every kind ---- */

struct entry {
    struct db_audit a;
    struct proto_buf payload;
};

static void vmake(struct entry *e, int64_t seq, const char *kind, const char *type, int64_t id,
                  const char *id_str, const char *fmt, va_list ap)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(cli_vpackf(&e->payload, fmt, ap), 0);
    e->a.meeting = "m-apply";
    e->a.seq = seq;
    e->a.time_ms = 1685000000000 + seq;
    e->a.user = "rap";
    e->a.kind = kind;
    e->a.type = type;
    e->a.id_int = id;
    e->a.id_str = id_str;
    e->a.payload = e->payload.data;
    e->a.payload_len = e->payload.len;
}

/* Applies one entry; returns srv_apply_entry's result. */
static int apply(struct srv_rec *rec, int64_t seq, const char *kind, const char *type, int64_t id,
                 const char *id_str, const char *fmt, ...)
{
    struct entry e;
    va_list ap;
    va_start(ap, fmt);
    vmake(&e, seq, kind, type, id, id_str, fmt, ap);
    va_end(ap);
    int rc = srv_apply_entry(rec, &e.a);
    proto_buf_free(&e.payload, 0);
    return rc;
}

static void test_apply_every_kind(void **state)
{
    (void)state;
    struct srv_rec *rec = srv_rec_new("m-apply");
    int64_t seq = 0;
    assert_non_null(rec);

    /* The meeting: create (with its rapporteur), update. */
    assert_int_equal(apply(rec, ++seq, "create", "meeting", 0, "m-apply", "{s:{s:s, s:I}, s:s}",
                           "fields", "title", "T", "deadline_days", (int64_t)10, "rapporteur",
                           "rap"),
                     0);
    assert_string_equal(str_of(rec, PROTO_T_MEETING, 0, "title"), "T");
    assert_int_equal(val(rec, PROTO_T_MEETING, 0, "deadline_days")->i, 10);
    assert_string_equal(str_of(rec, PROTO_T_MEETING, 0, "status"), "draft");
    assert_string_equal(role_of(rec, "rap"), "rapporteur");
    assert_int_equal(srv_rec_member(rec, "rap")->seq, 1);
    assert_int_equal(rec->seq, 1);
    assert_int_equal(rec->meeting.seq, 1);
    assert_int_equal(apply(rec, ++seq, "update", "meeting", 0, "m-apply", "{s:{s:s, s:n}}",
                           "fields", "status", "final", "title"),
                     0);
    assert_string_equal(str_of(rec, PROTO_T_MEETING, 0, "status"), "final");
    assert_null(str_of(rec, PROTO_T_MEETING, 0, "title")); /* nil unsets */
    assert_int_equal(rec->meeting.seq, 2);

    /* Members: set, change, remove. */
    assert_int_equal(apply(rec, ++seq, "member", "member", 0, "ed", "{s:s}", "role", "editor"), 0);
    assert_string_equal(role_of(rec, "ed"), "editor");
    assert_int_equal(srv_rec_member(rec, "ed")->seq, seq);
    assert_int_equal(apply(rec, ++seq, "member", "member", 0, "ed", "{s:s}", "role", "counsellor"),
                     0);
    assert_string_equal(role_of(rec, "ed"), "counsellor");
    assert_int_equal(apply(rec, ++seq, "member", "member", 0, "ed", "{s:n}", "role"), 0);
    assert_null(role_of(rec, "ed"));
    assert_int_equal(rec->seq, seq);

    /* Every other type: create, update, delete. */
    static const struct {
        const char *type;
        const char *field; /* a string field to update */
    } types[] = {
        {"session", "title"}, {"item", "title"},    {"doc", "source"},  {"action", "owner"},
        {"decision", "text"}, {"interim", "topic"}, {"person", "note"},
    };
    int64_t item = 0;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        enum proto_type t = proto_type_find(types[i].type, strlen(types[i].type));
        int64_t id = 100 + (int64_t)i;
        assert_int_not_equal(t, PROTO_T_COUNT);
        assert_int_equal(apply(rec, ++seq, "create", types[i].type, id, NULL, "{s:{s:s}}", "fields",
                               types[i].field, "first"),
                         0);
        assert_string_equal(str_of(rec, t, id, types[i].field), "first");
        assert_int_equal(srv_rec_find(rec, t, id)->seq, seq);
        /* A second create of the same id does not fit. */
        assert_int_not_equal(
            apply(rec, seq + 1, "create", types[i].type, id, NULL, "{s:{}}", "fields"), 0);
        assert_int_equal(rec->seq, seq);
        assert_int_equal(apply(rec, ++seq, "update", types[i].type, id, NULL, "{s:{s:s}}", "fields",
                               types[i].field, "second"),
                         0);
        assert_string_equal(str_of(rec, t, id, types[i].field), "second");
        assert_int_equal(srv_rec_find(rec, t, id)->seq, seq);
        assert_int_equal(rec->seq, seq);
        if (t == PROTO_T_ITEM) {
            item = id; /* kept for the references below */
            continue;
        }
        assert_int_equal(apply(rec, ++seq, "delete", types[i].type, id, NULL, "{}"), 0);
        assert_null(srv_rec_find(rec, t, id));
        assert_int_equal(rec->seq, seq);
        /* Updating or deleting what is gone does not fit. */
        assert_int_equal(apply(rec, seq + 1, "update", types[i].type, id, NULL, "{s:{}}", "fields"),
                         PROTO_EINVAL);
        assert_int_equal(apply(rec, seq + 1, "delete", types[i].type, id, NULL, "{}"),
                         PROTO_EINVAL);
        assert_int_equal(rec->seq, seq);
    }

    /* Integer fields and item references; deleting the item clears the references. */
    assert_int_equal(apply(rec, ++seq, "create", "doc", 200, NULL, "{s:{s:s, s:I}}", "fields",
                           "ref", "TSAG-TD1", "item", item),
                     0);
    assert_int_equal(apply(rec, ++seq, "create", "decision", 201, NULL, "{s:{s:I, s:s}}", "fields",
                           "item", item, "kind", "decided"),
                     0);
    assert_int_equal(apply(rec, ++seq, "create", "interim", 202, NULL, "{s:{s:I, s:s}}", "fields",
                           "deadline_days", (int64_t)-3, "date", "2023-07-27"),
                     0);
    assert_int_equal(val(rec, PROTO_T_INTERIM, 202, "deadline_days")->i, -3);
    assert_int_equal(val(rec, PROTO_T_DOC, 200, "item")->i, item);
    assert_int_equal(apply(rec, ++seq, "delete", "item", item, NULL, "{}"), 0);
    assert_false(val(rec, PROTO_T_DOC, 200, "item")->set);
    assert_false(val(rec, PROTO_T_DECISION, 201, "item")->set);
    assert_string_equal(str_of(rec, PROTO_T_DECISION, 201, "kind"), "decided");

    /* Text edits: an op applied to the field's value; [] still takes its seq; a whole
     * replacement (an update carrying its op under "ops") sets the new value. */
    assert_int_equal(apply(rec, ++seq, "create", "action", 210, NULL, "{s:{s:s, s:s}}", "fields",
                           "ref", "RG-1", "text", "hello"),
                     0);
    assert_int_equal(apply(rec, ++seq, "text", "action", 210, NULL, "{s:s, s:[i, s]}", "field",
                           "text", "op", 5, " world"),
                     0);
    assert_string_equal(str_of(rec, PROTO_T_ACTION, 210, "text"), "hello world");
    assert_int_equal(srv_rec_find(rec, PROTO_T_ACTION, 210)->seq, seq);
    assert_int_equal(
        apply(rec, ++seq, "text", "action", 210, NULL, "{s:s, s:[]}", "field", "text", "op"), 0);
    assert_string_equal(str_of(rec, PROTO_T_ACTION, 210, "text"), "hello world");
    assert_int_equal(srv_rec_find(rec, PROTO_T_ACTION, 210)->seq, seq);
    assert_int_equal(rec->seq, seq);
    assert_int_equal(apply(rec, ++seq, "text", "action", 210, NULL, "{s:s, s:[{s:i}, s]}", "field",
                           "text", "op", "d", 5, "Hi,"),
                     0);
    assert_string_equal(str_of(rec, PROTO_T_ACTION, 210, "text"), "Hi, world");
    assert_int_equal(apply(rec, ++seq, "update", "action", 210, NULL, "{s:{s:s}, s:{s:[{s:i}, s]}}",
                           "fields", "text", "new", "ops", "text", "d", 9, "new"),
                     0);
    assert_string_equal(str_of(rec, PROTO_T_ACTION, 210, "text"), "new");
    assert_int_equal(apply(rec, ++seq, "text", "meeting", 0, "m-apply", "{s:s, s:[s]}", "field",
                           "abstract", "op", "Abstract."),
                     0);
    assert_string_equal(str_of(rec, PROTO_T_MEETING, 0, "abstract"), "Abstract.");
    assert_int_equal(rec->meeting.seq, seq);
    /* An op past the text, an unknown field, a missing object do not fit. */
    assert_int_not_equal(apply(rec, seq + 1, "text", "action", 210, NULL, "{s:s, s:[i, s]}",
                               "field", "text", "op", 50, "x"),
                         0);
    assert_int_equal(apply(rec, seq + 1, "text", "action", 210, NULL, "{s:s, s:[s]}", "field",
                           "colour", "op", "x"),
                     PROTO_EINVAL);
    assert_int_equal(apply(rec, seq + 1, "text", "action", 999, NULL, "{s:s, s:[s]}", "field",
                           "text", "op", "x"),
                     PROTO_EINVAL);
    assert_string_equal(str_of(rec, PROTO_T_ACTION, 210, "text"), "new");
    assert_int_equal(rec->seq, seq);

    /* Entries that do not fit the record leave its seq alone. */
    assert_int_equal(apply(rec, seq + 1, "create", "gadget", 300, NULL, "{s:{}}", "fields"),
                     PROTO_EINVAL);
    assert_int_equal(apply(rec, seq + 1, "frobnicate", "doc", 200, NULL, "{s:{}}", "fields"),
                     PROTO_EINVAL);
    assert_int_equal(
        apply(rec, seq + 1, "create", "doc", 301, NULL, "{s:{s:s}}", "fields", "colour", "red"),
        PROTO_EINVAL);
    assert_null(srv_rec_find(rec, PROTO_T_DOC, 301));
    assert_int_equal(
        apply(rec, seq + 1, "create", "doc", 302, NULL, "{s:{s:I}}", "fields", "ref", (int64_t)5),
        PROTO_EINVAL);
    assert_int_equal(
        apply(rec, seq + 1, "create", "doc", 303, NULL, "{s:{s:s}}", "fields", "item", "one"),
        PROTO_EINVAL);
    assert_null(srv_rec_find(rec, PROTO_T_DOC, 303));
    assert_int_equal(rec->seq, seq);
    struct entry e;
    memset(&e, 0, sizeof(e));
    static const uint8_t junk[] = {0xc1};
    e.a.meeting = "m-apply";
    e.a.seq = seq + 1;
    e.a.user = "rap";
    e.a.kind = "create";
    e.a.type = "doc";
    e.a.id_int = 400;
    e.a.payload = junk;
    e.a.payload_len = sizeof(junk);
    assert_int_equal(srv_apply_entry(rec, &e.a), PROTO_EINVAL);
    e.a.payload_len = 0;
    assert_int_equal(srv_apply_entry(rec, &e.a), PROTO_EINVAL);
    assert_int_equal(rec->seq, seq);
    srv_rec_free(rec);
}

/* Changes made through the hub end in the database tables as they are in memory. */
static void test_commit_writes_tables(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    struct srv_meeting *m = new_meeting(f, "m-tables", "Tables");
    int64_t item = create(f, m, "cid-1", PROTO_T_ITEM, "{s:{s:s}}", "fields", "number", "1");
    int64_t doc =
        create(f, m, NULL, PROTO_T_DOC, "{s:{s:s, s:I}}", "fields", "ref", "TSAG-C1", "item", item);
    member(f, m, "view", "viewer");
    /* Two updates of one object in one batch: one write, with the final state. */
    change(f, m, NULL, "update", PROTO_T_DOC, doc, "{s:{s:s}}", "fields", "title", "A");
    change(f, m, NULL, "update", PROTO_T_DOC, doc, "{s:{s:s}}", "fields", "title", "B");
    change(f, m, NULL, "delete", PROTO_T_ITEM, item, "{}");
    assert_int_equal(srv_hub_hold(&f->srv, m), m->last_batch);
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(srv_hub_hold(&f->srv, m), 0);
    assert_int_equal(m->committed_seq, m->rec->seq);
    hub_close(f);

    sqlite3 *c = raw_open(f->dbpath);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(c, "SELECT title, item, seq FROM docs WHERE id = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, doc);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "B");
    assert_int_equal(sqlite3_column_type(st, 1), SQLITE_NULL);
    assert_int_equal(sqlite3_column_int64(st, 2), 6); /* its last change: the item's delete
                                                       * clears the reference, not its seq */
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "SELECT (SELECT count(*) FROM items WHERE meeting = "
                                        "'m-tables'), (SELECT role FROM members WHERE meeting = "
                                        "'m-tables' AND user = 'view'), (SELECT role FROM "
                                        "members WHERE meeting = 'm-tables' AND user = 'rap'), "
                                        "(SELECT seq FROM audit WHERE meeting = 'm-tables' AND "
                                        "cid = 'cid-1'), (SELECT max(seq) FROM audit WHERE "
                                        "meeting = 'm-tables')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 0);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "viewer");
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "rapporteur");
    assert_int_equal(sqlite3_column_int64(st, 3), 2);
    assert_int_equal(sqlite3_column_int64(st, 4), 7);
    sqlite3_finalize(st);
    sqlite3_close(c);

    /* A second meeting with the same id is refused. */
    hub_open(f);
    struct srv_change ch = {.user = "conferd", .id_str = "m-tables"};
    struct srv_meeting *dup = NULL;
    assert_int_equal(cli_packf(&ch.payload, "{s:{}, s:s}", "fields", "rapporteur", "rap"), 0);
    assert_int_equal(srv_hub_create_meeting(&f->srv, "m-tables", &ch, &dup), PROTO_ECONFLICT);
    assert_null(dup);
    hub_close(f);
}

/* One text column of one row, for the tests below. */
static char *column_text(struct fixture *f, const char *sql, int64_t id)
{
    sqlite3 *c = raw_open(f->dbpath);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *out = strdup(t ? (const char *)t : "");
    sqlite3_finalize(st);
    sqlite3_close(c);
    return out;
}

/* ---- the hooks of the live view: durable entries, a handler's own write in a batch ---- */

struct durable_log {
    int64_t seqs[16];
    size_t n;
    int done_rc[4];
    size_t ndone;
};

static void on_durable(void *ud, struct srv_meeting *m, const struct db_audit *e)
{
    struct durable_log *d = ud;
    /* Told only what the database holds, in seq order. */
    if (e != NULL && d->n < 16) {
        assert_true(e->seq <= m->committed_seq);
        assert_true(d->n == 0 || e->seq == d->seqs[d->n - 1] + 1);
        d->seqs[d->n++] = e->seq;
    }
}

/* A share's row and where its done callback reports. */
struct share_job {
    struct db_share s;
    struct durable_log *d;
};

static int write_share(struct db *db, void *ud)
{
    return db_share_add(db, &((struct share_job *)ud)->s);
}

static int write_fails(struct db *db, void *ud)
{
    return PROTO_EDB;
}

static void write_done(void *ud, int rc)
{
    struct durable_log *d = ((struct share_job *)ud)->d;
    if (d->ndone < 4) {
        d->done_rc[d->ndone++] = rc;
    }
}

static int64_t share_change(struct fixture *f, struct srv_meeting *m, const char *kind, int64_t id)
{
    struct srv_change ch = {
        .m = m, .user = "rap", .kind = kind, .type = PROTO_T_COUNT, .type_name = "share", .id = id};
    assert_int_equal(cli_packf(&ch.payload, "{s:s, s:n}", "label", "projector", "expires"), 0);
    return srv_hub_commit(&f->srv, &ch);
}

static void test_share_write_and_durable_listener(void **state)
{
    struct fixture *f = *state;
    struct durable_log d = {0};
    struct share_job job = {.d = &d};
    struct db_share *sh = &job.s;
    hub_open(f);
    struct srv_meeting *m = new_meeting(f, "m-share", "Shares");
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    srv_hub_listen(&f->srv, on_durable, &d);
    int64_t item = create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s}}", "fields", "number", "1");
    int64_t before = m->rec->seq;
    sh->id = srv_hub_next_id(&f->srv);
    snprintf(sh->meeting, sizeof(sh->meeting), "m-share");
    snprintf(sh->user, sizeof(sh->user), "rap");
    memset(sh->hash, 9, sizeof(sh->hash));
    int64_t seq = share_change(f, m, "create", sh->id);
    assert_int_equal(seq, before + 1);
    assert_int_equal(srv_hub_add_write(&f->srv, "m-share", write_share, write_done, &job), 0);
    /* Nothing is told before the batch is durable. */
    assert_int_equal(d.n, 0);
    assert_int_equal(d.ndone, 0);
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(d.n, 2);
    assert_true(d.seqs[1] == seq);
    assert_int_equal(d.ndone, 1);
    assert_int_equal(d.done_rc[0], 0);
    /* A share is no part of the record: the item is all it holds. */
    assert_int_equal(m->rec->objs[PROTO_T_ITEM].n, 1);
    assert_non_null(srv_rec_find(m->rec, PROTO_T_ITEM, item));
    assert_true(m->rec->seq == seq);

    /* A batch whose own write fails: nothing of it is durable, nobody is told. */
    int64_t bad = share_change(f, m, "delete", sh->id);
    assert_true(bad == seq + 1);
    assert_int_equal(srv_hub_add_write(&f->srv, "m-share", write_fails, write_done, &job), 0);
    assert_int_equal(srv_sync_offline(&f->srv), PROTO_EDB);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ndone, 2);
    assert_true(d.done_rc[1] < 0);
    assert_true(m->rec->seq == seq); /* reloaded: the failed change is gone */
    hub_close(f);

    char *type =
        column_text(f, "SELECT type FROM audit WHERE meeting = 'm-share' AND seq = ?1", seq);
    assert_string_equal(type, "share");
    free(type);
    char *label =
        column_text(f, "SELECT label || '/' || revoked_ms FROM shares WHERE id = ?1", sh->id);
    assert_string_equal(label, "/0");
    free(label);
    /* The log replays through the share entry (verify and time travel read it). */
    hub_open(f);
    m = srv_hub_find(&f->srv, "m-share", 7);
    assert_non_null(m);
    assert_true(m->rec->seq == seq);
    hub_close(f);
}

/* Changes of one batch are written in their order: swapping two docs' unique refs through
 * a free one is valid at every step, so the batch commits. */
static void test_batch_swaps_unique_refs(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    struct srv_meeting *m = new_meeting(f, "m-swap", "Swap");
    int64_t a = create(f, m, NULL, PROTO_T_DOC, "{s:{s:s}}", "fields", "ref", "x");
    int64_t b = create(f, m, NULL, PROTO_T_DOC, "{s:{s:s}}", "fields", "ref", "y");
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    change(f, m, NULL, "update", PROTO_T_DOC, a, "{s:{s:s}}", "fields", "ref", "z");
    change(f, m, NULL, "update", PROTO_T_DOC, b, "{s:{s:s}}", "fields", "ref", "x");
    change(f, m, NULL, "update", PROTO_T_DOC, a, "{s:{s:s}}", "fields", "ref", "y");
    /* And a doc pointed at an item created after the doc's first change. */
    change(f, m, NULL, "update", PROTO_T_DOC, b, "{s:{s:s}}", "fields", "title", "B");
    int64_t item = create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s}}", "fields", "number", "1");
    change(f, m, NULL, "update", PROTO_T_DOC, b, "{s:{s:I}}", "fields", "item", item);
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    assert_int_equal(f->srv.write_failures, 0);
    hub_close(f);
    char *ra = column_text(f, "SELECT ref FROM docs WHERE id = ?1", a);
    char *rb = column_text(f, "SELECT ref FROM docs WHERE id = ?1", b);
    char *ib = column_text(f, "SELECT item FROM docs WHERE id = ?1", b);
    char want[32];
    snprintf(want, sizeof(want), "%lld", (long long)item);
    assert_string_equal(ra, "y");
    assert_string_equal(rb, "x");
    assert_string_equal(ib, want);
    free(ra);
    free(rb);
    free(ib);
}

/* Text edits merge into the next write of their object; other changes keep their own
 * write. Whatever was merged, the row ends as memory has it. */
static void test_batch_text_edits_merge(void **state)
{
    struct fixture *f = *state;
    hub_open(f);
    struct srv_meeting *m = new_meeting(f, "m-text", "Text");
    int64_t item = create(f, m, NULL, PROTO_T_ITEM, "{s:{s:s}}", "fields", "number", "1");
    change(f, m, NULL, "text", PROTO_T_ITEM, item, "{s:s, s:[s]}", "field", "body", "op", "ab");
    change(f, m, NULL, "update", PROTO_T_ITEM, item, "{s:{s:s}}", "fields", "title", "T1");
    change(f, m, NULL, "text", PROTO_T_ITEM, item, "{s:s, s:[I, s]}", "field", "body", "op",
           (int64_t)2, "c");
    change(f, m, NULL, "text", PROTO_T_ITEM, item, "{s:s, s:[s]}", "field", "body", "op", "<");
    change(f, m, NULL, "update", PROTO_T_ITEM, item, "{s:{s:s}}", "fields", "number", "2");
    change(f, m, NULL, "text", PROTO_T_ITEM, item, "{s:s, s:[I, s]}", "field", "body", "op",
           (int64_t)4, ">");
    assert_int_equal(srv_sync_offline(&f->srv), 0);
    hub_close(f);
    char *body = column_text(f, "SELECT body FROM items WHERE id = ?1", item);
    char *title = column_text(f, "SELECT title FROM items WHERE id = ?1", item);
    char *number = column_text(f, "SELECT number FROM items WHERE id = ?1", item);
    char *seq = column_text(f, "SELECT seq FROM items WHERE id = ?1", item);
    assert_string_equal(body, "<abc>");
    assert_string_equal(title, "T1");
    assert_string_equal(number, "2");
    assert_string_equal(seq, "8");
    free(body);
    free(title);
    free(number);
    free(seq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_tamper_every_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_delete_and_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_travel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_equals_replay, setup, teardown),
        cmocka_unit_test(test_apply_every_kind),
        cmocka_unit_test_setup_teardown(test_commit_writes_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_write_and_durable_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_swaps_unique_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_text_edits_merge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
