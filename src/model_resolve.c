/* model_resolve.c — what `-m ARG` (or no -m) means for serve / chat / run (see pull.h): qe_model_precheck
 * (no network, no conversion) and qe_model_resolve (a file, a Hugging Face folder converted once, or a name or
 * URL from the store or downloaded now with a progress bar).
 *
 * Not here: the store and model names (modelstore.c, which stays free of network code), the download
 * (pull.c), the conversion (hf.c). */
#include "pull.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hf.h"

/* ---------------------------------------------------------------------------------------------------
 * -m resolution */

int qe_model_precheck(const char *arg, char *err) {
    struct stat st;
    if (arg && arg[0] && stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode) && !qe_hf_is_folder(arg))
            return qe_errf(err, QE_EINVAL, "%s is a folder but not a Hugging Face model folder (no config.json); "
                           "-m takes a .gguf file, such a folder, or a model name (see qwen-edge pull --help)", arg);
        return QE_OK;
    }
    if (arg && (arg[0] == '/' || !strncmp(arg, "./", 2) || !strncmp(arg, "../", 3) || arg[0] == '~'))
        return qe_errf(err, QE_ENOTFOUND, "%s: no such file", arg);
    char local[PATH_MAX + 256];
    int rc = qe_model_find_local(arg, local, sizeof local, err);
    if (rc == QE_OK || rc != QE_ENOTFOUND) return rc; /* in the store, or the store itself is unusable */
    size_t len = arg ? strlen(arg) : 0;
    qe_model_ref ref;
    if (len > 5 && !strcmp(arg + len - 5, ".gguf")) {
        /* a mistyped path, not a model name: not a hub reference, or its "owner" is a local folder */
        const char *slash = strchr(arg, '/');
        char first[256];
        snprintf(first, sizeof first, "%.*s", slash ? (int)(slash - arg) : 0, arg);
        if (qe_model_ref_parse(arg, &ref, NULL) != QE_OK || (slash && stat(first, &st) == 0 && S_ISDIR(st.st_mode)))
            return qe_errf(err, QE_ENOTFOUND, "%s: no such file", arg);
    }
    return qe_model_ref_parse(arg, &ref, err); /* a name or URL to download */
}

int qe_model_resolve(const char *arg, int hf_out_type, int quiet, char *path_out, size_t cap, char *err) {
    int rc = qe_model_precheck(arg, err);
    if (rc) return rc;
    struct stat st;
    if (arg && arg[0] && stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return qe_hf_convert_cached(arg, hf_out_type, path_out, cap, err);
        if (strlen(arg) >= cap) return qe_errf(err, QE_ERANGE, "path too long");
        snprintf(path_out, cap, "%s", arg);
        return QE_OK;
    }
    if (qe_model_find_local(arg, path_out, cap, NULL) == QE_OK) return QE_OK;
    qe_pull_opts o = {.retries = -1, .quiet = quiet};
    qe_pull_progress_state ps = {0};
    if (!quiet) {
        o.progress = qe_pull_progress_stderr;
        o.progress_user = &ps;
        if (!arg || !arg[0])
            fprintf(stderr, "first run: downloading the default model %s:%s (set -m FILE.gguf to use your own)\n",
                    QE_DEFAULT_MODEL, QE_DEFAULT_QUANT);
    }
    rc = qe_pull(arg, &o, path_out, cap, err);
    qe_pull_progress_end(&ps);
    return rc;
}
