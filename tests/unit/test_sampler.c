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
    return TEST_DONE();
}
