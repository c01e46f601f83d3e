/* gen.c — one generation request from submit to the last byte: the engine job, the text stream (whole
 * UTF-8, stop strings), the frames of the dialect, timings for the metrics and the access log.
 *
 * Streaming: MHD calls stream_cb on the connection's own thread (thread-per-connection mode) whenever it
 * can send more; stream_cb blocks on qe_job_next for the next token, so each token goes out as soon as
 * the engine makes it. When the client disconnects, the next write fails, MHD destroys the response and
 * stream_free releases (= cancels) the job: its slot is free at the engine's next step. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"

static int qe_engine_stats_slots(qe_engine *e) {
    qe_engine_stats st = {0};
    qe_engine_get_stats(e, &st);
    return st.n_slots;
}

static const char *finish_name(const gen_state *g) {
    if (g->stop_hit) return "stop";
    switch (g->done.finish) {
    case QE_FINISH_STOP: return "stop";
    case QE_FINISH_LENGTH: return "length";
    default: return "cancelled";
    }
}

static void live_add(qe_server *s, gen_state *g) {
    pthread_mutex_lock(&s->live_mu);
    g->next_live = s->live;
    if (s->live) s->live->prev_live = g;
    s->live = g;
    pthread_mutex_unlock(&s->live_mu);
}

static void live_remove(qe_server *s, gen_state *g) {
    pthread_mutex_lock(&s->live_mu);
    if (g->prev_live) g->prev_live->next_live = g->next_live;
    else if (s->live == g) s->live = g->next_live;
    if (g->next_live) g->next_live->prev_live = g->prev_live;
    g->next_live = g->prev_live = NULL;
    pthread_mutex_unlock(&s->live_mu);
}

/* Called once, when the job's QE_EV_DONE arrived. */
static void account_done(gen_state *g) {
    qe_server *s = g->s;
    const qe_event *d = &g->done;
    bool canceled = d->finish == QE_FINISH_CANCELED && !g->stop_hit;
    metrics_tokens(&s->metrics, d->n_prompt, d->n_cached, d->n_gen, canceled);
    metrics_observe(&s->metrics, &s->metrics.duration, qe_now() - g->t_start);
    if (g->rq) {
        g->rq->n_prompt = d->n_prompt;
        g->rq->n_cached = d->n_cached;
        g->rq->n_gen = d->n_gen;
        g->rq->gen_ms = g->t_first ? (qe_now() - g->t_first) * 1e3 : 0;
        g->rq->finish = finish_name(g);
    }
}

/* Reads one event. 0: more to come (text may have grown), 1: done (g->done), 2: timeout, -1: engine error. */
static int step(gen_state *g, qe_buf *text, int timeout_ms) {
    qe_event ev;
    if (qe_job_next(g->job, &ev, timeout_ms) != QE_OK) return 2;
    if (ev.kind == QE_EV_TOKEN) {
        double now = qe_now();
        if (!g->t_first) {
            g->t_first = now;
            metrics_observe(&g->s->metrics, &g->s->metrics.ttft, now - g->t_start);
            if (g->rq) g->rq->ttft_ms = (now - g->t_start) * 1e3;
        } else {
            metrics_observe(&g->s->metrics, &g->s->metrics.per_token, now - g->t_last);
        }
        g->t_last = now;
        if (g->req.want_context) qe_ids_push(&g->gen_ids, ev.token);
        if (g->stop_hit) return 0; /* tokens already in flight after a stop string: drop them */
        int rc = qe_textstream_push(&g->ts, ev.token, text);
        if (rc == QE_TEXTSTREAM_STOP) {
            g->stop_hit = true;
            qe_job_cancel(g->job);
        } else if (rc < 0) {
            snprintf(g->err, sizeof g->err, "out of memory while decoding the answer");
            return -1;
        }
        return 0;
    }
    if (ev.kind == QE_EV_DONE) {
        g->done = ev;
        qe_textstream_finish(&g->ts, text);
        account_done(g);
        return 1;
    }
    snprintf(g->err, sizeof g->err, "%s", ev.message[0] ? ev.message : "the engine failed");
    return -1;
}

static bool is_openai(const gen_state *g) { return g->req.kind == GEN_OPENAI_CHAT || g->req.kind == GEN_OPENAI_COMPLETION; }

/* Fills g->out with the next frames. */
static void produce(gen_state *g) {
    qe_buf *out = &g->out;
    if (g->phase == 0) {
        g->phase = 1;
        if (g->req.kind == GEN_OPENAI_CHAT) { openai_frame_first(g, out); return; }
    }
    if (g->phase == 2) {
        g->phase = 3;
        if (is_openai(g)) qe_buf_append(out, "data: [DONE]\n\n", 14);
        return;
    }
    qe_buf text = {0};
    int r = step(g, &text, 15000);
    if (r == 2) {
        /* nothing for 15 s (waiting for a slot): an SSE comment keeps proxies from timing out and lets us notice
         * a client that left. NDJSON has no comments; ollama clients simply wait. */
        if (is_openai(g)) qe_buf_append(out, ": keep-alive\n\n", 14);
        qe_buf_free(&text);
        return;
    }
    int rc = 0;
    if (text.n) rc = is_openai(g) ? openai_frame_delta(g, text.p, text.n, out) : ollama_frame_delta(g, text.p, text.n, out);
    if (rc) qe_log(QE_LOG_WARN, "%s: could not write a stream frame (%d); %zu bytes of text lost", g->id, rc, text.n);
    if (r == 1) {
        rc = is_openai(g) ? openai_frame_final(g, finish_name(g), out) : ollama_frame_final(g, finish_name(g), out);
        if (rc) qe_log(QE_LOG_WARN, "%s: could not write the final stream frame (%d)", g->id, rc);
        g->phase = 2;
    } else if (r < 0) {
        frame_error(g, g->err, out);
        if (g->rq) g->rq->finish = "error";
        g->phase = 3; /* an error ends the stream without [DONE] */
    }
    qe_buf_free(&text);
}

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
    gen_state *g = cls;
    while (g->out_pos >= g->out.n) {
        g->out.n = g->out_pos = 0;
        if (g->phase == 3) return MHD_CONTENT_READER_END_OF_STREAM;
        produce(g);
    }
    size_t n = g->out.n - g->out_pos;
    if (n > max) n = max;
    memcpy(buf, g->out.p + g->out_pos, n);
    g->out_pos += n;
    if (g->rq) g->rq->bytes_out += n;
    return (ssize_t)n;
}

static void gen_state_free(gen_state *g) {
    if (!g) return;
    qe_server *s = g->s;
    if (g->job) {
        live_remove(s, g);
        if (g->phase < 2) metrics_tokens(&s->metrics, 0, 0, 0, true); /* left before the end */
        qe_job_release(g->job); /* cancels a job still running */
    }
    qe_textstream_free(&g->ts);
    gen_req_free(&g->req);
    qe_ids_free(&g->gen_ids);
    qe_buf_free(&g->out);
    free(g);
    atomic_fetch_sub(&s->n_gen_inflight, 1);
}

/* MHD's free callback: the response is gone (finished, or the client disconnected). Must not touch g->rq,
 * which MHD may already have released. */
static void stream_free(void *cls) { gen_state_free(cls); }

/* A non-streaming request writes nothing until the end, so a client that gave up is noticed by looking at
 * its socket: readable with nothing to read (EOF) or hung up means it is gone. A pipelined next request
 * (data waiting) counts as still there. */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    char b;
    return recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

enum MHD_Result gen_run(struct MHD_Connection *c, qe_server *s, req_ctx *rq, gen_req *req) {
    api_error e = {0};
    dialect d = (req->kind == GEN_OLLAMA_CHAT || req->kind == GEN_OLLAMA_GENERATE) ? DIALECT_OLLAMA : DIALECT_OPENAI;
    qe_engine *eng = atomic_load(&s->engine);
    int limit = s->o.max_queue + qe_engine_stats_slots(eng);
    if (atomic_fetch_add(&s->n_gen_inflight, 1) >= limit) {
        atomic_fetch_sub(&s->n_gen_inflight, 1);
        gen_req_free(req);
        api_errf(&e, 429, "rate_limit_error", "too_many_requests", NULL,
                 "too many requests at once (%d answering or waiting); try again shortly", limit);
        return send_error(c, s, rq, d, &e);
    }
    gen_state *g = calloc(1, sizeof *g);
    if (!g) {
        atomic_fetch_sub(&s->n_gen_inflight, 1);
        gen_req_free(req);
        api_errf(&e, 500, "server_error", NULL, NULL, "out of memory");
        return send_error(c, s, rq, d, &e);
    }
    g->s = s;
    g->req = *req;
    memset(req, 0, sizeof *req);
    g->rq = rq;
    g->t_start = rq->t_start;
    g->created = (int64_t)time(NULL);
    make_id(g->id, sizeof g->id, g->req.kind == GEN_OPENAI_CHAT ? "chatcmpl-" : "cmpl-");

    char err[QE_ERR_LEN] = "";
    if (qe_textstream_init(&g->ts, s->model->tok, (const char *const *)g->req.stops, g->req.n_stops, err)) {
        api_errf(&e, 400, "invalid_request_error", NULL, "stop", "%s", err);
        goto fail;
    }
    g->req.jp.prompt = g->req.prompt.p;
    g->req.jp.n_prompt = (int)g->req.prompt.n;
    int rc = qe_engine_submit(eng, &g->req.jp, &g->job, err);
    if (rc == QE_ERANGE) {
        api_errf(&e, 400, "invalid_request_error", "context_length_exceeded", "messages", "%s", err);
        goto fail;
    } else if (rc == QE_EBUSY) {
        api_errf(&e, 503, "server_error", "server_busy", NULL, "the server is busy (%s); try again shortly", err);
        goto fail;
    } else if (rc == QE_EINVAL) {
        api_errf(&e, 400, "invalid_request_error", NULL, NULL, "%s", err);
        goto fail;
    } else if (rc) {
        api_errf(&e, 500, "server_error", NULL, NULL, "cannot start the answer: %s", err);
        goto fail;
    }
    live_add(s, g);

    if (!g->req.stream) {
        qe_buf text = {0};
        int r;
        double next_check = qe_now() + 0.25;
        while ((r = step(g, &text, 250)) == 0 || r == 2) {
            if (qe_now() < next_check) continue;
            next_check = qe_now() + 0.25;
            if (!g->stop_hit && client_gone(c)) qe_job_cancel(g->job); /* QE_EV_DONE follows */
        }
        enum MHD_Result ret;
        if (r < 0) {
            api_errf(&e, 500, "server_error", NULL, NULL, "%s", g->err);
            ret = send_error(c, s, rq, d, &e);
        } else {
            json_t *body = d == DIALECT_OPENAI ? openai_body(g, text.p ? text.p : "", text.n, finish_name(g))
                                               : ollama_body(g, text.p ? text.p : "", text.n, finish_name(g));
            g->phase = 3;
            ret = send_json(c, s, rq, 200, body);
        }
        qe_buf_free(&text);
        gen_state_free(g);
        return ret;
    }

    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_cb, g, stream_free);
    if (!resp) {
        gen_state_free(g);
        return MHD_NO;
    }
    add_common_headers(s, resp);
    if (d == DIALECT_OPENAI) {
        MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    } else {
        MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    rq->status = 200;
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;

fail:
    gen_state_free(g);
    return send_error(c, s, rq, d, &e);
}

void gen_cancel_all(qe_server *s) {
    pthread_mutex_lock(&s->live_mu);
    for (gen_state *g = s->live; g; g = g->next_live) qe_job_cancel(g->job);
    pthread_mutex_unlock(&s->live_mu);
}
