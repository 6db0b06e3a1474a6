/* test_proto_channel.c - handshake, transcript hash, session keys and secretstream. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>
#include <sodium.h>

#include "proto_channel.h"
#include "proto_err.h"
#include "proto_rpc.h"
#include "proto_util.h"
#include "testutil.h"

#define SH_CAP 256

/* One completed handshake, both sides. */
struct hs {
    struct proto_hostkey host;
    struct proto_client_hs client;
    struct proto_client_hs client_before_finish; /* with its secret key, for checks */
    uint8_t sh[SH_CAP];
    size_t sh_len;
    struct proto_keys ck; /* client's */
    struct proto_keys sk; /* server's */
    uint8_t host_seen[PROTO_KEY_BYTES];
};

static int setup(void **state)
{
    struct hs *h = calloc(1, sizeof(*h));

    if (h == NULL || sodium_init() < 0) {
        free(h);
        return -1;
    }
    if (proto_hostkey_generate(&h->host) != 0) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static bool all_zero(const void *p, size_t n)
{
    return sodium_is_zero(p, n) == 1;
}

/* Runs a whole handshake in memory. */
static void handshake(struct hs *h)
{
    assert_int_equal(proto_hs_client_start(&h->client), 0);
    h->client_before_finish = h->client;
    assert_int_equal(proto_hs_server_answer(&h->host, h->client.hello, h->client.hello_len, h->sh,
                                            sizeof(h->sh), &h->sh_len, &h->sk),
                     0);
    assert_int_equal(proto_hs_client_finish(&h->client, h->sh, h->sh_len, h->host_seen, &h->ck), 0);
}

/* Unpacks one msgpack value that must fill p[0..n) exactly. */
static void unpack_all(msgpack_unpacked *u, const uint8_t *p, size_t n)
{
    size_t off = 0;

    assert_int_equal(msgpack_unpack_next(u, (const char *)p, n, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, n);
}

/* Finds where the bin value of key starts inside a hello (its body, after the header). */
static size_t bin_offset(const uint8_t *hello, size_t len, const char *key)
{
    msgpack_unpacked u;
    const msgpack_object *o = NULL;
    size_t at = 0;

    msgpack_unpacked_init(&u);
    unpack_all(&u, hello, len);
    o = proto_mp_map_get(&u.data, key);
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
    /* msgpack-c points bin bodies into the input buffer. */
    at = (size_t)((const uint8_t *)o->via.bin.ptr - hello);
    assert_true(at < len);
    msgpack_unpacked_destroy(&u);
    return at;
}

static void test_handshake_keys_match(void **state)
{
    struct hs *h = *state;

    handshake(h);
    assert_memory_equal(h->ck.tx, h->sk.rx, PROTO_KEY_BYTES);
    assert_memory_equal(h->ck.rx, h->sk.tx, PROTO_KEY_BYTES);
    assert_memory_equal(h->ck.th, h->sk.th, PROTO_KEY_BYTES);
    assert_memory_not_equal(h->ck.tx, h->ck.rx, PROTO_KEY_BYTES);
    assert_memory_equal(h->host_seen, h->host.pk, PROTO_KEY_BYTES);
    assert_false(all_zero(h->ck.tx, PROTO_KEY_BYTES));
    /* The client's ephemeral secret is gone. */
    assert_true(all_zero(h->client.sk, sizeof(h->client.sk)));
    assert_false(all_zero(h->client_before_finish.sk, sizeof(h->client.sk)));
}

/* The exact bytes of both hellos, key by key, as PROTOCOL.md section 2 writes them. */
static void test_hello_bytes(void **state)
{
    struct hs *h = *state;
    static const uint8_t ch_head[] = {0x83, 0xa5, 'p', 'r', 'o',  't', 'o',  0xa6,
                                      'c',  'o',  'n', 'f', 'e',  'r', 0xa1, 'v',
                                      0x01, 0xa2, 'k', 'x', 0xc4, 0x20};
    static const uint8_t sh_head[] = {0x85, 0xa5, 'p', 'r', 'o',  't', 'o',  0xa6,
                                      'c',  'o',  'n', 'f', 'e',  'r', 0xa1, 'v',
                                      0x01, 0xa2, 'k', 'x', 0xc4, 0x20};
    size_t at = 0;

    handshake(h);
    assert_int_equal(h->client.hello_len, sizeof(ch_head) + 32);
    assert_memory_equal(h->client.hello, ch_head, sizeof(ch_head));
    assert_memory_equal(h->client.hello + sizeof(ch_head), h->client.pk, 32);

    assert_int_equal(h->sh_len, sizeof(sh_head) + 32 + 7 + 32 + 6 + 64);
    assert_memory_equal(h->sh, sh_head, sizeof(sh_head));
    at = sizeof(sh_head) + 32;
    assert_memory_equal(h->sh + at, "\xa4host\xc4\x20", 7);
    assert_memory_equal(h->sh + at + 7, h->host.pk, 32);
    at += 7 + 32;
    assert_memory_equal(h->sh + at, "\xa3sig\xc4\x40", 6);
    assert_int_equal(at + 6 + 64, h->sh_len);
}

/* th, the signature and both keys, recomputed here with the raw libsodium calls. */
static void test_independent_computation(void **state)
{
    struct hs *h = *state;
    const uint8_t *ch = NULL;
    size_t ch_len = 0;
    const uint8_t *server_kx = NULL;
    const uint8_t *sig = NULL;
    uint8_t *msg = NULL;
    size_t mlen = 0;
    uint8_t th[32];
    uint8_t th2[32];
    uint8_t rx[32];
    uint8_t tx[32];
    uint8_t in[12 + 32];
    uint8_t k[32];

    handshake(h);
    ch = h->client.hello;
    ch_len = h->client.hello_len;
    server_kx = h->sh + bin_offset(h->sh, h->sh_len, "kx");
    sig = h->sh + bin_offset(h->sh, h->sh_len, "sig");

    /* "confer/1 handshake" || u32be(len(CH)) || CH || server_kx || host_pk, in one buffer. */
    mlen = 18 + 4 + ch_len + 32 + 32;
    msg = malloc(mlen);
    assert_non_null(msg);
    memcpy(msg, "confer/1 handshake", 18);
    msg[18] = 0;
    msg[19] = 0;
    msg[20] = 0;
    msg[21] = (uint8_t)ch_len;
    memcpy(msg + 22, ch, ch_len);
    memcpy(msg + 22 + ch_len, server_kx, 32);
    memcpy(msg + 22 + ch_len + 32, h->host.pk, 32);
    assert_int_equal(crypto_generichash(th, sizeof(th), msg, mlen, NULL, 0), 0);
    free(msg);
    assert_memory_equal(th, h->ck.th, 32);
    proto_transcript_hash(ch, ch_len, server_kx, h->host.pk, th2);
    assert_memory_equal(th, th2, 32);

    assert_int_equal(crypto_sign_verify_detached(sig, th, 32, h->host.pk), 0);

    assert_int_equal(crypto_kx_client_session_keys(rx, tx, h->client_before_finish.pk,
                                                   h->client_before_finish.sk, server_kx),
                     0);
    memcpy(in, "confer/1 c2s", 12);
    memcpy(in + 12, th, 32);
    assert_int_equal(crypto_generichash(k, 32, in, sizeof(in), tx, 32), 0);
    assert_memory_equal(k, h->ck.tx, 32);
    assert_memory_equal(k, h->sk.rx, 32);
    memcpy(in, "confer/1 s2c", 12);
    assert_int_equal(crypto_generichash(k, 32, in, sizeof(in), rx, 32), 0);
    assert_memory_equal(k, h->ck.rx, 32);
    assert_memory_equal(k, h->sk.tx, 32);
    /* And the raw kx keys are not used as they are. */
    assert_memory_not_equal(tx, h->ck.tx, 32);
}

/* Any single byte of the ClientHello changed in transit: the client never accepts. */
static void test_tampered_client_hello(void **state)
{
    struct hs *h = *state;
    struct proto_client_hs pristine;
    struct proto_client_hs c;
    uint8_t ch[64];
    uint8_t sh[SH_CAP];
    size_t sh_len = 0;
    struct proto_keys sk;
    struct proto_keys ck;
    uint8_t host_seen[32];
    int answered = 0;
    size_t kx_at = 0;

    assert_int_equal(proto_hs_client_start(&pristine), 0);
    kx_at = bin_offset(pristine.hello, pristine.hello_len, "kx");
    for (size_t i = 0; i < pristine.hello_len; i++) {
        static const uint8_t flips[] = {0x01, 0x80, 0xff};
        for (size_t f = 0; f < sizeof(flips); f++) {
            int src = 0;
            int crc = 0;
            memcpy(ch, pristine.hello, pristine.hello_len);
            ch[i] ^= flips[f];
            src = proto_hs_server_answer(&h->host, ch, pristine.hello_len, sh, sizeof(sh), &sh_len,
                                         &sk);
            if (src != 0 && src != PROTO_EVERSION) {
                /* Refused without a reply: nothing goes out. */
                assert_int_equal(sh_len, 0);
                continue;
            }
            c = pristine;
            crc = proto_hs_client_finish(&c, sh, sh_len, host_seen, &ck);
            if (src == 0) {
                /* The server signed a transcript the client does not have. */
                answered++;
                assert_int_equal(crc, PROTO_ECRYPTO);
            } else {
                assert_int_equal(crc, PROTO_EVERSION);
            }
            assert_true(all_zero(&ck, sizeof(ck)));
            if (i >= kx_at) {
                /* Inside kx the hello stays well formed: the server answers. */
                assert_int_equal(src, 0);
            }
        }
    }
    assert_true(answered >= 3 * 32);
}

/* Any single byte of the ServerHello changed: rejected; in kx, host or sig: ECRYPTO. */
static void test_tampered_server_hello(void **state)
{
    struct hs *h = *state;
    struct proto_client_hs c;
    uint8_t sh[SH_CAP];
    struct proto_keys ck;
    uint8_t host_seen[32];
    size_t kx_at = 0;
    size_t host_at = 0;
    size_t sig_at = 0;

    handshake(h);
    kx_at = bin_offset(h->sh, h->sh_len, "kx");
    host_at = bin_offset(h->sh, h->sh_len, "host");
    sig_at = bin_offset(h->sh, h->sh_len, "sig");
    for (size_t i = 0; i < h->sh_len; i++) {
        int rc = 0;
        bool in_keys = (i >= kx_at && i < kx_at + 32) || (i >= host_at && i < host_at + 32) ||
                       (i >= sig_at && i < sig_at + 64);
        memcpy(sh, h->sh, h->sh_len);
        sh[i] ^= 0x01;
        c = h->client_before_finish;
        rc = proto_hs_client_finish(&c, sh, h->sh_len, host_seen, &ck);
        assert_true(rc < 0);
        if (in_keys) {
            assert_int_equal(rc, PROTO_ECRYPTO);
        }
        assert_true(all_zero(&ck, sizeof(ck)));
        assert_true(all_zero(c.sk, sizeof(c.sk)));
    }
    /* The untouched one still works with the same client state. */
    c = h->client_before_finish;
    assert_int_equal(proto_hs_client_finish(&c, h->sh, h->sh_len, host_seen, &ck), 0);
    assert_memory_equal(ck.tx, h->ck.tx, 32);

    /* A ServerHello signed by another host key with host swapped in is still refused. */
    {
        struct proto_hostkey other;
        assert_int_equal(proto_hostkey_generate(&other), 0);
        memcpy(sh, h->sh, h->sh_len);
        memcpy(sh + host_at, other.pk, 32);
        c = h->client_before_finish;
        assert_int_equal(proto_hs_client_finish(&c, sh, h->sh_len, host_seen, &ck), PROTO_ECRYPTO);
    }
}

/* A hello built field by field, each field a key, a msgpack kind and a value. */
enum kind { K_STR, K_BIN, K_UINT, K_INT, K_FLOAT, K_NIL };

struct field {
    const char *key;
    enum kind kind;
    const void *p;
    size_t n;
    int64_t i;
};

static void build(struct proto_buf *b, const struct field *fs, size_t count)
{
    msgpack_packer pk;

    b->len = 0;
    msgpack_packer_init(&pk, b, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, count);
    for (size_t i = 0; i < count; i++) {
        proto_pack_cstr(&pk, fs[i].key);
        switch (fs[i].kind) {
        case K_STR:
            proto_pack_str(&pk, fs[i].p, fs[i].n);
            break;
        case K_BIN:
            msgpack_pack_bin_with_body(&pk, fs[i].p, fs[i].n);
            break;
        case K_UINT:
            msgpack_pack_uint64(&pk, (uint64_t)fs[i].i);
            break;
        case K_INT:
            msgpack_pack_int64(&pk, fs[i].i);
            break;
        case K_FLOAT:
            msgpack_pack_double(&pk, (double)fs[i].i);
            break;
        case K_NIL:
            msgpack_pack_nil(&pk);
            break;
        }
    }
}

/* Answers b with the server; returns its code and checks the no-reply rule. */
static int answer(struct hs *h, const struct proto_buf *b, uint8_t *out, size_t *out_len)
{
    struct proto_keys k;
    int rc = proto_hs_server_answer(&h->host, b->data, b->len, out, SH_CAP, out_len, &k);

    if (rc != 0) {
        assert_true(all_zero(&k, sizeof(k)));
    }
    if (rc != 0 && rc != PROTO_EVERSION) {
        assert_int_equal(*out_len, 0);
    }
    return rc;
}

static const uint8_t kx32[32] = {9,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t zeros[1100];

#define F_PROTO                                                                                    \
    {                                                                                              \
        "proto", K_STR, "confer", 6, 0                                                             \
    }
#define F_V(n)                                                                                     \
    {                                                                                              \
        "v", K_UINT, NULL, 0, (n)                                                                  \
    }
#define F_KX                                                                                       \
    {                                                                                              \
        "kx", K_BIN, kx32, 32, 0                                                                   \
    }
#define NF(a) (sizeof(a) / sizeof((a)[0]))

static void test_unsupported_version(void **state)
{
    struct hs *h = *state;
    struct proto_buf b;
    uint8_t out[SH_CAP];
    size_t out_len = 0;
    struct proto_client_hs c;
    struct proto_keys ck;
    uint8_t host_seen[32];
    static const uint8_t refusal[] = "\x83\xa5proto\xa6"
                                     "confer\xa5"
                                     "error\xb3"
                                     "unsupported_version\xa8versions\x91\x01";

    proto_buf_init(&b);
    {
        const struct field fs[] = {F_PROTO, F_V(2), F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EVERSION);
        assert_int_equal(out_len, sizeof(refusal) - 1);
        assert_memory_equal(out, refusal, out_len);
    }
    {
        const struct field fs[] = {F_KX, {"v", K_INT, NULL, 0, -1}, F_PROTO};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EVERSION);
    }
    {
        const struct field fs[] = {F_PROTO, F_V(0), F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EVERSION);
    }
    /* A wrong version in an otherwise malformed hello gets no answer. */
    {
        const struct field fs[] = {F_PROTO, F_V(2)};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    /* The refusal needs room too. */
    {
        const struct field fs[] = {F_PROTO, F_V(2), F_KX};
        struct proto_keys k;
        build(&b, fs, NF(fs));
        assert_int_equal(proto_hs_server_answer(&h->host, b.data, b.len, out, 20, &out_len, &k),
                         PROTO_ETOOBIG);
    }

    /* The client reads the refusal as PROTO_EVERSION. */
    assert_int_equal(proto_hs_client_start(&c), 0);
    assert_int_equal(proto_hs_client_finish(&c, refusal, sizeof(refusal) - 1, host_seen, &ck),
                     PROTO_EVERSION);
    /* And a ServerHello of another version, well formed otherwise, the same way. */
    {
        uint8_t sig[64] = {0};
        const struct field fs[] = {
            F_PROTO, F_V(2), F_KX, {"host", K_BIN, kx32, 32, 0}, {"sig", K_BIN, sig, 64, 0}};
        build(&b, fs, NF(fs));
        assert_int_equal(proto_hs_client_start(&c), 0);
        assert_int_equal(proto_hs_client_finish(&c, b.data, b.len, host_seen, &ck), PROTO_EVERSION);
    }
    /* Some other error from the server is not a version answer. */
    {
        const struct field fs[] = {F_PROTO, {"error", K_STR, "busy", 4, 0}};
        build(&b, fs, NF(fs));
        assert_int_equal(proto_hs_client_start(&c), 0);
        assert_int_equal(proto_hs_client_finish(&c, b.data, b.len, host_seen, &ck), PROTO_EINVAL);
    }
    proto_buf_free(&b, 0);
}

static void test_malformed_client_hello(void **state)
{
    struct hs *h = *state;
    struct proto_buf b;
    uint8_t out[SH_CAP];
    size_t out_len = 0;

    proto_buf_init(&b);

    /* The reference hello is fine, and unknown keys are ignored. */
    {
        const struct field fs[] = {F_PROTO, F_V(1), F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), 0);
    }
    {
        const struct field fs[] = {
            {"hello", K_STR, "there", 5, 0}, F_KX, F_V(1), {"future", K_NIL, NULL, 0, 0}, F_PROTO};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), 0);
    }

    /* Each of these is closed without a reply. */
    {
        const struct field fs[] = {F_V(1), F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, F_V(1)};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {{"proto", K_STR, "confe", 5, 0}, F_V(1), F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {{"proto", K_BIN, "confer", 6, 0}, F_V(1), F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, {"v", K_FLOAT, NULL, 0, 1}, F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, {"v", K_STR, "1", 1, 0}, F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, {"v", K_NIL, NULL, 0, 0}, F_KX};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, F_V(1), {"kx", K_BIN, kx32, 31, 0}};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        uint8_t kx33[33] = {1};
        const struct field fs[] = {F_PROTO, F_V(1), {"kx", K_BIN, kx33, 33, 0}};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    {
        const struct field fs[] = {
            F_PROTO, F_V(1), {"kx", K_STR, "01234567890123456789012345678901", 32, 0}};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    /* Trailing junk after a good hello; and two hellos in one frame. */
    {
        const struct field fs[] = {F_PROTO, F_V(1), F_KX};
        size_t one = 0;
        build(&b, fs, NF(fs));
        one = b.len;
        assert_int_equal(proto_buf_append(&b, "\x00", 1), 0);
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
        b.len = one;
        assert_int_equal(proto_buf_append(&b, b.data, one), 0);
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
        /* Cut short. */
        b.len = one - 1;
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    /* Over the hello limit, though well formed. */
    {
        const struct field fs[] = {F_PROTO, F_V(1), F_KX, {"pad", K_BIN, zeros, 1000, 0}};
        build(&b, fs, NF(fs));
        assert_true(b.len > PROTO_HELLO_MAX);
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_EINVAL);
    }
    /* Not a map, not msgpack, empty. */
    {
        static const struct {
            const char *p;
            size_t n;
        } raw[] = {
            {"\x93\xa5proto\xa6"
             "confer\x01",
             15},
            {"\xa6"
             "confer",
             7},
            {"\xc0", 1},
            {"\xc1", 1},
            {"\xdd\xff\x00\x00\x00", 5},
            {"\xdf\xff\xff\xff\xff", 5},
            {"", 0},
        };
        for (size_t i = 0; i < NF(raw); i++) {
            struct proto_buf r = {(uint8_t *)raw[i].p, raw[i].n, raw[i].n};
            assert_int_equal(answer(h, &r, out, &out_len), PROTO_EINVAL);
        }
    }
    /* A low-order client key makes the key exchange fail: no ServerHello. */
    {
        const struct field fs[] = {F_PROTO, F_V(1), {"kx", K_BIN, zeros, 32, 0}};
        build(&b, fs, NF(fs));
        assert_int_equal(answer(h, &b, out, &out_len), PROTO_ECRYPTO);
    }
    /* Too small an output buffer. */
    {
        struct proto_client_hs c;
        struct proto_keys k;
        assert_int_equal(proto_hs_client_start(&c), 0);
        assert_int_equal(
            proto_hs_server_answer(&h->host, c.hello, c.hello_len, out, 100, &out_len, &k),
            PROTO_ETOOBIG);
        assert_int_equal(out_len, 0);
        assert_true(all_zero(&k, sizeof(k)));
    }
    proto_buf_free(&b, 0);
}

static void test_malformed_server_hello(void **state)
{
    struct hs *h = *state;
    struct proto_buf b;
    struct proto_client_hs c;
    struct proto_keys ck;
    uint8_t host_seen[32];
    uint8_t sig[64] = {1};

    handshake(h);
    proto_buf_init(&b);

#define CLIENT_GETS(want)                                                                          \
    do {                                                                                           \
        c = h->client_before_finish;                                                               \
        assert_int_equal(proto_hs_client_finish(&c, b.data, b.len, host_seen, &ck), (want));       \
    } while (0)

    {
        const struct field fs[] = {F_PROTO, F_V(1), F_KX, {"host", K_BIN, kx32, 32, 0}};
        build(&b, fs, NF(fs));
        CLIENT_GETS(PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO, F_V(1), F_KX, {"sig", K_BIN, sig, 64, 0}};
        build(&b, fs, NF(fs));
        CLIENT_GETS(PROTO_EINVAL);
    }
    {
        const struct field fs[] = {
            F_PROTO, F_V(1), F_KX, {"host", K_BIN, kx32, 32, 0}, {"sig", K_BIN, sig, 63, 0}};
        build(&b, fs, NF(fs));
        CLIENT_GETS(PROTO_EINVAL);
    }
    {
        const struct field fs[] = {
            F_PROTO, F_V(1), F_KX, {"host", K_BIN, kx32, 31, 0}, {"sig", K_BIN, sig, 64, 0}};
        build(&b, fs, NF(fs));
        CLIENT_GETS(PROTO_EINVAL);
    }
    {
        const struct field fs[] = {F_PROTO,
                                   {"v", K_FLOAT, NULL, 0, 1},
                                   F_KX,
                                   {"host", K_BIN, kx32, 32, 0},
                                   {"sig", K_BIN, sig, 64, 0}};
        build(&b, fs, NF(fs));
        CLIENT_GETS(PROTO_EINVAL);
    }
    /* Well formed with a bad signature. */
    {
        const struct field fs[] = {
            F_PROTO, F_V(1), F_KX, {"host", K_BIN, kx32, 32, 0}, {"sig", K_BIN, sig, 64, 0}};
        build(&b, fs, NF(fs));
        CLIENT_GETS(PROTO_ECRYPTO);
    }
    /* The real one with trailing junk, and cut short. */
    b.len = 0;
    assert_int_equal(proto_buf_append(&b, h->sh, h->sh_len), 0);
    assert_int_equal(proto_buf_append(&b, "\xc0", 1), 0);
    CLIENT_GETS(PROTO_EINVAL);
    b.len = h->sh_len - 1;
    CLIENT_GETS(PROTO_EINVAL);
    b.len = h->sh_len;
    CLIENT_GETS(0);
    b.len = 0;
    assert_int_equal(proto_buf_append(&b, "\x91\x01", 2), 0);
    CLIENT_GETS(PROTO_EINVAL);
#undef CLIENT_GETS
    proto_buf_free(&b, 0);
}

/* Both sides' channels, headers exchanged. */
static void open_channels(struct hs *h, struct proto_channel *cc, struct proto_channel *sc)
{
    uint8_t chdr[PROTO_STREAM_HDR];
    uint8_t shdr[PROTO_STREAM_HDR];

    handshake(h);
    assert_int_equal(proto_channel_init(sc, &h->sk, shdr), 0);
    assert_int_equal(proto_channel_init(cc, &h->ck, chdr), 0);
    assert_int_equal(proto_channel_recv_header(cc, shdr, sizeof(shdr)), 0);
    assert_int_equal(proto_channel_recv_header(sc, chdr, sizeof(chdr)), 0);
    assert_true(all_zero(cc->rx_key, sizeof(cc->rx_key)));
    assert_true(all_zero(sc->rx_key, sizeof(sc->rx_key)));
}

/* Seals m on from, opens it on to, and checks the plaintext. */
static void pass(struct proto_channel *from, struct proto_channel *to, const char *m)
{
    size_t n = strlen(m);
    uint8_t c[256];
    uint8_t out[256];
    size_t mlen = 999;

    assert_true(n + PROTO_ABYTES <= sizeof(c));
    assert_int_equal(proto_channel_seal(from, (const uint8_t *)m, n, c, 0), 0);
    assert_memory_not_equal(c, m, n > 0 ? n : 1);
    assert_int_equal(proto_channel_open(to, c, n + PROTO_ABYTES, out, &mlen), 0);
    assert_int_equal(mlen, n);
    assert_memory_equal(out, m, n);
}

static void test_stream_roundtrip(void **state)
{
    struct hs *h = *state;
    struct proto_channel cc;
    struct proto_channel sc;
    uint8_t c[PROTO_ABYTES];
    uint8_t out[16];
    size_t mlen = 0;

    open_channels(h, &cc, &sc);
    pass(&cc, &sc, "\x94\x00\x01\xa4ping\x80");
    pass(&sc, &cc, "\x94\x01\x01\xc0\x80");
    pass(&cc, &sc, "second");
    pass(&cc, &sc, "third");
    pass(&sc, &cc, "");
    pass(&sc, &cc, "after an empty message");

    /* An empty FINAL is a graceful close; the stream accepts nothing after it. */
    assert_int_equal(proto_channel_seal(&cc, NULL, 0, c, 1), 0);
    assert_int_equal(proto_channel_open(&sc, c, sizeof(c), out, &mlen), 1);
    assert_int_equal(mlen, 0);
    assert_int_equal(proto_channel_seal(&cc, (const uint8_t *)"x", 1, c, 0), 0);
    assert_int_equal(proto_channel_open(&sc, c, sizeof(c), out, &mlen), PROTO_ECRYPTO);

    /* A FINAL with content is refused by the sealer. */
    assert_int_equal(proto_channel_seal(&sc, (const uint8_t *)"x", 1, out, 1), PROTO_EINVAL);

    proto_channel_wipe(&cc);
    proto_channel_wipe(&sc);
    assert_true(all_zero(&cc, sizeof(cc)));
    proto_channel_wipe(NULL);
}

static void test_stream_rejects(void **state)
{
    struct hs *h = *state;
    struct proto_channel cc;
    struct proto_channel sc;
    struct proto_channel saved;
    uint8_t c[64];
    uint8_t c2[64];
    uint8_t out[64];
    size_t mlen = 0;
    const size_t n = 5;
    const size_t clen = n + PROTO_ABYTES;

    open_channels(h, &cc, &sc);

    /* Every single-byte change of a ciphertext fails, and ends the stream. */
    assert_int_equal(proto_channel_seal(&cc, (const uint8_t *)"hello", n, c, 0), 0);
    saved = sc;
    for (size_t i = 0; i < clen; i++) {
        sc = saved;
        memcpy(c2, c, clen);
        c2[i] ^= 0x20;
        assert_int_equal(proto_channel_open(&sc, c2, clen, out, &mlen), PROTO_ECRYPTO);
        assert_int_equal(mlen, 0);
        assert_int_equal(proto_channel_open(&sc, c, clen, out, &mlen), PROTO_ECRYPTO);
    }
    /* Truncated or extended. */
    sc = saved;
    assert_int_equal(proto_channel_open(&sc, c, clen - 1, out, &mlen), PROTO_ECRYPTO);
    sc = saved;
    assert_int_equal(proto_channel_open(&sc, c, PROTO_ABYTES - 1, out, &mlen), PROTO_EINVAL);
    /* The untouched one opens, once: a replay fails. */
    sc = saved;
    assert_int_equal(proto_channel_open(&sc, c, clen, out, &mlen), 0);
    assert_memory_equal(out, "hello", n);
    saved = sc;
    assert_int_equal(proto_channel_open(&sc, c, clen, out, &mlen), PROTO_ECRYPTO);

    /* Out of order: the second message before the first. */
    sc = saved;
    assert_int_equal(proto_channel_seal(&cc, (const uint8_t *)"one..", n, c, 0), 0);
    assert_int_equal(proto_channel_seal(&cc, (const uint8_t *)"two..", n, c2, 0), 0);
    assert_int_equal(proto_channel_open(&sc, c2, clen, out, &mlen), PROTO_ECRYPTO);
    sc = saved;
    assert_int_equal(proto_channel_open(&sc, c, clen, out, &mlen), 0);
    assert_int_equal(proto_channel_open(&sc, c2, clen, out, &mlen), 0);
    saved = sc;

    /* Authentic messages with another tag (sealed with the raw call). */
    {
        static const unsigned char tags[] = {crypto_secretstream_xchacha20poly1305_TAG_PUSH,
                                             crypto_secretstream_xchacha20poly1305_TAG_REKEY};
        for (size_t i = 0; i < sizeof(tags); i++) {
            struct proto_channel tx = cc;
            sc = saved;
            assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
                                 &tx.tx, c, NULL, (const uint8_t *)"hello", n, NULL, 0, tags[i]),
                             0);
            assert_int_equal(proto_channel_open(&sc, c, clen, out, &mlen), PROTO_ECRYPTO);
            assert_int_equal(mlen, 0);
        }
        /* An empty PUSH is no FINAL either. */
        {
            struct proto_channel tx = cc;
            sc = saved;
            assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
                                 &tx.tx, c, NULL, NULL, 0, NULL, 0,
                                 crypto_secretstream_xchacha20poly1305_TAG_PUSH),
                             0);
            assert_int_equal(proto_channel_open(&sc, c, PROTO_ABYTES, out, &mlen), PROTO_ECRYPTO);
        }
    }
    /* A FINAL carrying data: refused, and the plaintext is not left behind. */
    {
        struct proto_channel tx = cc;
        sc = saved;
        assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
                             &tx.tx, c, NULL, (const uint8_t *)"hello", n, NULL, 0,
                             crypto_secretstream_xchacha20poly1305_TAG_FINAL),
                         0);
        memset(out, 0x77, sizeof(out));
        assert_int_equal(proto_channel_open(&sc, c, clen, out, &mlen), PROTO_ECRYPTO);
        assert_true(all_zero(out, n));
    }
    /* The good next message still opens on a fresh copy of the state. */
    sc = saved;
    pass(&cc, &sc, "still fine");

    /* Wrong key: the client's own sending stream is not the server's. */
    {
        struct proto_channel a;
        struct proto_channel b2;
        uint8_t hdr[PROTO_STREAM_HDR];
        struct proto_keys k = h->ck;
        assert_int_equal(proto_channel_init(&a, &h->ck, hdr), 0);
        /* b2 receives with the client's rx key, which is not what a sends with. */
        assert_int_equal(proto_channel_init(&b2, &k, out), 0);
        assert_int_equal(proto_channel_recv_header(&b2, hdr, sizeof(hdr)), 0);
        assert_int_equal(proto_channel_seal(&a, (const uint8_t *)"hello", n, c, 0), 0);
        assert_int_equal(proto_channel_open(&b2, c, clen, out, &mlen), PROTO_ECRYPTO);
    }
}

static void test_stream_header_rules(void **state)
{
    struct hs *h = *state;
    struct proto_channel cc;
    struct proto_channel sc;
    uint8_t hdr[PROTO_STREAM_HDR];
    uint8_t c[32];
    uint8_t out[32];
    size_t mlen = 0;

    handshake(h);
    assert_int_equal(proto_channel_init(&cc, &h->ck, hdr), 0);
    assert_int_equal(proto_channel_init(&sc, &h->sk, out), 0);
    assert_memory_equal(cc.rx_key, h->ck.rx, 32);
    /* Nothing opens before the peer's header. */
    assert_int_equal(proto_channel_seal(&cc, (const uint8_t *)"x", 1, c, 0), 0);
    assert_int_equal(proto_channel_open(&sc, c, 1 + PROTO_ABYTES, out, &mlen), PROTO_EINVAL);
    /* The header frame is exactly 24 bytes. */
    assert_int_equal(proto_channel_recv_header(&sc, hdr, 23), PROTO_EINVAL);
    assert_int_equal(proto_channel_recv_header(&sc, hdr, 25), PROTO_EINVAL);
    assert_int_equal(proto_channel_recv_header(&sc, hdr, sizeof(hdr)), 0);
    /* A second header is not accepted. */
    assert_int_equal(proto_channel_recv_header(&sc, hdr, sizeof(hdr)), PROTO_EINVAL);
    assert_int_equal(proto_channel_open(&sc, c, 1 + PROTO_ABYTES, out, &mlen), 0);
    assert_int_equal(mlen, 1);
    assert_int_equal(out[0], 'x');
}

static void test_fingerprint(void **state)
{
    struct hs *h = *state;
    char fp[PROTO_FINGERPRINT_LEN];
    uint8_t pk[32];
    uint8_t hash[32];
    char b64[64];
    char *eq = NULL;

    memset(pk, 0, sizeof(pk));
    proto_fingerprint(pk, fp);
    assert_string_equal(fp, "SHA256:Zmh6rfhivXdsj8GLjp+OIAiXFIVu4jOzkCpZHQ1fKSU");
    for (int i = 0; i < 32; i++) {
        pk[i] = (uint8_t)i;
    }
    proto_fingerprint(pk, fp);
    assert_string_equal(fp, "SHA256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN0");
    assert_int_equal(strlen(fp), PROTO_FINGERPRINT_LEN - 1);

    /* A random host key against the padded encoding with its padding stripped. */
    proto_fingerprint(h->host.pk, fp);
    crypto_hash_sha256(hash, h->host.pk, 32);
    sodium_bin2base64(b64, sizeof(b64), hash, sizeof(hash), sodium_base64_VARIANT_ORIGINAL);
    eq = strchr(b64, '=');
    assert_non_null(eq);
    *eq = '\0';
    assert_memory_equal(fp, "SHA256:", 7);
    assert_string_equal(fp + 7, b64);
}

static void test_transcript_hash_inputs(void **state)
{
    uint8_t a[32];
    uint8_t b[32];
    uint8_t kx[32] = {1};
    uint8_t host[32] = {2};
    const uint8_t ch[] = "abc";

    (void)state;
    /* Each input matters, and the length prefix keeps CH from sliding into server_kx. */
    proto_transcript_hash(ch, 3, kx, host, a);
    proto_transcript_hash(ch, 2, kx, host, b);
    assert_memory_not_equal(a, b, 32);
    host[5] ^= 1;
    proto_transcript_hash(ch, 3, kx, host, b);
    assert_memory_not_equal(a, b, 32);
    host[5] ^= 1;
    kx[31] ^= 1;
    proto_transcript_hash(ch, 3, kx, host, b);
    assert_memory_not_equal(a, b, 32);
    kx[31] ^= 1;
    proto_transcript_hash(ch, 3, kx, host, b);
    assert_memory_equal(a, b, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_keys_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hello_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_independent_computation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_client_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_server_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_client_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_server_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_header_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
        cmocka_unit_test(test_transcript_hash_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
