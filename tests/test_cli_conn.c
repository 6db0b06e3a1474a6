/* test_cli_conn.c - the client connection and the confer commands against an in-process
 * fake server: a forked child that runs the server side of the handshake with proto's
 * functions, over a socketpair or a loopback listener, and answers a few methods. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>

#include "cli_cmd.h"
#include "cli_config.h"
#include "cli_conn.h"
#include "cli_pack.h"
#include "proto_channel.h"
#include "proto_msgpack.h"
#include "proto_rpc.h"
#include "testutil.h"

#define PASSWORD  "correct horse battery staple"
#define HOSTPORT  "fake.test:7414"
#define MAX_FAKES 4

/* ---- the fake server (runs in a child process) ---- */

struct fake_cfg {
    const struct proto_hostkey *keys[4]; /* connection i uses keys[i], the last one after */
    int nkeys;
    int max_conns;   /* the child exits after serving this many; 0: until killed */
    bool old_server; /* answer every hello with unsupported_version */
};

struct fake_state {
    int report;
    char password[256];
    char token[64];
};

struct fake {
    pid_t pid;
    uint16_t port; /* loopback mode */
    int report;    /* read end of the child's report pipe */
    char reports[8192];
    size_t nreports;
};

static void report(struct fake_state *st, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n > (int)sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    (void)!write(st->report, line, (size_t)n);
}

static int fd_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_frame(int fd, const uint8_t *p, size_t n)
{
    uint8_t hdr[4];
    proto_frame_put_len(hdr, (uint32_t)n);
    return fd_write_all(fd, hdr, 4) == 0 && fd_write_all(fd, p, n) == 0 ? 0 : -1;
}

static int send_sealed(int fd, struct proto_channel *ch, const uint8_t *p, size_t n, int final)
{
    uint8_t *buf = malloc(n + PROTO_ABYTES + 1);
    int rc = -1;
    if (buf != NULL && proto_channel_seal(ch, p, n, buf, final) == 0) {
        rc = send_frame(fd, buf, n + PROTO_ABYTES);
    }
    free(buf);
    return rc;
}

/* Blocking read of the next frame. Returns 1 with a frame, 0 at end of stream, -1 on error. */
static int read_frame(int fd, struct proto_reader *r, const uint8_t **p, uint32_t *n)
{
    for (;;) {
        int rc = proto_reader_next(r, p, n);
        if (rc != 0) {
            return rc;
        }
        uint8_t *space = NULL;
        size_t cap = 0;
        if (proto_reader_space(r, 65536, &space, &cap) != 0) {
            return -1;
        }
        ssize_t got = read(fd, space, cap);
        if (got < 0 && errno == EINTR) {
            proto_reader_commit(r, 0);
            continue;
        }
        if (got <= 0) {
            proto_reader_commit(r, 0);
            return got == 0 ? 0 : -1;
        }
        proto_reader_commit(r, (size_t)got);
    }
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    proto_pack_cstr(pk, k);
    proto_pack_cstr(pk, v);
}

static void new_token(struct fake_state *st)
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof(raw));
    proto_b64url_encode(raw, sizeof(raw), st->token, sizeof(st->token));
}

/* Handles one request. out collects what goes in the frame after the request's. Returns
 * 1 to close the connection (after the TAG_FINAL was sent), else 0. */
static int handle_request(int fd, struct proto_channel *ch, struct fake_state *st,
                          const struct proto_rpc_msg *m, struct proto_buf *out)
{
    msgpack_packer pk;
    char user[128] = "";
    char pw[256] = "";
    char extra[256] = "";
    uint32_t id = m->msgid;

    msgpack_packer_init(&pk, out, proto_buf_msgpack_write);
    report(st, "call %.*s %u", (int)m->method_len, m->method, (unsigned)id);
    if (proto_rpc_method_is(m, "ping")) {
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_map(&pk, 1);
        proto_pack_cstr(&pk, "time");
        msgpack_pack_int64(&pk, proto_now_ms());
    } else if (proto_rpc_method_is(m, "auth.login")) {
        bool remember = false;
        proto_param_strcpy(m->params, "user", user, sizeof(user));
        proto_param_strcpy(m->params, "password", pw, sizeof(pw));
        proto_param_bool(m->params, "remember", &remember);
        if (strcmp(user, "limited") == 0) {
            proto_rpc_pack_error(&pk, id, PROTO_CODE_RATE_LIMITED, "too many failed logins",
                                 "retry_after_ms", 42000);
        } else if (strcmp(user, "alice") != 0 || strcmp(pw, st->password) != 0) {
            proto_rpc_pack_error(&pk, id, PROTO_CODE_UNAUTHENTICATED, "bad user or password", NULL,
                                 0);
        } else {
            proto_rpc_pack_result(&pk, id);
            msgpack_pack_map(&pk, remember ? 4 : 2);
            pack_kv_str(&pk, "user", user);
            proto_pack_cstr(&pk, "operator");
            msgpack_pack_false(&pk);
            if (remember) {
                pack_kv_str(&pk, "token", st->token);
                proto_pack_cstr(&pk, "expires");
                msgpack_pack_int64(&pk, proto_now_ms() + 12 * 3600 * 1000LL);
            }
        }
    } else if (proto_rpc_method_is(m, "auth.token")) {
        proto_param_strcpy(m->params, "user", user, sizeof(user));
        proto_param_strcpy(m->params, "token", extra, sizeof(extra));
        if (strcmp(user, "alice") != 0 || strcmp(extra, st->token) != 0) {
            proto_rpc_pack_error(&pk, id, PROTO_CODE_UNAUTHENTICATED, "bad user or token", NULL, 0);
        } else {
            proto_rpc_pack_result(&pk, id);
            msgpack_pack_map(&pk, 2);
            pack_kv_str(&pk, "user", user);
            proto_pack_cstr(&pk, "operator");
            msgpack_pack_false(&pk);
        }
    } else if (proto_rpc_method_is(m, "auth.logout")) {
        report(st, "logout");
        new_token(st);
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_map(&pk, 0);
    } else if (proto_rpc_method_is(m, "auth.passwd")) {
        proto_param_strcpy(m->params, "old", pw, sizeof(pw));
        proto_param_strcpy(m->params, "new", extra, sizeof(extra));
        if (strcmp(pw, st->password) != 0) {
            proto_rpc_pack_error(&pk, id, PROTO_CODE_UNAUTHENTICATED, "wrong password", NULL, 0);
        } else {
            snprintf(st->password, sizeof(st->password), "%s", extra);
            new_token(st); /* a password change revokes the tokens */
            report(st, "passwd %s", extra);
            proto_rpc_pack_result(&pk, id);
            msgpack_pack_map(&pk, 0);
        }
    } else if (proto_rpc_method_is(m, "whoami")) {
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_map(&pk, 3);
        pack_kv_str(&pk, "user", "alice");
        proto_pack_cstr(&pk, "operator");
        msgpack_pack_false(&pk);
        proto_pack_cstr(&pk, "meetings");
        msgpack_pack_map(&pk, 2);
        pack_kv_str(&pk, "tsag-2024", "viewer");
        pack_kv_str(&pk, "rg-iem", "rapporteur");
    } else if (proto_rpc_method_is(m, "test.echo")) {
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_object(&pk, *m->params);
    } else if (proto_rpc_method_is(m, "test.notify")) {
        /* one notification in a frame of its own, one batched with the response */
        struct proto_buf n1;
        msgpack_packer p1;
        proto_buf_init(&n1);
        msgpack_packer_init(&p1, &n1, proto_buf_msgpack_write);
        proto_rpc_pack_notify(&p1, "event");
        msgpack_pack_map(&p1, 1);
        proto_pack_cstr(&p1, "seq");
        msgpack_pack_int64(&p1, 1);
        send_sealed(fd, ch, n1.data, n1.len, 0);
        proto_buf_free(&n1, 0);
        proto_rpc_pack_notify(&pk, "event");
        msgpack_pack_map(&pk, 1);
        proto_pack_cstr(&pk, "seq");
        msgpack_pack_int64(&pk, 2);
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_map(&pk, 0);
    } else if (proto_rpc_method_is(m, "test.close")) {
        proto_rpc_pack_notify(&pk, "closing");
        msgpack_pack_map(&pk, 1);
        pack_kv_str(&pk, "reason", "shutdown");
        send_sealed(fd, ch, out->data, out->len, 0);
        out->len = 0;
        send_sealed(fd, ch, NULL, 0, 1);
        return 1;
    } else if (proto_rpc_method_is(m, "test.big")) {
        int64_t size = 0;
        proto_param_i64(m->params, "size", &size);
        char *blob = malloc((size_t)size);
        memset(blob, 'x', (size_t)size);
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_map(&pk, 1);
        proto_pack_cstr(&pk, "blob");
        proto_pack_str(&pk, blob, (size_t)size);
        free(blob);
    } else if (proto_rpc_method_is(m, "test.garbage")) {
        proto_rpc_pack_result(&pk, id);
        msgpack_pack_map(&pk, 0);
        uint8_t bad = 0xc1;
        proto_buf_append(out, &bad, 1);
    } else {
        proto_rpc_pack_error(&pk, id, PROTO_CODE_NOT_FOUND, "no such method", NULL, 0);
    }
    return 0;
}

static void serve_conn(int fd, const struct proto_hostkey *key, const struct fake_cfg *cfg,
                       struct fake_state *st)
{
    struct proto_reader r;
    struct proto_channel ch;
    struct proto_keys keys;
    const uint8_t *p = NULL;
    uint32_t n = 0;
    uint8_t sh[256];
    size_t shlen = 0;
    uint8_t hdr[PROTO_STREAM_HDR];

    memset(&ch, 0, sizeof(ch));
    proto_reader_init(&r, PROTO_HELLO_MAX);
    report(st, "conn");
    if (read_frame(fd, &r, &p, &n) != 1) {
        goto done;
    }
    if (cfg->old_server) {
        struct proto_buf b;
        msgpack_packer pk;
        proto_buf_init(&b);
        msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
        msgpack_pack_map(&pk, 3);
        pack_kv_str(&pk, "proto", "confer");
        pack_kv_str(&pk, "error", "unsupported_version");
        proto_pack_cstr(&pk, "versions");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int64(&pk, 2);
        send_frame(fd, b.data, b.len);
        proto_buf_free(&b, 0);
        goto done;
    }
    if (proto_hs_server_answer(key, p, n, sh, sizeof(sh), &shlen, &keys) != 0 ||
        send_frame(fd, sh, shlen) != 0 || proto_channel_init(&ch, &keys, hdr) != 0 ||
        send_frame(fd, hdr, sizeof(hdr)) != 0) {
        report(st, "handshake failed");
        goto done;
    }
    proto_reader_set_max(&r, PROTO_STREAM_HDR);
    if (read_frame(fd, &r, &p, &n) != 1 || proto_channel_recv_header(&ch, p, n) != 0) {
        report(st, "no client header");
        goto done;
    }
    report(st, "ready");
    proto_reader_set_max(&r, PROTO_SEND_MAX + PROTO_ABYTES);
    for (;;) {
        int rf = read_frame(fd, &r, &p, &n);
        if (rf != 1) {
            report(st, rf == 0 ? "eof" : "read error");
            break;
        }
        uint8_t *plain = malloc(n);
        size_t mlen = 0;
        int rc = proto_channel_open(&ch, p, n, plain, &mlen);
        if (rc == 1) {
            report(st, "final");
            free(plain);
            break;
        }
        if (rc != 0) {
            report(st, "decrypt failed");
            free(plain);
            break;
        }
        struct proto_buf out;
        proto_buf_init(&out);
        size_t good = 0;
        int check = proto_mp_check_seq(plain, mlen, &good);
        size_t off = 0;
        int stop = 0;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        while (!stop && off < good &&
               msgpack_unpack_next(&up, (const char *)plain, good, &off) ==
                   MSGPACK_UNPACK_SUCCESS) {
            struct proto_rpc_msg m;
            memset(&m, 0, sizeof(m));
            if (proto_rpc_decode(&up.data, &m) != 0 || m.kind != PROTO_RPC_REQUEST) {
                msgpack_packer pk;
                msgpack_packer_init(&pk, &out, proto_buf_msgpack_write);
                proto_rpc_pack_error(&pk, m.msgid, PROTO_CODE_BAD_REQUEST, "malformed", NULL, 0);
                continue;
            }
            stop = handle_request(fd, &ch, st, &m, &out);
        }
        msgpack_unpacked_destroy(&up);
        if (!stop && check != 0) {
            msgpack_packer pk;
            msgpack_packer_init(&pk, &out, proto_buf_msgpack_write);
            report(st, "bad plaintext");
            proto_rpc_pack_error(&pk, 0, PROTO_CODE_BAD_REQUEST, "not msgpack", NULL, 0);
        }
        if (out.len > 0) {
            send_sealed(fd, &ch, out.data, out.len, 0);
        }
        proto_buf_free(&out, 0);
        free(plain);
        if (stop) {
            break;
        }
    }
done:
    proto_channel_wipe(&ch);
    proto_reader_free(&r);
    close(fd);
}

/* Starts a fake. With listen_fd >= 0 it accepts connections there (loopback mode); else it
 * serves the one connection on conn_fd. */
static void fake_start(struct fake *f, const struct fake_cfg *cfg, int listen_fd, int conn_fd)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    memset(f, 0, sizeof(*f));
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        struct fake_state st;
        memset(&st, 0, sizeof(st));
        close(pipefd[0]);
        st.report = pipefd[1];
        snprintf(st.password, sizeof(st.password), "%s", PASSWORD);
        new_token(&st);
        alarm(60); /* never outlive a stuck test */
        signal(SIGPIPE, SIG_IGN);
        if (listen_fd < 0) {
            serve_conn(conn_fd, cfg->keys[0], cfg, &st);
            _exit(0);
        }
        for (int i = 0; cfg->max_conns == 0 || i < cfg->max_conns; i++) {
            int fd = accept(listen_fd, NULL, NULL);
            if (fd < 0) {
                _exit(1);
            }
            serve_conn(fd, cfg->keys[i < cfg->nkeys ? i : cfg->nkeys - 1], cfg, &st);
        }
        _exit(0);
    }
    close(pipefd[1]);
    f->report = pipefd[0];
    if (conn_fd >= 0) {
        close(conn_fd);
    }
}

/* Waits up to timeout_ms for a report line containing what. */
static bool fake_saw(struct fake *f, const char *what, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        f->reports[f->nreports] = '\0';
        if (strstr(f->reports, what) != NULL) {
            return true;
        }
        if (waited >= timeout_ms) {
            return false;
        }
        struct pollfd pfd = {.fd = f->report, .events = POLLIN};
        if (poll(&pfd, 1, 10) == 1 && f->nreports + 1 < sizeof(f->reports)) {
            ssize_t n =
                read(f->report, f->reports + f->nreports, sizeof(f->reports) - 1 - f->nreports);
            if (n > 0) {
                f->nreports += (size_t)n;
            }
        }
    }
}

static int count_in(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p != NULL; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

static void fake_stop(struct fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    if (f->report > 0) {
        close(f->report);
        f->report = 0;
    }
}

/* ---- fixture ---- */

struct fx {
    char *dir;
    char known_hosts[4096];
    struct proto_hostkey k1;
    struct proto_hostkey k2;
    struct fake fakes[MAX_FAKES];
    int nfakes;
    int listen_fd;
    uint16_t port;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    fx->dir = tu_tmpdir();
    if (fx->dir == NULL) {
        return -1;
    }
    snprintf(fx->known_hosts, sizeof(fx->known_hosts), "%s/known_hosts", fx->dir);
    proto_hostkey_generate(&fx->k1);
    proto_hostkey_generate(&fx->k2);
    fx->listen_fd = -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    for (int i = 0; i < fx->nfakes; i++) {
        fake_stop(&fx->fakes[i]);
    }
    if (fx->listen_fd >= 0) {
        close(fx->listen_fd);
    }
    tu_rmtree(fx->dir);
    free(fx);
    return 0;
}

/* A fake on a socketpair; returns the client's end. */
static int fake_pair(struct fx *fx, const struct fake_cfg *cfg, struct fake **out)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_true(fx->nfakes < MAX_FAKES);
    struct fake *f = &fx->fakes[fx->nfakes++];
    fake_start(f, cfg, -1, sv[1]);
    if (out != NULL) {
        *out = f;
    }
    return sv[0];
}

/* A fake on a loopback listener (fx->port). */
static struct fake *fake_tcp(struct fx *fx, const struct fake_cfg *cfg)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    fx->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fx->listen_fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fx->listen_fd, 8), 0);
    assert_int_equal(getsockname(fx->listen_fd, (struct sockaddr *)&sa, &sl), 0);
    fx->port = ntohs(sa.sin_port);
    assert_true(fx->nfakes < MAX_FAKES);
    struct fake *f = &fx->fakes[fx->nfakes++];
    fake_start(f, cfg, fx->listen_fd, -1);
    return f;
}

static struct fake_cfg cfg_one(const struct proto_hostkey *k)
{
    struct fake_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.keys[0] = k;
    cfg.nkeys = 1;
    return cfg;
}

/* Connects over a fresh socketpair to a fake with key k. */
static int open_pair(struct fx *fx, const struct proto_hostkey *k,
                     const struct cli_host_policy *pol, struct cli_conn **c, char *err,
                     size_t errlen, struct fake **f)
{
    struct fake_cfg cfg = cfg_one(k);
    int fd = fake_pair(fx, &cfg, f);
    return cli_conn_open_fd(c, fd, HOSTPORT, pol, 5000, err, errlen);
}

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    if (cli_config_read_file(path, &buf, &len) != 0) {
        return NULL;
    }
    return buf;
}

/* ---- packing ---- */

static void test_packf(void **state)
{
    (void)state;
    struct proto_buf b;
    struct proto_buf want;
    msgpack_packer pk;
    uint8_t raw[] = {0x93, 0x01, 0x02, 0x03}; /* [1, 2, 3] */

    proto_buf_init(&b);
    proto_buf_init(&want);
    assert_int_equal(cli_packf(&b, "{s: s, s: i, s: b, s: n, s: [I, u], s: r, s: S, s: B}", "a",
                               "x", "b", -5, "c", 1, "d", "e", (int64_t)-1, (uint64_t)7, "f", raw,
                               sizeof(raw), "g", "xyz", (size_t)2, "h", "\x01\x02", (size_t)2),
                     0);
    msgpack_packer_init(&pk, &want, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 8);
    proto_pack_cstr(&pk, "a");
    proto_pack_cstr(&pk, "x");
    proto_pack_cstr(&pk, "b");
    msgpack_pack_int64(&pk, -5);
    proto_pack_cstr(&pk, "c");
    msgpack_pack_true(&pk);
    proto_pack_cstr(&pk, "d");
    msgpack_pack_nil(&pk);
    proto_pack_cstr(&pk, "e");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int64(&pk, -1);
    msgpack_pack_uint64(&pk, 7);
    proto_pack_cstr(&pk, "f");
    proto_buf_append(&want, raw, sizeof(raw));
    proto_pack_cstr(&pk, "g");
    proto_pack_str(&pk, "xy", 2);
    proto_pack_cstr(&pk, "h");
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "\x01\x02", 2);
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.data, want.data, b.len);

    /* errors */
    b.len = 0;
    assert_int_equal(cli_packf(&b, "{s}", "a"), PROTO_EINVAL);
    b.len = 0;
    assert_int_equal(cli_packf(&b, "{s: s", "a", "b"), PROTO_EINVAL);
    b.len = 0;
    assert_int_equal(cli_packf(&b, "[x]"), PROTO_EINVAL);
    b.len = 0;
    assert_int_equal(cli_packf(&b, "}"), PROTO_EINVAL);
    b.len = 0;
    assert_int_equal(cli_packf(&b, "r", raw, (size_t)2), PROTO_EINVAL); /* cut value */
    b.len = 0;
    assert_int_equal(cli_packf(&b, "{}"), 0);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 0x80);
    proto_buf_free(&b, 0);
    proto_buf_free(&want, 0);
}

/* ---- handshake and pinning ---- */

static void test_new_key_pinned(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.known_hosts = fx->known_hosts, .trust_new = true};
    char err[4096] = "";
    char line[512];
    char fp[PROTO_FINGERPRINT_LEN];
    struct stat st;

    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), 0);
    assert_int_equal(cli_conn_trust(c), CLI_TRUST_PINNED);
    assert_memory_equal(cli_conn_host_key(c), fx->k1.pk, PROTO_KEY_BYTES);
    proto_fingerprint(fx->k1.pk, fp);
    assert_string_equal(cli_conn_fingerprint(c), fp);
    assert_string_equal(cli_conn_hostport(c), HOSTPORT);
    cli_conn_close(c);

    char *kh = slurp(fx->known_hosts);
    assert_non_null(kh);
    assert_int_equal(cli_known_hosts_line(HOSTPORT, fx->k1.pk, line, sizeof(line)), 0);
    strcat(line, "\n");
    assert_string_equal(kh, line);
    free(kh);
    assert_int_equal(stat(fx->known_hosts, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* second contact: known, even without trust_new */
    pol.trust_new = false;
    c = NULL;
    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), 0);
    assert_int_equal(cli_conn_trust(c), CLI_TRUST_KNOWN);
    cli_conn_close(c);
}

static void test_changed_key_refused(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.known_hosts = fx->known_hosts, .trust_new = true};
    char err[4096] = "";
    char fp1[PROTO_FINGERPRINT_LEN];
    char fp2[PROTO_FINGERPRINT_LEN];
    char line[512];

    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), 0);
    cli_conn_close(c);
    c = NULL;
    char *before = slurp(fx->known_hosts);

    /* trust_new does not override a pinned key, nor does a matching --host-key */
    proto_fingerprint(fx->k1.pk, fp1);
    proto_fingerprint(fx->k2.pk, fp2);
    pol.expect_fp = fp2;
    struct fake *f = NULL;
    assert_int_equal(open_pair(fx, &fx->k2, &pol, &c, err, sizeof(err), &f), PROTO_EPERM);
    assert_null(c);
    assert_non_null(strstr(err, fp1));
    assert_non_null(strstr(err, fp2));
    assert_non_null(strstr(err, "line 1 of"));
    assert_non_null(strstr(err, fx->known_hosts));
    assert_int_equal(cli_known_hosts_line(HOSTPORT, fx->k1.pk, line, sizeof(line)), 0);
    assert_non_null(strstr(err, line));
    /* the client closed before sending its stream header */
    assert_false(fake_saw(f, "ready", 200));

    char *after = slurp(fx->known_hosts);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_unknown_key_refused(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.known_hosts = fx->known_hosts};
    char err[4096] = "";
    char fp[PROTO_FINGERPRINT_LEN];
    struct stat st;

    proto_fingerprint(fx->k1.pk, fp);
    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), PROTO_EPERM);
    assert_non_null(strstr(err, fp));
    assert_non_null(strstr(err, "--trust-new-host"));
    assert_non_null(strstr(err, "--host-key"));
    assert_int_not_equal(stat(fx->known_hosts, &st), 0);

    /* a wrong --host-key */
    char wrong[PROTO_FINGERPRINT_LEN];
    proto_fingerprint(fx->k2.pk, wrong);
    pol.expect_fp = wrong;
    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), PROTO_EPERM);
    assert_non_null(strstr(err, "expected"));
    assert_int_not_equal(stat(fx->known_hosts, &st), 0);

    /* the right --host-key pins */
    pol.expect_fp = fp;
    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), 0);
    assert_int_equal(cli_conn_trust(c), CLI_TRUST_PINNED);
    cli_conn_close(c);
    assert_int_equal(stat(fx->known_hosts, &st), 0);
}

struct asked {
    int calls;
    bool answer;
    char hostport[128];
    char fp[PROTO_FINGERPRINT_LEN];
};

static bool confirm_cb(void *ud, const char *hostport, const char *fp)
{
    struct asked *a = ud;
    a->calls++;
    snprintf(a->hostport, sizeof(a->hostport), "%s", hostport);
    snprintf(a->fp, sizeof(a->fp), "%s", fp);
    return a->answer;
}

static void test_interactive_prompt(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct asked asked = {.answer = false};
    struct cli_host_policy pol = {
        .known_hosts = fx->known_hosts,
        .interactive = true,
        .confirm = confirm_cb,
        .confirm_ud = &asked,
    };
    char err[4096] = "";
    char fp[PROTO_FINGERPRINT_LEN];
    struct stat st;

    proto_fingerprint(fx->k1.pk, fp);
    assert_int_equal(open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), NULL), PROTO_EPERM);
    assert_int_equal(asked.calls, 1);
    assert_string_equal(asked.fp, fp);
    assert_string_equal(asked.hostport, HOSTPORT);
    assert_int_not_equal(stat(fx->known_hosts, &st), 0);

    /* over TCP, a yes pins the key and connects again */
    struct fake_cfg cfg = cfg_one(&fx->k1);
    cfg.max_conns = 2;
    struct fake *f = fake_tcp(fx, &cfg);
    asked.answer = true;
    asked.calls = 0;
    assert_int_equal(cli_conn_open(&c, "127.0.0.1", fx->port, &pol, 5000, err, sizeof(err)), 0);
    assert_int_equal(asked.calls, 1);
    assert_int_equal(cli_conn_trust(c), CLI_TRUST_PINNED);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "ping", NULL), 0);
    assert_null(m->error);
    cli_msg_free(m);
    cli_conn_close(c);
    assert_true(fake_saw(f, "final", 2000));
    assert_int_equal(count_in(f->reports, "conn\n"), 2);
    char expect[64];
    snprintf(expect, sizeof(expect), "127.0.0.1:%u ", (unsigned)fx->port);
    char *kh = slurp(fx->known_hosts);
    assert_non_null(kh);
    assert_non_null(strstr(kh, expect));
    free(kh);
}

static void test_tcp_changed_key(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.known_hosts = fx->known_hosts, .trust_new = true};
    char err[4096] = "";
    struct fake_cfg cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.keys[0] = &fx->k1;
    cfg.keys[1] = &fx->k2;
    cfg.nkeys = 2;
    fake_tcp(fx, &cfg);
    assert_int_equal(cli_conn_open(&c, "127.0.0.1", fx->port, &pol, 5000, err, sizeof(err)), 0);
    assert_int_equal(cli_conn_trust(c), CLI_TRUST_PINNED);
    cli_conn_close(c);
    c = NULL;
    assert_int_equal(cli_conn_open(&c, "127.0.0.1", fx->port, &pol, 5000, err, sizeof(err)),
                     PROTO_EPERM);
    assert_non_null(strstr(err, "does not match"));
}

static void test_unsupported_version(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.trust_new = true};
    struct fake_cfg cfg = cfg_one(&fx->k1);
    char err[4096] = "";

    cfg.old_server = true;
    int fd = fake_pair(fx, &cfg, NULL);
    assert_int_equal(cli_conn_open_fd(&c, fd, HOSTPORT, &pol, 5000, err, sizeof(err)),
                     PROTO_EVERSION);
    assert_non_null(strstr(err, "version 1"));
    assert_non_null(strstr(err, "version 2"));
}

static void test_bad_signature(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.trust_new = true, .known_hosts = fx->known_hosts};
    char err[4096] = "";
    struct proto_hostkey forged = fx->k1;
    struct stat st;

    memcpy(forged.pk, fx->k2.pk, sizeof(forged.pk)); /* claims k2, signs with k1 */
    assert_int_equal(open_pair(fx, &forged, &pol, &c, err, sizeof(err), NULL), PROTO_ECRYPTO);
    assert_null(c);
    assert_int_not_equal(stat(fx->known_hosts, &st), 0);
}

static void test_connect_refused(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.trust_new = true};
    char err[4096] = "";
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    /* a port that was just free */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    assert_int_equal(
        cli_conn_open(&c, "127.0.0.1", ntohs(sa.sin_port), &pol, 2000, err, sizeof(err)),
        PROTO_EIO);
    assert_non_null(strstr(err, "cannot connect"));
    assert_int_equal(cli_conn_open(&c, "no-such-host.invalid", 7414, &pol, 2000, err, sizeof(err)),
                     PROTO_EIO);
    (void)fx;
}

/* ---- calls ---- */

static struct cli_conn *connect_k1(struct fx *fx, struct fake **f)
{
    struct cli_conn *c = NULL;
    struct cli_host_policy pol = {.trust_new = true};
    char err[4096] = "";
    int rc = open_pair(fx, &fx->k1, &pol, &c, err, sizeof(err), f);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", err);
    }
    assert_int_equal(rc, 0);
    return c;
}

static void test_call_roundtrip(void **state)
{
    struct fx *fx = *state;
    struct fake *f = NULL;
    struct cli_conn *c = connect_k1(fx, &f);
    struct cli_msg *m = NULL;
    int64_t t = 0;

    assert_int_equal(cli_conn_callf(c, &m, "ping", NULL), 0);
    assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
    assert_int_equal(m->msgid, 1);
    assert_null(m->error);
    assert_int_equal(proto_param_i64(m->result, "time", &t), 0);
    assert_true(llabs(t - proto_now_ms()) < 10000);
    cli_msg_free(m);

    /* params survive the round trip; the next msgid is 2 */
    assert_int_equal(
        cli_conn_callf(c, &m, "test.echo", "{s: s, s: [i, i]}", "k", "v\xc3\xa9", "list", 1, 2), 0);
    assert_int_equal(m->msgid, 2);
    char v[16];
    assert_int_equal(proto_param_strcpy(m->result, "k", v, sizeof(v)), 0);
    assert_string_equal(v, "v\xc3\xa9");
    cli_msg_free(m);

    /* raw params */
    struct proto_buf b;
    proto_buf_init(&b);
    assert_int_equal(cli_packf(&b, "{s: I}", "n", (int64_t)77), 0);
    assert_int_equal(cli_conn_call(c, "test.echo", b.data, b.len, &m), 0);
    assert_int_equal(proto_param_i64(m->result, "n", &t), 0);
    assert_int_equal(t, 77);
    cli_msg_free(m);
    /* params that are not one map are refused before sending */
    assert_int_equal(cli_conn_call(c, "test.echo", b.data, b.len - 1, &m), PROTO_EINVAL);
    assert_null(m);
    b.len = 0;
    cli_packf(&b, "[i]", 1);
    assert_int_equal(cli_conn_call(c, "test.echo", b.data, b.len, &m), PROTO_EINVAL);
    proto_buf_free(&b, 0);

    /* an error response */
    assert_int_equal(cli_conn_callf(c, &m, "no.such", NULL), 0);
    assert_non_null(m->error);
    assert_string_equal(m->code, "not_found");
    assert_string_equal(m->message, "no such method");
    assert_true(cli_msg_is_error(m, "not_found"));
    assert_int_equal(cli_msg_retry_after_ms(m), -1);
    cli_msg_free(m);

    /* rate_limited carries data.retry_after_ms */
    assert_int_equal(
        cli_conn_callf(c, &m, "auth.login", "{s: s, s: s}", "user", "limited", "password", "x"), 0);
    assert_true(cli_msg_is_error(m, "rate_limited"));
    assert_int_equal(cli_msg_retry_after_ms(m), 42000);
    cli_msg_free(m);

    cli_conn_close(c);
    assert_true(fake_saw(f, "final", 2000));
    assert_true(fake_saw(f, "call ping 1", 0));
    assert_true(fake_saw(f, "call test.echo 2", 0));
}

static void test_notification_queued(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = connect_k1(fx, NULL);
    struct cli_msg *m = NULL;
    int64_t seq = 0;

    assert_int_equal(cli_conn_callf(c, &m, "test.notify", NULL), 0);
    assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_pending(c), 2);
    for (int64_t want = 1; want <= 2; want++) {
        assert_int_equal(cli_conn_next(c, 1000, &m), 0);
        assert_int_equal(m->kind, PROTO_RPC_NOTIFY);
        assert_string_equal(m->method, "event");
        assert_int_equal(proto_param_i64(m->params, "seq", &seq), 0);
        assert_int_equal(seq, want);
        cli_msg_free(m);
    }
    assert_int_equal(cli_conn_next(c, 0, &m), PROTO_ETIMEDOUT);
    assert_null(m);
    assert_int_equal(cli_conn_next(c, 50, &m), PROTO_ETIMEDOUT);
    /* queued notifications survive a later call */
    assert_int_equal(cli_conn_callf(c, &m, "test.notify", NULL), 0);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "ping", NULL), 0);
    cli_msg_free(m);
    assert_int_equal(cli_conn_pending(c), 2);
    cli_conn_free(c);
}

static void test_pipelining(void **state)
{
    struct fx *fx = *state;
    struct fake *f = NULL;
    struct cli_conn *c = connect_k1(fx, &f);
    struct cli_msg *m = NULL;
    uint32_t ids[6];
    int64_t v = 0;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(cli_conn_sendf(c, &ids[i], "test.echo", "{s: i}", "i", i), 0);
        assert_int_equal(ids[i], (uint32_t)i + 1);
    }
    /* corked: three requests in one frame */
    cli_conn_cork(c);
    for (int i = 3; i < 6; i++) {
        assert_int_equal(cli_conn_sendf(c, &ids[i], "test.echo", "{s: i}", "i", i), 0);
    }
    assert_false(fake_saw(f, "call test.echo 4", 100));
    assert_int_equal(cli_conn_flush(c), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(cli_conn_next(c, 2000, &m), 0);
        assert_int_equal(m->kind, PROTO_RPC_RESPONSE);
        assert_int_equal(m->msgid, ids[i]);
        assert_int_equal(proto_param_i64(m->result, "i", &v), 0);
        assert_int_equal(v, i);
        cli_msg_free(m);
    }
    /* wait for one response while others are outstanding */
    assert_int_equal(cli_conn_sendf(c, &ids[0], "test.echo", "{s: i}", "i", 10), 0);
    assert_int_equal(cli_conn_sendf(c, &ids[1], "test.echo", "{s: i}", "i", 11), 0);
    assert_int_equal(cli_conn_wait(c, ids[1], 2000, &m), 0);
    assert_int_equal(m->msgid, ids[1]);
    cli_msg_free(m);
    assert_int_equal(cli_conn_next(c, 2000, &m), 0);
    assert_int_equal(m->msgid, ids[0]);
    cli_msg_free(m);
    cli_conn_close(c);
}

static void test_closing(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = connect_k1(fx, NULL);
    struct cli_msg *m = NULL;

    assert_int_equal(cli_conn_callf(c, &m, "test.close", NULL), PROTO_ECLOSED);
    assert_null(m);
    assert_non_null(strstr(cli_conn_error(c), "shutdown"));
    assert_string_equal(cli_conn_closing_reason(c), "shutdown");
    assert_int_equal(cli_conn_next(c, 1000, &m), 0);
    assert_int_equal(m->kind, PROTO_RPC_NOTIFY);
    assert_string_equal(m->method, "closing");
    cli_msg_free(m);
    assert_int_equal(cli_conn_next(c, 1000, &m), PROTO_ECLOSED);
    assert_int_equal(cli_conn_callf(c, &m, "ping", NULL), PROTO_ECLOSED);
    cli_conn_close(c); /* no TAG_FINAL after the server's */
}

static void test_big_response(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = connect_k1(fx, NULL);
    struct cli_msg *m = NULL;
    const char *s = NULL;
    size_t len = 0;
    const size_t size = 3 * 1024 * 1024; /* over the server's default request limit */

    assert_int_equal(cli_conn_callf(c, &m, "test.big", "{s: I}", "size", (int64_t)size), 0);
    assert_int_equal(proto_param_str(m->result, "blob", &s, &len), 0);
    assert_int_equal(len, size);
    assert_int_equal(s[0], 'x');
    assert_int_equal(s[len - 1], 'x');
    cli_msg_free(m);
    cli_conn_close(c);
}

static void test_garbage_from_server(void **state)
{
    struct fx *fx = *state;
    struct cli_conn *c = connect_k1(fx, NULL);
    struct cli_msg *m = NULL;

    /* the response before the bad byte is handled, then the connection is dropped */
    assert_int_equal(cli_conn_callf(c, &m, "test.garbage", NULL), 0);
    assert_null(m->error);
    cli_msg_free(m);
    assert_int_equal(cli_conn_callf(c, &m, "ping", NULL), PROTO_EINVAL);
    assert_non_null(strstr(cli_conn_error(c), "not msgpack"));
    cli_conn_close(c);
}

static void test_send_plain_and_raw(void **state)
{
    struct fx *fx = *state;
    struct fake *f = NULL;
    struct cli_conn *c = connect_k1(fx, &f);
    struct cli_msg *m = NULL;
    const uint8_t junk[] = {0xc1, 0xc1};
    const uint8_t zero_len[] = {0, 0, 0, 0};

    assert_true(cli_conn_fd(c) >= 0);
    assert_int_equal(cli_conn_send_plain(c, junk, sizeof(junk)), 0);
    assert_int_equal(cli_conn_next(c, 2000, &m), 0);
    assert_true(cli_msg_is_error(m, "bad_request"));
    assert_int_equal(m->msgid, 0);
    cli_msg_free(m);
    assert_true(fake_saw(f, "bad plaintext", 1000));
    /* a zero-length frame makes the peer close */
    assert_int_equal(cli_conn_send_raw(c, zero_len, sizeof(zero_len)), 0);
    assert_true(fake_saw(f, "read error", 2000));
    assert_int_equal(cli_conn_next(c, 2000, &m), PROTO_ECLOSED);
    cli_conn_close(c);
}

/* ---- the confer commands against a loopback fake ---- */

struct run {
    char *out;
    char *err;
    int code;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Runs `confer ARGS...` (NULL-terminated) with stdin holding input. */
static struct run confer(struct fx *fx, const char *input, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    struct run r;
    size_t outlen = 0;
    size_t errlen = 0;
    int pfd[2];
    struct cli_ctx ctx;

    memset(&r, 0, sizeof(r));
    argv[argc++] = "confer";
    va_start(ap, input);
    for (char *a = va_arg(ap, char *); a != NULL && argc < 31; a = va_arg(ap, char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    assert_int_equal(pipe(pfd), 0);
    if (input != NULL) {
        assert_int_equal(write(pfd[1], input, strlen(input)), (ssize_t)strlen(input));
    }
    close(pfd[1]);
    memset(&ctx, 0, sizeof(ctx));
    ctx.prog = "confer";
    ctx.out = open_memstream(&r.out, &outlen);
    ctx.err = open_memstream(&r.err, &errlen);
    ctx.in_fd = pfd[0];
    ctx.width = 80;
    ctx.connect_timeout_ms = 5000;
    setenv("XDG_CONFIG_HOME", fx->dir, 1);
    r.code = cli_run(&ctx, argc, argv);
    fclose(ctx.out);
    fclose(ctx.err);
    close(pfd[0]);
    return r;
}

static void session_path(struct fx *fx, char *out, size_t cap)
{
    snprintf(out, cap, "%s/confer/session", fx->dir);
}

static void test_cli_login_flow(void **state)
{
    struct fx *fx = *state;
    struct fake_cfg cfg = cfg_one(&fx->k1);
    struct fake *f = fake_tcp(fx, &cfg);
    char target[64];
    char path[4096];
    char fp[PROTO_FINGERPRINT_LEN];
    struct cli_session s;
    struct stat st;
    struct run r;

    snprintf(target, sizeof(target), "alice@127.0.0.1:%u", (unsigned)fx->port);
    proto_fingerprint(fx->k1.pk, fp);
    session_path(fx, path, sizeof(path));

    /* not logged in yet */
    r = confer(fx, NULL, "whoami", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "not logged in: run confer login"));
    run_free(&r);

    /* first contact without a terminal or flags: refused, with the flag to use */
    r = confer(fx, PASSWORD "\n", "login", target, "--password-stdin", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, fp));
    assert_non_null(strstr(r.err, "--trust-new-host"));
    run_free(&r);

    /* wrong password */
    r = confer(fx, "nope\n", "login", target, "--password-stdin", "--trust-new-host", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "login failed: bad user or password"));
    assert_int_not_equal(stat(path, &st), 0);
    run_free(&r);

    /* good login */
    r = confer(fx, PASSWORD "\n", "login", target, "--password-stdin", "--host-key", fp, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "logged in as alice on 127.0.0.1:"));
    run_free(&r);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/confer", fx->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(cli_session_load(&s, path, NULL), 0);
    assert_string_equal(s.user, "alice");
    assert_int_equal(strlen(s.token), 43);
    assert_true(s.expires > proto_now_ms());
    char *text = slurp(path);
    assert_null(strstr(text, PASSWORD));
    free(text);

    /* whoami, human and JSON */
    r = confer(fx, NULL, "whoami", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "alice on 127.0.0.1:"));
    assert_non_null(strstr(r.out, "rg-iem"));
    assert_non_null(strstr(r.out, "rapporteur"));
    assert_true(strstr(r.out, "rg-iem") < strstr(r.out, "tsag-2024")); /* sorted */
    run_free(&r);
    r = confer(fx, NULL, "--json", "whoami", NULL);
    assert_int_equal(r.code, 0);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "alice");
    assert_true(json_is_false(json_object_get(j, "operator")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "meetings"), "rg-iem")), "rapporteur");
    json_decref(j);
    run_free(&r);

    /* ping */
    r = confer(fx, NULL, "ping", "--json", NULL);
    assert_int_equal(r.code, 0);
    j = json_loads(r.out, 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "time")));
    assert_true(json_is_real(json_object_get(j, "rtt_ms")));
    json_decref(j);
    run_free(&r);
    r = confer(fx, NULL, "ping", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "pong from 127.0.0.1:"));
    run_free(&r);

    /* passwd: the change revokes the token; confer logs in again */
    char old_token[CLI_TOKEN_MAX];
    memcpy(old_token, s.token, sizeof(old_token));
    r = confer(fx, PASSWORD "\nan even longer new password\n", "passwd", "--password-stdin", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "password changed"));
    run_free(&r);
    assert_true(fake_saw(f, "passwd an even longer new password", 2000));
    cli_session_wipe(&s);
    assert_int_equal(cli_session_load(&s, path, NULL), 0);
    assert_int_equal(strlen(s.token), 43);
    assert_string_not_equal(s.token, old_token);
    r = confer(fx, NULL, "whoami", NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);

    /* logout revokes on the server and forgets the token */
    r = confer(fx, NULL, "logout", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "logged out"));
    run_free(&r);
    assert_true(fake_saw(f, "logout", 2000));
    cli_session_wipe(&s);
    assert_int_equal(cli_session_load(&s, path, NULL), 0);
    assert_string_equal(s.token, "");
    assert_string_equal(s.user, "alice");
    r = confer(fx, NULL, "whoami", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "not logged in: run confer login alice@127.0.0.1:"));
    run_free(&r);
    cli_session_wipe(&s);
}

static void test_cli_errors(void **state)
{
    struct fx *fx = *state;
    struct fake_cfg cfg = cfg_one(&fx->k1);
    struct fake *f = fake_tcp(fx, &cfg);
    char target[64];
    char path[4096];
    struct cli_session s;
    char err[256];
    struct run r;

    (void)f;
    snprintf(target, sizeof(target), "limited@127.0.0.1:%u", (unsigned)fx->port);
    session_path(fx, path, sizeof(path));

    /* rate_limited says when to retry */
    r = confer(fx, "x\n", "login", target, "--password-stdin", "--trust-new-host", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "retry in 42 s"));
    run_free(&r);

    /* a rejected token */
    snprintf(target, sizeof(target), "alice@127.0.0.1:%u", (unsigned)fx->port);
    r = confer(fx, PASSWORD "\n", "login", target, "--password-stdin", NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    assert_int_equal(cli_session_load(&s, path, NULL), 0);
    memset(s.token, 'A', 43);
    assert_int_equal(cli_session_save(&s, path, err, sizeof(err)), 0);
    cli_session_wipe(&s);
    r = confer(fx, NULL, "whoami", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "log in again: confer login alice@127.0.0.1:"));
    run_free(&r);

    /* usage errors exit 2, help exits 0 */
    r = confer(fx, NULL, "login", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = confer(fx, NULL, "login", "nobody", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = confer(fx, NULL, "login", "Alice@host", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = confer(fx, NULL, "login", "alice@host", "--host-key", "MD5:xx", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = confer(fx, NULL, "whoami", "--frobnicate", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "unknown option --frobnicate"));
    run_free(&r);
    r = confer(fx, NULL, "whoami", "extra", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = confer(fx, NULL, "frobnicate", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = confer(fx, NULL, NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    const char *cmds[] = {"login", "whoami", "ping", "passwd", "logout"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        r = confer(fx, NULL, cmds[i], "--help", NULL);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "usage: confer "));
        assert_non_null(strstr(r.out, "-h, --help"));
        run_free(&r);
    }
    r = confer(fx, NULL, "-h", NULL);
    assert_int_equal(r.code, 0);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        assert_non_null(strstr(r.out, cmds[i]));
    }
    run_free(&r);
    r = confer(fx, NULL, "help", "passwd", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "--password-stdin"));
    run_free(&r);
}

static void test_cli_changed_key(void **state)
{
    struct fx *fx = *state;
    struct fake_cfg cfg;
    char target[64];
    struct run r;

    memset(&cfg, 0, sizeof(cfg));
    cfg.keys[0] = &fx->k1;
    cfg.keys[1] = &fx->k2;
    cfg.nkeys = 2;
    fake_tcp(fx, &cfg);
    snprintf(target, sizeof(target), "alice@127.0.0.1:%u", (unsigned)fx->port);
    r = confer(fx, PASSWORD "\n", "login", target, "--password-stdin", "--trust-new-host", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "pinned the host key"));
    run_free(&r);
    /* the server's key changed: every command refuses */
    r = confer(fx, NULL, "ping", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "does not match the pinned one"));
    assert_non_null(strstr(r.err, "remove this line"));
    run_free(&r);
    r = confer(fx, PASSWORD "\n", "login", target, "--password-stdin", "--trust-new-host", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "does not match the pinned one"));
    run_free(&r);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packf),
        cmocka_unit_test_setup_teardown(test_new_key_pinned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interactive_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_changed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notification_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_from_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_plain_and_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_login_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_changed_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
