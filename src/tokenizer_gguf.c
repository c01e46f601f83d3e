/* tokenizer_gguf.c — builds the tokenizer from GGUF metadata (tokenizer.ggml.model/pre/tokens/token_type/
 * merges), as llama.cpp's convert_hf_to_gguf.py writes it for Qwen2. Kept apart from tokenizer.c so that
 * programs using only tokenizer.json do not link the GGUF parser. */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------------------
 * Loading from GGUF metadata (tokenizer.ggml.*) */

typedef struct { qe_tok_builder *b; const uint8_t *types; uint32_t types_type; uint64_t n_types; int rc; char *err; } gguf_ctx;

static int gguf_token_type(const gguf_ctx *c, uint64_t i) {
    if (!c->types || i >= c->n_types) return QE_TOKEN_NORMAL;
    int64_t v;
    if (c->types_type == GGUF_TYPE_INT32 || c->types_type == GGUF_TYPE_UINT32) {
        int32_t x; memcpy(&x, c->types + 4 * i, 4); v = x;
    } else if (c->types_type == GGUF_TYPE_INT8 || c->types_type == GGUF_TYPE_UINT8) {
        v = (int8_t)c->types[i];
    } else return QE_TOKEN_NORMAL;
    return v >= QE_TOKEN_NORMAL && v <= QE_TOKEN_BYTE ? (int)v : QE_TOKEN_NORMAL;
}

static void gguf_on_token(void *ctx, uint64_t i, qe_str s) {
    gguf_ctx *c = ctx;
    if (c->rc < 0) return;
    c->rc = qe_tok_builder_set(c->b, (int64_t)i, s.p, s.n, gguf_token_type(c, i), c->err);
}

static void gguf_on_merge(void *ctx, uint64_t i, qe_str s) {
    gguf_ctx *c = ctx;
    if (c->rc < 0) return;
    const char *sp = s.n > 1 ? memchr(s.p + 1, ' ', s.n - 1) : NULL;
    if (!sp) { c->rc = qe_errf(c->err, QE_EFORMAT, "tokenizer.ggml.merges[%llu] has no space", (unsigned long long)i); return; }
    c->rc = qe_tok_builder_merge(c->b, s.p, sp - s.p, sp + 1, s.n - (sp + 1 - s.p), c->err);
}

int qe_tokenizer_from_gguf(const gguf_file *f, qe_tokenizer **out, char *err) {
    *out = NULL;
    qe_str model = {0}, pre = {0};
    int rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err);
    if (rc == QE_ENOTFOUND) return qe_errf(err, QE_EFORMAT, "GGUF has no tokenizer (tokenizer.ggml.model missing)");
    if (rc < 0) return rc;
    if (!qe_str_eq(model, "gpt2"))
        return qe_errf(err, QE_EUNSUPPORTED, "tokenizer model '%.*s' is not supported (byte-level BPE 'gpt2' only)",
                       (int)model.n, model.p);
    rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err);
    if (rc < 0 && rc != QE_ENOTFOUND) return rc;
    if (rc == QE_OK && !qe_str_eq(pre, "qwen2") && !qe_str_eq(pre, "default"))
        return qe_errf(err, QE_EUNSUPPORTED, "pre-tokenizer '%.*s' is not supported (Qwen2 family only)",
                       (int)pre.n, pre.p);
    const gguf_kv *tk = gguf_find(f, "tokenizer.ggml.tokens");
    const gguf_kv *mk = gguf_find(f, "tokenizer.ggml.merges");
    if (!tk || tk->type != GGUF_TYPE_ARRAY || tk->arr_type != GGUF_TYPE_STRING)
        return qe_errf(err, QE_EFORMAT, "GGUF: tokenizer.ggml.tokens missing or not an array of strings");
    if (!mk || mk->type != GGUF_TYPE_ARRAY || mk->arr_type != GGUF_TYPE_STRING)
        return qe_errf(err, QE_EFORMAT, "GGUF: tokenizer.ggml.merges missing or not an array of strings");
    if (tk->arr_n == 0 || tk->arr_n > (1 << 24))
        return qe_errf(err, QE_EFORMAT, "GGUF: %llu tokens is out of range", (unsigned long long)tk->arr_n);
    qe_tok_builder b;
    gguf_ctx c = {.b = &b, .err = err};
    if ((rc = qe_tok_builder_init(&b, (int)tk->arr_n, mk->arr_n, err)) < 0) goto done;
    uint64_t nt = 0;
    const void *td = NULL;
    uint32_t tt = 0;
    rc = gguf_get_arr(f, "tokenizer.ggml.token_type", &tt, &nt, &td, err);
    if (rc == QE_OK) {
        if (nt != tk->arr_n) { rc = qe_errf(err, QE_EFORMAT, "GGUF: %llu token types for %llu tokens",
                                            (unsigned long long)nt, (unsigned long long)tk->arr_n); goto done; }
        c.types = td; c.types_type = tt; c.n_types = nt;
    } else if (rc != QE_ENOTFOUND) goto done;
    if ((rc = gguf_get_arr_str(f, "tokenizer.ggml.tokens", gguf_on_token, &c, err)) < 0) goto done;
    if ((rc = c.rc) < 0) goto done;
    if ((rc = qe_tok_builder_vocab_done(&b, err)) < 0) goto done;
    if ((rc = gguf_get_arr_str(f, "tokenizer.ggml.merges", gguf_on_merge, &c, err)) < 0) goto done;
    if ((rc = c.rc) < 0) goto done;
    rc = qe_tok_builder_finish(&b, out, err);
done:
    if (rc < 0) qe_tok_builder_abort(&b);
    return rc;
}
