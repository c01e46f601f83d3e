/* cmd_run.c — `qwen-edge run`: answer one prompt and exit, streaming the answer to stdout.
 * Also the parity hook used by the tests: --eval-ids runs a fixed token sequence (teacher forcing) and writes
 * the logits of every position to a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cli_util.h"
#include "commands.h"
#include "engine.h"
#include "gbnf.h"
#include "json_schema.h"
#include "qwen2.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge run [-m MODEL] -p TEXT [options]\n\n"
            "Answers one prompt and exits. The answer streams to stdout; errors go to stderr.\n\n"
            CLI_MODEL_HELP
            "  -p, --prompt TEXT       the prompt (- reads it from stdin)\n"
            "  -s, --system TEXT       system prompt (default: Qwen's own)\n"
            "  -n, --max-tokens N      at most N tokens of answer, at least 1 (default 512)\n"
            CLI_GEN_HELP
            "      --raw               no chat template: the prompt is given to the model as it is\n"
            "      --ids               print the generated token ids on one line instead of text\n"
            "      --ignore-eos        keep generating past the end-of-answer token (benchmarks)\n"
            "      --json-schema FILE  the answer is JSON valid for this JSON Schema (constrained decoding; see\n"
            "                          docs/GRAMMAR.md for the supported keywords)\n"
            "      --grammar FILE      the answer follows this llama.cpp GBNF grammar\n"
            "                          With either, the exit status is 3 if -n cut the answer short (incomplete).\n"
            "  -h, --help              this help\n");
    /* the tests' own options (--eval-ids, --logits-out, --eval-chunk, --eval-greedy) are described where they are
     * parsed, not here: they are not for users */
}

static char *read_stdin_all(void) {
    qe_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) qe_buf_append(&b, chunk, n);
    if (!b.p) qe_buf_append(&b, "", 0);
    return b.p;
}

/* "12 34 56" -> ids; false (with a message) on anything that is not a list of numbers. */
static bool parse_ids(const char *text, qe_ids *ids) {
    for (const char *p = text; *p;) {
        if (*p == ' ' || *p == ',' || *p == '\n') { p++; continue; }
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) { fprintf(stderr, "qwen-edge: not a token id list: '%.20s'\n", p); return false; }
        if (qe_ids_push(ids, (int32_t)v) < 0) { fprintf(stderr, "qwen-edge: out of memory\n"); return false; }
        p = end;
    }
    if (ids->n == 0) fprintf(stderr, "qwen-edge: the token id list is empty\n");
    return ids->n > 0;
}

/* Compiles --json-schema / --grammar FILE; NULL (with a message) on error. */
static qe_grammar *load_grammar(const char *path, bool schema) {
    char *text, err[QE_ERR_LEN];
    size_t len;
    qe_grammar *g = NULL;
    if (qe_read_file(path, &text, &len, err)) { fprintf(stderr, "qwen-edge: %s\n", err); return NULL; }
    int rc = schema ? qe_grammar_from_json_schema(text, len, &g, err) : qe_grammar_from_gbnf(text, len, &g, err);
    free(text);
    if (rc) fprintf(stderr, "qwen-edge: %s: %s\n", path, err);
    return g;
}

static int eval_logits(qe_model *m, int n_threads, const char *ids_text, const char *out_path, int chunk) {
    qe_ids ids = {0};
    if (!parse_ids(ids_text, &ids)) return 1;
    const int CHUNK = chunk > 0 && chunk <= 64 ? chunk : 64;
    qe_fwd *f;
    char err[QE_ERR_LEN];
    int n_ctx = (int)ids.n + 1;
    if (qe_fwd_new(m, n_threads, 1, n_ctx, CHUNK, CHUNK, &f, err)) { fprintf(stderr, "qwen-edge: %s\n", err); return 1; }
    FILE *out = fopen(out_path, "wb");
    if (!out) { perror(out_path); qe_fwd_free(f); return 1; }
    int rc = 0;
    for (size_t i = 0; i < ids.n; i += CHUNK) {
        int n = ids.n - i < CHUNK ? (int)(ids.n - i) : CHUNK;
        qe_seq_batch sq = {.slot = 0, .pos0 = (int)i, .n_tok = n, .tokens = ids.p + i, .logits_from = 0};
        float *logits;
        int rows;
        if (qe_forward(f, &sq, 1, &logits, &rows, err)) { fprintf(stderr, "qwen-edge: %s\n", err); rc = 1; break; }
        fwrite(logits, sizeof(float), (size_t)rows * m->cfg.n_vocab, out);
    }
    if (fclose(out) != 0) rc = 1;
    qe_fwd_free(f);
    qe_ids_free(&ids);
    return rc;
}

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *system = NULL, *eval_ids = NULL, *logits_out = NULL,
               *eval_greedy = NULL, *schema_path = NULL, *gbnf_path = NULL;
    int eval_chunk = 64;
    bool raw = false, print_ids = false, ignore_eos = false;
    cli_gen_opts g = {.n_ctx = 4096, .n_predict = 512};
    qe_sample_params_default(&g.sp);
    for (int i = 1; i < argc; i++) {
        int gen;
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) ok = cli_str(argc, argv, &i, &model_path);
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) ok = cli_str(argc, argv, &i, &prompt);
        else if (!strcmp(a, "-s") || !strcmp(a, "--system")) ok = cli_str(argc, argv, &i, &system);
        else if ((gen = cli_gen_option(argc, argv, &i, &g)) != 0) ok = gen > 0;
        else if (!strcmp(a, "--raw")) raw = true;
        else if (!strcmp(a, "--ids")) print_ids = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        /* tests: --eval-ids "ID .." --logits-out FILE runs these ids and writes every position's logits as float32
         * [n_ids][n_vocab] to FILE (--eval-chunk N: N tokens per pass, default 64); --eval-greedy "ID .." prints
         * the -n greedy ids that follow these ids */
        else if (!strcmp(a, "--eval-ids")) ok = cli_str(argc, argv, &i, &eval_ids);
        else if (!strcmp(a, "--logits-out")) ok = cli_str(argc, argv, &i, &logits_out);
        else if (!strcmp(a, "--eval-greedy")) ok = cli_str(argc, argv, &i, &eval_greedy);
        else if (!strcmp(a, "--eval-chunk")) ok = cli_int(argc, argv, &i, 1, 64, &eval_chunk);
        else if (!strcmp(a, "--json-schema")) ok = cli_str(argc, argv, &i, &schema_path);
        else if (!strcmp(a, "--grammar")) ok = cli_str(argc, argv, &i, &gbnf_path);
        else { fprintf(stderr, "qwen-edge run: unknown option '%s' (see qwen-edge run --help)\n", a); return 2; }
        if (!ok) return 2;
    }
    qe_sample_params sp = g.sp;
    int n_predict = g.n_predict, n_threads = g.n_threads, n_ctx = g.n_ctx;
    if (eval_ids && !logits_out) { fprintf(stderr, "qwen-edge run: --eval-ids needs --logits-out FILE\n"); return 2; }
    if (eval_greedy) { /* tests: greedy ids after a given id sequence, no template, no end-of-answer stop */
        qe_sample_params_greedy(&sp);
        print_ids = ignore_eos = true;
        prompt = "";
    }
    if (!prompt && !eval_ids) { fprintf(stderr, "qwen-edge run: no prompt: give -p TEXT (see --help)\n"); return 2; }
    if (sp.temperature <= 0) { float t = sp.temperature; qe_sample_params_greedy(&sp); sp.temperature = t; }
    if (schema_path && gbnf_path) { fprintf(stderr, "qwen-edge run: give --json-schema or --grammar, not both\n"); return 2; }
    /* compile before loading the model: a bad schema fails fast */
    qe_grammar *grammar = NULL;
    if ((schema_path || gbnf_path) && !(grammar = load_grammar(schema_path ? schema_path : gbnf_path, schema_path != NULL))) return 2;

    qe_model *m = cli_open_model(model_path, print_ids);
    if (!m) { qe_grammar_free(grammar); return 1; }
    if (eval_ids) { int rc = eval_logits(m, n_threads, eval_ids, logits_out, eval_chunk); qe_model_free(m); return rc; }

    char *stdin_text = NULL;
    if (!strcmp(prompt, "-")) prompt = stdin_text = read_stdin_all();
    char err[QE_ERR_LEN];
    qe_ids ids = {0};
    int rc;
    if (eval_greedy) {
        rc = parse_ids(eval_greedy, &ids) ? QE_OK : QE_EINVAL;
        snprintf(err, sizeof err, "bad --eval-greedy list");
    } else if (raw) {
        rc = qe_tokenize(m->tok, prompt, strlen(prompt), false, &ids, err);
    } else {
        qe_chat_msg msgs[2];
        int n = 0;
        if (system) msgs[n++] = (qe_chat_msg){QE_ROLE_SYSTEM, system, strlen(system)};
        msgs[n++] = (qe_chat_msg){QE_ROLE_USER, prompt, strlen(prompt)};
        rc = qe_chat_render_ids(m->tok, msgs, (size_t)n, true, &ids, err);
    }
    if (rc) { fprintf(stderr, "qwen-edge: %s\n", err); qe_model_free(m); free(stdin_text); qe_grammar_free(grammar); return 1; }

    qe_engine *eng;
    qe_engine_opts eo = {.n_threads = n_threads, .n_ctx = n_ctx, .n_parallel = 1};
    if (qe_engine_new(m, &eo, &eng, err)) {
        fprintf(stderr, "qwen-edge: %s\n", err); qe_ids_free(&ids); qe_model_free(m); qe_grammar_free(grammar); return 1;
    }
    qe_job_params jp = {.prompt = ids.p, .n_prompt = (int)ids.n, .max_tokens = n_predict, .sample = sp,
                        .ignore_eos = ignore_eos, .grammar = grammar};
    qe_job *job;
    rc = 0;
    if (qe_engine_submit(eng, &jp, &job, err)) {
        fprintf(stderr, "qwen-edge: %s\n", err);
        qe_grammar_free(grammar);
        rc = 1;
    } else {
        qe_detok dt;
        qe_detok_init(&dt);
        qe_buf text = {0};
        qe_event ev;
        int n_out = 0;
        while (qe_job_next(job, &ev, -1) == QE_OK) {
            if (ev.kind == QE_EV_TOKEN) {
                if (print_ids) printf("%s%d", n_out ? " " : "", ev.token);
                else {
                    text.n = 0;
                    qe_detok_push(&dt, m->tok, ev.token, &text);
                    fwrite(text.p, 1, text.n, stdout);
                }
                n_out++;
                fflush(stdout);
            } else {
                if (ev.kind == QE_EV_ERROR) { fprintf(stderr, "qwen-edge: %s\n", ev.message); rc = 1; }
                if (ev.kind == QE_EV_DONE && ev.finish == QE_FINISH_LENGTH && grammar) {
                    fprintf(stderr, "qwen-edge: the answer reached the -n %d token limit before the grammar was complete\n",
                            n_predict);
                    rc = 3;
                }
                break;
            }
        }
        if (!print_ids) { text.n = 0; qe_detok_flush(&dt, &text); fwrite(text.p, 1, text.n, stdout); }
        printf("\n");
        qe_buf_free(&text);
        qe_job_release(job);
    }
    qe_engine_free(eng);
    qe_ids_free(&ids);
    qe_model_free(m);
    free(stdin_text);
    return rc;
}
