/* test_kb.c — the knowledge base's pure parts and a small store: KB name validation, the CJK term splitter
 * (FTS5 tokenizer), block normalisation, text/Markdown heading detection, the chunker (structure, sizes,
 * never a cut UTF-8 character), FAQ CSV/Markdown parsers, FAQ matching and hand-off, .docx reading with a
 * zip bomb refused, and a KB on disk: ingest, re-ingest (unchanged / changed / deleted), search with the
 * previous turn, the prompt block, and a newer schema refused. */
#define _GNU_SOURCE
#include "test.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "store/kb.h"
#include "store/kb_internal.h"

static char err[QE_ERR_LEN];

TEST(names) {
    CHECK(qe_kb_name_check("docs", err) == QE_OK);
    CHECK(qe_kb_name_check("my_kb-2", err) == QE_OK);
    CHECK(qe_kb_name_check("客服知识库", err) == QE_OK);
    const char *bad[] = {"", "../x", "a/b", "a.b", "..", "-rf", "a b", "x\\y", "名字。", "%2e%2e", "a\n", NULL};
    for (int i = 0; bad[i]; i++) CHECKF(qe_kb_name_check(bad[i], err) == QE_EINVAL, "'%s' accepted", bad[i]);
    char longname[80];
    memset(longname, 'a', 70);
    longname[70] = 0;
    CHECK(qe_kb_name_check(longname, err) == QE_EINVAL);
    CHECK(qe_kb_name_check(NULL, err) == QE_EINVAL);
}

typedef struct { char t[64][80]; int colo[64]; int n; } terms;
static int collect(void *u, int colocated, const char *t, int nt, int start, int end, int cjk) {
    terms *x = u;
    if (x->n < 64 && nt < 80) { memcpy(x->t[x->n], t, nt); x->t[x->n][nt] = 0; x->colo[x->n++] = colocated; }
    return 0;
}
static void split(const char *s, int mode, terms *x) { memset(x, 0, sizeof *x); qe_kb_terms(s, strlen(s), mode, collect, x); }

TEST(terms) {
    terms x;
    split("重置密码", QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 3);
    CHECK_STR(x.t[0], "重置"); CHECK_STR(x.t[1], "置密"); CHECK_STR(x.t[2], "密码");
    /* DOC: the bigrams at consecutive positions and the run's last character; ALL: every bigram and unigram */
    split("重置密码", QE_KB_TERMS_DOC, &x);
    CHECK_EQ_INT(x.n, 4);
    CHECK_STR(x.t[3], "码");
    split("重置密码", QE_KB_TERMS_ALL, &x);
    CHECK_EQ_INT(x.n, 7);
    /* a lone character stays a unigram in a query */
    split("GUI 下的 shell", QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 3);
    CHECK_STR(x.t[0], "gui"); CHECK_STR(x.t[1], "下的"); CHECK_STR(x.t[2], "shell");
    split("是", QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 1);
    CHECK_STR(x.t[0], "是");
    /* NFKC case folding: full-width letters and digits, German ß, accents kept as letters */
    split("ＡＢＣ１２３ Straße Café", QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 3);
    CHECK_STR(x.t[0], "abc123"); CHECK_STR(x.t[1], "strasse"); CHECK_STR(x.t[2], "café");
    /* punctuation separates; invalid bytes separate; kana and Hangul are CJK */
    split("a,b。c\xff" "d", QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 4);
    split("カタカナ 한국어", QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 5);
    /* a very long word is cut, not dropped */
    char w[300];
    memset(w, 'x', 299);
    w[299] = 0;
    split(w, QE_KB_TERMS_QUERY, &x);
    CHECK_EQ_INT(x.n, 1);
    CHECK_EQ_INT(strlen(x.t[0]), 64);
}

TEST(ext_add) {
    qe_kb_extracted x = {0};
    CHECK(qe_kb_ext_add(&x, QE_KB_PARA, 0, "  hello \n  world  ", 18) == QE_OK);
    CHECK(qe_kb_ext_add(&x, QE_KB_PARA, 0, "中文\n换行", strlen("中文\n换行")) == QE_OK);
    CHECK(qe_kb_ext_add(&x, QE_KB_PARA, 0, " \n\t ", 4) == QE_OK); /* nothing */
    CHECK_EQ_INT(x.n, 2);
    CHECK(x.text.n == strlen("hello world\n\n中文换行") && !memcmp(x.text.p, "hello world\n\n中文换行", x.text.n));
    CHECK_EQ_INT(x.b[1].off, 13);
    qe_kb_ext_free(&x);
    CHECK(qe_kb_utf8_check("ok 中文", strlen("ok 中文"), err) == QE_OK);
    CHECK(qe_kb_utf8_check("bad \xe4\xb8", 6, err) == QE_EFORMAT && strstr(err, "offset 4"));
    CHECK(qe_kb_utf8_check("\xc0\xaf", 2, err) == QE_EFORMAT); /* overlong */
}

static int count_kind(const qe_kb_extracted *x, qe_kb_block_kind k) {
    int n = 0;
    for (size_t i = 0; i < x->n; i++) n += x->b[i].kind == k;
    return n;
}

TEST(text_headings) {
    const char *t = "Debian 参考手册\n\n第 1 章 GNU/Linux 教程\n\n    我认为学习一个计算机系统，\n    就像学习一门新的外语。\n\n"
                    "1.1. 控制台基础\n\n1.1.1.\xc2\xa0shell 提示符\n\n    启动系统之后。\n\n"
                    "2023 年的新闻\n\n1. 这是一句话。\n\nUnderlined\n==========\n\ntext\n";
    qe_kb_extracted x = {0};
    CHECK(qe_kb_extract_txt(t, strlen(t), &x, err) == QE_OK);
    CHECK_STR(x.title, "Debian 参考手册");
    CHECK_EQ_INT(count_kind(&x, QE_KB_HEADING), 4);
    int levels[8], nl = 0;
    for (size_t i = 0; i < x.n; i++)
        if (x.b[i].kind == QE_KB_HEADING && nl < 8) levels[nl++] = x.b[i].level;
    CHECK(nl == 4 && levels[0] == 1 && levels[1] == 2 && levels[2] == 3 && levels[3] == 1);
    /* the hard-wrapped Chinese paragraph is joined without a space */
    CHECK(memmem(x.text.p, x.text.n, "计算机系统，就像", strlen("计算机系统，就像")) != NULL);
    qe_kb_ext_free(&x);
    CHECK(qe_kb_extract_txt("\xff\xfe", 2, &x, err) == QE_EFORMAT && strstr(err, "UTF-8"));
    qe_kb_ext_free(&x);
}

TEST(markdown) {
    const char *md = "# Title\n\nIntro line\nmore intro\n\n## Install\n\n- step one\n- step two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                     "```\ncode line 1\ncode line 2\n```\n\nSetext\n------\n\npara\n";
    qe_kb_extracted x = {0};
    CHECK(qe_kb_extract_md(md, strlen(md), &x, err) == QE_OK);
    CHECK_STR(x.title, "Title");
    CHECK_EQ_INT(count_kind(&x, QE_KB_HEADING), 3);
    CHECK_EQ_INT(count_kind(&x, QE_KB_ITEM), 2);
    CHECK_EQ_INT(count_kind(&x, QE_KB_ROW), 2);
    CHECK_EQ_INT(count_kind(&x, QE_KB_PRE), 1);
    CHECK(memmem(x.text.p, x.text.n, "code line 1\ncode line 2", 23) != NULL);
    qe_kb_ext_free(&x);
}

static bool utf8_whole(const char *p, size_t n) { return qe_kb_utf8_check(p, n, NULL) == QE_OK; }

TEST(chunker) {
    /* a heading per section, sections of many paragraphs, one huge paragraph without spaces */
    qe_kb_extracted x = {0};
    qe_kb_ext_add(&x, QE_KB_HEADING, 1, "第一章", strlen("第一章"));
    for (int i = 0; i < 40; i++) qe_kb_ext_add(&x, QE_KB_PARA, 0, "这是一个用于测试分块的句子，它有一些长度。", strlen("这是一个用于测试分块的句子，它有一些长度。"));
    qe_kb_ext_add(&x, QE_KB_HEADING, 2, "1.1 小节", strlen("1.1 小节"));
    qe_kb_ext_add(&x, QE_KB_PARA, 0, "短段落。", strlen("短段落。"));
    qe_kb_ext_add(&x, QE_KB_HEADING, 1, "第二章", strlen("第二章"));
    qe_buf big = {0};
    for (int i = 0; i < 3000; i++) qe_buf_append(&big, "汉", 3);
    qe_kb_ext_add(&x, QE_KB_PARA, 0, big.p, big.n);
    qe_buf_free(&big);
    qe_kb_counter c = {0};
    qe_kb_chunk *ch = NULL;
    size_t n = 0;
    CHECK(qe_kb_chunk_doc(&x, &c, QE_KB_CHUNK_MAX, &ch, &n) == QE_OK);
    CHECK(n >= 10);
    int in_ch1 = 0, sub = 0, ch2 = 0;
    for (size_t i = 0; i < n; i++) {
        CHECKF(ch[i].n_tokens <= QE_KB_CHUNK_MAX + 8, "chunk %zu has %d tokens", i, ch[i].n_tokens);
        CHECK(utf8_whole(x.text.p + ch[i].off, ch[i].len));
        CHECK((size_t)qe_kb_count_tokens(&c, x.text.p + ch[i].off, ch[i].len) == (size_t)ch[i].n_tokens || ch[i].n_tokens > 0);
        if (!strcmp(ch[i].heading, "第一章")) in_ch1 += ch[i].n_tokens >= 200; /* packed: all but the last are full */
        if (!strcmp(ch[i].heading, "第一章 > 1.1 小节")) sub++;
        if (!strcmp(ch[i].heading, "第二章")) ch2++;
    }
    CHECK(in_ch1 >= 2);   /* 40 x 21 tokens do not fit one chunk */
    CHECK_EQ_INT(sub, 1); /* a heading closes the chunk: the short section is its own chunk */
    CHECK(ch2 >= 8);      /* 3000 characters cut into <= 400-token pieces */
    qe_kb_chunks_free(ch, n);
    qe_kb_ext_free(&x);
}

TEST(faq_parsers) {
    const char *csv = "\xEF\xBB\xBFquestion,answer,alternates\r\n"
                      "如何重置密码？,\"在登录页点击\"\"忘记密码\"\"，按提示操作。\",忘记密码怎么办|密码找回\r\n"
                      "\n"
                      "退货政策是什么,\"七天无理由退货，\n需保留包装。\",\r\n";
    qe_kb_faq_entry *e = NULL;
    int n = 0;
    CHECK(qe_kb_faq_parse(csv, strlen(csv), "faq.csv", &e, &n, err) == QE_OK);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(e[0].question, "如何重置密码？");
        CHECK_STR(e[0].answer, "在登录页点击\"忘记密码\"，按提示操作。");
        CHECK_STR(e[0].alternates, "忘记密码怎么办|密码找回");
        CHECK_STR(e[1].answer, "七天无理由退货，\n需保留包装。");
        CHECK(e[1].alternates == NULL);
        CHECK_EQ_INT(e[1].line, 4);
    }
    qe_kb_faq_free(e, n);
    /* no header: columns in order; header in Chinese; errors name the line */
    CHECK(qe_kb_faq_parse_csv("q1,a1\nq2,a2\n", 12, "x.csv", &e, &n, err) == QE_OK && n == 2);
    qe_kb_faq_free(e, n);
    CHECK(qe_kb_faq_parse_csv("答案,问题\nA,Q\n", strlen("答案,问题\nA,Q\n"), "x.csv", &e, &n, err) == QE_OK && n == 1 &&
          !strcmp(e[0].question, "Q"));
    qe_kb_faq_free(e, n);
    CHECK(qe_kb_faq_parse_csv("q1,a1\nq2\n", 9, "x.csv", &e, &n, err) == QE_EFORMAT && strstr(err, "line 2"));
    CHECK(qe_kb_faq_parse_csv("q1,\"a1\n", 7, "x.csv", &e, &n, err) == QE_EFORMAT && strstr(err, "not closed"));
    CHECK(qe_kb_faq_parse_csv("q,\xff\n", 4, "x.csv", &e, &n, err) == QE_EFORMAT);
    const char *md = "# 常见问题\n\n## 如何重置密码？ | 忘记密码怎么办\n\n在登录页点击“忘记密码”。\n\n第二段。\n\n## 营业时间\n每天 9:00-18:00\n";
    CHECK(qe_kb_faq_parse(md, strlen(md), "faq.md", &e, &n, err) == QE_OK && n == 2);
    if (n == 2) {
        CHECK_STR(e[0].question, "如何重置密码？");
        CHECK_STR(e[0].alternates, "忘记密码怎么办");
        CHECK_STR(e[0].answer, "在登录页点击“忘记密码”。\n\n第二段。");
        CHECK_STR(e[1].answer, "每天 9:00-18:00");
        CHECK_EQ_INT(e[1].line, 9);
    }
    qe_kb_faq_free(e, n);
    CHECK(qe_kb_faq_parse_md("## 没有答案\n\n## q\na\n", strlen("## 没有答案\n\n## q\na\n"), "x.md", &e, &n, err) == QE_EFORMAT &&
          strstr(err, "line 1"));
    CHECK(qe_kb_faq_parse("x", 1, "faq.txt", &e, &n, err) == QE_EUNSUPPORTED);
}

TEST(faq_match) {
    qe_kb_faq_entry e[3] = {
        {.question = "如何重置密码？", .alternates = "忘记密码怎么办", .answer = "A1"},
        {.question = "你们的退货政策是什么", .answer = "A2"},
        {.question = "How do I change my email address?", .answer = "A3"},
    };
    double s;
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "如何重置密码？", QE_KB_FAQ_THRESHOLD, &s), 0);
    CHECK(s > 0.99);
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "怎么重置密码", QE_KB_FAQ_THRESHOLD, &s), 0);     /* reworded */
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "密码忘记了怎么办", QE_KB_FAQ_THRESHOLD, &s), 0); /* via the alternate */
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "退货政策", QE_KB_FAQ_THRESHOLD, &s), 1);
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "how can I change my e-mail address", QE_KB_FAQ_THRESHOLD, &s), 2);
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "今天天气怎么样", QE_KB_FAQ_THRESHOLD, &s), -1);  /* unrelated */
    CHECK(s < 0.3);
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "如何安装打印机驱动", QE_KB_FAQ_THRESHOLD, &s), -1);
    CHECK_EQ_INT(qe_kb_faq_best(e, 3, "", QE_KB_FAQ_THRESHOLD, &s), -1);
    CHECK_EQ_INT(qe_kb_faq_best(e, 0, "x", QE_KB_FAQ_THRESHOLD, &s), -1);
}

TEST(handoff) {
    const char *q[] = {"我要转人工", "请帮我转 人工", "人工客服在吗", "I want a HUMAN   agent please", "Can I talk to a human?", NULL};
    for (int i = 0; q[i]; i++) CHECKF(qe_kb_handoff(q[i], strlen(q[i]), NULL, 0), "'%s' not handed off", q[i]);
    const char *no[] = {"人工智能是什么", "如何重置密码", "humans are agents", NULL};
    for (int i = 0; no[i]; i++) CHECKF(!qe_kb_handoff(no[i], strlen(no[i]), NULL, 0), "'%s' handed off", no[i]);
    const char *custom[] = {"找经理"};
    CHECK(qe_kb_handoff("我要找经理", strlen("我要找经理"), custom, 1));
    CHECK(!qe_kb_handoff("我要转人工", strlen("我要转人工"), custom, 1));
}

TEST(html) {
    const char *h = "<html><head><title>手册 &amp; 指南</title><style>p{}</style><script>var x='不要';</script></head><body>"
                    "<div class=\"toc\"><ul><li>1.1. 安装</li><li>1.2. 配置</li></ul></div>"
                    "<nav>导航</nav><h1>第 1 章 开始</h1><p>第一段<b>加粗</b>文字。</p>"
                    "<h2>1.1. 安装</h2><ul><li>步骤一</li><li>步骤二<ul><li>子步骤</li></ul></li></ul>"
                    "<table><tr><th>型号</th><th>价格</th></tr><tr><td>X1</td><td>100</td></tr></table>"
                    "<pre>line 1\nline 2</pre><div>无标签文字<p>段落</p>尾巴</div><h3>1.1.1 细节</h3><p>内容</p>";
    qe_kb_extracted x = {0};
    CHECK(qe_kb_extract_html(h, strlen(h), &x, err) == QE_OK);
    CHECK_STR(x.title, "手册 & 指南");
    CHECK_EQ_INT(count_kind(&x, QE_KB_HEADING), 3);
    CHECK_EQ_INT(count_kind(&x, QE_KB_ITEM), 3);
    CHECK_EQ_INT(count_kind(&x, QE_KB_ROW), 2);
    CHECK_EQ_INT(count_kind(&x, QE_KB_PRE), 1);
    CHECK(memmem(x.text.p, x.text.n, "第一段加粗文字。", strlen("第一段加粗文字。")) != NULL);
    CHECK(memmem(x.text.p, x.text.n, "型号 | 价格", strlen("型号 | 价格")) != NULL);
    CHECK(memmem(x.text.p, x.text.n, "line 1\nline 2", 13) != NULL);
    CHECK(memmem(x.text.p, x.text.n, "无标签文字", strlen("无标签文字")) != NULL);
    CHECK(memmem(x.text.p, x.text.n, "尾巴", strlen("尾巴")) != NULL);
    /* skipped: the table of contents, navigation, scripts and styles */
    CHECK(memmem(x.text.p, x.text.n, "配置", strlen("配置")) == NULL);
    CHECK(memmem(x.text.p, x.text.n, "导航", strlen("导航")) == NULL);
    CHECK(memmem(x.text.p, x.text.n, "不要", strlen("不要")) == NULL);
    qe_kb_ext_free(&x);
    /* broken markup is recovered, not refused */
    CHECK(qe_kb_extract_html("<p>未闭合<div>还有<h2>标题", strlen("<p>未闭合<div>还有<h2>标题"), &x, err) == QE_OK);
    CHECK_EQ_INT(count_kind(&x, QE_KB_HEADING), 1);
    qe_kb_ext_free(&x);
}

/* --- .docx ----------------------------------------------------------------------------------------------- */

static int write_zip(const char *path, const char *const *names, const char *const *data, const size_t *lens, int n) {
    int ze;
    unlink(path);
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    if (!z) return -1;
    for (int i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, data[i], lens[i], 0);
        if (!s || zip_file_add(z, names[i], s, ZIP_FL_OVERWRITE) < 0) { zip_discard(z); return -1; }
    }
    return zip_close(z);
}

TEST(docx) {
    const char *doc =
        "<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>"
        "<w:p><w:pPr><w:pStyle w:val=\"1\"/></w:pPr><w:r><w:t>产品手册</w:t></w:r></w:p>"
        "<w:p><w:r><w:t xml:space=\"preserve\">第一段 </w:t></w:r><w:r><w:t>正文。</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val=\"Heading2\"/></w:pPr><w:r><w:t>安装</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"0\"/></w:numPr></w:pPr><w:r><w:t>步骤一</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>型号</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>X1</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        "</w:body></w:document>";
    const char *styles = "<?xml version=\"1.0\"?><w:styles xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
                         "<w:style w:styleId=\"1\"><w:name w:val=\"heading 1\"/></w:style></w:styles>";
    char path[600];
    snprintf(path, sizeof path, "%s/kb_test.docx", test_tmpdir());
    const char *names[] = {"word/document.xml", "word/styles.xml"};
    const char *data[] = {doc, styles};
    size_t lens[] = {strlen(doc), strlen(styles)};
    CHECK(write_zip(path, names, data, lens, 2) == 0);
    char *bytes = NULL;
    size_t n = 0;
    CHECK(qe_read_file(path, &bytes, &n, err) == QE_OK);
    qe_kb_extracted x = {0};
    CHECK(qe_kb_extract_docx(bytes, n, &x, err) == QE_OK);
    CHECK_STR(x.title, "产品手册");
    CHECK_EQ_INT(x.n, 5);
    if (x.n == 5) {
        CHECK(x.b[0].kind == QE_KB_HEADING && x.b[0].level == 1);
        CHECK(x.b[2].kind == QE_KB_HEADING && x.b[2].level == 2);
        CHECK(x.b[3].kind == QE_KB_ITEM);
        CHECK(x.b[4].kind == QE_KB_ROW);
        CHECK(!memcmp(x.text.p + x.b[4].off, "型号 | X1", x.b[4].len));
        CHECK(!memcmp(x.text.p + x.b[1].off, "第一段 正文。", x.b[1].len));
    }
    qe_kb_ext_free(&x);
    free(bytes);
    /* a zip bomb: 80 MB of spaces deflates to ~80 KB; refused while inflating, not after */
    size_t big = 80u << 20;
    char *sp = malloc(big);
    memset(sp, ' ', big);
    const char *bd[] = {sp};
    size_t bl[] = {big};
    CHECK(write_zip(path, names, bd, bl, 1) == 0);
    free(sp);
    CHECK(qe_read_file(path, &bytes, &n, err) == QE_OK);
    CHECK(n < (1u << 20));
    memset(&x, 0, sizeof x);
    CHECK(qe_kb_extract_docx(bytes, n, &x, err) == QE_ERANGE && strstr(err, "zip bomb"));
    qe_kb_ext_free(&x);
    free(bytes);
    CHECK(qe_kb_extract_docx("PK\x03\x04garbage", 13, &x, err) == QE_EFORMAT);
    qe_kb_ext_free(&x);
}

/* --- a KB on disk ------------------------------------------------------------------------------------------ */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

TEST(store_and_search) {
    char home[600], dir[700], f1[800], f2[800], f3[800];
    snprintf(home, sizeof home, "%s/kb_home", test_tmpdir());
    snprintf(dir, sizeof dir, "%s/docs", home);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", home, dir);
    CHECK(system(cmd) == 0);
    setenv("QWEN_EDGE_HOME", home, 1);
    snprintf(f1, sizeof f1, "%s/printer.md", dir);
    snprintf(f2, sizeof f2, "%s/router.txt", dir);
    snprintf(f3, sizeof f3, "%s/bad.txt", dir);
    write_file(f1, "# 打印机手册\n\n## 安装驱动\n\n第一步：下载驱动程序。第二步：运行安装程序。\n\n## 更换墨盒\n\n打开前盖，取出旧墨盒，装入新墨盒。\n");
    write_file(f2, "路由器手册\n\n1. 重置路由器\n\n按住复位键十秒钟，指示灯闪烁后松开。\n\n2. 设置无线网络\n\n登录管理页面，修改无线名称和密码。\n");
    write_file(f3, "\xff\xfe not utf-8");
    qe_kb *kb = NULL;
    CHECK(qe_kb_open("../escape", true, QE_KB_FTS_QE, &kb, err) == QE_EINVAL);
    CHECK(qe_kb_open("nokb", false, QE_KB_FTS_QE, &kb, err) == QE_ENOTFOUND);
    CHECK(qe_kb_open("manuals", true, QE_KB_FTS_QE, &kb, err) == QE_OK);
    if (!kb) return;
    char *paths[] = {dir};
    qe_kb_progress r;
    CHECK(qe_kb_add_paths(kb, paths, 1, NULL, &r, err) == QE_EFORMAT); /* bad.txt failed, the rest went in */
    CHECK(r.added == 2 && r.failed == 1);
    qe_kb_hit *h = NULL;
    int n = 0;
    CHECK(qe_kb_search(kb, "怎么更换墨盒", NULL, 3, &h, &n, err) == QE_OK);
    CHECK(n >= 1 && strstr(h[0].heading, "更换墨盒") && strstr(h[0].doc, "printer.md"));
    qe_kb_hits_free(h, n);
    /* the follow-up alone finds nothing useful; with the previous turn it stays in the right document */
    CHECK(qe_kb_search(kb, "那第二步呢？", "打印机驱动怎么安装", 3, &h, &n, err) == QE_OK);
    CHECK(n >= 1 && strstr(h[0].heading, "安装驱动"));
    qe_buf block = {0};
    qe_kb_counter c = {0};
    CHECK(qe_kb_prompt_block(h, n, 1000, &c, &block) == n);
    CHECK(block.n && !strncmp(block.p, "[1] 打印机手册 › 打印机手册 > 安装驱动\n第一步", strlen("[1] 打印机手册 › 打印机手册 > 安装驱动\n第一步")));
    block.n = 0;
    CHECK(qe_kb_prompt_block(h, n, 30, &c, &block) == 1); /* over budget: the first source, cut */
    CHECK(utf8_whole(block.p, block.n) && qe_kb_count_tokens(&c, block.p, block.n) <= 32);
    CHECK(block.n > 10 && !memcmp(block.p + block.n - 5, "…\n\n", 5));
    qe_buf_free(&block);
    qe_kb_hits_free(h, n);
    CHECK(qe_kb_search(kb, "重置路由器", NULL, 3, &h, &n, err) == QE_OK);
    CHECK(n >= 1 && strstr(h[0].doc, "router.txt") && strstr(h[0].heading, "1. 重置路由器"));
    qe_kb_hits_free(h, n);
    CHECK(qe_kb_search(kb, "。？！", NULL, 3, &h, &n, err) == QE_OK && n == 0);
    /* re-adding: unchanged skipped, changed replaced, deleted removed */
    write_file(f2, "路由器手册\n\n1. 恢复出厂设置\n\n按住复位键。\n");
    unlink(f1);
    unlink(f3);
    CHECK(qe_kb_add_paths(kb, paths, 1, NULL, &r, err) == QE_OK);
    CHECK(r.updated == 1 && r.removed == 1 && r.added == 0);
    CHECK(qe_kb_add_paths(kb, paths, 1, NULL, &r, err) == QE_OK);
    CHECK(r.unchanged == 1 && r.updated == 0);
    CHECK(qe_kb_search(kb, "更换墨盒", NULL, 3, &h, &n, err) == QE_OK && n == 0);
    qe_kb_hits_free(h, n);
    CHECK(qe_kb_search(kb, "出厂设置", NULL, 3, &h, &n, err) == QE_OK && n == 1);
    qe_kb_hits_free(h, n);
    qe_kb_doc *d = NULL;
    CHECK(qe_kb_docs(kb, &d, &n, err) == QE_OK && n == 1);
    qe_kb_docs_free(d, n);
    char removed[1024];
    CHECK(qe_kb_doc_remove(kb, "nothere.txt", removed, sizeof removed, err) == QE_ENOTFOUND);
    CHECK(qe_kb_doc_remove(kb, "router.txt", removed, sizeof removed, err) == QE_OK && strstr(removed, "/docs/router.txt"));
    CHECK(qe_kb_search(kb, "出厂设置", NULL, 3, &h, &n, err) == QE_OK && n == 0);
    qe_kb_hits_free(h, n);
    /* FAQ entries stored by source */
    qe_kb_faq_entry e[1] = {{.question = "q", .answer = "a", .line = 2}};
    CHECK(qe_kb_faq_store(kb, "/x/faq.csv", e, 1, err) == QE_OK);
    CHECK(qe_kb_faq_store(kb, "/x/faq.csv", e, 1, err) == QE_OK); /* replaces, not appends */
    qe_kb_faq_entry *got = NULL;
    CHECK(qe_kb_faq_load(kb, &got, &n, err) == QE_OK && n == 1 && !strcmp(got[0].answer, "a"));
    qe_kb_faq_free(got, n);
    /* FTS index consistent with its content table after all of that */
    CHECK(sqlite3_exec(kb->db, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)", NULL, NULL, NULL) == SQLITE_OK);
    qe_kb_close(kb);
    char **names = NULL;
    CHECK(qe_kb_list(&names, &n, err) == QE_OK && n == 1 && !strcmp(names[0], "manuals"));
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    /* a file from a newer qwen-edge is refused with a clear message */
    char kbpath[1200];
    snprintf(kbpath, sizeof kbpath, "%s/kb/manuals.sqlite", home);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(kbpath, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(qe_kb_open("manuals", false, QE_KB_FTS_QE, &kb, err) == QE_EUNSUPPORTED && strstr(err, "newer qwen-edge"));
    /* another SQLite file is not taken for a KB */
    snprintf(kbpath, sizeof kbpath, "%s/kb/other.sqlite", home);
    CHECK(sqlite3_open(kbpath, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(qe_kb_open("other", false, QE_KB_FTS_QE, &kb, err) == QE_EFORMAT);
    CHECK(qe_kb_delete("manuals", err) == QE_OK);
    CHECK(qe_kb_delete("manuals", err) == QE_ENOTFOUND);
}

/* More chunks than COMMON_DF: the query's common terms are probed and only chunks with a rarer term ranked. */
TEST(big_kb_narrowing) {
    char home[600], file[700];
    snprintf(home, sizeof home, "%s/kb_home_big", test_tmpdir());
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", home, home);
    CHECK(system(cmd) == 0);
    setenv("QWEN_EDGE_HOME", home, 1);
    snprintf(file, sizeof file, "%s/big.md", home);
    FILE *f = fopen(file, "w");
    if (!f) return;
    for (int i = 0; i < 2300; i++)
        fprintf(f, "## 第%d节 通用说明\n\n通用说明的内容%s。\n\n", i, i == 1234 ? "，这里有独特的防火墙规则" : i % 7 == 0 ? "，还有网络设置" : "");
    fclose(f);
    qe_kb *kb = NULL;
    CHECK(qe_kb_open("big", true, QE_KB_FTS_QE, &kb, err) == QE_OK);
    if (!kb) return;
    char *paths[] = {file};
    qe_kb_progress r;
    CHECK(qe_kb_add_paths(kb, paths, 1, NULL, &r, err) == QE_OK && r.chunks == 2300);
    qe_kb_hit *h = NULL;
    int n = 0;
    CHECK(qe_kb_search(kb, "通用说明里的防火墙规则", NULL, 3, &h, &n, err) == QE_OK);
    CHECK(n >= 1 && strstr(h[0].heading, "第1234节"));
    qe_kb_hits_free(h, n);
    /* every term common: the plain OR still answers */
    CHECK(qe_kb_search(kb, "通用说明", NULL, 3, &h, &n, err) == QE_OK && n == 3);
    qe_kb_hits_free(h, n);
    /* a moderately common term with a common one: only the chunks with the rarer term */
    CHECK(qe_kb_search(kb, "通用的网络设置", NULL, 5, &h, &n, err) == QE_OK && n == 5);
    for (int i = 0; i < n; i++) CHECK(strstr(h[i].text, "网络设置"));
    qe_kb_hits_free(h, n);
    qe_kb_close(kb);
}

int main(void) {
    RUN(names);
    RUN(terms);
    RUN(ext_add);
    RUN(text_headings);
    RUN(markdown);
    RUN(chunker);
    RUN(faq_parsers);
    RUN(faq_match);
    RUN(handoff);
    RUN(html);
    RUN(docx);
    RUN(store_and_search);
    RUN(big_kb_narrowing);
    return TEST_DONE();
}
