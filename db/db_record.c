/* db_record.c - meeting records: the object tables of proto_schema.h, members, the audit
 * log and its signed checkpoints.
 *
 * The SQL of the object tables is generated from the schema table the first time a type
 * is used and kept prepared (struct db obj_stmt); the other statements are in db.c's table.
 *
 * Callbacks: every list function steps its own prepared statement and calls cb for each
 * row. A callback may call any other db_ function, reads and writes alike; calling the
 * function that is running it (which would need the same statement again) fails with
 * PROTO_EDB ("statement already running") and leaves the running one intact. A callback
 * should not write to the table it is iterating (SQLite leaves undefined whether the scan
 * sees the change), nor commit or roll back.
 */
#include "db_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HISTORY_LIMIT_MAX 1000
#define SQL_MAX           4096
#define PARAM_MAX         80

/* Zero-length strings and blobs need a non-NULL pointer: SQLite binds NULL for NULL, and
 * hands back NULL for a zero-length blob. */
static const uint8_t empty[1] = {0};

/* ---- generated SQL ---- */

struct sqlbuf {
    char s[SQL_MAX];
    size_t len;
    bool overflow;
};

__attribute__((format(printf, 2, 3))) static void sql_add(struct sqlbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->overflow) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(b->s + b->len, sizeof(b->s) - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(b->s) - b->len) {
        b->overflow = true;
        return;
    }
    b->len += (size_t)n;
}

/* How sql_columns writes each stored column c. */
enum col_form {
    COL_NAME,  /* , "c" */
    COL_PARAM, /* , :f_c */
    COL_SET,   /* , "c" = excluded."c" */
};

/* Appends every stored (not COMPUTED) field's column, each after ", ". Identifiers are
 * quoted so that no column name can be taken for a keyword. */
static void sql_columns(struct sqlbuf *b, const struct proto_typeinfo *ti, enum col_form form)
{
    for (size_t i = 0; i < ti->nfields; i++) {
        const char *c = ti->fields[i].column;

        if (ti->fields[i].kind == PROTO_F_COMPUTED) {
            continue;
        }
        if (form == COL_PARAM) {
            sql_add(b, ", :f_%s", c);
        } else if (form == COL_SET) {
            sql_add(b, ", \"%s\" = excluded.\"%s\"", c, c);
        } else {
            sql_add(b, ", \"%s\"", c);
        }
    }
}

/* INSERT ... ON CONFLICT (id) DO UPDATE: an update keeps the row (REPLACE would delete it
 * and fire ON DELETE SET NULL on the docs and decisions that point at an item). An object
 * id of another meeting is left alone; db_obj_put sees no change and reports it. */
static void build_put(struct sqlbuf *b, enum proto_type t, const struct proto_typeinfo *ti)
{
    if (t == PROTO_T_MEETING) {
        sql_add(b, "INSERT INTO \"%s\" (\"id\", \"seq\"", ti->table);
        sql_columns(b, ti, COL_NAME);
        sql_add(b, ", \"created_ms\") VALUES (:id, :seq");
        sql_columns(b, ti, COL_PARAM);
        sql_add(b, ", :now) ON CONFLICT (\"id\") DO UPDATE SET \"seq\" = excluded.\"seq\"");
        sql_columns(b, ti, COL_SET);
        return;
    }
    sql_add(b, "INSERT INTO \"%s\" (\"id\", \"meeting\", \"seq\"", ti->table);
    sql_columns(b, ti, COL_NAME);
    sql_add(b, ") VALUES (:id, :meeting, :seq");
    sql_columns(b, ti, COL_PARAM);
    sql_add(b, ") ON CONFLICT (\"id\") DO UPDATE SET \"seq\" = excluded.\"seq\"");
    sql_columns(b, ti, COL_SET);
    sql_add(b, " WHERE \"%s\".\"meeting\" = excluded.\"meeting\"", ti->table);
}

static void build_load(struct sqlbuf *b, enum proto_type t, const struct proto_typeinfo *ti)
{
    sql_add(b, "SELECT %s, \"seq\"", t == PROTO_T_MEETING ? "0" : "\"id\"");
    sql_columns(b, ti, COL_NAME);
    if (t == PROTO_T_MEETING) {
        sql_add(b, " FROM \"%s\" WHERE \"id\" = :meeting", ti->table);
    } else {
        sql_add(b, " FROM \"%s\" WHERE \"meeting\" = :meeting ORDER BY \"id\"", ti->table);
    }
}

static void build_delete(struct sqlbuf *b, const struct proto_typeinfo *ti)
{
    sql_add(b, "DELETE FROM \"%s\" WHERE \"id\" = :id AND \"meeting\" = :meeting", ti->table);
}

/* The largest id of every object table (each a lookup of its primary key). */
static void build_max_id(struct sqlbuf *b)
{
    sql_add(b, "SELECT max(0");
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        if (t != PROTO_T_MEETING) {
            sql_add(b, ", ifnull((SELECT max(\"id\") FROM \"%s\"), 0)",
                    proto_type_info((enum proto_type)t)->table);
        }
    }
    sql_add(b, ")");
}

/* The largest object id the audit log names, deleted objects' included: a scan of the log
 * (it has no index by object), so only when the id counter is new. */
static int max_id_logged(struct db *db, int64_t *out)
{
    static const char sql[] = "SELECT ifnull(max(obj), 0) FROM audit WHERE typeof(obj) = 'integer'";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
    sqlite3_finalize(st);
    return rc;
}

/* Returns the prepared statement in *slot, generating and preparing it on first use.
 * t and op say which (op DB_OBJ_ST_COUNT: the max-id query). */
static int gen_stmt(struct db *db, sqlite3_stmt **slot, enum proto_type t, int op,
                    sqlite3_stmt **out)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    struct sqlbuf b;
    int rc;

    *out = NULL;
    if (*slot != NULL) {
        if (sqlite3_stmt_busy(*slot)) {
            return db_fail(db, PROTO_EDB, "statement already running: %s", sqlite3_sql(*slot));
        }
        *out = *slot;
        return 0;
    }
    b.s[0] = '\0';
    b.len = 0;
    b.overflow = false;
    if (op == DB_OBJ_PUT) {
        build_put(&b, t, ti);
    } else if (op == DB_OBJ_LOAD) {
        build_load(&b, t, ti);
    } else if (op == DB_OBJ_DELETE) {
        build_delete(&b, ti);
    } else {
        build_max_id(&b);
    }
    if (b.overflow) {
        return db_fail(db, PROTO_EDB, "generated SQL too long (type %s)", ti->name);
    }
    rc = sqlite3_prepare_v3(db->conn, b.s, (int)b.len, SQLITE_PREPARE_PERSISTENT, slot, NULL);
    if (rc != SQLITE_OK) {
        *slot = NULL;
        return db_sqlerr(db, rc);
    }
    *out = *slot;
    return 0;
}

static int obj_stmt(struct db *db, enum proto_type t, enum db_obj_st op, sqlite3_stmt **out)
{
    return gen_stmt(db, &db->obj_stmt[t][op], t, op, out);
}

/* ---- binding and reading values ---- */

static int bind_index(struct db *db, sqlite3_stmt *st, const char *column, int *idx)
{
    char name[PARAM_MAX];
    int n = snprintf(name, sizeof(name), ":f_%s", column);

    *idx = 0;
    if (n > 0 && (size_t)n < sizeof(name)) {
        *idx = sqlite3_bind_parameter_index(st, name);
    }
    if (*idx == 0) {
        return db_fail(db, PROTO_EDB, "no parameter for column %s", column);
    }
    return 0;
}

/* Binds one field value: integers as integers, everything else as text of v->len bytes.
 * Unset is NULL, except for text fields, which read "" when unset and are stored so. */
static int bind_val(struct db *db, sqlite3_stmt *st, const struct proto_field *fd,
                    const struct db_val *v)
{
    const char *s = NULL;
    size_t len = 0;
    int idx = 0;
    int rc = bind_index(db, st, fd->column, &idx);

    if (rc != 0) {
        return rc;
    }
    if (fd->kind == PROTO_F_INT || fd->kind == PROTO_F_ITEMREF) {
        rc = v->set ? sqlite3_bind_int64(st, idx, v->i) : sqlite3_bind_null(st, idx);
        return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
    }
    if (!v->set && fd->kind != PROTO_F_TEXT) {
        rc = sqlite3_bind_null(st, idx);
        return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
    }
    if (v->set) {
        s = v->s;
        len = v->len;
    }
    if (s == NULL) {
        if (len != 0) {
            return db_fail(db, PROTO_EINVAL, "field %s: no string", fd->name);
        }
        s = (const char *)empty;
    }
    rc = sqlite3_bind_text64(st, idx, s, len, SQLITE_STATIC, SQLITE_UTF8);
    return rc == SQLITE_OK ? 0 : db_sqlerr(db, rc);
}

/* Reads the fields of a row of a load statement (id and seq come first) into vals. */
static int read_vals(struct db *db, sqlite3_stmt *st, const struct proto_typeinfo *ti,
                     struct db_val *vals)
{
    int col = 2;

    for (size_t i = 0; i < ti->nfields; i++) {
        const struct proto_field *fd = &ti->fields[i];
        struct db_val *v = &vals[i];

        memset(v, 0, sizeof(*v));
        if (fd->kind == PROTO_F_COMPUTED) {
            continue;
        }
        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
            col++;
            continue;
        }
        v->set = true;
        if (fd->kind == PROTO_F_INT || fd->kind == PROTO_F_ITEMREF) {
            v->i = sqlite3_column_int64(st, col);
        } else {
            v->s = (const char *)sqlite3_column_text(st, col);
            v->len = (size_t)sqlite3_column_bytes(st, col);
            if (v->s == NULL) {
                return db_fail(db, PROTO_ENOMEM, "out of memory reading %s", fd->name);
            }
        }
        col++;
    }
    return 0;
}

/* ---- objects ---- */

int db_obj_put(struct db *db, const char *meeting, enum proto_type t, int64_t id, int64_t seq,
               const struct db_val *vals)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || ti == NULL || vals == NULL) {
        return PROTO_EINVAL;
    }
    rc = obj_stmt(db, t, DB_OBJ_PUT, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if (t == PROTO_T_MEETING) {
        if ((rc = db_bind_text(db, st, ":id", meeting)) != 0 ||
            (rc = db_bind_int64(db, st, ":now", db_now_ms())) != 0) {
            goto cleanup;
        }
    } else if ((rc = db_bind_int64(db, st, ":id", id)) != 0 ||
               (rc = db_bind_text(db, st, ":meeting", meeting)) != 0) {
        goto cleanup;
    }
    rc = db_bind_int64(db, st, ":seq", seq);
    if (rc != 0) {
        goto cleanup;
    }
    for (size_t i = 0; i < ti->nfields; i++) {
        if (ti->fields[i].kind == PROTO_F_COMPUTED) {
            continue;
        }
        rc = bind_val(db, st, &ti->fields[i], &vals[i]);
        if (rc != 0) {
            goto cleanup;
        }
    }
    rc = db_step(db, st);
    if (rc == 0 && sqlite3_changes(db->conn) == 0) {
        rc = db_fail(db, PROTO_ECONFLICT, "%s %lld belongs to another meeting", ti->name,
                     (long long)id);
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_obj_delete(struct db *db, const char *meeting, enum proto_type t, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || proto_type_info(t) == NULL) {
        return PROTO_EINVAL;
    }
    if (t == PROTO_T_MEETING) {
        return db_fail(db, PROTO_EINVAL, "a meeting is not deleted as an object");
    }
    rc = obj_stmt(db, t, DB_OBJ_DELETE, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_int64(db, st, ":id", id)) != 0 ||
        (rc = db_bind_text(db, st, ":meeting", meeting)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_obj_load(struct db *db, const char *meeting, enum proto_type t, db_obj_cb cb, void *ud)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    struct db_val vals[PROTO_MAX_FIELDS];
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || ti == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    if (ti->nfields > PROTO_MAX_FIELDS) {
        return db_fail(db, PROTO_EDB, "type %s has too many fields", ti->name);
    }
    rc = obj_stmt(db, t, DB_OBJ_LOAD, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":meeting", meeting);
    if (rc != 0) {
        goto cleanup;
    }
    while ((rc = db_step(db, st)) == 1) {
        rc = read_vals(db, st, ti, vals);
        if (rc != 0) {
            goto cleanup;
        }
        rc = cb(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), vals);
        if (rc != 0) {
            goto cleanup;
        }
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_obj_max_id(struct db *db, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || out == NULL) {
        return PROTO_EINVAL;
    }
    *out = 0;
    rc = gen_stmt(db, &db->obj_max_id, PROTO_T_MEETING, DB_OBJ_ST_COUNT, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_EDB, "no result from the max id query");
    }
    db_stmt_done(st);
    st = NULL;
    int64_t logged = 0;
    if (rc == 0 && (rc = max_id_logged(db, &logged)) == 0 && logged > *out) {
        *out = logged;
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* The largest id of the object tables only (cheap: their primary keys). */
static int max_id_tables(struct db *db, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    int rc = gen_stmt(db, &db->obj_max_id, PROTO_T_MEETING, DB_OBJ_ST_COUNT, &st);
    if (rc == 0 && (rc = db_step(db, st)) == 1) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_EDB, "no result from the max id query");
    }
    db_stmt_done(st);
    return rc;
}

/* Reads counter `name` into *out; 0 when it has no row yet. */
static int counter_get(struct db *db, const char *name, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *out = 0;
    rc = db_stmt_get(db, DB_ST_COUNTER_GET, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":name", name);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

static int counter_set(struct db *db, const char *name, int64_t value)
{
    sqlite3_stmt *st = NULL;
    int rc = db_stmt_get(db, DB_ST_COUNTER_SET, &st);

    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":name", name)) != 0 ||
        (rc = db_bind_int64(db, st, ":value", value)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

/* Its own transaction, committed before the ids are used: inside the caller's, a rollback
 * would take the reservation back while the caller still holds the ids, and the next call
 * would hand them out again. The block starts above every id in use too, so that ids
 * written by a program that did not reserve them are never handed out. */
int db_id_reserve(struct db *db, int64_t count, int64_t *first)
{
    enum db_tx tx = DB_TX_TOP;
    int64_t next = 0;
    int64_t max = 0;
    int rc;

    if (db == NULL || first == NULL || count < 1) {
        return PROTO_EINVAL;
    }
    *first = 0;
    if (!sqlite3_get_autocommit(db->conn)) {
        return db_fail(db, PROTO_EDB, "db_id_reserve: a transaction is open");
    }
    rc = db_tx_begin(db, &tx);
    if (rc != 0) {
        return rc;
    }
    /* Every process reserves through the counter, so the ids the log names (a scan of
     * it) are read only when there is no counter yet; an id written to a table without a
     * reservation still pushes the next block up. */
    if ((rc = counter_get(db, "object_id", &next)) != 0 ||
        (rc = next == 0 ? db_obj_max_id(db, &max) : max_id_tables(db, &max)) != 0) {
        goto cleanup;
    }
    if (next <= max) {
        next = max + 1;
    }
    if (count > INT64_MAX - next) {
        rc = db_fail(db, PROTO_EDB, "object ids exhausted");
        goto cleanup;
    }
    rc = counter_set(db, "object_id", next + count);
cleanup:
    rc = db_tx_end(db, tx, rc);
    if (rc == 0) {
        *first = next;
    }
    return rc;
}

int db_meeting_list(struct db *db, db_meeting_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    const char *id = NULL;
    int rc;

    if (db == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_MEETING_LIST, &st);
    if (rc != 0) {
        goto cleanup;
    }
    while ((rc = db_step(db, st)) == 1) {
        id = (const char *)sqlite3_column_text(st, 0);
        if (id == NULL) {
            rc = db_fail(db, PROTO_EDB, "malformed meeting row");
            goto cleanup;
        }
        rc = cb(ud, id);
        if (rc != 0) {
            goto cleanup;
        }
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_meeting_exists(struct db *db, const char *meeting)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_MEETING_EXISTS, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":meeting", meeting);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 1) {
        rc = 0;
    } else if (rc == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such meeting");
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* ---- members ---- */

int db_member_put(struct db *db, const char *meeting, const char *user, const char *role,
                  int64_t seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || user == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, role != NULL ? DB_ST_MEMBER_SET : DB_ST_MEMBER_DELETE, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", meeting)) != 0 ||
        (rc = db_bind_text(db, st, ":user", user)) != 0) {
        goto cleanup;
    }
    if (role != NULL && ((rc = db_bind_text(db, st, ":role", role)) != 0 ||
                         (rc = db_bind_int64(db, st, ":seq", seq)) != 0)) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

static int member_rows(struct db *db, enum db_stmt id, const char *param, const char *key,
                       db_member_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    const char *meeting = NULL;
    const char *user = NULL;
    const char *role = NULL;
    int rc;

    if (db == NULL || key == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, id, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, param, key);
    if (rc != 0) {
        goto cleanup;
    }
    while ((rc = db_step(db, st)) == 1) {
        meeting = (const char *)sqlite3_column_text(st, 0);
        user = (const char *)sqlite3_column_text(st, 1);
        role = (const char *)sqlite3_column_text(st, 2);
        if (meeting == NULL || user == NULL || role == NULL) {
            rc = db_fail(db, PROTO_EDB, "malformed member row");
            goto cleanup;
        }
        rc = cb(ud, meeting, user, role, sqlite3_column_int64(st, 3));
        if (rc != 0) {
            goto cleanup;
        }
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_member_list(struct db *db, const char *meeting, db_member_cb cb, void *ud)
{
    return member_rows(db, DB_ST_MEMBER_LIST, ":meeting", meeting, cb, ud);
}

int db_member_of(struct db *db, const char *user, db_member_cb cb, void *ud)
{
    return member_rows(db, DB_ST_MEMBER_OF, ":user", user, cb, ud);
}

/* ---- audit log ---- */

int db_audit_append(struct db *db, const struct db_audit *e)
{
    sqlite3_stmt *st = NULL;
    const void *payload = NULL;
    int rc;

    if (db == NULL || e == NULL || e->meeting == NULL || e->user == NULL || e->kind == NULL ||
        e->type == NULL || (e->payload == NULL && e->payload_len != 0)) {
        return PROTO_EINVAL;
    }
    payload = e->payload != NULL ? (const void *)e->payload : (const void *)empty;
    rc = db_stmt_get(db, DB_ST_AUDIT_APPEND, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", e->meeting)) != 0 ||
        (rc = db_bind_int64(db, st, ":seq", e->seq)) != 0 ||
        (rc = db_bind_int64(db, st, ":time", e->time_ms)) != 0 ||
        (rc = db_bind_text(db, st, ":user", e->user)) != 0 ||
        (rc = db_bind_text(db, st, ":kind", e->kind)) != 0 ||
        (rc = db_bind_text(db, st, ":type", e->type)) != 0 ||
        (rc = db_bind_blob(db, st, ":payload", payload, e->payload_len)) != 0 ||
        (rc = db_bind_blob(db, st, ":hash", e->hash, DB_HASH_BYTES)) != 0) {
        goto cleanup;
    }
    /* Left unbound, :cid is NULL. */
    if (e->cid != NULL && (rc = db_bind_text(db, st, ":cid", e->cid)) != 0) {
        goto cleanup;
    }
    if (e->id_str != NULL) {
        rc = db_bind_text(db, st, ":obj", e->id_str);
    } else {
        rc = db_bind_int64(db, st, ":obj", e->id_int);
    }
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

/* Reads a row of AUDIT_COLUMNS; the pointers in e point into the statement's row. */
static int read_audit(struct db *db, sqlite3_stmt *st, struct db_audit *e)
{
    const void *hash = NULL;

    memset(e, 0, sizeof(*e));
    e->meeting = (const char *)sqlite3_column_text(st, 0);
    e->seq = sqlite3_column_int64(st, 1);
    e->time_ms = sqlite3_column_int64(st, 2);
    e->user = (const char *)sqlite3_column_text(st, 3);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        e->cid = (const char *)sqlite3_column_text(st, 4);
    }
    e->kind = (const char *)sqlite3_column_text(st, 5);
    e->type = (const char *)sqlite3_column_text(st, 6);
    if (sqlite3_column_type(st, 7) == SQLITE_TEXT) {
        e->id_str = (const char *)sqlite3_column_text(st, 7);
        if (e->id_str == NULL) {
            return db_fail(db, PROTO_ENOMEM, "out of memory reading an audit entry");
        }
    } else {
        e->id_int = sqlite3_column_int64(st, 7);
    }
    e->payload = sqlite3_column_blob(st, 8);
    e->payload_len = (size_t)sqlite3_column_bytes(st, 8);
    if (e->payload == NULL) {
        e->payload = empty;
        e->payload_len = 0;
    }
    hash = sqlite3_column_blob(st, 9);
    if (e->meeting == NULL || e->user == NULL || e->kind == NULL || e->type == NULL ||
        hash == NULL || sqlite3_column_bytes(st, 9) != DB_HASH_BYTES) {
        return db_fail(db, PROTO_EDB, "malformed audit entry");
    }
    memcpy(e->hash, hash, DB_HASH_BYTES);
    return 0;
}

/* Steps a bound statement of AUDIT_COLUMNS to the end, calling cb for every row. */
static int audit_rows(struct db *db, sqlite3_stmt *st, db_audit_cb cb, void *ud)
{
    struct db_audit e;
    int rc;

    while ((rc = db_step(db, st)) == 1) {
        rc = read_audit(db, st, &e);
        if (rc != 0) {
            return rc;
        }
        rc = cb(ud, &e);
        if (rc != 0) {
            return rc;
        }
    }
    return rc;
}

int db_audit_range(struct db *db, const char *meeting, int64_t since, int64_t until, db_audit_cb cb,
                   void *ud)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_AUDIT_RANGE, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", meeting)) != 0 ||
        (rc = db_bind_int64(db, st, ":since", since)) != 0 ||
        (rc = db_bind_int64(db, st, ":until", until)) != 0) {
        goto cleanup;
    }
    rc = audit_rows(db, st, cb, ud);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_audit_history(struct db *db, const char *meeting, const struct db_history_filter *f,
                     db_audit_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    bool by_obj = false;
    enum db_stmt id = DB_ST_AUDIT_HISTORY;
    int rc;

    if (db == NULL || meeting == NULL || f == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    if (f->limit < 1 || f->limit > HISTORY_LIMIT_MAX) {
        return db_fail(db, PROTO_EINVAL, "history limit %d not in 1..%d", f->limit,
                       HISTORY_LIMIT_MAX);
    }
    by_obj = f->id_str != NULL || f->id_int != 0;
    if (by_obj) {
        id = DB_ST_AUDIT_HISTORY_OBJ;
    } else if (f->user != NULL) {
        id = DB_ST_AUDIT_HISTORY_USER;
    }
    rc = db_stmt_get(db, id, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", meeting)) != 0 ||
        (rc = db_bind_int64(db, st, ":since", f->since)) != 0 ||
        (rc = db_bind_int64(db, st, ":until", f->until != 0 ? f->until : INT64_MAX)) != 0 ||
        (rc = db_bind_int64(db, st, ":limit", f->limit)) != 0) {
        goto cleanup;
    }
    /* Filters left unbound are NULL: no filter. */
    if (f->type != NULL && (rc = db_bind_text(db, st, ":type", f->type)) != 0) {
        goto cleanup;
    }
    if (f->user != NULL && (rc = db_bind_text(db, st, ":user", f->user)) != 0) {
        goto cleanup;
    }
    if (f->id_str != NULL) {
        rc = db_bind_text(db, st, ":obj", f->id_str);
    } else if (by_obj) {
        rc = db_bind_int64(db, st, ":obj", f->id_int);
    }
    if (rc != 0) {
        goto cleanup;
    }
    rc = audit_rows(db, st, cb, ud);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_audit_head(struct db *db, const char *meeting, int64_t *seq, uint8_t hash[DB_HASH_BYTES])
{
    sqlite3_stmt *st = NULL;
    const void *h = NULL;
    int rc;

    if (db == NULL || meeting == NULL || seq == NULL) {
        return PROTO_EINVAL;
    }
    *seq = 0;
    if (hash != NULL) {
        memset(hash, 0, DB_HASH_BYTES);
    }
    rc = db_stmt_get(db, DB_ST_AUDIT_HEAD, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":meeting", meeting);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc != 1) {
        goto cleanup;
    }
    h = sqlite3_column_blob(st, 1);
    if (h == NULL || sqlite3_column_bytes(st, 1) != DB_HASH_BYTES) {
        rc = db_fail(db, PROTO_EDB, "malformed audit entry");
        goto cleanup;
    }
    *seq = sqlite3_column_int64(st, 0);
    if (hash != NULL) {
        memcpy(hash, h, DB_HASH_BYTES);
    }
    rc = 0;
cleanup:
    db_stmt_done(st);
    return rc;
}

/* cb may be NULL: the return value alone says whether the cid was used. */
int db_audit_find_cid(struct db *db, const char *meeting, const char *user, const char *cid,
                      db_audit_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    struct db_audit e;
    int rc;

    if (db == NULL || meeting == NULL || user == NULL || cid == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_AUDIT_FIND_CID, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", meeting)) != 0 ||
        (rc = db_bind_text(db, st, ":user", user)) != 0 ||
        (rc = db_bind_text(db, st, ":cid", cid)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
    if (rc == 0) {
        rc = db_fail(db, PROTO_ENOTFOUND, "no such cid");
        goto cleanup;
    }
    if (rc < 0) {
        goto cleanup;
    }
    rc = read_audit(db, st, &e);
    if (rc == 0 && cb != NULL) {
        rc = cb(ud, &e);
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* ---- checkpoints ---- */

int db_checkpoint_add(struct db *db, const char *meeting, int64_t seq,
                      const uint8_t head[DB_HASH_BYTES], const uint8_t sig[DB_SIG_BYTES])
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || head == NULL || sig == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_CHECKPOINT_ADD, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", meeting)) != 0 ||
        (rc = db_bind_int64(db, st, ":seq", seq)) != 0 ||
        (rc = db_bind_blob(db, st, ":head", head, DB_HASH_BYTES)) != 0 ||
        (rc = db_bind_blob(db, st, ":sig", sig, DB_SIG_BYTES)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

int db_checkpoint_list(struct db *db, const char *meeting, db_checkpoint_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    const void *head = NULL;
    const void *sig = NULL;
    int rc;

    if (db == NULL || meeting == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_CHECKPOINT_LIST, &st);
    if (rc != 0) {
        goto cleanup;
    }
    rc = db_bind_text(db, st, ":meeting", meeting);
    if (rc != 0) {
        goto cleanup;
    }
    while ((rc = db_step(db, st)) == 1) {
        head = sqlite3_column_blob(st, 1);
        sig = sqlite3_column_blob(st, 2);
        if (head == NULL || sig == NULL || sqlite3_column_bytes(st, 1) != DB_HASH_BYTES ||
            sqlite3_column_bytes(st, 2) != DB_SIG_BYTES) {
            rc = db_fail(db, PROTO_EDB, "malformed checkpoint");
            goto cleanup;
        }
        rc = cb(ud, sqlite3_column_int64(st, 0), head, sig);
        if (rc != 0) {
            goto cleanup;
        }
    }
cleanup:
    db_stmt_done(st);
    return rc;
}

/* ---- the seq the rows stand at ---- */

int db_rows_seq(struct db *db, const char *meeting, int64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL || seq == NULL) {
        return PROTO_EINVAL;
    }
    *seq = 0;
    rc = db_stmt_get(db, DB_ST_ROWS_SEQ_GET, &st);
    if (rc == 0) {
        rc = db_bind_text(db, st, ":meeting", meeting);
    }
    if (rc == 0) {
        rc = db_step(db, st);
        if (rc == 1) {
            *seq = sqlite3_column_int64(st, 0);
            rc = 0;
        } else if (rc == 0) {
            rc = PROTO_ENOTFOUND;
        }
    }
    db_stmt_done(st);
    return rc;
}

int db_rows_mark(struct db *db, const char *meeting, int64_t seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_ROWS_SEQ_SET, &st);
    if (rc == 0 && (rc = db_bind_text(db, st, ":meeting", meeting)) == 0 &&
        (rc = db_bind_int64(db, st, ":seq", seq)) == 0) {
        rc = db_step(db, st);
    }
    if (rc == 0 && sqlite3_changes(db->conn) != 1) {
        rc = db_fail(db, PROTO_EDB, "no meeting row for %s", meeting);
    }
    db_stmt_done(st);
    return rc;
}

int db_member_clear(struct db *db, const char *meeting)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || meeting == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_MEMBER_CLEAR, &st);
    if (rc == 0 && (rc = db_bind_text(db, st, ":meeting", meeting)) == 0) {
        rc = db_step(db, st);
    }
    db_stmt_done(st);
    return rc;
}

/* ---- snapshots ---- */

int db_snapshot_add(struct db *db, const struct db_snapshot *s)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (db == NULL || s == NULL || s->meeting == NULL || s->data == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, DB_ST_SNAPSHOT_ADD, &st);
    if (rc != 0) {
        goto cleanup;
    }
    if ((rc = db_bind_text(db, st, ":meeting", s->meeting)) != 0 ||
        (rc = db_bind_int64(db, st, ":seq", s->seq)) != 0 ||
        (rc = db_bind_blob(db, st, ":head", s->head, DB_HASH_BYTES)) != 0 ||
        (rc = db_bind_blob(db, st, ":state", s->state, DB_HASH_BYTES)) != 0 ||
        (rc = db_bind_blob(db, st, ":sig", s->sig, DB_SIG_BYTES)) != 0 ||
        (rc = db_bind_blob(db, st, ":data", s->data, s->data_len)) != 0) {
        goto cleanup;
    }
    rc = db_step(db, st);
cleanup:
    db_stmt_done(st);
    return rc;
}

/* Reads the snapshot row of st (seq, head, state, sig, data or NULL) into s. */
static int read_snapshot(struct db *db, sqlite3_stmt *st, const char *meeting,
                         struct db_snapshot *s)
{
    const void *head = sqlite3_column_blob(st, 1);
    const void *state = sqlite3_column_blob(st, 2);
    const void *sig = sqlite3_column_blob(st, 3);
    if (head == NULL || state == NULL || sig == NULL ||
        sqlite3_column_bytes(st, 1) != DB_HASH_BYTES ||
        sqlite3_column_bytes(st, 2) != DB_HASH_BYTES ||
        sqlite3_column_bytes(st, 3) != DB_SIG_BYTES) {
        return db_fail(db, PROTO_EDB, "malformed snapshot");
    }
    memset(s, 0, sizeof(*s));
    s->meeting = meeting;
    s->seq = sqlite3_column_int64(st, 0);
    memcpy(s->head, head, DB_HASH_BYTES);
    memcpy(s->state, state, DB_HASH_BYTES);
    memcpy(s->sig, sig, DB_SIG_BYTES);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        s->data = sqlite3_column_blob(st, 4);
        s->data_len = (size_t)sqlite3_column_bytes(st, 4);
        if (s->data == NULL && s->data_len > 0) {
            return db_fail(db, PROTO_ENOMEM, "out of memory reading a snapshot");
        }
        if (s->data == NULL) {
            s->data = (const uint8_t *)"";
        }
    }
    return 0;
}

static int snapshot_rows(struct db *db, enum db_stmt id, const char *meeting, int64_t at,
                         db_snapshot_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    struct db_snapshot s;
    int rc;

    if (db == NULL || meeting == NULL || cb == NULL) {
        return PROTO_EINVAL;
    }
    rc = db_stmt_get(db, id, &st);
    if (rc == 0) {
        rc = db_bind_text(db, st, ":meeting", meeting);
    }
    if (rc == 0 && id == DB_ST_SNAPSHOT_FIND) {
        rc = db_bind_int64(db, st, ":at", at);
    }
    while (rc == 0 && (rc = db_step(db, st)) == 1) {
        rc = read_snapshot(db, st, meeting, &s);
        if (rc == 0) {
            rc = cb(ud, &s);
        }
    }
    db_stmt_done(st);
    return rc;
}

int db_snapshot_before(struct db *db, const char *meeting, int64_t at, db_snapshot_cb cb, void *ud)
{
    return snapshot_rows(db, DB_ST_SNAPSHOT_FIND, meeting, at, cb, ud);
}

int db_snapshot_list(struct db *db, const char *meeting, db_snapshot_cb cb, void *ud)
{
    return snapshot_rows(db, DB_ST_SNAPSHOT_LIST, meeting, 0, cb, ud);
}

int db_obj_clear(struct db *db, const char *meeting, enum proto_type t)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    char sql[128];
    sqlite3_stmt *st = NULL;

    if (db == NULL || meeting == NULL || ti == NULL || t == PROTO_T_MEETING) {
        return PROTO_EINVAL;
    }
    /* Rare (a rewrite of every row after a load): prepared each time. */
    snprintf(sql, sizeof(sql), "DELETE FROM \"%s\" WHERE \"meeting\" = ?1", ti->table);
    int rc = sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_text(st, 1, meeting, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    rc = rc == SQLITE_DONE ? 0 : db_sqlerr(db, rc);
    sqlite3_finalize(st);
    return rc;
}
