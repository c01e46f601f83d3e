/* kb_fts_tokenizer.c — the KB's term splitter and the FTS5 tokenizer "qe" built on it.
 *
 * Chinese has no spaces, so words cannot be found by splitting. Each CJK character (Han, kana, Hangul) is
 * indexed as a unigram and each adjacent pair as a bigram: a two-character word ("密码") is one bigram, a longer
 * one a phrase of bigrams, and a single character still matches its unigram. The unigram is stored
 * co-located with the bigram that starts at the same character (FTS5_TOKEN_COLOCATED), so positions advance
 * once per character and a query phrase of bigrams ("重置密码" -> 重置 置密 密码) lines up with the document.
 * Other scripts are words of letters/digits/marks, NFKC-case-folded with utf8proc (full-width "ＡＢＣ" = "abc").
 * Why this and not FTS5's built-in trigram: see bench/kb_fts.md (trigram cannot match two-character words,
 * the most common Chinese word length, and its index is larger). */
#include <string.h>
#include <utf8proc.h>

#include "store/kb_internal.h"

static bool is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3134F) || (c >= 0x3040 && c <= 0x30FF && c != 0x30FB) || (c >= 0x31F0 && c <= 0x31FF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || c == 0x3007;
}

static bool is_word(int32_t c) {
    if (c < 128) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

#define WORD_MAX 64

/* Emits the folded word s[a..b). */
static int emit_word(const char *s, int a, int b, bool ascii, qe_kb_term_cb cb, void *user) {
    char out[WORD_MAX * 4];
    int n = 0;
    if (ascii) {
        for (int i = a; i < b && n < WORD_MAX; i++) {
            char ch = s[i];
            out[n++] = (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
        }
        return cb(user, 0, out, n, a, b, 0);
    }
    utf8proc_int32_t buf[WORD_MAX * 4];
    int len = b - a > WORD_MAX ? WORD_MAX : b - a;
    while (len > 0 && a + len < b && ((unsigned char)s[a + len] & 0xC0) == 0x80) len--; /* whole characters */
    utf8proc_option_t opt = UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_IGNORE;
    utf8proc_ssize_t k = utf8proc_decompose((const utf8proc_uint8_t *)s + a, len, buf, WORD_MAX * 4, opt);
    if (k < 0 || k > WORD_MAX * 4) return cb(user, 0, s + a, len, a, b, 0); /* unnormalisable: as written */
    k = utf8proc_normalize_utf32(buf, k, opt);
    if (k < 0) return cb(user, 0, s + a, len, a, b, 0);
    for (utf8proc_ssize_t i = 0; i < k && n + 4 <= (int)sizeof out; i++) {
        if (n >= WORD_MAX) break;
        n += (int)utf8proc_encode_char(buf[i], (utf8proc_uint8_t *)out + n);
    }
    return n ? cb(user, 0, out, n, a, b, 0) : 0;
}

int qe_kb_terms(const char *s, size_t n, int mode, qe_kb_term_cb cb, void *user) {
    int rc = 0;
    int word_a = -1;
    bool word_ascii = true;
    int prev_o = -1, prev_l = 0, run = 0; /* previous CJK character of the current run */
    size_t i = 0;
    while (i <= n) {
        int32_t c = -1;
        int l = 1;
        if (i < n) {
            unsigned char b0 = (unsigned char)s[i];
            if (b0 < 0x80) c = b0;
            else {
                utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
                if (k <= 0) { c = -1; l = 1; } else l = (int)k;
            }
        }
        bool cjk = c >= 0 && is_cjk(c);
        bool word = c >= 0 && !cjk && is_word(c);
        if (word_a >= 0 && !word) {
            if ((rc = emit_word(s, word_a, (int)i, word_ascii, cb, user))) return rc;
            word_a = -1;
        }
        if (run > 0 && !cjk) { /* the run ends: its last character */
            if (mode == QE_KB_TERMS_DOC || mode == QE_KB_TERMS_ALL || run == 1)
                if ((rc = cb(user, 0, s + prev_o, prev_l, prev_o, prev_o + prev_l, 1))) return rc;
            run = 0;
        }
        if (cjk) {
            if (run > 0) {
                if ((rc = cb(user, 0, s + prev_o, prev_l + l, prev_o, (int)i + l, 1))) return rc;
                if (mode == QE_KB_TERMS_ALL &&
                    (rc = cb(user, mode == QE_KB_TERMS_DOC, s + prev_o, prev_l, prev_o, prev_o + prev_l, 1)))
                    return rc;
            }
            prev_o = (int)i;
            prev_l = l;
            run++;
        } else if (word) {
            if (word_a < 0) { word_a = (int)i; word_ascii = true; }
            if (c >= 128) word_ascii = false;
        }
        if (i == n) break;
        i += l;
    }
    return 0;
}

/* --- FTS5 glue ------------------------------------------------------------------------------------------ */

typedef struct { void *ctx; int (*xToken)(void *, int, const char *, int, int, int); } fts_ctx;

static int fts_term(void *user, int colocated, const char *t, int nt, int start, int end, int cjk) {
    fts_ctx *f = user;
    return f->xToken(f->ctx, colocated ? FTS5_TOKEN_COLOCATED : 0, t, nt, start, end);
}

static int fts_create(void *user, const char **args, int n, Fts5Tokenizer **out) {
    static int token; /* stateless: any non-NULL handle */
    *out = (Fts5Tokenizer *)&token;
    return SQLITE_OK;
}
static void fts_delete(Fts5Tokenizer *t) {}
static int fts_tokenize(Fts5Tokenizer *t, void *ctx, int flags, const char *text, int n,
                       int (*xToken)(void *, int, const char *, int, int, int)) {
    fts_ctx f = {ctx, xToken};
    int mode = (flags & FTS5_TOKENIZE_QUERY) ? QE_KB_TERMS_QUERY : QE_KB_TERMS_DOC;
    return qe_kb_terms(text, n < 0 ? strlen(text) : (size_t)n, mode, fts_term, &f);
}

int qe_kb_fts_register(sqlite3 *db, char *err) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (!api) return qe_errf(err, QE_EUNSUPPORTED, "this SQLite has no FTS5 (needed for the knowledge base)");
    static fts5_tokenizer tok = {fts_create, fts_delete, fts_tokenize};
    if (api->xCreateTokenizer(api, "qe", NULL, &tok, NULL) != SQLITE_OK)
        return qe_errf(err, QE_EIO, "cannot register the FTS5 tokenizer: %s", sqlite3_errmsg(db));
    return QE_OK;
}
