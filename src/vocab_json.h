/* vocab_json.h — reads a Hugging Face tokenizer.json (byte-level BPE, as Qwen uses) into exactly what a
 * GGUF file stores for tokenizer.ggml.model = "gpt2": the token strings (byte-level form, as in the vocab),
 * their types and the merges as "a b" strings. Used by mkmodel and by convert (safetensors -> GGUF).
 * Building the tokenizer used at run time is tokenizer_build.c's job, from the GGUF (tokenizer_gguf.c). */
#pragma once
#include <stdint.h>

#include "base.h"
#include "tokenizer.h" /* QE_TOKEN_* */


typedef struct {
    int64_t n_tokens;
    char **tokens;    /* owned, [n_tokens]; id i is tokens[i]; gaps and padding are "[PAD<i>]" */
    int32_t *types;   /* owned, [n_tokens] */
    int64_t n_merges;
    char **merges;    /* owned, [n_merges], "a b" in priority order */
} qe_vocab;

/* Loads `path`. Tokens with id > max_id are dropped (become padding); max_id < 0 keeps all. The result
 * has n_vocab tokens (padded with "[PAD<id>]", type UNUSED) or, if n_vocab <= 0, max kept id + 1.
 * Added tokens get type CONTROL when marked special or when they look like "<|...|>" (llama.cpp's
 * converter rule), else USER_DEFINED. Example: Qwen2.5 from a Qwen3 tokenizer.json is
 * (n_vocab 151936, max_id 151664). Errors: missing file, bad JSON, not BPE, an id >= n_vocab. */
int qe_vocab_json_load(const char *path, int64_t n_vocab, int64_t max_id, qe_vocab **out, char *err);
void qe_vocab_free(qe_vocab *v);
