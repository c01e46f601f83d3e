/* safetensors.c — the pure safetensors parser (see safetensors.h). JSON through jansson. */
#include "safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

/* A header above this is not a real model's (Qwen2.5-7B's is ~30 KB); refusing it bounds the JSON parse. */
#define ST_HEADER_MAX (100u << 20)

typedef struct { const char *name; int type; int size; } st_dtype;
static const st_dtype k_dtypes[] = {
    {"F32", QE_TYPE_F32, 4}, {"F16", QE_TYPE_F16, 2}, {"BF16", QE_TYPE_BF16, 2},
    /* known to the format but not to qwen-edge: named in the error */
    {"F64", -1, 8}, {"I64", -1, 8}, {"U64", -1, 8}, {"I32", -1, 4}, {"U32", -1, 4}, {"I16", -1, 2}, {"U16", -1, 2},
    {"I8", -1, 1}, {"U8", -1, 1}, {"BOOL", -1, 1}, {"F8_E4M3", -1, 1}, {"F8_E5M2", -1, 1},
};

static int cmp_begin(const void *a, const void *b) {
    const qe_st_tensor *x = *(const qe_st_tensor *const *)a, *y = *(const qe_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

void qe_st_free(qe_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st);
}

const qe_st_tensor *qe_st_find(const qe_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

static int parse_tensor(const char *name, json_t *v, uint64_t data_len, qe_st_tensor *t, char *err) {
    if (!json_is_object(v)) return qe_errf(err, QE_EFORMAT, "tensor '%s': entry is not a JSON object", name);
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    if (!dt) return qe_errf(err, QE_EFORMAT, "tensor '%s': missing \"dtype\"", name);
    const st_dtype *d = NULL;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (!strcmp(k_dtypes[i].name, dt)) d = &k_dtypes[i];
    if (!d) return qe_errf(err, QE_EFORMAT, "tensor '%s': unknown dtype \"%.32s\"", name, dt);
    if (d->type < 0)
        return qe_errf(err, QE_EUNSUPPORTED, "tensor '%s': dtype %s is not supported (only BF16, F16 and F32 weights)", name, dt);
    json_t *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
    if (!json_is_array(shape)) return qe_errf(err, QE_EFORMAT, "tensor '%s': missing or bad \"shape\"", name);
    if (json_array_size(shape) > 4)
        return qe_errf(err, QE_EFORMAT, "tensor '%s': %zu dimensions (at most 4 supported)", name, json_array_size(shape));
    uint64_t n = 1;
    t->n_dims = (int)json_array_size(shape);
    for (int i = 0; i < 4; i++) t->shape[i] = 1;
    for (int i = 0; i < t->n_dims; i++) {
        json_t *e = json_array_get(shape, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return qe_errf(err, QE_EFORMAT, "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        t->shape[i] = json_integer_value(e);
        if (!qe_mul_ok(n, (uint64_t)t->shape[i], &n))
            return qe_errf(err, QE_EFORMAT, "tensor '%s': element count overflows", name);
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)) || json_integer_value(json_array_get(offs, 0)) < 0 ||
        json_integer_value(json_array_get(offs, 1)) < 0)
        return qe_errf(err, QE_EFORMAT, "tensor '%s': \"data_offsets\" must be [begin, end] (non-negative integers)", name);
    t->begin = (uint64_t)json_integer_value(json_array_get(offs, 0));
    t->end = (uint64_t)json_integer_value(json_array_get(offs, 1));
    if (t->begin > t->end)
        return qe_errf(err, QE_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] end before they begin", name,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_len)
        return qe_errf(err, QE_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] reach past the end of the data (%llu bytes): "
                       "truncated file?", name, (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)data_len);
    uint64_t bytes;
    if (!qe_mul_ok(n, (uint64_t)d->size, &bytes) || bytes != t->end - t->begin)
        return qe_errf(err, QE_EFORMAT, "tensor '%s': shape has %llu %s elements (%llu bytes) but data_offsets span %llu bytes",
                       name, (unsigned long long)n, dt, (unsigned long long)(n * (uint64_t)d->size),
                       (unsigned long long)(t->end - t->begin));
    t->type = d->type;
    t->n_elem = n;
    return QE_OK;
}

int qe_st_parse(const void *data, uint64_t len, qe_safetensors **out, char *err) {
    *out = NULL;
    const uint8_t *p = data;
    if (len < 8) return qe_errf(err, QE_EFORMAT, "file too short (%llu bytes) to be safetensors", (unsigned long long)len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen < 2 || hlen > len - 8)
        return qe_errf(err, QE_EFORMAT, "header length %llu does not fit the file (%llu bytes): not safetensors, or truncated",
                       (unsigned long long)hlen, (unsigned long long)len);
    if (hlen > ST_HEADER_MAX) return qe_errf(err, QE_EFORMAT, "header length %llu is implausibly large", (unsigned long long)hlen);
    if (p[8] != '{') return qe_errf(err, QE_EFORMAT, "header does not start with '{': not safetensors");
    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) return qe_errf(err, QE_EFORMAT, "header is not valid JSON (byte %d of the header: %s)", je.position, je.text);
    int rc = QE_OK;
    qe_safetensors *st = calloc(1, sizeof *st);
    qe_st_tensor **order = NULL;
    if (!st) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    if (!json_is_object(root)) { rc = qe_errf(err, QE_EFORMAT, "header is JSON but not an object"); goto fail; }
    st->base = p;
    st->size = len;
    st->data_offset = 8 + hlen;
    uint64_t data_len = len - st->data_offset;
    size_t cap = json_object_size(root);
    st->tensors = calloc(cap ? cap : 1, sizeof *st->tensors);
    if (!st->tensors) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) { rc = qe_errf(err, QE_EFORMAT, "\"__metadata__\" is not an object"); goto fail; }
            continue;
        }
        if (!key[0] || strlen(key) > 255) { rc = qe_errf(err, QE_EFORMAT, "a tensor name is empty or too long"); goto fail; }
        qe_st_tensor *t = &st->tensors[st->n_tensors];
        if ((rc = parse_tensor(key, v, data_len, t, err))) goto fail;
        if (!(t->name = strdup(key))) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
        t->data = p + st->data_offset + t->begin;
        st->n_tensors++;
    }
    /* no overlap: sort a view by begin and compare neighbours (empty tensors overlap nothing) */
    order = malloc((size_t)(st->n_tensors ? st->n_tensors : 1) * sizeof *order);
    if (!order) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    int m = 0;
    for (int i = 0; i < st->n_tensors; i++) if (st->tensors[i].end > st->tensors[i].begin) order[m++] = &st->tensors[i];
    qsort(order, (size_t)m, sizeof *order, cmp_begin);
    for (int i = 1; i < m; i++)
        if (order[i]->begin < order[i - 1]->end) {
            rc = qe_errf(err, QE_EFORMAT, "tensors '%s' and '%s' overlap in the file", order[i - 1]->name, order[i]->name);
            goto fail;
        }
    free(order);
    json_decref(root);
    *out = st;
    return QE_OK;
fail:
    free(order);
    json_decref(root);
    qe_st_free(st);
    return rc;
}
