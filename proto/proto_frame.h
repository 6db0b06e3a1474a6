/* proto_frame.h - framing: u32be length || payload (PROTOCOL.md section 1).
 *
 * The reader accumulates bytes from a stream and yields whole frames. It checks every
 * length against its limit before it allocates, and frees its buffer whenever it is
 * empty, so an idle connection holds no read buffer.
 */
#ifndef CONFER_PROTO_FRAME_H
#define CONFER_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_PORT         7414
#define PROTO_FRAME_HDR    4                  /* the u32be length */
#define PROTO_HELLO_MAX    1024               /* ClientHello / ServerHello payload */
#define PROTO_STREAM_HDR   24                 /* secretstream header frame */
#define PROTO_ABYTES       17                 /* secretstream overhead per message */
#define PROTO_PRELOGIN_MAX 4096               /* plaintext before login */
#define PROTO_DEFAULT_MAX  (1024 * 1024)      /* plaintext after login (server default) */
#define PROTO_SEND_MAX     (16 * 1024 * 1024) /* largest plaintext a server sends */

/* Writes len as u32be into out[0..4). */
void proto_frame_put_len(uint8_t out[4], uint32_t len);

/* Reads a u32be from in[0..4). */
uint32_t proto_frame_get_len(const uint8_t in[4]);

struct proto_reader {
    uint8_t *buf; /* NULL when empty */
    size_t len;   /* bytes held */
    size_t cap;   /* bytes allocated */
    size_t off;   /* start of unconsumed bytes */
    uint32_t max; /* largest payload accepted */
};

/* Initialises an empty reader accepting payloads of 1..max bytes. No allocation. */
void proto_reader_init(struct proto_reader *r, uint32_t max);

/* Changes the payload limit (e.g. after login). */
void proto_reader_set_max(struct proto_reader *r, uint32_t max);

/* Frees the buffer; the reader is empty and reusable afterwards. */
void proto_reader_free(struct proto_reader *r);

/* Gives space to read into: at least 1 byte, at most what the frame being read still needs
 * (or suggest bytes when between frames, at least the 4 header bytes). Returns 0,
 * PROTO_ETOOBIG when the pending frame header announces 0 or more than max, or
 * PROTO_ENOMEM. */
int proto_reader_space(struct proto_reader *r, size_t suggest, uint8_t **p, size_t *n);

/* Records that n bytes were written into the space given by proto_reader_space. */
void proto_reader_commit(struct proto_reader *r, size_t n);

/* Appends n bytes (copying; grows as needed). For callers that read into their own buffer.
 * Returns 0 or PROTO_ENOMEM. Does not check limits: proto_reader_next does. */
int proto_reader_push(struct proto_reader *r, const uint8_t *p, size_t n);

/* Takes the next whole frame. Returns 1 and sets *payload and *len (valid until the next call
 * on this reader), 0 when more bytes are needed, PROTO_ETOOBIG when the announced length
 * is 0 or over max (the connection must be closed). */
int proto_reader_next(struct proto_reader *r, const uint8_t **payload, uint32_t *len);

#endif
