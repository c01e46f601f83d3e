/* cli_util.c — option parsing and model opening shared by the subcommands (see cli_util.h). */
#include "cli_util.h"
#include "commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "pull.h"

bool cli_is(const char *a, const char *short_name, const char *long_name) {
    return (short_name && !strcmp(a, short_name)) || (long_name && !strcmp(a, long_name));
}

static bool need_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "qwen-edge: option %s needs a value\n", argv[*i]);
        return false;
    }
    return true;
}

bool cli_int(int argc, char **argv, int *i, long lo, long hi, int *out) {
    if (!need_value(argc, argv, i)) return false;
    const char *v = argv[*i + 1];
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "qwen-edge: option %s wants a whole number from %ld to %ld, not '%s'\n", argv[*i], lo, hi, v);
        return false;
    }
    *out = (int)x;
    (*i)++;
    return true;
}

bool cli_u64(int argc, char **argv, int *i, unsigned long long *out) {
    if (!need_value(argc, argv, i)) return false;
    const char *v = argv[*i + 1];
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    /* strtoull takes "-1" as 2^64-1: a seed is a plain non-negative number */
    if (errno || *end || end == v || strchr(v, '-')) {
        fprintf(stderr, "qwen-edge: option %s wants a whole number from 0 to %llu, not '%s'\n", argv[*i],
                (unsigned long long)-1, v);
        return false;
    }
    *out = x;
    (*i)++;
    return true;
}

bool cli_float(int argc, char **argv, int *i, double lo, double hi, float *out) {
    if (!need_value(argc, argv, i)) return false;
    const char *v = argv[*i + 1];
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= lo && x <= hi)) { /* !(..) also refuses NaN */
        fprintf(stderr, "qwen-edge: option %s wants a number from %g to %g, not '%s'\n", argv[*i], lo, hi, v);
        return false;
    }
    *out = (float)x;
    (*i)++;
    return true;
}

bool cli_str(int argc, char **argv, int *i, const char **out) {
    if (!need_value(argc, argv, i)) return false;
    *out = argv[++(*i)];
    return true;
}

int cli_gen_option(int argc, char **argv, int *i, cli_gen_opts *o) {
    const char *a = argv[*i];
    qe_sample_params *sp = &o->sp;
    bool ok;
    if (cli_is(a, "-t", "--threads")) ok = cli_int(argc, argv, i, 1, CLI_THREADS_MAX, &o->n_threads);
    else if (cli_is(a, "-c", "--ctx")) ok = cli_int(argc, argv, i, CLI_CTX_MIN, CLI_CTX_MAX, &o->n_ctx);
    else if (cli_is(a, "-n", "--max-tokens")) ok = cli_int(argc, argv, i, 1, QE_MAX_TOKENS_MAX, &o->n_predict);
    else if (cli_is(a, NULL, "--temp")) ok = cli_float(argc, argv, i, QE_TEMP_MIN, QE_TEMP_MAX, &sp->temperature);
    else if (cli_is(a, NULL, "--top-k")) ok = cli_int(argc, argv, i, 0, QE_TOP_K_MAX, &sp->top_k);
    else if (cli_is(a, NULL, "--top-p")) ok = cli_float(argc, argv, i, QE_TOP_P_MIN, QE_TOP_P_MAX, &sp->top_p);
    else if (cli_is(a, NULL, "--min-p")) ok = cli_float(argc, argv, i, QE_MIN_P_MIN, QE_MIN_P_MAX, &sp->min_p);
    else if (cli_is(a, NULL, "--repeat-penalty"))
        ok = cli_float(argc, argv, i, QE_REPEAT_PENALTY_MIN, QE_REPEAT_PENALTY_MAX, &sp->repeat_penalty);
    else if (cli_is(a, NULL, "--seed")) {
        unsigned long long seed;
        ok = cli_u64(argc, argv, i, &seed);
        if (ok) sp->seed = seed;
    } else return 0;
    return ok ? 1 : -1;
}

static char g_self[1024] = "qwen-edge";

void cli_set_self(const char *argv0) {
    struct stat mine, st;
    if (!argv0 || !strchr(argv0, '/') || stat(argv0, &mine) != 0) return; /* found through the PATH */
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        char f[1100];
        if (n > 0 && n < 1000) {
            snprintf(f, sizeof f, "%.*s/qwen-edge", (int)n, p);
            if (stat(f, &st) == 0 && st.st_ino == mine.st_ino && st.st_dev == mine.st_dev) return;
        }
        p += n + (p[n] == ':');
    }
    snprintf(g_self, sizeof g_self, "%s", argv0);
}

void cli_error(const char *who, const char *err) {
    fprintf(stderr, "%s: ", who);
    const char *p = err;
    for (const char *q; (q = strstr(p, "qwen-edge ")); p = q + strlen("qwen-edge ")) {
        /* "qwen-edge pull", not "/usr/bin/qwen-edge pull", "my-qwen-edge ..." or prose ("another qwen-edge is") */
        const char *w = q + strlen("qwen-edge ");
        bool word = (q == err || strchr(" `('\"\n", q[-1])) && cli_is_command(w, strspn(w, "abcdefghijklmnopqrstuvwxyz"));
        fprintf(stderr, "%.*s%s ", (int)(q - p), p, word ? g_self : "qwen-edge");
    }
    fprintf(stderr, "%s\n", p);
}

qe_model *cli_open_model(const char *path, bool quiet) {
    char err[QE_ERR_LEN] = "", resolved[4096];
    /* a file as it is; a Hugging Face folder through its cached conversion; a model name, a URL or nothing (the
     * default model) from the store, downloaded first when missing */
    if (qe_model_resolve(path, -1, quiet, resolved, sizeof resolved, err) != QE_OK) {
        cli_error("qwen-edge", err);
        return NULL;
    }
    qe_model *m = NULL;
    if (qe_model_load(resolved, &m, err) != QE_OK) {
        cli_error("qwen-edge", err);
        return NULL;
    }
    return m;
}

double cli_peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}
