/* test_srv_ratelimit.c - the failed-login limits of srv_ratelimit.h, on a clock the tests
 * move themselves. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "srv_ratelimit.h"

#define T0 1000000 /* any start time */

/* Addresses of one IPv6 /64 count as one; another /64 is another address. */
static void test_ipv6_addresses_key_on_their_64(void **state)
{
    (void)state;
    struct srv_ratelimit rl;
    assert_int_equal(srv_ratelimit_init(&rl, 64, 1000), 0);
    for (int i = 0; i < SRV_RL_ADDR_MAX; i++) {
        char ip[64];
        snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i + 1);
        srv_rl_addr_fail(&rl, ip, T0);
    }
    assert_true(srv_rl_addr_check(&rl, "2001:db8:1:2:ffff::9", T0) > 0);
    assert_int_equal(srv_rl_addr_check(&rl, "2001:db8:1:3::1", T0), 0);
    srv_ratelimit_free(&rl);
}

static void test_addr_keys(void **state)
{
    (void)state;
    char k[SRV_RL_ADDR_KEY_MAX];
    srv_rl_addr_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    srv_rl_addr_key("::ffff:192.0.2.7", k);
    assert_string_equal(k, "192.0.2.7");
    srv_rl_addr_key("192.0.2.7", k);
    assert_string_equal(k, "192.0.2.7");
    srv_rl_addr_key("fe80::1%eth0", k);
    assert_string_equal(k, "fe80::/64");
}

/* A full table still counts a new key (evicting the entry charged longest ago), and never
 * evicts the entry being charged. */
static void test_full_table_counts_new_key(void **state)
{
    (void)state;
    struct srv_ratelimit rl;
    assert_int_equal(srv_ratelimit_init(&rl, 64, 2), 0);
    /* Fill the table with two addresses. */
    srv_rl_addr_fail(&rl, "192.0.2.1", T0);
    srv_rl_addr_fail(&rl, "192.0.2.2", T0 + 1);
    /* Then any new address must still be limited after its failures. */
    for (int a = 3; a < 40; a++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "192.0.2.%d", a);
        for (int i = 0; i < SRV_RL_ADDR_MAX; i++) {
            srv_rl_addr_fail(&rl, ip, T0 + 10 + i);
        }
        assert_true(srv_rl_addr_check(&rl, ip, T0 + 20) > 0);
    }
    assert_true(rl.count <= 2);
    srv_ratelimit_free(&rl);
}

/* A spray of new keys evicts the oldest entries, not one charged more recently. */
static void test_full_table_evicts_oldest(void **state)
{
    (void)state;
    struct srv_ratelimit rl;
    assert_int_equal(srv_ratelimit_init(&rl, 1, 3), 0);
    srv_rl_addr_fail(&rl, "192.0.2.1", T0);
    for (int i = 0; i < SRV_RL_ADDR_MAX; i++) {
        srv_rl_addr_fail(&rl, "192.0.2.9", T0 + 1 + i); /* the limited one, charged last */
    }
    srv_rl_addr_fail(&rl, "192.0.2.2", T0 + 20);
    srv_rl_addr_fail(&rl, "192.0.2.3", T0 + 21); /* full: evicts .1, the oldest */
    assert_true(srv_rl_addr_check(&rl, "192.0.2.9", T0 + 30) > 0);
    srv_ratelimit_free(&rl);
}

/* Failures from one address delay only that (account, address) pair. */
static void test_pair_limit_is_per_address(void **state)
{
    (void)state;
    struct srv_ratelimit rl;
    assert_int_equal(srv_ratelimit_init(&rl, 64, 1000), 0);
    for (int i = 0; i < SRV_RL_PAIR_FREE; i++) {
        assert_int_equal(srv_rl_pair_check(&rl, "alice", "192.0.2.66", T0), 0);
        srv_rl_pair_fail(&rl, "alice", "192.0.2.66", T0);
    }
    assert_true(srv_rl_pair_check(&rl, "alice", "192.0.2.66", T0) > 0);
    assert_int_equal(srv_rl_pair_check(&rl, "alice", "198.51.100.1", T0), 0);
    assert_int_equal(srv_rl_pair_check(&rl, "bob", "192.0.2.66", T0), 0);
    /* A refund takes back the delay its charge set. */
    srv_rl_pair_refund(&rl, "alice", "192.0.2.66");
    assert_int_equal(srv_rl_pair_check(&rl, "alice", "192.0.2.66", T0), 0);
    srv_ratelimit_free(&rl);
}

/* The account-wide limit only slows: one check a second, never a long lock. */
static void test_account_limit_only_slows(void **state)
{
    (void)state;
    struct srv_ratelimit rl;
    assert_int_equal(srv_ratelimit_init(&rl, 64, 1000), 0);
    int64_t now = T0;
    for (int i = 0; i < 200; i++) {
        int64_t wait = srv_rl_account_check(&rl, "alice", now);
        assert_true(wait >= 0 && wait <= SRV_RL_ACCOUNT_SLOW_MS);
        if (wait > 0) {
            now += wait;
            assert_int_equal(srv_rl_account_check(&rl, "alice", now), 0);
        }
        srv_rl_account_fail(&rl, "alice", now);
    }
    assert_true(srv_rl_account_check(&rl, "alice", now) > 0);
    assert_int_equal(srv_rl_account_check(&rl, "alice", now + SRV_RL_ACCOUNT_SLOW_MS), 0);
    srv_rl_account_reset(&rl, "alice");
    assert_int_equal(srv_rl_account_check(&rl, "alice", now), 0);
    srv_ratelimit_free(&rl);
}

/* A refunded address charge no longer counts. */
static void test_addr_refund(void **state)
{
    (void)state;
    struct srv_ratelimit rl;
    assert_int_equal(srv_ratelimit_init(&rl, 64, 1000), 0);
    for (int i = 0; i < SRV_RL_ADDR_MAX; i++) {
        srv_rl_addr_fail(&rl, "192.0.2.5", T0 + i);
    }
    assert_true(srv_rl_addr_check(&rl, "192.0.2.5", T0 + 20) > 0);
    srv_rl_addr_refund(&rl, "192.0.2.5");
    assert_int_equal(srv_rl_addr_check(&rl, "192.0.2.5", T0 + 20), 0);
    /* Token failures are counted apart from password failures. */
    for (int i = 0; i < SRV_RL_ADDR_MAX; i++) {
        srv_rl_addr_fail(&rl, "192.0.2.6", T0 + i);
    }
    assert_int_equal(srv_rl_token_check(&rl, "192.0.2.6", T0 + 20), 0);
    srv_ratelimit_sweep(&rl, T0 + SRV_RL_PAIR_MAX_MS + SRV_RL_ADDR_WINDOW_MS + 100);
    assert_int_equal(rl.count, 0);
    srv_ratelimit_free(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_addresses_key_on_their_64),
        cmocka_unit_test(test_addr_keys),
        cmocka_unit_test(test_full_table_counts_new_key),
        cmocka_unit_test(test_full_table_evicts_oldest),
        cmocka_unit_test(test_pair_limit_is_per_address),
        cmocka_unit_test(test_account_limit_only_slows),
        cmocka_unit_test(test_addr_refund),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
