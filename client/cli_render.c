/* cli_render.c - tables, safe strings, times and JSON for the confer CLI. */
#include "cli_render.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "proto_err.h"
#include "proto_util.h"

#define MIN_COL  3
#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */

int cli_term_width(int fd)
{
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    if (cols != NULL && cols[0] >= '1' && cols[0] <= '9' && strlen(cols) <= 4 &&
        strspn(cols, "0123456789") == strlen(cols)) {
        return atoi(cols);
    }
    if (!isatty(fd)) {
        return 0;
    }
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    return CLI_TERM_WIDTH_DEFAULT;
}

size_t cli_width_or_all(int width)
{
    return width > 0 ? (size_t)width : SIZE_MAX / 4;
}

/* Length of the UTF-8 sequence starting with lead byte c, 0 when c cannot start one. */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        return 4;
    }
    return 0;
}

/* Length of the valid character at s[0..len), or 0 when invalid. */
static size_t valid_char(const char *s, size_t len)
{
    size_t n = seq_len((unsigned char)s[0]);
    if (n == 0 || n > len || !proto_utf8_valid(s, n)) {
        return 0;
    }
    return n;
}

/* ---- display cells ----
 *
 * A terminal shows most characters in one cell, East Asian wide characters and emoji in
 * two, and combining marks, variation selectors and joiners in none. The client counts
 * with its own table of those ranges (after Unicode's East Asian Width and emoji data, in
 * short), so the count does not depend on the locale the client runs under.
 */

struct range {
    uint32_t lo;
    uint32_t hi;
};

static const struct range zero_ranges[] = {
    {0x0300, 0x036f},   {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a}, {0x064b, 0x065f},
    {0x0e31, 0x0e31},   {0x0e34, 0x0e3a}, {0x0e47, 0x0e4e}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff},
    {0x200b, 0x200f},   {0x202a, 0x202e}, {0x2060, 0x2064}, {0x20d0, 0x20ff}, {0x302a, 0x302f},
    {0x3099, 0x309a},   {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f}, {0xfeff, 0xfeff}, {0x1f3fb, 0x1f3ff},
    {0xe0000, 0xe0fff},
};

static const struct range wide_ranges[] = {
    {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},   {0x23e9, 0x23ec},
    {0x23f0, 0x23f0},   {0x23f3, 0x23f3},   {0x25fd, 0x25fe},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267f, 0x267f},   {0x2693, 0x2693},   {0x26a1, 0x26a1},
    {0x26aa, 0x26ab},   {0x26bd, 0x26be},   {0x26c4, 0x26c5},   {0x26ce, 0x26ce},
    {0x26d4, 0x26d4},   {0x26ea, 0x26ea},   {0x26f2, 0x26f3},   {0x26f5, 0x26f5},
    {0x26fa, 0x26fa},   {0x26fd, 0x26fd},   {0x2705, 0x2705},   {0x270a, 0x270b},
    {0x2728, 0x2728},   {0x274c, 0x274c},   {0x274e, 0x274e},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27b0, 0x27b0},   {0x27bf, 0x27bf},
    {0x2b1b, 0x2b1c},   {0x2b50, 0x2b50},   {0x2b55, 0x2b55},   {0x2e80, 0x303e},
    {0x3041, 0x33ff},   {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
    {0xa960, 0xa97f},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},   {0xfe10, 0xfe19},
    {0xfe30, 0xfe6f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x16fe0, 0x16fe4},
    {0x17000, 0x18cff}, {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf},
    {0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a}, {0x1f200, 0x1f202}, {0x1f210, 0x1f23b},
    {0x1f240, 0x1f248}, {0x1f250, 0x1f251}, {0x1f260, 0x1f265}, {0x1f300, 0x1f320},
    {0x1f32d, 0x1f335}, {0x1f337, 0x1f37c}, {0x1f37e, 0x1f393}, {0x1f3a0, 0x1f3ca},
    {0x1f3cf, 0x1f3d3}, {0x1f3e0, 0x1f3f0}, {0x1f3f4, 0x1f3f4}, {0x1f3f8, 0x1f43e},
    {0x1f440, 0x1f440}, {0x1f442, 0x1f4fc}, {0x1f4ff, 0x1f53d}, {0x1f54b, 0x1f54e},
    {0x1f550, 0x1f567}, {0x1f57a, 0x1f57a}, {0x1f595, 0x1f596}, {0x1f5a4, 0x1f5a4},
    {0x1f5fb, 0x1f64f}, {0x1f680, 0x1f6c5}, {0x1f6cc, 0x1f6cc}, {0x1f6d0, 0x1f6d2},
    {0x1f6d5, 0x1f6d7}, {0x1f6dc, 0x1f6df}, {0x1f6eb, 0x1f6ec}, {0x1f6f4, 0x1f6fc},
    {0x1f7e0, 0x1f7eb}, {0x1f7f0, 0x1f7f0}, {0x1f90c, 0x1f93a}, {0x1f93c, 0x1f945},
    {0x1f947, 0x1f9ff}, {0x1fa70, 0x1faff}, {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
};

static bool in_ranges(uint32_t cp, const struct range *r, size_t n)
{
    size_t lo = 0;
    size_t hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo) {
            hi = mid;
        } else if (cp > r[mid].hi) {
            lo = mid + 1;
        } else {
            return true;
        }
    }
    return false;
}

/* The code point of the valid character s[0..n) (n from valid_char). */
static uint32_t decode(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    switch (n) {
    case 2:
        return (uint32_t)(u[0] & 0x1f) << 6 | (u[1] & 0x3f);
    case 3:
        return (uint32_t)(u[0] & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
    case 4:
        return (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3f) << 12 |
               (uint32_t)(u[2] & 0x3f) << 6 | (u[3] & 0x3f);
    default:
        return u[0];
    }
}

size_t cli_cp_cells(uint32_t cp)
{
    if (cp == 0 || in_ranges(cp, zero_ranges, sizeof(zero_ranges) / sizeof(zero_ranges[0]))) {
        return 0;
    }
    if (in_ranges(cp, wide_ranges, sizeof(wide_ranges) / sizeof(wide_ranges[0]))) {
        return 2;
    }
    return 1;
}

/* The cells of the character at s[0..len) and its length in *n (an invalid byte: one
 * cell, as the '?' it becomes). */
static size_t char_cells(const char *s, size_t len, size_t *n)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        *n = 1;
        return 1; /* a control character shows as '?' or a space */
    }
    *n = valid_char(s, len);
    if (*n == 0) {
        *n = 1;
        return 1;
    }
    return cli_cp_cells(decode(s, *n));
}

size_t cli_cells(const char *s, size_t len)
{
    size_t cells = 0;
    for (size_t i = 0, n = 0; i < len; i += n) {
        cells += char_cells(s + i, len - i, &n);
    }
    return cells;
}

/* The bytes of the longest prefix of s[0..len) that takes at most w cells (zero-width
 * characters that follow stay with it); its cells in *cells. */
static size_t prefix_in(const char *s, size_t len, size_t w, size_t *cells)
{
    size_t i = 0;
    size_t used = 0;
    while (i < len) {
        size_t n = 0;
        size_t c = char_cells(s + i, len - i, &n);
        if (used + c > w) {
            break;
        }
        used += c;
        i += n;
    }
    *cells = used;
    return i;
}

size_t cli_sanitize(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) {
        return 0;
    }
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        size_t n = 1;
        if (c == '\t' || c == '\n' || c == '\r') {
            rep = " ";
        } else if (c < 0x20 || c == 0x7f) {
            rep = "?";
        } else if (c >= 0x80) {
            n = valid_char(s + i, len - i);
            if (n == 0) {
                n = 1;
                rep = "?";
            } else if (n == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) {
                rep = "?"; /* C1 control characters */
            }
        }
        const char *src = rep != NULL ? rep : s + i;
        size_t sl = rep != NULL ? 1 : n;
        if (o + sl + 1 > cap) {
            break;
        }
        memcpy(out + o, src, sl);
        o += sl;
        i += n;
    }
    out[o] = '\0';
    return o;
}

char *cli_sanitize_dup(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out != NULL) {
        cli_sanitize(s, len, out, len + 1);
    }
    return out;
}

void cli_fit(const char *s, size_t width, char *out, size_t cap)
{
    size_t n = cli_sanitize(s, strlen(s), out, cap);
    size_t cells = 0;
    if (cli_cells(out, n) <= width) {
        return;
    }
    if (width == 0) {
        out[0] = '\0';
        return;
    }
    /* width - 1 cells, then the ellipsis (one cell) */
    size_t bytes = prefix_in(out, n, width - 1, &cells);
    if (bytes + sizeof(ELLIPSIS) > cap) {
        out[bytes] = '\0';
        return;
    }
    memcpy(out + bytes, ELLIPSIS, sizeof(ELLIPSIS));
}

int cli_text_print(FILE *out, const char *s, size_t len)
{
    char buf[1024];
    size_t i = 0;
    while (i < len) {
        /* one run without newlines or tabs at a time, cut at a character boundary */
        size_t j = i;
        while (j < len && j - i < sizeof(buf) - 8 && s[j] != '\n' && s[j] != '\t') {
            j++;
        }
        while (j < len && j > i && s[j] != '\n' && s[j] != '\t' &&
               ((unsigned char)s[j] & 0xc0) == 0x80) {
            j--;
        }
        if (j > i) {
            cli_sanitize(s + i, j - i, buf, sizeof(buf));
            fputs(buf, out);
        }
        if (j < len && (s[j] == '\n' || s[j] == '\t')) {
            fputc(s[j], out);
            j++;
        }
        if (j == i) {
            /* a lone continuation byte at the start of a run */
            fputc('?', out);
            j++;
        }
        i = j;
    }
    return ferror(out) ? PROTO_EIO : 0;
}

void cli_render_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        snprintf(out, cap, "%lld ms", (long long)ms);
    }
}

void cli_render_duration(int64_t ms, char *out, size_t cap)
{
    if (ms < 0) {
        ms = 0;
    }
    int64_t s = (ms + 999) / 1000;
    if (ms < 1000) {
        snprintf(out, cap, "%lld ms", (long long)ms);
    } else if (s < 60) {
        snprintf(out, cap, "%lld s", (long long)s);
    } else if (s < 3600) {
        snprintf(out, cap, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    } else if (s < 86400) {
        snprintf(out, cap, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    } else {
        snprintf(out, cap, "%lld d %lld h", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    }
}

void cli_render_ago(int64_t ms, int64_t now, char *out, size_t cap)
{
    int64_t d = now - ms;
    bool future = d < 0;
    int64_t s = (future ? -d : d) / 1000;
    char n[32];

    if (s < 10) {
        snprintf(out, cap, "just now");
        return;
    }
    if (s < 60) {
        snprintf(n, sizeof(n), "%llds", (long long)s);
    } else if (s < 3600) {
        snprintf(n, sizeof(n), "%lldm", (long long)(s / 60));
    } else if (s < 86400) {
        snprintf(n, sizeof(n), "%lldh", (long long)(s / 3600));
    } else {
        snprintf(n, sizeof(n), "%lldd", (long long)(s / 86400));
    }
    snprintf(out, cap, future ? "in %s" : "%s ago", n);
}

struct cli_table {
    size_t ncols;
    size_t nrows;
    size_t cap;     /* rows allocated */
    char **headers; /* ncols */
    char **cells;   /* nrows * ncols */
};

static char *cell_dup(const char *s)
{
    return s != NULL ? cli_sanitize_dup(s, strlen(s)) : cli_sanitize_dup("", 0);
}

struct cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
    if (ncols == 0) {
        return NULL;
    }
    struct cli_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->ncols = ncols;
    t->headers = calloc(ncols, sizeof(char *));
    if (t->headers == NULL) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = cell_dup(headers != NULL ? headers[i] : NULL);
        if (t->headers[i] == NULL) {
            cli_table_free(t);
            return NULL;
        }
    }
    return t;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **v = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        t->cells = v;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = cell_dup(cells[i]);
        if (row[i] == NULL) {
            for (size_t j = 0; j < i; j++) {
                free(row[j]);
            }
            return PROTO_ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

size_t cli_table_rows(const struct cli_table *t)
{
    return t->nrows;
}

static size_t width_of(const char *s)
{
    return cli_cells(s, strlen(s));
}

/* The next line of s wrapped to w cells (w >= 1): its bytes in *take, and in *skip the
 * bytes to go past before the following line (the line plus the blanks where it broke).
 * Breaks after the last blank that lets the line fit, else (a word longer than w) inside
 * the word. Takes at least one character while s is not empty. */
static void wrap_line(const char *s, size_t w, size_t *take, size_t *skip)
{
    size_t len = strlen(s);
    size_t cells = 0;
    size_t fit = prefix_in(s, len, w, &cells);
    if (fit == len) {
        *take = len;
        *skip = len;
        return;
    }
    size_t brk = fit;
    if (s[fit] != ' ') {
        while (brk > 0 && s[brk - 1] != ' ') {
            brk--;
        }
    }
    size_t end = brk;
    while (end > 0 && s[end - 1] == ' ') {
        end--;
    }
    if (end == 0) {
        /* no blank to break at: cut the word, at least one character */
        brk = fit;
        if (brk == 0) {
            brk = valid_char(s, len);
            brk = brk == 0 ? 1 : brk;
        }
        end = brk;
    }
    while (s[brk] == ' ') {
        brk++;
    }
    *take = end;
    *skip = brk;
}

/* The cells of the longest blank-separated word of s. */
static size_t longest_word(const char *s)
{
    size_t best = 0;
    while (*s != '\0') {
        size_t n = strcspn(s, " ");
        size_t c = cli_cells(s, n);
        best = c > best ? c : best;
        s += n;
        s += strspn(s, " ");
    }
    return best;
}

static void pad(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc(' ', out);
    }
}

/* Prints the table for a program: every cell in full, tab-separated, one row a line. */
static void print_tabs(const struct cli_table *t, FILE *out)
{
    for (size_t r = 0; r <= t->nrows; r++) {
        char **row = r == 0 ? t->headers : t->cells + (r - 1) * t->ncols;
        for (size_t c = 0; c < t->ncols; c++) {
            fputs(row[c], out);
            fputc(c + 1 < t->ncols ? '\t' : '\n', out);
        }
    }
}

/* Prints one row (headers or cells) in columns of w[c] cells, wrapping each cell's text
 * inside its column: continuation lines leave the other columns blank. pos: ncols slots. */
static void print_row(const struct cli_table *t, char **row, const size_t *w, const char **pos,
                      FILE *out)
{
    for (size_t c = 0; c < t->ncols; c++) {
        pos[c] = row[c];
        while (*pos[c] == ' ') {
            pos[c]++;
        }
    }
    bool first = true;
    for (;;) {
        size_t end = 0; /* columns with text on this line */
        for (size_t c = 0; c < t->ncols; c++) {
            if (*pos[c] != '\0') {
                end = c + 1;
            }
        }
        if (end == 0) {
            if (first) {
                fputc('\n', out);
            }
            return;
        }
        first = false;
        size_t owed = 0; /* blanks still to write before the next cell */
        for (size_t c = 0; c < end; c++) {
            size_t take = 0;
            size_t skip = 0;
            if (*pos[c] != '\0') {
                wrap_line(pos[c], w[c], &take, &skip);
            }
            pad(out, owed);
            fwrite(pos[c], 1, take, out);
            size_t used = cli_cells(pos[c], take);
            owed = (used < w[c] ? w[c] - used : 0) + 2;
            pos[c] += skip;
        }
        fputc('\n', out);
    }
}

int cli_table_print(const struct cli_table *t, FILE *out, int width)
{
    if (width <= 0) {
        print_tabs(t, out);
        return ferror(out) ? PROTO_EIO : 0;
    }
    size_t *w = calloc(t->ncols, sizeof(size_t));
    size_t *least = calloc(t->ncols, sizeof(size_t));
    const char **pos = calloc(t->ncols, sizeof(char *));
    if (w == NULL || least == NULL || pos == NULL) {
        free(w);
        free(least);
        free(pos);
        return PROTO_ENOMEM;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = width_of(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = width_of(t->cells[r * t->ncols + c]);
            if (n > w[c]) {
                w[c] = n;
            }
        }
        w[c] = w[c] == 0 ? 1 : w[c];
    }
    size_t total = 2 * (t->ncols - 1);
    for (size_t c = 0; c < t->ncols; c++) {
        total += w[c];
    }
    /* the widest columns give width first: down to their longest word (so that words
     * stay whole) while that is enough, then down to MIN_COL cells */
    size_t limit = (size_t)width;
    for (int pass = 0; pass < 2 && total > limit; pass++) {
        for (size_t c = 0; c < t->ncols; c++) {
            least[c] = MIN_COL;
            for (size_t r = 0; pass == 0 && r <= t->nrows; r++) {
                size_t wl = longest_word(r == 0 ? t->headers[c] : t->cells[(r - 1) * t->ncols + c]);
                least[c] = wl > least[c] ? wl : least[c];
            }
        }
        while (total > limit) {
            size_t widest = t->ncols;
            for (size_t c = 0; c < t->ncols; c++) {
                if (w[c] > least[c] && (widest == t->ncols || w[c] > w[widest])) {
                    widest = c;
                }
            }
            if (widest == t->ncols) {
                break;
            }
            w[widest]--;
            total--;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        print_row(t, r == 0 ? t->headers : t->cells + (r - 1) * t->ncols, w, pos, out);
    }
    free(pos);
    free(least);
    free(w);
    return ferror(out) ? PROTO_EIO : 0;
}

void cli_table_free(struct cli_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    if (t->headers != NULL) {
        for (size_t i = 0; i < t->ncols; i++) {
            free(t->headers[i]);
        }
    }
    free(t->headers);
    free(t);
}

/* A JSON string from bytes that should be UTF-8; invalid sequences become U+FFFD. */
static json_t *json_str(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j != NULL) {
        return j;
    }
    char *fixed = malloc(len * 3 + 1);
    size_t o = 0;
    if (fixed == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len;) {
        size_t n = s[i] == '\0' ? 1 : valid_char(s + i, len - i);
        if (n == 0) {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
        }
    }
    j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

static json_t *from_mp(const msgpack_object *o, int depth)
{
    if (depth > 64) {
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            return json_real((double)o->via.u64);
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_str(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        size_t n = sodium_base64_ENCODED_LEN(o->via.bin.size, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(n);
        if (b64 == NULL) {
            return NULL;
        }
        sodium_bin2base64(b64, n, (const unsigned char *)o->via.bin.ptr, o->via.bin.size,
                          sodium_base64_VARIANT_ORIGINAL);
        json_t *j = json_string(b64);
        free(b64);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a != NULL && i < o->via.array.size; i++) {
            json_t *v = from_mp(&o->via.array.ptr[i], depth + 1);
            if (v == NULL || json_array_append_new(a, v) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m != NULL && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *key = NULL;
            if (k->type == MSGPACK_OBJECT_STR) {
                key = json_str(k->via.str.ptr, k->via.str.size);
            } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                       k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                char num[32];
                if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                    snprintf(num, sizeof(num), "%llu", (unsigned long long)k->via.u64);
                } else {
                    snprintf(num, sizeof(num), "%lld", (long long)k->via.i64);
                }
                key = json_string(num);
            } else {
                continue; /* no JSON form for other keys */
            }
            json_t *v = key != NULL ? from_mp(&o->via.map.ptr[i].val, depth + 1) : NULL;
            if (v == NULL ||
                json_object_setn_new(m, json_string_value(key), json_string_length(key), v) != 0) {
                json_decref(m);
                m = NULL;
            }
            json_decref(key);
        }
        return m;
    }
    default:
        return json_null();
    }
}

json_t *cli_json_from_mp(const msgpack_object *o)
{
    return from_mp(o, 0);
}

int cli_json_print(FILE *out, const json_t *j)
{
    if (json_dumpf(j, out, JSON_ENCODE_ANY) != 0 || fputc('\n', out) == EOF) {
        return PROTO_EIO;
    }
    return 0;
}
