/* test_modelstore.c — model names -> hub repo + file, the store folder, find/remove, and the HF folder
 * conversion cache key (changes when a file in the folder changes). No network. */
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf.h"
#include "modelstore.h"
#include "pull.h"

static qe_model_ref ref;
static char err[QE_ERR_LEN];

TEST(names) {
    CHECK(qe_model_ref_parse(NULL, &ref, err) == QE_OK);
    CHECK_STR(ref.name, "qwen2.5-0.5b-instruct:q8_0");
    CHECK_STR(ref.repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    CHECK_STR(ref.file, "qwen2.5-0.5b-instruct-q8_0.gguf");
    CHECK(ref.official == 1 && ref.url[0] == 0);
    CHECK(qe_model_ref_parse("Qwen2.5-7B-Instruct:Q4_K_M", &ref, err) == QE_OK);
    CHECK_STR(ref.repo, "Qwen/Qwen2.5-7B-Instruct-GGUF");
    CHECK_STR(ref.file, "qwen2.5-7b-instruct-q4_k_m.gguf");
    CHECK(qe_model_ref_parse("qwen2.5-1.5b:f16", &ref, err) == QE_OK);
    CHECK_STR(ref.file, "qwen2.5-1.5b-instruct-fp16.gguf");
    CHECK_STR(ref.name, "qwen2.5-1.5b-instruct:fp16");
    CHECK(qe_model_ref_parse("qwen2.5-3b-instruct:q2_k", &ref, err) == QE_OK);
    CHECK_STR(ref.repo, "Qwen/Qwen2.5-3B-Instruct-GGUF");
    CHECK(qe_model_ref_parse("qwen2.5-14b", &ref, err) == QE_EINVAL && strstr(err, "unknown model 'qwen2.5-14b'"));
    CHECK(qe_model_ref_parse("qwen2.5-0.5b-instruct:q4_k_s", &ref, err) == QE_EINVAL && strstr(err, "unknown quantization 'q4_k_s'"));
    CHECK(qe_model_ref_parse("qwen2.5-0.5b-base", &ref, err) == QE_EINVAL);
}

TEST(repo_files_and_urls) {
    CHECK(qe_model_ref_parse("bartowski/Qwen2.5-0.5B-Instruct-GGUF/Qwen2.5-0.5B-Instruct-Q6_K.gguf", &ref, err) == QE_OK);
    CHECK_STR(ref.repo, "bartowski/Qwen2.5-0.5B-Instruct-GGUF");
    CHECK_STR(ref.file, "Qwen2.5-0.5B-Instruct-Q6_K.gguf");
    CHECK(ref.official == 0);
    CHECK(qe_model_ref_parse("a/b/c/d.gguf", &ref, err) == QE_EINVAL);
    CHECK(qe_model_ref_parse("a/b/../x.gguf", &ref, err) == QE_EINVAL);
    CHECK(qe_model_ref_parse("a/b/.hidden", &ref, err) == QE_EINVAL);
    CHECK(qe_model_ref_parse("https://example.com/m/x-q8_0.gguf?download=true#frag", &ref, err) == QE_OK);
    CHECK_STR(ref.file, "x-q8_0.gguf");
    CHECK_STR(ref.url, "https://example.com/m/x-q8_0.gguf?download=true#frag");
    CHECK(ref.repo[0] == 0);
    CHECK(qe_model_ref_parse("https://example.com", &ref, err) == QE_EINVAL);
    CHECK(qe_model_ref_parse("https://example.com/", &ref, err) == QE_EINVAL);
    CHECK(qe_model_ref_parse("http://example.com/a%2F..%2Fb.gguf", &ref, err) == QE_EINVAL);
    CHECK(qe_model_ref_parse("http://example.com/..", &ref, err) == QE_EINVAL);
}

TEST(store) {
    char home[600], path[1400];
    snprintf(home, sizeof home, "%s/modelstore-%d/a/b", test_tmpdir(), (int)getpid());
    setenv("QWEN_EDGE_HOME", home, 1);
    char dir[1024];
    CHECK(qe_models_dir(dir, sizeof dir, err) == QE_OK);
    CHECK_STR(dir, home);
    struct stat st;
    CHECK(stat(home, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(qe_model_default_path(path, sizeof path) == QE_ENOTFOUND);
    CHECK(strstr(path, "/a/b/qwen2.5-0.5b-instruct-q8_0.gguf") != NULL);
    CHECK(qe_model_find_local(NULL, path, sizeof path, err) == QE_ENOTFOUND && strstr(err, "qwen-edge pull qwen2.5-0.5b-instruct:q8_0"));
    char f[1500];
    snprintf(f, sizeof f, "%s/qwen2.5-0.5b-instruct-q8_0.gguf", home);
    FILE *fp = fopen(f, "wb");
    CHECK(fp != NULL);
    if (fp) { fputs("x", fp); fclose(fp); }
    CHECK(qe_model_default_path(path, sizeof path) == QE_OK);
    CHECK(qe_model_find_local("qwen2.5-0.5b-instruct", path, sizeof path, err) == QE_OK);
    CHECK_STR(path, f);
    CHECK(qe_model_find_local("qwen2.5-0.5b-instruct-q8_0.gguf", path, sizeof path, err) == QE_OK); /* file name */
    CHECK(qe_model_find_local(f, path, sizeof path, err) == QE_OK);                                  /* a path */
    CHECK(qe_model_find_local("/no/such/file.gguf", path, sizeof path, err) == QE_ENOTFOUND && strstr(err, "no such file"));
    qe_model_entry *v = NULL;
    int n = 0;
    CHECK(qe_model_list(&v, &n, err) == QE_OK && n == 1);
    if (n == 1) { CHECK_STR(v[0].name, "qwen2.5-0.5b-instruct:q8_0"); CHECK_EQ_INT(v[0].size, 1); }
    free(v);
    CHECK(qe_model_remove("qwen2.5-0.5b-instruct:q8_0", path, sizeof path, err) == QE_OK);
    CHECK(qe_model_remove("qwen2.5-0.5b-instruct:q8_0", path, sizeof path, err) == QE_ENOTFOUND);
    /* an unwritable place gives an error, not a crash */
    setenv("QWEN_EDGE_HOME", "/proc/qwen-edge-cannot-be-here", 1);
    CHECK(qe_models_dir(dir, sizeof dir, err) == QE_EIO && strstr(err, "QWEN_EDGE_HOME"));
    setenv("QWEN_EDGE_HOME", home, 1);
}

TEST(hf_cache_key) {
    char d[600], p1[1400], p2[1400], p3[1400], f[700];
    snprintf(d, sizeof d, "%s/modelstore-%d/hfdir", test_tmpdir(), (int)getpid());
    mkdir(d, 0755);
    snprintf(f, sizeof f, "%s/config.json", d);
    FILE *fp = fopen(f, "w");
    if (fp) { fputs("{}", fp); fclose(fp); }
    CHECK(qe_hf_is_folder(d));
    CHECK(!qe_hf_is_folder(f));
    CHECK(qe_hf_cache_path(d, -1, p1, sizeof p1, err) == QE_OK);
    CHECK(qe_hf_cache_path(d, -1, p2, sizeof p2, err) == QE_OK);
    CHECK_STR(p1, p2);
    CHECK(strstr(p1, "/cache/hfdir-keep-") != NULL);
    CHECK(qe_hf_cache_path(d, 8, p3, sizeof p3, err) == QE_OK && strstr(p3, "-q8_0-") && strcmp(p1, p3));
    usleep(20000);
    fp = fopen(f, "w");
    if (fp) { fputs("{ }", fp); fclose(fp); }
    CHECK(qe_hf_cache_path(d, -1, p2, sizeof p2, err) == QE_OK);
    CHECK(strcmp(p1, p2) != 0);
    /* a folder that is not a Qwen2 model: a clear error and no cache file */
    CHECK(qe_hf_convert_cached(d, -1, p2, sizeof p2, err) == QE_EUNSUPPORTED && strstr(err, "is not supported"));
    CHECK(access(p2, F_OK) != 0);
}

/* -m resolution without a network: local things resolve, the rest fails fast with the what-to-do message */
TEST(resolve) {
    char home[600], path[1400], f[1500];
    snprintf(home, sizeof home, "%s/modelstore-%d/resolve", test_tmpdir(), (int)getpid());
    setenv("QWEN_EDGE_HOME", home, 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1); /* discard port: nothing listens */
    CHECK(qe_models_dir(f, sizeof f, err) == QE_OK); /* creates the folder */
    int rc;
    CHECK(qe_model_resolve("./no-such.gguf", -1, 1, path, sizeof path, err) == QE_ENOTFOUND && strstr(err, "no such file"));
    CHECK(qe_model_resolve(home, -1, 1, path, sizeof path, err) == QE_EINVAL && strstr(err, "not a Hugging Face model folder"));
    snprintf(f, sizeof f, "%s/qwen2.5-1.5b-instruct-q4_0.gguf", home);
    FILE *fp = fopen(f, "wb");
    if (fp) { fputs("x", fp); fclose(fp); }
    CHECK(qe_model_resolve(f, -1, 1, path, sizeof path, err) == QE_OK);
    CHECK_STR(path, f);
    rc = qe_model_resolve("qwen2.5-1.5b-instruct:q4_0", -1, 1, path, sizeof path, err);
    CHECKF(rc == QE_OK, "%d %s", rc, err);
    CHECK_STR(path, f);
    double t0 = qe_now();
    rc = qe_model_resolve(NULL, -1, 1, path, sizeof path, err);
    CHECKF(rc == QE_EIO && strstr(err, "cannot reach 127.0.0.1") && strstr(err, "-m FILE.gguf") &&
           strstr(err, "HF_ENDPOINT=https://hf-mirror.com") && strstr(err, "--source modelscope"), "rc %d: %s", rc, err);
    CHECK(qe_now() - t0 < 10);
    unsetenv("HF_ENDPOINT");
}

int main(void) {
    RUN(names);
    RUN(repo_files_and_urls);
    RUN(store);
    RUN(hf_cache_key);
    RUN(resolve);
    return TEST_DONE();
}
