/* srv_audit.c - the audit log: its hash chain, signed checkpoints, and verification. */
#include "srv_audit.h"

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
    return 0;
}

int srv_audit_verify(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                     int64_t *count, uint8_t head[DB_HASH_BYTES], int64_t *bad_seq)
{
    return srv_audit_verify_known(db, meeting, pk, 0, NULL, count, head, bad_seq);
}

int srv_audit_verify_known(struct db *db, const char *meeting, const uint8_t pk[PROTO_KEY_BYTES],
                           int64_t known_seq, const uint8_t known_hash[DB_HASH_BYTES],
                           int64_t *count, uint8_t head[DB_HASH_BYTES], int64_t *bad_seq)
{
    struct verify_ctx v = {.meeting = meeting, .expect = 1};
    srv_audit_genesis(meeting, v.prev);
    int rc = db_audit_range(db, meeting, 0, INT64_MAX, verify_one, &v);
    if (rc == 0 && v.bad_seq == 0 && pk != NULL) {
        struct cp_ctx c = {.v = &v, .pk = pk};
        rc = db_checkpoint_list(db, meeting, verify_checkpoint, &c);
        v.bad_seq = c.bad_seq;
    }
    /* A head the caller saw earlier: the log must still hold it, so a cut or rewritten
     * log is caught even when its checkpoints went with it. */
    if (rc == 0 && known_hash != NULL) {
        bool held = known_seq >= 1 && known_seq <= v.count &&
                    sodium_memcmp(v.hashes + (size_t)known_seq * DB_HASH_BYTES, known_hash,
                                  DB_HASH_BYTES) == 0;
        if (!held && (v.bad_seq == 0 || known_seq < v.bad_seq)) {
            v.bad_seq = known_seq;
        }
    }
    *count = v.count;
    *bad_seq = v.bad_seq;
    memcpy(head, v.prev, DB_HASH_BYTES);
    free(v.hashes);
    return rc;
}
