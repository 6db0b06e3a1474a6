/* db.c - opening, migrating and closing the database, the statement cache, transactions,
 * backup and integrity checks. Accounts and tokens are in db_account.c, meeting records in
 * db_record.c.
 */
#include "db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* PRAGMA application_id, "CNFR": tells our file from another program's SQLite file. */
#define DB_APPLICATION_ID 0x434E4652

#define DB_BUSY_TIMEOUT_MS 5000
#define DB_PAGE_SIZE_NEW   "1024"

/* Migration i brings PRAGMA user_version from i to i + 1. Each runs in its own BEGIN
 * IMMEDIATE transaction with foreign keys off, so that a later migration may rebuild a
 * table the documented way (CREATE new, copy, DROP old, RENAME); PRAGMA foreign_key_check
 * runs before each commit instead. A migration that has shipped is never edited: add one.
 * The object tables of migration 2 must keep the columns of proto_schema.c, from which
 * db_record.c generates their SQL: a column added there needs a migration here. */
static const char *const migrations[] = {
    /* 1: accounts and their login tokens (only token hashes are stored). */
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT UNIQUE NOT NULL CHECK (length(name) BETWEEN 1 AND 64"
    "    AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*'),"
    "  pwhash TEXT NOT NULL CHECK (length(pwhash) BETWEEN 1 AND 127),"
    "  operator INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1)),"
    "  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    "  gen INTEGER NOT NULL DEFAULT 1 CHECK (gen >= 1),"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE tokens ("
    "  hash BLOB PRIMARY KEY CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
    "  account INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  expires_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX tokens_account ON tokens(account);",

    /* 2: meeting records. The meeting row and one table per other object type, with the
     * columns, enum values and defaults of proto_schema.c; members; the audit log (also
     * the op log) and its signed checkpoints. Members are not tied to accounts (an
     * account may go and come back). The audit log and checkpoints have no foreign key
     * and nothing cascades into them: they outlive everything else. audit.obj holds the
     * object id as TEXT (meeting, member) or INTEGER (other objects); declared BLOB, it
     * has no affinity, so the two never convert into each other. A doc's nil revision
     * and "" are the same revision for the (ref, revision) key, hence the expression.
     * counters holds "object_id", the next object id no process has reserved. */
    "CREATE TABLE meetings ("
    "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64"
    "    AND id GLOB '[a-z0-9]*' AND id NOT GLOB '*[^a-z0-9._-]*'),"
    "  seq INTEGER NOT NULL,"
    "  title TEXT,"
    "  grp TEXT,"
    "  parent TEXT,"
    "  venue TEXT,"
    "  start_date TEXT,"
    "  end_date TEXT,"
    "  tz TEXT,"
    "  report_ref TEXT,"
    "  action_prefix TEXT,"
    "  deadline_days INTEGER NOT NULL DEFAULT 7,"
    "  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'final')),"
    "  abstract TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE sessions ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  date TEXT,"
    "  start_time TEXT,"
    "  end_time TEXT,"
    "  kind TEXT CHECK (kind IN ('session', 'drafting')),"
    "  title TEXT"
    ");"
    "CREATE INDEX sessions_meeting ON sessions(meeting);"
    "CREATE TABLE items ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  number TEXT,"
    "  title TEXT,"
    "  body TEXT NOT NULL DEFAULT ''"
    ");"
    "CREATE INDEX items_meeting ON items(meeting);"
    "CREATE TABLE docs ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  ref TEXT,"
    "  revision TEXT,"
    "  title TEXT,"
    "  source TEXT,"
    "  item INTEGER REFERENCES items(id) ON DELETE SET NULL,"
    "  status TEXT"
    ");"
    "CREATE INDEX docs_meeting ON docs(meeting);"
    "CREATE INDEX docs_item ON docs(item);"
    "CREATE UNIQUE INDEX docs_ref ON docs(meeting, ref, ifnull(revision, ''));"
    "CREATE TABLE actions ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  ref TEXT,"
    "  addressee TEXT,"
    "  owner TEXT,"
    "  status TEXT CHECK (status IN ('open', 'done', 'dropped')),"
    "  due TEXT,"
    "  text TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (meeting, ref)"
    ");"
    "CREATE INDEX actions_meeting ON actions(meeting);"
    "CREATE TABLE decisions ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  item INTEGER REFERENCES items(id) ON DELETE SET NULL,"
    "  kind TEXT CHECK (kind IN ('agreed', 'noted', 'decided')),"
    "  text TEXT NOT NULL DEFAULT ''"
    ");"
    "CREATE INDEX decisions_meeting ON decisions(meeting);"
    "CREATE INDEX decisions_item ON decisions(item);"
    "CREATE TABLE interims ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  date TEXT,"
    "  start_time TEXT,"
    "  end_time TEXT,"
    "  mode TEXT CHECK (mode IN ('virtual', 'physical')),"
    "  topic TEXT,"
    "  deadline_days INTEGER"
    ");"
    "CREATE INDEX interims_meeting ON interims(meeting);"
    "CREATE TABLE people ("
    "  id INTEGER PRIMARY KEY CHECK (id > 0),"
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  name TEXT,"
    "  affiliation TEXT,"
    "  role TEXT CHECK (role IN ('rapporteur', 'associate', 'counsellor', 'tsb', 'delegate')),"
    "  note TEXT"
    ");"
    "CREATE INDEX people_meeting ON people(meeting);"
    "CREATE TABLE members ("
    "  meeting TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    "  user TEXT NOT NULL,"
    "  role TEXT NOT NULL"
    "    CHECK (role IN ('viewer', 'editor', 'associate', 'counsellor', 'rapporteur')),"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (meeting, user)"
    ") WITHOUT ROWID;"
    "CREATE INDEX members_user ON members(user);"
    "CREATE TABLE audit ("
    "  meeting TEXT NOT NULL,"
    "  seq INTEGER NOT NULL CHECK (seq >= 1),"
    "  time_ms INTEGER NOT NULL,"
    "  user TEXT NOT NULL,"
    "  cid TEXT,"
    "  kind TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  obj BLOB NOT NULL CHECK (typeof(obj) IN ('text', 'integer')),"
    "  payload BLOB NOT NULL,"
    "  hash BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
    "  PRIMARY KEY (meeting, seq)"
    ") WITHOUT ROWID;"
    "CREATE UNIQUE INDEX audit_cid ON audit(meeting, user, cid) WHERE cid IS NOT NULL;"
    "CREATE INDEX audit_user ON audit(meeting, user, seq);"
    "CREATE INDEX audit_obj ON audit(obj, meeting, seq);"
    "CREATE TABLE checkpoints ("
    "  meeting TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  head BLOB NOT NULL CHECK (typeof(head) = 'blob' AND length(head) = 32),"
    "  sig BLOB NOT NULL CHECK (typeof(sig) = 'blob' AND length(sig) = 64),"
    "  PRIMARY KEY (meeting, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE counters ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;",

    /* 3: the log is the truth, the object tables its cache. meetings.rows_seq is the seq
     * the meeting's rows (objects, members, the meeting row) stand at: a change writes
     * only its log entry, the rows are refreshed now and then, and a load replays the log
     * after rows_seq. Until now every change wrote its rows, so they stand at the head.
     * snapshots holds signed dumps of records at some seqs, so that a record at any seq
     * is rebuilt from the nearest one; head is the chain's hash at seq, state the hash of
     * data, sig the host key's signature of both (srv_audit.h). */
    "ALTER TABLE meetings ADD COLUMN rows_seq INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meetings SET rows_seq ="
    "  coalesce((SELECT max(seq) FROM audit WHERE audit.meeting = meetings.id), 0);"
    "CREATE TABLE snapshots ("
    "  id INTEGER PRIMARY KEY,"
    "  meeting TEXT NOT NULL,"
    "  seq INTEGER NOT NULL CHECK (seq >= 1),"
    "  head BLOB NOT NULL CHECK (typeof(head) = 'blob' AND length(head) = 32),"
    "  state BLOB NOT NULL CHECK (typeof(state) = 'blob' AND length(state) = 32),"
    "  sig BLOB NOT NULL CHECK (typeof(sig) = 'blob' AND length(sig) = 64),"
    "  data BLOB NOT NULL,"
    "  UNIQUE (meeting, seq)"
    ");"
    /* A change writes its log entry alone now, so each index of the log is a page or more
     * of every commit: the history filters by user and object read the meeting's log
     * newest first instead (off the loop, bounded by their limit), leaving the log and
     * its cid index. */
    "DROP INDEX audit_user; DROP INDEX audit_obj;",

    /* 4: share links of the live view (PROTOCOL.md section 14). Only the BLAKE2b hash of
     * a token is kept; a revoked share keeps its row (revoked_ms), and its creation and
     * revocation are entries of the meeting's log. */
    "CREATE TABLE shares ("
    "  id INTEGER PRIMARY KEY,"
    "  meeting TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
    "  label TEXT NOT NULL DEFAULT '',"
    "  user TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0,"
    "  revoked_ms INTEGER NOT NULL DEFAULT 0"
    ");",
};

#define DB_SCHEMA_LATEST ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

#define ACCOUNT_COLUMNS "id, name, pwhash, operator, disabled, gen, created_ms"
#define MEMBER_COLUMNS  "meeting, user, role, seq"
#define AUDIT_COLUMNS   "meeting, seq, time_ms, user, cid, kind, type, obj, payload, hash"
#define AUDIT_HISTORY(from)                                                                        \
    "SELECT " AUDIT_COLUMNS " FROM " from " WHERE meeting = :meeting AND seq > :since"             \
    " AND seq <= :until AND (:type IS NULL OR type = :type)"
#define HISTORY_ORDER " ORDER BY seq DESC LIMIT :limit"
#define AUDIT_BY_USER "audit"
#define AUDIT_BY_OBJ  "audit"

/* Every statement run after open. Prepared on first use and kept until db_close. */
static const char *const stmt_sql[DB_ST_COUNT] = {
    [DB_ST_BEGIN] = "BEGIN IMMEDIATE",
    [DB_ST_COMMIT] = "COMMIT",
    [DB_ST_ROLLBACK] = "ROLLBACK",
    [DB_ST_SAVEPOINT] = "SAVEPOINT db_inner",
    [DB_ST_RELEASE] = "RELEASE db_inner",
    [DB_ST_ROLLBACK_TO] = "ROLLBACK TO db_inner",
    [DB_ST_DATA_VERSION] = "PRAGMA data_version",
    [DB_ST_USER_VERSION] = "PRAGMA user_version",
    [DB_ST_INTEGRITY] = "PRAGMA integrity_check",
    [DB_ST_DEFER_FK] = "PRAGMA defer_foreign_keys = ON",

    [DB_ST_ACCOUNT_ADD] = "INSERT INTO accounts (name, pwhash, operator, created_ms)"
                          " VALUES (:name, :pwhash, :operator, :now)",
    [DB_ST_ACCOUNT_GET] = "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE name = :name",
    [DB_ST_ACCOUNT_LIST] = "SELECT " ACCOUNT_COLUMNS " FROM accounts ORDER BY name",
    [DB_ST_ACCOUNT_SET_DISABLED] = "UPDATE accounts SET disabled = :disabled, gen = gen + 1"
                                   " WHERE name = :name",
    [DB_ST_ACCOUNT_SET_PWHASH] = "UPDATE accounts SET pwhash = :pwhash, gen = gen + :bump"
                                 " WHERE name = :name",
    [DB_ST_ACCOUNT_TOKENS_DELETE] = "DELETE FROM tokens"
                                    " WHERE account = (SELECT id FROM accounts WHERE name = :name)",

    [DB_ST_TOKEN_ADD] = "INSERT INTO tokens (hash, account, expires_ms, created_ms)"
                        " SELECT :hash, id, :expires, :now FROM accounts"
                        " WHERE name = :name AND disabled = 0",
    [DB_ST_TOKEN_CHECK] = "SELECT 1 FROM tokens JOIN accounts ON accounts.id = tokens.account"
                          " WHERE tokens.hash = :hash AND accounts.name = :name"
                          " AND accounts.disabled = 0 AND tokens.expires_ms > :now",
    [DB_ST_TOKEN_DELETE] = "DELETE FROM tokens WHERE hash = :hash",
    [DB_ST_TOKEN_PURGE] = "DELETE FROM tokens WHERE expires_ms <= :now",

    [DB_ST_MEETING_LIST] = "SELECT id FROM meetings ORDER BY id",
    [DB_ST_MEETING_EXISTS] = "SELECT 1 FROM meetings WHERE id = :meeting",

    [DB_ST_MEMBER_SET] = "INSERT INTO members (" MEMBER_COLUMNS ")"
                         " VALUES (:meeting, :user, :role, :seq)"
                         " ON CONFLICT (meeting, user) DO UPDATE"
                         " SET role = excluded.role, seq = excluded.seq",
    [DB_ST_MEMBER_DELETE] = "DELETE FROM members WHERE meeting = :meeting AND user = :user",
    [DB_ST_MEMBER_LIST] = "SELECT " MEMBER_COLUMNS " FROM members WHERE meeting = :meeting"
                          " ORDER BY user",
    [DB_ST_MEMBER_OF] = "SELECT " MEMBER_COLUMNS " FROM members WHERE user = :user"
                        " ORDER BY meeting",

    [DB_ST_AUDIT_APPEND] = "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES (:meeting, :seq, :time,"
                           " :user, :cid, :kind, :type, :obj, :payload, :hash)",
    [DB_ST_AUDIT_RANGE] = "SELECT " AUDIT_COLUMNS " FROM audit WHERE meeting = :meeting"
                          " AND seq > :since AND seq <= :until ORDER BY seq",
    /* Three shapes of one query, all on the log's (meeting, seq) key, newest first. */
    [DB_ST_AUDIT_HISTORY] = AUDIT_HISTORY("audit") HISTORY_ORDER,
    [DB_ST_AUDIT_HISTORY_USER] = AUDIT_HISTORY(AUDIT_BY_USER) " AND user = :user" HISTORY_ORDER,
    [DB_ST_AUDIT_HISTORY_OBJ] =
        AUDIT_HISTORY(AUDIT_BY_OBJ) " AND obj = :obj"
                                    " AND (:user IS NULL OR user = :user)" HISTORY_ORDER,
    [DB_ST_AUDIT_HEAD] = "SELECT seq, hash FROM audit WHERE meeting = :meeting"
                         " ORDER BY seq DESC LIMIT 1",
    [DB_ST_AUDIT_FIND_CID] = "SELECT " AUDIT_COLUMNS " FROM audit WHERE meeting = :meeting"
                             " AND user = :user AND cid = :cid",

    [DB_ST_CHECKPOINT_ADD] = "INSERT INTO checkpoints (meeting, seq, head, sig)"
                             " VALUES (:meeting, :seq, :head, :sig)",
    [DB_ST_CHECKPOINT_LIST] = "SELECT seq, head, sig FROM checkpoints WHERE meeting = :meeting"
                              " ORDER BY seq",

    [DB_ST_ROWS_SEQ_GET] = "SELECT rows_seq FROM meetings WHERE id = :meeting",
    [DB_ST_ROWS_SEQ_SET] = "UPDATE meetings SET rows_seq = :seq WHERE id = :meeting",
    [DB_ST_MEMBER_CLEAR] = "DELETE FROM members WHERE meeting = :meeting",
    [DB_ST_SNAPSHOT_ADD] = "INSERT INTO snapshots (meeting, seq, head, state, sig, data)"
                           " VALUES (:meeting, :seq, :head, :state, :sig, :data)"
                           " ON CONFLICT (meeting, seq) DO NOTHING",
    [DB_ST_SNAPSHOT_FIND] = "SELECT seq, head, state, sig, data FROM snapshots"
                            " WHERE meeting = :meeting AND seq <= :at ORDER BY seq DESC",
    [DB_ST_SNAPSHOT_LIST] = "SELECT seq, head, state, sig, NULL FROM snapshots"
                            " WHERE meeting = :meeting ORDER BY seq",
    [DB_ST_BEGIN_READ] = "BEGIN",

    [DB_ST_SHARE_ADD] = "INSERT INTO shares (id, meeting, hash, label, user, created_ms,"
                        " expires_ms) VALUES (:id, :meeting, :hash, :label, :user, :created,"
                        " :expires)",
    [DB_ST_SHARE_REVOKE] = "UPDATE shares SET revoked_ms = :now WHERE id = :id"
                           " AND meeting = :meeting AND revoked_ms = 0",
    [DB_ST_SHARE_LIST] = "SELECT id, meeting, hash, label, user, created_ms, expires_ms"
                         " FROM shares WHERE revoked_ms = 0 ORDER BY id",

    [DB_ST_COUNTER_GET] = "SELECT value FROM counters WHERE name = :name",
    [DB_ST_COUNTER_SET] = "INSERT INTO counters (name, value) VALUES (:name, :value)"
                          " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
};

/* ---- errors ---- */

int db_sqlerr(struct db *db, int rc)
{
    snprintf(db->errmsg, sizeof(db->errmsg), "%s", sqlite3_errmsg(db->conn));
    db->errcode = rc;
    db->errnum = sqlite3_system_errno(db->conn);
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return PROTO_ECONFLICT;
    default:
        return PROTO_EDB;
    }
}

int db_fail(struct db *db, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    return err;
}

/* ---- statements ---- */

int db_stmt_get(struct db *db, enum db_stmt id, sqlite3_stmt **out)
{
    int rc;

    *out = NULL;
    if ((unsigned)id >= DB_ST_COUNT || stmt_sql[id] == NULL) {
        return db_fail(db, PROTO_EDB, "no statement number %d", (int)id);
    }
    if (db->stmt[id] == NULL) {
        rc = sqlite3_prepare_v3(db->conn, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                &db->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            db->stmt[id] = NULL;
            return db_sqlerr(db, rc);
        }
    } else if (sqlite3_stmt_busy(db->stmt[id])) {
        return db_fail(db, PROTO_EDB, "statement already running: %s", stmt_sql[id]);
    }
    *out = db->stmt[id];
    return 0;
}

void db_stmt_done(sqlite3_stmt *st)
{
    if (st == NULL) {
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int param_index(struct db *db, sqlite3_stmt *st, const char *param, int *idx)
{
    *idx = sqlite3_bind_parameter_index(st, param);
    if (*idx == 0) {
        return db_fail(db, PROTO_EDB, "no parameter %s in: %s", param, sqlite3_sql(st));
    }
    return 0;
}

/* The values bound are SQLITE_STATIC: every caller resets and clears the statement before
 * its arguments go out of scope. */
int db_bind_text(struct db *db, sqlite3_stmt *st, const char *param, const char *s)
{
    int idx = 0;
    int rc = param_index(db, st, param, &idx);

    if (rc != 0) {
        return rc;
    }
    rc = sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
}

int db_bind_int64(struct db *db, sqlite3_stmt *st, const char *param, int64_t v)
{
    int idx = 0;
    int rc = param_index(db, st, param, &idx);

    if (rc != 0) {
        return rc;
    }
    rc = sqlite3_bind_int64(st, idx, v);
    return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
}

int db_bind_blob(struct db *db, sqlite3_stmt *st, const char *param, const void *p, size_t n)
{
    int idx = 0;
    int rc = param_index(db, st, param, &idx);

    if (rc != 0) {
        return rc;
    }
    rc = sqlite3_bind_blob64(st, idx, p, n, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
}

int db_step(struct db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return db_sqlerr(db, rc);
}

int db_exec_stmt(struct db *db, enum db_stmt id)
{
    sqlite3_stmt *st = NULL;
    int rc = db_stmt_get(db, id, &st);

    while (rc == 0 && (rc = db_step(db, st)) == 1) {
        rc = 0;
    }
    db_stmt_done(st);
    return rc;
}

/* Runs a statement that yields one integer. */
static int stmt_int(struct db *db, enum db_stmt id, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = db_stmt_get(db, id, &st);

    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_EDB, "no result from: %s", stmt_sql[id]);
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* ---- one-off statements of open and migration (not worth caching) ---- */

static int exec_sql(struct db *db, const char *sql)
{
    int rc = sqlite3_exec(db->conn, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
}

/* Runs sql and copies the first column of its first row as text into buf (empty when the
 * statement yields no row or NULL). */
static int query_text(struct db *db, const char *sql, char *buf, size_t cap)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *s = NULL;
    int rc = sqlite3_prepare_v3(db->conn, sql, -1, 0, &st, NULL);

    buf[0] = '\0';
    if (rc != SQLITE_OK) {
        rc = db_sqlerr(db, rc);
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        s = sqlite3_column_text(st, 0);
        snprintf(buf, cap, "%s", s != NULL ? (const char *)s : "");
        rc = 0;
    }
cleanup:
    sqlite3_finalize(st);
    return rc;
}

static int query_int(struct db *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db->conn, sql, -1, 0, &st, NULL);

    if (rc != SQLITE_OK) {
        rc = db_sqlerr(db, rc);
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_EDB, "no result from: %s", sql);
    }
cleanup:
    sqlite3_finalize(st);
    return rc;
}

/* Rolls back whatever transaction is open, keeping the message of the error that caused
 * it. SQLite rolls back by itself on some errors (disk full, I/O), hence the check. */
static void rollback_quietly(struct db *db, enum db_tx tx)
{
    char saved[sizeof(db->errmsg)];

    if (sqlite3_get_autocommit(db->conn)) {
        return;
    }
    memcpy(saved, db->errmsg, sizeof(saved));
    if (tx == DB_TX_TOP) {
        (void)db_exec_stmt(db, DB_ST_ROLLBACK);
    } else if (db_exec_stmt(db, DB_ST_ROLLBACK_TO) == 0) {
        (void)db_exec_stmt(db, DB_ST_RELEASE);
    }
    memcpy(db->errmsg, saved, sizeof(saved));
}

/* ---- open and migrate ---- */

/* Reads the schema version and refuses files that are not ours or are newer than us. */
static int read_version(struct db *db, int64_t *version)
{
    int64_t appid = 0;
    int rc = query_int(db, "PRAGMA user_version", version);

    if (rc == 0) {
        rc = query_int(db, "PRAGMA application_id", &appid);
    }
    if (rc != 0) {
        return rc;
    }
    if (appid != DB_APPLICATION_ID && (appid != 0 || *version != 0)) {
        return db_fail(db, PROTO_EDB, "not a confer database (application_id %lld)",
                       (long long)appid);
    }
    if (*version > DB_SCHEMA_LATEST) {
        return db_fail(db, PROTO_EDB,
                       "database schema version %lld is newer than this program knows (%lld)",
                       (long long)*version, (long long)DB_SCHEMA_LATEST);
    }
    return 0;
}

/* Applies migration number `from` (to from + 1) inside the caller's transaction. */
static int migrate_one(struct db *db, int64_t from)
{
    char sql[64];
    char why[sizeof(db->errmsg)];
    int64_t tables = 0;
    int rc;

    if (from == 0) {
        /* Version 0 with tables is someone else's database, not an empty one of ours. */
        rc = query_int(db, "SELECT count(*) FROM sqlite_master", &tables);
        if (rc != 0) {
            return rc;
        }
        if (tables != 0) {
            return db_fail(db, PROTO_EDB, "not a confer database (tables but no version)");
        }
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", DB_APPLICATION_ID);
        rc = exec_sql(db, sql);
        if (rc != 0) {
            return rc;
        }
    }
    rc = exec_sql(db, migrations[from]);
    if (rc != 0) {
        memcpy(why, db->errmsg, sizeof(why));
        return db_fail(db, PROTO_EDB, "migration %lld: %s", (long long)from + 1, why);
    }
    rc = query_text(db, "PRAGMA foreign_key_check", why, sizeof(why));
    if (rc != 0) {
        return rc;
    }
    if (why[0] != '\0') {
        return db_fail(db, PROTO_EDB, "migration %lld: broken foreign key in table %s",
                       (long long)from + 1, why);
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)from + 1);
    return exec_sql(db, sql);
}

static int migrate(struct db *db)
{
    int64_t version = 0;
    int rc = read_version(db, &version);

    if (rc != 0 || version == DB_SCHEMA_LATEST) {
        return rc;
    }
    /* Cannot change inside a transaction; db_open turns it back on. */
    rc = exec_sql(db, "PRAGMA foreign_keys = OFF");
    while (rc == 0 && version < DB_SCHEMA_LATEST) {
        rc = db_exec_stmt(db, DB_ST_BEGIN);
        if (rc != 0) {
            break;
        }
        /* Read again under the write lock: another process may have migrated meanwhile. */
        rc = read_version(db, &version);
        if (rc == 0 && version < DB_SCHEMA_LATEST) {
            rc = migrate_one(db, version);
            version++;
        }
        if (rc == 0) {
            rc = db_exec_stmt(db, DB_ST_COMMIT);
        }
        if (rc != 0) {
            rollback_quietly(db, DB_TX_TOP);
        }
    }
    return rc;
}

/* A read-only connection cannot migrate, so it only accepts the current schema. */
static int check_version(struct db *db)
{
    int64_t version = 0;
    int rc = read_version(db, &version);

    if (rc == 0 && version != DB_SCHEMA_LATEST) {
        rc = db_fail(db, PROTO_EDB, "database schema version %lld needs migrating to %lld",
                     (long long)version, (long long)DB_SCHEMA_LATEST);
    }
    return rc;
}

/* Creates the file with mode 0600 before SQLite sees it: SQLite gives its -wal, -shm and
 * -journal files the mode of the database file, whatever the umask. */
static int create_file(struct db *db, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == EEXIST) {
        return 0;
    }
    db->errcode = SQLITE_CANTOPEN;
    db->errnum = errno;
    return db_fail(db, PROTO_EDB, "cannot create %s: %s", path, strerror(errno));
}

static int set_wal(struct db *db)
{
    char mode[16];
    int rc = query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));

    if (rc == 0 && strcasecmp(mode, "wal") != 0) {
        rc = db_fail(db, PROTO_EDB, "cannot use WAL (journal_mode is %s)", mode);
    }
    /* A checkpoint copies each page the WAL holds into the file once, however many commits
     * wrote it: with 8 MiB of WAL between them (not SQLite's 1,000 pages), the pages the log
     * appends to are copied once per thousands of entries. */
    if (rc == 0) {
        rc = exec_sql(db, "PRAGMA wal_autocheckpoint = 8192");
    }
    return rc;
}

/* ---- why an open failed: the file at fault, the reason, the fix ---- */

static void user_name(uid_t uid, char *out, size_t cap)
{
    struct passwd pw, *found = NULL;
    char buf[1024];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != NULL) {
        snprintf(out, cap, "%s", found->pw_name);
    } else {
        snprintf(out, cap, "uid %u", (unsigned)uid);
    }
}

/* Checks that the effective user may access path as need says (R_OK, W_OK, X_OK). Returns
 * false when it may (or when path does not exist and is optional); otherwise true, with what
 * is wrong and the fix in why. what names the file ("the database", "the folder"). */
static bool file_fault(const char *what, const char *path, int need, bool optional,
                       const char *note, char *why, size_t cap)
{
    char me[64], owner[64];
    struct stat st;
    bool dir = (need & X_OK) != 0;
    const char *perms = dir ? "u+rwx" : "u+rw";
    int err = 0;

    if (faccessat(AT_FDCWD, path, need, AT_EACCESS) == 0) {
        return false;
    }
    err = errno;
    if (err == ENOENT && optional) {
        return false;
    }
    user_name(geteuid(), me, sizeof(me));
    if (err == EROFS) {
        snprintf(why, cap,
                 "%s %s is on a read-only file system (%s): remount it read-write or "
                 "move the data folder",
                 what, path, strerror(err));
    } else if (stat(path, &st) != 0) {
        snprintf(why, cap,
                 "%s %s cannot be reached by user %s (%s): check it and the "
                 "permissions of the folders above it",
                 what, path, me, strerror(err));
    } else if (st.st_uid != geteuid() && geteuid() != 0) {
        user_name(st.st_uid, owner, sizeof(owner));
        snprintf(why, cap,
                 "%s %s is owned by %s, not by %s who runs this (mode %04o: %s): "
                 "chown %s %s, or run as %s%s",
                 what, path, owner, me, (unsigned)(st.st_mode & 07777), strerror(err), me, path,
                 owner, note);
    } else {
        snprintf(why, cap, "%s %s is not writable by user %s (mode %04o: %s): chmod %s %s%s", what,
                 path, me, (unsigned)(st.st_mode & 07777), strerror(err), perms, path, note);
    }
    return true;
}

/* SQLite gives no file name with its errors, and opens a file it may not write read-only
 * without a word; an unwritable -shm or -wal left behind by an earlier run refuses every
 * write while reads work. So after a failure, look at each file SQLite needs in turn. */
static void explain(struct db *db, const char *path, char *why, size_t cap)
{
    char dir[PATH_MAX], wal[PATH_MAX], shm[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int code = db->errcode & 0xff;
    bool perm = code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM ||
                code == SQLITE_IOERR || code == SQLITE_AUTH;

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    }
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    if (perm) {
        /* A database that does not exist yet (DB_CREATE failed) points at the folder. */
        if (file_fault("the database", path, R_OK | W_OK, true, "", why, cap) ||
            file_fault("the write-ahead log", wal, R_OK | W_OK, true,
                       " (do not delete it: it may hold committed changes)", why, cap) ||
            file_fault("the shared-memory index", shm, R_OK | W_OK, true, "", why, cap)) {
            return;
        }
        if ((access(wal, F_OK) != 0 || access(shm, F_OK) != 0) &&
            file_fault("the folder", dir, W_OK | X_OK, false,
                       " (SQLite makes the database's -wal and -shm files there)", why, cap)) {
            return;
        }
    }
    if (db->errnum != 0) {
        snprintf(why, cap, "cannot open the database %s: %s (%s)", path, db_errmsg(db),
                 strerror(db->errnum));
    } else {
        snprintf(why, cap, "cannot open the database %s: %s", path, db_errmsg(db));
    }
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
        snprintf(why + strlen(why), cap - strlen(why),
                 ": another process holds it locked; try again, or stop that process");
    } else if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
        snprintf(why + strlen(why), cap - strlen(why),
                 ": the file is damaged or not a database; restore it from a backup");
    } else if (code == SQLITE_FULL) {
        snprintf(why + strlen(why), cap - strlen(why), ": the disk is full; free some space");
    }
}

int db_open(struct db **out, const char *path, int flags)
{
    return db_open_why(out, path, flags, NULL, 0);
}

int db_open_why(struct db **out, const char *path, int flags, char *why, size_t cap)
{
    struct db *db = NULL;
    struct stat st;
    bool readonly = (flags & DB_READONLY) != 0;
    int oflags = SQLITE_OPEN_NOMUTEX;
    int rc = 0;

    if (why != NULL && cap > 0) {
        why[0] = '\0';
    }
    if (out == NULL) {
        return PROTO_EINVAL;
    }
    *out = NULL;
    if (path == NULL || (flags & ~(DB_CREATE | DB_READONLY)) != 0 ||
        (readonly && (flags & DB_CREATE) != 0)) {
        return PROTO_EINVAL;
    }
    db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return PROTO_ENOMEM;
    }
    if ((flags & DB_CREATE) != 0) {
        rc = create_file(db, path);
    } else if (stat(path, &st) != 0 && errno == ENOENT) {
        rc = db_fail(db, PROTO_ENOTFOUND, "%s does not exist", path);
    }
    if (rc != 0) {
        goto fail;
    }
    /* Never SQLITE_OPEN_CREATE: create_file made the file with the right mode. */
    oflags |= readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    rc = sqlite3_open_v2(path, &db->conn, oflags, NULL);
    if (rc != SQLITE_OK) {
        rc = db->conn != NULL ? db_sqlerr(db, rc) : PROTO_ENOMEM;
        goto fail;
    }
    sqlite3_extended_result_codes(db->conn, 1);
    /* SQLite falls back to read-only when it may not write the file, and would then make
     * a -shm and -wal with the file's read-only mode that keep refusing writes after the
     * file is fixed: refuse before it reads anything. */
    if (!readonly && sqlite3_db_readonly(db->conn, "main") == 1) {
        db->errcode = SQLITE_READONLY;
        rc = db_fail(db, PROTO_EDB, "%s is read-only", path);
        goto fail;
    }
    sqlite3_busy_timeout(db->conn, DB_BUSY_TIMEOUT_MS);
    /* Our schema uses no functions with side effects, and nothing may write it raw. */
    sqlite3_db_config(db->conn, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db->conn, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    /* A new file gets 1 KiB pages: a commit writes whole pages to the WAL, and most
     * commits append a few log entries of a few hundred bytes (the rows follow only now
     * and then). The size is fixed once the file holds a table. */
    if ((flags & DB_CREATE) != 0) {
        rc = exec_sql(db, "PRAGMA page_size = " DB_PAGE_SIZE_NEW);
    }
    if (rc == 0) {
        rc = readonly ? 0 : set_wal(db);
    }
    if (rc == 0) {
        rc = exec_sql(db, "PRAGMA synchronous = FULL");
    }
    if (rc == 0) {
        rc = readonly ? check_version(db) : migrate(db);
    }
    if (rc == 0) {
        rc = exec_sql(db, "PRAGMA foreign_keys = ON");
    }
    /* A write probe: a -shm or -wal that cannot be written lets reads through and refuses
     * every write, so find out now rather than at the first change. */
    if (rc == 0 && !readonly) {
        rc = db_exec_stmt(db, DB_ST_BEGIN);
        if (rc == 0) {
            rc = db_exec_stmt(db, DB_ST_ROLLBACK);
        }
    }
    if (rc != 0) {
        goto fail;
    }
    *out = db;
    return 0;
fail:
    if (why != NULL && cap > 0) {
        if (rc == PROTO_ENOMEM) {
            snprintf(why, cap, "cannot open the database %s: out of memory", path);
        } else if (rc == PROTO_ENOTFOUND) {
            snprintf(why, cap, "the database %s does not exist", path);
        } else {
            explain(db, path, why, cap);
        }
    }
    db_close(db);
    return rc;
}

void db_close(struct db *db)
{
    if (db == NULL) {
        return;
    }
    for (int i = 0; i < DB_ST_COUNT; i++) {
        sqlite3_finalize(db->stmt[i]);
    }
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        for (int op = 0; op < DB_OBJ_ST_COUNT; op++) {
            sqlite3_finalize(db->obj_stmt[t][op]);
        }
    }
    sqlite3_finalize(db->obj_max_id);
    sqlite3_close_v2(db->conn);
    free(db);
}

const char *db_errmsg(struct db *db)
{
    if (db == NULL) {
        return "no database connection";
    }
    return db->errmsg[0] != '\0' ? db->errmsg : "not an error";
}

int db_data_version(struct db *db, int64_t *out)
{
    if (db == NULL || out == NULL) {
        return PROTO_EINVAL;
    }
    return stmt_int(db, DB_ST_DATA_VERSION, out);
}

int db_schema_version(struct db *db, int *out)
{
    int64_t v = 0;
    int rc;

    if (db == NULL || out == NULL) {
        return PROTO_EINVAL;
    }
    rc = stmt_int(db, DB_ST_USER_VERSION, &v);
    if (rc == 0) {
        *out = (int)v;
    }
    return rc;
}

/* ---- transactions ---- */

int db_begin(struct db *db)
{
    if (db == NULL) {
        return PROTO_EINVAL;
    }
    return db_exec_stmt(db, DB_ST_BEGIN);
}

int db_begin_read(struct db *db)
{
    if (db == NULL) {
        return PROTO_EINVAL;
    }
    return db_exec_stmt(db, DB_ST_BEGIN_READ);
}

int db_defer_foreign_keys(struct db *db)
{
    if (db == NULL) {
        return PROTO_EINVAL;
    }
    return db_exec_stmt(db, DB_ST_DEFER_FK);
}

/* A failed COMMIT is rolled back here, so the connection is never left inside a
 * transaction the caller believes ended; db_rollback afterwards is harmless. */
int db_commit(struct db *db)
{
    int rc;

    if (db == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_exec_stmt(db, DB_ST_COMMIT);
    if (rc != 0) {
        rollback_quietly(db, DB_TX_TOP);
    }
    return rc;
}

/* Rolling back when no transaction is open (SQLite may have rolled back on an error
 * already) succeeds. */
int db_rollback(struct db *db)
{
    if (db == NULL) {
        return PROTO_EINVAL;
    }
    if (sqlite3_get_autocommit(db->conn)) {
        return 0;
    }
    return db_exec_stmt(db, DB_ST_ROLLBACK);
}

int db_tx_begin(struct db *db, enum db_tx *tx)
{
    if (sqlite3_get_autocommit(db->conn)) {
        *tx = DB_TX_TOP;
        return db_exec_stmt(db, DB_ST_BEGIN);
    }
    *tx = DB_TX_SAVEPOINT;
    return db_exec_stmt(db, DB_ST_SAVEPOINT);
}

int db_tx_end(struct db *db, enum db_tx tx, int rc)
{
    if (rc == 0) {
        rc = db_exec_stmt(db, tx == DB_TX_TOP ? DB_ST_COMMIT : DB_ST_RELEASE);
        if (rc == 0) {
            return 0;
        }
    }
    rollback_quietly(db, tx);
    return rc;
}

int64_t db_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- backup and checks ---- */

static bool exists(const char *path, const char *suffix)
{
    char name[4096];
    struct stat st;
    int n = snprintf(name, sizeof(name), "%s%s", path, suffix);

    return n > 0 && (size_t)n < sizeof(name) && lstat(name, &st) == 0;
}

static void remove_copy(const char *path)
{
    char name[4096];
    int n = snprintf(name, sizeof(name), "%s-journal", path);

    if (n > 0 && (size_t)n < sizeof(name)) {
        unlink(name);
    }
    unlink(path);
}

/* Makes the new directory entry durable (best effort: the data itself is synced). */
static void sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : (size_t)(slash - path);
    int fd;

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (n == 0) {
        snprintf(dir, sizeof(dir), "/");
    } else if (n < sizeof(dir)) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    } else {
        return;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* The destination connection holds the error of a failed backup. */
static int backup_err(struct db *db, sqlite3 *dst, int rc)
{
    snprintf(db->errmsg, sizeof(db->errmsg), "backup: %s",
             dst != NULL ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
    return PROTO_EDB;
}

int db_backup(struct db *db, const char *path)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *bk = NULL;
    bool created = false;
    int fd = -1;
    int rc = 0;
    int sqlrc;

    if (db == NULL || path == NULL) {
        return PROTO_EINVAL;
    }
    /* Inside a transaction the copy would include changes not yet committed. */
    if (!sqlite3_get_autocommit(db->conn)) {
        return db_fail(db, PROTO_EDB, "backup: a transaction is open");
    }
    /* A stale journal or WAL next to the new file would be played into it. */
    if (exists(path, "") || exists(path, "-journal") || exists(path, "-wal")) {
        return db_fail(db, PROTO_ECONFLICT, "backup: %s exists", path);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return db_fail(db, errno == EEXIST ? PROTO_ECONFLICT : PROTO_EIO, "backup: %s: %s", path,
                       strerror(errno));
    }
    close(fd);
    created = true;

    sqlrc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (sqlrc != SQLITE_OK) {
        rc = backup_err(db, dst, sqlrc);
        goto cleanup;
    }
    sqlite3_busy_timeout(dst, DB_BUSY_TIMEOUT_MS);
    sqlrc = sqlite3_exec(dst, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (sqlrc != SQLITE_OK) {
        rc = backup_err(db, dst, sqlrc);
        goto cleanup;
    }
    bk = sqlite3_backup_init(dst, "main", db->conn, "main");
    if (bk == NULL) {
        rc = backup_err(db, dst, sqlite3_errcode(dst));
        goto cleanup;
    }
    /* All pages in one step: it holds one read transaction on the source, which in WAL
     * mode blocks no writer and, unlike small steps, never restarts when another
     * connection writes. BUSY or LOCKED are transient; retry for about five seconds. */
    for (int tries = 0;; tries++) {
        sqlrc = sqlite3_backup_step(bk, -1);
        if (sqlrc == SQLITE_DONE) {
            break;
        }
        if (((sqlrc & 0xff) != SQLITE_BUSY && (sqlrc & 0xff) != SQLITE_LOCKED) || tries >= 100) {
            break;
        }
        sqlite3_sleep(50);
    }
    rc = sqlite3_backup_finish(bk);
    bk = NULL;
    if (sqlrc != SQLITE_DONE || rc != SQLITE_OK) {
        rc = backup_err(db, dst, rc != SQLITE_OK ? rc : sqlrc);
        goto cleanup;
    }
    sqlrc = sqlite3_close(dst);
    dst = NULL;
    if (sqlrc != SQLITE_OK) {
        rc = backup_err(db, NULL, sqlrc);
        goto cleanup;
    }
    sync_parent(path);
    rc = 0;
cleanup:
    if (bk != NULL) {
        sqlite3_backup_finish(bk);
    }
    sqlite3_close_v2(dst);
    if (rc != 0 && created) {
        remove_copy(path);
    }
    return rc;
}

int db_integrity_check(struct db *db)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *s = NULL;
    int rc;

    if (db == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_INTEGRITY, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc < 0) {
        goto cleanup;
    }
    s = rc == 1 ? sqlite3_column_text(st, 0) : NULL;
    if (s == NULL || strcmp((const char *)s, "ok") != 0) {
        rc = db_fail(db, PROTO_EDB, "integrity_check: %s", s != NULL ? (const char *)s : "?");
        goto cleanup;
    }
    rc = 0;
cleanup:
    db_stmt_done(st);
    return rc;
}

/* The tables every confer database has had since migration 1. */
static const char *const core_tables[] = {"accounts", "tokens", "meetings"};

int db_check_file(const char *path, int *version, char *why, size_t cap)
{
    struct db *db = NULL;
    struct stat st;
    int64_t v = 0;
    int rc = 0;

    if (why != NULL && cap > 0) {
        why[0] = '\0';
    }
    if (path == NULL) {
        return PROTO_EINVAL;
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (why != NULL) {
            snprintf(why, cap, "%s is not a file", path);
        }
        return PROTO_ENOTFOUND;
    }
    db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return PROTO_ENOMEM;
    }
    int sqlrc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (sqlrc != SQLITE_OK) {
        rc = db->conn != NULL ? db_sqlerr(db, sqlrc) : PROTO_ENOMEM;
        goto cleanup;
    }
    sqlite3_extended_result_codes(db->conn, 1);
    sqlite3_db_config(db->conn, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db->conn, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    rc = read_version(db, &v);
    if (rc == 0 && v < 1) {
        rc = db_fail(db, PROTO_EDB, "not a confer database (no schema version)");
    }
    for (size_t i = 0; rc == 0 && i < sizeof(core_tables) / sizeof(core_tables[0]); i++) {
        char sql[128];
        int64_t n = 0;
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
                 core_tables[i]);
        rc = query_int(db, sql, &n);
        if (rc == 0 && n != 1) {
            rc = db_fail(db, PROTO_EDB, "not a confer database (no table %s)", core_tables[i]);
        }
    }
    if (rc == 0) {
        rc = db_integrity_check(db);
    }
    if (rc == 0 && version != NULL) {
        *version = (int)v;
    }
cleanup:
    if (rc != 0 && why != NULL && cap > 0) {
        snprintf(why, cap, "%s", rc == PROTO_ENOMEM ? "out of memory" : db->errmsg);
        for (char *c = why; *c != '\0'; c++) {
            *c = *c == '\n' ? ' ' : *c; /* integrity_check lists one problem a line */
        }
    }
    db_close(db);
    return rc;
}
