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

static int intern(const uint32_t *a, const uint32_t *b, const struct line *toks, size_t na,
                  size_t nt, uint32_t *ids);

/* The coarse path: match lines of a[0..n) and b[0..mm), then diff characters inside each
 * run of changed lines. */
static int diff_lines(const uint32_t *a, size_t n, const uint32_t *b, size_t mm, struct script *out)
{
    struct line *lines = NULL;
    uint32_t *ids = NULL;
    struct script ls = {0};
    struct myers m;
    size_t na = 0, nl = 0;
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
    if (intern(a, b, lines, na, nl, ids) != 0) {
        goto cleanup;
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

/* ---- words ---- */

enum cp_class {
    CP_WORD,  /* a letter or digit */
    CP_SPACE, /* white space */
    CP_JOIN,  /* joins two parts of a word: TSAG-TD182, 17:30, e.g */
    CP_MARK,  /* any other mark: a token of its own */
};

static enum cp_class cp_class(uint32_t c)
{
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            return CP_WORD;
        }
        if (c == ' ' || (c >= '\t' && c <= '\r')) {
            return CP_SPACE;
        }
        if (c == '-' || c == '.' || c == '/' || c == ':' || c == '_' || c == '\'') {
            return CP_JOIN;
        }
        return CP_MARK;
    }
    if (c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
        c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000) {
        return CP_SPACE;
    }
    if (c == 0x2010 || c == 0x2011 || c == 0x2019) { /* hyphens, the typographic apostrophe */
        return CP_JOIN;
    }
    /* Without a Unicode table: the C1 controls, Latin-1 punctuation and signs (not its
     * letters, ordinal marks and superscript digits), general punctuation, currency, arrows,
     * mathematical and technical signs, CJK and full-width punctuation, and emoji are marks;
     * every other code point is taken as a letter. */
    if ((c >= 0x80 && c <= 0xBF && c != 0xAA && c != 0xB2 && c != 0xB3 && c != 0xB5 && c != 0xB9 &&
         c != 0xBA) ||
        c == 0xD7 || c == 0xF7 || (c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3001 && c <= 0x303F) ||
        (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
        (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) ||
        (c >= 0x1F000 && c <= 0x1FAFF)) {
        return CP_MARK;
    }
    return CP_WORD;
}

/* Splits cps[0..n) into tokens appended to toks[*count..] (at most n of them). */
static void split_words(const uint32_t *cps, size_t n, struct line *toks, size_t *count)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        enum cp_class k = cp_class(cps[i]);
        i++;
        if (k == CP_WORD) {
            while (i < n) {
                enum cp_class next = cp_class(cps[i]);
                if (next == CP_WORD) {
                    i++;
                } else if (next == CP_JOIN && i + 1 < n && cp_class(cps[i + 1]) == CP_WORD) {
                    i += 2;
                } else {
                    break;
                }
            }
        } else if (k == CP_SPACE) {
            while (i < n && cp_class(cps[i]) == CP_SPACE) {
                i++;
            }
        }
        toks[*count] = (struct line){start, i - start, hash_cps(cps + start, i - start)};
        (*count)++;
    }
}

/* Gives equal tokens (lines) equal ids: ids[i] is the index of the first token equal to
 * toks[i]; toks[0..na) lie in a, the rest in b. Returns 0 or PROTO_ENOMEM. */
static int intern(const uint32_t *a, const uint32_t *b, const struct line *toks, size_t na,
                  size_t nt, uint32_t *ids)
{
    size_t tsize = 1;
    while (tsize < 2 * nt) {
        tsize *= 2;
    }
    uint32_t *table = calloc(tsize, sizeof(*table)); /* token index + 1, 0 = empty */
    if (table == NULL) {
        return PROTO_ENOMEM;
    }
    for (size_t i = 0; i < nt; i++) {
        const uint32_t *p = (i < na ? a : b) + toks[i].off;
        size_t slot = toks[i].hash & (tsize - 1);
        while (table[slot] != 0) {
            const struct line *o = &toks[table[slot] - 1];
            const uint32_t *q = (table[slot] - 1 < na ? a : b) + o->off;
            if (o->hash == toks[i].hash && o->len == toks[i].len &&
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
    free(table);
    return 0;
}

/* The code point script that turns a[0..n) into b[0..mm), token by token. Exact while that
 * is cheap, else bounded per split as the line diff is. Returns 0 or PROTO_ENOMEM. */
static int word_script(const uint32_t *a, size_t n, const uint32_t *b, size_t mm,
                       struct script *out)
{
    struct line *toks = NULL;
    uint32_t *ids = NULL;
    struct script ts = {0};
    struct myers m;
    size_t na = 0, nt = 0;
    int rc = PROTO_ENOMEM;

    memset(&m, 0, sizeof(m));
    if (n + mm == 0) {
        return 0;
    }
    toks = malloc((n + mm) * sizeof(*toks));
    ids = malloc((n + mm) * sizeof(*ids));
    if (toks == NULL || ids == NULL) {
        goto cleanup;
    }
    split_words(a, n, toks, &na);
    nt = na;
    split_words(b, mm, toks, &nt);
    rc = intern(a, b, toks, na, nt, ids);
    if (rc != 0) {
        goto cleanup;
    }
    size_t nb = nt - na;
    size_t budget = BUDGET_PER_SYMBOL * nt + BUDGET_BASE;
    size_t radius = 2;
    while (radius * radius < 4 * budget) {
        radius *= 2;
    }
    if (radius > nt / 2 + 2) {
        radius = nt / 2 + 2;
    }
    rc = myers_init(&m, ids, ids + na, budget, radius);
    if (rc == 0) {
        rc = myers_run(&m, na, nb, &ts);
    }
    myers_free(&m);
    if (rc == ABORTED) {
        script_free(&ts);
        rc = myers_init(&m, ids, ids + na, SIZE_MAX, LINE_LIMIT + 1);
        if (rc == 0) {
            rc = myers_run(&m, na, nb, &ts);
        }
        myers_free(&m);
    }
    if (rc != 0) {
        goto cleanup;
    }
    /* Token counts to code point counts. */
    size_t ia = 0, ib = na;
    for (size_t r = 0; r < ts.len && rc == 0; r++) {
        size_t cps = 0;
        for (size_t k = 0; k < ts.v[r].n; k++) {
            cps += ts.v[r].kind == RUN_INS ? toks[ib + k].len : toks[ia + k].len;
        }
        if (ts.v[r].kind != RUN_INS) {
            ia += ts.v[r].n;
        }
        if (ts.v[r].kind != RUN_DEL) {
            ib += ts.v[r].n;
        }
        rc = script_add(out, ts.v[r].kind, cps);
    }

cleanup:
    script_free(&ts);
    free(ids);
    free(toks);
    return rc;
}

int proto_diff_words(const char *old_text, size_t old_len, const char *new_text, size_t new_len,
                     struct proto_op *out)
{
    uint32_t *a = NULL;
    uint32_t *b = NULL;
    size_t n = 0, mm = 0;
    struct script s = {0};
    struct proto_op op;
    int rc = 0;

    proto_op_init(&op);
    rc = decode(old_text, old_len, &a, &n);
    if (rc == 0) {
        rc = decode(new_text, new_len, &b, &mm);
    }
    if (rc == 0 && n + mm >= (size_t)UINT32_MAX) {
        rc = PROTO_ETOOBIG;
    }
    if (rc == 0) {
        rc = word_script(a, n, b, mm, &s);
    }
    if (rc == 0) {
        rc = script_to_op(&s, new_text, new_len, &op);
    }
    if (rc == 0) {
        proto_op_free(out);
        *out = op;
        proto_op_init(&op);
    }
    proto_op_free(&op);
    script_free(&s);
    free(a);
    free(b);
    return rc;
}

/* ---- three-way merge ---- */

/* One side's change: base[b0..b1) became its text's [n0..n1) (code points), a run of
 * deletes and inserts between two unchanged runs. */
struct hunk {
    size_t b0, b1; /* in base */
    size_t n0, n1; /* in the side's text */
    int side;      /* 0 mine, 1 theirs */
};

/* A stretch of base changed by one side or both; d0/d1 are each side's (text position -
 * base position) before and after it. */
struct region {
    size_t b0, b1;
    ptrdiff_t d0[2], d1[2];
    bool side[2];
    bool conflict;
};

static int script_hunks(const struct script *s, int side, struct hunk **out, size_t *count)
{
    size_t cap = s->len + 1, k = 0, pb = 0, pn = 0;
    struct hunk *h = malloc(cap * sizeof(*h));
    if (h == NULL) {
        return PROTO_ENOMEM;
    }
    for (size_t i = 0; i < s->len; i++) {
        if (s->v[i].kind == RUN_EQ) {
            pb += s->v[i].n;
            pn += s->v[i].n;
            continue;
        }
        if (k == 0 || h[k - 1].b1 != pb || h[k - 1].n1 != pn) {
            h[k++] = (struct hunk){pb, pb, pn, pn, side};
        }
        if (s->v[i].kind == RUN_DEL) {
            pb += s->v[i].n;
            h[k - 1].b1 = pb;
        } else {
            pn += s->v[i].n;
            h[k - 1].n1 = pn;
        }
    }
    *out = h;
    *count = k;
    return 0;
}

/* True when base[from..to) is empty or holds only spaces and tabs (no line break). */
static bool blank_gap(const uint32_t *base, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        uint32_t c = base[i];
        if (cp_class(c) != CP_SPACE || (c >= '\n' && c <= '\r') || c == 0x85 || c == 0x2028 ||
            c == 0x2029) {
            return false;
        }
    }
    return true;
}

struct obuf {
    char *p;
    size_t len, cap;
};

static int obuf_reserve(struct obuf *o, size_t more)
{
    if (o->len + more + 1 <= o->cap) {
        return 0;
    }
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + more + 1) {
        cap *= 2;
    }
    char *p = realloc(o->p, cap);
    if (p == NULL) {
        return PROTO_ENOMEM;
    }
    o->p = p;
    o->cap = cap;
    return 0;
}

static int obuf_str(struct obuf *o, const char *s)
{
    size_t n = strlen(s);
    if (obuf_reserve(o, n) != 0) {
        return PROTO_ENOMEM;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
    return 0;
}

/* Appends the code points cps[from..to) as UTF-8. */
static int obuf_cps(struct obuf *o, const uint32_t *cps, size_t from, size_t to)
{
    if (obuf_reserve(o, 4 * (to - from)) != 0) {
        return PROTO_ENOMEM;
    }
    for (size_t i = from; i < to; i++) {
        uint32_t c = cps[i];
        char *p = o->p + o->len;
        if (c < 0x80) {
            p[0] = (char)c;
            o->len += 1;
        } else if (c < 0x800) {
            p[0] = (char)(0xC0 | (c >> 6));
            p[1] = (char)(0x80 | (c & 0x3F));
            o->len += 2;
        } else if (c < 0x10000) {
            p[0] = (char)(0xE0 | (c >> 12));
            p[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            p[2] = (char)(0x80 | (c & 0x3F));
            o->len += 3;
        } else {
            p[0] = (char)(0xF0 | (c >> 18));
            p[1] = (char)(0x80 | ((c >> 12) & 0x3F));
            p[2] = (char)(0x80 | ((c >> 6) & 0x3F));
            p[3] = (char)(0x80 | (c & 0x3F));
            o->len += 4;
        }
    }
    o->p[o->len] = '\0';
    return 0;
}

/* Widens r to the whole lines of base it is on. */
static void to_lines(const uint32_t *base, size_t n, struct region *r)
{
    while (r->b0 > 0 && base[r->b0 - 1] != '\n') {
        r->b0--;
    }
    while (r->b1 < n && base[r->b1] != '\n' && (r->b1 == r->b0 || base[r->b1 - 1] != '\n')) {
        r->b1++;
    }
}

int proto_merge3(const char *base, size_t base_len, const char *mine, size_t mine_len,
                 const char *theirs, size_t theirs_len, const char *theirs_label, char **out,
                 size_t *out_len, size_t *conflicts)
{
    uint32_t *t[3] = {NULL, NULL, NULL}; /* base, mine, theirs */
    size_t n[3] = {0, 0, 0};
    struct script s[2] = {{0}, {0}};
    struct hunk *h[2] = {NULL, NULL};
    size_t nh[2] = {0, 0};
    struct region *regs = NULL;
    size_t nregs = 0;
    struct obuf o = {0};
    size_t found = 0;
    int rc = 0;

    rc = decode(base, base_len, &t[0], &n[0]);
    if (rc == 0) {
        rc = decode(mine, mine_len, &t[1], &n[1]);
    }
    if (rc == 0) {
        rc = decode(theirs, theirs_len, &t[2], &n[2]);
    }
    if (rc == 0 && n[0] + n[1] + n[2] >= (size_t)UINT32_MAX) {
        rc = PROTO_ETOOBIG;
    }
    for (int side = 0; side < 2 && rc == 0; side++) {
        rc = word_script(t[0], n[0], t[side + 1], n[side + 1], &s[side]);
        if (rc == 0) {
            rc = script_hunks(&s[side], side, &h[side], &nh[side]);
        }
    }
    if (rc != 0) {
        goto cleanup;
    }
    regs = malloc((nh[0] + nh[1] + 1) * sizeof(*regs));
    if (regs == NULL) {
        rc = PROTO_ENOMEM;
        goto cleanup;
    }
    /* Both sides' hunks in base order; a hunk that overlaps, touches or is only blanks
     * away from the region before it joins it. A region of both sides is a conflict, and
     * takes its whole lines; regions that then meet it join it too. */
    ptrdiff_t d[2] = {0, 0};
    for (size_t i0 = 0, i1 = 0; i0 < nh[0] || i1 < nh[1];) {
        bool take0 = i1 >= nh[1] || (i0 < nh[0] && h[0][i0].b0 <= h[1][i1].b0);
        const struct hunk *x = take0 ? &h[0][i0++] : &h[1][i1++];
        struct region r = {x->b0, x->b1, {d[0], d[1]}, {0, 0}, {false, false}, false};
        d[x->side] += (ptrdiff_t)(x->n1 - x->n0) - (ptrdiff_t)(x->b1 - x->b0);
        r.d1[0] = d[0];
        r.d1[1] = d[1];
        r.side[x->side] = true;
        while (nregs > 0) {
            struct region *top = &regs[nregs - 1];
            bool joins = r.b0 <= top->b1 || (!top->conflict && blank_gap(t[0], top->b1, r.b0));
            if (!joins) {
                break;
            }
            r.b0 = top->b0 < r.b0 ? top->b0 : r.b0;
            r.b1 = top->b1 > r.b1 ? top->b1 : r.b1;
            r.d0[0] = top->d0[0];
            r.d0[1] = top->d0[1];
            r.side[0] |= top->side[0];
            r.side[1] |= top->side[1];
            r.conflict |= top->conflict;
            nregs--;
        }
        if (r.side[0] && r.side[1]) {
            r.conflict = true;
            to_lines(t[0], n[0], &r);
            /* The lines may reach regions already made: take them in. */
            while (nregs > 0 && regs[nregs - 1].b1 >= r.b0) {
                struct region *top = &regs[nregs - 1];
                r.b0 = top->b0 < r.b0 ? top->b0 : r.b0;
                r.d0[0] = top->d0[0];
                r.d0[1] = top->d0[1];
                nregs--;
                to_lines(t[0], n[0], &r);
            }
        }
        regs[nregs++] = r;
    }
    /* Hunks after a conflict that its lines reach were joined as they came (their b0 is at
     * most its widened b1). Now write the text: base between regions, one side's text in a
     * region of one side, and both, with markers, in a conflict. */
    size_t pos = 0;
    for (size_t i = 0; i < nregs && rc == 0; i++) {
        const struct region *r = &regs[i];
        size_t m0 = (size_t)((ptrdiff_t)r->b0 + r->d0[0]),
               m1 = (size_t)((ptrdiff_t)r->b1 + r->d1[0]);
        size_t t0 = (size_t)((ptrdiff_t)r->b0 + r->d0[1]),
               t1 = (size_t)((ptrdiff_t)r->b1 + r->d1[1]);
        rc = obuf_cps(&o, t[0], pos, r->b0);
        pos = r->b1;
        if (rc != 0) {
            break;
        }
        bool same =
            m1 - m0 == t1 - t0 && memcmp(t[1] + m0, t[2] + t0, (m1 - m0) * sizeof(uint32_t)) == 0;
        if (!r->conflict || same) {
            rc = r->side[0] ? obuf_cps(&o, t[1], m0, m1) : obuf_cps(&o, t[2], t0, t1);
            continue;
        }
        found++;
        if (o.len > 0 && o.p[o.len - 1] != '\n') {
            rc = obuf_str(&o, "\n");
        }
        if (rc == 0) {
            rc = obuf_str(&o, "<<<<<<< yours\n");
        }
        if (rc == 0) {
            rc = obuf_cps(&o, t[1], m0, m1);
        }
        if (rc == 0 && m1 > m0 && t[1][m1 - 1] != '\n') {
            rc = obuf_str(&o, "\n");
        }
        if (rc == 0) {
            rc = obuf_str(&o, "=======\n");
        }
        if (rc == 0) {
            rc = obuf_cps(&o, t[2], t0, t1);
        }
        if (rc == 0 && t1 > t0 && t[2][t1 - 1] != '\n') {
            rc = obuf_str(&o, "\n");
        }
        if (rc == 0) {
            rc = obuf_str(&o, ">>>>>>> ");
        }
        if (rc == 0) {
            rc = obuf_str(&o, theirs_label ? theirs_label : "theirs");
        }
        if (rc == 0 && r->b1 < n[0] && t[0][r->b1] != '\n') {
            rc = obuf_str(&o, "\n");
        }
    }
    if (rc == 0) {
        rc = obuf_cps(&o, t[0], pos, n[0]);
    }
    if (rc == 0 && o.p == NULL) {
        rc = obuf_reserve(&o, 0);
        if (rc == 0) {
            o.p[0] = '\0';
        }
    }
    if (rc == 0) {
        *out = o.p;
        *out_len = o.len;
        *conflicts = found;
        o.p = NULL;
    }

cleanup:
    free(o.p);
    free(regs);
    for (int i = 0; i < 2; i++) {
        free(h[i]);
        script_free(&s[i]);
    }
    for (int i = 0; i < 3; i++) {
        free(t[i]);
    }
    return rc;
}

static bool marker_line(const char *p, size_t rest, char c, bool alone)
{
    if (rest < 7) {
        return false;
    }
    for (int i = 0; i < 7; i++) {
        if (p[i] != c) {
            return false;
        }
    }
    if (rest == 7 || p[7] == '\n' || (p[7] == '\r' && (rest == 8 || p[8] == '\n'))) {
        return true;
    }
    return !alone && p[7] == ' ';
}

bool proto_merge_has_markers(const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        const char *p = text + i;
        size_t rest = len - i;
        if (marker_line(p, rest, '<', false) || marker_line(p, rest, '=', true) ||
            marker_line(p, rest, '>', false)) {
            return true;
        }
        const char *nl = memchr(p, '\n', rest);
        if (nl == NULL) {
            break;
        }
        i = (size_t)(nl - text) + 1;
    }
    return false;
}
