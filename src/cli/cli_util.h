/* cli_util.h — small helpers shared by the subcommands: option parsing and model opening with one clear
 * error line. */
#pragma once
#include <stdbool.h>
#include <stdio.h>

#include "model.h"
#include "sampler.h"

/* Parses the integer/float value of option argv[*i] (advancing *i); prints an error and returns false on a bad or
 * missing value. */
bool cli_int(int argc, char **argv, int *i, int *out);
bool cli_float(int argc, char **argv, int *i, float *out);
bool cli_str(int argc, char **argv, int *i, const char **out);
bool cli_u64(int argc, char **argv, int *i, unsigned long long *out);

/* One sampling option (--temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed) into sp: 1 if argv[*i] was
 * one (its value consumed), 0 if it is not a sampling option, -1 on a bad value (message printed). */
int cli_sample_option(int argc, char **argv, int *i, qe_sample_params *sp);

/* Loads the model at path; when path is NULL, the default model (downloaded first if missing). Prints
 * "qwen-edge: <error>" and returns NULL on failure. */
qe_model *cli_open_model(const char *path, bool quiet);

/* Peak resident memory of this process in MB. */
double cli_peak_rss_mb(void);
