/* bench/sampler.c — milliseconds per token of qe_sampler_sample on a row of the real vocabulary size
 * (151,936 logits), for the cases where top-k is off: top_k 0 / top_p 1 and top_k 0 / top_p 0.9 (plus
 * Qwen's defaults for scale), temperature 0.7, no penalties. Two rows: uniform random logits in [0, 16) (mass
 * spread over the whole vocabulary: the worst case) and a peaked row like a model's (normal, sd 3).
 * Each figure is the median over 101 draws, each on a fresh copy of the row (the copy is not timed).
 *   make build/bench/sampler && build/bench/sampler [--vocab N]
 * Link it against an older build/libqwen.a to compare (see bench/RESULTS.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "sampler.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ms(const float *logits, int n, int top_k, float top_p) {
    enum { DRAWS = 101 };
    qe_sampler *s = qe_sampler_new(n);
    float *row = malloc(sizeof(float) * (size_t)n);
    if (!s || !row) { qe_sampler_free(s); free(row); return -1; }
    qe_sample_params p = {.temperature = 0.7f, .top_k = top_k, .top_p = top_p, .repeat_penalty = 1, .seed = 42};
    qe_sampler_reset(s, &p);
    double ms[DRAWS];
    for (int d = 0; d < DRAWS; d++) {
        memcpy(row, logits, sizeof(float) * (size_t)n);
        double t = qe_now();
        volatile int32_t tok = qe_sampler_sample(s, row);
        ms[d] = (qe_now() - t) * 1e3;
        (void)tok;
    }
    qsort(ms, DRAWS, sizeof(double), cmp_double);
    qe_sampler_free(s);
    free(row);
    return ms[DRAWS / 2];
}

int main(int argc, char **argv) {
    int n = 151936;
    if (argc == 3 && !strcmp(argv[1], "--vocab")) n = atoi(argv[2]);
    if (n < 64) { fprintf(stderr, "usage: sampler [--vocab N >= 64]\n"); return 2; }
    float *uni = malloc(sizeof(float) * (size_t)n), *peak = malloc(sizeof(float) * (size_t)n);
    if (!uni || !peak) return 1;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uni[i] = (float)(x >> 40) * (16.0f / 16777216.0f);
        double u1 = ((x >> 11) + 0.5) / 9007199254740992.0;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        double u2 = (x >> 11) / 9007199254740992.0;
        peak[i] = (float)(3.0 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
    static const struct { const char *name; int top_k; float top_p; } cases[] = {
        {"top_k 0, top_p 1  ", 0, 1.0f}, {"top_k 0, top_p 0.9", 0, 0.9f}, {"top_k 20, top_p 0.8", 20, 0.8f}};
    printf("vocab %d, temperature 0.7, ms per token (median of 101)\n", n);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        printf("  %-20s uniform %8.4f   peaked %8.4f\n", cases[c].name, median_ms(uni, n, cases[c].top_k, cases[c].top_p),
               median_ms(peak, n, cases[c].top_k, cases[c].top_p));
    free(uni);
    free(peak);
    return 0;
}
