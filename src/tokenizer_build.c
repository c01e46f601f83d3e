/* tokenizer_build.c — builds a tokenizer's tables (tokenizer_internal.h): the id -> string and string -> id maps,
 * the raw bytes of each token (GPT-2's byte-level mapping undone), the merge table with the dense table of
 * byte-pair merges, the added tokens (longest first) and the compiled Qwen2 pre-tokenizer regex. The loaders
 * (tokenizer_json.c, tokenizer_gguf.c) feed it; encoding is tokenizer.c's job. */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------------------------------------------
 * GPT-2 byte-level mapping: every byte is shown as a printable code point (printable Latin-1 bytes as
 * themselves, the others as U+0100 + k in byte order). Vocabulary strings are written in that alphabet. */

static void byte_unicode_tables(uint32_t b2u[256], int16_t u2b[324]) {
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        b2u[b] = printable ? (uint32_t)b : 256u + (uint32_t)k++;
        u2b[b2u[b]] = (int16_t)b;
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Building: both loaders fill a vocabulary (id -> string, type) and a merge list through these. */

static void tok_free_parts(qe_tokenizer *t) {
    free(t->type); free(t->str); free(t->str_off); free(t->str_len); free(t->raw); free(t->raw_off);
    free(t->raw_len); free(t->map); free(t->pairs); free(t->added); free(t->byte_pairs);
    if (t->re) pcre2_code_free(t->re);
}

void qe_tokenizer_free(qe_tokenizer *t) {
    if (!t) return;
    tok_free_parts(t);
    free(t);
}

int qe_tok_builder_init(qe_tok_builder *b, int n_vocab, uint64_t n_merges, char *err) {
    memset(b, 0, sizeof *b);
    if (n_vocab <= 0 || n_vocab > (1 << 24))
        return qe_errf(err, QE_EFORMAT, "tokenizer: vocabulary size %d out of range (1..16M)", n_vocab);
    qe_tokenizer *t = qe_calloc(1, sizeof *t);
    if (!t) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    b->t = t;
    t->n_vocab = n_vocab;
    t->eos = t->im_start = t->im_end = -1;
    t->type = qe_calloc(n_vocab, 1);
    t->str_off = qe_calloc(n_vocab, sizeof *t->str_off);
    t->str_len = qe_calloc(n_vocab, sizeof *t->str_len);
    b->seen = qe_calloc(n_vocab, sizeof *b->seen);
    uint32_t cap = 1024;
    while (cap < (uint32_t)n_vocab * 2u) cap <<= 1;
    t->map = qe_malloc(cap * sizeof *t->map);
    t->map_mask = cap - 1;
    uint64_t pcap = 1024;
    while (pcap < n_merges * 2) pcap <<= 1;
    t->pairs = qe_calloc(pcap, sizeof *t->pairs);
    t->pair_mask = pcap - 1;
    if (!t->type || !t->str_off || !t->str_len || !b->seen || !t->map || !t->pairs)
        return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    memset(t->map, 0xff, cap * sizeof *t->map);
    for (int i = 0; i < n_vocab; i++) t->type[i] = QE_TOKEN_UNUSED;
    return QE_OK;
}

void qe_tok_builder_abort(qe_tok_builder *b) {
    qe_tokenizer_free(b->t);
    free(b->str);
    free(b->seen);
    b->t = NULL; b->str = NULL; b->seen = NULL;
}

int qe_tok_builder_set(qe_tok_builder *b, int64_t id, const char *s, size_t n, int type, char *err) {
    qe_tokenizer *t = b->t;
    if (id < 0 || id >= t->n_vocab) return qe_errf(err, QE_EFORMAT, "tokenizer: token id %lld out of range", (long long)id);
    if (n > 65536) return qe_errf(err, QE_EFORMAT, "tokenizer: token %lld is %zu bytes long", (long long)id, n);
    if (b->seen[id] && !(t->str_len[id] == n && memcmp(b->str + t->str_off[id], s, n) == 0))
        return qe_errf(err, QE_EFORMAT, "tokenizer: token id %lld defined twice", (long long)id);
    if (b->str_n + n + 1 > b->str_cap) {
        size_t cap = b->str_cap ? b->str_cap : 1 << 20;
        while (cap < b->str_n + n + 1) cap *= 2;
        if (cap > UINT32_MAX) return qe_errf(err, QE_EFORMAT, "tokenizer: vocabulary text larger than 4 GB");
        char *p = qe_realloc(b->str, cap);
        if (!p) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
        b->str = p; b->str_cap = cap;
    }
    memcpy(b->str + b->str_n, s, n);
    b->str[b->str_n + n] = 0;
    t->str_off[id] = (uint32_t)b->str_n;
    t->str_len[id] = (uint32_t)n;
    b->str_n += n + 1;
    t->type[id] = (uint8_t)type;
    b->seen[id] = true;
    return QE_OK;
}

/* After every token is set: string map, raw bytes, one-byte tokens. */
int qe_tok_builder_vocab_done(qe_tok_builder *b, char *err) {
    qe_tokenizer *t = b->t;
    t->str = b->str; b->str = NULL;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!b->seen[id]) continue;
        const char *s = t->str + t->str_off[id];
        size_t n = t->str_len[id];
        uint32_t i = (uint32_t)hash_bytes(s, n) & t->map_mask;
        bool dup = false;
        for (; t->map[i] >= 0; i = (i + 1) & t->map_mask) {
            int32_t o = t->map[i];
            if (t->str_len[o] == n && memcmp(t->str + t->str_off[o], s, n) == 0) { dup = true; break; }
        }
        if (!dup) t->map[i] = id; /* a duplicated string keeps its lowest id, as HF's vocab map does */
    }
    /* raw bytes: normal tokens are written in the byte-level alphabet; others stand for their own text */
    uint32_t b2u[256];
    int16_t u2b[324];
    byte_unicode_tables(b2u, u2b);
    t->raw = qe_malloc(b->str_n ? b->str_n : 1);
    t->raw_off = qe_calloc(t->n_vocab, sizeof *t->raw_off);
    t->raw_len = qe_calloc(t->n_vocab, sizeof *t->raw_len);
    if (!t->raw || !t->raw_off || !t->raw_len) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    size_t rn = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        const uint8_t *s = (const uint8_t *)t->str + t->str_off[id];
        size_t n = t->str_len[id];
        t->raw_off[id] = (uint32_t)rn;
        bool mapped = t->type[id] == QE_TOKEN_NORMAL;
        if (mapped) { /* decode; fall back to the text itself if it is not in the byte alphabet */
            size_t start = rn;
            for (size_t i = 0; i < n;) {
                int len; uint32_t cp;
                if (utf8_next(s + i, n - i, &len, &cp) != U8_OK || cp >= 324 || u2b[cp] < 0) { mapped = false; break; }
                t->raw[rn++] = (char)u2b[cp];
                i += len;
            }
            if (!mapped) rn = start;
        }
        if (!mapped) { memcpy(t->raw + rn, s, n); rn += n; }
        t->raw_len[id] = (uint32_t)(rn - t->raw_off[id]);
    }
    for (int c = 0; c < 256; c++) {
        char u[4];
        int n = utf8_put(b2u[c], u);
        t->byte_tok[c] = map_find(t, u, n);
    }
    return QE_OK;
}

/* Merge "a b" (both in the byte-level alphabet) with the next rank. Merges naming unknown tokens are
 * skipped, as HF does not reject them either (they can never fire). */
int qe_tok_builder_merge(qe_tok_builder *b, const char *a, size_t an, const char *c, size_t cn, char *err) {
    qe_tokenizer *t = b->t;
    int rank = b->rank++;
    int32_t ia = map_find(t, a, an), ic = map_find(t, c, cn);
    if (ia < 0 || ic < 0) return QE_OK;
    char stack[512], *cat = an + cn <= sizeof stack ? stack : qe_malloc(an + cn);
    if (!cat) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    memcpy(cat, a, an);
    memcpy(cat + an, c, cn);
    int32_t im = map_find(t, cat, an + cn);
    if (cat != stack) free(cat);
    if (im < 0) return QE_OK;
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ic;
    if (key == 0) key = ~0ull;
    if (b->n_pairs * 2 > t->pair_mask) return qe_errf(err, QE_EFORMAT, "tokenizer: more merges than announced");
    for (uint64_t i = hash_u64(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        pair_ent *e = &t->pairs[i];
        if (e->key == key) return QE_OK; /* a repeated merge keeps its first (best) rank */
        if (e->key == 0) { e->key = key; e->rank = rank; e->id = im; b->n_pairs++; return QE_OK; }
    }
}

/* The Qwen2 pre-tokenizer, as written in tokenizer.json:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * rewritten for PCRE2 with two deliberate changes:
 *  - \s is spelled out as Unicode White_Space, which is what HF's Oniguruma and llama.cpp use. PCRE2's own
 *    \s (UCP) leaves out U+0085 and JavaScript's adds U+FEFF, so neither is used.
 *  - (?i:'s...) is spelled with ASCII classes ('[sS]...), as llama.cpp and transformers.js do; PCRE2's
 *    caseless mode would also match "'ſ" (U+017F) and "'K" (U+212A) via Unicode case folding. */
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char pretok_pattern[] =
    "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])"
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
    "|\\p{N}"
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
    "|[" WS "]*[\\r\\n]+"
    "|[" WS "]+(?![^" WS "])"
    "|[" WS "]+";

int qe_tok_builder_finish(qe_tok_builder *b, qe_tokenizer **out, char *err) {
    qe_tokenizer *t = b->t;
    int n_added = 0;
    for (int id = 0; id < t->n_vocab; id++)
        if ((t->type[id] == QE_TOKEN_CONTROL || t->type[id] == QE_TOKEN_USER_DEFINED) && t->str_len[id] > 0) n_added++;
    t->added = qe_malloc((n_added ? n_added : 1) * sizeof *t->added);
    if (!t->added) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    for (int id = 0; id < t->n_vocab; id++) {
        if (!((t->type[id] == QE_TOKEN_CONTROL || t->type[id] == QE_TOKEN_USER_DEFINED) && t->str_len[id] > 0)) continue;
        /* insertion sort, longest first: the first match at a position is then the longest */
        int j = t->n_added++;
        while (j > 0 && t->raw_len[t->added[j - 1]] < t->raw_len[id]) { t->added[j] = t->added[j - 1]; j--; }
        t->added[j] = id;
        t->added_first[(uint8_t)t->raw[t->raw_off[id]]] |= t->type[id] == QE_TOKEN_CONTROL ? 1 : 2;
    }
    for (int id = 0; id < t->n_vocab; id++)
        if (t->raw_len[id] > t->max_token_bytes) t->max_token_bytes = t->raw_len[id];
    if (t->max_token_bytes == 0) t->max_token_bytes = 1;
    t->eos = qe_token_lookup(t, "<|endoftext|>");
    t->im_start = qe_token_lookup(t, "<|im_start|>");
    t->im_end = qe_token_lookup(t, "<|im_end|>");
    for (int c = 0; c < 256; c++)
        if (t->byte_tok[c] < 0)
            return qe_errf(err, QE_EFORMAT, "tokenizer: the vocabulary has no token for byte 0x%02x "
                                            "(not a byte-level BPE vocabulary)", c);

    if (!(t->byte_pairs = qe_malloc(65536 * sizeof *t->byte_pairs))) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    for (int i = 0; i < 65536; i++) {
        const pair_ent *e = pair_find(t, t->byte_tok[i >> 8], t->byte_tok[i & 255]);
        t->byte_pairs[i] = e ? (byte_pair){e->rank, e->id} : (byte_pair){0, -1};
    }
    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)pretok_pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!t->re) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        return qe_errf(err, QE_ERR, "tokenizer: pre-tokenizer regex: %s at %zu", msg, (size_t)eo);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    static atomic_uint_fast64_t next_serial = 1;
    t->serial = atomic_fetch_add(&next_serial, 1);
    free(b->seen);
    b->seen = NULL;
    *out = t;
    b->t = NULL;
    return QE_OK;
}
