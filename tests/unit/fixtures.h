/* fixtures.h — self-contained test data for the C unit tests, so that they read nothing outside the repository's
 * sources (no node_modules, no built binary):
 *   - a small byte-level BPE vocabulary, written as a Hugging Face tokenizer.json: the 256 one-byte tokens in GPT-2's
 *     byte alphabet, merges that build a few words left to right (every prefix is a token, so a CJK character or an
 *     emoji is split across tokens mid-character: the streaming detokenizer's hard case), Qwen's three control
 *     tokens and the non-special <tool_call>;
 *   - a tiny random-weight Qwen2 GGUF with that vocabulary, laid out by the architecture's own table (qwen2_arch.h).
 * Checks that need Qwen's real vocabulary (its ids, Hugging Face and llama.cpp parity) are end-to-end tests
 * (tests/js/tokenizer*.test.mjs). */
#pragma once
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"
#include "qwen2_arch.h"
#include "qwen_template.h"
#include "tokenizer.h"
#include "vocab_json.h"

/* Words built by merges, in rank order. */
static const char *const fx_words[] = {
    "Hello", " world", " is", " the", "user", "system", "assistant", "sys", " and", "question", " answer", "ok",
    "\xE4\xBD\xA0\xE5\xA5\xBD",          /* 你好 */
    "\xE4\xB8\x96\xE7\x95\x8C",          /* 世界 */
    "\xE7\x9A\x84\xE7\x9A\x84",          /* 的的 */
    "\xE4\xBA\xBA",                      /* 人 */
    "\xF0\x9F\x98\x80",                  /* 😀 */
    "\n\n", "  ",
};
static const char *const fx_added[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>"};
static const int fx_added_special[] = {1, 1, 1, 0};

/* GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the others are U+0100 + k in byte order.
 * Writes the UTF-8 of byte b's code point (NUL-terminated) and returns its length. */
static inline int fx_byte_str(uint8_t b, char out[4]) {
    int k = 0;
    uint32_t cp = 0;
    for (int c = 0; c <= b; c++) {
        bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
        cp = printable ? (uint32_t)c : 256u + (uint32_t)k++;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; return 1; }
    out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0;
    return 2;
}

/* The fixture's tokenizer.json text (owned: free()). Ids: 0..255 the bytes, then each new merged token, then
 * fx_added. */
static inline char *fx_tokenizer_json(void) {
    json_t *root = json_object(), *model = json_object(), *vocab = json_object(), *merges = json_array(), *added = json_array();
    int id = 0;
    for (int b = 0; b < 256; b++) {
        char s[4];
        fx_byte_str((uint8_t)b, s);
        json_object_set_new(vocab, s, json_integer(id++));
    }
    for (size_t w = 0; w < sizeof fx_words / sizeof fx_words[0]; w++) {
        const uint8_t *p = (const uint8_t *)fx_words[w];
        char prefix[256];
        fx_byte_str(p[0], prefix);
        for (size_t i = 1; p[i]; i++) {
            char next[4], merged[256], rule[300];
            fx_byte_str(p[i], next);
            snprintf(merged, sizeof merged, "%s%s", prefix, next);
            if (!json_object_get(vocab, merged)) {
                json_object_set_new(vocab, merged, json_integer(id++));
                snprintf(rule, sizeof rule, "%s %s", prefix, next);
                json_array_append_new(merges, json_string(rule));
            }
            snprintf(prefix, sizeof prefix, "%s", merged);
        }
    }
    for (int i = 0; i < 4; i++)
        json_array_append_new(added, json_pack("{s:i,s:s,s:b}", "id", id++, "content", fx_added[i], "special", fx_added_special[i]));
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);
    json_object_set_new(root, "model", model);
    json_object_set_new(root, "added_tokens", added);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static inline qe_tokenizer *fx_tokenizer(void) {
    char *json = fx_tokenizer_json(), err[QE_ERR_LEN] = "";
    qe_tokenizer *t = NULL;
    if (!json || qe_tokenizer_from_json(json, strlen(json), &t, err) < 0) {
        fprintf(stderr, "fixture tokenizer: %s\n", err);
        exit(1);
    }
    free(json);
    return t;
}

/* ---- a tiny random-weight Qwen2 GGUF ------------------------------------------------------------------------- */

/* rows of token_embd: the fixture vocabulary padded to Qwen2.5's size, as a converter pads it. The size matters for
 * timing: the output head is most of a token's work, and tests that cancel a running job rely on it taking a while. */
#define FX_N_VOCAB 151936

static inline uint64_t fx_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline float fx_uniform(uint64_t *s) { return (float)((double)(fx_rand(s) >> 11) / (double)(1ull << 53) * 2.0 - 1.0); }

/* Writes the model to path (2 layers, hidden 256, 4 heads of 64 sharing 2 KV heads, FFN 512, tied output head;
 * f16 matrices, f32 norms and biases). Values depend only on seed. Returns 0 or a negative code. */
static inline int fx_write_model(const char *path, uint64_t seed, char *err) {
    qe_config c = {.n_layer = 2, .n_embd = 256, .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_ff = 512,
                   .n_vocab = FX_N_VOCAB, .n_ctx_train = 4096, .rope_base = 1e6f, .norm_eps = 1e-6f, .tied_output = true};
    char vpath[600];
    snprintf(vpath, sizeof vpath, "%s.tokenizer.json", path);
    char *json = fx_tokenizer_json();
    FILE *f = fopen(vpath, "wb");
    if (!json || !f || fputs(json, f) < 0) { free(json); if (f) fclose(f); return qe_errf(err, QE_EIO, "cannot write %s", vpath); }
    fclose(f);
    free(json);
    qe_vocab *v = NULL;
    int rc = qe_vocab_json_load(vpath, FX_N_VOCAB, -1, &v, err);
    remove(vpath);
    if (rc) return rc;
    int32_t endoftext = 0, im_end = 0;
    for (int64_t i = 0; i < v->n_tokens; i++) {
        if (!strcmp(v->tokens[i], "<|endoftext|>")) endoftext = (int32_t)i;
        if (!strcmp(v->tokens[i], "<|im_end|>")) im_end = (int32_t)i;
    }
    gguf_writer *w = gguf_writer_new();
    qe_qwen2_write_meta(w, &c, &(qe_qwen2_meta){.name = "fixture", .file_type = 1, .vocab = v, .eos = im_end,
                                                .pad = endoftext, .bos = endoftext, .chat_template = qe_qwen25_chat_template});
    qe_vocab_free(v);
    int n = qe_qwen2_n_tensors(&c);
    for (int i = 0; i < n; i++) {
        qe_qwen2_tensor t;
        qe_qwen2_tensor_at(&c, i, &t);
        gguf_writer_add_tensor(w, t.name, t.n_dims, t.ne, t.n_dims == 2 ? QE_TYPE_F16 : QE_TYPE_F32);
    }
    f = fopen(path, "wb");
    if (!f) { gguf_writer_free(w); return qe_errf(err, QE_EIO, "cannot create %s", path); }
    rc = gguf_writer_write_header(w, f, err);
    for (int i = 0; i < n && rc == QE_OK; i++) {
        qe_qwen2_tensor t;
        qe_qwen2_tensor_at(&c, i, &t);
        int64_t cnt = t.ne[0] * t.ne[1];
        float *x = malloc(sizeof(float) * (size_t)cnt);
        uint16_t *h = malloc(sizeof(uint16_t) * (size_t)cnt);
        if (!x || !h) { free(x); free(h); rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
        uint64_t st = seed * 0x2545f4914f6cdd1dull + (uint64_t)i;
        /* ~unit gain per matrix (uniform(-a, a) has variance a^2/3). Tame on purpose: sharp attention turns the
         * rounding differences between a batched and a one-token pass (f16 KV cache, f16 softmax weights) into
         * different greedy tokens, and the engine tests compare exactly those. */
        float a = sqrtf(3.0f / (float)t.ne[0]), center = 0;
        switch (t.kind) {
        case QE_QWEN2_FFN_DOWN: a *= 0.5f; break;
        case QE_QWEN2_ATTN_Q_BIAS: case QE_QWEN2_ATTN_K_BIAS: case QE_QWEN2_ATTN_V_BIAS: a = 0.001f; break;
        case QE_QWEN2_ATTN_NORM: case QE_QWEN2_FFN_NORM: center = 1; a = 0.2f; break;
        default: break;
        }
        for (int64_t k = 0; k < cnt; k++) x[k] = center + a * fx_uniform(&st);
        /* With a tied head a token's own embedding, left in the final state, favours it again (t -> t forever)
         * unless sum_i w_i e_ti^2 is the same for every token: embedding entries of equal magnitude with random
         * signs and final-norm weights of +-1, exactly half each (mkmodel does the same, see its comments). */
        if (t.kind == QE_QWEN2_TOKEN_EMBD)
            for (int64_t k = 0; k < cnt; k++) x[k] = x[k] < 0 ? -0.5f : 0.5f;
        if (t.kind == QE_QWEN2_OUTPUT_NORM) {
            for (int64_t k = 0; k < cnt; k++) x[k] = k < cnt / 2 ? 1.0f : -1.0f;
            for (int64_t k = cnt - 1; k > 0; k--) {
                int64_t j = (int64_t)(fx_rand(&st) % (uint64_t)(k + 1));
                float tmp = x[k]; x[k] = x[j]; x[j] = tmp;
            }
        }
        if (t.n_dims == 2) {
            qe_type_traits_get(QE_TYPE_F16)->from_float(x, h, cnt);
            rc = gguf_writer_write_tensor_data(w, f, i, h, (uint64_t)cnt * 2, err);
        } else {
            rc = gguf_writer_write_tensor_data(w, f, i, x, (uint64_t)cnt * 4, err);
        }
        free(x);
        free(h);
    }
    if (fclose(f) != 0 && rc == QE_OK) rc = qe_errf(err, QE_EIO, "cannot write %s", path);
    gguf_writer_free(w);
    return rc;
}
