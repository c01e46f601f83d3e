/* sampler.c — penalties, temperature, top-k, top-p, min-p and a seeded RNG (see sampler.h).
 *
 * Order, as Hugging Face's generate() applies it: repetition penalty → presence/frequency penalties →
 * temperature → top-k → top-p → min-p → draw. Two paths:
 *   - top-k of at most SORT_MAX: the k candidates are selected in one pass (or by quickselect), sorted, and
 *     the draw walks them from the most likely one;
 *   - top-k off (0, or at least the vocabulary): no sort of the vocabulary. One pass finds the row's maximum
 *     and each 16-token block's. With top-p and min-p off too, that is all: the token is drawn by rejection
 *     from those per-block bounds (sample_rejection; exact, ~1 us), no exponential of the whole row. Otherwise
 *     one vectorised pass writes the exponentials and per-block sums; top-p's cut is found by a radix select
 *     on the bits of the exponentials that can be in the nucleus (histograms of probability mass, never a
 *     sort) and min-p's is min_p itself (the largest exponential is exp(0) = 1). When at most SORT_MAX tokens
 *     survive the cut they are sorted and drawn exactly as the first path does (so the same seed gives the
 *     same token as the sorted path); a larger survivor set is drawn by the same rejection sampler restricted
 *     to the survivors — the same distribution, p(i) = exp((l_i - max) / T) / sum over the survivors, only the
 *     token a given seed maps to differs. Measured on 151,936 logits on a loaded shared machine
 *     (bench/sampler.c): top-p 1 ≈ 0.06 ms (0.25 ms with a full exponential pass), top-p 0.9 ≈ 0.4-0.5 ms
 *     (0.7-0.85 ms before), against 10+ ms for a sort.
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"

typedef struct { float logit; int32_t id; } candidate;

/* Candidates at most this many are sorted (the sorted path); the unsorted path sorts its survivors only when
 * there are at most this many. */
#define SORT_MAX 256
/* The radix select reads a float's bits 12 at a time: [31..20], [19..8], then [7..0]. */
#define RADIX_BUCKETS 4096
/* The rejection sampler's blocks (see sample_rejection): small enough that a block's bound is tight (at most
 * RJ_B proposals per accepted token on average), large enough that the running sum of bounds is cheap. */
#define RJ_B 16
#define RJ_TRIES 1024

struct qe_sampler {
    int n_vocab;
    qe_sample_params p;
    uint64_t rng;
    candidate *cand;      /* n_vocab scratch */
    float *prob;          /* n_vocab: exponentials of the unsorted path */
    float *tmp;           /* n_vocab: values of one radix bucket */
    float *blk;           /* n_vocab / 64 + 1: per-block sums of prob (of the survivors after a cut) */
    float *bq;            /* n_vocab / RJ_B + 1: per-block maxima of the logits, then their exponentials */
    double *bcum;         /* n_vocab / RJ_B + 1: running sum of the rejection sampler's block bounds */
    double *mass;         /* RADIX_BUCKETS: probability mass per radix bucket */
    uint32_t *seen_stamp; /* n_vocab: stamp of the last penalty pass that touched this id */
    uint32_t *count;      /* n_vocab: occurrences in the output (valid where seen_stamp == stamp) */
    uint32_t stamp;
    int32_t *hist;        /* tokens of the sequence */
    uint8_t *hist_out;    /* 1 if generated */
    size_t n_hist, cap_hist;
};

void qe_sample_params_default(qe_sample_params *p) {
    *p = (qe_sample_params){
        .temperature = 0.7f, .top_k = 20, .top_p = 0.8f, .min_p = 0.0f, .repeat_penalty = 1.1f,
        .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .penalty_last_n = 0,
        .seed = (uint64_t)time(NULL) ^ (uint64_t)qe_now_ns(),
    };
}

void qe_sample_params_greedy(qe_sample_params *p) {
    *p = (qe_sample_params){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .repeat_penalty = 1.0f};
}

qe_sampler *qe_sampler_new(int n_vocab) {
    qe_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_vocab = n_vocab;
    s->cand = malloc(sizeof(candidate) * (size_t)n_vocab);
    s->seen_stamp = calloc((size_t)n_vocab, sizeof(uint32_t));
    s->count = calloc((size_t)n_vocab, sizeof(uint32_t));
    s->prob = malloc(sizeof(float) * ((size_t)n_vocab + 8));
    s->tmp = malloc(sizeof(float) * (size_t)n_vocab);
    s->blk = malloc(sizeof(float) * ((size_t)n_vocab / 64 + 1));
    s->mass = malloc(sizeof(double) * RADIX_BUCKETS);
    s->bq = calloc((size_t)n_vocab / RJ_B + 4, sizeof(float)); /* zeroed: exp4 reads up to 3 lanes past the end */
    s->bcum = malloc(sizeof(double) * ((size_t)n_vocab / RJ_B + 4));
    if (!s->cand || !s->seen_stamp || !s->count || !s->prob || !s->tmp || !s->blk || !s->mass || !s->bq || !s->bcum) {
        qe_sampler_free(s);
        return NULL;
    }
    qe_sample_params_greedy(&s->p);
    return s;
}

void qe_sampler_free(qe_sampler *s) {
    if (!s) return;
    free(s->cand); free(s->seen_stamp); free(s->count); free(s->hist); free(s->hist_out);
    free(s->prob); free(s->tmp); free(s->blk); free(s->mass); free(s->bq); free(s->bcum);
    free(s);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(qe_sampler *s) { return (float)((splitmix64(&s->rng) >> 40) * (1.0 / 16777216.0)); }
/* [0, 1) with 53 bits: the rejection sampler's acceptance tests, where 24 bits would bias small ratios. */
static double rng_uniform53(qe_sampler *s) { return (double)(splitmix64(&s->rng) >> 11) * (1.0 / 9007199254740992.0); }

void qe_sampler_reset(qe_sampler *s, const qe_sample_params *p) {
    s->p = *p;
    s->rng = p->seed;
    s->n_hist = 0;
}

void qe_sampler_accept(qe_sampler *s, int32_t token, bool is_output) {
    if (token < 0 || token >= s->n_vocab) return;
    if (s->n_hist == s->cap_hist) {
        size_t cap = s->cap_hist ? s->cap_hist * 2 : 1024;
        int32_t *h = realloc(s->hist, cap * sizeof *h);
        if (!h) return; /* penalties then ignore the token: degrade, never fail */
        s->hist = h;
        uint8_t *o = realloc(s->hist_out, cap);
        if (!o) return;
        s->hist_out = o;
        s->cap_hist = cap;
    }
    s->hist[s->n_hist] = token;
    s->hist_out[s->n_hist] = is_output;
    s->n_hist++;
}

int32_t qe_argmax(const float *x, int n) {
    int32_t best = 0;
    float bv = x[0];
    for (int i = 1; i < n; i++) if (x[i] > bv) { bv = x[i]; best = i; }
    return best;
}

static void apply_penalties(qe_sampler *s, float *logits) {
    const qe_sample_params *p = &s->p;
    bool rep = p->repeat_penalty > 0 && p->repeat_penalty != 1.0f;
    bool pf = p->presence_penalty != 0 || p->frequency_penalty != 0;
    if ((!rep && !pf) || s->n_hist == 0) return;
    size_t start = (p->penalty_last_n > 0 && s->n_hist > (size_t)p->penalty_last_n) ? s->n_hist - p->penalty_last_n : 0;
    if (++s->stamp == 0) { memset(s->seen_stamp, 0, sizeof(uint32_t) * (size_t)s->n_vocab); s->stamp = 1; }
    /* count output occurrences; each distinct token gets the repetition penalty once */
    for (size_t i = start; i < s->n_hist; i++) {
        int32_t t = s->hist[i];
        if (s->seen_stamp[t] != s->stamp) { s->seen_stamp[t] = s->stamp; s->count[t] = 0; }
        s->count[t] += s->hist_out[i];
    }
    if (++s->stamp == 0) s->stamp = 1; /* second stamp marks "already penalised" */
    uint32_t done = s->stamp;
    for (size_t i = start; i < s->n_hist; i++) {
        int32_t t = s->hist[i];
        if (s->seen_stamp[t] == done) continue;
        uint32_t c = s->count[t];
        s->seen_stamp[t] = done;
        float l = logits[t];
        if (rep) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        if (pf && c > 0) l -= p->presence_penalty + p->frequency_penalty * (float)c;
        logits[t] = l;
    }
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const candidate *)a)->logit, y = ((const candidate *)b)->logit;
    return (x < y) - (x > y);
}

/* Moves the k largest candidates to the front (unordered), average O(n). */
static void select_top(candidate *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = c[lo + (hi - lo) / 2].logit;
        int i = lo, j = hi;
        while (i <= j) {
            while (c[i].logit > pivot) i++;
            while (c[j].logit < pivot) j--;
            if (i <= j) { candidate t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Max of 64 floats as 8 independent running maxima: one chain of compares waits ~4 cycles per element (it was
 * 3/4 of a sampling step), eight run side by side and the compiler may use vectors for them. */
static float block_max64(const float *x) {
    float m[8];
    memcpy(m, x, sizeof m);
    for (int i = 8; i < 64; i += 8)
        for (int l = 0; l < 8; l++) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
    for (int l = 1; l < 8; l++) m[0] = m[l] > m[0] ? m[l] : m[0];
    return m[0];
}

/* Top-k by one pass with a small sorted buffer: faster than quickselect for k <= 64. Blocks of 64 logits whose
 * maximum cannot enter the buffer are skipped after one max reduction (most of them, once the buffer is full). */
static int top_k_small(const float *logits, int n, int k, candidate *out) {
    int m = 0;
    for (int b = 0; b < n; b += 64) {
        int end = b + 64 < n ? b + 64 : n;
        if (m == k && end - b == 64 && block_max64(logits + b) <= out[m - 1].logit) continue;
        for (int i = b; i < end; i++) {
            float v = logits[i];
            if (m == k && v <= out[m - 1].logit) continue;
            int j = m < k ? m++ : k - 1;
            while (j > 0 && out[j - 1].logit < v) { out[j] = out[j - 1]; j--; }
            out[j] = (candidate){v, i};
        }
    }
    return m;
}

/* Softmax with temperature over m candidates sorted by logit (c[0] the largest), then top-p (smallest prefix
 * whose mass reaches top_p, at least one token) and min-p (tokens below min_p times the most likely one) when
 * cut is set, then the draw: one uniform number walked down the cumulative mass. */
static int32_t draw_sorted(qe_sampler *s, candidate *c, int m, float mx, bool cut) {
    const qe_sample_params *p = &s->p;
    float inv_t = 1.0f / p->temperature;
    double sum = 0;
    for (int i = 0; i < m; i++) { c[i].logit = expf((c[i].logit - mx) * inv_t); sum += c[i].logit; }
    if (cut && p->top_p < 1.0f) {
        double cum = 0, target = p->top_p * sum;
        int keep = m;
        for (int i = 0; i < m; i++) { cum += c[i].logit; if (cum >= target) { keep = i + 1; break; } }
        m = keep;
        sum = 0;
        for (int i = 0; i < m; i++) sum += c[i].logit;
    }
    if (cut && p->min_p > 0) {
        float floor_p = p->min_p * c[0].logit;
        int keep = 1;
        while (keep < m && c[keep].logit >= floor_p) keep++;
        m = keep;
        sum = 0;
        for (int i = 0; i < m; i++) sum += c[i].logit;
    }
    double r = rng_uniform(s) * sum, acc = 0;
    for (int i = 0; i < m; i++) { acc += c[i].logit; if (r < acc) return c[i].id; }
    return c[m - 1].id;
}

/* ---- the unsorted path (top-k off) ---------------------------------------------------------------- */

/* exp(x) on 4 lanes with GCC's portable vector types (SSE2 on x86-64, NEON on arm64; no intrinsics, so no
 * per-ISA file): x = n ln2 + r, exp(r) by Cephes' degree-6 polynomial, 2^n built in the exponent field — the
 * attention kernels' scheme (kernels/ops_avx2.c), within 2 ulp of expf. glibc's
 * scalar expf costs ≈ 0.4 ms for 151,936 logits, this ≈ 0.05 ms. Inputs below -87.3 (and -inf, NaN) give 0
 * where expf gives a subnormal: such a token weighs less than 2^-53 of the most likely one (whose exponential
 * is 1), which no double sum of the sorted path could see either. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));
static inline v4f exp4(v4f x) {
    v4i keep = x >= -87.33654f;
    v4f xc = (v4f)((v4i)x & keep);
    /* n = round(x log2 e) by adding 1.5 * 2^23: the sum's last mantissa bits are n, and subtracting it back
     * gives n as a float (no conversions; rounding to nearest even, where Cephes floors z + 0.5 — ties only
     * move r to the other end of [-ln2/2, ln2/2], where the polynomial is as accurate) */
    v4f z = xc * 1.44269504088896341f + 12582912.0f;
    v4f nf = z - 12582912.0f;
    v4f r = xc - nf * 0.693359375f + nf * 2.12194440e-4f;
    v4f y = r * 1.9875691500e-4f + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    v4u two_n = ((v4u)z << 23) + (127u << 23); /* 2^n: n's low bits into the exponent field (mod 2^9) */
    return (v4f)((v4i)(y * (v4f)two_n) & keep);
}

/* prob[i] = exp((l[i] - mx) * inv_t) (the argument rounded as draw_sorted rounds it), blk[b] = the sum of
 * block b's 64 values; returns the total. */
static double exp_row(const float *l, int n, float mx, float inv_t, float *prob, float *blk) {
    double total = 0;
    for (int b = 0; b * 64 < n; b++) {
        int i = b * 64, end = i + 64 < n ? i + 64 : n;
        v4f acc = {0, 0, 0, 0}, x;
        for (; i + 4 <= end; i += 4) {
            memcpy(&x, l + i, sizeof x);
            v4f e = exp4((x - mx) * inv_t);
            memcpy(prob + i, &e, sizeof e);
            acc += e;
        }
        if (i < end) { /* the vocabulary's tail: pad with -inf, whose exponential is 0 */
            float t[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
            memcpy(t, l + i, sizeof(float) * (size_t)(end - i));
            memcpy(&x, t, sizeof x);
            v4f e = exp4((x - mx) * inv_t);
            memcpy(prob + i, &e, sizeof(float) * (size_t)(end - i));
            acc += e;
        }
        blk[b] = acc[0] + acc[1] + acc[2] + acc[3];
        total += blk[b];
    }
    return total;
}

/* b > a ? b : a on 4 lanes (a NaN in b is ignored, as block_max64 ignores it). */
static inline v4f vmax4(v4f a, v4f b) {
    v4i gt = b > a;
    return (v4f)(((v4i)b & gt) | ((v4i)a & ~gt));
}

/* The row's maximum, and bq[b] = the maximum of block b's RJ_B logits (-inf for a block of -inf or NaN). */
static float row_block_max(const float *x, int n, float *bq) {
    const v4f ninf = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    v4f all = ninf;
    int b = 0, i = 0;
    for (; i + RJ_B <= n; i += RJ_B, b++) {
        v4f m = ninf, v;
        for (int j = 0; j < RJ_B; j += 4) { memcpy(&v, x + i + j, sizeof v); m = vmax4(m, v); }
        all = vmax4(all, m);
        float bm = m[0];
        for (int l = 1; l < 4; l++) bm = m[l] > bm ? m[l] : bm;
        bq[b] = bm;
    }
    float mx = all[0];
    for (int l = 1; l < 4; l++) mx = all[l] > mx ? all[l] : mx;
    if (i < n) {
        float bm = -INFINITY;
        for (; i < n; i++) bm = x[i] > bm ? x[i] : bm;
        bq[b] = bm;
        mx = bm > mx ? bm : mx;
    }
    return mx;
}

/* top-k off: an exact draw from p(i) = exp((l_i - mx) / T) / sum over the survivors (p_i >= cut; cut 0: every
 * token), without the sum. bq: the block maxima of row_block_max (overwritten with the bounds). Rejection
 * sampling with a piecewise-constant envelope: block b's bound q_b = exp((max of block b - mx) / T), inflated by
 * 2^-16 so that it stays above every exponential of the block whatever the rounding of exp4 against expf (both
 * are within an ulp of exp); 0 where it is below the cut (no survivor there). Propose block b with probability
 * len_b q_b / Q (Q = sum of len_b q_b, a running sum searched by bisection), then i uniformly in it; accept
 * with probability p_i / q_b if i survives, else reject; p_i = prob[i] when given (the exponentials the cut was
 * found on, so membership and weight are those of the old walk), else expf((l_i - mx) / T). A proposal is
 * then i AND accepted with probability (q_b / Q) (p_i / q_b) = p_i / Q for a survivor, 0 for the others:
 * proportional to p_i over the survivors, so the accepted token follows the distribution exactly and no trial
 * depends on an earlier one (53-bit uniforms: the acceptance test's own rounding is below 2^-53). The acceptance
 * rate is (survivors' mass) / Q >= 1 / RJ_B / (1 + 2^-16) (each block kept holds a survivor as heavy as its
 * bound over 1 + 2^-16: its maximum), so about RJ_B trials at worst, ~1 us: the cost is the max pass. After RJ_TRIES
 * rejections (probability < (1 - 1/RJ_B)^RJ_TRIES, about e^-66) the caller draws the full way: still exact,
 * since rejected trials carry no information about which token the distribution picks. Tokens of blocks whose
 * exponent is below -87.3 (exp4 gives 0) are never proposed, as exp_row weighs them 0 too.
 * Returns -1 after RJ_TRIES rejections. */
static int32_t sample_rejection(qe_sampler *s, const float *l, int n, float mx, float inv_t, float cut,
                                const float *prob) {
    int nb = (n + RJ_B - 1) / RJ_B;
    float *bq = s->bq;
    double *cum = s->bcum, q_sum = 0;
    for (int b = 0; b < nb; b += 4) {
        v4f x;
        memcpy(&x, bq + b, sizeof x); /* past nb: bq has room, and those lanes are not read back */
        v4f e = exp4((x - mx) * inv_t); /* the block maximum's prob[], bit for bit */
        e = (v4f)((v4i)(e * (1.0f + 1.0f / 65536.0f)) & (e >= cut)); /* below the cut: the block has no survivor */
        memcpy(bq + b, &e, sizeof e);
        for (int k = 0; k < 4 && b + k < nb; k++) {
            int len = b + k == nb - 1 ? n - (nb - 1) * RJ_B : RJ_B;
            q_sum += (double)e[k] * len;
            cum[b + k] = q_sum;
        }
    }
    for (int t = 0; t < RJ_TRIES; t++) {
        double r = rng_uniform53(s) * q_sum;
        int lo = 0, hi = nb - 1; /* the first block whose running sum passes r */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cum[mid] > r) hi = mid; else lo = mid + 1;
        }
        int len = lo == nb - 1 ? n - (nb - 1) * RJ_B : RJ_B;
        int i = lo * RJ_B + (int)(rng_uniform53(s) * len);
        double p_i = prob ? prob[i] : expf((l[i] - mx) * inv_t);
        if (p_i >= cut && rng_uniform53(s) * bq[lo] < p_i) return i;
    }
    return -1;
}

/* top-p's candidates: the values of prob >= floor, copied to out; returns their number. Every value of the
 * nucleus is above (1 - top_p) * total / n (its last value c: the values <= c, at most n of them, hold more than
 * (1 - top_p) of the mass, so c > (1 - top_p) * total / n); blocks whose sum is below floor are skipped whole
 * (with a model's peaked logits most of the row; with uniform ones a quarter of the values pass). */
static int gather_candidates(const float *prob, const float *blk, int n, float floor, float *out) {
    int w = 0;
    for (int b = 0; b * 64 < n; b++) {
        if (blk[b] < floor) continue;
        int end = b * 64 + 64 < n ? b * 64 + 64 : n;
        for (int i = b * 64; i < end; i++) { out[w] = prob[i]; w += prob[i] >= floor; } /* no branch to mispredict */
    }
    return w;
}

/* top-p's cut: the largest value c such that the values >= c hold at least `target` of the mass, i.e. the last
 * value of the sorted path's nucleus (ties with it are kept too), found among the m candidates v (every value
 * of the nucleus; see gather_candidates; v is overwritten). A radix select on the bits of non-negative floats
 * (ordered as their bits are): a histogram of mass over bits [31..20], walked from the top to the bucket where
 * the running mass reaches the target; then the same over that bucket's values only, on bits [19..8], then
 * [7..0]. Returns 0 (keep everything) when rounding leaves the target out of reach of the candidates. */
static float mass_cut(qe_sampler *s, float *v, int m, double target) {
    static const int shift[3] = {20, 8, 0}, width[3] = {12, 12, 8};
    uint32_t prefix = 0;
    for (int lvl = 0; lvl < 3; lvl++) {
        int sh = shift[lvl], nb = 1 << width[lvl], k;
        double *mass = s->mass;
        memset(mass, 0, sizeof(double) * (size_t)nb);
        for (int i = 0; i < m; i++) {
            uint32_t u;
            memcpy(&u, &v[i], sizeof u);
            mass[(u >> sh) & (uint32_t)(nb - 1)] += v[i];
        }
        double acc = 0;
        for (k = nb - 1; k >= 0; k--) {
            if (mass[k] > 0 && acc + mass[k] >= target) break;
            acc += mass[k];
        }
        if (k < 0) { /* rounding left the target out of reach: keep every value of this set */
            if (lvl == 0) return 0;
            float lo = INFINITY;
            for (int i = 0; i < m; i++) lo = v[i] < lo ? v[i] : lo;
            return m ? lo : 0;
        }
        target -= acc;
        prefix |= (uint32_t)k << sh;
        if (lvl == 2) break;
        int w = 0; /* the boundary bucket's values, for the next digit (in place: w <= i) */
        for (int i = 0; i < m; i++) {
            uint32_t u;
            memcpy(&u, &v[i], sizeof u);
            if (((u >> sh) & (uint32_t)(nb - 1)) == (uint32_t)k) v[w++] = v[i];
        }
        m = w;
    }
    float c;
    memcpy(&c, &prefix, sizeof c);
    return c;
}

/* How many values of prob are >= cut (> 0); blocks whose sum is below cut hold none. */
static int count_at_least(const float *prob, const float *blk, int n, float cut) {
    v4i cnt = {0, 0, 0, 0};
    int c = 0;
    for (int b = 0; b * 64 < n; b++) {
        if (blk[b] < cut) continue;
        int i = b * 64, end = i + 64 < n ? i + 64 : n;
        for (; i + 4 <= end; i += 4) {
            v4f x;
            memcpy(&x, prob + i, sizeof x);
            cnt -= (v4i)(x >= cut);
        }
        for (; i < end; i++) c += prob[i] >= cut;
    }
    return c + cnt[0] + cnt[1] + cnt[2] + cnt[3];
}

static int cmp_desc(const void *a, const void *b);

/* top-k off: see the file's header. l: n logits (-inf for tokens a top-k left out). */
static int32_t sample_unsorted(qe_sampler *s, const float *l, int n) {
    const qe_sample_params *p = &s->p;
    float mx = row_block_max(l, n, s->bq), inv_t = 1.0f / p->temperature, cut = 0;
    int n_blk = (n + 63) / 64;
    if (!isfinite(mx)) return qe_argmax(l, n); /* all -inf (or a +inf): no distribution to draw from */
    if (n > SORT_MAX && p->top_p >= 1.0f && p->min_p <= 0) {
        int32_t tok = sample_rejection(s, l, n, mx, inv_t, 0, NULL);
        if (tok >= 0) return tok;
    }
    double sum = exp_row(l, n, mx, inv_t, s->prob, s->blk);
    if (p->top_p < 1.0f) {
        /* the floor a little lower, so that its rounding to float cannot drop a value of the nucleus */
        float floor = (float)((1.0 - p->top_p) * sum / n * (1 - 1e-6));
        int m = gather_candidates(s->prob, s->blk, n, floor, s->tmp);
        cut = mass_cut(s, s->tmp, m, p->top_p * sum);
    }
    if (p->min_p > 0 && p->min_p > cut) cut = p->min_p; /* min_p times the largest exponential, exp(0) = 1 */
    int n_keep = cut > 0 ? count_at_least(s->prob, s->blk, n, cut) : n;
    if (n_keep <= SORT_MAX) { /* few survivors: sort and draw them as the sorted path does */
        candidate *c = s->cand;
        int m = 0;
        for (int b = 0; b < n_blk; b++) {
            if (s->blk[b] <= 0 || s->blk[b] < cut) continue;
            int end = b * 64 + 64 < n ? b * 64 + 64 : n;
            for (int i = b * 64; i < end && m < SORT_MAX; i++)
                if (s->prob[i] >= cut && s->prob[i] > 0) c[m++] = (candidate){l[i], i};
        }
        if (m > 0) {
            qsort(c, (size_t)m, sizeof *c, cmp_desc);
            return draw_sorted(s, c, m, mx, false);
        }
    }
    if (cut > 0) { /* many survivors: the rejection sampler restricted to them, else the survivors' block sums */
        int32_t tok = sample_rejection(s, l, n, mx, inv_t, cut, s->prob);
        if (tok >= 0) return tok;
        sum = 0;
        for (int b = 0; b < n_blk; b++) {
            int end = b * 64 + 64 < n ? b * 64 + 64 : n;
            float sb = 0;
            for (int i = b * 64; i < end; i++) sb += s->prob[i] >= cut ? s->prob[i] : 0.0f;
            s->blk[b] = sb;
            sum += sb;
        }
    }
    double r = rng_uniform(s) * sum, acc = 0;
    for (int b = 0; b < n_blk; b++) {
        if (acc + s->blk[b] <= r) { acc += s->blk[b]; continue; }
        int end = b * 64 + 64 < n ? b * 64 + 64 : n;
        for (int i = b * 64; i < end; i++) {
            if (s->prob[i] < cut) continue;
            acc += s->prob[i];
            if (r < acc) return i;
        }
    }
    /* r at the very end of the mass (rounding): the last survivor */
    for (int i = n - 1; i >= 0; i--) if (s->prob[i] >= cut && s->prob[i] > 0) return i;
    return qe_argmax(l, n);
}

int32_t qe_sampler_sample(qe_sampler *s, float *logits) {
    const qe_sample_params *p = &s->p;
    int n = s->n_vocab;
    apply_penalties(s, logits);
    if (p->temperature <= 0) return qe_argmax(logits, n);
    /* top_k 0 or at least the vocabulary means no top-k, as in llama.cpp (until 2026-12 a top_k above the
     * vocabulary silently became 256) */
    if (p->top_k <= 0 || p->top_k >= n) return sample_unsorted(s, logits, n);

    candidate *c = s->cand;
    int m = p->top_k;
    if (m <= 64) {
        m = top_k_small(logits, n, m, c);
    } else {
        for (int i = 0; i < n; i++) c[i] = (candidate){logits[i], i};
        select_top(c, n, m);
        if (m > SORT_MAX) { /* a large k: leave out the others and sample the rest unsorted */
            for (int i = m; i < n; i++) logits[c[i].id] = -INFINITY;
            return sample_unsorted(s, logits, n);
        }
        qsort(c, (size_t)m, sizeof *c, cmp_desc);
    }
    return draw_sorted(s, c, m, c[0].logit, true);
}

int32_t qe_sampler_sample_masked(qe_sampler *s, float *logits, const uint32_t *allow) {
    int n = s->n_vocab;
    bool any = false;
    for (int w = 0; w * 32 < n; w++) {
        uint32_t bits = allow[w];
        if (bits == 0xFFFFFFFFu) { any = true; continue; }
        any = any || bits;
        int end = w * 32 + 32 < n ? w * 32 + 32 : n;
        for (int i = w * 32; i < end; i++)
            if (!(bits >> (i & 31) & 1)) logits[i] = -INFINITY;
    }
    if (!any) return qe_argmax(logits, n);
    return qe_sampler_sample(s, logits);
}
