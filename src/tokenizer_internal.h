/* tokenizer_internal.h — what the tokenizer's files share (not part of the API; its unit test reads it too):
 * the tokenizer's tables (struct qe_tokenizer), the UTF-8 classifier, the hash lookups, the builder the loaders
 * fill. Who does what:
 *   tokenizer_build.c  the builder: vocabulary tables, byte-level mapping, merge table, pre-tokenizer regex
 *   tokenizer_json.c   a Hugging Face tokenizer.json -> the builder
 *   tokenizer_gguf.c   GGUF metadata (tokenizer.ggml.*) -> the builder
 *   tokenizer.c        encoding: invalid UTF-8, added tokens, NFC, pre-tokenizer, BPE, the word cache
 *   tokenizer_detok.c  the streaming detokenizer
 *   tokenizer_load.c   a tokenizer straight from a file path (tools, tests) */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"

/* The encoder's NFC quick check: true if cp is NFC on its own, has canonical combining class 0 and is
 * never the second half of a canonical composition. */
bool qe_tokenizer_nfc_stable(uint32_t cp);


/* Building a tokenizer (tokenizer_build.c); the loaders (tokenizer_json.c, tokenizer_gguf.c) call:
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

typedef struct { uint64_t key; int32_t rank, id; } pair_ent; /* key = left id << 32 | right id */
typedef struct { int32_t rank, id; } byte_pair;              /* id -1: the two bytes do not merge */

struct qe_tokenizer {
    int n_vocab;
    uint8_t *type;          /* (n_vocab) QE_TOKEN_* */
    char *str;              /* vocabulary strings as written in the vocabulary, NUL-separated */
    uint32_t *str_off, *str_len;
    char *raw;              /* the bytes each token stands for (byte-level mapping undone) */
    uint32_t *raw_off, *raw_len;
    int32_t *map;           /* open-addressing hash: vocabulary string -> id (-1 = empty) */
    uint32_t map_mask;
    pair_ent *pairs;        /* open-addressing hash: (left, right) -> (rank, merged id); key 0 = empty */
    uint64_t pair_mask;
    int32_t byte_tok[256];  /* id of the one-byte token of each byte */
    byte_pair *byte_pairs;  /* [256 * 256]: the merge of two one-byte tokens (half of all lookups, dense) */
    int32_t *added;         /* ids of added tokens (control and user-defined), longest first */
    int n_added;
    uint8_t added_first[256]; /* bit 1: a control token starts with this byte; bit 2: a user-defined one */
    int32_t eos, im_start, im_end;
    uint32_t max_token_bytes; /* the longest byte string any token stands for: n bytes are >= n / this many ids */
    pcre2_code *re;
    bool jit;
    uint64_t serial;        /* unique per tokenizer: tags the per-thread word caches */
};

/* ---------------------------------------------------------------------------------------------------
 * UTF-8 */

enum { U8_OK, U8_BAD, U8_SHORT };

/* Classifies the sequence at s[0..n): U8_OK with *len its length and *cp its code point; U8_BAD with *len
 * the length of the maximal subpart to replace by one U+FFFD; U8_SHORT when the bytes are a valid but
 * incomplete prefix (*len = n). Follows Unicode 15 table 3-7 (no overlongs, no surrogates, <= U+10FFFF). */
static inline int utf8_next(const uint8_t *s, size_t n, int *len, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *len = 1; *cp = c; return U8_OK; }
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2; v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3; v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else { *len = 1; return U8_BAD; }
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) { *len = (int)n; return U8_SHORT; }
        uint8_t b = s[k];
        if (b < lo || b > hi) { *len = k; return U8_BAD; }
        lo = 0x80; hi = 0xBF;
        v = v << 6 | (b & 0x3F);
    }
    *len = need + 1;
    *cp = v;
    return U8_OK;
}

#define QE_UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* ---------------------------------------------------------------------------------------------------
 * Hash tables */

static inline uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static inline uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static inline int32_t map_find(const qe_tokenizer *t, const char *s, size_t n) {
    if (!t->map) return -1;
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & t->map_mask;; i = (i + 1) & t->map_mask) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        if (t->str_len[id] == n && memcmp(t->str + t->str_off[id], s, n) == 0) return id;
    }
}

static inline const pair_ent *pair_find(const qe_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if (key == 0) key = ~0ull; /* (0, 0) would look empty; ~0 is never a real pair of valid ids */
    for (uint64_t i = hash_u64(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        const pair_ent *e = &t->pairs[i];
        if (e->key == key) return e;
        if (e->key == 0) return NULL;
    }
}
