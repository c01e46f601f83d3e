/* gguf.h — a pure GGUF (v2, v3) parser over (pointer, length), and the writer used by mkmodel/convert.
 *
 * gguf_parse() never reads outside [data, data+len) and validates everything before returning: header,
 * every key/value (types, string and array lengths), the tensor table (names, dims, types, offsets,
 * sizes with overflow checks, alignment, tensors inside the file, no overlap). On any problem it returns a
 * negative QE_E* code and one line in err saying what is wrong and where (byte offset). Opening and mapping
 * the file is mapfile.h's job; this file does no I/O (except the writer). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base.h"

typedef enum {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT
} gguf_type;

typedef struct {
    qe_str key;
    uint32_t type;          /* gguf_type */
    uint32_t arr_type;      /* element type when type == ARRAY */
    uint64_t arr_n;         /* element count when type == ARRAY */
    const uint8_t *data;    /* the value's bytes in the mapped file (for arrays: the first element) */
} gguf_kv;

typedef struct {
    qe_str name;
    uint32_t n_dims;
    int64_t ne[4];          /* ne[0] is the row length (contiguous), as in ggml; unused dims are 1 */
    uint32_t type;          /* qe_type */
    uint64_t offset;        /* relative to the data section */
    const void *data;       /* borrowed: points into the mapped file */
    uint64_t nbytes;
} gguf_tensor;

typedef struct {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;            /* owned array */
    gguf_tensor *tensors;   /* owned array */
    uint64_t alignment;
    uint64_t data_offset;   /* start of the tensor data section */
    const uint8_t *base;    /* borrowed: the whole file */
    uint64_t size;
} gguf_file;

int gguf_parse(const void *data, uint64_t len, gguf_file **out, char *err);
void gguf_free(gguf_file *f);

const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
/* Typed getters: QE_ENOTFOUND if the key is missing, QE_EFORMAT (with err) if its type does not fit.
 * Integer getters accept any integer type whose value fits. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, char *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, char *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, char *err);
int gguf_get_str(const gguf_file *f, const char *key, qe_str *out, char *err);
/* Array of strings: calls fn(ctx, index, string) for each element (validated already by gguf_parse). */
int gguf_get_arr_str(const gguf_file *f, const char *key, void (*fn)(void *ctx, uint64_t i, qe_str s), void *ctx, char *err);
/* Array of numbers: pointer to the packed elements (little-endian, unaligned access ok) and their type. */
int gguf_get_arr(const gguf_file *f, const char *key, uint32_t *type, uint64_t *n, const void **data, char *err);
/* "u32", "string", ... ("?" for unknown) and the byte size of a fixed-size value type (0 for string/array). */
const char *gguf_type_name(int type);
size_t gguf_type_size(int type);

/* --- writer ---------------------------------------------------------------------------------------------
 * Build metadata and a tensor table in memory, then stream the file: gguf_writer_write_header() writes
 * everything up to the data section; then write each tensor's bytes in the order they were added with
 * gguf_writer_write_tensor_data() (padding is handled). Tensor data is not held in memory. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
/* Any scalar type (v points to the value: a bool for BOOL, a NUL-terminated string for STRING) and any
 * array of non-arrays (v: packed elements; bool[] for BOOL; const char *const[] for STRING). */
int gguf_writer_set_scalar(gguf_writer *w, const char *key, int type, const void *v);
int gguf_writer_set_arr(gguf_writer *w, const char *key, int type, const void *v, uint64_t n);
/* ne[0] is the row length. Returns the tensor's index (>= 0) or a negative code. Setter errors (duplicate
 * key, out of memory) are also remembered and reported by gguf_writer_write_header. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *ne, int type);
int gguf_writer_write_header(gguf_writer *w, FILE *out, char *err);
/* May be called several times per tensor with consecutive chunks (so a large tensor is never held whole);
 * the padding follows once the tensor's last byte is written. */
int gguf_writer_write_tensor_data(gguf_writer *w, FILE *out, int index, const void *data, uint64_t nbytes, char *err);
