/* hf.c — Hugging Face Qwen2 folders: config, validation, conversion to GGUF (hf.h). Where converted files are
 * kept (the conversion cache) is the model store's business: modelstore.c.
 * The tensor names on both sides and their shapes come from the architecture's table (qwen2_arch.c), as do
 * the GGUF metadata keys. */
#include "hf.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "mapfile.h"
#include "quant.h"
#include "qwen2_arch.h"
#include "qwen_template.h"
#include "safetensors.h"
#include "vocab_json.h"

#define MAX_SHARDS 256

struct qe_hf_model {
    qe_hf_config cfg;
    char dir[PATH_MAX];
    int n_shards;
    char (*shard_names)[256];
    qe_mapfile *maps;
    qe_safetensors **st;
};

/* One tensor the config implies. rows == 0 marks a 1-D tensor of `cols` values. */
typedef struct {
    char hf[96], gguf[64];
    int64_t rows, cols;
    const qe_st_tensor *src;
} want_tensor;

static bool is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static bool is_reg(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

bool qe_hf_is_folder(const char *path) {
    char p[PATH_MAX];
    if (!path || !is_dir(path)) return false;
    snprintf(p, sizeof p, "%s/config.json", path);
    return is_reg(p);
}

/* ---- config.json ---------------------------------------------------------------------------------- */

static int get_int(json_t *j, const char *key, int lo, int hi, int def, int *out, char *err) {
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        if (def == INT_MIN) return qe_errf(err, QE_EFORMAT, "config.json: \"%s\" is missing", key);
        *out = def;
        return QE_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return qe_errf(err, QE_EFORMAT, "config.json: \"%s\" must be an integer in [%d, %d]", key, lo, hi);
    *out = (int)json_integer_value(v);
    return QE_OK;
}

static int get_float(json_t *j, const char *key, double lo, double hi, double def, float *out, char *err) {
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) { *out = (float)def; return QE_OK; }
    if (!json_is_number(v) || json_number_value(v) <= lo || json_number_value(v) > hi)
        return qe_errf(err, QE_EFORMAT, "config.json: \"%s\" must be a number in (%g, %g]", key, lo, hi);
    *out = (float)json_number_value(v);
    return QE_OK;
}

int qe_hf_read_config(const char *dir, qe_hf_config *c, char *err) {
    memset(c, 0, sizeof *c);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (!is_reg(path)) return qe_errf(err, QE_ENOTFOUND, "%s: no config.json: not a Hugging Face model folder", dir);
        return qe_errf(err, QE_EFORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    }
    int rc = QE_OK;
    if (!json_is_object(j)) { rc = qe_errf(err, QE_EFORMAT, "%s: not a JSON object", path); goto done; }
    bool ok = false;
    json_t *arch = json_object_get(j, "architectures"), *a;
    size_t i;
    json_array_foreach(arch, i, a) if (json_string_value(a) && !strcmp(json_string_value(a), "Qwen2ForCausalLM")) ok = true;
    const char *mt = json_string_value(json_object_get(j, "model_type"));
    if (!json_is_array(arch) && mt && !strcmp(mt, "qwen2")) ok = true;
    if (!ok) {
        const char *first = json_string_value(json_array_get(arch, 0));
        rc = qe_errf(err, QE_EUNSUPPORTED, "%s: model %s is not supported: qwen-edge runs Qwen2ForCausalLM (Qwen2 / Qwen2.5)",
                     path, first ? first : mt ? mt : "(no \"architectures\")");
        goto done;
    }
    if ((rc = get_int(j, "hidden_size", 1, 65536, INT_MIN, &c->hidden_size, err)) ||
        (rc = get_int(j, "num_hidden_layers", 1, 1024, INT_MIN, &c->num_hidden_layers, err)) ||
        (rc = get_int(j, "num_attention_heads", 1, 1024, INT_MIN, &c->num_attention_heads, err)) ||
        (rc = get_int(j, "num_key_value_heads", 1, 1024, c->num_attention_heads, &c->num_key_value_heads, err)) ||
        (rc = get_int(j, "intermediate_size", 1, 1 << 20, INT_MIN, &c->intermediate_size, err)) ||
        (rc = get_int(j, "vocab_size", 1, 1 << 22, INT_MIN, &c->vocab_size, err)) ||
        (rc = get_int(j, "max_position_embeddings", 1, 1 << 24, 32768, &c->max_position_embeddings, err)) ||
        (rc = get_int(j, "bos_token_id", 0, 1 << 22, -1, &c->bos_token_id, err)) ||
        (rc = get_int(j, "eos_token_id", 0, 1 << 22, -1, &c->eos_token_id, err)) ||
        (rc = get_float(j, "rope_theta", 0, 1e12, 10000.0, &c->rope_theta, err)) ||
        (rc = get_float(j, "rms_norm_eps", 0, 1, 1e-6, &c->rms_norm_eps, err)))
        goto done;
    if (c->hidden_size % c->num_attention_heads || c->num_attention_heads % c->num_key_value_heads) {
        rc = qe_errf(err, QE_EFORMAT, "config.json: hidden_size %d, %d heads, %d kv heads do not divide evenly",
                     c->hidden_size, c->num_attention_heads, c->num_key_value_heads);
        goto done;
    }
    json_t *hd = json_object_get(j, "head_dim");
    if (json_is_integer(hd) && json_integer_value(hd) != c->hidden_size / c->num_attention_heads) {
        rc = qe_errf(err, QE_EUNSUPPORTED, "config.json: head_dim %lld differs from hidden_size / heads = %d (not Qwen2's layout)",
                     (long long)json_integer_value(hd), c->hidden_size / c->num_attention_heads);
        goto done;
    }
    json_t *rs = json_object_get(j, "rope_scaling");
    if (json_is_object(rs)) {
        const char *ty = json_string_value(json_object_get(rs, "type"));
        if (!ty) ty = json_string_value(json_object_get(rs, "rope_type"));
        if (!ty || strcmp(ty, "yarn") != 0) {
            rc = qe_errf(err, QE_EUNSUPPORTED, "config.json: rope_scaling type \"%s\" is not supported (only yarn)", ty ? ty : "?");
            goto done;
        }
        if ((rc = get_float(rs, "factor", 0, 1024, 1.0, &c->yarn_factor, err)) ||
            (rc = get_int(rs, "original_max_position_embeddings", 1, 1 << 24, c->max_position_embeddings, &c->yarn_orig_ctx, err)))
            goto done;
    }
    json_t *tie = json_object_get(j, "tie_word_embeddings");
    c->tie_word_embeddings = json_is_true(tie);
    const char *nm = json_string_value(json_object_get(j, "_name_or_path"));
    const char *base = nm && nm[0] ? nm : dir;
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/') bl--;
    const char *slash = base + bl;
    while (slash > base && slash[-1] != '/') slash--;
    snprintf(c->name, sizeof c->name, "%.*s", (int)(base + bl - slash), slash);
done:
    json_decref(j);
    return rc;
}

/* ---- opening and validating the folder -------------------------------------------------------------- */

static bool plain_name(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) < 256;
}

void qe_hf_close(qe_hf_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_shards; i++) {
        qe_st_free(m->st[i]);
        qe_mapfile_close(&m->maps[i]);
    }
    free(m->st);
    free(m->maps);
    free(m->shard_names);
    free(m);
}

static const qe_st_tensor *find_any(const qe_hf_model *m, const char *name) {
    for (int i = 0; i < m->n_shards; i++) {
        const qe_st_tensor *t = qe_st_find(m->st[i], name);
        if (t) return t;
    }
    return NULL;
}

static int add_shard(qe_hf_model *m, const char *name, char *err) {
    for (int i = 0; i < m->n_shards; i++) if (!strcmp(m->shard_names[i], name)) return i;
    if (m->n_shards == MAX_SHARDS) return qe_errf(err, QE_ERANGE, "more than %d safetensors shards", MAX_SHARDS);
    int i = m->n_shards;
    snprintf(m->shard_names[i], 256, "%s", name);
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", m->dir, name);
    int rc = qe_mapfile_open(path, &m->maps[i], err);
    if (rc) return rc;
    m->n_shards++; /* from here on, close() releases it */
    if ((rc = qe_st_parse(m->maps[i].data, m->maps[i].size, &m->st[i], err))) {
        qe_err_prefix(err, "%s", path);
        return rc;
    }
    return i;
}

/* The shape of the model a config describes, as the architecture's table and metadata writer take it. */
static qe_config arch_config(const qe_hf_config *c) {
    return (qe_config){.n_layer = c->num_hidden_layers, .n_embd = c->hidden_size, .n_head = c->num_attention_heads,
                       .n_head_kv = c->num_key_value_heads, .head_dim = c->hidden_size / c->num_attention_heads,
                       .n_ff = c->intermediate_size, .n_vocab = c->vocab_size, .n_ctx_train = c->max_position_embeddings,
                       .rope_base = c->rope_theta, .norm_eps = c->rms_norm_eps, .tied_output = c->tie_word_embeddings};
}

/* The tensors the config implies, in the order llama.cpp's converter writes them. *n receives the count. */
static want_tensor *wanted(const qe_hf_config *hc, int *n) {
    qe_config c = arch_config(hc);
    int k = qe_qwen2_n_tensors(&c);
    want_tensor *w = calloc((size_t)k, sizeof *w);
    if (!w) return NULL;
    for (int i = 0; i < k; i++) {
        qe_qwen2_tensor t;
        qe_qwen2_tensor_at(&c, i, &t);
        snprintf(w[i].hf, sizeof w[i].hf, "%s", t.hf);
        snprintf(w[i].gguf, sizeof w[i].gguf, "%s", t.name);
        w[i].rows = t.n_dims == 2 ? t.ne[1] : 0;
        w[i].cols = t.ne[0];
    }
    *n = k;
    return w;
}

static void shape_str(const qe_st_tensor *t, char *out, size_t cap) {
    int n = snprintf(out, cap, "[");
    for (int i = 0; i < t->n_dims; i++) n += snprintf(out + n, cap - (size_t)n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    snprintf(out + n, cap - (size_t)n, "]");
}

/* Resolves every wanted tensor to its source and checks the exact shape. */
static int check_tensors(const qe_hf_model *m, want_tensor *w, int n, char *err) {
    for (int i = 0; i < n; i++) {
        const qe_st_tensor *t = find_any(m, w[i].hf);
        if (!t) {
            if (!strcmp(w[i].hf, "lm_head.weight"))
                return qe_errf(err, QE_EFORMAT, "%s: lm_head.weight is missing and config.json does not say tie_word_embeddings", m->dir);
            return qe_errf(err, QE_EFORMAT, "%s: tensor %s is missing (config.json: %d layers)", m->dir, w[i].hf,
                           m->cfg.num_hidden_layers);
        }
        bool ok = w[i].rows ? t->n_dims == 2 && t->shape[0] == w[i].rows && t->shape[1] == w[i].cols
                            : t->n_dims == 1 && t->shape[0] == w[i].cols;
        if (!ok) {
            char got[96];
            shape_str(t, got, sizeof got);
            if (w[i].rows)
                return qe_errf(err, QE_EFORMAT, "%s: tensor %s has shape %s, config.json implies [%lld, %lld]", m->dir, w[i].hf,
                               got, (long long)w[i].rows, (long long)w[i].cols);
            return qe_errf(err, QE_EFORMAT, "%s: tensor %s has shape %s, config.json implies [%lld]", m->dir, w[i].hf, got,
                           (long long)w[i].cols);
        }
        w[i].src = t;
    }
    return QE_OK;
}

static int load_index(qe_hf_model *m, const char *path, char *err) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return qe_errf(err, QE_EFORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    int rc = QE_OK;
    json_t *map = json_object_get(j, "weight_map");
    if (!json_is_object(map) || !json_object_size(map)) { rc = qe_errf(err, QE_EFORMAT, "%s: no \"weight_map\" object", path); goto done; }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *shard = json_string_value(v);
        if (!shard || !plain_name(shard)) { rc = qe_errf(err, QE_EFORMAT, "%s: weight_map[\"%s\"] is not a file name in the folder", path, key); goto done; }
        int i = add_shard(m, shard, err);
        if (i < 0) { rc = i; goto done; }
        if (!qe_st_find(m->st[i], key)) {
            rc = qe_errf(err, QE_EFORMAT, "%s: says %s is in %s, but that file has no such tensor", path, key, shard);
            goto done;
        }
    }
done:
    json_decref(j);
    return rc;
}

int qe_hf_open(const char *dir, qe_hf_model **out, char *err) {
    *out = NULL;
    qe_hf_model *m = calloc(1, sizeof *m);
    if (!m) return qe_errf(err, QE_ENOMEM, "out of memory");
    m->shard_names = calloc(MAX_SHARDS, sizeof *m->shard_names);
    m->maps = calloc(MAX_SHARDS, sizeof *m->maps);
    m->st = calloc(MAX_SHARDS, sizeof *m->st);
    int rc;
    if (!m->shard_names || !m->maps || !m->st) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    if ((rc = qe_hf_read_config(dir, &m->cfg, err))) goto fail;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    if (is_reg(p)) {
        if ((rc = load_index(m, p, err))) goto fail;
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        if (!is_reg(p)) {
            snprintf(p, sizeof p, "%s/pytorch_model.bin", dir);
            rc = qe_errf(err, QE_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json%s", dir,
                         is_reg(p) ? " (PyTorch .bin weights are not supported: download the safetensors files)" : "");
            goto fail;
        }
        if ((rc = add_shard(m, "model.safetensors", err)) < 0) goto fail;
    }
    int n;
    want_tensor *w = wanted(&m->cfg, &n);
    if (!w) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    rc = check_tensors(m, w, n, err);
    free(w);
    if (rc) goto fail;
    *out = m;
    return QE_OK;
fail:
    qe_hf_close(m);
    return rc;
}

/* ---- tokenizer metadata ------------------------------------------------------------------------------ */

static int64_t token_id(const qe_vocab *v, const char *s) {
    if (!s) return -1;
    for (int64_t i = v->n_tokens - 1; i >= 0; i--) /* specials sit at the end */
        if (!strcmp(v->tokens[i], s)) return i;
    return -1;
}

/* A token in tokenizer_config.json is "text" or {"content": "text", ...}. */
static const char *tok_str(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    return json_string_value(json_object_get(v, "content"));
}

typedef struct {
    char *chat_template; /* owned, or NULL */
    int64_t bos, eos, pad;
    int add_bos;         /* -1 unknown */
} tok_meta;

static int read_tokenizer_config(const char *dir, const qe_hf_config *c, const qe_vocab *v, tok_meta *t, char *err) {
    t->chat_template = NULL;
    t->bos = c->bos_token_id;
    t->eos = c->eos_token_id;
    t->pad = -1;
    t->add_bos = -1;
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    if (is_reg(p)) {
        json_error_t je;
        json_t *j = json_load_file(p, 0, &je);
        if (!j) return qe_errf(err, QE_EFORMAT, "%s: not valid JSON (line %d: %s)", p, je.line, je.text);
        json_t *ct = json_object_get(j, "chat_template");
        const char *tmpl = json_string_value(ct);
        if (json_is_array(ct)) { /* [{"name": "default", "template": "..."}, ...] */
            size_t i;
            json_t *e;
            json_array_foreach(ct, i, e) {
                const char *nm = json_string_value(json_object_get(e, "name"));
                if (nm && !strcmp(nm, "default")) tmpl = json_string_value(json_object_get(e, "template"));
            }
        }
        if (tmpl && !(t->chat_template = strdup(tmpl))) { json_decref(j); return qe_errf(err, QE_ENOMEM, "out of memory"); }
        int64_t id;
        if ((id = token_id(v, tok_str(json_object_get(j, "eos_token")))) >= 0) t->eos = id;
        if ((id = token_id(v, tok_str(json_object_get(j, "bos_token")))) >= 0) t->bos = id;
        if ((id = token_id(v, tok_str(json_object_get(j, "pad_token")))) >= 0) t->pad = id;
        json_t *ab = json_object_get(j, "add_bos_token");
        if (json_is_boolean(ab)) t->add_bos = json_is_true(ab);
        json_decref(j);
    }
    /* A folder without a template but with ChatML's tokens gets Qwen2.5's template (what the engine needs
     * to talk to an instruct model); a base model without ChatML tokens gets none. */
    if (!t->chat_template && token_id(v, "<|im_start|>") >= 0 && !(t->chat_template = strdup(qe_qwen25_chat_template)))
        return qe_errf(err, QE_ENOMEM, "out of memory");
    return QE_OK;
}

/* ---- conversion -------------------------------------------------------------------------------------- */

/* llama.cpp's general.file_type (llama_ftype) for a uniform output type. */
static uint32_t ftype_of(int type) {
    switch (type) {
    case QE_TYPE_F32: return 0;
    case QE_TYPE_F16: return 1;
    case QE_TYPE_Q4_0: return 2;
    case QE_TYPE_Q4_1: return 3;
    case QE_TYPE_Q8_0: return 7;
    case QE_TYPE_Q5_0: return 8;
    case QE_TYPE_Q5_1: return 9;
    case QE_TYPE_Q2_K: return 10;
    case QE_TYPE_Q3_K: return 11;
    case QE_TYPE_Q4_K: return 14;
    case QE_TYPE_Q5_K: return 16;
    case QE_TYPE_Q6_K: return 18;
    case QE_TYPE_IQ4_NL: return 25;
    case QE_TYPE_BF16: return 32;
    default: return 1;
    }
}

static int dst_type(const want_tensor *w, int out_type) {
    if (!w->rows) return QE_TYPE_F32; /* norms and biases */
    int t = out_type < 0 ? w->src->type : out_type;
    if (w->cols % qe_type_traits_get(t)->block_size) t = w->cols % QK8_0 ? QE_TYPE_F16 : QE_TYPE_Q8_0;
    return t;
}

#define CHUNK_ELEMS (1 << 20)

static int write_one(gguf_writer *gw, FILE *out, int index, const want_tensor *w, int type, float *buf, void *qbuf, char *err) {
    const qe_type_traits *src = qe_type_traits_get(w->src->type), *dst = qe_type_traits_get(type);
    int64_t rows = w->rows ? w->rows : 1, cols = w->cols;
    int64_t chunk = CHUNK_ELEMS / cols;
    if (chunk < 1) chunk = 1;
    size_t src_row = qe_row_size(w->src->type, cols), dst_row = qe_row_size(type, cols);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        const uint8_t *s = (const uint8_t *)w->src->data + (size_t)r0 * src_row;
        src->to_float(s, buf, nr * cols);
        for (int64_t r = 0; r < nr; r++) dst->from_float(buf + r * cols, (uint8_t *)qbuf + (size_t)r * dst_row, cols);
        int rc = gguf_writer_write_tensor_data(gw, out, index, qbuf, (uint64_t)nr * dst_row, err);
        if (rc) return rc;
    }
    return QE_OK;
}

int qe_hf_to_gguf(const char *dir, const char *out_path, int out_type, char *err) {
    if (out_type >= 0) {
        const qe_type_traits *tt = qe_type_traits_get(out_type);
        if (!tt) return qe_errf(err, QE_EINVAL, "unknown output type %d", out_type);
        if (!tt->from_float)
            return qe_errf(err, QE_EUNSUPPORTED, "converting to %s is not implemented (use f16, bf16, f32, q8_0, q5_0, q5_1, q4_0 or q4_1)", tt->name);
    }
    qe_hf_model *m = NULL;
    qe_vocab *vocab = NULL;
    want_tensor *w = NULL;
    gguf_writer *gw = NULL;
    FILE *out = NULL;
    float *buf = NULL;
    void *qbuf = NULL;
    tok_meta tm = {0};
    char part[PATH_MAX + 8] = "";
    int rc, n = 0;
    if ((rc = qe_hf_open(dir, &m, err))) return rc;
    const qe_hf_config *c = &m->cfg;
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (!is_reg(p)) { rc = qe_errf(err, QE_ENOTFOUND, "%s: no tokenizer.json (the vocabulary is needed)", dir); goto done; }
    if ((rc = qe_vocab_json_load(p, c->vocab_size, -1, &vocab, err))) { qe_err_prefix(err, "%s", p); goto done; }
    if ((rc = read_tokenizer_config(dir, c, vocab, &tm, err))) goto done;
    if (!(w = wanted(c, &n))) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    if ((rc = check_tensors(m, w, n, err))) goto done;

    int major = out_type;
    if (major < 0) major = w[0].src->type; /* "keep": the embedding's type names the file */
    if (!(gw = gguf_writer_new())) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    if (c->yarn_factor > 0)
        qe_log(QE_LOG_WARN, "%s: config.json asks for YaRN rope scaling (factor %g): written to the GGUF (llama.cpp applies "
               "it; qwen-edge's engine does not apply rope scaling yet)", dir, c->yarn_factor);
    qe_config ac = arch_config(c);
    qe_qwen2_write_meta(gw, &ac, &(qe_qwen2_meta){.name = c->name, .file_type = ftype_of(major), .vocab = vocab,
                                                  .eos = tm.eos, .pad = tm.pad, .bos = tm.bos, .add_bos = tm.add_bos == 1,
                                                  .chat_template = tm.chat_template, .yarn_factor = c->yarn_factor,
                                                  .yarn_orig_ctx = c->yarn_orig_ctx});
    for (int i = 0; i < n; i++) {
        int64_t ne[2] = {w[i].cols, w[i].rows};
        gguf_writer_add_tensor(gw, w[i].gguf, w[i].rows ? 2 : 1, ne, dst_type(&w[i], out_type));
    }
    qe_vocab_free(vocab);
    vocab = NULL;

    snprintf(part, sizeof part, "%s.part", out_path);
    if (!(out = fopen(part, "wb"))) { rc = qe_errf(err, QE_EIO, "cannot create %s: %s", part, strerror(errno)); goto done; }
    setvbuf(out, NULL, _IOFBF, 1 << 22);
    /* a chunk is CHUNK_ELEMS weights, or one row when a row is longer; no output type is above 4 bytes a weight */
    size_t elems = CHUNK_ELEMS;
    if ((size_t)c->intermediate_size > elems) elems = (size_t)c->intermediate_size;
    if ((size_t)c->hidden_size > elems) elems = (size_t)c->hidden_size;
    buf = malloc(sizeof(float) * elems);
    qbuf = malloc(sizeof(float) * elems);
    if (!buf || !qbuf) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    if ((rc = gguf_writer_write_header(gw, out, err))) goto done;
    for (int i = 0; i < n; i++)
        if ((rc = write_one(gw, out, i, &w[i], dst_type(&w[i], out_type), buf, qbuf, err))) goto done;
    rc = qe_file_commit(&out, part, out_path, err);
done:
    if (out) fclose(out);
    if (part[0]) remove(part);
    free(tm.chat_template);
    free(buf);
    free(qbuf);
    free(w);
    gguf_writer_free(gw);
    qe_vocab_free(vocab);
    qe_hf_close(m);
    return rc;
}
