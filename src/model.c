/* model.c — loads a Qwen2 GGUF: reads the hyper-parameters, looks every tensor of the architecture's table up by
 * name with its exact expected shape, prepares the weight matrices for the kernels and builds the tokenizer.
 * What lives elsewhere: the tensor table and metadata keys (qwen2_arch.c), parsing (gguf.c), mapping (mapfile.c),
 * the forward pass (qwen2.c). */
#include "model.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mapfile.h"
#include "quant.h"

typedef struct {
    float *block; /* one allocation for every f32 copy (norms, biases) */
    size_t used, cap;
    qe_mapfile map;
} model_private;

/* Finds a tensor and checks its type is usable and its shape is exactly {ne0, ne1} (ne1 = 0 for vectors). */
static int find_tensor(const qe_model *m, const char *name, int64_t ne0, int64_t ne1, const gguf_tensor **out,
                       bool required, char *err) {
    *out = NULL;
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t) return required ? qe_errf(err, QE_EFORMAT, "tensor %s is missing", name) : QE_OK;
    int dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && (dims == 1 ? (t->n_dims == 1 || t->ne[1] == 1) : t->ne[1] == ne1) &&
              t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok)
        return qe_errf(err, QE_EFORMAT, "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld] from the metadata",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                       (long long)ne0, (long long)(ne1 ? ne1 : 1));
    *out = t;
    return QE_OK;
}

/* An f32 copy of a vector tensor (norm weight or bias) in any float type. */
static int load_vector(qe_model *m, const char *name, int64_t n, const float **out, bool required, char *err) {
    const gguf_tensor *t;
    int rc = find_tensor(m, name, n, 0, &t, required, err);
    if (rc || !t) { *out = NULL; return rc; }
    const qe_type_traits *tr = qe_type_traits_get((int)t->type);
    if (!tr || !tr->to_float || tr->block_size != 1)
        return qe_errf(err, QE_EFORMAT, "tensor %s has type %s; norms and biases must be f32, f16 or bf16", name,
                       qe_type_name((int)t->type));
    model_private *pv = m->owned;
    if (pv->used + (size_t)n > pv->cap) return qe_errf(err, QE_ERR, "internal: vector arena too small");
    float *dst = pv->block + pv->used;
    pv->used += (size_t)n;
    tr->to_float(t->data, dst, n);
    *out = dst;
    return QE_OK;
}

/* Matrices are looked up and checked in file order (so the first bad tensor is the one reported), queued, and
 * then prepared for the kernels (repacked: most of the load time) by several threads at once. */
typedef struct {
    const gguf_tensor *t;
    int64_t rows, cols;
    qe_mat *out;
} matrix_job;

typedef struct {
    matrix_job *jobs;
    int n, cap;
} matrix_queue;

static int queue_matrix(qe_model *m, matrix_queue *q, const char *name, int64_t cols, int64_t rows, qe_mat *out,
                        bool required, char *err) {
    const gguf_tensor *t;
    int rc = find_tensor(m, name, cols, rows, &t, required, err);
    if (rc || !t) return rc;
    if (q->n == q->cap) {
        int cap = q->cap ? q->cap * 2 : 256;
        matrix_job *j = realloc(q->jobs, sizeof *j * (size_t)cap);
        if (!j) return qe_errf(err, QE_ENOMEM, "out of memory");
        q->jobs = j;
        q->cap = cap;
    }
    q->jobs[q->n++] = (matrix_job){.t = t, .rows = rows, .cols = cols, .out = out};
    return QE_OK;
}

typedef struct {
    matrix_queue *q;
    atomic_int next;
    int failed_job; /* lowest failing job index, or q->n */
    int rc;
    char err[QE_ERR_LEN];
    pthread_mutex_t lock;
    /* the tokenizer is built by the first worker to finish its share, alongside the others' repacking */
    qe_model *m;
    atomic_int tok_claimed;
    int tok_rc;
    char tok_err[QE_ERR_LEN];
} prepare_ctx;

static void *prepare_worker(void *arg) {
    prepare_ctx *c = arg;
    for (;;) {
        int i = atomic_fetch_add(&c->next, 1);
        if (i >= c->q->n) break;
        matrix_job *j = &c->q->jobs[i];
        char err[QE_ERR_LEN];
        int rc = qe_mat_init(j->out, (int)j->t->type, j->rows, j->cols, j->t->data, err);
        if (rc) {
            pthread_mutex_lock(&c->lock);
            if (i < c->failed_job) {
                c->failed_job = i;
                c->rc = rc;
                snprintf(c->err, sizeof c->err, "tensor %.*s: %s", (int)j->t->name.n, j->t->name.p, err);
            }
            pthread_mutex_unlock(&c->lock);
        }
    }
    if (atomic_exchange(&c->tok_claimed, 1) == 0)
        c->tok_rc = qe_tokenizer_from_gguf(c->m->gguf, &c->m->tok, c->tok_err);
    return NULL;
}

/* Prepares every queued matrix and builds the tokenizer, on up to the machine's physical cores. */
static int prepare_all(qe_model *m, matrix_queue *q, char *err) {
    /* biggest first, so the last job to finish is a small one */
    for (int i = 1; i < q->n; i++) {
        matrix_job j = q->jobs[i];
        int k = i;
        while (k > 0 && q->jobs[k - 1].rows * q->jobs[k - 1].cols < j.rows * j.cols) { q->jobs[k] = q->jobs[k - 1]; k--; }
        q->jobs[k] = j;
    }
    prepare_ctx c = {.q = q, .failed_job = q->n, .m = m};
    atomic_init(&c.next, 0);
    atomic_init(&c.tok_claimed, 0);
    pthread_mutex_init(&c.lock, NULL);
    int n_threads = qe_physical_cores();
    if (n_threads > 8) n_threads = 8;
    pthread_t th[8];
    int started = 0;
    for (int i = 1; i < n_threads; i++)
        if (pthread_create(&th[started], NULL, prepare_worker, &c) == 0) started++;
    prepare_worker(&c);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&c.lock);
    if (c.rc) return qe_errf(err, c.rc, "%s", c.err);
    if (c.tok_rc) return qe_errf(err, c.tok_rc, "%s", c.tok_err);
    return QE_OK;
}

static void summarize_types(qe_model *m) {
    static char buf[160];
    int counts[QE_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const gguf_tensor *t = &m->gguf->tensors[i];
        if (t->n_dims >= 2 && t->type < QE_TYPE_COUNT) counts[t->type]++;
    }
    int n = 0;
    buf[0] = 0;
    for (int t = 0; t < QE_TYPE_COUNT; t++) {
        if (!counts[t]) continue;
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%s%s", n ? ", " : "", qe_type_name(t));
        n++;
    }
    m->weight_types = buf;
}

/* Where tensor t goes in the model: a vector (f32 copy) or a matrix (prepared for the kernels). */
static void destination(qe_model *m, const qe_qwen2_tensor *t, const float ***vec, qe_mat **mat) {
    qe_layer *L = t->layer >= 0 ? &m->layers[t->layer] : NULL;
    *vec = NULL;
    *mat = NULL;
    switch (t->kind) {
    case QE_QWEN2_TOKEN_EMBD: *mat = &m->output; break; /* only reached when tied, see load_weights */
    case QE_QWEN2_ATTN_NORM: *vec = &L->attn_norm; break;
    case QE_QWEN2_ATTN_Q: *mat = &L->wq; break;
    case QE_QWEN2_ATTN_Q_BIAS: *vec = &L->bq; break;
    case QE_QWEN2_ATTN_K: *mat = &L->wk; break;
    case QE_QWEN2_ATTN_K_BIAS: *vec = &L->bk; break;
    case QE_QWEN2_ATTN_V: *mat = &L->wv; break;
    case QE_QWEN2_ATTN_V_BIAS: *vec = &L->bv; break;
    case QE_QWEN2_ATTN_OUT: *mat = &L->wo; break;
    case QE_QWEN2_FFN_NORM: *vec = &L->ffn_norm; break;
    case QE_QWEN2_FFN_GATE: *mat = &L->w_gate; break;
    case QE_QWEN2_FFN_UP: *mat = &L->w_up; break;
    case QE_QWEN2_FFN_DOWN: *mat = &L->w_down; break;
    case QE_QWEN2_OUTPUT_NORM: *vec = &m->out_norm; break;
    case QE_QWEN2_OUTPUT: *mat = &m->output; break;
    default: break;
    }
}

static int load_weights(qe_model *m, char *err) {
    const qe_config *c = &m->cfg;
    int64_t E = c->n_embd, Q = (int64_t)c->n_head * c->head_dim, KV = (int64_t)c->n_head_kv * c->head_dim;
    model_private *pv = m->owned;
    pv->cap = (size_t)(E + (size_t)c->n_layer * (2 * E + Q + 2 * KV));
    pv->block = malloc(pv->cap * sizeof(float));
    m->layers = calloc((size_t)c->n_layer, sizeof(qe_layer));
    if (!pv->block || !m->layers) return qe_errf(err, QE_ENOMEM, "out of memory");
    int rc = QE_OK;
    matrix_queue q = {0};
    int n = qe_qwen2_n_tensors(c);
    for (int i = 0; i < n && rc == QE_OK; i++) {
        qe_qwen2_tensor t;
        qe_qwen2_tensor_at(c, i, &t);
        const float **vec;
        qe_mat *mat;
        destination(m, &t, &vec, &mat);
        if (t.kind == QE_QWEN2_TOKEN_EMBD) {
            const gguf_tensor *emb;
            if ((rc = find_tensor(m, t.name, t.ne[0], t.ne[1], &emb, true, err))) break;
            const qe_type_traits *tr = qe_type_traits_get((int)emb->type);
            if (!tr || !tr->to_float) {
                rc = qe_errf(err, QE_EUNSUPPORTED, "tensor %s has unsupported type %s", t.name, qe_type_name((int)emb->type));
                break;
            }
            if (!c->tied_output) {
                /* separate head: the embedding is only looked up row by row, straight from the mapped file (only
                 * the rows of tokens actually seen become resident) */
                m->tok_embd = (qe_mat){.type = (int)emb->type, .rows = c->n_vocab, .cols = E, .data = emb->data};
                continue;
            }
            /* tied: the output head is the embedding matrix, prepared once for the kernels; lookups read it too */
        }
        if (vec) rc = load_vector(m, t.name, t.ne[0], vec, !t.optional, err);
        else rc = queue_matrix(m, &q, t.name, t.ne[0], t.ne[1], mat, !t.optional, err);
    }
    if (rc == QE_OK && (rc = prepare_all(m, &q, err)) == QE_OK) {
        if (c->tied_output) m->tok_embd = m->output;
        summarize_types(m);
    }
    free(q.jobs);
    return rc;
}

static int load_gguf(qe_model *m, const char *path, char *err) {
    model_private *pv = m->owned;
    int rc = qe_mapfile_open(path, &pv->map, err);
    if (rc) return rc;
    m->file_bytes = pv->map.size;
    if ((rc = gguf_parse(pv->map.data, pv->map.size, &m->gguf, err))) return rc;
    if ((rc = qe_qwen2_read_config(m->gguf, &m->cfg, err))) return rc;
    if ((rc = load_weights(m, err))) return rc; /* builds the tokenizer too, alongside the repacking */
    if (qe_tokenizer_n_vocab(m->tok) > m->cfg.n_vocab)
        return qe_errf(err, QE_EFORMAT, "the vocabulary has %d tokens but token_embd.weight only %d rows",
                       qe_tokenizer_n_vocab(m->tok), m->cfg.n_vocab);
    qe_str s;
    if (gguf_get_str(m->gguf, "tokenizer.chat_template", &s, NULL) == QE_OK) m->chat_template = strndup(s.p, s.n);
    if (gguf_get_str(m->gguf, "general.name", &s, NULL) == QE_OK) m->name = strndup(s.p, s.n);
    return QE_OK;
}

int qe_model_load(const char *path, qe_model **out, char *err) {
    *out = NULL;
    qe_model *m = calloc(1, sizeof *m);
    model_private *pv = calloc(1, sizeof *pv);
    if (!m || !pv) { free(m); free(pv); return qe_errf(err, QE_ENOMEM, "out of memory"); }
    m->owned = pv;
    m->path = strdup(path);
    int rc;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) /* the CLI converts folders first (qe_model_resolve) */
        rc = qe_errf(err, QE_EINVAL, "%s is a folder, not a GGUF file", path);
    else
        rc = load_gguf(m, path, err);
    if (rc) {
        if (err && strncmp(err, path, strlen(path)) != 0) qe_err_prefix(err, "%s", path); /* name the file once */
        qe_model_free(m);
        return rc;
    }
    if (!m->name) {
        const char *slash = strrchr(path, '/');
        m->name = strdup(slash ? slash + 1 : path);
    }
    *out = m;
    return QE_OK;
}

void qe_model_free(qe_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layer; l++) {
            qe_layer *L = &m->layers[l];
            qe_mat_free(&L->wq); qe_mat_free(&L->wk); qe_mat_free(&L->wv); qe_mat_free(&L->wo);
            qe_mat_free(&L->w_gate); qe_mat_free(&L->w_up); qe_mat_free(&L->w_down);
        }
        free(m->layers);
    }
    if (!m->cfg.tied_output) qe_mat_free(&m->tok_embd); /* when tied it is the output head's view */
    qe_mat_free(&m->output);
    qe_tokenizer_free(m->tok);
    gguf_free(m->gguf);
    model_private *pv = m->owned;
    if (pv) { free(pv->block); qe_mapfile_close(&pv->map); free(pv); }
    free(m->chat_template); free(m->name); free(m->path);
    free(m);
}
