/* internal.h — what the files of src/server/ share: the server state, the request context, errors, JSON
 * helpers, the generation request and its stream. Not a public header: cmd_serve.c uses server.h only. */
#pragma once
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "engine.h"
#include "metrics.h"
#include "server.h"
#include "textstream.h"

/* Routes known to the metrics (label "route"). */
typedef enum {
    R_OTHER, R_PAGE, R_HEALTH, R_METRICS, R_CHAT, R_COMPLETIONS, R_MODELS, R_OLLAMA_CHAT, R_OLLAMA_GENERATE,
    R_OLLAMA_TAGS, R_OLLAMA_VERSION, R_OLLAMA_SHOW, R__COUNT
} route_id;
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
    atomic_int n_gen_inflight;     /* generation requests not finished */
    atomic_bool stopping;
    srv_metrics metrics;
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
    char message[QE_ERR_LEN];
} api_error;
int api_errf(api_error *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Queues the error as the response (JSON in the request's dialect). */
json_t *error_json(dialect d, const api_error *e);
enum MHD_Result send_error(struct MHD_Connection *c, qe_server *s, req_ctx *rq, dialect d, const api_error *e);
/* Queues a JSON body (steals j). */
enum MHD_Result send_json(struct MHD_Connection *c, qe_server *s, req_ctx *rq, int status, json_t *j);
void add_common_headers(qe_server *s, struct MHD_Response *r);

/* ---- generation ---------------------------------------------------------------------------------- */
typedef enum { GEN_OPENAI_CHAT, GEN_OPENAI_COMPLETION, GEN_OLLAMA_CHAT, GEN_OLLAMA_GENERATE } gen_kind;

typedef struct {
    gen_kind kind;
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
    char err[256];
    struct gen_state *next_live, *prev_live;
} gen_state;

/* Runs a validated request: submit, then either a streaming response or the whole answer at once. */
enum MHD_Result gen_run(struct MHD_Connection *c, qe_server *s, req_ctx *rq, gen_req *req);
/* Asks every running job to stop (server shutdown). */
void gen_cancel_all(qe_server *s);

/* ---- the dialects ------------------------------------------------------------------------------- */
enum MHD_Result openai_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result openai_completions(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result openai_models(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const char *id);
enum MHD_Result ollama_chat(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_generate(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_tags(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_version(struct MHD_Connection *c, qe_server *s, req_ctx *rq);
enum MHD_Result ollama_show(struct MHD_Connection *c, qe_server *s, req_ctx *rq);

/* Frames of a running stream / the final non-stream body, per dialect (gen.c calls these). */
int openai_frame_first(gen_state *g, qe_buf *out);
int openai_frame_delta(gen_state *g, const char *text, size_t n, qe_buf *out);
int openai_frame_final(gen_state *g, const char *finish, qe_buf *out);
json_t *openai_body(gen_state *g, const char *text, size_t n, const char *finish);
int ollama_frame_delta(gen_state *g, const char *text, size_t n, qe_buf *out);
int ollama_frame_final(gen_state *g, const char *finish, qe_buf *out);
json_t *ollama_body(gen_state *g, const char *text, size_t n, const char *finish);
int frame_error(gen_state *g, const char *message, qe_buf *out);

/* ---- request parsing helpers (parse.c) ------------------------------------------------------------ */
/* Parses the body as a JSON object; 400 with a clear message otherwise (bad JSON, bad UTF-8, not an object). */
json_t *parse_body(const req_ctx *rq, api_error *e);
/* Optional typed fields: return 0 if absent (or null), 1 if present and valid, -1 with e filled if wrong. */
int get_num(json_t *o, const char *key, double lo, double hi, double *out, api_error *e);
int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, api_error *e);
int get_bool(json_t *o, const char *key, bool *out, api_error *e);
int get_str(json_t *o, const char *key, const char **out, api_error *e);
/* An array of token ids in [0, n_vocab) appended to out: 400 naming key[i] on a bad id, 500 on out of memory. */
int get_ids(json_t *arr, const char *key, int n_vocab, qe_ids *out, api_error *e);
/* "stop": a string or an array of strings. */
int get_stops(json_t *o, const char *key, gen_req *r, api_error *e);
/* Tokenizes a chat for the model with the memory window; errors are 400s. */
typedef struct { const char *role; const char *text; size_t len; } chat_msg;
/* OpenAI-style "messages" (also ollama's): roles system/developer/user/assistant, content a string or text
 * parts. Texts are owned by bufs; free both with free_messages. */
int parse_messages(json_t *msgs, chat_msg **m, qe_buf **bufs, int *n, api_error *e);
void free_messages(chat_msg *m, qe_buf *bufs, int n);
int render_chat(qe_server *s, const chat_msg *m, int n, int memory_rounds, gen_req *r, api_error *e);
int render_raw(qe_server *s, const char *text, size_t len, bool parse_special, gen_req *r, api_error *e);
/* Checks the prompt against the context and max_tokens against the limits (400 context_length_exceeded). */
int check_lengths(qe_server *s, gen_req *r, api_error *e);

void make_id(char *out, size_t n, const char *prefix);
double qe_wall_now(void); /* unix seconds with fraction */
void iso_time(char *out, size_t n, double unix_s); /* 2024-01-02T03:04:05.123456789Z */
