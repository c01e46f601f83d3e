/* matmul.h — weight matrices prepared for the kernels, and the matrix multiplications of the forward pass.
 *
 * A qe_mat is a weight matrix W of `rows` x `cols` (each row `cols` weights, contiguous, as stored in GGUF:
 * ne[0] = cols, ne[1] = rows) in any supported qe_type. qe_mat_init may repack it at load into a layout the
 * fastest kernel for this CPU wants (owned by the qe_mat); the original bytes stay borrowed from the mmap.
 *
 * qe_matmul computes, for every token t < n and row r < rows:
 *     Y[t*ldy + r] = (flags & QE_MM_ACCUMULATE ? Y[t*ldy + r] : 0) + bias[r] (if bias) + sum_c W[r][c] * X[t*ldx + c]
 * on all threads of the pool (chunks of rows handed out to the threads). Activations are quantised internally (to int8
 * blocks for quantised weights, as llama.cpp does) into the workspace; nothing is allocated per call.
 * The same call serves decode (n = 1 or a few users), batched decode and prefill (n up to max_tokens).
 *
 * Kernel choice: once, at start-up, from cpuid (see cpu.h); QE_KERNELS=ref|avx2|avx512|neon forces one. */
#pragma once
#include <stdint.h>

#include "threadpool.h"

struct qe_kernel_set;

typedef struct qe_mat {
    int type;               /* qe_type of the stored weights */
    int64_t rows, cols;
    const void *data;       /* borrowed: original rows */
    void *packed;           /* owned: kernel layout, or NULL when the kernel reads `data` directly */
    uint64_t packed_bytes;
    const struct qe_kernel_set *packer; /* the kernel set whose layout `packed` is in; NULL when unpacked */
} qe_mat;

/* Prepares m (may repack). QE_EUNSUPPORTED with err if the type or shape is not supported.
 * When m->packed != NULL after this, nothing (matmul, qe_mat_row_f32) reads `data` again, and if `data` lies in
 * a private read-only file mapping, the pages wholly inside it are dropped from this process as packing goes
 * (the page cache keeps them), so RSS holds one copy of the weights. A tied embedding/lm_head should be one
 * qe_mat used for both, or it is repacked (and held) twice. */
int qe_mat_init(qe_mat *m, int type, int64_t rows, int64_t cols, const void *data, char *err);
void qe_mat_free(qe_mat *m);
/* Dequantises one row into out[cols] (e.g. the token embedding lookup). */
void qe_mat_row_f32(const qe_mat *m, int64_t row, float *out);

typedef struct qe_matmul_ws qe_matmul_ws;
/* Workspace for up to max_tokens activation rows of up to max_cols each. */
qe_matmul_ws *qe_matmul_ws_new(int max_tokens, int64_t max_cols);
void qe_matmul_ws_free(qe_matmul_ws *ws);

enum { QE_MM_ACCUMULATE = 1 };

void qe_matmul(qe_pool *pool, qe_matmul_ws *ws, const qe_mat *w, const float *x, int64_t ldx, int n,
               float *y, int64_t ldy, const float *bias, int flags);

/* Several matrices with the same input (Q, K, V; gate and up): the input is quantised once. */
void qe_matmul_multi(qe_pool *pool, qe_matmul_ws *ws, int n_mats, const qe_mat *const *w, const float *x,
                     int64_t ldx, int n, float *const *y, const int64_t *ldy, const float *const *bias);

/* Name of the kernel set in use ("avx512-vnni", "avx2", "ref", ...), for logs and bench output. */
const char *qe_kernels_name(void);
