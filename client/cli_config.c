/* cli_config.c - the client's configuration files: paths, known_hosts, session. */
#include "cli_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "proto_err.h"

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

/* Copies the formatted string into out; PROTO_ETOOBIG when it does not fit. */
static int fmt_into(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        return PROTO_ETOOBIG;
    }
    return 0;
}

int cli_paths_init(struct cli_paths *p, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (xdg != NULL && xdg[0] == '/') {
        rc = fmt_into(p->dir, sizeof(p->dir), "%s/confer", xdg);
    } else {
        if (home == NULL || home[0] != '/') {
            struct passwd *pw = getpwuid(getuid());
            home = pw != NULL ? pw->pw_dir : NULL;
        }
        if (home == NULL || home[0] != '/') {
            set_err(err, errlen,
                    "cannot find the configuration folder: set HOME or XDG_CONFIG_HOME");
            return PROTO_EINVAL;
        }
        rc = fmt_into(p->dir, sizeof(p->dir), "%s/.config/confer", home);
    }
    if (rc == 0) {
        rc = fmt_into(p->known_hosts, sizeof(p->known_hosts), "%s/known_hosts", p->dir);
    }
    if (rc == 0) {
        rc = fmt_into(p->session, sizeof(p->session), "%s/session", p->dir);
    }
    if (rc == 0) {
        rc = fmt_into(p->heads, sizeof(p->heads), "%s/heads", p->dir);
    }
    if (rc != 0) {
        set_err(err, errlen, "the configuration folder's path is too long");
    }
    return rc;
}

int cli_config_mkdir(const struct cli_paths *p, char *err, size_t errlen)
{
    char path[CLI_PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s", p->dir);
    /* mkdir -p, every new level 0700 (XDG base directory spec) */
    for (char *q = path + 1; *q != '\0'; q++) {
        if (*q != '/') {
            continue;
        }
        *q = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return PROTO_EIO;
        }
        *q = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return PROTO_EIO;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s is not a folder", path);
        return PROTO_EIO;
    }
    if ((st.st_mode & 0777) != 0700 && chmod(path, 0700) != 0) {
        set_err(err, errlen, "cannot set the mode of %s to 0700: %s", path, strerror(errno));
        return PROTO_EIO;
    }
    return 0;
}

static void sync_parent(const char *path)
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
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: the rename is already atomic */
        close(fd);
    }
}

int cli_config_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    return cli_file_write_atomic(path, data, len, 0600, err, errlen);
}

int cli_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode, char *err,
                          size_t errlen)
{
    char tmp[CLI_PATH_MAX];
    const uint8_t *p = data;
    int fd = -1;
    int rc = PROTO_EIO;

    if (fmt_into(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) != 0) {
        set_err(err, errlen, "path too long: %s", path);
        return PROTO_EIO;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return PROTO_EIO;
    }
    if (fchmod(fd, (mode_t)mode) != 0) {
        set_err(err, errlen, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            goto cleanup;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        set_err(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        set_err(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        goto cleanup;
    }
    sync_parent(path);
    rc = 0;

cleanup:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        unlink(tmp);
    }
    return rc;
}

int cli_read_fd(int fd, size_t max, bool secret, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (buf == NULL) {
        return PROTO_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = ncap > cap ? malloc(ncap + 1) : NULL;
            if (nb == NULL) {
                rc = ncap > cap ? PROTO_ENOMEM : PROTO_ETOOBIG;
                break;
            }
            memcpy(nb, buf, n); /* not realloc: a secret must not be left behind */
            if (secret) {
                sodium_memzero(buf, n);
            }
            free(buf);
            buf = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            rc = got < 0 ? PROTO_EIO : 0;
            break;
        }
        n += (size_t)got;
        if (n > max) {
            rc = PROTO_ETOOBIG; /* grew while it was read */
            break;
        }
    }
    if (rc != 0) {
        if (secret) {
            sodium_memzero(buf, n);
        }
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int cli_config_read_file(const char *path, char **out, size_t *len)
{
    struct stat st;
    int rc = PROTO_EIO;

    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) {
        fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlinked config is the user's choice */
    }
    if (fd < 0) {
        return errno == ENOENT ? PROTO_ENOTFOUND : PROTO_EIO;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        rc = st.st_size > CLI_FILE_MAX ? PROTO_ETOOBIG
                                       : cli_read_fd(fd, CLI_FILE_MAX, true, out, len);
    }
    close(fd);
    return rc;
}

/* Steps through buf line by line. Returns false at the end. The line excludes "\n" and a
 * trailing "\r". */
static bool next_line(const char *buf, size_t len, size_t *off, const char **line, size_t *llen)
{
    if (*off >= len) {
        return false;
    }
    const char *start = buf + *off;
    const char *nl = memchr(start, '\n', len - *off);
    size_t n = nl != NULL ? (size_t)(nl - start) : len - *off;
    *off += n + (nl != NULL ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r') {
        n--;
    }
    *line = start;
    *llen = n;
    return true;
}

static void warn_line(FILE *warn, const char *path, unsigned lineno, const char *why)
{
    if (warn != NULL) {
        fprintf(warn, "confer: warning: %s:%u: %s; line skipped\n", path, lineno, why);
    }
}

int cli_config_read_lines(const char *path, FILE *warn, cli_config_line_cb cb, void *ud,
                          size_t *skipped)
{
    char *buf = NULL;
    size_t len = 0, off = 0, n = 0;
    const char *line = NULL;
    unsigned lineno = 0;
    int rc = cli_config_read_file(path, &buf, &len);
    if (rc == PROTO_ENOTFOUND) {
        return 0;
    }
    while (rc == 0 && next_line(buf, len, &off, &line, &n)) {
        const char *why = "line too long";
        lineno++;
        int r = n > CLI_LINE_MAX ? PROTO_EINVAL : cb(ud, line, n, lineno, &why);
        if (r == PROTO_EINVAL) {
            warn_line(warn, path, lineno, why);
            (*skipped)++;
        } else if (r < 0) {
            rc = r;
        }
    }
    free(buf);
    return rc;
}

static bool host_char(int c, bool bracketed)
{
    if (isalnum(c) || c == '-' || c == '.' || c == '_') {
        return true;
    }
    return bracketed && (c == ':' || c == '%');
}

static int copy_host(const char *s, size_t n, bool bracketed, char *host, size_t hostcap)
{
    if (n == 0) {
        return PROTO_EINVAL;
    }
    if (n >= hostcap || n >= CLI_HOST_MAX) {
        return PROTO_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || !host_char(c, bracketed)) {
            return PROTO_EINVAL;
        }
        host[i] = (char)tolower(c);
    }
    host[n] = '\0';
    return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 5) {
        return PROTO_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return PROTO_EINVAL;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return PROTO_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int cli_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port)
{
    *port = PROTO_PORT;
    if (s == NULL || s[0] == '\0') {
        return PROTO_EINVAL;
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || memchr(s + 1, ':', (size_t)(end - s - 1)) == NULL) {
            return PROTO_EINVAL;
        }
        int rc = copy_host(s + 1, (size_t)(end - s - 1), true, host, hostcap);
        if (rc != 0) {
            return rc;
        }
        if (end[1] == '\0') {
            return 0;
        }
        return end[1] == ':' ? parse_port(end + 2, port) : PROTO_EINVAL;
    }
    const char *colon = strchr(s, ':');
    if (colon == NULL) {
        return copy_host(s, strlen(s), false, host, hostcap);
    }
    if (strchr(colon + 1, ':') != NULL) {
        return copy_host(s, strlen(s), true, host, hostcap); /* bare IPv6, no port */
    }
    int rc = copy_host(s, (size_t)(colon - s), false, host, hostcap);
    return rc != 0 ? rc : parse_port(colon + 1, port);
}

int cli_hostport_format(const char *host, uint16_t port, char *out, size_t cap)
{
    if (strchr(host, ':') != NULL) {
        return fmt_into(out, cap, "[%s]:%u", host, (unsigned)port);
    }
    return fmt_into(out, cap, "%s:%u", host, (unsigned)port);
}

static int decode_key(const char *b64, size_t len, uint8_t pk[PROTO_KEY_BYTES])
{
    size_t got = 0;
    if (len > 64) {
        return PROTO_EINVAL;
    }
    if (sodium_base642bin(pk, PROTO_KEY_BYTES, b64, len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        got == PROTO_KEY_BYTES) {
        return 0;
    }
    if (sodium_base642bin(pk, PROTO_KEY_BYTES, b64, len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
        got == PROTO_KEY_BYTES) {
        return 0;
    }
    return PROTO_EINVAL;
}

/* Parses one known_hosts line. Returns 1 for an entry, 0 for a blank or comment line, or
 * PROTO_EINVAL with *why set. */
static int parse_known_line(const char *line, size_t n, struct cli_known_host *e, const char **why)
{
    char hp[CLI_HOSTPORT_MAX];
    char host[CLI_HOST_MAX];
    uint16_t port = 0;
    size_t i = 0;

    while (i < n && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    if (i == n || line[i] == '#') {
        return 0;
    }
    size_t hs = i;
    while (i < n && line[i] != ' ' && line[i] != '\t') {
        i++;
    }
    size_t hl = i - hs;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    size_t ks = i;
    while (i < n && line[i] != ' ' && line[i] != '\t') {
        i++;
    }
    size_t kl = i - ks;
    /* anything after the key is a comment */
    if (kl == 0) {
        *why = "no key";
        return PROTO_EINVAL;
    }
    if (hl >= sizeof(hp)) {
        *why = "host name too long";
        return PROTO_EINVAL;
    }
    memcpy(hp, line + hs, hl);
    hp[hl] = '\0';
    if (cli_hostport_parse(hp, host, sizeof(host), &port) != 0 ||
        cli_hostport_format(host, port, e->hostport, sizeof(e->hostport)) != 0) {
        *why = "not a valid host:port";
        return PROTO_EINVAL;
    }
    if (decode_key(line + ks, kl, e->pk) != 0) {
        *why = "the key is not 32 bytes of base64";
        return PROTO_EINVAL;
    }
    return 1;
}

static int take_known_line(void *ud, const char *line, size_t n, unsigned lineno, const char **why)
{
    struct cli_known_hosts *kh = ud;
    struct cli_known_host e;
    memset(&e, 0, sizeof(e));
    int r = parse_known_line(line, n, &e, why);
    if (r <= 0) {
        return r;
    }
    if (kh->n == kh->cap) {
        size_t cap = kh->cap ? kh->cap * 2 : 8;
        struct cli_known_host *v = realloc(kh->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        kh->v = v;
        kh->cap = cap;
    }
    e.line = lineno;
    kh->v[kh->n++] = e;
    return 0;
}

int cli_known_hosts_load(struct cli_known_hosts *kh, const char *path, FILE *warn)
{
    memset(kh, 0, sizeof(*kh));
    int rc = cli_config_read_lines(path, warn, take_known_line, kh, &kh->skipped);
    if (rc != 0) {
        cli_known_hosts_free(kh);
    }
    return rc;
}

const struct cli_known_host *cli_known_hosts_find(const struct cli_known_hosts *kh,
                                                  const char *hostport)
{
    for (size_t i = 0; i < kh->n; i++) {
        if (strcmp(kh->v[i].hostport, hostport) == 0) {
            return &kh->v[i];
        }
    }
    return NULL;
}

int cli_known_hosts_line(const char *hostport, const uint8_t pk[PROTO_KEY_BYTES], char *out,
                         size_t cap)
{
    char b64[sodium_base64_ENCODED_LEN(PROTO_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof(b64), pk, PROTO_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    return fmt_into(out, cap, "%s %s", hostport, b64);
}

int cli_known_hosts_add(const char *path, const char *hostport, const uint8_t pk[PROTO_KEY_BYTES],
                        char *err, size_t errlen)
{
    char line[CLI_HOSTPORT_MAX + 64];
    char *old = NULL;
    size_t oldlen = 0;
    char *buf = NULL;
    int rc = cli_known_hosts_line(hostport, pk, line, sizeof(line));

    if (rc != 0) {
        set_err(err, errlen, "host name too long: %s", hostport);
        return rc;
    }
    rc = cli_config_read_file(path, &old, &oldlen);
    if (rc == PROTO_ENOTFOUND) {
        rc = 0;
    } else if (rc != 0) {
        set_err(err, errlen, "cannot read %s: %s", path, proto_strerror(rc));
        goto cleanup;
    }
    size_t linelen = strlen(line);
    buf = malloc(oldlen + linelen + 2);
    if (buf == NULL) {
        rc = PROTO_ENOMEM;
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    size_t n = 0;
    if (oldlen > 0) {
        memcpy(buf, old, oldlen);
        n = oldlen;
        if (buf[n - 1] != '\n') {
            buf[n++] = '\n';
        }
    }
    memcpy(buf + n, line, linelen);
    n += linelen;
    buf[n++] = '\n';
    rc = cli_config_write_file(path, buf, n, err, errlen);

cleanup:
    free(old);
    free(buf);
    return rc;
}

void cli_known_hosts_free(struct cli_known_hosts *kh)
{
    if (kh == NULL) {
        return;
    }
    free(kh->v);
    memset(kh, 0, sizeof(*kh));
}

static bool token_valid(const char *s, size_t n)
{
    if (n == 0 || n >= CLI_TOKEN_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_') || c >= 0x80) {
            return false;
        }
    }
    return true;
}

static bool hostport_valid(const char *s, size_t n, char *canon, size_t cap)
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
           cli_hostport_format(host, port, canon, cap) == 0;
}

/* Applies one "key=value" line to s. Returns 0, or PROTO_EINVAL with *why set. */
static int session_line(struct cli_session *s, const char *line, size_t n, const char **why)
{
    const char *eq = memchr(line, '=', n);
    if (eq == NULL) {
        *why = "not a key=value line";
        return PROTO_EINVAL;
    }
    size_t kl = (size_t)(eq - line);
    const char *v = eq + 1;
    size_t vl = n - kl - 1;

#define KEY_IS(k) (kl == strlen(k) && memcmp(line, k, kl) == 0)
    if (KEY_IS("server")) {
        if (vl > 0 && !hostport_valid(v, vl, s->server, sizeof(s->server))) {
            *why = "server is not a valid host:port";
            return PROTO_EINVAL;
        }
    } else if (KEY_IS("user") || KEY_IS("meeting")) {
        char *dst = KEY_IS("user") ? s->user : s->meeting;
        if (vl > 0 && !proto_name_valid(v, vl)) {
            *why = "not a valid name";
            return PROTO_EINVAL;
        }
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    } else if (KEY_IS("token")) {
        if (vl > 0 && !token_valid(v, vl)) {
            *why = "not a valid token";
            return PROTO_EINVAL;
        }
        memcpy(s->token, v, vl);
        s->token[vl] = '\0';
    } else if (KEY_IS("expires")) {
        int64_t x = 0;
        if (vl == 0 || vl > 18) {
            *why = "expires is not a number";
            return PROTO_EINVAL;
        }
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9') {
                *why = "expires is not a number";
                return PROTO_EINVAL;
            }
            x = x * 10 + (v[i] - '0');
        }
        s->expires = x;
    }
    /* unknown keys: written by a newer confer; ignored */
#undef KEY_IS
    return 0;
}

int cli_session_load(struct cli_session *s, const char *path, FILE *warn)
{
    char *buf = NULL;
    size_t len = 0;
    size_t off = 0;
    const char *line = NULL;
    size_t n = 0;
    unsigned lineno = 0;

    memset(s, 0, sizeof(*s));
    int rc = cli_config_read_file(path, &buf, &len);
    if (rc != 0) {
        return rc;
    }
    while (next_line(buf, len, &off, &line, &n)) {
        const char *why = NULL;
        lineno++;
        if (n == 0 || line[0] == '#') {
            continue;
        }
        if (n > CLI_LINE_MAX) {
            warn_line(warn, path, lineno, "line too long");
            continue;
        }
        if (session_line(s, line, n, &why) != 0) {
            warn_line(warn, path, lineno, why);
        }
    }
    sodium_memzero(buf, len);
    free(buf);
    return 0;
}

int cli_session_save(const struct cli_session *s, const char *path, char *err, size_t errlen)
{
    char buf[CLI_HOSTPORT_MAX + CLI_TOKEN_MAX + 2 * PROTO_NAME_MAX + 256];
    char canon[CLI_HOSTPORT_MAX];
    size_t sl = strnlen(s->server, sizeof(s->server));
    size_t ul = strnlen(s->user, sizeof(s->user));
    size_t tl = strnlen(s->token, sizeof(s->token));
    size_t ml = strnlen(s->meeting, sizeof(s->meeting));

    if (sl == sizeof(s->server) ||
        (sl > 0 && !hostport_valid(s->server, sl, canon, sizeof(canon)))) {
        set_err(err, errlen, "not a valid server address: %s", s->server);
        return PROTO_EINVAL;
    }
    if (ul == sizeof(s->user) || (ul > 0 && !proto_name_valid(s->user, ul))) {
        set_err(err, errlen, "not a valid user name");
        return PROTO_EINVAL;
    }
    if (tl == sizeof(s->token) || (tl > 0 && !token_valid(s->token, tl))) {
        set_err(err, errlen, "not a valid session token");
        return PROTO_EINVAL;
    }
    if (ml == sizeof(s->meeting) || (ml > 0 && !proto_name_valid(s->meeting, ml))) {
        set_err(err, errlen, "not a valid meeting id");
        return PROTO_EINVAL;
    }
    int n = snprintf(buf, sizeof(buf),
                     "# confer session: written by confer, mode 0600; holds a secret token\n"
                     "server=%s\nuser=%s\ntoken=%s\nexpires=%lld\nmeeting=%s\n",
                     sl > 0 ? canon : "", s->user, s->token, (long long)s->expires, s->meeting);
    int rc = PROTO_ETOOBIG;
    if (n > 0 && (size_t)n < sizeof(buf)) {
        rc = cli_config_write_file(path, buf, (size_t)n, err, errlen);
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

void cli_session_wipe(struct cli_session *s)
{
    if (s != NULL) {
        sodium_memzero(s, sizeof(*s));
    }
}
