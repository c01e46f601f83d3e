/* pull_hub.c — the hubs behind pull.h: the Hugging Face (HF_ENDPOINT) and ModelScope (MODELSCOPE_ENDPOINT)
 * file-list APIs (HF: /api/models/<repo>/tree/main, ModelScope: /api/v1/models/<repo>/repo/files), which give
 * each file's size and sha256 and show whether a model is split into parts, and the URL shapes of a file.
 *
 * Not here: the HTTP requests themselves (pull_http.c), what a model name means (modelstore.c), the
 * download (pull.c). */
#include "pull_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------
 * The hubs' file lists */

/* Collects `want` itself, or its parts want-stem-0000k-of-0000n.gguf, from a list of (name, size, sha). */
typedef struct { remote_file *v; int n; const char *want; int want_n; char stem[256]; int n_total; int bad; } match_ctx;

static void match_file(match_ctx *mc, const char *name, uint64_t size, const char *sha) {
    remote_file rf = {0};
    snprintf(rf.name, sizeof rf.name, "%s", name);
    rf.size = size;
    if (sha) pull_take_sha256(sha, strlen(sha), rf.sha256);
    if (!strcmp(name, mc->want)) {
        mc->v[0] = rf;
        mc->want_n = 1;
        return;
    }
    size_t sl = strlen(mc->stem);
    int k, n, used = 0;
    if (!strncmp(name, mc->stem, sl) && sscanf(name + sl, "-%5d-of-%5d.gguf%n", &k, &n, &used) == 2 &&
        name[sl + used] == 0 && k >= 1 && n >= 2 && k <= n) {
        if (n > MAX_PARTS - 1 || (mc->n_total && mc->n_total != n)) { mc->bad = 1; return; }
        mc->n_total = n;
        mc->v[k] = rf;   /* slots 1..n hold the parts */
        mc->n++;
    }
}

/* Fills files[] (count in *n) for ref, or returns the reason it could not. A hub without a list API
 * gives QE_EUNSUPPORTED (the caller then tries the plain file name). */
int pull_list_remote(const qe_model_ref *ref, const char *endpoint, qe_source src, const qe_pull_opts *o,
                     remote_file *files, int *n, char *err) {
    char url[2048];
    if (src == QE_SOURCE_MODELSCOPE)
        snprintf(url, sizeof url, "%s/api/v1/models/%s/repo/files?Revision=master&Recursive=true", endpoint, ref->repo);
    else
        snprintf(url, sizeof url, "%s/api/models/%s/tree/main", endpoint, ref->repo);
    char *body = NULL;
    long status = 0;
    int rc = pull_http_get_small(url, o, &body, &status, err);
    if (rc != QE_OK) {
        /* An HTTP error here is either an unknown repository or a mirror without this API; the HEAD of the
         * file that the caller tries next tells them apart. */
        if (status != 0) return QE_EUNSUPPORTED;
        return rc; /* network: err says what to do */
    }
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    free(body);
    if (!j) return QE_EUNSUPPORTED;
    json_t *arr = src == QE_SOURCE_MODELSCOPE ? json_object_get(json_object_get(j, "Data"), "Files") : j;
    if (!json_is_array(arr)) { json_decref(j); return QE_EUNSUPPORTED; }
    remote_file slots[MAX_PARTS];
    memset(slots, 0, sizeof slots);
    match_ctx mc = {.v = slots, .want = ref->file};
    snprintf(mc.stem, sizeof mc.stem, "%.*s", (int)(strlen(ref->file) - 5), ref->file); /* without ".gguf" */
    char some[256] = "";
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *name, *sha = NULL, *type;
        uint64_t size;
        if (src == QE_SOURCE_MODELSCOPE) {
            name = json_string_value(json_object_get(e, "Path"));
            type = json_string_value(json_object_get(e, "Type"));
            if (type && strcmp(type, "blob") != 0) continue;
            size = (uint64_t)json_integer_value(json_object_get(e, "Size"));
            sha = json_string_value(json_object_get(e, "Sha256"));
        } else {
            name = json_string_value(json_object_get(e, "path"));
            type = json_string_value(json_object_get(e, "type"));
            if (type && strcmp(type, "file") != 0) continue;
            json_t *lfs = json_object_get(e, "lfs");
            size = (uint64_t)json_integer_value(json_object_get(lfs ? lfs : e, "size"));
            if (lfs) sha = json_string_value(json_object_get(lfs, "oid"));
        }
        if (!name) continue;
        if (strstr(name, ".gguf") && strlen(some) + strlen(name) + 3 < sizeof some)
            snprintf(some + strlen(some), sizeof some - strlen(some), "%s%s", some[0] ? ", " : "", name);
        match_file(&mc, name, size, sha);
    }
    json_decref(j);
    if (mc.want_n) { files[0] = slots[0]; *n = 1; return QE_OK; }
    if (mc.bad || (mc.n_total && mc.n != mc.n_total))
        return qe_errf(err, QE_EFORMAT, "%s: the parts of %s on the hub are incomplete or too many", ref->repo, ref->file);
    if (mc.n_total) {
        for (int k = 1; k <= mc.n_total; k++) files[k - 1] = slots[k];
        *n = mc.n_total;
        return QE_OK;
    }
    return qe_errf(err, QE_ENOTFOUND, "%s has no file %s%s%s", ref->repo, ref->file, some[0] ? " (it has: " : "",
                   some[0] ? some : "");
}

void pull_endpoint_for(qe_source src, char *out, size_t cap) {
    const char *e = src == QE_SOURCE_MODELSCOPE ? getenv("MODELSCOPE_ENDPOINT") : pull_hf_endpoint();
    if (!e || !e[0]) e = "https://modelscope.cn";
    snprintf(out, cap, "%s", e);
    size_t n = strlen(out);
    while (n && out[n - 1] == '/') out[--n] = 0;
}

void pull_file_url(const qe_model_ref *ref, const char *endpoint, qe_source src, const char *name, char *out, size_t cap) {
    if (src == QE_SOURCE_MODELSCOPE) snprintf(out, cap, "%s/models/%s/resolve/master/%s", endpoint, ref->repo, name);
    else snprintf(out, cap, "%s/%s/resolve/main/%s", endpoint, ref->repo, name);
}
