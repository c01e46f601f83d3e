/* fuzz_kb.c — libFuzzer target for the knowledge base's parsers of untrusted bytes: the text, Markdown and HTML
 * extractors, the chunker over what they produce, the FAQ CSV/Markdown parsers, FAQ similarity and the term
 * splitter. The first byte picks the parser. (PDF and .docx go through poppler and libzip, fuzzed upstream.) */
#include <stdlib.h>
#include <string.h>

#include "store/kb_internal.h"

static int count(void *u, int colocated, const char *t, int nt, int start, int end, int cjk) {
    (*(int *)u)++;
    if (nt <= 0 || start < 0 || end < start) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 1) return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char err[QE_ERR_LEN];
    int which = data[0] % 6;
    if (which <= 2) {
        qe_kb_extracted x = {0};
        qe_kb_extract_fn fn = which == 0 ? qe_kb_extract_txt : which == 1 ? qe_kb_extract_md : qe_kb_extract_html;
        if (fn(p, n, &x, err) == QE_OK) {
            qe_kb_counter c = {0};
            qe_kb_chunk *ch = NULL;
            size_t nch = 0;
            if (qe_kb_chunk_doc(&x, &c, 40, &ch, &nch) == QE_OK)
                for (size_t i = 0; i < nch; i++)
                    if (ch[i].off + ch[i].len > x.text.n || qe_kb_utf8_check(x.text.p + ch[i].off, ch[i].len, NULL) != QE_OK) abort();
            qe_kb_chunks_free(ch, nch);
        }
        qe_kb_ext_free(&x);
    } else if (which <= 4) {
        qe_kb_faq_entry *e = NULL;
        int ne = 0;
        int rc = which == 3 ? qe_kb_faq_parse_csv(p, n, "f.csv", &e, &ne, err) : qe_kb_faq_parse_md(p, n, "f.md", &e, &ne, err);
        if (rc == QE_OK && ne > 0) {
            double s;
            qe_kb_faq_best(e, ne, e[0].question, QE_KB_FAQ_THRESHOLD, &s);
        }
        qe_kb_faq_free(e, ne);
    } else {
        int k = 0;
        for (int mode = 0; mode < 3; mode++) qe_kb_terms(p, n, mode, count, &k);
        qe_kb_faq_similarity(p, n / 2, p + n / 2, n - n / 2);
        qe_kb_handoff(p, n, NULL, 0);
    }
    return 0;
}
