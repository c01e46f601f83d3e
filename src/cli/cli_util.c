/* cli_util.c — option parsing and model opening shared by the subcommands (see cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* The default-model resolver lives in pull.c when that is linked in. */
int qe_default_model_path(char *out, size_t cap, bool download, bool quiet, char *err) __attribute__((weak));

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

qe_model *cli_open_model(const char *path, bool quiet) {
    char err[QE_ERR_LEN] = "", def[4096];
    if (!path) {
        if (!qe_default_model_path) {
            fprintf(stderr, "qwen-edge: no model given: use -m FILE.gguf\n");
            return NULL;
        }
        if (qe_default_model_path(def, sizeof def, true, quiet, err) != QE_OK) {
            fprintf(stderr, "qwen-edge: %s\n", err);
            return NULL;
        }
        path = def;
    }
    qe_model *m = NULL;
    if (qe_model_load(path, &m, err) != QE_OK) {
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
