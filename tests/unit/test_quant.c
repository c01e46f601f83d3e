/* test_quant.c — the reference quant formats: sizes, f32 -> type -> f32 error bounds per type, exact round
 * trips of representable values, hand-built blocks decoded to known values, and no writes past a row.
 * (That the decoders agree with llama.cpp's is checked end to end in tests/js/mkmodel.test.mjs.) */
#include <stdint.h>

#include "base.h"
#include "quant.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static float gauss(void) {
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static const int all_types[] = {QE_TYPE_F32, QE_TYPE_F16, QE_TYPE_BF16, QE_TYPE_Q4_0, QE_TYPE_Q4_1, QE_TYPE_Q5_0,
                                QE_TYPE_Q5_1, QE_TYPE_Q8_0, QE_TYPE_Q8_1, QE_TYPE_IQ4_NL, QE_TYPE_Q2_K, QE_TYPE_Q3_K,
                                QE_TYPE_Q4_K, QE_TYPE_Q5_K, QE_TYPE_Q6_K, QE_TYPE_Q8_K};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/* Relative RMSE bound per type on Gaussian data (rmse / rms of the data). A uniform quantiser with step h
 * has rms error h / sqrt(12); with the block's largest |x| about 2.1 sigma (32 values) or 2.8 sigma (256):
 *   8-bit symmetric: h = 2.1/127 -> 0.005;  5-bit: h = 2.1/16 -> 0.038;  4-bit: h = 2.1/8 -> 0.076;
 *   k-quants fit scales per 16/32 values (smaller spans) but quantise those scales to 4..8 bits.
 * The bounds are the measured values (printed by the test) with ~40 % headroom, below the next-coarser
 * format's error, so a broken encoder or decoder cannot pass. */
static double max_rel_rmse(int type) {
    switch (type) {
    case QE_TYPE_F32: return 0;
    case QE_TYPE_F16: return 4e-4;     /* 11-bit mantissa: 2^-11 / sqrt(12) relative ~ 1.4e-4 */
    case QE_TYPE_BF16: return 3e-3;    /* 8-bit mantissa: 2^-8 / sqrt(12) ~ 1.1e-3 */
    case QE_TYPE_Q8_0: case QE_TYPE_Q8_1: return 0.008;
    case QE_TYPE_Q8_K: return 0.009;
    case QE_TYPE_Q6_K: return 0.03;
    case QE_TYPE_Q5_0: case QE_TYPE_Q5_1: return 0.06;
    case QE_TYPE_Q5_K: return 0.05;
    case QE_TYPE_Q4_0: case QE_TYPE_Q4_1: return 0.12;
    case QE_TYPE_IQ4_NL: return 0.11;
    case QE_TYPE_Q4_K: return 0.10;
    case QE_TYPE_Q3_K: return 0.22;
    case QE_TYPE_Q2_K: return 0.40;
    }
    return -1;
}

TEST(traits_and_sizes) {
    struct { int type; const char *name; int bs; size_t ts; } want[] = {
        {QE_TYPE_F32, "f32", 1, 4}, {QE_TYPE_F16, "f16", 1, 2}, {QE_TYPE_BF16, "bf16", 1, 2},
        {QE_TYPE_Q4_0, "q4_0", 32, 18}, {QE_TYPE_Q4_1, "q4_1", 32, 20}, {QE_TYPE_Q5_0, "q5_0", 32, 22},
        {QE_TYPE_Q5_1, "q5_1", 32, 24}, {QE_TYPE_Q8_0, "q8_0", 32, 34}, {QE_TYPE_Q8_1, "q8_1", 32, 36},
        {QE_TYPE_IQ4_NL, "iq4_nl", 32, 18}, {QE_TYPE_Q2_K, "q2_K", 256, 84}, {QE_TYPE_Q3_K, "q3_K", 256, 110},
        {QE_TYPE_Q4_K, "q4_K", 256, 144}, {QE_TYPE_Q5_K, "q5_K", 256, 176}, {QE_TYPE_Q6_K, "q6_K", 256, 210},
        {QE_TYPE_Q8_K, "q8_K", 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const qe_type_traits *t = qe_type_traits_get(want[i].type);
        CHECK(t != NULL);
        if (!t) continue;
        CHECK_STR(t->name, want[i].name);
        CHECK_EQ_INT(t->block_size, want[i].bs);
        CHECK_EQ_INT(t->type_size, want[i].ts);
        CHECK(t->to_float && t->from_float);
        CHECK_EQ_INT(qe_type_from_name(want[i].name), want[i].type);
        CHECK_EQ_INT(qe_row_size(want[i].type, 4096), 4096 / want[i].bs * want[i].ts);
        if (want[i].bs > 1) CHECK_EQ_INT(qe_row_size(want[i].type, want[i].bs + 1), 0);
    }
    /* 896 (Qwen2.5-0.5B's hidden size) is a multiple of 32 but not of 256 */
    CHECK_EQ_INT(qe_row_size(QE_TYPE_Q8_0, 896), 28 * 34);
    CHECK_EQ_INT(qe_row_size(QE_TYPE_Q4_K, 896), 0);
    CHECK_EQ_INT(qe_type_from_name("Q4_K"), QE_TYPE_Q4_K);
    CHECK_EQ_INT(qe_type_from_name("q4_k_m"), -1);
    CHECK(qe_type_traits_get(4) == NULL); /* removed q4_2 */
    CHECK(qe_type_traits_get(-1) == NULL);
    CHECK(qe_type_traits_get(QE_TYPE_COUNT) == NULL);
    CHECK(qe_type_traits_get(1000) == NULL);
    CHECK_STR(qe_type_name(77), "?");
}

/* Encodes and decodes n values; returns relative rmse. Checks that nothing is written past the row. */
static double roundtrip(int type, const float *x, float *y, int64_t n) {
    const qe_type_traits *t = qe_type_traits_get(type);
    size_t bytes = qe_row_size(type, n);
    uint8_t *q = malloc(bytes + 64);
    memset(q + bytes, 0xa5, 64);
    t->from_float(x, q, n);
    for (int i = 0; i < 64; i++) CHECKF(q[bytes + i] == 0xa5, "%s wrote past the end of the row", t->name);
    y[n] = 12345.f;
    t->to_float(q, y, n);
    CHECKF(y[n] == 12345.f, "%s decoded past the end", t->name);
    free(q);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        CHECKF(isfinite(y[i]), "%s: non-finite output at %lld", t->name, (long long)i);
        se += (double)(x[i] - y[i]) * (x[i] - y[i]);
        sx += (double)x[i] * x[i];
    }
    return sx > 0 ? sqrt(se / sx) : sqrt(se);
}

TEST(error_bounds) {
    enum { N = 256 * 64 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * (N + 1));
    for (int i = 0; i < N; i++) x[i] = gauss() * 0.02f; /* weight-like scale */
    for (int k = 0; k < N_TYPES; k++) {
        int type = all_types[k];
        double e = roundtrip(type, x, y, N);
        printf("  %-7s relative rmse %.5f (bound %.5f)\n", qe_type_name(type), e, max_rel_rmse(type));
        CHECKF(e <= max_rel_rmse(type), "%s: relative rmse %g above %g", qe_type_name(type), e, max_rel_rmse(type));
    }
    free(x);
    free(y);
}

/* Same bounds hold for skewed data (all positive, with an outlier per block) where min/offset formats and
 * sign handling matter. */
TEST(error_bounds_skewed) {
    enum { N = 256 * 16 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * (N + 1));
    for (int i = 0; i < N; i++) x[i] = 1.0f + (float)urand() + (i % 97 == 0 ? 3.0f : 0.0f);
    for (int k = 0; k < N_TYPES; k++) {
        int type = all_types[k];
        double e = roundtrip(type, x, y, N);
        CHECKF(e <= max_rel_rmse(type), "%s: skewed data relative rmse %g above %g", qe_type_name(type), e, max_rel_rmse(type));
    }
    for (int i = 0; i < N; i++) x[i] = -x[i];
    for (int k = 0; k < N_TYPES; k++) {
        int type = all_types[k];
        double e = roundtrip(type, x, y, N);
        CHECKF(e <= max_rel_rmse(type), "%s: negative data relative rmse %g above %g", qe_type_name(type), e, max_rel_rmse(type));
    }
    free(x);
    free(y);
}

TEST(zeros_and_tiny_rows) {
    float x[256] = {0}, y[257];
    for (int k = 0; k < N_TYPES; k++) {
        int type = all_types[k];
        int bs = qe_type_traits_get(type)->block_size;
        int n = bs == 256 ? 256 : 32; /* a single block */
        roundtrip(type, x, y, n);
        for (int i = 0; i < n; i++) CHECKF(y[i] == 0, "%s: zero block decodes to %g at %d", qe_type_name(type), y[i], i);
    }
    /* one non-zero value in a block of zeros keeps its sign and rough size */
    for (int k = 0; k < N_TYPES; k++) {
        int type = all_types[k];
        memset(x, 0, sizeof x);
        x[5] = -0.75f;
        roundtrip(type, x, y, qe_type_traits_get(type)->block_size == 256 ? 256 : 32);
        CHECKF(fabsf(y[5] + 0.75f) < 0.08f, "%s: lone value -0.75 decodes to %g", qe_type_name(type), y[5]);
    }
}

/* Values the format represents exactly come back unchanged (the encoders find the exact scale). */
TEST(exact_representable) {
    float x[256], y[257];
    /* f16/bf16: values with few mantissa bits */
    for (int i = 0; i < 256; i++) x[i] = (float)((i % 17) - 8) * 0.125f * (i % 3 ? 1 : 1024);
    roundtrip(QE_TYPE_F16, x, y, 256);
    for (int i = 0; i < 256; i++) CHECK(y[i] == x[i]);
    roundtrip(QE_TYPE_BF16, x, y, 256);
    for (int i = 0; i < 256; i++) CHECK(y[i] == x[i]);
    roundtrip(QE_TYPE_F32, x, y, 256);
    for (int i = 0; i < 256; i++) CHECK(y[i] == x[i]);
    /* q8_0 / q8_1: q * d with |q| <= 127 and 127 present; d a power of two (exact in fp16) */
    for (int i = 0; i < 32; i++) x[i] = (float)((i * 37) % 255 - 127) * 0.0078125f;
    x[3] = 127 * 0.0078125f;
    int types8[] = {QE_TYPE_Q8_0, QE_TYPE_Q8_1};
    for (int k = 0; k < 2; k++) {
        roundtrip(types8[k], x, y, 32);
        for (int i = 0; i < 32; i++) CHECKF(y[i] == x[i], "%s: %g -> %g", qe_type_name(types8[k]), x[i], y[i]);
    }
    /* q4_0: (q - 8) * d, with -8 * d the largest magnitude; q5_0: (q - 16) * d */
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 16 - 8) * 0.25f;
    roundtrip(QE_TYPE_Q4_0, x, y, 32);
    for (int i = 0; i < 32; i++) CHECKF(y[i] == x[i], "q4_0: %g -> %g", x[i], y[i]);
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) * 0.25f;
    roundtrip(QE_TYPE_Q5_0, x, y, 32);
    for (int i = 0; i < 32; i++) CHECKF(y[i] == x[i], "q5_0: %g -> %g", x[i], y[i]);
    /* q4_1 / q5_1: q * d + m over the full code range */
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 16) * 0.5f - 2.0f;
    roundtrip(QE_TYPE_Q4_1, x, y, 32);
    for (int i = 0; i < 32; i++) CHECKF(y[i] == x[i], "q4_1: %g -> %g", x[i], y[i]);
    for (int i = 0; i < 32; i++) x[i] = (float)(31 - i) * 0.5f - 4.0f;
    roundtrip(QE_TYPE_Q5_1, x, y, 32);
    for (int i = 0; i < 32; i++) CHECKF(y[i] == x[i], "q5_1: %g -> %g", x[i], y[i]);
    /* iq4_nl: d * level, with d a power of two */
    for (int i = 0; i < 32; i++) x[i] = qe_kvalues_iq4nl[(i * 7) % 16] * 0.0625f;
    roundtrip(QE_TYPE_IQ4_NL, x, y, 32);
    for (int i = 0; i < 32; i++) CHECKF(y[i] == x[i], "iq4_nl: %g -> %g", x[i], y[i]);
    /* q8_K: -127 * d present */
    for (int i = 0; i < 256; i++) x[i] = (float)((i * 91) % 255 - 127) * 0.5f;
    x[0] = -127 * 0.5f;
    roundtrip(QE_TYPE_Q8_K, x, y, 256);
    for (int i = 0; i < 256; i++) CHECKF(y[i] == x[i], "q8_K: %g -> %g", x[i], y[i]);
    /* q6_K: codes -32..31 times one common scale, each 16-value sub-block holding the extreme code -32 (so
     * all sub-block scales come out equal and positive): the encoder's best fit is exact */
    for (int i = 0; i < 256; i++) x[i] = (float)(i % 16 == 7 ? -32 : (i * 29) % 64 - 32) * 0.25f;
    roundtrip(QE_TYPE_Q6_K, x, y, 256);
    double e = 0;
    for (int i = 0; i < 256; i++) e = fmax(e, fabs(y[i] - x[i]));
    CHECKF(e < 1e-3, "q6_K: max error %g on a representable block", e);
}

/* Decoding is a fixed point: encode(decode(b)) decodes to the same values (within the scale's rounding)
 * for the k-quants, whose encoders search. */
TEST(kquant_reencode_stable) {
    enum { N = 256 * 8 };
    float x[N], y[N + 1], z[N + 1];
    int kt[] = {QE_TYPE_Q2_K, QE_TYPE_Q3_K, QE_TYPE_Q4_K, QE_TYPE_Q5_K, QE_TYPE_Q6_K, QE_TYPE_IQ4_NL};
    for (int k = 0; k < 6; k++) {
        for (int i = 0; i < N; i++) x[i] = gauss();
        double e1 = roundtrip(kt[k], x, y, N);
        double e2 = roundtrip(kt[k], y, z, N);
        CHECKF(e2 < e1 * 0.5, "%s: re-encoding decoded values loses %g (first pass %g)", qe_type_name(kt[k]), e2, e1);
    }
}

/* Hand-built blocks decode to values computed from the layout description (ggml's dequantize_row_*). */
TEST(decode_known_blocks) {
    float y[256];
    block_q4_0 b4 = {qe_fp32_to_fp16(0.5f), {0}};
    for (int j = 0; j < 16; j++) b4.qs[j] = (uint8_t)(j | (15 - j) << 4);
    qe_type_traits_get(QE_TYPE_Q4_0)->to_float(&b4, y, 32);
    CHECK(y[0] == -4.0f && y[15] == 3.5f && y[16] == 3.5f && y[31] == -4.0f);

    block_q5_0 b5 = {qe_fp32_to_fp16(1.0f), {0}, {0}};
    uint32_t qh = 1u << 3 | 1u << 20; /* fifth bit of weights 3 and 20 */
    memcpy(b5.qh, &qh, 4);
    b5.qs[3] = 0x0f;       /* weight 3 = 15 | 16 = 31 -> 15 */
    b5.qs[4] = 0xf0;       /* weight 20 = 15 | 16 = 31 -> 15; weight 4 = 0 -> -16 */
    qe_type_traits_get(QE_TYPE_Q5_0)->to_float(&b5, y, 32);
    CHECK(y[3] == 15 && y[20] == 15 && y[4] == -16 && y[19] == -16);

    block_q6_K b6;
    memset(&b6, 0, sizeof b6);
    b6.d = qe_fp32_to_fp16(1.0f);
    for (int j = 0; j < 16; j++) b6.scales[j] = (int8_t)(j + 1);
    b6.ql[0] = 0x21;   /* weight 0 low nibble 1, weight 64 low nibble 2 */
    b6.qh[0] = 0x0c;   /* weight 32 top bits 3 -> code 48 */
    b6.ql[64 + 5] = 0x07; /* second half, weight 128 + 5: low nibble 7 */
    qe_type_traits_get(QE_TYPE_Q6_K)->to_float(&b6, y, 256);
    CHECK(y[0] == 1 * (1 - 32));
    CHECK(y[64] == 5 * (2 - 32));     /* sub-block 4 -> scale 5 */
    CHECK(y[32] == 3 * (48 - 32));    /* sub-block 2 -> scale 3 */
    CHECK(y[133] == 9 * (7 - 32));    /* second half, sub-block 8 -> scale 9 */

    block_q4_K bk;
    memset(&bk, 0, sizeof bk);
    bk.d = qe_fp32_to_fp16(1.0f);
    bk.dmin = qe_fp32_to_fp16(0.5f);
    bk.scales[0] = 2;             /* scale 0 = 2 */
    bk.scales[4] = 4;             /* min 0 = 4 */
    bk.scales[8] = 0x31;          /* scale 4 low bits 1, min 4 low bits 3 */
    bk.scales[0] |= 1 << 6;       /* scale 4 high bits 1 -> 17 */
    bk.qs[0] = 0x53;              /* weight 0 = 3, weight 32 = 5 */
    bk.qs[64] = 0x02;             /* weight 128 (sub-block 4) = 2 */
    qe_type_traits_get(QE_TYPE_Q4_K)->to_float(&bk, y, 256);
    CHECK(y[0] == 2 * 3 - 0.5f * 4);
    CHECK(y[32] == 0);            /* sub-block 1: scale 0, min 0 */
    CHECK(y[128] == 17 * 2 - 0.5f * 3);
}

int main(void) {
    RUN(traits_and_sizes);
    RUN(error_bounds);
    RUN(error_bounds_skewed);
    RUN(zeros_and_tiny_rows);
    RUN(exact_representable);
    RUN(kquant_reencode_stable);
    RUN(decode_known_blocks);
    return TEST_DONE();
}
