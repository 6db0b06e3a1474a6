/* cli_audit.c - the signed audit head of an export and the heads file (cli_audit.h). */
#include "cli_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "proto_err.h"

#define SIG_B64_LEN 88 /* padded standard base64 of 64 bytes */

static const char head_prefix[] = "Audit head: seq ";
static const char footer_open[] = "<footer>";
static const char footer_close[] = "</footer></body></html>";

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Decodes exactly 64 lower-case hex digits. */
static bool hash_decode(const char *s, size_t n, uint8_t out[CLI_AUDIT_HASH_BYTES])
{
    if (n != CLI_AUDIT_HEX_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!lower_hex(s[i])) {
            return false;
        }
    }
    size_t got = 0;
    return sodium_hex2bin(out, CLI_AUDIT_HASH_BYTES, s, n, NULL, &got, NULL) == 0 &&
           got == CLI_AUDIT_HASH_BYTES;
}

/* Parses a decimal seq 1..INT64_MAX without sign or leading zeros. */
static bool seq_decode(const char *s, size_t n, int64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19 || s[0] == '0') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

bool cli_audit_last_line(const char *text, size_t len, const char **line, size_t *llen,
                         size_t *lineno)
{
    size_t end = len;
    /* blank lines after the head (an editor's final newline) are not a line of the report */
    while (end > 0 && blank(text[end - 1])) {
        end--;
    }
    if (end == 0) {
        return false;
    }
    size_t start = end;
    while (start > 0 && text[start - 1] != '\n') {
        start--;
    }
    size_t n = 1;
    for (const char *p = text; p < text + start;) {
        const char *nl = memchr(p, '\n', (size_t)(text + start - p));
        if (nl == NULL) {
            break;
        }
        n++;
        p = nl + 1;
    }
    *line = text + start;
    *llen = end - start;
    if (lineno != NULL) {
        *lineno = n;
    }
    return true;
}

static bool take(const char **s, size_t *n, const char *lit)
{
    size_t l = strlen(lit);
    if (*n < l || memcmp(*s, lit, l) != 0) {
        return false;
    }
    *s += l;
    *n -= l;
    return true;
}

static int bad(const char **why, const char *what)
{
    if (why != NULL) {
        *why = what;
    }
    return PROTO_EINVAL;
}

int cli_audit_head_parse(const char *line, size_t len, struct cli_audit_head *h, const char **why)
{
    const char *s = line;
    size_t n = len;

    memset(h, 0, sizeof(*h));
    while (n > 0 && blank(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && blank(s[n - 1])) {
        n--;
    }
    if (take(&s, &n, footer_open)) {
        size_t cl = strlen(footer_close);
        if (n < cl || memcmp(s + n - cl, footer_close, cl) != 0) {
            return bad(why, "an html footer that is not closed by </footer></body></html>");
        }
        n -= cl;
    }
    if (!take(&s, &n, head_prefix)) {
        return bad(why, "it does not start with \"Audit head: seq \"");
    }
    size_t d = 0;
    while (d < n && s[d] >= '0' && s[d] <= '9') {
        d++;
    }
    if (!seq_decode(s, d, &h->seq)) {
        return bad(why, "the seq is not a number from 1");
    }
    s += d;
    n -= d;
    if (!take(&s, &n, ", hash ")) {
        return bad(why, "no \", hash \" after the seq");
    }
    size_t x = 0;
    while (x < n && s[x] != ',' && !blank(s[x])) {
        x++;
    }
    if (!hash_decode(s, x, h->hash)) {
        return bad(why, "the hash is not 64 lower-case hex digits");
    }
    s += x;
    n -= x;
    if (n == 0) {
        return 0; /* a head without signature: a server before PROTOCOL.md section 15 */
    }
    if (!take(&s, &n, ", signed ")) {
        return bad(why, "something other than \", signed SIG\" after the hash");
    }
    size_t got = 0;
    if (n != SIG_B64_LEN ||
        sodium_base642bin(h->sig, sizeof(h->sig), s, n, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != CLI_AUDIT_SIG_BYTES) {
        memset(h->sig, 0, sizeof(h->sig));
        return bad(why, "the signature is not 64 bytes of padded base64");
    }
    h->signed_ = true;
    return 0;
}

int cli_audit_head_find(const char *text, size_t len, struct cli_audit_head *h, size_t *lineno,
                        const char **why)
{
    const char *line = NULL;
    size_t n = 0;
    if (!cli_audit_last_line(text, len, &line, &n, lineno)) {
        memset(h, 0, sizeof(*h));
        if (lineno != NULL) {
            *lineno = 0;
        }
        return bad(why, "the text is empty");
    }
    return cli_audit_head_parse(line, n, h, why);
}

int cli_audit_checkpoint_msg(const char *meeting, int64_t seq,
                             const uint8_t hash[CLI_AUDIT_HASH_BYTES], struct proto_buf *out)
{
    static const char label[] = "confer/1 audit checkpoint";
    size_t ml = strlen(meeting);
    uint8_t be[8];

    if (proto_buf_append(out, label, sizeof(label) - 1) != 0) {
        return PROTO_ENOMEM;
    }
    for (int i = 0; i < 4; i++) {
        be[i] = (uint8_t)((uint64_t)ml >> (24 - 8 * i));
    }
    if (proto_buf_append(out, be, 4) != 0 || proto_buf_append(out, meeting, ml) != 0) {
        return PROTO_ENOMEM;
    }
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
    }
    if (proto_buf_append(out, be, 8) != 0 ||
        proto_buf_append(out, hash, CLI_AUDIT_HASH_BYTES) != 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

bool cli_audit_head_verify(const struct cli_audit_head *h, const char *meeting,
                           const uint8_t pk[PROTO_KEY_BYTES])
{
    struct proto_buf msg = {0};
    if (!h->signed_ || h->seq < 1 || meeting == NULL ||
        cli_audit_checkpoint_msg(meeting, h->seq, h->hash, &msg) != 0) {
        proto_buf_free(&msg, 0);
        return false;
    }
    bool ok = crypto_sign_verify_detached(h->sig, msg.data, msg.len, pk) == 0;
    proto_buf_free(&msg, 0);
    return ok;
}

int cli_audit_read_file(const char *path, int in_fd, size_t max, char **out, size_t *len)
{
    bool std_in = strcmp(path, "-") == 0;
    struct stat st;
    int rc = PROTO_EIO;

    *out = NULL;
    *len = 0;
    int fd = std_in ? in_fd : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? PROTO_ENOTFOUND : PROTO_EIO;
    }
    if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || std_in)) {
        /* A regular file too large is said before a byte of it is read. */
        rc = S_ISREG(st.st_mode) && (uint64_t)st.st_size > max
                 ? PROTO_ETOOBIG
                 : cli_read_fd(fd, max, false, out, len);
    }
    if (!std_in) {
        close(fd);
    }
    return rc;
}

bool cli_audit_first_diff(const char *ta, size_t la, const char *tb, size_t lb, size_t *lineno,
                          const char **a, size_t *alen, const char **b, size_t *blen)
{
    size_t common = la < lb ? la : lb;
    size_t i = 0;
    while (i < common && ta[i] == tb[i]) {
        i++;
    }
    if (i == common && la == lb) {
        return false;
    }
    /* the line that holds the first differing byte starts at the same offset in both */
    size_t start = i;
    while (start > 0 && ta[start - 1] != '\n') {
        start--;
    }
    size_t n = 1;
    for (size_t k = 0; k < start; k++) {
        n += ta[k] == '\n';
    }
    *lineno = n;
    const char *t[2] = {ta, tb};
    size_t l[2] = {la, lb};
    const char **lp[2] = {a, b};
    size_t *ll[2] = {alen, blen};
    for (int s = 0; s < 2; s++) {
        if (start >= l[s]) {
            *lp[s] = NULL;
            *ll[s] = 0;
            continue;
        }
        const char *nl = memchr(t[s] + start, '\n', l[s] - start);
        size_t e = nl != NULL ? (size_t)(nl - t[s]) : l[s];
        if (e > start && t[s][e - 1] == '\r') {
            e--;
        }
        *lp[s] = t[s] + start;
        *ll[s] = e - start;
    }
    return true;
}

/* ---- the heads file ---- */

/* The canonical host:port of s[0..n), or false. */
static bool server_canon(const char *s, size_t n, char out[CLI_HOSTPORT_MAX])
{
    char tmp[CLI_HOSTPORT_MAX];
    char host[CLI_HOST_MAX];
    uint16_t port = 0;
    if (n == 0 || n >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return cli_hostport_parse(tmp, host, sizeof(host), &port) == 0 &&
           cli_hostport_format(host, port, out, CLI_HOSTPORT_MAX) == 0;
}

/* Parses one heads line. Returns 1 for an entry, 0 for a blank or comment line, or
 * PROTO_EINVAL with *why set. */
static int parse_head_line(const char *line, size_t n, struct cli_head_entry *e, const char **why)
{
    const char *f[5];
    size_t fl[5];
    size_t nf = 0;
    size_t i = 0;

    while (i < n && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    if (i == n || line[i] == '#') {
        return 0;
    }
    while (i < n) {
        size_t s = i;
        while (i < n && line[i] != ' ' && line[i] != '\t') {
            i++;
        }
        if (nf == 5) {
            break;
        }
        f[nf] = line + s;
        fl[nf] = i - s;
        nf++;
        while (i < n && (line[i] == ' ' || line[i] == '\t')) {
            i++;
        }
    }
    if (nf != 4) {
        return bad(why, "not \"host:port meeting seq hash\"");
    }
    if (!server_canon(f[0], fl[0], e->server)) {
        return bad(why, "not a valid host:port");
    }
    if (!proto_name_valid(f[1], fl[1])) {
        return bad(why, "not a valid meeting id");
    }
    memcpy(e->meeting, f[1], fl[1]);
    e->meeting[fl[1]] = '\0';
    if (!seq_decode(f[2], fl[2], &e->seq)) {
        return bad(why, "the seq is not a number from 1");
    }
    if (!hash_decode(f[3], fl[3], e->hash)) {
        return bad(why, "the hash is not 64 lower-case hex digits");
    }
    return 1;
}

static int heads_push(struct cli_heads *hs, const struct cli_head_entry *e)
{
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 16;
        struct cli_head_entry *v = realloc(hs->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        hs->v = v;
        hs->cap = cap;
    }
    hs->v[hs->n++] = *e;
    return 0;
}

/* Keeps the last CLI_HEADS_MAX entries. */
static void heads_trim(struct cli_heads *hs)
{
    if (hs->n > CLI_HEADS_MAX) {
        size_t drop = hs->n - CLI_HEADS_MAX;
        memmove(hs->v, hs->v + drop, CLI_HEADS_MAX * sizeof(*hs->v));
        hs->n = CLI_HEADS_MAX;
    }
}

static int take_head_line(void *ud, const char *line, size_t n, unsigned lineno, const char **why)
{
    struct cli_heads *hs = ud;
    struct cli_head_entry e;
    (void)lineno;
    memset(&e, 0, sizeof(e));
    int r = parse_head_line(line, n, &e, why);
    return r <= 0 ? r : heads_push(hs, &e);
}

int cli_heads_load(struct cli_heads *hs, const char *path, FILE *warn)
{
    memset(hs, 0, sizeof(*hs));
    int rc = cli_config_read_lines(path, warn, take_head_line, hs, &hs->skipped);
    if (rc != 0) {
        cli_heads_free(hs);
        return rc;
    }
    /* trimmed before the duplicates are merged, so that merging is bounded too */
    heads_trim(hs);
    size_t out = 0;
    for (size_t i = 0; i < hs->n; i++) {
        size_t j = 0;
        while (j < out && (strcmp(hs->v[j].server, hs->v[i].server) != 0 ||
                           strcmp(hs->v[j].meeting, hs->v[i].meeting) != 0)) {
            j++;
        }
        if (j < out) {
            if (hs->v[i].seq > hs->v[j].seq) {
                hs->v[j] = hs->v[i];
            }
            continue;
        }
        hs->v[out++] = hs->v[i];
    }
    hs->n = out;
    return 0;
}

const struct cli_head_entry *cli_heads_find(const struct cli_heads *hs, const char *server,
                                            const char *meeting)
{
    for (size_t i = 0; i < hs->n; i++) {
        if (strcmp(hs->v[i].server, server) == 0 && strcmp(hs->v[i].meeting, meeting) == 0) {
            return &hs->v[i];
        }
    }
    return NULL;
}

int cli_heads_save(const struct cli_heads *hs, const char *path, char *err, size_t errlen)
{
    static const char header[] =
        "# confer heads: the newest audit head seen of each meeting, written by confer\n"
        "# host:port meeting seq hash\n";
    struct proto_buf b = {0};
    int rc = proto_buf_append(&b, header, sizeof(header) - 1);

    for (size_t i = 0; rc == 0 && i < hs->n; i++) {
        char hex[CLI_AUDIT_HEX_LEN + 1];
        char line[CLI_HOSTPORT_MAX + PROTO_NAME_MAX + CLI_AUDIT_HEX_LEN + 64];
        proto_hex(hs->v[i].hash, CLI_AUDIT_HASH_BYTES, hex);
        int n = snprintf(line, sizeof(line), "%s %s %lld %s\n", hs->v[i].server, hs->v[i].meeting,
                         (long long)hs->v[i].seq, hex);
        rc = n > 0 && (size_t)n < sizeof(line) ? proto_buf_append(&b, line, (size_t)n)
                                               : PROTO_EINVAL;
    }
    if (rc != 0) {
        set_err(err, errlen, "cannot write %s: %s", path, proto_strerror(rc));
        proto_buf_free(&b, 0);
        return rc == PROTO_ENOMEM ? rc : PROTO_EIO;
    }
    rc = cli_config_write_file(path, b.data, b.len, err, errlen);
    proto_buf_free(&b, 0);
    return rc;
}

void cli_heads_free(struct cli_heads *hs)
{
    if (hs == NULL) {
        return;
    }
    free(hs->v);
    memset(hs, 0, sizeof(*hs));
}

/* Locks the folder of path (flock on the folder itself: no lock file to leave behind),
 * waiting at most about two seconds. Returns the descriptor to close, or -1 when the lock
 * could not be had (the update goes on without it: a lost head is better than a hang). */
static int lock_folder(const char *path)
{
    char dir[CLI_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    for (int i = 0; i < 200; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            return fd;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    close(fd);
    return -1;
}

int cli_heads_update(const char *path, const char *server, const char *meeting, int64_t seq,
                     const uint8_t hash[CLI_AUDIT_HASH_BYTES], FILE *warn,
                     struct cli_head_entry *known, char *err, size_t errlen)
{
    struct cli_heads hs;
    struct cli_head_entry e;
    int rc = 0;

    memset(&hs, 0, sizeof(hs));
    memset(&e, 0, sizeof(e));
    if (known != NULL) {
        memset(known, 0, sizeof(*known));
    }
    if (server == NULL || !server_canon(server, strlen(server), e.server) ||
        strcmp(e.server, server) != 0) {
        set_err(err, errlen, "not a valid server address: %s", server != NULL ? server : "");
        return PROTO_EINVAL;
    }
    if (meeting == NULL || !proto_name_valid(meeting, strlen(meeting))) {
        set_err(err, errlen, "not a valid meeting id");
        return PROTO_EINVAL;
    }
    if (seq < 1) {
        set_err(err, errlen, "not a valid seq: %lld", (long long)seq);
        return PROTO_EINVAL;
    }
    snprintf(e.meeting, sizeof(e.meeting), "%s", meeting);
    e.seq = seq;
    memcpy(e.hash, hash, CLI_AUDIT_HASH_BYTES);

    int lock = lock_folder(path);
    rc = cli_heads_load(&hs, path, warn);
    if (rc != 0) {
        set_err(err, errlen, "cannot read %s: %s", path, proto_strerror(rc));
        goto cleanup;
    }
    const struct cli_head_entry *old = cli_heads_find(&hs, e.server, e.meeting);
    if (old != NULL) {
        if (known != NULL) {
            *known = *old;
        }
        if (old->seq > seq) {
            rc = CLI_HEAD_OLDER;
            goto cleanup;
        }
        if (old->seq == seq) {
            rc = sodium_memcmp(old->hash, hash, CLI_AUDIT_HASH_BYTES) == 0 ? CLI_HEAD_SAME
                                                                           : CLI_HEAD_FORK;
            goto cleanup;
        }
        /* the updated entry moves to the end: the first ones are the least recently updated */
        size_t at = (size_t)(old - hs.v);
        memmove(hs.v + at, hs.v + at + 1, (hs.n - at - 1) * sizeof(*hs.v));
        hs.n--;
    }
    rc = heads_push(&hs, &e);
    if (rc != 0) {
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    heads_trim(&hs);
    rc = cli_heads_save(&hs, path, err, errlen);
    if (rc == 0) {
        rc = CLI_HEAD_STORED;
    }

cleanup:
    cli_heads_free(&hs);
    if (lock >= 0) {
        close(lock);
    }
    return rc;
}
