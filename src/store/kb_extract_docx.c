/* kb_extract_docx.c — Word .docx (a zip of XML) with libzip + libxml2: word/document.xml paragraphs, heading
 * levels from the paragraph style (styles.xml: "heading N" / "标题 N" names, or an outline level), list
 * paragraphs (w:numPr) as items and table rows as rows. The archive is read from memory; each part is
 * capped at MAX_PART uncompressed bytes while it is inflated (the size in the zip header can lie), so a
 * zip bomb is refused instead of filling memory. */
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

#include "store/kb_internal.h"

#define MAX_PART (64u << 20)

static int read_part(zip_t *z, const char *name, char **out, size_t *len, char *err) {
    *out = NULL;
    *len = 0;
    zip_int64_t idx = zip_name_locate(z, name, 0);
    if (idx < 0) return QE_ENOTFOUND;
    zip_stat_t st;
    if (zip_stat_index(z, (zip_uint64_t)idx, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && st.size > MAX_PART)
        return qe_errf(err, QE_ERANGE, "%s inflates to %llu MB (limit %u MB): refused as a zip bomb", name,
                       (unsigned long long)(st.size >> 20), MAX_PART >> 20);
    zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
    if (!f) return qe_errf(err, QE_EFORMAT, "cannot read %s in the .docx: %s", name, zip_strerror(z));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int rc = QE_OK;
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_PART) { rc = qe_errf(err, QE_ERANGE, "%s inflates past %u MB: refused as a zip bomb", name, MAX_PART >> 20); break; }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) break;
            buf = nb;
        }
        zip_int64_t k = zip_fread(f, buf + n, cap - n);
        if (k < 0) { rc = qe_errf(err, QE_EFORMAT, "corrupt .docx: %s: %s", name, zip_file_strerror(f)); break; }
        if (k == 0) break;
        n += (size_t)k;
    }
    zip_fclose(f);
    if (!buf) return qe_errf(err, QE_ENOMEM, "out of memory");
    if (rc < 0) { free(buf); return rc; }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return QE_OK;
}

static bool is(const xmlNode *n, const char *local) { return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local); }

static xmlChar *wval(xmlNode *n) {
    xmlChar *v = xmlGetProp(n, (const xmlChar *)"val");
    return v;
}

typedef struct { char id[64]; int level; } style;
typedef struct { style *v; size_t n; } styles;

static int heading_from_name(const char *name) {
    /* "heading 1", "Heading1", "标题 1", "Title" */
    const char *d = NULL;
    if (!strncasecmp(name, "heading", 7)) d = name + 7;
    else if (!strncmp(name, "标题", 6)) d = name + 6;
    else if (!strcasecmp(name, "title")) return 1;
    if (!d) return 0;
    while (*d == ' ') d++;
    return *d >= '1' && *d <= '9' && !d[1] ? *d - '0' : 0;
}

static void load_styles(const char *p, size_t n, styles *out) {
    xmlDoc *doc = xmlReadMemory(p, (int)n, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    for (xmlNode *s = root ? root->children : NULL; s; s = s->next) {
        if (!is(s, "style")) continue;
        xmlChar *id = xmlGetProp(s, (const xmlChar *)"styleId");
        int level = 0;
        for (xmlNode *c = s->children; c; c = c->next) {
            if (is(c, "name")) { xmlChar *v = wval(c); if (v) { level = level ? level : heading_from_name((const char *)v); xmlFree(v); } }
            if (is(c, "pPr"))
                for (xmlNode *q = c->children; q; q = q->next)
                    if (is(q, "outlineLvl")) { xmlChar *v = wval(q); if (v && !level) level = atoi((const char *)v) + 1; xmlFree(v); }
        }
        if (id && level > 0 && level <= 9) {
            style *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
            if (nv) { out->v = nv; snprintf(nv[out->n].id, sizeof nv[0].id, "%s", (const char *)id); nv[out->n++].level = level; }
        }
        xmlFree(id);
    }
    if (doc) xmlFreeDoc(doc);
}

static void run_text(xmlNode *n, qe_buf *out, int depth) {
    for (xmlNode *c = n->children; c && depth < 64; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (is(c, "t")) {
            xmlChar *t = xmlNodeGetContent(c);
            if (t) { qe_buf_append(out, t, strlen((const char *)t)); xmlFree(t); }
        } else if (is(c, "tab")) qe_buf_append(out, " ", 1);
        else if (is(c, "br") || is(c, "cr")) qe_buf_append(out, "\n", 1);
        else if (!is(c, "pPr") && !is(c, "rPr") && !is(c, "instrText") && !is(c, "delText")) run_text(c, out, depth + 1);
    }
}

/* Heading level and list-ness of a paragraph from its w:pPr. */
static void para_props(xmlNode *p, const styles *st, int *level, bool *item) {
    *level = 0;
    *item = false;
    for (xmlNode *c = p->children; c; c = c->next) {
        if (!is(c, "pPr")) continue;
        for (xmlNode *q = c->children; q; q = q->next) {
            if (is(q, "numPr")) *item = true;
            xmlChar *v = (is(q, "pStyle") || is(q, "outlineLvl")) ? wval(q) : NULL;
            if (!v) continue;
            if (is(q, "outlineLvl")) { int l = atoi((const char *)v) + 1; if (l >= 1 && l <= 9) *level = l; }
            else {
                for (size_t i = 0; i < st->n; i++)
                    if (!strcmp(st->v[i].id, (const char *)v)) *level = st->v[i].level;
                if (!*level) *level = heading_from_name((const char *)v);
            }
            xmlFree(v);
        }
    }
}

static int body_walk(xmlNode *n, const styles *st, qe_kb_extracted *x, qe_buf *b, int depth) {
    int rc = QE_OK;
    for (xmlNode *c = n->children; c && rc == QE_OK && depth < 64; c = c->next) {
        if (is(c, "p")) {
            int level;
            bool item;
            para_props(c, st, &level, &item);
            b->n = 0;
            run_text(c, b, 0);
            if (level && !x->title[0]) qe_kb_ext_title(x, b->p ? b->p : "", b->n);
            if (b->n) rc = qe_kb_ext_add(x, level ? QE_KB_HEADING : item ? QE_KB_ITEM : QE_KB_PARA, level, b->p, b->n);
        } else if (is(c, "tbl")) {
            for (xmlNode *r = c->children; r && rc == QE_OK; r = r->next) {
                if (!is(r, "tr")) continue;
                b->n = 0;
                for (xmlNode *cell = r->children; cell; cell = cell->next) {
                    if (!is(cell, "tc")) continue;
                    if (b->n) qe_buf_append(b, " | ", 3);
                    run_text(cell, b, 0);
                }
                if (b->n) rc = qe_kb_ext_add(x, QE_KB_ROW, 0, b->p, b->n);
            }
        } else if (c->type == XML_ELEMENT_NODE && (is(c, "sdt") || is(c, "sdtContent") || is(c, "body"))) {
            rc = body_walk(c, st, x, b, depth + 1);
        }
    }
    return rc;
}

int qe_kb_extract_docx(const char *p, size_t n, qe_kb_extracted *x, char *err) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(p, n, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY, &ze) : NULL;
    int rc = QE_OK;
    char *doc_xml = NULL, *sty_xml = NULL;
    size_t doc_len = 0, sty_len = 0;
    styles st = {0};
    xmlDoc *doc = NULL;
    qe_buf b = {0};
    if (!z) {
        rc = qe_errf(err, QE_EFORMAT, "not a .docx (zip) file: %s", zip_error_strerror(&ze));
        if (src) zip_source_free(src);
        goto done;
    }
    rc = read_part(z, "word/document.xml", &doc_xml, &doc_len, err);
    if (rc == QE_ENOTFOUND) { rc = qe_errf(err, QE_EFORMAT, "not a Word document: no word/document.xml inside"); goto done; }
    if (rc < 0) goto done;
    if (read_part(z, "word/styles.xml", &sty_xml, &sty_len, NULL) == QE_OK) load_styles(sty_xml, sty_len, &st);
    doc = xmlReadMemory(doc_xml, (int)doc_len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root) { rc = qe_errf(err, QE_EFORMAT, "corrupt .docx: word/document.xml is not well-formed XML"); goto done; }
    for (xmlNode *c = root->children; c && rc == QE_OK; c = c->next)
        if (is(c, "body")) rc = body_walk(c, &st, x, &b, 0);
    if (rc < 0) rc = qe_errf(err, rc, "out of memory");
done:
    qe_buf_free(&b);
    if (doc) xmlFreeDoc(doc);
    free(doc_xml);
    free(sty_xml);
    free(st.v);
    if (z) zip_discard(z);
    return rc;
}
