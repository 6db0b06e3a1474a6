/* proto_channel.c - handshake and secretstream (PROTOCOL.md sections 2, 3 and 10).
 *
 *   ClientHello  {"proto": "confer", "v": 1, "kx": bin(32)}
 *   ServerHello  {"proto": "confer", "v": 1, "kx": bin(32), "host": bin(32), "sig": bin(64)}
 *   refusal      {"proto": "confer", "error": "unsupported_version", "versions": [1]}
 *
 *   th    = H("confer/1 handshake" || u32be(len(CH)) || CH || server_kx || host_pk)
 *   k_c2s = H_tx("confer/1 c2s" || th), k_s2c = H_rx("confer/1 s2c" || th), with the
 *           client's kx session keys tx/rx (the server's rx/tx).
 */
#include <string.h>
#include <msgpack.h>

#include "proto_channel.h"
#include "proto_err.h"
#include "proto_msgpack.h"
#include "proto_rpc.h"

#define LABEL_HS   "confer/1 handshake"
#define LABEL_C2S  "confer/1 c2s"
#define LABEL_S2C  "confer/1 s2c"
#define PROTO_NAME "confer"

/* libsodium needs one sodium_init() before it makes keys; it is idempotent and
 * thread-safe, so every entry point that needs it calls it rather than trusting callers. */
static int sodium_ready(void)
{
    return sodium_init() < 0 ? PROTO_ECRYPTO : 0;
}

int proto_hostkey_generate(struct proto_hostkey *k)
{
    if (sodium_ready() < 0 || crypto_sign_keypair(k->pk, k->sk) != 0) {
        return PROTO_ECRYPTO;
    }
    return 0;
}

void proto_fingerprint(const uint8_t pk[PROTO_KEY_BYTES], char out[PROTO_FINGERPRINT_LEN])
{
    static const char prefix[] = "SHA256:";
    uint8_t h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, pk, PROTO_KEY_BYTES);
    memcpy(out, prefix, sizeof(prefix) - 1);
    sodium_bin2base64(out + sizeof(prefix) - 1, PROTO_FINGERPRINT_LEN - (sizeof(prefix) - 1), h,
                      sizeof(h), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

void proto_transcript_hash(const uint8_t *ch, size_t ch_len,
                           const uint8_t server_kx[PROTO_KEY_BYTES],
                           const uint8_t host_pk[PROTO_KEY_BYTES], uint8_t th[PROTO_KEY_BYTES])
{
    crypto_generichash_state st;
    uint8_t len_be[4];

    proto_frame_put_len(len_be, (uint32_t)ch_len);
    crypto_generichash_init(&st, NULL, 0, PROTO_KEY_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)LABEL_HS, sizeof(LABEL_HS) - 1);
    crypto_generichash_update(&st, len_be, sizeof(len_be));
    crypto_generichash_update(&st, ch, ch_len);
    crypto_generichash_update(&st, server_kx, PROTO_KEY_BYTES);
    crypto_generichash_update(&st, host_pk, PROTO_KEY_BYTES);
    crypto_generichash_final(&st, th, PROTO_KEY_BYTES);
    sodium_memzero(&st, sizeof(st));
}

/* out = H_key(label || th); the labels are both 12 bytes. */
static void derive(uint8_t out[PROTO_KEY_BYTES], const uint8_t key[PROTO_KEY_BYTES],
                   const char *label, const uint8_t th[PROTO_KEY_BYTES])
{
    uint8_t msg[sizeof(LABEL_C2S) - 1 + PROTO_KEY_BYTES];

    memcpy(msg, label, sizeof(LABEL_C2S) - 1);
    memcpy(msg + sizeof(LABEL_C2S) - 1, th, PROTO_KEY_BYTES);
    crypto_generichash(out, PROTO_KEY_BYTES, msg, sizeof(msg), key, PROTO_KEY_BYTES);
}

/* Turns the client's kx session keys into k_c2s and k_s2c. */
static void derive_keys(const uint8_t client_tx[PROTO_KEY_BYTES],
                        const uint8_t client_rx[PROTO_KEY_BYTES], const uint8_t th[PROTO_KEY_BYTES],
                        uint8_t c2s[PROTO_KEY_BYTES], uint8_t s2c[PROTO_KEY_BYTES])
{
    derive(c2s, client_tx, LABEL_C2S, th);
    derive(s2c, client_rx, LABEL_S2C, th);
}

/* A msgpack-c writer into a fixed array; fails instead of growing. */
struct fixed_out {
    uint8_t *p;
    size_t cap;
    size_t len;
};

static int fixed_write(void *data, const char *buf, size_t len)
{
    struct fixed_out *o = data;

    if (len > o->cap - o->len) {
        return -1;
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return 0;
}

/* Packs a str key and a bin value. */
static int pack_kv_bin(msgpack_packer *pk, const char *key, const uint8_t *p, size_t n)
{
    if (proto_pack_cstr(pk, key) != 0 || msgpack_pack_bin_with_body(pk, p, n) != 0) {
        return PROTO_ETOOBIG;
    }
    return 0;
}

/* Packs "proto": "confer" and "v": 1, the first two entries of both hellos. */
static int pack_head(msgpack_packer *pk)
{
    if (proto_pack_cstr(pk, "proto") != 0 || proto_pack_cstr(pk, PROTO_NAME) != 0 ||
        proto_pack_cstr(pk, "v") != 0 || msgpack_pack_uint8(pk, PROTO_VERSION) != 0) {
        return PROTO_ETOOBIG;
    }
    return 0;
}

static int pack_client_hello(struct proto_client_hs *hs)
{
    struct fixed_out o = {hs->hello, sizeof(hs->hello), 0};
    msgpack_packer pk;
    int rc = 0;

    msgpack_packer_init(&pk, &o, fixed_write);
    if (msgpack_pack_map(&pk, 3) != 0) {
        return PROTO_ETOOBIG;
    }
    rc = pack_head(&pk);
    if (rc == 0) {
        rc = pack_kv_bin(&pk, "kx", hs->pk, sizeof(hs->pk));
    }
    hs->hello_len = o.len;
    return rc;
}

static int pack_server_hello(uint8_t *out, size_t cap, size_t *out_len,
                             const uint8_t kx[PROTO_KEY_BYTES], const uint8_t host[PROTO_KEY_BYTES],
                             const uint8_t sig[PROTO_SIG_BYTES])
{
    struct fixed_out o = {out, cap, 0};
    msgpack_packer pk;
    int rc = 0;

    msgpack_packer_init(&pk, &o, fixed_write);
    if (msgpack_pack_map(&pk, 5) != 0) {
        return PROTO_ETOOBIG;
    }
    rc = pack_head(&pk);
    if (rc == 0) {
        rc = pack_kv_bin(&pk, "kx", kx, PROTO_KEY_BYTES);
    }
    if (rc == 0) {
        rc = pack_kv_bin(&pk, "host", host, PROTO_KEY_BYTES);
    }
    if (rc == 0) {
        rc = pack_kv_bin(&pk, "sig", sig, PROTO_SIG_BYTES);
    }
    *out_len = o.len;
    return rc;
}

static int pack_refusal(uint8_t *out, size_t cap, size_t *out_len)
{
    struct fixed_out o = {out, cap, 0};
    msgpack_packer pk;

    msgpack_packer_init(&pk, &o, fixed_write);
    if (msgpack_pack_map(&pk, 3) != 0 || proto_pack_cstr(&pk, "proto") != 0 ||
        proto_pack_cstr(&pk, PROTO_NAME) != 0 || proto_pack_cstr(&pk, "error") != 0 ||
        proto_pack_cstr(&pk, "unsupported_version") != 0 || proto_pack_cstr(&pk, "versions") != 0 ||
        msgpack_pack_array(&pk, 1) != 0 || msgpack_pack_uint8(&pk, PROTO_VERSION) != 0) {
        return PROTO_ETOOBIG;
    }
    *out_len = o.len;
    return 0;
}

/* Unpacks a hello payload: exactly one msgpack map, nothing after it. The caller destroys
 * u in every case. */
static int unpack_hello(const uint8_t *p, size_t len, msgpack_unpacked *u)
{
    size_t vlen = 0;
    size_t off = 0;

    if (p == NULL || len == 0 || len > PROTO_HELLO_MAX) {
        return PROTO_EINVAL;
    }
    if (proto_mp_check_one(p, len, &vlen) != 0 || vlen != len) {
        return PROTO_EINVAL;
    }
    if (msgpack_unpack_next(u, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len || u->data.type != MSGPACK_OBJECT_MAP) {
        return PROTO_EINVAL;
    }
    return 0;
}

static bool str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);

    return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static bool is_int(const msgpack_object *o)
{
    return o != NULL && (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                         o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
}

/* Looks up a bin of exactly n bytes; NULL when absent or of another type or size. */
static const uint8_t *bin_of(const msgpack_object *map, const char *key, size_t n)
{
    const msgpack_object *o = proto_mp_map_get(map, key);

    if (o == NULL || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n) {
        return NULL;
    }
    return (const uint8_t *)o->via.bin.ptr;
}

/* proto = "confer" and an integer v: the common part of every hello. Returns 0 for v = 1,
 * PROTO_EVERSION for another integer, PROTO_EINVAL otherwise. */
static int check_head(const msgpack_object *map)
{
    const msgpack_object *v = proto_mp_map_get(map, "v");

    if (!str_is(proto_mp_map_get(map, "proto"), PROTO_NAME) || !is_int(v)) {
        return PROTO_EINVAL;
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != PROTO_VERSION) {
        return PROTO_EVERSION;
    }
    return 0;
}

int proto_hs_client_start(struct proto_client_hs *hs)
{
    int rc = 0;

    memset(hs, 0, sizeof(*hs));
    if (sodium_ready() < 0 || crypto_kx_keypair(hs->pk, hs->sk) != 0) {
        rc = PROTO_ECRYPTO;
        goto cleanup;
    }
    rc = pack_client_hello(hs);

cleanup:
    if (rc < 0) {
        sodium_memzero(hs, sizeof(*hs));
    }
    return rc;
}

int proto_hs_client_finish(struct proto_client_hs *hs, const uint8_t *sh, size_t sh_len,
                           uint8_t host_pk[PROTO_KEY_BYTES], struct proto_keys *keys)
{
    msgpack_unpacked u;
    const msgpack_object *map = NULL;
    const uint8_t *kx = NULL;
    const uint8_t *host = NULL;
    const uint8_t *sig = NULL;
    uint8_t th[PROTO_KEY_BYTES];
    uint8_t rx[crypto_kx_SESSIONKEYBYTES];
    uint8_t tx[crypto_kx_SESSIONKEYBYTES];
    int rc = 0;

    msgpack_unpacked_init(&u);
    rc = sodium_ready();
    if (rc < 0) {
        goto cleanup;
    }
    rc = unpack_hello(sh, sh_len, &u);
    if (rc < 0) {
        goto cleanup;
    }
    map = &u.data;
    if (proto_mp_map_get(map, "error") != NULL) {
        /* The refusal has no v; anything else carrying "error" is malformed. */
        rc = str_is(proto_mp_map_get(map, "proto"), PROTO_NAME) &&
                     str_is(proto_mp_map_get(map, "error"), "unsupported_version")
                 ? PROTO_EVERSION
                 : PROTO_EINVAL;
        goto cleanup;
    }
    kx = bin_of(map, "kx", PROTO_KEY_BYTES);
    host = bin_of(map, "host", PROTO_KEY_BYTES);
    sig = bin_of(map, "sig", PROTO_SIG_BYTES);
    rc = check_head(map);
    if (rc == PROTO_EINVAL || kx == NULL || host == NULL || sig == NULL) {
        rc = PROTO_EINVAL;
        goto cleanup;
    }
    if (rc < 0) {
        goto cleanup;
    }

    proto_transcript_hash(hs->hello, hs->hello_len, kx, host, th);
    if (crypto_sign_verify_detached(sig, th, sizeof(th), host) != 0) {
        rc = PROTO_ECRYPTO;
        goto cleanup;
    }
    if (crypto_kx_client_session_keys(rx, tx, hs->pk, hs->sk, kx) != 0) {
        rc = PROTO_ECRYPTO;
        goto cleanup;
    }
    derive_keys(tx, rx, th, keys->tx, keys->rx);
    memcpy(keys->th, th, sizeof(th));
    memcpy(host_pk, host, PROTO_KEY_BYTES);

cleanup:
    /* Wiped on failure too: a handshake is never retried with the same ephemeral key. */
    sodium_memzero(hs->sk, sizeof(hs->sk));
    sodium_memzero(rx, sizeof(rx));
    sodium_memzero(tx, sizeof(tx));
    msgpack_unpacked_destroy(&u);
    if (rc < 0) {
        sodium_memzero(keys, sizeof(*keys));
    }
    return rc;
}

int proto_hs_server_answer(const struct proto_hostkey *host, const uint8_t *ch, size_t ch_len,
                           uint8_t *out, size_t cap, size_t *out_len, struct proto_keys *keys)
{
    msgpack_unpacked u;
    const uint8_t *client_kx = NULL;
    uint8_t kx_pk[crypto_kx_PUBLICKEYBYTES];
    uint8_t kx_sk[crypto_kx_SECRETKEYBYTES];
    uint8_t rx[crypto_kx_SESSIONKEYBYTES];
    uint8_t tx[crypto_kx_SESSIONKEYBYTES];
    uint8_t sig[PROTO_SIG_BYTES];
    int rc = 0;

    *out_len = 0;
    msgpack_unpacked_init(&u);
    rc = sodium_ready();
    if (rc < 0) {
        goto cleanup;
    }
    rc = unpack_hello(ch, ch_len, &u);
    if (rc < 0) {
        goto cleanup;
    }
    /* A wrong v is answered only when the rest of the hello is well formed. */
    client_kx = bin_of(&u.data, "kx", PROTO_KEY_BYTES);
    rc = check_head(&u.data);
    if (rc == PROTO_EINVAL || client_kx == NULL) {
        rc = PROTO_EINVAL;
        goto cleanup;
    }
    if (rc == PROTO_EVERSION) {
        rc = pack_refusal(out, cap, out_len);
        if (rc == 0) {
            rc = PROTO_EVERSION;
        }
        goto cleanup;
    }

    if (crypto_kx_keypair(kx_pk, kx_sk) != 0) {
        rc = PROTO_ECRYPTO;
        goto cleanup;
    }
    proto_transcript_hash(ch, ch_len, kx_pk, host->pk, keys->th);
    /* The server's rx is the client's tx and vice versa. */
    if (crypto_kx_server_session_keys(rx, tx, kx_pk, kx_sk, client_kx) != 0) {
        rc = PROTO_ECRYPTO;
        goto cleanup;
    }
    sodium_memzero(kx_sk, sizeof(kx_sk));
    derive_keys(rx, tx, keys->th, keys->rx, keys->tx);
    if (crypto_sign_detached(sig, NULL, keys->th, PROTO_KEY_BYTES, host->sk) != 0) {
        rc = PROTO_ECRYPTO;
        goto cleanup;
    }
    rc = pack_server_hello(out, cap, out_len, kx_pk, host->pk, sig);

cleanup:
    sodium_memzero(kx_sk, sizeof(kx_sk));
    sodium_memzero(rx, sizeof(rx));
    sodium_memzero(tx, sizeof(tx));
    msgpack_unpacked_destroy(&u);
    if (rc < 0) {
        sodium_memzero(keys, sizeof(*keys));
    }
    if (rc < 0 && rc != PROTO_EVERSION) {
        *out_len = 0;
    }
    return rc;
}

int proto_channel_init(struct proto_channel *c, const struct proto_keys *keys,
                       uint8_t header[PROTO_STREAM_HDR])
{
    memset(c, 0, sizeof(*c));
    if (sodium_ready() < 0 ||
        crypto_secretstream_xchacha20poly1305_init_push(&c->tx, header, keys->tx) != 0) {
        sodium_memzero(c, sizeof(*c));
        return PROTO_ECRYPTO;
    }
    memcpy(c->rx_key, keys->rx, sizeof(c->rx_key));
    c->rx_ready = 0;
    return 0;
}

/* rx_ready: 0 before the peer's header, 1 while the stream runs, -1 once it has ended (a
 * FINAL or a failure); an ended stream accepts nothing more. */
int proto_channel_recv_header(struct proto_channel *c, const uint8_t *hdr, size_t len)
{
    if (c->rx_ready != 0 || len != PROTO_STREAM_HDR) {
        return PROTO_EINVAL;
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(&c->rx, hdr, c->rx_key) != 0) {
        sodium_memzero(c->rx_key, sizeof(c->rx_key));
        c->rx_ready = -1;
        return PROTO_ECRYPTO;
    }
    sodium_memzero(c->rx_key, sizeof(c->rx_key));
    c->rx_ready = 1;
    return 0;
}

int proto_channel_seal(struct proto_channel *c, const uint8_t *m, size_t mlen, uint8_t *out,
                       int final)
{
    unsigned char tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                              : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;

    /* A FINAL is only ever the empty close notice; anything in it would be rejected. */
    if (final && mlen != 0) {
        return PROTO_EINVAL;
    }
    if (mlen > crypto_secretstream_xchacha20poly1305_MESSAGEBYTES_MAX) {
        return PROTO_ECRYPTO;
    }
    if (crypto_secretstream_xchacha20poly1305_push(&c->tx, out, NULL, m, mlen, NULL, 0, tag) != 0) {
        return PROTO_ECRYPTO;
    }
    return 0;
}

int proto_channel_open(struct proto_channel *c, const uint8_t *cbuf, size_t clen, uint8_t *out,
                       size_t *mlen)
{
    unsigned long long n = 0;
    unsigned char tag = 0;
    int rc = 0;

    *mlen = 0;
    if (c->rx_ready < 0) {
        return PROTO_ECRYPTO;
    }
    if (c->rx_ready == 0 || clen < PROTO_ABYTES) {
        return PROTO_EINVAL;
    }
    if (crypto_secretstream_xchacha20poly1305_pull(&c->rx, out, &n, &tag, cbuf, clen, NULL, 0) !=
        0) {
        rc = PROTO_ECRYPTO;
    } else if (tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        *mlen = (size_t)n;
        return 0;
    } else if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL && n == 0) {
        rc = 1;
    } else {
        /* Authentic but not ours to accept: wipe what was decrypted. */
        sodium_memzero(out, (size_t)n);
        rc = PROTO_ECRYPTO;
    }
    /* The stream has ended either way: nothing after it may be accepted. */
    sodium_memzero(&c->rx, sizeof(c->rx));
    c->rx_ready = -1;
    return rc;
}

void proto_channel_wipe(struct proto_channel *c)
{
    if (c == NULL) {
        return;
    }
    sodium_memzero(c, sizeof(*c));
}
