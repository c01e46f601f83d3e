/* gguf_merge.c — one GGUF from the parts of a split GGUF (see gguf_merge.h).
 *
 * Every part is parsed and validated by gguf_parse. The metadata is part 1's, minus the split.* keys,
 * copied value by value with its original type; the tensors are all parts' tensors in part order, their
 * bytes streamed from the mapped parts (nothing large is held in memory). */
#include "gguf_merge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "mapfile.h"

/* A GGUF string (length + bytes, not NUL-terminated) as an owned C string; NULL for an embedded NUL. */
static char *cstr(const uint8_t *p, uint64_t *adv) {
    uint64_t n;
    memcpy(&n, p, 8);
    *adv = 8 + n;
    if (memchr(p + 8, 0, n)) return NULL;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p + 8, n);
    s[n] = 0;
    return s;
}

static int copy_kv(gguf_writer *w, const gguf_kv *kv, char *err) {
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)kv->key.n, kv->key.p);
    uint64_t adv;
    if (kv->type == GGUF_TYPE_STRING) {
        char *s = cstr(kv->data, &adv);
        if (!s) return qe_errf(err, QE_EFORMAT, "key %s: string with a NUL byte or out of memory", key);
        int rc = gguf_writer_set_scalar(w, key, GGUF_TYPE_STRING, s);
        free(s);
        return rc;
    }
    if (kv->type == GGUF_TYPE_BOOL) {
        bool b = kv->data[0] != 0;
        return gguf_writer_set_scalar(w, key, GGUF_TYPE_BOOL, &b);
    }
    if (kv->type != GGUF_TYPE_ARRAY) return gguf_writer_set_scalar(w, key, (int)kv->type, kv->data);
    if (kv->arr_type == GGUF_TYPE_ARRAY) return qe_errf(err, QE_EUNSUPPORTED, "key %s: nested arrays are not supported", key);
    if (kv->arr_type == GGUF_TYPE_STRING) {
        char **v = calloc(kv->arr_n ? kv->arr_n : 1, sizeof *v);
        if (!v) return qe_errf(err, QE_ENOMEM, "out of memory");
        const uint8_t *p = kv->data;
        int rc = QE_OK;
        for (uint64_t i = 0; i < kv->arr_n && rc == QE_OK; i++) {
            if (!(v[i] = cstr(p, &adv))) rc = qe_errf(err, QE_EFORMAT, "key %s[%llu]: string with a NUL byte or out of memory", key, (unsigned long long)i);
            p += adv;
        }
        if (rc == QE_OK) rc = gguf_writer_set_arr(w, key, GGUF_TYPE_STRING, v, kv->arr_n);
        for (uint64_t i = 0; i < kv->arr_n; i++) free(v[i]);
        free(v);
        return rc;
    }
    if (kv->arr_type == GGUF_TYPE_BOOL) {
        bool *b = malloc(kv->arr_n ? kv->arr_n : 1);
        if (!b) return qe_errf(err, QE_ENOMEM, "out of memory");
        for (uint64_t i = 0; i < kv->arr_n; i++) b[i] = kv->data[i] != 0;
        int rc = gguf_writer_set_arr(w, key, GGUF_TYPE_BOOL, b, kv->arr_n);
        free(b);
        return rc;
    }
    return gguf_writer_set_arr(w, key, (int)kv->arr_type, kv->data, kv->arr_n);
}

int qe_gguf_merge(const char *const *parts, int n, const char *out_path, char *err) {
    if (n < 1) return qe_errf(err, QE_EINVAL, "no parts to merge");
    qe_mapfile *maps = calloc((size_t)n, sizeof *maps);
    gguf_file **g = calloc((size_t)n, sizeof *g);
    gguf_writer *w = NULL;
    FILE *out = NULL;
    char part[4200] = "";
    int rc = QE_OK;
    if (!maps || !g) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        if ((rc = qe_mapfile_open(parts[i], &maps[i], err))) goto done;
        if ((rc = gguf_parse(maps[i].data, maps[i].size, &g[i], err))) { qe_err_prefix(err, "%s", parts[i]); goto done; }
        uint32_t no = 0, count = 0;
        /* split.no / split.count are u16 in llama.cpp's files; the getter accepts any integer that fits */
        if (gguf_get_u32(g[i], "split.no", &no, NULL) == QE_OK && gguf_get_u32(g[i], "split.count", &count, NULL) == QE_OK &&
            (no != (uint32_t)i || count != (uint32_t)n)) {
            rc = qe_errf(err, QE_EFORMAT, "%s says it is part %u of %u, expected part %d of %d", parts[i], no + 1, count, i + 1, n);
            goto done;
        }
    }
    if (!(w = gguf_writer_new())) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    for (uint64_t k = 0; k < g[0]->n_kv; k++) {
        const gguf_kv *kv = &g[0]->kv[k];
        if (kv->key.n >= 6 && !memcmp(kv->key.p, "split.", 6)) continue;
        if ((rc = copy_kv(w, kv, err))) goto done;
    }
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        for (uint64_t t = 0; t < g[i]->n_tensors; t++) {
            const gguf_tensor *tt = &g[i]->tensors[t];
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)tt->name.n, tt->name.p);
            for (int j = 0; j < i; j++)
                if (gguf_find_tensor(g[j], name)) { rc = qe_errf(err, QE_EFORMAT, "tensor %s is in two parts", name); goto done; }
            gguf_writer_add_tensor(w, name, (int)tt->n_dims, tt->ne, (int)tt->type);
            total++;
        }
    uint32_t want;
    if (gguf_get_u32(g[0], "split.tensors.count", &want, NULL) == QE_OK && want != total) {
        rc = qe_errf(err, QE_EFORMAT, "the parts hold %llu tensors, part 1 says %u: a part is missing or wrong",
                     (unsigned long long)total, want);
        goto done;
    }
    snprintf(part, sizeof part, "%s.part", out_path);
    if (!(out = fopen(part, "wb"))) { rc = qe_errf(err, QE_EIO, "cannot create %s: %s", part, strerror(errno)); goto done; }
    if ((rc = gguf_writer_write_header(w, out, err))) goto done;
    int idx = 0;
    for (int i = 0; i < n; i++)
        for (uint64_t t = 0; t < g[i]->n_tensors; t++, idx++)
            if ((rc = gguf_writer_write_tensor_data(w, out, idx, g[i]->tensors[t].data, g[i]->tensors[t].nbytes, err))) goto done;
    rc = qe_file_commit(&out, part, out_path, err);
done:
    if (out) fclose(out);
    if (part[0]) remove(part);
    gguf_writer_free(w);
    for (int i = 0; g && maps && i < n; i++) {
        gguf_free(g[i]);
        qe_mapfile_close(&maps[i]);
    }
    free(g);
    free(maps);
    return rc;
}
