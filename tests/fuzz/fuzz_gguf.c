/* fuzz_gguf.c — libFuzzer entry for the GGUF parser: any bytes must parse or fail with a message, never
 * crash, hang or read out of bounds (built with -fsanitize=fuzzer,address,undefined by mk/fuzz.mk). Every
 * getter is exercised on what parsed, including the string-array walk. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf.h"

static void count(void *ctx, uint64_t i, qe_str s) { *(size_t *)ctx += s.n + (size_t)i * 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    char err[QE_ERR_LEN];
    if (gguf_parse(data, size, &f, err) != QE_OK) {
        if (!memchr(err, 0, sizeof err) || !err[0]) __builtin_trap(); /* every failure says something */
        return 0;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        char key[256];
        size_t n = f->kv[i].key.n < sizeof key - 1 ? f->kv[i].key.n : sizeof key - 1;
        memcpy(key, f->kv[i].key.p, n);
        key[n] = 0;
        uint32_t u, t;
        float fl;
        bool b;
        qe_str s;
        uint64_t an;
        const void *ad;
        size_t total = 0;
        gguf_get_u32(f, key, &u, err);
        gguf_get_f32(f, key, &fl, err);
        gguf_get_bool(f, key, &b, err);
        gguf_get_str(f, key, &s, err);
        gguf_get_arr(f, key, &t, &an, &ad, err);
        gguf_get_arr_str(f, key, count, &total, err);
    }
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        /* first and last byte of every tensor must be inside the input */
        sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    (void)sink;
    gguf_free(f);
    return 0;
}
