/* kb_chunk.c — the extracted-document model (blocks over one text buffer, filled by the kb_extract_*.c
 * files), token counting, and the chunker that turns a document's blocks into search chunks of about
 * 200-400 tokens that follow its structure and keep their heading path for citations. Pure: no I/O. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "store/kb_internal.h"

/* --- extracted document --------------------------------------------------------------------------------- */

int qe_kb_utf8_check(const char *p, size_t n, char *err) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) { i++; continue; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return qe_errf(err, QE_EFORMAT, "not valid UTF-8 (byte 0x%02x at offset %zu); convert it first, e.g. iconv -f GB18030 -t UTF-8", c, i);
        i += (size_t)k;
    }
    return QE_OK;
}

static bool space_cp(int32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xA0 || c == 0x3000 || (c >= 0 && c < 0x20); }

int qe_kb_ext_add(qe_kb_extracted *x, qe_kb_block_kind kind, int level, const char *s, size_t n) {
    /* worst case: the separator plus every byte */
    if (x->text.cap - x->text.n < n + 3) {
        size_t cap = x->text.cap ? x->text.cap : 4096;
        while (cap - x->text.n < n + 3) cap *= 2;
        char *p = realloc(x->text.p, cap);
        if (!p) return QE_ENOMEM;
        x->text.p = p;
        x->text.cap = cap;
    }
    size_t start = x->text.n, o = start + (x->text.n ? 2 : 0);
    size_t first = o;
    int pending = 0;          /* 0 none, 1 space, 2 a line break was in the gap */
    int32_t last = -1;        /* last character written */
    for (size_t i = 0; i < n;) {
        int32_t c;
        utf8proc_ssize_t k = (unsigned char)s[i] < 0x80 ? (c = (unsigned char)s[i], 1)
                                                        : utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) { c = 0xFFFD; k = 1; } /* extractors check first; never copy a broken sequence */
        if (kind == QE_KB_PRE && c == '\n') { pending = 3; i += k; continue; }
        if (space_cp(c)) {
            if (pending < 2) pending = (c == '\n' || c == '\r') ? 2 : 1;
            i += k;
            continue;
        }
        if (o > first) {
            if (pending == 3) x->text.p[o++] = '\n';
            else if (pending == 1 || (pending == 2 && !(last >= 0x2E80 && c >= 0x2E80))) x->text.p[o++] = ' ';
        }
        pending = 0;
        if (c == 0xFFFD && k == 1) { memcpy(x->text.p + o, "\xEF\xBF\xBD", 3); o += 3; }
        else { memcpy(x->text.p + o, s + i, (size_t)k); o += (size_t)k; }
        last = c;
        i += k;
        /* U+FFFD is 3 bytes for 1 input byte: keep room */
        if (x->text.cap - o < (n - i) + 8) {
            size_t cap = x->text.cap * 2 + n;
            char *p = realloc(x->text.p, cap);
            if (!p) return QE_ENOMEM;
            x->text.p = p;
            x->text.cap = cap;
        }
    }
    if (o == first) return QE_OK; /* nothing but space */
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        qe_kb_block *b = realloc(x->b, cap * sizeof *b);
        if (!b) return QE_ENOMEM;
        x->b = b;
        x->cap = cap;
    }
    if (start) memcpy(x->text.p + start, "\n\n", 2);
    x->text.n = o;
    x->b[x->n++] = (qe_kb_block){kind, level, x->page, first, o - first};
    return QE_OK;
}

void qe_kb_ext_free(qe_kb_extracted *x) {
    if (!x) return;
    qe_buf_free(&x->text);
    free(x->b);
    memset(x, 0, sizeof *x);
}

/* --- token counting -------------------------------------------------------------------------------------- */

size_t qe_kb_count_tokens(const qe_kb_counter *c, const char *s, size_t n) {
    if (c && c->tok) {
        qe_ids ids = {0};
        size_t k = qe_tokenize(c->tok, s, n, false, &ids, NULL) < 0 ? n / 3 : ids.n;
        qe_ids_free(&ids);
        return k;
    }
    size_t cjk = 0, other = 0;
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        /* a 3-byte sequence starting E2..ED covers U+2000..U+DFFF: CJK ideographs, kana, Hangul, CJK punctuation */
        if (b >= 0xE3 && b <= 0xED && i + 2 < n) { cjk++; i += 3; }
        else { other++; i++; }
    }
    return cjk + (other + 3) / 4;
}

/* --- chunker ---------------------------------------------------------------------------------------------- */

#define MAX_DEPTH 12

typedef struct {
    const qe_kb_extracted *x;
    const qe_kb_counter *c;
    int max;
    qe_kb_chunk *v;
    size_t n, cap;
    const char *head[MAX_DEPTH];
    size_t head_len[MAX_DEPTH];
    int head_level[MAX_DEPTH], depth;
} chunker;

static char *heading_path(const chunker *k) {
    size_t len = 1;
    for (int i = 0; i < k->depth; i++) len += k->head_len[i] + 3;
    char *p = malloc(len), *o = p;
    if (!p) return NULL;
    for (int i = 0; i < k->depth; i++) {
        if (i) { memcpy(o, " > ", 3); o += 3; }
        memcpy(o, k->head[i], k->head_len[i]);
        o += k->head_len[i];
    }
    *o = 0;
    return p;
}

static int emit(chunker *k, size_t off, size_t len, int page, int tokens) {
    const char *t = k->x->text.p;
    while (len && (t[off] == ' ' || t[off] == '\n')) { off++; len--; }
    while (len && (t[off + len - 1] == ' ' || t[off + len - 1] == '\n')) len--;
    if (!len) return QE_OK;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 32;
        qe_kb_chunk *v = realloc(k->v, cap * sizeof *v);
        if (!v) return QE_ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    char *h = heading_path(k);
    if (!h) return QE_ENOMEM;
    k->v[k->n++] = (qe_kb_chunk){h, page, off, len, tokens};
    return QE_OK;
}

/* End of the sentence starting at i (exclusive), at most e. */
static size_t sentence_end(const char *t, size_t i, size_t e) {
    while (i < e) {
        unsigned char c = (unsigned char)t[i];
        if (c == '.' || c == '!' || c == '?' || c == ';' || c == '\n') {
            i++;
            if (i >= e || t[i] == ' ' || t[i] == '\n') return i;
            continue;
        }
        /* 。！？；  (E3 80 82, EF BC 81, EF BC 9F, EF BC 9B) */
        if (c == 0xE3 && i + 2 < e && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0x82) return i + 3;
        if (c == 0xEF && i + 2 < e && (unsigned char)t[i + 1] == 0xBC &&
            ((unsigned char)t[i + 2] == 0x81 || (unsigned char)t[i + 2] == 0x9F || (unsigned char)t[i + 2] == 0x9B))
            return i + 3;
        i++;
    }
    return e;
}

/* A block longer than max: sentences packed up to max; a sentence longer than max cut at UTF-8 boundaries. */
static int split_block(chunker *k, const qe_kb_block *b) {
    const char *t = k->x->text.p;
    size_t pos = b->off, end = b->off + b->len, ps = pos, pe = pos;
    int pt = 0, rc;
    while (pos < end) {
        size_t se = sentence_end(t, pos, end);
        int st = (int)qe_kb_count_tokens(k->c, t + pos, se - pos);
        if (st > k->max) {
            if (pt && (rc = emit(k, ps, pe - ps, b->page, pt)) < 0) return rc;
            size_t parts = (size_t)st / k->max + 1, step = (se - pos) / parts + 1, a = pos;
            while (a < se) {
                size_t z = a + step < se ? a + step : se;
                while (z < se && ((unsigned char)t[z] & 0xC0) == 0x80) z--; /* never inside a character */
                if (z <= a) z = se;
                if ((rc = emit(k, a, z - a, b->page, (int)qe_kb_count_tokens(k->c, t + a, z - a))) < 0) return rc;
                a = z;
            }
            ps = pe = pos = se;
            pt = 0;
            continue;
        }
        if (pt && pt + st > k->max) {
            if ((rc = emit(k, ps, pe - ps, b->page, pt)) < 0) return rc;
            ps = pos;
            pt = 0;
        }
        pe = se;
        pt += st;
        pos = se;
    }
    return pt ? emit(k, ps, pe - ps, b->page, pt) : QE_OK;
}

int qe_kb_chunk_doc(const qe_kb_extracted *x, const qe_kb_counter *c, int max_tokens, qe_kb_chunk **out, size_t *n) {
    chunker k = {.x = x, .c = c, .max = max_tokens > 0 ? max_tokens : QE_KB_CHUNK_MAX};
    size_t cs = 0, ce = 0;
    int ct = 0, cpage = 0, rc = QE_OK;
#define FLUSH() do { if (ct && (rc = emit(&k, cs, ce - cs, cpage, ct)) < 0) goto fail; ct = 0; } while (0)
    for (size_t i = 0; i < x->n; i++) {
        const qe_kb_block *b = &x->b[i];
        if (b->kind == QE_KB_HEADING) {
            FLUSH();
            int lv = b->level < 1 ? 1 : b->level;
            while (k.depth > 0 && k.head_level[k.depth - 1] >= lv) k.depth--;
            if (k.depth == MAX_DEPTH) { memmove(k.head, k.head + 1, sizeof k.head[0] * (MAX_DEPTH - 1));
                memmove(k.head_len, k.head_len + 1, sizeof k.head_len[0] * (MAX_DEPTH - 1));
                memmove(k.head_level, k.head_level + 1, sizeof k.head_level[0] * (MAX_DEPTH - 1)); k.depth--; }
            k.head[k.depth] = x->text.p + b->off;
            k.head_len[k.depth] = b->len > 300 ? 300 : b->len;
            while (k.head_len[k.depth] < b->len && ((unsigned char)k.head[k.depth][k.head_len[k.depth]] & 0xC0) == 0x80) k.head_len[k.depth]--;
            k.head_level[k.depth++] = lv;
            continue;
        }
        int t = (int)qe_kb_count_tokens(c, x->text.p + b->off, b->len);
        if (t > k.max) {
            FLUSH();
            if ((rc = split_block(&k, b)) < 0) goto fail;
            continue;
        }
        /* a new page starts a new chunk only when the chunk is already big: citations name the first page */
        if (ct && ct + t > k.max) FLUSH();
        if (!ct) { cs = b->off; cpage = b->page; }
        ce = b->off + b->len;
        ct += t ? t : 1;
    }
    FLUSH();
#undef FLUSH
    *out = k.v;
    *n = k.n;
    return QE_OK;
fail:
    qe_kb_chunks_free(k.v, k.n);
    *out = NULL;
    *n = 0;
    return rc;
}

void qe_kb_chunks_free(qe_kb_chunk *c, size_t n) {
    if (!c) return;
    for (size_t i = 0; i < n; i++) free(c[i].heading);
    free(c);
}

void qe_kb_ext_title(qe_kb_extracted *x, const char *s, size_t n) {
    if (x->title[0]) return;
    size_t o = 0;
    bool sp = false;
    for (size_t i = 0; i < n && o + 5 < sizeof x->title && o < 200;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (i + k > n) break;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') { sp = o > 0; i++; continue; }
        if (sp) x->title[o++] = ' ';
        sp = false;
        memcpy(x->title + o, s + i, k);
        o += k;
        i += k;
    }
    x->title[o] = 0;
}
