/* proto_diff.c - Myers' O(ND) difference algorithm, linear-space divide and conquer
 * (E. Myers, "An O(ND) Difference Algorithm and Its Variations", 1986, section 4b).
 *
 * The engine (struct myers) compares two arrays of uint32_t symbols: code points, or line
 * ids when lines are compared. It splits a region at a point where the forward and
 * backward searches meet, and keeps the regions still to do on an explicit stack, so
 * neither deep recursion nor memory beyond O(N) is needed. Any split point gives a correct
 * script; meeting points give a shortest one. Two bounds keep it fast:
 *   - budget: the exact character diff gives up past a number of steps, and proto_diff
 *     then matches lines first (Myers on line ids) and diffs characters per changed block;
 *   - limit: the line diff and the per-block diffs stop searching past limit edit steps
 *     and split at the furthest point reached instead (the "too expensive" heuristic of
 *     GNU diff), which costs O((N + M) * limit) at worst.
 */
#include "proto_diff.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto_err.h"

#define LINE_LIMIT        256 /* edit steps per split when comparing lines */
#define BLOCK_LIMIT       64  /* edit steps per split inside a changed block of lines */
#define BUDGET_BASE       (1u << 22)
#define BUDGET_PER_SYMBOL 32

#define GAVE_UP 1 /* bisect: no meeting point, replace the whole region */
#define ABORTED 2 /* bisect or run: over budget */

enum run_kind {
    RUN_EQ,
    RUN_DEL,
    RUN_INS,
};

struct run {
    enum run_kind kind;
    size_t n;
};

/* An edit script: runs in order, adjacent runs of one kind merged. */
struct script {
    struct run *v;
    size_t len;
    size_t cap;
};

struct task {
    bool eq; /* emit an EQ run of a0 symbols (a suffix held back) */
    size_t a0, a1, b0, b1;
};

struct myers {
    const uint32_t *a;
    const uint32_t *b;
    ptrdiff_t *fv; /* furthest x per diagonal, forward */
    ptrdiff_t *bv; /* furthest u (= n - x) per diagonal, backward */
    size_t radius; /* fv/bv hold diagonals -radius..radius: radius - 1 steps are searched */
    size_t budget; /* work before giving up; SIZE_MAX: none */
    size_t work;
    struct task *stack;
    size_t depth;
    size_t stack_cap;
};

static int script_add(struct script *s, enum run_kind kind, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (s->len > 0 && s->v[s->len - 1].kind == kind) {
        s->v[s->len - 1].n += n;
        return 0;
    }
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct run *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->len++] = (struct run){kind, n};
    return 0;
}

static void script_free(struct script *s)
{
    free(s->v);
    s->v = NULL;
    s->len = 0;
    s->cap = 0;
}

static int myers_init(struct myers *m, const uint32_t *a, const uint32_t *b, size_t budget,
                      size_t radius)
{
    memset(m, 0, sizeof(*m));
    m->a = a;
    m->b = b;
    m->budget = budget;
    m->radius = radius < 2 ? 2 : radius;
    m->fv = malloc((2 * m->radius + 1) * sizeof(*m->fv));
    m->bv = malloc((2 * m->radius + 1) * sizeof(*m->bv));
    if (m->fv == NULL || m->bv == NULL) {
        return PROTO_ENOMEM;
    }
    return 0;
}

static void myers_free(struct myers *m)
{
    free(m->fv);
    free(m->bv);
    free(m->stack);
    memset(m, 0, sizeof(*m));
}

static int push(struct myers *m, struct task t)
{
    if (m->depth == m->stack_cap) {
        size_t cap = m->stack_cap ? m->stack_cap * 2 : 64;
        struct task *s = realloc(m->stack, cap * sizeof(*s));
        if (s == NULL) {
            return PROTO_ENOMEM;
        }
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->depth++] = t;
    return 0;
}

/* True when x (or u) on diagonal k is a point of the (n + 1) x (mm + 1) grid; unset
 * entries are -1, stale ones may have run off the grid. */
static bool on_grid(ptrdiff_t x, ptrdiff_t k, ptrdiff_t n, ptrdiff_t mm)
{
    return x >= 0 && x <= n && x - k >= 0 && x - k <= mm;
}

/* Picks the point furthest from its corner among the diagonals of step d (forward and
 * backward), for a split when the search is cut short. Returns 0 with *sx, *sy, or
 * GAVE_UP when no point is strictly inside the region. */
static int furthest(const struct myers *m, ptrdiff_t n, ptrdiff_t mm, ptrdiff_t d, ptrdiff_t flo,
                    ptrdiff_t fhi, ptrdiff_t blo, ptrdiff_t bhi, size_t *sx, size_t *sy)
{
    const ptrdiff_t *fv = m->fv + m->radius;
    const ptrdiff_t *bv = m->bv + m->radius;
    ptrdiff_t best = 0;
    ptrdiff_t bx = 0;
    ptrdiff_t by = 0;
    for (ptrdiff_t k = -d + flo; k <= d - fhi; k += 2) {
        ptrdiff_t x = fv[k];
        ptrdiff_t y = x - k;
        if (on_grid(x, k, n, mm) && x + y > best && x + y < n + mm) {
            best = x + y;
            bx = x;
            by = y;
        }
    }
    for (ptrdiff_t r = -d + blo; r <= d - bhi; r += 2) {
        ptrdiff_t u = bv[r];
        ptrdiff_t v = u - r;
        if (on_grid(u, r, n, mm) && u + v > best && u + v < n + mm) {
            best = u + v;
            bx = n - u;
            by = mm - v;
        }
    }
    if (best == 0) {
        return GAVE_UP;
    }
    *sx = (size_t)bx;
    *sy = (size_t)by;
    return 0;
}

/* Finds where a shortest path through a[0..n) x b[0..mm) crosses the middle (both ends
 * already differ, n, mm >= 1). Returns 0 with the split point (*sx, *sy), strictly inside,
 * GAVE_UP, or ABORTED past the budget. */
static int bisect(struct myers *m, const uint32_t *a, ptrdiff_t n, const uint32_t *b, ptrdiff_t mm,
                  size_t *sx, size_t *sy)
{
    ptrdiff_t *fv = m->fv + m->radius;
    ptrdiff_t *bv = m->bv + m->radius;
    ptrdiff_t maxd = (n + mm + 1) / 2;
    ptrdiff_t delta = n - mm;
    bool odd = (delta & 1) != 0;
    ptrdiff_t flo = 0, fhi = 0, blo = 0, bhi = 0; /* diagonals dropped off each side */
    ptrdiff_t dmax = maxd;

    if (dmax > (ptrdiff_t)m->radius - 1) {
        dmax = (ptrdiff_t)m->radius - 1;
    }
    fv[-1] = bv[-1] = -1;
    fv[0] = bv[0] = -1;
    fv[1] = bv[1] = 0;
    for (ptrdiff_t d = 0; d < dmax; d++) {
        if (d > 0) {
            fv[-d - 1] = fv[d + 1] = -1;
            bv[-d - 1] = bv[d + 1] = -1;
        }
        for (ptrdiff_t k = -d + flo; k <= d - fhi; k += 2) {
            ptrdiff_t x =
                (k == -d || (k != d && fv[k - 1] < fv[k + 1])) ? fv[k + 1] : fv[k - 1] + 1;
            ptrdiff_t y = x - k;
            ptrdiff_t x0 = x;
            while (x < n && y < mm && a[x] == b[y]) {
                x++;
                y++;
            }
            m->work += 1 + (size_t)(x - x0);
            fv[k] = x;
            if (x > n) {
                fhi += 2;
            } else if (y > mm) {
                flo += 2;
            } else if (odd && delta - k >= -d && delta - k <= d &&
                       on_grid(bv[delta - k], delta - k, n, mm) && x >= n - bv[delta - k]) {
                if (x + y == 0 || (x == n && y == mm)) {
                    return GAVE_UP;
                }
                *sx = (size_t)x;
                *sy = (size_t)y;
                return 0;
            }
        }
        for (ptrdiff_t r = -d + blo; r <= d - bhi; r += 2) {
            ptrdiff_t u =
                (r == -d || (r != d && bv[r - 1] < bv[r + 1])) ? bv[r + 1] : bv[r - 1] + 1;
            ptrdiff_t v = u - r;
            ptrdiff_t u0 = u;
            while (u < n && v < mm && a[n - 1 - u] == b[mm - 1 - v]) {
                u++;
                v++;
            }
            m->work += 1 + (size_t)(u - u0);
            bv[r] = u;
            if (u > n) {
                bhi += 2;
            } else if (v > mm) {
                blo += 2;
            } else if (!odd && delta - r >= -d - 1 && delta - r <= d + 1 &&
                       on_grid(fv[delta - r], delta - r, n, mm) && fv[delta - r] >= n - u) {
                ptrdiff_t x = fv[delta - r];
                ptrdiff_t y = x - (delta - r);
                if (x + y == 0 || (x == n && y == mm)) {
                    return GAVE_UP;
                }
                *sx = (size_t)x;
                *sy = (size_t)y;
                return 0;
            }
        }
        if (m->work > m->budget) {
            return ABORTED;
        }
    }
    /* Past the step limit (or, in theory, no meeting): split where we got. */
    return dmax > 0 ? furthest(m, n, mm, dmax - 1, flo, fhi, blo, bhi, sx, sy) : GAVE_UP;
}

/* Diffs a[0..n) against b[0..mm) into out. Returns 0, ABORTED, or PROTO_ENOMEM. */
static int myers_run(struct myers *m, size_t n, size_t mm, struct script *out)
{
    int rc = 0;
    m->depth = 0;
    rc = push(m, (struct task){false, 0, n, 0, mm});
    while (rc == 0 && m->depth > 0) {
        struct task t = m->stack[--m->depth];
        size_t sx = 0, sy = 0;
        if (t.eq) {
            rc = script_add(out, RUN_EQ, t.a0);
            continue;
        }
        size_t pre = 0, suf = 0;
        while (t.a0 + pre < t.a1 && t.b0 + pre < t.b1 && m->a[t.a0 + pre] == m->b[t.b0 + pre]) {
            pre++;
        }
        t.a0 += pre;
        t.b0 += pre;
        while (t.a0 + suf < t.a1 && t.b0 + suf < t.b1 &&
               m->a[t.a1 - 1 - suf] == m->b[t.b1 - 1 - suf]) {
            suf++;
        }
        t.a1 -= suf;
        t.b1 -= suf;
        m->work += pre + suf;
        rc = script_add(out, RUN_EQ, pre);
        if (rc != 0) {
            break;
        }
        int split = GAVE_UP;
        if (t.a0 < t.a1 && t.b0 < t.b1) {
            split = bisect(m, m->a + t.a0, (ptrdiff_t)(t.a1 - t.a0), m->b + t.b0,
                           (ptrdiff_t)(t.b1 - t.b0), &sx, &sy);
        }
        if (split == ABORTED) {
            rc = ABORTED;
            break;
        }
        if (split == GAVE_UP) {
            rc = script_add(out, RUN_DEL, t.a1 - t.a0);
            if (rc == 0) {
                rc = script_add(out, RUN_INS, t.b1 - t.b0);
            }
            if (rc == 0) {
                rc = script_add(out, RUN_EQ, suf);
            }
            continue;
        }
        /* Left part first: the stack pops it before the right part and the suffix. */
        rc = push(m, (struct task){true, suf, 0, 0, 0});
        if (rc == 0) {
            rc = push(m, (struct task){false, t.a0 + sx, t.a1, t.b0 + sy, t.b1});
        }
        if (rc == 0) {
            rc = push(m, (struct task){false, t.a0, t.a0 + sx, t.b0, t.b0 + sy});
        }
    }
    return rc;
}

/* ---- text ---- */

/* Decodes strict UTF-8 without NUL bytes into code points; NULL *out for empty text.
 * Returns 0, PROTO_EINVAL or PROTO_ENOMEM. */
static int decode(const char *str, size_t len, uint32_t **out, size_t *n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t *v = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    if (len == 0) {
        return 0;
    }
    v = malloc(len * sizeof(*v));
    if (v == NULL) {
        return PROTO_ENOMEM;
    }
    for (size_t i = 0; i < len;) {
        uint32_t c = s[i];
        size_t need = 0;
        uint32_t min = 0;
        if (c == 0) {
            goto bad;
        } else if (c < 0x80) {
            need = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            c &= 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            c &= 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            c &= 0x07;
            min = 0x10000;
        } else {
            goto bad;
        }
        if (len - i - 1 < need) {
            goto bad;
        }
        for (size_t j = 1; j <= need; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                goto bad;
            }
            c = (c << 6) | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            goto bad;
        }
        v[k++] = c;
        i += need + 1;
    }
    *out = v;
    *n = k;
    return 0;
bad:
    free(v);
    return PROTO_EINVAL;
}

struct line {
    size_t off; /* first code point, relative to its side's region */
    size_t len;
    uint32_t hash;
};

static uint32_t hash_cps(const uint32_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

/* Lines of cps[0..n): one per '\n', plus one for a last line without it. */
static size_t count_lines(const uint32_t *cps, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] == '\n' || i == n - 1) {
            count++;
        }
    }
    return count;
}

/* Splits cps[0..n) after each '\n' into lines[*count..]. */
static void split_lines(const uint32_t *cps, size_t n, struct line *lines, size_t *count)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] == '\n' || i == n - 1) {
            lines[*count] =
                (struct line){start, i + 1 - start, hash_cps(cps + start, i + 1 - start)};
            (*count)++;
            start = i + 1;
        }
    }
}

/* Diffs a changed block of code points with the bounded engine, appending to out. */
static int diff_block(const uint32_t *a, size_t n, const uint32_t *b, size_t mm, struct script *out)
{
    struct myers m;
    int rc = 0;
    if (n == 0 || mm == 0) {
        rc = script_add(out, RUN_DEL, n);
        return rc == 0 ? script_add(out, RUN_INS, mm) : rc;
    }
    rc = myers_init(&m, a, b, SIZE_MAX, BLOCK_LIMIT + 1);
    if (rc == 0) {
        rc = myers_run(&m, n, mm, out);
    }
    myers_free(&m);
    return rc;
}

/* The coarse path: match lines of a[0..n) and b[0..mm), then diff characters inside each
 * run of changed lines. */
static int diff_lines(const uint32_t *a, size_t n, const uint32_t *b, size_t mm, struct script *out)
{
    struct line *lines = NULL;
    uint32_t *ids = NULL;
    uint32_t *table = NULL;
    struct script ls = {0};
    struct myers m;
    size_t na = 0, nl = 0, tsize = 1;
    int rc = PROTO_ENOMEM;

    memset(&m, 0, sizeof(m));
    nl = count_lines(a, n) + count_lines(b, mm);
    lines = malloc(nl * sizeof(*lines));
    ids = malloc(nl * sizeof(*ids));
    if (lines == NULL || ids == NULL) {
        goto cleanup;
    }
    split_lines(a, n, lines, &na);
    nl = na;
    split_lines(b, mm, lines, &nl);
    while (tsize < 2 * nl) {
        tsize *= 2;
    }
    table = calloc(tsize, sizeof(*table)); /* line index + 1, 0 = empty */
    if (table == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < nl; i++) {
        const uint32_t *p = (i < na ? a : b) + lines[i].off;
        size_t slot = lines[i].hash & (tsize - 1);
        while (table[slot] != 0) {
            const struct line *o = &lines[table[slot] - 1];
            const uint32_t *q = (table[slot] - 1 < na ? a : b) + o->off;
            if (o->hash == lines[i].hash && o->len == lines[i].len &&
                memcmp(p, q, o->len * sizeof(*p)) == 0) {
                break;
            }
            slot = (slot + 1) & (tsize - 1);
        }
        if (table[slot] == 0) {
            table[slot] = (uint32_t)(i + 1);
        }
        ids[i] = table[slot] - 1;
    }

    rc = myers_init(&m, ids, ids + na, SIZE_MAX, LINE_LIMIT + 1);
    if (rc == 0) {
        rc = myers_run(&m, na, nl - na, &ls);
    }
    if (rc != 0) {
        goto cleanup;
    }

    /* Line positions to code point positions: a line's off is its first code point. */
    size_t ia = 0, ib = na;
    for (size_t r = 0; r < ls.len && rc == 0;) {
        if (ls.v[r].kind == RUN_EQ) {
            size_t cps = 0;
            for (size_t k = 0; k < ls.v[r].n; k++) {
                cps += lines[ia + k].len;
            }
            ia += ls.v[r].n;
            ib += ls.v[r].n;
            rc = script_add(out, RUN_EQ, cps);
            r++;
            continue;
        }
        size_t a0 = ia < na ? lines[ia].off : n;
        size_t b0 = ib < nl ? lines[ib].off : mm;
        for (; r < ls.len && ls.v[r].kind != RUN_EQ; r++) {
            if (ls.v[r].kind == RUN_DEL) {
                ia += ls.v[r].n;
            } else {
                ib += ls.v[r].n;
            }
        }
        size_t a1 = ia < na ? lines[ia].off : n;
        size_t b1 = ib < nl ? lines[ib].off : mm;
        rc = diff_block(a + a0, a1 - a0, b + b0, b1 - b0, out);
    }

cleanup:
    myers_free(&m);
    script_free(&ls);
    free(table);
    free(ids);
    free(lines);
    return rc;
}

/* Builds the op from the script; new_text supplies the inserted bytes. */
static int script_to_op(const struct script *s, const char *new_text, size_t new_len,
                        struct proto_op *op)
{
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < s->len && rc == 0; i++) {
        size_t start = pos;
        size_t n = s->v[i].n;
        switch (s->v[i].kind) {
        case RUN_EQ:
        case RUN_INS:
            while (n > 0 && pos < new_len) {
                pos++;
                while (pos < new_len && ((unsigned char)new_text[pos] & 0xC0) == 0x80) {
                    pos++;
                }
                n--;
            }
            if (s->v[i].kind == RUN_EQ) {
                rc = proto_op_skip(op, s->v[i].n);
            } else {
                rc = proto_op_insert(op, new_text + start, pos - start);
            }
            break;
        case RUN_DEL:
            rc = proto_op_delete(op, n);
            break;
        }
    }
    return rc;
}

int proto_diff(const char *old_text, size_t old_len, const char *new_text, size_t new_len,
               struct proto_op *out)
{
    uint32_t *a = NULL;
    uint32_t *b = NULL;
    size_t n = 0, mm = 0, pre = 0, suf = 0;
    struct script s = {0};
    struct script exact = {0};
    struct proto_op op;
    struct myers m;
    int rc = 0;

    proto_op_init(&op);
    memset(&m, 0, sizeof(m));
    rc = decode(old_text, old_len, &a, &n);
    if (rc == 0) {
        rc = decode(new_text, new_len, &b, &mm);
    }
    if (rc != 0) {
        goto cleanup;
    }
    if (n + mm >= (size_t)UINT32_MAX) {
        rc = PROTO_ETOOBIG;
        goto cleanup;
    }
    while (pre < n && pre < mm && a[pre] == b[pre]) {
        pre++;
    }
    while (suf < n - pre && suf < mm - pre && a[n - 1 - suf] == b[mm - 1 - suf]) {
        suf++;
    }
    rc = script_add(&s, RUN_EQ, pre);
    if (rc != 0) {
        goto cleanup;
    }
    n -= pre + suf;
    mm -= pre + suf;
    if (n == 0 || mm == 0) {
        rc = script_add(&s, RUN_DEL, n);
        if (rc == 0) {
            rc = script_add(&s, RUN_INS, mm);
        }
    } else {
        /* Exact first. Edit step d visits at least d / 2 diagonals, so d stays below
         * 2 sqrt(budget) and that many diagonals are enough. */
        size_t budget = BUDGET_PER_SYMBOL * (n + mm) + BUDGET_BASE;
        size_t radius = 2;
        while (radius * radius < 4 * budget) {
            radius *= 2;
        }
        if (radius > (n + mm) / 2 + 2) {
            radius = (n + mm) / 2 + 2;
        }
        rc = myers_init(&m, a + pre, b + pre, budget, radius);
        if (rc == 0) {
            rc = myers_run(&m, n, mm, &exact);
        }
        myers_free(&m);
        if (rc == 0) {
            for (size_t i = 0; i < exact.len && rc == 0; i++) {
                rc = script_add(&s, exact.v[i].kind, exact.v[i].n);
            }
        } else if (rc == ABORTED) {
            rc = diff_lines(a + pre, n, b + pre, mm, &s);
        }
    }
    if (rc == 0) {
        rc = script_add(&s, RUN_EQ, suf);
    }
    if (rc == 0) {
        rc = script_to_op(&s, new_text, new_len, &op);
    }
    if (rc == 0) {
        proto_op_free(out);
        *out = op;
        proto_op_init(&op);
    }
cleanup:
    proto_op_free(&op);
    script_free(&exact);
    script_free(&s);
    free(a);
    free(b);
    return rc;
}
