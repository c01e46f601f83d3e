/* tokenizer.h — Qwen's byte-level BPE: encoding (NFC, the Qwen2 pre-tokenizer split, byte-level mapping,
 * merges by rank, special tokens), and the streaming detokenizer that never emits half a UTF-8 character.
 * Built from GGUF metadata (tokenizer.ggml.*) or from a Hugging Face tokenizer.json. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "gguf.h"

typedef struct qe_tokenizer qe_tokenizer;

/* A growable array of token ids (owned by whoever holds it; free with qe_ids_free). */
typedef struct { int32_t *p; size_t n, cap; } qe_ids;
int qe_ids_push(qe_ids *ids, int32_t id);
void qe_ids_free(qe_ids *ids);

int qe_tokenizer_from_gguf(const gguf_file *f, qe_tokenizer **out, char *err);
int qe_tokenizer_from_json(const char *json, size_t len, qe_tokenizer **out, char *err);
void qe_tokenizer_free(qe_tokenizer *t);

int qe_tokenizer_n_vocab(const qe_tokenizer *t);
/* Well-known ids (-1 if the vocabulary has none). */
int32_t qe_tokenizer_eos(const qe_tokenizer *t);      /* <|endoftext|> 151643 */
int32_t qe_tokenizer_im_start(const qe_tokenizer *t); /* <|im_start|> 151644 */
int32_t qe_tokenizer_im_end(const qe_tokenizer *t);   /* <|im_end|> 151645 */
bool qe_tokenizer_is_eog(const qe_tokenizer *t, int32_t id); /* ends generation: im_end, endoftext */
/* A control token (<|im_start|>, <|endoftext|>, ...) or an unused slot: never text (constrained decoding skips it). */
bool qe_tokenizer_is_control(const qe_tokenizer *t, int32_t id);

/* Appends the ids of `len` bytes of UTF-8 text to out. With parse_special, control tokens written literally
 * in the text (<|im_start|> ...) become their ids; without it they are tokenized as plain text (the safe
 * choice for user input). Added tokens that are not special (<tool_call>, </tool_call>; GGUF token_type
 * USER_DEFINED) are always recognised, as Hugging Face and llama.cpp do. Invalid UTF-8 is first replaced
 * by U+FFFD per maximal subpart, so the ids equal Hugging Face's on the lossy-decoded text; never an
 * error. Thread-safe: any number of threads may encode with one tokenizer. */
int qe_tokenize(const qe_tokenizer *t, const char *text, size_t len, bool parse_special, qe_ids *out, char *err);
/* The same, for text from outside with a budget: QE_ERANGE as soon as out would hold more than max_ids ids
 * (counting those already in it), checked before each piece's BPE from a lower bound on its ids, so text far
 * too long for the budget is refused early, at little cost. out may hold a partial result after QE_ERANGE. */
int qe_tokenize_max(const qe_tokenizer *t, const char *text, size_t len, bool parse_special, size_t max_ids, qe_ids *out,
                    char *err);

/* The raw bytes a token stands for (byte-level mapping undone); special tokens give their text. */
int qe_token_bytes(const qe_tokenizer *t, int32_t id, const char **bytes, size_t *n);
/* Id of a token by its exact vocabulary string, or -1. */
int32_t qe_token_lookup(const qe_tokenizer *t, const char *text);

/* Streaming detokenizer: push ids one at a time; only complete UTF-8 sequences are appended to out.
 * An incomplete tail is held back; qe_detok_flush emits what is left (invalid bytes as U+FFFD). */
typedef struct { uint8_t pending[16]; int n_pending; } qe_detok;
void qe_detok_init(qe_detok *d);
int qe_detok_push(qe_detok *d, const qe_tokenizer *t, int32_t id, qe_buf *out);
int qe_detok_flush(qe_detok *d, qe_buf *out);
