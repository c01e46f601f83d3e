/* tokenizer_load.c — see tokenizer_load.h. */
#include "tokenizer_load.h"

#include <stdlib.h>

struct qe_tokenizer_source {
    qe_tokenizer *tok;
};

int qe_tokenizer_load_json(const char *path, qe_tokenizer_source **out, char *err) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = qe_read_file(path, &text, &len, err);
    if (rc < 0) return rc;
    qe_tokenizer_source *s = calloc(1, sizeof *s);
    if (!s) { free(text); return qe_errf(err, QE_ENOMEM, "out of memory"); }
    rc = qe_tokenizer_from_json(text, len, &s->tok, err);
    free(text);
    if (rc < 0) {
        qe_err_prefix(err, "%s", path);
        free(s);
        return rc;
    }
    *out = s;
    return QE_OK;
}

int qe_tokenizer_load_gguf(const char *path, qe_tokenizer_source **out, char *err) {
    *out = NULL;
    return qe_errf(err, QE_EUNSUPPORTED, "%s: GGUF loading is not in this build yet", path);
}

const qe_tokenizer *qe_tokenizer_source_get(const qe_tokenizer_source *s) { return s->tok; }

void qe_tokenizer_source_free(qe_tokenizer_source *s) {
    if (!s) return;
    qe_tokenizer_free(s->tok);
    free(s);
}
