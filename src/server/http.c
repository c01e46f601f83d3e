/* http.c — the HTTP side of `qwen-edge serve` on libmicrohttpd: listening, request bodies and their limit,
 * the route table, API-key check, CORS, the embedded page, /health, /metrics, errors in each dialect's
 * shape, and one access-log line per request. The API handlers live in api_openai.c and api_ollama.c.
 *
 * Threads: MHD runs one thread per connection, so a handler may block (a non-streaming answer waits for
 * its job; a streaming one blocks in gen.c's reader callback). HTTP threads never touch the model: they
 * tokenize and talk to the engine through its job queue only. */
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "internal.h"
#include "version.h"

const char *const route_names[R__COUNT] = {
    "other", "page", "/health", "/metrics", "/v1/chat/completions", "/v1/completions", "/v1/models",
    "/api/chat", "/api/generate", "/api/tags", "/api/version", "/api/show",
};

typedef enum MHD_Result (*handler_fn)(struct MHD_Connection *, qe_server *, req_ctx *);
typedef struct {
    const char *path;
    const char *method;
    route_id route;
    dialect d;
    bool needs_model;
    handler_fn fn;
} route;

static enum MHD_Result models_list(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    return openai_models(c, s, rq, NULL);
}

static const route routes[] = {
    {"/v1/chat/completions", "POST", R_CHAT, DIALECT_OPENAI, true, openai_chat},
    {"/v1/completions", "POST", R_COMPLETIONS, DIALECT_OPENAI, true, openai_completions},
    {"/v1/models", "GET", R_MODELS, DIALECT_OPENAI, true, models_list},
    {"/api/chat", "POST", R_OLLAMA_CHAT, DIALECT_OLLAMA, true, ollama_chat},
    {"/api/generate", "POST", R_OLLAMA_GENERATE, DIALECT_OLLAMA, true, ollama_generate},
    {"/api/tags", "GET", R_OLLAMA_TAGS, DIALECT_OLLAMA, true, ollama_tags},
    {"/api/version", "GET", R_OLLAMA_VERSION, DIALECT_OLLAMA, false, ollama_version},
    {"/api/show", "POST", R_OLLAMA_SHOW, DIALECT_OLLAMA, true, ollama_show},
};
#define N_ROUTES (int)(sizeof routes / sizeof routes[0])

/* ---- responses ------------------------------------------------------------------------------------- */

void add_common_headers(qe_server *s, struct MHD_Response *r) {
    MHD_add_response_header(r, "Server", "qwen-edge/" QE_VERSION);
    if (s->o.cors_origin && s->o.cors_origin[0]) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->o.cors_origin);
        if (strcmp(s->o.cors_origin, "*") != 0) MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_buf(struct MHD_Connection *c, qe_server *s, req_ctx *rq, int status, const char *type,
                                const void *data, size_t n, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, mode);
    if (!r) return MHD_NO;
    add_common_headers(s, r);
    if (type) MHD_add_response_header(r, "Content-Type", type);
    rq->status = status;
    rq->bytes_out += n;
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result send_json(struct MHD_Connection *c, qe_server *s, req_ctx *rq, int status, json_t *j) {
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!txt) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
        return send_buf(c, s, rq, 500, "application/json", oom, sizeof oom - 1, MHD_RESPMEM_PERSISTENT);
    }
    size_t n = strlen(txt);
    char *body = malloc(n + 2);
    if (body) { memcpy(body, txt, n); body[n] = '\n'; body[n + 1] = 0; }
    free(txt);
    if (!body) return MHD_NO;
    return send_buf(c, s, rq, status, "application/json", body, n + 1, MHD_RESPMEM_MUST_FREE);
}

json_t *error_json(dialect d, const api_error *e) {
    if (d == DIALECT_OLLAMA) return json_pack("{s:s}", "error", e->message);
    return json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", e->message, "type", e->type ? e->type : "server_error",
                     "param", e->param[0] ? json_string(e->param) : json_null(),
                     "code", e->code ? json_string(e->code) : json_null());
}

enum MHD_Result send_error(struct MHD_Connection *c, qe_server *s, req_ctx *rq, dialect d, const api_error *e) {
    json_t *j = error_json(d, e);
    if (e->status == 401 || e->status == 405 || e->status == 429 || e->status == 503) {
        /* these need a header besides the body */
        char *txt = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!txt) return MHD_NO;
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
        if (!r) { free(txt); return MHD_NO; }
        add_common_headers(s, r);
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (e->status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
        if (e->status == 429 || e->status == 503) MHD_add_response_header(r, "Retry-After", "1");
        if (e->status == 405 && e->allow) MHD_add_response_header(r, "Allow", e->allow);
        rq->status = e->status;
        rq->bytes_out += strlen(txt);
        enum MHD_Result ret = MHD_queue_response(c, e->status, r);
        MHD_destroy_response(r);
        return ret;
    }
    return send_json(c, s, rq, e->status, j);
}

/* ---- the page --------------------------------------------------------------------------------------- */

static enum MHD_Result send_asset(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const qe_asset *a) {
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && strstr(inm, a->etag);
    struct MHD_Response *r = fresh ? MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT)
                                   : MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    add_common_headers(s, r);
    MHD_add_response_header(r, "Content-Type", a->content_type);
    MHD_add_response_header(r, "ETag", a->etag);
    /* The page's own files revalidate every time (cheap 304s) so an upgraded binary shows its new page at once;
     * the bundled libraries change only with the binary too, but rarely: a day without asking. */
    MHD_add_response_header(r, "Cache-Control", a->vendor ? "public, max-age=86400" : "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (!strcmp(a->path, "/index.html")) {
        /* everything the page loads comes from this server: nothing leaves the machine */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    rq->status = fresh ? 304 : 200;
    rq->bytes_out += fresh ? 0 : a->len;
    enum MHD_Result ret = MHD_queue_response(c, rq->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- operations routes ------------------------------------------------------------------------------- */

static enum MHD_Result health(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    if (atomic_load(&s->stopping)) return send_json(c, s, rq, 503, json_pack("{s:s}", "status", "stopping"));
    if (!atomic_load(&s->engine)) return send_json(c, s, rq, 503, json_pack("{s:s}", "status", "loading"));
    return send_json(c, s, rq, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result metrics(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    qe_buf out = {0};
    if (metrics_render(&s->metrics, route_names, R__COUNT, atomic_load(&s->engine), atomic_load(&s->n_gen_inflight),
                       &out)) {
        qe_buf_free(&out);
        return MHD_NO;
    }
    return send_buf(c, s, rq, 200, "text/plain; version=0.0.4; charset=utf-8", out.p, out.n, MHD_RESPMEM_MUST_FREE);
}

/* ---- dispatch ---------------------------------------------------------------------------------------- */

static bool key_ok(qe_server *s, struct MHD_Connection *c) {
    if (!s->o.api_key || !s->o.api_key[0]) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    /* compare without an early exit so the time does not tell how much of the key matched */
    size_t n = strlen(s->o.api_key), m = strlen(h);
    unsigned diff = n != m;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)s->o.api_key[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

static dialect dialect_of(const char *path) { return !strncmp(path, "/api/", 5) ? DIALECT_OLLAMA : DIALECT_OPENAI; }

static enum MHD_Result dispatch(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const char *url, const char *method) {
    api_error e = {0};
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    dialect d = dialect_of(url);

    if (!strcmp(method, "OPTIONS")) { /* CORS preflight (answered with CORS headers only when --cors is set) */
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        add_common_headers(s, r);
        MHD_add_response_header(r, "Allow", "GET, POST, OPTIONS");
        if (s->o.cors_origin && s->o.cors_origin[0]) {
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
        }
        rq->status = 204;
        enum MHD_Result ret = MHD_queue_response(c, 204, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(url, "/health")) {
        rq->route = R_HEALTH;
        return health(c, s, rq);
    }
    const qe_asset *a = qe_asset_find(url);
    if (a) {
        rq->route = R_PAGE;
        if (!get) {
            api_errf(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "use GET for %s", url);
            e.allow = "GET, HEAD";
            return send_error(c, s, rq, d, &e);
        }
        return send_asset(c, s, rq, a);
    }

    const route *rt = NULL;
    const char *model_id = NULL;
    for (int i = 0; i < N_ROUTES; i++)
        if (!strcmp(url, routes[i].path)) rt = &routes[i];
    if (!rt && !strncmp(url, "/v1/models/", 11)) { rt = &routes[2]; model_id = url + 11; }
    bool is_metrics = !strcmp(url, "/metrics");
    if (is_metrics) rq->route = R_METRICS;
    if (!rt && !is_metrics) {
        api_errf(&e, 404, "not_found_error", "unknown_url", NULL, "unknown URL: %s %s", method, url);
        return send_error(c, s, rq, d, &e);
    }
    if (rt) rq->route = rt->route;
    const char *want = rt ? rt->method : "GET";
    if (strcmp(method, want) != 0 && !(get && !strcmp(want, "GET"))) {
        api_errf(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s needs %s, not %s", url, want, method);
        e.allow = !strcmp(want, "GET") ? "GET, HEAD" : "POST";
        return send_error(c, s, rq, d, &e);
    }
    if (!key_ok(s, c)) {
        api_errf(&e, 401, "authentication_error", "invalid_api_key", NULL,
                 "missing or wrong API key: send the header 'Authorization: Bearer <key>'");
        return send_error(c, s, rq, d, &e);
    }
    if (rq->body_too_big) {
        api_errf(&e, 413, "invalid_request_error", "request_too_large", NULL,
                 "the request body is larger than the limit of %zu bytes", s->o.max_body);
        return send_error(c, s, rq, d, &e);
    }
    if (is_metrics) return metrics(c, s, rq);
    if (atomic_load(&s->stopping)) {
        api_errf(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
        return send_error(c, s, rq, d, &e);
    }
    if (rt->needs_model && !atomic_load(&s->engine)) {
        api_errf(&e, 503, "server_error", "model_loading", NULL, "the model is still loading; try again shortly");
        return send_error(c, s, rq, d, &e);
    }
    if (model_id) return openai_models(c, s, rq, model_id);
    return rt->fn(c, s, rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    qe_server *s = cls;
    req_ctx *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        rq->t_start = qe_now();
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->path, sizeof rq->path, "%s", url);
        /* the path goes into the access log: no control characters or quotes from outside */
        for (char *p = rq->path; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == '"' || *p == 0x7f) *p = '?';
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) rq->body_too_big = true;
        return MHD_YES;
    }
    if (*upload_size) {
        /* over the limit: keep reading but drop the bytes, so the client gets a clean 413 instead of a reset */
        if (!rq->body_too_big && rq->body.n + *upload_size > s->o.max_body) rq->body_too_big = true;
        if (!rq->body_too_big && qe_buf_append(&rq->body, upload, *upload_size)) return MHD_NO;
        if (rq->body_too_big) qe_buf_free(&rq->body);
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(c, s, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    qe_server *s = cls;
    req_ctx *rq = *con_cls;
    if (!rq) return;
    *con_cls = NULL;
    metrics_request(&s->metrics, rq->route, rq->status);
    if (!s->o.quiet) {
        char ip[64] = "-";
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
            else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
        }
        char now[48], gen[200] = "";
        iso_time(now, sizeof now, (double)time(NULL));
        now[19] = 'Z';
        now[20] = 0;
        if (rq->n_prompt || rq->ttft_ms)
            snprintf(gen, sizeof gen, " ttft=%.0fms prompt=%d cached=%d gen=%d %.1ftok/s %s", rq->ttft_ms, rq->n_prompt,
                     rq->n_cached, rq->n_gen, rq->gen_ms > 0 && rq->n_gen > 1 ? (rq->n_gen - 1) / (rq->gen_ms / 1e3) : 0.0,
                     rq->finish ? rq->finish : "-");
        fprintf(stderr, "%s %s \"%s %s\" %d %zuB %.1fms%s%s\n", now, ip, rq->method, rq->path, rq->status, rq->bytes_out,
                (qe_now() - rq->t_start) * 1e3, gen,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client closed)");
    }
    qe_buf_free(&rq->body);
    free(rq);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    if (qe_log_min > QE_LOG_DEBUG) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n') line[n - 1] = 0;
    qe_log(QE_LOG_DEBUG, "http: %s", line);
}

/* ---- life cycle -------------------------------------------------------------------------------------- */

int qe_server_start(const qe_server_opts *opts, qe_server **out, char *err) {
    qe_server *s = calloc(1, sizeof *s);
    if (!s) return qe_errf(err, QE_ENOMEM, "out of memory");
    s->o = *opts;
    if (!s->o.host || !s->o.host[0]) s->o.host = "127.0.0.1";
    if (s->o.port < 0 || s->o.port > 65535) { free(s); return qe_errf(err, QE_EINVAL, "bad port %d", opts->port); }
    if (!s->o.max_body) s->o.max_body = 4u << 20;
    if (s->o.max_queue <= 0) s->o.max_queue = 32;
    if (s->o.max_connections <= 0) s->o.max_connections = 256;
    if (s->o.grace_s <= 0) s->o.grace_s = 5;
    s->started = (int64_t)time(NULL);
    metrics_init(&s->metrics);
    pthread_mutex_init(&s->live_mu, NULL);
    sem_init(&s->prep_sem, 0, (unsigned)qe_physical_cores()); /* see gen.c: preparing requests is CPU work */
    /* Request bodies and their parse buffers are megabytes each and short-lived: with a fixed threshold they are
     * always mapped and unmapped, so they go back to the system when freed (glibc's moving threshold would put
     * them in per-thread arenas after the first one, where they stay resident). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    int rc = QE_EIO;
    int gai = getaddrinfo(s->o.host, port, &hints, &ai);
    if (gai != 0) {
        rc = qe_errf(err, QE_EINVAL, "cannot use host '%s': %s", s->o.host, gai_strerror(gai));
        goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, /* idle; a running stream is never idle */
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd) {
        qe_errf(err, QE_EIO, "cannot listen on %s:%d (in use, or not an address of this machine?)", s->o.host, s->o.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    *out = s;
    return QE_OK;
fail:
    metrics_free(&s->metrics);
    pthread_mutex_destroy(&s->live_mu);
    sem_destroy(&s->prep_sem);
    free(s);
    return rc;
}

int qe_server_port(const qe_server *s) { return s->port; }

void qe_server_set_ready(qe_server *s, const qe_model *model, qe_engine *engine, const char *model_id) {
    s->model = model;
    snprintf(s->model_id, sizeof s->model_id, "%s", model_id ? model_id : "qwen");
    /* it goes into every JSON answer, and JSON strings must be UTF-8: a file name need not be */
    if (!qe_utf8_valid(s->model_id, strlen(s->model_id)))
        for (char *p = s->model_id; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '_';
    atomic_store(&s->engine, engine);
}

void qe_server_stop(qe_server *s) {
    if (!s || !s->mhd) return;
    atomic_store(&s->stopping, true);
    /* stop accepting; running answers get grace_s to finish, then are canceled (their streams end cleanly) */
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    double t_end = qe_now() + s->o.grace_s;
    while (atomic_load(&s->n_gen_inflight) > 0 && qe_now() < t_end) usleep(20000);
    if (atomic_load(&s->n_gen_inflight) > 0) {
        qe_log(QE_LOG_INFO, "canceling %d running answers", atomic_load(&s->n_gen_inflight));
        gen_cancel_all(s);
        t_end = qe_now() + 5;
        while (atomic_load(&s->n_gen_inflight) > 0 && qe_now() < t_end) usleep(20000);
    }
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
}

void qe_server_free(qe_server *s) {
    if (!s) return;
    qe_server_stop(s);
    metrics_free(&s->metrics);
    pthread_mutex_destroy(&s->live_mu);
    sem_destroy(&s->prep_sem);
    free(s);
}
