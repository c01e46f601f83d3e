/* test_vocab_json.c — tokenizer.json -> GGUF vocabulary arrays: token types (normal, control, user-defined,
 * padding), the id cut-off, padding to a vocabulary size, both merge formats, and bad files. */
#include "base.h"
#include "test.h"
#include "vocab_json.h"

static const char *write_tmp(const char *name, const char *text) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
    return path;
}

static const char *TOK =
    "{\"added_tokens\": ["
    "  {\"id\": 3, \"content\": \"<|endoftext|>\", \"special\": true},"
    "  {\"id\": 4, \"content\": \"<tool_call>\", \"special\": false},"
    "  {\"id\": 5, \"content\": \"<|fim_prefix|>\", \"special\": false},"
    "  {\"id\": 7, \"content\": \"<think>\", \"special\": false}],"
    " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
    "   \"merges\": [[\"a\", \"b\"], \"ab b\"]}}";

TEST(types_padding_and_cutoff) {
    qe_vocab *v = NULL;
    char err[QE_ERR_LEN] = "";
    CHECKF(qe_vocab_json_load(write_tmp("tok.json", TOK), 10, 6, &v, err) == 0, "%s", err);
    if (!v) return;
    CHECK_EQ_INT(v->n_tokens, 10);
    CHECK_STR(v->tokens[0], "a");
    CHECK_STR(v->tokens[2], "ab");
    CHECK_EQ_INT(v->types[0], QE_TOKEN_NORMAL);
    CHECK_STR(v->tokens[3], "<|endoftext|>");
    CHECK_EQ_INT(v->types[3], QE_TOKEN_CONTROL);
    CHECK_EQ_INT(v->types[4], QE_TOKEN_USER_DEFINED);      /* not special, does not look special */
    CHECK_EQ_INT(v->types[5], QE_TOKEN_CONTROL);           /* "<|...|>" counts as special (llama.cpp) */
    CHECK_STR(v->tokens[6], "[PAD6]");
    CHECK_EQ_INT(v->types[6], QE_TOKEN_UNUSED);
    CHECK_STR(v->tokens[7], "[PAD7]");                      /* id 7 is past the cut-off */
    CHECK_EQ_INT(v->types[7], QE_TOKEN_UNUSED);
    CHECK_STR(v->tokens[9], "[PAD9]");
    CHECK_EQ_INT(v->n_merges, 2);
    CHECK_STR(v->merges[0], "a b");
    CHECK_STR(v->merges[1], "ab b");
    qe_vocab_free(v);
    /* no cut-off, natural size */
    CHECKF(qe_vocab_json_load(write_tmp("tok.json", TOK), 0, -1, &v, err) == 0, "%s", err);
    if (v) {
        CHECK_EQ_INT(v->n_tokens, 8);
        CHECK_STR(v->tokens[7], "<think>");
        CHECK_STR(v->tokens[6], "[PAD6]");
    }
    qe_vocab_free(v);
}

TEST(bad_files) {
    qe_vocab *v = NULL;
    char err[QE_ERR_LEN] = "";
    CHECK(qe_vocab_json_load("/nonexistent/tokenizer.json", 0, -1, &v, err) == QE_ENOTFOUND && strstr(err, "/nonexistent"));
    CHECK(qe_vocab_json_load(write_tmp("bad.json", "{\"model\": "), 0, -1, &v, err) == QE_EFORMAT && strstr(err, "bad JSON"));
    CHECK(qe_vocab_json_load(write_tmp("bad.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}"), 0, -1, &v, err) == QE_EFORMAT &&
          strstr(err, "BPE"));
    CHECK(qe_vocab_json_load(write_tmp("bad.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}"), 0, -1, &v, err) ==
          QE_EFORMAT && strstr(err, "'a'"));
    CHECK(qe_vocab_json_load(write_tmp("bad.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}"), 0, -1, &v,
                             err) == QE_EFORMAT && strstr(err, "twice"));
    CHECK(qe_vocab_json_load(write_tmp("bad.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 5}, \"merges\": []}}"), 3, -1, &v, err) ==
          QE_EFORMAT && strstr(err, "does not fit"));
    CHECK(qe_vocab_json_load(write_tmp("bad.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [3]}}"), 0, -1, &v, err) ==
          QE_EFORMAT && strstr(err, "merges[0]"));
    CHECK(v == NULL);
}

int main(void) {
    RUN(types_padding_and_cutoff);
    RUN(bad_files);
    return TEST_DONE();
}
