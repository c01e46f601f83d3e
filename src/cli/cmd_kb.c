/* cmd_kb.c — `qwen-edge kb`: knowledge bases from the command line (add, list, ls, rm, search, faq, ask, and
 * extract to see how a file is read and chunked). All the work is in src/store/kb*.c; this file parses
 * options, draws the progress bar and prints. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine.h"
#include "modelstore.h"
#include "store/kb.h"
#include "store/kb_internal.h"
#include "tokenizer_load.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge kb <command> [options]\n"
            "\n"
            "commands:\n"
            "  add NAME PATH... [-m MODEL]  add files and folders (.txt .md .html .pdf .docx) to knowledge base NAME\n"
            "                               (made if new); unchanged files are skipped, changed ones replaced, files\n"
            "                               deleted from an added folder removed\n"
            "  list                         the knowledge bases\n"
            "  ls NAME                      the documents of NAME\n"
            "  rm NAME [DOC]                delete knowledge base NAME, or only document DOC (path or file name)\n"
            "  search NAME QUERY [-k 5] [--prev TEXT] [--json]\n"
            "                               best passages for QUERY (--prev: the previous question, weighted lower);\n"
            "                               --json: one object per hit (doc, heading, page, text, score)\n"
            "  search NAME --batch [-k 5]   queries from stdin, one JSON string (or {\"q\",\"prev\"}) a line\n"
            "  faq NAME FILE                load FAQ entries from FILE (.csv question,answer[,alternates] or .md)\n"
            "  ask NAME QUESTION [--prev TEXT] [--threshold 0.5] [--handoff 'a,b'] [--json]\n"
            "          [--generate [-m MODEL] [-n 512]]\n"
            "                               hand-off phrase? -> hand off; FAQ match -> its answer verbatim;\n"
            "                               else the best passages with their sources, or with --generate the\n"
            "                               model's answer from them with [n] citations\n"
            "  check NAME                   check the file: SQLite integrity, search index, every document whole\n"
            "  extract FILE [-m MODEL]      print how FILE is read: its chunks as JSON lines (for checking a format)\n"
            "\n"
            "options:\n"
            "  -m, --model MODEL   count chunk tokens with this model's tokenizer (a .gguf file or a stored model);\n"
            "                      default: the default model if it is downloaded, else an estimate\n"
            "      --fts qe|trigram  index tokenizer of a new KB (default qe: CJK bigrams; see docs/KB.md)\n"
            "  -q, --quiet         add: no progress, only errors and the summary\n"
            "\n"
            "Knowledge bases live in $QWEN_EDGE_HOME/kb/NAME.sqlite.\n");
}

static int fail(const char *err) {
    fprintf(stderr, "qwen-edge kb: %s\n", err);
    return 1;
}

/* --- token counter ----------------------------------------------------------------------------------------- */

static int open_counter(const char *model, qe_tokenizer_source **src, qe_kb_counter *c, bool quiet) {
    char err[QE_ERR_LEN] = "", path[4096];
    c->tok = NULL;
    *src = NULL;
    struct stat st;
    if (model) {
        if (stat(model, &st) == 0) snprintf(path, sizeof path, "%s", model);
        else if (qe_model_find_local(model, path, sizeof path, err) < 0) return fail(err);
    } else if (qe_model_default_path(path, sizeof path) != QE_OK) {
        if (!quiet) fprintf(stderr, "qwen-edge kb: no model given and the default one is not downloaded: chunk sizes are estimated\n");
        return 0;
    }
    if (qe_tokenizer_load_gguf(path, src, err) < 0) return fail(err);
    c->tok = qe_tokenizer_source_get(*src);
    return 0;
}

/* --- add ----------------------------------------------------------------------------------------------------- */

typedef struct { bool tty, quiet; int last_width; double last_draw; } add_ui;

static void fmt_eta(char *out, size_t cap, double s) {
    if (s < 0 || s > 360000) snprintf(out, cap, "--");
    else if (s < 60) snprintf(out, cap, "%.0fs", s);
    else if (s < 3600) snprintf(out, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, cap, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static void on_progress(void *user, const qe_kb_progress *p) {
    add_ui *ui = user;
    if (!ui->tty || ui->quiet) return;
    double now = qe_now();
    if (p->current && now - ui->last_draw < 0.1) return;
    ui->last_draw = now;
    char eta[32];
    double rate = p->elapsed > 0 ? p->bytes_done / p->elapsed : 0;
    fmt_eta(eta, sizeof eta, rate > 0 ? (p->bytes_total - p->bytes_done) / rate : -1);
    int width = 24, fill = p->bytes_total ? (int)(width * (double)p->bytes_done / p->bytes_total) : 0;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[K[%s] %d/%d files  %.1f/%.1f MB  %lld chunks  ETA %s", bar, p->files_done, p->files_total,
            p->bytes_done / 1e6, p->bytes_total / 1e6, (long long)p->chunks, eta);
    fflush(stderr);
}

static void on_file(void *user, const char *path, const char *status, int n_chunks, const char *msg) {
    add_ui *ui = user;
    bool error = !strcmp(status, "error");
    if (ui->tty && !ui->quiet) fprintf(stderr, "\r\033[K");
    if (error) fprintf(stderr, "error     %s: %s\n", path, msg ? msg : "failed");
    else if (!ui->quiet) {
        if (!strcmp(status, "added") || !strcmp(status, "updated")) printf("%-9s %s (%d chunks)\n", status, path, n_chunks);
        else printf("%-9s %s%s%s\n", status, path, msg ? ": " : "", msg ? msg : "");
        fflush(stdout);
    }
}

static int kb_add(int argc, char **argv) {
    const char *name = NULL, *model = NULL;
    qe_kb_fts fts = QE_KB_FTS_QE;
    bool quiet = false;
    char **paths = calloc(argc, sizeof *paths);
    int np = 0;
    if (!paths) return fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--fts") && i + 1 < argc) {
            const char *f = argv[++i];
            if (!strcmp(f, "trigram")) fts = QE_KB_FTS_TRIGRAM;
            else if (strcmp(f, "qe")) { free(paths); return fail("--fts is qe or trigram"); }
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = true;
        else if (a[0] == '-' && a[1]) { free(paths); fprintf(stderr, "qwen-edge kb add: unknown option '%s'\n", a); return 2; }
        else if (!name) name = a;
        else paths[np++] = argv[i];
    }
    if (!name || !np) { free(paths); fprintf(stderr, "usage: qwen-edge kb add NAME PATH... [-m MODEL]\n"); return 2; }
    char err[QE_ERR_LEN] = "";
    qe_kb *kb = NULL;
    qe_tokenizer_source *src = NULL;
    qe_kb_counter counter;
    add_ui ui = {.tty = isatty(2), .quiet = quiet};
    int rc = open_counter(model, &src, &counter, quiet);
    if (rc) { free(paths); return rc; }
    if (qe_kb_open(name, true, fts, &kb, err) < 0) { free(paths); qe_tokenizer_source_free(src); return fail(err); }
    qe_kb_ingest_opts o = {.counter = counter, .progress = on_progress, .file_done = on_file, .user = &ui};
    qe_kb_progress r = {0};
    int arc = qe_kb_add_paths(kb, paths, np, &o, &r, err);
    if (ui.tty && !quiet) fprintf(stderr, "\r\033[K");
    if (arc < 0 && arc != QE_EFORMAT) fprintf(stderr, "qwen-edge kb: %s\n", err);
    printf("kb %s: %d added, %d updated, %d unchanged, %d removed, %d failed, %d skipped; %lld chunks; %.1f MB in %.1f s (%.1f MB/s)\n",
           name, r.added, r.updated, r.unchanged, r.removed, r.failed, r.skipped, (long long)r.chunks, r.bytes_done / 1e6,
           r.elapsed, r.elapsed > 0 ? r.bytes_done / 1e6 / r.elapsed : 0);
    qe_kb_close(kb);
    qe_tokenizer_source_free(src);
    free(paths);
    return arc < 0 ? 1 : 0;
}

/* --- list / ls / rm ------------------------------------------------------------------------------------------ */

static int kb_list(int argc, char **argv) {
    char err[QE_ERR_LEN] = "", **names = NULL;
    int n = 0;
    if (qe_kb_list(&names, &n, err) < 0) return fail(err);
    if (!n) printf("no knowledge bases yet (qwen-edge kb add NAME FOLDER makes one)\n");
    for (int i = 0; i < n; i++) {
        qe_kb *kb = NULL;
        qe_kb_stats s = {0};
        if (qe_kb_open(names[i], false, QE_KB_FTS_QE, &kb, err) == QE_OK && qe_kb_stats_get(kb, &s, err) == QE_OK)
            printf("%-24s %6d docs %8lld chunks %9.1f MB text %9.1f MB on disk\n", names[i], s.n_docs, (long long)s.n_chunks,
                   s.text_bytes / 1e6, s.file_bytes / 1e6);
        else
            printf("%-24s (cannot open: %s)\n", names[i], err);
        qe_kb_close(kb);
        free(names[i]);
    }
    free(names);
    return 0;
}

static int kb_ls(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: qwen-edge kb ls NAME\n"); return 2; }
    char err[QE_ERR_LEN] = "";
    qe_kb *kb = NULL;
    if (qe_kb_open(argv[1], false, QE_KB_FTS_QE, &kb, err) < 0) return fail(err);
    qe_kb_doc *d = NULL;
    int n = 0;
    qe_kb_stats s;
    if (qe_kb_docs(kb, &d, &n, err) < 0 || qe_kb_stats_get(kb, &s, err) < 0) { qe_kb_close(kb); return fail(err); }
    for (int i = 0; i < n; i++)
        printf("%-8s %6d chunks %9.1f KB  %s  (%s)\n", d[i].format, d[i].n_chunks, d[i].text_bytes / 1e3, d[i].path, d[i].title);
    printf("%d documents, %lld chunks, %.1f MB text, %.1f MB on disk (index: %s, tokens: %s)\n", s.n_docs, (long long)s.n_chunks,
           s.text_bytes / 1e6, s.file_bytes / 1e6, s.fts, s.counter[0] ? s.counter : "-");
    qe_kb_docs_free(d, n);
    qe_kb_close(kb);
    return 0;
}

static int kb_rm(int argc, char **argv) {
    if (argc < 2 || argc > 3) { fprintf(stderr, "usage: qwen-edge kb rm NAME [DOC]\n"); return 2; }
    char err[QE_ERR_LEN] = "";
    if (argc == 2) {
        if (qe_kb_delete(argv[1], err) < 0) return fail(err);
        printf("deleted knowledge base %s\n", argv[1]);
        return 0;
    }
    qe_kb *kb = NULL;
    if (qe_kb_open(argv[1], false, QE_KB_FTS_QE, &kb, err) < 0) return fail(err);
    char removed[4096];
    int rc = qe_kb_doc_remove(kb, argv[2], removed, sizeof removed, err);
    qe_kb_close(kb);
    if (rc < 0) return fail(err);
    printf("removed %s\n", removed);
    return 0;
}

/* --- search / ask ------------------------------------------------------------------------------------------- */

static void print_hit_json(const qe_kb_hit *h) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:f}", "doc", h->doc, "title", h->title, "heading", h->heading, "page",
                          h->page, "text", h->text, "score", h->score);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void print_hit_text(int i, const qe_kb_hit *h) {
    printf("[%d] %s", i + 1, h->doc);
    if (*h->heading) printf(" › %s", h->heading);
    if (h->page) printf(" (p. %d)", h->page);
    printf("  score %.2f\n", h->score);
    size_t n = strlen(h->text);
    size_t cut = n > 600 ? 600 : n;
    while (cut < n && ((unsigned char)h->text[cut] & 0xC0) == 0x80) cut--;
    printf("    %.*s%s\n\n", (int)cut, h->text, cut < n ? "…" : "");
}

typedef struct {
    const char *name, *query, *prev, *handoff, *model;
    int k, n_predict;
    bool json, batch, generate;
    double threshold;
} query_opts;

static int parse_query_opts(int argc, char **argv, query_opts *q, const char *what) {
    q->k = 5;
    q->n_predict = 512;
    q->threshold = QE_KB_FAQ_THRESHOLD;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-k") || !strcmp(a, "--top")) { if (!cli_int(argc, argv, &i, 1, 100, &q->k)) return 2; }
        else if (!strcmp(a, "--json")) q->json = true;
        else if (!strcmp(a, "--batch")) q->batch = true;
        else if (!strcmp(a, "--generate")) q->generate = true;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) q->model = argv[++i];
        else if (!strcmp(a, "-n")) { if (!cli_int(argc, argv, &i, 1, 1 << 30, &q->n_predict)) return 2; }
        else if (!strcmp(a, "--prev") && i + 1 < argc) q->prev = argv[++i];
        else if (!strcmp(a, "--handoff") && i + 1 < argc) q->handoff = argv[++i];
        else if (!strcmp(a, "--threshold")) { float t; if (!cli_float(argc, argv, &i, 0, 1e9, &t)) return 2; q->threshold = t; }
        else if (a[0] == '-' && a[1] && !q->query) { fprintf(stderr, "qwen-edge kb %s: unknown option '%s'\n", what, a); return 2; }
        else if (!q->name) q->name = a;
        else if (!q->query) q->query = a;
        else { fprintf(stderr, "qwen-edge kb %s: one query (quote it)\n", what); return 2; }
    }
    if (q->batch && q->name && !q->query) q->query = "";
    if (!q->name || !q->query) { fprintf(stderr, "usage: qwen-edge kb %s NAME \"QUESTION\" [options]\n", what); return 2; }
    if (q->k < 1 || q->k > 100) { fprintf(stderr, "qwen-edge kb %s: -k is 1..100\n", what); return 2; }
    return 0;
}

static int search_print(qe_kb *kb, const query_opts *q) {
    char err[QE_ERR_LEN] = "";
    qe_kb_hit *h = NULL;
    int n = 0;
    if (qe_kb_search(kb, q->query, q->prev, q->k, &h, &n, err) < 0) return fail(err);
    for (int i = 0; i < n; i++) q->json ? print_hit_json(&h[i]) : print_hit_text(i, &h[i]);
    if (!n && !q->json) printf("no matching passage\n");
    qe_kb_hits_free(h, n);
    return 0;
}

/* --batch: one query a line on stdin (a JSON string, or {"q": ..., "prev": ...}), one JSON line out per query
 * with its hits and the time the search took in this process (for benchmarks and tests). */
static int search_batch(qe_kb *kb, const query_opts *q) {
    char err[QE_ERR_LEN] = "", *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *in = json_loadb(line, len, JSON_DECODE_ANY, &je);
        const char *text = json_is_string(in) ? json_string_value(in) : json_string_value(json_object_get(in, "q"));
        const char *prev = json_is_object(in) ? json_string_value(json_object_get(in, "prev")) : NULL;
        if (!text) { json_decref(in); fprintf(stderr, "qwen-edge kb search --batch: each line is a JSON string or {\"q\": ...}\n"); rc = 2; break; }
        qe_kb_hit *h = NULL;
        int n = 0;
        /* wall and CPU time: on a loaded machine the CPU time is the search's own cost */
        struct timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        double t0 = qe_now();
        if (qe_kb_search(kb, text, prev, q->k, &h, &n, err) < 0) { json_decref(in); rc = fail(err); break; }
        double ms = (qe_now() - t0) * 1e3;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        double cpu_ms = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
        json_t *hits = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(hits, json_pack("{s:s, s:s, s:i, s:s, s:f}", "doc", h[i].doc, "heading", h[i].heading, "page",
                                                  h[i].page, "text", h[i].text, "score", h[i].score));
        json_t *o = json_pack("{s:s, s:f, s:f, s:o}", "query", text, "ms", ms, "cpu_ms", cpu_ms, "hits", hits);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
        json_decref(in);
        qe_kb_hits_free(h, n);
    }
    free(line);
    return rc;
}

static int kb_search(int argc, char **argv) {
    query_opts q = {0};
    int rc = parse_query_opts(argc, argv, &q, "search");
    if (rc) return rc;
    char err[QE_ERR_LEN] = "";
    qe_kb *kb = NULL;
    if (qe_kb_open(q.name, false, QE_KB_FTS_QE, &kb, err) < 0) return fail(err);
    rc = q.batch ? search_batch(kb, &q) : search_print(kb, &q);
    qe_kb_close(kb);
    return rc;
}

/* --generate: the model answers from the best passages (qe_kb_grounded_system), then the sources are listed. */
static int ask_generate(qe_kb *kb, const query_opts *q) {
    char err[QE_ERR_LEN] = "";
    qe_kb_hit *h = NULL;
    int n = 0;
    if (qe_kb_search(kb, q->query, q->prev, q->k, &h, &n, err) < 0) return fail(err);
    if (n == 0) {
        if (q->json) printf("{\"type\":\"none\"}\n");
        else printf("the knowledge base has nothing on this question\n");
        qe_kb_hits_free(h, n);
        return 0;
    }
    qe_model *m = cli_open_model(q->model, true);
    if (!m) { qe_kb_hits_free(h, n); return 1; }
    qe_kb_counter c = {m->tok};
    qe_buf sys = {0};
    qe_ids ids = {0};
    qe_engine *eng = NULL;
    qe_job *job = NULL;
    int rc = 0;
    /* 2048 of the 4096-token context for sources, the rest for the question and the answer */
    int used = qe_kb_grounded_system(h, n, 2048, &c, &sys);
    qe_chat_msg msgs[2] = {{QE_ROLE_SYSTEM, sys.p, sys.n}, {QE_ROLE_USER, q->query, strlen(q->query)}};
    if (used < 0 || qe_chat_render_ids(m->tok, msgs, 2, true, &ids, err) < 0) { rc = fail(used < 0 ? "out of memory" : err); goto done; }
    qe_engine_opts eo = {.n_ctx = 4096, .n_parallel = 1};
    if (qe_engine_new(m, &eo, &eng, err) < 0) { rc = fail(err); goto done; }
    qe_sample_params sp;
    qe_sample_params_greedy(&sp); /* answers from documents: no creativity wanted */
    qe_job_params jp = {.prompt = ids.p, .n_prompt = (int)ids.n, .max_tokens = q->n_predict, .sample = sp};
    if (qe_engine_submit(eng, &jp, &job, err) < 0) { rc = fail(err); goto done; }
    qe_detok dt;
    qe_detok_init(&dt);
    qe_buf answer = {0}, piece = {0};
    qe_event ev = {0};
    while (qe_job_next(job, &ev, -1) == QE_OK && ev.kind == QE_EV_TOKEN) {
        piece.n = 0;
        qe_detok_push(&dt, m->tok, ev.token, &piece);
        qe_buf_append(&answer, piece.p, piece.n);
        if (!q->json) { fwrite(piece.p, 1, piece.n, stdout); fflush(stdout); }
    }
    if (ev.kind == QE_EV_ERROR) rc = fail(ev.message);
    piece.n = 0;
    qe_detok_flush(&dt, &piece);
    qe_buf_append(&answer, piece.p, piece.n);
    if (q->json) {
        json_t *src = json_array();
        for (int i = 0; i < used; i++)
            json_array_append_new(src, json_pack("{s:i, s:s, s:s, s:i}", "n", i + 1, "doc", h[i].doc, "heading", h[i].heading, "page", h[i].page));
        json_t *o = json_pack("{s:s, s:s%, s:o}", "type", "generated", "answer", answer.p ? answer.p : "", answer.n, "sources", src);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fwrite(piece.p, 1, piece.n, stdout);
        printf("\n\nsources:\n");
        for (int i = 0; i < used; i++) {
            printf("  [%d] %s", i + 1, h[i].doc);
            if (*h[i].heading) printf(" › %s", h[i].heading);
            if (h[i].page) printf(" (p. %d)", h[i].page);
            printf("\n");
        }
    }
    qe_buf_free(&answer);
    qe_buf_free(&piece);
done:
    if (job) qe_job_release(job);
    qe_engine_free(eng);
    qe_ids_free(&ids);
    qe_buf_free(&sys);
    qe_model_free(m);
    qe_kb_hits_free(h, n);
    return rc;
}

static int kb_ask(int argc, char **argv) {
    query_opts q = {0};
    int rc = parse_query_opts(argc, argv, &q, "ask");
    if (rc) return rc;
    char err[QE_ERR_LEN] = "";
    /* hand-off phrases: --handoff 'a,b,c' replaces the defaults */
    const char *phr[64];
    int nphr = 0;
    char *hcopy = q.handoff ? strdup(q.handoff) : NULL;
    if (hcopy) {
        char *save = NULL;
        for (char *t = strtok_r(hcopy, ",", &save); t && nphr < 64; t = strtok_r(NULL, ",", &save)) phr[nphr++] = t;
    }
    bool handoff = qe_kb_handoff(q.query, strlen(q.query), hcopy ? phr : NULL, nphr);
    free(hcopy);
    if (handoff) {
        if (q.json) printf("{\"type\":\"handoff\"}\n");
        else printf("hand-off: the question asks for a person\n");
        return 0;
    }
    qe_kb *kb = NULL;
    if (qe_kb_open(q.name, false, QE_KB_FTS_QE, &kb, err) < 0) return fail(err);
    qe_kb_faq_entry *e = NULL;
    int n = 0;
    if (qe_kb_faq_load(kb, &e, &n, err) < 0) { qe_kb_close(kb); return fail(err); }
    double score = 0;
    int best = qe_kb_faq_best(e, n, q.query, q.threshold, &score);
    if (best >= 0) {
        if (q.json) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f}", "type", "faq", "answer", e[best].answer, "question",
                                  e[best].question, "source", e[best].source, "line", e[best].line, "score", score);
            char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
            if (s) printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            printf("%s\n\n(FAQ: \"%s\", %s line %d, score %.2f)\n", e[best].answer, e[best].question, e[best].source, e[best].line, score);
        }
    } else if (q.generate) {
        rc = ask_generate(kb, &q);
    } else {
        if (q.json) printf("{\"type\":\"search\"}\n");
        rc = search_print(kb, &q);
    }
    qe_kb_faq_free(e, n);
    qe_kb_close(kb);
    return rc;
}

/* --- faq -------------------------------------------------------------------------------------------------- */

static int kb_faq(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: qwen-edge kb faq NAME FILE\n"); return 2; }
    char err[QE_ERR_LEN] = "", real[4096];
    char *data = NULL;
    size_t len = 0;
    if (!realpath(argv[2], real)) snprintf(real, sizeof real, "%s", argv[2]);
    if (qe_read_file(argv[2], &data, &len, err) < 0) return fail(err);
    qe_kb_faq_entry *e = NULL;
    int n = 0, rc = qe_kb_faq_parse(data, len, real, &e, &n, err);
    free(data);
    if (rc < 0) { qe_err_prefix(err, "%s", argv[2]); return fail(err); }
    qe_kb *kb = NULL;
    if (qe_kb_open(argv[1], true, QE_KB_FTS_QE, &kb, err) < 0) { qe_kb_faq_free(e, n); return fail(err); }
    rc = qe_kb_faq_store(kb, real, e, n, err);
    qe_kb_close(kb);
    qe_kb_faq_free(e, n);
    if (rc < 0) return fail(err);
    printf("kb %s: %d FAQ entries from %s\n", argv[1], n, argv[2]);
    return 0;
}

static int kb_check(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: qwen-edge kb check NAME\n"); return 2; }
    char err[QE_ERR_LEN] = "";
    qe_kb *kb = NULL;
    if (qe_kb_open(argv[1], false, QE_KB_FTS_QE, &kb, err) < 0) return fail(err);
    int rc = qe_kb_check(kb, err);
    qe_kb_close(kb);
    if (rc < 0) return fail(err);
    printf("kb %s: ok\n", argv[1]);
    return 0;
}

/* --- extract ---------------------------------------------------------------------------------------------- */

static int kb_extract(int argc, char **argv) {
    const char *file = NULL, *model = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!file) file = argv[i];
    }
    if (!file) { fprintf(stderr, "usage: qwen-edge kb extract FILE [-m MODEL]\n"); return 2; }
    char err[QE_ERR_LEN] = "";
    const qe_kb_format *f = qe_kb_format_of(file);
    if (!f) { snprintf(err, sizeof err, "%s: unsupported format (supported: %s)", file, qe_kb_format_list()); return fail(err); }
    qe_tokenizer_source *src = NULL;
    qe_kb_counter c;
    int rc = open_counter(model, &src, &c, true);
    if (rc) return rc;
    char *data = NULL;
    size_t len = 0;
    qe_kb_extracted x = {0};
    qe_kb_chunk *ch = NULL;
    size_t nch = 0;
    if ((rc = qe_read_file(file, &data, &len, err)) == QE_OK && (rc = f->fn(data, len, &x, err)) == QE_OK &&
        (rc = qe_kb_chunk_doc(&x, &c, QE_KB_CHUNK_MAX, &ch, &nch)) == QE_OK) {
        json_t *h = json_pack("{s:s, s:s, s:i, s:i}", "title", x.title, "format", f->format, "blocks", (int)x.n, "text_bytes",
                              (int)x.text.n);
        char *s = h ? json_dumps(h, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(h);
        for (size_t i = 0; i < nch; i++) {
            json_t *o = json_pack("{s:s, s:i, s:i, s:I, s:I, s:s%}", "heading", ch[i].heading, "page", ch[i].page, "tokens",
                                  ch[i].n_tokens, "start", (json_int_t)ch[i].off, "end", (json_int_t)(ch[i].off + ch[i].len), "text",
                                  x.text.p + ch[i].off, ch[i].len);
            s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
            if (s) printf("%s\n", s);
            free(s);
            json_decref(o);
        }
    } else if (rc == QE_ENOMEM) {
        snprintf(err, sizeof err, "out of memory");
    }
    if (rc < 0) { qe_err_prefix(err, "%s", file); fail(err); }
    qe_kb_chunks_free(ch, nch);
    qe_kb_ext_free(&x);
    free(data);
    qe_tokenizer_source_free(src);
    return rc < 0 ? 1 : 0;
}

int cmd_kb(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct { const char *name; int (*fn)(int, char **); } sub[] = {
        {"add", kb_add}, {"list", kb_list}, {"ls", kb_ls}, {"rm", kb_rm}, {"search", kb_search},
        {"faq", kb_faq}, {"ask", kb_ask},   {"check", kb_check}, {"extract", kb_extract},
    };
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
        if (!strcmp(argv[1], sub[i].name)) {
            for (int j = 2; j < argc; j++)
                if (!strcmp(argv[j], "-h") || !strcmp(argv[j], "--help")) { usage(stdout); return 0; }
            return sub[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "qwen-edge kb: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
