/* ops_neon.c — NEON versions of the per-token ops (ops.h) for aarch64: rmsnorm, swiglu, f32->f16 rows and
 * attention. The attention is the decode scheme of ops_avx512.c / ops_avx2.c with 4-lane vectors: a KV group's
 * scores into scratch with lane maxima, softmax in place, the value rows once with the heads' accumulators in
 * registers. A prefill runs it once per query token (causal: token i sees q_pos0 + i + 1 keys); the keys and
 * values of one head at a few thousand positions stay in L2 across the tokens of a batch. Every function is
 * held to ops_ref.c by tests/unit/test_ops.c (run under qemu-aarch64 on x86-64, mk/arm64.mk). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/ops.h"

#define INLINE static inline __attribute__((always_inline))

/* exp(x) as exp256 in ops_avx2.c (Cephes expf: x = n ln2 + r, degree-6 polynomial, 2^n in the exponent field):
 * above 88.72 gives +inf, below -87.33 gives 0. */
INLINE float32x4_t exp128(float32x4_t x) {
    uint32x4_t big = vcgtq_f32(x, vdupq_n_f32(88.72283f)), tiny = vcltq_f32(x, vdupq_n_f32(-87.33654f));
    float32x4_t xc = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.33654f)), vdupq_n_f32(88.3762626647949f));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(xc, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500E-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507E-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073E-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894E-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459E-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201E-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    /* n in [-126, 127]: 2^n is a normal float */
    int32x4_t pow2n = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t e = vmulq_f32(p, vreinterpretq_f32_s32(pow2n));
    e = vbslq_f32(big, vdupq_n_f32(INFINITY), e);
    return vbslq_f32(tiny, vdupq_n_f32(0), e);
}

void qe_neon_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i), sq = vmulq_f32(v, v);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(sq)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(sq));
    }
    double sum = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

void qe_neon_swiglu(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t g = vld1q_f32(gate + i), u = vld1q_f32(up + i);
        float32x4_t e = exp128(vnegq_f32(g));
        vst1q_f32(out + i, vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e)), u));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void qe_neon_f32_to_f16_row(const float *x, uint16_t *out, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) out[i] = qe_fp32_to_fp16(x[i]);
}

/* --- attention ---------------------------------------------------------------------------------------------- */

INLINE float32x4_t fp16_round(float32x4_t v) { return vcvt_f32_f16(vcvt_f16_f32(v)); }
INLINE float32x4_t load_h4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

/* Scores of GN heads for 8 keys (one half of a 16-key cache block: row + d * 16 + half * 8), times scale, keys
 * past nv -inf; stored to scr[h * srow] and folded into the per-lane maxima. 2 GN accumulators, GN query
 * vectors of 4 dimensions (used by lane), 2 converted key vectors: <= 26 of the 32 registers. */
INLINE void dec_scores8(const int GN, const int HD, const float *qr, const uint16_t *kb, float scale, int nv,
                        float *scr, int64_t srow, float32x4_t (*mx)[2]) {
    float32x4_t acc[8][2];
    _Pragma("GCC unroll 8") for (int h = 0; h < GN; h++) acc[h][0] = acc[h][1] = vdupq_n_f32(0);
    for (int d = 0; d < HD; d += 4) {
        float32x4_t qv[8];
        _Pragma("GCC unroll 8") for (int h = 0; h < GN; h++) qv[h] = vld1q_f32(qr + h * HD + d);
#define KEYS_OF_DIM(l)                                                                                             \
        do {                                                                                                       \
            float32x4_t k0 = load_h4(kb + (d + (l)) * QE_KV_BLOCK), k1 = load_h4(kb + (d + (l)) * QE_KV_BLOCK + 4); \
            _Pragma("GCC unroll 8") for (int h = 0; h < GN; h++) {                                                 \
                acc[h][0] = vfmaq_laneq_f32(acc[h][0], k0, qv[h], l);                                              \
                acc[h][1] = vfmaq_laneq_f32(acc[h][1], k1, qv[h], l);                                              \
            }                                                                                                      \
        } while (0)
        KEYS_OF_DIM(0);
        KEYS_OF_DIM(1);
        KEYS_OF_DIM(2);
        KEYS_OF_DIM(3);
#undef KEYS_OF_DIM
    }
    const int32x4_t lane = {0, 1, 2, 3};
    const uint32x4_t keep0 = vcltq_s32(lane, vdupq_n_s32(nv)), keep1 = vcltq_s32(lane, vdupq_n_s32(nv - 4));
    const float32x4_t ninf = vdupq_n_f32(-INFINITY);
    _Pragma("GCC unroll 8") for (int h = 0; h < GN; h++) {
        float32x4_t s0 = vbslq_f32(keep0, vmulq_n_f32(acc[h][0], scale), ninf);
        float32x4_t s1 = vbslq_f32(keep1, vmulq_n_f32(acc[h][1], scale), ninf);
        vst1q_f32(scr + h * srow, s0);
        vst1q_f32(scr + h * srow + 4, s1);
        mx[h][0] = vmaxq_f32(mx[h][0], s0);
        mx[h][1] = vmaxq_f32(mx[h][1], s1);
    }
}

/* out[h][c0 .. c0 + 16) += sum_j p[h][j] v_j[c0 .. c0 + 16) over the nv keys of one block, for H <= 6 heads:
 * 4 H accumulators (loaded from and stored to out, so a block's values stay in L1 across the head and column
 * chunks and the cache is still read once). */
INLINE void dec_pv(const int H, const int HD, const float (*pj)[64], int nv, const uint16_t *vb, int c0, float *const *oh) {
    float32x4_t acc[6][4];
    _Pragma("GCC unroll 6") for (int h = 0; h < H; h++)
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) acc[h][c] = vld1q_f32(oh[h] + c0 + 4 * c);
    for (int j = 0; j < nv; j++) {
        float32x4_t v[4];
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) v[c] = load_h4(vb + j * HD + c0 + 4 * c);
        _Pragma("GCC unroll 6") for (int h = 0; h < H; h++) {
            float p = pj[h][j];
            _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) acc[h][c] = vfmaq_n_f32(acc[h][c], v[c], p);
        }
    }
    _Pragma("GCC unroll 6") for (int h = 0; h < H; h++)
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) vst1q_f32(oh[h] + c0 + 4 * c, acc[h][c]);
}

/* One query token, gn <= 8 heads, n >= 1 visible keys, head_dim HD: scores into scratch with lane maxima; softmax
 * in place (each 8 keys summed in f32, those sums in double, as ggml's soft_max); values in blocks of 64 keys,
 * p = fp16(e / sum). */
INLINE void dec_group(const int HD, const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n,
                      float *const *oh, float *scratch) {
    float qr[8 * HD] __attribute__((aligned(16))); /* q rounded through fp16, as ggml converts it to K's type */
    for (int i = 0; i < gn * HD; i += 4) vst1q_f32(qr + i, fp16_round(vld1q_f32(qh + i)));
    const float scale = 1.0f / sqrtf((float)HD);
    const int64_t srow = (int64_t)(n + QE_KV_BLOCK - 1) / QE_KV_BLOCK * QE_KV_BLOCK;
    float32x4_t mx[8][2];
    for (int h = 0; h < gn; h++) mx[h][0] = mx[h][1] = vdupq_n_f32(-INFINITY);
    for (int j0 = 0; j0 < n; j0 += 8) {
        const uint16_t *kb = kh + qe_kv_key_index(0, HD, 0, j0, 0);
#define SCORES(G) dec_scores8(G, HD, qr, kb, scale, n - j0, scratch + j0, srow, mx)
        QE_DISPATCH(gn, 8, SCORES)
#undef SCORES
    }
    float inv[8];
    for (int h = 0; h < gn; h++) {
        float *sh = scratch + h * srow;
        const float32x4_t m = vdupq_n_f32(vmaxvq_f32(vmaxq_f32(mx[h][0], mx[h][1]))), ninf = vdupq_n_f32(-INFINITY);
        double sum = 0;
        for (int j0 = 0; j0 < n; j0 += 8) {
            float32x4_t s0 = vld1q_f32(sh + j0), s1 = vld1q_f32(sh + j0 + 4);
            /* keys masked to -inf give exactly 0 (exp(-inf - m) would be NaN if m were -inf too) */
            float32x4_t e0 = vbslq_f32(vceqq_f32(s0, ninf), vdupq_n_f32(0), exp128(vsubq_f32(s0, m)));
            float32x4_t e1 = vbslq_f32(vceqq_f32(s1, ninf), vdupq_n_f32(0), exp128(vsubq_f32(s1, m)));
            vst1q_f32(sh + j0, e0);
            vst1q_f32(sh + j0 + 4, e1);
            sum += (double)vaddvq_f32(vaddq_f32(e0, e1));
        }
        inv[h] = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    }
    for (int h = 0; h < gn; h++) memset(oh[h], 0, sizeof(float) * HD);
    /* at most 6 heads per value pass; a group of 7 or 8 runs as two near-equal halves */
    const int hn = gn <= 6 ? gn : (gn + 1) / 2;
    float pj[8][64] __attribute__((aligned(16)));
    for (int j0 = 0; j0 < n; j0 += 64) {
        const int nv = n - j0 < 64 ? n - j0 : 64;
        for (int h = 0; h < gn; h++)
            for (int j = 0; j < nv; j += 4)
                vst1q_f32(pj[h] + j, fp16_round(vmulq_n_f32(vld1q_f32(scratch + h * srow + j0 + j), inv[h])));
        const uint16_t *vb = vh + (int64_t)j0 * HD;
        for (int h0 = 0; h0 < gn; h0 += hn) {
            const int hc = gn - h0 < hn ? gn - h0 : hn;
            for (int c0 = 0; c0 < HD; c0 += 16) {
#define PV(H) dec_pv(H, HD, (const float (*)[64])pj + h0, nv, vb, c0, oh + h0)
                QE_DISPATCH(hc, 6, PV)
#undef PV
            }
        }
    }
}

static void dec_group64(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n, float *const *oh, float *scratch) {
    dec_group(64, qh, gn, kh, vh, n, oh, scratch);
}
static void dec_group128(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n, float *const *oh, float *scratch) {
    dec_group(128, qh, gn, kh, vh, n, oh, scratch);
}

void qe_neon_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                       int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                       float *scratch) {
    if ((head_dim != 64 && head_dim != 128) || n_head % n_head_kv) {
        qe_attention_ref(q, n_q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
        return;
    }
    const int64_t ld = (int64_t)n_head * head_dim;
    for (int i = 0; i < n_q; i++)
        qe_attention_decode(q + i * ld, q_pos0 + i, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi,
                            out + i * ld, scratch, head_dim == 64 ? dec_group64 : dec_group128);
}
