/* proto_util.h - small helpers shared by server and client: UTF-8, base64url, names,
 * growable byte buffers, time. */
#ifndef CONFER_PROTO_UTIL_H
#define CONFER_PROTO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, nothing above
 * U+10FFFF). NUL bytes are valid UTF-8 but rejected here: no confer string holds one. */
bool proto_utf8_valid(const char *s, size_t len);

/* Number of code points in valid UTF-8 s[0..len). */
size_t proto_utf8_count(const char *s, size_t len);

#define PROTO_NAME_MAX 64

/* True for a user or meeting name: 1..64 bytes of [a-z0-9._-], starting with [a-z0-9]. */
bool proto_name_valid(const char *s, size_t len);

/* Unpadded base64url of n bytes; out needs sodium_base64_ENCODED_LEN(n, URLSAFE_NO_PADDING)
 * bytes (43 + 1 for 32 bytes). */
void proto_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_cap);

/* Decodes unpadded base64url s[0..len) into out[0..cap); returns the byte count or
 * PROTO_EINVAL (bad characters, padding, or more than cap bytes). */
int proto_b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void proto_hex(const uint8_t *in, size_t n, char *out);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t proto_now_ms(void);

/* A growable byte buffer. Zero-initialise (or proto_buf_init) before use. */
struct proto_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void proto_buf_init(struct proto_buf *b);
/* Appends n bytes; returns 0 or PROTO_ENOMEM. */
int proto_buf_append(struct proto_buf *b, const void *p, size_t n);
/* Ensures room for n more bytes; returns 0 or PROTO_ENOMEM. */
int proto_buf_reserve(struct proto_buf *b, size_t n);
/* Drops the first n bytes. */
void proto_buf_consume(struct proto_buf *b, size_t n);
/* Frees the memory (wiping it first when wipe != 0); b is empty afterwards. */
void proto_buf_free(struct proto_buf *b, int wipe);

/* msgpack-c write callback appending to a struct proto_buf (data = the buf). */
int proto_buf_msgpack_write(void *data, const char *buf, size_t len);

#endif
