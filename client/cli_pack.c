/* cli_pack.c - msgpack values from a format string. */
#include "cli_pack.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "proto_err.h"
#include "proto_msgpack.h"

static bool ignored(char c)
{
    return c == ' ' || c == '\t' || c == ':' || c == ',';
}

/* Counts the items of the container whose body starts at fmt (just after its opening
 * bracket) up to the matching close. Returns the count or -1 when unbalanced. */
static long count_items(const char *fmt, char close)
{
    long count = 0;
    int depth = 0;
    for (const char *p = fmt; *p != '\0'; p++) {
        char c = *p;
        if (ignored(c)) {
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == 0) {
                count++;
            }
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                return c == close ? count : -1;
            }
            depth--;
        } else if (depth == 0) {
            count++;
        }
    }
    return -1;
}

struct packer {
    struct proto_buf *b;
    msgpack_packer pk;
    const char *p; /* position in the format */
    va_list ap;
};

static int pack_value(struct packer *s, int depth);

static int pack_container(struct packer *s, char open, int depth)
{
    char close = open == '{' ? '}' : ']';
    long n = count_items(s->p, close);
    if (n < 0 || depth > 32) {
        return PROTO_EINVAL;
    }
    if (open == '{') {
        if (n % 2 != 0) {
            return PROTO_EINVAL;
        }
        msgpack_pack_map(&s->pk, (size_t)n / 2);
    } else {
        msgpack_pack_array(&s->pk, (size_t)n);
    }
    for (long i = 0; i < n; i++) {
        int rc = pack_value(s, depth + 1);
        if (rc != 0) {
            return rc;
        }
    }
    while (ignored(*s->p)) {
        s->p++;
    }
    if (*s->p != close) {
        return PROTO_EINVAL;
    }
    s->p++;
    return 0;
}

static int pack_value(struct packer *s, int depth)
{
    while (ignored(*s->p)) {
        s->p++;
    }
    char c = *s->p;
    if (c == '\0') {
        return PROTO_EINVAL;
    }
    s->p++;
    switch (c) {
    case '{':
    case '[':
        return pack_container(s, c, depth);
    case 's': {
        const char *str = va_arg(s->ap, const char *);
        if (str == NULL) {
            return msgpack_pack_nil(&s->pk) == 0 ? 0 : PROTO_ENOMEM;
        }
        size_t n = strlen(str);
        if (msgpack_pack_str(&s->pk, n) != 0 || msgpack_pack_str_body(&s->pk, str, n) != 0) {
            return PROTO_ENOMEM;
        }
        return 0;
    }
    case 'S': {
        const char *str = va_arg(s->ap, const char *);
        size_t n = va_arg(s->ap, size_t);
        if (str == NULL && n > 0) {
            return PROTO_EINVAL;
        }
        if (msgpack_pack_str(&s->pk, n) != 0 ||
            (n > 0 && msgpack_pack_str_body(&s->pk, str, n) != 0)) {
            return PROTO_ENOMEM;
        }
        return 0;
    }
    case 'i':
        return msgpack_pack_int64(&s->pk, va_arg(s->ap, int)) == 0 ? 0 : PROTO_ENOMEM;
    case 'I':
        return msgpack_pack_int64(&s->pk, va_arg(s->ap, int64_t)) == 0 ? 0 : PROTO_ENOMEM;
    case 'u':
        return msgpack_pack_uint64(&s->pk, va_arg(s->ap, uint64_t)) == 0 ? 0 : PROTO_ENOMEM;
    case 'b':
        if (va_arg(s->ap, int)) {
            return msgpack_pack_true(&s->pk) == 0 ? 0 : PROTO_ENOMEM;
        }
        return msgpack_pack_false(&s->pk) == 0 ? 0 : PROTO_ENOMEM;
    case 'n':
        return msgpack_pack_nil(&s->pk) == 0 ? 0 : PROTO_ENOMEM;
    case 'B': {
        const void *p = va_arg(s->ap, const void *);
        size_t n = va_arg(s->ap, size_t);
        if (p == NULL && n > 0) {
            return PROTO_EINVAL;
        }
        if (msgpack_pack_bin(&s->pk, n) != 0 ||
            (n > 0 && msgpack_pack_bin_body(&s->pk, p, n) != 0)) {
            return PROTO_ENOMEM;
        }
        return 0;
    }
    case 'r': {
        const uint8_t *p = va_arg(s->ap, const uint8_t *);
        size_t n = va_arg(s->ap, size_t);
        size_t vlen = 0;
        if (p == NULL || n == 0 || proto_mp_check_one(p, n, &vlen) != 0 || vlen != n) {
            return PROTO_EINVAL;
        }
        return proto_buf_append(s->b, p, n);
    }
    case 'o': {
        const msgpack_object *o = va_arg(s->ap, const msgpack_object *);
        if (o == NULL) {
            return msgpack_pack_nil(&s->pk) == 0 ? 0 : PROTO_ENOMEM;
        }
        return msgpack_pack_object(&s->pk, *o) == 0 ? 0 : PROTO_ENOMEM;
    }
    default:
        return PROTO_EINVAL;
    }
}

int cli_vpackf(struct proto_buf *b, const char *fmt, va_list ap)
{
    struct packer s;
    int rc = 0;

    s.b = b;
    s.p = fmt;
    va_copy(s.ap, ap);
    msgpack_packer_init(&s.pk, b, proto_buf_msgpack_write);
    while (rc == 0) {
        while (ignored(*s.p)) {
            s.p++;
        }
        if (*s.p == '\0') {
            break;
        }
        rc = pack_value(&s, 0);
    }
    va_end(s.ap);
    return rc;
}

int cli_packf(struct proto_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cli_vpackf(b, fmt, ap);
    va_end(ap);
    return rc;
}
