/* srv_ratelimit.c - failed-login limits per account name and per client address.
 *
 * A bounded hash table of entries keyed by name or address. An entry records failures
 * only; a table that is full evicts an entry of the same bucket, so an attacker spraying
 * names or addresses costs memory up to max_entries and no more.
 */
#include "srv.h"

#include <stdlib.h>
#include <string.h>

#define ACCOUNT_FREE         5
#define ACCOUNT_MAX_DELAY_MS (15 * 60 * 1000)
#define ADDR_WINDOW_MS       (60 * 1000)
#define ADDR_MAX             10

struct srv_rl_entry {
    struct srv_rl_entry *next;
    char key[80];
    unsigned failures;
    int64_t last_ms;
    int64_t until_ms;        /* account: no attempt before this */
    int64_t times[ADDR_MAX]; /* address: ring of the latest failure times */
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
    for (size_t i = 0; i < rl->nbuckets; i++) {
        struct srv_rl_entry *e = rl->buckets[i];
        while (e) {
            struct srv_rl_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(rl->buckets);
    rl->buckets = NULL;
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

static void remove_entry(struct srv_ratelimit *rl, const char *key)
{
    struct srv_rl_entry **pp = &rl->buckets[bucket_of(rl, key)];
    while (*pp) {
        if (strcmp((*pp)->key, key) == 0) {
            struct srv_rl_entry *e = *pp;
            *pp = e->next;
            free(e);
            rl->count--;
            return;
        }
        pp = &(*pp)->next;
    }
}

static struct srv_rl_entry *get_or_add(struct srv_ratelimit *rl, const char *key)
{
    struct srv_rl_entry *e = find(rl, key);
    if (e) {
        return e;
    }
    size_t b = bucket_of(rl, key);
    if (rl->count >= rl->max_entries) {
        /* Full: evict the oldest entry of this bucket, if it has one. */
        struct srv_rl_entry **pp = &rl->buckets[b], **oldest = NULL;
        for (; *pp; pp = &(*pp)->next) {
            if (oldest == NULL || (*pp)->last_ms < (*oldest)->last_ms) {
                oldest = pp;
            }
        }
        if (oldest == NULL) {
            return NULL;
        }
        struct srv_rl_entry *victim = *oldest;
        *oldest = victim->next;
        free(victim);
        rl->count--;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->next = rl->buckets[b];
    rl->buckets[b] = e;
    rl->count++;
    return e;
}

int64_t srv_rl_account_check(struct srv_ratelimit *rl, const char *name, int64_t now_ms)
{
    struct srv_rl_entry *e = find(rl, name);
    if (e == NULL || now_ms >= e->until_ms) {
        return 0;
    }
    return e->until_ms - now_ms;
}

void srv_rl_account_fail(struct srv_ratelimit *rl, const char *name, int64_t now_ms)
{
    struct srv_rl_entry *e = get_or_add(rl, name);
    if (e == NULL) {
        return;
    }
    e->failures++;
    e->last_ms = now_ms;
    if (e->failures >= ACCOUNT_FREE) {
        unsigned shift = e->failures - ACCOUNT_FREE;
        int64_t delay = shift >= 20 ? ACCOUNT_MAX_DELAY_MS : (int64_t)1000 << shift;
        if (delay > ACCOUNT_MAX_DELAY_MS) {
            delay = ACCOUNT_MAX_DELAY_MS;
        }
        e->until_ms = now_ms + delay;
    }
}

void srv_rl_account_reset(struct srv_ratelimit *rl, const char *name)
{
    remove_entry(rl, name);
}

int64_t srv_rl_addr_check(struct srv_ratelimit *rl, const char *addr, int64_t now_ms)
{
    struct srv_rl_entry *e = find(rl, addr);
    if (e == NULL || e->failures < ADDR_MAX) {
        return 0;
    }
    /* The ring's next slot holds the oldest of the last ADDR_MAX failures. */
    int64_t oldest = e->times[e->ring];
    if (now_ms - oldest >= ADDR_WINDOW_MS) {
        return 0;
    }
    return oldest + ADDR_WINDOW_MS - now_ms;
}

void srv_rl_addr_fail(struct srv_ratelimit *rl, const char *addr, int64_t now_ms)
{
    struct srv_rl_entry *e = get_or_add(rl, addr);
    if (e == NULL) {
        return;
    }
    if (e->failures < ADDR_MAX) {
        e->failures++;
    }
    e->times[e->ring] = now_ms;
    e->ring = (e->ring + 1) % ADDR_MAX;
    e->last_ms = now_ms;
}

void srv_ratelimit_sweep(struct srv_ratelimit *rl, int64_t now_ms)
{
    for (size_t i = 0; i < rl->nbuckets; i++) {
        struct srv_rl_entry **pp = &rl->buckets[i];
        while (*pp) {
            struct srv_rl_entry *e = *pp;
            /* Forget an entry once it limits nothing and has been quiet for a while. */
            bool stale = now_ms >= e->until_ms &&
                         now_ms - e->last_ms > ACCOUNT_MAX_DELAY_MS + ADDR_WINDOW_MS;
            if (stale) {
                *pp = e->next;
                free(e);
                rl->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}
