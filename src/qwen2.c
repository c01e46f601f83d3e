/* qwen2.c — the Qwen2 forward pass, written to read like the architecture:
 *
 *   x = embed(tokens)
 *   for each layer:  h = rmsnorm(x);  q,k,v = h·Wq+bq, h·Wk+bk, h·Wv+bv;  rope(q, k);  cache k, v
 *                    x += attention(q, K, V)·Wo
 *                    h = rmsnorm(x);  x += (silu(h·Wgate) * h·Wup)·Wdown
 *   logits = rmsnorm(x)·Wout
 *
 * Every row of the activation matrices is one token of one sequence; the matmuls see all tokens of all
 * sequences at once (so several users' decode steps read each weight once), attention sees each sequence
 * against its own slot of the KV cache. The speed lives in kernels/ (matmul.h, ops.h); this file only
 * orders the steps and splits the small ops across threads. */
#include "qwen2.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

struct qe_fwd {
    const qe_model *m;
    qe_pool *pool;
    qe_matmul_ws *ws;
    qe_kvcache kv;
    int n_batch, max_logit_rows, n_ctx;
    /* activations, [n_batch][dim] each */
    float *x, *h, *q, *k, *v, *att, *gate, *up;
    float *xl;            /* [max_logit_rows][n_embd]: final hidden states whose logits are wanted */
    float *logits;        /* [max_logit_rows][n_vocab] */
    float *att_scratch;   /* [n_threads][QE_ATT_SCRATCH(n_ctx, ...)] */
    /* per-call row bookkeeping, [n_batch] */
    int *row_pos, *row_slot;
};

static void *alloc_floats(size_t n) { return qe_aligned_alloc(64, n * sizeof(float)); }

int qe_fwd_new(const qe_model *m, int n_threads, int n_slots, int n_ctx, int n_batch, int max_logit_rows,
               qe_fwd **out, char *err) {
    *out = NULL;
    const qe_config *c = &m->cfg;
    qe_fwd *f = calloc(1, sizeof *f);
    if (!f) return qe_errf(err, QE_ENOMEM, "out of memory");
    f->m = m;
    f->n_batch = n_batch;
    f->max_logit_rows = max_logit_rows;
    f->n_ctx = n_ctx;
    int rc = qe_kvcache_init(&f->kv, c->n_layer, n_slots, n_ctx, c->n_head_kv, c->head_dim, err);
    if (rc) { free(f); return rc; }
    size_t B = (size_t)n_batch, E = (size_t)c->n_embd, Q = (size_t)c->n_head * c->head_dim,
           KV = (size_t)c->n_head_kv * c->head_dim, F = (size_t)c->n_ff;
    f->pool = qe_pool_new(n_threads);
    int64_t max_cols = (int64_t)(F > Q ? F : Q);
    if ((int64_t)E > max_cols) max_cols = (int64_t)E;
    f->ws = qe_matmul_ws_new(n_batch > max_logit_rows ? n_batch : max_logit_rows, max_cols);
    f->x = alloc_floats(B * E); f->h = alloc_floats(B * E);
    f->q = alloc_floats(B * Q); f->k = alloc_floats(B * KV); f->v = alloc_floats(B * KV);
    f->att = alloc_floats(B * Q);
    f->gate = alloc_floats(B * F); f->up = alloc_floats(B * F);
    f->xl = alloc_floats((size_t)max_logit_rows * E);
    f->logits = alloc_floats((size_t)max_logit_rows * c->n_vocab);
    f->att_scratch = alloc_floats((size_t)qe_pool_size(f->pool) * QE_ATT_SCRATCH(n_ctx, c->n_head, c->n_head_kv));
    f->row_pos = calloc(B, sizeof(int));
    f->row_slot = calloc(B, sizeof(int));
    if (!f->pool || !f->ws || !f->x || !f->h || !f->q || !f->k || !f->v || !f->att || !f->gate || !f->up || !f->xl ||
        !f->logits || !f->att_scratch || !f->row_pos || !f->row_slot) {
        qe_fwd_free(f);
        return qe_errf(err, QE_ENOMEM, "out of memory for the activations (batch %d, context %d)", n_batch, n_ctx);
    }
    *out = f;
    return QE_OK;
}

void qe_fwd_free(qe_fwd *f) {
    if (!f) return;
    qe_pool_free(f->pool);
    qe_matmul_ws_free(f->ws);
    qe_kvcache_free(&f->kv);
    free(f->x); free(f->h); free(f->q); free(f->k); free(f->v); free(f->att); free(f->gate); free(f->up);
    free(f->xl); free(f->logits); free(f->att_scratch); free(f->row_pos); free(f->row_slot);
    free(f);
}

qe_kvcache *qe_fwd_kv(qe_fwd *f) { return &f->kv; }

/* ---- small ops, split by rows across the pool ------------------------------------------------------------- */

typedef struct {
    qe_fwd *f;
    int layer, n_rows;
    const float *norm_w;     /* rmsnorm */
    const float *src;
    float *dst;
    const qe_seq_batch *seqs;
    int n_seqs;
    _Atomic int next_task;
} step_ctx;

/* Below this many rows the pool's wake-up costs more than the work. */
#define PARALLEL_MIN_ROWS 4

static void rmsnorm_rows(void *p, int ith, int nth) {
    step_ctx *s = p;
    int E = s->f->m->cfg.n_embd;
    int64_t lo, hi;
    qe_split(s->n_rows, 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        qe_rmsnorm(s->dst + r * E, s->src + r * E, s->norm_w, E, s->f->m->cfg.norm_eps);
}

static void run_rows(qe_fwd *f, qe_pool_fn fn, step_ctx *s) {
    if (s->n_rows < PARALLEL_MIN_ROWS) fn(s, 0, 1);
    else qe_pool_run(f->pool, fn, s);
}

/* RoPE on q and k of every row, then k and v into the row's slot of the KV cache (as fp16). */
static void rope_and_cache_rows(void *p, int ith, int nth) {
    step_ctx *s = p;
    qe_fwd *f = s->f;
    const qe_config *c = &f->m->cfg;
    int Q = c->n_head * c->head_dim, KV = c->n_head_kv * c->head_dim;
    int64_t lo, hi;
    qe_split(s->n_rows, 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        int pos = f->row_pos[r];
        qe_rope_neox(f->q + r * Q, c->n_head, c->head_dim, pos, c->rope_base);
        qe_rope_neox(f->k + r * KV, c->n_head_kv, c->head_dim, pos, c->rope_base);
        qe_kvcache_store(&f->kv, f->row_slot[r], s->layer, pos, f->k + r * KV, f->v + r * KV);
    }
}

static void swiglu_rows(void *p, int ith, int nth) {
    step_ctx *s = p;
    int F = s->f->m->cfg.n_ff;
    int64_t lo, hi;
    qe_split(s->n_rows, 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) qe_swiglu(s->f->gate + r * F, s->f->gate + r * F, s->f->up + r * F, F);
}

/* Attention tasks: (sequence, KV head, chunk of query tokens), handed out through an atomic counter so a
 * long prefill chunk and several one-token decode rows balance across threads. */
#define ATT_CHUNK 32

static void attention_tasks(void *p, int ith, int nth) {
    step_ctx *s = p;
    qe_fwd *f = s->f;
    const qe_config *c = &f->m->cfg;
    int Q = c->n_head * c->head_dim;
    float *scratch = f->att_scratch + (size_t)ith * QE_ATT_SCRATCH(f->n_ctx, c->n_head, c->n_head_kv);
    /* task index -> (seq, head, chunk) by walking the sequences; the counts are tiny */
    for (;;) {
        int task = atomic_fetch_add(&s->next_task, 1), row0 = 0, found = 0;
        for (int i = 0; i < s->n_seqs && !found; i++) {
            const qe_seq_batch *sq = &s->seqs[i];
            int chunks = (sq->n_tok + ATT_CHUNK - 1) / ATT_CHUNK, tasks = chunks * c->n_head_kv;
            if (task < tasks) {
                int head = task % c->n_head_kv, chunk = task / c->n_head_kv;
                int t0 = chunk * ATT_CHUNK, nt = sq->n_tok - t0 < ATT_CHUNK ? sq->n_tok - t0 : ATT_CHUNK;
                int r = row0 + t0;
                qe_attention(f->q + (size_t)r * Q, nt, sq->pos0 + t0, qe_kv_k(&f->kv, sq->slot, s->layer),
                             qe_kv_v(&f->kv, sq->slot, s->layer), f->kv.head_stride, sq->pos0 + t0 + nt, c->n_head, c->n_head_kv,
                             c->head_dim, head, head + 1, f->att + (size_t)r * Q, scratch);
                found = 1;
            }
            task -= tasks;
            row0 += sq->n_tok;
        }
        if (!found) return;
    }
    (void)nth;
}

/* ---- the pass ---------------------------------------------------------------------------------------------- */

static void layer_forward(qe_fwd *f, int l, int T, const qe_seq_batch *seqs, int n_seqs) {
    const qe_config *c = &f->m->cfg;
    const qe_layer *L = &f->m->layers[l];
    int64_t E = c->n_embd, Q = (int64_t)c->n_head * c->head_dim, KV = (int64_t)c->n_head_kv * c->head_dim, F = c->n_ff;

    /* attention block */
    step_ctx s = {.f = f, .layer = l, .n_rows = T, .norm_w = L->attn_norm, .src = f->x, .dst = f->h};
    run_rows(f, rmsnorm_rows, &s);
    const qe_mat *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {f->q, f->k, f->v};
    const int64_t qkv_ld[3] = {Q, KV, KV};
    const float *qkv_bias[3] = {L->bq, L->bk, L->bv};
    qe_matmul_multi(f->pool, f->ws, 3, qkv, f->h, E, T, qkv_out, qkv_ld, qkv_bias);
    run_rows(f, rope_and_cache_rows, &s);
    step_ctx a = {.f = f, .layer = l, .n_rows = T, .seqs = seqs, .n_seqs = n_seqs};
    atomic_store(&a.next_task, 0);
    qe_pool_run(f->pool, attention_tasks, &a);
    qe_matmul(f->pool, f->ws, &L->wo, f->att, Q, T, f->x, E, NULL, QE_MM_ACCUMULATE); /* x += att·Wo */

    /* feed-forward block */
    s.norm_w = L->ffn_norm;
    run_rows(f, rmsnorm_rows, &s);
    const qe_mat *gu[2] = {&L->w_gate, &L->w_up};
    float *gu_out[2] = {f->gate, f->up};
    const int64_t gu_ld[2] = {F, F};
    const float *no_bias[2] = {NULL, NULL};
    qe_matmul_multi(f->pool, f->ws, 2, gu, f->h, E, T, gu_out, gu_ld, no_bias);
    run_rows(f, swiglu_rows, &s);
    qe_matmul(f->pool, f->ws, &L->w_down, f->gate, F, T, f->x, E, NULL, QE_MM_ACCUMULATE); /* x += ffn */
}

int qe_forward(qe_fwd *f, const qe_seq_batch *seqs, int n_seqs, float **logits, int *n_rows, char *err) {
    const qe_model *m = f->m;
    const qe_config *c = &m->cfg;
    int64_t E = c->n_embd;
    int T = 0, n_logit = 0;
    for (int i = 0; i < n_seqs; i++) {
        const qe_seq_batch *sq = &seqs[i];
        if (sq->n_tok < 1 || sq->pos0 < 0 || sq->pos0 + sq->n_tok > f->n_ctx || sq->slot < 0 ||
            sq->slot >= f->kv.n_slots || sq->logits_from < 0 || sq->logits_from > sq->n_tok)
            return qe_errf(err, QE_EINVAL, "bad batch: sequence %d (slot %d, pos %d, %d tokens)", i, sq->slot, sq->pos0, sq->n_tok);
        if (T + sq->n_tok > f->n_batch) return qe_errf(err, QE_EINVAL, "batch of more than %d tokens", f->n_batch);
        for (int t = 0; t < sq->n_tok; t++) {
            int32_t id = sq->tokens[t];
            if (id < 0 || id >= c->n_vocab) return qe_errf(err, QE_EINVAL, "token id %d outside the vocabulary", id);
            f->row_pos[T + t] = sq->pos0 + t;
            f->row_slot[T + t] = sq->slot;
            qe_mat_row_f32(&m->tok_embd, id, f->x + (size_t)(T + t) * E);
        }
        T += sq->n_tok;
        n_logit += sq->n_tok - sq->logits_from;
    }
    if (n_logit > f->max_logit_rows) return qe_errf(err, QE_EINVAL, "more than %d logit rows", f->max_logit_rows);

    for (int l = 0; l < c->n_layer; l++) layer_forward(f, l, T, seqs, n_seqs);

    /* final norm on the rows whose logits are wanted, then the output head */
    int r = 0, row0 = 0;
    for (int i = 0; i < n_seqs; i++) {
        for (int t = seqs[i].logits_from; t < seqs[i].n_tok; t++, r++)
            memcpy(f->xl + (size_t)r * E, f->x + (size_t)(row0 + t) * E, (size_t)E * sizeof(float));
        row0 += seqs[i].n_tok;
    }
    if (n_logit > 0) {
        step_ctx s = {.f = f, .n_rows = n_logit, .norm_w = m->out_norm, .src = f->xl, .dst = f->xl};
        run_rows(f, rmsnorm_rows, &s);
        qe_matmul(f->pool, f->ws, &m->output, f->xl, E, n_logit, f->logits, c->n_vocab, NULL, 0);
    }
    *logits = f->logits;
    *n_rows = n_logit;
    return QE_OK;
}
