/* test_db.c - the database module against real files in a temporary folder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "testutil.h"

/* The schema version db_open migrates to; bump with every migration added. */
#define LATEST_SCHEMA 4

#define PWHASH "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"

struct fixture {
    char *dir;
    char path[4096];
    struct db *db;
};

static void path_in(const struct fixture *f, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    path_in(f, "confer.db", f->path, sizeof(f->path));
    assert_int_equal(db_open(&f->db, f->path, DB_CREATE), 0);
    assert_non_null(f->db);
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

static void token(uint8_t h[DB_TOKEN_HASH_BYTES], int seed)
{
    for (int i = 0; i < DB_TOKEN_HASH_BYTES; i++) {
        h[i] = (uint8_t)(seed * 31 + i);
    }
}

/* Runs SQL on the file with a plain SQLite connection, behind db/'s back. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *c = NULL;

    assert_int_equal(sqlite3_open(path, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
}

static int mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

/* ---- open and migrate ---- */

static void test_open_migrates_and_reopen_is_noop(void **state)
{
    struct fixture *f = *state;
    struct db *other = NULL;
    struct db *again = NULL;
    struct db_account a;
    int64_t before = 0, after = 0;
    int version = 0;

    assert_int_equal(db_schema_version(f->db, &version), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);

    /* A reopen must not write: another connection sees no commit. */
    assert_int_equal(db_open(&other, f->path, 0), 0);
    assert_int_equal(db_data_version(other, &before), 0);
    assert_int_equal(db_open(&again, f->path, DB_CREATE), 0);
    assert_int_equal(db_schema_version(again, &version), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    assert_int_equal(db_account_get(again, "alice", &a), 0);
    assert_int_equal(db_data_version(other, &after), 0);
    assert_true(before == after);
    assert_int_equal(db_integrity_check(again), 0);
    db_close(again);
    db_close(other);
}

static void test_open_missing(void **state)
{
    struct fixture *f = *state;
    struct db *db = (struct db *)&db; /* must be reset to NULL */
    char path[4096];

    path_in(f, "absent.db", path, sizeof(path));
    assert_int_equal(db_open(&db, path, 0), PROTO_ENOTFOUND);
    assert_null(db);
    assert_int_equal(db_open(&db, path, DB_READONLY), PROTO_ENOTFOUND);
    assert_null(db);
    assert_int_equal(db_open(&db, path, DB_READONLY | DB_CREATE), PROTO_EINVAL);
    assert_int_equal(db_open(&db, path, 64), PROTO_EINVAL);
    assert_int_equal(db_open(&db, NULL, 0), PROTO_EINVAL);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_open_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    struct db *db = NULL;

    db_close(f->db);
    f->db = NULL;
    raw_exec(f->path, "PRAGMA user_version = 99");
    assert_int_equal(db_open(&db, f->path, 0), PROTO_EDB);
    assert_null(db);
    assert_int_equal(db_open(&db, f->path, DB_READONLY), PROTO_EDB);
    assert_null(db);
}

static void test_open_foreign_file_refused(void **state)
{
    struct fixture *f = *state;
    struct db *db = NULL;
    char path[4096];
    FILE *fp = NULL;

    /* Another program's SQLite database, at version 0 or not. */
    path_in(f, "other.db", path, sizeof(path));
    raw_exec(path, "CREATE TABLE t (x)");
    assert_int_equal(db_open(&db, path, DB_CREATE), PROTO_EDB);
    assert_null(db);
    raw_exec(path, "PRAGMA user_version = 1");
    assert_int_equal(db_open(&db, path, 0), PROTO_EDB);
    assert_null(db);

    /* Not SQLite at all. */
    path_in(f, "text.db", path, sizeof(path));
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) {
        fputs("this is not a database file, just some text\n", fp);
    }
    fclose(fp);
    assert_int_equal(db_open(&db, path, DB_CREATE), PROTO_EDB);
    assert_null(db);
}

static void test_file_modes(void **state)
{
    struct fixture *f = *state;
    struct db *db = NULL;
    char path[4096], wal[4200], shm[4200];
    mode_t old = umask(0); /* the modes must not depend on a careful umask */

    path_in(f, "modes.db", path, sizeof(path));
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    assert_int_equal(db_open(&db, path, DB_CREATE), 0);
    assert_int_equal(db_account_add(db, "alice", PWHASH, false), 0);
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(mode_of(wal), 0600);
    assert_int_equal(mode_of(shm), 0600);
    db_close(db);
    umask(old);
    assert_int_equal(mode_of(path), 0600);
}

static void test_readonly(void **state)
{
    struct fixture *f = *state;
    struct db *ro = NULL;
    struct db_account a;
    int version = 0;

    assert_int_equal(db_account_add(f->db, "alice", PWHASH, true), 0);
    assert_int_equal(db_open(&ro, f->path, DB_READONLY), 0);
    assert_int_equal(db_schema_version(ro, &version), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    assert_int_equal(db_account_get(ro, "alice", &a), 0);
    assert_true(a.operator);
    assert_int_equal(db_account_add(ro, "bob", PWHASH, false), PROTO_EDB);
    assert_non_null(strstr(db_errmsg(ro), "readonly"));
    db_close(ro);
}

/* ---- accounts ---- */

static void test_account_add_get(void **state)
{
    struct fixture *f = *state;
    struct db_account a;
    struct db_account b;

    assert_int_equal(db_account_add(f->db, "alice", PWHASH, true), 0);
    assert_int_equal(db_account_add(f->db, "bob.smith-2_x", "h2", false), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_string_equal(a.name, "alice");
    assert_string_equal(a.pwhash, PWHASH);
    assert_true(a.operator);
    assert_false(a.disabled);
    assert_true(a.gen == 1);
    assert_true(a.id > 0);
    assert_true(a.created_ms > 1600000000000LL);
    assert_int_equal(db_account_get(f->db, "bob.smith-2_x", &b), 0);
    assert_string_equal(b.pwhash, "h2");
    assert_false(b.operator);
    assert_true(b.id != a.id);
}

static void test_account_duplicate_and_invalid(void **state)
{
    struct fixture *f = *state;
    char longname[PROTO_NAME_MAX + 2];
    char longhash[DB_PWHASH_MAX + 1];
    struct db_account a;

    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_account_add(f->db, "alice", "other", true), PROTO_ECONFLICT);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_string_equal(a.pwhash, PWHASH);
    assert_false(a.operator);

    assert_int_equal(db_account_add(f->db, "", PWHASH, false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, "Alice", PWHASH, false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, "-alice", PWHASH, false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, ".alice", PWHASH, false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, "al ice", PWHASH, false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, "al\xc3\xa9", PWHASH, false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, NULL, PWHASH, false), PROTO_EINVAL);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(db_account_add(f->db, longname, PWHASH, false), PROTO_EINVAL);
    longname[PROTO_NAME_MAX] = '\0'; /* exactly the maximum */
    assert_int_equal(db_account_add(f->db, longname, PWHASH, false), 0);
    assert_int_equal(db_account_get(f->db, longname, &a), 0);
    assert_string_equal(a.name, longname);

    assert_int_equal(db_account_add(f->db, "bob", "", false), PROTO_EINVAL);
    assert_int_equal(db_account_add(f->db, "bob", NULL, false), PROTO_EINVAL);
    memset(longhash, 'h', sizeof(longhash) - 1);
    longhash[sizeof(longhash) - 1] = '\0';
    assert_int_equal(db_account_add(f->db, "bob", longhash, false), PROTO_EINVAL);
    longhash[DB_PWHASH_MAX - 1] = '\0';
    assert_int_equal(db_account_add(f->db, "bob", longhash, false), 0);
    assert_int_equal(db_account_get(f->db, "bob", &a), 0);
    assert_string_equal(a.pwhash, longhash);
}

struct names {
    char name[8][PROTO_NAME_MAX + 1];
    int n;
    int stop_at; /* return 7 when n reaches this */
    struct db *db;
    int inner_rc;
};

static int collect(void *ud, const struct db_account *a)
{
    struct names *ns = ud;
    struct db_account b;

    if (ns->n >= 8) {
        return -100;
    }
    snprintf(ns->name[ns->n++], sizeof(ns->name[0]), "%s", a->name);
    if (ns->db != NULL) {
        /* Other statements may run inside the callback; the list itself may not. */
        assert_int_equal(db_account_get(ns->db, a->name, &b), 0);
        assert_true(b.id == a->id);
        ns->inner_rc = db_account_list(ns->db, collect, ud);
    }
    return ns->n == ns->stop_at ? 7 : 0;
}

static void test_account_list(void **state)
{
    struct fixture *f = *state;
    struct names ns;

    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_account_list(f->db, collect, &ns), 0);
    assert_int_equal(ns.n, 0);

    assert_int_equal(db_account_add(f->db, "zed", PWHASH, false), 0);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_account_add(f->db, "bob", PWHASH, false), 0);
    assert_int_equal(db_account_add(f->db, "alice2", PWHASH, false), 0);
    assert_int_equal(db_account_list(f->db, collect, &ns), 0);
    assert_int_equal(ns.n, 4);
    assert_string_equal(ns.name[0], "alice");
    assert_string_equal(ns.name[1], "alice2");
    assert_string_equal(ns.name[2], "bob");
    assert_string_equal(ns.name[3], "zed");

    memset(&ns, 0, sizeof(ns));
    ns.stop_at = 2;
    assert_int_equal(db_account_list(f->db, collect, &ns), 7);
    assert_int_equal(ns.n, 2);

    /* The statement is reset after the early stop: a new listing starts over. */
    memset(&ns, 0, sizeof(ns));
    ns.stop_at = 1;
    ns.db = f->db;
    assert_int_equal(db_account_list(f->db, collect, &ns), 7);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.name[0], "alice");
    assert_int_equal(ns.inner_rc, PROTO_EDB);
    assert_int_equal(db_account_list(f->db, collect, &(struct names){.stop_at = 4}), 7);
}

static void test_account_disable_enable(void **state)
{
    struct fixture *f = *state;
    struct db_account a;
    uint8_t t1[DB_TOKEN_HASH_BYTES], t2[DB_TOKEN_HASH_BYTES], t3[DB_TOKEN_HASH_BYTES];
    int64_t far = INT64_C(1) << 50;

    token(t1, 1);
    token(t2, 2);
    token(t3, 3);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_account_add(f->db, "bob", PWHASH, false), 0);
    assert_int_equal(db_token_add(f->db, "alice", t1, far), 0);
    assert_int_equal(db_token_add(f->db, "alice", t2, far), 0);
    assert_int_equal(db_token_add(f->db, "bob", t3, far), 0);

    assert_int_equal(db_account_set_disabled(f->db, "alice", true), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_true(a.disabled);
    assert_true(a.gen == 2);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "bob", t3, 0), 0);
    /* A disabled account gets no new token. */
    assert_int_equal(db_token_add(f->db, "alice", t1, far), PROTO_ENOTFOUND);

    /* Enabling does not bring the deleted tokens back. */
    assert_int_equal(db_account_set_disabled(f->db, "alice", false), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_false(a.disabled);
    assert_true(a.gen == 3);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "alice", t2, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_add(f->db, "alice", t1, far), 0);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), 0);

    assert_int_equal(db_account_set_disabled(f->db, "nobody", true), PROTO_ENOTFOUND);
    assert_int_equal(db_account_set_disabled(f->db, "nobody", false), PROTO_ENOTFOUND);
    assert_int_equal(db_account_get(f->db, "bob", &a), 0);
    assert_true(a.gen == 1);
}

static void test_account_set_pwhash(void **state)
{
    struct fixture *f = *state;
    struct db_account a;
    uint8_t t1[DB_TOKEN_HASH_BYTES];
    int64_t far = INT64_C(1) << 50;

    token(t1, 1);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_token_add(f->db, "alice", t1, far), 0);

    /* A rehash keeps gen and tokens. */
    assert_int_equal(db_account_set_pwhash(f->db, "alice", "rehashed", false), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_string_equal(a.pwhash, "rehashed");
    assert_true(a.gen == 1);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), 0);

    /* A password change bumps gen and revokes the tokens. */
    assert_int_equal(db_account_set_pwhash(f->db, "alice", "changed", true), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_string_equal(a.pwhash, "changed");
    assert_true(a.gen == 2);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), PROTO_ENOTFOUND);

    assert_int_equal(db_account_set_pwhash(f->db, "nobody", "x", false), PROTO_ENOTFOUND);
    assert_int_equal(db_account_set_pwhash(f->db, "nobody", "x", true), PROTO_ENOTFOUND);
    assert_int_equal(db_account_set_pwhash(f->db, "alice", "", true), PROTO_EINVAL);
    assert_int_equal(db_account_set_pwhash(f->db, "alice", NULL, false), PROTO_EINVAL);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_string_equal(a.pwhash, "changed");
    assert_true(a.gen == 2);
}

/* ---- tokens ---- */

static int count_share(void *ud, const struct db_share *s)
{
    int *n = ud;
    assert_string_equal(s->meeting, "m1");
    assert_string_equal(s->label, "projector");
    assert_true(s->hash[0] == 7 && s->expires_ms == 5000);
    (*n)++;
    return 0;
}

/* Shares: stored by hash, listed until revoked, revoked once. */
static void test_shares(void **state)
{
    struct fixture *f = *state;
    struct db_share s;
    int n = 0;

    memset(&s, 0, sizeof(s));
    s.id = 42;
    snprintf(s.meeting, sizeof(s.meeting), "m1");
    snprintf(s.label, sizeof(s.label), "projector");
    snprintf(s.user, sizeof(s.user), "alice");
    memset(s.hash, 7, sizeof(s.hash));
    s.created_ms = 1000;
    s.expires_ms = 5000;
    assert_int_equal(db_share_add(f->db, &s), 0);
    s.id = 43; /* the same hash again */
    assert_int_equal(db_share_add(f->db, &s), PROTO_ECONFLICT);
    assert_int_equal(db_share_list(f->db, count_share, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(db_share_revoke(f->db, "m2", 42, 2000), PROTO_ENOTFOUND);
    assert_int_equal(db_share_revoke(f->db, "m1", 42, 2000), 0);
    assert_int_equal(db_share_revoke(f->db, "m1", 42, 3000), PROTO_ENOTFOUND);
    n = 0;
    assert_int_equal(db_share_list(f->db, count_share, &n), 0);
    assert_int_equal(n, 0);
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    uint8_t t1[DB_TOKEN_HASH_BYTES], t2[DB_TOKEN_HASH_BYTES], t3[DB_TOKEN_HASH_BYTES];
    uint8_t unknown[DB_TOKEN_HASH_BYTES];
    int count = -1;

    token(t1, 1);
    token(t2, 2);
    token(t3, 3);
    token(unknown, 9);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_account_add(f->db, "bob", PWHASH, false), 0);
    assert_int_equal(db_token_add(f->db, "alice", t1, 1000), 0);
    assert_int_equal(db_token_add(f->db, "alice", t2, 2000), 0);
    assert_int_equal(db_token_add(f->db, "bob", t3, 3000), 0);
    assert_int_equal(db_token_add(f->db, "bob", t1, 5000), PROTO_ECONFLICT);
    assert_int_equal(db_token_add(f->db, "nobody", unknown, 5000), PROTO_ENOTFOUND);

    /* Valid until the expiry, exclusive. */
    assert_int_equal(db_token_check(f->db, "alice", t1, 999), 0);
    assert_int_equal(db_token_check(f->db, "alice", t1, 1000), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "alice", t2, 1000), 0);
    /* Wrong account, unknown token, unknown account. */
    assert_int_equal(db_token_check(f->db, "bob", t1, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "alice", t3, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "alice", unknown, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "nobody", t1, 0), PROTO_ENOTFOUND);

    /* Logout, twice. */
    assert_int_equal(db_token_delete(f->db, t2), 0);
    assert_int_equal(db_token_check(f->db, "alice", t2, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_delete(f->db, t2), 0);

    /* Purge: t1 (1000) is expired at 2000, t3 (3000) not. */
    assert_int_equal(db_token_purge(f->db, 2000, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), PROTO_ENOTFOUND);
    assert_int_equal(db_token_check(f->db, "bob", t3, 0), 0);
    assert_int_equal(db_token_purge(f->db, 2000, NULL), 0);
    assert_int_equal(db_token_purge(f->db, 3000, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(db_token_check(f->db, "bob", t3, 0), PROTO_ENOTFOUND);
    /* Re-adding a purged hash works. */
    assert_int_equal(db_token_add(f->db, "bob", t3, 9000), 0);
    assert_int_equal(db_token_check(f->db, "bob", t3, 0), 0);
}

static void test_token_disabled_account(void **state)
{
    struct fixture *f = *state;
    uint8_t t1[DB_TOKEN_HASH_BYTES];
    struct db *other = NULL;

    token(t1, 1);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_token_add(f->db, "alice", t1, 10000), 0);

    /* Disabled behind db/'s back (no token deletion): the check still refuses. */
    raw_exec(f->path, "UPDATE accounts SET disabled = 1 WHERE name = 'alice'");
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), PROTO_ENOTFOUND);
    raw_exec(f->path, "UPDATE accounts SET disabled = 0 WHERE name = 'alice'");
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), 0);

    /* Disabled by another connection (an operator command while the server runs). */
    assert_int_equal(db_open(&other, f->path, 0), 0);
    assert_int_equal(db_account_set_disabled(other, "alice", true), 0);
    db_close(other);
    assert_int_equal(db_token_check(f->db, "alice", t1, 0), PROTO_ENOTFOUND);
}

/* ---- transactions ---- */

static void test_grouped_transactions(void **state)
{
    struct fixture *f = *state;
    struct db_account a;
    uint8_t t1[DB_TOKEN_HASH_BYTES];

    token(t1, 1);
    /* Functions with their own transaction nest inside the caller's; rollback undoes all. */
    assert_int_equal(db_begin(f->db), 0);
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_token_add(f->db, "alice", t1, 10000), 0);
    assert_int_equal(db_account_set_disabled(f->db, "alice", true), 0);
    assert_int_equal(db_account_set_pwhash(f->db, "alice", "h2", true), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_true(a.gen == 3);
    assert_int_equal(db_rollback(f->db), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), PROTO_ENOTFOUND);

    /* A failed inner call undoes only itself; the caller's work commits. */
    assert_int_equal(db_begin(f->db), 0);
    assert_int_equal(db_begin(f->db), PROTO_EDB);
    assert_int_equal(db_account_add(f->db, "bob", PWHASH, false), 0);
    assert_int_equal(db_account_set_disabled(f->db, "nobody", true), PROTO_ENOTFOUND);
    assert_int_equal(db_account_set_pwhash(f->db, "nobody", "x", true), PROTO_ENOTFOUND);
    assert_int_equal(db_account_add(f->db, "bob", PWHASH, false), PROTO_ECONFLICT);
    assert_int_equal(db_token_add(f->db, "bob", t1, 10000), 0);
    assert_int_equal(db_commit(f->db), 0);
    assert_int_equal(db_account_get(f->db, "bob", &a), 0);
    assert_int_equal(db_token_check(f->db, "bob", t1, 0), 0);

    /* Nothing open: commit fails, rollback is harmless. */
    assert_int_equal(db_commit(f->db), PROTO_EDB);
    assert_int_equal(db_rollback(f->db), 0);
}

static void test_data_version_two_connections(void **state)
{
    struct fixture *f = *state;
    struct db *other = NULL;
    int64_t v1 = 0, v2 = 0, v3 = 0;

    assert_int_equal(db_open(&other, f->path, 0), 0);
    assert_int_equal(db_data_version(f->db, &v1), 0);
    assert_int_equal(db_data_version(f->db, &v2), 0);
    assert_true(v1 == v2);
    /* Our own commits do not change it; another connection's do. */
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_data_version(f->db, &v2), 0);
    assert_true(v1 == v2);
    assert_int_equal(db_account_add(other, "bob", PWHASH, false), 0);
    assert_int_equal(db_data_version(f->db, &v3), 0);
    assert_true(v3 != v2);
    db_close(other);
}

/* ---- backup and integrity ---- */

static void test_backup(void **state)
{
    struct fixture *f = *state;
    struct db *copy = NULL;
    struct db_account a;
    struct names ns;
    uint8_t t1[DB_TOKEN_HASH_BYTES];
    char path[4096], path2[4096];
    int version = 0;

    token(t1, 1);
    path_in(f, "backup.db", path, sizeof(path));
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, true), 0);
    assert_int_equal(db_account_add(f->db, "bob", PWHASH, false), 0);
    assert_int_equal(db_token_add(f->db, "alice", t1, 10000), 0);
    assert_int_equal(db_backup(f->db, path), 0);
    assert_int_equal(mode_of(path), 0600);

    /* The original goes on changing; the copy does not. */
    assert_int_equal(db_account_add(f->db, "carol", PWHASH, false), 0);
    assert_int_equal(db_open(&copy, path, 0), 0);
    assert_int_equal(db_integrity_check(copy), 0);
    assert_int_equal(db_schema_version(copy, &version), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    memset(&ns, 0, sizeof(ns));
    assert_int_equal(db_account_list(copy, collect, &ns), 0);
    assert_int_equal(ns.n, 2);
    assert_string_equal(ns.name[0], "alice");
    assert_string_equal(ns.name[1], "bob");
    assert_int_equal(db_account_get(copy, "alice", &a), 0);
    assert_true(a.operator);
    assert_int_equal(db_token_check(copy, "alice", t1, 0), 0);
    db_close(copy);

    /* No overwriting, and no copy of uncommitted work. */
    assert_int_equal(db_backup(f->db, path), PROTO_ECONFLICT);
    assert_int_equal(db_backup(f->db, f->path), PROTO_ECONFLICT);
    path_in(f, "backup2.db", path2, sizeof(path2));
    assert_int_equal(db_begin(f->db), 0);
    assert_int_equal(db_backup(f->db, path2), PROTO_EDB);
    assert_int_equal(db_rollback(f->db), 0);
    assert_int_equal(access(path2, F_OK), -1);
    path_in(f, "no/such/dir.db", path2, sizeof(path2));
    assert_int_equal(db_backup(f->db, path2), PROTO_EIO);
}

static void test_integrity_detects_corruption(void **state)
{
    struct fixture *f = *state;
    struct db *db = NULL;
    char name[32];
    char junk[4096];
    int fd, rc;

    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "user%03d", i);
        assert_int_equal(db_account_add(f->db, name, PWHASH, false), 0);
    }
    assert_int_equal(db_integrity_check(f->db), 0);
    db_close(f->db); /* checkpoints the WAL into the file */
    f->db = NULL;

    /* Overwrite page 3 (a b-tree page of the schema) with junk. */
    memset(junk, 0x5a, sizeof(junk));
    fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 2 * 4096), (ssize_t)sizeof(junk));
    close(fd);

    rc = db_open(&db, f->path, 0);
    if (rc == 0) {
        assert_int_equal(db_integrity_check(db), PROTO_EDB);
        assert_non_null(strstr(db_errmsg(db), "integrity_check"));
        db_close(db);
    } else {
        assert_int_equal(rc, PROTO_EDB);
    }
}

/* db_check_file: what conferd restore accepts before it changes anything. */
static void test_check_file(void **state)
{
    struct fixture *f = *state;
    char path[4096], why[512];
    int version = 0;
    FILE *fp = NULL;

    /* a backup of ours: accepted, with its schema version; an older one too */
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, true), 0);
    path_in(f, "backup.db", path, sizeof(path));
    assert_int_equal(db_backup(f->db, path), 0);
    assert_int_equal(db_check_file(path, &version, why, sizeof(why)), 0);
    assert_int_equal(version, LATEST_SCHEMA);
    raw_exec(path, "PRAGMA user_version = 1");
    assert_int_equal(db_check_file(path, &version, why, sizeof(why)), 0);
    assert_int_equal(version, 1);

    /* newer than this program: refused */
    raw_exec(path, "PRAGMA user_version = 99");
    assert_int_equal(db_check_file(path, NULL, why, sizeof(why)), PROTO_EDB);
    assert_non_null(strstr(why, "newer"));

    /* another program's SQLite file, with or without our application_id */
    path_in(f, "other.db", path, sizeof(path));
    raw_exec(path, "CREATE TABLE t (x)");
    assert_int_equal(db_check_file(path, NULL, why, sizeof(why)), PROTO_EDB);
    assert_non_null(strstr(why, "not a confer database"));
    raw_exec(path, "PRAGMA application_id = 1129203282; PRAGMA user_version = 1");
    assert_int_equal(db_check_file(path, NULL, why, sizeof(why)), PROTO_EDB);
    assert_non_null(strstr(why, "no table accounts"));

    /* not SQLite at all, and no file */
    path_in(f, "text.db", path, sizeof(path));
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) {
        fputs("this is not a database file, just some text\n", fp);
    }
    fclose(fp);
    assert_int_equal(db_check_file(path, NULL, why, sizeof(why)), PROTO_EDB);
    assert_true(why[0] != '\0');
    path_in(f, "missing.db", path, sizeof(path));
    assert_int_equal(db_check_file(path, NULL, why, sizeof(why)), PROTO_ENOTFOUND);
    assert_int_equal(db_check_file(f->dir, NULL, why, sizeof(why)), PROTO_ENOTFOUND);
}

/* ---- bad calls fail, never crash ---- */

static void test_errors(void **state)
{
    struct fixture *f = *state;
    struct db_account a;
    uint8_t t1[DB_TOKEN_HASH_BYTES];
    int64_t v = 0;
    int count = 0;

    token(t1, 1);
    assert_int_equal(db_account_get(f->db, "nobody", &a), PROTO_ENOTFOUND);
    assert_string_equal(db_errmsg(f->db), "no such account");
    assert_int_equal(db_account_get(f->db, "", &a), PROTO_ENOTFOUND);
    assert_int_equal(db_account_get(f->db, "NOT A NAME'; DROP TABLE accounts;--", &a),
                     PROTO_ENOTFOUND);
    assert_int_equal(db_account_get(f->db, NULL, &a), PROTO_EINVAL);
    assert_int_equal(db_account_get(f->db, "x", NULL), PROTO_EINVAL);
    assert_int_equal(db_account_get(NULL, "x", &a), PROTO_EINVAL);
    assert_int_equal(db_account_list(f->db, NULL, NULL), PROTO_EINVAL);
    assert_int_equal(db_token_add(f->db, "x", NULL, 0), PROTO_EINVAL);
    assert_int_equal(db_token_check(f->db, NULL, t1, 0), PROTO_EINVAL);
    assert_int_equal(db_token_delete(NULL, t1), PROTO_EINVAL);
    assert_int_equal(db_token_purge(NULL, 0, &count), PROTO_EINVAL);
    assert_int_equal(db_data_version(NULL, &v), PROTO_EINVAL);
    assert_int_equal(db_backup(f->db, NULL), PROTO_EINVAL);
    assert_int_equal(db_begin(NULL), PROTO_EINVAL);
    assert_non_null(db_errmsg(NULL));
    db_close(NULL);

    /* The connection still works after all that. */
    assert_int_equal(db_account_add(f->db, "alice", PWHASH, false), 0);
    assert_int_equal(db_account_get(f->db, "alice", &a), 0);
    assert_int_equal(db_integrity_check(f->db), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrates_and_reopen_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_foreign_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_add_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_duplicate_and_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_disable_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_set_pwhash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_disabled_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grouped_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_version_two_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integrity_detects_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
