/* test_parse.c — the server's typed request fields (src/server/parse.c): numbers outside a field's range,
 * including reals outside int64 (1e300, -1e300, 1e19, 2^63) that must be refused BEFORE any cast to an
 * integer (undefined behaviour in C), and token-id arrays that must never be silently shortened. */
#include "test.h"

#include <sys/resource.h>

#include "server/internal.h"

static json_t *obj(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fprintf(stderr, "bad test JSON %s: %s\n", text, je.text);
    return j;
}

TEST(int_fields_refuse_reals_outside_the_range_with_the_range) {
    static const char *const bodies[] = {
        "{\"k\": 1e300}", "{\"k\": -1e300}", "{\"k\": 1e19}", "{\"k\": -1e19}", "{\"k\": 9223372036854775808.0}",
        "{\"k\": 9.3e18}", "{\"k\": 1e308}", "{\"k\": 2000000000.0}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *j = obj(bodies[i]);
        api_error e = {0};
        int64_t x = 7;
        CHECK_EQ_INT(get_int(j, "k", 1, 1 << 30, &x, &e), -1);
        CHECK_EQ_INT(e.status, 400);
        CHECK_STR(e.param, "k");
        CHECKF(strstr(e.message, "'k' must be an integer between 1 and 1073741824"), "%s: %s", bodies[i], e.message);
        CHECK_EQ_INT(x, 7);
        json_decref(j);
    }
}

TEST(int64_fields_refuse_reals_beyond_int64) {
    static const char *const bodies[] = {"{\"seed\": 1e19}", "{\"seed\": 9223372036854775808.0}",
                                         "{\"seed\": -1e300}", "{\"seed\": -9223372036854777856.0}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *j = obj(bodies[i]);
        api_error e = {0};
        int64_t x = 7;
        CHECK_EQ_INT(get_int(j, "seed", INT64_MIN, INT64_MAX, &x, &e), -1);
        CHECKF(strstr(e.message, "'seed' must be an integer between -9223372036854775808 and 9223372036854775807"),
               "%s: %s", bodies[i], e.message);
        json_decref(j);
    }
    /* the ends themselves: -2^63 is an int64, a real with a fraction is not an integer */
    json_t *j = obj("{\"seed\": -9223372036854775808.0, \"f\": 2.5, \"ok\": 12.0}");
    api_error e = {0};
    int64_t x = 0;
    CHECK_EQ_INT(get_int(j, "seed", INT64_MIN, INT64_MAX, &x, &e), 1);
    CHECK(x == INT64_MIN);
    CHECK_EQ_INT(get_int(j, "f", 0, 10, &x, &e), -1);
    CHECKF(strstr(e.message, "'f' must be an integer"), "%s", e.message);
    CHECK_EQ_INT(get_int(j, "ok", 0, 100, &x, &e), 1);
    CHECK_EQ_INT(x, 12);
    json_decref(j);
}

TEST(num_fields_name_the_range) {
    json_t *j = obj("{\"temperature\": 1e300, \"top_p\": -1e300}");
    api_error e = {0};
    double x = 0;
    CHECK_EQ_INT(get_num(j, "temperature", 0, 2, &x, &e), -1);
    CHECKF(strstr(e.message, "'temperature' must be between 0 and 2"), "%s", e.message);
    CHECK_EQ_INT(get_num(j, "top_p", 0, 1, &x, &e), -1);
    CHECKF(strstr(e.message, "'top_p' must be between 0 and 1"), "%s", e.message);
    json_decref(j);
}

TEST(token_ids_are_checked) {
    json_t *j = obj("[1, 2, 99]");
    qe_ids ids = {0};
    api_error e = {0};
    CHECK_EQ_INT(get_ids(j, "prompt", 50, &ids, &e), -1);
    CHECK_EQ_INT(e.status, 400);
    CHECKF(strstr(e.message, "prompt[2] must be a token id in [0, 50)"), "%s", e.message);
    qe_ids_free(&ids);
    json_decref(j);
}

/* A failed append (out of memory) must be an error, never a shorter prompt: the address space is capped just
 * above what the process uses, so growing the id array fails part-way through a 3M-id array. */
TEST(token_ids_out_of_memory_is_a_500_not_a_shorter_prompt) {
    enum { N = 3000000 };
    json_t *arr = json_array();
    for (int i = 0; i < N; i++) json_array_append_new(arr, json_integer(i % 1000));
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1) { if (f) fclose(f); json_decref(arr); printf("  (no /proc: skipped)\n"); return; }
    fclose(f);
    struct rlimit old, lim;
    getrlimit(RLIMIT_AS, &old);
    lim = old;
    lim.rlim_cur = pages * 4096ul + (4ul << 20); /* room for ~1M ids, not 3M */
    if (setrlimit(RLIMIT_AS, &lim)) { json_decref(arr); printf("  (setrlimit failed: skipped)\n"); return; }
    qe_ids ids = {0};
    api_error e = {0};
    int rc = get_ids(arr, "prompt", 1000, &ids, &e);
    setrlimit(RLIMIT_AS, &old);
    CHECKF(rc == -1 && e.status == 500, "rc %d status %d, %zu of %d ids", rc, e.status, ids.n, N);
    CHECK(ids.n < N);
    qe_ids_free(&ids);
    json_decref(arr);
}

int main(void) {
    RUN(int_fields_refuse_reals_outside_the_range_with_the_range);
    RUN(int64_fields_refuse_reals_beyond_int64);
    RUN(num_fields_name_the_range);
    RUN(token_ids_are_checked);
    RUN(token_ids_out_of_memory_is_a_500_not_a_shorter_prompt);
    return TEST_DONE();
}
