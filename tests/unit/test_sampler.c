/* test_sampler.c — the sampler's rules: greedy, top-k/top-p/min-p cut-offs, temperature, penalties (Hugging
 * Face's repetition rule, OpenAI's presence/frequency), seeded repeatability, and the measured distribution. */
#include "test.h"

#include "base.h"
#include "sampler.h"

#define NV 1000

static void fill(float *l, float base) { for (int i = 0; i < NV; i++) l[i] = base - (float)i * 0.001f; }

TEST(greedy_is_argmax) {
    qe_sampler *s = qe_sampler_new(NV);
    qe_sample_params p;
    qe_sample_params_greedy(&p);
    qe_sampler_reset(s, &p);
    float l[NV];
    fill(l, 0);
    l[637] = 5;
    CHECK_EQ_INT(qe_sampler_sample(s, l), 637);
    qe_sampler_free(s);
}

TEST(top_k_1_is_argmax_at_any_temperature) {
    qe_sampler *s = qe_sampler_new(NV);
    qe_sample_params p;
    qe_sample_params_default(&p);
    p.top_k = 1;
    p.temperature = 5;
    p.repeat_penalty = 1;
    for (int seed = 0; seed < 50; seed++) {
        p.seed = (uint64_t)seed;
        qe_sampler_reset(s, &p);
        float l[NV];
        fill(l, 0);
        l[3] = 0.5f;
        CHECK_EQ_INT(qe_sampler_sample(s, l), 3);
    }
    qe_sampler_free(s);
}

/* Two candidates with logits 0 and ln 3 at temperature 1: the second must come 75 % of the time. */
TEST(distribution_matches_softmax) {
    qe_sampler *s = qe_sampler_new(NV);
    qe_sample_params p = {.temperature = 1, .top_k = 2, .top_p = 1, .repeat_penalty = 1, .seed = 42};
    qe_sampler_reset(s, &p);
    int hits = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        float l[NV];
        for (int j = 0; j < NV; j++) l[j] = -100;
        l[10] = 0;
        l[20] = logf(3);
        int32_t t = qe_sampler_sample(s, l);
        CHECK(t == 10 || t == 20);
        hits += t == 20;
    }
    /* binomial sd = sqrt(n p (1-p)) ≈ 61; allow 5 sd */
    CHECKF(abs(hits - 15000) < 310, "%d of %d", hits, n);
    qe_sampler_free(s);
}

TEST(top_p_keeps_the_smallest_nucleus) {
    qe_sampler *s = qe_sampler_new(NV);
    /* probabilities 0.5, 0.3, 0.2: top_p 0.75 keeps the first two, never the third */
    qe_sample_params p = {.temperature = 1, .top_k = 0, .top_p = 0.75f, .repeat_penalty = 1, .seed = 7};
    qe_sampler_reset(s, &p);
    int seen[3] = {0};
    for (int i = 0; i < 3000; i++) {
        float l[NV];
        for (int j = 0; j < NV; j++) l[j] = -1e9f;
        l[100] = logf(0.5f); l[200] = logf(0.3f); l[300] = logf(0.2f);
        int32_t t = qe_sampler_sample(s, l);
        seen[t == 100 ? 0 : t == 200 ? 1 : 2]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0);
    CHECK_EQ_INT(seen[2], 0);
    qe_sampler_free(s);
}

TEST(min_p_drops_unlikely_tokens) {
    qe_sampler *s = qe_sampler_new(NV);
    qe_sample_params p = {.temperature = 1, .top_k = 0, .top_p = 1, .min_p = 0.6f, .repeat_penalty = 1, .seed = 9};
    qe_sampler_reset(s, &p);
    for (int i = 0; i < 2000; i++) {
        float l[NV];
        for (int j = 0; j < NV; j++) l[j] = -1e9f;
        l[1] = logf(0.6f); l[2] = logf(0.35f); l[3] = logf(0.05f); /* 0.35 < 0.6 * 0.6 is dropped too */
        CHECK_EQ_INT(qe_sampler_sample(s, l), 1);
    }
    qe_sampler_free(s);
}

TEST(same_seed_same_sequence) {
    qe_sampler *a = qe_sampler_new(NV), *b = qe_sampler_new(NV);
    qe_sample_params p;
    qe_sample_params_default(&p);
    p.seed = 1234;
    qe_sampler_reset(a, &p);
    qe_sampler_reset(b, &p);
    int same = 1, distinct = 0, prev = -1;
    for (int i = 0; i < 200; i++) {
        float l1[NV], l2[NV];
        for (int j = 0; j < NV; j++) l1[j] = l2[j] = (float)((j * 7919 + i * 31) % 97) * 0.05f;
        int32_t x = qe_sampler_sample(a, l1), y = qe_sampler_sample(b, l2);
        qe_sampler_accept(a, x, true);
        qe_sampler_accept(b, y, true);
        same &= x == y;
        distinct += x != prev;
        prev = x;
    }
    CHECK(same);
    CHECK(distinct > 20); /* it is really sampling, not stuck */
    qe_sampler_free(a);
    qe_sampler_free(b);
}

TEST(repetition_penalty_hf_rule) {
    qe_sampler *s = qe_sampler_new(NV);
    qe_sample_params p = {.temperature = 0, .top_p = 1, .repeat_penalty = 2.0f};
    qe_sampler_reset(s, &p);
    qe_sampler_accept(s, 5, false); /* the prompt counts too */
    qe_sampler_accept(s, 6, true);
    qe_sampler_accept(s, 6, true);  /* penalised once, not twice */
    float l[NV];
    for (int j = 0; j < NV; j++) l[j] = -50;
    l[5] = 4.0f;  /* -> 2.0 */
    l[6] = -1.0f; /* -> -2.0 */
    l[7] = 3.0f;  /* untouched: wins */
    CHECK_EQ_INT(qe_sampler_sample(s, l), 7);
    CHECK(fabsf(l[5] - 2.0f) < 1e-6f);
    CHECK(fabsf(l[6] + 2.0f) < 1e-6f);
    qe_sampler_free(s);
}

TEST(presence_and_frequency_penalties_count_output_only) {
    qe_sampler *s = qe_sampler_new(NV);
    qe_sample_params p = {.temperature = 0, .top_p = 1, .repeat_penalty = 1, .presence_penalty = 0.5f,
                          .frequency_penalty = 0.25f};
    qe_sampler_reset(s, &p);
    qe_sampler_accept(s, 8, false);
    qe_sampler_accept(s, 9, true);
    qe_sampler_accept(s, 9, true);
    float l[NV];
    for (int j = 0; j < NV; j++) l[j] = 0;
    qe_sampler_sample(s, l);
    CHECK(fabsf(l[8]) < 1e-6f);                /* prompt tokens: no presence/frequency penalty */
    CHECK(fabsf(l[9] - (-0.5f - 0.5f)) < 1e-6f); /* 0.5 + 0.25 * 2 */
    qe_sampler_free(s);
}

TEST(full_vocab_sampling_is_fast) {
    /* not a timing assertion: prints the cost so regressions show in the log */
    int nv = 151936;
    qe_sampler *s = qe_sampler_new(nv);
    qe_sample_params p;
    qe_sample_params_default(&p);
    p.seed = 1;
    qe_sampler_reset(s, &p);
    float *l = malloc(sizeof(float) * nv);
    uint64_t x = 88172645463325252ull;
    double spent = 0;
    int n = 200;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nv; j++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; l[j] = (float)(x >> 40) * 1e-6f; }
        double t0 = qe_now();
        int32_t tok = qe_sampler_sample(s, l);
        spent += qe_now() - t0;
        CHECK(tok >= 0 && tok < nv);
    }
    printf("  sampling 151936 logits (top-k 20, top-p 0.8): %.3f ms per token\n", spent / n * 1e3);
    free(l);
    qe_sampler_free(s);
}

/* Until 2026-12 a top_k above the vocabulary silently became 256: with 1000 equally likely tokens at most 256
 * distinct ones could ever come out. Now it means no top-k (as llama.cpp treats top_k >= n_vocab). */
TEST(top_k_above_vocab_means_no_limit) {
    int ks[] = {NV, NV + 1, 1 << 30};
    for (int t = 0; t < 3; t++) {
        qe_sampler *s = qe_sampler_new(NV);
        qe_sample_params p = {.temperature = 1, .top_k = ks[t], .top_p = 1, .repeat_penalty = 1, .seed = 5};
        qe_sampler_reset(s, &p);
        static char seen[NV];
        memset(seen, 0, sizeof seen);
        int distinct = 0;
        for (int i = 0; i < 8000; i++) {
            float l[NV];
            for (int j = 0; j < NV; j++) l[j] = 0;
            int32_t tok = qe_sampler_sample(s, l);
            if (tok >= 0 && tok < NV && !seen[tok]) { seen[tok] = 1; distinct++; }
        }
        CHECKF(distinct > 900, "top_k %d: %d distinct tokens of %d", ks[t], distinct, NV);
        qe_sampler_free(s);
    }
}

/* The sorted reference the sampler used before 2026-12 for top-k off (full sort, expf, top-p prefix, min-p,
 * one draw down the cumulative mass) with the sampler's RNG: the unsorted path must give the same token for
 * the same seed whenever at most 256 tokens survive, and the same distribution otherwise. */
typedef struct { float v; int32_t id; } ref_cand;
static int ref_cmp(const void *a, const void *b) {
    float x = ((const ref_cand *)a)->v, y = ((const ref_cand *)b)->v;
    return (x < y) - (x > y);
}
static uint64_t ref_splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Fills prob[] with the reference's final probabilities (0 outside the kept set); returns the token a draw
 * with RNG state *rng gives. */
static int32_t ref_sample(const float *l, int n, float temp, float top_p, float min_p, uint64_t *rng, double *prob) {
    ref_cand *c = malloc(sizeof *c * (size_t)n);
    for (int i = 0; i < n; i++) c[i] = (ref_cand){l[i], i};
    qsort(c, (size_t)n, sizeof *c, ref_cmp);
    float mx = c[0].v, inv_t = 1.0f / temp;
    double sum = 0;
    int m = n;
    for (int i = 0; i < m; i++) { c[i].v = expf((c[i].v - mx) * inv_t); sum += c[i].v; }
    if (top_p < 1) {
        double cum = 0, target = top_p * sum;
        for (int i = 0; i < m; i++) { cum += c[i].v; if (cum >= target) { m = i + 1; break; } }
    }
    if (min_p > 0) { int k = 1; while (k < m && c[k].v >= min_p * c[0].v) k++; m = k; }
    sum = 0;
    for (int i = 0; i < m; i++) sum += c[i].v;
    if (prob) { for (int i = 0; i < n; i++) prob[i] = 0; for (int i = 0; i < m; i++) prob[c[i].id] = c[i].v / sum; }
    double r = (float)((ref_splitmix(rng) >> 40) * (1.0 / 16777216.0)) * sum, acc = 0;
    int32_t tok = c[m - 1].id;
    for (int i = 0; i < m; i++) { acc += c[i].v; if (r < acc) { tok = c[i].id; break; } }
    free(c);
    return tok;
}
static float gauss(uint64_t *x) {
    double u1 = ((ref_splitmix(x) >> 11) + 0.5) / 9007199254740992.0, u2 = (ref_splitmix(x) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

TEST(unsorted_path_same_token_as_the_sorted_reference) {
    int nv = 151936, same = 0, n = 300;
    float *l = malloc(sizeof(float) * nv), *row = malloc(sizeof(float) * nv);
    qe_sampler *s = qe_sampler_new(nv);
    uint64_t g = 3;
    for (int i = 0; i < nv; i++) l[i] = 2.0f * gauss(&g); /* a model-like row: a few hundred tokens matter */
    for (int i = 0; i < 8; i++) l[(i * 7919) % nv] = 12.0f + (float)i * 0.5f;
    for (int t = 0; t < n; t++) {
        float top_p = t % 3 == 0 ? 0.5f : t % 3 == 1 ? 0.9f : 1.0f, min_p = t % 3 == 2 ? 0.01f : 0.0f;
        qe_sample_params p = {.temperature = 0.7f, .top_k = 0, .top_p = top_p, .min_p = min_p, .repeat_penalty = 1,
                              .seed = (uint64_t)t * 77};
        qe_sampler_reset(s, &p);
        memcpy(row, l, sizeof(float) * nv);
        uint64_t rng = p.seed;
        same += qe_sampler_sample(s, row) == ref_sample(l, nv, 0.7f, top_p, min_p, &rng, NULL);
    }
    CHECKF(same == n, "%d of %d draws gave the reference's token", same, n);
    free(l); free(row);
    qe_sampler_free(s);
}

/* Many survivors (drawn in vocabulary order): the counts of 400,000 draws against the reference's
 * probabilities, by a chi-square over the 1000 tokens (df 999: mean 999, sd 45; 1350 is ~8 sd). */
TEST(unsorted_path_draws_the_reference_distribution) {
    float top_ps[] = {1.0f, 0.9f};
    for (int t = 0; t < 2; t++) {
        qe_sampler *s = qe_sampler_new(NV);
        qe_sample_params p = {.temperature = 1, .top_k = 0, .top_p = top_ps[t], .repeat_penalty = 1, .seed = 11};
        qe_sampler_reset(s, &p);
        float l[NV], row[NV];
        uint64_t g = 17;
        for (int j = 0; j < NV; j++) l[j] = 0.7f * gauss(&g);
        static double prob[NV];
        uint64_t rng = 1;
        ref_sample(l, NV, 1, top_ps[t], 0, &rng, prob);
        static int count[NV];
        memset(count, 0, sizeof count);
        int n = 400000, outside = 0;
        for (int i = 0; i < n; i++) {
            memcpy(row, l, sizeof row);
            int32_t tok = qe_sampler_sample(s, row);
            count[tok]++;
            outside += prob[tok] == 0;
        }
        double chi = 0;
        int df = -1;
        for (int j = 0; j < NV; j++)
            if (prob[j] > 0) { double e = prob[j] * n; chi += (count[j] - e) * (count[j] - e) / e; df++; }
        CHECKF(outside == 0, "top_p %g: %d draws outside the nucleus", top_ps[t], outside);
        CHECKF(chi < df + 8 * sqrt(2.0 * df), "top_p %g: chi-square %.0f with %d degrees of freedom", top_ps[t], chi, df);
        qe_sampler_free(s);
    }
}

/* The rejection sampler's hard rows (top-k off): every 16-token block holds one spike far above the rest (so
 * each block's bound is loose by ~16x), a run of -inf tokens (a grammar mask or a large top-k) and a last block
 * of 8 (1000 = 62 * 16 + 8). Counts of 300,000 draws against the reference's probabilities by chi-square, for
 * top_p 1 (no cut) and 0.95 (a cut with more than 256 survivors), at temperature 0.7. */
TEST(unsorted_rejection_draws_the_reference_distribution_on_spiky_rows) {
    float top_ps[] = {1.0f, 0.95f};
    for (int t = 0; t < 2; t++) {
        qe_sampler *s = qe_sampler_new(NV);
        qe_sample_params p = {.temperature = 0.7f, .top_k = 0, .top_p = top_ps[t], .repeat_penalty = 1, .seed = 23};
        qe_sampler_reset(s, &p);
        float l[NV], row[NV];
        uint64_t g = 29;
        for (int j = 0; j < NV; j++) l[j] = j % 16 == 5 ? 2.0f + 0.3f * gauss(&g) : -1.5f + 0.3f * gauss(&g);
        for (int j = 320; j < 400; j++) l[j] = -INFINITY;
        l[997] = 2.5f; /* the short last block holds a likely token */
        static double prob[NV];
        uint64_t rng = 1;
        ref_sample(l, NV, 0.7f, top_ps[t], 0, &rng, prob);
        static int count[NV];
        memset(count, 0, sizeof count);
        int n = 300000, outside = 0, kept = 0;
        for (int j = 0; j < NV; j++) kept += prob[j] > 0;
        for (int i = 0; i < n; i++) {
            memcpy(row, l, sizeof row);
            int32_t tok = qe_sampler_sample(s, row);
            count[tok]++;
            outside += prob[tok] == 0;
        }
        double chi = 0;
        int df = -1;
        for (int j = 0; j < NV; j++)
            if (prob[j] > 0) { double e = prob[j] * n; chi += (count[j] - e) * (count[j] - e) / e; df++; }
        CHECKF(kept > 256, "top_p %g: %d survivors, the test wants the unsorted draw", top_ps[t], kept);
        CHECKF(outside == 0, "top_p %g: %d draws outside the nucleus", top_ps[t], outside);
        CHECKF(chi < df + 8 * sqrt(2.0 * df), "top_p %g: chi-square %.0f with %d degrees of freedom", top_ps[t], chi, df);
        qe_sampler_free(s);
    }
}

/* top_k 0 used to sort all 151,936 logits every token (≈ 15 ms on a quiet core, 90 ms on this shared one);
 * now one vectorised pass and a radix select. The bound is loose (the machine may be busy): it catches a sort. */
TEST(top_k_off_does_not_sort_the_vocabulary) {
    int nv = 151936;
    qe_sampler *s = qe_sampler_new(nv);
    float *l = malloc(sizeof(float) * nv), *row = malloc(sizeof(float) * nv);
    uint64_t x = 88172645463325252ull;
    for (int j = 0; j < nv; j++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; l[j] = (float)(x >> 40) * (16.0f / 16777216.0f); }
    float top_ps[] = {1.0f, 0.9f};
    for (int t = 0; t < 2; t++) {
        qe_sample_params p = {.temperature = 0.7f, .top_k = 0, .top_p = top_ps[t], .repeat_penalty = 1, .seed = 1};
        qe_sampler_reset(s, &p);
        double best = 1e9;
        for (int i = 0; i < 15; i++) {
            memcpy(row, l, sizeof(float) * nv);
            double t0 = qe_now();
            int32_t tok = qe_sampler_sample(s, row);
            double ms = (qe_now() - t0) * 1e3;
            best = ms < best ? ms : best;
            CHECK(tok >= 0 && tok < nv);
        }
        printf("  sampling 151936 uniform logits (top-k 0, top-p %g): %.3f ms per token (best of 15)\n", top_ps[t], best);
        CHECKF(best < 5.0, "top_p %g: %.2f ms", top_ps[t], best);
    }
    free(l); free(row);
    qe_sampler_free(s);
}

int main(void) {
    RUN(greedy_is_argmax);
    RUN(top_k_1_is_argmax_at_any_temperature);
    RUN(distribution_matches_softmax);
    RUN(top_p_keeps_the_smallest_nucleus);
    RUN(min_p_drops_unlikely_tokens);
    RUN(same_seed_same_sequence);
    RUN(repetition_penalty_hf_rule);
    RUN(presence_and_frequency_penalties_count_output_only);
    RUN(full_vocab_sampling_is_fast);
    RUN(top_k_above_vocab_means_no_limit);
    RUN(unsorted_path_same_token_as_the_sorted_reference);
    RUN(unsorted_path_draws_the_reference_distribution);
    RUN(unsorted_rejection_draws_the_reference_distribution_on_spiky_rows);
    RUN(top_k_off_does_not_sort_the_vocabulary);
    return TEST_DONE();
}
