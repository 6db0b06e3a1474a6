/* test_cli_audit.c - the client's audit checks: the head line of an export in the three
 * formats and broken ones, the checkpoint message and its signature, the heads file, the
 * bounded file reader and the first differing line. */
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

#include "cli_audit.h"
#include "testutil.h"

#define HEX "0123456789abcdef00112233445566778899aabbccddeeff0f1e2d3c4b5a6978"

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

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void hash_of(const char *hex, uint8_t out[CLI_AUDIT_HASH_BYTES])
{
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(out, CLI_AUDIT_HASH_BYTES, hex, strlen(hex), NULL, &got, NULL),
                     0);
    assert_int_equal(got, CLI_AUDIT_HASH_BYTES);
}

/* A signed head line for (meeting, seq, hash) with sk, in the given format. */
static void signed_line(char *out, size_t cap, const char *fmt, const char *meeting, int64_t seq,
                        const char *hex, const uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
    uint8_t hash[CLI_AUDIT_HASH_BYTES];
    uint8_t sig[CLI_AUDIT_SIG_BYTES];
    char b64[sodium_base64_ENCODED_LEN(CLI_AUDIT_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    struct proto_buf msg = {0};

    hash_of(hex, hash);
    assert_int_equal(cli_audit_checkpoint_msg(meeting, seq, hash, &msg), 0);
    crypto_sign_detached(sig, NULL, msg.data, msg.len, sk);
    proto_buf_free(&msg, 0);
    sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, cap, fmt, (long long)seq, hex, b64);
}

static void test_last_line(void **state)
{
    (void)state;
    const char *line = NULL;
    size_t n = 0;
    size_t no = 0;
    const char *t = "one\ntwo\nthree\n";

    assert_true(cli_audit_last_line(t, strlen(t), &line, &n, &no));
    assert_int_equal(n, 5);
    assert_memory_equal(line, "three", 5);
    assert_int_equal(no, 3);
    /* no final newline, CRLF, and blank lines after it */
    t = "one\r\ntwo\r\n\r\n\n  \n";
    assert_true(cli_audit_last_line(t, strlen(t), &line, &n, &no));
    assert_int_equal(n, 3);
    assert_memory_equal(line, "two", 3);
    assert_int_equal(no, 2);
    t = "only";
    assert_true(cli_audit_last_line(t, strlen(t), &line, &n, &no));
    assert_int_equal(n, 4);
    assert_int_equal(no, 1);
    assert_false(cli_audit_last_line("", 0, &line, &n, &no));
    assert_false(cli_audit_last_line("\n\n \n", 4, &line, &n, &no));
}

static void test_parse_formats(void **state)
{
    (void)state;
    struct cli_audit_head h;
    uint8_t want[CLI_AUDIT_HASH_BYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    char line[512];
    char text[1024];
    size_t no = 0;
    const char *why = NULL;

    hash_of(HEX, want);
    crypto_sign_keypair(pk, sk);

    /* text: the last line */
    signed_line(line, sizeof(line), "Audit head: seq %lld, hash %s, signed %s", "rg", 42, HEX, sk);
    snprintf(text, sizeof(text), "Report\n\n1\tOpening\n%s\n", line);
    assert_int_equal(cli_audit_head_find(text, strlen(text), &h, &no, &why), 0);
    assert_int_equal(h.seq, 42);
    assert_memory_equal(h.hash, want, sizeof(want));
    assert_true(h.signed_);
    assert_int_equal(no, 4);
    assert_true(cli_audit_head_verify(&h, "rg", pk));
    /* without the final newline, with CRLF */
    text[strlen(text) - 1] = '\0';
    assert_int_equal(cli_audit_head_find(text, strlen(text), &h, &no, &why), 0);
    assert_true(cli_audit_head_verify(&h, "rg", pk));
    snprintf(text, sizeof(text), "Report\r\n%s\r\n", line);
    assert_int_equal(cli_audit_head_find(text, strlen(text), &h, &no, &why), 0);
    assert_true(cli_audit_head_verify(&h, "rg", pk));

    /* markdown: after an empty line */
    snprintf(text, sizeof(text), "# Report\n\n## 1 Opening\n\n%s\n", line);
    assert_int_equal(cli_audit_head_find(text, strlen(text), &h, &no, &why), 0);
    assert_int_equal(no, 5);
    assert_true(cli_audit_head_verify(&h, "rg", pk));

    /* html: the footer and the closing tags on the same line */
    signed_line(line, sizeof(line),
                "<footer>Audit head: seq %lld, hash %s, signed %s</footer></body></html>", "rg", 42,
                HEX, sk);
    snprintf(text, sizeof(text), "<!DOCTYPE html>\n<html><body>\n<h1>Report</h1>\n%s\n", line);
    assert_int_equal(cli_audit_head_find(text, strlen(text), &h, &no, &why), 0);
    assert_int_equal(h.seq, 42);
    assert_memory_equal(h.hash, want, sizeof(want));
    assert_true(cli_audit_head_verify(&h, "rg", pk));

    /* a server before section 15: no signature; parsed, never verified */
    snprintf(text, sizeof(text), "Report\nAudit head: seq 7, hash %s\n", HEX);
    assert_int_equal(cli_audit_head_find(text, strlen(text), &h, &no, &why), 0);
    assert_int_equal(h.seq, 7);
    assert_false(h.signed_);
    assert_false(cli_audit_head_verify(&h, "rg", pk));
    snprintf(line, sizeof(line), "<footer>Audit head: seq 7, hash %s</footer></body></html>", HEX);
    assert_int_equal(cli_audit_head_parse(line, strlen(line), &h, &why), 0);
    assert_false(h.signed_);
    /* blanks around it */
    snprintf(line, sizeof(line), "  \tAudit head: seq 7, hash %s \t\r", HEX);
    assert_int_equal(cli_audit_head_parse(line, strlen(line), &h, &why), 0);
}

static void test_parse_broken(void **state)
{
    (void)state;
    struct cli_audit_head h;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    char good[512];
    char line[600];
    const char *why = NULL;
    size_t no = 0;

    crypto_sign_keypair(pk, sk);
    signed_line(good, sizeof(good), "Audit head: seq %lld, hash %s, signed %s", "rg", 5, HEX, sk);
    const char *sig = strstr(good, "signed ") + 7;
    assert_int_equal(strlen(sig), 88);

    const char *broken[] = {
        "",
        "Audit head:",
        "audit head: seq 5, hash " HEX,                   /* case matters */
        "Audit head: seq , hash " HEX,                    /* no seq */
        "Audit head: seq 0, hash " HEX,                   /* seqs start at 1 */
        "Audit head: seq 05, hash " HEX,                  /* leading zero */
        "Audit head: seq -5, hash " HEX,                  /* sign */
        "Audit head: seq 9223372036854775808, hash " HEX, /* over INT64_MAX */
        "Audit head: seq 99999999999999999999, hash " HEX,
        "Audit head: seq 5 hash " HEX,       /* no comma */
        "Audit head: seq 5, hash 0123",      /* short */
        "Audit head: seq 5, hash " HEX "00", /* long */
        "Audit head: seq 5, hash 0123456789ABCDEF00112233445566778899aabbccddeeff0f1e2d3c4b5a6978",
        "Audit head: seq 5, hash 0123456789abcdeg00112233445566778899aabbccddeeff0f1e2d3c4b5a6978",
        "Audit head: seq 5, hash " HEX ",",
        "Audit head: seq 5, hash " HEX ", signed ",
        "Audit head: seq 5, hash " HEX ", signed !!!!",
        "Audit head: seq 5, hash " HEX " trailing",
        "<footer>Audit head: seq 5, hash " HEX,                   /* unclosed footer */
        "Audit head: seq 5, hash " HEX "</footer></body></html>", /* closing without opening */
        "Report text: Audit head: seq 5, hash " HEX,
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        why = NULL;
        if (cli_audit_head_parse(broken[i], strlen(broken[i]), &h, &why) != PROTO_EINVAL) {
            fail_msg("accepted: '%s'", broken[i]);
        }
        assert_non_null(why);
    }
    /* signatures: unpadded, cut, one character too many, trailing text */
    char unpadded[600];
    snprintf(unpadded, sizeof(unpadded), "%.*s", (int)(strlen(good) - 2), good);
    assert_int_equal(cli_audit_head_parse(unpadded, strlen(unpadded), &h, &why), PROTO_EINVAL);
    snprintf(line, sizeof(line), "%.*s", (int)(strlen(good) - 4), good);
    assert_int_equal(cli_audit_head_parse(line, strlen(line), &h, &why), PROTO_EINVAL);
    snprintf(line, sizeof(line), "%sA", good);
    assert_int_equal(cli_audit_head_parse(line, strlen(line), &h, &why), PROTO_EINVAL);
    snprintf(line, sizeof(line), "%s, signed %s", good, sig);
    assert_int_equal(cli_audit_head_parse(line, strlen(line), &h, &why), PROTO_EINVAL);
    assert_false(h.signed_);

    /* the head must be the last line: text after it hides it */
    snprintf(line, sizeof(line), "%s\nmore text\n", good);
    assert_int_equal(cli_audit_head_find(line, strlen(line), &h, &no, &why), PROTO_EINVAL);
    assert_int_equal(no, 2);
    assert_int_equal(cli_audit_head_find("", 0, &h, &no, &why), PROTO_EINVAL);
    assert_int_equal(no, 0);
    /* a NUL byte in the line */
    snprintf(line, sizeof(line), "%s", good);
    line[20] = '\0';
    assert_int_equal(cli_audit_head_parse(line, strlen(good), &h, &why), PROTO_EINVAL);
}

static void test_checkpoint_msg(void **state)
{
    (void)state;
    uint8_t hash[CLI_AUDIT_HASH_BYTES];
    struct proto_buf b = {0};
    uint8_t want[128];
    size_t n = 0;

    hash_of(HEX, hash);
    assert_int_equal(cli_audit_checkpoint_msg("rg-1", 0x0102030405060708LL, hash, &b), 0);
    memcpy(want, "confer/1 audit checkpoint", 25);
    n = 25;
    const uint8_t len[] = {0, 0, 0, 4};
    memcpy(want + n, len, 4);
    n += 4;
    memcpy(want + n, "rg-1", 4);
    n += 4;
    const uint8_t seq[] = {1, 2, 3, 4, 5, 6, 7, 8};
    memcpy(want + n, seq, 8);
    n += 8;
    memcpy(want + n, hash, 32);
    n += 32;
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    proto_buf_free(&b, 0);
}

static void test_verify(void **state)
{
    (void)state;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t pk2[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk2[crypto_sign_SECRETKEYBYTES];
    struct cli_audit_head h;
    struct cli_audit_head t;
    char line[512];
    const char *why = NULL;

    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    signed_line(line, sizeof(line), "Audit head: seq %lld, hash %s, signed %s", "rg-iem", 61, HEX,
                sk);
    assert_int_equal(cli_audit_head_parse(line, strlen(line), &h, &why), 0);
    assert_true(cli_audit_head_verify(&h, "rg-iem", pk));

    /* another key, another meeting (also a prefix of it) */
    assert_false(cli_audit_head_verify(&h, "rg-iem", pk2));
    assert_false(cli_audit_head_verify(&h, "rg-ie", pk));
    assert_false(cli_audit_head_verify(&h, "rg-iemx", pk));
    assert_false(cli_audit_head_verify(&h, "", pk));
    /* another seq, another hash, a flipped bit of the signature */
    t = h;
    t.seq = 60;
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
    t = h;
    t.seq = 61 + (1LL << 32);
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
    t = h;
    t.hash[31] ^= 1;
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
    for (size_t i = 0; i < CLI_AUDIT_SIG_BYTES; i += 7) {
        t = h;
        t.sig[i] ^= 0x10;
        assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
    }
    t = h;
    t.signed_ = false;
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));

    /* the same edits made in the printed line */
    char edited[512];
    snprintf(edited, sizeof(edited), "%s", line);
    char *d = strstr(edited, "seq 61");
    d[5] = '2';
    assert_int_equal(cli_audit_head_parse(edited, strlen(edited), &t, &why), 0);
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
    snprintf(edited, sizeof(edited), "%s", line);
    d = strstr(edited, "hash ") + 5;
    d[0] = d[0] == 'a' ? 'b' : 'a';
    assert_int_equal(cli_audit_head_parse(edited, strlen(edited), &t, &why), 0);
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
    snprintf(edited, sizeof(edited), "%s", line);
    d = strstr(edited, "signed ") + 10;
    d[0] = d[0] == 'A' ? 'B' : 'A';
    assert_int_equal(cli_audit_head_parse(edited, strlen(edited), &t, &why), 0);
    assert_false(cli_audit_head_verify(&t, "rg-iem", pk));
}

static void test_read_file(void **state)
{
    const char *dir = *state;
    char path[4096];
    char *buf = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/r.txt", dir);
    write_text(path, "0123456789");
    assert_int_equal(cli_audit_read_file(path, -1, 10, &buf, &len), 0);
    assert_int_equal(len, 10);
    assert_string_equal(buf, "0123456789");
    free(buf);
    assert_int_equal(cli_audit_read_file(path, -1, 9, &buf, &len), PROTO_ETOOBIG);
    assert_null(buf);
    snprintf(path, sizeof(path), "%s/empty", dir);
    write_text(path, "");
    assert_int_equal(cli_audit_read_file(path, -1, 9, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(cli_audit_read_file(path, -1, 9, &buf, &len), PROTO_ENOTFOUND);
    assert_int_equal(cli_audit_read_file(dir, -1, 9, &buf, &len), PROTO_EIO);

    /* "-" reads the descriptor given, a pipe here: bounded the same way */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "abcdef", 6), 6);
    close(p[1]);
    assert_int_equal(cli_audit_read_file("-", p[0], 5, &buf, &len), PROTO_ETOOBIG);
    close(p[0]);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "abcdef", 6), 6);
    close(p[1]);
    assert_int_equal(cli_audit_read_file("-", p[0], 6, &buf, &len), 0);
    assert_int_equal(len, 6);
    free(buf);
    close(p[0]);
}

static void test_first_diff(void **state)
{
    (void)state;
    size_t no = 0;
    const char *a = NULL;
    const char *b = NULL;
    size_t na = 0;
    size_t nb = 0;
    const char *x = "one\ntwo\nthree\n";

    assert_false(cli_audit_first_diff(x, strlen(x), x, strlen(x), &no, &a, &na, &b, &nb));
    const char *y = "one\ntwo\nthrEe\n";
    assert_true(cli_audit_first_diff(x, strlen(x), y, strlen(y), &no, &a, &na, &b, &nb));
    assert_int_equal(no, 3);
    assert_int_equal(na, 5);
    assert_memory_equal(a, "three", 5);
    assert_memory_equal(b, "thrEe", 5);
    /* a line added at the end: the shorter text has no such line */
    const char *z = "one\ntwo\nthree\nfour\n";
    assert_true(cli_audit_first_diff(x, strlen(x), z, strlen(z), &no, &a, &na, &b, &nb));
    assert_int_equal(no, 4);
    assert_null(a);
    assert_int_equal(nb, 4);
    assert_memory_equal(b, "four", 4);
    assert_true(cli_audit_first_diff(z, strlen(z), x, strlen(x), &no, &a, &na, &b, &nb));
    assert_int_equal(no, 4);
    assert_null(b);
    /* a difference at the first byte, and a longer line */
    assert_true(cli_audit_first_diff("a\n", 2, "b\n", 2, &no, &a, &na, &b, &nb));
    assert_int_equal(no, 1);
    const char *w = "one\ntwo more\nthree\n";
    assert_true(cli_audit_first_diff(x, strlen(x), w, strlen(w), &no, &a, &na, &b, &nb));
    assert_int_equal(no, 2);
    assert_int_equal(na, 3);
    assert_int_equal(nb, 8);
    /* CRLF against LF: the same line shown, without the "\r" */
    assert_true(cli_audit_first_diff("a\r\nb\n", 5, "a\nb\n", 4, &no, &a, &na, &b, &nb));
    assert_int_equal(no, 1);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
}

/* ---- the heads file ---- */

static FILE *warn_file(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    return f;
}

static size_t warn_count(FILE *f)
{
    char line[2048];
    size_t n = 0;
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, "line skipped") != NULL;
    }
    return n;
}

static void test_heads_round_trip(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[512];
    struct cli_heads hs;
    struct cli_head_entry known;
    uint8_t h1[CLI_AUDIT_HASH_BYTES];
    uint8_t h2[CLI_AUDIT_HASH_BYTES];
    struct stat st;

    snprintf(path, sizeof(path), "%s/heads", dir);
    hash_of(HEX, h1);
    memset(h2, 0xab, sizeof(h2));

    /* no file: nothing known */
    assert_int_equal(cli_heads_load(&hs, path, NULL), 0);
    assert_int_equal(hs.n, 0);
    assert_null(cli_heads_find(&hs, "127.0.0.1:7414", "rg"));
    cli_heads_free(&hs);

    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "rg", 10, h1, NULL, &known, err, sizeof(err)),
        CLI_HEAD_STORED);
    assert_int_equal(known.seq, 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(
        cli_heads_update(path, "[::1]:7414", "rg", 3, h2, NULL, NULL, err, sizeof(err)),
        CLI_HEAD_STORED);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "other", 1, h2, NULL, NULL, err, sizeof(err)),
        CLI_HEAD_STORED);

    assert_int_equal(cli_heads_load(&hs, path, NULL), 0);
    assert_int_equal(hs.n, 3);
    assert_int_equal(hs.skipped, 0);
    const struct cli_head_entry *e = cli_heads_find(&hs, "127.0.0.1:7414", "rg");
    assert_non_null(e);
    assert_int_equal(e->seq, 10);
    assert_memory_equal(e->hash, h1, sizeof(h1));
    e = cli_heads_find(&hs, "[::1]:7414", "rg");
    assert_non_null(e);
    assert_int_equal(e->seq, 3);
    assert_memory_equal(e->hash, h2, sizeof(h2));
    assert_null(cli_heads_find(&hs, "127.0.0.1:7415", "rg"));
    cli_heads_free(&hs);

    /* the file is text a person can read */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[4096];
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "127.0.0.1:7414 rg 10 " HEX "\n"));

    /* the server must be given in canonical form, the meeting valid, seq from 1 */
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1", "rg", 11, h1, NULL, NULL, err, sizeof(err)),
        PROTO_EINVAL);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "RG", 11, h1, NULL, NULL, err, sizeof(err)),
        PROTO_EINVAL);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "rg", 0, h1, NULL, NULL, err, sizeof(err)),
        PROTO_EINVAL);
}

static void test_heads_newer_only(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[512];
    struct cli_heads hs;
    struct cli_head_entry known;
    uint8_t h1[CLI_AUDIT_HASH_BYTES];
    uint8_t h2[CLI_AUDIT_HASH_BYTES];
    const char *srv = "example.org:7414";

    snprintf(path, sizeof(path), "%s/heads", dir);
    memset(h1, 0x11, sizeof(h1));
    memset(h2, 0x22, sizeof(h2));
    assert_int_equal(cli_heads_update(path, srv, "rg", 20, h1, NULL, &known, err, sizeof(err)),
                     CLI_HEAD_STORED);
    /* older: kept the newer one, says which */
    assert_int_equal(cli_heads_update(path, srv, "rg", 19, h2, NULL, &known, err, sizeof(err)),
                     CLI_HEAD_OLDER);
    assert_int_equal(known.seq, 20);
    assert_memory_equal(known.hash, h1, sizeof(h1));
    /* the same again */
    assert_int_equal(cli_heads_update(path, srv, "rg", 20, h1, NULL, &known, err, sizeof(err)),
                     CLI_HEAD_SAME);
    /* another hash for the same seq: the log changed; the first one is kept */
    assert_int_equal(cli_heads_update(path, srv, "rg", 20, h2, NULL, &known, err, sizeof(err)),
                     CLI_HEAD_FORK);
    assert_memory_equal(known.hash, h1, sizeof(h1));
    /* newer: replaces it */
    assert_int_equal(cli_heads_update(path, srv, "rg", 21, h2, NULL, &known, err, sizeof(err)),
                     CLI_HEAD_STORED);
    assert_int_equal(known.seq, 20);
    assert_int_equal(cli_heads_load(&hs, path, NULL), 0);
    assert_int_equal(hs.n, 1);
    assert_int_equal(hs.v[0].seq, 21);
    assert_memory_equal(hs.v[0].hash, h2, sizeof(h2));
    cli_heads_free(&hs);
}

static void test_heads_malformed(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[512];
    struct cli_heads hs;
    uint8_t h1[CLI_AUDIT_HASH_BYTES];
    char longline[CLI_LINE_MAX + 100];

    snprintf(path, sizeof(path), "%s/heads", dir);
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    char text[8192];
    snprintf(text, sizeof(text),
             "# a comment\n"
             "\n"
             "127.0.0.1:7414 rg 5 " HEX "\n"         /* good */
             "127.0.0.1:7414 rg 5\n"                 /* no hash */
             "127.0.0.1:7414 rg 5 " HEX " extra\n"   /* five fields */
             "127.0.0.1:99999 rg 5 " HEX "\n"        /* bad port */
             "127.0.0.1:7414 Bad! 5 " HEX "\n"       /* bad meeting */
             "127.0.0.1:7414 rg2 0 " HEX "\n"        /* seq 0 */
             "127.0.0.1:7414 rg2 abc " HEX "\n"      /* seq not a number */
             "127.0.0.1:7414 rg2 3 " HEX "ff\n"      /* hash too long */
             "127.0.0.1:7414 rg2 3 XYZ\n"            /* not hex */
             "%s\n"                                  /* too long */
             "\t127.0.0.1:7414\trg3\t9\t" HEX "\r\n" /* tabs and CRLF: fine */
             "LOCALHOST:7414 rg 8 " HEX "\n"         /* canonical: localhost:7414 */
             "127.0.0.1:7414 rg 4 " HEX "\n"         /* a duplicate, older: ignored */
             "127.0.0.1:7414 rg 6 " HEX,             /* a duplicate, newer, no newline */
             longline);
    write_text(path, text);

    FILE *warn = warn_file();
    assert_int_equal(cli_heads_load(&hs, path, warn), 0);
    assert_int_equal(hs.skipped, 9);
    assert_int_equal(warn_count(warn), 9);
    fclose(warn);
    assert_int_equal(hs.n, 3);
    const struct cli_head_entry *e = cli_heads_find(&hs, "127.0.0.1:7414", "rg");
    assert_non_null(e);
    assert_int_equal(e->seq, 6);
    e = cli_heads_find(&hs, "127.0.0.1:7414", "rg3");
    assert_non_null(e);
    assert_int_equal(e->seq, 9);
    e = cli_heads_find(&hs, "localhost:7414", "rg");
    assert_non_null(e);
    assert_int_equal(e->seq, 8);
    cli_heads_free(&hs);

    /* an update keeps the good entries and drops the bad lines */
    hash_of(HEX, h1);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "new", 1, h1, NULL, NULL, err, sizeof(err)),
        CLI_HEAD_STORED);
    warn = warn_file();
    assert_int_equal(cli_heads_load(&hs, path, warn), 0);
    assert_int_equal(warn_count(warn), 0);
    fclose(warn);
    assert_int_equal(hs.n, 4);
    assert_int_equal(hs.skipped, 0);
    cli_heads_free(&hs);

    /* binary garbage is only warned about */
    char junk[600];
    for (size_t i = 0; i < sizeof(junk) - 1; i++) {
        junk[i] = (char)(1 + (i * 37) % 250);
    }
    junk[sizeof(junk) - 1] = '\0';
    write_text(path, junk);
    assert_int_equal(cli_heads_load(&hs, path, NULL), 0);
    assert_int_equal(hs.n, 0);
    assert_true(hs.skipped > 0);
    cli_heads_free(&hs);

    /* a file over the size limit is an error, not a crash, and is not overwritten */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < CLI_FILE_MAX / 64 + 2; i++) {
        fputs("127.0.0.1:7414 rg 1 " HEX "\n", f);
    }
    fclose(f);
    assert_int_equal(cli_heads_load(&hs, path, NULL), PROTO_ETOOBIG);
    assert_int_equal(hs.n, 0);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "rg", 2, h1, NULL, NULL, err, sizeof(err)),
        PROTO_ETOOBIG);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > CLI_FILE_MAX);
}

static void test_heads_bounded(void **state)
{
    const char *dir = *state;
    char path[4096];
    char err[512];
    struct cli_heads hs;
    uint8_t h[CLI_AUDIT_HASH_BYTES];

    snprintf(path, sizeof(path), "%s/heads", dir);
    memset(h, 0x5a, sizeof(h));
    /* build a full file at once, then add through update */
    memset(&hs, 0, sizeof(hs));
    hs.v = calloc(CLI_HEADS_MAX, sizeof(*hs.v));
    assert_non_null(hs.v);
    hs.cap = CLI_HEADS_MAX;
    for (size_t i = 0; i < CLI_HEADS_MAX; i++) {
        snprintf(hs.v[i].server, sizeof(hs.v[i].server), "127.0.0.1:7414");
        snprintf(hs.v[i].meeting, sizeof(hs.v[i].meeting), "m%zu", i);
        hs.v[i].seq = (int64_t)i + 1;
        memcpy(hs.v[i].hash, h, sizeof(h));
    }
    hs.n = CLI_HEADS_MAX;
    assert_int_equal(cli_heads_save(&hs, path, err, sizeof(err)), 0);
    cli_heads_free(&hs);
    /* m0 is updated (moves to the end); two new meetings push out m1 and m2 */
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "m0", 50, h, NULL, NULL, err, sizeof(err)),
        CLI_HEAD_STORED);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "new1", 1, h, NULL, NULL, err, sizeof(err)),
        CLI_HEAD_STORED);
    assert_int_equal(
        cli_heads_update(path, "127.0.0.1:7414", "new2", 1, h, NULL, NULL, err, sizeof(err)),
        CLI_HEAD_STORED);
    assert_int_equal(cli_heads_load(&hs, path, NULL), 0);
    assert_int_equal(hs.n, CLI_HEADS_MAX);
    assert_non_null(cli_heads_find(&hs, "127.0.0.1:7414", "m0"));
    assert_null(cli_heads_find(&hs, "127.0.0.1:7414", "m1"));
    assert_null(cli_heads_find(&hs, "127.0.0.1:7414", "m2"));
    assert_non_null(cli_heads_find(&hs, "127.0.0.1:7414", "m3"));
    assert_non_null(cli_heads_find(&hs, "127.0.0.1:7414", "new1"));
    assert_non_null(cli_heads_find(&hs, "127.0.0.1:7414", "new2"));
    assert_string_equal(hs.v[hs.n - 1].meeting, "new2");
    cli_heads_free(&hs);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size < CLI_FILE_MAX);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_line),
        cmocka_unit_test(test_parse_formats),
        cmocka_unit_test(test_parse_broken),
        cmocka_unit_test(test_checkpoint_msg),
        cmocka_unit_test(test_verify),
        cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
        cmocka_unit_test(test_first_diff),
        cmocka_unit_test_setup_teardown(test_heads_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heads_newer_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heads_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heads_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
