/* sampler.h — turns a row of logits into the next token: penalties, temperature, top-k, top-p, min-p, and a
 * seeded RNG. Defaults are Qwen2.5-Instruct's generation_config.json. No allocation per token: a sampler
 * owns its scratch, sized once for the vocabulary. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct qe_sample_params {
    float temperature;       /* <= 0: greedy (argmax) */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off. Hugging Face rule: logit > 0 ? logit / p : logit * p, over the prompt and output */
    float presence_penalty;  /* OpenAI rule: logit -= presence * (count > 0) + frequency * count, over the output */
    float frequency_penalty;
    int penalty_last_n;      /* tokens the penalties look back over; <= 0: the whole sequence */
    uint64_t seed;           /* the RNG seed (a fixed seed gives the same output for the same request) */
} qe_sample_params;

/* The accepted range of each parameter: the OpenAI API's (src/server/api_openai.c spells the same numbers;
 * ollama's /api routes allow a temperature up to 100 for its clients' sake). The CLI checks its options
 * against these, so `--temp 5` is refused as the API refuses "temperature": 5. */
#define QE_TEMP_MIN 0.0
#define QE_TEMP_MAX 2.0
#define QE_TOP_P_MIN 0.0
#define QE_TOP_P_MAX 1.0
#define QE_TOP_K_MAX (1 << 30) /* 0 = off */
#define QE_MIN_P_MIN 0.0
#define QE_MIN_P_MAX 1.0
#define QE_REPEAT_PENALTY_MIN 0.01
#define QE_REPEAT_PENALTY_MAX 10.0
#define QE_MAX_TOKENS_MAX (1 << 30) /* answer length: 1 .. this (and the context) */

/* Qwen2.5-Instruct's defaults: temperature 0.7, top_p 0.8, top_k 20, repetition penalty 1.1 (whole sequence),
 * no presence / frequency penalty, min_p 0, random seed. */
void qe_sample_params_default(qe_sample_params *p);
/* Greedy with no penalties (parity tests, --temp 0). */
void qe_sample_params_greedy(qe_sample_params *p);

typedef struct qe_sampler qe_sampler;
qe_sampler *qe_sampler_new(int n_vocab);
void qe_sampler_free(qe_sampler *s);
/* Starts a new sequence: sets params and reseeds, clears history. */
void qe_sampler_reset(qe_sampler *s, const qe_sample_params *p);
/* Records a token of the sequence (prompt tokens with is_output=false, generated ones with true) for penalties. */
void qe_sampler_accept(qe_sampler *s, int32_t token, bool is_output);
/* Picks the next token. logits are modified in place (penalties, temperature). */
int32_t qe_sampler_sample(qe_sampler *s, float *logits);
/* The same, among the tokens whose bit is set in allow (token_mask.h's bitset: bit t & 31 of word t >> 5; the
 * others get -inf before anything else runs, so penalties and top-k/top-p see only legal tokens). An empty
 * mask is the caller's bug: the result is then the plain argmax. */
int32_t qe_sampler_sample_masked(qe_sampler *s, float *logits, const uint32_t *allow);

int32_t qe_argmax(const float *x, int n);
