/* tokenizer_bench.c — encoding speed of qe_tokenize on one core: reads a UTF-8 text file, tokenizes it
 * line by line (as a server tokenizes prompts) several times, prints MB/s and tokens/s. Built and run by
 * bench/tokenizer.sh (not part of `make test`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

/* CPU time of this thread: the machine may be shared, wall time would measure the neighbours too. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tokenizer_bench tokenizer.json text.txt [repeats]\n");
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    char err[QE_ERR_LEN] = "", *json = NULL, *text = NULL;
    size_t jlen, tlen;
    qe_tokenizer *t = NULL;
    if (qe_read_file(argv[1], &json, &jlen, err) < 0 || qe_tokenizer_from_json(json, jlen, &t, err) < 0 ||
        qe_read_file(argv[2], &text, &tlen, err) < 0) {
        fprintf(stderr, "tokenizer_bench: %s\n", err);
        return 1;
    }
    qe_ids ids = {0};
    double best = 1e9;
    size_t n_tokens = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_now();
        n_tokens = 0;
        for (char *p = text, *end = text + tlen; p < end;) {
            char *nl = memchr(p, '\n', end - p);
            size_t n = nl ? (size_t)(nl - p + 1) : (size_t)(end - p); /* newline included: multi-line prompts */
            ids.n = 0;
            if (qe_tokenize(t, p, n, false, &ids, err) < 0) { fprintf(stderr, "%s\n", err); return 1; }
            n_tokens += ids.n;
            p += n;
        }
        double dt = cpu_now() - t0;
        if (dt < best) best = dt;
    }
    printf("tokenizer: %zu bytes, %zu tokens (%.2f bytes/token), best of %d: %.3f s CPU = %.2f MB/s, %.0f tokens/s\n",
           tlen, n_tokens, (double)tlen / n_tokens, reps, best, tlen / best / 1e6, n_tokens / best);
    qe_ids_free(&ids);
    qe_tokenizer_free(t);
    free(json);
    free(text);
    return 0;
}
