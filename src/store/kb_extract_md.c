/* kb_extract_md.c — Markdown (.md) into blocks: ATX (#) and setext headings, paragraphs, list items, table
 * rows (the |---| rule dropped), fenced code kept line by line. Inline markup stays as written: the search
 * tokenizer ignores punctuation, and citations show the author's text. */
#include <string.h>

#include "store/kb_internal.h"

static size_t skip_sp(const char *s, size_t i, size_t e) {
    while (i < e && (s[i] == ' ' || s[i] == '\t')) i++;
    return i;
}

static size_t rtrim(const char *s, size_t a, size_t e) {
    while (e > a && (s[e - 1] == ' ' || s[e - 1] == '\r' || s[e - 1] == '\t')) e--;
    return e;
}

/* Length of a list marker at s[a..e) ("- ", "* ", "+ ", "12. ", "3) "), or 0. */
static size_t list_marker(const char *s, size_t a, size_t e) {
    if (a + 1 < e && (s[a] == '-' || s[a] == '*' || s[a] == '+') && s[a + 1] == ' ') return 2;
    size_t i = a;
    while (i < e && i - a < 9 && s[i] >= '0' && s[i] <= '9') i++;
    if (i > a && i + 1 < e && (s[i] == '.' || s[i] == ')') && s[i + 1] == ' ') return i - a + 2;
    return 0;
}

static bool table_rule(const char *s, size_t a, size_t e) {
    bool dash = false;
    for (size_t i = a; i < e; i++) {
        if (s[i] == '-') dash = true;
        else if (s[i] != '|' && s[i] != ':' && s[i] != ' ') return false;
    }
    return dash;
}

int qe_kb_extract_md(const char *p, size_t n, qe_kb_extracted *x, char *err) {
    int rc = QE_OK;
    if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) { p += 3; n -= 3; }
    if ((rc = qe_kb_utf8_check(p, n, err)) < 0) return rc;
    /* current paragraph or list item: [pa, pe), kind */
    size_t pa = 0, pe = 0;
    qe_kb_block_kind pk = QE_KB_PARA;
    bool open = false, fence = false;
    size_t fa = 0, fe = 0;
    char fence_ch = '`';
#define CLOSE() do { if (open && (rc = qe_kb_ext_add(x, pk, 0, p + pa, pe - pa)) < 0) goto oom; open = false; } while (0)
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && p[e] != '\n') e++;
        size_t a = skip_sp(p, i, e), z = rtrim(p, a, e);
        size_t next = e < n ? e + 1 : n;
        if (fence) {
            if (z - a >= 3 && p[a] == fence_ch && p[a + 1] == fence_ch && p[a + 2] == fence_ch) {
                if (fe > fa && (rc = qe_kb_ext_add(x, QE_KB_PRE, 0, p + fa, fe - fa)) < 0) goto oom;
                fence = false;
            } else {
                if (fe == fa) fa = i;
                fe = e;
            }
            i = next;
            continue;
        }
        if (z - a >= 3 && (p[a] == '`' || p[a] == '~') && p[a + 1] == p[a] && p[a + 2] == p[a]) {
            CLOSE();
            fence = true;
            fence_ch = p[a];
            fa = fe = next;
            i = next;
            continue;
        }
        if (a == z) { CLOSE(); i = next; continue; }
        if (p[a] == '#') {
            size_t h = a;
            while (h < z && p[h] == '#') h++;
            if (h - a <= 6 && (h == z || p[h] == ' ')) {
                CLOSE();
                size_t ta = skip_sp(p, h, z), tz = z;
                while (tz > ta && p[tz - 1] == '#') tz--;
                tz = rtrim(p, ta, tz);
                if (tz > ta) {
                    if (!x->title[0] && h - a == 1) qe_kb_ext_title(x, p + ta, tz - ta);
                    if ((rc = qe_kb_ext_add(x, QE_KB_HEADING, (int)(h - a), p + ta, tz - ta)) < 0) goto oom;
                }
                i = next;
                continue;
            }
        }
        /* setext: a paragraph line followed by === or --- */
        if (open && pk == QE_KB_PARA && z - a >= 2 && (p[a] == '=' || p[a] == '-')) {
            bool all = true;
            for (size_t k = a; k < z; k++) all &= p[k] == p[a];
            if (all) {
                if (!x->title[0] && p[a] == '=') qe_kb_ext_title(x, p + pa, pe - pa);
                if ((rc = qe_kb_ext_add(x, QE_KB_HEADING, p[a] == '=' ? 1 : 2, p + pa, pe - pa)) < 0) goto oom;
                open = false;
                i = next;
                continue;
            }
        }
        if (p[a] == '|') {
            CLOSE();
            if (!table_rule(p, a, z) && (rc = qe_kb_ext_add(x, QE_KB_ROW, 0, p + a, z - a)) < 0) goto oom;
            i = next;
            continue;
        }
        size_t lm = list_marker(p, a, z);
        if (lm) {
            CLOSE();
            open = true;
            pk = QE_KB_ITEM;
            pa = a + lm;
            pe = z;
        } else if (p[a] == '>') {
            if (!open) { open = true; pk = QE_KB_PARA; pa = skip_sp(p, a + 1, z); }
            pe = z;
        } else {
            if (!open) { open = true; pk = QE_KB_PARA; pa = a; }
            pe = z;
        }
        i = next;
    }
    if (fence && fe > fa && (rc = qe_kb_ext_add(x, QE_KB_PRE, 0, p + fa, fe - fa)) < 0) goto oom;
    CLOSE();
#undef CLOSE
    if (!x->title[0] && x->n) {
        const qe_kb_block *b = &x->b[0];
        qe_kb_ext_title(x, x->text.p + b->off, b->len > 120 ? 120 : b->len);
    }
    return QE_OK;
oom:
    return qe_errf(err, rc, "out of memory");
}
