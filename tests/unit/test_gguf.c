/* test_gguf.c — the GGUF parser on hand-built good and bad files (one test per kind of damage, each
 * checking the error names the problem), every truncation of a valid file, and writer -> parser round
 * trips of every metadata type and of tensor data. */
#include <stdint.h>

#include "base.h"
#include "gguf.h"
#include "mapfile.h"
#include "quant.h"
#include "test.h"

/* ---- a little byte builder --------------------------------------------------------------------------- */

typedef struct { uint8_t *p; size_t n, cap; } bb;
static void put(bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(bb *b, uint32_t v) { put(b, &v, 4); }
static void u64(bb *b, uint64_t v) { put(b, &v, 8); }
static void str(bb *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void zeros(bb *b, size_t n) { while (n--) put(b, "", 1); }
static void pad(bb *b, size_t a) { zeros(b, (a - b->n % a) % a); }
static void header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4); u32(b, version); u64(b, n_tensors); u64(b, n_kv);
}
static void kv_str(bb *b, const char *k, const char *v) { str(b, k); u32(b, GGUF_TYPE_STRING); str(b, v); }
static void kv_u32(bb *b, const char *k, uint32_t v) { str(b, k); u32(b, GGUF_TYPE_UINT32); u32(b, v); }
static void tinfo(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(b, name); u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) u64(b, ne[i]);
    u32(b, type); u64(b, off);
}

/* A valid file: 2 keys, tensors "a" (f32 [8]) at 0 and "b" (q8_0 [32, 2]) at 32, data 32 + 68 bytes. */
static bb valid_file(void) {
    bb b = {0};
    header(&b, 3, 2, 2);
    kv_str(&b, "general.architecture", "qwen2");
    kv_u32(&b, "qwen2.block_count", 24);
    tinfo(&b, "a", 1, (uint64_t[]){8}, QE_TYPE_F32, 0);
    tinfo(&b, "b", 2, (uint64_t[]){32, 2}, QE_TYPE_Q8_0, 32);
    pad(&b, 32);
    for (int i = 0; i < 8; i++) { float f = (float)i; put(&b, &f, 4); }
    zeros(&b, 68);
    return b;
}

/* Parses b and expects failure with every `want` substring (case-sensitive) in the message. */
static void expect_fail(bb *b, const char *want, const char *want2) {
    gguf_file *f = NULL;
    char err[QE_ERR_LEN] = "";
    int rc = gguf_parse(b->p, b->n, &f, err);
    if (getenv("QE_TEST_VERBOSE")) printf("    error: %s\n", err);
    CHECKF(rc < 0, "parse succeeded, expected an error mentioning '%s'", want);
    CHECK(f == NULL);
    CHECKF(strstr(err, want) != NULL, "error '%s' does not mention '%s'", err, want);
    if (want2) CHECKF(strstr(err, want2) != NULL, "error '%s' does not mention '%s'", err, want2);
    CHECKF(strchr(err, '\n') == NULL, "error is not one line: '%s'", err);
    gguf_free(f);
    free(b->p);
}

/* ---- good files ---------------------------------------------------------------------------------------- */

TEST(valid_file_parses) {
    bb b = valid_file();
    gguf_file *f = NULL;
    char err[QE_ERR_LEN] = "";
    CHECKF(gguf_parse(b.p, b.n, &f, err) == 0, "%s", err);
    if (f) {
        CHECK_EQ_INT(f->version, 3);
        CHECK_EQ_INT(f->n_kv, 2);
        CHECK_EQ_INT(f->n_tensors, 2);
        CHECK_EQ_INT(f->alignment, 32);
        CHECK_EQ_INT(f->data_offset % 32, 0);
        qe_str s;
        CHECK(gguf_get_str(f, "general.architecture", &s, err) == 0 && qe_str_eq(s, "qwen2"));
        uint32_t n;
        CHECK(gguf_get_u32(f, "qwen2.block_count", &n, err) == 0 && n == 24);
        CHECK(gguf_get_u32(f, "missing", &n, err) == QE_ENOTFOUND);
        CHECK(gguf_get_u32(f, "general.architecture", &n, err) == QE_EFORMAT);
        CHECK(strstr(err, "general.architecture") && strstr(err, "string"));
        const gguf_tensor *a = gguf_find_tensor(f, "a"), *bt = gguf_find_tensor(f, "b");
        CHECK(a && bt && !gguf_find_tensor(f, "c"));
        if (a && bt) {
            CHECK_EQ_INT(a->nbytes, 32);
            CHECK_EQ_INT(bt->nbytes, 68);
            CHECK_EQ_INT(bt->ne[0], 32);
            CHECK_EQ_INT(bt->ne[1], 2);
            CHECK_EQ_INT(bt->ne[2], 1);
            CHECK(((const float *)a->data)[3] == 3.0f);
            CHECK((const uint8_t *)bt->data == b.p + f->data_offset + 32);
        }
    }
    gguf_free(f);
    /* v2 is the same layout */
    b.p[4] = 2;
    CHECKF(gguf_parse(b.p, b.n, &f, err) == 0, "%s", err);
    gguf_free(f);
    free(b.p);
}

TEST(every_truncation_fails_cleanly) {
    bb b = valid_file();
    for (size_t n = 0; n < b.n; n++) {
        gguf_file *f = NULL;
        char err[QE_ERR_LEN] = "";
        uint8_t *copy = malloc(n + 1); /* exact-size copy so a read past n is a real out-of-bounds read */
        memcpy(copy, b.p, n);
        int rc = gguf_parse(copy, n, &f, err);
        CHECKF(rc < 0 && f == NULL && err[0], "truncated to %zu bytes: rc %d", n, rc);
        free(copy);
    }
    free(b.p);
}

/* ---- one test per kind of damage ------------------------------------------------------------------------ */

TEST(bad_magic) {
    bb b = valid_file();
    b.p[0] = 'X';
    expect_fail(&b, "not a GGUF file", "magic");
}

TEST(version_1) {
    bb b = valid_file();
    b.p[4] = 1;
    expect_fail(&b, "version 1", "not supported");
    b = valid_file();
    b.p[4] = 4;
    expect_fail(&b, "version 4", NULL);
}

TEST(truncated_header) {
    bb b = {0};
    put(&b, "GGUF", 4); u32(&b, 3); u32(&b, 0);
    expect_fail(&b, "truncated", "tensor count");
}

TEST(truncated_kv) {
    bb b = {0};
    header(&b, 3, 0, 1);
    str(&b, "general.name"); u32(&b, GGUF_TYPE_UINT64); u32(&b, 7); /* 4 of the 8 value bytes */
    expect_fail(&b, "truncated", "general.name");
}

TEST(string_length_past_end) {
    bb b = {0};
    header(&b, 3, 0, 1);
    str(&b, "general.name"); u32(&b, GGUF_TYPE_STRING); u64(&b, 1000); put(&b, "abc", 3);
    expect_fail(&b, "string length 1000", "past the end");
}

TEST(huge_array_count) {
    bb b = {0};
    header(&b, 3, 0, 1);
    str(&b, "tokenizer.ggml.tokens"); u32(&b, GGUF_TYPE_ARRAY); u32(&b, GGUF_TYPE_STRING); u64(&b, UINT64_MAX / 2);
    zeros(&b, 64);
    expect_fail(&b, "cannot fit", "tokenizer.ggml.tokens");
    b = (bb){0};
    header(&b, 3, 0, 1);
    str(&b, "arr"); u32(&b, GGUF_TYPE_ARRAY); u32(&b, GGUF_TYPE_UINT64); u64(&b, (UINT64_MAX / 8) + 2); /* n*8 overflows */
    zeros(&b, 64);
    expect_fail(&b, "cannot fit", NULL);
}

TEST(unknown_value_type) {
    bb b = {0};
    header(&b, 3, 0, 1);
    str(&b, "k"); u32(&b, 13); u32(&b, 0);
    expect_fail(&b, "unknown value type 13", "byte");
    b = (bb){0};
    header(&b, 3, 0, 1);
    str(&b, "k"); u32(&b, GGUF_TYPE_ARRAY); u32(&b, 99); u64(&b, 1); u32(&b, 0);
    expect_fail(&b, "unknown array element type 99", NULL);
}

TEST(array_of_arrays_rejected) {
    bb b = {0};
    header(&b, 3, 0, 1);
    str(&b, "k"); u32(&b, GGUF_TYPE_ARRAY); u32(&b, GGUF_TYPE_ARRAY); u64(&b, 1);
    u32(&b, GGUF_TYPE_UINT8); u64(&b, 1); put(&b, "x", 1);
    expect_fail(&b, "arrays of arrays", "not supported");
}

TEST(bad_bool) {
    bb b = {0};
    header(&b, 3, 0, 1);
    str(&b, "flag"); u32(&b, GGUF_TYPE_BOOL); put(&b, "\x02", 1);
    expect_fail(&b, "bool", "flag");
}

TEST(unknown_tensor_type) {
    bb b = {0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 1, (uint64_t[]){32}, 4 /* removed Q4_2 */, 0);
    pad(&b, 32); zeros(&b, 256);
    expect_fail(&b, "unknown or unsupported tensor type 4", "'w'");
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 1, (uint64_t[]){32}, 0xffffffffu, 0);
    pad(&b, 32); zeros(&b, 256);
    expect_fail(&b, "tensor type", NULL);
}

TEST(n_dims_0_and_5) {
    bb b = {0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 0, NULL, QE_TYPE_F32, 0);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "n_dims 0", "'w'");
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 5, (uint64_t[]){1, 1, 1, 1, 1}, QE_TYPE_F32, 0);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "n_dims 5", NULL);
}

TEST(ne_zero_and_overflow) {
    bb b = {0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 2, (uint64_t[]){32, 0}, QE_TYPE_F32, 0);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "dimension 1", ">= 1");
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 3, (uint64_t[]){1u << 20, 1u << 22, 1u << 22}, QE_TYPE_F32, 0); /* 2^64 elements */
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "overflow", NULL);
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 2, (uint64_t[]){1ull << 31, 1ull << 31}, QE_TYPE_F32, 0); /* 2^62 elements, bytes overflow */
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "overflow", NULL);
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 1, (uint64_t[]){UINT64_MAX}, QE_TYPE_F32, 0); /* negative as int64 */
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "dimension 0", NULL);
}

TEST(row_not_multiple_of_block) {
    bb b = {0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 2, (uint64_t[]){896, 4}, QE_TYPE_Q4_K, 0);
    pad(&b, 32); zeros(&b, 4096);
    expect_fail(&b, "not a multiple", "block size 256");
}

TEST(offset_past_end) {
    bb b = valid_file();
    /* tensor b's offset field is the last 8 bytes before the padding: rewrite by rebuilding */
    free(b.p);
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 1, (uint64_t[]){64}, QE_TYPE_F32, 1024);
    pad(&b, 32); zeros(&b, 256);
    expect_fail(&b, "outside the file", "'w'");
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 1, (uint64_t[]){64}, QE_TYPE_F32, UINT64_MAX - 31); /* offset + size overflows */
    pad(&b, 32); zeros(&b, 256);
    expect_fail(&b, "outside the file", NULL);
}

TEST(misaligned_offset) {
    bb b = {0};
    header(&b, 3, 1, 0);
    tinfo(&b, "w", 1, (uint64_t[]){8}, QE_TYPE_F32, 4);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "not a multiple of the alignment 32", "'w'");
}

TEST(overlapping_tensors) {
    bb b = {0};
    header(&b, 3, 2, 0);
    tinfo(&b, "first", 1, (uint64_t[]){64}, QE_TYPE_F32, 0);   /* bytes 0..255 */
    tinfo(&b, "second", 1, (uint64_t[]){8}, QE_TYPE_F32, 128); /* inside the first */
    pad(&b, 32); zeros(&b, 512);
    expect_fail(&b, "overlap", "'first'");
}

TEST(duplicate_names_and_keys) {
    bb b = {0};
    header(&b, 3, 2, 0);
    tinfo(&b, "w", 1, (uint64_t[]){8}, QE_TYPE_F32, 0);
    tinfo(&b, "w", 1, (uint64_t[]){8}, QE_TYPE_F32, 32);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "duplicate tensor name 'w'", NULL);
    b = (bb){0};
    header(&b, 3, 0, 3);
    kv_u32(&b, "a", 1); kv_u32(&b, "b", 2); kv_u32(&b, "a", 3);
    expect_fail(&b, "duplicate key 'a'", "byte");
}

TEST(alignment_not_power_of_two) {
    bb b = {0};
    header(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 24);
    expect_fail(&b, "general.alignment = 24", "power of two");
    b = (bb){0};
    header(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, "power of two", NULL);
    b = (bb){0};
    header(&b, 3, 0, 1);
    kv_str(&b, "general.alignment", "32");
    expect_fail(&b, "general.alignment", "integer");
}

TEST(other_alignment_honoured) {
    bb b = {0};
    header(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "w", 1, (uint64_t[]){8}, QE_TYPE_F32, 0);
    pad(&b, 64); zeros(&b, 32);
    gguf_file *f = NULL;
    char err[QE_ERR_LEN] = "";
    CHECKF(gguf_parse(b.p, b.n, &f, err) == 0, "%s", err);
    if (f) CHECK(f->alignment == 64 && f->data_offset % 64 == 0);
    gguf_free(f);
    free(b.p);
}

TEST(counts_too_large) {
    bb b = {0};
    header(&b, 3, 0, UINT64_MAX);
    zeros(&b, 64);
    expect_fail(&b, "key/value count", "cannot fit");
    b = (bb){0};
    header(&b, 3, 1ull << 40, 0);
    zeros(&b, 64);
    expect_fail(&b, "tensor count", "cannot fit");
}

TEST(name_too_long_or_empty) {
    char name[80];
    memset(name, 'x', 70);
    name[70] = 0;
    bb b = {0};
    header(&b, 3, 1, 0);
    tinfo(&b, name, 1, (uint64_t[]){8}, QE_TYPE_F32, 0);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "longer than 63", NULL);
    b = (bb){0};
    header(&b, 3, 1, 0);
    tinfo(&b, "", 1, (uint64_t[]){8}, QE_TYPE_F32, 0);
    pad(&b, 32); zeros(&b, 64);
    expect_fail(&b, "empty name", NULL);
}

/* ---- writer -> parser ---------------------------------------------------------------------------------- */

TEST(writer_reports_errors) {
    gguf_writer *w = gguf_writer_new();
    CHECK(gguf_writer_set_u32(w, "u32", 7) == 0);
    CHECK(gguf_writer_set_u32(w, "u32", 1) == QE_EINVAL); /* duplicate key */
    char err[QE_ERR_LEN] = "";
    char *mem = NULL;
    size_t memlen = 0;
    FILE *out = open_memstream(&mem, &memlen);
    CHECK(gguf_writer_write_header(w, out, err) == QE_EINVAL); /* remembered and reported here */
    CHECK(strstr(err, "duplicate key 'u32'") != NULL);
    fclose(out);
    free(mem);
    gguf_writer_free(w);

    w = gguf_writer_new();
    CHECK(gguf_writer_add_tensor(w, "ok", 2, (int64_t[]){64, 3}, QE_TYPE_Q8_0) == 0);
    CHECK(gguf_writer_add_tensor(w, "bad", 2, (int64_t[]){48, 3}, QE_TYPE_Q8_0) < 0); /* 48 % 32 */
    CHECK(gguf_writer_add_tensor(w, "ok", 1, (int64_t[]){8}, QE_TYPE_F32) < 0);        /* duplicate */
    CHECK(gguf_writer_add_tensor(w, "t5", 5, (int64_t[]){1, 1, 1, 1, 1}, QE_TYPE_F32) < 0);
    out = open_memstream(&mem, &memlen);
    CHECK(gguf_writer_write_header(w, out, err) == QE_EINVAL);
    CHECK(strstr(err, "bad") != NULL);
    fclose(out);
    free(mem);
    gguf_writer_free(w);
}

static void cb(void *c, uint64_t i, qe_str s2) {
    static const char *want[] = {"a", "", "b c", "[PAD151935]"};
    struct { int n; int ok; } *ctx = c;
    ctx->n++;
    if (i >= 4 || !qe_str_eq(s2, want[i])) ctx->ok = 0;
}

TEST(writer_roundtrip_values) {
    gguf_writer *w = gguf_writer_new();
    uint8_t u8 = 250; int8_t i8 = -7; uint16_t u16 = 65000; int16_t i16 = -30000; uint64_t u64v = 1ull << 60;
    int64_t i64 = -5; double f64 = 0.125;
    gguf_writer_set_scalar(w, "u8", GGUF_TYPE_UINT8, &u8);
    gguf_writer_set_scalar(w, "i8", GGUF_TYPE_INT8, &i8);
    gguf_writer_set_scalar(w, "u16", GGUF_TYPE_UINT16, &u16);
    gguf_writer_set_scalar(w, "i16", GGUF_TYPE_INT16, &i16);
    gguf_writer_set_u32(w, "u32", 4000000000u);
    gguf_writer_set_i32(w, "i32", -2000000000);
    gguf_writer_set_f32(w, "f32", 3.25f);
    gguf_writer_set_bool(w, "bool", true);
    gguf_writer_set_str(w, "str", "héllo 你好");
    gguf_writer_set_scalar(w, "u64", GGUF_TYPE_UINT64, &u64v);
    gguf_writer_set_scalar(w, "i64", GGUF_TYPE_INT64, &i64);
    gguf_writer_set_scalar(w, "f64", GGUF_TYPE_FLOAT64, &f64);
    const char *strs[] = {"a", "", "b c", "[PAD151935]"};
    int32_t ints[] = {1, -2, 3};
    float floats[] = {0.5f, -1.5f};
    bool bools[] = {true, false, true};
    uint16_t u16s[] = {1, 2, 65535};
    gguf_writer_set_arr_str(w, "arr.str", strs, 4);
    gguf_writer_set_arr_i32(w, "arr.i32", ints, 3);
    gguf_writer_set_arr_f32(w, "arr.f32", floats, 2);
    gguf_writer_set_arr(w, "arr.bool", GGUF_TYPE_BOOL, bools, 3);
    gguf_writer_set_arr(w, "arr.u16", GGUF_TYPE_UINT16, u16s, 3);
    gguf_writer_set_arr(w, "arr.empty", GGUF_TYPE_INT32, NULL, 0);
    gguf_writer_add_tensor(w, "norm", 1, (int64_t[]){5}, QE_TYPE_F32);
    gguf_writer_add_tensor(w, "mat", 2, (int64_t[]){64, 3}, QE_TYPE_Q8_0);

    char err[QE_ERR_LEN] = "";
    char path[600];
    snprintf(path, sizeof path, "%s/roundtrip.gguf", test_tmpdir());
    FILE *out = fopen(path, "wb");
    CHECK(out != NULL);
    if (!out) { gguf_writer_free(w); return; }
    CHECKF(gguf_writer_write_header(w, out, err) == 0, "%s", err);
    float norm[5] = {1, 2, 3, 4, 5};
    CHECK(gguf_writer_write_tensor_data(w, out, 1, norm, 20, err) == QE_EINVAL); /* out of order */
    CHECKF(gguf_writer_write_tensor_data(w, out, 0, norm, 20, err) == 0, "%s", err);
    uint8_t mat[3 * 68];
    for (size_t i = 0; i < sizeof mat; i++) mat[i] = (uint8_t)i;
    CHECKF(gguf_writer_write_tensor_data(w, out, 1, mat, 68, err) == 0, "%s", err); /* in two chunks */
    CHECK(gguf_writer_write_tensor_data(w, out, 1, mat, 1000, err) == QE_EINVAL);     /* too much */
    CHECKF(gguf_writer_write_tensor_data(w, out, 1, mat + 68, 136, err) == 0, "%s", err);
    fclose(out);
    gguf_writer_free(w);

    qe_mapfile map;
    gguf_file *f = NULL;
    CHECKF(qe_mapfile_open(path, &map, err) == 0, "%s", err);
    CHECKF(gguf_parse(map.data, map.size, &f, err) == 0, "%s", err);
    if (!f) { qe_mapfile_close(&map); return; }
    CHECK_EQ_INT(f->n_kv, 18);
    const gguf_kv *kv;
#define SCALAR(key, T, type_, want) do { kv = gguf_find(f, key); CHECK(kv && kv->type == type_); \
    if (kv) { T v; memcpy(&v, kv->data, sizeof v); CHECK(v == (want)); } } while (0)
    SCALAR("u8", uint8_t, GGUF_TYPE_UINT8, 250);
    SCALAR("i8", int8_t, GGUF_TYPE_INT8, -7);
    SCALAR("u16", uint16_t, GGUF_TYPE_UINT16, 65000);
    SCALAR("i16", int16_t, GGUF_TYPE_INT16, -30000);
    SCALAR("u32", uint32_t, GGUF_TYPE_UINT32, 4000000000u);
    SCALAR("i32", int32_t, GGUF_TYPE_INT32, -2000000000);
    SCALAR("f32", float, GGUF_TYPE_FLOAT32, 3.25f);
    SCALAR("u64", uint64_t, GGUF_TYPE_UINT64, 1ull << 60);
    SCALAR("i64", int64_t, GGUF_TYPE_INT64, -5);
    SCALAR("f64", double, GGUF_TYPE_FLOAT64, 0.125);
#undef SCALAR
    uint32_t u;
    CHECK(gguf_get_u32(f, "u8", &u, err) == 0 && u == 250);
    CHECK(gguf_get_u32(f, "u16", &u, err) == 0 && u == 65000);
    CHECK(gguf_get_u32(f, "u64", &u, err) == QE_EFORMAT); /* does not fit */
    CHECK(gguf_get_u32(f, "i8", &u, err) == QE_EFORMAT);  /* negative */
    CHECK(strstr(err, "i8") != NULL);
    float fl;
    CHECK(gguf_get_f32(f, "f32", &fl, err) == 0 && fl == 3.25f);
    CHECK(gguf_get_f32(f, "f64", &fl, err) == 0 && fl == 0.125f);
    CHECK(gguf_get_f32(f, "str", &fl, err) == QE_EFORMAT);
    bool b;
    CHECK(gguf_get_bool(f, "bool", &b, err) == 0 && b);
    qe_str s;
    CHECK(gguf_get_str(f, "str", &s, err) == 0 && qe_str_eq(s, "héllo 你好"));
    uint32_t at;
    uint64_t n;
    const void *data;
    CHECK(gguf_get_arr(f, "arr.i32", &at, &n, &data, err) == 0 && at == GGUF_TYPE_INT32 && n == 3 &&
          !memcmp(data, ints, sizeof ints));
    CHECK(gguf_get_arr(f, "arr.f32", &at, &n, &data, err) == 0 && at == GGUF_TYPE_FLOAT32 && n == 2 &&
          !memcmp(data, floats, sizeof floats));
    CHECK(gguf_get_arr(f, "arr.u16", &at, &n, &data, err) == 0 && at == GGUF_TYPE_UINT16 && n == 3 &&
          !memcmp(data, u16s, sizeof u16s));
    CHECK(gguf_get_arr(f, "arr.bool", &at, &n, &data, err) == 0 && at == GGUF_TYPE_BOOL && n == 3 &&
          !memcmp(data, "\x01\x00\x01", 3));
    CHECK(gguf_get_arr(f, "arr.empty", &at, &n, &data, err) == 0 && n == 0);
    CHECK(gguf_get_arr(f, "arr.str", &at, &n, &data, err) == QE_EFORMAT); /* strings: use gguf_get_arr_str */
    struct { int n; int ok; } ctx = {0, 1};
    CHECK(gguf_get_arr_str(f, "arr.str", cb, &ctx, err) == 0);
    CHECK(ctx.n == 4 && ctx.ok);
    const gguf_tensor *tn = gguf_find_tensor(f, "norm"), *tm = gguf_find_tensor(f, "mat");
    CHECK(tn && tm);
    if (tn && tm) {
        CHECK(tn->type == QE_TYPE_F32 && tn->n_dims == 1 && tn->ne[0] == 5 && !memcmp(tn->data, norm, 20));
        CHECK(tm->type == QE_TYPE_Q8_0 && tm->n_dims == 2 && tm->ne[0] == 64 && tm->ne[1] == 3);
        CHECK(tm->nbytes == sizeof mat && !memcmp(tm->data, mat, sizeof mat));
        CHECK(tm->offset % 32 == 0);
    }
    gguf_free(f);
    qe_mapfile_close(&map);
    remove(path);
}


TEST(mapfile_errors) {
    qe_mapfile m;
    char err[QE_ERR_LEN] = "";
    CHECK(qe_mapfile_open("/nonexistent/x.gguf", &m, err) == QE_ENOTFOUND && strstr(err, "no such file"));
    qe_mapfile_close(&m);
    CHECK(qe_mapfile_open(test_tmpdir(), &m, err) < 0 && strstr(err, "directory"));
    qe_mapfile_close(&m);
    char path[600];
    snprintf(path, sizeof path, "%s/empty.gguf", test_tmpdir());
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(qe_mapfile_open(path, &m, err) == QE_EFORMAT && strstr(err, "empty"));
    qe_mapfile_close(&m);
    remove(path);
}

int main(void) {
    RUN(valid_file_parses);
    RUN(every_truncation_fails_cleanly);
    RUN(bad_magic);
    RUN(version_1);
    RUN(truncated_header);
    RUN(truncated_kv);
    RUN(string_length_past_end);
    RUN(huge_array_count);
    RUN(unknown_value_type);
    RUN(array_of_arrays_rejected);
    RUN(bad_bool);
    RUN(unknown_tensor_type);
    RUN(n_dims_0_and_5);
    RUN(ne_zero_and_overflow);
    RUN(row_not_multiple_of_block);
    RUN(offset_past_end);
    RUN(misaligned_offset);
    RUN(overlapping_tensors);
    RUN(duplicate_names_and_keys);
    RUN(alignment_not_power_of_two);
    RUN(other_alignment_honoured);
    RUN(counts_too_large);
    RUN(name_too_long_or_empty);
    RUN(writer_reports_errors);
    RUN(writer_roundtrip_values);
    RUN(mapfile_errors);
    return TEST_DONE();
}
