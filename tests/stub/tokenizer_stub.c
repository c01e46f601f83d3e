/* tokenizer_stub.c — DEVELOPMENT STAND-IN, built only while src/tokenizer.c is absent (mk/server.mk).
 * One token per byte (ids 0..255) plus the three ChatML specials, so the server can be built and tested
 * before the real BPE tokenizer lands. Deleted once it does. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

enum { ST_EOS = 256, ST_IM_START = 257, ST_IM_END = 258, ST_N = 259 };
static const char *st_special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
struct qe_tokenizer { int dummy; };

int qe_ids_push(qe_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *p = realloc(ids->p, cap * sizeof *p);
        if (!p) return QE_ENOMEM;
        ids->p = p;
        ids->cap = cap;
    }
    ids->p[ids->n++] = id;
    return QE_OK;
}
void qe_ids_free(qe_ids *ids) { free(ids->p); ids->p = NULL; ids->n = ids->cap = 0; }

int qe_tokenizer_from_json(const char *json, size_t len, qe_tokenizer **out, char *err) {
    *out = calloc(1, sizeof **out);
    return *out ? QE_OK : QE_ENOMEM;
}
void qe_tokenizer_free(qe_tokenizer *t) { free(t); }
int qe_tokenizer_n_vocab(const qe_tokenizer *t) { return ST_N; }
int32_t qe_tokenizer_eos(const qe_tokenizer *t) { return ST_EOS; }
int32_t qe_tokenizer_im_start(const qe_tokenizer *t) { return ST_IM_START; }
int32_t qe_tokenizer_im_end(const qe_tokenizer *t) { return ST_IM_END; }
bool qe_tokenizer_is_eog(const qe_tokenizer *t, int32_t id) { return id == ST_EOS || id == ST_IM_END; }

int qe_tokenize(const qe_tokenizer *t, const char *text, size_t len, bool parse_special, qe_ids *out, char *err) {
    for (size_t i = 0; i < len;) {
        if (parse_special) {
            int hit = -1;
            for (int k = 0; k < 3; k++)
                if (!strncmp(text + i, st_special[k], strlen(st_special[k])) && i + strlen(st_special[k]) <= len) hit = k;
            if (hit >= 0) {
                if (qe_ids_push(out, 256 + hit)) return QE_ENOMEM;
                i += strlen(st_special[hit]);
                continue;
            }
        }
        if (qe_ids_push(out, (uint8_t)text[i])) return QE_ENOMEM;
        i++;
    }
    return QE_OK;
}

static char st_bytes[256];
int qe_token_bytes(const qe_tokenizer *t, int32_t id, const char **bytes, size_t *n) {
    if (id >= 0 && id < 256) {
        st_bytes[id] = (char)id;
        *bytes = &st_bytes[id];
        *n = 1;
        return QE_OK;
    }
    if (id >= 256 && id < ST_N) {
        *bytes = st_special[id - 256];
        *n = strlen(*bytes);
        return QE_OK;
    }
    return QE_EINVAL;
}
int32_t qe_token_lookup(const qe_tokenizer *t, const char *text) {
    for (int k = 0; k < 3; k++) if (!strcmp(text, st_special[k])) return 256 + k;
    return strlen(text) == 1 ? (uint8_t)text[0] : -1;
}

void qe_detok_init(qe_detok *d) { d->n_pending = 0; }

/* Length of the UTF-8 sequence a lead byte starts (0: not a valid lead byte). */
static int seq_len(uint8_t c) {
    return c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
}

int qe_detok_push(qe_detok *d, const qe_tokenizer *t, int32_t id, qe_buf *out) {
    const char *b;
    size_t n;
    if (qe_token_bytes(t, id, &b, &n)) return QE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)b[i];
        if (d->n_pending == 0) {
            int L = seq_len(c);
            if (L == 1) { if (qe_buf_append(out, &c, 1)) return QE_ENOMEM; continue; }
            if (L == 0) { if (qe_buf_append(out, "\xEF\xBF\xBD", 3)) return QE_ENOMEM; continue; }
            d->pending[d->n_pending++] = c;
            continue;
        }
        if ((c & 0xC0) != 0x80) { /* broken sequence: replace it, reprocess c */
            d->n_pending = 0;
            if (qe_buf_append(out, "\xEF\xBF\xBD", 3)) return QE_ENOMEM;
            i--;
            continue;
        }
        d->pending[d->n_pending++] = c;
        if (d->n_pending == seq_len(d->pending[0])) {
            if (qe_buf_append(out, d->pending, d->n_pending)) return QE_ENOMEM;
            d->n_pending = 0;
        }
    }
    return QE_OK;
}

int qe_detok_flush(qe_detok *d, qe_buf *out) {
    int rc = d->n_pending ? qe_buf_append(out, "\xEF\xBF\xBD", 3) : QE_OK;
    d->n_pending = 0;
    return rc;
}
