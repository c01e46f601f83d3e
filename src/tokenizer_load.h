/* tokenizer_load.h — a tokenizer straight from a file path, for tools that need the tokenizer without the
 * model (qwen-edge tokenize, tests): a GGUF file (mapped, parsed, only its tokenizer.ggml.* metadata read)
 * or a Hugging Face tokenizer.json. The model loader builds its tokenizer from its own gguf_file instead. */
#pragma once
#include "tokenizer.h"

typedef struct qe_tokenizer_source qe_tokenizer_source;

int qe_tokenizer_load_gguf(const char *path, qe_tokenizer_source **out, char *err);
int qe_tokenizer_load_json(const char *path, qe_tokenizer_source **out, char *err);
/* Borrowed: valid until qe_tokenizer_source_free. */
const qe_tokenizer *qe_tokenizer_source_get(const qe_tokenizer_source *s);
void qe_tokenizer_source_free(qe_tokenizer_source *s);
