/* auth.c — API keys, the wrong-key throttle and the cache salt (see auth.h for the contract). */
#include "auth.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base.h"

static int sha256(const void *p, size_t n, uint8_t out[32]) {
    unsigned len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

int auth_init(qe_auth *a, const char *const *keys, int n, char *err) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    if (getrandom(a->salt_secret, sizeof a->salt_secret, 0) != (ssize_t)sizeof a->salt_secret) {
        /* no kernel randomness: the salt still separates tenants, it is only predictable */
        uint64_t x = qe_now_ns();
        memcpy(a->salt_secret, &x, sizeof x);
    }
    if (n <= 0) return QE_OK;
    if (!(a->key_hash = calloc((size_t)n, sizeof *a->key_hash))) return qe_errf(err, QE_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *k = keys[i];
        if (!k || !k[0]) return qe_errf(err, QE_EINVAL, "API key %d of %d is empty", i + 1, n);
        for (const char *p = k; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                return qe_errf(err, QE_EINVAL, "API key %d of %d contains a space or control character", i + 1, n);
        if (sha256(k, strlen(k), a->key_hash[i])) return qe_errf(err, QE_ERR, "SHA-256 failed");
    }
    a->n_keys = n;
    return QE_OK;
}

void auth_free(qe_auth *a) {
    if (!a) return;
    free(a->key_hash);
    a->key_hash = NULL;
    a->n_keys = 0;
    pthread_mutex_destroy(&a->mu);
}

int auth_key_index(const qe_auth *a, const char *h) {
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return -1;
    h += 7;
    while (*h == ' ') h++;
    uint8_t hash[32];
    if (!*h || sha256(h, strlen(h), hash)) return -1;
    /* every key is compared, and the index is picked without a branch on the secret */
    int found = -1;
    for (int i = 0; i < a->n_keys; i++) {
        int eq = CRYPTO_memcmp(hash, a->key_hash[i], 32) == 0;
        int take = eq & (found < 0);
        found = take ? i : found;
    }
    return found;
}

/* ---- throttle ---------------------------------------------------------------------------------------- */

void auth_addr_of(const void *sockaddr, auth_addr *out) {
    memset(out, 0, sizeof *out);
    const struct sockaddr *sa = sockaddr;
    if (!sa) return;
    if (sa->sa_family == AF_INET) {
        out->family = 4;
        memcpy(out->b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) { /* a dual-stack socket: the same client as over IPv4 */
            out->family = 4;
            memcpy(out->b, a6->s6_addr + 12, 4);
        } else {
            out->family = 6;
            memcpy(out->b, a6->s6_addr, 8); /* the /64: one host usually has all of it */
        }
    }
}

static bool addr_eq(const auth_addr *x, const auth_addr *y) {
    return x->family == y->family && !memcmp(x->b, y->b, sizeof x->b);
}

/* The entry of addr, refilled up to now; NULL when the address has none. Under a->mu. */
static auth_ip *find(qe_auth *a, const auth_addr *addr, double now) {
    for (int i = 0; i < AUTH_IPS; i++) {
        auth_ip *e = &a->ips[i];
        if (e->t_last == 0 || !addr_eq(&e->addr, addr)) continue;
        e->tokens = fmin(AUTH_BURST, e->tokens + (now - e->t_last) / AUTH_REFILL_S);
        e->t_last = now;
        return e;
    }
    return NULL;
}

double auth_throttle_wait(qe_auth *a, const auth_addr *addr, double now) {
    pthread_mutex_lock(&a->mu);
    auth_ip *e = find(a, addr, now);
    double wait = e && e->tokens < 1 ? (1 - e->tokens) * AUTH_REFILL_S : 0;
    pthread_mutex_unlock(&a->mu);
    return wait;
}

void auth_throttle_fail(qe_auth *a, const auth_addr *addr, double now) {
    pthread_mutex_lock(&a->mu);
    auth_ip *e = find(a, addr, now);
    if (!e) {
        /* a new address takes a free entry, else the one whose last wrong key is oldest */
        e = &a->ips[0];
        for (int i = 0; i < AUTH_IPS && e->t_last != 0; i++)
            if (a->ips[i].t_last < e->t_last) e = &a->ips[i];
        *e = (auth_ip){.addr = *addr, .tokens = AUTH_BURST, .t_last = now};
    }
    e->tokens -= 1;
    pthread_mutex_unlock(&a->mu);
}

/* ---- cache salt -------------------------------------------------------------------------------------- */

uint64_t auth_cache_salt(const qe_auth *a, int key_index, const char *salt, size_t len) {
    bool per_key = a->n_keys > 1 && key_index >= 0;
    if (!per_key && len == 0) return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t md[32] = {0};
    unsigned n = 0;
    int32_t ki = per_key ? key_index : -1;
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a->salt_secret, sizeof a->salt_secret) == 1 &&
              EVP_DigestUpdate(ctx, &ki, sizeof ki) == 1 && EVP_DigestUpdate(ctx, salt, len) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &n) == 1;
    EVP_MD_CTX_free(ctx);
    uint64_t x = 0;
    memcpy(&x, md, sizeof x);
    if (!ok) {
        /* no digest: still keep tenants apart (FNV-1a over the same input) */
        x = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof a->salt_secret; i++) x = (x ^ a->salt_secret[i]) * 1099511628211ull;
        x = (x ^ (uint32_t)ki) * 1099511628211ull;
        for (size_t i = 0; i < len; i++) x = (x ^ (uint8_t)salt[i]) * 1099511628211ull;
    }
    return x ? x : 1; /* 0 means "no salt" */
}
