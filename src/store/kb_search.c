/* kb_search.c — retrieval: a question becomes an FTS5 OR-query of its terms (CJK bigrams and words from the
 * same splitter the index used; trigram windows for a trigram KB), ranked by BM25 with heading matches
 * weighted 3x (the index's rank function, set when the KB is made). The previous user turn is a second query
 * whose scores count 0.35x, merged per chunk. Also the grounded prompt block built from hits. */
#include <stdlib.h>
#include <string.h>

#include "store/kb_internal.h"

#define MAX_TERMS 48
#define PREV_WEIGHT 0.35

typedef struct { int n; char seen[MAX_TERMS][64]; bool prefix[MAX_TERMS]; } query_builder;

static void add_term(query_builder *b, const char *t, int nt, bool prefix) {
    if (b->n >= MAX_TERMS || nt <= 0 || nt >= 64) return;
    for (int i = 0; i < b->n; i++)
        if ((int)strlen(b->seen[i]) == nt && !memcmp(b->seen[i], t, nt)) return;
    memcpy(b->seen[b->n], t, nt);
    b->seen[b->n][nt] = 0;
    b->prefix[b->n++] = prefix;
}

/* The FTS5 expression of the terms selected by use[] (all when NULL), joined by op. */
static int expr(const query_builder *b, const bool *use, const char *op, qe_buf *q) {
    int n = 0, rc = QE_OK;
    q->n = 0;
    for (int i = 0; i < b->n && rc == QE_OK; i++) {
        if (use && !use[i]) continue;
        if (n++) rc = qe_buf_append(q, op, strlen(op));
        if (rc == QE_OK) rc = qe_buf_append(q, "\"", 1);
        for (const char *t = b->seen[i]; *t && rc == QE_OK; t++) rc = qe_buf_append(q, *t == '"' ? "\"\"" : t, *t == '"' ? 2 : 1);
        if (rc == QE_OK) rc = qe_buf_append(q, b->prefix[i] ? "\"*" : "\"", b->prefix[i] ? 2 : 1);
    }
    if (rc == QE_OK) rc = qe_buf_append(q, "", 1);
    return rc < 0 ? rc : n;
}

static int qe_term(void *user, int colocated, const char *t, int nt, int start, int end, int cjk) {
    /* a lone CJK character: the index holds bigrams (and a run's last character), so it is a prefix query */
    int chars = 0;
    for (int i = 0; i < nt; i++) chars += ((unsigned char)t[i] & 0xC0) != 0x80;
    add_term(user, t, nt, cjk && chars == 1);
    return 0;
}

static int word_term(void *user, int colocated, const char *t, int nt, int start, int end, int cjk) {
    /* trigram KB: only words of 3+ characters can match */
    int chars = 0;
    for (int i = 0; i < nt; i++) chars += ((unsigned char)t[i] & 0xC0) != 0x80;
    if (!cjk && chars >= 3) add_term(user, t, nt, false);
    return 0;
}

static bool cjk_lead(const unsigned char *s) { return s[0] >= 0xE3 && s[0] <= 0xED; }

/* Builds the MATCH expression; empty when the text has no searchable term. */
static void build_query(qe_kb *kb, const char *s, query_builder *b) {
    memset(b, 0, sizeof *b);
    size_t n = strlen(s);
    if (kb->fts == QE_KB_FTS_QE) {
        qe_kb_terms(s, n, QE_KB_TERMS_QUERY, qe_term, b);
        return;
    }
    /* trigram: every window of 3 consecutive CJK characters, plus the words */
    size_t starts[3] = {0};
    int run = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t k = u[0] < 0x80 ? 1 : u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : 2;
        if (i + k > n) break;
        if (k == 3 && cjk_lead(u)) {
            starts[run % 3] = i;
            run++;
            if (run >= 3) add_term(b, s + starts[(run - 3) % 3], (int)(i + 3 - starts[(run - 3) % 3]), false);
        } else {
            run = 0;
        }
        i += k;
    }
    qe_kb_terms(s, n, QE_KB_TERMS_QUERY, word_term, b);
}

typedef struct { int64_t id; double score; } scored;

/* Why candidates are narrowed: BM25 over an OR query scores every chunk that holds any term, and a common
 * bigram ("文件", "一个") is in a large share of a big KB: on 80 MB of text one such term costs ~40 ms of
 * scoring. So in a KB of more than COMMON_DF chunks each term's chunk count is probed (bounded: the probe
 * stops at max(COMMON_DF, 5% of the chunks)); when some terms are rarer than that, only chunks holding a rarer
 * term are scored — still with every term's BM25 weight. When every term is common the plain OR runs. Small
 * KBs (the usual case) skip all of this. */
#define COMMON_DF 2000

static int64_t chunk_count(qe_kb *kb) {
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(kb->db, "SELECT coalesce(sum(n_chunks), 0) FROM docs", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int probe_df(qe_kb *kb, const query_builder *b, int common, int *df, char *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT ?2)", -1, &st,
                           NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "searching");
    qe_buf q = {0};
    int rc = QE_OK;
    for (int i = 0; i < b->n && rc == QE_OK; i++) {
        bool one[MAX_TERMS] = {0};
        one[i] = true;
        if ((rc = expr(b, one, "", &q)) < 0) { rc = qe_errf(err, rc, "out of memory"); break; }
        rc = QE_OK;
        sqlite3_bind_text(st, 1, q.p, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, common);
        df[i] = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    qe_buf_free(&q);
    return rc;
}

/* Adds weight x the BM25 score of each of the best `limit` chunks for q to v. Returns the rows seen. */
static int rank_into(qe_kb *kb, const char *q, double weight, int limit, scored **v, int *n, int *cap, char *err) {
    sqlite3_stmt *st = NULL;
    /* bm25() directly, not the table's rank column: the rank indirection costs ~2x on large result sets */
    if (sqlite3_prepare_v2(kb->db,
                           "SELECT rowid, bm25(chunks_fts, 3.0, 1.0) AS r FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY r LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "searching");
    sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    int s, rows = 0, rc = QE_OK;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        int64_t id = sqlite3_column_int64(st, 0);
        double sc = -sqlite3_column_double(st, 1) * weight; /* FTS5's bm25 is negative: lower is better */
        int j = 0;
        while (j < *n && (*v)[j].id != id) j++;
        if (j < *n) { (*v)[j].score += sc; continue; }
        if (*n == *cap) {
            int nc = *cap ? *cap * 2 : 64;
            scored *nv = realloc(*v, nc * sizeof *nv);
            if (!nv) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
            *v = nv;
            *cap = nc;
        }
        (*v)[(*n)++] = (scored){id, sc};
    }
    if (rc == QE_OK && s != SQLITE_DONE) rc = qe_kb_sqlerr(kb, QE_EIO, err, "searching");
    sqlite3_finalize(st);
    return rc < 0 ? rc : rows;
}

static int run_query(qe_kb *kb, const char *text, double weight, int k, int limit, scored **v, int *n, int *cap, char *err) {
    if (!text || !*text) return QE_OK;
    query_builder b;
    build_query(kb, text, &b);
    if (!b.n) return QE_OK;
    qe_buf q = {0};
    int rc = QE_OK;
    bool use[MAX_TERMS];
    int n_use = b.n;
    for (int i = 0; i < b.n; i++) use[i] = true;
    int64_t chunks = chunk_count(kb);
    if (b.n > 1 && chunks > COMMON_DF) {
        int df[MAX_TERMS] = {0}, common = chunks / 20 > COMMON_DF ? (int)(chunks / 20) : COMMON_DF;
        if ((rc = probe_df(kb, &b, common, df, err)) < 0) return rc;
        int rare = 0;
        for (int i = 0; i < b.n; i++) rare += df[i] > 0 && df[i] < common;
        n_use = 0;
        for (int i = 0; i < b.n; i++) n_use += use[i] = df[i] > 0 && (rare == 0 || df[i] < common);
        if (n_use == 0) goto done;
    }
    if ((rc = expr(&b, use, " OR ", &q)) < 0) goto oom;
    if (n_use < b.n) {
        /* candidates: chunks with a rarer term; ranked with every term, so "设备文件" still ranks by 设备 and
         * 文件 among the chunks that hold its rarer bigram 备文 */
        qe_buf all = {0};
        if ((rc = expr(&b, NULL, " OR ", &all)) < 0) { qe_buf_free(&all); goto oom; }
        q.n--; /* drop the NUL */
        char *rare = strndup(q.p, q.n);
        q.n = 0;
        rc = rare ? qe_buf_printf(&q, "(%s) AND (%s)", rare, all.p) : QE_ENOMEM;
        free(rare);
        qe_buf_free(&all);
        if (rc < 0 || (rc = qe_buf_append(&q, "", 1)) < 0) goto oom;
    }
    rc = rank_into(kb, q.p, weight, limit, v, n, cap, err);
    if (rc > 0) rc = QE_OK;
    goto done;
oom:
    rc = qe_errf(err, rc, "out of memory");
done:
    qe_buf_free(&q);
    return rc < 0 ? rc : QE_OK;
}

static int by_score(const void *a, const void *b) {
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    if (x != y) return x < y ? 1 : -1;
    int64_t i = ((const scored *)a)->id, j = ((const scored *)b)->id;
    return i < j ? -1 : i > j;
}

static char *dup_col(sqlite3_stmt *st, int i) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    return strdup(s ? s : "");
}

int qe_kb_search(qe_kb *kb, const char *query, const char *prev_user_turn, int k, qe_kb_hit **hits, int *n, char *err) {
    *hits = NULL;
    *n = 0;
    if (k <= 0) return QE_OK;
    if (k > 1000) k = 1000;
    scored *v = NULL;
    int nv = 0, cap = 0, rc;
    int limit = k * 4 < 40 ? 40 : k * 4;
    if ((rc = run_query(kb, query, 1.0, k, limit, &v, &nv, &cap, err)) < 0) goto done;
    if ((rc = run_query(kb, prev_user_turn, PREV_WEIGHT, k, limit, &v, &nv, &cap, err)) < 0) goto done;
    if (!nv) goto done;
    qsort(v, nv, sizeof *v, by_score);
    if (nv > k) nv = k;
    qe_kb_hit *h = calloc(nv, sizeof *h);
    if (!h) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db,
                           "SELECT d.path, d.title, c.heading, c.page, c.text FROM chunks c JOIN docs d ON d.id = c.doc_id"
                           " WHERE c.id = ?", -1, &st, NULL) != SQLITE_OK) {
        free(h);
        rc = qe_kb_sqlerr(kb, QE_EIO, err, "reading hits");
        goto done;
    }
    int got = 0;
    for (int i = 0; i < nv; i++) {
        sqlite3_bind_int64(st, 1, v[i].id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            qe_kb_hit *x = &h[got++];
            x->chunk_id = v[i].id;
            x->doc = dup_col(st, 0);
            x->title = dup_col(st, 1);
            x->heading = dup_col(st, 2);
            x->page = sqlite3_column_int(st, 3);
            x->text = dup_col(st, 4);
            x->score = v[i].score;
            if (!x->doc || !x->title || !x->heading || !x->text) rc = qe_errf(err, QE_ENOMEM, "out of memory");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc < 0) { qe_kb_hits_free(h, got); goto done; }
    *hits = h;
    *n = got;
done:
    free(v);
    return rc;
}

void qe_kb_hits_free(qe_kb_hit *hits, int n) {
    if (!hits) return;
    for (int i = 0; i < n; i++) {
        free(hits[i].doc);
        free(hits[i].title);
        free(hits[i].heading);
        free(hits[i].text);
    }
    free(hits);
}

/* --- grounded prompt block ------------------------------------------------------------------------------- */

static int source_header(qe_buf *b, int num, const qe_kb_hit *h) {
    const char *name = h->title && *h->title ? h->title : h->doc;
    int rc = qe_buf_printf(b, "[%d] %s", num, name ? name : "");
    if (rc >= 0 && h->heading && *h->heading) rc = qe_buf_printf(b, " › %s", h->heading);
    if (rc >= 0 && h->page > 0) rc = qe_buf_printf(b, " (p. %d)", h->page);
    if (rc >= 0) rc = qe_buf_append(b, "\n", 1);
    return rc;
}

int qe_kb_prompt_block(const qe_kb_hit *hits, int n, size_t budget_tokens, const qe_kb_counter *c, qe_buf *out) {
    size_t used = 0;
    int written = 0;
    qe_buf one = {0};
    int rc = QE_OK;
    for (int i = 0; i < n; i++) {
        one.n = 0;
        if ((rc = source_header(&one, written + 1, &hits[i])) < 0) break;
        size_t head = one.n;
        if ((rc = qe_buf_append(&one, hits[i].text, strlen(hits[i].text))) < 0 || (rc = qe_buf_append(&one, "\n\n", 2)) < 0) break;
        size_t t = qe_kb_count_tokens(c, one.p, one.n);
        if (used + t > budget_tokens) {
            if (written > 0) break;
            /* the best source alone is over budget: keep as much of its text as fits, whole characters only */
            size_t keep = one.n - 2;
            while (keep > head && qe_kb_count_tokens(c, one.p, keep) + 1 > budget_tokens) {
                keep = head + (keep - head) * 3 / 4;
                while (keep > head && ((unsigned char)one.p[keep] & 0xC0) == 0x80) keep--;
            }
            if (keep <= head) break;
            one.n = keep;
            if ((rc = qe_buf_append(&one, "…\n\n", 5)) < 0) break;
            t = budget_tokens;
        }
        if ((rc = qe_buf_append(out, one.p, one.n)) < 0) break;
        used += t;
        written++;
    }
    qe_buf_free(&one);
    return rc < 0 ? rc : written;
}

int qe_kb_grounded_system(const qe_kb_hit *hits, int n, size_t budget_tokens, const qe_kb_counter *c, qe_buf *out) {
    /* Chinese instructions: the 0.5B model follows instructions in the user's language better, and most
     * questions here are Chinese; the model answers in the question's language either way. */
    static const char head[] =
        "你是一个根据资料回答问题的助手。只使用下面编号的资料回答问题，在用到资料的句子后用 [编号] 标注来源，"
        "例如 [1]。如果资料中没有答案，就直接说资料中没有相关内容，不要编造。用提问者的语言回答。\n\n资料：\n";
    size_t h = qe_kb_count_tokens(c, head, sizeof head - 1);
    int rc = qe_buf_append(out, head, sizeof head - 1);
    if (rc < 0) return rc;
    return qe_kb_prompt_block(hits, n, budget_tokens > h ? budget_tokens - h : 0, c, out);
}
