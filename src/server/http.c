/* http.c — the HTTP side of `qwen-edge serve` on libmicrohttpd: listening, request bodies and their limit,
 * the route table, which routes need an API key (auth.c checks it), CORS and the Origin / Host checks,
 * slow-client deadlines, the embedded page, /health, /metrics, errors in each dialect's shape, and one
 * access-log line per request. The API handlers live in api_openai.c and api_ollama.c.
 *
 * Threads: MHD runs one thread per connection, so a handler may block (a non-streaming answer waits for
 * its job; a streaming one blocks in gen.c's reader callback). HTTP threads never touch the model: they
 * tokenize and talk to the engine through its job queue only. */
#include <arpa/inet.h>
#include <math.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "assets.h"
#include "internal.h"
#include "version.h"

/* Copies untrusted text into out (always 0-terminated, cut to fit) as valid UTF-8: a byte that does not
 * start a valid UTF-8 sequence becomes the four characters \xHH. With log set, control characters, '"' and
 * '\' are escaped the same way too, so a log line stays one line whose fields can be told apart. This is the
 * one place outside text becomes part of an error message or the access log. */
static void escape_text(char *out, size_t cap, const char *in, size_t n, bool log) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)in + i, (utf8proc_ssize_t)(n - i), &cp);
        unsigned char b = (unsigned char)in[i];
        bool esc = k <= 0 || cp == 0 || (log && (cp < 0x20 || cp == 0x7f || cp == '"' || cp == '\\'));
        if (esc) {
            if (o + 5 > cap) break;
            snprintf(out + o, cap - o, "\\x%02X", b);
            o += 4;
            i++;
        } else {
            if (o + (size_t)k + 1 > cap) break;
            memcpy(out + o, in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        }
    }
    out[o] = 0;
}

#define ROUTE_LABEL(id, label) [id] = label,
const char *const route_names[R__COUNT] = {SRV_ROUTES(ROUTE_LABEL)};
#undef ROUTE_LABEL

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
    /* messages quote what the client sent (a URL, a Host, a field) and may be cut mid-character; JSON strings
     * must be UTF-8 or jansson refuses them, which turned e.g. `GET /%ff` into a 500 */
    char msg[4 * sizeof e->message], param[4 * sizeof e->param];
    escape_text(msg, sizeof msg, e->message, strlen(e->message), false);
    escape_text(param, sizeof param, e->param, strlen(e->param), false);
    if (d == DIALECT_OLLAMA) return json_pack("{s:s}", "error", msg);
    return json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", msg, "type", e->type ? e->type : "server_error",
                     "param", param[0] ? json_string(param) : json_null(),
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
        if (e->status == 429 || e->status == 503) {
            char ra[16];
            snprintf(ra, sizeof ra, "%d", e->retry_after > 0 ? e->retry_after : 1);
            MHD_add_response_header(r, "Retry-After", ra);
        }
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
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
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

/* Everything but the page's own files, /health and CORS preflights needs the key when one is set: also unknown
 * URLs and wrong methods, so a client without a key cannot map the API by its 404s and 405s. */
static bool needs_key(const qe_server *s, const char *url, const char *method) {
    return auth_required(&s->auth) && strcmp(method, "OPTIONS") != 0 && strcmp(url, "/health") != 0 &&
           !qe_asset_find(url);
}

/* Decides rq->auth from the headers: the throttle first (an address that sent too many wrong keys gets 429
 * whatever it sends now), then the key. Only a wrong key counts against the address, not a missing one: the
 * page's first visit has none and learns from the 401 that it must ask. */
static void check_key(struct MHD_Connection *c, qe_server *s, req_ctx *rq) {
    auth_addr addr;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    auth_addr_of(ci ? ci->client_addr : NULL, &addr);
    double now = qe_now(), wait = auth_throttle_wait(&s->auth, &addr, now);
    if (wait > 0) {
        rq->auth = AUTH_THROTTLED;
        rq->retry_after = wait;
        return;
    }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    rq->key_index = auth_key_index(&s->auth, h);
    if (rq->key_index >= 0) return;
    rq->auth = AUTH_DENIED;
    if (h) auth_throttle_fail(&s->auth, &addr, now);
}

static dialect dialect_of(const char *path) { return !strncmp(path, "/api/", 5) ? DIALECT_OLLAMA : DIALECT_OPENAI; }

/* ---- who may ask: Origin and Host ---------------------------------------------------------------------
 * A page on another site can make the visitor's browser POST to this server (a "simple" text/plain request
 * needs no preflight), so any web page could start generations here. Browsers send an Origin header with
 * every such request (and with every POST), so a request whose Origin is neither our own origin nor the
 * --cors one is refused. Clients that are not browsers (curl, SDKs) send no Origin and are not affected.
 * DNS rebinding gets around that: the attacker's name is made to resolve to 127.0.0.1, so the page and the
 * server share an origin. But the browser still sends the attacker's name in Host, so a server that listens
 * on loopback only answers loopback names. A server on a public address cannot know its names: there the
 * API key is the protection, and `serve` warns when there is none. */

/* localhost, *.localhost (browsers resolve these themselves, RFC 6761), 127.x.x.x or [::1], with any port
 * (a tunnel such as `ssh -L 9000:localhost:8080` changes it) */
static bool host_is_loopback(const char *h) {
    char name[256];
    const char *rest;
    if (h[0] == '[') {
        const char *e = strchr(h, ']');
        if (!e || (size_t)(e - h - 1) >= sizeof name) return false;
        memcpy(name, h + 1, (size_t)(e - h - 1));
        name[e - h - 1] = 0;
        rest = e + 1;
    } else {
        const char *colon = strchr(h, ':');
        size_t n = colon ? (size_t)(colon - h) : strlen(h);
        if (n >= sizeof name) return false;
        memcpy(name, h, n);
        name[n] = 0;
        rest = h + n;
    }
    if (*rest) {
        if (*rest++ != ':' || !*rest || strlen(rest) > 5) return false;
        for (const char *p = rest; *p; p++)
            if (*p < '0' || *p > '9') return false;
    }
    size_t n = strlen(name);
    if (n && name[n - 1] == '.') name[--n] = 0; /* "localhost." is the same name */
    if (!strcasecmp(name, "localhost") || (n > 10 && !strcasecmp(name + n - 10, ".localhost"))) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (h[0] != '[' && inet_pton(AF_INET, name, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (h[0] == '[' && inet_pton(AF_INET6, name, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* The Origin is ours when it is http(s):// followed by exactly the Host the request was sent to (behind a
 * TLS proxy the page is https:// while we speak http; the proxy must pass the Host through). */
static bool origin_allowed(const qe_server *s, const char *origin, const char *host) {
    const char *cors = s->o.cors_origin;
    if (cors && (!strcmp(cors, "*") || !strcasecmp(cors, origin))) return true;
    if (!host) return false;
    if (!strncasecmp(origin, "http://", 7)) return !strcasecmp(origin + 7, host);
    if (!strncasecmp(origin, "https://", 8)) return !strcasecmp(origin + 8, host);
    return false;
}

/* 0 when the request may go on; else fills e with the 403 */
static int check_origin_host(struct MHD_Connection *c, const qe_server *s, api_error *e) {
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (s->loopback && host && !host_is_loopback(host))
        return api_errf(e, 403, "permission_error", "forbidden_host", NULL,
                        "this server listens on a loopback address and answers only requests for localhost, not "
                        "for '%.200s' (another name that points here is how DNS-rebinding pages get in); to serve "
                        "other names, listen on another address (--host) with an API key", host);
    if (origin && !origin_allowed(s, origin, host))
        return api_errf(e, 403, "permission_error", "forbidden_origin", NULL,
                        "requests from web pages of another site (Origin '%.200s') are refused; to allow that site, "
                        "start the server with --cors ORIGIN", origin);
    return 0;
}

static enum MHD_Result dispatch(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const char *url, const char *method) {
    api_error e = {0};
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    dialect d = dialect_of(url);

    if (check_origin_host(c, s, &e)) return send_error(c, s, rq, d, &e);

    if (!strcmp(method, "OPTIONS")) { /* CORS preflight (answered with CORS headers only when --cors is set) */
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        add_common_headers(s, r);
        MHD_add_response_header(r, "Allow", "GET, POST, OPTIONS");
        if (s->o.cors_origin && s->o.cors_origin[0]) {
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type, X-Conversation-Id, X-Session-Id");
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

    if (rq->auth == AUTH_THROTTLED) {
        api_errf(&e, 429, "rate_limit_error", "too_many_wrong_keys", NULL,
                 "too many wrong API keys from this address; try again in %.0f s", ceil(rq->retry_after));
        e.retry_after = (int)ceil(rq->retry_after);
        return send_error(c, s, rq, d, &e);
    }
    if (rq->auth == AUTH_DENIED) {
        api_errf(&e, 401, "authentication_error", "invalid_api_key", NULL,
                 "missing or wrong API key: send the header 'Authorization: Bearer <key>'");
        return send_error(c, s, rq, d, &e);
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

/* ---- slow clients ------------------------------------------------------------------------------------
 * Every connection holds one of MHD's threads and one of max_connections slots from accept to close. MHD's
 * connection timeout only closes an *idle* connection, so a client that sends its headers one byte a second
 * is never idle and keeps its slot forever; a few hundred such clients lock everybody out. Two defences:
 *  - MHD's per-address limit (max_connections_per_ip, a quarter of all slots by default): one address can
 *    never hold them all. No exemption for loopback, where a local reverse proxy would put every user on one
 *    address: its users are capped at that limit, which is still above what --parallel plus --max-queue
 *    (the requests the engine takes at once) need by default.
 *  - deadlines, enforced here because MHD 0.9 has none for a request as a whole: a connection must deliver
 *    a request's headers within header_timeout_s of its accept (or of the end of its previous request, on a
 *    kept-alive connection: an idle kept-alive connection is closed after that long too), and then its body
 *    at BODY_MIN_RATE on average after a BODY_GRACE_S head start. Once the request reaches its handler there
 *    is no deadline: a streaming answer can take as long as it takes (the idle timeout still applies).
 * MHD tells us about each connection (NOTIFY_CONNECTION: started, closed) and each request (on_request is
 * first called when the headers are complete); a watchdog thread checks the deadlines four times a second
 * and shuts down the socket of a late connection, which MHD's connection thread then sees as the client
 * leaving. The list is guarded by watch_mu, and MHD reports "closed" before it closes the socket, so the
 * watchdog never shuts down a descriptor that already belongs to another connection. */
#define BODY_GRACE_S 30.0
#define BODY_MIN_RATE 4096.0 /* bytes/s: the default 4 MiB body may take 17 minutes */
#define WATCH_PERIOD_S 0.25

typedef struct conn_watch {
    int fd;
    double deadline; /* qe_now() seconds; 0: none (a handler is running) */
    struct conn_watch *prev, *next;
} conn_watch;

static void watch_set(qe_server *s, struct MHD_Connection *c, double deadline) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_watch *w = ci ? ci->socket_context : NULL;
    if (!w) return;
    pthread_mutex_lock(&s->watch_mu);
    w->deadline = deadline;
    pthread_mutex_unlock(&s->watch_mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    qe_server *s = cls;
    conn_watch *w = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !(w = calloc(1, sizeof *w))) return; /* unwatched: MHD's idle timeout still applies */
        w->fd = ci->connect_fd;
        w->deadline = qe_now() + s->o.header_timeout_s;
        pthread_mutex_lock(&s->watch_mu);
        w->next = s->watch;
        if (s->watch) s->watch->prev = w;
        s->watch = w;
        pthread_mutex_unlock(&s->watch_mu);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && w) {
        pthread_mutex_lock(&s->watch_mu);
        if (w->prev) w->prev->next = w->next;
        else s->watch = w->next;
        if (w->next) w->next->prev = w->prev;
        pthread_mutex_unlock(&s->watch_mu);
        free(w);
        *socket_context = NULL;
    }
}

static void *watchdog_main(void *arg) {
    qe_server *s = arg;
    pthread_mutex_lock(&s->watch_mu);
    while (!s->watch_stop) {
        double now = qe_now();
        for (conn_watch *w = s->watch; w; w = w->next)
            if (w->deadline > 0 && now > w->deadline) {
                shutdown(w->fd, SHUT_RDWR);
                w->deadline = 0;
            }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(WATCH_PERIOD_S * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->watch_cv, &s->watch_mu, &ts);
    }
    pthread_mutex_unlock(&s->watch_mu);
    return NULL;
}

/* expected: Content-Length (0 when chunked), received: bytes so far; no more than max_body counts */
static double body_deadline(const qe_server *s, const req_ctx *rq, const char *content_length, size_t received) {
    unsigned long long n = content_length ? strtoull(content_length, NULL, 10) : 0;
    if (n < received) n = received;
    if (n > s->o.max_body) n = s->o.max_body;
    return rq->t_start + BODY_GRACE_S + (double)n / BODY_MIN_RATE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    qe_server *s = cls;
    req_ctx *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        rq->t_start = qe_now();
        snprintf(rq->method, sizeof rq->method, "%s", method); /* raw: escaped when logged */
        snprintf(rq->path, sizeof rq->path, "%s", url);
        *con_cls = rq;
        rq->key_index = -1;
        if (needs_key(s, url, method)) check_key(c, s, rq);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) rq->body_too_big = true;
        watch_set(s, c, body_deadline(s, rq, cl, 0));
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->body_too_big) /* chunked bodies earn their time as they arrive */
            watch_set(s, c, body_deadline(s, rq, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length"),
                                          rq->body.n + *upload_size));
        /* over the limit: keep reading but drop the bytes, so the client gets a clean 413 instead of a reset;
         * a request refused by its key is read the same way, and nothing of it is kept */
        if (!rq->body_too_big && rq->body.n + *upload_size > s->o.max_body) rq->body_too_big = true;
        if (rq->auth != AUTH_OK) { *upload_size = 0; return MHD_YES; }
        if (!rq->body_too_big && qe_buf_append(&rq->body, upload, *upload_size)) return MHD_NO;
        if (rq->body_too_big) qe_buf_free(&rq->body);
        *upload_size = 0;
        return MHD_YES;
    }
    watch_set(s, c, 0); /* the whole request is here: no deadline while its handler runs */
    return dispatch(c, s, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    qe_server *s = cls;
    req_ctx *rq = *con_cls;
    if (!rq) return;
    *con_cls = NULL;
    watch_set(s, c, qe_now() + s->o.header_timeout_s); /* a kept-alive connection waits for its next request */
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
        /* method and path come from the client: escaped, so the line stays one line of UTF-8 text */
        char method[4 * sizeof rq->method], path[4 * sizeof rq->path];
        escape_text(method, sizeof method, rq->method, strlen(rq->method), true);
        escape_text(path, sizeof path, rq->path, strlen(rq->path), true);
        fprintf(stderr, "%s %s \"%s %s\" %d %zuB %.1fms%s%s\n", now, ip, method, path, rq->status, rq->bytes_out,
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

static void watchdog_stop(qe_server *s) {
    if (!s->watch_running) return;
    pthread_mutex_lock(&s->watch_mu);
    s->watch_stop = true;
    pthread_cond_signal(&s->watch_cv);
    pthread_mutex_unlock(&s->watch_mu);
    pthread_join(s->watch_thread, NULL);
    s->watch_running = false;
}

int qe_server_start(const qe_server_opts *opts, qe_server **out, char *err) {
    qe_server *s = calloc(1, sizeof *s);
    if (!s) return qe_errf(err, QE_ENOMEM, "out of memory");
    s->o = *opts;
    if (!s->o.host || !s->o.host[0]) s->o.host = "127.0.0.1";
    if (s->o.port < 0 || s->o.port > 65535) { free(s); return qe_errf(err, QE_EINVAL, "bad port %d", opts->port); }
    if (!s->o.max_body) s->o.max_body = 4u << 20;
    if (s->o.max_queue <= 0) s->o.max_queue = 32;
    if (s->o.max_connections <= 0) s->o.max_connections = 256;
    if (s->o.max_connections_per_ip <= 0) s->o.max_connections_per_ip = s->o.max_connections / 4 > 0 ? s->o.max_connections / 4 : 1;
    if (s->o.header_timeout_s <= 0) s->o.header_timeout_s = 10;
    if (s->o.grace_s <= 0) s->o.grace_s = 5;
    s->started = (int64_t)time(NULL);
    metrics_init(&s->metrics);
    pthread_mutex_init(&s->live_mu, NULL);
    sem_init(&s->prep_sem, 0, (unsigned)qe_physical_cores()); /* see gen.c: preparing requests is CPU work */
    /* Request bodies and their parse buffers are megabytes each and short-lived: with a fixed threshold they are
     * always mapped and unmapped, so they go back to the system when freed (glibc's moving threshold would put
     * them in per-thread arenas after the first one, where they stay resident). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    pthread_mutex_init(&s->watch_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the watchdog's waits: immune to clock changes */
    pthread_cond_init(&s->watch_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = auth_init(&s->auth, opts->api_keys, opts->n_api_keys, err);
    s->o.api_keys = NULL; /* the caller's strings are not kept: auth holds their hashes */
    if (rc) goto fail;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    rc = QE_EIO;
    int gai = getaddrinfo(s->o.host, port, &hints, &ai);
    if (gai != 0) {
        rc = qe_errf(err, QE_EINVAL, "cannot use host '%s': %s", s->o.host, gai_strerror(gai));
        goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    if (ai->ai_family == AF_INET)
        s->loopback = (ntohl(((const struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else if (ai->ai_family == AF_INET6)
        s->loopback = IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    if (pthread_create(&s->watch_thread, NULL, watchdog_main, s) != 0) {
        freeaddrinfo(ai);
        rc = qe_errf(err, QE_EIO, "cannot start a thread");
        goto fail;
    }
    s->watch_running = true;
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->o.max_connections_per_ip,
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
    watchdog_stop(s);
    metrics_free(&s->metrics);
    auth_free(&s->auth);
    pthread_mutex_destroy(&s->live_mu);
    pthread_mutex_destroy(&s->watch_mu);
    pthread_cond_destroy(&s->watch_cv);
    sem_destroy(&s->prep_sem);
    free(s);
    return rc;
}

int qe_server_port(const qe_server *s) { return s->port; }

bool qe_server_loopback(const qe_server *s) { return s->loopback; }

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
    watchdog_stop(s); /* after MHD: every connection has been reported closed */
}

void qe_server_free(qe_server *s) {
    if (!s) return;
    qe_server_stop(s);
    watchdog_stop(s); /* when stop() found no daemon */
    metrics_free(&s->metrics);
    auth_free(&s->auth);
    pthread_mutex_destroy(&s->live_mu);
    pthread_mutex_destroy(&s->watch_mu);
    pthread_cond_destroy(&s->watch_cv);
    sem_destroy(&s->prep_sem);
    free(s);
}
