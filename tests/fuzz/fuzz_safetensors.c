/* fuzz_safetensors.c — libFuzzer target for the safetensors parser (src/safetensors.c). Beyond "no crash /
 * no sanitizer report": a parse that succeeds has every tensor inside the input, with bytes = elements x
 * element size, and no two tensors overlapping; a parse that fails always says why.
 * Build and run: make fuzz-safetensors FUZZ_S=60 (clang; mk/fuzz.mk). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "quant.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qe_safetensors *st = NULL;
    char err[QE_ERR_LEN] = "";
    int rc = qe_st_parse(data, size, &st, err);
    if (rc != QE_OK) {
        if (!err[0] || st) abort();
        return 0;
    }
    for (int i = 0; i < st->n_tensors; i++) {
        const qe_st_tensor *t = &st->tensors[i];
        size_t es = t->type == QE_TYPE_F32 ? 4 : 2;
        if (t->end > size - st->data_offset || (const uint8_t *)t->data + (t->end - t->begin) > data + size) abort();
        if (t->n_elem * es != t->end - t->begin) abort();
        for (int j = 0; j < i; j++) {
            const qe_st_tensor *u = &st->tensors[j];
            if (t->begin < u->end && u->begin < t->end && t->end > t->begin && u->end > u->begin) abort();
        }
    }
    qe_st_free(st);
    return 0;
}
