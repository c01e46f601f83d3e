/* bench/kernels.c — times qe_matmul on the Qwen2.5-0.5B shapes (hidden 896, q 14 x 64, kv 2 x 64, FFN 4864,
 * vocab 151936) for each weight type, at n = 1 (decode: prints GB/s of weights streamed) and n = 512
 * (prefill: prints GFLOP/s), on 1 and 2 threads, then a per-model estimate: matmul-only tok/s of a 24-layer
 * forward (decode includes the lm_head, prefill does not — only the last prompt token needs logits).
 * Timings are the first quartile of several repetitions (1 thread: thread CPU time, so time slices lost to
 * other processes do not count; 2 threads: wall time). The machine is shared: compare ratios within a run.
 *   build/bench/kernels [--types q8_0,q4_0,...] [--threads 1,2] [--n 1,512] [--kernels ref|avx512|avx2]
 *                       [--min-time 0.3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "quant.h"
#include "threadpool.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 11); }

static int type_by_name(const char *s) {
    static const int types[] = {QE_TYPE_F32, QE_TYPE_F16, QE_TYPE_BF16, QE_TYPE_Q8_0, QE_TYPE_Q4_0, QE_TYPE_Q4_1,
                                QE_TYPE_Q5_0, QE_TYPE_Q5_1, QE_TYPE_IQ4_NL, QE_TYPE_Q2_K, QE_TYPE_Q3_K, QE_TYPE_Q4_K,
                                QE_TYPE_Q5_K, QE_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(s, qe_type_name(types[i]))) return types[i];
    return -1;
}

/* Random weights with sane scales: random bits everywhere, then every fp16 field of a block set to 0.01. */
static uint8_t *random_weights(int type, int64_t rows, int64_t cols, size_t *bytes) {
    size_t rb = qe_row_size(type, cols);
    *bytes = rb * (size_t)rows;
    uint8_t *w = malloc(*bytes);
    if (!w) return NULL;
    uint16_t h = qe_fp32_to_fp16(0.01f);
    for (size_t i = 0; i < *bytes; i += 4) { uint32_t r = rnd(); memcpy(w + i, &r, *bytes - i < 4 ? *bytes - i : 4); }
    int bs = qe_type_traits_get(type)->block_size;
    if (type == QE_TYPE_F16) for (size_t i = 0; i < *bytes; i += 2) { uint16_t v = qe_fp32_to_fp16((float)(rnd() % 2000) / 1000 - 1); memcpy(w + i, &v, 2); }
    else if (type == QE_TYPE_BF16) for (size_t i = 0; i < *bytes; i += 2) { uint16_t v = qe_fp32_to_bf16((float)(rnd() % 2000) / 1000 - 1); memcpy(w + i, &v, 2); }
    else if (type == QE_TYPE_F32) for (size_t i = 0; i < *bytes; i += 4) { float v = (float)(rnd() % 2000) / 1000 - 1; memcpy(w + i, &v, 4); }
    else {
        size_t bb = rb / (size_t)(cols / bs);
        size_t doff[2] = {0, 0}; int nd = 1;
        switch (type) {
        case QE_TYPE_Q4_1: case QE_TYPE_Q5_1: doff[1] = 2; nd = 2; break;
        case QE_TYPE_Q2_K: doff[0] = offsetof(block_q2_K, d); doff[1] = offsetof(block_q2_K, dmin); nd = 2; break;
        case QE_TYPE_Q3_K: doff[0] = offsetof(block_q3_K, d); break;
        case QE_TYPE_Q4_K: doff[0] = offsetof(block_q4_K, d); doff[1] = offsetof(block_q4_K, dmin); nd = 2; break;
        case QE_TYPE_Q5_K: doff[0] = offsetof(block_q5_K, d); doff[1] = offsetof(block_q5_K, dmin); nd = 2; break;
        case QE_TYPE_Q6_K: doff[0] = offsetof(block_q6_K, d); break;
        }
        for (size_t o = 0; o < *bytes; o += bb)
            for (int k = 0; k < nd; k++) memcpy(w + o + doff[k], &h, 2);
    }
    return w;
}

/* CPU time of this thread: on a shared machine, single-thread runs are timed by the CPU they got. */
static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

typedef struct { const char *name; int64_t rows, cols; int per_layer; } shape;
static shape shapes[] = {
    {"attn_q/o 896x896", 896, 896, 2}, {"attn_k/v 128x896", 128, 896, 2}, {"ffn_gate/up 4864x896", 4864, 896, 2},
    {"ffn_down 896x4864", 896, 4864, 1}, {"lm_head 151936x896", 151936, 896, 0},
};
static int n_shapes = 5;
#define N_SHAPES n_shapes

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (s && *s && n < max) { out[n++] = atoi(s); s = strchr(s, ','); if (s) s++; }
    return n;
}

/* Decode attention as a forward pass meets it: one token against att_n cached positions in each of 24 layers'
 * caches (48 MB at 4096 positions, far past the caches, as in a real step), one KV head per thread. Prints the
 * best of 5 (wall time per token) and the GB/s of keys and values read: the decode-at-depth cost. */
typedef struct { const float *q; uint16_t *const *k, *const *v; int64_t hs; int n; float *o[2], *scr[2]; int layer; } att_job;
static void att_layer(void *p, int ith, int nth) {
    att_job *j = p;
    for (int hk = ith; hk < 2; hk += nth) /* 14 q / 2 kv heads x 64 */
        qe_attention(j->q, 1, j->n - 1, j->k[j->layer], j->v[j->layer], j->hs, j->n, 14, 2, 64, hk, hk + 1, j->o[ith], j->scr[ith]);
}
static void decode_attention_from_memory(int n) {
    enum { NL = 24 };
    int64_t hs = (int64_t)(n + QE_KV_BLOCK - 1) / QE_KV_BLOCK * QE_KV_BLOCK * 64;
    uint16_t *k[NL], *v[NL];
    float *q = malloc(sizeof(float) * 14 * 64);
    att_job j = {.q = q, .k = k, .v = v, .hs = hs, .n = n};
    for (int l = 0; l < NL; l++) {
        k[l] = malloc(2 * (size_t)hs * 2);
        v[l] = malloc(2 * (size_t)hs * 2);
        for (int64_t i = 0; i < hs * 2; i++) {
            k[l][i] = qe_fp32_to_fp16((float)(rnd() % 2001) / 1000.0f - 1.0f);
            v[l][i] = qe_fp32_to_fp16((float)(rnd() % 2001) / 1000.0f - 1.0f);
        }
    }
    for (int i = 0; i < 14 * 64; i++) q[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
    for (int t = 0; t < 2; t++) {
        j.o[t] = malloc(sizeof(float) * 14 * 64);
        j.scr[t] = malloc(sizeof(float) * QE_ATT_SCRATCH(n, 14, 2));
    }
    for (int nt = 1; nt <= 2; nt++) {
        qe_pool *pool = qe_pool_new(nt);
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t0 = qe_now();
            for (int it = 0; it < 4; it++)
                for (j.layer = 0; j.layer < NL; j.layer++) qe_pool_run(pool, att_layer, &j);
            double dt = (qe_now() - t0) / 4;
            if (dt < best) best = dt;
        }
        qe_pool_free(pool);
        printf("attention decode at %d cached, 24 layers from memory, %d thread%s: %.3f ms per token, %.1f GB/s\n", n, nt,
               nt > 1 ? "s" : "", best * 1e3, (double)NL * 2 * 2 * 2 * hs / best / 1e9);
    }
    for (int l = 0; l < NL; l++) { free(k[l]); free(v[l]); }
    for (int t = 0; t < 2; t++) { free(j.o[t]); free(j.scr[t]); }
    free(q);
}

int main(int argc, char **argv) {
    const char *types_arg = "q8_0,q4_0,q5_0,iq4_nl,q4_1,q5_1,f16,q4_K,q6_K";
    int threads[4] = {1, 2}, n_threads = 2, ns[4] = {1, 512}, n_ns = 2;
    double min_time = 0.3;
    int attention_only = 0, att_n = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--types") && i + 1 < argc) types_arg = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = parse_list(argv[++i], threads, 4);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n_ns = parse_list(argv[++i], ns, 4);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) { /* one custom shape "rows,cols" */
            static char name[64];
            shapes[0].rows = atoll(argv[++i]);
            shapes[0].cols = strchr(argv[i], ',') ? atoll(strchr(argv[i], ',') + 1) : 896;
            snprintf(name, sizeof name, "custom %lldx%lld", (long long)shapes[0].rows, (long long)shapes[0].cols);
            shapes[0].name = name;
            n_shapes = 1;
        }
        else if (!strcmp(argv[i], "--attention")) attention_only = 1;
        else if (!strcmp(argv[i], "--att-n") && i + 1 < argc) att_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernels") && i + 1 < argc) setenv("QE_KERNELS", argv[++i], 1);
        else {
            fprintf(stderr, "usage: %s [--types q8_0,q4_0,...] [--threads 1,2] [--n 1,512] [--kernels ref|avx2|avx512] "
                            "[--min-time seconds] [--shape rows,cols] [--attention] [--att-n N]\n", argv[0]);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    printf("kernels: %s\n", qe_kernels_name());
    {   /* attention, one thread, per layer: prefill of att_n tokens and one decode token at att_n cached */
        int nh = 14, nkv = 2, hd = 64, n = att_n > 0 ? att_n : 512;
        float *q = malloc(sizeof(float) * n * nh * hd), *o = malloc(sizeof(float) * n * nh * hd), *scr = malloc(sizeof(float) * QE_ATT_SCRATCH(n, nh, nkv));
        int64_t hs = (int64_t)(n + QE_KV_BLOCK - 1) / QE_KV_BLOCK * QE_KV_BLOCK * hd; /* the cache layout of ops.h */
        uint16_t *kc = malloc(2 * (size_t)hs * nkv), *vc = malloc(2 * (size_t)hs * nkv);
        for (int i = 0; i < n * nh * hd; i++) q[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
        for (int64_t i = 0; i < hs * nkv; i++) { kc[i] = qe_fp32_to_fp16((float)(rnd() % 2001) / 1000.0f - 1.0f); vc[i] = kc[(i * 7) % (hs * nkv)]; }
        for (int dec = 0; dec < 2; dec++) {
            double best = 1e9;
            for (int r = 0; r < 5; r++) {
                double t0 = thread_cpu();
                if (dec) qe_attention(q, 1, n - 1, kc, vc, hs, n, nh, nkv, hd, 0, nkv, o, scr);
                else qe_attention(q, n, 0, kc, vc, hs, n, nh, nkv, hd, 0, nkv, o, scr);
                double dt = thread_cpu() - t0;
                if (dt < best) best = dt;
            }
            printf("attention %s %d (14 q / 2 kv heads x 64), 1 thread: %.3f ms per layer\n",
                   dec ? "decode, 1 token after" : "prefill", n, best * 1e3);
        }
        free(q); free(o); free(scr); free(kc); free(vc);
    }
    decode_attention_from_memory(att_n > 0 ? att_n : 512);
    if (attention_only) return 0;
    int max_n = 1;
    for (int i = 0; i < n_ns; i++) if (ns[i] > max_n) max_n = ns[i];
    qe_matmul_ws *ws = qe_matmul_ws_new(max_n, 4864);
    float *x = malloc(sizeof(float) * (size_t)max_n * 4864), *y = malloc(sizeof(float) * (size_t)max_n * 151936);
    for (int64_t i = 0; i < (int64_t)max_n * 4864; i++) x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
    /* activation quantiser alone: 512 tokens x 4864 into the tiled q8 layout (what prefill of ffn_down pays) */
    const qe_kernel_set *ks = qe_kernels_active();
    if (ks && ks->quant_tiled) {
        size_t gb = qe_act_tile_bytes(QE_ACT_Q8, 4864);
        uint8_t *g = malloc(gb);
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t0 = thread_cpu();
            for (int t = 0; t < 512; t++) ks->quant_tiled(x + (size_t)(t % max_n) * 4864, 4864, QE_ACT_Q8, 0, g, t % 8);
            double dt = thread_cpu() - t0;
            if (dt < best) best = dt;
        }
        printf("quantise 512 x 4864 to tiled q8: %.3f ms (%.2f ns/value)\n", best * 1e3, best / (512.0 * 4864) * 1e9);
        free(g);
    }
    printf("%-7s %-22s %4s %3s %10s %9s %8s\n", "type", "shape", "n", "thr", "ms", "GFLOP/s", "GB/s");
    char tbuf[256];
    snprintf(tbuf, sizeof tbuf, "%s", types_arg);
    for (char *tn = strtok(tbuf, ","); tn; tn = strtok(NULL, ",")) {
        int type = type_by_name(tn);
        if (type < 0) { fprintf(stderr, "unknown type %s\n", tn); continue; }
        double est[4][4] = {{0}}; /* [thread idx][n idx] seconds per forward */
        for (int si = 0; si < N_SHAPES; si++) {
            const shape *sh = &shapes[si];
            size_t bytes;
            uint8_t *w = random_weights(type, sh->rows, sh->cols, &bytes);
            qe_mat m;
            char err[QE_ERR_LEN];
            if (!w || qe_mat_init(&m, type, sh->rows, sh->cols, w, err) != 0) { printf("%-7s %-22s skipped\n", tn, sh->name); free(w); continue; }
            for (int ti = 0; ti < n_threads; ti++) {
                qe_pool *pool = qe_pool_new(threads[ti]);
                for (int ni = 0; ni < n_ns; ni++) {
                    int n = ns[ni];
                    if (sh->per_layer == 0 && n > 1) continue; /* lm_head runs for the last prompt token only */
                    double t[64];
                    int reps = 0;
                    double total = 0;
                    while (reps < 64 && (reps < 3 || total < min_time)) {
                        int cpu = threads[ti] == 1;
                        double t0 = cpu ? thread_cpu() : qe_now();
                        qe_matmul(pool, ws, &m, x, sh->cols, n, y, sh->rows, NULL, 0);
                        t[reps] = (cpu ? thread_cpu() : qe_now()) - t0;
                        total += t[reps++];
                    }
                    qsort(t, (size_t)reps, sizeof(double), cmp_d);
                    double med = t[reps / 4]; /* first quartile: the least disturbed runs */
                    double flops = 2.0 * (double)sh->rows * (double)sh->cols * n;
                    printf("%-7s %-22s %4d %3d %10.3f %9.1f %8.1f\n", tn, sh->name, n, threads[ti], med * 1e3, flops / med * 1e-9,
                           (double)bytes / med * 1e-9);
                    fflush(stdout);
                    est[ti][ni] += med * (sh->per_layer ? 24.0 * sh->per_layer : 1.0);
                }
                qe_pool_free(pool);
            }
            qe_mat_free(&m);
            free(w);
        }
        for (int ti = 0; ti < n_threads; ti++)
            for (int ni = 0; ni < n_ns; ni++)
                if (est[ti][ni] > 0)
                    printf("%-7s model estimate (matmuls only), %d thread(s), n=%d: %.1f tok/s\n", tn, threads[ti], ns[ni],
                           ns[ni] / est[ti][ni]);
    }
    qe_matmul_ws_free(ws);
    free(x); free(y);
    return 0;
}
