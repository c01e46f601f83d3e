/* cli_util.c — option parsing and model opening shared by the subcommands (see cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "pull.h"

static bool need_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "qwen-edge: option %s needs a value\n", argv[*i]);
        return false;
    }
    return true;
}

bool cli_int(int argc, char **argv, int *i, int *out) {
    if (!need_value(argc, argv, i)) return false;
    char *end;
    errno = 0;
    long v = strtol(argv[*i + 1], &end, 10);
    if (errno || *end || end == argv[*i + 1] || v < -2147483647L || v > 2147483647L) {
        fprintf(stderr, "qwen-edge: option %s wants a whole number, not '%s'\n", argv[*i], argv[*i + 1]);
        return false;
    }
    *out = (int)v;
    (*i)++;
    return true;
}

bool cli_u64(int argc, char **argv, int *i, unsigned long long *out) {
    if (!need_value(argc, argv, i)) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(argv[*i + 1], &end, 10);
    if (errno || *end || end == argv[*i + 1]) {
        fprintf(stderr, "qwen-edge: option %s wants a whole number, not '%s'\n", argv[*i], argv[*i + 1]);
        return false;
    }
    *out = v;
    (*i)++;
    return true;
}

bool cli_float(int argc, char **argv, int *i, float *out) {
    if (!need_value(argc, argv, i)) return false;
    char *end;
    errno = 0;
    float v = strtof(argv[*i + 1], &end);
    if (errno || *end || end == argv[*i + 1] || v != v) {
        fprintf(stderr, "qwen-edge: option %s wants a number, not '%s'\n", argv[*i], argv[*i + 1]);
        return false;
    }
    *out = v;
    (*i)++;
    return true;
}

bool cli_str(int argc, char **argv, int *i, const char **out) {
    if (!need_value(argc, argv, i)) return false;
    *out = argv[++(*i)];
    return true;
}

int cli_sample_option(int argc, char **argv, int *i, qe_sample_params *sp) {
    const char *a = argv[*i];
    bool ok;
    if (!strcmp(a, "--temp")) ok = cli_float(argc, argv, i, &sp->temperature);
    else if (!strcmp(a, "--top-k")) ok = cli_int(argc, argv, i, &sp->top_k);
    else if (!strcmp(a, "--top-p")) ok = cli_float(argc, argv, i, &sp->top_p);
    else if (!strcmp(a, "--min-p")) ok = cli_float(argc, argv, i, &sp->min_p);
    else if (!strcmp(a, "--repeat-penalty")) ok = cli_float(argc, argv, i, &sp->repeat_penalty);
    else if (!strcmp(a, "--seed")) {
        unsigned long long seed;
        ok = cli_u64(argc, argv, i, &seed);
        if (ok) sp->seed = seed;
    } else return 0;
    return ok ? 1 : -1;
}

qe_model *cli_open_model(const char *path, bool quiet) {
    char err[QE_ERR_LEN] = "", resolved[4096];
    /* a file as it is; a Hugging Face folder through its cached conversion; a model name, a URL or nothing (the
     * default model) from the store, downloaded first when missing */
    if (qe_model_resolve(path, -1, quiet, resolved, sizeof resolved, err) != QE_OK) {
        fprintf(stderr, "qwen-edge: %s\n", err);
        return NULL;
    }
    qe_model *m = NULL;
    if (qe_model_load(resolved, &m, err) != QE_OK) {
        fprintf(stderr, "qwen-edge: %s\n", err);
        return NULL;
    }
    return m;
}

double cli_peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}
