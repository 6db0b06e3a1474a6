/* proto_msgpack.c - structural check of msgpack bytes (see proto_msgpack.h).
 *
 * An iterative walk over the headers with a fixed stack of PROTO_MP_MAX_DEPTH counters:
 * no allocation, no recursion, and every step consumes at least one byte, so the cost is
 * linear in the input whatever the counts announce.
 */
#include "proto_err.h"
#include "proto_msgpack.h"

static uint32_t be(const uint8_t *p, size_t n)
{
    uint32_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* One item: for a scalar, skip is its whole size; for a container, skip is the header size
 * and items the number of values inside it (twice the count for a map). */
struct item {
    size_t skip;
    uint64_t items;
    int container;
};

/* Fixed-size scalars, by first byte 0xc0..0xdf: total size, 0 when not fixed. */
static size_t fixed_size(uint8_t b)
{
    switch (b) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: /* true */
        return 1;
    case 0xcc: /* uint8 */
    case 0xd0: /* int8 */
        return 2;
    case 0xcd: /* uint16 */
    case 0xd1: /* int16 */
        return 3;
    case 0xd4: /* fixext1: type, 1 byte */
        return 3;
    case 0xca: /* float32 */
    case 0xce: /* uint32 */
    case 0xd2: /* int32 */
        return 5;
    case 0xd5: /* fixext2 */
        return 4;
    case 0xd6: /* fixext4 */
        return 6;
    case 0xcb: /* float64 */
    case 0xcf: /* uint64 */
    case 0xd3: /* int64 */
        return 9;
    case 0xd7: /* fixext8 */
        return 10;
    case 0xd8: /* fixext16 */
        return 18;
    default:
        return 0;
    }
}

/* Reads the header of the item at p[0..avail). Returns 0, PROTO_EAGAIN when the header or
 * a scalar's body is cut off, PROTO_EINVAL for 0xc1 or a count over the limit. */
static int read_item(const uint8_t *p, size_t avail, struct item *it)
{
    uint8_t b = p[0];
    size_t lenbytes = 0; /* size of the length/count field after the type byte */
    size_t extra = 0;    /* bytes between the length field and the body (ext type) */
    int container = 0;
    int map = 0;
    uint64_t n = 0;

    it->skip = 1;
    it->items = 0;
    it->container = 0;

    if (b <= 0x7f || b >= 0xe0) {
        return 0; /* positive or negative fixint */
    }
    if (b <= 0x8f) {
        n = b & 0x0f;
        container = 1;
        map = 1;
    } else if (b <= 0x9f) {
        n = b & 0x0f;
        container = 1;
    } else if (b <= 0xbf) {
        n = b & 0x1f; /* fixstr */
    } else if (b == 0xc1) {
        return PROTO_EINVAL; /* never used */
    } else if (fixed_size(b) > 0) {
        if (avail < fixed_size(b)) {
            return PROTO_EAGAIN;
        }
        it->skip = fixed_size(b);
        return 0;
    } else {
        switch (b) {
        case 0xc4: /* bin8 */
        case 0xd9: /* str8 */
            lenbytes = 1;
            break;
        case 0xc5: /* bin16 */
        case 0xda: /* str16 */
            lenbytes = 2;
            break;
        case 0xc6: /* bin32 */
        case 0xdb: /* str32 */
            lenbytes = 4;
            break;
        case 0xc7: /* ext8 */
            lenbytes = 1;
            extra = 1;
            break;
        case 0xc8: /* ext16 */
            lenbytes = 2;
            extra = 1;
            break;
        case 0xc9: /* ext32 */
            lenbytes = 4;
            extra = 1;
            break;
        case 0xdc: /* array16 */
            lenbytes = 2;
            container = 1;
            break;
        case 0xdd: /* array32 */
            lenbytes = 4;
            container = 1;
            break;
        case 0xde: /* map16 */
            lenbytes = 2;
            container = 1;
            map = 1;
            break;
        default: /* 0xdf map32: every other byte is handled above */
            lenbytes = 4;
            container = 1;
            map = 1;
            break;
        }
        if (avail < 1 + lenbytes + extra) {
            return PROTO_EAGAIN;
        }
        n = be(p + 1, lenbytes);
    }

    it->skip = 1 + lenbytes + extra;
    if (container) {
        /* Rejected here, before anything is read past the header: a count over the limit
         * is what makes msgpack-c allocate gigabytes. */
        if (n > PROTO_MP_MAX_COUNT) {
            return PROTO_EINVAL;
        }
        it->container = 1;
        it->items = map ? 2 * n : n;
        return 0;
    }
    /* str, bin, ext: the body must be there. */
    if (n > avail - it->skip) {
        return PROTO_EAGAIN;
    }
    it->skip += (size_t)n;
    return 0;
}

int proto_mp_check_one(const uint8_t *buf, size_t len, size_t *value_len)
{
    uint32_t left[PROTO_MP_MAX_DEPTH]; /* values still due in each open container */
    int depth = 0;
    size_t pos = 0;
    struct item it;
    int rc = 0;

    for (;;) {
        if (pos >= len) {
            return PROTO_EAGAIN;
        }
        rc = read_item(buf + pos, len - pos, &it);
        if (rc < 0) {
            return rc;
        }
        pos += it.skip;
        if (it.container) {
            /* An empty container counts as a nesting level too. */
            if (depth >= PROTO_MP_MAX_DEPTH) {
                return PROTO_EINVAL;
            }
            /* Every value takes at least one byte: a count past the end cannot be whole. */
            if (it.items > len - pos) {
                return PROTO_EAGAIN;
            }
            if (it.items > 0) {
                left[depth++] = (uint32_t)it.items;
                continue;
            }
        }
        /* One value is complete; close every container it completes. */
        while (depth > 0) {
            left[depth - 1]--;
            if (left[depth - 1] > 0) {
                break;
            }
            depth--;
        }
        if (depth == 0) {
            *value_len = pos;
            return 0;
        }
    }
}

int proto_mp_check_seq(const uint8_t *buf, size_t len, size_t *good_len)
{
    size_t pos = 0;
    size_t vlen = 0;

    *good_len = 0;
    if (len == 0) {
        return PROTO_EINVAL;
    }
    while (pos < len) {
        /* Within a whole frame a cut-off value cannot be completed later: it is invalid. */
        if (proto_mp_check_one(buf + pos, len - pos, &vlen) != 0) {
            return PROTO_EINVAL;
        }
        pos += vlen;
        *good_len = pos;
    }
    return 0;
}
