/* srv_ratelimit.h - limits on failed logins, per client address, per (account, address)
 * and per account.
 *
 * The rule (srv_auth.c charges it):
 *   - a password check is charged as a failure when it is queued, and refunded when it
 *     succeeds, so simultaneous attempts cannot outrun the count;
 *   - per client address (IPv4 whole, IPv6 by its /64): at most 10 failures in any minute;
 *   - per account and client address: 5 failures free, then a delay doubling from 1 s up
 *     to 15 minutes: an attacker locks only their own address out of the account;
 *   - per account across all addresses: past 10 failures, at most one password check a
 *     second (answered rate_limited with retry_after_ms of at most 1000): this slows a
 *     guesser spread over many addresses and never locks the owner out;
 *   - token logins are limited only by failed token logins of their address (10 a
 *     minute): failed password logins never refuse a valid token.
 *
 * Each table is a bounded hash table; a full table evicts the entry charged longest ago,
 * never the one being charged, so spraying names or addresses costs memory up to
 * max_entries and no more.
 */
#ifndef CONFER_SRV_RATELIMIT_H
#define CONFER_SRV_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define SRV_RL_ADDR_KEY_MAX 64  /* an address key: IPv4 text, or an IPv6 /64 prefix */
#define SRV_RL_KEY_MAX      136 /* any key: a name, a separator and an address key */

#define SRV_RL_ADDR_MAX        10 /* failures per address in any minute */
#define SRV_RL_ADDR_WINDOW_MS  (60 * 1000)
#define SRV_RL_PAIR_FREE       5 /* failures per (account, address) before delays */
#define SRV_RL_PAIR_MAX_MS     (15 * 60 * 1000)
#define SRV_RL_ACCOUNT_SLOW    10 /* failures per account before one check a second */
#define SRV_RL_ACCOUNT_SLOW_MS 1000

struct srv_rl_entry;

struct srv_ratelimit {
    struct srv_rl_entry **buckets;
    size_t nbuckets;
    size_t count;
    size_t max_entries;
    struct srv_rl_entry *oldest, *newest; /* every entry, in the order of their last charge */
};

/* Makes an empty table of nbuckets buckets holding at most max_entries entries. Returns 0
 * or PROTO_ENOMEM. */
int srv_ratelimit_init(struct srv_ratelimit *rl, size_t nbuckets, size_t max_entries);

/* Frees every entry and the buckets. */
void srv_ratelimit_free(struct srv_ratelimit *rl);

/* Drops entries that no longer limit anything. */
void srv_ratelimit_sweep(struct srv_ratelimit *rl, int64_t now_ms);

/* The key of a client address for the per-address limits: an IPv4 address as it is (also
 * when IPv4-mapped), an IPv6 address as its /64 prefix ("2001:db8:1:2::/64"). */
void srv_rl_addr_key(const char *ip, char out[SRV_RL_ADDR_KEY_MAX]);

/* Per client address: returns 0 when a password check may start, else the ms to wait. */
int64_t srv_rl_addr_check(struct srv_ratelimit *rl, const char *ip, int64_t now_ms);
/* Counts one failure of the address (a check charged in advance). */
void srv_rl_addr_fail(struct srv_ratelimit *rl, const char *ip, int64_t now_ms);
/* Takes back the latest failure of the address (the check succeeded or never ran). */
void srv_rl_addr_refund(struct srv_ratelimit *rl, const char *ip);

/* Per (account, client address): as srv_rl_addr_check, for name tried from ip. */
int64_t srv_rl_pair_check(struct srv_ratelimit *rl, const char *name, const char *ip,
                          int64_t now_ms);
void srv_rl_pair_fail(struct srv_ratelimit *rl, const char *name, const char *ip, int64_t now_ms);
/* Takes back one failure (a check that never ran). */
void srv_rl_pair_refund(struct srv_ratelimit *rl, const char *name, const char *ip);
/* Forgets the pair's failures (a successful login from there). */
void srv_rl_pair_reset(struct srv_ratelimit *rl, const char *name, const char *ip);

/* Per account across addresses: returns 0 when a password check may start, else the ms
 * to wait (at most SRV_RL_ACCOUNT_SLOW_MS). */
int64_t srv_rl_account_check(struct srv_ratelimit *rl, const char *name, int64_t now_ms);
void srv_rl_account_fail(struct srv_ratelimit *rl, const char *name, int64_t now_ms);
void srv_rl_account_refund(struct srv_ratelimit *rl, const char *name);
void srv_rl_account_reset(struct srv_ratelimit *rl, const char *name);

/* Failed token logins per client address: at most 10 in any minute. */
int64_t srv_rl_token_check(struct srv_ratelimit *rl, const char *ip, int64_t now_ms);
void srv_rl_token_fail(struct srv_ratelimit *rl, const char *ip, int64_t now_ms);

#endif
