/* api_openai.c — the OpenAI dialect: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
 * in the shapes the official SDKs expect (chunk ids and `created` equal across a stream, the role in the
 * first chunk, an empty delta with finish_reason last, usage as one extra chunk with choices [] only when
 * stream_options.include_usage asks, then `data: [DONE]`).
 *
 * Non-standard, documented in docs/SERVER.md: "memory_rounds" (int >= 0) on chat requests — how many
 * earlier rounds the server keeps besides the current question (default: serve --memory-rounds, 0 = all);
 * "repetition_penalty", "top_k", "min_p", "ignore_eos" (benchmarks), "cache_salt" as in vLLM / llama.cpp. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "version.h"

#define SP(field) offsetof(qe_sample_params, field)
/* The sampling fields at the top level of the body, in the order they are checked. */
static const sample_field sample_fields[] = {
    {"temperature", SF_FLOAT, 0, 2, SP(temperature)},
    {"top_p", SF_FLOAT, 0, 1, SP(top_p)},
    {"top_k", SF_INT, 0, 1 << 30, SP(top_k)},
    {"min_p", SF_FLOAT, 0, 1, SP(min_p)},
    {"presence_penalty", SF_FLOAT, -2, 2, SP(presence_penalty)},
    {"frequency_penalty", SF_FLOAT, -2, 2, SP(frequency_penalty)},
    {"repetition_penalty", SF_FLOAT, 0.01, 10, SP(repeat_penalty)},
    {"seed", SF_SEED, 0, 0, SP(seed)},
};

/* Fields every OpenAI generation request shares. */
static int parse_common(qe_server *s, json_t *j, gen_req *r, api_error *e) {
    const char *model = NULL;
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
    if (get_sample_fields(j, sample_fields, sizeof sample_fields / sizeof *sample_fields, &r->jp.sample, e)) return -1;
    if ((rc = get_int(j, "n", 1, 1, &i, e)) < 0) return BAD(e, "n", "only n = 1 is supported");
    if ((rc = get_bool(j, "logprobs", &b, e)) < 0) return -1;
    if (rc && b) return BAD(e, "logprobs", "logprobs are not supported");
    if (get_stops(j, "stop", r, e) < 0) return -1;
    if (get_bool(j, "ignore_eos", &r->jp.ignore_eos, e) < 0) return -1; /* benchmarks, as llama.cpp's server */
    return 0;
}

static int prepare_chat(qe_server *s, json_t *j, gen_req *r, json_t **reply, api_error *e) {
    (void)reply;
    if (parse_common(s, j, r, e)) return -1;
    return parse_chat(s, j, r, e);
}

enum MHD_Result openai_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return gen_serve(c, s, rq, &openai_chat_dialect);
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
    return gen_serve(c, s, rq, &openai_completion_dialect);
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

/* A stream chunk of `object` with at most one choice (none: the usage chunk). */
static json_t *chunk(gen_state *g, const char *object, json_t *choice) {
    json_t *choices = json_array();
    if (choice) json_array_append_new(choices, choice);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "id", g->id, "object", object, "created", (json_int_t)g->created,
                          "model", g->s->model_id, "system_fingerprint", "qwen-edge-" QE_VERSION, "choices", choices);
    if (j && g->req.include_usage) json_object_set_new(j, "usage", json_null());
    return j;
}

static int sse(qe_buf *out, json_t *j) { return frame_json(out, "data: ", j, "\n\n"); }

static json_t *finish_reason(const char *finish) { return finish ? json_string(finish) : json_null(); }

/* The choice of a chat chunk: text as a delta (an empty delta beside the finish reason). */
static json_t *chat_choice(const char *text, size_t n, const char *finish) {
    json_t *delta = n || !finish ? json_pack("{s:s%}", "content", text, n) : json_object();
    return json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason", finish_reason(finish));
}

static json_t *completion_choice(const char *text, size_t n, const char *finish) {
    return json_pack("{s:s%,s:i,s:n,s:o}", "text", text, n, "index", 0, "logprobs", "finish_reason", finish_reason(finish));
}

/* The last chunk, then usage as one more chunk with no choices when stream_options.include_usage asked. */
static int frame_final(gen_state *g, const char *object, json_t *choice, qe_buf *out) {
    int rc = sse(out, chunk(g, object, choice));
    if (!rc && g->req.include_usage) {
        json_t *u = chunk(g, object, NULL);
        if (!u) return QE_ENOMEM;
        json_object_set_new(u, "usage", usage_obj(g));
        rc = sse(out, u);
    }
    return rc;
}

static int frame_error(gen_state *g, const char *message, qe_buf *out) {
    (void)g;
    api_error e;
    api_errf(&e, 500, "server_error", NULL, NULL, "%s", message);
    return sse(out, error_json(DIALECT_OPENAI, &e));
}

static json_t *body(gen_state *g, const char *object, json_t *choice) {
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o],s:o}", "id", g->id, "object", object, "created", (json_int_t)g->created,
                     "model", g->s->model_id, "system_fingerprint", "qwen-edge-" QE_VERSION, "choices", choice, "usage",
                     usage_obj(g));
}

/* chat: the role in a first chunk of its own, then content deltas */
static int chat_first(gen_state *g, qe_buf *out) {
    json_t *choice = json_pack("{s:i,s:{s:s,s:s},s:n,s:n}", "index", 0, "delta", "role", "assistant", "content", "",
                               "logprobs", "finish_reason");
    return sse(out, chunk(g, "chat.completion.chunk", choice));
}
static int chat_delta(gen_state *g, const char *text, size_t n, qe_buf *out) {
    return sse(out, chunk(g, "chat.completion.chunk", chat_choice(text, n, NULL)));
}
static int chat_final(gen_state *g, const char *finish, qe_buf *out) {
    return frame_final(g, "chat.completion.chunk", chat_choice("", 0, finish), out);
}
static json_t *chat_body(gen_state *g, const char *text, size_t n, const char *finish) {
    return body(g, "chat.completion", json_pack("{s:i,s:{s:s,s:s%,s:n},s:n,s:s}", "index", 0, "message", "role",
                                                "assistant", "content", text, n, "refusal", "logprobs", "finish_reason",
                                                finish));
}

static int completion_delta(gen_state *g, const char *text, size_t n, qe_buf *out) {
    return sse(out, chunk(g, "text_completion", completion_choice(text, n, NULL)));
}
static int completion_final(gen_state *g, const char *finish, qe_buf *out) {
    return frame_final(g, "text_completion", completion_choice("", 0, finish), out);
}
static json_t *completion_body(gen_state *g, const char *text, size_t n, const char *finish) {
    return body(g, "text_completion", json_pack("{s:s%,s:i,s:n,s:s}", "text", text, n, "index", 0, "logprobs",
                                                "finish_reason", finish));
}

const gen_dialect openai_chat_dialect = {
    .errors = DIALECT_OPENAI,
    .prepare = prepare_chat,
    .id_prefix = "chatcmpl-",
    .content_type = "text/event-stream; charset=utf-8",
    .keep_alive = ": keep-alive\n\n", /* an SSE comment */
    .end = "data: [DONE]\n\n",
    .frame_first = chat_first,
    .frame_delta = chat_delta,
    .frame_final = chat_final,
    .frame_error = frame_error,
    .body = chat_body,
};

const gen_dialect openai_completion_dialect = {
    .errors = DIALECT_OPENAI,
    .prepare = prepare_completion,
    .id_prefix = "cmpl-",
    .content_type = "text/event-stream; charset=utf-8",
    .keep_alive = ": keep-alive\n\n",
    .end = "data: [DONE]\n\n",
    .frame_delta = completion_delta,
    .frame_final = completion_final,
    .frame_error = frame_error,
    .body = completion_body,
};
