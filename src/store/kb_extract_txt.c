/* kb_extract_txt.c — plain text (.txt) into blocks: paragraphs separated by blank lines, hard-wrapped lines
 * joined, and headings recognised the way text manuals write them: a numbered line at the left margin
 * ("1.2.3. Title", level = number of parts), "第 N 章/节 ...", or a line underlined with === / ---. */
#include <string.h>

#include "store/kb_internal.h"

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

static bool all_of(const char *s, size_t n, char c) {
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r')) n--;
    if (n < 3) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] != c) return false;
    return true;
}

/* Heading level of a one-line paragraph, or 0. */
static int heading_level(const char *s, size_t n) {
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r')) n--;
    if (n == 0 || n > 160 || s[0] == ' ' || s[0] == '\t') return 0;
    /* "第 3 章 ..." / "第3节 ..." */
    if (n > 6 && !memcmp(s, "第", 3)) {
        size_t i = 3;
        while (i < n && (s[i] == ' ' || ((unsigned char)s[i] == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0))) i += s[i] == ' ' ? 1 : 2;
        size_t d = i;
        while (i < n && ((s[i] >= '0' && s[i] <= '9') || (unsigned char)s[i] >= 0x80)) {
            if (!memcmp(s + i, "章", 3)) return d < i ? 1 : 0;
            if (!memcmp(s + i, "节", 3)) return d < i ? 2 : 0;
            if (s[i] >= '0' && s[i] <= '9') i++;
            else if (i + 3 <= n && (!memcmp(s + i, "一", 3) || !memcmp(s + i, "二", 3) || !memcmp(s + i, "三", 3) ||
                                    !memcmp(s + i, "四", 3) || !memcmp(s + i, "五", 3) || !memcmp(s + i, "六", 3) ||
                                    !memcmp(s + i, "七", 3) || !memcmp(s + i, "八", 3) || !memcmp(s + i, "九", 3) ||
                                    !memcmp(s + i, "十", 3)))
                i += 3;
            else
                break;
        }
        while (i < n && (s[i] == ' ' || ((unsigned char)s[i] == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0))) i += s[i] == ' ' ? 1 : 2;
        if (i + 3 <= n && !memcmp(s + i, "章", 3)) return 1;
        if (i + 3 <= n && !memcmp(s + i, "节", 3)) return 2;
        return 0;
    }
    /* "1.2.3. Title" or "1.2 Title": digits and dots, at least one dot, then a space and text */
    size_t i = 0;
    int parts = 0, dots = 0;
    while (i < n) {
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d || i - d > 3) return 0;
        parts++;
        if (i < n && s[i] == '.') { dots++; i++; if (i < n && s[i] >= '0' && s[i] <= '9') continue; }
        break;
    }
    /* text manuals often put a no-break space (U+00A0) after the number */
    bool nbsp = i + 1 < n && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA0;
    if (!dots || i >= n || (s[i] != ' ' && !nbsp)) return 0;
    while (i < n && (s[i] == ' ' || (i + 1 < n && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA0))) i += s[i] == ' ' ? 1 : 2;
    if (i >= n) return 0;
    /* a sentence is not a title */
    const char *e = s + n;
    if (e[-1] == '.' || e[-1] == ',' || e[-1] == ';' || (n >= 3 && (!memcmp(e - 3, "。", 3) || !memcmp(e - 3, "，", 3))))
        return 0;
    return parts > 6 ? 6 : parts;
}

int qe_kb_extract_txt(const char *p, size_t n, qe_kb_extracted *x, char *err) {
    int rc;
    if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) { p += 3; n -= 3; }
    if ((rc = qe_kb_utf8_check(p, n, err)) < 0) return rc;
    size_t i = 0, para = 0, para_end = 0, lines = 0;
    bool in_para = false;
    while (i <= n) {
        size_t e = i;
        while (e < n && p[e] != '\n') e++;
        bool b = i >= n || blank(p + i, e - i);
        if (in_para && lines == 1 && !b && (all_of(p + i, e - i, '=') || all_of(p + i, e - i, '-'))) {
            /* setext heading: the paragraph's one line is the title */
            if ((rc = qe_kb_ext_add(x, QE_KB_HEADING, p[i] == '=' ? 1 : 2, p + para, para_end - para)) < 0) goto oom;
            in_para = false;
        } else if (b) {
            if (in_para) {
                int lv = lines == 1 ? heading_level(p + para, para_end - para) : 0;
                if ((rc = qe_kb_ext_add(x, lv ? QE_KB_HEADING : QE_KB_PARA, lv, p + para, para_end - para)) < 0) goto oom;
                in_para = false;
            }
        } else {
            if (!in_para) { in_para = true; para = i; lines = 0; }
            para_end = e;
            lines++;
        }
        if (!x->title[0] && in_para && lines == 1 && e - i <= 120 && !b) {
            size_t a = i;
            while (a < e && (p[a] == ' ' || p[a] == '\t')) a++;
            qe_kb_ext_title(x, p + a, e - a);
        }
        if (e >= n) { if (i >= n) break; i = n; continue; }
        i = e + 1;
    }
    if (in_para) {
        int lv = lines == 1 ? heading_level(p + para, para_end - para) : 0;
        if ((rc = qe_kb_ext_add(x, lv ? QE_KB_HEADING : QE_KB_PARA, lv, p + para, para_end - para)) < 0) goto oom;
    }
    return QE_OK;
oom:
    return qe_errf(err, rc, "out of memory");
}
