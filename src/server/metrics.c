/* metrics.c — counters and histograms for GET /metrics (Prometheus text exposition format 0.0.4).
 * Names carry the qwen_edge_ prefix; the engine's own counters (qe_engine_get_stats) are exported as they
 * are, beside the server's view (tokens per finished request, latencies). */
#include "metrics.h"

#include <string.h>

static const int statuses[SRV_N_STATUS] = {200, 204, 304, 400, 401, 404, 405, 413, 429, 500, 503, 0};

static void hist_init(srv_hist *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, n * sizeof *le);
}

void metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    static const double ttft[] = {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const double tok[] = {0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28};
    static const double dur[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    hist_init(&m->ttft, ttft, 10);
    hist_init(&m->per_token, tok, 9);
    hist_init(&m->duration, dur, 10);
}

void metrics_free(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_request(srv_metrics *m, int route, int status) {
    int si = SRV_N_STATUS - 1; /* "other" */
    for (int i = 0; i < SRV_N_STATUS - 1; i++)
        if (statuses[i] == status) si = i;
    if (route < 0 || route >= SRV_N_ROUTES) route = 0;
    pthread_mutex_lock(&m->mu);
    m->requests[route][si]++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe(srv_metrics *m, srv_hist *h, double s) {
    pthread_mutex_lock(&m->mu);
    int b = 0;
    while (b < h->n && s > h->le[b]) b++;
    h->count[b]++;
    h->total++;
    h->sum += s;
    pthread_mutex_unlock(&m->mu);
}

void metrics_tokens(srv_metrics *m, int n_prompt, int n_cached, int n_gen, bool canceled) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += n_prompt;
    m->cached_tokens += n_cached;
    m->gen_tokens += n_gen;
    m->canceled += canceled;
    pthread_mutex_unlock(&m->mu);
}

static int render_hist(qe_buf *o, const char *name, const char *help, const srv_hist *h) {
    int rc = qe_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int b = 0; b < h->n && !rc; b++) {
        cum += h->count[b];
        rc = qe_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[b], (unsigned long long)cum);
    }
    if (!rc) rc = qe_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                                (unsigned long long)h->total, name, h->sum, name, (unsigned long long)h->total);
    return rc;
}

#define P(...) do { if ((rc = qe_buf_printf(out, __VA_ARGS__))) goto done; } while (0)

int metrics_render(srv_metrics *m, const char *const *route_names, int n_routes, qe_engine *eng, int inflight,
                   qe_buf *out) {
    int rc = 0;
    qe_engine_stats st = {0};
    if (eng) qe_engine_get_stats(eng, &st);
    pthread_mutex_lock(&m->mu);
    P("# HELP qwen_edge_up 1 when the model is loaded and the API answers.\n# TYPE qwen_edge_up gauge\n");
    P("qwen_edge_up %d\n", eng ? 1 : 0);
    P("# HELP qwen_edge_http_requests_total HTTP requests by route and status.\n");
    P("# TYPE qwen_edge_http_requests_total counter\n");
    for (int r = 0; r < n_routes && r < SRV_N_ROUTES; r++)
        for (int si = 0; si < SRV_N_STATUS; si++)
            if (m->requests[r][si]) {
                char code[16];
                if (statuses[si]) snprintf(code, sizeof code, "%d", statuses[si]);
                else snprintf(code, sizeof code, "other");
                P("qwen_edge_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n", route_names[r], code,
                  (unsigned long long)m->requests[r][si]);
            }
    P("# HELP qwen_edge_prompt_tokens_total Prompt tokens of finished generation requests.\n"
      "# TYPE qwen_edge_prompt_tokens_total counter\nqwen_edge_prompt_tokens_total %llu\n",
      (unsigned long long)m->prompt_tokens);
    P("# HELP qwen_edge_cached_tokens_total Prompt tokens taken from the KV cache instead of recomputed.\n"
      "# TYPE qwen_edge_cached_tokens_total counter\nqwen_edge_cached_tokens_total %llu\n",
      (unsigned long long)m->cached_tokens);
    P("# HELP qwen_edge_generated_tokens_total Tokens generated for finished requests.\n"
      "# TYPE qwen_edge_generated_tokens_total counter\nqwen_edge_generated_tokens_total %llu\n",
      (unsigned long long)m->gen_tokens);
    P("# HELP qwen_edge_canceled_total Answers canceled (client went away or server stopping).\n"
      "# TYPE qwen_edge_canceled_total counter\nqwen_edge_canceled_total %llu\n", (unsigned long long)m->canceled);
    if ((rc = render_hist(out, "qwen_edge_time_to_first_token_seconds", "Request received to first token.", &m->ttft)))
        goto done;
    if ((rc = render_hist(out, "qwen_edge_time_per_token_seconds", "Time between two generated tokens.", &m->per_token)))
        goto done;
    if ((rc = render_hist(out, "qwen_edge_request_duration_seconds", "Whole generation request.", &m->duration)))
        goto done;
    P("# HELP qwen_edge_requests_inflight Generation requests running or waiting.\n"
      "# TYPE qwen_edge_requests_inflight gauge\nqwen_edge_requests_inflight %d\n", inflight);
    P("# HELP qwen_edge_slots Engine slots (parallel sequences).\n# TYPE qwen_edge_slots gauge\nqwen_edge_slots %d\n",
      st.n_slots);
    P("# HELP qwen_edge_slots_busy Slots working on a request.\n# TYPE qwen_edge_slots_busy gauge\n"
      "qwen_edge_slots_busy %d\n", st.slots_busy);
    P("# HELP qwen_edge_queue_length Requests waiting for a slot.\n# TYPE qwen_edge_queue_length gauge\n"
      "qwen_edge_queue_length %d\n", st.queue_len);
    P("# HELP qwen_edge_engine_jobs_total Jobs the engine accepted.\n# TYPE qwen_edge_engine_jobs_total counter\n"
      "qwen_edge_engine_jobs_total %llu\n", (unsigned long long)st.jobs_total);
    P("# HELP qwen_edge_engine_prompt_tokens_total Prompt tokens seen by the engine.\n"
      "# TYPE qwen_edge_engine_prompt_tokens_total counter\nqwen_edge_engine_prompt_tokens_total %llu\n",
      (unsigned long long)st.prompt_tokens_total);
    P("# HELP qwen_edge_engine_cached_tokens_total Prompt tokens the engine reused from the KV cache.\n"
      "# TYPE qwen_edge_engine_cached_tokens_total counter\nqwen_edge_engine_cached_tokens_total %llu\n",
      (unsigned long long)st.cached_tokens_total);
    P("# HELP qwen_edge_engine_generated_tokens_total Tokens the engine generated.\n"
      "# TYPE qwen_edge_engine_generated_tokens_total counter\nqwen_edge_engine_generated_tokens_total %llu\n",
      (unsigned long long)st.gen_tokens_total);
    P("# HELP qwen_edge_engine_forward_passes_total Batched forward passes.\n"
      "# TYPE qwen_edge_engine_forward_passes_total counter\nqwen_edge_engine_forward_passes_total %llu\n",
      (unsigned long long)st.forward_passes);
done:
    pthread_mutex_unlock(&m->mu);
    return rc;
}
