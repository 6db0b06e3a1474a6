/* srv_audit.c - the audit log: its hash chain, signed checkpoints, and verification. */
#include "srv_audit.h"
#include "srv_base.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- the chain ---- */

void srv_audit_genesis(const char *meeting, uint8_t out[DB_HASH_BYTES])
{
    static const char label[] = "confer audit genesis";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DB_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
    crypto_generichash_update(&st, (const uint8_t *)meeting, strlen(meeting));
    crypto_generichash_final(&st, out, DB_HASH_BYTES);
}

static void pack_id(msgpack_packer *pk, const struct db_audit *e)
{
    if (e->id_str) {
        proto_pack_cstr(pk, e->id_str);
    } else {
        msgpack_pack_int64(pk, e->id_int);
    }
}

/* The canonical form of an entry:
 *   [meeting, seq, time, user, cid|nil, kind, type, id, payload]
 * with payload the stored map bytes as they are. */
static int pack_entry(const struct db_audit *e, struct proto_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    msgpack_pack_array(&pk, 9);
    proto_pack_cstr(&pk, e->meeting);
    msgpack_pack_int64(&pk, e->seq);
    msgpack_pack_int64(&pk, e->time_ms);
    proto_pack_cstr(&pk, e->user);
    if (e->cid) {
        proto_pack_cstr(&pk, e->cid);
    } else {
        msgpack_pack_nil(&pk);
    }
    proto_pack_cstr(&pk, e->kind);
    proto_pack_cstr(&pk, e->type);
    pack_id(&pk, e);
    return proto_buf_append(out, e->payload, e->payload_len);
}

int srv_audit_entry_hash(const uint8_t prev[DB_HASH_BYTES], const struct db_audit *e,
                         uint8_t out[DB_HASH_BYTES])
{
    struct proto_buf b = {0};
    int rc = pack_entry(e, &b);
    if (rc == 0) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, DB_HASH_BYTES);
        crypto_generichash_update(&st, prev, DB_HASH_BYTES);
        crypto_generichash_update(&st, b.data, b.len);
        crypto_generichash_final(&st, out, DB_HASH_BYTES);
    }
    proto_buf_free(&b, 0);
    return rc;
}

/* The message a checkpoint signs:
 *   "confer/1 audit checkpoint" || u32be(len(meeting)) || meeting || u64be(seq) || head */
void srv_audit_checkpoint_msg(const char *meeting, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                              struct proto_buf *out)
{
    static const char label[] = "confer/1 audit checkpoint";
    uint8_t n[8];
    proto_buf_append(out, label, sizeof(label) - 1);
    proto_frame_put_len(n, (uint32_t)strlen(meeting));
    proto_buf_append(out, n, 4);
    proto_buf_append(out, meeting, strlen(meeting));
    for (int i = 0; i < 8; i++) {
        n[i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
    }
    proto_buf_append(out, n, 8);
    proto_buf_append(out, head, DB_HASH_BYTES);
}

/* ---- the rows ---- */

struct load_ctx {
    struct srv_rec *rec;
    enum proto_type type;
    int rc;
};

static int load_obj(void *ud, int64_t id, int64_t seq, const struct db_val *vals)
{
    struct load_ctx *ctx = ud;
    const struct proto_typeinfo *ti = proto_type_info(ctx->type);
    struct srv_obj *o = ctx->type == PROTO_T_MEETING ? &ctx->rec->meeting : srv_obj_new(ctx->type);
    if (o == NULL) {
        return PROTO_ENOMEM;
    }
    o->id = ctx->type == PROTO_T_MEETING ? 0 : id;
    o->seq = seq;
    for (size_t i = 0; i < ti->nfields; i++) {
        enum proto_fkind k = ti->fields[i].kind;
        if (k == PROTO_F_COMPUTED) {
            continue;
        }
        if (!vals[i].set) {
            srv_val_unset(&o->f[i]);
        } else if (k == PROTO_F_INT || k == PROTO_F_ITEMREF) {
            srv_val_set_int(&o->f[i], vals[i].i);
        } else if (srv_val_set_str(&o->f[i], vals[i].s, vals[i].len) != 0) {
            return PROTO_ENOMEM;
        }
    }
    if (ctx->type != PROTO_T_MEETING && srv_rec_add(ctx->rec, o) != 0) {
        srv_obj_free(o);
        return PROTO_ENOMEM;
    }
    return 0;
}

static int load_member(void *ud, const char *meeting, const char *user, const char *role,
                       int64_t seq)
{
    struct srv_rec *rec = ud;
    (void)meeting;
    return srv_rec_set_member(rec, user, role, seq);
}

int srv_audit_load_rows(struct db *db, const char *meeting, struct srv_rec **out, int64_t *rows_seq)
{
    int rc = 0;
    struct srv_rec *rec = srv_rec_new(meeting);
    *out = NULL;
    if (rec == NULL) {
        return PROTO_ENOMEM;
    }
    for (int t = 0; t < PROTO_T_COUNT && rc == 0; t++) {
        struct load_ctx ctx = {.rec = rec, .type = (enum proto_type)t};
        rc = db_obj_load(db, meeting, (enum proto_type)t, load_obj, &ctx);
    }
    if (rc == 0) {
        rc = db_member_list(db, meeting, load_member, rec);
    }
    if (rc == 0) {
        rc = db_rows_seq(db, meeting, rows_seq);
    }
    if (rc != 0) {
        srv_rec_free(rec);
        return rc;
    }
    rec->seq = *rows_seq;
    *out = rec;
    return 0;
}

/* ---- verification ---- */

struct verify_ctx {
    const char *meeting;
    uint8_t prev[DB_HASH_BYTES];
    int64_t expect;
    int64_t bad_seq;
    int64_t count;
    /* hashes by seq, to check checkpoints against */
    uint8_t *hashes;
    size_t cap;
};

static int verify_one(void *ud, const struct db_audit *e)
{
    struct verify_ctx *v = ud;
    if (v->bad_seq) {
        return 0;
    }
    if (e->seq != v->expect) {
        v->bad_seq = v->expect; /* a missing or reordered entry */
        return 0;
    }
    uint8_t h[DB_HASH_BYTES];
    if (srv_audit_entry_hash(v->prev, e, h) != 0 || sodium_memcmp(h, e->hash, sizeof(h)) != 0 ||
        strcmp(e->meeting, v->meeting) != 0) {
        v->bad_seq = e->seq;
        return 0;
    }
    if ((size_t)e->seq * DB_HASH_BYTES + DB_HASH_BYTES > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64 * DB_HASH_BYTES;
        while (cap < (size_t)e->seq * DB_HASH_BYTES + DB_HASH_BYTES) {
            cap *= 2;
        }
        uint8_t *nh = realloc(v->hashes, cap);
        if (nh == NULL) {
            return PROTO_ENOMEM;
        }
        v->hashes = nh;
        v->cap = cap;
    }
    memcpy(v->hashes + (size_t)e->seq * DB_HASH_BYTES, h, DB_HASH_BYTES);
    memcpy(v->prev, h, DB_HASH_BYTES);
    v->expect++;
    v->count++;
    return 0;
}

struct cp_ctx {
    struct verify_ctx *v;
    const uint8_t *pk;
    int64_t bad_seq;
    int64_t newest;   /* the newest checkpoint that holds */
    int64_t expected; /* a seq that must have one */
    bool saw_expected;
};

static int verify_checkpoint(void *ud, int64_t seq, const uint8_t head[DB_HASH_BYTES],
                             const uint8_t sig[DB_SIG_BYTES])
{
    struct cp_ctx *c = ud;
    struct proto_buf msg = {0};
    srv_audit_checkpoint_msg(c->v->meeting, seq, head, &msg);
    bool sig_ok = crypto_sign_verify_detached(sig, msg.data, msg.len, c->pk) == 0;
    proto_buf_free(&msg, 0);
    /* A checkpoint past the chain's end means entries were cut off. */
    bool in_chain =
        seq >= 1 && seq <= c->v->count &&
        sodium_memcmp(c->v->hashes + (size_t)seq * DB_HASH_BYTES, head, DB_HASH_BYTES) == 0;
    if ((!sig_ok || !in_chain) && c->bad_seq == 0) {
        c->bad_seq = seq <= c->v->count ? seq : c->v->count + 1;
    }
    if (sig_ok && in_chain) {
        c->newest = seq > c->newest ? seq : c->newest;
        c->saw_expected = c->saw_expected || seq == c->expected;
    }
    return 0;
}

/* ---- snapshots ---- */

/* The message a snapshot signs:
 *   "confer/1 snapshot" || u32be(len(meeting)) || meeting || u64be(seq) || head || state */
static void snapshot_msg(const struct db_snapshot *s, struct proto_buf *out)
{
    static const char label[] = "confer/1 snapshot";
    uint8_t n[8];
    proto_buf_append(out, label, sizeof(label) - 1);
    proto_frame_put_len(n, (uint32_t)strlen(s->meeting));
    proto_buf_append(out, n, 4);
    proto_buf_append(out, s->meeting, strlen(s->meeting));
    for (int i = 0; i < 8; i++) {
        n[i] = (uint8_t)((uint64_t)s->seq >> (56 - 8 * i));
    }
    proto_buf_append(out, n, 8);
    proto_buf_append(out, s->head, DB_HASH_BYTES);
    proto_buf_append(out, s->state, DB_HASH_BYTES);
}

int srv_audit_snapshot_make(const struct srv_rec *rec, const uint8_t head[DB_HASH_BYTES],
                            const uint8_t sk[crypto_sign_SECRETKEYBYTES], struct db_snapshot *s,
                            struct proto_buf *data)
{
    struct proto_buf msg = {0};
    memset(s, 0, sizeof(*s));
    int rc = srv_rec_dump(rec, data);
    if (rc != 0) {
        return rc;
    }
    s->meeting = rec->id;
    s->seq = rec->seq;
    memcpy(s->head, head, DB_HASH_BYTES);
    crypto_generichash(s->state, DB_HASH_BYTES, data->data, data->len, NULL, 0);
    s->data = data->data;
    s->data_len = data->len;
    snapshot_msg(s, &msg);
    if (msg.data == NULL) {
        return PROTO_ENOMEM;
    }
    crypto_sign_detached(s->sig, NULL, msg.data, msg.len, sk);
    proto_buf_free(&msg, 0);
    return 0;
}

bool srv_audit_snapshot_ok(const struct db_snapshot *s, const uint8_t pk[PROTO_KEY_BYTES])
{
    struct proto_buf msg = {0};
    bool ok = true;
    if (s->data != NULL) {
        uint8_t h[DB_HASH_BYTES];
        crypto_generichash(h, sizeof(h), s->data, s->data_len, NULL, 0);
        ok = sodium_memcmp(h, s->state, sizeof(h)) == 0;
    }
    snapshot_msg(s, &msg);
    ok = ok && msg.data != NULL && crypto_sign_verify_detached(s->sig, msg.data, msg.len, pk) == 0;
    proto_buf_free(&msg, 0);
    return ok;
}

/* ---- rebuilding a record at a seq ---- */

struct entry_hash {
    int64_t seq;
    uint8_t hash[DB_HASH_BYTES];
    bool found;
};

static int take_hash(void *ud, const struct db_audit *e)
{
    struct entry_hash *h = ud;
    if (e->seq == h->seq) {
        memcpy(h->hash, e->hash, DB_HASH_BYTES);
        h->found = true;
    }
    return 0;
}

struct pick {
    struct db *db;
    const uint8_t *pk;
    struct srv_rebuild *rb;
    int rc;
};

/* The newest snapshot that holds: signed by the host key, its data the state it signed,
 * its head the log's hash at its seq, and a dump of this meeting at that seq. */
static int pick_snapshot(void *ud, const struct db_snapshot *s)
{
    struct pick *p = ud;
    struct entry_hash h = {.seq = s->seq};
    if (!srv_audit_snapshot_ok(s, p->pk)) {
        srv_log(NULL, SRV_LOG_WARN,
                "meeting %s: the snapshot at seq %lld is not signed by "
                "this server's key or not what it signed: passed over (run conferd audit "
                "verify)",
                s->meeting, (long long)s->seq);
        return 0;
    }
    int rc = db_audit_range(p->db, s->meeting, s->seq - 1, s->seq, take_hash, &h);
    if (rc != 0) {
        p->rc = rc;
        return 1;
    }
    if (!h.found || sodium_memcmp(h.hash, s->head, DB_HASH_BYTES) != 0) {
        srv_log(NULL, SRV_LOG_WARN,
                "meeting %s: the snapshot at seq %lld does not match the "
                "log: passed over (run conferd audit verify)",
                s->meeting, (long long)s->seq);
        return 0;
    }
    struct srv_rec *rec = NULL;
    rc = srv_rec_undump(s->meeting, s->data, s->data_len, &rec);
    if (rc != 0 || rec->seq != s->seq) {
        srv_rec_free(rec);
        if (rc == PROTO_ENOMEM) {
            p->rc = rc;
            return 1;
        }
        srv_log(NULL, SRV_LOG_WARN,
                "meeting %s: the snapshot at seq %lld does not load: "
                "passed over",
                s->meeting, (long long)s->seq);
        return 0;
    }
    p->rb->rec = rec;
    p->rb->seq = s->seq;
    p->rb->snapshot_seq = s->seq;
    memcpy(p->rb->head, s->head, DB_HASH_BYTES);
    return 1;
}

int srv_audit_rebuild_add(struct srv_rebuild *rb, const struct db_audit *e)
{
    if (rb->rc != 0) {
        return rb->rc;
    }
    if (e->seq != rb->seq + 1) {
        rb->rc = PROTO_EINVAL; /* a gap or a repeat: the log lost entries */
        return rb->rc;
    }
    rb->rc = srv_replay_add(rb->replay, e);
    rb->seq = e->seq;
    memcpy(rb->head, e->hash, DB_HASH_BYTES);
    return rb->rc;
}

static int rebuild_entry(void *ud, const struct db_audit *e)
{
    return srv_audit_rebuild_add(ud, e);
}

int srv_audit_rebuild_begin(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                            int64_t upto, struct srv_rebuild *rb)
{
    memset(rb, 0, sizeof(*rb));
    struct pick p = {.db = db, .pk = pk, .rb = rb};
    /* Without the host key no snapshot can be trusted: the whole log is replayed. */
    int rc = pk != NULL ? db_snapshot_before(db, meeting, upto, pick_snapshot, &p) : 0;
    if (rc == 1) {
        rc = p.rc;
    }
    if (rc == 0 && rb->rec == NULL) {
        rb->rec = srv_rec_new(meeting);
        srv_audit_genesis(meeting, rb->head);
        if (rb->rec == NULL) {
            rc = PROTO_ENOMEM;
        }
    }
    if (rc == 0 && (rb->replay = srv_replay_new(rb->rec)) == NULL) {
        rc = PROTO_ENOMEM;
    }
    if (rc == 0 && rb->seq < upto) {
        rc = db_audit_range(db, meeting, rb->seq, upto, rebuild_entry, rb);
        if (rc == PROTO_EINVAL) {
            rc = 0; /* kept in rb->rc */
        }
    }
    if (rc != 0) {
        srv_audit_rebuild_free(rb);
        rb->rc = rc;
    }
    return rc;
}

int srv_audit_rebuild_end(struct srv_rebuild *rb)
{
    int rc = srv_replay_finish(rb->replay);
    rb->replay = NULL;
    if (rb->rc == 0) {
        rb->rc = rc;
    }
    if (rb->rc != 0) {
        srv_rec_free(rb->rec);
        rb->rec = NULL;
    }
    return rb->rc;
}

void srv_audit_rebuild_free(struct srv_rebuild *rb)
{
    srv_replay_finish(rb->replay);
    rb->replay = NULL;
    srv_rec_free(rb->rec);
    rb->rec = NULL;
}

/* ---- verification: chain, checkpoints, snapshots, known heads, and the stored rows ---- */

static void fail_at(struct srv_audit_result *r, int64_t seq, const char *fmt, const char *a,
                    long long n)
{
    if (r->bad_seq == 0 || seq < r->bad_seq) {
        r->bad_seq = seq;
        snprintf(r->why, sizeof(r->why), fmt, a, n);
    }
}

static void note_mismatch(void *ud, const char *type, int64_t id, const char *id_str,
                          const char *field)
{
    struct srv_audit_result *r = ud;
    if (r->nmismatch < SRV_AUDIT_MISMATCH_MAX) {
        struct srv_audit_mismatch *x = &r->mismatch[r->nmismatch];
        memset(x, 0, sizeof(*x));
        snprintf(x->type, sizeof(x->type), "%s", type);
        x->id = id;
        if (id_str != NULL) {
            x->has_str = true;
            snprintf(x->id_str, sizeof(x->id_str), "%s", id_str);
        }
        if (field != NULL) {
            x->has_field = true;
            snprintf(x->field, sizeof(x->field), "%s", field);
        }
    }
    r->nmismatch++;
}

struct snap_check {
    struct verify_ctx *v;
    const uint8_t *pk;
    struct srv_audit_result *r;
};

static int check_snapshot(void *ud, const struct db_snapshot *s)
{
    struct snap_check *c = ud;
    bool in_chain =
        s->seq >= 1 && s->seq <= c->v->count &&
        sodium_memcmp(c->v->hashes + (size_t)s->seq * DB_HASH_BYTES, s->head, DB_HASH_BYTES) == 0;
    if (!srv_audit_snapshot_ok(s, c->pk)) {
        fail_at(c->r, s->seq <= c->v->count ? s->seq : c->v->count + 1,
                "%sthe snapshot at seq %lld is not what the host key signed", "", s->seq);
    } else if (!in_chain) {
        fail_at(c->r, s->seq <= c->v->count ? s->seq : c->v->count + 1,
                "%sthe snapshot at seq %lld does not match the log", "", s->seq);
    }
    return 0;
}

/* Rebuilds the record at the rows' seq from the log and compares it with the rows. */
static int check_state(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                       struct srv_audit_result *r)
{
    struct srv_rec *rows = NULL;
    struct srv_rebuild rb;
    int rc = srv_audit_load_rows(db, meeting, &rows, &r->rows_seq);
    if (rc == PROTO_ENOTFOUND) {
        if (r->count > 0) { /* a log without its meeting row: the row was removed */
            r->state = false;
            note_mismatch(r, "meeting", 0, meeting, NULL);
            fail_at(r, 1, "%sthe stored record has no meeting row (seq %lld on)", "", 1);
        }
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (r->rows_seq > r->count) {
        r->state = false;
        fail_at(r, r->count + 1, "%sthe stored record stands at seq %lld, after the log's end", "",
                r->rows_seq);
        srv_rec_free(rows);
        return 0;
    }
    rc = srv_audit_rebuild_begin(db, meeting, pk, r->rows_seq, &rb);
    if (rc == 0) {
        rc = srv_audit_rebuild_end(&rb);
    }
    if (rc == PROTO_EINVAL || (rc == 0 && rb.seq != r->rows_seq)) {
        r->state = false;
        fail_at(r, rb.seq + 1, "%sthe log does not replay up to seq %lld", "", r->rows_seq);
        srv_audit_rebuild_free(&rb);
        srv_rec_free(rows);
        return 0;
    }
    if (rc == 0) {
        rows->seq = rb.rec->seq;
        r->state = srv_rec_diff(rb.rec, rows, note_mismatch, r) == 0;
        if (!r->state) {
            fail_at(r, r->rows_seq, "%sthe stored record differs from the log at seq %lld", "",
                    r->rows_seq);
        }
    }
    srv_audit_rebuild_free(&rb);
    srv_rec_free(rows);
    return rc;
}

int srv_audit_check(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                    const struct srv_audit_expect *x, struct srv_audit_result *r)
{
    static const struct srv_audit_expect none = {0};
    struct verify_ctx v = {.meeting = meeting, .expect = 1};
    x = x ? x : &none;
    memset(r, 0, sizeof(*r));
    r->state = true;
    srv_audit_genesis(meeting, v.prev);
    /* One read transaction: the log, checkpoints, snapshots and rows as of one moment. */
    int rc = db_begin_read(db);
    if (rc == 0) {
        rc = db_audit_range(db, meeting, 0, INT64_MAX, verify_one, &v);
    }
    r->count = v.count;
    r->seq = v.count;
    memcpy(r->head, v.prev, DB_HASH_BYTES);
    if (rc == 0 && v.bad_seq != 0) {
        fail_at(r, v.bad_seq, "%sthe chain breaks at seq %lld", "", v.bad_seq);
    }
    if (rc == 0 && pk != NULL) {
        struct cp_ctx c = {.v = &v, .pk = pk, .expected = x->checkpoint_seq};
        int64_t newest = 0;
        rc = db_checkpoint_list(db, meeting, verify_checkpoint, &c);
        if (c.bad_seq != 0) {
            fail_at(r, c.bad_seq, "%sthe checkpoint at seq %lld does not hold", "", c.bad_seq);
        }
        newest = c.newest;
        /* A checkpoint the server knows it wrote, or on a stopped server one of the head,
         * must be there: removing checkpoints with the entries they covered is caught. */
        if (rc == 0 && x->checkpoint_seq > 0 && !c.saw_expected) {
            fail_at(r, x->checkpoint_seq, "%sthe checkpoint at seq %lld is missing", "",
                    x->checkpoint_seq);
        }
        if (rc == 0 && x->head_signed && v.count > 0 && newest < v.count) {
            fail_at(r, newest + 1, "%sno checkpoint covers the entries from seq %lld on", "",
                    newest + 1);
        }
    }
    if (rc == 0 && pk != NULL) {
        struct snap_check sc = {.v = &v, .pk = pk, .r = r};
        rc = db_snapshot_before(db, meeting, INT64_MAX, check_snapshot, &sc);
    }
    /* A head the caller saw earlier: the log must still hold it, so a cut or rewritten
     * log is caught even when its checkpoints went with it. */
    if (rc == 0 && x->known_hash != NULL) {
        bool held = x->known_seq >= 1 && x->known_seq <= v.count &&
                    sodium_memcmp(v.hashes + (size_t)x->known_seq * DB_HASH_BYTES, x->known_hash,
                                  DB_HASH_BYTES) == 0;
        if (!held) {
            fail_at(r, x->known_seq, "%sthe log does not hold the head seen at seq %lld", "",
                    x->known_seq);
        }
    }
    if (rc == 0 && v.bad_seq == 0) {
        rc = check_state(db, meeting, pk, r);
    }
    int erc = db_rollback(db); /* a read transaction: nothing to keep */
    if (rc == 0) {
        rc = erc;
    }
    free(v.hashes);
    return rc;
}

int srv_audit_verify(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                     int64_t *count, uint8_t head[DB_HASH_BYTES], int64_t *bad_seq)
{
    struct srv_audit_result *r = malloc(sizeof(*r));
    if (r == NULL) {
        return PROTO_ENOMEM;
    }
    int rc = srv_audit_check(db, meeting, pk, NULL, r);
    *count = r->count;
    *bad_seq = r->bad_seq;
    memcpy(head, r->head, DB_HASH_BYTES);
    free(r);
    return rc;
}
