/* qwen2_arch.c — the Qwen2 architecture as GGUF stores it (qwen2_arch.h): the tensor-name table with shapes as
 * functions of the hyper-parameters, reading the hyper-parameters, writing the metadata.
 *
 * Hugging Face stores a matrix as [out, in]; GGUF's ne[0] is the row length `in`. The bytes are the same
 * row-major layout, so conversion needs no transpose, only the names below. */
#include "qwen2_arch.h"

#include <stdio.h>
#include <string.h>

/* Sizes a shape is made of. */
enum { D_ONE, D_EMBD, D_Q, D_KV, D_FF, D_VOCAB };

static const struct {
    const char *gguf, *hf; /* per-layer names are "blk.N." / "model.layers.N." + these */
    uint8_t ne0, ne1;      /* GGUF order; ne1 D_ONE: a vector */
    bool optional;
} table[QE_QWEN2_N_KINDS] = {
    [QE_QWEN2_TOKEN_EMBD]   = {"token_embd.weight", "model.embed_tokens.weight", D_EMBD, D_VOCAB, false},
    [QE_QWEN2_ATTN_NORM]    = {"attn_norm.weight", "input_layernorm.weight", D_EMBD, D_ONE, false},
    [QE_QWEN2_ATTN_Q]       = {"attn_q.weight", "self_attn.q_proj.weight", D_EMBD, D_Q, false},
    [QE_QWEN2_ATTN_Q_BIAS]  = {"attn_q.bias", "self_attn.q_proj.bias", D_Q, D_ONE, true},
    [QE_QWEN2_ATTN_K]       = {"attn_k.weight", "self_attn.k_proj.weight", D_EMBD, D_KV, false},
    [QE_QWEN2_ATTN_K_BIAS]  = {"attn_k.bias", "self_attn.k_proj.bias", D_KV, D_ONE, true},
    [QE_QWEN2_ATTN_V]       = {"attn_v.weight", "self_attn.v_proj.weight", D_EMBD, D_KV, false},
    [QE_QWEN2_ATTN_V_BIAS]  = {"attn_v.bias", "self_attn.v_proj.bias", D_KV, D_ONE, true},
    [QE_QWEN2_ATTN_OUT]     = {"attn_output.weight", "self_attn.o_proj.weight", D_Q, D_EMBD, false},
    [QE_QWEN2_FFN_NORM]     = {"ffn_norm.weight", "post_attention_layernorm.weight", D_EMBD, D_ONE, false},
    [QE_QWEN2_FFN_GATE]     = {"ffn_gate.weight", "mlp.gate_proj.weight", D_EMBD, D_FF, false},
    [QE_QWEN2_FFN_UP]       = {"ffn_up.weight", "mlp.up_proj.weight", D_EMBD, D_FF, false},
    [QE_QWEN2_FFN_DOWN]     = {"ffn_down.weight", "mlp.down_proj.weight", D_FF, D_EMBD, false},
    [QE_QWEN2_OUTPUT_NORM]  = {"output_norm.weight", "model.norm.weight", D_EMBD, D_ONE, false},
    [QE_QWEN2_OUTPUT]       = {"output.weight", "lm_head.weight", D_EMBD, D_VOCAB, false}, /* absent when tied */
};

static int64_t dim(const qe_config *c, int d) {
    switch (d) {
    case D_EMBD: return c->n_embd;
    case D_Q: return (int64_t)c->n_head * c->head_dim;
    case D_KV: return (int64_t)c->n_head_kv * c->head_dim;
    case D_FF: return c->n_ff;
    case D_VOCAB: return c->n_vocab;
    default: return 1;
    }
}

int qe_qwen2_n_tensors(const qe_config *c) { return 2 + QE_QWEN2_PER_LAYER * c->n_layer + !c->tied_output; }

void qe_qwen2_tensor_at(const qe_config *c, int i, qe_qwen2_tensor *t) {
    int body = QE_QWEN2_PER_LAYER * c->n_layer;
    memset(t, 0, sizeof *t);
    t->layer = -1;
    if (i == 0) t->kind = QE_QWEN2_TOKEN_EMBD;
    else if (i <= body) {
        t->layer = (i - 1) / QE_QWEN2_PER_LAYER;
        t->kind = (qe_qwen2_kind)(QE_QWEN2_ATTN_NORM + (i - 1) % QE_QWEN2_PER_LAYER);
    } else t->kind = i == body + 1 ? QE_QWEN2_OUTPUT_NORM : QE_QWEN2_OUTPUT;
    const char *g = table[t->kind].gguf, *h = table[t->kind].hf;
    if (t->layer >= 0) {
        snprintf(t->name, sizeof t->name, "blk.%d.%s", t->layer, g);
        snprintf(t->hf, sizeof t->hf, "model.layers.%d.%s", t->layer, h);
    } else {
        snprintf(t->name, sizeof t->name, "%s", g);
        snprintf(t->hf, sizeof t->hf, "%s", h);
    }
    t->n_dims = table[t->kind].ne1 == D_ONE ? 1 : 2;
    t->ne[0] = dim(c, table[t->kind].ne0);
    t->ne[1] = dim(c, table[t->kind].ne1);
    t->optional = table[t->kind].optional;
}

/* ---- metadata ------------------------------------------------------------------------------------------- */

#define ARCH "qwen2"

static int get_u32(const gguf_file *f, const char *suffix, uint32_t *out, bool required, char *err) {
    char key[128];
    snprintf(key, sizeof key, ARCH ".%s", suffix);
    int rc = gguf_get_u32(f, key, out, err);
    if (rc == QE_ENOTFOUND && required) return qe_errf(err, QE_EFORMAT, "metadata key %s is missing", key);
    return rc == QE_ENOTFOUND ? QE_OK : rc;
}

int qe_qwen2_read_config(const gguf_file *f, qe_config *c, char *err) {
    qe_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, err) != QE_OK)
        return qe_errf(err, QE_EFORMAT, "metadata key general.architecture is missing: not a model file");
    if (!qe_str_eq(arch, ARCH))
        return qe_errf(err, QE_EUNSUPPORTED, "model architecture '%.*s' is not supported: qwen-edge runs Qwen2 / Qwen2.5 "
                       "models (general.architecture = qwen2)", (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    uint32_t n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_ctx = 32768, key_len = 0;
    int rc;
    if ((rc = get_u32(f, "block_count", &n_layer, true, err)) ||
        (rc = get_u32(f, "embedding_length", &n_embd, true, err)) ||
        (rc = get_u32(f, "attention.head_count", &n_head, true, err)) ||
        (rc = get_u32(f, "feed_forward_length", &n_ff, true, err)) ||
        (rc = get_u32(f, "context_length", &n_ctx, false, err)) ||
        (rc = get_u32(f, "attention.key_length", &key_len, false, err)))
        return rc;
    n_head_kv = n_head;
    if ((rc = get_u32(f, "attention.head_count_kv", &n_head_kv, false, err))) return rc;
    float rope = 1e6f, eps = 1e-6f;
    if ((rc = gguf_get_f32(f, ARCH ".rope.freq_base", &rope, err)) && rc != QE_ENOTFOUND) return rc;
    if ((rc = gguf_get_f32(f, ARCH ".attention.layer_norm_rms_epsilon", &eps, err)) && rc != QE_ENOTFOUND) return rc;
    if (n_layer < 1 || n_layer > 512 || n_embd < 32 || n_embd > 65536 || n_head < 1 || n_head > 1024 ||
        n_head_kv < 1 || n_head % n_head_kv || n_embd % n_head || n_ff < 1 || n_ff > 1 << 20 || n_ctx < 16)
        return qe_errf(err, QE_EFORMAT, "hyper-parameters do not make a model: %u layers, hidden %u, %u heads, %u kv heads, "
                       "ffn %u, context %u", n_layer, n_embd, n_head, n_head_kv, n_ff, n_ctx);
    uint32_t hd = key_len ? key_len : n_embd / n_head;
    if (hd % 2 || hd > 512 || hd * n_head != n_embd)
        return qe_errf(err, QE_EUNSUPPORTED, "head dimension %u with %u heads and hidden %u is not supported", hd, n_head, n_embd);
    if (!(rope > 0) || !(eps > 0) || eps > 0.1f)
        return qe_errf(err, QE_EFORMAT, "bad rope.freq_base %g or rms epsilon %g", rope, eps);
    const gguf_tensor *emb = gguf_find_tensor(f, table[QE_QWEN2_TOKEN_EMBD].gguf);
    if (!emb) return qe_errf(err, QE_EFORMAT, "tensor %s is missing", table[QE_QWEN2_TOKEN_EMBD].gguf);
    *c = (qe_config){.n_layer = (int)n_layer, .n_embd = (int)n_embd, .n_head = (int)n_head, .n_head_kv = (int)n_head_kv,
                     .head_dim = (int)hd, .n_ff = (int)n_ff, .n_vocab = (int)emb->ne[1], .n_ctx_train = (int)n_ctx,
                     .rope_base = rope, .norm_eps = eps,
                     .tied_output = gguf_find_tensor(f, table[QE_QWEN2_OUTPUT].gguf) == NULL};
    return QE_OK;
}

void qe_qwen2_write_meta(gguf_writer *w, const qe_config *c, const qe_qwen2_meta *m) {
    gguf_writer_set_str(w, "general.architecture", ARCH);
    gguf_writer_set_str(w, "general.type", "model");
    gguf_writer_set_str(w, "general.name", m->name);
    gguf_writer_set_u32(w, ARCH ".block_count", (uint32_t)c->n_layer);
    gguf_writer_set_u32(w, ARCH ".context_length", (uint32_t)c->n_ctx_train);
    gguf_writer_set_u32(w, ARCH ".embedding_length", (uint32_t)c->n_embd);
    gguf_writer_set_u32(w, ARCH ".feed_forward_length", (uint32_t)c->n_ff);
    gguf_writer_set_u32(w, ARCH ".attention.head_count", (uint32_t)c->n_head);
    gguf_writer_set_u32(w, ARCH ".attention.head_count_kv", (uint32_t)c->n_head_kv);
    gguf_writer_set_f32(w, ARCH ".rope.freq_base", c->rope_base);
    gguf_writer_set_f32(w, ARCH ".attention.layer_norm_rms_epsilon", c->norm_eps);
    if (m->yarn_factor > 0) { /* llama.cpp applies it; see docs/MODELS.md */
        gguf_writer_set_str(w, ARCH ".rope.scaling.type", "yarn");
        gguf_writer_set_f32(w, ARCH ".rope.scaling.factor", m->yarn_factor);
        gguf_writer_set_u32(w, ARCH ".rope.scaling.original_context_length", (uint32_t)m->yarn_orig_ctx);
    }
    gguf_writer_set_u32(w, "general.file_type", m->file_type);
    const qe_vocab *v = m->vocab;
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", ARCH);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (uint64_t)v->n_tokens);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v->types, (uint64_t)v->n_tokens);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (uint64_t)v->n_merges);
    if (m->eos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)m->eos);
    if (m->pad >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)m->pad);
    if (m->bos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", m->add_bos);
    if (m->chat_template) gguf_writer_set_str(w, "tokenizer.chat_template", m->chat_template);
    gguf_writer_set_u32(w, "general.quantization_version", 2);
}
