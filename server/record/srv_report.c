/* srv_report.c - a meeting report as text: import (parse) and export (render).
 *
 * Import works on lines. One pass copies the text into normalised lines (CRLF, Word's
 * bookmarks, trailing blanks and "·" bullets are dealt with once, here), a second splits
 * them into numbered sections, and each kind of object then has its own small scanner over
 * those lines. A scanner looks a bounded number of bytes ahead of a position, and every
 * type has a cap on the objects one import makes, so a hostile 4 MiB text costs time and
 * memory about linear in its size.
 *
 * The prose of a report does not state every field (an action's owner, a doc's title), so
 * the text export ends with an annex, "Annex: record", that lists the record's objects one
 * a line, columns apart by tabs, in the order of the schema's fields (export_annex shows
 * the layout). When a text has the annex, the annex alone gives the meeting's fields
 * (the abstract aside) and every object but the items: items (number, title, body) and the
 * abstract are still read from the prose, and nothing else is inferred from it.
 */
#include "srv_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_err.h"

#define MAX_LINES  200000        /* non-empty lines of one report (a real one has < 5,000) */
#define MAX_OBJS   10000         /* objects of one type one import makes */
#define TEXT_MAX   (1024 * 1024) /* bytes of a text field (PROTOCOL.md section 10) */
#define LOOK       256           /* bytes a scanner looks ahead for a closing mark */
#define NAME_WORDS 6             /* words of a person's name */
#define KEY_MAX    1200          /* bytes of a de-duplication key */
#define ANNEX_MARK "Annex: record"
#define ANNEX_COLS (PROTO_MAX_FIELDS + 2) /* columns of an annex line, at most */
#define ANNEX_LINE (2 * TEXT_MAX + 8192)  /* bytes of an annex line: a text, all escapes */
#define NOT_ITEM   "not-an-item"          /* the annex's "that section is not an item" */

enum lkind {
    L_PRE,    /* before the first section */
    L_HEAD,   /* "N<TAB>Title" */
    L_BODY,   /* part of its item's body */
    L_ACTION, /* part of an action's text */
    L_ANNEX,  /* a line of the annex, as it is in the text but for a CR at its end */
};

struct line {
    const char *s; /* NUL-terminated, in the normalised copy */
    size_t len;
    size_t no;   /* 1-based line number in the input */
    size_t sect; /* index of its section (not for L_PRE) */
    enum lkind kind;
};

struct sect {
    size_t head;          /* line index of the heading */
    size_t first, end;    /* lines of the section after the heading: [first, end) */
    struct srv_obj *item; /* NULL when the annex says the section is not an item */
    bool skip;            /* the annex says so ("not-an-item") */
};

/* A sorted set of strings, for "seen before?" in O(log n). */
struct keyset {
    char **v;
    size_t n, cap;
};

struct imp {
    struct srv_rec *rec;
    char *buf; /* the normalised lines */
    struct line *lines;
    size_t nlines;
    struct sect *sects;
    size_t nsects;
    size_t annex_at;     /* offset of the annex's first line in the text, or SIZE_MAX */
    bool annex;          /* the text has an annex: it gives the objects, the prose does not */
    bool full;           /* a Markdown export: its annex gives everything, items too */
    struct line *alines; /* the annex's lines */
    size_t nalines;
    int64_t next_id;
    struct keyset keys[PROTO_T_COUNT];
    struct keyset bare;  /* "TD258\tTSAG": the prefixes seen with each document number */
    struct keyset arefs; /* the annex's action refs as the prose shows them */
    int start_y, start_m, end_y;
    char *err;
    size_t errlen;
};

/* ---- characters (ASCII only: the locale must not change what a report means) ---- */

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alpha(int c)
{
    return is_upper(c) || is_lower(c);
}

static bool is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int lower(int c)
{
    return is_upper(c) ? c - 'A' + 'a' : c;
}

static unsigned char at(const char *s, size_t n, size_t i)
{
    return i < n ? (unsigned char)s[i] : 0;
}

/* True when s[0..n) starts with lit[0..k), ignoring ASCII case. */
static bool starts_ci_n(const char *s, size_t n, const char *lit, size_t k)
{
    if (k > n) {
        return false;
    }
    for (size_t i = 0; i < k; i++) {
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i])) {
            return false;
        }
    }
    return true;
}

/* True when s[0..n) starts with lit, ignoring ASCII case. */
static bool starts_ci(const char *s, size_t n, const char *lit)
{
    return starts_ci_n(s, n, lit, strlen(lit));
}

/* Offset of lit (short) in s[0..n) ignoring ASCII case, or n. The scanners run this over
 * every line for several words: lit's length is taken once and its first byte checked
 * before the rest. */
static size_t find_ci(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    int c0 = lower((unsigned char)lit[0]);

    if (k == 0) {
        return 0;
    }
    for (size_t i = 0; k <= n && i <= n - k; i++) {
        if (lower((unsigned char)s[i]) == c0 && starts_ci_n(s + i, n - i, lit, k)) {
            return i;
        }
    }
    return n;
}

/* Offset of the word lit in s[0..n) from from, or n (ASCII case ignored; no letter may
 * touch it on either side). */
static size_t find_word_ci(const char *s, size_t n, const char *lit, size_t from)
{
    size_t k = strlen(lit);
    int c0 = lower((unsigned char)lit[0]);

    for (size_t i = from; k <= n && i <= n - k; i++) {
        if ((k == 0 || lower((unsigned char)s[i]) == c0) && starts_ci_n(s + i, n - i, lit, k) &&
            (i == 0 || !is_alpha((unsigned char)s[i - 1])) && !is_alpha(at(s, n, i + k))) {
            return i;
        }
    }
    return n;
}

static size_t skip_spaces(const char *s, size_t n, size_t i)
{
    while (i < n && s[i] == ' ') {
        i++;
    }
    return i;
}

/* Length of s[0..n) cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) {
        max--;
    }
    return max;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_space((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((unsigned char)(*s)[*n - 1])) {
        (*n)--;
    }
}

/* ---- errors, keys, objects ---- */

__attribute__((format(printf, 4, 5))) static int fail(struct imp *im, int rc, size_t line,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (im->err == NULL || im->errlen == 0) {
        return rc;
    }
    if (line > 0) {
        n = snprintf(im->err, im->errlen, "line %zu: ", line);
    }
    if (n >= 0 && (size_t)n < im->errlen) {
        va_start(ap, fmt);
        vsnprintf(im->err + n, im->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int nomem(struct imp *im)
{
    return fail(im, PROTO_ENOMEM, 0, "out of memory");
}

static size_t keyset_lower(const struct keyset *ks, const char *key)
{
    size_t lo = 0, hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ks->v[mid], key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool keyset_has(const struct keyset *ks, const char *key)
{
    size_t pos = keyset_lower(ks, key);
    return pos < ks->n && strcmp(ks->v[pos], key) == 0;
}

/* Adds key; returns 1 when added, 0 when it was there, PROTO_ENOMEM. */
static int keyset_add(struct keyset *ks, const char *key)
{
    size_t pos = keyset_lower(ks, key);
    char *copy = NULL;

    if (pos < ks->n && strcmp(ks->v[pos], key) == 0) {
        return 0;
    }
    if (ks->n == ks->cap) {
        size_t ncap = ks->cap ? ks->cap * 2 : 16;
        char **nv = realloc(ks->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return PROTO_ENOMEM;
        }
        ks->v = nv;
        ks->cap = ncap;
    }
    copy = strdup(key);
    if (copy == NULL) {
        return PROTO_ENOMEM;
    }
    memmove(&ks->v[pos + 1], &ks->v[pos], (ks->n - pos) * sizeof(*ks->v));
    ks->v[pos] = copy;
    ks->n++;
    return 1;
}

static void keyset_free(struct keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->v[i]);
    }
    free(ks->v);
    memset(ks, 0, sizeof(*ks));
}

/* Makes an object of type t with the next local id and adds it to the record. */
static int new_obj(struct imp *im, enum proto_type t, size_t line, struct srv_obj **out)
{
    struct srv_obj *o = NULL;
    int rc = 0;

    *out = NULL;
    if (im->rec->objs[t].n >= MAX_OBJS) {
        return fail(im, PROTO_ETOOBIG, line, "more than %d %s", MAX_OBJS,
                    proto_type_info(t)->plural);
    }
    o = srv_obj_new(t);
    if (o == NULL) {
        return nomem(im);
    }
    o->id = im->next_id++;
    rc = srv_rec_add(im->rec, o);
    if (rc < 0) {
        srv_obj_free(o);
        return rc == PROTO_ENOMEM ? nomem(im) : rc;
    }
    *out = o;
    return 0;
}

static struct srv_val *field(const struct srv_obj *o, const char *name)
{
    int k = proto_field_find(o->type, name, strlen(name));
    return k < 0 ? NULL : (struct srv_val *)&o->f[k];
}

/* Sets a string field; a short (STR) field longer than the schema allows is cut at a
 * character boundary, as the server would refuse it whole. */
static int set_str(struct imp *im, struct srv_obj *o, const char *name, const char *s, size_t n)
{
    int k = proto_field_find(o->type, name, strlen(name));
    const struct proto_field *fd = NULL;

    if (k < 0) {
        return PROTO_EINVAL;
    }
    fd = &proto_type_info(o->type)->fields[k];
    if (fd->kind == PROTO_F_STR) {
        n = utf8_cut(s, n, fd->max ? fd->max : PROTO_STR_MAX);
    }
    if (srv_val_set_str(&o->f[k], s, n) < 0) {
        return nomem(im);
    }
    return 0;
}

static int set_cstr(struct imp *im, struct srv_obj *o, const char *name, const char *s)
{
    return set_str(im, o, name, s, strlen(s));
}

static int set_text(struct imp *im, struct srv_obj *o, const char *name, const struct proto_buf *b,
                    size_t line)
{
    if (b->len > TEXT_MAX) {
        return fail(im, PROTO_ETOOBIG, line, "%s %s over %d bytes", proto_type_info(o->type)->name,
                    name, TEXT_MAX);
    }
    return set_str(im, o, name, (const char *)b->data, b->len);
}

/* Appends a line to a text being built, "\n" between lines. */
static int add_line(struct imp *im, struct proto_buf *b, const char *s, size_t n)
{
    if (b->len > TEXT_MAX) {
        return 0; /* set_text reports it with the line */
    }
    if ((b->len > 0 && proto_buf_append(b, "\n", 1) < 0) || proto_buf_append(b, s, n) < 0) {
        return nomem(im);
    }
    return 0;
}

/* ---- dates and times ---- */

struct dmy {
    int d, m, y; /* m, y: 0 when absent */
};

static size_t parse_num(const char *s, size_t n, size_t maxdig, int *v)
{
    size_t i = 0;
    *v = 0;
    while (i < n && is_digit((unsigned char)s[i])) {
        if (i == maxdig) {
            return 0;
        }
        *v = *v * 10 + (s[i] - '0');
        i++;
    }
    return i;
}

static size_t parse_day(const char *s, size_t n, int *d)
{
    size_t k = parse_num(s, n, 2, d);
    return k > 0 && *d >= 1 && *d <= 31 ? k : 0;
}

static size_t parse_year(const char *s, size_t n, int *y)
{
    size_t k = parse_num(s, n, 4, y);
    return k == 4 && *y >= 1900 && *y <= 2999 ? k : 0;
}

static size_t parse_month(const char *s, size_t n, int *m)
{
    static const char *const names[] = {"january",   "february", "march",    "april",
                                        "may",       "june",     "july",     "august",
                                        "september", "october",  "november", "december"};
    size_t k = 0;

    while (k < n && k < 10 && is_alpha((unsigned char)s[k])) {
        k++;
    }
    if (k < 3 || (k < n && is_alpha((unsigned char)s[k]))) {
        return 0;
    }
    for (int i = 0; i < 12; i++) {
        size_t full = strlen(names[i]);
        bool same = k == full || k == 3 || (i == 8 && k == 4); /* "Sept" */
        for (size_t j = 0; same && j < k; j++) {
            same = lower((unsigned char)s[j]) == names[i][j];
        }
        if (same) {
            *m = i + 1;
            /* "Sept." and "Dec.": an abbreviation may carry its full stop. */
            return k < full && k < n && s[k] == '.' ? k + 1 : k;
        }
    }
    return 0;
}

/* "D Month [YYYY]" at s (no letter or digit just before it is the caller's check). */
static size_t parse_date(const char *s, size_t n, struct dmy *out)
{
    size_t i = parse_day(s, n, &out->d), j = 0, k = 0;

    out->m = out->y = 0;
    if (i == 0 || i >= n || s[i] != ' ') {
        return 0;
    }
    j = skip_spaces(s, n, i);
    k = parse_month(s + j, n - j, &out->m);
    if (k == 0) {
        return 0;
    }
    i = j + k;
    j = skip_spaces(s, n, i);
    if (j > i && (k = parse_year(s + j, n - j, &out->y)) > 0 && !is_digit(at(s, n, j + k))) {
        i = j + k;
    } else {
        out->y = 0;
    }
    return i;
}

static bool dmy_str(const struct dmy *d, char out[11])
{
    if (d->y == 0 || d->m == 0) {
        return false;
    }
    snprintf(out, 11, "%04d-%02d-%02d", d->y, d->m, d->d);
    return proto_date_valid(out, 10);
}

/* A dash between two values: "-", "–", "—" or "to", spaces around allowed. */
static size_t parse_dash(const char *s, size_t n)
{
    size_t i = skip_spaces(s, n, 0);
    if (i < n && s[i] == '-') {
        i++;
    } else if (starts_ci(s + i, n - i, "\xe2\x80\x93") || starts_ci(s + i, n - i, "\xe2\x80\x94")) {
        i += 3;
    } else if (i > 0 && starts_ci(s + i, n - i, "to ")) {
        i += 2;
    } else {
        return 0;
    }
    return skip_spaces(s, n, i);
}

/* "30 May-2 June 2023", "3-5 May 2023", "30 May 2023". */
static size_t parse_range(const char *s, size_t n, struct dmy *a, struct dmy *b)
{
    size_t i = parse_day(s, n, &a->d), j = 0, k = 0;

    a->m = a->y = 0;
    if (i == 0) {
        return 0;
    }
    if (i < n && s[i] == ' ') {
        k = parse_date(s, n, a);
        if (k > 0) {
            i = k;
        }
    }
    j = parse_dash(s + i, n - i);
    if (j == 0 || (k = parse_date(s + i + j, n - i - j, b)) == 0 || b->y == 0) {
        if (a->m == 0 || a->y == 0) {
            return 0;
        }
        *b = *a;
        return i;
    }
    if (a->m == 0) {
        a->m = b->m;
    }
    if (a->y == 0) {
        a->y = b->y;
    }
    return i + j + k;
}

/* "1615", "16:15" or "16h15" into "16:15". */
static size_t parse_time(const char *s, size_t n, char out[6])
{
    int h = 0, m = 0;
    size_t k = parse_num(s, n, 4, &h);

    if (k == 4) {
        m = h % 100;
        h /= 100;
    } else if (k >= 1 && k <= 2 && k < n && (s[k] == ':' || s[k] == 'h' || s[k] == '.') &&
               parse_num(s + k + 1, n - k - 1, 2, &m) == 2) {
        k += 3;
    } else {
        return 0;
    }
    if (h > 23 || m > 59 || is_alnum(at(s, n, k))) {
        return 0;
    }
    snprintf(out, 6, "%02d:%02d", h, m);
    return k;
}

/* "1615-1730", with " hours" or " hrs" after it allowed. */
static size_t parse_times(const char *s, size_t n, char a[6], char b[6])
{
    size_t i = parse_time(s, n, a), j = 0, k = 0;

    if (i == 0 || (j = parse_dash(s + i, n - i)) == 0 ||
        (k = parse_time(s + i + j, n - i - j, b)) == 0) {
        return 0;
    }
    i += j + k;
    if (starts_ci(s + i, n - i, " hours")) {
        i += 6;
    } else if (starts_ci(s + i, n - i, " hrs")) {
        i += 4;
    }
    return i;
}

/* The year of a date given without one: the meeting's, or its end's when the meeting
 * crosses a new year and the month is early. */
static int year_for(const struct imp *im, int month)
{
    if (im->end_y > im->start_y && month < im->start_m) {
        return im->end_y;
    }
    return im->start_y;
}

/* ---- lines and sections ---- */

static bool bookmark_at(const char *s, size_t n, size_t i, size_t *end)
{
    if (!starts_ci(s + i, n - i, "[bookmark:")) {
        return false;
    }
    for (size_t k = i + 10; k < n && k < i + LOOK; k++) {
        if (s[k] == ']') {
            *end = k + 1;
            return true;
        }
        if (s[k] == '[') {
            return false;
        }
    }
    return false;
}

/* Copies one raw line into out, normalised; returns its length. */
static size_t normalise(const char *s, size_t n, char *out)
{
    size_t o = 0, lead = 0, mark = 0;

    for (size_t i = 0; i < n;) {
        size_t end = 0;
        if (s[i] == '[' && bookmark_at(s, n, i, &end)) {
            i = end;
            continue;
        }
        out[o++] = s[i++];
    }
    /* Trailing blanks, no-break spaces included (Word leaves them). */
    for (;;) {
        if (o > 0 && is_space((unsigned char)out[o - 1])) {
            o--;
        } else if (o > 1 && (unsigned char)out[o - 2] == 0xc2 &&
                   (unsigned char)out[o - 1] == 0xa0) {
            o -= 2;
        } else {
            break;
        }
    }
    while (lead < o && is_space((unsigned char)out[lead])) {
        lead++;
    }
    if (starts_ci(out + lead, o - lead, "\xc2\xb7")) {
        mark = 2;
    } else if (starts_ci(out + lead, o - lead, "\xe2\x80\xa2")) {
        mark = 3;
    }
    if (mark > 0) {
        size_t rest = lead + mark;
        while (rest < o && is_space((unsigned char)out[rest])) {
            rest++;
        }
        if (rest == o) {
            return 0;
        }
        /* "- " is never longer than the mark and the blanks it replaces. */
        memmove(out + 2, out + rest, o - rest);
        out[0] = '-';
        out[1] = ' ';
        o = 2 + (o - rest);
    }
    return o;
}

/* "N<TAB>Title" (or Word's "N.<TAB>Title"): the number's length, or 0. */
static size_t heading(const char *s, size_t n, const char **title, size_t *tlen)
{
    size_t i = 0, num = 0;

    while (i < n && i <= 33 && (is_digit((unsigned char)s[i]) || s[i] == '.')) {
        i++;
    }
    num = i > 1 && s[i - 1] == '.' ? i - 1 : i;
    if (num == 0 || num > 32 || i >= n || s[i] != '\t' || !proto_number_valid(s, num)) {
        return 0;
    }
    *title = s + i + 1;
    *tlen = n - i - 1;
    trim(title, tlen);
    if (*tlen == 0 || *tlen > 500) {
        return 0;
    }
    return num;
}

/* The last line of an export; an import ignores it wherever it is. */
static bool audit_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_space((unsigned char)s[i])) {
        i++;
    }
    return starts_ci(s + i, n - i, "Audit head: seq ");
}

/* Where the annex starts: the offset of the last line that reads "Annex: record" (blanks
 * after it allowed), or SIZE_MAX. The last one, because a body may quote the mark and the
 * annex never holds it (its lines start with a type or "#"). */
static size_t annex_find(const char *text, size_t len)
{
    size_t at = SIZE_MAX, a = 0, mlen = strlen(ANNEX_MARK);

    while (a < len) {
        const char *nl = memchr(text + a, '\n', len - a);
        size_t b = nl ? (size_t)(nl - text) : len, n = b - a;
        while (n > 0 && is_space((unsigned char)text[a + n - 1])) {
            n--;
        }
        if (n == mlen && memcmp(text + a, ANNEX_MARK, mlen) == 0) {
            at = a;
        }
        a = b + 1;
    }
    return at;
}

/* A new line at the end of *v (n lines, room for *cap); NULL when out of memory. */
static struct line *push_line(struct line **v, size_t n, size_t *cap)
{
    if (n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 256;
        struct line *nv = realloc(*v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return NULL;
        }
        *v = nv;
        *cap = ncap;
    }
    memset(&(*v)[n], 0, sizeof(**v));
    return &(*v)[n];
}

/* Copies a line of the annex as it is: its values may end in blanks or hold "[bookmark:". */
static int annex_copy(struct imp *im, const char *s, size_t n, size_t no, size_t *o, size_t *cap)
{
    struct line *ln = NULL;
    size_t lead = 0;

    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    while (lead < n && is_space((unsigned char)s[lead])) {
        lead++;
    }
    if (lead == n || audit_line(s, n) || (n - lead >= 3 && memcmp(s + lead, "```", 3) == 0) ||
        starts_ci(s + lead, n - lead, "</pre>")) {
        return 0; /* the fence around the annex of a Markdown export */
    }
    if (im->nlines + im->nalines == MAX_LINES) {
        return fail(im, PROTO_ETOOBIG, no, "more than %d lines of text", MAX_LINES);
    }
    ln = push_line(&im->alines, im->nalines, cap);
    if (ln == NULL) {
        return nomem(im);
    }
    memcpy(im->buf + *o, s, n);
    im->buf[*o + n] = '\0';
    ln->s = im->buf + *o;
    ln->len = n;
    ln->no = no;
    ln->kind = L_ANNEX;
    im->nalines++;
    *o += n + 1;
    return 0;
}

static int split_lines(struct imp *im, const char *text, size_t len)
{
    size_t no = 0, o = 0, a = 0, lines_cap = 0, sects_cap = 0, alines_cap = 0;
    int rc = 0;

    im->buf = malloc(len + 1);
    if (im->buf == NULL) {
        return nomem(im);
    }
    im->annex_at = annex_find(text, len);
    while (a <= len) {
        const char *nl = a < len ? memchr(text + a, '\n', len - a) : NULL;
        size_t b = nl ? (size_t)(nl - text) : len, n = 0, from = a;
        const char *title = NULL;
        size_t tlen = 0;
        struct line *ln = NULL;

        no++;
        a = b + 1;
        if (!proto_utf8_valid(text + from, b - from)) {
            return fail(im, PROTO_EINVAL, no, "not valid UTF-8");
        }
        if (from == im->annex_at) {
            im->annex = true;
            continue;
        }
        if (im->annex) {
            if ((rc = annex_copy(im, text + from, b - from, no, &o, &alines_cap)) < 0) {
                return rc;
            }
            continue;
        }
        if (im->full) {
            continue; /* the annex gives everything; the prose is for people */
        }
        n = normalise(text + from, b - from, im->buf + o);
        if (n == 0 || audit_line(im->buf + o, n)) {
            continue;
        }
        if (im->nlines + im->nalines == MAX_LINES) {
            return fail(im, PROTO_ETOOBIG, no, "more than %d lines of text", MAX_LINES);
        }
        ln = push_line(&im->lines, im->nlines, &lines_cap);
        if (ln == NULL) {
            return nomem(im);
        }
        ln->s = im->buf + o;
        ln->len = n;
        ln->no = no;
        im->buf[o + n] = '\0';
        o += n + 1;
        if (heading(ln->s, n, &title, &tlen) > 0) {
            if (im->nsects == MAX_OBJS) {
                return fail(im, PROTO_ETOOBIG, no, "more than %d items", MAX_OBJS);
            }
            if (im->nsects == sects_cap) {
                size_t ncap = sects_cap ? 2 * sects_cap : 32;
                struct sect *ns = realloc(im->sects, ncap * sizeof(*ns));
                if (ns == NULL) {
                    return nomem(im);
                }
                im->sects = ns;
                sects_cap = ncap;
            }
            if (im->nsects > 0) {
                im->sects[im->nsects - 1].end = im->nlines;
            }
            memset(&im->sects[im->nsects], 0, sizeof(*im->sects));
            im->sects[im->nsects].head = im->nlines;
            im->sects[im->nsects].first = im->nlines + 1;
            im->nsects++;
            ln->kind = L_HEAD;
        } else {
            ln->kind = im->nsects > 0 ? L_BODY : L_PRE;
        }
        ln->sect = im->nsects > 0 ? im->nsects - 1 : 0;
        im->nlines++;
    }
    if (im->full) {
        return 0;
    }
    if (im->nsects == 0) {
        return fail(im, PROTO_EINVAL, no,
                    "no numbered section (a line \"N<TAB>Title\"): a report is read in the "
                    "layout of the sample report, or as a text or Markdown export of confer "
                    "(with its \"" ANNEX_MARK "\")");
    }
    im->sects[im->nsects - 1].end = im->nlines;
    return 0;
}

static int64_t item_id(const struct imp *im, const struct line *ln)
{
    return ln->kind == L_PRE ? 0 : im->sects[ln->sect].item->id;
}

/* ---- items and actions ---- */

/* "Action from RG-IEM to WP2", "Actions": the title of a section of actions. The group
 * ("from") and addressee ("to") are returned when given. */
static bool action_title(const char *t, size_t n, const char **from, size_t *flen, const char **to,
                         size_t *tlen)
{
    size_t i = 6, f = 0, k = 0;

    *from = *to = NULL;
    *flen = *tlen = 0;
    if (!starts_ci(t, n, "action")) {
        return false;
    }
    if (i < n && lower((unsigned char)t[i]) == 's') {
        i++;
    }
    if (i < n && t[i] == ':') {
        i++;
    }
    i = skip_spaces(t, n, i);
    if (i == n || starts_ci(t + i, n - i, "items") || starts_ci(t + i, n - i, "list")) {
        return true;
    }
    if (starts_ci(t + i, n - i, "from ")) {
        f = i + 5;
        k = find_ci(t + f, n - f, " to ");
        *from = t + f;
        *flen = k;
        trim(from, flen);
        i = f + k + (f + k < n ? 1 : 0);
    }
    if (starts_ci(t + i, n - i, "to ")) {
        *to = t + i + 3;
        *tlen = n - i - 3;
        trim(to, tlen);
        return true;
    }
    return f > 0 || starts_ci(t + i, n - i, "for ");
}

static size_t prefix_max(void)
{
    const struct proto_typeinfo *ti = proto_type_info(PROTO_T_MEETING);
    return ti->fields[proto_field_find(PROTO_T_MEETING, "action_prefix", 13)].max;
}

/* "RG-IEM-4: text": the length of the ref before the colon, or 0. */
static size_t action_ref(const char *s, size_t n)
{
    size_t i = 0, dash = 0;

    if (n == 0 || !is_alpha((unsigned char)s[0])) {
        return 0;
    }
    while (i < n && i <= 64 && (is_alnum((unsigned char)s[i]) || s[i] == '-')) {
        if (s[i] == '-') {
            dash = i;
        }
        i++;
    }
    if (i >= n || i > 64 || s[i] != ':' || dash == 0 || dash + 1 == i || i - dash - 1 > 9) {
        return 0;
    }
    for (size_t k = dash + 1; k < i; k++) {
        if (!is_digit((unsigned char)s[k])) {
            return 0;
        }
    }
    return i;
}

static int make_items(struct imp *im)
{
    int rc = 0;

    for (size_t k = 0; k < im->nsects; k++) {
        const struct line *ln = &im->lines[im->sects[k].head];
        const char *title = NULL;
        size_t tlen = 0, nlen = heading(ln->s, ln->len, &title, &tlen);
        struct srv_obj *o = NULL;

        if (im->sects[k].skip) {
            continue;
        }
        if ((rc = new_obj(im, PROTO_T_ITEM, ln->no, &o)) < 0 ||
            (rc = set_str(im, o, "number", ln->s, nlen)) < 0 ||
            (rc = set_str(im, o, "title", title, tlen)) < 0) {
            return rc;
        }
        im->sects[k].item = o;
    }
    return 0;
}

static int finish_action(struct imp *im, struct srv_obj *a, struct proto_buf *text, size_t no)
{
    int rc = 0;
    if (a != NULL) {
        rc = set_text(im, a, "text", text, no);
    }
    text->len = 0;
    return rc;
}

static int annex_action(struct imp *im, const char *s, size_t n, bool *starts);

/* Splits each section into its body and, in a section of actions, its actions; sets the
 * meeting's group and action prefix from the first section of actions. With an annex, the
 * actions (and the group) are the annex's: a section's actions start at its first line
 * "REF: ..." for a ref of the annex not seen before, and all lines from there on are theirs. */
static int make_bodies(struct imp *im)
{
    struct proto_buf body = {0}, text = {0};
    int rc = 0;

    for (size_t k = 0; k < im->nsects && rc == 0; k++) {
        struct sect *sc = &im->sects[k];
        const struct line *head = &im->lines[sc->head];
        const char *title = NULL, *from = NULL, *to = NULL;
        size_t tlen = 0, flen = 0, tolen = 0;
        struct srv_obj *cur = NULL;
        size_t cur_no = 0;
        bool acts = false, in_act = false;

        heading(head->s, head->len, &title, &tlen);
        acts = action_title(title, tlen, &from, &flen, &to, &tolen);
        if (acts && flen > 0 && !im->annex && !field(&im->rec->meeting, "group")->set) {
            rc = set_str(im, &im->rec->meeting, "group", from, flen);
        }
        body.len = 0;
        for (size_t i = sc->first; i < sc->end && rc == 0; i++) {
            struct line *ln = &im->lines[i];
            const char *p = ln->s;
            size_t n = ln->len, r = 0;
            char key[80];

            if (!acts) {
                rc = add_line(im, &body, ln->s, ln->len);
                continue;
            }
            if (n >= 2 && p[0] == '-' && p[1] == ' ') {
                p += 2;
                n -= 2;
            }
            if (im->annex) {
                bool starts = false;
                rc = annex_action(im, p, n, &starts);
                in_act = in_act || starts;
                if (in_act) {
                    ln->kind = L_ACTION;
                } else if (rc == 0) {
                    rc = add_line(im, &body, ln->s, ln->len);
                }
                continue;
            }
            r = action_ref(p, n);
            if (r > 0) {
                snprintf(key, sizeof(key), "%.*s", (int)r, p);
            }
            if (r > 0 && !keyset_has(&im->keys[PROTO_T_ACTION], key)) {
                const char *rest = p + r + 1;
                size_t rlen = n - r - 1;
                if ((rc = finish_action(im, cur, &text, cur_no)) < 0 ||
                    (rc = new_obj(im, PROTO_T_ACTION, ln->no, &cur)) < 0) {
                    break;
                }
                cur_no = ln->no;
                if (keyset_add(&im->keys[PROTO_T_ACTION], key) < 0) {
                    rc = nomem(im);
                    break;
                }
                trim(&rest, &rlen);
                /* "[done]" or "[dropped]" first: the status an export writes so. */
                for (int st = 0; st < 2; st++) {
                    const char *mark = st == 0 ? "[done]" : "[dropped]";
                    size_t ml = strlen(mark);
                    if (rlen >= ml && memcmp(rest, mark, ml) == 0) {
                        if ((rc = set_cstr(im, cur, "status",
                                           mark[1] == 'd' && st == 0 ? "done" : "dropped")) < 0) {
                            break;
                        }
                        rest += ml;
                        rlen -= ml;
                        trim(&rest, &rlen);
                    }
                }
                if (rc < 0) {
                    break;
                }
                if ((rc = set_str(im, cur, "ref", p, r)) < 0 ||
                    (tolen > 0 && (rc = set_str(im, cur, "to", to, tolen)) < 0) ||
                    (rc = add_line(im, &text, rest, rlen)) < 0) {
                    break;
                }
                if (!field(&im->rec->meeting, "action_prefix")->set) {
                    size_t dash = r;
                    while (dash > 0 && p[dash - 1] != '-') {
                        dash--;
                    }
                    /* A prefix cut to fit would number new actions wrongly: leave it. */
                    if (dash - 1 <= prefix_max()) {
                        rc = set_str(im, &im->rec->meeting, "action_prefix", p, dash - 1);
                    }
                }
                ln->kind = L_ACTION;
            } else if (cur != NULL) {
                /* A repeated ref is text of the action before it, so that nothing of the
                 * report is lost and a re-import reads the same. */
                rc = add_line(im, &text, ln->s, ln->len);
                ln->kind = L_ACTION;
            } else {
                rc = add_line(im, &body, ln->s, ln->len);
            }
        }
        if (rc == 0) {
            rc = finish_action(im, cur, &text, cur_no);
        }
        if (rc == 0 && sc->item != NULL) {
            rc = set_text(im, sc->item, "body", &body, head->no);
        }
    }
    proto_buf_free(&body, 0);
    proto_buf_free(&text, 0);
    return rc;
}

/* ---- meeting fields ---- */

static int abstract(struct imp *im)
{
    struct proto_buf b = {0};
    bool in = false;
    size_t no = 0;
    int rc = 0;

    for (size_t i = 0; i < im->nlines && im->lines[i].kind == L_PRE && rc == 0; i++) {
        const char *s = im->lines[i].s;
        size_t n = im->lines[i].len;
        trim(&s, &n);
        if (!in && starts_ci(s, n, "abstract:")) {
            in = true;
            no = im->lines[i].no;
            s += 9;
            n -= 9;
            trim(&s, &n);
        }
        if (in && n > 0) {
            rc = add_line(im, &b, s, n);
        }
    }
    if (rc == 0 && in) {
        rc = set_text(im, &im->rec->meeting, "abstract", &b, no);
    }
    proto_buf_free(&b, 0);
    return rc;
}

/* The body's name in the abstract ("the TSAG Rapporteur Group on Industry Engagement,
 * Metrics during ...") gives the title, and its first word the parent. */
static int title_parent(struct imp *im)
{
    static const char *const kinds[] = {"Rapporteur Group", "Study Group", "Working Party",
                                        "Focus Group", NULL};
    static const char *const ends[] = {" during ", " held ", " at its ", " (", ". ", "\n", NULL};
    const struct srv_val *ab = field(&im->rec->meeting, "abstract");
    const char *s = ab->s;
    size_t n = ab->len, m = n, start = 0, end = 0;
    int rc = 0;

    if (!ab->set) {
        return 0;
    }
    for (int k = 0; kinds[k] != NULL && m == n; k++) {
        m = find_ci(s, n, kinds[k]);
    }
    if (m == n) {
        return 0;
    }
    start = m;
    /* One upper-case word before it ("TSAG", "ITU-T") is the parent body. */
    if (m >= 2 && s[m - 1] == ' ') {
        size_t w = m - 1;
        while (w > 0 && (is_upper((unsigned char)s[w - 1]) || is_digit((unsigned char)s[w - 1]) ||
                         s[w - 1] == '-')) {
            w--;
        }
        if (m - 1 - w >= 2 && is_upper((unsigned char)s[w]) && (w == 0 || s[w - 1] == ' ')) {
            start = w;
            if ((rc = set_str(im, &im->rec->meeting, "parent", s + w, m - 1 - w)) < 0) {
                return rc;
            }
        }
    }
    end = n;
    for (int k = 0; ends[k] != NULL; k++) {
        size_t e = m + find_ci(s + m, n - m, ends[k]);
        if (e < end) {
            end = e;
        }
    }
    while (end > start && (s[end - 1] == '.' || s[end - 1] == ',' || s[end - 1] == ' ')) {
        end--;
    }
    return set_str(im, &im->rec->meeting, "title", s + start, end - start);
}

/* Without a section of actions, the group is the abbreviation after the title:
 * "... Industry Engagement, Metrics (RG-IEM)". */
static int group_from_title(struct imp *im)
{
    const struct srv_val *t = field(&im->rec->meeting, "title");

    if (field(&im->rec->meeting, "group")->set || !t->set || t->len == 0) {
        return 0;
    }
    for (size_t i = 0; i < im->nlines; i++) {
        const char *s = im->lines[i].s;
        size_t n = im->lines[i].len;
        /* Anchored on " (": one comparison per parenthesis, however long the line. */
        for (size_t off = t->len; off + 2 < n; off++) {
            size_t k = 0;
            if (s[off] != ' ' || s[off + 1] != '(' || memcmp(s + off - t->len, t->s, t->len) != 0) {
                continue;
            }
            while (off + 2 + k < n && k <= 32 && s[off + 2 + k] != ')' && s[off + 2 + k] != ' ') {
                k++;
            }
            if (k > 0 && k <= 32 && at(s, n, off + 2 + k) == ')') {
                return set_str(im, &im->rec->meeting, "group", s + off + 2, k);
            }
        }
    }
    return 0;
}

static const char *venue_tz(const char *v, size_t n)
{
    static const char *const zones[][2] = {
        {"Geneva", "Europe/Zurich"},
        {"Gen\xc3\xa8ve", "Europe/Zurich"},
        {"Zurich", "Europe/Zurich"},
        {"London", "Europe/London"},
        {"Paris", "Europe/Paris"},
        {"Berlin", "Europe/Berlin"},
        {"Madrid", "Europe/Madrid"},
        {"Rome", "Europe/Rome"},
        {"Brussels", "Europe/Brussels"},
        {"Vienna", "Europe/Vienna"},
        {"Stockholm", "Europe/Stockholm"},
        {"Helsinki", "Europe/Helsinki"},
        {"Moscow", "Europe/Moscow"},
        {"Istanbul", "Europe/Istanbul"},
        {"Dubai", "Asia/Dubai"},
        {"Cairo", "Africa/Cairo"},
        {"Nairobi", "Africa/Nairobi"},
        {"Johannesburg", "Africa/Johannesburg"},
        {"New Delhi", "Asia/Kolkata"},
        {"Bangkok", "Asia/Bangkok"},
        {"Singapore", "Asia/Singapore"},
        {"Beijing", "Asia/Shanghai"},
        {"Shanghai", "Asia/Shanghai"},
        {"Shenzhen", "Asia/Shanghai"},
        {"Hangzhou", "Asia/Shanghai"},
        {"Seoul", "Asia/Seoul"},
        {"Tokyo", "Asia/Tokyo"},
        {"Sydney", "Australia/Sydney"},
        {"Washington", "America/New_York"},
        {"New York", "America/New_York"},
        {"Ottawa", "America/Toronto"},
        {"Montreal", "America/Toronto"},
        {"San Diego", "America/Los_Angeles"},
        {"Brasilia", "America/Sao_Paulo"},
        {"Buenos Aires", "America/Argentina/Buenos_Aires"},
    };
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        size_t k = strlen(zones[i][0]);
        if (starts_ci(v, n, zones[i][0]) && !is_alpha(at(v, n, k))) {
            return zones[i][1];
        }
    }
    return NULL;
}

/* "(Geneva, 30 May-2 June 2023)": the venue and the meeting's dates. */
static bool venue_dates(const char *s, size_t n, const char **venue, size_t *vlen, char a[11],
                        char b[11])
{
    for (size_t i = 0; i < n; i++) {
        struct dmy da, db;
        size_t v = i + 1, k = 0, r = 0;
        if (s[i] != '(') {
            continue;
        }
        while (v + k < n && k <= 100 && s[v + k] != ',' && s[v + k] != '(' && s[v + k] != ')' &&
               s[v + k] != '\n' && !is_digit((unsigned char)s[v + k])) {
            k++;
        }
        if (k == 0 || k > 100 || !starts_ci(s + v + k, n - v - k, ", ") ||
            (!is_alpha((unsigned char)s[v]) && (unsigned char)s[v] < 0x80)) {
            continue;
        }
        r = parse_range(s + v + k + 2, n - v - k - 2, &da, &db);
        if (r == 0 || at(s, n, v + k + 2 + r) != ')' || !dmy_str(&da, a) || !dmy_str(&db, b) ||
            strcmp(a, b) > 0) {
            continue;
        }
        *venue = s + v;
        *vlen = k;
        return true;
    }
    return false;
}

static int meeting_place(struct imp *im)
{
    struct srv_obj *mt = &im->rec->meeting;
    const struct srv_val *ab = field(mt, "abstract");
    const char *venue = NULL;
    size_t vlen = 0;
    char a[11], b[11];
    bool found = ab->set && venue_dates(ab->s, ab->len, &venue, &vlen, a, b);
    const char *tz = NULL;
    int rc = 0;

    for (size_t i = 0; i < im->nlines && !found; i++) {
        found = venue_dates(im->lines[i].s, im->lines[i].len, &venue, &vlen, a, b);
    }
    if (!found) {
        return 0;
    }
    trim(&venue, &vlen);
    if ((rc = set_str(im, mt, "venue", venue, vlen)) < 0 ||
        (rc = set_cstr(im, mt, "start", a)) < 0 || (rc = set_cstr(im, mt, "end", b)) < 0) {
        return rc;
    }
    im->start_y = atoi(a);
    im->start_m = atoi(a + 5);
    im->end_y = atoi(b);
    tz = venue_tz(venue, vlen);
    return tz != NULL ? set_cstr(im, mt, "tz", tz) : 0;
}

/* ---- documents ---- */

/* A document reference at s[i]: "TSAG-TD257R1" (prefixed, *plen > 0) or "TD258" (bare,
 * *plen == 0). Returns its length, 0 when none; *rev is where the revision starts. */
static size_t doc_ref(const char *s, size_t n, size_t i, size_t *plen, size_t *rev)
{
    size_t p = 0, k = i, d = 0;

    *plen = 0;
    if (i > 0 && (is_alnum((unsigned char)s[i - 1]) || s[i - 1] == '-')) {
        return 0;
    }
    /* A prefix: an upper-case letter, then upper-case letters or digits, then "-". */
    while (k < n && k - i <= 16 &&
           (is_upper((unsigned char)s[k]) || is_digit((unsigned char)s[k]))) {
        k++;
    }
    if (k - i >= 2 && k < n && s[k] == '-' && is_upper((unsigned char)s[i])) {
        p = k - i;
        k++;
    } else {
        k = i;
    }
    if (k + 1 < n && s[k] == 'T' && s[k + 1] == 'D') {
        k += 2;
    } else if (k < n && s[k] == 'C') {
        k += 1;
    } else {
        return 0;
    }
    while (k + d < n && is_digit((unsigned char)s[k + d]) && d <= 6) {
        d++;
    }
    /* Bare numbers need three digits: "C1" is too often something else. */
    if (d == 0 || d > 6 || (p == 0 && d < 3)) {
        return 0;
    }
    k += d;
    *rev = k;
    if (k + 1 < n && s[k] == 'R' && is_digit((unsigned char)s[k + 1])) {
        size_t r = 1;
        while (k + r < n && is_digit((unsigned char)s[k + r]) && r <= 3) {
            r++;
        }
        k += r;
    }
    if (k < n && (is_alnum((unsigned char)s[k]) || (s[k] == '-' && is_alnum(at(s, n, k + 1))))) {
        return 0;
    }
    *plen = p;
    return k - i;
}

/* Which prefix a bare "TD258" means: the one seen with it, when only one was. */
static bool bare_prefix(const struct imp *im, const char *num, size_t nlen, const char **pre,
                        size_t *plen)
{
    char key[32];
    size_t pos = 0, kl = 0;

    snprintf(key, sizeof(key), "%.*s\t", (int)nlen, num);
    kl = strlen(key);
    pos = keyset_lower(&im->bare, key);
    if (pos >= im->bare.n || strncmp(im->bare.v[pos], key, kl) != 0) {
        return false;
    }
    if (pos + 1 < im->bare.n && strncmp(im->bare.v[pos + 1], key, kl) == 0) {
        return false;
    }
    *pre = im->bare.v[pos] + kl;
    *plen = strlen(*pre);
    return true;
}

/* True for a line of a section of actions ("Action from RG-IEM to WP2"). */
static bool in_action_section(const struct imp *im, const struct line *ln)
{
    const char *from = NULL, *to = NULL;
    size_t flen = 0, tlen = 0, len = 0;
    if (ln->kind == L_PRE) {
        return false;
    }
    const struct srv_val *title =
        &im->sects[ln->sect].item->f[proto_field_find(PROTO_T_ITEM, "title", 5)];
    len = title->set ? title->len : 0;
    return len > 0 && action_title(title->s, len, &from, &flen, &to, &tlen);
}

static int docs(struct imp *im)
{
    int rc = 0;

    /* First the prefixes each number was seen with, so a bare number can be resolved
     * wherever it appears. */
    for (size_t l = 0; l < im->nlines; l++) {
        const char *s = im->lines[l].s;
        size_t n = im->lines[l].len;
        for (size_t i = 0; i < n; i++) {
            size_t plen = 0, rev = 0, k = 0;
            char key[64];
            if (!is_upper((unsigned char)s[i]) || (k = doc_ref(s, n, i, &plen, &rev)) == 0 ||
                plen == 0) {
                continue;
            }
            snprintf(key, sizeof(key), "%.*s\t%.*s", (int)(rev - i - plen - 1), s + i + plen + 1,
                     (int)plen, s + i);
            if (im->bare.n < MAX_OBJS && keyset_add(&im->bare, key) < 0) {
                return nomem(im);
            }
            i += k - 1;
        }
    }
    /* A document belongs to the first section that discusses it: the list of actions only
     * repeats references, so its lines are read last. */
    for (size_t step = 0; step < 2 * im->nlines; step++) {
        const struct line *ln = &im->lines[step % im->nlines];
        if (in_action_section(im, ln) != (step >= im->nlines)) {
            continue;
        }
        const char *s = ln->s;
        size_t n = ln->len;
        for (size_t i = 0; i < n; i++) {
            size_t plen = 0, rev = 0, k = 0, blen = 0;
            const char *pre = NULL;
            char ref[64], key[96];
            struct srv_obj *o = NULL;
            int64_t item = 0;
            if (!is_upper((unsigned char)s[i]) || (k = doc_ref(s, n, i, &plen, &rev)) == 0) {
                continue;
            }
            if (plen > 0) {
                snprintf(ref, sizeof(ref), "%.*s", (int)(rev - i), s + i);
            } else if (bare_prefix(im, s + i, rev - i, &pre, &blen)) {
                snprintf(ref, sizeof(ref), "%.*s-%.*s", (int)blen, pre, (int)(rev - i), s + i);
            } else {
                i += k - 1;
                continue;
            }
            snprintf(key, sizeof(key), "%s\t%.*s", ref, (int)(i + k - rev), s + rev);
            i += k - 1;
            if (keyset_has(&im->keys[PROTO_T_DOC], key)) {
                continue;
            }
            if ((rc = new_obj(im, PROTO_T_DOC, ln->no, &o)) < 0) {
                return rc;
            }
            if (keyset_add(&im->keys[PROTO_T_DOC], key) < 0) {
                return nomem(im);
            }
            if ((rc = set_cstr(im, o, "ref", ref)) < 0 ||
                (rc = set_str(im, o, "revision", s + rev, i + 1 - rev)) < 0) {
                return rc;
            }
            item = item_id(im, ln);
            if (item > 0) {
                srv_val_set_int(field(o, "item"), item);
            }
        }
    }
    return 0;
}

/* "the meeting report will be made available in TSAG-TD182". */
static int report_ref(struct imp *im)
{
    static const char *const marks[] = {"report will be", "meeting report", "report of this", NULL};
    for (size_t l = 0; l < im->nlines; l++) {
        const char *s = im->lines[l].s;
        size_t n = im->lines[l].len;
        for (int m = 0; marks[m] != NULL; m++) {
            for (size_t i = find_ci(s, n, marks[m]); i < n; i++) {
                size_t plen = 0, rev = 0, k = 0;
                if (is_upper((unsigned char)s[i]) && (k = doc_ref(s, n, i, &plen, &rev)) > 0 &&
                    plen > 0) {
                    return set_str(im, &im->rec->meeting, "report_ref", s + i, k);
                }
            }
        }
    }
    return 0;
}

/* "The contribution deadline is 7 days before the respective meeting." */
static void deadline_days(struct imp *im)
{
    for (size_t l = 0; l < im->nlines; l++) {
        const char *s = im->lines[l].s;
        size_t n = im->lines[l].len, i = find_ci(s, n, "deadline is ");
        int days = 0;
        size_t k = 0;
        if (i == n) {
            continue;
        }
        i += 12;
        k = parse_num(s + i, n - i, 3, &days);
        if (k > 0 && starts_ci(s + i + k, n - i - k, " day") && days <= 365) {
            srv_val_set_int(field(&im->rec->meeting, "deadline_days"), days);
            return;
        }
    }
}

/* ---- decisions ---- */

/* True when the '.' at s[i] ends a sentence: end of line, or blanks then something that
 * is not a lower-case letter, and not after a title or a common abbreviation. */
static bool sentence_end(const char *s, size_t n, size_t i)
{
    static const char *const abbr[] = {"Mr",  "Ms",  "Mrs", "Dr", "Prof", "St",  "No",  "Rev",
                                       "Res", "Rec", "Doc", "vs", "cf",   "Fig", "Art", NULL};
    size_t j = i + 1, w = i;

    if (j < n && s[j] != ' ') {
        return false;
    }
    j = skip_spaces(s, n, j);
    if (j < n && is_lower((unsigned char)s[j])) {
        return false;
    }
    if (s[i] != '.') {
        return true;
    }
    while (w > 0 && is_alpha((unsigned char)s[w - 1])) {
        w--;
    }
    for (int k = 0; abbr[k] != NULL; k++) {
        if (strlen(abbr[k]) == i - w && memcmp(abbr[k], s + w, i - w) == 0 &&
            (w == 0 || !is_alnum((unsigned char)s[w - 1]))) {
            return false;
        }
    }
    return true;
}

/* The kind of decision a sentence records, or NULL. */
static const char *decision_kind(const char *s, size_t n)
{
    static const char *const noted[] = {"The meeting noted ", "The meeting took note ",
                                        "The meeting also noted ", "The meeting also took note ",
                                        NULL};
    static const char *const verbs[][2] = {{"agreed", "agreed"}, {"decided", "decided"}};

    for (int v = 0; v < 2; v++) {
        for (size_t i = find_word_ci(s, n, verbs[v][0], 0); i < n;
             i = find_word_ci(s, n, verbs[v][0], i + 1)) {
            /* "was not agreed" records no agreement. */
            if (!(i >= 4 && starts_ci(s + i - 4, 4, "not ")) &&
                !(i >= 6 && starts_ci(s + i - 6, 6, "never "))) {
                return verbs[v][1];
            }
        }
    }
    for (int k = 0; noted[k] != NULL; k++) {
        if (starts_ci(s, n, noted[k])) {
            return "noted";
        }
    }
    return NULL;
}

static int decisions(struct imp *im)
{
    struct proto_buf b = {0};
    int rc = 0;

    for (size_t l = 0; l < im->nlines && rc == 0; l++) {
        const struct line *ln = &im->lines[l];
        const char *s = ln->s;
        size_t n = ln->len, start = 0;
        if (ln->kind != L_BODY) {
            continue;
        }
        while (start < n && rc == 0) {
            const char *sent = s + start, *kind = NULL;
            size_t end = start, slen = 0;
            struct srv_obj *o = NULL;
            while (end < n && !((s[end] == '.' || s[end] == '!' || s[end] == '?') &&
                                sentence_end(s, n, end))) {
                end++;
            }
            end = end < n ? end + 1 : n;
            slen = end - start;
            start = end;
            trim(&sent, &slen);
            if (slen >= 2 && sent[0] == '-' && sent[1] == ' ') {
                sent += 2;
                slen -= 2;
            }
            if (slen == 0 || (kind = decision_kind(sent, slen)) == NULL) {
                continue;
            }
            b.len = 0;
            if ((rc = new_obj(im, PROTO_T_DECISION, ln->no, &o)) < 0 ||
                (rc = set_cstr(im, o, "kind", kind)) < 0 ||
                (rc = add_line(im, &b, sent, slen)) < 0 ||
                (rc = set_text(im, o, "text", &b, ln->no)) < 0) {
                break;
            }
            srv_val_set_int(field(o, "item"), item_id(im, ln));
        }
    }
    proto_buf_free(&b, 0);
    return rc;
}

/* ---- sessions and interim meetings ---- */

static int add_session(struct imp *im, const struct line *ln, const char *date, const char *a,
                       const char *b, const char *kind)
{
    char key[64];
    struct srv_obj *o = NULL;
    int rc = 0;

    snprintf(key, sizeof(key), "%s %s %s %s", date, a, b, kind);
    if (keyset_has(&im->keys[PROTO_T_SESSION], key)) {
        return 0;
    }
    if ((rc = new_obj(im, PROTO_T_SESSION, ln->no, &o)) < 0) {
        return rc;
    }
    if (keyset_add(&im->keys[PROTO_T_SESSION], key) < 0) {
        return nomem(im);
    }
    if ((rc = set_cstr(im, o, "date", date)) < 0 || (rc = set_cstr(im, o, "start", a)) < 0 ||
        (rc = set_cstr(im, o, "end", b)) < 0 || (rc = set_cstr(im, o, "kind", kind)) < 0) {
        return rc;
    }
    return 0;
}

/* "on Wednesday 31 May (1615-1730 hours)" and "a drafting session (31 May 2023,
 * 1745-1845)": a date and a time range in parentheses. */
static int sessions(struct imp *im)
{
    int rc = 0;

    for (size_t l = 0; l < im->nlines && rc == 0; l++) {
        const struct line *ln = &im->lines[l];
        const char *s = ln->s;
        size_t n = ln->len;
        if (ln->kind != L_BODY) {
            continue;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct dmy d;
            char date[11], a[6], b[6];
            size_t k = 0, t = 0, j = 0, look = 0;
            bool paren = i > 0 && s[i - 1] == '(';
            if (!is_digit((unsigned char)s[i]) || (i > 0 && is_alnum((unsigned char)s[i - 1])) ||
                (k = parse_date(s + i, n - i, &d)) == 0) {
                continue;
            }
            j = i + k;
            if (paren && starts_ci(s + j, n - j, ", ")) {
                j += 2;
            } else if (!paren && starts_ci(s + j, n - j, " (")) {
                j += 2;
            } else {
                continue;
            }
            if ((t = parse_times(s + j, n - j, a, b)) == 0 || at(s, n, j + t) != ')') {
                continue;
            }
            if (d.y == 0) {
                d.y = year_for(im, d.m);
            }
            if (!dmy_str(&d, date)) {
                continue;
            }
            look = i > 48 ? i - 48 : 0;
            rc = add_session(im, ln, date, a, b,
                             find_ci(s + look, i - look, "drafting") < i - look ? "drafting"
                                                                                : "session");
            i = j + t;
        }
    }
    return rc;
}

/* "- 27 July 2023, 1300-1500: CTO/CxO review": a bullet that is an interim meeting. */
static bool interim_line(const char *s, size_t n, char date[11], char a[6], char b[6],
                         const char **topic, size_t *tlen)
{
    struct dmy d;
    size_t i = 2, k = 0;

    if (n < 2 || s[0] != '-' || s[1] != ' ' || (k = parse_date(s + i, n - i, &d)) == 0 ||
        !dmy_str(&d, date)) {
        return false;
    }
    i += k;
    if (!starts_ci(s + i, n - i, ", ") || (k = parse_times(s + i + 2, n - i - 2, a, b)) == 0) {
        return false;
    }
    i += 2 + k;
    if (i < n && s[i] != ':') {
        return false;
    }
    *topic = s + (i < n ? i + 1 : n);
    *tlen = n - (i < n ? i + 1 : n);
    trim(topic, tlen);
    while (*tlen > 0 && ((*topic)[*tlen - 1] == '.' || (*topic)[*tlen - 1] == ',' ||
                         (*topic)[*tlen - 1] == ';')) {
        (*tlen)--;
    }
    return true;
}

static int interims_of(struct imp *im, enum lkind kind)
{
    size_t ctx = SIZE_MAX;
    int rc = 0;

    for (size_t l = 0; l < im->nlines && rc == 0; l++) {
        const struct line *ln = &im->lines[l];
        char date[11], a[6], b[6], key[32];
        const char *topic = NULL;
        size_t tlen = 0;
        struct srv_obj *o = NULL;
        bool physical = false;

        if (ln->kind != kind) {
            continue;
        }
        if (!interim_line(ln->s, ln->len, date, a, b, &topic, &tlen)) {
            ctx = l;
            continue;
        }
        snprintf(key, sizeof(key), "%s %s", date, a);
        /* The same meeting listed twice (in an action and in the minutes) is one. */
        if (keyset_has(&im->keys[PROTO_T_INTERIM], key)) {
            continue;
        }
        if ((rc = new_obj(im, PROTO_T_INTERIM, ln->no, &o)) < 0) {
            break;
        }
        if (keyset_add(&im->keys[PROTO_T_INTERIM], key) < 0) {
            rc = nomem(im);
            break;
        }
        if (ctx != SIZE_MAX && im->lines[ctx].sect == ln->sect) {
            const struct line *c = &im->lines[ctx];
            physical = find_ci(c->s, c->len, "virtual") == c->len &&
                       (find_ci(c->s, c->len, "physical") < c->len ||
                        find_ci(c->s, c->len, "face-to-face") < c->len);
        }
        if ((rc = set_cstr(im, o, "date", date)) < 0 || (rc = set_cstr(im, o, "start", a)) < 0 ||
            (rc = set_cstr(im, o, "end", b)) < 0 ||
            (rc = set_cstr(im, o, "mode", physical ? "physical" : "virtual")) < 0 ||
            (tlen > 0 && (rc = set_str(im, o, "topic", topic, tlen)) < 0)) {
            break;
        }
    }
    return rc;
}

/* ---- people ---- */

static const char *role_of(const char *s, size_t n, size_t *rest)
{
    static const char *const roles[][2] = {
        {"Associate Rapporteur", "associate"}, {"Co-Rapporteur", "rapporteur"},
        {"Rapporteur", "rapporteur"},          {"TSB Counsellor", "counsellor"},
        {"Counsellor", "counsellor"},          {"Secretariat", "tsb"},
    };
    for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++) {
        size_t len = strlen(roles[k][0]);
        if (starts_ci(s, n, roles[k][0]) && !is_alpha(at(s, n, len))) {
            *rest = len;
            return roles[k][1];
        }
    }
    return NULL;
}

/* "Mr Noah LUO (Huawei Technologies, China), Associate Rapporteur on metrics": returns the
 * length matched (0 when none) and the parts. */
struct person_m {
    const char *name, *aff, *role, *note;
    size_t nlen, alen, notelen;
};

static size_t person_at(const char *s, size_t n, size_t i, struct person_m *m)
{
    static const char *const titles[] = {"Mrs", "Mr", "Ms", "Dr", "Prof", NULL};
    size_t k = i, words = 0, a = 0, r = 0;

    if (i > 0 && is_alnum((unsigned char)s[i - 1])) {
        return 0;
    }
    for (int t = 0; titles[t] != NULL; t++) {
        size_t tl = strlen(titles[t]);
        if (tl <= n - i && memcmp(s + i, titles[t], tl) == 0) {
            k = i + tl;
            break;
        }
    }
    if (k == i) {
        return 0;
    }
    if (k < n && s[k] == '.') {
        k++;
    }
    if (k >= n || s[k] != ' ') {
        return 0;
    }
    k++;
    m->name = s + k;
    /* Words that start upper-case (or non-ASCII), one space apart, then " (". */
    for (;;) {
        size_t w = k;
        unsigned char c = at(s, n, k);
        if (!(is_upper(c) || c >= 0x80) || words == NAME_WORDS) {
            return 0;
        }
        while (k < n && k - w < 40 &&
               (is_alpha((unsigned char)s[k]) || (unsigned char)s[k] >= 0x80 || s[k] == '-' ||
                s[k] == '\'' || s[k] == '.')) {
            k++;
        }
        words++;
        if (k + 1 < n && s[k] == ' ' && s[k + 1] == '(') {
            m->nlen = (size_t)(s + k - m->name);
            k += 2;
            break;
        }
        if (k >= n || s[k] != ' ') {
            return 0;
        }
        k++;
    }
    a = k;
    while (k < n && k - a < LOOK && s[k] != ')' && s[k] != '(') {
        k++;
    }
    if (k >= n || s[k] != ')' || k == a) {
        return 0;
    }
    m->aff = s + a;
    m->alen = k - a;
    k++;
    m->role = NULL;
    m->note = NULL;
    m->notelen = 0;
    if (starts_ci(s + k, n - k, ", ") && (m->role = role_of(s + k + 2, n - k - 2, &r)) != NULL) {
        k += 2 + r;
        if (starts_ci(s + k, n - k, " on ")) {
            size_t nb = k + 4, e = nb;
            while (e < n && e - nb < LOOK && s[e] != ',' && s[e] != ';' &&
                   !(s[e] == '.' && (e + 1 == n || s[e + 1] == ' ')) && s[e] != ')') {
                e++;
            }
            m->note = s + nb;
            m->notelen = e - nb;
            k = e;
        }
    }
    if (m->role == NULL) {
        m->role = m->alen == 3 && memcmp(m->aff, "TSB", 3) == 0 ? "tsb" : "delegate";
    }
    return k - i;
}

static int people(struct imp *im)
{
    int rc = 0;

    for (size_t l = 0; l < im->nlines && rc == 0; l++) {
        const struct line *ln = &im->lines[l];
        for (size_t i = 0; i < ln->len && rc == 0; i++) {
            struct person_m m;
            char key[KEY_MAX];
            struct srv_obj *o = NULL;
            size_t k = 0;
            if ((ln->s[i] != 'M' && ln->s[i] != 'D' && ln->s[i] != 'P') ||
                (k = person_at(ln->s, ln->len, i, &m)) == 0) {
                continue;
            }
            i += k - 1;
            snprintf(key, sizeof(key), "%.*s", (int)m.nlen, m.name);
            if (keyset_has(&im->keys[PROTO_T_PERSON], key)) {
                continue;
            }
            if ((rc = new_obj(im, PROTO_T_PERSON, ln->no, &o)) < 0) {
                break;
            }
            if (keyset_add(&im->keys[PROTO_T_PERSON], key) < 0) {
                rc = nomem(im);
                break;
            }
            if ((rc = set_str(im, o, "name", m.name, m.nlen)) < 0 ||
                (rc = set_str(im, o, "affiliation", m.aff, m.alen)) < 0 ||
                (rc = set_cstr(im, o, "role", m.role)) < 0 ||
                (m.notelen > 0 && (rc = set_str(im, o, "note", m.note, m.notelen)) < 0)) {
                break;
            }
        }
    }
    return rc;
}

/* ---- the annex ---- */

/* True for a field the annex carries: every field but computed ones, of every type but
 * items (the numbered sections), and the meeting's but its abstract (the abstract). */
static bool annex_field(enum proto_type t, size_t k, bool full)
{
    enum proto_fkind kind = proto_type_info(t)->fields[k].kind;
    if (full) { /* the annex of a Markdown or HTML export: every field */
        return kind != PROTO_F_COMPUTED;
    }
    return t != PROTO_T_ITEM && kind != PROTO_F_COMPUTED &&
           !(t == PROTO_T_MEETING && kind == PROTO_F_TEXT);
}

/* Columns of an annex line of an object of type t (the meeting's lines: 3). */
static size_t annex_ncols(enum proto_type t, bool full)
{
    size_t n = 1;
    for (size_t k = 0; t != PROTO_T_MEETING && k < proto_type_info(t)->nfields; k++) {
        n += annex_field(t, k, full);
    }
    return t == PROTO_T_MEETING ? 3 : n;
}

/* Splits s[0..n) at tabs into at most max columns; returns how many there are. */
static size_t annex_split(const char *s, size_t n, const char **col, size_t *clen, size_t max)
{
    size_t c = 0, a = 0;

    for (;;) {
        const char *tab = memchr(s + a, '\t', n - a);
        size_t b = tab ? (size_t)(tab - s) : n;
        if (c < max) {
            col[c] = s + a;
            clen[c] = b - a;
        }
        c++;
        if (tab == NULL) {
            return c;
        }
        a = b + 1;
    }
}

/* True when s[0..n) may be quoted in a message: printable ASCII, at most 32 bytes. */
static bool quotable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '"') {
            return false;
        }
    }
    return n <= 32;
}

struct annex {
    const struct srv_obj **items; /* in their natural order, to find one by number */
    size_t nitems;
    struct proto_buf val; /* the value being read, unescaped, NUL after it */
    uint32_t seen;        /* the meeting's fields given so far */
};

/* Unescapes s[0..n) into out (a NUL after it); a lone "-" is nil. Returns 0, PROTO_ENOMEM,
 * or PROTO_EINVAL for a "\\" that starts no escape. */
static int unescape(struct proto_buf *out, const char *s, size_t n, bool *nil)
{
    size_t from = 0;

    out->len = 0;
    *nil = n == 1 && s[0] == '-';
    for (size_t i = 0; i < n && !*nil; i++) {
        const char *e = NULL;
        if (s[i] != '\\') {
            continue;
        }
        switch (at(s, n, i + 1)) {
        case 't':
            e = "\t";
            break;
        case 'n':
            e = "\n";
            break;
        case 'r':
            e = "\r";
            break;
        case '\\':
            e = "\\";
            break;
        case '-':
            e = "-";
            break;
        default:
            return PROTO_EINVAL;
        }
        if (proto_buf_append(out, s + from, i - from) < 0 || proto_buf_append(out, e, 1) < 0) {
            return PROTO_ENOMEM;
        }
        from = i + 2;
        i++;
    }
    if ((!*nil && proto_buf_append(out, s + from, n - from) < 0) ||
        proto_buf_append(out, "", 1) < 0) {
        return PROTO_ENOMEM;
    }
    out->len--;
    return 0;
}

/* The id of the first item (in natural order, then by id) numbered s, or 0. */
static int64_t annex_item(const struct annex *ax, const char *s)
{
    size_t lo = 0, hi = ax->nitems;
    int k = proto_field_find(PROTO_T_ITEM, "number", 6);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (proto_number_cmp(ax->items[mid]->f[k].s, s) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    /* "4" and "04" sort together: the same text is wanted. */
    for (; lo < ax->nitems && proto_number_cmp(ax->items[lo]->f[k].s, s) == 0; lo++) {
        if (strcmp(ax->items[lo]->f[k].s, s) == 0) {
            return ax->items[lo]->id;
        }
    }
    return 0;
}

/* Why a string does not fit its field (into why), or false when it fits. */
static bool annex_misfit(const struct proto_field *fd, const char *s, size_t n, char *why,
                         size_t wl)
{
    static const struct {
        enum proto_fkind kind;
        bool (*valid)(const char *s, size_t len);
        const char *why;
    } formats[] = {
        {PROTO_F_DATE, proto_date_valid, "not a date YYYY-MM-DD"},
        {PROTO_F_TIME, proto_time_valid, "not a time HH:MM"},
        {PROTO_F_TZ, proto_tz_valid, "not an IANA time zone name"},
        {PROTO_F_NUMBER, proto_number_valid, "not an item number"},
    };
    size_t max = fd->max ? fd->max : PROTO_STR_MAX, used = 0;

    if (fd->kind == PROTO_F_STR && n > max) {
        snprintf(why, wl, "over %zu bytes", max);
        return true;
    }
    if (fd->kind == PROTO_F_STR && (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL)) {
        snprintf(why, wl, "must be one line");
        return true;
    }
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (formats[i].kind == fd->kind && !formats[i].valid(s, n)) {
            snprintf(why, wl, "%s", formats[i].why);
            return true;
        }
    }
    if (fd->kind != PROTO_F_ENUM) {
        return false;
    }
    for (const char *const *e = fd->values; *e != NULL; e++) {
        if (strlen(*e) == n && memcmp(*e, s, n) == 0) {
            return false;
        }
    }
    used = (size_t)snprintf(why, wl, "not one of");
    for (const char *const *e = fd->values; *e != NULL && used < wl; e++) {
        used += (size_t)snprintf(why + used, wl - used, "%s %s", e == fd->values ? "" : ",", *e);
    }
    return true;
}

/* Reads column c (s[0..n)) into field k of o. */
static int annex_value(struct imp *im, struct annex *ax, const struct line *ln, struct srv_obj *o,
                       size_t k, size_t c, const char *s, size_t n)
{
    const char *tname = proto_type_info(o->type)->name;
    const struct proto_field *fd = &proto_type_info(o->type)->fields[k];
    const char *v = NULL;
    char why[96], *end = NULL;
    bool nil = false;
    long long i = 0;
    int rc = unescape(&ax->val, s, n, &nil);

    if (rc == PROTO_EINVAL) {
        return fail(im, rc, ln->no, "column %zu: a \\ that is not \\t, \\n, \\r, \\\\ or \\-",
                    c + 1);
    }
    if (rc < 0) {
        return nomem(im);
    }
    if (nil) {
        srv_val_unset(&o->f[k]);
        return 0;
    }
    v = (const char *)ax->val.data;
    n = ax->val.len;
    if (fd->kind == PROTO_F_ITEMREF) {
        int64_t id = proto_number_valid(v, n) ? annex_item(ax, v) : 0;
        if (id == 0) {
            return fail(im, PROTO_EINVAL, ln->no, "%s %s: no item numbered \"%s\"", tname, fd->name,
                        quotable(v, n) ? v : "that");
        }
        srv_val_set_int(&o->f[k], id);
        return 0;
    }
    if (fd->kind == PROTO_F_INT) {
        i = n > 0 && n <= 20 && (is_digit((unsigned char)v[0]) || v[0] == '-')
                ? strtoll(v, &end, 10)
                : 0;
        if (end != v + n || n == 0 || i < fd->min_i || i > fd->max_i) {
            return fail(im, PROTO_EINVAL, ln->no, "%s %s: not an integer from %lld to %lld", tname,
                        fd->name, (long long)fd->min_i, (long long)fd->max_i);
        }
        srv_val_set_int(&o->f[k], i);
        return 0;
    }
    if (fd->kind == PROTO_F_TEXT && n > TEXT_MAX) {
        return fail(im, PROTO_ETOOBIG, ln->no, "%s %s over %d bytes", tname, fd->name, TEXT_MAX);
    }
    if (annex_misfit(fd, v, n, why, sizeof(why))) {
        return fail(im, PROTO_EINVAL, ln->no, "%s %s: %s", tname, fd->name, why);
    }
    return srv_val_set_str(&o->f[k], v, n) < 0 ? nomem(im) : 0;
}

/* A doc's (ref, revision) and an action's ref are unique in a meeting. */
static int annex_unique(struct imp *im, const struct line *ln, const struct srv_obj *o)
{
    const struct srv_val *ref = field(o, "ref"), *rev = NULL;
    char key[KEY_MAX];
    int rc = 0;

    if ((o->type != PROTO_T_DOC && o->type != PROTO_T_ACTION) || !ref->set) {
        return 0;
    }
    rev = o->type == PROTO_T_DOC ? field(o, "revision") : NULL;
    /* A ref may hold a tab: its length keeps the key unambiguous. */
    snprintf(key, sizeof(key), "%zu:%s\t%s", ref->len, ref->s,
             rev != NULL && rev->set ? rev->s : "");
    rc = keyset_add(&im->keys[o->type], key);
    if (rc < 0) {
        return nomem(im);
    }
    if (rc == 0) {
        return fail(im, PROTO_EINVAL, ln->no, "%s: the same %s as an earlier one",
                    proto_type_info(o->type)->name, rev != NULL ? "ref and revision" : "ref");
    }
    return 0;
}

/* One line of the annex: a comment, a field of the meeting or an object. In a full annex
 * the items are read first (items_pass), the other lines then. */
static int annex_line(struct imp *im, struct annex *ax, const struct line *ln, bool items_pass)
{
    const char *col[ANNEX_COLS];
    size_t clen[ANNEX_COLS], ncols = 0, want = 0, c = 1;
    enum proto_type t = PROTO_T_COUNT;
    struct srv_obj *o = NULL;
    int k = 0, rc = 0;

    if (ln->len > ANNEX_LINE) {
        return fail(im, PROTO_EINVAL, ln->no, "an annex line over %d bytes", ANNEX_LINE);
    }
    if (ln->s[0] == '#') {
        return 0;
    }
    ncols = annex_split(ln->s, ln->len, col, clen, ANNEX_COLS);
    if (clen[0] == strlen(NOT_ITEM) && memcmp(col[0], NOT_ITEM, clen[0]) == 0) {
        return 0; /* read before the items are made */
    }
    if (im->full && items_pass != (clen[0] == 4 && memcmp(col[0], "item", 4) == 0)) {
        return 0;
    }
    t = proto_type_find(col[0], clen[0]);
    if (t == PROTO_T_COUNT || (t == PROTO_T_ITEM && !im->full)) {
        return fail(im, PROTO_EINVAL, ln->no, "%s \"%.*s\"",
                    t == PROTO_T_ITEM ? "items are the numbered sections, not" : "unknown type",
                    quotable(col[0], clen[0]) ? (int)clen[0] : 1,
                    quotable(col[0], clen[0]) ? col[0] : "?");
    }
    want = annex_ncols(t, im->full);
    if (ncols != want) {
        return fail(im, PROTO_EINVAL, ln->no, "%s: %zu columns, want %zu", proto_type_info(t)->name,
                    ncols, want);
    }
    if (t == PROTO_T_MEETING) {
        k = proto_field_find(t, col[1], clen[1]);
        if (k < 0 || !annex_field(t, (size_t)k, im->full)) {
            return fail(im, PROTO_EINVAL, ln->no, "meeting: no field \"%.*s\" in the annex",
                        quotable(col[1], clen[1]) ? (int)clen[1] : 1,
                        quotable(col[1], clen[1]) ? col[1] : "?");
        }
        if (ax->seen & (1u << k)) {
            return fail(im, PROTO_EINVAL, ln->no, "meeting %s: given twice",
                        proto_type_info(t)->fields[k].name);
        }
        ax->seen |= 1u << k;
        return annex_value(im, ax, ln, &im->rec->meeting, (size_t)k, 2, col[2], clen[2]);
    }
    if ((rc = new_obj(im, t, ln->no, &o)) < 0) {
        return rc;
    }
    for (size_t f = 0; f < proto_type_info(t)->nfields && rc == 0; f++) {
        if (annex_field(t, f, im->full)) {
            rc = annex_value(im, ax, ln, o, f, c, col[c], clen[c]);
            c++;
        }
    }
    return rc < 0 ? rc : annex_unique(im, ln, o);
}

/* Notes the ref of an annex line of an action as the prose shows it: line breaks as
 * spaces, no blanks before it (put_oneline, normalise). */
static int annex_ref(struct imp *im, const char *s, size_t n)
{
    struct proto_buf b = {0};
    bool nil = false;
    size_t lead = 0;
    int rc = unescape(&b, s, n, &nil);

    /* A bad escape is reported when the line is read; a ref this long is no ref. */
    if (rc == 0 && b.len <= KEY_MAX / 2) {
        char *r = (char *)b.data;
        for (size_t i = 0; i < b.len; i++) {
            r[i] = r[i] == '\n' || r[i] == '\r' ? ' ' : r[i];
        }
        while (lead < b.len && is_space((unsigned char)r[lead])) {
            lead++;
        }
        rc = keyset_add(&im->arefs, r + lead) < 0 ? PROTO_ENOMEM : 0;
    }
    proto_buf_free(&b, 0);
    return rc == PROTO_ENOMEM ? nomem(im) : 0;
}

/* Sets *starts when s[0..n) is "REF:..." for a ref of the annex's actions that no line
 * before has started (as a repeated ref in the prose is text, not a new action). */
static int annex_action(struct imp *im, const char *s, size_t n, bool *starts)
{
    char key[KEY_MAX / 2 + 1];

    *starts = false;
    for (size_t i = 0; i < n && i <= KEY_MAX / 2; i++) {
        if (s[i] != ':') {
            continue;
        }
        memcpy(key, s, i);
        key[i] = '\0';
        if (keyset_has(&im->arefs, key)) {
            int rc = keyset_add(&im->keys[PROTO_T_ACTION], key);
            *starts = rc == 1;
            return rc < 0 ? nomem(im) : 0;
        }
    }
    return 0;
}

/* Before the items are made: "not-an-item<TAB>N" says that the first section numbered N not
 * yet skipped is no item (the export adds one to list the actions of a record that has no
 * section of actions), and the refs of the actions tell their lines in the prose apart. */
static int annex_prepass(struct imp *im)
{
    for (size_t l = 0; l < im->nalines; l++) {
        const struct line *ln = &im->alines[l];
        const char *col[2];
        size_t clen[2], ncols = annex_split(ln->s, ln->len, col, clen, 2), k = 0;
        const char *title = NULL;
        size_t tlen = 0;
        int rc = 0;

        if (ncols >= 2 && clen[0] == 6 && memcmp(col[0], "action", 6) == 0) {
            if ((rc = annex_ref(im, col[1], clen[1])) < 0) {
                return rc;
            }
            continue;
        }
        if (clen[0] != strlen(NOT_ITEM) || memcmp(col[0], NOT_ITEM, clen[0]) != 0) {
            continue;
        }
        if (ncols != 2) {
            return fail(im, PROTO_EINVAL, ln->no, "%s: %zu columns, want 2", NOT_ITEM, ncols);
        }
        for (k = 0; k < im->nsects; k++) {
            const struct line *h = &im->lines[im->sects[k].head];
            size_t nlen = heading(h->s, h->len, &title, &tlen);
            if (!im->sects[k].skip && nlen == clen[1] && memcmp(h->s, col[1], nlen) == 0) {
                break;
            }
        }
        if (k == im->nsects) {
            return fail(im, PROTO_EINVAL, ln->no, "%s: no section numbered \"%.*s\"", NOT_ITEM,
                        quotable(col[1], clen[1]) ? (int)clen[1] : 1,
                        quotable(col[1], clen[1]) ? col[1] : "?");
        }
        im->sects[k].skip = true;
    }
    return 0;
}

/* Reads the annex's lines into the record, once the items are made. */
static int annex_read(struct imp *im)
{
    struct annex ax;
    int rc = 0;

    memset(&ax, 0, sizeof(ax));
    ax.nitems = im->rec->objs[PROTO_T_ITEM].n;
    ax.items = malloc((ax.nitems + 1) * sizeof(*ax.items));
    if (ax.items == NULL) {
        return nomem(im);
    }
    for (size_t l = 0; im->full && l < im->nalines && rc == 0; l++) {
        rc = annex_line(im, &ax, &im->alines[l], true);
    }
    if (rc == 0 && im->full) {
        const struct srv_obj **v = NULL;
        ax.nitems = im->rec->objs[PROTO_T_ITEM].n;
        v = realloc(ax.items, (ax.nitems + 1) * sizeof(*ax.items));
        if (v == NULL) {
            free(ax.items);
            return nomem(im);
        }
        ax.items = v;
    }
    if (rc == 0) {
        srv_rec_items_sorted(im->rec, ax.items);
    }
    for (size_t l = 0; l < im->nalines && rc == 0; l++) {
        rc = annex_line(im, &ax, &im->alines[l], false);
    }
    free(ax.items);
    proto_buf_free(&ax.val, 0);
    return rc;
}

/* ---- import ---- */

/* Recognises the layout from the content: an HTML export is refused (its annex is for
 * people to see), a Markdown export (a first line "# " and an annex) is read from its annex
 * alone, anything else as the text layout. */
static int detect(struct imp *im, const char *text, size_t len)
{
    size_t i = 0, no = 1;
    while (i < len && is_space((unsigned char)text[i])) {
        no += text[i] == '\n';
        i++;
    }
    if (i + 3 <= len && (unsigned char)text[i] == 0xef && (unsigned char)text[i + 1] == 0xbb &&
        (unsigned char)text[i + 2] == 0xbf) {
        i += 3; /* a byte order mark */
    }
    if (starts_ci(text + i, len - i, "<!doctype html") || starts_ci(text + i, len - i, "<html")) {
        return fail(im, PROTO_EINVAL, no,
                    "an HTML export cannot be imported: import the text or Markdown export "
                    "of the meeting instead, or a report in the layout of the sample report");
    }
    im->full =
        len - i >= 2 && text[i] == '#' && text[i + 1] == ' ' && annex_find(text, len) != SIZE_MAX;
    return 0;
}

/* Everything else a report without an annex says, read from its prose. */
static int infer(struct imp *im)
{
    int rc = 0;

    if ((rc = title_parent(im)) < 0 || (rc = group_from_title(im)) < 0 ||
        (rc = meeting_place(im)) < 0 || (rc = report_ref(im)) < 0) {
        return rc;
    }
    deadline_days(im);
    if ((rc = docs(im)) < 0 || (rc = decisions(im)) < 0 ||
        (im->start_y > 0 && (rc = sessions(im)) < 0) || (rc = interims_of(im, L_BODY)) < 0 ||
        (rc = interims_of(im, L_ACTION)) < 0 || (rc = people(im)) < 0) {
        return rc;
    }
    return 0;
}

int srv_report_import(const char *text, size_t len, struct srv_rec **out, char *err, size_t errlen)
{
    struct imp im;
    int rc = 0;

    memset(&im, 0, sizeof(im));
    im.err = err;
    im.errlen = errlen;
    im.next_id = 1;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    *out = NULL;
    if (text == NULL && len > 0) {
        return fail(&im, PROTO_EINVAL, 0, "no text");
    }
    if (len > SRV_REPORT_MAX) {
        size_t no = 1;
        for (size_t i = 0; i < SRV_REPORT_MAX; i++) {
            no += text[i] == '\n';
        }
        return fail(&im, PROTO_ETOOBIG, no, "report over %d bytes", SRV_REPORT_MAX);
    }
    if ((rc = detect(&im, text ? text : "", len)) < 0) {
        return rc;
    }
    im.rec = srv_rec_new("import");
    if (im.rec == NULL) {
        return nomem(&im);
    }
    if ((rc = split_lines(&im, text ? text : "", len)) < 0 || (rc = annex_prepass(&im)) < 0 ||
        (rc = make_items(&im)) < 0 || (rc = make_bodies(&im)) < 0 || (rc = abstract(&im)) < 0 ||
        (rc = im.annex ? annex_read(&im) : infer(&im)) < 0) {
        goto cleanup;
    }
    *out = im.rec;
    im.rec = NULL;
cleanup:
    srv_rec_free(im.rec);
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        keyset_free(&im.keys[t]);
    }
    keyset_free(&im.bare);
    keyset_free(&im.arefs);
    free(im.lines);
    free(im.alines);
    free(im.sects);
    free(im.buf);
    return rc;
}

/* ---- export ---- */

int srv_report_format_parse(const char *s, size_t len, enum srv_report_format *out)
{
    static const char *const names[] = {"text", "markdown", "html"};
    for (int i = 0; i < 3; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            *out = (enum srv_report_format)i;
            return 0;
        }
    }
    return PROTO_EINVAL;
}

static const char *fstr(const struct srv_obj *o, const char *name, size_t *len)
{
    const struct srv_val *v = field(o, name);
    if (v == NULL || !v->set || v->s == NULL) {
        *len = 0;
        return "";
    }
    *len = v->len;
    return v->s;
}

static const char *fcstr(const struct srv_obj *o, const char *name)
{
    size_t n = 0;
    return fstr(o, name, &n);
}

static int put(struct proto_buf *b, const char *s, size_t n)
{
    return proto_buf_append(b, s, n);
}

static int put_str(struct proto_buf *b, const char *s)
{
    return proto_buf_append(b, s, strlen(s));
}

/* A short value on one line: line breaks become spaces, so a value never starts a line of
 * its own. A tab stays: after a heading's number, or in a line of an action, it starts no
 * section (and an item's title keeps it). */
static int put_oneline(struct proto_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i] == '\n' || s[i] == '\r' ? ' ' : s[i];
        if (put(b, &c, 1) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

/* Next line of s[0..n) from *pos: its start and length; false at the end. */
static bool next_line(const char *s, size_t n, size_t *pos, const char **ln, size_t *len)
{
    const char *nl = NULL;
    if (*pos >= n) {
        return false;
    }
    *ln = s + *pos;
    nl = memchr(*ln, '\n', n - *pos);
    *len = nl ? (size_t)(nl - *ln) : n - *pos;
    *pos += *len + 1;
    return true;
}

static bool is_bullet(const char *s, size_t n)
{
    return n >= 2 && s[0] == '-' && s[1] == ' ';
}

/* The number of the item an object refers to, or "". Found by id (a binary search): a scan
 * of the items per doc or decision made the tables items x docs. */
static const char *item_number(const struct srv_rec *rec, const struct srv_obj *o)
{
    const struct srv_val *v = field(o, "item");
    const struct srv_obj *it = NULL;

    if (v != NULL && v->set) {
        it = srv_rec_find((struct srv_rec *)rec, PROTO_T_ITEM, v->i);
    }
    return it == NULL ? "" : fcstr(it, "number");
}

/* Action refs in order: "RG-IEM-2" < "RG-IEM-10". */
static int ref_cmp(const void *pa, const void *pb)
{
    const struct srv_obj *a = *(const struct srv_obj *const *)pa;
    const struct srv_obj *b = *(const struct srv_obj *const *)pb;
    size_t la = 0, lb = 0, da = 0, db = 0;
    const char *ra = fstr(a, "ref", &la), *rb = fstr(b, "ref", &lb);
    int c = 0;

    while (da < la && is_digit((unsigned char)ra[la - da - 1])) {
        da++;
    }
    while (db < lb && is_digit((unsigned char)rb[lb - db - 1])) {
        db++;
    }
    if (la - da == lb - db && memcmp(ra, rb, la - da) == 0 && da > 0 && db > 0 && da < 10 &&
        db < 10) {
        long long na = strtoll(ra + la - da, NULL, 10), nb = strtoll(rb + lb - db, NULL, 10);
        if (na != nb) {
            return na < nb ? -1 : 1;
        }
    }
    c = strcmp(ra, rb);
    if (c != 0) {
        return c;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

struct view {
    const struct srv_rec *rec;
    const struct srv_obj **items;
    size_t nitems;
    const struct srv_obj **actions;
    size_t nactions;
    int64_t action_item;             /* index in items of the section of actions, or -1 */
    const struct srv_obj **interims; /* by date, then start */
    size_t ninterims;
};

/* Interim meetings in date order: "YYYY-MM-DD" and "HH:MM" sort as text. */
static int interim_cmp(const void *pa, const void *pb)
{
    const struct srv_obj *a = *(const struct srv_obj *const *)pa;
    const struct srv_obj *b = *(const struct srv_obj *const *)pb;
    int c = strcmp(fcstr(a, "date"), fcstr(b, "date"));
    if (c == 0) {
        c = strcmp(fcstr(a, "start"), fcstr(b, "start"));
    }
    return c != 0 ? c : (a->id < b->id ? -1 : a->id > b->id);
}

static int view_make(const struct srv_rec *rec, struct view *v)
{
    memset(v, 0, sizeof(*v));
    v->rec = rec;
    v->nitems = rec->objs[PROTO_T_ITEM].n;
    v->nactions = rec->objs[PROTO_T_ACTION].n;
    v->action_item = -1;
    v->ninterims = rec->objs[PROTO_T_INTERIM].n;
    v->items = malloc((v->nitems + 1) * sizeof(*v->items));
    v->actions = malloc((v->nactions + 1) * sizeof(*v->actions));
    v->interims = malloc((v->ninterims + 1) * sizeof(*v->interims));
    if (v->items == NULL || v->actions == NULL || v->interims == NULL) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < v->ninterims; k++) {
        v->interims[k] = rec->objs[PROTO_T_INTERIM].v[k];
    }
    if (v->ninterims > 1) {
        qsort(v->interims, v->ninterims, sizeof(*v->interims), interim_cmp);
    }
    srv_rec_items_sorted(rec, v->items);
    for (size_t k = 0; k < v->nactions; k++) {
        v->actions[k] = rec->objs[PROTO_T_ACTION].v[k];
    }
    if (v->nactions > 1) {
        qsort(v->actions, v->nactions, sizeof(*v->actions), ref_cmp);
    }
    for (size_t k = 0; k < v->nitems && v->action_item < 0; k++) {
        const char *f = NULL, *t = NULL;
        size_t tl = 0, fl = 0, tol = 0;
        const char *title = fstr(v->items[k], "title", &tl);
        if (action_title(title, tl, &f, &fl, &t, &tol)) {
            v->action_item = (int64_t)k;
        }
    }
    return 0;
}

static void view_free(struct view *v)
{
    free(v->items);
    free(v->actions);
    free(v->interims);
}

/* ---- text ---- */

static int text_lines(struct proto_buf *b, const char *s, size_t n)
{
    size_t pos = 0, len = 0;
    const char *ln = NULL;

    while (next_line(s, n, &pos, &ln, &len)) {
        const char *title = NULL, *tab = NULL;
        size_t tl = 0;
        /* "- x" as "· x", which reads back as "- x"; "-  x" would not. */
        if (is_bullet(ln, len) && len > 2 && !is_space((unsigned char)ln[2])) {
            if (put_str(b, "\xc2\xb7 ") < 0 || put(b, ln + 2, len - 2) < 0) {
                return PROTO_ENOMEM;
            }
        } else if (heading(ln, len, &title, &tl) > 0) {
            /* A line that would read as a section of its own stays in its text. */
            tab = memchr(ln, '\t', len);
            if (put(b, ln, (size_t)(tab - ln)) < 0 || put_str(b, " ") < 0 ||
                put(b, tab + 1, len - (size_t)(tab - ln) - 1) < 0) {
                return PROTO_ENOMEM;
            }
        } else if (put(b, ln, len) < 0) {
            return PROTO_ENOMEM;
        }
        if (put(b, "\n", 1) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

/* "done" or "dropped" for an action that is, else NULL. */
static const char *closed_status(const struct srv_obj *a)
{
    const char *st = fcstr(a, "status");
    return strcmp(st, "done") == 0 ? "done" : strcmp(st, "dropped") == 0 ? "dropped" : NULL;
}

static int text_actions(const struct view *v, struct proto_buf *b)
{
    for (size_t k = 0; k < v->nactions; k++) {
        size_t rl = 0, tl = 0, pos = 0, len = 0;
        const char *ref = fstr(v->actions[k], "ref", &rl);
        const char *text = fstr(v->actions[k], "text", &tl);
        const char *first = "", *st = fcstr(v->actions[k], "status");
        if (next_line(text, tl, &pos, &first, &len) == false) {
            len = 0;
        }
        /* An action done or dropped says so, as "[done]" after its ref. */
        bool closed = strcmp(st, "done") == 0 || strcmp(st, "dropped") == 0;
        if (put_str(b, "\xc2\xb7 ") < 0 || put_oneline(b, ref, rl) < 0 || put_str(b, ":") < 0 ||
            (closed && (put_str(b, " [") < 0 || put_str(b, st) < 0 || put_str(b, "]") < 0)) ||
            (len > 0 && (put_str(b, " ") < 0 || put(b, first, len) < 0)) || put_str(b, "\n") < 0 ||
            (pos < tl && text_lines(b, text + pos, tl - pos) < 0)) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

/* A value of the annex: "\t", "\n", "\r", "\\" for a tab, a line break, a carriage return
 * and a backslash, "\-" for a value that is only "-" (which alone means nil). */
static int put_esc(struct proto_buf *b, const char *s, size_t n)
{
    size_t from = 0;

    if (n == 1 && s[0] == '-') {
        return put_str(b, "\\-");
    }
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '\t':
            e = "\\t";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\\':
            e = "\\\\";
            break;
        default:
            continue;
        }
        if (put(b, s + from, i - from) < 0 || put_str(b, e) < 0) {
            return PROTO_ENOMEM;
        }
        from = i + 1;
    }
    return put(b, s + from, n - from);
}

/* Field k of o as an annex column: "-" for nil, an item by its number. */
static int put_value(struct proto_buf *b, const struct srv_rec *rec, const struct srv_obj *o,
                     size_t k)
{
    const struct srv_val *v = &o->f[k];
    enum proto_fkind kind = proto_type_info(o->type)->fields[k].kind;
    const struct srv_obj *it = NULL;
    char num[24];
    size_t nl = 0;
    const char *s = NULL;

    if (!v->set) {
        return put_str(b, "-");
    }
    if (kind == PROTO_F_INT) {
        snprintf(num, sizeof(num), "%lld", (long long)v->i);
        return put_str(b, num);
    }
    if (kind == PROTO_F_ITEMREF) {
        it = srv_rec_find((struct srv_rec *)rec, PROTO_T_ITEM, v->i);
        s = it != NULL ? fstr(it, "number", &nl) : "";
        /* Only a number can name an item: an item without one is referred to as nil. */
        return proto_number_valid(s, nl) ? put(b, s, nl) : put_str(b, "-");
    }
    return put_esc(b, v->s != NULL ? v->s : "", v->s != NULL ? v->len : 0);
}

/* The annex: the record's fields and objects, each line a type, a tab, then its values in
 * the schema's order (for the meeting: one line per field, its name, a tab, the value).
 * A "#" line names the columns; the importer skips it. */
static int export_annex(const struct view *v, struct proto_buf *b, bool full)
{
    static const char intro[] =
        "\n" ANNEX_MARK "\n"
        "# The record, one line per field of the meeting and per object, columns apart by a\n"
        "# tab. \"-\" is no value; in a value \\t \\n \\r \\\\ \\- stand for a tab, a line\n"
        "# break, a carriage return, a backslash and a value that is only \"-\". The items and\n"
        "# the abstract are the text above; an \"item\" column gives an item's number.\n";
    static const char intro_full[] =
        "\n" ANNEX_MARK "\n"
        "# The record, one line per field of the meeting and per object, columns apart by a\n"
        "# tab. \"-\" is no value; in a value \\t \\n \\r \\\\ \\- stand for a tab, a line\n"
        "# break, a carriage return, a backslash and a value that is only \"-\". An \"item\"\n"
        "# column gives an item's number. The import of this export reads only these lines.\n";
    const struct srv_rec *rec = v->rec;

    if (put_str(b, full ? intro_full : intro) < 0 ||
        (!full && v->action_item < 0 && v->nactions > 0 && put_str(b, NOT_ITEM "\t0\n") < 0)) {
        return PROTO_ENOMEM;
    }
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        const struct proto_typeinfo *ti = proto_type_info((enum proto_type)t);
        if (t == PROTO_T_ITEM && !full) {
            continue;
        }
        if (put_str(b, "# ") < 0 || put_str(b, ti->name) < 0 ||
            (t == PROTO_T_MEETING && put_str(b, "\tfield\tvalue") < 0)) {
            return PROTO_ENOMEM;
        }
        for (size_t k = 0; t != PROTO_T_MEETING && k < ti->nfields; k++) {
            if (annex_field((enum proto_type)t, k, full) &&
                (put_str(b, "\t") < 0 || put_str(b, ti->fields[k].name) < 0)) {
                return PROTO_ENOMEM;
            }
        }
        if (put_str(b, "\n") < 0) {
            return PROTO_ENOMEM;
        }
        for (size_t k = 0; t == PROTO_T_MEETING && k < ti->nfields; k++) {
            if (annex_field(PROTO_T_MEETING, k, full) &&
                (put_str(b, "meeting\t") < 0 || put_str(b, ti->fields[k].name) < 0 ||
                 put_str(b, "\t") < 0 || put_value(b, rec, &rec->meeting, k) < 0 ||
                 put_str(b, "\n") < 0)) {
                return PROTO_ENOMEM;
            }
        }
        for (size_t i = 0; i < rec->objs[t].n; i++) {
            const struct srv_obj *o = rec->objs[t].v[i];
            if (put_str(b, ti->name) < 0) {
                return PROTO_ENOMEM;
            }
            for (size_t k = 0; k < ti->nfields; k++) {
                if (annex_field((enum proto_type)t, k, full) &&
                    (put_str(b, "\t") < 0 || put_value(b, rec, o, k) < 0)) {
                    return PROTO_ENOMEM;
                }
            }
            if (put_str(b, "\n") < 0) {
                return PROTO_ENOMEM;
            }
        }
    }
    return 0;
}

/* An interim meeting on one line: "2023-07-27 13:00-15:00 virtual: topic (contributions by
 * 2023-07-20)". */
static int interim_summary(const struct view *v, const struct srv_obj *o, struct proto_buf *b)
{
    size_t pl = 0;
    const char *topic = fstr(o, "topic", &pl), *a = fcstr(o, "start"), *z = fcstr(o, "end"),
               *mode = fcstr(o, "mode");
    char deadline[11] = "";
    srv_rec_interim_deadline(v->rec, o, deadline);
    return put_str(b, fcstr(o, "date")) < 0 ||
                   (a[0] != '\0' && (put_str(b, " ") < 0 || put_str(b, a) < 0)) ||
                   (z[0] != '\0' && (put_str(b, "-") < 0 || put_str(b, z) < 0)) ||
                   (mode[0] != '\0' && (put_str(b, " ") < 0 || put_str(b, mode) < 0)) ||
                   (pl > 0 && (put_str(b, ": ") < 0 || put_oneline(b, topic, pl) < 0)) ||
                   (deadline[0] != '\0' && (put_str(b, " (contributions by ") < 0 ||
                                            put_str(b, deadline) < 0 || put_str(b, ")") < 0))
               ? PROTO_ENOMEM
               : 0;
}

/* "Label: value" when the meeting has the field. */
static int head_field(struct proto_buf *b, const struct srv_obj *mt, const char *label,
                      const char *name)
{
    size_t n = 0;
    const char *s = fstr(mt, name, &n);
    if (n == 0) {
        return 0;
    }
    return put_str(b, label) < 0 || put_oneline(b, s, n) < 0 || put_str(b, "\n") < 0 ? PROTO_ENOMEM
                                                                                     : 0;
}

/* The report's title block: the meeting's title, group, venue, dates and report ref (those
 * it has), then its future meetings in date order with their contribution deadlines. It
 * stands before the abstract, where the import reads nothing of a text with an annex. */
static int text_head(const struct view *v, struct proto_buf *b)
{
    const struct srv_obj *mt = &v->rec->meeting;
    size_t at = b->len, tl = 0, sl = 0, el = 0;
    const char *title = fstr(mt, "title", &tl), *st = fstr(mt, "start", &sl),
               *en = fstr(mt, "end", &el);
    if ((tl > 0 && (put_oneline(b, title, tl) < 0 || put_str(b, "\n") < 0)) ||
        head_field(b, mt, "Group: ", "group") < 0 || head_field(b, mt, "Parent: ", "parent") < 0 ||
        head_field(b, mt, "Venue: ", "venue") < 0) {
        return PROTO_ENOMEM;
    }
    if (sl > 0 && (put_str(b, "Dates: ") < 0 || put_oneline(b, st, sl) < 0 ||
                   (el > 0 && (el != sl || memcmp(st, en, sl) != 0) &&
                    (put_str(b, " to ") < 0 || put_oneline(b, en, el) < 0)) ||
                   put_str(b, "\n") < 0)) {
        return PROTO_ENOMEM;
    }
    if (head_field(b, mt, "Report: ", "report_ref") < 0) {
        return PROTO_ENOMEM;
    }
    if (v->ninterims > 0 && put_str(b, "Future meetings:\n") < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < v->ninterims; k++) {
        if (put_str(b, "\xc2\xb7 ") < 0 || interim_summary(v, v->interims[k], b) < 0 ||
            put_str(b, "\n") < 0) {
            return PROTO_ENOMEM;
        }
    }
    return b->len > at && put_str(b, "\n") < 0 ? PROTO_ENOMEM : 0;
}

static int export_text(const struct view *v, struct proto_buf *b)
{
    const struct srv_obj *mt = &v->rec->meeting;
    size_t al = 0, pos = 0, len = 0;
    const char *ab = fstr(mt, "abstract", &al), *ln = NULL;

    if (text_head(v, b) < 0 || put_str(b, "\tAbstract:\n") < 0) {
        return PROTO_ENOMEM;
    }
    while (next_line(ab, al, &pos, &ln, &len)) {
        if (len > 0 && (put_str(b, "\t") < 0 || put(b, ln, len) < 0 || put_str(b, "\n") < 0)) {
            return PROTO_ENOMEM;
        }
    }
    if (put_str(b, "\n\n") < 0) {
        return PROTO_ENOMEM;
    }
    /* Actions need a section to live in; a record without one gets it first. */
    if (v->action_item < 0 && v->nactions > 0) {
        size_t gl = 0, tl = 0;
        const char *g = fstr(mt, "group", &gl), *to = fstr(v->actions[0], "to", &tl);
        if (put_str(b, "0\tActions") < 0 ||
            (gl > 0 && (put_str(b, " from ") < 0 || put_oneline(b, g, gl) < 0)) ||
            (tl > 0 && (put_str(b, " to ") < 0 || put_oneline(b, to, tl) < 0)) ||
            put_str(b, "\n") < 0 || text_actions(v, b) < 0) {
            return PROTO_ENOMEM;
        }
    }
    for (size_t k = 0; k < v->nitems; k++) {
        size_t nl = 0, tl = 0, bl = 0;
        const char *num = fstr(v->items[k], "number", &nl);
        const char *title = fstr(v->items[k], "title", &tl);
        const char *body = fstr(v->items[k], "body", &bl);
        if (put_oneline(b, num, nl) < 0 || put_str(b, "\t") < 0 || put_oneline(b, title, tl) < 0 ||
            put_str(b, "\n") < 0 || text_lines(b, body, bl) < 0) {
            return PROTO_ENOMEM;
        }
        /* The body first: lines after an action would be read back as its text. */
        if ((int64_t)k == v->action_item && text_actions(v, b) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return export_annex(v, b, false);
}

/* ---- Markdown ---- */

/* Escapes what Markdown would read as markup. In a table cell (cell), line breaks become
 * <br>, elsewhere spaces; at the start of a line (bol), also what would start a heading, a
 * list or a quote. */
static int md_esc(struct proto_buf *b, const char *s, size_t n, bool cell, bool bol)
{
    bool digits = true; /* s[0..i) is all digits: "1." there would start a list */

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool esc = strchr("\\`*_[]<>|&#~!", c) != NULL ||
                   (bol && i == 0 && (c == '-' || c == '+' || c == '=')) ||
                   (bol && i > 0 && digits && (c == '.' || c == ')'));
        digits = digits && is_digit((unsigned char)c);
        if (c == '\n' || c == '\r') {
            if (put_str(b, cell ? "<br>" : " ") < 0) {
                return PROTO_ENOMEM;
            }
            continue;
        }
        if ((esc && put(b, "\\", 1) < 0) || put(b, &c, 1) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

static int md_text(struct proto_buf *b, const char *s, size_t n)
{
    size_t pos = 0, len = 0;
    const char *ln = NULL;
    bool list = false, any = false;

    while (next_line(s, n, &pos, &ln, &len)) {
        bool bullet = is_bullet(ln, len);
        if (len == 0) {
            continue;
        }
        /* Paragraphs apart; a list's items together. */
        if (any && !(bullet && list) && put_str(b, "\n") < 0) {
            return PROTO_ENOMEM;
        }
        if ((bullet && (put_str(b, "- ") < 0 || md_esc(b, ln + 2, len - 2, false, true) < 0)) ||
            (!bullet && md_esc(b, ln, len, false, true) < 0) || put_str(b, "\n") < 0) {
            return PROTO_ENOMEM;
        }
        list = bullet;
        any = true;
    }
    return 0;
}

static int md_cell(struct proto_buf *b, const char *s, size_t n)
{
    if (put_str(b, " ") < 0 || md_esc(b, s, n, true, false) < 0 || put_str(b, " |") < 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

static int md_cells(struct proto_buf *b, const char *const *cols, size_t n)
{
    if (put_str(b, "|") < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < n; k++) {
        if (md_cell(b, cols[k], strlen(cols[k])) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return put_str(b, "\n");
}

/* ---- HTML ---- */

int srv_report_html_escape(struct proto_buf *b, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            continue;
        }
        if (put(b, s + from, i - from) < 0 || put_str(b, e) < 0) {
            return PROTO_ENOMEM;
        }
        from = i + 1;
    }
    return put(b, s + from, n - from);
}

static int html_text(struct proto_buf *b, const char *s, size_t n)
{
    size_t pos = 0, len = 0;
    const char *ln = NULL;
    bool list = false;

    while (next_line(s, n, &pos, &ln, &len)) {
        bool bullet = is_bullet(ln, len);
        if (len == 0) {
            continue;
        }
        if (bullet != list && put_str(b, bullet ? "<ul>\n" : "</ul>\n") < 0) {
            return PROTO_ENOMEM;
        }
        list = bullet;
        if (put_str(b, bullet ? "<li>" : "<p>") < 0 ||
            srv_report_html_escape(b, bullet ? ln + 2 : ln, bullet ? len - 2 : len) < 0 ||
            put_str(b, bullet ? "</li>\n" : "</p>\n") < 0) {
            return PROTO_ENOMEM;
        }
    }
    return list ? put_str(b, "</ul>\n") : 0;
}

/* ---- tables, shared by Markdown and HTML ---- */

struct table {
    const char *title;
    const char *const *cols;
    size_t ncols;
};

static int table_head(struct proto_buf *b, enum srv_report_format fmt, const struct table *t,
                      size_t rows)
{
    if (fmt == SRV_REPORT_MARKDOWN) {
        if (put_str(b, "\n## ") < 0 || put_str(b, t->title) < 0 || put_str(b, "\n\n") < 0) {
            return PROTO_ENOMEM;
        }
        if (rows == 0) {
            return put_str(b, "None.\n");
        }
        if (md_cells(b, t->cols, t->ncols) < 0 || put_str(b, "|") < 0) {
            return PROTO_ENOMEM;
        }
        for (size_t k = 0; k < t->ncols; k++) {
            if (put_str(b, " --- |") < 0) {
                return PROTO_ENOMEM;
            }
        }
        return put_str(b, "\n");
    }
    if (put_str(b, "<h2>") < 0 || put_str(b, t->title) < 0 || put_str(b, "</h2>\n") < 0) {
        return PROTO_ENOMEM;
    }
    if (rows == 0) {
        return put_str(b, "<p class=\"none\">None.</p>\n");
    }
    if (put_str(b, "<table>\n<tr>") < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < t->ncols; k++) {
        if (put_str(b, "<th>") < 0 || put_str(b, t->cols[k]) < 0 || put_str(b, "</th>") < 0) {
            return PROTO_ENOMEM;
        }
    }
    return put_str(b, "</tr>\n");
}

static int table_row(struct proto_buf *b, enum srv_report_format fmt, const char *const *vals,
                     const size_t *lens, size_t n)
{
    if (fmt == SRV_REPORT_MARKDOWN) {
        if (put_str(b, "|") < 0) {
            return PROTO_ENOMEM;
        }
        for (size_t k = 0; k < n; k++) {
            if (md_cell(b, vals[k], lens[k]) < 0) {
                return PROTO_ENOMEM;
            }
        }
        return put_str(b, "\n");
    }
    if (put_str(b, "<tr>") < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < n; k++) {
        if (put_str(b, "<td>") < 0 || srv_report_html_escape(b, vals[k], lens[k]) < 0 ||
            put_str(b, "</td>") < 0) {
            return PROTO_ENOMEM;
        }
    }
    return put_str(b, "</tr>\n");
}

static int table_end(struct proto_buf *b, enum srv_report_format fmt, size_t rows)
{
    return fmt == SRV_REPORT_HTML && rows > 0 ? put_str(b, "</table>\n") : 0;
}

/* One row of an object: the values of the named fields; "item" shows the item's number,
 * "deadline" the computed date. */
static int obj_row(struct proto_buf *b, enum srv_report_format fmt, const struct view *v,
                   const struct srv_obj *o, const char *const *names, size_t n)
{
    const char *vals[8];
    size_t lens[8];
    char ints[8][24];
    char deadline[11];

    for (size_t k = 0; k < n && k < 8; k++) {
        const struct srv_val *fv = field(o, names[k]);
        vals[k] = "";
        lens[k] = 0;
        if (strcmp(names[k], "item") == 0) {
            vals[k] = item_number(v->rec, o);
            lens[k] = strlen(vals[k]);
        } else if (strcmp(names[k], "deadline") == 0) {
            srv_rec_interim_deadline(v->rec, o, deadline);
            vals[k] = deadline;
            lens[k] = strlen(deadline);
        } else if (fv != NULL && fv->set && fv->s == NULL) {
            snprintf(ints[k], sizeof(ints[k]), "%lld", (long long)fv->i);
            vals[k] = ints[k];
            lens[k] = strlen(ints[k]);
        } else if (fv != NULL) {
            vals[k] = fstr(o, names[k], &lens[k]);
        }
    }
    return table_row(b, fmt, vals, lens, n < 8 ? n : 8);
}

static int obj_table(struct proto_buf *b, enum srv_report_format fmt, const struct view *v,
                     const char *title, enum proto_type t, const char *const *cols,
                     const char *const *names, size_t n)
{
    const struct srv_objvec *vec = &v->rec->objs[t];
    struct table tb = {title, cols, n};
    size_t rows = t == PROTO_T_ACTION ? v->nactions : t == PROTO_T_INTERIM ? v->ninterims : vec->n;

    if (table_head(b, fmt, &tb, rows) < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < rows; k++) {
        const struct srv_obj *o = t == PROTO_T_ACTION    ? v->actions[k]
                                  : t == PROTO_T_INTERIM ? v->interims[k]
                                                         : vec->v[k];
        if (obj_row(b, fmt, v, o, names, n) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return table_end(b, fmt, rows);
}

/* The tables that end every Markdown and HTML export, in their order. */
static const char *const acols[] = {"Ref", "To", "Owner", "Status", "Due", "Text"};
static const char *const afld[] = {"ref", "to", "owner", "status", "due", "text"};
static const char *const dcols[] = {"Ref", "Revision", "Title", "Source", "Item", "Status"};
static const char *const dfld[] = {"ref", "revision", "title", "source", "item", "status"};
static const char *const ecols[] = {"Item", "Kind", "Text"};
static const char *const efld[] = {"item", "kind", "text"};
static const char *const scols[] = {"Date", "Start", "End", "Kind", "Title"};
static const char *const sfld[] = {"date", "start", "end", "kind", "title"};
static const char *const icols[] = {"Date", "Start", "End", "Mode", "Topic", "Deadline"};
static const char *const ifld[] = {"date", "start", "end", "mode", "topic", "deadline"};
static const char *const pcols[] = {"Name", "Affiliation", "Role", "Note"};
static const char *const pfld[] = {"name", "affiliation", "role", "note"};

static const struct table_spec {
    const char *key; /* the section's name in srv_report_html_sections */
    const char *title;
    enum proto_type t;
    const char *const *cols, *const *names;
    size_t n;
} table_specs[] = {
    {"actions", "Actions", PROTO_T_ACTION, acols, afld, 6},
    {"docs", "Documents", PROTO_T_DOC, dcols, dfld, 6},
    {"decisions", "Decisions", PROTO_T_DECISION, ecols, efld, 3},
    {"sessions", "Sessions", PROTO_T_SESSION, scols, sfld, 5},
    {"interims", "Interim meetings", PROTO_T_INTERIM, icols, ifld, 6},
    {"people", "People", PROTO_T_PERSON, pcols, pfld, 4},
};

static int spec_table(struct proto_buf *b, enum srv_report_format fmt, const struct view *v,
                      const struct table_spec *ts)
{
    return obj_table(b, fmt, v, ts->title, ts->t, ts->cols, ts->names, ts->n);
}

static int tables(struct proto_buf *b, enum srv_report_format fmt, const struct view *v)
{
    for (size_t k = 0; k < sizeof(table_specs) / sizeof(table_specs[0]); k++) {
        if (spec_table(b, fmt, v, &table_specs[k]) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

/* The meeting's own short fields, as a two-column table. */
static int meeting_table(struct proto_buf *b, enum srv_report_format fmt, const struct view *v)
{
    static const char *const names[] = {"group",         "parent", "venue",      "start",
                                        "end",           "tz",     "report_ref", "action_prefix",
                                        "deadline_days", "status"};
    static const char *const labels[] = {"Group",  "Parent",        "Venue",
                                         "Start",  "End",           "Time zone",
                                         "Report", "Action prefix", "Contribution deadline (days)",
                                         "Status"};
    static const char *const cols[] = {"Field", "Value"};
    struct table tb = {"Meeting", cols, 2};

    if (table_head(b, fmt, &tb, 1) < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const struct srv_val *fv = field(&v->rec->meeting, names[k]);
        char num[24];
        const char *vals[2] = {labels[k], NULL};
        size_t lens[2] = {strlen(labels[k]), 0};
        if (fv == NULL || !fv->set) {
            continue;
        }
        if (fv->s == NULL) {
            snprintf(num, sizeof(num), "%lld", (long long)fv->i);
            vals[1] = num;
            lens[1] = strlen(num);
        } else {
            vals[1] = fv->s;
            lens[1] = fv->len;
        }
        if (table_row(b, fmt, vals, lens, 2) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return table_end(b, fmt, 1);
}

/* The actions as a list, "REF: [done] text". */
static int md_actions(const struct view *v, struct proto_buf *b)
{
    for (size_t a = 0; a < v->nactions; a++) {
        size_t rl = 0, xl = 0;
        const char *ref = fstr(v->actions[a], "ref", &rl);
        const char *text = fstr(v->actions[a], "text", &xl);
        const char *st = closed_status(v->actions[a]);
        if (put_str(b, "- **") < 0 || md_esc(b, ref, rl, true, false) < 0 ||
            put_str(b, "**: ") < 0 ||
            (st != NULL &&
             (put_str(b, "\\[") < 0 || put_str(b, st) < 0 || put_str(b, "\\] ") < 0)) ||
            md_esc(b, text, xl, true, false) < 0 || put_str(b, "\n") < 0) {
            return PROTO_ENOMEM;
        }
    }
    return 0;
}

/* The heading of the section of actions a record without one gets: "0 Actions from GROUP
 * to TO", as the text export names it. */
static int actions_title(const struct view *v, struct proto_buf *b)
{
    size_t gl = 0, tl = 0;
    const char *g = fstr(&v->rec->meeting, "group", &gl), *to = fstr(v->actions[0], "to", &tl);
    return put_str(b, "0 Actions") < 0 ||
                   (gl > 0 && (put_str(b, " from ") < 0 || put_oneline(b, g, gl) < 0)) ||
                   (tl > 0 && (put_str(b, " to ") < 0 || put_oneline(b, to, tl) < 0))
               ? PROTO_ENOMEM
               : 0;
}

/* The future meetings as a list of one line each (summary), in a format. */
static int future_list(const struct view *v, struct proto_buf *b, enum srv_report_format fmt)
{
    if (v->ninterims == 0) {
        return 0;
    }
    if (put_str(b, fmt == SRV_REPORT_HTML ? "<p><strong>Future meetings</strong></p>\n<ul>\n"
                                          : "\n**Future meetings**\n\n") < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < v->ninterims; k++) {
        struct proto_buf ln = {0};
        int rc = interim_summary(v, v->interims[k], &ln);
        if (rc == 0 && fmt == SRV_REPORT_HTML) {
            rc = put_str(b, "<li>") < 0 ||
                         srv_report_html_escape(b, (const char *)ln.data, ln.len) < 0 ||
                         put_str(b, "</li>\n") < 0
                     ? PROTO_ENOMEM
                     : 0;
        } else if (rc == 0) {
            rc = put_str(b, "- ") < 0 ||
                         md_esc(b, (const char *)ln.data, ln.len, true, false) < 0 ||
                         put_str(b, "\n") < 0
                     ? PROTO_ENOMEM
                     : 0;
        }
        proto_buf_free(&ln, 0);
        if (rc < 0) {
            return PROTO_ENOMEM;
        }
    }
    return fmt == SRV_REPORT_HTML && put_str(b, "</ul>\n") < 0 ? PROTO_ENOMEM : 0;
}

static int export_markdown(const struct view *v, struct proto_buf *b)
{
    size_t tl = 0, al = 0;
    const char *title = fstr(&v->rec->meeting, "title", &tl);
    const char *ab = fstr(&v->rec->meeting, "abstract", &al);

    if (put_str(b, "# ") < 0 ||
        (tl > 0 ? md_esc(b, title, tl, false, false) : put_str(b, "Meeting report")) < 0 ||
        put_str(b, "\n") < 0 || meeting_table(b, SRV_REPORT_MARKDOWN, v) < 0) {
        return PROTO_ENOMEM;
    }
    if (future_list(v, b, SRV_REPORT_MARKDOWN) < 0 ||
        (al > 0 && (put_str(b, "\n## Abstract\n\n") < 0 || md_text(b, ab, al) < 0))) {
        return PROTO_ENOMEM;
    }
    if (v->action_item < 0 && v->nactions > 0) {
        struct proto_buf t = {0};
        int rc = actions_title(v, &t) < 0 || put_str(b, "\n## ") < 0 ||
                         md_esc(b, (const char *)t.data, t.len, false, false) < 0 ||
                         put_str(b, "\n\n") < 0 || md_actions(v, b) < 0
                     ? PROTO_ENOMEM
                     : 0;
        proto_buf_free(&t, 0);
        if (rc < 0) {
            return rc;
        }
    }
    for (size_t k = 0; k < v->nitems; k++) {
        size_t nl = 0, il = 0, bl = 0;
        const char *num = fstr(v->items[k], "number", &nl);
        const char *it = fstr(v->items[k], "title", &il);
        const char *body = fstr(v->items[k], "body", &bl);
        if (put_str(b, "\n## ") < 0 || md_esc(b, num, nl, false, false) < 0 ||
            (nl > 0 && put_str(b, " ") < 0) || md_esc(b, it, il, false, false) < 0 ||
            put_str(b, "\n\n") < 0 || md_text(b, body, bl) < 0) {
            return PROTO_ENOMEM;
        }
        if ((int64_t)k == v->action_item && v->nactions > 0 &&
            ((bl > 0 && put_str(b, "\n") < 0) || md_actions(v, b) < 0)) {
            return PROTO_ENOMEM;
        }
    }
    /* The annex, in a fence so that it reads as it is; it imports back to the record. */
    if (tables(b, SRV_REPORT_MARKDOWN, v) < 0 || put_str(b, "\n```") < 0 ||
        export_annex(v, b, true) < 0 || put_str(b, "```\n") < 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

static const char html_style[] =
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
    "line-height:1.45;color:#222}"
    "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0;width:100%}"
    "th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}td,.actions li{white-space:pre-wrap}.none{color:#777}"
    "footer{margin-top:2em;color:#555;font-size:.9em}";

/* The actions as a list, "REF: [done] text". */
static int html_actions(const struct view *v, struct proto_buf *b)
{
    if (put_str(b, "<ul class=\"actions\">\n") < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t a = 0; a < v->nactions; a++) {
        size_t rl = 0, xl = 0;
        const char *ref = fstr(v->actions[a], "ref", &rl);
        const char *text = fstr(v->actions[a], "text", &xl);
        const char *st = closed_status(v->actions[a]);
        if (put_str(b, "<li><strong>") < 0 || srv_report_html_escape(b, ref, rl) < 0 ||
            put_str(b, "</strong>: ") < 0 ||
            (st != NULL && (put_str(b, "[") < 0 || put_str(b, st) < 0 || put_str(b, "] ") < 0)) ||
            srv_report_html_escape(b, text, xl) < 0 || put_str(b, "</li>\n") < 0) {
            return PROTO_ENOMEM;
        }
    }
    return put_str(b, "</ul>\n") < 0 ? PROTO_ENOMEM : 0;
}

/* The HTML export's body is made of these sections, in this order; the live view shows
 * them one by one (srv_report_html_sections). */

static const char *html_title(const struct view *v, size_t *tl)
{
    const char *title = fstr(&v->rec->meeting, "title", tl);
    if (*tl == 0) {
        title = "Meeting report";
        *tl = strlen(title);
    }
    return title;
}

/* The title block: the title, the meeting's table, the future meetings. */
static int html_head(struct proto_buf *b, const struct view *v)
{
    size_t tl = 0;
    const char *title = html_title(v, &tl);
    if (put_str(b, "<h1>") < 0 || srv_report_html_escape(b, title, tl) < 0 ||
        put_str(b, "</h1>\n") < 0 || meeting_table(b, SRV_REPORT_HTML, v) < 0 ||
        future_list(v, b, SRV_REPORT_HTML) < 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

static int html_abstract(struct proto_buf *b, const struct view *v)
{
    size_t al = 0;
    const char *ab = fstr(&v->rec->meeting, "abstract", &al);
    if (al > 0 && (put_str(b, "<h2>Abstract</h2>\n") < 0 || html_text(b, ab, al) < 0)) {
        return PROTO_ENOMEM;
    }
    return 0;
}

/* The actions under a heading of their own, when no section of the agenda holds them. */
static int html_actions_alone(struct proto_buf *b, const struct view *v)
{
    if (v->action_item >= 0 || v->nactions == 0) {
        return 0;
    }
    struct proto_buf t = {0};
    int rc = actions_title(v, &t) < 0 || put_str(b, "<h2>") < 0 ||
                     srv_report_html_escape(b, (const char *)t.data, t.len) < 0 ||
                     put_str(b, "</h2>\n") < 0 || html_actions(v, b) < 0
                 ? PROTO_ENOMEM
                 : 0;
    proto_buf_free(&t, 0);
    return rc;
}

/* Section k of the agenda, with the actions under the section that holds them. */
static int html_item(struct proto_buf *b, const struct view *v, size_t k)
{
    size_t nl = 0, il = 0, bl = 0;
    const char *num = fstr(v->items[k], "number", &nl);
    const char *it = fstr(v->items[k], "title", &il);
    const char *body = fstr(v->items[k], "body", &bl);
    if (put_str(b, "<h2>") < 0 || srv_report_html_escape(b, num, nl) < 0 ||
        (nl > 0 && put_str(b, " ") < 0) || srv_report_html_escape(b, it, il) < 0 ||
        put_str(b, "</h2>\n") < 0 || html_text(b, body, bl) < 0) {
        return PROTO_ENOMEM;
    }
    if ((int64_t)k == v->action_item && v->nactions > 0 && html_actions(v, b) < 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

/* The annex as in the Markdown export, for people to see (HTML is not imported). */
static int html_annex(struct proto_buf *b, const struct view *v)
{
    struct proto_buf ax = {0};
    int rc = export_annex(v, &ax, true) < 0 || put_str(b, "<pre class=\"annex\">") < 0 ||
                     srv_report_html_escape(b, (const char *)ax.data, ax.len) < 0 ||
                     put_str(b, "</pre>\n") < 0
                 ? PROTO_ENOMEM
                 : 0;
    proto_buf_free(&ax, 0);
    return rc;
}

static int export_html(const struct view *v, struct proto_buf *b)
{
    size_t tl = 0;
    const char *title = html_title(v, &tl);

    if (put_str(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n") < 0 ||
        put_str(b, "<title>") < 0 || srv_report_html_escape(b, title, tl) < 0 ||
        put_str(b, "</title>\n<style>") < 0 || put_str(b, html_style) < 0 ||
        put_str(b, "</style>\n</head>\n<body>\n") < 0 || html_head(b, v) < 0 ||
        html_abstract(b, v) < 0 || html_actions_alone(b, v) < 0) {
        return PROTO_ENOMEM;
    }
    for (size_t k = 0; k < v->nitems; k++) {
        if (html_item(b, v, k) < 0) {
            return PROTO_ENOMEM;
        }
    }
    return tables(b, SRV_REPORT_HTML, v) < 0 || html_annex(b, v) < 0 ? PROTO_ENOMEM : 0;
}

const char *srv_report_html_style(void)
{
    return html_style;
}

/* Hands the section in b to cb as key and empties b; an empty section is left out. */
static int hand(struct proto_buf *b, const char *key, int64_t id, srv_report_section_cb cb,
                void *ud)
{
    int rc = b->len > 0 ? cb(ud, key, id, (const char *)b->data, b->len) : 0;
    b->len = 0;
    return rc;
}

int srv_report_html_sections(const struct srv_rec *rec, srv_report_section_cb cb, void *ud)
{
    struct view v;
    struct proto_buf b = {0};
    char key[32];
    int rc = view_make(rec, &v);
    if (rc < 0) {
        goto cleanup;
    }
    if ((rc = html_head(&b, &v)) != 0 || (rc = hand(&b, "head", 0, cb, ud)) != 0 ||
        (rc = html_abstract(&b, &v)) != 0 || (rc = hand(&b, "abstract", 0, cb, ud)) != 0 ||
        (rc = html_actions_alone(&b, &v)) != 0 || (rc = hand(&b, "actions-list", 0, cb, ud)) != 0) {
        goto cleanup;
    }
    for (size_t k = 0; k < v.nitems; k++) {
        snprintf(key, sizeof(key), "item-%lld", (long long)v.items[k]->id);
        if ((rc = html_item(&b, &v, k)) != 0 || (rc = hand(&b, key, v.items[k]->id, cb, ud)) != 0) {
            goto cleanup;
        }
    }
    for (size_t k = 0; k < sizeof(table_specs) / sizeof(table_specs[0]); k++) {
        if ((rc = spec_table(&b, SRV_REPORT_HTML, &v, &table_specs[k])) != 0 ||
            (rc = hand(&b, table_specs[k].key, 0, cb, ud)) != 0) {
            goto cleanup;
        }
    }
    if ((rc = html_annex(&b, &v)) != 0 || (rc = hand(&b, "annex", 0, cb, ud)) != 0) {
        goto cleanup;
    }
cleanup:
    proto_buf_free(&b, 0);
    view_free(&v);
    return rc;
}

int srv_report_export(const struct srv_rec *rec, enum srv_report_format fmt, int64_t seq,
                      const char *head_hex, const char *sig_b64, struct proto_buf *out)
{
    struct view v;
    char tail[320], hex[65];
    size_t hl = 0;
    int rc = 0;

    rc = view_make(rec, &v);
    if (rc < 0) {
        goto cleanup;
    }
    switch (fmt) {
    case SRV_REPORT_TEXT:
        rc = export_text(&v, out);
        break;
    case SRV_REPORT_MARKDOWN:
        rc = export_markdown(&v, out);
        break;
    case SRV_REPORT_HTML:
        rc = export_html(&v, out);
        break;
    default:
        rc = PROTO_EINVAL;
        goto cleanup;
    }
    if (rc < 0) {
        rc = PROTO_ENOMEM;
        goto cleanup;
    }
    /* The audit head is the last line in every format; in HTML the closing tags share that
     * line so that it stays the last one. Only hex digits are copied: the line is markup. */
    for (size_t k = 0; head_hex != NULL && head_hex[k] != '\0' && hl < 64; k++) {
        if (is_digit((unsigned char)head_hex[k]) ||
            (lower(head_hex[k]) >= 'a' && lower(head_hex[k]) <= 'f')) {
            hex[hl++] = head_hex[k];
        }
    }
    hex[hl] = '\0';
    /* The signature, when given, is base64: only its alphabet is copied. */
    char sig[2 + 9 + 128] = "";
    size_t sl = 0;
    if (sig_b64 != NULL) {
        sl = (size_t)snprintf(sig, sizeof(sig), ", signed ");
        for (size_t k = 0; sig_b64[k] != '\0' && sl + 1 < sizeof(sig); k++) {
            char c = sig_b64[k];
            if (is_digit((unsigned char)c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '+' || c == '/' || c == '=') {
                sig[sl++] = c;
            }
        }
        sig[sl] = '\0';
    }
    snprintf(tail, sizeof(tail), "%sAudit head: seq %lld, hash %s%s%s\n",
             fmt == SRV_REPORT_HTML ? "<footer>" : (fmt == SRV_REPORT_MARKDOWN ? "\n" : ""),
             (long long)seq, hex, sig, fmt == SRV_REPORT_HTML ? "</footer></body></html>" : "");
    rc = put_str(out, tail) < 0 ? PROTO_ENOMEM : 0;
cleanup:
    view_free(&v);
    return rc;
}
