/* parse.c — request validation shared by both API dialects: the body as a JSON object, typed optional
 * fields with ranges, stop strings, the chat prompt (ChatML + memory window) and the length checks.
 * Every problem becomes a 400 with a message that names the field, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

int api_errf(api_error *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, param, ...) api_errf(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

json_t *parse_body(const req_ctx *rq, api_error *e) {
    if (rq->body.n == 0) {
        BAD(e, NULL, "the request body is empty; send a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(rq->body.p, rq->body.n, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (strstr(je.text, "UTF-8") || strstr(je.text, "decode byte"))
            BAD(e, NULL, "the request body is not valid UTF-8 (byte %d)", je.position);
        else
            BAD(e, NULL, "the request body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        BAD(e, NULL, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

int get_num(json_t *o, const char *key, double lo, double hi, double *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return BAD(e, key, "'%s' must be a number", key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return BAD(e, key, "'%s' must be between %g and %g (got %g)", key, lo, hi, x);
    *out = x;
    return 1;
}

int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) x = (int64_t)json_real_value(v);
    else return BAD(e, key, "'%s' must be an integer", key);
    if (x < lo || x > hi)
        return BAD(e, key, "'%s' must be between %lld and %lld (got %lld)", key, (long long)lo, (long long)hi,
                   (long long)x);
    *out = x;
    return 1;
}

int get_bool(json_t *o, const char *key, bool *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD(e, key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 1;
}

int get_str(json_t *o, const char *key, const char **out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return BAD(e, key, "'%s' must be a string", key);
    *out = json_string_value(v);
    return 1;
}

static int add_stop(gen_req *r, const char *s, size_t n, const char *key, api_error *e) {
    if (n == 0) return 0;
    if (n > 256) return BAD(e, key, "a stop string may be at most 256 bytes");
    if (memchr(s, 0, n)) return BAD(e, key, "stop strings may not contain NUL");
    char **p = realloc(r->stops, (r->n_stops + 1) * sizeof *p);
    if (!p) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    r->stops = p;
    if (!(p[r->n_stops] = strndup(s, n))) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    r->n_stops++;
    return 0;
}

int get_stops(json_t *o, const char *key, gen_req *r, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) return add_stop(r, json_string_value(v), json_string_length(v), key, e) ? -1 : 1;
    if (!json_is_array(v)) return BAD(e, key, "'%s' must be a string or an array of strings", key);
    if (json_array_size(v) > 16) return BAD(e, key, "at most 16 stop strings");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) return BAD(e, key, "'%s[%zu]' must be a string", key, i);
        if (add_stop(r, json_string_value(x), json_string_length(x), key, e)) return -1;
    }
    return 1;
}

void gen_req_free(gen_req *r) {
    qe_ids_free(&r->prompt);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    free(r->stops);
    r->stops = NULL;
    r->n_stops = 0;
}

/* ---- prompts ---------------------------------------------------------------------------------------- */

static const char DEFAULT_SYSTEM[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

static int tok_text(qe_server *s, const char *a, size_t na, const char *b, size_t nb, bool special, gen_req *r,
                    api_error *e) {
    char err[QE_ERR_LEN] = "";
    const qe_tokenizer *t = s->model->tok;
    if (na && qe_tokenize(t, a, na, special, &r->prompt, err)) goto fail;
    if (nb && qe_tokenize(t, b, nb, special, &r->prompt, err)) goto fail;
    return 0;
fail:
    return BAD(e, "messages", "cannot tokenize the prompt: %s", err);
}

/* One ChatML turn: <|im_start|>role\ncontent<|im_end|>\n. The role line and the content are tokenized as
 * one piece, as Hugging Face does with the rendered template (text between special tokens is one segment);
 * the content's own "<|im_start|>" etc. stay plain text (parse_special off), so users cannot forge turns. */
static int add_turn(qe_server *s, const char *role, const char *text, size_t len, gen_req *r, api_error *e) {
    const qe_tokenizer *t = s->model->tok;
    char head[32];
    int nh = snprintf(head, sizeof head, "%s\n", role);
    if (qe_ids_push(&r->prompt, qe_tokenizer_im_start(t))) goto oom;
    size_t n = (size_t)nh + len;
    char *seg = malloc(n + 1);
    if (!seg) goto oom;
    memcpy(seg, head, nh);
    memcpy(seg + nh, text, len);
    int rc = tok_text(s, seg, n, NULL, 0, false, r, e);
    free(seg);
    if (rc) return rc;
    if (qe_ids_push(&r->prompt, qe_tokenizer_im_end(t))) goto oom;
    return tok_text(s, "\n", 1, NULL, 0, false, r, e);
oom:
    return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
}

/* The memory window: system messages always stay; of the rest, keep the last `rounds` completed rounds (a
 * round starts at a user message) plus the current question. rounds <= 0 keeps everything. */
int render_chat(qe_server *s, const chat_msg *m, int n, int rounds, gen_req *r, api_error *e) {
    if (n == 0) return BAD(e, "messages", "'messages' must contain at least one message");
    int first_kept = 0;
    if (rounds > 0) {
        int users = 0;
        for (int i = n - 1; i >= 0; i--) {
            if (strcmp(m[i].role, "user") != 0) continue;
            if (++users == rounds + 1) { first_kept = i; break; }
        }
    }
    const qe_tokenizer *t = s->model->tok;
    if (qe_tokenizer_im_start(t) < 0 || qe_tokenizer_im_end(t) < 0)
        return api_errf(e, 500, "server_error", NULL, NULL, "this model's vocabulary has no ChatML tokens");
    int rc;
    if (strcmp(m[0].role, "system") != 0 && (rc = add_turn(s, "system", DEFAULT_SYSTEM, strlen(DEFAULT_SYSTEM), r, e)))
        return rc;
    r->n_dropped_msgs = 0;
    for (int i = 0; i < n; i++) {
        bool sys = !strcmp(m[i].role, "system");
        if (!sys && i < first_kept) { r->n_dropped_msgs++; continue; }
        if ((rc = add_turn(s, m[i].role, m[i].text, m[i].len, r, e))) return rc;
    }
    if (qe_ids_push(&r->prompt, qe_tokenizer_im_start(t))) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    return tok_text(s, "assistant\n", 10, NULL, 0, false, r, e);
}

int render_raw(qe_server *s, const char *text, size_t len, bool parse_special, gen_req *r, api_error *e) {
    if (len == 0) return BAD(e, "prompt", "'prompt' must not be empty");
    return tok_text(s, text, len, NULL, 0, parse_special, r, e);
}

int check_lengths(qe_server *s, gen_req *r, api_error *e) {
    int n_ctx = qe_engine_n_ctx(atomic_load(&s->engine));
    if ((int64_t)r->prompt.n >= n_ctx)
        return api_errf(e, 400, "invalid_request_error", "context_length_exceeded", "messages",
                        "This model's maximum context length is %d tokens. However, your prompt has %zu tokens "
                        "(leave room for the answer). Shorten the prompt or the conversation.", n_ctx, r->prompt.n);
    if (r->jp.max_tokens > n_ctx)
        return BAD(e, "max_tokens", "'max_tokens' is %d but the context holds %d tokens", r->jp.max_tokens, n_ctx);
    return 0;
}

/* ---- ids and times ------------------------------------------------------------------------------------ */

void make_id(char *out, size_t n, const char *prefix) {
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint8_t rnd[24];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        static _Atomic uint64_t ctr;
        uint64_t x = qe_now_ns() ^ (atomic_fetch_add(&ctr, 1) * 0x9E3779B97F4A7C15ull);
        for (size_t i = 0; i < sizeof rnd; i++) { x = x * 6364136223846793005ull + 1442695040888963407ull; rnd[i] = x >> 56; }
    }
    size_t k = snprintf(out, n, "%s", prefix);
    for (size_t i = 0; i < sizeof rnd && k + 1 < n; i++) out[k++] = al[rnd[i] % 62];
    out[k < n ? k : n - 1] = 0;
}

void iso_time(char *out, size_t n, double t) {
    time_t sec = (time_t)t;
    struct tm tm;
    gmtime_r(&sec, &tm);
    long ns = (long)((t - (double)sec) * 1e9);
    char base[40];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%09ldZ", base, ns < 0 ? 0 : ns);
}

double qe_wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
