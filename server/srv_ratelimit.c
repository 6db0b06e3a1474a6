/* srv_ratelimit.c - failed-login limits (the rule is in srv_ratelimit.h).
 *
 * Keys carry their kind as a prefix ("a " address, "t " token, "p " pair, "u " account),
 * so that any table may hold any kind without two kinds sharing an entry.
 */
#include "srv_ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_err.h"

struct srv_rl_entry {
    struct srv_rl_entry *next;          /* in its bucket */
    struct srv_rl_entry *older, *newer; /* in the order of last charge */
    char key[SRV_RL_KEY_MAX];
    unsigned failures;
    int64_t last_ms;
    int64_t until_ms;               /* pair: no attempt before this */
    int64_t times[SRV_RL_ADDR_MAX]; /* address, token: ring of the latest failure times */
    unsigned ring;
};

int srv_ratelimit_init(struct srv_ratelimit *rl, size_t nbuckets, size_t max_entries)
{
    memset(rl, 0, sizeof(*rl));
    rl->buckets = calloc(nbuckets, sizeof(*rl->buckets));
    if (rl->buckets == NULL) {
        return PROTO_ENOMEM;
    }
    rl->nbuckets = nbuckets;
    rl->max_entries = max_entries;
    return 0;
}

void srv_ratelimit_free(struct srv_ratelimit *rl)
{
    if (rl->buckets == NULL) {
        return;
    }
    struct srv_rl_entry *e = rl->oldest;
    while (e) {
        struct srv_rl_entry *n = e->newer;
        free(e);
        e = n;
    }
    free(rl->buckets);
    memset(rl, 0, sizeof(*rl));
}

static size_t bucket_of(const struct srv_ratelimit *rl, const char *key)
{
    /* FNV-1a: keys are short; the table is bounded, so collisions cost little. */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    return (size_t)(h % rl->nbuckets);
}

static struct srv_rl_entry *find(struct srv_ratelimit *rl, const char *key)
{
    for (struct srv_rl_entry *e = rl->buckets[bucket_of(rl, key)]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            return e;
        }
    }
    return NULL;
}

static void lru_unlink(struct srv_ratelimit *rl, struct srv_rl_entry *e)
{
    if (e->older) {
        e->older->newer = e->newer;
    } else {
        rl->oldest = e->newer;
    }
    if (e->newer) {
        e->newer->older = e->older;
    } else {
        rl->newest = e->older;
    }
    e->older = e->newer = NULL;
}

static void lru_append(struct srv_ratelimit *rl, struct srv_rl_entry *e)
{
    e->older = rl->newest;
    e->newer = NULL;
    if (rl->newest) {
        rl->newest->newer = e;
    } else {
        rl->oldest = e;
    }
    rl->newest = e;
}

static void remove_entry(struct srv_ratelimit *rl, struct srv_rl_entry *e)
{
    struct srv_rl_entry **pp = &rl->buckets[bucket_of(rl, e->key)];
    while (*pp && *pp != e) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = e->next;
    }
    lru_unlink(rl, e);
    free(e);
    rl->count--;
}

/* The entry of key, made when absent. A full table first evicts the entry charged longest
 * ago: the key being charged is not in the table yet, so it is never the one evicted, and
 * the charge is never dropped. NULL only when out of memory. */
static struct srv_rl_entry *get_or_add(struct srv_ratelimit *rl, const char *key)
{
    struct srv_rl_entry *e = find(rl, key);
    if (e) {
        return e;
    }
    if (rl->count >= rl->max_entries && rl->oldest) {
        remove_entry(rl, rl->oldest);
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    snprintf(e->key, sizeof(e->key), "%s", key);
    size_t b = bucket_of(rl, key);
    e->next = rl->buckets[b];
    rl->buckets[b] = e;
    lru_append(rl, e);
    rl->count++;
    return e;
}

/* Marks e as charged now: it becomes the newest entry. */
static void touch(struct srv_ratelimit *rl, struct srv_rl_entry *e, int64_t now_ms)
{
    e->last_ms = now_ms;
    lru_unlink(rl, e);
    lru_append(rl, e);
}

void srv_rl_addr_key(const char *ip, char out[SRV_RL_ADDR_KEY_MAX])
{
    char host[SRV_RL_ADDR_KEY_MAX];
    snprintf(host, sizeof(host), "%s", ip);
    host[strcspn(host, "%")] = '\0'; /* a zone index names the link, not the peer */
    struct in6_addr a6;
    if (strchr(host, ':') == NULL || inet_pton(AF_INET6, host, &a6) != 1) {
        snprintf(out, SRV_RL_ADDR_KEY_MAX, "%s", host);
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, &a6.s6_addr[12], out, SRV_RL_ADDR_KEY_MAX);
        return;
    }
    /* One host is usually given a whole /64: its addresses count as one. */
    memset(&a6.s6_addr[8], 0, 8);
    char p[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, p, sizeof(p));
    snprintf(out, SRV_RL_ADDR_KEY_MAX, "%s/64", p);
}

static void make_key(char out[SRV_RL_KEY_MAX], char kind, const char *name, const char *ip)
{
    char a[SRV_RL_ADDR_KEY_MAX] = "";
    if (ip) {
        srv_rl_addr_key(ip, a);
    }
    /* 0x1f cannot occur in an account name, so "name, address" pairs never collide. */
    snprintf(out, SRV_RL_KEY_MAX, "%c %s%s%s", kind, name ? name : "", name && ip ? "\x1f" : "", a);
}

/* ---- windows: at most SRV_RL_ADDR_MAX failures in any SRV_RL_ADDR_WINDOW_MS ---- */

static int64_t window_check(struct srv_ratelimit *rl, const char *key, int64_t now_ms)
{
    struct srv_rl_entry *e = find(rl, key);
    if (e == NULL || e->failures < SRV_RL_ADDR_MAX) {
        return 0;
    }
    /* The ring's next slot holds the oldest of the last SRV_RL_ADDR_MAX failures. */
    int64_t oldest = e->times[e->ring];
    if (now_ms - oldest >= SRV_RL_ADDR_WINDOW_MS) {
        return 0;
    }
    return oldest + SRV_RL_ADDR_WINDOW_MS - now_ms;
}

static void window_fail(struct srv_ratelimit *rl, const char *key, int64_t now_ms)
{
    struct srv_rl_entry *e = get_or_add(rl, key);
    if (e == NULL) {
        return;
    }
    if (e->failures < SRV_RL_ADDR_MAX) {
        e->failures++;
    }
    e->times[e->ring] = now_ms;
    e->ring = (e->ring + 1) % SRV_RL_ADDR_MAX;
    touch(rl, e, now_ms);
}

int64_t srv_rl_addr_check(struct srv_ratelimit *rl, const char *ip, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'a', NULL, ip);
    return window_check(rl, key, now_ms);
}

void srv_rl_addr_fail(struct srv_ratelimit *rl, const char *ip, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'a', NULL, ip);
    window_fail(rl, key, now_ms);
}

void srv_rl_addr_refund(struct srv_ratelimit *rl, const char *ip)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'a', NULL, ip);
    struct srv_rl_entry *e = find(rl, key);
    if (e == NULL || e->failures == 0) {
        return;
    }
    if (e->failures == 1) {
        remove_entry(rl, e);
        return;
    }
    /* Drop the latest time; the ring's next slot moves back over it. */
    e->ring = (e->ring + SRV_RL_ADDR_MAX - 1) % SRV_RL_ADDR_MAX;
    e->times[e->ring] = 0;
    e->failures--;
}

int64_t srv_rl_token_check(struct srv_ratelimit *rl, const char *ip, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 't', NULL, ip);
    return window_check(rl, key, now_ms);
}

void srv_rl_token_fail(struct srv_ratelimit *rl, const char *ip, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 't', NULL, ip);
    window_fail(rl, key, now_ms);
}

/* ---- pairs: SRV_RL_PAIR_FREE free, then a doubling delay ---- */

static void pair_set_delay(struct srv_rl_entry *e, int64_t now_ms)
{
    if (e->failures < SRV_RL_PAIR_FREE) {
        e->until_ms = 0;
        return;
    }
    unsigned shift = e->failures - SRV_RL_PAIR_FREE;
    int64_t delay = shift >= 20 ? SRV_RL_PAIR_MAX_MS : (int64_t)1000 << shift;
    e->until_ms = now_ms + (delay > SRV_RL_PAIR_MAX_MS ? SRV_RL_PAIR_MAX_MS : delay);
}

int64_t srv_rl_pair_check(struct srv_ratelimit *rl, const char *name, const char *ip,
                          int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'p', name, ip);
    struct srv_rl_entry *e = find(rl, key);
    if (e == NULL || now_ms >= e->until_ms) {
        return 0;
    }
    return e->until_ms - now_ms;
}

void srv_rl_pair_fail(struct srv_ratelimit *rl, const char *name, const char *ip, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'p', name, ip);
    struct srv_rl_entry *e = get_or_add(rl, key);
    if (e == NULL) {
        return;
    }
    e->failures++;
    pair_set_delay(e, now_ms);
    touch(rl, e, now_ms);
}

void srv_rl_pair_refund(struct srv_ratelimit *rl, const char *name, const char *ip)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'p', name, ip);
    struct srv_rl_entry *e = find(rl, key);
    if (e == NULL) {
        return;
    }
    if (e->failures <= 1) {
        remove_entry(rl, e);
        return;
    }
    e->failures--;
    /* The delay set by the refunded charge goes with it. */
    pair_set_delay(e, e->last_ms);
}

void srv_rl_pair_reset(struct srv_ratelimit *rl, const char *name, const char *ip)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'p', name, ip);
    struct srv_rl_entry *e = find(rl, key);
    if (e) {
        remove_entry(rl, e);
    }
}

/* ---- accounts: past SRV_RL_ACCOUNT_SLOW failures, one check a second ---- */

int64_t srv_rl_account_check(struct srv_ratelimit *rl, const char *name, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'u', name, NULL);
    struct srv_rl_entry *e = find(rl, key);
    if (e == NULL || e->failures < SRV_RL_ACCOUNT_SLOW) {
        return 0;
    }
    int64_t wait = e->last_ms + SRV_RL_ACCOUNT_SLOW_MS - now_ms;
    return wait > 0 ? wait : 0;
}

void srv_rl_account_fail(struct srv_ratelimit *rl, const char *name, int64_t now_ms)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'u', name, NULL);
    struct srv_rl_entry *e = get_or_add(rl, key);
    if (e == NULL) {
        return;
    }
    e->failures++;
    touch(rl, e, now_ms);
}

void srv_rl_account_refund(struct srv_ratelimit *rl, const char *name)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'u', name, NULL);
    struct srv_rl_entry *e = find(rl, key);
    if (e == NULL) {
        return;
    }
    if (e->failures <= 1) {
        remove_entry(rl, e);
        return;
    }
    e->failures--;
}

void srv_rl_account_reset(struct srv_ratelimit *rl, const char *name)
{
    char key[SRV_RL_KEY_MAX];
    make_key(key, 'u', name, NULL);
    struct srv_rl_entry *e = find(rl, key);
    if (e) {
        remove_entry(rl, e);
    }
}

void srv_ratelimit_sweep(struct srv_ratelimit *rl, int64_t now_ms)
{
    /* Oldest first: stop at the first entry still recent enough to matter. */
    while (rl->oldest) {
        struct srv_rl_entry *e = rl->oldest;
        bool stale = now_ms >= e->until_ms &&
                     now_ms - e->last_ms > SRV_RL_PAIR_MAX_MS + SRV_RL_ADDR_WINDOW_MS;
        if (!stale) {
            break;
        }
        remove_entry(rl, e);
    }
}
