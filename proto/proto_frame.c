/* proto_frame.c - the frame reader: u32be length || payload (PROTOCOL.md section 1).
 *
 * Bytes live in buf[off..len). A frame handed out by proto_reader_next stays where it is
 * until the next call on the reader, so that call (not the one returning the frame) is
 * the one that compacts or frees the buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "proto_err.h"
#include "proto_frame.h"

void proto_frame_put_len(uint8_t out[4], uint32_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

uint32_t proto_frame_get_len(const uint8_t in[4])
{
    return ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) | ((uint32_t)in[2] << 8) |
           (uint32_t)in[3];
}

void proto_reader_init(struct proto_reader *r, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
}

void proto_reader_set_max(struct proto_reader *r, uint32_t max)
{
    r->max = max;
}

void proto_reader_free(struct proto_reader *r)
{
    if (r == NULL) {
        return;
    }
    free(r->buf);
    r->buf = NULL;
    r->len = 0;
    r->cap = 0;
    r->off = 0;
}

static size_t held(const struct proto_reader *r)
{
    return r->len - r->off;
}

/* Drops consumed bytes: frees the buffer when nothing is left (an idle connection holds no
 * memory), else moves the rest to the front. Invalidates payloads handed out before. */
static void settle(struct proto_reader *r)
{
    if (held(r) == 0) {
        proto_reader_free(r);
        return;
    }
    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, held(r));
        r->len -= r->off;
        r->off = 0;
    }
}

static int grow(struct proto_reader *r, size_t need)
{
    uint8_t *nb = NULL;

    if (need <= r->cap) {
        return 0;
    }
    nb = realloc(r->buf, need);
    if (nb == NULL) {
        return PROTO_ENOMEM;
    }
    r->buf = nb;
    r->cap = need;
    return 0;
}

/* Validates an announced payload length against the limit. */
static int check_len(const struct proto_reader *r, uint32_t len)
{
    if (len == 0 || len > r->max) {
        return PROTO_ETOOBIG;
    }
    return 0;
}

/* How many bytes the next read may bring: inside a frame exactly what it still needs (never
 * more, so a frame's length is checked before its memory is allocated); between frames the
 * caller's suggestion, at least the rest of the header, at most one largest frame. */
static int wanted(const struct proto_reader *r, size_t suggest, size_t *want)
{
    size_t pos = r->off;
    size_t have = 0;
    size_t limit = 0;
    uint32_t flen = 0;
    int rc = 0;

    /* Skip the whole frames already held; the space is for the first incomplete one. */
    for (;;) {
        have = r->len - pos;
        if (have < PROTO_FRAME_HDR) {
            break;
        }
        flen = proto_frame_get_len(r->buf + pos);
        rc = check_len(r, flen);
        if (rc < 0) {
            return rc;
        }
        if (have < PROTO_FRAME_HDR + (size_t)flen) {
            *want = PROTO_FRAME_HDR + (size_t)flen - have;
            return 0;
        }
        pos += PROTO_FRAME_HDR + (size_t)flen;
    }
    limit = PROTO_FRAME_HDR + (size_t)r->max - have;
    *want = suggest < limit ? suggest : limit;
    if (*want < PROTO_FRAME_HDR - have) {
        *want = PROTO_FRAME_HDR - have;
    }
    return 0;
}

int proto_reader_space(struct proto_reader *r, size_t suggest, uint8_t **p, size_t *n)
{
    size_t want = 0;
    int rc = 0;

    settle(r);
    rc = wanted(r, suggest, &want);
    if (rc < 0) {
        return rc;
    }
    if (r->len > SIZE_MAX - want) {
        return PROTO_ENOMEM;
    }
    rc = grow(r, r->len + want);
    if (rc < 0) {
        return rc;
    }
    *p = r->buf + r->len;
    *n = want;
    return 0;
}

void proto_reader_commit(struct proto_reader *r, size_t n)
{
    r->len += n;
    /* A read that brought nothing (EAGAIN, EOF) must not leave an idle buffer behind. */
    if (held(r) == 0) {
        proto_reader_free(r);
    }
}

int proto_reader_push(struct proto_reader *r, const uint8_t *p, size_t n)
{
    size_t need = 0;
    int rc = 0;

    settle(r);
    if (n == 0) {
        return 0;
    }
    if (r->len > SIZE_MAX - n) {
        return PROTO_ENOMEM;
    }
    need = r->len + n;
    if (need > r->cap) {
        /* Doubling keeps byte-by-byte pushes linear; it is bounded by bytes received. */
        size_t ncap = r->cap * 2;
        if (ncap < need) {
            ncap = need;
        }
        rc = grow(r, ncap);
        if (rc < 0) {
            return rc;
        }
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

int proto_reader_next(struct proto_reader *r, const uint8_t **payload, uint32_t *len)
{
    size_t have = held(r);
    uint32_t flen = 0;
    int rc = 0;

    if (have == 0) {
        /* The previous payload (if any) is released now, as promised. */
        proto_reader_free(r);
        return 0;
    }
    if (have < PROTO_FRAME_HDR) {
        return 0;
    }
    flen = proto_frame_get_len(r->buf + r->off);
    rc = check_len(r, flen);
    if (rc < 0) {
        return rc;
    }
    if (have - PROTO_FRAME_HDR < flen) {
        return 0;
    }
    *payload = r->buf + r->off + PROTO_FRAME_HDR;
    *len = flen;
    r->off += PROTO_FRAME_HDR + (size_t)flen;
    return 1;
}
