/* tokenizer_load.c — see tokenizer_load.h. */
#include "tokenizer_load.h"

#include <stdlib.h>

#include "gguf.h"
#include "mapfile.h"

struct qe_tokenizer_source {
    qe_tokenizer *tok;
    qe_mapfile map;  /* GGUF only: the tokenizer copies what it needs, but keep the map for cheap reuse */
    gguf_file *gguf;
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
    qe_tokenizer_source *s = calloc(1, sizeof *s);
    if (!s) return qe_errf(err, QE_ENOMEM, "out of memory");
    int rc = qe_mapfile_open(path, &s->map, err);
    if (rc < 0) goto fail;
    if ((rc = gguf_parse(s->map.data, s->map.size, &s->gguf, err)) < 0) goto fail_prefix;
    if ((rc = qe_tokenizer_from_gguf(s->gguf, &s->tok, err)) < 0) goto fail_prefix;
    *out = s;
    return QE_OK;
fail_prefix:
    qe_err_prefix(err, "%s", path);
fail:
    qe_tokenizer_source_free(s);
    return rc;
}

const qe_tokenizer *qe_tokenizer_source_get(const qe_tokenizer_source *s) { return s->tok; }

void qe_tokenizer_source_free(qe_tokenizer_source *s) {
    if (!s) return;
    qe_tokenizer_free(s->tok);
    gguf_free(s->gguf);
    qe_mapfile_close(&s->map);
    free(s);
}
