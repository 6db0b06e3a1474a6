/* testsrv.c - a real conferd for the server tests. */
#define _XOPEN_SOURCE 700
#include "testsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto_rpc.h"
#include "proto_util.h"
#include "testutil.h"

static const char *conferd_path(void)
{
    const char *p = getenv("CONFERD");
    return p ? p : "conferd";
}

static int run(struct ts_server *s, const char *input, const char *const *args, bool bg)
{
    char data[4096], log[4096];
    const char *argv[32];
    int n = 0, in[2] = {-1, -1};
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(log, sizeof(log), "%s/server.log", s->dir);
    argv[n++] = conferd_path();
    for (int i = 0; args[i] && n < 28; i++) {
        argv[n++] = args[i];
    }
    argv[n++] = "--data";
    argv[n++] = data;
    argv[n] = NULL;
    if (input && pipe(in) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        if (input) {
            dup2(in[0], 0);
            close(in[1]);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (input) {
        close(in[0]);
        ssize_t w = write(in[1], input, strlen(input));
        (void)w;
        close(in[1]);
    }
    if (bg) {
        s->pid = pid;
        return 0;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int ts_conferd(struct ts_server *s, const char *input, const char *const *args)
{
    return run(s, input, args, false);
}

static int serve(struct ts_server *s)
{
    char portfile[4096], listen[64];
    snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
    unlink(portfile);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
    const char *base[] = {"serve",         "--listen", listen,           "--port-file", portfile,
                          "--pwhash-cost", "min",      "--min-password", "8",           NULL};
    const char *args[24];
    int n = 0;
    for (int i = 0; base[i]; i++) {
        args[n++] = base[i];
    }
    for (int i = 0; s->serve_args && s->serve_args[i] && n < 23; i++) {
        args[n++] = s->serve_args[i];
    }
    args[n] = NULL;
    if (run(s, NULL, args, true) != 0) {
        return -1;
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int port = 0;
            int got = fscanf(f, "%d", &port);
            fclose(f);
            if (got == 1 && port > 0) {
                s->port = port;
                return 0;
            }
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

int ts_start(struct ts_server *s, const char *const *names, const char *meeting)
{
    return ts_start_args(s, names, meeting, NULL);
}

int ts_start_args(struct ts_server *s, const char *const *names, const char *meeting,
                  const char *const *serve_args)
{
    memset(s, 0, sizeof(*s));
    s->serve_args = serve_args;
    s->dir = tu_tmpdir();
    if (s->dir == NULL) {
        return -1;
    }
    const char *init[] = {"init", NULL};
    if (run(s, NULL, init, false) != 0) {
        return -1;
    }
    for (int i = 0; names[i]; i++) {
        char pw[128];
        snprintf(pw, sizeof(pw), "%s-password\n", names[i]);
        const char *add[] = {"account",
                             "add",
                             names[i],
                             "--password-stdin",
                             "--pwhash-cost",
                             "min",
                             "--min-password",
                             "8",
                             i == 0 ? "--operator" : NULL,
                             NULL};
        if (run(s, pw, add, false) != 0) {
            return -1;
        }
    }
    if (meeting) {
        const char *mk[] = {"meeting", "create", meeting, "--rapporteur", names[0], NULL};
        if (run(s, NULL, mk, false) != 0) {
            return -1;
        }
    }
    return serve(s);
}

int ts_restart(struct ts_server *s)
{
    return serve(s);
}

void ts_kill(struct ts_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

int ts_stop(struct ts_server *s)
{
    int rc = 0;
    if (s->pid > 0) {
        int st = 0;
        kill(s->pid, SIGTERM);
        waitpid(s->pid, &st, 0);
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        s->pid = 0;
    }
    tu_rmtree(s->dir);
    s->dir = NULL;
    return rc;
}

/* Reads a whole file into a malloc'd NUL-terminated buffer, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, got = 0;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) {
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

int ts_stop_log(struct ts_server *s, char **log)
{
    int rc = 0;
    *log = NULL;
    if (s->pid > 0) {
        int st = 0;
        pid_t r = 0;
        kill(s->pid, SIGTERM);
        for (int i = 0; i < 1500 && r == 0; i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            r = waitpid(s->pid, &st, WNOHANG);
            if (r == 0) {
                nanosleep(&ts, NULL);
            } else if (r < 0 && errno == EINTR) {
                r = 0;
            }
        }
        if (r == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            rc = -1;
        } else {
            rc = r == s->pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        s->pid = 0;
    }
    if (s->dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/server.log", s->dir);
        *log = slurp(path);
    }
    tu_rmtree(s->dir);
    s->dir = NULL;
    return rc;
}

struct cli_conn *ts_login(struct ts_server *s, const char *name)
{
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    struct cli_msg *m = NULL;
    char err[512], pw[128];
    if (cli_conn_open(&c, "127.0.0.1", (uint16_t)s->port, &pol, 5000, err, sizeof(err)) != 0) {
        fprintf(stderr, "ts_login: %s\n", err);
        return NULL;
    }
    snprintf(pw, sizeof(pw), "%s-password", name);
    if (cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", name, "password", pw) != 0 ||
        m->error != NULL) {
        fprintf(stderr, "ts_login: %s\n", m && m->message ? m->message : "failed");
        cli_msg_free(m);
        cli_conn_free(c);
        return NULL;
    }
    cli_msg_free(m);
    return c;
}

char *ts_read_log(const struct ts_server *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/server.log", s->dir);
    char *log = slurp(path);
    return log ? log : strdup("");
}

long ts_proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, strlen(field)) == 0) {
            v = strtol(line + strlen(field), NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

void ts_send_edit(struct cli_conn *c, const char *meeting, int64_t id, int64_t base,
                  const struct proto_op *op, uint32_t *msgid)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 6);
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, meeting);
    proto_pack_cstr(&pk, "type");
    proto_pack_cstr(&pk, "item");
    proto_pack_cstr(&pk, "id");
    msgpack_pack_int64(&pk, id);
    proto_pack_cstr(&pk, "field");
    proto_pack_cstr(&pk, "body");
    proto_pack_cstr(&pk, "base");
    msgpack_pack_int64(&pk, base);
    proto_pack_cstr(&pk, "op");
    proto_op_encode(op, &pk);
    if (cli_conn_send(c, "text.edit", b.data, b.len, msgid) != 0) {
        fprintf(stderr, "ts_send_edit: %s\n", cli_conn_error(c));
        abort();
    }
    proto_buf_free(&b, 0);
}
