/* parse.c — request validation shared by both API dialects: the body as a JSON object, typed optional
 * fields with ranges, stop strings, the chat prompt (ChatML + memory window) and the length checks.
 * Every problem becomes a 400 with a message that names the field, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "chat.h"
#include "internal.h"

int api_errf(api_error *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...) {
    e->status = status;
    e->allow = NULL;
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

/* A JSON integer is an int64 already (jansson refuses larger literals as invalid JSON); a JSON real such as
 * 1e300, -1e300, 1e19 or 9.3e18 is range-checked as a double BEFORE it is converted: casting a double outside
 * int64's range is undefined behaviour in C (x86 happens to give INT64_MIN, other targets saturate or trap). */
int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* (double)lo is exact for the bounds we use or rounds outward; 2^63 itself is not an int64 */
        if (!(d >= (double)lo && d <= (double)hi && d >= -0x1p63 && d < 0x1p63))
            return BAD(e, key, "'%s' must be an integer between %lld and %lld (got %g)", key, (long long)lo,
                       (long long)hi, d);
        if (d != (double)(int64_t)d) return BAD(e, key, "'%s' must be an integer (got %g)", key, d);
        x = (int64_t)d;
    } else {
        return BAD(e, key, "'%s' must be an integer", key);
    }
    if (x < lo || x > hi)
        return BAD(e, key, "'%s' must be an integer between %lld and %lld (got %lld)", key, (long long)lo,
                   (long long)hi, (long long)x);
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

/* A JSON array of token ids, each in [0, n_vocab), appended to out. A failed append (out of memory) is a
 * 500, never a silently shortened prompt. */
int get_ids(json_t *arr, const char *key, int n_vocab, qe_ids *out, api_error *e) {
    size_t k;
    json_t *x;
    json_array_foreach(arr, k, x) {
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= n_vocab)
            return BAD(e, key, "%s[%zu] must be a token id in [0, %d)", key, k, n_vocab);
        if (qe_ids_push(out, (int32_t)json_integer_value(x)) < 0)
            return api_errf(e, 500, "server_error", NULL, NULL, "out of memory reading '%s'", key);
    }
    return 0;
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

/* The chat prompt: chat.h's stateless window renders Qwen2.5's ChatML (default system prompt when none,
 * message text never parsed for special tokens) keeping the system message, the newest round and at most
 * `rounds` earlier rounds (rounds <= 0: all). With a window the budget also drops the oldest rounds that do
 * not fit the context (room left for the answer); with rounds <= 0 nothing is dropped and a conversation
 * that does not fit is a 400 context_length_exceeded, never silently cut. */
int render_chat(qe_server *s, const chat_msg *m, int n, int rounds, gen_req *r, api_error *e) {
    if (n == 0) return BAD(e, "messages", "'messages' must contain at least one message");
    qe_chat_msg *cm = calloc((size_t)n, sizeof *cm);
    if (!cm) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        if (qe_chat_role_parse(m[i].role, &cm[i].role)) {
            free(cm);
            return BAD(e, "messages", "messages[%d].role '%s' is not supported", i, m[i].role);
        }
        cm[i].text = m[i].text;
        cm[i].len = m[i].len;
    }
    int n_ctx = qe_engine_n_ctx(atomic_load(&s->engine));
    size_t budget = SIZE_MAX;
    if (rounds > 0) {
        int room = r->jp.max_tokens > 0 ? r->jp.max_tokens : 256;
        if (room > n_ctx / 2) room = n_ctx / 2;
        budget = (size_t)(n_ctx - room);
    }
    char err[QE_ERR_LEN] = "";
    size_t dropped = 0;
    int rc = qe_chat_window_ids(s->model->tok, cm, (size_t)n, rounds > 0 ? rounds : -1, budget, &r->prompt, &dropped, err);
    free(cm);
    r->n_dropped_msgs = (int)dropped;
    if (rc == QE_ERANGE)
        return api_errf(e, 400, "invalid_request_error", "context_length_exceeded", "messages",
                        "the newest message does not fit this model's context of %d tokens (%s)", n_ctx, err);
    if (rc == QE_ENOMEM) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    if (rc) return BAD(e, "messages", "%s", err);
    return 0;
}

int render_raw(qe_server *s, const char *text, size_t len, bool parse_special, gen_req *r, api_error *e) {
    if (len == 0) return BAD(e, "prompt", "'prompt' must not be empty");
    char err[QE_ERR_LEN] = "";
    int rc = qe_tokenize(s->model->tok, text, len, parse_special, &r->prompt, err);
    if (rc == QE_ENOMEM) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory tokenizing the prompt");
    if (rc) return BAD(e, "prompt", "cannot tokenize the prompt: %s", err);
    return 0;
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
