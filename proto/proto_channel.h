/* proto_channel.h - the secure channel: hellos, transcript hash, host signature, session
 * keys and the secretstream that carries every later frame (PROTOCOL.md sections 2-3).
 *
 * Pure: no sockets. The caller moves the frames; these functions make and check them.
 */
#ifndef CONFER_PROTO_CHANNEL_H
#define CONFER_PROTO_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "proto_frame.h"

#define PROTO_VERSION   1
#define PROTO_KEY_BYTES 32
#define PROTO_SIG_BYTES 64
/* "SHA256:" + 43 base64 characters + NUL */
#define PROTO_FINGERPRINT_LEN 51

/* The server's long-term Ed25519 key. */
struct proto_hostkey {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

/* Makes a new host key. Returns 0 or PROTO_ECRYPTO. */
int proto_hostkey_generate(struct proto_hostkey *k);

/* Writes "SHA256:" + unpadded standard base64 of SHA-256(pk), NUL-terminated. */
void proto_fingerprint(const uint8_t pk[PROTO_KEY_BYTES], char out[PROTO_FINGERPRINT_LEN]);

/* Keys that come out of a handshake. tx is this side's sending key, rx its receiving key
 * (k_c2s/k_s2c of section 2, already derived from the kx session keys and th). */
struct proto_keys {
    uint8_t tx[PROTO_KEY_BYTES];
    uint8_t rx[PROTO_KEY_BYTES];
    uint8_t th[PROTO_KEY_BYTES]; /* transcript hash */
};

/* Client side of the handshake. */
struct proto_client_hs {
    uint8_t pk[crypto_kx_PUBLICKEYBYTES];
    uint8_t sk[crypto_kx_SECRETKEYBYTES];
    uint8_t hello[64]; /* the exact ClientHello payload sent */
    size_t hello_len;
};

/* Makes a fresh X25519 key pair and the ClientHello payload, kept in hs->hello.
 * Returns 0 or PROTO_ECRYPTO. */
int proto_hs_client_start(struct proto_client_hs *hs);

/* Checks a ServerHello payload: proto, v = 1, sizes of kx, host and sig, and the signature
 * over th; then derives the session keys and wipes hs's secret key (on failure too).
 * On success copies the server's host key to host_pk and fills keys.
 * Returns 0; PROTO_EVERSION for an unsupported_version answer; PROTO_EINVAL when
 * malformed; PROTO_ECRYPTO for a bad signature or a failed key exchange. */
int proto_hs_client_finish(struct proto_client_hs *hs, const uint8_t *sh, size_t sh_len,
                           uint8_t host_pk[PROTO_KEY_BYTES], struct proto_keys *keys);

/* Server side: checks the ClientHello payload ch, makes a fresh ephemeral key, derives
 * the session keys (wiping the ephemeral secret) and writes the ServerHello into
 * out[0..cap), its length in *out_len.
 * Returns 0 (send out, then the stream header); PROTO_EVERSION (out holds the
 * unsupported_version answer: send it, then close); PROTO_EINVAL (malformed hello: close
 * without reply); PROTO_ECRYPTO (key exchange failed: close without reply);
 * PROTO_ETOOBIG when cap is too small (256 bytes is always enough). */
int proto_hs_server_answer(const struct proto_hostkey *host, const uint8_t *ch, size_t ch_len,
                           uint8_t *out, size_t cap, size_t *out_len, struct proto_keys *keys);

/* Computes th = H("confer/1 handshake" || u32be(len(ch)) || ch || server_kx || host_pk). */
void proto_transcript_hash(const uint8_t *ch, size_t ch_len,
                           const uint8_t server_kx[PROTO_KEY_BYTES],
                           const uint8_t host_pk[PROTO_KEY_BYTES], uint8_t th[PROTO_KEY_BYTES]);

/* One direction pair of secretstream state. */
struct proto_channel {
    crypto_secretstream_xchacha20poly1305_state tx;
    crypto_secretstream_xchacha20poly1305_state rx;
    uint8_t rx_key[PROTO_KEY_BYTES]; /* kept until the peer's header arrives, then wiped */
    int rx_ready;
};

/* Starts the sending stream with keys->tx and writes its 24-byte header (to send as one
 * frame); remembers keys->rx for the peer's header. Returns 0 or PROTO_ECRYPTO. The caller
 * may wipe keys afterwards. */
int proto_channel_init(struct proto_channel *c, const struct proto_keys *keys,
                       uint8_t header[PROTO_STREAM_HDR]);

/* Starts the receiving stream from the peer's header frame (must be exactly 24 bytes).
 * Returns 0, PROTO_EINVAL for a wrong length, PROTO_ECRYPTO for a bad header. */
int proto_channel_recv_header(struct proto_channel *c, const uint8_t *hdr, size_t len);

/* Encrypts m[0..mlen) as one message into out, which must hold mlen + PROTO_ABYTES bytes.
 * final != 0 uses TAG_FINAL (graceful close, with mlen 0). Returns 0, PROTO_EINVAL for
 * final with mlen > 0, or PROTO_ECRYPTO. */
int proto_channel_seal(struct proto_channel *c, const uint8_t *m, size_t mlen, uint8_t *out,
                       int final);

/* Decrypts one frame payload into out (room for clen - PROTO_ABYTES bytes), length in
 * *mlen. Returns 0 for a TAG_MESSAGE, 1 for an empty TAG_FINAL (peer closes gracefully),
 * PROTO_ECRYPTO for a failed decryption, any other tag or a non-empty TAG_FINAL,
 * PROTO_EINVAL when clen < PROTO_ABYTES or the receiving stream is not started. After a
 * FINAL or a failure the stream is over and every later call returns PROTO_ECRYPTO. */
int proto_channel_open(struct proto_channel *c, const uint8_t *cbuf, size_t clen, uint8_t *out,
                       size_t *mlen);

/* Wipes all key material. */
void proto_channel_wipe(struct proto_channel *c);

#endif
