/* api_openai.c — the OpenAI dialect: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
 * in the shapes the official SDKs expect (chunk ids and `created` equal across a stream, the role in the
 * first chunk, an empty delta with finish_reason last, usage as one extra chunk with choices [] only when
 * stream_options.include_usage asks, then `data: [DONE]`).
 *
 * Non-standard, documented in docs/SERVER.md: "memory_rounds" (int >= 0) on chat requests — how many
 * earlier rounds the server keeps besides the current question (default: serve --memory-rounds, 0 = all);
 * "repetition_penalty", "top_k", "min_p", "ignore_eos" (benchmarks), "cache_salt" as in vLLM / llama.cpp. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"
#include "version.h"

#define BAD(e, param, ...) api_errf(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

static uint64_t random_seed(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) x = qe_now_ns() * 0x9E3779B97F4A7C15ull;
    return x;
}

/* Fields every OpenAI generation request shares. */
static int parse_common(qe_server *s, json_t *j, gen_req *r, api_error *e) {
    const char *model = NULL;
    double x;
    int64_t i;
    bool b;
    if (get_str(j, "model", &model, e) < 0) return -1;
    if (get_bool(j, "stream", &r->stream, e) < 0) return -1;
    json_t *so = json_object_get(j, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return BAD(e, "stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, e) < 0) return -1;
    }
    qe_sample_params_default(&r->jp.sample);
    r->jp.sample.seed = random_seed();
    int rc;
    if ((rc = get_int(j, "max_completion_tokens", 1, 1 << 30, &i, e)) < 0) return -1;
    if (rc == 0 && (rc = get_int(j, "max_tokens", 1, 1 << 30, &i, e)) < 0) return -1;
    if (rc == 1) r->jp.max_tokens = (int)i;
    if ((rc = get_num(j, "temperature", 0, 2, &x, e)) < 0) return -1;
    if (rc) r->jp.sample.temperature = (float)x;
    if ((rc = get_num(j, "top_p", 0, 1, &x, e)) < 0) return -1;
    if (rc) r->jp.sample.top_p = (float)x;
    if ((rc = get_int(j, "top_k", 0, 1 << 30, &i, e)) < 0) return -1;
    if (rc) r->jp.sample.top_k = (int)i;
    if ((rc = get_num(j, "min_p", 0, 1, &x, e)) < 0) return -1;
    if (rc) r->jp.sample.min_p = (float)x;
    if ((rc = get_num(j, "presence_penalty", -2, 2, &x, e)) < 0) return -1;
    if (rc) r->jp.sample.presence_penalty = (float)x;
    if ((rc = get_num(j, "frequency_penalty", -2, 2, &x, e)) < 0) return -1;
    if (rc) r->jp.sample.frequency_penalty = (float)x;
    if ((rc = get_num(j, "repetition_penalty", 0.01, 10, &x, e)) < 0) return -1;
    if (rc) r->jp.sample.repeat_penalty = (float)x;
    if ((rc = get_int(j, "seed", INT64_MIN, INT64_MAX, &i, e)) < 0) return -1;
    if (rc) r->jp.sample.seed = (uint64_t)i;
    if ((rc = get_int(j, "n", 1, 1, &i, e)) < 0) return BAD(e, "n", "only n = 1 is supported");
    if ((rc = get_bool(j, "logprobs", &b, e)) < 0) return -1;
    if (rc && b) return BAD(e, "logprobs", "logprobs are not supported");
    if (get_stops(j, "stop", r, e) < 0) return -1;
    if (get_bool(j, "ignore_eos", &r->jp.ignore_eos, e) < 0) return -1; /* benchmarks, as llama.cpp's server */
    return 0;
}

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

/* messages -> chat_msg[], validated. Texts live in bufs (one per message). */
int parse_messages(json_t *msgs, chat_msg **out_m, qe_buf **out_bufs, int *out_n, api_error *e) {
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

void free_messages(chat_msg *m, qe_buf *bufs, int n) {
    for (int i = 0; bufs && i < n; i++) qe_buf_free(&bufs[i]);
    free(bufs);
    free(m);
}

static int prepare_chat(qe_server *s, json_t *j, gen_req *r, json_t **reply, api_error *e) {
    (void)reply;
    chat_msg *m = NULL;
    qe_buf *bufs = NULL;
    int n = 0, rc = -1;
    int64_t rounds = s->o.memory_rounds;
    if (parse_common(s, j, r, e)) goto out;
    if (get_int(j, "memory_rounds", 0, 100000, &rounds, e) < 0) goto out;
    if (parse_messages(json_object_get(j, "messages"), &m, &bufs, &n, e)) goto out;
    if (render_chat(s, m, n, (int)rounds, r, e)) goto out;
    rc = check_lengths(s, r, e);
out:
    free_messages(m, bufs, n);
    return rc;
}

enum MHD_Result openai_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return gen_serve(c, s, rq, GEN_OPENAI_CHAT, prepare_chat);
}

static int prepare_completion(qe_server *s, json_t *j, gen_req *r, json_t **reply, api_error *e) {
    (void)reply;
    if (parse_common(s, j, r, e)) return -1;
    json_t *p = json_object_get(j, "prompt");
    if (p && json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (!p || json_is_null(p)) return BAD(e, "prompt", "'prompt' is required");
    if (json_is_string(p)) {
        /* the caller writes the whole prompt, so special tokens written in it are honoured (as llama.cpp does) */
        if (render_raw(s, json_string_value(p), json_string_length(p), true, r, e)) return -1;
    } else if (json_is_array(p) && json_array_size(p) > 0 && json_is_integer(json_array_get(p, 0))) {
        if (get_token_ids(s, p, "prompt", r, e)) return -1;
    } else {
        return BAD(e, "prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
    }
    return check_lengths(s, r, e);
}

enum MHD_Result openai_completions(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return gen_serve(c, s, rq, GEN_OPENAI_COMPLETION, prepare_completion);
}

/* "max_model_len" (as vLLM names it) is the context per conversation: the page keeps max_tokens under it. */
static json_t *model_obj(qe_server *s) {
    return json_pack("{s:s,s:s,s:I,s:s,s:i}", "id", s->model_id, "object", "model", "created", (json_int_t)s->started,
                     "owned_by", "qwen-edge", "max_model_len", qe_engine_n_ctx(atomic_load(&s->engine)));
}

enum MHD_Result openai_models(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const char *id) {
    if (id) {
        if (strcmp(id, s->model_id) != 0) {
            api_error e;
            api_errf(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%s' does not exist", id);
            return send_error(c, s, rq, DIALECT_OPENAI, &e);
        }
        return send_json(c, s, rq, 200, model_obj(s));
    }
    return send_json(c, s, rq, 200, json_pack("{s:s,s:[o]}", "object", "list", "data", model_obj(s)));
}

/* ---- frames ---------------------------------------------------------------------------------------- */

static json_t *usage_obj(const gen_state *g) {
    const qe_event *d = &g->done;
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", d->n_prompt, "completion_tokens", d->n_gen,
                     "total_tokens", d->n_prompt + d->n_gen, "prompt_tokens_details", "cached_tokens", d->n_cached);
}

static json_t *chunk(gen_state *g, json_t *choice) {
    bool chat = g->req.kind == GEN_OPENAI_CHAT;
    json_t *choices = json_array();
    if (choice) json_array_append_new(choices, choice);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "id", g->id, "object",
                          chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)g->created,
                          "model", g->s->model_id, "system_fingerprint", "qwen-edge-" QE_VERSION, "choices", choices);
    if (j && g->req.include_usage) json_object_set_new(j, "usage", json_null());
    return j;
}

static int sse(qe_buf *out, json_t *j) {
    if (!j) return QE_ENOMEM;
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!txt) return QE_ENOMEM;
    int rc = qe_buf_printf(out, "data: %s\n\n", txt);
    free(txt);
    return rc;
}

static json_t *text_choice(gen_state *g, const char *text, size_t n, const char *finish) {
    if (g->req.kind == GEN_OPENAI_CHAT) {
        json_t *delta = n || !finish ? json_pack("{s:s%}", "content", text, n) : json_object();
        return json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs",
                         "finish_reason", finish ? json_string(finish) : json_null());
    }
    return json_pack("{s:s%,s:i,s:n,s:o}", "text", text, n, "index", 0, "logprobs", "finish_reason",
                     finish ? json_string(finish) : json_null());
}

int openai_frame_first(gen_state *g, qe_buf *out) {
    json_t *choice = json_pack("{s:i,s:{s:s,s:s},s:n,s:n}", "index", 0, "delta", "role", "assistant", "content", "",
                               "logprobs", "finish_reason");
    return sse(out, chunk(g, choice));
}

int openai_frame_delta(gen_state *g, const char *text, size_t n, qe_buf *out) {
    return sse(out, chunk(g, text_choice(g, text, n, NULL)));
}

int openai_frame_final(gen_state *g, const char *finish, qe_buf *out) {
    int rc = sse(out, chunk(g, text_choice(g, "", 0, finish)));
    if (!rc && g->req.include_usage) {
        json_t *u = chunk(g, NULL);
        if (!u) return QE_ENOMEM;
        json_object_set_new(u, "usage", usage_obj(g));
        rc = sse(out, u);
    }
    return rc;
}

int frame_error(gen_state *g, const char *message, qe_buf *out) {
    api_error e;
    api_errf(&e, 500, "server_error", NULL, NULL, "%s", message);
    json_t *j = error_json(g->req.kind == GEN_OPENAI_CHAT || g->req.kind == GEN_OPENAI_COMPLETION ? DIALECT_OPENAI
                                                                                                  : DIALECT_OLLAMA, &e);
    if (g->req.kind == GEN_OPENAI_CHAT || g->req.kind == GEN_OPENAI_COMPLETION) return sse(out, j);
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!txt) return QE_ENOMEM;
    int rc = qe_buf_printf(out, "%s\n", txt);
    free(txt);
    return rc;
}

json_t *openai_body(gen_state *g, const char *text, size_t n, const char *finish) {
    bool chat = g->req.kind == GEN_OPENAI_CHAT;
    json_t *choice = chat ? json_pack("{s:i,s:{s:s,s:s%,s:n},s:n,s:s}", "index", 0, "message", "role", "assistant",
                                      "content", text, n, "refusal", "logprobs", "finish_reason", finish)
                          : json_pack("{s:s%,s:i,s:n,s:s}", "text", text, n, "index", 0, "logprobs", "finish_reason", finish);
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o],s:o}", "id", g->id, "object", chat ? "chat.completion" : "text_completion",
                     "created", (json_int_t)g->created, "model", g->s->model_id, "system_fingerprint",
                     "qwen-edge-" QE_VERSION, "choices", choice, "usage", usage_obj(g));
}
