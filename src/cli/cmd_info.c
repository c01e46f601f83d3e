/* cmd_info.c — `qwen-edge info -m FILE`: prints a GGUF file's metadata (arrays summarised by element type,
 * length and first items) and its tensor table. A bad file gives one error line and exit status 1. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "gguf.h"
#include "mapfile.h"
#include "quant.h"

/* Prints s quoted, escaping control bytes and quotes, cut after `max` bytes. */
static void print_str(const char *p, size_t n, size_t max) {
    putchar('"');
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n > max) printf("... (%zu bytes)", n);
}

static void print_value(uint32_t type, const uint8_t *p) {
    switch (type) {
    case GGUF_TYPE_UINT8: printf("%u", p[0]); break;
    case GGUF_TYPE_INT8: printf("%d", (int8_t)p[0]); break;
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); printf("%u", v); break; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); printf("%d", v); break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); printf("%u", v); break; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); printf("%d", v); break; }
    case GGUF_TYPE_UINT64: { uint64_t v; memcpy(&v, p, 8); printf("%" PRIu64, v); break; }
    case GGUF_TYPE_INT64: { int64_t v; memcpy(&v, p, 8); printf("%" PRId64, v); break; }
    case GGUF_TYPE_FLOAT32: { float v; memcpy(&v, p, 4); printf("%g", v); break; }
    case GGUF_TYPE_FLOAT64: { double v; memcpy(&v, p, 8); printf("%g", v); break; }
    case GGUF_TYPE_BOOL: fputs(p[0] ? "true" : "false", stdout); break;
    case GGUF_TYPE_STRING: { uint64_t n; memcpy(&n, p, 8); print_str((const char *)p + 8, (size_t)n, 100); break; }
    }
}

/* Byte size of one element as stored (strings: length prefix + bytes). */
static uint64_t value_size(uint32_t type, const uint8_t *p) {
    if (type == GGUF_TYPE_STRING) { uint64_t n; memcpy(&n, p, 8); return 8 + n; }
    return gguf_type_size((int)type);
}

static void usage(FILE *out) {
    fprintf(out, "usage: qwen-edge info -m FILE.gguf\n\n"
                 "Prints the file's metadata (arrays: element type, length, first items) and its tensor table\n"
                 "(name, type, shape, offset in the data section, bytes).\n");
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) path = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else { fprintf(stderr, "qwen-edge info: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    if (!path) { usage(stderr); return 2; }
    char err[QE_ERR_LEN];
    qe_mapfile map;
    gguf_file *f = NULL;
    if (qe_mapfile_open(path, &map, err) != QE_OK) { fprintf(stderr, "qwen-edge info: %s\n", err); return 1; }
    if (gguf_parse(map.data, map.size, &f, err) != QE_OK) {
        fprintf(stderr, "qwen-edge info: %s: %s\n", path, err);
        qe_mapfile_close(&map);
        return 1;
    }
    printf("%s: GGUF v%u, %" PRIu64 " bytes, alignment %" PRIu64 ", data section at byte %" PRIu64 "\n", path,
           f->version, f->size, f->alignment, f->data_offset);
    printf("\nmetadata (%" PRIu64 " keys):\n", f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        printf("  %-42.*s ", (int)kv->key.n, kv->key.p);
        if (kv->type != GGUF_TYPE_ARRAY) {
            printf("%-8s ", gguf_type_name((int)kv->type));
            print_value(kv->type, kv->data);
        } else {
            printf("[%s] x %" PRIu64 ":", gguf_type_name((int)kv->arr_type), kv->arr_n);
            const uint8_t *p = kv->data;
            for (uint64_t j = 0; j < kv->arr_n && j < 5; j++) {
                printf(j ? ", " : " ");
                print_value(kv->arr_type, p);
                p += value_size(kv->arr_type, p);
            }
            if (kv->arr_n > 5) printf(", ...");
        }
        putchar('\n');
    }
    printf("\ntensors (%" PRIu64 "):\n", f->n_tensors);
    printf("  %-32s %-7s %-22s %14s %12s\n", "name", "type", "shape", "offset", "bytes");
    uint64_t total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char shape[64];
        int n = snprintf(shape, sizeof shape, "[%" PRId64, t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims; d++) n += snprintf(shape + n, sizeof shape - n, ", %" PRId64, t->ne[d]);
        snprintf(shape + n, sizeof shape - n, "]");
        printf("  %-32.*s %-7s %-22s %14" PRIu64 " %12" PRIu64 "\n", (int)t->name.n, t->name.p, qe_type_name((int)t->type),
               shape, t->offset, t->nbytes);
        total += t->nbytes;
    }
    printf("\ntotal tensor bytes: %" PRIu64 " (%.1f MiB)\n", total, total / 1048576.0);
    gguf_free(f);
    qe_mapfile_close(&map);
    return 0;
}
