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
    if (cols != NULL && cols[0] >= '1' && cols[0] <= '9' && strlen(cols) <= 4) {
        return atoi(cols);
    }
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    return CLI_TERM_WIDTH_DEFAULT;
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
    if (proto_utf8_count(out, n) <= width) {
        return;
    }
    size_t bytes = 0;
    for (size_t cp = 0; cp + 1 < width && bytes < n; cp++) {
        bytes++;
        while (bytes < n && ((unsigned char)out[bytes] & 0xc0) == 0x80) {
            bytes++;
        }
    }
    if (width == 0 || bytes + sizeof(ELLIPSIS) > cap) {
        out[width == 0 ? 0 : bytes] = '\0';
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
    return proto_utf8_count(s, strlen(s));
}

/* Prints s in exactly w columns (no padding when last): cut with an ellipsis if longer. */
static void put_cell(FILE *out, const char *s, size_t w, bool last)
{
    size_t n = width_of(s);
    if (n <= w) {
        fputs(s, out);
        if (!last) {
            for (size_t i = n; i < w; i++) {
                fputc(' ', out);
            }
        }
        return;
    }
    /* w - 1 code points, then the ellipsis */
    size_t bytes = 0;
    for (size_t cp = 0; cp + 1 < w && s[bytes] != '\0'; cp++) {
        bytes++;
        while ((s[bytes] & 0xc0) == 0x80) {
            bytes++;
        }
    }
    fwrite(s, 1, bytes, out);
    fputs(ELLIPSIS, out);
}

int cli_table_print(const struct cli_table *t, FILE *out, int width)
{
    size_t *w = calloc(t->ncols, sizeof(size_t));
    if (w == NULL) {
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
    }
    size_t total = 2 * (t->ncols - 1);
    for (size_t c = 0; c < t->ncols; c++) {
        total += w[c];
    }
    size_t limit = width > 0 ? (size_t)width : CLI_TERM_WIDTH_DEFAULT;
    while (total > limit) {
        size_t widest = 0;
        for (size_t c = 1; c < t->ncols; c++) {
            if (w[c] > w[widest]) {
                widest = c;
            }
        }
        if (w[widest] <= MIN_COL) {
            break;
        }
        w[widest]--;
        total--;
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        char **row = r == 0 ? t->headers : t->cells + (r - 1) * t->ncols;
        size_t end = t->ncols; /* no trailing blanks: stop after the last non-empty cell */
        while (end > 1 && row[end - 1][0] == '\0') {
            end--;
        }
        for (size_t c = 0; c < end; c++) {
            bool last = c + 1 == end;
            put_cell(out, row[c], w[c], last);
            fputs(last ? "\n" : "  ", out);
        }
    }
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
