/* tokenizer_json.c — builds the tokenizer from a Hugging Face tokenizer.json (model.vocab, model.merges in either
 * format, added_tokens) through the builder (tokenizer_build.c). Uses jansson. */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <jansson.h>
#include <string.h>

int qe_tokenizer_from_json(const char *json, size_t len, qe_tokenizer **out, char *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) return qe_errf(err, QE_EFORMAT, "tokenizer.json: %s at line %d column %d", je.text, je.line, je.column);
    qe_tok_builder b = {0};
    int rc = QE_EFORMAT;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        qe_errf(err, rc, "tokenizer.json: model.vocab (object) and model.merges (array) are required");
        goto done;
    }
    if (mtype && strcmp(mtype, "BPE") != 0) {
        rc = qe_errf(err, QE_EUNSUPPORTED, "tokenizer.json: model type %s is not supported (BPE only)", mtype);
        goto done;
    }
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24)) {
            qe_errf(err, rc, "tokenizer.json: vocab entry \"%.40s\" has no valid id", key);
            goto done;
        }
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (!json_is_integer(json_object_get(v, "id")) || id < 0 || id >= (1 << 24) ||
            !json_is_string(json_object_get(v, "content"))) {
            qe_errf(err, rc, "tokenizer.json: added_tokens[%zu] needs an id and a content", i);
            goto done;
        }
        if (id > max_id) max_id = id;
    }
    if ((rc = qe_tok_builder_init(&b, (int)(max_id + 1), json_array_size(merges), err)) < 0) goto done;
    rc = QE_EFORMAT;
    json_object_foreach(vocab, key, v) {
        if ((rc = qe_tok_builder_set(&b, json_integer_value(v), key, strlen(key), QE_TOKEN_NORMAL, err)) < 0) goto done;
    }
    json_array_foreach(added, i, v) {
        json_t *c = json_object_get(v, "content");
        int type = json_is_true(json_object_get(v, "special")) ? QE_TOKEN_CONTROL : QE_TOKEN_USER_DEFINED;
        int64_t id = json_integer_value(json_object_get(v, "id"));
        if (id < b.t->n_vocab && b.seen[id]) b.seen[id] = false; /* an added token may restate a vocab entry */
        if ((rc = qe_tok_builder_set(&b, id, json_string_value(c), json_string_length(c), type, err)) < 0) goto done;
    }
    if ((rc = qe_tok_builder_vocab_done(&b, err)) < 0) goto done;
    json_array_foreach(merges, i, v) {
        const char *a, *c;
        size_t an, cn;
        if (json_is_string(v)) { /* "left right" */
            const char *s = json_string_value(v);
            const char *sp = strchr(s + (s[0] != 0), ' ');
            if (!sp) { rc = qe_errf(err, QE_EFORMAT, "tokenizer.json: merges[%zu] has no space", i); goto done; }
            a = s; an = sp - s; c = sp + 1; cn = strlen(c);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) { /* ["left", "right"] */
            a = json_string_value(json_array_get(v, 0)); an = json_string_length(json_array_get(v, 0));
            c = json_string_value(json_array_get(v, 1)); cn = json_string_length(json_array_get(v, 1));
        } else {
            rc = qe_errf(err, QE_EFORMAT, "tokenizer.json: merges[%zu] is neither \"a b\" nor [a, b]", i);
            goto done;
        }
        if ((rc = qe_tok_builder_merge(&b, a, an, c, cn, err)) < 0) goto done;
    }
    rc = qe_tok_builder_finish(&b, out, err);
done:
    if (rc < 0) qe_tok_builder_abort(&b);
    json_decref(root);
    return rc;
}
