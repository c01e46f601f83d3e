/* metrics.h — the server's own counters and histograms, rendered with the engine's counters in the
 * Prometheus text format (GET /metrics). Thread-safe: HTTP threads record, any thread renders. */
#pragma once
#include <pthread.h>
#include <stdint.h>

#include "base.h"
#include "engine.h"
#include "routes.h"

#define SRV_N_STATUS 12
#define SRV_N_ROUTES R__COUNT /* routes.h */
#define SRV_HIST_MAX 12

typedef struct {
    int n;                      /* bucket count (without +Inf) */
    double le[SRV_HIST_MAX];    /* upper bounds, seconds */
    uint64_t count[SRV_HIST_MAX + 1];
    uint64_t total;
    double sum;
} srv_hist;

typedef struct {
    pthread_mutex_t mu;
    uint64_t requests[SRV_N_ROUTES][SRV_N_STATUS]; /* by route and status (see metrics.c for the statuses) */
    uint64_t prompt_tokens, cached_tokens, gen_tokens, canceled;
    srv_hist ttft;              /* request received -> first token */
    srv_hist per_token;         /* time between two tokens of one answer */
    srv_hist duration;          /* whole generation request */
} srv_metrics;

void metrics_init(srv_metrics *m);
void metrics_free(srv_metrics *m);
void metrics_request(srv_metrics *m, int route, int status);
void metrics_observe(srv_metrics *m, srv_hist *h, double seconds);
void metrics_tokens(srv_metrics *m, int n_prompt, int n_cached, int n_gen, bool canceled);
/* Appends the exposition text. route_names has SRV_N_ROUTES entries or fewer (n_routes). eng may be NULL. */
int metrics_render(srv_metrics *m, const char *const *route_names, int n_routes, qe_engine *eng,
                   int inflight, qe_buf *out);
