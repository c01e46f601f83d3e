/* cli_util.h — small helpers shared by the subcommands: option parsing with one range per option (checked the
 * same way by every command) and model opening with one clear error line. */
#pragma once
#include <stdbool.h>
#include <stdio.h>

#include "model.h"
#include "sampler.h"

/* The range of the options several commands share (the sampling ranges are the API's, in sampler.h). Threads: more
 * than a few per core only slows down (they wait at every barrier), and 256 covers the largest servers; the context
 * floor is the engine's. */
#define CLI_THREADS_MAX 256
#define CLI_CTX_MIN 16
#define CLI_CTX_MAX (1 << 20)
#define CLI_ROUNDS_MAX 100000

/* True if a is the option's short or long spelling (short may be NULL). */
bool cli_is(const char *a, const char *short_name, const char *long_name);

/* Parses the value of option argv[*i] (advancing *i). On a missing or bad value, or one outside [lo, hi], prints
 * "qwen-edge: option -t wants a whole number from 1 to 256, not '2000'" and returns false. */
bool cli_int(int argc, char **argv, int *i, long lo, long hi, int *out);
bool cli_float(int argc, char **argv, int *i, double lo, double hi, float *out);
bool cli_str(int argc, char **argv, int *i, const char **out);
bool cli_u64(int argc, char **argv, int *i, unsigned long long *out);

/* The options of the commands that generate (run, chat): -t/--threads, -c/--ctx, -n/--max-tokens and the
 * sampling options --temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed. Fill the defaults first. */
typedef struct {
    int n_threads; /* 0 = physical cores */
    int n_ctx;
    int n_predict;
    qe_sample_params sp;
} cli_gen_opts;

/* Their --help lines (and -m's), the same in every command that has them. */
#define CLI_MODEL_HELP                                                                                       \
    "  -m, --model MODEL       a GGUF file, a Hugging Face folder, a model name or a URL\n"                   \
    "                          (default: the default model, downloaded on the first run)\n"
#define CLI_GEN_HELP                                                                                         \
    "  -t, --threads N         compute threads, 1 to 256 (default: physical cores)\n"                         \
    "  -c, --ctx N             context size in tokens, 16 to 1048576 (default 4096; at most the model's)\n"     \
    "      --temp T            temperature, 0 to 2 (default 0.7; 0 = greedy: always the same answer)\n"       \
    "      --top-k K           keep the K likeliest tokens, 0 = all (default 20)\n"                            \
    "      --top-p P           keep the likeliest tokens up to probability P, 0 to 1 (default 0.8)\n"          \
    "      --min-p P           drop tokens below P x the likeliest one's probability, 0 to 1 (default 0)\n"    \
    "      --repeat-penalty R  0.01 to 10, 1 = off (default 1.1)\n"                                           \
    "      --seed S            fixed seed: the same answer for the same prompt and options\n"

/* 1 if argv[*i] was one of them (its value consumed), 0 if it is not, -1 on a bad value (message printed). */
int cli_gen_option(int argc, char **argv, int *i, cli_gen_opts *o);

/* How to run this binary again, for messages that say what to type next ("run `qwen-edge pull`"): argv[0] as it
 * was typed (build/qwen-edge) when `qwen-edge` on the PATH is not this binary (nothing installed yet), else
 * "qwen-edge". main calls cli_set_self once. */
void cli_set_self(const char *argv0);
/* Prints "<who>: <err>\n" to stderr with every "qwen-edge <command>" in err spelled that way. */
void cli_error(const char *who, const char *err);

/* Loads the model at path; when path is NULL, the default model (downloaded first if missing). Prints
 * "qwen-edge: <error>" and returns NULL on failure. */
qe_model *cli_open_model(const char *path, bool quiet);

/* Peak resident memory of this process in MB. */
double cli_peak_rss_mb(void);
