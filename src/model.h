/* model.h — a Qwen2 model in memory: its shape (qe_config, qwen2_arch.h), its weights (borrowed from the mapped
 * GGUF, prepared for the kernels) and its tokenizer. Loading validates every tensor's name, type and exact shape
 * against the metadata (the table in qwen2_arch.c) and says what is wrong on a mismatch. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "gguf.h"
#include "kernels/matmul.h"
#include "qwen2_arch.h"
#include "tokenizer.h"

typedef struct {
    const float *attn_norm;              /* (n_embd) */
    qe_mat wq, wk, wv;                   /* (n_embd -> n_head*hd), (n_embd -> n_head_kv*hd) x2 */
    const float *bq, *bk, *bv;           /* biases, f32 copies owned by the model */
    qe_mat wo;                           /* (n_head*hd -> n_embd) */
    const float *ffn_norm;               /* (n_embd) */
    qe_mat w_gate, w_up;                 /* (n_embd -> n_ff) */
    qe_mat w_down;                       /* (n_ff -> n_embd) */
} qe_layer;

typedef struct qe_model {
    qe_config cfg;
    qe_mat tok_embd;                     /* (n_vocab rows of n_embd) */
    const float *out_norm;               /* (n_embd) */
    qe_mat output;                       /* (n_embd -> n_vocab); a second view of tok_embd when tied */
    qe_layer *layers;                    /* n_layer */
    qe_tokenizer *tok;
    char *chat_template;                 /* owned copy of tokenizer.chat_template, or NULL */
    char *name;                          /* general.name or the file name */
    char *path;
    uint64_t file_bytes;
    const char *weight_types;            /* summary like "q8_0" or "mixed: q5_0, q8_0, q6_K" */
    /* private */
    void *map;
    gguf_file *gguf;
    void *owned;                         /* f32 copies of norms and biases */
} qe_model;

/* Opens a GGUF file. Only loads: a Hugging Face folder is converted to a GGUF by the layer that decides where
 * files go (the CLI's qe_model_resolve -> qe_hf_convert_cached, modelstore.h). */
int qe_model_load(const char *path, qe_model **out, char *err);
void qe_model_free(qe_model *m);
