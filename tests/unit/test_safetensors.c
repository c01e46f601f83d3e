/* test_safetensors.c — the safetensors parser accepts a good file and refuses each kind of bad one with
 * a clear message: bad length, bad JSON, unknown / unsupported dtype, offsets past the end, overlap, shape
 * vs size mismatch. */
#include "test.h"

#include <stdint.h>

#include "quant.h"
#include "safetensors.h"

static uint8_t file[4096];

/* Builds header JSON + `data_len` bytes of data; returns the file length. */
static uint64_t mk(const char *json, uint64_t data_len) {
    uint64_t h = strlen(json);
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)(h >> (8 * i));
    memcpy(file + 8, json, h);
    for (uint64_t i = 0; i < data_len; i++) file[8 + h + i] = (uint8_t)i;
    return 8 + h + data_len;
}

static int parse_err(const char *json, uint64_t data_len, char *err) {
    qe_safetensors *st = NULL;
    int rc = qe_st_parse(file, mk(json, data_len), &st, err);
    qe_st_free(st);
    return rc;
}

#define EXPECT_ERR(json, data_len, needle) do { char err[QE_ERR_LEN] = ""; \
    int rc = parse_err(json, data_len, err); CHECKF(rc < 0, "accepted: %s", json); \
    CHECKF(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle); } while (0)

TEST(good) {
    const char *j = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
                    "\"c\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[24,24]}}";
    uint64_t len = mk(j, 24);
    qe_safetensors *st = NULL;
    char err[QE_ERR_LEN] = "";
    CHECKF(qe_st_parse(file, len, &st, err) == QE_OK, "%s", err);
    if (!st) return;
    CHECK_EQ_INT(st->n_tensors, 3);
    const qe_st_tensor *a = qe_st_find(st, "a"), *b = qe_st_find(st, "b");
    CHECK(a && b && !qe_st_find(st, "__metadata__") && !qe_st_find(st, "zz"));
    if (a && b) {
        CHECK_EQ_INT(a->type, QE_TYPE_BF16);
        CHECK_EQ_INT(a->n_dims, 2);
        CHECK_EQ_INT(a->shape[0], 2);
        CHECK_EQ_INT(a->shape[1], 3);
        CHECK_EQ_INT(a->n_elem, 6);
        CHECK(a->data == file + st->data_offset);
        CHECK_EQ_INT(b->type, QE_TYPE_F32);
        CHECK(b->data == (const uint8_t *)a->data + 12);
    }
    qe_st_free(st);
}

TEST(bad_length) {
    char err[QE_ERR_LEN] = "";
    qe_safetensors *st = NULL;
    CHECK(qe_st_parse(file, 5, &st, err) == QE_EFORMAT && strstr(err, "too short"));
    uint64_t len = mk("{}", 0);
    file[0] = 200; /* header length past the end */
    CHECK(qe_st_parse(file, len, &st, err) == QE_EFORMAT && strstr(err, "does not fit the file"));
    for (int i = 0; i < 8; i++) file[i] = 0xff;
    CHECK(qe_st_parse(file, len, &st, err) == QE_EFORMAT && strstr(err, "does not fit the file"));
    CHECK(st == NULL);
}

TEST(bad_json) {
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",", 0, "not valid JSON");
    EXPECT_ERR("[1,2,3]", 0, "does not start with '{'");
    EXPECT_ERR("{\"a\":1}", 0, "not a JSON object");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "not valid JSON"); /* duplicate */
    EXPECT_ERR("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing \"dtype\"");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "\"shape\"");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "5 dimensions");
    EXPECT_ERR("{\"__metadata__\":[1]}", 0, "__metadata__");
}

TEST(dtypes) {
    EXPECT_ERR("{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype \"Q4\"");
    EXPECT_ERR("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "dtype I64 is not supported");
    EXPECT_ERR("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "F8_E4M3 is not supported");
}

TEST(offsets) {
    EXPECT_ERR("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the end of the data");
    EXPECT_ERR("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "end before they begin");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    EXPECT_ERR("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 12, "shape has 1 F32");
}

TEST(shape_vs_size) {
    EXPECT_ERR("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 10, "shape has 6 BF16 elements (12 bytes) but data_offsets span 10");
    EXPECT_ERR("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows");
}

/* Every truncation of a good file is refused cleanly (never read past the given length). */
TEST(truncations) {
    const char *j = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}";
    uint64_t len = mk(j, 12);
    for (uint64_t n = 0; n < len; n++) {
        qe_safetensors *st = NULL;
        char err[QE_ERR_LEN] = "";
        int rc = qe_st_parse(file, n, &st, err);
        CHECKF(rc < 0 && err[0], "truncated at %llu accepted", (unsigned long long)n);
        qe_st_free(st);
    }
}

/* Random mutations of a good file (byte flips, digit changes, truncation, header length changes): every
 * result is either an error with a message or a parse whose tensors all lie inside the buffer. A cheap,
 * always-on stand-in for a fuzzer over this parser. */
TEST(mutations) {
    const char *j = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]}}";
    uint64_t len = mk(j, 24);
    static uint8_t orig[4096], buf[4096];
    memcpy(orig, file, len);
    uint64_t st64 = 12345;
    int ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, orig, len);
        uint64_t n = len;
        int k = 1 + (int)(st64 % 4);
        for (int m = 0; m < k; m++) {
            st64 = st64 * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t r = st64 >> 33, pos = r % n;
            switch ((r >> 20) % 5) {
            case 0: buf[pos] ^= (uint8_t)(1u << (r % 8)); break;
            case 1: if (buf[pos] >= '0' && buf[pos] <= '9') buf[pos] = (uint8_t)('0' + (r >> 8) % 10); break;
            case 2: n = pos ? pos : 1; break;
            case 3: buf[(r >> 4) % 8] = (uint8_t)(r >> 12); break;
            default: buf[pos] = "{}[],:\"0-9 "[(r >> 8) % 11]; break;
            }
        }
        qe_safetensors *st = NULL;
        char err[QE_ERR_LEN] = "";
        int rc = qe_st_parse(buf, n, &st, err);
        if (rc == QE_OK) {
            ok++;
            for (int i = 0; i < st->n_tensors; i++) {
                const qe_st_tensor *t = &st->tensors[i];
                CHECK((const uint8_t *)t->data >= buf + st->data_offset && t->end <= n - st->data_offset &&
                      (const uint8_t *)t->data + (t->end - t->begin) <= buf + n);
            }
        } else {
            bad++;
            CHECKF(err[0] != 0, "error %d without a message", rc);
        }
        qe_st_free(st);
    }
    CHECK(ok > 0 && bad > 0);
}

int main(void) {
    RUN(good);
    RUN(bad_length);
    RUN(bad_json);
    RUN(dtypes);
    RUN(offsets);
    RUN(shape_vs_size);
    RUN(truncations);
    RUN(mutations);
    return TEST_DONE();
}
