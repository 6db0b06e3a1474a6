/* cli_edbuf.c - the model of `confer write` (see cli_edbuf.h). */
#include "cli_edbuf.h"

#include <stdlib.h>
#include <string.h>

#include "proto_err.h"
#include "proto_util.h"

/* ---- UTF-8 ---- */

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Decodes the code point at byte i of s[0..len) (valid UTF-8); *next gets the byte after. */
static uint32_t decode(const char *s, size_t len, size_t i, size_t *next)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp = u[i];
    size_t n = 1;
    if (cp >= 0xF0) {
        cp &= 0x07;
        n = 4;
    } else if (cp >= 0xE0) {
        cp &= 0x0F;
        n = 3;
    } else if (cp >= 0xC0) {
        cp &= 0x1F;
        n = 2;
    }
    size_t k = 1;
    for (; k < n && i + k < len; k++) {
        cp = (cp << 6) | (u[i + k] & 0x3F);
    }
    *next = i + k;
    return cp;
}

static size_t next_b(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && is_cont((unsigned char)s[i])) {
        i++;
    }
    return i;
}

static size_t prev_b(const char *s, size_t i)
{
    do {
        i--;
    } while (i > 0 && is_cont((unsigned char)s[i]));
    return i;
}

size_t cli_edbuf_byte(const struct cli_edbuf *b, size_t pos)
{
    size_t i = 0;
    for (size_t k = 0; k < pos && i < b->len; k++) {
        i = next_b(b->text, b->len, i);
    }
    return i;
}

/* ---- find ---- */

/* The first byte offset in [from, to) where needle begins (wholly before len), or SIZE_MAX. */
static size_t find_bytes(const char *text, size_t len, const char *needle, size_t nlen, size_t from,
                         size_t to)
{
    for (size_t i = from; i < to && i + nlen <= len; i++) {
        if (text[i] == needle[0] && memcmp(text + i, needle, nlen) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

size_t cli_edbuf_find(const struct cli_edbuf *b, const char *needle, size_t nlen, size_t from,
                      bool *wrapped)
{
    if (wrapped) {
        *wrapped = false;
    }
    if (nlen == 0 || nlen > b->len) {
        return SIZE_MAX;
    }
    size_t start = cli_edbuf_byte(b, from);
    size_t at = find_bytes(b->text, b->len, needle, nlen, start, b->len);
    if (at == SIZE_MAX) {
        at = find_bytes(b->text, b->len, needle, nlen, 0, start);
        if (at == SIZE_MAX) {
            return SIZE_MAX;
        }
        if (wrapped) {
            *wrapped = true;
        }
    }
    size_t cp = 0;
    for (size_t i = 0; i < at; i++) {
        cp += ((unsigned char)b->text[i] & 0xC0) != 0x80;
    }
    return cp;
}

/* ---- widths ---- */

struct range {
    uint32_t lo, hi;
};

/* East Asian Wide and Fullwidth blocks (and the emoji blocks terminals draw wide). */
static const struct range wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251}, {0x1F300, 0x1F320},
    {0x1F32D, 0x1F335}, {0x1F337, 0x1F37C}, {0x1F37E, 0x1F393}, {0x1F3A0, 0x1F3CA},
    {0x1F3CF, 0x1F3D3}, {0x1F3E0, 0x1F3F0}, {0x1F3F4, 0x1F3F4}, {0x1F3F8, 0x1F43E},
    {0x1F440, 0x1F440}, {0x1F442, 0x1F4FC}, {0x1F4FF, 0x1F53D}, {0x1F54B, 0x1F54E},
    {0x1F550, 0x1F567}, {0x1F57A, 0x1F57A}, {0x1F595, 0x1F596}, {0x1F5A4, 0x1F5A4},
    {0x1F5FB, 0x1F64F}, {0x1F680, 0x1F6C5}, {0x1F6CC, 0x1F6CC}, {0x1F6D0, 0x1F6D2},
    {0x1F6D5, 0x1F6D7}, {0x1F6EB, 0x1F6EC}, {0x1F6F4, 0x1F6FC}, {0x1F7E0, 0x1F7EB},
    {0x1F90C, 0x1F93A}, {0x1F93C, 0x1F945}, {0x1F947, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

/* Combining marks and zero-width characters (the common blocks). */
static const struct range zero[] = {
    {0x0300, 0x036F},   {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
    {0x0E31, 0x0E31},   {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1160, 0x11FF}, {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF},   {0x200B, 0x200F}, {0x2028, 0x202E}, {0x2060, 0x2064}, {0x20D0, 0x20FF},
    {0x302A, 0x302D},   {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF},
    {0xE0100, 0xE01EF},
};

static bool in_table(const struct range *t, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < t[mid].lo) {
            hi = mid;
        } else if (cp > t[mid].hi) {
            lo = mid + 1;
        } else {
            return true;
        }
    }
    return false;
}

int cli_edbuf_cpwidth(uint32_t cp)
{
    if (cp < 0x300) {
        return 1; /* ASCII, Latin-1 and controls (drawn as one replacement cell) */
    }
    if (in_table(zero, sizeof(zero) / sizeof(zero[0]), cp)) {
        return 0;
    }
    return in_table(wide, sizeof(wide) / sizeof(wide[0]), cp) ? 2 : 1;
}

/* Letters, digits and anything not ASCII, but for spaces and punctuation. */
static bool is_word(uint32_t cp)
{
    if (cp < 0x80) {
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    }
    if (cp == 0xA0 || (cp >= 0xA1 && cp <= 0xBF && cp != 0xAA && cp != 0xB5 && cp != 0xBA) ||
        cp == 0xD7 || cp == 0xF7) {
        return false;
    }
    if ((cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20)) {
        return false; /* general and CJK punctuation, ideographic space, fullwidth signs */
    }
    return true;
}

/* ---- buffer ---- */

static void step_free(struct cli_edbuf_step *s)
{
    free(s->del);
    free(s->ins);
    memset(s, 0, sizeof(*s));
}

static void hist_clear(struct cli_edbuf_hist *h)
{
    for (size_t i = 0; i < h->n; i++) {
        step_free(&h->v[i]);
    }
    h->n = 0;
}

static void hist_free(struct cli_edbuf_hist *h)
{
    hist_clear(h);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

/* Pushes s (taking what it owns) onto h, dropping the oldest step past the limit. */
static int hist_push(struct cli_edbuf_hist *h, struct cli_edbuf_step *s)
{
    if (h->n == CLI_EDBUF_UNDO_MAX) {
        step_free(&h->v[0]);
        memmove(h->v, h->v + 1, (h->n - 1) * sizeof(h->v[0]));
        h->n--;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct cli_edbuf_step *v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = *s;
    memset(s, 0, sizeof(*s));
    return 0;
}

int cli_edbuf_init(struct cli_edbuf *b, const char *text, size_t len)
{
    memset(b, 0, sizeof(*b));
    b->goal = -1;
    b->seal = true;
    if (!proto_utf8_valid(text, len) || memchr(text, '\0', len) != NULL) {
        return PROTO_EINVAL;
    }
    b->cap = len + 64;
    b->text = malloc(b->cap);
    if (b->text == NULL) {
        return PROTO_ENOMEM;
    }
    memcpy(b->text, text, len);
    b->text[len] = '\0';
    b->len = len;
    b->ncp = proto_utf8_count(text, len);
    return 0;
}

void cli_edbuf_free(struct cli_edbuf *b)
{
    free(b->text);
    hist_free(&b->undo);
    hist_free(&b->redo);
    memset(b, 0, sizeof(*b));
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Replaces del_cp code points at pos with ins[0..ins_len) (ins_cp code points). When out
 * is not NULL, the removed text is stored there (malloc'd) with its length in *out_len.
 * op (may be NULL) gets the op. */
static int replace(struct cli_edbuf *b, size_t pos, size_t del_cp, const char *ins, size_t ins_len,
                   size_t ins_cp, char **out, size_t *out_len, struct proto_op *op)
{
    if (pos > b->ncp || del_cp > b->ncp - pos) {
        return PROTO_EINVAL;
    }
    size_t b0 = cli_edbuf_byte(b, pos), b1 = b0;
    for (size_t k = 0; k < del_cp; k++) {
        b1 = next_b(b->text, b->len, b1);
    }
    struct proto_op o;
    proto_op_init(&o);
    if (op && (proto_op_skip(&o, pos) != 0 || proto_op_delete(&o, del_cp) != 0 ||
               proto_op_insert(&o, ins, ins_len) != 0)) {
        proto_op_free(&o);
        return PROTO_ENOMEM;
    }
    o.tail = b->ncp - pos - del_cp;
    char *removed = NULL;
    if (out && (removed = dup_n(b->text + b0, b1 - b0)) == NULL) {
        proto_op_free(&o);
        return PROTO_ENOMEM;
    }
    size_t nlen = b->len - (b1 - b0) + ins_len;
    if (nlen + 1 > b->cap) {
        size_t cap = (nlen + 1) * 2;
        char *t = realloc(b->text, cap);
        if (t == NULL) {
            free(removed);
            proto_op_free(&o);
            return PROTO_ENOMEM;
        }
        b->text = t;
        b->cap = cap;
    }
    memmove(b->text + b0 + ins_len, b->text + b1, b->len - b1 + 1);
    memcpy(b->text + b0, ins, ins_len);
    b->len = nlen;
    b->ncp = b->ncp - del_cp + ins_cp;
    if (out) {
        *out = removed;
        *out_len = b1 - b0;
    }
    if (op) {
        proto_op_free(op);
        *op = o;
    }
    return 0;
}

static void empty_op(struct proto_op *op)
{
    if (op) {
        proto_op_free(op);
    }
}

/* Appends s[0..n) to the owned string *dst of *dst_len bytes, before it when front. */
static int grow_str(char **dst, size_t *dst_len, const char *s, size_t n, bool front)
{
    char *d = realloc(*dst, *dst_len + n + 1);
    if (d == NULL) {
        return PROTO_ENOMEM;
    }
    if (front) {
        memmove(d + n, d, *dst_len + 1);
        memcpy(d, s, n);
    } else {
        memcpy(d + *dst_len, s, n);
        d[*dst_len + n] = '\0';
    }
    *dst = d;
    *dst_len += n;
    return 0;
}

static bool is_space_byte(char c)
{
    return c == ' ' || c == '\n' || c == '\t';
}

int cli_edbuf_insert(struct cli_edbuf *b, const char *s, size_t slen, struct proto_op *op)
{
    if (!proto_utf8_valid(s, slen) || memchr(s, '\0', slen) != NULL) {
        return PROTO_EINVAL;
    }
    if (slen == 0) {
        empty_op(op);
        return 0;
    }
    size_t cps = proto_utf8_count(s, slen), pos = b->cur;
    int rc = replace(b, pos, 0, s, slen, cps, NULL, NULL, op);
    if (rc != 0) {
        return rc;
    }
    b->cur = pos + cps;
    b->goal = -1;
    hist_clear(&b->redo);
    /* Typing joins the last step until a motion, a delete, or a word after a space. */
    struct cli_edbuf_step *top = b->undo.n ? &b->undo.v[b->undo.n - 1] : NULL;
    if (!b->seal && top && top->del_cp == 0 && top->pos + top->ins_cp == pos &&
        !(top->ins_len && is_space_byte(top->ins[top->ins_len - 1]) && !is_space_byte(s[0]))) {
        if (grow_str(&top->ins, &top->ins_len, s, slen, false) == 0) {
            top->ins_cp += cps;
            return 0;
        }
    }
    struct cli_edbuf_step st = {.pos = pos, .ins_cp = cps, .cur_before = pos};
    st.ins = dup_n(s, slen);
    st.del = dup_n("", 0);
    st.ins_len = slen;
    if (st.ins == NULL || st.del == NULL || hist_push(&b->undo, &st) != 0) {
        step_free(&st);
        hist_clear(&b->undo); /* a history with a hole would undo the wrong text */
    }
    b->seal = false;
    return 0;
}

/* Deletes the code point at pos (the cursor goes to pos); back: it was a Backspace. */
static int delete_at(struct cli_edbuf *b, size_t pos, bool back, struct proto_op *op)
{
    size_t cur_before = b->cur;
    char *gone = NULL;
    size_t gone_len = 0;
    int rc = replace(b, pos, 1, "", 0, 0, &gone, &gone_len, op);
    if (rc != 0) {
        return rc;
    }
    b->cur = pos;
    b->goal = -1;
    hist_clear(&b->redo);
    struct cli_edbuf_step *top = b->undo.n ? &b->undo.v[b->undo.n - 1] : NULL;
    if (!b->seal && top && top->ins_cp == 0 &&
        ((back && top->pos == pos + 1) || (!back && top->pos == pos))) {
        if (grow_str(&top->del, &top->del_len, gone, gone_len, back) == 0) {
            top->del_cp++;
            top->pos = pos;
            free(gone);
            return 0;
        }
    }
    struct cli_edbuf_step st = {
        .pos = pos, .del = gone, .del_len = gone_len, .del_cp = 1, .cur_before = cur_before};
    st.ins = dup_n("", 0);
    if (st.ins == NULL || hist_push(&b->undo, &st) != 0) {
        step_free(&st);
        hist_clear(&b->undo);
    }
    b->seal = false;
    return 0;
}

int cli_edbuf_backspace(struct cli_edbuf *b, struct proto_op *op)
{
    if (b->cur == 0) {
        empty_op(op);
        return 0;
    }
    /* A typing step and a deleting step do not join. */
    if (b->undo.n && b->undo.v[b->undo.n - 1].ins_cp != 0) {
        b->seal = true;
    }
    return delete_at(b, b->cur - 1, true, op);
}

int cli_edbuf_delete(struct cli_edbuf *b, struct proto_op *op)
{
    if (b->cur >= b->ncp) {
        empty_op(op);
        return 0;
    }
    if (b->undo.n && b->undo.v[b->undo.n - 1].ins_cp != 0) {
        b->seal = true;
    }
    return delete_at(b, b->cur, false, op);
}

/* True when the text at pos is s[0..n) (cps code points). */
static bool text_is(const struct cli_edbuf *b, size_t pos, const char *s, size_t n, size_t cps)
{
    if (pos > b->ncp || cps > b->ncp - pos) {
        return false;
    }
    size_t b0 = cli_edbuf_byte(b, pos);
    return b->len - b0 >= n && memcmp(b->text + b0, s, n) == 0;
}

int cli_edbuf_undo(struct cli_edbuf *b, struct proto_op *op)
{
    b->seal = true;
    b->goal = -1;
    if (b->undo.n == 0) {
        empty_op(op);
        return 1;
    }
    struct cli_edbuf_step *s = &b->undo.v[b->undo.n - 1];
    if (!text_is(b, s->pos, s->ins, s->ins_len, s->ins_cp)) {
        hist_clear(&b->undo);
        hist_clear(&b->redo);
        empty_op(op);
        return 2;
    }
    int rc = replace(b, s->pos, s->ins_cp, s->del, s->del_len, s->del_cp, NULL, NULL, op);
    if (rc != 0) {
        return rc;
    }
    b->cur = s->cur_before <= b->ncp ? s->cur_before : b->ncp;
    struct cli_edbuf_step moved = *s;
    b->undo.n--;
    if (hist_push(&b->redo, &moved) != 0) {
        step_free(&moved);
        hist_clear(&b->redo);
    }
    return 0;
}

int cli_edbuf_redo(struct cli_edbuf *b, struct proto_op *op)
{
    b->seal = true;
    b->goal = -1;
    if (b->redo.n == 0) {
        empty_op(op);
        return 1;
    }
    struct cli_edbuf_step *s = &b->redo.v[b->redo.n - 1];
    if (!text_is(b, s->pos, s->del, s->del_len, s->del_cp)) {
        hist_clear(&b->undo);
        hist_clear(&b->redo);
        empty_op(op);
        return 2;
    }
    int rc = replace(b, s->pos, s->del_cp, s->ins, s->ins_len, s->ins_cp, NULL, NULL, op);
    if (rc != 0) {
        return rc;
    }
    b->cur = s->pos + s->ins_cp;
    struct cli_edbuf_step moved = *s;
    b->redo.n--;
    if (hist_push(&b->undo, &moved) != 0) {
        step_free(&moved);
        hist_clear(&b->undo);
    }
    return 0;
}

/* Moves the steps of h over op. The start of a step's text (its inserted text on the undo
 * side, its removed text on the redo side) is the position of its first character, so text
 * inserted just before it pushes it on (a bare position would stay before that text). */
static void hist_transform(struct cli_edbuf_hist *h, const struct proto_op *op, bool undo)
{
    for (size_t i = 0; i < h->n; i++) {
        struct cli_edbuf_step *st = &h->v[i];
        if ((undo ? st->ins_cp : st->del_cp) > 0) {
            st->pos = proto_op_transform_pos(st->pos + 1, op) - 1;
        } else {
            st->pos = proto_op_transform_pos(st->pos, op);
        }
        st->cur_before = proto_op_transform_pos(st->cur_before, op);
    }
}

int cli_edbuf_remote(struct cli_edbuf *b, const char *text, size_t len, const struct proto_op *op)
{
    if (proto_op_check(op, b->ncp) != 0 || !proto_utf8_valid(text, len)) {
        return PROTO_EINVAL;
    }
    if (len + 1 > b->cap) {
        char *t = realloc(b->text, len + 64);
        if (t == NULL) {
            return PROTO_ENOMEM;
        }
        b->text = t;
        b->cap = len + 64;
    }
    memcpy(b->text, text, len);
    b->text[len] = '\0';
    b->len = len;
    b->cur = proto_op_transform_pos(b->cur, op);
    b->ncp = proto_utf8_count(text, len);
    if (b->cur > b->ncp) {
        b->cur = b->ncp;
    }
    /* Steps are kept with their positions moved; undo checks their text is still there. */
    hist_transform(&b->undo, op, true);
    hist_transform(&b->redo, op, false);
    b->seal = true;
    return 0;
}

/* ---- motion ---- */

void cli_edbuf_set_cursor(struct cli_edbuf *b, size_t pos)
{
    b->cur = pos <= b->ncp ? pos : b->ncp;
    b->goal = -1;
    b->seal = true;
}

void cli_edbuf_left(struct cli_edbuf *b)
{
    cli_edbuf_set_cursor(b, b->cur ? b->cur - 1 : 0);
}

void cli_edbuf_right(struct cli_edbuf *b)
{
    cli_edbuf_set_cursor(b, b->cur + 1);
}

void cli_edbuf_word_right(struct cli_edbuf *b)
{
    size_t i = cli_edbuf_byte(b, b->cur), pos = b->cur, nx = 0;
    while (i < b->len && !is_word(decode(b->text, b->len, i, &nx))) {
        i = nx;
        pos++;
    }
    while (i < b->len && is_word(decode(b->text, b->len, i, &nx))) {
        i = nx;
        pos++;
    }
    cli_edbuf_set_cursor(b, pos);
}

void cli_edbuf_word_left(struct cli_edbuf *b)
{
    size_t i = cli_edbuf_byte(b, b->cur), pos = b->cur, nx = 0;
    while (i > 0 && !is_word(decode(b->text, b->len, prev_b(b->text, i), &nx))) {
        i = prev_b(b->text, i);
        pos--;
    }
    while (i > 0 && is_word(decode(b->text, b->len, prev_b(b->text, i), &nx))) {
        i = prev_b(b->text, i);
        pos--;
    }
    cli_edbuf_set_cursor(b, pos);
}

/* ---- layout ---- */

static int add_row(struct cli_edbuf_layout *lay, const struct cli_edbuf_row *r)
{
    if (lay->n == lay->cap) {
        size_t cap = lay->cap ? lay->cap * 2 : 64;
        struct cli_edbuf_row *v = realloc(lay->rows, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        lay->rows = v;
        lay->cap = cap;
    }
    lay->rows[lay->n++] = *r;
    return 0;
}

int cli_edbuf_layout(const struct cli_edbuf *b, int width, struct cli_edbuf_layout *lay)
{
    if (width < 2) {
        width = 2;
    }
    lay->n = 0;
    lay->width = width;
    size_t i = 0, pos = 0; /* byte, code point */
    for (;;) {
        /* One row from (i, pos). */
        struct cli_edbuf_row r = {.start = pos, .bstart = i};
        int col = 0;
        size_t sp = 0, sp_b = 0; /* just after the last space that fits; 0: none */
        int sp_col = 0;
        bool brk = false;
        while (i < b->len && b->text[i] != '\n') {
            size_t nx = 0;
            uint32_t cp = decode(b->text, b->len, i, &nx);
            int w = cli_edbuf_cpwidth(cp);
            if (col + w > width && pos > r.start) {
                brk = true;
                if (cp == ' ') { /* a space that does not fit hangs at the row's end */
                    i = nx;
                    pos++;
                    sp = 0;
                }
                break;
            }
            col += w;
            i = nx;
            pos++;
            if (cp == ' ' || cp == '\t' || cp == 0x3000) {
                sp = pos;
                sp_b = i;
                sp_col = col;
            }
        }
        if (brk && sp > r.start) {
            /* Back to just after the last space: the word goes to the next row whole. */
            pos = sp;
            i = sp_b;
            col = sp_col;
        }
        r.end = pos;
        r.bend = i;
        r.width = col;
        r.last = !brk;
        if (add_row(lay, &r) != 0) {
            return PROTO_ENOMEM;
        }
        if (!brk) {
            if (i >= b->len) {
                break;
            }
            i++; /* the newline */
            pos++;
        }
    }
    return 0;
}

void cli_edbuf_layout_free(struct cli_edbuf_layout *lay)
{
    free(lay->rows);
    memset(lay, 0, sizeof(*lay));
}

/* Columns of b's code points [r->start, pos), pos within row r. */
static int cols_to(const struct cli_edbuf *b, const struct cli_edbuf_row *r, size_t pos)
{
    size_t i = r->bstart, nx = 0;
    int col = 0;
    for (size_t k = r->start; k < pos && i < r->bend; k++) {
        col += cli_edbuf_cpwidth(decode(b->text, b->len, i, &nx));
        i = nx;
    }
    return col;
}

void cli_edbuf_locate(const struct cli_edbuf *b, const struct cli_edbuf_layout *lay, size_t pos,
                      size_t *row, int *col)
{
    size_t lo = 0, hi = lay->n; /* the last row that starts at or before pos */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (lay->rows[mid].start <= pos) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    *row = lo;
    *col = lay->n ? cols_to(b, &lay->rows[lo], pos) : 0;
}

/* The code point of row r nearest to column goal from the left. */
static size_t pos_at_col(const struct cli_edbuf *b, const struct cli_edbuf_row *r, int goal)
{
    size_t i = r->bstart, pos = r->start, nx = 0;
    size_t limit = r->last ? r->end : r->end - 1; /* a wrapped row's end is the next row's */
    int col = 0;
    while (pos < limit && i < r->bend) {
        int w = cli_edbuf_cpwidth(decode(b->text, b->len, i, &nx));
        if (col + w > goal) {
            break;
        }
        col += w;
        i = nx;
        pos++;
    }
    return pos;
}

void cli_edbuf_vertical(struct cli_edbuf *b, const struct cli_edbuf_layout *lay, long rows)
{
    if (lay->n == 0) {
        return;
    }
    size_t row = 0;
    int col = 0;
    cli_edbuf_locate(b, lay, b->cur, &row, &col);
    int goal = b->goal >= 0 ? b->goal : col;
    long target = (long)row + rows;
    if (target < 0) {
        target = 0;
    }
    if (target >= (long)lay->n) {
        target = (long)lay->n - 1;
    }
    cli_edbuf_set_cursor(b, pos_at_col(b, &lay->rows[target], goal));
    b->goal = goal;
}

void cli_edbuf_home(struct cli_edbuf *b, const struct cli_edbuf_layout *lay)
{
    size_t row = 0;
    int col = 0;
    if (lay->n) {
        cli_edbuf_locate(b, lay, b->cur, &row, &col);
        cli_edbuf_set_cursor(b, lay->rows[row].start);
    }
}

void cli_edbuf_end(struct cli_edbuf *b, const struct cli_edbuf_layout *lay)
{
    size_t row = 0;
    int col = 0;
    if (lay->n) {
        cli_edbuf_locate(b, lay, b->cur, &row, &col);
        const struct cli_edbuf_row *r = &lay->rows[row];
        cli_edbuf_set_cursor(b, r->last ? r->end : r->end - 1);
    }
}
