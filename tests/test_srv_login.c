/* test_srv_login.c - login limits and password changes against a real conferd: many
 * simultaneous wrong logins, a remembered token and another address after them, and a
 * password change racing an operator's reset. Each test has a server of its own, so the
 * limits one test charges do not reach another. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_conn.h"
#include "db.h"
#include "srv.h"
#include "srv_auth.h"
#include "srv_ratelimit.h"
#include "testsrv.h"
#include "testutil.h"

#define NCONNS  40
#define WAIT_MS 20000

static const char *const names[] = {"alice", "bob", NULL};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A connection to the server from source address src ("127.0.0.1", "127.0.0.2"), not
 * logged in. */
static struct cli_conn *open_from(struct ts_server *s, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, src, &a.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    a.sin_port = htons((uint16_t)s->port);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct cli_host_policy pol = {.trust_new = true};
    struct cli_conn *c = NULL;
    char err[512];
    char hp[64];
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", s->port);
    if (cli_conn_open_fd(&c, fd, hp, &pol, 10000, err, sizeof(err)) != 0) {
        fail_msg("connect from %s: %s", src, err);
    }
    return c;
}

/* The answer of one auth.login: "ok" or the error code (the message is freed). */
static void login_code(struct cli_conn *c, const char *user, const char *pw, char *code, size_t cap)
{
    struct cli_msg *m = NULL;
    assert_int_equal(
        cli_conn_callf(c, &m, "auth.login", "{s:s, s:s}", "user", user, "password", pw), 0);
    snprintf(code, cap, "%s", m->error ? m->code : "ok");
    cli_msg_free(m);
}

/* Sends NCONNS wrong logins for alice at once, one per connection from 127.0.0.1; counts
 * the answers that were real password checks (unauthenticated) and the refusals. */
static void wrong_logins_at_once(struct ts_server *s, int *checked, int *limited)
{
    struct cli_conn *c[NCONNS];
    uint32_t id[NCONNS];
    for (int i = 0; i < NCONNS; i++) {
        c[i] = open_from(s, "127.0.0.1");
    }
    for (int i = 0; i < NCONNS; i++) {
        assert_int_equal(cli_conn_sendf(c[i], &id[i], "auth.login", "{s:s, s:s}", "user", "alice",
                                        "password", "wrong-password"),
                         0);
    }
    *checked = *limited = 0;
    for (int i = 0; i < NCONNS; i++) {
        struct cli_msg *m = NULL;
        assert_int_equal(cli_conn_wait(c[i], id[i], WAIT_MS, &m), 0);
        assert_non_null(m->error);
        if (strcmp(m->code, "unauthenticated") == 0) {
            (*checked)++;
        } else {
            assert_string_equal(m->code, "rate_limited");
            (*limited)++;
        }
        cli_msg_free(m);
        cli_conn_close(c[i]);
    }
}

/* Simultaneous wrong logins are charged when queued: only the free attempts of the
 * (account, address) pair are real password checks. */
static void test_simultaneous_wrong_logins_charged_in_advance(void **state)
{
    (void)state;
    struct ts_server s = {0};
    assert_int_equal(ts_start(&s, names, NULL), 0);
    int checked = 0, limited = 0;
    wrong_logins_at_once(&s, &checked, &limited);
    assert_true(checked <= SRV_RL_PAIR_FREE);
    assert_int_equal(checked + limited, NCONNS);
    assert_int_equal(ts_stop(&s), 0);
}

/* After a flood of wrong logins, the owner's remembered token logs in at once. */
static void test_token_login_after_wrong_logins(void **state)
{
    (void)state;
    struct ts_server s = {0};
    assert_int_equal(ts_start(&s, names, NULL), 0);
    struct cli_conn *c = open_from(&s, "127.0.0.1");
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "auth.login", "{s:s, s:s, s:b}", "user", "alice",
                                    "password", "alice-password", "remember", 1),
                     0);
    assert_null(m->error);
    char token[128];
    assert_int_equal(proto_param_strcpy(m->result, "token", token, sizeof(token)), 0);
    cli_msg_free(m);
    cli_conn_close(c);

    int checked = 0, limited = 0;
    wrong_logins_at_once(&s, &checked, &limited);
    assert_true(limited > 0);

    c = open_from(&s, "127.0.0.1");
    assert_int_equal(
        cli_conn_callf(c, &m, "auth.token", "{s:s, s:s}", "user", "alice", "token", token), 0);
    if (m->error) {
        fail_msg("auth.token after wrong logins: %s", m->code);
    }
    cli_msg_free(m);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* Wrong logins from one address lock only that address out of the account: the correct
 * password from another address logs in at once. */
static void test_password_from_other_address_after_wrong_logins(void **state)
{
    (void)state;
    struct ts_server s = {0};
    assert_int_equal(ts_start(&s, names, NULL), 0);
    int checked = 0, limited = 0;
    wrong_logins_at_once(&s, &checked, &limited);
    assert_true(limited > 0);

    char code[64];
    struct cli_conn *c = open_from(&s, "127.0.0.1");
    login_code(c, "alice", "alice-password", code, sizeof(code));
    assert_string_equal(code, "rate_limited"); /* the attacker's address is limited */
    cli_conn_close(c);

    c = open_from(&s, "127.0.0.2");
    login_code(c, "alice", "alice-password", code, sizeof(code));
    assert_string_equal(code, "ok");
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* A session changes its password while the operator resets it: the reset wins, and the
 * session keeps no access. */
static void test_passwd_during_operator_reset(void **state)
{
    (void)state;
    /* Hashing new passwords at the interactive cost keeps each change on the pool long
     * enough for the reset to land while it runs. */
    static const char *const args[] = {"--pwhash-cost", "interactive", NULL};
    struct ts_server s = {0};
    assert_int_equal(ts_start_args(&s, names, NULL, args), 0);
    struct cli_conn *c = ts_login(&s, "bob");
    assert_non_null(c);
    static const char *const reset[] = {
        "account",        "passwd", "bob", "--password-stdin", "--pwhash-cost", "min",
        "--min-password", "8",      NULL};
    char cur[64] = "bob-password";
    bool raced = false;
    bool open = true;
    for (int round = 0; round < 10 && open && !raced; round++) {
        char next[64];
        snprintf(next, sizeof(next), "bob-new-password-%d", round);
        uint32_t id = 0;
        if (cli_conn_sendf(c, &id, "auth.passwd", "{s:s, s:s}", "old", cur, "new", next) != 0) {
            open = false; /* closed by the server's poll after an earlier reset */
            break;
        }
        assert_int_equal(ts_conferd(&s, "operator-reset-1\n", reset), 0);
        struct cli_msg *m = NULL;
        /* Did the reset finish while the change was still being answered? */
        raced = cli_conn_next(c, 0, &m) == PROTO_ETIMEDOUT;
        cli_msg_free(m);
        m = NULL;
        int rc = cli_conn_wait(c, id, WAIT_MS, &m);
        if (rc != 0) {
            open = false; /* closed by the server */
        } else if (m->error == NULL) {
            snprintf(cur, sizeof(cur), "%s", next);
        }
        cli_msg_free(m);
    }
    assert_true(raced || !open);
    /* Past the server's poll of account changes (500 ms), the session must be gone. */
    sleep_ms(1500);
    struct cli_msg *m = NULL;
    int rc = open ? cli_conn_callf(c, &m, "whoami", NULL) : PROTO_ECLOSED;
    if (rc == 0) {
        if (m->error == NULL) {
            fail_msg("the session kept its access after the operator's reset");
        }
        cli_msg_free(m);
    }
    cli_conn_close(c);
    /* The operator's password is the one that stands. */
    char code[64];
    c = open_from(&s, "127.0.0.1");
    login_code(c, "bob", "operator-reset-1", code, sizeof(code));
    assert_string_equal(code, "ok");
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* A login whose token cannot be stored is answered unavailable and leaves the connection
 * logged out: its login deadline runs again, so it is closed unless it logs in. */
static void test_failed_token_store_rearms_deadline(void **state)
{
    (void)state;
    /* The deadline is longer than the database's busy timeout (5 s), which the store waits
     * out on the loop. */
    static const char *const args[] = {"--login-timeout", "8000", NULL};
    struct ts_server s = {0};
    assert_int_equal(ts_start_args(&s, names, NULL, args), 0);
    struct cli_conn *c = open_from(&s, "127.0.0.1");
    /* Another connection holds the write lock: the token cannot be stored. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/data/confer.db", s.dir);
    struct db *lock = NULL;
    assert_int_equal(db_open(&lock, path, 0), 0);
    assert_int_equal(db_begin(lock), 0);
    struct cli_msg *m = NULL;
    assert_int_equal(cli_conn_callf(c, &m, "auth.login", "{s:s, s:s, s:b}", "user", "alice",
                                    "password", "alice-password", "remember", 1),
                     0);
    assert_non_null(m->error);
    assert_string_equal(m->code, "unavailable");
    cli_msg_free(m);
    db_rollback(lock);
    db_close(lock);
    /* Logged out again: the deadline closes it (the loop waits at most 15 s). */
    int rc = 0;
    for (int i = 0; i < 30; i++) {
        m = NULL;
        rc = cli_conn_next(c, 500, &m);
        cli_msg_free(m);
        if (rc != 0 && rc != PROTO_ETIMEDOUT) {
            break;
        }
    }
    assert_int_equal(rc, PROTO_ECLOSED);
    cli_conn_close(c);
    assert_int_equal(ts_stop(&s), 0);
}

/* The dummy hash an unknown user is checked against has the Argon2 parameters of the
 * stored hashes, not those of the server's --pwhash-cost. */
static void test_unknown_user_hash_has_stored_cost(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char path[4096];
    snprintf(path, sizeof(path), "%s/confer.db", dir);
    struct db *db = NULL;
    assert_int_equal(db_open(&db, path, DB_CREATE), 0);
    char stored[DB_PWHASH_MAX], configured[DB_PWHASH_MAX], dummy[DB_PWHASH_MAX];
    assert_int_equal(srv_password_hash(SRV_PWCOST_MIN, "a-password", 10, stored), 0);
    assert_int_equal(db_account_add(db, "alice", stored, false), 0);
    /* What the server makes from --pwhash-cost interactive. */
    assert_int_equal(srv_password_hash(SRV_PWCOST_INTERACTIVE, "x", 1, configured), 0);
    srv_auth_unknown_hash(db, configured, dummy);
    unsigned long long ops = 0;
    size_t mem = 0;
    srv_pwcost_limits(SRV_PWCOST_MIN, &ops, &mem);
    assert_int_equal(crypto_pwhash_str_needs_rehash(dummy, ops, mem), 0);
    assert_string_not_equal(dummy, stored);
    assert_int_not_equal(crypto_pwhash_str_verify(dummy, "a-password", 10), 0);
    assert_int_equal(strlen(dummy), strlen(stored));
    db_close(db);
    tu_rmtree(dir);
}

/* Without accounts, the configured dummy serves. */
static void test_unknown_user_hash_without_accounts(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char path[4096];
    snprintf(path, sizeof(path), "%s/confer.db", dir);
    struct db *db = NULL;
    assert_int_equal(db_open(&db, path, DB_CREATE), 0);
    char configured[DB_PWHASH_MAX], dummy[DB_PWHASH_MAX];
    assert_int_equal(srv_password_hash(SRV_PWCOST_MIN, "x", 1, configured), 0);
    srv_auth_unknown_hash(db, configured, dummy);
    assert_string_equal(dummy, configured);
    assert_int_equal(srv_pwhash_dummy_like("not a hash", dummy), PROTO_EINVAL);
    db_close(db);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simultaneous_wrong_logins_charged_in_advance),
        cmocka_unit_test(test_token_login_after_wrong_logins),
        cmocka_unit_test(test_password_from_other_address_after_wrong_logins),
        cmocka_unit_test(test_passwd_during_operator_reset),
        cmocka_unit_test(test_failed_token_store_rearms_deadline),
        cmocka_unit_test(test_unknown_user_hash_has_stored_cost),
        cmocka_unit_test(test_unknown_user_hash_without_accounts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
