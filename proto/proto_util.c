/* proto_util.c - UTF-8, names, base64url, hex, time and growable buffers. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "proto_err.h"
#include "proto_util.h"

/* Checks one sequence per step with the ranges of RFC 3629 section 4, which exclude
 * overlong forms (C0, C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF) and code points past
 * U+10FFFF (F4 90-BF, F5-FF). */
bool proto_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    if (s == NULL) {
        return len == 0;
    }
    while (i < len) {
        unsigned char c = p[i];
        unsigned char lo = 0x80;
        unsigned char hi = 0xbf;
        size_t n = 0;

        if (c == 0) {
            return false;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0) {
                lo = 0xa0;
            } else if (c == 0xed) {
                hi = 0x9f;
            }
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0) {
                lo = 0x90;
            } else if (c == 0xf4) {
                hi = 0x8f;
            }
        } else {
            return false;
        }
        if (len - i - 1 < n) {
            return false;
        }
        /* Only the first continuation byte has a narrowed range. */
        if (p[i + 1] < lo || p[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        i += n + 1;
    }
    return true;
}

size_t proto_utf8_count(const char *s, size_t len)
{
    size_t count = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            count++;
        }
    }
    return count;
}

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return !first && (c == '.' || c == '_' || c == '-');
}

bool proto_name_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > PROTO_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[i], i == 0)) {
            return false;
        }
    }
    return true;
}

void proto_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_cap)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

    /* sodium_bin2base64 aborts the process when out is too small; give an empty string. */
    if (out_cap < sodium_base64_ENCODED_LEN(n, variant)) {
        if (out_cap > 0) {
            out[0] = '\0';
        }
        return;
    }
    sodium_bin2base64(out, out_cap, in, n, variant);
}

int proto_b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t bin_len = 0;

    /* With b64_end NULL, libsodium fails on any character outside the alphabet ('='
     * included, for a NO_PADDING variant), on leftover bits and on output past cap. */
    if (s == NULL || cap > INT_MAX) {
        return PROTO_EINVAL;
    }
    if (sodium_base642bin(out, cap, s, len, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        return PROTO_EINVAL;
    }
    return (int)bin_len;
}

void proto_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int64_t proto_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void proto_buf_init(struct proto_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int proto_buf_reserve(struct proto_buf *b, size_t n)
{
    size_t need = 0;
    size_t ncap = 0;
    uint8_t *nd = NULL;

    if (b->len > SIZE_MAX - n) {
        return PROTO_ENOMEM;
    }
    need = b->len + n;
    if (need <= b->cap) {
        return 0;
    }
    ncap = b->cap < 64 ? 64 : b->cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    /* Not realloc: the old block may hold secrets (a login's plaintext), and realloc
     * would free it unwiped. */
    nd = malloc(ncap);
    if (nd == NULL) {
        return PROTO_ENOMEM;
    }
    if (b->data != NULL) {
        memcpy(nd, b->data, b->len);
        sodium_memzero(b->data, b->cap);
        free(b->data);
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int proto_buf_append(struct proto_buf *b, const void *p, size_t n)
{
    int rc = 0;

    if (n == 0) {
        return 0;
    }
    rc = proto_buf_reserve(b, n);
    if (rc < 0) {
        return rc;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void proto_buf_consume(struct proto_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void proto_buf_free(struct proto_buf *b, int wipe)
{
    if (b == NULL) {
        return;
    }
    if (wipe && b->data != NULL) {
        sodium_memzero(b->data, b->cap);
    }
    free(b->data);
    proto_buf_init(b);
}

int proto_buf_msgpack_write(void *data, const char *buf, size_t len)
{
    return proto_buf_append(data, buf, len) == 0 ? 0 : -1;
}
