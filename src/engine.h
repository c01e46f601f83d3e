/* engine.h — the one inference loop that serves many requests at once (continuous batching).
 *
 * One engine thread owns the model, the KV cache and the slots; nothing else touches them. Callers (HTTP
 * threads, the terminal chat) submit a job and read its events from a per-job queue:
 *
 *     qe_job *job; qe_engine_submit(eng, &params, &job, err);
 *     qe_event ev; while (qe_job_next(job, &ev, -1) == QE_OK && ev.kind == QE_EV_TOKEN) { ...ev.token... }
 *     qe_job_release(job);
 *
 * Each step the loop runs one forward pass over a batch made of one token for every generating slot plus
 * chunks of waiting prompts, so decode steps of all users read the weights once together. A job's slot is
 * chosen by the longest common prefix of its prompt with the slot's cached tokens (else least recently
 * used), counted only between jobs of the same cache salt (see qe_job_params.cache_salt); a prompt whose
 * cached copy lost a span in the middle (the chat window dropped its oldest round) keeps the cached tail by
 * shifting its KV positions instead of recomputing it.
 *
 * Context: every slot has its own context of n_ctx tokens (prompt + answer). The KV cache is reserved for
 * n_parallel x n_ctx tokens but only the pages actually used become resident memory. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "model.h"
#include "sampler.h"
#include "token_mask.h"

typedef struct qe_engine qe_engine;
typedef struct qe_job qe_job;

typedef struct {
    int n_threads;   /* <= 0: physical cores */
    int n_ctx;       /* per slot; <= 0: 4096 (capped at the model's training context) */
    int n_parallel;  /* slots; <= 0: 4 */
    int n_batch;     /* max tokens in one forward pass; <= 0: 256 */
} qe_engine_opts;

typedef struct {
    const int32_t *prompt; /* copied by submit */
    int n_prompt;
    int max_tokens;        /* <= 0: until the context is full */
    qe_sample_params sample;
    bool ignore_eos;       /* benchmarks: do not stop on <|im_end|> / <|endoftext|> */
    /* Cache isolation (vLLM's cache_salt): a job reuses cached tokens only from a slot whose tokens were computed
     * for a job with the same salt. Reuse is observable (n_cached, time to first token), so without a salt one
     * user could test whether another user's prompt starts with a guessed text. 0 = no salt (shared). */
    uint64_t cache_salt;
    /* Constrained decoding (token_mask.h): NULL, or a compiled grammar that every generated token must follow.
     * A successful submit takes ownership (the job frees it; the engine thread alone uses it from then on); on
     * failure the caller still owns it. The job ends with QE_FINISH_STOP when the grammar is complete (its
     * end-of-generation token, or nothing else can follow), QE_FINISH_LENGTH if max_tokens cuts it short. */
    qe_grammar *grammar;
} qe_job_params;

typedef enum { QE_EV_TOKEN = 1, QE_EV_DONE = 2, QE_EV_ERROR = 3 } qe_event_kind;
typedef enum { QE_FINISH_STOP = 1, QE_FINISH_LENGTH = 2, QE_FINISH_CANCELED = 3 } qe_finish;

typedef struct {
    qe_event_kind kind;
    int32_t token;           /* QE_EV_TOKEN: the generated token (end-of-generation tokens are not sent) */
    /* QE_EV_DONE: */
    qe_finish finish;
    int n_prompt;            /* prompt tokens of the job */
    int n_cached;            /* of them, taken from the KV cache (not recomputed) */
    int n_gen;               /* tokens generated */
    double t_queue_ms;       /* submit -> slot */
    double t_prompt_ms;      /* slot -> first token (prefill) */
    double t_gen_ms;         /* first token -> done */
    /* QE_EV_ERROR (a failed forward pass, or no memory to queue a token: the job ends there): */
    char message[256];
} qe_event;

int qe_engine_new(qe_model *model, const qe_engine_opts *opts, qe_engine **out, char *err);
/* Stops the loop, cancels every job (their readers get QE_EV_DONE with QE_FINISH_CANCELED), frees. */
void qe_engine_free(qe_engine *e);
/* The vocabulary trie for constrained decoding, built on first call (~30-250 ms; thread-safe), shared read-only:
 * an HTTP thread may call qe_grammar_prepare(g, qe_engine_vocab(e, err), err) before submitting. NULL on error. */
const qe_vtrie *qe_engine_vocab(qe_engine *e, char *err);
int qe_engine_n_ctx(const qe_engine *e);

/* Queues a job. QE_ERANGE if the prompt does not fit the context (err says how many tokens of how many),
 * QE_EBUSY if the engine is shutting down, QE_EINVAL for an empty prompt. On success *out holds one reference.
 * The queue has no bound of its own: the caller bounds what it submits (the server's one limit on requests in
 * flight, serve --max-queue), so a full server answers in one way, in one place. */
int qe_engine_submit(qe_engine *e, const qe_job_params *p, qe_job **out, char *err);
/* Waits for the next event (timeout_ms < 0: forever). QE_OK with *ev filled, or QE_ERR on timeout.
 * After QE_EV_DONE or QE_EV_ERROR no more events come. */
int qe_job_next(qe_job *job, qe_event *ev, int timeout_ms);
/* Asks the engine to stop this job. A job still waiting for a slot leaves the queue at once (the reader gets
 * QE_EV_DONE now); a job in a slot (prefilling or generating) stops at the next step, which frees the slot. */
void qe_job_cancel(qe_job *job);
/* Drops the caller's reference (cancels the job first if it is still running). */
void qe_job_release(qe_job *job);

typedef struct {
    int n_slots, slots_busy, queue_len;
    uint64_t jobs_total, prompt_tokens_total, cached_tokens_total, gen_tokens_total;
    uint64_t forward_passes;
} qe_engine_stats;
void qe_engine_get_stats(qe_engine *e, qe_engine_stats *st);
