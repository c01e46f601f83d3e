/* parse.c — request validation shared by both API dialects: the body as a JSON object, typed optional
 * fields with ranges, stop strings, chat messages, the chat prompt (ChatML + memory window), the length
 * checks, ids and seeds.
 * Every problem becomes a 400 with a message that names the field, never a crash. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* The memory a body's JSON may take. jansson's values cost 30-100 bytes each, so a 4 MB body of "[0,0,0,...]" or
 * "[[],[],...]" would become 60-180 MB of them (measured); the parse of one body may allocate (in total, frees
 * not counted) at most PARSE_MEM_PER_BYTE times its length plus PARSE_MEM_BASE. A body that is one long string
 * needs 3x its length (jansson's doubling buffer, then the string); chat messages of a few hundred bytes ~2x;
 * the base leaves room for 10000 tiny ones. */
#define PARSE_MEM_PER_BYTE 3
#define PARSE_MEM_BASE (4u << 20)

/* jansson's allocator. While a thread parses a body, jansson's allocations come from that thread's parse region:
 * one anonymous mapping of the budget's size (pages cost memory only once touched), bumped, never freed piece by
 * piece, unmapped whole when the request is done with its JSON (parse_body_free). So a parse cannot take more
 * than its budget, and what it took goes back to the system at once instead of staying in a thread's malloc
 * arena as millions of freed 32-byte values. Process-wide (jansson has one allocator) but free of cost
 * elsewhere: a thread-local range test before malloc / free. */
static _Thread_local char *region, *region_end, *region_top;
static _Thread_local bool region_open, region_over;

static void *region_malloc(size_t n) {
    if (!region_open) return malloc(n);
    n = (n + 15) & ~(size_t)15;
    if (n > (size_t)(region_end - region_top)) { region_over = true; return NULL; }
    void *p = region_top;
    region_top += n;
    return p;
}
static void region_free(void *p) {
    if ((char *)p >= region && (char *)p < region_end) return; /* the whole region goes at once */
    free(p);
}
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;
static void alloc_init(void) { json_set_alloc_funcs(region_malloc, region_free); }

void parse_body_free(json_t *j) {
    json_decref(j);
    if (region) munmap(region, (size_t)(region_end - region));
    region = region_end = region_top = NULL;
}

json_t *parse_body(const req_ctx *rq, api_error *e) {
    if (rq->body.n == 0) {
        BAD(e, NULL, "the request body is empty; send a JSON object");
        return NULL;
    }
    pthread_once(&alloc_once, alloc_init);
    json_error_t je;
    size_t budget = (rq->body.n * PARSE_MEM_PER_BYTE + PARSE_MEM_BASE + 4095) & ~(size_t)4095;
    parse_body_free(NULL); /* a region left behind by an earlier request of this thread */
    void *m = mmap(NULL, budget, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    region = region_top = m;
    region_end = region + budget;
    region_open = true;
    region_over = false;
    json_t *j = json_loadb(rq->body.p, rq->body.n, JSON_REJECT_DUPLICATES, &je);
    region_open = false; /* the values stay in the region until parse_body_free; nothing new goes there */
    if (!j && region_over) {
        parse_body_free(NULL);
        api_errf(e, 413, "invalid_request_error", "request_too_large", NULL,
                 "the request body has too many JSON values to parse (more than any request this server accepts)");
        return NULL;
    }
    if (!j) {
        parse_body_free(NULL);
        if (strstr(je.text, "UTF-8") || strstr(je.text, "decode byte"))
            BAD(e, NULL, "the request body is not valid UTF-8 (byte %d)", je.position);
        else
            BAD(e, NULL, "the request body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        parse_body_free(j);
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

int get_sample_fields(json_t *o, const sample_field *f, size_t n, qe_sample_params *sp, api_error *e) {
    for (size_t k = 0; k < n; k++) {
        char *dst = (char *)sp + f[k].offset;
        double x;
        int64_t i;
        int rc;
        if (f[k].type == SF_FLOAT) {
            if ((rc = get_num(o, f[k].key, f[k].lo, f[k].hi, &x, e)) < 0) return -1;
            if (rc) *(float *)dst = (float)x;
        } else if (f[k].type == SF_SEED) {
            if ((rc = get_int(o, f[k].key, INT64_MIN, INT64_MAX, &i, e)) < 0) return -1;
            if (rc) *(uint64_t *)dst = (uint64_t)i;
        } else {
            if ((rc = get_int(o, f[k].key, (int64_t)f[k].lo, (int64_t)f[k].hi, &i, e)) < 0) return -1;
            if (rc) *(int *)dst = f[k].type == SF_LAST_N && i < 0 ? 0 : (int)i;
        }
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

int get_cache_salt(qe_server *s, const req_ctx *rq, json_t *o, gen_req *r, api_error *e) {
    const char *salt = NULL;
    if (get_str(o, "cache_salt", &salt, e) < 0) return -1;
    size_t n = salt ? json_string_length(json_object_get(o, "cache_salt")) : 0;
    if (n > 1024) return BAD(e, "cache_salt", "'cache_salt' may be at most 1024 bytes");
    r->jp.cache_salt = auth_cache_salt(&s->auth, rq->key_index, salt, n);
    return 0;
}

void gen_req_free(gen_req *r) {
    qe_ids_free(&r->prompt);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    free(r->stops);
    r->stops = NULL;
    r->n_stops = 0;
}

/* ---- chat messages (both dialects' "messages") ----------------------------------------------------------- */

/* Text of a message's content: a string, or an array of {type:"text", text} parts (joined). */
static int content_text(json_t *content, int idx, bool may_be_null, qe_buf *out, api_error *e) {
    if (!content || json_is_null(content)) {
        if (may_be_null) return 0;
        return BAD(e, "messages", "messages[%d].content is missing", idx);
    }
    if (json_is_string(content)) return qe_buf_append(out, json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return BAD(e, "messages", "messages[%d].content must be a string or an array of text parts", idx);
    size_t k;
    json_t *part;
    json_array_foreach(content, k, part) {
        const char *type = NULL, *text = NULL;
        if (!json_is_object(part) || get_str(part, "type", &type, e) != 1)
            return BAD(e, "messages", "messages[%d].content[%zu] must be an object with a 'type'", idx, k);
        if (strcmp(type, "text") != 0)
            return BAD(e, "messages", "messages[%d].content[%zu]: only text parts are supported (got '%s')", idx, k, type);
        if (get_str(part, "text", &text, e) != 1)
            return BAD(e, "messages", "messages[%d].content[%zu].text must be a string", idx, k);
        if (qe_buf_append(out, text, strlen(text))) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    return 0;
}

/* messages -> chat_msg[], validated. Texts live in bufs (one per message); free both with free_messages. */
static int parse_messages(json_t *msgs, chat_msg **out_m, qe_buf **out_bufs, int *out_n, api_error *e) {
    if (!msgs) return BAD(e, "messages", "'messages' is required");
    if (!json_is_array(msgs)) return BAD(e, "messages", "'messages' must be an array");
    int n = (int)json_array_size(msgs);
    if (n == 0) return BAD(e, "messages", "'messages' must contain at least one message");
    if (n > 10000) return BAD(e, "messages", "too many messages (%d)", n);
    chat_msg *m = calloc(n, sizeof *m);
    qe_buf *bufs = calloc(n, sizeof *bufs);
    if (!m || !bufs) { free(m); free(bufs); return api_errf(e, 500, "server_error", NULL, NULL, "out of memory"); }
    *out_m = m;
    *out_bufs = bufs;
    *out_n = n;
    for (int i = 0; i < n; i++) {
        json_t *msg = json_array_get(msgs, i);
        const char *role = NULL;
        if (!json_is_object(msg)) return BAD(e, "messages", "messages[%d] must be an object", i);
        if (get_str(msg, "role", &role, e) != 1) return BAD(e, "messages", "messages[%d].role must be a string", i);
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return BAD(e, "messages", "messages[%d].role must be 'system', 'user' or 'assistant' (got '%s')", i, role);
        if (content_text(json_object_get(msg, "content"), i, !strcmp(role, "assistant"), &bufs[i], e)) return -1;
        m[i].role = role;
        m[i].text = bufs[i].p ? bufs[i].p : "";
        m[i].len = bufs[i].n;
    }
    return 0;
}

static void free_messages(chat_msg *m, qe_buf *bufs, int n) {
    for (int i = 0; bufs && i < n; i++) qe_buf_free(&bufs[i]);
    free(bufs);
    free(m);
}

int parse_chat(qe_server *s, json_t *j, gen_req *r, api_error *e) {
    chat_msg *m = NULL;
    qe_buf *bufs = NULL;
    int n = 0, rc = -1;
    int64_t rounds = s->o.memory_rounds;
    if (get_int(j, "memory_rounds", 0, 100000, &rounds, e) < 0) goto out;
    if (parse_messages(json_object_get(j, "messages"), &m, &bufs, &n, e)) goto out;
    if (render_chat(s, m, n, (int)rounds, r, e)) goto out;
    rc = check_lengths(s, r, e);
out:
    free_messages(m, bufs, n);
    return rc;
}

/* ---- prompts ---------------------------------------------------------------------------------------- */

/* The chat prompt: chat.h's stateless window renders Qwen2.5's ChatML (default system prompt when none,
 * message text never parsed for special tokens) keeping the system message, the newest round and at most
 * `rounds` earlier rounds (rounds <= 0: all). With a window the budget also drops the oldest rounds that do
 * not fit the context (room left for the answer); with rounds <= 0 nothing is dropped and a conversation
 * that does not fit is a 400 context_length_exceeded, never silently cut. */
/* A prompt that could not be made for a reason other than its length: the tokenizer's and template's words are
 * for the operator's log, the client gets a stable message. */
static int prompt_failed(int rc, const char *err, api_error *e) {
    if (rc == QE_OK) return 0;
    if (rc == QE_ENOMEM) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
    qe_log(QE_LOG_ERROR, "cannot make the prompt: %s", err);
    return api_errf(e, 500, "server_error", NULL, NULL, "the server could not prepare the prompt");
}

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
    char err[QE_ERR_LEN] = "";
    size_t dropped = 0;
    int rc;
    if (rounds > 0) {
        int room = r->jp.max_tokens > 0 ? r->jp.max_tokens : 256;
        if (room > n_ctx / 2) room = n_ctx / 2;
        rc = qe_chat_window_ids(s->model->tok, cm, (size_t)n, rounds, (size_t)(n_ctx - room), &r->prompt, &dropped, err);
    } else {
        /* no window: everything or nothing, and tokenizing stops as soon as the context is passed */
        rc = qe_chat_render_ids_max(s->model->tok, cm, (size_t)n, true, (size_t)n_ctx - 1, &r->prompt, err);
    }
    free(cm);
    r->n_dropped_msgs = (int)dropped;
    if (rc == QE_ERANGE)
        return api_errf(e, 400, "invalid_request_error", "context_length_exceeded", "messages",
                        "%s does not fit this model's context of %d tokens (leave room for the answer). Shorten it.",
                        rounds > 0 ? "the newest message" : "the conversation", n_ctx);
    return prompt_failed(rc, err, e);
}

int render_raw(qe_server *s, const char *text, size_t len, bool parse_special, gen_req *r, api_error *e) {
    if (len == 0) return BAD(e, "prompt", "'prompt' must not be empty");
    int n_ctx = qe_engine_n_ctx(atomic_load(&s->engine));
    char err[QE_ERR_LEN] = "";
    int rc = qe_tokenize_max(s->model->tok, text, len, parse_special, (size_t)n_ctx - 1, &r->prompt, err);
    if (rc == QE_ERANGE)
        return api_errf(e, 400, "invalid_request_error", "context_length_exceeded", "prompt",
                        "This model's maximum context length is %d tokens. However, your prompt has more tokens "
                        "than that (leave room for the answer). Shorten the prompt.", n_ctx);
    return prompt_failed(rc, err, e);
}

int get_token_ids(qe_server *s, json_t *a, const char *key, gen_req *r, api_error *e) {
    int n_ctx = qe_engine_n_ctx(atomic_load(&s->engine));
    /* checked before a single id is copied: an array that cannot fit costs nothing more */
    if (r->prompt.n + json_array_size(a) >= (size_t)n_ctx)
        return api_errf(e, 400, "invalid_request_error", "context_length_exceeded", key,
                        "This model's maximum context length is %d tokens. However, '%s' has %zu token ids "
                        "(leave room for the answer).", n_ctx, key, json_array_size(a));
    return get_ids(a, key, qe_tokenizer_n_vocab(s->model->tok), &r->prompt, e);
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

/* ---- ids, seeds and times ------------------------------------------------------------------------------ */

uint64_t random_seed(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) x = qe_now_ns() * 0x9E3779B97F4A7C15ull;
    return x;
}

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
