/* tokenizer_internal.h — tokenizer.c internals exposed to its unit test only (not part of the API). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The encoder's NFC quick check: true if cp is NFC on its own, has canonical combining class 0 and is
 * never the second half of a canonical composition. */
bool qe_tokenizer_nfc_stable(uint32_t cp);

/* Token kinds, numbered as GGUF's tokenizer.ggml.token_type. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* Building a tokenizer (tokenizer.c); the loaders (JSON in tokenizer.c, GGUF in tokenizer_gguf.c) call:
 *   init(n_vocab, n_merges) -> set(id, string, type) for every token -> vocab_done -> merge(a, b) in rank
 *   order -> finish(out). On any error call abort (frees everything built so far). */
typedef struct {
    struct qe_tokenizer *t;
    char *str; size_t str_n, str_cap;
    bool *seen;
    uint64_t n_pairs;
    int rank;
} qe_tok_builder;

int qe_tok_builder_init(qe_tok_builder *b, int n_vocab, uint64_t n_merges, char *err);
int qe_tok_builder_set(qe_tok_builder *b, int64_t id, const char *s, size_t n, int type, char *err);
int qe_tok_builder_vocab_done(qe_tok_builder *b, char *err);
int qe_tok_builder_merge(qe_tok_builder *b, const char *a, size_t an, const char *c, size_t cn, char *err);
int qe_tok_builder_finish(qe_tok_builder *b, struct qe_tokenizer **out, char *err);
void qe_tok_builder_abort(qe_tok_builder *b);
