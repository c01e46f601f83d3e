/* qwen2_arch.h — the one description of the Qwen2 architecture as a GGUF file stores it (llama.cpp's arch
 * "qwen2"): the hyper-parameters (qe_config), the tensor table (GGUF name, Hugging Face name, shape as a function
 * of the hyper-parameters) and the GGUF metadata keys, read and written here only.
 * Users: the loader (model.c), the converter (hf.c) and `qwen-edge mkmodel` (cli/cmd_mkmodel.c).
 * What lives elsewhere: the forward pass (qwen2.c), tokenizer metadata parsing (tokenizer_gguf.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "gguf.h"
#include "vocab_json.h"

/* The model's shape. Defaults in the comments are Qwen2.5-0.5B-Instruct's. */
typedef struct {
    int n_layer;     /* 24 */
    int n_embd;      /* 896 */
    int n_head;      /* 14 */
    int n_head_kv;   /* 2 */
    int head_dim;    /* 64 */
    int n_ff;        /* 4864 */
    int n_vocab;     /* 151936 (rows of token_embd; may exceed the tokenizer's size) */
    int n_ctx_train; /* 32768 */
    float rope_base; /* 1e6 */
    float norm_eps;  /* 1e-6 */
    bool tied_output;/* no output.weight: the output head shares token_embd */
} qe_config;

/* The tensors of one model, in the order llama.cpp's converter writes them: token_embd, then per layer
 * attn_norm .. ffn_down, then output_norm and (unless tied) output. */
typedef enum {
    QE_QWEN2_TOKEN_EMBD,
    QE_QWEN2_ATTN_NORM, QE_QWEN2_ATTN_Q, QE_QWEN2_ATTN_Q_BIAS, QE_QWEN2_ATTN_K, QE_QWEN2_ATTN_K_BIAS, QE_QWEN2_ATTN_V,
    QE_QWEN2_ATTN_V_BIAS, QE_QWEN2_ATTN_OUT, QE_QWEN2_FFN_NORM, QE_QWEN2_FFN_GATE, QE_QWEN2_FFN_UP, QE_QWEN2_FFN_DOWN,
    QE_QWEN2_OUTPUT_NORM, QE_QWEN2_OUTPUT,
    QE_QWEN2_N_KINDS
} qe_qwen2_kind;

#define QE_QWEN2_PER_LAYER 12 /* ATTN_NORM .. FFN_DOWN */

typedef struct {
    qe_qwen2_kind kind;
    int layer;          /* -1 for the tensors outside the layers */
    char name[64];      /* GGUF name: "blk.3.attn_q.weight" */
    char hf[96];        /* Hugging Face name: "model.layers.3.self_attn.q_proj.weight" (stored as [ne1, ne0]) */
    int n_dims;         /* 1 (norms, biases) or 2 (matrices) */
    int64_t ne[2];      /* GGUF order: ne[0] the row length (input size), ne[1] the rows (outputs); ne[1] = 1 for n_dims 1 */
    bool optional;      /* the loader accepts a file without it (the q/k/v biases) */
} qe_qwen2_tensor;

/* Number of tensors of a model of shape c (2 + 12 per layer, + 1 when the output head is not tied). */
int qe_qwen2_n_tensors(const qe_config *c);
/* The i-th tensor (0 <= i < qe_qwen2_n_tensors(c)) in file order, with its names and exact shape. */
void qe_qwen2_tensor_at(const qe_config *c, int i, qe_qwen2_tensor *out);

/* Reads and checks the hyper-parameters of a parsed GGUF: general.architecture must be qwen2; the shape must
 * make a model. n_vocab comes from token_embd.weight's rows; tied_output is true when output.weight is absent. */
int qe_qwen2_read_config(const gguf_file *f, qe_config *c, char *err);

/* What a Qwen2 GGUF says besides its shape. */
typedef struct {
    const char *name;          /* general.name */
    uint32_t file_type;        /* general.file_type (llama.cpp's llama_ftype) */
    const qe_vocab *vocab;     /* tokenizer.ggml.tokens / token_type / merges (borrowed) */
    int64_t eos, pad, bos;     /* tokenizer.ggml.*_token_id; -1: not written */
    bool add_bos;              /* tokenizer.ggml.add_bos_token */
    const char *chat_template; /* tokenizer.chat_template; NULL: not written */
    float yarn_factor;         /* rope_scaling yarn (written as llama.cpp's converter does; not applied by
                                * qwen-edge's engine); 0: none */
    int yarn_orig_ctx;         /* its original_max_position_embeddings */
} qe_qwen2_meta;

/* Writes every metadata key of a Qwen2 GGUF, in the order llama.cpp's converter does. Setter errors are kept
 * by the writer and reported by gguf_writer_write_header. */
void qe_qwen2_write_meta(gguf_writer *w, const qe_config *c, const qe_qwen2_meta *m);
