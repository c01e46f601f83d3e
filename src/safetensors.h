/* safetensors.h — a pure parser of the safetensors format over (pointer, length), same contract as gguf.h:
 * it never reads outside [data, data+len), does no I/O, and validates everything before returning.
 *
 * Format: 8-byte little-endian header length H, then H bytes of JSON
 *   {"__metadata__": {...}, "<name>": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, ...}
 * then the data section; offsets are relative to its start (8 + H). Checked: H within the file and sane,
 * the JSON itself, each dtype (BF16 / F16 / F32 supported; other known dtypes are named in the error),
 * shapes (non-negative, at most 4 dims), begin <= end inside the data section, bytes == elements x size,
 * and no two tensors overlapping. Errors name the tensor and what is wrong. */
#pragma once
#include <stdint.h>

#include "base.h"

typedef struct {
    char *name;          /* owned */
    int type;            /* QE_TYPE_F32, QE_TYPE_F16 or QE_TYPE_BF16 (quant.h) */
    int n_dims;          /* 1..4 (0 for a scalar) */
    int64_t shape[4];    /* as in the file: shape[0] is the outermost; a 2-D weight is [out, in] */
    uint64_t n_elem;
    uint64_t begin, end; /* byte offsets within the data section */
    const void *data;    /* borrowed: base + data_offset + begin */
} qe_st_tensor;

typedef struct {
    qe_st_tensor *tensors; /* owned array, in header order */
    int n_tensors;
    const uint8_t *base;   /* borrowed: the whole file */
    uint64_t size;
    uint64_t data_offset;  /* 8 + header length */
} qe_safetensors;

int qe_st_parse(const void *data, uint64_t len, qe_safetensors **out, char *err);
void qe_st_free(qe_safetensors *st);
const qe_st_tensor *qe_st_find(const qe_safetensors *st, const char *name);
