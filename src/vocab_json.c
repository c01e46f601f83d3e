/* vocab_json.c — tokenizer.json -> GGUF vocabulary arrays (see vocab_json.h). Uses jansson. */
#include "vocab_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qe_vocab_free(qe_vocab *v) {
    if (!v) return;
    for (int64_t i = 0; v->tokens && i < v->n_tokens; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->types);
    for (int64_t i = 0; v->merges && i < v->n_merges; i++) free(v->merges[i]);
    free(v->merges);
    free(v);
}

/* llama.cpp's converter treats these added tokens as control tokens even when not marked special. */
static bool looks_special(const char *s) {
    size_t n = strlen(s);
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]")) return true;
    if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) return true;
    /* fullwidth bars: "<｜" ... "｜>" (U+FF5C is EF BD 9C) */
    if (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>")) return true;
    return false;
}

static int set_token(qe_vocab *v, int64_t id, const char *s, int32_t type, const char *path, char *err) {
    if (v->tokens[id]) return qe_errf(err, QE_EFORMAT, "%s: token id %lld appears twice", path, (long long)id);
    if (!(v->tokens[id] = strdup(s))) return qe_errf(err, QE_ENOMEM, "out of memory");
    v->types[id] = type;
    return QE_OK;
}

int qe_vocab_json_load(const char *path, int64_t n_vocab, int64_t max_id, qe_vocab **out, char *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return qe_errf(err, QE_ENOTFOUND, "%s: cannot open tokenizer.json", path);
        fclose(f);
        return qe_errf(err, QE_EFORMAT, "%s:%d:%d: bad JSON: %s", path, je.line, je.column, je.text);
    }
    int rc = QE_OK;
    qe_vocab *v = qe_calloc(1, sizeof *v);
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!v) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    if (!json_is_object(model) || !mtype || strcmp(mtype, "BPE") || !json_is_object(vocab) || !json_is_array(merges)) {
        rc = qe_errf(err, QE_EFORMAT, "%s: not a BPE tokenizer.json (need model.type \"BPE\", model.vocab, model.merges)", path);
        goto done;
    }
    if (added && !json_is_array(added)) { rc = qe_errf(err, QE_EFORMAT, "%s: added_tokens is not an array", path); goto done; }

    /* First pass: the largest id we keep decides the size when n_vocab is not given. */
    int64_t top = -1;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0) {
            rc = qe_errf(err, QE_EFORMAT, "%s: vocab entry '%.60s' has no valid id", path, key);
            goto done;
        }
        int64_t id = json_integer_value(val);
        if ((max_id < 0 || id <= max_id) && id > top) top = id;
    }
    size_t ai;
    json_array_foreach(added, ai, val) {
        json_t *idv = json_object_get(val, "id");
        if (!json_is_integer(idv) || json_integer_value(idv) < 0 || !json_is_string(json_object_get(val, "content"))) {
            rc = qe_errf(err, QE_EFORMAT, "%s: added_tokens[%zu] needs an id and a content", path, ai);
            goto done;
        }
        int64_t id = json_integer_value(idv);
        if ((max_id < 0 || id <= max_id) && id > top) top = id;
    }
    v->n_tokens = n_vocab > 0 ? n_vocab : top + 1;
    if (top >= v->n_tokens) {
        rc = qe_errf(err, QE_EFORMAT, "%s: token id %lld does not fit a vocabulary of %lld", path, (long long)top, (long long)v->n_tokens);
        goto done;
    }
    v->tokens = qe_calloc((size_t)v->n_tokens, sizeof *v->tokens);
    v->types = qe_calloc((size_t)v->n_tokens, sizeof *v->types);
    if (!v->tokens || !v->types) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }

    /* Added tokens first: when one also appears in the vocab (Qwen's do not, others' do) the added entry
     * decides its type, as in llama.cpp's converter. */
    json_array_foreach(added, ai, val) {
        int64_t id = json_integer_value(json_object_get(val, "id"));
        if (max_id >= 0 && id > max_id) continue;
        const char *s = json_string_value(json_object_get(val, "content"));
        int32_t type = json_is_true(json_object_get(val, "special")) || looks_special(s) ? QE_TOKEN_CONTROL : QE_TOKEN_USER_DEFINED;
        if ((rc = set_token(v, id, s, type, path, err))) goto done;
    }
    json_object_foreach(vocab, key, val) {
        int64_t id = json_integer_value(val);
        if (max_id >= 0 && id > max_id) continue;
        if (v->tokens[id] && !strcmp(v->tokens[id], key)) continue; /* also an added token */
        if ((rc = set_token(v, id, key, QE_TOKEN_NORMAL, path, err))) goto done;
    }
    for (int64_t i = 0; i < v->n_tokens; i++) {
        if (v->tokens[i]) continue;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
        if ((rc = set_token(v, i, pad, QE_TOKEN_UNUSED, path, err))) goto done;
    }

    /* Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20). */
    v->n_merges = (int64_t)json_array_size(merges);
    v->merges = qe_calloc((size_t)v->n_merges, sizeof *v->merges);
    if (!v->merges) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    json_array_foreach(merges, ai, val) {
        const char *a, *b;
        if (json_is_string(val)) {
            v->merges[ai] = strdup(json_string_value(val));
        } else if (json_is_array(val) && json_array_size(val) == 2 && (a = json_string_value(json_array_get(val, 0))) &&
                   (b = json_string_value(json_array_get(val, 1)))) {
            size_t n = strlen(a) + strlen(b) + 2;
            if ((v->merges[ai] = malloc(n))) snprintf(v->merges[ai], n, "%s %s", a, b);
        } else {
            rc = qe_errf(err, QE_EFORMAT, "%s: merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, ai);
            goto done;
        }
        if (!v->merges[ai]) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    }
done:
    json_decref(root);
    if (rc) qe_vocab_free(v);
    else *out = v;
    return rc;
}
