/* server.h — `qwen-edge serve`: the chat page and the OpenAI- and ollama-compatible HTTP API on
 * libmicrohttpd. What lives here: the server's options and its life cycle. The routes are in http.c,
 * the API dialects in api_openai.c / api_ollama.c, generation (prompt -> job -> text) in gen.c.
 *
 * Life cycle: qe_server_start() listens at once and answers /health with 503 "loading"; the caller loads
 * the model, creates the engine and hands both over with qe_server_set_ready(); qe_server_stop() drains
 * (waits for running answers up to a grace period, then cancels them) and closes the socket. The server
 * never frees the model or the engine: the caller does, after qe_server_free().
 *
 * Attack surface (http.c): cross-site pages are refused by their Origin header, DNS rebinding by the Host
 * header on a loopback-bound server, slow clients by a per-address connection limit and a deadline for a
 * request's headers (and a minimum rate for its body). */
#pragma once
#include <stddef.h>

#include "base.h"
#include "engine.h"
#include "model.h"

typedef struct {
    const char *host;         /* listen address; default 127.0.0.1 */
    int port;                 /* default 8080; 0 = a free port (see qe_server_port) */
    const char *api_key;      /* NULL/"": no auth; else every API route needs "Authorization: Bearer KEY" */
    const char *cors_origin;  /* NULL: same-origin only; "*" or an origin. A request whose Origin header is
                               * neither this nor the server's own origin is refused (403) */
    int memory_rounds;        /* chat window: earlier rounds kept besides the current question (0 = all) */
    size_t max_body;          /* request body limit in bytes; default 4 MiB -> 413 */
    int max_queue;            /* generation requests waiting for a slot before 429; default 32 */
    int max_connections;      /* default 256 */
    int max_connections_per_ip; /* default max_connections / 4, so one address cannot take them all */
    double header_timeout_s;  /* a request's headers must arrive within this; default 10 (slow clients) */
    double grace_s;           /* stop(): how long running answers may finish; default 5 */
    bool quiet;               /* no access log */
} qe_server_opts;

typedef struct qe_server qe_server;

int qe_server_start(const qe_server_opts *opts, qe_server **out, char *err);
int qe_server_port(const qe_server *s);
/* Borrowed: both must outlive the server. After this the API routes answer. */
/* True when it listens on a loopback address only (127.0.0.0/8, ::1): then requests whose Host header is not
 * a loopback name are refused, which closes DNS rebinding. */
bool qe_server_loopback(const qe_server *s);
void qe_server_set_ready(qe_server *s, const qe_model *model, qe_engine *engine, const char *model_id);
void qe_server_stop(qe_server *s);
void qe_server_free(qe_server *s);
