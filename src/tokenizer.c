/* tokenizer.c — Qwen's byte-level BPE encoder (see tokenizer.h) and the small accessors.
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
 * What does not live here: building the tables (tokenizer_build.c), the loaders (tokenizer_json.c,
 * tokenizer_gguf.c), the streaming detokenizer (tokenizer_detok.c), chat templates (chat.c). */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------------------------------------------
 * Small accessors */

int qe_tokenizer_n_vocab(const qe_tokenizer *t) { return t->n_vocab; }
int32_t qe_tokenizer_eos(const qe_tokenizer *t) { return t->eos; }
int32_t qe_tokenizer_im_start(const qe_tokenizer *t) { return t->im_start; }
int32_t qe_tokenizer_im_end(const qe_tokenizer *t) { return t->im_end; }
bool qe_tokenizer_is_eog(const qe_tokenizer *t, int32_t id) { return id >= 0 && (id == t->im_end || id == t->eos); }
bool qe_tokenizer_is_control(const qe_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->type[id] == QE_TOKEN_CONTROL || t->type[id] == QE_TOKEN_UNUSED);
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
        int32_t *p = qe_realloc(ids->p, cap * sizeof *p);
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
    int32_t *a = qe_realloc(s->sym, cap * 4); if (a) s->sym = a;
    int32_t *b = qe_realloc(s->prev, cap * 4); if (b) s->prev = b;
    int32_t *c = qe_realloc(s->next, cap * 4); if (c) s->next = c;
    if (!a || !b || !c) return QE_ENOMEM;
    s->cap = cap;
    return QE_OK;
}

static int heap_push(scratch *s, uint64_t key, int32_t id, int32_t left, int32_t right) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        struct heap_ent *h = qe_realloc(s->heap, cap * sizeof *h);
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
        if (!(c = qe_malloc(sizeof *c))) return NULL; /* no cache: slower, still correct */
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
        int l; uint32_t cp = 0;
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
        if (t->type[a] == QE_TOKEN_CONTROL && !parse_special) continue;
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
        if (len > SIZE_MAX / 3 || !(clean = qe_malloc(len * 3 + 1))) return qe_errf(err, QE_ENOMEM, "tokenizer: out of memory");
        size_t o = 0;
        for (size_t j = 0; j < len;) {
            int st = utf8_next((const uint8_t *)text + j, len - j, &l, &cp);
            if (st == U8_OK) memcpy(clean + o, text + j, l), o += l;
            else memcpy(clean + o, QE_UTF8_REPLACEMENT, 3), o += 3;
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
