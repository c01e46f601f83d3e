/* quant.h — the tensor element types of GGUF (ggml's numbering) and their block layouts.
 *
 * Each quantised type stores a row as consecutive blocks; a block holds `block_size` weights. The structs
 * below are the on-disk layouts (static sizes asserted), identical to ggml's so files interchange with
 * llama.cpp. quant.c holds the portable reference (de)quantisers; the SIMD kernels live in kernels/. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum {
    QE_TYPE_F32 = 0,
    QE_TYPE_F16 = 1,
    QE_TYPE_Q4_0 = 2,
    QE_TYPE_Q4_1 = 3,
    QE_TYPE_Q5_0 = 6,
    QE_TYPE_Q5_1 = 7,
    QE_TYPE_Q8_0 = 8,
    QE_TYPE_Q8_1 = 9,
    QE_TYPE_Q2_K = 10,
    QE_TYPE_Q3_K = 11,
    QE_TYPE_Q4_K = 12,
    QE_TYPE_Q5_K = 13,
    QE_TYPE_Q6_K = 14,
    QE_TYPE_Q8_K = 15,
    QE_TYPE_IQ4_NL = 20,
    QE_TYPE_BF16 = 30,
    QE_TYPE_COUNT = 40, /* bound for tables indexed by type */
} qe_type;

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t qe_half; /* IEEE fp16 bits */

typedef struct { qe_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;               /* x = (q - 8) * d */
typedef struct { qe_half d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;           /* x = q * d + m */
typedef struct { qe_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0; /* x = (q - 16) * d */
typedef struct { qe_half d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { qe_half d; int8_t qs[QK8_0]; } block_q8_0;                   /* x = q * d */
typedef struct { qe_half d, s; int8_t qs[QK8_1]; } block_q8_1;                /* s = d * sum(q) */
typedef struct { qe_half d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;           /* x = d * kvalues_iq4nl[q] */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; qe_half d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; qe_half d; } block_q3_K;
typedef struct { qe_half d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { qe_half d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; qe_half d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");

extern const int8_t qe_kvalues_iq4nl[16]; /* IQ4_NL's non-linear codebook (ggml's kvalues_iq4nl) */

/* How a 32-weight block type lays out its weights, for the code that reads them all the same way (the
 * reference dot products and dequantiser, the kernels' packers): an fp16 scale d at byte 0; for the types with
 * a min, an fp16 m at byte 2; for 5-bit codes, a 32-bit mask of fifth bits (bit j: weight j) at qh_off; the
 * codes at qs_off — 32 signed bytes (8 bits) or 16 bytes of nibble pairs (byte j: weight j in the low nibble,
 * weight j + 16 in the high one). Weight j = d * value(code j) [+ m], value(c) = codebook ? codebook[c] :
 * c - zero (8-bit codes are signed and used as they are). */
typedef struct {
    int bits;               /* 4, 5 or 8 */
    int has_min;            /* q4_1, q5_1 */
    int zero;               /* q4_0: 8, q5_0: 16; else 0 */
    const int8_t *codebook; /* iq4_nl: qe_kvalues_iq4nl; else NULL */
    int qh_off, qs_off;     /* byte offsets in the block */
} qe_block32;

/* A k-quant super-block (256 weights) as unsigned codes q[256] (q2_K 0..3, q3_K 0..7, ..., q6_K 0..63), integer
 * scales sc[16] and mins mn[16] per 16 weights (zero where the type has none) and the two fp16 super-scales
 * (dmin 0 where none): weight i = d * sc[i/16] * (q[i] - k_zero) - dmin * mn[i/16]. */
typedef void (*qe_unpack_k_fn)(const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin);

/* Everything qwen-edge knows about a tensor type: the one table (quant.c) the loader, the encoders, the
 * reference kernels and the packers read. A weight type the matmul supports has b32 (32-weight blocks), unpack_k
 * (k-quants) or block_size 1 (f32/f16/bf16); q8_1 and q8_K are activation types only. */
typedef struct {
    const char *name;   /* "q4_0", as llama.cpp prints it */
    int block_size;     /* weights per block (1 for f32/f16/bf16) */
    size_t type_size;   /* bytes per block */
    /* Reference conversions of n weights (n a multiple of block_size). NULL where not supported. */
    void (*to_float)(const void *src, float *dst, int64_t n);
    void (*from_float)(const float *src, void *dst, int64_t n);
    const qe_block32 *b32;   /* 32-weight block weight types, else NULL */
    qe_unpack_k_fn unpack_k; /* k-quant weight types, else NULL */
    int k_zero;              /* k-quants: the offset of the unsigned codes (q3_K 4, q6_K 32, else 0) */
} qe_type_traits;

/* Traits of a type, or NULL for a type id qwen-edge does not know. */
const qe_type_traits *qe_type_traits_get(int type);
const char *qe_type_name(int type); /* "?" for unknown */
int qe_type_from_name(const char *name); /* -1 for unknown */
/* Bytes of a row of n weights; 0 if n is not a multiple of the block size or the type is unknown. */
size_t qe_row_size(int type, int64_t n);

/* One block of a 32-weight type as values q[32] with weight j = d * q[j] (+ m where b->has_min; m = 0 else). */
void qe_block32_values(const qe_block32 *b, const void *blk, int q[32], float *d, float *m);

/* Layout helpers shared with the k-quant encoders. */
void qe_q3_K_scales(const uint8_t *scales, int8_t out[16]);   /* sixteen signed 6-bit scales */
void qe_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m); /* q4_K/q5_K scale j, min j */
