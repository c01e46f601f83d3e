/* test.h — the tiny unit-test harness: TEST(name) functions registered by RUN(name) in main, CHECK macros
 * that count failures without stopping, and a closing line "<file>: N passed, N failed" that tests/run.sh
 * adds up. A test that fails prints the expression, file and line. */
#pragma once
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int t_failed_checks;
static int t_passed, t_failed;

/* Only the first few failures of a run are printed: a check inside a loop must not flood the log. */
#define T_MAX_PRINTED 8
#define CHECK(c) do { if (!(c)) { if (t_failed_checks++ < T_MAX_PRINTED) \
    fprintf(stderr, "  CHECK failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); } } while (0)
#define CHECKF(c, ...) do { if (!(c)) { if (t_failed_checks++ < T_MAX_PRINTED) { \
    fprintf(stderr, "  CHECK failed: %s (%s:%d): ", #c, __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    CHECKF(_a == _b, "%lld != %lld", _a, _b); } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
    CHECKF(_a && _b && strcmp(_a, _b) == 0, "\"%s\" != \"%s\"", _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name) do { int _before = t_failed_checks; test_##name(); \
    if (t_failed_checks == _before) { t_passed++; printf("ok - %s\n", #name); } \
    else { t_failed++; printf("not ok - %s\n", #name); } fflush(stdout); } while (0)
#define TEST_DONE() (printf("%s: %d passed, %d failed\n", __FILE__, t_passed, t_failed), t_failed ? 1 : 0)

/* Temporary directory for files a test writes (under build/tests/tmp), created on demand. */
static inline const char *test_tmpdir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *b = getenv("QE_TEST_TMP");
        snprintf(dir, sizeof dir, "%s", b ? b : "build/tests/tmp");
        char p[512]; /* mkdir -p, one level at a time */
        snprintf(p, sizeof p, "%s", dir);
        for (char *c = p + 1;; c++) {
            if (*c != '/' && *c) continue;
            char keep = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) { fprintf(stderr, "cannot create %s\n", p); break; }
            if (!(*c = keep)) break;
        }
    }
    return dir;
}
