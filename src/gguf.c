/* gguf.c — the GGUF parser (pure, over a byte range) and the streaming writer. See gguf.h.
 *
 * File layout (little-endian; v2 and v3 are identical on disk, v3 only adds big-endian files, which
 * announce themselves with a byte-swapped version and are rejected here):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x   { string key, u32 type, value }             string = u64 length + bytes (no NUL)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to `alignment` (general.alignment, default 32), then the data section; each tensor's offset is
 *   relative to the data section and a multiple of the alignment.
 *
 * gguf_kv.data points at the value's bytes in the file: for a scalar its bytes, for a string its u64 length
 * prefix, for an array its first element (a string element again starts with its length). Every length
 * has been checked against the file by gguf_parse, so the getters can walk them without bound checks. */
#include "gguf.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME: tensor names are at most 63 bytes */
#define GGUF_MAX_DIMS 4

static const char *const type_names[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t type_sizes[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ---- reading -------------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    uint64_t len, pos;
    char *err;
} reader;

static uint64_t rd_u64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd_u32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static int need(reader *r, uint64_t n, const char *what) {
    if (n > r->len - r->pos)
        return qe_errf(r->err, QE_EFORMAT, "truncated file: %s at byte %" PRIu64 " needs %" PRIu64
                       " bytes but only %" PRIu64 " remain", what, r->pos, n, r->len - r->pos);
    return QE_OK;
}

static int rd_u32(reader *r, uint32_t *v, const char *what) {
    int rc = need(r, 4, what);
    if (rc) return rc;
    *v = rd_u32_at(r->p + r->pos);
    r->pos += 4;
    return QE_OK;
}

static int rd_u64(reader *r, uint64_t *v, const char *what) {
    int rc = need(r, 8, what);
    if (rc) return rc;
    *v = rd_u64_at(r->p + r->pos);
    r->pos += 8;
    return QE_OK;
}

static int rd_str(reader *r, qe_str *s, const char *what) {
    uint64_t at = r->pos, n;
    int rc = rd_u64(r, &n, what);
    if (rc) return rc;
    if (n > r->len - r->pos)
        return qe_errf(r->err, QE_EFORMAT, "%s at byte %" PRIu64 ": string length %" PRIu64
                       " runs past the end of the file (%" PRIu64 " bytes remain)", what, at, n, r->len - r->pos);
    s->p = (const char *)r->p + r->pos;
    s->n = (size_t)n;
    r->pos += n;
    return QE_OK;
}

/* Skips over one value of `type` (not an array), checking it fits. */
static int skip_scalar(reader *r, uint32_t type, const char *what) {
    if (type == GGUF_TYPE_STRING) { qe_str s; return rd_str(r, &s, what); }
    int rc = need(r, type_sizes[type], what);
    if (rc) return rc;
    if (type == GGUF_TYPE_BOOL && r->p[r->pos] > 1)
        return qe_errf(r->err, QE_EFORMAT, "%s at byte %" PRIu64 ": bool value %u is neither 0 nor 1",
                       what, r->pos, r->p[r->pos]);
    r->pos += type_sizes[type];
    return QE_OK;
}

static int read_kv(reader *r, gguf_kv *kv, uint64_t index) {
    char what[96];
    snprintf(what, sizeof what, "key %" PRIu64, index);
    int rc = rd_str(r, &kv->key, what);
    if (rc) return rc;
    if (kv->key.n == 0) return qe_errf(r->err, QE_EFORMAT, "key %" PRIu64 " at byte %" PRIu64 " is empty", index, r->pos - 8);
    snprintf(what, sizeof what, "value of '%.*s'", (int)(kv->key.n > 60 ? 60 : kv->key.n), kv->key.p);
    uint64_t at = r->pos;
    if ((rc = rd_u32(r, &kv->type, what))) return rc;
    if (kv->type >= GGUF_TYPE_COUNT)
        return qe_errf(r->err, QE_EFORMAT, "%s at byte %" PRIu64 ": unknown value type %u", what, at, kv->type);
    if (kv->type != GGUF_TYPE_ARRAY) {
        kv->data = r->p + r->pos;
        return skip_scalar(r, kv->type, what);
    }
    at = r->pos;
    if ((rc = rd_u32(r, &kv->arr_type, what))) return rc;
    if (kv->arr_type == GGUF_TYPE_ARRAY)
        return qe_errf(r->err, QE_EUNSUPPORTED, "%s at byte %" PRIu64 ": arrays of arrays are not supported", what, at);
    if (kv->arr_type >= GGUF_TYPE_COUNT)
        return qe_errf(r->err, QE_EFORMAT, "%s at byte %" PRIu64 ": unknown array element type %u", what, at, kv->arr_type);
    at = r->pos;
    if ((rc = rd_u64(r, &kv->arr_n, what))) return rc;
    kv->data = r->p + r->pos;
    uint64_t remain = r->len - r->pos;
    /* Every element takes at least one byte (a string at least eight), so a count beyond that cannot fit:
     * say so now instead of walking a billion elements. */
    uint64_t min_elem = kv->arr_type == GGUF_TYPE_STRING ? 8 : type_sizes[kv->arr_type];
    if (kv->arr_n > remain / min_elem)
        return qe_errf(r->err, QE_EFORMAT, "%s at byte %" PRIu64 ": array of %" PRIu64 " %s values cannot fit in the %"
                       PRIu64 " bytes that remain", what, at, kv->arr_n, type_names[kv->arr_type], remain);
    if (kv->arr_type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            qe_str s;
            snprintf(what, sizeof what, "element %" PRIu64 " of '%.*s'", i, (int)(kv->key.n > 60 ? 60 : kv->key.n), kv->key.p);
            if ((rc = rd_str(r, &s, what))) return rc;
        }
    } else if (kv->arr_type == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if ((rc = skip_scalar(r, GGUF_TYPE_BOOL, what))) return rc;
    } else {
        r->pos += kv->arr_n * type_sizes[kv->arr_type]; /* fits: checked above */
    }
    return QE_OK;
}

static int read_tensor_info(reader *r, gguf_tensor *t, uint64_t index) {
    char what[128];
    snprintf(what, sizeof what, "name of tensor %" PRIu64, index);
    uint64_t at = r->pos;
    int rc = rd_str(r, &t->name, what);
    if (rc) return rc;
    if (t->name.n == 0) return qe_errf(r->err, QE_EFORMAT, "tensor %" PRIu64 " at byte %" PRIu64 " has an empty name", index, at);
    if (t->name.n >= GGUF_MAX_NAME)
        return qe_errf(r->err, QE_EFORMAT, "tensor %" PRIu64 " at byte %" PRIu64 ": name of %zu bytes is longer than %d",
                       index, at, t->name.n, GGUF_MAX_NAME - 1);
    int nl = (int)t->name.n;
    snprintf(what, sizeof what, "tensor '%.*s'", nl, t->name.p);
    at = r->pos;
    if ((rc = rd_u32(r, &t->n_dims, what))) return rc;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return qe_errf(r->err, QE_EFORMAT, "tensor '%.*s' at byte %" PRIu64 ": n_dims %u is not in 1..%d",
                       nl, t->name.p, at, t->n_dims, GGUF_MAX_DIMS);
    uint64_t n_elems = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        at = r->pos;
        if ((rc = rd_u64(r, &ne, what))) return rc;
        if (ne < 1 || ne > (uint64_t)INT64_MAX)
            return qe_errf(r->err, QE_EFORMAT, "tensor '%.*s' at byte %" PRIu64 ": dimension %u is %" PRId64 " (must be >= 1)",
                           nl, t->name.p, at, d, (int64_t)ne);
        if (!qe_mul_ok(n_elems, ne, &n_elems) || n_elems > (uint64_t)INT64_MAX)
            return qe_errf(r->err, QE_EFORMAT, "tensor '%.*s' at byte %" PRIu64 ": element count overflows (dimension %u = %" PRIu64 ")",
                           nl, t->name.p, at, d, ne);
        t->ne[d] = (int64_t)ne;
    }
    at = r->pos;
    if ((rc = rd_u32(r, &t->type, what))) return rc;
    const qe_type_traits *tt = qe_type_traits_get((int)t->type);
    if (!tt)
        return qe_errf(r->err, QE_EFORMAT, "tensor '%.*s' at byte %" PRIu64 ": unknown or unsupported tensor type %u",
                       nl, t->name.p, at, t->type);
    if (t->ne[0] % tt->block_size != 0)
        return qe_errf(r->err, QE_EFORMAT, "tensor '%.*s' at byte %" PRIu64 ": row length %" PRId64 " is not a multiple of %s's block size %d",
                       nl, t->name.p, at, t->ne[0], tt->name, tt->block_size);
    uint64_t nbytes = (uint64_t)(t->ne[0] / tt->block_size), n_rows = n_elems / (uint64_t)t->ne[0];
    if (!qe_mul_ok(nbytes, tt->type_size, &nbytes) || !qe_mul_ok(nbytes, n_rows, &nbytes))
        return qe_errf(r->err, QE_EFORMAT, "tensor '%.*s' at byte %" PRIu64 ": byte size overflows", nl, t->name.p, at);
    t->nbytes = nbytes;
    if ((rc = rd_u64(r, &t->offset, what))) return rc;
    return QE_OK;
}

static int cmp_str(qe_str a, qe_str b) {
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c ? c : (a.n < b.n ? -1 : a.n > b.n);
}
static int cmp_kv_key(const void *a, const void *b) { return cmp_str((*(gguf_kv *const *)a)->key, (*(gguf_kv *const *)b)->key); }
static int cmp_tensor_name(const void *a, const void *b) {
    return cmp_str((*(gguf_tensor *const *)a)->name, (*(gguf_tensor *const *)b)->name);
}
static int cmp_tensor_offset(const void *a, const void *b) {
    uint64_t x = (*(gguf_tensor *const *)a)->offset, y = (*(gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

/* Sorting pointers finds duplicates and overlaps in n log n, so a hostile file with millions of entries
 * cannot make validation quadratic. */
static int check_unique_keys(gguf_file *f, char *err) {
    if (f->n_kv < 2) return QE_OK;
    gguf_kv **v = qe_malloc(f->n_kv * sizeof *v);
    if (!v) return qe_errf(err, QE_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < f->n_kv; i++) v[i] = &f->kv[i];
    qsort(v, f->n_kv, sizeof *v, cmp_kv_key);
    int rc = QE_OK;
    for (uint64_t i = 1; i < f->n_kv && !rc; i++)
        if (cmp_str(v[i - 1]->key, v[i]->key) == 0)
            rc = qe_errf(err, QE_EFORMAT, "duplicate key '%.*s' (at bytes %" PRIu64 " and %" PRIu64 ")",
                         (int)(v[i]->key.n > 100 ? 100 : v[i]->key.n), v[i]->key.p,
                         (uint64_t)((const uint8_t *)v[i - 1]->key.p - f->base - 8),
                         (uint64_t)((const uint8_t *)v[i]->key.p - f->base - 8));
    free(v);
    return rc;
}

/* Byte offset of a tensor's info record (its name's length prefix). */
static uint64_t info_at(const gguf_file *f, const gguf_tensor *t) { return (uint64_t)((const uint8_t *)t->name.p - f->base - 8); }

static int check_tensors(gguf_file *f, char *err) {
    if (f->n_tensors == 0) return QE_OK;
    gguf_tensor **v = qe_malloc(f->n_tensors * sizeof *v);
    if (!v) return qe_errf(err, QE_ENOMEM, "out of memory");
    int rc = QE_OK;
    for (uint64_t i = 0; i < f->n_tensors; i++) v[i] = &f->tensors[i];
    qsort(v, f->n_tensors, sizeof *v, cmp_tensor_name);
    for (uint64_t i = 1; i < f->n_tensors && !rc; i++)
        if (cmp_str(v[i - 1]->name, v[i]->name) == 0)
            rc = qe_errf(err, QE_EFORMAT, "duplicate tensor name '%.*s' (tensor infos at bytes %" PRIu64 " and %" PRIu64 ")",
                         (int)v[i]->name.n, v[i]->name.p, info_at(f, v[i - 1]), info_at(f, v[i]));
    if (rc) goto out;
    uint64_t data_len = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors && !rc; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t end;
        if (t->offset % f->alignment)
            rc = qe_errf(err, QE_EFORMAT, "tensor '%.*s' (info at byte %" PRIu64 "): offset %" PRIu64
                         " is not a multiple of the alignment %" PRIu64, (int)t->name.n, t->name.p, info_at(f, t), t->offset, f->alignment);
        else if (!qe_add_ok(t->offset, t->nbytes, &end) || end > data_len)
            rc = qe_errf(err, QE_EFORMAT, "tensor '%.*s' (info at byte %" PRIu64 "): data at offset %" PRIu64 " + %" PRIu64
                         " bytes lies outside the file (the data section has %" PRIu64 " bytes from byte %" PRIu64 ")",
                         (int)t->name.n, t->name.p, info_at(f, t), t->offset, t->nbytes, data_len, f->data_offset);
        else t->data = f->base + f->data_offset + t->offset;
    }
    if (rc) goto out;
    qsort(v, f->n_tensors, sizeof *v, cmp_tensor_offset);
    for (uint64_t i = 1; i < f->n_tensors && !rc; i++)
        if (v[i - 1]->offset + v[i - 1]->nbytes > v[i]->offset)
            rc = qe_errf(err, QE_EFORMAT, "tensors '%.*s' and '%.*s' overlap (data offsets %" PRIu64 " + %" PRIu64 " > %" PRIu64
                         "; infos at bytes %" PRIu64 " and %" PRIu64 ")", (int)v[i - 1]->name.n, v[i - 1]->name.p,
                         (int)v[i]->name.n, v[i]->name.p, v[i - 1]->offset, v[i - 1]->nbytes, v[i]->offset,
                         info_at(f, v[i - 1]), info_at(f, v[i]));
out:
    free(v);
    return rc;
}

int gguf_parse(const void *data, uint64_t len, gguf_file **out, char *err) {
    *out = NULL;
    reader r = {data, len, 0, err};
    gguf_file *f = NULL;
    int rc;
    if (len < 4 || memcmp(data, GGUF_MAGIC, 4) != 0)
        return qe_errf(err, QE_EFORMAT, "not a GGUF file (bad magic at byte 0%s)", len < 4 ? ": file shorter than 4 bytes" : "");
    r.pos = 4;
    uint32_t version;
    if ((rc = rd_u32(&r, &version, "version"))) return rc;
    if (version == 1)
        return qe_errf(err, QE_EUNSUPPORTED, "GGUF version 1 is not supported (only 2 and 3); re-convert the model with a newer llama.cpp");
    if (version != 2 && version != 3) {
        if ((version & 0xffff) == 0 && version != 0)
            return qe_errf(err, QE_EUNSUPPORTED, "big-endian GGUF file (version bytes 0x%08x at byte 4) is not supported", version);
        return qe_errf(err, QE_EUNSUPPORTED, "GGUF version %u at byte 4 is not supported (only 2 and 3)", version);
    }
    uint64_t n_tensors, n_kv;
    if ((rc = rd_u64(&r, &n_tensors, "tensor count"))) return rc;
    if ((rc = rd_u64(&r, &n_kv, "key/value count"))) return rc;
    /* Smallest possible entries: a kv is a 1-byte key (8 + 1), a type (4) and a 1-byte value; a tensor info
     * is a 1-byte name, n_dims, one dimension, type and offset. Larger counts cannot be right. */
    if (n_kv > (len - r.pos) / 14)
        return qe_errf(err, QE_EFORMAT, "key/value count %" PRIu64 " at byte 16 cannot fit in a %" PRIu64 "-byte file", n_kv, len);
    if (n_tensors > (len - r.pos) / 33)
        return qe_errf(err, QE_EFORMAT, "tensor count %" PRIu64 " at byte 8 cannot fit in a %" PRIu64 "-byte file", n_tensors, len);

    f = qe_calloc(1, sizeof *f);
    if (!f) return qe_errf(err, QE_ENOMEM, "out of memory");
    f->version = version;
    f->base = data;
    f->size = len;
    f->n_kv = n_kv;
    f->n_tensors = n_tensors;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    f->kv = qe_calloc(n_kv, sizeof *f->kv);
    f->tensors = qe_calloc(n_tensors, sizeof *f->tensors);
    if (!f->kv || !f->tensors) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }

    for (uint64_t i = 0; i < n_kv; i++)
        if ((rc = read_kv(&r, &f->kv[i], i))) goto fail;
    if ((rc = check_unique_keys(f, err))) goto fail;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        uint32_t a;
        if ((rc = gguf_get_u32(f, "general.alignment", &a, err))) goto fail;
        if (a == 0 || (a & (a - 1)))
            { rc = qe_errf(err, QE_EFORMAT, "general.alignment = %u at byte %" PRIu64 " is not a power of two", a,
                           (uint64_t)(al->data - f->base)); goto fail; }
        f->alignment = a;
    }

    for (uint64_t i = 0; i < n_tensors; i++)
        if ((rc = read_tensor_info(&r, &f->tensors[i], i))) goto fail;
    uint64_t pad = (f->alignment - r.pos % f->alignment) % f->alignment;
    f->data_offset = r.pos + pad;
    if (f->data_offset > len) {
        if (n_tensors) {
            rc = qe_errf(err, QE_EFORMAT, "truncated file: the data section would start at byte %" PRIu64 " but the file has %" PRIu64 " bytes",
                         f->data_offset, len);
            goto fail;
        }
        f->data_offset = len; /* no tensors: a writer may omit the final padding */
    }
    if ((rc = check_tensors(f, err))) goto fail;
    *out = f;
    return QE_OK;
fail:
    gguf_free(f);
    return rc;
}

void gguf_free(gguf_file *f) {
    if (!f) return;
    free(f->kv);
    free(f->tensors);
    free(f);
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (qe_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (qe_str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* Reads an integer value of any integer type as a signed 128-bit-safe pair (neg flag + magnitude). */
static bool kv_int(uint32_t type, const uint8_t *p, bool *neg, uint64_t *mag) {
    int64_t s = 0;
    *neg = false;
    switch (type) {
    case GGUF_TYPE_UINT8: *mag = p[0]; return true;
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); *mag = v; return true; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); *mag = v; return true; }
    case GGUF_TYPE_UINT64: { uint64_t v; memcpy(&v, p, 8); *mag = v; return true; }
    case GGUF_TYPE_INT8: s = (int8_t)p[0]; break;
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); s = v; break; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); s = v; break; }
    case GGUF_TYPE_INT64: { int64_t v; memcpy(&v, p, 8); s = v; break; }
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

static int type_err(const gguf_kv *kv, const char *want, char *err) {
    const char *have = kv->type < GGUF_TYPE_COUNT ? type_names[kv->type] : "?";
    return qe_errf(err, QE_EFORMAT, "key '%.*s' is %s%s%s, expected %s", (int)kv->key.n, kv->key.p, have,
                   kv->type == GGUF_TYPE_ARRAY ? " of " : "", kv->type == GGUF_TYPE_ARRAY ? type_names[kv->arr_type] : "", want);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, char *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return qe_errf(err, QE_ENOTFOUND, "key '%s' not found", key);
    bool neg;
    uint64_t mag;
    if (!kv_int(kv->type, kv->data, &neg, &mag)) return type_err(kv, "an integer", err);
    if (neg || mag > UINT32_MAX)
        return qe_errf(err, QE_EFORMAT, "key '%s' = %s%" PRIu64 " does not fit in 0..%u", key, neg ? "-" : "", mag, UINT32_MAX);
    *out = (uint32_t)mag;
    return QE_OK;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, char *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return qe_errf(err, QE_ENOTFOUND, "key '%s' not found", key);
    if (kv->type == GGUF_TYPE_FLOAT32) { memcpy(out, kv->data, 4); return QE_OK; }
    if (kv->type == GGUF_TYPE_FLOAT64) { double d; memcpy(&d, kv->data, 8); *out = (float)d; return QE_OK; }
    return type_err(kv, "a float", err);
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, char *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return qe_errf(err, QE_ENOTFOUND, "key '%s' not found", key);
    if (kv->type != GGUF_TYPE_BOOL) return type_err(kv, "bool", err);
    *out = kv->data[0] != 0;
    return QE_OK;
}

int gguf_get_str(const gguf_file *f, const char *key, qe_str *out, char *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return qe_errf(err, QE_ENOTFOUND, "key '%s' not found", key);
    if (kv->type != GGUF_TYPE_STRING) return type_err(kv, "string", err);
    out->n = (size_t)rd_u64_at(kv->data);
    out->p = (const char *)kv->data + 8;
    return QE_OK;
}

int gguf_get_arr_str(const gguf_file *f, const char *key, void (*fn)(void *ctx, uint64_t i, qe_str s), void *ctx, char *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return qe_errf(err, QE_ENOTFOUND, "key '%s' not found", key);
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING) return type_err(kv, "array of string", err);
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        qe_str s = {(const char *)p + 8, (size_t)rd_u64_at(p)};
        fn(ctx, i, s);
        p += 8 + s.n;
    }
    return QE_OK;
}

int gguf_get_arr(const gguf_file *f, const char *key, uint32_t *type, uint64_t *n, const void **data, char *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return qe_errf(err, QE_ENOTFOUND, "key '%s' not found", key);
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type == GGUF_TYPE_STRING) return type_err(kv, "array of numbers", err);
    *type = kv->arr_type;
    *n = kv->arr_n;
    *data = kv->data;
    return QE_OK;
}

const char *gguf_type_name(int type) { return type >= 0 && type < GGUF_TYPE_COUNT ? type_names[type] : "?"; }
size_t gguf_type_size(int type) { return type >= 0 && type < GGUF_TYPE_COUNT ? type_sizes[type] : 0; }

/* ---- writing -------------------------------------------------------------------------------------- */

typedef struct {
    char *name;
    int n_dims;
    int64_t ne[4];
    int type;
    uint64_t offset, nbytes;
} wtensor;

struct gguf_writer {
    qe_buf kv;           /* serialised key/value entries */
    char **keys;         /* for the duplicate check */
    uint64_t n_kv;
    wtensor *t;
    uint64_t n_tensors, cap_tensors;
    uint64_t data_size;  /* bytes of the data section so far (aligned) */
    int bad;             /* a setter failed (out of memory, duplicate): the header write reports it */
    char bad_msg[QE_ERR_LEN];
    /* streaming state */
    bool header_done;
    uint64_t next, written; /* tensor being written and bytes of it written so far */
};

#define W_ALIGN GGUF_DEFAULT_ALIGNMENT

gguf_writer *gguf_writer_new(void) { return qe_calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    qe_buf_free(&w->kv);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

static int w_fail(gguf_writer *w, int code, const char *msg, const char *key) {
    if (!w->bad) { w->bad = code; snprintf(w->bad_msg, sizeof w->bad_msg, "%s '%s'", msg, key); }
    return code;
}

/* Starts an entry: checks the key is new, appends key and type. */
static int w_begin(gguf_writer *w, const char *key, uint32_t type) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return w_fail(w, QE_EINVAL, "duplicate key", key);
    char **k = realloc(w->keys, (w->n_kv + 1) * sizeof *k);
    if (!k) return w_fail(w, QE_ENOMEM, "out of memory adding", key);
    w->keys = k;
    if (!(k[w->n_kv] = strdup(key))) return w_fail(w, QE_ENOMEM, "out of memory adding", key);
    w->n_kv++;
    uint64_t n = strlen(key);
    if (qe_buf_append(&w->kv, &n, 8) || qe_buf_append(&w->kv, key, n) || qe_buf_append(&w->kv, &type, 4))
        return w_fail(w, QE_ENOMEM, "out of memory adding", key);
    return QE_OK;
}

static int w_bytes(gguf_writer *w, const char *key, const void *p, uint64_t n) {
    if (qe_buf_append(&w->kv, p, n)) return w_fail(w, QE_ENOMEM, "out of memory adding", key);
    return QE_OK;
}

static int w_string(gguf_writer *w, const char *key, const char *s) {
    uint64_t n = strlen(s);
    int rc = w_bytes(w, key, &n, 8);
    return rc ? rc : w_bytes(w, key, s, n);
}

int gguf_writer_set_scalar(gguf_writer *w, const char *key, int type, const void *v) {
    if (type < 0 || type >= GGUF_TYPE_COUNT || type == GGUF_TYPE_ARRAY) return w_fail(w, QE_EINVAL, "bad value type for", key);
    int rc = w_begin(w, key, (uint32_t)type);
    if (rc) return rc;
    if (type == GGUF_TYPE_STRING) return w_string(w, key, (const char *)v);
    if (type == GGUF_TYPE_BOOL) { uint8_t b = *(const bool *)v; return w_bytes(w, key, &b, 1); }
    return w_bytes(w, key, v, type_sizes[type]);
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, int type, const void *v, uint64_t n) {
    if (type < 0 || type >= GGUF_TYPE_COUNT || type == GGUF_TYPE_ARRAY) return w_fail(w, QE_EINVAL, "bad element type for", key);
    int rc = w_begin(w, key, GGUF_TYPE_ARRAY);
    uint32_t t = (uint32_t)type;
    if (rc || (rc = w_bytes(w, key, &t, 4)) || (rc = w_bytes(w, key, &n, 8))) return rc;
    if (type == GGUF_TYPE_STRING) {
        const char *const *s = v;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = w_string(w, key, s[i]))) return rc;
        return QE_OK;
    }
    if (type == GGUF_TYPE_BOOL) {
        const bool *b = v;
        for (uint64_t i = 0; i < n; i++) {
            uint8_t x = b[i];
            if ((rc = w_bytes(w, key, &x, 1))) return rc;
        }
        return QE_OK;
    }
    return w_bytes(w, key, v, n * type_sizes[type]);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { return gguf_writer_set_scalar(w, key, GGUF_TYPE_UINT32, &v); }
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { return gguf_writer_set_scalar(w, key, GGUF_TYPE_INT32, &v); }
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { return gguf_writer_set_scalar(w, key, GGUF_TYPE_FLOAT32, &v); }
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) { return gguf_writer_set_scalar(w, key, GGUF_TYPE_BOOL, &v); }
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) { return gguf_writer_set_scalar(w, key, GGUF_TYPE_STRING, v); }
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_TYPE_STRING, v, n);
}
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_TYPE_INT32, v, n);
}
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_TYPE_FLOAT32, v, n);
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *ne, int type) {
    if (w->header_done) return w_fail(w, QE_EINVAL, "tensor added after the header was written:", name);
    size_t nl = strlen(name);
    if (nl == 0 || nl >= GGUF_MAX_NAME) return w_fail(w, QE_EINVAL, "tensor name empty or too long:", name);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) return w_fail(w, QE_EINVAL, "bad n_dims for tensor", name);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->t[i].name, name)) return w_fail(w, QE_EINVAL, "duplicate tensor", name);
    uint64_t rows = 1;
    for (int d = 1; d < n_dims; d++) {
        if (ne[d] < 1 || !qe_mul_ok(rows, (uint64_t)ne[d], &rows)) return w_fail(w, QE_EINVAL, "bad shape for tensor", name);
    }
    size_t row = ne[0] >= 1 ? qe_row_size(type, ne[0]) : 0;
    uint64_t nbytes;
    if (!row || !qe_mul_ok(row, rows, &nbytes)) return w_fail(w, QE_EINVAL, "bad type or row length for tensor", name);
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return w_fail(w, QE_ENOMEM, "out of memory adding tensor", name);
        w->t = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->t[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return w_fail(w, QE_ENOMEM, "out of memory adding tensor", name);
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->offset = w->data_size;
    t->nbytes = nbytes;
    w->data_size += (nbytes + W_ALIGN - 1) / W_ALIGN * W_ALIGN;
    return (int)w->n_tensors++;
}

static int w_write(FILE *out, const void *p, uint64_t n, char *err) {
    if (n && fwrite(p, 1, n, out) != n) return qe_errf(err, QE_EIO, "write failed (disk full?)");
    return QE_OK;
}

static int w_pad(FILE *out, uint64_t pos, char *err) {
    static const uint8_t zeros[W_ALIGN];
    return w_write(out, zeros, (W_ALIGN - pos % W_ALIGN) % W_ALIGN, err);
}

int gguf_writer_write_header(gguf_writer *w, FILE *out, char *err) {
    if (w->bad) return qe_errf(err, w->bad, "gguf writer: %s", w->bad_msg);
    if (w->header_done) return qe_errf(err, QE_EINVAL, "gguf writer: header already written");
    qe_buf b = {0};
    uint32_t version = 3;
    int rc = QE_ENOMEM;
    if (qe_buf_append(&b, GGUF_MAGIC, 4) || qe_buf_append(&b, &version, 4) || qe_buf_append(&b, &w->n_tensors, 8) ||
        qe_buf_append(&b, &w->n_kv, 8) || qe_buf_append(&b, w->kv.p ? w->kv.p : "", w->kv.n))
        goto oom;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
        if (qe_buf_append(&b, &nl, 8) || qe_buf_append(&b, t->name, nl) || qe_buf_append(&b, &nd, 4) ||
            qe_buf_append(&b, t->ne, 8 * nd) || qe_buf_append(&b, &ty, 4) || qe_buf_append(&b, &t->offset, 8))
            goto oom;
    }
    if ((rc = w_write(out, b.p, b.n, err)) || (rc = w_pad(out, b.n, err))) goto done;
    w->header_done = true;
    rc = QE_OK;
    goto done;
oom:
    rc = qe_errf(err, QE_ENOMEM, "gguf writer: out of memory");
done:
    qe_buf_free(&b);
    return rc;
}

int gguf_writer_write_tensor_data(gguf_writer *w, FILE *out, int index, const void *data, uint64_t nbytes, char *err) {
    if (!w->header_done) return qe_errf(err, QE_EINVAL, "gguf writer: tensor data before the header");
    if (index < 0 || (uint64_t)index != w->next || w->next >= w->n_tensors)
        return qe_errf(err, QE_EINVAL, "gguf writer: tensor %d written out of order (expected %" PRIu64 ")", index, w->next);
    wtensor *t = &w->t[index];
    if (nbytes > t->nbytes - w->written)
        return qe_errf(err, QE_EINVAL, "gguf writer: %" PRIu64 " bytes for tensor '%s' exceed its size %" PRIu64,
                       w->written + nbytes, t->name, t->nbytes);
    int rc = w_write(out, data, nbytes, err);
    if (rc) return rc;
    w->written += nbytes;
    if (w->written == t->nbytes) {
        if ((rc = w_pad(out, t->nbytes, err))) return rc;
        w->next++;
        w->written = 0;
    }
    return QE_OK;
}
