/* tokenizer.c — Qwen's byte-level BPE (see tokenizer.h): vocabulary tables built from GGUF metadata or a
 * Hugging Face tokenizer.json, the encoder, and the streaming detokenizer.
 *
 * Encoding follows the Hugging Face `tokenizers` pipeline for Qwen2 step by step, so the ids match it
 * byte for byte:
 *   1. invalid UTF-8 is replaced by U+FFFD, one per "maximal subpart" (the Unicode / WHATWG rule, the
 *      same as Python's bytes.decode(errors="replace") and JS TextDecoder). So tokenizing bad bytes gives
 *      exactly what HF gives for the lossy-decoded string. We chose this over keeping raw bytes because it
 *      has a reference to test against, and no model was trained on invalid UTF-8 anyway.
 *   2. added tokens are cut out of the raw text first (HF matches them before normalisation because
 *      Qwen's added tokens have normalized=false), leftmost-longest. Tokens flagged special (control:
 *      <|im_start|>, <|endoftext|>, ...) only with parse_special; the non-special added tokens (<tool_call>,
 *      <think>, ...) always, as both HF and llama.cpp do.
 *   3. each remaining segment is NFC-normalised (utf8proc; a quick check skips text that is already NFC).
 *   4. the Qwen2 pre-tokenizer regex splits it into pieces (PCRE2, UTF + UCP, JIT), see pretok_pattern.
 *   5. each piece's bytes start as one symbol per byte (the GPT-2 byte-to-unicode mapping is applied to
 *      the vocabulary at load time instead of to the text), then merges are applied lowest rank first,
 *      leftmost first on ties, with a binary heap (HF's algorithm, O(n log n) even for a 1 MB word).
 *
 * What does not live here: reading GGUF metadata (tokenizer_gguf.c), chat templates (chat.c). */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>


typedef struct { uint64_t key; int32_t rank, id; } pair_ent; /* key = left id << 32 | right id */
typedef struct { int32_t rank, id; } byte_pair;              /* id -1: the two bytes do not merge */

struct qe_tokenizer {
    int n_vocab;
    uint8_t *type;          /* (n_vocab) TT_* */
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
static int utf8_next(const uint8_t *s, size_t n, int *len, uint32_t *cp) {
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

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

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
 * Hash tables */

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static int32_t map_find(const qe_tokenizer *t, const char *s, size_t n) {
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
    qe_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    b->t = t;
    t->n_vocab = n_vocab;
    t->eos = t->im_start = t->im_end = -1;
    t->type = calloc(n_vocab, 1);
    t->str_off = calloc(n_vocab, sizeof *t->str_off);
    t->str_len = calloc(n_vocab, sizeof *t->str_len);
    b->seen = calloc(n_vocab, sizeof *b->seen);
    uint32_t cap = 1024;
    while (cap < (uint32_t)n_vocab * 2u) cap <<= 1;
    t->map = malloc(cap * sizeof *t->map);
    t->map_mask = cap - 1;
    uint64_t pcap = 1024;
    while (pcap < n_merges * 2) pcap <<= 1;
    t->pairs = calloc(pcap, sizeof *t->pairs);
    t->pair_mask = pcap - 1;
    if (!t->type || !t->str_off || !t->str_len || !b->seen || !t->map || !t->pairs)
        return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    memset(t->map, 0xff, cap * sizeof *t->map);
    for (int i = 0; i < n_vocab; i++) t->type[i] = TT_UNUSED;
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
        char *p = realloc(b->str, cap);
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
    t->raw = malloc(b->str_n ? b->str_n : 1);
    t->raw_off = calloc(t->n_vocab, sizeof *t->raw_off);
    t->raw_len = calloc(t->n_vocab, sizeof *t->raw_len);
    if (!t->raw || !t->raw_off || !t->raw_len) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    size_t rn = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        const uint8_t *s = (const uint8_t *)t->str + t->str_off[id];
        size_t n = t->str_len[id];
        t->raw_off[id] = (uint32_t)rn;
        bool mapped = t->type[id] == TT_NORMAL;
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
    char stack[512], *cat = an + cn <= sizeof stack ? stack : malloc(an + cn);
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
        if ((t->type[id] == TT_CONTROL || t->type[id] == TT_USER) && t->str_len[id] > 0) n_added++;
    t->added = malloc((n_added ? n_added : 1) * sizeof *t->added);
    if (!t->added) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
    for (int id = 0; id < t->n_vocab; id++) {
        if (!((t->type[id] == TT_CONTROL || t->type[id] == TT_USER) && t->str_len[id] > 0)) continue;
        /* insertion sort, longest first: the first match at a position is then the longest */
        int j = t->n_added++;
        while (j > 0 && t->raw_len[t->added[j - 1]] < t->raw_len[id]) { t->added[j] = t->added[j - 1]; j--; }
        t->added[j] = id;
        t->added_first[(uint8_t)t->raw[t->raw_off[id]]] |= t->type[id] == TT_CONTROL ? 1 : 2;
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

    if (!(t->byte_pairs = malloc(65536 * sizeof *t->byte_pairs))) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
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

/* ---------------------------------------------------------------------------------------------------
 * Loading from a Hugging Face tokenizer.json */

int qe_tokenizer_from_json(const char *json, size_t len, qe_tokenizer **out, char *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) return qe_errf(err, QE_EFORMAT, "tokenizer.json: %s at line %d column %d", je.text, je.line, je.column);
    qe_tok_builder b = {0};
    int rc = QE_EFORMAT;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        qe_errf(err, rc, "tokenizer.json: model.vocab (object) and model.merges (array) are required");
        goto done;
    }
    if (mtype && strcmp(mtype, "BPE") != 0) {
        rc = qe_errf(err, QE_EUNSUPPORTED, "tokenizer.json: model type %s is not supported (BPE only)", mtype);
        goto done;
    }
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24)) {
            qe_errf(err, rc, "tokenizer.json: vocab entry \"%.40s\" has no valid id", key);
            goto done;
        }
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (!json_is_integer(json_object_get(v, "id")) || id < 0 || id >= (1 << 24) ||
            !json_is_string(json_object_get(v, "content"))) {
            qe_errf(err, rc, "tokenizer.json: added_tokens[%zu] needs an id and a content", i);
            goto done;
        }
        if (id > max_id) max_id = id;
    }
    if ((rc = qe_tok_builder_init(&b, (int)(max_id + 1), json_array_size(merges), err)) < 0) goto done;
    rc = QE_EFORMAT;
    json_object_foreach(vocab, key, v) {
        if ((rc = qe_tok_builder_set(&b, json_integer_value(v), key, strlen(key), TT_NORMAL, err)) < 0) goto done;
    }
    json_array_foreach(added, i, v) {
        json_t *c = json_object_get(v, "content");
        int type = json_is_true(json_object_get(v, "special")) ? TT_CONTROL : TT_USER;
        int64_t id = json_integer_value(json_object_get(v, "id"));
        if (id < b.t->n_vocab && b.seen[id]) b.seen[id] = false; /* an added token may restate a vocab entry */
        if ((rc = qe_tok_builder_set(&b, id, json_string_value(c), json_string_length(c), type, err)) < 0) goto done;
    }
    if ((rc = qe_tok_builder_vocab_done(&b, err)) < 0) goto done;
    json_array_foreach(merges, i, v) {
        const char *a, *c;
        size_t an, cn;
        if (json_is_string(v)) { /* "left right" */
            const char *s = json_string_value(v);
            const char *sp = strchr(s + (s[0] != 0), ' ');
            if (!sp) { rc = qe_errf(err, QE_EFORMAT, "tokenizer.json: merges[%zu] has no space", i); goto done; }
            a = s; an = sp - s; c = sp + 1; cn = strlen(c);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) { /* ["left", "right"] */
            a = json_string_value(json_array_get(v, 0)); an = json_string_length(json_array_get(v, 0));
            c = json_string_value(json_array_get(v, 1)); cn = json_string_length(json_array_get(v, 1));
        } else {
            rc = qe_errf(err, QE_EFORMAT, "tokenizer.json: merges[%zu] is neither \"a b\" nor [a, b]", i);
            goto done;
        }
        if ((rc = qe_tok_builder_merge(&b, a, an, c, cn, err)) < 0) goto done;
    }
    rc = qe_tok_builder_finish(&b, out, err);
done:
    if (rc < 0) qe_tok_builder_abort(&b);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------
 * Small accessors */

int qe_tokenizer_n_vocab(const qe_tokenizer *t) { return t->n_vocab; }
int32_t qe_tokenizer_eos(const qe_tokenizer *t) { return t->eos; }
int32_t qe_tokenizer_im_start(const qe_tokenizer *t) { return t->im_start; }
int32_t qe_tokenizer_im_end(const qe_tokenizer *t) { return t->im_end; }
bool qe_tokenizer_is_eog(const qe_tokenizer *t, int32_t id) { return id >= 0 && (id == t->im_end || id == t->eos); }
bool qe_tokenizer_is_control(const qe_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->type[id] == TT_CONTROL || t->type[id] == TT_UNUSED);
}

int32_t qe_token_lookup(const qe_tokenizer *t, const char *text) { return map_find(t, text, strlen(text)); }

int qe_token_bytes(const qe_tokenizer *t, int32_t id, const char **bytes, size_t *n) {
    if (id < 0 || id >= t->n_vocab) { *bytes = ""; *n = 0; return QE_EINVAL; }
    *bytes = t->raw + t->raw_off[id];
    *n = t->raw_len[id];
    return QE_OK;
}

int qe_ids_push(qe_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *p = realloc(ids->p, cap * sizeof *p);
        if (!p) return QE_ENOMEM;
        ids->p = p; ids->cap = cap;
    }
    ids->p[ids->n++] = id;
    return QE_OK;
}

void qe_ids_free(qe_ids *ids) {
    free(ids->p);
    ids->p = NULL; ids->n = ids->cap = 0;
}

/* ---------------------------------------------------------------------------------------------------
 * Encoding */

/* Per-call scratch space (the tokenizer itself is read-only, so any number of threads may encode). */
typedef struct {
    int32_t *sym, *prev, *next;
    struct heap_ent { uint64_t key; int32_t id, left, right; } *heap; /* key = rank << 32 | position */
    size_t cap, heap_n, heap_cap;
    pcre2_match_data *md;
    struct word_cache_s *cache; /* this thread's word cache, or NULL */
} scratch;

static void scratch_free(scratch *s) {
    free(s->sym); free(s->prev); free(s->next); free(s->heap);
    if (s->md) pcre2_match_data_free(s->md);
}

static int scratch_reserve(scratch *s, size_t n) {
    if (n <= s->cap) return QE_OK;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(s->sym, cap * 4); if (a) s->sym = a;
    int32_t *b = realloc(s->prev, cap * 4); if (b) s->prev = b;
    int32_t *c = realloc(s->next, cap * 4); if (c) s->next = c;
    if (!a || !b || !c) return QE_ENOMEM;
    s->cap = cap;
    return QE_OK;
}

static int heap_push(scratch *s, uint64_t key, int32_t id, int32_t left, int32_t right) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        struct heap_ent *h = realloc(s->heap, cap * sizeof *h);
        if (!h) return QE_ENOMEM;
        s->heap = h; s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p].key <= key) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = (struct heap_ent){key, id, left, right};
    return QE_OK;
}

static struct heap_ent heap_pop(scratch *s) {
    struct heap_ent top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1].key < s->heap[c].key) c++;
        if (last.key <= s->heap[c].key) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static int push_pair(const qe_tokenizer *t, scratch *s, int32_t pos) {
    int32_t a = s->sym[pos], b = s->sym[s->next[pos]];
    const pair_ent *e = pair_find(t, a, b);
    return e ? heap_push(s, (uint64_t)e->rank << 32 | (uint32_t)pos, e->id, a, b) : QE_OK;
}

/* Word cache. Natural text repeats its pieces (words, common CJK runs) all the time, and a piece's ids
 * depend on nothing else, so each thread keeps a small direct-mapped cache of piece -> ids (per thread:
 * the tokenizer stays read-only and lock-free). It is tagged with the tokenizer's serial and emptied when
 * another tokenizer is used. Bounded: WC_SLOTS entries, freed at thread exit. */
#define WC_SLOTS 4096
#define WC_BYTES 46
#define WC_IDS 24
typedef struct {
    uint64_t hash;
    uint8_t n_bytes, n_ids;
    char bytes[WC_BYTES];
    int32_t ids[WC_IDS];
} wc_entry;
typedef struct word_cache_s { uint64_t serial; wc_entry e[WC_SLOTS]; } word_cache;

static pthread_key_t wc_key;
static pthread_once_t wc_once = PTHREAD_ONCE_INIT;
static __thread word_cache *wc_tls;
static void wc_key_init(void) { pthread_key_create(&wc_key, free); }

static word_cache *wc_get(const qe_tokenizer *t) {
    word_cache *c = wc_tls;
    if (!c) {
        pthread_once(&wc_once, wc_key_init);
        if (!(c = malloc(sizeof *c))) return NULL; /* no cache: slower, still correct */
        c->serial = 0;
        pthread_setspecific(wc_key, c);
        wc_tls = c;
    }
    if (c->serial != t->serial) {
        for (int i = 0; i < WC_SLOTS; i++) c->e[i].n_bytes = 0; /* n_bytes 0 = empty (pieces are never empty) */
        c->serial = t->serial;
    }
    return c;
}

/* BPE of one pre-tokenized piece. Merges the lowest-ranked adjacent pair first, leftmost on ties: a heap
 * of (rank, position) with stale entries skipped when popped (HF tokenizers' word.rs does the same). */
static int bpe_merge(const qe_tokenizer *t, scratch *s, const uint8_t *p, size_t n, qe_ids *out);

static int bpe_piece(const qe_tokenizer *t, scratch *s, const uint8_t *p, size_t n, qe_ids *out) {
    if (n == 1) return qe_ids_push(out, t->byte_tok[p[0]]);
    word_cache *c = n <= WC_BYTES ? s->cache : NULL;
    if (!c) return bpe_merge(t, s, p, n, out);
    uint64_t h = hash_bytes(p, n);
    wc_entry *e = &c->e[h & (WC_SLOTS - 1)];
    int rc;
    if (e->hash == h && e->n_bytes == n && memcmp(e->bytes, p, n) == 0) {
        for (int i = 0; i < e->n_ids; i++)
            if ((rc = qe_ids_push(out, e->ids[i])) < 0) return rc;
        return QE_OK;
    }
    size_t before = out->n;
    if ((rc = bpe_merge(t, s, p, n, out)) < 0) return rc;
    if (out->n - before <= WC_IDS) {
        e->hash = h;
        e->n_bytes = (uint8_t)n;
        e->n_ids = (uint8_t)(out->n - before);
        memcpy(e->bytes, p, n);
        memcpy(e->ids, out->p + before, (out->n - before) * sizeof *e->ids);
    }
    return QE_OK;
}

static int bpe_merge(const qe_tokenizer *t, scratch *s, const uint8_t *p, size_t n, qe_ids *out) {
    if (n > INT32_MAX / 2) return QE_ERANGE;
    int rc = scratch_reserve(s, n);
    if (rc < 0) return rc;
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = t->byte_tok[p[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) { /* first pairs: two raw bytes, from the dense table */
        const byte_pair *bp = &t->byte_pairs[p[i] << 8 | p[i + 1]];
        if (bp->id >= 0 && (rc = heap_push(s, (uint64_t)bp->rank << 32 | (uint32_t)i, bp->id, s->sym[i], s->sym[i + 1])) < 0)
            return rc;
    }
    while (s->heap_n) {
        struct heap_ent top = heap_pop(s);
        int32_t pos = (int32_t)(uint32_t)top.key;
        if (s->sym[pos] < 0) continue;           /* merged into its left neighbour */
        int32_t nx = s->next[pos];
        if (nx < 0) continue;
        if (s->sym[pos] != top.left || s->sym[nx] != top.right) continue; /* stale: a side changed since the push */
        s->sym[pos] = top.id;
        s->sym[nx] = -1;
        s->next[pos] = s->next[nx];
        if (s->next[pos] >= 0) s->prev[s->next[pos]] = pos;
        if (s->prev[pos] >= 0 && (rc = push_pair(t, s, s->prev[pos])) < 0) return rc;
        if (s->next[pos] >= 0 && (rc = push_pair(t, s, pos)) < 0) return rc;
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if ((rc = qe_ids_push(out, s->sym[i])) < 0) return rc;
    return QE_OK;
}

/* True for code points that are NFC on their own, never reorder (ccc 0) and are never the second half
 * of a canonical composition: a run of only these is already NFC. Covers ASCII, Latin-1, most CJK text
 * and Hangul syllables; anything else goes through utf8proc. (tests/unit/test_tokenizer.c checks the
 * claim against utf8proc for every code point in these ranges.) */
static inline bool nfc_stable(uint32_t cp) {
    return cp < 0x300 || (cp >= 0x3001 && cp <= 0x3029) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xFF01 && cp <= 0xFF5E);
}

bool qe_tokenizer_nfc_stable(uint32_t cp) { return nfc_stable(cp); }

/* Fewest ids n bytes of text can become (no token stands for more than max_token_bytes bytes). */
static size_t min_ids(const qe_tokenizer *t, size_t n) { return n / t->max_token_bytes + (n % t->max_token_bytes != 0); }

/* True when a piece of n bytes cannot fit under max_ids any more: refused before its BPE runs, so a text
 * that cannot fit costs no more than the scan that finds its pieces. */
static bool over_limit(const qe_tokenizer *t, const qe_ids *out, size_t n, size_t max_ids) {
    return out->n > max_ids || min_ids(t, n) > max_ids - out->n;
}

static int encode_segment(const qe_tokenizer *t, scratch *s, const char *text, size_t len, size_t max_ids, qe_ids *out,
                          char *err) {
    if (len == 0) return QE_OK;
    uint8_t *nfc = NULL;
    bool stable = true;
    for (size_t i = 0; i < len;) {
        uint8_t c = (uint8_t)text[i];
        if (c < 0x80) { i++; continue; }
        int l; uint32_t cp;
        utf8_next((const uint8_t *)text + i, len - i, &l, &cp); /* text is valid UTF-8 here */
        if (!nfc_stable(cp)) { stable = false; break; }
        i += l;
    }
    if (!stable) {
        utf8proc_ssize_t r = utf8proc_map((const uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) return qe_errf(err, QE_ERR, "tokenizer: NFC normalisation failed: %s", utf8proc_errmsg(r));
        text = (const char *)nfc;
        len = (size_t)r;
    }
    int rc = QE_OK;
    PCRE2_SIZE at = 0;
    while (at < len) {
        int m = t->jit ? pcre2_jit_match(t->re, (PCRE2_SPTR)text, len, at, PCRE2_NO_UTF_CHECK, s->md, NULL)
                       : pcre2_match(t->re, (PCRE2_SPTR)text, len, at, PCRE2_NO_UTF_CHECK, s->md, NULL);
        PCRE2_SIZE b = len, e = len;
        if (m >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
            b = ov[0]; e = ov[1];
        } else if (m != PCRE2_ERROR_NOMATCH) {
            rc = qe_errf(err, QE_ERR, "tokenizer: regex match failed (%d)", m);
            break;
        }
        if (over_limit(t, out, e - at, max_ids)) { rc = QE_ERANGE; break; }
        /* HF's "Isolated" split keeps unmatched text as pieces too (this pattern leaves none, but be exact) */
        if (b > at && (rc = bpe_piece(t, s, (const uint8_t *)text + at, b - at, out)) < 0) break;
        if (e > b && (rc = bpe_piece(t, s, (const uint8_t *)text + b, e - b, out)) < 0) break;
        if (e == b) e = b + 1; /* cannot happen: no alternative matches empty; never loop forever */
        at = e;
    }
    free(nfc);
    if (rc == QE_ENOMEM) qe_errf(err, rc, "tokenizer: out of memory");
    else if (rc == QE_ERANGE) qe_errf(err, rc, "the text is longer than %zu tokens", max_ids);
    else if (rc == QE_OK && out->n > max_ids) rc = qe_errf(err, QE_ERANGE, "the text is longer than %zu tokens", max_ids);
    return rc;
}

/* Length of the added token starting at text[i] (longest first), or 0; *id gets its id. */
static size_t match_added(const qe_tokenizer *t, const char *text, size_t len, size_t i, bool parse_special, int32_t *id) {
    uint8_t want = parse_special ? 3 : 2;
    if (!(t->added_first[(uint8_t)text[i]] & want)) return 0;
    for (int k = 0; k < t->n_added; k++) {
        int32_t a = t->added[k];
        if (t->type[a] == TT_CONTROL && !parse_special) continue;
        size_t n = t->raw_len[a];
        if (n <= len - i && memcmp(text + i, t->raw + t->raw_off[a], n) == 0) { *id = a; return n; }
    }
    return 0;
}

int qe_tokenize(const qe_tokenizer *t, const char *text, size_t len, bool parse_special, qe_ids *out, char *err) {
    return qe_tokenize_max(t, text, len, parse_special, SIZE_MAX, out, err);
}

int qe_tokenize_max(const qe_tokenizer *t, const char *text, size_t len, bool parse_special, size_t max_ids, qe_ids *out,
                    char *err) {
    char *clean = NULL;
    scratch s = {0};
    int rc = QE_OK;
    /* NFC makes UTF-8 at most 3x shorter (U+1FEF -> '`', Hangul L+V+T jamo -> one syllable; test_tokenizer checks
     * every code point), so a text this long cannot fit: refused before any work or allocation */
    if (out->n > max_ids || min_ids(t, len / 3) > max_ids - out->n)
        return qe_errf(err, QE_ERANGE, "the text is longer than %zu tokens", max_ids);
    /* 1. invalid UTF-8 -> U+FFFD per maximal subpart */
    for (size_t i = 0; i < len;) {
        if ((uint8_t)text[i] < 0x80) { i++; continue; }
        int l; uint32_t cp;
        if (utf8_next((const uint8_t *)text + i, len - i, &l, &cp) == U8_OK) { i += l; continue; }
        /* found one: rebuild the whole text (at most 3 bytes of output per bad byte) */
        if (len > SIZE_MAX / 3 || !(clean = malloc(len * 3 + 1))) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
        size_t o = 0;
        for (size_t j = 0; j < len;) {
            int st = utf8_next((const uint8_t *)text + j, len - j, &l, &cp);
            if (st == U8_OK) memcpy(clean + o, text + j, l), o += l;
            else memcpy(clean + o, REPLACEMENT, 3), o += 3;
            j += l;
        }
        text = clean;
        len = o;
        break;
    }
    s.cache = wc_get(t);
    s.md = pcre2_match_data_create(1, NULL);
    if (!s.md) { rc = qe_errf(err, QE_ENOMEM, "tokenizer: out of memory"); goto done; }
    /* 2. added tokens, then 3-5 on the text between them */
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id;
        size_t n = match_added(t, text, len, i, parse_special, &id);
        if (!n) continue;
        if ((rc = encode_segment(t, &s, text + seg, i - seg, max_ids, out, err)) < 0) goto done;
        if (out->n >= max_ids) { rc = qe_errf(err, QE_ERANGE, "the text is longer than %zu tokens", max_ids); goto done; }
        if ((rc = qe_ids_push(out, id)) < 0) { qe_errf(err, rc, "tokenizer: out of memory"); goto done; }
        i += n - 1;
        seg = i + 1;
    }
    rc = encode_segment(t, &s, text + seg, len - seg, max_ids, out, err);
done:
    scratch_free(&s);
    free(clean);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------
 * Streaming detokenizer */

void qe_detok_init(qe_detok *d) { memset(d, 0, sizeof *d); }

/* Emits complete characters of pending[0..np) ++ b[0..n), keeps an incomplete tail (<= 3 bytes) in
 * d->pending. Definitely invalid bytes become U+FFFD at once. */
static int detok_feed(qe_detok *d, const uint8_t *b, size_t n, qe_buf *out) {
    int rc;
    /* first resolve the held-back bytes with at most 3 bytes of the new data */
    while (d->n_pending > 0) {
        uint8_t tmp[8];
        int np = d->n_pending;
        size_t take = n < 4 ? n : 4;
        memcpy(tmp, d->pending, np);
        memcpy(tmp + np, b, take);
        int l; uint32_t cp;
        int st = utf8_next(tmp, np + take, &l, &cp);
        if (st == U8_SHORT) { /* still incomplete: all of b fits in pending (np + take < 4) */
            memcpy(d->pending + np, b, n);
            d->n_pending = np + (int)n;
            return QE_OK;
        }
        if (st == U8_OK) rc = qe_buf_append(out, tmp, l);
        else rc = qe_buf_append(out, REPLACEMENT, 3);
        if (rc < 0) return rc;
        if (l >= np) { /* consumed all pending and l - np bytes of b */
            b += l - np; n -= l - np;
            d->n_pending = 0;
        } else { /* a bad subpart inside pending: keep the rest of pending */
            memmove(d->pending, d->pending + l, np - l);
            d->n_pending = np - l;
        }
    }
    size_t i = 0, run = 0;
    while (i < n) {
        if (b[i] < 0x80) { i++; continue; }
        int l; uint32_t cp;
        int st = utf8_next(b + i, n - i, &l, &cp);
        if (st == U8_OK) { i += l; continue; }
        if ((rc = qe_buf_append(out, b + run, i - run)) < 0) return rc;
        if (st == U8_SHORT) {
            memcpy(d->pending, b + i, l);
            d->n_pending = l;
            return QE_OK;
        }
        if ((rc = qe_buf_append(out, REPLACEMENT, 3)) < 0) return rc;
        i += l;
        run = i;
    }
    return qe_buf_append(out, b + run, n - run);
}

int qe_detok_push(qe_detok *d, const qe_tokenizer *t, int32_t id, qe_buf *out) {
    const char *p;
    size_t n;
    int rc = qe_token_bytes(t, id, &p, &n);
    if (rc < 0) return rc;
    return detok_feed(d, (const uint8_t *)p, n, out);
}

int qe_detok_flush(qe_detok *d, qe_buf *out) {
    int rc = QE_OK;
    /* what is left is a valid but incomplete prefix: one maximal subpart, one U+FFFD */
    if (d->n_pending > 0) rc = qe_buf_append(out, REPLACEMENT, 3);
    d->n_pending = 0;
    return rc;
}
