/* gen.c — one generation request from submit to the last byte: the engine job, the text stream (whole
 * UTF-8, stop strings), the frames of the dialect, timings for the metrics and the access log.
 *
 * What the answer looks like on the wire is not decided here: the request's gen_dialect (req.dl, set by the
 * route in gen_serve) gives the frames, the content type, the stream's end marker and keep-alive comment, and
 * the shape of errors. Nothing below asks which API it serves.
 *
 * Streaming: MHD calls stream_cb on the connection's own thread (thread-per-connection mode) whenever it
 * can send more; stream_cb blocks on qe_job_next for the next token, so each token goes out as soon as
 * the engine makes it. When the client disconnects, the next write fails, MHD destroys the response and
 * stream_free releases (= cancels) the job: its slot is free at the engine's next step.
 *
 * A client that leaves while nothing is being written (its job waits for a slot, its prompt is computed, or
 * the text is held back) would not be noticed by a write, so every wait for the engine is cut into
 * GONE_POLL_MS slices and the socket is looked at in between (client_gone): a request whose client left is
 * canceled within about that time in every phase, on every route, streaming or not.
 *
 * The gate: a generation request takes its place among the requests in flight (gen_admit) before anything
 * is parsed or tokenized; over the limit (serve --max-queue waiting + one per slot) it gets 429 at once.
 * The engine's queue has no bound of its own, so this is the only "too busy" answer. Preparing (parsing the
 * body and tokenizing the prompt) then runs for at most one request per core at a time (prep_sem): it is CPU
 * work on the connection's thread, and more of it at once than there are cores only multiplies its memory. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"

/* How often a wait for the engine looks whether the client is still there. */
#define GONE_POLL_MS 200

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

/* True if the client of this connection is gone: its socket is readable with nothing to read (EOF), or hung
 * up. A pipelined next request (data waiting) counts as still there. */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    char b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Looks at the socket at most every GONE_POLL_MS; on a departure cancels the job (its queue place or slot is
 * freed at once or at the engine's next step). */
static bool check_gone(gen_state *g) {
    double now = qe_now();
    if (g->gone) return true;
    if (now < g->t_check) return false;
    g->t_check = now + GONE_POLL_MS / 1e3;
    if (!client_gone(g->fd)) return false;
    g->gone = true;
    qe_job_cancel(g->job);
    qe_log(QE_LOG_INFO, "%s: the client went away; answer canceled", g->id);
    return true;
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
    /* the engine's words are for the operator; the client gets a stable message */
    qe_log(QE_LOG_ERROR, "%s: %s", g->id, ev.message[0] ? ev.message : "the engine failed");
    snprintf(g->err, sizeof g->err, "internal error while generating the answer");
    return -1;
}

int frame_json(qe_buf *out, const char *before, json_t *j, const char *after) {
    if (!j) return QE_ENOMEM;
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!txt) return QE_ENOMEM;
    int rc = qe_buf_printf(out, "%s%s%s", before, txt, after);
    free(txt);
    return rc;
}

/* Fills g->out with the next frames. */
static void produce(gen_state *g) {
    const gen_dialect *dl = g->req.dl;
    qe_buf *out = &g->out;
    if (g->phase == 0) {
        g->phase = 1;
        if (dl->frame_first) { dl->frame_first(g, out); return; }
    }
    if (g->phase == 2) {
        g->phase = 3;
        if (dl->end) qe_buf_append(out, dl->end, strlen(dl->end));
        return;
    }
    qe_buf text = {0};
    int r;
    double t_keepalive = qe_now() + 15;
    /* wait in short slices until there is something to send, looking at the client in between */
    while ((r = step(g, &text, GONE_POLL_MS)) == 2 || (r == 0 && text.n == 0)) {
        if (check_gone(g)) { qe_buf_free(&text); return; }
        if (r == 2 && qe_now() >= t_keepalive && dl->keep_alive) {
            /* nothing for 15 s: a comment keeps proxies from timing out */
            qe_buf_append(out, dl->keep_alive, strlen(dl->keep_alive));
            qe_buf_free(&text);
            return;
        }
    }
    int rc = 0;
    if (text.n) rc = dl->frame_delta(g, text.p, text.n, out);
    if (rc) qe_log(QE_LOG_WARN, "%s: could not write a stream frame (%d); %zu bytes of text lost", g->id, rc, text.n);
    if (r == 1) {
        rc = dl->frame_final(g, finish_name(g), out);
        if (rc) qe_log(QE_LOG_WARN, "%s: could not write the final stream frame (%d)", g->id, rc);
        g->phase = 2;
    } else if (r < 0) {
        dl->frame_error(g, g->err, out);
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
        if (g->gone) return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes; stream_free releases the job */
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

bool gen_admit(qe_server *s, api_error *e) {
    int limit = s->o.max_queue + qe_engine_stats_slots(atomic_load(&s->engine));
    if (atomic_fetch_add(&s->n_gen_inflight, 1) < limit) return true;
    atomic_fetch_sub(&s->n_gen_inflight, 1);
    api_errf(e, 429, "rate_limit_error", "too_many_requests", NULL,
             "too many requests at once (%d answering or waiting); try again shortly", limit);
    return false;
}

void gen_leave(qe_server *s) { atomic_fetch_sub(&s->n_gen_inflight, 1); }

enum MHD_Result gen_serve(struct MHD_Connection *c, qe_server *s, req_ctx *rq, const gen_dialect *dl) {
    api_error e = {0};
    if (!gen_admit(s, &e)) return send_error(c, s, rq, dl->errors, &e);
    gen_req r = {.dl = dl};
    json_t *reply = NULL;
    sem_wait(&s->prep_sem);
    json_t *j = parse_body(rq, &e);
    qe_buf_free(&rq->body); /* parsed: a long answer need not keep the bytes */
    /* every generation route takes "cache_salt" (which cached prefixes it may share; see auth.h) */
    int rc = j && get_cache_salt(s, rq, j, &r, &e) == 0 ? dl->prepare(s, j, &r, &reply, &e) : -1;
    parse_body_free(j);
    sem_post(&s->prep_sem);
    if (rc < 0 || reply) {
        gen_req_free(&r);
        gen_leave(s);
        return rc < 0 ? send_error(c, s, rq, dl->errors, &e) : send_json(c, s, rq, 200, reply);
    }
    return gen_run(c, s, rq, &r);
}

enum MHD_Result gen_run(struct MHD_Connection *c, qe_server *s, req_ctx *rq, gen_req *req) {
    api_error e = {0};
    const gen_dialect *dl = req->dl;
    dialect d = dl->errors;
    qe_engine *eng = atomic_load(&s->engine);
    gen_state *g = calloc(1, sizeof *g);
    if (!g) {
        gen_leave(s);
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
    make_id(g->id, sizeof g->id, dl->id_prefix);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    g->fd = ci ? ci->connect_fd : -1; /* valid while the connection lives, which outlasts every wait below */

    char err[QE_ERR_LEN] = "";
    if (qe_textstream_init(&g->ts, s->model->tok, (const char *const *)g->req.stops, g->req.n_stops, err)) {
        api_errf(&e, 400, "invalid_request_error", NULL, "stop", "%s", err);
        goto fail;
    }
    g->req.jp.prompt = g->req.prompt.p;
    g->req.jp.n_prompt = (int)g->req.prompt.n;
    int rc = qe_engine_submit(eng, &g->req.jp, &g->job, err);
    /* the checks before (parse.c) refuse what the engine would: these are a second line, in stable words */
    if (rc == QE_ERANGE) {
        api_errf(&e, 400, "invalid_request_error", "context_length_exceeded", "messages",
                 "the prompt does not fit this model's context of %d tokens (leave room for the answer)",
                 qe_engine_n_ctx(eng));
        goto fail;
    } else if (rc == QE_EINVAL) {
        qe_log(QE_LOG_INFO, "%s: job refused: %s", g->id, err);
        api_errf(&e, 400, "invalid_request_error", NULL, "prompt", "the prompt is empty or not made of valid token ids");
        goto fail;
    } else if (rc == QE_EBUSY) {
        api_errf(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
        goto fail;
    } else if (rc) {
        qe_log(QE_LOG_ERROR, "%s: cannot submit the job: %s", g->id, err); /* details for the operator only */
        api_errf(&e, 500, "server_error", NULL, NULL, "the server could not start the answer; try again");
        goto fail;
    }
    live_add(s, g);

    if (!g->req.stream) {
        qe_buf text = {0};
        int r;
        while ((r = step(g, &text, GONE_POLL_MS)) == 0 || r == 2) {
            if (check_gone(g)) break;
        }
        enum MHD_Result ret;
        if (g->gone) {
            rq->finish = "cancelled";
            ret = MHD_NO; /* nobody to answer: close */
        } else if (r < 0) {
            api_errf(&e, 500, "server_error", NULL, NULL, "%s", g->err);
            ret = send_error(c, s, rq, d, &e);
        } else {
            json_t *body = dl->body(g, text.p ? text.p : "", text.n, finish_name(g));
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
    MHD_add_response_header(resp, "Content-Type", dl->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    rq->status = 200;
    /* A stream may wait minutes for a slot without writing a byte (NDJSON has no comment frame to keep it alive,
     * unlike SSE's keep-alive): MHD's idle timeout must not cut it there. A client that leaves is found by
     * check_gone in every phase instead. */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0);
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
