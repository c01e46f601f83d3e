/* internal.h — what the files of src/server/ share: the server state, the request context, errors, JSON
 * helpers, the generation request and its stream. Not a public header: cmd_serve.c uses server.h only. */
#pragma once
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "auth.h"
#include "engine.h"
#include "metrics.h"
#include "server.h"
#include "textstream.h"

/* The routes' labels for the metrics, by route_id (routes.h, included by metrics.h). */
extern const char *const route_names[R__COUNT];

typedef enum { DIALECT_OPENAI, DIALECT_OLLAMA } dialect;

struct qe_server {
    qe_server_opts o;
    struct MHD_Daemon *mhd;
    int port;
    _Atomic(qe_engine *) engine;   /* NULL while loading */
    const qe_model *model;
    char model_id[256];
    int64_t started;               /* unix seconds */
    atomic_int n_gen_inflight;     /* generation requests admitted (gen_admit) and not finished: THE limit */
    sem_t prep_sem;                /* requests parsing + tokenizing at once (gen_serve) */
    atomic_bool stopping;
    srv_metrics metrics;
    qe_auth auth;                  /* API keys, wrong-key throttle, cache salts */
    pthread_mutex_t live_mu;       /* the running streams, so stop() can cancel them */
    struct gen_state *live;
    bool loopback;                 /* listening on 127.0.0.0/8 or ::1: only loopback Host names are answered */
    /* slow clients (http.c): every open connection with its deadline, and the watchdog that enforces them */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    struct conn_watch *watch;
    bool watch_stop, watch_running;
    pthread_t watch_thread;
};

/* One HTTP request (MHD's con_cls): body, timings and what the access log prints. */
typedef struct {
    double t_start;
    route_id route;
    char method[12];
    char path[160];
    qe_buf body;
    bool body_too_big;
    /* decided from the headers, before the body is read (a refused request's body is dropped unread) */
    enum { AUTH_OK, AUTH_DENIED, AUTH_THROTTLED } auth;
    int key_index;          /* the API key the request carries (-1: none, or no key needed) */
    double retry_after;     /* AUTH_THROTTLED: seconds */
    int status;
    size_t bytes_out;
    /* filled by generation requests */
    double ttft_ms;
    int n_prompt, n_cached, n_gen;
    double gen_ms;
    const char *finish;
} req_ctx;

/* An API error: HTTP status + OpenAI's {"error":{message,type,param,code}} or ollama's {"error":"..."}. */
typedef struct {
    int status;
    const char *type;     /* invalid_request_error, authentication_error, not_found_error, server_error ... */
    const char *code;     /* NULL or e.g. context_length_exceeded */
    char param[64];
    const char *allow;    /* 405: the Allow header */
    int retry_after;      /* 429/503: the Retry-After header in seconds (0: 1) */
    char message[QE_ERR_LEN];
} api_error;
/* The usual 400: a field of the request is wrong. Returns -1. */
#define BAD(e, param, ...) api_errf(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)
int api_errf(api_error *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Queues the error as the response (JSON in the request's dialect). */
json_t *error_json(dialect d, const api_error *e);
enum MHD_Result send_error(struct MHD_Connection *c, qe_server *s, req_ctx *rq, dialect d, const api_error *e);
/* Queues a JSON body (steals j). */
enum MHD_Result send_json(struct MHD_Connection *c, qe_server *s, req_ctx *rq, int status, json_t *j);
void add_common_headers(qe_server *s, struct MHD_Response *r);

/* ---- generation ---------------------------------------------------------------------------------- */
typedef struct gen_dialect gen_dialect;

typedef struct {
    const gen_dialect *dl;  /* the API shape of the request, chosen by its route: gen.c asks it for every byte */
    qe_ids prompt;
    qe_job_params jp;       /* prompt pointer filled at submit */
    char **stops;
    int n_stops;
    bool stream;
    bool include_usage;
    bool want_context;      /* ollama /api/generate: return prompt + answer ids as "context" */
    int n_dropped_msgs;     /* messages left out by the memory window */
} gen_req;
void gen_req_free(gen_req *r);

typedef struct gen_state {
    qe_server *s;
    gen_req req;
    req_ctx *rq;            /* borrowed; valid while the request is alive (not in the free callback) */
    qe_job *job;
    qe_textstream ts;
    char id[48];
    int64_t created;
    double t_start, t_first, t_last;
    qe_buf out;             /* bytes produced but not yet handed to MHD */
    size_t out_pos;
    int phase;              /* 0 not started, 1 streaming, 2 done (final frames queued), 3 end of stream */
    bool stop_hit;
    qe_ids gen_ids;         /* ollama context */
    qe_event done;
    int fd;                 /* the connection's socket, to notice a client that left (client_gone) */
    double t_check;         /* next look at the socket */
    bool gone;              /* the client left: the job is canceled, nothing more is sent */
    char err[256];
    struct gen_state *next_live, *prev_live;
} gen_state;

/* A dialect's part of a generation request: the parsed body -> a validated gen_req (prompt ids, parameters).
 * Returns 0, or -1 with e filled, or 0 with *reply set to answer at once without generating (steals it). */
typedef int (*gen_prepare_fn)(qe_server *s, json_t *body, gen_req *r, json_t **reply, api_error *e);

/* What one kind of generation request (a route) looks like on the wire, as data: gen.c never asks which API
 * it serves, it calls these. One const instance per route, in its dialect's file (api_openai.c, api_ollama.c).
 * A new kind of frame (tool-call deltas, citations) is one more pointer here and one function per dialect file.
 * Frame functions append to out and return 0 or a QE_ error code. */
struct gen_dialect {
    dialect errors;           /* the shape of its error bodies (error_json) */
    gen_prepare_fn prepare;   /* parse + validate + tokenize the request body */
    const char *id_prefix;    /* of the answer's id: "chatcmpl-", "cmpl-" */
    const char *content_type; /* of a streaming answer (SSE, NDJSON) */
    const char *keep_alive;   /* written after 15 s with nothing to send, or NULL (NDJSON has no comments) */
    const char *end;          /* written after the final frame ("data: [DONE]"), or NULL */
    /* the stream: first frame before any text (NULL: none), a piece of text, the last frame (finish reason,
     * usage), an error that ends the stream */
    int (*frame_first)(gen_state *g, qe_buf *out);
    int (*frame_delta)(gen_state *g, const char *text, size_t n, qe_buf *out);
    int (*frame_final)(gen_state *g, const char *finish, qe_buf *out);
    int (*frame_error)(gen_state *g, const char *message, qe_buf *out);
    /* the whole answer of a non-streaming request (owned by the caller) */
    json_t *(*body)(gen_state *g, const char *text, size_t n, const char *finish);
};
extern const gen_dialect openai_chat_dialect, openai_completion_dialect; /* api_openai.c */
extern const gen_dialect ollama_chat_dialect, ollama_generate_dialect;   /* api_ollama.c */

/* One generation request from the top: the in-flight gate (429 before any parsing), then dl->prepare (parse +
 * tokenize, a few requests at a time), then gen_run. */
enum MHD_Result gen_serve(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const gen_dialect *dl);
/* Takes a place among the requests in flight; false with a 429 in e when they are all taken. gen_leave gives it
 * back (gen_run does, for the request it is given). */
bool gen_admit(qe_server *s, api_error *e);
void gen_leave(qe_server *s);
/* Runs a validated request (req->dl set) that holds a place (gen_admit): submit, then a streaming response or
 * the whole answer at once. Gives the place back when the request ends, whatever happens. */
enum MHD_Result gen_run(struct MHD_Connection *c, qe_server *s, req_ctx *rq, gen_req *req);
/* Asks every running job to stop (server shutdown). */
void gen_cancel_all(qe_server *s);

/* ---- the routes of the dialects (http.c's table) ------------------------------------------------------ */
enum MHD_Result openai_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result openai_completions(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result openai_models(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const char *id);
enum MHD_Result ollama_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_generate(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_tags(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_version(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_show(struct MHD_Connection *c, qe_server *s, req_ctx *rq);

/* Appends j (stolen; NULL: QE_ENOMEM) as compact JSON between before and after: one frame of a stream, an SSE
 * event ("data: ", "\n\n") or an NDJSON line ("", "\n"). gen.c. */
int frame_json(qe_buf *out, const char *before, json_t *j, const char *after);

/* ---- request parsing helpers (parse.c) ------------------------------------------------------------ */
/* Parses the body as a JSON object; 400 with a clear message otherwise (bad JSON, bad UTF-8, not an object). */
json_t *parse_body(const req_ctx *rq, api_error *e);
/* Frees what parse_body returned (NULL too): its values live in a per-thread region (parse.c), released whole.
 * Call on the same thread, before the next parse_body; no other JSON may keep pointers into it. */
void parse_body_free(json_t *j);
/* Optional typed fields: return 0 if absent (or null), 1 if present and valid, -1 with e filled if wrong. */
int get_num(json_t *o, const char *key, double lo, double hi, double *out, api_error *e);
int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, api_error *e);
int get_bool(json_t *o, const char *key, bool *out, api_error *e);
int get_str(json_t *o, const char *key, const char **out, api_error *e);
/* An array of token ids in [0, n_vocab) appended to out: 400 naming key[i] on a bad id, 500 on out of memory. */
int get_ids(json_t *arr, const char *key, int n_vocab, qe_ids *out, api_error *e);
/* A sampling field of a request: its key, its range and where it goes in qe_sample_params. The dialects name,
 * bound and place them differently (their tables are in api_openai.c / api_ollama.c); get_sample_fields reads
 * them in table order, so the first wrong one is the one reported. */
typedef enum { SF_FLOAT, SF_INT, SF_LAST_N /* -1: the whole sequence (0) */, SF_SEED /* any int64 */ } sample_type;
typedef struct {
    const char *key;
    sample_type type;
    double lo, hi;   /* SF_FLOAT, SF_INT, SF_LAST_N (exact in a double); SF_SEED takes any int64 */
    size_t offset;   /* offsetof(qe_sample_params, ...) */
} sample_field;
int get_sample_fields(json_t *o, const sample_field *f, size_t n, qe_sample_params *sp, api_error *e);
/* "stop": a string or an array of strings. */
int get_stops(json_t *o, const char *key, gen_req *r, api_error *e);
/* "cache_salt" (a string, vLLM's field): only requests with the same salt, and with several API keys the same
 * key, share cached prompt tokens. Sets r->jp.cache_salt (auth_cache_salt). */
int get_cache_salt(qe_server *s, const req_ctx *rq, json_t *o, gen_req *r, api_error *e);
/* Tokenizes a chat for the model with the memory window; errors are 400s. */
typedef struct { const char *role; const char *text; size_t len; } chat_msg;
/* A chat request's prompt, the same in both dialects: "memory_rounds" (default serve --memory-rounds), then
 * "messages" (roles system/developer/user/assistant, content a string or text parts) parsed, rendered with the
 * memory window and checked against the context. */
int parse_chat(qe_server *s, json_t *j, gen_req *r, api_error *e);
int render_chat(qe_server *s, const chat_msg *m, int n, int memory_rounds, gen_req *r, api_error *e);
int render_raw(qe_server *s, const char *text, size_t len, bool parse_special, gen_req *r, api_error *e);
/* Appends the token ids of JSON array a (field key) to r->prompt: 400 context_length_exceeded, before copying any,
 * if they cannot fit the context; 400 for anything not a token id. */
int get_token_ids(qe_server *s, json_t *a, const char *key, gen_req *r, api_error *e);
/* Checks the prompt against the context and max_tokens against the limits (400 context_length_exceeded). */
int check_lengths(qe_server *s, gen_req *r, api_error *e);

/* A seed for a request that names none: from the kernel's random source, the clock if that fails. */
uint64_t random_seed(void);
void make_id(char *out, size_t n, const char *prefix);
double qe_wall_now(void); /* unix seconds with fraction */
void iso_time(char *out, size_t n, double unix_s); /* 2024-01-02T03:04:05.123456789Z */
