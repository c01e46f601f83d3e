/* qwen2.h — the Qwen2 forward pass over a batch of sequences (prefill chunks and decode steps together).
 *
 * qe_fwd is the run state: activations sized once for n_batch tokens, the matmul workspace, the KV cache of
 * every slot and the thread pool. Nothing is allocated per call. One thread drives it (the engine thread). */
#pragma once
#include <stdint.h>

#include "kvcache.h"
#include "model.h"
#include "threadpool.h"

typedef struct {
    int slot;              /* KV cache slot of this sequence */
    int pos0;              /* position of tokens[0]; positions [0, pos0) are already in the cache */
    int n_tok;
    const int32_t *tokens;
    int logits_from;       /* logits are returned for tokens [logits_from, n_tok): n_tok - 1 = last only, n_tok = none */
} qe_seq_batch;

typedef struct qe_fwd qe_fwd;

int qe_fwd_new(const qe_model *m, int n_threads, int n_slots, int n_ctx, int n_batch, int max_logit_rows,
               qe_fwd **out, char *err);
void qe_fwd_free(qe_fwd *f);
qe_kvcache *qe_fwd_kv(qe_fwd *f);

/* Runs one forward pass. The sequences' tokens together must not exceed n_batch, nor their logit rows
 * max_logit_rows; positions must stay below n_ctx and ids below n_vocab (the engine guarantees this; violations
 * return QE_EINVAL). *logits points to the rows [n_rows][n_vocab], in sequence order, valid until the next call. */
int qe_forward(qe_fwd *f, const qe_seq_batch *seqs, int n_seqs, float **logits, int *n_rows, char *err);
