/* fuzz_grammar.c — libFuzzer entry for the constrained-decoding front ends: the first byte picks the JSON Schema
 * compiler or the GBNF parser, the rest is the input. Anything must compile or fail with a message, never crash,
 * hang or leak; what compiles is then driven through its automaton for a few bytes of the input (no vocabulary:
 * the matcher's byte path is what a token walk uses). Built by `make fuzz-grammar` (mk/grammar.mk). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gbnf.h"
#include "json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    qe_grammar *g = NULL;
    char err[QE_ERR_LEN];
    err[0] = 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    int rc = data[0] & 1 ? qe_grammar_from_gbnf(text, n, &g, err) : qe_grammar_from_json_schema(text, n, &g, err);
    if (rc != QE_OK) {
        if (!memchr(err, 0, sizeof err) || !err[0] || g) __builtin_trap(); /* every failure says something */
        return 0;
    }
    /* walk the automaton over the input's own bytes, restarting when a byte is refused */
    int32_t s = qe_gstate_start(g);
    for (size_t i = 0; i < n && i < 256 && s >= 0; i++) {
        int32_t t = qe_gstate_next(g, s, data[i]);
        if (t == QE_GSTATE_DEAD) t = qe_gstate_start(g);
        s = t;
    }
    qe_grammar_free(g);
    return 0;
}
