/* kb_extract_pdf.c — PDF text per page with poppler-glib (parsed from memory). Pages give the blocks their page
 * numbers for citations. Headings come from the PDF's outline (bookmarks): a line equal to an outline title on
 * that title's page (±1) becomes a heading at the outline's depth. Other lines are joined into paragraphs that
 * end at sentence-final punctuation or a short line. A PDF without text (scanned) is an error: it needs OCR. */
#include <glib.h>
#include <poppler.h>
#include <stdlib.h>
#include <string.h>

#include "store/kb_internal.h"

typedef struct { char *text; int level, page; bool used; } outline_entry;
typedef struct { outline_entry *v; size_t n, cap; } outline;

/* Title with whitespace removed: PDF lines and bookmarks differ in spacing ("1.1.1. shell 提示符"). */
static char *squash(const char *s, size_t n) {
    char *o = malloc(n + 1);
    size_t k = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') o[k++] = s[i];
    o[k] = 0;
    return o;
}

static void outline_walk(PopplerDocument *doc, PopplerIndexIter *it, int level, outline *ol) {
    if (level > 12) return;
    do {
        PopplerAction *a = poppler_index_iter_get_action(it);
        if (a && a->type == POPPLER_ACTION_GOTO_DEST && a->goto_dest.title) {
            int page = 0;
            PopplerDest *d = a->goto_dest.dest;
            if (d && d->type == POPPLER_DEST_NAMED) {
                PopplerDest *nd = poppler_document_find_dest(doc, d->named_dest);
                if (nd) { page = nd->page_num; poppler_dest_free(nd); }
            } else if (d) {
                page = d->page_num;
            }
            if (ol->n == ol->cap) {
                size_t cap = ol->cap ? ol->cap * 2 : 64;
                outline_entry *v = realloc(ol->v, cap * sizeof *v);
                if (v) { ol->v = v; ol->cap = cap; }
            }
            if (ol->n < ol->cap) {
                char *t = squash(a->goto_dest.title, strlen(a->goto_dest.title));
                if (t && *t) ol->v[ol->n++] = (outline_entry){t, level, page, false};
                else free(t);
            }
        }
        if (a) poppler_action_free(a);
        PopplerIndexIter *child = poppler_index_iter_get_child(it);
        if (child) {
            outline_walk(doc, child, level + 1, ol);
            poppler_index_iter_free(child);
        }
    } while (poppler_index_iter_next(it));
}

static int heading_of(outline *ol, const char *line, size_t n, int page) {
    if (!ol->n || n > 300) return 0;
    char *s = squash(line, n);
    int lv = 0;
    for (size_t i = 0; s && *s && i < ol->n && !lv; i++) {
        outline_entry *e = &ol->v[i];
        if (!e->used && (e->page == 0 || abs(e->page - page) <= 1) && !strcmp(e->text, s)) { e->used = true; lv = e->level; }
    }
    free(s);
    return lv;
}

static bool sentence_final(const char *s, size_t n) {
    while (n && s[n - 1] == ' ') n--;
    if (!n) return true;
    char c = s[n - 1];
    if (c == '.' || c == '!' || c == '?' || c == ':') return true;
    if (n >= 3) {
        const char *e = s + n - 3;
        return !memcmp(e, "。", 3) || !memcmp(e, "！", 3) || !memcmp(e, "？", 3) || !memcmp(e, "：", 3);
    }
    return false;
}

int qe_kb_extract_pdf(const char *p, size_t n, qe_kb_extracted *x, char *err) {
    GError *ge = NULL;
    GBytes *bytes = g_bytes_new_static(p, n);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &ge);
    int rc = QE_OK;
    outline ol = {0};
    if (!doc) {
        rc = qe_errf(err, QE_EFORMAT, "not a readable PDF: %s", ge && ge->message ? ge->message : "unknown error");
        goto done;
    }
    PopplerIndexIter *it = poppler_index_iter_new(doc);
    if (it) {
        outline_walk(doc, it, 1, &ol);
        poppler_index_iter_free(it);
    }
    gchar *title = poppler_document_get_title(doc);
    if (title) { qe_kb_ext_title(x, title, strlen(title)); g_free(title); }
    int pages = poppler_document_get_n_pages(doc);
    qe_buf para = {0};
    for (int pg = 0; pg < pages && rc == QE_OK; pg++) {
        PopplerPage *page = poppler_document_get_page(doc, pg);
        if (!page) continue;
        gchar *text = poppler_page_get_text(page);
        g_object_unref(page);
        if (!text) continue;
        x->page = pg + 1;
        size_t tl = strlen(text);
        if (qe_kb_utf8_check(text, tl, NULL) < 0) { g_free(text); continue; }
        for (size_t i = 0; i < tl && rc == QE_OK;) {
            size_t e = i;
            while (e < tl && text[e] != '\n') e++;
            size_t a = i, z = e;
            while (a < z && (text[a] == ' ' || text[a] == '\r')) a++;
            while (z > a && (text[z - 1] == ' ' || text[z - 1] == '\r')) z--;
            int lv = z > a ? heading_of(&ol, text + a, z - a, pg) : 0;
            if (lv || z == a) {
                if (para.n) rc = qe_kb_ext_add(x, QE_KB_PARA, 0, para.p, para.n);
                para.n = 0;
                if (lv && rc == QE_OK) rc = qe_kb_ext_add(x, QE_KB_HEADING, lv, text + a, z - a);
            } else {
                if (para.n) qe_buf_append(&para, "\n", 1);
                if (qe_buf_append(&para, text + a, z - a) < 0) rc = QE_ENOMEM;
                if (rc == QE_OK && sentence_final(text + a, z - a)) {
                    rc = qe_kb_ext_add(x, QE_KB_PARA, 0, para.p, para.n);
                    para.n = 0;
                }
            }
            i = e + 1;
        }
        /* a paragraph does not run across pages: each block keeps one page number */
        if (para.n && rc == QE_OK) rc = qe_kb_ext_add(x, QE_KB_PARA, 0, para.p, para.n);
        para.n = 0;
        g_free(text);
    }
    qe_buf_free(&para);
    if (rc < 0) rc = qe_errf(err, rc, "out of memory");
    else if (x->n == 0) rc = qe_errf(err, QE_EFORMAT, "this PDF has no text layer (a scan? it needs OCR first)");
done:
    for (size_t i = 0; i < ol.n; i++) free(ol.v[i].text);
    free(ol.v);
    if (doc) g_object_unref(doc);
    g_bytes_unref(bytes);
    if (ge) g_error_free(ge);
    return rc;
}
