/* kb_extract_html.c — HTML (.html/.htm) into blocks with libxml2's forgiving HTML parser (recover, no network):
 * h1-h6 are headings, li items, tr rows (cells joined by " | "), pre keeps its lines, every other block
 * element ends a paragraph. Scripts, styles, <nav> and navigation/TOC boxes (class "toc", "navheader",
 * "navfooter", "breadcrumb") are skipped: a table of contents repeats every title and would outrank the
 * sections themselves. */
#include <libxml/HTMLparser.h>
#include <string.h>
#include <strings.h>

#include "store/kb_internal.h"

typedef struct {
    qe_kb_extracted *x;
    qe_buf cur;
    qe_kb_block_kind kind;
    int rc;
} html_ctx;

static bool name_is(const xmlNode *n, const char *const *names) {
    for (; *names; names++)
        if (!strcasecmp((const char *)n->name, *names)) return true;
    return false;
}

static const char *const SKIP[] = {"script", "style", "head", "noscript", "template", "nav", "svg", "button", "select", NULL};
static const char *const BLOCK[] = {"p", "div", "section", "article", "blockquote", "dd", "dt", "dl", "figcaption", "caption",
                                    "body", "main", "header", "footer", "aside", "ul", "ol", "table", "tbody", "thead",
                                    "form", "hr", "address", "center", "figure", NULL};

static bool skipped_class(xmlNode *n) {
    xmlChar *c = xmlGetProp(n, (const xmlChar *)"class");
    if (!c) return false;
    static const char *const bad[] = {"toc", "navheader", "navfooter", "breadcrumb", "navbar", "sidebar", NULL};
    bool skip = false;
    /* whole words of the class list */
    char *save = NULL;
    for (char *tok = strtok_r((char *)c, " \t\n", &save); tok && !skip; tok = strtok_r(NULL, " \t\n", &save))
        for (const char *const *b = bad; *b && !skip; b++) skip = !strcasecmp(tok, *b);
    xmlFree(c);
    return skip;
}

static void flush(html_ctx *h, qe_kb_block_kind kind, int level) {
    if (h->rc == QE_OK && h->cur.n) h->rc = qe_kb_ext_add(h->x, kind, level, h->cur.p, h->cur.n);
    h->cur.n = 0;
}

static void text_of(xmlNode *n, qe_buf *out, int depth, const char *cell_sep) {
    for (xmlNode *c = n->children; c && depth < 200; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content) qe_buf_append(out, c->content, strlen((const char *)c->content));
        } else if (c->type == XML_ELEMENT_NODE && !name_is(c, SKIP)) {
            bool cell = cell_sep && (!strcasecmp((const char *)c->name, "td") || !strcasecmp((const char *)c->name, "th"));
            if (cell && out->n) qe_buf_append(out, cell_sep, strlen(cell_sep));
            else if (!strcasecmp((const char *)c->name, "br")) qe_buf_append(out, "\n", 1);
            text_of(c, out, depth + 1, cell_sep);
            qe_buf_append(out, " ", 1); /* inline boundary: "<td>a</td><td>b</td>" is not "ab" */
        }
    }
}

static void walk(html_ctx *h, xmlNode *n, int depth) {
    for (xmlNode *c = n->children; c && h->rc == QE_OK; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content) qe_buf_append(&h->cur, c->content, strlen((const char *)c->content));
            continue;
        }
        if (c->type != XML_ELEMENT_NODE || depth > 200) continue;
        const char *nm = (const char *)c->name;
        if (name_is(c, SKIP) || skipped_class(c)) continue;
        if ((nm[0] == 'h' || nm[0] == 'H') && nm[1] >= '1' && nm[1] <= '6' && !nm[2]) {
            flush(h, h->kind, 0);
            text_of(c, &h->cur, 0, NULL);
            if (!h->x->title[0] && nm[1] == '1') qe_kb_ext_title(h->x, h->cur.p, h->cur.n);
            flush(h, QE_KB_HEADING, nm[1] - '0');
        } else if (!strcasecmp(nm, "pre")) {
            flush(h, h->kind, 0);
            text_of(c, &h->cur, 0, NULL);
            flush(h, QE_KB_PRE, 0);
        } else if (!strcasecmp(nm, "tr")) {
            flush(h, h->kind, 0);
            text_of(c, &h->cur, 0, " | ");
            flush(h, QE_KB_ROW, 0);
        } else if (!strcasecmp(nm, "li")) {
            flush(h, h->kind, 0);
            qe_kb_block_kind saved = h->kind;
            h->kind = QE_KB_ITEM;
            walk(h, c, depth + 1);
            flush(h, QE_KB_ITEM, 0);
            h->kind = saved;
        } else if (name_is(c, BLOCK)) {
            flush(h, h->kind, 0);
            walk(h, c, depth + 1);
            flush(h, h->kind, 0);
        } else {
            if (!strcasecmp(nm, "br")) qe_buf_append(&h->cur, "\n", 1);
            walk(h, c, depth + 1); /* inline: a, span, em, code ... */
        }
    }
}

static void find_title(xmlNode *n, qe_kb_extracted *x, int depth) {
    for (xmlNode *c = n ? n->children : NULL; c && depth < 8 && !x->title[0]; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (!strcasecmp((const char *)c->name, "title")) {
            qe_buf t = {0};
            text_of(c, &t, 0, NULL);
            qe_kb_ext_title(x, t.p ? t.p : "", t.n);
            qe_buf_free(&t);
        } else if (!strcasecmp((const char *)c->name, "head") || !strcasecmp((const char *)c->name, "html")) {
            find_title(c, x, depth + 1);
        }
    }
}

int qe_kb_extract_html(const char *p, size_t n, qe_kb_extracted *x, char *err) {
    if (n > INT32_MAX) return qe_errf(err, QE_ERANGE, "file too large");
    /* bytes that are valid UTF-8 are read as UTF-8 (libxml2 would guess Latin-1 without a <meta charset>);
     * anything else is left to the page's own declaration */
    const char *enc = qe_kb_utf8_check(p, n, NULL) == QE_OK ? "UTF-8" : NULL;
    htmlDocPtr doc = htmlReadMemory(p, (int)n, NULL, enc,
                                    HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_NOIMPLIED);
    if (!doc) return qe_errf(err, QE_EFORMAT, "not a readable HTML file");
    xmlNode *root = xmlDocGetRootElement(doc);
    html_ctx h = {.x = x, .kind = QE_KB_PARA};
    /* title from <title> wins over the first <h1> */
    find_title(root, x, 0);
    if (root) {
        /* the root itself may be <body> or a fragment's first element */
        xmlNode holder = {0};
        holder.children = root;
        walk(&h, &holder, 0);
    }
    flush(&h, h.kind, 0);
    qe_buf_free(&h.cur);
    xmlFreeDoc(doc);
    if (h.rc < 0) return qe_errf(err, h.rc, "out of memory");
    return QE_OK;
}
