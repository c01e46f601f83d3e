/* cmd_pull.c — `qwen-edge pull [NAME|URL] [--source hf|modelscope] [--force]`: downloads a model into the
 * store (pull.h) with a progress bar, and prints its path on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "pull.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge pull [NAME|URL] [--source hf|modelscope] [--force] [--retries N] [--quiet]\n\n"
            "Downloads a model into the model folder ($QWEN_EDGE_HOME, default ~/.local/share/qwen-edge/models)\n"
            "and prints its path. Without NAME: %s (the %s file of the official Qwen GGUF repo).\n\n"
            "NAME:\n"
            "  qwen2.5-<size>-instruct[:<quant>]   size: %s\n"
            "                                      quant: %s (default q8_0)\n"
            "  Owner/Repo/file.gguf                any file of a Hugging Face (or ModelScope) repository\n"
            "  https://host/path/file.gguf         any URL\n\n"
            "options:\n"
            "  --source hf|modelscope   where to download from (default hf = Hugging Face)\n"
            "  --force                  download again even if the file is already there\n"
            "  --retries N              resume this many times after a dropped connection (default 3)\n"
            "  --quiet                  no progress output\n\n"
            "environment:\n"
            "  HF_ENDPOINT=https://hf-mirror.com   use a Hugging Face mirror (same paths)\n"
            "  HF_TOKEN=...                        for gated or private repositories\n"
            "  MODELSCOPE_ENDPOINT=...             another ModelScope host\n"
            "  QWEN_EDGE_HOME=/folder              where models are stored\n"
            "  QWEN_EDGE_STALL_TIMEOUT=60          seconds under 1 KiB/s before a stalled transfer is resumed\n"
            "  QWEN_EDGE_MAX_DOWNLOAD=BYTES        largest file when the hub gives no size (default 64 GiB)\n"
            "  CURL_CA_BUNDLE=FILE                 CA certificates to use, as for the curl tool\n\n"
            "An interrupted download is kept as FILE.part and resumed by the next pull. The file gets its final\n"
            "name only after its size and sha256 match what the hub publishes. HF_TOKEN goes only to HF_ENDPOINT's\n"
            "exact scheme, host and port; redirects from https to http are refused.\n",
            QE_DEFAULT_MODEL, QE_DEFAULT_QUANT, qe_model_catalog_sizes(), qe_model_catalog_quants());
}

int cmd_pull(int argc, char **argv) {
    const char *spec = NULL;
    qe_pull_opts o = {.retries = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--force") || !strcmp(a, "-f")) o.force = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) o.quiet = 1;
        else if (!strcmp(a, "--source") && i + 1 < argc) {
            const char *s = argv[++i];
            if (!strcmp(s, "hf") || !strcmp(s, "huggingface")) o.source = QE_SOURCE_HF;
            else if (!strcmp(s, "modelscope") || !strcmp(s, "ms")) o.source = QE_SOURCE_MODELSCOPE;
            else { fprintf(stderr, "qwen-edge pull: --source must be hf or modelscope, not '%s'\n", s); return 2; }
        } else if (!strcmp(a, "--retries")) {
            if (!cli_int(argc, argv, &i, 0, 100, &o.retries)) return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qwen-edge pull: unknown option '%s' (see qwen-edge pull --help)\n", a);
            return 2;
        } else if (!spec) spec = a;
        else { fprintf(stderr, "qwen-edge pull: one model at a time ('%s' and '%s')\n", spec, a); return 2; }
    }
    qe_pull_progress_state ps = {0};
    if (!o.quiet) { o.progress = qe_pull_progress_stderr; o.progress_user = &ps; }
    char path[1400], err[QE_ERR_LEN];
    int rc = qe_pull(spec, &o, path, sizeof path, err);
    qe_pull_progress_end(&ps);
    if (rc) {
        cli_error("qwen-edge pull", err);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}
