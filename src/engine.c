/* engine.c — slots, the job queue and the one inference loop (see engine.h for the contract).
 *
 * Threads: callers run qe_engine_submit / qe_job_next / qe_job_cancel; the engine thread runs engine_main and
 * alone touches the model, the KV cache and the slots. They meet at two places, each under its own mutex:
 * the engine's queue of waiting jobs and each job's event queue.
 *
 * One step of the loop:  admit waiting jobs into idle slots  →  build a batch (one token per generating slot,
 * then prompt chunks up to n_batch)  →  one forward pass  →  sample for every sequence that produced logits  →
 * post events, finish jobs that hit end-of-generation, max_tokens, the context end, or were cancelled. */
#include "engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qwen2.h"

/* ---- jobs -------------------------------------------------------------------------------------------------- */

struct qe_job {
    _Atomic int refs;            /* the caller's and the engine's */
    _Atomic int cancel;
    _Atomic(qe_engine *) eng;    /* set while the job waits in the engine's queue (guarded by eng->mu) */
    int32_t *prompt;
    int n_prompt;
    int max_tokens;
    qe_sample_params sample;
    bool ignore_eos;
    uint64_t cache_salt;
    qe_grammar *grammar;         /* owned; NULL: unconstrained */
    double t_submit;
    qe_job *next_waiting;        /* engine queue link */
    /* event queue: tokens in a ring that grows, the one DONE or ERROR in a slot of its own */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qe_event *ev;
    int ev_head, ev_n, ev_cap;
    qe_event final;              /* the DONE or ERROR: needs no allocation, so it is always delivered */
    bool final_ready;            /* final is set and the reader has not taken it yet */
    bool closed;                 /* DONE or ERROR posted */
};

static void job_unref(qe_job *j) {
    if (atomic_fetch_sub(&j->refs, 1) != 1) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    free(j->ev);
    qe_grammar_free(j->grammar);
    free(j);
}

/* Appends a token event to the ring (called with j->mu held); QE_ENOMEM if the ring cannot grow. */
static int ring_push(qe_job *j, const qe_event *ev) {
    if (j->ev_n == j->ev_cap) {
        int cap = j->ev_cap ? j->ev_cap * 2 : 64;
        qe_event *nev = qe_malloc(sizeof *nev * (size_t)cap);
        if (!nev) return QE_ENOMEM;
        for (int i = 0; i < j->ev_n; i++) nev[i] = j->ev[(j->ev_head + i) % j->ev_cap];
        free(j->ev);
        j->ev = nev;
        j->ev_cap = cap;
        j->ev_head = 0;
    }
    j->ev[(j->ev_head + j->ev_n) % j->ev_cap] = *ev;
    j->ev_n++;
    return QE_OK;
}

/* Queues an event for the reader. The final DONE or ERROR takes the job's own slot: a reader waits for it, so
 * it must not depend on an allocation (a lost DONE left qe_job_next waiting forever). A token the ring cannot
 * take ends the job instead of going missing from the middle of the text: the reader gets the tokens queued so
 * far, then an ERROR, and the cancel flag frees the slot at the engine's next step (its DONE is ignored). */
static void job_post(qe_job *j, const qe_event *ev) {
    pthread_mutex_lock(&j->mu);
    if (!j->closed) {
        if (ev->kind != QE_EV_TOKEN) {
            j->final = *ev;
        } else if (ring_push(j, ev) == QE_OK) {
            pthread_cond_broadcast(&j->cv);
            pthread_mutex_unlock(&j->mu);
            return;
        } else {
            j->final = (qe_event){.kind = QE_EV_ERROR};
            snprintf(j->final.message, sizeof j->final.message, "out of memory: the answer was cut short");
            atomic_store(&j->cancel, 1);
        }
        j->final_ready = j->closed = true;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

int qe_job_next(qe_job *j, qe_event *ev, int timeout_ms) {
    struct timespec until;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    }
    pthread_mutex_lock(&j->mu);
    while (j->ev_n == 0 && !j->final_ready) {
        if (timeout_ms < 0) pthread_cond_wait(&j->cv, &j->mu);
        else if (pthread_cond_timedwait(&j->cv, &j->mu, &until) != 0) break;
    }
    int rc = QE_ERR;
    if (j->ev_n > 0) { /* tokens first: the final event comes after every token posted before it */
        *ev = j->ev[j->ev_head];
        j->ev_head = (j->ev_head + 1) % j->ev_cap;
        j->ev_n--;
        rc = QE_OK;
    } else if (j->final_ready) {
        *ev = j->final;
        j->final_ready = false;
        rc = QE_OK;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void qe_job_release(qe_job *j) {
    if (!j) return;
    qe_job_cancel(j);
    job_unref(j);
}

/* ---- slots ------------------------------------------------------------------------------------------------- */

typedef enum { SLOT_IDLE, SLOT_PROMPT, SLOT_GEN } slot_state;

typedef struct {
    int id;
    slot_state state;
    qe_job *job;
    int32_t *cache;      /* [n_ctx] tokens whose K/V are in this slot: cache[0, n_past) */
    int n_past;
    uint64_t salt;       /* cache_salt of the job that computed them: only a job with the same salt reuses them */
    int i_prompt;        /* next prompt token to prefill */
    int n_gen;
    int n_cached;        /* prompt tokens reused from the cache */
    int32_t next_token;  /* sampled, not yet in the cache */
    uint64_t last_used;
    double t_start, t_first;
    qe_sampler *sampler;
    qe_gmatch *gm;       /* the job's grammar matcher, or NULL */
    uint32_t *mask;      /* [qe_mask_words(n_vocab)] allowed tokens, filled before each constrained sample */
} slot;

struct qe_engine {
    qe_model *model;
    qe_fwd *fwd;
    int n_ctx, n_slots, n_batch;
    slot *slots;
    int32_t *batch_tokens;       /* [n_batch] */
    qe_seq_batch *seqs;          /* [n_slots] */
    int *seq_slot;               /* [n_slots] */
    pthread_t thread;
    pthread_mutex_t mu;          /* guards the waiting queue, stop and the stats below */
    pthread_cond_t cv;
    qe_job *wait_head, *wait_tail;
    int n_waiting;
    bool stop;
    uint64_t clock;
    _Atomic int slots_busy;
    _Atomic uint64_t jobs_total, prompt_tokens_total, cached_tokens_total, gen_tokens_total, forward_passes;
    pthread_mutex_t vocab_mu;    /* guards building vocab */
    qe_vtrie *vocab;             /* built on the first constrained job (or qe_engine_vocab call) */
};

/* Takes j out of the waiting queue; e->mu held. */
static void queue_unlink(qe_engine *e, qe_job *j) {
    qe_job *prev = NULL;
    for (qe_job *x = e->wait_head; x; prev = x, x = x->next_waiting) {
        if (x != j) continue;
        if (prev) prev->next_waiting = j->next_waiting;
        else e->wait_head = j->next_waiting;
        if (e->wait_tail == j) e->wait_tail = prev;
        j->next_waiting = NULL;
        atomic_store(&j->eng, NULL);
        e->n_waiting--;
        return;
    }
}

/* A job still waiting for a slot leaves the queue at once (and the reader gets its QE_EV_DONE now): a client
 * that went away must not hold a place in the queue until a slot frees. A job in a slot stops at the next step. */
void qe_job_cancel(qe_job *j) {
    atomic_store(&j->cancel, 1);
    qe_engine *e = atomic_load(&j->eng);
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    bool was_queued = atomic_load(&j->eng) != NULL;
    if (was_queued) queue_unlink(e, j);
    pthread_mutex_unlock(&e->mu);
    if (!was_queued) return;
    qe_event ev = {.kind = QE_EV_DONE, .finish = QE_FINISH_CANCELED, .n_prompt = j->n_prompt};
    job_post(j, &ev);
    job_unref(j); /* the engine's reference */
}

/* Tokens at the start of the new prompt that a cached run must match before it is worth a KV shift. */
#define MIN_REUSE_CHUNK 16

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = 0;
    while (n < na && n < nb && a[n] == b[n]) n++;
    return n;
}

/* Reuses as much of slot s's cache for prompt p as it can: the common prefix, then every later run of at least
 * MIN_REUSE_CHUNK tokens that also appears in the cache (in order), shifting it down over the tokens that the
 * new prompt no longer has (e.g. the chat round the memory window dropped). Returns the reused count. */
static int reuse_cache(qe_engine *e, slot *s, const int32_t *p, int np, uint64_t salt) {
    if (s->salt != salt) { s->n_past = 0; s->salt = salt; return 0; } /* another tenant's tokens: none shared */
    int keep = common_prefix(s->cache, s->n_past, p, np);
    int head_c = keep, head_p = keep, n_used = s->n_past;
    while (head_c < n_used && head_p < np) {
        int n = 0;
        while (head_c + n < n_used && head_p + n < np && s->cache[head_c + n] == p[head_p + n]) n++;
        if (n >= MIN_REUSE_CHUNK) {
            if (head_c > head_p) {
                int drop = head_c - head_p;
                qe_kvcache_remove(qe_fwd_kv(e->fwd), s->id, head_p, drop, n_used, e->model->cfg.rope_base);
                memmove(s->cache + head_p, s->cache + head_c, (size_t)(n_used - head_c) * sizeof(int32_t));
                n_used -= drop;
            }
            head_p += n;
            head_c = head_p;
        } else {
            head_c++;
        }
    }
    s->n_past = head_p;
    return head_p;
}

static void slot_finish(qe_engine *e, slot *s, qe_finish why) {
    qe_job *j = s->job;
    qe_gmatch_free(s->gm);
    s->gm = NULL;
    double now = qe_now();
    qe_event ev = {.kind = QE_EV_DONE, .finish = why, .n_prompt = j->n_prompt, .n_cached = s->n_cached,
                   .n_gen = s->n_gen, .t_queue_ms = (s->t_start - j->t_submit) * 1e3,
                   .t_prompt_ms = ((s->t_first > 0 ? s->t_first : now) - s->t_start) * 1e3,
                   .t_gen_ms = s->t_first > 0 ? (now - s->t_first) * 1e3 : 0};
    job_post(j, &ev);
    job_unref(j);
    s->job = NULL;
    s->state = SLOT_IDLE;
    s->last_used = ++e->clock;
    atomic_fetch_sub(&e->slots_busy, 1);
}

/* Ends the slot's job with an error event (its KV cache stays valid). */
static void slot_fail(qe_engine *e, slot *s, const char *msg) {
    qe_event ev = {.kind = QE_EV_ERROR};
    snprintf(ev.message, sizeof ev.message, "%s", msg);
    job_post(s->job, &ev);
    qe_gmatch_free(s->gm);
    s->gm = NULL;
    job_unref(s->job);
    s->job = NULL;
    s->state = SLOT_IDLE;
    s->last_used = ++e->clock;
    atomic_fetch_sub(&e->slots_busy, 1);
}

/* Picks the idle slot whose cache shares the longest prefix with the prompt, else the least recently used. A slot
 * holding another salt's tokens shares nothing (0), whatever its tokens. */
static slot *pick_slot(qe_engine *e, const qe_job *j) {
    slot *best = NULL;
    int best_lcp = -1;
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (s->state != SLOT_IDLE) continue;
        int lcp = s->salt == j->cache_salt ? common_prefix(s->cache, s->n_past, j->prompt, j->n_prompt) : 0;
        if (lcp > best_lcp || (lcp == best_lcp && best && s->last_used < best->last_used)) { best = s; best_lcp = lcp; }
    }
    return best;
}

static void slot_start(qe_engine *e, slot *s, qe_job *j) {
    s->job = j;
    s->state = SLOT_PROMPT;
    s->t_start = qe_now();
    s->t_first = 0;
    s->n_gen = 0;
    int reused = reuse_cache(e, s, j->prompt, j->n_prompt, j->cache_salt);
    if (reused >= j->n_prompt) reused = j->n_prompt - 1; /* the last prompt token must run to give logits */
    s->n_past = reused;
    s->i_prompt = reused;
    s->n_cached = reused;
    qe_sampler_reset(s->sampler, &j->sample);
    for (int i = 0; i < j->n_prompt; i++) qe_sampler_accept(s->sampler, j->prompt[i], false);
    atomic_fetch_add(&e->slots_busy, 1);
    atomic_fetch_add(&e->prompt_tokens_total, (uint64_t)j->n_prompt);
    atomic_fetch_add(&e->cached_tokens_total, (uint64_t)reused);
    if (j->grammar) {
        char err[QE_ERR_LEN];
        const qe_vtrie *v = qe_engine_vocab(e, err);
        if (!v || qe_gmatch_new(j->grammar, v, &s->gm, err)) slot_fail(e, s, err);
    }
}

/* Samples the next token of s from its logits row, within its grammar if it has one. */
static bool slot_sample(qe_engine *e, slot *s, float *logits, int32_t *tok) {
    if (!s->gm) { *tok = qe_sampler_sample(s->sampler, logits); return true; }
    char err[QE_ERR_LEN];
    if (qe_gmatch_mask(s->gm, s->mask, err)) { slot_fail(e, s, err); return false; }
    *tok = qe_sampler_sample_masked(s->sampler, logits, s->mask);
    return true;
}

/* Handles the token just sampled for slot s: end of generation, limits, or an event for the reader. */
static void slot_emit(qe_engine *e, slot *s, int32_t tok) {
    qe_job *j = s->job;
    if (s->t_first == 0) s->t_first = qe_now();
    if ((!j->ignore_eos || s->gm) && qe_tokenizer_is_eog(e->model->tok, tok)) { slot_finish(e, s, QE_FINISH_STOP); return; }
    if (s->gm) {
        char err[QE_ERR_LEN];
        if (qe_gmatch_accept(s->gm, tok, err)) { slot_fail(e, s, err); return; } /* the mask allowed it: a bug */
    }
    s->n_gen++;
    atomic_fetch_add(&e->gen_tokens_total, 1);
    qe_sampler_accept(s->sampler, tok, true);
    qe_event ev = {.kind = QE_EV_TOKEN, .token = tok};
    job_post(j, &ev);
    if (s->gm && qe_gmatch_must_end(s->gm)) { slot_finish(e, s, QE_FINISH_STOP); return; } /* complete: nothing may follow */
    if ((j->max_tokens > 0 && s->n_gen >= j->max_tokens) || s->n_past + 1 >= e->n_ctx) {
        slot_finish(e, s, QE_FINISH_LENGTH);
        return;
    }
    s->next_token = tok;
    s->state = SLOT_GEN;
}

static void engine_step(qe_engine *e) {
    /* cancelled jobs free their slots first */
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (s->state != SLOT_IDLE && atomic_load(&s->job->cancel)) slot_finish(e, s, QE_FINISH_CANCELED);
    }
    /* admit waiting jobs */
    pthread_mutex_lock(&e->mu);
    while (e->wait_head) {
        slot *s = pick_slot(e, e->wait_head);
        if (!s) break;
        qe_job *j = e->wait_head;
        queue_unlink(e, j);
        pthread_mutex_unlock(&e->mu);
        if (atomic_load(&j->cancel)) {
            qe_event ev = {.kind = QE_EV_DONE, .finish = QE_FINISH_CANCELED, .n_prompt = j->n_prompt};
            job_post(j, &ev);
            job_unref(j);
        } else {
            slot_start(e, s, j);
        }
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);

    /* build the batch: decode tokens first (they are latency-critical), then prompt chunks */
    int n_tok = 0, n_seq = 0;
    for (int i = 0; i < e->n_slots && n_tok < e->n_batch; i++) {
        slot *s = &e->slots[i];
        if (s->state != SLOT_GEN) continue;
        e->batch_tokens[n_tok] = s->next_token;
        e->seqs[n_seq] = (qe_seq_batch){.slot = s->id, .pos0 = s->n_past, .n_tok = 1,
                                        .tokens = e->batch_tokens + n_tok, .logits_from = 0};
        e->seq_slot[n_seq++] = i;
        n_tok++;
    }
    for (int i = 0; i < e->n_slots && n_tok < e->n_batch; i++) {
        slot *s = &e->slots[i];
        if (s->state != SLOT_PROMPT) continue;
        int left = s->job->n_prompt - s->i_prompt, n = left < e->n_batch - n_tok ? left : e->n_batch - n_tok;
        memcpy(e->batch_tokens + n_tok, s->job->prompt + s->i_prompt, (size_t)n * sizeof(int32_t));
        e->seqs[n_seq] = (qe_seq_batch){.slot = s->id, .pos0 = s->n_past, .n_tok = n,
                                        .tokens = e->batch_tokens + n_tok, .logits_from = n == left ? n - 1 : n};
        e->seq_slot[n_seq++] = i;
        n_tok += n;
    }
    if (n_seq == 0) return;

    float *logits;
    int n_rows;
    char err[QE_ERR_LEN];
    int rc = qe_forward(e->fwd, e->seqs, n_seq, &logits, &n_rows, err);
    atomic_fetch_add(&e->forward_passes, 1);
    if (rc) { /* an engine bug, not bad input: fail the jobs of this batch loudly, keep serving */
        qe_log(QE_LOG_ERROR, "forward pass failed: %s", err);
        for (int i = 0; i < n_seq; i++) {
            slot *s = &e->slots[e->seq_slot[i]];
            qe_event ev = {.kind = QE_EV_ERROR};
            snprintf(ev.message, sizeof ev.message, "internal error: %s", err);
            job_post(s->job, &ev);
            job_unref(s->job);
            s->job = NULL;
            s->state = SLOT_IDLE;
            s->n_past = 0;
            atomic_fetch_sub(&e->slots_busy, 1);
        }
        return;
    }
    int row = 0, n_vocab = e->model->cfg.n_vocab;
    for (int i = 0; i < n_seq; i++) {
        slot *s = &e->slots[e->seq_slot[i]];
        const qe_seq_batch *sq = &e->seqs[i];
        memcpy(s->cache + s->n_past, sq->tokens, (size_t)sq->n_tok * sizeof(int32_t));
        s->n_past += sq->n_tok;
        if (s->state == SLOT_PROMPT) s->i_prompt += sq->n_tok;
        if (sq->logits_from == sq->n_tok) continue; /* a prompt chunk that is not the last */
        float *l = logits + (size_t)row * n_vocab;
        row++;
        int32_t tok;
        if (slot_sample(e, s, l, &tok)) slot_emit(e, s, tok);
    }
}

static bool engine_has_work(qe_engine *e) {
    if (e->wait_head) return true;
    for (int i = 0; i < e->n_slots; i++) if (e->slots[i].state != SLOT_IDLE) return true;
    return false;
}

static void *engine_main(void *p) {
    qe_engine *e = p;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !engine_has_work(e)) pthread_cond_wait(&e->cv, &e->mu);
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop) break;
        engine_step(e);
    }
    /* shutting down: every job still held ends as cancelled */
    for (int i = 0; i < e->n_slots; i++) if (e->slots[i].state != SLOT_IDLE) slot_finish(e, &e->slots[i], QE_FINISH_CANCELED);
    pthread_mutex_lock(&e->mu);
    while (e->wait_head) {
        qe_job *j = e->wait_head;
        queue_unlink(e, j);
        qe_event ev = {.kind = QE_EV_DONE, .finish = QE_FINISH_CANCELED, .n_prompt = j->n_prompt};
        job_post(j, &ev);
        job_unref(j);
    }
    e->wait_tail = NULL;
    e->n_waiting = 0;
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------------------------ */

int qe_engine_new(qe_model *model, const qe_engine_opts *o, qe_engine **out, char *err) {
    *out = NULL;
    qe_engine_opts opts = o ? *o : (qe_engine_opts){0};
    if (opts.n_threads <= 0) opts.n_threads = qe_physical_cores();
    if (opts.n_ctx <= 0) opts.n_ctx = 4096;
    if (opts.n_ctx > model->cfg.n_ctx_train) opts.n_ctx = model->cfg.n_ctx_train;
    if (opts.n_ctx < 16) return qe_errf(err, QE_EINVAL, "context of %d tokens is too small", opts.n_ctx);
    if (opts.n_parallel <= 0) opts.n_parallel = 4;
    if (opts.n_parallel > 256) return qe_errf(err, QE_EINVAL, "--parallel %d is more than 256 slots", opts.n_parallel);
    /* 256 tokens per pass: prefill measured the same as with 512 (bench -b; the tiles reuse each weight panel
     * over 64 tokens at a time either way), and the activations of a pass (gate and up alone are n_batch x 4864
     * floats each) cost half the memory: peak RSS serving q8_0 at a full 4k context 631 -> 615 MB. */
    if (opts.n_batch <= 0) opts.n_batch = 256;
    if (opts.n_batch < opts.n_parallel) opts.n_batch = opts.n_parallel;
    qe_engine *e = calloc(1, sizeof *e);
    if (!e) return qe_errf(err, QE_ENOMEM, "out of memory");
    e->model = model;
    e->n_ctx = opts.n_ctx;
    e->n_slots = opts.n_parallel;
    e->n_batch = opts.n_batch;
    int rc = qe_fwd_new(model, opts.n_threads, e->n_slots, e->n_ctx, e->n_batch, e->n_slots, &e->fwd, err);
    if (rc) { free(e); return rc; }
    e->slots = calloc((size_t)e->n_slots, sizeof(slot));
    e->batch_tokens = malloc(sizeof(int32_t) * (size_t)e->n_batch);
    e->seqs = malloc(sizeof(qe_seq_batch) * (size_t)e->n_slots);
    e->seq_slot = malloc(sizeof(int) * (size_t)e->n_slots);
    if (!e->slots || !e->batch_tokens || !e->seqs || !e->seq_slot) goto oom;
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        s->id = i;
        s->cache = malloc(sizeof(int32_t) * (size_t)e->n_ctx);
        s->sampler = qe_sampler_new(model->cfg.n_vocab);
        s->mask = malloc(sizeof(uint32_t) * (size_t)qe_mask_words(model->cfg.n_vocab));
        if (!s->cache || !s->sampler || !s->mask) goto oom;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_mutex_init(&e->vocab_mu, NULL);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
        pthread_mutex_destroy(&e->vocab_mu);
        e->thread = 0;
        goto oom;
    }
    *out = e;
    return QE_OK;
oom:
    for (int i = 0; e->slots && i < e->n_slots; i++) { free(e->slots[i].cache); qe_sampler_free(e->slots[i].sampler); free(e->slots[i].mask); }
    free(e->slots); free(e->batch_tokens); free(e->seqs); free(e->seq_slot);
    qe_fwd_free(e->fwd);
    free(e);
    return qe_errf(err, QE_ENOMEM, "out of memory for %d slots", opts.n_parallel);
}

void qe_engine_free(qe_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    for (int i = 0; i < e->n_slots; i++) { free(e->slots[i].cache); qe_sampler_free(e->slots[i].sampler); free(e->slots[i].mask); }
    free(e->slots); free(e->batch_tokens); free(e->seqs); free(e->seq_slot);
    qe_fwd_free(e->fwd);
    qe_vtrie_free(e->vocab);
    pthread_mutex_destroy(&e->vocab_mu);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

int qe_engine_n_ctx(const qe_engine *e) { return e->n_ctx; }

const qe_vtrie *qe_engine_vocab(qe_engine *e, char *err) {
    pthread_mutex_lock(&e->vocab_mu);
    if (!e->vocab) qe_vtrie_new(e->model->tok, &e->vocab, err);
    qe_vtrie *v = e->vocab;
    pthread_mutex_unlock(&e->vocab_mu);
    return v;
}

int qe_engine_submit(qe_engine *e, const qe_job_params *p, qe_job **out, char *err) {
    *out = NULL;
    if (!p->prompt || p->n_prompt < 1) return qe_errf(err, QE_EINVAL, "the prompt is empty");
    if (p->n_prompt >= e->n_ctx)
        return qe_errf(err, QE_ERANGE, "the prompt has %d tokens but the context holds %d (prompt plus answer); "
                       "shorten the prompt or start the server with a larger --ctx", p->n_prompt, e->n_ctx);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= e->model->cfg.n_vocab)
            return qe_errf(err, QE_EINVAL, "token id %d is outside the vocabulary", p->prompt[i]);
    qe_job *j = qe_calloc(1, sizeof *j);
    if (!j) return qe_errf(err, QE_ENOMEM, "out of memory");
    j->prompt = qe_malloc(sizeof(int32_t) * (size_t)p->n_prompt);
    if (!j->prompt) { free(j); return qe_errf(err, QE_ENOMEM, "out of memory"); }
    memcpy(j->prompt, p->prompt, sizeof(int32_t) * (size_t)p->n_prompt);
    j->n_prompt = p->n_prompt;
    j->max_tokens = p->max_tokens;
    j->sample = p->sample;
    j->ignore_eos = p->ignore_eos;
    j->cache_salt = p->cache_salt;
    j->t_submit = qe_now();
    atomic_init(&j->refs, 2);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_mutex_lock(&e->mu);
    if (e->stop) {
        pthread_mutex_unlock(&e->mu);
        atomic_store(&j->refs, 1);
        job_unref(j);
        return qe_errf(err, QE_EBUSY, "the engine is shutting down");
    }
    atomic_store(&j->eng, e);
    if (e->wait_tail) e->wait_tail->next_waiting = j;
    else e->wait_head = j;
    e->wait_tail = j;
    e->n_waiting++;
    j->grammar = p->grammar; /* owned by the job from here on */
    atomic_fetch_add(&e->jobs_total, 1);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = j;
    return QE_OK;
}

void qe_engine_get_stats(qe_engine *e, qe_engine_stats *st) {
    pthread_mutex_lock(&e->mu);
    st->queue_len = e->n_waiting;
    pthread_mutex_unlock(&e->mu);
    st->n_slots = e->n_slots;
    st->slots_busy = atomic_load(&e->slots_busy);
    st->jobs_total = atomic_load(&e->jobs_total);
    st->prompt_tokens_total = atomic_load(&e->prompt_tokens_total);
    st->cached_tokens_total = atomic_load(&e->cached_tokens_total);
    st->gen_tokens_total = atomic_load(&e->gen_tokens_total);
    st->forward_passes = atomic_load(&e->forward_passes);
}
