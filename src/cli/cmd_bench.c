/* cmd_bench.c — `qwen-edge bench`: prefill and decode speed of a model on this machine, measured the way
 * llama-bench does (pp: one batch of P prompt tokens; tg: N tokens generated one at a time), plus effective
 * weight bandwidth (decode reads every weight once per token), one token's sampling time, peak RSS and load time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "kernels/matmul.h"
#include "quant.h"
#include "qwen2.h"
#include "sampler.h"
#include "threadpool.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge bench -m MODEL [-t N] [-p 512] [-n 128] [-r 3] [--parallel B] [--depth D] [--json]\n\n"
            "  -m, --model MODEL   a GGUF file, a Hugging Face folder, a model name or a URL\n"
            "  -t, --threads N     compute threads, 1 to 256 (default: physical cores)\n"
            "  -p N                prompt tokens processed in one batch (prefill test; 0 skips it)\n"
            "  -n N                tokens generated one by one (decode test; 0 skips it), then one token's\n"
            "                      sampling timed over the last logits (Qwen2.5-Instruct's defaults)\n"
            "  -r N                repetitions, 1 to 100; the median is reported (default 3)\n"
            "  --parallel B        decode B sequences at once (1 to 64) and report the aggregate tok/s (default 1)\n"
            "  --depth D           tokens already in the context before the decode test (default 0)\n"
            "  -b, --batch N       at most N tokens per forward pass (default 512; a longer prompt runs in chunks)\n"
            "  --json              one JSON object: pp_tok_s, tg_tok_s, sample_ms, threads, model_bytes, ...\n"
            "  --bandwidth         only measure memory read bandwidth (GB/s), the ceiling of decode speed\n");
}

/* --bandwidth: how fast this machine streams memory (the ceiling of decode), summing a 1 GiB buffer on n threads. */
typedef struct { const uint64_t *buf; size_t n; uint64_t sums[64]; } bw_ctx;
static void bw_worker(void *p, int ith, int nth) {
    bw_ctx *c = p;
    int64_t lo, hi;
    qe_split((int64_t)c->n, 1024, ith, nth, &lo, &hi);
    /* 16-byte vectors (any x86-64 or arm64), four independent sums, one 64-byte line per iteration */
    typedef uint64_t v2u __attribute__((vector_size(16)));
    v2u a = {0, 0}, b = a, d = a, e = a;
    for (int64_t i = lo; i + 8 <= hi; i += 8) {
        v2u x[4];
        memcpy(x, c->buf + i, sizeof x);
        a += x[0]; b += x[1]; d += x[2]; e += x[3];
    }
    v2u s = a + b + d + e;
    c->sums[ith & 63] = s[0] + s[1];
}

static double measure_bandwidth(int n_threads) {
    size_t bytes = (size_t)1 << 30;
    uint64_t *buf = qe_aligned_alloc(1 << 21, bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i;
    qe_pool *pool = qe_pool_new(n_threads);
    bw_ctx c = {.buf = buf, .n = bytes / 8};
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t = qe_now();
        qe_pool_run(pool, bw_worker, &c);
        double gbs = bytes / (qe_now() - t) / 1e9;
        if (gbs > best) best = gbs;
    }
    qe_pool_free(pool);
    free(buf);
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t mat_bytes(const qe_mat *w) { return qe_row_size(w->type, w->cols) * (uint64_t)w->rows; }

/* Bytes of weights one decode step reads: every layer matrix and the output head. */
static uint64_t weight_bytes_per_token(const qe_model *m) {
    uint64_t b = mat_bytes(&m->output);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const qe_layer *L = &m->layers[l];
        b += mat_bytes(&L->wq) + mat_bytes(&L->wk) + mat_bytes(&L->wv) + mat_bytes(&L->wo) + mat_bytes(&L->w_gate) +
             mat_bytes(&L->w_up) + mat_bytes(&L->w_down);
    }
    return b;
}

/* Milliseconds one token's sampling takes with Qwen2.5-Instruct's defaults (repetition penalty over n_hist
 * tokens of history, temperature, top-k 20, top-p 0.8) over a row of real logits from the model: the median of
 * 201 draws, each on a fresh copy of the row (the sampler changes it in place; the copy is not timed). */
static double measure_sampling_ms(const float *logits, int n_vocab, const int32_t *hist, int n_hist) {
    enum { DRAWS = 201 };
    qe_sampler *smp = qe_sampler_new(n_vocab);
    float *row = malloc(sizeof(float) * (size_t)n_vocab);
    if (!smp || !row) { qe_sampler_free(smp); free(row); return -1; }
    qe_sample_params sp;
    qe_sample_params_default(&sp);
    sp.seed = 42;
    qe_sampler_reset(smp, &sp);
    for (int i = 0; i < n_hist; i++) qe_sampler_accept(smp, hist[i], false);
    double ms[DRAWS];
    for (int d = 0; d < DRAWS; d++) {
        memcpy(row, logits, sizeof(float) * (size_t)n_vocab);
        double t = qe_now();
        volatile int32_t tok = qe_sampler_sample(smp, row);
        ms[d] = (qe_now() - t) * 1e3;
        (void)tok;
    }
    qsort(ms, DRAWS, sizeof(double), cmp_double);
    qe_sampler_free(smp);
    free(row);
    return ms[DRAWS / 2];
}

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    int n_threads = 0, n_prompt = 512, n_gen = 128, reps = 3, parallel = 1, depth = 0;
    bool json = false, bandwidth = false;
    int max_batch = 512;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) ok = cli_str(argc, argv, &i, &model_path);
        else if (cli_is(a, "-t", "--threads")) ok = cli_int(argc, argv, &i, 1, CLI_THREADS_MAX, &n_threads);
        else if (!strcmp(a, "-p")) ok = cli_int(argc, argv, &i, 0, CLI_CTX_MAX, &n_prompt);
        else if (!strcmp(a, "-n")) ok = cli_int(argc, argv, &i, 0, CLI_CTX_MAX, &n_gen);
        else if (!strcmp(a, "-r")) ok = cli_int(argc, argv, &i, 1, 100, &reps);
        else if (!strcmp(a, "--parallel")) ok = cli_int(argc, argv, &i, 1, 64, &parallel);
        else if (!strcmp(a, "--depth")) ok = cli_int(argc, argv, &i, 0, CLI_CTX_MAX, &depth);
        else if (cli_is(a, "-b", "--batch")) ok = cli_int(argc, argv, &i, 1, 4096, &max_batch);
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--bandwidth")) bandwidth = true;
        else { fprintf(stderr, "qwen-edge bench: unknown option '%s' (see --help)\n", a); return 2; }
        if (!ok) return 2;
    }
    if (max_batch < parallel) {
        fprintf(stderr, "qwen-edge bench: -b (%d) must be at least --parallel (%d)\n", max_batch, parallel);
        return 2;
    }
    if (bandwidth) {
        int nt = n_threads > 0 ? n_threads : qe_physical_cores();
        double gbs = measure_bandwidth(nt);
        if (json) printf("{\"threads\":%d,\"read_gb_s\":%.2f}\n", nt, gbs);
        else printf("memory read bandwidth: %.1f GB/s on %d threads\n", gbs, nt);
        return gbs > 0 ? 0 : 1;
    }
    double t0 = qe_now();
    qe_model *m = cli_open_model(model_path, true);
    if (!m) return 1;
    double t_load = qe_now() - t0;
    if (n_threads <= 0) n_threads = qe_physical_cores();
    int n_ctx = (n_prompt > depth ? n_prompt : depth) + n_gen + 1;
    int n_batch = n_prompt > parallel ? n_prompt : parallel;
    if (depth > n_batch) n_batch = depth; /* the depth is filled like a prompt, not one token per pass */
    if (n_batch > max_batch) n_batch = max_batch;
    if (n_batch < 1) n_batch = 1;
    qe_fwd *f;
    char err[QE_ERR_LEN];
    if (qe_fwd_new(m, n_threads, parallel, n_ctx, n_batch, parallel, &f, err)) {
        fprintf(stderr, "qwen-edge: %s\n", err);
        qe_model_free(m);
        return 1;
    }
    /* random ids for the prompt / depth, and for the decode steps (sequence b, step g reads toks[b + g % 7]) */
    enum { SAMPLE_HIST = 512 }; /* history the sampling test's repetition penalty looks over */
    int n_tok_buf = (n_prompt > depth ? n_prompt : depth) + parallel + 8;
    if (n_tok_buf < SAMPLE_HIST) n_tok_buf = SAMPLE_HIST;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n_tok_buf);
    uint64_t rng = 1234567;
    for (int i = 0; i < n_tok_buf; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((rng >> 33) % 150000);
    }
    double *pp = calloc((size_t)reps, sizeof(double)), *tg = calloc((size_t)reps, sizeof(double));
    float *logits;
    int rows, rc = 0;
    qe_seq_batch seqs[64];
    for (int r = 0; r < reps && !rc; r++) {
        if (n_prompt > 0) { /* prefill: n_prompt tokens in chunks of n_batch, logits of the last only */
            double s = qe_now();
            for (int p = 0; p < n_prompt && !rc; p += n_batch) {
                int n = n_prompt - p < n_batch ? n_prompt - p : n_batch;
                qe_seq_batch sq = {.slot = 0, .pos0 = p, .n_tok = n, .tokens = toks + p,
                                   .logits_from = p + n == n_prompt ? n - 1 : n};
                rc = qe_forward(f, &sq, 1, &logits, &rows, err);
            }
            pp[r] = n_prompt / (qe_now() - s);
        }
        if (n_gen > 0 && !rc) { /* decode: `parallel` sequences, one token each per pass */
            for (int b = 0; b < parallel && depth > 0 && !rc; b++)
                for (int p = 0; p < depth && !rc; p += n_batch) {
                    int n = depth - p < n_batch ? depth - p : n_batch;
                    qe_seq_batch sq = {.slot = b, .pos0 = p, .n_tok = n, .tokens = toks + p, .logits_from = n};
                    rc = qe_forward(f, &sq, 1, &logits, &rows, err);
                }
            double s = qe_now();
            for (int g = 0; g < n_gen && !rc; g++) {
                for (int b = 0; b < parallel; b++)
                    seqs[b] = (qe_seq_batch){.slot = b, .pos0 = depth + g, .n_tok = 1, .tokens = toks + b + (g % 7),
                                             .logits_from = 0};
                rc = qe_forward(f, seqs, parallel, &logits, &rows, err);
            }
            tg[r] = (double)n_gen * parallel / (qe_now() - s);
        }
    }
    double sample_ms = -1;
    if (!rc && n_gen > 0) sample_ms = measure_sampling_ms(logits, m->cfg.n_vocab, toks, SAMPLE_HIST);
    if (rc) { fprintf(stderr, "qwen-edge: %s\n", err); }
    else {
        qsort(pp, (size_t)reps, sizeof(double), cmp_double);
        qsort(tg, (size_t)reps, sizeof(double), cmp_double);
        double pp_med = pp[reps / 2], tg_med = tg[reps / 2];
        uint64_t wbytes = weight_bytes_per_token(m);
        double gbs = parallel == 1 ? tg_med * (double)wbytes / 1e9 : tg_med / parallel * (double)wbytes / 1e9;
        if (json) {
            printf("{\"model\":\"%s\",\"weight_types\":\"%s\",\"kernels\":\"%s\",\"threads\":%d,\"n_prompt\":%d,"
                   "\"n_gen\":%d,\"parallel\":%d,\"depth\":%d,\"pp_tok_s\":%.2f,\"tg_tok_s\":%.2f,\"model_bytes\":%llu,"
                   "\"weight_bytes_per_token\":%llu,\"tg_gb_s\":%.2f,\"sample_ms\":%.4f,\"load_s\":%.3f,\"peak_rss_mb\":%.1f}\n",
                   m->path, m->weight_types, qe_kernels_name(), n_threads, n_prompt, n_gen, parallel, depth, pp_med,
                   tg_med, (unsigned long long)m->file_bytes, (unsigned long long)wbytes, gbs, sample_ms, t_load,
                   cli_peak_rss_mb());
        } else {
            printf("model      %s (%s, %.0f MB)\nkernels    %s, %d threads\n", m->path, m->weight_types,
                   m->file_bytes / 1e6, qe_kernels_name(), n_threads);
            if (n_prompt) printf("prefill    %8.1f tok/s  (%d tokens, median of %d)\n", pp_med, n_prompt, reps);
            if (n_gen)
                printf("decode     %8.1f tok/s  (%d tokens x %d sequences, depth %d; %.1f GB/s of weights)\n", tg_med,
                       n_gen, parallel, depth, gbs);
            if (sample_ms >= 0)
                printf("sampling   %8.3f ms per token (temperature 0.7, top-k 20, top-p 0.8, repetition penalty over 512 tokens)\n",
                       sample_ms);
            printf("load %.2f s, peak RSS %.0f MB\n", t_load, cli_peak_rss_mb());
        }
    }
    free(pp); free(tg); free(toks);
    qe_fwd_free(f);
    qe_model_free(m);
    return rc ? 1 : 0;
}
