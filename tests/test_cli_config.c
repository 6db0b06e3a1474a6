/* test_cli_config.c - the client's configuration files: paths, host:port, known_hosts,
 * session file, modes and atomic writes. */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>

#include "cli_config.h"
#include "testutil.h"

static int setup(void **state)
{
    char *dir = tu_tmpdir();
    *state = dir;
    return dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    tu_rmtree(*state);
    return 0;
}

static void write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_paths(void **state)
{
    const char *dir = *state;
    struct cli_paths p;
    char err[256];
    char want[4096];
    struct stat st;

    setenv("XDG_CONFIG_HOME", dir, 1);
    assert_int_equal(cli_paths_init(&p, err, sizeof(err)), 0);
    join(want, sizeof(want), dir, "confer");
    assert_string_equal(p.dir, want);
    join(want, sizeof(want), dir, "confer/known_hosts");
    assert_string_equal(p.known_hosts, want);
    join(want, sizeof(want), dir, "confer/session");
    assert_string_equal(p.session, want);

    /* a relative XDG_CONFIG_HOME is ignored (XDG spec): HOME/.config */
    setenv("XDG_CONFIG_HOME", "relative/path", 1);
    setenv("HOME", dir, 1);
    assert_int_equal(cli_paths_init(&p, err, sizeof(err)), 0);
    join(want, sizeof(want), dir, ".config/confer");
    assert_string_equal(p.dir, want);

    /* mkdir makes the parents and sets 0700, and tightens an existing folder */
    assert_int_equal(cli_config_mkdir(&p, err, sizeof(err)), 0);
    assert_int_equal(stat(p.dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(chmod(p.dir, 0755), 0);
    assert_int_equal(cli_config_mkdir(&p, err, sizeof(err)), 0);
    assert_int_equal(stat(p.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* a file where the folder should be */
    join(p.dir, sizeof(p.dir), dir, "afile");
    write_text(p.dir, "x", 1);
    assert_int_equal(cli_config_mkdir(&p, err, sizeof(err)), PROTO_EIO);
    assert_non_null(strstr(err, "afile"));
    unsetenv("XDG_CONFIG_HOME");
}

static void test_write_file(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[256];
    struct stat st;
    char *buf = NULL;
    size_t len = 0;

    join(path, sizeof(path), dir, "f");
    assert_int_equal(cli_config_read_file(path, &buf, &len), PROTO_ENOTFOUND);
    assert_int_equal(cli_config_write_file(path, "one\n", 4, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(cli_config_write_file(path, "two\n", 4, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cli_config_read_file(path, &buf, &len), 0);
    assert_int_equal(len, 4);
    assert_string_equal(buf, "two\n");
    free(buf);

    /* no temporary file is left behind */
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] != '.') {
            entries++;
            assert_string_equal(e->d_name, "f");
        }
    }
    closedir(d);
    assert_int_equal(entries, 1);

    /* a folder that does not exist: error, in words */
    join(path, sizeof(path), dir, "missing/f");
    assert_int_equal(cli_config_write_file(path, "x", 1, err, sizeof(err)), PROTO_EIO);
    assert_non_null(strstr(err, "missing/f"));

    /* too large to read */
    join(path, sizeof(path), dir, "big");
    char *big = calloc(1, CLI_FILE_MAX + 1);
    memset(big, 'a', CLI_FILE_MAX + 1);
    write_text(path, big, CLI_FILE_MAX + 1);
    free(big);
    buf = NULL;
    assert_int_equal(cli_config_read_file(path, &buf, &len), PROTO_ETOOBIG);
    assert_null(buf);
}

static void test_hostport(void **state)
{
    (void)state;
    char host[CLI_HOST_MAX];
    char hp[CLI_HOSTPORT_MAX];
    uint16_t port = 0;
    static const struct {
        const char *in;
        const char *host;
        uint16_t port;
        const char *canon;
    } good[] = {
        {"example.org", "example.org", 7414, "example.org:7414"},
        {"Example.ORG:99", "example.org", 99, "example.org:99"},
        {"127.0.0.1:65535", "127.0.0.1", 65535, "127.0.0.1:65535"},
        {"[::1]:7414", "::1", 7414, "[::1]:7414"},
        {"[::1]", "::1", 7414, "[::1]:7414"},
        {"::1", "::1", 7414, "[::1]:7414"},
        {"[FE80::1%eth0]:8", "fe80::1%eth0", 8, "[fe80::1%eth0]:8"},
        {"my_host-1", "my_host-1", 7414, "my_host-1:7414"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(cli_hostport_parse(good[i].in, host, sizeof(host), &port), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
        assert_int_equal(cli_hostport_format(host, port, hp, sizeof(hp)), 0);
        assert_string_equal(hp, good[i].canon);
    }
    static const char *const bad[] = {
        "",          ":7414",  "host:",       "host:0",   "host:65536", "host:7x",
        "[::1",      "[::1]x", "[abc]",       "a b",      "user@host",  "host/path",
        "h\xc3\xa9", "[::1]:", "host:123456", "\x1b[31m",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(cli_hostport_parse(bad[i], host, sizeof(host), &port), 0);
    }
    char longhost[400];
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    assert_int_equal(cli_hostport_parse(longhost, host, sizeof(host), &port), PROTO_ETOOBIG);
    assert_int_equal(cli_hostport_format("host", 1, hp, 5), PROTO_ETOOBIG);
}

static void test_known_hosts_add_find(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[256];
    uint8_t k1[32];
    uint8_t k2[32];
    struct cli_known_hosts kh;
    struct stat st;

    join(path, sizeof(path), dir, "known_hosts");
    randombytes_buf(k1, sizeof(k1));
    randombytes_buf(k2, sizeof(k2));

    /* a missing file is an empty list */
    assert_int_equal(cli_known_hosts_load(&kh, path, NULL), 0);
    assert_int_equal(kh.n, 0);
    assert_null(cli_known_hosts_find(&kh, "a:1"));
    cli_known_hosts_free(&kh);

    assert_int_equal(cli_known_hosts_add(path, "a.example:7414", k1, err, sizeof(err)), 0);
    assert_int_equal(cli_known_hosts_add(path, "[::1]:7414", k2, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char *text = NULL;
    size_t len = 0;
    char b64[64];
    char want[256];
    assert_int_equal(cli_config_read_file(path, &text, &len), 0);
    sodium_bin2base64(b64, sizeof(b64), k1, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(want, sizeof(want), "a.example:7414 %s\n", b64);
    assert_int_equal(strncmp(text, want, strlen(want)), 0);
    assert_int_equal(strlen(b64), 44); /* standard, padded */
    assert_int_equal(count_lines(text), 2);
    free(text);

    assert_int_equal(cli_known_hosts_load(&kh, path, NULL), 0);
    assert_int_equal(kh.n, 2);
    assert_int_equal(kh.skipped, 0);
    const struct cli_known_host *e = cli_known_hosts_find(&kh, "a.example:7414");
    assert_non_null(e);
    assert_memory_equal(e->pk, k1, 32);
    assert_int_equal(e->line, 1);
    e = cli_known_hosts_find(&kh, "[::1]:7414");
    assert_non_null(e);
    assert_memory_equal(e->pk, k2, 32);
    assert_int_equal(e->line, 2);
    assert_null(cli_known_hosts_find(&kh, "a.example:7415"));
    assert_null(cli_known_hosts_find(&kh, "::1"));
    cli_known_hosts_free(&kh);
    cli_known_hosts_free(NULL);
}

static void test_known_hosts_garbage(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[256];
    char line[256];
    uint8_t k1[32];
    uint8_t k2[32];
    uint8_t k3[32];
    struct cli_known_hosts kh;
    char b64[64];
    char short_b64[64];

    join(path, sizeof(path), dir, "known_hosts");
    randombytes_buf(k1, sizeof(k1));
    randombytes_buf(k2, sizeof(k2));
    randombytes_buf(k3, sizeof(k3));
    sodium_bin2base64(b64, sizeof(b64), k1, 32, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(short_b64, sizeof(short_b64), k1, 31, sodium_base64_VARIANT_ORIGINAL);

    /* build a file of every kind of junk around two good lines */
    size_t cap = 3 * CLI_LINE_MAX + 4096;
    char *text = calloc(1, cap);
    size_t n = 0;
    n += (size_t)snprintf(text + n, cap - n, "# a comment\n\n   \n");
    n += (size_t)snprintf(text + n, cap - n, "garbage\n");                      /* 4: no key */
    n += (size_t)snprintf(text + n, cap - n, "a.example:7414 %s\n", b64);       /* 5: good */
    n += (size_t)snprintf(text + n, cap - n, "b.example:7414 !!notbase64\n");   /* 6 */
    n += (size_t)snprintf(text + n, cap - n, "c.example:7414 %s\n", short_b64); /* 7 */
    n += (size_t)snprintf(text + n, cap - n, "bad host:7414 %s\n", b64);        /* 8 */
    n += (size_t)snprintf(text + n, cap - n, "d.example:99999 %s\n", b64);      /* 9 */
    memset(text + n, 'x', 2 * CLI_LINE_MAX);                                    /* 10: long */
    n += 2 * CLI_LINE_MAX;
    text[n++] = '\n';
    memcpy(text + n, "\x00\x01\xff\xfe binary\n", 12); /* 11: NUL and binary bytes */
    n += 12;
    n += (size_t)snprintf(text + n, cap - n, "e.example:7414\t%s  trailing comment\r\n", b64);
    n += (size_t)snprintf(text + n, cap - n, "f.example:7414 %s", b64); /* 13: no newline */
    write_text(path, text, n);

    char *warnbuf = NULL;
    size_t warnlen = 0;
    FILE *warn = open_memstream(&warnbuf, &warnlen);
    assert_int_equal(cli_known_hosts_load(&kh, path, warn), 0);
    fclose(warn);
    assert_int_equal(kh.n, 3);
    assert_int_equal(kh.skipped, 7);
    assert_int_equal(count_lines(warnbuf), 7);
    assert_non_null(strstr(warnbuf, ":4: no key"));
    assert_non_null(strstr(warnbuf, ":10: line too long"));
    free(warnbuf);
    assert_non_null(cli_known_hosts_find(&kh, "a.example:7414"));
    assert_int_equal(cli_known_hosts_find(&kh, "a.example:7414")->line, 5);
    assert_non_null(cli_known_hosts_find(&kh, "e.example:7414"));
    assert_int_equal(cli_known_hosts_find(&kh, "f.example:7414")->line, 13);
    assert_null(cli_known_hosts_find(&kh, "b.example:7414"));
    assert_null(cli_known_hosts_find(&kh, "c.example:7414"));
    cli_known_hosts_free(&kh);

    /* adding keeps every line, garbage included, and ends with the new one */
    assert_int_equal(cli_known_hosts_add(path, "g.example:1", k2, err, sizeof(err)), 0);
    char *after = NULL;
    size_t alen = 0;
    assert_int_equal(cli_config_read_file(path, &after, &alen), 0);
    assert_true(alen > n);
    assert_memory_equal(after, text, n);
    assert_int_equal(after[n], '\n'); /* the missing newline was added */
    assert_int_equal(cli_known_hosts_line("g.example:1", k2, line, sizeof(line)), 0);
    assert_memory_equal(after + n + 1, line, strlen(line));
    free(after);
    assert_int_equal(cli_known_hosts_load(&kh, path, NULL), 0);
    assert_int_equal(kh.n, 4);
    assert_memory_equal(cli_known_hosts_find(&kh, "g.example:1")->pk, k2, 32);
    cli_known_hosts_free(&kh);

    /* the first line for a host wins */
    assert_int_equal(cli_known_hosts_add(path, "a.example:7414", k3, err, sizeof(err)), 0);
    assert_int_equal(cli_known_hosts_load(&kh, path, NULL), 0);
    assert_memory_equal(cli_known_hosts_find(&kh, "a.example:7414")->pk, k1, 32);
    cli_known_hosts_free(&kh);
    free(text);

    /* an unreadable path (a folder) is an error, not a crash */
    assert_int_equal(cli_known_hosts_load(&kh, dir, NULL), PROTO_EIO);
    assert_int_equal(kh.n, 0);
}

static void test_session_roundtrip(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[256];
    struct cli_session s;
    struct cli_session t;
    struct stat st;

    join(path, sizeof(path), dir, "session");
    assert_int_equal(cli_session_load(&t, path, NULL), PROTO_ENOTFOUND);

    memset(&s, 0, sizeof(s));
    snprintf(s.server, sizeof(s.server), "[::1]:7414");
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.token, sizeof(s.token), "abcDEF012-_abcDEF012-_abcDEF012-_abcDEF012");
    s.expires = 1700000000123LL;
    snprintf(s.meeting, sizeof(s.meeting), "rg-iem-2023");
    assert_int_equal(cli_session_save(&s, path, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cli_session_load(&t, path, NULL), 0);
    assert_string_equal(t.server, s.server);
    assert_string_equal(t.user, s.user);
    assert_string_equal(t.token, s.token);
    assert_int_equal(t.expires, s.expires);
    assert_string_equal(t.meeting, s.meeting);

    /* empty fields round-trip as empty */
    memset(&s, 0, sizeof(s));
    snprintf(s.server, sizeof(s.server), "example.org:7414");
    snprintf(s.user, sizeof(s.user), "bob");
    assert_int_equal(cli_session_save(&s, path, err, sizeof(err)), 0);
    assert_int_equal(cli_session_load(&t, path, NULL), 0);
    assert_string_equal(t.server, "example.org:7414");
    assert_string_equal(t.token, "");
    assert_string_equal(t.meeting, "");
    assert_int_equal(t.expires, 0);

    /* invalid fields are refused on save, and the file is left alone */
    struct cli_session bad = s;
    snprintf(bad.user, sizeof(bad.user), "Bob");
    assert_int_equal(cli_session_save(&bad, path, err, sizeof(err)), PROTO_EINVAL);
    bad = s;
    snprintf(bad.token, sizeof(bad.token), "tok\nuser=mallory");
    assert_int_equal(cli_session_save(&bad, path, err, sizeof(err)), PROTO_EINVAL);
    bad = s;
    snprintf(bad.meeting, sizeof(bad.meeting), "has space");
    assert_int_equal(cli_session_save(&bad, path, err, sizeof(err)), PROTO_EINVAL);
    bad = s;
    snprintf(bad.server, sizeof(bad.server), "host:0");
    assert_int_equal(cli_session_save(&bad, path, err, sizeof(err)), PROTO_EINVAL);
    assert_int_equal(cli_session_load(&t, path, NULL), 0);
    assert_string_equal(t.user, "bob");

    cli_session_wipe(&t);
    assert_string_equal(t.token, "");
    assert_string_equal(t.user, "");
}

static void test_session_garbage(void **state)
{
    const char *dir = *state;
    char path[4096];
    struct cli_session s;

    join(path, sizeof(path), dir, "session");
    size_t cap = 2 * CLI_LINE_MAX + 1024;
    char *text = calloc(1, cap);
    size_t n = 0;
    n += (size_t)snprintf(text + n, cap - n,
                          "# comment\n"
                          "server=example.org:7414\n"
                          "no equals sign\n" /* warned */
                          "user=UPPER\n"     /* warned: not a name */
                          "user=carol\n"
                          "token=bad token!\n" /* warned */
                          "token=tok-en_1\n"
                          "expires=12x\n"         /* warned */
                          "expires=\n"            /* warned */
                          "future_key=whatever\n" /* ignored */
                          "server=host:0\n"       /* warned, earlier value kept */
                          "meeting=m-1\n");
    memset(text + n, 'y', 2 * CLI_LINE_MAX); /* warned: too long */
    n += 2 * CLI_LINE_MAX;
    n += (size_t)snprintf(text + n, cap - n, "\nexpires=42\r\n");
    write_text(path, text, n);
    free(text);

    char *warnbuf = NULL;
    size_t warnlen = 0;
    FILE *warn = open_memstream(&warnbuf, &warnlen);
    assert_int_equal(cli_session_load(&s, path, warn), 0);
    fclose(warn);
    assert_int_equal(count_lines(warnbuf), 7);
    assert_non_null(strstr(warnbuf, ":3: not a key=value line"));
    free(warnbuf);
    assert_string_equal(s.server, "example.org:7414");
    assert_string_equal(s.user, "carol");
    assert_string_equal(s.token, "tok-en_1");
    assert_int_equal(s.expires, 42);
    assert_string_equal(s.meeting, "m-1");

    /* binary junk */
    uint8_t junk[4096];
    randombytes_buf(junk, sizeof(junk));
    write_text(path, (const char *)junk, sizeof(junk));
    assert_int_equal(cli_session_load(&s, path, NULL), 0);
    write_text(path, "", 0);
    assert_int_equal(cli_session_load(&s, path, NULL), 0);
    assert_string_equal(s.user, "");
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file, setup, teardown),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test_setup_teardown(test_known_hosts_add_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_hosts_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
