/* auth.h — who may use the API (server-internal): the API keys, a throttle on wrong keys per client address,
 * and the cache salt that keeps tenants' prompt caches apart. What does not live here: which routes need a
 * key (http.c's dispatch) and the request fields (parse.c).
 *
 * Keys: several keys are several tenants. A presented key is hashed (SHA-256) and compared with every key's
 * hash without an early exit, so the time says neither which key nor how much of one matched, nor its length.
 *
 * Throttle: a token bucket per client address (IPv4, or the /64 of IPv6, which one host usually owns whole):
 * AUTH_BURST wrong keys at once, then one more every AUTH_REFILL_S seconds. While the bucket is empty every
 * request that needs a key gets a quick 429 with Retry-After, a right key included (answering it would tell a
 * guesser that this guess was right); nothing sleeps on a connection thread. A right key does not refill the
 * bucket: a tenant with a key of its own could otherwise guess other tenants' keys between its own requests.
 * The table has a fixed size (AUTH_IPS entries, least recently failed replaced), so memory is bounded whatever
 * the number of addresses; behind a reverse proxy every client shares the proxy's address.
 *
 * Thread safety: MHD runs one thread per connection. The keys and the salt secret are read-only after init;
 * the throttle table is under its own mutex. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_BURST 10      /* wrong keys one address may send at once */
#define AUTH_REFILL_S 3.0  /* then one more every 3 s: 1200 an hour */
#define AUTH_IPS 256       /* addresses remembered */

/* A client address as the throttle counts it: 16 bytes (IPv4 in the first 4, IPv6 cut to its /64). */
typedef struct { uint8_t b[16]; uint8_t family; } auth_addr;

typedef struct {
    auth_addr addr;
    double tokens;         /* wrong keys still allowed; may go below 0 when several arrive at once */
    double t_last;         /* when tokens was last updated (qe_now seconds); 0 = unused entry */
} auth_ip;

typedef struct {
    uint8_t (*key_hash)[32]; /* [n_keys] SHA-256 of each key; owned */
    int n_keys;
    uint8_t salt_secret[32]; /* random per start: cache salts are keyed hashes nobody can precompute */
    pthread_mutex_t mu;      /* guards ips */
    auth_ip ips[AUTH_IPS];
} qe_auth;

/* Copies the keys' hashes (the caller keeps its strings). n == 0: no key needed. An empty key or one with spaces
 * or control characters is QE_EINVAL (err names it by position, never by value). */
int auth_init(qe_auth *a, const char *const *keys, int n, char *err);
void auth_free(qe_auth *a);
static inline bool auth_required(const qe_auth *a) { return a->n_keys > 0; }

/* The index of the key an "Authorization: Bearer KEY" header carries, or -1 (no header, another scheme, no
 * such key). Constant time in the number of keys. */
int auth_key_index(const qe_auth *a, const char *authorization);

/* Throttle: seconds until `addr` may try a key again (0: now), at time `now` (qe_now seconds). */
double auth_throttle_wait(qe_auth *a, const auth_addr *addr, double now);
/* Counts a wrong key from `addr`. */
void auth_throttle_fail(qe_auth *a, const auth_addr *addr, double now);
/* The throttle's address of a socket address (AF_INET or AF_INET6; anything else is one shared address). */
void auth_addr_of(const void *sockaddr, auth_addr *out);

/* The engine's cache salt for a request: 0 when there is neither a salt string nor more than one key (single-user
 * behaviour: everything shares the cache); else a keyed hash of the key index (when there are several keys, so
 * two tenants never share) and the salt string. */
uint64_t auth_cache_salt(const qe_auth *a, int key_index, const char *salt, size_t len);
