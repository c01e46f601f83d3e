/* test_auth.c — the server's API keys, wrong-key throttle and cache salts (server/auth.c) without a server:
 * which key a header carries, the token bucket on a fake clock, addresses (IPv4, IPv6 /64, v4-mapped), the
 * table's fixed size, and salts that separate tenants but not one tenant's requests. */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base.h"
#include "server/auth.h"

static auth_addr v4(const char *ip) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    auth_addr a;
    auth_addr_of(&sa, &a);
    return a;
}

static auth_addr v6(const char *ip) {
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    auth_addr a;
    auth_addr_of(&sa, &a);
    return a;
}

TEST(keys) {
    qe_auth a;
    char err[QE_ERR_LEN];
    const char *keys[] = {"alpha-1", "beta-22", "alpha-1"};
    CHECK(auth_init(&a, keys, 3, err) == QE_OK);
    CHECK(auth_required(&a));
    CHECK_EQ_INT(auth_key_index(&a, "Bearer alpha-1"), 0); /* a repeated key is the first one */
    CHECK_EQ_INT(auth_key_index(&a, "bearer   beta-22"), 1);
    CHECK_EQ_INT(auth_key_index(&a, "Bearer beta-2"), -1);
    CHECK_EQ_INT(auth_key_index(&a, "Bearer beta-222"), -1);
    CHECK_EQ_INT(auth_key_index(&a, "Bearer "), -1);
    CHECK_EQ_INT(auth_key_index(&a, "Basic YWxwaGEtMQ=="), -1);
    CHECK_EQ_INT(auth_key_index(&a, "alpha-1"), -1);
    CHECK_EQ_INT(auth_key_index(&a, NULL), -1);
    auth_free(&a);
    const char *bad[] = {"ok", "has space"};
    CHECK(auth_init(&a, bad, 2, err) == QE_EINVAL);
    CHECK(strstr(err, "key 2 of 2") && !strstr(err, "has space")); /* named by position, never echoed */
    auth_free(&a);
    CHECK(auth_init(&a, NULL, 0, err) == QE_OK);
    CHECK(!auth_required(&a));
    auth_free(&a);
}

TEST(throttle_bucket) {
    qe_auth a;
    char err[QE_ERR_LEN];
    const char *keys[] = {"k"};
    CHECK(auth_init(&a, keys, 1, err) == QE_OK);
    auth_addr x = v4("10.0.0.1"), y = v4("10.0.0.2");
    double t = 1000;
    for (int i = 0; i < AUTH_BURST; i++) {
        CHECK(auth_throttle_wait(&a, &x, t) == 0);
        auth_throttle_fail(&a, &x, t);
    }
    double w = auth_throttle_wait(&a, &x, t);
    CHECKF(w > 0 && w <= AUTH_REFILL_S, "wait %g", w);
    CHECK(auth_throttle_wait(&a, &y, t) == 0); /* another address is not held back */
    CHECK(auth_throttle_wait(&a, &x, t + AUTH_REFILL_S * 0.5) > 0);
    CHECK(auth_throttle_wait(&a, &x, t + AUTH_REFILL_S) == 0); /* one more try after the refill time */
    auth_throttle_fail(&a, &x, t + AUTH_REFILL_S);
    CHECK(auth_throttle_wait(&a, &x, t + AUTH_REFILL_S) > 0);
    /* a sustained guesser gets one try per AUTH_REFILL_S */
    int tries = 0;
    for (double now = t + AUTH_REFILL_S; now < t + AUTH_REFILL_S + 300; now += 0.1)
        if (auth_throttle_wait(&a, &x, now) == 0) { auth_throttle_fail(&a, &x, now); tries++; }
    CHECKF(tries >= 300 / AUTH_REFILL_S - 2 && tries <= 300 / AUTH_REFILL_S + 1, "%d tries in 300 s", tries);
    /* after a long quiet time the whole burst is back */
    double later = t + 10000;
    for (int i = 0; i < AUTH_BURST; i++) {
        CHECK(auth_throttle_wait(&a, &x, later) == 0);
        auth_throttle_fail(&a, &x, later);
    }
    CHECK(auth_throttle_wait(&a, &x, later) > 0);
    auth_free(&a);
}

TEST(throttle_addresses_and_bounded_table) {
    qe_auth a;
    char err[QE_ERR_LEN];
    const char *keys[] = {"k"};
    CHECK(auth_init(&a, keys, 1, err) == QE_OK);
    /* one IPv6 /64 is one client; v4-mapped IPv6 is the IPv4 client */
    auth_addr p = v6("2001:db8:1:2::1"), q = v6("2001:db8:1:2:ffff::9"), r = v6("2001:db8:1:3::1");
    CHECK(!memcmp(&p, &q, sizeof p));
    CHECK(memcmp(&p, &r, sizeof p) != 0);
    auth_addr m = v6("::ffff:192.0.2.7"), n = v4("192.0.2.7");
    CHECK(!memcmp(&m, &n, sizeof m));
    for (int i = 0; i < AUTH_BURST; i++) auth_throttle_fail(&a, &q, 1.0);
    CHECK(auth_throttle_wait(&a, &p, 1.0) > 0);
    CHECK(auth_throttle_wait(&a, &r, 1.0) == 0);
    /* more addresses than entries: the table stays AUTH_IPS big, the newest failures are remembered */
    char ip[32];
    for (int i = 0; i < AUTH_IPS * 3; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.1", i / 256, i % 256);
        auth_addr z = v4(ip);
        for (int k = 0; k < AUTH_BURST; k++) auth_throttle_fail(&a, &z, 2.0 + i * 1e-3);
    }
    snprintf(ip, sizeof ip, "10.%d.%d.1", (AUTH_IPS * 3 - 1) / 256, (AUTH_IPS * 3 - 1) % 256);
    auth_addr last = v4(ip);
    CHECK(auth_throttle_wait(&a, &last, 2.0 + AUTH_IPS * 3 * 1e-3) > 0);
    auth_free(&a);
}

TEST(cache_salts) {
    qe_auth a, b;
    char err[QE_ERR_LEN];
    CHECK(auth_init(&a, NULL, 0, err) == QE_OK);
    CHECK(auth_cache_salt(&a, -1, NULL, 0) == 0); /* single user, no salt: everything shared as before */
    uint64_t s1 = auth_cache_salt(&a, -1, "alice", 5);
    CHECK(s1 != 0);
    CHECK(s1 == auth_cache_salt(&a, -1, "alice", 5));
    CHECK(s1 != auth_cache_salt(&a, -1, "alicf", 5));
    auth_free(&a);
    const char *one[] = {"k1"};
    CHECK(auth_init(&a, one, 1, err) == QE_OK);
    CHECK(auth_cache_salt(&a, 0, NULL, 0) == 0); /* one key: one tenant */
    auth_free(&a);
    const char *two[] = {"k1", "k2"};
    CHECK(auth_init(&a, two, 2, err) == QE_OK);
    CHECK(auth_init(&b, two, 2, err) == QE_OK);
    uint64_t k0 = auth_cache_salt(&a, 0, NULL, 0), k1 = auth_cache_salt(&a, 1, NULL, 0);
    CHECK(k0 != 0 && k1 != 0 && k0 != k1); /* two tenants never share */
    CHECK(k0 == auth_cache_salt(&a, 0, "", 0));
    CHECK(auth_cache_salt(&a, 0, "x", 1) != auth_cache_salt(&a, 1, "x", 1));
    CHECK(auth_cache_salt(&a, 0, "x", 1) != k0);
    CHECK(k0 != auth_cache_salt(&b, 0, NULL, 0)); /* keyed with a secret of each start: not predictable */
    auth_free(&a);
    auth_free(&b);
}

int main(void) {
    RUN(keys);
    RUN(throttle_bucket);
    RUN(throttle_addresses_and_bounded_table);
    RUN(cache_salts);
    return TEST_DONE();
}
