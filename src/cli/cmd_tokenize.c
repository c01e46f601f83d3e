/* cmd_tokenize.c — `qwen-edge tokenize`: token ids of each line of stdin (and the reverse with --decode).
 * Used by the tokenizer tests to compare with Hugging Face and llama.cpp, and handy for counting tokens. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "commands.h"
#include "cli_util.h"
#include "tokenizer_load.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge tokenize (-m MODEL.gguf | --vocab tokenizer.json) [options] < input\n"
            "\n"
            "Prints the token ids of each input line, space-separated, one output line per input line\n"
            "(the newline itself is not tokenized; an empty line gives an empty line).\n"
            "\n"
            "options:\n"
            "  -m, --model FILE    take the tokenizer from a GGUF model file\n"
            "      --vocab FILE    take it from a Hugging Face tokenizer.json\n"
            "      --special       recognise special tokens written in the text (<|im_start|> ...);\n"
            "                      by default they are tokenized as plain text\n"
            "      --json          each input line is a JSON string (for texts with newlines); with\n"
            "                      --decode, each output line is a JSON string\n"
            "      --decode        the reverse: each input line is ids, print the text\n"
            "      --count         print only the number of tokens of each line\n"
            "      --chat          each input line is a JSON array of messages [{\"role\": \"user\",\n"
            "                      \"content\": \"...\"}, ...]: print the ids of the Qwen2.5 chat prompt\n"
            "                      (with the assistant generation prompt); --chat-text prints the prompt\n"
            "                      as a JSON string instead\n"
            "      --rounds N      with --chat: keep at most N earlier rounds (default: all)\n"
            "      --budget N      with --chat: drop the oldest rounds until the prompt fits N tokens\n"
            "  -h, --help          this help\n");
}

static int encode_line(const qe_tokenizer *t, const char *line, size_t n, bool json, bool special, bool count,
                       qe_ids *ids, qe_buf *out, long lineno, char *err) {
    json_t *js = NULL;
    if (json) {
        json_error_t je;
        js = json_loadb(line, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!js || !json_is_string(js)) {
            json_decref(js);
            return qe_errf(err, QE_EINVAL, "line %ld: not a JSON string%s%s", lineno, js ? "" : ": ", js ? "" : je.text);
        }
        line = json_string_value(js);
        n = json_string_length(js);
    }
    ids->n = 0;
    int rc = qe_tokenize(t, line, n, special, ids, err);
    json_decref(js);
    if (rc < 0) return rc;
    if (count) return qe_buf_printf(out, "%zu\n", ids->n);
    for (size_t i = 0; i < ids->n; i++)
        if ((rc = qe_buf_printf(out, i ? " %d" : "%d", ids->p[i])) < 0) return rc;
    return qe_buf_append(out, "\n", 1);
}

/* A JSON array of {role, content} -> messages borrowing from js. */
static int parse_messages(json_t *js, qe_chat_msg **out, size_t *n, long lineno, char *err) {
    if (!json_is_array(js)) return qe_errf(err, QE_EINVAL, "line %ld: not a JSON array of messages", lineno);
    *n = json_array_size(js);
    *out = calloc(*n + 1, sizeof **out);
    if (!*out) return qe_errf(err, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        json_t *m = json_array_get(js, i), *c = json_object_get(m, "content");
        if (qe_chat_role_parse(json_string_value(json_object_get(m, "role")), &(*out)[i].role) < 0 || !json_is_string(c))
            return qe_errf(err, QE_EINVAL, "line %ld: message %zu needs a role (system, user, assistant, tool) "
                                           "and a string content", lineno, i);
        (*out)[i].text = json_string_value(c);
        (*out)[i].len = json_string_length(c);
    }
    return QE_OK;
}

static int chat_line(const qe_tokenizer *t, const char *line, size_t n, bool text, int rounds, long budget,
                     qe_ids *ids, qe_buf *out, long lineno, char *err) {
    json_error_t je;
    json_t *js = json_loadb(line, n, JSON_ALLOW_NUL, &je);
    if (!js) return qe_errf(err, QE_EINVAL, "line %ld: bad JSON: %s", lineno, je.text);
    qe_chat_msg *msgs = NULL;
    size_t nm = 0;
    qe_buf prompt = {0};
    int rc = parse_messages(js, &msgs, &nm, lineno, err);
    if (rc < 0) goto done;
    ids->n = 0;
    if (text) {
        if ((rc = qe_chat_render(msgs, nm, true, &prompt)) < 0) { qe_errf(err, rc, "out of memory"); goto done; }
        json_t *s = json_stringn(prompt.p ? prompt.p : "", prompt.n);
        char *enc = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        json_decref(s);
        if (!enc) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
        rc = qe_buf_printf(out, "%s\n", enc);
        free(enc);
        goto done;
    }
    if (budget >= 0 || rounds >= 0)
        rc = qe_chat_window_ids(t, msgs, nm, rounds, budget >= 0 ? (size_t)budget : SIZE_MAX, ids, NULL, err);
    else
        rc = qe_chat_render_ids(t, msgs, nm, true, ids, err);
    if (rc < 0) { qe_err_prefix(err, "line %ld", lineno); goto done; }
    for (size_t i = 0; i < ids->n && rc >= 0; i++) rc = qe_buf_printf(out, i ? " %d" : "%d", ids->p[i]);
    if (rc >= 0) rc = qe_buf_append(out, "\n", 1);
done:
    free(msgs);
    qe_buf_free(&prompt);
    json_decref(js);
    return rc;
}

static int decode_line(const qe_tokenizer *t, const char *line, size_t n, bool json, qe_buf *out, long lineno, char *err) {
    qe_buf text = {0};
    qe_detok d;
    qe_detok_init(&d);
    int rc = QE_OK;
    char *s = strndup(line, n), *p = s;
    if (!s) return qe_errf(err, QE_ENOMEM, "out of memory");
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= qe_tokenizer_n_vocab(t) || (*end && *end != ' ' && *end != '\t' && *end != '\r')) {
            rc = qe_errf(err, QE_EINVAL, "line %ld: '%.20s' is not a token id (0..%d)", lineno, p, qe_tokenizer_n_vocab(t) - 1);
            goto done;
        }
        if ((rc = qe_detok_push(&d, t, (int32_t)v, &text)) < 0) goto done;
        p = end;
    }
    if ((rc = qe_detok_flush(&d, &text)) < 0) goto done;
    if (json) {
        json_t *js = json_stringn(text.p ? text.p : "", text.n);
        char *enc = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        json_decref(js);
        if (!enc) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
        rc = qe_buf_printf(out, "%s\n", enc);
        free(enc);
    } else {
        if ((rc = qe_buf_append(out, text.p, text.n)) == 0) rc = qe_buf_append(out, "\n", 1);
    }
done:
    qe_buf_free(&text);
    free(s);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *vocab = NULL;
    bool special = false, json = false, decode = false, count = false, chat = false, chat_text = false;
    int rounds = -1, budget = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(a, "--special")) special = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--decode")) decode = true;
        else if (!strcmp(a, "--count")) count = true;
        else if (!strcmp(a, "--chat")) chat = true;
        else if (!strcmp(a, "--chat-text")) chat = chat_text = true;
        else if (!strcmp(a, "--rounds")) { if (!cli_int(argc, argv, &i, 0, CLI_ROUNDS_MAX, &rounds)) return 2; }
        else if (!strcmp(a, "--budget")) { if (!cli_int(argc, argv, &i, 1, CLI_CTX_MAX, &budget)) return 2; }
        else {
            fprintf(stderr, "qwen-edge tokenize: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model == !vocab) {
        fprintf(stderr, "qwen-edge tokenize: give exactly one of -m MODEL.gguf or --vocab tokenizer.json\n\n");
        usage(stderr);
        return 2;
    }
    char err[QE_ERR_LEN] = "";
    qe_tokenizer_source *src = NULL;
    int rc = model ? qe_tokenizer_load_gguf(model, &src, err) : qe_tokenizer_load_json(vocab, &src, err);
    if (rc < 0) {
        fprintf(stderr, "qwen-edge tokenize: %s\n", err);
        return 1;
    }
    const qe_tokenizer *t = qe_tokenizer_source_get(src);
    qe_ids ids = {0};
    qe_buf out = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n') n--;
        out.n = 0;
        rc = chat     ? chat_line(t, line, n, chat_text, rounds, budget, &ids, &out, lineno, err)
             : decode ? decode_line(t, line, n, json, &out, lineno, err)
                      : encode_line(t, line, n, json, special, count, &ids, &out, lineno, err);
        if (rc < 0) break;
        if (fwrite(out.p, 1, out.n, stdout) != out.n) { rc = qe_errf(err, QE_EIO, "writing stdout failed"); break; }
    }
    if (rc >= 0 && ferror(stdin)) rc = qe_errf(err, QE_EIO, "reading stdin failed");
    if (fflush(stdout) != 0 && rc >= 0) rc = qe_errf(err, QE_EIO, "writing stdout failed");
    if (rc < 0) fprintf(stderr, "qwen-edge tokenize: %s\n", err);
    free(line);
    qe_ids_free(&ids);
    qe_buf_free(&out);
    qe_tokenizer_source_free(src);
    return rc < 0 ? 1 : 0;
}
