/* hf.h — Hugging Face model folders (Qwen2ForCausalLM): config.json, model.safetensors or the sharded
 * model-0000k-of-0000n.safetensors + model.safetensors.index.json, tokenizer.json (+ tokenizer_config.json
 * for the chat template and special tokens), and their conversion to a GGUF file that llama.cpp and
 * qwen-edge load, with the names and metadata of llama.cpp's own converter for arch "qwen2".
 *
 * Opening a folder validates it completely before any conversion: the config's numbers, every shard's
 * safetensors header (safetensors.h), and that every tensor the config implies is present with exactly the
 * expected shape; each problem is one clear line naming the file and tensor. Nothing here decides where files
 * go: the CLI resolves `-m DIR` to a GGUF converted once into the store's cache (qe_hf_convert_cached,
 * modelstore.h), and the model loader only loads GGUF files. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct {
    int hidden_size;             /* n_embd */
    int num_hidden_layers;       /* n_layer */
    int num_attention_heads;     /* n_head */
    int num_key_value_heads;     /* n_head_kv */
    int intermediate_size;       /* n_ff */
    int vocab_size;              /* n_vocab (rows of the embedding; may exceed the tokenizer's size) */
    int max_position_embeddings; /* n_ctx_train */
    float rope_theta;
    float rms_norm_eps;
    bool tie_word_embeddings;
    int bos_token_id, eos_token_id; /* -1 if absent */
    float yarn_factor;           /* rope_scaling {"type": "yarn", "factor": F, ...}; 0 when absent */
    int yarn_orig_ctx;           /* its original_max_position_embeddings */
    char name[128];              /* from _name_or_path or the folder name */
} qe_hf_config;

/* True if path is a directory holding a config.json (whatever else it has or lacks). */
bool qe_hf_is_folder(const char *path);

/* Reads and checks config.json of dir. */
int qe_hf_read_config(const char *dir, qe_hf_config *cfg, char *err);

typedef struct qe_hf_model qe_hf_model;
/* Opens (maps) and validates the folder; all tensors checked present with exact shapes. */
int qe_hf_open(const char *dir, qe_hf_model **out, char *err);
void qe_hf_close(qe_hf_model *m);

/* Writes a GGUF of the folder to out_path (via out_path.part, renamed when complete).
 * out_type: -1 keeps each weight matrix in its stored type (bf16, f16 or f32); or a qe_type such as
 * QE_TYPE_Q8_0 / QE_TYPE_F16 for every matrix (a matrix whose rows do not fit the type's block falls back to
 * q8_0, then f16). Norms and biases are always f32, as llama.cpp's converter writes them. */
int qe_hf_to_gguf(const char *dir, const char *out_path, int out_type, char *err);
