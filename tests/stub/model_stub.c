/* model_stub.c — DEVELOPMENT STAND-IN, built only while src/model.c is absent (mk/server.mk): "loads" a GGUF
 * file's tokenizer and pretends the model has Qwen2.5-0.5B's shape. Deleted once model.c lands. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "tokenizer_load.h"

int qe_model_load(const char *path, qe_model **out, char *err) {
    struct stat st;
    if (stat(path, &st) != 0) return qe_errf(err, QE_ENOTFOUND, "%s: no such file", path);
    qe_model *m = calloc(1, sizeof *m);
    if (!m) return QE_ENOMEM;
    m->cfg = (qe_config){24, 896, 14, 2, 64, 4864, 151936, 32768, 1e6f, 1e-6f, true};
    const char *base = strrchr(path, '/');
    m->name = strdup(base ? base + 1 : path);
    m->path = strdup(path);
    m->file_bytes = (uint64_t)st.st_size;
    m->weight_types = "stub";
    qe_tokenizer_source *src = NULL;
    int rc = qe_tokenizer_load_gguf(path, &src, err);
    if (rc) { qe_model_free(m); return rc; }
    m->owned = src;
    m->tok = (qe_tokenizer *)qe_tokenizer_source_get(src);
    *out = m;
    return QE_OK;
}

void qe_model_free(qe_model *m) {
    if (!m) return;
    qe_tokenizer_source_free(m->owned);
    free(m->name);
    free(m->path);
    free(m->chat_template);
    free(m);
}
