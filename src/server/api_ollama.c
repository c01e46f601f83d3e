/* api_ollama.c — the ollama dialect: POST /api/chat, POST /api/generate (NDJSON streaming, "stream"
 * defaults to true), GET /api/tags, GET /api/version, POST /api/show, in ollama's response shapes
 * (docs/api.md of ollama: durations in nanoseconds, created_at in RFC 3339 UTC, errors {"error":"..."}).
 * Any model name is accepted: this server has exactly one model. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "version.h"

#define SP(field) offsetof(qe_sample_params, field)
/* The sampling fields of "options", in the order they are checked (ollama's names and ranges). */
static const sample_field sample_fields[] = {
    {"temperature", SF_FLOAT, 0, 100, SP(temperature)},
    {"top_p", SF_FLOAT, 0, 1, SP(top_p)},
    {"top_k", SF_INT, 0, 1 << 30, SP(top_k)},
    {"min_p", SF_FLOAT, 0, 1, SP(min_p)},
    {"repeat_penalty", SF_FLOAT, 0.01, 10, SP(repeat_penalty)},
    {"presence_penalty", SF_FLOAT, -2, 2, SP(presence_penalty)},
    {"frequency_penalty", SF_FLOAT, -2, 2, SP(frequency_penalty)},
    {"repeat_last_n", SF_LAST_N, -1, 1 << 30, SP(penalty_last_n)},
    {"seed", SF_SEED, 0, 0, SP(seed)},
};

static int parse_options(qe_server *s, json_t *j, gen_req *r, api_error *e) {
    bool stream = true;
    if (get_bool(j, "stream", &stream, e) < 0) return -1;
    r->stream = stream;
    const char *model = NULL, *format = NULL;
    if (get_str(j, "model", &model, e) < 0) return -1;
    json_t *fmt = json_object_get(j, "format");
    if (fmt && !json_is_null(fmt) && !(json_is_string(fmt) && (format = json_string_value(fmt)) && !format[0]))
        return BAD(e, "format", "'format' (JSON mode) is not supported");
    qe_sample_params_default(&r->jp.sample);
    r->jp.sample.seed = random_seed();
    json_t *o = json_object_get(j, "options");
    if (!o || json_is_null(o)) return 0;
    if (!json_is_object(o)) return BAD(e, "options", "'options' must be an object");
    int64_t i;
    int rc;
    if (get_sample_fields(o, sample_fields, sizeof sample_fields / sizeof *sample_fields, &r->jp.sample, e)) return -1;
    /* num_predict: -1 = no limit, -2 = until the context is full; both mean "up to the context" here */
    if ((rc = get_int(o, "num_predict", -2, 1 << 30, &i, e)) < 0) return -1;
    if (rc) r->jp.max_tokens = i > 0 ? (int)i : 0;
    if (rc && i == 0) return BAD(e, "options.num_predict", "'num_predict' must not be 0");
    if (get_stops(o, "stop", r, e) < 0) return -1;
    return 0;
}

static int prepare_chat(qe_server *s, json_t *j, gen_req *r, json_t **reply, api_error *e) {
    (void)reply;
    if (parse_options(s, j, r, e)) return -1;
    size_t k;
    json_t *msg;
    json_array_foreach(json_object_get(j, "messages"), k, msg) {
        json_t *img = json_object_get(msg, "images");
        if (img && json_is_array(img) && json_array_size(img) > 0)
            return BAD(e, "messages", "images are not supported by this model");
    }
    return parse_chat(s, j, r, e);
}

enum MHD_Result ollama_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return gen_serve(c, s, rq, &ollama_chat_dialect);
}

static int prepare_generate(qe_server *s, json_t *j, gen_req *r, json_t **reply, api_error *e) {
    const char *prompt = NULL, *system = NULL;
    bool raw = false;
    r->want_context = true;
    if (parse_options(s, j, r, e)) return -1;
    if (get_str(j, "prompt", &prompt, e) < 0 || get_str(j, "system", &system, e) < 0 || get_bool(j, "raw", &raw, e) < 0)
        return -1;
    json_t *img = json_object_get(j, "images");
    if (img && json_is_array(img) && json_array_size(img) > 0) return BAD(e, "images", "images are not supported by this model");
    if (!prompt || !prompt[0]) {
        /* ollama answers an empty prompt by (re)loading the model: done at once */
        char now[48];
        iso_time(now, sizeof now, qe_wall_now());
        *reply = json_pack("{s:s,s:s,s:s,s:b,s:s}", "model", s->model_id, "created_at", now, "response", "", "done", 1,
                           "done_reason", "load");
        if (!*reply) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
        return 0;
    }
    json_t *ctx = json_object_get(j, "context");
    if (ctx && !json_is_null(ctx)) {
        /* the ids of an earlier exchange, returned as "context" by a previous call: continue after them */
        if (!json_is_array(ctx)) return BAD(e, "context", "'context' must be an array of token ids");
        if (get_token_ids(s, ctx, "context", r, e)) return -1;
    }
    if (raw) {
        if (render_raw(s, prompt, strlen(prompt), true, r, e)) return -1;
    } else {
        chat_msg m[2];
        int n = 0;
        if (system && system[0]) m[n++] = (chat_msg){"system", system, strlen(system)};
        m[n++] = (chat_msg){"user", prompt, strlen(prompt)};
        if (r->prompt.n > 0) {
            /* after a context the system turn was already said: render only the new user turn */
            gen_req tmp = {0};
            if (render_chat(s, &m[n - 1], 1, 0, &tmp, e)) { gen_req_free(&tmp); return -1; }
            /* render_chat adds a default system turn when the first message is not a system one: skip it */
            size_t skip = 0;
            int32_t ims = qe_tokenizer_im_start(s->model->tok);
            for (size_t i = 1; i < tmp.prompt.n; i++) if (tmp.prompt.p[i] == ims) { skip = i; break; }
            int rc = 0;
            for (size_t i = skip; i < tmp.prompt.n && rc == 0; i++) rc = qe_ids_push(&r->prompt, tmp.prompt.p[i]);
            gen_req_free(&tmp);
            if (rc) return api_errf(e, 500, "server_error", NULL, NULL, "out of memory");
        } else if (render_chat(s, m, n, 0, r, e)) {
            return -1;
        }
    }
    return check_lengths(s, r, e);
}

enum MHD_Result ollama_generate(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return gen_serve(c, s, rq, &ollama_generate_dialect);
}

/* ---- frames ---------------------------------------------------------------------------------------- */

static int ndjson(qe_buf *out, json_t *j) { return frame_json(out, "", j, "\n"); }

/* What every object of an answer starts with; /api/chat puts the text in a message, /api/generate in "response". */
static json_t *chat_obj(gen_state *g, const char *text, size_t n) {
    char now[48];
    iso_time(now, sizeof now, qe_wall_now());
    return json_pack("{s:s,s:s,s:{s:s,s:s%}}", "model", g->s->model_id, "created_at", now, "message", "role",
                     "assistant", "content", text, n);
}

static json_t *generate_obj(gen_state *g, const char *text, size_t n) {
    char now[48];
    iso_time(now, sizeof now, qe_wall_now());
    return json_pack("{s:s,s:s,s:s%}", "model", g->s->model_id, "created_at", now, "response", text, n);
}

static int delta(qe_buf *out, json_t *j) {
    if (j) json_object_set_new(j, "done", json_false());
    return ndjson(out, j);
}

/* The last object (streaming or not): done, the reason, the ids for "context" when asked, counts and timings. */
static json_t *final_obj(gen_state *g, json_t *j, const char *finish) {
    if (!j) return NULL;
    const qe_event *d = &g->done;
    json_object_set_new(j, "done_reason", json_string(!strcmp(finish, "length") ? "length" : "stop"));
    json_object_set_new(j, "done", json_true());
    if (g->req.want_context) {
        json_t *ctx = json_array();
        for (size_t i = 0; i < g->req.prompt.n; i++) json_array_append_new(ctx, json_integer(g->req.prompt.p[i]));
        for (size_t i = 0; i < g->gen_ids.n; i++) json_array_append_new(ctx, json_integer(g->gen_ids.p[i]));
        json_object_set_new(j, "context", ctx);
    }
    json_object_set_new(j, "total_duration", json_integer((json_int_t)((qe_now() - g->t_start) * 1e9)));
    json_object_set_new(j, "load_duration", json_integer(0));
    json_object_set_new(j, "prompt_eval_count", json_integer(d->n_prompt));
    json_object_set_new(j, "prompt_eval_duration", json_integer((json_int_t)(d->t_prompt_ms * 1e6)));
    json_object_set_new(j, "eval_count", json_integer(d->n_gen));
    json_object_set_new(j, "eval_duration", json_integer((json_int_t)(d->t_gen_ms * 1e6)));
    return j;
}

static int frame_error(gen_state *g, const char *message, qe_buf *out) {
    (void)g;
    api_error e;
    api_errf(&e, 500, "server_error", NULL, NULL, "%s", message);
    return ndjson(out, error_json(DIALECT_OLLAMA, &e));
}

static int chat_delta(gen_state *g, const char *text, size_t n, qe_buf *out) { return delta(out, chat_obj(g, text, n)); }
static int chat_final(gen_state *g, const char *finish, qe_buf *out) {
    return ndjson(out, final_obj(g, chat_obj(g, "", 0), finish));
}
static json_t *chat_body(gen_state *g, const char *text, size_t n, const char *finish) {
    return final_obj(g, chat_obj(g, text, n), finish);
}

static int generate_delta(gen_state *g, const char *text, size_t n, qe_buf *out) {
    return delta(out, generate_obj(g, text, n));
}
static int generate_final(gen_state *g, const char *finish, qe_buf *out) {
    return ndjson(out, final_obj(g, generate_obj(g, "", 0), finish));
}
static json_t *generate_body(gen_state *g, const char *text, size_t n, const char *finish) {
    return final_obj(g, generate_obj(g, text, n), finish);
}

/* NDJSON: no first frame, no end marker, no comments to keep a quiet stream alive */
const gen_dialect ollama_chat_dialect = {
    .errors = DIALECT_OLLAMA,
    .prepare = prepare_chat,
    .id_prefix = "cmpl-",
    .content_type = "application/x-ndjson",
    .frame_delta = chat_delta,
    .frame_final = chat_final,
    .frame_error = frame_error,
    .body = chat_body,
};

const gen_dialect ollama_generate_dialect = {
    .errors = DIALECT_OLLAMA,
    .prepare = prepare_generate,
    .id_prefix = "cmpl-",
    .content_type = "application/x-ndjson",
    .frame_delta = generate_delta,
    .frame_final = generate_final,
    .frame_error = frame_error,
    .body = generate_body,
};

/* ---- model information ------------------------------------------------------------------------------- */

static uint64_t param_count(const qe_config *c) {
    uint64_t e = c->n_embd, q = (uint64_t)c->n_head * c->head_dim, kv = (uint64_t)c->n_head_kv * c->head_dim;
    uint64_t layer = e * q + q + 2 * (e * kv + kv) + q * e + 3 * e * c->n_ff + 2 * e;
    return (uint64_t)c->n_vocab * e * (c->tied_output ? 1 : 2) + (uint64_t)c->n_layer * layer + e;
}

static void details(qe_server *s, char *psize, size_t np, char *quant, size_t nq) {
    uint64_t p = param_count(&s->model->cfg);
    if (p >= 1000000000ull) snprintf(psize, np, "%.1fB", p / 1e9);
    else snprintf(psize, np, "%.2fM", p / 1e6);
    const char *w = s->model->weight_types ? s->model->weight_types : "unknown";
    if (!strncmp(w, "mixed", 5)) w = "mixed";
    size_t i = 0;
    for (; w[i] && i + 1 < nq; i++) quant[i] = (w[i] >= 'a' && w[i] <= 'z') ? w[i] - 32 : w[i];
    quant[i] = 0;
}

static json_t *details_obj(qe_server *s) {
    char psize[32], quant[64];
    details(s, psize, sizeof psize, quant, sizeof quant);
    return json_pack("{s:s,s:s,s:s,s:[s],s:s,s:s}", "parent_model", "", "format", "gguf", "family", "qwen2", "families",
                     "qwen2", "parameter_size", psize, "quantization_level", quant);
}

static void modified_at(qe_server *s, char *out, size_t n) {
    struct stat st;
    double t = s->model->path && stat(s->model->path, &st) == 0 ? (double)st.st_mtime : (double)s->started;
    iso_time(out, n, t);
}

enum MHD_Result ollama_tags(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    char mod[48], digest[65], name[300];
    modified_at(s, mod, sizeof mod);
    /* ollama's digest is the sha256 of the blob; hashing a large file per request is too slow, so this is a
     * stable stand-in: 4 FNV-1a hashes over path, size and name */
    uint64_t h[4];
    for (int k = 0; k < 4; k++) {
        h[k] = 1469598103934665603ull ^ (uint64_t)(k * 0x9E3779B97F4A7C15ull);
        char buf[600];
        int nb = snprintf(buf, sizeof buf, "%s|%llu|%s", s->model->path ? s->model->path : "",
                          (unsigned long long)s->model->file_bytes, s->model_id);
        for (int i = 0; i < nb && i < (int)sizeof buf; i++) h[k] = (h[k] ^ (uint8_t)buf[i]) * 1099511628211ull;
    }
    snprintf(digest, sizeof digest, "%016llx%016llx%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1],
             (unsigned long long)h[2], (unsigned long long)h[3]);
    snprintf(name, sizeof name, "%s%s", s->model_id, strchr(s->model_id, ':') ? "" : ":latest");
    json_t *m = json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", name, "model", name, "modified_at", mod, "size",
                          (json_int_t)s->model->file_bytes, "digest", digest, "details", details_obj(s));
    return send_json(c, s, rq, 200, json_pack("{s:[o]}", "models", m));
}

enum MHD_Result ollama_version(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return send_json(c, s, rq, 200, json_pack("{s:s}", "version", QE_VERSION));
}

enum MHD_Result ollama_show(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    api_error e = {0};
    json_t *j = parse_body(rq, &e);
    if (!j) return send_error(c, s, rq, DIALECT_OLLAMA, &e);
    const char *model = NULL, *name = NULL;
    if (get_str(j, "model", &model, &e) < 0 || get_str(j, "name", &name, &e) < 0) {
        parse_body_free(j);
        return send_error(c, s, rq, DIALECT_OLLAMA, &e);
    }
    parse_body_free(j);
    const qe_config *cf = &s->model->cfg;
    qe_sample_params d;
    qe_sample_params_default(&d);
    char params[512], modelfile[1024], mod[48];
    snprintf(params, sizeof params,
             "temperature %g\ntop_p %g\ntop_k %d\nrepeat_penalty %g\nstop \"<|im_start|>\"\nstop \"<|im_end|>\"",
             d.temperature, d.top_p, d.top_k, d.repeat_penalty);
    /* the model id, not the file's path: where files live on the server is none of the client's business */
    snprintf(modelfile, sizeof modelfile, "# Modelfile generated by qwen-edge\nFROM %s\n%s\n", s->model_id, params);
    modified_at(s, mod, sizeof mod);
    const char *tmpl = s->model->chat_template && qe_utf8_valid(s->model->chat_template, strlen(s->model->chat_template))
                           ? s->model->chat_template
                                               : "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                                                 "{{ end }}<|im_start|>assistant\n";
    json_t *info = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:I}", "general.architecture", "qwen2",
                             "general.parameter_count", (json_int_t)param_count(cf),
                             "qwen2.context_length", (json_int_t)cf->n_ctx_train,
                             "qwen2.embedding_length", (json_int_t)cf->n_embd, "qwen2.block_count", (json_int_t)cf->n_layer,
                             "qwen2.feed_forward_length", (json_int_t)cf->n_ff,
                             "qwen2.attention.head_count", (json_int_t)cf->n_head,
                             "qwen2.attention.head_count_kv", (json_int_t)cf->n_head_kv,
                             "qwen2.rope.freq_base", (double)cf->rope_base,
                             "qwen2.attention.layer_norm_rms_epsilon", (double)cf->norm_eps,
                             "qwen2.vocab_size", (json_int_t)cf->n_vocab);
    return send_json(c, s, rq, 200, json_pack("{s:s,s:s,s:s,s:o,s:o,s:[s],s:s}", "modelfile", modelfile, "parameters",
                                              params, "template", tmpl, "details", details_obj(s), "model_info", info,
                                              "capabilities", "completion", "modified_at", mod));
}
