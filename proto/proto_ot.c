/* proto_ot.c - text operations (ot-text-unicode semantics, code point positions).
 *
 * transform and compose walk the second op's components and pull matching pieces off the
 * first op with an iterator (struct iter), as ot-text-unicode does; the pieces are
 * appended to the result with the same merging rules, so results match that library
 * component for component.
 */
#include "proto_ot.h"

#include <stdlib.h>
#include <string.h>

#include "proto_err.h"

#define TAKE_ALL SIZE_MAX

/* A piece of a component: s points into the op it was taken from. */
struct piece {
    enum proto_op_kind kind;
    size_t n;
    const char *s;
    size_t slen;
};

/* Walks an op's components. In "pre" mode (transform) counts are in the original text, so
 * inserts are never split and deletes may be; in "post" mode (compose) counts are in the
 * text after the op, so deletes are never split and inserts may be. */
struct iter {
    const struct proto_op *op;
    size_t idx;  /* component */
    size_t off;  /* code points of it already taken */
    size_t boff; /* bytes of it already taken (inserts) */
};

/* ---- UTF-8 ---- */

/* Strict UTF-8 (no overlongs, surrogates, or values past U+10FFFF) without NUL bytes. */
static bool utf8_ok(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (c == 0) {
            return false;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) {
                lo = 0xA0;
            } else if (c == 0xED) {
                hi = 0x9F;
            }
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) {
                lo = 0x90;
            } else if (c == 0xF4) {
                hi = 0x8F;
            }
        } else {
            return false;
        }
        if (len - i - 1 < need) {
            return false;
        }
        if (s[i + 1] < lo || s[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return false;
            }
        }
        i += need + 1;
    }
    return true;
}

static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

/* Moves *pos forward over n code points of s[0..len). Returns false when the text ends
 * first. Safe on any bytes; meaningful on UTF-8. */
static bool utf8_advance(const char *s, size_t len, size_t *pos, size_t n)
{
    size_t p = *pos;
    while (n > 0) {
        if (p >= len) {
            return false;
        }
        p++;
        while (p < len && ((unsigned char)s[p] & 0xC0) == 0x80) {
            p++;
        }
        n--;
    }
    *pos = p;
    return true;
}

/* Bytes taken by the first n code points of s[0..len) (all of it if it has fewer). */
static size_t utf8_bytes(const char *s, size_t len, size_t n)
{
    size_t p = 0;
    if (!utf8_advance(s, len, &p, n)) {
        return len;
    }
    return p;
}

/* ---- building ---- */

static bool add_ok(size_t a, size_t b, size_t limit, size_t *sum)
{
    if (a > limit || b > limit - a) {
        return false;
    }
    *sum = a + b;
    return true;
}

static int reserve(struct proto_op *op, size_t more)
{
    if (op->cap - op->len >= more) {
        return 0;
    }
    size_t cap = op->cap ? op->cap * 2 : 8;
    while (cap - op->len < more) {
        cap *= 2;
    }
    struct proto_op_comp *c = realloc(op->comps, cap * sizeof(*c));
    if (c == NULL) {
        return PROTO_ENOMEM;
    }
    op->comps = c;
    op->cap = cap;
    return 0;
}

/* Appends a piece, merging with the last component; a skip waits in tail until something
 * follows it. Counts stay at most limit. s need not be NUL-terminated; it is copied. */
static int append(struct proto_op *op, enum proto_op_kind kind, size_t n, const char *s,
                  size_t slen, size_t limit)
{
    struct proto_op_comp *last = NULL;
    size_t sum = 0;
    if (n == 0) {
        return 0;
    }
    if (kind == PROTO_OP_SKIP) {
        if (!add_ok(op->tail, n, limit, &sum)) {
            return PROTO_EINVAL;
        }
        op->tail = sum;
        return 0;
    }
    if (reserve(op, 2) != 0) {
        return PROTO_ENOMEM;
    }
    if (op->tail == 0 && op->len > 0 && op->comps[op->len - 1].kind == kind) {
        last = &op->comps[op->len - 1];
        if (!add_ok(last->n, n, limit, &sum)) {
            return PROTO_EINVAL;
        }
        if (kind == PROTO_OP_INSERT) {
            if (slen > SIZE_MAX / 2 - 1 - last->slen) {
                return PROTO_ENOMEM;
            }
            size_t need = last->slen + slen + 1;
            if (need > last->scap) {
                /* Geometric growth: many small inserts in a row stay linear. */
                size_t cap = last->scap * 2 > need ? last->scap * 2 : need;
                char *ns = realloc(last->s, cap);
                if (ns == NULL) {
                    return PROTO_ENOMEM;
                }
                last->s = ns;
                last->scap = cap;
            }
            memcpy(last->s + last->slen, s, slen);
            last->s[last->slen + slen] = '\0';
            last->slen += slen;
        }
        last->n = sum;
        return 0;
    }
    if (n > limit) {
        return PROTO_EINVAL;
    }
    char *copy = NULL;
    if (kind == PROTO_OP_INSERT) {
        if (slen == SIZE_MAX) {
            return PROTO_ENOMEM;
        }
        copy = malloc(slen + 1);
        if (copy == NULL) {
            return PROTO_ENOMEM;
        }
        memcpy(copy, s, slen);
        copy[slen] = '\0';
    }
    if (op->tail > 0) {
        op->comps[op->len++] = (struct proto_op_comp){PROTO_OP_SKIP, op->tail, NULL, 0, 0};
        op->tail = 0;
    }
    op->comps[op->len++] =
        (struct proto_op_comp){kind, n, copy, copy ? slen : 0, copy ? slen + 1 : 0};
    return 0;
}

static int append_piece(struct proto_op *op, const struct piece *p)
{
    return append(op, p->kind, p->n, p->s, p->slen, SIZE_MAX);
}

/* Frees out's old contents and moves tmp into it. */
static void replace(struct proto_op *out, struct proto_op *tmp)
{
    proto_op_free(out);
    *out = *tmp;
    proto_op_init(tmp);
}

void proto_op_init(struct proto_op *op)
{
    op->comps = NULL;
    op->len = 0;
    op->cap = 0;
    op->tail = 0;
}

void proto_op_free(struct proto_op *op)
{
    if (op == NULL) {
        return;
    }
    for (size_t i = 0; i < op->len; i++) {
        free(op->comps[i].s);
    }
    free(op->comps);
    proto_op_init(op);
}

int proto_op_copy(const struct proto_op *src, struct proto_op *out)
{
    struct proto_op tmp;
    int rc = 0;
    proto_op_init(&tmp);
    for (size_t i = 0; i < src->len; i++) {
        const struct proto_op_comp *c = &src->comps[i];
        rc = append(&tmp, c->kind, c->n, c->s, c->slen, SIZE_MAX);
        if (rc != 0) {
            goto cleanup;
        }
    }
    tmp.tail = src->tail;
    replace(out, &tmp);
cleanup:
    proto_op_free(&tmp);
    return rc;
}

int proto_op_skip(struct proto_op *op, size_t n)
{
    return append(op, PROTO_OP_SKIP, n, NULL, 0, PROTO_OP_MAX_COUNT);
}

int proto_op_insert(struct proto_op *op, const char *s, size_t slen)
{
    if (slen == 0) {
        return 0;
    }
    if (!utf8_ok(s, slen)) {
        return PROTO_EINVAL;
    }
    return append(op, PROTO_OP_INSERT, utf8_count(s, slen), s, slen, SIZE_MAX);
}

int proto_op_delete(struct proto_op *op, size_t n)
{
    return append(op, PROTO_OP_DELETE, n, NULL, 0, PROTO_OP_MAX_COUNT);
}

/* ---- wire ---- */

/* A positive integer count within PROTO_OP_MAX_COUNT (floats and negatives are not). */
static bool count_of(const msgpack_object *o, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return false;
    }
    if (o->via.u64 == 0 || o->via.u64 > (uint64_t)PROTO_OP_MAX_COUNT) {
        return false;
    }
    *n = (size_t)o->via.u64;
    return true;
}

static bool delete_count(const msgpack_object *o, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 1) {
        return false;
    }
    const msgpack_object *k = &o->via.map.ptr[0].key;
    const msgpack_object *v = &o->via.map.ptr[0].val;
    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 1 || k->via.str.ptr[0] != 'd') {
        return false;
    }
    if (v->type == MSGPACK_OBJECT_STR) {
        if (v->via.str.size == 0 || !utf8_ok(v->via.str.ptr, v->via.str.size)) {
            return false;
        }
        *n = utf8_count(v->via.str.ptr, v->via.str.size);
        return *n <= PROTO_OP_MAX_COUNT;
    }
    return count_of(v, n);
}

int proto_op_decode(const msgpack_object *obj, struct proto_op *out)
{
    struct proto_op tmp;
    int rc = PROTO_EINVAL;
    proto_op_init(&tmp);
    if (obj == NULL || obj->type != MSGPACK_OBJECT_ARRAY) {
        goto cleanup;
    }
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        const msgpack_object *c = &obj->via.array.ptr[i];
        size_t n = 0;
        if (c->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (!count_of(c, &n)) {
                rc = PROTO_EINVAL;
                goto cleanup;
            }
            rc = proto_op_skip(&tmp, n);
        } else if (c->type == MSGPACK_OBJECT_STR) {
            if (c->via.str.size == 0) {
                rc = PROTO_EINVAL;
                goto cleanup;
            }
            rc = proto_op_insert(&tmp, c->via.str.ptr, c->via.str.size);
        } else if (delete_count(c, &n)) {
            rc = proto_op_delete(&tmp, n);
        } else {
            rc = PROTO_EINVAL;
        }
        if (rc != 0) {
            goto cleanup;
        }
    }
    rc = 0;
    replace(out, &tmp);
cleanup:
    proto_op_free(&tmp);
    return rc;
}

int proto_op_encode(const struct proto_op *op, msgpack_packer *pk)
{
    if (msgpack_pack_array(pk, op->len) != 0) {
        return PROTO_ENOMEM;
    }
    for (size_t i = 0; i < op->len; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        int err = 0;
        switch (c->kind) {
        case PROTO_OP_SKIP:
            err = msgpack_pack_uint64(pk, c->n);
            break;
        case PROTO_OP_INSERT:
            err = msgpack_pack_str_with_body(pk, c->s, c->slen);
            break;
        case PROTO_OP_DELETE:
            err = msgpack_pack_map(pk, 1);
            if (err == 0) {
                err = msgpack_pack_str_with_body(pk, "d", 1);
            }
            if (err == 0) {
                err = msgpack_pack_uint64(pk, c->n);
            }
            break;
        }
        if (err != 0) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

/* ---- checking and applying ---- */

size_t proto_op_base_len(const struct proto_op *op)
{
    size_t total = op->tail;
    for (size_t i = 0; i < op->len; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        if (c->kind != PROTO_OP_INSERT && !add_ok(total, c->n, SIZE_MAX, &total)) {
            return SIZE_MAX;
        }
    }
    return total;
}

int proto_op_check(const struct proto_op *op, size_t text_len)
{
    size_t need = proto_op_base_len(op);
    if (need == SIZE_MAX || need > text_len) {
        return PROTO_EINVAL;
    }
    return 0;
}

bool proto_op_is_noop(const struct proto_op *op)
{
    return op->len == 0;
}

/* memcpy that accepts a NULL source for 0 bytes. */
static void copy_bytes(char *buf, size_t *w, const char *src, size_t n)
{
    if (n > 0) {
        memcpy(buf + *w, src, n);
        *w += n;
    }
}

int proto_op_apply(const char *text, size_t len, const struct proto_op *op, size_t max_bytes,
                   char **out, size_t *out_len)
{
    char *buf = NULL;
    size_t cap = len;
    size_t pos = 0;
    size_t w = 0;
    int rc = PROTO_EINVAL;

    if (text == NULL) {
        text = "";
        len = 0;
    }
    for (size_t i = 0; i < op->len; i++) {
        if (op->comps[i].kind == PROTO_OP_INSERT &&
            !add_ok(cap, op->comps[i].slen, SIZE_MAX - 1, &cap)) {
            rc = PROTO_ENOMEM;
            goto cleanup;
        }
    }
    buf = malloc(cap + 1);
    if (buf == NULL) {
        rc = PROTO_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < op->len; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        size_t start = pos;
        switch (c->kind) {
        case PROTO_OP_SKIP:
            if (!utf8_advance(text, len, &pos, c->n)) {
                rc = PROTO_EINVAL;
                goto cleanup;
            }
            copy_bytes(buf, &w, text + start, pos - start);
            break;
        case PROTO_OP_INSERT:
            copy_bytes(buf, &w, c->s, c->slen);
            break;
        case PROTO_OP_DELETE:
            if (!utf8_advance(text, len, &pos, c->n)) {
                rc = PROTO_EINVAL;
                goto cleanup;
            }
            break;
        }
    }
    {
        size_t check = pos;
        if (!utf8_advance(text, len, &check, op->tail)) {
            rc = PROTO_EINVAL;
            goto cleanup;
        }
    }
    copy_bytes(buf, &w, text + pos, len - pos);
    buf[w] = '\0';
    if (max_bytes > 0 && w > max_bytes) {
        rc = PROTO_ETOOBIG;
        goto cleanup;
    }
    *out = buf;
    *out_len = w;
    buf = NULL;
    rc = 0;
cleanup:
    free(buf);
    return rc;
}

/* ---- transform and compose ---- */

static void iter_init(struct iter *it, const struct proto_op *op)
{
    it->op = op;
    it->idx = 0;
    it->off = 0;
    it->boff = 0;
}

static void iter_next(struct iter *it)
{
    it->idx++;
    it->off = 0;
    it->boff = 0;
}

/* Takes up to n code points (TAKE_ALL: the rest of the component) from the iterator. Past
 * the end the op skips forever; with TAKE_ALL there it returns false. */
static bool take(struct iter *it, size_t n, bool pre, struct piece *p)
{
    if (it->idx == it->op->len) {
        if (n == TAKE_ALL) {
            return false;
        }
        *p = (struct piece){PROTO_OP_SKIP, n, NULL, 0};
        return true;
    }
    const struct proto_op_comp *c = &it->op->comps[it->idx];
    size_t rem = c->n - it->off;
    bool whole = n == TAKE_ALL || rem <= n;
    switch (c->kind) {
    case PROTO_OP_SKIP:
        break;
    case PROTO_OP_INSERT:
        whole = whole || pre;
        if (whole) {
            *p = (struct piece){c->kind, rem, c->s + it->boff, c->slen - it->boff};
        } else {
            size_t b = utf8_bytes(c->s + it->boff, c->slen - it->boff, n);
            *p = (struct piece){c->kind, n, c->s + it->boff, b};
            it->off += n;
            it->boff += b;
        }
        break;
    case PROTO_OP_DELETE:
        whole = whole || !pre;
        break;
    }
    if (c->kind != PROTO_OP_INSERT) {
        *p = (struct piece){c->kind, whole ? rem : n, NULL, 0};
        if (!whole) {
            it->off += n;
        }
    }
    if (whole) {
        iter_next(it);
    }
    return true;
}

static bool peek_insert(const struct iter *it)
{
    return it->idx < it->op->len && it->op->comps[it->idx].kind == PROTO_OP_INSERT;
}

int proto_op_transform(const struct proto_op *op, const struct proto_op *other,
                       enum proto_op_side side, struct proto_op *out)
{
    struct proto_op tmp;
    struct iter it;
    struct piece p;
    int rc = 0;
    proto_op_init(&tmp);
    iter_init(&it, op);

    for (size_t i = 0; i < other->len; i++) {
        const struct proto_op_comp *c2 = &other->comps[i];
        size_t left = c2->n;
        switch (c2->kind) {
        case PROTO_OP_SKIP:
            /* Copy op over the kept text; its inserts there cost nothing. */
            while (left > 0) {
                take(&it, left, true, &p);
                rc = append_piece(&tmp, &p);
                if (rc != 0) {
                    goto cleanup;
                }
                if (p.kind != PROTO_OP_INSERT) {
                    left -= p.n;
                }
            }
            break;
        case PROTO_OP_INSERT:
            /* The tie: on the left our insert at this spot goes before theirs. */
            if (side == PROTO_OP_LEFT && peek_insert(&it)) {
                take(&it, TAKE_ALL, true, &p);
                rc = append_piece(&tmp, &p);
                if (rc != 0) {
                    goto cleanup;
                }
            }
            rc = append(&tmp, PROTO_OP_SKIP, c2->n, NULL, 0, SIZE_MAX);
            if (rc != 0) {
                goto cleanup;
            }
            break;
        case PROTO_OP_DELETE:
            /* Text they deleted: our skips and deletes of it vanish, our inserts stay. */
            while (left > 0) {
                take(&it, left, true, &p);
                if (p.kind == PROTO_OP_INSERT) {
                    rc = append_piece(&tmp, &p);
                    if (rc != 0) {
                        goto cleanup;
                    }
                } else {
                    left -= p.n;
                }
            }
            break;
        }
    }
    while (take(&it, TAKE_ALL, true, &p)) {
        rc = append_piece(&tmp, &p);
        if (rc != 0) {
            goto cleanup;
        }
    }
    tmp.tail = 0;
    replace(out, &tmp);
cleanup:
    proto_op_free(&tmp);
    return rc;
}

int proto_op_compose(const struct proto_op *a, const struct proto_op *b, struct proto_op *out)
{
    struct proto_op tmp;
    struct iter it;
    struct piece p;
    int rc = 0;
    proto_op_init(&tmp);
    iter_init(&it, a);

    for (size_t i = 0; i < b->len; i++) {
        const struct proto_op_comp *c2 = &b->comps[i];
        size_t left = c2->n;
        switch (c2->kind) {
        case PROTO_OP_SKIP:
            /* b keeps what a produced: a's pieces pass through, its deletes cost nothing. */
            while (left > 0) {
                take(&it, left, false, &p);
                rc = append_piece(&tmp, &p);
                if (rc != 0) {
                    goto cleanup;
                }
                if (p.kind != PROTO_OP_DELETE) {
                    left -= p.n;
                }
            }
            break;
        case PROTO_OP_INSERT:
            rc = append(&tmp, PROTO_OP_INSERT, c2->n, c2->s, c2->slen, SIZE_MAX);
            if (rc != 0) {
                goto cleanup;
            }
            break;
        case PROTO_OP_DELETE:
            /* b deletes what a produced: kept text becomes a delete, a's inserts cancel. */
            while (left > 0) {
                take(&it, left, false, &p);
                if (p.kind == PROTO_OP_DELETE) {
                    rc = append_piece(&tmp, &p);
                    if (rc != 0) {
                        goto cleanup;
                    }
                    continue;
                }
                if (p.kind == PROTO_OP_SKIP) {
                    rc = append(&tmp, PROTO_OP_DELETE, p.n, NULL, 0, SIZE_MAX);
                    if (rc != 0) {
                        goto cleanup;
                    }
                }
                left -= p.n;
            }
            break;
        }
    }
    while (take(&it, TAKE_ALL, false, &p)) {
        rc = append_piece(&tmp, &p);
        if (rc != 0) {
            goto cleanup;
        }
    }
    tmp.tail = 0;
    replace(out, &tmp);
cleanup:
    proto_op_free(&tmp);
    return rc;
}

size_t proto_op_transform_pos(size_t pos, const struct proto_op *op)
{
    size_t at = 0; /* position in the new text reached so far */
    for (size_t i = 0; i < op->len && pos > at; i++) {
        const struct proto_op_comp *c = &op->comps[i];
        switch (c->kind) {
        case PROTO_OP_SKIP:
            at += c->n;
            break;
        case PROTO_OP_INSERT:
            at += c->n;
            pos += c->n;
            break;
        case PROTO_OP_DELETE:
            pos -= c->n < pos - at ? c->n : pos - at;
            break;
        }
    }
    return pos;
}
