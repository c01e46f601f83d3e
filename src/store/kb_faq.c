/* kb_faq.c — FAQ: the .csv and .md parsers (pure, over (ptr, len)), question similarity and best-match with a
 * threshold (a reworded question matches, an unrelated one does not), storing FAQ entries in the KB, and
 * hand-off phrase detection ("转人工"). FAQ answers are returned verbatim: they are never paraphrased. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

#include "store/kb_internal.h"

void qe_kb_faq_free(qe_kb_faq_entry *e, int n) {
    if (!e) return;
    for (int i = 0; i < n; i++) {
        free(e[i].question);
        free(e[i].alternates);
        free(e[i].answer);
        free(e[i].source);
    }
    free(e);
}

/* Copy of s[0..n) with surrounding whitespace trimmed; NULL on OOM. */
static char *trimdup(const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
    char *o = malloc(n + 1);
    if (o) { memcpy(o, s, n); o[n] = 0; }
    return o;
}

typedef struct { qe_kb_faq_entry *v; int n, cap; } faq_list;

static int faq_push(faq_list *l, const char *q, size_t nq, const char *alt, size_t nalt, const char *a, size_t na,
                    const char *source, int line) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        qe_kb_faq_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v) return QE_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    qe_kb_faq_entry *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    e->question = trimdup(q, nq);
    e->alternates = alt && nalt ? trimdup(alt, nalt) : NULL;
    e->answer = trimdup(a, na);
    e->source = strdup(source ? source : "");
    e->line = line;
    if (!e->question || !e->answer || !e->source || (alt && nalt && !e->alternates)) return QE_ENOMEM;
    if (e->alternates && !e->alternates[0]) { free(e->alternates); e->alternates = NULL; }
    return QE_OK;
}

static int line_of(const char *p, size_t off) {
    int l = 1;
    for (size_t i = 0; i < off; i++) l += p[i] == '\n';
    return l;
}

/* --- CSV -------------------------------------------------------------------------------------------------- */

typedef struct { size_t a, n; bool quoted; } field;
#define MAX_COLS 16

/* One record starting at *pos: fields as spans (quoted ones still contain their "" escapes). */
static int csv_record(const char *p, size_t n, size_t *pos, field *f, int *nf, char *err) {
    size_t i = *pos;
    *nf = 0;
    for (;;) {
        field cur = {i, 0, false};
        if (i < n && p[i] == '"') {
            cur.quoted = true;
            cur.a = ++i;
            for (;;) {
                if (i >= n) return qe_errf(err, QE_EFORMAT, "line %d: a quoted field is not closed", line_of(p, cur.a));
                if (p[i] == '"') {
                    if (i + 1 < n && p[i + 1] == '"') { i += 2; continue; }
                    break;
                }
                i++;
            }
            cur.n = i - cur.a;
            i++; /* closing quote */
            while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
            if (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r')
                return qe_errf(err, QE_EFORMAT, "line %d: text after a closing quote", line_of(p, i));
        } else {
            while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r') i++;
            cur.n = i - cur.a;
        }
        if (*nf < MAX_COLS) f[(*nf)++] = cur;
        if (i < n && p[i] == ',') { i++; continue; }
        if (i < n && p[i] == '\r') i++;
        if (i < n && p[i] == '\n') i++;
        break;
    }
    *pos = i;
    return QE_OK;
}

static char *field_str(const char *p, field f) {
    char *o = malloc(f.n + 1), *w = o;
    if (!o) return NULL;
    for (size_t i = 0; i < f.n; i++) {
        *w++ = p[f.a + i];
        if (f.quoted && p[f.a + i] == '"') i++; /* "" -> " */
    }
    *w = 0;
    return o;
}

static bool header_is(const char *s, const char *const *names) {
    for (; *names; names++)
        if (!strcasecmp(s, *names)) return true;
    return false;
}

int qe_kb_faq_parse_csv(const char *p, size_t n, const char *source, qe_kb_faq_entry **out, int *count, char *err) {
    *out = NULL;
    *count = 0;
    if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) { p += 3; n -= 3; }
    int rc = qe_kb_utf8_check(p, n, err);
    if (rc < 0) return rc;
    static const char *const QN[] = {"question", "questions", "q", "问题", "问", NULL};
    static const char *const AN[] = {"answer", "answers", "a", "答案", "回答", "答", NULL};
    static const char *const ALTN[] = {"alternates", "alternatives", "alternate", "similar", "相似问题", "其他问法", NULL};
    int qc = 0, ac = 1, altc = 2;
    faq_list l = {0};
    size_t pos = 0;
    bool first = true;
    while (pos < n) {
        size_t start = pos;
        field f[MAX_COLS];
        int nf;
        if ((rc = csv_record(p, n, &pos, f, &nf, err)) < 0) goto fail;
        char *cells[MAX_COLS] = {0};
        for (int i = 0; i < nf; i++)
            if (!(cells[i] = field_str(p, f[i]))) { rc = QE_ENOMEM; break; }
        bool empty = true;
        for (int i = 0; i < nf && rc == QE_OK; i++) {
            char *t = trimdup(cells[i], strlen(cells[i]));
            if (t) { free(cells[i]); cells[i] = t; }
            if (cells[i][0]) empty = false;
        }
        if (rc == QE_OK && first && !empty) {
            first = false;
            int hq = -1, ha = -1, halt = -1;
            for (int i = 0; i < nf; i++) {
                if (header_is(cells[i], QN)) hq = i;
                else if (header_is(cells[i], AN)) ha = i;
                else if (header_is(cells[i], ALTN)) halt = i;
            }
            if (hq >= 0 && ha >= 0) {
                qc = hq;
                ac = ha;
                altc = halt;
                for (int i = 0; i < nf; i++) free(cells[i]);
                continue;
            }
        }
        if (rc == QE_OK && !empty) {
            const char *q = qc < nf ? cells[qc] : "", *a = ac < nf ? cells[ac] : "", *alt = altc >= 0 && altc < nf ? cells[altc] : NULL;
            if (!*q || !*a) rc = qe_errf(err, QE_EFORMAT, "line %d: each row needs a question and an answer", line_of(p, start));
            else rc = faq_push(&l, q, strlen(q), alt, alt ? strlen(alt) : 0, a, strlen(a), source, line_of(p, start));
            if (rc == QE_ENOMEM) qe_errf(err, rc, "out of memory");
        }
        for (int i = 0; i < nf; i++) free(cells[i]);
        if (rc < 0) goto fail;
    }
    *out = l.v;
    *count = l.n;
    return QE_OK;
fail:
    if (rc == QE_ENOMEM) qe_errf(err, rc, "out of memory");
    qe_kb_faq_free(l.v, l.n);
    return rc;
}

/* --- Markdown --------------------------------------------------------------------------------------------- */

int qe_kb_faq_parse_md(const char *p, size_t n, const char *source, qe_kb_faq_entry **out, int *count, char *err) {
    *out = NULL;
    *count = 0;
    if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) { p += 3; n -= 3; }
    int rc = qe_kb_utf8_check(p, n, err);
    if (rc < 0) return rc;
    faq_list l = {0};
    size_t qa = 0, qn = 0, ans_a = 0, ans_e = 0;
    int qline = 0;
    bool open = false;
#define CLOSE() do { if (open) { \
        size_t bar = 0; while (bar + 2 < qn && memcmp(p + qa + bar, " | ", 3)) bar++; \
        bool has_alt = bar + 2 < qn; \
        if (ans_e <= ans_a) { rc = qe_errf(err, QE_EFORMAT, "line %d: the question has no answer", qline); goto fail; } \
        if ((rc = faq_push(&l, p + qa, has_alt ? bar : qn, has_alt ? p + qa + bar + 3 : NULL, has_alt ? qn - bar - 3 : 0, \
                           p + ans_a, ans_e - ans_a, source, qline)) < 0) { qe_errf(err, rc, "out of memory"); goto fail; } \
        open = false; } } while (0)
    int line = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && p[e] != '\n') e++;
        line++;
        bool h2 = e - i >= 3 && !memcmp(p + i, "## ", 3);
        bool h1 = e - i >= 2 && !memcmp(p + i, "# ", 2);
        if (h2 || h1) {
            CLOSE();
            if (h2) {
                open = true;
                qa = i + 3;
                qn = e - qa;
                while (qn && (p[qa + qn - 1] == '\r' || p[qa + qn - 1] == ' ' || p[qa + qn - 1] == '#')) qn--;
                qline = line;
                ans_a = ans_e = e < n ? e + 1 : n;
            }
        } else if (open) {
            bool blank = true;
            for (size_t k = i; k < e; k++) blank &= p[k] == ' ' || p[k] == '\t' || p[k] == '\r';
            if (!blank) {
                if (ans_e == ans_a) ans_a = i;
                ans_e = e;
            }
        }
        i = e < n ? e + 1 : n;
    }
    CLOSE();
#undef CLOSE
    *out = l.v;
    *count = l.n;
    return QE_OK;
fail:
    qe_kb_faq_free(l.v, l.n);
    return rc;
}

int qe_kb_faq_parse(const char *p, size_t n, const char *source, qe_kb_faq_entry **out, int *count, char *err) {
    const char *dot = source ? strrchr(source, '.') : NULL;
    if (dot && !strcasecmp(dot, ".csv")) return qe_kb_faq_parse_csv(p, n, source, out, count, err);
    if (dot && (!strcasecmp(dot, ".md") || !strcasecmp(dot, ".markdown"))) return qe_kb_faq_parse_md(p, n, source, out, count, err);
    return qe_errf(err, QE_EUNSUPPORTED, "a FAQ file is .csv (question,answer[,alternates]) or .md (## question + answer)");
}

/* --- similarity ------------------------------------------------------------------------------------------- */

#define MAX_SET 256
typedef struct { uint64_t terms[MAX_SET], chars[MAX_SET]; int nt, nc; } term_sets;

static uint64_t fnv(const char *s, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void set_add(uint64_t *v, int *n, uint64_t h) {
    for (int i = 0; i < *n; i++)
        if (v[i] == h) return;
    if (*n < MAX_SET) v[(*n)++] = h;
}

static int collect(void *user, int colocated, const char *t, int nt, int start, int end, int cjk) {
    term_sets *s = user;
    uint64_t h = fnv(t, nt);
    int chars = 0;
    for (int i = 0; i < nt; i++) chars += ((unsigned char)t[i] & 0xC0) != 0x80;
    bool unigram = cjk && chars == 1;
    if (!cjk || !unigram) set_add(s->terms, &s->nt, h); /* words and bigrams */
    if (!cjk || unigram) set_add(s->chars, &s->nc, h);  /* words and characters */
    return 0;
}

static double dice(const uint64_t *a, int na, const uint64_t *b, int nb) {
    if (!na || !nb) return 0;
    int common = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (a[i] == b[j]) { common++; break; }
    return 2.0 * common / (na + nb);
}

double qe_kb_faq_similarity(const char *a, size_t na, const char *b, size_t nb) {
    term_sets *sa = calloc(2, sizeof *sa);
    if (!sa) return 0;
    term_sets *sb = sa + 1;
    qe_kb_terms(a, na, QE_KB_TERMS_ALL, collect, sa);
    qe_kb_terms(b, nb, QE_KB_TERMS_ALL, collect, sb);
    double t = dice(sa->terms, sa->nt, sb->terms, sb->nt), c = dice(sa->chars, sa->nc, sb->chars, sb->nc);
    /* one-character questions have no bigrams: characters alone decide */
    double s = (sa->nt && sb->nt) ? 0.7 * t + 0.3 * c : c;
    free(sa);
    return s;
}

int qe_kb_faq_best(const qe_kb_faq_entry *e, int n, const char *q, double threshold, double *score) {
    int best = -1;
    double bs = 0;
    size_t nq = strlen(q);
    for (int i = 0; i < n; i++) {
        double s = qe_kb_faq_similarity(q, nq, e[i].question, strlen(e[i].question));
        if (s > bs) { bs = s; best = i; }
        for (const char *a = e[i].alternates; a && *a;) {
            const char *bar = strchr(a, '|');
            size_t len = bar ? (size_t)(bar - a) : strlen(a);
            s = qe_kb_faq_similarity(q, nq, a, len);
            if (s > bs) { bs = s; best = i; }
            a = bar ? bar + 1 : a + len;
        }
    }
    if (score) *score = bs;
    return bs >= threshold ? best : -1;
}

/* --- storage ---------------------------------------------------------------------------------------------- */

int qe_kb_faq_store(qe_kb *kb, const char *source, const qe_kb_faq_entry *e, int n, char *err) {
    int rc = qe_kb_exec(kb, "BEGIN IMMEDIATE", err);
    if (rc < 0) return rc;
    sqlite3_stmt *del = NULL, *ins = NULL;
    if (sqlite3_prepare_v2(kb->db, "DELETE FROM faq WHERE source=?", -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(kb->db, "INSERT INTO faq(source, line, question, alternates, answer) VALUES(?,?,?,?,?)", -1, &ins,
                           NULL) != SQLITE_OK) {
        rc = qe_kb_sqlerr(kb, QE_EIO, err, "storing the FAQ");
        goto fail;
    }
    sqlite3_bind_text(del, 1, source, -1, SQLITE_STATIC);
    if (sqlite3_step(del) != SQLITE_DONE) { rc = qe_kb_sqlerr(kb, QE_EIO, err, "storing the FAQ"); goto fail; }
    for (int i = 0; i < n; i++) {
        sqlite3_bind_text(ins, 1, source, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 2, e[i].line);
        sqlite3_bind_text(ins, 3, e[i].question, -1, SQLITE_STATIC);
        if (e[i].alternates) sqlite3_bind_text(ins, 4, e[i].alternates, -1, SQLITE_STATIC);
        else sqlite3_bind_null(ins, 4);
        sqlite3_bind_text(ins, 5, e[i].answer, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) { rc = qe_kb_sqlerr(kb, QE_EIO, err, "storing the FAQ"); goto fail; }
        sqlite3_reset(ins);
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return qe_kb_exec(kb, "COMMIT", err);
fail:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    qe_kb_exec(kb, "ROLLBACK", NULL);
    return rc;
}

int qe_kb_faq_load(qe_kb *kb, qe_kb_faq_entry **out, int *n, char *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "SELECT question, alternates, answer, source, line FROM faq ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "reading the FAQ");
    faq_list l = {0};
    int rc = QE_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *q = (const char *)sqlite3_column_text(st, 0), *alt = (const char *)sqlite3_column_text(st, 1),
                   *a = (const char *)sqlite3_column_text(st, 2), *src = (const char *)sqlite3_column_text(st, 3);
        if ((rc = faq_push(&l, q ? q : "", q ? strlen(q) : 0, alt, alt ? strlen(alt) : 0, a ? a : "", a ? strlen(a) : 0, src,
                           sqlite3_column_int(st, 4))) < 0) {
            qe_errf(err, rc, "out of memory");
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc < 0) { qe_kb_faq_free(l.v, l.n); return rc; }
    *out = l.v;
    *n = l.n;
    return QE_OK;
}

/* --- hand-off --------------------------------------------------------------------------------------------- */

const char *const qe_kb_handoff_default[] = {"转人工", "人工客服", "人工服务", "找人工", "真人客服", "human agent",
                                              "real person", "talk to a human", "speak to a human", NULL};

/* NFKC-case-folded copy without spaces (owned), or NULL. */
static char *fold_nospace(const char *s, size_t n) {
    utf8proc_uint8_t *m = NULL;
    if (utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &m,
                     UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_COMPOSE | UTF8PROC_STABLE | UTF8PROC_IGNORE) < 0)
        return NULL;
    char *w = (char *)m;
    for (char *r = (char *)m; *r; r++)
        if (*r != ' ' && *r != '\t' && *r != '\n' && *r != '\r') *w++ = *r;
    *w = 0;
    return (char *)m;
}

bool qe_kb_handoff(const char *q, size_t n, const char *const *phrases, int n_phrases) {
    if (!phrases) {
        phrases = qe_kb_handoff_default;
        n_phrases = 0;
        while (phrases[n_phrases]) n_phrases++;
    }
    char *fq = fold_nospace(q, n);
    if (!fq) return false;
    bool hit = false;
    for (int i = 0; i < n_phrases && !hit; i++) {
        if (!phrases[i] || !*phrases[i]) continue;
        char *fp = fold_nospace(phrases[i], strlen(phrases[i]));
        hit = fp && *fp && strstr(fq, fp);
        free(fp);
    }
    free(fq);
    return hit;
}
